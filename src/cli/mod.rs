//! The command line: argument definitions, the run context, and output.
//!
//! Human text goes to stdout, or to stderr under `--json` (then stdout holds exactly one JSON
//! document). Errors go to stderr. Exit status: 0 success, 1 failure, 2 usage, 3 a verification
//! found a bad or missing signature, 4 something needs attention (`expiry`).

mod archive;
mod attest;
mod audit;
mod bundle;
mod ca;
mod ceremony;
mod cert;
pub(crate) mod docs;
mod expiry;

mod key;
#[cfg(feature = "yubikey")]
mod piv;
mod progress;
mod token;
mod version;

use std::fmt::Display;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use hsmsign::keys::pkcs11::PinError;
use hsmsign::keys::{KeyAccess, Officer};
use hsmsign::store::Store;
use secrecy::SecretString;

/// hsmsign: a Certificate Authority and JS7 deployment signer whose keys never leave the token.
#[derive(Parser, Debug)]
#[command(
    name = "hsmsign",
    version,
    about,
    max_term_width = 100,
    disable_version_flag = true
)]
pub(crate) struct Cli {
    /// Print the version, the git commit, the enabled features and the PKCS#11 API version
    /// (with --json: as one JSON document), and exit.
    #[arg(short = 'V', long)]
    pub version: bool,
    /// PKCS#11 module (.so). Default: the key URI's module-path, else SoftHSM2's usual paths.
    #[arg(long, global = true, env = "HSMSIGN_MODULE", value_name = "PATH")]
    pub module: Option<PathBuf>,
    /// CA state directory (SQLite database and audit log). Created on first use.
    #[arg(long, global = true, env = "HSMSIGN_STATE", value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Print one JSON document on stdout; human text and progress go to stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// Where the token's user PIN comes from: prompt, env:VAR, file:PATH or fd:N.
    #[arg(long, global = true, env = "HSMSIGN_PIN_SOURCE", value_name = "SRC")]
    pub pin_source: Option<String>,
    /// Accept a pin-value inside a key URI (it lands in shell history: avoid).
    #[arg(long, global = true)]
    pub allow_pin_value: bool,
    /// Refuse (instead of warning about) a PIN file, state directory or database that users
    /// other than its owner may read.
    #[arg(long, global = true, env = "HSMSIGN_STRICT_PERMISSIONS")]
    pub strict_permissions: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Command groups.
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// PKCS#11 tokens: list, initialise test tokens.
    #[command(subcommand)]
    Token(token::TokenCmd),
    /// Keys on a token or YubiKey: generate, list, inspect, public, attest, import.
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// Certificate Authorities in the token: root, intermediate, import, show, export.
    #[command(subcommand)]
    Ca(ca::CaCmd),
    /// Certificates for JOC Cockpit, Controllers, Agents and operators.
    #[command(subcommand)]
    Cert(cert::CertCmd),
    /// CA bundles, truststores and JS7 private.conf snippets.
    #[command(subcommand)]
    Bundle(bundle::BundleCmd),
    /// Certificate revocation lists.
    #[command(subcommand)]
    Crl(ca::CrlCmd),
    /// JS7 deployment archives: sign with an operator's token key, verify as a Controller would.
    #[command(subcommand)]
    Archive(archive::ArchiveCmd),
    /// The audit log of the state directory: show, verify, anchor.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// YubiKey PIV attestations: verify one brought from elsewhere.
    #[command(subcommand)]
    Attest(attest::AttestCmd),
    /// What ends soon: every CA and certificate of the state with its days left, what JS7
    /// component depends on it and what breaks; exit status 4 when anything ends within the
    /// window.
    Expiry(expiry::ExpiryArgs),
    /// Ceremonies: check a ceremony file and print its plan, render a transcript's record.
    #[command(subcommand)]
    Ceremony(ceremony::CeremonyCmd),
}

/// A failure, with the exit status it maps to.
pub(crate) enum Failure {
    /// Exit 1: an operation failed.
    Failed(anyhow::Error),
    /// Exit 2: the arguments were wrong.
    Usage(String),
    /// Exit 3: a verification found a bad or missing signature.
    Verification(String),
    /// Exit 4: the command ran, and what it found needs attention (`expiry`).
    Attention(String),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::Failed(e.into())
    }
}

/// The result of a command.
pub(crate) type CmdResult = Result<(), Failure>;

/// The officer at the terminal: asked on /dev/tty, told on stderr.
pub(crate) struct Terminal;

impl Officer for Terminal {
    fn secret(&self, what: &str) -> Result<SecretString, PinError> {
        prompt(what)
    }
    fn notice(&self, text: &str) {
        eprintln!("warning: {text}");
    }
    fn touch(&self) {
        progress::touch_prompt();
    }
    fn pin_pad(&self, token: &str) {
        eprintln!("Enter the PIN of token {token:?} on its PIN pad.");
    }
    fn confirm(&self, what: &str) -> bool {
        use std::io::{BufRead, Write};
        eprint!("{what}\nType yes to go on, anything else to stop: ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(n) if n > 0 => line.trim() == "yes",
            _ => false,
        }
    }
}

