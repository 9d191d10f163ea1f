//! Issuing certificates, and reading the CA certificates they are issued under.
//!
//! [`issue`] builds the TBSCertificate from a [`Profile`], signs it through
//! [`crate::signer::sign`] with the algorithm that follows the issuer key (P-256:
//! ecdsa-with-SHA256, P-384: ecdsa-with-SHA384, RSA: sha256WithRSAEncryption), then decodes the
//! result and checks that it verifies under the issuer key and says exactly what was asked
//! (issuer, subject, serial, key, validity, extensions and their criticality) before handing
//! out the DER.

use der::asn1::{AnyRef, Uint};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::time::{Time, Validity};

use super::dn::{DistinguishedName, DnError, describe_name_der};
use super::limits::{MAX_CERTIFICATE_BYTES, latest_x509_time};
use super::profile::{PlannedExtension, Profile, ProfileError};
use super::san::SanEntry;
use super::{
    SignedRaw, assemble_signed, format_time, from_x509_time, parse_signature_algorithm,
    signature_algorithm_identifier, to_x509_time, whole_seconds,
};
use crate::signer::{self, KeyAlgorithm, PublicKey, SignError, SignatureAlgorithm, SigningKey};

/// Errors in issuing certificates and CRLs, and in reading CA certificates.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The serial number cannot be used.
    #[error("serial number {serial} cannot be used: {reason}")]
    Serial {
        /// The serial as hex.
        serial: String,
        /// Why.
        reason: &'static str,
    },
    /// The profile refused the request.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A name could not be encoded.
    #[error(transparent)]
    Name(#[from] DnError),
    /// A root must be self-signed, everything else needs an issuer.
    #[error("{0}")]
    IssuerChoice(&'static str),
    /// A self-signed certificate for a key other than the signing key.
    #[error(
        "a self-signed root must certify the signing key itself, but the subject key is {subject} \
         and the signing key {key} is {signing}: use the same key for both"
    )]
    SelfSignedKeyMismatch {
        /// Fingerprint of the subject key.
        subject: String,
        /// Name of the signing key.
        key: String,
        /// Fingerprint of the signing key.
        signing: String,
    },
    /// The signing key does not belong to the issuer certificate.
    #[error(
        "the key {key} does not belong to the CA certificate `{issuer}` (its public key differs): \
         give the key that was certified by this CA certificate"
    )]
    IssuerKeyMismatch {
        /// Name of the signing key.
        key: String,
        /// Issuer subject.
        issuer: String,
    },
    /// The issuer's path length forbids issuing a CA (or one that long).
    #[error(
        "CA `{issuer}` has path length constraint {issuer_path_len}, so it cannot issue {what}: \
         issue it from a CA higher up, or ask for a smaller path length"
    )]
    PathLength {
        /// Issuer subject.
        issuer: String,
        /// The issuer's pathLenConstraint.
        issuer_path_len: u8,
        /// What was asked.
        what: String,
    },
    /// The validity period is not usable.
    #[error("invalid validity period: {0}")]
    Validity(String),
    /// The validity period exceeds the profile's maximum.
    #[error(
        "a {profile} certificate may be valid for at most {max_years} years (until {limit}), \
         but {not_after} was asked: choose an earlier end date"
    )]
    ValidityTooLong {
        /// The profile.
        profile: Profile,
        /// Its maximum.
        max_years: i32,
        /// The latest allowed notAfter.
        limit: String,
        /// The asked notAfter.
        not_after: String,
    },
    /// The issuer expires before the new certificate would begin.
    #[error(
        "CA `{issuer}` expires {not_after}, before the new certificate would begin ({not_before}): \
         renew the CA first"
    )]
    IssuerExpired {
        /// Issuer subject.
        issuer: String,
        /// Issuer notAfter.
        not_after: String,
        /// Requested notBefore.
        not_before: String,
    },
    /// Signing failed (the cause from the signing layer is kept).
    #[error("signing with the CA key failed: {0}")]
    Sign(#[from] SignError),
    /// A structure could not be encoded.
    #[error("cannot encode the {what}: {reason}")]
    Encoding {
        /// What was being encoded.
        what: &'static str,
        /// Encoder message.
        reason: String,
    },
    /// The freshly signed certificate or CRL does not say what was asked.
    #[error(
        "the {what} just signed failed its own check ({detail}); nothing was written. \
         This is a bug in hsmsign: please report it with this message"
    )]
    SelfCheck {
        /// "certificate" or "CRL".
        what: &'static str,
        /// Which field differs.
        detail: String,
    },
    /// The input is not a certificate.
    #[error("{source_name} is not an X.509 certificate: {reason}")]
    NotACertificate {
        /// Where it came from.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// The certificate is not a CA certificate.
    #[error(
        "certificate `{subject}` is not a CA certificate ({reason}): give the certificate of the CA \
         itself, not one it issued"
    )]
    NotCa {
        /// Its subject.
        subject: String,
        /// What is missing.
        reason: String,
    },
    /// The CA certificate's key is not one hsmsign can use.
    #[error("CA certificate `{subject}` has a key hsmsign cannot use: {source}")]
    CaKey {
        /// Its subject.
        subject: String,
        /// Why.
        source: SignError,
    },
    /// A self-issued CA certificate whose signature does not verify.
    #[error(
        "the self-signed CA certificate `{subject}` does not verify under its own key: \
         the file is damaged or was altered"
    )]
    BadSelfSignature {
        /// Its subject.
        subject: String,
    },
    /// A certificate that was not issued by the given parent CA.
    #[error(
        "certificate `{subject}` was not issued by `{parent}`: {reason}. \
         Give the certificate of the CA that signed it"
    )]
    NotIssuedBy {
        /// The child's subject.
        subject: String,
        /// The parent's subject.
        parent: String,
        /// What does not match.
        reason: String,
    },
    /// The CA certificate does not allow CRL signing.
    #[error(
        "CA certificate `{subject}` has no cRLSign key usage, so it cannot sign CRLs: \
         re-issue the CA certificate with cRLSign"
    )]
    CannotSignCrl {
        /// Its subject.
        subject: String,
    },
    /// The certificate would be larger than hsmsign signs.
    #[error(
        "the certificate would be up to {size} bytes; hsmsign signs certificates of at most {max} \
         bytes: give fewer or shorter subject alternative names or name attributes"
    )]
    TooLarge {
        /// The planned size (with the largest signature the key makes).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The CRL request is not usable.
    #[error("invalid CRL: {0}")]
    Crl(String),
}

