//! The CA's state: one SQLite database in the `--state DIR` directory, holding the CAs, every
//! issued certificate, revocations, CRL numbers and a hash-chained audit log. Nothing about the
//! state is kept anywhere else.
//!
//! # Changing state
//!
//! Every change goes through [`Store::change`]: it opens one `BEGIN IMMEDIATE` transaction,
//! hands the closure a [`Change`] (the only type with insert methods), and appends the audit
//! record in the same transaction before committing. A state change without its audit record
//! cannot be written through this API. The audit record lists every row written (table, key and
//! a SHA-256 over the row's columns), so [`Store::verify_audit`] can also match the state tables
//! against the log. Events that change nothing else (an archive signed, a failed login, a key
//! generated) are logged with [`Store::record`]. A closure that fails leaves no state behind and
//! is logged as a failed record.
//!
//! # What the audit log protects, and what it does not
//!
//! Each record's `hash` is SHA-256 over an unambiguous (tagged, length-prefixed) encoding of all
//! its fields and the previous record's hash. [`Store::verify_audit`] recomputes the chain and
//! reports the first record that is missing (a gap in `seq`), edited (its hash does not match its
//! fields) or out of place (its `prev_hash` does not match its predecessor).
//!
//! # What the anchors add
//!
//! Someone who can write the database file can rewrite the whole chain with fresh hashes; the
//! chain alone only detects changes by someone who did not recompute it. [`Store::anchor_head`]
//! adds signatures: it signs the head (seq, hash, time) with a CA key that never leaves the
//! token and appends the signature as a record. An anchor cannot be forged, so a rewrite that
//! keeps an anchor must leave every record up to its head unchanged. What is NOT protected:
//!
//! - an attacker can drop anchor records along with the rest and rehash everything; inside
//!   the database that only looks like a log with fewer anchors. An anchor protects once its
//!   head is known elsewhere: keep the anchored head ([`AnchorInfo::head_seq`] and
//!   [`AnchorInfo::head_hash`], or [`Store::audit_head`]) outside the state directory and pass it
//!   to [`Store::verify_audit_with`], which then detects any rewrite or truncation up to it;
//! - records after the last anchor (including the anchor record itself) can be rewritten
//!   wholesale; `verify_audit` reports them as not yet anchored;
//! - truncation (deleting the newest records, or the newest anchor and everything after it)
//!   leaves a valid shorter chain and is not detectable without such an external copy;
//! - the anchor check trusts the CA certificate stored in the database: compare its fingerprint
//!   (in the report) with the one you published;
//! - deleting the whole state directory, or replacing it with an older copy, is not detectable
//!   from inside it.
//!
//! # Files
//!
//! The directory is created with mode 0700 and the database file with mode 0600. A new database
//! is built in a temporary file and linked into place only once complete, so a crash during
//! creation never leaves a half-made database. An existing file is checked before SQLite touches
//! it: it must be an SQLite database with our `application_id` and a schema version this build
//! knows; anything else is refused and left unchanged.

mod audit;
mod schema;
mod types;

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use der::{Decode, Encode};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

pub use crate::x509::{RevocationReason, Serial};
pub use audit::{AnchorInfo, AuditHead, AuditProblem, AuditReport};
pub use types::{
    AuditEntry, AuditRecord, CaRecord, CertificateRecord, NewCa, NewCertificate, Operator, Outcome,
    Revocation,
};

use types::{format_time, parse_time, serial_key, sha256_hex};

/// The database file's name inside the state directory.
pub const DB_FILE: &str = "hsmsign.db";

