//! PKCS#10 certificate signing requests (RFC 2986).
//!
//! [`parse_csr`] takes PEM or DER (detected), checks the key is one hsmsign certifies (EC P-256,
//! EC P-384, RSA of 2048 to 8192 bits), and verifies the self-signature with the digest the
//! signature algorithm names, on the curve of the KEY: openssl signs a P-384 request with
//! SHA-256 by default, and that is accepted. From the extensionRequest attribute it takes the
//! subject alternative names (at most [`MAX_SANS`]); it refuses requests for CA:TRUE,
//! keyCertSign or cRLSign, and unknown critical extensions. Key usages and other non-critical
//! wishes are not honoured (the profile decides) and are listed in
//! [`CertificateRequest::ignored`].
//!
//! [`parse_ca_csr`] reads a request for an intermediate CA certificate (`ca sign-intermediate`):
//! there CA:TRUE, keyCertSign and cRLSign are what is expected, the requested basicConstraints
//! are kept for [`CertificateRequest::requested_basic_constraints`], and subject alternative
//! names are ignored (a CA certificate carries none).
//!
//! Requests larger than [`MAX_CSR_BYTES`] are refused before they are decoded.

use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectAltName};
use x509_cert::request::CertReq;

use super::dn::{DistinguishedName, DnError, describe_name_der};
use super::limits::{MAX_CSR_BYTES, MAX_SANS};
use super::san::{SanEntry, SanError};
use super::{SignedRaw, parse_signature_algorithm};
use crate::signer::{PublicKey, SignError, SignatureAlgorithm};

/// The PKCS#9 attributes a CSR may carry (RFC 2985), from const-oid's database.
const OID_EXTENSION_REQUEST: der::asn1::ObjectIdentifier =
    der::oid::db::rfc2985::PKCS_9_AT_EXTENSION_REQUEST;
const OID_CHALLENGE_PASSWORD: der::asn1::ObjectIdentifier =
    der::oid::db::rfc2985::PKCS_9_AT_CHALLENGE_PASSWORD;

/// Errors in certificate signing requests. `file` names the input in every message.
#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    /// Neither a PEM block nor DER of any known kind.
    #[error(
        "{file} is not a certificate signing request (neither PEM nor DER PKCS#10): \
         give the .csr file made by `openssl req -new` or keytool -certreq"
    )]
    NotACsr {
        /// The input's name.
        file: String,
    },
    /// A PEM block or DER structure of another kind.
    #[error("{file} holds {what}, not a certificate signing request: {hint}")]
    WrongType {
        /// The input's name.
        file: String,
        /// What it holds.
        what: String,
        /// What to do.
        hint: &'static str,
    },
    /// A file too large to be a request hsmsign signs.
    #[error(
        "{file} is at least {size} bytes; a certificate signing request hsmsign accepts is at \
         most {max} bytes: check that this is the right file"
    )]
    TooLarge {
        /// The input's name.
        file: String,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The file cannot be read.
    #[error("cannot read CSR {file}: {reason}")]
    Unreadable {
        /// The input's name.
        file: String,
        /// The system's message.
        reason: String,
    },
    /// Damaged PEM or DER.
    #[error("{file} is a damaged certificate signing request ({reason}): create it again")]
    Malformed {
        /// The input's name.
        file: String,
        /// Decoder message.
        reason: String,
    },
    /// The request's key is not one hsmsign certifies.
    #[error(
        "{file}: {source}. Create the request with an EC P-256/P-384 key or an RSA key of 2048 to \
         8192 bits"
    )]
    UnsupportedKey {
        /// The input's name.
        file: String,
        /// What the signing layer said.
        source: SignError,
    },
    /// The request is signed with an algorithm hsmsign does not accept.
    #[error("{file} is signed with {algorithm}, which hsmsign does not accept: {hint}")]
    UnsupportedSignature {
        /// The input's name.
        file: String,
        /// The algorithm (name or OID).
        algorithm: String,
        /// What to do.
        hint: &'static str,
    },
    /// The self-signature does not verify: the request was altered or is damaged.
    #[error(
        "the signature of {file} does not verify against its own public key ({algorithm}): \
         the request was altered or damaged; ask for a fresh one"
    )]
    BadSignature {
        /// The input's name.
        file: String,
        /// The algorithm named in the request.
        algorithm: SignatureAlgorithm,
    },
    /// The request asks for a CA certificate.
    #[error(
        "{file} asks for a CA certificate ({what}), but this command issues end-entity \
         certificates: create the request without it, or sign it as an intermediate CA with \
         `hsmsign ca sign-intermediate` if a CA is what is wanted"
    )]
    AsksForCa {
        /// The input's name.
        file: String,
        /// What it asked for.
        what: &'static str,
    },
    /// An unknown critical extension was requested.
    #[error(
        "{file} requests critical extension {oid}, which hsmsign does not know: \
         create the request without it"
    )]
    UnknownCriticalExtension {
        /// The input's name.
        file: String,
        /// Its OID.
        oid: String,
    },
    /// A requested subject alternative name is not valid.
    #[error("{file}: {source}")]
    BadSan {
        /// The input's name.
        file: String,
        /// What is wrong.
        source: SanError,
    },
    /// The subject cannot be used as is.
    #[error(
        "the subject of {file} cannot be used ({source}); give the subject explicitly \
         (--subject, where the command has it) or ask for a corrected request"
    )]
    Subject {
        /// The input's name.
        file: String,
        /// What is wrong.
        source: DnError,
    },
}

