//! Where PINs and passwords come from: `prompt`, `env:VAR`, `file:PATH`, `fd:N`. Never argv.
//!
//! A secret is read once, held in a [`SecretString`] (wiped on drop, never printed by `Debug`),
//! and handed to the FFI call. Nothing here retries.

use std::path::{Path, PathBuf};

use crate::input::{InputKind, read_secret, read_secret_stream};

use secrecy::SecretString;
use zeroize::Zeroizing;

/// Errors of PIN sources.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The spelling of a source is not one we know. What was given is not repeated: it may be
    /// the PIN itself, typed where its source was expected.
    #[error(
        "unknown PIN source (what was given is not shown, in case it is a PIN): use prompt, env:VAR, file:PATH or fd:N; a PIN is never taken as a plain argument"
    )]
    BadSource,
    /// `env:VAR` names a variable that is not set.
    #[error(
        "PIN source env:{0}: the environment variable {0} is not set; export it or use another source"
    )]
    EnvMissing(String),
    /// A file or descriptor could not be read.
    #[error("PIN source {source_name}: cannot read it: {error}")]
    Read {
        /// The source.
        source_name: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A PIN file is not a regular file or is too large.
    #[error("PIN source file:{}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why it was not read.
        error: crate::input::InputError,
    },
    /// A PIN file may be read by other users (refused under `--strict-permissions`).
    #[error(
        "PIN source file:{}: the file has mode {mode:04o}, so users other than its owner may read the PIN; run `chmod 600 {}`",
        path.display(), path.display()
    )]
    LoosePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The secret read is not UTF-8 text.
    #[error("PIN source {0} does not hold UTF-8 text; put the PIN alone in it")]
    NotText(String),
    /// The secret read is empty.
    #[error(
        "PIN source {0} gave an empty secret; put the PIN alone in it (a trailing newline is ignored)"
    )]
    Empty(String),
    /// `prompt` was asked for but there is no terminal.
    #[error(
        "{what} is needed but there is no terminal to ask on; give it with --pin-source env:VAR, file:PATH or fd:N"
    )]
    NoTerminal {
        /// What was asked for (e.g. "the user PIN of token JS7 Root").
        what: String,
    },
    /// `pin-value` was found in an URI without `--allow-pin-value`.
    #[error(
        "the key URI carries a pin-value; PINs in URIs end up in shell history and process lists, so hsmsign refuses it unless you pass --allow-pin-value. Prefer ?pin-source=file:PATH"
    )]
    PinValueRefused,
}

/// Asks the person at the terminal for a secret; handed down by the CLI.
pub type Prompter<'a> = &'a dyn Fn(&str) -> Result<SecretString, PinError>;

/// Where a secret comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PinSource {
    /// Ask on the terminal, without echo.
    Prompt,
    /// The value of an environment variable.
    Env(String),
    /// The whole content of a file (one trailing newline ignored).
    File(PathBuf),
    /// Everything readable from an inherited file descriptor.
    Fd(u32),
    /// A value taken from an URI's `pin-value` (only with `--allow-pin-value`).
    Value(super::pkcs11::uri::PinValue),
}

