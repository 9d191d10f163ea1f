//! The JSON transcript of a ceremony run: what was done, step by step, with the hashes that tie
//! it to the files. It is rewritten atomically after each step, so a run that is killed leaves
//! the transcript of every step it completed; [`resume`] decides from it whether a second run
//! may continue.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::file::Step;

/// The transcript format's version.
pub const FORMAT: u32 = 1;

/// A file and its SHA-256.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FileHash {
    /// The file.
    pub path: PathBuf,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

/// What became of a step.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Started and not reported ended: the run was killed inside it (see
    /// [`interrupted`]).
    Started,
    /// Done.
    Done,
    /// Tried and failed; nothing of it was written.
    Failed,
    /// Not done (an earlier step failed, or the officer declined).
    Skipped,
}

/// A certificate a step issued.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Its subject.
    pub subject: String,
    /// SHA-256 of the DER, lower-case hex.
    pub sha256_fingerprint: String,
    /// The PEM.
    pub pem: String,
}

/// One step's record.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct StepRecord {
    /// Step id.
    pub id: String,
    /// Step kind.
    pub kind: String,
    /// What became of it.
    pub status: Status,
    /// [`input_hash`] of the step as it ran.
    pub input_hash: String,
    /// Its input files.
    pub inputs: Vec<FileHash>,
    /// Its output files.
    pub outputs: Vec<FileHash>,
    /// Certificates it issued.
    #[serde(default)]
    pub certificates: Vec<CertificateRecord>,
    /// The audit log sequence numbers it wrote.
    #[serde(default)]
    pub audit_seq: Vec<u64>,
    /// The audit log's last record when the step started.
    #[serde(default)]
    pub audit_head: Option<u64>,
    /// One line saying what it did, or why it failed.
    #[serde(default)]
    pub summary: String,
}

/// A ceremony run's transcript.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Transcript {
    /// [`FORMAT`].
    pub format: u32,
    /// The ceremony's name.
    pub name: String,
    /// The ceremony file.
    pub ceremony_file: FileHash,
    /// The site file, when the binding came from one.
    pub site_file: Option<FileHash>,
    /// hsmsign's version.
    pub hsmsign_version: String,
    /// Who ran it.
    pub operator: String,
    /// Whether it ran against throwaway tokens.
    pub rehearsal: bool,
    /// Start, RFC 3339.
    pub started: String,
    /// End, RFC 3339, once the run ended.
    pub ended: Option<String>,
    /// Steps, in order, as far as the run got.
    pub steps: Vec<StepRecord>,
    /// The `ceremony.start` audit record of the last run.
    #[serde(default)]
    pub audit_start: Option<u64>,
    /// The `ceremony.end` audit record of the last run.
    #[serde(default)]
    pub audit_end: Option<u64>,
}

/// An error reading or writing a transcript.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    /// Writing failed.
    #[error("cannot write the transcript: {0}")]
    Write(#[from] crate::output::OutputError),
    /// Reading failed.
    #[error("cannot read the transcript {path}: {error}; give the file `ceremony run` wrote")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
}

/// SHA-256 of bytes, lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    crate::encoding::hex(&Sha256::digest(data))
}

/// The step input hash: SHA-256 over a canonical encoding of the step's resolved parameters
/// (its TOML table as JSON, keys in the struct's fixed order) and of each input file (its
/// resolved path and its contents' SHA-256), each part length-prefixed.
pub fn input_hash(step: &Step, inputs: &[(PathBuf, Vec<u8>)]) -> String {
    let mut h = Sha256::new();
    let mut part = |b: &[u8]| {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    };
    part(b"hsmsign ceremony step v1");
    part(&serde_json::to_vec(step).unwrap_or_default());
    for (path, data) in inputs {
        part(path.to_string_lossy().as_bytes());
        part(&Sha256::digest(data));
    }
    crate::encoding::hex(&h.finalize())
}

impl Transcript {
    /// Writes the transcript atomically (temporary file, then rename), replacing the previous
    /// version; the file is 0600 (it names the officer).
    pub fn write(&self, path: &Path) -> Result<(), TranscriptError> {
        let mut json = serde_json::to_vec_pretty(self).unwrap_or_default();
        json.push(b'\n');
        let file = crate::output::AtomicFile::create_secret(path, true)?;
        crate::output::write_reserved(file, &json)?;
        Ok(())
    }

