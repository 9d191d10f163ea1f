//! The token matrix: one end-to-end scenario, the same on every row, driven through the hsmsign
//! binary against real PKCS#11 modules.
//!
//! Rows: (1) SoftHSM2; (2) tpm2-pkcs11 on swtpm, behind tpm2-abrmd on a private D-Bus (without
//! a resource manager the TPM's three transient object slots run out); (5) p11-kit's client
//! module talking to `p11-kit server`, which exports a SoftHSM2 token from another process, as
//! a network HSM would. Every server is started here with private state in a temp dir, on a free
//! loopback port or a Unix socket in that dir, and killed when the row is dropped.
//! Rows (3) OpenSC's PKCS#11 module and (4) Yubico's ykcs11 talk to the emulated PIV card of
//! tools/piv-emulator behind a private pcscd (tools/piv-emulator/run-with-pcscd.sh, which needs
//! root): those two tests are ignored by default and run by scripts/test-yubikey.sh as root.
//!
//! The test PINs reach tpm2_ptool on its command line (it takes no other way); hsmsign itself
//! reads them from a file.

mod common;

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
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
    /// Asked to stop with TERM first (and given 10 s), so that it can clean up after itself.
    graceful: bool,
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
        Self {
            name,
            child,
            graceful: false,
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn kill(&mut self) {
        if self.graceful && self.alive() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let start = Instant::now();
            while self.alive() && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
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
    /// PIV rows: a process inside the private pcscd's mount and network namespaces.
    ns: Option<String>,
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
        // PIN files as an officer keeps them (hsmsign warns about looser ones).
        for f in ["pin", "so-pin"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(0o600))
                .expect("pin mode");
        }
        Self {
            name,
            dir,
            env: Vec::new(),
            token: token.into(),
            daemons: Vec::new(),
            ns: None,
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
        let mut row = Self::new("softhsm2", "matrix");
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
        let mut row = Self::new("tpm2-pkcs11", "matrix");
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

    /// Rows 3 and 4: the emulated PIV card in a private pcscd whose reader is `reader` (ykcs11
    /// lists only readers whose name starts with "Yubico"); hsmsign and the card's tools run in
    /// that pcscd's namespaces through nsenter. Three keys are made natively on the card (a PIV
    /// PKCS#11 module cannot generate them: asserted by the rows): slot 9a P-384 (root CA), 9e
    /// P-256 (issuing CA; 9d, key management, is not a signing slot for OpenSC), 9c P-256
    /// (operator; CKA_ALWAYS_AUTHENTICATE). With `placeholder_certs`,
    /// each slot also gets a certificate for its public key, because OpenSC's PIV driver shows a
    /// private key only when its slot holds a certificate (it takes the public key from there).
    fn piv(name: &'static str, module: &[&str], reader: &str, placeholder_certs: bool) -> Self {
        assert!(
            is_root(),
            "the PIV rows need root for a private pcscd: run scripts/test-yubikey.sh as root"
        );
        let root = env!("CARGO_MANIFEST_DIR");
        let script = format!("{root}/tools/piv-emulator/run-with-pcscd.sh");
        assert!(
            Path::new(&format!(
                "{root}/tools/piv-emulator/target/release/piv-emulator"
            ))
            .exists(),
            "the PIV emulator is not built: run scripts/test-yubikey.sh (it builds tools/piv-emulator)"
        );
        let mut row = Self::new(name, "");
        std::fs::write(row.path("pin"), "123456\n").expect("pin");
        std::fs::set_permissions(row.path("pin"), std::fs::Permissions::from_mode(0o600))
            .expect("pin mode");
        let pid_file = row.path("ns.pid");
        let log = row.path("pcscd.log");
        let mut card = Daemon::spawn(
            "pcscd with the emulated card",
            Command::new(&script)
                .args(["--reader-name", reader, "--"])
                .args(["sh", "-c", "echo $$ > \"$0\"; exec sleep 3600"])
                .arg(&pid_file),
            &log,
        );
        card.graceful = true;
        let ready =
            || std::fs::read_to_string(&pid_file).is_ok_and(|p| p.trim().parse::<u32>().is_ok());
        wait_for(
            "pcscd with the emulated PIV card",
            &log,
            Some(&mut card),
            ready,
        );
        row.daemons.push(card);
        let pid = std::fs::read_to_string(&pid_file).expect("pid");
        row.ns = Some(pid.trim().to_string());
        row.set("HSMSIGN_MODULE", find_module(name, module));

        // The keys, made natively (yubikey: URIs go to the card over PC/SC, not PKCS#11).
        for (slot, alg) in [("9a", "ec-p384"), ("9e", "ec-p256"), ("9c", "ec-p256")] {
            row.ok(&[
                "key",
                "generate",
                "--key",
                &format!("yubikey:slot={slot}"),
                "--algorithm",
                alg,
                "--allow-default-credentials",
            ]);
            if placeholder_certs {
                let public = format!("{slot}.pub");
                row.ok(&[
                    "key",
                    "public",
                    "--key",
                    &format!("yubikey:slot={slot}"),
                    "--out",
                    &public,
                ]);
                if !row.path("placeholder.key").exists() {
                    row.tool(
                        "openssl",
                        &[
                            "genpkey",
                            "-algorithm",
                            "ec",
                            "-pkeyopt",
                            "ec_paramgen_curve:P-256",
                            "-out",
                            "placeholder.key",
                        ],
                    );
                    // OpenSC names the token after the PIV authentication certificate's CN.
                    row.tool(
                        "openssl",
                        &[
                            "req",
                            "-new",
                            "-key",
                            "placeholder.key",
                            "-subj",
                            "/CN=matrix",
                            "-out",
                            "placeholder.csr",
                        ],
                    );
                }
                let cert = format!("{slot}.crt");
                row.tool(
                    "openssl",
                    &[
                        "x509",
                        "-req",
                        "-in",
                        "placeholder.csr",
                        "-signkey",
                        "placeholder.key",
                        "-force_pubkey",
                        &public,
                        "-days",
                        "2",
                        "-out",
                        &cert,
                    ],
                );
                let out = row
                    .in_ns("yubico-piv-tool")
                    .args([
                        "-r",
                        reader,
                        "-a",
                        "import-certificate",
                        "-s",
                        slot,
                        "-i",
                        &cert,
                    ])
                    .output()
                    .expect("yubico-piv-tool");
                assert!(
                    out.status.success(),
                    "yubico-piv-tool import-certificate {slot}: {}",
                    stderr(&out)
                );
            }
        }
        // The token as the module shows it.
        let tokens = row.json(&["key", "list"]);
        row.token = tokens["token"]["label"]
            .as_str()
            .expect("token label")
            .to_string();
        row
    }

    /// A program run inside the row's private pcscd namespaces (PIV rows), else directly.
    fn in_ns(&self, program: &str) -> Command {
        let mut c = match &self.ns {
            Some(pid) => {
                let mut c = Command::new("nsenter");
                c.args(["-t", pid, "-m", "-n"])
                    .arg(format!("--wd={}", self.dir.path().display()))
                    .args(["--", program]);
                c
            }
            None => Command::new(program),
        };
        c.current_dir(self.dir.path()).stdin(Stdio::null());
        c
    }

    /// Row 5: p11-kit's client module, and `p11-kit server` exporting a SoftHSM2 token.
    fn p11kit() -> Self {
        let mut row = Self::new("p11-kit", "matrix");
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
        let mut c = self.in_ns(env!("CARGO_BIN_EXE_hsmsign"));
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

/// The row's archive signings used the session count `token probe` announced; returns it.
fn signing_sessions(row: &Row, p: &serde_json::Value) -> u64 {
    let sessions = &p["token"]["signing_sessions"];
    eprintln!(
        "[{}] signing sessions by default: {} ({})",
        row.name, sessions["sessions"], sessions["reason"]
    );
    let signings: Vec<serde_json::Value> = row.json(&["audit", "show"])["records"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter(|r| r["operation"] == "archive.sign")
                .map(|r| r["details"]["params"]["sessions"].clone())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !signings.is_empty(),
        "[{}] no archive.sign record",
        row.name
    );
    for used in &signings {
        assert_eq!(
            used.as_str().and_then(|s| s.parse::<u64>().ok()),
            sessions["sessions"].as_u64(),
            "[{}] archive sign used {used} sessions, probe said {sessions}",
            row.name
        );
    }
    sessions["sessions"].as_u64().unwrap_or(0)
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
    signing_sessions(row, &p);
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

/// Whether this process runs as root (`id -u`; the crate forbids unsafe code, so no geteuid).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
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
    // The batch must stop on its own (every signing session sees the server gone): waited for
    // with a deadline, so a hang fails the test instead of stalling it.
    let killed_at = Instant::now();
    while matches!(signing.try_wait(), Ok(None)) {
        if killed_at.elapsed() > Duration::from_secs(60) {
            let _ = signing.kill();
            let _ = signing.wait();
            panic!("archive sign still running 60 s after the server was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
    // The state needs no token: the log is intact and holds one record more, the failed
    // attempt, naming the key.
    let audit = row.ok(&["audit", "verify"]);
    assert!(audit.contains("audit log OK"), "{audit}");
    let records = row.json(&["audit", "show"])["records"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        records.len(),
        audit_before + 1,
        "the failed signing is not recorded once"
    );
    let last = &records[records.len() - 1];
    assert_eq!(last["operation"], "archive.sign", "{last}");
    assert!(last["result"]["failed"].is_string(), "{last}");
    assert!(
        last["details"].to_string().contains("object=operator"),
        "{last}"
    );
    eprintln!("[p11-kit kill] error after the kill: {}", e.trim());
}

const OPENSC: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11/opensc-pkcs11.so",
];

const YKCS11: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libykcs11.so",
    "/usr/lib/aarch64-linux-gnu/libykcs11.so",
];

/// What the PIV scenario saw.
struct PivDone {
    /// `token probe --json` before anything else.
    probe: serde_json::Value,
    /// The refusal of `key generate` through the module.
    refusal: String,
    /// Standard error of `ca init` and `ca intermediate`.
    notices: String,
    /// `key inspect --json` of the root, issuing and operator keys.
    inspected: Vec<serde_json::Value>,
}

/// Rows 3 and 4: the same scenario, except that the module cannot generate keys (asserted:
/// a clear refusal), so the ceremony runs with the keys made natively on the card, found by
/// the module's labels for slots 9a (root), 9c (operator) and 9e (issuing).
fn piv_scenario(row: &Row, labels: [&str; 3]) -> PivDone {
    let started = Instant::now();
    let probe = probe(row);
    // 1. Key generation through the PIV module: refused, saying what to do instead.
    let out = row.run(&[
        "key",
        "generate",
        "--key",
        &row.key_uri("new-key"),
        "--algorithm",
        "ec-p256",
    ]);
    assert!(
        !out.status.success(),
        "[{}] generation went through",
        row.name
    );
    let refusal = stderr(&out);
    assert!(
        refusal.contains(&format!("token {:?}", row.token)) && refusal.contains("ec-p256"),
        "[{}] {refusal}",
        row.name
    );
    assert!(!refusal.contains("panicked"), "[{}] {refusal}", row.name);
    // 2. The card's keys as the module shows them, with their provenance verdicts.
    let [root, operator, issuing] = labels;
    let mut inspected = Vec::new();
    for (label, alg) in [
        (root, "ec-p384"),
        (issuing, "ec-p256"),
        (operator, "ec-p256"),
    ] {
        let ins = row.json(&["key", "inspect", "--key", &row.key_uri(label)]);
        assert_eq!(
            ins["key"]["algorithm"], alg,
            "[{}] {label}: {ins}",
            row.name
        );
        inspected.push(ins);
    }
    // 3.-8. The ceremony.
    let keys = Keys {
        root: row.key_uri(root),
        issuing: row.key_uri(issuing),
        operators: vec![("operator".into(), row.key_uri(operator), "ec-p256")],
    };
    let notices = ceremony(row, &keys);
    // A card in a reader is one device: one signing session.
    assert_eq!(signing_sessions(row, &probe), 1, "[{}] {probe}", row.name);
    // What probe promised for the signatures made.
    for (key, alg) in [
        ("ec-p384", "SHA384withECDSA"),
        ("ec-p256", "SHA256withECDSA"),
    ] {
        let plan = sign_plan(&probe, key, alg);
        assert_eq!(plan["possible"], true, "[{}] {plan}", row.name);
    }
    eprintln!(
        "[{}] scenario passed in {:.1} s",
        row.name,
        started.elapsed().as_secs_f64()
    );
    PivDone {
        probe,
        refusal,
        notices,
        inspected,
    }
}

/// `key inspect` attribute `name` as the token reported it.
fn attribute<'v>(inspected: &'v serde_json::Value, name: &str) -> &'v str {
    inspected["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p[0] == name))
        .and_then(|p| p[1].as_str())
        .unwrap_or_else(|| panic!("no {name} in {inspected}"))
}

/// `token probe --exercise` on a PIV row: returns its exit success and JSON output, and checks
/// that it left the card's keys as they were and recorded itself in the audit log.
fn piv_exercise(row: &Row) -> (bool, serde_json::Value) {
    let token = format!("pkcs11:token={}", enc(&row.token));
    let count = || {
        row.json(&["key", "list", "--token", &token])["keys"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let before = count();
    let out = row.run(&["--json", "token", "probe", "--token", &token, "--exercise"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| {
        panic!(
            "[{}] probe --exercise printed no JSON ({e}): {}{}",
            row.name,
            stdout(&out),
            stderr(&out)
        )
    });
    assert_eq!(before, count(), "[{}] exercise changed the keys", row.name);
    let audit = row.ok(&["audit", "verify"]);
    assert!(audit.contains("audit log OK"), "[{}] {audit}", row.name);
    (out.status.success(), v)
}

#[test]
#[ignore = "needs root and the PIV emulator: run by scripts/test-yubikey.sh"]
fn row3_opensc_on_emulated_piv() {
    let row = timed("opensc", || {
        Row::piv("opensc-pkcs11", OPENSC, "Virtual PCD", true)
    });
    let done = piv_scenario(&row, ["PIV AUTH key", "SIGN key", "CARD AUTH key"]);
    // The module offers no key-pair generation at all: probe said so, and hsmsign's refusal
    // says where keys come from instead.
    for alg in ["ec-p256", "ec-p384", "rsa-3072"] {
        assert!(!can_generate(&done.probe, alg), "{}", done.probe);
    }
    assert!(
        done.refusal
            .contains("neither CKM_EC_KEY_PAIR_GEN nor CKM_RSA_PKCS_KEY_PAIR_GEN")
            && done.refusal.contains("yubikey:slot=9a")
            && done.refusal.contains("hsmsign key list"),
        "{}",
        done.refusal
    );
    // OpenSC derives the key attributes from the slot: made on the card, one-byte CKA_IDs
    // (01 = 9a, 04 = 9e, 02 = 9c), and the signature slot wants a context-specific login.
    for (ins, id) in done.inspected.iter().zip(["01", "04", "02"]) {
        assert_eq!(ins["verdict"], GENERATED, "{ins}");
        assert_eq!(ins["key"]["id"], id, "{ins}");
    }
    assert_eq!(
        attribute(&done.inspected[2], "CKA_ALWAYS_AUTHENTICATE"),
        "true"
    );
    assert_eq!(
        attribute(&done.inspected[0], "CKA_ALWAYS_AUTHENTICATE"),
        "false"
    );
    // C_GenerateRandom fails (the card has no GET CHALLENGE): the OS RNG, said once per run
    // (two runs: ca init and ca intermediate).
    assert_eq!(
        done.notices
            .matches("has no working random number generator (C_GenerateRandom returned CKR_FUNCTION_NOT_SUPPORTED)")
            .count(),
        2,
        "{}",
        done.notices
    );
    // The slots' certificates stay; the CA certificates live in the state database.
    assert_eq!(
        done.notices
            .matches("already holds an end-entity certificate (subject CN=matrix) for")
            .count(),
        2,
        "{}",
        done.notices
    );
    // The probe's signature plans were what the scenario used: ECDSA over a host digest.
    for key in ["ec-p256", "ec-p384"] {
        let plan = sign_plan(
            &done.probe,
            key,
            if key == "ec-p256" {
                "SHA256withECDSA"
            } else {
                "SHA384withECDSA"
            },
        );
        assert_eq!(plan["mechanism"], "CKM_ECDSA", "{plan}");
        assert_eq!(plan["hashing"], "host", "{plan}");
    }
    // Nothing promised, nothing exercised.
    let (ok, ex) = piv_exercise(&row);
    assert!(ok, "{ex}");
    assert_eq!(ex["exercise"].as_array().map_or(0, Vec::len), 0, "{ex}");
}

#[test]
#[ignore = "needs root and the PIV emulator: run by scripts/test-yubikey.sh"]
fn row4_ykcs11_on_emulated_piv() {
    let row = timed("ykcs11", || {
        Row::piv("ykcs11", YKCS11, "Yubico Virtual PCD", false)
    });
    assert!(row.token.starts_with("YubiKey PIV #"), "{}", row.token);
    let done = piv_scenario(
        &row,
        [
            "Private key for PIV Authentication",
            "Private key for Digital Signature",
            "Private key for Card Authentication",
        ],
    );
    // ykcs11 lists CKM_EC_KEY_PAIR_GEN for 256..384 bits, so the read-only probe promises EC
    // generation; the module refuses it to a user login and to an eight-byte CKA_ID. hsmsign's
    // refusal names the return codes and the way out; `--exercise` finds the broken promise.
    assert!(can_generate(&done.probe, "ec-p256"), "{}", done.probe);
    assert!(!can_generate(&done.probe, "rsa-3072"), "{}", done.probe);
    assert!(
        done.refusal.contains("C_GenerateKeyPair returned CKR_")
            && done.refusal.contains("management key")
            && done.refusal.contains("yubikey:slot=9a"),
        "{}",
        done.refusal
    );
    let (ok, ex) = piv_exercise(&row);
    assert!(!ok, "exercise passed although generation is refused: {ex}");
    let results = ex["exercise"].as_array().cloned().unwrap_or_default();
    assert!(!results.is_empty(), "{ex}");
    for r in &results {
        assert_eq!(r["generated"], false, "{r}");
        assert!(
            r["error"]
                .as_str()
                .is_some_and(|e| e.contains("C_GenerateKeyPair returned CKR_")),
            "{r}"
        );
    }
    // ykcs11 reports EC keys as able to decrypt (PIV's ECDH): key inspect says so rather than
    // claiming a signing-only key; one-byte ids; 9c wants a context-specific login.
    for (ins, id) in done.inspected.iter().zip(["01", "04", "02"]) {
        assert_eq!(
            ins["verdict"], "also usable beyond signing (CKA_DECRYPT is true)",
            "{ins}"
        );
        assert_eq!(attribute(ins, "CKA_LOCAL"), "true", "{ins}");
        assert_eq!(attribute(ins, "CKA_NEVER_EXTRACTABLE"), "true", "{ins}");
        assert_eq!(ins["key"]["id"], id, "{ins}");
    }
    assert_eq!(
        attribute(&done.inspected[2], "CKA_ALWAYS_AUTHENTICATE"),
        "true"
    );
    // Its RNG works; certificate objects need the management key: the CA certificates live in
    // the state database, said once per run.
    assert!(
        !done.notices.contains("random number generator"),
        "{}",
        done.notices
    );
    assert_eq!(
        done.notices.matches("CKR_USER_TYPE_INVALID").count(),
        2,
        "{}",
        done.notices
    );
    assert!(
        done.notices.contains("lives only in the state database"),
        "{}",
        done.notices
    );
}
