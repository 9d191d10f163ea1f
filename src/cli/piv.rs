//! `key generate|inspect|public|attest` for YubiKey slots used natively (`yubikey:slot=9c`).

use std::path::PathBuf;

use hsmsign::encoding::pem_encode;
use hsmsign::keys::piv::{ManagementKey, PivUri};
use hsmsign::keys::pkcs11::{PinSource, TokenError};
use hsmsign::signer::KeyAlgorithm;
use hsmsign::store::AuditEntry;
use serde_json::json;

use super::{CmdResult, Ctx, Failure, prompt};
use hsmsign::keys::KeyHandle;

/// Options of `key generate` that only YubiKeys have.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct PivGenerateArgs {
    /// YubiKey PIN policy: once (default) or always.
    #[arg(long, value_name = "POLICY")]
    pub pin_policy: Option<String>,
    /// YubiKey touch policy: never (default), always or cached.
    #[arg(long, value_name = "POLICY")]
    pub touch_policy: Option<String>,
    /// Where the YubiKey management key comes from (hex; prompt, env:, file:, fd:), or
    /// `protected` for a PIN-protected management key.
    #[arg(long, value_name = "SRC")]
    pub management_key_source: Option<String>,
    /// Allow the factory-default management key (then change it: it is public).
    #[arg(long)]
    pub allow_default_credentials: bool,
}

fn policies(args: &PivGenerateArgs) -> Result<(yubikey::PinPolicy, yubikey::TouchPolicy), Failure> {
    let pin = match args.pin_policy.as_deref().unwrap_or("once") {
        "once" => yubikey::PinPolicy::Once,
        "always" => yubikey::PinPolicy::Always,
        other => {
            return Err(Failure::Usage(format!(
                "--pin-policy {other:?}: use once or always (never is refused: a key anyone holding the YubiKey could use)"
            )));
        }
    };
    let touch = match args.touch_policy.as_deref().unwrap_or("never") {
        "never" => yubikey::TouchPolicy::Never,
        "always" => yubikey::TouchPolicy::Always,
        "cached" => yubikey::TouchPolicy::Cached,
        other => {
            return Err(Failure::Usage(format!(
                "--touch-policy {other:?}: use never, always or cached"
            )));
        }
    };
    Ok((pin, touch))
}

fn management_key(ctx: &Ctx, args: &PivGenerateArgs) -> Result<ManagementKey, Failure> {
    match args.management_key_source.as_deref() {
        Some("protected") => Ok(ManagementKey::Protected),
        Some(src) => {
            let source = ctx
                .keys
                .check_pin_source(PinSource::parse(src).map_err(TokenError::from)?)?;
            Ok(ManagementKey::Given(
                source
                    .read("YubiKey management key (hex)", &prompt)
                    .map_err(TokenError::from)?,
            ))
        }
        None if args.allow_default_credentials => {
            ctx.warn(
                "using the factory-default management key: change it now (`ykman piv access change-management-key --generate --protect`)",
            );
            Ok(ManagementKey::FactoryDefault)
        }
        None => Err(hsmsign::keys::piv::PivError::NoManagementKey.into()),
    }
}

/// `key generate --key yubikey:slot=..`.
pub(super) fn generate(
    ctx: &Ctx,
    key: &str,
    algorithm: KeyAlgorithm,
    args: &PivGenerateArgs,
) -> CmdResult {
    let uri = PivUri::parse(key)?;
    let (pin_policy, touch_policy) = policies(args)?;
    if matches!(algorithm, KeyAlgorithm::Rsa(_)) {
        return Err(Failure::Usage(
            "YubiKey keys made by hsmsign are ec-p256 or ec-p384".into(),
        ));
    }
    let mgm = management_key(ctx, args)?;
    let store = ctx.store()?;
    let handle = ctx.keys.open_key(key, store.as_ref(), None)?;
    let KeyHandle::Piv { dev, .. } = &handle else {
        return Err(Failure::Usage(format!("{key} is not a YubiKey slot")));
    };
    if dev.public_key(&uri).is_ok() {
        return Err(Failure::Failed(anyhow::anyhow!(
            "slot {:02x} of YubiKey {} already holds a key; hsmsign never replaces a key. Use another slot (82-95 are free retired slots), or clear it deliberately with ykman",
            uri.slot,
            dev.serial()
        )));
    }
    dev.authenticate(&mgm)?;
    let public = dev.generate(&uri, algorithm, pin_policy, touch_policy)?;
    let name = handle.key_name()?;
    if let Some(store) = &store {
        store.record(
            AuditEntry::new(
                "key.generate",
                hsmsign::keys::operator(Some(&handle.holder())),
            )
            .param("key", name.clone())
            .param("algorithm", algorithm.to_string())
            .param("pin_policy", format!("{pin_policy:?}"))
            .param("touch_policy", format!("{touch_policy:?}"))
            .output("public key", public.spki_der()),
        )?;
    }
    ctx.emit(
        format!(
            "Generated {algorithm} key in slot {:02x} of YubiKey {} (PIN policy {pin_policy:?}, touch policy {touch_policy:?}); it can never leave the YubiKey.\n{name}\n{}",
            uri.slot,
            dev.serial(),
            public.to_pem().trim_end()
        ),
        json!({"key": {"uri": name, "algorithm": algorithm.to_string()}, "public_key_pem": public.to_pem()}),
    );
    handle.finish();
    Ok(())
}

/// `key inspect` / `key public` / `key attest` on a YubiKey slot.
pub(super) fn inspect(ctx: &Ctx, key: &str) -> CmdResult {
    let handle = ctx.keys.open_key(key, None, None)?;
    let public = handle.public_key()?;
    let (verdict, _) = handle.provenance()?;
    let name = handle.key_name()?;
    ctx.emit(
        format!(
            "{name}\n  algorithm: {}\n  public key SHA-256: {}\nverdict: {verdict}",
            public.algorithm(),
            public.fingerprint_hex()
        ),
        json!({"key": {"uri": name, "algorithm": public.algorithm().to_string(), "public_key_sha256": public.fingerprint_hex()}, "verdict": verdict}),
    );
    handle.finish();
    Ok(())
}

/// `key attest --key yubikey:slot=.. [--out FILE]`: the attestation, verified to Yubico's roots.
pub(super) fn attest(ctx: &Ctx, key: &str, out: Option<PathBuf>, force: bool) -> CmdResult {
    let uri = PivUri::parse(key)?;
    if let Some(o) = &out {
        hsmsign::output::check_new(o, force)?;
    }
    let handle = ctx.keys.open_key(key, None, None)?;
    let KeyHandle::Piv { dev, .. } = &handle else {
        return Err(Failure::Usage(format!("{key} is not a YubiKey slot")));
    };
    let public = dev.public_key(&uri)?;
    let (att, f9) = dev.attestation(&uri)?;
    let verified = match hsmsign::attest::verify_attestation(
        &att,
        &f9,
        Some(&public),
        std::time::SystemTime::now(),
    ) {
        Ok(v) => v,
        Err(e) => return Err(Failure::Verification(e.to_string())),
    };
    if let Some(o) = &out {
        let pem = format!(
            "{}{}",
            pem_encode("CERTIFICATE", &att),
            pem_encode("CERTIFICATE", &f9)
        );
        hsmsign::output::write_new(o, pem.as_bytes(), force)?;
    }
    ctx.emit(
        format!("attestation OK: {}", verified.verdict()),
        json!({"verdict": verified.verdict(), "serial": verified.serial, "out": out}),
    );
    handle.finish();
    Ok(())
}
