//! Distinguished names (X.501 `Name`, RFC 5280 4.1.2.4).
//!
//! Two written forms are accepted, and they differ in ORDER:
//!
//! - RFC 4514 (`CN=JS7 Root CA, OU=IT Operations, O=SOS, L=Berlin, ST=Berlin, C=DE`) lists the
//!   MOST specific RDN first. It is reversed into the DER sequence, so the certificate holds
//!   `C, ST, L, O, OU, CN` in that order (what `openssl x509 -subject` shows as
//!   `C=DE, ST=Berlin, L=Berlin, O=SOS, OU=IT Operations, CN=JS7 Root CA`).
//! - OpenSSL's `-subj` form (`/C=DE/ST=Berlin/O=SOS/CN=JS7 Root CA`) lists the LEAST specific
//!   RDN first, which is already the DER order.
//!
//! A comma-separated string that starts with `C=` is refused: that is the order OpenSSL
//! displays, and reversing it would put the country last in the certificate.
//!
//! Values are stored as UTF8String, except `C` and `serialNumber` (PrintableString, RFC 5280
//! appendix A) and `DC` and `emailAddress` (IA5String, RFC 4519 / PKCS#9). Multi-valued RDNs
//! (`OU=Sales+CN=J. Smith`) are supported; hex-encoded values (`CN=#0403...`) are not.
//! The display form ([`fmt::Display`]) is RFC 4514 with its escaping, most specific first.

use std::fmt;

use der::asn1::{Any, SetOfVec};
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::Name;

use super::limits::{
    MAX_NAME_ATTRIBUTES, MAX_RDNS, code_point, escape_for_display, first_forbidden,
    forbidden_reason,
};

/// Errors in distinguished names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    /// The string was empty.
    #[error("the distinguished name is empty: give one like `CN=JS7 Root CA, O=Example, C=DE`")]
    Empty,
    /// The string could not be parsed.
    #[error(
        "cannot parse the distinguished name at `{part}`: {reason}. \
         Write it like `CN=JS7 Root CA, OU=IT, O=Example, C=DE` or `/C=DE/O=Example/CN=JS7 Root CA`"
    )]
    Syntax {
        /// The part of the input that is wrong.
        part: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An attribute name hsmsign does not know.
    #[error("unknown attribute `{name}` in the distinguished name; known attributes are: {known}")]
    UnknownAttribute {
        /// The name as written.
        name: String,
        /// The accepted names.
        known: String,
    },
    /// An attribute with an empty value.
    #[error("attribute {attribute} has an empty value: give it a value or leave it out")]
    EmptyValue {
        /// Which attribute.
        attribute: &'static str,
    },
    /// `C=` is not a two-letter country code.
    #[error("country `C={value}` is not a two-letter ISO 3166 code: write e.g. `C=DE`")]
    BadCountry {
        /// The value given.
        value: String,
    },
    /// A value holds characters its ASN.1 string type cannot carry.
    #[error("attribute {attribute}=`{value}` holds characters not allowed there ({allowed})")]
    BadCharacters {
        /// Which attribute.
        attribute: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// A value longer than RFC 5280's upper bound.
    #[error(
        "attribute {attribute} is {len} characters long; RFC 5280 allows at most {max}: shorten it"
    )]
    TooLong {
        /// Which attribute.
        attribute: &'static str,
        /// Its length in characters.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// No `CN=` attribute.
    #[error("the distinguished name `{dn}` has no common name: add `CN=...`")]
    MissingCommonName {
        /// The name as given (or as found in the request).
        dn: String,
    },
    /// More than one `CN=` attribute.
    #[error("the distinguished name has {count} common names (CN): give exactly one")]
    DuplicateCommonName {
        /// How many were found.
        count: usize,
    },
    /// A character that changes how a name displays, or cannot be seen, or controls a terminal.
    #[error(
        "attribute {attribute}=`{value}` holds {character}, {reason}: remove it \
         (the value is shown with such characters escaped)"
    )]
    ForbiddenCharacter {
        /// Which attribute.
        attribute: &'static str,
        /// The value, refused characters written as `\u{...}`.
        value: String,
        /// The character, as `U+202E`.
        character: String,
        /// What kind of character it is.
        reason: &'static str,
    },
    /// An RDN with no attribute in it (a zero-length SET), which X.501 forbids.
    #[error(
        "the distinguished name has an empty RDN (RDN {position} of {count}, counting from the \
         least specific, holds no attribute), which X.501 forbids"
    )]
    EmptyRdn {
        /// Its 1-based position in DER order.
        position: usize,
        /// How many RDNs the name has.
        count: usize,
    },
    /// More RDNs than hsmsign puts in a name.
    #[error(
        "the distinguished name has {count} RDNs; hsmsign allows at most {max}: leave some out"
    )]
    TooManyRdns {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More attributes than hsmsign puts in a name.
    #[error(
        "the distinguished name has {count} attributes; hsmsign allows at most {max}: leave some out"
    )]
    TooManyAttributes {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The same attribute twice inside one multi-valued RDN.
    #[error("attribute {attribute} appears twice in the same `+` group: separate them with `,`")]
    DuplicateInRdn {
        /// Which attribute.
        attribute: &'static str,
    },
    /// An RFC 4514 string written in OpenSSL's display order (country first).
    #[error(
        "`{dn}` starts with the country: RFC 4514 strings list the most specific part first. \
         Write `{suggestion}`, or use the slash form `/C=../O=../CN=..`"
    )]
    ReversedOrder {
        /// The name as given.
        dn: String,
        /// The same attributes in RFC 4514 order.
        suggestion: String,
    },
    /// A DER Name could not be decoded.
    #[error("malformed distinguished name in {context}: {reason}")]
    Malformed {
        /// Where the name came from.
        context: &'static str,
        /// Decoder message.
        reason: String,
    },
    /// A DER Name holds an attribute hsmsign does not issue.
    #[error(
        "the distinguished name in {context} holds attribute {oid}, which hsmsign does not issue: \
         give the subject explicitly (--subject)"
    )]
    UnsupportedAttribute {
        /// Where the name came from.
        context: &'static str,
        /// Its OID.
        oid: String,
    },
}

