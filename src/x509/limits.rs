//! The limits on what hsmsign issues, in one place, and the checks on text that ends up in a
//! certificate. docs/security-officer.md ("Limits") lists every one of them; keep the two in
//! step.
//!
//! Certificate validity maxima are per profile ([`super::Profile::max_validity_years`]); the
//! rest is here.

use time::OffsetDateTime;

/// Longest CRL validity (nextUpdate - thisUpdate) in days.
pub const MAX_CRL_DAYS: u64 = 366;
/// nextUpdate of a CRL when `--days` is not given.
pub const DEFAULT_CRL_DAYS: u64 = 7;
/// Most subject alternative names in one certificate (from the request and `--san` together).
pub const MAX_SANS: usize = 100;
/// Most RDNs in one distinguished name.
pub const MAX_RDNS: usize = 16;
/// Most attributes in one distinguished name, counting every member of a multi-valued RDN.
pub const MAX_NAME_ATTRIBUTES: usize = 16;
/// Longest `URI:` subject alternative name, in characters.
pub const MAX_URI_LEN: usize = 1024;
/// Longest `email:` subject alternative name, in characters (RFC 5321 4.5.3.1.3 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Largest certificate hsmsign signs, DER bytes (checked on the planned certificate before the
/// token is asked to sign, with room for the largest signature).
pub const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;
/// Largest certificate signing request accepted, bytes of the file (PEM or DER).
pub const MAX_CSR_BYTES: usize = 64 * 1024;
/// Smallest RSA modulus certified or used, bits.
pub const MIN_RSA_BITS: usize = crate::signer::MIN_RSA_BITS;
/// Largest RSA modulus certified or used, bits.
pub const MAX_RSA_BITS: usize = crate::signer::MAX_RSA_BITS;

/// The latest time an X.509 certificate or CRL can carry: 9999-12-31 23:59:59 UTC
/// (GeneralizedTime has four year digits; RFC 5280 4.1.2.5 uses this as "no expiry").
pub fn latest_x509_time() -> OffsetDateTime {
    // 253402300799 = 9999-12-31T23:59:59Z, inside the `time` crate's default range.
    OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Why a character is refused in names, or `None` if it is allowed.
///
/// Refused: control characters (C0, DEL, C1), bidirectional controls (they make
/// `CN=\u{202e}gpj.exe` show as `exe.jpg`), zero-width and other invisible format characters,
/// line and paragraph separators, Unicode tag characters, variation selectors, and
/// noncharacters.
pub fn forbidden_reason(c: char) -> Option<&'static str> {
    let u = u32::from(c);
    if c.is_control() {
        return Some("a control character");
    }
    match u {
        0x061C | 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069 => Some(
            "a bidirectional-text control, which makes the name display differently from what it is",
        ),
        0x00AD
        | 0x034F
        | 0x115F
        | 0x1160
        | 0x17B4
        | 0x17B5
        | 0x180B..=0x180F
        | 0x200B..=0x200D
        | 0x2060..=0x2065
        | 0x206A..=0x206F
        | 0x3164
        | 0xFEFF
        | 0xFFA0
        | 0x1D173..=0x1D17A => Some("a zero-width or invisible character"),
        0x2028 | 0x2029 => Some("a line or paragraph separator"),
        0xFE00..=0xFE0F | 0xE0100..=0xE01EF => Some("a variation selector"),
        0xE0000..=0xE007F => Some("a Unicode tag character (invisible)"),
        0xFFF9..=0xFFFB => Some("an interlinear annotation control"),
        0xFDD0..=0xFDEF => Some("a Unicode noncharacter"),
        _ if u & 0xFFFE == 0xFFFE => Some("a Unicode noncharacter"),
        _ => None,
    }
}

/// The first refused character of `s` with the reason, if any.
pub fn first_forbidden(s: &str) -> Option<(char, &'static str)> {
    s.chars()
        .find_map(|c| forbidden_reason(c).map(|why| (c, why)))
}

/// `s` with every refused character written as `\u{...}` (and a backslash kept as is), so a
/// message shows what the input holds rather than what a terminal makes of it.
pub fn escape_for_display(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if forbidden_reason(c).is_some() {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// `U+202E` for a character, as messages name it.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_zero_width_and_control_characters_are_refused_and_shown_escaped() {
        for c in [
            '\u{202e}',
            '\u{202d}',
            '\u{2066}',
            '\u{200f}',
            '\u{061c}',
            '\u{200b}',
            '\u{200d}',
            '\u{feff}',
            '\u{2060}',
            '\u{0}',
            '\u{1b}',
            '\u{7f}',
            '\u{85}',
            '\u{2028}',
            '\u{e0041}',
            '\u{fe0f}',
            '\u{ffff}',
        ] {
            assert!(forbidden_reason(c).is_some(), "{:?}", c);
        }
        for c in ['a', 'ü', 'ß', '東', ' ', '-', '\u{a0}', 'é'] {
            assert_eq!(forbidden_reason(c), None, "{c:?}");
        }
        assert_eq!(escape_for_display("\u{202e}gpj.exe"), "\\u{202e}gpj.exe");
        assert_eq!(escape_for_display("a\u{1b}[31m"), "a\\u{1b}[31m");
        assert_eq!(code_point('\u{202e}'), "U+202E");
        assert_eq!(
            first_forbidden("ok\u{200b}x").map(|(c, _)| c),
            Some('\u{200b}')
        );
    }

    #[test]
    fn the_latest_time_is_the_last_second_of_9999() {
        let t = latest_x509_time();
        assert_eq!((t.year(), u8::from(t.month()), t.day()), (9999, 12, 31));
        assert_eq!((t.hour(), t.minute(), t.second()), (23, 59, 59));
        // And it encodes (as GeneralizedTime).
        assert!(super::super::to_x509_time(t).is_ok());
    }
}
