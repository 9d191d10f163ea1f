//! The hash-chained audit log: record hashes, appending, verification and signed anchors.

use std::collections::BTreeMap;
use std::fmt;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::Digest;

use super::schema::STATE_TABLES;
use super::types::{AuditEntry, AuditRecord, Operator, Outcome};
use super::{CertFacts, Store, StoreError};
use crate::encoding::hex;
use crate::signer::{self, PublicKey, SignatureAlgorithm, SigningKey};

/// The `prev_hash` of the first record.
pub(crate) const ZERO_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain separation of the record hash.
const RECORD_DOMAIN: &[u8] = b"hsmsign audit record v1\0";
/// Domain separation of a row digest.
const ROW_DOMAIN: &[u8] = b"hsmsign state row v1\0";
/// Domain separation of the message an anchor signs.
const ANCHOR_DOMAIN: &[u8] = b"hsmsign audit anchor v1\0";

/// The newest record of the log, as kept outside to detect truncation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditHead {
    /// Its seq.
    pub seq: u64,
    /// Its hash (lower-case hex).
    pub hash: String,
}

/// An anchor that verified.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AnchorInfo {
    /// The anchor record's seq.
    pub seq: u64,
    /// The CA whose key signed it.
    pub ca: String,
    /// SHA-256 of that CA's certificate: compare with the one you published.
    pub ca_fingerprint: String,
    /// The last record it covers.
    pub head_seq: u64,
    /// That record's hash: with `head_seq`, what to keep outside (see [`Store::verify_audit_with`]).
    pub head_hash: String,
    /// When it was made (UTC, RFC 3339).
    pub time: String,
}

/// The first thing found wrong in the audit log or the state it accounts for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditProblem {
    /// Record `seq` is missing: the next record found has seq `found` (a deletion).
    Missing {
        /// The seq expected.
        seq: u64,
        /// The seq found instead.
        found: u64,
    },
    /// Record `seq`'s fields do not match its hash: it was edited (or its seq changed).
    HashMismatch {
        /// The record.
        seq: u64,
    },
    /// Record `seq` does not link to its predecessor's hash: reordered, or a record was
    /// replaced and rehashed.
    PrevMismatch {
        /// The record.
        seq: u64,
    },
    /// Record `seq` holds details hsmsign cannot read.
    Malformed {
        /// The record.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The anchor at `seq` does not verify.
    BadAnchor {
        /// The anchor record.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The log ends before the externally kept head: records `seq..=known_seq` were removed.
    Truncated {
        /// The first record missing.
        seq: u64,
        /// The externally kept head's seq.
        known_seq: u64,
    },
    /// Record `seq` is not the externally kept head: the log was rewritten.
    KnownHeadDiffers {
        /// The record.
        seq: u64,
    },
    /// A state row no audit record accounts for (written outside hsmsign).
    RowNotAudited {
        /// The seq the row names as its audit record.
        seq: u64,
        /// The table.
        table: String,
        /// The row's key.
        key: String,
    },
    /// A state row that differs from what its audit record says was written, or is gone.
    RowChanged {
        /// The audit record that wrote it.
        seq: u64,
        /// The table.
        table: String,
        /// The row's key.
        key: String,
        /// True if the row is gone.
        missing: bool,
    },
}

impl AuditProblem {
    /// The seq of the first bad record.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Missing { seq, .. }
            | Self::HashMismatch { seq }
            | Self::PrevMismatch { seq }
            | Self::Malformed { seq, .. }
            | Self::BadAnchor { seq, .. }
            | Self::Truncated { seq, .. }
            | Self::KnownHeadDiffers { seq }
            | Self::RowNotAudited { seq, .. }
            | Self::RowChanged { seq, .. } => *seq,
        }
    }
}

