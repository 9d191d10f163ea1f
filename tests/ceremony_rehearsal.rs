//! The throwaway tokens of a rehearsal: one SoftHSM2 token per role, in the rehearsal's own
//! directory, with PIN files only their owner may read.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hsmsign::ceremony::rehearsal::{Rehearsal, RehearsalError};

#[test]
fn a_rehearsal_makes_one_throwaway_token_per_role_and_never_reuses_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rehearsal");
    let r = Rehearsal::prepare(&dir).unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_hsmsign"));
    for role in ["ca-token", "alice-token"] {
        assert_eq!(r.make_token(exe, role).unwrap(), Rehearsal::label(role));
    }
    let out = r
        .command(exe)
        .args(["--json", "token", "list"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let labels: Vec<&str> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"rehearsal ca-token"), "{labels:?}");
    assert!(labels.contains(&"rehearsal alice-token"), "{labels:?}");
    // The throwaway PIN logs in (through the PIN file the rehearsal's runs use).
    let out = r
        .command(exe)
        .args([
            "key",
            "generate",
            "--key",
            "pkcs11:token=rehearsal%20ca-token;object=k",
            "--algorithm",
            "ec-p256",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&r.pin_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(&r.dir).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the rehearsal directory is its owner's alone"
    );
    // A second rehearsal never reuses (or overwrites) the first one's directory.
    assert!(matches!(
        Rehearsal::prepare(&dir),
        Err(RehearsalError::Exists(_))
    ));
}
