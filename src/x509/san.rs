//! Subject alternative names (RFC 5280 4.2.1.6): `--san DNS:host,IP:1.2.3.4,URI:...,email:...`.
//!
//! Host names follow RFC 1123 (letters, digits, `-`; labels of 1..63 characters, 253 in all).
//! A wildcard is allowed only as the whole leftmost label, with at least two labels after it
//! (`*.example.com`). Names are stored in lower case. Internationalised names must be given in
//! their `xn--` form. At most [`MAX_SANS`] entries go into one certificate; a `URI:` may be
//! [`MAX_URI_LEN`] characters long, an `email:` [`MAX_EMAIL_LEN`]. Control, bidirectional and
//! invisible characters are refused with the entry shown escaped (`\u{202e}`).

use std::fmt;
use std::net::IpAddr;

use der::asn1::{Ia5String, OctetString};
use x509_cert::ext::pkix::name::GeneralName;

use super::limits::{
    MAX_EMAIL_LEN, MAX_SANS, MAX_URI_LEN, code_point, escape_for_display, first_forbidden,
};

/// Errors in subject alternative names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SanError {
    /// An entry without a `TYPE:` prefix.
    #[error(
        "subject alternative name `{entry}` has no type: write DNS:{entry} for a host name \
         or IP:{entry} for an address"
    )]
    MissingType {
        /// The entry as given.
        entry: String,
    },
    /// An unknown `TYPE:` prefix.
    #[error(
        "subject alternative name `{entry}` has unknown type `{kind}`: use DNS:, IP:, URI: or email:"
    )]
    UnknownType {
        /// The entry as given.
        entry: String,
        /// The type as written.
        kind: String,
    },
    /// A host name that breaks RFC 1123 or the wildcard rule.
    #[error("DNS name `{name}` is not valid: {reason}")]
    BadDnsName {
        /// The name as given.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// An IP address that does not parse.
    #[error("`{value}` is not an IPv4 or IPv6 address (write IP:192.0.2.1 or IP:2001:db8::1)")]
    BadIp {
        /// The value as given.
        value: String,
    },
    /// A URI without scheme or with characters outside ASCII.
    #[error("URI `{value}` is not valid: {reason}")]
    BadUri {
        /// The value as given.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An e-mail address that is not `local@host`.
    #[error("e-mail address `{value}` is not valid: {reason}")]
    BadEmail {
        /// The value as given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The same entry twice.
    #[error("subject alternative name {entry} is given twice: give it once")]
    Duplicate {
        /// The entry.
        entry: String,
    },
    /// A control, bidirectional or invisible character.
    #[error(
        "subject alternative name `{entry}` holds {character}, {reason}: remove it \
         (the entry is shown with such characters escaped)"
    )]
    ForbiddenCharacter {
        /// The entry, refused characters written as `\u{...}`.
        entry: String,
        /// The character, as `U+202E`.
        character: String,
        /// What kind of character it is.
        reason: &'static str,
    },
    /// More entries than one certificate may carry.
    #[error(
        "{count} subject alternative names were given; a certificate may carry at most {max}: \
         issue several certificates, or use a wildcard"
    )]
    TooMany {
        /// How many (counted up to the first one too many when reading a list).
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A GeneralName kind hsmsign does not issue (in a CSR or certificate).
    #[error(
        "subject alternative name of type {kind} is not supported (only DNS, IP, URI and email): \
         give the names explicitly with --san"
    )]
    Unsupported {
        /// The GeneralName choice.
        kind: &'static str,
    },
}

/// One subject alternative name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SanEntry {
    /// `DNS:` a host name (lower case), possibly `*.` wildcard.
    Dns(String),
    /// `IP:` an IPv4 or IPv6 address.
    Ip(IpAddr),
    /// `URI:` an absolute URI.
    Uri(String),
    /// `email:` an RFC 822 address.
    Email(String),
}

impl SanEntry {
    /// Parse one `TYPE:value` entry (type case-insensitive: DNS, IP, URI, email).
    pub fn parse(entry: &str) -> Result<Self, SanError> {
        let entry = entry.trim();
        refuse_forbidden(entry)?;
        let Some((kind, value)) = entry.split_once(':') else {
            return Err(SanError::MissingType {
                entry: entry.to_string(),
            });
        };
        let value = value.trim();
        match kind.trim().to_ascii_lowercase().as_str() {
            "dns" => Ok(Self::Dns(check_dns_name(value, true)?)),
            "ip" | "ip address" => {
                value
                    .parse::<IpAddr>()
                    .map(Self::Ip)
                    .map_err(|_| SanError::BadIp {
                        value: value.to_string(),
                    })
            }
            "uri" => Ok(Self::Uri(check_uri(value)?)),
            "email" | "rfc822" | "rfc822name" => Ok(Self::Email(check_email(value)?)),
            other => {
                // `host:port` or a bare IPv6 address is not a type.
                if entry.parse::<IpAddr>().is_ok() {
                    Err(SanError::MissingType {
                        entry: entry.to_string(),
                    })
                } else {
                    Err(SanError::UnknownType {
                        entry: entry.to_string(),
                        kind: other.to_string(),
                    })
                }
            }
        }
    }

