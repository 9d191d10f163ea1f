//! Certificate profiles: the closed set of certificate kinds hsmsign issues, and the one place
//! ([`Profile::extensions`]) that decides their extensions, criticality and validity.
//!
//! | profile        | BasicConstraints     | KeyUsage (critical)                         | ExtendedKeyUsage       | SAN      |
//! |----------------|----------------------|---------------------------------------------|------------------------|----------|
//! | root           | CA:TRUE (+pathlen)   | keyCertSign, cRLSign                        | -                      | refused  |
//! | intermediate   | CA:TRUE (+pathlen)   | keyCertSign, cRLSign                        | -                      | refused  |
//! | server         | CA:FALSE             | digitalSignature (+keyEncipherment for RSA) | serverAuth             | required |
//! | client         | CA:FALSE             | digitalSignature                            | clientAuth             | optional |
//! | server-client  | CA:FALSE             | digitalSignature (+keyEncipherment for RSA) | serverAuth, clientAuth | required |
//! | signing        | CA:FALSE             | digitalSignature, nonRepudiation            | codeSigning            | optional |
//!
//! BasicConstraints and KeyUsage are critical; every certificate carries a SubjectKeyIdentifier
//! and an AuthorityKeyIdentifier (a root's names its own key). Extensions appear in the order
//! BasicConstraints, KeyUsage, ExtendedKeyUsage, SubjectAltName, SubjectKeyIdentifier,
//! AuthorityKeyIdentifier.

use std::fmt;

use der::Encode;
use der::asn1::{ObjectIdentifier, OctetString};
use der::oid::AssociatedOid;
use time::OffsetDateTime;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};

use super::limits::latest_x509_time;
use super::san::SanEntry;
use crate::signer::{KeyAlgorithm, PublicKey};

/// The extension OIDs, from x509-cert's types (RFC 5280 4.2.1).
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = BasicConstraints::OID;
const OID_KEY_USAGE: ObjectIdentifier = KeyUsage::OID;
const OID_EXT_KEY_USAGE: ObjectIdentifier = ExtendedKeyUsage::OID;
const OID_SUBJECT_ALT_NAME: ObjectIdentifier = SubjectAltName::OID;
const OID_SUBJECT_KEY_ID: ObjectIdentifier = SubjectKeyIdentifier::OID;
const OID_AUTHORITY_KEY_ID: ObjectIdentifier = AuthorityKeyIdentifier::OID;

/// Errors in applying a profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// An unknown profile name.
    #[error(
        "unknown certificate profile `{0}`: use one of root, intermediate, server, client, server-client, signing"
    )]
    Unknown(String),
    /// A profile that needs subject alternative names got none.
    #[error(
        "a {profile} certificate needs at least one subject alternative name: \
         add e.g. --san DNS:host.example.com,IP:192.0.2.1"
    )]
    SanRequired {
        /// The profile.
        profile: Profile,
    },
    /// Subject alternative names were given for a CA certificate.
    #[error("a {profile} (CA) certificate carries no subject alternative names: leave --san out")]
    SanNotAllowed {
        /// The profile.
        profile: Profile,
    },
    /// A path length was given for an end-entity profile.
    #[error(
        "a path length constraint applies only to CA certificates, not to {profile}: leave it out"
    )]
    PathLenNotAllowed {
        /// The profile.
        profile: Profile,
    },
}

