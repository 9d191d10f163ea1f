//! Files named on the command line, read safely: opened without blocking, regular files only,
//! and never more than a documented cap per kind.
//!
//! A FIFO with no writer would make a plain `open` wait forever, and `/dev/zero` (or a link to
//! it) would be read until memory runs out. So every input is opened with `O_NONBLOCK` (which
//! makes opening a FIFO return at once), checked with `fstat` to be a regular file, and read
//! through a limit one byte past its cap so that a file that grows while it is read is still
//! caught. The caps are listed in docs/security-officer.md ("Limits").

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// What an input file holds; decides its cap and how it is named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A certificate signing request (PEM or DER).
    Csr,
    /// A certificate, or a PEM file of a few certificates (chains, trusted bundles).
    Certificate,
    /// A file in a trusted-certificates directory, or a trusted bundle.
    TrustedFile,
    /// A PIN or password file.
    Secret,
    /// A private key being imported (PKCS#8 PEM).
    PrivateKey,
    /// A YubiKey attestation or similar small DER/PEM object.
    Attestation,
    /// A JS7 deployment archive.
    Archive,
}

impl InputKind {
    /// The largest file accepted, in bytes.
    pub const fn cap(self) -> u64 {
        match self {
            Self::Csr => crate::x509::limits::MAX_CSR_BYTES as u64,
            Self::PrivateKey | Self::Attestation => 64 << 10,
            Self::Certificate => 1 << 20,
            Self::TrustedFile => 1 << 20,
            Self::Secret => 4 << 10,
            Self::Archive => 4 << 30,
        }
    }

    /// How the kind is named in messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Csr => "CSR",
            Self::Certificate => "certificate file",
            Self::TrustedFile => "trusted certificate file",
            Self::Secret => "PIN or password file",
            Self::PrivateKey => "private key file",
            Self::Attestation => "attestation file",
            Self::Archive => "archive",
        }
    }
}

/// Why an input file was not read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The path does not name a regular file.
    #[error(
        "{kind} {path} is {found}, not a regular file; hsmsign reads only regular files here (copy the data into a file and name that)",
        kind = .kind.name(),
        path = .path.display()
    )]
    NotRegular {
        /// What was expected.
        kind: InputKind,
        /// The path as given.
        path: PathBuf,
        /// What is there instead ("a FIFO", "a character device", ...).
        found: &'static str,
    },
    /// The file is larger than the cap of its kind.
    #[error(
        "{kind} {path} is larger than {cap} bytes, the most hsmsign reads for a {kind}; check that this is the right file",
        kind = .kind.name(),
        path = .path.display(),
        cap = .kind.cap()
    )]
    TooLarge {
        /// What was expected.
        kind: InputKind,
        /// The path as given.
        path: PathBuf,
    },
    /// Opening or reading failed.
    #[error("cannot read {kind} {path}: {source}", kind = .kind.name(), path = .path.display())]
    Io {
        /// What was expected.
        kind: InputKind,
        /// The path as given.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// What a file type is, in words, for messages.
pub fn describe_type(ft: std::fs::FileType) -> &'static str {
    if ft.is_file() {
        "a regular file"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// Open `path` for reading without blocking and check that it is a regular file within the
/// cap of `kind`. The returned file reads normally (`O_NONBLOCK` has no effect on regular files).
pub fn open(path: &Path, kind: InputKind) -> Result<File, InputError> {
    let io_err = |source| InputError::Io {
        kind,
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nonblocking_flags())
        .open(path)
        .map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(InputError::NotRegular {
            kind,
            path: path.to_path_buf(),
            found: describe_type(meta.file_type()),
        });
    }
    if meta.len() > kind.cap() {
        return Err(InputError::TooLarge {
            kind,
            path: path.to_path_buf(),
        });
    }
    Ok(file)
}

/// Read a whole input file (see [`open`]).
pub fn read(path: &Path, kind: InputKind) -> Result<Vec<u8>, InputError> {
    let file = open(path, kind)?;
    let mut buf = Vec::new();
    read_capped(file, kind, path, &mut buf)?;
    Ok(buf)
}

/// Read a whole input file that holds a secret into a buffer that is wiped when dropped,
/// also on every error path.
pub fn read_secret(path: &Path, kind: InputKind) -> Result<Zeroizing<Vec<u8>>, InputError> {
    let file = open(path, kind)?;
    // Reserve the cap up front so the buffer never reallocates (a reallocation would leave an
    // unwiped copy of the secret behind in freed memory).
    let mut buf = Zeroizing::new(Vec::with_capacity(kind.cap() as usize + 1));
    read_capped(file, kind, path, &mut buf)?;
    Ok(buf)
}

/// Read from an already open stream (an inherited descriptor, say) at most the cap of `kind`,
/// into a buffer that is wiped when dropped. `name` says what the stream is in messages.
pub fn read_secret_stream(
    stream: impl Read,
    kind: InputKind,
    name: &Path,
) -> Result<Zeroizing<Vec<u8>>, InputError> {
    let mut buf = Zeroizing::new(Vec::with_capacity(kind.cap() as usize + 1));
    read_capped(stream, kind, name, &mut buf)?;
    Ok(buf)
}

fn read_capped(
    stream: impl Read,
    kind: InputKind,
    path: &Path,
    buf: &mut Vec<u8>,
) -> Result<(), InputError> {
    stream
        .take(kind.cap() + 1)
        .read_to_end(buf)
        .map_err(|source| InputError::Io {
            kind,
            path: path.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > kind.cap() {
        return Err(InputError::TooLarge {
            kind,
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

fn nonblocking_flags() -> i32 {
    use rustix::fs::OFlags;
    // NOCTTY: a terminal named as an input never becomes our controlling terminal.
    (OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("csr.pem");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let err = read(&fifo, InputKind::Csr).unwrap_err();
        assert!(
            matches!(err, InputError::NotRegular { found, .. } if found.contains("FIFO")),
            "{err}"
        );
        assert!(err.to_string().contains("csr.pem"), "{err}");
    }

    #[test]
    fn devices_and_links_to_them_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("pin");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        for p in [Path::new("/dev/zero"), link.as_path()] {
            let err = read_secret(p, InputKind::Secret).unwrap_err();
            assert!(
                matches!(
                    err,
                    InputError::NotRegular {
                        found: "a character device",
                        ..
                    }
                ),
                "{err}"
            );
        }
        let err = read(dir.path(), InputKind::Certificate).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
    }

    #[test]
    fn caps_are_enforced_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.csr");
        std::fs::write(&p, vec![b'A'; (InputKind::Csr.cap() + 1) as usize]).unwrap();
        let err = read(&p, InputKind::Csr).unwrap_err();
        assert!(matches!(err, InputError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("65536 bytes"), "{err}");
        std::fs::write(&p, vec![b'A'; InputKind::Csr.cap() as usize]).unwrap();
        assert_eq!(
            read(&p, InputKind::Csr).unwrap().len() as u64,
            InputKind::Csr.cap()
        );
    }

    #[test]
    fn a_stream_is_cut_at_the_cap() {
        let err =
            read_secret_stream(io::repeat(b'1'), InputKind::Secret, Path::new("fd:3")).unwrap_err();
        assert!(matches!(err, InputError::TooLarge { .. }), "{err}");
    }
}