impl fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { seq, found } => write!(
                f,
                "audit record {seq} is missing (the next record is {found}): records were deleted"
            ),
            Self::HashMismatch { seq } => write!(
                f,
                "audit record {seq} does not match its hash: it was edited or moved"
            ),
            Self::PrevMismatch { seq } => write!(
                f,
                "audit record {seq} does not link to record {}: records were reordered or replaced",
                seq.saturating_sub(1)
            ),
            Self::Malformed { seq, reason } => {
                write!(f, "audit record {seq} cannot be read: {reason}")
            }
            Self::BadAnchor { seq, reason } => {
                write!(
                    f,
                    "the anchor in audit record {seq} does not verify: {reason}"
                )
            }
            Self::Truncated { seq, known_seq } => write!(
                f,
                "the audit log ends before record {seq}, but record {known_seq} was kept as its head: \
                 records were removed from the end"
            ),
            Self::KnownHeadDiffers { seq } => write!(
                f,
                "audit record {seq} differs from the head kept outside: the log was rewritten"
            ),
            Self::RowNotAudited { seq, table, key } => write!(
                f,
                "{table} row {key} is not listed in audit record {seq}: it was written outside hsmsign"
            ),
            Self::RowChanged {
                seq,
                table,
                key,
                missing,
            } => write!(
                f,
                "{table} row {key} written by audit record {seq} {}",
                if *missing {
                    "is gone"
                } else {
                    "was changed since"
                }
            ),
        }
    }
}

/// What [`Store::verify_audit`] found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditReport {
    /// Records checked (the whole log when there is no problem).
    pub records: u64,
    /// The newest record: keep it outside to detect truncation later.
    pub head: Option<AuditHead>,
    /// Anchors that verified, oldest first.
    pub anchors: Vec<AnchorInfo>,
    /// The first problem, if any. `None` means the chain and the state tables are intact.
    pub problem: Option<AuditProblem>,
}

impl AuditReport {
    /// True if nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }

    /// The last record covered by a verified anchor (0 if none).
    pub fn anchored_through(&self) -> u64 {
        self.anchors.last().map_or(0, |a| a.head_seq)
    }

    /// The records not yet covered by an anchor (the newest anchor record itself included),
    /// as `first..=last`; `None` if all are covered.
    pub fn not_yet_anchored(&self) -> Option<std::ops::RangeInclusive<u64>> {
        let head = self.head.as_ref()?.seq;
        let first = self.anchored_through() + 1;
        (first <= head).then_some(first..=head)
    }
}

/// Length-prefixed, type-tagged encoding: no two different field lists encode the same.
struct Encoder(sha2::Sha256);

impl Encoder {
    fn new(domain: &[u8]) -> Self {
        let mut h = sha2::Sha256::new();
        h.update(domain);
        Self(h)
    }

    fn value(&mut self, v: ValueRef<'_>) {
        match v {
            ValueRef::Null => self.0.update([0u8]),
            ValueRef::Integer(i) => {
                self.0.update([1u8]);
                self.0.update(i.to_be_bytes());
            }
            ValueRef::Real(r) => {
                self.0.update([2u8]);
                self.0.update(r.to_bits().to_be_bytes());
            }
            ValueRef::Text(t) => self.bytes(3, t),
            ValueRef::Blob(b) => self.bytes(4, b),
        }
    }

    fn bytes(&mut self, tag: u8, b: &[u8]) {
        self.0.update([tag]);
        self.0.update((b.len() as u64).to_be_bytes());
        self.0.update(b);
    }

    fn text(&mut self, t: &str) {
        self.value(ValueRef::Text(t.as_bytes()));
    }

    fn opt_text(&mut self, t: Option<&str>) {
        self.value(t.map_or(ValueRef::Null, |t| ValueRef::Text(t.as_bytes())));
    }

    fn int(&mut self, i: i64) {
        self.value(ValueRef::Integer(i));
    }

    fn finish_hex(self) -> String {
        hex(&self.0.finalize())
    }
}

