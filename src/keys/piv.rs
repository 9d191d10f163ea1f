//! YubiKey PIV keys used natively (PC/SC), named `yubikey:slot=9c` or
//! `yubikey:serial=NNNN;slot=9c`.
//!
//! A [`PivDevice`] is one opened YubiKey. Keys in its slots sign through [`PivKey`], which
//! implements [`crate::signer::SigningKey`], so CA operations, CRLs and archives use them like
//! token keys. The PIN is verified once per run; with PIN policy "always" it is presented again
//! before each signature (the same, already verified PIN: never a second guess). Attestations are
//! checked with [`crate::attest`].

use std::cell::RefCell;

use secrecy::{ExposeSecret, SecretString};
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{MgmKey, YubiKey};

use crate::signer::{KeyAlgorithm, PublicKey, SignError, SignatureAlgorithm, SigningKey};

/// Errors of native YubiKey access.
#[derive(Debug, thiserror::Error)]
pub enum PivError {
    /// A malformed `yubikey:` URI.
    #[error(
        "malformed YubiKey key name {input:?}: {reason}. Expected yubikey:slot=9c or yubikey:serial=12345678;slot=9a (slots 9a, 9c, 9d, 9e, 82-95)"
    )]
    Uri {
        /// The name as given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// No YubiKey, or several without a serial.
    #[error("{0}")]
    NotFound(String),
    /// The PIN was wrong; it is not tried again.
    #[error(
        "wrong PIN for YubiKey {serial}; it was tried once and will not be retried. {tries} tries left before the PIN locks{}. Check the PIN source and run the command again",
        if *tries == 0 { " (the PIN is now LOCKED: unblock it with the PUK)" } else { "" }
    )]
    WrongPin {
        /// The YubiKey's serial.
        serial: u32,
        /// Tries left.
        tries: u8,
    },
    /// The management key was refused.
    #[error(
        "the management key was refused by YubiKey {serial}; give the right one with --management-key-source, or --management-key-source protected if it is PIN-protected"
    )]
    ManagementKey {
        /// The serial.
        serial: u32,
    },
    /// The default credentials would be needed but were not allowed.
    #[error(
        "generating a key needs the management key: give it with --management-key-source SRC (hex), or `protected` for a PIN-protected one. The factory default is used only with --allow-default-credentials, and then you must change it"
    )]
    NoManagementKey,
    /// The slot holds no key, or one hsmsign does not use.
    #[error("slot {slot} of YubiKey {serial}: {reason}")]
    Slot {
        /// The slot.
        slot: String,
        /// The serial.
        serial: u32,
        /// What is wrong.
        reason: String,
    },
    /// Any other device error.
    #[error("YubiKey {serial}: {doing} failed: {reason}")]
    Device {
        /// The serial (0 when unknown).
        serial: u32,
        /// What hsmsign was doing.
        doing: String,
        /// The library's message.
        reason: String,
    },
}

/// A parsed `yubikey:` key name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PivUri {
    /// The YubiKey's serial, when given.
    pub serial: Option<u32>,
    /// The PIV slot (0x9a, 0x9c, 0x9d, 0x9e, 0x82..=0x95).
    pub slot: u8,
}

impl PivUri {
    /// True for strings that name a YubiKey key natively.
    pub fn is_piv(s: &str) -> bool {
        s.starts_with("yubikey:")
    }

