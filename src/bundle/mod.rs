//! Key bundles, truststores and `private.conf` snippets for JS7 Controllers and Agents.
//!
//! JS7 reads its TLS material through the JVM (section 3 of the JS7 notes): an instance's private
//! key and certificate chain sit in `config/private/https-keystore.p12`, the CA certificates it
//! trusts in `config/private/https-truststore.p12` (or a PEM file), and both are named in
//! `config/private/private.conf`. This module makes those files as bytes; the caller writes them
//! (with [`crate::output::write_new`], so nothing is overwritten by accident).
//!
//! - [`KeyBundle::to_pkcs12`]: a password-protected PKCS#12 (RFC 7292) with one private key, its
//!   certificate and the CA chain, under one alias (friendlyName) with a matching localKeyId on
//!   the key bag and the certificate bag. The JVM shows it as one `PrivateKeyEntry`.
//! - [`truststore_pkcs12`]: a password-protected PKCS#12 of trusted certificates only, one alias
//!   per CA, each bag marked with the JDK's trusted-key-usage attribute so that the JVM loads it as
//!   a `trustedCertEntry` (without that attribute the JDK ignores a lone certificate bag).
//!   [`truststore_pem`] is the PEM form (certificates concatenated).
//! - [`js7_config`]: the HOCON lines of `private.conf` that point JS7 at those files, with
//!   placeholders for the passwords, and the certificate's subject DN in the form JS7 compares.
//! - [`trusted_key_files`]: the files of a JS7 `trusted-x509-keys` directory, one PEM
//!   certificate per file, refusing two certificates with the same subject DN.
//! - [`read_pkcs12`]: reads back what this module writes (PBES2 + HMAC-SHA256 MAC), to inspect a
//!   bundle or check a password.
//!
//! Protection, chosen so that both OpenSSL 3 (default provider, no legacy algorithms) and the
//! JDK 17 PKCS12 KeyStore read the files: the shrouded key bag and the certificate safe are
//! encrypted with PBES2 (RFC 8018: PBKDF2-HMAC-SHA256 + AES-256-CBC); the whole is authenticated
//! with an HMAC-SHA256 whose key comes from the RFC 7292 Appendix B KDF (the JDK reads SHA-256 MACs
//! since JDK 12). Salts and IVs come from the operating system's RNG; iteration counts are at
//! least [`MIN_ITERATIONS`]. One password protects both the key and the store, so JS7's
//! `key-password` and `store-password` are the same.

mod dn;
mod instance_key;
mod js7;
mod p12;
mod trusted;
mod usecases;

#[cfg(test)]
mod tests;

pub use dn::subject_dn_rfc2253;
pub use instance_key::InstanceKey;
pub use js7::{
    Js7Role, KEYSTORE_PASSWORD_PLACEHOLDER, TRUSTSTORE_PASSWORD_PLACEHOLDER, js7_config,
};
pub use p12::{Pkcs12Contents, Pkcs12Options, StoredCert, StoredKey, read_pkcs12};
pub use trusted::{TrustedKeyFile, trusted_key_files};
pub use usecases::{
    BundleUseError, Js7Config, Js7ConfigText, TrustedKeys, TrustedKeysWritten, Truststore,
    private_conf, trusted_keys, truststore,
};

use der::{Decode, Encode};
use secrecy::SecretString;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::encoding::pem_encode;

/// Fewest PBKDF2 / MAC iterations accepted (the JDK's own default for PKCS#12 files).
pub const MIN_ITERATIONS: u32 = 10_000;
/// Iterations used unless the caller chooses otherwise.
pub const DEFAULT_ITERATIONS: u32 = 100_000;
/// Most iterations accepted, when writing and when reading: more only burns time, and a hostile
/// file could otherwise keep a reader busy for hours.
pub const MAX_ITERATIONS: u32 = 5_000_000;

