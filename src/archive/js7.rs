//! What differs between JS7 versions when a Controller or Agent checks signatures, and what JOC
//! Cockpit's import skips or refuses (JS7 format notes, section 6, read from JS7 2.5-2.9).
//!
//! - `js7.configuration.allow-expired-certificates` exists from 2.5.13, 2.7.7, 2.8.2 and 2.9.0
//!   and defaults to yes; earlier versions (all of 2.6) check every certificate's validity:
//!   trusted ones when the directory is loaded, the signer's with each object.
//! - From 2.5.9 an unreadable (or, where expiry is checked, expired) file in the trusted
//!   directory is skipped on its own, and of several certificates with one subject DN only the
//!   one valid longest is kept; before 2.5.9 one such file disables X.509 verification.
//! - Object names follow JS7's name rule (`Js7NameValidator`): a Unicode identifier start or a
//!   digit, then identifier parts, `-` or `.`, not ending in `.`; JOC also refuses `..`, `--` and
//!   a leading `_`, `.` or `-`.

use std::fmt;

use super::ArchiveError;

/// A JS7 release, `MAJOR.MINOR.PATCH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Js7Version(pub u16, pub u16, pub u16);

impl Js7Version {
    /// The newest behaviour hsmsign models (JS7 2.9): the default.
    pub const NEWEST: Self = Self(2, 9, 0);

    /// Parse `X.Y.Z` (also `X.Y`, meaning `X.Y.0`). Only JS7 2.x is known.
    pub fn parse(s: &str) -> Result<Self, ArchiveError> {
        let bad = |reason: &str| ArchiveError::Js7Version {
            given: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.trim().split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad("write it as MAJOR.MINOR.PATCH, e.g. 2.7.6"));
        }
        let num = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| bad("each part is a number, e.g. 2.7.6"))
        };
        let v = Self(
            num(parts[0])?,
            num(parts[1])?,
            parts.get(2).map(|p| num(p)).transpose()?.unwrap_or(0),
        );
        if v.0 != 2 {
            return Err(bad(
                "hsmsign knows the rules of JS7 2.x (Security Level High with X.509 signatures)",
            ));
        }
        if v > Self(2, 99, 0) {
            return Err(bad("not a JS7 release"));
        }
        Ok(v)
    }

    /// True from the release that introduced `allow-expired-certificates` on its line.
    pub fn has_allow_expired_setting(self) -> bool {
        match (self.0, self.1) {
            (2, 5) => self >= Self(2, 5, 13),
            (2, 6) => false,
            (2, 7) => self >= Self(2, 7, 7),
            (2, 8) => self >= Self(2, 8, 2),
            (2, m) => m >= 9,
            _ => false,
        }
    }

    /// True from 2.5.9: bad trusted files are skipped one by one and duplicate DNs reduced to
    /// the certificate valid longest.
    pub fn skips_bad_trusted_files(self) -> bool {
        self >= Self(2, 5, 9)
    }
}

impl fmt::Display for Js7Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// How one Controller or Agent decides: its version and its expiry setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NodePolicy {
    /// The node's JS7 version.
    pub version: Js7Version,
    /// `js7.configuration.allow-expired-certificates` (only where the setting exists).
    pub allow_expired: bool,
}

impl Default for NodePolicy {
    fn default() -> Self {
        Self {
            version: Js7Version::NEWEST,
            allow_expired: true,
        }
    }
}

impl NodePolicy {
    /// A node of `version` (default: the newest) with `allow_expired` (default: the version's
    /// default). Asking for expired certificates to be allowed on a version without the setting
    /// is an error: such a node always checks expiry.
    pub fn new(
        version: Option<Js7Version>,
        allow_expired: Option<bool>,
    ) -> Result<Self, ArchiveError> {
        let version = version.unwrap_or(Js7Version::NEWEST);
        let has = version.has_allow_expired_setting();
        if allow_expired == Some(true) && !has {
            return Err(ArchiveError::Js7Version {
                given: version.to_string(),
                reason: "has no allow-expired-certificates setting (added in 2.5.13, 2.7.7, 2.8.2 and 2.9.0; none in 2.6): it always checks expiry, so allow-expired=yes cannot apply".into(),
            });
        }
        Ok(Self {
            version,
            allow_expired: has && allow_expired.unwrap_or(true),
        })
    }

    /// True if this node refuses expired (or not yet valid) certificates.
    pub fn checks_expiry(&self) -> bool {
        !self.allow_expired
    }

    /// One line for reports.
    pub fn describe(&self) -> String {
        let expiry = if self.checks_expiry() {
            if self.version.has_allow_expired_setting() {
                "expired certificates refused (allow-expired-certificates = no)"
            } else {
                "expired certificates refused (no allow-expired-certificates setting before 2.5.13 / 2.7.7 / 2.8.2)"
            }
        } else {
            "expired certificates allowed (allow-expired-certificates = yes, the default)"
        };
        format!("JS7 {}: {expiry}", self.version)
    }
}

