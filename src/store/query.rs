//! Reading the state: CAs, certificates, revocations, CRL numbers and the audit head.

use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use super::types::{parse_time, serial_key};
use super::{
    AuditHead, AuditRecord, CaRecord, CertificateRecord, Revocation, RevocationReason, Serial,
    Store, StoreError, audit,
};

impl Store {
    /// Does any certificate (issued or CA) in the database have this serial?
    pub fn serial_exists(&self, serial: &Serial) -> Result<bool, StoreError> {
        serial_exists(&self.conn, serial).map_err(self.sql("looking up a serial"))
    }

    /// The CA named `name`.
    pub fn ca(&self, name: &str) -> Result<Option<CaRecord>, StoreError> {
        read_ca(&self.conn, name).map_err(self.sql("reading a CA"))
    }

    /// Every CA, by name.
    pub fn cas(&self) -> Result<Vec<CaRecord>, StoreError> {
        read_cas(&self.conn).map_err(self.sql("reading the CAs"))
    }

    /// The certificate with this serial.
    pub fn certificate(&self, serial: &Serial) -> Result<Option<CertificateRecord>, StoreError> {
        read_certificates(&self.conn, Some(serial), None)
            .map(|mut v| v.pop())
            .map_err(self.sql("reading a certificate"))
    }

    /// Every certificate issued by CA `issuer` (or by any CA), oldest first.
    pub fn certificates(&self, issuer: Option<&str>) -> Result<Vec<CertificateRecord>, StoreError> {
        read_certificates(&self.conn, None, issuer).map_err(self.sql("reading certificates"))
    }

    /// The revocation of the certificate with this serial, if it is revoked.
    pub fn revocation(&self, serial: &Serial) -> Result<Option<Revocation>, StoreError> {
        read_revocations(&self.conn, Some(serial), None)
            .map(|mut v| v.pop())
            .map_err(self.sql("reading a revocation"))
    }

    /// The certificates CA `ca` has revoked, by serial: what its CRL lists.
    pub fn revocations(&self, ca: &str) -> Result<Vec<Revocation>, StoreError> {
        read_revocations(&self.conn, None, Some(ca)).map_err(self.sql("reading revocations"))
    }

    /// The last CRL number recorded for CA `ca` (0 if none).
    pub fn last_crl_number(&self, ca: &str) -> Result<u64, StoreError> {
        last_crl_number(&self.conn, ca).map_err(self.sql("reading CRL numbers"))
    }

    /// Audit records with `seq >= since` (all with `None`), oldest first.
    pub fn audit_records(&self, since: Option<u64>) -> Result<Vec<AuditRecord>, StoreError> {
        audit::read_records(&self.conn, since.unwrap_or(0))
            .map_err(self.sql("reading the audit log"))
    }

    /// The newest audit record's seq and hash: keep a copy outside to detect truncation later.
    pub fn audit_head(&self) -> Result<Option<AuditHead>, StoreError> {
        audit::read_head(&self.conn)
            .map(|h| h.map(|(seq, hash)| AuditHead { seq, hash }))
            .map_err(self.sql("reading the audit head"))
    }
}

pub(super) fn serial_exists(conn: &Connection, serial: &Serial) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM certificates WHERE serial = ?1) \
             OR EXISTS (SELECT 1 FROM cas WHERE serial = ?1)",
        [serial_key(serial)],
        |r| r.get(0),
    )
}

pub(super) fn last_crl_number(conn: &Connection, ca: &str) -> rusqlite::Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT coalesce(max(number), 0) FROM crls WHERE ca = ?1",
        [ca],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Map a text column that must hold one of our values, or fail the read.
pub(super) fn column<T>(idx: usize, value: Option<T>, what: &str) -> rusqlite::Result<T> {
    value.ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("unexpected {what} in the database").into(),
        )
    })
}

