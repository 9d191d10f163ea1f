//! `hsmsign attest verify` on real YubiKey attestation chains (tests/data/yubikey-attestation).
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use std::process::Command;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/yubikey-attestation"
);

fn attest(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hsmsign"))
        .arg("attest")
        .arg("verify")
        .args(args)
        .current_dir(DATA)
        .output()
        .expect("run hsmsign")
}

#[test]
fn a_real_chain_verifies_and_the_public_key_must_match() {
    let dir = tempfile::tempdir().unwrap();
    // The attested key, extracted independently by openssl.
    let pubkey = dir.path().join("attested.pem");
    let st = Command::new("openssl")
        .args([
            "x509",
            "-in",
            "device1-attest-9c.pem",
            "-noout",
            "-pubkey",
            "-out",
        ])
        .arg(&pubkey)
        .current_dir(DATA)
        .status()
        .unwrap();
    assert!(st.success());
    let out = attest(&[
        "--attestation",
        "device1-attest-9c.pem",
        "--intermediate",
        "device1-f9.pem",
        "--public-key",
        pubkey.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["serial"], 13078782);
    assert_eq!(v["slot"], "9c");
    assert_eq!(v["public_key_matches"], true);
    // Another device's key does not match: verification failure, exit 3.
    let other = dir.path().join("other.pem");
    let st = Command::new("openssl")
        .args([
            "x509",
            "-in",
            "device2-attest-9c.pem",
            "-noout",
            "-pubkey",
            "-out",
        ])
        .arg(&other)
        .current_dir(DATA)
        .status()
        .unwrap();
    assert!(st.success());
    let out = attest(&[
        "--attestation",
        "device1-attest-9c.pem",
        "--intermediate",
        "device1-f9.pem",
        "--public-key",
        other.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr(&out));
}

#[test]
fn a_foreign_f9_fails_verification_and_garbage_is_an_input_error() {
    let out = attest(&[
        "--attestation",
        "device1-attest-9c.pem",
        "--intermediate",
        "device2-f9.pem",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(common::stderr(&out).contains("another YubiKey batch"));
    let out = attest(&[
        "--attestation",
        "README.md",
        "--intermediate",
        "device1-f9.pem",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("README.md"),
        "{}",
        common::stderr(&out)
    );
}
