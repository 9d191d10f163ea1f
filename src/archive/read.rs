//! Streaming, hostile-input-proof reading of ZIP and tar.gz archives.
//!
//! [`read_archive`] hands every entry, in archive order, to a visitor together with its
//! content. One entry is in memory at a time (in a buffer reused for the next one). ZIP
//! archives are walked through their central directory (after checking that the local headers
//! agree with it, since streaming readers such as Java's `ZipInputStream` see the local ones);
//! tar.gz archives are read forward as one stream.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::rc::Rc;

use super::{ArchiveError, ArchiveFormat, Limits};
use crate::input::InputKind;

/// Largest pax extended header hsmsign reads (it holds a path and a few attributes).
const MAX_PAX_HEADER: u64 = 64 << 10;

/// Format-specific metadata carried from an input entry to the output entry.
#[derive(Clone, Debug)]
pub(crate) enum EntryMeta {
    /// A ZIP entry: modification time and Unix permission bits, when recorded.
    Zip {
        /// Modification time.
        modified: Option<zip::DateTime>,
        /// Unix mode (permission bits only).
        permissions: Option<u32>,
    },
    /// A tar entry: its header (name fields are rewritten on output).
    Tar {
        /// The header as read.
        header: Box<tar::Header>,
    },
}

/// One checked entry.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The name, checked: relative, '/'-separated, no `..`, UTF-8.
    pub name: String,
    /// True for a directory entry.
    pub is_dir: bool,
    /// Metadata to carry over.
    pub meta: EntryMeta,
}

/// The visitor of [`read_archive`]: an entry and its complete content.
pub(crate) type Visitor<'a> = dyn FnMut(&Entry, &[u8]) -> Result<(), ArchiveError> + 'a;

/// Open an archive as every input is opened: without blocking, a regular file only, within
/// the archive cap (so a FIFO or `/dev/zero` given as the archive fails at once, naming it).
fn open(path: &Path) -> Result<File, ArchiveError> {
    Ok(crate::input::open(path, InputKind::Archive)?)
}

/// Detect the format from the first bytes of the file (never from its name).
#[cfg(test)]
pub(crate) fn detect(path: &Path) -> Result<ArchiveFormat, ArchiveError> {
    detect_in(&mut open(path)?, path)
}

/// Detect the format of an opened archive from its first bytes, and rewind it.
fn detect_in(file: &mut File, path: &Path) -> Result<ArchiveFormat, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match file.read(&mut magic[got..]).map_err(io_err)? {
            0 => break,
            n => got += n,
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let magic = &magic[..got];
    if magic.starts_with(b"PK\x03\x04") || magic.starts_with(b"PK\x05\x06") {
        Ok(ArchiveFormat::Zip)
    } else if magic.starts_with(&[0x1f, 0x8b]) {
        Ok(ArchiveFormat::TarGz)
    } else {
        Err(ArchiveError::UnknownFormat {
            path: path.to_path_buf(),
            start: if magic.is_empty() {
                "nothing: the file is empty".into()
            } else {
                format!("bytes {}", crate::encoding::hex(magic))
            },
        })
    }
}

/// Read the archive at `path`, checking every entry against `limits` and the hostile-input
/// rules, and hand each entry with its content to `visit`, in archive order.
pub(crate) fn read_archive(
    path: &Path,
    limits: &Limits,
    visit: &mut Visitor<'_>,
) -> Result<ArchiveFormat, ArchiveError> {
    let mut file = open(path)?;
    let format = detect_in(&mut file, path)?;
    let mut checker = Checker {
        limits,
        path,
        seen: HashSet::new(),
        count: 0,
        total: 0,
        buf: Vec::new(),
    };
    match format {
        ArchiveFormat::Zip => read_zip(&mut checker, file, visit)?,
        ArchiveFormat::TarGz => read_tar_gz(&mut checker, file, visit)?,
    }
    Ok(format)
}

/// State shared by both formats: the limits, the names seen, the running totals.
struct Checker<'a> {
    limits: &'a Limits,
    path: &'a Path,
    seen: HashSet<String>,
    count: u64,
    total: u64,
    buf: Vec<u8>,
}

