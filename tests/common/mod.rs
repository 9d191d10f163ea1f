//! Test support: a fresh SoftHSM2 token directory per test, and the hsmsign binary.
#![allow(dead_code)] // each test file uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The user PIN of every test token (test tokens only; never a default in the tool itself).
pub(crate) const USER_PIN: &str = "246810";
/// The SO PIN of every test token.
pub(crate) const SO_PIN: &str = "13579135";

/// A private SoftHSM2 configuration in a temp dir, with PIN files.
pub(crate) struct Hsm {
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
}

impl Hsm {
    /// A new, empty token directory.
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("tokens dir");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("conf");
        std::fs::write(dir.path().join("pin"), format!("{USER_PIN}\n")).expect("pin");
        std::fs::write(dir.path().join("so-pin"), SO_PIN).expect("so pin");
        std::fs::write(dir.path().join("wrong-pin"), "000000").expect("wrong pin");
        // PIN files as an officer keeps them: readable by their owner only.
        for f in ["pin", "so-pin", "wrong-pin"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(0o600))
                .expect("pin file mode");
        }
        Self { dir, conf }
    }

    /// A new token directory with one initialised token.
    pub(crate) fn with_token(label: &str) -> Self {
        let hsm = Self::new();
        hsm.init_token(label);
        hsm
    }

    pub(crate) fn init_token(&self, label: &str) {
        let out = self.run(&[
            "token",
            "init",
            "--label",
            label,
            "--so-pin-source",
            &format!("file:{}", self.path("so-pin").display()),
        ]);
        assert!(out.status.success(), "token init: {}", stderr(&out));
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary with this token directory and the test PIN file selected.
    pub(crate) fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hsmsign"));
        c.env("SOFTHSM2_CONF", &self.conf)
            .env_remove("HSMSIGN_MODULE")
            .env_remove("HSMSIGN_STATE")
            .env(
                "HSMSIGN_PIN_SOURCE",
                format!("file:{}", self.path("pin").display()),
            )
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run hsmsign")
    }

    /// Run and require success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "hsmsign {args:?} failed ({:?}): {}",
            out.status.code(),
            stderr(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run and require exit status `code` with every one of `needles` in stderr (and no
    /// panic); returns stderr. The one way the tests check a refusal.
    pub(crate) fn fails(&self, args: &[&str], code: i32, needles: &[&str]) -> String {
        expect_failure(&self.run(args), args, code, needles)
    }

    /// Run with --json and parse stdout.
    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let s = self.ok(&all);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
    }

    /// Run another tool (pkcs11-tool, openssl, ...) in the test directory with this token
    /// directory selected; returns (success, stdout+stderr).
    pub(crate) fn tool(&self, program: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new(program)
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{program} not runnable: {e}"));
        (
            out.status.success(),
            format!("{}{}", stdout(&out), stderr(&out)),
        )
    }

    /// Generate a key and return its canonical URI.
    pub(crate) fn key(&self, token: &str, label: &str, alg: &str) -> String {
        let v = self.json(&[
            "key",
            "generate",
            "--key",
            &format!("pkcs11:token={};object={label}", token.replace(' ', "%20")),
            "--algorithm",
            alg,
        ]);
        v["key"]["uri"].as_str().expect("uri").to_string()
    }
}

impl Hsm {
    /// `openssl req` with a new P-256 key `NAME.key`: a CSR `NAME.csr`, or with `self_signed` a
    /// certificate `NAME.pem`. `extra` adds options such as `-addext`.
    pub(crate) fn openssl_req(&self, name: &str, subj: &str, self_signed: bool, extra: &[&str]) {
        let key = format!("{name}.key");
        let out = format!("{name}.{}", if self_signed { "pem" } else { "csr" });
        let mut args = vec![
            "req",
            if self_signed { "-x509" } else { "-new" },
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-subj",
            subj,
            "-out",
            &out,
        ];
        args.extend_from_slice(extra);
        let (ok, o) = self.tool("openssl", &args);
        assert!(ok, "openssl req for {name}: {o}");
    }
}

/// Check that `out` (of `hsmsign args`) exited with `code`, did not panic, and says every one
/// of `needles` on stderr; returns stderr.
pub(crate) fn expect_failure(out: &Output, args: &[&str], code: i32, needles: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "hsmsign {args:?}: {err}");
    assert!(
        !err.contains("panicked"),
        "hsmsign {args:?} panicked: {err}"
    );
    for n in needles {
        assert!(
            err.contains(n),
            "hsmsign {args:?}: stderr lacks {n:?}: {err}"
        );
    }
    err
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a tool (openssl, pkcs11-tool, ...) and return (success, stdout+stderr).
pub(crate) fn tool(program: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} not runnable: {e}"));
    (
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

pub(crate) fn softhsm_module() -> &'static str {
    "/usr/lib/softhsm/libsofthsm2.so"
}

