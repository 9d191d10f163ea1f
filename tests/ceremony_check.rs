//! `ceremony check` refusing each kind of bad file with no token touched (the PKCS#11 module
//! points at a path that does not exist, and the state directory is never created), the
//! example ceremonies passing, and the printed record read back from a PDF as a person sees it.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_hsmsign");

struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
    /// Runs hsmsign in this directory with no usable module and a state directory that must
    /// stay absent.
    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(EXE)
            .args(args)
            .current_dir(self.tmp.path())
            .env("HSMSIGN_MODULE", "/nonexistent/pkcs11-module.so")
            .env("HSMSIGN_STATE", self.path("state"))
            .env_remove("HSMSIGN_PIN_SOURCE")
            .env("SOFTHSM2_CONF", "/nonexistent/softhsm2.conf")
            .output()
            .unwrap();
        assert!(
            !self.path("state").exists(),
            "hsmsign {args:?} created the state directory"
        );
        out
    }
    fn check(&self, ceremony: &str) -> Output {
        let file = self.write("c.toml", ceremony);
        let site = self.write("site.toml", SITE);
        self.run(&[
            "ceremony",
            "check",
            file.to_str().unwrap(),
            "--site",
            site.to_str().unwrap(),
        ])
    }
    /// The check fails with exit 1, no panic, and every needle in what it said.
    fn refuses(&self, ceremony: &str, needles: &[&str]) -> String {
        let out = self.check(ceremony);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(!text.contains("panicked"), "{text}");
        for n in needles {
            assert!(text.contains(n), "{n:?} not in:\n{text}");
        }
        text
    }
}

const SITE: &str = "[role.ca-token]\ntoken = \"pkcs11:token=CA\"\npin-source = \"prompt\"\n";

const HEAD: &str = "name = \"t\"\npurpose = \"test\"\n[tokens.ca-token]\n";

const ROOT: &str = "[[step]]\nid = \"key\"\nkind = \"key-generate\"\nkey = { token = \"ca-token\", label = \"root\" }\nalgorithm = \"ec-p256\"\n\n[[step]]\nid = \"root\"\nkind = \"ca-root\"\nname = \"root\"\nkey = { token = \"ca-token\", label = \"root\" }\nsubject = \"CN=Root\"\ndays = 3650\nout = \"root.pem\"\n";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ceremonies")
}

#[test]
fn every_example_ceremony_passes_the_check_with_the_rehearsal_site() {
    let d = Dir::new();
    let site = examples().join("site-rehearsal.toml");
    let mut seen = 0;
    for entry in std::fs::read_dir(examples()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|e| e != "toml") || p == site {
            continue;
        }
        seen += 1;
        let out = d.run(&[
            "--json",
            "ceremony",
            "check",
            p.to_str().unwrap(),
            "--site",
            site.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {err}", p.display());
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["findings"], serde_json::json!([]), "{}", p.display());
        assert!(!report["plan"].as_array().unwrap().is_empty());
    }
    assert_eq!(seen, 4, "the four example ceremonies");
}

#[test]
fn the_plan_names_each_step_its_token_and_its_files() {
    let d = Dir::new();
    let out = d.check(&format!("{HEAD}{ROOT}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1. key (key-generate: hsmsign key generate)"),
        "{text}"
    );
    assert!(
        text.contains(
            "token ca-token, key \"root\" = pkcs11:token=CA;object=root?pin-source=prompt"
        ),
        "{text}"
    );
    assert!(text.contains("writes ./root.pem"), "{text}");
    assert!(text.contains("check passed"), "{text}");
}

#[test]
fn an_unknown_key_is_refused_at_its_line_and_column() {
    let d = Dir::new();
    let ceremony = format!("{HEAD}{ROOT}colour = \"blue\"\n");
    let line = ceremony.lines().count();
    d.refuses(
        &ceremony,
        &[
            &format!("c.toml:{line}:1: unknown field `colour`"),
            "remove or correct the key",
        ],
    );
}

#[test]
fn an_unknown_step_kind_is_refused() {
    let d = Dir::new();
    d.refuses(
        &format!("{HEAD}[[step]]\nid = \"x\"\nkind = \"ca-destroy\"\n"),
        &["c.toml:6:8:", "unknown variant `ca-destroy`"],
    );
}

#[test]
fn a_missing_input_is_refused() {
    let d = Dir::new();
    d.refuses(
        &format!("{HEAD}{ROOT}[[step]]\nid = \"sub\"\nkind = \"ca-sign-intermediate\"\nissuer = \"root\"\ncsr = \"nowhere.csr\"\nout = \"sub.pem\"\n"),
        &["step sub: csr", "nowhere.csr", "give an existing, valid file"],
    );
}

