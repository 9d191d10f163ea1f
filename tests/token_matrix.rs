//! The token matrix: one end-to-end scenario, the same on every row, driven through the hsmsign
//! binary against real PKCS#11 modules.
//!
//! Rows: (1) SoftHSM2; (2) tpm2-pkcs11 on swtpm, behind tpm2-abrmd on a private D-Bus (without
//! a resource manager the TPM's three transient object slots run out); (5) p11-kit's client
//! module talking to `p11-kit server`, which exports a SoftHSM2 token from another process, as
//! a network HSM would. Every server is started here with private state in a temp dir, on a free
//! loopback port or a Unix socket in that dir, and killed when the row is dropped.
//! (Rows 3 and 4, emulated PIV cards with OpenSC and ykcs11, are not part of this file.)
//!
//! The test PINs reach tpm2_ptool on its command line (it takes no other way); hsmsign itself
//! reads them from a file.

mod common;

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{SO_PIN, USER_PIN, stderr, stdout};

/// The verdict `key inspect` gives a key generated inside the token.
const GENERATED: &str = "generated on token, never extractable, always sensitive";

/// A server process of a row, in a process group of its own, killed with everything it forked
/// (p11-kit server forks one worker per connection) and reaped on drop.
struct Daemon {
    name: &'static str,
    child: Child,
}

