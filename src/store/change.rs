//! The one way to change the state: a [`Change`] in a `BEGIN IMMEDIATE` transaction, with the
//! rows it writes listed in its audit record.

use der::{Decode, Encode};
use rusqlite::{TransactionBehavior, params};
use time::OffsetDateTime;

use super::query::{last_crl_number, read_ca, read_certificates, read_revocations, serial_exists};
use super::types::{format_time, parse_time, serial_key, sha256_hex};
use super::{
    AuditEntry, AuditRecord, CaRecord, CertificateRecord, NewCa, NewCertificate, Revocation,
    RevocationReason, Serial, Store, StoreError, audit, seq_sql,
};

impl Store {
    pub(super) fn begin(&self, entry: AuditEntry) -> Result<Change<'_>, StoreError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(self.sql("starting a write transaction"))?;
        let (seq, prev_hash) =
            match audit::read_head(&tx).map_err(self.sql("reading the audit head"))? {
                Some((seq, hash)) => (seq + 1, hash),
                None => (1, audit::ZERO_HASH.to_owned()),
            };
        Ok(Change {
            store: self,
            tx,
            seq,
            prev_hash,
            time: format_time(OffsetDateTime::now_utc())?,
            entry,
            changes: Vec::new(),
            anchor: None,
        })
    }
}

/// The one handle that can change state, given to the closure of [`Store::change`]. Every
/// method that writes a row also lists it in the pending audit record.
pub struct Change<'s> {
    store: &'s Store,
    pub(super) tx: rusqlite::Transaction<'s>,
    pub(super) seq: u64,
    pub(super) prev_hash: String,
    pub(super) time: String,
    entry: AuditEntry,
    changes: Vec<serde_json::Value>,
    pub(super) anchor: Option<serde_json::Value>,
}

