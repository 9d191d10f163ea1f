//! PKCS#11 tokens: loading a module, finding tokens, one logged-in session per run.
//!
//! One [`Module`] per process (one `C_Initialize`, and `C_Finalize` on drop). Tokens are found by
//! the token attributes of an RFC 7512 URI ([`uri::Pkcs11Uri`]), never by a remembered slot
//! number (SoftHSM2 renumbers slots after `C_InitToken`). A [`TokenSession`] logs in at most once:
//! a wrong PIN is reported with the token's retry flags and never tried again.

mod curves;
mod generate;
pub mod mechanisms;
mod objects;
pub mod probe;
mod signing;
pub mod uri;

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use secrecy::SecretString;

pub use super::pin::{PinError, PinSource, Prompter};
pub use objects::{FoundKey, KeyInfo, KeyInspection, Provenance};
pub use signing::{TokenKey, WorkerKey};
pub use uri::{Pkcs11Uri, UriError};

use crate::signer::SignError;

/// Where SoftHSM2's module usually lives, tried in order when no module is named.
pub const DEFAULT_MODULES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
];

/// Errors of the token layer. Each message says what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No module file at the path given (or at any default path).
    #[error(
        "PKCS#11 module not found: {tried}. Install the token's PKCS#11 library (for tests: apt-get install softhsm2) or name it with --module PATH / HSMSIGN_MODULE"
    )]
    ModuleMissing {
        /// The paths tried.
        tried: String,
    },
    /// The file exists but is not a loadable PKCS#11 module.
    #[error(
        "cannot load {path} as a PKCS#11 module: {stage} failed: {reason}. Check that --module names the vendor's PKCS#11 .so (e.g. /usr/lib/softhsm/libsofthsm2.so), then run `hsmsign token probe --module {path}`"
    )]
    ModuleLoad {
        /// The module path.
        path: PathBuf,
        /// Which step: `dlopen` or `C_GetFunctionList`.
        stage: String,
        /// The loader's or the module's message.
        reason: String,
    },
    /// The module loaded but would not initialise.
    #[error(
        "the PKCS#11 module {path} loaded, but C_Initialize returned {rv}: the module could not start (typically it cannot reach its token, daemon or server, or read its configuration; any lines it printed above say which). Check the settings its documentation names (configuration file, environment variables such as a TCTI or server address), then run `hsmsign token probe --module {path}`"
    )]
    ModuleInit {
        /// The module path.
        path: PathBuf,
        /// The CKR_ code name.
        rv: String,
    },
    /// A PKCS#11 call failed.
    #[error("{function} failed with {rv} while {doing}. {advice}")]
    Pkcs11 {
        /// The PKCS#11 function, e.g. `C_Sign`.
        function: String,
        /// The CKR_ code name.
        rv: String,
        /// What hsmsign was doing.
        doing: String,
        /// What to do about it.
        advice: String,
    },
    /// No token matches the URI.
    #[error("no token matches {query}. Tokens present: {available}")]
    TokenNotFound {
        /// The token part of the URI.
        query: String,
        /// The tokens that exist, one description each.
        available: String,
    },
    /// More than one token matches the URI.
    #[error("{query} matches more than one token: {matches}. Add serial= to the URI to pick one")]
    TokenAmbiguous {
        /// The token part of the URI.
        query: String,
        /// The matching tokens.
        matches: String,
    },
    /// `token init` found no free slot.
    #[error("no free slot to initialise a new token in (all slots hold initialised tokens)")]
    NoFreeSlot,
    /// `token init` with a label that is already taken.
    #[error(
        "a token labelled {0:?} already exists; choose another --label (tokens are found by label)"
    )]
    TokenExists(String),
    /// The PIN was wrong. It is not tried again.
    #[error(
        "wrong PIN for token {token:?}; it was tried once and will not be retried. {state} Check the PIN source and run the command again"
    )]
    PinIncorrect {
        /// The token label.
        token: String,
        /// The token's retry flags in words.
        state: String,
    },
    /// The PIN is locked.
    #[error(
        "the user PIN of token {0:?} is locked (too many wrong tries). The security officer must unblock it (SO PIN / PUK) before the token can be used"
    )]
    PinLocked(String),
    /// No key matches the URI.
    #[error("no private key matches {query} on token {token:?}. Keys on the token: {available}")]
    KeyNotFound {
        /// The URI.
        query: String,
        /// The token label.
        token: String,
        /// The keys present.
        available: String,
    },
    /// More than one key matches.
    #[error("{query} matches more than one key: {matches}. Name the key by id= as well")]
    KeyAmbiguous {
        /// The URI.
        query: String,
        /// The matching keys.
        matches: String,
    },
    /// A key with that label or id exists already.
    #[error(
        "token {token:?} already holds an object with {what}; hsmsign never replaces a key. Choose another object= label"
    )]
    KeyExists {
        /// The token label.
        token: String,
        /// `label "x"` or `id %01`.
        what: String,
    },
    /// The token cannot make a key of this kind.
    #[error(
        "token {token:?} cannot generate {algorithm} keys: {reason}. Choose another --algorithm (`hsmsign token probe` lists what the token can do)"
    )]
    CannotGenerate {
        /// The token label.
        token: String,
        /// The key kind asked for.
        algorithm: String,
        /// What the token lacks.
        reason: String,
    },
    /// The token refused C_GenerateKeyPair for a template it cannot or will not honour, or for
    /// the kind of login hsmsign holds.
    #[error(
        "token {token:?} cannot generate a non-extractable {algorithm} key here: {why}. Some tokens make keys only after a login hsmsign does not do over PKCS#11 (PIV cards through OpenSC or ykcs11 want the card's management key, and take their one-byte CKA_IDs only): make the key on the device instead (a YubiKey natively: `hsmsign key generate --key yubikey:slot=9a`; other cards with the vendor's tool), then use it by the pkcs11: URI that `hsmsign key list` shows"
    )]
    GenerationRefused {
        /// The token label.
        token: String,
        /// The key kind asked for.
        algorithm: String,
        /// What the token said or lacks.
        why: String,
    },
    /// The URI does not name an object.
    #[error("{0} names no key: add object=LABEL (and/or id=...) to the URI")]
    NoObject(String),
    /// A key on the token is of a kind hsmsign does not use.
    #[error("key {key} is not usable: {reason}")]
    UnusableKey {
        /// The key URI.
        key: String,
        /// Why.
        reason: String,
    },
    /// A key file to import could not be used.
    #[error("cannot import {path}: {reason}")]
    Import {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A PIN source failed.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// A malformed URI.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// The signer refused or caught a bad signature.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// Name a cryptoki error the way the PKCS#11 spec does (`CKR_PIN_INCORRECT`).
pub(crate) fn ckr_name(rv: &RvError) -> String {
    let camel = format!("{rv:?}");
    let mut out = String::from("CKR");
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// What to do about a PKCS#11 return code.
pub(crate) fn advice(rv: RvError) -> &'static str {
    match rv {
        RvError::TokenNotPresent | RvError::DeviceRemoved => {
            "The token was removed: insert it and run the command again."
        }
        RvError::DeviceError | RvError::SessionHandleInvalid | RvError::SessionClosed => {
            "The token, or the server or daemon its module talks to, failed or went away: check that it is running and reachable (`hsmsign token probe`), then run the command again."
        }
        RvError::DeviceMemory | RvError::GeneralError => {
            "The token reported a fault: check it with the vendor's tools (and `hsmsign token probe`) before trusting it further."
        }
        RvError::MechanismInvalid | RvError::MechanismParamInvalid => {
            "The token does not offer this mechanism: choose another key algorithm."
        }
        RvError::UserNotLoggedIn => "Log in first (a PIN source is needed).",
        RvError::UserTypeInvalid => {
            "The token allows this only to another kind of login than the user's (PIV modules want the card's management key as the security officer's PIN): do it with the device's own tools."
        }
        RvError::TokenWriteProtected => {
            "The token is write-protected: nothing can be created on it. Use a writable token, or unlock it with the vendor's tools."
        }
        RvError::SessionCount => {
            "The token has no free session: other programs, or runs that crashed, hold them (some devices free idle sessions only after a delay, e.g. 30 s). Stop the other users, wait, and run the command again."
        }
        RvError::TemplateInconsistent | RvError::AttributeValueInvalid => {
            "The token refused the key template: it may not support non-extractable keys of this type."
        }
        _ => "See the token vendor's documentation for this return code.",
    }
}

/// Turn a cryptoki error into a [`TokenError`] saying what was being done.
pub(crate) fn ck(doing: impl Into<String>) -> impl FnOnce(CkError) -> TokenError {
    let doing = doing.into();
    move |e| match e {
        CkError::Pkcs11(rv, function) => {
            let advice = advice(rv);
            TokenError::Pkcs11 {
                function: format!("C_{function:?}"),
                rv: ckr_name(&rv),
                doing,
                advice: advice.into(),
            }
        }
        other => TokenError::Pkcs11 {
            function: "cryptoki".into(),
            rv: other.to_string(),
            doing,
            advice:
                "This is an error in the PKCS#11 layer; report it with the command that caused it."
                    .into(),
        },
    }
}

/// Which module to load: `--module`, else the URI's `module-path`, else SoftHSM2's usual paths.
/// (`HSMSIGN_MODULE` reaches here through the CLI's `--module`.)
pub fn resolve_module(
    explicit: Option<&Path>,
    uri: Option<&Pkcs11Uri>,
) -> Result<PathBuf, TokenError> {
    if let Some(p) = explicit.or_else(|| uri.and_then(|u| u.module_path.as_deref())) {
        return if p.exists() {
            Ok(p.to_path_buf())
        } else {
            Err(TokenError::ModuleMissing {
                tried: p.display().to_string(),
            })
        };
    }
    DEFAULT_MODULES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| TokenError::ModuleMissing {
            tried: DEFAULT_MODULES.join(", "),
        })
}