/// The ASN.1 string type a value is encoded as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StringKind {
    Printable,
    Ia5,
    Utf8,
}

/// The attribute types hsmsign accepts in a distinguished name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttributeType {
    /// `C`, countryName (2.5.4.6).
    Country,
    /// `ST`, stateOrProvinceName (2.5.4.8).
    StateOrProvince,
    /// `L`, localityName (2.5.4.7).
    Locality,
    /// `STREET`, streetAddress (2.5.4.9).
    Street,
    /// `postalCode` (2.5.4.17).
    PostalCode,
    /// `O`, organizationName (2.5.4.10).
    Organization,
    /// `OU`, organizationalUnitName (2.5.4.11).
    OrganizationalUnit,
    /// `CN`, commonName (2.5.4.3).
    CommonName,
    /// `DC`, domainComponent (RFC 4519).
    DomainComponent,
    /// `UID`, userId (RFC 4519).
    UserId,
    /// `emailAddress` (PKCS#9; `E` and `EMAIL` accepted on input).
    EmailAddress,
    /// `serialNumber` (2.5.4.5) - the subject's, not the certificate's.
    SerialNumber,
    /// `title` (2.5.4.12).
    Title,
    /// `GN`, givenName (2.5.4.42).
    GivenName,
    /// `SN`, surname (2.5.4.4).
    Surname,
    /// `initials` (2.5.4.43).
    Initials,
}

/// Static facts about one attribute type.
struct Info {
    /// Display name (RFC 4514 / OpenSSL short name).
    name: &'static str,
    /// Other accepted spellings (case-insensitive, as is `name`).
    aliases: &'static [&'static str],
    /// Dotted OID.
    oid: &'static str,
    /// RFC 5280 appendix A upper bound, in characters.
    max: usize,
    /// Encoding.
    kind: StringKind,
}

impl AttributeType {
    /// Every type, in the order used to list them in messages.
    pub const ALL: [Self; 16] = [
        Self::CommonName,
        Self::OrganizationalUnit,
        Self::Organization,
        Self::Locality,
        Self::StateOrProvince,
        Self::Country,
        Self::Street,
        Self::PostalCode,
        Self::DomainComponent,
        Self::UserId,
        Self::EmailAddress,
        Self::SerialNumber,
        Self::Title,
        Self::GivenName,
        Self::Surname,
        Self::Initials,
    ];

    fn info(self) -> Info {
        use StringKind::*;
        let i = |name, aliases, oid, max, kind| Info {
            name,
            aliases,
            oid,
            max,
            kind,
        };
        match self {
            Self::Country => i("C", &["countryName"], "2.5.4.6", 2, Printable),
            Self::StateOrProvince => i("ST", &["S", "stateOrProvinceName"], "2.5.4.8", 128, Utf8),
            Self::Locality => i("L", &["localityName"], "2.5.4.7", 128, Utf8),
            Self::Street => i("STREET", &["streetAddress"], "2.5.4.9", 128, Utf8),
            Self::PostalCode => i("postalCode", &[], "2.5.4.17", 40, Utf8),
            Self::Organization => i("O", &["organizationName"], "2.5.4.10", 64, Utf8),
            Self::OrganizationalUnit => i("OU", &["organizationalUnitName"], "2.5.4.11", 64, Utf8),
            Self::CommonName => i("CN", &["commonName"], "2.5.4.3", 64, Utf8),
            Self::DomainComponent => i(
                "DC",
                &["domainComponent"],
                "0.9.2342.19200300.100.1.25",
                63,
                Ia5,
            ),
            Self::UserId => i("UID", &["userId"], "0.9.2342.19200300.100.1.1", 128, Utf8),
            Self::EmailAddress => i(
                "emailAddress",
                &["E", "EMAIL"],
                "1.2.840.113549.1.9.1",
                255,
                Ia5,
            ),
            Self::SerialNumber => i("serialNumber", &[], "2.5.4.5", 64, Printable),
            Self::Title => i("title", &[], "2.5.4.12", 64, Utf8),
            Self::GivenName => i("GN", &["givenName"], "2.5.4.42", 64, Utf8),
            Self::Surname => i("SN", &["surname"], "2.5.4.4", 64, Utf8),
            Self::Initials => i("initials", &[], "2.5.4.43", 64, Utf8),
        }
    }

