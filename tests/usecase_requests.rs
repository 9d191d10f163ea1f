//! Every use case's request is checked by its `validate()` without a token: here the module
//! path names no file and the officer refuses to be asked anything, so a validate() that
//! reached for a token or a PIN would fail the test. The state (a real SQLite file with a root
//! and an intermediate made on a SoftHSM2 token beforehand) is only read.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use std::cell::RefCell;
use std::path::PathBuf;

use common::Pki;
use hsmsign::archive::{ArchiveError, ArchiveSign};
use hsmsign::bundle::{BundleUseError, Js7Config, Js7Role, TrustedKeys, Truststore};
use hsmsign::ca::{
    AuditAnchor, CaError, CaExport, CaImport, CaInit, CaIntermediate, CaSignIntermediate,
    CertIssue, CertKey, CertRevoke, CrlGenerate,
};
use hsmsign::keys::pkcs11::PinError;
use hsmsign::keys::{KeyAccess, KeyError, KeyGenerate, KeyImport, Officer};
use hsmsign::store::Store;
use secrecy::SecretString;

/// An officer who must not be asked: validate() never prompts.
#[derive(Default)]
struct NotAsked {
    notices: RefCell<Vec<String>>,
}

impl Officer for NotAsked {
    fn secret(&self, what: &str) -> Result<SecretString, PinError> {
        panic!("validate() asked for a secret: {what}");
    }
    fn notice(&self, text: &str) {
        self.notices.borrow_mut().push(text.to_string());
    }
    fn touch(&self) {
        panic!("validate() waited for a touch");
    }
}

fn access(officer: &NotAsked) -> KeyAccess<'_> {
    KeyAccess {
        // No such module: loading it would fail every request below.
        module: Some(PathBuf::from("/nonexistent/no-pkcs11-module.so")),
        pin_source: None,
        allow_pin_value: false,
        strict_permissions: true,
        state: None,
        officer,
    }
}

struct Fixture {
    pki: Pki,
    store: Store,
}

