//! `hsmsign archive sign|verify`: JS7 deployment archives (Security Level High).

use std::path::PathBuf;

use clap::Subcommand;
use hsmsign::archive::{self, ArchiveError, ObjectOutcome, SignOptions};
use hsmsign::input::InputKind;
use hsmsign::signer::SignatureAlgorithm;
use hsmsign::store::AuditEntry;
use serde_json::json;

use super::progress::Progress;
use super::{CmdResult, Ctx, Failure, read_certificate};

/// Archive commands.
#[derive(Subcommand, Debug)]
pub enum ArchiveCmd {
    /// Sign every workflow and job resource of a JS7 export with an operator's token key.
    Sign {
        /// The operator's signing key.
        #[arg(long, value_name = "URI")]
        key: String,
        /// The operator's signing certificate (PEM or DER), as stored in their JOC profile.
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// The archive exported from JOC Cockpit (.zip or .tar.gz).
        #[arg(long = "in", value_name = "ARCHIVE")]
        input: PathBuf,
        /// The signed archive to write (same format; never overwrites without --force).
        #[arg(long, value_name = "ARCHIVE")]
        out: PathBuf,
        /// SHA256withECDSA (EC default), SHA512withECDSA, SHA256withRSA (RSA default), SHA512withRSA.
        #[arg(long)]
        algorithm: Option<String>,
        /// Replace .sig entries already in the archive instead of refusing.
        #[arg(long)]
        replace_signatures: bool,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
    },
    /// Answer "would a JS7 Controller or Agent accept this archive?".
    Verify {
        /// The signed archive.
        #[arg(long = "in", value_name = "ARCHIVE")]
        input: PathBuf,
        /// A trusted-x509-keys directory, or one PEM file of trusted certificates.
        #[arg(long, value_name = "DIR|FILE")]
        trusted: PathBuf,
        /// The signer's certificate (what JOC Cockpit sends along with each object).
        #[arg(long, value_name = "FILE")]
        cert: Option<PathBuf>,
        /// Also check what JS7 leaves out: validity dates, key usage, a real CA as issuer.
        #[arg(long)]
        strict: bool,
    },
}

fn sha256_bytes(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = hex
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    out
}