    /// The name used when displaying, e.g. `CN` or `emailAddress`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The dotted OID.
    pub fn oid(self) -> &'static str {
        self.info().oid
    }

    /// Look a type up by any accepted spelling (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| {
            let info = t.info();
            info.name.eq_ignore_ascii_case(name)
                || info.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        })
    }

    /// Look a type up by its dotted OID.
    pub fn from_oid(oid: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.oid() == oid)
    }

    fn known_list() -> String {
        let mut names: Vec<String> = Vec::new();
        for t in Self::ALL {
            let info = t.info();
            if info.aliases.is_empty() {
                names.push(info.name.to_string());
            } else {
                names.push(format!("{} ({})", info.name, info.aliases.join(", ")));
            }
        }
        names.join(", ")
    }

    /// Check (and normalise) a value for this type.
    fn check_value(self, value: &str) -> Result<String, DnError> {
        let info = self.info();
        if value.is_empty() {
            return Err(DnError::EmptyValue {
                attribute: info.name,
            });
        }
        if let Some((c, reason)) = first_forbidden(value) {
            return Err(DnError::ForbiddenCharacter {
                attribute: info.name,
                value: escape_for_display(value),
                character: code_point(c),
                reason,
            });
        }
        if self == Self::Country {
            if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(DnError::BadCountry {
                    value: value.to_string(),
                });
            }
            return Ok(value.to_ascii_uppercase());
        }
        match info.kind {
            StringKind::Printable => {
                if !value.chars().all(is_printable_string_char) {
                    return Err(DnError::BadCharacters {
                        attribute: info.name,
                        value: value.to_string(),
                        allowed: "letters, digits, space and ' ( ) + , - . / : = ?",
                    });
                }
            }
            StringKind::Ia5 => {
                if !value.is_ascii() {
                    return Err(DnError::BadCharacters {
                        attribute: info.name,
                        value: value.to_string(),
                        allowed: "ASCII only",
                    });
                }
            }
            StringKind::Utf8 => {}
        }
        if self == Self::EmailAddress {
            let ok = value
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
                && !value.contains(' ');
            if !ok {
                return Err(DnError::BadCharacters {
                    attribute: info.name,
                    value: value.to_string(),
                    allowed: "one address of the form user@host",
                });
            }
        }
        let len = value.chars().count();
        if len > info.max {
            return Err(DnError::TooLong {
                attribute: info.name,
                len,
                max: info.max,
            });
        }
        Ok(value.to_string())
    }
}

fn is_printable_string_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c)
}

/// One attribute of a name: its type and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// The type.
    pub kind: AttributeType,
    /// The value (already checked and normalised).
    pub value: String,
}

/// A distinguished name: RDNs in DER order (least specific first, e.g. `C` before `CN`),
/// each RDN one or more attributes. Always holds exactly one common name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistinguishedName {
    rdns: Vec<Vec<Attribute>>,
}

impl DistinguishedName {
    /// Parse an RFC 4514 string (most specific first) or an OpenSSL slash string
    /// (`/C=DE/.../CN=...`, least specific first). See the module documentation.
    pub fn parse(input: &str) -> Result<Self, DnError> {
        // Only leading whitespace is cut here: a trailing space may be an escaped one
        // (`CN=x\ `); unescaped trailing spaces are dropped per value.
        let s = input.trim_start();
        if s.trim().is_empty() || s.trim() == "/" {
            return Err(DnError::Empty);
        }
        let (body, sep, reverse) = match s.strip_prefix('/') {
            Some(rest) => (rest, '/', false),
            None => (s, ',', true),
        };
        let mut rdns = parse_rdns(body, sep)?;
        if reverse {
            // The classic mistake is OpenSSL's order written with commas: a lone `C=..` first.
            // A multi-valued first RDN that happens to hold a C is a name we print ourselves.
            if rdns.len() > 1
                && rdns
                    .first()
                    .is_some_and(|rdn| rdn.len() == 1 && rdn[0].kind == AttributeType::Country)
            {
                let dn = Self { rdns: rdns.clone() };
                return Err(DnError::ReversedOrder {
                    dn: escape_for_display(s),
                    suggestion: escape_for_display(&dn.to_string()),
                });
            }
            rdns.reverse();
        }
        Self::from_rdns(rdns, s)
    }

    /// Build a name from RDNs in DER order, checking its shape (no empty RDN, no type twice in
    /// one RDN, at most [`MAX_RDNS`] RDNs and [`MAX_NAME_ATTRIBUTES`] attributes) and the
    /// common-name rule.
    fn from_rdns(rdns: Vec<Vec<Attribute>>, shown: &str) -> Result<Self, DnError> {
        if let Some(i) = rdns.iter().position(|rdn| rdn.is_empty()) {
            return Err(DnError::EmptyRdn {
                position: i + 1,
                count: rdns.len(),
            });
        }
        for rdn in &rdns {
            for (i, a) in rdn.iter().enumerate() {
                if rdn[..i].iter().any(|b| b.kind == a.kind) {
                    return Err(DnError::DuplicateInRdn {
                        attribute: a.kind.name(),
                    });
                }
            }
        }
        if rdns.len() > MAX_RDNS {
            return Err(DnError::TooManyRdns {
                count: rdns.len(),
                max: MAX_RDNS,
            });
        }
        let attributes = rdns.iter().map(Vec::len).sum::<usize>();
        if attributes > MAX_NAME_ATTRIBUTES {
            return Err(DnError::TooManyAttributes {
                count: attributes,
                max: MAX_NAME_ATTRIBUTES,
            });
        }
        let cn_count = rdns
            .iter()
            .flatten()
            .filter(|a| a.kind == AttributeType::CommonName)
            .count();
        match cn_count {
            0 => Err(DnError::MissingCommonName {
                dn: escape_for_display(shown),
            }),
            1 => Ok(Self { rdns }),
            count => Err(DnError::DuplicateCommonName { count }),
        }
    }

    /// Read a DER `Name` (e.g. a CSR's subject). Every attribute must be one of
    /// [`AttributeType`] with a string value that passes the same checks as [`Self::parse`].
    /// `context` names the source in errors (e.g. "the certificate request").
    pub fn from_der(der: &[u8], context: &'static str) -> Result<Self, DnError> {
        let name = Name::from_der(der).map_err(|e| DnError::Malformed {
            context,
            reason: e.to_string(),
        })?;
        let mut rdns = Vec::new();
        for rdn in name.iter_rdn() {
            let mut attrs = Vec::new();
            for atav in rdn.as_ref().iter() {
                let oid = atav.oid.to_string();
                let kind = AttributeType::from_oid(&oid)
                    .ok_or(DnError::UnsupportedAttribute { context, oid })?;
                let value = any_to_string(&atav.value).ok_or_else(|| DnError::Malformed {
                    context,
                    reason: format!("{} is not a character string", kind.name()),
                })?;
                attrs.push(Attribute {
                    kind,
                    value: kind.check_value(&value)?,
                });
            }
            rdns.push(attrs);
        }
        let shown = describe_name_der(der);
        Self::from_rdns(rdns, &shown)
    }

