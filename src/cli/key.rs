//! `hsmsign key ...`

use std::path::PathBuf;

use clap::Subcommand;
use hsmsign::keys::KeyGenerate;
use hsmsign::keys::pkcs11::Pkcs11Uri;
use serde_json::json;

use super::{CmdResult, Ctx, key_failure};

/// Key commands.
#[derive(Subcommand, Debug)]
pub(crate) enum KeyCmd {
    /// Generate a key pair that can never leave the token.
    Generate {
        /// The new key: pkcs11: token attributes plus object=LABEL (id= optional, else random),
        /// or a YubiKey slot, yubikey:slot=9a.
        #[arg(long, value_name = "URI")]
        key: String,
        /// ec-p256, ec-p384, rsa-3072 or rsa-4096.
        #[arg(long)]
        algorithm: String,
        #[cfg(feature = "yubikey")]
        #[command(flatten)]
        piv: super::piv::PivGenerateArgs,
    },
    /// List the private keys on a token.
    List {
        /// The token (default: the only initialised token).
        #[arg(long, value_name = "URI")]
        token: Option<String>,
    },
    /// Show a key's security attributes and its provenance verdict.
    Inspect {
        /// The key.
        #[arg(long, value_name = "URI")]
        key: String,
    },
    /// Print (or write) the public key as PEM.
    Public {
        /// The key.
        #[arg(long, value_name = "URI")]
        key: String,
        /// Write the PEM here instead of printing it (never overwrites without --force).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
    },
    /// Fetch and verify a YubiKey slot's attestation (key made inside a genuine YubiKey).
    #[cfg(feature = "yubikey")]
    Attest {
        /// The slot, e.g. yubikey:slot=9c.
        #[arg(long, value_name = "KEY")]
        key: String,
        /// Also write the attestation and device (f9) certificates here (PEM).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
    },
    /// Import a PKCS#8 private key (migration of an existing key only).
    Import {
        /// The new key's URI (token attributes plus object=LABEL).
        #[arg(long, value_name = "URI")]
        key: String,
        /// An unencrypted PKCS#8 PEM file.
        #[arg(long, value_name = "PKCS8.pem")]
        from: PathBuf,
    },
}
/// Print the public key as PEM, or write it to `out`.
fn write_public(
    ctx: &Ctx,
    public: &hsmsign::signer::PublicKey,
    out: Option<&std::path::Path>,
    force: bool,
) -> CmdResult {
    let pem = public.to_pem();
    match out {
        Some(path) => {
            hsmsign::output::write_new(path, pem.as_bytes(), force)?;
            ctx.emit(
                format!("Wrote the public key to {}", path.display()),
                json!({"out": path, "public_key_sha256": public.fingerprint_hex()}),
            );
        }
        None => ctx.emit(
            pem.trim_end(),
            json!({"public_key_pem": pem, "public_key_sha256": public.fingerprint_hex()}),
        ),
    }
    Ok(())
}