/// How long a command waits for another hsmsign process's write transaction by default.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the CA state.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory could not be created or read.
    #[error("cannot use the state directory {path}: {source}; check --state and its permissions")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The state path exists but is not a directory.
    #[error("the state path {path} is not a directory; point --state at a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A file could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not an SQLite database at all.
    #[error(
        "{path} is not an hsmsign CA database ({reason}); it was left unchanged. \
         Point --state at the right directory or move the file away"
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is an SQLite database of another application.
    #[error(
        "{path} is an SQLite database of another application (application_id {application_id:#010x}), \
         not an hsmsign CA database; it was left unchanged. Point --state at the right directory"
    )]
    Foreign {
        /// The file.
        path: PathBuf,
        /// Its application id.
        application_id: i32,
    },
    /// The database was written by a newer hsmsign.
    #[error(
        "the CA database at {path} has schema version {found}, this hsmsign knows up to {supported}; \
         it was left unchanged. Use the newer hsmsign that wrote it"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// Ours.
        supported: i64,
    },
    /// SQLite found the database damaged.
    #[error(
        "the CA database at {path} is damaged ({reason}); do not write to it. \
         Restore the state directory from a backup, or copy it away and try `sqlite3 {path} .recover`"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// SQLite's finding.
        reason: String,
    },
    /// Another process holds the write lock for longer than the busy timeout.
    #[error(
        "the CA database at {path} is locked by another hsmsign process for more than {seconds} s; \
         wait for it to finish and retry, or find it with `fuser {path}`"
    )]
    Locked {
        /// The file.
        path: PathBuf,
        /// How long we waited.
        seconds: u64,
    },
    /// Any other SQLite failure.
    #[error("the CA database at {path} failed while {context}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What we were doing.
        context: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The serial is already used by a certificate in this database. Draw a fresh random
    /// serial and issue again.
    #[error(
        "serial {serial} is already used by a certificate in this CA database; issue again with a fresh random serial"
    )]
    SerialTaken {
        /// The serial.
        serial: Serial,
    },
    /// No CA of that name.
    #[error("no CA named {name:?} in this state directory; `hsmsign ca show` lists the CAs")]
    UnknownCa {
        /// The name.
        name: String,
    },
    /// A CA of that name exists already.
    #[error("a CA named {name:?} exists already; choose another name")]
    CaExists {
        /// The name.
        name: String,
    },
    /// A subordinate CA whose certificate was not recorded as issued by its parent.
    #[error(
        "the certificate of CA {name:?} (serial {serial}) is not recorded as issued by {parent:?}; \
         record it with insert_certificate first"
    )]
    NotIssuedByParent {
        /// The CA.
        name: String,
        /// Its parent.
        parent: String,
        /// Its serial.
        serial: Serial,
    },
    /// A certificate whose issuer DN is not the named CA's subject.
    #[error(
        "certificate {serial} was issued by {cert_issuer:?}, not by CA {ca:?} ({ca_subject:?})"
    )]
    IssuerMismatch {
        /// The certificate.
        serial: Serial,
        /// The CA named.
        ca: String,
        /// The certificate's issuer DN.
        cert_issuer: String,
        /// The CA's subject DN.
        ca_subject: String,
    },
    /// No certificate with that serial.
    #[error(
        "no certificate with serial {serial} in this CA database; check the serial (`hsmsign cert list`)"
    )]
    UnknownCertificate {
        /// The serial.
        serial: Serial,
    },
    /// The certificate is revoked already.
    #[error(
        "certificate {serial} was already revoked at {revoked_at} ({reason}); a revocation is final"
    )]
    AlreadyRevoked {
        /// The serial.
        serial: Serial,
        /// When.
        revoked_at: String,
        /// Why.
        reason: RevocationReason,
    },
    /// A CRL number that does not increase.
    #[error(
        "CRL number {number} for CA {ca:?} does not exceed the last one ({last}); use next_crl_number"
    )]
    CrlNumberNotIncreasing {
        /// The CA.
        ca: String,
        /// The number given.
        number: u64,
        /// The last recorded number.
        last: u64,
    },
    /// A certificate's DER could not be read.
    #[error("cannot read the {what} certificate: {reason}; pass the DER exactly as issued")]
    BadCertificate {
        /// Which certificate.
        what: String,
        /// Decoder message.
        reason: String,
    },
    /// A value the store refuses.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The key given to sign an anchor is not the CA's key.
    #[error(
        "the key {key} is not the key of CA {ca:?} (its certificate holds another public key); \
         anchor with the CA's own key"
    )]
    AnchorKeyMismatch {
        /// The CA.
        ca: String,
        /// The key's name.
        key: String,
    },
    /// Signing the anchor failed.
    #[error("signing the audit anchor with the key of CA {ca:?} failed: {source}")]
    AnchorSign {
        /// The CA.
        ca: String,
        /// The signer's error.
        source: crate::signer::SignError,
    },
}

