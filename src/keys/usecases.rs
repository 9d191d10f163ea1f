//! The key use cases as requests: `key generate` and `key import`, each checked by `validate()`
//! before any token is touched and recorded in the audit log when there is a state.

use std::path::PathBuf;

use super::access::{KeyAccess, KeyError, operator};
use super::pkcs11::{KeyInfo, Pkcs11Uri, TokenError};
use crate::signer::{KeyAlgorithm, PublicKey};
use crate::store::{AuditEntry, Store};

/// `key generate`: a new key pair inside a token or a YubiKey slot.
#[derive(Clone, Debug, Default)]
pub struct KeyGenerate {
    /// The key to make: a `pkcs11:` URI naming token and object label (and optionally id), or
    /// a `yubikey:` slot.
    pub key: String,
    /// ec-p256, ec-p384, rsa-3072 or rsa-4096.
    pub algorithm: String,
    /// YubiKey PIN policy: once (default) or always.
    pub pin_policy: Option<String>,
    /// YubiKey touch policy: never (default), always or cached.
    pub touch_policy: Option<String>,
    /// Where the YubiKey management key comes from, or `protected`.
    pub management_key_source: Option<String>,
    /// Allow the YubiKey's factory-default management key.
    pub allow_default_credentials: bool,
}

/// What `key generate` produced.
#[derive(Debug)]
pub struct KeyGenerated {
    /// The new key's canonical name.
    pub uri: String,
    /// Its algorithm.
    pub algorithm: KeyAlgorithm,
    /// Its public half.
    pub public: PublicKey,
    /// Who holds it: a token label or a YubiKey serial.
    pub holder: String,
    /// The token's key details (PKCS#11 keys).
    pub info: Option<KeyInfo>,
    /// What the officer should know about it (YubiKey policies).
    pub policies: Option<String>,
}

/// The object label a `pkcs11:` URI names for a new key.
pub fn label_of(uri: &Pkcs11Uri) -> Result<String, KeyError> {
    uri.object.clone().ok_or_else(|| {
        KeyError::Usage(format!(
            "{uri} names no label for the new key: add ;object=LABEL to the URI"
        ))
    })
}

impl KeyGenerate {
    /// Check the algorithm and the key's name, without a token.
    pub fn validate(&self, keys: &KeyAccess<'_>) -> Result<KeyAlgorithm, KeyError> {
        let alg = KeyAlgorithm::parse(&self.algorithm).ok_or_else(|| {
            KeyError::Usage(format!(
                "unknown --algorithm {:?}: use ec-p256, ec-p384, rsa-3072 or rsa-4096",
                self.algorithm
            ))
        })?;
        #[cfg(feature = "yubikey")]
        if super::piv::PivUri::is_piv(&self.key) {
            super::piv::PivUri::parse(&self.key)?;
            self.piv_policies()?;
            if matches!(alg, KeyAlgorithm::Rsa(_)) {
                return Err(KeyError::Usage(
                    "YubiKey keys made by hsmsign are ec-p256 or ec-p384".into(),
                ));
            }
            return Ok(alg);
        }
        label_of(&keys.uri(&self.key)?)?;
        Ok(alg)
    }

    #[cfg(feature = "yubikey")]
    fn piv_policies(&self) -> Result<(yubikey::PinPolicy, yubikey::TouchPolicy), KeyError> {
        let pin = match self.pin_policy.as_deref().unwrap_or("once") {
            "once" => yubikey::PinPolicy::Once,
            "always" => yubikey::PinPolicy::Always,
            other => {
                return Err(KeyError::Usage(format!(
                    "--pin-policy {other:?}: use once or always (never is refused: a key anyone holding the YubiKey could use)"
                )));
            }
        };
        let touch = match self.touch_policy.as_deref().unwrap_or("never") {
            "never" => yubikey::TouchPolicy::Never,
            "always" => yubikey::TouchPolicy::Always,
            "cached" => yubikey::TouchPolicy::Cached,
            other => {
                return Err(KeyError::Usage(format!(
                    "--touch-policy {other:?}: use never, always or cached"
                )));
            }
        };
        Ok((pin, touch))
    }

