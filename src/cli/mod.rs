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
mod cert;
pub(crate) mod docs;
mod expiry;
mod handle;
mod key;
#[cfg(feature = "yubikey")]
mod piv;
mod progress;
mod token;
mod version;

use std::fmt::Display;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hsmsign::keys::pkcs11::{Module, PinError, PinSource, Pkcs11Uri, TokenError, TokenSession};
use hsmsign::store::{AuditEntry, Operator, Store};
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

/// Shared state of one run.
pub(crate) struct Ctx {
    /// The global options.
    pub module: Option<PathBuf>,
    /// `--state`.
    pub state: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
    /// `--pin-source`.
    pub pin_source: Option<String>,
    /// `--allow-pin-value`.
    pub allow_pin_value: bool,
    /// `--strict-permissions`.
    pub strict_permissions: bool,
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

    /// Warn about (or, with `--strict-permissions`, refuse) a PIN file others may read.
    pub(crate) fn check_pin_source(&self, source: PinSource) -> Result<PinSource, Failure> {
        if let Some(loose) = source.loose_permissions() {
            if self.strict_permissions {
                return Err(Failure::Failed(TokenError::from(loose).into()));
            }
            self.warn(format!(
                "{loose} (pass --strict-permissions to refuse such files)"
            ));
        }
        Ok(source)
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

    /// Who is acting: the OS user, and the token when one is used.
    pub(crate) fn operator(&self, token: Option<&str>) -> Operator {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| {
                std::fs::read_to_string("/proc/self/status")
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("Uid:"))
                            .and_then(|l| l.split_whitespace().nth(1).map(|u| format!("uid {u}")))
                    })
                    .unwrap_or_else(|| "unknown".into())
            });
        let op = Operator::new(user);
        match token {
            Some(t) => op.with_token(t),
            None => op,
        }
    }

    /// Log in, and record a failed login in the audit log whenever there is a state directory:
    /// `store` if the command has it open, else the one `--state` names (opened only then, so a
    /// read-only command that logs in fine leaves the state alone).
    pub(crate) fn login_audited(
        &self,
        module: &Module,
        uri: &Pkcs11Uri,
        store: Option<&Store>,
    ) -> Result<TokenSession, Failure> {
        match self.login_once(module, uri) {
            Ok(s) => Ok(s),
            Err(Failure::Failed(e)) => {
                if let Some(te) = e.downcast_ref::<TokenError>()
                    && matches!(
                        te,
                        TokenError::PinIncorrect { .. } | TokenError::PinLocked(_)
                    )
                {
                    let entry = AuditEntry::new("login", self.operator(uri.token.as_deref()))
                        .param("token", uri.token_part().to_string())
                        .failed(te.to_string());
                    let recorded = match store {
                        Some(store) => store.record(entry).map(|_| ()).map_err(|e| e.to_string()),
                        None => match self.store() {
                            Ok(Some(store)) => {
                                store.record(entry).map(|_| ()).map_err(|e| e.to_string())
                            }
                            Ok(None) => Ok(()),
                            Err(Failure::Failed(e)) => Err(e.to_string()),
                            Err(
                                Failure::Usage(e)
                                | Failure::Verification(e)
                                | Failure::Attention(e),
                            ) => Err(e),
                        },
                    };
                    if let Err(audit) = recorded {
                        self.warn(format!("the failed login could not be audited: {audit}"));
                    }
                }
                Err(Failure::Failed(e))
            }
            Err(other) => Err(other),
        }
    }

    /// Parse a key or token URI given on the command line.
    pub(crate) fn uri(&self, s: &str) -> Result<Pkcs11Uri, Failure> {
        let uri = Pkcs11Uri::parse(s).map_err(TokenError::from)?;
        if uri.pin_value.is_some() && !self.allow_pin_value {
            return Err(Failure::Failed(
                TokenError::from(PinError::PinValueRefused).into(),
            ));
        }
        Ok(uri)
    }

    /// Load the module for `uri`.
    pub(crate) fn module(&self, uri: Option<&Pkcs11Uri>) -> Result<Module, Failure> {
        let path = hsmsign::keys::pkcs11::resolve_module(self.module.as_deref(), uri)?;
        Ok(Module::load(&path)?)
    }

    /// The user PIN source for `uri`: `--pin-source`, else the URI's `pin-source`, else its
    /// `pin-value` (with `--allow-pin-value`), else the terminal.
    pub(crate) fn pin_source(&self, uri: &Pkcs11Uri) -> Result<PinSource, Failure> {
        if let Some(s) = &self.pin_source {
            return self.check_pin_source(PinSource::parse(s).map_err(TokenError::from)?);
        }
        if let Some(s) = &uri.pin_source {
            return self.check_pin_source(PinSource::parse(s).map_err(TokenError::from)?);
        }
        if let Some(v) = &uri.pin_value {
            return Ok(PinSource::Value(v.clone()));
        }
        Ok(PinSource::Prompt)
    }

    /// Open the token named by `uri` and log in once; a failed login is audited (see
    /// [`Ctx::login_audited`]).
    pub(crate) fn login(&self, module: &Module, uri: &Pkcs11Uri) -> Result<TokenSession, Failure> {
        self.login_audited(module, uri, None)
    }

    fn login_once(&self, module: &Module, uri: &Pkcs11Uri) -> Result<TokenSession, Failure> {
        let mut session = module.open(uri)?;
        let source = self.pin_source(uri)?;
        // Keep the PIN (wiped on drop) when a key is named: keys marked CKA_ALWAYS_AUTHENTICATE
        // need it again before every signature, and asking the person again would be worse.
        let keep = uri.names_object();
        if session.pin_on_pad(&source) {
            eprintln!(
                "Enter the PIN of token {:?} on its PIN pad.",
                session.token().label
            );
        }
        session.login(module, &source, &prompt, keep)?;
        Ok(session)
    }
}

