//! The ceremony file: TOML, parsed strictly.
//!
//! Every table refuses keys it does not know (`deny_unknown_fields`), and every error names the
//! file, the line and the column, and says what to do. A PIN or password value anywhere in the
//! file is refused before anything else is read: PINs come from the PIN sources hsmsign has
//! (`prompt`, `env:VAR`, `file:PATH`, `fd:N`), never from a file that is reviewed and copied.
//!
//! Each step kind is one struct whose fields are named like the flags of the command it stands
//! for (`path-len` is `--path-len`), so that a step maps field by field onto that command's
//! library request. Keys are named by token role and object label (and an optional id), never
//! by URI: the site binding (see [`super::site`]) says which real token a role is.
//!
//! Input files are either a path (relative paths are relative to the ceremony file's
//! directory) or `@STEP.FLAG`: the file an earlier step writes through its flag `FLAG`
//! (`@root.out`, `@web.pkcs12`, `@web.chain-out`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// An error reading a ceremony or site file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}; check the path")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not what the format says, at a known place.
    #[error("{path}:{line}:{column}: {message}")]
    At {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and what to do.
        message: String,
    },
}

/// A key on a token: the token's role in the ceremony and the object's label.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyRef {
    /// The token role (a key of the ceremony's `[tokens]`).
    pub token: String,
    /// CKA_LABEL of the key.
    pub label: String,
    /// CKA_ID as hex, when the label is not enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `[tokens.ROLE]`: a token the ceremony uses.
#[derive(Clone, Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TokenRole {
    /// What the token is, for the officer (e.g. "the offline root HSM").
    #[serde(default)]
    pub description: Option<String>,
}

/// A whole ceremony file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CeremonyFile {
    /// Short name.
    pub name: String,
    /// Why the ceremony is held.
    pub purpose: String,
    /// The token roles it uses.
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenRole>,
    /// The steps, in order.
    #[serde(rename = "step", default)]
    pub steps: Vec<Step>,
}

/// One step: an id, a kind, and the options of that kind's command.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Step {
    /// `key generate`.
    KeyGenerate(KeyGenerateStep),
    /// `ca init`.
    CaRoot(CaRootStep),
    /// `ca intermediate`.
    CaIntermediate(CaIntermediateStep),
    /// `ca sign-intermediate` (an external CSR).
    CaSignIntermediate(CaSignIntermediateStep),
    /// `ca import`.
    CaImport(CaImportStep),
    /// `cert issue` with `--csr` or `--key`.
    CertIssue(CertIssueStep),
    /// `cert issue --generate-key ... --pkcs12`: a PKCS#12 key bundle.
    KeyBundle(KeyBundleStep),
    /// `bundle truststore`.
    Truststore(TruststoreStep),
    /// `bundle trusted-keys`.
    TrustedKeys(TrustedKeysStep),
    /// `bundle js7-config`, written to a file.
    Js7Config(Js7ConfigStep),
    /// `cert revoke`.
    Revoke(RevokeStep),
    /// `crl generate`.
    Crl(CrlStep),
    /// `archive sign`.
    ArchiveSign(ArchiveSignStep),
    /// `archive verify`.
    ArchiveVerify(ArchiveVerifyStep),
    /// `ca export`.
    Export(ExportStep),
    /// `audit anchor`.
    AuditAnchor(AuditAnchorStep),
}

/// `key generate --key URI --algorithm ALG`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyGenerateStep {
    /// Step id.
    pub id: String,
    /// `--key`.
    pub key: KeyRef,
    /// `--algorithm`: ec-p256, ec-p384, rsa-3072, rsa-4096.
    pub algorithm: String,
    /// `--pin-policy` (YubiKey).
    #[serde(default)]
    pub pin_policy: Option<String>,
    /// `--touch-policy` (YubiKey).
    #[serde(default)]
    pub touch_policy: Option<String>,
    /// `--management-key-source` (YubiKey).
    #[serde(default)]
    pub management_key_source: Option<String>,
    /// `--allow-default-credentials` (YubiKey).
    #[serde(default)]
    pub allow_default_credentials: bool,
}

