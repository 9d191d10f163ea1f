//! The one way to sign.
//!
//! Every signature hsmsign makes (certificates, CRLs, JS7 archive entries) goes through
//! [`sign`]: it checks that the algorithm fits the key, hashes the message on the host,
//! asks the key to sign, and verifies the result against the public key in software before
//! returning it. A token fault therefore never produces a bad signature silently.
//!
//! Keys plug in through the [`SigningKey`] trait: the PKCS#11 token key
//! ([`crate::keys::pkcs11::TokenKey`]) in production, and a software key in unit tests only.

use der::Encode;

mod algorithm;
mod public_key;

pub use algorithm::{HashAlgorithm, KeyAlgorithm, SignatureAlgorithm};
pub use public_key::{MAX_RSA_BITS, MIN_RSA_BITS, PublicKey};

/// Errors of the signing layer.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The public key is of a kind hsmsign does not sign with.
    #[error(
        "unsupported public key ({0}): hsmsign supports EC P-256, EC P-384 and RSA keys of 2048 to 8192 bits"
    )]
    UnsupportedKey(String),
    /// A signature algorithm that does not fit the key was asked for.
    #[error(
        "signature algorithm {alg} does not fit a {key} key: use {suggest} (or leave --algorithm out)"
    )]
    AlgorithmMismatch {
        /// The algorithm asked for.
        alg: SignatureAlgorithm,
        /// The key's algorithm.
        key: KeyAlgorithm,
        /// What would fit.
        suggest: SignatureAlgorithm,
    },
    /// The key (token) failed to sign.
    #[error("signing with {key} failed: {reason}")]
    Device {
        /// Which key.
        key: String,
        /// What the device said.
        reason: String,
    },
    /// The device returned a signature that does not verify against the public key.
    #[error(
        "the signature returned by {key} does NOT verify against its public key ({alg}); nothing was written. \
         The token may be faulty or the key object may not belong to this public key: run `hsmsign key inspect --key {key}`"
    )]
    BadSignature {
        /// Which key.
        key: String,
        /// Algorithm used.
        alg: SignatureAlgorithm,
    },
    /// A signature to be checked does not verify.
    #[error("signature does not verify ({alg})")]
    Invalid {
        /// Algorithm used.
        alg: SignatureAlgorithm,
    },
    /// A DER structure could not be decoded.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Decoder message.
        reason: String,
    },
}

/// A key that a worker thread of a batch signs with: the same key as the batch's, on a session
/// of its own ([`crate::keys::pkcs11::WorkerKey`]), so it moves to another thread.
pub type WorkerSigner<'a> = Box<dyn SigningKey + Send + 'a>;

/// A key that can sign a host-computed digest. Implemented by the PKCS#11 token key and, in
/// unit tests, by a software key. Call [`sign`], never `sign_digest` directly: only [`sign`]
/// checks the result.
pub trait SigningKey {
    /// The key's public half (read from the token, never from the private object's value).
    fn public_key(&self) -> &PublicKey;

    /// A name for messages: the canonical key URI.
    fn name(&self) -> String;

    /// Sign the digest of a message. ECDSA keys return the DER `SEQUENCE { r, s }`; RSA keys
    /// return the PKCS#1 v1.5 signature block. `message` is passed for devices that can only
    /// hash-and-sign in one mechanism.
    fn sign_digest(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        digest: &[u8],
    ) -> Result<Vec<u8>, SignError>;
}

/// Sign `message` with `key` using `alg`, and verify the signature before returning it.
pub fn sign(
    key: &dyn SigningKey,
    alg: SignatureAlgorithm,
    message: &[u8],
) -> Result<Vec<u8>, SignError> {
    sign_unchecked(key, alg, message)?.check(message)
}

/// Ask `key` to sign `message` with `alg`, returning a signature that is not yet usable: its
/// bytes come out only through [`Unchecked::check`], which verifies them. This lets a batch
/// verify on another thread while the device signs the next object, without any path that
/// uses a signature unverified.
pub fn sign_unchecked(
    key: &dyn SigningKey,
    alg: SignatureAlgorithm,
    message: &[u8],
) -> Result<Unchecked, SignError> {
    let public = key.public_key();
    if !alg.fits(public.algorithm()) {
        return Err(SignError::AlgorithmMismatch {
            alg,
            key: public.algorithm(),
            suggest: public.algorithm().default_signature(),
        });
    }
    let digest = alg.hash().digest(message);
    let signature = key.sign_digest(alg, message, &digest)?;
    Ok(Unchecked {
        signature,
        alg,
        public: public.clone(),
        key: key.name(),
    })
}

/// A signature fresh from a device, not yet verified (see [`sign_unchecked`]).
#[must_use = "a signature is usable only after check()"]
pub struct Unchecked {
    signature: Vec<u8>,
    alg: SignatureAlgorithm,
    public: PublicKey,
    key: String,
}

impl Unchecked {
    /// Verify the signature over `message` (the message it was made for) and hand it out.
    pub fn check(self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.public
            .verify(self.alg, message, &self.signature)
            .map_err(|_| SignError::BadSignature {
                key: self.key,
                alg: self.alg,
            })?;
        Ok(self.signature)
    }
}

/// What an ECDSA device signs for `digest`: ECDSA uses only the leftmost bits of the digest up
/// to the curve order's size, so cutting it there changes nothing and keeps devices that limit
/// the input length happy.
pub fn ecdsa_input(key: KeyAlgorithm, digest: &[u8]) -> &[u8] {
    let order_bytes = match key {
        KeyAlgorithm::EcP256 => 32,
        KeyAlgorithm::EcP384 => 48,
        KeyAlgorithm::Rsa(_) => digest.len(),
    };
    &digest[..digest.len().min(order_bytes)]
}

