//! Records the git commit the binary is built from and the compiler that builds it, for
//! `hsmsign --version`.
//!
//! Nothing here depends on the time or the build directory, so two builds of the same commit
//! give the same binary (docs/release.md). `HSMSIGN_GIT_COMMIT` overrides the lookup (a build
//! from a source archive can name its commit); outside a git checkout the commit is "unknown".

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=HSMSIGN_GIT_COMMIT");
    let commit = match std::env::var("HSMSIGN_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_owned(),
        _ => {
            // Rebuild when HEAD moves: HEAD itself (a branch switch or a detached checkout)
            // and the files holding the branch's commit.
            if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
                let dir = PathBuf::from(dir);
                println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
                if let Some(common) =
                    git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
                {
                    let common = PathBuf::from(common);
                    println!(
                        "cargo:rerun-if-changed={}",
                        common.join("packed-refs").display()
                    );
                    if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
                        println!("cargo:rerun-if-changed={}", common.join(head_ref).display());
                    }
                }
            }
            // The commit checked out, not whether the work tree differs from it: cargo would
            // not rerun this script on every edit, so a "modified" mark could not be trusted.
            git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into())
        }
    };
    println!("cargo:rustc-env=HSMSIGN_GIT_COMMIT={commit}");
    // The compiler's own version line (cargo hands build scripts the compiler it uses).
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HSMSIGN_RUSTC_VERSION={rustc_version}");
}