/// `ca init`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CaRootStep {
    /// Step id.
    pub id: String,
    /// `--name`.
    pub name: String,
    /// `--key`.
    pub key: KeyRef,
    /// `--subject`.
    pub subject: String,
    /// `--days`.
    #[serde(default)]
    pub days: Option<u64>,
    /// `--path-len`.
    #[serde(default)]
    pub path_len: Option<u8>,
    /// `--out`.
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// `--allow-duplicate-dn`.
    #[serde(default)]
    pub allow_duplicate_dn: bool,
}

/// `ca intermediate`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CaIntermediateStep {
    /// Step id.
    pub id: String,
    /// `--name`.
    pub name: String,
    /// `--issuer`.
    pub issuer: String,
    /// `--key`.
    pub key: KeyRef,
    /// `--subject`.
    pub subject: String,
    /// `--days`.
    #[serde(default)]
    pub days: Option<u64>,
    /// `--path-len`.
    #[serde(default)]
    pub path_len: Option<u8>,
    /// `--out`.
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// `--allow-duplicate-dn`.
    #[serde(default)]
    pub allow_duplicate_dn: bool,
}

/// `ca sign-intermediate`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CaSignIntermediateStep {
    /// Step id.
    pub id: String,
    /// `--issuer`.
    pub issuer: String,
    /// `--csr`: a path or `@step.flag`.
    pub csr: String,
    /// `--days`.
    #[serde(default)]
    pub days: Option<u64>,
    /// `--path-len`.
    #[serde(default)]
    pub path_len: Option<u8>,
    /// `--out`.
    pub out: PathBuf,
    /// `--allow-duplicate-dn`.
    #[serde(default)]
    pub allow_duplicate_dn: bool,
}

/// `ca import`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CaImportStep {
    /// Step id.
    pub id: String,
    /// `--name`.
    pub name: String,
    /// `--cert`: a path or `@step.flag`.
    pub cert: String,
    /// `--key`.
    pub key: KeyRef,
}

/// `cert issue` for a CSR (`csr`) or a key on a token (`key` + `subject`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CertIssueStep {
    /// Step id.
    pub id: String,
    /// `--ca`.
    pub ca: String,
    /// `--profile`: server, client, server-client, signing.
    pub profile: String,
    /// `--csr`: a path or `@step.flag`.
    #[serde(default)]
    pub csr: Option<String>,
    /// `--key`.
    #[serde(default)]
    pub key: Option<KeyRef>,
    /// `--subject`.
    #[serde(default)]
    pub subject: Option<String>,
    /// `--san`.
    #[serde(default)]
    pub san: Option<String>,
    /// `--days`.
    #[serde(default)]
    pub days: Option<u64>,
    /// `--out`.
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// `--chain-out`.
    #[serde(default)]
    pub chain_out: Option<PathBuf>,
    /// `--allow-duplicate-dn`.
    #[serde(default)]
    pub allow_duplicate_dn: bool,
}

/// `cert issue --generate-key ALG --pkcs12 FILE`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyBundleStep {
    /// Step id.
    pub id: String,
    /// `--ca`.
    pub ca: String,
    /// `--profile`.
    pub profile: String,
    /// `--generate-key`: the software key's algorithm.
    pub generate_key: String,
    /// `--subject`.
    pub subject: String,
    /// `--san`.
    #[serde(default)]
    pub san: Option<String>,
    /// `--days`.
    #[serde(default)]
    pub days: Option<u64>,
    /// `--pkcs12`.
    pub pkcs12: PathBuf,
    /// `--p12-password-source`.
    #[serde(default)]
    pub p12_password_source: Option<String>,
    /// `--out`.
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// `--chain-out`.
    #[serde(default)]
    pub chain_out: Option<PathBuf>,
    /// `--allow-duplicate-dn`.
    #[serde(default)]
    pub allow_duplicate_dn: bool,
}

