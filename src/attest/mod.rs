//! YubiKey PIV attestation, verified in software.
//!
//! A YubiKey proves that a PIV key was generated on the device (not imported) with a per-slot
//! *attestation certificate* (`yubico-piv-tool -a attest -s 9c`). It is signed by the device's
//! slot-f9 key, whose certificate (`yubico-piv-tool -a read-certificate -s f9`) is signed by
//! Yubico:
//!
//! ```text
//! firmware < 5.7.4:  Yubico PIV Root CA Serial 263751 -> f9 -> slot attestation
//! firmware >= 5.7.4: Yubico Attestation Root 1 -> Intermediate A 1|B 1
//!                    -> PIV Attestation A 1|B 1 -> f9 -> slot attestation
//! ```
//!
//! [`verify_attestation`] builds that chain up to one of the CA certificates compiled into
//! hsmsign ([`BUILT_IN`]), checks every signature with the issuer's public key (names alone prove
//! nothing), the issuer/subject name chaining, the CA flags and path lengths of the issuers, and
//! the validity periods; then it decodes what the YubiKey states about the key (firmware, serial,
//! PIN and touch policy, form factor, slot) and compares the attested key with the one expected.
//!
//! Deliberate choices, matching `openssl verify` in its default (non `-x509_strict`) mode, which
//! accepts every genuine chain:
//! - Issuers must have basicConstraints `cA` TRUE (critical or not); a keyUsage, where present,
//!   must allow keyCertSign. YubiKey f9 certificates carry no keyUsage, SKI or AKI, and the legacy
//!   root's basicConstraints is not critical: all accepted, as OpenSSL does.
//! - Validity is checked on every certificate including the roots. The notAfter values in the
//!   chains (2052-04-17 as GeneralizedTime, and 9999-12-31 23:59:59 for the new PKI, RFC 5280's
//!   "no well-defined expiration") are compared like any other date.
//! - A critical extension other than basicConstraints, keyUsage, subjectKeyIdentifier and
//!   authorityKeyIdentifier makes a certificate unacceptable (RFC 5280 4.2).
//! - The signed TBS bytes are taken from the input as they are, never re-encoded.

mod roots;
mod yubico;

pub use roots::{AttestationRoot, BUILT_IN, BuiltInCert, BuiltInRole};
pub use yubico::{FirmwareVersion, FormFactor, PinPolicy, PivSlot, TouchPolicy};

use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode, Reader};
use sha2::Digest;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};

use crate::encoding::hex;
use crate::signer::{PublicKey, SignatureAlgorithm};

/// Extensions a CA certificate here may mark critical: the ones this module processes or that
/// carry no constraint.
const HANDLED_CRITICAL: [&str; 4] = [
    "2.5.29.19", // basicConstraints
    "2.5.29.15", // keyUsage
    "2.5.29.14", // subjectKeyIdentifier
    "2.5.29.35", // authorityKeyIdentifier
];

