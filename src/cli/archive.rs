//! `hsmsign archive sign|verify`: JS7 deployment archives (Security Level High).

use std::path::PathBuf;

use clap::Subcommand;
use hsmsign::archive::js7::{Js7Version, NodePolicy, NodeSpec, parse_yes_no};
use hsmsign::archive::{self, ArchiveError, ObjectOutcome, VerifyOptions, VerifyReport};
use serde_json::json;

use super::progress::Progress;
use super::{CmdResult, Ctx, Failure, read_certificate};

/// Archive commands.
#[derive(Subcommand, Debug)]
pub(crate) enum ArchiveCmd {
    /// Sign every workflow and job resource of a JS7 export with an operator's token key.
    Sign {
        /// The operator's signing key.
        #[arg(long, value_name = "URI")]
        key: String,
        /// The operator's signing certificate (PEM or DER), as stored in their JOC profile.
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// The archive exported from JOC Cockpit (.zip or .tar.gz).
        #[arg(long = "in", value_name = "ARCHIVE")]
        input: PathBuf,
        /// The signed archive to write (same format; never overwrites without --force).
        #[arg(long, value_name = "ARCHIVE")]
        out: PathBuf,
        /// SHA256withECDSA (EC default), SHA512withECDSA, SHA256withRSA (RSA default), SHA512withRSA.
        #[arg(long)]
        algorithm: Option<String>,
        /// Replace .sig entries already in the archive instead of refusing.
        #[arg(long)]
        replace_signatures: bool,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
        /// Refuse to sign an archive with entries JOC Cockpit would skip or refuse (see `archive
        /// lint`) instead of warning about them.
        #[arg(long)]
        strict: bool,
        /// Signing sessions on the token, each signing on its own thread (1 to 64). Default: 1 on
        /// a removable token (card, USB token, YubiKey), otherwise the smallest of the token's
        /// free sessions, the number of cores and 16; `token probe` shows it.
        #[arg(long, value_name = "N")]
        sessions: Option<usize>,
    },
    /// Answer "would a JS7 Controller or Agent accept this archive?", per node and JS7 version.
    Verify {
        /// The signed archive.
        #[arg(long = "in", value_name = "ARCHIVE")]
        input: PathBuf,
        /// A trusted-x509-keys directory, or one PEM file of trusted certificates (one node).
        #[arg(long, value_name = "DIR|FILE", required_unless_present = "node")]
        trusted: Option<PathBuf>,
        /// A node of the fleet: its name, its trusted-x509-keys directory, and optionally its JS7
        /// version and allow-expired-certificates setting. Repeatable; each node is judged on
        /// its own.
        #[arg(
            long,
            value_name = "NAME=DIR[,version=X.Y.Z][,allow-expired=yes|no]",
            conflicts_with = "trusted"
        )]
        node: Vec<String>,
        /// The profile certificate of the JOC account that will upload (self-issued: JOC sends
        /// its DN; CA-issued: JOC sends the certificate).
        #[arg(long, value_name = "FILE")]
        cert: Option<PathBuf>,
        /// The nodes' JS7 version (default: the newest behaviour, 2.9).
        #[arg(long, value_name = "X.Y.Z")]
        js7_version: Option<String>,
        /// The nodes' js7.configuration.allow-expired-certificates (default: yes where the
        /// setting exists; before 2.5.13 / 2.7.7 / 2.8.2 expiry is always checked).
        #[arg(long, value_name = "yes|no")]
        allow_expired_certificates: Option<String>,
        /// Also check what JS7 leaves out: validity dates, key usage, a real CA as issuer,
        /// unreadable trusted files, entries JOC would skip.
        #[arg(long)]
        strict: bool,
    },
    /// List what JOC Cockpit's import would skip or refuse: object names that are not valid JS7
    /// names, content that is not UTF-8 or not JSON, a missing meta_inf or versionId.
    Lint {
        /// The archive (signed or not).
        #[arg(long = "in", value_name = "ARCHIVE")]
        input: PathBuf,
    },
}

/// One node of `--node NAME=DIR[,version=X.Y.Z][,allow-expired=yes|no]`.
struct Node {
    name: String,
    trusted: PathBuf,
    policy: NodePolicy,
}

fn yes_no(option: &str, v: &str) -> Result<bool, Failure> {
    parse_yes_no(option, v).map_err(Failure::Usage)
}

fn parse_node(
    spec: &str,
    version: Option<Js7Version>,
    allow: Option<bool>,
) -> Result<Node, Failure> {
    let n = NodeSpec::parse(spec, version, allow).map_err(Failure::Usage)?;
    Ok(Node {
        name: n.name,
        trusted: PathBuf::from(n.dir),
        policy: NodePolicy::new(n.version, n.allow_expired)?,
    })
}