/// A verified certificate signing request.
#[derive(Clone, Debug)]
pub struct CertificateRequest {
    der: Vec<u8>,
    file: String,
    subject_der: Vec<u8>,
    public_key: PublicKey,
    signature_algorithm: SignatureAlgorithm,
    sans: Vec<SanEntry>,
    ignored: Vec<String>,
    basic_constraints: Option<RequestedBasicConstraints>,
}

/// The basicConstraints a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestedBasicConstraints {
    /// cA.
    pub ca: bool,
    /// pathLenConstraint (`None`: no limit asked for).
    pub path_len: Option<u8>,
}

/// What a request is read for: an end-entity certificate, or an intermediate CA certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    EndEntity,
    Ca,
}

impl CertificateRequest {
    /// The request's DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject as a [`DistinguishedName`]; fails (with advice to give `--subject`) if it
    /// has no CN, attributes hsmsign does not issue, or values that break the name rules.
    pub fn subject(&self) -> Result<DistinguishedName, CsrError> {
        DistinguishedName::from_der(&self.subject_der, "the certificate request").map_err(
            |source| CsrError::Subject {
                file: self.file.clone(),
                source,
            },
        )
    }

    /// The subject as written in the request (RFC 4514), for display; never fails.
    pub fn subject_text(&self) -> String {
        describe_name_der(&self.subject_der)
    }

    /// The key to certify.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The algorithm of the request's self-signature.
    pub fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.signature_algorithm
    }

    /// Subject alternative names requested (validated like `--san`).
    pub fn sans(&self) -> &[SanEntry] {
        &self.sans
    }

    /// Requested extensions and attributes that will not be honoured (the profile decides),
    /// one description each, for a notice to the user.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// The basicConstraints the request asks for, if it has that extension.
    pub fn requested_basic_constraints(&self) -> Option<RequestedBasicConstraints> {
        self.basic_constraints
    }
}

/// Read a request file, at most [`MAX_CSR_BYTES`] of it: a larger file (or a device that never
/// ends) is refused without being read whole.
pub fn read_csr_file(path: &std::path::Path) -> Result<Vec<u8>, CsrError> {
    use crate::input::{InputError, InputKind};
    use std::io::Read;
    let file = path.display().to_string();
    let unreadable = |reason: String| CsrError::Unreadable {
        file: file.clone(),
        reason,
    };
    let too_large = |size: usize| CsrError::TooLarge {
        file: file.clone(),
        size,
        max: MAX_CSR_BYTES,
    };
    // A regular file, opened without blocking: a FIFO or a device never hangs the command.
    let opened = crate::input::open(path, InputKind::Csr).map_err(|e| match e {
        InputError::TooLarge { .. } => too_large(
            std::fs::metadata(path)
                .ok()
                .and_then(|m| usize::try_from(m.len()).ok())
                .unwrap_or(MAX_CSR_BYTES + 1),
        ),
        InputError::NotRegular { found, .. } => unreadable(format!(
            "it is {found}, not a regular file; give the CSR file itself"
        )),
        InputError::Io { source, .. } => unreadable(source.to_string()),
    })?;
    let mut bytes = Vec::new();
    opened
        .take(MAX_CSR_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(e.to_string()))?;
    if bytes.len() > MAX_CSR_BYTES {
        // The file grew while it was read.
        return Err(too_large(bytes.len()));
    }
    Ok(bytes)
}