/// The fields of a record as stored.
pub(super) struct RawRecord {
    pub(super) seq: i64,
    pub(super) time: String,
    pub(super) operation: String,
    pub(super) operator_user: String,
    pub(super) operator_token: Option<String>,
    pub(super) details: String,
    pub(super) result: String,
    pub(super) message: Option<String>,
    pub(super) prev_hash: String,
    pub(super) hash: String,
}

pub(super) const RECORD_COLUMNS: &str = "seq, time, operation, operator_user, operator_token, details, \
                              result, message, prev_hash, hash";

impl RawRecord {
    pub(super) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: row.get(0)?,
            time: row.get(1)?,
            operation: row.get(2)?,
            operator_user: row.get(3)?,
            operator_token: row.get(4)?,
            details: row.get(5)?,
            result: row.get(6)?,
            message: row.get(7)?,
            prev_hash: row.get(8)?,
            hash: row.get(9)?,
        })
    }

    /// SHA-256 over every field but `hash`, `prev_hash` included.
    pub(super) fn compute_hash(&self) -> String {
        let mut e = Encoder::new(RECORD_DOMAIN);
        e.int(self.seq);
        e.text(&self.time);
        e.text(&self.operation);
        e.text(&self.operator_user);
        e.opt_text(self.operator_token.as_deref());
        e.text(&self.details);
        e.text(&self.result);
        e.opt_text(self.message.as_deref());
        e.text(&self.prev_hash);
        e.finish_hex()
    }

    fn into_record(self) -> AuditRecord {
        AuditRecord {
            seq: u64::try_from(self.seq).unwrap_or(0),
            time: self.time,
            operation: self.operation,
            operator: Operator {
                os_user: self.operator_user,
                token: self.operator_token,
            },
            details: serde_json::from_str(&self.details).unwrap_or(serde_json::Value::Null),
            result: match self.message {
                Some(m) if self.result == "failed" => Outcome::Failed(m),
                _ => Outcome::Ok,
            },
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

/// The newest record's seq and hash.
pub(crate) fn read_head(conn: &Connection) -> rusqlite::Result<Option<(u64, String)>> {
    conn.query_row(
        "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
        [],
        |r| Ok((super::seq_column(r, 0)?, r.get(1)?)),
    )
    .optional()
}

pub(crate) fn read_records(conn: &Connection, since: u64) -> rusqlite::Result<Vec<AuditRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {RECORD_COLUMNS} FROM audit WHERE seq >= ?1 ORDER BY seq"
    ))?;
    stmt.query_map([super::seq_sql(since)], RawRecord::from_row)?
        .map(|r| r.map(RawRecord::into_record))
        .collect()
}

/// Write the audit record of a transaction.
pub(crate) fn append(
    conn: &Connection,
    seq: u64,
    time: &str,
    entry: &AuditEntry,
    changes: Vec<serde_json::Value>,
    anchor: Option<serde_json::Value>,
    prev_hash: &str,
) -> rusqlite::Result<AuditRecord> {
    let mut details = serde_json::Map::new();
    details.insert("inputs".into(), serde_json::json!(entry.inputs));
    details.insert("outputs".into(), serde_json::json!(entry.outputs));
    details.insert("params".into(), serde_json::json!(entry.params));
    details.insert("changes".into(), serde_json::Value::Array(changes));
    if let Some(anchor) = anchor {
        details.insert("anchor".into(), anchor);
    }
    let (result, message) = match &entry.outcome {
        Outcome::Ok => ("ok", None),
        Outcome::Failed(m) => ("failed", Some(m.clone())),
    };
    let mut raw = RawRecord {
        seq: super::seq_sql(seq),
        time: time.to_owned(),
        operation: entry.operation.clone(),
        operator_user: entry.operator.os_user.clone(),
        operator_token: entry.operator.token.clone(),
        details: serde_json::Value::Object(details).to_string(),
        result: result.to_owned(),
        message,
        prev_hash: prev_hash.to_owned(),
        hash: String::new(),
    };
    raw.hash = raw.compute_hash();
    conn.execute(
        &format!(
            "INSERT INTO audit ({RECORD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            raw.seq,
            raw.time,
            raw.operation,
            raw.operator_user,
            raw.operator_token,
            raw.details,
            raw.result,
            raw.message,
            raw.prev_hash,
            raw.hash
        ],
    )?;
    Ok(raw.into_record())
}