/// `bundle truststore`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TruststoreStep {
    /// Step id.
    pub id: String,
    /// `--ca` (one or more).
    pub ca: Vec<String>,
    /// `--out`.
    pub out: PathBuf,
    /// `--pkcs12`.
    #[serde(default)]
    pub pkcs12: bool,
    /// `--password-source`.
    #[serde(default)]
    pub password_source: Option<String>,
}

/// `bundle trusted-keys`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrustedKeysStep {
    /// Step id.
    pub id: String,
    /// `--ca` (one or more).
    pub ca: Vec<String>,
    /// `--out` (a directory).
    pub out: PathBuf,
}

/// `bundle js7-config`, its snippet written to `out`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Js7ConfigStep {
    /// Step id.
    pub id: String,
    /// `--cert`: a path or `@step.flag`.
    pub cert: String,
    /// `--role`: controller or agent.
    pub role: String,
    /// `--alias`.
    #[serde(default)]
    pub alias: Option<String>,
    /// `--keystore`: a path or `@step.flag`.
    #[serde(default)]
    pub keystore: Option<String>,
    /// `--password-source`.
    #[serde(default)]
    pub password_source: Option<String>,
    /// Where the private.conf lines go.
    pub out: PathBuf,
}

/// `cert revoke`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RevokeStep {
    /// Step id.
    pub id: String,
    /// `--ca`.
    pub ca: String,
    /// `--serial` (hex).
    pub serial: String,
    /// `--reason`.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `crl generate`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CrlStep {
    /// Step id.
    pub id: String,
    /// `--ca`.
    pub ca: String,
    /// `--days`.
    #[serde(default)]
    pub days: Option<u64>,
    /// `--out`.
    pub out: PathBuf,
}

/// `archive sign`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ArchiveSignStep {
    /// Step id.
    pub id: String,
    /// `--key`.
    pub key: KeyRef,
    /// `--cert`: a path or `@step.flag`.
    pub cert: String,
    /// `--in`: a path or `@step.flag`.
    #[serde(rename = "in")]
    pub input: String,
    /// `--out`.
    pub out: PathBuf,
    /// `--algorithm`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// `--replace-signatures`.
    #[serde(default)]
    pub replace_signatures: bool,
    /// `--strict`.
    #[serde(default)]
    pub strict: bool,
    /// `--sessions`.
    #[serde(default)]
    pub sessions: Option<usize>,
}

/// `archive verify`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ArchiveVerifyStep {
    /// Step id.
    pub id: String,
    /// `--in`: a path or `@step.flag`.
    #[serde(rename = "in")]
    pub input: String,
    /// `--trusted`: a path or `@step.flag` (this or `node`).
    #[serde(default)]
    pub trusted: Option<String>,
    /// `--node NAME=DIR[,version=X.Y.Z][,allow-expired=yes|no]`, repeatable; DIR is a path or
    /// `@step.flag`.
    #[serde(default)]
    pub node: Vec<String>,
    /// `--cert`: a path or `@step.flag`.
    #[serde(default)]
    pub cert: Option<String>,
    /// `--js7-version`.
    #[serde(default)]
    pub js7_version: Option<String>,
    /// `--allow-expired-certificates`: yes or no.
    #[serde(default)]
    pub allow_expired_certificates: Option<String>,
    /// `--strict`.
    #[serde(default)]
    pub strict: bool,
}

/// `ca export`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExportStep {
    /// Step id.
    pub id: String,
    /// `--name`.
    pub name: String,
    /// `--chain`.
    #[serde(default)]
    pub chain: bool,
    /// `--out`.
    pub out: PathBuf,
}

/// `audit anchor`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuditAnchorStep {
    /// Step id.
    pub id: String,
    /// `--ca`.
    pub ca: String,
}

/// A file a step reads: a path or an earlier step's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileRef {
    /// A path as written (relative to the ceremony file's directory).
    Path(PathBuf),
    /// `@step.flag`.
    Output {
        /// The earlier step's id.
        step: String,
        /// The flag of that step that names the file (`out`, `chain-out`, `pkcs12`).
        flag: String,
    },
}

