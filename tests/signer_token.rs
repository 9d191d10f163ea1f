//! The Signer over a real SoftHSM2 key: every algorithm, checked with `openssl dgst -verify`.
//!
//! The library reads SOFTHSM2_CONF from the environment, and setting the environment is unsafe
//! in-process, so the signing half runs in a child process of this test binary (the ignored test
//! `child_signs_with_the_library`) started with this test's token directory.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use std::path::PathBuf;

use common::{Hsm, tool};
use hsmsign::keys::pkcs11::{Module, PinError, PinSource, Pkcs11Uri};
use hsmsign::signer::{SignatureAlgorithm, SigningKey, sign};
use secrecy::SecretString;

const KEYS: [(&str, &str, SignatureAlgorithm, &str); 5] = [
    (
        "p256",
        "ec-p256",
        SignatureAlgorithm::EcdsaSha256,
        "-sha256",
    ),
    (
        "p384",
        "ec-p384",
        SignatureAlgorithm::EcdsaSha384,
        "-sha384",
    ),
    (
        "p256b",
        "ec-p256",
        SignatureAlgorithm::EcdsaSha512,
        "-sha512",
    ),
    ("rsa", "rsa-3072", SignatureAlgorithm::RsaSha256, "-sha256"),
    ("rsab", "rsa-3072", SignatureAlgorithm::RsaSha512, "-sha512"),
];

const MESSAGE: &[u8] = b"{\"TYPE\":\"Workflow\",\"instructions\":[]}\n";

#[test]
fn token_signatures_verify_with_openssl() {
    let hsm = Hsm::with_token("Ops");
    for (label, alg, _, _) in KEYS {
        hsm.key("Ops", label, alg);
    }
    std::fs::write(hsm.path("msg"), MESSAGE).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_signs_with_the_library",
            "--ignored",
            "--nocapture",
        ])
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env("HSMSIGN_TEST_DIR", hsm.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (label, _, alg, dgst) in KEYS {
        let (ok, out) = tool(
            "openssl",
            &[
                "dgst",
                dgst,
                "-verify",
                &format!("{label}.pub"),
                "-signature",
                &format!("{label}.sig"),
                "msg",
            ],
            hsm.dir.path(),
        );
        assert!(ok && out.contains("Verified OK"), "{label} {alg}: {out}");
    }
    // And a changed message does not verify: the check above can fail.
    std::fs::write(hsm.path("msg"), b"tampered").unwrap();
    let (ok, _) = tool(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            "p256.pub",
            "-signature",
            "p256.sig",
            "msg",
        ],
        hsm.dir.path(),
    );
    assert!(!ok);
}

fn no_prompt(what: &str) -> Result<SecretString, PinError> {
    Err(PinError::NoTerminal { what: what.into() })
}

#[test]
#[ignore = "run by token_signatures_verify_with_openssl in a child process"]
fn child_signs_with_the_library() {
    let dir = PathBuf::from(std::env::var("HSMSIGN_TEST_DIR").expect("started by the parent test"));
    let module = Module::load(std::path::Path::new(common::softhsm_module())).unwrap();
    let token = Pkcs11Uri::parse("pkcs11:token=Ops").unwrap();
    let mut session = module.open(&token).unwrap();
    session
        .login(
            &module,
            &PinSource::File(dir.join("pin")),
            &no_prompt,
            false,
        )
        .unwrap();
    for (label, _, alg, _) in KEYS {
        let uri = Pkcs11Uri::parse(&format!("pkcs11:token=Ops;object={label}")).unwrap();
        let key = session.signing_key(&uri).unwrap();
        let sig = sign(&key, alg, MESSAGE).unwrap();
        std::fs::write(dir.join(format!("{label}.sig")), &sig).unwrap();
        std::fs::write(dir.join(format!("{label}.pub")), key.public_key().to_pem()).unwrap();
    }
    // An algorithm that does not fit the key is refused before the token is asked.
    let rsa = session
        .signing_key(&Pkcs11Uri::parse("pkcs11:token=Ops;object=rsa").unwrap())
        .unwrap();
    let err = sign(&rsa, SignatureAlgorithm::EcdsaSha256, MESSAGE).unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
    drop(rsa);
    drop(session);
    module.finalize();
}
