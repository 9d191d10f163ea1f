//! Archives that different readers list differently, built byte by byte: `archive sign` and
//! `archive verify` must both refuse each one, naming the construct, and leave no output.
//! Where it proves the point, an independent reader (Java's ZipInputStream, Python's zipfile,
//! unzip, GNU tar) shows that the readers really disagree. Genuine archives from zip, Python,
//! Java and GNU tar are still signed and verified.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::{Pki, stderr, stdout};

// ---------------------------------------------------------------------------------------------
// ZIP, by hand

fn crc(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// One ZIP entry; the `local_*` fields let the local header say something else than the
/// central directory.
#[derive(Clone)]
struct Ze {
    name: Vec<u8>,
    data: Vec<u8>,
    deflated: bool,
    flags: u16,
    descriptor: Option<Vec<u8>>,
    local_name: Option<Vec<u8>>,
    local_flags: Option<u16>,
    local_method: Option<u16>,
    local_crc: Option<u32>,
    local_size: Option<u32>,
    local_extra: Vec<u8>,
    central_extra: Vec<u8>,
    /// Bytes appended to the compressed data (counted in the compressed size).
    junk_in_data: Vec<u8>,
}

impl Ze {
    fn new(name: &str, data: &[u8]) -> Self {
        Self {
            name: name.as_bytes().to_vec(),
            data: data.to_vec(),
            deflated: false,
            flags: 0,
            descriptor: None,
            local_name: None,
            local_flags: None,
            local_method: None,
            local_crc: None,
            local_size: None,
            local_extra: Vec::new(),
            central_extra: Vec::new(),
            junk_in_data: Vec::new(),
        }
    }

    fn deflated(mut self) -> Self {
        self.deflated = true;
        self
    }

    fn stored_bytes(&self) -> Vec<u8> {
        let mut d = if self.deflated {
            deflate(&self.data)
        } else {
            self.data.clone()
        };
        d.extend_from_slice(&self.junk_in_data);
        d
    }

    fn method(&self) -> u16 {
        if self.deflated { 8 } else { 0 }
    }

    /// A data descriptor with the signature and the right values.
    fn with_descriptor(mut self) -> Self {
        self.flags |= 8;
        let mut d = b"PK\x07\x08".to_vec();
        d.extend_from_slice(&crc(&self.data).to_le_bytes());
        d.extend_from_slice(&(self.stored_bytes().len() as u32).to_le_bytes());
        d.extend_from_slice(&(self.data.len() as u32).to_le_bytes());
        self.descriptor = Some(d);
        self
    }

    fn local(&self) -> Vec<u8> {
        let stored = self.stored_bytes();
        let name = self.local_name.as_ref().unwrap_or(&self.name);
        let with_desc = self.descriptor.is_some();
        let mut h = b"PK\x03\x04".to_vec();
        h.extend_from_slice(&20u16.to_le_bytes());
        h.extend_from_slice(&self.local_flags.unwrap_or(self.flags).to_le_bytes());
        h.extend_from_slice(
            &self
                .local_method
                .unwrap_or_else(|| self.method())
                .to_le_bytes(),
        );
        h.extend_from_slice(&[0, 0, 0x21, 0x58]); // time, date
        let zero_if = |v: u32| if with_desc { 0 } else { v };
        h.extend_from_slice(
            &self
                .local_crc
                .unwrap_or_else(|| zero_if(crc(&self.data)))
                .to_le_bytes(),
        );
        h.extend_from_slice(&zero_if(stored.len() as u32).to_le_bytes());
        h.extend_from_slice(
            &self
                .local_size
                .unwrap_or_else(|| zero_if(self.data.len() as u32))
                .to_le_bytes(),
        );
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&(self.local_extra.len() as u16).to_le_bytes());
        h.extend_from_slice(name);
        h.extend_from_slice(&self.local_extra);
        h.extend_from_slice(&stored);
        if let Some(d) = &self.descriptor {
            h.extend_from_slice(d);
        }
        h
    }

    fn central(&self, offset: u32) -> Vec<u8> {
        let stored = self.stored_bytes();
        let mut h = b"PK\x01\x02".to_vec();
        h.extend_from_slice(&[20, 3]); // made by: Unix
        h.extend_from_slice(&20u16.to_le_bytes());
        h.extend_from_slice(&self.flags.to_le_bytes());
        h.extend_from_slice(&self.method().to_le_bytes());
        h.extend_from_slice(&[0, 0, 0x21, 0x58]);
        h.extend_from_slice(&crc(&self.data).to_le_bytes());
        h.extend_from_slice(&(stored.len() as u32).to_le_bytes());
        h.extend_from_slice(&(self.data.len() as u32).to_le_bytes());
        h.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        h.extend_from_slice(&(self.central_extra.len() as u16).to_le_bytes());
        h.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // comment length, disk, internal attributes
        h.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
        h.extend_from_slice(&offset.to_le_bytes());
        h.extend_from_slice(&self.name);
        h.extend_from_slice(&self.central_extra);
        h
    }
}