/// An open CA database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    busy_timeout: Duration,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

impl Store {
    /// Open the CA database in `dir`, creating the directory (mode 0700) and the database
    /// (mode 0600) on first use. Waits up to [`DEFAULT_BUSY_TIMEOUT`] for other processes.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_timeout(dir, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`Store::open`] with another busy timeout.
    pub fn open_with_timeout(dir: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        ensure_dir(dir)?;
        let path = dir.join(DB_FILE);
        match fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                create_database(dir, &path, busy_timeout)?;
            }
            Err(source) => return Err(StoreError::Io { path, source }),
        }
        check_header(&path)?;
        let conn = connect(&path, busy_timeout)?;
        let store = Self {
            conn,
            path,
            busy_timeout,
        };
        store.check_identity()?;
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state directory and database files that users other than their owner may read or
    /// write (hsmsign creates them 0700 / 0600), with their permission bits.
    pub fn loose_permissions(&self) -> Vec<(PathBuf, u32)> {
        use std::os::unix::fs::PermissionsExt;
        let mut paths = vec![parent_of(&self.path)];
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            paths.push(PathBuf::from(name));
        }
        paths
            .into_iter()
            .filter_map(|p| {
                let mode = fs::metadata(&p).ok()?.permissions().mode() & 0o7777;
                (mode & 0o077 != 0).then_some((p, mode))
            })
            .collect()
    }

    /// Apply `f`'s changes and append `entry` as their audit record, in one `BEGIN IMMEDIATE`
    /// transaction: both are written or neither. If `f` fails, nothing it did is kept and
    /// `entry` is logged as failed with the error's message (if even that cannot be written,
    /// the original error is still returned). Inside `f`, check [`Change::serial_exists`]
    /// before signing: within the transaction the answer cannot change.
    pub fn change<T, E>(
        &self,
        entry: AuditEntry,
        f: impl FnOnce(&mut Change<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError> + fmt::Display,
    {
        if let Outcome::Failed(_) = entry.outcome {
            return Err(StoreError::Invalid {
                field: "audit entry",
                reason: "a state change is recorded as it ends; pass an entry without failed()"
                    .into(),
            }
            .into());
        }
        let mut change = self.begin(entry.clone())?;
        let value = match f(&mut change) {
            Ok(value) => value,
            Err(e) => {
                drop(change);
                // Best effort: the operation's own error is what the caller must see.
                let _ = self.record(entry.failed(e.to_string()));
                return Err(e);
            }
        };
        match change.commit() {
            Ok(_) => Ok(value),
            Err(e) => {
                let _ = self.record(entry.failed(e.to_string()));
                Err(e.into())
            }
        }
    }

    /// Append an audit record for an event that changes no other state (an archive signed, a
    /// failed login, a key generated).
    pub fn record(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        self.begin(entry)?.commit()
    }

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

    fn begin(&self, entry: AuditEntry) -> Result<Change<'_>, StoreError> {
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

    fn check_identity(&self) -> Result<(), StoreError> {
        let pragma = |name: &str| -> Result<i64, StoreError> {
            self.conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .map_err(self.sql("reading the database identity"))
        };
        let application_id = pragma("application_id")?;
        if application_id != i64::from(schema::APPLICATION_ID) {
            return Err(StoreError::Foreign {
                path: self.path.clone(),
                application_id: application_id as i32,
            });
        }
        let version = pragma("user_version")?;
        if version > schema::VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                supported: schema::VERSION,
            });
        }
        let mut stmt = self
            .conn
            .prepare("PRAGMA quick_check")
            .map_err(self.sql("checking the database"))?;
        let findings: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(self.sql("checking the database"))?;
        if findings != ["ok"] {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                reason: findings.join("; "),
            });
        }
        Ok(())
    }

    /// Bring an older schema up to date, in one transaction with its audit record.
    fn migrate(&self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.sql("reading the schema version"))?;
        if version >= schema::VERSION {
            return Ok(());
        }
        let entry = AuditEntry::new("store.migrate", Operator::new("hsmsign"))
            .param("from_version", version.to_string())
            .param("to_version", schema::VERSION.to_string());
        let change = self.begin(entry)?;
        // Another process may have migrated while we waited for the lock.
        let version: i64 = change
            .tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.sql("reading the schema version"))?;
        if version >= schema::VERSION {
            return Ok(());
        }
        apply_migrations(&change.tx, version).map_err(self.sql("migrating the schema"))?;
        change.commit().map(|_| ())
    }

    /// A closure mapping an SQLite error in `context` to a [`StoreError`].
    fn sql(&self, context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| sql_error(&self.path, self.busy_timeout, context, e)
    }
}

