//! `hsmsign cert ...`: certificates for JOC Cockpit, Controllers, Agents and operators,
//! checked with openssl (verify, x509 -text, a real mutual-TLS handshake on 127.0.0.1).
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::{Pki, stderr};

fn csr(pki: &Pki, name: &str, newkey: &[&str], cn: &str) {
    let mut args = vec!["req", "-new", "-nodes", "-keyout"];
    let key = format!("{name}.key");
    let out = format!("{name}.csr");
    let subj = format!("/CN={cn}/O=SOS");
    args.push(&key);
    args.extend_from_slice(newkey);
    args.extend_from_slice(&["-subj", &subj, "-out", &out]);
    let (ok, o) = pki.openssl(&args);
    assert!(ok, "{o}");
}

const P256: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
const P384: &[&str] = &[
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-384",
    "-sha256",
];
const RSA2048: &[&str] = &["-newkey", "rsa:2048"];

fn verify_purpose(pki: &Pki, cert: &str, purpose: &str) -> bool {
    pki.openssl(&[
        "verify",
        "-x509_strict",
        "-purpose",
        purpose,
        "-CAfile",
        "bundle.pem",
        cert,
    ])
    .0
}

#[test]
fn every_profile_from_openssl_csrs() {
    let pki = Pki::new();
    for (name, newkey) in [("p256", P256), ("p384", P384), ("rsa", RSA2048)] {
        csr(&pki, name, newkey, &format!("{name}.example"));
        for (profile, server, client) in [
            ("server", true, false),
            ("client", false, true),
            ("server-client", true, true),
            ("signing", false, false),
        ] {
            let out = format!("{name}-{profile}.pem");
            let mut args = vec![
                "cert",
                "issue",
                "--ca",
                "issuing",
                "--profile",
                profile,
                "--csr",
            ];
            let csr_file = format!("{name}.csr");
            args.push(&csr_file);
            let san = format!("DNS:{name}.example,IP:127.0.0.1");
            if profile.starts_with("server") {
                args.extend_from_slice(&["--san", &san]);
            }
            args.extend_from_slice(&["--out", &out]);
            pki.ok(&args);
            assert_eq!(
                verify_purpose(&pki, &out, "sslserver"),
                server,
                "{out} sslserver"
            );
            assert_eq!(
                verify_purpose(&pki, &out, "sslclient"),
                client,
                "{out} sslclient"
            );
            let (ok, text) = pki.openssl(&["x509", "-in", &out, "-noout", "-text"]);
            assert!(ok);
            assert!(
                text.contains("X509v3 Basic Constraints: critical\n                CA:FALSE"),
                "{text}"
            );
            let ku = match (profile, name) {
                ("signing", _) => "Digital Signature, Non Repudiation",
                ("server" | "server-client", "rsa") => "Digital Signature, Key Encipherment",
                _ => "Digital Signature",
            };
            assert!(
                text.contains(&format!(
                    "X509v3 Key Usage: critical\n                {ku}\n"
                )),
                "{profile}/{name}: {text}"
            );
            let eku = match profile {
                "server" => "TLS Web Server Authentication\n",
                "client" => "TLS Web Client Authentication\n",
                "server-client" => "TLS Web Server Authentication, TLS Web Client Authentication\n",
                _ => "Code Signing\n",
            };
            assert!(text.contains(eku), "{profile}: {text}");
            assert_eq!(
                text.contains("DNS:"),
                profile.starts_with("server"),
                "{text}"
            );
            // The certified key is the CSR's key (no re-keying, also for P-384 signed with SHA-256).
            let (_, a) = pki.openssl(&["x509", "-in", &out, "-noout", "-pubkey"]);
            let (_, b) = pki.openssl(&["pkey", "-in", &format!("{name}.key"), "-pubout"]);
            assert_eq!(a, b);
        }
    }
    let list = pki.json(&["cert", "list", "--ca", "issuing"]);
    assert_eq!(list["certificates"].as_array().unwrap().len(), 12);
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One TLS connection on 127.0.0.1 between `openssl s_server` (requiring a client certificate
/// from the CA bundle) and `openssl s_client`. Returns whether the server received the client's
/// data over a verified connection, and what both said.
fn handshake(
    pki: &Pki,
    server_cert: &str,
    server_key: &str,
    client_cert: &str,
    client_key: &str,
) -> (bool, String) {
    let port = free_port();
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            server_cert,
            "-key",
            server_key,
            "-CAfile",
            "bundle.pem",
            "-Verify",
            "2",
            "-verify_return_error",
            "-naccept",
            "1",
        ])
        .current_dir(pki.hsm.dir.path())
        // s_server stops at EOF on its standard input: keep it open.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server_out = BufReader::new(server.stdout.take().unwrap());
    let mut seen = String::new();
    // s_server prints ACCEPT once it listens.
    while !seen.contains("ACCEPT") {
        let mut line = String::new();
        if server_out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
    }
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
            "-cert",
            client_cert,
            "-key",
            client_key,
            "-CAfile",
            "bundle.pem",
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
            "-brief",
        ])
        .current_dir(pki.hsm.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = client
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello-from-the-client\n");
    let client_out = client.wait_with_output().unwrap();
    // With -naccept 1 the server ends after this connection.
    drop(server.stdin.take());
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut server_out, &mut rest);
    let _ = server.kill();
    let server_done = server.wait_with_output().unwrap();
    let text = format!(
        "server:\n{seen}{rest}{}\nclient:\n{}{}",
        String::from_utf8_lossy(&server_done.stderr),
        String::from_utf8_lossy(&client_out.stdout),
        String::from_utf8_lossy(&client_out.stderr)
    );
    (rest.contains("hello-from-the-client"), text)
}