/// A ZIP file assembled piece by piece.
#[derive(Default)]
struct Zb {
    file: Vec<u8>,
    central: Vec<u8>,
    count: u16,
}

impl Zb {
    fn entry(mut self, e: &Ze) -> Self {
        let at = self.file.len() as u32;
        self.file.extend_from_slice(&e.local());
        self.central.extend_from_slice(&e.central(at));
        self.count += 1;
        self
    }

    /// A local record that the central directory does not list.
    fn unlisted(mut self, e: &Ze) -> Self {
        self.file.extend_from_slice(&e.local());
        self
    }

    /// A central entry pointing at `offset` (the local record must be there already).
    fn listed_at(mut self, e: &Ze, offset: u32) -> Self {
        self.central.extend_from_slice(&e.central(offset));
        self.count += 1;
        self
    }

    fn raw(mut self, bytes: &[u8]) -> Self {
        self.file.extend_from_slice(bytes);
        self
    }

    fn eocd(disk: u16, count: u16, cd_size: u32, cd_offset: u32, comment: &[u8]) -> Vec<u8> {
        let mut e = b"PK\x05\x06".to_vec();
        e.extend_from_slice(&disk.to_le_bytes());
        e.extend_from_slice(&disk.to_le_bytes());
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&cd_size.to_le_bytes());
        e.extend_from_slice(&cd_offset.to_le_bytes());
        e.extend_from_slice(&(comment.len() as u16).to_le_bytes());
        e.extend_from_slice(comment);
        e
    }

    /// The central directory (with `cd_junk` inside its span), `between` bytes, the end record.
    fn finish_with(mut self, cd_junk: &[u8], between: &[u8], disk: u16, comment: &[u8]) -> Vec<u8> {
        let cd_offset = self.file.len() as u32;
        let cd_size = (self.central.len() + cd_junk.len()) as u32;
        self.file.extend_from_slice(&self.central);
        self.file.extend_from_slice(cd_junk);
        self.file.extend_from_slice(between);
        let eocd = Self::eocd(disk, self.count, cd_size, cd_offset, comment);
        self.file.extend_from_slice(&eocd);
        self.file
    }

    fn finish(self) -> Vec<u8> {
        self.finish_with(b"", b"", 0, b"")
    }

    /// With a ZIP64 end record and locator; `z_count` is what the ZIP64 record says.
    fn finish_zip64(mut self, z_count: u64) -> Vec<u8> {
        let cd_offset = self.file.len() as u64;
        let cd_size = self.central.len() as u64;
        self.file.extend_from_slice(&self.central);
        let z_at = self.file.len() as u64;
        let mut z = b"PK\x06\x06".to_vec();
        z.extend_from_slice(&44u64.to_le_bytes());
        z.extend_from_slice(&[45, 3, 45, 0]);
        z.extend_from_slice(&[0; 8]); // disks
        z.extend_from_slice(&z_count.to_le_bytes());
        z.extend_from_slice(&z_count.to_le_bytes());
        z.extend_from_slice(&cd_size.to_le_bytes());
        z.extend_from_slice(&cd_offset.to_le_bytes());
        self.file.extend_from_slice(&z);
        let mut l = b"PK\x06\x07".to_vec();
        l.extend_from_slice(&0u32.to_le_bytes());
        l.extend_from_slice(&z_at.to_le_bytes());
        l.extend_from_slice(&1u32.to_le_bytes());
        self.file.extend_from_slice(&l);
        let eocd = Self::eocd(0, self.count, cd_size as u32, cd_offset as u32, b"");
        self.file.extend_from_slice(&eocd);
        self.file
    }
}

