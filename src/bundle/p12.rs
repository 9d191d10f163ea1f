//! The PKCS#12 (RFC 7292) encoder and decoder behind [`super::KeyBundle`] and the truststores.
//!
//! Layout written (the one `openssl pkcs12 -export` and the JDK both produce, in substance):
//!
//! ```text
//! PFX v3
//!   authSafe: data -> AuthenticatedSafe
//!     [0] encryptedData (PBES2) -> SafeContents: certBag...      (the certificates)
//!     [1] data -> SafeContents: pkcs8ShroudedKeyBag (PBES2)       (key bundles only)
//!   macData: HMAC-SHA256, key from the RFC 7292 Appendix B KDF (SHA-256, ID 3)
//! ```
//!
//! PBES2 (RFC 8018 6.2): PBKDF2 with HMAC-SHA256, a 16-byte salt and a 32-byte key, then
//! AES-256-CBC with a 16-byte IV and PKCS#7 padding. The PBKDF2 password is the UTF-8 bytes of the
//! password (what OpenSSL and the JDK's SunJCE both feed it); the MAC KDF takes the password as a
//! BMPString with two trailing zero bytes (RFC 7292 B.1).
//!
//! Bag attributes: the key bag and the key's own certificate bag carry friendlyName (the alias)
//! and localKeyId (SHA-256 of the certificate), which pair them for both readers; CA chain
//! certificates carry none. A truststore's certificate bags carry friendlyName and the JDK's
//! trusted-key-usage attribute (OID 2.16.840.1.113894.746875.1.1, value anyExtendedKeyUsage),
//! without which the JDK would not list the certificate at all.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::encrypted_data::EncryptedData;
use cms::enveloped_data::EncryptedContentInfo;
use der::asn1::{BmpString, ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Decode, Encode, Tagged};
use hmac::{KeyInit, Mac};
use pkcs12::kdf::{Pkcs12KeyType, derive_key_utf8};
use pkcs12::pbe_params::{EncryptedPrivateKeyInfo, Pbes2Params, Pbkdf2Params};
use pkcs12::safe_bag::SafeContents;
use pkcs12::{CertBag, DigestInfo, MacData, Pfx, SafeBag};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::{Attribute, Attributes};
use zeroize::{Zeroize, Zeroizing};

use super::{BundleError, DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS, TrustedCert};

use der::oid::db::{rfc2985, rfc5280, rfc5753, rfc5911, rfc5912};

const ID_DATA: ObjectIdentifier = rfc5911::ID_DATA;
const ID_ENCRYPTED_DATA: ObjectIdentifier = rfc5911::ID_ENCRYPTED_DATA;
/// id-PBES2 (RFC 8018 A.4); const-oid's database does not list it.
const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const PBKDF2: ObjectIdentifier = rfc5911::ID_PBKDF_2;
const HMAC_WITH_SHA256: ObjectIdentifier = rfc5753::ID_HMAC_WITH_SHA_256;
const AES128_CBC: ObjectIdentifier = rfc5911::ID_AES_128_CBC;
const AES192_CBC: ObjectIdentifier = rfc5911::ID_AES_192_CBC;
const AES256_CBC: ObjectIdentifier = rfc5911::ID_AES_256_CBC;
const SHA256: ObjectIdentifier = rfc5912::ID_SHA_256;
const FRIENDLY_NAME: ObjectIdentifier = rfc2985::PKCS_9_AT_FRIENDLY_NAME;
const LOCAL_KEY_ID: ObjectIdentifier = rfc2985::PKCS_9_AT_LOCAL_KEY_ID;
/// The JDK's "trusted key usage" bag attribute (Oracle arc); its values are EKU OIDs. Not in
/// any RFC, so not in const-oid's database.
const ORACLE_TRUSTED_KEY_USAGE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.113894.746875.1.1");
const ANY_EXTENDED_KEY_USAGE: ObjectIdentifier = rfc5280::ANY_EXTENDED_KEY_USAGE;

const SALT_LEN: usize = 16;
const IV_LEN: usize = 16;

