//! Byte accounting of a ZIP file, so that every reader lists the same entries.
//!
//! A ZIP archive can be read two ways: from its central directory at the end (what `unzip`,
//! Python's `zipfile` and the `zip` crate do) or forward through its local headers (what
//! Java's `ZipInputStream` does, and so JOC Cockpit's import). Both lists must be the same, or
//! a signature could cover something other than what JS7 deploys. [`check`] therefore accounts
//! for every byte of the file: each belongs to exactly one of
//!
//! - a local header, its entry data and (when flag bit 3 is set) its data descriptor, in the
//!   order of their offsets, the first at byte 0, each starting where the one before ends;
//! - the central directory, starting where the last entry ends, exactly its declared size,
//!   holding exactly the declared number of entries;
//! - the ZIP64 end record and its locator (when present), right after the central directory;
//! - the end-of-central-directory record and its comment, ending at the last byte of the file.
//!
//! The archive comment is accepted (`zip -z` writes one; no reader lists it as an entry) as
//! long as it holds no end-record or ZIP64-locator signature that a reader scanning backwards
//! could take for the real one. Entry comments in the central directory are accepted too.
//!
//! Each local header must agree with its central entry: name, flags, method, CRC and sizes
//! (with flag bit 3 the local CRC and sizes may be zero, as streaming writers leave them). A
//! data descriptor has one unambiguous layout: an optional `PK\x07\x08` signature, then CRC and
//! 4-byte sizes that equal the central ones. (That a deflate stream ends exactly at its declared
//! compressed size, since Java's reader finds the next header where the stream ends, is checked
//! by the reader in `read.rs` while it inflates the entry, so each entry is inflated once.)

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::{ArchiveError, Limits};

const LOCAL_SIG: &[u8; 4] = b"PK\x03\x04";
const CENTRAL_SIG: &[u8; 4] = b"PK\x01\x02";
const EOCD_SIG: &[u8; 4] = b"PK\x05\x06";
const ZIP64_EOCD_SIG: &[u8; 4] = b"PK\x06\x06";
const ZIP64_LOCATOR_SIG: &[u8; 4] = b"PK\x06\x07";
const DESCRIPTOR_SIG: &[u8; 4] = b"PK\x07\x08";
const EOCD_LEN: u64 = 22;
const LOCATOR_LEN: u64 = 20;
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const METHOD_STORED: u16 = 0;
const EXTRA_ZIP64: u16 = 0x0001;
const EXTRA_UNICODE_PATH: u16 = 0x7075;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

fn ambiguous(path: &Path, offset: u64, construct: impl Into<String>) -> ArchiveError {
    ArchiveError::Ambiguous {
        path: path.to_path_buf(),
        construct: construct.into(),
        offset,
        within: "",
    }
}

/// One central directory entry, as far as the layout needs it.
struct Central {
    name: Vec<u8>,
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    offset: u64,
}

/// The accounting of one file.
struct Accountant<'a, R> {
    r: R,
    len: u64,
    path: &'a Path,
}

impl<R: Read + Seek> Accountant<'_, R> {
    fn ambiguous(&self, offset: u64, construct: impl Into<String>) -> ArchiveError {
        ambiguous(self.path, offset, construct)
    }

    fn corrupt(&self, reason: impl Into<String>) -> ArchiveError {
        ArchiveError::Corrupt {
            path: self.path.to_path_buf(),
            entry: None,
            reason: reason.into(),
        }
    }

    fn io(&self, source: io::Error) -> ArchiveError {
        ArchiveError::Io {
            path: self.path.to_path_buf(),
            source,
        }
    }

    /// `n` bytes at `offset`, or a "truncated" error naming `what`.
    fn at(&mut self, offset: u64, n: u64, what: &str) -> Result<Vec<u8>, ArchiveError> {
        if offset.checked_add(n).is_none_or(|end| end > self.len) {
            return Err(self.corrupt(format!(
                "{what} at byte {offset} runs past the end of the file"
            )));
        }
        let mut buf = vec![0u8; usize::try_from(n).map_err(|_| self.corrupt("size out of range"))?];
        self.r
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.r.read_exact(&mut buf))
            .map_err(|e| self.io(e))?;
        Ok(buf)
    }
}