const WF: &[u8] = br#"{"TYPE":"Workflow","instructions":[]}"#;
const EVIL: &[u8] =
    br#"{"TYPE":"Workflow","instructions":[{"TYPE":"Execute.Named","jobName":"rm-rf"}]}"#;

fn wf(name: &str) -> Ze {
    Ze::new(name, WF)
}

fn zip64_extra(size: u64, compressed: u64) -> Vec<u8> {
    let mut x = vec![1, 0, 16, 0];
    x.extend_from_slice(&size.to_le_bytes());
    x.extend_from_slice(&compressed.to_le_bytes());
    x
}

/// An Info-ZIP Unicode Path field: version 1, the CRC of the header's name, the new name.
fn unicode_path_extra(header_name: &str, name: &str) -> Vec<u8> {
    let mut x = vec![0x75, 0x70];
    x.extend_from_slice(&((5 + name.len()) as u16).to_le_bytes());
    x.push(1);
    x.extend_from_slice(&crc(header_name.as_bytes()).to_le_bytes());
    x.extend_from_slice(name.as_bytes());
    x
}

// ---------------------------------------------------------------------------------------------
// tar.gz, by hand

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn pad(mut b: Vec<u8>) -> Vec<u8> {
    b.resize(b.len().div_ceil(512) * 512, 0);
    b
}

/// A raw ustar/GNU header block.
fn th(name: &[u8], kind: u8, size: usize) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"15000000000\0");
    h[156] = kind;
    h[257..265].copy_from_slice(b"ustar  \0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A header and its padded content.
fn tf(name: &[u8], kind: u8, data: &[u8]) -> Vec<u8> {
    let mut v = th(name, kind, data.len());
    v.extend_from_slice(&pad(data.to_vec()));
    v
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body_len = 1 + key.len() + 1 + value.len() + 1;
    let mut n = body_len + 1;
    while n.to_string().len() + body_len != n {
        n += 1;
    }
    let mut r = format!("{n} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn pax(kind: u8, records: &[(&str, &[u8])]) -> Vec<u8> {
    let body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
    tf(b"PaxHeader", kind, &body)
}

const END: [u8; 1024] = [0; 1024];

fn tar(parts: Vec<Vec<u8>>) -> Vec<u8> {
    let mut t: Vec<u8> = parts.concat();
    t.extend_from_slice(&END);
    t
}

// ---------------------------------------------------------------------------------------------
// independent readers

/// What Java's ZipInputStream (the reader JOC Cockpit uses) lists, in order.
fn java_lists(dir: &Path, file: &str) -> Vec<String> {
    let src = dir.join("ListZip.java");
    if !src.exists() {
        std::fs::write(
            &src,
            "import java.util.zip.*; import java.io.*;\n\
             public class ListZip { public static void main(String[] a) throws Exception {\n\
               try (ZipInputStream z = new ZipInputStream(new FileInputStream(a[0]))) {\n\
                 ZipEntry e; while ((e = z.getNextEntry()) != null) System.out.println(e.getName());\n\
               } } }\n",
        )
        .unwrap();
    }
    let out = Command::new("java")
        .arg(&src)
        .arg(file)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "java: {}", stderr(&out));
    stdout(&out).lines().map(str::to_owned).collect()
}

/// What Python's zipfile (central directory) lists.
fn python_lists(dir: &Path, file: &str) -> Vec<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys,zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
            file,
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "python: {}", stderr(&out));
    stdout(&out).lines().map(str::to_owned).collect()
}

