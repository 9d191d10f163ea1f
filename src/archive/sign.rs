//! Signing a deployment archive: every `*.workflow.json` and `*.jobresource.json` gets a
//! `NAME.sig` entry right after it.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine;
use sha2::Digest;

use super::cert::Cert;
use super::read::{Entry, read_archive};
use super::write::ArchiveWriter;
use super::{
    ArchiveError, ArchiveFormat, JS7_ALGORITHMS, Limits, SIG_SUFFIX, accepted_names,
    is_signed_object,
};
use crate::output;
use crate::signer::{self, SignatureAlgorithm, SigningKey, WorkerSigner};

/// How to sign.
#[derive(Clone, Debug, Default)]
pub struct SignOptions {
    /// The algorithm; `None` picks SHA256withECDSA for EC keys and SHA256withRSA for RSA keys.
    /// Only the algorithms JS7 accepts ([`super::JS7_ALGORITHMS`]) are allowed.
    pub algorithm: Option<SignatureAlgorithm>,
    /// Drop existing `.sig` entries of the objects and sign them afresh (otherwise an
    /// existing signature is an error).
    pub replace_signatures: bool,
    /// Bounds on the input archive.
    pub limits: Limits,
    /// Refuse (instead of warning about) entries JOC Cockpit's import would skip or refuse
    /// (see [`super::js7::lint_entry`]).
    pub strict: bool,
}

/// What [`sign_archive`] did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SignSummary {
    /// Number of objects signed (= `.sig` entries written).
    pub objects_signed: usize,
    /// Number of existing `.sig` entries that were dropped and replaced.
    pub signatures_replaced: usize,
    /// Entries in the input archive.
    pub entries: usize,
    /// Java name of the algorithm used (what the operator selects when importing into JOC).
    pub algorithm: String,
    /// Subject DN of the signer certificate.
    pub signer_subject: String,
    /// SHA-256 of the DER signer certificate, lower-case hex.
    pub signer_cert_sha256: String,
    /// SHA-256 of the input file, lower-case hex.
    pub input_sha256: String,
    /// SHA-256 of the output file, lower-case hex.
    pub output_sha256: String,
    /// Format of input and output.
    pub format: ArchiveFormat,
    /// Things the operator should know that did not stop the signing (certificate expired,
    /// no digitalSignature key usage).
    pub warnings: Vec<String>,
}

/// Entries queued between the signing thread and the writing thread.
const WRITE_QUEUE: usize = 8;

/// What the reading thread hands the writing thread.
#[allow(clippy::large_enum_variant)] // at most a few per worker exist at once
enum Job {
    /// One entry, with its signature entry's name and signature when it is a signed object.
    Entry {
        entry: Entry,
        data: Arc<[u8]>,
        signature: Option<(String, Pending)>,
    },
    /// Everything was read and signed: commit the output.
    Finish,
}

/// A signature on its way to the writer.
enum Pending {
    /// The device's signature, made on the reading thread and verified on the writing thread
    /// before it is written (while the device signs the next object).
    Unchecked(signer::Unchecked),
    /// Made and verified by a worker on its own session (see [`work`]). No answer (or `Err`)
    /// means the batch stopped: the first failure is in the shared [`Failure`].
    Worker(Receiver<Result<Vec<u8>, ()>>),
}

/// The first failure of a batch with workers, kept for the writer to report: the object whose
/// signature the writer misses first in the input's order is not always the one that failed
/// (another worker may have dropped it when it saw the batch stop).
type Failure = Mutex<Option<ArchiveError>>;

/// One object for a worker.
struct Work {
    entry: String,
    data: Arc<[u8]>,
    reply: SyncSender<Result<Vec<u8>, ()>>,
}

