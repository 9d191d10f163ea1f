//! Verifying a signed deployment archive the way a JS7 Controller or Agent does.
//!
//! The rules (JS7 format notes, sections 2 and 6): JOC Cockpit sends either only the signer's
//! DN (the uploading account's profile certificate is self-issued: a trusted certificate with
//! that subject DN supplies the key) or the whole certificate (it is CA-issued: it must be
//! signed directly by a trusted certificate that has a BasicConstraints extension, even
//! cA=false; no chain building). Which certificates a node trusts, and whether it checks
//! expiry, depends on its version and settings ([`NodePolicy`]). Key usage and validity dates
//! beyond that are not checked by JS7; `strict` adds them, and requires the issuer to really be
//! a CA.
//!
//! The archive is read once ([`read_signed_archive`]) and judged per node ([`judge`]), so a
//! fleet of Controllers and Agents with different trusted directories and versions costs one
//! pass over the archive.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::SystemTime;

use base64::Engine;
use sha2::Digest;

use super::cert::Cert;
use super::js7::{NodePolicy, lint_entry, lint_meta_inf};
use super::read::{Entry, read_archive};
use super::{ArchiveError, ArchiveFormat, Limits, SIG_SUFFIX, is_signed_object};
use crate::signer::{HashAlgorithm, PublicKey, SignatureAlgorithm};

/// Largest `.sig` entry read (an RSA-16384 signature in Base64 is under 3 KiB).
const MAX_SIG_LEN: usize = 16 << 10;

/// The other name JOC accepts for a signature entry: the object's name plus `.pem`.
pub(super) const PEM_SIG_SUFFIX: &str = ".pem";

/// Base64 as Java's MIME decoder takes it: line breaks allowed, padding optional.
const MIME_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Every algorithm a JS7 node verifies with: any Java `Signature` name works there (there is
/// no list), so SHA-384 is tried too.
const VERIFY_ALGORITHMS: [SignatureAlgorithm; 6] = SignatureAlgorithm::ALL;

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

/// The answer of [`verify_archive`] / [`judge`] for one node.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VerifyReport {
    /// The archive's format.
    pub format: ArchiveFormat,
    /// The node's version and expiry rule.
    pub policy: NodePolicy,
    /// Subject DN of the signer certificate, if one was given.
    pub signer: Option<String>,
    /// What JOC Cockpit sends for this profile certificate, if one was given.
    pub path: Option<String>,
    /// Subject DN of the trusted certificate that vouches for the signer, if a signer was given.
    pub trusted_by: Option<String>,
    /// The one algorithm every signature verified with: the name to select in JOC's import.
    pub algorithm: Option<String>,
    /// Every signed object, in archive order.
    pub objects: Vec<ObjectCheck>,
    /// `.sig` entries with no object next to them.
    pub orphan_signatures: Vec<String>,
    /// Findings about the archive as a whole that make the node (or JOC) refuse it.
    pub archive_problems: Vec<String>,
    /// Certificate findings that fail strict mode (empty without `strict`).
    pub certificate_problems: Vec<String>,
    /// Entries JOC Cockpit's import would skip or refuse (`archive lint`); they fail strict
    /// mode.
    pub lint: Vec<String>,
    /// Whether strict mode judged.
    pub strict: bool,
    /// Findings JS7 tolerates by default, worth knowing.
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// True if every object is signed and verifies with one algorithm, no signature is
    /// orphaned, and (in strict mode) no certificate problem was found.
    pub fn accepted(&self) -> bool {
        self.objects
            .iter()
            .all(|o| matches!(o.outcome, ObjectOutcome::Ok { .. }))
            && self.orphan_signatures.is_empty()
            && self.archive_problems.is_empty()
            && self.certificate_problems.is_empty()
            && (!self.strict || self.lint.is_empty())
    }

    /// The objects whose verdict is not OK.
    pub fn failures(&self) -> impl Iterator<Item = &ObjectCheck> {
        self.objects
            .iter()
            .filter(|o| !matches!(o.outcome, ObjectOutcome::Ok { .. }))
    }
}