/// What the end records say.
struct End {
    entries: u64,
    cd_offset: u64,
    cd_size: u64,
    /// Where the central directory must end: the ZIP64 end record, or the classic one.
    cd_end: u64,
}

/// Account for every byte of the ZIP file `r` (of `len` bytes) at `path`; refuse whatever
/// readers could list differently. Also refuses more entries than the limit before reading
/// them, and duplicate names. Returns where each entry's data starts, by the offset of its
/// local header; the reader inflates from there and checks that the deflate stream ends
/// exactly at the declared compressed size.
pub(crate) fn check<R: Read + Seek>(
    r: R,
    len: u64,
    path: &Path,
    limits: &Limits,
) -> Result<HashMap<u64, u64>, ArchiveError> {
    let mut a = Accountant { r, len, path };
    let end = end_records(&mut a)?;
    if end.entries > limits.max_entries {
        return Err(ArchiveError::TooManyEntries {
            count: end.entries,
            limit: limits.max_entries,
        });
    }
    let mut central = central_directory(&mut a, &end, limits)?;
    central.sort_by_key(|c| c.offset);
    let mut pos = 0u64;
    let mut data_starts = HashMap::with_capacity(central.len());
    for c in &central {
        let (end, data) = local_entry(&mut a, c, pos)?;
        data_starts.insert(c.offset, data);
        pos = end;
    }
    if pos < end.cd_offset {
        let head = a.at(pos, 4.min(end.cd_offset - pos), "data")?;
        return Err(a.ambiguous(
            pos,
            if head == LOCAL_SIG {
                format!(
                    "a local header not listed in the central directory, after the last listed entry ({} bytes before the central directory; Java's ZipInputStream lists it, other readers do not)",
                    end.cd_offset - pos
                )
            } else if central.is_empty() {
                format!("{} bytes before the central directory of an archive with no entries", end.cd_offset - pos)
            } else {
                format!(
                    "{} bytes between the last entry and the central directory",
                    end.cd_offset - pos
                )
            },
        ));
    }
    if pos > end.cd_offset {
        return Err(a.ambiguous(
            end.cd_offset,
            "the last entry runs into the central directory (overlapping records)",
        ));
    }
    Ok(data_starts)
}

