//! Output files that appear whole or not at all, and never replace an existing file unless
//! the user said `--force`.
//!
//! Data is written to a temporary file in the target's directory, flushed to disk, then moved
//! into place: with `force == false` by a hard link (which fails if the target exists, so a file
//! that appeared meanwhile is never replaced), with `force == true` by a rename. The directory is
//! synced afterwards so the new name survives a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Errors while checking or writing an output file.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The output path exists and `--force` was not given.
    #[error(
        "output file {0} already exists; hsmsign never overwrites a file. Choose another path, move the file away, or pass --force"
    )]
    Exists(PathBuf),
    /// The output's directory does not exist.
    #[error("cannot write {path}: directory {dir} does not exist; create it first")]
    NoDirectory {
        /// The output path.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
    /// An I/O error.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The output path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Check, before any work is done, that `path` may be written: its directory exists and (unless
/// `force`) the file does not.
pub fn check_new(path: &Path, force: bool) -> Result<(), OutputError> {
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(OutputError::NoDirectory {
            path: path.to_path_buf(),
            dir,
        });
    }
    if !force && fs::symlink_metadata(path).is_ok() {
        return Err(OutputError::Exists(path.to_path_buf()));
    }
    Ok(())
}

/// Write `data` to `path` atomically (see the module documentation).
pub fn write_new(path: &Path, data: &[u8], force: bool) -> Result<(), OutputError> {
    let mut out = AtomicFile::create(path, force)?;
    out.write_all(data).map_err(|source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    out.commit()
}

/// A file being written; it becomes visible at its path only on [`AtomicFile::commit`]. Dropped
/// without commit, the temporary file is removed and nothing appears.
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    file: Option<File>,
    force: bool,
}

impl AtomicFile {
    /// Start writing `path`. Fails at once if it exists (unless `force`).
    pub fn create(path: &Path, force: bool) -> Result<Self, OutputError> {
        check_new(path, force)?;
        let dir = parent_dir(path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let io_err = |source| OutputError::Io {
            path: path.to_path_buf(),
            source,
        };
        // A random suffix so that two processes never share a temporary file.
        let mut last = None;
        for _ in 0..16 {
            let temp = dir.join(format!(".{name}.hsmsign-{:016x}.tmp", random_u64()));
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => {
                    return Ok(Self {
                        target: path.to_path_buf(),
                        temp,
                        file: Some(file),
                        force,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(io_err(e)),
            }
        }
        Err(io_err(
            last.unwrap_or_else(|| io::Error::other("no temp name")),
        ))
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Flush to disk and move into place.
    pub fn commit(mut self) -> Result<(), OutputError> {
        let io_err = |source| OutputError::Io {
            path: self.target.clone(),
            source,
        };
        if let Some(file) = self.file.take() {
            file.sync_all().map_err(io_err)?;
        }
        if self.force {
            fs::rename(&self.temp, &self.target).map_err(io_err)?;
        } else {
            match fs::hard_link(&self.temp, &self.target) {
                Ok(()) => {
                    let _ = fs::remove_file(&self.temp);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(OutputError::Exists(self.target.clone()));
                }
                Err(e) => return Err(io_err(e)),
            }
        }
        if let Ok(d) = File::open(parent_dir(&self.target)) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.as_mut() {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("file already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Remove the temp file: after a successful commit it is already gone (or renamed).
        let _ = fs::remove_file(&self.temp);
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS; good enough for a unique temporary name.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_overwrites_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.pem");
        write_new(&p, b"one", false).unwrap();
        let err = write_new(&p, b"two", false).unwrap_err();
        assert!(matches!(err, OutputError::Exists(_)));
        assert_eq!(fs::read(&p).unwrap(), b"one");
        write_new(&p, b"three", true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"three");
        // Only the output itself is left: no temporary files.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropped_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.zip");
        {
            let mut f = AtomicFile::create(&p, false).unwrap();
            f.write_all(b"partial").unwrap();
        }
        assert!(!p.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn missing_directory_is_named() {
        let err = check_new(Path::new("/nonexistent-dir-hsmsign/x.pem"), false).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir-hsmsign"));
    }
}