pub(super) fn run(ctx: &Ctx, cmd: ArchiveCmd) -> CmdResult {
    match cmd {
        ArchiveCmd::Sign {
            key,
            cert,
            input,
            out,
            algorithm,
            replace_signatures,
            force,
            strict,
            sessions,
        } => {
            let request = archive::ArchiveSign {
                key,
                cert,
                input: input.clone(),
                out: out.clone(),
                algorithm,
                replace_signatures,
                force,
                strict,
                sessions,
            };
            request.validate(&ctx.keys).map_err(archive_failure)?;
            let store = ctx.store()?;
            let mut progress = Progress::new("objects signed", ctx.json);
            let signed = archive::sign(&ctx.keys, store.as_ref(), &request, &mut |done, total| {
                progress.update(done, total)
            })
            .map_err(archive_failure)?;
            let summary = signed.summary;
            ctx.emit(
                format!(
                    "Signed {} objects of {} ({}) with {} as {}\n  signer: {} (certificate SHA-256 {})\n  wrote {} (SHA-256 {})\n  Import it into JOC Cockpit with signature algorithm {}.",
                    summary.objects_signed,
                    input.display(),
                    summary.format,
                    summary.algorithm,
                    signed.key,
                    summary.signer_subject,
                    summary.signer_cert_sha256,
                    out.display(),
                    summary.output_sha256,
                    summary.algorithm
                ),
                json!(summary),
            );
            Ok(())
        }
        ArchiveCmd::Verify {
            input,
            trusted,
            node,
            cert,
            js7_version,
            allow_expired_certificates,
            strict,
        } => {
            let version = js7_version.as_deref().map(Js7Version::parse).transpose()?;
            let allow = allow_expired_certificates
                .as_deref()
                .map(|v| yes_no("--allow-expired-certificates", v))
                .transpose()?;
            let nodes: Vec<Node> = match &trusted {
                Some(t) => vec![Node {
                    name: String::new(),
                    trusted: t.clone(),
                    policy: NodePolicy::new(version, allow)?,
                }],
                None => node
                    .iter()
                    .map(|n| parse_node(n, version, allow))
                    .collect::<Result<_, _>>()?,
            };
            let signer = cert.as_deref().map(read_certificate).transpose()?;
            // Every node's trusted directory is read before the archive, so a bad path is
            // reported at once.
            let sources = nodes
                .iter()
                .map(|n| archive::read_trusted_source(&n.trusted))
                .collect::<Result<Vec<_>, _>>()?;
            let contents = match archive::read_signed_archive(&input, &Default::default()) {
                Ok(c) => c,
                Err(e) => {
                    // A refused archive still gets a verdict on stdout for scripts.
                    if ctx.json {
                        println!("{}", refusal_json(&e));
                    }
                    return Err(e.into());
                }
            };
            let fleet = trusted.is_none();
            let mut text = String::new();
            let mut docs = Vec::new();
            let mut rejected = Vec::new();
            for (n, source) in nodes.iter().zip(&sources) {
                let options = VerifyOptions {
                    strict,
                    policy: n.policy,
                };
                let verdict = archive::judge(&contents, source, signer.as_deref(), &options);
                let (accepted, node_text, doc) = match verdict {
                    Ok(report) => describe(&report),
                    Err(e @ ArchiveError::UntrustedSigner { .. }) if fleet => (
                        false,
                        format!("REJECTED: {e}"),
                        json!({"accepted": false, "error": e.to_string()}),
                    ),
                    Err(e @ ArchiveError::UntrustedSigner { .. }) => {
                        if ctx.json {
                            println!("{}", json!({"accepted": false, "error": e.to_string()}));
                        }
                        return Err(Failure::Verification(e.to_string()));
                    }
                    Err(e) => return Err(e.into()),
                };
                if fleet {
                    text.push_str(&format!(
                        "== node {} ({}, {})\n",
                        n.name,
                        n.trusted.display(),
                        n.policy.describe()
                    ));
                }
                text.push_str(&node_text);
                text.push('\n');
                let mut doc = doc;
                doc["policy"] = json!(n.policy);
                if fleet {
                    doc["node"] = json!(n.name);
                    doc["trusted"] = json!(n.trusted);
                }
                docs.push(doc);
                if !accepted {
                    rejected.push(if fleet { n.name.clone() } else { String::new() });
                }
            }
            let doc = if fleet {
                json!({"accepted": rejected.is_empty(), "nodes": docs})
            } else {
                docs.pop().unwrap_or_default()
            };
            if fleet {
                text.push_str(&if rejected.is_empty() {
                    format!("ACCEPTED by all {} nodes.", nodes.len())
                } else {
                    format!(
                        "REJECTED by {} of {} nodes: {}.",
                        rejected.len(),
                        nodes.len(),
                        rejected.join(", ")
                    )
                });
            }
            ctx.emit(text.trim_end(), doc);
            if rejected.is_empty() {
                Ok(())
            } else if fleet {
                Err(Failure::Verification(format!(
                    "{} would be rejected by node(s) {}",
                    input.display(),
                    rejected.join(", ")
                )))
            } else {
                Err(Failure::Verification(format!(
                    "{} would not be accepted",
                    input.display()
                )))
            }
        }
        ArchiveCmd::Lint { input } => {
            let contents = archive::read_signed_archive(&input, &Default::default())?;
            let findings = contents.lint();
            let mut text: String = findings.iter().map(|f| format!("LINT     {f}\n")).collect();
            text.push_str(&if findings.is_empty() {
                format!(
                    "{}: nothing JOC Cockpit's import would skip or refuse.",
                    input.display()
                )
            } else {
                format!("{}: {} finding(s) above.", input.display(), findings.len())
            });
            ctx.emit(
                text,
                json!({"findings": findings, "clean": findings.is_empty()}),
            );
            if findings.is_empty() {
                Ok(())
            } else {
                Err(Failure::Failed(anyhow::anyhow!(
                    "{} holds {} entr(y/ies) JOC Cockpit would skip or refuse; fix the export in JOC Cockpit and export it again",
                    input.display(),
                    findings.len()
                )))
            }
        }
    }
}