pub(super) fn time_column(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<OffsetDateTime> {
    let text: String = row.get(idx)?;
    column(idx, parse_time(&text), "timestamp")
}

pub(super) fn serial_column(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Serial> {
    let text: String = row.get(idx)?;
    column(idx, Serial::parse(&text).ok(), "serial")
}

pub(super) fn seq_column(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let n: i64 = row.get(idx)?;
    column(idx, u64::try_from(n).ok(), "sequence number")
}

pub(super) const CA_COLUMNS: &str = "name, key_uri, certificate, subject, serial, not_before, not_after, \
                          fingerprint, parent, key_provenance, attestation, created_at, audit_seq";

pub(super) fn ca_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CaRecord> {
    Ok(CaRecord {
        name: row.get(0)?,
        key_uri: row.get(1)?,
        certificate_der: row.get(2)?,
        subject: row.get(3)?,
        serial: serial_column(row, 4)?,
        not_before: time_column(row, 5)?,
        not_after: time_column(row, 6)?,
        fingerprint: row.get(7)?,
        parent: row.get(8)?,
        key_provenance: row.get(9)?,
        attestation: row.get(10)?,
        created_at: row.get(11)?,
        audit_seq: seq_column(row, 12)?,
    })
}

pub(super) fn read_ca(conn: &Connection, name: &str) -> rusqlite::Result<Option<CaRecord>> {
    conn.query_row(
        &format!("SELECT {CA_COLUMNS} FROM cas WHERE name = ?1"),
        [name],
        ca_from_row,
    )
    .optional()
}

pub(super) fn read_cas(conn: &Connection) -> rusqlite::Result<Vec<CaRecord>> {
    let mut stmt = conn.prepare(&format!("SELECT {CA_COLUMNS} FROM cas ORDER BY name"))?;
    stmt.query_map([], ca_from_row)?.collect()
}

pub(super) fn read_certificates(
    conn: &Connection,
    serial: Option<&Serial>,
    issuer: Option<&str>,
) -> rusqlite::Result<Vec<CertificateRecord>> {
    let mut stmt = conn.prepare(
        "SELECT serial, issuer, subject, sans, profile, not_before, not_after, fingerprint, der, \
         created_at, audit_seq FROM certificates \
         WHERE (?1 IS NULL OR serial = ?1) AND (?2 IS NULL OR issuer = ?2) ORDER BY rowid",
    )?;
    stmt.query_map(params![serial.map(serial_key), issuer], |row| {
        let sans: String = row.get(3)?;
        Ok(CertificateRecord {
            serial: serial_column(row, 0)?,
            issuer: row.get(1)?,
            subject: row.get(2)?,
            sans: column(3, serde_json::from_str(&sans).ok(), "SAN list")?,
            profile: row.get(4)?,
            not_before: time_column(row, 5)?,
            not_after: time_column(row, 6)?,
            fingerprint: row.get(7)?,
            der: row.get(8)?,
            created_at: row.get(9)?,
            audit_seq: seq_column(row, 10)?,
        })
    })?
    .collect()
}

pub(super) fn read_revocations(
    conn: &Connection,
    serial: Option<&Serial>,
    ca: Option<&str>,
) -> rusqlite::Result<Vec<Revocation>> {
    let mut stmt = conn.prepare(
        "SELECT r.serial, r.revoked_at, r.reason FROM revocations r \
         JOIN certificates c ON c.serial = r.serial \
         WHERE (?1 IS NULL OR r.serial = ?1) AND (?2 IS NULL OR c.issuer = ?2) ORDER BY r.serial",
    )?;
    stmt.query_map(params![serial.map(serial_key), ca], |row| {
        let code: i64 = row.get(2)?;
        Ok(Revocation {
            serial: serial_column(row, 0)?,
            revoked_at: time_column(row, 1)?,
            reason: column(2, RevocationReason::from_code(code), "revocation reason")?,
        })
    })?
    .collect()
}