    /// Parse a comma-separated list; refuses duplicates and more than [`MAX_SANS`] entries
    /// (empty entries are skipped).
    pub fn parse_list(list: &str) -> Result<Vec<Self>, SanError> {
        let mut out: Vec<Self> = Vec::new();
        let items: Vec<&str> = list.split(',').filter(|i| !i.trim().is_empty()).collect();
        check_count(items.len())?;
        for item in items {
            let entry = Self::parse(item)?;
            if out.contains(&entry) {
                return Err(SanError::Duplicate {
                    entry: entry.to_string(),
                });
            }
            out.push(entry);
        }
        Ok(out)
    }

    /// The GeneralName for the certificate.
    pub(crate) fn to_general_name(&self) -> Result<GeneralName, der::Error> {
        Ok(match self {
            Self::Dns(s) => GeneralName::DnsName(Ia5String::new(s)?),
            Self::Ip(ip) => GeneralName::IpAddress(OctetString::new(match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            })?),
            Self::Uri(s) => GeneralName::UniformResourceIdentifier(Ia5String::new(s)?),
            Self::Email(s) => GeneralName::Rfc822Name(Ia5String::new(s)?),
        })
    }

    /// Read a GeneralName back (from a CSR or a certificate), validating it like input.
    pub(crate) fn from_general_name(name: &GeneralName) -> Result<Self, SanError> {
        match name {
            GeneralName::DnsName(s)
            | GeneralName::UniformResourceIdentifier(s)
            | GeneralName::Rfc822Name(s) => refuse_forbidden(s.as_str())?,
            _ => {}
        }
        match name {
            GeneralName::DnsName(s) => Ok(Self::Dns(check_dns_name(s.as_str(), true)?)),
            GeneralName::IpAddress(o) => {
                let b = o.as_bytes();
                if let Ok(v4) = <[u8; 4]>::try_from(b) {
                    Ok(Self::Ip(IpAddr::from(v4)))
                } else if let Ok(v6) = <[u8; 16]>::try_from(b) {
                    Ok(Self::Ip(IpAddr::from(v6)))
                } else {
                    Err(SanError::BadIp {
                        value: crate::encoding::hex(b),
                    })
                }
            }
            GeneralName::UniformResourceIdentifier(s) => Ok(Self::Uri(check_uri(s.as_str())?)),
            GeneralName::Rfc822Name(s) => Ok(Self::Email(check_email(s.as_str())?)),
            GeneralName::OtherName(_) => Err(SanError::Unsupported { kind: "otherName" }),
            GeneralName::DirectoryName(_) => Err(SanError::Unsupported {
                kind: "directoryName",
            }),
            GeneralName::EdiPartyName(_) => Err(SanError::Unsupported {
                kind: "ediPartyName",
            }),
            GeneralName::RegisteredId(_) => Err(SanError::Unsupported {
                kind: "registeredID",
            }),
        }
    }
}

/// Refuse `count` entries if that is more than [`MAX_SANS`].
pub fn check_count(count: usize) -> Result<(), SanError> {
    if count > MAX_SANS {
        return Err(SanError::TooMany {
            count,
            max: MAX_SANS,
        });
    }
    Ok(())
}

/// Refuse control, bidirectional and invisible characters anywhere in `text`.
fn refuse_forbidden(text: &str) -> Result<(), SanError> {
    match first_forbidden(text) {
        Some((c, reason)) => Err(SanError::ForbiddenCharacter {
            entry: escape_for_display(text),
            character: code_point(c),
            reason,
        }),
        None => Ok(()),
    }
}

impl fmt::Display for SanEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(s) => write!(f, "DNS:{s}"),
            Self::Ip(ip) => write!(f, "IP:{ip}"),
            Self::Uri(s) => write!(f, "URI:{s}"),
            Self::Email(s) => write!(f, "email:{s}"),
        }
    }
}

impl std::str::FromStr for SanEntry {
    type Err = SanError;
    fn from_str(s: &str) -> Result<Self, SanError> {
        Self::parse(s)
    }
}

