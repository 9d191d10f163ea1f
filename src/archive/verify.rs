//! Verifying a signed deployment archive the way a JS7 Controller or Agent does.
//!
//! The rules (JS7 format notes, section 2): the signer certificate is either self-issued, and
//! then a trusted certificate with the same subject DN supplies the key, or it is signed
//! directly by a trusted certificate (no chain building). JS7 treats a trusted certificate as
//! a CA when it has a BasicConstraints extension at all, even with cA=false; this check follows
//! that. Key usage and validity dates are not checked by JS7 by default; `strict` adds them,
//! and requires the issuer to really be a CA.

use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use base64::Engine;
use sha2::Digest;

use super::cert::Cert;
use super::read::{Entry, read_archive};
use super::{ArchiveError, ArchiveFormat, JS7_ALGORITHMS, Limits, SIG_SUFFIX, is_signed_object};
use crate::signer::{HashAlgorithm, PublicKey, SignatureAlgorithm};

/// Largest `.sig` entry read (an RSA-16384 signature in Base64 is under 3 KiB).
const MAX_SIG_LEN: usize = 16 << 10;

/// Base64 as Java's MIME decoder takes it: line breaks allowed, padding optional.
const MIME_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The verdict on one object that JS7 requires to be signed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ObjectOutcome {
    /// The signature verifies.
    Ok {
        /// Java name of the algorithm it verified with.
        algorithm: String,
        /// Subject DN of the certificate whose key verified it.
        key: String,
    },
    /// The signature is there but fails; the reason names the check that failed.
    Bad {
        /// What failed.
        reason: String,
    },
    /// The object has no `.sig` entry.
    Unsigned,
}

/// One object and its verdict.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ObjectCheck {
    /// The object's entry name.
    pub object: String,
    /// Its signature entry's name, when there is one.
    pub signature: Option<String>,
    /// The verdict.
    pub outcome: ObjectOutcome,
}

/// The answer of [`verify_archive`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct VerifyReport {
    /// The archive's format.
    pub format: ArchiveFormat,
    /// Subject DN of the signer certificate, if one was given.
    pub signer: Option<String>,
    /// Subject DN of the trusted certificate that vouches for the signer, if a signer was given.
    pub trusted_by: Option<String>,
    /// Every signed object, in archive order.
    pub objects: Vec<ObjectCheck>,
    /// `.sig` entries with no object next to them.
    pub orphan_signatures: Vec<String>,
    /// Certificate findings that fail strict mode (empty without `strict`).
    pub certificate_problems: Vec<String>,
    /// Findings JS7 tolerates by default, worth knowing.
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// True if every object is signed and verifies, no signature is orphaned, and (in
    /// strict mode) no certificate problem was found.
    pub fn accepted(&self) -> bool {
        self.objects
            .iter()
            .all(|o| matches!(o.outcome, ObjectOutcome::Ok { .. }))
            && self.orphan_signatures.is_empty()
            && self.certificate_problems.is_empty()
    }

    /// The objects whose verdict is not OK.
    pub fn failures(&self) -> impl Iterator<Item = &ObjectCheck> {
        self.objects
            .iter()
            .filter(|o| !matches!(o.outcome, ObjectOutcome::Ok { .. }))
    }
}