/// One loaded and initialised PKCS#11 module.
pub struct Module {
    ctx: Pkcs11,
    path: PathBuf,
}

/// A token as `token list` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TokenSummary {
    /// The slot id (changes between runs on some modules: do not rely on it).
    pub slot_id: u64,
    /// CKA label.
    pub label: String,
    /// Manufacturer id.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Whether the token is initialised.
    pub initialized: bool,
    /// Flags in words: login-required, pin-count-low, pin-final-try, pin-locked, ...
    pub flags: Vec<String>,
    /// Free private memory in bytes, when the token tells.
    pub free_private_memory: Option<usize>,
    /// The canonical URI of the token.
    pub uri: String,
}

impl TokenSummary {
    fn from_info(slot: Slot, info: &TokenInfo) -> Self {
        let mut flags = Vec::new();
        let mut flag = |on: bool, name: &str| {
            if on {
                flags.push(name.to_string());
            }
        };
        flag(info.login_required(), "login-required");
        flag(info.user_pin_initialized(), "user-pin-initialized");
        flag(info.rng(), "rng");
        flag(info.write_protected(), "write-protected");
        flag(info.user_pin_count_low(), "user-pin-count-low");
        flag(info.user_pin_final_try(), "user-pin-final-try");
        flag(info.user_pin_locked(), "user-pin-locked");
        flag(info.user_pin_to_be_changed(), "user-pin-to-be-changed");
        flag(info.so_pin_locked(), "so-pin-locked");
        flag(
            info.protected_authentication_path(),
            "protected-authentication-path",
        );
        // Fixed-width fields are padded with blanks, by some modules (tpm2-pkcs11's model) with
        // NUL bytes.
        let field = |s: &str| s.trim_end_matches([' ', '\0']).to_string();
        let uri = Pkcs11Uri {
            token: Some(field(info.label())),
            manufacturer: Some(field(info.manufacturer_id())),
            model: Some(field(info.model())),
            serial: Some(field(info.serial_number())),
            ..Default::default()
        };
        Self {
            slot_id: slot.id(),
            label: field(info.label()),
            manufacturer: field(info.manufacturer_id()),
            model: field(info.model()),
            serial: field(info.serial_number()),
            initialized: info.token_initialized(),
            flags,
            free_private_memory: info.free_private_memory(),
            uri: uri.to_string(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{:?} (serial {}, {} {})",
            self.label, self.serial, self.manufacturer, self.model
        )
    }

    fn matches(&self, uri: &Pkcs11Uri) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        self.initialized
            && eq(&uri.token, &self.label)
            && eq(&uri.manufacturer, &self.manufacturer)
            && eq(&uri.model, &self.model)
            && eq(&uri.serial, &self.serial)
            && uri.slot_id.is_none_or(|s| s == self.slot_id)
    }
}