/// Check an RFC 1123 host name; `wildcard` allows `*` as the whole leftmost label.
/// Returns it in lower case.
fn check_dns_name(name: &str, wildcard: bool) -> Result<String, SanError> {
    let bad = |reason: &str| SanError::BadDnsName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if !name.is_ascii() {
        return Err(bad(
            "it holds non-ASCII characters: give internationalised names in their xn-- form",
        ));
    }
    if name.ends_with('.') {
        return Err(bad("remove the trailing dot"));
    }
    if name.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err(bad(&format!(
            "this is an IP address: write IP:{name} instead"
        )));
    }
    let labels: Vec<&str> = name.split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if label.is_empty() {
            return Err(bad("empty label (two dots in a row or a leading dot)"));
        }
        if label.contains('*') {
            if !wildcard {
                return Err(bad("wildcards are not allowed here"));
            }
            if i != 0 || *label != "*" {
                return Err(bad(
                    "a wildcard is allowed only as the whole leftmost label, like *.example.com",
                ));
            }
            if labels.len() < 3 {
                return Err(bad(
                    "a wildcard needs at least two labels after it, like *.example.com",
                ));
            }
            continue;
        }
        if label.len() > 63 {
            return Err(bad(&format!(
                "label `{label}` is longer than 63 characters"
            )));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(bad(&format!(
                "`{c}` is not allowed (letters, digits and `-` only)"
            )));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad(&format!("label `{label}` starts or ends with `-`")));
        }
    }
    if labels.len() > 1
        && labels
            .last()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("the last label is all digits, which no host name has"));
    }
    Ok(name.to_ascii_lowercase())
}

fn check_uri(value: &str) -> Result<String, SanError> {
    let bad = |reason| SanError::BadUri {
        value: value.to_string(),
        reason,
    };
    if !value.is_ascii() || value.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(bad(
            "only printable ASCII without spaces (percent-encode the rest)",
        ));
    }
    if value.len() > MAX_URI_LEN {
        return Err(SanError::BadUri {
            value: format!("{}...", &value[..40]),
            reason: "it is longer than 1024 characters, the most hsmsign puts in a certificate",
        });
    }
    let Some((scheme, rest)) = value.split_once(':') else {
        return Err(bad("it has no scheme (write e.g. URI:https://host/path)"));
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err(bad("the scheme before `:` is not valid"));
    }
    if rest.is_empty() {
        return Err(bad("nothing follows the scheme"));
    }
    Ok(value.to_string())
}

