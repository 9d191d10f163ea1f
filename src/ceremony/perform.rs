//! `ceremony run` as one request: check the file and the binding, refuse before any token is
//! touched on a finding, decide where an earlier run of the same file left off, run the steps,
//! and keep the transcript written after every step.

use std::path::{Path, PathBuf};

use super::check::{self, NoState, Paths, Report};
use super::file::CeremonyFile;
use super::plan::{self, Substitutions};
use super::run::{self, RunOptions, StepEvent};
use super::site::SiteFile;
use super::transcript::{
    self, CertificateRecord, FileHash, Resume, Status, StepRecord, Transcript, sha256_hex,
};
use crate::keys::KeyAccess;
use crate::store::Store;

/// `ceremony run FILE`.
#[derive(Clone, Debug)]
pub struct CeremonyRun {
    /// The ceremony file.
    pub file: PathBuf,
    /// The site file binding its token roles (`None`: the environment binds them).
    pub site: Option<PathBuf>,
    /// Where outputs go (relative paths of the file are joined to it).
    pub out_dir: PathBuf,
    /// The transcript (default: `NAME.transcript.json` in `out_dir`).
    pub transcript: Option<PathBuf>,
    /// Do not ask before token-touching steps.
    pub yes: bool,
    /// A rehearsal's stand-ins (set by the rehearsal only).
    pub rehearsal: Option<Substitutions>,
}

/// How a run ended.
#[derive(Debug)]
pub struct Performed {
    /// The transcript written.
    pub transcript_path: PathBuf,
    /// The transcript.
    pub transcript: Transcript,
    /// Steps done by an earlier run and not run again.
    pub skipped: usize,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
}

/// A refusal before any step ran.
#[derive(Debug, thiserror::Error)]
pub enum PerformError {
    /// The file or the binding has findings: nothing was touched.
    #[error("{}", .0.human())]
    Findings(Box<Report>),
    /// The file, the site file or the transcript cannot be used.
    #[error("{0}")]
    Refused(String),
}

fn refused(e: impl std::fmt::Display) -> PerformError {
    PerformError::Refused(e.to_string())
}

fn now() -> String {
    crate::x509::format_time(time::OffsetDateTime::now_utc())
}

fn hash_file(path: &Path) -> FileHash {
    FileHash {
        path: path.to_path_buf(),
        sha256: std::fs::read(path).map_or_else(|_| "(unreadable)".into(), |b| sha256_hex(&b)),
    }
}

/// The site binding of `req`: its site file, or the environment.
pub fn binding(
    file: &CeremonyFile,
    site: Option<&Path>,
) -> Result<(SiteFile, String, Option<FileHash>), PerformError> {
    match site {
        Some(p) => {
            let (s, bytes) = SiteFile::read(p).map_err(refused)?;
            Ok((
                s,
                format!("site file {}", p.display()),
                Some(FileHash {
                    path: p.to_path_buf(),
                    sha256: sha256_hex(&bytes),
                }),
            ))
        }
        None => Ok((
            SiteFile::from_env(file.tokens.keys().map(String::as_str), &|k| {
                std::env::var(k).ok()
            })
            .map_err(PerformError::Refused)?,
            "the environment".into(),
            None,
        )),
    }
}

/// Check `steps` (from `from` on) against the state with each use case's own `validate()`,
/// without a token. A step that needs a CA or a file an earlier step of the ceremony makes cannot
/// be checked yet: the runner checks it right before it runs.
pub fn state_findings(
    keys: &KeyAccess<'_>,
    store: &Store,
    steps: &[run::PlannedStep],
    report: &Report,
    from: usize,
) -> Vec<check::Finding> {
    let mut findings = Vec::new();
    let mut made: Vec<String> = Vec::new();
    let mut written: Vec<PathBuf> = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let needs_made = step
            .action
            .needs_cas()
            .iter()
            .any(|c| made.iter().any(|m| m == c));
        let inputs_later = report.plan[n].inputs.iter().any(|p| written.contains(p));
        if n >= from
            && !needs_made
            && !inputs_later
            && let Err(e) = step.action.validate(keys, store)
        {
            findings.push(check::Finding {
                step: Some(step.id.clone()),
                message: format!("{} against the state: {e}", step.action.command()),
            });
        }
        if let Some(ca) = step.action.creates_ca() {
            made.push(ca.to_string());
        }
        written.extend(report.plan[n].outputs.iter().cloned());
    }
    findings
}