    /// Parse `yubikey:slot=9c` or `yubikey:serial=12345678;slot=9c`.
    pub fn parse(input: &str) -> Result<Self, PivError> {
        let err = |reason: &str| PivError::Uri {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let rest = input
            .strip_prefix("yubikey:")
            .ok_or_else(|| err("does not start with yubikey:"))?;
        let (mut serial, mut slot) = (None, None);
        for part in rest.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| err("attribute without '='"))?;
            match k {
                "serial" => {
                    if serial.is_some() {
                        return Err(err("serial given twice"));
                    }
                    serial = Some(
                        v.parse()
                            .map_err(|_| err("serial must be a decimal number"))?,
                    );
                }
                "slot" => {
                    if slot.is_some() {
                        return Err(err("slot given twice"));
                    }
                    let n =
                        u8::from_str_radix(v, 16).map_err(|_| err("slot must be hex, e.g. 9c"))?;
                    if !matches!(n, 0x9a | 0x9c | 0x9d | 0x9e | 0x82..=0x95) {
                        return Err(err("not a key slot"));
                    }
                    slot = Some(n);
                }
                _ => return Err(err(&format!("unknown attribute {k:?}"))),
            }
        }
        Ok(Self {
            serial,
            slot: slot.ok_or_else(|| err("no slot= given"))?,
        })
    }

    fn slot_id(&self) -> Result<SlotId, PivError> {
        SlotId::try_from(self.slot).map_err(|e| PivError::Uri {
            input: self.to_string(),
            reason: e.to_string(),
        })
    }
}

impl std::fmt::Display for PivUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.serial {
            Some(s) => write!(f, "yubikey:serial={s};slot={:02x}", self.slot),
            None => write!(f, "yubikey:slot={:02x}", self.slot),
        }
    }
}

/// Where the management key comes from.
pub enum ManagementKey {
    /// A key given by the officer (hex).
    Given(SecretString),
    /// The PIN-protected management key stored on the YubiKey (PIN verified first).
    Protected,
    /// The factory default (only with an explicit opt-in).
    FactoryDefault,
}

/// One opened YubiKey.
pub struct PivDevice {
    yk: RefCell<YubiKey>,
    serial: u32,
    version: String,
    /// The PIN, kept (wiped on drop) for slots whose PIN policy demands it before each use.
    pin: RefCell<Option<SecretString>>,
}

impl PivDevice {
    /// Open the YubiKey the URI names (by serial, or the only one present).
    pub fn open(uri: &PivUri) -> Result<Self, PivError> {
        let yk = match uri.serial {
            Some(s) => YubiKey::open_by_serial(s.into()).map_err(|e| {
                PivError::NotFound(format!(
                    "no YubiKey with serial {s} could be opened ({e}); check it is plugged in and that pcscd runs"
                ))
            })?,
            None => YubiKey::open().map_err(|e| {
                PivError::NotFound(format!(
                    "no single YubiKey could be opened ({e}); plug in exactly one, or name it with yubikey:serial=NNNN;slot=..; pcscd must be running"
                ))
            })?,
        };
        let serial = u32::from(yk.serial());
        let version = yk.version().to_string();
        Ok(Self {
            yk: RefCell::new(yk),
            serial,
            version,
            pin: RefCell::new(None),
        })
    }

    /// The serial number.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The firmware version.
    pub fn version(&self) -> &str {
        &self.version
    }