impl Checker<'_> {
    fn corrupt(&self, entry: Option<&str>, reason: impl ToString) -> ArchiveError {
        ArchiveError::Corrupt {
            path: self.path.to_path_buf(),
            entry: entry.map(str::to_owned),
            reason: reason.to_string(),
        }
    }

    /// A construct readers could list differently, at `offset` of the uncompressed tar stream.
    fn ambiguous_tar(&self, offset: u64, construct: impl Into<String>) -> ArchiveError {
        ArchiveError::Ambiguous {
            path: self.path.to_path_buf(),
            construct: construct.into(),
            offset,
            within: " of the uncompressed tar stream",
        }
    }

    fn io(&self, source: io::Error) -> ArchiveError {
        ArchiveError::Io {
            path: self.path.to_path_buf(),
            source,
        }
    }

    /// Count one more entry against the limit.
    fn count_entry(&mut self) -> Result<(), ArchiveError> {
        self.count += 1;
        if self.count > self.limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                count: self.count,
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    /// Check a raw name and record it; returns it as a string.
    fn name(&mut self, raw: &[u8], is_dir: bool) -> Result<String, ArchiveError> {
        if raw.len() > self.limits.max_name_len {
            let shown: String = String::from_utf8_lossy(raw).chars().take(80).collect();
            return Err(ArchiveError::BadName {
                entry: format!("{shown}..."),
                reason: "longer than the name length limit",
            });
        }
        let name = std::str::from_utf8(raw).map_err(|_| ArchiveError::NotUtf8 {
            entry: String::from_utf8_lossy(raw).into_owned(),
        })?;
        check_name(name, is_dir)?;
        // A directory "a/" and a file "a" would land on the same path: one key for both.
        let key = name.strip_suffix('/').unwrap_or(name).to_owned();
        if !self.seen.insert(key) {
            return Err(ArchiveError::Duplicate {
                entry: name.to_owned(),
            });
        }
        Ok(name.to_owned())
    }

    /// Read an entry's content into the buffer, counting bytes and stopping at the limit.
    /// `declared` is the size the archive states; it must match what was read.
    fn read_content(
        &mut self,
        name: &str,
        reader: &mut dyn Read,
        declared: u64,
    ) -> Result<(), ArchiveError> {
        let limit = self.limits.max_entry_size;
        if declared > limit {
            return Err(ArchiveError::EntryTooLarge {
                entry: name.to_owned(),
                limit,
            });
        }
        self.buf.clear();
        let mut buf = std::mem::take(&mut self.buf);
        let result = reader.take(limit + 1).read_to_end(&mut buf);
        self.buf = buf;
        result.map_err(|e| self.corrupt(Some(name), e))?;
        let got = self.buf.len() as u64;
        if got > limit {
            return Err(ArchiveError::EntryTooLarge {
                entry: name.to_owned(),
                limit,
            });
        }
        if got != declared {
            return Err(self.corrupt(
                Some(name),
                format!("the entry declares {declared} bytes but holds {got}"),
            ));
        }
        self.add_total(name, got)
    }

    fn add_total(&mut self, name: &str, bytes: u64) -> Result<(), ArchiveError> {
        self.total = self.total.saturating_add(bytes);
        if self.total > self.limits.max_total_size {
            return Err(ArchiveError::TotalTooLarge {
                entry: name.to_owned(),
                limit: self.limits.max_total_size,
            });
        }
        Ok(())
    }

    /// Refuse `uncompressed` bytes made from `compressed` if the ratio is beyond the limit.
    fn check_ratio(
        &self,
        name: &str,
        uncompressed: u64,
        compressed: u64,
    ) -> Result<(), ArchiveError> {
        if uncompressed <= self.limits.ratio_floor {
            return Ok(());
        }
        let ratio = uncompressed / compressed.max(1);
        if ratio > self.limits.max_ratio {
            return Err(ArchiveError::CompressionRatio {
                entry: name.to_owned(),
                ratio,
                limit: self.limits.max_ratio,
            });
        }
        Ok(())
    }
}