fn fixture() -> Fixture {
    let pki = Pki::new();
    pki.hsm.openssl_req(
        "instance",
        "/CN=controller.example.com/O=SOS/C=DE",
        false,
        &[],
    );
    pki.hsm.openssl_req(
        "subca",
        "/CN=External Issuing CA/O=SOS/C=DE",
        false,
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let store = Store::open(&pki.path("state")).unwrap();
    Fixture { pki, store }
}

fn init(f: &Fixture, name: &str) -> CaInit {
    CaInit {
        name: name.into(),
        key: "pkcs11:token=CA;object=new-root".into(),
        subject: "CN=Another Root, O=SOS, C=DE".into(),
        days: None,
        path_len: None,
        out: Some(f.pki.path("new-root.pem")),
        allow_duplicate_dn: false,
        force: false,
    }
}

fn issue(f: &Fixture) -> CertIssue {
    CertIssue {
        ca: "issuing".into(),
        profile: "server-client".into(),
        key: CertKey::Csr(f.pki.path("instance.csr")),
        subject: None,
        san: Some("DNS:controller.example.com".into()),
        days: None,
        out: Some(f.pki.path("instance.pem")),
        chain_out: None,
        allow_duplicate_dn: false,
        force: false,
    }
}

#[test]
fn ca_requests_are_checked_against_the_state_without_a_token() {
    let f = fixture();
    let officer = NotAsked::default();
    let keys = access(&officer);
    let audited = f.store.audit_records(None).unwrap().len();

    // ca init
    let v = init(&f, "second-root").validate(&keys, &f.store).unwrap();
    assert_eq!(v.subject.to_string(), "CN=Another Root,O=SOS,C=DE");
    assert!(matches!(
        init(&f, "root").validate(&keys, &f.store),
        Err(CaError::NameTaken(n)) if n == "root"
    ));
    let bad_subject = CaInit {
        subject: "O=no common name".into(),
        ..init(&f, "x")
    };
    let e = bad_subject.validate(&keys, &f.store).unwrap_err();
    assert!(e.to_string().starts_with("--subject:"), "{e}");
    let existing_out = CaInit {
        out: Some(f.pki.path("root.pem")),
        ..init(&f, "x")
    };
    assert!(matches!(
        existing_out.validate(&keys, &f.store),
        Err(CaError::Output(_))
    ));
    let pin_in_uri = CaInit {
        key: "pkcs11:token=CA;object=k?pin-value=1234".into(),
        ..init(&f, "x")
    };
    let e = pin_in_uri.validate(&keys, &f.store).unwrap_err();
    assert!(
        !e.to_string().contains("1234"),
        "the PIN is never printed: {e}"
    );

    // ca intermediate: against the issuer recorded in the state
    let inter = CaIntermediate {
        name: "issuing-2".into(),
        issuer: "root".into(),
        key: "pkcs11:token=CA;object=issuing-2".into(),
        subject: "CN=Test Issuing CA 2, O=SOS, C=DE".into(),
        days: Some(365),
        path_len: None,
        out: None,
        allow_duplicate_dn: false,
        force: false,
    };
    inter.validate(&keys, &f.store).unwrap();
    let past = CaIntermediate {
        days: Some(7400),
        ..inter.clone()
    };
    let e = past.validate(&keys, &f.store);
    assert!(
        matches!(
            e,
            Err(CaError::PastIssuer { .. }) | Err(CaError::ValidityTooLong { .. })
        ),
        "{e:?}"
    );
    let unknown = CaIntermediate {
        issuer: "nobody".into(),
        ..inter
    };
    assert!(matches!(
        unknown.validate(&keys, &f.store),
        Err(CaError::UnknownCa(n)) if n == "nobody"
    ));

    // ca sign-intermediate: the CSR is read and its self-signature checked
    let sign = CaSignIntermediate {
        issuer: "root".into(),
        csr: f.pki.path("subca.csr"),
        days: Some(365),
        path_len: None,
        out: f.pki.path("subca.pem"),
        allow_duplicate_dn: false,
        force: false,
    };
    let v = sign.validate(&f.store).unwrap();
    assert_eq!(v.path_len, 0);
    assert!(v.subject.to_string().contains("External Issuing CA"));
    let missing = CaSignIntermediate {
        csr: f.pki.path("no-such.csr"),
        ..sign.clone()
    };
    assert!(missing.validate(&f.store).is_err());
    let onto_input = CaSignIntermediate {
        out: f.pki.path("subca.csr"),
        force: true,
        ..sign
    };
    assert!(matches!(
        onto_input.validate(&f.store),
        Err(CaError::Output(_))
    ));

    // ca import
    let import = CaImport {
        name: "root".into(),
        cert: f.pki.path("root.pem"),
        key: "pkcs11:token=CA;object=root-key".into(),
    };
    assert!(matches!(
        import.validate(&keys, &f.store),
        Err(CaError::NameTaken(_))
    ));
    CaImport {
        name: "adopted".into(),
        ..import
    }
    .validate(&keys, &f.store)
    .unwrap();

    // cert issue
    let v = issue(&f).validate(&keys, &f.store).unwrap();
    assert_eq!(
        v.subject.to_string(),
        "C=DE,O=SOS,CN=controller.example.com"
    );
    assert_eq!(v.sans.len(), 1);
    let ca_profile = CertIssue {
        profile: "intermediate".into(),
        ..issue(&f)
    };
    assert!(matches!(
        ca_profile.validate(&keys, &f.store),
        Err(CaError::Usage(_))
    ));
    let token_key_without_subject = CertIssue {
        key: CertKey::Token("pkcs11:token=Operator;object=alice".into()),
        ..issue(&f)
    };
    assert!(matches!(
        token_key_without_subject.validate(&keys, &f.store),
        Err(CaError::Usage(m)) if m.contains("--subject")
    ));
    let too_long = CertIssue {
        days: Some(20_000),
        ..issue(&f)
    };
    assert!(too_long.validate(&keys, &f.store).is_err());
    let unknown_ca = CertIssue {
        ca: "nobody".into(),
        ..issue(&f)
    };
    assert!(matches!(
        unknown_ca.validate(&keys, &f.store),
        Err(CaError::UnknownCa(_))
    ));

    // cert revoke, crl generate, audit anchor, ca export
    let revoke = CertRevoke {
        ca: "issuing".into(),
        serial: "not hex".into(),
        reason: "superseded".into(),
    };
    assert!(matches!(revoke.validate(&f.store), Err(CaError::Usage(_))));
    let revoke = CertRevoke {
        serial: "4A:1F".into(),
        reason: "tired".into(),
        ..revoke
    };
    assert!(matches!(revoke.validate(&f.store), Err(CaError::Usage(_))));
    let crl = CrlGenerate {
        ca: "issuing".into(),
        days: 7,
        out: f.pki.path("issuing.crl"),
        force: false,
    };
    crl.validate(&f.store).unwrap();
    assert!(matches!(
        CrlGenerate { days: 400, ..crl }.validate(&f.store),
        Err(CaError::CrlTooLong { .. })
    ));
    assert!(
        AuditAnchor {
            ca: "nobody".into()
        }
        .validate(&f.store)
        .is_err()
    );
    AuditAnchor { ca: "root".into() }
        .validate(&f.store)
        .unwrap();
    let export = CaExport {
        name: "issuing".into(),
        chain: true,
        out: f.pki.path("chain.pem"),
        force: false,
    };
    assert_eq!(export.validate(&f.store).unwrap().len(), 2);
    assert!(matches!(
        CaExport {
            out: f.pki.path("bundle.pem"),
            ..export
        }
        .validate(&f.store),
        Err(CaError::Output(_))
    ));
    // validate() wrote nothing: no output appeared and the audit log did not grow.
    for name in [
        "new-root.pem",
        "subca.pem",
        "instance.pem",
        "issuing.crl",
        "chain.pem",
    ] {
        assert!(!f.pki.path(name).exists(), "{name}");
    }
    let reopened = Store::open(&f.pki.path("state")).unwrap();
    assert_eq!(reopened.audit_records(None).unwrap().len(), audited);
}

#[test]
fn key_archive_and_bundle_requests_are_checked_without_a_token() {
    let f = fixture();
    let officer = NotAsked::default();
    let keys = access(&officer);

    let generate = KeyGenerate {
        key: "pkcs11:token=CA;object=next".into(),
        algorithm: "ec-p384".into(),
        ..KeyGenerate::default()
    };
    generate.validate(&keys).unwrap();
    let bad_alg = KeyGenerate {
        algorithm: "ed25519".into(),
        ..generate.clone()
    };
    assert!(matches!(bad_alg.validate(&keys), Err(KeyError::Usage(_))));
    let no_label = KeyGenerate {
        key: "pkcs11:token=CA".into(),
        ..generate
    };
    assert!(matches!(
        no_label.validate(&keys),
        Err(KeyError::Usage(m)) if m.contains("object=LABEL")
    ));
    KeyImport {
        key: "pkcs11:token=CA;object=migrated".into(),
        from: f.pki.path("instance.key"),
    }
    .validate(&keys)
    .unwrap();

    let archive = f.pki.path("export.zip");
    common::write_zip(&archive, &[("a.workflow.json", b"{}")]);
    let sign = ArchiveSign {
        key: "pkcs11:token=CA;object=root-key".into(),
        cert: f.pki.path("root.pem"),
        input: archive.clone(),
        out: f.pki.path("signed.zip"),
        algorithm: None,
        replace_signatures: false,
        force: false,
        strict: false,
        sessions: None,
    };
    sign.validate(&keys).unwrap();
    assert!(matches!(
        ArchiveSign {
            sessions: Some(0),
            ..sign.clone()
        }
        .validate(&keys),
        Err(ArchiveError::Usage(_))
    ));
    assert!(matches!(
        ArchiveSign {
            algorithm: Some("MD5withRSA".into()),
            ..sign.clone()
        }
        .validate(&keys),
        Err(ArchiveError::Usage(_))
    ));
    assert!(matches!(
        ArchiveSign {
            out: archive,
            force: true,
            ..sign.clone()
        }
        .validate(&keys),
        Err(ArchiveError::Output(_))
    ));
    assert!(
        ArchiveSign {
            cert: f.pki.path("instance.csr"),
            ..sign
        }
        .validate(&keys)
        .is_err()
    );

    let trust = Truststore {
        cas: vec!["root".into(), "issuing".into()],
        out: f.pki.path("truststore.p12"),
        pkcs12: false,
        password_source: Some("env:NOPE".into()),
        force: false,
    };
    assert!(matches!(
        trust.validate(&f.store),
        Err(BundleUseError::Usage(_))
    ));
    let trust = Truststore {
        pkcs12: true,
        ..trust
    };
    assert_eq!(trust.validate(&f.store).unwrap().len(), 2);
    let twice = TrustedKeys {
        cas: vec!["issuing".into(), "issuing".into()],
        out: f.pki.path("trusted"),
        force: false,
    };
    assert!(matches!(
        twice.validate(&f.store),
        Err(BundleUseError::Usage(_))
    ));
    Js7Config {
        cert: f.pki.path("issuing.pem"),
        role: Js7Role::Controller,
        alias: None,
        keystore: None,
        password_source: None,
    }
    .validate()
    .unwrap();
    assert!(officer.notices.borrow().is_empty(), "{:?}", officer.notices);
    for name in ["signed.zip", "truststore.p12", "trusted"] {
        assert!(!f.pki.path(name).exists(), "{name}");
    }
}
