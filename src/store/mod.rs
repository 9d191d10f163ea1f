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
mod change;
mod open;
mod query;
mod schema;
mod types;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub use crate::x509::{RevocationReason, Serial};
pub use audit::{AnchorInfo, AuditHead, AuditProblem, AuditReport};
pub use change::Change;
pub use types::{
    AuditEntry, AuditRecord, CaRecord, CertificateRecord, NewCa, NewCertificate, Operator, Outcome,
    Revocation,
};

use change::CertFacts;
use query::{read_ca, seq_column};

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

    /// A closure mapping an SQLite error in `context` to a [`StoreError`].
    fn sql(&self, context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| sql_error(&self.path, self.busy_timeout, context, e)
    }
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