pub fn run(ctx: &Ctx, cmd: ArchiveCmd) -> CmdResult {
    match cmd {
        ArchiveCmd::Sign {
            key,
            cert,
            input,
            out,
            algorithm,
            replace_signatures,
            force,
        } => {
            let algorithm = algorithm
                .map(|a| {
                    SignatureAlgorithm::from_java_name(&a).ok_or_else(|| {
                        Failure::Usage(format!(
                            "unknown --algorithm {a:?}: JS7 accepts SHA256withECDSA, SHA512withECDSA, SHA256withRSA, SHA512withRSA"
                        ))
                    })
                })
                .transpose()?;
            // Everything that can be checked without the token, first.
            ctx.check_key_name(&key)?;
            let cert_der = read_certificate(&cert)?;
            drop(hsmsign::input::open(&input, InputKind::Archive)?);
            hsmsign::output::check_distinct(&[&out], &[&input, &cert])?;
            hsmsign::output::check_new(&out, force)?;
            let store = ctx.store()?;
            let handle = ctx.open_key(&key, store.as_ref(), None)?;
            let signing_key = handle.signing_key()?;
            let options = SignOptions {
                algorithm,
                replace_signatures,
                ..Default::default()
            };
            let mut progress = Progress::new("objects signed", ctx.json);
            let holder = handle.holder();
            // The audit record is committed before the signed archive appears at --out.
            let mut record = |summary: &archive::SignSummary| -> Result<(), String> {
                let Some(store) = &store else { return Ok(()) };
                store
                    .record(
                        AuditEntry::new("archive.sign", ctx.operator(Some(&holder)))
                            .input_sha256("archive", sha256_bytes(&summary.input_sha256))
                            .output_sha256("signed archive", sha256_bytes(&summary.output_sha256))
                            .param("key", signing_key.name())
                            .param("signer", summary.signer_subject.clone())
                            .param("signer_cert_sha256", summary.signer_cert_sha256.clone())
                            .param("algorithm", summary.algorithm.clone())
                            .param("objects", summary.objects_signed.to_string())
                            .param("in", input.display().to_string())
                            .param("out", out.display().to_string()),
                    )
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            };
            let summary = archive::sign_archive_recorded(
                &input,
                &out,
                force,
                signing_key.as_ref(),
                &cert_der,
                &options,
                &mut |done, total| progress.update(done, total),
                &mut record,
            )?;
            for w in &summary.warnings {
                ctx.warn(w);
            }
            ctx.emit(
                format!(
                    "Signed {} objects of {} ({}) with {} as {}\n  signer: {} (certificate SHA-256 {})\n  wrote {} (SHA-256 {})\n  Import it into JOC Cockpit with signature algorithm {}.",
                    summary.objects_signed,
                    input.display(),
                    summary.format,
                    summary.algorithm,
                    signing_key.name(),
                    summary.signer_subject,
                    summary.signer_cert_sha256,
                    out.display(),
                    summary.output_sha256,
                    summary.algorithm
                ),
                json!(summary),
            );
            drop(signing_key);
            handle.finish();
            Ok(())
        }
        ArchiveCmd::Verify {
            input,
            trusted,
            cert,
            strict,
        } => {
            let trusted_certs = archive::load_trusted(&trusted)?;
            let signer = cert.as_deref().map(read_certificate).transpose()?;
            let report = match archive::verify_archive(
                &input,
                &trusted_certs,
                signer.as_deref(),
                strict,
                &Default::default(),
            ) {
                Ok(r) => r,
                Err(e @ ArchiveError::UntrustedSigner { .. }) => {
                    if ctx.json {
                        println!("{}", json!({"accepted": false, "error": e.to_string()}));
                    }
                    return Err(Failure::Verification(e.to_string()));
                }
                Err(e) => return Err(e.into()),
            };
            let mut text = String::new();
            if let (Some(s), Some(t)) = (&report.signer, &report.trusted_by) {
                text.push_str(&format!("signer {s}\n  trusted through {t}\n"));
            }
            for o in &report.objects {
                match &o.outcome {
                    ObjectOutcome::Ok { algorithm, .. } => {
                        text.push_str(&format!("OK       {} ({algorithm})\n", o.object))
                    }
                    ObjectOutcome::Bad { reason } => {
                        text.push_str(&format!("BAD      {}: {reason}\n", o.object))
                    }
                    ObjectOutcome::Unsigned => {
                        text.push_str(&format!("UNSIGNED {}: no .sig entry\n", o.object))
                    }
                }
            }
            for s in &report.orphan_signatures {
                text.push_str(&format!("ORPHAN   {s}: a signature without its object\n"));
            }
            for p in &report.certificate_problems {
                text.push_str(&format!("STRICT   {p}\n"));
            }
            for n in &report.notes {
                text.push_str(&format!("note: {n}\n"));
            }
            let accepted = report.accepted();
            let failures = report.failures().count()
                + report.orphan_signatures.len()
                + report.certificate_problems.len();
            text.push_str(&if accepted {
                format!(
                    "ACCEPTED: all {} signed objects verify; a JS7 Controller/Agent with these trusted certificates would accept them.",
                    report.objects.len()
                )
            } else {
                format!("REJECTED: {failures} problem(s) above.")
            });
            let mut doc = json!(report);
            doc["accepted"] = json!(accepted);
            ctx.emit(text.trim_end(), doc);
            if accepted {
                Ok(())
            } else {
                Err(Failure::Verification(format!(
                    "{} would not be accepted: {failures} problem(s)",
                    input.display()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_digest_to_bytes() {
        let h = "00ff10".to_string() + &"ab".repeat(29);
        let b = super::sha256_bytes(&h);
        assert_eq!(&b[..3], &[0x00, 0xff, 0x10]);
        assert_eq!(b[31], 0xab);
    }
}
