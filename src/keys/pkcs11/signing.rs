//! Signing with a key on a token: [`TokenKey`] on the logged-in session, [`WorkerKey`] on a
//! session of its own for a batch worker, and the choice of signing mechanism.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::AttributeType;
use cryptoki::session::{Session, UserType};

use super::mechanisms::SignChoice;
use super::objects::FoundKey;
use super::{Pkcs11Uri, TokenError, TokenSession};
use crate::signer::{KeyAlgorithm, PublicKey, SignError, SignatureAlgorithm, SigningKey};

impl TokenSession {
    /// A signing key for the URI, bound to this (logged-in) session.
    pub fn signing_key(&self, uri: &Pkcs11Uri) -> Result<TokenKey<'_>, TokenError> {
        let found = self.find_key(uri)?;
        if self.attr_bool(found.handle, AttributeType::Sign) == Some(false) {
            return Err(TokenError::UnusableKey {
                key: self.object_uri(&found.label, &found.id),
                reason: "CKA_SIGN is false: the token will not sign with it".into(),
            });
        }
        if found.always_authenticate && self.context_pin().is_none() {
            return Err(TokenError::UnusableKey {
                key: self.object_uri(&found.label, &found.id),
                reason: "it needs a PIN before every signature (CKA_ALWAYS_AUTHENTICATE) but the session was opened without keeping one".into(),
            });
        }
        Ok(TokenKey {
            session: self,
            uri: self.object_uri(&found.label, &found.id),
            key: found,
            refused: std::sync::Mutex::new(Vec::new()),
        })
    }
}

/// A private key on a logged-in token session, usable through [`crate::signer::sign`].
pub struct TokenKey<'s> {
    session: &'s TokenSession,
    key: FoundKey,
    uri: String,
    /// Mechanisms this key's token refused at C_Sign time in this run, skipped from then on.
    refused: std::sync::Mutex<Vec<MechanismType>>,
}

impl TokenKey<'_> {
    /// The key's CKA_ID.
    pub fn id(&self) -> &[u8] {
        &self.key.id
    }

    /// The key's CKA_LABEL.
    pub fn label(&self) -> &str {
        &self.key.label
    }

    /// The token session the key is on.
    pub fn session(&self) -> &TokenSession {
        self.session
    }

    /// `n` more sessions on this key's token, each with this key, for the workers of a batch.
    /// No new login (the token's login covers every session of this process) and no new
    /// search (the key handle is valid in every session). Opens as many as the token gives:
    /// when it refuses one (CKR_SESSION_COUNT and the like), the batch goes on with fewer, and
    /// the returned notice says so. A key that needs a PIN before every signature
    /// (CKA_ALWAYS_AUTHENTICATE) gets no workers: it signs on its own session only.
    pub fn workers(&self, module: &super::Module, n: usize) -> (Vec<WorkerKey>, Option<String>) {
        let token = &self.session.token().label;
        if self.key.always_authenticate {
            let notice = (n > 1).then(|| {
                format!(
                    "key {} needs a PIN before every signature (CKA_ALWAYS_AUTHENTICATE): signing on one session",
                    self.uri
                )
            });
            return (Vec::new(), notice);
        }
        let mut workers = Vec::with_capacity(n);
        let mut notice = None;
        for _ in 0..n {
            match module.ctx().open_ro_session(self.session.slot) {
                Ok(session) => workers.push(WorkerKey {
                    session,
                    key: self.key.clone(),
                    uri: self.uri.clone(),
                    table: self.session.mechanisms().clone(),
                    token: token.clone(),
                    refused: std::sync::Mutex::new(Vec::new()),
                }),
                Err(e) => {
                    let why = describe_ck(e);
                    notice = Some(format!(
                        "token {token:?} gave {} of the {n} sessions asked for ({why}): signing with {}",
                        workers.len(),
                        if workers.is_empty() {
                            "its first session only".to_string()
                        } else {
                            format!("{} sessions", workers.len())
                        }
                    ));
                    break;
                }
            }
        }
        (workers, notice)
    }

    fn signing(&self) -> Signing<'_> {
        Signing {
            session: self.session.session(),
            key: &self.key,
            uri: &self.uri,
            table: self.session.mechanisms(),
            token: &self.session.token().label,
            pin: self.session.context_pin(),
            refused: &self.refused,
        }
    }
}

