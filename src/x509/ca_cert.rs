//! Reading a CA certificate and checking it can issue: v3, CA:TRUE, keyCertSign, a supported
//! key, and a self-issued certificate that verifies under its own key.

use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};

use super::dn::describe_name_der;
use super::error::{IssueError, encoding};
use super::{SignedRaw, from_x509_time, parse_signature_algorithm};
use crate::signer::PublicKey;

/// A CA certificate hsmsign can issue under: v3, CA:TRUE, keyCertSign (when KeyUsage is
/// present) and a key of a supported kind.
#[derive(Clone, Debug)]
pub struct CaCertificate {
    der: Vec<u8>,
    subject_der: Vec<u8>,
    subject: String,
    public_key: PublicKey,
    key_id: Vec<u8>,
    path_len: Option<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    self_signed: bool,
    can_sign_crl: bool,
    warnings: Vec<String>,
}

impl CaCertificate {
    /// Read a CA certificate from PEM or DER and check it is one (for `ca import` and for
    /// every issuance). A self-issued certificate must verify under its own key.
    /// `source_name` names the input in errors (e.g. the file name).
    pub fn parse(bytes: &[u8], source_name: &str) -> Result<Self, IssueError> {
        let not_cert = |reason: String| IssueError::NotACertificate {
            source_name: source_name.to_string(),
            reason,
        };
        let der = match crate::encoding::first_pem_block(bytes) {
            Some(block) => {
                if block.label != "CERTIFICATE" && block.label != "X509 CERTIFICATE" {
                    return Err(not_cert(format!(
                        "it is a PEM `{}` block, not `CERTIFICATE`",
                        block.label
                    )));
                }
                block.der.map_err(not_cert)?
            }
            None => bytes.to_vec(),
        };
        let cert = Certificate::from_der(&der).map_err(|e| {
            not_cert(if der.first() == Some(&0x30) {
                format!("DER decoding failed: {e}")
            } else {
                "it is neither PEM nor DER".to_string()
            })
        })?;
        let tbs = cert.tbs_certificate();
        let subject_der = tbs.subject().to_der().map_err(encoding("subject"))?;
        let issuer_der = tbs.issuer().to_der().map_err(encoding("issuer"))?;
        let subject = describe_name_der(&subject_der);
        let not_ca = |reason: &str| IssueError::NotCa {
            subject: subject.clone(),
            reason: reason.to_string(),
        };
        if tbs.version() != x509_cert::Version::V3 {
            return Err(not_ca("it is not an X.509 v3 certificate"));
        }
        let bc = tbs
            .get_extension::<BasicConstraints>()
            .map_err(|e| not_ca(&format!("its BasicConstraints cannot be read: {e}")))?;
        let path_len = match &bc {
            Some((_, bc)) if bc.ca => bc.path_len_constraint,
            Some(_) => return Err(not_ca("BasicConstraints says CA:FALSE")),
            None => return Err(not_ca("it has no BasicConstraints extension")),
        };
        let ku = tbs
            .get_extension::<KeyUsage>()
            .map_err(|e| not_ca(&format!("its KeyUsage cannot be read: {e}")))?;
        let mut warnings = Vec::new();
        let can_sign_crl = match ku {
            Some((_, ku)) => {
                if !ku.0.contains(KeyUsages::KeyCertSign) {
                    return Err(not_ca("its KeyUsage lacks keyCertSign"));
                }
                ku.0.contains(KeyUsages::CRLSign)
            }
            None => {
                warnings.push(
                    "the CA certificate has no KeyUsage extension: RFC 5280 allows that, but \
                     strict verifiers (OpenSSL -x509_strict) reject chains through it; \
                     consider re-issuing it with keyCertSign and cRLSign"
                        .to_string(),
                );
                true
            }
        };
        if let Some((false, _)) = bc {
            warnings.push(
                "the CA certificate's BasicConstraints is not marked critical (RFC 5280 \
                 4.2.1.9 requires it): strict verifiers may reject chains through it"
                    .to_string(),
            );
        }
        let spki_der = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(encoding("public key"))?;
        let public_key =
            PublicKey::from_spki_der(&spki_der).map_err(|source| IssueError::CaKey {
                subject: subject.clone(),
                source,
            })?;
        let key_id = match tbs
            .get_extension::<SubjectKeyIdentifier>()
            .map_err(|e| not_ca(&format!("its SubjectKeyIdentifier cannot be read: {e}")))?
        {
            Some((_, ski)) => ski.0.as_bytes().to_vec(),
            None => public_key.key_identifier(),
        };
        let validity = tbs.validity();
        let not_before =
            from_x509_time(&validity.not_before).map_err(|e| not_cert(e.to_string()))?;
        let not_after = from_x509_time(&validity.not_after).map_err(|e| not_cert(e.to_string()))?;
        let self_signed = subject_der == issuer_der;
        if self_signed {
            let raw = SignedRaw::split(&der).map_err(|e| not_cert(e.to_string()))?;
            let ok = parse_signature_algorithm(&raw.algorithm).is_some_and(|alg| {
                raw.tbs_der().is_ok_and(|tbs| {
                    raw.signature
                        .as_bytes()
                        .is_some_and(|sig| public_key.verify(alg, &tbs, sig).is_ok())
                })
            });
            if !ok {
                return Err(IssueError::BadSelfSignature { subject });
            }
        }
        Ok(Self {
            der,
            subject_der,
            subject,
            public_key,
            key_id,
            path_len,
            not_before,
            not_after,
            self_signed,
            can_sign_crl,
            warnings,
        })
    }

