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

#[cfg(test)]
// In tests a panic is the failure report.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::archive::testutil::*;
    use crate::archive::{SignOptions, load_trusted_dir, load_trusted_pem_file, sign_archive};
    use std::path::PathBuf;

    type Entries = Vec<(String, Vec<u8>)>;

    /// A signed archive of the sample entries (zip or tar.gz).
    fn signed(pki: &Pki, dir: &Path, zip: bool, cert: &[u8]) -> PathBuf {
        let inp = dir.join(if zip { "in.zip" } else { "in.tar.gz" });
        if zip {
            write_zip(&inp, &sample_entries());
        } else {
            write_tar_gz(&inp, &sample_entries());
        }
        let out = dir.join(if zip { "signed.zip" } else { "signed.tar.gz" });
        sign_archive(
            &inp,
            &out,
            false,
            &pki.key,
            cert,
            &SignOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
        out
    }

    /// Rewrite an archive's entries (as a zip) after `change`.
    fn rewrite(src: &Path, dst: &Path, change: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) {
        let mut entries: Vec<(String, Vec<u8>)> = list_with_crates(src)
            .into_iter()
            .map(|(n, _, d)| (n, d))
            .collect();
        change(&mut entries);
        write_zip(dst, &entries);
    }

    fn verify(
        p: &Path,
        trusted: &[Vec<u8>],
        signer: Option<&[u8]>,
        strict: bool,
    ) -> Result<VerifyReport, ArchiveError> {
        verify_archive(p, trusted, signer, strict, &Limits::default())
    }

    fn outcome<'r>(r: &'r VerifyReport, object: &str) -> &'r ObjectOutcome {
        &r.objects
            .iter()
            .find(|o| o.object == object)
            .unwrap()
            .outcome
    }

    #[test]
    fn signer_issued_by_a_trusted_intermediate_passes() {
        let pki = Pki::new(21);
        let d = tempfile::tempdir().unwrap();
        for zip in [true, false] {
            let p = signed(&pki, d.path(), zip, &pki.signer);
            let r = verify(
                &p,
                std::slice::from_ref(&pki.intermediate),
                Some(&pki.signer),
                false,
            )
            .unwrap();
            assert!(r.accepted(), "{r:?}");
            assert_eq!(r.objects.len(), 3);
            assert_eq!(r.trusted_by.as_deref(), Some("CN=Test Intermediate CA"));
            for o in &r.objects {
                assert_eq!(
                    o.outcome,
                    ObjectOutcome::Ok {
                        algorithm: "SHA256withECDSA".into(),
                        key: "CN=Test Signer".into()
                    }
                );
            }
            // Strict: dates valid, digitalSignature present, the intermediate is a real CA.
            let r = verify(
                &p,
                std::slice::from_ref(&pki.intermediate),
                Some(&pki.signer),
                true,
            )
            .unwrap();
            assert!(r.accepted(), "{r:?}");
        }
    }

    #[test]
    fn no_chain_building_root_alone_is_not_enough() {
        let pki = Pki::new(22);
        let d = tempfile::tempdir().unwrap();
        let p = signed(&pki, d.path(), true, &pki.signer);
        let err = verify(
            &p,
            std::slice::from_ref(&pki.root),
            Some(&pki.signer),
            false,
        )
        .unwrap_err();
        assert!(matches!(err, ArchiveError::UntrustedSigner { .. }), "{err}");
        assert!(err.to_string().contains("intermediate"), "{err}");
    }

    #[test]
    fn untrusted_signer_fails() {
        let pki = Pki::new(23);
        let other = Pki::new(24);
        let d = tempfile::tempdir().unwrap();
        let p = signed(&pki, d.path(), false, &pki.signer);
        // Same issuer name, different CA key: the signature on the signer certificate fails.
        let err = verify(
            &p,
            std::slice::from_ref(&other.intermediate),
            Some(&pki.signer),
            false,
        )
        .unwrap_err();
        assert!(matches!(err, ArchiveError::UntrustedSigner { .. }), "{err}");
        assert!(err.to_string().contains("does not verify"), "{err}");
        // Without a signer certificate, another key verifies nothing.
        let r = verify(&p, std::slice::from_ref(&other.self_signed), None, false).unwrap();
        assert!(!r.accepted());
        assert_eq!(r.failures().count(), 3);
    }

    #[test]
    fn self_issued_signer_and_trusted_keys_alone() {
        let pki = Pki::new(25);
        let d = tempfile::tempdir().unwrap();
        let p = signed(&pki, d.path(), true, &pki.self_signed);
        let trusted = vec![pki.root.clone(), pki.self_signed.clone()];
        let r = verify(&p, &trusted, Some(&pki.self_signed), false).unwrap();
        assert!(r.accepted(), "{r:?}");
        assert_eq!(r.trusted_by.as_deref(), Some("CN=Self Signer"));
        let r = verify(&p, &trusted, None, false).unwrap();
        assert!(r.accepted(), "{r:?}");
        assert!(
            matches!(outcome(&r, "z.workflow.json"), ObjectOutcome::Ok { key, .. } if key == "CN=Self Signer")
        );
    }

    #[test]
    fn tampering_is_reported_per_object() {
        let pki = Pki::new(26);
        let d = tempfile::tempdir().unwrap();
        let p = signed(&pki, d.path(), true, &pki.signer);
        let trusted = std::slice::from_ref(&pki.intermediate);
        let check = |name: &str, change: &dyn Fn(&mut Entries)| {
            let q = d.path().join(name);
            rewrite(&p, &q, change);
            verify(&q, trusted, Some(&pki.signer), false).unwrap()
        };
        let eod = "Accounting/Daily/eod.workflow.json";
        let env = "Accounting/env.jobresource.json";
        // One byte of an object.
        let r = check("t1.zip", &|e| {
            let i = e.iter().position(|(n, _)| n == eod).unwrap();
            e[i].1[3] ^= 1;
        });
        assert!(
            matches!(outcome(&r, eod), ObjectOutcome::Bad { reason } if reason.contains(eod)),
            "{r:?}"
        );
        assert!(matches!(outcome(&r, env), ObjectOutcome::Ok { .. }));
        assert!(!r.accepted());
        assert_eq!(r.failures().count(), 1);
        // One byte of a signature (re-encoded, so still Base64).
        let r = check("t2.zip", &|e| {
            let i = e
                .iter()
                .position(|(n, _)| *n == format!("{env}.sig"))
                .unwrap();
            let mut sig = base64::engine::general_purpose::STANDARD
                .decode(&e[i].1)
                .unwrap();
            let last = sig.len() - 1;
            sig[last] ^= 1;
            e[i].1 = base64::engine::general_purpose::STANDARD
                .encode(sig)
                .into_bytes();
        });
        assert!(
            matches!(outcome(&r, env), ObjectOutcome::Bad { .. }),
            "{r:?}"
        );
        assert_eq!(r.failures().count(), 1);
        // Two signatures swapped.
        let r = check("t3.zip", &|e| {
            let a = e
                .iter()
                .position(|(n, _)| *n == format!("{eod}.sig"))
                .unwrap();
            let b = e
                .iter()
                .position(|(n, _)| *n == format!("{env}.sig"))
                .unwrap();
            let tmp = e[a].1.clone();
            e[a].1 = e[b].1.clone();
            e[b].1 = tmp;
        });
        assert!(matches!(outcome(&r, eod), ObjectOutcome::Bad { .. }));
        assert!(matches!(outcome(&r, env), ObjectOutcome::Bad { .. }));
        assert!(matches!(
            outcome(&r, "z.workflow.json"),
            ObjectOutcome::Ok { .. }
        ));
        // Garbage instead of Base64; a signature removed; a signature without object.
        let r = check("t4.zip", &|e| {
            let i = e
                .iter()
                .position(|(n, _)| *n == format!("{eod}.sig"))
                .unwrap();
            e[i].1 = b"%%% not base64 %%%".to_vec();
            e.retain(|(n, _)| *n != format!("{env}.sig"));
            e.push(("gone.workflow.json.sig".into(), b"AAAA".to_vec()));
        });
        assert!(
            matches!(outcome(&r, eod), ObjectOutcome::Bad { reason } if reason.contains("Base64")),
            "{r:?}"
        );
        assert_eq!(*outcome(&r, env), ObjectOutcome::Unsigned);
        assert_eq!(
            r.orphan_signatures,
            vec!["gone.workflow.json.sig".to_string()]
        );
    }

    #[test]
    fn signature_with_line_breaks_is_accepted() {
        let pki = Pki::new(27);
        let d = tempfile::tempdir().unwrap();
        let p = signed(&pki, d.path(), true, &pki.signer);
        let q = d.path().join("mime.zip");
        rewrite(&p, &q, |e| {
            for (n, data) in e.iter_mut().filter(|(n, _)| n.ends_with(".sig")) {
                let text = String::from_utf8(data.clone()).unwrap();
                let (a, b) = text.split_at(20);
                *data = format!("{a}\r\n{b}\r\n").into_bytes();
                let _ = n;
            }
        });
        let r = verify(
            &q,
            std::slice::from_ref(&pki.intermediate),
            Some(&pki.signer),
            false,
        )
        .unwrap();
        assert!(r.accepted(), "{r:?}");
    }

    #[test]
    fn strict_wants_a_real_ca_js7_takes_any_basic_constraints() {
        let pki = Pki::new(28);
        let d = pki.dir.path();
        // An "issuer" whose BasicConstraints say cA=false.
        new_key(d, "fake.key");
        let fake = self_signed(
            d,
            "fake.key",
            "Not A CA",
            "basicConstraints = CA:FALSE\n",
            "fake.pem",
        );
        let signer = issued(d, "soft.key", "Test Signer", SIGNER_EXT, "fake", "s2.pem");
        let w = tempfile::tempdir().unwrap();
        let p = signed(&pki, w.path(), true, &signer);
        let r = verify(&p, std::slice::from_ref(&fake), Some(&signer), false).unwrap();
        assert!(r.accepted(), "{r:?}");
        let err = verify(&p, std::slice::from_ref(&fake), Some(&signer), true).unwrap_err();
        assert!(matches!(err, ArchiveError::UntrustedSigner { .. }), "{err}");
        // No BasicConstraints at all: JS7 does not take it as a CA.
        let bare = self_signed(
            d,
            "fake.key",
            "Not A CA",
            "keyUsage = keyCertSign\n",
            "fake.pem",
        );
        let err = verify(&p, &[bare], Some(&signer), false).unwrap_err();
        assert!(err.to_string().contains("BasicConstraints"), "{err}");
    }

    #[test]
    fn strict_checks_key_usage() {
        let pki = Pki::new(29);
        let d = pki.dir.path();
        let signer = issued(
            d,
            "soft.key",
            "Odd Signer",
            "keyUsage = keyEncipherment\n",
            "inter",
            "odd.pem",
        );
        let w = tempfile::tempdir().unwrap();
        let p = signed(&pki, w.path(), false, &signer);
        let trusted = std::slice::from_ref(&pki.intermediate);
        let r = verify(&p, trusted, Some(&signer), false).unwrap();
        assert!(
            r.accepted() && r.notes.iter().any(|n| n.contains("digitalSignature")),
            "{r:?}"
        );
        let r = verify(&p, trusted, Some(&signer), true).unwrap();
        assert!(!r.accepted());
        assert!(
            r.certificate_problems[0].contains("digitalSignature"),
            "{r:?}"
        );
    }

    #[test]
    fn trusted_directory_and_pem_file() {
        let pki = Pki::new(30);
        let src = pki.dir.path();
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("trusted-x509-keys");
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy(src.join("root.pem"), dir.join("root.pem")).unwrap();
        std::fs::copy(src.join("inter.pem"), dir.join("inter.pem")).unwrap();
        std::fs::write(dir.join(".hidden"), b"not a certificate").unwrap();
        let certs = load_trusted_dir(&dir).unwrap();
        assert_eq!(certs, vec![pki.intermediate.clone(), pki.root.clone()]);
        // Two certificates in one file: fine for a PEM bundle, not in the directory.
        let bundle = dir.join("bundle.pem");
        let mut both = std::fs::read(src.join("root.pem")).unwrap();
        both.extend(std::fs::read(src.join("inter.pem")).unwrap());
        std::fs::write(&bundle, &both).unwrap();
        assert_eq!(load_trusted_pem_file(&bundle).unwrap().len(), 2);
        let err = load_trusted_dir(&dir).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::TrustedFile { path, .. } if *path == bundle),
            "{err}"
        );
        std::fs::remove_file(&bundle).unwrap();
        // A private key is named and refused.
        std::fs::copy(src.join("root.key"), dir.join("oops.pem")).unwrap();
        let err = load_trusted_dir(&dir).unwrap_err();
        assert!(
            err.to_string().contains("oops.pem") && err.to_string().contains("PRIVATE KEY"),
            "{err}"
        );
    }
}
