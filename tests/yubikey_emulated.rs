//! YubiKey PIV keys used natively, against the emulated card of tools/piv-emulator (pcscd +
//! vsmartcard's vpcd + piv-authenticator). Needs root (private namespaces for pcscd) and the
//! built emulator, so it is ignored by default; `scripts/test-yubikey.sh` (called by
//! scripts/test.sh) builds the emulator and runs it.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::process::Command;

#[test]
#[ignore = "needs root and the PIV emulator: run by scripts/test-yubikey.sh"]
fn yubikey_ceremony_on_the_emulated_card() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(format!("{root}/tools/piv-emulator/run-with-pcscd.sh"))
        .arg("--")
        .arg("bash")
        .arg(format!("{root}/tests/yubikey/flow.sh"))
        .arg(env!("CARGO_BIN_EXE_hsmsign"))
        .arg(dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    for want in [
        "refused: no management key",
        "refused: wrong PIN, 2 tries left",
        "refused: slot 9a already holds a key",
        "root certificate holds the slot 9a key",
        "ACCEPTED",
        "Verified OK",
        "verify OK",
        "audit log OK",
        "refused: no attestation from the emulated card",
        "YUBIKEY FLOW OK",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}