impl FileRef {
    /// Reads the convention: `@step.flag` or a path.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.strip_prefix('@') {
            Some(rest) => match rest.rsplit_once('.') {
                Some((step, flag)) if !step.is_empty() && !flag.is_empty() => Ok(Self::Output {
                    step: step.to_owned(),
                    flag: flag.to_owned(),
                }),
                _ => Err(format!(
                    "{s:?} is not an output reference: write @STEP-ID.FLAG, e.g. @root.out"
                )),
            },
            None if s.is_empty() => Err("an empty path: name a file".to_owned()),
            None => Ok(Self::Path(PathBuf::from(s))),
        }
    }
}

impl Step {
    /// The step's id.
    pub fn id(&self) -> &str {
        match self {
            Self::KeyGenerate(s) => &s.id,
            Self::CaRoot(s) => &s.id,
            Self::CaIntermediate(s) => &s.id,
            Self::CaSignIntermediate(s) => &s.id,
            Self::CaImport(s) => &s.id,
            Self::CertIssue(s) => &s.id,
            Self::KeyBundle(s) => &s.id,
            Self::Truststore(s) => &s.id,
            Self::TrustedKeys(s) => &s.id,
            Self::Js7Config(s) => &s.id,
            Self::Revoke(s) => &s.id,
            Self::Crl(s) => &s.id,
            Self::ArchiveSign(s) => &s.id,
            Self::ArchiveVerify(s) => &s.id,
            Self::Export(s) => &s.id,
            Self::AuditAnchor(s) => &s.id,
        }
    }

