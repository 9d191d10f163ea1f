//! `hsmsign token ...`

use clap::Subcommand;
use hsmsign::token::{PinSource, TokenError};
use serde_json::json;

use super::{CmdResult, Ctx, Failure, prompt};

/// Token commands.
#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// List the tokens the module offers.
    List,
    /// What the module and a token are, and how hsmsign will generate keys and sign with it
    /// (read-only: no login, nothing created).
    Probe {
        /// The token (default: the only initialised token).
        #[arg(long, value_name = "URI")]
        token: Option<String>,
    },
    /// Initialise a test/dev token (SoftHSM2) in a free slot and set its user PIN.
    Init {
        /// The new token's label.
        #[arg(long)]
        label: String,
        /// Where the security officer PIN comes from (prompt, env:VAR, file:PATH, fd:N).
        #[arg(long, value_name = "SRC")]
        so_pin_source: String,
    },
}

pub fn run(ctx: &Ctx, cmd: TokenCmd) -> CmdResult {
    match cmd {
        TokenCmd::List => {
            let module = ctx.module(None)?;
            let tokens = module.tokens()?;
            let mut text = format!("Module {}\n", module.path().display());
            if tokens.is_empty() {
                text.push_str("No tokens.\n");
            }
            for t in &tokens {
                text.push_str(&format!(
                    "slot {}: {}\n  label: {}\n  manufacturer: {}\n  model: {}\n  serial: {}\n  flags: {}\n",
                    t.slot_id,
                    if t.initialized { t.uri.as_str() } else { "(free slot, not initialised)" },
                    t.label,
                    t.manufacturer,
                    t.model,
                    t.serial,
                    t.flags.join(", ")
                ));
            }
            ctx.emit(
                text.trim_end(),
                json!({"module": module.path(), "tokens": tokens}),
            );
            module.finalize();
            Ok(())
        }
        TokenCmd::Probe { token } => {
            let uri = match &token {
                Some(t) => Some(ctx.uri(t)?),
                None => None,
            };
            let module = ctx.module(uri.as_ref())?;
            let report = hsmsign::token::probe::probe(&module, &uri.unwrap_or_default())?;
            ctx.emit(report.text(), json!(report));
            module.finalize();
            Ok(())
        }
        TokenCmd::Init {
            label,
            so_pin_source,
        } => {
            if label.is_empty() || label.len() > 32 {
                return Err(Failure::Usage(
                    "--label must be 1 to 32 characters (the PKCS#11 label field is 32 bytes)"
                        .into(),
                ));
            }
            let so_source = PinSource::parse(&so_pin_source).map_err(TokenError::from)?;
            let user_source = match &ctx.pin_source {
                Some(s) => PinSource::parse(s).map_err(TokenError::from)?,
                None => PinSource::Prompt,
            };
            let module = ctx.module(None)?;
            let so_pin = so_source
                .read(&format!("New SO PIN for token {label:?}"), &prompt)
                .map_err(TokenError::from)?;
            let user_pin = user_source
                .read(&format!("New user PIN for token {label:?}"), &prompt)
                .map_err(TokenError::from)?;
            let t = module.init_token(&label, &so_pin, &user_pin)?;
            ctx.emit(
                format!(
                    "Initialised token {:?} (serial {})\n{}",
                    t.label, t.serial, t.uri
                ),
                json!({"token": t}),
            );
            module.finalize();
            Ok(())
        }
    }
}
