//! Issuance tests: every profile, under P-256 and P-384 CAs, checked by the openssl command line.

use std::path::{Path, PathBuf};

use time::Duration;

use super::*;
use crate::signer::soft::SoftKey;
use crate::signer::{KeyAlgorithm, SignError};
use crate::x509::crl::{CrlParams, RevocationReason, RevokedCertificate, build_crl, crl_to_pem};
use crate::x509::csr::parse_csr;
use crate::x509::profile::ProfileError;
use crate::x509::testutil::{openssl, openssl_ok, openssl_status};

fn now() -> OffsetDateTime {
    whole_seconds(OffsetDateTime::now_utc())
}

fn serial(n: u8) -> Serial {
    // 16 bytes with the high bit set, as a random draw may give.
    let mut bytes = [n; 16];
    bytes[0] = 0x80 | n;
    Serial::new(&bytes).unwrap()
}

fn dn(s: &str) -> DistinguishedName {
    DistinguishedName::parse(s).unwrap()
}

/// Issue with defaults: validity from an hour ago for the profile's default period.
// The arguments are IssueParams' fields plus issuer and key; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
fn issue_simple(
    subject: &str,
    key: &PublicKey,
    profile: Profile,
    n: u8,
    sans: &[SanEntry],
    path_len: Option<u8>,
    issuer: Option<&CaCertificate>,
    signer: &dyn SigningKey,
) -> IssuedCertificate {
    let subject = dn(subject);
    let serial = serial(n);
    let not_before = now() - Duration::hours(1);
    let params = IssueParams {
        subject: &subject,
        public_key: key,
        profile,
        serial: &serial,
        not_before,
        not_after: profile.default_not_after(not_before),
        sans,
        path_len,
    };
    issue(&params, issuer, signer).unwrap_or_else(|e| panic!("{profile}: {e}"))
}

fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The extensions section of `openssl x509 -text`: (name, critical, value lines joined).
fn openssl_extensions(cert: &Path) -> Vec<(String, bool, String)> {
    let text = String::from_utf8(openssl(&["x509", "-in", s(cert), "-noout", "-text"])).unwrap();
    let mut out: Vec<(String, bool, String)> = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim() == "X509v3 extensions:" {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent <= 8 {
            break;
        }
        if indent == 12 {
            let head = line.trim();
            let (name, critical) = match head.strip_suffix("critical") {
                Some(n) => (n.trim().trim_end_matches(':').to_string(), true),
                None => (head.trim_end_matches(':').to_string(), false),
            };
            out.push((name, critical, String::new()));
        } else if let Some(last) = out.last_mut() {
            if !last.2.is_empty() {
                last.2.push(' ');
            }
            last.2.push_str(line.trim());
        }
    }
    out
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What `openssl x509 -text` must show for a certificate of `profile`, exactly.
fn expected_extensions(
    profile: Profile,
    key: &PublicKey,
    aki: &[u8],
    sans: &str,
    path_len: Option<u8>,
) -> Vec<(String, bool, String)> {
    let rsa = matches!(key.algorithm(), KeyAlgorithm::Rsa(_));
    let mut v: Vec<(String, bool, String)> = Vec::new();
    let bc = match (profile.is_ca(), path_len) {
        (true, Some(p)) => format!("CA:TRUE, pathlen:{p}"),
        (true, None) => "CA:TRUE".into(),
        (false, _) => "CA:FALSE".into(),
    };
    v.push(("X509v3 Basic Constraints".into(), true, bc));
    let tls_ku = if rsa {
        "Digital Signature, Key Encipherment"
    } else {
        "Digital Signature"
    };
    let (ku, eku) = match profile {
        Profile::Root | Profile::Intermediate => ("Certificate Sign, CRL Sign", None),
        Profile::Server => (tls_ku, Some("TLS Web Server Authentication")),
        Profile::Client => ("Digital Signature", Some("TLS Web Client Authentication")),
        Profile::ServerClient => (
            tls_ku,
            Some("TLS Web Server Authentication, TLS Web Client Authentication"),
        ),
        Profile::Signing => ("Digital Signature, Non Repudiation", Some("Code Signing")),
    };
    v.push(("X509v3 Key Usage".into(), true, ku.into()));
    if let Some(eku) = eku {
        v.push(("X509v3 Extended Key Usage".into(), false, eku.into()));
    }
    if !sans.is_empty() {
        v.push(("X509v3 Subject Alternative Name".into(), false, sans.into()));
    }
    v.push((
        "X509v3 Subject Key Identifier".into(),
        false,
        colon_hex(&key.key_identifier()),
    ));
    v.push((
        "X509v3 Authority Key Identifier".into(),
        false,
        colon_hex(aki),
    ));
    v
}

/// An RSA-2048 public key made by openssl.
fn openssl_rsa_key(dir: &Path) -> PublicKey {
    let key = dir.join("rsa.key");
    openssl_ok(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        s(&key),
    ]);
    let der = openssl(&["pkey", "-in", s(&key), "-pubout", "-outform", "DER"]);
    PublicKey::from_spki_der(&der).unwrap()
}