    /// The kind as the file spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::KeyGenerate(_) => "key-generate",
            Self::CaRoot(_) => "ca-root",
            Self::CaIntermediate(_) => "ca-intermediate",
            Self::CaSignIntermediate(_) => "ca-sign-intermediate",
            Self::CaImport(_) => "ca-import",
            Self::CertIssue(_) => "cert-issue",
            Self::KeyBundle(_) => "key-bundle",
            Self::Truststore(_) => "truststore",
            Self::TrustedKeys(_) => "trusted-keys",
            Self::Js7Config(_) => "js7-config",
            Self::Revoke(_) => "revoke",
            Self::Crl(_) => "crl",
            Self::ArchiveSign(_) => "archive-sign",
            Self::ArchiveVerify(_) => "archive-verify",
            Self::Export(_) => "export",
            Self::AuditAnchor(_) => "audit-anchor",
        }
    }

    /// The hsmsign command the step stands for.
    pub fn command(&self) -> &'static str {
        match self {
            Self::KeyGenerate(_) => "key generate",
            Self::CaRoot(_) => "ca init",
            Self::CaIntermediate(_) => "ca intermediate",
            Self::CaSignIntermediate(_) => "ca sign-intermediate",
            Self::CaImport(_) => "ca import",
            Self::CertIssue(_) | Self::KeyBundle(_) => "cert issue",
            Self::Truststore(_) => "bundle truststore",
            Self::TrustedKeys(_) => "bundle trusted-keys",
            Self::Js7Config(_) => "bundle js7-config",
            Self::Revoke(_) => "cert revoke",
            Self::Crl(_) => "crl generate",
            Self::ArchiveSign(_) => "archive sign",
            Self::ArchiveVerify(_) => "archive verify",
            Self::Export(_) => "ca export",
            Self::AuditAnchor(_) => "audit anchor",
        }
    }

    /// The token key the step uses, if any.
    pub fn key(&self) -> Option<&KeyRef> {
        match self {
            Self::KeyGenerate(s) => Some(&s.key),
            Self::CaRoot(s) => Some(&s.key),
            Self::CaIntermediate(s) => Some(&s.key),
            Self::CaImport(s) => Some(&s.key),
            Self::CertIssue(s) => s.key.as_ref(),
            Self::ArchiveSign(s) => Some(&s.key),
            _ => None,
        }
    }

    /// The files the step writes, by flag name.
    pub fn outputs<'a>(&'a self) -> Vec<(&'static str, &'a Path)> {
        let mut v: Vec<(&'static str, &Path)> = Vec::new();
        fn push<'a>(
            v: &mut Vec<(&'static str, &'a Path)>,
            flag: &'static str,
            p: Option<&'a PathBuf>,
        ) {
            if let Some(p) = p {
                v.push((flag, p.as_path()));
            }
        }
        let mut add = |flag: &'static str, p: Option<&'a PathBuf>| push(&mut v, flag, p);
        match self {
            Self::CaRoot(s) => add("out", s.out.as_ref()),
            Self::CaIntermediate(s) => add("out", s.out.as_ref()),
            Self::CaSignIntermediate(s) => add("out", Some(&s.out)),
            Self::CertIssue(s) => {
                add("out", s.out.as_ref());
                add("chain-out", s.chain_out.as_ref());
            }
            Self::KeyBundle(s) => {
                add("pkcs12", Some(&s.pkcs12));
                add("out", s.out.as_ref());
                add("chain-out", s.chain_out.as_ref());
            }
            Self::Truststore(s) => add("out", Some(&s.out)),
            Self::TrustedKeys(s) => add("out", Some(&s.out)),
            Self::Js7Config(s) => add("out", Some(&s.out)),
            Self::Crl(s) => add("out", Some(&s.out)),
            Self::ArchiveSign(s) => add("out", Some(&s.out)),
            Self::Export(s) => add("out", Some(&s.out)),
            _ => {}
        }
        v
    }

    /// The files the step reads, by flag name, as written.
    pub fn inputs(&self) -> Vec<(&'static str, &str)> {
        let mut v: Vec<(&'static str, &str)> = Vec::new();
        match self {
            Self::CaSignIntermediate(s) => v.push(("csr", &s.csr)),
            Self::CaImport(s) => v.push(("cert", &s.cert)),
            Self::CertIssue(s) => v.extend(s.csr.as_deref().map(|c| ("csr", c))),
            Self::Js7Config(s) => {
                v.push(("cert", &s.cert));
                v.extend(s.keystore.as_deref().map(|k| ("keystore", k)));
            }
            Self::ArchiveSign(s) => {
                v.push(("cert", &s.cert));
                v.push(("in", &s.input));
            }
            Self::ArchiveVerify(s) => {
                v.push(("in", &s.input));
                v.extend(s.trusted.as_deref().map(|t| ("trusted", t)));
                for n in &s.node {
                    let dir = n.split_once('=').map_or("", |(_, rest)| rest);
                    v.push(("node", dir.split(',').next().unwrap_or_default()));
                }
                v.extend(s.cert.as_deref().map(|c| ("cert", c)));
            }
            _ => {}
        }
        v
    }

    /// The CAs the step needs to exist (made by an earlier step or already in the state).
    pub fn needs_cas(&self) -> Vec<&str> {
        match self {
            Self::CaIntermediate(s) => vec![s.issuer.as_str()],
            Self::CaSignIntermediate(s) => vec![s.issuer.as_str()],
            Self::CertIssue(s) => vec![s.ca.as_str()],
            Self::KeyBundle(s) => vec![s.ca.as_str()],
            Self::Truststore(s) => s.ca.iter().map(String::as_str).collect(),
            Self::TrustedKeys(s) => s.ca.iter().map(String::as_str).collect(),
            Self::Revoke(s) => vec![s.ca.as_str()],
            Self::Crl(s) => vec![s.ca.as_str()],
            Self::Export(s) => vec![s.name.as_str()],
            Self::AuditAnchor(s) => vec![s.ca.as_str()],
            _ => Vec::new(),
        }
    }

    /// The CA the step creates.
    pub fn creates_ca(&self) -> Option<&str> {
        match self {
            Self::CaRoot(s) => Some(&s.name),
            Self::CaIntermediate(s) => Some(&s.name),
            Self::CaImport(s) => Some(&s.name),
            _ => None,
        }
    }

    /// The secret sources the step names (`password-source` and the like), by flag.
    pub fn secret_sources(&self) -> Vec<(&'static str, &str)> {
        let mut v = Vec::new();
        match self {
            Self::KeyGenerate(s) => v.extend(
                s.management_key_source
                    .as_deref()
                    .map(|x| ("management-key-source", x)),
            ),
            Self::KeyBundle(s) => v.extend(
                s.p12_password_source
                    .as_deref()
                    .map(|x| ("p12-password-source", x)),
            ),
            Self::Truststore(s) => {
                v.extend(s.password_source.as_deref().map(|x| ("password-source", x)))
            }
            Self::Js7Config(s) => {
                v.extend(s.password_source.as_deref().map(|x| ("password-source", x)))
            }
            _ => {}
        }
        v
    }
}