/// The one handle that can change state, given to the closure of [`Store::change`]. Every
/// method that writes a row also lists it in the pending audit record.
pub struct Change<'s> {
    store: &'s Store,
    tx: rusqlite::Transaction<'s>,
    seq: u64,
    prev_hash: String,
    time: String,
    entry: AuditEntry,
    changes: Vec<serde_json::Value>,
    anchor: Option<serde_json::Value>,
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

    fn require_ca(&self, name: &str) -> Result<CaRecord, StoreError> {
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
    fn commit(self) -> Result<AuditRecord, StoreError> {
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
struct CertFacts {
    serial: Serial,
    subject: String,
    subject_der: Vec<u8>,
    issuer: String,
    issuer_der: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    fingerprint: String,
    spki_der: Vec<u8>,
}

impl CertFacts {
    fn parse(der: &[u8], what: &str) -> Result<Self, StoreError> {
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

/// A seq as SQLite's integer (seqs come from the database, so they fit).
fn seq_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn sql_error(
    path: &Path,
    timeout: Duration,
    context: &'static str,
    e: rusqlite::Error,
) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
            path: path.to_owned(),
            seconds: timeout.as_secs_f64().ceil() as u64,
        },
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        },
        _ => StoreError::Sqlite {
            path: path.to_owned(),
            context,
            source: e,
        },
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(StoreError::NotADirectory {
            path: dir.to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(|source| StoreError::Dir {
                path: dir.to_owned(),
                source,
            })
        }
        Err(source) => Err(StoreError::Dir {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Refuse anything but an hsmsign database of a known version, before SQLite opens the file
/// (opening may already write: WAL recovery, journal rollback).
fn check_header(path: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let not_db = |reason: &str| StoreError::NotADatabase {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let meta = fs::symlink_metadata(path).map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(not_db("not a regular file"));
    }
    let mut header = Vec::with_capacity(100);
    fs::File::open(path)
        .map_err(io)?
        .take(100)
        .read_to_end(&mut header)
        .map_err(io)?;
    if header.is_empty() {
        return Err(not_db("empty file"));
    }
    if header.len() < 100 || !header.starts_with(b"SQLite format 3\0") {
        return Err(not_db("not an SQLite database"));
    }
    let be = |at: usize| {
        i32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let application_id = be(68);
    if application_id != schema::APPLICATION_ID {
        return Err(StoreError::Foreign {
            path: path.to_owned(),
            application_id,
        });
    }
    let version = i64::from(be(60));
    if version > schema::VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            supported: schema::VERSION,
        });
    }
    if version < 1 {
        return Err(not_db("hsmsign application id but no schema"));
    }
    Ok(())
}

/// Open a connection with our settings. The file must exist.
fn connect(path: &Path, timeout: Duration) -> Result<Connection, StoreError> {
    let sql = |context| move |e| sql_error(path, timeout, context, e);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql("opening"))?;
    conn.busy_timeout(timeout)
        .map_err(sql("setting the busy timeout"))?;
    // No writable_schema or other ways to corrupt the file through SQL.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
        .map_err(sql("configuring"))?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA trusted_schema = OFF;",
    )
    .map_err(sql("configuring"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sql("switching to WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Invalid {
            field: "journal mode",
            reason: format!(
                "SQLite kept {mode} instead of WAL for {}; the state directory must be on a local file system",
                path.display()
            ),
        });
    }
    Ok(conn)
}

fn apply_migrations(conn: &Connection, from: i64) -> rusqlite::Result<()> {
    for step in schema::MIGRATIONS
        .iter()
        .skip(usize::try_from(from).unwrap_or(usize::MAX))
    {
        conn.execute_batch(step)?;
    }
    conn.execute_batch(&format!("PRAGMA user_version = {}", schema::VERSION))
}

/// Build a new database in a temporary file and link it into place only when complete.
fn create_database(dir: &Path, path: &Path, timeout: Duration) -> Result<(), StoreError> {
    let tmp = dir.join(format!(
        ".{DB_FILE}.{}.{}.new",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    let result = build_new_database(&tmp, timeout).and_then(|()| {
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(source) => Err(StoreError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    });
    for suffix in ["", "-wal", "-shm"] {
        let mut name = tmp.clone().into_os_string();
        name.push(suffix);
        let _ = fs::remove_file(PathBuf::from(name));
    }
    result?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })
}

fn build_new_database(tmp: &Path, timeout: Duration) -> Result<(), StoreError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(tmp).map_err(|source| StoreError::Io {
        path: tmp.to_owned(),
        source,
    })?;
    let conn = connect(tmp, timeout)?;
    let store = Store {
        conn,
        path: tmp.to_owned(),
        busy_timeout: timeout,
    };
    store
        .conn
        .execute_batch(&format!(
            "PRAGMA application_id = {}",
            schema::APPLICATION_ID
        ))
        .map_err(store.sql("creating the database"))?;
    // Two transactions are fine here: nobody sees the file before it is linked into place.
    {
        let tx = rusqlite::Transaction::new_unchecked(&store.conn, TransactionBehavior::Immediate)
            .map_err(store.sql("creating the schema"))?;
        apply_migrations(&tx, 0).map_err(store.sql("creating the schema"))?;
        tx.commit().map_err(store.sql("creating the schema"))?;
    }
    store.record(
        AuditEntry::new("store.create", Operator::new("hsmsign"))
            .param("schema_version", schema::VERSION.to_string()),
    )?;
    let Store { conn, path, .. } = store;
    conn.close()
        .map_err(|(_, e)| sql_error(&path, timeout, "closing the new database", e))?;
    fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|source| StoreError::Io {
            path: tmp.to_owned(),
            source,
        })
}

