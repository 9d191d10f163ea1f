//! `hsmsign audit show|verify|anchor`: the hash-chained audit log of the state directory.

use clap::Subcommand;
use hsmsign::store::AuditHead;
use serde_json::json;

use super::{CmdResult, Ctx, Failure};

/// Audit commands.
#[derive(Subcommand, Debug)]
pub(crate) enum AuditCmd {
    /// List the audit records.
    Show {
        /// Only records with this sequence number or later.
        #[arg(long, value_name = "N")]
        since: Option<u64>,
    },
    /// Recompute the chain and check every state row against its record; exit 3 on a problem.
    Verify {
        /// A head kept outside the state directory (SEQ:HASH, as `audit verify` printed it):
        /// detects truncation and a rewritten chain.
        #[arg(long, value_name = "SEQ:HASH")]
        known_head: Option<String>,
    },
    /// Sign the current head of the chain with a CA's token key.
    Anchor {
        /// The CA whose key signs the head.
        #[arg(long, value_name = "CA")]
        ca: String,
    },
}

fn parse_head(s: &str) -> Result<AuditHead, Failure> {
    let bad = || {
        Failure::Usage(format!(
            "--known-head {s:?} must be SEQ:HASH as printed by `hsmsign audit verify` (e.g. 42:9f86d0...)"
        ))
    };
    let (seq, hash) = s.split_once(':').ok_or_else(bad)?;
    let seq = seq.parse().map_err(|_| bad())?;
    if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(AuditHead {
        seq,
        hash: hash.to_ascii_lowercase(),
    })
}

pub(super) fn run(ctx: &Ctx, cmd: AuditCmd) -> CmdResult {
    let store = ctx.require_store()?;
    match cmd {
        AuditCmd::Show { since } => {
            let records = store.audit_records(since)?;
            let mut text = String::new();
            for r in &records {
                let result = match &r.result {
                    hsmsign::store::Outcome::Ok => "ok".to_string(),
                    hsmsign::store::Outcome::Failed(m) => format!("FAILED: {m}"),
                };
                let who = match &r.operator.token {
                    Some(t) => format!("{} with token {t:?}", r.operator.os_user),
                    None => r.operator.os_user.clone(),
                };
                text.push_str(&format!(
                    "#{:<5} {} {:<16} {} ({result})\n       {}\n",
                    r.seq, r.time, r.operation, who, r.details
                ));
            }
            if records.is_empty() {
                text.push_str("no audit records");
            }
            ctx.emit(text.trim_end(), json!({"records": records}));
            Ok(())
        }
        AuditCmd::Verify { known_head } => {
            let known = known_head.as_deref().map(parse_head).transpose()?;
            let report = store.verify_audit_with(known.as_ref())?;
            let mut text = format!(
                "{} audit records checked in {}\n",
                report.records,
                store.path().display()
            );
            for a in &report.anchors {
                text.push_str(&format!(
                    "anchor #{}: CA {:?} signed the chain through #{} at {}\n",
                    a.seq, a.ca, a.head_seq, a.time
                ));
            }
            // The newest anchor record itself is never covered by an anchor: not worth a line.
            let last_anchor = report.anchors.last().map(|a| a.seq);
            if let Some(range) = report
                .not_yet_anchored()
                .filter(|r| !(r.start() == r.end() && Some(*r.start()) == last_anchor))
            {
                text.push_str(&format!(
                    "records #{}..#{} are not covered by an anchor yet (`hsmsign audit anchor --ca NAME`)\n",
                    range.start(),
                    range.end()
                ));
            }
            if let Some(h) = &report.head {
                text.push_str(&format!(
                    "head {}:{}\nKeep this head outside the state directory (paper, another machine) and pass it as --known-head next time: it detects a truncated or rewritten log.\n",
                    h.seq, h.hash
                ));
            }
            let mut doc = json!(report);
            doc["ok"] = json!(report.is_ok());
            match &report.problem {
                None => {
                    text.push_str("audit log OK: chain intact, every state row accounted for");
                    ctx.emit(text, doc);
                    Ok(())
                }
                Some(p) => {
                    text.push_str(&format!("audit log BROKEN at record #{}: {p}", p.seq()));
                    ctx.emit(text, doc);
                    Err(Failure::Verification(format!(
                        "the audit log in {} is broken at record #{}: {p}. Restore the state directory from a backup and compare; do not issue from it until explained",
                        store.path().display(),
                        p.seq()
                    )))
                }
            }
        }
        AuditCmd::Anchor { ca } => {
            let anchored = hsmsign::ca::anchor_audit(
                &ctx.keys,
                &store,
                &hsmsign::ca::AuditAnchor { ca: ca.clone() },
            )
            .map_err(super::ca_failure)?;
            ctx.emit(
                format!(
                    "CA {ca:?} signed the audit chain head; anchor record #{} ({})",
                    anchored.seq, anchored.hash
                ),
                json!({"anchor": anchored}),
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_head_must_be_seq_colon_sha256() {
        let h = super::parse_head(&format!("12:{}", "AB".repeat(32)))
            .ok()
            .unwrap();
        assert_eq!(h.seq, 12);
        assert_eq!(h.hash, "ab".repeat(32));
        for bad in ["12", "x:ab", "12:abc"] {
            assert!(super::parse_head(bad).is_err(), "{bad}");
        }
    }
}