/// Keys that would hold a secret value, refused anywhere in a ceremony or site file.
const SECRET_KEYS: &[&str] = &[
    "pin",
    "password",
    "so-pin",
    "pin-value",
    "user-pin",
    "passphrase",
];

/// Refuses a PIN or password value anywhere in a parsed document, at its line and column.
fn refuse_secrets(
    path: &Path,
    text: &str,
    doc: &toml_edit::ImDocument<&str>,
) -> Result<(), FileError> {
    fn walk(
        table: &dyn toml_edit::TableLike,
        found: &mut Option<(std::ops::Range<usize>, String)>,
    ) {
        for (k, item) in table.iter() {
            if found.is_some() {
                return;
            }
            let key = table.key(k);
            let span = key.and_then(toml_edit::Key::span).unwrap_or(0..0);
            if SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
                *found = Some((
                    span,
                    format!(
                        "`{k}` holds a secret: PINs and passwords never go into a ceremony or site file; \
                         remove it and give a PIN source instead (prompt, env:VAR, file:PATH or fd:N)"
                    ),
                ));
                return;
            }
            walk_item(item, span, found);
        }
    }
    fn walk_item(
        item: &toml_edit::Item,
        span: std::ops::Range<usize>,
        found: &mut Option<(std::ops::Range<usize>, String)>,
    ) {
        match item {
            toml_edit::Item::Table(t) => walk(t, found),
            toml_edit::Item::ArrayOfTables(a) => a.iter().for_each(|t| walk(t, found)),
            toml_edit::Item::Value(v) => walk_value(v, span, found),
            toml_edit::Item::None => {}
        }
    }
    fn walk_value(
        v: &toml_edit::Value,
        span: std::ops::Range<usize>,
        found: &mut Option<(std::ops::Range<usize>, String)>,
    ) {
        match v {
            toml_edit::Value::String(s)
                if s.value().to_ascii_lowercase().contains("pin-value=") =>
            {
                *found = Some((
                    v.span().unwrap_or(span),
                    "a PKCS#11 URI carrying pin-value: PINs never go into a ceremony or site file; \
                     remove pin-value and give a PIN source instead (prompt, env:VAR, file:PATH or fd:N)"
                        .to_owned(),
                ));
            }
            toml_edit::Value::InlineTable(t) => walk(t, found),
            toml_edit::Value::Array(a) => a.iter().for_each(|x| walk_value(x, span.clone(), found)),
            _ => {}
        }
    }
    let mut found = None;
    walk(doc.as_table(), &mut found);
    match found {
        Some((span, message)) => Err(at(path, text, span.start, message)),
        None => Ok(()),
    }
}

/// A [`FileError::At`] for a byte offset.
pub(crate) fn at(path: &Path, text: &str, offset: usize, message: String) -> FileError {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    FileError::At {
        path: path.to_owned(),
        line,
        column,
        message,
    }
}

