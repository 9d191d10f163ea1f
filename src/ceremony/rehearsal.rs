//! Throwaway SoftHSM2 tokens for a rehearsal: one token per role the ceremony names, in a
//! directory of the rehearsal's own, with PINs drawn from the operating system's RNG and kept in
//! 0600 files there. The ceremony then runs unchanged in a child process whose SoftHSM2
//! configuration points at that directory (the module reads its configuration when it is
//! initialised, so a separate process is the one clean way to give it another).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::keys::pkcs11::resolve_module;

/// An error preparing a rehearsal.
#[derive(Debug, thiserror::Error)]
pub enum RehearsalError {
    /// The rehearsal directory exists already.
    #[error(
        "the rehearsal directory {0} exists already; remove it or name another with --rehearsal-dir"
    )]
    Exists(PathBuf),
    /// A file of the rehearsal could not be written.
    #[error("cannot prepare the rehearsal in {path}: {error}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// SoftHSM2 is not installed.
    #[error("a rehearsal needs SoftHSM2 ({0}); install the softhsm2 package")]
    NoSoftHsm(String),
    /// The operating system's RNG failed.
    #[error("cannot draw the throwaway PINs: {0}")]
    Random(String),
    /// Making a throwaway token failed.
    #[error("cannot make the throwaway token for role {role:?}: {detail}")]
    Token {
        /// The role.
        role: String,
        /// What the token tool said.
        detail: String,
    },
}

/// A prepared rehearsal directory.
#[derive(Debug)]
pub struct Rehearsal {
    /// The rehearsal's directory (kept afterwards, for review).
    pub dir: PathBuf,
    /// The SoftHSM2 configuration of its tokens.
    pub softhsm_conf: PathBuf,
    /// The SoftHSM2 module.
    pub module: PathBuf,
    /// The state directory of the rehearsal (never the real one).
    pub state: PathBuf,
    /// Where the rehearsal's outputs go.
    pub out: PathBuf,
    /// The user PIN file of every throwaway token.
    pub pin_file: PathBuf,
    so_pin_file: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RehearsalError + '_ {
    move |error| RehearsalError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Eight random decimal digits (a throwaway test PIN, never a real token's).
fn random_digits() -> Result<String, RehearsalError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| RehearsalError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| char::from(b'0' + b % 10)).collect())
}

fn write_secret(path: &Path, text: &str) -> Result<(), RehearsalError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    f.write_all(text.as_bytes()).map_err(io(path))
}

impl Rehearsal {
    /// Make the directory `dir` (which must not exist) with a SoftHSM2 configuration, PIN files,
    /// an empty state directory and an output directory.
    pub fn prepare(dir: &Path) -> Result<Self, RehearsalError> {
        let module =
            resolve_module(None, None).map_err(|e| RehearsalError::NoSoftHsm(e.to_string()))?;
        if fs::symlink_metadata(dir).is_ok() {
            return Err(RehearsalError::Exists(dir.to_path_buf()));
        }
        let mut builder = fs::DirBuilder::new();
        builder.mode(0o700).recursive(true);
        let tokens = dir.join("tokens");
        let out = dir.join("out");
        for d in [dir, &tokens, &out] {
            builder.create(d).map_err(io(d))?;
        }
        let dir = dir.canonicalize().map_err(io(dir))?;
        let tokens = dir.join("tokens");
        let softhsm_conf = dir.join("softhsm2.conf");
        fs::write(
            &softhsm_conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .map_err(io(&softhsm_conf))?;
        let pin_file = dir.join("user-pin");
        let so_pin_file = dir.join("so-pin");
        write_secret(&pin_file, &random_digits()?)?;
        write_secret(&so_pin_file, &random_digits()?)?;
        Ok(Self {
            state: dir.join("state"),
            out: dir.join("out"),
            dir,
            softhsm_conf,
            module,
            pin_file,
            so_pin_file,
        })
    }

    /// The token label of `role`'s throwaway token.
    pub fn label(role: &str) -> String {
        format!("rehearsal {role}")
    }

    /// A command running `exe` against the throwaway tokens: SoftHSM2's configuration, the
    /// module, the rehearsal's state and PIN file, in the output directory.
    pub fn command(&self, exe: &Path) -> Command {
        let mut cmd = Command::new(exe);
        cmd.env("SOFTHSM2_CONF", &self.softhsm_conf)
            .env("HSMSIGN_MODULE", &self.module)
            .env("HSMSIGN_STATE", &self.state)
            .env(
                "HSMSIGN_PIN_SOURCE",
                format!("file:{}", self.pin_file.display()),
            )
            .current_dir(&self.out);
        cmd
    }

    /// Make `role`'s throwaway token with `exe`'s own `token init`.
    pub fn make_token(&self, exe: &Path, role: &str) -> Result<String, RehearsalError> {
        let label = Self::label(role);
        let out = self
            .command(exe)
            .args(["token", "init", "--label", &label, "--so-pin-source"])
            .arg(format!("file:{}", self.so_pin_file.display()))
            .output()
            .map_err(|e| RehearsalError::Token {
                role: role.to_string(),
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(RehearsalError::Token {
                role: role.to_string(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(label)
    }
}