/// The certificate kinds hsmsign issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// A self-signed root CA.
    Root,
    /// An intermediate CA signed by a root or another intermediate.
    Intermediate,
    /// A TLS server (JS7 Controller / Agent / JOC Cockpit HTTPS endpoint).
    Server,
    /// A TLS client (mutual TLS between JS7 instances, operators).
    Client,
    /// A JS7 instance that is both TLS server and client.
    ServerClient,
    /// An operator key that signs JS7 deployment archives.
    Signing,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Self; 6] = [
        Self::Root,
        Self::Intermediate,
        Self::Server,
        Self::Client,
        Self::ServerClient,
        Self::Signing,
    ];

    /// The command-line spelling: `root`, `intermediate`, `server`, `client`, `server-client`,
    /// `signing`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Intermediate => "intermediate",
            Self::Server => "server",
            Self::Client => "client",
            Self::ServerClient => "server-client",
            Self::Signing => "signing",
        }
    }

    /// Parse the command-line spelling (case-insensitive; `_` for `-` accepted).
    pub fn parse(s: &str) -> Result<Self, ProfileError> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|p| p.name() == norm)
            .ok_or_else(|| ProfileError::Unknown(s.to_string()))
    }

    /// True for the CA profiles (root, intermediate).
    pub fn is_ca(self) -> bool {
        matches!(self, Self::Root | Self::Intermediate)
    }

    /// True if the profile needs at least one subject alternative name.
    pub fn requires_san(self) -> bool {
        matches!(self, Self::Server | Self::ServerClient)
    }

    /// Default validity in years: root 20, intermediate 10, TLS instances 2, signing 1.
    pub fn default_validity_years(self) -> i32 {
        match self {
            Self::Root => 20,
            Self::Intermediate => 10,
            Self::Server | Self::Client | Self::ServerClient => 2,
            Self::Signing => 1,
        }
    }

    /// Longest validity allowed in years: root 25, intermediate 20, TLS instances 10,
    /// signing 5.
    pub fn max_validity_years(self) -> i32 {
        match self {
            Self::Root => 25,
            Self::Intermediate => 20,
            Self::Server | Self::Client | Self::ServerClient => 10,
            Self::Signing => 5,
        }
    }

    /// `not_before` plus the default validity.
    pub fn default_not_after(self, not_before: OffsetDateTime) -> OffsetDateTime {
        add_years(not_before, self.default_validity_years())
    }

    /// `not_before` plus the longest validity allowed.
    pub fn max_not_after(self, not_before: OffsetDateTime) -> OffsetDateTime {
        add_years(not_before, self.max_validity_years())
    }

    /// The extensions of a certificate of this profile, in the order they are written.
    ///
    /// `subject_key` is the certified key (its kind decides keyEncipherment, its
    /// [`PublicKey::key_identifier`] the SubjectKeyIdentifier); `authority_key_id` is the
    /// issuer's key identifier (for a root: its own).
    pub fn extensions(
        self,
        subject_key: &PublicKey,
        authority_key_id: &[u8],
        sans: &[SanEntry],
        path_len: Option<u8>,
    ) -> Result<Vec<PlannedExtension>, ProfileError> {
        use KeyUsageBit::*;
        if self.is_ca() && !sans.is_empty() {
            return Err(ProfileError::SanNotAllowed { profile: self });
        }
        if self.requires_san() && sans.is_empty() {
            return Err(ProfileError::SanRequired { profile: self });
        }
        if !self.is_ca() && path_len.is_some() {
            return Err(ProfileError::PathLenNotAllowed { profile: self });
        }
        let rsa = matches!(subject_key.algorithm(), KeyAlgorithm::Rsa(_));
        let tls_server_usage = if rsa {
            vec![DigitalSignature, KeyEncipherment]
        } else {
            vec![DigitalSignature]
        };
        let (key_usage, ext_key_usage) = match self {
            Self::Root | Self::Intermediate => (vec![KeyCertSign, CrlSign], vec![]),
            Self::Server => (tls_server_usage, vec![ExtKeyUsage::ServerAuth]),
            Self::Client => (vec![DigitalSignature], vec![ExtKeyUsage::ClientAuth]),
            Self::ServerClient => (
                tls_server_usage,
                vec![ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth],
            ),
            Self::Signing => (
                vec![DigitalSignature, NonRepudiation],
                vec![ExtKeyUsage::CodeSigning],
            ),
        };

        let mut out = vec![
            PlannedExtension {
                critical: true,
                value: ExtensionValue::BasicConstraints {
                    ca: self.is_ca(),
                    path_len: if self.is_ca() { path_len } else { None },
                },
            },
            PlannedExtension {
                critical: true,
                value: ExtensionValue::KeyUsage(key_usage),
            },
        ];
        if !ext_key_usage.is_empty() {
            out.push(PlannedExtension {
                critical: false,
                value: ExtensionValue::ExtendedKeyUsage(ext_key_usage),
            });
        }
        if !sans.is_empty() {
            // The subject name is never empty here (a CN is required), so the SAN is not
            // critical (RFC 5280 4.2.1.6).
            out.push(PlannedExtension {
                critical: false,
                value: ExtensionValue::SubjectAltName(sans.to_vec()),
            });
        }
        out.push(PlannedExtension {
            critical: false,
            value: ExtensionValue::SubjectKeyIdentifier(subject_key.key_identifier()),
        });
        out.push(PlannedExtension {
            critical: false,
            value: ExtensionValue::AuthorityKeyIdentifier(authority_key_id.to_vec()),
        });
        Ok(out)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Profile {
    type Err = ProfileError;
    fn from_str(s: &str) -> Result<Self, ProfileError> {
        Self::parse(s)
    }
}

/// `t` plus `years` calendar years; 29 February becomes 28 February in a common year. Never
/// later than [`latest_x509_time`] (9999-12-31 23:59:59 UTC), whatever `t` and `years` are.
pub fn add_years(t: OffsetDateTime, years: i32) -> OffsetDateTime {
    let latest = latest_x509_time();
    let year = t.year().saturating_add(years);
    if year > latest.year() {
        return latest;
    }
    t.replace_year(year)
        .or_else(|_| t.replace_day(28).and_then(|d| d.replace_year(year)))
        .map_or(latest, |end| end.min(latest))
}

/// A KeyUsage bit hsmsign sets (RFC 5280 4.2.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyUsageBit {
    /// digitalSignature (0).
    DigitalSignature,
    /// nonRepudiation / contentCommitment (1).
    NonRepudiation,
    /// keyEncipherment (2).
    KeyEncipherment,
    /// keyCertSign (5).
    KeyCertSign,
    /// cRLSign (6).
    CrlSign,
}

