//! Test helpers: sample archives built with the zip and tar crates directly, certificates made
//! with the `openssl` command line, and extraction for checks by other implementations.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::signer::soft::SoftKey;

/// Entries of a small JS7 export: (name, content); names ending in '/' are directories.
pub(super) fn sample_entries() -> Vec<(String, Vec<u8>)> {
    let e = |n: &str, d: &str| (n.to_owned(), d.as_bytes().to_vec());
    vec![
        e(
            "meta_inf",
            r#"{"jocVersion":"2.7.2","inventorySchemaVersion":"1.0.0","apiVersion":"1.0.0","versionId":"6f1c"}"#,
        ),
        e("Accounting/", ""),
        e(
            "Accounting/Daily/eod.workflow.json",
            "{\n  \"TYPE\" : \"Workflow\",\n  \"instructions\" : [ ]\n}\n",
        ),
        e(
            "Accounting/env.jobresource.json",
            r#"{"TYPE":"JobResource","env":{"A":"1"}}"#,
        ),
        e("Accounting/one.lock.json", r#"{"TYPE":"Lock","limit":1}"#),
        e("board.noticeboard.json", r#"{"TYPE":"NoticeBoard"}"#),
        e("z.workflow.json", "{ \"TYPE\": \"Workflow\" }\r\n"),
    ]
}

/// Write a ZIP with the zip crate (seekable writer, deflate).
pub(super) fn write_zip(path: &Path, entries: &[(String, Vec<u8>)]) {
    let file = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        if name.ends_with('/') {
            z.add_directory(name.as_str(), opts).unwrap();
        } else {
            z.start_file(name.as_str(), opts).unwrap();
            z.write_all(data).unwrap();
        }
    }
    z.finish().unwrap();
}

/// A tar header for `name` of the given type, with the name bytes written raw (so hostile
/// names are possible) and the checksum set.
pub(super) fn raw_tar_header(name: &[u8], kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime(1_700_000_000);
    let field = &mut h.as_old_mut().name;
    field[..name.len()].copy_from_slice(name);
    h.set_cksum();
    h
}

/// Write a tar.gz of entries given as raw headers and data.
pub(super) fn write_tar_gz_raw(path: &Path, entries: &[(tar::Header, Vec<u8>)]) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (h, data) in entries {
        b.append(h, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

/// Write a tar.gz of files and directories (names through the tar crate's own path setter).
pub(super) fn write_tar_gz(path: &Path, entries: &[(String, Vec<u8>)]) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (name, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_700_000_000);
        if name.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
        }
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

/// All entries of an archive, read with the zip / tar crates directly (not our reader):
/// (name, is_dir, content).
pub(super) fn list_with_crates(path: &Path) -> Vec<(String, bool, Vec<u8>)> {
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .unwrap()
        .read_exact(&mut magic)
        .unwrap();
    let mut out = Vec::new();
    if magic == *b"PK" {
        let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
        for i in 0..z.len() {
            let mut f = z.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            out.push((f.name().unwrap().into_owned(), f.is_dir(), data));
        }
    } else {
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
        let mut t = tar::Archive::new(gz);
        for e in t.entries().unwrap() {
            let mut e = e.unwrap();
            let is_dir = e.header().entry_type() == tar::EntryType::Directory;
            let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.push((name, is_dir, data));
        }
    }
    out
}

/// Run openssl in `dir`, asserting success; returns stdout.
pub(super) fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The SoftKey's private key as a PKCS#8 PEM file, so that openssl can make its certificates.
pub(super) fn soft_key_pem(dir: &Path, seed: u8, file: &str) -> PathBuf {
    use p256::pkcs8::EncodePrivateKey;
    let sk = p256::SecretKey::from_slice(&[seed.max(1); 32]).unwrap();
    let pem = sk.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, pem.as_bytes()).unwrap();
    path
}

/// A self-signed certificate for the key in `key_file` with the given extensions.
pub(super) fn self_signed(dir: &Path, key_file: &str, cn: &str, ext: &str, out: &str) -> Vec<u8> {
    let cnf = format!(
        "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n[dn]\nCN = {cn}\n[ext]\n{ext}\n"
    );
    let cnf_file = format!("{out}.cnf");
    std::fs::write(dir.join(&cnf_file), cnf).unwrap();
    openssl(
        dir,
        &[
            "req", "-x509", "-new", "-key", key_file, "-config", &cnf_file, "-days", "30", "-out",
            out,
        ],
    );
    pem_to_der(dir, out)
}

/// A certificate for the key in `key_file`, issued by `ca` (file stem: `ca.pem`, `ca.key`).
pub(super) fn issued(
    dir: &Path,
    key_file: &str,
    cn: &str,
    ext: &str,
    ca: &str,
    out: &str,
) -> Vec<u8> {
    let csr = format!("{out}.csr");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            key_file,
            "-subj",
            &format!("/CN={cn}"),
            "-out",
            &csr,
        ],
    );
    let ext_file = format!("{out}.ext");
    std::fs::write(dir.join(&ext_file), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            "7",
            "-days",
            "30",
            "-extfile",
            &ext_file,
            "-out",
            out,
        ],
    );
    pem_to_der(dir, out)
}

