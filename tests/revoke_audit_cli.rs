//! Revocation, CRLs (checked with openssl), the audit log, and two processes issuing at once.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{Pki, stderr};

fn client_csr(pki: &Pki, name: &str) {
    pki.hsm
        .openssl_req(name, &format!("/CN={name}"), false, &[]);
}

fn issue(pki: &Pki, name: &str) -> String {
    client_csr(pki, name);
    let v = pki.json(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "client",
        "--csr",
        &format!("{name}.csr"),
        "--out",
        &format!("{name}.pem"),
    ]);
    v["serial"].as_str().unwrap().to_string()
}

#[test]
fn revoke_then_crl_rejects_the_revoked_and_accepts_the_valid() {
    let pki = Pki::new();
    let bad = issue(&pki, "leaked");
    issue(&pki, "fine");
    // openssl prints serials in upper case with no colons; accept them with colons too.
    let with_colons: String = bad
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    let out = pki.run(&[
        "cert",
        "revoke",
        "--ca",
        "issuing",
        "--serial",
        &with_colons,
        "--reason",
        "keyCompromise",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        common::stdout(&out).contains("trusted-x509-keys"),
        "revoke must say what to do in JS7"
    );
    // Twice, or unknown, is an error.
    let out = pki.run(&["cert", "revoke", "--ca", "issuing", "--serial", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).to_lowercase().contains("revoked"),
        "{}",
        stderr(&out)
    );
    let out = pki.run(&[
        "cert",
        "revoke",
        "--ca",
        "issuing",
        "--serial",
        "0123456789abcdef",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let list = pki.json(&["cert", "list"]);
    let revoked: Vec<_> = list["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"].as_str().unwrap().starts_with("REVOKED"))
        .collect();
    assert_eq!(revoked.len(), 1);
    pki.ok(&["crl", "generate", "--ca", "issuing", "--out", "issuing.crl"]);
    let (ok, out) = pki.openssl(&[
        "crl",
        "-in",
        "issuing.crl",
        "-noout",
        "-CAfile",
        "bundle.pem",
        "-verify",
    ]);
    assert!(ok && out.contains("verify OK"), "{out}");
    let (ok, text) = pki.openssl(&["crl", "-in", "issuing.crl", "-noout", "-text"]);
    assert!(ok);
    assert!(
        text.contains("X509v3 CRL Number") && text.contains("Key Compromise"),
        "{text}"
    );
    assert!(text.contains(&bad.to_uppercase()), "{text}");
    // Root CRL too, so that -crl_check_all can check the whole chain.
    pki.ok(&["crl", "generate", "--ca", "root", "--out", "root.crl"]);
    let crls = format!(
        "{}{}",
        std::fs::read_to_string(pki.path("issuing.crl")).unwrap(),
        std::fs::read_to_string(pki.path("root.crl")).unwrap()
    );
    std::fs::write(pki.path("crls.pem"), crls).unwrap();
    let (ok, out) = pki.openssl(&[
        "verify",
        "-crl_check_all",
        "-CAfile",
        "bundle.pem",
        "-CRLfile",
        "crls.pem",
        "leaked.pem",
    ]);
    assert!(!ok && out.contains("revoked"), "{out}");
    let (ok, out) = pki.openssl(&[
        "verify",
        "-crl_check_all",
        "-CAfile",
        "bundle.pem",
        "-CRLfile",
        "crls.pem",
        "fine.pem",
    ]);
    assert!(ok, "{out}");
    // CRL numbers increase.
    pki.ok(&[
        "crl",
        "generate",
        "--ca",
        "issuing",
        "--out",
        "issuing2.crl",
    ]);
    let (_, n1) = pki.openssl(&["crl", "-in", "issuing.crl", "-noout", "-crlnumber"]);
    let (_, n2) = pki.openssl(&["crl", "-in", "issuing2.crl", "-noout", "-crlnumber"]);
    assert_ne!(n1, n2);
    // And the whole story is in a verifiable audit log.
    let v = pki.json(&["audit", "verify"]);
    assert_eq!(v["ok"], true, "{v}");
    let ops: Vec<String> = pki.json(&["audit", "show"])["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["operation"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "ca.init",
        "ca.intermediate",
        "cert.issue",
        "cert.revoke",
        "crl.generate",
    ] {
        assert!(ops.iter().any(|o| o == want), "{want} missing from {ops:?}");
    }
}

#[test]
fn audit_verify_detects_an_edited_record_and_anchors_work() {
    let pki = Pki::new();
    issue(&pki, "one");
    pki.ok(&["audit", "anchor", "--ca", "root"]);
    let v = pki.json(&["audit", "verify"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["anchors"].as_array().unwrap().len(), 1, "{v}");
    let head = format!(
        "{}:{}",
        v["head"]["seq"],
        v["head"]["hash"].as_str().unwrap()
    );
    pki.ok(&["audit", "verify", "--known-head", &head]);
    // Edit the first record behind hsmsign's back (the triggers that forbid it dropped first).
    let db = pki.path("state/hsmsign.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let triggers: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type='trigger'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for t in triggers {
        conn.execute(&format!("DROP TRIGGER \"{t}\""), []).unwrap();
    }
    let audit_table: String = conn
        .query_row("SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'audit%' ORDER BY name LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let changed = conn
        .execute(
            &format!("UPDATE \"{audit_table}\" SET operation = 'ca.hidden' WHERE seq = 2"),
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);
    pki.fails(&["audit", "verify"], 3, &["#2"]);
}

#[test]
fn a_foreign_file_as_state_database_is_refused_unchanged() {
    let pki = Pki::new();
    let dir = pki.path("foreign-state");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("hsmsign.db"),
        b"this is not a database, it is a shopping list",
    )
    .unwrap();
    let before = std::fs::read(dir.join("hsmsign.db")).unwrap();
    let out = pki
        .hsm
        .run(&["--state", dir.to_str().unwrap(), "ca", "show"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("hsmsign.db"), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.join("hsmsign.db")).unwrap(), before);
}

#[test]
fn two_processes_issuing_at_once_lose_nothing() {
    let pki = Pki::new();
    for i in 0..8 {
        client_csr(&pki, &format!("c{i}"));
    }
    // SoftHSM2's file store is not safe for several processes at once (C_GetTokenInfo returns
    // CKR_GENERAL_ERROR while another process rewrites the token file); a network HSM is. What
    // is under test here is the state database, so each process gets a byte-identical copy of
    // the CA token (same keys) and all of them share one state directory.
    let copies: Vec<std::path::PathBuf> = (0..8)
        .map(|i| {
            let dir = pki.path(&format!("hsm-copy-{i}"));
            std::fs::create_dir(&dir).unwrap();
            let tokens = dir.join("tokens");
            let (ok, out) = pki
                .hsm
                .tool("cp", &["-r", "tokens", tokens.to_str().unwrap()]);
            assert!(ok, "{out}");
            let conf = dir.join("softhsm2.conf");
            std::fs::write(
                &conf,
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\n",
                    tokens.display()
                ),
            )
            .unwrap();
            conf
        })
        .collect();
    let spawn = |range: std::ops::Range<usize>| {
        let children: Vec<_> = range
            .map(|i| {
                let mut c = pki.hsm.cmd();
                c.env("SOFTHSM2_CONF", &copies[i]);
                c.args([
                    "--state",
                    pki.path("state").to_str().unwrap(),
                    "cert",
                    "issue",
                    "--ca",
                    "issuing",
                    "--profile",
                    "client",
                    "--csr",
                    &format!("c{i}.csr"),
                    "--out",
                    &format!("c{i}.pem"),
                ]);
                c.stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped());
                c.spawn().unwrap()
            })
            .collect();
        children
    };
    let children = spawn(0..8);
    for ch in children {
        let out = ch.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let list = pki.json(&["cert", "list", "--ca", "issuing"]);
    let serials: std::collections::HashSet<String> = list["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(serials.len(), 8);
    let v = pki.json(&["audit", "verify"]);
    assert_eq!(v["ok"], true, "{v}");
    for i in 0..8 {
        let (ok, out) = pki.openssl(&["verify", "-CAfile", "bundle.pem", &format!("c{i}.pem")]);
        assert!(ok, "{out}");
    }
}
