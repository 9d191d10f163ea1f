//! The one way to sign.
//!
//! Every signature hsmsign makes (certificates, CRLs, JS7 archive entries) goes through
//! [`sign`]: it checks that the algorithm fits the key, hashes the message on the host,
//! asks the key to sign, and verifies the result against the public key in software before
//! returning it. A token fault therefore never produces a bad signature silently.
//!
//! Keys plug in through the [`SigningKey`] trait: the PKCS#11 token key
//! ([`crate::keys::pkcs11::TokenKey`]) in production, and a software key in unit tests only.

use crate::encoding::{hex, pem_encode};
use std::fmt;

use der::{Decode, Encode};
use sha2::Digest;
use spki::{DecodePublicKey, SubjectPublicKeyInfoOwned};

/// OID of `id-ecPublicKey` (RFC 5480).
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
/// OID of `secp256r1` / P-256.
const OID_P256: &str = "1.2.840.10045.3.1.7";
/// OID of `secp384r1` / P-384.
const OID_P384: &str = "1.3.132.0.34";
/// OID of `rsaEncryption` (RFC 8017).
const OID_RSA: &str = "1.2.840.113549.1.1.1";
/// Smallest RSA modulus hsmsign certifies or signs with, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus hsmsign certifies or signs with, in bits (what the verifiers it uses
/// accept).
pub const MAX_RSA_BITS: usize = 8192;

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

/// The kind of a key pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 (secp256r1).
    EcP256,
    /// ECDSA on NIST P-384 (secp384r1).
    EcP384,
    /// RSA with the given modulus size in bits.
    Rsa(usize),
}

impl KeyAlgorithm {
    /// Parse the `--algorithm` spelling of `key generate`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ec-p256" | "p256" | "p-256" => Some(Self::EcP256),
            "ec-p384" | "p384" | "p-384" => Some(Self::EcP384),
            "rsa-3072" => Some(Self::Rsa(3072)),
            "rsa-4096" => Some(Self::Rsa(4096)),
            _ => None,
        }
    }

    /// The signature algorithm used when none is asked for.
    pub fn default_signature(self) -> SignatureAlgorithm {
        match self {
            Self::EcP256 => SignatureAlgorithm::EcdsaSha256,
            Self::EcP384 => SignatureAlgorithm::EcdsaSha384,
            Self::Rsa(_) => SignatureAlgorithm::RsaSha256,
        }
    }

    /// True for the elliptic-curve kinds.
    pub fn is_ec(self) -> bool {
        matches!(self, Self::EcP256 | Self::EcP384)
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EcP256 => f.write_str("ec-p256"),
            Self::EcP384 => f.write_str("ec-p384"),
            Self::Rsa(bits) => write!(f, "rsa-{bits}"),
        }
    }
}

/// A host-side hash function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// Hash `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// The DER DigestInfo prefix of RFC 8017 section 9.2 note 1, for PKCS#1 v1.5 signing.
    pub fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Self::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Self::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Self::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// A signature algorithm: key type, padding and hash. The JS7 names are the Java
/// `java.security.Signature` names that JS7 Controllers and Agents use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// ECDSA with SHA-256 (`SHA256withECDSA`, `ecdsa-with-SHA256`).
    EcdsaSha256,
    /// ECDSA with SHA-384 (`SHA384withECDSA`).
    EcdsaSha384,
    /// ECDSA with SHA-512 (`SHA512withECDSA`).
    EcdsaSha512,
    /// RSA PKCS#1 v1.5 with SHA-256 (`SHA256withRSA`).
    RsaSha256,
    /// RSA PKCS#1 v1.5 with SHA-384 (`SHA384withRSA`).
    RsaSha384,
    /// RSA PKCS#1 v1.5 with SHA-512 (`SHA512withRSA`).
    RsaSha512,
}

impl SignatureAlgorithm {
    /// Every algorithm, for listings in error messages.
    pub const ALL: [Self; 6] = [
        Self::EcdsaSha256,
        Self::EcdsaSha384,
        Self::EcdsaSha512,
        Self::RsaSha256,
        Self::RsaSha384,
        Self::RsaSha512,
    ];