/// A fresh P-256 key made by openssl.
pub(super) fn new_key(dir: &Path, file: &str) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            file,
        ],
    );
}

fn pem_to_der(dir: &Path, pem: &str) -> Vec<u8> {
    let der = format!("{pem}.der");
    openssl(dir, &["x509", "-in", pem, "-outform", "DER", "-out", &der]);
    std::fs::read(dir.join(der)).unwrap()
}

/// Extensions of a CA certificate.
pub(super) const CA_EXT: &str =
    "basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n";
/// Extensions of a signing certificate.
pub(super) const SIGNER_EXT: &str =
    "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n";

/// A small PKI: root CA -> intermediate CA -> signing certificate for `SoftKey::p256(seed)`.
pub(super) struct Pki {
    /// Where the files are.
    pub dir: tempfile::TempDir,
    /// Root CA certificate (DER).
    pub root: Vec<u8>,
    /// Intermediate CA certificate (DER).
    pub intermediate: Vec<u8>,
    /// Signer certificate issued by the intermediate (DER).
    pub signer: Vec<u8>,
    /// Self-signed certificate of the same key (DER).
    pub self_signed: Vec<u8>,
    /// The signing key.
    pub key: SoftKey,
}

impl Pki {
    /// Make the PKI for `SoftKey::p256(seed)`.
    pub(super) fn new(seed: u8) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        new_key(d, "root.key");
        let root = self_signed(d, "root.key", "Test Root CA", CA_EXT, "root.pem");
        new_key(d, "inter.key");
        let intermediate = issued(
            d,
            "inter.key",
            "Test Intermediate CA",
            CA_EXT,
            "root",
            "inter.pem",
        );
        soft_key_pem(d, seed, "soft.key");
        let signer = issued(
            d,
            "soft.key",
            "Test Signer",
            SIGNER_EXT,
            "inter",
            "signer.pem",
        );
        let self_signed = self_signed(d, "soft.key", "Self Signer", SIGNER_EXT, "self.pem");
        Self {
            dir,
            root,
            intermediate,
            signer,
            self_signed,
            key: SoftKey::p256(seed),
        }
    }
}

/// A certificate for the key in `key_file` valid exactly from `start` to `end`
/// (`YYMMDDHHMMSSZ`), issued by `ca` (file stem), or self-signed when `ca` is `None`: made with
/// `openssl ca`, which takes explicit dates (so expired certificates can be tested).
#[allow(clippy::too_many_arguments)] // a test helper mirroring openssl's own options
pub(super) fn dated(
    dir: &Path,
    key_file: &str,
    cn: &str,
    ext: &str,
    ca: Option<&str>,
    start: &str,
    end: &str,
    out: &str,
) -> Vec<u8> {
    let db = dir.join(format!("{out}.db"));
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("index.txt"), b"").unwrap();
    std::fs::write(db.join("serial"), b"1000\n").unwrap();
    let cnf = format!(
        "[ca]\ndefault_ca = c\n[c]\ndatabase = {d}/index.txt\nnew_certs_dir = {d}\nserial = {d}/serial\n\
         default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n",
        d = db.display()
    );
    std::fs::write(dir.join(format!("{out}.ca.cnf")), cnf).unwrap();
    std::fs::write(dir.join(format!("{out}.ext")), ext).unwrap();
    let csr = format!("{out}.csr");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            key_file,
            "-subj",
            &format!("/CN={cn}"),
            "-out",
            &csr,
        ],
    );
    let cnf_file = format!("{out}.ca.cnf");
    let ext_file = format!("{out}.ext");
    let mut args = vec![
        "ca",
        "-batch",
        "-notext",
        "-config",
        &cnf_file,
        "-in",
        &csr,
        "-out",
        out,
        "-startdate",
        start,
        "-enddate",
        end,
        "-extfile",
        &ext_file,
    ];
    let (cert, key);
    match ca {
        Some(ca) => {
            cert = format!("{ca}.pem");
            key = format!("{ca}.key");
            args.extend(["-cert", &cert, "-keyfile", &key]);
        }
        None => args.extend(["-selfsign", "-keyfile", key_file]),
    }
    openssl(dir, &args);
    pem_to_der(dir, out)
}