/// Check an entry name against the rules for JS7 archive entries. Directory names may end
/// in one '/'.
pub(crate) fn check_name(name: &str, is_dir: bool) -> Result<(), ArchiveError> {
    let bad = |reason| ArchiveError::BadName {
        entry: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty name"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("contains a control character"));
    }
    if name.contains('\\') {
        return Err(ArchiveError::Backslash {
            entry: name.to_owned(),
        });
    }
    if name.starts_with('/') {
        return Err(ArchiveError::Absolute {
            entry: name.to_owned(),
        });
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err(ArchiveError::DriveLetter {
            entry: name.to_owned(),
        });
    }
    let body = if is_dir {
        name.strip_suffix('/').unwrap_or(name)
    } else if name.ends_with('/') {
        return Err(bad("a file name ending in '/'"));
    } else {
        name
    };
    for component in body.split('/') {
        match component {
            ".." => {
                return Err(ArchiveError::DotDot {
                    entry: name.to_owned(),
                });
            }
            "" => return Err(bad("an empty path component ('//')")),
            "." => return Err(bad("a '.' path component")),
            _ => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ZIP

const S_IFMT: u32 = 0o170000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;
const S_IFIFO: u32 = 0o010000;
const S_IFSOCK: u32 = 0o140000;

/// What the central directory says of one entry, collected before any data is read.
struct ZipMeta {
    raw_name: Vec<u8>,
    encrypted: bool,
    is_dir: bool,
    mode: Option<u32>,
    method: zip::CompressionMethod,
    compressed: u64,
    declared: u64,
    modified: Option<zip::DateTime>,
    header: u64,
    crc: u32,
}

fn read_zip(c: &mut Checker<'_>, file: File, visit: &mut Visitor<'_>) -> Result<(), ArchiveError> {
    let len = file.metadata().map_err(|e| c.io(e))?.len();
    let mut reader = BufReader::new(file);
    // Every byte accounted for, so that the central directory (read below) and the local
    // headers (what Java's ZipInputStream reads) list the same entries; this also refuses an
    // oversized central directory before the ZIP reader loads it into memory.
    let data_starts = super::zip_layout::check(&mut reader, len, c.path, c.limits)?;
    reader.seek(SeekFrom::Start(0)).map_err(|e| c.io(e))?;
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| c.corrupt(None, e))?;
    if zip.has_duplicate_names() {
        // The ZIP reader keeps one entry per name; find the repeated name to report it.
        let start = zip.central_directory_start();
        let mut inner = zip.into_inner();
        let entry = zip_first_duplicate(&mut inner, start, c.limits.max_entries)
            .ok()
            .flatten()
            .map(|raw| String::from_utf8_lossy(&raw).into_owned())
            .unwrap_or_else(|| "(name not recoverable)".into());
        return Err(ArchiveError::Duplicate { entry });
    }
    // Java's ZipInputStream (and JOC Cockpit) read the local headers; this reader reads the
    // central directory. Both must describe the same entries, or a signature could cover
    // something other than what JS7 deploys.
    zip.validate_header_consistency()
        .map_err(|e| c.corrupt(None, e))?;
    let mut metas = Vec::with_capacity(zip.len());
    for index in 0..zip.len() {
        let e = zip.by_index_data(index).map_err(|e| c.corrupt(None, e))?;
        metas.push(ZipMeta {
            raw_name: e.name_raw().to_vec(),
            encrypted: e.encrypted(),
            is_dir: e.is_dir(),
            mode: e.unix_mode(),
            method: e.compression(),
            compressed: e.compressed_size(),
            declared: e.size(),
            modified: e.last_modified(),
            header: e.header_start(),
            crc: e.crc32(),
        });
    }
    // The data is read here, not through the ZIP reader, so that one inflate both yields the
    // content and shows where the deflate stream ends.
    let mut reader = zip.into_inner();
    for m in metas {
        c.count_entry()?;
        let kind = m.mode.map(|mode| mode & S_IFMT);
        if kind == Some(S_IFLNK) {
            return Err(ArchiveError::Symlink {
                entry: String::from_utf8_lossy(&m.raw_name).into_owned(),
            });
        }
        if let Some(k) = kind.and_then(special_kind) {
            return Err(ArchiveError::Device {
                entry: String::from_utf8_lossy(&m.raw_name).into_owned(),
                kind: k,
            });
        }
        let name = c.name(&m.raw_name, m.is_dir)?;
        if m.encrypted {
            return Err(ArchiveError::Encrypted { entry: name });
        }
        let deflated = match m.method {
            zip::CompressionMethod::Stored => false,
            zip::CompressionMethod::Deflated => true,
            other => {
                return Err(ArchiveError::UnsupportedCompression {
                    entry: name,
                    method: format!("{other:?}"),
                });
            }
        };
        let Some(&data) = data_starts.get(&m.header) else {
            return Err(c.corrupt(
                Some(&name),
                "no local record where the central directory says",
            ));
        };
        reader.seek(SeekFrom::Start(data)).map_err(|e| c.io(e))?;
        let mut raw = (&mut reader).take(m.compressed);
        if deflated {
            let mut inflate = flate2::bufread::DeflateDecoder::new(&mut raw);
            c.read_content(&name, &mut inflate, m.declared)?;
            let used = inflate.total_in();
            if used != m.compressed {
                // Java's reader looks for the next header where the deflate stream ends.
                return Err(ArchiveError::Ambiguous {
                    path: c.path.to_path_buf(),
                    construct: format!(
                        "the deflate data of entry {name:?} ends {} bytes before its declared compressed size (Java's ZipInputStream looks for the next header there)",
                        m.compressed.saturating_sub(used)
                    ),
                    offset: data + used,
                    within: "",
                });
            }
        } else {
            c.read_content(&name, &mut raw, m.declared)?;
        }
        let mut crc = flate2::Crc::new();
        crc.update(&c.buf);
        if crc.sum() != m.crc {
            return Err(c.corrupt(Some(&name), "its CRC-32 does not match its content"));
        }
        c.check_ratio(&name, m.declared, m.compressed)?;
        if m.is_dir && !c.buf.is_empty() {
            return Err(c.corrupt(Some(&name), "a directory entry with content"));
        }
        let entry = Entry {
            name,
            is_dir: m.is_dir,
            meta: EntryMeta::Zip {
                modified: m.modified,
                permissions: m.mode.map(|mode| mode & 0o7777),
            },
        };
        visit(&entry, &c.buf)?;
    }
    Ok(())
}

fn special_kind(file_type: u32) -> Option<&'static str> {
    match file_type {
        S_IFCHR => Some("character device"),
        S_IFBLK => Some("block device"),
        S_IFIFO => Some("FIFO"),
        S_IFSOCK => Some("socket"),
        _ => None,
    }
}

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Walk the central directory headers from `start` and return the first name seen twice.
fn zip_first_duplicate<R: Read + Seek>(
    r: &mut R,
    start: u64,
    max: u64,
) -> io::Result<Option<Vec<u8>>> {
    r.seek(SeekFrom::Start(start))?;
    let mut seen = HashSet::new();
    let mut fixed = [0u8; 46];
    for _ in 0..=max {
        r.read_exact(&mut fixed)?;
        if &fixed[..4] != b"PK\x01\x02" {
            break;
        }
        let mut name = vec![0u8; le16(&fixed, 28) as usize];
        r.read_exact(&mut name)?;
        let skip = le16(&fixed, 30) + le16(&fixed, 32);
        r.seek(SeekFrom::Current(skip as i64))?;
        if !seen.insert(name.clone()) {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// tar.gz

/// Counts the compressed bytes consumed, for the whole-stream ratio check.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

fn read_tar_gz(
    c: &mut Checker<'_>,
    file: File,
    visit: &mut Visitor<'_>,
) -> Result<(), ArchiveError> {
    let compressed = Rc::new(Cell::new(0u64));
    let counting = Counting {
        inner: file,
        count: Rc::clone(&compressed),
    };
    // The buffered decoder stops exactly at the end of the first gzip member, so what
    // follows it can be looked at.
    let uncompressed = Rc::new(Cell::new(0u64));
    let tar_stream = Counting {
        inner: flate2::bufread::GzDecoder::new(BufReader::new(counting)),
        count: Rc::clone(&uncompressed),
    };
    let mut archive = tar::Archive::new(tar_stream);
    {
        // Raw mode: GNU long names and pax headers are handled here, with bounded reads,
        // instead of being read whole into memory by the tar reader.
        let entries = archive.entries().map_err(|e| c.corrupt(None, e))?.raw(true);
        let mut long_name: Option<(Vec<u8>, u64)> = None;
        let mut pax: Option<(Vec<u8>, u64)> = None;
        let mut last = String::new();
        for item in entries {
            let mut entry = item.map_err(|e| {
                c.corrupt(Some(&last).filter(|l| !l.is_empty()).map(String::as_str), e)
            })?;
            let header = entry.header().clone();
            let at = entry.raw_header_position();
            let et = header.entry_type();
            match et {
                tar::EntryType::GNULongName => {
                    if long_name.is_some() {
                        return Err(
                            c.ambiguous_tar(at, "two GNU long-name headers ('L') for one entry")
                        );
                    }
                    let max = c.limits.max_name_len as u64 + 1;
                    let data = read_small(c, &mut entry, max, "GNU long name")?;
                    if data.len() as u64 > max {
                        return Err(ArchiveError::BadName {
                            entry: format!(
                                "{}...",
                                String::from_utf8_lossy(&data)
                                    .chars()
                                    .take(80)
                                    .collect::<String>()
                            ),
                            reason: "longer than the name length limit",
                        });
                    }
                    long_name = Some((data, at));
                    continue;
                }
                tar::EntryType::XHeader => {
                    if pax.is_some() {
                        return Err(
                            c.ambiguous_tar(at, "two pax extended headers ('x') for one entry")
                        );
                    }
                    let data = read_small(c, &mut entry, MAX_PAX_HEADER, "pax header")?;
                    if data.len() as u64 > MAX_PAX_HEADER {
                        return Err(c.corrupt(None, "a pax header larger than 64 KiB"));
                    }
                    pax = Some((data, at));
                    continue;
                }
                tar::EntryType::XGlobalHeader => {
                    return Err(c.ambiguous_tar(
                        at,
                        "a pax global header ('g'), whose fields GNU tar and commons-compress apply to every later entry and other readers ignore (git archive writes one)",
                    ));
                }
                tar::EntryType::GNULongLink => {
                    return Err(c.ambiguous_tar(
                        at,
                        "a GNU long link-name header ('K'); JS7 archives hold no links",
                    ));
                }
                _ => {}
            }
            c.count_entry()?;
            let pax_fields = match pax.take() {
                Some((p, pax_at)) => {
                    let fields = parse_pax(&p).map_err(|r| c.corrupt(None, r))?;
                    if let Some(key) = &fields.changes {
                        return Err(c.ambiguous_tar(
                            pax_at,
                            format!(
                                "a pax header with {key}, which readers that ignore it do not apply"
                            ),
                        ));
                    }
                    if long_name.is_some() {
                        return Err(c.ambiguous_tar(
                            pax_at,
                            "both a pax header and a GNU long-name header for one entry (readers pick different names)",
                        ));
                    }
                    Some((fields, pax_at))
                }
                None => None,
            };
            let short = header.path_bytes().into_owned();
            let raw_name = if let Some((PaxFields { path: Some(p), .. }, pax_at)) = &pax_fields {
                if !extends(p, &short) {
                    return Err(c.ambiguous_tar(
                        *pax_at,
                        format!(
                            "a pax header naming the entry {:?} while its own header names it {:?}",
                            String::from_utf8_lossy(p),
                            String::from_utf8_lossy(&short)
                        ),
                    ));
                }
                p.clone()
            } else if let Some((mut n, long_at)) = long_name.take() {
                while n.last() == Some(&0) {
                    n.pop();
                }
                if !extends(&n, &short) {
                    return Err(c.ambiguous_tar(
                        long_at,
                        format!(
                            "a GNU long-name header ('L') naming the entry {:?} while its own header names it {:?}",
                            String::from_utf8_lossy(&n),
                            String::from_utf8_lossy(&short)
                        ),
                    ));
                }
                n
            } else {
                short
            };
            long_name = None;
            let shown = || String::from_utf8_lossy(&raw_name).into_owned();
            let is_dir = match et {
                tar::EntryType::Regular => false,
                tar::EntryType::Directory => true,
                tar::EntryType::Symlink => return Err(ArchiveError::Symlink { entry: shown() }),
                tar::EntryType::Link => return Err(ArchiveError::HardLink { entry: shown() }),
                tar::EntryType::Char => {
                    return Err(ArchiveError::Device {
                        entry: shown(),
                        kind: "character device",
                    });
                }
                tar::EntryType::Block => {
                    return Err(ArchiveError::Device {
                        entry: shown(),
                        kind: "block device",
                    });
                }
                tar::EntryType::Fifo => {
                    return Err(ArchiveError::Device {
                        entry: shown(),
                        kind: "FIFO",
                    });
                }
                other => {
                    return Err(ArchiveError::UnsupportedEntryType {
                        entry: shown(),
                        kind: format!("{:?} ('{}')", other, other.as_byte().escape_ascii()),
                    });
                }
            };
            let name = c.name(&raw_name, is_dir)?;
            last.clone_from(&name);
            let declared = entry.size();
            if let Some((PaxFields { size: Some(s), .. }, pax_at)) = &pax_fields
                && *s != declared
            {
                return Err(c.ambiguous_tar(
                    *pax_at,
                    format!(
                        "a pax header giving entry {name:?} {s} bytes while its own header gives {declared}"
                    ),
                ));
            }
            c.read_content(&name, &mut entry, declared)?;
            c.check_ratio(&name, c.total, compressed.get())?;
            if is_dir && !c.buf.is_empty() {
                return Err(c.corrupt(Some(&name), "a directory entry with content"));
            }
            let e = Entry {
                name,
                is_dir,
                meta: EntryMeta::Tar {
                    header: Box::new(header),
                },
            };
            visit(&e, &c.buf)?;
        }
        if long_name.is_some() || pax.is_some() {
            return Err(c.corrupt(None, "an extension header with no entry after it"));
        }
    }
    // After the end-of-archive block only zero padding may follow, to the end of the gzip
    // member: `tar --ignore-zeros` lists entries hidden there. Reading to the end also checks
    // the gzip CRC and length.
    let mut stream = archive.into_inner();
    let end = uncompressed.get();
    let budget = c.limits.max_total_size.saturating_sub(c.total);
    let mut rest = (&mut stream).take(budget.saturating_add(1));
    let mut buf = vec![0u8; 64 << 10];
    let mut seen = 0u64;
    loop {
        let n = rest.read(&mut buf).map_err(|e| c.corrupt(None, e))?;
        if n == 0 {
            break;
        }
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Err(c.ambiguous_tar(
                end + seen + i as u64,
                "data after the tar end-of-archive block (tar --ignore-zeros lists entries there, other readers stop before it)",
            ));
        }
        seen += n as u64;
    }
    if seen > budget {
        return Err(ArchiveError::TotalTooLarge {
            entry: "(after the last entry)".into(),
            limit: c.limits.max_total_size,
        });
    }
    // The first gzip member must be the whole file: GNU tar reads concatenated members as one
    // stream, single-member readers stop after the first.
    let mut inner = stream.inner.into_inner();
    let after = inner.fill_buf().map_err(|e| c.io(e))?;
    if !after.is_empty() {
        let offset = compressed.get() - after.len() as u64;
        let construct = if after.starts_with(&[0x1f, 0x8b]) {
            "a second gzip member after the first one ends (GNU tar reads its entries, other readers stop before it)".to_owned()
        } else {
            "bytes after the end of the gzip stream".to_owned()
        };
        return Err(ArchiveError::Ambiguous {
            path: c.path.to_path_buf(),
            construct,
            offset,
            within: "",
        });
    }
    Ok(())
}

/// True if `long` (from a pax or GNU long-name header) is what the entry's own header says,
/// or what that header could not hold whole: the header then holds its first 100 or more
/// bytes (what GNU tar, commons-compress, Python and the tar crate write).
fn extends(long: &[u8], short: &[u8]) -> bool {
    long == short || (short.len() >= 100 && long.starts_with(short))
}

/// Read at most `max + 1` bytes of a small extension entry.
fn read_small(
    c: &Checker<'_>,
    r: &mut dyn Read,
    max: u64,
    what: &str,
) -> Result<Vec<u8>, ArchiveError> {
    let mut data = Vec::new();
    r.take(max + 1)
        .read_to_end(&mut data)
        .map_err(|e| c.corrupt(None, format!("{what}: {e}")))?;
    Ok(data)
}

/// The pax keys hsmsign honours, and the first key that changes an entry in a way readers
/// that ignore it would not see.
#[derive(Default)]
struct PaxFields {
    path: Option<Vec<u8>>,
    size: Option<u64>,
    changes: Option<String>,
}

/// Parse pax extended header records (`"<len> <key>=<value>\n"`, POSIX.1-2001).
fn parse_pax(mut data: &[u8]) -> Result<PaxFields, String> {
    let mut out = PaxFields::default();
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("a pax record without length")?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("a pax record with a bad length")?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err("a pax record with a bad length".into());
        }
        let record = &data[space + 1..len - 1];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("a pax record without '='")?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => out.path = Some(value.to_vec()),
            b"size" => {
                out.size = Some(
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or("a pax size that is not a number")?,
                );
            }
            b"linkpath" => {
                out.changes
                    .get_or_insert_with(|| "a link target (linkpath)".into());
            }
            b"hdrcharset" => {
                out.changes
                    .get_or_insert_with(|| "hdrcharset (names in another character set)".into());
            }
            k if k.starts_with(b"GNU.sparse.") => {
                out.changes.get_or_insert_with(|| {
                    format!(
                        "GNU sparse-file keys ({}), which change the entry's size and content",
                        String::from_utf8_lossy(k)
                    )
                });
            }
            _ => {}
        }
        data = &data[len..];
    }
    Ok(out)
}