/// What GNU tar lists (`extra` options such as `--ignore-zeros`).
fn gnu_tar_lists(dir: &Path, file: &str, extra: &[&str]) -> Vec<String> {
    let out = Command::new("tar")
        .args(extra)
        .args(["-tzf", file])
        .current_dir(dir)
        .output()
        .unwrap();
    stdout(&out).lines().map(str::to_owned).collect()
}

// ---------------------------------------------------------------------------------------------

struct Case {
    label: &'static str,
    file: &'static str,
    bytes: Vec<u8>,
    /// A phrase of the refusal that names the construct.
    needle: &'static str,
}

fn zip_cases() -> Vec<Case> {
    let a = wf("a.workflow.json");
    let b = wf("b.workflow.json");
    let hidden = Ze::new("hidden.workflow.json", EVIL);
    let mut c = Vec::new();
    let mut add = |label, bytes, needle| {
        c.push(Case {
            label,
            file: "in.zip",
            bytes,
            needle,
        })
    };
    add(
        "stray local header before the first entry",
        Zb::default()
            .raw(b"PK\x03\x04 stray bytes")
            .entry(&a)
            .finish(),
        "local header not listed in the central directory",
    );
    add(
        "bytes between entries",
        Zb::default().entry(&a).raw(&[b'X'; 40]).entry(&b).finish(),
        "bytes between entries",
    );
    add(
        "an unlisted entry between listed ones",
        Zb::default().entry(&a).unlisted(&hidden).entry(&b).finish(),
        "local header not listed in the central directory",
    );
    add(
        "an unlisted entry after the last listed one",
        Zb::default().entry(&a).unlisted(&hidden).finish(),
        "local header not listed in the central directory",
    );
    add(
        "bytes after the end record",
        [Zb::default().entry(&a).finish(), b"trailing".to_vec()].concat(),
        "after the end-of-central-directory record",
    );
    let mut x = a.clone();
    x.local_name = Some(b"x.workflow.json".to_vec());
    add(
        "local name differs",
        Zb::default().entry(&x).finish(),
        "local name",
    );
    let mut x = a.clone();
    x.local_method = Some(8);
    add(
        "local method differs",
        Zb::default().entry(&x).finish(),
        "compression method",
    );
    let mut x = a.clone();
    x.local_flags = Some(0x0800);
    add(
        "local flags differ",
        Zb::default().entry(&x).finish(),
        "flags",
    );
    let mut x = a.clone();
    x.local_size = Some(3);
    add(
        "local size differs",
        Zb::default().entry(&x).finish(),
        "size 3 against",
    );
    let mut x = a.clone();
    x.local_crc = Some(0xdead_beef);
    add(
        "local CRC differs",
        Zb::default().entry(&x).finish(),
        "(CRC)",
    );
    // Two central entries for the one local record at offset 0 (the second with another name).
    add(
        "overlapping entries",
        Zb::default()
            .entry(&a)
            .listed_at(&Ze::new("a2.workflow.json", WF), 0)
            .finish(),
        "overlaps the entry before it",
    );
    add(
        "duplicate names",
        Zb::default()
            .entry(&a)
            .entry(&wf("a.workflow.json"))
            .finish(),
        "appears more than once",
    );
    add(
        "stored entry with a data descriptor",
        Zb::default().entry(&a.clone().with_descriptor()).finish(),
        "with a data descriptor",
    );
    let mut x = Ze::new("d.workflow.json", WF).deflated().with_descriptor();
    let d = x.descriptor.as_mut().unwrap();
    d[4] ^= 0xff; // CRC in the descriptor
    add(
        "data descriptor disagreeing",
        Zb::default().entry(&x).finish(),
        "data descriptor of entry",
    );
    let mut x = Ze::new("d.workflow.json", WF).deflated().with_descriptor();
    x.local_extra = zip64_extra(0, 0);
    add(
        "data descriptor after a ZIP64 local header",
        Zb::default().entry(&x).finish(),
        "after a ZIP64 local header",
    );
    let mut x = Ze::new("d.workflow.json", WF).deflated();
    x.junk_in_data = b"HIDE!".to_vec();
    add(
        "deflate stream ending early",
        Zb::default().entry(&x).finish(),
        "ends 5 bytes before its declared compressed size",
    );
    add(
        "multi-disk archive",
        Zb::default().entry(&a).finish_with(b"", b"", 1, b""),
        "multi-disk",
    );
    add(
        "end signature inside the comment",
        Zb::default()
            .entry(&a)
            .finish_with(b"", b"", 0, b"see PK\x05\x06 here"),
        "end-record signature",
    );
    add(
        "bytes inside the central directory span",
        Zb::default()
            .entry(&a)
            .finish_with(&[b'Z'; 30], b"", 0, b""),
        "bytes in the central directory after its declared entries",
    );
    add(
        "bytes between the central directory and the end record",
        Zb::default()
            .entry(&a)
            .finish_with(b"", &[b'Z'; 30], 0, b""),
        "between the central directory and the end record",
    );
    let mut x = a.clone();
    x.central_extra = unicode_path_extra("a.workflow.json", "other.workflow.json");
    add(
        "Unicode Path field renaming",
        Zb::default().entry(&x).finish(),
        "Unicode Path field",
    );
    let mut bytes = Zb::default().entry(&a).finish();
    let n = bytes.len();
    bytes[n - 12..n - 10].copy_from_slice(&0xFFFFu16.to_le_bytes());
    bytes[n - 14..n - 12].copy_from_slice(&0xFFFFu16.to_le_bytes());
    add(
        "ZIP64 marker without a ZIP64 record",
        bytes,
        "ZIP64 end record that is not there",
    );
    add(
        "ZIP64 record disagreeing with the end record",
        Zb::default().entry(&a).finish_zip64(2),
        "disagrees with the ZIP64 end record",
    );
    c
}