/// How a PKCS#12 file is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pkcs12Options {
    /// PBKDF2 iterations for the key and certificate encryption, and the MAC KDF's iterations;
    /// [`MIN_ITERATIONS`]..=[`MAX_ITERATIONS`].
    pub iterations: u32,
}

impl Default for Pkcs12Options {
    fn default() -> Self {
        Self {
            iterations: DEFAULT_ITERATIONS,
        }
    }
}

/// A private key found in a PKCS#12 file.
pub struct StoredKey {
    /// The bag's friendlyName, if any.
    pub alias: Option<String>,
    /// The bag's localKeyId, if any.
    pub local_key_id: Option<Vec<u8>>,
    /// The decrypted PKCS#8 `PrivateKeyInfo` DER.
    pub pkcs8_der: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("alias", &self.alias)
            .field("local_key_id", &self.local_key_id)
            .field("pkcs8_der", &"[secret key elided]")
            .finish()
    }
}

/// A certificate found in a PKCS#12 file.
#[derive(Debug, Clone)]
pub struct StoredCert {
    /// The bag's friendlyName, if any.
    pub alias: Option<String>,
    /// The bag's localKeyId, if any (set on the certificate that belongs to a key).
    pub local_key_id: Option<Vec<u8>>,
    /// Whether the bag carries the JDK's trusted-key-usage attribute (a `trustedCertEntry`).
    pub trusted: bool,
    /// The certificate (DER).
    pub der: Vec<u8>,
}

/// What a PKCS#12 file holds, in file order.
#[derive(Debug)]
pub struct Pkcs12Contents {
    /// The private keys.
    pub keys: Vec<StoredKey>,
    /// The certificates.
    pub certs: Vec<StoredCert>,
}

/// The checked password and iteration count, shared by all the encryption steps of one file.
struct Protection<'a> {
    password: &'a str,
    iterations: u32,
}

impl<'a> Protection<'a> {
    fn new(password: &'a SecretString, options: &Pkcs12Options) -> Result<Self, BundleError> {
        let password = password.expose_secret();
        if password.is_empty() {
            return Err(BundleError::EmptyPassword);
        }
        if password.chars().any(|c| u32::from(c) > 0xFFFF) {
            return Err(BundleError::PasswordNotBmp);
        }
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&options.iterations) {
            return Err(BundleError::Iterations {
                iterations: options.iterations,
            });
        }
        Ok(Self {
            password,
            iterations: options.iterations,
        })
    }
}

pub(super) fn write_key_bundle(
    pkcs8: &[u8],
    cert_der: &[u8],
    chain: &[&[u8]],
    alias: &str,
    password: &SecretString,
    options: &Pkcs12Options,
) -> Result<Vec<u8>, BundleError> {
    let protection = Protection::new(password, options)?;
    let local_key_id = Sha256::digest(cert_der).to_vec();
    let pair_attributes = || -> Result<Attributes, BundleError> {
        attributes(vec![
            attribute(FRIENDLY_NAME, any(&bmp(alias)?)?)?,
            attribute(LOCAL_KEY_ID, any(&octets(&local_key_id)?)?)?,
        ])
    };

    let mut cert_bags = vec![cert_bag(cert_der, Some(pair_attributes()?))?];
    for der in chain {
        cert_bags.push(cert_bag(der, None)?);
    }

    let (key_alg, encrypted_key) = pbes2_encrypt(&protection, pkcs8)?;
    let key_info = EncryptedPrivateKeyInfo {
        encryption_algorithm: key_alg,
        encrypted_data: octets(&encrypted_key)?,
    };
    let key_bag = SafeBag {
        bag_id: pkcs12::PKCS_12_PKCS8_KEY_BAG_OID,
        bag_value: key_info.to_der().map_err(BundleError::Encode)?,
        bag_attributes: Some(pair_attributes()?),
    };

    let safes = vec![
        encrypted_safe(&protection, &cert_bags)?,
        plain_safe(&[key_bag])?,
    ];
    pfx(&protection, &safes)
}