/// Errors of attestation verification. Each message says what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// An input is not a PEM or DER X.509 certificate, or a certificate cannot be decoded.
    #[error(
        "{what} is not a readable X.509 certificate ({reason}); give the PEM or DER file that \
         `yubico-piv-tool -a attest -s SLOT` (attestation) or `yubico-piv-tool -a read-certificate -s f9` \
         (device certificate) wrote"
    )]
    Malformed {
        /// Which input or certificate.
        what: String,
        /// Decoder message.
        reason: String,
    },
    /// A PEM input holds a block of another type than CERTIFICATE.
    #[error("{what} holds a PEM '{label}' block, not a CERTIFICATE: {advice}")]
    WrongPemType {
        /// Which input.
        what: String,
        /// The PEM label found.
        label: String,
        /// What to give instead.
        advice: &'static str,
    },
    /// A PEM input holds more than one block.
    #[error(
        "{what} holds {count} PEM blocks; give exactly one certificate per file (the slot attestation \
         as the attestation, the slot-f9 device certificate as the intermediate)"
    )]
    SeveralPemBlocks {
        /// Which input.
        what: String,
        /// How many blocks.
        count: usize,
    },
    /// The certificate given as the attestation is not a YubiKey PIV slot attestation.
    #[error(
        "the attestation certificate's subject is '{subject}', not 'CN=YubiKey PIV Attestation <slot>': {advice}"
    )]
    NotAnAttestation {
        /// Its subject.
        subject: String,
        /// What to do.
        advice: &'static str,
    },
    /// The attestation was issued by another name than the device certificate's subject.
    #[error(
        "the attestation certificate was issued by '{attestation_issuer}', but the device certificate \
         given is '{f9_subject}': give the slot-f9 certificate of the same YubiKey \
         (`yubico-piv-tool -a read-certificate -s f9`)"
    )]
    F9NameMismatch {
        /// Issuer named in the attestation.
        attestation_issuer: String,
        /// Subject of the f9 certificate given.
        f9_subject: String,
    },
    /// The attestation's signature does not verify with the f9 certificate's key.
    #[error(
        "the attestation certificate's signature does not verify with the key of the device \
         certificate (f9, SHA-256 {f9_sha256}): that f9 certificate belongs to another YubiKey \
         batch, or the attestation certificate was altered. Read both again from the same YubiKey \
         (`yubico-piv-tool -a attest -s SLOT` and `-a read-certificate -s f9`)"
    )]
    NotSignedByF9 {
        /// SHA-256 of the f9 certificate given (upper-case hex).
        f9_sha256: String,
    },
    /// The chain leads to an issuer that is not one of the built-in Yubico CAs.
    #[error(
        "'{subject}' was issued by '{issuer}', which is not one of the Yubico attestation CAs \
         built into hsmsign ({known}): this is not an attestation by Yubico. Attest a key that was \
         generated on a YubiKey; if Yubico has published a new attestation CA, hsmsign needs an update"
    )]
    UnknownIssuer {
        /// The certificate whose issuer is unknown.
        subject: String,
        /// Its issuer.
        issuer: String,
        /// The built-in CA names.
        known: String,
    },
    /// The chain reaches Root 1 without passing a CA that issues YubiKey f9 certificates.
    #[error(
        "the chain {chain} does not pass through a Yubico PIV attestation CA (PIV Attestation A 1 or \
         B 1), which are the only ones under Yubico Attestation Root 1 that issue YubiKey device \
         certificates: this is not a YubiKey PIV attestation"
    )]
    NoPivAttestationCa {
        /// Subjects of the chain, leaf first.
        chain: String,
    },
    /// A certificate named as issued by a built-in Yubico CA does not verify with its key.
    #[error(
        "the signature of '{subject}' does not verify with the key of the built-in '{issuer}': the \
         certificate was altered, or forged by a CA that only copies Yubico's name. Do not trust \
         this key; read the certificates again from the YubiKey"
    )]
    BadSignature {
        /// The certificate whose signature fails.
        subject: String,
        /// The built-in issuer it names.
        issuer: String,
    },
    /// A certificate that issues another one in the chain is not a CA.
    #[error(
        "'{subject}' issues a certificate in this chain but is not a CA ({reason}); OpenSSL refuses \
         such chains too ('invalid CA certificate'). Attest a key on a YubiKey whose f9 \
         certificate is a CA (YubiKey 4.3 f9 certificates are not)"
    )]
    NotACa {
        /// The issuing certificate.
        subject: String,
        /// What is missing.
        reason: &'static str,
    },
    /// A CA's pathLenConstraint is exceeded.
    #[error(
        "'{ca}' allows {allowed} intermediate CA certificate(s) below it, but this chain has {found} \
         (RFC 5280 pathLenConstraint). The original 2016 Yubico PIV root (pathlen 0) does this to \
         every attestation; hsmsign trusts its 2018 re-issue (pathlen 1) instead"
    )]
    PathLength {
        /// The CA whose constraint is exceeded.
        ca: String,
        /// Its pathLenConstraint.
        allowed: u8,
        /// Intermediate CAs below it in this chain.
        found: usize,
    },
    /// A certificate is not valid at the given time.
    #[error(
        "'{subject}' is not valid at {now} (valid from {not_before} to {not_after}); check the \
         system clock, or attest the key again"
    )]
    OutsideValidity {
        /// The certificate.
        subject: String,
        /// Its notBefore.
        not_before: String,
        /// Its notAfter.
        not_after: String,
        /// The time checked.
        now: String,
    },
    /// A certificate is signed with an algorithm this module cannot verify.
    #[error(
        "'{subject}' is signed with algorithm {oid}, which hsmsign cannot verify (it verifies RSA \
         PKCS#1 v1.5 and ECDSA with SHA-256/384/512)"
    )]
    UnsupportedAlgorithm {
        /// The certificate.
        subject: String,
        /// The signature algorithm OID.
        oid: String,
    },
    /// A public key in the chain cannot be used.
    #[error(
        "the public key of '{subject}' cannot be used: {reason}. hsmsign works with EC P-256, \
         EC P-384 and RSA (2048 to 8192 bits) keys"
    )]
    UnsupportedKey {
        /// The certificate holding the key.
        subject: String,
        /// Why.
        reason: String,
    },
    /// A certificate has a critical extension this module does not process.
    #[error(
        "'{subject}' has a critical extension {oid} that hsmsign does not process; RFC 5280 requires \
         refusing such a certificate"
    )]
    UnknownCriticalExtension {
        /// The certificate.
        subject: String,
        /// The extension's OID.
        oid: String,
    },
    /// A Yubico extension of the attestation is missing or malformed.
    #[error(
        "the attestation certificate's {extension} extension ({oid}) {problem}; hsmsign cannot read \
         this attestation. Make a new one with `yubico-piv-tool -a attest -s SLOT`"
    )]
    BadExtension {
        /// Which extension, in words.
        extension: &'static str,
        /// Its OID.
        oid: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The attested key is not the expected key.
    #[error(
        "the attested key ({attested}) is not the expected public key ({expected}): this attestation \
         is about another key. Attest the slot that holds the key (`yubico-piv-tool -a attest -s SLOT`)"
    )]
    KeyMismatch {
        /// Algorithm and SHA-256 fingerprint of the attested key.
        attested: String,
        /// Algorithm and SHA-256 fingerprint of the expected key.
        expected: String,
    },
    /// A compiled-in CA certificate is damaged.
    #[error(
        "built-in CA certificate {file} is damaged ({reason}): this hsmsign build is broken; reinstall it"
    )]
    BuiltIn {
        /// Its file name.
        file: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// A verified YubiKey PIV attestation.
#[derive(Clone, Debug)]
pub struct Attestation {
    /// The PIV slot the key was generated in (from the subject `YubiKey PIV Attestation 9c`).
    pub slot: PivSlot,
    /// The YubiKey's serial number (`1.3.6.1.4.1.41482.3.7`), when stated.
    pub serial: Option<u32>,
    /// The firmware version (`1.3.6.1.4.1.41482.3.3`).
    pub firmware: FirmwareVersion,
    /// The PIN policy (`1.3.6.1.4.1.41482.3.8`, first byte), when stated.
    pub pin_policy: Option<PinPolicy>,
    /// The touch policy (`1.3.6.1.4.1.41482.3.8`, second byte), when stated.
    pub touch_policy: Option<TouchPolicy>,
    /// The form factor (`1.3.6.1.4.1.41482.3.9`), when stated.
    pub form_factor: Option<FormFactor>,
    /// The Yubico CA (and branch) the chain is anchored at.
    pub root: AttestationRoot,
    /// The attested public key.
    pub public_key: PublicKey,
    /// Subjects of the chain, from the slot attestation up to the root.
    pub chain: Vec<String>,
}

impl Attestation {
    /// One line for `key inspect`, e.g. "generated on YubiKey serial 13078782 (firmware 5.2.6)
    /// in slot 9c, PIN policy always, touch policy always, attested by Yubico (Yubico PIV Root CA
    /// Serial 263751)".
    pub fn verdict(&self) -> String {
        let serial = self
            .serial
            .map_or_else(|| "(serial not stated)".to_string(), |s| s.to_string());
        let fips = if self.form_factor.is_some_and(FormFactor::fips_series) {
            ", FIPS series"
        } else {
            ""
        };
        let policy = |p: Option<String>| p.unwrap_or_else(|| "not stated".into());
        format!(
            "generated on YubiKey serial {serial} (firmware {}{fips}) in slot {}, PIN policy {}, \
             touch policy {}, attested by Yubico ({})",
            self.firmware,
            self.slot,
            policy(self.pin_policy.map(|p| p.to_string())),
            policy(self.touch_policy.map(|t| t.to_string())),
            self.root
        )
    }
}

/// Read one certificate given as PEM (`CERTIFICATE`) or DER, and return its DER. `what` names
/// the input in error messages (e.g. "attestation file 'slot9c.pem'").
pub fn certificate_der(input: &[u8], what: &str) -> Result<Vec<u8>, AttestError> {
    let malformed = |reason: String| AttestError::Malformed {
        what: what.to_string(),
        reason,
    };
    let trimmed = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let start = trimmed
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(trimmed.len());
    let der = if trimmed[start..].starts_with(b"-----BEGIN ") {
        let text = std::str::from_utf8(&trimmed[start..])
            .map_err(|_| malformed("PEM text that is not UTF-8".into()))?;
        let labels: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("-----BEGIN "))
            .filter_map(|l| l.strip_suffix("-----"))
            .collect();
        if labels.len() > 1 {
            return Err(AttestError::SeveralPemBlocks {
                what: what.to_string(),
                count: labels.len(),
            });
        }
        match labels.first() {
            Some(&"CERTIFICATE") => {}
            Some(label) => {
                return Err(AttestError::WrongPemType {
                    what: what.to_string(),
                    label: label.to_string(),
                    advice: pem_advice(label),
                });
            }
            None => return Err(malformed("no complete PEM BEGIN line".into())),
        }
        let (_, der) = der::pem::decode_vec(text.trim_end().as_bytes())
            .map_err(|e| malformed(format!("PEM: {e}")))?;
        der
    } else {
        input.to_vec()
    };
    Certificate::from_der(&der).map_err(|e| malformed(e.to_string()))?;
    Ok(der)
}

