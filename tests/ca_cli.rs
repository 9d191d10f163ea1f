//! `hsmsign ca ...`: roots and intermediates in the token, checked with openssl.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{Hsm, Pki, stderr};

fn text(pki: &Pki, file: &str) -> String {
    let (ok, out) = pki.openssl(&["x509", "-in", file, "-noout", "-text"]);
    assert!(ok, "{out}");
    out
}

#[test]
fn root_and_intermediate_pass_openssl_strict_verification() {
    for (root_alg, issuing_alg) in [
        ("ec-p256", "ec-p256"),
        ("ec-p384", "ec-p256"),
        ("rsa-3072", "ec-p384"),
    ] {
        let pki = Pki::with_algorithms(root_alg, issuing_alg);
        let (ok, out) = pki.openssl(&["verify", "-x509_strict", "-CAfile", "root.pem", "root.pem"]);
        assert!(ok, "{root_alg}: {out}");
        let (ok, out) = pki.openssl(&[
            "verify",
            "-x509_strict",
            "-CAfile",
            "root.pem",
            "issuing.pem",
        ]);
        assert!(ok, "{root_alg}/{issuing_alg}: {out}");
        let root = text(&pki, "root.pem");
        let want_sig = match root_alg {
            "ec-p256" => "ecdsa-with-SHA256",
            "ec-p384" => "ecdsa-with-SHA384",
            _ => "sha256WithRSAEncryption",
        };
        assert!(
            root.contains(&format!("Signature Algorithm: {want_sig}")),
            "{root}"
        );
        // Exactly the promised extensions, with their criticality.
        assert!(
            root.contains("X509v3 Basic Constraints: critical\n                CA:TRUE"),
            "{root}"
        );
        assert!(
            root.contains("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"),
            "{root}"
        );
        assert!(root.contains("X509v3 Subject Key Identifier"), "{root}");
        assert!(root.contains("X509v3 Authority Key Identifier"), "{root}");
        assert_eq!(root.matches("X509v3 ").count(), 5, "{root}"); // header line + 4 extensions
        let issuing = text(&pki, "issuing.pem");
        assert!(issuing.contains("CA:TRUE, pathlen:0"), "{issuing}");
        assert!(
            issuing.contains("Issuer: CN = Test Root CA, O = SOS, C = DE")
                || issuing.contains("Issuer: C = DE, O = SOS, CN = Test Root CA"),
            "{issuing}"
        );
    }
}

#[test]
fn the_root_key_is_the_token_key_per_opensc() {
    let pki = Pki::new();
    let (ok, out) = pki.hsm.tool(
        "pkcs11-tool",
        &[
            "--module",
            common::softhsm_module(),
            "--token-label",
            "CA",
            "--read-object",
            "--type",
            "pubkey",
            "--label",
            "root-key",
            "--output-file",
            "token-root.der",
        ],
    );
    assert!(ok, "{out}");
    let (ok, a) = pki.openssl(&["pkey", "-pubin", "-inform", "DER", "-in", "token-root.der"]);
    assert!(ok, "{a}");
    let (ok, b) = pki.openssl(&["x509", "-in", "root.pem", "-noout", "-pubkey"]);
    assert!(ok, "{b}");
    assert_eq!(a, b);
    // The certificate also sits on the token next to its key.
    let (ok, out) = pki.hsm.tool(
        "pkcs11-tool",
        &[
            "--module",
            common::softhsm_module(),
            "--token-label",
            "CA",
            "--list-objects",
            "--type",
            "cert",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("root-key") && out.contains("issuing-key"),
        "{out}"
    );
}

#[test]
fn ca_show_and_export_give_the_chain() {
    let pki = Pki::new();
    let v = pki.json(&["ca", "show", "--name", "issuing"]);
    assert_eq!(v["chain"], serde_json::json!(["issuing", "root"]));
    assert_eq!(
        v["ca"]["key_provenance"],
        "generated on token, never extractable, always sensitive"
    );
    let bundle = std::fs::read_to_string(pki.path("bundle.pem")).unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2);
    let list = pki.json(&["ca", "show"]);
    assert_eq!(list["cas"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_ca_requests_are_refused_before_anything_is_written() {
    let pki = Pki::new();
    pki.hsm.key("CA", "spare", "ec-p256");
    let before = pki.counts();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "ca",
                "init",
                "--name",
                "r2",
                "--key",
                "pkcs11:token=CA;object=spare",
                "--subject",
                "O=SOS, C=DE",
            ],
            "CN",
        ),
        (
            &[
                "ca",
                "init",
                "--name",
                "r2",
                "--key",
                "pkcs11:token=CA;object=spare",
                "--subject",
                "CN=x,,O",
            ],
            "--subject",
        ),
        (
            &[
                "ca",
                "init",
                "--name",
                "r2",
                "--key",
                "pkcs11:token=CA;object=spare",
                "--subject",
                "CN=x, XY=1",
            ],
            "XY",
        ),
        (
            &[
                "ca",
                "init",
                "--name",
                "r2",
                "--key",
                "pkcs11:token=CA;object=spare",
                "--subject",
                "CN=x, C=DEU",
            ],
            "C",
        ),
        (
            &[
                "ca",
                "init",
                "--name",
                "r2",
                "--key",
                "pkcs11:token=CA;object=spare",
                "--subject",
                "CN=x",
                "--days",
                "10000",
            ],
            "maximum",
        ),
        (
            &[
                "ca",
                "init",
                "--name",
                "root",
                "--key",
                "pkcs11:token=CA;object=spare",
                "--subject",
                "CN=x",
            ],
            "exists already",
        ),
        (
            &[
                "ca",
                "init",
                "--name",
                "r2",
                "--key",
                "pkcs11:token=CA;object=spare",
                "--subject",
                "CN=x",
                "--out",
                "root.pem",
            ],
            "already exists",
        ),
        (
            &[
                "ca",
                "init",
                "--name",
                "r2",
                "--key",
                "pkcs11:token=CA;object=root-key",
                "--subject",
                "CN=x",
            ],
            "already holds a certificate",
        ),
        (
            &[
                "ca",
                "intermediate",
                "--name",
                "i2",
                "--issuer",
                "nosuch",
                "--key",
                "pkcs11:token=CA;object=spare",
                "--subject",
                "CN=x",
            ],
            "no CA named",
        ),
    ];
    for (args, needle) in cases {
        pki.fails(args, 1, &[needle]);
    }
    assert_eq!(
        pki.json(&["ca", "show"])["cas"].as_array().unwrap().len(),
        2
    );
    let after = pki.counts();
    assert_eq!(before.1, after.1, "no certificate row may appear");
}

