//! JS7 deployment archives: reading, signing and verifying.
//!
//! A JS7 export "for signing" is a ZIP or tar.gz archive of inventory objects (see the JS7
//! format notes, section 1). hsmsign adds a `NAME.sig` entry (Base64 of the DER signature over
//! the exact entry bytes) right after every `*.workflow.json` and `*.jobresource.json`, and
//! copies every other entry unchanged. [`verify_archive`] answers "would a JS7 Controller or
//! Agent accept these signatures?" with the rules of section 2 of the same notes.
//!
//! Archives are read as streams, one entry at a time, and never extracted: entry data in memory
//! is bounded by the largest single entry (itself bounded by [`Limits::max_entry_size`]),
//! whatever the size of the archive. What does grow is bookkeeping per entry (names, the
//! duplicate check and, for zip, the central directories of input and output): measured at about
//! 0.25 KiB per object for tar.gz and 0.9 KiB for zip (docs/benchmarks.md). Every name and entry type is checked before it is used; hostile
//! input (path traversal, links, devices, duplicate names, zip bombs, encrypted or corrupt
//! entries) is refused with an error naming the entry.
//!
//! Signing validates everything first (the whole archive, the output path, the algorithm, the
//! signer certificate) and only then asks the key for its first signature.

mod cert;
pub mod js7;
mod read;
mod sign;
mod usecase;
mod verify;
mod write;
mod zip_layout;

#[cfg(test)]
// Test helpers: a panic is the failure report.
#[allow(clippy::unwrap_used)]
mod testutil;

use std::fmt;
use std::path::PathBuf;

use crate::output::OutputError;
use crate::signer::{SignError, SignatureAlgorithm};

pub use cert::{load_trusted, load_trusted_dir, load_trusted_pem_file, read_trusted_source};
pub use sign::{
    BeforeCommit, SignOptions, SignSummary, sign_archive, sign_archive_recorded,
    sign_archive_sessions,
};
pub use usecase::{ArchiveSign, ArchiveSigned, MAX_SESSIONS, ValidArchiveSign, sign};
pub use verify::{
    ArchiveContents, ObjectCheck, ObjectOutcome, TrustedEntry, TrustedSource, VerifyOptions,
    VerifyReport, judge, read_signed_archive, signature_object, verify_archive,
};

/// Extension of JS7 workflow objects (signed).
pub const WORKFLOW_SUFFIX: &str = ".workflow.json";
/// Extension of JS7 job resource objects (signed).
pub const JOBRESOURCE_SUFFIX: &str = ".jobresource.json";
/// Suffix of an X.509 signature entry: the object's name plus `.sig`.
pub const SIG_SUFFIX: &str = ".sig";

/// The signature algorithms a JS7 Controller or Agent accepts, by their Java names.
pub const JS7_ALGORITHMS: [SignatureAlgorithm; 4] = [
    SignatureAlgorithm::EcdsaSha256,
    SignatureAlgorithm::EcdsaSha512,
    SignatureAlgorithm::RsaSha256,
    SignatureAlgorithm::RsaSha512,
];

/// True if an entry of this name is an object that JS7 requires to be signed.
pub fn is_signed_object(name: &str) -> bool {
    name.ends_with(WORKFLOW_SUFFIX) || name.ends_with(JOBRESOURCE_SUFFIX)
}

/// The two archive formats JOC Cockpit exports and imports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ArchiveFormat {
    /// ZIP (JOC Cockpit `format=ZIP`).
    Zip,
    /// gzip-compressed tar (JOC Cockpit `format=TAR_GZ`).
    TarGz,
}

impl fmt::Display for ArchiveFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Zip => "zip",
            Self::TarGz => "tar.gz",
        })
    }
}