/// The verdict on an archive that was refused before any signature was looked at.
fn refusal_json(e: &ArchiveError) -> serde_json::Value {
    let mut doc = json!({
        "accepted": false,
        "refused": true,
        "reason": e.to_string(),
    });
    if let ArchiveError::Ambiguous {
        construct, offset, ..
    } = e
    {
        doc["construct"] = json!(construct);
        doc["offset"] = json!(offset);
    }
    doc
}

/// One node's verdict: accepted, the text, the JSON document.
fn describe(report: &VerifyReport) -> (bool, String, serde_json::Value) {
    let mut text = String::new();
    if let Some(p) = &report.path {
        text.push_str(&format!("path: {p}\n"));
    }
    if let (Some(s), Some(t)) = (&report.signer, &report.trusted_by) {
        text.push_str(&format!("signer {s}\n  trusted through {t}\n"));
    }
    for o in &report.objects {
        match &o.outcome {
            ObjectOutcome::Ok { algorithm, .. } => {
                text.push_str(&format!("OK       {} ({algorithm})\n", o.object))
            }
            ObjectOutcome::Bad { reason } => {
                text.push_str(&format!("BAD      {}: {reason}\n", o.object))
            }
            ObjectOutcome::Unsigned => {
                text.push_str(&format!("UNSIGNED {}: no .sig entry\n", o.object))
            }
        }
    }
    for s in &report.orphan_signatures {
        text.push_str(&format!("ORPHAN   {s}: a signature without its object\n"));
    }
    for p in &report.archive_problems {
        text.push_str(&format!("ARCHIVE  {p}\n"));
    }
    for p in &report.certificate_problems {
        text.push_str(&format!("STRICT   {p}\n"));
    }
    for l in &report.lint {
        text.push_str(&format!("LINT     {l}\n"));
    }
    for n in &report.notes {
        text.push_str(&format!("note: {n}\n"));
    }
    let accepted = report.accepted();
    let failures = report.failures().count()
        + report.orphan_signatures.len()
        + report.archive_problems.len()
        + report.certificate_problems.len()
        + if report.strict { report.lint.len() } else { 0 };
    text.push_str(&if accepted {
        format!(
            "ACCEPTED: all {} signed objects verify; a JS7 Controller/Agent ({}) with these trusted certificates would accept them.",
            report.objects.len(),
            report.policy.describe()
        )
    } else {
        format!("REJECTED: {failures} problem(s) above.")
    });
    if let Some(a) = &report.algorithm {
        text.push_str(&format!(
            "\nSelect signature algorithm {a} when importing into JOC Cockpit (left empty, JOC uses SHA512withECDSA for ECDSA keys)."
        ));
    }
    let mut doc = json!(report);
    doc["accepted"] = json!(accepted);
    (accepted, text, doc)
}

/// An archive use case's error: its usage errors exit with status 2, the rest with 1.
fn archive_failure(e: ArchiveError) -> Failure {
    match e {
        ArchiveError::Usage(m) => Failure::Usage(m),
        e => Failure::Failed(e.into()),
    }
}