impl Change<'_> {
    /// The seq the audit record of this change will have.
    pub fn audit_seq(&self) -> u64 {
        self.seq
    }

    /// The time (UTC, RFC 3339) recorded for this change and its rows.
    pub fn time(&self) -> &str {
        &self.time
    }

    /// Add an input's SHA-256 to the audit record.
    pub fn add_input(&mut self, name: impl Into<String>, data: &[u8]) {
        self.entry.inputs.insert(name.into(), sha256_hex(data));
    }

    /// Add an output's SHA-256 to the audit record.
    pub fn add_output(&mut self, name: impl Into<String>, data: &[u8]) {
        self.entry.outputs.insert(name.into(), sha256_hex(data));
    }

    /// Add a parameter to the audit record. Never a secret.
    pub fn add_param(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entry.params.insert(key.into(), value.into());
    }

    /// See [`Store::serial_exists`]; authoritative until this change commits.
    pub fn serial_exists(&self, serial: &Serial) -> Result<bool, StoreError> {
        serial_exists(&self.tx, serial).map_err(self.store.sql("looking up a serial"))
    }

    /// See [`Store::ca`].
    pub fn ca(&self, name: &str) -> Result<Option<CaRecord>, StoreError> {
        read_ca(&self.tx, name).map_err(self.store.sql("reading a CA"))
    }

    /// See [`Store::certificate`].
    pub fn certificate(&self, serial: &Serial) -> Result<Option<CertificateRecord>, StoreError> {
        read_certificates(&self.tx, Some(serial), None)
            .map(|mut v| v.pop())
            .map_err(self.store.sql("reading a certificate"))
    }

    /// The CRL number to put in CA `ca`'s next CRL (last + 1).
    pub fn next_crl_number(&self, ca: &str) -> Result<u64, StoreError> {
        self.require_ca(ca)?;
        Ok(last_crl_number(&self.tx, ca).map_err(self.store.sql("reading CRL numbers"))? + 1)
    }

    /// Record a CA. A subordinate CA (`parent` set) must first have its certificate recorded
    /// with [`Change::insert_certificate`] as issued by the parent.
    pub fn insert_ca(&mut self, ca: &NewCa<'_>) -> Result<CaRecord, StoreError> {
        check_name(ca.name)?;
        if self.ca(ca.name)?.is_some() {
            return Err(StoreError::CaExists {
                name: ca.name.to_owned(),
            });
        }
        let facts = CertFacts::parse(ca.certificate_der, &format!("CA {:?}", ca.name))?;
        if let Some(parent) = ca.parent {
            self.require_ca(parent)?;
            let issued = self.certificate(&facts.serial)?;
            if !issued.is_some_and(|c| c.issuer == parent && c.fingerprint == facts.fingerprint) {
                return Err(StoreError::NotIssuedByParent {
                    name: ca.name.to_owned(),
                    parent: parent.to_owned(),
                    serial: facts.serial,
                });
            }
        } else if self.serial_exists(&facts.serial)? {
            return Err(StoreError::SerialTaken {
                serial: facts.serial,
            });
        }
        if ca.key_provenance.trim().is_empty() {
            return Err(StoreError::Invalid {
                field: "key provenance",
                reason: "say where the CA key comes from".into(),
            });
        }
        self.tx
            .execute(
                "INSERT INTO cas (name, key_uri, certificate, subject, serial, not_before, not_after, \
                 fingerprint, parent, key_provenance, attestation, created_at, audit_seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    ca.name,
                    ca.key_uri,
                    ca.certificate_der,
                    facts.subject,
                    serial_key(&facts.serial),
                    format_time(facts.not_before)?,
                    format_time(facts.not_after)?,
                    facts.fingerprint,
                    ca.parent,
                    ca.key_provenance,
                    ca.attestation,
                    self.time,
                    seq_sql(self.seq),
                ],
            )
            .map_err(self.store.sql("recording a CA"))?;
        self.note_row("cas")?;
        self.ca(ca.name)?.ok_or_else(|| StoreError::UnknownCa {
            name: ca.name.to_owned(),
        })
    }

    /// Record an issued certificate. Fails with [`StoreError::SerialTaken`] if its serial is
    /// in use: draw a fresh random serial and issue again.
    pub fn insert_certificate(
        &mut self,
        cert: &NewCertificate<'_>,
    ) -> Result<CertificateRecord, StoreError> {
        let ca = self.require_ca(cert.issuer)?;
        let facts = CertFacts::parse(cert.der, "issued")?;
        let ca_facts = CertFacts::parse(&ca.certificate_der, &format!("CA {:?}", ca.name))?;
        if facts.issuer_der != ca_facts.subject_der {
            return Err(StoreError::IssuerMismatch {
                serial: facts.serial,
                ca: ca.name,
                cert_issuer: facts.issuer,
                ca_subject: ca_facts.subject,
            });
        }
        if self.serial_exists(&facts.serial)? {
            return Err(StoreError::SerialTaken {
                serial: facts.serial,
            });
        }
        if cert.profile.trim().is_empty() {
            return Err(StoreError::Invalid {
                field: "profile",
                reason: "empty".into(),
            });
        }
        let sans = serde_json::to_string(cert.sans).map_err(|e| StoreError::Invalid {
            field: "subject alternative names",
            reason: e.to_string(),
        })?;
        self.tx
            .execute(
                "INSERT INTO certificates (serial, issuer, subject, sans, profile, not_before, \
                 not_after, fingerprint, der, created_at, audit_seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    serial_key(&facts.serial),
                    cert.issuer,
                    facts.subject,
                    sans,
                    cert.profile,
                    format_time(facts.not_before)?,
                    format_time(facts.not_after)?,
                    facts.fingerprint,
                    cert.der,
                    self.time,
                    seq_sql(self.seq),
                ],
            )
            .map_err(self.store.sql("recording a certificate"))?;
        self.note_row("certificates")?;
        self.certificate(&facts.serial)?
            .ok_or(StoreError::UnknownCertificate {
                serial: facts.serial,
            })
    }

    /// Revoke the certificate with this serial. A revocation is final.
    pub fn revoke(
        &mut self,
        serial: &Serial,
        revoked_at: OffsetDateTime,
        reason: RevocationReason,
    ) -> Result<Revocation, StoreError> {
        if self.certificate(serial)?.is_none() {
            return Err(StoreError::UnknownCertificate {
                serial: serial.clone(),
            });
        }
        if let Some(old) = read_revocations(&self.tx, Some(serial), None)
            .map_err(self.store.sql("reading a revocation"))?
            .pop()
        {
            return Err(StoreError::AlreadyRevoked {
                serial: serial.clone(),
                revoked_at: format_time(old.revoked_at)?,
                reason: old.reason,
            });
        }
        let at = format_time(revoked_at)?;
        self.tx
            .execute(
                "INSERT INTO revocations (serial, revoked_at, reason, audit_seq) VALUES (?1, ?2, ?3, ?4)",
                params![serial_key(serial), at, reason.code(), seq_sql(self.seq)],
            )
            .map_err(self.store.sql("recording a revocation"))?;
        self.note_row("revocations")?;
        Ok(Revocation {
            serial: serial.clone(),
            revoked_at: parse_time(&at).unwrap_or(revoked_at),
            reason,
        })
    }

    /// Record a CRL that CA `ca` issued with CRL number `number` (from
    /// [`Change::next_crl_number`]; numbers must increase).
    pub fn insert_crl(
        &mut self,
        ca: &str,
        number: u64,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        der: &[u8],
    ) -> Result<(), StoreError> {
        let last = self.next_crl_number(ca)? - 1;
        if number <= last {
            return Err(StoreError::CrlNumberNotIncreasing {
                ca: ca.to_owned(),
                number,
                last,
            });
        }
        let number = i64::try_from(number).map_err(|_| StoreError::Invalid {
            field: "CRL number",
            reason: "larger than 2^63 - 1".into(),
        })?;
        self.tx
            .execute(
                "INSERT INTO crls (ca, number, this_update, next_update, sha256, der, audit_seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    ca,
                    number,
                    format_time(this_update)?,
                    format_time(next_update)?,
                    sha256_hex(der),
                    der,
                    seq_sql(self.seq),
                ],
            )
            .map_err(self.store.sql("recording a CRL"))?;
        self.note_row("crls")
    }

    pub(super) fn require_ca(&self, name: &str) -> Result<CaRecord, StoreError> {
        self.ca(name)?.ok_or_else(|| StoreError::UnknownCa {
            name: name.to_owned(),
        })
    }

    /// List the row just inserted into `table` in the pending audit record.
    fn note_row(&mut self, table: &'static str) -> Result<(), StoreError> {
        let (key, digest) = audit::row_digest_of_last_insert(&self.tx, table)
            .map_err(self.store.sql("digesting a new row"))?;
        self.changes.push(serde_json::json!({
            "table": table,
            "key": key,
            "row_sha256": digest,
        }));
        Ok(())
    }

    /// Append the audit record and commit.
    pub(super) fn commit(self) -> Result<AuditRecord, StoreError> {
        let Change {
            store,
            tx,
            seq,
            prev_hash,
            time,
            entry,
            changes,
            anchor,
        } = self;
        let record = audit::append(&tx, seq, &time, &entry, changes, anchor, &prev_hash)
            .map_err(store.sql("appending the audit record"))?;
        tx.commit().map_err(store.sql("committing"))?;
        Ok(record)
    }
}