/// Bounds on what an archive may contain. Anything beyond them is refused as hostile.
///
/// The defaults fit JS7 exports with room to spare: a large JOC inventory has some
/// thousands of objects of a few kilobytes each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most entries (files and directories, counted before any is read). Default 500,000: a
    /// signed export of 200,000 objects (each with its `.sig`) and their folders fits; the
    /// bookkeeping for that many stays under about half a gigabyte.
    pub max_entries: u64,
    /// Largest uncompressed size of one entry, counted while reading (declared sizes are not
    /// trusted). One entry is held in memory at a time. Default 64 MiB.
    pub max_entry_size: u64,
    /// Largest uncompressed size of all entries together. Default 4 GiB.
    pub max_total_size: u64,
    /// Largest ratio of uncompressed to compressed bytes, for one ZIP entry or for a whole
    /// tar.gz stream. Default 200 (JSON compresses about 5 to 20 times; deflate's ceiling is
    /// about 1,000).
    pub max_ratio: u64,
    /// Sizes up to this many uncompressed bytes are not ratio-checked: tiny, very regular
    /// files compress extremely well without being bombs. Default 1 MiB.
    pub ratio_floor: u64,
    /// Longest entry name in bytes. Default 4,096.
    pub max_name_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 500_000,
            max_entry_size: 64 << 20,
            max_total_size: 4 << 30,
            max_ratio: 200,
            ratio_floor: 1 << 20,
            max_name_len: 4096,
        }
    }
}

