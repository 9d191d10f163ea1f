//! `hsmsign token ...`

use clap::Subcommand;
use hsmsign::keys::pkcs11::{PinSource, Pkcs11Uri, TokenError};
use serde_json::json;

use super::{CmdResult, Ctx, Failure, prompt};

/// Token commands.
#[derive(Subcommand, Debug)]
pub(crate) enum TokenCmd {
    /// List the tokens the module offers.
    List,
    /// What the module and a token are, and how hsmsign will generate keys and sign with it
    /// (read-only: no login, nothing created).
    Probe {
        /// The token (default: the only initialised token).
        #[arg(long, value_name = "URI")]
        token: Option<String>,
        /// Also log in, make a throwaway key of each kind the token can generate, check its
        /// provenance, sign and verify with it, and destroy it (recorded in the audit log).
        #[arg(long)]
        exercise: bool,
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

pub(super) fn run(ctx: &Ctx, cmd: TokenCmd) -> CmdResult {
    match cmd {
        TokenCmd::List => {
            let module = ctx.keys.module(None)?;
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
        TokenCmd::Probe { token, exercise } => {
            let uri = match &token {
                Some(t) => Some(ctx.keys.uri(t)?),
                None => None,
            };
            let module = ctx.keys.module(uri.as_ref())?;
            let uri = uri.unwrap_or_default();
            let report = hsmsign::keys::pkcs11::probe::probe(&module, &uri)?;
            if !exercise {
                ctx.emit(report.text(), json!(report));
                module.finalize();
                return Ok(());
            }
            let store = ctx.store()?;
            let results =
                hsmsign::keys::probe_exercise(&ctx.keys, store.as_ref(), &module, &uri, &report)?;
            let failed = results.iter().filter(|r| !r.ok()).count();
            ctx.emit(
                format!(
                    "{}\n{}",
                    report.text(),
                    hsmsign::keys::pkcs11::probe::exercise_text(&results)
                ),
                json!({"probe": report, "exercise": results}),
            );
            module.finalize();
            if failed > 0 {
                let token_uri = Pkcs11Uri {
                    token: Some(report.token.summary.label.clone()),
                    serial: Some(report.token.summary.serial),
                    ..uri
                };
                return Err(Failure::Failed(
                    TokenError::UnusableKey {
                        key: token_uri.to_string(),
                        reason: format!(
                            "{failed} key kind(s) that the token reports it can generate did not work end to end (see above)"
                        ),
                    }
                    .into(),
                ));
            }
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
            let so_source = ctx
                .keys
                .check_pin_source(PinSource::parse(&so_pin_source).map_err(TokenError::from)?)?;
            let user_source = match &ctx.keys.pin_source {
                Some(s) => ctx
                    .keys
                    .check_pin_source(PinSource::parse(s).map_err(TokenError::from)?)?,
                None => PinSource::Prompt,
            };
            let module = ctx.keys.module(None)?;
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
