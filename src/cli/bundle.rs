//! `hsmsign bundle ...` (CA bundles, truststores, JS7 private.conf snippets) and the in-memory
//! instance key of `cert issue --generate-key`.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use hsmsign::bundle::{self, Js7Role, Pkcs12Options, TrustedCert};
use hsmsign::keys::pkcs11::{PinSource, TokenError};
use secrecy::SecretString;
use serde_json::json;

use super::{CmdResult, Ctx, Failure, prompt, read_certificate};

/// Bundle commands.
#[derive(Subcommand, Debug)]
pub(crate) enum BundleCmd {
    /// The CA bundle of one or more CAs: PEM, or a PKCS#12 truststore the JVM loads
    /// (JS7's https-truststore.p12).
    Truststore {
        /// A CA to include (repeat: --ca root --ca issuing).
        #[arg(long = "ca", value_name = "CA", required = true)]
        cas: Vec<String>,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// Write a password-protected PKCS#12 truststore instead of PEM.
        #[arg(long)]
        pkcs12: bool,
        /// With --pkcs12: where the store password comes from (prompt, env:, file:, fd:).
        #[arg(long, value_name = "SRC")]
        password_source: Option<String>,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
    },
    /// The content of a JS7 trusted-x509-keys directory: one PEM file per CA, as Controllers
    /// and Agents read it. Give the direct issuer of the operators' signing certificates.
    TrustedKeys {
        /// A CA to trust (repeat: --ca issuing --ca issuing-2027).
        #[arg(long = "ca", value_name = "CA", required = true)]
        cas: Vec<String>,
        /// The directory to write the files into (made if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace existing files of the same names.
        #[arg(long)]
        force: bool,
    },
    /// Print the private.conf lines a Controller or Agent needs for this certificate.
    Js7Config {
        /// The instance's certificate (PEM or DER).
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// controller or agent.
        #[arg(long, value_enum, default_value_t = Role::Controller)]
        role: Role,
        /// The key's alias in https-keystore.p12 (lower case; default: the alias of every key
        /// bundle hsmsign writes, "https").
        #[arg(long, conflicts_with = "keystore")]
        alias: Option<String>,
        /// Read the alias from this key bundle (https-keystore.p12), and check that it holds the
        /// key of --cert.
        #[arg(long, value_name = "FILE")]
        keystore: Option<PathBuf>,
        /// With --keystore: where its password comes from (prompt, env:VAR, file:PATH, fd:N).
        #[arg(long, value_name = "SRC", requires = "keystore")]
        password_source: Option<String>,
    },
}

/// A JS7 instance kind.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Role {
    /// A Controller.
    Controller,
    /// An Agent.
    Agent,
}

/// The alias under which the key bundle at `path` holds the key certified by `cert_der`.
fn keystore_alias(
    ctx: &Ctx,
    path: &std::path::Path,
    password_source: Option<&str>,
    cert_der: &[u8],
) -> Result<String, Failure> {
    let bytes = hsmsign::input::read_secret(path, hsmsign::input::InputKind::Certificate)?;
    let password = read_secret(
        ctx,
        password_source,
        &format!("Password of the key bundle {}", path.display()),
    )?;
    let contents = bundle::read_pkcs12(&bytes, &password)?;
    // The certificate of the key is the one carrying the key's localKeyId.
    let entry = contents.keys.iter().find_map(|k| {
        contents
            .certs
            .iter()
            .find(|c| c.local_key_id.is_some() && c.local_key_id == k.local_key_id)
            .map(|c| (k, c))
    });
    let Some((key, key_cert)) = entry else {
        return Err(Failure::Failed(anyhow::anyhow!(
            "{} holds no private key with its certificate; give the instance's key bundle (https-keystore.p12)",
            path.display()
        )));
    };
    if key_cert.der != cert_der {
        return Err(Failure::Failed(anyhow::anyhow!(
            "the key bundle {} holds the key of another certificate than --cert; give the certificate that is in the bundle",
            path.display()
        )));
    }
    let alias = key.alias.clone().ok_or_else(|| {
        anyhow::anyhow!(
            "the key in {} has no alias (friendlyName); JS7 needs one to find it. Make the bundle again with hsmsign",
            path.display()
        )
    })?;
    // The JVM lists PKCS#12 aliases in lower case, and that is the name JS7 must be given.
    Ok(alias.to_lowercase())
}

fn read_secret(ctx: &Ctx, source: Option<&str>, what: &str) -> Result<SecretString, Failure> {
    let source = match source {
        Some(s) => ctx
            .keys
            .check_pin_source(PinSource::parse(s).map_err(TokenError::from)?)?,
        None => PinSource::Prompt,
    };
    Ok(source.read(what, &prompt).map_err(TokenError::from)?)
}