#[test]
fn a_csr_is_checked_by_its_self_signature() {
    let d = Dir::new();
    let (key, csr) = (d.path("k.pem"), d.path("sub.csr"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-keyout",
            key.to_str().unwrap(),
            "-subj",
            "/CN=Sub CA",
            "-out",
            csr.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(ok.status.success());
    let step = format!(
        "{HEAD}{ROOT}[[step]]\nid = \"sub\"\nkind = \"ca-sign-intermediate\"\nissuer = \"root\"\ncsr = \"sub.csr\"\nout = \"sub.pem\"\n"
    );
    let out = d.check(&step);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Change one byte of the signed subject: the self-signature no longer verifies.
    let der = Command::new("openssl")
        .args(["req", "-in", csr.to_str().unwrap(), "-outform", "DER"])
        .output()
        .unwrap()
        .stdout;
    let mut bad = der;
    let at = bad.windows(6).position(|w| w == b"Sub CA").unwrap();
    bad[at] = b'X';
    std::fs::write(&csr, bad).unwrap();
    d.refuses(&step, &["step sub: csr", "sub.csr"]);
}

#[test]
fn an_existing_output_is_refused() {
    let d = Dir::new();
    d.write("root.pem", "already here");
    d.refuses(
        &format!("{HEAD}{ROOT}"),
        &[
            "step root: out ./root.pem exists already",
            "never overwrites",
        ],
    );
}

#[test]
fn two_steps_writing_one_file_are_refused() {
    let d = Dir::new();
    d.refuses(
        &format!("{HEAD}{ROOT}[[step]]\nid = \"crl\"\nkind = \"crl\"\nca = \"root\"\nout = \"root.pem\"\n"),
        &["step crl: out ./root.pem is also written by step \"root\""],
    );
}

#[test]
fn a_forward_reference_and_a_ca_made_later_are_refused() {
    let d = Dir::new();
    let early = "[[step]]\nid = \"conf\"\nkind = \"js7-config\"\ncert = \"@leaf.out\"\nrole = \"agent\"\nout = \"agent.conf\"\n\n[[step]]\nid = \"crl\"\nkind = \"crl\"\nca = \"root\"\nout = \"root.crl\"\n";
    let leaf = "[[step]]\nid = \"leaf\"\nkind = \"key-bundle\"\nca = \"root\"\nprofile = \"server-client\"\ngenerate-key = \"ec-p256\"\nsubject = \"CN=a\"\npkcs12 = \"a.p12\"\nout = \"a.pem\"\n";
    d.refuses(
        &format!("{HEAD}{early}{ROOT}{leaf}"),
        &[
            "step conf: cert = \"@leaf.out\" refers to step \"leaf\", which comes later",
            "step crl: CA \"root\" is made by a later step",
        ],
    );
    d.refuses(
        &format!("{HEAD}{ROOT}{leaf}[[step]]\nid = \"conf\"\nkind = \"js7-config\"\ncert = \"@leaf.keystore\"\nrole = \"agent\"\nout = \"agent.conf\"\n"),
        &["step \"leaf\" writes no \"keystore\"", "pkcs12"],
    );
}

#[test]
fn a_duplicate_step_id_is_refused() {
    let d = Dir::new();
    d.refuses(
        &format!(
            "{HEAD}{ROOT}[[step]]\nid = \"root\"\nkind = \"crl\"\nca = \"root\"\nout = \"r.crl\"\n"
        ),
        &["step id \"root\" is used twice"],
    );
}

#[test]
fn an_algorithm_that_does_not_fit_the_key_is_refused() {
    let d = Dir::new();
    d.write("in.zip", "zip");
    d.write("cert.pem", "x");
    d.refuses(
        &format!("{HEAD}{ROOT}[[step]]\nid = \"sign\"\nkind = \"archive-sign\"\nkey = {{ token = \"ca-token\", label = \"root\" }}\ncert = \"@root.out\"\nin = \"in.zip\"\nout = \"out.zip\"\nalgorithm = \"SHA256withRSA\"\n"),
        &["step sign: algorithm SHA256withRSA does not fit key \"root\", made as ec-p256"],
    );
    d.refuses(
        &format!("{HEAD}[[step]]\nid = \"key\"\nkind = \"key-generate\"\nkey = {{ token = \"ca-token\", label = \"k\" }}\nalgorithm = \"dsa-1024\"\n"),
        &["algorithm \"dsa-1024\" is not one hsmsign makes"],
    );
}

#[test]
fn validity_outside_the_issuer_or_out_of_range_is_refused() {
    let d = Dir::new();
    d.refuses(
        &format!("{HEAD}{ROOT}[[step]]\nid = \"leaf\"\nkind = \"key-bundle\"\nca = \"root\"\nprofile = \"server\"\ngenerate-key = \"ec-p256\"\nsubject = \"CN=a\"\npkcs12 = \"a.p12\"\ndays = 4000\n\n[[step]]\nid = \"crl\"\nkind = \"crl\"\nca = \"root\"\ndays = 0\nout = \"r.crl\"\n"),
        &["step leaf: days = 4000 outlasts CA \"root\"", "step crl: days = 0: give between 1 and"],
    );
}

#[test]
fn a_pin_in_the_ceremony_file_is_refused() {
    let d = Dir::new();
    d.refuses(
        &format!("name = \"t\"\npurpose = \"p\"\n[tokens.ca-token]\npin = \"123456\"\n{ROOT}"),
        &["c.toml:4:1:", "`pin` holds a secret", "PIN source"],
    );
    d.refuses(
        &format!("{HEAD}{ROOT}").replace(
            "label = \"root\" }\nsubject",
            "label = \"root;pin-value=1234\" }\nsubject",
        ),
        &["pin-value", "PIN source"],
    );
    d.refuses(
        &format!("{HEAD}[[step]]\nid = \"ts\"\nkind = \"truststore\"\nca = [\"x\"]\nout = \"t.p12\"\npkcs12 = true\npassword-source = \"hunter2\"\n"),
        &["password-source", "is not a secret source"],
    );
}

#[test]
fn a_pin_in_the_site_file_or_an_unbound_role_is_refused() {
    let d = Dir::new();
    let file = d.write("c.toml", &format!("{HEAD}{ROOT}"));
    for (site, needles) in [
        (
            "[role.ca-token]\ntoken = \"pkcs11:token=CA\"\nso-pin = \"1\"\n",
            vec!["site.toml:3:1:", "`so-pin` holds a secret"],
        ),
        (
            "[role.ca-token]\ntoken = \"pkcs11:token=CA?pin-value=1\"\n",
            vec!["site.toml:2:", "pin-value"],
        ),
        (
            "[role.ca-token]\ntoken = \"pkcs11:token=CA\"\npin-source = \"123456\"\n",
            vec!["pin-source", "never the secret itself"],
        ),
        (
            "[role.other]\ntoken = \"pkcs11:token=O\"\n",
            vec![
                "token role \"ca-token\" is not bound",
                "HSMSIGN_SITE_TOKEN_CA_TOKEN",
            ],
        ),
    ] {
        let s = d.write("site.toml", site);
        let out = d.run(&[
            "ceremony",
            "check",
            file.to_str().unwrap(),
            "--site",
            s.to_str().unwrap(),
        ]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{text}");
        for n in needles {
            assert!(text.contains(n), "{n:?} not in {text}");
        }
    }
}

#[test]
fn the_environment_binds_roles_without_a_site_file() {
    let d = Dir::new();
    let file = d.write("c.toml", &format!("{HEAD}{ROOT}"));
    let out = Command::new(EXE)
        .args(["ceremony", "check", file.to_str().unwrap()])
        .current_dir(d.tmp.path())
        .env("HSMSIGN_MODULE", "/nonexistent/pkcs11-module.so")
        .env("HSMSIGN_SITE_TOKEN_CA_TOKEN", "pkcs11:token=From%20Env")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("pkcs11:token=From%20Env"), "{text}");
}

#[test]
fn ceremony_run_checks_first_and_stops_before_the_state_or_a_token_on_a_finding() {
    let d = Dir::new();
    let file = d.write("c.toml", &format!("{HEAD}{ROOT}"));
    // No site file and no binding in the environment: the role is unbound.
    let out = d.run(&["ceremony", "run", file.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("no token was touched"), "{all}");
    assert!(!all.contains("panicked"), "{all}");
}

#[test]
fn archive_verify_options_are_checked_not_ignored() {
    let d = Dir::new();
    d.write("in.zip", "zip");
    d.refuses(
        &format!("{HEAD}{ROOT}[[step]]\nid = \"v\"\nkind = \"archive-verify\"\nin = \"in.zip\"\nnode = [\"ctl=@root.out\", \"agent\"]\njs7-version = \"2.7\"\nallow-expired-certificates = \"maybe\"\n"),
        &[
            "node \"agent\" is not NAME=DIR",
            "js7-version \"2.7\" is not X.Y.Z",
            "allow-expired-certificates \"maybe\": give yes or no",
        ],
    );
    d.refuses(
        &format!("{HEAD}{ROOT}[[step]]\nid = \"v\"\nkind = \"archive-verify\"\nin = \"in.zip\"\n"),
        &["give trusted"],
    );
}

#[test]
fn an_output_in_a_missing_directory_is_refused() {
    let d = Dir::new();
    d.refuses(
        &format!("{HEAD}{ROOT}").replace("out = \"root.pem\"", "out = \"pki/root.pem\""),
        &["out ./pki/root.pem: the directory ./pki does not exist"],
    );
}
