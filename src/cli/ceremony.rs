//! `hsmsign ceremony check|record|run`: parse, call the library's ceremony module, print.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use hsmsign::ceremony::check::{self, NoState, Paths};
use hsmsign::ceremony::file::CeremonyFile;
use hsmsign::ceremony::record;
use hsmsign::ceremony::site::SiteFile;
use hsmsign::ceremony::transcript::Transcript;

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
    /// Run a ceremony: not wired to the tokens in this version.
    Run {
        /// The ceremony file.
        file: PathBuf,
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
        CeremonyCmd::Run { file } => Err(Failure::Usage(format!(
            "`ceremony run` is not wired to the tokens in this version of hsmsign; check {} with `hsmsign ceremony check` and run its steps as the plan lists them",
            file.display()
        ))),
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
    let report = check::check(&ceremony, Some((&binding, &source)), &paths, &NoState);
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
