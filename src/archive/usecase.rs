//! `archive sign` as a request: checked by `validate()` before any token is touched, then signed
//! with the key on its token (on one or more sessions), recorded in the audit log before the
//! signed archive appears, and a failed signing recorded as such.

use std::path::PathBuf;

use super::{ArchiveError, SignOptions, SignSummary};
use crate::input::InputKind;
use crate::keys::{KeyAccess, operator};
use crate::signer::SignatureAlgorithm;
use crate::store::{AuditEntry, Store};

/// The most signing sessions one run opens.
pub const MAX_SESSIONS: usize = 64;

/// `archive sign`: sign every object of a JS7 export with an operator's key.
#[derive(Clone, Debug)]
pub struct ArchiveSign {
    /// The operator's key (`pkcs11:` URI or `yubikey:` slot).
    pub key: String,
    /// The operator's signing certificate (PEM or DER).
    pub cert: PathBuf,
    /// The archive exported from JOC Cockpit.
    pub input: PathBuf,
    /// The signed archive to write.
    pub out: PathBuf,
    /// JS7's name of the signature algorithm (default: the key's).
    pub algorithm: Option<String>,
    /// Replace signatures already in the archive.
    pub replace_signatures: bool,
    /// Replace an existing output file.
    pub force: bool,
    /// Refuse a signer certificate that JS7 would accept only with a warning.
    pub strict: bool,
    /// Signing sessions (`None`: what the token suggests).
    pub sessions: Option<usize>,
}

/// A checked [`ArchiveSign`].
#[derive(Debug)]
pub struct ValidArchiveSign {
    /// The algorithm asked for.
    pub algorithm: Option<SignatureAlgorithm>,
    /// The signer certificate, DER.
    pub cert_der: Vec<u8>,
}

impl ArchiveSign {
    /// Check the options, the key's name, the certificate, the input and the output, without a
    /// token.
    pub fn validate(&self, keys: &KeyAccess<'_>) -> Result<ValidArchiveSign, ArchiveError> {
        if let Some(n) = self.sessions
            && !(1..=MAX_SESSIONS).contains(&n)
        {
            return Err(ArchiveError::Usage(format!(
                "--sessions {n}: give 1 to {MAX_SESSIONS} (or leave it out for the token's default)"
            )));
        }
        let algorithm = self
            .algorithm
            .as_deref()
            .map(|a| {
                SignatureAlgorithm::from_java_name(a).ok_or_else(|| {
                    ArchiveError::Usage(format!(
                        "unknown --algorithm {a:?}: JS7 accepts SHA256withECDSA, SHA512withECDSA, SHA256withRSA, SHA512withRSA"
                    ))
                })
            })
            .transpose()?;
        keys.check_key_name(&self.key)?;
        let cert_der = crate::x509::read_certificate_file(&self.cert)?;
        drop(crate::input::open(&self.input, InputKind::Archive)?);
        crate::output::check_distinct(&[&self.out], &[&self.input, &self.cert])?;
        crate::output::check_new(&self.out, self.force)?;
        Ok(ValidArchiveSign {
            algorithm,
            cert_der,
        })
    }
}

/// What `archive sign` did.
#[derive(Debug)]
pub struct ArchiveSigned {
    /// The summary of the signed archive.
    pub summary: SignSummary,
    /// The signing key's name.
    pub key: String,
}

/// Sign the archive `req` names. `progress` is told (done, total) as objects are signed.
pub fn sign(
    keys: &KeyAccess<'_>,
    store: Option<&Store>,
    req: &ArchiveSign,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ArchiveSigned, ArchiveError> {
    let v = req.validate(keys)?;
    let handle = keys.open_key(&req.key, store, None)?;
    let touch = || keys.officer.touch();
    let (signing_key, workers, notices) = handle.signing_key_with_workers(req.sessions, &touch)?;
    for n in &notices {
        keys.officer.notice(n);
    }
    let n_sessions = workers.len().max(1);
    let options = SignOptions {
        algorithm: v.algorithm,
        replace_signatures: req.replace_signatures,
        strict: req.strict,
        ..Default::default()
    };
    let holder = handle.holder();
    let key_name = signing_key.name();
    // The audit record is committed before the signed archive appears at `out`.
    let mut record = |summary: &SignSummary| -> Result<(), String> {
        let Some(store) = store else { return Ok(()) };
        store
            .record(
                AuditEntry::new("archive.sign", operator(Some(&holder)))
                    .input_sha256("archive", sha256_bytes(&summary.input_sha256))
                    .output_sha256("signed archive", sha256_bytes(&summary.output_sha256))
                    .param("key", key_name.clone())
                    .param("signer", summary.signer_subject.clone())
                    .param("signer_cert_sha256", summary.signer_cert_sha256.clone())
                    .param("algorithm", summary.algorithm.clone())
                    .param("objects", summary.objects_signed.to_string())
                    .param("sessions", n_sessions.to_string())
                    .param("in", req.input.display().to_string())
                    .param("out", req.out.display().to_string()),
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let result = super::sign_archive_sessions(
        &req.input,
        &req.out,
        req.force,
        signing_key.as_ref(),
        workers,
        &v.cert_der,
        &options,
        progress,
        &mut record,
    );
    // A signing failure (the token, or a signature that does not verify) is recorded as a
    // failed attempt; nothing was written.
    if let (Err(e @ ArchiveError::Signing { .. }), Some(store)) = (&result, store) {
        let entry = AuditEntry::new("archive.sign", operator(Some(&holder)))
            .param("key", key_name.clone())
            .param("sessions", n_sessions.to_string())
            .param("in", req.input.display().to_string())
            .param("out", req.out.display().to_string())
            .failed(e.to_string());
        if let Err(audit) = store.record(entry) {
            keys.officer
                .notice(&format!("the failed signing could not be audited: {audit}"));
        }
    }
    let summary = result?;
    for w in &summary.warnings {
        keys.officer.notice(w);
    }
    drop(signing_key);
    handle.finish();
    Ok(ArchiveSigned {
        summary,
        key: key_name,
    })
}

/// A SHA-256 in lower-case hex, as the summary gives it, as bytes for the audit record.
fn sha256_bytes(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = hex
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    out
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
