//! The facts a YubiKey states about a PIV key in its slot attestation certificate.
//!
//! Yubico documents these private extensions (arc `1.3.6.1.4.1.41482.3`); the value of each is
//! the raw content of the extension's OCTET STRING:
//!
//! | OID suffix | meaning | encoding |
//! | --- | --- | --- |
//! | `.3.3` | firmware version | 3 raw bytes: major, minor, patch |
//! | `.3.7` | device serial number | a DER INTEGER |
//! | `.3.8` | PIN and touch policy | 2 raw bytes: PIN policy, touch policy |
//! | `.3.9` | form factor | 1 raw byte; bit `0x80` marks the FIPS series |

use std::fmt;

/// `1.3.6.1.4.1.41482.3.3`: firmware version.
pub(crate) const OID_FIRMWARE: &str = "1.3.6.1.4.1.41482.3.3";
/// `1.3.6.1.4.1.41482.3.7`: serial number.
pub(crate) const OID_SERIAL: &str = "1.3.6.1.4.1.41482.3.7";
/// `1.3.6.1.4.1.41482.3.8`: PIN and touch policy.
pub(crate) const OID_POLICY: &str = "1.3.6.1.4.1.41482.3.8";
/// `1.3.6.1.4.1.41482.3.9`: form factor.
pub(crate) const OID_FORM_FACTOR: &str = "1.3.6.1.4.1.41482.3.9";

/// The subject common name of a slot attestation is this prefix and the slot in hex.
pub(crate) const ATTESTATION_CN_PREFIX: &str = "YubiKey PIV Attestation ";

/// A YubiKey firmware version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FirmwareVersion {
    /// Major version (5 for the YubiKey 5 series).
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Patch level.
    pub patch: u8,
}

impl FirmwareVersion {
    /// Decode the 3 raw bytes of the firmware extension.
    pub(crate) fn from_extension(value: &[u8]) -> Option<Self> {
        match value {
            [major, minor, patch] => Some(Self {
                major: *major,
                minor: *minor,
                patch: *patch,
            }),
            _ => None,
        }
    }
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// When the YubiKey asks for the PIV PIN before using the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PinPolicy {
    /// Never: the key can be used without the PIN.
    Never,
    /// Once per session.
    Once,
    /// Before every use.
    Always,
    /// YubiKey Bio: a fingerprint match once per session.
    MatchOnce,
    /// YubiKey Bio: a fingerprint match before every use.
    MatchAlways,
    /// A value this version of hsmsign does not know.
    Unknown(u8),
}

impl PinPolicy {
    /// Decode Yubico's PIN policy byte.
    pub fn from_byte(b: u8) -> Self {
        match b {
            1 => Self::Never,
            2 => Self::Once,
            3 => Self::Always,
            4 => Self::MatchOnce,
            5 => Self::MatchAlways,
            other => Self::Unknown(other),
        }
    }
}

impl fmt::Display for PinPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Never => f.write_str("never"),
            Self::Once => f.write_str("once"),
            Self::Always => f.write_str("always"),
            Self::MatchOnce => f.write_str("match-once"),
            Self::MatchAlways => f.write_str("match-always"),
            Self::Unknown(b) => write!(f, "unknown (0x{b:02x})"),
        }
    }
}

/// When the YubiKey asks for a touch before using the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TouchPolicy {
    /// Never.
    Never,
    /// Before every use.
    Always,
    /// Once, then not again for 15 seconds.
    Cached,
    /// A value this version of hsmsign does not know.
    Unknown(u8),
}

impl TouchPolicy {
    /// Decode Yubico's touch policy byte.
    pub fn from_byte(b: u8) -> Self {
        match b {
            1 => Self::Never,
            2 => Self::Always,
            3 => Self::Cached,
            other => Self::Unknown(other),
        }
    }
}

impl fmt::Display for TouchPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Never => f.write_str("never"),
            Self::Always => f.write_str("always"),
            Self::Cached => f.write_str("cached"),
            Self::Unknown(b) => write!(f, "unknown (0x{b:02x})"),
        }
    }
}

/// The device's form factor byte as attested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FormFactor(pub u8);