/// Map a DER encoder error to [`IssueError::Encoding`] of `what`.
pub(super) fn encoding(what: &'static str) -> impl Fn(der::Error) -> IssueError {
    move |e| IssueError::Encoding {
        what,
        reason: e.to_string(),
    }
}

/// A certificate serial number: a positive integer whose DER encoding takes at most 20 octets
/// (RFC 5280 4.1.2.2). Kept as its unsigned big-endian bytes without leading zeros, so one
/// number has one value however it was written (`0A:0B`, `a0b`, `0x0a0b`); ordered by value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// Take big-endian bytes (e.g. 16 bytes from the token RNG) as an unsigned number.
    /// Leading zero bytes are dropped; a zero serial is refused; so is one whose DER encoding
    /// (with the sign octet a high first bit needs) exceeds 20 octets.
    pub fn new(bytes: &[u8]) -> Result<Self, IssueError> {
        Self::checked(
            bytes,
            || crate::encoding::hex(bytes),
            "it needs more than 20 octets (RFC 5280 4.1.2.2); draw at most 19 random bytes",
        )
    }

    /// The serial in a DER INTEGER's content octets, as a certificate carries it (a 0x00 sign
    /// octet is dropped). A negative number (first bit set) is refused.
    pub fn from_der_integer(content: &[u8]) -> Result<Self, IssueError> {
        if content.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(IssueError::Serial {
                serial: crate::encoding::hex(content),
                reason: "it is negative; serial numbers must be positive",
            });
        }
        Self::new(content)
    }

    /// Parse a serial as `openssl x509 -serial` prints it or a user types it: hex in any case,
    /// with or without colons, spaces or a `0x` prefix, leading zeros ignored.
    pub fn parse(text: &str) -> Result<Self, IssueError> {
        let trimmed = text.trim();
        let digits: Vec<u8> = trimmed
            .strip_prefix("0x")
            .or_else(|| trimmed.strip_prefix("0X"))
            .unwrap_or(trimmed)
            .bytes()
            .filter(|c| *c != b':' && !c.is_ascii_whitespace())
            .collect();
        let nibbles = digits
            .iter()
            .map(|&c| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok()))
            .collect::<Option<Vec<u8>>>()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| IssueError::Serial {
                serial: text.to_string(),
                reason: "it is not hexadecimal; give it as `openssl x509 -serial` prints it",
            })?;
        // Pad to whole octets from the left, then pair the digits up.
        let pad = usize::from(nibbles.len() % 2 == 1);
        let bytes: Vec<u8> = std::iter::repeat_n(0, pad)
            .chain(nibbles)
            .collect::<Vec<u8>>()
            .chunks(2)
            .map(|pair| pair[0] << 4 | pair.get(1).copied().unwrap_or(0))
            .collect();
        Self::checked(
            &bytes,
            || text.to_string(),
            "it needs more than 20 octets (RFC 5280 4.1.2.2)",
        )
    }

    /// The same as [`Self::parse`]; the counterpart of [`Self::to_hex`].
    pub fn from_hex(s: &str) -> Result<Self, IssueError> {
        Self::parse(s)
    }

    /// `bytes` as a serial, or an error that shows the input as `shown()` gives it.
    fn checked(
        bytes: &[u8],
        shown: impl Fn() -> String,
        too_long: &'static str,
    ) -> Result<Self, IssueError> {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let magnitude = &bytes[start..];
        let Some(&first) = magnitude.first() else {
            return Err(IssueError::Serial {
                serial: shown(),
                reason: "it is zero; serial numbers must be positive",
            });
        };
        let encoded_len = magnitude.len() + usize::from(first & 0x80 != 0);
        if encoded_len > 20 {
            return Err(IssueError::Serial {
                serial: shown(),
                reason: too_long,
            });
        }
        Ok(Self(magnitude.to_vec()))
    }

    /// The unsigned big-endian value, without leading zeros.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex of [`Self::bytes`] (two digits per octet, as openssl prints serials).
    pub fn to_hex(&self) -> String {
        crate::encoding::hex(&self.0)
    }

    /// The DER INTEGER.
    pub(crate) fn to_uint(&self) -> Result<Uint, IssueError> {
        Uint::new(&self.0).map_err(encoding("serial number"))
    }

    /// Compare with an INTEGER's content bytes (which may carry a 0x00 sign octet).
    pub(crate) fn matches(&self, content: &[u8]) -> bool {
        let start = content
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(content.len());
        content[start..] == self.0[..]
    }
}

