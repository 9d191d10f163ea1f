//! From a checked ceremony file and its site binding to the steps the runner does: every path
//! resolved (inputs against the ceremony file's directory or an earlier step's output, outputs
//! into the output directory), every key named by the URI its command takes, and each step's
//! request built exactly as the command line builds it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::action::Action;
use super::check::{Paths, Report};
use super::file::{CeremonyFile, FileRef, KeyRef, Step};
use super::run::PlannedStep;
use super::site::SiteFile;
use crate::archive::ArchiveSign;
use crate::bundle::{Js7Config, Js7Role, TrustedKeys, Truststore};
use crate::ca::{
    AuditAnchor, CaExport, CaImport, CaInit, CaIntermediate, CaSignIntermediate, CertIssue,
    CertKey, CertRevoke, CrlGenerate,
};
use crate::keys::KeyGenerate;

/// What a rehearsal puts in place of the site's own: input files that stand in for ones only
/// the real site has (an operator's certificate for a key the rehearsal made), and one
/// throwaway secret for every password the file would ask for.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Substitutions {
    /// Resolved input path -> the file used instead.
    pub inputs: BTreeMap<PathBuf, PathBuf>,
    /// A file holding the secret every password source of the file is answered with.
    pub secret_file: Option<PathBuf>,
}