/// Parse and verify a certificate signing request for an end-entity certificate from PEM or
/// DER. `file` names the input in errors. Requests for a CA certificate are refused.
pub fn parse_csr(bytes: &[u8], file: &str) -> Result<CertificateRequest, CsrError> {
    parse(bytes, file, Purpose::EndEntity)
}

/// Parse and verify a certificate signing request for an intermediate CA certificate: like
/// [`parse_csr`], but CA:TRUE, keyCertSign and cRLSign are accepted (the requested
/// basicConstraints are kept, see [`CertificateRequest::requested_basic_constraints`]) and
/// subject alternative names are ignored.
pub fn parse_ca_csr(bytes: &[u8], file: &str) -> Result<CertificateRequest, CsrError> {
    parse(bytes, file, Purpose::Ca)
}

fn parse(bytes: &[u8], file: &str, purpose: Purpose) -> Result<CertificateRequest, CsrError> {
    let file_s = file.to_string();
    if bytes.len() > MAX_CSR_BYTES {
        return Err(CsrError::TooLarge {
            file: file_s,
            size: bytes.len(),
            max: MAX_CSR_BYTES,
        });
    }
    let malformed = |reason: String| CsrError::Malformed {
        file: file_s.clone(),
        reason,
    };
    let der = match crate::encoding::first_pem_block(bytes) {
        Some(block) => {
            match block.label.as_str() {
                "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => {}
                other => return Err(wrong_pem_type(file, other)),
            }
            block.der.map_err(&malformed)?
        }
        None => bytes.to_vec(),
    };
    let req = match CertReq::from_der(&der) {
        Ok(req) => req,
        Err(e) => {
            if Certificate::from_der(&der).is_ok() {
                return Err(wrong_pem_type(file, "CERTIFICATE"));
            }
            if CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&der).is_ok() {
                return Err(wrong_pem_type(file, "X509 CRL"));
            }
            if der.first() == Some(&0x30) && der.len() > 16 {
                return Err(malformed(format!("DER decoding failed: {e}")));
            }
            return Err(CsrError::NotACsr { file: file_s });
        }
    };
    let raw = SignedRaw::split(&der).map_err(|e| malformed(e.to_string()))?;
    let info_der = raw.tbs_der().map_err(|e| malformed(e.to_string()))?;

    // The key first: nothing else matters if it is one we do not certify.
    let spki_der = req
        .info
        .public_key
        .to_der()
        .map_err(|e| malformed(e.to_string()))?;
    let public_key =
        PublicKey::from_spki_der(&spki_der).map_err(|source| CsrError::UnsupportedKey {
            file: file_s.clone(),
            source,
        })?;

    // The self-signature, with the digest the algorithm names, on the key's own curve.
    let alg = parse_signature_algorithm(&req.algorithm).ok_or_else(|| {
        let oid = req.algorithm.oid.to_string();
        let (algorithm, hint) = match oid.as_str() {
            "1.2.840.113549.1.1.5" => (
                "sha1WithRSAEncryption",
                "SHA-1 is broken; create the request again with -sha256",
            ),
            "1.2.840.10045.4.1" => (
                "ecdsa-with-SHA1",
                "SHA-1 is broken; create the request again with -sha256",
            ),
            "1.2.840.113549.1.1.10" => (
                "RSASSA-PSS",
                "create the request with PKCS#1 v1.5 padding (the openssl default)",
            ),
            _ => (
                oid.as_str(),
                "use ECDSA or RSA PKCS#1 v1.5 with SHA-256, SHA-384 or SHA-512",
            ),
        };
        CsrError::UnsupportedSignature {
            file: file_s.clone(),
            algorithm: algorithm.to_string(),
            hint,
        }
    })?;
    if !alg.fits(public_key.algorithm()) {
        return Err(CsrError::UnsupportedSignature {
            file: file_s,
            algorithm: format!("{alg} over a {} key", public_key.algorithm()),
            hint: "the signature algorithm does not match the key; create the request again",
        });
    }
    let signature = raw
        .signature
        .as_bytes()
        .ok_or_else(|| malformed("signature BIT STRING has unused bits".into()))?;
    public_key
        .verify(alg, &info_der, signature)
        .map_err(|_| CsrError::BadSignature {
            file: file_s.clone(),
            algorithm: alg,
        })?;

    // What it asks for.
    let mut sans = Vec::new();
    let mut ignored = Vec::new();
    let mut basic_constraints = None;
    for attr in req.info.attributes.iter() {
        match attr.oid {
            OID_EXTENSION_REQUEST => {
                for value in attr.values.iter() {
                    let exts: Vec<Extension> = value
                        .decode_as()
                        .map_err(|e| malformed(format!("extensionRequest: {e}")))?;
                    let mut asked = Asked {
                        sans: &mut sans,
                        ignored: &mut ignored,
                        basic_constraints: &mut basic_constraints,
                    };
                    check_requested_extensions(file, purpose, &exts, &mut asked)?;
                }
            }
            OID_CHALLENGE_PASSWORD => ignored.push("challengePassword attribute".into()),
            other => ignored.push(format!("attribute {other}")),
        }
    }
    if sans.len() > MAX_SANS {
        return Err(CsrError::BadSan {
            file: file_s,
            source: SanError::TooMany {
                count: sans.len(),
                max: MAX_SANS,
            },
        });
    }
    Ok(CertificateRequest {
        subject_der: req
            .info
            .subject
            .to_der()
            .map_err(|e| malformed(e.to_string()))?,
        der,
        file: file_s,
        public_key,
        signature_algorithm: alg,
        sans,
        ignored,
        basic_constraints,
    })
}

