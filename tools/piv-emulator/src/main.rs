//! piv-emulator: an emulated PIV card that pcscd sees through the vpcd virtual reader.
//!
//! Usage: `piv-emulator [--host HOST] [--port PORT] [--wait SECONDS] [--trace]`
//!
//! Connects to vpcd (default 127.0.0.1:35963, the first vpcd reader) and serves a
//! factory-new card until pcscd closes the connection. The card lives in RAM only.

mod card;
mod platform;

use std::{
    process::ExitCode,
    thread::sleep,
    time::{Duration, Instant},
};

use vpicc::VSmartCard;

struct Args {
    host: String,
    port: u16,
    wait: Duration,
    trace: bool,
}

const USAGE: &str = "usage: piv-emulator [--host HOST] [--port PORT] [--wait SECONDS] [--trace]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".to_owned(),
        port: 35963,
        wait: Duration::from_secs(10),
        trace: std::env::var_os("PIV_EMULATOR_TRACE").is_some(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--host" => args.host = value("--host")?,
            "--port" => {
                let v = value("--port")?;
                args.port = v
                    .parse()
                    .map_err(|_| format!("--port {v}: not a port number\n{USAGE}"))?;
            }
            "--wait" => {
                let v = value("--wait")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--wait {v}: not a number of seconds\n{USAGE}"))?;
                args.wait = Duration::from_secs(secs);
            }
            "--trace" => args.trace = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// Connects to vpcd, retrying until `wait` has passed (pcscd may still be starting).
fn connect(args: &Args) -> Result<vpicc::Connection, String> {
    let address = format!("{}:{}", args.host, args.port);
    let deadline = Instant::now() + args.wait;
    loop {
        match vpicc::connect_socket(&address) {
            Ok(connection) => return Ok(connection),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "cannot connect to vpcd at {address}: {e}; is pcscd running with the vpcd \
                     driver (package vsmartcard-vpcd)?"
                ))
            }
            Err(_) => sleep(Duration::from_millis(100)),
        }
    }
}

/// Adapts [`card::Card`] to the vpcd protocol.
struct VirtualCard<'c>(card::Card<'c>);

impl VSmartCard for VirtualCard<'_> {
    fn power_off(&mut self) {
        self.0.reset();
    }
    fn reset(&mut self) {
        self.0.reset();
    }
    fn execute(&mut self, msg: &[u8]) -> Vec<u8> {
        self.0.handle(msg)
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("piv-emulator: {message}");
            return ExitCode::from(2);
        }
    };
    let connection = match connect(&args) {
        Ok(connection) => connection,
        Err(message) => {
            eprintln!("piv-emulator: {message}");
            return ExitCode::FAILURE;
        }
    };
    let trace = args.trace;
    platform::with_ram_client("piv", move |client| {
        let mut card = VirtualCard(card::Card::new(client, trace));
        match connection.run(&mut card) {
            Ok(()) => ExitCode::SUCCESS,
            // pcscd going away ends the card's life; anything else is reported.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("piv-emulator: connection to vpcd failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
