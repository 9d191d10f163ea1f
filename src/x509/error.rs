//! The errors of issuing certificates and CRLs and of reading CA certificates: one enum, each
//! variant saying what to do next.

use super::dn::DnError;
use super::profile::{Profile, ProfileError};
use crate::signer::SignError;

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
