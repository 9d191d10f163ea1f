//! Tests of the CA state: creation, identity checks, constraints, the audit chain, anchors,
//! tampering, concurrency and crashes.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use rusqlite::Connection;
use time::OffsetDateTime;

use super::types::serial_key;
use super::*;
use crate::signer::SigningKey;
use crate::signer::soft::SoftKey;
use crate::x509::{self, CaCertificate, DistinguishedName, IssueParams, Profile, SanEntry};

fn random_serial() -> Vec<u8> {
    let mut s: Vec<u8> = (0..16).map(|_| fastrand::u8(..)).collect();
    s[0] = (s[0] & 0x7f) | 0x01;
    s
}

/// Issue a certificate through the crate's own X.509 layer, valid from an hour ago for the
/// profile's default period (cut to the issuer's).
fn issue_cert(
    subject: &str,
    key: &SoftKey,
    profile: Profile,
    serial: &[u8],
    sans: &[SanEntry],
    issuer: Option<(&CaCertificate, &SoftKey)>,
) -> Vec<u8> {
    let subject = DistinguishedName::parse(subject).unwrap();
    let serial = Serial::new(serial).unwrap();
    let not_before = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let params = IssueParams {
        subject: &subject,
        public_key: key.public_key(),
        profile,
        serial: &serial,
        not_before,
        not_after: profile.default_not_after(not_before),
        sans,
        path_len: None,
    };
    let (ca, signer) = match issuer {
        Some((ca, ca_key)) => (Some(ca), ca_key),
        None => (None, key),
    };
    x509::issue(&params, ca, signer).unwrap().der
}

fn self_signed_ca(key: &SoftKey, cn: &str, serial: &[u8]) -> Vec<u8> {
    issue_cert(&format!("CN={cn}"), key, Profile::Root, serial, &[], None)
}

/// The root CA certificate `CN=cn` of `key` (serial 0x0100), made once per process: signing
/// and checking it again for every leaf would only slow the concurrency tests down.
fn ca_cert(key: &SoftKey, cn: &str) -> CaCertificate {
    type Cache = Mutex<HashMap<(String, Vec<u8>), CaCertificate>>;
    static CAS: OnceLock<Cache> = OnceLock::new();
    let id = (cn.to_owned(), key.public_key().spki_der().to_vec());
    let mut cas = CAS.get_or_init(Cache::default).lock().unwrap();
    cas.entry(id)
        .or_insert_with(|| {
            CaCertificate::parse(&self_signed_ca(key, cn, &[0x01, 0x00]), cn).unwrap()
        })
        .clone()
}

/// A server certificate for `host` signed by the CA (`ca_cn`, `ca_key`).
fn issue(
    ca_key: &SoftKey,
    ca_cn: &str,
    subject_key: &SoftKey,
    host: &str,
    serial: &[u8],
) -> Vec<u8> {
    let ca = ca_cert(ca_key, ca_cn);
    issue_cert(
        &format!("CN={host}"),
        subject_key,
        Profile::Server,
        serial,
        &[SanEntry::parse(&format!("DNS:{host}")).unwrap()],
        Some((&ca, ca_key)),
    )
}

fn op() -> Operator {
    Operator::new("alice").with_token("JS7 Root")
}

const ROOT: &str = "Test Root CA";

/// A fresh state directory holding one root CA "root".
struct Fixture {
    _dir: tempfile::TempDir,
    state: PathBuf,
    store: Store,
    ca_key: SoftKey,
    leaf_key: SoftKey,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let store = Store::open(&state).unwrap();
    let ca_key = SoftKey::p256(1);
    let der = self_signed_ca(&ca_key, ROOT, &[0x01, 0x00]);
    store
        .change(AuditEntry::new("ca.init", op()), |tx| {
            tx.insert_ca(&NewCa {
                name: "root",
                key_uri: "pkcs11:token=JS7%20Root;object=root",
                certificate_der: &der,
                parent: None,
                key_provenance: "generated on the token, not extractable",
                attestation: None,
            })
        })
        .unwrap();
    Fixture {
        _dir: dir,
        state,
        store,
        ca_key,
        leaf_key: SoftKey::p256(2),
    }
}

impl Fixture {
    fn issue(&self, serial: &[u8]) -> Vec<u8> {
        issue(&self.ca_key, ROOT, &self.leaf_key, "host.example", serial)
    }

    fn insert(&self, der: &[u8]) -> Result<CertificateRecord, StoreError> {
        insert_cert(&self.store, der)
    }

    fn raw(&self) -> Connection {
        Connection::open(self.state.join(DB_FILE)).unwrap()
    }
}