/// Check `input` as a JS7 Controller or Agent would, with the trusted certificates `trusted`
/// (DER) and the signer certificate `signer_cert` (DER) that JOC Cockpit sends along. Without
/// a signer certificate each trusted certificate's own key is tried. `strict` adds validity
/// dates, keyUsage digitalSignature on the signer, and a real CA as issuer.
///
/// An error means the question could not be answered (unreadable or hostile archive,
/// unusable certificates, a signer no trusted certificate vouches for); per-object failures
/// are in the report.
pub fn verify_archive(
    input: &Path,
    trusted: &[Vec<u8>],
    signer_cert: Option<&[u8]>,
    strict: bool,
    limits: &Limits,
) -> Result<VerifyReport, ArchiveError> {
    let trusted: Vec<Cert> = trusted
        .iter()
        .enumerate()
        .map(|(i, der)| Cert::parse(der, &format!("trusted #{}", i + 1)))
        .collect::<Result<_, _>>()?;
    if trusted.is_empty() {
        return Err(ArchiveError::Certificate {
            which: "list of trusted certificates".into(),
            reason: "is empty; give the trusted-x509-keys directory or a PEM file of trusted certificates".into(),
        });
    }
    let now = SystemTime::now();
    // Certificate findings fail strict mode and are only notes otherwise.
    let mut findings = Vec::new();
    let mut notes = Vec::new();

    let mut keys: Vec<(String, PublicKey)> = Vec::new();
    let mut signer_subject = None;
    let mut trusted_by = None;
    match signer_cert {
        Some(der) => {
            let signer = Cert::parse(der, "of the signer")?;
            let (anchor, key) = trust_signer(&signer, &trusted, strict)?;
            signer_subject = Some(signer.subject.clone());
            trusted_by = Some(anchor.subject.clone());
            keys.push(key);
            if let Some(p) = signer.validity_problem(now) {
                findings.push(format!("signer {p}"));
            }
            if let Some(p) = anchor.validity_problem(now) {
                findings.push(format!("trusted {p}"));
            }
            if signer.digital_signature_allowed() == Some(false) {
                findings.push(format!(
                    "signer certificate {} has keyUsage without digitalSignature",
                    signer.subject
                ));
            }
        }
        None => {
            for t in &trusted {
                match t.public_key() {
                    Ok(k) => keys.push((t.subject.clone(), k)),
                    Err(e) => notes.push(format!(
                        "trusted certificate {} has a key hsmsign cannot use: {e}",
                        t.subject
                    )),
                }
            }
        }
    }

    // Stream the archive once: digests of the objects, the signature texts.
    let mut digests: Vec<(String, Vec<u8>, Vec<u8>)> = Vec::new();
    let mut sigs: HashMap<String, Result<Vec<u8>, String>> = HashMap::new();
    let mut sig_order: Vec<String> = Vec::new();
    let format = read_archive(input, limits, &mut |e: &Entry, data: &[u8]| {
        if e.is_dir {
            return Ok(());
        }
        if is_signed_object(&e.name) {
            digests.push((
                e.name.clone(),
                HashAlgorithm::Sha256.digest(data),
                sha2::Sha512::digest(data).to_vec(),
            ));
        } else if e.name.ends_with(SIG_SUFFIX) {
            sigs.insert(e.name.clone(), decode_sig(data));
            sig_order.push(e.name.clone());
        }
        Ok(())
    })?;

    let mut used_keys = Vec::new();
    let mut objects = Vec::new();
    for (name, d256, d512) in &digests {
        let sig_entry = format!("{name}{SIG_SUFFIX}");
        let (signature, outcome) = match sigs.get(&sig_entry) {
            None => (None, ObjectOutcome::Unsigned),
            Some(Err(reason)) => (
                Some(sig_entry.clone()),
                ObjectOutcome::Bad {
                    reason: format!("{sig_entry}: {reason}"),
                },
            ),
            Some(Ok(sig)) => {
                let outcome = check_signature(&keys, sig, d256, d512, &sig_entry);
                if let ObjectOutcome::Ok { key, .. } = &outcome
                    && !used_keys.contains(key)
                {
                    used_keys.push(key.clone());
                }
                (Some(sig_entry.clone()), outcome)
            }
        };
        objects.push(ObjectCheck {
            object: name.clone(),
            signature,
            outcome,
        });
    }
    let objects_by_name: std::collections::HashSet<&str> =
        digests.iter().map(|(n, _, _)| n.as_str()).collect();
    let orphan_signatures = sig_order
        .into_iter()
        .filter(|s| {
            s.strip_suffix(SIG_SUFFIX)
                .is_none_or(|base| !objects_by_name.contains(base))
        })
        .collect();

    if signer_cert.is_none() {
        // The trusted certificates themselves signed: check the ones that were used.
        for t in trusted.iter().filter(|t| used_keys.contains(&t.subject)) {
            if let Some(p) = t.validity_problem(now) {
                findings.push(format!("signing {p}"));
            }
            if t.digital_signature_allowed() == Some(false) {
                findings.push(format!(
                    "signing certificate {} has keyUsage without digitalSignature",
                    t.subject
                ));
            }
        }
    }
    let problems = if strict {
        findings
    } else {
        notes.extend(findings);
        Vec::new()
    };
    Ok(VerifyReport {
        format,
        signer: signer_subject,
        trusted_by,
        objects,
        orphan_signatures,
        certificate_problems: problems,
        notes,
    })
}

