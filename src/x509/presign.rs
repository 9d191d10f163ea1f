//! The rehearsal signature: before a token key signs a certificate or a CRL, the same
//! to-be-signed bytes are signed by a throwaway software key of the same kind, and the result is
//! checked as the token's will be (RFC 5280 structure, hsmsign's profile rules, field by field).
//! Only then does the token sign, and the token's certificate must carry exactly the checked
//! to-be-signed bytes. A mistake in what would be signed is found before the token is asked.
//!
//! The throwaway key lives in memory for one signature and is dropped (its scalar or primes
//! wiped by the key types on drop). It never signs anything that leaves this module.

use p256::elliptic_curve::Generate;

use super::IssueError;
use crate::signer::{KeyAlgorithm, PublicKey, SignError, SignatureAlgorithm, SigningKey};

/// A software key of the same kind as a token key, made for one rehearsal signature.
pub(crate) enum ThrowawayKey {
    /// P-256.
    P256(p256::ecdsa::SigningKey, PublicKey),
    /// P-384.
    P384(p384::ecdsa::SigningKey, PublicKey),
    /// RSA of the token key's size.
    Rsa(Box<rsa::RsaPrivateKey>, PublicKey),
}

fn rng() -> getrandom::rand_core::UnwrapErr<getrandom::SysRng> {
    getrandom::rand_core::UnwrapErr(getrandom::SysRng)
}

impl ThrowawayKey {
    /// A fresh key of `like`'s algorithm and size.
    pub(crate) fn like(like: &PublicKey) -> Result<Self, SignError> {
        let unusable = |reason: String| SignError::Device {
            key: "the throwaway rehearsal key".into(),
            reason,
        };
        Ok(match like.algorithm() {
            KeyAlgorithm::EcP256 => {
                let sk = p256::ecdsa::SigningKey::try_generate_from_rng(&mut getrandom::SysRng)
                    .map_err(|e| unusable(e.to_string()))?;
                let point = sk.verifying_key().to_sec1_point(false);
                let pk = PublicKey::from_ec_point(KeyAlgorithm::EcP256, point.as_bytes())?;
                Self::P256(sk, pk)
            }
            KeyAlgorithm::EcP384 => {
                let sk = p384::ecdsa::SigningKey::try_generate_from_rng(&mut getrandom::SysRng)
                    .map_err(|e| unusable(e.to_string()))?;
                let point = sk.verifying_key().to_sec1_point(false);
                let pk = PublicKey::from_ec_point(KeyAlgorithm::EcP384, point.as_bytes())?;
                Self::P384(sk, pk)
            }
            KeyAlgorithm::Rsa(bits) => {
                use rsa::pkcs8::EncodePublicKey;
                let sk = rsa::RsaPrivateKey::new(&mut rng(), bits)
                    .map_err(|e| unusable(e.to_string()))?;
                let spki = sk
                    .to_public_key()
                    .to_public_key_der()
                    .map_err(|e| unusable(e.to_string()))?;
                let pk = PublicKey::from_spki_der(spki.as_bytes())?;
                Self::Rsa(Box::new(sk), pk)
            }
        })
    }
}

impl SigningKey for ThrowawayKey {
    fn public_key(&self) -> &PublicKey {
        match self {
            Self::P256(_, pk) | Self::P384(_, pk) | Self::Rsa(_, pk) => pk,
        }
    }

    fn name(&self) -> String {
        "the throwaway rehearsal key".into()
    }

    fn sign_digest(
        &self,
        alg: SignatureAlgorithm,
        _message: &[u8],
        digest: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        let fail = |reason: String| SignError::Device {
            key: self.name(),
            reason,
        };
        Ok(match self {
            Self::P256(sk, _) => {
                let sig: p256::ecdsa::Signature =
                    sk.sign_prehash(digest).map_err(|e| fail(e.to_string()))?;
                sig.to_der().as_bytes().to_vec()
            }
            Self::P384(sk, _) => {
                let sig: p384::ecdsa::Signature =
                    sk.sign_prehash(digest).map_err(|e| fail(e.to_string()))?;
                sig.to_der().as_bytes().to_vec()
            }
            Self::Rsa(sk, _) => {
                let scheme = match alg.hash() {
                    crate::signer::HashAlgorithm::Sha256 => {
                        rsa::Pkcs1v15Sign::new::<sha2::Sha256>()
                    }
                    crate::signer::HashAlgorithm::Sha384 => {
                        rsa::Pkcs1v15Sign::new::<sha2::Sha384>()
                    }
                    crate::signer::HashAlgorithm::Sha512 => {
                        rsa::Pkcs1v15Sign::new::<sha2::Sha512>()
                    }
                };
                sk.sign(scheme, digest).map_err(|e| fail(e.to_string()))?
            }
        })
    }
}