fn pem_advice(label: &str) -> &'static str {
    if label.contains("PRIVATE KEY") {
        "that is a private key. Attestation needs only the public certificates; keep private keys \
         off this machine"
    } else if label == "PUBLIC KEY" {
        "that is a public key. Give the attestation certificate (`yubico-piv-tool -a attest -s SLOT`); \
         a public key is what the attested key is compared with"
    } else if label.contains("CERTIFICATE REQUEST") {
        "that is a certificate request. Give the attestation and f9 certificates themselves \
         (`yubico-piv-tool -a attest -s SLOT`, `-a read-certificate -s f9`)"
    } else {
        "give a PEM CERTIFICATE or a DER certificate"
    }
}

/// Verify a YubiKey PIV attestation.
///
/// `attestation_der` is the per-slot attestation certificate, `f9_der` the device's slot-f9
/// certificate (both DER; see [`certificate_der`]). The chain is built from them through the
/// built-in Yubico CAs ([`BUILT_IN`]) and checked at time `now`. If `expected_key` is given the
/// attested key must be that key (same algorithm and same BIT STRING contents: the EC point as
/// YubiKeys and PKCS#11 tokens give it, uncompressed, or the PKCS#1 RSAPublicKey).
pub fn verify_attestation(
    attestation_der: &[u8],
    f9_der: &[u8],
    expected_key: Option<&PublicKey>,
    now: SystemTime,
) -> Result<Attestation, AttestError> {
    verify_with(BUILT_IN, attestation_der, f9_der, expected_key, now)
}