    /// The DER encoding of the `Name`.
    pub fn to_der(&self) -> Result<Vec<u8>, DnError> {
        let bad = |e: der::Error| DnError::Malformed {
            context: "encoding",
            reason: e.to_string(),
        };
        let mut seq = Vec::with_capacity(self.rdns.len());
        for rdn in &self.rdns {
            let mut set = Vec::with_capacity(rdn.len());
            for a in rdn {
                let info = a.kind.info();
                let tag = match info.kind {
                    StringKind::Printable => Tag::PrintableString,
                    StringKind::Ia5 => Tag::Ia5String,
                    StringKind::Utf8 => Tag::Utf8String,
                };
                set.push(AttributeTypeAndValue {
                    oid: der::asn1::ObjectIdentifier::new(info.oid)
                        .map_err(|_| bad(der::ErrorKind::OidMalformed.into()))?,
                    value: Any::new(tag, a.value.as_bytes()).map_err(bad)?,
                });
            }
            seq.push(SetOfVec::try_from(set).map_err(bad)?);
        }
        seq.to_der().map_err(bad)
    }

    /// The RDNs in DER order (least specific first).
    pub fn rdns(&self) -> &[Vec<Attribute>] {
        &self.rdns
    }

    /// The common name.
    pub fn common_name(&self) -> &str {
        self.rdns
            .iter()
            .flatten()
            .find(|a| a.kind == AttributeType::CommonName)
            .map(|a| a.value.as_str())
            .unwrap_or_default()
    }

    /// The OpenSSL slash form, least specific first (`/C=DE/O=.../CN=...`).
    pub fn to_slash_form(&self) -> String {
        let mut out = String::new();
        for rdn in &self.rdns {
            out.push('/');
            let parts: Vec<String> = rdn
                .iter()
                .map(|a| format!("{}={}", a.kind.name(), escape_value(&a.value, "/+\\\"")))
                .collect();
            out.push_str(&parts.join("+"));
        }
        out
    }
}

