//! Issuing certificates.
//!
//! [`issue`] builds the TBSCertificate from a [`Profile`], signs it through
//! [`crate::signer::sign`] with the algorithm that follows the issuer key (P-256:
//! ecdsa-with-SHA256, P-384: ecdsa-with-SHA384, RSA: sha256WithRSAEncryption), then decodes the
//! result and checks that it verifies under the issuer key and says exactly what was asked
//! (issuer, subject, serial, key, validity, extensions and their criticality) before handing
//! out the DER.

pub use super::ca_cert::CaCertificate;
pub use super::error::IssueError;
pub(super) use super::error::encoding;
pub use super::serial::Serial;

use der::asn1::{AnyRef, Uint};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::time::{Time, Validity};

use super::dn::DistinguishedName;
use super::limits::{MAX_CERTIFICATE_BYTES, latest_x509_time};
use super::profile::{PlannedExtension, Profile};
use super::san::SanEntry;
use super::{
    SignedRaw, assemble_signed, format_time, from_x509_time, parse_signature_algorithm,
    signature_algorithm_identifier, to_x509_time, whole_seconds,
};
use crate::signer::{self, KeyAlgorithm, PublicKey, SignatureAlgorithm, SigningKey};

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
