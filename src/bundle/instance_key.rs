//! An instance key made on the appliance for `cert issue --generate-key` (medium security: the
//! key exists outside a token for the time of one command and leaves only inside a
//! password-protected PKCS#12 key bundle). Preferred is a CSR made on the instance itself.

use p256::elliptic_curve::sec1::ToSec1Point;
use secrecy::SecretString;

use super::{BundleError, BundleKey, KeyBundle, Pkcs12Options};
use crate::signer::{KeyAlgorithm, PublicKey};

/// A P-256 key made in memory from the operating system's RNG, with the password of the key
/// bundle it will be handed over in. The secret scalar is wiped on drop (p256's `SecretKey`).
pub struct InstanceKey {
    secret: p256::SecretKey,
    public: PublicKey,
    password: SecretString,
}

impl std::fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl InstanceKey {
    /// Make a P-256 key for a bundle protected by `password` (read by the caller first, so a
    /// missing password stops before any key exists).
    pub fn generate(password: SecretString) -> Result<Self, BundleError> {
        let secret = loop {
            let mut seed = zeroize::Zeroizing::new([0u8; 32]);
            getrandom::fill(seed.as_mut()).map_err(BundleError::Random)?;
            // A scalar outside 1..n-1 is rejected: draw again (probability about 2^-32).
            if let Ok(k) = p256::SecretKey::from_slice(seed.as_ref()) {
                break k;
            }
        };
        let point = secret.public_key().to_sec1_point(false);
        let public =
            PublicKey::from_ec_point(KeyAlgorithm::EcP256, point.as_bytes()).map_err(|e| {
                BundleError::PrivateKey {
                    reason: e.to_string(),
                }
            })?;
        Ok(Self {
            secret,
            public,
            password,
        })
    }

    /// The public key to certify.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Key, certificate and chain as a PKCS#12 key bundle under `alias`.
    pub fn pkcs12(
        &self,
        cert_der: &[u8],
        chain_der: &[Vec<u8>],
        alias: &str,
    ) -> Result<Vec<u8>, BundleError> {
        KeyBundle {
            key: BundleKey::P256(&self.secret),
            cert_der,
            chain_der,
            alias,
        }
        .to_pkcs12(&self.password, &Pkcs12Options::default())
    }
}