fn serial_exists(conn: &Connection, serial: &Serial) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM certificates WHERE serial = ?1) \
             OR EXISTS (SELECT 1 FROM cas WHERE serial = ?1)",
        [serial_key(serial)],
        |r| r.get(0),
    )
}

fn last_crl_number(conn: &Connection, ca: &str) -> rusqlite::Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT coalesce(max(number), 0) FROM crls WHERE ca = ?1",
        [ca],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Map a text column that must hold one of our values, or fail the read.
fn column<T>(idx: usize, value: Option<T>, what: &str) -> rusqlite::Result<T> {
    value.ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("unexpected {what} in the database").into(),
        )
    })
}

fn time_column(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<OffsetDateTime> {
    let text: String = row.get(idx)?;
    column(idx, parse_time(&text), "timestamp")
}

fn serial_column(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Serial> {
    let text: String = row.get(idx)?;
    column(idx, Serial::parse(&text).ok(), "serial")
}

fn seq_column(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let n: i64 = row.get(idx)?;
    column(idx, u64::try_from(n).ok(), "sequence number")
}

const CA_COLUMNS: &str = "name, key_uri, certificate, subject, serial, not_before, not_after, \
                          fingerprint, parent, key_provenance, attestation, created_at, audit_seq";

fn ca_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CaRecord> {
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

fn read_ca(conn: &Connection, name: &str) -> rusqlite::Result<Option<CaRecord>> {
    conn.query_row(
        &format!("SELECT {CA_COLUMNS} FROM cas WHERE name = ?1"),
        [name],
        ca_from_row,
    )
    .optional()
}

fn read_cas(conn: &Connection) -> rusqlite::Result<Vec<CaRecord>> {
    let mut stmt = conn.prepare(&format!("SELECT {CA_COLUMNS} FROM cas ORDER BY name"))?;
    stmt.query_map([], ca_from_row)?.collect()
}

fn read_certificates(
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

fn read_revocations(
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
