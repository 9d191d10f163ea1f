//! The hsmsign command line: parse, call the library, print, map errors to exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before any PIN is read: no core file may ever hold one.
    if let Err(e) = hsmsign::secrets::forbid_core_dumps() {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let parsed = cli::Cli::parse();
    match cli::run(parsed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(cli::Failure::Failed(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
        Err(cli::Failure::Usage(msg)) => {
            eprintln!("error: {msg}\nRun `hsmsign --help` for usage.");
            ExitCode::from(2)
        }
        Err(cli::Failure::Verification(msg)) => {
            eprintln!("verification FAILED: {msg}");
            ExitCode::from(3)
        }
        Err(cli::Failure::Attention(msg)) => {
            eprintln!("attention: {msg}");
            ExitCode::from(4)
        }
    }
}
