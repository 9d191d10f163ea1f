//! A progress line on stderr (count, rate, ETA) for long token batches: a YubiKey signs about
//! 14 objects per second, so 10,000 objects take minutes and the operator deserves to know.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Draws `done/total, rate/s, ETA` on stderr, at most ten times a second, only on a terminal
/// and never under `--json`.
pub struct Progress {
    what: &'static str,
    start: Instant,
    last: Option<Instant>,
    enabled: bool,
}

impl Progress {
    /// A progress line for `what` (e.g. "signed").
    pub fn new(what: &'static str, json: bool) -> Self {
        Self {
            what,
            start: Instant::now(),
            last: None,
            enabled: !json && std::io::stderr().is_terminal(),
        }
    }

    /// Report `done` of `total`.
    pub fn update(&mut self, done: usize, total: usize) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if done < total
            && self
                .last
                .is_some_and(|l| now - l < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        let secs = (now - self.start).as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 {
            format_secs((total.saturating_sub(done)) as f64 / rate)
        } else {
            "?".into()
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{done}/{total} {} ({rate:.0}/s, ETA {eta})   ",
            self.what
        );
        if done >= total {
            let _ = writeln!(err);
        }
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
    use super::format_secs;

    #[test]
    fn eta_is_readable() {
        assert_eq!(format_secs(5.2), "5s");
        assert_eq!(format_secs(754.0), "12m34s");
        assert_eq!(format_secs(7322.0), "2h02m");
    }
}