/// What the extensions of a request ask for, collected while they are checked.
struct Asked<'a> {
    sans: &'a mut Vec<SanEntry>,
    ignored: &'a mut Vec<String>,
    basic_constraints: &'a mut Option<RequestedBasicConstraints>,
}

fn check_requested_extensions(
    file: &str,
    purpose: Purpose,
    exts: &[Extension],
    asked: &mut Asked<'_>,
) -> Result<(), CsrError> {
    let Asked {
        sans,
        ignored,
        basic_constraints,
    } = asked;
    let malformed = |reason: String| CsrError::Malformed {
        file: file.to_string(),
        reason,
    };
    let mut seen = std::collections::HashSet::new();
    for ext in exts {
        let oid = ext.extn_id.to_string();
        if !seen.insert(oid.clone()) {
            return Err(malformed(format!("extension {oid} requested twice")));
        }
        let bytes = ext.extn_value.as_bytes();
        match oid.as_str() {
            "2.5.29.17" if purpose == Purpose::Ca => {
                ignored.push("subjectAltName (a CA certificate carries none)".into());
            }
            "2.5.29.17" => {
                let san = SubjectAltName::from_der(bytes)
                    .map_err(|e| malformed(format!("subjectAltName: {e}")))?;
                // Count before reading each one, so a huge list costs nothing.
                if san.0.len() > MAX_SANS {
                    return Err(CsrError::BadSan {
                        file: file.to_string(),
                        source: SanError::TooMany {
                            count: san.0.len(),
                            max: MAX_SANS,
                        },
                    });
                }
                for name in &san.0 {
                    let entry =
                        SanEntry::from_general_name(name).map_err(|source| CsrError::BadSan {
                            file: file.to_string(),
                            source,
                        })?;
                    if !sans.contains(&entry) {
                        sans.push(entry);
                    }
                }
            }
            "2.5.29.19" => {
                let bc = BasicConstraints::from_der(bytes)
                    .map_err(|e| malformed(format!("basicConstraints: {e}")))?;
                if bc.ca && purpose == Purpose::EndEntity {
                    return Err(CsrError::AsksForCa {
                        file: file.to_string(),
                        what: "basicConstraints CA:TRUE",
                    });
                }
                **basic_constraints = Some(RequestedBasicConstraints {
                    ca: bc.ca,
                    path_len: bc.path_len_constraint,
                });
                if purpose == Purpose::EndEntity {
                    ignored.push("basicConstraints (the profile decides)".into());
                }
            }
            "2.5.29.15" => {
                let ku =
                    KeyUsage::from_der(bytes).map_err(|e| malformed(format!("keyUsage: {e}")))?;
                if purpose == Purpose::Ca {
                    // keyCertSign and cRLSign are what the certificate carries: only a wish for
                    // anything else is worth a notice.
                    if ku.0 != (KeyUsages::KeyCertSign | KeyUsages::CRLSign) {
                        ignored.push(
                            "keyUsage (a CA certificate carries exactly keyCertSign and cRLSign)"
                                .into(),
                        );
                    }
                    continue;
                }
                if ku.0.contains(KeyUsages::KeyCertSign) {
                    return Err(CsrError::AsksForCa {
                        file: file.to_string(),
                        what: "keyUsage keyCertSign",
                    });
                }
                if ku.0.contains(KeyUsages::CRLSign) {
                    return Err(CsrError::AsksForCa {
                        file: file.to_string(),
                        what: "keyUsage cRLSign",
                    });
                }
                ignored.push("keyUsage (the profile decides)".into());
            }
            "2.5.29.37" => ignored.push("extendedKeyUsage (the profile decides)".into()),
            "2.5.29.14" => ignored.push("subjectKeyIdentifier (computed from the key)".into()),
            _ if ext.critical => {
                return Err(CsrError::UnknownCriticalExtension {
                    file: file.to_string(),
                    oid,
                });
            }
            _ => ignored.push(format!("extension {oid}")),
        }
    }
    Ok(())
}

