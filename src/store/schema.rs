//! The database schema: identification, versions and the migration steps.

/// `PRAGMA application_id` of an hsmsign CA database: the ASCII bytes "HSMS".
pub(crate) const APPLICATION_ID: i32 = 0x4853_4d53;

/// A CHECK expression for a UTC timestamp column in our one fixed RFC 3339 form
/// (`YYYY-MM-DDTHH:MM:SSZ`), which also sorts correctly as text.
macro_rules! ts {
    ($col:literal) => {
        concat!(
            "(",
            $col,
            " GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z')"
        )
    };
}

/// A CHECK expression for a serial column: lower-case hex, no leading zero, at most 20 octets.
macro_rules! serial {
    ($col:literal) => {
        concat!(
            "(length(",
            $col,
            ") BETWEEN 1 AND 40 AND ",
            $col,
            " NOT GLOB '*[^0-9a-f]*' AND ",
            $col,
            " NOT GLOB '0*')"
        )
    };
}

/// A CHECK expression for a lower-case hex SHA-256 column.
macro_rules! sha256 {
    ($col:literal) => {
        concat!(
            "(length(",
            $col,
            ") = 64 AND ",
            $col,
            " NOT GLOB '*[^0-9a-f]*')"
        )
    };
}

/// A trigger pair that makes `table` append-only: rows are never edited or deleted through
/// hsmsign (a revocation is a new row, not an edit of the certificate).
macro_rules! append_only {
    ($table:literal) => {
        concat!(
            "CREATE TRIGGER ",
            $table,
            "_no_update BEFORE UPDATE ON ",
            $table,
            " BEGIN SELECT RAISE(ABORT, 'hsmsign: ",
            $table,
            " rows are append-only'); END;\n",
            "CREATE TRIGGER ",
            $table,
            "_no_delete BEFORE DELETE ON ",
            $table,
            " BEGIN SELECT RAISE(ABORT, 'hsmsign: ",
            $table,
            " rows are append-only'); END;\n"
        )
    };
}

/// Schema version 1.
const V1: &str = concat!(
    "CREATE TABLE audit (
    seq            INTEGER PRIMARY KEY CHECK (seq > 0),
    time           TEXT NOT NULL CHECK ",
    ts!("time"),
    ",
    operation      TEXT NOT NULL CHECK (length(operation) > 0),
    operator_user  TEXT NOT NULL,
    operator_token TEXT,
    details        TEXT NOT NULL CHECK (json_valid(details) AND json_type(details) = 'object'),
    result         TEXT NOT NULL CHECK (result IN ('ok', 'failed')),
    message        TEXT CHECK ((result = 'ok') = (message IS NULL)),
    prev_hash      TEXT NOT NULL CHECK ",
    sha256!("prev_hash"),
    ",
    hash           TEXT NOT NULL UNIQUE CHECK ",
    sha256!("hash"),
    "
) STRICT;
",
    append_only!("audit"),
    "
CREATE TABLE cas (
    name           TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 128 AND name = trim(name)),
    key_uri        TEXT NOT NULL CHECK (length(key_uri) > 0),
    certificate    BLOB NOT NULL,
    subject        TEXT NOT NULL,
    serial         TEXT NOT NULL UNIQUE CHECK ",
    serial!("serial"),
    ",
    not_before     TEXT NOT NULL CHECK ",
    ts!("not_before"),
    ",
    not_after      TEXT NOT NULL CHECK ",
    ts!("not_after"),
    ",
    fingerprint    TEXT NOT NULL UNIQUE CHECK ",
    sha256!("fingerprint"),
    ",
    parent         TEXT REFERENCES cas(name),
    key_provenance TEXT NOT NULL CHECK (length(key_provenance) > 0),
    attestation    BLOB,
    created_at     TEXT NOT NULL CHECK ",
    ts!("created_at"),
    ",
    audit_seq      INTEGER NOT NULL REFERENCES audit(seq) DEFERRABLE INITIALLY DEFERRED,
    CHECK (not_before < not_after),
    CHECK (parent IS NULL OR parent <> name)
) STRICT;
",
    append_only!("cas"),
    "
CREATE TABLE certificates (
    serial         TEXT PRIMARY KEY CHECK ",
    serial!("serial"),
    ",
    issuer         TEXT NOT NULL REFERENCES cas(name),
    subject        TEXT NOT NULL,
    sans           TEXT NOT NULL CHECK (json_valid(sans) AND json_type(sans) = 'array'),
    profile        TEXT NOT NULL CHECK (length(profile) > 0),
    not_before     TEXT NOT NULL CHECK ",
    ts!("not_before"),
    ",
    not_after      TEXT NOT NULL CHECK ",
    ts!("not_after"),
    ",
    fingerprint    TEXT NOT NULL UNIQUE CHECK ",
    sha256!("fingerprint"),
    ",
    der            BLOB NOT NULL,
    created_at     TEXT NOT NULL CHECK ",
    ts!("created_at"),
    ",
    audit_seq      INTEGER NOT NULL REFERENCES audit(seq) DEFERRABLE INITIALLY DEFERRED,
    CHECK (not_before < not_after)
) STRICT;
CREATE INDEX certificates_by_issuer ON certificates(issuer);
",
    append_only!("certificates"),
    "