fn tar_cases() -> Vec<Case> {
    let a = tf(b"a.workflow.json", b'0', WF);
    let hidden = tf(b"hidden.workflow.json", b'0', EVIL);
    let mut c = Vec::new();
    let mut add = |label, bytes, needle| {
        c.push(Case {
            label,
            file: "in.tar.gz",
            bytes,
            needle,
        })
    };
    add(
        "a second gzip member",
        [gz(&a), gz(&tar(vec![hidden.clone()]))].concat(),
        "a second gzip member",
    );
    add(
        "bytes after the gzip stream",
        [gz(&tar(vec![a.clone()])), b"trailing".to_vec()].concat(),
        "bytes after the end of the gzip stream",
    );
    add(
        "an entry after the tar end blocks",
        gz(&[tar(vec![a.clone()]), tar(vec![hidden])].concat()),
        "data after the tar end-of-archive block",
    );
    add(
        "a pax global header",
        gz(&tar(vec![
            pax(b'g', &[("path", b"renamed.workflow.json")]),
            a.clone(),
        ])),
        "pax global header",
    );
    add(
        "a pax path renaming the entry",
        gz(&tar(vec![
            pax(b'x', &[("path", b"other.workflow.json")]),
            a.clone(),
        ])),
        "a pax header naming the entry",
    );
    add(
        "a pax size differing",
        gz(&tar(vec![pax(b'x', &[("size", b"0")]), a.clone()])),
        "a pax header giving entry",
    );
    add(
        "a pax linkpath on a file",
        gz(&tar(vec![
            pax(b'x', &[("linkpath", b"/etc/passwd")]),
            a.clone(),
        ])),
        "linkpath",
    );
    add(
        "pax GNU sparse keys",
        gz(&tar(vec![
            pax(b'x', &[("GNU.sparse.size", b"100")]),
            a.clone(),
        ])),
        "GNU sparse-file keys",
    );
    add(
        "a pax character set",
        gz(&tar(vec![
            pax(b'x', &[("hdrcharset", b"BINARY")]),
            a.clone(),
        ])),
        "hdrcharset",
    );
    add(
        "two pax headers for one entry",
        gz(&tar(vec![
            pax(b'x', &[("mtime", b"1")]),
            pax(b'x', &[("mtime", b"2")]),
            a.clone(),
        ])),
        "two pax extended headers",
    );
    add(
        "a GNU long name renaming the entry",
        gz(&tar(vec![
            tf(b"././@LongLink", b'L', b"other.workflow.json\0"),
            a.clone(),
        ])),
        "a GNU long-name header ('L') naming",
    );
    add(
        "a GNU long link name",
        gz(&tar(vec![
            tf(b"././@LongLink", b'K', b"/etc/passwd\0"),
            a.clone(),
        ])),
        "long link-name header ('K')",
    );
    add(
        "both a pax and a GNU long name",
        gz(&tar(vec![
            tf(b"././@LongLink", b'L', b"a.workflow.json\0"),
            pax(b'x', &[("path", b"a.workflow.json")]),
            a,
        ])),
        "both a pax header and a GNU long-name header",
    );
    add(
        "a GNU sparse entry",
        gz(&tar(vec![tf(b"s.workflow.json", b'S', WF)])),
        "unsupported type GNUSparse",
    );
    c
}

