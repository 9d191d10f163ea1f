//! `hsmsign token` and `hsmsign key` against a real SoftHSM2 token, checked with OpenSC's
//! pkcs11-tool and openssl.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{Hsm, USER_PIN, softhsm_module, stderr, tool};

#[test]
fn token_init_then_list_finds_it_by_label() {
    let hsm = Hsm::with_token("JS7 Root");
    let v = hsm.json(&["token", "list"]);
    let tokens = v["tokens"].as_array().unwrap();
    let ours: Vec<_> = tokens.iter().filter(|t| t["initialized"] == true).collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["label"], "JS7 Root");
    assert!(
        ours[0]["uri"]
            .as_str()
            .unwrap()
            .contains("token=JS7%20Root")
    );
    // A second token with the same label is refused.
    let out = hsm.run(&[
        "token",
        "init",
        "--label",
        "JS7 Root",
        "--so-pin-source",
        &format!("file:{}", hsm.path("so-pin").display()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
}

/// pkcs11-tool's view of the private key with label `label`.
fn pkcs11_tool_private_keys(hsm: &Hsm) -> String {
    let (ok, out) = hsm.tool(
        "pkcs11-tool",
        &[
            "--module",
            softhsm_module(),
            "--token-label",
            "Ops",
            "--login",
            "--pin",
            USER_PIN,
            "--list-objects",
            "--type",
            "privkey",
        ],
    );
    assert!(ok, "pkcs11-tool: {out}");
    out
}

#[test]
fn generated_keys_are_local_sensitive_never_extractable_per_opensc() {
    let hsm = Hsm::with_token("Ops");
    for (label, alg) in [
        ("p256", "ec-p256"),
        ("p384", "ec-p384"),
        ("rsa", "rsa-3072"),
    ] {
        let uri = hsm.key("Ops", label, alg);
        let v = hsm.json(&["key", "inspect", "--key", &uri]);
        assert_eq!(
            v["verdict"], "generated on token, never extractable, always sensitive",
            "{v}"
        );
        assert_eq!(v["key"]["algorithm"], alg);
    }
    let listing = pkcs11_tool_private_keys(&hsm);
    // One "Access:" line per key, each with all three properties, and no "extractable" alone.
    let access: Vec<&str> = listing.lines().filter(|l| l.contains("Access:")).collect();
    assert_eq!(access.len(), 3, "{listing}");
    for line in access {
        for want in ["always sensitive", "never extractable", "local"] {
            assert!(line.contains(want), "{line}");
        }
    }
    // Sign only: no decrypt / unwrap / derive usage.
    for line in listing.lines().filter(|l| l.contains("Usage:")) {
        assert!(line.contains("sign"), "{line}");
        for not in ["decrypt", "unwrap", "derive"] {
            assert!(!line.contains(not), "{line}");
        }
    }
}

#[test]
fn public_key_matches_opensc_and_is_never_overwritten() {
    let hsm = Hsm::with_token("Ops");
    let uri = hsm.key("Ops", "signer", "ec-p256");
    let pem = hsm.path("pub.pem");
    hsm.ok(&[
        "key",
        "public",
        "--key",
        &uri,
        "--out",
        pem.to_str().unwrap(),
    ]);
    // Independent read of the same public key through OpenSC.
    let (ok, out) = hsm.tool(
        "pkcs11-tool",
        &[
            "--module",
            softhsm_module(),
            "--token-label",
            "Ops",
            "--read-object",
            "--type",
            "pubkey",
            "--label",
            "signer",
            "--output-file",
            "opensc-pub.der",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = tool(
        "openssl",
        &[
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            "opensc-pub.der",
            "-out",
            "opensc-pub.pem",
        ],
        hsm.dir.path(),
    );
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read_to_string(&pem).unwrap(),
        std::fs::read_to_string(hsm.path("opensc-pub.pem")).unwrap()
    );
    // A second write to the same path is refused and the file is unchanged.
    let before = std::fs::read(&pem).unwrap();
    let out = hsm.run(&[
        "key",
        "public",
        "--key",
        &uri,
        "--out",
        pem.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&pem).unwrap(), before);
}

#[test]
fn existing_label_is_refused_and_nothing_is_created() {
    let hsm = Hsm::with_token("Ops");
    hsm.key("Ops", "dup", "ec-p256");
    let out = hsm.run(&[
        "key",
        "generate",
        "--key",
        "pkcs11:token=Ops;object=dup",
        "--algorithm",
        "ec-p384",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already holds"), "{}", stderr(&out));
    let keys = hsm.json(&["key", "list"]);
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1, "{keys}");
}

#[test]
fn wrong_pin_is_reported_once_with_the_token_state() {
    let hsm = Hsm::with_token("Ops");
    let out = hsm
        .cmd()
        .env(
            "HSMSIGN_PIN_SOURCE",
            format!("file:{}", hsm.path("wrong-pin").display()),
        )
        .args(["key", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("wrong PIN"), "{err}");
    assert!(err.contains("will not be retried"), "{err}");
    assert!(
        err.contains("token says") || err.contains("token does not"),
        "{err}"
    );
    assert!(
        !err.contains("000000"),
        "the PIN must never be printed: {err}"
    );
}

#[test]
fn no_pin_source_and_no_terminal_is_an_error_not_a_hang() {
    let hsm = Hsm::with_token("Ops");
    // setsid: no controlling terminal, as under cron or CI.
    let out = std::process::Command::new("setsid")
        .arg("-w")
        .arg(env!("CARGO_BIN_EXE_hsmsign"))
        .args(["key", "list"])
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env_remove("HSMSIGN_PIN_SOURCE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no terminal"), "{}", stderr(&out));
}

#[test]
fn error_paths_each_say_what_to_do() {
    let hsm = Hsm::with_token("Ops");
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["--module", "/nonexistent/lib.so", "token", "list"],
            1,
            "--module",
        ),
        (
            &["--module", "/etc/hostname", "token", "list"],
            1,
            "PKCS#11 module",
        ),
        (
            &[
                "key",
                "generate",
                "--key",
                "pkcs11:token=Absent;object=k",
                "--algorithm",
                "ec-p256",
            ],
            1,
            "Tokens present: \"Ops\"",
        ),
        (
            &[
                "key",
                "generate",
                "--key",
                "pkcs11:tokn=Ops;object=k",
                "--algorithm",
                "ec-p256",
            ],
            1,
            "tokn=Ops",
        ),
        (
            &[
                "key",
                "generate",
                "--key",
                "pkcs11:token=Ops;object=k",
                "--algorithm",
                "dsa",
            ],
            2,
            "ec-p256, ec-p384",
        ),
        (
            &[
                "key",
                "generate",
                "--key",
                "pkcs11:token=Ops",
                "--algorithm",
                "ec-p256",
            ],
            2,
            "object=LABEL",
        ),
        (
            &["key", "inspect", "--key", "pkcs11:token=Ops;object=missing"],
            1,
            "no private key matches",
        ),
        (
            &["key", "list", "--token", "pkcs11:token=Ops?pin-value=1234"],
            1,
            "--allow-pin-value",
        ),
        (
            &["--pin-source", "1234", "key", "list"],
            1,
            "unknown PIN source",
        ),
    ];
    for (args, code, needle) in cases {
        let out = hsm.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: want {needle:?} in {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // Nothing was created by any of them.
    let keys = hsm.json(&["key", "list"]);
    assert!(keys["keys"].as_array().unwrap().is_empty(), "{keys}");
}

#[test]
fn imported_key_is_reported_as_imported() {
    let hsm = Hsm::with_token("Ops");
    let (ok, out) = tool(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "legacy.pem",
        ],
        hsm.dir.path(),
    );
    assert!(ok, "{out}");
    let v = hsm.json(&[
        "key",
        "import",
        "--key",
        "pkcs11:token=Ops;object=legacy-ca",
        "--from",
        hsm.path("legacy.pem").to_str().unwrap(),
    ]);
    let uri = v["key"]["uri"].as_str().unwrap().to_string();
    let ins = hsm.json(&["key", "inspect", "--key", &uri]);
    let verdict = ins["verdict"].as_str().unwrap();
    assert!(
        verdict.contains("imported, not generated on token"),
        "{verdict}"
    );
    // The token key's public half is the file's public key.
    let (ok, out) = tool(
        "openssl",
        &[
            "pkey",
            "-in",
            "legacy.pem",
            "-pubout",
            "-out",
            "legacy-pub.pem",
        ],
        hsm.dir.path(),
    );
    assert!(ok, "{out}");
    let ours = hsm.ok(&["key", "public", "--key", &uri]);
    assert_eq!(
        ours.trim(),
        std::fs::read_to_string(hsm.path("legacy-pub.pem"))
            .unwrap()
            .trim()
    );
}

/// pkcs11-tool's "Usage:" line of every key object, by (label, "private"/"public").
fn usages(hsm: &Hsm) -> std::collections::BTreeMap<(String, &'static str), String> {
    let (ok, out) = hsm.tool(
        "pkcs11-tool",
        &[
            "--module",
            softhsm_module(),
            "--token-label",
            "Ops",
            "--login",
            "--pin",
            USER_PIN,
            "--list-objects",
        ],
    );
    assert!(ok, "pkcs11-tool: {out}");
    let mut map = std::collections::BTreeMap::new();
    let mut kind = None;
    let mut label = String::new();
    for line in out.lines() {
        if line.starts_with("Private Key Object") {
            kind = Some("private");
        } else if line.starts_with("Public Key Object") {
            kind = Some("public");
        } else if !line.starts_with(' ') {
            kind = None;
        } else if let Some(l) = line.trim().strip_prefix("label:") {
            label = l.trim().to_string();
        } else if let (Some(k), Some(u)) = (kind, line.trim().strip_prefix("Usage:")) {
            map.insert((label.clone(), k), u.trim().to_string());
        }
    }
    map
}

/// One key template: an imported key (EC or RSA) gets exactly the usages of a generated one,
/// as OpenSC reads them: the private half signs, the public half verifies, nothing else (no
/// encrypt or wrap on an imported RSA public key).
#[test]
fn imported_and_generated_keys_get_the_same_usages_per_opensc() {
    let hsm = Hsm::with_token("Ops");
    hsm.key("Ops", "gen-ec", "ec-p256");
    hsm.key("Ops", "gen-rsa", "rsa-3072");
    for (label, args) in [
        (
            "imp-ec",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"][..],
        ),
        (
            "imp-rsa",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"][..],
        ),
    ] {
        let file = format!("{label}.pem");
        let mut all = vec!["genpkey"];
        all.extend_from_slice(args);
        all.extend(["-out", &file]);
        let (ok, out) = tool("openssl", &all, hsm.dir.path());
        assert!(ok, "{out}");
        hsm.ok(&[
            "key",
            "import",
            "--key",
            &format!("pkcs11:token=Ops;object={label}"),
            "--from",
            hsm.path(&file).to_str().unwrap(),
        ]);
    }
    let seen = usages(&hsm);
    for label in ["gen-ec", "gen-rsa", "imp-ec", "imp-rsa"] {
        assert_eq!(
            seen.get(&(label.to_string(), "private"))
                .map(String::as_str),
            Some("sign"),
            "{label}: {seen:?}"
        );
        assert_eq!(
            seen.get(&(label.to_string(), "public")).map(String::as_str),
            Some("verify"),
            "{label}: {seen:?}"
        );
    }
}
