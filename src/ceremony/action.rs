//! What a ceremony step does, as the library requests the command line also builds: each step of
//! a ceremony file becomes one [`Action`], whose `validate` and `run` call exactly the use-case
//! functions the command line calls.

use std::path::PathBuf;

use crate::archive::js7::{Js7Version, NodePolicy};
use crate::archive::{self, ArchiveSign, VerifyOptions};
use crate::bundle::{self, Js7Config, TrustedKeys, Truststore};
use crate::ca::{
    self, AuditAnchor, CaExport, CaImport, CaInit, CaIntermediate, CaSignIntermediate, CertIssue,
    CertRevoke, CrlGenerate,
};
use crate::keys::{self, KeyAccess, KeyGenerate};
use crate::store::Store;

/// One step's work.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // a few per ceremony
pub enum Action {
    /// `key generate`.
    KeyGenerate(KeyGenerate),
    /// `ca init`.
    CaRoot(CaInit),
    /// `ca intermediate`.
    CaIntermediate(CaIntermediate),
    /// `ca sign-intermediate`.
    CaSignIntermediate(CaSignIntermediate),
    /// `ca import`.
    CaImport(CaImport),
    /// `cert issue` (a key bundle is `cert issue` with a generated key).
    CertIssue(CertIssue),
    /// `bundle truststore`.
    Truststore(Truststore),
    /// `bundle trusted-keys`.
    TrustedKeys(TrustedKeys),
    /// `bundle js7-config`, written to a file.
    Js7Config(Js7Config, PathBuf),
    /// `cert revoke`.
    Revoke(CertRevoke),
    /// `crl generate`.
    Crl(CrlGenerate),
    /// `archive sign`.
    ArchiveSign(ArchiveSign),
    /// `archive verify` against a trusted directory or file: the step fails unless a JS7
    /// Controller or Agent with it would accept the archive.
    ArchiveVerify {
        /// The signed archive.
        input: PathBuf,
        /// Each node: its name (empty for a lone `trusted`), its trusted-x509-keys directory or
        /// PEM file, its JS7 version and its allow-expired setting (`None`: the defaults).
        nodes: Vec<(String, PathBuf, Option<Js7Version>, Option<bool>)>,
        /// The signer certificate, when JOC sends it with the objects.
        cert: Option<PathBuf>,
        /// Also check what JS7 leaves out.
        strict: bool,
    },
    /// `ca export`.
    Export(CaExport),
    /// `audit anchor`.
    AuditAnchor(AuditAnchor),
}

/// What a step did, for the transcript.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Files it wrote.
    pub outputs: Vec<PathBuf>,
    /// Certificates it issued (DER).
    pub certificates: Vec<Vec<u8>>,
    /// A CRL it signed (DER).
    pub crl: Option<Vec<u8>>,
    /// One line for the officer.
    pub summary: String,
}