fn verify(
    root: &Path,
    untrusted: Option<&Path>,
    leaf: &Path,
    purpose: Option<&str>,
) -> (bool, String) {
    let mut args = vec!["verify", "-x509_strict", "-CAfile", s(root)];
    if let Some(u) = untrusted {
        args.extend_from_slice(&["-untrusted", s(u)]);
    }
    if let Some(p) = purpose {
        args.extend_from_slice(&["-purpose", p]);
    }
    args.push(s(leaf));
    openssl_status(&args)
}

/// Root, intermediate and one certificate of every end-entity profile (plus RSA server and a
/// leaf directly under the root), for the given CA key kinds; each checked by openssl.
fn chain_for(root_key: &SoftKey, inter_key: &SoftKey, expect_sig: [&str; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = issue_simple(
        "CN=JS7 Root CA, OU=IT Operations, O=SOS, L=Berlin, ST=Berlin, C=DE",
        root_key.public_key(),
        Profile::Root,
        1,
        &[],
        None,
        None,
        root_key,
    );
    let root_path = write(d, "root.pem", &root.to_pem());
    let root_ca = CaCertificate::parse(root.der.as_slice(), "root").unwrap();
    assert!(root_ca.is_self_signed());
    assert_eq!(root.capped_from, None);

    let inter = issue_simple(
        "CN=JS7 Issuing CA, O=SOS, C=DE",
        inter_key.public_key(),
        Profile::Intermediate,
        2,
        &[],
        Some(0),
        Some(&root_ca),
        root_key,
    );
    let inter_path = write(d, "inter.pem", &inter.to_pem());
    let inter_ca = CaCertificate::parse(inter.to_pem().as_bytes(), "inter").unwrap();
    assert_eq!(inter_ca.path_len(), Some(0));
    assert!(!inter_ca.is_self_signed());

    // What openssl says about the CAs.
    assert_eq!(
        openssl_extensions(&root_path),
        expected_extensions(
            Profile::Root,
            root_key.public_key(),
            &root_key.public_key().key_identifier(),
            "",
            None
        )
    );
    assert_eq!(
        openssl_extensions(&inter_path),
        expected_extensions(
            Profile::Intermediate,
            inter_key.public_key(),
            &root_key.public_key().key_identifier(),
            "",
            Some(0)
        )
    );
    let subject = String::from_utf8(openssl(&[
        "x509",
        "-in",
        s(&root_path),
        "-noout",
        "-subject",
        "-issuer",
        "-nameopt",
        "compat",
    ]))
    .unwrap();
    assert_eq!(
        subject,
        "subject=/C=DE/ST=Berlin/L=Berlin/O=SOS/OU=IT Operations/CN=JS7 Root CA\n\
         issuer=/C=DE/ST=Berlin/L=Berlin/O=SOS/OU=IT Operations/CN=JS7 Root CA\n"
    );
    for (path, sig) in [(&root_path, expect_sig[0]), (&inter_path, expect_sig[0])] {
        let text =
            String::from_utf8(openssl(&["x509", "-in", s(path), "-noout", "-text"])).unwrap();
        assert!(
            text.contains(&format!("Signature Algorithm: {sig}")),
            "{sig} not in\n{text}"
        );
    }
    let (ok, out) = verify(&root_path, None, &inter_path, None);
    assert!(ok, "{out}");
    let (ok, out) = verify(&root_path, None, &root_path, None);
    assert!(ok, "{out}");

    // Every end-entity profile, under the intermediate; an RSA server too.
    let rsa = openssl_rsa_key(d);
    let sans = [
        SanEntry::Dns("agent-1.example.com".into()),
        SanEntry::Ip("192.0.2.10".parse().unwrap()),
    ];
    let san_text = "DNS:agent-1.example.com, IP Address:192.0.2.10";
    let leaf_keys = [SoftKey::p256(21), SoftKey::p384(22)];
    let mut n = 10;
    let mut cases: Vec<(Profile, &PublicKey, bool)> = Vec::new();
    for k in &leaf_keys {
        for p in [
            Profile::Server,
            Profile::Client,
            Profile::ServerClient,
            Profile::Signing,
        ] {
            cases.push((p, k.public_key(), p != Profile::Client));
        }
    }
    cases.push((Profile::Server, &rsa, true));
    cases.push((Profile::ServerClient, &rsa, true));
    cases.push((Profile::Client, &rsa, false));
    for (profile, key, with_san) in cases {
        n += 1;
        let leaf_sans: &[SanEntry] = if with_san { &sans } else { &[] };
        let leaf = issue_simple(
            "CN=agent-1.example.com, O=SOS, C=DE",
            key,
            profile,
            n,
            leaf_sans,
            None,
            Some(&inter_ca),
            inter_key,
        );
        assert_eq!(
            leaf.signature_algorithm.oid(),
            match expect_sig[1] {
                "ecdsa-with-SHA256" => "1.2.840.10045.4.3.2",
                _ => "1.2.840.10045.4.3.3",
            }
        );
        let path = write(d, &format!("leaf{n}.pem"), &leaf.to_pem());
        let label = format!("{profile} {}", key.algorithm());
        assert_eq!(
            openssl_extensions(&path),
            expected_extensions(
                profile,
                key,
                &inter_key.public_key().key_identifier(),
                if with_san { san_text } else { "" },
                None
            ),
            "{label}"
        );
        let (ok, out) = verify(&root_path, Some(&inter_path), &path, None);
        assert!(ok, "{label}: {out}");
        let server_ok = matches!(profile, Profile::Server | Profile::ServerClient);
        let client_ok = matches!(profile, Profile::Client | Profile::ServerClient);
        let (ok, out) = verify(&root_path, Some(&inter_path), &path, Some("sslserver"));
        assert_eq!(ok, server_ok, "{label} sslserver: {out}");
        let (ok, out) = verify(&root_path, Some(&inter_path), &path, Some("sslclient"));
        assert_eq!(ok, client_ok, "{label} sslclient: {out}");
        // Serial as drawn, positive; key as given.
        let serial_line =
            String::from_utf8(openssl(&["x509", "-in", s(&path), "-noout", "-serial"])).unwrap();
        assert_eq!(
            serial_line.trim(),
            format!("serial={}", leaf.serial.to_hex().to_uppercase())
        );
        let spki = openssl(&["x509", "-in", s(&path), "-noout", "-pubkey"]);
        assert_eq!(String::from_utf8(spki).unwrap(), key.to_pem(), "{label}");
        let text =
            String::from_utf8(openssl(&["x509", "-in", s(&path), "-noout", "-text"])).unwrap();
        assert!(
            text.contains(&format!("Signature Algorithm: {}", expect_sig[1])),
            "{label}"
        );
        assert!(text.contains("Version: 3 (0x2)"), "{label}");
    }

    // A leaf directly under the root.
    let leaf = issue_simple(
        "CN=joc.example.com",
        leaf_keys[0].public_key(),
        Profile::Server,
        99,
        &[SanEntry::Dns("joc.example.com".into())],
        None,
        Some(&root_ca),
        root_key,
    );
    let path = write(d, "direct.pem", &leaf.to_pem());
    let (ok, out) = verify(&root_path, None, &path, Some("sslserver"));
    assert!(ok, "{out}");

    // The intermediate (pathlen 0) may not certify another CA.
    let subject = dn("CN=Sub CA");
    let serial = serial(50);
    let params = IssueParams {
        subject: &subject,
        public_key: leaf_keys[0].public_key(),
        profile: Profile::Intermediate,
        serial: &serial,
        not_before: now(),
        not_after: now() + Duration::days(30),
        sans: &[],
        path_len: None,
    };
    let err = issue(&params, Some(&inter_ca), inter_key).unwrap_err();
    assert!(
        matches!(
            err,
            IssueError::PathLength {
                issuer_path_len: 0,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn p256_chain_every_profile_verifies_with_openssl() {
    chain_for(
        &SoftKey::p256(1),
        &SoftKey::p256(2),
        ["ecdsa-with-SHA256", "ecdsa-with-SHA256"],
    );
}

#[test]
fn p384_chain_every_profile_verifies_with_openssl() {
    chain_for(
        &SoftKey::p384(3),
        &SoftKey::p384(4),
        ["ecdsa-with-SHA384", "ecdsa-with-SHA384"],
    );
}

#[test]
fn p384_root_over_p256_intermediate() {
    chain_for(
        &SoftKey::p384(5),
        &SoftKey::p256(6),
        ["ecdsa-with-SHA384", "ecdsa-with-SHA256"],
    );
}

#[test]
fn validity_is_capped_at_the_issuer_and_bounded_by_the_profile() {
    let root_key = SoftKey::p256(1);
    let subject = dn("CN=Short Root");
    let sn = serial(1);
    let start = now();
    let params = IssueParams {
        subject: &subject,
        public_key: root_key.public_key(),
        profile: Profile::Root,
        serial: &sn,
        not_before: start,
        not_after: start + Duration::days(365),
        sans: &[],
        path_len: Some(1),
    };
    let root = issue(&params, None, &root_key).unwrap();
    let root_ca = CaCertificate::parse(&root.der, "root").unwrap();
    assert_eq!(root_ca.not_after(), start + Duration::days(365));

    // An intermediate asking for 10 years ends with the root.
    let inter_key = SoftKey::p256(2);
    let inter = issue_simple(
        "CN=Inter",
        inter_key.public_key(),
        Profile::Intermediate,
        2,
        &[],
        None,
        Some(&root_ca),
        &root_key,
    );
    assert_eq!(inter.not_after, root_ca.not_after());
    assert!(inter.capped_from.is_some());
    assert!(inter.notice().unwrap().contains("shortened"));
    // The pathlen 1 root lets an intermediate ask for pathlen 0 but not 1.
    let sn2 = serial(3);
    let sub = dn("CN=Sub");
    let mut p = IssueParams {
        subject: &sub,
        public_key: inter_key.public_key(),
        profile: Profile::Intermediate,
        serial: &sn2,
        not_before: start,
        not_after: start + Duration::days(30),
        sans: &[],
        path_len: Some(1),
    };
    assert!(matches!(
        issue(&p, Some(&root_ca), &root_key),
        Err(IssueError::PathLength {
            issuer_path_len: 1,
            ..
        })
    ));
    p.path_len = Some(0);
    assert!(
        issue(&p, Some(&root_ca), &root_key)
            .unwrap()
            .capped_from
            .is_none()
    );

    // Too long for the profile; end before start; issuer expired.
    p.path_len = None;
    p.profile = Profile::Server;
    p.sans = &[];
    let sans = [SanEntry::Dns("a.example.com".into())];
    p.sans = &sans;
    p.not_after = start + Duration::days(366 * 11);
    assert!(matches!(
        issue(&p, Some(&root_ca), &root_key),
        Err(IssueError::ValidityTooLong { max_years: 10, .. })
    ));
    p.not_after = start;
    assert!(matches!(
        issue(&p, Some(&root_ca), &root_key),
        Err(IssueError::Validity(_))
    ));
    p.not_before = start + Duration::days(400);
    p.not_after = start + Duration::days(500);
    assert!(matches!(
        issue(&p, Some(&root_ca), &root_key),
        Err(IssueError::IssuerExpired { .. })
    ));
}

#[test]
fn wrong_keys_and_issuer_choices_are_refused() {
    let root_key = SoftKey::p256(1);
    let other = SoftKey::p256(2);
    let subject = dn("CN=Root");
    let sn = serial(1);
    let start = now();
    let mut p = IssueParams {
        subject: &subject,
        public_key: other.public_key(),
        profile: Profile::Root,
        serial: &sn,
        not_before: start,
        not_after: start + Duration::days(10),
        sans: &[],
        path_len: None,
    };
    assert!(matches!(
        issue(&p, None, &root_key),
        Err(IssueError::SelfSignedKeyMismatch { .. })
    ));
    p.public_key = root_key.public_key();
    let root = issue(&p, None, &root_key).unwrap();
    let root_ca = CaCertificate::parse(&root.der, "root").unwrap();
    assert!(matches!(
        issue(&p, Some(&root_ca), &root_key),
        Err(IssueError::IssuerChoice(_))
    ));
    p.profile = Profile::Client;
    p.public_key = other.public_key();
    assert!(matches!(
        issue(&p, None, &root_key),
        Err(IssueError::IssuerChoice(_))
    ));
    assert!(matches!(
        issue(&p, Some(&root_ca), &other),
        Err(IssueError::IssuerKeyMismatch { .. })
    ));
    p.profile = Profile::Server;
    assert!(matches!(
        issue(&p, Some(&root_ca), &root_key),
        Err(IssueError::Profile(ProfileError::SanRequired { .. }))
    ));
}

#[test]
fn serials_parse_as_openssl_prints_them() {
    let serial = Serial::parse("00:1A:2b:03").unwrap();
    assert_eq!(serial.to_hex(), "1a2b03");
    assert_eq!(serial.bytes(), [0x1a, 0x2b, 0x03]);
    assert_eq!(
        Serial::from_der_integer(&[0x00, 0x1a, 0x2b, 0x03]).unwrap(),
        serial
    );
    assert_eq!(Serial::parse("abc").unwrap().bytes(), [0x0a, 0xbc]);
    assert_eq!(Serial::parse("0XAbC").unwrap().bytes(), [0x0a, 0xbc]);
    assert!(Serial::parse("0").is_err());
    assert!(Serial::parse("").is_err());
    assert!(Serial::parse("xyz").is_err());
    assert!(Serial::parse(&"1".repeat(41)).is_err());
    assert!(Serial::from_der_integer(&[0x80, 1]).is_err());
    // What openssl prints for a certificate we issued reads back as its serial.
    let dir = tempfile::tempdir().unwrap();
    let key = SoftKey::p256(1);
    let issued = issue_simple(
        "CN=Serial Root",
        key.public_key(),
        Profile::Root,
        3,
        &[],
        None,
        None,
        &key,
    );
    let cert = write(dir.path(), "root.pem", &issued.to_pem());
    let printed =
        String::from_utf8(openssl(&["x509", "-in", s(&cert), "-noout", "-serial"])).unwrap();
    let printed = printed.trim().trim_start_matches("serial=");
    assert_eq!(Serial::parse(printed).unwrap(), issued.serial);
    assert_eq!(printed.to_ascii_lowercase(), issued.serial.to_string());
}

#[test]
fn ca_certificates_are_checked_on_import() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An openssl-made root over a key we also hold: we can import it and issue under it,
    // and the issuer name in what we issue is openssl's subject byte for byte.
    let key = SoftKey::p256(40);
    let sk = p256::SecretKey::from_slice(&[40; 32]).unwrap();
    let key_path = write(d, "ca.key", &sk.to_sec1_pem(Default::default()).unwrap());
    let ca_path = d.join("ca.pem");
    openssl_ok(&[
        "req",
        "-x509",
        "-new",
        "-key",
        s(&key_path),
        "-out",
        s(&ca_path),
        "-days",
        "30",
        "-subj",
        "/C=DE/O=Other Org/CN=Imported Root",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    let ca = CaCertificate::parse(&std::fs::read(&ca_path).unwrap(), "ca.pem").unwrap();
    assert_eq!(ca.warnings(), [] as [String; 0]);
    assert_eq!(ca.subject(), "CN=Imported Root,O=Other Org,C=DE");
    assert_eq!(ca.public_key(), key.public_key());
    assert!(ca.is_self_signed() && ca.can_sign_crl());
    let leaf = issue_simple(
        "CN=client-1",
        SoftKey::p384(41).public_key(),
        Profile::Client,
        5,
        &[],
        None,
        Some(&ca),
        &key,
    );
    assert!(leaf.capped_from.is_some()); // 2 years asked, the CA lives 30 days
    let leaf_path = write(d, "leaf.pem", &leaf.to_pem());
    let (ok, out) = verify(&ca_path, None, &leaf_path, Some("sslclient"));
    assert!(ok, "{out}");
    let cert = Certificate::from_der(&leaf.der).unwrap();
    assert_eq!(
        cert.tbs_certificate().issuer().to_der().unwrap(),
        ca.subject_der()
    );

    // Not a CA: an end-entity certificate.
    let err = CaCertificate::parse(&leaf.der, "leaf.pem").unwrap_err();
    assert!(matches!(err, IssueError::NotCa { .. }), "{err}");
    assert!(err.to_string().contains("CA:FALSE"), "{err}");
    // Not a certificate at all, or the wrong PEM.
    let err = CaCertificate::parse(b"garbage", "x").unwrap_err();
    assert!(matches!(err, IssueError::NotACertificate { .. }), "{err}");
    let err = CaCertificate::parse(key.public_key().to_pem().as_bytes(), "k").unwrap_err();
    assert!(err.to_string().contains("PUBLIC KEY"), "{err}");
    // A self-signed certificate whose signature was altered.
    let mut der = ca.der().to_vec();
    let last = der.len() - 1;
    der[last] ^= 1;
    let err = CaCertificate::parse(&der, "ca.der").unwrap_err();
    assert!(matches!(err, IssueError::BadSelfSignature { .. }), "{err}");

    // openssl's default root has no KeyUsage: accepted, with a warning, because
    // `openssl verify -x509_strict` refuses chains through it.
    let plain_path = d.join("plain.pem");
    openssl_ok(&[
        "req",
        "-x509",
        "-new",
        "-key",
        s(&key_path),
        "-out",
        s(&plain_path),
        "-days",
        "30",
        "-subj",
        "/CN=Plain Root",
    ]);
    let plain = CaCertificate::parse(&std::fs::read(&plain_path).unwrap(), "plain.pem").unwrap();
    assert_eq!(plain.warnings().len(), 1);
    assert!(plain.warnings()[0].contains("KeyUsage"));
    let leaf = issue_simple(
        "CN=c",
        SoftKey::p256(42).public_key(),
        Profile::Client,
        6,
        &[],
        None,
        Some(&plain),
        &key,
    );
    let leaf_path = write(d, "plain-leaf.pem", &leaf.to_pem());
    let (ok, out) = verify(&plain_path, None, &leaf_path, None);
    assert!(!ok && out.contains("key usage"), "{out}");
}

#[test]
fn a_p384_request_signed_with_sha256_gives_a_good_certificate() {
    // openssl signs P-384 requests with SHA-256 by default; the certificate must carry the
    // P-384 key from the request and verify.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csr_path = d.join("r.csr");
    openssl_ok(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-nodes",
        "-keyout",
        s(&d.join("r.key")),
        "-out",
        s(&csr_path),
        "-subj",
        "/C=DE/O=SOS/CN=controller.example.com",
        "-addext",
        "subjectAltName=DNS:controller.example.com",
    ]);
    let csr = parse_csr(&std::fs::read(&csr_path).unwrap(), "r.csr").unwrap();
    assert_eq!(csr.public_key().algorithm(), KeyAlgorithm::EcP384);
    let root_key = SoftKey::p256(7);
    let root = issue_simple(
        "CN=Root",
        root_key.public_key(),
        Profile::Root,
        1,
        &[],
        None,
        None,
        &root_key,
    );
    let root_ca = CaCertificate::parse(&root.der, "root").unwrap();
    let subject = csr.subject().unwrap();
    let sn = serial(9);
    let start = now();
    let params = IssueParams {
        subject: &subject,
        public_key: csr.public_key(),
        profile: Profile::ServerClient,
        serial: &sn,
        not_before: start,
        not_after: Profile::ServerClient.default_not_after(start),
        sans: csr.sans(),
        path_len: None,
    };
    let cert = issue(&params, Some(&root_ca), &root_key).unwrap();
    let root_path = write(d, "root.pem", &root.to_pem());
    let leaf_path = write(d, "leaf.pem", &cert.to_pem());
    let (ok, out) = verify(&root_path, None, &leaf_path, Some("sslserver"));
    assert!(ok, "{out}");
    // The certificate's key is the request's key: openssl's own key file says so.
    let from_key = openssl(&["pkey", "-in", s(&d.join("r.key")), "-pubout"]);
    let from_cert = openssl(&["x509", "-in", s(&leaf_path), "-noout", "-pubkey"]);
    assert_eq!(from_key, from_cert);
    let subj = openssl(&[
        "x509",
        "-in",
        s(&leaf_path),
        "-noout",
        "-subject",
        "-nameopt",
        "compat",
    ]);
    assert_eq!(
        String::from_utf8(subj).unwrap(),
        "subject=/C=DE/O=SOS/CN=controller.example.com\n"
    );
}

#[test]
fn crls_verify_with_openssl_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root_key = SoftKey::p384(11);
    let inter_key = SoftKey::p256(12);
    let root = issue_simple(
        "CN=CRL Root, O=SOS, C=DE",
        root_key.public_key(),
        Profile::Root,
        1,
        &[],
        None,
        None,
        &root_key,
    );
    let root_ca = CaCertificate::parse(&root.der, "root").unwrap();
    let inter = issue_simple(
        "CN=CRL Inter, O=SOS, C=DE",
        inter_key.public_key(),
        Profile::Intermediate,
        2,
        &[],
        None,
        Some(&root_ca),
        &root_key,
    );
    let inter_ca = CaCertificate::parse(&inter.der, "inter").unwrap();
    let sans = [SanEntry::Dns("a.example.com".into())];
    let leaf_key = SoftKey::p256(13);
    let revoked_leaf = issue_simple(
        "CN=a.example.com",
        leaf_key.public_key(),
        Profile::Server,
        3,
        &sans,
        None,
        Some(&inter_ca),
        &inter_key,
    );
    let good_leaf = issue_simple(
        "CN=a.example.com",
        leaf_key.public_key(),
        Profile::Server,
        4,
        &sans,
        None,
        Some(&inter_ca),
        &inter_key,
    );
    let root_path = write(d, "root.pem", &root.to_pem());
    let inter_path = write(d, "inter.pem", &inter.to_pem());
    let revoked_path = write(d, "revoked.pem", &revoked_leaf.to_pem());
    let good_path = write(d, "good.pem", &good_leaf.to_pem());

    let start = now() - Duration::minutes(5);
    let entries = [
        RevokedCertificate {
            serial: revoked_leaf.serial.clone(),
            revoked_at: start,
            reason: RevocationReason::KeyCompromise,
        },
        RevokedCertificate {
            serial: Serial::new(&[0x42; 8]).unwrap(),
            revoked_at: start,
            reason: RevocationReason::Unspecified,
        },
    ];
    let params = CrlParams {
        crl_number: 7,
        this_update: start,
        next_update: start + Duration::days(7),
        revoked: &entries,
    };
    let crl = build_crl(&params, &inter_ca, &inter_key).unwrap();
    let crl_path = write(d, "inter.crl", &crl_to_pem(&crl));
    // openssl checks the CRL signature against the intermediate.
    let chain = write(
        d,
        "chain.pem",
        &format!("{}{}", inter.to_pem(), root.to_pem()),
    );
    let (ok, out) = openssl_status(&[
        "crl",
        "-in",
        s(&crl_path),
        "-CAfile",
        s(&chain),
        "-verify",
        "-noout",
    ]);
    assert!(ok && out.contains("verify OK"), "{out}");
    let text =
        String::from_utf8(openssl(&["crl", "-in", s(&crl_path), "-noout", "-text"])).unwrap();
    assert!(text.contains("Version 2 (0x1)"), "{text}");
    assert!(
        text.contains("X509v3 CRL Number: \n                7")
            || text.contains("X509v3 CRL Number:\n                7"),
        "{text}"
    );
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(
        text.contains(&revoked_leaf.serial.to_hex().to_uppercase()),
        "{text}"
    );
    assert!(
        text.contains("Signature Algorithm: ecdsa-with-SHA256"),
        "{text}"
    );
    assert_eq!(text.matches("X509v3 CRL Reason Code").count(), 1, "{text}");

    // A root CRL (empty) so that -crl_check_all has one for every CA.
    let root_crl = build_crl(
        &CrlParams {
            crl_number: 1,
            this_update: start,
            next_update: start + Duration::days(30),
            revoked: &[],
        },
        &root_ca,
        &root_key,
    )
    .unwrap();
    let root_crl_path = write(d, "root.crl", &crl_to_pem(&root_crl));
    let (ok, out) = openssl_status(&[
        "crl",
        "-in",
        s(&root_crl_path),
        "-CAfile",
        s(&root_path),
        "-verify",
        "-noout",
    ]);
    assert!(ok && out.contains("verify OK"), "{out}");

    let check = |leaf: &Path| {
        openssl_status(&[
            "verify",
            "-x509_strict",
            "-crl_check_all",
            "-CAfile",
            s(&root_path),
            "-untrusted",
            s(&inter_path),
            "-CRLfile",
            s(&crl_path),
            "-CRLfile",
            s(&root_crl_path),
            s(leaf),
        ])
    };
    let (ok, out) = check(&revoked_path);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = check(&good_path);
    assert!(ok, "{out}");
    // Leaf-only checking with just the intermediate's CRL.
    let (ok, out) = openssl_status(&[
        "verify",
        "-crl_check",
        "-CAfile",
        s(&root_path),
        "-untrusted",
        s(&inter_path),
        "-CRLfile",
        s(&crl_path),
        s(&revoked_path),
    ]);
    assert!(!ok && out.contains("certificate revoked"), "{out}");

    // Refusals.
    let dup = [entries[0].clone(), entries[0].clone()];
    let err = build_crl(
        &CrlParams {
            revoked: &dup,
            ..params.clone()
        },
        &inter_ca,
        &inter_key,
    )
    .unwrap_err();
    assert!(matches!(err, IssueError::Crl(_)), "{err}");
    let err = build_crl(
        &CrlParams {
            next_update: start,
            ..params.clone()
        },
        &inter_ca,
        &inter_key,
    )
    .unwrap_err();
    assert!(matches!(err, IssueError::Crl(_)), "{err}");
    let err = build_crl(&params, &inter_ca, &root_key).unwrap_err();
    assert!(matches!(err, IssueError::IssuerKeyMismatch { .. }), "{err}");
    assert_eq!(
        RevocationReason::parse("key-compromise").unwrap(),
        RevocationReason::KeyCompromise
    );
    assert_eq!(
        RevocationReason::parse("4").unwrap(),
        RevocationReason::Superseded
    );
    assert!(RevocationReason::parse("removeFromCRL").is_err());
}

#[test]
fn revocation_reasons_round_trip_and_holds_are_not_offered() {
    for reason in RevocationReason::ALL {
        assert_eq!(RevocationReason::parse(reason.name()).unwrap(), reason);
        assert_eq!(
            RevocationReason::from_code(reason.code().into()),
            Some(reason)
        );
    }
    // A revocation is final: no certificateHold, by name or by code.
    assert!(RevocationReason::parse("certificateHold").is_err());
    assert!(RevocationReason::parse("6").is_err());
    assert_eq!(RevocationReason::from_code(6), None);
    assert_eq!(RevocationReason::from_code(8), None);
    assert_eq!(
        serde_json::to_value(RevocationReason::CaCompromise).unwrap(),
        "cACompromise"
    );
}

/// An RSA key in memory, made by openssl (which writes RSA keys as PKCS#1 DER), to test RSA CAs (tokens hold RSA-3072/4096 CA keys).
struct RsaTestKey {
    key: rsa::RsaPrivateKey,
    public: PublicKey,
}

impl RsaTestKey {
    fn generate(dir: &Path) -> Self {
        let path = dir.join("rsa-ca.der");
        openssl_ok(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-outform",
            "DER",
            "-out",
            s(&path),
        ]);
        let der = std::fs::read(&path).unwrap();
        let key =
            <rsa::RsaPrivateKey as rsa::pkcs1::DecodeRsaPrivateKey>::from_pkcs1_der(&der).unwrap();
        let spki = openssl(&[
            "pkey",
            "-inform",
            "DER",
            "-in",
            s(&path),
            "-pubout",
            "-outform",
            "DER",
        ]);
        Self {
            key,
            public: PublicKey::from_spki_der(&spki).unwrap(),
        }
    }
}

impl SigningKey for RsaTestKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    fn name(&self) -> String {
        "RSA test key".into()
    }
    fn sign_digest(
        &self,
        alg: SignatureAlgorithm,
        _m: &[u8],
        digest: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        use crate::signer::HashAlgorithm;
        let scheme = match alg.hash() {
            HashAlgorithm::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            HashAlgorithm::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
            HashAlgorithm::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        };
        self.key
            .sign(scheme, digest)
            .map_err(|e| SignError::Device {
                key: self.name(),
                reason: e.to_string(),
            })
    }
}

#[test]
fn an_rsa_ca_signs_with_sha256_rsa() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root_key = RsaTestKey::generate(d);
    assert_eq!(root_key.public_key().algorithm(), KeyAlgorithm::Rsa(2048));
    let root = issue_simple(
        "CN=RSA Root, O=SOS, C=DE",
        root_key.public_key(),
        Profile::Root,
        1,
        &[],
        Some(1),
        None,
        &root_key,
    );
    assert_eq!(root.signature_algorithm, SignatureAlgorithm::RsaSha256);
    let root_ca = CaCertificate::parse(&root.der, "root").unwrap();
    let inter_key = SoftKey::p256(31);
    let inter = issue_simple(
        "CN=EC Inter, O=SOS, C=DE",
        inter_key.public_key(),
        Profile::Intermediate,
        2,
        &[],
        None,
        Some(&root_ca),
        &root_key,
    );
    let inter_ca = CaCertificate::parse(&inter.der, "inter").unwrap();
    inter_ca.verify_issued_by(&root_ca).unwrap();
    let other_root = issue_simple(
        "CN=RSA Root, O=SOS, C=DE",
        inter_key.public_key(),
        Profile::Root,
        9,
        &[],
        None,
        None,
        &inter_key,
    );
    let other_root = CaCertificate::parse(&other_root.der, "other").unwrap();
    // Same name, other key: the signature check catches it.
    let err = inter_ca.verify_issued_by(&other_root).unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
    let err = root_ca.verify_issued_by(&inter_ca).unwrap_err();
    assert!(err.to_string().contains("issuer name"), "{err}");
    let leaf = issue_simple(
        "CN=agent.example.com",
        SoftKey::p256(32).public_key(),
        Profile::ServerClient,
        3,
        &[SanEntry::Dns("agent.example.com".into())],
        None,
        Some(&inter_ca),
        &inter_key,
    );
    let root_path = write(d, "root.pem", &root.to_pem());
    let inter_path = write(d, "inter.pem", &inter.to_pem());
    let leaf_path = write(d, "leaf.pem", &leaf.to_pem());
    for path in [&root_path, &inter_path] {
        let text =
            String::from_utf8(openssl(&["x509", "-in", s(path), "-noout", "-text"])).unwrap();
        assert!(
            text.contains("Signature Algorithm: sha256WithRSAEncryption"),
            "{text}"
        );
    }
    assert_eq!(
        openssl_extensions(&root_path),
        expected_extensions(
            Profile::Root,
            root_key.public_key(),
            &root_key.public_key().key_identifier(),
            "",
            Some(1)
        )
    );
    let (ok, out) = verify(&root_path, Some(&inter_path), &leaf_path, Some("sslserver"));
    assert!(ok, "{out}");
    let crl = build_crl(
        &CrlParams {
            crl_number: 1,
            this_update: now(),
            next_update: now() + Duration::days(1),
            revoked: &[RevokedCertificate {
                serial: inter.serial,
                revoked_at: now(),
                reason: RevocationReason::CaCompromise,
            }],
        },
        &root_ca,
        &root_key,
    )
    .unwrap();
    let crl_path = write(d, "root.crl", &crl_to_pem(&crl));
    let (ok, out) = openssl_status(&[
        "crl",
        "-in",
        s(&crl_path),
        "-CAfile",
        s(&root_path),
        "-verify",
        "-noout",
        "-text",
    ]);
    assert!(
        ok && out.contains("verify OK") && out.contains("CA Compromise"),
        "{out}"
    );
}

#[test]
fn certificates_larger_than_16_kib_are_refused_before_signing() {
    let root_key = SoftKey::p256(1);
    let root = issue_simple(
        "CN=Root",
        root_key.public_key(),
        Profile::Root,
        1,
        &[],
        None,
        None,
        &root_key,
    );
    let root_ca = CaCertificate::parse(&root.der, "root").unwrap();
    let leaf_key = SoftKey::p256(2);
    let subject = dn("CN=big.example.com");
    let sn = serial(2);
    let start = now();
    // 100 host names of 250 characters: within the count, far beyond the size.
    let long: Vec<SanEntry> = (0..100)
        .map(|i| {
            let label = format!("{i:03}{}", "a".repeat(57));
            SanEntry::Dns(format!(
                "{label}.{label}.{label}.{}.example.com",
                "b".repeat(46)
            ))
        })
        .collect();
    assert!(long.iter().all(|s| s.to_string().len() > 240));
    let mut params = IssueParams {
        subject: &subject,
        public_key: leaf_key.public_key(),
        profile: Profile::Server,
        serial: &sn,
        not_before: start,
        not_after: start + Duration::days(30),
        sans: &long,
        path_len: None,
    };
    let err = check_issuable(&params, Some(&root_ca)).unwrap_err();
    assert!(
        matches!(err, IssueError::TooLarge { max: 16384, size } if size > 16384),
        "{err}"
    );
    assert!(err.to_string().contains("16384"), "{err}");
    assert!(matches!(
        issue(&params, Some(&root_ca), &root_key),
        Err(IssueError::TooLarge { .. })
    ));
    // Twenty of them fit, and the planned size bounds the real one.
    params.sans = &long[..20];
    assert_eq!(check_issuable(&params, Some(&root_ca)).unwrap(), None);
    let issued = issue(&params, Some(&root_ca), &root_key).unwrap();
    assert!(issued.der.len() <= MAX_CERTIFICATE_BYTES);
}

#[test]
fn check_issuable_finds_what_issue_would_refuse_without_a_key() {
    let root_key = SoftKey::p256(1);
    let root = issue_simple(
        "CN=Root",
        root_key.public_key(),
        Profile::Root,
        1,
        &[],
        Some(0),
        None,
        &root_key,
    );
    let root_ca = CaCertificate::parse(&root.der, "root").unwrap();
    let key = SoftKey::p256(2);
    let subject = dn("CN=Sub CA");
    let sn = serial(2);
    let start = now();
    let params = IssueParams {
        subject: &subject,
        public_key: key.public_key(),
        profile: Profile::Intermediate,
        serial: &sn,
        not_before: start,
        not_after: start + Duration::days(30),
        sans: &[],
        path_len: Some(0),
    };
    // A pathlen:0 root issues no CA.
    assert!(matches!(
        check_issuable(&params, Some(&root_ca)),
        Err(IssueError::PathLength { .. })
    ));
    // Past the profile's maximum, up to the last second of 9999.
    let far = IssueParams {
        profile: Profile::Server,
        path_len: None,
        not_after: start + Duration::days(366 * 11),
        ..params.clone()
    };
    assert!(matches!(
        check_issuable(&far, Some(&root_ca)),
        Err(IssueError::ValidityTooLong { .. })
    ));
    let last = IssueParams {
        not_after: latest_x509_time(),
        ..far
    };
    assert!(matches!(
        check_issuable(&last, Some(&root_ca)),
        Err(IssueError::ValidityTooLong { .. })
    ));
}
