//! Public keys: decoding and classifying a SubjectPublicKeyInfo, and verifying signatures in
//! software.

use std::fmt;

use der::Decode;
use sha2::Digest;
use spki::{DecodePublicKey, SubjectPublicKeyInfoOwned};

use super::{HashAlgorithm, KeyAlgorithm, SignError, SignatureAlgorithm};
use crate::encoding::{hex, pem_encode};

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

#[cfg(test)]
mod tests {
    use super::super::soft::SoftKey;
    use super::super::{SigningKey, sign};
    use super::*;

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