/// Issue an operator signing certificate for a new P-256 key.
fn operator(pki: &Pki) -> String {
    pki.hsm.init_token("Operator");
    let uri = pki.hsm.key("Operator", "alice", "ec-p256");
    pki.signing_cert(&uri, "CN=alice, O=SOS", "alice.pem");
    uri
}

fn files_named(dir: &Path, stem: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(stem))
        .collect()
}

#[test]
fn hostile_archives_are_refused_by_sign_and_verify_naming_the_construct() {
    let pki = Pki::new();
    let key = operator(&pki);
    let before = pki.counts();
    let cases: Vec<Case> = zip_cases().into_iter().chain(tar_cases()).collect();
    assert!(cases.len() >= 35, "{} cases", cases.len());
    for case in &cases {
        std::fs::write(pki.path(case.file), &case.bytes).unwrap();
        let sign = pki.run(&[
            "archive",
            "sign",
            "--key",
            &key,
            "--cert",
            "alice.pem",
            "--in",
            case.file,
            "--out",
            "signed.out",
        ]);
        let err = stderr(&sign);
        assert_eq!(sign.status.code(), Some(1), "{}: sign: {err}", case.label);
        assert!(err.contains(case.needle), "{}: sign: {err}", case.label);
        assert!(
            files_named(&pki.path(""), "signed.out").is_empty(),
            "{}: output left behind",
            case.label
        );
        let verify = pki.run(&[
            "archive",
            "verify",
            "--in",
            case.file,
            "--trusted",
            "issuing.pem",
            "--cert",
            "alice.pem",
        ]);
        let err = stderr(&verify);
        assert_ne!(verify.status.code(), Some(0), "{}: verify", case.label);
        assert!(err.contains(case.needle), "{}: verify: {err}", case.label);
        // The JSON verdict says refused, with the reason, and the exit code stays non-zero.
        let json = pki.run(&[
            "--json",
            "archive",
            "verify",
            "--in",
            case.file,
            "--trusted",
            "issuing.pem",
        ]);
        assert_ne!(json.status.code(), Some(0), "{}: verify --json", case.label);
        let doc: serde_json::Value = serde_json::from_str(&stdout(&json))
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", case.label, stdout(&json)));
        assert_eq!(doc["accepted"], false, "{}: {doc}", case.label);
        assert_eq!(doc["refused"], true, "{}: {doc}", case.label);
        assert!(
            doc["reason"].as_str().unwrap().contains(case.needle),
            "{}: {doc}",
            case.label
        );
        // Layout refusals say what to do.
        if doc.get("construct").is_some() {
            assert!(
                err.contains("Export the archive again from JOC Cockpit"),
                "{}: {err}",
                case.label
            );
        }
    }
    assert_eq!(pki.counts(), before, "refusals changed the state");
}

