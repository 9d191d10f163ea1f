//! How a run reaches its keys: which module, where PINs come from, and the [`Officer`] who is
//! asked for them and told what happens. Front ends (the command line, the ceremony runner) fill
//! one [`KeyAccess`] and hand it down; nothing below prints or prompts on its own.

use std::path::PathBuf;

use secrecy::SecretString;

use super::pin::{PinError, PinSource};
use super::pkcs11::{Module, Pkcs11Uri, TokenError, TokenSession};
use crate::store::{AuditEntry, Operator, Store};

/// The person at the appliance, as the library sees them: asked for secrets, told what happens.
pub trait Officer {
    /// Ask for a secret (a PIN, a password) without echo; fail, never hang, without a terminal.
    fn secret(&self, what: &str) -> Result<SecretString, PinError>;
    /// Tell the officer something they must know (printed as a warning by the command line).
    fn notice(&self, text: &str);
    /// The device waits for a touch (a YubiKey with a touch policy).
    fn touch(&self) {}
    /// The PIN is to be typed on the token's own PIN pad.
    fn pin_pad(&self, token: &str) {
        self.notice(&format!("Enter the PIN of token {token:?} on its PIN pad."));
    }
    /// Show `what` is about to be done and ask the officer to type `yes`. Anything else, or no
    /// answer, is a no.
    fn confirm(&self, what: &str) -> bool {
        let _ = what;
        false
    }
}

/// An officer who is asked each secret once per run: a ceremony logs in to each token once, and
/// later steps on the same token are not asked again. Secrets stay wiped-on-drop secrets, kept
/// only for the run.
pub struct AskOnce<'a> {
    inner: &'a dyn Officer,
    asked: std::cell::RefCell<Vec<(String, SecretString)>>,
}

impl<'a> AskOnce<'a> {
    /// Ask `inner`, remembering the answers for the run.
    pub fn new(inner: &'a dyn Officer) -> Self {
        Self {
            inner,
            asked: std::cell::RefCell::new(Vec::new()),
        }
    }
}

impl Officer for AskOnce<'_> {
    fn secret(&self, what: &str) -> Result<SecretString, PinError> {
        if let Some((_, s)) = self.asked.borrow().iter().find(|(w, _)| w == what) {
            return Ok(s.clone());
        }
        let s = self.inner.secret(what)?;
        self.asked.borrow_mut().push((what.to_string(), s.clone()));
        Ok(s)
    }
    fn notice(&self, text: &str) {
        self.inner.notice(text);
    }
    fn touch(&self) {
        self.inner.touch();
    }
    fn pin_pad(&self, token: &str) {
        self.inner.pin_pad(token);
    }
    fn confirm(&self, what: &str) -> bool {
        self.inner.confirm(what)
    }
}

/// An error reaching a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PKCS#11 module, token, session or key failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The YubiKey failed.
    #[cfg(feature = "yubikey")]
    #[error(transparent)]
    Piv(#[from] super::piv::PivError),
    /// The key's attestation did not verify.
    #[error(transparent)]
    Attest(#[from] crate::attest::AttestError),
    /// The key is not one this operation may use (the message says why and what to do).
    #[error("{0}")]
    Refused(String),
    /// The request's options do not fit together (a usage error: exit status 2).
    #[error("{0}")]
    Usage(String),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// An input file could not be read.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
}

impl From<PinError> for KeyError {
    fn from(e: PinError) -> Self {
        Self::Token(e.into())
    }
}

/// Which module, which PIN source, and who to ask: everything needed to open a key.
pub struct KeyAccess<'a> {
    /// `--module` / `HSMSIGN_MODULE`.
    pub module: Option<PathBuf>,
    /// `--pin-source` / `HSMSIGN_PIN_SOURCE`: overrides a URI's own `pin-source`.
    pub pin_source: Option<String>,
    /// Accept a `pin-value` inside a key URI.
    pub allow_pin_value: bool,
    /// Refuse (instead of warning about) a PIN file others may read.
    pub strict_permissions: bool,
    /// The state directory, where a failed login is recorded when the operation has not opened
    /// the state itself.
    pub state: Option<PathBuf>,
    /// Who is asked and told.
    pub officer: &'a dyn Officer,
}