/// The object types of a JS7 export, by extension (the signed ones first).
pub const OBJECT_SUFFIXES: [&str; 12] = [
    ".workflow.json",
    ".jobresource.json",
    ".lock.json",
    ".noticeboard.json",
    ".jobclass.json",
    ".fileordersource.json",
    ".schedule.json",
    ".calendar.json",
    ".jobtemplate.json",
    ".includescript.json",
    ".report.json",
    ".jobscript.json",
];

/// `yes`/`true` or `no`/`false`, as `--allow-expired-certificates` and a node's
/// `allow-expired=` take it.
pub fn parse_yes_no(option: &str, v: &str) -> Result<bool, String> {
    match v {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("{option} {v:?}: give yes or no")),
    }
}

/// One node of `--node NAME=DIR[,version=X.Y.Z][,allow-expired=yes|no]`: its name, its
/// trusted directory as written, and its version and expiry setting (each `version` /
/// `allow` when the node leaves it out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// The node's name.
    pub name: String,
    /// Its trusted-x509-keys directory (or PEM file), as written.
    pub dir: String,
    /// Its JS7 version.
    pub version: Option<Js7Version>,
    /// Its allow-expired-certificates setting.
    pub allow_expired: Option<bool>,
}

impl NodeSpec {
    /// Parse one `--node` value.
    pub fn parse(
        spec: &str,
        version: Option<Js7Version>,
        allow_expired: Option<bool>,
    ) -> Result<Self, String> {
        let usage = |why: &str| {
            format!("--node {spec:?}: {why}; write NAME=DIR[,version=X.Y.Z][,allow-expired=yes|no]")
        };
        let mut parts = spec.split(',');
        let (name, dir) = parts
            .next()
            .and_then(|p| p.split_once('='))
            .filter(|(n, d)| !n.is_empty() && !d.is_empty())
            .ok_or_else(|| usage("no NAME=DIR"))?;
        let mut node = Self {
            name: name.to_string(),
            dir: dir.to_string(),
            version,
            allow_expired,
        };
        for p in parts {
            match p.split_once('=') {
                Some(("version", v)) => {
                    node.version = Some(Js7Version::parse(v).map_err(|e| usage(&e.to_string()))?);
                }
                Some(("allow-expired", v)) => {
                    node.allow_expired = Some(parse_yes_no("allow-expired", v)?);
                }
                _ => return Err(usage(&format!("unknown part {p:?}"))),
            }
        }
        Ok(node)
    }
}

/// The object's base name, if `entry` is a JS7 object file (`dir/NAME.type.json`).
pub fn object_base(entry: &str) -> Option<&str> {
    let file = entry.rsplit('/').next().unwrap_or(entry);
    OBJECT_SUFFIXES.iter().find_map(|s| file.strip_suffix(s))
}

/// Why `name` is not a name JS7 accepts, if it is not.
pub fn name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Some("the name is empty".into());
    };
    if first == '_' || first == '.' || first == '-' {
        return Some(format!("{name:?} starts with {first:?}"));
    }
    if !(is_id_start(first) || first.is_ascii_digit()) {
        return Some(format!("{name:?} starts with {}", escaped(first)));
    }
    if let Some(bad) = name
        .chars()
        .find(|&c| !(is_id_part(c) || c == '-' || c == '.'))
    {
        return Some(format!("{name:?} contains {}", escaped(bad)));
    }
    if name.ends_with('.') {
        return Some(format!("{name:?} ends with '.'"));
    }
    for twice in ["..", "--"] {
        if name.contains(twice) {
            return Some(format!("{name:?} contains {twice:?}"));
        }
    }
    None
}

/// Java's `isUnicodeIdentifierStart` (or a character outside the BMP, which JS7 takes whole).
fn is_id_start(c: char) -> bool {
    unicode_ident::is_xid_start(c) || u32::from(c) > 0xFFFF
}

/// Java's `isUnicodeIdentifierPart && !isIdentifierIgnorable` (or outside the BMP).
fn is_id_part(c: char) -> bool {
    (unicode_ident::is_xid_continue(c) && !c.is_control()) || u32::from(c) > 0xFFFF
}

fn escaped(c: char) -> String {
    if c.is_control() || c.is_whitespace() || !c.is_alphanumeric() && !c.is_ascii_graphic() {
        format!("U+{:04X}", u32::from(c))
    } else {
        format!("{c:?}")
    }
}