/// The facts the store takes from a certificate's DER itself rather than from the caller.
pub(super) struct CertFacts {
    pub(super) serial: Serial,
    pub(super) subject: String,
    pub(super) subject_der: Vec<u8>,
    pub(super) issuer: String,
    pub(super) issuer_der: Vec<u8>,
    pub(super) not_before: OffsetDateTime,
    pub(super) not_after: OffsetDateTime,
    pub(super) fingerprint: String,
    pub(super) spki_der: Vec<u8>,
}

impl CertFacts {
    pub(super) fn parse(der: &[u8], what: &str) -> Result<Self, StoreError> {
        let bad = |reason: String| StoreError::BadCertificate {
            what: what.to_owned(),
            reason,
        };
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
        let tbs = cert.tbs_certificate();
        let time = |t: x509_cert::time::Time| {
            crate::x509::from_x509_time(&t).map_err(|_| bad("validity time out of range".into()))
        };
        let name_der = |n: &x509_cert::name::Name| n.to_der().map_err(|e| bad(e.to_string()));
        Ok(Self {
            serial: Serial::from_der_integer(tbs.serial_number().as_bytes())
                .map_err(|e| bad(e.to_string()))?,
            // One spelling of names in the whole tool (RFC 4514, as `ca show` prints them).
            subject: crate::x509::dn::describe_name_der(&name_der(tbs.subject())?),
            subject_der: name_der(tbs.subject())?,
            issuer: crate::x509::dn::describe_name_der(&name_der(tbs.issuer())?),
            issuer_der: name_der(tbs.issuer())?,
            not_before: time(tbs.validity().not_before)?,
            not_after: time(tbs.validity().not_after)?,
            fingerprint: sha256_hex(der),
            spki_der: tbs
                .subject_public_key_info()
                .to_der()
                .map_err(|e| bad(e.to_string()))?,
        })
    }
}

fn check_name(name: &str) -> Result<(), StoreError> {
    let invalid = |reason: &str| StoreError::Invalid {
        field: "CA name",
        reason: format!("{name:?}: {reason}"),
    };
    if name.is_empty() || name.chars().count() > 128 {
        return Err(invalid("must be 1 to 128 characters"));
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(invalid("no leading/trailing spaces or control characters"));
    }
    Ok(())
}
