//! SIGKILL at random moments during issuance and archive signing: the state stays consistent
//! (audit chain intact, every written certificate has its row), and outputs appear whole or not
//! at all.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use std::time::Duration;

use common::Pki;

#[test]
fn killed_issuance_leaves_consistent_state_and_whole_files() {
    let pki = Pki::new();
    let rounds = 16;
    for i in 0..rounds {
        pki.hsm
            .openssl_req(&format!("k{i}"), &format!("/CN=killed-{i}"), false, &[]);
    }
    let mut killed = 0;
    for i in 0..rounds {
        let mut child = pki
            .hsm
            .cmd()
            .args([
                "--state",
                pki.path("state").to_str().unwrap(),
                "cert",
                "issue",
                "--ca",
                "issuing",
                "--profile",
                "client",
                "--csr",
                &format!("k{i}.csr"),
                "--out",
                &format!("k{i}.pem"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // A whole issuance takes tens of milliseconds here: kill anywhere inside it.
        std::thread::sleep(Duration::from_micros(fastrand::u64(0..60_000)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
    }
    assert!(
        killed > 0,
        "no run was interrupted: the test proved nothing"
    );
    let v = pki.json(&["audit", "verify"]);
    assert_eq!(v["ok"], true, "{v}");
    let certs = pki.json(&["cert", "list", "--ca", "issuing"]);
    let recorded: Vec<String> = certs["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha256"].as_str().unwrap().to_string())
        .collect();
    for i in 0..rounds {
        let path = pki.path(&format!("k{i}.pem"));
        if !path.exists() {
            continue;
        }
        // Whole, and recorded: the file is written only after the commit.
        let (ok, fp) = pki.openssl(&[
            "x509",
            "-in",
            &format!("k{i}.pem"),
            "-noout",
            "-fingerprint",
            "-sha256",
        ]);
        assert!(ok, "k{i}.pem is not a whole certificate: {fp}");
        let hex = fp
            .trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', "")
            .to_lowercase();
        assert!(
            recorded.contains(&hex),
            "k{i}.pem was written without its database row"
        );
    }
}

#[test]
fn killed_archive_signing_never_leaves_a_partial_archive() {
    let pki = Pki::new();
    pki.hsm.init_token("Operator");
    let uri = pki.hsm.key("Operator", "alice", "ec-p256");
    pki.signing_cert(&uri, "CN=alice", "alice.pem");
    // Big enough that signing takes a while.
    let file = std::fs::File::create(pki.path("export.zip")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    for i in 0..3000 {
        zip.start_file(
            format!("W/w{i}.workflow.json"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        std::io::Write::write_all(
            &mut zip,
            format!("{{\"TYPE\":\"Workflow\",\"n\":{i}}}").as_bytes(),
        )
        .unwrap();
    }
    zip.finish().unwrap();
    let mut killed = 0;
    for round in 0..6 {
        let out = format!("signed-{round}.zip");
        let mut child = pki
            .hsm
            .cmd()
            .args([
                "archive",
                "sign",
                "--key",
                &uri,
                "--cert",
                "alice.pem",
                "--in",
                "export.zip",
                "--out",
                &out,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(fastrand::u64(5..400)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        if pki.path(&out).exists() {
            // Whole: JS7's view accepts every object.
            pki.ok(&[
                "archive",
                "verify",
                "--in",
                &out,
                "--trusted",
                "issuing.pem",
                "--cert",
                "alice.pem",
            ]);
        }
    }
    assert!(
        killed > 0,
        "no run was interrupted: the test proved nothing"
    );
}
