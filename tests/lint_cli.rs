//! Every kind of certificate and CRL hsmsign makes, checked by an independent RFC 5280 linter:
//! pkilint (installed by scripts/setup.sh into a private virtualenv). Findings of WARNING and
//! above fail the test; pkilint's INFO notes (such as which RFC 7093 method made the key
//! identifier) do not.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use std::path::PathBuf;

use common::{Pki, stderr};

/// The pkilint virtualenv scripts/setup.sh makes (or `HSMSIGN_PKILINT_BIN`, its bin directory).
fn pkilint(tool: &str) -> PathBuf {
    let bin = match std::env::var_os("HSMSIGN_PKILINT_BIN") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
            cache.join("hsmsign/pkilint-0.13.3/bin")
        }
    };
    let path = bin.join(tool);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/setup.sh (it installs pkilint from PyPI), or set HSMSIGN_PKILINT_BIN",
        path.display()
    );
    path
}

fn lint(pki: &Pki, tool: &str, args: &[&str]) {
    let path = pkilint(tool);
    let (ok, out) = pki.hsm.tool(path.to_str().unwrap(), args);
    assert!(ok && out.trim().is_empty(), "{tool} {args:?} found:\n{out}");
}

fn issue(pki: &Pki, args: &[&str]) {
    let mut all = vec!["cert", "issue", "--ca", "issuing"];
    all.extend_from_slice(args);
    let out = pki.run(&all);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
}

fn lint_everything(pki: &Pki) {
    let (ok, err) = pki.openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "i.key",
    ]);
    assert!(ok, "{err}");
    let (ok, err) = pki.openssl(&[
        "req",
        "-new",
        "-key",
        "i.key",
        "-subj",
        "/CN=instance.example",
        "-out",
        "i.csr",
    ]);
    assert!(ok, "{err}");
    issue(
        pki,
        &[
            "--profile",
            "server-client",
            "--csr",
            "i.csr",
            "--san",
            "DNS:instance.example,IP:127.0.0.1",
            "--out",
            "server-client.pem",
        ],
    );
    issue(
        pki,
        &[
            "--profile",
            "server",
            "--csr",
            "i.csr",
            "--subject",
            "CN=joc.example, O=SOS",
            "--san",
            "DNS:joc.example",
            "--out",
            "server.pem",
        ],
    );
    issue(
        pki,
        &[
            "--profile",
            "client",
            "--csr",
            "i.csr",
            "--subject",
            "CN=client.example, O=SOS",
            "--out",
            "client.pem",
        ],
    );
    pki.hsm.init_token("Operator");
    let ec = pki.hsm.key("Operator", "op-ec", "ec-p384");
    let rsa = pki.hsm.key("Operator", "op-rsa", "rsa-3072");
    issue(
        pki,
        &[
            "--profile",
            "signing",
            "--key",
            &ec,
            "--subject",
            "CN=Operator EC, O=SOS",
            "--out",
            "signing-ec.pem",
        ],
    );
    issue(
        pki,
        &[
            "--profile",
            "signing",
            "--key",
            &rsa,
            "--subject",
            "CN=Operator RSA, O=SOS",
            "--out",
            "signing-rsa.pem",
        ],
    );
    // A revoked certificate, so the CRL has an entry with a reason.
    let serial = pki.json(&["cert", "list", "--ca", "issuing"])["certificates"][0]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    pki.ok(&[
        "cert",
        "revoke",
        "--ca",
        "issuing",
        "--serial",
        &serial,
        "--reason",
        "keyCompromise",
    ]);
    pki.ok(&["crl", "generate", "--ca", "issuing", "--out", "issuing.crl"]);
    pki.ok(&["crl", "generate", "--ca", "root", "--out", "root.crl"]);

    for cert in [
        "root",
        "issuing",
        "server-client",
        "server",
        "client",
        "signing-ec",
        "signing-rsa",
    ] {
        lint(
            pki,
            "lint_pkix_cert",
            &["lint", "-s", "WARNING", &format!("{cert}.pem")],
        );
    }
    for (issuer, subject) in [
        ("root", "issuing"),
        ("issuing", "server-client"),
        ("issuing", "server"),
        ("issuing", "client"),
        ("issuing", "signing-ec"),
        ("issuing", "signing-rsa"),
    ] {
        lint(
            pki,
            "lint_pkix_signer_signee_cert_chain",
            &[
                "lint",
                "-s",
                "WARNING",
                &format!("{issuer}.pem"),
                &format!("{subject}.pem"),
            ],
        );
    }
    for crl in ["issuing.crl", "root.crl"] {
        lint(
            pki,
            "lint_crl",
            &["lint", "-t", "CRL", "-p", "PKIX", "-s", "WARNING", crl],
        );
    }
}

/// The linter is live: a CA certificate made by openssl with non-critical basicConstraints and
/// keyUsage is reported (so a clean report on ours means something).
#[test]
fn pkilint_reports_a_faulty_ca_certificate() {
    let pki = Pki::new();
    for args in [
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "bad.key",
        ][..],
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "bad.key",
            "-subj",
            "/CN=bad",
            "-days",
            "30",
            "-addext",
            "basicConstraints=CA:TRUE",
            "-addext",
            "keyUsage=keyCertSign",
            "-out",
            "bad.pem",
        ],
    ] {
        let (ok, err) = pki.openssl(args);
        assert!(ok, "{err}");
    }
    let path = pkilint("lint_pkix_cert");
    let (ok, out) = pki.hsm.tool(
        path.to_str().unwrap(),
        &["lint", "-s", "WARNING", "bad.pem"],
    );
    assert!(
        !ok && out.contains("basic_constraints_extension_not_critical"),
        "{out}"
    );
}

#[test]
fn p256_hierarchy_passes_pkilint() {
    lint_everything(&Pki::new());
}

#[test]
fn rsa_root_and_p384_issuing_pass_pkilint() {
    lint_everything(&Pki::with_algorithms("rsa-3072", "ec-p384"));
}
