//! The certificates around archive signatures: the signer certificate, and the trusted
//! certificates of a Controller's or Agent's `trusted-x509-keys` directory.

use std::path::Path;
use std::time::SystemTime;

use der::{Decode, Encode};
use sha2::Digest;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};

use super::ArchiveError;
use crate::signer::{PublicKey, SignatureAlgorithm};

const BEGIN_CERT: &str = "-----BEGIN CERTIFICATE-----";
const END_CERT: &str = "-----END CERTIFICATE-----";

/// A parsed certificate with the pieces archive signing and verification look at.
pub(crate) struct Cert {
    /// The DER encoding as given.
    pub der: Vec<u8>,
    cert: x509_cert::Certificate,
    /// The DER of the signed part, as it stands in `der`.
    tbs: Vec<u8>,
    /// Subject DN as an RFC 4514 string.
    pub subject: String,
    /// Issuer DN as an RFC 4514 string.
    pub issuer: String,
}

impl Cert {
    /// Parse DER; `which` names the certificate in errors.
    pub(super) fn parse(der: &[u8], which: &str) -> Result<Self, ArchiveError> {
        let bad = |reason: String| ArchiveError::Certificate {
            which: which.to_owned(),
            reason,
        };
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| {
            bad(format!(
                "not a DER X.509 certificate ({e}); give a PEM or DER certificate file"
            ))
        })?;
        // The signed bytes are the first element of the outer SEQUENCE, exactly as encoded.
        let outer = der::asn1::AnyRef::from_der(der).map_err(|e| bad(e.to_string()))?;
        let mut reader = der::SliceReader::new(outer.value()).map_err(|e| bad(e.to_string()))?;
        let tbs: der::asn1::AnyRef<'_> =
            Decode::decode(&mut reader).map_err(|e: der::Error| bad(e.to_string()))?;
        let tbs = tbs.to_der().map_err(|e| bad(e.to_string()))?;
        let subject = cert.tbs_certificate().subject().to_string();
        let issuer = cert.tbs_certificate().issuer().to_string();
        Ok(Self {
            der: der.to_vec(),
            cert,
            tbs,
            subject,
            issuer,
        })
    }

    /// DER of the SubjectPublicKeyInfo.
    pub(super) fn spki_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap_or_default()
    }

    /// The certified public key.
    pub(super) fn public_key(&self) -> Result<PublicKey, String> {
        PublicKey::from_spki_der(&self.spki_der()).map_err(|e| e.to_string())
    }

    /// SHA-256 over the DER certificate, lower-case hex.
    pub(super) fn fingerprint(&self) -> String {
        crate::encoding::hex(&sha2::Sha256::digest(&self.der))
    }

    /// Subject and issuer are the same name (compared as DER).
    pub(super) fn self_issued(&self) -> bool {
        let t = self.cert.tbs_certificate();
        t.subject().to_der().ok() == t.issuer().to_der().ok()
    }

    /// True if this certificate's subject is `other`'s issuer (compared as DER).
    pub(super) fn is_issuer_name_of(&self, other: &Self) -> bool {
        self.cert.tbs_certificate().subject().to_der().ok()
            == other.cert.tbs_certificate().issuer().to_der().ok()
    }

    /// True if both certificates have the same subject (compared as DER).
    pub(super) fn same_subject(&self, other: &Self) -> bool {
        self.cert.tbs_certificate().subject().to_der().ok()
            == other.cert.tbs_certificate().subject().to_der().ok()
    }

    /// The BasicConstraints extension, if present and decodable.
    fn basic_constraints(&self) -> Option<BasicConstraints> {
        match self
            .cert
            .tbs_certificate()
            .get_extension::<BasicConstraints>()
        {
            Ok(Some((_, bc))) => Some(bc),
            _ => None,
        }
    }

    /// True if the certificate has a BasicConstraints extension at all (JS7 then treats it
    /// as a CA, whatever the cA flag says).
    pub(super) fn has_basic_constraints(&self) -> bool {
        self.basic_constraints().is_some()
    }

    /// True if BasicConstraints says cA=true.
    pub(super) fn is_ca(&self) -> bool {
        self.basic_constraints().is_some_and(|bc| bc.ca)
    }

    /// The one check of a certificate's fitness to sign archive objects, shared by
    /// `archive sign` (which refuses) and `archive verify --strict` (which fails): a CA
    /// certificate (cA=true) signs certificates, never deployment objects.
    pub(crate) fn check_signing_role(&self) -> Result<(), ArchiveError> {
        if self.is_ca() {
            return Err(ArchiveError::CaCertificate {
                subject: self.subject.clone(),
            });
        }
        Ok(())
    }

    /// `Some(true/false)`: whether keyUsage allows digitalSignature; `None`: no keyUsage
    /// extension (any use allowed, RFC 5280 4.2.1.3).
    pub(super) fn digital_signature_allowed(&self) -> Option<bool> {
        match self.cert.tbs_certificate().get_extension::<KeyUsage>() {
            Ok(Some((_, ku))) => Some(ku.digital_signature()),
            Ok(None) => None,
            Err(_) => Some(false),
        }
    }

    /// The end of the validity period.
    pub(super) fn not_after(&self) -> SystemTime {
        self.cert
            .tbs_certificate()
            .validity()
            .not_after
            .to_system_time()
    }

    /// The end of the validity period, as printed.
    pub(super) fn not_after_text(&self) -> String {
        self.cert.tbs_certificate().validity().not_after.to_string()
    }

    /// A sentence if the certificate is outside its validity period at `now`.
    pub(super) fn validity_problem(&self, now: SystemTime) -> Option<String> {
        let v = self.cert.tbs_certificate().validity();
        if now < v.not_before.to_system_time() {
            Some(format!(
                "certificate {} is not valid before {}",
                self.subject, v.not_before
            ))
        } else if now > v.not_after.to_system_time() {
            Some(format!(
                "certificate {} expired on {}",
                self.subject, v.not_after
            ))
        } else {
            None
        }
    }

    /// Verify that `issuer`'s key made this certificate's signature.
    pub(super) fn verify_issued_by(&self, issuer: &Self) -> Result<(), String> {
        let oid = self.cert.signature_algorithm().oid.to_string();
        let alg = SignatureAlgorithm::from_oid(&oid)
            .ok_or_else(|| format!("unsupported certificate signature algorithm {oid}"))?;
        let sig = self
            .cert
            .signature()
            .as_bytes()
            .ok_or("certificate signature BIT STRING has unused bits")?;
        issuer
            .public_key()?
            .verify(alg, &self.tbs, sig)
            .map_err(|_| {
                format!(
                    "its signature does not verify with the key of {}",
                    issuer.subject
                )
            })
    }
}