    /// The Java / JS7 name, e.g. `SHA256withECDSA`.
    pub fn java_name(self) -> &'static str {
        match self {
            Self::EcdsaSha256 => "SHA256withECDSA",
            Self::EcdsaSha384 => "SHA384withECDSA",
            Self::EcdsaSha512 => "SHA512withECDSA",
            Self::RsaSha256 => "SHA256withRSA",
            Self::RsaSha384 => "SHA384withRSA",
            Self::RsaSha512 => "SHA512withRSA",
        }
    }

    /// Parse a Java / JS7 name (case-insensitive).
    pub fn from_java_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.java_name().eq_ignore_ascii_case(name))
    }

    /// The X.509 AlgorithmIdentifier OID (RFC 5758 / RFC 8017).
    pub fn oid(self) -> &'static str {
        match self {
            Self::EcdsaSha256 => "1.2.840.10045.4.3.2",
            Self::EcdsaSha384 => "1.2.840.10045.4.3.3",
            Self::EcdsaSha512 => "1.2.840.10045.4.3.4",
            Self::RsaSha256 => "1.2.840.113549.1.1.11",
            Self::RsaSha384 => "1.2.840.113549.1.1.12",
            Self::RsaSha512 => "1.2.840.113549.1.1.13",
        }
    }

    /// Look an algorithm up by its X.509 OID.
    pub fn from_oid(oid: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.oid() == oid)
    }

    /// The hash the host computes.
    pub fn hash(self) -> HashAlgorithm {
        match self {
            Self::EcdsaSha256 | Self::RsaSha256 => HashAlgorithm::Sha256,
            Self::EcdsaSha384 | Self::RsaSha384 => HashAlgorithm::Sha384,
            Self::EcdsaSha512 | Self::RsaSha512 => HashAlgorithm::Sha512,
        }
    }

    /// True for the ECDSA algorithms.
    pub fn is_ecdsa(self) -> bool {
        matches!(
            self,
            Self::EcdsaSha256 | Self::EcdsaSha384 | Self::EcdsaSha512
        )
    }

    /// True if this algorithm can be used with a key of kind `key`.
    pub fn fits(self, key: KeyAlgorithm) -> bool {
        self.is_ecdsa() == key.is_ec()
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.java_name())
    }
}

/// A public key, kept as its DER SubjectPublicKeyInfo (RFC 5280 4.1.2.7).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    spki_der: Vec<u8>,
    algorithm: KeyAlgorithm,
    /// The contents of the SPKI's BIT STRING: the EC point or the PKCS#1 RSAPublicKey.
    raw: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({}, {})",
            self.algorithm,
            self.fingerprint_hex()
        )
    }
}

