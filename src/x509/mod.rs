//! The X.509 layer every CA operation uses: names, profiles, subject alternative names,
//! certificate signing requests, certificates and CRLs (RFC 5280, RFC 2986, RFC 4514).
//!
//! - [`dn`]: distinguished names from RFC 4514 strings (`CN=..., O=..., C=DE`) or OpenSSL's
//!   slash form (`/C=DE/O=.../CN=...`), and back.
//! - [`profile`]: the closed set of certificate profiles and the one place that decides their
//!   extensions and validity periods.
//! - [`san`]: `--san DNS:host,IP:1.2.3.4,...` parsing and validation.
//! - [`csr`]: PKCS#10 requests: decoding, self-signature check, what they may ask for.
//! - [`build`]: issuing certificates.
//! - [`ca_cert`]: reading CA certificates and checking they can issue.
//! - [`serial`]: certificate serial numbers.
//! - [`crl`]: X.509 v2 certificate revocation lists.
//! - [`limits`]: the documented limits (validity, counts, sizes) and the characters refused
//!   in names.
//!
//! Every signature is made through [`crate::signer::sign`], so it is verified against the key
//! before it is used, and every certificate and CRL is decoded again after signing and compared
//! with what was asked for before its DER is handed out.
//!
//! The structures are built with the `x509-cert` types rather than a certificate generator:
//! that keeps the exact bytes of an imported CA's subject as the issuer name, allows repeated
//! attribute types (`DC=example,DC=com`) and multi-valued RDNs, and leaves every criticality
//! flag to [`profile`].

pub mod build;
pub mod ca_cert;
pub mod crl;
pub mod csr;
pub mod dn;
mod error;
pub mod limits;
pub(crate) mod presign;
pub mod profile;
pub mod san;
pub mod serial;

pub use build::{CaCertificate, IssueError, IssueParams, IssuedCertificate, Serial, issue};
pub use crl::{CrlParams, RevocationReason, RevokedCertificate, build_crl};
pub use csr::{
    CertificateRequest, CsrError, RequestedBasicConstraints, parse_ca_csr, parse_csr, read_csr_file,
};
pub use dn::{AttributeType, DistinguishedName, DnError};
pub use profile::{Profile, ProfileError};
pub use san::{SanEntry, SanError};

use der::asn1::{GeneralizedTime, UtcTime};
use der::{Decode, Encode, Tagged};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::time::Time;

use crate::signer::SignatureAlgorithm;

/// Truncate a time to whole seconds (X.509 times carry no fractions).
pub(crate) fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// Encode a time as RFC 5280 4.1.2.5 asks: UTCTime through 2049, GeneralizedTime from 2050.
pub(crate) fn to_x509_time(t: OffsetDateTime) -> Result<Time, der::Error> {
    let secs = u64::try_from(t.unix_timestamp()).map_err(|_| der::ErrorKind::DateTime)?;
    let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs))?;
    if dt.year() < 2050 {
        Ok(Time::UtcTime(UtcTime::from_date_time(dt)?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
    }
}

/// Convert an X.509 time back to an `OffsetDateTime`.
pub(crate) fn from_x509_time(t: &Time) -> Result<OffsetDateTime, der::Error> {
    let secs =
        i64::try_from(t.to_unix_duration().as_secs()).map_err(|_| der::ErrorKind::DateTime)?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| der::ErrorKind::DateTime.into())
}

/// Format a time for messages: `2026-11-22 10:00:00 UTC`.
pub fn format_time(t: OffsetDateTime) -> String {
    format!("{} UTC", utc_date_time(t, ' '))
}

