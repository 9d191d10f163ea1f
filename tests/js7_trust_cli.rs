//! Issuing with JS7's trust rules in mind: one certificate per subject DN in a trusted
//! directory, the trusted-x509-keys content for operators, and the expiry of everything JS7
//! trusts (`hsmsign expiry`, `cert list --expiring`).
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{Pki, expect_failure, stderr, stdout};

fn issue_signing(pki: &Pki, key: &str, subject: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "signing",
        "--key",
        key,
        "--subject",
        subject,
    ];
    args.extend_from_slice(extra);
    pki.run(&args)
}

#[test]
fn a_second_key_under_a_trusted_dn_is_refused_unless_allowed() {
    let pki = Pki::new();
    pki.hsm.init_token("Operator");
    let alice = pki.hsm.key("Operator", "alice", "ec-p256");
    let alice2 = pki.hsm.key("Operator", "alice-2027", "ec-p256");
    let out = issue_signing(&pki, &alice, "CN=alice, O=SOS", &["--out", "alice.pem"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The output says which certificate goes into trusted-x509-keys.
    let text = stdout(&out);
    assert!(text.contains("bundle trusted-keys --ca issuing"), "{text}");
    assert!(text.contains("direct issuer"), "{text}");

    // The same key again (a renewal) is no clash.
    let out = issue_signing(&pki, &alice, "CN=alice, O=SOS", &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Another key under the same DN (also differently spaced and cased) is refused, and
    // nothing is recorded.
    let before = pki.counts();
    for dn in ["CN=alice, O=SOS", "cn=Alice,  o=sos"] {
        let out = issue_signing(&pki, &alice2, dn, &["--out", "alice-2027.pem"]);
        expect_failure(
            &out,
            &[dn],
            1,
            &[
                "trusted-x509-keys",
                "--allow-duplicate-dn",
                "signing certificate",
            ],
        );
    }
    assert!(!pki.path("alice-2027.pem").exists());
    assert_eq!(pki.counts().1, before.1);

    // A distinct DN is the way; --allow-duplicate-dn issues with a warning.
    let out = issue_signing(&pki, &alice2, "CN=alice, OU=2027, O=SOS", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = issue_signing(&pki, &alice2, "CN=alice, O=SOS", &["--allow-duplicate-dn"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("remove the older certificate"),
        "{}",
        stderr(&out)
    );

    // A CA with the DN of an existing CA, for another key, is refused too.
    pki.hsm.key("CA", "issuing-2", "ec-p256");
    pki.fails(
        &[
            "ca",
            "intermediate",
            "--name",
            "issuing-2",
            "--issuer",
            "root",
            "--key",
            "pkcs11:token=CA;object=issuing-2",
            "--subject",
            "CN=Test Issuing CA, O=SOS, C=DE",
        ],
        1,
        &["CA \"issuing\""],
    );
}

#[test]
fn revoked_holders_and_tls_renewals_do_not_block() {
    let pki = Pki::new();
    pki.hsm.init_token("Operator");
    let bob = pki.hsm.key("Operator", "bob", "ec-p256");
    let bob2 = pki.hsm.key("Operator", "bob-new", "ec-p256");
    let out = issue_signing(&pki, &bob, "CN=bob, O=SOS", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let serial = pki.json(&["cert", "list", "--ca", "issuing"])["certificates"][0]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(out.status.success());
    pki.ok(&[
        "cert",
        "revoke",
        "--ca",
        "issuing",
        "--serial",
        &serial,
        "--reason",
        "superseded",
    ]);
    let out = issue_signing(&pki, &bob2, "CN=bob, O=SOS", &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    // An instance's TLS key renewed under the same DN keeps private.conf's distinguished-names:
    // allowed, with a notice to revoke the old certificate.
    for n in ["old", "new"] {
        pki.openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &format!("{n}.key"),
        ]);
        let (ok, err) = pki.openssl(&[
            "req",
            "-new",
            "-key",
            &format!("{n}.key"),
            "-subj",
            "/CN=controller.example",
            "-out",
            &format!("{n}.csr"),
        ]);
        assert!(ok, "{err}");
    }
    let tls = |csr: &str| {
        pki.run(&[
            "cert",
            "issue",
            "--ca",
            "issuing",
            "--profile",
            "server-client",
            "--csr",
            csr,
            "--san",
            "DNS:controller.example",
        ])
    };
    assert!(tls("old.csr").status.success());
    let out = tls("new.csr");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("TLS key is renewed"),
        "{}",
        stderr(&out)
    );
}

fn export_zip(path: &std::path::Path) {
    common::write_zip(
        path,
        &[
            (
                "meta_inf",
                &br#"{"jocVersion":"2.7.2","versionId":"9a1"}"#[..],
            ),
            (
                "Ops/eod.workflow.json",
                &br#"{"TYPE":"Workflow","instructions":[]}"#[..],
            ),
        ],
    );
}

#[test]
fn trusted_keys_directory_is_what_a_controller_needs() {
    let pki = Pki::new();
    pki.hsm.init_token("Operator");
    let key = pki.hsm.key("Operator", "carol", "ec-p256");
    pki.signing_cert(&key, "CN=carol, O=SOS", "carol.pem");
    export_zip(&pki.path("export.zip"));
    pki.ok(&[
        "archive",
        "sign",
        "--key",
        &key,
        "--cert",
        "carol.pem",
        "--in",
        "export.zip",
        "--out",
        "signed.zip",
    ]);
    let doc = pki.json(&[
        "bundle",
        "trusted-keys",
        "--ca",
        "issuing",
        "--out",
        "trusted",
    ]);
    assert_eq!(doc["files"][0]["file"], "issuing.pem", "{doc}");
    let file = pki.path("trusted/issuing.pem");
    // Exactly one certificate per file, and it is the issuing CA's.
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 1);
    let (ok, subject) = pki.openssl(&["x509", "-in", "trusted/issuing.pem", "-noout", "-subject"]);
    assert!(ok && subject.contains("Test Issuing CA"), "{subject}");
    // A Controller with that directory accepts the operator's archive.
    let out = pki.run(&[
        "archive",
        "verify",
        "--in",
        "signed.zip",
        "--cert",
        "carol.pem",
        "--trusted",
        "trusted",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // Never overwritten without --force; a second certificate for a DN already there is refused.
    pki.fails(
        &[
            "bundle",
            "trusted-keys",
            "--ca",
            "issuing",
            "--out",
            "trusted",
        ],
        1,
        &[],
    );
    pki.ok(&[
        "bundle",
        "trusted-keys",
        "--ca",
        "issuing",
        "--out",
        "trusted",
        "--force",
    ]);
    std::fs::rename(
        pki.path("trusted/issuing.pem"),
        pki.path("trusted/old-issuing.pem"),
    )
    .unwrap();
    pki.hsm.key("CA", "other", "ec-p256");
    let out = pki.run(&[
        "ca",
        "intermediate",
        "--name",
        "issuing-b",
        "--issuer",
        "root",
        "--key",
        "pkcs11:token=CA;object=other",
        "--subject",
        "CN=Test Issuing CA, O=SOS, C=DE",
        "--allow-duplicate-dn",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    pki.fails(
        &[
            "bundle",
            "trusted-keys",
            "--ca",
            "issuing-b",
            "--out",
            "trusted",
        ],
        1,
        &["only one certificate per subject DN"],
    );
    assert!(!pki.path("trusted/issuing-b.pem").exists());
    // Two CAs of one DN in one run: refused before anything is written.
    pki.fails(
        &[
            "bundle",
            "trusted-keys",
            "--ca",
            "issuing",
            "--ca",
            "issuing-b",
            "--out",
            "fresh",
        ],
        1,
        &[],
    );
    assert!(!pki.path("fresh/issuing.pem").exists());
}

/// A CA certificate valid from 2020 to 2021 for a key imported into the CA token.
fn expired_ca(pki: &Pki) {
    let dir = pki.path("oldca");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.txt"), b"").unwrap();
    std::fs::write(dir.join("serial"), b"1000\n").unwrap();
    std::fs::write(
        pki.path("oldca.cnf"),
        format!(
            "[ca]\ndefault_ca = c\n[c]\ndatabase = {d}/index.txt\nnew_certs_dir = {d}\nserial = {d}/serial\n\
             default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::write(
        pki.path("oldca.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
    )
    .unwrap();
    for args in [
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "old.key",
        ][..],
        &[
            "req",
            "-new",
            "-key",
            "old.key",
            "-subj",
            "/CN=Old Root CA",
            "-out",
            "old.csr",
        ],
        &[
            "ca",
            "-batch",
            "-selfsign",
            "-config",
            "oldca.cnf",
            "-keyfile",
            "old.key",
            "-in",
            "old.csr",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20210101000000Z",
            "-extfile",
            "oldca.ext",
            "-notext",
            "-out",
            "old.pem",
        ],
    ] {
        let (ok, err) = pki.openssl(args);
        assert!(ok, "{err}");
    }
    pki.ok(&[
        "key",
        "import",
        "--key",
        "pkcs11:token=CA;object=old-root",
        "--from",
        "old.key",
    ]);
    let out = pki.run(&[
        "ca",
        "import",
        "--name",
        "old-root",
        "--cert",
        "old.pem",
        "--key",
        "pkcs11:token=CA;object=old-root",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn expiry_reports_what_ends_and_what_breaks() {
    let pki = Pki::new();
    // Root (20 years) and intermediate (10 years): nothing within 90 days.
    let out = pki.run(&["expiry"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Nothing ends within 90 day(s)"),
        "{}",
        stdout(&out)
    );

    pki.hsm.init_token("Operator");
    let key = pki.hsm.key("Operator", "dave", "ec-p256");
    let out = issue_signing(&pki, &key, "CN=dave, O=SOS", &["--days", "10"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = issue_signing(
        &pki,
        &pki.hsm.key("Operator", "erin", "ec-p256"),
        "CN=erin, O=SOS",
        &["--days", "200"],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // The 10-day certificate is within 30 days: listed, exit status 4, with what breaks.
    let out = pki.run(&["expiry", "--within", "30d"]);
    expect_failure(&out, &["expiry"], 4, &["attention"]);
    let text = stdout(&out);
    assert!(
        text.contains("CN=dave") && !text.contains("CN=erin"),
        "{text}"
    );
    assert!(
        text.contains("9 day(s) left") || text.contains("10 day(s) left"),
        "{text}"
    );
    assert!(
        text.contains("2.7.6") && text.contains("allow-expired-certificates"),
        "{text}"
    );
    // A shorter window: nothing due.
    let out = pki.run(&["expiry", "--within", "5d"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // --json: the same table on stdout, with the exit status.
    let out = pki.run(&["--json", "expiry", "--within", "300d"]);
    assert_eq!(out.status.code(), Some(4));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["due"], 2, "{doc}");
    assert_eq!(doc["certificates"][0]["role"], "signing", "{doc}");
    assert_eq!(doc["certificates"][0]["expired"], false, "{doc}");

    // cert list --expiring filters the list the same way.
    let doc = pki.json(&["cert", "list", "--expiring", "30d"]);
    let listed = doc["certificates"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{doc}");
    assert!(listed[0]["subject"].as_str().unwrap().contains("dave"));
    assert_eq!(
        pki.json(&["cert", "list", "--expiring", "5"])["certificates"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    pki.fails(&["cert", "list", "--expiring", "soon"], 2, &["soon"]);

    // A CA past its end: reported as expired even with a short window.
    expired_ca(&pki);
    let out = pki.run(&["--json", "expiry", "--within", "1d"]);
    expect_failure(&out, &["expiry"], 4, &[]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let old = &doc["certificates"][0];
    assert_eq!(old["name"], "old-root", "{doc}");
    assert_eq!(old["expired"], true);
    assert_eq!(old["role"], "root-ca");
    assert!(old["days_left"].as_i64().unwrap() < -365, "{doc}");
}