impl PublicKey {
    /// Decode and classify a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, SignError> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der).map_err(|e| SignError::Malformed {
            what: "SubjectPublicKeyInfo",
            reason: e.to_string(),
        })?;
        let oid = spki.algorithm.oid.to_string();
        let raw = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| SignError::Malformed {
                what: "SubjectPublicKeyInfo",
                reason: "public key BIT STRING has unused bits".into(),
            })?
            .to_vec();
        let algorithm = match oid.as_str() {
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
                    .map(|o| o.to_string())
                    .unwrap_or_default();
                match curve.as_str() {
                    OID_P256 => {
                        p256::ecdsa::VerifyingKey::from_sec1_bytes(&raw).map_err(|_| {
                            SignError::Malformed {
                                what: "P-256 public key",
                                reason: "not a valid curve point".into(),
                            }
                        })?;
                        KeyAlgorithm::EcP256
                    }
                    OID_P384 => {
                        p384::ecdsa::VerifyingKey::from_sec1_bytes(&raw).map_err(|_| {
                            SignError::Malformed {
                                what: "P-384 public key",
                                reason: "not a valid curve point".into(),
                            }
                        })?;
                        KeyAlgorithm::EcP384
                    }
                    other => {
                        return Err(SignError::UnsupportedKey(format!(
                            "EC key on curve {}",
                            curve_name(other)
                        )));
                    }
                }
            }
            OID_RSA => {
                // The size first: a modulus beyond what the RSA decoder takes is a key of an
                // unsupported size, not a malformed one.
                if let Some(bits) = rsa_modulus_bits(&raw)
                    && !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits)
                {
                    return Err(SignError::UnsupportedKey(format!("RSA-{bits}")));
                }
                let key = rsa::RsaPublicKey::from_public_key_der(der).map_err(|e| {
                    SignError::Malformed {
                        what: "RSA public key",
                        reason: e.to_string(),
                    }
                })?;
                let bits = rsa::traits::PublicKeyParts::n_bits_precision(&key) as usize;
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(SignError::UnsupportedKey(format!("RSA-{bits}")));
                }
                KeyAlgorithm::Rsa(bits)
            }
            other => {
                return Err(SignError::UnsupportedKey(format!(
                    "key algorithm OID {other}"
                )));
            }
        };
        Ok(Self {
            spki_der: der.to_vec(),
            algorithm,
            raw,
        })
    }

    /// Build the SPKI of an EC key from its curve and uncompressed SEC1 point.
    pub fn from_ec_point(algorithm: KeyAlgorithm, point: &[u8]) -> Result<Self, SignError> {
        let der = match algorithm {
            KeyAlgorithm::EcP256 => {
                let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| {
                    SignError::Malformed {
                        what: "P-256 public key",
                        reason: "not a valid curve point".into(),
                    }
                })?;
                spki::EncodePublicKey::to_public_key_der(&vk)
            }
            KeyAlgorithm::EcP384 => {
                let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| {
                    SignError::Malformed {
                        what: "P-384 public key",
                        reason: "not a valid curve point".into(),
                    }
                })?;
                spki::EncodePublicKey::to_public_key_der(&vk)
            }
            KeyAlgorithm::Rsa(_) => {
                return Err(SignError::UnsupportedKey(
                    "RSA key given as EC point".into(),
                ));
            }
        }
        .map_err(|e| SignError::Malformed {
            what: "SubjectPublicKeyInfo",
            reason: e.to_string(),
        })?;
        Self::from_spki_der(der.as_bytes())
    }

    /// Build the SPKI of an RSA key from modulus and public exponent (big-endian bytes).
    pub fn from_rsa_parts(modulus: &[u8], exponent: &[u8]) -> Result<Self, SignError> {
        // The size first, as for an SPKI: a token key too large for the RSA decoder is of an
        // unsupported size, not malformed.
        let bits = unsigned_bits(modulus);
        if bits > MAX_RSA_BITS || (bits > 0 && bits < MIN_RSA_BITS) {
            return Err(SignError::UnsupportedKey(format!("RSA-{bits}")));
        }
        let n = rsa::BoxedUint::from_be_slice_vartime(modulus);
        let e = rsa::BoxedUint::from_be_slice_vartime(exponent);
        let key = rsa::RsaPublicKey::new(n, e).map_err(|e| SignError::Malformed {
            what: "RSA public key",
            reason: e.to_string(),
        })?;
        let der =
            spki::EncodePublicKey::to_public_key_der(&key).map_err(|e| SignError::Malformed {
                what: "SubjectPublicKeyInfo",
                reason: e.to_string(),
            })?;
        Self::from_spki_der(der.as_bytes())
    }

    /// The key's kind.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The BIT STRING contents: EC point or PKCS#1 RSAPublicKey (what rcgen calls `der_bytes`).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// PEM `PUBLIC KEY` block.
    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.spki_der)
    }

    /// SHA-256 over the DER SPKI, lower-case hex.
    pub fn fingerprint_hex(&self) -> String {
        hex(&sha2::Sha256::digest(&self.spki_der))
    }

    /// RFC 5280 4.2.1.2 method (1) key identifier: SHA-1 would be the classic choice; we use
    /// the leftmost 160 bits of SHA-256 over the BIT STRING (RFC 7093 method 1).
    pub fn key_identifier(&self) -> Vec<u8> {
        sha2::Sha256::digest(&self.raw)[..20].to_vec()
    }

    /// Verify a signature made with `alg` over `message`.
    pub fn verify(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignError> {
        if !alg.fits(self.algorithm) {
            return Err(SignError::Invalid { alg });
        }
        match self.ring_algorithm(alg) {
            Some(ring_alg) => ring::signature::UnparsedPublicKey::new(ring_alg, &self.raw)
                .verify(message, signature)
                .map_err(|_| SignError::Invalid { alg }),
            None => self.verify_digest(alg, &alg.hash().digest(message), signature),
        }
    }

    /// The assembly-optimised verifier for this key and algorithm, where there is one. `raw` is
    /// what it expects: the uncompressed EC point, or the PKCS#1 RSAPublicKey.
    fn ring_algorithm(
        &self,
        alg: SignatureAlgorithm,
    ) -> Option<&'static dyn ring::signature::VerificationAlgorithm> {
        use SignatureAlgorithm as S;
        use ring::signature as r;
        Some(match (self.algorithm, alg) {
            (KeyAlgorithm::EcP256, S::EcdsaSha256) => &r::ECDSA_P256_SHA256_ASN1,
            (KeyAlgorithm::EcP256, S::EcdsaSha384) => &r::ECDSA_P256_SHA384_ASN1,
            (KeyAlgorithm::EcP384, S::EcdsaSha256) => &r::ECDSA_P384_SHA256_ASN1,
            (KeyAlgorithm::EcP384, S::EcdsaSha384) => &r::ECDSA_P384_SHA384_ASN1,
            (KeyAlgorithm::Rsa(_), S::RsaSha256) => &r::RSA_PKCS1_2048_8192_SHA256,
            (KeyAlgorithm::Rsa(_), S::RsaSha384) => &r::RSA_PKCS1_2048_8192_SHA384,
            (KeyAlgorithm::Rsa(_), S::RsaSha512) => &r::RSA_PKCS1_2048_8192_SHA512,
            _ => return None,
        })
    }

    /// Verify a signature made with `alg` over a message whose digest (by `alg.hash()`) is given.
    pub fn verify_digest(
        &self,
        alg: SignatureAlgorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<(), SignError> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        let bad = || SignError::Invalid { alg };
        if !alg.fits(self.algorithm) {
            return Err(bad());
        }
        match self.algorithm {
            KeyAlgorithm::EcP256 => {
                let vk =
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.raw).map_err(|_| bad())?;
                let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| bad())?;
                vk.verify_prehash(digest, &sig).map_err(|_| bad())
            }
            KeyAlgorithm::EcP384 => {
                let vk =
                    p384::ecdsa::VerifyingKey::from_sec1_bytes(&self.raw).map_err(|_| bad())?;
                let sig = p384::ecdsa::Signature::from_der(signature).map_err(|_| bad())?;
                vk.verify_prehash(digest, &sig).map_err(|_| bad())
            }
            KeyAlgorithm::Rsa(_) => {
                let key =
                    rsa::RsaPublicKey::from_public_key_der(&self.spki_der).map_err(|_| bad())?;
                let scheme = match alg.hash() {
                    HashAlgorithm::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    HashAlgorithm::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                    HashAlgorithm::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                };
                key.verify(scheme, digest, signature).map_err(|_| bad())
            }
        }
    }
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