-- One serial names one certificate in the whole database. A CA certificate issued by another
-- CA here is first recorded in `certificates` (issuer = parent) and then as a CA with the same
-- serial and fingerprint; a root or imported CA's serial must be new.
CREATE TRIGGER cas_serial_unique BEFORE INSERT ON cas
WHEN EXISTS (SELECT 1 FROM certificates c WHERE c.serial = NEW.serial
             AND (NEW.parent IS NULL OR c.issuer <> NEW.parent OR c.fingerprint <> NEW.fingerprint))
BEGIN SELECT RAISE(ABORT, 'hsmsign: serial already used by another certificate'); END;
CREATE TRIGGER cas_child_recorded BEFORE INSERT ON cas
WHEN NEW.parent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.serial = NEW.serial
             AND c.issuer = NEW.parent AND c.fingerprint = NEW.fingerprint)
BEGIN SELECT RAISE(ABORT, 'hsmsign: a subordinate CA certificate must first be recorded as issued by its parent'); END;
CREATE TRIGGER certificates_serial_unique BEFORE INSERT ON certificates
WHEN EXISTS (SELECT 1 FROM cas WHERE cas.serial = NEW.serial)
BEGIN SELECT RAISE(ABORT, 'hsmsign: serial already used by another certificate'); END;

CREATE TABLE revocations (
    serial         TEXT PRIMARY KEY REFERENCES certificates(serial),
    revoked_at     TEXT NOT NULL CHECK ",
    ts!("revoked_at"),
    ",
    -- RFC 5280 5.3.1 CRLReason; no certificateHold (6) or removeFromCRL (8): revocation is final.
    reason         INTEGER NOT NULL CHECK (reason IN (0, 1, 2, 3, 4, 5, 9, 10)),
    audit_seq      INTEGER NOT NULL REFERENCES audit(seq) DEFERRABLE INITIALLY DEFERRED
) STRICT;
",
    append_only!("revocations"),
    "
CREATE TABLE crls (
    ca             TEXT NOT NULL REFERENCES cas(name),
    number         INTEGER NOT NULL CHECK (number > 0),
    this_update    TEXT NOT NULL CHECK ",
    ts!("this_update"),
    ",
    next_update    TEXT NOT NULL CHECK ",
    ts!("next_update"),
    ",
    sha256         TEXT NOT NULL CHECK ",
    sha256!("sha256"),
    ",
    der            BLOB NOT NULL,
    audit_seq      INTEGER NOT NULL REFERENCES audit(seq) DEFERRABLE INITIALLY DEFERRED,
    PRIMARY KEY (ca, number),
    CHECK (this_update < next_update)
) STRICT;
-- RFC 5280 5.2.3: CRL numbers of one CA increase monotonically.
CREATE TRIGGER crls_monotonic BEFORE INSERT ON crls
WHEN NEW.number <= (SELECT coalesce(max(number), 0) FROM crls WHERE ca = NEW.ca)
BEGIN SELECT RAISE(ABORT, 'hsmsign: CRL numbers must increase'); END;
",
    append_only!("crls"),
);

/// The migration steps, oldest first: step `i` takes the schema from version `i` to `i + 1`.
/// Never edit a released step; append a new one.
pub(crate) const MIGRATIONS: &[&str] = &[V1];

/// The schema version this build writes.
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

/// The tables whose rows are state, how each row is named in its audit record, and the columns
/// that make up the row digest the audit record carries. Never change a released column list:
/// a later migration that adds columns must leave them out of (or version) the digest.
pub(crate) const STATE_TABLES: &[StateTable] = &[
    StateTable {
        table: "cas",
        key: "name",
        columns: "name, key_uri, certificate, subject, serial, not_before, not_after, fingerprint, \
                  parent, key_provenance, attestation, created_at",
    },
    StateTable {
        table: "certificates",
        key: "serial",
        columns: "serial, issuer, subject, sans, profile, not_before, not_after, fingerprint, der, \
                  created_at",
    },
    StateTable {
        table: "revocations",
        key: "serial",
        columns: "serial, revoked_at, reason",
    },
    StateTable {
        table: "crls",
        key: "json_array(ca, number)",
        columns: "ca, number, this_update, next_update, sha256, der",
    },
];

/// One state table, for row digests.
pub(crate) struct StateTable {
    /// Table name.
    pub table: &'static str,
    /// SQL expression naming a row (text, unique in the table).
    pub key: &'static str,
    /// The digested columns, in order.
    pub columns: &'static str,
}