#[test]
fn mutual_tls_handshake_on_loopback() {
    let pki = Pki::new();
    csr(&pki, "controller", P256, "controller");
    pki.ok(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "server-client",
        "--csr",
        "controller.csr",
        "--san",
        "DNS:localhost,IP:127.0.0.1",
        "--out",
        "controller.pem",
    ]);
    csr(&pki, "joc", P384, "joc");
    pki.ok(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "client",
        "--csr",
        "joc.csr",
        "--out",
        "joc.pem",
    ]);
    // The server presents its chain: leaf + issuing CA.
    let leaf = std::fs::read_to_string(pki.path("controller.pem")).unwrap();
    let issuing = std::fs::read_to_string(pki.path("issuing.pem")).unwrap();
    std::fs::write(pki.path("controller-chain.pem"), format!("{leaf}{issuing}")).unwrap();
    let joc_leaf = std::fs::read_to_string(pki.path("joc.pem")).unwrap();
    std::fs::write(pki.path("joc-chain.pem"), format!("{joc_leaf}{issuing}")).unwrap();
    let (ok, text) = handshake(
        &pki,
        "controller-chain.pem",
        "controller.key",
        "joc-chain.pem",
        "joc.key",
    );
    assert!(ok, "{text}");
    // A client certificate from a foreign CA is refused.
    pki.hsm.openssl_req("foreign", "/CN=foreign", true, &[]);
    let (ok, text) = handshake(
        &pki,
        "controller-chain.pem",
        "controller.key",
        "foreign.pem",
        "foreign.key",
    );
    assert!(!ok, "a foreign client certificate must fail: {text}");
}

#[test]
fn operator_signing_certificate_for_a_key_on_a_second_token() {
    let pki = Pki::new();
    pki.hsm.init_token("Operator");
    let uri = pki.hsm.key("Operator", "signing", "ec-p256");
    let v = pki.json(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "signing",
        "--key",
        &uri,
        "--subject",
        "CN=Alice Operator, O=SOS",
        "--out",
        "alice.pem",
        "--chain-out",
        "alice-chain.pem",
    ]);
    assert_eq!(v["profile"], "signing");
    assert_eq!(v["status"], "valid");
    let (ok, out) = pki.openssl(&["verify", "-CAfile", "alice-chain.pem", "alice.pem"]);
    assert!(
        ok,
        "the --chain-out bundle must verify the certificate: {out}"
    );
    let (ok, out) = pki.openssl(&["verify", "-CAfile", "bundle.pem", "alice.pem"]);
    assert!(ok, "{out}");
    let pubkey = pki.ok(&["key", "public", "--key", &uri]);
    let (_, certkey) = pki.openssl(&["x509", "-in", "alice.pem", "-noout", "-pubkey"]);
    assert_eq!(pubkey.trim(), certkey.trim());
    let shown = pki.json(&["cert", "show", "--serial", v["serial"].as_str().unwrap()]);
    assert_eq!(shown["subject"], "CN=Alice Operator,O=SOS");
}

