//! `ceremony record`: the transcript rendered as HTML, printed to PDF by headless Chromium and
//! read back with pdftotext, so the test sees what the officers and witnesses read aloud.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use std::process::Command;

use hsmsign::ceremony::record::read_aloud;
use hsmsign::ceremony::transcript::{
    CertificateRecord, FORMAT, FileHash, Status, StepRecord, Transcript, sha256_hex,
};

const EXE: &str = env!("CARGO_BIN_EXE_hsmsign");

fn step(id: &str, kind: &str, status: Status, seed: &str) -> StepRecord {
    StepRecord {
        id: id.into(),
        kind: kind.into(),
        status,
        input_hash: sha256_hex(format!("in {seed}").as_bytes()),
        inputs: vec![],
        outputs: vec![FileHash {
            path: format!("{id}.pem").into(),
            sha256: sha256_hex(format!("out {seed}").as_bytes()),
        }],
        certificates: vec![CertificateRecord {
            subject: format!("CN={id} <&> Example"),
            sha256_fingerprint: sha256_hex(format!("cert {seed}").as_bytes()),
            pem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".into(),
        }],
        audit_seq: vec![7, 8],
        audit_head: Some(6),
        summary: format!("{kind} <b>not bold</b>"),
    }
}

#[test]
fn the_printed_record_shows_every_step_and_fingerprint_as_read_aloud() {
    let dir = tempfile::tempdir().unwrap();
    let t = Transcript {
        format: FORMAT,
        name: "js7-initial-setup".into(),
        ceremony_file: FileHash {
            path: "initial-setup.toml".into(),
            sha256: sha256_hex(b"ceremony file"),
        },
        site_file: Some(FileHash {
            path: "site.toml".into(),
            sha256: sha256_hex(b"site file"),
        }),
        hsmsign_version: "0.1.0".into(),
        operator: "Officer <Olga>".into(),
        rehearsal: false,
        started: "2026-12-03T09:00:00Z".into(),
        ended: Some("2026-12-03T09:30:00Z".into()),
        audit_start: None,
        audit_end: None,
        steps: vec![
            step("root-key", "key-generate", Status::Done, "1"),
            step("root", "ca-root", Status::Done, "2"),
            step("intermediate", "ca-intermediate", Status::Failed, "3"),
        ],
    };
    let json = dir.path().join("transcript.json");
    t.write(&json).unwrap();
    let html = dir.path().join("record.html");
    let out = Command::new(EXE)
        .args([
            "ceremony",
            "record",
            json.to_str().unwrap(),
            "--out",
            html.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing fetched from elsewhere; transcript text escaped.
    for forbidden in [
        "<link",
        "<script",
        "src=",
        "http://",
        "https://",
        "<b>not bold</b>",
    ] {
        assert!(!page.contains(forbidden), "{forbidden} in the page");
    }
    // A second record to the same path is refused, not overwritten.
    let again = Command::new(EXE)
        .args([
            "ceremony",
            "record",
            json.to_str().unwrap(),
            "--out",
            html.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));

    let text = common::pdf_text(&html, dir.path());
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for s in &t.steps {
        assert!(
            flat.contains(&format!(": {} ({})", s.id, s.kind)),
            "step {} missing:\n{text}",
            s.id
        );
        for c in &s.certificates {
            for line in read_aloud(&c.sha256_fingerprint) {
                assert!(
                    flat.contains(&line),
                    "fingerprint line {line:?} missing:\n{text}"
                );
            }
            assert!(flat.contains(&c.subject), "{} missing:\n{text}", c.subject);
        }
        for o in &s.outputs {
            for line in read_aloud(&o.sha256) {
                assert!(
                    flat.contains(&line),
                    "output hash line {line:?} missing:\n{text}"
                );
            }
        }
    }
    for line in read_aloud(&t.ceremony_file.sha256) {
        assert!(
            flat.contains(&line),
            "ceremony file hash {line:?} missing:\n{text}"
        );
    }
    for needle in [
        "Officer <Olga>",
        "FAILED",
        "Witness",
        "Security officer",
        "<b>not bold</b>",
    ] {
        assert!(flat.contains(needle), "{needle:?} missing:\n{text}");
    }
}