/// How a node is to be judged.
#[derive(Clone, Copy, Debug, Default)]
pub struct VerifyOptions {
    /// Also check what JS7 leaves out (validity dates, keyUsage, a real CA, unreadable trusted
    /// files, what JOC would skip).
    pub strict: bool,
    /// The node's version and expiry setting.
    pub policy: NodePolicy,
}

/// One file of a trusted-x509-keys directory (or one certificate of a PEM file), as read.
#[derive(Clone, Debug)]
pub struct TrustedEntry {
    /// The file (and, for a PEM bundle, the certificate's position).
    pub name: String,
    /// The certificate (DER), or why a node cannot read it.
    pub cert: Result<Vec<u8>, String>,
}

/// What a node trusts, file by file, so each version can treat unreadable files its way.
#[derive(Clone, Debug, Default)]
pub struct TrustedSource {
    /// The entries, in name order.
    pub entries: Vec<TrustedEntry>,
}

impl TrustedSource {
    /// Certificates given directly (DER), all readable.
    pub fn from_ders(ders: &[Vec<u8>]) -> Self {
        Self {
            entries: ders
                .iter()
                .enumerate()
                .map(|(i, d)| TrustedEntry {
                    name: format!("trusted #{}", i + 1),
                    cert: Ok(d.clone()),
                })
                .collect(),
        }
    }
}

/// One signed object as read: its name and its SHA-256/384/512 digests.
#[derive(Clone, Debug)]
struct ObjectDigests {
    name: String,
    d256: Vec<u8>,
    d384: Vec<u8>,
    d512: Vec<u8>,
}

/// A signature entry: its name and its decoded bytes (or why they cannot be decoded).
type SignatureEntry = (String, Result<Vec<u8>, String>);

/// A key that may verify the objects, with the subject DN of its certificate.
type NamedKey = (String, PublicKey);

/// Everything a verdict needs from the archive, read in one pass.
#[derive(Clone, Debug)]
pub struct ArchiveContents {
    format: ArchiveFormat,
    objects: Vec<ObjectDigests>,
    /// Signature entries by the object they belong to: (entry name, decoded signature).
    signatures: BTreeMap<String, Vec<SignatureEntry>>,
    orphans: Vec<String>,
    lint: Vec<String>,
}

impl ArchiveContents {
    /// What JOC Cockpit's import would skip or refuse.
    pub fn lint(&self) -> &[String] {
        &self.lint
    }
}

/// The object a signature entry belongs to: `X.sig`, or `X.pem` where X is a signed object.
pub fn signature_object(entry: &str) -> Option<&str> {
    entry.strip_suffix(SIG_SUFFIX).or_else(|| {
        entry
            .strip_suffix(PEM_SIG_SUFFIX)
            .filter(|b| is_signed_object(b))
    })
}

/// Read a signed archive once: object digests, signatures, orphans, and what JOC would skip.
pub fn read_signed_archive(input: &Path, limits: &Limits) -> Result<ArchiveContents, ArchiveError> {
    let mut objects = Vec::new();
    let mut sig_entries: Vec<SignatureEntry> = Vec::new();
    let mut lint = Vec::new();
    let mut meta_inf: Option<Vec<u8>> = None;
    let format = read_archive(input, limits, &mut |e: &Entry, data: &[u8]| {
        if e.is_dir {
            return Ok(());
        }
        if e.name == "meta_inf" {
            meta_inf = Some(data.to_vec());
        } else if signature_object(&e.name).is_some() {
            sig_entries.push((e.name.clone(), decode_sig(data)));
            return Ok(());
        }
        if is_signed_object(&e.name) {
            objects.push(ObjectDigests {
                name: e.name.clone(),
                d256: HashAlgorithm::Sha256.digest(data),
                d384: sha2::Sha384::digest(data).to_vec(),
                d512: sha2::Sha512::digest(data).to_vec(),
            });
        }
        lint.extend(lint_entry(&e.name, data));
        Ok(())
    })?;
    lint.splice(0..0, lint_meta_inf(meta_inf.as_deref()));
    let names: HashSet<&str> = objects.iter().map(|o| o.name.as_str()).collect();
    let mut signatures: BTreeMap<String, Vec<_>> = BTreeMap::new();
    let mut orphans = Vec::new();
    for (entry, sig) in sig_entries {
        match signature_object(&entry).filter(|b| names.contains(b)) {
            Some(base) => signatures
                .entry(base.to_string())
                .or_default()
                .push((entry, sig)),
            None => orphans.push(entry),
        }
    }
    Ok(ArchiveContents {
        format,
        objects,
        signatures,
        orphans,
        lint,
    })
}