/// The steps of `file` as the runner does them. `report` is the check of the same file with
/// the same paths (it must have no findings); its input hashes identify the steps.
pub fn build(
    file: &CeremonyFile,
    report: &Report,
    site: &SiteFile,
    paths: &Paths,
    subst: &Substitutions,
) -> Result<Vec<PlannedStep>, String> {
    let hashes = super::transcript::planned_steps(file, report);
    let mut outputs: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    let mut steps = Vec::new();
    for ((step, plan), hash) in file.steps.iter().zip(&report.plan).zip(&hashes) {
        let resolve = |raw: &str| -> Result<PathBuf, String> {
            let p = match FileRef::parse(raw)? {
                FileRef::Path(p) => paths.input_dir.join(p),
                FileRef::Output { step: s, flag } => outputs
                    .get(&(s.clone(), flag.clone()))
                    .cloned()
                    .ok_or_else(|| format!("@{s}.{flag} names no earlier output"))?,
            };
            Ok(subst.inputs.get(&p).cloned().unwrap_or(p))
        };
        let out = |p: &Path| paths.output_dir.join(p);
        let key = |k: &KeyRef| -> Result<String, String> {
            site.role
                .get(&k.token)
                .ok_or_else(|| format!("token role {:?} is not bound", k.token))?
                .key_uri(k)
        };
        let secret = |s: &Option<String>| -> Option<String> {
            match &subst.secret_file {
                Some(f) => Some(format!("file:{}", f.display())),
                None => s.clone(),
            }
        };
        let action = match step {
            Step::KeyGenerate(s) => Action::KeyGenerate(KeyGenerate {
                key: key(&s.key)?,
                algorithm: s.algorithm.clone(),
                pin_policy: s.pin_policy.clone(),
                touch_policy: s.touch_policy.clone(),
                management_key_source: s.management_key_source.clone(),
                allow_default_credentials: s.allow_default_credentials,
            }),
            Step::CaRoot(s) => Action::CaRoot(CaInit {
                name: s.name.clone(),
                key: key(&s.key)?,
                subject: s.subject.clone(),
                days: s.days,
                path_len: s.path_len,
                out: s.out.as_deref().map(out),
                allow_duplicate_dn: s.allow_duplicate_dn,
                force: false,
            }),
            Step::CaIntermediate(s) => Action::CaIntermediate(CaIntermediate {
                name: s.name.clone(),
                issuer: s.issuer.clone(),
                key: key(&s.key)?,
                subject: s.subject.clone(),
                days: s.days,
                path_len: s.path_len,
                out: s.out.as_deref().map(out),
                allow_duplicate_dn: s.allow_duplicate_dn,
                force: false,
            }),
            Step::CaSignIntermediate(s) => Action::CaSignIntermediate(CaSignIntermediate {
                issuer: s.issuer.clone(),
                csr: resolve(&s.csr)?,
                days: s.days,
                path_len: s.path_len,
                out: out(&s.out),
                allow_duplicate_dn: s.allow_duplicate_dn,
                force: false,
            }),
            Step::CaImport(s) => Action::CaImport(CaImport {
                name: s.name.clone(),
                cert: resolve(&s.cert)?,
                key: key(&s.key)?,
            }),
            Step::CertIssue(s) => Action::CertIssue(CertIssue {
                ca: s.ca.clone(),
                profile: s.profile.clone(),
                key: match (&s.csr, &s.key) {
                    (Some(c), None) => CertKey::Csr(resolve(c)?),
                    (None, Some(k)) => CertKey::Token(key(k)?),
                    _ => return Err(format!("step {:?}: give csr or key", s.id)),
                },
                subject: s.subject.clone(),
                san: s.san.clone(),
                days: s.days,
                out: s.out.as_deref().map(out),
                chain_out: s.chain_out.as_deref().map(out),
                allow_duplicate_dn: s.allow_duplicate_dn,
                force: false,
            }),
            Step::KeyBundle(s) => Action::CertIssue(CertIssue {
                ca: s.ca.clone(),
                profile: s.profile.clone(),
                key: CertKey::Generate {
                    algorithm: s.generate_key.clone(),
                    pkcs12: out(&s.pkcs12),
                    password_source: secret(&s.p12_password_source)
                        .or_else(|| Some("prompt".into())),
                },
                subject: Some(s.subject.clone()),
                san: s.san.clone(),
                days: s.days,
                out: s.out.as_deref().map(out),
                chain_out: s.chain_out.as_deref().map(out),
                allow_duplicate_dn: s.allow_duplicate_dn,
                force: false,
            }),
            Step::Truststore(s) => Action::Truststore(Truststore {
                cas: s.ca.clone(),
                out: out(&s.out),
                pkcs12: s.pkcs12,
                password_source: if s.pkcs12 {
                    secret(&s.password_source)
                } else {
                    s.password_source.clone()
                },
                force: false,
            }),
            Step::TrustedKeys(s) => Action::TrustedKeys(TrustedKeys {
                cas: s.ca.clone(),
                out: out(&s.out),
                force: false,
            }),
            Step::Js7Config(s) => Action::Js7Config(
                Js7Config {
                    cert: resolve(&s.cert)?,
                    role: match s.role.as_str() {
                        "agent" => Js7Role::Agent,
                        _ => Js7Role::Controller,
                    },
                    alias: s.alias.clone(),
                    keystore: s.keystore.as_deref().map(resolve).transpose()?,
                    password_source: if s.keystore.is_some() {
                        secret(&s.password_source)
                    } else {
                        s.password_source.clone()
                    },
                },
                out(&s.out),
            ),
            Step::Revoke(s) => Action::Revoke(CertRevoke {
                ca: s.ca.clone(),
                serial: s.serial.clone(),
                reason: s.reason.clone().unwrap_or_else(|| "unspecified".into()),
            }),
            Step::Crl(s) => Action::Crl(CrlGenerate {
                ca: s.ca.clone(),
                days: s.days.unwrap_or(crate::x509::limits::DEFAULT_CRL_DAYS),
                out: out(&s.out),
                force: false,
            }),
            Step::ArchiveSign(s) => Action::ArchiveSign(ArchiveSign {
                key: key(&s.key)?,
                cert: resolve(&s.cert)?,
                input: resolve(&s.input)?,
                out: out(&s.out),
                algorithm: s.algorithm.clone(),
                replace_signatures: s.replace_signatures,
                force: false,
                strict: s.strict,
                sessions: s.sessions,
            }),
            Step::ArchiveVerify(s) => {
                let version = s
                    .js7_version
                    .as_deref()
                    .map(crate::archive::js7::Js7Version::parse)
                    .transpose()
                    .map_err(|e| e.to_string())?;
                let allow = s
                    .allow_expired_certificates
                    .as_deref()
                    .map(|a| crate::archive::js7::parse_yes_no("allow-expired-certificates", a))
                    .transpose()?;
                let mut nodes = Vec::new();
                if let Some(t) = &s.trusted {
                    nodes.push((String::new(), resolve(t)?, version, allow));
                }
                for n in &s.node {
                    let node = crate::archive::js7::NodeSpec::parse(n, version, allow)?;
                    nodes.push((
                        node.name,
                        resolve(&node.dir)?,
                        node.version,
                        node.allow_expired,
                    ));
                }
                Action::ArchiveVerify {
                    input: resolve(&s.input)?,
                    nodes,
                    cert: s.cert.as_deref().map(resolve).transpose()?,
                    strict: s.strict,
                }
            }
            Step::Export(s) => Action::Export(CaExport {
                name: s.name.clone(),
                chain: s.chain,
                out: out(&s.out),
                force: false,
            }),
            Step::AuditAnchor(s) => Action::AuditAnchor(AuditAnchor { ca: s.ca.clone() }),
        };
        for (flag, p) in step.outputs() {
            outputs.insert((step.id().to_string(), flag.to_string()), out(p));
        }
        let mut description = step.command().to_string();
        if let Some(uri) = &plan.key_uri {
            description.push_str(&format!(" with key {uri}"));
        }
        if let Some(ca) = &plan.signs_with_ca {
            description.push_str(&format!(", signed by CA {ca:?}"));
        }
        let outs = action.outputs();
        if !outs.is_empty() {
            description.push_str(&format!(
                "; writes {}",
                outs.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        steps.push(PlannedStep {
            id: step.id().to_string(),
            kind: step.kind().to_string(),
            action,
            input_sha256: hash.input_hash.clone(),
            description,
        });
    }
    Ok(steps)
}