impl KeyUsageBit {
    fn flag(self) -> KeyUsages {
        match self {
            Self::DigitalSignature => KeyUsages::DigitalSignature,
            Self::NonRepudiation => KeyUsages::NonRepudiation,
            Self::KeyEncipherment => KeyUsages::KeyEncipherment,
            Self::KeyCertSign => KeyUsages::KeyCertSign,
            Self::CrlSign => KeyUsages::CRLSign,
        }
    }

    const ALL: [Self; 5] = [
        Self::DigitalSignature,
        Self::NonRepudiation,
        Self::KeyEncipherment,
        Self::KeyCertSign,
        Self::CrlSign,
    ];
}

/// An extended key usage hsmsign sets (RFC 5280 4.2.1.12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExtKeyUsage {
    /// id-kp-serverAuth.
    ServerAuth,
    /// id-kp-clientAuth.
    ClientAuth,
    /// id-kp-codeSigning.
    CodeSigning,
}

impl ExtKeyUsage {
    fn oid(self) -> &'static str {
        match self {
            Self::ServerAuth => "1.3.6.1.5.5.7.3.1",
            Self::ClientAuth => "1.3.6.1.5.5.7.3.2",
            Self::CodeSigning => "1.3.6.1.5.5.7.3.3",
        }
    }

    fn from_oid(oid: &str) -> Option<Self> {
        [Self::ServerAuth, Self::ClientAuth, Self::CodeSigning]
            .into_iter()
            .find(|e| e.oid() == oid)
    }
}

/// The value of one extension as a profile decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtensionValue {
    /// BasicConstraints.
    BasicConstraints {
        /// cA.
        ca: bool,
        /// pathLenConstraint.
        path_len: Option<u8>,
    },
    /// KeyUsage bits, in [`KeyUsageBit`] order.
    KeyUsage(Vec<KeyUsageBit>),
    /// ExtendedKeyUsage purposes, in order.
    ExtendedKeyUsage(Vec<ExtKeyUsage>),
    /// SubjectAltName entries, in order.
    SubjectAltName(Vec<SanEntry>),
    /// SubjectKeyIdentifier.
    SubjectKeyIdentifier(Vec<u8>),
    /// AuthorityKeyIdentifier (keyIdentifier only).
    AuthorityKeyIdentifier(Vec<u8>),
}

/// One extension with its criticality.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedExtension {
    /// The critical flag.
    pub critical: bool,
    /// The value.
    pub value: ExtensionValue,
}

fn oid(s: &str) -> Result<ObjectIdentifier, der::Error> {
    ObjectIdentifier::new(s).map_err(|_| der::ErrorKind::OidMalformed.into())
}

