//! `hsmsign --version`: exactly what was built, for an officer's inventory.

use serde_json::json;

/// The package version (Cargo.toml).
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit the binary was built from, or "unknown" (build.rs).
const COMMIT: &str = env!("HSMSIGN_GIT_COMMIT");
/// The compiler that built it (build.rs): a reproduction needs the same one.
const RUSTC: &str = env!("HSMSIGN_RUSTC_VERSION");

/// The optional features compiled in.
fn features() -> Vec<&'static str> {
    let mut f = Vec::new();
    if cfg!(feature = "yubikey") {
        f.push("yubikey");
    }
    f
}

/// The PKCS#11 API version of the headers the bindings were generated from.
fn pkcs11_api() -> String {
    format!(
        "{}.{}",
        cryptoki_sys::CRYPTOKI_VERSION_MAJOR,
        cryptoki_sys::CRYPTOKI_VERSION_MINOR
    )
}

/// The version text (several lines) or, with `json`, one JSON document.
pub(super) fn render(json: bool) -> String {
    let features = features();
    if json {
        let doc = json!({
            "name": "hsmsign",
            "version": VERSION,
            "commit": COMMIT,
            "features": features,
            "pkcs11_api": pkcs11_api(),
            "rustc": RUSTC,
            "target": format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        });
        serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
    } else {
        let features = if features.is_empty() {
            "none".to_owned()
        } else {
            features.join(", ")
        };
        format!(
            "hsmsign {VERSION}\ncommit: {COMMIT}\nfeatures: {features}\nPKCS#11 API: {}\nbuilt with: {RUSTC}",
            pkcs11_api()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn json_names_version_commit_features_and_api() {
        let doc: serde_json::Value = serde_json::from_str(&render(true)).expect("valid JSON");
        assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(doc["pkcs11_api"], "3.2");
        assert_eq!(
            doc["features"]
                .as_array()
                .expect("features list")
                .iter()
                .any(|f| f == "yubikey"),
            cfg!(feature = "yubikey")
        );
        let commit = doc["commit"].as_str().expect("commit");
        assert!(
            commit == "unknown"
                || (commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
            "{commit}"
        );
    }
}
