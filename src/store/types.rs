//! Values that go into and come out of the store.

use std::collections::BTreeMap;

use sha2::Digest;
use time::OffsetDateTime;

use super::StoreError;
use crate::encoding::hex;
use crate::x509::{RevocationReason, Serial};

/// Who did something: the OS user and, when a token was logged in to, its label.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Operator {
    /// The operating-system user name.
    pub os_user: String,
    /// The label of the token the operator logged in to, if any.
    pub token: Option<String>,
}

impl Operator {
    /// An operator without a token login.
    pub fn new(os_user: impl Into<String>) -> Self {
        Self {
            os_user: os_user.into(),
            token: None,
        }
    }

    /// The same operator, logged in to the token labelled `label`.
    pub fn with_token(mut self, label: impl Into<String>) -> Self {
        self.token = Some(label.into());
        self
    }
}

/// How an audited operation ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It failed with this message.
    Failed(String),
}

/// What an audit record will say: built by the caller, completed by the store (sequence
/// number, time, the state rows written, the hash chain).
#[derive(Clone, Debug)]
pub struct AuditEntry {
    pub(crate) operation: String,
    pub(crate) operator: Operator,
    pub(crate) inputs: BTreeMap<String, String>,
    pub(crate) outputs: BTreeMap<String, String>,
    pub(crate) params: BTreeMap<String, String>,
    pub(crate) outcome: Outcome,
}

impl AuditEntry {
    /// A successful `operation` (e.g. `cert.issue`, `archive.sign`, `login`) by `operator`.
    pub fn new(operation: impl Into<String>, operator: Operator) -> Self {
        Self {
            operation: operation.into(),
            operator,
            inputs: BTreeMap::new(),
            outputs: BTreeMap::new(),
            params: BTreeMap::new(),
            outcome: Outcome::Ok,
        }
    }

    /// Record the SHA-256 of an input (a CSR, an archive) under `name`.
    pub fn input(mut self, name: impl Into<String>, data: &[u8]) -> Self {
        self.inputs.insert(name.into(), sha256_hex(data));
        self
    }

    /// Record an input by a SHA-256 the caller computed (for data streamed from disk).
    pub fn input_sha256(mut self, name: impl Into<String>, digest: [u8; 32]) -> Self {
        self.inputs.insert(name.into(), hex(&digest));
        self
    }

    /// Record the SHA-256 of an output (a certificate, a signed archive) under `name`.
    pub fn output(mut self, name: impl Into<String>, data: &[u8]) -> Self {
        self.outputs.insert(name.into(), sha256_hex(data));
        self
    }

    /// Record an output by a SHA-256 the caller computed.
    pub fn output_sha256(mut self, name: impl Into<String>, digest: [u8; 32]) -> Self {
        self.outputs.insert(name.into(), hex(&digest));
        self
    }

    /// Record a parameter (a key URI, a profile name, a CA name). Never a secret.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// Mark the operation as failed with `message` (for [`super::Store::record`]).
    pub fn failed(mut self, message: impl Into<String>) -> Self {
        self.outcome = Outcome::Failed(message.into());
        self
    }
}

/// One record of the audit log as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AuditRecord {
    /// Position in the log, from 1 without gaps.
    pub seq: u64,
    /// When it was written (UTC, RFC 3339).
    pub time: String,
    /// What was done.
    pub operation: String,
    /// Who did it.
    pub operator: Operator,
    /// Inputs' and outputs' SHA-256, parameters, the state rows written and, for an anchor,
    /// the signed head.
    pub details: serde_json::Value,
    /// How it ended.
    pub result: Outcome,
    /// The previous record's hash (64 zeros for the first record).
    pub prev_hash: String,
    /// SHA-256 over this record's fields and `prev_hash`.
    pub hash: String,
}

/// A CA to record.
#[derive(Clone, Copy, Debug)]
pub struct NewCa<'a> {
    /// The name the CLI uses (`--ca NAME`), unique.
    pub name: &'a str,
    /// The RFC 7512 URI of the CA's private key.
    pub key_uri: &'a str,
    /// The CA certificate, DER.
    pub certificate_der: &'a [u8],
    /// The issuing CA in this database, for a subordinate CA (its certificate must already be
    /// recorded in `certificates` with that issuer).
    pub parent: Option<&'a str>,
    /// Where the key comes from, e.g. "generated on token SoftHSM label root-ca, never extractable".
    pub key_provenance: &'a str,
    /// A key attestation (e.g. a YubiKey PIV attestation certificate), if there is one.
    pub attestation: Option<&'a [u8]>,
}