#[cfg(test)]
// In tests a panic is the failure report.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::archive::testutil::*;
    use crate::archive::{SignOptions, sign_archive};
    use crate::signer::soft::SoftKey;
    use std::path::PathBuf;

    /// Sign `input` with default limits unless given; the archive must be refused before any
    /// certificate is looked at, and no output file may appear.
    fn refuse(input: &Path, limits: Option<Limits>) -> ArchiveError {
        let out = input.with_file_name("out.signed");
        let options = SignOptions {
            limits: limits.unwrap_or_default(),
            ..Default::default()
        };
        let err = sign_archive(
            input,
            &out,
            false,
            &SoftKey::p256(1),
            b"",
            &options,
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(!out.exists(), "no output after {err}");
        let leftovers: Vec<_> = std::fs::read_dir(input.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains("out.signed"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        err
    }

    fn zip_of(dir: &Path, names: &[&str]) -> PathBuf {
        let p = dir.join("in.zip");
        let entries: Vec<_> = names
            .iter()
            .map(|n| (n.to_string(), b"{}".to_vec()))
            .collect();
        write_zip(&p, &entries);
        p
    }

    fn patch(path: &Path, from: &[u8], to: &[u8]) {
        let mut bytes = std::fs::read(path).unwrap();
        let mut n = 0;
        let mut i = 0;
        while i + from.len() <= bytes.len() {
            if &bytes[i..i + from.len()] == from {
                bytes[i..i + from.len()].copy_from_slice(to);
                n += 1;
            }
            i += 1;
        }
        assert!(
            n >= 2,
            "patched {n} places (local and central header expected)"
        );
        std::fs::write(path, bytes).unwrap();
    }

    fn tar_of(dir: &Path, entries: Vec<(tar::Header, Vec<u8>)>) -> PathBuf {
        let p = dir.join("in.tar.gz");
        write_tar_gz_raw(&p, &entries);
        p
    }

    fn file(name: &[u8]) -> (tar::Header, Vec<u8>) {
        (
            raw_tar_header(name, tar::EntryType::Regular, 2),
            b"{}".to_vec(),
        )
    }

    fn special(name: &[u8], kind: tar::EntryType) -> (tar::Header, Vec<u8>) {
        (raw_tar_header(name, kind, 0), Vec::new())
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("a/b.workflow.json", false).is_ok());
        assert!(check_name("a/b/", true).is_ok());
        assert!(matches!(
            check_name("a/../b", false),
            Err(ArchiveError::DotDot { .. })
        ));
        assert!(matches!(
            check_name("/etc/x", false),
            Err(ArchiveError::Absolute { .. })
        ));
        assert!(matches!(
            check_name("C:/x", false),
            Err(ArchiveError::DriveLetter { .. })
        ));
        assert!(matches!(
            check_name("a\\b", false),
            Err(ArchiveError::Backslash { .. })
        ));
        assert!(matches!(
            check_name("./a", false),
            Err(ArchiveError::BadName { .. })
        ));
        assert!(matches!(
            check_name("a//b", false),
            Err(ArchiveError::BadName { .. })
        ));
        assert!(matches!(
            check_name("a/", false),
            Err(ArchiveError::BadName { .. })
        ));
        assert!(matches!(
            check_name("a\nb", false),
            Err(ArchiveError::BadName { .. })
        ));
    }

    #[test]
    fn zip_dotdot() {
        let d = tempfile::tempdir().unwrap();
        let err = refuse(
            &zip_of(d.path(), &["ok.json", "../evil.workflow.json"]),
            None,
        );
        assert!(
            matches!(&err, ArchiveError::DotDot { entry } if entry == "../evil.workflow.json"),
            "{err}"
        );
    }

    #[test]
    fn zip_absolute() {
        let d = tempfile::tempdir().unwrap();
        let err = refuse(&zip_of(d.path(), &["/etc/cron.d/x"]), None);
        assert!(
            matches!(&err, ArchiveError::Absolute { entry } if entry == "/etc/cron.d/x"),
            "{err}"
        );
    }

    #[test]
    fn zip_drive_letter() {
        let d = tempfile::tempdir().unwrap();
        let err = refuse(&zip_of(d.path(), &["C:/Windows/x.json"]), None);
        assert!(matches!(&err, ArchiveError::DriveLetter { .. }), "{err}");
        assert!(err.to_string().contains("C:/Windows/x.json"));
    }

    #[test]
    fn zip_backslash() {
        let d = tempfile::tempdir().unwrap();
        let err = refuse(&zip_of(d.path(), &["a\\..\\b.json"]), None);
        assert!(matches!(&err, ArchiveError::Backslash { .. }), "{err}");
    }

    #[test]
    fn zip_symlink() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("in.zip");
        let mut z = zip::ZipWriter::new(File::create(&p).unwrap());
        z.add_symlink(
            "link.workflow.json",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        z.finish().unwrap();
        let err = refuse(&p, None);
        assert!(
            matches!(&err, ArchiveError::Symlink { entry } if entry == "link.workflow.json"),
            "{err}"
        );
    }

    #[test]
    fn zip_duplicate() {
        let d = tempfile::tempdir().unwrap();
        let p = zip_of(d.path(), &["dupA.workflow.json", "dupB.workflow.json"]);
        patch(&p, b"dupB.workflow.json", b"dupA.workflow.json");
        let err = refuse(&p, None);
        assert!(
            matches!(&err, ArchiveError::Duplicate { entry } if entry == "dupA.workflow.json"),
            "{err}"
        );
    }

    #[test]
    fn zip_not_utf8() {
        let d = tempfile::tempdir().unwrap();
        let p = zip_of(d.path(), &["badQname.json"]);
        patch(&p, b"badQname", b"bad\xffname");
        let err = refuse(&p, None);
        assert!(
            matches!(&err, ArchiveError::NotUtf8 { entry } if entry.starts_with("bad")),
            "{err}"
        );
    }

    #[test]
    fn zip_encrypted() {
        let d = tempfile::tempdir().unwrap();
        let p = zip_of(d.path(), &["secret.workflow.json"]);
        let mut bytes = std::fs::read(&p).unwrap();
        // Set the "encrypted" flag bit in the local header (offset 6) and in the central
        // directory header (offset 8).
        bytes[6] |= 1;
        let cd = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[cd + 8] |= 1;
        std::fs::write(&p, bytes).unwrap();
        let err = refuse(&p, None);
        assert!(
            matches!(&err, ArchiveError::Encrypted { entry } if entry == "secret.workflow.json"),
            "{err}"
        );
    }

    #[test]
    fn zip_too_many_entries() {
        let d = tempfile::tempdir().unwrap();
        let p = zip_of(d.path(), &["a.json", "b.json", "c.json", "d.json"]);
        let limits = Limits {
            max_entries: 3,
            ..Default::default()
        };
        let err = refuse(&p, Some(limits));
        assert!(
            matches!(err, ArchiveError::TooManyEntries { count: 4, limit: 3 }),
            "{err}"
        );
    }

    #[test]
    fn zip_entry_too_large() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("in.zip");
        write_zip(&p, &[("big.workflow.json".into(), vec![b'x'; 5000])]);
        let limits = Limits {
            max_entry_size: 4096,
            ..Default::default()
        };
        let err = refuse(&p, Some(limits));
        assert!(
            matches!(&err, ArchiveError::EntryTooLarge { entry, limit: 4096 } if entry == "big.workflow.json"),
            "{err}"
        );
    }

    #[test]
    fn zip_declared_size_is_not_trusted() {
        // The headers claim 16 bytes; the deflate stream holds 5000. Reading stops at the
        // limit or at the mismatch, never trusting the claim.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("in.zip");
        write_zip(&p, &[("big.workflow.json".into(), vec![b'x'; 5000])]);
        patch(&p, &5000u32.to_le_bytes(), &16u32.to_le_bytes());
        let limits = Limits {
            max_entry_size: 1024,
            ..Default::default()
        };
        let err = refuse(&p, Some(limits));
        assert!(
            matches!(
                &err,
                ArchiveError::EntryTooLarge { .. } | ArchiveError::Corrupt { entry: Some(_), .. }
            ),
            "{err}"
        );
    }

    #[test]
    fn zip_bomb_ratio() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("in.zip");
        write_zip(&p, &[("bomb.workflow.json".into(), vec![0u8; 8 << 20])]);
        let err = refuse(&p, None);
        assert!(
            matches!(&err, ArchiveError::CompressionRatio { entry, .. } if entry == "bomb.workflow.json"),
            "{err}"
        );
    }

    #[test]
    fn zip_truncated() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("in.zip");
        write_zip(&p, &sample_entries());
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let err = refuse(&p, None);
        assert!(matches!(err, ArchiveError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn zip_corrupt_data() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("in.zip");
        write_zip(
            &p,
            &[(
                "x.workflow.json".into(),
                b"{\"TYPE\":\"Workflow\"}".repeat(20),
            )],
        );
        let mut bytes = std::fs::read(&p).unwrap();
        // Flip a byte inside the compressed data (after the 30-byte header and the name).
        bytes[30 + "x.workflow.json".len() + 3] ^= 0x55;
        std::fs::write(&p, bytes).unwrap();
        let err = refuse(&p, None);
        assert!(
            matches!(&err, ArchiveError::Corrupt { entry: Some(e), .. } if e == "x.workflow.json"),
            "{err}"
        );
    }

    #[test]
    fn unknown_format() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("in.zip");
        std::fs::write(&p, b"{\"not\":\"an archive\"}").unwrap();
        let err = refuse(&p, None);
        assert!(matches!(err, ArchiveError::UnknownFormat { .. }), "{err}");
    }

    #[test]
    fn format_comes_from_content_not_name() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("export.zip");
        write_tar_gz(&p, &sample_entries());
        assert_eq!(detect(&p).unwrap(), ArchiveFormat::TarGz);
        let q = d.path().join("export.tar.gz");
        write_zip(&q, &sample_entries());
        assert_eq!(detect(&q).unwrap(), ArchiveFormat::Zip);
    }

    #[test]
    fn tar_dotdot() {
        let d = tempfile::tempdir().unwrap();
        let err = refuse(
            &tar_of(d.path(), vec![file(b"a/../../x.workflow.json")]),
            None,
        );
        assert!(
            matches!(&err, ArchiveError::DotDot { entry } if entry == "a/../../x.workflow.json"),
            "{err}"
        );
    }

    #[test]
    fn tar_absolute() {
        let d = tempfile::tempdir().unwrap();
        let err = refuse(&tar_of(d.path(), vec![file(b"/tmp/x.json")]), None);
        assert!(matches!(&err, ArchiveError::Absolute { .. }), "{err}");
    }

    #[test]
    fn tar_symlink() {
        let d = tempfile::tempdir().unwrap();
        let err = refuse(
            &tar_of(
                d.path(),
                vec![special(b"l.workflow.json", tar::EntryType::Symlink)],
            ),
            None,
        );
        assert!(
            matches!(&err, ArchiveError::Symlink { entry } if entry == "l.workflow.json"),
            "{err}"
        );
    }

    #[test]
    fn tar_hard_link() {
        let d = tempfile::tempdir().unwrap();
        let err = refuse(
            &tar_of(d.path(), vec![special(b"h.json", tar::EntryType::Link)]),
            None,
        );
        assert!(
            matches!(&err, ArchiveError::HardLink { entry } if entry == "h.json"),
            "{err}"
        );
    }

    #[test]
    fn tar_fifo() {
        let d = tempfile::tempdir().unwrap();
        let err = refuse(
            &tar_of(d.path(), vec![special(b"f", tar::EntryType::Fifo)]),
            None,
        );
        assert!(
            matches!(&err, ArchiveError::Device { entry, kind: "FIFO" } if entry == "f"),
            "{err}"
        );
    }

    #[test]
    fn tar_char_device() {
        let d = tempfile::tempdir().unwrap();
        let err = refuse(
            &tar_of(d.path(), vec![special(b"null", tar::EntryType::Char)]),
            None,
        );
        assert!(
            matches!(
                &err,
                ArchiveError::Device {
                    kind: "character device",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn tar_duplicate() {
        let d = tempfile::tempdir().unwrap();
        let err = refuse(
            &tar_of(
                d.path(),
                vec![file(b"a.workflow.json"), file(b"a.workflow.json")],
            ),
            None,
        );
        assert!(
            matches!(&err, ArchiveError::Duplicate { entry } if entry == "a.workflow.json"),
            "{err}"
        );
    }

    #[test]
    fn tar_not_utf8() {
        let d = tempfile::tempdir().unwrap();
        let err = refuse(&tar_of(d.path(), vec![file(b"caf\xe9.json")]), None);
        assert!(matches!(err, ArchiveError::NotUtf8 { .. }), "{err}");
    }

    #[test]
    fn tar_pax_path_is_checked() {
        // The header holds the first 100 bytes of a long name (as tar writers do); the pax
        // path that readers use instead escapes the root.
        let d = tempfile::tempdir().unwrap();
        let short = [b"a/".as_slice(), &[b'b'; 98]].concat();
        let long = [short.as_slice(), b"/../../../x.workflow.json"].concat();
        let mut record = format!("{} path=", long.len() + 10).into_bytes();
        record.extend_from_slice(&long);
        record.push(b'\n');
        assert_eq!(record.len(), long.len() + 10);
        let pax = raw_tar_header(b"PaxHeader", tar::EntryType::XHeader, record.len() as u64);
        let err = refuse(&tar_of(d.path(), vec![(pax, record), file(&short)]), None);
        assert!(
            matches!(&err, ArchiveError::DotDot { entry } if entry.as_bytes() == long),
            "{err}"
        );
    }

    #[test]
    fn tar_truncated() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("in.tar.gz");
        let mut entries = sample_entries();
        entries.push((
            "pad.json".into(),
            (0..20000u32).flat_map(|i| i.to_le_bytes()).collect(),
        ));
        write_tar_gz(&p, &entries);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 200]).unwrap();
        let err = refuse(&p, None);
        assert!(matches!(err, ArchiveError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn tar_too_many_entries() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("in.tar.gz");
        write_tar_gz(&p, &sample_entries());
        let limits = Limits {
            max_entries: 2,
            ..Default::default()
        };
        let err = refuse(&p, Some(limits));
        assert!(
            matches!(err, ArchiveError::TooManyEntries { limit: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn tar_bomb_ratio() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("in.tar.gz");
        write_tar_gz(&p, &[("bomb.workflow.json".into(), vec![0u8; 8 << 20])]);
        let err = refuse(&p, None);
        assert!(
            matches!(err, ArchiveError::CompressionRatio { .. }),
            "{err}"
        );
    }

    #[test]
    fn both_formats_list_the_same_entries() {
        let d = tempfile::tempdir().unwrap();
        for (i, zip) in [true, false].into_iter().enumerate() {
            let p = d.path().join(format!("in{i}"));
            if zip {
                write_zip(&p, &sample_entries());
            } else {
                write_tar_gz(&p, &sample_entries());
            }
            let mut seen = Vec::new();
            read_archive(&p, &Limits::default(), &mut |e: &Entry, data: &[u8]| {
                seen.push((e.name.clone(), data.to_vec()));
                Ok(())
            })
            .unwrap();
            assert_eq!(seen, sample_entries(), "zip={zip}");
        }
    }
}