pub(super) fn write_truststore(
    certs: &[TrustedCert<'_>],
    password: &SecretString,
    options: &Pkcs12Options,
) -> Result<Vec<u8>, BundleError> {
    let protection = Protection::new(password, options)?;
    let mut bags = Vec::with_capacity(certs.len());
    for cert in certs {
        let attrs = attributes(vec![
            attribute(FRIENDLY_NAME, any(&bmp(cert.alias)?)?)?,
            attribute(ORACLE_TRUSTED_KEY_USAGE, any(&ANY_EXTENDED_KEY_USAGE)?)?,
        ])?;
        bags.push(cert_bag(cert.cert_der, Some(attrs))?);
    }
    let safes = vec![encrypted_safe(&protection, &bags)?];
    pfx(&protection, &safes)
}

/// Reads a PKCS#12 file written with PBES2 (PBKDF2-HMAC-SHA256, AES-CBC) and an HMAC-SHA256 MAC.
///
/// The MAC is checked before anything is decrypted: a wrong password gives
/// [`BundleError::WrongPassword`]. Bags other than key, shrouded-key and certificate bags are
/// skipped.
pub fn read_pkcs12(bytes: &[u8], password: &SecretString) -> Result<Pkcs12Contents, BundleError> {
    let password = password.expose_secret();
    let pfx = Pfx::from_der(bytes).map_err(|e| malformed("the PFX structure", e))?;
    if pfx.auth_safe.content_type != ID_DATA {
        return Err(BundleError::Unsupported {
            what: format!(
                "public-key integrity mode (authSafe content type {})",
                pfx.auth_safe.content_type
            ),
        });
    }
    let auth_safe = pfx
        .auth_safe
        .content
        .decode_as::<OctetString>()
        .map_err(|e| malformed("the authSafe content", e))?;
    let auth_safe = auth_safe.as_bytes();
    let mac_data = pfx.mac_data.ok_or_else(|| BundleError::Unsupported {
        what: "no MAC (a file not protected by a password)".to_string(),
    })?;
    verify_mac(&mac_data, password, auth_safe)?;

    let safes = Vec::<ContentInfo>::from_der(auth_safe)
        .map_err(|e| malformed("the AuthenticatedSafe", e))?;
    let mut contents = Pkcs12Contents {
        keys: Vec::new(),
        certs: Vec::new(),
    };
    for (i, safe) in safes.iter().enumerate() {
        let where_ = format!("SafeContents {}", i + 1);
        let plain: Zeroizing<Vec<u8>> = if safe.content_type == ID_DATA {
            let octets = safe
                .content
                .decode_as::<OctetString>()
                .map_err(|e| malformed(&where_, e))?;
            Zeroizing::new(octets.as_bytes().to_vec())
        } else if safe.content_type == ID_ENCRYPTED_DATA {
            let data = safe
                .content
                .decode_as::<EncryptedData>()
                .map_err(|e| malformed(&where_, e))?;
            let info = data.enc_content_info;
            let ciphertext = info
                .encrypted_content
                .ok_or_else(|| BundleError::Malformed {
                    what: format!("{where_} (no encrypted content)"),
                })?;
            pbes2_decrypt(&info.content_enc_alg, password, ciphertext.as_bytes())?
        } else {
            return Err(BundleError::Unsupported {
                what: format!("a SafeContents of content type {}", safe.content_type),
            });
        };
        let bags = SafeContents::from_der(&plain).map_err(|e| malformed(&where_, e))?;
        for mut bag in bags {
            let result = read_bag(&bag, password, &mut contents);
            // An unencrypted keyBag holds the key in clear: wipe the decoder's copy.
            bag.bag_value.zeroize();
            result?;
        }
    }
    Ok(contents)
}

fn read_bag(
    bag: &SafeBag,
    password: &str,
    contents: &mut Pkcs12Contents,
) -> Result<(), BundleError> {
    let mut alias = None;
    let mut local_key_id = None;
    let mut trusted = false;
    for attr in bag.bag_attributes.iter().flat_map(|a| a.iter()) {
        let Some(value) = attr.values.iter().next() else {
            continue;
        };
        if attr.oid == FRIENDLY_NAME {
            let name = value
                .decode_as::<BmpString>()
                .map_err(|e| malformed("a friendlyName attribute", e))?;
            alias = Some(name.to_string());
        } else if attr.oid == LOCAL_KEY_ID {
            let id = value
                .decode_as::<OctetString>()
                .map_err(|e| malformed("a localKeyId attribute", e))?;
            local_key_id = Some(id.as_bytes().to_vec());
        } else if attr.oid == ORACLE_TRUSTED_KEY_USAGE {
            trusted = true;
        }
    }
    // On decoding, SafeBag keeps the whole `[0] EXPLICIT` TLV (on encoding it adds the wrapper
    // itself): the bag's value is the content of that wrapper.
    let wrapper = Any::from_der(&bag.bag_value).map_err(|e| malformed("a bag value", e))?;
    if !matches!(wrapper.tag(), der::Tag::ContextSpecific { number, constructed: true } if number.value() == 0)
    {
        return Err(BundleError::Malformed {
            what: format!("a bag value (tag {} instead of [0])", wrapper.tag()),
        });
    }
    let value = wrapper.value();
    if bag.bag_id == pkcs12::PKCS_12_CERT_BAG_OID {
        let cert = CertBag::from_der(value).map_err(|e| malformed("a certificate bag", e))?;
        if cert.cert_id != pkcs12::PKCS_12_X509_CERT_OID {
            return Err(BundleError::Unsupported {
                what: format!("a certificate bag of type {}", cert.cert_id),
            });
        }
        contents.certs.push(StoredCert {
            alias,
            local_key_id,
            trusted,
            der: cert.cert_value.as_bytes().to_vec(),
        });
    } else if bag.bag_id == pkcs12::PKCS_12_PKCS8_KEY_BAG_OID {
        let info = EncryptedPrivateKeyInfo::from_der(value)
            .map_err(|e| malformed("a shrouded key bag", e))?;
        let pkcs8_der = pbes2_decrypt(
            &info.encryption_algorithm,
            password,
            info.encrypted_data.as_bytes(),
        )?;
        contents.keys.push(StoredKey {
            alias,
            local_key_id,
            pkcs8_der,
        });
    } else if bag.bag_id == pkcs12::PKCS_12_KEY_BAG_OID {
        contents.keys.push(StoredKey {
            alias,
            local_key_id,
            pkcs8_der: Zeroizing::new(value.to_vec()),
        });
    }
    Ok(())
}

fn pfx(protection: &Protection<'_>, safes: &[ContentInfo]) -> Result<Vec<u8>, BundleError> {
    let auth_safe = safes.to_vec().to_der().map_err(BundleError::Encode)?;
    let mac_salt = random::<SALT_LEN>()?;
    let mac_key = mac_key(protection.password, &mac_salt, protection.iterations)?;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&mac_key)
        .map_err(|_| BundleError::Encode(der::Error::from(der::ErrorKind::Failed)))?;
    mac.update(&auth_safe);
    let digest = mac.finalize().into_bytes();
    let pfx = Pfx {
        version: pkcs12::pfx::Version::V3,
        auth_safe: ContentInfo {
            content_type: ID_DATA,
            content: any(&octets(&auth_safe)?)?,
        },
        mac_data: Some(MacData {
            mac: DigestInfo {
                algorithm: AlgorithmIdentifierOwned {
                    oid: SHA256,
                    parameters: Some(Any::null()),
                },
                digest: octets(&digest)?,
            },
            mac_salt: octets(&mac_salt)?,
            iterations: iterations_i32(protection.iterations)?,
        }),
    };
    pfx.to_der().map_err(BundleError::Encode)
}