/// `t` in UTC to the whole second as `YYYY-MM-DD{separator}HH:MM:SS`: the body of both the
/// message form above and the store's RFC 3339 timestamps.
pub(crate) fn utc_date_time(t: OffsetDateTime, separator: char) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}{separator}{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The AlgorithmIdentifier of a signature algorithm: no parameters for ECDSA (RFC 5758 3.2),
/// NULL parameters for PKCS#1 v1.5 (RFC 8017 A.2.4).
pub(crate) fn signature_algorithm_identifier(
    alg: SignatureAlgorithm,
) -> Result<AlgorithmIdentifierOwned, der::Error> {
    let oid =
        der::asn1::ObjectIdentifier::new(alg.oid()).map_err(|_| der::ErrorKind::OidMalformed)?;
    let parameters = if alg.is_ecdsa() {
        None
    } else {
        Some(der::asn1::Any::from(der::asn1::Null))
    };
    Ok(AlgorithmIdentifierOwned { oid, parameters })
}

/// Read a signature AlgorithmIdentifier back, checking its parameters are as RFC 5758 /
/// RFC 8017 want them.
pub(crate) fn parse_signature_algorithm(
    id: &AlgorithmIdentifierOwned,
) -> Option<SignatureAlgorithm> {
    let alg = SignatureAlgorithm::from_oid(&id.oid.to_string())?;
    let params_ok = match &id.parameters {
        None => true,
        Some(p) => !alg.is_ecdsa() && p.tag() == der::Tag::Null && p.value().is_empty(),
    };
    params_ok.then_some(alg)
}

/// A signed structure as it lies on the wire (certificate, CSR, CRL): the exact bytes that were
/// signed, the algorithm and the signature.
#[derive(der::Sequence)]
pub(crate) struct SignedRaw<'a> {
    /// The signed part, kept as its original TLV so its bytes are never re-encoded.
    pub tbs: der::asn1::AnyRef<'a>,
    /// The signature algorithm.
    pub algorithm: AlgorithmIdentifierOwned,
    /// The signature.
    pub signature: der::asn1::BitStringRef<'a>,
}

impl<'a> SignedRaw<'a> {
    /// Split a DER signed structure into its parts.
    pub(crate) fn split(der: &'a [u8]) -> Result<Self, der::Error> {
        Self::from_der(der)
    }

    /// The exact DER bytes that were signed.
    pub(crate) fn tbs_der(&self) -> Result<Vec<u8>, der::Error> {
        self.tbs.to_der()
    }
}

/// Assemble `SEQUENCE { tbs, algorithm, BIT STRING signature }` from the DER of the signed part.
pub(crate) fn assemble_signed(
    tbs_der: &[u8],
    alg: &AlgorithmIdentifierOwned,
    signature: &[u8],
) -> Result<Vec<u8>, der::Error> {
    let tbs = der::asn1::AnyRef::from_der(tbs_der)?;
    let signed = SignedRaw {
        tbs,
        algorithm: alg.clone(),
        signature: der::asn1::BitStringRef::from_bytes(signature)?,
    };
    signed.to_der()
}

/// A certificate file that could not be read as one.
#[derive(Debug, thiserror::Error)]
pub enum CertificateFileError {
    /// The file could not be read.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// It is not one X.509 certificate in PEM or DER (the message names the file).
    #[error("{0}")]
    Invalid(String),
}

/// Read one certificate from a PEM or DER file; returns its DER.
pub fn read_certificate_file(path: &std::path::Path) -> Result<Vec<u8>, CertificateFileError> {
    use der::Decode;
    let bytes = crate::input::read(path, crate::input::InputKind::Certificate)?;
    let der = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN") => {
            let start = text.find("-----BEGIN").unwrap_or(0);
            let (label, der) =
                der::pem::decode_vec(text[start..].trim().as_bytes()).map_err(|_| {
                    CertificateFileError::Invalid(format!("{} is not valid PEM", path.display()))
                })?;
            if label != "CERTIFICATE" {
                return Err(CertificateFileError::Invalid(format!(
                    "{} holds a {label} PEM block, not a CERTIFICATE",
                    path.display()
                )));
            }
            der
        }
        _ => bytes,
    };
    x509_cert::Certificate::from_der(&der).map_err(|_| {
        CertificateFileError::Invalid(format!("{} is not an X.509 certificate", path.display()))
    })?;
    Ok(der)
}

#[cfg(test)]
pub(crate) mod testutil;
