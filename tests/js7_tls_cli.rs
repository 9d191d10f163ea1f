//! The key bundle and the private.conf lines agree: a Controller and an Agent configured only
//! from `bundle js7-config` snippets complete a mutual-TLS handshake in the JVM (JS7's own
//! runtime), each finding its key under the configured alias and the peer's DN in the snippet.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{Pki, stderr, stdout};

/// Issue `name`'s key bundle and certificate into `name/private/`, and its truststore.
fn instance(pki: &Pki, name: &str, cn: &str) {
    std::fs::create_dir_all(pki.path(&format!("{name}/private"))).unwrap();
    pki.ok(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "server-client",
        "--generate-key",
        "ec-p256",
        "--subject",
        &format!("CN={cn}, O=SOS, C=DE"),
        "--san",
        "DNS:localhost,IP:127.0.0.1",
        "--pkcs12",
        &format!("{name}/private/https-keystore.p12"),
        "--p12-password-source",
        "file:keystore-password",
        "--out",
        &format!("{name}.pem"),
    ]);
    pki.ok(&[
        "bundle",
        "truststore",
        "--ca",
        "root",
        "--ca",
        "issuing",
        "--pkcs12",
        "--password-source",
        "file:truststore-password",
        "--out",
        &format!("{name}/private/https-truststore.p12"),
    ]);
}

/// The snippet for `name`, with the placeholders replaced as the operator does.
fn snippet(pki: &Pki, name: &str, role: &str, extra: &[&str]) -> String {
    let mut args = vec!["bundle", "js7-config", "--cert"];
    let cert = format!("{name}.pem");
    args.push(&cert);
    args.extend(["--role", role]);
    args.extend_from_slice(extra);
    let text = pki.ok(&args);
    let filled = text
        .replace("<KEYSTORE-PASSWORD>", "keystore secret")
        .replace("<TRUSTSTORE-PASSWORD>", "truststore secret")
        .replace("<CONTROLLER-ID>", "controller")
        .replace("<SUBAGENT-ID>", "agent");
    let file = pki.path(&format!("{name}.conf"));
    std::fs::write(&file, filled).unwrap();
    file.display().to_string()
}

fn handshake(
    pki: &Pki,
    server: &str,
    server_conf: &str,
    client: &str,
    client_conf: &str,
) -> (bool, String) {
    let dir = |n: &str| format!("{}/{n}/", pki.path("").display());
    let java = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/Js7Tls.java");
    let out = std::process::Command::new("java")
        .args([java, &dir(server), server_conf, &dir(client), client_conf])
        .output()
        .unwrap();
    (
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

#[test]
fn controller_and_agent_handshake_from_the_snippets_alone() {
    let pki = Pki::new();
    std::fs::write(pki.path("keystore-password"), "keystore secret\n").unwrap();
    std::fs::write(pki.path("truststore-password"), "truststore secret\n").unwrap();
    instance(&pki, "controller", "controller.example");
    instance(&pki, "agent", "Agent.Example");
    // The defaults agree: the bundle's key is under the alias the snippet names.
    let ctl = snippet(&pki, "controller", "controller", &[]);
    let agent = snippet(&pki, "agent", "agent", &[]);
    assert!(
        std::fs::read_to_string(&ctl)
            .unwrap()
            .contains("alias=\"https\"")
    );
    let (ok, out) = handshake(&pki, "agent", &agent, "controller", &ctl);
    assert!(ok, "{out}");
    assert!(
        out.contains("handshake ok") && out.contains("KNOWN CN=controller.example"),
        "{out}"
    );
    assert!(!out.contains("UNKNOWN"), "{out}");

    // --keystore reads the alias from the bundle itself (and checks it holds --cert's key).
    let from_bundle = snippet(
        &pki,
        "controller",
        "controller",
        &[
            "--keystore",
            "controller/private/https-keystore.p12",
            "--password-source",
            "file:keystore-password",
        ],
    );
    let (ok, out) = handshake(&pki, "controller", &from_bundle, "agent", &agent);
    assert!(ok, "{out}");
    let out = pki.run(&[
        "bundle",
        "js7-config",
        "--cert",
        "agent.pem",
        "--keystore",
        "controller/private/https-keystore.p12",
        "--password-source",
        "file:keystore-password",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("another certificate"),
        "{}",
        stderr(&out)
    );

    // An alias the keystore does not hold fails the way JS7 fails, and an upper-case alias (which
    // the JVM would never find) is refused when the snippet is made.
    let wrong = snippet(&pki, "controller", "controller", &["--alias", "controller"]);
    let (ok, out) = handshake(&pki, "agent", &agent, "controller", &wrong);
    assert!(!ok && out.contains("Unknown alias=controller"), "{out}");
    let out = pki.run(&[
        "bundle",
        "js7-config",
        "--cert",
        "agent.pem",
        "--alias",
        "HTTPS",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("upper-case"), "{}", stderr(&out));
}
