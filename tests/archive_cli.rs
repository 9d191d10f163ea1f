//! `hsmsign archive sign|verify` with operator keys on a SoftHSM2 token: every `.sig` checked
//! with `openssl dgst -verify` over the extracted object bytes.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use std::io::Write;

use base64::Engine;
use common::{Pki, stderr};

/// A small JS7 export: meta_inf, two workflows, a job resource, a lock (unsigned type).
fn export_entries() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("meta_inf", br#"{"jocVersion":"2.7.2","inventorySchemaVersion":"1.0.0","apiVersion":"1.0.0","versionId":"6f1c"}"#.to_vec()),
        ("Accounting/Daily/eod.workflow.json", b"{\n  \"TYPE\": \"Workflow\",\n  \"instructions\": []\n}\n".to_vec()),
        ("Accounting/Daily/start.workflow.json", br#"{"TYPE":"Workflow","timeZone":"Europe/Berlin"}"#.to_vec()),
        ("Accounting/Resources/db.jobresource.json", br#"{"TYPE":"JobResource","arguments":{}}"#.to_vec()),
        ("Accounting/Locks/one.lock.json", br#"{"TYPE":"Lock","limit":1}"#.to_vec()),
    ]
}

type Entries = Vec<(String, Vec<u8>)>;

fn write_zip(path: &std::path::Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    for (name, data) in export_entries() {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(&data).unwrap();
    }
    zip.finish().unwrap();
}

fn write_tar_gz(path: &std::path::Path) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in export_entries() {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

/// Issue an operator signing certificate for a new key of `alg` on the "Operator" token.
fn operator(pki: &Pki, label: &str, alg: &str) -> String {
    let uri = pki.hsm.key("Operator", label, alg);
    pki.signing_cert(&uri, &format!("CN={label}, O=SOS"), &format!("{label}.pem"));
    pki.ok(&[
        "key",
        "public",
        "--key",
        &uri,
        "--out",
        &format!("{label}.pub"),
    ]);
    uri
}

fn check_with_openssl(pki: &Pki, signed: &str, pubkey: &str, dgst: &str) -> usize {
    let all = common::archive_entries(&pki.path(signed));
    let mut checked = 0;
    for (name, data) in &all {
        if !(name.ends_with(".workflow.json") || name.ends_with(".jobresource.json")) {
            continue;
        }
        let sig_name = format!("{name}.sig");
        let (_, sig_b64) = all
            .iter()
            .find(|(n, _)| *n == sig_name)
            .expect("a .sig per object");
        let sig = base64::engine::general_purpose::STANDARD
            .decode(String::from_utf8_lossy(sig_b64).trim())
            .unwrap();
        std::fs::write(pki.path("obj.bin"), data).unwrap();
        std::fs::write(pki.path("obj.sig"), sig).unwrap();
        let (ok, out) = pki.openssl(&[
            "dgst",
            dgst,
            "-verify",
            pubkey,
            "-signature",
            "obj.sig",
            "obj.bin",
        ]);
        assert!(ok && out.contains("Verified OK"), "{name}: {out}");
        checked += 1;
    }
    // Unsigned types and meta_inf come through unchanged, with no .sig.
    let input: Vec<(String, Vec<u8>)> = export_entries()
        .into_iter()
        .map(|(n, d)| (n.to_string(), d))
        .collect();
    for (name, data) in &input {
        let got = all.iter().find(|(n, _)| n == name).expect("entry kept");
        assert_eq!(&got.1, data, "{name} must be copied byte for byte");
    }
    assert!(
        !all.iter()
            .any(|(n, _)| n == "meta_inf.sig" || n.ends_with(".lock.json.sig"))
    );
    checked
}

#[test]
fn sign_zip_and_tar_gz_with_p256_p384_and_rsa_keys() {
    let pki = Pki::new();
    pki.hsm.init_token("Operator");
    write_zip(&pki.path("export.zip"));
    write_tar_gz(&pki.path("export.tar.gz"));
    for (label, alg, algorithm, dgst) in [
        ("alice", "ec-p256", None, "-sha256"),
        ("bob", "ec-p384", Some("SHA512withECDSA"), "-sha512"),
        ("carol", "rsa-3072", None, "-sha256"),
    ] {
        let uri = operator(&pki, label, alg);
        for input in ["export.zip", "export.tar.gz"] {
            let out = format!("{label}-{input}");
            let mut args = vec![
                "archive",
                "sign",
                "--key",
                &uri,
                "--cert",
                &format!("{label}.pem"),
                "--in",
                input,
                "--out",
                &out,
            ]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
            if let Some(a) = algorithm {
                args.extend(["--algorithm".to_string(), a.to_string()]);
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let v = pki.json(&refs);
            assert_eq!(v["objects_signed"], 3, "{v}");
            assert_eq!(
                check_with_openssl(&pki, &out, &format!("{label}.pub"), dgst),
                3
            );
            // JS7's view: the issuing CA in trusted-x509-keys, the signer certificate sent along.
            let verify = pki.json(&[
                "archive",
                "verify",
                "--in",
                &out,
                "--trusted",
                "issuing.pem",
                "--cert",
                &format!("{label}.pem"),
            ]);
            assert_eq!(verify["accepted"], true, "{verify}");
        }
    }
    // Each signing run left one audit record.
    let audit = pki.json(&["audit", "show"]);
    let signs = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operation"] == "archive.sign")
        .count();
    assert_eq!(signs, 6);
}

#[test]
fn tampering_and_untrusted_signers_are_caught() {
    let pki = Pki::new();
    pki.hsm.init_token("Operator");
    write_zip(&pki.path("export.zip"));
    let uri = operator(&pki, "alice", "ec-p256");
    pki.ok(&[
        "archive",
        "sign",
        "--key",
        &uri,
        "--cert",
        "alice.pem",
        "--in",
        "export.zip",
        "--out",
        "signed.zip",
    ]);
    let good = common::archive_entries(&pki.path("signed.zip"));
    let rewrite = |name: &str, f: &dyn Fn(&mut Entries)| {
        let mut e = good.clone();
        f(&mut e);
        let file = std::fs::File::create(pki.path(name)).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        for (n, d) in &e {
            zip.start_file(n.as_str(), zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(d).unwrap();
        }
        zip.finish().unwrap();
    };
    rewrite("tampered-object.zip", &|e| {
        let i = e
            .iter()
            .position(|(n, _)| n.ends_with("eod.workflow.json"))
            .unwrap();
        e[i].1[5] ^= 0x20;
    });
    rewrite("tampered-sig.zip", &|e| {
        let i = e
            .iter()
            .position(|(n, _)| n.ends_with("start.workflow.json.sig"))
            .unwrap();
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(e[i].1.trim_ascii())
            .unwrap();
        let n = raw.len();
        raw[n - 3] ^= 0x01;
        e[i].1 = base64::engine::general_purpose::STANDARD
            .encode(raw)
            .into_bytes();
    });
    rewrite("swapped.zip", &|e| {
        let a = e
            .iter()
            .position(|(n, _)| n.ends_with("eod.workflow.json.sig"))
            .unwrap();
        let b = e
            .iter()
            .position(|(n, _)| n.ends_with("db.jobresource.json.sig"))
            .unwrap();
        let tmp = e[a].1.clone();
        e[a].1 = e[b].1.clone();
        e[b].1 = tmp;
    });
    for (file, bad) in [
        ("tampered-object.zip", vec!["eod.workflow.json"]),
        ("tampered-sig.zip", vec!["start.workflow.json"]),
        (
            "swapped.zip",
            vec!["eod.workflow.json", "db.jobresource.json"],
        ),
    ] {
        let out = pki.run(&[
            "archive",
            "verify",
            "--in",
            file,
            "--trusted",
            "issuing.pem",
            "--cert",
            "alice.pem",
        ]);
        assert_eq!(out.status.code(), Some(3), "{file}: {}", stderr(&out));
        let text = common::stdout(&out);
        for b in bad {
            assert!(
                text.lines().any(|l| l.starts_with("BAD") && l.contains(b)),
                "{file}: {b} not named in {text}"
            );
        }
    }
    // The untouched archive still passes, so the failures above are the tampering's.
    pki.ok(&[
        "archive",
        "verify",
        "--in",
        "signed.zip",
        "--trusted",
        "issuing.pem",
        "--cert",
        "alice.pem",
    ]);
    // Trusting only the root fails: JS7 builds no chains.
    let out = pki.run(&[
        "archive",
        "verify",
        "--in",
        "signed.zip",
        "--trusted",
        "root.pem",
        "--cert",
        "alice.pem",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // A signer certificate from a foreign CA fails.
    pki.hsm.openssl_req(
        "foreign",
        "/CN=Foreign CA",
        true,
        &["-addext", "basicConstraints=critical,CA:TRUE"],
    );
    let out = pki.run(&[
        "archive",
        "verify",
        "--in",
        "signed.zip",
        "--trusted",
        "foreign.pem",
        "--cert",
        "alice.pem",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // A trusted-x509-keys directory with the issuing CA works like JS7's.
    std::fs::create_dir(pki.path("trusted")).unwrap();
    std::fs::copy(pki.path("issuing.pem"), pki.path("trusted/issuing.pem")).unwrap();
    pki.ok(&[
        "archive",
        "verify",
        "--in",
        "signed.zip",
        "--trusted",
        "trusted",
        "--cert",
        "alice.pem",
        "--strict",
    ]);
}

#[test]
fn refusals_leave_no_output() {
    let pki = Pki::new();
    pki.hsm.init_token("Operator");
    write_zip(&pki.path("export.zip"));
    let uri = operator(&pki, "alice", "ec-p256");
    operator(&pki, "bob", "ec-p256");
    // A CA certificate for Alice's own key (made with openssl, as a confused officer might).
    pki.hsm.openssl_req(
        "other-ca",
        "/CN=Other CA",
        true,
        &["-addext", "basicConstraints=critical,CA:TRUE"],
    );
    pki.hsm.openssl_req("junk", "/CN=Alice as CA", false, &[]);
    std::fs::write(pki.path("ca.ext"), "basicConstraints=critical,CA:TRUE\n").unwrap();
    let (ok, out) = pki.openssl(&[
        "x509",
        "-req",
        "-in",
        "junk.csr",
        "-force_pubkey",
        "alice.pub",
        "-CA",
        "other-ca.pem",
        "-CAkey",
        "other-ca.key",
        "-extfile",
        "ca.ext",
        "-out",
        "alice-ca.pem",
    ]);
    assert!(ok, "{out}");
    let cases: &[(&[&str], i32, &str)] = &[
        // The certificate of another key.
        (&["--cert", "bob.pem"], 1, "but the signing key is"),
        // A CA certificate as signer.
        (&["--cert", "alice-ca.pem"], 1, "is a CA certificate"),
        // An algorithm JS7 does not know / that does not fit the key.
        (
            &["--cert", "alice.pem", "--algorithm", "SHA1withECDSA"],
            2,
            "SHA256withECDSA",
        ),
        (
            &["--cert", "alice.pem", "--algorithm", "SHA256withRSA"],
            1,
            "does not fit",
        ),
    ];
    for (extra, code, needle) in cases {
        let mut args = vec![
            "archive",
            "sign",
            "--key",
            &uri,
            "--in",
            "export.zip",
            "--out",
            "out.zip",
        ];
        args.extend_from_slice(extra);
        let out = pki.run(&args);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{extra:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(needle),
            "{extra:?}: want {needle:?}: {}",
            stderr(&out)
        );
        assert!(!pki.path("out.zip").exists());
    }
    // Signing a signed archive again needs --replace-signatures.
    pki.ok(&[
        "archive",
        "sign",
        "--key",
        &uri,
        "--cert",
        "alice.pem",
        "--in",
        "export.zip",
        "--out",
        "signed.zip",
    ]);
    let out = pki.run(&[
        "archive",
        "sign",
        "--key",
        &uri,
        "--cert",
        "alice.pem",
        "--in",
        "signed.zip",
        "--out",
        "again.zip",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--replace-signatures"),
        "{}",
        stderr(&out)
    );
    pki.ok(&[
        "archive",
        "sign",
        "--key",
        &uri,
        "--cert",
        "alice.pem",
        "--in",
        "signed.zip",
        "--out",
        "again.zip",
        "--replace-signatures",
    ]);
    // And never over an existing file.
    let out = pki.run(&[
        "archive",
        "sign",
        "--key",
        &uri,
        "--cert",
        "alice.pem",
        "--in",
        "export.zip",
        "--out",
        "signed.zip",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
}