impl FormFactor {
    /// Bit set on FIPS-series YubiKeys; not part of the form factor itself.
    pub const FIPS_FLAG: u8 = 0x80;

    /// True if the FIPS-series flag (`0x80`) is set.
    pub fn fips_series(self) -> bool {
        self.0 & Self::FIPS_FLAG != 0
    }

    /// The form factor without the FIPS flag, in words.
    pub fn name(self) -> String {
        match self.0 & !Self::FIPS_FLAG {
            1 => "USB-A keychain".into(),
            2 => "USB-A nano".into(),
            3 => "USB-C keychain".into(),
            4 => "USB-C nano".into(),
            5 => "USB-C and Lightning".into(),
            6 => "USB-A Bio".into(),
            7 => "USB-C Bio".into(),
            other => format!("unknown form factor 0x{other:02x}"),
        }
    }
}

impl fmt::Display for FormFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if self.fips_series() {
            f.write_str(", FIPS series")?;
        }
        Ok(())
    }
}

/// A PIV key slot (SP 800-73-4 key references).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PivSlot(pub u8);

impl PivSlot {
    /// Parse the slot from an attestation subject common name such as
    /// `YubiKey PIV Attestation 9c`. Only slots that hold PIV keys are accepted.
    pub fn from_attestation_cn(cn: &str) -> Option<Self> {
        let hex = cn.strip_prefix(ATTESTATION_CN_PREFIX)?;
        if hex.len() != 2 {
            return None;
        }
        let slot = u8::from_str_radix(hex, 16).ok()?;
        matches!(slot, 0x9a | 0x9c | 0x9d | 0x9e | 0x82..=0x95).then_some(Self(slot))
    }

    /// The slot's PIV role.
    pub fn role(self) -> &'static str {
        match self.0 {
            0x9a => "PIV Authentication",
            0x9c => "Digital Signature",
            0x9d => "Key Management",
            0x9e => "Card Authentication",
            0x82..=0x95 => "Retired Key Management",
            _ => "unknown",
        }
    }
}

impl fmt::Display for PivSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_parse_strictly() {
        assert_eq!(
            PivSlot::from_attestation_cn("YubiKey PIV Attestation 9c"),
            Some(PivSlot(0x9c))
        );
        assert_eq!(
            PivSlot::from_attestation_cn("YubiKey PIV Attestation 82"),
            Some(PivSlot(0x82))
        );
        // The f9 certificate itself, other slots and other spellings are not slot attestations.
        assert_eq!(
            PivSlot::from_attestation_cn("YubiKey PIV Attestation"),
            None
        );
        assert_eq!(
            PivSlot::from_attestation_cn("YubiKey PIV Attestation f9"),
            None
        );
        assert_eq!(
            PivSlot::from_attestation_cn("YubiKey PIV Attestation 9c0"),
            None
        );
        assert_eq!(
            PivSlot::from_attestation_cn("Yubico PIV Attestation 9c"),
            None
        );
        assert_eq!(PivSlot(0x9c).to_string(), "9c");
    }

    #[test]
    fn fips_flag_is_masked_off_the_form_factor() {
        assert_eq!(FormFactor(0x83).name(), "USB-C keychain");
        assert!(FormFactor(0x83).fips_series());
        assert!(!FormFactor(0x03).fips_series());
        assert_eq!(FormFactor(0x81).to_string(), "USB-A keychain, FIPS series");
        assert_eq!(FormFactor(0x0f).name(), "unknown form factor 0x0f");
    }

    #[test]
    fn policies_decode_and_keep_unknown_values() {
        assert_eq!(PinPolicy::from_byte(3), PinPolicy::Always);
        assert_eq!(PinPolicy::from_byte(9).to_string(), "unknown (0x09)");
        assert_eq!(TouchPolicy::from_byte(3), TouchPolicy::Cached);
        assert_eq!(
            FirmwareVersion::from_extension(&[5, 7, 4]).map(|v| v.to_string()),
            Some("5.7.4".into())
        );
        assert_eq!(FirmwareVersion::from_extension(&[5, 7]), None);
    }
}