impl PlannedExtension {
    /// Encode as an X.509 `Extension`.
    pub(crate) fn encode(&self) -> Result<Extension, der::Error> {
        let (id, der) = match &self.value {
            ExtensionValue::BasicConstraints { ca, path_len } => (
                OID_BASIC_CONSTRAINTS,
                BasicConstraints {
                    ca: *ca,
                    path_len_constraint: *path_len,
                }
                .to_der()?,
            ),
            ExtensionValue::KeyUsage(bits) => {
                let mut flags = der::flagset::FlagSet::<KeyUsages>::default();
                for b in bits {
                    flags |= b.flag();
                }
                (OID_KEY_USAGE, KeyUsage(flags).to_der()?)
            }
            ExtensionValue::ExtendedKeyUsage(ekus) => (
                OID_EXT_KEY_USAGE,
                ExtendedKeyUsage(
                    ekus.iter()
                        .map(|e| oid(e.oid()))
                        .collect::<Result<_, _>>()?,
                )
                .to_der()?,
            ),
            ExtensionValue::SubjectAltName(sans) => (
                OID_SUBJECT_ALT_NAME,
                SubjectAltName(
                    sans.iter()
                        .map(SanEntry::to_general_name)
                        .collect::<Result<Vec<GeneralName>, _>>()?,
                )
                .to_der()?,
            ),
            ExtensionValue::SubjectKeyIdentifier(id) => (
                OID_SUBJECT_KEY_ID,
                SubjectKeyIdentifier(OctetString::new(id.clone())?).to_der()?,
            ),
            ExtensionValue::AuthorityKeyIdentifier(id) => (
                OID_AUTHORITY_KEY_ID,
                AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(id.clone())?),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                }
                .to_der()?,
            ),
        };
        Ok(Extension {
            extn_id: id,
            critical: self.critical,
            extn_value: OctetString::new(der)?,
        })
    }

    /// Decode an X.509 `Extension` back into the form a profile plans, for the check after
    /// signing. Extensions no profile writes give an error naming their OID.
    pub(crate) fn decode(ext: &Extension) -> Result<Self, String> {
        use der::Decode;
        let bytes = ext.extn_value.as_bytes();
        let e = |what: &str, err: der::Error| format!("{what}: {err}");
        let value = match ext.extn_id {
            OID_BASIC_CONSTRAINTS => {
                let bc = BasicConstraints::from_der(bytes).map_err(|x| e("BasicConstraints", x))?;
                ExtensionValue::BasicConstraints {
                    ca: bc.ca,
                    path_len: bc.path_len_constraint,
                }
            }
            OID_KEY_USAGE => {
                let ku = KeyUsage::from_der(bytes).map_err(|x| e("KeyUsage", x))?;
                let mut bits: Vec<KeyUsageBit> = KeyUsageBit::ALL
                    .into_iter()
                    .filter(|b| ku.0.contains(b.flag()))
                    .collect();
                bits.sort();
                let expected_bits = bits
                    .iter()
                    .fold(der::flagset::FlagSet::<KeyUsages>::default(), |acc, b| {
                        acc | b.flag()
                    });
                if expected_bits != ku.0 {
                    return Err(format!("KeyUsage has bits no profile sets: {:?}", ku.0));
                }
                ExtensionValue::KeyUsage(bits)
            }
            OID_EXT_KEY_USAGE => {
                let eku =
                    ExtendedKeyUsage::from_der(bytes).map_err(|x| e("ExtendedKeyUsage", x))?;
                ExtensionValue::ExtendedKeyUsage(
                    eku.0
                        .iter()
                        .map(|o| {
                            ExtKeyUsage::from_oid(&o.to_string())
                                .ok_or_else(|| format!("unexpected extended key usage {o}"))
                        })
                        .collect::<Result<_, _>>()?,
                )
            }
            OID_SUBJECT_ALT_NAME => {
                let san = SubjectAltName::from_der(bytes).map_err(|x| e("SubjectAltName", x))?;
                ExtensionValue::SubjectAltName(
                    san.0
                        .iter()
                        .map(|g| SanEntry::from_general_name(g).map_err(|x| x.to_string()))
                        .collect::<Result<_, _>>()?,
                )
            }
            OID_SUBJECT_KEY_ID => {
                let ski = SubjectKeyIdentifier::from_der(bytes)
                    .map_err(|x| e("SubjectKeyIdentifier", x))?;
                ExtensionValue::SubjectKeyIdentifier(ski.0.as_bytes().to_vec())
            }
            OID_AUTHORITY_KEY_ID => {
                let aki = AuthorityKeyIdentifier::from_der(bytes)
                    .map_err(|x| e("AuthorityKeyIdentifier", x))?;
                if aki.authority_cert_issuer.is_some() || aki.authority_cert_serial_number.is_some()
                {
                    return Err("AuthorityKeyIdentifier carries issuer and serial".into());
                }
                ExtensionValue::AuthorityKeyIdentifier(
                    aki.key_identifier
                        .map(|k| k.as_bytes().to_vec())
                        .ok_or("AuthorityKeyIdentifier has no keyIdentifier")?,
                )
            }
            other => return Err(format!("unexpected extension {other}")),
        };
        Ok(Self {
            critical: ext.critical,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::SigningKey;
    use crate::signer::soft::SoftKey;

    #[test]
    fn names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(Profile::parse(p.name()), Ok(p));
        }
        assert_eq!(Profile::parse("Server_Client"), Ok(Profile::ServerClient));
        assert!(Profile::parse("ca").is_err());
    }

    #[test]
    fn validity_years_and_leap_days() {
        let t = OffsetDateTime::from_unix_timestamp(1_709_208_000).unwrap(); // 2024-02-29 12:00
        assert_eq!(t.day(), 29);
        let root = Profile::Root.default_not_after(t);
        assert_eq!(
            (root.year(), u8::from(root.month()), root.day()),
            (2044, 2, 29)
        );
        let signing = Profile::Signing.default_not_after(t);
        assert_eq!(
            (signing.year(), u8::from(signing.month()), signing.day()),
            (2025, 2, 28)
        );
        assert_eq!(Profile::Root.max_not_after(t).year(), 2049);
        // Past year 9999 the end is the last second X.509 can carry, never `t` itself.
        let late = OffsetDateTime::from_unix_timestamp(253_370_764_800).unwrap(); // 9999-01-01
        assert_eq!(Profile::Root.max_not_after(late), latest_x509_time());
        assert_eq!(add_years(t, i32::MAX), latest_x509_time());
        for p in Profile::ALL {
            assert!(p.default_validity_years() <= p.max_validity_years());
        }
    }

    #[test]
    fn end_entity_rules() {
        let key = SoftKey::p256(1);
        let pk = key.public_key();
        let san = [SanEntry::Dns("a.example.com".into())];
        assert_eq!(
            Profile::Server.extensions(pk, b"aki", &[], None),
            Err(ProfileError::SanRequired {
                profile: Profile::Server
            })
        );
        assert_eq!(
            Profile::Root.extensions(pk, b"aki", &san, None),
            Err(ProfileError::SanNotAllowed {
                profile: Profile::Root
            })
        );
        assert_eq!(
            Profile::Client.extensions(pk, b"aki", &[], Some(0)),
            Err(ProfileError::PathLenNotAllowed {
                profile: Profile::Client
            })
        );
        let server = Profile::Server.extensions(pk, b"aki", &san, None).unwrap();
        assert_eq!(
            server[1].value,
            ExtensionValue::KeyUsage(vec![KeyUsageBit::DigitalSignature])
        );
    }

    #[test]
    fn every_planned_extension_decodes_to_itself() {
        let key = SoftKey::p384(2);
        let sans = [
            SanEntry::Dns("a.example.com".into()),
            SanEntry::Ip("192.0.2.1".parse().unwrap()),
        ];
        for p in Profile::ALL {
            let s: &[SanEntry] = if p.is_ca() { &[] } else { &sans };
            let path = if p.is_ca() { Some(1) } else { None };
            for planned in p.extensions(key.public_key(), &[7; 20], s, path).unwrap() {
                let ext = planned.encode().unwrap();
                assert_eq!(PlannedExtension::decode(&ext).unwrap(), planned, "{p}");
            }
        }
    }
}