/// Check `input` as a JS7 Controller or Agent of the newest version, with default settings,
/// would: see [`judge`].
pub fn verify_archive(
    input: &Path,
    trusted: &[Vec<u8>],
    signer_cert: Option<&[u8]>,
    strict: bool,
    limits: &Limits,
) -> Result<VerifyReport, ArchiveError> {
    let contents = read_signed_archive(input, limits)?;
    judge(
        &contents,
        &TrustedSource::from_ders(trusted),
        signer_cert,
        &VerifyOptions {
            strict,
            policy: NodePolicy::default(),
        },
    )
}

/// The trusted certificates a node of `policy` actually uses, with notes on the rest; or the
/// reason X.509 verification is off on that node altogether (before 2.5.9).
struct NodeTrust {
    certs: Vec<Cert>,
    notes: Vec<String>,
    unreadable: Vec<String>,
    disabled: Option<String>,
}

fn node_trust(trusted: &TrustedSource, policy: &NodePolicy, now: SystemTime) -> NodeTrust {
    let v = policy.version;
    let mut t = NodeTrust {
        certs: Vec::new(),
        notes: Vec::new(),
        unreadable: Vec::new(),
        disabled: None,
    };
    let unusable = |t: &mut NodeTrust, name: &str, reason: String| {
        if v.skips_bad_trusted_files() {
            t.notes
                .push(format!("trusted {name}: {reason}; JS7 {v} skips this file"));
        } else if t.disabled.is_none() {
            t.disabled = Some(format!(
                "trusted {name}: {reason}; before 2.5.9 one unreadable or expired file in the trusted directory disables X.509 signature verification on the node (JS7 {v}): fix or remove the file"
            ));
        }
    };
    for e in &trusted.entries {
        let parsed = match &e.cert {
            Ok(der) => Cert::parse(der, &e.name).map_err(|x| x.to_string()),
            Err(reason) => Err(reason.clone()),
        };
        match parsed {
            Err(reason) => {
                t.unreadable.push(format!("trusted {}: {reason}", e.name));
                unusable(&mut t, &e.name, reason);
            }
            Ok(c) => match c.validity_problem(now).filter(|_| policy.checks_expiry()) {
                Some(p) => unusable(&mut t, &e.name, p),
                None => t.certs.push(c),
            },
        }
    }
    if v.skips_bad_trusted_files() {
        // Of several certificates with one subject DN, only the one valid longest stays.
        let mut kept: Vec<Cert> = Vec::new();
        for c in std::mem::take(&mut t.certs) {
            match kept.iter_mut().find(|k| k.same_subject(&c)) {
                Some(k) => {
                    let dropped = if c.not_after() > k.not_after() {
                        std::mem::replace(k, c)
                    } else {
                        c
                    };
                    t.notes.push(format!(
                        "trusted certificates share the subject DN {}: JS7 {v} keeps only the one valid longest (until {}), not the one until {}",
                        k.subject,
                        k.not_after_text(),
                        dropped.not_after_text()
                    ));
                }
                None => kept.push(c),
            }
        }
        t.certs = kept;
    }
    t
}