/// Run the ceremony `req` names. `say` is told what happens, step by step.
pub fn perform(
    keys: &KeyAccess<'_>,
    open_store: &dyn Fn() -> Result<Store, String>,
    req: &CeremonyRun,
    say: &mut dyn FnMut(&str),
) -> Result<Performed, PerformError> {
    let (file, bytes) = CeremonyFile::read(&req.file).map_err(refused)?;
    let file_sha = sha256_hex(&bytes);
    let (site, site_source, site_hash) = binding(&file, req.site.as_deref())?;
    let input_dir = req
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let paths = Paths {
        input_dir,
        output_dir: req.out_dir.clone(),
    };
    let transcript_path = req
        .transcript
        .clone()
        .unwrap_or_else(|| req.out_dir.join(format!("{}.transcript.json", file.name)));
    let mut report = check::check(&file, Some((&site, &site_source)), &paths, &NoState);
    let hashes = transcript::planned_steps(&file, &report);

    // Where an earlier run of this file left off.
    let earlier = if transcript_path.exists() {
        Some(Transcript::read(&transcript_path).map_err(refused)?)
    } else {
        None
    };
    let next = match &earlier {
        None => 0,
        Some(t) => match transcript::resume(t, &file_sha, &hashes) {
            Resume::From { next } => next,
            Resume::Complete => {
                return Err(PerformError::Refused(format!(
                    "every step of {} is done already (transcript {}); nothing is run twice",
                    req.file.display(),
                    transcript_path.display()
                )));
            }
            Resume::Refuse(why) => return Err(PerformError::Refused(why)),
        },
    };
    // A step an earlier run left inside, after the audit log moved on, is never run again: said
    // before anything else about the file.
    let opened = match &earlier {
        Some(t) => {
            let store = open_store().map_err(PerformError::Refused)?;
            let head = store.audit_head().map_err(refused)?.map_or(0, |h| h.seq);
            if let Some(why) = transcript::interrupted(t, head) {
                return Err(PerformError::Refused(why));
            }
            Some(store)
        }
        None => None,
    };
    // Findings of steps an earlier run did (their outputs exist now) no longer count.
    let done: Vec<&str> = hashes[..next].iter().map(|h| h.id.as_str()).collect();
    report
        .findings
        .retain(|f| f.step.as_deref().is_none_or(|s| !done.contains(&s)));
    if !report.ok() {
        return Err(PerformError::Findings(Box::new(report)));
    }
    // The state, only now that the file passed (a run to be continued has one already).
    let store = match opened {
        Some(s) => s,
        None => open_store().map_err(PerformError::Refused)?,
    };
    let store = &store;
    let subst = req.rehearsal.clone().unwrap_or_default();
    let steps = plan::build(&file, &report, &site, &paths, &subst).map_err(refused)?;
    // Every step that can be checked against the state now is, before any token is touched.
    report.findings = state_findings(keys, store, &steps, &report, next);
    if !report.ok() {
        return Err(PerformError::Findings(Box::new(report)));
    }

    let mut t = earlier.unwrap_or_else(|| Transcript {
        format: transcript::FORMAT,
        name: file.name.clone(),
        ceremony_file: FileHash {
            path: req.file.clone(),
            sha256: file_sha.clone(),
        },
        site_file: site_hash.clone(),
        hsmsign_version: env!("CARGO_PKG_VERSION").to_string(),
        operator: crate::keys::operator(None).os_user,
        rehearsal: req.rehearsal.is_some(),
        started: now(),
        ended: None,
        steps: Vec::new(),
        audit_start: None,
        audit_end: None,
    });
    t.ended = None;
    t.steps.truncate(next);
    t.write(&transcript_path).map_err(refused)?;
    if next > 0 {
        say(&format!(
            "{} step(s) were done by an earlier run (transcript {}): continuing with step {:?}",
            next,
            transcript_path.display(),
            steps[next].id
        ));
    }
    let options = RunOptions {
        name: &file.name,
        file_sha256: &file_sha,
        site_sha256: site_hash.as_ref().map(|h| h.sha256.as_str()),
        rehearsal: req.rehearsal.is_some(),
        yes: req.yes,
    };
    let inputs_of = |id: &str| -> Vec<FileHash> {
        steps
            .iter()
            .position(|s| s.id == id)
            .map(|n| report.plan[n].inputs.iter().map(|p| hash_file(p)).collect())
            .unwrap_or_default()
    };
    let end = {
        let mut keeper = |step: &run::PlannedStep, event: StepEvent<'_>| -> Result<(), String> {
            let mut record = StepRecord {
                id: step.id.clone(),
                kind: step.kind.clone(),
                status: Status::Started,
                input_hash: step.input_sha256.clone(),
                // Hashed once, when the step starts (an input may be a large archive).
                inputs: match (&event, t.steps.last()) {
                    (StepEvent::Starting { .. }, _) => inputs_of(&step.id),
                    (_, Some(started)) if started.id == step.id => started.inputs.clone(),
                    _ => inputs_of(&step.id),
                },
                outputs: Vec::new(),
                certificates: Vec::new(),
                audit_seq: Vec::new(),
                audit_head: None,
                summary: String::new(),
            };
            match event {
                StepEvent::Starting { audit_head } => {
                    record.audit_head = Some(audit_head);
                    say(&format!("step {:?}: {}", step.id, step.description));
                }
                StepEvent::Done {
                    outcome,
                    audit_seqs,
                } => {
                    record.status = Status::Done;
                    record.audit_head = t.steps.last().and_then(|r| r.audit_head);
                    record.outputs = outcome.outputs.iter().map(|p| hash_file(p)).collect();
                    record.certificates = outcome
                        .certificates
                        .iter()
                        .map(|der| CertificateRecord {
                            subject: subject_of(der),
                            sha256_fingerprint: sha256_hex(der),
                            pem: crate::encoding::pem_encode("CERTIFICATE", der),
                        })
                        .collect();
                    record.audit_seq = audit_seqs;
                    record.summary = outcome.summary.clone();
                    say(&format!("step {:?} done: {}", step.id, outcome.summary));
                }
                StepEvent::Failed { error, audit_seqs } => {
                    record.status = Status::Failed;
                    record.audit_head = t.steps.last().and_then(|r| r.audit_head);
                    record.audit_seq = audit_seqs;
                    record.summary = error.to_string();
                }
            }
            if t.steps.last().is_some_and(|r| r.id == step.id) {
                t.steps.pop();
            }
            t.steps.push(record);
            t.write(&transcript_path).map_err(|e| e.to_string())
        };
        run::run_steps(
            keys,
            store,
            &steps,
            &|s| steps[..next].iter().any(|d| d.id == s.id),
            &options,
            &mut keeper,
        )
        .map_err(refused)?
    };
    t.ended = Some(now());
    t.audit_start = Some(end.start_seq);
    t.audit_end = Some(end.end_seq);
    let stopped = end.stopped.map(|e| e.to_string());
    // A failed step stays in the transcript as failed; `ended` says this run is over.
    t.write(&transcript_path).map_err(refused)?;
    Ok(Performed {
        transcript_path,
        transcript: t,
        skipped: next,
        stopped,
    })
}

/// A certificate's subject, for the transcript.
fn subject_of(der: &[u8]) -> String {
    use der::Decode;
    x509_cert::Certificate::from_der(der)
        .map(|c| c.tbs_certificate().subject().to_string())
        .unwrap_or_default()
}