fn check_email(value: &str) -> Result<String, SanError> {
    let bad = |reason: String| SanError::BadEmail {
        value: value.to_string(),
        reason,
    };
    if value.chars().count() > MAX_EMAIL_LEN {
        return Err(SanError::BadEmail {
            value: format!("{}...", value.chars().take(40).collect::<String>()),
            reason: format!(
                "it is longer than {MAX_EMAIL_LEN} characters, the most an address may have"
            ),
        });
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err(bad("it has no `@`".into()));
    };
    if local.is_empty() || local.contains('@') {
        return Err(bad(
            "it needs exactly one `@` with a local part before it".into()
        ));
    }
    if !local.is_ascii() || local.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(bad(
            "the local part must be printable ASCII without spaces".into()
        ));
    }
    let domain = check_dns_name(domain, false).map_err(|e| bad(e.to_string()))?;
    Ok(format!("{local}@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_mixed_list() {
        let list = SanEntry::parse_list(
            "DNS:Agent-1.Example.com, IP:192.0.2.7,ip:2001:db8::1,URI:https://js7.example.com/x,email:ops@example.com,dns:*.svc.example.com",
        )
        .unwrap();
        let shown: Vec<String> = list.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "DNS:agent-1.example.com",
                "IP:192.0.2.7",
                "IP:2001:db8::1",
                "URI:https://js7.example.com/x",
                "email:ops@example.com",
                "DNS:*.svc.example.com",
            ]
        );
        // Round trip through GeneralName.
        for e in &list {
            let gn = e.to_general_name().unwrap();
            assert_eq!(&SanEntry::from_general_name(&gn).unwrap(), e);
        }
        assert_eq!(
            SanEntry::parse("DNS:localhost").unwrap(),
            SanEntry::Dns("localhost".into())
        );
    }

    #[test]
    fn refuses_bad_host_names() {
        for bad in [
            "DNS:",
            "DNS:a..b",
            "DNS:-a.example.com",
            "DNS:a-.example.com",
            "DNS:a_b.example.com",
            "DNS:*.com",
            "DNS:a.*.example.com",
            "DNS:f*.example.com",
            "DNS:**.example.com",
            "DNS:example.com.",
            "DNS:bücher.example",
            "DNS:1.2.3.4",
            "DNS:host.123",
        ] {
            let err = SanEntry::parse(bad).unwrap_err();
            assert!(matches!(err, SanError::BadDnsName { .. }), "{bad}: {err}");
        }
        let long_label = format!("DNS:{}.example.com", "a".repeat(64));
        assert!(SanEntry::parse(&long_label).is_err());
        let long_name = format!("DNS:{}", vec!["a".repeat(60); 5].join("."));
        assert!(SanEntry::parse(&long_name).is_err());
    }

    #[test]
    fn refuses_bad_ips_uris_emails_and_types() {
        assert!(matches!(
            SanEntry::parse("IP:300.1.1.1"),
            Err(SanError::BadIp { .. })
        ));
        assert!(matches!(
            SanEntry::parse("IP:[::1]"),
            Err(SanError::BadIp { .. })
        ));
        assert!(matches!(
            SanEntry::parse("URI:/relative/path"),
            Err(SanError::BadUri { .. })
        ));
        assert!(matches!(
            SanEntry::parse("URI:https://exa mple"),
            Err(SanError::BadUri { .. })
        ));
        assert!(matches!(
            SanEntry::parse("email:nobody"),
            Err(SanError::BadEmail { .. })
        ));
        assert!(matches!(
            SanEntry::parse("email:a@b@c.com"),
            Err(SanError::BadEmail { .. })
        ));
        assert!(matches!(
            SanEntry::parse("host.example.com"),
            Err(SanError::MissingType { .. })
        ));
        assert!(matches!(
            SanEntry::parse("XYZ:foo"),
            Err(SanError::UnknownType { .. })
        ));
        assert!(matches!(
            SanEntry::parse_list("DNS:a.example.com,DNS:A.example.com"),
            Err(SanError::Duplicate { .. })
        ));
    }

    #[test]
    fn at_most_100_names_from_the_command_line() {
        let list = |n: usize| {
            (0..n)
                .map(|i| format!("DNS:h{i}.example.com"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(SanEntry::parse_list(&list(100)).unwrap().len(), 100);
        let err = SanEntry::parse_list(&list(101)).unwrap_err();
        assert_eq!(
            err,
            SanError::TooMany {
                count: 101,
                max: 100
            }
        );
        assert!(err.to_string().contains("at most 100"), "{err}");
        // Ten thousand are refused without reading each one.
        assert!(matches!(
            SanEntry::parse_list(&list(10_000)),
            Err(SanError::TooMany { count: 10_000, .. })
        ));
        assert!(check_count(100).is_ok());
        assert!(check_count(101).is_err());
    }

    #[test]
    fn uris_and_addresses_have_length_limits() {
        let uri = format!("URI:https://example.com/{}", "a".repeat(1010));
        assert!(matches!(
            SanEntry::parse(&uri),
            Err(SanError::BadUri { .. })
        ));
        assert!(SanEntry::parse(&format!("URI:https://example.com/{}", "a".repeat(900))).is_ok());
        let email = format!("email:{}@example.com", "a".repeat(250));
        assert!(matches!(
            SanEntry::parse(&email),
            Err(SanError::BadEmail { .. })
        ));
    }

    #[test]
    fn bidi_zero_width_and_control_characters_are_refused_shown_escaped() {
        for (entry, shown) in [
            (
                "DNS:\u{202e}gpj.exe.example.com",
                r"DNS:\u{202e}gpj.exe.example.com",
            ),
            ("DNS:a\u{200b}.example.com", r"DNS:a\u{200b}.example.com"),
            (
                "email:x\u{1b}[2J@example.com",
                r"email:x\u{1b}[2J@example.com",
            ),
            ("URI:https://e.com/\u{2067}", r"URI:https://e.com/\u{2067}"),
            ("\u{202e}DNS:x.example.com", r"\u{202e}DNS:x.example.com"),
        ] {
            let err = SanEntry::parse(entry).unwrap_err();
            let SanError::ForbiddenCharacter { entry: e, .. } = &err else {
                panic!("{entry:?}: {err:?}")
            };
            assert_eq!(e, shown);
            let text = err.to_string();
            assert!(text.contains(shown) && text.contains("U+"), "{text}");
            assert!(first_forbidden(&text).is_none(), "{text:?}");
        }
        // From a request (IA5String may carry control characters).
        let gn = GeneralName::DnsName(Ia5String::new("a\u{1b}b.example.com").unwrap());
        let err = SanEntry::from_general_name(&gn).unwrap_err();
        assert!(
            matches!(err, SanError::ForbiddenCharacter { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(r"a\u{1b}b"), "{err}");
    }
}
