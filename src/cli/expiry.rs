//! `hsmsign expiry`: what in the state ends soon, what JS7 component depends on it and what
//! breaks; exit status 4 when anything ends within the window (for monitoring).

use clap::Args;
use hsmsign::expiry;
use serde_json::json;
use time::OffsetDateTime;

use super::{CmdResult, Ctx, Failure};

/// `hsmsign expiry` options.
#[derive(Args, Debug)]
pub(crate) struct ExpiryArgs {
    /// The window: anything ending within it (or already expired) is reported and makes the exit
    /// status 4. Days: 90d, 30 or 12w.
    #[arg(long, value_name = "DAYS", default_value = "90d", value_parser = expiry::parse_window)]
    pub within: time::Duration,
    /// List everything, not only what ends within the window (the exit status still follows
    /// the window).
    #[arg(long)]
    pub all: bool,
}

pub(super) fn run(ctx: &Ctx, args: ExpiryArgs) -> CmdResult {
    let store = ctx.require_store()?;
    let now = OffsetDateTime::now_utc();
    let items = expiry::report(&store, now)?;
    let due: Vec<&expiry::Item> = items
        .iter()
        .filter(|i| i.within(now, args.within))
        .collect();
    let shown: Vec<&expiry::Item> = if args.all {
        items.iter().collect()
    } else {
        due.clone()
    };
    let days = args.within.whole_days();
    let mut text = String::new();
    for i in &shown {
        let left = if i.expired {
            format!("EXPIRED {} day(s) ago", -i.days_left)
        } else {
            format!("{} day(s) left", i.days_left)
        };
        let name = if i.kind == "ca" {
            format!("CA {:?}", i.name)
        } else {
            format!("certificate {}", i.name)
        };
        text.push_str(&format!(
            "{name} ({}) {}\n  ends {}: {left}\n  used by: {}\n  when it expires: {}\n",
            i.profile, i.subject, i.not_after, i.depends, i.breaks
        ));
    }
    if due.is_empty() {
        text.push_str(&format!(
            "Nothing ends within {days} day(s) ({} certificate(s) checked).",
            items.len()
        ));
    } else {
        text.push_str(&format!(
            "{} of {} certificate(s) end within {days} day(s) or have ended: renew them (docs/security-officer.md, \"Rollover\").",
            due.len(),
            items.len()
        ));
    }
    ctx.emit(
        text.trim_end(),
        json!({
            "within_days": days,
            "checked": items.len(),
            "due": due.len(),
            "certificates": shown,
        }),
    );
    if due.is_empty() {
        Ok(())
    } else {
        Err(Failure::Attention(format!(
            "{} certificate(s) end within {days} day(s) or have ended",
            due.len()
        )))
    }
}