/// A CA token with a P-256 root ("root") and intermediate ("issuing"), recorded in the state
/// directory `state/` of the test dir, and the CA bundle in `bundle.pem`.
pub(crate) struct Pki {
    pub hsm: Hsm,
}

impl Pki {
    pub(crate) fn new() -> Self {
        Self::with_algorithms("ec-p256", "ec-p256")
    }

    pub(crate) fn with_algorithms(root_alg: &str, issuing_alg: &str) -> Self {
        let hsm = Hsm::with_token("CA");
        hsm.key("CA", "root-key", root_alg);
        hsm.key("CA", "issuing-key", issuing_alg);
        let pki = Self { hsm };
        pki.ok(&[
            "ca",
            "init",
            "--name",
            "root",
            "--key",
            "pkcs11:token=CA;object=root-key",
            "--subject",
            "CN=Test Root CA, O=SOS, C=DE",
            "--out",
            "root.pem",
        ]);
        pki.ok(&[
            "ca",
            "intermediate",
            "--name",
            "issuing",
            "--issuer",
            "root",
            "--key",
            "pkcs11:token=CA;object=issuing-key",
            "--subject",
            "CN=Test Issuing CA, O=SOS, C=DE",
            "--out",
            "issuing.pem",
        ]);
        pki.ok(&[
            "ca",
            "export",
            "--name",
            "issuing",
            "--chain",
            "--out",
            "bundle.pem",
        ]);
        pki
    }

    fn with_state(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec![
            "--state".to_string(),
            self.hsm.path("state").display().to_string(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        all
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        let all = self.with_state(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        self.hsm.run(&refs)
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let all = self.with_state(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        self.hsm.ok(&refs)
    }

    pub(crate) fn fails(&self, args: &[&str], code: i32, needles: &[&str]) -> String {
        expect_failure(&self.run(args), args, code, needles)
    }

    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let all = self.with_state(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        self.hsm.json(&refs)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.hsm.path(name)
    }

    pub(crate) fn openssl(&self, args: &[&str]) -> (bool, String) {
        self.hsm.tool("openssl", args)
    }

    /// An operator signing certificate from the issuing CA for the key `uri`, written to `out`.
    pub(crate) fn signing_cert(&self, uri: &str, subject: &str, out: &str) {
        self.ok(&[
            "cert",
            "issue",
            "--ca",
            "issuing",
            "--profile",
            "signing",
            "--key",
            uri,
            "--subject",
            subject,
            "--out",
            out,
        ]);
    }

    /// Number of audit records and of issued certificates: what a refused command must not change.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let audit = self.json(&["audit", "show"]);
        let certs = self.json(&["cert", "list"]);
        (
            audit["records"].as_array().map_or(0, Vec::len),
            certs["certificates"].as_array().map_or(0, Vec::len),
        )
    }
}

/// Write a zip archive of `entries` (name, content), deflated, as JOC Cockpit's export does.
pub(crate) fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).expect("create zip"));
    for (name, data) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        zip.write_all(data).expect("zip data");
    }
    zip.finish().expect("finish zip");
}

/// Every entry of a zip or tar.gz, in order.
pub(crate) fn archive_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).expect("read archive");
    let mut out = Vec::new();
    if bytes.starts_with(b"PK") {
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
        for i in 0..z.len() {
            let mut f = z.by_index(i).expect("zip entry");
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut data).expect("zip data");
            out.push((f.name().expect("entry name").to_string(), data));
        }
    } else {
        let gz = flate2::read::GzDecoder::new(std::io::Cursor::new(bytes));
        let mut t = tar::Archive::new(gz);
        for e in t.entries().expect("tar") {
            let mut e = e.expect("tar entry");
            let name = e.path().expect("entry path").to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).expect("tar data");
            out.push((name, data));
        }
    }
    out
}

/// Print `html` to PDF with headless Chromium and read the PDF's text back with pdftotext, as a
/// person reading the printout would see it. `dir` holds the PDF and Chromium's profile.
pub(crate) fn pdf_text(html: &Path, dir: &Path) -> String {
    let pdf = dir.join("record.pdf");
    let chrome = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join("chromium-profile").display()
        ))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium runs");
    assert!(
        pdf.exists(),
        "chromium wrote no PDF: {}",
        String::from_utf8_lossy(&chrome.stderr)
    );
    let text = Command::new("pdftotext")
        .args(["-layout", pdf.to_str().expect("utf-8 path"), "-"])
        .output()
        .expect("pdftotext runs");
    assert!(text.status.success(), "pdftotext failed");
    String::from_utf8_lossy(&text.stdout).into_owned()
}
