//! What a hostile or clumsy command line must not get past hsmsign: outputs that are not regular
//! files, outputs that collide, inputs that block or never end, PINs echoed back, secrets
//! created readable by others, failed logins left out of the audit log.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Pki, USER_PIN, stderr};

/// A small JS7 export (one workflow) as a zip.
fn export_zip(path: &Path) {
    common::write_zip(
        path,
        &[
            (
                "meta_inf",
                &br#"{"jocVersion":"2.7.2","versionId":"1"}"#[..],
            ),
            (
                "a.workflow.json",
                &br#"{"TYPE":"Workflow","instructions":[]}"#[..],
            ),
        ],
    );
}

/// An operator key on a second token, its signing certificate and a small export.
fn operator(pki: &Pki) -> String {
    pki.hsm.init_token("Operator");
    let uri = pki.hsm.key("Operator", "alice", "ec-p256");
    pki.signing_cert(&uri, "CN=alice, O=SOS", "alice.pem");
    export_zip(&pki.path("export.zip"));
    uri
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// Run with a deadline: a command that would wait forever on a FIFO fails the test instead of
/// hanging it.
fn run_within(pki: &Pki, args: &[&str], limit: Duration) -> Output {
    let mut all = vec![
        "--state".to_string(),
        pki.path("state").display().to_string(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    let mut child = pki
        .hsm
        .cmd()
        .args(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("hsmsign {args:?} still running after {limit:?}: it blocked on its input");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn refused(out: &Output, needle: &str) {
    common::expect_failure(out, &[], 1, &[needle]);
}

#[test]
fn force_never_replaces_what_is_not_a_regular_file() {
    let pki = Pki::new();
    let key = operator(&pki);
    let fifo = pki.path("out.fifo");
    mkfifo(&fifo);
    let sub = pki.path("dir.zip");
    std::fs::create_dir(&sub).unwrap();
    let link = pki.path("link.zip");
    std::os::unix::fs::symlink(pki.path("root.pem"), &link).unwrap();
    let mut targets = vec![
        (fifo.clone(), "FIFO"),
        (sub.clone(), "a directory"),
        (link.clone(), "a symbolic link"),
    ];
    // A device node, as the reported `--out /dev/null --force` (made here, never the real one).
    let dev = pki.path("null");
    if Command::new("mknod")
        .arg(&dev)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success())
    {
        targets.push((dev, "a character device"));
    } else {
        eprintln!(
            "note: mknod needs root; the device-node case is covered by the unit test on /dev/null"
        );
    }
    let (audit_before, _) = pki.counts();
    for (target, what) in &targets {
        let out = pki.run(&[
            "archive",
            "sign",
            "--key",
            &key,
            "--cert",
            "alice.pem",
            "--in",
            "export.zip",
            "--out",
            target.to_str().unwrap(),
            "--force",
        ]);
        refused(&out, what);
        assert!(stderr(&out).contains("--force replaces only a regular file"));
    }
    // Nothing changed: the FIFO is a FIFO, the link still points at the certificate.
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo_like()
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(sub.is_dir());
    assert_eq!(
        pki.counts().0,
        audit_before,
        "a refused signing left an audit record"
    );
    // A regular file is replaced.
    std::fs::write(pki.path("old.zip"), b"old").unwrap();
    pki.ok(&[
        "archive",
        "sign",
        "--key",
        &key,
        "--cert",
        "alice.pem",
        "--in",
        "export.zip",
        "--out",
        "old.zip",
        "--force",
    ]);
    assert!(
        std::fs::read(pki.path("old.zip"))
            .unwrap()
            .starts_with(b"PK")
    );
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}
impl FifoLike for std::fs::FileType {
    fn is_fifo_like(&self) -> bool {
        std::os::unix::fs::FileTypeExt::is_fifo(self)
    }
}

#[test]
fn outputs_are_checked_against_each_other_before_anything_is_signed() {
    let pki = Pki::new();
    std::fs::write(pki.path("p12pass"), "bundle password\n").unwrap();
    std::fs::set_permissions(pki.path("p12pass"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = pki.counts();
    // The reported case: the key bundle and the certificate at one path.
    let out = pki.run(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "server",
        "--generate-key",
        "ec-p256",
        "--subject",
        "CN=agent1.example",
        "--san",
        "DNS:agent1.example",
        "--pkcs12",
        "X",
        "--p12-password-source",
        "file:p12pass",
        "--out",
        "X",
    ]);
    refused(&out, "name the same file");
    // The same file spelled two ways, and an output that is the input.
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
        "CN=c1",
        "--pkcs12",
        "c1.p12",
        "--p12-password-source",
        "file:p12pass",
        "--out",
        "./c1.p12",
    ]);
    refused(&out, "name the same file");
    pki.openssl_req("inst", "/CN=inst.example");
    let out = pki.run(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "server",
        "--csr",
        "inst.csr",
        "--out",
        "inst.csr",
        "--force",
    ]);
    refused(&out, "name the same file");
    assert_eq!(pki.counts(), before, "a refused issuance changed the state");
    assert!(!pki.path("X").exists() && !pki.path("c1.p12").exists());

    // Both outputs distinct: the bundle is written, 0600 even under umask 000.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 000; exec {} --state state cert issue --ca issuing --profile server --generate-key ec-p256 --subject CN=a2 --san DNS:a2 --pkcs12 a2.p12 --p12-password-source file:p12pass --out a2.pem",
            env!("CARGO_BIN_EXE_hsmsign")
        ))
        .env("SOFTHSM2_CONF", &pki.hsm.conf)
        .env("HSMSIGN_PIN_SOURCE", format!("file:{}", pki.path("pin").display()))
        .current_dir(pki.hsm.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", stderr(&status));
    let mode = |p: &str| std::fs::metadata(pki.path(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("a2.p12"), 0o600, "a key bundle followed the umask");
    assert_ne!(mode("a2.pem"), 0o600, "a certificate need not be secret");
}

/// Helper: an openssl CSR in the Pki directory.
trait Req {
    fn openssl_req(&self, name: &str, subj: &str);
}
impl Req for Pki {
    fn openssl_req(&self, name: &str, subj: &str) {
        self.hsm.openssl_req(name, subj, false, &[]);
    }
}

#[test]
fn inputs_that_block_or_never_end_are_refused_at_once() {
    let pki = Pki::new();
    let key = operator(&pki);
    let fifo = pki.path("fifo");
    mkfifo(&fifo);
    let f = fifo.to_str().unwrap();
    let fifo_pin = format!("file:{f}");
    let limit = Duration::from_secs(20);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "cert",
                "issue",
                "--ca",
                "issuing",
                "--profile",
                "server",
                "--csr",
                f,
                "--out",
                "x.pem",
            ],
            "FIFO",
        ),
        (
            vec![
                "cert",
                "issue",
                "--ca",
                "issuing",
                "--profile",
                "server",
                "--csr",
                "/dev/zero",
                "--out",
                "x.pem",
            ],
            "character device",
        ),
        (
            vec![
                "archive",
                "sign",
                "--key",
                &key,
                "--cert",
                f,
                "--in",
                "export.zip",
                "--out",
                "s.zip",
            ],
            "FIFO",
        ),
        (
            vec![
                "archive",
                "sign",
                "--key",
                &key,
                "--cert",
                "alice.pem",
                "--in",
                f,
                "--out",
                "s.zip",
            ],
            "FIFO",
        ),
        (
            vec!["archive", "verify", "--in", "export.zip", "--trusted", f],
            "FIFO",
        ),
        // The archive itself, for every command that reads one.
        (
            vec!["archive", "verify", "--in", f, "--trusted", "root.pem"],
            "FIFO",
        ),
        (
            vec![
                "archive",
                "verify",
                "--in",
                "/dev/zero",
                "--trusted",
                "root.pem",
            ],
            "character device",
        ),
        (
            vec![
                "--json",
                "archive",
                "verify",
                "--in",
                f,
                "--trusted",
                "root.pem",
            ],
            "FIFO",
        ),
        (vec!["archive", "lint", "--in", f], "FIFO"),
        (
            vec!["archive", "lint", "--in", "/dev/zero"],
            "character device",
        ),
        (
            vec![
                "archive",
                "sign",
                "--key",
                &key,
                "--cert",
                "alice.pem",
                "--in",
                "/dev/zero",
                "--out",
                "s.zip",
            ],
            "character device",
        ),
        (
            vec![
                "ca",
                "sign-intermediate",
                "--issuer",
                "root",
                "--csr",
                f,
                "--out",
                "i.pem",
            ],
            "FIFO",
        ),
        (
            vec![
                "--pin-source",
                &fifo_pin,
                "key",
                "list",
                "--token",
                "pkcs11:token=CA",
            ],
            "FIFO",
        ),
        (
            vec![
                "--pin-source",
                "file:/dev/zero",
                "key",
                "list",
                "--token",
                "pkcs11:token=CA",
            ],
            "character device",
        ),
    ];
    for (args, what) in cases {
        let out = run_within(&pki, &args, limit);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(stderr(&out).contains(what), "{args:?}: {}", stderr(&out));
    }
    // A trusted directory holding a FIFO.
    let trusted = pki.path("trusted");
    std::fs::create_dir(&trusted).unwrap();
    std::fs::copy(pki.path("root.pem"), trusted.join("root.pem")).unwrap();
    mkfifo(&trusted.join("zz.pem"));
    let out = run_within(
        &pki,
        &[
            "archive",
            "verify",
            "--in",
            "export.zip",
            "--trusted",
            trusted.to_str().unwrap(),
        ],
        limit,
    );
    assert!(stderr(&out).contains("FIFO"), "{}", stderr(&out));
    // An oversized CSR is named with the cap.
    std::fs::write(pki.path("big.csr"), vec![b'A'; 70_000]).unwrap();
    let out = pki.run(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "server",
        "--csr",
        "big.csr",
        "--out",
        "x.pem",
    ]);
    refused(&out, "65536");
    assert!(!pki.path("x.pem").exists());
}

