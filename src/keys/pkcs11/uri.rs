//! RFC 7512 PKCS#11 URIs: `pkcs11:token=JS7%20Root;object=root-ca?module-path=/x.so`.

use std::fmt;
use std::path::PathBuf;

/// What an URI could not be parsed for.
#[derive(Debug, thiserror::Error)]
#[error(
    "malformed PKCS#11 URI {input:?}: {reason} (at {part:?}). Expected e.g. pkcs11:token=JS7%20Root;object=root-ca (RFC 7512)"
)]
pub struct UriError {
    /// The URI as given.
    pub input: String,
    /// The offending part.
    pub part: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The object class named by `type=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    /// `type=private`
    Private,
    /// `type=public`
    Public,
    /// `type=cert`
    Cert,
    /// `type=secret-key`
    SecretKey,
    /// `type=data`
    Data,
}

impl ObjectType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Public => "public",
            Self::Cert => "cert",
            Self::SecretKey => "secret-key",
            Self::Data => "data",
        }
    }
}

/// A parsed PKCS#11 URI. Every field is optional; absent fields match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// CKA token label (`token=`).
    pub token: Option<String>,
    /// Token manufacturer (`manufacturer=`).
    pub manufacturer: Option<String>,
    /// Token model (`model=`).
    pub model: Option<String>,
    /// Token serial number (`serial=`).
    pub serial: Option<String>,
    /// Slot id (`slot-id=`, decimal).
    pub slot_id: Option<u64>,
    /// Object label, CKA_LABEL (`object=`).
    pub object: Option<String>,
    /// Object id, CKA_ID bytes (`id=%01%02`).
    pub id: Option<Vec<u8>>,
    /// Object class (`type=`).
    pub object_type: Option<ObjectType>,
    /// Query `module-path=`.
    pub module_path: Option<PathBuf>,
    /// Query `pin-source=` (a PIN source spelling, see [`crate::keys::pin::PinSource`]).
    pub pin_source: Option<String>,
    /// Query `pin-value=`: only honoured with an explicit opt-in; never printed, wiped on drop.
    pub pin_value: Option<PinValue>,
}

/// A PIN given inside an URI. `Debug` does not show it; it is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct PinValue(pub zeroize::Zeroizing<String>);

impl fmt::Debug for PinValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinValue([elided])")
    }
}

impl Pkcs11Uri {
    /// Parse an URI; errors name the offending part.
    pub fn parse(input: &str) -> Result<Self, UriError> {
        let err = |part: &str, reason: &str| UriError {
            input: redact_input(input),
            part: if part == input {
                redact_input(part)
            } else {
                redact(part)
            },
            reason: reason.to_string(),
        };
        let rest = input
            .strip_prefix("pkcs11:")
            .ok_or_else(|| err(input, "does not start with \"pkcs11:\""))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Self::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| err(attr, "attribute without '='"))?;
            let bytes = pct_decode(value).map_err(|r| err(attr, &r))?;
            let text = || String::from_utf8(bytes.clone()).map_err(|_| err(attr, "not UTF-8"));
            let dup = |attr: &str| err(attr, "attribute given twice");
            match name {
                "token" => set(&mut uri.token, text()?).map_err(|_| dup(attr))?,
                "manufacturer" => set(&mut uri.manufacturer, text()?).map_err(|_| dup(attr))?,
                "model" => set(&mut uri.model, text()?).map_err(|_| dup(attr))?,
                "serial" => set(&mut uri.serial, text()?).map_err(|_| dup(attr))?,
                "object" => set(&mut uri.object, text()?).map_err(|_| dup(attr))?,
                "id" => set(&mut uri.id, bytes.clone()).map_err(|_| dup(attr))?,
                "slot-id" => {
                    let n = text()?
                        .parse::<u64>()
                        .map_err(|_| err(attr, "slot-id must be a decimal number"))?;
                    set(&mut uri.slot_id, n).map_err(|_| dup(attr))?
                }
                "type" => {
                    let t = match text()?.as_str() {
                        "private" => ObjectType::Private,
                        "public" => ObjectType::Public,
                        "cert" => ObjectType::Cert,
                        "secret-key" => ObjectType::SecretKey,
                        "data" => ObjectType::Data,
                        _ => {
                            return Err(err(
                                attr,
                                "type must be private, public, cert, secret-key or data",
                            ));
                        }
                    };
                    set(&mut uri.object_type, t).map_err(|_| dup(attr))?
                }
                // Library and slot descriptions are accepted and ignored: they never select more
                // narrowly than the attributes above in practice.
                "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-description"
                | "slot-manufacturer" => {}
                n if n.starts_with("x-") => {}
                _ => {
                    return Err(err(
                        attr,
                        "unknown attribute (known: token, manufacturer, model, serial, slot-id, object, id, type)",
                    ));
                }
            }
        }
        for q in query.into_iter().flat_map(|q| q.split('&')) {
            if q.is_empty() {
                continue;
            }
            let (name, value) = q
                .split_once('=')
                .ok_or_else(|| err(q, "query attribute without '='"))?;
            let bytes = pct_decode(value).map_err(|r| err(q, &r))?;
            let text = String::from_utf8(bytes).map_err(|_| err(q, "not UTF-8"))?;
            let dup = || err(q, "query attribute given twice");
            match name {
                "module-path" => {
                    set(&mut uri.module_path, PathBuf::from(text)).map_err(|_| dup())?
                }
                "pin-source" => set(&mut uri.pin_source, text).map_err(|_| dup())?,
                "pin-value" => set(&mut uri.pin_value, PinValue(zeroize::Zeroizing::new(text)))
                    .map_err(|_| dup())?,
                "module-name" => {}
                n if n.starts_with("x-") => {}
                _ => {
                    return Err(err(
                        q,
                        "unknown query attribute (known: module-path, pin-source, pin-value)",
                    ));
                }
            }
        }
        Ok(uri)
    }

    /// The URI of the token only (token attributes kept, object attributes dropped).
    pub fn token_part(&self) -> Self {
        Self {
            token: self.token.clone(),
            manufacturer: self.manufacturer.clone(),
            model: self.model.clone(),
            serial: self.serial.clone(),
            slot_id: self.slot_id,
            module_path: self.module_path.clone(),
            ..Default::default()
        }
    }

    /// The token part, keeping the PIN source and value: for logging in to the token of a key
    /// that does not exist yet.
    pub fn token_part_with_pin(&self, from: &Self) -> Self {
        Self {
            pin_source: from.pin_source.clone(),
            pin_value: from.pin_value.clone(),
            ..self.token_part()
        }
    }

    /// True when the URI names an object (by label or id).
    pub fn names_object(&self) -> bool {
        self.object.is_some() || self.id.is_some()
    }
}

fn set<T>(slot: &mut Option<T>, value: T) -> Result<(), ()> {
    if slot.is_some() {
        return Err(());
    }
    *slot = Some(value);
    Ok(())
}

/// [`redact`] for a whole input: one that is not an URI at all may be a PIN typed where a key
/// was expected, so it is not shown.
fn redact_input(s: &str) -> String {
    if !s.starts_with("pkcs11:") && !s.contains('=') {
        return "(not shown, in case it is a PIN)".into();
    }
    redact(s)
}

/// Never echo a PIN back in an error message: the value of any attribute whose name, in any
/// case or percent-encoding, mentions a PIN (`pin-value`, `PIN-VALUE`, `pin%2Dvalue`,
/// `pin-source`: a mistyped `pin-source=123456` is a PIN too) is hidden, each time it occurs.
fn redact(s: &str) -> String {
    let (path, query) = match s.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (s, None),
    };
    let hide = |attr: &str| -> String {
        let Some((name, _)) = attr.split_once('=') else {
            return attr.to_string();
        };
        let plain = pct_decode(name)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_else(|| name.to_string())
            .to_ascii_lowercase();
        if !plain.contains("pin") {
            attr.to_string()
        } else {
            format!("{name}=***")
        }
    };
    let mut text = path.split(';').map(hide).collect::<Vec<_>>().join(";");
    if let Some(q) = query {
        text.push('?');
        text.push_str(&q.split('&').map(hide).collect::<Vec<_>>().join("&"));
    }
    text
}

fn pct_decode(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Percent-encode everything but RFC 3986 unreserved characters (plus `:` and `@`, allowed in
/// a pchar), as RFC 7512 section 2.3 recommends for canonical output.
fn pct_encode(bytes: &[u8], out: &mut String) {
    for &c in bytes {
        if c.is_ascii_alphanumeric() || b"-._~:@".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
}

/// Every byte percent-encoded: the canonical form of `id=`.
fn pct_encode_all(bytes: &[u8], out: &mut String) {
    for &c in bytes {
        out.push_str(&format!("%{c:02x}"));
    }
}

impl fmt::Display for Pkcs11Uri {
    /// The canonical URI. `pin-value` is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::from("pkcs11:");
        let mut parts: Vec<String> = Vec::new();
        let mut text = |name: &str, v: &Option<String>| {
            if let Some(v) = v {
                let mut p = format!("{name}=");
                pct_encode(v.as_bytes(), &mut p);
                parts.push(p);
            }
        };
        text("model", &self.model);
        text("manufacturer", &self.manufacturer);
        text("serial", &self.serial);
        text("token", &self.token);
        text("object", &self.object);
        if let Some(id) = &self.id {
            let mut p = String::from("id=");
            pct_encode_all(id, &mut p);
            parts.push(p);
        }
        if let Some(t) = self.object_type {
            parts.push(format!("type={}", t.as_str()));
        }
        if let Some(n) = self.slot_id {
            parts.push(format!("slot-id={n}"));
        }
        s.push_str(&parts.join(";"));
        let mut query: Vec<String> = Vec::new();
        if let Some(p) = &self.module_path {
            let mut q = String::from("module-path=");
            pct_encode(p.to_string_lossy().as_bytes(), &mut q);
            // '/' is allowed unescaped in a query.
            query.push(q.replace("%2F", "/"));
        }
        if let Some(p) = &self.pin_source {
            // A pin-source that is not a source may be a PIN typed in the wrong place.
            if crate::keys::pin::PinSource::parse(p).is_ok() {
                let mut q = String::from("pin-source=");
                pct_encode(p.as_bytes(), &mut q);
                query.push(q.replace("%2F", "/"));
            } else {
                query.push("pin-source=***".into());
            }
        }
        if !query.is_empty() {
            s.push('?');
            s.push_str(&query.join("&"));
        }
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_and_query() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=JS7%20Root;object=root-ca;id=%01%a2;type=private?module-path=/usr/lib/x.so&pin-source=file:/run/pin",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("JS7 Root"));
        assert_eq!(u.object.as_deref(), Some("root-ca"));
        assert_eq!(u.id.as_deref(), Some(&[0x01, 0xa2][..]));
        assert_eq!(u.object_type, Some(ObjectType::Private));
        assert_eq!(u.module_path, Some(PathBuf::from("/usr/lib/x.so")));
        assert_eq!(u.pin_source.as_deref(), Some("file:/run/pin"));
        // Canonical form round-trips.
        let again = Pkcs11Uri::parse(&u.to_string()).unwrap();
        assert_eq!(again, u);
        assert_eq!(
            u.to_string(),
            "pkcs11:token=JS7%20Root;object=root-ca;id=%01%a2;type=private?module-path=/usr/lib/x.so&pin-source=file:/run/pin"
        );
    }

    #[test]
    fn errors_name_the_bad_part() {
        for (input, part) in [
            ("pkcs:token=a", "pkcs:token=a"),
            ("pkcs11:token", "token"),
            ("pkcs11:tokn=a", "tokn=a"),
            ("pkcs11:id=%zz", "id=%zz"),
            ("pkcs11:slot-id=x", "slot-id=x"),
            ("pkcs11:token=a;token=b", "token=b"),
            ("pkcs11:type=secret", "type=secret"),
            ("pkcs11:token=a?foo=1", "foo=1"),
        ] {
            let e = Pkcs11Uri::parse(input).unwrap_err();
            assert_eq!(e.part, part, "{input}: {e}");
        }
    }

    #[test]
    fn pin_value_never_printed() {
        let u = Pkcs11Uri::parse("pkcs11:token=a?pin-value=1234").unwrap();
        assert_eq!(u.pin_value.as_ref().map(|p| p.0.as_str()), Some("1234"));
        assert!(!format!("{u:?}").contains("1234"));
        assert!(!u.to_string().contains("1234"));
        let e = Pkcs11Uri::parse("pkcs11:token=a?pin-value=1234&bogus=1").unwrap_err();
        assert!(!e.to_string().contains("1234"), "{e}");
    }

    #[test]
    fn no_pin_is_ever_echoed_in_errors() {
        for input in [
            "pkcs11:token=a?pin-value=1234&pin-value=5678",
            "pkcs11:token=a?PIN-VALUE=5678",
            "pkcs11:token=a?pin%2Dvalue=5678",
            "pkcs11:token=a;pin-value=5678",
            "pkcs11:token=a;Pin-Value=5678",
            "pkcs11:token=a?pin-source=5678&bogus=1",
            "pkcs11:token=a?pin-value=5678&module-path=/x%zz",
            "5678",
        ] {
            let e = Pkcs11Uri::parse(input).unwrap_err().to_string();
            assert!(!e.contains("5678"), "{input}: {e}");
        }
        // What is not secret still names the problem.
        let e = Pkcs11Uri::parse("pkcs11:token=a?module-path=/x%zz").unwrap_err();
        assert!(e.to_string().contains("/x%zz"), "{e}");
    }
}