    fn device(&self, doing: &str) -> impl FnOnce(yubikey::Error) -> PivError + '_ {
        let doing = doing.to_string();
        move |e| PivError::Device {
            serial: self.serial,
            doing,
            reason: e.to_string(),
        }
    }

    /// Verify the PIN once. A wrong PIN is reported with the tries left and never retried.
    pub fn verify_pin(&self, pin: SecretString) -> Result<(), PivError> {
        let result = self
            .yk
            .borrow_mut()
            .verify_pin(pin.expose_secret().as_bytes());
        match result {
            Ok(()) => {
                *self.pin.borrow_mut() = Some(pin);
                Ok(())
            }
            Err(yubikey::Error::WrongPin { tries }) => Err(PivError::WrongPin {
                serial: self.serial,
                tries,
            }),
            Err(e) => Err(self.device("verifying the PIN")(e)),
        }
    }

    /// Authenticate with the management key (needed to generate keys).
    pub fn authenticate(&self, key: &ManagementKey) -> Result<(), PivError> {
        let mut yk = self.yk.borrow_mut();
        let mgm = match key {
            ManagementKey::Given(hex) => {
                let bytes = decode_hex(hex.expose_secret()).ok_or(PivError::ManagementKey {
                    serial: self.serial,
                })?;
                MgmKey::from_bytes(bytes.as_slice(), None).map_err(|_| PivError::ManagementKey {
                    serial: self.serial,
                })?
            }
            ManagementKey::Protected => MgmKey::get_protected(&mut yk)
                .map_err(|e| self.device("reading the PIN-protected management key")(e))?,
            ManagementKey::FactoryDefault => MgmKey::get_default(&yk)
                .map_err(|e| self.device("using the default management key")(e))?,
        };
        yk.authenticate(&mgm).map_err(|e| match e {
            yubikey::Error::AuthenticationError => PivError::ManagementKey {
                serial: self.serial,
            },
            other => self.device("authenticating with the management key")(other),
        })
    }

    /// Generate a key in `slot`; the management key must be authenticated first.
    pub fn generate(
        &self,
        uri: &PivUri,
        algorithm: KeyAlgorithm,
        pin_policy: yubikey::PinPolicy,
        touch_policy: yubikey::TouchPolicy,
    ) -> Result<PublicKey, PivError> {
        let alg = match algorithm {
            KeyAlgorithm::EcP256 => AlgorithmId::EccP256,
            KeyAlgorithm::EcP384 => AlgorithmId::EccP384,
            KeyAlgorithm::Rsa(_) => {
                return Err(PivError::Slot {
                    slot: format!("{:02x}", uri.slot),
                    serial: self.serial,
                    reason: "hsmsign makes ec-p256 or ec-p384 keys on YubiKeys".into(),
                });
            }
        };
        let spki = piv::generate(
            &mut self.yk.borrow_mut(),
            uri.slot_id()?,
            alg,
            pin_policy,
            touch_policy,
        )
        .map_err(|e| self.device("generating the key")(e))?;
        let der = der::Encode::to_der(&spki).map_err(|e| PivError::Device {
            serial: self.serial,
            doing: "reading the new public key".into(),
            reason: e.to_string(),
        })?;
        PublicKey::from_spki_der(&der).map_err(|e| PivError::Device {
            serial: self.serial,
            doing: "reading the new public key".into(),
            reason: e.to_string(),
        })
    }

    /// The public key of the key in `slot` (from the slot's metadata, else its certificate).
    pub fn public_key(&self, uri: &PivUri) -> Result<PublicKey, PivError> {
        let slot = uri.slot_id()?;
        let spki_der = {
            let mut yk = self.yk.borrow_mut();
            match piv::metadata(&mut yk, slot) {
                Ok(m) => m.public.and_then(|p| der::Encode::to_der(&p).ok()),
                Err(_) => None,
            }
            .or_else(|| {
                yubikey::certificate::Certificate::read(&mut yk, slot)
                    .ok()
                    .and_then(|c| der::Encode::to_der(&c.subject_pki()).ok())
            })
        };
        let der = spki_der.ok_or_else(|| PivError::Slot {
            slot: format!("{:02x}", uri.slot),
            serial: self.serial,
            reason: "holds no key hsmsign can see (no metadata, no certificate): generate one with `hsmsign key generate --key yubikey:slot=..`".into(),
        })?;
        PublicKey::from_spki_der(&der).map_err(|e| PivError::Slot {
            slot: format!("{:02x}", uri.slot),
            serial: self.serial,
            reason: e.to_string(),
        })
    }

    /// The slot's attestation certificate and the device (f9) certificate, both DER.
    pub fn attestation(&self, uri: &PivUri) -> Result<(Vec<u8>, Vec<u8>), PivError> {
        let slot = uri.slot_id()?;
        let mut yk = self.yk.borrow_mut();
        let att = piv::attest(&mut yk, slot).map_err(|e| PivError::Device {
            serial: self.serial,
            doing: format!("reading the attestation of slot {:02x}", uri.slot),
            reason: format!("{e} (emulated cards and YubiKeys before firmware 4.3 cannot attest)"),
        })?;
        let f9 =
            yubikey::certificate::Certificate::read(&mut yk, SlotId::Attestation).map_err(|e| {
                PivError::Device {
                    serial: self.serial,
                    doing: "reading the device attestation certificate (slot f9)".into(),
                    reason: e.to_string(),
                }
            })?;
        let f9_der = der::Encode::to_der(&f9.cert).map_err(|e| PivError::Device {
            serial: self.serial,
            doing: "encoding the f9 certificate".into(),
            reason: e.to_string(),
        })?;
        Ok((att.to_vec(), f9_der))
    }

    /// A signing key for the slot.
    pub fn signing_key<'d>(
        &'d self,
        uri: &PivUri,
        on_touch: Option<&'d dyn Fn()>,
    ) -> Result<PivKey<'d>, PivError> {
        let public = self.public_key(uri)?;
        if !public.algorithm().is_ec() {
            return Err(PivError::Slot {
                slot: format!("{:02x}", uri.slot),
                serial: self.serial,
                reason: "holds an RSA key; hsmsign signs with YubiKey EC keys only".into(),
            });
        }
        Ok(PivKey {
            dev: self,
            uri: uri.clone(),
            slot: uri.slot_id()?,
            public,
            on_touch,
        })
    }
}