#[test]
fn bad_requests_give_clear_errors_and_no_row() {
    let pki = Pki::new();
    std::fs::write(pki.path("garbage.csr"), b"\x00\x01not a csr at all").unwrap();
    csr(&pki, "good", P256, "good");
    // PEM of the wrong type: a certificate given as CSR.
    // Tampered CSR: one byte of the signature flipped.
    let (ok, _) = pki.openssl(&[
        "req", "-in", "good.csr", "-outform", "DER", "-out", "good.der",
    ]);
    assert!(ok);
    let mut der = std::fs::read(pki.path("good.der")).unwrap();
    let n = der.len();
    der[n - 5] ^= 0x01;
    std::fs::write(pki.path("tampered.der"), der).unwrap();
    csr(&pki, "rsa1024", &["-newkey", "rsa:1024"], "weak");
    csr(
        &pki,
        "k1",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
        "k1",
    );
    pki.hsm.openssl_req(
        "ca",
        "/CN=sneaky",
        false,
        &["-addext", "basicConstraints=critical,CA:TRUE"],
    );
    let before = pki.counts();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--csr", "garbage.csr"], 1, "garbage.csr"),
        (
            &["--csr", "root.pem"],
            1,
            "holds a certificate, not a certificate signing request",
        ),
        (
            &["--csr", "tampered.der"],
            1,
            "does not verify against its own public key",
        ),
        (&["--csr", "rsa1024.csr"], 1, "RSA-1024"),
        (&["--csr", "k1.csr"], 1, "secp256k1"),
        (&["--csr", "ca.csr"], 1, "asks for a CA certificate"),
        (
            &["--csr", "good.csr", "--san", "DNS:not a host"],
            1,
            "--san",
        ),
        (&["--csr", "good.csr", "--days", "100000"], 1, "maximum"),
        (
            &["--csr", "good.csr", "--out", "root.pem"],
            1,
            "already exists",
        ),
        (
            &["--key", "pkcs11:token=CA;object=issuing-key"],
            2,
            "--subject",
        ),
    ];
    for (extra, code, needle) in cases {
        let mut args = vec!["cert", "issue", "--ca", "issuing", "--profile", "client"];
        args.extend_from_slice(extra);
        let out = pki.run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: want {needle:?} in {err}");
    }
    // server profile without any SAN.
    let out = pki.run(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "server",
        "--csr",
        "good.csr",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("subject alternative name"),
        "{}",
        stderr(&out)
    );
    assert_eq!(before.1, pki.counts().1, "no certificate row may appear");
}

#[test]
fn validity_past_the_issuer_is_refused_or_capped_with_a_notice() {
    let hsm = common::Hsm::with_token("CA");
    hsm.key("CA", "root-key", "ec-p256");
    let state = hsm.path("state");
    let st = state.to_str().unwrap();
    hsm.ok(&[
        "--state",
        st,
        "ca",
        "init",
        "--name",
        "root",
        "--key",
        "pkcs11:token=CA;object=root-key",
        "--subject",
        "CN=Short Root",
        "--days",
        "30",
    ]);
    hsm.openssl_req("c", "/CN=c", false, &[]);
    // Explicitly asking for more than the CA has left is refused, with no row.
    let out = hsm.run(&[
        "--state",
        st,
        "cert",
        "issue",
        "--ca",
        "root",
        "--profile",
        "client",
        "--csr",
        "c.csr",
        "--days",
        "365",
        "--out",
        "c.pem",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("past the end of CA"),
        "{}",
        stderr(&out)
    );
    assert!(!hsm.path("c.pem").exists());
    // The default validity (2 years) is cut to the CA's end, with a notice.
    let out = hsm.run(&[
        "--state",
        st,
        "cert",
        "issue",
        "--ca",
        "root",
        "--profile",
        "client",
        "--csr",
        "c.csr",
        "--out",
        "c.pem",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("validity shortened"),
        "{}",
        stderr(&out)
    );
    // The certificate ends exactly when its issuer does, not a year from now.
    hsm.ok(&[
        "--state", st, "ca", "export", "--name", "root", "--out", "root.pem",
    ]);
    let (_, leaf) = hsm.tool("openssl", &["x509", "-in", "c.pem", "-noout", "-enddate"]);
    let (_, root) = hsm.tool(
        "openssl",
        &["x509", "-in", "root.pem", "-noout", "-enddate"],
    );
    assert_eq!(leaf, root);
}
