//! X.509 v2 certificate revocation lists (RFC 5280 section 5), signed by a CA key.
//!
//! The CRL carries the CA's AuthorityKeyIdentifier and a CRL Number; each entry its serial,
//! revocation time and, unless the reason is `unspecified`, a reasonCode (RFC 5280 5.3.1 asks
//! to leave `unspecified` out). Like certificates, a CRL is decoded and verified after signing
//! before its DER is handed out.

use std::fmt;

use der::asn1::{AnyRef, OctetString, Uint};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::crl::CertificateList;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, CrlReason};
use x509_cert::time::Time;

use super::build::{CaCertificate, IssueError, Serial, encoding};
use super::limits::MAX_CRL_DAYS;
use super::{
    SignedRaw, assemble_signed, format_time, from_x509_time, parse_signature_algorithm,
    signature_algorithm_identifier, to_x509_time, whole_seconds,
};
use crate::signer::{self, PublicKey, SignatureAlgorithm, SigningKey};

/// The CRL extension OIDs (RFC 5280 5.2, 5.3), from const-oid's database.
const OID_CRL_NUMBER: der::asn1::ObjectIdentifier = der::oid::db::rfc5280::ID_CE_CRL_NUMBER;
const OID_AUTHORITY_KEY_ID: der::asn1::ObjectIdentifier =
    der::oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER;
const OID_CRL_REASON: der::asn1::ObjectIdentifier = der::oid::db::rfc5280::ID_CE_CRL_REASONS;

/// Why a certificate was revoked: the RFC 5280 5.3.1 `CRLReason` codes hsmsign issues.
/// A revocation is final here, so `certificateHold` (6, which would be lifted later) is not
/// offered, and neither is `removeFromCRL` (8, which only delta CRLs use to lift a hold).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RevocationReason {
    /// unspecified (0): written as no reasonCode at all.
    Unspecified,
    /// keyCompromise (1).
    KeyCompromise,
    /// cACompromise (2).
    #[serde(rename = "cACompromise")]
    CaCompromise,
    /// affiliationChanged (3).
    AffiliationChanged,
    /// superseded (4).
    Superseded,
    /// cessationOfOperation (5).
    CessationOfOperation,
    /// privilegeWithdrawn (9).
    PrivilegeWithdrawn,
    /// aACompromise (10).
    #[serde(rename = "aACompromise")]
    AaCompromise,
}

impl RevocationReason {
    /// Every reason, in code order.
    pub const ALL: [Self; 8] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// The RFC 5280 name, e.g. `keyCompromise`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }

