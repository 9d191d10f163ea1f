//! The site binding: which real token each role of a ceremony is.
//!
//! The same ceremony file serves the rehearsal and the day; only the binding differs. It comes
//! from a site file:
//!
//! ```toml
//! [role.ca-token]
//! token = "pkcs11:token=JS7%20Root"          # by label; or serial=...
//! module = "/usr/lib/softhsm/libsofthsm2.so" # optional
//! pin-source = "prompt"                       # optional: prompt, env:VAR, file:PATH, fd:N
//! ```
//!
//! or, without a site file, from the environment: `HSMSIGN_SITE_TOKEN_<ROLE>` holds the token
//! URI, `HSMSIGN_SITE_MODULE_<ROLE>` the module and `HSMSIGN_SITE_PIN_SOURCE_<ROLE>` the PIN
//! source, where `<ROLE>` is the role upper-cased with `-` as `_` (`ca-token` is `CA_TOKEN`).
//! Every role the ceremony uses must be bound, or the check fails. A site file may bind more
//! roles than one ceremony uses (one site file describes the site's tokens for all its
//! ceremonies); each extra role is reported as a note so a wrong site file stands out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::file::{FileError, KeyRef, parse_strict};
use crate::keys::pkcs11::uri::Pkcs11Uri;

/// One role's token.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Binding {
    /// The token's PKCS#11 URI (`token=` label or `serial=`), without an object.
    pub token: String,
    /// The PKCS#11 module.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<PathBuf>,
    /// Where the PIN comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_source: Option<String>,
}

/// A site file.
#[derive(Clone, Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SiteFile {
    /// Per role its token.
    #[serde(default)]
    pub role: BTreeMap<String, Binding>,
}

/// Checks a secret source's form: `prompt`, `env:VAR`, `file:PATH`, `fd:N`.
pub fn check_source(s: &str) -> Result<(), String> {
    let ok = s == "prompt"
        || s.strip_prefix("env:").is_some_and(|v| !v.is_empty())
        || s.strip_prefix("file:").is_some_and(|v| !v.is_empty())
        || s.strip_prefix("fd:")
            .is_some_and(|v| v.parse::<u32>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a secret source: use prompt, env:VAR, file:PATH or fd:N (never the secret itself)"
        ))
    }
}

fn check_binding(role: &str, b: &Binding) -> Result<(), String> {
    let uri = Pkcs11Uri::parse(&b.token).map_err(|e| {
        format!(
            "role {role:?}: token {:?} is not a PKCS#11 URI ({e}); write pkcs11:token=LABEL or pkcs11:serial=SERIAL",
            b.token
        )
    })?;
    if uri.pin_value.is_some() {
        return Err(format!(
            "role {role:?}: the token URI carries pin-value; PINs never go into a site file: remove it and give pin-source"
        ));
    }
    if uri.names_object() || uri.id.is_some() {
        return Err(format!(
            "role {role:?}: token {:?} names a key; bind the token only (the ceremony file names the keys)",
            b.token
        ));
    }
    if let Some(p) = &b.pin_source {
        check_source(p).map_err(|e| format!("role {role:?}: pin-source {e}"))?;
    }
    Ok(())
}

impl SiteFile {
    /// Reads a site file, strictly.
    pub fn read(path: &Path) -> Result<(Self, Vec<u8>), FileError> {
        let bytes = std::fs::read(path).map_err(|error| FileError::Read {
            path: path.to_owned(),
            error,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let site: Self = parse_strict(path, &text, "site role")?;
        for (role, b) in &site.role {
            check_binding(role, b).map_err(|message| {
                let offset = text.find(&format!("role.{role}")).unwrap_or(0);
                super::file::at(path, &text, offset, message)
            })?;
        }
        Ok((site, bytes))
    }

    /// The binding from the environment for the given roles (`vars` is the environment).
    pub fn from_env<'a>(
        roles: impl IntoIterator<Item = &'a str>,
        vars: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let mut site = Self::default();
        for role in roles {
            let suffix = env_suffix(role);
            if let Some(token) = vars(&format!("HSMSIGN_SITE_TOKEN_{suffix}")) {
                let b = Binding {
                    token,
                    module: vars(&format!("HSMSIGN_SITE_MODULE_{suffix}")).map(PathBuf::from),
                    pin_source: vars(&format!("HSMSIGN_SITE_PIN_SOURCE_{suffix}")),
                };
                check_binding(role, &b).map_err(|e| format!("HSMSIGN_SITE_TOKEN_{suffix}: {e}"))?;
                site.role.insert(role.to_owned(), b);
            }
        }
        Ok(site)
    }

    /// Binding `roles` with this site: the unbound roles (findings) and the roles the ceremony
    /// does not use (notes).
    pub fn findings<'a>(
        &self,
        roles: impl IntoIterator<Item = &'a str>,
        source: &str,
    ) -> (Vec<String>, Vec<String>) {
        let roles: Vec<&str> = roles.into_iter().collect();
        let mut out = Vec::new();
        let mut notes = Vec::new();
        for r in &roles {
            if !self.role.contains_key(*r) {
                out.push(format!(
                    "token role {r:?} is not bound by {source}: add [role.{r}] with token = \"pkcs11:token=...\" to the site file, or set HSMSIGN_SITE_TOKEN_{}",
                    env_suffix(r)
                ));
            }
        }
        for r in self.role.keys() {
            if !roles.contains(&r.as_str()) {
                notes.push(format!(
                    "{source} binds role {r:?}, which this ceremony does not use; make sure it is the site file meant"
                ));
            }
        }
        (out, notes)
    }
}