impl Module {
    /// Load and initialise the module at `path`.
    pub fn load(path: &Path) -> Result<Self, TokenError> {
        if !path.exists() {
            return Err(TokenError::ModuleMissing {
                tried: path.display().to_string(),
            });
        }
        let ctx = Pkcs11::new(path).map_err(|e| {
            let (stage, reason) = match &e {
                CkError::LibraryLoading(l) => ("dlopen", l.to_string()),
                CkError::Pkcs11(rv, f) => (
                    "C_GetFunctionList",
                    format!("C_{f:?} returned {}", ckr_name(rv)),
                ),
                other if other.to_string().contains("C_GetFunctionList") => {
                    ("C_GetFunctionList", other.to_string())
                }
                other => ("dlopen", other.to_string()),
            };
            TokenError::ModuleLoad {
                path: path.to_path_buf(),
                stage: stage.into(),
                reason,
            }
        })?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| match e {
                CkError::Pkcs11(rv, _) => TokenError::ModuleInit {
                    path: path.to_path_buf(),
                    rv: ckr_name(&rv),
                },
                other => ck(format!("initialising {}", path.display()))(other),
            })?;
        Ok(Self {
            ctx,
            path: path.to_path_buf(),
        })
    }

    /// Call C_Finalize (nothing does it implicitly). Sessions must be dropped first.
    pub fn finalize(self) {
        let _ = self.ctx.finalize();
    }

    /// The module's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cryptoki context (for the key layer).
    pub(crate) fn ctx(&self) -> &Pkcs11 {
        &self.ctx
    }

    /// Every slot that holds a token, initialised or not.
    pub fn tokens(&self) -> Result<Vec<TokenSummary>, TokenError> {
        Ok(self.slots()?.into_iter().map(|(_, t)| t).collect())
    }

    fn slots(&self) -> Result<Vec<(Slot, TokenSummary)>, TokenError> {
        let slots = self.ctx.get_slots_with_token().map_err(ck(format!(
            "listing the slots of PKCS#11 module {}",
            self.path.display()
        )))?;
        slots
            .into_iter()
            .map(|slot| {
                let info = self.ctx.get_token_info(slot).map_err(ck(format!(
                    "reading the token information of slot {} of {}",
                    slot.id(),
                    self.path.display()
                )))?;
                Ok((slot, TokenSummary::from_info(slot, &info)))
            })
            .collect()
    }

    /// The one initialised token matching the token part of `uri`.
    pub fn find_token(&self, uri: &Pkcs11Uri) -> Result<(Slot, TokenSummary), TokenError> {
        let query = uri.token_part().to_string();
        let all = self.slots()?;
        let mut found: Vec<(Slot, TokenSummary)> = all
            .iter()
            .filter(|(_, t)| t.matches(uri))
            .cloned()
            .collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(TokenError::TokenNotFound {
                query,
                available: describe_all(all.iter().map(|(_, t)| t).filter(|t| t.initialized)),
            }),
            _ => Err(TokenError::TokenAmbiguous {
                query,
                matches: describe_all(found.iter().map(|(_, t)| t)),
            }),
        }
    }

    /// Initialise a new token in a free slot (SoftHSM2-style dev tokens), set its user PIN, and
    /// return it as found again by label.
    pub fn init_token(
        &self,
        label: &str,
        so_pin: &SecretString,
        user_pin: &SecretString,
    ) -> Result<TokenSummary, TokenError> {
        let all = self.slots()?;
        if all.iter().any(|(_, t)| t.initialized && t.label == label) {
            return Err(TokenError::TokenExists(label.to_string()));
        }
        let free = all
            .iter()
            .find(|(_, t)| !t.initialized)
            .map(|(s, _)| *s)
            .ok_or(TokenError::NoFreeSlot)?;
        self.ctx
            .init_token(free, so_pin, label)
            .map_err(ck(format!("initialising token {label:?}")))?;
        // SoftHSM2 moves the new token to a new slot: find it again by label.
        let uri = Pkcs11Uri {
            token: Some(label.to_string()),
            ..Default::default()
        };
        let (slot, _) = self.find_token(&uri)?;
        let session = self
            .ctx
            .open_rw_session(slot)
            .map_err(ck("opening a session"))?;
        session
            .login(UserType::So, Some(so_pin))
            .map_err(ck("logging in as security officer"))?;
        session
            .init_pin(user_pin)
            .map_err(ck("setting the user PIN"))?;
        session.logout().map_err(ck("logging out"))?;
        drop(session);
        Ok(self.find_token(&uri)?.1)
    }

    /// Open a read-write session on the token named by `uri` (not yet logged in).
    pub fn open(&self, uri: &Pkcs11Uri) -> Result<TokenSession, TokenError> {
        let (slot, summary) = self.find_token(uri)?;
        let session = self.ctx.open_rw_session(slot).map_err(ck(format!(
            "opening a session on token {:?}",
            summary.label
        )))?;
        // When the token will not tell, the key layer assumes the raw mechanisms (CKM_ECDSA,
        // CKM_RSA_PKCS).
        let mechanisms = mechanisms::MechanismTable::read(&self.ctx, slot);
        Ok(TokenSession {
            session,
            slot,
            token: summary,
            pin: None,
            mechanisms,
            os_rng: std::cell::RefCell::new(None),
            token_rng_failed: std::cell::Cell::new(false),
        })
    }
}