    #[cfg(feature = "yubikey")]
    fn management_key(&self, keys: &KeyAccess<'_>) -> Result<super::piv::ManagementKey, KeyError> {
        use super::piv::ManagementKey;
        match self.management_key_source.as_deref() {
            Some("protected") => Ok(ManagementKey::Protected),
            Some(src) => Ok(ManagementKey::Given(
                keys.read_secret(Some(src), "YubiKey management key (hex)")?,
            )),
            None if self.allow_default_credentials => {
                keys.officer.notice(
                    "using the factory-default management key: change it now (`ykman piv access change-management-key --generate --protect`)",
                );
                Ok(ManagementKey::FactoryDefault)
            }
            None => Err(super::piv::PivError::NoManagementKey.into()),
        }
    }
}

/// Make the key `req` asks for, and record it when there is a state.
pub fn generate(
    keys: &KeyAccess<'_>,
    store: Option<&Store>,
    req: &KeyGenerate,
) -> Result<KeyGenerated, KeyError> {
    let alg = req.validate(keys)?;
    #[cfg(feature = "yubikey")]
    if super::piv::PivUri::is_piv(&req.key) {
        return generate_piv(keys, store, req, alg);
    }
    let uri = keys.uri(&req.key)?;
    let label = label_of(&uri)?;
    let module = keys.module(Some(&uri))?;
    let session = keys.login(&module, &uri.token_part_with_pin(&uri), store)?;
    let info = session.generate_key(&label, alg, uri.id.as_deref())?;
    let public = session
        .find_key(&Pkcs11Uri::parse(&info.uri).map_err(TokenError::from)?)?
        .public;
    let holder = session.token().label.clone();
    if let Some(store) = store {
        store.record(
            AuditEntry::new("key.generate", operator(Some(&holder)))
                .param("key", info.uri.clone())
                .param("algorithm", info.algorithm.clone())
                .output("public key", public.spki_der()),
        )?;
    }
    drop(session);
    module.finalize();
    Ok(KeyGenerated {
        uri: info.uri.clone(),
        algorithm: alg,
        public,
        holder,
        info: Some(info),
        policies: None,
    })
}

#[cfg(feature = "yubikey")]
fn generate_piv(
    keys: &KeyAccess<'_>,
    store: Option<&Store>,
    req: &KeyGenerate,
    algorithm: KeyAlgorithm,
) -> Result<KeyGenerated, KeyError> {
    let uri = super::piv::PivUri::parse(&req.key)?;
    let (pin_policy, touch_policy) = req.piv_policies()?;
    let mgm = req.management_key(keys)?;
    let handle = keys.open_key(&req.key, store, None)?;
    let super::KeyHandle::Piv { dev, .. } = &handle else {
        return Err(KeyError::Usage(format!(
            "{} is not a YubiKey slot",
            req.key
        )));
    };
    if dev.public_key(&uri).is_ok() {
        return Err(KeyError::Refused(format!(
            "slot {:02x} of YubiKey {} already holds a key; hsmsign never replaces a key. Use another slot (82-95 are free retired slots), or clear it deliberately with ykman",
            uri.slot,
            dev.serial()
        )));
    }
    dev.authenticate(&mgm)?;
    let public = dev.generate(&uri, algorithm, pin_policy, touch_policy)?;
    let name = handle.key_name()?;
    let holder = handle.holder();
    if let Some(store) = store {
        store.record(
            AuditEntry::new("key.generate", operator(Some(&holder)))
                .param("key", name.clone())
                .param("algorithm", algorithm.to_string())
                .param("pin_policy", format!("{pin_policy:?}"))
                .param("touch_policy", format!("{touch_policy:?}"))
                .output("public key", public.spki_der()),
        )?;
    }
    let policies = format!(
        "slot {:02x} of YubiKey {} (PIN policy {pin_policy:?}, touch policy {touch_policy:?})",
        uri.slot,
        dev.serial()
    );
    handle.finish();
    Ok(KeyGenerated {
        uri: name,
        algorithm,
        public,
        holder,
        info: None,
        policies: Some(policies),
    })
}