fn insert_cert(store: &Store, der: &[u8]) -> Result<CertificateRecord, StoreError> {
    let sans = vec!["DNS:host.example".to_owned()];
    store.change(
        AuditEntry::new("cert.issue", op()).param("profile", "server"),
        |tx| {
            tx.add_output("certificate", der);
            tx.insert_certificate(&NewCertificate {
                issuer: "root",
                der,
                profile: "server",
                sans: &sans,
            })
        },
    )
}

fn openssl(args: &[&str], input: &Path) -> String {
    let out = Command::new("openssl")
        .args(args)
        .arg("-in")
        .arg(input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn creates_the_directory_and_database_private_and_identified() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&f.state), 0o700);
    assert_eq!(mode(&f.state.join(DB_FILE)), 0o600);
    // Only the database and SQLite's WAL files: no temporary file left behind.
    for entry in fs::read_dir(&f.state).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(name.starts_with(DB_FILE), "{name}");
    }
    let raw = f.raw();
    let app: i64 = raw
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(app, 0x4853_4d53);
    assert_eq!(version, schema::VERSION);
    assert_eq!(mode, "wal");
    let records = f.store.audit_records(None).unwrap();
    assert_eq!(records[0].seq, 1);
    assert_eq!(records[0].operation, "store.create");
    assert_eq!(records[0].prev_hash, audit::ZERO_HASH);
    assert_eq!(records[1].operation, "ca.init");
    assert_eq!(records[1].prev_hash, records[0].hash);
    drop(f.store);
    let again = Store::open(&f.state).unwrap();
    assert_eq!(again.audit_records(None).unwrap().len(), 2);
    assert!(again.verify_audit().unwrap().is_ok());
}

#[test]
fn serials_are_written_as_hex_without_leading_zeros() {
    // The database text of a serial is fixed: existing rows and audit hashes depend on it.
    assert_eq!(serial_key(&Serial::parse("00:1A:2b:03").unwrap()), "1a2b03");
    assert_eq!(serial_key(&Serial::parse("0abc").unwrap()), "abc");
    assert_eq!(serial_key(&Serial::new(&[0x01, 0x00]).unwrap()), "100");
    let read_back = Serial::parse(&serial_key(&Serial::new(&[0x0a, 0xbc]).unwrap())).unwrap();
    assert_eq!(read_back.bytes(), [0x0a, 0xbc]);
}

