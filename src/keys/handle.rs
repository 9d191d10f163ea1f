//! One opened, logged-in key, whatever holds it: a PKCS#11 token (`pkcs11:` URIs) or a YubiKey
//! used natively (`yubikey:` names). Use cases that sign take a [`KeyHandle`] and never care which.

use std::rc::Rc;

use super::access::{KeyAccess, KeyError};
#[cfg(feature = "yubikey")]
use super::piv::{PivDevice, PivError, PivUri};
use super::pkcs11::{Module, Pkcs11Uri, TokenError, TokenSession};
use crate::signer::{PublicKey, SigningKey, WorkerSigner};
#[cfg(feature = "yubikey")]
use crate::store::AuditEntry;
use crate::store::Store;

/// An opened key.
#[allow(clippy::large_enum_variant)] // one or two per run; boxing would gain nothing
pub enum KeyHandle {
    /// A key on a PKCS#11 token.
    Token {
        /// The module (shared with other handles of this run: one C_Initialize per process).
        module: Rc<Module>,
        /// The logged-in session.
        session: TokenSession,
        /// The key's URI as given.
        uri: Pkcs11Uri,
    },
    /// A key in a YubiKey PIV slot.
    #[cfg(feature = "yubikey")]
    Piv {
        /// The device (shared by the handles of its slots).
        dev: Rc<PivDevice>,
        /// The slot.
        uri: PivUri,
    },
}

impl KeyAccess<'_> {
    /// Check the spelling of a key name (`pkcs11:` URI or `yubikey:` slot) before anything else.
    pub fn check_key_name(&self, key: &str) -> Result<(), KeyError> {
        #[cfg(feature = "yubikey")]
        if PivUri::is_piv(key) {
            PivUri::parse(key)?;
            return Ok(());
        }
        self.uri(key).map(|_| ())
    }

    /// Open a second key in the same run: on the same YubiKey through the open device, on a
    /// PKCS#11 token through the same module (no second PIN when the token is logged in).
    pub fn open_other(
        &self,
        first: &KeyHandle,
        key: &str,
        store: &Store,
    ) -> Result<KeyHandle, KeyError> {
        if let Some(h) = first.sibling(key)? {
            return Ok(h);
        }
        self.open_key(key, Some(store), first.module())
    }

    /// Open the key named `key` and log in once. PKCS#11 keys reuse `module` when given (one
    /// module per process).
    pub fn open_key(
        &self,
        key: &str,
        store: Option<&Store>,
        module: Option<&Rc<Module>>,
    ) -> Result<KeyHandle, KeyError> {
        #[cfg(feature = "yubikey")]
        if PivUri::is_piv(key) {
            let uri = PivUri::parse(key)?;
            let dev = PivDevice::open(&uri)?;
            let source = match &self.pin_source {
                Some(s) => self
                    .check_pin_source(super::pin::PinSource::parse(s).map_err(TokenError::from)?)?,
                None => super::pin::PinSource::Prompt,
            };
            let pin = source
                .read(&format!("PIN of YubiKey {}", dev.serial()), &|w| {
                    self.officer.secret(w)
                })
                .map_err(TokenError::from)?;
            if let Err(e) = dev.verify_pin(pin) {
                if let (Some(store), PivError::WrongPin { .. }) = (store, &e) {
                    let entry = AuditEntry::new(
                        "login",
                        super::operator(Some(&format!("YubiKey {}", dev.serial()))),
                    )
                    .param("key", uri.to_string())
                    .failed(e.to_string());
                    self.record_failure(entry, Some(store));
                }
                return Err(e.into());
            }
            return Ok(KeyHandle::Piv {
                dev: Rc::new(dev),
                uri,
            });
        }
        let uri = self.uri(key)?;
        let module = match module {
            Some(m) => Rc::clone(m),
            None => Rc::new(self.module(Some(&uri))?),
        };
        let session = self.login(&module, &uri, store)?;
        Ok(KeyHandle::Token {
            module,
            session,
            uri,
        })
    }
}

// Without the `yubikey` feature there is one variant, and the `if let`s below are irrefutable.
#[cfg_attr(not(feature = "yubikey"), allow(irrefutable_let_patterns))]
impl KeyHandle {
    /// Another key on the same device, for a YubiKey that is open already (a PC/SC card is
    /// opened once); `None` for PKCS#11 keys, which open a session of their own.
    pub fn sibling(&self, key: &str) -> Result<Option<Self>, KeyError> {
        let _ = key; // used by the YubiKey arm only
        match self {
            Self::Token { .. } => Ok(None),
            #[cfg(feature = "yubikey")]
            Self::Piv { dev, .. } => {
                if !self.same_device(key) {
                    return Ok(None);
                }
                Ok(Some(Self::Piv {
                    dev: Rc::clone(dev),
                    uri: PivUri::parse(key)?,
                }))
            }
        }
    }