/// A worker: takes the next object, signs it with its own key (its own token session), checks
/// the signature ([`signer::sign`]) and answers. Its failure goes to `failure` (the first one
/// wins) before `stop` is set; after a stop (its own or another thread's) it takes no more work
/// and drops what it holds unanswered, and the writer then reports the failure.
fn work(
    key: &(dyn SigningKey + Send + '_),
    alg: SignatureAlgorithm,
    jobs: &Mutex<Receiver<Work>>,
    stop: &AtomicBool,
    failure: &Failure,
) {
    loop {
        let next = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = next else { return };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let result = match signer::sign(key, alg, &job.data) {
            Ok(sig) => Ok(sig),
            Err(source) => {
                if let Ok(mut first) = failure.lock() {
                    first.get_or_insert(ArchiveError::Signing {
                        entry: job.entry,
                        source,
                    });
                }
                stop.store(true, Ordering::SeqCst);
                Err(())
            }
        };
        // The writer may have stopped already; its error is the one reported.
        let _ = job.reply.send(result);
        if stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// The writing thread: every entry in the input's order, each signature checked before it is
/// written. `Ok(None)` when the queue closed without a finish (the reading side failed):
/// dropping the writer removes the temporary file, and nothing appears at the output path.
fn write_entries(
    mut writer: ArchiveWriter,
    rx: Receiver<Job>,
    written_sigs: &AtomicUsize,
    failure: &Failure,
) -> Result<Option<(output::AtomicFile, String)>, ArchiveError> {
    for job in rx {
        match job {
            Job::Entry {
                entry,
                data,
                signature,
            } => {
                writer.add(&entry, &data)?;
                if let Some((name, pending)) = signature {
                    let sig = match pending {
                        Pending::Unchecked(unchecked) => {
                            unchecked
                                .check(&data)
                                .map_err(|source| ArchiveError::Signing {
                                    entry: entry.name.clone(),
                                    source,
                                })?
                        }
                        Pending::Worker(answer) => match answer.recv() {
                            Ok(Ok(sig)) => sig,
                            // The batch stopped: report the failure that stopped it.
                            Ok(Err(())) | Err(_) => {
                                let first = failure.lock().ok().and_then(|mut f| f.take());
                                return Err(first.unwrap_or_else(|| ArchiveError::Signing {
                                    entry: entry.name.clone(),
                                    source: signer::SignError::Device {
                                        key: "a signing session".into(),
                                        reason: "the batch stopped before this object was signed"
                                            .into(),
                                    },
                                }));
                            }
                        },
                    };
                    let text = base64::engine::general_purpose::STANDARD.encode(&sig);
                    writer.add_signature(&entry, &name, text.as_bytes())?;
                    written_sigs.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Only an explicit finish commits the output.
            Job::Finish => return writer.finish().map(Some),
        }
    }
    Ok(None)
}

/// The name of the signature entry of `object`.
fn sig_name(object: &str) -> String {
    format!("{object}{SIG_SUFFIX}")
}

/// Sign the JS7 archive `input` into `output` (same format) with `key`, whose certificate is
/// `signer_cert_der`. `progress(done, total)` is called after each signature.
///
/// Everything is validated before the first signature: the whole archive (names, types,
/// limits, `.sig` consistency), the output path, the algorithm, and the certificate. The
/// output appears only when complete.
pub fn sign_archive(
    input: &Path,
    output: &Path,
    force: bool,
    key: &dyn SigningKey,
    signer_cert_der: &[u8],
    options: &SignOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SignSummary, ArchiveError> {
    sign_archive_recorded(
        input,
        output,
        force,
        key,
        signer_cert_der,
        options,
        progress,
        &mut |_| Ok(()),
    )
}

/// Called once the signed archive is complete and on disk under a temporary name, before it is
/// moved into place: the caller commits the audit record of the signing here. An error keeps
/// the output from appearing, so no signed archive exists that the record does not show.
pub type BeforeCommit<'a> = dyn FnMut(&SignSummary) -> Result<(), String> + 'a;

/// [`sign_archive`], with the record of the signing committed before the output appears.
#[allow(clippy::too_many_arguments)] // the arguments of sign_archive plus the record hook
pub fn sign_archive_recorded(
    input: &Path,
    output: &Path,
    force: bool,
    key: &dyn SigningKey,
    signer_cert_der: &[u8],
    options: &SignOptions,
    progress: &mut dyn FnMut(usize, usize),
    before_commit: &mut BeforeCommit<'_>,
) -> Result<SignSummary, ArchiveError> {
    sign_archive_sessions(
        input,
        output,
        force,
        key,
        Vec::new(),
        signer_cert_der,
        options,
        progress,
        before_commit,
    )
}

/// [`sign_archive_recorded`] with parallel signing sessions: each of `workers` (the same key
/// as `key`, each on its own token session) signs on a thread of its own and checks every
/// signature it makes; the output keeps the input's order. With no workers, `key` signs every
/// object. `key` is used for the checks before signing in either case. A worker's failure stops
/// the batch: the error names the object, and no output appears.
#[allow(clippy::too_many_arguments)] // sign_archive_recorded's arguments plus the workers
pub fn sign_archive_sessions(
    input: &Path,
    output: &Path,
    force: bool,
    key: &dyn SigningKey,
    workers: Vec<WorkerSigner<'_>>,
    signer_cert_der: &[u8],
    options: &SignOptions,
    progress: &mut dyn FnMut(usize, usize),
    before_commit: &mut BeforeCommit<'_>,
) -> Result<SignSummary, ArchiveError> {
    for w in &workers {
        if w.public_key() != key.public_key() {
            return Err(ArchiveError::Signing {
                entry: "(before the first object)".into(),
                source: signer::SignError::Device {
                    key: w.name(),
                    reason: format!("a signing session holds another key than {}", key.name()),
                },
            });
        }
    }
    // 1. The archive: list it with every hostile-input check, and check its signatures.
    let mut names: Vec<(String, bool)> = Vec::new();
    let mut lint = Vec::new();
    let mut meta_inf = None;
    let format = read_archive(input, &options.limits, &mut |e: &Entry, data| {
        names.push((e.name.clone(), e.is_dir));
        if !e.is_dir {
            if e.name == "meta_inf" {
                meta_inf = Some(data.to_vec());
            }
            lint.extend(super::js7::lint_entry(&e.name, data));
        }
        Ok(())
    })?;
    lint.splice(0..0, super::js7::lint_meta_inf(meta_inf.as_deref()));
    if options.strict && !lint.is_empty() {
        return Err(ArchiveError::Lint { findings: lint });
    }
    let objects: HashSet<&str> = names
        .iter()
        .filter(|(n, dir)| !dir && is_signed_object(n))
        .map(|(n, _)| n.as_str())
        .collect();
    let mut replaced = 0;
    for (name, dir) in &names {
        let Some(base) = super::signature_object(name).filter(|_| !dir) else {
            continue;
        };
        if objects.contains(base) {
            if !options.replace_signatures {
                return Err(ArchiveError::SignatureExists {
                    object: base.to_owned(),
                    signature: name.clone(),
                });
            }
            replaced += 1;
        } else if is_signed_object(base) {
            return Err(ArchiveError::OrphanSignature {
                signature: name.clone(),
                reason: "its object in the archive",
            });
        } else {
            return Err(ArchiveError::OrphanSignature {
                signature: name.clone(),
                reason: "an object JS7 signs (only .workflow.json and .jobresource.json are signed)",
            });
        }
    }
    let total = objects.len();

    // 2. The output path.
    output::check_new(output, force)?;

    // 3. The algorithm.
    let key_alg = key.public_key().algorithm();
    let alg = match options.algorithm {
        None if key_alg.is_ec() => SignatureAlgorithm::EcdsaSha256,
        None => SignatureAlgorithm::RsaSha256,
        Some(a) if !JS7_ALGORITHMS.contains(&a) => {
            return Err(ArchiveError::UnsupportedAlgorithm {
                alg: a,
                accepted: accepted_names(),
            });
        }
        Some(a) if !a.fits(key_alg) => {
            return Err(ArchiveError::AlgorithmMismatch {
                alg: a,
                key: key_alg.to_string(),
                suggest: if key_alg.is_ec() {
                    SignatureAlgorithm::EcdsaSha256
                } else {
                    SignatureAlgorithm::RsaSha256
                },
            });
        }
        Some(a) => a,
    };

    // 4. The signer certificate.
    let cert = Cert::parse(signer_cert_der, "of the signer")?;
    let mut warnings = check_signer_cert(&cert, key)?;
    warnings.extend(lint.into_iter().map(|l| {
        format!("JOC Cockpit would skip or refuse: {l} (--strict refuses to sign such an archive)")
    }));

    let input_sha256 = sha256_file(input)?;

    // Only now: sign, streaming the archive a second time. Deflating and writing the output run
    // on a writer thread fed through a short queue, so the token and the compressor work at the
    // same time. With one session, signing stays on this thread (the session is not shared) and
    // each signature is checked on the writer thread while the token signs the next object.
    // With worker sessions, this thread reads and hands each object to the next free worker,
    // which signs it on its own session and checks the signature; the writer takes the entries
    // in the input's order and waits for each one's signature. The queues hold a few entries per
    // worker: memory stays bounded by the largest entry times a small constant.
    let n_workers = workers.len();
    let writer = ArchiveWriter::create(output, force, format)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(WRITE_QUEUE.max(4 * n_workers));
    // Set by whichever thread fails first: the others stop taking work.
    let stop = Arc::new(AtomicBool::new(false));
    let failure: Arc<Failure> = Arc::new(Mutex::new(None));
    let written_sigs = Arc::new(AtomicUsize::new(0));
    let write_thread = {
        let stop = Arc::clone(&stop);
        let failure = Arc::clone(&failure);
        let written_sigs = Arc::clone(&written_sigs);
        std::thread::spawn(move || {
            let result = write_entries(writer, rx, &written_sigs, &failure);
            if result.is_err() {
                stop.store(true, Ordering::SeqCst);
            }
            result
        })
    };
    let mut done = 0;
    let mut index = 0;
    let read_result = std::thread::scope(|scope| {
        // The workers' queue: a worker takes the next object when it is free.
        let jobs = if n_workers > 0 {
            let (job_tx, job_rx) = std::sync::mpsc::sync_channel::<Work>(2 * n_workers);
            let job_rx = Arc::new(Mutex::new(job_rx));
            for key in workers {
                let job_rx = Arc::clone(&job_rx);
                let stop = &*stop;
                let failure = &*failure;
                scope.spawn(move || work(key.as_ref(), alg, &job_rx, stop, failure));
            }
            Some(job_tx)
        } else {
            None
        };
        let stopped = || ArchiveError::InputChanged {
            path: input.to_path_buf(),
            entry: "(the output writer or a signing session stopped)".into(),
        };
        let mut reported = 0;
        let result = read_archive(input, &options.limits, &mut |e: &Entry, data: &[u8]| {
            // The file must be the one checked in step 1.
            match names.get(index) {
                Some((n, d)) if *n == e.name && *d == e.is_dir => {}
                _ => {
                    return Err(ArchiveError::InputChanged {
                        path: input.to_path_buf(),
                        entry: e.name.clone(),
                    });
                }
            }
            index += 1;
            if stop.load(Ordering::SeqCst) {
                return Err(stopped());
            }
            if !e.is_dir
                && let Some(base) = super::signature_object(&e.name)
                && objects.contains(base)
            {
                // An old signature (only reachable with replace_signatures): dropped.
                return Ok(());
            }
            let data: Arc<[u8]> = Arc::from(data);
            let mut signature = None;
            if !e.is_dir && is_signed_object(&e.name) {
                let pending = match &jobs {
                    Some(jobs) => {
                        let (reply, answer) = std::sync::mpsc::sync_channel(1);
                        jobs.send(Work {
                            entry: e.name.clone(),
                            data: Arc::clone(&data),
                            reply,
                        })
                        .map_err(|_| stopped())?;
                        Pending::Worker(answer)
                    }
                    None => Pending::Unchecked(signer::sign_unchecked(key, alg, &data).map_err(
                        |source| ArchiveError::Signing {
                            entry: e.name.clone(),
                            source,
                        },
                    )?),
                };
                signature = Some((sig_name(&e.name), pending));
                done += 1;
            }
            // A closed queue means the writer stopped on an error: it is reported below.
            if tx
                .send(Job::Entry {
                    entry: e.clone(),
                    data,
                    signature,
                })
                .is_err()
            {
                return Err(stopped());
            }
            // With workers, progress counts the signatures written; alone, those made.
            let now = if jobs.is_some() {
                written_sigs.load(Ordering::Relaxed)
            } else {
                done
            };
            if now != reported {
                reported = now;
                progress(now, total);
            }
            Ok(())
        });
        // Closing the queue lets the workers finish what they hold and stop.
        drop(jobs);
        result
    });
    let complete = match read_result {
        Ok(_) if index == names.len() => Ok(()),
        Ok(_) => Err(ArchiveError::InputChanged {
            path: input.to_path_buf(),
            entry: "(entries missing at the end)".into(),
        }),
        Err(e) => Err(e),
    };
    if complete.is_ok() {
        // If the writer already stopped, its error is collected just below.
        let _ = tx.send(Job::Finish);
    }
    drop(tx);
    let writer_failed = |what: &str| {
        ArchiveError::Output(output::OutputError::Io {
            path: output.to_path_buf(),
            source: std::io::Error::other(what.to_string()),
        })
    };
    let written = write_thread
        .join()
        .unwrap_or_else(|_| Err(writer_failed("the output writer stopped unexpectedly")));
    // The writer's own error explains a stopped queue better than the reader's.
    let (file, output_sha256) = match (complete, written) {
        (_, Err(w)) => return Err(w),
        (Err(r), Ok(_)) => return Err(r),
        (Ok(()), Ok(Some(done))) => done,
        (Ok(()), Ok(None)) => return Err(writer_failed("the output writer stopped early")),
    };
    if n_workers > 0 {
        progress(done, total);
    }
    let summary = SignSummary {
        objects_signed: done,
        signatures_replaced: replaced,
        entries: names.len(),
        algorithm: alg.java_name().to_owned(),
        signer_subject: cert.subject.clone(),
        signer_cert_sha256: cert.fingerprint(),
        input_sha256,
        output_sha256,
        format,
        warnings,
    };
    // The record first, then the output: a failed record leaves no signed archive behind
    // (dropping the file removes it), and a failed move leaves the record of an archive that
    // the error says was not written.
    before_commit(&summary).map_err(|reason| ArchiveError::NotRecorded {
        path: output.to_path_buf(),
        reason,
    })?;
    file.commit()
        .map_err(|source| ArchiveError::RecordedNotWritten { source })?;
    Ok(summary)
}

/// Refuse a certificate that does not certify `key` or is a CA; return warnings for what JS7
/// tolerates by default (validity dates, key usage).
fn check_signer_cert(cert: &Cert, key: &dyn SigningKey) -> Result<Vec<String>, ArchiveError> {
    let key_spki = key.public_key().spki_der();
    if cert.spki_der() != key_spki {
        let fp = |der: &[u8]| crate::encoding::hex(&sha2::Sha256::digest(der));
        return Err(ArchiveError::CertificateKeyMismatch {
            subject: cert.subject.clone(),
            cert_key: fp(&cert.spki_der()),
            key_key: fp(key_spki),
        });
    }
    cert.check_signing_role()?;
    let mut warnings = Vec::new();
    if let Some(p) = cert.validity_problem(SystemTime::now()) {
        warnings.push(format!(
            "the signer {p}; Controllers and Agents with allow-expired-certificates = no will refuse these signatures"
        ));
    }
    if cert.digital_signature_allowed() == Some(false) {
        warnings.push(format!(
            "the signer certificate {} has a keyUsage extension without digitalSignature; \
             JS7 does not check it, but other verifiers will refuse it",
            cert.subject
        ));
    }
    Ok(warnings)
}

fn sha256_file(path: &Path) -> Result<String, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = crate::input::open(path, crate::input::InputKind::Archive)?;
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = file.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(crate::encoding::hex(&hash.finalize()))
}

#[cfg(test)]
// In tests a panic is the failure report.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::archive::testutil::*;
    use std::path::PathBuf;

    fn input(dir: &Path, zip: bool, entries: &[(String, Vec<u8>)]) -> PathBuf {
        let p = dir.join(if zip { "export.zip" } else { "export.tar.gz" });
        if zip {
            write_zip(&p, entries);
        } else {
            write_tar_gz(&p, entries);
        }
        p
    }

    /// Check every `.sig` of `archive` with `openssl dgst` over the object bytes, and that
    /// every other entry is the input's, in order, with each `.sig` right after its object.
    fn check_with_openssl(
        archive: &Path,
        key: &dyn SigningKey,
        digest: &str,
        expected: &[(String, Vec<u8>)],
    ) -> usize {
        let work = tempfile::tempdir().unwrap();
        let w = work.path();
        std::fs::write(w.join("pub.pem"), key.public_key().to_pem()).unwrap();
        let out = list_with_crates(archive);
        let mut i = 0;
        let mut checked = 0;
        for (name, data) in expected {
            let (oname, _, odata) = &out[i];
            assert_eq!(oname.trim_end_matches('/'), name.trim_end_matches('/'));
            assert_eq!(odata, data, "{name} copied unchanged");
            i += 1;
            if is_signed_object(name) {
                let (sname, _, sdata) = &out[i];
                assert_eq!(*sname, format!("{name}.sig"));
                let sig = base64::engine::general_purpose::STANDARD
                    .decode(sdata)
                    .unwrap();
                std::fs::write(w.join("obj"), data).unwrap();
                std::fs::write(w.join("sig.bin"), sig).unwrap();
                let v = openssl(
                    w,
                    &[
                        "dgst",
                        digest,
                        "-verify",
                        "pub.pem",
                        "-signature",
                        "sig.bin",
                        "obj",
                    ],
                );
                assert!(v.contains("Verified OK"), "{name}: {v}");
                checked += 1;
                i += 1;
            }
        }
        assert_eq!(i, out.len(), "no extra entries");
        checked
    }

    #[test]
    fn no_output_appears_before_its_record() {
        let pki = Pki::new(19);
        let d = tempfile::tempdir().unwrap();
        for zip in [true, false] {
            let inp = input(d.path(), zip, &sample_entries());
            let out = d.path().join(format!("signed-{zip}"));
            // The record fails (a full disk under the state directory): no output, no temp file.
            let mut seen = None;
            let err = sign_archive_recorded(
                &inp,
                &out,
                false,
                &pki.key,
                &pki.signer,
                &SignOptions::default(),
                &mut |_, _| {},
                &mut |summary| {
                    // The complete output exists only under a temporary name at this point.
                    assert!(!out.exists());
                    seen = Some(summary.output_sha256.clone());
                    Err("database or disk is full".into())
                },
            )
            .unwrap_err();
            assert!(seen.is_some());
            assert!(matches!(err, ArchiveError::NotRecorded { .. }), "{err}");
            assert!(err.to_string().contains("disk is full"), "{err}");
            assert!(!out.exists());
            let names: Vec<_> = std::fs::read_dir(d.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(!names.iter().any(|n| n.contains("hsmsign-")), "{names:?}");
            // The record succeeds: the output that appears is the one the record names.
            let mut recorded = None;
            let summary = sign_archive_recorded(
                &inp,
                &out,
                false,
                &pki.key,
                &pki.signer,
                &SignOptions::default(),
                &mut |_, _| {},
                &mut |summary| {
                    recorded = Some(summary.output_sha256.clone());
                    Ok(())
                },
            )
            .unwrap();
            let on_disk = crate::encoding::hex(&sha2::Sha256::digest(std::fs::read(&out).unwrap()));
            assert_eq!(recorded.as_deref(), Some(on_disk.as_str()));
            assert_eq!(summary.output_sha256, on_disk);
        }
    }

    fn sign_ok(zip: bool) {
        let pki = Pki::new(11);
        let d = tempfile::tempdir().unwrap();
        let inp = input(d.path(), zip, &sample_entries());
        let out = d.path().join("signed");
        let mut calls = Vec::new();
        let summary = sign_archive(
            &inp,
            &out,
            false,
            &pki.key,
            &pki.signer,
            &SignOptions::default(),
            &mut |done, total| calls.push((done, total)),
        )
        .unwrap();
        assert_eq!(calls, vec![(1, 3), (2, 3), (3, 3)]);
        assert_eq!(summary.objects_signed, 3);
        assert_eq!(summary.entries, sample_entries().len());
        assert_eq!(summary.algorithm, "SHA256withECDSA");
        assert_eq!(summary.signer_subject, "CN=Test Signer");
        assert_eq!(
            summary.format,
            if zip {
                ArchiveFormat::Zip
            } else {
                ArchiveFormat::TarGz
            }
        );
        assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
        // Hashes as openssl computes them.
        let sha = |p: &Path| {
            let o = openssl(d.path(), &["dgst", "-sha256", "-r", p.to_str().unwrap()]);
            o.split_whitespace().next().unwrap().to_owned()
        };
        assert_eq!(summary.input_sha256, sha(&inp));
        assert_eq!(summary.output_sha256, sha(&out));
        let cert_fp = {
            std::fs::write(d.path().join("c.der"), &pki.signer).unwrap();
            sha(&d.path().join("c.der"))
        };
        assert_eq!(summary.signer_cert_sha256, cert_fp);
        assert_eq!(detect_format(&out), summary.format);
        assert_eq!(
            check_with_openssl(&out, &pki.key, "-sha256", &sample_entries()),
            3
        );
        // The same archive again is refused: it is signed already.
        let err = sign_archive(
            &out,
            &d.path().join("again"),
            false,
            &pki.key,
            &pki.signer,
            &SignOptions::default(),
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(matches!(err, ArchiveError::SignatureExists { .. }), "{err}");
    }

    fn detect_format(p: &Path) -> ArchiveFormat {
        super::super::read::detect(p).unwrap()
    }

    #[test]
    fn signs_zip_and_openssl_verifies_every_signature() {
        sign_ok(true);
    }

    #[test]
    fn signs_tar_gz_and_openssl_verifies_every_signature() {
        sign_ok(false);
    }

    #[test]
    fn replace_signatures_drops_the_old_ones() {
        let pki = Pki::new(12);
        let d = tempfile::tempdir().unwrap();
        let mut entries = sample_entries();
        // A stale signature before its object, which must vanish.
        entries.insert(
            2,
            (
                "Accounting/Daily/eod.workflow.json.sig".into(),
                b"c3RhbGU=".to_vec(),
            ),
        );
        let inp = input(d.path(), true, &entries);
        let out = d.path().join("signed.zip");
        let err = sign_archive(
            &inp,
            &out,
            false,
            &pki.key,
            &pki.signer,
            &SignOptions::default(),
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(
            matches!(&err, ArchiveError::SignatureExists { object, .. } if object == "Accounting/Daily/eod.workflow.json"),
            "{err}"
        );
        assert!(!out.exists());
        let options = SignOptions {
            replace_signatures: true,
            ..Default::default()
        };
        let s = sign_archive(
            &inp,
            &out,
            false,
            &pki.key,
            &pki.signer,
            &options,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!((s.objects_signed, s.signatures_replaced), (3, 1));
        assert_eq!(
            check_with_openssl(&out, &pki.key, "-sha256", &sample_entries()),
            3
        );
    }

    #[test]
    fn orphan_signature_is_refused() {
        let pki = Pki::new(13);
        let d = tempfile::tempdir().unwrap();
        for (orphan, reason) in [
            ("gone.workflow.json.sig", "its object"),
            ("Accounting/one.lock.json.sig", "an object JS7 signs"),
        ] {
            let mut entries = sample_entries();
            entries.push((orphan.into(), b"AAAA".to_vec()));
            let inp = input(d.path(), false, &entries);
            let out = d.path().join("signed.tar.gz");
            let err = sign_archive(
                &inp,
                &out,
                false,
                &pki.key,
                &pki.signer,
                &SignOptions::default(),
                &mut |_, _| {},
            )
            .unwrap_err();
            assert!(
                matches!(&err, ArchiveError::OrphanSignature { signature, .. } if signature == orphan),
                "{err}"
            );
            assert!(err.to_string().contains(reason), "{err}");
            assert!(!out.exists());
        }
    }

    /// A device that answers with signatures of another key, as a faulty token might.
    struct WrongKey<'a>(&'a signer::soft::SoftKey);

    impl SigningKey for WrongKey<'_> {
        fn public_key(&self) -> &signer::PublicKey {
            self.0.public_key()
        }
        fn name(&self) -> String {
            "faulty device".into()
        }
        fn sign_digest(
            &self,
            alg: SignatureAlgorithm,
            message: &[u8],
            digest: &[u8],
        ) -> Result<Vec<u8>, signer::SignError> {
            signer::soft::SoftKey::p256(99).sign_digest(alg, message, digest)
        }
    }

    #[test]
    fn a_bad_device_signature_stops_the_archive_and_writes_nothing() {
        let pki = Pki::new(15);
        let d = tempfile::tempdir().unwrap();
        for zip in [true, false] {
            let inp = input(d.path(), zip, &sample_entries());
            let out = d.path().join(if zip { "bad.zip" } else { "bad.tar.gz" });
            let err = sign_archive(
                &inp,
                &out,
                false,
                &WrongKey(&pki.key),
                &pki.signer,
                &SignOptions::default(),
                &mut |_, _| {},
            )
            .unwrap_err();
            assert!(
                matches!(
                    &err,
                    ArchiveError::Signing {
                        source: signer::SignError::BadSignature { .. },
                        ..
                    }
                ),
                "{err}"
            );
            assert!(!out.exists());
            // No temporary file is left either.
            let left: Vec<_> = std::fs::read_dir(d.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("hsmsign"))
                .collect();
            assert!(left.is_empty(), "{left:?}");
        }
    }

    /// The sample entries with `n` more workflows and job resources between them.
    fn many_entries(n: usize) -> Vec<(String, Vec<u8>)> {
        let mut entries = sample_entries();
        for i in 0..n {
            let (name, body) = if i % 4 == 3 {
                (
                    format!("Batch/r{i}.jobresource.json"),
                    format!(r#"{{"TYPE":"JobResource","arguments":{{"N":"{i}"}}}}"#),
                )
            } else {
                (
                    format!("Batch/w{i}.workflow.json"),
                    format!(r#"{{"TYPE":"Workflow","title":"{i}"}}"#),
                )
            };
            entries.insert(2 + i, (name, body.into_bytes()));
        }
        entries
    }

    fn workers(seed: u8, n: usize) -> Vec<WorkerSigner<'static>> {
        (0..n)
            .map(|_| Box::new(signer::soft::SoftKey::p256(seed)) as WorkerSigner<'static>)
            .collect()
    }

    #[test]
    fn workers_write_exactly_what_one_key_writes() {
        // SoftKey's ECDSA is deterministic (RFC 6979): with the same key the signatures are
        // the same too, so the parallel output must equal the one-key output entry for entry.
        let pki = Pki::new(21);
        let d = tempfile::tempdir().unwrap();
        let entries = many_entries(60);
        for zip in [true, false] {
            let inp = input(d.path(), zip, &entries);
            let ext = if zip { "zip" } else { "tar.gz" };
            let one = d.path().join(format!("one.{ext}"));
            sign_archive(
                &inp,
                &one,
                false,
                &pki.key,
                &pki.signer,
                &SignOptions::default(),
                &mut |_, _| {},
            )
            .unwrap();
            for n in [1, 3, 8] {
                let par = d.path().join(format!("par{n}.{ext}"));
                let mut last = (0, 0);
                let s = sign_archive_sessions(
                    &inp,
                    &par,
                    false,
                    &pki.key,
                    workers(21, n),
                    &pki.signer,
                    &SignOptions::default(),
                    &mut |done, total| last = (done, total),
                    &mut |_| Ok(()),
                )
                .unwrap();
                assert_eq!(s.objects_signed, 63);
                assert_eq!(last, (63, 63));
                assert_eq!(
                    list_with_crates(&par),
                    list_with_crates(&one),
                    "{n} workers"
                );
                assert_eq!(check_with_openssl(&par, &pki.key, "-sha256", &entries), 63);
            }
        }
    }

    /// The key of `SoftKey::p256(seed)`, failing its `at`-th signature (counted over every
    /// worker sharing `calls`) as a token that went away would.
    struct FailingAt {
        key: signer::soft::SoftKey,
        calls: Arc<AtomicUsize>,
        at: usize,
    }

    impl SigningKey for FailingAt {
        fn public_key(&self) -> &signer::PublicKey {
            self.key.public_key()
        }
        fn name(&self) -> String {
            "pkcs11:token=Failing;object=k".into()
        }
        fn sign_digest(
            &self,
            alg: SignatureAlgorithm,
            message: &[u8],
            digest: &[u8],
        ) -> Result<Vec<u8>, signer::SignError> {
            if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.at {
                return Err(signer::SignError::Device {
                    key: self.name(),
                    reason: "C_Sign returned CKR_DEVICE_ERROR".into(),
                });
            }
            self.key.sign_digest(alg, message, digest)
        }
    }

    #[test]
    fn a_failing_worker_stops_the_batch_and_writes_nothing() {
        let pki = Pki::new(22);
        let d = tempfile::tempdir().unwrap();
        let entries = many_entries(200);
        for (zip, n, at) in [(true, 4, 37), (false, 2, 1), (true, 8, 203)] {
            let inp = input(d.path(), zip, &entries);
            let out = d.path().join(if zip { "bad.zip" } else { "bad.tar.gz" });
            let calls = Arc::new(AtomicUsize::new(0));
            let failing: Vec<WorkerSigner<'static>> = (0..n)
                .map(|_| {
                    Box::new(FailingAt {
                        key: signer::soft::SoftKey::p256(22),
                        calls: Arc::clone(&calls),
                        at,
                    }) as WorkerSigner<'static>
                })
                .collect();
            let mut recorded = false;
            let err = sign_archive_sessions(
                &inp,
                &out,
                false,
                &pki.key,
                failing,
                &pki.signer,
                &SignOptions::default(),
                &mut |_, _| {},
                &mut |_| {
                    recorded = true;
                    Ok(())
                },
            )
            .unwrap_err();
            assert!(
                matches!(&err, ArchiveError::Signing { entry, source: signer::SignError::Device { .. } } if entry.ends_with(".json")),
                "{err}"
            );
            assert!(err.to_string().contains("CKR_DEVICE_ERROR"), "{err}");
            assert!(!recorded, "a failed batch must not be recorded as signed");
            assert!(!out.exists());
            let left: Vec<_> = std::fs::read_dir(d.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".bad"))
                .collect();
            assert!(left.is_empty(), "{left:?}");
            // No signature was asked for after the failure was known, beyond those in flight.
            assert!(calls.load(Ordering::SeqCst) <= at + n, "{calls:?}");
        }
    }

    #[test]
    fn a_worker_with_another_key_is_refused_before_signing() {
        let pki = Pki::new(23);
        let d = tempfile::tempdir().unwrap();
        let inp = input(d.path(), true, &sample_entries());
        let out = d.path().join("o.zip");
        let err = sign_archive_sessions(
            &inp,
            &out,
            false,
            &pki.key,
            workers(99, 2),
            &pki.signer,
            &SignOptions::default(),
            &mut |_, _| {},
            &mut |_| Ok(()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("another key"), "{err}");
        assert!(!out.exists());
    }

    #[test]
    fn algorithms_js7_accepts_and_refuses() {
        let pki = Pki::new(14);
        let d = tempfile::tempdir().unwrap();
        let inp = input(d.path(), true, &sample_entries());
        let run = |alg: SignatureAlgorithm, out: &str| {
            let options = SignOptions {
                algorithm: Some(alg),
                ..Default::default()
            };
            sign_archive(
                &inp,
                &d.path().join(out),
                false,
                &pki.key,
                &pki.signer,
                &options,
                &mut |_, _| {},
            )
        };
        let err = run(SignatureAlgorithm::EcdsaSha384, "a.zip").unwrap_err();
        assert!(
            matches!(err, ArchiveError::UnsupportedAlgorithm { .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("SHA256withECDSA, SHA512withECDSA, SHA256withRSA, SHA512withRSA")
        );
        let err = run(SignatureAlgorithm::RsaSha256, "b.zip").unwrap_err();
        assert!(
            matches!(err, ArchiveError::AlgorithmMismatch { .. }),
            "{err}"
        );
        assert!(!d.path().join("a.zip").exists() && !d.path().join("b.zip").exists());
        let s = run(SignatureAlgorithm::EcdsaSha512, "c.zip").unwrap();
        assert_eq!(s.algorithm, "SHA512withECDSA");
        assert_eq!(
            check_with_openssl(
                &d.path().join("c.zip"),
                &pki.key,
                "-sha512",
                &sample_entries()
            ),
            3
        );
    }

    #[test]
    fn certificate_must_fit_the_key_and_not_be_a_ca() {
        let pki = Pki::new(15);
        let d = tempfile::tempdir().unwrap();
        let inp = input(d.path(), true, &sample_entries());
        let out = d.path().join("o.zip");
        let go = |cert: &[u8]| {
            sign_archive(
                &inp,
                &out,
                false,
                &pki.key,
                cert,
                &SignOptions::default(),
                &mut |_, _| {},
            )
        };
        let err = go(&pki.intermediate).unwrap_err();
        assert!(
            matches!(err, ArchiveError::CertificateKeyMismatch { .. }),
            "{err}"
        );
        let ca = self_signed(pki.dir.path(), "soft.key", "Soft CA", CA_EXT, "softca.pem");
        let err = go(&ca).unwrap_err();
        assert!(matches!(err, ArchiveError::CaCertificate { .. }), "{err}");
        let err = go(b"not a certificate").unwrap_err();
        assert!(matches!(err, ArchiveError::Certificate { .. }), "{err}");
        assert!(!out.exists());
        // No digitalSignature: signed, with a warning.
        let odd = self_signed(
            pki.dir.path(),
            "soft.key",
            "Odd",
            "keyUsage = keyEncipherment\n",
            "odd.pem",
        );
        let s = go(&odd).unwrap();
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("digitalSignature"));
    }

    #[test]
    fn existing_output_is_refused_before_signing() {
        let pki = Pki::new(16);
        let d = tempfile::tempdir().unwrap();
        let inp = input(d.path(), true, &sample_entries());
        let out = d.path().join("o.zip");
        std::fs::write(&out, b"keep me").unwrap();
        let mut signed = 0;
        let err = sign_archive(
            &inp,
            &out,
            false,
            &pki.key,
            &pki.signer,
            &SignOptions::default(),
            &mut |_, _| signed += 1,
        )
        .unwrap_err();
        assert!(
            matches!(err, ArchiveError::Output(output::OutputError::Exists(_))),
            "{err}"
        );
        assert_eq!(signed, 0);
        assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
        sign_archive(
            &inp,
            &out,
            true,
            &pki.key,
            &pki.signer,
            &SignOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(
            check_with_openssl(&out, &pki.key, "-sha256", &sample_entries()),
            3
        );
    }

    #[test]
    fn long_names_survive_in_tar_gz() {
        let pki = Pki::new(17);
        let d = tempfile::tempdir().unwrap();
        let long = format!("{}/deep.workflow.json", "Folder".repeat(50));
        let entries = vec![(long, b"{\"TYPE\":\"Workflow\"}".to_vec())];
        let inp = input(d.path(), false, &entries);
        let out = d.path().join("o.tar.gz");
        sign_archive(
            &inp,
            &out,
            false,
            &pki.key,
            &pki.signer,
            &SignOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(check_with_openssl(&out, &pki.key, "-sha256", &entries), 1);
    }

    /// What JS7 itself does, in Java: read the archive with `ZipInputStream` (which sees the
    /// local headers and data descriptors), decode each `.sig` with the MIME Base64 decoder,
    /// and verify with `java.security.Signature` and the signer certificate's key.
    const JAVA_CHECK: &str = r#"
import java.io.*; import java.util.*; import java.util.zip.*; import java.security.*; import java.security.cert.*;
public class Check {
  public static void main(String[] a) throws Exception {
    X509Certificate c = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(new FileInputStream(a[1]));
    Map<String, byte[]> m = new LinkedHashMap<>();
    try (ZipInputStream z = new ZipInputStream(new FileInputStream(a[0]))) {
      for (ZipEntry e; (e = z.getNextEntry()) != null; ) m.put(e.getName(), z.readAllBytes());
    }
    int ok = 0;
    for (String n : m.keySet()) {
      if (!n.endsWith(".workflow.json") && !n.endsWith(".jobresource.json")) continue;
      Signature s = Signature.getInstance(a[2]);
      s.initVerify(c.getPublicKey());
      s.update(m.get(n));
      if (!s.verify(Base64.getMimeDecoder().decode(m.get(n + ".sig")))) throw new RuntimeException("BAD " + n);
      ok++;
    }
    System.out.println("verified " + ok);
  }
}
"#;

    #[test]
    fn java_reads_the_zip_and_verifies_like_js7() {
        let pki = Pki::new(18);
        let d = tempfile::tempdir().unwrap();
        let inp = input(d.path(), true, &sample_entries());
        for (alg, out) in [
            (SignatureAlgorithm::EcdsaSha256, "a.zip"),
            (SignatureAlgorithm::EcdsaSha512, "b.zip"),
        ] {
            let options = SignOptions {
                algorithm: Some(alg),
                ..Default::default()
            };
            let out = d.path().join(out);
            sign_archive(
                &inp,
                &out,
                false,
                &pki.key,
                &pki.signer,
                &options,
                &mut |_, _| {},
            )
            .unwrap();
            std::fs::write(d.path().join("Check.java"), JAVA_CHECK).unwrap();
            let run = std::process::Command::new("java")
                .arg(d.path().join("Check.java"))
                .arg(&out)
                .arg(pki.dir.path().join("signer.pem"))
                .arg(alg.java_name())
                .output()
                .expect("java runs");
            let stdout = String::from_utf8_lossy(&run.stdout);
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
            assert_eq!(stdout.trim(), "verified 3");
        }
    }

    #[test]
    fn p384_key_defaults_to_sha256_with_ecdsa() {
        use p384::pkcs8::EncodePrivateKey;
        let d = tempfile::tempdir().unwrap();
        let w = d.path();
        let sk = p384::SecretKey::from_slice(&[5u8; 48]).unwrap();
        let pem = sk.to_pkcs8_pem(p384::pkcs8::LineEnding::LF).unwrap();
        std::fs::write(w.join("k384.pem"), pem.as_bytes()).unwrap();
        let cert = self_signed(w, "k384.pem", "P384 Signer", SIGNER_EXT, "c384.pem");
        let key = signer::soft::SoftKey::p384(5);
        let inp = input(w, false, &sample_entries());
        let out = w.join("o.tar.gz");
        let s = sign_archive(
            &inp,
            &out,
            false,
            &key,
            &cert,
            &SignOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(s.algorithm, "SHA256withECDSA");
        assert_eq!(
            check_with_openssl(&out, &key, "-sha256", &sample_entries()),
            3
        );
    }
}
