//! Archive reading (ZIP and tar.gz) and JS7 signature verification over it, through the public
//! `verify_archive`: the input is written to a temporary file (the reader takes a path) and
//! checked against the trusted certificate made by make-seeds.sh.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use hsmsign::archive::{Limits, load_trusted_pem_file, verify_archive};
use libfuzzer_sys::fuzz_target;

struct Setup {
    _dir: tempfile::TempDir,
    file: PathBuf,
    trusted: Vec<Vec<u8>>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let pem = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds/trusted.pem");
        let trusted = match load_trusted_pem_file(&pem) {
            Ok(t) => t,
            Err(e) => panic!("run fuzz/make-seeds.sh first: {e}"),
        };
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("no temporary directory: {e}"),
        };
        let file = dir.path().join("input.archive");
        Setup {
            _dir: dir,
            file,
            trusted,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    if let Err(e) = std::fs::write(&s.file, data) {
        panic!("cannot write {}: {e}", s.file.display());
    }
    if let Ok(report) = verify_archive(&s.file, &s.trusted, None, false, &Limits::default()) {
        let _ = report.accepted();
        let _ = report.failures().count();
    }
});