/// Key, audit seq and digest of every row of `table` (or of the row just inserted).
fn row_digests(
    conn: &Connection,
    table: &str,
    last_insert_only: bool,
) -> rusqlite::Result<Vec<(String, u64, String)>> {
    let Some(spec) = STATE_TABLES.iter().find(|t| t.table == table) else {
        return Err(rusqlite::Error::InvalidParameterName(table.to_owned()));
    };
    let filter = if last_insert_only {
        " WHERE rowid = last_insert_rowid()"
    } else {
        ""
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {}, audit_seq, {} FROM {}{filter}",
        spec.key, spec.columns, spec.table
    ))?;
    let n = stmt.column_count();
    stmt.query_map([], |row| {
        let mut e = Encoder::new(ROW_DOMAIN);
        e.text(spec.table);
        for i in 2..n {
            e.value(row.get_ref(i)?);
        }
        Ok((row.get(0)?, super::seq_column(row, 1)?, e.finish_hex()))
    })?
    .collect()
}

/// Key and digest of the row just inserted into `table`.
pub(crate) fn row_digest_of_last_insert(
    conn: &Connection,
    table: &str,
) -> rusqlite::Result<(String, String)> {
    row_digests(conn, table, true)?
        .pop()
        .map(|(key, _, digest)| (key, digest))
        .ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// The message an anchor signs.
fn anchor_message(ca: &str, head_seq: u64, head_hash: &str, time: &str) -> Vec<u8> {
    let mut m = ANCHOR_DOMAIN.to_vec();
    for field in [
        ca.as_bytes(),
        &head_seq.to_be_bytes(),
        head_hash.as_bytes(),
        time.as_bytes(),
    ] {
        m.extend((field.len() as u64).to_be_bytes());
        m.extend(field);
    }
    m
}

/// The public key in a CA certificate.
fn ca_public_key(der: &[u8], ca: &str) -> Result<PublicKey, String> {
    let facts = CertFacts::parse(der, &format!("CA {ca:?}")).map_err(|e| e.to_string())?;
    PublicKey::from_spki_der(&facts.spki_der).map_err(|e| e.to_string())
}

impl Store {
    /// Sign the current head of the audit log (its seq, hash and the time) with the key of CA
    /// `ca_name` through [`signer::sign`], and append the signature as an audit record. The
    /// head cannot move while the token signs: the write lock is held.
    pub fn anchor_head(
        &self,
        key: &dyn SigningKey,
        ca_name: &str,
        operator: Operator,
    ) -> Result<AuditRecord, StoreError> {
        let entry = AuditEntry::new("audit.anchor", operator).param("ca", ca_name);
        let mut change = self.begin(entry)?;
        let ca = change.require_ca(ca_name)?;
        let ca_key = ca_public_key(&ca.certificate_der, ca_name).map_err(|reason| {
            StoreError::BadCertificate {
                what: format!("CA {ca_name:?}"),
                reason,
            }
        })?;
        if ca_key != *key.public_key() {
            return Err(StoreError::AnchorKeyMismatch {
                ca: ca_name.to_owned(),
                key: key.name(),
            });
        }
        let head_seq = change.seq - 1;
        let alg = ca_key.algorithm().default_signature();
        let message = anchor_message(ca_name, head_seq, &change.prev_hash, &change.time);
        let signature =
            signer::sign(key, alg, &message).map_err(|source| StoreError::AnchorSign {
                ca: ca_name.to_owned(),
                source,
            })?;
        change.anchor = Some(serde_json::json!({
            "ca": ca_name,
            "ca_fingerprint": ca.fingerprint,
            "head_seq": head_seq,
            "head_hash": change.prev_hash,
            "algorithm": alg.java_name(),
            "signature": hex(&signature),
        }));
        change.commit()
    }

    /// Recompute the hash chain, check every anchor's signature, and match the state tables
    /// against the rows the audit records say were written. Reports the first problem.
    pub fn verify_audit(&self) -> Result<AuditReport, StoreError> {
        self.verify_audit_with(None)
    }

    /// [`Store::verify_audit`], also checking that the log still reaches `known_head` (a head
    /// kept outside the state directory) unchanged: this detects truncation.
    pub fn verify_audit_with(
        &self,
        known_head: Option<&AuditHead>,
    ) -> Result<AuditReport, StoreError> {
        // One read transaction: a consistent snapshot while writers go on.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Deferred,
        )
        .map_err(self.sql("starting a read transaction"))?;
        let mut report = AuditReport {
            records: 0,
            head: None,
            anchors: Vec::new(),
            problem: None,
        };
        // (table, key) -> (seq, row digest) of every row the log says was written.
        let mut written: BTreeMap<(String, String), (u64, String)> = BTreeMap::new();
        let mut known_hash_seen = None;
        {
            let mut stmt = tx
                .prepare(&format!("SELECT {RECORD_COLUMNS} FROM audit ORDER BY seq"))
                .map_err(self.sql("reading the audit log"))?;
            let mut rows = stmt.query([]).map_err(self.sql("reading the audit log"))?;
            let mut expected: u64 = 1;
            let mut prev = ZERO_HASH.to_owned();
            while let Some(row) = rows.next().map_err(self.sql("reading the audit log"))? {
                let raw = RawRecord::from_row(row).map_err(self.sql("reading the audit log"))?;
                let seq = u64::try_from(raw.seq).unwrap_or(0);
                if let Some(problem) =
                    self.check_record(&tx, &raw, seq, expected, &prev, &mut report, &mut written)?
                {
                    report.problem = Some(problem);
                    return Ok(report);
                }
                if known_head.is_some_and(|k| k.seq == seq) {
                    known_hash_seen = Some(raw.hash.clone());
                }
                report.records += 1;
                report.head = Some(AuditHead {
                    seq,
                    hash: raw.hash.clone(),
                });
                prev = raw.hash;
                expected += 1;
            }
        }
        if let Some(known) = known_head {
            let last = report.head.as_ref().map_or(0, |h| h.seq);
            if known.seq > last {
                report.problem = Some(AuditProblem::Truncated {
                    seq: last + 1,
                    known_seq: known.seq,
                });
                return Ok(report);
            }
            if known_hash_seen.as_deref() != Some(known.hash.as_str()) {
                report.problem = Some(AuditProblem::KnownHeadDiffers { seq: known.seq });
                return Ok(report);
            }
        }
        report.problem = self.check_state(&tx, written)?;
        Ok(report)
    }

    /// Check one record in chain order; collect its anchor and the rows it wrote.
    #[allow(clippy::too_many_arguments)] // one step of verify_audit_with, sharing its state
    fn check_record(
        &self,
        conn: &Connection,
        raw: &RawRecord,
        seq: u64,
        expected: u64,
        prev: &str,
        report: &mut AuditReport,
        written: &mut BTreeMap<(String, String), (u64, String)>,
    ) -> Result<Option<AuditProblem>, StoreError> {
        if seq != expected {
            return Ok(Some(AuditProblem::Missing {
                seq: expected,
                found: seq,
            }));
        }
        if raw.compute_hash() != raw.hash {
            return Ok(Some(AuditProblem::HashMismatch { seq }));
        }
        if raw.prev_hash != prev {
            return Ok(Some(AuditProblem::PrevMismatch { seq }));
        }
        let malformed = |reason: &str| {
            Ok(Some(AuditProblem::Malformed {
                seq,
                reason: reason.to_owned(),
            }))
        };
        let Ok(details) = serde_json::from_str::<serde_json::Value>(&raw.details) else {
            return malformed("details are not JSON");
        };
        if let Some(changes) = details.get("changes").and_then(|c| c.as_array()) {
            for c in changes {
                let field = |name| c.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                let (Some(table), Some(key), Some(digest)) =
                    (field("table"), field("key"), field("row_sha256"))
                else {
                    return malformed("a change entry lacks table, key or row_sha256");
                };
                written.insert((table, key), (seq, digest));
            }
        }
        if let Some(anchor) = details.get("anchor") {
            match self.check_anchor(conn, anchor, seq, prev, &raw.time) {
                Ok(info) => report.anchors.push(info),
                Err(reason) => return Ok(Some(AuditProblem::BadAnchor { seq, reason })),
            }
        }
        Ok(None)
    }

    fn check_anchor(
        &self,
        conn: &Connection,
        anchor: &serde_json::Value,
        seq: u64,
        prev: &str,
        time: &str,
    ) -> Result<AnchorInfo, String> {
        let text = |name: &str| {
            anchor
                .get(name)
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("no {name}"))
        };
        let ca = text("ca")?;
        let head_hash = text("head_hash")?;
        let head_seq = anchor
            .get("head_seq")
            .and_then(|v| v.as_u64())
            .ok_or("no head_seq")?;
        if head_seq + 1 != seq || head_hash != prev {
            return Err(format!(
                "it signs record {head_seq} with hash {head_hash}, not its predecessor"
            ));
        }
        let alg = SignatureAlgorithm::from_java_name(text("algorithm")?)
            .ok_or("unknown signature algorithm")?;
        let signature = decode_hex(text("signature")?).ok_or("signature is not hex")?;
        let record = super::read_ca(conn, ca)
            .map_err(|e| format!("cannot read CA {ca:?}: {e}"))?
            .ok_or_else(|| format!("CA {ca:?} is not in the database"))?;
        if text("ca_fingerprint")? != record.fingerprint {
            return Err(format!("the certificate of CA {ca:?} changed since"));
        }
        let key = ca_public_key(&record.certificate_der, ca)?;
        key.verify(
            alg,
            &anchor_message(ca, head_seq, head_hash, time),
            &signature,
        )
        .map_err(|_| format!("the signature does not verify with the key of CA {ca:?}"))?;
        Ok(AnchorInfo {
            seq,
            ca: ca.to_owned(),
            ca_fingerprint: record.fingerprint,
            head_seq,
            head_hash: head_hash.to_owned(),
            time: time.to_owned(),
        })
    }

    /// Every state row must be listed, with the same digest, by the audit record it names,
    /// and every row the log lists must still be there.
    fn check_state(
        &self,
        conn: &Connection,
        mut written: BTreeMap<(String, String), (u64, String)>,
    ) -> Result<Option<AuditProblem>, StoreError> {
        let mut problems = Vec::new();
        for spec in STATE_TABLES {
            let rows = row_digests(conn, spec.table, false).map_err(self.sql("reading state"))?;
            for (key, audit_seq, digest) in rows {
                let id = (spec.table.to_owned(), key.clone());
                match written.remove(&id) {
                    None => problems.push(AuditProblem::RowNotAudited {
                        seq: audit_seq,
                        table: id.0,
                        key,
                    }),
                    Some((seq, logged)) if seq != audit_seq || logged != digest => {
                        problems.push(AuditProblem::RowChanged {
                            seq,
                            table: id.0,
                            key,
                            missing: false,
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        for ((table, key), (seq, _)) in written {
            problems.push(AuditProblem::RowChanged {
                seq,
                table,
                key,
                missing: true,
            });
        }
        Ok(problems.into_iter().min_by_key(AuditProblem::seq))
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
