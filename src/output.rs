//! Output files that appear whole or not at all, and never replace an existing file unless
//! the user said `--force`.
//!
//! Data is written to a temporary file in the target's directory, flushed to disk, then moved
//! into place: with `force == false` by a hard link (which fails if the target exists, so a file
//! that appeared meanwhile is never replaced), with `force == true` by a rename. The directory is
//! synced afterwards so the new name survives a crash.
//!
//! `--force` replaces only a regular file: never a device, FIFO, socket, directory or symbolic
//! link (renaming over `/dev/null` would replace the device node). All outputs of one command
//! are checked together before any signature is made ([`check_distinct`], and reserving each
//! [`AtomicFile`] up front proves its directory writable). Files that hold secrets (key
//! bundles) are created with mode 0600 whatever the umask.

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
    /// `--force` was given, but what is at the path is not a regular file.
    #[error(
        "output {path} is {found}; --force replaces only a regular file. Name a regular file (or a new path) instead"
    )]
    NotReplaceable {
        /// The output path.
        path: PathBuf,
        /// What is there ("a character device", "a symbolic link", ...).
        found: &'static str,
    },
    /// Two outputs of one command, or an output and an input, are the same file.
    #[error(
        "{first} and {second} name the same file; every output of a command must be a distinct file that is not one of its inputs"
    )]
    SameFile {
        /// One path as given.
        first: PathBuf,
        /// The other path as given.
        second: PathBuf,
    },
    /// Moving a finished secret file into place failed; it was kept under its temporary name.
    #[error(
        "cannot move the finished {path} into place ({source}); its content was kept in {temp} (mode 0600): rename it yourself, it is the only copy"
    )]
    KeptAt {
        /// The output path.
        path: PathBuf,
        /// Where the content is.
        temp: PathBuf,
        /// The cause.
        source: io::Error,
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

/// Check, before any work is done, that `path` may be written: its directory exists and the
/// file does not, or (with `force`) it is a regular file that may be replaced.
pub fn check_new(path: &Path, force: bool) -> Result<(), OutputError> {
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(OutputError::NoDirectory {
            path: path.to_path_buf(),
            dir,
        });
    }
    check_replaceable(path, force)
}

/// What is at `path` now may be replaced: nothing, or (with `force`) a regular file.
fn check_replaceable(path: &Path, force: bool) -> Result<(), OutputError> {
    match fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(_) if !force => Err(OutputError::Exists(path.to_path_buf())),
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(m) => Err(OutputError::NotReplaceable {
            path: path.to_path_buf(),
            found: crate::input::describe_type(m.file_type()),
        }),
    }
}

