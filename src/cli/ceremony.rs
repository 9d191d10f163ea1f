//! `hsmsign ceremony check|record|run`: parse, call the library's ceremony module, print.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use hsmsign::ceremony::check::{self, NoState, Paths};
use hsmsign::ceremony::file::CeremonyFile;
use hsmsign::ceremony::perform::{CeremonyRun, PerformError, perform};
use hsmsign::ceremony::record;
use hsmsign::ceremony::site::SiteFile;
use hsmsign::ceremony::transcript::{Status, Transcript};
use hsmsign::keys::{AskOnce, KeyAccess};

use super::{CmdResult, Ctx, Failure};

/// Ceremony commands.
#[derive(Subcommand, Debug)]
pub(crate) enum CeremonyCmd {
    /// Check a ceremony file without touching a token or the state, and print its plan.
    Check {
        /// The ceremony file (TOML).
        file: PathBuf,
        /// The site file binding the token roles to tokens (default: HSMSIGN_SITE_TOKEN_<ROLE>
        /// and friends from the environment).
        #[arg(long, value_name = "SITE")]
        site: Option<PathBuf>,
        /// Where the ceremony's outputs are to go (default: the working directory).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Render a transcript as a printable HTML record for the officers and witnesses.
    Record {
        /// The JSON transcript a run wrote.
        transcript: PathBuf,
        /// The HTML file to write (never overwritten).
        #[arg(long, value_name = "FILE.html")]
        out: PathBuf,
    },
    /// Run a ceremony: check it, then do its steps in order, asking before each that touches a
    /// token; a second run of the same file continues after the last completed step.
    Run {
        /// The ceremony file.
        file: PathBuf,
        /// The site file binding the token roles to tokens (default: the environment).
        #[arg(long, value_name = "SITE")]
        site: Option<PathBuf>,
        /// Where the ceremony's outputs go (default: the working directory).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// The transcript to write (default: NAME.transcript.json in the output directory).
        #[arg(long, value_name = "FILE")]
        transcript: Option<PathBuf>,
        /// Rehearse on throwaway SoftHSM2 tokens, one per role, with stand-ins for what only the
        /// site has; nothing of the real state or tokens is touched.
        #[arg(long)]
        rehearse: bool,
        /// With --rehearse: the rehearsal's directory (default: NAME.rehearsal-TIME here).
        #[arg(long, value_name = "DIR", requires = "rehearse")]
        rehearsal_dir: Option<PathBuf>,
        /// Do not ask before each step that touches a token.
        #[arg(long)]
        yes: bool,
        /// Inside a rehearsal: the stand-ins the rehearsal made.
        #[arg(long, value_name = "FILE", hide = true)]
        rehearsal_substitutions: Option<PathBuf>,
    },
}

pub(super) fn run(ctx: &Ctx, cmd: CeremonyCmd) -> CmdResult {
    match cmd {
        CeremonyCmd::Check {
            file,
            site,
            out_dir,
        } => run_check(ctx, &file, site.as_deref(), out_dir),
        CeremonyCmd::Record { transcript, out } => {
            let t = Transcript::read(&transcript)?;
            let html = record::render(&t);
            hsmsign::output::write_new(&out, html.as_bytes(), false)?;
            ctx.emit(
                format!("wrote the record of {:?} to {}", t.name, out.display()),
                serde_json::json!({ "record": out, "steps": t.steps.len() }),
            );
            Ok(())
        }
        CeremonyCmd::Run {
            file,
            site,
            out_dir,
            transcript,
            rehearse,
            rehearsal_dir,
            yes,
            rehearsal_substitutions,
        } => {
            if rehearse {
                return run_rehearsal(ctx, &file, rehearsal_dir);
            }
            let rehearsal = match &rehearsal_substitutions {
                Some(p) => Some(
                    serde_json::from_slice(&std::fs::read(p)?)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
                ),
                None => None,
            };
            // One login per token for the whole ceremony.
            let once = AskOnce::new(ctx.keys.officer);
            let keys = KeyAccess {
                module: ctx.keys.module.clone(),
                pin_source: ctx.keys.pin_source.clone(),
                allow_pin_value: false,
                strict_permissions: ctx.keys.strict_permissions,
                state: ctx.keys.state.clone(),
                officer: &once,
            };
            let request = CeremonyRun {
                file,
                site,
                out_dir: out_dir.unwrap_or_else(|| PathBuf::from(".")),
                transcript,
                yes,
                rehearsal,
            };
            let open_store = || match ctx.require_store() {
                Ok(s) => Ok(s),
                Err(Failure::Failed(e)) => Err(e.to_string()),
                Err(Failure::Usage(m) | Failure::Verification(m) | Failure::Attention(m)) => Err(m),
            };
            let done = match perform(&keys, &open_store, &request, &mut |line| {
                eprintln!("{line}")
            }) {
                Ok(d) => d,
                Err(PerformError::Findings(report)) => {
                    print!("{}", report.human());
                    return Err(Failure::Failed(anyhow::anyhow!(
                        "{} finding(s) in {}: correct them and run again; no token was touched",
                        report.findings.len(),
                        request.file.display()
                    )));
                }
                Err(e) => return Err(Failure::Failed(e.into())),
            };
            let t = &done.transcript;
            let finished = t.steps.iter().filter(|s| s.status == Status::Done).count();
            ctx.emit(
                format!(
                    "ceremony {:?}: {finished} of {} step(s) done{}; transcript {}\nPrint the record with `hsmsign ceremony record {} --out RECORD.html`.",
                    t.name,
                    t.steps.len().max(finished),
                    if done.skipped > 0 {
                        format!(" ({} by an earlier run)", done.skipped)
                    } else {
                        String::new()
                    },
                    done.transcript_path.display(),
                    done.transcript_path.display()
                ),
                serde_json::json!({"transcript": done.transcript_path, "steps_done": finished, "stopped": done.stopped}),
            );
            match done.stopped {
                None => Ok(()),
                Some(why) => Err(Failure::Failed(anyhow::anyhow!(
                    "{why}\nThe transcript records what was done; run the same file again to continue after the last completed step."
                ))),
            }
        }
    }
}

fn run_check(ctx: &Ctx, file: &Path, site: Option<&Path>, out_dir: Option<PathBuf>) -> CmdResult {
    let (ceremony, _) = CeremonyFile::read(file)?;
    let (binding, source) = match site {
        Some(p) => (SiteFile::read(p)?.0, format!("site file {}", p.display())),
        None => (
            SiteFile::from_env(ceremony.tokens.keys().map(String::as_str), &|k| {
                std::env::var(k).ok()
            })
            .map_err(Failure::Usage)?,
            "the environment".to_owned(),
        ),
    };
    let input_dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let paths = Paths {
        input_dir,
        output_dir: out_dir.unwrap_or_else(|| PathBuf::from(".")),
    };
    let mut report = check::check(&ceremony, Some((&binding, &source)), &paths, &NoState);
    // With a state that exists: each step against it, with the use cases' own checks (opened
    // only to read; no token is touched).
    let state_db = ctx.state.as_ref().map(|d| d.join(hsmsign::store::DB_FILE));
    if report.ok()
        && let Some(db) = state_db.filter(|db| db.exists())
    {
        let store = ctx.require_store()?;
        let steps = hsmsign::ceremony::plan::build(
            &ceremony,
            &report,
            &binding,
            &paths,
            &Default::default(),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        report.findings =
            hsmsign::ceremony::perform::state_findings(&ctx.keys, &store, &steps, &report, 0);
        report.notes.push(check::Finding {
            step: None,
            message: format!("checked against the state in {}", db.display()),
        });
    }
    let json = serde_json::to_value(&report).unwrap_or_default();
    if ctx.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    } else {
        print!("{}", report.human());
    }
    if report.ok() {
        Ok(())
    } else {
        Err(Failure::Failed(anyhow::anyhow!(
            "{} finding(s) in {}: correct them and check again; no token was touched",
            report.findings.len(),
            file.display()
        )))
    }
}

/// `ceremony run --rehearse`: throwaway tokens and stand-ins, then the same run in a child
/// process whose SoftHSM2 configuration points at them.
fn run_rehearsal(ctx: &Ctx, file: &Path, dir: Option<PathBuf>) -> CmdResult {
    use hsmsign::ceremony::rehearsal;
    let (ceremony, _) = CeremonyFile::read(file)?;
    let file = file.canonicalize()?;
    let input_dir = file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let dir = dir.unwrap_or_else(|| {
        PathBuf::from(format!(
            "{}.rehearsal-{}",
            ceremony.name,
            time::OffsetDateTime::now_utc().unix_timestamp()
        ))
    });
    let exe = std::env::current_exe()?;
    let prepared = rehearsal::prepare(&exe, &ceremony, &input_dir, &dir)?;
    // The file itself: a rehearsal of a file with findings would prove nothing.
    let report = check::check(
        &ceremony,
        None,
        &Paths {
            input_dir,
            output_dir: prepared.rehearsal.out.clone(),
        },
        &NoState,
    );
    if !report.ok() {
        print!("{}", report.human());
        return Err(Failure::Failed(anyhow::anyhow!(
            "{} finding(s) in {}: correct them and rehearse again",
            report.findings.len(),
            file.display()
        )));
    }
    for s in &prepared.stand_ins {
        eprintln!("rehearsal stand-in: {s}");
    }
    let r = &prepared.rehearsal;
    let transcript = r.dir.join("transcript.json");
    let mut cmd = r.command(&exe);
    if ctx.json {
        cmd.arg("--json");
    }
    let status = cmd
        .args(["ceremony", "run"])
        .arg(&file)
        .arg("--site")
        .arg(&prepared.site)
        .arg("--out-dir")
        .arg(&r.out)
        .arg("--transcript")
        .arg(&transcript)
        .arg("--rehearsal-substitutions")
        .arg(&prepared.substitutions)
        .arg("--yes")
        .stdin(std::process::Stdio::null())
        .status()?;
    eprintln!(
        "rehearsal directory {} (throwaway tokens, state, outputs and transcript; delete it when reviewed)",
        r.dir.display()
    );
    if status.success() {
        Ok(())
    } else {
        Err(Failure::Failed(anyhow::anyhow!(
            "the rehearsal of {} failed (see above); the transcript {} shows how far it came",
            file.display(),
            transcript.display()
        )))
    }
}