    /// Reads a transcript.
    pub fn read(path: &Path) -> Result<Self, TranscriptError> {
        let bytes = std::fs::read(path).map_err(|e| TranscriptError::Read {
            path: path.to_owned(),
            error: e.to_string(),
        })?;
        let t: Self = serde_json::from_slice(&bytes).map_err(|e| TranscriptError::Read {
            path: path.to_owned(),
            error: format!("not a ceremony transcript ({e})"),
        })?;
        if t.format != FORMAT {
            return Err(TranscriptError::Read {
                path: path.to_owned(),
                error: format!(
                    "format {} is not {FORMAT}; use the hsmsign that wrote it",
                    t.format
                ),
            });
        }
        Ok(t)
    }
}

/// One step of a plan as [`resume`] needs it.
#[derive(Clone, Debug)]
pub struct PlannedStep {
    /// Step id.
    pub id: String,
    /// Its input hash now.
    pub input_hash: String,
}

/// The plan as [`resume`] compares it: each step's id and its input hash over its input files
/// as they are now. An input that cannot be read yet (a later step's output) enters the hash as
/// unreadable; only steps recorded done are compared, and their inputs exist.
pub fn planned_steps(
    file: &super::file::CeremonyFile,
    report: &super::check::Report,
) -> Vec<PlannedStep> {
    file.steps
        .iter()
        .zip(&report.plan)
        .map(|(step, plan)| {
            let inputs: Vec<(PathBuf, Vec<u8>)> = plan
                .inputs
                .iter()
                .map(|p| {
                    let data = std::fs::read(p).unwrap_or_else(|_| b"(unreadable)".to_vec());
                    (p.clone(), data)
                })
                .collect();
            PlannedStep {
                id: plan.id.clone(),
                input_hash: input_hash(step, &inputs),
            }
        })
        .collect()
}

/// What a second run may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Start at step index `next` (0: from the beginning); steps before it are done and match.
    From {
        /// Index of the first step to run.
        next: usize,
    },
    /// Everything is done already.
    Complete,
    /// A second run must not go on.
    Refuse(String),
}

/// Given a transcript and the plan as it stands now, which steps are complete and whether
/// continuing is safe: each done step must be the plan's step at the same place, with the same
/// id and the same input hash. A failed step wrote nothing and is run again; anything else
/// (another order, changed inputs, a step the file no longer has) refuses.
pub fn resume(t: &Transcript, ceremony_sha256: &str, plan: &[PlannedStep]) -> Resume {
    if t.ceremony_file.sha256 != ceremony_sha256 {
        return Resume::Refuse(format!(
            "the transcript is of a ceremony file with SHA-256 {}, this one is {ceremony_sha256}: the file changed since the run; run the file that was run, or start a new transcript",
            t.ceremony_file.sha256
        ));
    }
    let mut next = 0;
    for (n, rec) in t.steps.iter().enumerate() {
        let Some(p) = plan.get(n) else {
            return Resume::Refuse(format!(
                "the transcript has step {:?} at place {}, the plan has only {} step(s)",
                rec.id,
                n + 1,
                plan.len()
            ));
        };
        if p.id != rec.id {
            return Resume::Refuse(format!(
                "place {} is step {:?} in the transcript but {:?} in the plan: the steps were reordered",
                n + 1,
                rec.id,
                p.id
            ));
        }
        match rec.status {
            Status::Done => {
                if p.input_hash != rec.input_hash {
                    return Resume::Refuse(format!(
                        "step {:?} was done with inputs of hash {}, they are now {}: an input changed after it was used; restore it or start a new ceremony",
                        rec.id, rec.input_hash, p.input_hash
                    ));
                }
                if next != n {
                    return Resume::Refuse(format!(
                        "step {:?} is recorded done after a step that is not: the transcript is inconsistent",
                        rec.id
                    ));
                }
                next = n + 1;
            }
            Status::Started | Status::Failed | Status::Skipped => {}
        }
    }
    if next == plan.len() {
        Resume::Complete
    } else {
        Resume::From { next }
    }
}