/// Convert a raw `r || s` ECDSA signature (as PKCS#11 CKM_ECDSA returns it) to DER
/// `SEQUENCE { r INTEGER, s INTEGER }` (as X.509 and Java expect).
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, SignError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(SignError::Malformed {
            what: "raw ECDSA signature",
            reason: format!("odd or empty length {}", raw.len()),
        });
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let malformed = |e: der::Error| SignError::Malformed {
        what: "ECDSA signature",
        reason: e.to_string(),
    };
    let r = der::asn1::UintRef::new(r).map_err(malformed)?;
    let s = der::asn1::UintRef::new(s).map_err(malformed)?;
    let mut inner = Vec::new();
    r.encode_to_vec(&mut inner).map_err(malformed)?;
    s.encode_to_vec(&mut inner).map_err(malformed)?;
    let seq = der::asn1::AnyRef::new(der::Tag::Sequence, &inner).map_err(malformed)?;
    seq.to_der().map_err(malformed)
}

/// A software key, for unit tests of code above the signer. Never used by the binary.
#[cfg(test)]
pub mod soft {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner;

    /// A P-256 or P-384 key held in memory.
    pub enum SoftKey {
        /// P-256.
        P256(p256::ecdsa::SigningKey, PublicKey),
        /// P-384.
        P384(p384::ecdsa::SigningKey, PublicKey),
    }

    impl SoftKey {
        /// A key from a fixed 32-byte (P-256) seed, deterministic for tests.
        pub fn p256(seed: u8) -> Self {
            let sk = p256::ecdsa::SigningKey::from_slice(&[seed.max(1); 32]).expect("valid scalar");
            let point = sk.verifying_key().to_sec1_point(false);
            let pk = PublicKey::from_ec_point(KeyAlgorithm::EcP256, point.as_bytes())
                .expect("valid point");
            Self::P256(sk, pk)
        }

        /// A key from a fixed 48-byte (P-384) seed, deterministic for tests.
        pub fn p384(seed: u8) -> Self {
            let sk = p384::ecdsa::SigningKey::from_slice(&[seed.max(1); 48]).expect("valid scalar");
            let point = sk.verifying_key().to_sec1_point(false);
            let pk = PublicKey::from_ec_point(KeyAlgorithm::EcP384, point.as_bytes())
                .expect("valid point");
            Self::P384(sk, pk)
        }
    }

    impl SigningKey for SoftKey {
        fn public_key(&self) -> &PublicKey {
            match self {
                Self::P256(_, pk) | Self::P384(_, pk) => pk,
            }
        }

        fn name(&self) -> String {
            "software test key".into()
        }

        fn sign_digest(
            &self,
            _alg: SignatureAlgorithm,
            _message: &[u8],
            digest: &[u8],
        ) -> Result<Vec<u8>, SignError> {
            let dev = |e: p256::ecdsa::Error| SignError::Device {
                key: self.name(),
                reason: e.to_string(),
            };
            Ok(match self {
                Self::P256(sk, _) => {
                    let sig: p256::ecdsa::Signature = sk.sign_prehash(digest).map_err(dev)?;
                    sig.to_der().as_bytes().to_vec()
                }
                Self::P384(sk, _) => {
                    let sig: p384::ecdsa::Signature = sk.sign_prehash(digest).map_err(dev)?;
                    sig.to_der().as_bytes().to_vec()
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::soft::SoftKey;
    use super::*;

    #[test]
    fn raw_to_der_strips_and_pads() {
        // r has a high bit (needs a 0x00 pad), s has leading zeros (must be stripped).
        let mut raw = vec![0x80u8; 32];
        raw.extend(std::iter::repeat_n(0u8, 31));
        raw.push(0x05);
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(der[0], 0x30);
        assert_eq!(&der[2..5], &[0x02, 33, 0x00]);
        assert_eq!(&der[der.len() - 3..], &[0x02, 0x01, 0x05]);
        let sig = p256::ecdsa::Signature::from_der(&der);
        assert!(sig.is_ok());
    }

    #[test]
    fn sign_verifies_and_rejects_mismatch() {
        let key = SoftKey::p256(7);
        let sig = sign(&key, SignatureAlgorithm::EcdsaSha256, b"hello").unwrap();
        key.public_key()
            .verify(SignatureAlgorithm::EcdsaSha256, b"hello", &sig)
            .unwrap();
        assert!(
            key.public_key()
                .verify(SignatureAlgorithm::EcdsaSha256, b"hellO", &sig)
                .is_err()
        );
        let err = sign(&key, SignatureAlgorithm::RsaSha256, b"x").unwrap_err();
        assert!(matches!(err, SignError::AlgorithmMismatch { .. }));
    }

    struct LyingKey(SoftKey);
    impl SigningKey for LyingKey {
        fn public_key(&self) -> &PublicKey {
            self.0.public_key()
        }
        fn name(&self) -> String {
            "lying".into()
        }
        fn sign_digest(
            &self,
            alg: SignatureAlgorithm,
            m: &[u8],
            d: &[u8],
        ) -> Result<Vec<u8>, SignError> {
            // Signs with a different key: what a confused token might do.
            SoftKey::p256(9).sign_digest(alg, m, d)
        }
    }

    #[test]
    fn a_signature_from_the_wrong_key_is_caught() {
        let err = sign(
            &LyingKey(SoftKey::p256(7)),
            SignatureAlgorithm::EcdsaSha256,
            b"m",
        )
        .unwrap_err();
        assert!(matches!(err, SignError::BadSignature { .. }), "{err}");
    }
}