/// A key in a YubiKey PIV slot.
pub struct PivKey<'d> {
    dev: &'d PivDevice,
    uri: PivUri,
    slot: SlotId,
    public: PublicKey,
    on_touch: Option<&'d dyn Fn()>,
}

impl SigningKey for PivKey<'_> {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn name(&self) -> String {
        PivUri {
            serial: Some(self.dev.serial),
            slot: self.uri.slot,
        }
        .to_string()
    }

    fn sign_digest(
        &self,
        _alg: SignatureAlgorithm,
        _message: &[u8],
        digest: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        let alg = match self.public.algorithm() {
            KeyAlgorithm::EcP256 => AlgorithmId::EccP256,
            _ => AlgorithmId::EccP384,
        };
        let input = crate::signer::ecdsa_input(self.public.algorithm(), digest);
        if let Some(touch) = self.on_touch {
            touch();
        }
        let device = |e: yubikey::Error| SignError::Device {
            key: self.name(),
            reason: e.to_string(),
        };
        let mut yk = self.dev.yk.borrow_mut();
        match piv::sign_data(&mut yk, input, alg, self.slot) {
            Ok(sig) => Ok(sig.to_vec()),
            // PIN policy "always": present the already verified PIN again, then sign once more.
            Err(yubikey::Error::AuthenticationError) | Err(yubikey::Error::WrongPin { .. })
                if self.dev.pin.borrow().is_some() =>
            {
                let pin = self.dev.pin.borrow();
                let pin = pin.as_ref().map(|p| p.expose_secret().as_bytes().to_vec());
                if let Some(pin) = pin {
                    yk.verify_pin(&pin).map_err(device)?;
                }
                piv::sign_data(&mut yk, input, alg, self.slot)
                    .map(|s| s.to_vec())
                    .map_err(device)
            }
            Err(e) => Err(device(e)),
        }
    }
}

fn decode_hex(s: &str) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(s.len() / 2));
    for i in (0..s.len()).step_by(2) {
        out.push(u8::from_str_radix(s.get(i..i + 2)?, 16).ok()?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_and_print() {
        let u = PivUri::parse("yubikey:serial=13078782;slot=9c").unwrap();
        assert_eq!(u.serial, Some(13078782));
        assert_eq!(u.slot, 0x9c);
        assert_eq!(u.to_string(), "yubikey:serial=13078782;slot=9c");
        assert_eq!(PivUri::parse("yubikey:slot=82").unwrap().slot, 0x82);
        for bad in [
            "yubikey:",
            "yubikey:slot=9b",
            "yubikey:slot=zz",
            "yubikey:slot=9a;slot=9c",
            "yubikey:serial=x;slot=9a",
            "pkcs11:slot=9a",
            "yubikey:pin=1234;slot=9a",
        ] {
            assert!(PivUri::parse(bad).is_err(), "{bad}");
        }
    }
}