fn verify_mac(mac_data: &MacData, password: &str, auth_safe: &[u8]) -> Result<(), BundleError> {
    if mac_data.mac.algorithm.oid != SHA256 {
        return Err(BundleError::Unsupported {
            what: format!("a MAC with digest {}", mac_data.mac.algorithm.oid),
        });
    }
    let iterations = u32::try_from(mac_data.iterations)
        .ok()
        .filter(|n| (1..=MAX_ITERATIONS).contains(n))
        .ok_or_else(|| BundleError::Unsupported {
            what: format!("{} MAC iterations", mac_data.iterations),
        })?;
    let key = mac_key(password, mac_data.mac_salt.as_bytes(), iterations)?;
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(&key).map_err(|_| BundleError::Malformed {
            what: "the MAC key".to_string(),
        })?;
    mac.update(auth_safe);
    mac.verify_slice(mac_data.mac.digest.as_bytes())
        .map_err(|_| BundleError::WrongPassword)
}

/// RFC 7292 B.2 MAC key (ID 3) with SHA-256: 32 bytes.
fn mac_key(
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Result<Zeroizing<Vec<u8>>, BundleError> {
    let key = derive_key_utf8::<Sha256>(
        password,
        salt,
        Pkcs12KeyType::Mac,
        iterations_i32(iterations)?,
        32,
    )
    .map_err(|_| BundleError::PasswordNotBmp)?;
    Ok(Zeroizing::new(key))
}

fn pbes2_encrypt(
    protection: &Protection<'_>,
    plaintext: &[u8],
) -> Result<(AlgorithmIdentifierOwned, Vec<u8>), BundleError> {
    let salt = random::<SALT_LEN>()?;
    let iv = random::<IV_LEN>()?;
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(
        protection.password.as_bytes(),
        &salt,
        protection.iterations,
        key.as_mut_slice(),
    );
    let ciphertext = cbc::Encryptor::<aes::Aes256>::new_from_slices(key.as_slice(), &iv)
        .map_err(|_| BundleError::Encode(der::Error::from(der::ErrorKind::Failed)))?
        .encrypt_padded_vec::<Pkcs7>(plaintext);

    let kdf_params = Pbkdf2Params {
        salt: octets(&salt)?,
        iteration_count: protection.iterations,
        key_length: None,
        prf: AlgorithmIdentifierOwned {
            oid: HMAC_WITH_SHA256,
            parameters: Some(Any::null()),
        },
    };
    let params = Pbes2Params {
        kdf: AlgorithmIdentifierOwned {
            oid: PBKDF2,
            parameters: Some(any(&kdf_params)?),
        },
        encryption: AlgorithmIdentifierOwned {
            oid: AES256_CBC,
            parameters: Some(any(&octets(&iv)?)?),
        },
    };
    let alg = AlgorithmIdentifierOwned {
        oid: PBES2,
        parameters: Some(any(&params)?),
    };
    Ok((alg, ciphertext))
}

fn pbes2_decrypt(
    alg: &AlgorithmIdentifierOwned,
    password: &str,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, BundleError> {
    if alg.oid != PBES2 {
        return Err(BundleError::Unsupported {
            what: format!("encryption scheme {} (only PBES2 is read)", alg.oid),
        });
    }
    let params = alg
        .parameters
        .as_ref()
        .ok_or_else(|| BundleError::Malformed {
            what: "PBES2 parameters (missing)".to_string(),
        })?
        .decode_as::<Pbes2Params>()
        .map_err(|e| malformed("the PBES2 parameters", e))?;
    if params.kdf.oid != PBKDF2 {
        return Err(BundleError::Unsupported {
            what: format!("key derivation {}", params.kdf.oid),
        });
    }
    let kdf = params
        .kdf
        .parameters
        .as_ref()
        .ok_or_else(|| BundleError::Malformed {
            what: "PBKDF2 parameters (missing)".to_string(),
        })?
        .decode_as::<Pbkdf2Params>()
        .map_err(|e| malformed("the PBKDF2 parameters (or a PRF other than HMAC-SHA256)", e))?;
    if kdf.prf.oid != HMAC_WITH_SHA256 {
        return Err(BundleError::Unsupported {
            what: format!("PBKDF2 PRF {}", kdf.prf.oid),
        });
    }
    if !(1..=MAX_ITERATIONS).contains(&kdf.iteration_count) {
        return Err(BundleError::Unsupported {
            what: format!("{} PBKDF2 iterations", kdf.iteration_count),
        });
    }
    let key_len = match params.encryption.oid {
        oid if oid == AES128_CBC => 16,
        oid if oid == AES192_CBC => 24,
        oid if oid == AES256_CBC => 32,
        oid => {
            return Err(BundleError::Unsupported {
                what: format!("cipher {oid}"),
            });
        }
    };
    let iv = params
        .encryption
        .parameters
        .as_ref()
        .ok_or_else(|| BundleError::Malformed {
            what: "the AES-CBC IV (missing)".to_string(),
        })?
        .decode_as::<OctetString>()
        .map_err(|e| malformed("the AES-CBC IV", e))?;
    let mut key = Zeroizing::new(vec![0u8; key_len]);
    pbkdf2::pbkdf2_hmac::<Sha256>(
        password.as_bytes(),
        kdf.salt.as_bytes(),
        kdf.iteration_count,
        key.as_mut_slice(),
    );
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let bad_iv = || BundleError::Malformed {
        what: "the AES-CBC IV (wrong length)".to_string(),
    };
    let len = match key_len {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, iv.as_bytes())
            .map_err(|_| bad_iv())?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, iv.as_bytes())
            .map_err(|_| bad_iv())?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, iv.as_bytes())
            .map_err(|_| bad_iv())?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
    }
    // The MAC verified, so bad padding means the encryption password differs from the MAC's.
    .map_err(|_| BundleError::WrongPassword)?;
    buf.truncate(len);
    Ok(buf)
}