    /// The reasonCode number.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// The reason with reasonCode `code`, if hsmsign issues it.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|r| i64::from(r.code()) == code)
    }

    /// Parse a name (case-insensitive, `-` and `_` ignored: `key-compromise` works) or a
    /// reasonCode number, as `cert revoke --reason` takes it.
    pub fn parse(s: &str) -> Result<Self, IssueError> {
        let norm: String = s
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|r| r.name().to_ascii_lowercase() == norm || r.code().to_string() == norm)
            .ok_or_else(|| {
                IssueError::Crl(format!(
                    "unknown revocation reason `{s}`: use one of {} (a revocation is final, so \
                     certificateHold is not offered)",
                    Self::ALL.map(|r| r.name()).join(", ")
                ))
            })
    }

    fn to_x509(self) -> CrlReason {
        match self {
            Self::Unspecified => CrlReason::Unspecified,
            Self::KeyCompromise => CrlReason::KeyCompromise,
            Self::CaCompromise => CrlReason::CaCompromise,
            Self::AffiliationChanged => CrlReason::AffiliationChanged,
            Self::Superseded => CrlReason::Superseded,
            Self::CessationOfOperation => CrlReason::CessationOfOperation,
            Self::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
            Self::AaCompromise => CrlReason::AaCompromise,
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedCertificate {
    /// Its serial number.
    pub serial: Serial,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// Why.
    pub reason: RevocationReason,
}

/// What the CRL says.
#[derive(Clone, Debug)]
pub struct CrlParams<'a> {
    /// The CRL Number: must grow with every CRL the CA issues.
    pub crl_number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// The revoked certificates (may be empty).
    pub revoked: &'a [RevokedCertificate],
}

#[derive(der::Sequence)]
struct RevokedOut {
    serial: Uint,
    revocation_date: Time,
    extensions: Option<Vec<Extension>>,
}

/// TBSCertList as written (RFC 5280 5.1), with the issuer name as its original DER.
#[derive(der::Sequence)]
struct TbsCrlOut<'a> {
    version: u8,
    signature: AlgorithmIdentifierOwned,
    issuer: AnyRef<'a>,
    this_update: Time,
    next_update: Option<Time>,
    revoked: Option<Vec<RevokedOut>>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

/// Build and sign a CRL for `issuer` with its key `key`, and check it before returning its DER.
pub fn build_crl(
    params: &CrlParams<'_>,
    issuer: &CaCertificate,
    key: &dyn SigningKey,
) -> Result<Vec<u8>, IssueError> {
    if key.public_key() != issuer.public_key() {
        return Err(IssueError::IssuerKeyMismatch {
            key: key.name(),
            issuer: issuer.subject().to_string(),
        });
    }
    if !issuer.can_sign_crl() {
        return Err(IssueError::CannotSignCrl {
            subject: issuer.subject().to_string(),
        });
    }
    let this_update = whole_seconds(params.this_update);
    let next_update = whole_seconds(params.next_update);
    if next_update <= this_update {
        return Err(IssueError::Crl(format!(
            "nextUpdate {} is not after thisUpdate {}",
            format_time(next_update),
            format_time(this_update)
        )));
    }
    if next_update - this_update > time::Duration::days(MAX_CRL_DAYS as i64) {
        return Err(IssueError::Crl(format!(
            "nextUpdate {} is more than {MAX_CRL_DAYS} days after thisUpdate {}",
            format_time(next_update),
            format_time(this_update)
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for r in params.revoked {
        if !seen.insert(r.serial.clone()) {
            return Err(IssueError::Crl(format!(
                "serial {} is listed twice: list each revoked certificate once",
                r.serial
            )));
        }
    }

    let mut entries = Vec::with_capacity(params.revoked.len());
    for r in params.revoked {
        let extensions = if r.reason == RevocationReason::Unspecified {
            None
        } else {
            Some(vec![Extension {
                extn_id: OID_CRL_REASON,
                critical: false,
                extn_value: OctetString::new(
                    r.reason
                        .to_x509()
                        .to_der()
                        .map_err(encoding("reasonCode"))?,
                )
                .map_err(encoding("reasonCode"))?,
            }])
        };
        entries.push(RevokedOut {
            serial: r.serial.to_uint()?,
            revocation_date: to_x509_time(whole_seconds(r.revoked_at))
                .map_err(encoding("revocation date"))?,
            extensions,
        });
    }
    let crl_number = Uint::new(&params.crl_number.to_be_bytes()).map_err(encoding("CRL number"))?;
    let extensions = vec![
        Extension {
            extn_id: OID_AUTHORITY_KEY_ID,
            critical: false,
            extn_value: OctetString::new(
                AuthorityKeyIdentifier {
                    key_identifier: Some(
                        OctetString::new(issuer.key_id()).map_err(encoding("key identifier"))?,
                    ),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                }
                .to_der()
                .map_err(encoding("AuthorityKeyIdentifier"))?,
            )
            .map_err(encoding("AuthorityKeyIdentifier"))?,
        },
        Extension {
            extn_id: OID_CRL_NUMBER,
            critical: false,
            extn_value: OctetString::new(
                CrlNumber(crl_number)
                    .to_der()
                    .map_err(encoding("CRL number"))?,
            )
            .map_err(encoding("CRL number"))?,
        },
    ];

    let alg = key.public_key().algorithm().default_signature();
    let alg_id = signature_algorithm_identifier(alg).map_err(encoding("signature algorithm"))?;
    let tbs = TbsCrlOut {
        version: 1,
        signature: alg_id.clone(),
        issuer: AnyRef::from_der(issuer.subject_der()).map_err(encoding("issuer name"))?,
        this_update: to_x509_time(this_update).map_err(encoding("thisUpdate"))?,
        next_update: Some(to_x509_time(next_update).map_err(encoding("nextUpdate"))?),
        revoked: (!entries.is_empty()).then_some(entries),
        extensions: Some(extensions),
    };
    let tbs_der = tbs.to_der().map_err(encoding("TBSCertList"))?;
    // The rehearsal: the same bytes signed by a throwaway key of the same kind and checked as
    // the token's CRL will be, before the token is asked.
    let rehearsed = super::presign::rehearse(
        "CRL",
        &tbs_der,
        alg,
        &alg_id,
        key.public_key(),
        |der, throwaway| {
            check_crl(
                der,
                &tbs_der,
                alg,
                issuer,
                throwaway,
                params,
                (this_update, next_update),
            )
        },
    )?;
    let signature = signer::sign(key, alg, &tbs_der)?;
    let der = assemble_signed(&tbs_der, &alg_id, &signature).map_err(encoding("CRL"))?;
    check_crl(
        &der,
        &tbs_der,
        alg,
        issuer,
        issuer.public_key(),
        params,
        (this_update, next_update),
    )
    .map_err(|detail| IssueError::SelfCheck {
        what: "CRL",
        detail,
    })?;
    super::presign::same_tbs("CRL", &der, &rehearsed)?;
    Ok(der)
}

/// The CRL as PEM (`X509 CRL`).
pub fn crl_to_pem(der: &[u8]) -> String {
    crate::encoding::pem_encode("X509 CRL", der)
}

/// Decode the signed CRL and compare it with what was asked.
fn check_crl(
    der: &[u8],
    tbs_der: &[u8],
    alg: SignatureAlgorithm,
    issuer: &CaCertificate,
    verify_key: &PublicKey,
    params: &CrlParams<'_>,
    (this_update, next_update): (OffsetDateTime, OffsetDateTime),
) -> Result<(), String> {
    let crl = CertificateList::<x509_cert::certificate::Rfc5280>::from_der(der)
        .map_err(|e| format!("does not decode: {e}"))?;
    if crl.to_der().map_err(|e| e.to_string())? != der {
        return Err("is not canonical DER".into());
    }
    let raw = SignedRaw::split(der).map_err(|e| e.to_string())?;
    let signed = raw.tbs_der().map_err(|e| e.to_string())?;
    if signed != tbs_der {
        return Err("the signed TBSCertList differs from the one built".into());
    }
    if parse_signature_algorithm(&crl.signature_algorithm) != Some(alg)
        || parse_signature_algorithm(&crl.tbs_cert_list.signature) != Some(alg)
    {
        return Err(format!("signature algorithm is not {}", alg.oid()));
    }
    let sig = crl
        .signature
        .as_bytes()
        .ok_or("signature BIT STRING has unused bits")?;
    verify_key
        .verify(alg, &signed, sig)
        .map_err(|_| "signature does not verify under the CA key".to_string())?;
    let tbs = &crl.tbs_cert_list;
    if tbs.version != x509_cert::Version::V2 {
        return Err("not version 2".into());
    }
    if tbs.issuer.to_der().map_err(|e| e.to_string())? != issuer.subject_der() {
        return Err("issuer name differs".into());
    }
    let time = |t: &Time| from_x509_time(t).map_err(|e| e.to_string());
    if time(&tbs.this_update)? != this_update
        || tbs.next_update.as_ref().map(time).transpose()? != Some(next_update)
    {
        return Err("thisUpdate/nextUpdate differ".into());
    }
    let entries = tbs.revoked_certificates.as_deref().unwrap_or(&[]);
    if entries.len() != params.revoked.len() {
        return Err("number of entries differs".into());
    }
    for (got, want) in entries.iter().zip(params.revoked) {
        if !want.serial.matches(got.serial_number.as_bytes())
            || time(&got.revocation_date)? != whole_seconds(want.revoked_at)
        {
            return Err(format!("entry {} differs", want.serial));
        }
        let reason = match got.crl_entry_extensions.as_deref() {
            None | Some([]) => RevocationReason::Unspecified,
            Some([ext]) if ext.extn_id == OID_CRL_REASON && !ext.critical => {
                let code = CrlReason::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| format!("reasonCode of {}: {e}", want.serial))?;
                RevocationReason::ALL
                    .into_iter()
                    .find(|r| r.to_x509() == code && *r != RevocationReason::Unspecified)
                    .ok_or_else(|| format!("reasonCode of {} is unexpected", want.serial))?
            }
            Some(_) => return Err(format!("entry {} has unexpected extensions", want.serial)),
        };
        if reason != want.reason {
            return Err(format!("reason of {} differs", want.serial));
        }
    }
    let exts = tbs.crl_extensions.as_deref().ok_or("has no extensions")?;
    if exts.len() != 2 || exts.iter().any(|e| e.critical) {
        return Err("CRL extensions are not exactly AKI and CRL Number, non-critical".into());
    }
    let aki = AuthorityKeyIdentifier::from_der(exts[0].extn_value.as_bytes())
        .map_err(|e| format!("AuthorityKeyIdentifier: {e}"))?;
    if exts[0].extn_id != OID_AUTHORITY_KEY_ID
        || aki.key_identifier.as_ref().map(|k| k.as_bytes()) != Some(issuer.key_id())
    {
        return Err("AuthorityKeyIdentifier differs".into());
    }
    let number = CrlNumber::from_der(exts[1].extn_value.as_bytes())
        .map_err(|e| format!("CRL Number: {e}"))?;
    let want_number = Uint::new(&params.crl_number.to_be_bytes()).map_err(|e| e.to_string())?;
    if exts[1].extn_id != OID_CRL_NUMBER || number.0 != want_number {
        return Err("CRL Number differs".into());
    }
    Ok(())
}