/// Find and check the end-of-central-directory record (and the ZIP64 one).
fn end_records<R: Read + Seek>(a: &mut Accountant<'_, R>) -> Result<End, ArchiveError> {
    let tail_len = a.len.min(EOCD_LEN + 0xFFFF);
    let tail_start = a.len - tail_len;
    let tail = a.at(tail_start, tail_len, "the end of the archive")?;
    let candidates: Vec<usize> = (0..tail.len().saturating_sub(EOCD_LEN as usize - 1))
        .filter(|&i| &tail[i..i + 4] == EOCD_SIG)
        .collect();
    let fits = |i: &usize| i + EOCD_LEN as usize + usize::from(u16_at(&tail, i + 20)) == tail.len();
    let Some(&pos) = candidates.iter().rev().find(|i| fits(i)) else {
        let Some(&last) = candidates.last() else {
            return Err(a.corrupt("no end-of-central-directory record (not a complete ZIP file)"));
        };
        let end = tail_start + last as u64 + EOCD_LEN + u64::from(u16_at(&tail, last + 20));
        return Err(if end < a.len {
            a.ambiguous(
                end,
                format!(
                    "{} bytes after the end-of-central-directory record",
                    a.len - end
                ),
            )
        } else {
            a.corrupt("the archive comment runs past the end of the file")
        });
    };
    let eocd_offset = tail_start + pos as u64;
    let rec = &tail[pos..pos + EOCD_LEN as usize];
    let comment = &tail[pos + EOCD_LEN as usize..];
    if comment
        .windows(4)
        .any(|w| w == EOCD_SIG || w == ZIP64_LOCATOR_SIG)
    {
        return Err(a.ambiguous(
            eocd_offset + EOCD_LEN,
            "an archive comment holding an end-record signature (readers scanning backwards may take it for the real end record)",
        ));
    }
    let (disk, cd_disk) = (u16_at(rec, 4), u16_at(rec, 6));
    let (on_disk, total) = (u16_at(rec, 8), u16_at(rec, 10));
    let (cd_size, cd_offset) = (u32_at(rec, 12), u32_at(rec, 16));
    if disk != 0 || cd_disk != 0 || on_disk != total {
        return Err(a.ambiguous(eocd_offset, "a multi-disk (split or spanned) archive"));
    }
    let maxed = total == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF;
    let locator_offset = eocd_offset.checked_sub(LOCATOR_LEN);
    let locator = match locator_offset {
        Some(at) => {
            let l = a.at(at, LOCATOR_LEN, "the ZIP64 locator")?;
            (l[..4] == *ZIP64_LOCATOR_SIG).then_some((at, l))
        }
        None => None,
    };
    let Some((locator_offset, l)) = locator else {
        if maxed {
            return Err(a.ambiguous(
                eocd_offset,
                "an end record that defers to a ZIP64 end record that is not there (readers take its values differently)",
            ));
        }
        return Ok(End {
            entries: u64::from(total),
            cd_offset: u64::from(cd_offset),
            cd_size: u64::from(cd_size),
            cd_end: eocd_offset,
        });
    };
    if u32_at(&l, 4) != 0 || u32_at(&l, 16) > 1 {
        return Err(a.ambiguous(
            locator_offset,
            "a multi-disk (split or spanned) ZIP64 archive",
        ));
    }
    let z_offset = u64_at(&l, 8);
    let z = a.at(z_offset, 56, "the ZIP64 end record")?;
    if z[..4] != *ZIP64_EOCD_SIG {
        return Err(a.corrupt("the ZIP64 locator does not point at a ZIP64 end record"));
    }
    let z_end = z_offset
        .checked_add(12)
        .and_then(|x| x.checked_add(u64_at(&z, 4)));
    if z_end != Some(locator_offset) {
        return Err(a.ambiguous(
            z_offset,
            "a ZIP64 end record that does not end where its locator starts (bytes between them, or overlap)",
        ));
    }
    let (z_disk, z_cd_disk) = (u32_at(&z, 16), u32_at(&z, 20));
    let (z_on_disk, z_total) = (u64_at(&z, 24), u64_at(&z, 32));
    let (z_cd_size, z_cd_offset) = (u64_at(&z, 40), u64_at(&z, 48));
    if z_disk != 0 || z_cd_disk != 0 || z_on_disk != z_total {
        return Err(a.ambiguous(z_offset, "a multi-disk (split or spanned) ZIP64 archive"));
    }
    // Where the classic record holds a real value, it must be the ZIP64 one.
    let agree = (total == 0xFFFF || u64::from(total) == z_total)
        && (cd_size == 0xFFFF_FFFF || u64::from(cd_size) == z_cd_size)
        && (cd_offset == 0xFFFF_FFFF || u64::from(cd_offset) == z_cd_offset);
    if !agree {
        return Err(a.ambiguous(
            eocd_offset,
            "an end record that disagrees with the ZIP64 end record (readers use one or the other)",
        ));
    }
    Ok(End {
        entries: z_total,
        cd_offset: z_cd_offset,
        cd_size: z_cd_size,
        cd_end: z_offset,
    })
}