/// The bit length of the modulus of a PKCS#1 `RSAPublicKey { n, e }`, or `None` if it does not
/// decode (the RSA decoder then says what is wrong).
fn rsa_modulus_bits(pkcs1: &[u8]) -> Option<usize> {
    #[derive(der::Sequence)]
    struct RsaPublicKeyRef<'a> {
        n: der::asn1::UintRef<'a>,
        e: der::asn1::UintRef<'a>,
    }
    let key = RsaPublicKeyRef::from_der(pkcs1).ok()?;
    Some(unsigned_bits(key.n.as_bytes()))
}

/// The bit length of a big-endian unsigned number (leading zero octets allowed).
fn unsigned_bits(be: &[u8]) -> usize {
    let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    match be.get(start) {
        Some(&first) => (be.len() - start) * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// How a message names an EC curve: its common name and OID, or why there is none.
fn curve_name(oid: &str) -> String {
    let named = |name: &str| format!("{name} (OID {oid})");
    let text = match oid {
        "1.3.132.0.10" => named("secp256k1"),
        "1.3.132.0.35" => named("P-521"),
        "1.3.36.3.3.2.8.1.1.7" => named("brainpoolP256r1"),
        "1.3.36.3.3.2.8.1.1.11" => named("brainpoolP384r1"),
        "1.3.36.3.3.2.8.1.1.13" => named("brainpoolP512r1"),
        "1.3.132.0.33" => named("P-224"),
        "1.2.840.10045.3.1.1" => named("P-192"),
        "" => "(no named curve: explicit curve parameters are not accepted)".into(),
        other => format!("OID {other}"),
    };
    format!("{text}; supported curves are P-256 (OID {OID_P256}) and P-384 (OID {OID_P384})")
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

    #[test]
    fn fast_and_pure_rust_verifiers_agree() {
        for (key, alg) in [
            (SoftKey::p256(5), SignatureAlgorithm::EcdsaSha256),
            (SoftKey::p256(5), SignatureAlgorithm::EcdsaSha384),
            (SoftKey::p384(6), SignatureAlgorithm::EcdsaSha384),
            (SoftKey::p384(6), SignatureAlgorithm::EcdsaSha256),
        ] {
            let pk = key.public_key();
            assert!(pk.ring_algorithm(alg).is_some());
            let sig = sign(&key, alg, b"message").unwrap();
            pk.verify(alg, b"message", &sig).unwrap();
            pk.verify_digest(alg, &alg.hash().digest(b"message"), &sig)
                .unwrap();
            let mut bad = sig.clone();
            let n = bad.len();
            bad[n - 1] ^= 1;
            assert!(pk.verify(alg, b"message", &bad).is_err());
            assert!(
                pk.verify_digest(alg, &alg.hash().digest(b"message"), &bad)
                    .is_err()
            );
            assert!(pk.verify(alg, b"messagE", &sig).is_err());
        }
    }

    #[test]
    fn java_names_round_trip() {
        for a in SignatureAlgorithm::ALL {
            assert_eq!(SignatureAlgorithm::from_java_name(a.java_name()), Some(a));
            assert_eq!(SignatureAlgorithm::from_oid(a.oid()), Some(a));
        }
        assert_eq!(
            SignatureAlgorithm::from_java_name("sha256withecdsa"),
            Some(SignatureAlgorithm::EcdsaSha256)
        );
    }

    #[test]
    fn p384_spki_round_trip() {
        let key = SoftKey::p384(3);
        let pk = PublicKey::from_spki_der(key.public_key().spki_der()).unwrap();
        assert_eq!(pk.algorithm(), KeyAlgorithm::EcP384);
        let sig = sign(&key, SignatureAlgorithm::EcdsaSha512, b"m").unwrap();
        pk.verify(SignatureAlgorithm::EcdsaSha512, b"m", &sig)
            .unwrap();
    }

    #[test]
    fn rsa_keys_outside_the_range_are_named_by_size_not_called_malformed() {
        let mut n = vec![0xffu8; 16384 / 8];
        n[0] = 0xc1;
        for (modulus, bits) in [(n.clone(), 16384), (n[..1024].to_vec(), 8192)] {
            let got = PublicKey::from_rsa_parts(&modulus, &[1, 0, 1]);
            if bits > MAX_RSA_BITS {
                let err = got.unwrap_err().to_string();
                assert!(
                    err.contains("RSA-16384") && err.contains("2048 to 8192"),
                    "{err}"
                );
            } else {
                // 8192 is inside the range: not refused for its size.
                assert!(!matches!(got, Err(SignError::UnsupportedKey(_))), "{bits}");
            }
        }
        let err = PublicKey::from_rsa_parts(&n[..128], &[1, 0, 1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("RSA-1024"), "{err}");
        assert_eq!(unsigned_bits(&[0, 0, 0x01, 0xff]), 9);
        assert_eq!(unsigned_bits(&[0, 0]), 0);
    }
}
