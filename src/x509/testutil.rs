//! Test helpers: run the `openssl` command line over our output.

use std::process::Command;

/// Run openssl, returning stdout; panics with stderr on failure.
pub(crate) fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Run openssl for its effect.
pub(crate) fn openssl_ok(args: &[&str]) {
    openssl(args);
}

/// Run openssl; returns (success, stdout + stderr as text).
pub(crate) fn openssl_status(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}
