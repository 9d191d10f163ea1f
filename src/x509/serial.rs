//! Certificate serial numbers (RFC 5280 4.1.2.2): parsed from every spelling, kept as one value.

use der::asn1::Uint;

use super::error::{IssueError, encoding};

/// A certificate serial number: a positive integer whose DER encoding takes at most 20 octets
/// (RFC 5280 4.1.2.2). Kept as its unsigned big-endian bytes without leading zeros, so one
/// number has one value however it was written (`0A:0B`, `a0b`, `0x0a0b`); ordered by value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// Take big-endian bytes (e.g. 16 bytes from the token RNG) as an unsigned number.
    /// Leading zero bytes are dropped; a zero serial is refused; so is one whose DER encoding
    /// (with the sign octet a high first bit needs) exceeds 20 octets.
    pub fn new(bytes: &[u8]) -> Result<Self, IssueError> {
        Self::checked(
            bytes,
            || crate::encoding::hex(bytes),
            "it needs more than 20 octets (RFC 5280 4.1.2.2); draw at most 19 random bytes",
        )
    }

    /// The serial in a DER INTEGER's content octets, as a certificate carries it (a 0x00 sign
    /// octet is dropped). A negative number (first bit set) is refused.
    pub fn from_der_integer(content: &[u8]) -> Result<Self, IssueError> {
        if content.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(IssueError::Serial {
                serial: crate::encoding::hex(content),
                reason: "it is negative; serial numbers must be positive",
            });
        }
        Self::new(content)
    }

    /// Parse a serial as `openssl x509 -serial` prints it or a user types it: hex in any case,
    /// with or without colons, spaces or a `0x` prefix, leading zeros ignored.
    pub fn parse(text: &str) -> Result<Self, IssueError> {
        let trimmed = text.trim();
        let digits: Vec<u8> = trimmed
            .strip_prefix("0x")
            .or_else(|| trimmed.strip_prefix("0X"))
            .unwrap_or(trimmed)
            .bytes()
            .filter(|c| *c != b':' && !c.is_ascii_whitespace())
            .collect();
        let nibbles = digits
            .iter()
            .map(|&c| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok()))
            .collect::<Option<Vec<u8>>>()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| IssueError::Serial {
                serial: text.to_string(),
                reason: "it is not hexadecimal; give it as `openssl x509 -serial` prints it",
            })?;
        // Pad to whole octets from the left, then pair the digits up.
        let pad = usize::from(nibbles.len() % 2 == 1);
        let bytes: Vec<u8> = std::iter::repeat_n(0, pad)
            .chain(nibbles)
            .collect::<Vec<u8>>()
            .chunks(2)
            .map(|pair| pair[0] << 4 | pair.get(1).copied().unwrap_or(0))
            .collect();
        Self::checked(
            &bytes,
            || text.to_string(),
            "it needs more than 20 octets (RFC 5280 4.1.2.2)",
        )
    }

    /// The same as [`Self::parse`]; the counterpart of [`Self::to_hex`].
    pub fn from_hex(s: &str) -> Result<Self, IssueError> {
        Self::parse(s)
    }

    /// `bytes` as a serial, or an error that shows the input as `shown()` gives it.
    fn checked(
        bytes: &[u8],
        shown: impl Fn() -> String,
        too_long: &'static str,
    ) -> Result<Self, IssueError> {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let magnitude = &bytes[start..];
        let Some(&first) = magnitude.first() else {
            return Err(IssueError::Serial {
                serial: shown(),
                reason: "it is zero; serial numbers must be positive",
            });
        };
        let encoded_len = magnitude.len() + usize::from(first & 0x80 != 0);
        if encoded_len > 20 {
            return Err(IssueError::Serial {
                serial: shown(),
                reason: too_long,
            });
        }
        Ok(Self(magnitude.to_vec()))
    }

    /// The unsigned big-endian value, without leading zeros.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex of [`Self::bytes`] (two digits per octet, as openssl prints serials).
    pub fn to_hex(&self) -> String {
        crate::encoding::hex(&self.0)
    }

    /// The DER INTEGER.
    pub(crate) fn to_uint(&self) -> Result<Uint, IssueError> {
        Uint::new(&self.0).map_err(encoding("serial number"))
    }

    /// Compare with an INTEGER's content bytes (which may carry a 0x00 sign octet).
    pub(crate) fn matches(&self, content: &[u8]) -> bool {
        let start = content
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(content.len());
        content[start..] == self.0[..]
    }
}

impl Ord for Serial {
    /// By value: without leading zeros, a longer number is the larger one.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Serial {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for Serial {
    /// As [`Serial::to_hex`] (for `--json` output).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use der::Encode;

    use super::*;

    #[test]
    fn serial_numbers_are_positive_and_bounded() {
        assert!(Serial::new(&[0, 0]).is_err());
        assert!(Serial::new(&[]).is_err());
        assert_eq!(Serial::new(&[0, 0, 5]).unwrap().bytes(), [5]);
        assert!(Serial::new(&[0x80; 20]).is_err()); // would need 21 octets
        assert!(Serial::new(&[0x7f; 20]).is_ok());
        let s = Serial::new(&[0x80; 19]).unwrap();
        assert_eq!(s.to_uint().unwrap().to_der().unwrap()[1], 20); // 0x00 sign octet + 19
        assert_eq!(Serial::from_hex(&s.to_hex()).unwrap(), s);
        assert_eq!(Serial::from_hex("0A:0b").unwrap().bytes(), [0x0a, 0x0b]);
        assert!(Serial::from_hex("xyz").is_err());
    }

    #[test]
    fn serials_order_by_value() {
        let small = Serial::parse("ff").unwrap();
        let large = Serial::parse("01:00").unwrap();
        assert!(small < large);
        assert_eq!(
            Serial::parse("0100").unwrap().cmp(&large),
            std::cmp::Ordering::Equal
        );
        assert_eq!(serde_json::to_value(&large).unwrap(), "0100");
    }
}