/// Errors of the bundle module. Each message says what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The password is empty.
    #[error(
        "the PKCS#12 password is empty: JS7 needs a store password; choose a non-empty password"
    )]
    EmptyPassword,
    /// The password has a character that PKCS#12's MAC key derivation cannot encode.
    #[error(
        "the PKCS#12 password contains a character outside the Basic Multilingual Plane (such as an emoji), which the PKCS#12 MAC cannot encode: choose another password"
    )]
    PasswordNotBmp,
    /// The iteration count is outside the accepted range.
    #[error(
        "{iterations} PBKDF2 iterations is outside the accepted range {MIN_ITERATIONS}..={MAX_ITERATIONS}: choose a count in that range"
    )]
    Iterations {
        /// The count asked for.
        iterations: u32,
    },
    /// An alias is empty, too long or has control characters.
    #[error(
        "alias {alias:?} is not usable: {reason}; choose an alias of 1 to 64 printable characters"
    )]
    BadAlias {
        /// The alias given.
        alias: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two entries have the same alias (the JVM compares aliases without case).
    #[error(
        "alias {alias:?} is used twice (the JVM treats aliases case-insensitively): give each certificate its own alias"
    )]
    DuplicateAlias {
        /// The alias given twice.
        alias: String,
    },
    /// A certificate does not parse as DER X.509.
    #[error(
        "the {what} is not a DER X.509 certificate ({source}): pass the certificate itself (convert PEM with `openssl x509 -outform DER`)"
    )]
    Certificate {
        /// Which certificate, such as "leaf certificate" or "chain certificate 2".
        what: String,
        /// The decoding error.
        #[source]
        source: der::Error,
    },
    /// Two certificates for a trusted-x509-keys directory have the same subject DN.
    #[error(
        "{first} and {second} would both hold a certificate for {subject}: a JS7 Controller or Agent keeps only one certificate per subject DN in trusted-x509-keys (the one valid longest); trust one of them"
    )]
    TrustedDuplicateDn {
        /// The shared subject DN.
        subject: String,
        /// The first file.
        first: String,
        /// The second file.
        second: String,
    },
    /// Two names give the same file name in a trusted-x509-keys directory.
    #[error(
        "two of the certificates would be written to the same file {file_name}: their names differ only in characters that are not kept in file names; write them in two runs into different directories"
    )]
    TrustedFileNameClash {
        /// The file name.
        file_name: String,
    },
    /// A truststore with no certificate was asked for.
    #[error("a truststore needs at least one CA certificate: name the CAs to trust")]
    NoCertificates,
    /// The private key does not parse or is of an unsupported type.
    #[error(
        "the private key cannot be used: {reason}; pass an EC P-256 or P-384 key as PKCS#8 DER"
    )]
    PrivateKey {
        /// What is wrong with the key.
        reason: String,
    },
    /// The private key is not the one the certificate was issued for.
    #[error(
        "the private key does not belong to the certificate (the certificate's public key {cert_key} differs from the key's {key_key}): pass the certificate issued for this key"
    )]
    KeyMismatch {
        /// SHA-256 fingerprint of the certificate's public key.
        cert_key: String,
        /// SHA-256 fingerprint of the private key's public key.
        key_key: String,
    },
    /// The operating system's random number generator failed.
    #[error(
        "the operating system's random number generator failed ({0}): check /dev/urandom or getrandom(2) on this machine"
    )]
    Random(getrandom::Error),
    /// DER encoding failed (an internal error: the inputs were checked before).
    #[error(
        "encoding the PKCS#12 structure failed ({0}): this is a bug in hsmsign, please report it"
    )]
    Encode(#[source] der::Error),
    /// The MAC does not verify: the password is wrong or the file was altered.
    #[error(
        "the PKCS#12 password is wrong, or the file was altered (its MAC does not verify): check the password and the file"
    )]
    WrongPassword,
    /// The file is not a PKCS#12 structure this module understands.
    #[error("the PKCS#12 file is malformed at {what}: check that it is a complete .p12 file")]
    Malformed {
        /// Where the structure broke.
        what: String,
    },
    /// The file uses an algorithm this module does not read.
    #[error(
        "the PKCS#12 file uses {what}, which hsmsign does not read (it reads PBES2 with PBKDF2-HMAC-SHA256, AES-CBC and an HMAC-SHA256 MAC): inspect it with `openssl pkcs12 -info`"
    )]
    Unsupported {
        /// The unsupported algorithm or structure.
        what: String,
    },
}

/// The private key that goes into a [`KeyBundle`].
pub enum BundleKey<'a> {
    /// An EC P-256 key made in memory.
    P256(&'a p256::SecretKey),
    /// A private key as PKCS#8 `PrivateKeyInfo` DER (RFC 5208/5958); EC P-256 and P-384 are
    /// accepted.
    Pkcs8Der(&'a Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for BundleKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BundleKey([secret key elided])")
    }
}