/// Read every central directory entry; the directory must fill exactly its declared span.
fn central_directory<R: Read + Seek>(
    a: &mut Accountant<'_, R>,
    end: &End,
    limits: &Limits,
) -> Result<Vec<Central>, ArchiveError> {
    let declared_end = end.cd_offset.checked_add(end.cd_size);
    match declared_end {
        Some(e) if e == end.cd_end => {}
        Some(e) if e < end.cd_end => {
            return Err(a.ambiguous(
                e,
                format!(
                    "{} bytes between the central directory and the end record",
                    end.cd_end - e
                ),
            ));
        }
        _ => {
            return Err(a.corrupt(
                "the central directory's declared offset and size run past the end record",
            ));
        }
    }
    a.r.seek(SeekFrom::Start(end.cd_offset))
        .map_err(|e| a.io(e))?;
    let path = a.path;
    let mut r = BufReader::new((&mut a.r).take(end.cd_size));
    let mut out = Vec::new();
    let mut names = HashSet::new();
    let mut pos = end.cd_offset;
    let short = |pos: u64| ArchiveError::Corrupt {
        path: path.to_path_buf(),
        entry: None,
        reason: format!(
            "the central directory ends at byte {pos}, before the {} entries the end record declares",
            end.entries
        ),
    };
    for _ in 0..end.entries {
        let mut fixed = [0u8; 46];
        r.read_exact(&mut fixed).map_err(|_| short(pos))?;
        if fixed[..4] != *CENTRAL_SIG {
            return Err(short(pos));
        }
        let name_len = usize::from(u16_at(&fixed, 28));
        let extra_len = usize::from(u16_at(&fixed, 30));
        let comment_len = u64::from(u16_at(&fixed, 32));
        let mut name = vec![0u8; name_len];
        let mut extra = vec![0u8; extra_len];
        r.read_exact(&mut name).map_err(|_| short(pos))?;
        r.read_exact(&mut extra).map_err(|_| short(pos))?;
        let skipped =
            io::copy(&mut (&mut r).take(comment_len), &mut io::sink()).map_err(|_| short(pos))?;
        if skipped != comment_len {
            return Err(short(pos));
        }
        let mut compressed = u64::from(u32_at(&fixed, 20));
        let mut size = u64::from(u32_at(&fixed, 24));
        let mut offset = u64::from(u32_at(&fixed, 42));
        let mut disk = u32::from(u16_at(&fixed, 34));
        let shown = String::from_utf8_lossy(&name).into_owned();
        if let Some(z) = extra_field(&extra, EXTRA_ZIP64) {
            // Only the fields whose classic value is maxed are present, in this order.
            let mut z = z;
            let mut take = |field: &mut u64, maxed: bool| -> Result<(), ArchiveError> {
                if maxed {
                    if z.len() < 8 {
                        return Err(ambiguous(
                            path,
                            pos,
                            format!("a ZIP64 field of {shown:?} that lacks a size or offset"),
                        ));
                    }
                    *field = u64_at(z, 0);
                    z = &z[8..];
                }
                Ok(())
            };
            let maxed = (
                size == 0xFFFF_FFFF,
                compressed == 0xFFFF_FFFF,
                offset == 0xFFFF_FFFF,
            );
            take(&mut size, maxed.0)?;
            take(&mut compressed, maxed.1)?;
            take(&mut offset, maxed.2)?;
            if disk == 0xFFFF && z.len() >= 4 {
                disk = u32_at(z, 0);
            }
        }
        if disk != 0 {
            return Err(ambiguous(
                path,
                pos,
                format!("entry {shown:?} on another disk (a multi-disk archive)"),
            ));
        }
        unicode_path_agrees(path, &extra, &name, pos)?;
        if !names.insert(name.clone()) {
            return Err(ArchiveError::Duplicate { entry: shown });
        }
        if size > limits.max_entry_size {
            return Err(ArchiveError::EntryTooLarge {
                entry: shown,
                limit: limits.max_entry_size,
            });
        }
        out.push(Central {
            name,
            flags: u16_at(&fixed, 8),
            method: u16_at(&fixed, 10),
            crc: u32_at(&fixed, 16),
            compressed,
            size,
            offset,
        });
        pos += 46 + name_len as u64 + extra_len as u64 + comment_len;
    }
    let rest = r.fill_buf().map_err(|source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !rest.is_empty() {
        return Err(ambiguous(
            path,
            pos,
            "bytes in the central directory after its declared entries (its size disagrees with its entry count)",
        ));
    }
    Ok(out)
}

/// The data of the first extra field with `id`, if any.
fn extra_field(mut extra: &[u8], id: u16) -> Option<&[u8]> {
    while extra.len() >= 4 {
        let (kind, len) = (u16_at(extra, 0), usize::from(u16_at(extra, 2)));
        let data = extra.get(4..4 + len)?;
        if kind == id {
            return Some(data);
        }
        extra = &extra[4 + len..];
    }
    None
}

/// An Info-ZIP Unicode Path field renames the entry for readers that honour it (unzip) and
/// not for others (Java): it must name the entry exactly as its header does.
fn unicode_path_agrees(
    path: &Path,
    extra: &[u8],
    name: &[u8],
    at: u64,
) -> Result<(), ArchiveError> {
    if let Some(up) = extra_field(extra, EXTRA_UNICODE_PATH)
        && up.get(5..) != Some(name)
    {
        return Err(ambiguous(
            path,
            at,
            format!(
                "an Info-ZIP Unicode Path field naming entry {:?} as {:?} (unzip shows one name, Java the other)",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(up.get(5..).unwrap_or_default())
            ),
        ));
    }
    Ok(())
}

/// Check the local record of `c`, which must start at `pos`; return where it ends and where
/// its data starts.
fn local_entry<R: Read + Seek>(
    a: &mut Accountant<'_, R>,
    c: &Central,
    pos: u64,
) -> Result<(u64, u64), ArchiveError> {
    let shown = String::from_utf8_lossy(&c.name).into_owned();
    if c.offset > pos {
        let head = a.at(pos, 4, "data")?;
        return Err(a.ambiguous(
            pos,
            if head == LOCAL_SIG {
                format!(
                    "a local header not listed in the central directory, before entry {shown:?} (Java's ZipInputStream lists it, other readers do not)"
                )
            } else if pos == 0 {
                format!("{} bytes before the first entry", c.offset)
            } else {
                format!("{} bytes between entries, before entry {shown:?}", c.offset - pos)
            },
        ));
    }
    if c.offset < pos {
        return Err(a.ambiguous(
            c.offset,
            format!("entry {shown:?} overlaps the entry before it"),
        ));
    }
    let fixed = a.at(c.offset, 30, "a local header")?;
    if fixed[..4] != *LOCAL_SIG {
        return Err(a.ambiguous(
            c.offset,
            format!(
                "the central directory points entry {shown:?} at bytes that are not a local header"
            ),
        ));
    }
    let name_len = u64::from(u16_at(&fixed, 26));
    let extra_len = u64::from(u16_at(&fixed, 28));
    let var = a.at(c.offset + 30, name_len + extra_len, "a local header")?;
    let (name, extra) = var.split_at(usize::from(u16_at(&fixed, 26)));
    let differs = |what: &str| {
        a.ambiguous(
            c.offset,
            format!(
                "the local header of entry {shown:?} disagrees with the central directory ({what}); Java's ZipInputStream reads the local one"
            ),
        )
    };
    if name != c.name.as_slice() {
        return Err(differs(&format!(
            "local name {:?}",
            String::from_utf8_lossy(name)
        )));
    }
    let flags = u16_at(&fixed, 6);
    if flags != c.flags {
        return Err(differs(&format!(
            "flags {flags:#06x} against {:#06x}",
            c.flags
        )));
    }
    let method = u16_at(&fixed, 8);
    if method != c.method {
        return Err(differs(&format!(
            "compression method {method} against {}",
            c.method
        )));
    }
    unicode_path_agrees(a.path, extra, &c.name, c.offset)?;
    let local_zip64 = extra_field(extra, EXTRA_ZIP64);
    let mut compressed = u64::from(u32_at(&fixed, 18));
    let mut size = u64::from(u32_at(&fixed, 22));
    if let Some(z) = local_zip64 {
        // In a local header the ZIP64 field holds both sizes when either is maxed.
        if (size == 0xFFFF_FFFF || compressed == 0xFFFF_FFFF) && z.len() >= 16 {
            size = u64_at(z, 0);
            compressed = u64_at(z, 8);
        }
    }
    let crc = u32_at(&fixed, 14);
    let descriptor = flags & FLAG_DESCRIPTOR != 0;
    // With a data descriptor the local values may be left zero; any value given must match.
    let matches = |local: u64, central: u64| local == central || (descriptor && local == 0);
    if !matches(u64::from(crc), u64::from(c.crc)) {
        return Err(differs("CRC"));
    }
    if !matches(compressed, c.compressed) {
        return Err(differs(&format!(
            "compressed size {compressed} against {}",
            c.compressed
        )));
    }
    if !matches(size, c.size) {
        return Err(differs(&format!("size {size} against {}", c.size)));
    }
    let data = c.offset + 30 + name_len + extra_len;
    let data_end = data
        .checked_add(c.compressed)
        .filter(|&e| e <= a.len)
        .ok_or_else(|| a.corrupt(format!("entry {shown:?} runs past the end of the file")))?;
    if c.method == METHOD_STORED && c.flags & FLAG_ENCRYPTED == 0 && c.compressed != c.size {
        return Err(a.ambiguous(
            c.offset,
            format!("stored entry {shown:?} whose compressed size differs from its size"),
        ));
    }
    if !descriptor {
        return Ok((data_end, data));
    }
    if c.method == METHOD_STORED {
        return Err(a.ambiguous(
            c.offset,
            format!(
                "stored entry {shown:?} with a data descriptor (Java's ZipInputStream cannot find where its data ends)"
            ),
        ));
    }
    if local_zip64.is_some() {
        return Err(a.ambiguous(
            c.offset,
            format!(
                "entry {shown:?} has a data descriptor after a ZIP64 local header (readers, and Java versions among themselves, disagree on 4- or 8-byte sizes there)"
            ),
        ));
    }
    let head = a.at(data_end, 4, "a data descriptor")?;
    let (values_at, desc_len) = if head == DESCRIPTOR_SIG {
        (data_end + 4, 16)
    } else {
        (data_end, 12)
    };
    let d = a.at(values_at, 12, "a data descriptor")?;
    if u32_at(&d, 0) != c.crc
        || u64::from(u32_at(&d, 4)) != c.compressed
        || u64::from(u32_at(&d, 8)) != c.size
    {
        return Err(a.ambiguous(
            data_end,
            format!(
                "the data descriptor of entry {shown:?} disagrees with the central directory (CRC or sizes)"
            ),
        ));
    }
    Ok((data_end + desc_len, data))
}

#[cfg(test)]
// In tests a panic is the failure report.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn check_bytes(bytes: Vec<u8>) -> Result<(), ArchiveError> {
        let len = bytes.len() as u64;
        check(
            Cursor::new(bytes),
            len,
            Path::new("t.zip"),
            &Limits::default(),
        )
        .map(drop)
    }

    fn zip_with(options: zip::write::SimpleFileOptions, comment: &str) -> Vec<u8> {
        let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for name in ["a/one.workflow.json", "a/two.lock.json"] {
            z.start_file(name, options).unwrap();
            z.write_all(br#"{"TYPE":"Workflow","instructions":[]}"#)
                .unwrap();
        }
        z.set_comment(comment).unwrap();
        z.finish().unwrap().into_inner()
    }

    #[test]
    fn an_empty_archive_is_all_end_record() {
        let bytes = zip::ZipWriter::new(Cursor::new(Vec::new()))
            .finish()
            .unwrap()
            .into_inner();
        assert_eq!(bytes.len(), 22);
        check_bytes(bytes).unwrap();
    }

    #[test]
    fn data_starts_are_found_past_each_local_header() {
        let bytes = zip_with(zip::write::SimpleFileOptions::default(), "");
        let len = bytes.len() as u64;
        let starts = check(
            Cursor::new(bytes),
            len,
            Path::new("t.zip"),
            &Limits::default(),
        )
        .unwrap();
        // The first entry's header is at 0: 30 fixed bytes and its 19-byte name, no extra.
        assert_eq!(starts.get(&0), Some(&(30 + 19)));
        assert_eq!(starts.len(), 2);
    }

    #[test]
    fn zip64_stored_deflated_and_commented_archives_are_accounted_for() {
        use zip::CompressionMethod::{Deflated, Stored};
        let base = zip::write::SimpleFileOptions::default();
        for options in [
            base.compression_method(Stored),
            base.compression_method(Deflated),
            base.compression_method(Deflated).large_file(true),
        ] {
            check_bytes(zip_with(options, "")).unwrap();
            check_bytes(zip_with(options, "exported for signing")).unwrap();
        }
    }

    #[test]
    fn one_byte_more_anywhere_is_refused() {
        let good = zip_with(zip::write::SimpleFileOptions::default(), "");
        // Insert a byte at each record boundary the accounting knows about.
        let cd = good.windows(4).position(|w| w == CENTRAL_SIG).unwrap();
        let second = good[4..].windows(4).position(|w| w == LOCAL_SIG).unwrap() + 4;
        let eocd = good.len() - EOCD_LEN as usize;
        for at in [second, cd, eocd, good.len()] {
            let mut bad = good.clone();
            bad.insert(at, b'!');
            let err = check_bytes(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    ArchiveError::Ambiguous { .. } | ArchiveError::Corrupt { .. }
                ),
                "insert at {at}: {err}"
            );
        }
    }
}