/// `key import`: a PKCS#8 private key brought onto a token (migrations only: `key inspect`
/// then reports it as imported, not generated on the token).
#[derive(Clone, Debug)]
pub struct KeyImport {
    /// The key to make: a `pkcs11:` URI naming token and object label.
    pub key: String,
    /// The unencrypted PKCS#8 PEM file.
    pub from: PathBuf,
}

impl KeyImport {
    /// Check the key's name, without a token.
    pub fn validate(&self, keys: &KeyAccess<'_>) -> Result<(Pkcs11Uri, String), KeyError> {
        let uri = keys.uri(&self.key)?;
        let label = label_of(&uri)?;
        Ok((uri, label))
    }
}

/// What `key import` produced: the key's details and the token's label.
#[derive(Debug)]
pub struct KeyImported {
    /// The key's details.
    pub info: KeyInfo,
    /// The token's label.
    pub token: String,
}

/// Import the key `req` names, and record it when there is a state.
pub fn import(
    keys: &KeyAccess<'_>,
    store: Option<&Store>,
    req: &KeyImport,
) -> Result<KeyImported, KeyError> {
    let (uri, label) = req.validate(keys)?;
    // A regular file of at most 64 KiB, read into a buffer that is wiped on drop.
    let bytes = crate::input::read_secret(&req.from, crate::input::InputKind::PrivateKey)?;
    let pem = zeroize::Zeroizing::new(
        std::str::from_utf8(&bytes)
            .map_err(|_| TokenError::Import {
                path: req.from.clone(),
                reason: "is not PEM text; give an unencrypted PKCS#8 PEM file".into(),
            })?
            .to_string(),
    );
    let module = keys.module(Some(&uri))?;
    let session = keys.login(&module, &uri.token_part_with_pin(&uri), store)?;
    let info = session.import_key(&label, &pem, &req.from)?;
    let token = session.token().label.clone();
    if let Some(store) = store {
        store.record(
            AuditEntry::new("key.import", operator(Some(&token)))
                .param("key", info.uri.clone())
                .param("algorithm", info.algorithm.clone())
                .param("from", req.from.display().to_string())
                .param("provenance", "imported, not generated on token"),
        )?;
    }
    drop(session);
    module.finalize();
    Ok(KeyImported { info, token })
}

/// `token probe --exercise`: make a throwaway key of each algorithm the token says it has,
/// sign and verify with it, destroy it, and record the outcome when there is a state.
pub fn probe_exercise(
    keys: &KeyAccess<'_>,
    store: Option<&Store>,
    module: &super::pkcs11::Module,
    uri: &Pkcs11Uri,
    report: &super::pkcs11::probe::ProbeReport,
) -> Result<Vec<super::pkcs11::probe::ExerciseResult>, KeyError> {
    use super::pkcs11::probe;
    let token_uri = Pkcs11Uri {
        token: Some(report.token.summary.label.clone()),
        serial: Some(report.token.summary.serial.clone()),
        ..uri.clone()
    };
    let session = keys.login(module, &token_uri.token_part_with_pin(uri), store)?;
    let results = probe::exercise(&session, report);
    if let Some(store) = store {
        let mut entry = AuditEntry::new(
            "token.probe.exercise",
            operator(Some(&session.token().label)),
        )
        .param("token", session.token().uri.clone());
        for r in &results {
            entry = entry.param(
                r.algorithm.clone(),
                if r.ok() {
                    "generated, non-extractable, signed and verified, destroyed".to_string()
                } else {
                    format!("FAILED: {}", probe::exercise_text(std::slice::from_ref(r)))
                },
            );
        }
        if results.iter().any(|r| !r.ok()) {
            entry = entry.failed("a capability probe says the token has did not work");
        }
        store.record(entry)?;
    }
    Ok(results)
}