impl Daemon {
    fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> Self {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {name}: {e}. Run scripts/setup.sh to install it")
            });
        Daemon { name, child }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn kill(&mut self) {
        // The whole group: the server and any worker it forked.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Wait until `ready()` holds, or fail naming what did not come up (with its log).
fn wait_for(what: &str, log: &Path, daemon: Option<&mut Daemon>, ready: impl Fn() -> bool) {
    let start = Instant::now();
    let mut daemon = daemon;
    while start.elapsed() < Duration::from_secs(20) {
        if ready() {
            return;
        }
        if let Some(d) = daemon.as_deref_mut()
            && !d.alive()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not come up: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Two consecutive free loopback ports (swtpm's server and control ports).
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let Ok(a) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let port = a.local_addr().expect("addr").port();
        if port < 65535 && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two consecutive free loopback ports");
}

/// The first existing file among `candidates`.
fn find_module(what: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("{what} not installed (tried {candidates:?}): run scripts/setup.sh")
        })
        .to_string()
}

fn softhsm_module() -> String {
    find_module(
        "SoftHSM2",
        &[
            "/usr/lib/softhsm/libsofthsm2.so",
            "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
            "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        ],
    )
}

/// Run a helper program of a row's setup; fail with its output.
fn setup_step(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}. Run scripts/setup.sh"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// One row of the matrix: a token, the environment that reaches it, the servers behind it.
struct Row {
    name: &'static str,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    token: String,
    /// Started in order, stopped in reverse order.
    daemons: Vec<Daemon>,
}

impl Drop for Row {
    fn drop(&mut self) {
        while let Some(mut d) = self.daemons.pop() {
            d.kill();
        }
    }
}

impl Row {
    fn new(name: &'static str, token: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("pin"), format!("{USER_PIN}\n")).expect("pin");
        std::fs::write(dir.path().join("so-pin"), SO_PIN).expect("so pin");
        Row {
            name,
            dir,
            env: Vec::new(),
            token: token.into(),
            daemons: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn set(&mut self, k: &str, v: impl Into<String>) {
        self.env.push((k.into(), v.into()));
    }

    /// A private SoftHSM2 token directory; returns the SOFTHSM2_CONF path.
    fn softhsm_conf(&self) -> PathBuf {
        let tokens = self.path("softhsm");
        std::fs::create_dir(&tokens).expect("tokens dir");
        let conf = self.path("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("conf");
        conf
    }

    /// Row 1: a SoftHSM2 token.
    fn softhsm() -> Self {
        let mut row = Row::new("softhsm2", "matrix");
        let conf = row.softhsm_conf();
        row.set("SOFTHSM2_CONF", conf.display().to_string());
        row.set("HSMSIGN_MODULE", softhsm_module());
        row.ok(&[
            "token",
            "init",
            "--label",
            "matrix",
            "--so-pin-source",
            "file:so-pin",
        ]);
        row
    }

    /// Row 2: tpm2-pkcs11 on swtpm, through tpm2-abrmd on a private session bus.
    fn tpm2() -> Self {
        let mut row = Row::new("tpm2-pkcs11", "matrix");
        let state = row.path("tpm");
        let store = row.path("tpm2-pkcs11-store");
        std::fs::create_dir(&state).expect("tpm dir");
        std::fs::create_dir(&store).expect("store dir");
        // A fresh TPM with an ECC storage primary key at 0x81000001 (tpm2-pkcs11's default).
        setup_step(
            Command::new("swtpm_setup")
                .args([
                    "--tpm2",
                    "--create-spk",
                    "--ecc",
                    "--overwrite",
                    "--tpmstate",
                ])
                .arg(&state)
                .env("XDG_CONFIG_HOME", row.dir.path()),
            "swtpm_setup",
        );
        // Another process may take the free port pair between the check and swtpm's bind:
        // then swtpm exits and a new pair is tried.
        let log = row.path("swtpm.log");
        let mut started = None;
        for _ in 0..5 {
            let port = free_port_pair();
            let mut swtpm = Daemon::spawn(
                "swtpm",
                Command::new("swtpm")
                    .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
                    .arg("--tpmstate")
                    .arg(format!("dir={}", state.display()))
                    .arg("--server")
                    .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                    .arg("--ctrl")
                    .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1)),
                &log,
            );
            let start = Instant::now();
            while swtpm.alive() && start.elapsed() < Duration::from_secs(20) {
                if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                    started = Some((swtpm, port));
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if started.is_some() {
                break;
            }
        }
        let Some((swtpm, port)) = started else {
            panic!(
                "swtpm did not come up: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        row.daemons.push(swtpm);

        // A private D-Bus for tpm2-abrmd (the resource manager that flushes transient objects).
        let bus = row.path("bus");
        let conf = row.path("dbus.conf");
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                bus.display()
            ),
        )
        .expect("dbus conf");
        let log = row.path("dbus.log");
        let mut dbus = Daemon::spawn(
            "dbus-daemon",
            Command::new("dbus-daemon")
                .arg(format!("--config-file={}", conf.display()))
                .args(["--nofork", "--nopidfile"]),
            &log,
        );
        wait_for("dbus-daemon", &log, Some(&mut dbus), || bus.exists());
        row.daemons.push(dbus);
        let bus_address = format!("unix:path={}", bus.display());
        let bus_name = format!("com.intel.tss2.Tabrmd.hsmsign{}x{port}", std::process::id());
        let log = row.path("tpm2-abrmd.log");
        let mut abrmd = Daemon::spawn(
            "tpm2-abrmd",
            Command::new("tpm2-abrmd")
                .args(["--session", "--allow-root", "--flush-all"])
                .arg(format!("--dbus-name={bus_name}"))
                .arg(format!("--tcti=swtpm:host=127.0.0.1,port={port}"))
                .env("DBUS_SESSION_BUS_ADDRESS", &bus_address),
            &log,
        );
        let tcti = format!("tabrmd:bus_name={bus_name},bus_type=session");
        let tools = |cmd: &mut Command| {
            cmd.env("DBUS_SESSION_BUS_ADDRESS", &bus_address)
                .env("TPM2TOOLS_TCTI", &tcti)
                .env("TPM2_PKCS11_TCTI", &tcti)
                .env("TPM2_PKCS11_STORE", &store);
        };
        wait_for("tpm2-abrmd", &log, Some(&mut abrmd), || {
            let mut c = Command::new("tpm2_getcap");
            c.arg("properties-fixed")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            tools(&mut c);
            c.status().is_ok_and(|s| s.success())
        });
        row.daemons.push(abrmd);

        // The token: tpm2_ptool's store under the storage primary key made above.
        let mut init = Command::new("tpm2_ptool");
        init.args(["init", "--primary-handle=0x81000001", "--path"])
            .arg(&store);
        tools(&mut init);
        setup_step(&mut init, "tpm2_ptool init");
        let mut add = Command::new("tpm2_ptool");
        add.args(["addtoken", "--pid=1", "--label=matrix"])
            .arg(format!("--userpin={USER_PIN}"))
            .arg(format!("--sopin={SO_PIN}"))
            .arg("--path")
            .arg(&store);
        tools(&mut add);
        setup_step(&mut add, "tpm2_ptool addtoken");

        row.set("DBUS_SESSION_BUS_ADDRESS", bus_address.clone());
        row.set("TPM2_PKCS11_TCTI", tcti.clone());
        row.set("TPM2_PKCS11_STORE", store.display().to_string());
        row.set(
            "HSMSIGN_MODULE",
            find_module(
                "tpm2-pkcs11",
                &[
                    "/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so",
                    "/usr/lib/aarch64-linux-gnu/pkcs11/libtpm2_pkcs11.so",
                    "/usr/lib/pkcs11/libtpm2_pkcs11.so",
                ],
            ),
        );
        row
    }

    /// Row 5: p11-kit's client module, and `p11-kit server` exporting a SoftHSM2 token.
    fn p11kit() -> Self {
        let mut row = Row::new("p11-kit", "matrix");
        let conf = row.softhsm_conf();
        // The token is made directly on SoftHSM2, then exported.
        let out = row
            .cmd()
            .args(["token", "init", "--label", "matrix", "--so-pin-source"])
            .arg("file:so-pin")
            .env("SOFTHSM2_CONF", &conf)
            .env("HSMSIGN_MODULE", softhsm_module())
            .output()
            .expect("token init");
        assert!(out.status.success(), "token init: {}", stderr(&out));
        let socket = row.path("p11-kit.sock");
        let log = row.path("p11-kit-server.log");
        let mut server = Daemon::spawn(
            "p11-kit server",
            Command::new("p11-kit")
                .args(["server", "-f", "-n"])
                .arg(&socket)
                .arg("--provider")
                .arg(softhsm_module())
                .arg("pkcs11:token=matrix")
                .env("SOFTHSM2_CONF", &conf),
            &log,
        );
        wait_for("p11-kit server", &log, Some(&mut server), || {
            socket.exists()
        });
        row.daemons.push(server);
        row.set(
            "P11_KIT_SERVER_ADDRESS",
            format!("unix:path={}", socket.display()),
        );
        row.set(
            "HSMSIGN_MODULE",
            find_module(
                "p11-kit-modules",
                &[
                    "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so",
                    "/usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so",
                    "/usr/lib/pkcs11/p11-kit-client.so",
                ],
            ),
        );
        row
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hsmsign"));
        c.env_remove("HSMSIGN_MODULE")
            .env_remove("SOFTHSM2_CONF")
            .env(
                "HSMSIGN_PIN_SOURCE",
                format!("file:{}", self.path("pin").display()),
            )
            .env("HSMSIGN_STATE", self.path("state"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run hsmsign")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "[{}] hsmsign {args:?} failed ({:?}): {}",
            self.name,
            out.status.code(),
            stderr(&out)
        );
        stdout(&out)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let s = self.ok(&all);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
    }

    fn key_uri(&self, label: &str) -> String {
        format!("pkcs11:token={};object={}", enc(&self.token), enc(label))
    }

    /// Like [`Row::ok`], returning standard error (warnings and notices) instead.
    fn ok_notices(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "[{}] hsmsign {args:?} failed ({:?}): {}",
            self.name,
            out.status.code(),
            stderr(&out)
        );
        stderr(&out)
    }

    /// Run a tool in the row's directory; require success; return stdout+stderr.
    fn tool(&self, program: &str, args: &[&str]) -> String {
        let (ok, out) = common::tool(program, args, self.dir.path());
        assert!(ok, "[{}] {program} {args:?}: {out}", self.name);
        out
    }

    /// A small JS7 export (meta_inf plus objects) as `name`.tar.gz, with `objects` workflows.
    fn export(&self, name: &str, objects: usize) -> String {
        let root = self.path(name);
        std::fs::create_dir_all(root.join("Matrix/Daily")).expect("export dirs");
        std::fs::write(
            root.join("meta_inf"),
            r#"{"jocVersion":"2.7.2","inventorySchemaVersion":"1.0.0","apiVersion":"1.0.0","versionId":"6f1c0e2a"}"#,
        )
        .expect("meta_inf");
        std::fs::write(
            root.join("Matrix/Resources.jobresource.json"),
            r#"{"TYPE":"JobResource","arguments":{"DB_URL":"\"jdbc:h2:mem:x\""}}"#,
        )
        .expect("resource");
        for i in 0..objects {
            std::fs::write(
                root.join(format!("Matrix/Daily/w{i}.workflow.json")),
                format!(
                    r#"{{"TYPE":"Workflow","version":"1.0.0","instructions":[{{"TYPE":"Execute.Named","jobName":"j{i}"}}],"jobs":{{"j{i}":{{"agentName":"agent","executable":{{"TYPE":"ShellScriptExecutable","script":"echo {i}"}}}}}}}}"#
                ),
            )
            .expect("workflow");
        }
        let archive = format!("{name}.tar.gz");
        let (ok, out) = common::tool(
            "tar",
            &["-czf", &format!("../{archive}"), "meta_inf", "Matrix"],
            &root,
        );
        assert!(ok, "tar: {out}");
        archive
    }
}

/// What the scenario did on a row, for the probe's verdicts to be checked against.
struct Done {
    /// Key algorithms generated (and used).
    generated: Vec<&'static str>,
    /// (key algorithm, signature algorithm) of the signatures made and verified.
    signed: Vec<(&'static str, &'static str)>,
}

/// The keys the scenario signs with: the root CA's, the issuing CA's, and the operators'
/// (label, URI, algorithm).
struct Keys {
    root: String,
    issuing: String,
    operators: Vec<(String, String, &'static str)>,
}

/// The scenario, the same on every row: keys generated inside the token, then the ceremony.
fn scenario(row: &Row, with_rsa: bool) -> Done {
    let started = Instant::now();
    let mut generated = vec!["ec-p384", "ec-p256"];
    // The root (P-384) signs the intermediate and the audit anchor, the issuing CA (P-256) the
    // certificates and the CRL, the operators the archive entries.
    let mut signed = vec![
        ("ec-p384", "SHA384withECDSA"),
        ("ec-p256", "SHA256withECDSA"),
    ];
    // 1. Keys generated inside the token: root (P-384), issuing CA and operator (P-256), and an
    //    RSA operator key where the token has RSA.
    let mut keys = vec![
        ("root-key", "ec-p384"),
        ("issuing-key", "ec-p256"),
        ("operator", "ec-p256"),
    ];
    if with_rsa {
        keys.push(("operator-rsa", "rsa-3072"));
        generated.push("rsa-3072");
        signed.push(("rsa-3072", "SHA256withRSA"));
    }
    for (label, alg) in &keys {
        let v = row.json(&[
            "key",
            "generate",
            "--key",
            &row.key_uri(label),
            "--algorithm",
            alg,
        ]);
        assert!(
            v["key"]["uri"]
                .as_str()
                .is_some_and(|u| u.contains(&format!("object={label}"))),
            "[{}] {v}",
            row.name
        );
        // 2. The provenance verdict.
        let ins = row.json(&["key", "inspect", "--key", &row.key_uri(label)]);
        assert_eq!(ins["verdict"], GENERATED, "[{}] {label}: {ins}", row.name);
        assert_eq!(ins["key"]["algorithm"], *alg, "[{}] {ins}", row.name);
    }
    let keys = Keys {
        root: row.key_uri("root-key"),
        issuing: row.key_uri("issuing-key"),
        operators: keys
            .iter()
            .filter(|(l, _)| l.starts_with("operator"))
            .map(|(l, a)| (l.to_string(), row.key_uri(l), *a))
            .collect(),
    };
    ceremony(row, &keys);
    eprintln!(
        "[{}] scenario passed in {:.1} s",
        row.name,
        started.elapsed().as_secs_f64()
    );
    Done { generated, signed }
}

/// Steps 3 to 8 of the scenario with the keys given: CAs, certificates, archive signing, CRL,
/// audit. Returns the standard error of `ca init` and `ca intermediate` (their notices).
fn ceremony(row: &Row, keys: &Keys) -> String {
    let mut notices = String::new();
    // 3. Root and intermediate CA, signed inside the token.
    notices += &row.ok_notices(&[
        "ca",
        "init",
        "--name",
        "root",
        "--key",
        &keys.root,
        "--subject",
        "CN=Matrix Root CA, O=SOS, C=DE",
        "--out",
        "root.pem",
    ]);
    notices += &row.ok_notices(&[
        "ca",
        "intermediate",
        "--name",
        "issuing",
        "--issuer",
        "root",
        "--key",
        &keys.issuing,
        "--subject",
        "CN=Matrix Issuing CA, O=SOS, C=DE",
        "--out",
        "issuing.pem",
    ]);
    row.ok(&[
        "ca",
        "export",
        "--name",
        "issuing",
        "--chain",
        "--out",
        "bundle.pem",
    ]);
    row.tool(
        "openssl",
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            "root.pem",
            "issuing.pem",
        ],
    );

    // 4. A server certificate from an openssl CSR.
    row.tool(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "controller.key",
            "-subj",
            "/CN=controller.example.com",
            "-out",
            "controller.csr",
        ],
    );
    row.ok(&[
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "server-client",
        "--csr",
        "controller.csr",
        "--san",
        "DNS:controller.example.com",
        "--out",
        "controller.pem",
    ]);
    row.tool(
        "openssl",
        &[
            "verify",
            "-purpose",
            "sslserver",
            "-CAfile",
            "bundle.pem",
            "controller.pem",
        ],
    );

    // 5. Operator signing certificates for keys on the token, 6. archive signing.
    let export = row.export("export", 3);
    std::fs::create_dir(row.path("trusted")).expect("trusted dir");
    std::fs::copy(row.path("issuing.pem"), row.path("trusted/issuing.pem")).expect("copy");
    for (op, op_uri, _) in &keys.operators {
        let cert = format!("{op}.pem");
        row.ok(&[
            "cert",
            "issue",
            "--ca",
            "issuing",
            "--profile",
            "signing",
            "--key",
            op_uri,
            "--subject",
            &format!("CN={op}, O=SOS, C=DE"),
            "--out",
            &cert,
        ]);
        let signed_archive = format!("{op}-signed.tar.gz");
        row.ok(&[
            "archive",
            "sign",
            "--key",
            op_uri,
            "--cert",
            &cert,
            "--in",
            &export,
            "--out",
            &signed_archive,
        ]);
        let verify = row.ok(&[
            "archive",
            "verify",
            "--in",
            &signed_archive,
            "--trusted",
            "trusted",
            "--cert",
            &cert,
        ]);
        assert!(verify.contains("ACCEPTED"), "[{}] {verify}", row.name);
        // Every .sig checked with openssl as well.
        let check = format!("check-{op}");
        std::fs::create_dir(row.path(&check)).expect("check dir");
        row.tool("tar", &["-xzf", &signed_archive, "-C", &check]);
        let public = row.tool("openssl", &["x509", "-in", &cert, "-noout", "-pubkey"]);
        std::fs::write(row.path(&format!("{op}.pub")), public).expect("pub");
        let mut checked = 0;
        for sig in walk(&row.path(&check)) {
            let Some(object) = sig.to_str().and_then(|s| s.strip_suffix(".sig")) else {
                continue;
            };
            let bin = format!("{}.bin", sig.display());
            row.tool(
                "openssl",
                &[
                    "base64",
                    "-d",
                    "-A",
                    "-in",
                    &sig.display().to_string(),
                    "-out",
                    &bin,
                ],
            );
            let out = row.tool(
                "openssl",
                &[
                    "dgst",
                    "-sha256",
                    "-verify",
                    &format!("{op}.pub"),
                    "-signature",
                    &bin,
                    object,
                ],
            );
            assert!(
                out.contains("Verified OK"),
                "[{}] {object}: {out}",
                row.name
            );
            checked += 1;
        }
        assert_eq!(checked, 4, "[{}] expected 4 signed objects", row.name);
    }

    // 7. A CRL, checked by openssl.
    row.ok(&["crl", "generate", "--ca", "issuing", "--out", "issuing.crl"]);
    let out = row.tool(
        "openssl",
        &[
            "crl",
            "-in",
            "issuing.crl",
            "-noout",
            "-CAfile",
            "bundle.pem",
            "-verify",
        ],
    );
    assert!(out.contains("verify OK"), "[{}] {out}", row.name);

    // 8. The audit log, anchored by the root key and verified.
    row.ok(&["audit", "anchor", "--ca", "root"]);
    let out = row.ok(&["audit", "verify"]);
    assert!(out.contains("audit log OK"), "[{}] {out}", row.name);
    notices
}

/// `token probe --json` of the row's token.
fn probe(row: &Row) -> serde_json::Value {
    let v = row.json(&[
        "token",
        "probe",
        "--token",
        &format!("pkcs11:token={}", enc(&row.token)),
    ]);
    assert_eq!(v["token"]["label"], row.token.as_str(), "{v}");
    v
}

fn can_generate(probe: &serde_json::Value, alg: &str) -> bool {
    probe["generate"]
        .as_array()
        .and_then(|a| a.iter().find(|g| g["algorithm"] == alg))
        .unwrap_or_else(|| panic!("probe says nothing about generating {alg}: {probe}"))["possible"]
        .as_bool()
        .unwrap_or(false)
}

fn sign_plan<'p>(probe: &'p serde_json::Value, key: &str, alg: &str) -> &'p serde_json::Value {
    probe["signatures"]
        .as_array()
        .and_then(|a| a.iter().find(|g| g["key"] == key && g["algorithm"] == alg))
        .unwrap_or_else(|| panic!("probe says nothing about {alg} with {key}: {probe}"))
}

/// Probe first, run the scenario with what probe promised, then hold probe's verdicts against
/// what the scenario did: every key kind it generated and every signature it made.
fn probed_scenario(row: &Row) -> (serde_json::Value, Done) {
    let p = probe(row);
    // Read-only: the probe created nothing.
    let keys = row.json(&[
        "key",
        "list",
        "--token",
        &format!("pkcs11:token={}", enc(&row.token)),
    ]);
    assert_eq!(keys["keys"].as_array().map_or(0, Vec::len), 0, "{keys}");
    let with_rsa = can_generate(&p, "rsa-3072");
    let done = scenario(row, with_rsa);
    for alg in &done.generated {
        assert!(
            can_generate(&p, alg),
            "[{}] probe denied {alg}, scenario made it",
            row.name
        );
    }
    for (key, alg) in &done.signed {
        let plan = sign_plan(&p, key, alg);
        assert_eq!(plan["possible"], true, "[{}] {plan}", row.name);
        assert!(
            plan["mechanism"]
                .as_str()
                .is_some_and(|m| m.starts_with("CKM_")),
            "{plan}"
        );
    }
    // --exercise: a throwaway key of each kind probe promises, signed with, then destroyed.
    let token = format!("pkcs11:token={}", enc(&row.token));
    let keys_before = row.json(&["key", "list", "--token", &token])["keys"]
        .as_array()
        .map_or(0, Vec::len);
    let ex = row.json(&["token", "probe", "--token", &token, "--exercise"]);
    let results = ex["exercise"].as_array().cloned().unwrap_or_default();
    let exercised: Vec<&str> = results
        .iter()
        .filter_map(|r| r["algorithm"].as_str())
        .collect();
    for alg in &done.generated {
        assert!(
            exercised.contains(alg),
            "[{}] {alg} not exercised: {ex}",
            row.name
        );
    }
    for r in &results {
        assert_eq!(r["generated"], true, "[{}] {r}", row.name);
        assert_eq!(r["verdict"], GENERATED, "[{}] {r}", row.name);
        assert_eq!(r["destroyed"], true, "[{}] {r}", row.name);
        let sigs = r["signatures"].as_array().cloned().unwrap_or_default();
        assert!(sigs.len() >= 3, "[{}] {r}", row.name);
        assert!(sigs.iter().all(|s| s[1] == "ok"), "[{}] {r}", row.name);
    }
    let keys_after = row.json(&["key", "list", "--token", &token])["keys"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(
        keys_before, keys_after,
        "[{}] exercise keys left behind",
        row.name
    );
    let audit = row.json(&["audit", "show"]);
    assert!(
        audit.to_string().contains("token.probe.exercise"),
        "[{}] exercise not audited",
        row.name
    );
    let out = row.ok(&["audit", "verify"]);
    assert!(out.contains("audit log OK"), "[{}] {out}", row.name);
    (p, done)
}

/// A token or object label as an RFC 7512 attribute value.
fn enc(v: &str) -> String {
    v.replace('%', "%25")
        .replace(' ', "%20")
        .replace('#', "%23")
        .replace(';', "%3B")
}

/// Every `.sig` file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "sig") {
            out.push(p);
        }
    }
    out
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let t = f();
    eprintln!("[{what}] set up in {:.1} s", start.elapsed().as_secs_f64());
    t
}