/// The same key on a session of its own, for one worker of a batch (see
/// [`TokenKey::workers`]). It owns its session and may move to another thread; the
/// token's login (per application and token) covers it, and the key handle found once by the
/// logged-in session is used as is: no C_FindObjects or C_GetAttributeValue per worker.
pub struct WorkerKey {
    session: Session,
    key: FoundKey,
    uri: String,
    table: super::mechanisms::MechanismTable,
    token: String,
    refused: std::sync::Mutex<Vec<MechanismType>>,
}

impl WorkerKey {
    fn signing(&self) -> Signing<'_> {
        Signing {
            session: &self.session,
            key: &self.key,
            uri: &self.uri,
            table: &self.table,
            token: &self.token,
            pin: None,
            refused: &self.refused,
        }
    }
}

impl SigningKey for WorkerKey {
    fn public_key(&self) -> &PublicKey {
        &self.key.public
    }

    fn name(&self) -> String {
        self.uri.clone()
    }

    fn sign_digest(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        digest: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        self.signing().sign_digest(alg, message, digest)
    }
}

/// What one signature needs: a session, the key found on the token, and the token's mechanisms.
struct Signing<'a> {
    session: &'a Session,
    key: &'a FoundKey,
    uri: &'a str,
    table: &'a super::mechanisms::MechanismTable,
    token: &'a str,
    pin: Option<&'a secrecy::SecretString>,
    refused: &'a std::sync::Mutex<Vec<MechanismType>>,
}