pub(super) fn run(ctx: &Ctx, cmd: BundleCmd) -> CmdResult {
    match cmd {
        BundleCmd::Truststore {
            cas,
            out,
            pkcs12,
            password_source,
            force,
        } => {
            hsmsign::output::check_new(&out, force)?;
            if password_source.is_some() && !pkcs12 {
                return Err(Failure::Usage(
                    "--password-source goes with --pkcs12".into(),
                ));
            }
            let store = ctx.require_store()?;
            let mut records = Vec::new();
            for name in &cas {
                records.push(
                    store
                        .ca(name)?
                        .ok_or_else(|| hsmsign::ca::CaError::UnknownCa(name.clone()))?,
                );
            }
            let bytes = if pkcs12 {
                let password = read_secret(
                    ctx,
                    password_source.as_deref(),
                    "Password for the PKCS#12 truststore",
                )?;
                let trusted: Vec<TrustedCert<'_>> = records
                    .iter()
                    .map(|r| TrustedCert {
                        alias: &r.name,
                        cert_der: &r.certificate_der,
                    })
                    .collect();
                bundle::truststore_pkcs12(&trusted, &password, &Pkcs12Options::default())?
            } else {
                let ders: Vec<&[u8]> = records
                    .iter()
                    .map(|r| r.certificate_der.as_slice())
                    .collect();
                bundle::truststore_pem(&ders)?.into_bytes()
            };
            hsmsign::output::write_new(&out, &bytes, force)?;
            ctx.emit(
                format!(
                    "Wrote a {} truststore with {} CA certificate(s) to {}: {}",
                    if pkcs12 { "PKCS#12" } else { "PEM" },
                    records.len(),
                    out.display(),
                    records
                        .iter()
                        .map(|r| r.subject.clone())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                json!({"out": out, "format": if pkcs12 {"pkcs12"} else {"pem"}, "cas": cas}),
            );
            Ok(())
        }
        BundleCmd::TrustedKeys { cas, out, force } => trusted_keys(ctx, &cas, &out, force),
        BundleCmd::Js7Config {
            cert,
            role,
            alias,
            keystore,
            password_source,
        } => {
            let der = read_certificate(&cert)?;
            let alias = match &keystore {
                Some(path) => keystore_alias(ctx, path, password_source.as_deref(), &der)?,
                None => alias.unwrap_or_else(|| bundle::KEY_BUNDLE_ALIAS.to_string()),
            };
            let role = match role {
                Role::Controller => Js7Role::Controller,
                Role::Agent => Js7Role::Agent,
            };
            let text = bundle::js7_config(&der, role, &alias)?;
            let dn = bundle::subject_dn_rfc2253(&der)?;
            ctx.emit(
                text.trim_end(),
                json!({"private_conf": text, "distinguished_name": dn}),
            );
            Ok(())
        }
    }
}

/// `bundle trusted-keys`: every file is checked and reserved before the first is linked into
/// place, so a refusal leaves the directory as it was.
fn trusted_keys(ctx: &Ctx, cas: &[String], out: &std::path::Path, force: bool) -> CmdResult {
    let store = ctx.require_store()?;
    let mut records = Vec::new();
    for name in cas {
        let record = store
            .ca(name)?
            .ok_or_else(|| hsmsign::ca::CaError::UnknownCa(name.clone()))?;
        if records
            .iter()
            .any(|r: &hsmsign::store::CaRecord| r.name == record.name)
        {
            return Err(Failure::Usage(format!("--ca {name} is given twice")));
        }
        records.push(record);
    }
    let named: Vec<(&str, &[u8])> = records
        .iter()
        .map(|r| (r.name.as_str(), r.certificate_der.as_slice()))
        .collect();
    let files = bundle::trusted_key_files(&named)?;
    match std::fs::symlink_metadata(out) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Failure::Failed(anyhow::anyhow!(
                "{} exists and is not a directory: give the directory to fill (for example a new one, copied into config/private/trusted-x509-keys/ afterwards)",
                out.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(out)
                .map_err(|e| anyhow::anyhow!("cannot make the directory {}: {e}", out.display()))?;
        }
        Err(e) => {
            return Err(Failure::Failed(anyhow::anyhow!(
                "cannot inspect {}: {e}",
                out.display()
            )));
        }
    }
    // Files already there with one of the new subjects would displace, or be displaced by, the
    // new ones in JS7 (one certificate per DN): say so before writing.
    let existing = hsmsign::archive::read_trusted_source(out)
        .map(|s| s.entries)
        .unwrap_or_default();
    let targets: Vec<PathBuf> = files.iter().map(|f| out.join(&f.file_name)).collect();
    for entry in &existing {
        let Ok(der) = &entry.cert else { continue };
        let Ok(subject) = bundle::subject_dn_rfc2253(der) else {
            continue;
        };
        let ours = records.iter().any(|r| &r.certificate_der == der);
        if ours {
            continue;
        }
        if let Some(f) = files.iter().find(|f| f.subject == subject)
            && !targets
                .iter()
                .any(|t| t.display().to_string() == entry.name)
        {
            return Err(Failure::Failed(anyhow::anyhow!(
                "{} already holds a certificate for {subject} and {} would be a second one: JS7 keeps only one certificate per subject DN. Remove the old file first (after the rollover), or write into another directory",
                entry.name,
                f.file_name
            )));
        }
    }
    let mut reserved = Vec::new();
    for target in &targets {
        reserved.push(hsmsign::output::AtomicFile::create(target, force)?);
    }
    for (file, content) in reserved.into_iter().zip(&files) {
        hsmsign::output::write_reserved(file, content.pem.as_bytes())?;
    }
    let now = time::OffsetDateTime::now_utc();
    for r in &records {
        if r.not_after <= now {
            ctx.warn(format!(
                "CA {:?} has expired ({}): JS7 up to 2.5.12, 2.6.x, 2.7.6 and 2.8.1 reject what it signed, and before 2.5.9 one expired file disables X.509 verification altogether",
                r.name,
                hsmsign::x509::format_time(r.not_after)
            ));
        }
    }
    let mut text = format!(
        "Wrote {} trusted certificate file(s) into {}:",
        files.len(),
        out.display()
    );
    for f in &files {
        text.push_str(&format!("\n  {}  {}", f.file_name, f.subject));
    }
    text.push_str("\nCopy them into config/private/trusted-x509-keys/ of every Controller and Agent (JS7 reads the directory again without a restart).");
    ctx.emit(
        text,
        json!({
            "out": out,
            "files": files.iter().map(|f| json!({"file": f.file_name, "subject": f.subject})).collect::<Vec<_>>(),
        }),
    );
    Ok(())
}