/// Errors of archive reading, signing and verification.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The input archive could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The audit record of a signing could not be committed, so its output was not written.
    #[error(
        "the signed archive {path} was not written: its audit record could not be committed ({reason}). Nothing was signed into place; fix the state directory (free space, permissions) and sign again"
    )]
    NotRecorded {
        /// The output that was not written.
        path: PathBuf,
        /// Why the record failed.
        reason: String,
    },
    /// The record of a signing was committed, but the output could not be moved into place.
    #[error(
        "{source}. The audit log records this signing (archive.sign), but its output was not written; sign again to a new path"
    )]
    RecordedNotWritten {
        /// The cause.
        source: OutputError,
    },
    /// Entries JOC Cockpit's import would skip or refuse (strict signing).
    #[error(
        "the archive holds what JOC Cockpit's import would skip or refuse, so it is not signed (--strict):\n  {}\nFix the export (or sign without --strict to be warned only)",
        findings.join("\n  ")
    )]
    Lint {
        /// The findings, one per entry.
        findings: Vec<String>,
    },
    /// A JS7 version (or a setting for it) that hsmsign cannot model.
    #[error("JS7 version {given}: {reason}")]
    Js7Version {
        /// What was given.
        given: String,
        /// Why it is refused.
        reason: String,
    },
    /// An input file is not a regular file, or is larger than its cap.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// The signing key could not be opened or used.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// A certificate file named by the request is not one certificate.
    #[error(transparent)]
    CertificateFile(#[from] crate::x509::CertificateFileError),
    /// The request's options do not fit together (a usage error: exit status 2).
    #[error("{0}")]
    Usage(String),
    /// The input is neither a ZIP nor a gzip file.
    #[error(
        "{path} is neither a ZIP nor a tar.gz archive (it starts with {start}); export the deployment \
         archive from JOC Cockpit as ZIP or TAR_GZ"
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// Hex of its first bytes.
        start: String,
    },
    /// The archive is truncated or damaged.
    #[error("{path} is damaged or truncated{}: {reason}; export the archive again", at_entry(.entry))]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The entry being read, if known.
        entry: Option<String>,
        /// What was wrong.
        reason: String,
    },
    /// An entry name contains a `..` component.
    #[error(
        "entry {entry:?} contains a '..' component and would escape the archive root; refusing a hostile archive"
    )]
    DotDot {
        /// The entry.
        entry: String,
    },
    /// An entry name is an absolute path.
    #[error(
        "entry {entry:?} is an absolute path; JS7 entry names are relative. Refusing a hostile archive"
    )]
    Absolute {
        /// The entry.
        entry: String,
    },
    /// An entry name starts with a Windows drive letter.
    #[error(
        "entry {entry:?} starts with a drive letter; JS7 entry names are relative. Refusing a hostile archive"
    )]
    DriveLetter {
        /// The entry.
        entry: String,
    },
    /// An entry name contains a backslash.
    #[error(
        "entry {entry:?} contains a backslash; JS7 entry names use '/' only. Refusing the archive"
    )]
    Backslash {
        /// The entry.
        entry: String,
    },
    /// An entry name is not valid UTF-8.
    #[error(
        "entry {entry:?} has a name that is not UTF-8; JS7 writes UTF-8 names. Refusing the archive"
    )]
    NotUtf8 {
        /// The name, with invalid bytes replaced.
        entry: String,
    },
    /// An entry name is malformed in another way.
    #[error("entry {entry:?} has an invalid name ({reason}); refusing the archive")]
    BadName {
        /// The entry.
        entry: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An entry is a symbolic link.
    #[error(
        "entry {entry:?} is a symbolic link; a JS7 archive holds only files and directories. Refusing a hostile archive"
    )]
    Symlink {
        /// The entry.
        entry: String,
    },
    /// An entry is a hard link.
    #[error(
        "entry {entry:?} is a hard link; a JS7 archive holds only files and directories. Refusing a hostile archive"
    )]
    HardLink {
        /// The entry.
        entry: String,
    },
    /// An entry is a device node, FIFO or socket.
    #[error(
        "entry {entry:?} is a {kind}; a JS7 archive holds only files and directories. Refusing a hostile archive"
    )]
    Device {
        /// The entry.
        entry: String,
        /// Which kind of special file.
        kind: &'static str,
    },
    /// An entry is of a type hsmsign does not handle.
    #[error(
        "entry {entry:?} has unsupported type {kind}; a JS7 archive holds only files and directories"
    )]
    UnsupportedEntryType {
        /// The entry.
        entry: String,
        /// The type.
        kind: String,
    },
    /// Different readers could list the archive differently: bytes outside every entry, ZIP
    /// local headers missing from or disagreeing with the central directory, concatenated
    /// gzip members, data after the tar end, pax or GNU headers that rename or resize entries.
    #[error(
        "{path}: {construct} (at byte {offset}{within}). Other readers (Java's ZipInputStream, \
         unzip, Python, GNU tar) could list different entries in this archive than \
         hsmsign does, so it is refused. Export the archive again from JOC Cockpit and sign or \
         verify that export unchanged"
    )]
    Ambiguous {
        /// The archive.
        path: PathBuf,
        /// What was found, in words.
        construct: String,
        /// Where: a byte offset in the file, or in the uncompressed tar stream.
        offset: u64,
        /// Empty for the file itself, or " of the uncompressed tar stream".
        within: &'static str,
    },
    /// Two entries have the same name.
    #[error(
        "entry {entry:?} appears more than once; readers would disagree on which one counts. Refusing the archive"
    )]
    Duplicate {
        /// The entry.
        entry: String,
    },
    /// The archive has more entries than allowed.
    #[error(
        "the archive has {count} entries, more than the limit of {limit}; refusing it as a possible bomb"
    )]
    TooManyEntries {
        /// Entries found (or declared).
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// An entry is larger than allowed.
    #[error(
        "entry {entry:?} is larger than the limit of {limit} bytes uncompressed; refusing it as a possible bomb"
    )]
    EntryTooLarge {
        /// The entry.
        entry: String,
        /// The limit.
        limit: u64,
    },
    /// All entries together are larger than allowed.
    #[error(
        "the archive unpacks to more than the limit of {limit} bytes (reached at entry {entry:?}); refusing it as a possible bomb"
    )]
    TotalTooLarge {
        /// The entry at which the limit was passed.
        entry: String,
        /// The limit.
        limit: u64,
    },
    /// An entry compresses far better than real data does.
    #[error(
        "entry {entry:?} expands {ratio} times, more than the limit of {limit}; refusing it as a zip bomb"
    )]
    CompressionRatio {
        /// The entry.
        entry: String,
        /// The ratio seen.
        ratio: u64,
        /// The limit.
        limit: u64,
    },
    /// A ZIP entry is encrypted.
    #[error(
        "entry {entry:?} is encrypted; JS7 archives are not encrypted. Export the archive again without a password"
    )]
    Encrypted {
        /// The entry.
        entry: String,
    },
    /// A ZIP entry uses a compression method other than stored or deflate.
    #[error(
        "entry {entry:?} uses compression method {method}; hsmsign reads stored and deflate entries as JOC Cockpit writes them"
    )]
    UnsupportedCompression {
        /// The entry.
        entry: String,
        /// The method.
        method: String,
    },
    /// An object already has a signature and replacing was not asked for.
    #[error(
        "{object:?} already has a signature {signature:?}; pass --replace-signatures to sign it afresh, or remove the .sig entry"
    )]
    SignatureExists {
        /// The object.
        object: String,
        /// Its signature entry.
        signature: String,
    },
    /// A signature entry has no object to belong to.
    #[error(
        "{signature:?} is a signature without {reason}; remove it from the archive or export the archive again"
    )]
    OrphanSignature {
        /// The signature entry.
        signature: String,
        /// What is missing.
        reason: &'static str,
    },
    /// A signature algorithm JS7 does not accept was asked for.
    #[error("JS7 does not accept signature algorithm {alg}; use one of {accepted}")]
    UnsupportedAlgorithm {
        /// The algorithm asked for.
        alg: SignatureAlgorithm,
        /// The accepted ones.
        accepted: String,
    },
    /// The algorithm does not fit the key.
    #[error(
        "signature algorithm {alg} does not fit the key ({key}); use {suggest} or leave the algorithm out"
    )]
    AlgorithmMismatch {
        /// The algorithm asked for.
        alg: SignatureAlgorithm,
        /// The key kind.
        key: String,
        /// What would fit.
        suggest: SignatureAlgorithm,
    },
    /// A certificate could not be parsed or used.
    #[error("certificate {which}: {reason}")]
    Certificate {
        /// Which certificate (file name or role).
        which: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The signer certificate does not certify the signing key.
    #[error(
        "the signer certificate ({subject}) holds public key {cert_key}, but the signing key is {key_key}; \
         give the certificate that was issued for this key"
    )]
    CertificateKeyMismatch {
        /// The certificate's subject.
        subject: String,
        /// SHA-256 fingerprint of the certificate's SPKI.
        cert_key: String,
        /// SHA-256 fingerprint of the key's SPKI.
        key_key: String,
    },
    /// The signer certificate is a CA certificate.
    #[error(
        "the signer certificate ({subject}) is a CA certificate (BasicConstraints cA=true); sign with a signing certificate issued by the CA instead"
    )]
    CaCertificate {
        /// The certificate's subject.
        subject: String,
    },
    /// The signer certificate is not trusted by the given trusted certificates.
    #[error(
        "the signer certificate ({subject}, issued by {issuer}) is not trusted: {reason}. Trusted: {trusted}"
    )]
    UntrustedSigner {
        /// The signer's subject.
        subject: String,
        /// The signer's issuer.
        issuer: String,
        /// Why not.
        reason: String,
        /// Subjects of the trusted certificates.
        trusted: String,
    },
    /// A trusted-certificate file is unusable.
    #[error("trusted certificate file {path}: {reason}")]
    TrustedFile {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The input changed between the checking pass and the signing pass.
    #[error(
        "{path} changed while it was being signed (entry {entry:?}); nothing was written. Sign a file that no other process writes"
    )]
    InputChanged {
        /// The file.
        path: PathBuf,
        /// The entry where the difference showed.
        entry: String,
    },
    /// The key failed to sign an entry.
    #[error("signing {entry:?} failed: {source}")]
    Signing {
        /// The entry.
        entry: String,
        /// The cause.
        source: SignError,
    },
    /// The output could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
}

fn at_entry(entry: &Option<String>) -> String {
    match entry {
        Some(e) => format!(" at entry {e:?}"),
        None => String::new(),
    }
}

/// The accepted algorithm names, for messages.
fn accepted_names() -> String {
    JS7_ALGORITHMS
        .iter()
        .map(|a| a.java_name())
        .collect::<Vec<_>>()
        .join(", ")
}