#[test]
fn a_certificate_is_recorded_with_the_facts_openssl_reads() {
    let f = fixture();
    let der = f.issue(&[0x7f, 0x01, 0x02]);
    let rec = f.insert(&der).unwrap();
    let file = f._dir.path().join("leaf.der");
    fs::write(&file, &der).unwrap();
    let serial = openssl(&["x509", "-inform", "DER", "-noout", "-serial"], &file);
    assert_eq!(
        Serial::parse(serial.trim().trim_start_matches("serial=")).unwrap(),
        rec.serial
    );
    let fp = openssl(
        &[
            "x509",
            "-inform",
            "DER",
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
        &file,
    );
    let fp: String = fp
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_lowercase();
    assert_eq!(fp, rec.fingerprint);
    let end = openssl(&["x509", "-inform", "DER", "-noout", "-enddate"], &file);
    assert!(
        end.contains(&rec.not_after.year().to_string()),
        "{end} vs {:?}",
        rec.not_after
    );
    assert_eq!(rec.subject, "CN=host.example");
    assert_eq!(rec.sans, vec!["DNS:host.example".to_owned()]);
    assert_eq!(f.store.certificate(&rec.serial).unwrap().unwrap(), rec);
    assert_eq!(
        f.store.certificates(Some("root")).unwrap(),
        vec![rec.clone()]
    );
    assert!(f.store.serial_exists(&rec.serial).unwrap());
    // The audit record of the issue lists the row and the output.
    let audit = f.store.audit_records(Some(rec.audit_seq)).unwrap();
    assert_eq!(audit[0].operation, "cert.issue");
    assert_eq!(audit[0].details["outputs"]["certificate"], rec.fingerprint);
    assert_eq!(audit[0].details["changes"][0]["table"], "certificates");
    assert_eq!(
        audit[0].details["changes"][0]["key"],
        serial_key(&rec.serial)
    );
    assert!(f.store.verify_audit().unwrap().is_ok());
}

#[test]
fn a_taken_serial_is_a_typed_error_and_changes_nothing() {
    let f = fixture();
    let der = f.issue(&[0x42]);
    f.insert(&der).unwrap();
    let other = issue(&f.ca_key, ROOT, &SoftKey::p256(5), "other.example", &[0x42]);
    let before = f.store.certificates(None).unwrap();
    let err = f.insert(&other).unwrap_err();
    assert!(
        matches!(&err, StoreError::SerialTaken { serial } if serial.to_hex() == "42"),
        "{err}"
    );
    assert!(err.to_string().contains("fresh random serial"));
    assert_eq!(f.store.certificates(None).unwrap(), before);
    // The CA's own serial counts too.
    let clash = f.issue(&[0x01, 0x00]);
    assert!(matches!(
        f.insert(&clash).unwrap_err(),
        StoreError::SerialTaken { .. }
    ));
    // The failed attempts are logged as failed, with no rows.
    let records = f.store.audit_records(None).unwrap();
    let last = records.last().unwrap();
    assert!(matches!(&last.result, Outcome::Failed(m) if m.contains("is already used")));
    assert_eq!(last.details["changes"], serde_json::json!([]));
    assert!(f.store.verify_audit().unwrap().is_ok());
    // The UNIQUE constraint backs the check up even for raw SQL.
    let raw = f.raw();
    let dup = raw.execute(
        "INSERT INTO certificates SELECT * FROM certificates WHERE serial = '42'",
        [],
    );
    assert!(dup.is_err());
}

#[test]
fn a_failing_closure_leaves_no_state_and_a_failed_record() {
    let f = fixture();
    let der = f.issue(&[0x55]);
    let result: Result<(), StoreError> =
        f.store.change(AuditEntry::new("cert.issue", op()), |tx| {
            tx.insert_certificate(&NewCertificate {
                issuer: "root",
                der: &der,
                profile: "server",
                sans: &[],
            })?;
            Err(StoreError::Invalid {
                field: "test",
                reason: "the token went away".into(),
            })
        });
    assert!(result.is_err());
    assert!(
        !f.store
            .serial_exists(&Serial::parse("55").unwrap())
            .unwrap()
    );
    let last = f.store.audit_records(None).unwrap().pop().unwrap();
    assert_eq!(last.operation, "cert.issue");
    assert_eq!(
        last.result,
        Outcome::Failed("invalid test: the token went away".into())
    );
    assert!(f.store.verify_audit().unwrap().is_ok());
}

#[test]
fn issuer_unknown_ca_and_subordinates_are_checked() {
    let f = fixture();
    let stranger = issue(
        &SoftKey::p256(9),
        "Someone Else",
        &f.leaf_key,
        "x.example",
        &[0x77],
    );
    let err = f.insert(&stranger).unwrap_err();
    assert!(matches!(err, StoreError::IssuerMismatch { .. }), "{err}");
    let err = f
        .store
        .change(AuditEntry::new("cert.issue", op()), |tx| {
            tx.insert_certificate(&NewCertificate {
                issuer: "nope",
                der: &stranger,
                profile: "server",
                sans: &[],
            })
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownCa { .. }), "{err}");

    // A subordinate CA: first its certificate as issued by root, then the CA row.
    let sub_key = SoftKey::p256(3);
    let root = ca_cert(&f.ca_key, ROOT);
    let sub_der = issue_cert(
        "CN=Test Sub CA",
        &sub_key,
        Profile::Intermediate,
        &[0x0a, 0x0b],
        &[],
        Some((&root, &f.ca_key)),
    );
    let sub = NewCa {
        name: "sub",
        key_uri: "pkcs11:object=sub",
        certificate_der: &sub_der,
        parent: Some("root"),
        key_provenance: "generated on the token",
        attestation: Some(b"attestation"),
    };
    let err = f
        .store
        .change(AuditEntry::new("ca.intermediate", op()), |tx| {
            tx.insert_ca(&sub)
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::NotIssuedByParent { .. }), "{err}");
    let rec = f
        .store
        .change(AuditEntry::new("ca.intermediate", op()), |tx| {
            tx.insert_certificate(&NewCertificate {
                issuer: "root",
                der: &sub_der,
                profile: "intermediate",
                sans: &[],
            })?;
            tx.insert_ca(&sub)
        })
        .unwrap();
    assert_eq!(rec.parent.as_deref(), Some("root"));
    assert_eq!(rec.subject, "CN=Test Sub CA");
    assert_eq!(rec.attestation.as_deref(), Some(&b"attestation"[..]));
    let err = f
        .store
        .change(AuditEntry::new("ca.intermediate", op()), |tx| {
            tx.insert_ca(&sub)
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::CaExists { .. }), "{err}");
    assert_eq!(f.store.cas().unwrap().len(), 2);
    assert!(f.store.verify_audit().unwrap().is_ok());
}

#[test]
fn revocations_are_final_and_crl_numbers_increase() {
    let f = fixture();
    let rec = f.insert(&f.issue(&[0x21])).unwrap();
    let when = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let revoke = |reason| {
        f.store.change(AuditEntry::new("cert.revoke", op()), |tx| {
            tx.revoke(&rec.serial, when, reason)
        })
    };
    let r = revoke(RevocationReason::KeyCompromise).unwrap();
    assert_eq!(r.revoked_at, when);
    let err = revoke(RevocationReason::Superseded).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::AlreadyRevoked {
                reason: RevocationReason::KeyCompromise,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(f.store.revocations("root").unwrap(), vec![r.clone()]);
    assert_eq!(f.store.revocation(&rec.serial).unwrap(), Some(r));
    let unknown = Serial::parse("999").unwrap();
    let err = f
        .store
        .change(AuditEntry::new("cert.revoke", op()), |tx| {
            tx.revoke(&unknown, when, RevocationReason::Unspecified)
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownCertificate { .. }));

    let later = when + time::Duration::days(7);
    for expected in 1..=2u64 {
        let n = f
            .store
            .change(AuditEntry::new("crl.generate", op()), |tx| {
                let n = tx.next_crl_number("root")?;
                tx.insert_crl("root", n, when, later, b"crl der")?;
                Ok::<_, StoreError>(n)
            })
            .unwrap();
        assert_eq!(n, expected);
    }
    let err = f
        .store
        .change(AuditEntry::new("crl.generate", op()), |tx| {
            tx.insert_crl("root", 2, when, later, b"crl der")
        })
        .unwrap_err();
    assert!(
        matches!(err, StoreError::CrlNumberNotIncreasing { last: 2, .. }),
        "{err}"
    );
    assert_eq!(f.store.last_crl_number("root").unwrap(), 2);
    // The trigger holds even for raw SQL.
    let raw = f.raw();
    assert!(raw
        .execute(
            "INSERT INTO crls SELECT ca, 1, this_update, next_update, sha256, der, audit_seq FROM crls LIMIT 1",
            [],
        )
        .is_err());
    // Every reason survives the database's reason column.
    for (i, reason) in (0x60u8..).zip(RevocationReason::ALL) {
        let rec = f.insert(&f.issue(&[i])).unwrap();
        f.store
            .change(AuditEntry::new("cert.revoke", op()), |tx| {
                tx.revoke(&rec.serial, when, reason)
            })
            .unwrap();
        assert_eq!(
            f.store.revocation(&rec.serial).unwrap().map(|r| r.reason),
            Some(reason)
        );
    }
    assert!(f.store.verify_audit().unwrap().is_ok());
}

#[test]
fn records_and_audit_show() {
    let f = fixture();
    let rec = f
        .store
        .record(
            AuditEntry::new("archive.sign", op())
                .input("archive", b"in")
                .output("archive", b"out")
                .param("key", "pkcs11:object=deploy"),
        )
        .unwrap();
    f.store
        .record(AuditEntry::new("login", Operator::new("bob")).failed("wrong PIN, 2 tries left"))
        .unwrap();
    let shown = f.store.audit_records(Some(rec.seq)).unwrap();
    assert_eq!(shown.len(), 2);
    assert_eq!(shown[0], rec);
    assert_eq!(
        shown[0].details["inputs"]["archive"],
        crate::encoding::hex(&<sha2::Sha256 as sha2::Digest>::digest(b"in"))
    );
    assert_eq!(shown[1].operator, Operator::new("bob"));
    assert_eq!(
        shown[1].result,
        Outcome::Failed("wrong PIN, 2 tries left".into())
    );
    assert_eq!(f.store.audit_head().unwrap().unwrap().seq, shown[1].seq);
    // A change entry cannot be pre-marked as failed.
    let err = f
        .store
        .change(AuditEntry::new("x", op()).failed("no"), |_| {
            Ok::<_, StoreError>(())
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }));
}

#[test]
fn anchors_sign_the_head_with_the_ca_key() {
    let f = fixture();
    f.insert(&f.issue(&[0x31])).unwrap();
    let report = f.store.verify_audit().unwrap();
    assert_eq!(report.not_yet_anchored(), Some(1..=3));
    let err = f
        .store
        .anchor_head(&SoftKey::p256(8), "root", op())
        .unwrap_err();
    assert!(matches!(err, StoreError::AnchorKeyMismatch { .. }), "{err}");
    let anchor = f.store.anchor_head(&f.ca_key, "root", op()).unwrap();
    assert_eq!(anchor.details["anchor"]["head_seq"], anchor.seq - 1);
    assert_eq!(anchor.details["anchor"]["head_hash"], anchor.prev_hash);
    // The signature verifies with the public key in the CA certificate.
    let sig = audit_sig(&anchor);
    let ca = f.store.ca("root").unwrap().unwrap();
    let facts = CertFacts::parse(&ca.certificate_der, "ca").unwrap();
    let key = crate::signer::PublicKey::from_spki_der(&facts.spki_der).unwrap();
    assert_eq!(&key, f.ca_key.public_key());
    assert!(!sig.is_empty());
    f.insert(&f.issue(&[0x32])).unwrap();
    let report = f.store.verify_audit().unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.anchors.len(), 1);
    assert_eq!(report.anchored_through(), anchor.seq - 1);
    assert_eq!(report.not_yet_anchored(), Some(anchor.seq..=anchor.seq + 1));
    assert_eq!(report.anchors[0].ca_fingerprint, ca.fingerprint);
    assert_eq!(report.anchors[0].head_hash, anchor.prev_hash);
    // The anchored head, kept outside, verifies.
    let kept = AuditHead {
        seq: report.anchors[0].head_seq,
        hash: report.anchors[0].head_hash.clone(),
    };
    assert!(f.store.verify_audit_with(Some(&kept)).unwrap().is_ok());
}