impl KeyAccess<'_> {
    /// Parse a key or token URI, refusing a `pin-value` unless allowed.
    pub fn uri(&self, s: &str) -> Result<Pkcs11Uri, KeyError> {
        let uri = Pkcs11Uri::parse(s).map_err(TokenError::from)?;
        if uri.pin_value.is_some() && !self.allow_pin_value {
            return Err(TokenError::from(PinError::PinValueRefused).into());
        }
        Ok(uri)
    }

    /// Load the module for `uri`: `--module`, else the URI's `module-path`, else SoftHSM2's
    /// usual paths.
    pub fn module(&self, uri: Option<&Pkcs11Uri>) -> Result<Module, KeyError> {
        let path = super::pkcs11::resolve_module(self.module.as_deref(), uri)?;
        Ok(Module::load(&path)?)
    }

    /// Warn about (or, with `strict_permissions`, refuse) a PIN file others may read.
    pub fn check_pin_source(&self, source: PinSource) -> Result<PinSource, KeyError> {
        if let Some(loose) = source.loose_permissions() {
            if self.strict_permissions {
                return Err(TokenError::from(loose).into());
            }
            self.officer.notice(&format!(
                "{loose} (pass --strict-permissions to refuse such files)"
            ));
        }
        Ok(source)
    }

    /// The user PIN source for `uri`: the run's `pin_source`, else the URI's `pin-source`, else
    /// its `pin-value` (when allowed), else the terminal.
    pub fn pin_source(&self, uri: &Pkcs11Uri) -> Result<PinSource, KeyError> {
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

    /// Read a secret other than a PIN (a PKCS#12 password) from `source` (`None`: the terminal).
    pub fn read_secret(&self, source: Option<&str>, what: &str) -> Result<SecretString, KeyError> {
        let source = match source {
            Some(s) => self.check_pin_source(PinSource::parse(s).map_err(TokenError::from)?)?,
            None => PinSource::Prompt,
        };
        Ok(source
            .read(what, &|w| self.officer.secret(w))
            .map_err(TokenError::from)?)
    }

    /// Open the token named by `uri` and log in once. A wrong or locked PIN is recorded in the
    /// audit log whenever there is a state: `store` if the operation has it open, else the one
    /// [`Self::state`] names (opened only then, so a read-only operation that logs in fine
    /// leaves the state alone).
    pub fn login(
        &self,
        module: &Module,
        uri: &Pkcs11Uri,
        store: Option<&Store>,
    ) -> Result<TokenSession, KeyError> {
        match self.login_once(module, uri) {
            Err(KeyError::Token(
                te @ (TokenError::PinIncorrect { .. } | TokenError::PinLocked(_)),
            )) => {
                let entry = AuditEntry::new("login", operator(uri.token.as_deref()))
                    .param("token", uri.token_part().to_string())
                    .failed(te.to_string());
                self.record_failure(entry, store);
                Err(te.into())
            }
            other => other,
        }
    }

    /// Record a failed login; a failure to record is told, not hidden.
    pub(crate) fn record_failure(&self, entry: AuditEntry, store: Option<&Store>) {
        let recorded = match (store, &self.state) {
            (Some(store), _) => store.record(entry).map(|_| ()).map_err(|e| e.to_string()),
            (None, Some(dir)) => Store::open(dir)
                .map_err(|e| e.to_string())
                .and_then(|s| s.record(entry).map(|_| ()).map_err(|e| e.to_string())),
            (None, None) => Ok(()),
        };
        if let Err(audit) = recorded {
            self.officer
                .notice(&format!("the failed login could not be audited: {audit}"));
        }
    }

    fn login_once(&self, module: &Module, uri: &Pkcs11Uri) -> Result<TokenSession, KeyError> {
        let mut session = module.open(uri)?;
        let source = self.pin_source(uri)?;
        // Keep the PIN (wiped on drop) when a key is named: keys marked CKA_ALWAYS_AUTHENTICATE
        // need it again before every signature, and asking the person again would be worse.
        let keep = uri.names_object();
        if session.pin_on_pad(&source) {
            self.officer.pin_pad(&session.token().label);
        }
        session.login(module, &source, &|w| self.officer.secret(w), keep)?;
        Ok(session)
    }
}

/// Who is acting: the operating-system user, and the token when one is used.
pub fn operator(token: Option<&str>) -> Operator {
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

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    struct Counting(std::cell::Cell<u32>);
    impl Officer for Counting {
        fn secret(&self, what: &str) -> Result<SecretString, PinError> {
            self.0.set(self.0.get() + 1);
            Ok(SecretString::from(format!("{what}:{}", self.0.get())))
        }
        fn notice(&self, _: &str) {}
    }

    #[test]
    fn each_secret_is_asked_once_per_run_and_a_no_answer_is_no() {
        let inner = Counting(std::cell::Cell::new(0));
        let once = AskOnce::new(&inner);
        let a = once.secret("PIN of token \"CA\"").unwrap();
        let b = once.secret("PIN of token \"CA\"").unwrap();
        let c = once.secret("PIN of token \"Alice\"").unwrap();
        assert_eq!(a.expose_secret(), b.expose_secret());
        assert_ne!(a.expose_secret(), c.expose_secret());
        assert_eq!(inner.0.get(), 2);
        assert!(
            !once.confirm("sign?"),
            "an officer who cannot answer never confirms"
        );
    }
}