/// Shared state of one run.
pub(crate) struct Ctx {
    /// `--state`.
    pub state: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
    /// `--strict-permissions`.
    pub strict_permissions: bool,
    /// `--module`, `--pin-source`, `--allow-pin-value`, and the terminal to ask.
    pub keys: KeyAccess<'static>,
}

impl Ctx {
    /// Print the result: human text, or JSON with the human text on stderr.
    pub(crate) fn emit(&self, human: impl Display, json: serde_json::Value) {
        if self.json {
            let text = human.to_string();
            if !text.is_empty() {
                eprintln!("{text}");
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_else(|_| "{}".into())
            );
        } else {
            println!("{human}");
        }
    }

    /// A warning for the operator (stderr, always).
    pub(crate) fn warn(&self, text: impl Display) {
        eprintln!("warning: {text}");
    }

    /// The state store, when `--state` / `HSMSIGN_STATE` is given. A state directory or
    /// database that others may read is warned about (refused with `--strict-permissions`).
    pub(crate) fn store(&self) -> Result<Option<Store>, Failure> {
        let Some(dir) = &self.state else {
            return Ok(None);
        };
        let store = Store::open(dir)?;
        for (path, mode) in store.loose_permissions() {
            let text = format!(
                "{} has mode {mode:04o}: users other than its owner may read or change the CA state; run `chmod go-rwx {}`",
                path.display(),
                path.display()
            );
            if self.strict_permissions {
                return Err(Failure::Failed(anyhow::anyhow!(
                    "{text} (refused under --strict-permissions)"
                )));
            }
            self.warn(text);
        }
        Ok(Some(store))
    }

    /// The state store, required.
    pub(crate) fn require_store(&self) -> Result<Store, Failure> {
        self.store()?.ok_or_else(|| {
            Failure::Usage(
                "this command needs the CA state directory: pass --state DIR or set HSMSIGN_STATE"
                    .into(),
            )
        })
    }
}

/// Ask on the terminal without echo. Fails (never hangs) without a terminal.
pub(crate) fn prompt(what: &str) -> Result<SecretString, PinError> {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_err()
    {
        return Err(PinError::NoTerminal { what: what.into() });
    }
    rpassword::prompt_password(format!("{what}: "))
        // Copied into the secret, and the String rpassword returned is wiped.
        .map(|typed| SecretString::from(zeroize::Zeroizing::new(typed).as_str()))
        .map_err(|error| PinError::Read {
            source_name: "the terminal".into(),
            error,
        })
}

/// Read one certificate from a PEM or DER file.
pub(crate) fn read_certificate(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    Ok(hsmsign::x509::read_certificate_file(path)?)
}

/// Run a parsed command line.
pub(crate) fn run(cli: Cli) -> CmdResult {
    let ctx = Ctx {
        keys: KeyAccess {
            module: cli.module,
            pin_source: cli.pin_source,
            allow_pin_value: cli.allow_pin_value,
            strict_permissions: cli.strict_permissions,
            state: cli.state.clone(),
            officer: &Terminal,
        },
        state: cli.state,
        json: cli.json,
        strict_permissions: cli.strict_permissions,
    };
    if cli.version {
        println!("{}", version::render(cli.json));
        return Ok(());
    }
    let Some(command) = cli.command else {
        return Err(Failure::Usage(
            "no command given: name one (e.g. `hsmsign token list`), or pass --version".into(),
        ));
    };
    match command {
        Command::Token(c) => token::run(&ctx, c),
        Command::Key(c) => key::run(&ctx, c),
        Command::Attest(c) => attest::run(&ctx, c),
        Command::Expiry(a) => expiry::run(&ctx, a),
        Command::Archive(c) => archive::run(&ctx, c),
        Command::Ca(c) => ca::run(&ctx, c),
        Command::Cert(c) => cert::run(&ctx, c),
        Command::Bundle(c) => bundle::run(&ctx, c),
        Command::Crl(c) => ca::run_crl(&ctx, c),
        Command::Audit(c) => audit::run(&ctx, c),
        Command::Ceremony(c) => ceremony::run(&ctx, c),
    }
}

/// A CA use case's error: its usage errors exit with status 2, the rest with 1.
pub(crate) fn ca_failure(e: hsmsign::ca::CaError) -> Failure {
    match e {
        hsmsign::ca::CaError::Usage(m) => Failure::Usage(m),
        e => Failure::Failed(e.into()),
    }
}

/// A key use case's error: its usage errors exit with status 2, the rest with 1.
pub(crate) fn key_failure(e: hsmsign::keys::KeyError) -> Failure {
    match e {
        hsmsign::keys::KeyError::Usage(m) => Failure::Usage(m),
        e => Failure::Failed(e.into()),
    }
}