pub(super) fn run(ctx: &Ctx, cmd: KeyCmd) -> CmdResult {
    match cmd {
        KeyCmd::Generate {
            key,
            algorithm,
            #[cfg(feature = "yubikey")]
            piv,
        } => {
            #[cfg(not(feature = "yubikey"))]
            let request = KeyGenerate {
                key,
                algorithm,
                ..KeyGenerate::default()
            };
            #[cfg(feature = "yubikey")]
            let request = KeyGenerate {
                key,
                algorithm,
                pin_policy: piv.pin_policy,
                touch_policy: piv.touch_policy,
                management_key_source: piv.management_key_source,
                allow_default_credentials: piv.allow_default_credentials,
            };
            request.validate(&ctx.keys).map_err(key_failure)?;
            let store = ctx.store()?;
            let made = hsmsign::keys::generate(&ctx.keys, store.as_ref(), &request)
                .map_err(key_failure)?;
            match (&made.info, &made.policies) {
                (Some(info), _) => ctx.emit(
                    format!(
                        "Generated {} key {:?} on token {:?}; it can never leave the token.\n{}\n{}",
                        info.algorithm,
                        info.label,
                        made.holder,
                        info.uri,
                        made.public.to_pem().trim_end()
                    ),
                    json!({"key": info, "public_key_pem": made.public.to_pem()}),
                ),
                (None, policies) => ctx.emit(
                    format!(
                        "Generated {} key in {}; it can never leave the YubiKey.\n{}\n{}",
                        made.algorithm,
                        policies.as_deref().unwrap_or_default(),
                        made.uri,
                        made.public.to_pem().trim_end()
                    ),
                    json!({"key": {"uri": made.uri, "algorithm": made.algorithm.to_string()}, "public_key_pem": made.public.to_pem()}),
                ),
            }
            Ok(())
        }
        KeyCmd::List { token } => {
            let uri = match token {
                Some(t) => ctx.keys.uri(&t)?,
                None => Pkcs11Uri::default(),
            };
            let module = ctx.keys.module(Some(&uri))?;
            let session = ctx
                .keys
                .login(&module, &uri.token_part_with_pin(&uri), None)?;
            let keys = session.list_keys()?;
            let mut text = format!("Keys on token {:?}:", session.token().label);
            if keys.is_empty() {
                text.push_str(" none");
            }
            for k in &keys {
                text.push_str(&format!("\n  {} ({})", k.uri, k.algorithm));
            }
            ctx.emit(text, json!({"token": session.token(), "keys": keys}));
            drop(session);
            module.finalize();
            Ok(())
        }
        KeyCmd::Inspect { key } => {
            #[cfg(feature = "yubikey")]
            if hsmsign::keys::piv::PivUri::is_piv(&key) {
                return super::piv::inspect(ctx, &key);
            }
            let uri = ctx.keys.uri(&key)?;
            let module = ctx.keys.module(Some(&uri))?;
            let session = ctx.keys.login(&module, &uri, None)?;
            let ins = session.inspect(&uri)?;
            let mut text = format!("{}\n  algorithm: {}\n", ins.key.uri, ins.key.algorithm);
            for (name, value) in &ins.attributes {
                text.push_str(&format!("  {name}: {value}\n"));
            }
            text.push_str(&format!(
                "  public key SHA-256: {}\n",
                ins.key.public_key_sha256
            ));
            text.push_str(&format!("verdict: {}", ins.verdict));
            ctx.emit(text, json!(ins));
            drop(session);
            module.finalize();
            Ok(())
        }
        KeyCmd::Public { key, out, force } => {
            if let Some(out) = &out {
                hsmsign::output::check_new(out, force)?;
            }
            #[cfg(feature = "yubikey")]
            if hsmsign::keys::piv::PivUri::is_piv(&key) {
                let handle = ctx.keys.open_key(&key, None, None)?;
                let public = handle.public_key()?;
                handle.finish();
                return write_public(ctx, &public, out.as_deref(), force);
            }
            let uri = ctx.keys.uri(&key)?;
            let module = ctx.keys.module(Some(&uri))?;
            let session = ctx.keys.login(&module, &uri, None)?;
            let found = session.find_key(&uri)?;
            drop(session);
            module.finalize();
            write_public(ctx, &found.public, out.as_deref(), force)
        }
        #[cfg(feature = "yubikey")]
        KeyCmd::Attest { key, out, force } => super::piv::attest(ctx, &key, out, force),
        KeyCmd::Import { key, from } => {
            let request = hsmsign::keys::KeyImport { key, from };
            request.validate(&ctx.keys).map_err(key_failure)?;
            let store = ctx.store()?;
            let done =
                hsmsign::keys::import(&ctx.keys, store.as_ref(), &request).map_err(key_failure)?;
            let (info, from) = (done.info, request.from);
            ctx.emit(
                format!(
                    "Imported {} key {:?} into token {:?} as sensitive and non-extractable.\n{}\nNote: `key inspect` reports it as imported, not generated on the token. Destroy {} securely once the migration is checked.",
                    info.algorithm,
                    info.label,
                    done.token,
                    info.uri,
                    from.display()
                ),
                json!({"key": info}),
            );
            Ok(())
        }
    }
}