#[test]
fn row1_softhsm2() {
    let row = timed("softhsm2", Row::softhsm);
    let (p, done) = probed_scenario(&row);
    assert_eq!(
        sign_plan(&p, "ec-p256", "SHA256withECDSA")["mechanism"],
        "CKM_ECDSA"
    );
    assert_eq!(done.generated.len(), 3);
    assert!(done.signed.contains(&("rsa-3072", "SHA256withRSA")));
}

#[test]
fn row2_tpm2_pkcs11_on_swtpm() {
    let row = timed("tpm2-pkcs11", Row::tpm2);
    let (p, done) = probed_scenario(&row);
    // The TPM signs RSA through its hash-and-sign mechanism (raw RSA would need a decrypt
    // right), ECDSA over the host's digest.
    let rsa = sign_plan(&p, "rsa-3072", "SHA256withRSA");
    assert_eq!(rsa["mechanism"], "CKM_SHA256_RSA_PKCS", "{rsa}");
    assert_eq!(rsa["hashing"], "token", "{rsa}");
    let ec = sign_plan(&p, "ec-p256", "SHA384withECDSA");
    assert_eq!(ec["mechanism"], "CKM_ECDSA", "{ec}");
    assert!(
        ec["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cut to 32 bytes")),
        "{ec}"
    );
    assert!(!can_generate(&p, "rsa-4096"), "{p}");
    // A module that cannot reach its TPM: which file, which call, what it returned, what next.
    let dead = free_port_pair();
    let out = row
        .cmd()
        .env(
            "TPM2_PKCS11_TCTI",
            format!("swtpm:host=127.0.0.1,port={dead}"),
        )
        .args(["token", "probe"])
        .output()
        .expect("probe");
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("libtpm2_pkcs11.so")
            && e.contains("C_Initialize returned CKR_")
            && e.contains("token probe"),
        "{e}"
    );
    assert_eq!(done.generated.len(), 3);
    assert!(done.signed.contains(&("rsa-3072", "SHA256withRSA")));
    // tpm2-pkcs11 stops RSA key generation at 3072 bits: refused up front, naming the range.
    let out = row.run(&[
        "key",
        "generate",
        "--key",
        &row.key_uri("too-big"),
        "--algorithm",
        "rsa-4096",
    ]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("cannot generate rsa-4096") && e.contains("not 4096") && e.contains("matrix"),
        "{e}"
    );
}