impl Ord for Serial {
    /// By value: without leading zeros, a longer number is the larger one.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Serial {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for Serial {
    /// As [`Serial::to_hex`] (for `--json` output).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

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

/// What to certify.
#[derive(Clone, Debug)]
pub struct IssueParams<'a> {
    /// The subject name (from `--subject` or a CSR).
    pub subject: &'a DistinguishedName,
    /// The certified key.
    pub public_key: &'a PublicKey,
    /// The profile deciding the extensions.
    pub profile: Profile,
    /// The serial number (random, drawn by the caller).
    pub serial: &'a Serial,
    /// Start of validity (fractions of seconds are dropped).
    pub not_before: OffsetDateTime,
    /// End of validity; cut to the issuer's notAfter when later (see
    /// [`IssuedCertificate::capped_from`]).
    pub not_after: OffsetDateTime,
    /// Subject alternative names.
    pub sans: &'a [SanEntry],
    /// pathLenConstraint for CA profiles.
    pub path_len: Option<u8>,
}

/// A certificate that was signed and checked.
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    /// The certificate's DER.
    pub der: Vec<u8>,
    /// The serial number.
    pub serial: Serial,
    /// Start of validity as written.
    pub not_before: OffsetDateTime,
    /// End of validity as written.
    pub not_after: OffsetDateTime,
    /// When the asked notAfter was later than the issuer's and was cut: the asked value.
    pub capped_from: Option<OffsetDateTime>,
    /// The signature algorithm used.
    pub signature_algorithm: SignatureAlgorithm,
}

impl IssuedCertificate {
    /// The certificate as PEM.
    pub fn to_pem(&self) -> String {
        crate::encoding::pem_encode("CERTIFICATE", &self.der)
    }

    /// A sentence for the user when the validity was cut to the issuer's, else `None`.
    pub fn notice(&self) -> Option<String> {
        self.capped_from.map(|asked| {
            format!(
                "validity shortened to end with the issuing CA's: notAfter {} instead of {}",
                format_time(self.not_after),
                format_time(asked)
            )
        })
    }
}

