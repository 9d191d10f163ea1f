//! Process-wide protection of the secrets hsmsign handles (PINs, passwords, key bundles).
//!
//! Buffers that hold a secret are wiped when dropped (`zeroize`, `secrecy`). What wiping cannot
//! cover is a copy of memory taken while a secret is alive: a core dump after a crash or an
//! abort. [`forbid_core_dumps`] turns those off for the whole process before anything is read.

/// Why core dumps could not be turned off.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot turn off core dumps for this process ({call}: {source}); hsmsign will not read a PIN while a crash could write it to a core file"
)]
pub struct CoreDumpError {
    /// The system call that failed.
    call: &'static str,
    /// The error it returned.
    source: std::io::Error,
}

/// Make this process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`: no core file, and no
/// `ptrace` attach or `/proc/PID/mem` read by other processes of the same user) and set the
/// core file size limit to zero (`RLIMIT_CORE`), which also covers core pipes that ignore the
/// dumpable flag's default handling. Child processes inherit the limit.
pub fn forbid_core_dumps() -> Result<(), CoreDumpError> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(|e| CoreDumpError {
        call: "prctl(PR_SET_DUMPABLE)",
        source: e.into(),
    })?;
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|e| CoreDumpError {
        call: "setrlimit(RLIMIT_CORE)",
        source: e.into(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn core_dumps_are_off_afterwards() {
        // A child process, so the test runner itself keeps its settings.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "secrets::tests::child",
                "--nocapture",
                "--include-ignored",
            ])
            .env("HSMSIGN_SECRETS_CHILD", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("dumpable=0 core=0 0"), "{text}");
    }

    #[test]
    #[ignore = "run by core_dumps_are_off_afterwards in a child process"]
    fn child() {
        if std::env::var_os("HSMSIGN_SECRETS_CHILD").is_none() {
            return;
        }
        super::forbid_core_dumps().unwrap();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let core = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap()
            .split_whitespace()
            .skip(4)
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let dumpable = rustix::process::dumpable_behavior().unwrap();
        println!(
            "dumpable={} core={core}",
            i32::from(dumpable != rustix::process::DumpableBehavior::NotDumpable)
        );
    }
}