/// Reads a TOML file strictly into `T`: secrets refused first, then serde with unknown keys
/// refused, each error at its line and column.
pub(crate) fn parse_strict<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
    what: &str,
) -> Result<T, FileError> {
    let doc = toml_edit::ImDocument::parse(text).map_err(|e| {
        at(
            path,
            text,
            e.span().map_or(0, |s| s.start),
            format!(
                "this is not valid TOML ({}); fix the syntax",
                e.message().trim()
            ),
        )
    })?;
    refuse_secrets(path, text, &doc)?;
    toml::from_str::<T>(text).map_err(|e| {
        let mut offset = e.span().map_or(0, |s| s.start);
        let message = e.message().trim().to_owned();
        // serde reports an unknown key of a step at the step's header: find the key itself.
        if let Some(name) = message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
            && let Some(o) = find_key_after(&doc, offset, name) {
                offset = o;
            }
        // A wrong value inside a step is reported at the step's header too: find the value.
        if let Some(shown) = wrong_value(&message)
            && let Some(o) = find_value_after(&doc, offset, &shown)
        {
            offset = o;
        }
        let advice = if message.starts_with("unknown field") {
            format!("{message}; remove or correct the key (docs/ceremonies.md lists every key of every {what})")
        } else if message.starts_with("unknown variant") {
            format!("{message}; use one of the kinds docs/ceremonies.md lists")
        } else if message.starts_with("missing field") {
            format!("{message}; add it")
        } else {
            format!("{message}; correct the value")
        };
        at(path, text, offset, advice)
    })
}

/// The value serde names in "invalid type: string \"ten\", expected u64", as TOML writes it.
fn wrong_value(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))?;
    let (what, _) = rest.split_once(", expected")?;
    let (kind, value) = what.split_once(' ')?;
    match kind {
        "string" => Some(value.to_owned()),
        "integer" | "floating" | "boolean" => Some(value.trim_matches('`').to_owned()),
        _ => None,
    }
}

/// The offset of the first value written as `shown` at or after `offset`.
fn find_value_after(
    doc: &toml_edit::ImDocument<&str>,
    offset: usize,
    shown: &str,
) -> Option<usize> {
    fn value(v: &toml_edit::Value, offset: usize, shown: &str, best: &mut Option<usize>) {
        match v {
            toml_edit::Value::InlineTable(t) => {
                t.iter().for_each(|(_, x)| value(x, offset, shown, best))
            }
            toml_edit::Value::Array(a) => a.iter().for_each(|x| value(x, offset, shown, best)),
            _ => {
                let repr = match v {
                    toml_edit::Value::String(s) => format!("{:?}", s.value()),
                    toml_edit::Value::Integer(i) => i.value().to_string(),
                    toml_edit::Value::Float(f) => f.value().to_string(),
                    toml_edit::Value::Boolean(b) => b.value().to_string(),
                    _ => return,
                };
                if let Some(span) = v.span()
                    && repr == shown
                    && span.start >= offset
                    && best.is_none_or(|b| span.start < b)
                {
                    *best = Some(span.start);
                }
            }
        }
    }
    fn table(t: &dyn toml_edit::TableLike, offset: usize, shown: &str, best: &mut Option<usize>) {
        for (_, item) in t.iter() {
            match item {
                toml_edit::Item::Table(x) => table(x, offset, shown, best),
                toml_edit::Item::ArrayOfTables(a) => {
                    a.iter().for_each(|x| table(x, offset, shown, best))
                }
                toml_edit::Item::Value(v) => value(v, offset, shown, best),
                toml_edit::Item::None => {}
            }
        }
    }
    let mut best = None;
    table(doc.as_table(), offset, shown, &mut best);
    best
}

/// The offset of the first key `name` at or after `offset` inside the table that starts there.
fn find_key_after(doc: &toml_edit::ImDocument<&str>, offset: usize, name: &str) -> Option<usize> {
    fn search(t: &dyn toml_edit::TableLike, offset: usize, name: &str, best: &mut Option<usize>) {
        for (k, item) in t.iter() {
            if let Some(span) = t.key(k).and_then(toml_edit::Key::span)
                && k == name
                && span.start >= offset
                && best.is_none_or(|b| span.start < b)
            {
                *best = Some(span.start);
            }
            match item {
                toml_edit::Item::Table(x) => search(x, offset, name, best),
                toml_edit::Item::ArrayOfTables(a) => {
                    a.iter().for_each(|x| search(x, offset, name, best))
                }
                toml_edit::Item::Value(toml_edit::Value::InlineTable(x)) => {
                    search(x, offset, name, best)
                }
                _ => {}
            }
        }
    }
    let mut best = None;
    search(doc.as_table(), offset, name, &mut best);
    best
}