/// Whether a step of `t` was started and never reported ended while the audit log went on past
/// the head it started at (`head` is the log's last record now): then it may have signed, and
/// running it again could sign a second time. Returns why the run must not go on.
pub fn interrupted(t: &Transcript, head: u64) -> Option<String> {
    t.steps.iter().find_map(|r| {
        let started_at = r.audit_head?;
        (r.status == Status::Started && head > started_at).then(|| {
            format!(
                "step {:?} was interrupted after the audit log had moved on from record #{started_at} (it is at #{head} now): it may have signed or recorded something. Look at `hsmsign audit show --since {}`; if the step's work is there, finish the ceremony by hand from the next step, otherwise mark it failed in a new transcript. Nothing is run again automatically",
                r.id,
                started_at + 1
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(steps: Vec<(&str, Status, &str)>) -> Transcript {
        Transcript {
            format: FORMAT,
            name: "c".into(),
            ceremony_file: FileHash {
                path: "c.toml".into(),
                sha256: "aa".into(),
            },
            site_file: None,
            hsmsign_version: "0".into(),
            operator: "o".into(),
            rehearsal: false,
            started: "2026-01-01T00:00:00Z".into(),
            ended: None,
            audit_start: None,
            audit_end: None,
            steps: steps
                .into_iter()
                .map(|(id, status, h)| StepRecord {
                    id: id.into(),
                    kind: "crl".into(),
                    status,
                    input_hash: h.into(),
                    inputs: vec![],
                    outputs: vec![],
                    certificates: vec![],
                    audit_seq: vec![],
                    audit_head: None,
                    summary: String::new(),
                })
                .collect(),
        }
    }

    fn plan(v: &[(&str, &str)]) -> Vec<PlannedStep> {
        v.iter()
            .map(|(i, h)| PlannedStep {
                id: (*i).into(),
                input_hash: (*h).into(),
            })
            .collect()
    }

    #[test]
    fn resume_continues_after_the_last_done_step() {
        let tr = t(vec![("a", Status::Done, "1"), ("b", Status::Failed, "2")]);
        assert_eq!(
            resume(&tr, "aa", &plan(&[("a", "1"), ("b", "2"), ("c", "3")])),
            Resume::From { next: 1 }
        );
        let tr = t(vec![("a", Status::Done, "1"), ("b", Status::Done, "2")]);
        assert_eq!(
            resume(&tr, "aa", &plan(&[("a", "1"), ("b", "2")])),
            Resume::Complete
        );
    }

    #[test]
    fn resume_refuses_changed_inputs_order_or_file() {
        let tr = t(vec![("a", Status::Done, "1")]);
        let Resume::Refuse(m) = resume(&tr, "aa", &plan(&[("a", "X")])) else {
            panic!()
        };
        assert!(m.contains("input changed"), "{m}");
        let Resume::Refuse(m) = resume(&tr, "aa", &plan(&[("b", "1"), ("a", "1")])) else {
            panic!()
        };
        assert!(m.contains("reordered"), "{m}");
        let Resume::Refuse(m) = resume(&tr, "bb", &plan(&[("a", "1")])) else {
            panic!()
        };
        assert!(m.contains("file changed"), "{m}");
    }

    #[test]
    fn the_input_hash_follows_parameters_and_input_contents() {
        use crate::ceremony::check::{NoState, Paths, check};
        use crate::ceremony::file::CeremonyFile;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in.zip"), b"one").unwrap();
        let text = |alg: &str| {
            format!(
                "name = \"n\"\npurpose = \"p\"\n[tokens.op]\n[[step]]\nid = \"s\"\nkind = \"archive-sign\"\nkey = {{ token = \"op\", label = \"k\" }}\ncert = \"in.zip\"\nin = \"in.zip\"\nout = \"o.zip\"\nalgorithm = \"{alg}\"\n"
            )
        };
        let paths = Paths {
            input_dir: dir.path().into(),
            output_dir: dir.path().into(),
        };
        let hash = |t: &str| {
            let f = CeremonyFile::parse(Path::new("c.toml"), t).unwrap();
            let r = check(&f, None, &paths, &NoState);
            planned_steps(&f, &r)[0].input_hash.clone()
        };
        let a = hash(&text("SHA256withECDSA"));
        assert_eq!(a, hash(&text("SHA256withECDSA")));
        assert_ne!(a, hash(&text("SHA512withECDSA")));
        std::fs::write(dir.path().join("in.zip"), b"two").unwrap();
        assert_ne!(a, hash(&text("SHA256withECDSA")));
    }

    #[test]
    fn a_transcript_round_trips_through_an_atomic_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.json");
        let tr = t(vec![("a", Status::Done, "1")]);
        tr.write(&p).unwrap();
        tr.write(&p).unwrap();
        assert_eq!(Transcript::read(&p).unwrap(), tr);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