/// A step's failure, as the officer reads it.
pub type ActionError = String;

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Action {
    /// The command this step is, for the plan.
    pub fn command(&self) -> &'static str {
        match self {
            Self::KeyGenerate(_) => "key generate",
            Self::CaRoot(_) => "ca init",
            Self::CaIntermediate(_) => "ca intermediate",
            Self::CaSignIntermediate(_) => "ca sign-intermediate",
            Self::CaImport(_) => "ca import",
            Self::CertIssue(_) => "cert issue",
            Self::Truststore(_) => "bundle truststore",
            Self::TrustedKeys(_) => "bundle trusted-keys",
            Self::Js7Config(..) => "bundle js7-config",
            Self::Revoke(_) => "cert revoke",
            Self::Crl(_) => "crl generate",
            Self::ArchiveSign(_) => "archive sign",
            Self::ArchiveVerify { .. } => "archive verify",
            Self::Export(_) => "ca export",
            Self::AuditAnchor(_) => "audit anchor",
        }
    }

    /// The CAs this step needs to exist in the state before it runs.
    pub fn needs_cas(&self) -> Vec<&str> {
        match self {
            Self::CaIntermediate(r) => vec![r.issuer.as_str()],
            Self::CaSignIntermediate(r) => vec![r.issuer.as_str()],
            Self::CertIssue(r) => vec![r.ca.as_str()],
            Self::Truststore(r) => r.cas.iter().map(String::as_str).collect(),
            Self::TrustedKeys(r) => r.cas.iter().map(String::as_str).collect(),
            Self::Revoke(r) => vec![r.ca.as_str()],
            Self::Crl(r) => vec![r.ca.as_str()],
            Self::Export(r) => vec![r.name.as_str()],
            Self::AuditAnchor(r) => vec![r.ca.as_str()],
            _ => Vec::new(),
        }
    }

    /// The CA this step creates, if any.
    pub fn creates_ca(&self) -> Option<&str> {
        match self {
            Self::CaRoot(r) => Some(&r.name),
            Self::CaIntermediate(r) => Some(&r.name),
            Self::CaImport(r) => Some(&r.name),
            _ => None,
        }
    }

    /// Whether the step signs with, or opens, a key on a token.
    pub fn touches_token(&self) -> bool {
        !matches!(
            self,
            Self::Truststore(_)
                | Self::TrustedKeys(_)
                | Self::Js7Config(..)
                | Self::Revoke(_)
                | Self::ArchiveVerify { .. }
                | Self::Export(_)
        )
    }

    /// The files the step writes (before it runs: to check they are new and distinct).
    pub fn outputs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = match self {
            Self::CaRoot(r) => r.out.iter().cloned().collect(),
            Self::CaIntermediate(r) => r.out.iter().cloned().collect(),
            Self::CaSignIntermediate(r) => vec![r.out.clone()],
            Self::CertIssue(r) => {
                let mut v: Vec<PathBuf> = [&r.out, &r.chain_out]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect();
                if let ca::CertKey::Generate { pkcs12, .. } = &r.key {
                    v.push(pkcs12.clone());
                }
                v
            }
            Self::Truststore(r) => vec![r.out.clone()],
            Self::TrustedKeys(r) => vec![r.out.clone()],
            Self::Js7Config(_, out) => vec![out.clone()],
            Self::Crl(r) => vec![r.out.clone()],
            Self::ArchiveSign(r) => vec![r.out.clone()],
            Self::Export(r) => vec![r.out.clone()],
            _ => Vec::new(),
        };
        v.sort();
        v
    }

    /// Check the step against the state as it is now, without a token (the use case's own
    /// `validate()`).
    pub fn validate(&self, keys: &KeyAccess<'_>, store: &Store) -> Result<(), ActionError> {
        match self {
            Self::KeyGenerate(r) => r.validate(keys).map(drop).map_err(text),
            Self::CaRoot(r) => r.validate(keys, store).map(drop).map_err(text),
            Self::CaIntermediate(r) => r.validate(keys, store).map(drop).map_err(text),
            Self::CaSignIntermediate(r) => r.validate(store).map(drop).map_err(text),
            Self::CaImport(r) => r.validate(keys, store).map(drop).map_err(text),
            Self::CertIssue(r) => r.validate(keys, store).map(drop).map_err(text),
            Self::Truststore(r) => r.validate(store).map(drop).map_err(text),
            Self::TrustedKeys(r) => r.validate(store).map(drop).map_err(text),
            Self::Js7Config(r, out) => {
                crate::output::check_new(out, false).map_err(text)?;
                r.validate().map(drop).map_err(text)
            }
            Self::Revoke(r) => r.validate(store).map(drop).map_err(text),
            Self::Crl(r) => r.validate(store).map_err(text),
            Self::ArchiveSign(r) => r.validate(keys).map(drop).map_err(text),
            Self::ArchiveVerify { nodes, cert, .. } => {
                for (_, trusted, version, allow) in nodes {
                    archive::read_trusted_source(trusted).map_err(text)?;
                    NodePolicy::new(*version, *allow).map_err(text)?;
                }
                if let Some(c) = cert {
                    crate::x509::read_certificate_file(c).map_err(text)?;
                }
                Ok(())
            }
            Self::Export(r) => r.validate(store).map(drop).map_err(text),
            Self::AuditAnchor(r) => r.validate(store).map(drop).map_err(text),
        }
    }

    /// Do the step.
    pub fn run(&self, keys: &KeyAccess<'_>, store: &Store) -> Result<Outcome, ActionError> {
        let mut o = Outcome {
            outputs: self.outputs(),
            ..Outcome::default()
        };
        match self {
            Self::KeyGenerate(r) => {
                let made = keys::generate(keys, Some(store), r).map_err(text)?;
                o.summary = format!("generated {} key {}", made.algorithm, made.uri);
            }
            Self::CaRoot(r) => {
                let c = ca::init(keys, store, r).map_err(text)?;
                o.summary = format!("root CA {:?}: {}", c.record.name, c.record.subject);
                o.certificates.push(c.issued.der);
            }
            Self::CaIntermediate(r) => {
                let c = ca::intermediate(keys, store, r).map_err(text)?;
                o.summary = format!("intermediate CA {:?}: {}", c.record.name, c.record.subject);
                o.certificates.push(c.issued.der);
            }
            Self::CaSignIntermediate(r) => {
                let s = ca::sign_intermediate(keys, store, r).map_err(text)?;
                o.summary = format!("intermediate CA certificate for {}", s.subject);
                o.certificates.push(s.issued.der);
            }
            Self::CaImport(r) => {
                let rec = ca::import(keys, store, r).map_err(text)?;
                o.summary = format!("imported CA {:?}: {}", rec.name, rec.subject);
                o.certificates.push(rec.certificate_der);
            }
            Self::CertIssue(r) => {
                let c = ca::issue(keys, store, r).map_err(text)?;
                o.summary = format!(
                    "{} certificate {} for {}",
                    c.profile.name(),
                    c.record.serial,
                    c.record.subject
                );
                o.certificates.push(c.issued.der);
            }
            Self::Truststore(r) => {
                let cas = bundle::truststore(keys, store, r).map_err(text)?;
                o.summary = format!("truststore with {} CA certificate(s)", cas.len());
            }
            Self::TrustedKeys(r) => {
                let w = bundle::trusted_keys(keys, store, r).map_err(text)?;
                o.outputs = w.files.iter().map(|f| r.out.join(&f.file_name)).collect();
                o.summary = format!("{} trusted certificate file(s)", w.files.len());
            }
            Self::Js7Config(r, out) => {
                let snippet = bundle::private_conf(keys, r).map_err(text)?;
                crate::output::write_new(out, snippet.text.as_bytes(), false).map_err(text)?;
                o.summary = format!("private.conf lines for {}", snippet.distinguished_name);
            }
            Self::Revoke(r) => {
                let rec = ca::revoke_request(store, r).map_err(text)?;
                o.summary = format!("revoked {} ({})", rec.serial, rec.subject);
            }
            Self::Crl(r) => {
                let c = ca::crl(keys, store, r).map_err(text)?;
                o.summary = format!(
                    "CRL number {} listing {} certificate(s)",
                    c.number, c.revoked
                );
                o.crl = Some(c.der);
            }
            Self::ArchiveSign(r) => {
                let s = archive::sign(keys, Some(store), r, &mut |_, _| {}).map_err(text)?;
                o.summary = format!(
                    "signed {} object(s) with {}",
                    s.summary.objects_signed, s.summary.algorithm
                );
            }
            Self::ArchiveVerify {
                input,
                nodes,
                cert,
                strict,
            } => {
                let signer = cert
                    .as_deref()
                    .map(crate::x509::read_certificate_file)
                    .transpose()
                    .map_err(text)?;
                let contents =
                    archive::read_signed_archive(input, &Default::default()).map_err(text)?;
                let mut objects = 0;
                for (name, trusted, version, allow) in nodes {
                    let source = archive::read_trusted_source(trusted).map_err(text)?;
                    let policy = NodePolicy::new(*version, *allow).map_err(text)?;
                    let report = archive::judge(
                        &contents,
                        &source,
                        signer.as_deref(),
                        &VerifyOptions {
                            strict: *strict,
                            policy,
                        },
                    )
                    .map_err(text)?;
                    if !report.accepted() {
                        let node = if name.is_empty() {
                            String::new()
                        } else {
                            format!("node {name} ")
                        };
                        return Err(format!(
                            "{} would not be accepted by {node}({}, trusting {}): run `hsmsign archive verify --in {} --trusted {}` for the details",
                            input.display(),
                            policy.describe(),
                            trusted.display(),
                            input.display(),
                            trusted.display()
                        ));
                    }
                    objects = report.objects.len();
                }
                o.summary = format!(
                    "all {objects} signed object(s) verify as {} JS7 node(s) check them",
                    nodes.len()
                );
            }
            Self::Export(r) => {
                let certs = ca::export(store, r).map_err(text)?;
                o.summary = format!("exported {} CA certificate(s)", certs.len());
            }
            Self::AuditAnchor(r) => {
                let a = ca::anchor_audit(keys, store, r).map_err(text)?;
                o.summary = format!("audit chain anchored at record #{}", a.seq);
            }
        }
        Ok(o)
    }
}