impl Binding {
    /// The PKCS#11 URI of a key on this role's token, as the commands' `--key` takes it: the
    /// token part of the binding, the key's label and id, and the module and PIN source as
    /// query attributes.
    pub fn key_uri(&self, key: &KeyRef) -> Result<String, String> {
        let mut uri = Pkcs11Uri::parse(&self.token)
            .map_err(|e| format!("token {:?} of role {:?}: {e}", self.token, key.token))?;
        uri.object = Some(key.label.clone());
        if let Some(hex) = &key.id {
            let bytes: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|i| {
                    hex.get(i..i + 2)
                        .and_then(|b| u8::from_str_radix(b, 16).ok())
                })
                .collect();
            uri.id = Some(bytes.ok_or_else(|| format!("key id {hex:?} is not hex bytes"))?);
        }
        if self.module.is_some() {
            uri.module_path.clone_from(&self.module);
        }
        if self.pin_source.is_some() {
            uri.pin_source.clone_from(&self.pin_source);
        }
        Ok(uri.to_string())
    }
}

/// `ca-token` -> `CA_TOKEN`.
pub fn env_suffix(role: &str) -> String {
    role.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_binding_uses_the_documented_names() {
        let site = SiteFile::from_env(["ca-token"], &|k| match k {
            "HSMSIGN_SITE_TOKEN_CA_TOKEN" => Some("pkcs11:token=Root".into()),
            "HSMSIGN_SITE_PIN_SOURCE_CA_TOKEN" => Some("env:ROOT_PIN".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            site.role["ca-token"].pin_source.as_deref(),
            Some("env:ROOT_PIN")
        );
        assert_eq!(
            site.findings(["ca-token"], "the environment"),
            (vec![], vec![])
        );
        let (f, notes) = site.findings(["ca-token", "op"], "the environment");
        assert!(notes.is_empty());
        assert_eq!(site.findings([], "x").1.len(), 1);
        assert_eq!(f.len(), 1);
        assert!(f[0].contains("HSMSIGN_SITE_TOKEN_OP"), "{f:?}");
    }

    #[test]
    fn a_key_uri_is_the_token_part_plus_label_and_id() {
        let b = Binding {
            token: "pkcs11:token=JS7%20Root".into(),
            module: Some("/usr/lib/softhsm/libsofthsm2.so".into()),
            pin_source: Some("env:PIN".into()),
        };
        let k = KeyRef {
            token: "ca-token".into(),
            label: "root key".into(),
            id: Some("0a01".into()),
        };
        let uri = b.key_uri(&k).unwrap();
        let parsed = Pkcs11Uri::parse(&uri).unwrap();
        assert_eq!(parsed.token.as_deref(), Some("JS7 Root"));
        assert_eq!(parsed.object.as_deref(), Some("root key"));
        assert_eq!(parsed.id, Some(vec![0x0a, 0x01]));
        assert_eq!(parsed.pin_source.as_deref(), Some("env:PIN"));
        assert!(
            uri.contains("module-path=/usr/lib/softhsm/libsofthsm2.so"),
            "{uri}"
        );
    }

    #[test]
    fn a_pin_value_source_is_refused() {
        assert!(check_source("1234").is_err());
        assert!(check_source("env:PIN").is_ok());
        let b = Binding {
            token: "pkcs11:token=a".into(),
            module: None,
            pin_source: Some("123456".into()),
        };
        assert!(
            check_binding("r", &b)
                .unwrap_err()
                .contains("never the secret")
        );
    }
}