/// The TBSCertificate as written (RFC 5280 4.1): the issuer name, subject name and key are
/// carried as their DER so that they are never re-encoded.
#[derive(der::Sequence)]
struct TbsOut<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    version: Option<u8>,
    serial: Uint,
    signature: AlgorithmIdentifierOwned,
    issuer: AnyRef<'a>,
    validity: Validity,
    subject: AnyRef<'a>,
    spki: AnyRef<'a>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

/// Issue a certificate. `issuer` is the CA certificate whose key `key` is, or `None` for a
/// self-signed root (then `params.public_key` must be `key`'s public key and the profile
/// [`Profile::Root`]).
pub fn issue(
    params: &IssueParams<'_>,
    issuer: Option<&CaCertificate>,
    key: &dyn SigningKey,
) -> Result<IssuedCertificate, IssueError> {
    let plan = plan(params, issuer, key.public_key(), &|| key.name())?;
    let expected = Expected {
        tbs_der: &plan.tbs_der,
        alg: plan.alg,
        issuer_key: key.public_key(),
        issuer_der: &plan.issuer_der,
        subject_der: &plan.subject_der,
        serial: params.serial,
        spki_der: params.public_key.spki_der(),
        not_before: plan.not_before,
        not_after: plan.not_after,
        extensions: &plan.extensions,
    };
    // The rehearsal: the same bytes signed by a throwaway key of the same kind and checked as
    // the token's certificate will be, before the token is asked.
    let rehearsed = super::presign::rehearse(
        "certificate",
        &plan.tbs_der,
        plan.alg,
        &plan.alg_id,
        key.public_key(),
        |der, throwaway| {
            check_certificate(
                der,
                &Expected {
                    issuer_key: throwaway,
                    ..expected.clone()
                },
            )
        },
    )?;
    let signature = signer::sign(key, plan.alg, &plan.tbs_der)?;
    let der = assemble_signed(&plan.tbs_der, &plan.alg_id, &signature)
        .map_err(encoding("certificate"))?;
    check_certificate(&der, &expected).map_err(|detail| IssueError::SelfCheck {
        what: "certificate",
        detail,
    })?;
    super::presign::same_tbs("certificate", &der, &rehearsed)?;
    if params.profile.is_ca() {
        CaCertificate::parse(&der, "the new CA certificate").map_err(|e| {
            IssueError::SelfCheck {
                what: "certificate",
                detail: format!("it does not read back as a CA certificate: {e}"),
            }
        })?;
    }
    Ok(IssuedCertificate {
        der,
        serial: params.serial.clone(),
        not_before: plan.not_before,
        not_after: plan.not_after,
        capped_from: plan.capped_from,
        signature_algorithm: plan.alg,
    })
}

/// Check everything [`issue`] would check before it signs, without a key: for a request check
/// before the token is touched. `issuer` is the issuing CA's certificate, `None` for a root
/// (which then certifies `params.public_key` with itself). Returns the notice [`issue`] would
/// give when the validity is cut to the issuer's.
pub fn check_issuable(
    params: &IssueParams<'_>,
    issuer: Option<&CaCertificate>,
) -> Result<Option<String>, IssueError> {
    let signer_key = issuer.map_or(params.public_key, |ca| ca.public_key());
    let plan = plan(params, issuer, signer_key, &|| {
        "the issuing CA's key".to_string()
    })?;
    Ok(plan.capped_from.map(|asked| {
        format!(
            "validity shortened to end with the issuing CA's: notAfter {} instead of {}",
            format_time(plan.not_after),
            format_time(asked)
        )
    }))
}

/// A certificate ready to be signed.
struct Plan {
    tbs_der: Vec<u8>,
    alg: SignatureAlgorithm,
    alg_id: AlgorithmIdentifierOwned,
    issuer_der: Vec<u8>,
    subject_der: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    capped_from: Option<OffsetDateTime>,
    extensions: Vec<PlannedExtension>,
}

/// The longest DER signature `alg` makes with a key of `key`'s kind.
fn max_signature_len(key: &PublicKey) -> usize {
    match key.algorithm() {
        KeyAlgorithm::EcP256 => 72,
        KeyAlgorithm::EcP384 => 104,
        KeyAlgorithm::Rsa(bits) => bits.div_ceil(8),
    }
}

