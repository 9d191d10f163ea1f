//! Distinguished names as the JVM prints them (`X500Principal.getName()`, RFC 2253 / RFC 4514).
//!
//! JS7 maps a client certificate to an account by comparing its subject DN with the strings in
//! `js7.auth.users.<Id>.distinguished-names`, the DN taken from the JVM in RFC 2253 form. So the
//! string written there follows the JDK's rules:
//! - RDNs most specific first (the reverse of the DER order);
//! - the keywords CN, C, L, ST, O, OU, STREET, DC and UID; every other attribute type as its
//!   dotted OID with the value as `#` and the lower-case hex of its DER encoding (so
//!   emailAddress is `1.2.840.113549.1.9.1=#16...`, as the JDK prints it);
//! - `, = + < > # ; " \` escaped with a backslash, as are a leading or trailing space and control
//!   characters (as `\XX`).
//!
//! Separators are `", "` (as in JS7's own examples): JS7 compares DNs parsed, so white space
//! between attributes does not matter.

use der::asn1::BmpString;
use der::{Encode, Tag, Tagged};
use x509_cert::Certificate;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::Name;

use super::{BundleError, parse_cert};

/// The subject DN of a certificate (DER) as the JVM's `X500Principal.getName()` gives it, most
/// specific RDN first, with `", "` between RDNs: `CN=controller, OU=IT, O=SOS, C=DE`.
pub fn subject_dn_rfc2253(cert_der: &[u8]) -> Result<String, BundleError> {
    let cert: Certificate = parse_cert(cert_der, "certificate".to_string())?;
    Ok(name_rfc2253(cert.tbs_certificate().subject()))
}

/// A name in RFC 2253 form with the JDK's keywords and escaping (see the module documentation).
pub(super) fn name_rfc2253(name: &Name) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| rdn.iter().map(atv_rfc2253).collect::<Vec<_>>().join("+"))
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(", ")
}

/// The most specific common name (CN) of a name, if it has one as a string.
pub(super) fn common_name(name: &Name) -> Option<String> {
    name.iter()
        .filter(|atv| atv.oid.to_string() == "2.5.4.3")
        .filter_map(string_value)
        .last()
}

fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn atv_rfc2253(atv: &AttributeTypeAndValue) -> String {
    let oid = atv.oid.to_string();
    match (keyword(&oid), string_value(atv)) {
        (Some(kw), Some(text)) => format!("{kw}={}", escape(&text)),
        (kw, _) => {
            let der = atv.value.to_der().unwrap_or_default();
            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}=#{hex}", kw.map_or(oid, str::to_string))
        }
    }
}

/// The text of a directory string value, for the string types the JDK decodes.
fn string_value(atv: &AttributeTypeAndValue) -> Option<String> {
    let bytes = atv.value.value();
    match atv.value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            std::str::from_utf8(bytes).ok().map(str::to_string)
        }
        // T.61 in theory; the JDK and OpenSSL read it as ISO 8859-1.
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => BmpString::from_ucs2(bytes.to_vec())
            .ok()
            .map(|s| s.to_string()),
        _ => None,
    }
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_specials_and_edge_spaces() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("a b"), "a b");
        assert_eq!(escape("#1"), "\\#1");
        assert_eq!(escape("q\"\\"), "q\\\"\\\\");
        assert_eq!(escape("t\u{1}"), "t\\01");
    }
}