/// One instance's key, its certificate and the CA chain, to be written as a PKCS#12 keystore
/// (JS7's `https-keystore.p12`).
#[derive(Debug)]
pub struct KeyBundle<'a> {
    /// The instance's private key.
    pub key: BundleKey<'a>,
    /// The instance's certificate (DER); its public key must match `key`.
    pub cert_der: &'a [u8],
    /// The CA certificates (DER), issuer of `cert_der` first, root last (the root may be left out).
    pub chain_der: &'a [Vec<u8>],
    /// The entry's alias, such as "https" or the instance name (JS7's `keystore.alias`).
    pub alias: &'a str,
}

impl KeyBundle<'_> {
    /// Encodes the bundle as a PKCS#12 file protected by `password`: one `PrivateKeyEntry` under
    /// [`KeyBundle::alias`] whose chain is the certificate followed by the CA certificates.
    ///
    /// Checks before encrypting anything: the password is non-empty, the alias is usable, every
    /// certificate parses, and the key is the one the certificate was issued for.
    pub fn to_pkcs12(
        &self,
        password: &SecretString,
        options: &Pkcs12Options,
    ) -> Result<Vec<u8>, BundleError> {
        let pkcs8 = key_pkcs8(&self.key)?;
        check_alias(self.alias)?;
        let cert = parse_cert(self.cert_der, "certificate".to_string())?;
        check_key_matches(&pkcs8, &cert)?;
        for (i, der) in self.chain_der.iter().enumerate() {
            parse_cert(der, format!("chain certificate {}", i + 1))?;
        }
        let chain: Vec<&[u8]> = self.chain_der.iter().map(Vec::as_slice).collect();
        p12::write_key_bundle(&pkcs8, self.cert_der, &chain, self.alias, password, options)
    }
}

/// One CA certificate of a truststore and the alias it is listed under.
#[derive(Debug, Clone, Copy)]
pub struct TrustedCert<'a> {
    /// The alias, such as the CA's name ([`default_alias`] makes one from the certificate).
    pub alias: &'a str,
    /// The certificate (DER).
    pub cert_der: &'a [u8],
}

