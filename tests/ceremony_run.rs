//! `ceremony run`: the example ceremonies rehearse on throwaway tokens; a ceremony runs on real
//! SoftHSM2 tokens bound through a site file, with a transcript, audit records and a printed
//! record that say the same; a run killed mid-ceremony is finished by a second run without
//! anything signed twice; an interrupted step is never run again automatically.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Hsm, stderr};
use hsmsign::ceremony::record::read_aloud;
use hsmsign::ceremony::transcript::{Status, Transcript, sha256_hex};

const EXE: &str = env!("CARGO_BIN_EXE_hsmsign");

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ceremonies")
}

#[test]
fn every_example_ceremony_rehearses_on_throwaway_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "initial-setup",
        "onboard-operator",
        "release",
        "periodic-crl",
    ] {
        let dir = tmp.path().join(name);
        let out = Command::new(EXE)
            .args(["ceremony", "run"])
            .arg(examples().join(format!("{name}.toml")))
            .arg("--rehearse")
            .arg("--rehearsal-dir")
            .arg(&dir)
            .env_remove("HSMSIGN_STATE")
            .env_remove("HSMSIGN_MODULE")
            .env_remove("SOFTHSM2_CONF")
            .env_remove("HSMSIGN_PIN_SOURCE")
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let t = Transcript::read(&dir.join("transcript.json")).unwrap();
        assert!(t.rehearsal, "{name}");
        assert!(
            !t.steps.is_empty() && t.steps.iter().all(|s| s.status == Status::Done),
            "{name}: {:?}",
            t.steps
        );
        // The rehearsal's own state: its audit log verifies and brackets the run.
        let audit = Command::new(EXE)
            .args(["--json", "--state"])
            .arg(dir.join("state"))
            .args(["audit", "show"])
            .output()
            .unwrap();
        let audit: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
        let ops: Vec<&str> = audit["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["operation"].as_str().unwrap())
            .collect();
        assert!(
            ops.contains(&"ceremony.start") && ops.contains(&"ceremony.end"),
            "{ops:?}"
        );
        let verify = Command::new(EXE)
            .arg("--state")
            .arg(dir.join("state"))
            .args(["audit", "verify"])
            .output()
            .unwrap();
        assert!(verify.status.success(), "{name}: {}", stderr(&verify));
        // Nothing was written beside the ceremony file or into the working directory.
        assert!(!tmp.path().join("js7-root.pem").exists());
    }
    // The release rehearsal stood in for the operator's key and certificate.
    let release = std::fs::read_to_string(tmp.path().join("release/substitutions.json")).unwrap();
    assert!(release.contains("operator.pem"), "{release}");
}

/// A ceremony of every kind of CA step, on a token bound through a site file.
fn write_ceremony(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("bundle-password"), "bundle-secret\n").unwrap();
    let text = format!(
        r#"name = "test-setup"
purpose = "root, intermediate, an instance key bundle, a truststore, a CRL"

[tokens.ca-token]
description = "the CA token"

[[step]]
id = "root-key"
kind = "key-generate"
key = {{ token = "ca-token", label = "root-key" }}
algorithm = "ec-p256"

[[step]]
id = "root"
kind = "ca-root"
name = "root"
key = {{ token = "ca-token", label = "root-key" }}
subject = "CN=Ceremony Root, O=SOS, C=DE"
days = 3650
out = "root.pem"

[[step]]
id = "issuing-key"
kind = "key-generate"
key = {{ token = "ca-token", label = "issuing-key" }}
algorithm = "ec-p256"

[[step]]
id = "issuing"
kind = "ca-intermediate"
name = "issuing"
issuer = "root"
key = {{ token = "ca-token", label = "issuing-key" }}
subject = "CN=Ceremony Issuing, O=SOS, C=DE"
days = 1825
out = "issuing.pem"

[[step]]
id = "controller"
kind = "key-bundle"
ca = "issuing"
profile = "server-client"
generate-key = "ec-p256"
subject = "CN=controller.example.com, O=SOS, C=DE"
san = "DNS:controller.example.com"
days = 365
pkcs12 = "controller.p12"
p12-password-source = "file:{pw}"
out = "controller.pem"

[[step]]
id = "truststore"
kind = "truststore"
ca = ["root", "issuing"]
out = "truststore.pem"

[[step]]
id = "crl"
kind = "crl"
ca = "issuing"
days = 7
out = "issuing.crl"
"#,
        pw = dir.join("bundle-password").display()
    );
    let file = dir.join("setup.toml");
    std::fs::write(&file, text).unwrap();
    std::fs::write(
        dir.join("site.toml"),
        format!(
            "[role.ca-token]\ntoken = \"pkcs11:token=Ceremony%20CA\"\nmodule = \"{}\"\npin-source = \"file:{}\"\n",
            common::softhsm_module(),
            dir.join("pin").display()
        ),
    )
    .unwrap();
    file
}