/// Sign `tbs_der` with a throwaway key of `like`'s kind, assemble the signed object and run
/// `check` on it with the throwaway's public key (which its signature must verify under).
/// Returns the to-be-signed bytes that passed, for [`same_tbs`] after the token signed.
pub(crate) fn rehearse(
    what: &'static str,
    tbs_der: &[u8],
    alg: SignatureAlgorithm,
    alg_id: &spki::AlgorithmIdentifierOwned,
    like: &PublicKey,
    check: impl Fn(&[u8], &PublicKey) -> Result<(), String>,
) -> Result<Vec<u8>, IssueError> {
    let throwaway = ThrowawayKey::like(like)?;
    let signature = crate::signer::sign(&throwaway, alg, tbs_der)?;
    let der =
        super::assemble_signed(tbs_der, alg_id, &signature).map_err(|e| IssueError::SelfCheck {
            what,
            detail: format!("the rehearsal could not assemble it: {e}"),
        })?;
    check(&der, throwaway.public_key()).map_err(|detail| IssueError::SelfCheck {
        what,
        detail: format!("signed by a throwaway key before the token, {detail}"),
    })?;
    Ok(tbs_der.to_vec())
}

/// The object the token signed carries exactly the to-be-signed bytes that [`rehearse`] checked.
pub(crate) fn same_tbs(
    what: &'static str,
    signed_der: &[u8],
    rehearsed: &[u8],
) -> Result<(), IssueError> {
    let differs = |detail: String| IssueError::SelfCheck { what, detail };
    let raw = super::SignedRaw::split(signed_der).map_err(|e| differs(e.to_string()))?;
    let tbs = raw.tbs_der().map_err(|e| differs(e.to_string()))?;
    if tbs != rehearsed {
        return Err(differs(
            "the token signed other to-be-signed bytes than the ones checked before it".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer;

    #[test]
    fn throwaway_keys_match_the_kind_and_sign_what_verifies() {
        let like = [
            signer::soft::SoftKey::p256(3).public_key().clone(),
            signer::soft::SoftKey::p384(4).public_key().clone(),
        ];
        for pk in &like {
            let key = ThrowawayKey::like(pk).unwrap();
            assert_eq!(key.public_key().algorithm(), pk.algorithm());
            assert_ne!(
                key.public_key(),
                pk,
                "a fresh key, not the one it stands in for"
            );
            let alg = pk.algorithm().default_signature();
            signer::sign(&key, alg, b"tbs").unwrap();
        }
        // RSA: a key of the same modulus size.
        let rsa_like = {
            use rsa::pkcs8::EncodePublicKey;
            let sk = rsa::RsaPrivateKey::new(&mut rng(), 2048).unwrap();
            PublicKey::from_spki_der(sk.to_public_key().to_public_key_der().unwrap().as_bytes())
                .unwrap()
        };
        let key = ThrowawayKey::like(&rsa_like).unwrap();
        assert_eq!(key.public_key().algorithm(), KeyAlgorithm::Rsa(2048));
        assert_ne!(key.public_key(), &rsa_like);
        signer::sign(&key, SignatureAlgorithm::RsaSha256, b"tbs").unwrap();
        let a = ThrowawayKey::like(&like[0]).unwrap();
        assert!(matches!(
            same_tbs("certificate", b"not DER", b"tbs"),
            Err(IssueError::SelfCheck { .. })
        ));
        let b = ThrowawayKey::like(&like[0]).unwrap();
        assert_ne!(a.public_key(), b.public_key(), "each rehearsal key is new");
    }

    #[test]
    fn a_rehearsal_that_fails_its_check_stops_before_the_token() {
        let token_key = signer::soft::SoftKey::p256(9);
        let alg = SignatureAlgorithm::EcdsaSha256;
        let alg_id = crate::x509::signature_algorithm_identifier(alg).unwrap();
        let tbs = der::Encode::to_der(&der::asn1::Null).unwrap();
        let seen = std::cell::Cell::new(None);
        let err = rehearse(
            "certificate",
            &tbs,
            alg,
            &alg_id,
            token_key.public_key(),
            |der, pk| {
                seen.set(Some((der.to_vec(), pk.clone())));
                Err("the subject is wrong".into())
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("throwaway key"), "{err}");
        assert!(err.to_string().contains("the subject is wrong"), "{err}");
        // The check saw a signed object made by a key of the same kind, not the token's key.
        let (der, pk) = seen.take().unwrap();
        assert_eq!(pk.algorithm(), KeyAlgorithm::EcP256);
        assert_ne!(&pk, token_key.public_key());
        // A token signature over the rehearsed bytes passes; over other bytes it does not.
        let rehearsed = rehearse(
            "certificate",
            &tbs,
            alg,
            &alg_id,
            token_key.public_key(),
            |_, _| Ok(()),
        )
        .unwrap();
        same_tbs("certificate", &der, &rehearsed).unwrap();
        let other = der::Encode::to_der(&true).unwrap();
        let sig = signer::sign(&token_key, alg, &other).unwrap();
        let signed_other = crate::x509::assemble_signed(&other, &alg_id, &sig).unwrap();
        assert!(same_tbs("certificate", &signed_other, &rehearsed).is_err());
    }
}