/// Find the trusted certificate that vouches for `signer` and the key that verifies the
/// objects, by JS7's rules.
fn trust_signer<'t>(
    signer: &Cert,
    trusted: &'t [Cert],
    strict: bool,
) -> Result<(&'t Cert, (String, PublicKey)), ArchiveError> {
    let untrusted = |reason: String| ArchiveError::UntrustedSigner {
        subject: signer.subject.clone(),
        issuer: signer.issuer.clone(),
        reason,
        trusted: trusted
            .iter()
            .map(|t| t.subject.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    };
    if signer.self_issued() {
        // JS7 looks the subject up among the trusted certificates and verifies with that one.
        let anchor = trusted.iter().find(|t| t.same_subject(signer)).ok_or_else(|| {
            untrusted(
                "it is self-issued and no trusted certificate has its subject DN; put it into trusted-x509-keys"
                    .into(),
            )
        })?;
        let key = anchor.public_key().map_err(|e| {
            untrusted(format!(
                "the matching trusted certificate's key is unusable: {e}"
            ))
        })?;
        return Ok((anchor, (anchor.subject.clone(), key)));
    }
    let mut reasons = Vec::new();
    for t in trusted.iter().filter(|t| t.is_issuer_name_of(signer)) {
        if let Err(e) = signer.verify_issued_by(t) {
            reasons.push(format!("{}: {e}", t.subject));
            continue;
        }
        if strict && !t.is_ca() {
            reasons.push(format!(
                "{} issued it but is not a CA (BasicConstraints cA=true); strict mode wants a real CA",
                t.subject
            ));
            continue;
        }
        if !t.has_basic_constraints() {
            reasons.push(format!(
                "{} issued it but has no BasicConstraints extension, so JS7 does not treat it as a CA",
                t.subject
            ));
            continue;
        }
        let key = signer
            .public_key()
            .map_err(|e| untrusted(format!("its key is unusable: {e}")))?;
        return Ok((t, (signer.subject.clone(), key)));
    }
    if reasons.is_empty() {
        reasons.push(
            "no trusted certificate is its issuer; JS7 does not build chains, so the certificate that \
             signed it directly (e.g. the intermediate CA) must be in trusted-x509-keys"
                .into(),
        );
    }
    Err(untrusted(reasons.join("; ")))
}

/// Decode a `.sig` entry as JS7 does (Base64, line breaks tolerated).
fn decode_sig(data: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() > MAX_SIG_LEN {
        return Err(format!("larger than {MAX_SIG_LEN} bytes, not a signature"));
    }
    let compact: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err("empty".into());
    }
    MIME_BASE64
        .decode(&compact)
        .map_err(|e| format!("not Base64 ({e})"))
}

/// Try each key with each algorithm JS7 accepts for it.
fn check_signature(
    keys: &[(String, PublicKey)],
    sig: &[u8],
    d256: &[u8],
    d512: &[u8],
    sig_entry: &str,
) -> ObjectOutcome {
    for (label, key) in keys {
        for alg in JS7_ALGORITHMS
            .into_iter()
            .filter(|a| a.fits(key.algorithm()))
        {
            let digest = match alg.hash() {
                HashAlgorithm::Sha256 => d256,
                _ => d512,
            };
            if key.verify_digest(alg, digest, sig).is_ok() {
                return ObjectOutcome::Ok {
                    algorithm: alg.java_name().to_owned(),
                    key: label.clone(),
                };
            }
        }
    }
    let tried: Vec<&str> = keys.iter().map(|(l, _)| l.as_str()).collect();
    ObjectOutcome::Bad {
        reason: format!(
            "{sig_entry} does not verify over the object's bytes with the key of {} ({})",
            tried.join(" or "),
            JS7_ALGORITHMS
                .iter()
                .map(|a: &SignatureAlgorithm| a.java_name())
                .collect::<Vec<_>>()
                .join("/")
        ),
    }
}
