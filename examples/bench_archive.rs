//! Archive-signing benchmark: the moving parts that `scripts/bench-archive.sh` runs, each in its
//! own process so that each peak-memory figure belongs to one job alone.
//!
//! ```text
//! bench_archive generate --out export.zip --objects 10000 --min-size 1024 --max-size 20480
//! bench_archive raw  --key URI --pin-file F --count 10000 [--sessions N]
//! bench_archive sign --key URI --pin-file F --cert signer.der --in export.zip --out signed.zip [--sessions N]
//! ```
//!
//! The module is `HSMSIGN_MODULE` when set (the stand-in HSM, p11-kit's client), else the URI's
//! or SoftHSM2's. `--sessions N` (N > 1) signs on N worker sessions of the logged-in token, as
//! `archive sign --sessions N` does; `raw --sessions N` measures the token's bare rate with N
//! sessions signing at once, one thread each.
//!
//! `generate` writes a deterministic synthetic JS7 export (ZIP or tar.gz, chosen by the output
//! name). `raw` signs `--count` different SHA-256 digests on one logged-in session, once as the
//! bare token operation and once through `signer::sign` (which also verifies each signature).
//! `sign` signs an archive with `archive::sign_archive`. Each prints one `key=value` line and
//! ends with the process's peak resident set size (`VmHWM`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use sha2::Digest;

use hsmsign::archive::{SignOptions, sign_archive_sessions};
use hsmsign::keys::pkcs11::{Module, PinError, PinSource, Pkcs11Uri, TokenKey, resolve_module};
use hsmsign::signer::WorkerSigner;
use hsmsign::signer::{self, SignatureAlgorithm, SigningKey};

#[derive(Parser)]
#[command(about = "hsmsign archive-signing benchmark (see scripts/bench-archive.sh)")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a synthetic JS7 export; the format follows the name (.zip or .tar.gz).
    Generate {
        #[arg(long)]
        out: PathBuf,
        /// Signed objects (workflows and job resources).
        #[arg(long)]
        objects: usize,
        /// Smallest object in bytes.
        #[arg(long, default_value_t = 1024)]
        min_size: usize,
        /// Largest object in bytes.
        #[arg(long, default_value_t = 20 * 1024)]
        max_size: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The token's own rate: sign `count` digests on one session.
    Raw {
        #[arg(long)]
        key: String,
        #[arg(long)]
        pin_file: PathBuf,
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        sessions: usize,
    },
    /// Sign an archive with `archive::sign_archive`.
    Sign {
        #[arg(long)]
        key: String,
        #[arg(long)]
        pin_file: PathBuf,
        /// The signer certificate, DER.
        #[arg(long)]
        cert: PathBuf,
        #[arg(long = "in")]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        sessions: usize,
    },
}

fn main() -> Result<()> {
    match Args::parse().cmd {
        Cmd::Generate {
            out,
            objects,
            min_size,
            max_size,
            seed,
        } => generate(&out, objects, min_size, max_size.max(min_size), seed)?,
        Cmd::Raw {
            key,
            pin_file,
            count,
            sessions,
        } => {
            if sessions > 1 {
                raw_sessions(&key, &pin_file, count, sessions)?
            } else {
                raw(&key, &pin_file, count)?
            }
        }
        Cmd::Sign {
            key,
            pin_file,
            cert,
            input,
            out,
            sessions,
        } => sign(&key, &pin_file, &cert, &input, &out, sessions)?,
    }
    println!("peak_rss_kib={}", peak_rss_kib()?);
    Ok(())
}

/// `VmHWM` of this process, in KiB.
fn peak_rss_kib() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM line in /proc/self/status")
}

// ---------------------------------------------------------------------------------------------
// The token