fn wrong_pem_type(file: &str, label: &str) -> CsrError {
    let (what, hint) = match label {
        "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => (
            "a certificate".to_string(),
            "give the request (.csr) the certificate was made from, or a new request",
        ),
        "X509 CRL" => (
            "a certificate revocation list".to_string(),
            "give the request (.csr) file",
        ),
        l if l.contains("PRIVATE KEY") => (
            format!("a private key (PEM `{l}`)"),
            "give the request (.csr) made with it; keep the private key where it is",
        ),
        "PUBLIC KEY" => (
            "a bare public key".to_string(),
            "a request must be signed by its key: create one with `openssl req -new`",
        ),
        l => (
            format!("a PEM `{l}` block"),
            "give a PEM `CERTIFICATE REQUEST` or its DER form",
        ),
    };
    CsrError::WrongType {
        file: file.to_string(),
        what,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::KeyAlgorithm;
    use crate::x509::testutil::{openssl, openssl_ok};

    /// Make a key and request with openssl; returns the PEM request.
    fn openssl_csr(dir: &std::path::Path, name: &str, newkey: &[&str], extra: &[&str]) -> Vec<u8> {
        let key = dir.join(format!("{name}.key"));
        let csr = dir.join(format!("{name}.csr"));
        let mut args = vec!["req", "-new", "-nodes"];
        args.extend_from_slice(newkey);
        args.extend_from_slice(&[
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
            "-subj",
            "/C=DE/O=SOS/CN=agent-1.example.com",
        ]);
        args.extend_from_slice(extra);
        openssl_ok(&args);
        std::fs::read(csr).unwrap()
    }

    #[test]
    fn accepts_openssl_requests_and_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        // name, key options, extra options, expected key, expected signature algorithm
        type Case<'a> = (
            &'a str,
            &'a [&'a str],
            &'a [&'a str],
            KeyAlgorithm,
            SignatureAlgorithm,
        );
        let cases: [Case<'_>; 4] = [
            (
                "p256",
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                &[],
                KeyAlgorithm::EcP256,
                SignatureAlgorithm::EcdsaSha256,
            ),
            (
                // openssl signs P-384 requests with SHA-256 unless told otherwise.
                "p384",
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
                &[],
                KeyAlgorithm::EcP384,
                SignatureAlgorithm::EcdsaSha256,
            ),
            (
                "p384sha384",
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
                &["-sha384"],
                KeyAlgorithm::EcP384,
                SignatureAlgorithm::EcdsaSha384,
            ),
            (
                "rsa2048",
                &["-newkey", "rsa:2048"],
                &[
                    "-addext",
                    "subjectAltName=DNS:agent-1.example.com,IP:192.0.2.5",
                    "-addext",
                    "keyUsage=digitalSignature,keyEncipherment",
                ],
                KeyAlgorithm::Rsa(2048),
                SignatureAlgorithm::RsaSha256,
            ),
        ];
        for (name, newkey, extra, key_alg, sig_alg) in cases {
            let pem = openssl_csr(dir.path(), name, newkey, extra);
            let csr = parse_csr(&pem, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(csr.public_key().algorithm(), key_alg, "{name}");
            assert_eq!(csr.signature_algorithm(), sig_alg, "{name}");
            let subject = csr.subject().unwrap();
            assert_eq!(subject.to_string(), "CN=agent-1.example.com,O=SOS,C=DE");
            // The same request as DER.
            let der_path = dir.path().join(format!("{name}.der"));
            openssl_ok(&[
                "req",
                "-in",
                dir.path().join(format!("{name}.csr")).to_str().unwrap(),
                "-outform",
                "DER",
                "-out",
                der_path.to_str().unwrap(),
            ]);
            let from_der = parse_csr(&std::fs::read(&der_path).unwrap(), name).unwrap();
            assert_eq!(from_der.public_key(), csr.public_key());
            // The key we read is the one openssl holds.
            let pubkey = openssl(&[
                "pkey",
                "-in",
                dir.path().join(format!("{name}.key")).to_str().unwrap(),
                "-pubout",
                "-outform",
                "DER",
            ]);
            assert_eq!(pubkey, csr.public_key().spki_der(), "{name}");
        }
        let rsa = parse_csr(&std::fs::read(dir.path().join("rsa2048.csr")).unwrap(), "r").unwrap();
        assert_eq!(
            rsa.sans(),
            [
                SanEntry::Dns("agent-1.example.com".into()),
                SanEntry::Ip("192.0.2.5".parse().unwrap())
            ]
        );
        assert!(rsa.ignored().iter().any(|i| i.starts_with("keyUsage")));
    }

    #[test]
    fn refuses_weak_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let rsa1024 = openssl_csr(dir.path(), "rsa1024", &["-newkey", "rsa:1024"], &[]);
        let err = parse_csr(&rsa1024, "rsa1024.csr").unwrap_err();
        assert!(matches!(err, CsrError::UnsupportedKey { .. }), "{err}");
        assert!(err.to_string().contains("RSA-1024"), "{err}");

        let k1 = openssl_csr(
            dir.path(),
            "k1",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
            &[],
        );
        let err = parse_csr(&k1, "k1.csr").unwrap_err();
        assert!(matches!(err, CsrError::UnsupportedKey { .. }), "{err}");
        assert!(err.to_string().contains("secp256k1"), "{err}");
    }

    #[test]
    fn refuses_a_tampered_request() {
        let dir = tempfile::tempdir().unwrap();
        openssl_csr(
            dir.path(),
            "t",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            &["-outform", "DER"],
        );
        let mut der = std::fs::read(dir.path().join("t.csr")).unwrap();
        // Flip a bit in the last byte: inside the signature's s value.
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let err = parse_csr(&der, "t.csr").unwrap_err();
        assert!(matches!(err, CsrError::BadSignature { .. }), "{err}");
        // And a changed subject (a byte of the CN) with the signature intact.
        let mut der = std::fs::read(dir.path().join("t.csr")).unwrap();
        let pos = der.windows(7).position(|w| w == b"agent-1").unwrap();
        der[pos] = b'b';
        let err = parse_csr(&der, "t.csr").unwrap_err();
        assert!(matches!(err, CsrError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn refuses_requests_for_a_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
        let ca = openssl_csr(
            dir.path(),
            "ca",
            &ec,
            &["-addext", "basicConstraints=critical,CA:TRUE"],
        );
        let err = parse_csr(&ca, "ca.csr").unwrap_err();
        assert!(
            matches!(
                err,
                CsrError::AsksForCa {
                    what: "basicConstraints CA:TRUE",
                    ..
                }
            ),
            "{err}"
        );
        let certsign = openssl_csr(dir.path(), "ku", &ec, &["-addext", "keyUsage=keyCertSign"]);
        let err = parse_csr(&certsign, "ku.csr").unwrap_err();
        assert!(
            matches!(
                err,
                CsrError::AsksForCa {
                    what: "keyUsage keyCertSign",
                    ..
                }
            ),
            "{err}"
        );
        let crit = openssl_csr(
            dir.path(),
            "crit",
            &ec,
            &["-addext", "1.3.6.1.4.1.99999.1=critical,DER:0500"],
        );
        let err = parse_csr(&crit, "crit.csr").unwrap_err();
        assert!(
            matches!(err, CsrError::UnknownCriticalExtension { .. }),
            "{err}"
        );
        // The same unknown extension, not critical, is only noted.
        let noncrit = openssl_csr(
            dir.path(),
            "noncrit",
            &ec,
            &["-addext", "1.3.6.1.4.1.99999.1=DER:0500"],
        );
        let csr = parse_csr(&noncrit, "noncrit.csr").unwrap();
        assert!(
            csr.ignored()
                .iter()
                .any(|i| i.contains("1.3.6.1.4.1.99999.1"))
        );
    }

    #[test]
    fn says_what_the_wrong_input_is() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        let cert = dir.path().join("c.pem");
        openssl_ok(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
            "-subj",
            "/CN=x",
            "-days",
            "1",
        ]);
        let pem = std::fs::read(&cert).unwrap();
        let err = parse_csr(&pem, "c.pem").unwrap_err();
        assert!(matches!(err, CsrError::WrongType { .. }), "{err}");
        assert!(err.to_string().contains("holds a certificate"), "{err}");
        let der = openssl(&["x509", "-in", cert.to_str().unwrap(), "-outform", "DER"]);
        let err = parse_csr(&der, "c.der").unwrap_err();
        assert!(err.to_string().contains("holds a certificate"), "{err}");
        let err = parse_csr(&std::fs::read(&key).unwrap(), "k.pem").unwrap_err();
        assert!(err.to_string().contains("private key"), "{err}");
        let err = parse_csr(b"hello world, not a request", "junk").unwrap_err();
        assert!(matches!(err, CsrError::NotACsr { .. }), "{err}");
        let err = parse_csr(
            b"-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n",
            "bad64",
        )
        .unwrap_err();
        assert!(matches!(err, CsrError::Malformed { .. }), "{err}");
    }

    #[test]
    fn a_subject_without_cn_is_reported_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        let csr = dir.path().join("r.csr");
        openssl_ok(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
            "-subj",
            "/O=SOS",
        ]);
        let csr = parse_csr(&std::fs::read(&csr).unwrap(), "r.csr").unwrap();
        assert_eq!(csr.subject_text(), "O=SOS");
        let err = csr.subject().unwrap_err();
        assert!(err.to_string().contains("--subject"), "{err}");
    }

    /// The DER SubjectPublicKeyInfo of an RSA key with a `bits`-bit modulus (not a real key:
    /// enough to be classified).
    fn rsa_spki(bits: usize) -> Vec<u8> {
        use der::asn1::{BitString, Null, ObjectIdentifier, Uint};
        #[derive(der::Sequence)]
        struct RsaPub {
            n: Uint,
            e: Uint,
        }
        let mut n = vec![0xffu8; bits / 8];
        n[0] = 0xc1;
        let pk = RsaPub {
            n: Uint::new(&n).unwrap(),
            e: Uint::new(&[1, 0, 1]).unwrap(),
        }
        .to_der()
        .unwrap();
        spki::SubjectPublicKeyInfoOwned {
            algorithm: spki::AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
                parameters: Some(der::asn1::Any::from(Null)),
            },
            subject_public_key: BitString::from_bytes(&pk).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    /// A request for `spki` with a signature that is not checked (the key is refused first).
    fn unsigned_request(spki_der: &[u8]) -> Vec<u8> {
        use x509_cert::request::{CertReqInfo, Version};
        let info = CertReqInfo {
            version: Version::V1,
            subject: x509_cert::name::Name::from_der(
                &DistinguishedName::parse("CN=big")
                    .unwrap()
                    .to_der()
                    .unwrap(),
            )
            .unwrap(),
            public_key: spki::SubjectPublicKeyInfoOwned::from_der(spki_der).unwrap(),
            attributes: Default::default(),
        };
        CertReq {
            info,
            algorithm: spki::AlgorithmIdentifierOwned {
                oid: der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11"),
                parameters: Some(der::asn1::Any::from(der::asn1::Null)),
            },
            signature: der::asn1::BitString::from_bytes(&[0; 64]).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn rsa_keys_outside_2048_to_8192_bits_are_named_with_their_size() {
        for bits in [16384, 8200, 1024] {
            let err = parse_csr(&unsigned_request(&rsa_spki(bits)), "big.csr").unwrap_err();
            assert!(
                matches!(err, CsrError::UnsupportedKey { .. }),
                "{bits}: {err}"
            );
            let text = err.to_string();
            assert!(text.contains(&format!("RSA-{bits}")), "{text}");
            assert!(text.contains("2048 to 8192 bits"), "{text}");
            assert!(text.contains("big.csr"), "{text}");
            assert!(!text.contains("malformed"), "{text}");
        }
    }

    #[test]
    fn an_unsupported_curve_is_named_with_its_oid_and_the_supported_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p521 = openssl_csr(
            dir.path(),
            "p521",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
            &[],
        );
        let text = parse_csr(&p521, "p521.csr").unwrap_err().to_string();
        for want in [
            "P-521",
            "1.3.132.0.35",
            "P-256 (OID 1.2.840.10045.3.1.7)",
            "P-384",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
    }

    #[test]
    fn at_most_100_requested_names_and_64_kib() {
        let dir = tempfile::tempdir().unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
        let names = |n: usize| {
            (0..n)
                .map(|i| format!("DNS:h{i}.example.com"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let ok = openssl_csr(
            dir.path(),
            "hundred",
            &ec,
            &["-addext", &format!("subjectAltName={}", names(100))],
        );
        assert_eq!(parse_csr(&ok, "hundred.csr").unwrap().sans().len(), 100);
        let many = openssl_csr(
            dir.path(),
            "many",
            &ec,
            &["-addext", &format!("subjectAltName={}", names(101))],
        );
        let err = parse_csr(&many, "many.csr").unwrap_err();
        assert!(
            matches!(
                err,
                CsrError::BadSan {
                    source: SanError::TooMany {
                        count: 101,
                        max: 100
                    },
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("many.csr"), "{err}");
        let mut padded = ok.clone();
        padded.extend(std::iter::repeat_n(b'\n', 70 * 1024));
        let err = parse_csr(&padded, "padded.csr").unwrap_err();
        assert!(matches!(err, CsrError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("65536"), "{err}");
        // Files: read only up to the limit, the real size reported.
        let big = dir.path().join("big.csr");
        std::fs::write(&big, &padded).unwrap();
        let err = read_csr_file(&big).unwrap_err();
        assert!(
            matches!(err, CsrError::TooLarge { size, .. } if size == padded.len()),
            "{err}"
        );
        let small = dir.path().join("hundred.csr");
        assert_eq!(read_csr_file(&small).unwrap(), ok);
        // A device that never ends is refused at once, not read forever.
        let err = read_csr_file(std::path::Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        let err = read_csr_file(&dir.path().join("missing.csr")).unwrap_err();
        assert!(err.to_string().contains("missing.csr"), "{err}");
    }

    #[test]
    fn a_ca_request_is_read_for_an_intermediate_and_refused_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
        let ca = openssl_csr(
            dir.path(),
            "ca",
            &ec,
            &[
                "-addext",
                "basicConstraints=critical,CA:TRUE,pathlen:1",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-addext",
                "subjectAltName=DNS:ca.example.com",
            ],
        );
        let req = parse_ca_csr(&ca, "ca.csr").unwrap();
        assert_eq!(
            req.requested_basic_constraints(),
            Some(RequestedBasicConstraints {
                ca: true,
                path_len: Some(1)
            })
        );
        assert!(req.sans().is_empty());
        // keyCertSign + cRLSign is exactly what is issued: no notice for it.
        assert!(
            !req.ignored().iter().any(|i| i.starts_with("keyUsage")),
            "{:?}",
            req.ignored()
        );
        let odd = openssl_csr(
            dir.path(),
            "odd",
            &ec,
            &[
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            ],
        );
        let odd = parse_ca_csr(&odd, "odd.csr").unwrap();
        assert!(odd.ignored().iter().any(|i| i.starts_with("keyUsage")));
        assert!(
            req.ignored()
                .iter()
                .any(|i| i.starts_with("subjectAltName"))
        );
        assert!(matches!(
            parse_csr(&ca, "ca.csr"),
            Err(CsrError::AsksForCa { .. })
        ));
        // The message no longer says CA certificates are never made from a request.
        let text = parse_csr(&ca, "ca.csr").unwrap_err().to_string();
        assert!(text.contains("ca sign-intermediate"), "{text}");
        assert!(!text.contains("never from a request"), "{text}");
        // A plain request has no basicConstraints to report.
        let plain = openssl_csr(dir.path(), "plain", &ec, &[]);
        assert_eq!(
            parse_ca_csr(&plain, "plain.csr")
                .unwrap()
                .requested_basic_constraints(),
            None
        );
    }
}
