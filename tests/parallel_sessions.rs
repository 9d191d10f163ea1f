//! `archive sign --sessions N`: parallel signing sessions on one logged-in token. Checked on a
//! real SoftHSM2 token, through the network-HSM stand-in (tools/stand-in-hsm, forwarding to
//! SoftHSM2 with a delay or an injected fault) and through OpenSC's pkcs11-spy (which counts
//! the PKCS#11 calls); every signature is checked with `openssl dgst -verify`.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine;
use common::{Pki, stderr, stdout};

/// A JS7 export of `n` signed objects (workflows and job resources), with unsigned locks and a
/// meta_inf between them, as a zip or a tar.gz.
fn export(path: &Path, n: usize) -> Vec<(String, Vec<u8>)> {
    let mut entries = vec![(
        "meta_inf".to_string(),
        br#"{"jocVersion":"2.7.2","inventorySchemaVersion":"1.0.0","apiVersion":"1.0.0","versionId":"6f1c"}"#.to_vec(),
    )];
    for i in 0..n {
        if i % 3 == 2 {
            entries.push((
                format!("Batch/Resources/r{i}.jobresource.json"),
                format!(r#"{{"TYPE":"JobResource","arguments":{{"N":"{i}"}}}}"#).into_bytes(),
            ));
        } else {
            entries.push((
                format!("Batch/Daily/w{i}.workflow.json"),
                format!(r#"{{"TYPE":"Workflow","instructions":[],"title":"{i}"}}"#).into_bytes(),
            ));
        }
        if i % 10 == 0 {
            entries.push((
                format!("Batch/Locks/l{i}.lock.json"),
                br#"{"TYPE":"Lock","limit":1}"#.to_vec(),
            ));
        }
    }
    let file = std::fs::File::create(path).unwrap();
    if path.extension().is_some_and(|e| e == "zip") {
        let mut zip = zip::ZipWriter::new(file);
        for (name, data) in &entries {
            zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
    } else {
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (name, data) in &entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, data.as_slice()).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
    }
    entries
}

/// A CA, an "Operator" token with a P-256 key "alice", her signing certificate `alice.pem` and
/// public key `alice.pub`.
fn setup() -> (Pki, String) {
    let pki = Pki::new();
    pki.hsm.init_token("Operator");
    let uri = pki.hsm.key("Operator", "alice", "ec-p256");
    pki.signing_cert(&uri, "CN=alice, O=SOS", "alice.pem");
    pki.ok(&["key", "public", "--key", &uri, "--out", "alice.pub"]);
    (pki, uri)
}

/// `archive sign` of `input` into `out` with `extra` arguments and environment.
fn sign(
    pki: &Pki,
    uri: &str,
    input: &str,
    out: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = pki.hsm.cmd();
    cmd.arg("--json")
        .arg("--state")
        .arg(pki.path("state"))
        .args(["archive", "sign", "--key", uri, "--cert", "alice.pem"])
        .args(["--in", input, "--out", out])
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn sign_ok(
    pki: &Pki,
    uri: &str,
    input: &str,
    out: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> serde_json::Value {
    let o = sign(pki, uri, input, out, extra, env);
    assert!(o.status.success(), "archive sign {extra:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

/// Check every `.sig` of `signed` with openssl over its object's bytes; return how many.
fn verify_all_with_openssl(pki: &Pki, signed: &Path) -> usize {
    let all = common::archive_entries(signed);
    let mut checked = 0;
    for (i, (name, data)) in all.iter().enumerate() {
        if !(name.ends_with(".workflow.json") || name.ends_with(".jobresource.json")) {
            continue;
        }
        let (sig_name, sig_b64) = &all[i + 1];
        assert_eq!(
            *sig_name,
            format!("{name}.sig"),
            "the .sig follows its object"
        );
        let sig = base64::engine::general_purpose::STANDARD
            .decode(String::from_utf8_lossy(sig_b64).trim())
            .unwrap();
        std::fs::write(pki.path("obj.bin"), data).unwrap();
        std::fs::write(pki.path("obj.sig"), sig).unwrap();
        let (ok, out) = pki.openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            "alice.pub",
            "-signature",
            "obj.sig",
            "obj.bin",
        ]);
        assert!(ok && out.contains("Verified OK"), "{name}: {out}");
        checked += 1;
    }
    checked
}

/// The stand-in network HSM, compiled into the test directory.
fn stand_in(pki: &Pki) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/stand-in-hsm/stand-in-hsm.c");
    let so = pki.path("stand-in-hsm.so");
    let (ok, out) = common::tool(
        "gcc",
        &[
            "-shared",
            "-fPIC",
            "-O2",
            "-I/usr/include/p11-kit-1",
            "-o",
            so.to_str().unwrap(),
            src.to_str().unwrap(),
            "-ldl",
        ],
        pki.hsm.dir.path(),
    );
    assert!(
        ok,
        "gcc could not build the stand-in (scripts/setup.sh installs gcc and libp11-kit-dev): {out}"
    );
    so
}

fn audit_records(pki: &Pki) -> Vec<serde_json::Value> {
    pki.json(&["audit", "show"])["records"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Nothing at `out`, and no temporary file beside it.
fn nothing_written(pki: &Pki, out: &str) {
    assert!(!pki.path(out).exists(), "{out} was written");
    let left: Vec<String> = std::fs::read_dir(pki.hsm.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!(".{out}")))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn parallel_output_is_the_one_session_output_and_every_signature_verifies() {
    let (pki, uri) = setup();
    for input in ["export.zip", "export.tar.gz"] {
        let source = export(&pki.path(input), 150);
        let one = format!("one-{input}");
        let v = sign_ok(&pki, &uri, input, &one, &["--sessions", "1"], &[]);
        assert_eq!(v["objects_signed"], 150, "{v}");
        let one_entries = common::archive_entries(&pki.path(&one));
        for n in ["2", "4", "7"] {
            let par = format!("par{n}-{input}");
            let v = sign_ok(&pki, &uri, input, &par, &["--sessions", n], &[]);
            assert_eq!(v["objects_signed"], 150, "{v}");
            let par_entries = common::archive_entries(&pki.path(&par));
            // Same entries in the same order with the same bytes, signatures aside (ECDSA
            // signatures differ from run to run).
            assert_eq!(par_entries.len(), one_entries.len());
            for ((pn, pd), (on, od)) in par_entries.iter().zip(&one_entries) {
                assert_eq!(pn, on, "entry order differs with {n} sessions");
                if !pn.ends_with(".sig") {
                    assert_eq!(pd, od, "{pn} differs with {n} sessions");
                }
            }
            assert_eq!(verify_all_with_openssl(&pki, &pki.path(&par)), 150);
            // The input's entries all came through unchanged.
            for (name, data) in &source {
                let got = par_entries.iter().find(|(n, _)| n == name).unwrap();
                assert_eq!(&got.1, data, "{name}");
            }
        }
        assert_eq!(verify_all_with_openssl(&pki, &pki.path(&one)), 150);
    }
    // Each run is recorded with the sessions it used.
    let sessions: Vec<String> = audit_records(&pki)
        .iter()
        .filter(|r| r["operation"] == "archive.sign")
        .map(|r| {
            let d = r["details"].to_string();
            let at = d.find("\"sessions\"").map(|i| &d[i..]).unwrap_or("");
            at.split('"').nth(3).unwrap_or("?").to_string()
        })
        .collect();
    assert_eq!(sessions, ["1", "2", "4", "7", "1", "2", "4", "7"]);
}

#[test]
fn a_token_failure_in_the_middle_stops_the_batch_and_leaves_no_output() {
    let (pki, uri) = setup();
    let so = stand_in(&pki);
    export(&pki.path("export.zip"), 200);
    export(&pki.path("export.tar.gz"), 200);
    let before = audit_records(&pki).len();
    let mut failures = 0;
    for (input, sessions) in [
        ("export.zip", "1"),
        ("export.zip", "4"),
        ("export.tar.gz", "8"),
    ] {
        let out = format!("signed-{sessions}-{input}");
        let o = sign(
            &pki,
            &uri,
            input,
            &out,
            &["--sessions", sessions],
            &[
                ("HSMSIGN_MODULE", so.to_str().unwrap()),
                ("STANDIN_MODULE", common::softhsm_module()),
                ("STANDIN_SIGN_DELAY_US", "200"),
                ("STANDIN_FAIL_SIGN_AT", "90"),
            ],
        );
        let e = stderr(&o);
        assert!(!o.status.success(), "{sessions} sessions: signing went on");
        assert_eq!(o.status.code(), Some(1), "{e}");
        // The error names the object, the token and the return code, and says what to do.
        assert!(e.contains(".json\" failed"), "no object named: {e}");
        assert!(e.contains("token \"Operator\""), "no token named: {e}");
        assert!(e.contains("CKR_DEVICE_ERROR"), "{e}");
        assert!(e.contains("running and reachable"), "{e}");
        assert!(!e.contains("panicked"), "{e}");
        nothing_written(&pki, &out);
        failures += 1;
        // The failed attempt is recorded.
        let records = audit_records(&pki);
        assert_eq!(records.len(), before + failures);
        let last = &records[records.len() - 1];
        assert_eq!(last["operation"], "archive.sign", "{last}");
        let why = last["result"]["failed"].as_str().unwrap_or_default();
        assert!(why.contains("CKR_DEVICE_ERROR"), "{last}");
        assert!(
            last["details"].to_string().contains("object=alice"),
            "{last}"
        );
    }
    let verified = pki.ok(&["audit", "verify"]);
    assert!(verified.contains("audit log OK"), "{verified}");
    // Without the fault, the same stand-in signs the whole batch.
    let v = sign_ok(
        &pki,
        &uri,
        "export.zip",
        "ok.zip",
        &["--sessions", "4"],
        &[
            ("HSMSIGN_MODULE", so.to_str().unwrap()),
            ("STANDIN_MODULE", common::softhsm_module()),
            ("STANDIN_SIGN_DELAY_US", "200"),
        ],
    );
    assert_eq!(v["objects_signed"], 200);
    assert_eq!(verify_all_with_openssl(&pki, &pki.path("ok.zip")), 200);
}

#[test]
fn the_session_default_follows_the_token() {
    let (pki, uri) = setup();
    let so = stand_in(&pki);
    export(&pki.path("export.zip"), 30);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let probe = |env: &[(&str, &str)]| -> serde_json::Value {
        let mut cmd = pki.hsm.cmd();
        cmd.args([
            "--json",
            "token",
            "probe",
            "--token",
            "pkcs11:token=Operator",
        ]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["token"]["signing_sessions"]
            .clone()
    };
    let recorded = |pki: &Pki| -> String {
        let records = audit_records(pki);
        let d = records[records.len() - 1]["details"].to_string();
        let at = d.find("\"sessions\"").map(|i| &d[i..]).unwrap_or("");
        at.split('"').nth(3).unwrap_or("?").to_string()
    };
    let module = so.to_str().unwrap();
    let real = common::softhsm_module();

    // SoftHSM2 as it is: no session limit, not removable: the cores (at most 16).
    let s = probe(&[]);
    assert_eq!(s["sessions"], cores.min(16), "{s}");
    sign_ok(&pki, &uri, "export.zip", "a.zip", &[], &[]);
    assert_eq!(recorded(&pki), cores.min(16).to_string());

    // A removable device (a card reader's slot): one session, whatever was free.
    let env = [
        ("HSMSIGN_MODULE", module),
        ("STANDIN_MODULE", real),
        ("STANDIN_REMOVABLE", "1"),
    ];
    let s = probe(&env);
    assert_eq!(s["sessions"], 1, "{s}");
    assert!(s["reason"].as_str().unwrap().contains("removable"), "{s}");
    sign_ok(&pki, &uri, "export.zip", "b.zip", &[], &env);
    assert_eq!(recorded(&pki), "1");

    // A token that serves two sessions: one is the logged-in one, one is free.
    let env = [
        ("HSMSIGN_MODULE", module),
        ("STANDIN_MODULE", real),
        ("STANDIN_MAX_SESSIONS", "2"),
    ];
    let s = probe(&env);
    assert_eq!(s["sessions"], 1, "{s}");
    assert!(
        s["reason"].as_str().unwrap().contains("free sessions"),
        "{s}"
    );
    sign_ok(&pki, &uri, "export.zip", "c.zip", &[], &env);
    assert_eq!(recorded(&pki), "1");

    // Asked for more than the token serves: fewer sessions, a notice, and the batch is signed.
    let env = [
        ("HSMSIGN_MODULE", module),
        ("STANDIN_MODULE", real),
        ("STANDIN_MAX_SESSIONS", "3"),
    ];
    let o = sign(
        &pki,
        &uri,
        "export.zip",
        "d.zip",
        &["--sessions", "8"],
        &env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("gave 2 of the 8 sessions"), "{e}");
    assert!(e.contains("CKR_SESSION_COUNT"), "{e}");
    assert_eq!(recorded(&pki), "2");
    assert_eq!(verify_all_with_openssl(&pki, &pki.path("d.zip")), 30);

    // A token with no session to spare: the logged-in session signs alone.
    let env = [
        ("HSMSIGN_MODULE", module),
        ("STANDIN_MODULE", real),
        ("STANDIN_MAX_SESSIONS", "1"),
    ];
    let o = sign(
        &pki,
        &uri,
        "export.zip",
        "e.zip",
        &["--sessions", "4"],
        &env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("gave 0 of the 4 sessions"),
        "{}",
        stderr(&o)
    );
    assert_eq!(recorded(&pki), "1");
    assert_eq!(verify_all_with_openssl(&pki, &pki.path("e.zip")), 30);

    // Out of range is a usage error before the token is opened.
    for bad in ["0", "65"] {
        let o = sign(&pki, &uri, "export.zip", "f.zip", &["--sessions", bad], &[]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("--sessions"), "{}", stderr(&o));
    }
}

/// The PKCS#11 calls of one `archive sign` run, as OpenSC's pkcs11-spy logs them.
fn spy_counts(pki: &Pki, uri: &str, input: &str, sessions: &str) -> Vec<(String, usize)> {
    let spy = [
        "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so",
        "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so",
        "/usr/lib/aarch64-linux-gnu/pkcs11-spy.so",
        "/usr/lib/pkcs11/pkcs11-spy.so",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("OpenSC's pkcs11-spy.so (apt-get install opensc-pkcs11)");
    let log = pki.path(&format!("spy-{sessions}-{input}.log"));
    let out = format!("spied-{sessions}-{input}");
    sign_ok(
        pki,
        uri,
        input,
        &out,
        &["--sessions", sessions],
        &[
            ("HSMSIGN_MODULE", spy),
            ("PKCS11SPY", common::softhsm_module()),
            ("PKCS11SPY_OUTPUT", log.to_str().unwrap()),
        ],
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in text.lines() {
        // "17: C_SignInit" and the like.
        let Some((n, f)) = line.split_once(": ") else {
            continue;
        };
        if !n.chars().all(|c| c.is_ascii_digit()) || !f.starts_with("C_") {
            continue;
        }
        let f = f.trim().to_string();
        match counts.iter_mut().find(|(g, _)| *g == f) {
            Some((_, c)) => *c += 1,
            None => counts.push((f, 1)),
        }
    }
    counts
}

fn count(counts: &[(String, usize)], f: &str) -> usize {
    counts.iter().find(|(g, _)| g == f).map_or(0, |(_, c)| *c)
}

#[test]
fn exactly_sign_init_and_sign_per_object_and_one_login() {
    let (pki, uri) = setup();
    export(&pki.path("small.zip"), 10);
    export(&pki.path("large.zip"), 60);
    for sessions in ["1", "3"] {
        let small = spy_counts(&pki, &uri, "small.zip", sessions);
        let large = spy_counts(&pki, &uri, "large.zip", sessions);
        for (counts, objects) in [(&small, 10), (&large, 60)] {
            assert_eq!(count(counts, "C_SignInit"), objects, "{counts:?}");
            assert_eq!(count(counts, "C_Sign"), objects, "{counts:?}");
            assert_eq!(count(counts, "C_Login"), 1, "{counts:?}");
        }
        // Nothing else grows with the number of objects: no per-object search or attribute
        // read, and the sessions opened depend on --sessions only.
        for (f, n) in small.iter() {
            if f == "C_SignInit" || f == "C_Sign" {
                continue;
            }
            assert_eq!(count(&large, f), *n, "{f} grows with the objects");
        }
        for (f, _) in large.iter() {
            assert!(
                count(&small, f) > 0 || f == "C_SignInit" || f == "C_Sign",
                "{f} only in the large run"
            );
        }
        assert_eq!(
            count(&large, "C_OpenSession"),
            1 + if sessions == "1" { 0 } else { 3 },
            "{large:?}"
        );
    }
}
