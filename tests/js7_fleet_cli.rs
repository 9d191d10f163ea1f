//! `archive verify --node ...`: one verdict per Controller or Agent, each with its own
//! trusted-x509-keys directory, JS7 version and expiry setting, from one read of the archive.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use std::io::Write;

use common::{Pki, stderr, stdout};

fn export_zip(path: &std::path::Path) {
    common::write_zip(
        path,
        &[
            (
                "meta_inf",
                &br#"{"jocVersion":"2.7.2","versionId":"9a1"}"#[..],
            ),
            (
                "Ops/eod.workflow.json",
                &br#"{"TYPE":"Workflow","instructions":[]}"#[..],
            ),
            (
                "Ops/db.jobresource.json",
                &br#"{"TYPE":"JobResource","arguments":{}}"#[..],
            ),
        ],
    );
}

fn node_dir(pki: &Pki, name: &str, files: &[(&str, &[u8])]) -> String {
    let dir = pki.path(name);
    std::fs::create_dir(&dir).unwrap();
    for (f, data) in files {
        std::fs::write(dir.join(f), data).unwrap();
    }
    dir.display().to_string()
}

#[test]
fn three_nodes_that_disagree() {
    let pki = Pki::new();
    pki.hsm.init_token("Operator");
    let key = pki.hsm.key("Operator", "alice", "ec-p256");
    pki.signing_cert(&key, "CN=alice, O=SOS", "alice.pem");
    export_zip(&pki.path("export.zip"));
    pki.ok(&[
        "archive",
        "sign",
        "--key",
        &key,
        "--cert",
        "alice.pem",
        "--in",
        "export.zip",
        "--out",
        "signed.zip",
    ]);
    let issuing = std::fs::read(pki.path("issuing.pem")).unwrap();
    let root = std::fs::read(pki.path("root.pem")).unwrap();
    // A Controller that trusts the issuing CA; an Agent that trusts only the root (JS7 builds
    // no chains); two Agents with the issuing CA and a stray file, on 2.5.8 and 2.5.9.
    let ctl = node_dir(&pki, "ctl", &[("issuing.pem", &issuing)]);
    let root_only = node_dir(&pki, "agent-root", &[("root.pem", &root)]);
    let stray = node_dir(
        &pki,
        "agent-stray",
        &[
            ("issuing.pem", &issuing),
            ("README", b"trusted keys for the agents"),
        ],
    );
    let out = pki.run(&[
        "--json",
        "archive",
        "verify",
        "--in",
        "signed.zip",
        "--cert",
        "alice.pem",
        "--node",
        &format!("controller={ctl}"),
        "--node",
        &format!("agent-root={root_only},version=2.9.0"),
        "--node",
        &format!("agent-old={stray},version=2.5.8"),
        "--node",
        &format!("agent-new={stray},version=2.5.9,allow-expired=no"),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["accepted"], false);
    let verdict = |name: &str| {
        doc["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(verdict("controller")["accepted"], true, "{doc}");
    assert_eq!(verdict("agent-new")["accepted"], true, "{doc}");
    assert_eq!(verdict("agent-root")["accepted"], false, "{doc}");
    assert!(
        verdict("agent-root")["error"]
            .as_str()
            .unwrap()
            .contains("does not build chains")
            || verdict("agent-root")["error"]
                .as_str()
                .unwrap()
                .contains("issuer"),
        "{doc}"
    );
    let old = verdict("agent-old");
    assert_eq!(old["accepted"], false, "{doc}");
    for o in old["objects"].as_array().unwrap() {
        let reason = o["outcome"]["Bad"]["reason"].as_str().unwrap();
        assert!(
            reason.contains("before 2.5.9") && reason.contains("README"),
            "{reason}"
        );
    }
    assert_eq!(verdict("agent-new")["policy"]["allow_expired"], false);
    // The human text names each node and the ones that reject.
    let text = stderr(&out);
    for n in ["controller", "agent-root", "agent-old", "agent-new"] {
        assert!(text.contains(&format!("== node {n}")), "{text}");
    }
    assert!(
        text.contains("REJECTED by 2 of 4 nodes: agent-root, agent-old"),
        "{text}"
    );
    assert!(
        text.contains("Select signature algorithm SHA256withECDSA"),
        "{text}"
    );

    // Without --json, the same verdict and exit status; a bad --node spec is a usage error.
    let out = pki.run(&[
        "archive",
        "verify",
        "--in",
        "signed.zip",
        "--cert",
        "alice.pem",
        "--node",
        &format!("controller={ctl}"),
        "--js7-version",
        "2.7.6",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("ACCEPTED by all 1 nodes"),
        "{}",
        stdout(&out)
    );
    let out = pki.run(&[
        "archive",
        "verify",
        "--in",
        "signed.zip",
        "--node",
        &format!("x={ctl},colour=blue"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = pki.run(&[
        "archive",
        "verify",
        "--in",
        "signed.zip",
        "--trusted",
        &ctl,
        "--js7-version",
        "2.7.6",
        "--allow-expired-certificates",
        "yes",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no allow-expired-certificates setting"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn lint_names_what_joc_would_skip() {
    let pki = Pki::new();
    let path = pki.path("odd.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for (name, data) in [
        ("Ops/-eod.workflow.json", &br#"{"TYPE":"Workflow"}"#[..]),
        ("Ops/ok.workflow.json", &br#"{"TYPE":"Workflow""#[..]),
    ] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
    let out = pki.run(&["archive", "lint", "--in", "odd.zip"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "meta_inf: missing",
        "\"-eod\" starts with '-'",
        "does not parse",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    export_zip(&pki.path("clean.zip"));
    pki.ok(&["archive", "lint", "--in", "clean.zip"]);
}