/// Decide and encode everything to be signed, checking the request: who signs, path length,
/// validity, names, extensions, and the size of the result. `signer` is the public key that
/// will sign (`signer_name` names it in messages).
fn plan(
    params: &IssueParams<'_>,
    issuer: Option<&CaCertificate>,
    signer: &PublicKey,
    signer_name: &dyn Fn() -> String,
) -> Result<Plan, IssueError> {
    let profile = params.profile;
    // Who signs, and may they?
    match (profile, issuer) {
        (Profile::Root, Some(_)) => {
            return Err(IssueError::IssuerChoice(
                "a root certificate is self-signed: issue it without an issuing CA, \
                 or use the intermediate profile to certify a CA under this one",
            ));
        }
        (Profile::Root, None) => {
            if signer != params.public_key {
                return Err(IssueError::SelfSignedKeyMismatch {
                    subject: params.public_key.fingerprint_hex(),
                    key: signer_name(),
                    signing: signer.fingerprint_hex(),
                });
            }
        }
        (_, None) => {
            return Err(IssueError::IssuerChoice(
                "only a root certificate is self-signed: give the issuing CA certificate",
            ));
        }
        (_, Some(ca)) => {
            if signer != ca.public_key() {
                return Err(IssueError::IssuerKeyMismatch {
                    key: signer_name(),
                    issuer: ca.subject().to_string(),
                });
            }
            if profile.is_ca()
                && let Some(limit) = ca.path_len()
            {
                let asked = params.path_len;
                if limit == 0 || asked.is_some_and(|p| p >= limit) {
                    return Err(IssueError::PathLength {
                        issuer: ca.subject().to_string(),
                        issuer_path_len: limit,
                        what: match asked {
                            Some(p) if limit > 0 => {
                                format!("an intermediate with path length {p}")
                            }
                            _ => "another CA".to_string(),
                        },
                    });
                }
            }
        }
    }

    // Validity.
    let not_before = whole_seconds(params.not_before);
    let asked_not_after = whole_seconds(params.not_after);
    if asked_not_after <= not_before {
        return Err(IssueError::Validity(format!(
            "notAfter {} is not after notBefore {}",
            format_time(asked_not_after),
            format_time(not_before)
        )));
    }
    if asked_not_after > latest_x509_time() {
        return Err(IssueError::Validity(format!(
            "notAfter {} is after {}, the last time a certificate can carry",
            format_time(asked_not_after),
            format_time(latest_x509_time())
        )));
    }
    let limit = profile.max_not_after(not_before);
    if asked_not_after > limit {
        return Err(IssueError::ValidityTooLong {
            profile,
            max_years: profile.max_validity_years(),
            limit: format_time(limit),
            not_after: format_time(asked_not_after),
        });
    }
    let mut not_after = asked_not_after;
    let mut capped_from = None;
    if let Some(ca) = issuer {
        if not_before >= ca.not_after() {
            return Err(IssueError::IssuerExpired {
                issuer: ca.subject().to_string(),
                not_after: format_time(ca.not_after()),
                not_before: format_time(not_before),
            });
        }
        if not_after > ca.not_after() {
            not_after = ca.not_after();
            capped_from = Some(asked_not_after);
        }
    }

    // Names, keys, extensions.
    let subject_der = params.subject.to_der()?;
    let issuer_der = match issuer {
        Some(ca) => ca.subject_der().to_vec(),
        None => subject_der.clone(),
    };
    let authority_key_id = match issuer {
        Some(ca) => ca.key_id().to_vec(),
        None => params.public_key.key_identifier(),
    };
    let extensions = profile.extensions(
        params.public_key,
        &authority_key_id,
        params.sans,
        params.path_len,
    )?;
    let encoded = extensions
        .iter()
        .map(PlannedExtension::encode)
        .collect::<Result<Vec<_>, _>>()
        .map_err(encoding("extensions"))?;

    let alg = signer.algorithm().default_signature();
    let alg_id = signature_algorithm_identifier(alg).map_err(encoding("signature algorithm"))?;
    let validity = Validity::new(
        to_x509_time(not_before).map_err(encoding("notBefore"))?,
        to_x509_time(not_after).map_err(encoding("notAfter"))?,
    );
    let tbs = TbsOut {
        version: Some(2),
        serial: params.serial.to_uint()?,
        signature: alg_id.clone(),
        issuer: AnyRef::from_der(&issuer_der).map_err(encoding("issuer name"))?,
        validity,
        subject: AnyRef::from_der(&subject_der).map_err(encoding("subject name"))?,
        spki: AnyRef::from_der(params.public_key.spki_der()).map_err(encoding("public key"))?,
        extensions: Some(encoded),
    };
    let tbs_der = tbs.to_der().map_err(encoding("TBSCertificate"))?;
    // SEQUENCE { tbs, algorithm, BIT STRING signature }: 4 octets per header at most, one for
    // the BIT STRING's unused-bits count.
    let alg_id_len = alg_id
        .to_der()
        .map_err(encoding("signature algorithm"))?
        .len();
    let size = tbs_der.len() + alg_id_len + max_signature_len(signer) + 4 + 4 + 1;
    if size > MAX_CERTIFICATE_BYTES {
        return Err(IssueError::TooLarge {
            size,
            max: MAX_CERTIFICATE_BYTES,
        });
    }
    Ok(Plan {
        tbs_der,
        alg,
        alg_id,
        issuer_der,
        subject_der,
        not_before,
        not_after,
        capped_from,
        extensions,
    })
}