impl fmt::Display for DistinguishedName {
    /// RFC 4514: most specific RDN first, `,` between RDNs, `+` inside one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rdns: Vec<String> = self
            .rdns
            .iter()
            .rev()
            .map(|rdn| {
                rdn.iter()
                    .map(|a| format!("{}={}", a.kind.name(), escape_value(&a.value, ",+\"\\<>;")))
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect();
        f.write_str(&rdns.join(","))
    }
}

impl std::str::FromStr for DistinguishedName {
    type Err = DnError;
    fn from_str(s: &str) -> Result<Self, DnError> {
        Self::parse(s)
    }
}

/// RFC 4514 2.4 escaping: the given special characters anywhere, a leading `#` or space,
/// a trailing space, and control, bidirectional and invisible characters as `\XX` (so a name
/// from elsewhere, e.g. an imported CA certificate, cannot disguise itself on screen).
fn escape_value(value: &str, specials: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let edge_space = c == ' ' && (i == 0 || i == last);
        if specials.contains(c) || edge_space || (i == 0 && c == '#') {
            out.push('\\');
            out.push(c);
        } else if forbidden_reason(c).is_some() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Decode a DirectoryString-like value to text: UTF8String, PrintableString, IA5String,
/// TeletexString (read as Latin-1), BMPString.
fn any_to_string(value: &Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            String::from_utf8(bytes.to_vec()).ok()
        }
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// Render any DER `Name` as an RFC 4514 string for messages. Never fails: unknown attributes
/// appear by OID, non-string values as `#hex`, undecodable input as a placeholder.
pub fn describe_name_der(der: &[u8]) -> String {
    let Ok(name) = Name::from_der(der) else {
        return "(undecodable name)".to_string();
    };
    let rdns: Vec<String> = name
        .iter_rdn()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|rdn| {
            rdn.as_ref()
                .iter()
                .map(|atav| {
                    let oid = atav.oid.to_string();
                    let label = AttributeType::from_oid(&oid)
                        .map(|t| t.name().to_string())
                        .unwrap_or(oid);
                    let value = match any_to_string(&atav.value) {
                        Some(s) => escape_value(&s, ",+\"\\<>;"),
                        None => format!(
                            "#{}",
                            crate::encoding::hex(&atav.value.to_der().unwrap_or_default())
                        ),
                    };
                    format!("{label}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.join(",")
}

/// Split `body` into RDNs at unescaped, unquoted `sep`, each RDN into attributes at `+`.
/// Returns the RDNs in written order.
fn parse_rdns(body: &str, sep: char) -> Result<Vec<Vec<Attribute>>, DnError> {
    let chars: Vec<char> = body.chars().collect();
    let mut pos = 0;
    let mut rdns = Vec::new();
    let mut current: Vec<Attribute> = Vec::new();
    loop {
        let (attr, end) = parse_ava(&chars, pos, sep)?;
        if current.iter().any(|a| a.kind == attr.kind) {
            return Err(DnError::DuplicateInRdn {
                attribute: attr.kind.name(),
            });
        }
        current.push(attr);
        match chars.get(end) {
            None => {
                rdns.push(std::mem::take(&mut current));
                break;
            }
            Some('+') => pos = end + 1,
            Some(_) => {
                rdns.push(std::mem::take(&mut current));
                pos = end + 1;
            }
        }
    }
    Ok(rdns)
}

/// Parse one `type=value` starting at `start`; returns it and the index of the character that
/// ended it (`sep`, `+`, or the end of input).
fn parse_ava(chars: &[char], start: usize, sep: char) -> Result<(Attribute, usize), DnError> {
    let snippet = |from: usize, to: usize| -> String {
        let to = to.min(chars.len());
        let from = from.min(to);
        escape_for_display(chars[from..to].iter().collect::<String>().trim())
    };
    // The attribute type, up to '='.
    let mut i = start;
    while i < chars.len() && chars[i] != '=' && chars[i] != sep && chars[i] != '+' {
        i += 1;
    }
    if i >= chars.len() || chars[i] != '=' {
        let part = snippet(start, i);
        let reason = if part.is_empty() {
            "an empty component (two separators in a row, or one at the end)".to_string()
        } else {
            "missing `=` between attribute and value (a `,` or `+` inside a value must be \
             escaped as `\\,` or `\\+`)"
                .to_string()
        };
        return Err(DnError::Syntax {
            part: if part.is_empty() {
                snippet(start.saturating_sub(8), start + 8)
            } else {
                part
            },
            reason,
        });
    }
    let type_name = snippet(start, i);
    if type_name.is_empty() {
        return Err(DnError::Syntax {
            part: snippet(start, i + 8),
            reason: "missing attribute name before `=`".into(),
        });
    }
    let kind = AttributeType::from_name(&type_name).ok_or_else(|| {
        if type_name.chars().all(|c| c.is_ascii_digit() || c == '.') {
            DnError::UnknownAttribute {
                name: format!("{type_name} (attributes given by OID are not supported)"),
                known: AttributeType::known_list(),
            }
        } else {
            DnError::UnknownAttribute {
                name: escape_for_display(&type_name),
                known: AttributeType::known_list(),
            }
        }
    })?;
    i += 1;
    // The value.
    while i < chars.len() && chars[i] == ' ' {
        i += 1;
    }
    let mut bytes: Vec<u8> = Vec::new();
    let mut keep = 0; // length of `bytes` without trailing unescaped spaces
    let push_char = |bytes: &mut Vec<u8>, c: char| {
        let mut buf = [0u8; 4];
        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    if chars.get(i) == Some(&'#') {
        return Err(DnError::Syntax {
            part: snippet(start, i + 12),
            reason: "hex-encoded (`#...`) values are not supported: write the value as text, \
                     or escape a leading `#` as `\\#`"
                .into(),
        });
    }
    if chars.get(i) == Some(&'"') {
        // A quoted value (RFC 2253 legacy): everything up to the closing quote is literal
        // except `\` escapes.
        i += 1;
        loop {
            match chars.get(i) {
                None => {
                    return Err(DnError::Syntax {
                        part: snippet(start, i),
                        reason: "unterminated `\"` quote".into(),
                    });
                }
                Some('"') => {
                    i += 1;
                    break;
                }
                Some('\\') => {
                    i = unescape(chars, i, &mut bytes, start)?;
                }
                Some(&c) => {
                    push_char(&mut bytes, c);
                    i += 1;
                }
            }
        }
        while i < chars.len() && chars[i] == ' ' {
            i += 1;
        }
        if i < chars.len() && chars[i] != sep && chars[i] != '+' {
            return Err(DnError::Syntax {
                part: snippet(start, i + 1),
                reason: "text after the closing quote".into(),
            });
        }
    } else {
        while i < chars.len() && chars[i] != sep && chars[i] != '+' {
            match chars[i] {
                '\\' => {
                    i = unescape(chars, i, &mut bytes, start)?;
                    keep = bytes.len();
                }
                '"' => {
                    return Err(DnError::Syntax {
                        part: snippet(start, i + 1),
                        reason: "a `\"` inside a value must be escaped as `\\\"`".into(),
                    });
                }
                c => {
                    push_char(&mut bytes, c);
                    if c != ' ' {
                        keep = bytes.len();
                    }
                    i += 1;
                }
            }
        }
        bytes.truncate(keep);
    }
    let value = String::from_utf8(bytes).map_err(|_| DnError::Syntax {
        part: snippet(start, i),
        reason: "`\\XX` escapes do not form valid UTF-8".into(),
    })?;
    let value = kind.check_value(&value)?;
    Ok((Attribute { kind, value }, i))
}

/// Handle a `\` at `chars[i]`: `\XX` (two hex digits, one byte) or `\c` (the character
/// itself). Returns the index after the escape.
fn unescape(chars: &[char], i: usize, bytes: &mut Vec<u8>, start: usize) -> Result<usize, DnError> {
    let part = || {
        escape_for_display(
            &chars[start..(i + 3).min(chars.len())]
                .iter()
                .collect::<String>(),
        )
    };
    let Some(&next) = chars.get(i + 1) else {
        return Err(DnError::Syntax {
            part: part(),
            reason: "a `\\` at the end of the value escapes nothing".into(),
        });
    };
    if next.is_ascii_hexdigit() {
        let Some(&low) = chars.get(i + 2).filter(|c| c.is_ascii_hexdigit()) else {
            return Err(DnError::Syntax {
                part: part(),
                reason: "`\\` followed by a hex digit needs two hex digits (e.g. `\\2C`)".into(),
            });
        };
        let hex: String = [next, low].iter().collect();
        let byte = u8::from_str_radix(&hex, 16).map_err(|_| DnError::Syntax {
            part: part(),
            reason: "bad hex escape".into(),
        })?;
        bytes.push(byte);
        Ok(i + 3)
    } else {
        let mut buf = [0u8; 4];
        bytes.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
        Ok(i + 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dn: &DistinguishedName) -> Vec<String> {
        dn.rdns()
            .iter()
            .map(|rdn| {
                rdn.iter()
                    .map(|a| format!("{}={}", a.kind.name(), a.value))
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect()
    }

    #[test]
    fn rfc4514_is_reversed_into_der_order() {
        let dn = DistinguishedName::parse(
            "CN=JS7 Root CA, OU=IT Operations, O=SOS, L=Berlin, ST=Berlin, C=DE",
        )
        .unwrap();
        assert_eq!(
            names(&dn),
            [
                "C=DE",
                "ST=Berlin",
                "L=Berlin",
                "O=SOS",
                "OU=IT Operations",
                "CN=JS7 Root CA"
            ]
        );
        assert_eq!(dn.common_name(), "JS7 Root CA");
        assert_eq!(
            dn.to_string(),
            "CN=JS7 Root CA,OU=IT Operations,O=SOS,L=Berlin,ST=Berlin,C=DE"
        );
        assert_eq!(
            dn.to_slash_form(),
            "/C=DE/ST=Berlin/L=Berlin/O=SOS/OU=IT Operations/CN=JS7 Root CA"
        );
    }

    #[test]
    fn slash_form_keeps_written_order_and_equals_rfc4514() {
        let a = DistinguishedName::parse("/C=DE/ST=Berlin/O=SOS, Inc./CN=agent-1").unwrap();
        let b = DistinguishedName::parse("CN=agent-1,O=SOS\\, Inc.,ST=Berlin,C=DE").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_der().unwrap(), b.to_der().unwrap());
        assert_eq!(names(&a)[2], "O=SOS, Inc.");
    }

    #[test]
    fn openssl_prints_the_der_order() {
        // The DER we produce, read by openssl, shows C first and CN last.
        let dn = DistinguishedName::parse("CN=x\\+y, OU=IT, O=SOS, C=de").unwrap();
        let der = dn.to_der().unwrap();
        assert_eq!(describe_name_der(&der), "CN=x\\+y,OU=IT,O=SOS,C=DE");
        let name = Name::from_der(&der).unwrap();
        assert_eq!(name.to_string(), "CN=x\\+y,OU=IT,O=SOS,C=DE");
        let first = name.iter_rdn().next().unwrap();
        let atav = first.as_ref().iter().next().unwrap();
        assert_eq!(atav.oid.to_string(), "2.5.4.6");
        assert_eq!(atav.value.tag(), Tag::PrintableString);
    }

    #[test]
    fn missing_cn_is_refused() {
        let err = DistinguishedName::parse("O=SOS, C=DE").unwrap_err();
        assert!(matches!(err, DnError::MissingCommonName { .. }), "{err}");
        assert!(err.to_string().contains("CN="));
        let err = DistinguishedName::parse("CN=a,CN=b").unwrap_err();
        assert_eq!(err, DnError::DuplicateCommonName { count: 2 });
    }

    #[test]
    fn malformed_strings_name_the_bad_part() {
        for (input, part) in [
            ("CN=ok, O SOS", "O SOS"),
            ("CN=ok,,O=x", ""),
            ("CN=ok, O=\"unterminated", "O=\"unterminated"),
            ("CN=trailing\\", "CN=trailing\\"),
            ("CN=a\\4", "CN=a\\4"),
            ("CN=#0403616263", "CN=#0403616263"),
        ] {
            match DistinguishedName::parse(input) {
                Err(DnError::Syntax { part: got, .. }) => {
                    assert!(got.contains(part), "{input}: part {got:?}")
                }
                other => panic!("{input}: {other:?}"),
            }
        }
        assert_eq!(DistinguishedName::parse("  "), Err(DnError::Empty));
        assert!(matches!(
            DistinguishedName::parse("CN=x, O="),
            Err(DnError::EmptyValue { attribute: "O" })
        ));
    }

    #[test]
    fn unknown_attribute_is_named_and_known_ones_listed() {
        let err = DistinguishedName::parse("CN=x, FOO=bar").unwrap_err();
        let DnError::UnknownAttribute { name, known } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(name, "FOO");
        assert!(known.contains("CN") && known.contains("emailAddress (E, EMAIL)"));
        assert!(err.to_string().contains("`FOO`"));
    }

    #[test]
    fn country_must_be_two_letters() {
        for bad in ["DEU", "D", "1A", "D\u{e9}"] {
            let err = DistinguishedName::parse(&format!("CN=x, C={bad}")).unwrap_err();
            assert!(matches!(err, DnError::BadCountry { .. }), "{bad}: {err}");
        }
        let dn = DistinguishedName::parse("/C=de/CN=x").unwrap();
        assert_eq!(names(&dn)[0], "C=DE");
    }

    #[test]
    fn a_printed_multi_valued_rdn_with_a_country_parses_back() {
        // Found by the `dn` fuzz target: printed as `O=A+C=DE,CN=slas`, which was refused.
        let dn = DistinguishedName::parse("/CN=slas/O=A+C=DE").unwrap();
        let again = DistinguishedName::parse(&dn.to_string()).unwrap();
        assert_eq!(again.to_der().unwrap(), dn.to_der().unwrap());
    }

    #[test]
    fn country_first_in_comma_form_is_refused_with_the_fix() {
        let err = DistinguishedName::parse("C=DE, O=SOS, CN=x").unwrap_err();
        let DnError::ReversedOrder { suggestion, .. } = &err else {
            panic!("{err:?}")
        };
        // The suggestion, parsed, is the name the user meant.
        let meant = DistinguishedName::parse(suggestion).unwrap();
        assert_eq!(names(&meant), ["C=DE", "O=SOS", "CN=x"]);
    }

    #[test]
    fn escaping_round_trips() {
        let tricky = [
            "a,b",
            "a+b",
            "quote\"d",
            "back\\slash",
            "#hash",
            " lead",
            "trail ",
            "semi;colon<>",
            "Grüße",
            "a/b",
            "eq=ual",
        ];
        for v in tricky {
            let dn = DistinguishedName::parse(&format!("CN={},O=x", escape_value(v, ",+\"\\<>;")))
                .unwrap();
            assert_eq!(dn.common_name(), v);
            let again = DistinguishedName::parse(&dn.to_string()).unwrap();
            assert_eq!(again, dn, "{v}: {dn}");
            let slash = DistinguishedName::parse(&dn.to_slash_form()).unwrap();
            assert_eq!(slash, dn, "{v}: {}", dn.to_slash_form());
            let der = dn.to_der().unwrap();
            assert_eq!(DistinguishedName::from_der(&der, "test").unwrap(), dn);
        }
        // Hex escapes form UTF-8; quoted values are literal.
        let dn = DistinguishedName::parse("CN=Gr\\C3\\BC\\C3\\9Fe").unwrap();
        assert_eq!(dn.common_name(), "Grüße");
        let dn = DistinguishedName::parse("CN=\"a, b + c\", O=x").unwrap();
        assert_eq!(dn.common_name(), "a, b + c");
        assert!(DistinguishedName::parse("CN=\\FF").is_err());
    }

    #[test]
    fn multi_valued_rdns_and_repeated_types() {
        let dn = DistinguishedName::parse("OU=Sales+CN=J. Smith, DC=example, DC=net").unwrap();
        assert_eq!(names(&dn), ["DC=net", "DC=example", "OU=Sales+CN=J. Smith"]);
        assert_eq!(dn.to_string(), "OU=Sales+CN=J. Smith,DC=example,DC=net");
        let der = dn.to_der().unwrap();
        let back = DistinguishedName::from_der(&der, "test").unwrap();
        // DER sorts the SET, so compare as sets per RDN.
        assert_eq!(back.rdns().len(), 3);
        assert_eq!(back.rdns()[2].len(), 2);
        assert!(matches!(
            DistinguishedName::parse("OU=a+OU=b,CN=x"),
            Err(DnError::DuplicateInRdn { attribute: "OU" })
        ));
    }

    #[test]
    fn aliases_and_string_types() {
        let dn = DistinguishedName::parse(
            "commonName=x, E=ops@example.com, serialNumber=A-1, S=Bayern, GN=Jo, SN=Doe",
        )
        .unwrap();
        assert_eq!(
            names(&dn),
            [
                "SN=Doe",
                "GN=Jo",
                "ST=Bayern",
                "serialNumber=A-1",
                "emailAddress=ops@example.com",
                "CN=x"
            ]
        );
        assert!(matches!(
            DistinguishedName::parse("CN=x, serialNumber=a_b"),
            Err(DnError::BadCharacters { .. })
        ));
        assert!(matches!(
            DistinguishedName::parse("CN=x, E=nobody"),
            Err(DnError::BadCharacters { .. })
        ));
        let long = "x".repeat(65);
        assert_eq!(
            DistinguishedName::parse(&format!("CN={long}")),
            Err(DnError::TooLong {
                attribute: "CN",
                len: 65,
                max: 64
            })
        );
    }

    #[test]
    fn from_der_refuses_unknown_attributes() {
        // A name with an attribute we do not issue (pseudonym, 2.5.4.65).
        let set = SetOfVec::try_from(vec![AttributeTypeAndValue {
            oid: der::asn1::ObjectIdentifier::new_unwrap("2.5.4.65"),
            value: Any::new(Tag::Utf8String, b"p".as_slice()).unwrap(),
        }])
        .unwrap();
        let der = vec![set].to_der().unwrap();
        let err = DistinguishedName::from_der(&der, "the certificate request").unwrap_err();
        assert!(err.to_string().contains("2.5.4.65"), "{err}");
        assert_eq!(describe_name_der(&der), "2.5.4.65=p");
    }

    /// The DER of a Name from RDNs of (OID, tag, value) triples; an empty RDN is a zero-length
    /// SET, which `SetOfVec` itself would allow.
    fn raw_name(rdns: &[&[(&str, Tag, &[u8])]]) -> Vec<u8> {
        let mut seq = Vec::new();
        for rdn in rdns {
            let set = SetOfVec::try_from(
                rdn.iter()
                    .map(|(oid, tag, value)| AttributeTypeAndValue {
                        oid: der::asn1::ObjectIdentifier::new_unwrap(oid),
                        value: Any::new(*tag, *value).unwrap(),
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap();
            seq.push(set);
        }
        seq.to_der().unwrap()
    }

    const CN: &str = "2.5.4.3";
    const O: &str = "2.5.4.10";
    const OU: &str = "2.5.4.11";

    #[test]
    fn an_empty_rdn_in_der_is_refused() {
        // `CN=x, ` as keytool shows it: a zero-length SET after the CN.
        let der = raw_name(&[&[(CN, Tag::Utf8String, b"x")], &[]]);
        let err = DistinguishedName::from_der(&der, "the certificate request").unwrap_err();
        assert_eq!(
            err,
            DnError::EmptyRdn {
                position: 2,
                count: 2
            }
        );
        assert!(err.to_string().contains("X.501"), "{err}");
        // Also first, or between others.
        let der = raw_name(&[
            &[],
            &[(O, Tag::Utf8String, b"o")],
            &[(CN, Tag::Utf8String, b"x")],
        ]);
        assert!(matches!(
            DistinguishedName::from_der(&der, "r"),
            Err(DnError::EmptyRdn { position: 1, .. })
        ));
    }

    #[test]
    fn empty_values_and_repeated_types_in_one_rdn_from_der_are_refused() {
        let der = raw_name(&[&[(O, Tag::Utf8String, b"")], &[(CN, Tag::Utf8String, b"x")]]);
        assert_eq!(
            DistinguishedName::from_der(&der, "r"),
            Err(DnError::EmptyValue { attribute: "O" })
        );
        let der = raw_name(&[
            &[(OU, Tag::Utf8String, b"a"), (OU, Tag::Utf8String, b"b")],
            &[(CN, Tag::Utf8String, b"x")],
        ]);
        assert_eq!(
            DistinguishedName::from_der(&der, "r"),
            Err(DnError::DuplicateInRdn { attribute: "OU" })
        );
    }

    #[test]
    fn empty_components_on_the_command_line_are_refused() {
        for input in [
            "CN=x,,O=y",
            "CN=x,",
            ",CN=x",
            "CN=x, ,O=y",
            "CN=x+",
            "CN=x++O=y",
            "/C=DE//CN=x",
            "/CN=x/",
            "/CN=x+/O=y",
        ] {
            let err = DistinguishedName::parse(input).unwrap_err();
            assert!(matches!(err, DnError::Syntax { .. }), "{input}: {err:?}");
        }
        for input in ["CN=", "CN=x, O=", "CN=x, O=  ", "/CN=x/O="] {
            let err = DistinguishedName::parse(input).unwrap_err();
            assert!(
                matches!(err, DnError::EmptyValue { .. }),
                "{input}: {err:?}"
            );
        }
    }

    #[test]
    fn names_are_limited_to_16_rdns_and_16_attributes() {
        let ous = |n: usize| {
            (0..n)
                .map(|i| format!("OU=u{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert!(DistinguishedName::parse(&format!("CN=x,{}", ous(15))).is_ok());
        assert_eq!(
            DistinguishedName::parse(&format!("CN=x,{}", ous(16))),
            Err(DnError::TooManyRdns { count: 17, max: 16 })
        );
        // Attributes count inside multi-valued RDNs too.
        let wide =
            "CN=x+OU=a+O=b+L=c+ST=d+STREET=e+postalCode=f+UID=g+title=h+GN=i+SN=j+initials=k";
        assert!(DistinguishedName::parse(&format!("{wide},DC=a,DC=b,DC=c,DC=d")).is_ok());
        assert_eq!(
            DistinguishedName::parse(&format!("{wide},DC=a,DC=b,DC=c,DC=d,DC=e")),
            Err(DnError::TooManyAttributes { count: 17, max: 16 })
        );
        // And from DER.
        let rdns: Vec<Vec<(&str, Tag, &[u8])>> = (0..20)
            .map(|_| vec![(O, Tag::Utf8String, b"o".as_slice())])
            .chain([vec![(CN, Tag::Utf8String, b"x".as_slice())]])
            .collect();
        let refs: Vec<&[(&str, Tag, &[u8])]> = rdns.iter().map(Vec::as_slice).collect();
        assert!(matches!(
            DistinguishedName::from_der(&raw_name(&refs), "r"),
            Err(DnError::TooManyRdns { count: 21, .. })
        ));
    }

    #[test]
    fn bidi_zero_width_and_control_characters_are_refused_shown_escaped() {
        for (input, shown) in [
            ("CN=\u{202e}gpj.exe", r"\u{202e}gpj.exe"),
            ("CN=a\u{200b}b, O=x", r"a\u{200b}b"),
            ("CN=x, O=\u{2066}y", r"\u{2066}y"),
            ("CN=x, C=D\u{202e}", r"D\u{202e}"),
            ("CN=bell\u{7}", r"bell\u{7}"),
            ("CN=x\u{feff}", r"x\u{feff}"),
            // The same character written as RFC 4514 hex escapes.
            (r"CN=\E2\80\AEgpj.exe", r"\u{202e}gpj.exe"),
        ] {
            let err = DistinguishedName::parse(input).unwrap_err();
            let DnError::ForbiddenCharacter { value, .. } = &err else {
                panic!("{input:?}: {err:?}")
            };
            assert_eq!(value, shown, "{input:?}");
            let text = err.to_string();
            assert!(first_forbidden(&text).is_none(), "{text:?}");
            assert!(text.contains(shown) && text.contains("U+"), "{text}");
        }
        // From a DER name (a CSR's subject), the same.
        let der = raw_name(&[&[(CN, Tag::Utf8String, "\u{202e}gpj.exe".as_bytes())]]);
        let err = DistinguishedName::from_der(&der, "r").unwrap_err();
        assert!(err.to_string().contains(r"\u{202e}gpj.exe"), "{err}");
        assert!(err.to_string().contains("U+202E"), "{err}");
        // Ordinary non-ASCII letters are fine.
        assert!(DistinguishedName::parse("CN=Jürgen Müller, O=Straße AG, L=東京").is_ok());
    }

    #[test]
    fn names_from_elsewhere_show_hidden_characters_escaped() {
        // A CA certificate made elsewhere may carry what hsmsign refuses; its subject is shown
        // with those characters as RFC 4514 hex escapes.
        let der = raw_name(&[&[(CN, Tag::Utf8String, "\u{202e}gpj.exe\u{200b}".as_bytes())]]);
        assert_eq!(describe_name_der(&der), r"CN=\E2\80\AEgpj.exe\E2\80\8B");
    }
}
