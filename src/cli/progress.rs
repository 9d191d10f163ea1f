//! The progress bar of long token batches (bar, count, rate, ETA) on stderr: a YubiKey signs
//! about 14 objects per second, so 10,000 objects take minutes and the operator deserves to
//! know. Drawn only on a terminal and never under `--json`.
//!
//! A YubiKey touch prompt goes through [`touch_prompt`], which prints above a running bar (the
//! bar's own `println`), so the bar never draws over it.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// The bar being drawn, if any: the touch prompt must print above it.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);
/// Whether the touch prompt has been shown in this run.
static TOUCH_SHOWN: AtomicBool = AtomicBool::new(false);

/// The text of the touch prompt.
const TOUCH_TEXT: &str = "(touch the YubiKey when it blinks: each signature may wait for a touch)";

/// A progress bar for one batch; it appears at the first update and is cleared when dropped
/// before the batch completed (an error message then starts on a clean line).
pub(super) struct Progress {
    what: &'static str,
    enabled: bool,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar for `what` (e.g. "objects signed").
    pub(super) fn new(what: &'static str, json: bool) -> Self {
        Self {
            what,
            enabled: !json && std::io::stderr().is_terminal(),
            bar: None,
        }
    }

    /// Report `done` of `total`.
    pub(super) fn update(&mut self, done: usize, total: usize) {
        if !self.enabled {
            return;
        }
        let what = self.what;
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total as u64),
                // Ten redraws a second at most: a fast token signs thousands per second.
                ProgressDrawTarget::stderr_with_hz(10),
            )
            .with_style(style(what));
            set_active(Some(bar.clone()));
            bar
        });
        bar.set_position(done as u64);
        if done >= total {
            bar.finish();
            set_active(None);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar
            && !bar.is_finished()
        {
            bar.finish_and_clear();
        }
        if self.bar.is_some() {
            set_active(None);
        }
    }
}

fn set_active(bar: Option<ProgressBar>) {
    if let Ok(mut active) = ACTIVE.lock() {
        *active = bar;
    }
}

/// `[#####-----] 1234/10000 objects signed (14/s, ETA 10m27s)`.
fn style(what: &str) -> ProgressStyle {
    let template =
        format!("[{{bar:30}}] {{pos}}/{{len}} {what} ({{rate}}, ETA {{eta_short}}) {{msg}}");
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>-")
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", s.per_sec());
        })
        .with_key(
            "eta_short",
            |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&format_secs(s.eta().as_secs_f64()));
            },
        )
}

// Only a YubiKey asks for a touch: without the `yubikey` feature nothing calls this.
#[cfg_attr(not(feature = "yubikey"), allow(dead_code))]
/// Tell the operator (on a terminal) to touch the YubiKey. Shown once per run, above the bar
/// when one runs; the bar then also carries a short reminder.
pub(super) fn touch_prompt() {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let active = ACTIVE.lock().ok().and_then(|a| a.clone());
    let first = !TOUCH_SHOWN.swap(true, Ordering::SeqCst);
    match active {
        Some(bar) => {
            if first {
                bar.println(TOUCH_TEXT);
            }
            bar.set_message("- touch the YubiKey when it blinks");
        }
        None if first => eprintln!("{TOUCH_TEXT}"),
        None => {}
    }
}

fn format_secs(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::{format_secs, style};
    use indicatif::{ProgressBar, ProgressDrawTarget};

    #[test]
    fn eta_is_readable() {
        assert_eq!(format_secs(5.2), "5s");
        assert_eq!(format_secs(754.0), "12m34s");
        assert_eq!(format_secs(7322.0), "2h02m");
    }

    #[test]
    fn the_bar_shows_count_rate_and_eta() {
        // An in-memory terminal: what an operator would see.
        let term = indicatif::InMemoryTerm::new(2, 100);
        let bar = ProgressBar::with_draw_target(
            Some(10),
            ProgressDrawTarget::term_like(Box::new(term.clone())),
        )
        .with_style(style("objects signed"));
        bar.set_position(4);
        bar.println("(touch)");
        bar.force_draw();
        let screen = term.contents();
        assert!(screen.contains("(touch)"), "{screen}");
        assert!(screen.contains("4/10 objects signed ("), "{screen}");
        assert!(screen.contains("/s, ETA "), "{screen}");
        assert!(screen.contains("[############>"), "{screen}");
    }
}