    /// The key, ready to sign.
    /// `touch` is called when a YubiKey waits for a touch.
    #[cfg_attr(not(feature = "yubikey"), allow(unused_variables))] // touch: YubiKeys only
    pub fn signing_key<'s>(
        &'s self,
        touch: &'s dyn Fn(),
    ) -> Result<Box<dyn SigningKey + 's>, KeyError> {
        match self {
            Self::Token { session, uri, .. } => Ok(Box::new(session.signing_key(uri)?)),
            #[cfg(feature = "yubikey")]
            Self::Piv { dev, uri } => Ok(Box::new(dev.signing_key(uri, Some(touch))?)),
        }
    }

    /// The key ready to sign, and the worker keys of a batch: `sessions` signing sessions
    /// (default: what the token suggests, see `token probe`). One session signs on the logged-in
    /// session itself; more open that many sessions of their own on the same token, without
    /// another login or key search. A YubiKey used natively is one device: one session. The
    /// notices say when fewer sessions are used than asked for.
    #[allow(clippy::type_complexity)] // the key, its workers, and the notices
    #[cfg_attr(not(feature = "yubikey"), allow(unused_variables))] // touch: YubiKeys only
    pub fn signing_key_with_workers<'s>(
        &'s self,
        sessions: Option<usize>,
        touch: &'s dyn Fn(),
    ) -> Result<
        (
            Box<dyn SigningKey + 's>,
            Vec<WorkerSigner<'static>>,
            Vec<String>,
        ),
        KeyError,
    > {
        match self {
            Self::Token {
                module,
                session,
                uri,
            } => {
                let key = session.signing_key(uri)?;
                let n = sessions.unwrap_or_else(|| session.default_sessions(module).sessions);
                if n <= 1 {
                    return Ok((Box::new(key), Vec::new(), Vec::new()));
                }
                let (workers, notice) = key.workers(module, n);
                let workers = workers
                    .into_iter()
                    .map(|w| Box::new(w) as WorkerSigner<'static>)
                    .collect();
                Ok((Box::new(key), workers, notice.into_iter().collect()))
            }
            #[cfg(feature = "yubikey")]
            Self::Piv { .. } => {
                let notices = if sessions.is_some_and(|n| n > 1) {
                    vec!["a YubiKey used natively is one device: signing on one session".into()]
                } else {
                    Vec::new()
                };
                Ok((self.signing_key(touch)?, Vec::new(), notices))
            }
        }
    }

    /// The public key, without preparing to sign.
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        match self {
            Self::Token { session, uri, .. } => Ok(session.find_key(uri)?.public),
            #[cfg(feature = "yubikey")]
            Self::Piv { dev, uri } => Ok(dev.public_key(uri)?),
        }
    }

    /// The canonical name of the key.
    pub fn key_name(&self) -> Result<String, KeyError> {
        match self {
            Self::Token { session, uri, .. } => {
                let k = session.find_key(uri)?;
                Ok(session.object_uri(&k.label, &k.id))
            }
            #[cfg(feature = "yubikey")]
            Self::Piv { dev, uri } => Ok(PivUri {
                serial: Some(dev.serial()),
                slot: uri.slot,
            }
            .to_string()),
        }
    }

    /// Who holds the key, for the audit log: a token label or a YubiKey serial.
    pub fn holder(&self) -> String {
        match self {
            Self::Token { session, .. } => session.token().label.clone(),
            #[cfg(feature = "yubikey")]
            Self::Piv { dev, .. } => format!("YubiKey {}", dev.serial()),
        }
    }

    /// True when `other` names a slot of this open YubiKey.
    #[cfg(feature = "yubikey")]
    fn same_device(&self, other: &str) -> bool {
        match self {
            Self::Token { .. } => false,
            Self::Piv { dev, .. } => {
                PivUri::parse(other).is_ok_and(|u| u.serial.is_none_or(|s| s == dev.serial()))
            }
        }
    }

    /// The module, for opening more PKCS#11 keys in this run.
    pub fn module(&self) -> Option<&Rc<Module>> {
        match self {
            Self::Token { module, .. } => Some(module),
            #[cfg(feature = "yubikey")]
            Self::Piv { .. } => None,
        }
    }

    /// Random bytes: the token's RNG, or the operating system's for a YubiKey (whose PIV
    /// application offers none) or a token whose RNG fails (said once).
    pub fn random(&self, officer: &dyn super::Officer, n: usize) -> Result<Vec<u8>, TokenError> {
        match self {
            Self::Token { session, .. } => {
                let bytes = session.random(n)?;
                if let Some(notice) = session.take_rng_notice() {
                    officer.notice(&notice);
                }
                Ok(bytes)
            }
            #[cfg(feature = "yubikey")]
            Self::Piv { .. } => {
                let mut buf = vec![0u8; n];
                getrandom::fill(&mut buf).map_err(|e| TokenError::UnusableKey {
                    key: "the operating system's RNG".into(),
                    reason: e.to_string(),
                })?;
                Ok(buf)
            }
        }
    }

    /// The key's provenance verdict, and the attestation (slot certificate, f9 certificate) when
    /// the device gives one that verifies.
    pub fn provenance(&self) -> Result<(String, Option<Vec<u8>>), KeyError> {
        match self {
            Self::Token { session, uri, .. } => Ok((session.inspect(uri)?.verdict, None)),
            #[cfg(feature = "yubikey")]
            Self::Piv { dev, uri } => {
                let public = dev.public_key(uri)?;
                match dev.attestation(uri) {
                    Ok((att, f9)) => {
                        let verified = crate::attest::verify_attestation(
                            &att,
                            &f9,
                            Some(&public),
                            std::time::SystemTime::now(),
                        )?;
                        let mut both = att;
                        both.extend_from_slice(&f9);
                        Ok((verified.verdict(), Some(both)))
                    }
                    Err(e) => Ok((
                        format!(
                            "YubiKey {} slot {:02x}: NOT attested ({e})",
                            dev.serial(),
                            uri.slot
                        ),
                        None,
                    )),
                }
            }
        }
    }

    /// Refuse a key that already has a CA certificate next to it (it belongs to a CA already).
    /// A certificate that does not parse counts as one. An end-entity certificate does not:
    /// PIV cards keep a certificate in every used slot, and some PIV modules (OpenSC) show a
    /// slot's key only when that certificate is there; it is left in place (and the CA
    /// certificate then lives in the state database, as [`Self::store_certificate`] says).
    pub fn refuse_existing_certificate(&self) -> Result<(), KeyError> {
        if let Self::Token { session, uri, .. } = self {
            let k = session.find_key(uri)?;
            if session
                .certificate(&k.id)?
                .is_some_and(|der| !is_end_entity(&der))
            {
                return Err(KeyError::Refused(format!(
                    "the token already holds a certificate for {}: this key already belongs to a CA. Use `hsmsign ca import` to adopt that certificate, or generate a new key",
                    session.object_uri(&k.label, &k.id)
                )));
            }
        }
        Ok(())
    }

    /// Store a CA certificate next to its key, when the device keeps certificates for hsmsign
    /// (PKCS#11 tokens; a YubiKey slot's certificate object is left to the officer's tools).
    pub fn store_certificate(&self, officer: &dyn super::Officer, der: &[u8]) {
        if let Self::Token { session, uri, .. } = self {
            let existing = session
                .find_key(uri)
                .and_then(|k| session.certificate(&k.id).map(|c| (k, c)));
            if let Ok((k, Some(other))) = &existing {
                // PIV cards keep a certificate in each used slot (see refuse_existing_certificate).
                let subject = {
                    use der::Decode;
                    x509_cert::Certificate::from_der(other).map_or_else(
                        |_| "unreadable".to_string(),
                        |c| c.tbs_certificate().subject().to_string(),
                    )
                };
                officer.notice(&format!(
                    "token {:?} already holds an end-entity certificate (subject {subject}) for {} (id {}); it is left in place, and the CA certificate lives only in the state database. Make sure the key serves nothing but this CA",
                    session.token().label,
                    k.label,
                    crate::encoding::hex(&k.id)
                ));
                return;
            }
            let stored =
                existing.and_then(|(k, _)| session.store_certificate(&k.label, &k.id, der));
            if let Err(e) = stored {
                officer.notice(&format!(
                    "the certificate is recorded, but the token would not store it next to its key ({e}); it lives only in the state database, which is all hsmsign needs"
                ));
            }
        }
    }

    /// Close: log out and, for the last user of the module, finalize it (PKCS#11); or release
    /// the YubiKey.
    pub fn finish(self) {
        if let Self::Token {
            module, session, ..
        } = self
        {
            drop(session);
            if let Ok(m) = Rc::try_unwrap(module) {
                m.finalize();
            }
        }
    }
}

/// Whether `der` parses as a certificate whose BasicConstraints (if any) say CA:FALSE.
fn is_end_entity(der: &[u8]) -> bool {
    use der::Decode;
    use x509_cert::ext::pkix::BasicConstraints;
    x509_cert::Certificate::from_der(der).is_ok_and(|c| {
        c.tbs_certificate()
            .get_extension::<BasicConstraints>()
            .is_ok_and(|bc| bc.is_none_or(|(_, bc)| !bc.ca))
    })
}