fn run_args<'a>(file: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--state",
        "state",
        "ceremony",
        "run",
        file,
        "--site",
        "site.toml",
    ];
    v.extend_from_slice(extra);
    v
}

fn audit_ops(hsm: &Hsm) -> Vec<(u64, String, serde_json::Value)> {
    let v = hsm.json(&["--state", "state", "audit", "show"]);
    v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["operation"].as_str().unwrap().to_string(),
                r["details"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_ceremony_runs_on_tokens_bound_by_a_site_file_and_its_record_says_what_happened() {
    let hsm = Hsm::with_token("Ceremony CA");
    let file = write_ceremony(hsm.dir.path());
    let file_s = file.to_str().unwrap();
    let out = hsm.run(&run_args(file_s, &["--yes"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let t = Transcript::read(&hsm.path("test-setup.transcript.json")).unwrap();
    assert_eq!(t.steps.len(), 7);
    assert!(
        t.steps.iter().all(|s| s.status == Status::Done),
        "{:?}",
        t.steps
    );
    assert!(!t.rehearsal);
    assert_eq!(
        t.ceremony_file.sha256,
        sha256_hex(&std::fs::read(&file).unwrap())
    );
    assert_eq!(
        t.site_file.as_ref().unwrap().sha256,
        sha256_hex(&std::fs::read(hsm.path("site.toml")).unwrap())
    );
    // Each certificate in the transcript is the one written, fingerprint and all.
    for (step, file) in [
        ("root", "root.pem"),
        ("issuing", "issuing.pem"),
        ("controller", "controller.pem"),
    ] {
        let rec = t.steps.iter().find(|s| s.id == step).unwrap();
        let der = hsmsign::x509::read_certificate_file(&hsm.path(file)).unwrap();
        assert_eq!(rec.certificates.len(), 1, "{step}");
        assert_eq!(
            rec.certificates[0].sha256_fingerprint,
            sha256_hex(&der),
            "{step}"
        );
        let out_hash = rec.outputs.iter().find(|o| o.path.ends_with(file)).unwrap();
        assert_eq!(
            out_hash.sha256,
            sha256_hex(&std::fs::read(hsm.path(file)).unwrap())
        );
    }
    // Other implementations accept what the ceremony made.
    let (ok, o) = hsm.tool(
        "openssl",
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "issuing.pem",
            "controller.pem",
        ],
    );
    assert!(ok, "{o}");
    let (ok, o) = hsm.tool(
        "openssl",
        &[
            "crl",
            "-in",
            "issuing.crl",
            "-CAfile",
            "truststore.pem",
            "-noout",
        ],
    );
    assert!(ok, "{o}");
    // The audit log brackets the ceremony with its file's hash, and each step's records are
    // the ones the transcript names.
    let ops = audit_ops(&hsm);
    let start = ops
        .iter()
        .find(|(_, op, _)| op == "ceremony.start")
        .unwrap();
    assert!(
        start.2.to_string().contains(&t.ceremony_file.sha256),
        "{}",
        start.2
    );
    let end = ops.iter().find(|(_, op, _)| op == "ceremony.end").unwrap();
    assert_eq!(t.audit_start, Some(start.0));
    assert_eq!(t.audit_end, Some(end.0));
    let root = t.steps.iter().find(|s| s.id == "root").unwrap();
    assert!(
        root.audit_seq
            .iter()
            .any(|seq| ops.iter().any(|(s, op, _)| s == seq && op == "ca.init")),
        "{:?} {ops:?}",
        root.audit_seq
    );
    hsm.ok(&["--state", "state", "audit", "verify"]);
    // The printed record, read back from the PDF as a person reads it.
    hsm.ok(&[
        "ceremony",
        "record",
        "test-setup.transcript.json",
        "--out",
        "record.html",
    ]);
    let text = common::pdf_text(&hsm.path("record.html"), hsm.dir.path());
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for s in &t.steps {
        assert!(flat.contains(&s.id), "step {} missing:\n{text}", s.id);
        for c in &s.certificates {
            for line in read_aloud(&c.sha256_fingerprint) {
                assert!(flat.contains(&line), "{line} missing:\n{text}");
            }
        }
    }
    // Run again: everything is done, nothing is signed twice.
    let before = audit_ops(&hsm).len();
    hsm.fails(&run_args(file_s, &["--yes"]), 1, &["done already"]);
    assert_eq!(audit_ops(&hsm).len(), before);
}

#[test]
#[allow(clippy::zombie_processes)] // a failed read panics the test; the child dies with it
fn a_run_killed_mid_ceremony_is_finished_by_a_second_run_without_signing_twice() {
    let hsm = Hsm::with_token("Ceremony CA");
    let file = write_ceremony(hsm.dir.path());
    let file_s = file.to_str().unwrap();
    // The officer confirms the first three token steps; at the fourth prompt the machine dies.
    let mut child = hsm
        .cmd()
        .args(run_args(file_s, &[]))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut prompts = 0;
    let mut seen = String::new();
    loop {
        let mut line = Vec::new();
        // The prompt ends without a newline: read up to its colon.
        let n = err.read_until(b':', &mut line).unwrap();
        assert!(n > 0, "the run ended before its fourth prompt: {seen}");
        seen.push_str(&String::from_utf8_lossy(&line));
        if seen.ends_with("Type yes to go on, anything else to stop:") {
            prompts += 1;
            if prompts == 4 {
                child.kill().unwrap();
                child.wait().unwrap();
                break;
            }
            stdin.write_all(b"yes\n").unwrap();
            stdin.flush().unwrap();
            seen.clear();
        }
    }
    let t = Transcript::read(&hsm.path("test-setup.transcript.json")).unwrap();
    let done: Vec<&str> = t
        .steps
        .iter()
        .filter(|s| s.status == Status::Done)
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(done, ["root-key", "root", "issuing-key"], "{:?}", t.steps);
    assert!(hsm.path("root.pem").exists() && !hsm.path("issuing.pem").exists());

    // The second run continues after the last completed step.
    let out = hsm.run(&run_args(file_s, &["--yes"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("3 step(s) were done by an earlier run"),
        "{}",
        stderr(&out)
    );
    let t = Transcript::read(&hsm.path("test-setup.transcript.json")).unwrap();
    assert_eq!(t.steps.len(), 7);
    assert!(
        t.steps.iter().all(|s| s.status == Status::Done),
        "{:?}",
        t.steps
    );
    // Every signing operation happened exactly once.
    let ops = audit_ops(&hsm);
    let count = |name: &str| ops.iter().filter(|(_, op, _)| op == name).count();
    assert_eq!(count("key.generate"), 2, "{ops:?}");
    assert_eq!(count("ca.init"), 1);
    assert_eq!(count("ca.intermediate"), 1);
    assert_eq!(count("cert.issue"), 1);
    assert_eq!(count("crl.generate"), 1);
    let certs = hsm.json(&["--state", "state", "cert", "list"]);
    assert_eq!(
        certs["certificates"].as_array().unwrap().len(),
        2,
        "{certs}"
    );
    hsm.ok(&["--state", "state", "audit", "verify"]);
}

#[test]
fn a_step_interrupted_after_the_audit_log_moved_on_is_never_run_again() {
    let hsm = Hsm::with_token("Ceremony CA");
    let file = write_ceremony(hsm.dir.path());
    let file_s = file.to_str().unwrap();
    hsm.ok(&run_args(file_s, &["--yes"]));
    // As if the machine died inside step "crl" after the CRL was recorded: the transcript
    // says started, the audit log has moved on.
    let path = hsm.path("test-setup.transcript.json");
    let mut t = Transcript::read(&path).unwrap();
    let last = t.steps.last_mut().unwrap();
    assert_eq!(last.id, "crl");
    last.status = Status::Started;
    last.audit_head = Some(last.audit_seq[0] - 1);
    t.write(&path).unwrap();
    let before = audit_ops(&hsm).len();
    hsm.fails(
        &run_args(file_s, &["--yes"]),
        1,
        &["step \"crl\" was interrupted", "audit show --since"],
    );
    assert_eq!(audit_ops(&hsm).len(), before, "nothing was run or recorded");
    // An unconfirmed step stops the ceremony before anything of it happens.
    let fresh = Hsm::with_token("Ceremony CA");
    let file = write_ceremony(fresh.dir.path());
    let mut child = fresh
        .cmd()
        .args(run_args(file.to_str().unwrap(), &[]))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"no\n").unwrap();
    let out = child.wait_with_output().unwrap();
    common::expect_failure(&out, &["ceremony run"], 1, &["was not confirmed"]);
    let ops = audit_ops(&fresh);
    assert!(
        ops.iter()
            .all(|(_, op, _)| op == "store.create" || op.starts_with("ceremony.")),
        "{ops:?}"
    );
}

#[test]
fn check_with_a_state_refuses_what_the_state_does_not_allow_before_any_token() {
    let pki = common::Pki::new();
    pki.hsm
        .openssl_req("web", "/CN=web.example.com/O=SOS/C=DE", false, &[]);
    let text = r#"name = "against-state"
purpose = "steps the state must allow"

[tokens.ca-token]

[[step]]
id = "web"
kind = "cert-issue"
ca = "issuing"
profile = "server"
csr = "web.csr"
days = 9000
out = "web.pem"

[[step]]
id = "crl"
kind = "crl"
ca = "nobody"
out = "nobody.crl"

[[step]]
id = "root-again"
kind = "ca-root"
name = "root"
key = { token = "ca-token", label = "another-root" }
subject = "CN=Another Root, O=SOS, C=DE"
"#;
    std::fs::write(pki.path("c.toml"), text).unwrap();
    std::fs::write(
        pki.path("site.toml"),
        "[role.ca-token]\ntoken = \"pkcs11:token=CA\"\n",
    )
    .unwrap();
    // Statically the file is fine; the state says no to each step.
    let out = pki
        .hsm
        .cmd()
        .env("HSMSIGN_MODULE", "/nonexistent/module.so")
        .args(["ceremony", "check", "c.toml", "--site", "site.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let before = audit_len(&pki);
    let out = pki
        .hsm
        .cmd()
        .env("HSMSIGN_MODULE", "/nonexistent/module.so")
        .args([
            "--state",
            "state",
            "ceremony",
            "check",
            "c.toml",
            "--site",
            "site.toml",
        ])
        .output()
        .unwrap();
    let all = format!("{}{}", common::stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("web"), "{all}");
    assert!(all.contains("nobody"), "{all}");
    assert!(all.contains("exists already"), "{all}");
    assert_eq!(audit_len(&pki), before, "check wrote nothing to the state");
    assert!(!pki.path("web.pem").exists());
}

fn audit_len(pki: &common::Pki) -> usize {
    pki.json(&["audit", "show"])["records"]
        .as_array()
        .unwrap()
        .len()
}