/// Encodes CA certificates as a password-protected PKCS#12 truststore (JS7's
/// `https-truststore.p12`): one `trustedCertEntry` per certificate, no key.
pub fn truststore_pkcs12(
    certs: &[TrustedCert<'_>],
    password: &SecretString,
    options: &Pkcs12Options,
) -> Result<Vec<u8>, BundleError> {
    if certs.is_empty() {
        return Err(BundleError::NoCertificates);
    }
    let mut seen: Vec<String> = Vec::new();
    for cert in certs {
        check_alias(cert.alias)?;
        let folded = cert.alias.to_lowercase();
        if seen.contains(&folded) {
            return Err(BundleError::DuplicateAlias {
                alias: cert.alias.to_string(),
            });
        }
        seen.push(folded);
        parse_cert(
            cert.cert_der,
            format!("trusted certificate {:?}", cert.alias),
        )?;
    }
    p12::write_truststore(certs, password, options)
}

/// The PEM form of a CA bundle: the certificates concatenated, in the order given.
pub fn truststore_pem(certs_der: &[&[u8]]) -> Result<String, BundleError> {
    if certs_der.is_empty() {
        return Err(BundleError::NoCertificates);
    }
    let mut pem = String::new();
    for (i, der) in certs_der.iter().enumerate() {
        parse_cert(der, format!("certificate {}", i + 1))?;
        pem.push_str(&pem_encode("CERTIFICATE", der));
    }
    Ok(pem)
}

/// An alias for a CA certificate: its common name (or, without one, its whole subject DN) in
/// lower case, with every character other than `a-z 0-9 . _ -` replaced by `-`.
pub fn default_alias(cert_der: &[u8]) -> Result<String, BundleError> {
    let cert = parse_cert(cert_der, "certificate".to_string())?;
    let subject = &cert.tbs_certificate().subject();
    let base = dn::common_name(subject).unwrap_or_else(|| dn::name_rfc2253(subject));
    let mut alias: String = base
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    alias.truncate(64);
    if alias.trim_matches('-').is_empty() {
        alias = "ca".to_string();
    }
    Ok(alias)
}

fn parse_cert(der: &[u8], what: String) -> Result<Certificate, BundleError> {
    Certificate::from_der(der).map_err(|source| BundleError::Certificate { what, source })
}

/// The alias of the key entry in every key bundle hsmsign writes, and the alias every
/// `private.conf` snippet names by default (`js7.web.https.keystore.alias`). Lower case: the JVM
/// reads PKCS#12 aliases in lower case, and JS7's key manager looks the configured alias up as
/// written, so newer JS7 releases refuse a keystore whose configured alias is not in it
/// ("Unknown alias").
pub const KEY_BUNDLE_ALIAS: &str = "https";

/// An alias a JS7 instance can find in a PKCS#12 keystore: usable, and lower case.
pub fn check_key_alias(alias: &str) -> Result<(), BundleError> {
    check_alias(alias)?;
    if alias.chars().any(char::is_uppercase) {
        return Err(BundleError::BadAlias {
            alias: alias.to_string(),
            reason: "it has upper-case letters; the JVM lists PKCS#12 aliases in lower case and JS7 looks the configured alias up as written (\"Unknown alias\"): use it in lower case",
        });
    }
    Ok(())
}

fn check_alias(alias: &str) -> Result<(), BundleError> {
    let reason = if alias.is_empty() {
        Some("it is empty")
    } else if alias.chars().count() > 64 {
        Some("it is longer than 64 characters")
    } else if alias.chars().any(char::is_control) {
        Some("it contains a control character")
    } else if alias.trim() != alias {
        Some("it begins or ends with white space")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(BundleError::BadAlias {
            alias: alias.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The PKCS#8 DER of the bundle key, checked to parse as a supported EC key.
fn key_pkcs8(key: &BundleKey<'_>) -> Result<Zeroizing<Vec<u8>>, BundleError> {
    use p256::pkcs8::EncodePrivateKey;
    match key {
        BundleKey::P256(secret) => {
            let doc = secret.to_pkcs8_der().map_err(|e| BundleError::PrivateKey {
                reason: format!("PKCS#8 encoding failed ({e})"),
            })?;
            Ok(Zeroizing::new(doc.as_bytes().to_vec()))
        }
        BundleKey::Pkcs8Der(der) => {
            key_spki(der)?;
            Ok(Zeroizing::new(der.to_vec()))
        }
    }
}

/// The SubjectPublicKeyInfo DER of a PKCS#8 EC private key.
fn key_spki(pkcs8: &[u8]) -> Result<Vec<u8>, BundleError> {
    use p256::pkcs8::{DecodePrivateKey, EncodePublicKey};
    let spki = if let Ok(k) = p256::SecretKey::from_pkcs8_der(pkcs8) {
        k.public_key().to_public_key_der()
    } else if let Ok(k) = p384::SecretKey::from_pkcs8_der(pkcs8) {
        k.public_key().to_public_key_der()
    } else {
        return Err(BundleError::PrivateKey {
            reason: "it is not an EC P-256 or P-384 private key in PKCS#8 DER".to_string(),
        });
    };
    spki.map(|doc| doc.as_bytes().to_vec())
        .map_err(|e| BundleError::PrivateKey {
            reason: format!("its public key cannot be encoded ({e})"),
        })
}

fn check_key_matches(pkcs8: &[u8], cert: &Certificate) -> Result<(), BundleError> {
    use crate::signer::PublicKey;
    let key_spki = key_spki(pkcs8)?;
    let cert_spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(BundleError::Encode)?;
    let fingerprint = |spki: &[u8]| {
        PublicKey::from_spki_der(spki)
            .map(|k| k.fingerprint_hex())
            .unwrap_or_else(|_| "(unreadable)".to_string())
    };
    let same = match (
        PublicKey::from_spki_der(&key_spki),
        PublicKey::from_spki_der(&cert_spki),
    ) {
        (Ok(a), Ok(b)) => a.raw() == b.raw() && a.algorithm() == b.algorithm(),
        _ => key_spki == cert_spki,
    };
    if same {
        Ok(())
    } else {
        Err(BundleError::KeyMismatch {
            cert_key: fingerprint(&cert_spki),
            key_key: fingerprint(&key_spki),
        })
    }
}