impl Signing<'_> {
    fn device_error(&self, e: impl std::fmt::Display) -> SignError {
        SignError::Device {
            key: self.uri.to_owned(),
            reason: e.to_string(),
        }
    }

    /// One signature with one mechanism. The error carries the message and, for a PKCS#11
    /// failure, the return code (to decide whether another mechanism is worth a try).
    fn run(
        &self,
        mechanism: &Mechanism<'_>,
        data: &[u8],
    ) -> Result<Vec<u8>, (String, Option<RvError>)> {
        let fail = |e: CkError| {
            let rv = match &e {
                CkError::Pkcs11(rv, _) => Some(*rv),
                _ => None,
            };
            (describe_ck(e), rv)
        };
        let s = self.session;
        if !self.key.always_authenticate {
            // The signature's size is known from the key: one C_Sign, no length query.
            let mut buf = vec![0u8; signature_len(self.key.public.algorithm())];
            let n = s
                .sign_into(mechanism, self.key.handle, data, &mut buf)
                .map_err(fail)?;
            buf.truncate(n);
            return Ok(buf);
        }
        // CKA_ALWAYS_AUTHENTICATE: C_SignInit, then a context-specific login, then the data.
        let pin = self.pin.ok_or_else(|| {
            (
                "no PIN kept for the context-specific login".to_string(),
                None,
            )
        })?;
        s.sign_init(mechanism, self.key.handle).map_err(fail)?;
        s.login(UserType::ContextSpecific, Some(pin))
            .map_err(fail)?;
        s.sign_update(data).map_err(|e| {
            let (m, rv) = fail(e);
            (format!(
                "{m}; this key needs a PIN before every signature (CKA_ALWAYS_AUTHENTICATE), which hsmsign can only do through multi-part signing, and the token refuses that for this mechanism. Use a key without CKA_ALWAYS_AUTHENTICATE (e.g. PIV slot 9a instead of 9c)"
            ), rv)
        })?;
        s.sign_final().map_err(fail)
    }

    fn sign_digest(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        digest: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        let public = &self.key.public;
        let key = public.algorithm();
        let ec = key.is_ec();
        let table = self.table;
        let refused = self.refused.lock().map(|r| r.clone()).unwrap_or_default();
        let choices: Vec<SignChoice> = table
            .sign_choices(key, alg, self.key.always_authenticate)
            .into_iter()
            .filter(|c| !refused.contains(&c.mechanism))
            .collect();
        if choices.is_empty() {
            return Err(self.device_error(format!(
                "token {:?} offers no mechanism for {alg} with a {key} key: {}{}. Use a key type the token can sign with (`hsmsign token probe` lists them)",
                self.token,
                table.why_not(key, alg),
                if refused.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (refused at signing time in this run: {})",
                        refused
                            .iter()
                            .map(|m| super::mechanisms::mechanism_name(*m))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            )));
        }
        let mut failures = Vec::new();
        let mut signature = None;
        for (i, choice) in choices.iter().enumerate() {
            let result = if !choice.host_hash {
                self.run(&choice.mechanism(), message)
            } else if ec {
                self.run(&choice.mechanism(), crate::signer::ecdsa_input(key, digest))
            } else {
                let mut info = alg.hash().digest_info_prefix().to_vec();
                info.extend_from_slice(digest);
                self.run(&choice.mechanism(), &info)
            };
            match result {
                Ok(s) => {
                    signature = Some(s);
                    break;
                }
                // The token lists the mechanism but will not use it with this key (a TPM's raw
                // RSA needs decryption rights; some raw ECDSA takes only certain lengths): try
                // the next one, and skip this one for the rest of the run.
                Err(e) if i + 1 < choices.len() && mechanism_refusal(&e.1) => {
                    failures.push(format!("{}: {}", choice.name(), e.0));
                    if let Ok(mut r) = self.refused.lock() {
                        r.push(choice.mechanism);
                    }
                }
                Err(e) => {
                    failures.push(format!("{}: {}", choice.name(), e.0));
                    return Err(self.device_error(format!(
                        "{} on token {:?}.{}",
                        failures.join("; then "),
                        self.token,
                        e.1.map(|rv| format!(" {}", super::advice(rv)))
                            .unwrap_or_default()
                    )));
                }
            }
        }
        let signature = signature.ok_or_else(|| self.device_error(failures.join("; ")))?;
        if ec {
            crate::signer::ecdsa_raw_to_der(&signature)
        } else {
            Ok(signature)
        }
    }
}

/// The size of a signature of a `key` key as the token returns it: raw `r || s` for ECDSA, the
/// modulus length for RSA PKCS#1 v1.5.
fn signature_len(key: KeyAlgorithm) -> usize {
    match key {
        KeyAlgorithm::EcP256 => 64,
        KeyAlgorithm::EcP384 => 96,
        KeyAlgorithm::Rsa(bits) => bits.div_ceil(8),
    }
}

/// Return codes with which a token refuses one mechanism for one key while another mechanism
/// may still work. A lost token or session (CKR_DEVICE_REMOVED, CKR_SESSION_HANDLE_INVALID,
/// ...) is not among them: nothing else would work either.
fn mechanism_refusal(rv: &Option<RvError>) -> bool {
    matches!(
        rv,
        Some(
            RvError::GeneralError
                | RvError::FunctionFailed
                | RvError::FunctionNotSupported
                | RvError::KeyFunctionNotPermitted
                | RvError::KeyTypeInconsistent
                | RvError::KeySizeRange
                | RvError::MechanismInvalid
                | RvError::MechanismParamInvalid
                | RvError::DataLenRange
                | RvError::DataInvalid
        )
    )
}

fn describe_ck(e: cryptoki::error::Error) -> String {
    match e {
        cryptoki::error::Error::Pkcs11(rv, f) => {
            format!("C_{f:?} returned {}", super::ckr_name(&rv))
        }
        other => other.to_string(),
    }
}

impl SigningKey for TokenKey<'_> {
    fn public_key(&self) -> &PublicKey {
        &self.key.public
    }

    fn name(&self) -> String {
        self.uri.clone()
    }

    fn sign_digest(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        digest: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        self.signing().sign_digest(alg, message, digest)
    }
}