#[test]
fn a_pin_is_never_echoed_and_failed_logins_are_audited() {
    let pki = Pki::new();
    // A PIN typed where its source belongs.
    let out = pki.run(&[
        "--pin-source",
        USER_PIN,
        "key",
        "list",
        "--token",
        "pkcs11:token=CA",
    ]);
    assert_ne!(out.status.code(), Some(0));
    let all = format!("{}{}", stderr(&out), common::stdout(&out));
    assert!(!all.contains(USER_PIN), "the PIN was echoed: {all}");
    assert!(all.contains("not shown"), "{all}");
    // In an URI: upper case, twice, percent-encoded.
    for uri in [
        format!("pkcs11:token=CA?PIN-VALUE={USER_PIN}"),
        format!("pkcs11:token=CA?pin-value=1&pin-value={USER_PIN}"),
        format!("pkcs11:token=CA?pin%2Dvalue={USER_PIN}"),
        format!("pkcs11:token=CA;pin-value={USER_PIN}"),
        USER_PIN.to_string(),
    ] {
        let out = pki.run(&["--allow-pin-value", "key", "list", "--token", &uri]);
        let all = format!("{}{}", stderr(&out), common::stdout(&out));
        assert!(!all.contains(USER_PIN), "{uri}: the PIN was echoed: {all}");
    }
    // Wrong PINs on read-only key commands are recorded like any other failed login.
    let (before, _) = pki.counts();
    for args in [
        vec!["key", "list", "--token", "pkcs11:token=CA"],
        vec!["key", "inspect", "--key", "pkcs11:token=CA;object=root-key"],
        vec!["key", "public", "--key", "pkcs11:token=CA;object=root-key"],
    ] {
        let mut all = vec!["--pin-source", "file:wrong-pin"];
        all.extend(args.iter());
        let out = pki.run(&all);
        refused(&out, "PIN");
    }
    let audit = pki.json(&["audit", "show"]);
    let records = audit["records"].as_array().unwrap();
    let failed_logins = records
        .iter()
        .skip(before)
        .filter(|r| r["operation"] == "login")
        .count();
    assert_eq!(failed_logins, 3, "{audit}");
    pki.ok(&["audit", "verify"]);
}