fn describe_all<'a>(tokens: impl Iterator<Item = &'a TokenSummary>) -> String {
    let list: Vec<String> = tokens.map(|t| t.describe()).collect();
    if list.is_empty() {
        "none (initialise one with `hsmsign token init`, check --module, and check that the server or daemon the module talks to is running; `hsmsign token probe` shows what the module sees)".into()
    } else {
        list.join(", ")
    }
}

/// A session on one token. Logs in at most once per run.
pub struct TokenSession {
    session: Session,
    slot: Slot,
    token: TokenSummary,
    /// The PIN, kept only while a key needs context-specific logins (CKA_ALWAYS_AUTHENTICATE).
    pin: Option<SecretString>,
    /// The mechanisms the token offers (those hsmsign uses), with their facts.
    mechanisms: mechanisms::MechanismTable,
    /// Set when the token's C_GenerateRandom failed and the operating system's RNG was used:
    /// the return code, until the caller has told the operator (once).
    os_rng: std::cell::RefCell<Option<String>>,
    /// The token's RNG failed once: later draws go to the operating system directly.
    token_rng_failed: std::cell::Cell<bool>,
}

impl TokenSession {
    /// The token this session is on.
    pub fn token(&self) -> &TokenSummary {
        &self.token
    }

    /// The token's mechanisms, as signing and key generation see them.
    pub fn mechanisms(&self) -> &mechanisms::MechanismTable {
        &self.mechanisms
    }

    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    pub(crate) fn context_pin(&self) -> Option<&SecretString> {
        self.pin.as_ref()
    }