fn with_key<T>(
    key: &str,
    pin_file: &Path,
    f: impl FnOnce(&Module, &TokenKey<'_>) -> Result<T>,
) -> Result<T> {
    let uri = Pkcs11Uri::parse(key)?;
    let explicit = std::env::var_os("HSMSIGN_MODULE").map(PathBuf::from);
    let module = Module::load(&resolve_module(explicit.as_deref(), Some(&uri))?)?;
    let mut session = module.open(&uri)?;
    let no_prompt = |_: &str| {
        Err(PinError::NoTerminal {
            what: "the PIN".into(),
        })
    };
    session.login(
        &module,
        &PinSource::File(pin_file.to_path_buf()),
        &no_prompt,
        false,
    )?;
    let key = session.signing_key(&uri)?;
    f(&module, &key)
}

/// The token's bare rate with `sessions` sessions signing at once (C_Sign in a tight loop on
/// each, `count` digests in all).
fn raw_sessions(key: &str, pin_file: &Path, count: usize, sessions: usize) -> Result<()> {
    with_key(key, pin_file, |module, key| {
        let alg = SignatureAlgorithm::EcdsaSha256;
        let (workers, notice) = key.workers(module, sessions);
        if let Some(n) = notice {
            bail!("{n}");
        }
        let digests: Vec<[u8; 32]> = (0..count as u64)
            .map(|i| sha2::Sha256::digest(i.to_le_bytes()).into())
            .collect();
        let per = count.div_ceil(sessions);
        let t = Instant::now();
        std::thread::scope(|s| -> Result<()> {
            let handles: Vec<_> = workers
                .into_iter()
                .zip(digests.chunks(per))
                .map(|(w, chunk)| {
                    s.spawn(move || -> Result<()> {
                        for d in chunk {
                            std::hint::black_box(w.sign_digest(alg, &[], d)?);
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a session thread panicked"))??;
            }
            Ok(())
        })?;
        let bare = t.elapsed().as_secs_f64();
        print!(
            "count={count} sessions={sessions} raw_s={bare:.3} raw_per_s={:.1} ",
            count as f64 / bare
        );
        Ok(())
    })
}

fn raw(key: &str, pin_file: &Path, count: usize) -> Result<()> {
    with_key(key, pin_file, |_, key| {
        let alg = SignatureAlgorithm::EcdsaSha256;
        // Distinct digests, computed before the clock starts.
        let digests: Vec<[u8; 32]> = (0..count as u64)
            .map(|i| sha2::Sha256::digest(i.to_le_bytes()).into())
            .collect();
        let mut sigs = Vec::with_capacity(count);
        let t = Instant::now();
        for d in &digests {
            // The token operation alone (C_Sign with CKM_ECDSA, then raw r||s to DER).
            sigs.push(key.sign_digest(alg, &[], d)?);
        }
        let bare = t.elapsed().as_secs_f64();
        // The software check that `signer::sign` adds to every signature (over the message, as
        // `signer::sign` does; digest i is the SHA-256 of message i).
        let public = key.public_key();
        let t = Instant::now();
        for (i, s) in sigs.iter().enumerate() {
            public.verify(alg, &(i as u64).to_le_bytes(), s)?;
        }
        let verify = t.elapsed().as_secs_f64();
        // What every archive object pays: hash, C_Sign, and the software verification.
        let messages: Vec<[u8; 8]> = (0..count as u64).map(u64::to_le_bytes).collect();
        let t = Instant::now();
        for m in &messages {
            std::hint::black_box(signer::sign(key, alg, m)?);
        }
        let checked = t.elapsed().as_secs_f64();
        print!(
            "count={count} raw_s={bare:.3} raw_per_s={:.1} verify_per_s={:.1} sign_verify_s={checked:.3} sign_verify_per_s={:.1} ",
            count as f64 / bare,
            count as f64 / verify,
            count as f64 / checked
        );
        Ok(())
    })
}

fn sign(
    key: &str,
    pin_file: &Path,
    cert: &Path,
    input: &Path,
    out: &Path,
    sessions: usize,
) -> Result<()> {
    let cert = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
    with_key(key, pin_file, |module, key| {
        let workers: Vec<WorkerSigner<'static>> = if sessions > 1 {
            let (workers, notice) = key.workers(module, sessions);
            if let Some(n) = notice {
                bail!("{n}");
            }
            workers
                .into_iter()
                .map(|w| Box::new(w) as WorkerSigner<'static>)
                .collect()
        } else {
            Vec::new()
        };
        let t = Instant::now();
        let summary = sign_archive_sessions(
            input,
            out,
            false,
            key,
            workers,
            &cert,
            &SignOptions::default(),
            &mut |_, _| {},
            &mut |_| Ok(()),
        )?;
        let s = t.elapsed().as_secs_f64();
        print!(
            "format={} objects={} entries={} sessions={sessions} sign_s={s:.3} objects_per_s={:.1} ",
            summary.format,
            summary.objects_signed,
            summary.entries,
            summary.objects_signed as f64 / s
        );
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// The synthetic export

/// SplitMix64: a fixed generator, so that the same seed gives the same export everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "account",
    "archive",
    "backup",
    "batch",
    "billing",
    "cleanup",
    "customer",
    "daily",
    "data",
    "export",
    "file",
    "import",
    "invoice",
    "ledger",
    "load",
    "monthly",
    "nightly",
    "order",
    "payment",
    "report",
    "sales",
    "staging",
    "sync",
    "transfer",
    "warehouse",
    "weekly",
];
const COMMANDS: &[&str] = &[
    "rsync -a --delete",
    "find \"$DATA_DIR\" -mtime +30 -delete",
    "psql -v ON_ERROR_STOP=1 -f",
    "curl -sf -o",
    "gzip -9",
    "python3 /opt/jobs/run.py --step",
    "sftp -b batch.txt",
    "test -s",
    "mv -f",
];
const AGENTS: &[&str] = &[
    "primaryAgent",
    "secondaryAgent",
    "agentCluster",
    "windowsAgent",
];

/// One JSON string value.
fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn name(rng: &mut Rng, parts: usize, sep: &str) -> String {
    (0..parts)
        .map(|_| rng.pick(WORDS))
        .collect::<Vec<_>>()
        .join(sep)
}

/// A job: an agent, a shell script of several lines, arguments and environment.
fn job(rng: &mut Rng, n: usize) -> String {
    let lines = 3 + rng.below(12);
    let mut script = String::from("#!/bin/bash\nset -euo pipefail\n");
    for _ in 0..lines {
        let cmd = rng.pick(COMMANDS);
        let (a, b) = (name(rng, 2, "_"), name(rng, 1, ""));
        script.push_str(&format!(
            "{cmd} \"$DATA_DIR/{a}\" \"$TARGET/{b}_{}\"\n",
            rng.below(1000)
        ));
    }
    format!(
        "\"job{n}\": {{\n      \"agentName\": {},\n      \"executable\": {{\n        \"TYPE\": \"ShellScriptExecutable\",\n        \
         \"script\": {},\n        \"env\": {{\n          \"DATA_DIR\": \"$dataDir\",\n          \"TARGET\": {}\n        }},\n        \
         \"v1Compatible\": false\n      }},\n      \"skipIfNoAdmissionForOrderDay\": false,\n      \"parallelism\": 1,\n      \
         \"graceTimeout\": {},\n      \"failOnErrWritten\": {},\n      \"warnOnErrWritten\": false,\n      \"timeout\": {}\n    }}",
        json_str(rng.pick(AGENTS)),
        json_str(&script),
        json_str(&format!("/srv/{}", name(rng, 2, "/"))),
        5 + rng.below(60),
        rng.below(2) == 0,
        60 * (1 + rng.below(120)),
    )
}

/// A workflow of about `size` bytes (never more than `size` once it has one job).
fn workflow(rng: &mut Rng, path: &str, size: usize) -> Vec<u8> {
    let head = format!(
        "{{\n  \"TYPE\": \"Workflow\",\n  \"path\": {},\n  \"version\": \"1.0.0\",\n  \"timeZone\": \"Europe/Berlin\",\n  \
         \"title\": {},\n  \"orderPreparation\": {{\n    \"parameters\": {{\n      \"dataDir\": {{\n        \"type\": \"String\",\n        \
         \"default\": {}\n      }}\n    }},\n    \"allowUndeclared\": false\n  }},\n  \"jobResourceNames\": [{}],\n",
        json_str(path),
        json_str(&name(rng, 4, " ")),
        json_str(&format!("\"/data/{}\"", name(rng, 2, "/"))),
        json_str(&name(rng, 1, "")),
    );
    let mut jobs: Vec<String> = Vec::new();
    let mut instructions: Vec<String> = Vec::new();
    let render = |jobs: &[String], instructions: &[String]| {
        format!(
            "{head}  \"instructions\": [\n    {}\n  ],\n  \"jobs\": {{\n    {}\n  }}\n}}\n",
            instructions.join(",\n    "),
            jobs.join(",\n    ")
        )
    };
    let mut doc = render(&jobs, &instructions);
    loop {
        let n = jobs.len() + 1;
        let mut j = jobs.clone();
        let mut i = instructions.clone();
        j.push(job(rng, n));
        i.push(if n.is_multiple_of(3) {
            format!(
                "{{\n      \"TYPE\": \"If\",\n      \"predicate\": \"$returnCode == 0\",\n      \"then\": {{\n        \"instructions\": [\n          \
                 {{\n            \"TYPE\": \"Execute.Named\",\n            \"jobName\": \"job{n}\",\n            \"label\": \"step{n}\"\n          }}\n        ]\n      }}\n    }}"
            )
        } else {
            format!(
                "{{\n      \"TYPE\": \"Execute.Named\",\n      \"jobName\": \"job{n}\",\n      \"label\": \"step{n}\",\n      \
                 \"defaultArguments\": {{\n        \"mode\": {}\n      }}\n    }}",
                json_str(&format!("\"{}\"", rng.pick(WORDS)))
            )
        });
        let next = render(&j, &i);
        if next.len() > size && !jobs.is_empty() {
            break;
        }
        (jobs, instructions, doc) = (j, i, next);
    }
    // Fill the rest with a documentation string so sizes spread evenly over the range.
    let room = size.saturating_sub(doc.len() + 32);
    if room > 0 && doc.len() < size {
        let mut text = String::new();
        while text.len() < room {
            text.push_str(rng.pick(WORDS));
            text.push(' ');
        }
        text.truncate(room);
        doc = doc.replacen(
            "  \"version\"",
            &format!(
                "  \"documentationName\": {},\n  \"version\"",
                json_str(text.trim_end())
            ),
            1,
        );
    }
    doc.into_bytes()
}

fn job_resource(rng: &mut Rng, path: &str) -> Vec<u8> {
    let vars: Vec<String> = (0..5 + rng.below(20))
        .map(|i| {
            format!(
                "    \"var{i}\": {}",
                json_str(&format!("\"{}\"", name(rng, 3, "/")))
            )
        })
        .collect();
    format!(
        "{{\n  \"TYPE\": \"JobResource\",\n  \"path\": {},\n  \"variables\": {{\n{}\n  }},\n  \"env\": {{}},\n  \"version\": \"1.0.0\"\n}}\n",
        json_str(path),
        vars.join(",\n")
    )
    .into_bytes()
}

enum Out {
    Zip(Box<zip::ZipWriter<std::io::BufWriter<std::fs::File>>>),
    Tar(tar::Builder<flate2::write::GzEncoder<std::io::BufWriter<std::fs::File>>>),
}

impl Out {
    fn add(&mut self, name: &str, data: &[u8]) -> Result<()> {
        match self {
            Self::Zip(z) => {
                let opts = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .unix_permissions(0o644);
                z.start_file(name, opts)?;
                z.write_all(data)?;
            }
            Self::Tar(t) => {
                let mut h = tar::Header::new_ustar();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_mtime(1_700_000_000);
                h.set_entry_type(tar::EntryType::Regular);
                t.append_data(&mut h, name, data)?;
            }
        }
        Ok(())
    }
}

/// Folders of 50 objects, two levels deep; one object in 20 is a job resource, and every
/// folder also holds a schedule (copied, not signed).
fn generate(out: &Path, objects: usize, min: usize, max: usize, seed: u64) -> Result<()> {
    let file =
        std::fs::File::create_new(out).with_context(|| format!("creating {}", out.display()))?;
    let file = std::io::BufWriter::with_capacity(256 << 10, file);
    let name = out.to_string_lossy();
    let mut w = if name.ends_with(".zip") {
        Out::Zip(Box::new(zip::ZipWriter::new(file)))
    } else if name.ends_with(".tar.gz") {
        Out::Tar(tar::Builder::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::default(),
        )))
    } else {
        bail!("{name}: give a name ending in .zip or .tar.gz");
    };
    let mut rng = Rng(seed);
    let (mut total, mut largest) = (0usize, 0usize);
    for i in 0..objects {
        let f = i / 50;
        let folder = format!(
            "{}/{}_{f:04}",
            WORDS[f % WORDS.len()],
            WORDS[(f / 7) % WORDS.len()]
        );
        let (entry, data) = if i % 20 == 19 {
            let p = format!("{folder}/{}_{i}", name_of(&mut rng));
            (
                format!("{p}.jobresource.json"),
                job_resource(&mut rng, &format!("/{p}")),
            )
        } else {
            let p = format!("{folder}/{}_{i}", name_of(&mut rng));
            let size = min + rng.below(max - min + 1);
            (
                format!("{p}.workflow.json"),
                workflow(&mut rng, &format!("/{p}"), size),
            )
        };
        total += data.len();
        largest = largest.max(data.len());
        w.add(&entry, &data)?;
        if i % 50 == 0 {
            let s = format!(
                "{{\n  \"TYPE\": \"Schedule\",\n  \"path\": \"/{folder}/daily\",\n  \"calendars\": []\n}}\n"
            );
            w.add(&format!("{folder}/daily.schedule.json"), s.as_bytes())?;
        }
    }
    let mut file = match w {
        Out::Zip(z) => z.finish()?,
        Out::Tar(t) => t.into_inner()?.finish()?,
    };
    file.flush()?;
    let compressed = file.get_ref().metadata()?.len();
    print!(
        "objects={objects} json_bytes={total} avg_object={} largest_object={largest} archive_bytes={compressed} ",
        total / objects.max(1)
    );
    Ok(())
}

fn name_of(rng: &mut Rng) -> String {
    name(rng, 2, "_")
}