#[test]
fn loose_permissions_are_warned_about_or_refused() {
    let pki = Pki::new();
    let pin = pki.path("pin");
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = pki.run(&["key", "list", "--token", "pkcs11:token=CA"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("mode 0644"), "{}", stderr(&out));
    let out = pki.run(&[
        "--strict-permissions",
        "key",
        "list",
        "--token",
        "pkcs11:token=CA",
    ]);
    refused(&out, "chmod 600");
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The state directory hsmsign made is 0700, its database 0600; looser ones are named.
    let state = pki.path("state");
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(state.join("hsmsign.db"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = pki.run(&["cert", "list"]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("mode 0755"), "{}", stderr(&out));
    let out = pki.run(&["--strict-permissions", "cert", "list"]);
    refused(&out, "chmod go-rwx");
}

/// What an error after a committed issuance tells the officer to run does write the file.
#[test]
fn cert_show_writes_an_issued_certificate_again() {
    let pki = Pki::new();
    pki.openssl_req("inst", "/CN=inst.example");
    let v = pki.json(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "server",
        "--csr",
        "inst.csr",
        "--san",
        "DNS:inst.example",
    ]);
    let serial = v["serial"].as_str().unwrap().to_string();
    pki.ok(&["cert", "show", "--serial", &serial, "--out", "again.pem"]);
    let (ok, text) = pki.openssl(&["x509", "-in", "again.pem", "-noout", "-serial"]);
    assert!(ok, "{text}");
    assert_eq!(
        text.trim()
            .trim_start_matches("serial=")
            .to_ascii_uppercase(),
        serial.replace(':', "").to_ascii_uppercase()
    );
}
