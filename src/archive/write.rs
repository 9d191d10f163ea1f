//! Writing the signed archive, in the input's format, through an [`AtomicFile`].
//!
//! ZIP output is written as a stream (the atomic file cannot seek), so file entries carry a
//! data descriptor; they are always deflated, because Java's `ZipInputStream` accepts a data
//! descriptor only on deflated entries.

/// Deflate level of the signed archive. Level 1 deflates JSON about three times faster than the
/// default 6 for archives some percent larger; signing batches are bound by it on fast tokens
/// (docs/benchmarks.md).
const COMPRESSION_LEVEL: u32 = 1;

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::Digest;

use super::read::{Entry, EntryMeta};
use super::{ArchiveError, ArchiveFormat};
use crate::output::{AtomicFile, OutputError};

/// Passes bytes through and hashes them, for the output's SHA-256.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hash: sha2::Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type Sink = HashingWriter<BufWriter<AtomicFile>>;

enum Inner {
    Zip(Box<zip::ZipWriter<zip::write::StreamWriter<Sink>>>),
    Tar(Box<tar::Builder<flate2::write::GzEncoder<Sink>>>),
}

/// An output archive being written.
pub(crate) struct ArchiveWriter {
    inner: Inner,
    path: PathBuf,
}

impl ArchiveWriter {
    /// Start writing `path` (it appears only on [`ArchiveWriter::finish`]).
    pub(super) fn create(
        path: &Path,
        force: bool,
        format: ArchiveFormat,
    ) -> Result<Self, ArchiveError> {
        let file = AtomicFile::create(path, force)?;
        let sink = HashingWriter {
            inner: BufWriter::with_capacity(256 << 10, file),
            hash: sha2::Sha256::new(),
        };
        let inner = match format {
            ArchiveFormat::Zip => Inner::Zip(Box::new(zip::ZipWriter::new_stream(sink))),
            ArchiveFormat::TarGz => {
                let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
                    sink,
                    flate2::Compression::new(COMPRESSION_LEVEL),
                ));
                b.mode(tar::HeaderMode::Complete);
                Inner::Tar(Box::new(b))
            }
        };
        Ok(Self {
            inner,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, e: impl ToString) -> ArchiveError {
        ArchiveError::Output(OutputError::Io {
            path: self.path.clone(),
            source: io::Error::other(e.to_string()),
        })
    }

    /// Copy an input entry (its name, kind, metadata and the given content).
    pub(super) fn add(&mut self, entry: &Entry, data: &[u8]) -> Result<(), ArchiveError> {
        self.add_named(entry, &entry.name, data, None)
    }

    /// Add the signature `sig_name` for the object `object`, with the object's metadata.
    pub(super) fn add_signature(
        &mut self,
        object: &Entry,
        sig_name: &str,
        data: &[u8],
    ) -> Result<(), ArchiveError> {
        self.add_named(object, sig_name, data, Some(0o644))
    }

    fn add_named(
        &mut self,
        entry: &Entry,
        name: &str,
        data: &[u8],
        mode: Option<u32>,
    ) -> Result<(), ArchiveError> {
        let result = match (&mut self.inner, &entry.meta) {
            (
                Inner::Zip(z),
                EntryMeta::Zip {
                    modified,
                    permissions,
                },
            ) => {
                let mut opts = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .compression_level(Some(i64::from(COMPRESSION_LEVEL)))
                    .large_file(data.len() as u64 >= u64::from(u32::MAX));
                if let Some(m) = modified {
                    opts = opts.last_modified_time(*m);
                }
                if let Some(p) = mode.or(*permissions) {
                    opts = opts.unix_permissions(p);
                }
                if entry.is_dir {
                    z.add_directory(name, opts).map_err(|e| e.to_string())
                } else {
                    z.start_file(name, opts)
                        .map_err(|e| e.to_string())
                        .and_then(|()| z.write_all(data).map_err(|e| e.to_string()))
                }
            }
            (Inner::Tar(t), EntryMeta::Tar { header }) => {
                let mut h = (**header).clone();
                if let Some(m) = mode {
                    h.set_mode(m);
                    h.set_entry_type(tar::EntryType::Regular);
                }
                h.set_size(data.len() as u64);
                t.append_data(&mut h, name, data).map_err(|e| e.to_string())
            }
            _ => Err("entry metadata does not match the output format".into()),
        };
        result.map_err(|e| self.err(format!("entry {name:?}: {e}")))
    }

    /// Finish the archive and flush it to disk under its temporary name; return the file (to
    /// be moved into place with [`AtomicFile::commit`]) and its SHA-256 (lower-case hex).
    pub(super) fn finish(self) -> Result<(AtomicFile, String), ArchiveError> {
        let err = |e: String| {
            ArchiveError::Output(OutputError::Io {
                path: self.path.clone(),
                source: io::Error::other(e),
            })
        };
        let sink = match self.inner {
            Inner::Zip(z) => z.finish().map_err(|e| err(e.to_string()))?.into_inner(),
            Inner::Tar(t) => t
                .into_inner()
                .and_then(|gz| gz.finish())
                .map_err(|e| err(e.to_string()))?,
        };
        let HashingWriter { inner, hash } = sink;
        let mut file = inner.into_inner().map_err(|e| err(e.error().to_string()))?;
        file.sync()?;
        Ok((file, crate::encoding::hex(&hash.finalize())))
    }
}
