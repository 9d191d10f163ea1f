//! `hsmsign attest verify`: check a YubiKey PIV attestation brought from elsewhere.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use hsmsign::attest::{self, AttestError};
use hsmsign::input::InputKind;
use hsmsign::signer::PublicKey;
use serde_json::json;

use super::{CmdResult, Ctx, Failure};

/// Attestation commands.
#[derive(Subcommand, Debug)]
pub(crate) enum AttestCmd {
    /// Verify a slot attestation certificate and its device (slot f9) certificate against
    /// Yubico's roots built into hsmsign.
    Verify {
        /// The slot attestation certificate (PEM or DER).
        #[arg(long, value_name = "FILE")]
        attestation: PathBuf,
        /// The device's slot-f9 attestation certificate (PEM or DER).
        #[arg(long, value_name = "FILE")]
        intermediate: PathBuf,
        /// A public key (PEM or DER SubjectPublicKeyInfo) that must be the attested one.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
    },
}

/// Attestations, their intermediates and public keys are all small DER/PEM objects.
fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    Ok(hsmsign::input::read(path, InputKind::Attestation)?)
}

/// A public key from a PEM `PUBLIC KEY` block or DER.
pub(super) fn read_public_key(path: &Path) -> Result<PublicKey, Failure> {
    let bytes = read(path)?;
    let der = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN") => {
            let (label, der) = der::pem::decode_vec(text.trim().as_bytes())
                .with_context(|| format!("{} is not valid PEM", path.display()))?;
            if label != "PUBLIC KEY" {
                return Err(Failure::Failed(anyhow::anyhow!(
                    "{} holds a {label} PEM block, not a PUBLIC KEY; export it with `openssl pkey -pubout` or `hsmsign key public`",
                    path.display()
                )));
            }
            der
        }
        _ => bytes,
    };
    Ok(PublicKey::from_spki_der(&der).with_context(|| format!("public key {}", path.display()))?)
}

pub(super) fn run(ctx: &Ctx, cmd: AttestCmd) -> CmdResult {
    match cmd {
        AttestCmd::Verify {
            attestation,
            intermediate,
            public_key,
        } => {
            let what_a = format!("attestation file {}", attestation.display());
            let what_f9 = format!("intermediate (f9) file {}", intermediate.display());
            let a = attest::certificate_der(&read(&attestation)?, &what_a)?;
            let f9 = attest::certificate_der(&read(&intermediate)?, &what_f9)?;
            let expected = public_key.as_deref().map(read_public_key).transpose()?;
            match attest::verify_attestation(
                &a,
                &f9,
                expected.as_ref(),
                std::time::SystemTime::now(),
            ) {
                Ok(att) => {
                    let mut text = format!("attestation OK: {}\n  chain:", att.verdict());
                    for s in &att.chain {
                        text.push_str(&format!("\n    {s}"));
                    }
                    text.push_str(&format!(
                        "\n  attested public key SHA-256: {}",
                        att.public_key.fingerprint_hex()
                    ));
                    if expected.is_some() {
                        text.push_str("\n  matches the given public key");
                    }
                    ctx.emit(
                        text,
                        json!({
                            "ok": true,
                            "verdict": att.verdict(),
                            "slot": att.slot.to_string(),
                            "serial": att.serial,
                            "firmware": att.firmware.to_string(),
                            "pin_policy": att.pin_policy.map(|p| p.to_string()),
                            "touch_policy": att.touch_policy.map(|p| p.to_string()),
                            "form_factor": att.form_factor.map(|f| f.to_string()),
                            "root": att.root.to_string(),
                            "chain": att.chain,
                            "public_key_sha256": att.public_key.fingerprint_hex(),
                            "public_key_matches": expected.is_some(),
                        }),
                    );
                    Ok(())
                }
                // Unreadable input is an input error; everything else is a failed verification.
                Err(
                    e @ (AttestError::Malformed { .. }
                    | AttestError::WrongPemType { .. }
                    | AttestError::SeveralPemBlocks { .. }),
                ) => Err(Failure::Failed(e.into())),
                Err(e) => {
                    if ctx.json {
                        println!("{}", json!({"ok": false, "error": e.to_string()}));
                    }
                    Err(Failure::Verification(e.to_string()))
                }
            }
        }
    }
}