/// Load trusted certificates from a `trusted-x509-keys` directory (each file exactly one PEM
/// certificate, files starting with `.` ignored, as JS7 reads it) or from one PEM file that
/// may hold several certificates. Returns the DER certificates.
pub fn load_trusted(path: &Path) -> Result<Vec<Vec<u8>>, ArchiveError> {
    if path.is_dir() {
        load_trusted_dir(path)
    } else {
        load_trusted_pem_file(path)
    }
}

/// Read a trusted-x509-keys directory (or a PEM file) file by file, as a node does: a file
/// whose content is not exactly one PEM certificate is kept as an unreadable entry (each JS7
/// version treats those its own way), while a file hsmsign cannot safely read at all (a FIFO,
/// a device, an oversized file) is an error. A PEM file gives one entry per certificate.
pub fn read_trusted_source(path: &Path) -> Result<super::TrustedSource, ArchiveError> {
    use super::TrustedEntry;
    if !path.is_dir() {
        let certs = load_trusted_pem_file(path)?;
        let n = certs.len();
        return Ok(super::TrustedSource {
            entries: certs
                .into_iter()
                .enumerate()
                .map(|(i, der)| TrustedEntry {
                    name: if n == 1 {
                        path.display().to_string()
                    } else {
                        format!("{} (certificate {})", path.display(), i + 1)
                    },
                    cert: Ok(der),
                })
                .collect(),
        });
    }
    let mut entries = Vec::new();
    for p in trusted_dir_files(path)? {
        let name = p.display().to_string();
        let cert = match read_pem_certs(&p) {
            Ok(mut certs) if certs.len() == 1 => Ok(certs.remove(0)),
            Ok(certs) => Err(format!(
                "holds {} certificates; JS7 reads exactly one certificate per file",
                certs.len()
            )),
            Err(ArchiveError::TrustedFile { reason, .. }) => Err(reason),
            Err(ArchiveError::Certificate { reason, .. }) => Err(reason),
            Err(other) => return Err(other),
        };
        entries.push(TrustedEntry { name, cert });
    }
    if entries.is_empty() {
        return Err(ArchiveError::TrustedFile {
            path: path.to_path_buf(),
            reason: "holds no certificate files; put the trusted PEM certificates in it".into(),
        });
    }
    Ok(super::TrustedSource { entries })
}

