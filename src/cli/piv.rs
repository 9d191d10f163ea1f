//! `key generate|inspect|public|attest` for YubiKey slots used natively (`yubikey:slot=9c`).

use std::path::PathBuf;

use hsmsign::encoding::pem_encode;
use hsmsign::keys::piv::PivUri;
use serde_json::json;

use super::{CmdResult, Ctx, Failure};
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