/// What JOC Cockpit's import would skip or refuse in one entry: an object whose base name is
/// not a valid JS7 name, whose content is not UTF-8, or whose JSON does not parse.
pub fn lint_entry(name: &str, data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let Some(base) = object_base(name) else {
        return out;
    };
    if let Some(p) = name_problem(base) {
        out.push(format!(
            "{name}: {p}; JOC Cockpit skips objects whose name is not a valid JS7 name"
        ));
    }
    match std::str::from_utf8(data) {
        Err(e) => out.push(format!(
            "{name}: not UTF-8 text (invalid byte at offset {}); JS7 reads the signed content as UTF-8, so it cannot round-trip",
            e.valid_up_to()
        )),
        Ok(text) => {
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
                out.push(format!(
                    "{name}: the JSON does not parse ({e}); JOC Cockpit refuses the import"
                ));
            }
        }
    }
    out
}

/// What JOC Cockpit's import would refuse in `meta_inf` (or `None` when it is missing).
pub fn lint_meta_inf(data: Option<&[u8]>) -> Vec<String> {
    let Some(data) = data else {
        return vec![
            "meta_inf: missing; JOC Cockpit's import needs the meta_inf entry of an export for signing (with its versionId)".into(),
        ];
    };
    let parsed: Result<serde_json::Value, _> = serde_json::from_slice(data);
    match parsed {
        Err(e) => vec![format!("meta_inf: the JSON does not parse ({e})")],
        Ok(v) => match v.get("versionId").and_then(|x| x.as_str()) {
            Some(id) if !id.trim().is_empty() => Vec::new(),
            _ => vec![
                "meta_inf: no versionId; JOC Cockpit deploys a signed archive under its versionId (once per Controller)".into(),
            ],
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_their_expiry_rules() {
        let v = |s| Js7Version::parse(s).unwrap();
        for (s, has) in [
            ("2.5.12", false),
            ("2.5.13", true),
            ("2.6.9", false),
            ("2.7.6", false),
            ("2.7.7", true),
            ("2.8.1", false),
            ("2.8.2", true),
            ("2.9.0", true),
            ("2.9", true),
        ] {
            assert_eq!(v(s).has_allow_expired_setting(), has, "{s}");
        }
        assert!(!v("2.5.8").skips_bad_trusted_files());
        assert!(v("2.5.9").skips_bad_trusted_files());
        for bad in ["", "2", "x.y.z", "1.9.0", "2.7.6.1", "3.0.0"] {
            assert!(Js7Version::parse(bad).is_err(), "{bad}");
        }
        // The setting's default is yes where it exists; elsewhere expiry is always checked.
        assert!(
            !NodePolicy::new(Some(v("2.9.0")), None)
                .unwrap()
                .checks_expiry()
        );
        assert!(
            NodePolicy::new(Some(v("2.9.0")), Some(false))
                .unwrap()
                .checks_expiry()
        );
        assert!(
            NodePolicy::new(Some(v("2.7.6")), None)
                .unwrap()
                .checks_expiry()
        );
        assert!(NodePolicy::new(Some(v("2.7.6")), Some(true)).is_err());
    }

    #[test]
    fn names_as_js7_checks_them() {
        for ok in [
            "a",
            "a12",
            "a_",
            "a-b",
            "a.b",
            "a-",
            "1",
            "Daily-eod_2",
            "åäö",
            "漢字",
            "🍏",
        ] {
            assert_eq!(name_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "_",
            "_a",
            "-a",
            ".a",
            "a.",
            "a b",
            "a$",
            "a/b",
            "a:b",
            "a\u{1}",
            "a..b",
            "a--b",
            "a\u{202e}b",
        ] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
        assert_eq!(object_base("A/B/eod.v2.workflow.json"), Some("eod.v2"));
        assert_eq!(object_base("A/B/notes.txt"), None);
    }

    #[test]
    fn entries_joc_would_skip_or_refuse() {
        assert!(lint_entry("a/ok.workflow.json", br#"{"TYPE":"Workflow"}"#).is_empty());
        let l = lint_entry("a/bad name.workflow.json", br#"{"TYPE":"Workflow"}"#);
        assert!(l[0].contains("not a valid JS7 name"), "{l:?}");
        let l = lint_entry("a/x.lock.json", b"{\"TYPE\":\"Lock\"");
        assert!(l[0].contains("does not parse"), "{l:?}");
        let l = lint_entry("a/x.workflow.json", b"{\"n\":\"\xff\"}");
        assert!(l[0].contains("not UTF-8"), "{l:?}");
        assert!(lint_meta_inf(None)[0].contains("missing"));
        assert!(lint_meta_inf(Some(br#"{"jocVersion":"2.7.2"}"#))[0].contains("versionId"));
        assert!(lint_meta_inf(Some(br#"{"versionId":"6f1c"}"#)).is_empty());
    }
}