/// Check that the outputs of one command are distinct files and that none of them is one of
/// its inputs. Two paths are the same file when their directories resolve to the same place
/// and their names are equal, or when both exist and are the same inode.
pub fn check_distinct(outputs: &[&Path], inputs: &[&Path]) -> Result<(), OutputError> {
    let key = |p: &Path| -> (Option<PathBuf>, Option<(u64, u64)>) {
        use std::os::unix::fs::MetadataExt;
        let dir = fs::canonicalize(parent_dir(p)).ok();
        let resolved = match (dir, p.file_name()) {
            (Some(d), Some(n)) => Some(d.join(n)),
            _ => None,
        };
        let inode = fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
        (resolved, inode)
    };
    let same = |a: &Path, b: &Path| {
        let (ra, ia) = key(a);
        let (rb, ib) = key(b);
        (ra.is_some() && ra == rb) || (ia.is_some() && ia == ib) || a == b
    };
    for (i, out) in outputs.iter().enumerate() {
        for other in outputs[i + 1..].iter().chain(inputs) {
            if same(out, other) {
                return Err(OutputError::SameFile {
                    first: out.to_path_buf(),
                    second: other.to_path_buf(),
                });
            }
        }
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

/// Write a file that holds a secret (a key bundle): like [`write_new`], mode 0600.
pub fn write_secret(path: &Path, data: &[u8], force: bool) -> Result<(), OutputError> {
    let mut out = AtomicFile::create_secret(path, force)?;
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
    secret: bool,
}

impl AtomicFile {
    /// Start writing `path`. Fails at once if it exists (unless `force` and it is a regular
    /// file). Creating the temporary file also proves the directory writable.
    pub fn create(path: &Path, force: bool) -> Result<Self, OutputError> {
        Self::create_with(path, force, false)
    }

    /// Like [`AtomicFile::create`], for a file that holds a secret: created with mode 0600
    /// whatever the umask, and if it cannot be moved into place at the end its content is kept
    /// under the temporary name (which the error gives) rather than lost.
    pub fn create_secret(path: &Path, force: bool) -> Result<Self, OutputError> {
        Self::create_with(path, force, true)
    }

    fn create_with(path: &Path, force: bool, secret: bool) -> Result<Self, OutputError> {
        use std::os::unix::fs::OpenOptionsExt;
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
            let mode = if secret { 0o600 } else { 0o666 };
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&temp)
            {
                Ok(file) => {
                    return Ok(Self {
                        target: path.to_path_buf(),
                        temp,
                        file: Some(file),
                        force,
                        secret,
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

    /// Flush the content written so far to disk, without moving the file into place: after
    /// this, only [`AtomicFile::commit`]'s link remains (so a record can be committed between).
    pub fn sync(&mut self) -> Result<(), OutputError> {
        match self.file.as_mut() {
            Some(f) => f.sync_all().map_err(|source| OutputError::Io {
                path: self.target.clone(),
                source,
            }),
            None => Ok(()),
        }
    }

    /// Flush to disk and move into place.
    pub fn commit(mut self) -> Result<(), OutputError> {
        if let Some(file) = self.file.take() {
            file.sync_all().map_err(|source| OutputError::Io {
                path: self.target.clone(),
                source,
            })?;
        }
        let moved = if self.force {
            // What is there now, not only what was there when the command started.
            check_replaceable(&self.target, true).and_then(|()| {
                fs::rename(&self.temp, &self.target).map_err(|source| OutputError::Io {
                    path: self.target.clone(),
                    source,
                })
            })
        } else {
            match fs::hard_link(&self.temp, &self.target) {
                Ok(()) => {
                    let _ = fs::remove_file(&self.temp);
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    Err(OutputError::Exists(self.target.clone()))
                }
                Err(source) => Err(OutputError::Io {
                    path: self.target.clone(),
                    source,
                }),
            }
        };
        if let Err(e) = moved {
            if self.secret {
                // The only copy of a secret: keep it where it is and say where.
                let temp = std::mem::take(&mut self.temp);
                let source = match e {
                    OutputError::Io { source, .. } => source,
                    other => io::Error::other(other.to_string()),
                };
                return Err(OutputError::KeptAt {
                    path: self.target.clone(),
                    temp,
                    source,
                });
            }
            return Err(e);
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
        // Remove the temp file: after a successful commit it is already gone (or renamed); a
        // kept secret has no temp path left here.
        if !self.temp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp);
        }
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

/// Fill a reserved output file and move it into place.
pub fn write_reserved(mut file: AtomicFile, data: &[u8]) -> Result<(), OutputError> {
    use std::io::Write;
    let path = file.path().to_path_buf();
    file.write_all(data)
        .map_err(|source| OutputError::Io { path, source })?;
    file.commit()
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

    #[test]
    fn force_replaces_only_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        // A FIFO, a directory, a symbolic link (to a file and dangling) and a device node.
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        for (p, found) in [
            (fifo.as_path(), "FIFO"),
            (sub.as_path(), "directory"),
            (link.as_path(), "symbolic link"),
            (dangling.as_path(), "symbolic link"),
            (Path::new("/dev/null"), "character device"),
        ] {
            let err = write_new(p, b"x", true).unwrap_err();
            assert!(
                matches!(&err, OutputError::NotReplaceable { found: f, .. } if f.contains(found)),
                "{}: {err}",
                p.display()
            );
        }
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(
            &fs::metadata("/dev/null").unwrap().file_type()
        ));
    }

    #[test]
    fn force_rechecks_at_commit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        let mut f = AtomicFile::create(&p, true).unwrap();
        f.write_all(b"x").unwrap();
        // Something other than a regular file appears meanwhile.
        fs::create_dir(&p).unwrap();
        let err = f.commit().unwrap_err();
        assert!(matches!(err, OutputError::NotReplaceable { .. }), "{err}");
        assert!(p.is_dir());
    }

    #[test]
    fn secrets_are_0600_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bundle.p12");
        write_secret(&p, b"secret", false).unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_secret_that_cannot_be_moved_into_place_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bundle.p12");
        let mut f = AtomicFile::create_secret(&p, false).unwrap();
        f.write_all(b"only copy").unwrap();
        fs::write(&p, b"someone else").unwrap();
        let err = f.commit().unwrap_err();
        let OutputError::KeptAt { temp, .. } = &err else {
            panic!("{err}")
        };
        assert!(err.to_string().contains(&temp.display().to_string()));
        assert_eq!(fs::read(temp).unwrap(), b"only copy");
        assert_eq!(fs::read(&p).unwrap(), b"someone else");
    }

    #[test]
    fn outputs_must_be_distinct_and_not_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.pem");
        let a2 = dir.path().join("sub/../a.pem");
        fs::create_dir(dir.path().join("sub")).unwrap();
        let b = dir.path().join("b.pem");
        assert!(matches!(
            check_distinct(&[&a, &a2], &[]),
            Err(OutputError::SameFile { .. })
        ));
        assert!(check_distinct(&[&a, &b], &[]).is_ok());
        fs::write(&b, b"in").unwrap();
        let hard = dir.path().join("hard.pem");
        fs::hard_link(&b, &hard).unwrap();
        let err = check_distinct(&[&a, &hard], &[&b]).unwrap_err();
        assert!(err.to_string().contains("hard.pem"), "{err}");
    }
}
