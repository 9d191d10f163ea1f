//! Keys marked CKA_ALWAYS_AUTHENTICATE (as YubiKey PIV slot 9c is through ykcs11) need a
//! context-specific login before every signature. SoftHSM2 enforces that, so this is tested on a
//! real token: keys made by OpenSC's pkcs11-tool with --always-auth.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{Pki, USER_PIN, softhsm_module, stderr};

fn always_auth_key(pki: &Pki, label: &str, id: &str, key_type: &str) -> String {
    pki.hsm.init_token(label);
    let (ok, out) = pki.hsm.tool(
        "pkcs11-tool",
        &[
            "--module",
            softhsm_module(),
            "--token-label",
            label,
            "--login",
            "--pin",
            USER_PIN,
            "--keypairgen",
            "--key-type",
            key_type,
            "--label",
            label,
            "--id",
            id,
            "--always-auth",
            "--usage-sign",
        ],
    );
    assert!(ok, "{out}");
    let uri = format!("pkcs11:token={label};object={label}");
    let v = pki.json(&["key", "inspect", "--key", &uri]);
    let attrs = v["attributes"].as_array().unwrap();
    assert!(
        attrs
            .iter()
            .any(|a| a[0] == "CKA_ALWAYS_AUTHENTICATE" && a[1] == "true"),
        "{v}"
    );
    pki.signing_cert(&uri, &format!("CN={label}"), &format!("{label}.pem"));
    uri
}

#[test]
fn context_specific_login_before_each_signature() {
    let pki = Pki::new();
    std::fs::create_dir(pki.path("export")).unwrap();
    let file = std::fs::File::create(pki.path("export.zip")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    for name in ["a.workflow.json", "b.workflow.json", "c.jobresource.json"] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, b"{\"TYPE\":\"Workflow\"}").unwrap();
    }
    zip.finish().unwrap();

    // RSA through CKM_SHA256_RSA_PKCS (multi-part): a login before each of the three signatures.
    let rsa = always_auth_key(&pki, "Officer9c", "9c", "rsa:2048");
    let v = pki.json(&[
        "archive",
        "sign",
        "--key",
        &rsa,
        "--cert",
        "Officer9c.pem",
        "--in",
        "export.zip",
        "--out",
        "signed.zip",
    ]);
    assert_eq!(v["objects_signed"], 3);
    pki.ok(&[
        "archive",
        "verify",
        "--in",
        "signed.zip",
        "--trusted",
        "issuing.pem",
        "--cert",
        "Officer9c.pem",
    ]);

    // EC: SoftHSM2 offers only single-part CKM_ECDSA, which cannot take the context-specific
    // login in between; the refusal must say so and leave nothing behind.
    let ec = always_auth_key(&pki, "OfficerEc", "9d", "EC:prime256v1");
    let out = pki.run(&[
        "archive",
        "sign",
        "--key",
        &ec,
        "--cert",
        "OfficerEc.pem",
        "--in",
        "export.zip",
        "--out",
        "ec.zip",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("CKA_ALWAYS_AUTHENTICATE"),
        "{}",
        stderr(&out)
    );
    assert!(!pki.path("ec.zip").exists());
}