fn audit_sig(record: &AuditRecord) -> Vec<u8> {
    let hex = record.details["anchor"]["signature"].as_str().unwrap();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// A fixture with records 1..=8: store.create, ca.init, then six certificates.
fn tamper_fixture() -> Fixture {
    let f = fixture();
    for i in 0..6u8 {
        f.insert(&f.issue(&[0x40, i])).unwrap();
    }
    assert_eq!(f.store.audit_head().unwrap().unwrap().seq, 8);
    f
}

/// A connection that can edit what hsmsign never edits, like an attacker with file access.
fn attacker(f: &Fixture) -> Connection {
    let raw = f.raw();
    raw.execute_batch(
        "PRAGMA foreign_keys = OFF;
         DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;
         DROP TRIGGER revocations_no_delete; DROP TRIGGER certificates_no_update;
         DROP TRIGGER certificates_no_delete;",
    )
    .unwrap();
    raw
}

#[test]
fn an_edited_record_is_found() {
    let f = tamper_fixture();
    attacker(&f)
        .execute(
            "UPDATE audit SET operator_user = 'mallory' WHERE seq = 5",
            [],
        )
        .unwrap();
    let report = f.store.verify_audit().unwrap();
    assert_eq!(report.problem, Some(AuditProblem::HashMismatch { seq: 5 }));
    assert_eq!(report.records, 4);
}

#[test]
fn a_deleted_middle_record_is_found() {
    let f = tamper_fixture();
    attacker(&f)
        .execute("DELETE FROM audit WHERE seq = 4", [])
        .unwrap();
    let report = f.store.verify_audit().unwrap();
    assert_eq!(
        report.problem,
        Some(AuditProblem::Missing { seq: 4, found: 5 })
    );
}

#[test]
fn swapped_records_are_found() {
    let f = tamper_fixture();
    attacker(&f)
        .execute_batch(
            "UPDATE audit SET seq = 1000 WHERE seq = 6;
             UPDATE audit SET seq = 6 WHERE seq = 7;
             UPDATE audit SET seq = 7 WHERE seq = 1000;",
        )
        .unwrap();
    let report = f.store.verify_audit().unwrap();
    assert_eq!(report.problem, Some(AuditProblem::HashMismatch { seq: 6 }));
}

#[test]
fn a_rehashed_record_that_does_not_link_is_found() {
    let f = tamper_fixture();
    let raw = attacker(&f);
    // Replace record 5's operator and fix its own hash, but not the chain after it.
    let mut rec = raw
        .query_row(
            &format!("SELECT {} FROM audit WHERE seq = 5", audit::RECORD_COLUMNS),
            [],
            audit::RawRecord::from_row,
        )
        .unwrap();
    rec.operator_user = "mallory".into();
    let hash = rec.compute_hash();
    raw.execute(
        "UPDATE audit SET operator_user = 'mallory', hash = ?1 WHERE seq = 5",
        [hash],
    )
    .unwrap();
    let report = f.store.verify_audit().unwrap();
    assert_eq!(report.problem, Some(AuditProblem::PrevMismatch { seq: 6 }));
}

/// Rewrite the chain from `from` on with fresh hashes, as an attacker with file access can.
fn rehash_from(raw: &Connection, from: i64) {
    let mut prev: String = raw
        .query_row("SELECT hash FROM audit WHERE seq = ?1", [from - 1], |r| {
            r.get(0)
        })
        .unwrap();
    let mut stmt = raw
        .prepare(&format!(
            "SELECT {} FROM audit WHERE seq >= ?1 ORDER BY seq",
            audit::RECORD_COLUMNS
        ))
        .unwrap();
    let records: Vec<audit::RawRecord> = stmt
        .query_map([from], audit::RawRecord::from_row)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for mut rec in records {
        rec.prev_hash = prev.clone();
        rec.hash = rec.compute_hash();
        raw.execute(
            "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            rusqlite::params![rec.prev_hash, rec.hash, rec.seq],
        )
        .unwrap();
        prev = rec.hash;
    }
}

#[test]
fn a_rewritten_chain_before_an_anchor_breaks_the_anchor() {
    let f = tamper_fixture();
    let anchor = f.store.anchor_head(&f.ca_key, "root", op()).unwrap();
    assert_eq!(anchor.seq, 9);
    let raw = attacker(&f);
    raw.execute(
        "UPDATE audit SET operator_user = 'mallory' WHERE seq = 4",
        [],
    )
    .unwrap();
    rehash_from(&raw, 4);
    let report = f.store.verify_audit().unwrap();
    assert!(
        matches!(
            &report.problem,
            Some(AuditProblem::BadAnchor { seq: 9, .. })
        ),
        "{:?}",
        report.problem
    );
    // Rewriting the anchor's head too leaves a signature that does not verify.
    let details: String = raw
        .query_row("SELECT details FROM audit WHERE seq = 9", [], |r| r.get(0))
        .unwrap();
    let head: String = raw
        .query_row("SELECT hash FROM audit WHERE seq = 8", [], |r| r.get(0))
        .unwrap();
    let details = details.replace(&anchor.prev_hash, &head);
    raw.execute("UPDATE audit SET details = ?1 WHERE seq = 9", [details])
        .unwrap();
    rehash_from(&raw, 9);
    let report = f.store.verify_audit().unwrap();
    match &report.problem {
        Some(AuditProblem::BadAnchor { seq: 9, reason }) => {
            assert!(reason.contains("does not verify"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Dropping the anchor altogether and rehashing leaves a valid-looking log without anchors
    // (documented limit); the anchored head kept outside shows the rewrite.
    let kept = AuditHead {
        seq: 8,
        hash: anchor.prev_hash,
    };
    raw.execute("DELETE FROM audit WHERE seq = 9", []).unwrap();
    let report = f.store.verify_audit().unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    assert!(report.anchors.is_empty());
    let report = f.store.verify_audit_with(Some(&kept)).unwrap();
    assert_eq!(
        report.problem,
        Some(AuditProblem::KnownHeadDiffers { seq: 8 })
    );
}

#[test]
fn store_errors_can_travel_in_anyhow() {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn send<T: Send + 'static>() {}
    send_sync::<StoreError>();
    // One connection per handle: a Store moves to another thread, each thread opens its own.
    send::<Store>();
    let e: anyhow::Error = StoreError::UnknownCa { name: "x".into() }.into();
    assert!(e.to_string().contains("ca show"));
}

#[test]
fn truncation_after_an_anchor_needs_the_head_kept_outside() {
    let f = tamper_fixture();
    f.store.anchor_head(&f.ca_key, "root", op()).unwrap();
    f.store
        .record(AuditEntry::new("archive.sign", op()))
        .unwrap();
    let kept = f.store.audit_head().unwrap().unwrap();
    assert_eq!(kept.seq, 10);
    attacker(&f)
        .execute("DELETE FROM audit WHERE seq = 10", [])
        .unwrap();
    // From inside the database alone the shorter log is valid (documented limit)...
    let report = f.store.verify_audit().unwrap();
    assert!(report.is_ok());
    assert_eq!(report.head.as_ref().map(|h| h.seq), Some(9));
    // ...the head kept outside shows what is missing.
    let report = f.store.verify_audit_with(Some(&kept)).unwrap();
    assert_eq!(
        report.problem,
        Some(AuditProblem::Truncated {
            seq: 10,
            known_seq: 10
        })
    );
    // A rewritten record at the kept seq is found too.
    f.store
        .record(AuditEntry::new("something.else", op()))
        .unwrap();
    let report = f.store.verify_audit_with(Some(&kept)).unwrap();
    assert_eq!(
        report.problem,
        Some(AuditProblem::KnownHeadDiffers { seq: 10 })
    );
}

#[test]
fn state_rows_without_or_against_their_audit_record_are_found() {
    let f = tamper_fixture();
    let serial = f.store.certificates(None).unwrap()[0].serial.clone();
    let seq = f
        .store
        .change(AuditEntry::new("cert.revoke", op()), |tx| {
            tx.revoke(
                &serial,
                OffsetDateTime::now_utc(),
                RevocationReason::KeyCompromise,
            )?;
            Ok::<_, StoreError>(tx.audit_seq())
        })
        .unwrap();
    let raw = attacker(&f);
    // Un-revoking by deleting the revocation row.
    raw.execute("DELETE FROM revocations", []).unwrap();
    let report = f.store.verify_audit().unwrap();
    assert_eq!(
        report.problem,
        Some(AuditProblem::RowChanged {
            seq,
            table: "revocations".into(),
            key: serial.to_string(),
            missing: true
        })
    );

    let f = tamper_fixture();
    let raw = attacker(&f);
    // A certificate slipped in with raw SQL, pointing at an unrelated audit record.
    raw.execute(
        "INSERT INTO certificates SELECT 'abcdef', issuer, subject, sans, profile, not_before, \
         not_after, '0000000000000000000000000000000000000000000000000000000000000001', der, created_at, 2 \
         FROM certificates LIMIT 1",
        [],
    )
    .unwrap();
    let report = f.store.verify_audit().unwrap();
    assert_eq!(
        report.problem,
        Some(AuditProblem::RowNotAudited {
            seq: 2,
            table: "certificates".into(),
            key: "abcdef".into()
        })
    );
    raw.execute("DELETE FROM certificates WHERE serial = 'abcdef'", [])
        .unwrap();
    // A certificate's subject edited in place.
    raw.execute(
        "UPDATE certificates SET subject = 'CN=evil' WHERE rowid = 3",
        [],
    )
    .unwrap();
    let report = f.store.verify_audit().unwrap();
    assert!(
        matches!(&report.problem, Some(AuditProblem::RowChanged { table, missing: false, .. }) if table == "certificates"),
        "{:?}",
        report.problem
    );
}

/// Open must refuse `content` at the database path and leave it byte for byte as it was.
fn refused(content: &[u8]) -> (StoreError, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DB_FILE);
    fs::write(&db, content).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert_eq!(fs::read(&db).unwrap(), content);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from(DB_FILE)],
        "nothing created beside it"
    );
    let message = err.to_string();
    assert!(message.contains(&db.display().to_string()), "{message}");
    (err, message)
}

#[test]
fn foreign_or_damaged_files_are_refused_untouched() {
    let random: Vec<u8> = (0..8192).map(|_| fastrand::u8(..)).collect();
    assert!(matches!(
        refused(&random).0,
        StoreError::NotADatabase { .. }
    ));
    assert!(matches!(refused(b"").0, StoreError::NotADatabase { .. }));

    // Someone else's SQLite database.
    let other_dir = tempfile::tempdir().unwrap();
    let other = other_dir.path().join("other.db");
    {
        let c = Connection::open(&other).unwrap();
        c.execute_batch(
            "PRAGMA application_id = 1234; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
        )
        .unwrap();
    }
    let (err, message) = refused(&fs::read(&other).unwrap());
    assert!(
        matches!(
            err,
            StoreError::Foreign {
                application_id: 1234,
                ..
            }
        ),
        "{message}"
    );

    // Ours, but from a newer hsmsign.
    let f = fixture();
    drop(f.store);
    {
        let c = Connection::open(f.state.join(DB_FILE)).unwrap();
        c.execute_batch("PRAGMA user_version = 99; PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let newer = fs::read(f.state.join(DB_FILE)).unwrap();
    let (err, _) = refused(&newer);
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");

    // Ours, with damaged pages.
    let f = tamper_fixture();
    drop(f.store);
    {
        let c = Connection::open(f.state.join(DB_FILE)).unwrap();
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    }
    let mut damaged = fs::read(f.state.join(DB_FILE)).unwrap();
    let page = 4096;
    for b in &mut damaged[page + 8..page + 200] {
        *b = 0xa5;
    }
    let (err, message) = refused(&damaged);
    assert!(matches!(err, StoreError::Corrupt { .. }), "{message}");
}

#[test]
fn a_held_lock_is_reported_with_the_path() {
    let f = fixture();
    let other = Store::open_with_timeout(&f.state, Duration::from_millis(200)).unwrap();
    f.store
        .change(AuditEntry::new("long.operation", op()), |_tx| {
            let err = other.record(AuditEntry::new("login", op())).unwrap_err();
            assert!(matches!(err, StoreError::Locked { .. }), "{err}");
            assert!(
                err.to_string()
                    .contains("is locked by another hsmsign process")
            );
            assert!(err.to_string().contains(&f.state.display().to_string()));
            Ok::<_, StoreError>(())
        })
        .unwrap();
    // Once released, the other handle writes and sees the whole chain.
    other.record(AuditEntry::new("login", op())).unwrap();
    assert!(other.verify_audit().unwrap().is_ok());
}

/// Issue a certificate with a fresh random serial, drawing again if it is taken.
fn issue_with_fresh_serial(store: &Store, ca_key: &SoftKey, leaf_key: &SoftKey) -> Serial {
    loop {
        let der = issue(ca_key, ROOT, leaf_key, "host.example", &random_serial());
        match insert_cert(store, &der) {
            Ok(rec) => return rec.serial,
            Err(StoreError::SerialTaken { .. }) => continue,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn two_writers_lose_nothing() {
    let f = fixture();
    let per_thread = 200;
    let serials: Vec<Vec<Serial>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2u8)
            .map(|t| {
                let state = f.state.clone();
                s.spawn(move || {
                    let store = Store::open(&state).unwrap();
                    let ca_key = SoftKey::p256(1);
                    let leaf_key = SoftKey::p256(10 + t);
                    (0..per_thread)
                        .map(|_| issue_with_fresh_serial(&store, &ca_key, &leaf_key))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let stored = f.store.certificates(None).unwrap();
    assert_eq!(stored.len(), 2 * per_thread);
    for serial in serials.iter().flatten() {
        assert!(f.store.serial_exists(serial).unwrap(), "{serial} lost");
    }
    let report = f.store.verify_audit().unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    // store.create + ca.init + one record per certificate.
    assert_eq!(report.records, 2 + 2 * per_thread as u64);
}

const CHILD_ENV: &str = "HSMSIGN_STORE_CRASH_CHILD";

/// Not a test of its own: the writer process that `killed_writers_leave_a_consistent_state`
/// starts and SIGKILLs. It loops forever writing changes of one to three rows.
#[test]
#[ignore = "run only as the child of killed_writers_leave_a_consistent_state"]
fn crash_child() {
    let Ok(state) = std::env::var(CHILD_ENV) else {
        return;
    };
    let state = PathBuf::from(state);
    let store = Store::open(&state).unwrap();
    let ca_key = SoftKey::p256(1);
    let leaf_key = SoftKey::p256(2);
    let mut first = true;
    loop {
        let ders: Vec<Vec<u8>> = (0..fastrand::usize(1..=3))
            .map(|_| issue(&ca_key, ROOT, &leaf_key, "host.example", &random_serial()))
            .collect();
        let revoke = fastrand::bool();
        store
            .change(AuditEntry::new("cert.issue", op()), |tx| {
                for der in &ders {
                    let rec = tx.insert_certificate(&NewCertificate {
                        issuer: "root",
                        der,
                        profile: "server",
                        sans: &[],
                    })?;
                    if revoke {
                        tx.revoke(
                            &rec.serial,
                            OffsetDateTime::now_utc(),
                            RevocationReason::Superseded,
                        )?;
                    }
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        store.record(AuditEntry::new("archive.sign", op())).unwrap();
        if first {
            fs::write(state.join("child-started"), b"").unwrap();
            first = false;
        }
    }
}

#[test]
fn killed_writers_leave_a_consistent_state() {
    let f = fixture();
    let marker = f.state.join("child-started");
    let mut previous = 0;
    for round in 0..12 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::tests::crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &f.state)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the child has committed once, then let it run a random while.
        while !marker.exists() {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("child exited early ({status}): {err}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..150)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        fs::remove_file(&marker).unwrap();

        let store = Store::open(&f.state).unwrap();
        let report = store.verify_audit().unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problem);
        let raw = f.raw();
        let (rows, distinct, unaudited): (i64, i64, i64) = raw
            .query_row(
                "SELECT count(*), count(DISTINCT serial), \
                 (SELECT count(*) FROM certificates c WHERE NOT EXISTS \
                    (SELECT 1 FROM audit a WHERE a.seq = c.audit_seq AND a.operation = 'cert.issue' \
                     AND a.result = 'ok')) FROM certificates",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(rows, distinct, "round {round}: duplicate serials");
        assert_eq!(
            unaudited, 0,
            "round {round}: certificates without their audit record"
        );
        assert!(
            rows > previous,
            "round {round}: the child committed before it was killed"
        );
        previous = rows;
    }
}

#[test]
fn recorded_rows_cannot_be_edited_or_deleted_with_plain_sql() {
    let f = tamper_fixture();
    let raw = f.raw();
    for sql in [
        "UPDATE audit SET operator_user = 'mallory' WHERE seq = 3",
        "DELETE FROM audit WHERE seq = 8",
        "UPDATE certificates SET subject = 'CN=evil'",
        "DELETE FROM certificates",
        "UPDATE cas SET key_uri = 'pkcs11:object=evil'",
        "DELETE FROM cas",
    ] {
        let err = raw.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    // A row that points at no audit record is refused by the foreign key.
    raw.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let err = raw
        .execute(
            "INSERT INTO revocations (serial, revoked_at, reason, audit_seq) \
             SELECT serial, created_at, 1, 999 FROM certificates LIMIT 1",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    assert!(f.store.verify_audit().unwrap().is_ok());
}