impl std::fmt::Debug for PinSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PinSource {
    /// Parse `prompt`, `env:VAR`, `file:PATH` or `fd:N`.
    pub fn parse(s: &str) -> Result<Self, PinError> {
        let bad = || PinError::BadSource;
        if s == "prompt" {
            return Ok(Self::Prompt);
        }
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        if rest.is_empty() {
            return Err(bad());
        }
        match kind {
            "env" => Ok(Self::Env(rest.to_string())),
            "file" => Ok(Self::File(PathBuf::from(rest))),
            "fd" => rest.parse().map(Self::Fd).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }

    /// A description safe to print (never the secret).
    pub fn describe(&self) -> String {
        match self {
            Self::Prompt => "prompt".into(),
            Self::Env(v) => format!("env:{v}"),
            Self::File(p) => format!("file:{}", p.display()),
            Self::Fd(n) => format!("fd:{n}"),
            Self::Value(_) => "pin-value in the URI".into(),
        }
    }

    /// For a `file:` source whose file may be read by group or others: the error that says so
    /// (a warning, or a refusal under `--strict-permissions`).
    pub fn loose_permissions(&self) -> Option<PinError> {
        use std::os::unix::fs::PermissionsExt;
        let Self::File(path) = self else { return None };
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
        (mode & 0o077 != 0).then(|| PinError::LoosePermissions {
            path: path.clone(),
            mode,
        })
    }

    /// Read the secret. `what` says what it is for (used in the prompt and in errors).
    pub fn read(&self, what: &str, prompter: Prompter<'_>) -> Result<SecretString, PinError> {
        let name = self.describe();
        let read_err = |error| PinError::Read {
            source_name: name.clone(),
            error,
        };
        let bytes: Zeroizing<Vec<u8>> = match self {
            Self::Prompt => return prompter(what),
            Self::Env(var) => Zeroizing::new(
                std::env::var(var)
                    .map_err(|_| PinError::EnvMissing(var.clone()))?
                    .into_bytes(),
            ),
            // A regular file only, at most 4 KiB: a FIFO or a device never hangs the ceremony.
            Self::File(path) => {
                read_secret(path, InputKind::Secret).map_err(|error| PinError::File {
                    path: path.clone(),
                    error,
                })?
            }
            Self::Fd(n) => {
                // /dev/fd/N reopens the inherited descriptor without any unsafe code. A pipe is
                // what fd: is for, so only the size is capped here.
                let file = std::fs::File::open(format!("/dev/fd/{n}")).map_err(read_err)?;
                read_secret_stream(file, InputKind::Secret, Path::new(&name)).map_err(
                    |e| match e {
                        crate::input::InputError::Io { source, .. } => read_err(source),
                        other => PinError::Read {
                            source_name: name.clone(),
                            error: std::io::Error::other(other.to_string()),
                        },
                    },
                )?
            }
            Self::Value(v) => Zeroizing::new(v.0.as_bytes().to_vec()),
        };
        let raw: Zeroizing<String> =
            Zeroizing::new(String::from_utf8(bytes.to_vec()).map_err(|e| {
                // The rejected bytes are a copy of the secret too.
                zeroize::Zeroize::zeroize(&mut e.into_bytes());
                PinError::NotText(name.clone())
            })?);
        let trimmed = raw
            .strip_suffix("\r\n")
            .or_else(|| raw.strip_suffix('\n'))
            .unwrap_or(&raw);
        if trimmed.is_empty() {
            return Err(PinError::Empty(name));
        }
        Ok(SecretString::from(trimmed.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn no_prompt(what: &str) -> Result<SecretString, PinError> {
        Err(PinError::NoTerminal { what: what.into() })
    }

    #[test]
    fn parse_sources() {
        assert_eq!(PinSource::parse("prompt").unwrap(), PinSource::Prompt);
        assert_eq!(
            PinSource::parse("env:HSM_PIN").unwrap(),
            PinSource::Env("HSM_PIN".into())
        );
        assert_eq!(PinSource::parse("fd:3").unwrap(), PinSource::Fd(3));
        for bad in ["1234", "env:", "fd:x", "pass:1234", "file:"] {
            assert!(PinSource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_source_strips_one_newline_and_refuses_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pin");
        std::fs::write(&p, "12 34\n").unwrap();
        let pin = PinSource::File(p.clone()).read("pin", &no_prompt).unwrap();
        assert_eq!(pin.expose_secret(), "12 34");
        std::fs::write(&p, "\n").unwrap();
        assert!(matches!(
            PinSource::File(p).read("pin", &no_prompt),
            Err(PinError::Empty(_))
        ));
    }

    #[test]
    fn prompt_without_terminal_is_an_error_not_a_hang() {
        let e = PinSource::Prompt
            .read("the user PIN of token X", &no_prompt)
            .unwrap_err();
        assert!(e.to_string().contains("--pin-source"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = PinSource::Value(crate::keys::pkcs11::uri::PinValue(Zeroizing::new(
            "9999".into(),
        )));
        assert!(!format!("{s:?}").contains("9999"));
    }

    #[test]
    fn a_pin_typed_as_a_source_is_never_echoed() {
        for typed in ["123456", "pass:123456", "fd:123456x", "123456:"] {
            let e = PinSource::parse(typed).unwrap_err().to_string();
            assert!(!e.contains("123456"), "{typed}: {e}");
        }
    }

    #[test]
    fn pin_files_must_be_regular_and_small_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pin.fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        // Returns at once (no writer ever comes), naming the FIFO.
        let e = PinSource::File(fifo).read("pin", &no_prompt).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let e = PinSource::File("/dev/zero".into())
            .read("pin", &no_prompt)
            .unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let p = dir.path().join("pin");
        std::fs::write(&p, "1234\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let loose = PinSource::File(p.clone()).loose_permissions().unwrap();
        assert!(loose.to_string().contains("0644"), "{loose}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(PinSource::File(p).loose_permissions().is_none());
    }
}