    /// True if logging in with `source` takes the PIN on the token's own PIN pad
    /// (CKF_PROTECTED_AUTHENTICATION_PATH and no PIN source named): the caller should tell the
    /// officer to type it on the device before calling [`TokenSession::login`].
    pub fn pin_on_pad(&self, source: &PinSource) -> bool {
        matches!(source, PinSource::Prompt)
            && self
                .token
                .flags
                .iter()
                .any(|f| f == "protected-authentication-path")
    }

    /// Log in as the user with the PIN from `source`. One try: a wrong PIN is reported with the
    /// token's retry state and never retried.
    pub fn login(
        &mut self,
        ctx: &Module,
        source: &PinSource,
        prompter: Prompter<'_>,
        keep_for_context_login: bool,
    ) -> Result<(), TokenError> {
        let label = self.token.label.clone();
        if self.token.flags.iter().any(|f| f == "user-pin-locked") {
            return Err(TokenError::PinLocked(label));
        }
        // Another session of this run already logged in to this token (login is per
        // application and token): the PIN is not asked for again.
        if !keep_for_context_login
            && self.session.get_session_info().is_ok_and(|i| {
                matches!(
                    i.session_state(),
                    cryptoki::session::SessionState::RwUser
                        | cryptoki::session::SessionState::RoUser
                )
            })
        {
            return Ok(());
        }
        // A token with its own PIN pad (CKF_PROTECTED_AUTHENTICATION_PATH) takes the PIN there
        // when no PIN source was named: hsmsign then sends none.
        // The caller has told the officer to type it there (see `pin_on_pad`).
        if self.pin_on_pad(source) {
            return match self.session.login(UserType::User, None) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
                Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(TokenError::PinLocked(label)),
                Err(e) => Err(ck(format!("logging in to token {label:?} on its PIN pad"))(
                    e,
                )),
            };
        }
        let pin = source.read(&format!("User PIN for token {label:?}"), prompter)?;
        match self.session.login(UserType::User, Some(&pin)) {
            Ok(()) => {}
            // Another session of this process already logged in: that is fine.
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                let state = ctx
                    .ctx()
                    .get_token_info(self.slot)
                    .map(|i| {
                        pin_state(
                            i.user_pin_locked(),
                            i.user_pin_final_try(),
                            i.user_pin_count_low(),
                        )
                    })
                    .unwrap_or_else(|_| "The token did not say how many tries are left.".into());
                return Err(TokenError::PinIncorrect {
                    token: label,
                    state,
                });
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                return Err(TokenError::PinLocked(label));
            }
            Err(e) => return Err(ck(format!("logging in to token {label:?}"))(e)),
        }
        if keep_for_context_login {
            self.pin = Some(pin);
        }
        Ok(())
    }

    /// Random bytes from the token's RNG; from the operating system's when the token has none
    /// that works (some PIV modules set CKF_RNG, yet C_GenerateRandom fails because the card
    /// offers no GET CHALLENGE). A lost token or session is an error, not a fallback. After a
    /// fallback, [`Self::take_rng_notice`] says so once.
    pub fn random(&self, len: usize) -> Result<Vec<u8>, TokenError> {
        let mut buf = vec![0u8; len];
        if !self.token_rng_failed.get() {
            match self.session.generate_random_slice(&mut buf) {
                Ok(()) => return Ok(buf),
                Err(CkError::Pkcs11(rv, _)) if !token_lost(rv) => {
                    self.token_rng_failed.set(true);
                    *self.os_rng.borrow_mut() =
                        Some(format!("C_GenerateRandom returned {}", ckr_name(&rv)));
                }
                Err(e) => return Err(ck("drawing random bytes from the token")(e)),
            }
        }
        getrandom::fill(&mut buf).map_err(|e| TokenError::UnusableKey {
            key: "the operating system's random number generator".into(),
            reason: format!("{e}; check /dev/urandom or getrandom(2) on this machine"),
        })?;
        Ok(buf)
    }

    /// Once after the token's RNG failed: what to tell the operator.
    pub fn take_rng_notice(&self) -> Option<String> {
        self.os_rng.borrow_mut().take().map(|why| {
            format!(
                "token {:?} has no working random number generator ({why}): serial numbers and ids are drawn from the operating system's RNG instead",
                self.token.label
            )
        })
    }
}