/// Fill a reserved output file and move it into place.
pub(crate) fn write_reserved(
    mut file: hsmsign::output::AtomicFile,
    data: &[u8],
) -> Result<(), hsmsign::output::OutputError> {
    use std::io::Write;
    let path = file.path().to_path_buf();
    file.write_all(data)
        .map_err(|source| hsmsign::output::OutputError::Io { path, source })?;
    file.commit()
}

/// A file written after its record was committed: on failure, say what is already recorded
/// (the serial, the audit record) and how to get the file again, so nothing is silently lost.
pub(crate) fn after_record(
    result: Result<(), hsmsign::output::OutputError>,
    recorded: &str,
    again: &str,
) -> Result<(), Failure> {
    result.map_err(|e| Failure::Failed(anyhow::anyhow!("{e}\nNote: {recorded}; {again}.")))
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
    let bytes = hsmsign::input::read(path, hsmsign::input::InputKind::Certificate)?;
    let der = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN") => {
            let start = text.find("-----BEGIN").unwrap_or(0);
            let (label, der) = der::pem::decode_vec(text[start..].trim().as_bytes())
                .with_context(|| format!("{} is not valid PEM", path.display()))?;
            if label != "CERTIFICATE" {
                return Err(Failure::Failed(anyhow::anyhow!(
                    "{} holds a {label} PEM block, not a CERTIFICATE",
                    path.display()
                )));
            }
            der
        }
        _ => bytes,
    };
    use der::Decode;
    x509_cert::Certificate::from_der(&der)
        .with_context(|| format!("{} is not an X.509 certificate", path.display()))?;
    Ok(der)
}

/// Run a parsed command line.
pub(crate) fn run(cli: Cli) -> CmdResult {
    let ctx = Ctx {
        module: cli.module,
        state: cli.state,
        json: cli.json,
        pin_source: cli.pin_source,
        allow_pin_value: cli.allow_pin_value,
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
    }
}