    /// The certificate's DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate as PEM.
    pub fn to_pem(&self) -> String {
        crate::encoding::pem_encode("CERTIFICATE", &self.der)
    }

    /// The subject as an RFC 4514 string.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject's DER `Name` (used byte for byte as the issuer of what this CA signs).
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// The CA's public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The key identifier used in AuthorityKeyIdentifier: the certificate's
    /// SubjectKeyIdentifier, or one computed from the key when it has none.
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// The pathLenConstraint, if any.
    pub fn path_len(&self) -> Option<u8> {
        self.path_len
    }

    /// Start of validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// True if subject and issuer are the same name (and the self-signature verified).
    pub fn is_self_signed(&self) -> bool {
        self.self_signed
    }

    /// True if KeyUsage allows signing CRLs (or the certificate has no KeyUsage).
    pub fn can_sign_crl(&self) -> bool {
        self.can_sign_crl
    }

    /// Check that this certificate was issued by `parent`: its issuer name is the parent's
    /// subject and its signature verifies under the parent's key (for importing an
    /// intermediate together with the CA above it).
    pub fn verify_issued_by(&self, parent: &Self) -> Result<(), IssueError> {
        let not_issued = |reason: &str| IssueError::NotIssuedBy {
            subject: self.subject.clone(),
            parent: parent.subject.clone(),
            reason: reason.to_string(),
        };
        let cert = Certificate::from_der(&self.der).map_err(|e| not_issued(&e.to_string()))?;
        let issuer_der = cert
            .tbs_certificate()
            .issuer()
            .to_der()
            .map_err(|e| not_issued(&e.to_string()))?;
        if issuer_der != parent.subject_der {
            return Err(not_issued("its issuer name is not the parent's subject"));
        }
        let raw = SignedRaw::split(&self.der).map_err(|e| not_issued(&e.to_string()))?;
        let alg = parse_signature_algorithm(&raw.algorithm)
            .ok_or_else(|| not_issued("it is signed with an algorithm hsmsign does not know"))?;
        let tbs = raw.tbs_der().map_err(|e| not_issued(&e.to_string()))?;
        let sig = raw
            .signature
            .as_bytes()
            .ok_or_else(|| not_issued("its signature BIT STRING has unused bits"))?;
        parent
            .public_key
            .verify(alg, &tbs, sig)
            .map_err(|_| not_issued("its signature does not verify under the parent's key"))
    }

    /// Things that are allowed but will cause trouble with strict verifiers (for a notice on
    /// `ca import`). Empty for the CA certificates hsmsign issues.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}
