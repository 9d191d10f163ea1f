//! The runner: steps done in order, each checked against the state right before it, each that
//! touches a token shown and confirmed, the audit log bracketed by `ceremony.start` and
//! `ceremony.end` records, and every step reported (started, done or failed) to the caller, who
//! keeps the transcript.

use super::action::{Action, Outcome};
use crate::keys::{KeyAccess, operator};
use crate::store::{AuditEntry, Store};

/// A step ready to run.
#[derive(Clone, Debug)]
pub struct PlannedStep {
    /// Its id in the ceremony file.
    pub id: String,
    /// Its kind in the ceremony file.
    pub kind: String,
    /// What it does.
    pub action: Action,
    /// SHA-256 (hex) of its resolved parameters and input files: with the id, what identifies a
    /// completed step when a ceremony is run again.
    pub input_sha256: String,
    /// What the officer is shown before it runs.
    pub description: String,
}

/// What happened to a step, as it happens.
#[derive(Debug)]
pub enum StepEvent<'a> {
    /// It is about to run; the audit log's last record is `audit_head`.
    Starting {
        /// The last audit record before the step.
        audit_head: u64,
    },
    /// It ran.
    Done {
        /// What it did.
        outcome: &'a Outcome,
        /// The audit records it wrote.
        audit_seqs: Vec<u64>,
    },
    /// It failed; nothing after it runs.
    Failed {
        /// Why.
        error: &'a str,
        /// The audit records it wrote before it failed (a failed signing is recorded).
        audit_seqs: Vec<u64>,
    },
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A step failed.
    #[error("step {id:?} ({command}) failed: {error}")]
    Step {
        /// The step.
        id: String,
        /// Its command.
        command: &'static str,
        /// Why.
        error: String,
    },
    /// The officer did not confirm a step.
    #[error(
        "step {0:?} was not confirmed: the ceremony stopped before it; run it again to continue from there"
    )]
    NotConfirmed(String),
    /// The state or the caller's transcript failed.
    #[error("{0}")]
    Record(String),
}

fn head(store: &Store) -> Result<u64, RunError> {
    Ok(store
        .audit_head()
        .map_err(|e| RunError::Record(e.to_string()))?
        .map_or(0, |h| h.seq))
}

/// How a run goes.
pub struct RunOptions<'a> {
    /// The ceremony's name.
    pub name: &'a str,
    /// SHA-256 (hex) of the ceremony file.
    pub file_sha256: &'a str,
    /// SHA-256 (hex) of the site file, if one bound the tokens.
    pub site_sha256: Option<&'a str>,
    /// Whether this is a rehearsal on throwaway tokens.
    pub rehearsal: bool,
    /// Do not ask before token-touching steps.
    pub yes: bool,
}

/// How a run ended: the audit records that bracket it, and why it stopped early, if it did.
#[derive(Debug)]
pub struct RunEnd {
    /// The `ceremony.start` record.
    pub start_seq: u64,
    /// The `ceremony.end` record.
    pub end_seq: u64,
    /// Why the run stopped before the last step, if it did.
    pub stopped: Option<RunError>,
}

/// Run `steps` in order, skipping those `skip` says were completed by an earlier run. Each step
/// is validated against the state right before it runs (a step that depends on a CA an earlier
/// step makes can only be checked then), and each token-touching step is confirmed unless
/// `options.yes`. `report` is told of every step as it starts, ends or fails; an error from it
/// (the transcript could not be written) stops the run before the next step. The run is
/// recorded even when a step stops it: [`RunEnd::stopped`] says why.
pub fn run_steps(
    keys: &KeyAccess<'_>,
    store: &Store,
    steps: &[PlannedStep],
    skip: &dyn Fn(&PlannedStep) -> bool,
    options: &RunOptions<'_>,
    report: &mut dyn FnMut(&PlannedStep, StepEvent<'_>) -> Result<(), String>,
) -> Result<RunEnd, RunError> {
    let start = store
        .record(
            AuditEntry::new("ceremony.start", operator(None))
                .param("ceremony", options.name)
                .param("file_sha256", options.file_sha256)
                .param("site_sha256", options.site_sha256.unwrap_or("-"))
                .param("rehearsal", options.rehearsal.to_string())
                .param("steps", steps.len().to_string()),
        )
        .map_err(|e| RunError::Record(e.to_string()))?;
    let mut outcome: Result<(), RunError> = Ok(());
    for step in steps {
        if skip(step) {
            continue;
        }
        let r = run_one(keys, store, step, options, report);
        if let Err(e) = r {
            outcome = Err(e);
            break;
        }
    }
    let end = store
        .record({
            let entry = AuditEntry::new("ceremony.end", operator(None))
                .param("ceremony", options.name)
                .param("file_sha256", options.file_sha256)
                .param("started_at", start.seq.to_string());
            match &outcome {
                Ok(()) => entry,
                Err(e) => entry.failed(e.to_string()),
            }
        })
        .map_err(|e| RunError::Record(e.to_string()))?;
    Ok(RunEnd {
        start_seq: start.seq,
        end_seq: end.seq,
        stopped: outcome.err(),
    })
}

fn run_one(
    keys: &KeyAccess<'_>,
    store: &Store,
    step: &PlannedStep,
    options: &RunOptions<'_>,
    report: &mut dyn FnMut(&PlannedStep, StepEvent<'_>) -> Result<(), String>,
) -> Result<(), RunError> {
    let fail = |error: String| RunError::Step {
        id: step.id.clone(),
        command: step.action.command(),
        error,
    };
    // Checked against the state as it is now, before any token of this step is touched.
    step.action.validate(keys, store).map_err(fail)?;
    if step.action.touches_token() && !options.yes {
        let what = format!(
            "Step {:?} ({}): {}",
            step.id,
            step.action.command(),
            step.description
        );
        if !keys.officer.confirm(&what) {
            return Err(RunError::NotConfirmed(step.id.clone()));
        }
    }
    let before = head(store)?;
    report(step, StepEvent::Starting { audit_head: before }).map_err(RunError::Record)?;
    let result = step.action.run(keys, store);
    let after = head(store)?;
    let audit_seqs: Vec<u64> = (before + 1..=after).collect();
    match result {
        Ok(outcome) => {
            report(
                step,
                StepEvent::Done {
                    outcome: &outcome,
                    audit_seqs,
                },
            )
            .map_err(RunError::Record)?;
            Ok(())
        }
        Err(error) => {
            report(
                step,
                StepEvent::Failed {
                    error: &error,
                    audit_seqs,
                },
            )
            .map_err(RunError::Record)?;
            Err(fail(error))
        }
    }
}