/// What a freshly signed certificate must say.
#[derive(Clone)]
struct Expected<'a> {
    tbs_der: &'a [u8],
    alg: SignatureAlgorithm,
    issuer_key: &'a PublicKey,
    issuer_der: &'a [u8],
    subject_der: &'a [u8],
    serial: &'a Serial,
    spki_der: &'a [u8],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    extensions: &'a [PlannedExtension],
}

/// Decode `der` independently of how it was built and compare it with `want`.
fn check_certificate(der: &[u8], want: &Expected<'_>) -> Result<(), String> {
    let cert = Certificate::from_der(der).map_err(|e| format!("does not decode: {e}"))?;
    if cert.to_der().map_err(|e| e.to_string())? != der {
        return Err("is not canonical DER".into());
    }
    let raw = SignedRaw::split(der).map_err(|e| e.to_string())?;
    let signed_tbs = raw.tbs_der().map_err(|e| e.to_string())?;
    if signed_tbs != want.tbs_der {
        return Err("the signed TBSCertificate differs from the one built".into());
    }
    let tbs = cert.tbs_certificate();
    for (what, id) in [
        ("signatureAlgorithm", cert.signature_algorithm()),
        ("tbsCertificate.signature", tbs.signature()),
    ] {
        let owned = AlgorithmIdentifierOwned {
            oid: id.oid,
            parameters: id.parameters.clone(),
        };
        if parse_signature_algorithm(&owned) != Some(want.alg) {
            return Err(format!("{what} is not {}", want.alg.oid()));
        }
    }
    let sig = cert
        .signature()
        .as_bytes()
        .ok_or("signature BIT STRING has unused bits")?;
    want.issuer_key
        .verify(want.alg, &signed_tbs, sig)
        .map_err(|_| "signature does not verify under the issuer key".to_string())?;
    if tbs.version() != x509_cert::Version::V3 {
        return Err("not version 3".into());
    }
    if !want.serial.matches(tbs.serial_number().as_bytes()) {
        return Err("serial number differs".into());
    }
    if tbs.issuer().to_der().map_err(|e| e.to_string())? != want.issuer_der {
        return Err("issuer name differs".into());
    }
    if tbs.subject().to_der().map_err(|e| e.to_string())? != want.subject_der {
        return Err("subject name differs".into());
    }
    if tbs
        .subject_public_key_info()
        .to_der()
        .map_err(|e| e.to_string())?
        != want.spki_der
    {
        return Err("subject public key differs".into());
    }
    let times = |t: &Time| from_x509_time(t).map_err(|e| e.to_string());
    if times(&tbs.validity().not_before)? != want.not_before
        || times(&tbs.validity().not_after)? != want.not_after
    {
        return Err("validity differs".into());
    }
    if tbs.issuer_unique_id().is_some() || tbs.subject_unique_id().is_some() {
        return Err("carries unique identifiers".into());
    }
    let got = tbs
        .extensions()
        .ok_or("has no extensions")?
        .iter()
        .map(PlannedExtension::decode)
        .collect::<Result<Vec<_>, _>>()?;
    if got != want.extensions {
        return Err(format!(
            "extensions differ: built {:?}, read back {:?}",
            want.extensions, got
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