#[test]
fn ca_import_checks_key_and_ca_flag() {
    let pki = Pki::new();
    pki.hsm.key("CA", "imported", "ec-p256");
    // A CA certificate for the token key, made outside: public key from the token.
    pki.ok(&[
        "key",
        "public",
        "--key",
        "pkcs11:token=CA;object=imported",
        "--out",
        "imported.pub",
    ]);
    pki.hsm.openssl_req(
        "ext-root",
        "/CN=External Root",
        true,
        &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    );
    pki.hsm.openssl_req("junk", "/CN=Adopted CA", false, &[]);
    std::fs::write(
        pki.path("ca.ext"),
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    std::fs::write(pki.path("leaf.ext"), "basicConstraints=CA:FALSE\n").unwrap();
    for (ext, file) in [("ca.ext", "adopted.pem"), ("leaf.ext", "leaf.pem")] {
        let (ok, out) = pki.openssl(&[
            "x509",
            "-req",
            "-in",
            "junk.csr",
            "-force_pubkey",
            "imported.pub",
            "-CA",
            "ext-root.pem",
            "-CAkey",
            "ext-root.key",
            "-out",
            file,
            "-days",
            "100",
            "-extfile",
            ext,
        ]);
        assert!(ok, "{out}");
    }
    // Not a CA certificate.
    pki.fails(
        &[
            "ca",
            "import",
            "--name",
            "x",
            "--cert",
            "leaf.pem",
            "--key",
            "pkcs11:token=CA;object=imported",
        ],
        1,
        &["is not a CA certificate (BasicConstraints says CA:FALSE)"],
    );
    // A CA certificate for another key.
    pki.fails(
        &[
            "ca",
            "import",
            "--name",
            "x",
            "--cert",
            "ext-root.pem",
            "--key",
            "pkcs11:token=CA;object=imported",
        ],
        1,
        &["not the public key"],
    );
    // The right one is adopted and can issue.
    let v = pki.json(&[
        "ca",
        "import",
        "--name",
        "adopted",
        "--cert",
        "adopted.pem",
        "--key",
        "pkcs11:token=CA;object=imported",
    ]);
    assert_eq!(v["ca"]["subject"], "CN=Adopted CA");
    pki.hsm.openssl_req("c", "/CN=client1", false, &[]);
    pki.ok(&[
        "cert",
        "issue",
        "--ca",
        "adopted",
        "--profile",
        "client",
        "--csr",
        "c.csr",
        "--out",
        "c.pem",
    ]);
    let (ok, out) = pki.openssl(&[
        "verify",
        "-CAfile",
        "ext-root.pem",
        "-untrusted",
        "adopted.pem",
        "c.pem",
    ]);
    assert!(ok, "{out}");
}

#[test]
fn a_ca_whose_key_left_the_token_cannot_sign() {
    let pki = Pki::new();
    let (ok, out) = pki.hsm.tool(
        "pkcs11-tool",
        &[
            "--module",
            common::softhsm_module(),
            "--token-label",
            "CA",
            "--login",
            "--pin",
            common::USER_PIN,
            "--delete-object",
            "--type",
            "privkey",
            "--label",
            "issuing-key",
        ],
    );
    assert!(ok, "{out}");
    pki.hsm.openssl_req("c", "/CN=c", false, &[]);
    let before = pki.counts();
    pki.fails(
        &[
            "cert",
            "issue",
            "--ca",
            "issuing",
            "--profile",
            "client",
            "--csr",
            "c.csr",
            "--out",
            "c.pem",
        ],
        1,
        &["no private key matches"],
    );
    assert!(!pki.path("c.pem").exists());
    assert_eq!(before.1, pki.counts().1);
    let _ = Hsm::new;
}

/// A certificate already beside the key on the token: an end-entity one (PIV cards keep one in
/// every used slot, and OpenSC shows a slot's key only with it) is left in place with one
/// warning and the CA is made; a CA certificate means the key belongs to a CA: refused.
#[test]
fn a_certificate_beside_the_key_blocks_only_when_it_is_a_ca_certificate() {
    let hsm = Hsm::with_token("ca");
    let module = [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("SoftHSM2 module");
    let (ok, out) = hsm.tool(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "other.key",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = hsm.tool(
        "openssl",
        &[
            "req",
            "-new",
            "-key",
            "other.key",
            "-subj",
            "/CN=slot placeholder",
            "-out",
            "other.csr",
        ],
    );
    assert!(ok, "{out}");
    std::fs::write(hsm.path("ca.ext"), "basicConstraints=critical,CA:TRUE\n").unwrap();
    for (label, ca_cert) in [("ee-beside", false), ("ca-beside", true)] {
        let uri = hsm.key("ca", label, "ec-p256");
        let id = hsm.json(&["key", "inspect", "--key", &uri])["key"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        hsm.ok(&[
            "key",
            "public",
            "--key",
            &uri,
            "--out",
            &format!("{label}.pub"),
        ]);
        // A certificate for the key's public key (signed by another key: only its contents
        // matter here), written next to the key with the same CKA_ID by another tool.
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            "other.csr",
            "-signkey",
            "other.key",
            "-days",
            "2",
            "-outform",
            "DER",
        ];
        let public = format!("{label}.pub");
        let der = format!("{label}.der");
        args.extend(["-force_pubkey", &public, "-out", &der]);
        if ca_cert {
            args.extend(["-extfile", "ca.ext"]);
        }
        let (ok, out) = hsm.tool("openssl", &args);
        assert!(ok, "{out}");
        let (ok, out) = hsm.tool(
            "pkcs11-tool",
            &[
                "--module",
                module,
                "--token-label",
                "ca",
                "--login",
                "--pin",
                common::USER_PIN,
                "--write-object",
                &der,
                "--type",
                "cert",
                "--id",
                &id,
                "--label",
                label,
            ],
        );
        assert!(ok, "pkcs11-tool: {out}");
        let state = hsm.path("state").display().to_string();
        let out = hsm.run(&[
            "--state",
            &state,
            "ca",
            "init",
            "--name",
            label,
            "--key",
            &uri,
            "--subject",
            "CN=Beside",
            "--out",
            &format!("{label}.pem"),
        ]);
        let err = stderr(&out);
        if ca_cert {
            assert!(
                !out.status.success(),
                "a key with a CA certificate became a CA"
            );
            assert!(err.contains("already belongs to a CA"), "{err}");
            assert!(!hsm.path(&format!("{label}.pem")).exists());
        } else {
            assert!(out.status.success(), "{err}");
            assert_eq!(
                err.matches(
                    "already holds an end-entity certificate (subject CN=slot placeholder)"
                )
                .count(),
                1,
                "{err}"
            );
            assert!(err.contains("lives only in the state database"), "{err}");
            let (ok, out) = hsm.tool(
                "openssl",
                &[
                    "verify",
                    "-x509_strict",
                    "-CAfile",
                    &format!("{label}.pem"),
                    &format!("{label}.pem"),
                ],
            );
            assert!(ok, "{out}");
        }
    }
}
