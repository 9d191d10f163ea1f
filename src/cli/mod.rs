//! The command line: argument definitions, the run context, and output.
//!
//! Human text goes to stdout, or to stderr under `--json` (then stdout holds exactly one JSON
//! document). Errors go to stderr. Exit status: 0 success, 1 failure, 2 usage, 3 a verification
//! found a bad or missing signature.

mod attest;
mod key;
mod token;

use std::fmt::Display;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use hsmsign::token::{Module, PinError, PinSource, Pkcs11Uri, TokenError, TokenSession};
use secrecy::SecretString;

/// hsmsign: a Certificate Authority and JS7 deployment signer whose keys never leave the token.
#[derive(Parser, Debug)]
#[command(name = "hsmsign", version, about, max_term_width = 100)]
pub struct Cli {
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
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Command groups.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// PKCS#11 tokens: list, initialise test tokens.
    #[command(subcommand)]
    Token(token::TokenCmd),
    /// Keys on a token: generate, list, inspect, public, import.
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// YubiKey PIV attestations: verify one brought from elsewhere.
    #[command(subcommand)]
    Attest(attest::AttestCmd),
}

/// A failure, with the exit status it maps to.
pub enum Failure {
    /// Exit 1: an operation failed.
    Failed(anyhow::Error),
    /// Exit 2: the arguments were wrong.
    Usage(String),
    /// Exit 3: a verification found a bad or missing signature.
    Verification(String),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Failed(e.into())
    }
}

/// The result of a command.
pub type CmdResult = Result<(), Failure>;

/// Shared state of one run.
pub struct Ctx {
    /// The global options.
    pub module: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
    /// `--pin-source`.
    pub pin_source: Option<String>,
    /// `--allow-pin-value`.
    pub allow_pin_value: bool,
}

impl Ctx {
    /// Print the result: human text, or JSON with the human text on stderr.
    pub fn emit(&self, human: impl Display, json: serde_json::Value) {
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

    /// Parse a key or token URI given on the command line.
    pub fn uri(&self, s: &str) -> Result<Pkcs11Uri, Failure> {
        let uri = Pkcs11Uri::parse(s).map_err(TokenError::from)?;
        if uri.pin_value.is_some() && !self.allow_pin_value {
            return Err(Failure::Failed(
                TokenError::from(PinError::PinValueRefused).into(),
            ));
        }
        Ok(uri)
    }

    /// Load the module for `uri`.
    pub fn module(&self, uri: Option<&Pkcs11Uri>) -> Result<Module, Failure> {
        let path = hsmsign::token::resolve_module(self.module.as_deref(), uri)?;
        Ok(Module::load(&path)?)
    }

    /// The user PIN source for `uri`: `--pin-source`, else the URI's `pin-source`, else its
    /// `pin-value` (with `--allow-pin-value`), else the terminal.
    pub fn pin_source(&self, uri: &Pkcs11Uri) -> Result<PinSource, Failure> {
        if let Some(s) = &self.pin_source {
            return Ok(PinSource::parse(s).map_err(TokenError::from)?);
        }
        if let Some(s) = &uri.pin_source {
            return Ok(PinSource::parse(s).map_err(TokenError::from)?);
        }
        if let Some(v) = &uri.pin_value {
            return Ok(PinSource::Value(v.clone()));
        }
        Ok(PinSource::Prompt)
    }

    /// Open the token named by `uri` and log in once.
    pub fn login(&self, module: &Module, uri: &Pkcs11Uri) -> Result<TokenSession, Failure> {
        let mut session = module.open(uri)?;
        let source = self.pin_source(uri)?;
        // Keep the PIN (wiped on drop) when a key is named: keys marked CKA_ALWAYS_AUTHENTICATE
        // need it again before every signature, and asking the person again would be worse.
        let keep = uri.names_object();
        session.login(module, &source, &prompt, keep)?;
        Ok(session)
    }
}

/// Ask on the terminal without echo. Fails (never hangs) without a terminal.
pub fn prompt(what: &str) -> Result<SecretString, PinError> {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_err()
    {
        return Err(PinError::NoTerminal { what: what.into() });
    }
    rpassword::prompt_password(format!("{what}: "))
        .map(SecretString::from)
        .map_err(|error| PinError::Read {
            source_name: "the terminal".into(),
            error,
        })
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> CmdResult {
    let ctx = Ctx {
        module: cli.module,
        json: cli.json,
        pin_source: cli.pin_source,
        allow_pin_value: cli.allow_pin_value,
    };
    match cli.command {
        Command::Token(c) => token::run(&ctx, c),
        Command::Key(c) => key::run(&ctx, c),
        Command::Attest(c) => attest::run(&ctx, c),
    }
}
