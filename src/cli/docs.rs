//! `hsmsign __generate-docs DIR`: man pages and shell completions generated from the clap
//! definitions, for the Debian package (scripts/package.sh). Nothing here is hand-written.
//!
//! The entry point sits outside the clap definitions on purpose: clap_complete offers hidden
//! subcommands too, and an operator's completion should not suggest a packaging tool.

use std::ffi::OsString;
use std::fs;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, CmdResult, Failure};

/// The word that selects the generator, as the first argument.
const WORD: &str = "__generate-docs";

/// `Some(result)` when the command line is `hsmsign __generate-docs DIR`, else `None` (the
/// arguments are then parsed as usual).
pub(crate) fn from_args(mut args: impl Iterator<Item = OsString>) -> Option<CmdResult> {
    let _program = args.next();
    if args.next()? != WORD {
        return None;
    }
    Some(match (args.next(), args.next()) {
        (Some(dir), None) => generate(Path::new(&dir)),
        _ => Err(Failure::Usage(format!(
            "{WORD} takes one argument: the directory to write man/ and completions/ into"
        ))),
    })
}

/// Write `DIR/man/hsmsign*.1` (one page per command and subcommand) and
/// `DIR/completions/{hsmsign.bash,_hsmsign,hsmsign.fish}`.
pub(crate) fn generate(dir: &Path) -> CmdResult {
    let man = dir.join("man");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    clap_mangen::generate_to(Cli::command(), &man)
        .with_context(|| format!("cannot write the man pages into {}", man.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = Cli::command();
        clap_complete::generate_to(shell, &mut cmd, "hsmsign", &completions).with_context(
            || {
                format!(
                    "cannot write the {shell} completion into {}",
                    completions.display()
                )
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{from_args, generate};
    use std::ffi::OsString;

    #[test]
    fn only_the_first_word_selects_the_generator() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>().into_iter();
        assert!(from_args(args(&["hsmsign", "token", "list"])).is_none());
        assert!(from_args(args(&["hsmsign"])).is_none());
        assert!(from_args(args(&["hsmsign", "archive", "__generate-docs"])).is_none());
        assert!(matches!(
            from_args(args(&["hsmsign", "__generate-docs"])),
            Some(Err(super::Failure::Usage(_)))
        ));
        assert!(matches!(
            from_args(args(&["hsmsign", "__generate-docs", "a", "b"])),
            Some(Err(super::Failure::Usage(_)))
        ));
    }

    #[test]
    fn every_subcommand_has_a_page_and_every_shell_a_completion() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(generate(dir.path()).is_ok());
        let page = std::fs::read_to_string(dir.path().join("man/hsmsign-archive-sign.1"))
            .expect("archive sign page");
        assert!(page.contains(".TH hsmsign-archive-sign"), "{page}");
        assert!(page.contains("\\-\\-out"), "the page lists --out");
        for name in ["hsmsign.1", "hsmsign-token-list.1", "hsmsign-cert-issue.1"] {
            assert!(dir.path().join("man").join(name).is_file(), "{name}");
        }
        // The hidden generator documents nothing of itself.
        assert!(!dir.path().join("man/hsmsign-__generate-docs.1").exists());
        let bash = std::fs::read_to_string(dir.path().join("completions/hsmsign.bash"))
            .expect("bash completion");
        assert!(bash.contains("complete -F _hsmsign"), "{bash}");
        assert!(!bash.contains("__generate-docs"));
        let fish = std::fs::read_to_string(dir.path().join("completions/hsmsign.fish"))
            .expect("fish completion");
        assert!(fish.contains("archive"), "{fish}");
        assert!(dir.path().join("completions/_hsmsign").is_file());
        assert!(dir.path().join("completions/hsmsign.fish").is_file());
    }
}
