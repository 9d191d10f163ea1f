//! Key bundles (`cert issue --generate-key`), truststores and JS7 config snippets, read back by
//! `openssl pkcs12` and the JVM's `keytool` (JS7 reads its keystores through the JVM).

mod common;

use common::{Pki, stderr};

#[test]
fn generated_key_bundle_loads_in_openssl_and_keytool() {
    let pki = Pki::new();
    std::fs::write(pki.path("p12pass"), "correct horse battery\n").unwrap();
    let v = pki.json(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "server-client",
        "--generate-key",
        "ec-p256",
        "--subject",
        "CN=agent1.example, O=SOS",
        "--san",
        "DNS:agent1.example",
        "--pkcs12",
        "agent1.p12",
        "--p12-password-source",
        &format!("file:{}", pki.path("p12pass").display()),
        "--out",
        "agent1.pem",
    ]);
    assert_eq!(v["profile"], "server-client");
    let (ok, out) = pki.openssl(&[
        "pkcs12",
        "-in",
        "agent1.p12",
        "-info",
        "-noout",
        "-passin",
        "pass:correct horse battery",
    ]);
    assert!(ok, "{out}");
    // Key + leaf + 2 CA certificates, and the key belongs to the leaf.
    let (ok, pem) = pki.openssl(&[
        "pkcs12",
        "-in",
        "agent1.p12",
        "-nodes",
        "-passin",
        "pass:correct horse battery",
    ]);
    assert!(ok, "{pem}");
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 3, "{pem}");
    assert_eq!(pem.matches("BEGIN PRIVATE KEY").count(), 1, "{pem}");
    std::fs::write(pki.path("bundle-out.pem"), &pem).unwrap();
    let (_, from_key) = pki.openssl(&["pkey", "-in", "bundle-out.pem", "-pubout"]);
    let (_, from_cert) = pki.openssl(&["x509", "-in", "agent1.pem", "-noout", "-pubkey"]);
    assert_eq!(from_key, from_cert);
    let (ok, list) = pki.hsm.tool(
        "keytool",
        &[
            "-list",
            "-v",
            "-storetype",
            "PKCS12",
            "-keystore",
            "agent1.p12",
            "-storepass",
            "correct horse battery",
        ],
    );
    assert!(ok, "{list}");
    assert!(list.contains("PrivateKeyEntry"), "{list}");
    assert!(list.contains("Certificate chain length: 3"), "{list}");
    // A wrong password fails cleanly in both.
    let (ok, _) = pki.openssl(&[
        "pkcs12",
        "-in",
        "agent1.p12",
        "-info",
        "-noout",
        "-passin",
        "pass:wrong",
    ]);
    assert!(!ok);
    let (ok, _) = pki.hsm.tool(
        "keytool",
        &[
            "-list",
            "-storetype",
            "PKCS12",
            "-keystore",
            "agent1.p12",
            "-storepass",
            "wrong",
        ],
    );
    assert!(!ok);
    // The private key was never written anywhere else.
    let names: Vec<String> = std::fs::read_dir(pki.hsm.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".key") && n.starts_with("agent1")),
        "{names:?}"
    );
}

#[test]
fn missing_bundle_password_stops_before_anything_is_issued() {
    let pki = Pki::new();
    let before = pki.counts();
    let out = pki.run(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "client",
        "--generate-key",
        "ec-p256",
        "--subject",
        "CN=x",
        "--pkcs12",
        "x.p12",
        "--p12-password-source",
        "env:HSMSIGN_TEST_UNSET",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("HSMSIGN_TEST_UNSET"),
        "{}",
        stderr(&out)
    );
    assert!(!pki.path("x.p12").exists());
    assert_eq!(before.1, pki.counts().1);
    let out = pki.run(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "client",
        "--generate-key",
        "ec-p256",
        "--subject",
        "CN=x",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn truststores_pem_and_pkcs12() {
    let pki = Pki::new();
    std::fs::write(pki.path("tspass"), "trust-me").unwrap();
    pki.ok(&[
        "bundle",
        "truststore",
        "--ca",
        "root",
        "--ca",
        "issuing",
        "--out",
        "trust.pem",
    ]);
    let (ok, out) = pki.openssl(&["verify", "-CAfile", "trust.pem", "issuing.pem"]);
    assert!(ok, "{out}");
    pki.ok(&[
        "bundle",
        "truststore",
        "--ca",
        "root",
        "--ca",
        "issuing",
        "--out",
        "https-truststore.p12",
        "--pkcs12",
        "--password-source",
        &format!("file:{}", pki.path("tspass").display()),
    ]);
    let (ok, list) = pki.hsm.tool(
        "keytool",
        &[
            "-list",
            "-storetype",
            "PKCS12",
            "-keystore",
            "https-truststore.p12",
            "-storepass",
            "trust-me",
        ],
    );
    assert!(ok, "{list}");
    assert_eq!(list.matches("trustedCertEntry").count(), 2, "{list}");
    let (ok, out) = pki.openssl(&[
        "pkcs12",
        "-in",
        "https-truststore.p12",
        "-nokeys",
        "-passin",
        "pass:trust-me",
    ]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("BEGIN CERTIFICATE").count(), 2);
}

#[test]
fn js7_config_names_the_subject_as_the_jvm_prints_it() {
    let pki = Pki::new();
    pki.hsm
        .openssl_req("c", "/C=DE/O=SOS/OU=IT/CN=controller-1", false, &[]);
    pki.ok(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "server-client",
        "--csr",
        "c.csr",
        "--san",
        "DNS:controller-1.example",
        "--out",
        "c.pem",
    ]);
    let v = pki.json(&["bundle", "js7-config", "--cert", "c.pem"]);
    let (_, subject) = pki.openssl(&[
        "x509", "-in", "c.pem", "-noout", "-subject", "-nameopt", "RFC2253",
    ]);
    let rfc2253 = subject.trim().trim_start_matches("subject=");
    assert_eq!(
        v["distinguished_name"].as_str().unwrap().replace(", ", ","),
        rfc2253
    );
    let conf = v["private_conf"].as_str().unwrap();
    assert!(
        conf.contains("https-keystore.p12") && conf.contains("https-truststore.p12"),
        "{conf}"
    );
    assert!(conf.contains("distinguished-names"), "{conf}");
}