#[test]
fn row5_p11kit_client_and_server() {
    let row = timed("p11-kit", Row::p11kit);
    let (p, done) = probed_scenario(&row);
    assert_eq!(
        p["module"]["path"]
            .as_str()
            .map(|m| m.ends_with("p11-kit-client.so")),
        Some(true)
    );
    assert_eq!(done.generated.len(), 3);
    assert!(done.signed.contains(&("rsa-3072", "SHA256withRSA")));
}

/// The module's server dies while an archive is being signed: the command fails naming the
/// token, leaves no output (not even a temporary file), and the audit log stays consistent.
#[test]
fn row5_p11kit_server_killed_mid_signing() {
    let mut row = timed("p11-kit kill", Row::p11kit);
    for (label, alg) in [("root-key", "ec-p256"), ("operator", "ec-p256")] {
        row.ok(&[
            "key",
            "generate",
            "--key",
            &row.key_uri(label),
            "--algorithm",
            alg,
        ]);
    }
    row.ok(&[
        "ca",
        "init",
        "--name",
        "root",
        "--key",
        &row.key_uri("root-key"),
        "--subject",
        "CN=Kill Root",
        "--out",
        "root.pem",
    ]);
    row.ok(&[
        "cert",
        "issue",
        "--ca",
        "root",
        "--profile",
        "signing",
        "--key",
        &row.key_uri("operator"),
        "--subject",
        "CN=Kill Operator",
        "--out",
        "operator.pem",
    ]);
    let audit_before = row.json(&["audit", "show"])["records"]
        .as_array()
        .map_or(0, Vec::len);
    let export = row.export("big", 12_000);
    let mut signing = row
        .cmd()
        .args(["archive", "sign", "--key", &row.key_uri("operator")])
        .args(["--cert", "operator.pem", "--in", &export])
        .args(["--out", "big-signed.tar.gz"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("archive sign");
    // Wait until signed objects are being written (the temporary output file grows), so the
    // server dies in the middle of the batch, not before it.
    let temp_size = |dir: &Path| -> u64 {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(".big-signed.tar.gz.")
                    })
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    let start = Instant::now();
    while temp_size(row.dir.path()) < 64 * 1024 {
        assert!(
            matches!(signing.try_wait(), Ok(None)),
            "archive sign ended before the server could be killed: make the archive bigger"
        );
        assert!(start.elapsed() < Duration::from_secs(120), "no output grew");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut server = row.daemons.pop().expect("server");
    assert_eq!(server.name, "p11-kit server");
    server.kill();
    let out = signing.wait_with_output().expect("wait");
    let e = stderr(&out);
    assert!(!out.status.success(), "signing went on without the server");
    assert!(e.contains("signing"), "{e}");
    assert!(
        e.contains("token=matrix") || e.contains("\"matrix\""),
        "error names no token: {e}"
    );
    assert!(
        e.contains("running and reachable"),
        "error says not what to do: {e}"
    );
    assert!(!row.path("big-signed.tar.gz").exists(), "output written");
    assert_eq!(temp_size(row.dir.path()), 0, "temporary output left behind");
    // The state needs no token: the log is intact and nothing was recorded for the failed run.
    let audit = row.ok(&["audit", "verify"]);
    assert!(audit.contains("audit log OK"), "{audit}");
    let audit_after = row.json(&["audit", "show"])["records"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(
        audit_before, audit_after,
        "the failed signing left audit records"
    );
    eprintln!("[p11-kit kill] error after the kill: {}", e.trim());
}