#[test]
fn the_readers_really_disagree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // ZIP: an entry reachable through its local header only. Java's ZipInputStream (JOC
    // Cockpit's reader) lists it, Python's zipfile (the central directory) does not.
    let bytes = Zb::default()
        .entry(&wf("a.workflow.json"))
        .unlisted(&Ze::new("hidden.workflow.json", EVIL))
        .finish();
    std::fs::write(d.join("hidden.zip"), bytes).unwrap();
    assert_eq!(
        java_lists(d, "hidden.zip"),
        ["a.workflow.json", "hidden.workflow.json"]
    );
    assert_eq!(python_lists(d, "hidden.zip"), ["a.workflow.json"]);
    // ZIP: a Unicode Path field. unzip shows its name, Java the header's.
    let mut x = wf("a.workflow.json");
    x.central_extra = unicode_path_extra("a.workflow.json", "other.workflow.json");
    x.local_extra = unicode_path_extra("a.workflow.json", "other.workflow.json");
    std::fs::write(d.join("unicode.zip"), Zb::default().entry(&x).finish()).unwrap();
    assert_eq!(java_lists(d, "unicode.zip"), ["a.workflow.json"]);
    let out = Command::new("unzip")
        .args(["-l", "unicode.zip"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("other.workflow.json"),
        "{}",
        stdout(&out)
    );
    // tar.gz: a second gzip member. GNU tar lists its entry; a reader of the first member
    // (the tar crate, commons-compress by default) does not.
    let a = tf(b"a.workflow.json", b'0', WF);
    let hidden = tf(b"hidden.workflow.json", b'0', EVIL);
    // The first member holds no end blocks, so GNU tar reads on into the second.
    let first = gz(&a);
    std::fs::write(
        d.join("two.tar.gz"),
        [first.clone(), gz(&tar(vec![hidden.clone()]))].concat(),
    )
    .unwrap();
    assert_eq!(
        gnu_tar_lists(d, "two.tar.gz", &[]),
        ["a.workflow.json", "hidden.workflow.json"]
    );
    let mut one = tar::Archive::new(flate2::read::GzDecoder::new(first.as_slice()));
    let names: Vec<String> = one
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["a.workflow.json"]);
    // tar.gz: an entry after the end blocks. GNU tar --ignore-zeros lists it, plain GNU tar
    // does not.
    std::fs::write(
        d.join("after.tar.gz"),
        gz(&[tar(vec![a.clone()]), tar(vec![hidden])].concat()),
    )
    .unwrap();
    assert_eq!(gnu_tar_lists(d, "after.tar.gz", &[]), ["a.workflow.json"]);
    assert_eq!(
        gnu_tar_lists(d, "after.tar.gz", &["--ignore-zeros"]),
        ["a.workflow.json", "hidden.workflow.json"]
    );
    // tar.gz: a pax global header with a path. GNU tar renames the entry; the tar crate
    // (which ignores global headers) keeps the header's name.
    let g = gz(&tar(vec![
        pax(b'g', &[("path", b"renamed.workflow.json")]),
        a,
    ]));
    std::fs::write(d.join("global.tar.gz"), &g).unwrap();
    assert_eq!(
        gnu_tar_lists(d, "global.tar.gz", &[]),
        ["renamed.workflow.json"]
    );
    let mut t = tar::Archive::new(flate2::read::GzDecoder::new(g.as_slice()));
    let names: Vec<String> = t
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .filter(|n| !n.contains("PaxHeader"))
        .collect();
    assert_eq!(names, ["a.workflow.json"]);
}