/// Return codes that mean the token or the session is gone (nothing to fall back from).
fn token_lost(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::DeviceRemoved
            | RvError::DeviceError
            | RvError::TokenNotPresent
            | RvError::SessionClosed
            | RvError::SessionHandleInvalid
            | RvError::CryptokiNotInitialized
    )
}

/// The most sessions a batch opens on one token unless told otherwise.
pub const SESSION_CAP: usize = 16;

/// How many sessions a batch would use on a token by default, and why.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SessionDefault {
    /// The number of sessions.
    pub sessions: usize,
    /// Why, in words.
    pub reason: String,
}

/// The default number of signing sessions: 1 for a token in a removable slot (a smart card, a
/// PIV card or YubiKey through its PKCS#11 module, a USB token: one device that signs one thing
/// at a time, whatever the number of sessions), otherwise the smallest of the sessions the token
/// has free (ulMaxSessionCount less the sessions open, less the batch's own logged-in session),
/// the number of cores, and [`SESSION_CAP`]. `other_sessions` counts the sessions open besides
/// the batch's logged-in one.
pub fn default_sessions(
    removable: bool,
    max_sessions: Option<u64>,
    other_sessions: u64,
    cores: usize,
) -> SessionDefault {
    if removable {
        return SessionDefault {
            sessions: 1,
            reason: "the token is in a removable slot (a card or USB token is one device)".into(),
        };
    }
    let free = max_sessions.map(|m| m.saturating_sub(other_sessions + 1));
    let mut sessions = cores.clamp(1, SESSION_CAP);
    let mut reason = if cores >= SESSION_CAP {
        format!("the cap of {SESSION_CAP}")
    } else {
        format!("the number of cores ({cores})")
    };
    if let Some(free) = free
        && (free as usize) < sessions
    {
        sessions = (free as usize).max(1);
        reason = format!("the token's free sessions ({free})");
    }
    SessionDefault { sessions, reason }
}