/// A CA as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CaRecord {
    /// Its name.
    pub name: String,
    /// Its key's URI.
    pub key_uri: String,
    /// Its certificate, DER.
    #[serde(skip)]
    pub certificate_der: Vec<u8>,
    /// Subject DN (RFC 4514).
    pub subject: String,
    /// Certificate serial.
    pub serial: Serial,
    /// Validity start (UTC).
    #[serde(serialize_with = "ser_time")]
    pub not_before: OffsetDateTime,
    /// Validity end (UTC).
    #[serde(serialize_with = "ser_time")]
    pub not_after: OffsetDateTime,
    /// SHA-256 of the certificate DER, lower-case hex.
    pub fingerprint: String,
    /// The issuing CA, for a subordinate CA.
    pub parent: Option<String>,
    /// Key provenance text.
    pub key_provenance: String,
    /// Key attestation, if any.
    #[serde(skip)]
    pub attestation: Option<Vec<u8>>,
    /// When it was recorded (UTC, RFC 3339).
    pub created_at: String,
    /// The audit record that recorded it.
    pub audit_seq: u64,
}

/// A certificate to record.
#[derive(Clone, Copy, Debug)]
pub struct NewCertificate<'a> {
    /// The issuing CA's name; the certificate's issuer DN must be that CA's subject.
    pub issuer: &'a str,
    /// The certificate, DER.
    pub der: &'a [u8],
    /// The profile it was issued under (`server`, `client`, `intermediate`, ...).
    pub profile: &'a str,
    /// Its subject alternative names, as the caller writes them (e.g. `DNS:host.example`).
    pub sans: &'a [String],
}

/// A certificate as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CertificateRecord {
    /// Serial.
    pub serial: Serial,
    /// Issuing CA name.
    pub issuer: String,
    /// Subject DN (RFC 4514).
    pub subject: String,
    /// Subject alternative names.
    pub sans: Vec<String>,
    /// Profile name.
    pub profile: String,
    /// Validity start (UTC).
    #[serde(serialize_with = "ser_time")]
    pub not_before: OffsetDateTime,
    /// Validity end (UTC).
    #[serde(serialize_with = "ser_time")]
    pub not_after: OffsetDateTime,
    /// SHA-256 of the DER, lower-case hex.
    pub fingerprint: String,
    /// The certificate, DER.
    #[serde(skip)]
    pub der: Vec<u8>,
    /// When it was recorded (UTC, RFC 3339).
    pub created_at: String,
    /// The audit record that recorded it.
    pub audit_seq: u64,
}

/// A revoked certificate, as a CRL lists it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Revocation {
    /// The certificate's serial.
    pub serial: Serial,
    /// Revocation time (UTC).
    #[serde(serialize_with = "ser_time")]
    pub revoked_at: OffsetDateTime,
    /// Reason.
    pub reason: RevocationReason,
}

/// SHA-256 of `data`, lower-case hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(&sha2::Sha256::digest(data))
}

/// `t` in UTC as `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, whole seconds): one fixed form so that the
/// text sorts like the time and hashes the same everywhere.
pub(crate) fn format_time(t: OffsetDateTime) -> Result<String, StoreError> {
    let t = t.to_offset(time::UtcOffset::UTC);
    if !(0..=9999).contains(&t.year()) {
        return Err(StoreError::Invalid {
            field: "time",
            reason: format!("year {} is outside 0000-9999", t.year()),
        });
    }
    Ok(format!("{}Z", crate::x509::utc_date_time(t, 'T')))
}

/// How the database writes a serial (the `serial` columns and the audit records' row keys):
/// lower-case hex without leading zeros, e.g. `a0b` for 0x0a0b. Existing databases and audit
/// hashes depend on this exact text. One serial names one certificate in the whole database,
/// whatever its issuer.
pub(crate) fn serial_key(serial: &Serial) -> String {
    let hex = serial.to_hex();
    match hex.strip_prefix('0') {
        Some(rest) => rest.to_owned(),
        None => hex,
    }
}

/// Parse the form [`format_time`] writes.
pub(crate) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<u16>().ok();
    let date = time::Date::from_calendar_date(
        i32::from(num(0..4)?),
        time::Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?,
        u8::try_from(num(8..10)?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(14..16)?).ok()?,
        u8::try_from(num(17..19)?).ok()?,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, clock).assume_utc())
}

/// Serialize a time in the store's RFC 3339 form (for `--json` output).
fn ser_time<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    match format_time(*t) {
        Ok(text) => s.serialize_str(&text),
        Err(e) => Err(serde::ser::Error::custom(e)),
    }
}