fn encrypted_safe(
    protection: &Protection<'_>,
    bags: &[SafeBag],
) -> Result<ContentInfo, BundleError> {
    let plain = bags.to_vec().to_der().map_err(BundleError::Encode)?;
    let (alg, ciphertext) = pbes2_encrypt(protection, &plain)?;
    let data = EncryptedData {
        version: CmsVersion::V0,
        enc_content_info: EncryptedContentInfo {
            content_type: ID_DATA,
            content_enc_alg: alg,
            encrypted_content: Some(octets(&ciphertext)?),
        },
        unprotected_attrs: None,
    };
    Ok(ContentInfo {
        content_type: ID_ENCRYPTED_DATA,
        content: any(&data)?,
    })
}

fn plain_safe(bags: &[SafeBag]) -> Result<ContentInfo, BundleError> {
    let plain = bags.to_vec().to_der().map_err(BundleError::Encode)?;
    Ok(ContentInfo {
        content_type: ID_DATA,
        content: any(&octets(&plain)?)?,
    })
}

fn cert_bag(cert_der: &[u8], attrs: Option<Attributes>) -> Result<SafeBag, BundleError> {
    let bag = CertBag {
        cert_id: pkcs12::PKCS_12_X509_CERT_OID,
        cert_value: octets(cert_der)?,
    };
    Ok(SafeBag {
        bag_id: pkcs12::PKCS_12_CERT_BAG_OID,
        bag_value: bag.to_der().map_err(BundleError::Encode)?,
        bag_attributes: attrs,
    })
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, BundleError> {
    let mut values = SetOfVec::new();
    values.insert(value).map_err(BundleError::Encode)?;
    Ok(Attribute { oid, values })
}

fn attributes(list: Vec<Attribute>) -> Result<Attributes, BundleError> {
    let mut set = SetOfVec::new();
    for attr in list {
        set.insert(attr).map_err(BundleError::Encode)?;
    }
    Ok(set)
}

fn any<T: der::EncodeValue + Tagged>(value: &T) -> Result<Any, BundleError> {
    Any::encode_from(value).map_err(BundleError::Encode)
}

fn octets(bytes: &[u8]) -> Result<OctetString, BundleError> {
    OctetString::new(bytes).map_err(BundleError::Encode)
}

fn bmp(text: &str) -> Result<BmpString, BundleError> {
    BmpString::from_utf8(text).map_err(|_| BundleError::BadAlias {
        alias: text.to_string(),
        reason: "it has a character outside the Basic Multilingual Plane",
    })
}

fn iterations_i32(iterations: u32) -> Result<i32, BundleError> {
    i32::try_from(iterations).map_err(|_| BundleError::Iterations { iterations })
}

fn random<const N: usize>() -> Result<[u8; N], BundleError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(BundleError::Random)?;
    Ok(buf)
}

fn malformed(what: &str, e: der::Error) -> BundleError {
    BundleError::Malformed {
        what: format!("{what} ({e})"),
    }
}