impl Module {
    /// The number of sessions a batch on the token in `slot` uses unless `--sessions` says
    /// otherwise (see [`default_sessions`]).
    /// `logged_in` says whether the batch's own session is among those open.
    pub(crate) fn default_sessions(&self, slot: Slot, logged_in: bool) -> SessionDefault {
        let removable = self
            .ctx
            .get_slot_info(slot)
            .is_ok_and(|i| i.removable_device());
        let (max, open) = match self.ctx.get_token_info(slot) {
            Ok(info) => (
                match info.max_session_count() {
                    cryptoki::slot::Limit::Max(m) => Some(m),
                    _ => None,
                },
                info.session_count()
                    .unwrap_or(0)
                    .saturating_sub(u64::from(logged_in)),
            ),
            Err(_) => (None, 0),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        default_sessions(removable, max, open, cores)
    }
}

impl TokenSession {
    /// The number of sessions a batch on this token uses unless `--sessions` says otherwise
    /// (see [`default_sessions`]).
    pub fn default_sessions(&self, module: &Module) -> SessionDefault {
        module.default_sessions(self.slot, true)
    }
}

/// The token's retry flags in words (PKCS#11 CKF_USER_PIN_LOCKED / _FINAL_TRY / _COUNT_LOW).
fn pin_state(locked: bool, final_try: bool, count_low: bool) -> String {
    if locked {
        "The PIN is now LOCKED: the security officer must unblock it.".into()
    } else if final_try {
        "The token says ONE try is left before the PIN locks.".into()
    } else if count_low {
        "The token says the retry counter is low.".into()
    } else {
        "The token does not report a low retry counter.".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_default_follows_the_token() {
        // A card or USB token: one, however many sessions it would open.
        assert_eq!(default_sessions(true, None, 0, 8).sessions, 1);
        assert_eq!(default_sessions(true, Some(100), 0, 8).sessions, 1);
        // No limit reported: the cores, up to the cap.
        assert_eq!(default_sessions(false, None, 0, 4).sessions, 4);
        assert_eq!(default_sessions(false, None, 0, 64).sessions, SESSION_CAP);
        assert_eq!(default_sessions(false, None, 0, 0).sessions, 1);
        // A limit: what is free besides the batch's own logged-in session.
        let d = default_sessions(false, Some(10), 5, 8);
        assert_eq!(d.sessions, 4);
        assert!(d.reason.contains("free sessions (4)"), "{}", d.reason);
        assert_eq!(default_sessions(false, Some(2), 0, 8).sessions, 1);
        assert_eq!(default_sessions(false, Some(1), 3, 8).sessions, 1);
        assert_eq!(default_sessions(false, Some(1000), 0, 8).sessions, 8);
    }

    #[test]
    fn ckr_names_follow_the_spec() {
        assert_eq!(ckr_name(&RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(ckr_name(&RvError::TokenNotPresent), "CKR_TOKEN_NOT_PRESENT");
    }

    #[test]
    fn retry_flags_in_words() {
        // SoftHSM2 never locks a PIN, so these states are checked here rather than on a token.
        assert!(pin_state(true, true, true).contains("LOCKED"));
        assert!(pin_state(false, true, true).contains("ONE try"));
        assert!(pin_state(false, false, true).contains("low"));
        assert!(pin_state(false, false, false).contains("does not report"));
    }

    #[test]
    fn a_file_that_is_no_module_is_named_with_the_failing_step() {
        let e = Module::load(Path::new("/etc/passwd"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("/etc/passwd") && e.contains("dlopen failed"),
            "{e}"
        );
        assert!(e.contains("token probe"), "{e}");
        // A real shared library without C_GetFunctionList: the C library this test runs on.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        let libc = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.contains("libc.so"))
            .map(PathBuf::from);
        assert!(libc.is_some(), "no libc in /proc/self/maps");
        if let Some(libc) = libc {
            let e = Module::load(&libc)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("C_GetFunctionList failed"), "{e}");
        }
    }

    #[test]
    fn missing_module_is_named() {
        let e = Module::load(Path::new("/nonexistent/libnothing.so"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("/nonexistent/libnothing.so"), "{e}");
        assert!(e.contains("--module"), "{e}");
    }
}