/// The files of a trusted directory that JS7 reads (not starting with `.`), in name order.
fn trusted_dir_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for item in std::fs::read_dir(dir).map_err(io_err)? {
        let item = item.map_err(io_err)?;
        if item.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if item.file_type().map_err(io_err)?.is_dir() {
            continue;
        }
        if paths.len() >= MAX_TRUSTED_FILES {
            return Err(ArchiveError::TrustedFile {
                path: dir.to_path_buf(),
                reason: format!(
                    "holds more than {MAX_TRUSTED_FILES} files; is this the trusted-x509-keys directory?"
                ),
            });
        }
        paths.push(item.path());
    }
    paths.sort();
    Ok(paths)
}

/// Most files read from a trusted-certificates directory.
pub(super) const MAX_TRUSTED_FILES: usize = 10_000;

/// Load a `trusted-x509-keys` directory: every file not starting with `.` must hold exactly
/// one PEM certificate. Files are taken in name order.
pub fn load_trusted_dir(dir: &Path) -> Result<Vec<Vec<u8>>, ArchiveError> {
    let paths = trusted_dir_files(dir)?;
    let mut out = Vec::new();
    for p in &paths {
        let mut certs = read_pem_certs(p)?;
        if certs.len() != 1 {
            return Err(ArchiveError::TrustedFile {
                path: p.clone(),
                reason: format!(
                    "holds {} certificates; JS7 reads exactly one certificate per file in trusted-x509-keys. \
                     Split it into one file per certificate",
                    certs.len()
                ),
            });
        }
        out.append(&mut certs);
    }
    if out.is_empty() {
        return Err(ArchiveError::TrustedFile {
            path: dir.to_path_buf(),
            reason: "holds no certificate files; put the trusted PEM certificates in it".into(),
        });
    }
    Ok(out)
}

/// Load every certificate of one PEM file (at least one).
pub fn load_trusted_pem_file(path: &Path) -> Result<Vec<Vec<u8>>, ArchiveError> {
    let certs = read_pem_certs(path)?;
    if certs.is_empty() {
        return Err(ArchiveError::TrustedFile {
            path: path.to_path_buf(),
            reason: format!("holds no {BEGIN_CERT} block; give PEM certificates"),
        });
    }
    Ok(certs)
}

/// Decode the PEM certificate blocks of a file; any other PEM block, or a block that is not
/// a certificate, is an error naming the file.
fn read_pem_certs(path: &Path) -> Result<Vec<Vec<u8>>, ArchiveError> {
    use base64::Engine;
    let bad = |reason: String| ArchiveError::TrustedFile {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = crate::input::read(path, crate::input::InputKind::TrustedFile)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| bad("is not a PEM text file; give PEM certificates".into()))?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let after = &rest[begin..];
        if !after.starts_with(BEGIN_CERT) {
            let label: String = after
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(60)
                .collect();
            return Err(bad(format!(
                "holds a {label} block; only certificates belong here"
            )));
        }
        let body_start = BEGIN_CERT.len();
        let end = after
            .find(END_CERT)
            .ok_or_else(|| bad(format!("a certificate block has no {END_CERT} line")))?;
        let b64: String = after[body_start..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| bad(format!("a certificate block is not valid Base64 ({e})")))?;
        Cert::parse(&der, &path.display().to_string()).map_err(|e| bad(e.to_string()))?;
        out.push(der);
        rest = &after[end + END_CERT.len()..];
    }
    Ok(out)
}