/// A few JS7-like objects in a directory tree, with one name too long for a ustar header.
fn export_tree(dir: &Path) -> Vec<String> {
    let long = format!(
        "Deep/{}/long.workflow.json",
        ["Folder_abcdefghij"; 7].join("/")
    );
    let names = vec![
        "Accounting/eod.workflow.json".to_string(),
        "Accounting/db.jobresource.json".to_string(),
        "Accounting/one.lock.json".to_string(),
        long,
    ];
    for n in &names {
        let p = dir.join(n);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, WF).unwrap();
    }
    names
}

#[test]
fn genuine_archives_are_still_signed_and_verified() {
    let pki = Pki::new();
    let key = operator(&pki);
    let src = pki.path("src");
    std::fs::create_dir(&src).unwrap();
    export_tree(&src);
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program)
            .args(args)
            .current_dir(&src)
            .output()
            .unwrap();
        assert!(out.status.success(), "{program} {args:?}: {}", stderr(&out));
    };
    let at = |n: &str| pki.path(n).display().to_string();
    run("zip", &["-qr", &at("info.zip"), "Accounting", "Deep"]);
    run(
        "sh",
        &[
            "-c",
            &format!("zip -qr - Accounting Deep > {}", at("streamed.zip")),
        ],
    );
    run(
        "python3",
        &[
            "-c",
            "import sys,zipfile,os\n\
             with zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED) as z:\n\
             \x20   for r,_,fs in os.walk('.'):\n\
             \x20       for f in sorted(fs): z.write(os.path.join(r,f)[2:])\n",
            &at("python.zip"),
        ],
    );
    std::fs::write(
        src.join("Mk.java"),
        "import java.util.zip.*; import java.io.*; import java.nio.file.*;\n\
         public class Mk { public static void main(String[] a) throws Exception {\n\
           try (ZipOutputStream z = new ZipOutputStream(new FileOutputStream(a[0]))) {\n\
             for (int i = 1; i < a.length; i++) {\n\
               z.putNextEntry(new ZipEntry(a[i])); z.write(Files.readAllBytes(Path.of(a[i]))); z.closeEntry();\n\
             } } } }\n",
    )
    .unwrap();
    let names = export_tree(&src);
    let mut java_args = vec!["Mk.java".to_string(), at("java.zip")];
    java_args.extend(names.iter().cloned());
    let java_refs: Vec<&str> = java_args.iter().map(String::as_str).collect();
    run("java", &java_refs);
    std::fs::remove_file(src.join("Mk.java")).unwrap();
    run(
        "tar",
        &[
            "--format=gnu",
            "-czf",
            &at("gnu.tar.gz"),
            "Accounting",
            "Deep",
        ],
    );
    run(
        "tar",
        &[
            "--format=posix",
            "-czf",
            &at("posix.tar.gz"),
            "Accounting",
            "Deep",
        ],
    );
    for file in [
        "info.zip",
        "streamed.zip",
        "python.zip",
        "java.zip",
        "gnu.tar.gz",
        "posix.tar.gz",
    ] {
        let out = format!("signed-{file}");
        let signed = pki.run(&[
            "archive",
            "sign",
            "--key",
            &key,
            "--cert",
            "alice.pem",
            "--in",
            file,
            "--out",
            &out,
        ]);
        assert!(signed.status.success(), "{file}: {}", stderr(&signed));
        let verdict = pki.run(&[
            "archive",
            "verify",
            "--in",
            &out,
            "--trusted",
            "issuing.pem",
            "--cert",
            "alice.pem",
        ]);
        assert!(verdict.status.success(), "{file}: {}", stderr(&verdict));
        let text = stdout(&verdict);
        assert!(
            text.contains("OK       Deep/")
                && text.contains("OK       Accounting/eod.workflow.json"),
            "{file}: {text}"
        );
    }
}