/// Judge the archive's signatures as one node would: its trusted certificates (`trusted`), the
/// signer certificate JOC Cockpit sends along (`signer_cert`, DER), its version and settings.
/// Without a signer certificate each trusted certificate's own key is tried (as for
/// self-issued profile certificates).
///
/// An error means the question could not be answered (unusable certificates, a signer no
/// trusted certificate vouches for); per-object failures are in the report.
pub fn judge(
    contents: &ArchiveContents,
    trusted: &TrustedSource,
    signer_cert: Option<&[u8]>,
    options: &VerifyOptions,
) -> Result<VerifyReport, ArchiveError> {
    if trusted.entries.is_empty() {
        return Err(ArchiveError::Certificate {
            which: "list of trusted certificates".into(),
            reason: "is empty; give the trusted-x509-keys directory or a PEM file of trusted certificates".into(),
        });
    }
    let policy = options.policy;
    let strict = options.strict;
    let now = SystemTime::now();
    let trust = node_trust(trusted, &policy, now);
    // Certificate findings fail strict mode and are only notes otherwise.
    let mut findings = trust.unreadable.clone();
    let mut notes = trust.notes;
    let mut archive_problems = Vec::new();
    if trust.certs.is_empty() && trust.disabled.is_none() {
        return Err(ArchiveError::Certificate {
            which: "list of trusted certificates".into(),
            reason: format!(
                "holds no certificate a node of {} can use ({}); put a readable, valid certificate of the signer's issuer into trusted-x509-keys",
                policy.describe(),
                notes.join("; ")
            ),
        });
    }

    let mut keys: Vec<NamedKey> = Vec::new();
    let mut signer_subject = None;
    let mut trusted_by = None;
    let mut path = None;
    // A reason that fails every object on this node (expired signer, verification disabled).
    let mut fails_all = trust.disabled.clone();
    match signer_cert {
        Some(der) => {
            let signer = Cert::parse(der, "of the signer")?;
            path = Some(if signer.self_issued() {
                format!(
                    "the profile certificate is self-issued: JOC Cockpit sends only its DN ({}) and the node verifies with a trusted certificate of that DN",
                    signer.subject
                )
            } else {
                format!(
                    "the profile certificate is CA-issued: JOC Cockpit sends it whole and the node needs its direct issuer ({}) in trusted-x509-keys",
                    signer.issuer
                )
            });
            signer_subject = Some(signer.subject.clone());
            // A node with verification switched off rejects everything whoever signed.
            let anchor = match &trust.disabled {
                Some(_) => None,
                None => {
                    let (anchor, signer_keys) = trust_signer(&signer, &trust.certs, strict)?;
                    trusted_by = Some(anchor.subject.clone());
                    keys = signer_keys;
                    Some(anchor)
                }
            };
            if let Some(p) = signer.validity_problem(now) {
                if policy.checks_expiry() && !signer.self_issued() {
                    fails_all.get_or_insert_with(|| format!(
                        "signer {p}; {} checks the signer certificate with each object (JS-2219)",
                        policy.describe()
                    ));
                } else {
                    findings.push(format!("signer {p}"));
                }
            }
            if let Some(p) = anchor.and_then(|a| a.validity_problem(now)) {
                findings.push(format!("trusted {p}"));
            }
            if signer.digital_signature_allowed() == Some(false) {
                findings.push(format!(
                    "signer certificate {} has keyUsage without digitalSignature",
                    signer.subject
                ));
            }
            // The same check `archive sign` refuses with.
            if let Err(e) = signer.check_signing_role() {
                findings.push(e.to_string());
            }
        }
        None => {
            for t in &trust.certs {
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

    let mut used_keys = Vec::new();
    let mut algorithms: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut objects = Vec::new();
    for o in &contents.objects {
        let sigs = contents.signatures.get(&o.name);
        let (signature, outcome) = match sigs.map(Vec::as_slice) {
            None | Some([]) => (None, ObjectOutcome::Unsigned),
            Some([(entry, _), (other, _), ..]) => (
                Some(entry.clone()),
                ObjectOutcome::Bad {
                    reason: format!(
                        "two signature entries ({entry} and {other}): JOC Cockpit reads one; remove the other"
                    ),
                },
            ),
            Some([(entry, Err(reason))]) => (
                Some(entry.clone()),
                ObjectOutcome::Bad {
                    reason: format!("{entry}: {reason}"),
                },
            ),
            Some([(entry, Ok(sig))]) => {
                let outcome = match &fails_all {
                    Some(reason) => ObjectOutcome::Bad {
                        reason: reason.clone(),
                    },
                    None => check_signature(&keys, sig, o, entry),
                };
                if let ObjectOutcome::Ok { key, algorithm } = &outcome {
                    if !used_keys.contains(key) {
                        used_keys.push(key.clone());
                    }
                    algorithms
                        .entry(algorithm.clone())
                        .or_default()
                        .push(&o.name);
                }
                (Some(entry.clone()), outcome)
            }
        };
        objects.push(ObjectCheck {
            object: o.name.clone(),
            signature,
            outcome,
        });
    }
    let algorithm = match algorithms.len() {
        0 => None,
        1 => algorithms.keys().next().cloned(),
        _ => {
            archive_problems.push(format!(
                "the objects were signed with different algorithms ({}): JOC Cockpit imports an archive with one signature algorithm; sign them all the same way",
                algorithms
                    .iter()
                    .map(|(a, objs)| format!("{a} for {} object(s), e.g. {}", objs.len(), objs[0]))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            None
        }
    };

    if signer_cert.is_none() {
        // The trusted certificates themselves signed: check the ones that were used.
        for t in trust
            .certs
            .iter()
            .filter(|t| used_keys.contains(&t.subject))
        {
            if let Some(p) = t.validity_problem(now) {
                findings.push(format!("signing {p}"));
            }
            if t.digital_signature_allowed() == Some(false) {
                findings.push(format!(
                    "signing certificate {} has keyUsage without digitalSignature",
                    t.subject
                ));
            }
            if let Err(e) = t.check_signing_role() {
                findings.push(e.to_string());
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
        format: contents.format,
        policy,
        signer: signer_subject,
        path,
        trusted_by,
        algorithm,
        objects,
        orphan_signatures: contents.orphans.clone(),
        archive_problems,
        certificate_problems: problems,
        lint: contents.lint.clone(),
        strict,
        notes,
    })
}

/// Find the trusted certificate that vouches for `signer` and the keys that may verify the
/// objects, by JS7's rules.
fn trust_signer<'t>(
    signer: &Cert,
    trusted: &'t [Cert],
    strict: bool,
) -> Result<(&'t Cert, Vec<NamedKey>), ArchiveError> {
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
        // JOC sends only the DN: any trusted certificate with that subject DN may verify.
        let anchors: Vec<&Cert> = trusted.iter().filter(|t| t.same_subject(signer)).collect();
        let Some(first) = anchors.first() else {
            return Err(untrusted(
                "it is self-issued and no trusted certificate has its subject DN; put it into trusted-x509-keys"
                    .into(),
            ));
        };
        let mut keys = Vec::new();
        for a in &anchors {
            match a.public_key() {
                Ok(k) => keys.push((a.subject.clone(), k)),
                Err(e) => {
                    return Err(untrusted(format!(
                        "the matching trusted certificate's key is unusable: {e}"
                    )));
                }
            }
        }
        return Ok((first, keys));
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
        return Ok((t, vec![(signer.subject.clone(), key)]));
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

/// Try each key with each algorithm a JS7 node can verify for it.
fn check_signature(
    keys: &[NamedKey],
    sig: &[u8],
    o: &ObjectDigests,
    sig_entry: &str,
) -> ObjectOutcome {
    for (label, key) in keys {
        for alg in VERIFY_ALGORITHMS
            .into_iter()
            .filter(|a| a.fits(key.algorithm()))
        {
            let digest = match alg.hash() {
                HashAlgorithm::Sha256 => &o.d256,
                HashAlgorithm::Sha384 => &o.d384,
                _ => &o.d512,
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
            VERIFY_ALGORITHMS
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
    fn strict_refuses_a_ca_signer_as_sign_does() {
        let pki = Pki::new(31);
        let d = pki.dir.path();
        // The archive is signed under an ordinary signer certificate; a CA:TRUE certificate
        // for the same key is then offered as the signer.
        let w = tempfile::tempdir().unwrap();
        let p = signed(&pki, w.path(), true, &pki.signer);
        let ca_signer = issued(
            d,
            "soft.key",
            "CA Signer",
            "basicConstraints = critical,CA:TRUE\nkeyUsage = digitalSignature,keyCertSign\n",
            "inter",
            "ca-signer.pem",
        );
        let trusted = std::slice::from_ref(&pki.intermediate);
        let r = verify(&p, trusted, Some(&ca_signer), false).unwrap();
        assert!(
            r.accepted() && r.notes.iter().any(|n| n.contains("CA certificate")),
            "{r:?}"
        );
        let r = verify(&p, trusted, Some(&ca_signer), true).unwrap();
        assert!(!r.accepted(), "{r:?}");
        // Word for word what `archive sign` says when it refuses the same certificate.
        let sign_says = Cert::parse(&ca_signer, "of the signer")
            .unwrap()
            .check_signing_role()
            .unwrap_err()
            .to_string();
        assert_eq!(r.certificate_problems, vec![sign_says], "{r:?}");
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

    /// Judge an archive as a node of `version` (with `allow` expired) would.
    fn as_node(
        p: &Path,
        trusted: TrustedSource,
        signer: Option<&[u8]>,
        version: &str,
        allow: Option<bool>,
        strict: bool,
    ) -> Result<VerifyReport, ArchiveError> {
        let contents = read_signed_archive(p, &Limits::default()).unwrap();
        let policy = NodePolicy::new(Some(Js7Version::parse(version).unwrap()), allow).unwrap();
        judge(
            &contents,
            &trusted,
            signer,
            &VerifyOptions { strict, policy },
        )
    }

    fn ders(certs: &[&Vec<u8>]) -> TrustedSource {
        TrustedSource::from_ders(&certs.iter().map(|c| (*c).clone()).collect::<Vec<_>>())
    }

    fn all_bad_with(r: &VerifyReport, needle: &str) {
        assert!(!r.accepted(), "{r:?}");
        for o in &r.objects {
            assert!(
                matches!(&o.outcome, ObjectOutcome::Bad { reason } if reason.contains(needle)),
                "{}: {:?}",
                o.object,
                o.outcome
            );
        }
    }

    use super::super::js7::{Js7Version, NodePolicy};

    #[test]
    fn an_expired_signer_stops_2_7_6_not_2_9_0() {
        let pki = Pki::new(40);
        let d = pki.dir.path();
        let expired = dated(
            d,
            "soft.key",
            "Test Signer",
            SIGNER_EXT,
            Some("inter"),
            "200101000000Z",
            "210101000000Z",
            "expired-signer.pem",
        );
        let w = tempfile::tempdir().unwrap();
        let p = signed(&pki, w.path(), true, &expired);
        let trusted = || ders(&[&pki.intermediate]);
        let r = as_node(&p, trusted(), Some(&expired), "2.7.6", None, false).unwrap();
        all_bad_with(&r, "JS-2219");
        let r = as_node(&p, trusted(), Some(&expired), "2.9.0", None, false).unwrap();
        assert!(r.accepted(), "{r:?}");
        assert!(r.notes.iter().any(|n| n.contains("expired")), "{r:?}");
        let r = as_node(&p, trusted(), Some(&expired), "2.9.0", Some(false), false).unwrap();
        all_bad_with(&r, "expired");
        // 2.8.1 has no setting yet; 2.8.2 has it, default yes.
        assert!(
            !as_node(&p, trusted(), Some(&expired), "2.8.1", None, false)
                .unwrap()
                .accepted()
        );
        assert!(
            as_node(&p, trusted(), Some(&expired), "2.8.2", None, false)
                .unwrap()
                .accepted()
        );
        // The profile certificate is CA-issued: the report says JOC sends it whole.
        assert!(r.path.as_deref().unwrap().contains("CA-issued"), "{r:?}");
    }

    #[test]
    fn an_expired_trusted_certificate_before_and_after_2_5_9() {
        let pki = Pki::new(41);
        let d = pki.dir.path();
        // The signer's own certificate, self-issued and expired, is what the node trusts.
        let expired_self = dated(
            d,
            "soft.key",
            "Self Signer",
            SIGNER_EXT,
            None,
            "200101000000Z",
            "210101000000Z",
            "expired-self.pem",
        );
        let w = tempfile::tempdir().unwrap();
        let p = signed(&pki, w.path(), false, &pki.self_signed);
        // With a second, valid certificate in the directory.
        let dir = || ders(&[&expired_self, &pki.root]);
        // 2.9.0 allows expired certificates: the objects verify.
        let r = as_node(&p, dir(), Some(&pki.self_signed), "2.9.0", None, false).unwrap();
        assert!(r.accepted(), "{r:?}");
        assert!(r.path.as_deref().unwrap().contains("self-issued"), "{r:?}");
        // 2.5.12 checks expiry and skips the expired file on its own: no key for the DN.
        let err = as_node(&p, dir(), Some(&pki.self_signed), "2.5.12", None, false).unwrap_err();
        assert!(matches!(err, ArchiveError::UntrustedSigner { .. }), "{err}");
        // 2.5.8: the one expired file switches X.509 verification off on the whole node.
        let r = as_node(&p, dir(), Some(&pki.self_signed), "2.5.8", None, false).unwrap();
        all_bad_with(&r, "before 2.5.9");
    }

    #[test]
    fn an_unreadable_trusted_file_before_and_after_2_5_9() {
        let pki = Pki::new(42);
        let w = tempfile::tempdir().unwrap();
        let p = signed(&pki, w.path(), true, &pki.signer);
        let source = || TrustedSource {
            entries: vec![
                TrustedEntry {
                    name: "inter.pem".into(),
                    cert: Ok(pki.intermediate.clone()),
                },
                TrustedEntry {
                    name: "notes.txt".into(),
                    cert: Err("is not a PEM text file".into()),
                },
            ],
        };
        let r = as_node(&p, source(), Some(&pki.signer), "2.5.8", None, false).unwrap();
        all_bad_with(&r, "notes.txt");
        let r = as_node(&p, source(), Some(&pki.signer), "2.5.9", Some(false), false).unwrap();
        assert!(r.accepted(), "{r:?}");
        assert!(
            r.notes.iter().any(|n| n.contains("skips this file")),
            "{r:?}"
        );
        // Strict mode does not tolerate it.
        let r = as_node(&p, source(), Some(&pki.signer), "2.9.0", None, true).unwrap();
        assert!(!r.accepted());
        assert!(
            r.certificate_problems
                .iter()
                .any(|c| c.contains("notes.txt")),
            "{r:?}"
        );
    }

    #[test]
    fn duplicate_dns_keep_the_one_valid_longest_from_2_5_9() {
        let pki = Pki::new(43);
        let d = pki.dir.path();
        // Another key with the signer's DN, valid much longer than the signer's 30 days.
        new_key(d, "other.key");
        let other = dated(
            d,
            "other.key",
            "Self Signer",
            SIGNER_EXT,
            None,
            "200101000000Z",
            "491231000000Z",
            "other-self.pem",
        );
        let w = tempfile::tempdir().unwrap();
        let p = signed(&pki, w.path(), true, &pki.self_signed);
        let both = || ders(&[&pki.self_signed, &other]);
        let r = as_node(&p, both(), Some(&pki.self_signed), "2.9.0", None, false).unwrap();
        assert!(!r.accepted(), "{r:?}");
        assert!(r.notes.iter().any(|n| n.contains("valid longest")), "{r:?}");
        // Before 2.5.9 both stay, and the signer's certificate verifies.
        let r = as_node(&p, both(), Some(&pki.self_signed), "2.5.8", None, false).unwrap();
        assert!(r.accepted(), "{r:?}");
    }

    #[test]
    fn pem_named_signatures_and_mixed_algorithms() {
        let pki = Pki::new(44);
        let w = tempfile::tempdir().unwrap();
        let p = signed(&pki, w.path(), true, &pki.signer);
        let trusted = std::slice::from_ref(&pki.intermediate);
        // Every .sig renamed to .pem: JOC reads both names.
        let q = w.path().join("pem.zip");
        rewrite(&p, &q, |e| {
            for (n, _) in e.iter_mut() {
                if let Some(base) = n.strip_suffix(".sig") {
                    *n = format!("{base}.pem");
                }
            }
        });
        let r = verify(&q, trusted, Some(&pki.signer), false).unwrap();
        assert!(r.accepted(), "{r:?}");
        assert_eq!(
            r.objects[0]
                .signature
                .as_deref()
                .map(|s| s.ends_with(".pem")),
            Some(true)
        );
        // Both names for one object: ambiguous.
        let q2 = w.path().join("both.zip");
        rewrite(&p, &q2, |e| {
            let (n, d) = e
                .iter()
                .find(|(n, _)| n.ends_with(".sig"))
                .cloned()
                .unwrap();
            e.push((format!("{}.pem", n.trim_end_matches(".sig")), d));
        });
        let r = verify(&q2, trusted, Some(&pki.signer), false).unwrap();
        assert!(r.failures().any(|o| matches!(&o.outcome, ObjectOutcome::Bad { reason } if reason.contains("two signature entries"))), "{r:?}");
        // One object signed with SHA-512, the others with SHA-256.
        let inp = w.path().join("in.zip");
        let p512 = w.path().join("s512.zip");
        sign_archive(
            &inp,
            &p512,
            false,
            &pki.key,
            &pki.signer,
            &SignOptions {
                algorithm: Some(SignatureAlgorithm::EcdsaSha512),
                ..Default::default()
            },
            &mut |_, _| {},
        )
        .unwrap();
        let r = verify(&p512, trusted, Some(&pki.signer), false).unwrap();
        assert_eq!(r.algorithm.as_deref(), Some("SHA512withECDSA"));
        let sig512 = list_with_crates(&p512)
            .into_iter()
            .find(|(n, _, _)| n.ends_with(".sig"))
            .unwrap();
        let mixed = w.path().join("mixed.zip");
        rewrite(&p, &mixed, |e| {
            let i = e.iter().position(|(n, _)| *n == sig512.0).unwrap();
            e[i].1 = sig512.2.clone();
        });
        let r = verify(&mixed, trusted, Some(&pki.signer), false).unwrap();
        assert!(
            r.objects
                .iter()
                .all(|o| matches!(o.outcome, ObjectOutcome::Ok { .. })),
            "{r:?}"
        );
        assert!(!r.accepted());
        assert!(
            r.archive_problems[0].contains("different algorithms"),
            "{r:?}"
        );
        assert_eq!(r.algorithm, None);
    }

    #[test]
    fn what_joc_would_skip_is_reported_and_fails_strict() {
        let pki = Pki::new(45);
        let w = tempfile::tempdir().unwrap();
        let p = signed(&pki, w.path(), true, &pki.signer);
        let q = w.path().join("lint.zip");
        rewrite(&p, &q, |e| {
            e.retain(|(n, _)| n != "meta_inf");
            e.push(("Accounting/bad name.lock.json".into(), b"{}".to_vec()));
            e.push((
                "Accounting/latin1.lock.json".into(),
                b"{\"n\":\"\xe9\"}".to_vec(),
            ));
        });
        let trusted = std::slice::from_ref(&pki.intermediate);
        let r = verify(&q, trusted, Some(&pki.signer), false).unwrap();
        assert!(r.accepted(), "lint alone is not a node's rejection: {r:?}");
        let joined = r.lint.join("\n");
        for needle in ["meta_inf: missing", "bad name", "not UTF-8"] {
            assert!(joined.contains(needle), "{needle}: {joined}");
        }
        let r = verify(&q, trusted, Some(&pki.signer), true).unwrap();
        assert!(!r.accepted());
        // Signing such an archive warns, and refuses under --strict.
        let out = w.path().join("strict.zip");
        let strict = SignOptions {
            strict: true,
            replace_signatures: true,
            ..Default::default()
        };
        let err = sign_archive(
            &q,
            &out,
            false,
            &pki.key,
            &pki.signer,
            &strict,
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(matches!(err, ArchiveError::Lint { .. }), "{err}");
        assert!(!out.exists());
        let lenient = SignOptions {
            replace_signatures: true,
            ..Default::default()
        };
        let s = sign_archive(
            &q,
            &out,
            false,
            &pki.key,
            &pki.signer,
            &lenient,
            &mut |_, _| {},
        )
        .unwrap();
        assert!(
            s.warnings.iter().any(|w| w.contains("bad name")),
            "{:?}",
            s.warnings
        );
    }
}