impl CeremonyFile {
    /// Reads and parses a ceremony file.
    pub fn read(path: &Path) -> Result<(Self, Vec<u8>), FileError> {
        let bytes = std::fs::read(path).map_err(|error| FileError::Read {
            path: path.to_owned(),
            error,
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            at(
                path,
                "",
                0,
                format!("the file is not UTF-8 ({e}); save it as UTF-8"),
            )
        })?;
        let file = Self::parse(path, text)?;
        Ok((file, bytes))
    }

    /// Parses a ceremony file's text (`path` only names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, FileError> {
        parse_strict(path, text, "step kind")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<CeremonyFile, FileError> {
        CeremonyFile::parse(Path::new("c.toml"), s)
    }

    const HEAD: &str = "name = \"x\"\npurpose = \"y\"\n[tokens.ca-token]\n";

    #[test]
    fn a_step_parses_with_its_flags() {
        let f = parse(&format!(
            "{HEAD}[[step]]\nid = \"root\"\nkind = \"ca-root\"\nname = \"r\"\nkey = {{ token = \"ca-token\", label = \"root\" }}\nsubject = \"CN=R\"\npath-len = 1\nout = \"root.pem\"\n"
        ))
        .unwrap();
        let Step::CaRoot(s) = &f.steps[0] else {
            panic!("{:?}", f.steps)
        };
        assert_eq!(s.path_len, Some(1));
        assert_eq!(s.key.label, "root");
        assert_eq!(f.steps[0].outputs(), vec![("out", Path::new("root.pem"))]);
    }

    #[test]
    fn an_unknown_key_is_named_at_its_line_and_column() {
        let e = parse(&format!(
            "{HEAD}[[step]]\nid = \"root\"\nkind = \"crl\"\nca = \"r\"\nout = \"c.crl\"\n  dayz = 3\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("c.toml:9:3: unknown field `dayz`"), "{e}");
    }

    #[test]
    fn a_wrong_value_is_named_at_its_line_and_column() {
        let e = parse(&format!(
            "{HEAD}[[step]]\nid = \"c\"\nkind = \"crl\"\nca = \"r\"\nout = \"c.crl\"\ndays = \"ten\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("c.toml:9:8: invalid type: string \"ten\""),
            "{e}"
        );
        let e = parse(&format!(
            "{HEAD}[[step]]\nid = \"c\"\nkind = \"ca-root\"\nname = \"r\"\nkey = {{ token = \"t\", label = \"k\" }}\nsubject = \"CN=R\"\npath-len = 300\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("c.toml:10:12: invalid value: integer `300`"),
            "{e}"
        );
    }

    #[test]
    fn a_pin_anywhere_is_refused_at_its_place() {
        let e = parse(&format!("{HEAD}pin = \"1234\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml:4:1:") && e.contains("PIN source"),
            "{e}"
        );
        let e = parse(&format!(
            "{HEAD}[[step]]\nid = \"k\"\nkind = \"key-generate\"\nalgorithm = \"ec-p256\"\nkey = {{ token = \"pkcs11:token=a?pin-value=1\", label = \"k\" }}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("c.toml:8:") && e.contains("pin-value"), "{e}");
    }

    #[test]
    fn output_references_follow_one_convention() {
        assert_eq!(
            FileRef::parse("@root.out").unwrap(),
            FileRef::Output {
                step: "root".into(),
                flag: "out".into()
            }
        );
        assert_eq!(
            FileRef::parse("in/x.csr").unwrap(),
            FileRef::Path("in/x.csr".into())
        );
        assert!(FileRef::parse("@root").is_err());
    }
}
