//! The kinds of key, hash and signature algorithm hsmsign knows, and their names (Java, OIDs,
//! the command line).

use std::fmt;

use sha2::Digest;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
