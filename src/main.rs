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
    // Packaging only: man pages and completions from the clap definitions.
    if let Some(result) = cli::docs::from_args(std::env::args_os()) {
        return exit_code(result);
    }
    exit_code(cli::run(cli::Cli::parse()))
}

/// The exit status of a command's result, with its message on stderr.
fn exit_code(result: cli::CmdResult) -> ExitCode {
    match result {
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
