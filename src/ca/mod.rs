//! Certificate Authority use cases: root, intermediate, import, issuance, revocation, CRLs.
//!
//! Every use case follows the same order (the ceremony discipline of serious CA tooling):
//! validate all inputs first; then, inside one state transaction that also writes the audit
//! record, draw a fresh serial, sign through [`crate::signer`] (which verifies the signature),
//! let [`crate::x509`] parse and check the result, and record it. Files are written by the
//! caller only after the transaction committed, so no certificate ever exists outside without
//! its database row and audit record.

mod usecases;

pub use usecases::{
    AuditAnchor, CaCreated, CaExport, CaImport, CaInit, CaIntermediate, CaSignIntermediate,
    CertIssue, CertIssued, CertKey, CertRevoke, CrlGenerate, CrlGenerated, SignedIntermediate,
    ValidCertIssue, ValidNewCa, ValidSignIntermediate, anchor_audit, chain_of, crl, export, import,
    init, intermediate, issue, revoke_request, sign_intermediate, with_issuer,
};

use time::{Duration, OffsetDateTime};

use crate::signer::{PublicKey, SigningKey};
use crate::store::{
    AuditEntry, CaRecord, CertificateRecord, NewCa, NewCertificate, Operator, Store, StoreError,
};
use crate::x509::{
    self, CaCertificate, CertificateRequest, CrlParams, DistinguishedName, IssueError, IssueParams,
    Profile, RevocationReason, RevokedCertificate, SanEntry, Serial,
};