/// [`verify_attestation`] against a given set of CA certificates (tests use other sets).
fn verify_with(
    trusted: &[BuiltInCert],
    attestation_der: &[u8],
    f9_der: &[u8],
    expected_key: Option<&PublicKey>,
    now: SystemTime,
) -> Result<Attestation, AttestError> {
    let leaf = Cert::parse(attestation_der, "the attestation certificate")?;
    let f9 = Cert::parse(f9_der, "the device (f9) certificate")?;

    let cn = leaf.common_name();
    let slot = PivSlot::from_attestation_cn(&cn).ok_or_else(|| AttestError::NotAnAttestation {
        subject: leaf.subject(),
        advice: if cn.ends_with("PIV Attestation") {
            "this is a device (f9) certificate; were the attestation and the f9 certificate swapped?"
        } else {
            "make one with `yubico-piv-tool -a attest -s SLOT` (or `ykman piv keys attest SLOT FILE`)"
        },
    })?;

    if leaf.tbs().issuer() != f9.tbs().subject() {
        return Err(AttestError::F9NameMismatch {
            attestation_issuer: leaf.tbs().issuer().to_string(),
            f9_subject: f9.subject(),
        });
    }
    match leaf.signed_by(&f9) {
        Ok(()) => {}
        Err(SigProblem::Invalid) => {
            return Err(AttestError::NotSignedByF9 {
                f9_sha256: f9.sha256(),
            });
        }
        Err(other) => return Err(other.into_error(&leaf, &f9)),
    }

    let anchors = trusted
        .iter()
        .map(|b| Ok((Cert::built_in(b)?, b)))
        .collect::<Result<Vec<_>, AttestError>>()?;

    let mut chain: Vec<&Cert> = vec![&leaf, &f9];
    let mut root = None;
    let mut current = &f9;
    loop {
        let named: Vec<&(Cert, &BuiltInCert)> = anchors
            .iter()
            .filter(|(ca, _)| ca.tbs().subject() == current.tbs().issuer())
            .collect();
        let Some(&(first, _)) = named.first() else {
            return Err(AttestError::UnknownIssuer {
                subject: current.subject(),
                issuer: current.tbs().issuer().to_string(),
                known: trusted
                    .iter()
                    .map(|b| b.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let Some((ca, info)) = named
            .iter()
            .map(|(ca, info)| (ca, *info))
            .find(|(ca, _)| current.signed_by(ca).is_ok())
        else {
            return Err(match current.signed_by(first) {
                Err(SigProblem::Invalid) | Ok(()) => AttestError::BadSignature {
                    subject: current.subject(),
                    issuer: first.subject(),
                },
                Err(other) => other.into_error(current, first),
            });
        };
        // The lowest marked CA names the branch: PIV Attestation A 1 / B 1, or the legacy root.
        if root.is_none() {
            root = info.marks;
        }
        chain.push(ca);
        if info.role == BuiltInRole::Root {
            break;
        }
        if chain.len() > trusted.len() + 2 {
            // Only a loop among the built-in intermediates could get here.
            return Err(AttestError::BuiltIn {
                file: info.file,
                reason: "the built-in intermediates do not lead to a root".into(),
            });
        }
        current = ca;
    }
    let root = root.ok_or_else(|| AttestError::NoPivAttestationCa {
        chain: chain
            .iter()
            .map(|c| c.subject())
            .collect::<Vec<_>>()
            .join(" <- "),
    })?;

    for cert in &chain {
        cert.check_validity(now)?;
        cert.check_critical_extensions()?;
    }
    // chain[i] has i - 1 intermediate CA certificates between itself and the leaf.
    for (i, ca) in chain.iter().enumerate().skip(1) {
        ca.check_ca(i - 1)?;
    }

    let public_key = leaf
        .public_key()
        .map_err(|reason| AttestError::UnsupportedKey {
            subject: "the attested key".into(),
            reason,
        })?;
    if let Some(expected) = expected_key
        && (expected.algorithm() != public_key.algorithm() || expected.raw() != public_key.raw())
    {
        let show = |k: &PublicKey| format!("{}, SHA-256 {}", k.algorithm(), k.fingerprint_hex());
        return Err(AttestError::KeyMismatch {
            attested: show(&public_key),
            expected: show(expected),
        });
    }

    let firmware_raw = leaf
        .yubico_extension(OID_FIRMWARE, "firmware version")?
        .ok_or_else(|| bad_extension(OID_FIRMWARE, "firmware version", "is missing".into()))?;
    let firmware = FirmwareVersion::from_extension(firmware_raw).ok_or_else(|| {
        bad_extension(
            OID_FIRMWARE,
            "firmware version",
            format!("is not 3 bytes ({})", hex(firmware_raw)),
        )
    })?;
    let serial = leaf
        .yubico_extension(OID_SERIAL, "serial number")?
        .map(|v| {
            u32::from_der(v).map_err(|e| {
                bad_extension(
                    OID_SERIAL,
                    "serial number",
                    format!("is not a DER INTEGER ({}: {e})", hex(v)),
                )
            })
        })
        .transpose()?;
    let (pin_policy, touch_policy) = match leaf.yubico_extension(OID_POLICY, "PIN/touch policy")? {
        None => (None, None),
        Some(&[pin, touch]) => (
            Some(PinPolicy::from_byte(pin)),
            Some(TouchPolicy::from_byte(touch)),
        ),
        Some(other) => {
            return Err(bad_extension(
                OID_POLICY,
                "PIN/touch policy",
                format!("is not 2 bytes ({})", hex(other)),
            ));
        }
    };
    let form_factor = match leaf.yubico_extension(OID_FORM_FACTOR, "form factor")? {
        None => None,
        Some(&[b]) => Some(FormFactor(b)),
        Some(other) => {
            return Err(bad_extension(
                OID_FORM_FACTOR,
                "form factor",
                format!("is not 1 byte ({})", hex(other)),
            ));
        }
    };

    Ok(Attestation {
        slot,
        serial,
        firmware,
        pin_policy,
        touch_policy,
        form_factor,
        root,
        public_key,
        chain: chain.iter().map(|c| c.subject()).collect(),
    })
}

const OID_FIRMWARE: &str = yubico::OID_FIRMWARE;
const OID_SERIAL: &str = yubico::OID_SERIAL;
const OID_POLICY: &str = yubico::OID_POLICY;
const OID_FORM_FACTOR: &str = yubico::OID_FORM_FACTOR;

fn bad_extension(oid: &'static str, extension: &'static str, problem: String) -> AttestError {
    AttestError::BadExtension {
        extension,
        oid,
        problem,
    }
}

/// Why a signature check failed.
enum SigProblem {
    /// The signature algorithm is not one we verify.
    Algorithm(String),
    /// The issuer's key cannot be used.
    Key(String),
    /// The signature does not verify (or the two algorithm fields differ).
    Invalid,
}

impl SigProblem {
    fn into_error(self, child: &Cert, issuer: &Cert) -> AttestError {
        match self {
            Self::Algorithm(oid) => AttestError::UnsupportedAlgorithm {
                subject: child.subject(),
                oid,
            },
            Self::Key(reason) => AttestError::UnsupportedKey {
                subject: issuer.subject(),
                reason,
            },
            Self::Invalid => AttestError::BadSignature {
                subject: child.subject(),
                issuer: issuer.subject(),
            },
        }
    }
}

/// A decoded certificate with the exact bytes its signature covers.
struct Cert {
    der: Vec<u8>,
    /// Where the tbsCertificate TLV is in `der`.
    tbs: Range<usize>,
    cert: Certificate,
}

impl Cert {
    fn parse(der: &[u8], what: &str) -> Result<Self, AttestError> {
        let malformed = |e: der::Error| AttestError::Malformed {
            what: what.to_string(),
            reason: e.to_string(),
        };
        let cert = Certificate::from_der(der).map_err(malformed)?;
        let tbs = tbs_range(der).map_err(malformed)?;
        Ok(Self {
            der: der.to_vec(),
            tbs,
            cert,
        })
    }

    fn built_in(b: &BuiltInCert) -> Result<Self, AttestError> {
        let broken = |reason: String| AttestError::BuiltIn {
            file: b.file,
            reason,
        };
        let text = std::str::from_utf8(b.pem).map_err(|e| broken(e.to_string()))?;
        let (_, der) =
            der::pem::decode_vec(text.trim().as_bytes()).map_err(|e| broken(e.to_string()))?;
        let actual = hex(&sha2::Sha256::digest(&der)).to_ascii_uppercase();
        if actual != b.sha256 {
            return Err(broken(format!(
                "SHA-256 is {actual}, expected {}",
                b.sha256
            )));
        }
        Self::parse(&der, b.file).map_err(|e| broken(e.to_string()))
    }

    fn tbs(&self) -> &x509_cert::TbsCertificate {
        self.cert.tbs_certificate()
    }

    fn subject(&self) -> String {
        self.tbs().subject().to_string()
    }

    fn common_name(&self) -> String {
        self.tbs()
            .subject()
            .common_name()
            .ok()
            .flatten()
            .map(|cn| cn.value().into_owned())
            .unwrap_or_default()
    }

    fn sha256(&self) -> String {
        hex(&sha2::Sha256::digest(&self.der)).to_ascii_uppercase()
    }

    fn public_key(&self) -> Result<PublicKey, String> {
        let spki = self
            .tbs()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| e.to_string())?;
        PublicKey::from_spki_der(&spki).map_err(|e| e.to_string())
    }

    /// Check that `issuer`'s key made this certificate's signature.
    fn signed_by(&self, issuer: &Self) -> Result<(), SigProblem> {
        let outer = self.cert.signature_algorithm();
        if outer != self.tbs().signature() {
            return Err(SigProblem::Invalid);
        }
        let oid = outer.oid.to_string();
        let alg = SignatureAlgorithm::from_oid(&oid).ok_or(SigProblem::Algorithm(oid))?;
        let key = issuer.public_key().map_err(SigProblem::Key)?;
        let signature = self
            .cert
            .signature()
            .as_bytes()
            .ok_or(SigProblem::Invalid)?;
        let tbs = self.der.get(self.tbs.clone()).ok_or(SigProblem::Invalid)?;
        key.verify(alg, tbs, signature)
            .map_err(|_| SigProblem::Invalid)
    }

    fn check_validity(&self, now: SystemTime) -> Result<(), AttestError> {
        let validity = self.tbs().validity();
        let t = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        if t < validity.not_before.to_unix_duration() || t > validity.not_after.to_unix_duration() {
            return Err(AttestError::OutsideValidity {
                subject: self.subject(),
                not_before: validity.not_before.to_string(),
                not_after: validity.not_after.to_string(),
                now: der::DateTime::from_system_time(now)
                    .map_or_else(|_| format!("{t:?} after 1970"), |d| d.to_string()),
            });
        }
        Ok(())
    }

    fn check_critical_extensions(&self) -> Result<(), AttestError> {
        for ext in self.tbs().extensions().into_iter().flatten() {
            let oid = ext.extn_id.to_string();
            if ext.critical && !HANDLED_CRITICAL.contains(&oid.as_str()) {
                return Err(AttestError::UnknownCriticalExtension {
                    subject: self.subject(),
                    oid,
                });
            }
        }
        Ok(())
    }

    /// Check that this certificate may issue certificates with `below` intermediate CA
    /// certificates between it and the end-entity certificate.
    fn check_ca(&self, below: usize) -> Result<(), AttestError> {
        let malformed = |e: der::Error| AttestError::Malformed {
            what: self.subject(),
            reason: e.to_string(),
        };
        let not_ca = |reason| AttestError::NotACa {
            subject: self.subject(),
            reason,
        };
        let bc = match self
            .tbs()
            .get_extension::<BasicConstraints>()
            .map_err(malformed)?
        {
            None => return Err(not_ca("it has no basicConstraints extension")),
            Some((_, bc)) if !bc.ca => return Err(not_ca("its basicConstraints say cA FALSE")),
            Some((_, bc)) => bc,
        };
        if let Some(allowed) = bc.path_len_constraint
            && below > usize::from(allowed)
        {
            return Err(AttestError::PathLength {
                ca: self.subject(),
                allowed,
                found: below,
            });
        }
        if let Some((_, ku)) = self.tbs().get_extension::<KeyUsage>().map_err(malformed)?
            && !ku.key_cert_sign()
        {
            return Err(not_ca("its keyUsage does not allow keyCertSign"));
        }
        Ok(())
    }

    /// The raw OCTET STRING contents of a Yubico extension, if present (once).
    fn yubico_extension(
        &self,
        oid: &'static str,
        extension: &'static str,
    ) -> Result<Option<&[u8]>, AttestError> {
        let wanted =
            ObjectIdentifier::new(oid).map_err(|e| bad_extension(oid, extension, e.to_string()))?;
        let mut found = self
            .tbs()
            .extensions()
            .into_iter()
            .flatten()
            .filter(|e| e.extn_id == wanted);
        let first = found.next();
        if found.next().is_some() {
            return Err(bad_extension(oid, extension, "appears twice".into()));
        }
        Ok(first.map(|e| e.extn_value.as_bytes()))
    }
}

/// Where the complete TLV of the tbsCertificate is in `cert_der` (RFC 5280 4.1.1.1: the
/// signature covers these exact bytes, which are never re-encoded).
fn tbs_range(cert_der: &[u8]) -> der::Result<Range<usize>> {
    let mut reader = der::SliceReader::new(cert_der)?;
    let header = der::Header::decode(&mut reader)?;
    header.tag().assert_eq(der::Tag::Sequence)?;
    let start = usize::try_from(reader.position())?;
    let len = reader.tlv_bytes()?.len();
    Ok(start..start + len)
}

#[cfg(test)]
mod tests;