/// Errors of the CA use cases.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A CA of that name exists already.
    #[error(
        "a CA named {0:?} exists already in the state directory; choose another --name (`hsmsign ca show` lists them)"
    )]
    NameTaken(String),
    /// No CA of that name.
    #[error(
        "no CA named {0:?} in the state directory; `hsmsign ca show` lists the CAs, `hsmsign ca init` makes one"
    )]
    UnknownCa(String),
    /// The requested validity is beyond the profile's maximum.
    #[error(
        "--days {days} is too long for a {profile} certificate: the maximum is {max_years} years ({max_days} days)"
    )]
    ValidityTooLong {
        /// Days asked for.
        days: u64,
        /// The profile.
        profile: &'static str,
        /// The profile's maximum in years.
        max_years: i32,
        /// The same in days from now.
        max_days: i64,
    },
    /// Zero days.
    #[error("--days must be at least 1")]
    ZeroDays,
    /// An explicit validity that reaches past the end of the issuing CA.
    #[error(
        "--days {days} reaches past the end of CA {ca:?} ({ca_not_after}); a certificate cannot outlive its issuer: give --days {max_days} or fewer, or leave --days out to end with the CA"
    )]
    PastIssuer {
        /// Days asked for.
        days: u64,
        /// The issuing CA.
        ca: String,
        /// Its notAfter, formatted.
        ca_not_after: String,
        /// The most days that still end within the CA.
        max_days: i64,
    },
    /// A CRL validity beyond the maximum.
    #[error(
        "--days {days} is too long for a CRL: the maximum is {max} days (nextUpdate at most {max} days after thisUpdate); publish a fresh CRL more often instead"
    )]
    CrlTooLong {
        /// Days asked for.
        days: u64,
        /// The limit.
        max: u64,
    },
    /// A CRL whose nextUpdate would fall after the end of the CA that signs it.
    #[error(
        "--days {days} puts the CRL's nextUpdate after the end of CA {ca:?} ({ca_not_after}): give --days {max_days} or fewer, and renew the CA"
    )]
    CrlPastIssuer {
        /// Days asked for.
        days: u64,
        /// The CA.
        ca: String,
        /// Its notAfter, formatted.
        ca_not_after: String,
        /// The most days that still end within the CA.
        max_days: i64,
    },
    /// The CA's key on the token does not belong to its certificate.
    #[error(
        "the token key {key_uri} does not belong to the certificate of CA {ca:?} (public keys differ); the CA record points at the wrong key or the token was replaced"
    )]
    KeyMismatch {
        /// The CA.
        ca: String,
        /// The key.
        key_uri: String,
    },
    /// A certificate for `ca import` does not match the token key.
    #[error(
        "the certificate's public key is not the public key of {key_uri}; import the certificate that was issued for this token key"
    )]
    ImportKeyMismatch {
        /// The key.
        key_uri: String,
    },
    /// The issuing CA cannot issue (expired, or not yet valid).
    #[error("CA {ca:?} cannot issue now: {reason}")]
    IssuerUnusable {
        /// The CA.
        ca: String,
        /// Why.
        reason: String,
    },
    /// The subject DN is already that of a still-valid certificate for another key, which a JS7
    /// trusted directory cannot hold side by side.
    #[error(
        "the subject {subject} is already the subject of {holder} (valid until {not_after}) for another key: a JS7 Controller or Agent keeps only one certificate per subject DN in its trusted-x509-keys directory (the one valid longest), so the two would displace each other. Give the new certificate a distinct DN (for example add OU=2027 or a serialNumber), or pass --allow-duplicate-dn if the old one will be removed from every trusted directory"
    )]
    DuplicateDn {
        /// The requested subject.
        subject: String,
        /// Which certificate of this appliance has it.
        holder: String,
        /// Its end, formatted.
        not_after: String,
    },
    /// Certificate building or checking failed.
    #[error(transparent)]
    Issue(#[from] IssueError),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The token failed (random numbers, keys).
    #[error(transparent)]
    Token(#[from] crate::keys::pkcs11::TokenError),
    /// A key could not be opened or used.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// An input file could not be read.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// A CSR is unreadable or does not verify.
    #[error(transparent)]
    Csr(#[from] x509::CsrError),
    /// An output file could not be reserved or written.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// A key bundle could not be made.
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    /// A file failed to be written after its record was committed.
    #[error("{error}\nNote: {recorded}; {again}.")]
    AfterRecord {
        /// What failed.
        error: crate::output::OutputError,
        /// What is recorded already.
        recorded: String,
        /// How to get the file again.
        again: String,
    },
    /// The request's options do not fit together (a usage error: exit status 2).
    #[error("{0}")]
    Usage(String),
    /// A value of the request is not acceptable (the message names it).
    #[error("{0}")]
    Invalid(String),
}

/// A CA ready to sign: its record, parsed certificate and token key.
pub struct Issuer<'k> {
    /// The CA's record.
    pub record: CaRecord,
    /// Its certificate.
    pub cert: CaCertificate,
    /// Its key.
    pub key: &'k dyn SigningKey,
}

impl<'k> Issuer<'k> {
    /// Load CA `name` and check that `key` is its key.
    pub fn load(store: &Store, name: &str, key: &'k dyn SigningKey) -> Result<Self, CaError> {
        let record = store
            .ca(name)?
            .ok_or_else(|| CaError::UnknownCa(name.to_string()))?;
        let cert = CaCertificate::parse(
            &record.certificate_der,
            &format!("certificate of CA {name:?}"),
        )?;
        if cert.public_key() != key.public_key() {
            return Err(CaError::KeyMismatch {
                ca: name.to_string(),
                key_uri: key.name(),
            });
        }
        let now = OffsetDateTime::now_utc();
        if cert.not_after() <= now {
            return Err(CaError::IssuerUnusable {
                ca: name.to_string(),
                reason: format!(
                    "its certificate expired at {}; make a new CA",
                    x509::format_time(cert.not_after())
                ),
            });
        }
        Ok(Self { record, cert, key })
    }
}

/// How long a certificate should be valid.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    /// Start.
    pub not_before: OffsetDateTime,
    /// End (before capping at the issuer's end).
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From `--days` (or the profile's default), refusing 0 and more than the profile's
    /// maximum. No arithmetic here can overflow, whatever `days` is.
    pub fn for_profile(profile: Profile, days: Option<u64>) -> Result<Self, CaError> {
        Self::for_profile_from(profile, days, OffsetDateTime::now_utc())
    }

    /// [`Self::for_profile`] starting at `now` (for tests).
    pub fn for_profile_from(
        profile: Profile,
        days: Option<u64>,
        now: OffsetDateTime,
    ) -> Result<Self, CaError> {
        let not_before = x509::whole_seconds(now);
        let max = profile.max_not_after(not_before);
        let not_after = match days {
            None => profile.default_not_after(not_before),
            Some(0) => return Err(CaError::ZeroDays),
            Some(d) => {
                let max_days = (max - not_before).whole_days();
                let too_long = || CaError::ValidityTooLong {
                    days: d,
                    profile: profile.name(),
                    max_years: profile.max_validity_years(),
                    max_days,
                };
                let end = i64::try_from(d)
                    .ok()
                    .filter(|d| *d <= max_days)
                    .and_then(|d| not_before.checked_add(Duration::days(d)))
                    .ok_or_else(too_long)?;
                if end > max {
                    return Err(too_long());
                }
                end
            }
        };
        Ok(Self {
            not_before,
            not_after,
        })
    }

    /// Refuse an explicit `--days` that reaches past `ca_not_after`, the end of the issuing CA
    /// `ca` (a default validity is cut to the CA's end instead, with a notice).
    pub fn check_issuer_end(
        &self,
        days: Option<u64>,
        ca: &str,
        ca_not_after: OffsetDateTime,
    ) -> Result<(), CaError> {
        match days {
            Some(days) if self.not_after > ca_not_after => Err(CaError::PastIssuer {
                days,
                ca: ca.to_string(),
                ca_not_after: x509::format_time(ca_not_after),
                max_days: (ca_not_after - self.not_before).whole_days(),
            }),
            _ => Ok(()),
        }
    }
}

/// Parse a `--days` value: a whole number of days, at least 1. The message says what is wrong
/// with the text; the maximum depends on what the days are for and is checked there.
pub fn parse_days(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("give a number of days, e.g. 365".into());
    }
    if let Some(rest) = t.strip_prefix('-')
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!(
            "`{t}` is negative: give a whole number of days of at least 1"
        ));
    }
    if !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{}` is not a whole number of days: give digits only, e.g. 365",
            x509::limits::escape_for_display(t)
        ));
    }
    match t.parse::<u64>() {
        Ok(0) => Err("0 days is no validity: give at least 1".into()),
        Ok(d) => Ok(d),
        Err(_) => Err(format!(
            "`{t}` days is far beyond every maximum (certificates at most {} years, CRLs {} days)",
            Profile::Root.max_validity_years(),
            x509::limits::MAX_CRL_DAYS
        )),
    }
}

/// When the next CRL of a CA ending at `ca_not_after` is due, `days` after `this_update`:
/// refuses 0, more than [`x509::limits::MAX_CRL_DAYS`], and a nextUpdate after the CA's end.
/// No arithmetic here can overflow, whatever `days` is.
pub fn crl_next_update(
    ca: &str,
    ca_not_after: OffsetDateTime,
    this_update: OffsetDateTime,
    days: u64,
) -> Result<OffsetDateTime, CaError> {
    use x509::limits::MAX_CRL_DAYS;
    if days == 0 {
        return Err(CaError::ZeroDays);
    }
    if days > MAX_CRL_DAYS {
        return Err(CaError::CrlTooLong {
            days,
            max: MAX_CRL_DAYS,
        });
    }
    let past_issuer = || CaError::CrlPastIssuer {
        days,
        ca: ca.to_string(),
        ca_not_after: x509::format_time(ca_not_after),
        max_days: (ca_not_after - this_update).whole_days(),
    };
    let next = i64::try_from(days)
        .ok()
        .and_then(|d| this_update.checked_add(Duration::days(d)))
        .ok_or_else(past_issuer)?;
    if next > ca_not_after {
        return Err(past_issuer());
    }
    Ok(next)
}

/// A certificate request as far as it is known before the token is opened.
pub struct RequestCheck<'a> {
    /// Subject.
    pub subject: &'a DistinguishedName,
    /// The key to certify, or `None` when it sits on a token not opened yet (the issuing CA's
    /// key stands in for it; [`issue_certificate`] checks again with the real one).
    pub public_key: Option<&'a PublicKey>,
    /// Profile.
    pub profile: Profile,
    /// SANs.
    pub sans: &'a [SanEntry],
    /// Validity.
    pub validity: Validity,
    /// `--days` as given (`None`: the profile's default, cut to the CA's end with a notice).
    pub days: Option<u64>,
    /// pathLenConstraint (CA profiles).
    pub path_len: Option<u8>,
    /// Issue even when the subject DN is that of a still-valid certificate for another key.
    pub allow_duplicate_dn: bool,
}

/// Check a request against CA `ca` as recorded in `store` before the token is opened: the CA
/// exists and has not expired, an explicit `--days` does not reach past its end, the CA's path
/// length allows the request, and the profile's rules, the names and the planned size of the
/// certificate pass. Returns the notice issuing will give when the validity is cut to the CA's.
pub fn check_request(
    store: &Store,
    ca: &str,
    req: &RequestCheck<'_>,
) -> Result<Option<String>, CaError> {
    let record = store
        .ca(ca)?
        .ok_or_else(|| CaError::UnknownCa(ca.to_string()))?;
    let cert = CaCertificate::parse(
        &record.certificate_der,
        &format!("certificate of CA {ca:?}"),
    )?;
    if cert.not_after() <= OffsetDateTime::now_utc() {
        return Err(CaError::IssuerUnusable {
            ca: ca.to_string(),
            reason: format!(
                "its certificate expired at {}; make a new CA",
                x509::format_time(cert.not_after())
            ),
        });
    }
    req.validity
        .check_issuer_end(req.days, ca, cert.not_after())?;
    // A serial as long as the ones drawn from the token, so the size check is exact.
    let serial = Serial::new(&[0x7f; 16])?;
    let notice = x509::build::check_issuable(
        &IssueParams {
            subject: req.subject,
            public_key: req.public_key.unwrap_or_else(|| cert.public_key()),
            profile: req.profile,
            serial: &serial,
            not_before: req.validity.not_before,
            not_after: req.validity.not_after,
            sans: req.sans,
            path_len: req.path_len,
        },
        Some(&cert),
    )?;
    // The key of a request for a key on a token not opened yet is checked when it is issued.
    let duplicate = match req.public_key {
        Some(key) => {
            check_distinct_dn(store, req.subject, key, req.profile, req.allow_duplicate_dn)?
        }
        None => None,
    };
    Ok(join_notices(notice, duplicate))
}

fn join_notices(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
        (a, b) => a.or(b),
    }
}

/// A still-valid, unrevoked certificate of this appliance with a given subject DN.
#[derive(Clone, Debug)]
pub struct DnHolder {
    /// What it is, for messages: `CA "root"` or `signing certificate 0x...`.
    pub what: String,
    /// Whether it is a CA or an operator signing certificate: what a JS7 trusted-x509-keys
    /// directory holds.
    pub trusted_by_js7: bool,
    /// Its end.
    pub not_after: OffsetDateTime,
}

/// Subject DNs compared as a JS7 trusted directory tells them apart would at least: attribute
/// types and values without regard to case or runs of white space (X500Principal's canonical
/// form is at least this lenient, so a DN equal here is one JS7 would also call equal).
fn dn_key(dn: &str) -> String {
    dn.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The public key a certificate of the state certifies (`None` if it cannot be read, which the
/// state's own checks rule out).
fn certified_key(der: &[u8]) -> Option<PublicKey> {
    use der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .ok()?;
    PublicKey::from_spki_der(&spki).ok()
}

/// The still-valid, unrevoked CAs and certificates of this appliance whose subject DN is
/// `subject` and whose key is not `public_key` (a renewal for the same key is no clash).
pub fn same_dn_holders(
    store: &Store,
    subject: &DistinguishedName,
    public_key: &PublicKey,
) -> Result<Vec<DnHolder>, CaError> {
    let now = OffsetDateTime::now_utc();
    let wanted = dn_key(&subject.to_string());
    let other_key = |der: &[u8]| certified_key(der).is_none_or(|k| &k != public_key);
    let mut holders = Vec::new();
    let cas = store.cas()?;
    for ca in &cas {
        if ca.not_after > now && dn_key(&ca.subject) == wanted && other_key(&ca.certificate_der) {
            holders.push(DnHolder {
                what: format!("CA {:?}", ca.name),
                trusted_by_js7: true,
                not_after: ca.not_after,
            });
        }
    }
    for cert in store.certificates(None)? {
        // An intermediate made here is listed as a CA already.
        if cas.iter().any(|c| c.fingerprint == cert.fingerprint) {
            continue;
        }
        if cert.not_after > now
            && dn_key(&cert.subject) == wanted
            && other_key(&cert.der)
            && store.revocation(&cert.serial)?.is_none()
        {
            let trusted =
                Profile::parse(&cert.profile).is_ok_and(|p| p.is_ca() || p == Profile::Signing);
            holders.push(DnHolder {
                what: format!("{} certificate {}", cert.profile, cert.serial),
                trusted_by_js7: trusted,
                not_after: cert.not_after,
            });
        }
    }
    Ok(holders)
}

/// JS7's trust rule at issuance: a CA or an operator signing certificate whose subject DN is
/// that of another still-valid CA or signing certificate of this appliance (for another key)
/// is refused unless `allow` (a JS7 trusted directory keeps only one certificate per DN). A TLS
/// certificate sharing its DN with an older TLS certificate is the usual key rollover of an
/// instance (private.conf's distinguished-names stay as they are): allowed, with a notice.
/// Returns the notice to give, if any.
pub fn check_distinct_dn(
    store: &Store,
    subject: &DistinguishedName,
    public_key: &PublicKey,
    profile: Profile,
    allow: bool,
) -> Result<Option<String>, CaError> {
    let holders = same_dn_holders(store, subject, public_key)?;
    let Some(first) = holders.first() else {
        return Ok(None);
    };
    let lands_in_trusted_dir = profile.is_ca() || profile == Profile::Signing;
    let clash = holders
        .iter()
        .find(|h| h.trusted_by_js7 || lands_in_trusted_dir);
    match clash {
        Some(h) if !allow => Err(CaError::DuplicateDn {
            subject: subject.to_string(),
            holder: h.what.clone(),
            not_after: x509::format_time(h.not_after),
        }),
        Some(h) => Ok(Some(format!(
            "{subject} is also the subject of {} (valid until {}) for another key (--allow-duplicate-dn): remove the older certificate from every JS7 trusted-x509-keys directory, or JS7 keeps whichever is valid longest",
            h.what,
            x509::format_time(h.not_after)
        ))),
        None => Ok(Some(format!(
            "{subject} is also the subject of {} (valid until {}) for another key: expected when an instance's TLS key is renewed; revoke the old certificate once the instance uses the new one",
            first.what,
            x509::format_time(first.not_after)
        ))),
    }
}

/// A fresh serial: 128 bits from the token's RNG (at least 64 are required), positive, not
/// used before in this database.
pub fn fresh_serial(
    store: &Store,
    random: &mut dyn FnMut(usize) -> Result<Vec<u8>, crate::keys::pkcs11::TokenError>,
) -> Result<Serial, CaError> {
    loop {
        let mut bytes = random(16)?;
        // Positive and exactly 16 octets: clear the top bit, set the next one.
        bytes[0] = (bytes[0] & 0x7f) | 0x40;
        let serial = Serial::new(&bytes)?;
        if !store.serial_exists(&serial)? {
            return Ok(serial);
        }
    }
}

/// What a use case produced.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Its serial.
    pub serial: Serial,
    /// Set when the validity was cut to the issuer's: what to tell the operator.
    pub notice: Option<String>,
    /// The audit record's sequence number.
    pub audit_seq: u64,
}

impl Issued {
    /// What a use case returns after recording `issued` in the transaction `tx`.
    fn recorded(
        issued: x509::IssuedCertificate,
        serial: &Serial,
        tx: &mut crate::store::Change<'_>,
    ) -> Self {
        tx.add_output("certificate", &issued.der);
        Self {
            notice: issued.notice(),
            der: issued.der,
            serial: serial.clone(),
            audit_seq: tx.audit_seq(),
        }
    }

    /// The same, with one more notice for the operator.
    fn with_notice(mut self, notice: Option<String>) -> Self {
        self.notice = join_notices(self.notice.take(), notice);
        self
    }
}

/// A new CA to create.
pub struct NewCaRequest<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its subject.
    pub subject: &'a DistinguishedName,
    /// Its key's canonical URI.
    pub key_uri: &'a str,
    /// Its key's public half.
    pub public_key: &'a PublicKey,
    /// The key's provenance verdict (`key inspect`).
    pub provenance: &'a str,
    /// Validity.
    pub validity: Validity,
    /// pathLenConstraint.
    pub path_len: Option<u8>,
    /// The serial.
    pub serial: &'a Serial,
    /// An attestation of the key, if the token gives one.
    pub attestation: Option<&'a [u8]>,
    /// Make the CA even when its subject DN is that of a still-valid certificate for another key.
    pub allow_duplicate_dn: bool,
}

fn refuse_existing_name(store: &Store, name: &str) -> Result<(), CaError> {
    if store.ca(name)?.is_some() {
        return Err(CaError::NameTaken(name.to_string()));
    }
    Ok(())
}

/// Who signs a new CA certificate.
pub enum CaSigner<'a> {
    /// The new CA's own key: a self-signed root.
    SelfSigned(&'a dyn SigningKey),
    /// A CA of this appliance: an intermediate.
    Issuer(&'a Issuer<'a>),
}

/// Make a self-signed root CA with `key` and record it.
pub fn create_root(
    store: &Store,
    req: &NewCaRequest<'_>,
    key: &dyn SigningKey,
    operator: Operator,
) -> Result<Issued, CaError> {
    create_ca(store, req, CaSigner::SelfSigned(key), operator)
}

/// Make an intermediate CA for `req.public_key`, signed by `issuer`, and record it.
pub fn create_intermediate(
    store: &Store,
    req: &NewCaRequest<'_>,
    issuer: &Issuer<'_>,
    operator: Operator,
) -> Result<Issued, CaError> {
    create_ca(store, req, CaSigner::Issuer(issuer), operator)
}

/// Make a CA certificate and record the CA (and, for an intermediate, the certificate under its
/// issuer) with one audit record.
pub fn create_ca(
    store: &Store,
    req: &NewCaRequest<'_>,
    signer: CaSigner<'_>,
    operator: Operator,
) -> Result<Issued, CaError> {
    refuse_existing_name(store, req.name)?;
    let (operation, profile, path_len, issuer) = match &signer {
        CaSigner::SelfSigned(_) => ("ca.init", Profile::Root, req.path_len, None),
        // An intermediate issues end-entity certificates only unless told otherwise.
        CaSigner::Issuer(i) => (
            "ca.intermediate",
            Profile::Intermediate,
            Some(req.path_len.unwrap_or(0)),
            Some(*i),
        ),
    };
    let mut entry = AuditEntry::new(operation, operator)
        .param("ca", req.name)
        .param("key", req.key_uri)
        .param("subject", req.subject.to_string())
        .param("key_provenance", req.provenance);
    if let Some(i) = issuer {
        entry = entry.param("issuer", i.record.name.clone());
    }
    let duplicate = check_distinct_dn(
        store,
        req.subject,
        req.public_key,
        profile,
        req.allow_duplicate_dn,
    )?;
    store.change(entry, |tx| {
        let params = IssueParams {
            subject: req.subject,
            public_key: req.public_key,
            profile,
            serial: req.serial,
            not_before: req.validity.not_before,
            not_after: req.validity.not_after,
            sans: &[],
            path_len,
        };
        let issued = match &signer {
            CaSigner::SelfSigned(key) => x509::issue(&params, None, *key)?,
            CaSigner::Issuer(i) => x509::issue(&params, Some(&i.cert), i.key)?,
        };
        if let Some(i) = issuer {
            tx.insert_certificate(&NewCertificate {
                issuer: &i.record.name,
                der: &issued.der,
                profile: profile.name(),
                sans: &[],
            })?;
        }
        tx.insert_ca(&NewCa {
            name: req.name,
            key_uri: req.key_uri,
            certificate_der: &issued.der,
            parent: issuer.map(|i| i.record.name.as_str()),
            key_provenance: req.provenance,
            attestation: req.attestation,
        })?;
        Ok(Issued::recorded(issued, req.serial, tx).with_notice(duplicate))
    })
}

/// A CA certificate issued elsewhere, for a key already on the token.
pub struct ImportRequest<'a> {
    /// The name to record it under.
    pub name: &'a str,
    /// The certificate (PEM or DER).
    pub cert: &'a [u8],
    /// Where it came from (for messages).
    pub source: &'a str,
    /// The token key's canonical URI.
    pub key_uri: &'a str,
    /// The token key's public half.
    pub key_public: &'a PublicKey,
    /// The key's provenance verdict.
    pub provenance: &'a str,
}

/// Adopt a CA certificate issued elsewhere for a key already on the token.
pub fn import_ca(
    store: &Store,
    req: &ImportRequest<'_>,
    operator: Operator,
) -> Result<CaRecord, CaError> {
    refuse_existing_name(store, req.name)?;
    let cert = CaCertificate::parse(req.cert, req.source)?;
    if cert.public_key() != req.key_public {
        return Err(CaError::ImportKeyMismatch {
            key_uri: req.key_uri.to_string(),
        });
    }
    let entry = AuditEntry::new("ca.import", operator)
        .param("ca", req.name)
        .param("key", req.key_uri)
        .param("subject", cert.subject())
        .param("key_provenance", req.provenance)
        .input("certificate", cert.der());
    store.change(entry, |tx| {
        Ok(tx.insert_ca(&NewCa {
            name: req.name,
            key_uri: req.key_uri,
            certificate_der: cert.der(),
            parent: None,
            key_provenance: req.provenance,
            attestation: None,
        })?)
    })
}

/// A certificate to issue under a CA.
pub struct CertRequest<'a> {
    /// Subject.
    pub subject: &'a DistinguishedName,
    /// The certified key.
    pub public_key: &'a PublicKey,
    /// Profile.
    pub profile: Profile,
    /// SANs.
    pub sans: &'a [SanEntry],
    /// Validity.
    pub validity: Validity,
    /// pathLen (intermediate only).
    pub path_len: Option<u8>,
    /// The serial.
    pub serial: &'a Serial,
    /// What to record about where the key came from (`csr`, a key URI, `generated`).
    pub key_source: String,
    /// The CSR, when there was one (its SHA-256 goes into the audit record).
    pub csr: Option<&'a CertificateRequest>,
    /// Issue even when the subject DN is that of a still-valid certificate for another key.
    pub allow_duplicate_dn: bool,
}

/// Issue a certificate under `issuer` and record it with its audit record.
pub fn issue_certificate(
    store: &Store,
    issuer: &Issuer<'_>,
    req: &CertRequest<'_>,
    operator: Operator,
) -> Result<Issued, CaError> {
    let mut entry = AuditEntry::new("cert.issue", operator)
        .param("ca", issuer.record.name.clone())
        .param("profile", req.profile.name())
        .param("subject", req.subject.to_string())
        .param("key_source", req.key_source.clone());
    if let Some(csr) = req.csr {
        entry = entry.input("csr", csr.der());
    }
    let sans: Vec<String> = req.sans.iter().map(|s| s.to_string()).collect();
    let duplicate = check_distinct_dn(
        store,
        req.subject,
        req.public_key,
        req.profile,
        req.allow_duplicate_dn,
    )?;
    store.change(entry, |tx| {
        let issued = x509::issue(
            &IssueParams {
                subject: req.subject,
                public_key: req.public_key,
                profile: req.profile,
                serial: req.serial,
                not_before: req.validity.not_before,
                not_after: req.validity.not_after,
                sans: req.sans,
                path_len: req.path_len,
            },
            Some(&issuer.cert),
            issuer.key,
        )?;
        tx.insert_certificate(&NewCertificate {
            issuer: &issuer.record.name,
            der: &issued.der,
            profile: req.profile.name(),
            sans: &sans,
        })?;
        Ok(Issued::recorded(issued, req.serial, tx).with_notice(duplicate))
    })
}

/// Revoke a certificate issued by CA `ca`.
pub fn revoke(
    store: &Store,
    ca: &str,
    serial: &Serial,
    reason: RevocationReason,
    operator: Operator,
) -> Result<CertificateRecord, CaError> {
    if store.ca(ca)?.is_none() {
        return Err(CaError::UnknownCa(ca.to_string()));
    }
    let entry = AuditEntry::new("cert.revoke", operator)
        .param("ca", ca)
        .param("serial", serial.to_hex())
        .param("reason", reason.name());
    store.change(entry, |tx| {
        let cert = tx
            .certificate(serial)?
            .ok_or_else(|| StoreError::UnknownCertificate {
                serial: serial.clone(),
            })?;
        if cert.issuer != ca {
            return Err(CaError::IssuerUnusable {
                ca: ca.to_string(),
                reason: format!(
                    "certificate {} was issued by CA {:?}, not by {ca:?}; revoke it with --ca {:?}",
                    serial.to_hex(),
                    cert.issuer,
                    cert.issuer
                ),
            });
        }
        tx.revoke(serial, OffsetDateTime::now_utc(), reason)?;
        Ok(cert)
    })
}

/// Sign a CRL of everything CA `issuer` revoked, valid for `days`, and record it.
pub fn generate_crl(
    store: &Store,
    issuer: &Issuer<'_>,
    days: u64,
    operator: Operator,
) -> Result<(Vec<u8>, u64), CaError> {
    let name = issuer.record.name.clone();
    // Checked here too (the command checks before it opens the token): nothing is signed
    // for a window that is refused.
    crl_next_update(
        &name,
        issuer.cert.not_after(),
        OffsetDateTime::now_utc(),
        days,
    )?;
    let entry = AuditEntry::new("crl.generate", operator)
        .param("ca", name.clone())
        .param("days", days.to_string());
    store.change(entry, |tx| {
        let number = tx.next_crl_number(&name)?;
        // Same connection, inside this transaction: sees exactly what the CRL will cover.
        let revoked: Vec<RevokedCertificate> = store
            .revocations(&name)?
            .into_iter()
            .map(|r| RevokedCertificate {
                serial: r.serial,
                revoked_at: r.revoked_at,
                reason: r.reason,
            })
            .collect();
        let this_update = OffsetDateTime::now_utc();
        let next_update = crl_next_update(&name, issuer.cert.not_after(), this_update, days)?;
        let der = x509::build_crl(
            &CrlParams {
                crl_number: number,
                this_update,
                next_update,
                revoked: &revoked,
            },
            &issuer.cert,
            issuer.key,
        )?;
        tx.insert_crl(&name, number, this_update, next_update, &der)?;
        tx.add_output("crl", &der);
        tx.add_param("crl_number", number.to_string());
        tx.add_param("revoked", revoked.len().to_string());
        Ok((der, number))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_as_whole_positive_numbers_with_clear_messages() {
        assert_eq!(parse_days("7"), Ok(7));
        assert_eq!(parse_days(" 366 "), Ok(366));
        assert_eq!(parse_days("3000000"), Ok(3_000_000));
        for (text, needle) in [
            ("0", "at least 1"),
            ("-5", "negative"),
            ("-0", "negative"),
            ("", "number of days"),
            ("abc", "not a whole number"),
            ("7.5", "not a whole number"),
            ("+7", "not a whole number"),
            ("1e3", "not a whole number"),
            ("99999999999999999999999", "far beyond every maximum"),
            ("7\u{202e}", "\\u{202e}"),
        ] {
            let err = parse_days(text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn no_day_count_panics_and_each_is_refused_with_the_maximum() {
        let now = OffsetDateTime::now_utc();
        for profile in Profile::ALL {
            for days in [
                3_000_000,
                1_000_000,
                u64::from(u32::MAX),
                i64::MAX as u64,
                u64::MAX,
            ] {
                let err = Validity::for_profile_from(profile, Some(days), now).unwrap_err();
                let CaError::ValidityTooLong { max_days, .. } = &err else {
                    panic!("{profile} {days}: {err}")
                };
                assert!(*max_days > 0);
                let text = err.to_string();
                assert!(text.contains(&format!("--days {days}")), "{text}");
                assert!(text.contains("maximum"), "{text}");
            }
            assert!(matches!(
                Validity::for_profile_from(profile, Some(0), now),
                Err(CaError::ZeroDays)
            ));
            // The maximum itself is accepted, one more day is not.
            let max = (profile.max_not_after(whole_seconds_now(now)) - whole_seconds_now(now))
                .whole_days() as u64;
            assert!(Validity::for_profile_from(profile, Some(max), now).is_ok());
            assert!(Validity::for_profile_from(profile, Some(max + 1), now).is_err());
        }
        // Near the end of time the maxima stop at 9999-12-31, and nothing panics.
        let late = OffsetDateTime::from_unix_timestamp(253_370_764_800).unwrap(); // 9999-01-01
        let v = Validity::for_profile_from(Profile::Root, None, late).unwrap();
        assert_eq!(v.not_after, x509::limits::latest_x509_time());
        assert!(Validity::for_profile_from(Profile::Root, Some(400), late).is_err());
    }

    fn whole_seconds_now(t: OffsetDateTime) -> OffsetDateTime {
        x509::whole_seconds(t)
    }

    #[test]
    fn an_explicit_validity_past_the_issuer_is_refused_with_what_fits() {
        let now = OffsetDateTime::now_utc();
        let v = Validity::for_profile_from(Profile::Client, Some(365), now).unwrap();
        let ca_end = now + Duration::days(30);
        let err = v.check_issuer_end(Some(365), "root", ca_end).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("--days 365 reaches past the end of CA \"root\""),
            "{text}"
        );
        assert!(
            text.contains("--days 29 or fewer") || text.contains("--days 30 or fewer"),
            "{text}"
        );
        // The default is cut later (with a notice), not refused.
        assert!(v.check_issuer_end(None, "root", ca_end).is_ok());
    }

    #[test]
    fn crl_windows_are_checked_without_overflow() {
        let now = OffsetDateTime::now_utc();
        let ca_end = now + Duration::days(3650);
        assert_eq!(
            crl_next_update("c", ca_end, now, 7).unwrap(),
            now + Duration::days(7)
        );
        assert!(crl_next_update("c", ca_end, now, 366).is_ok());
        for days in [367, 1_000_000, 3_000_000, u64::MAX] {
            let err = crl_next_update("c", ca_end, now, days).unwrap_err();
            assert!(matches!(err, CaError::CrlTooLong { max: 366, .. }), "{err}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("--days {days}")) && text.contains("366"),
                "{text}"
            );
        }
        assert!(matches!(
            crl_next_update("c", ca_end, now, 0),
            Err(CaError::ZeroDays)
        ));
        // Not after the CA's own end.
        let soon = now + Duration::days(5);
        let err = crl_next_update("c", soon, now, 7).unwrap_err();
        assert!(
            matches!(
                err,
                CaError::CrlPastIssuer {
                    max_days: 4 | 5,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("--days 7"), "{err}");
    }
}
