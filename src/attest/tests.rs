//! Tests on real YubiKey attestation chains (`tests/data/yubikey-attestation/`, see its README)
//! and on chains made here with the `openssl` command line.

// In tests a failed unwrap is a failed test, with the error in its message.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::signer::KeyAlgorithm;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/yubikey-attestation")
}

fn roots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/attest/roots")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = data_dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    certificate_der(&bytes, name).unwrap()
}

/// 2026-01-01, inside every fixture's validity.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn verify(attestation: &str, f9: &str) -> Result<Attestation, AttestError> {
    verify_attestation(&fixture(attestation), &fixture(f9), None, now())
}

fn openssl(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command line is installed")
}

/// What the fixture README states for each real chain.
struct Expected {
    attestation: &'static str,
    f9: &'static str,
    slot: u8,
    serial: u32,
    firmware: [u8; 3],
    pin: PinPolicy,
    touch: TouchPolicy,
    form_factor: u8,
    key: KeyAlgorithm,
    root: AttestationRoot,
}

const LEGACY: AttestationRoot = AttestationRoot::LegacyPivRoot;

#[rustfmt::skip]
const REAL: &[Expected] = &[
    Expected { attestation: "device1-attest-9c.pem", f9: "device1-f9.pem", slot: 0x9c, serial: 13078782, firmware: [5, 2, 6], pin: PinPolicy::Always, touch: TouchPolicy::Always, form_factor: 0x03, key: KeyAlgorithm::EcP256, root: LEGACY },
    Expected { attestation: "device1-attest-9c-second.pem", f9: "device1-f9.pem", slot: 0x9c, serial: 13078782, firmware: [5, 2, 6], pin: PinPolicy::Always, touch: TouchPolicy::Always, form_factor: 0x03, key: KeyAlgorithm::EcP256, root: LEGACY },
    Expected { attestation: "device2-attest-9c.pem", f9: "device2-f9.pem", slot: 0x9c, serial: 25515003, firmware: [5, 4, 3], pin: PinPolicy::Always, touch: TouchPolicy::Never, form_factor: 0x83, key: KeyAlgorithm::EcP384, root: LEGACY },
    Expected { attestation: "device3-attest-9c.pem", f9: "device3-f9.pem", slot: 0x9c, serial: 25515137, firmware: [5, 4, 3], pin: PinPolicy::Always, touch: TouchPolicy::Never, form_factor: 0x83, key: KeyAlgorithm::EcP384, root: LEGACY },
    Expected { attestation: "device4-attest-9a.pem", f9: "device4-f9.pem", slot: 0x9a, serial: 15890263, firmware: [5, 2, 7], pin: PinPolicy::Once, touch: TouchPolicy::Never, form_factor: 0x01, key: KeyAlgorithm::Rsa(2048), root: LEGACY },
    Expected { attestation: "device5-attest-9a.pem", f9: "device5-f9.pem", slot: 0x9a, serial: 28989702, firmware: [5, 4, 3], pin: PinPolicy::Once, touch: TouchPolicy::Cached, form_factor: 0x81, key: KeyAlgorithm::Rsa(2048), root: LEGACY },
    Expected { attestation: "device6-attest-9a.pem", f9: "device6-f9.pem", slot: 0x9a, serial: 30041834, firmware: [5, 7, 1], pin: PinPolicy::Always, touch: TouchPolicy::Always, form_factor: 0x03, key: KeyAlgorithm::EcP384, root: LEGACY },
    Expected { attestation: "device6-attest-9c.pem", f9: "device6-f9.pem", slot: 0x9c, serial: 30041834, firmware: [5, 7, 1], pin: PinPolicy::Always, touch: TouchPolicy::Always, form_factor: 0x03, key: KeyAlgorithm::EcP384, root: LEGACY },
    Expected { attestation: "device7-attest-9a.pem", f9: "device7-f9.pem", slot: 0x9a, serial: 30000948, firmware: [5, 7, 2], pin: PinPolicy::Once, touch: TouchPolicy::Never, form_factor: 0x07, key: KeyAlgorithm::Rsa(2048), root: LEGACY },
    Expected { attestation: "device8-attest-9a.pem", f9: "device8-f9.pem", slot: 0x9a, serial: 33064031, firmware: [5, 7, 4], pin: PinPolicy::Once, touch: TouchPolicy::Cached, form_factor: 0x03, key: KeyAlgorithm::EcP384, root: AttestationRoot::Root1BranchB },
    Expected { attestation: "device9-attest-9a-p256.pem", f9: "device9-f9.pem", slot: 0x9a, serial: 19661687, firmware: [5, 4, 3], pin: PinPolicy::Always, touch: TouchPolicy::Never, form_factor: 0x01, key: KeyAlgorithm::EcP256, root: LEGACY },
    Expected { attestation: "device9-attest-9a-rsa2048.pem", f9: "device9-f9.pem", slot: 0x9a, serial: 19661687, firmware: [5, 4, 3], pin: PinPolicy::Once, touch: TouchPolicy::Never, form_factor: 0x01, key: KeyAlgorithm::Rsa(2048), root: LEGACY },
];

#[test]
fn every_real_chain_verifies_with_the_stated_values() {
    for e in REAL {
        let a =
            verify(e.attestation, e.f9).unwrap_or_else(|err| panic!("{}: {err}", e.attestation));
        let [major, minor, patch] = e.firmware;
        assert_eq!(a.slot, PivSlot(e.slot), "{}", e.attestation);
        assert_eq!(a.serial, Some(e.serial), "{}", e.attestation);
        assert_eq!(
            a.firmware,
            FirmwareVersion {
                major,
                minor,
                patch
            },
            "{}",
            e.attestation
        );
        assert_eq!(a.pin_policy, Some(e.pin), "{}", e.attestation);
        assert_eq!(a.touch_policy, Some(e.touch), "{}", e.attestation);
        assert_eq!(
            a.form_factor,
            Some(FormFactor(e.form_factor)),
            "{}",
            e.attestation
        );
        assert_eq!(a.public_key.algorithm(), e.key, "{}", e.attestation);
        assert_eq!(a.root, e.root, "{}", e.attestation);
        assert_eq!(a.chain.len(), if e.root == LEGACY { 3 } else { 5 });
        assert_eq!(
            a.chain[0],
            format!("CN=YubiKey PIV Attestation {:02x}", e.slot)
        );
    }
}

#[test]
fn the_new_pki_chain_goes_through_branch_b() {
    let a = verify("device8-attest-9a.pem", "device8-f9.pem").unwrap();
    assert_eq!(
        a.chain,
        [
            "CN=YubiKey PIV Attestation 9a",
            "CN=YubiKey PIV Attestation",
            "CN=Yubico PIV Attestation B 1",
            "CN=Yubico Attestation Intermediate B 1",
            "CN=Yubico Attestation Root 1",
        ]
    );
    // The new chain says it never expires: still valid in the year 9000.
    let year_9000 = UNIX_EPOCH + Duration::from_secs(221_845_392_000);
    verify_attestation(
        &fixture("device8-attest-9a.pem"),
        &fixture("device8-f9.pem"),
        None,
        year_9000,
    )
    .unwrap();
}

#[test]
fn verdict_names_device_policies_and_anchor() {
    let a = verify("device1-attest-9c.pem", "device1-f9.pem").unwrap();
    assert_eq!(
        a.verdict(),
        "generated on YubiKey serial 13078782 (firmware 5.2.6) in slot 9c, PIN policy always, \
         touch policy always, attested by Yubico (Yubico PIV Root CA Serial 263751)"
    );
    let fips = verify("device5-attest-9a.pem", "device5-f9.pem").unwrap();
    assert!(
        fips.verdict()
            .contains("(firmware 5.4.3, FIPS series) in slot 9a"),
        "{}",
        fips.verdict()
    );
    let new = verify("device8-attest-9a.pem", "device8-f9.pem").unwrap();
    assert!(
        new.verdict()
            .ends_with("(Yubico Attestation Root 1, branch B)"),
        "{}",
        new.verdict()
    );
}

/// `openssl verify` accepts exactly the chains we accept, and openssl reads the same attested key.
#[test]
fn openssl_agrees_on_every_real_chain() {
    let dir = data_dir();
    let roots = roots_dir();
    let root = |f: &str| roots.join(f).display().to_string();
    for e in REAL {
        let mut args = vec!["verify".to_string()];
        if e.root == LEGACY {
            args.extend(["-CAfile".into(), root("yubico-piv-root-ca.pem")]);
        } else {
            args.extend([
                "-CAfile".into(),
                root("yubico-attestation-root-1.pem"),
                "-untrusted".into(),
                root("yubico-attestation-intermediate-b-1.pem"),
                "-untrusted".into(),
                root("yubico-piv-attestation-b-1.pem"),
            ]);
        }
        args.extend(["-untrusted".into(), e.f9.into(), e.attestation.into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = openssl(&args, &dir);
        assert!(
            out.status.success(),
            "openssl verify {}: {}",
            e.attestation,
            String::from_utf8_lossy(&out.stdout)
        );
        let ours = verify(e.attestation, e.f9).unwrap();

        let key = openssl(&["x509", "-in", e.attestation, "-noout", "-pubkey"], &dir);
        assert!(key.status.success());
        let theirs = certificate_der_or_key(&key.stdout);
        assert_eq!(
            ours.public_key.spki_der(),
            theirs.as_slice(),
            "{}",
            e.attestation
        );

        // And the expected-key check passes with the key openssl extracted.
        let expected = PublicKey::from_spki_der(&theirs).unwrap();
        verify_attestation(
            &fixture(e.attestation),
            &fixture(e.f9),
            Some(&expected),
            now(),
        )
        .unwrap();
    }
}

fn certificate_der_or_key(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).unwrap();
    der::pem::decode_vec(text.trim().as_bytes()).unwrap().1
}

/// The serial number and firmware we decode are the bytes openssl shows in the extensions.
#[test]
fn decoded_extensions_match_openssl_ext_dump() {
    let dir = data_dir();
    for e in REAL {
        let out = openssl(
            &[
                "x509",
                "-in",
                e.attestation,
                "-noout",
                "-text",
                "-certopt",
                "ext_dump",
            ],
            &dir,
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let dump = |oid: &str| -> String {
            let at = text
                .find(&format!("{oid}:"))
                .unwrap_or_else(|| panic!("{oid} in {}", e.attestation));
            let line = text[at..].lines().nth(1).unwrap();
            // "0000 - 05 02 06     ..." -> "050206"
            line.split(" - ")
                .nth(1)
                .unwrap()
                .split("  ")
                .next()
                .unwrap()
                .replace(' ', "")
        };
        let a = verify(e.attestation, e.f9).unwrap();
        let fw = a.firmware;
        assert_eq!(
            dump("1.3.6.1.4.1.41482.3.3"),
            format!("{:02x}{:02x}{:02x}", fw.major, fw.minor, fw.patch)
        );
        let serial = dump("1.3.6.1.4.1.41482.3.7");
        assert_eq!(
            u32::from_str_radix(&serial[4..], 16).unwrap(),
            a.serial.unwrap(),
            "{}",
            e.attestation
        );
        assert_eq!(
            dump("1.3.6.1.4.1.41482.3.9"),
            format!("{:02x}", a.form_factor.unwrap().0)
        );
    }
}

#[test]
fn built_in_certificates_are_intact_and_chain_to_their_roots() {
    let anchors: Vec<Cert> = BUILT_IN
        .iter()
        .map(|b| Cert::built_in(b).unwrap())
        .collect();
    let by_name = |n: &str| {
        anchors
            .iter()
            .find(|c| c.common_name() == n)
            .unwrap_or_else(|| panic!("{n} built in"))
    };
    for (b, c) in BUILT_IN.iter().zip(&anchors) {
        assert_eq!(c.common_name(), b.name);
        // openssl computes the same pinned fingerprint.
        let out = openssl(
            &["x509", "-in", b.file, "-noout", "-fingerprint", "-sha256"],
            &roots_dir(),
        );
        let printed = String::from_utf8_lossy(&out.stdout).replace(':', "");
        assert!(printed.trim().ends_with(b.sha256), "{}: {printed}", b.file);
        let issuer = match b.role {
            BuiltInRole::Root => c,
            BuiltInRole::Intermediate => anchors
                .iter()
                .find(|i| i.tbs().subject() == c.tbs().issuer())
                .unwrap(),
        };
        assert!(
            c.signed_by(issuer).is_ok(),
            "{} signed by its issuer",
            b.file
        );
    }
    // The legacy root is the 2018 re-issue (pathlen 1), not the original (pathlen 0).
    let legacy = by_name("Yubico PIV Root CA Serial 263751");
    let (_, bc) = legacy
        .tbs()
        .get_extension::<BasicConstraints>()
        .unwrap()
        .unwrap();
    assert_eq!(bc.path_len_constraint, Some(1));
}

// ---------------------------------------------------------------------------------------------
// Refusals, each with its own error.

#[test]
fn an_f9_of_another_batch_is_refused_by_signature() {
    // Same names, another key: only the signature can tell.
    let err = verify("device5-attest-9a.pem", "device2-f9.pem").unwrap_err();
    assert!(matches!(err, AttestError::NotSignedByF9 { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("84667A358473E06BEF9EBA9F5CC1CE7BEEBD7151804C04AEEFFFC62F92C6EED0"),
        "{msg}"
    );
    // openssl agrees.
    let out = openssl(
        &[
            "verify",
            "-CAfile",
            &roots_dir()
                .join("yubico-piv-root-ca.pem")
                .display()
                .to_string(),
            "-untrusted",
            "device2-f9.pem",
            "device5-attest-9a.pem",
        ],
        &data_dir(),
    );
    assert!(!out.status.success());
}

#[test]
fn an_f9_with_another_name_is_refused() {
    let err = verify("device1-attest-9c.pem", "device8-f9.pem").unwrap_err();
    assert!(
        matches!(&err, AttestError::F9NameMismatch { attestation_issuer, f9_subject }
            if attestation_issuer == "CN=Yubico PIV Attestation" && f9_subject == "CN=YubiKey PIV Attestation"),
        "{err}"
    );
}

#[test]
fn swapped_arguments_are_named_as_such() {
    let err = verify("device1-f9.pem", "device1-attest-9c.pem").unwrap_err();
    assert!(matches!(err, AttestError::NotAnAttestation { .. }), "{err}");
    assert!(err.to_string().contains("swapped"), "{err}");
}

/// Flip the last byte of the value of extension `oid_der` (the OID's content bytes).
fn tamper_extension(cert: &[u8], oid_content: &[u8]) -> Vec<u8> {
    let mut needle = vec![0x06, oid_content.len() as u8];
    needle.extend_from_slice(oid_content);
    let at = cert
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("extension present");
    // OID, then OCTET STRING tag and short length.
    let value_start = at + needle.len() + 2;
    let len = cert[at + needle.len() + 1] as usize;
    let mut out = cert.to_vec();
    out[value_start + len - 1] ^= 0x01;
    out
}

/// Content bytes of OID 1.3.6.1.4.1.41482.3.N.
fn yubico_oid(n: u8) -> Vec<u8> {
    vec![0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xc4, 0x0a, 0x03, n]
}

#[test]
fn a_tampered_f9_is_refused_by_the_root_signature() {
    let f9 = fixture("device1-f9.pem");
    let forged = tamper_extension(&f9, &yubico_oid(3));
    assert_ne!(f9, forged);
    let err = verify_attestation(&fixture("device1-attest-9c.pem"), &forged, None, now());
    // The slot signature still verifies (the f9 key is unchanged); the root's does not.
    let err = err.unwrap_err();
    assert!(
        matches!(&err, AttestError::BadSignature { subject, issuer }
            if subject == "CN=Yubico PIV Attestation" && issuer == "CN=Yubico PIV Root CA Serial 263751"),
        "{err}"
    );
}

#[test]
fn a_tampered_attestation_is_refused() {
    // Raise the serial number by one: the f9 signature no longer covers it.
    let slot = fixture("device1-attest-9c.pem");
    let forged = tamper_extension(&slot, &yubico_oid(7));
    let err = verify_attestation(&forged, &fixture("device1-f9.pem"), None, now()).unwrap_err();
    assert!(matches!(err, AttestError::NotSignedByF9 { .. }), "{err}");
}

#[test]
fn a_different_expected_key_is_refused() {
    let other = verify("device9-attest-9a-rsa2048.pem", "device9-f9.pem")
        .unwrap()
        .public_key;
    let err = verify_attestation(
        &fixture("device9-attest-9a-p256.pem"),
        &fixture("device9-f9.pem"),
        Some(&other),
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, AttestError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("rsa-2048"), "{err}");
}

#[test]
fn the_original_pathlen_0_root_would_refuse_every_chain() {
    // Not built in; this shows why (and that pathLenConstraint is enforced).
    let old = [BuiltInCert {
        name: "Yubico PIV Root CA Serial 263751 (original)",
        file: "yubico-piv-root-ca-old.pem",
        role: BuiltInRole::Root,
        pem: include_bytes!("../../tests/data/yubikey-attestation/yubico-piv-root-ca-old.pem"),
        sha256: "7E996A28E3055223733C9AEC897900EDA9B746E3E15D419556AC6A1179879A50",
        marks: Some(AttestationRoot::LegacyPivRoot),
    }];
    let err = verify_with(
        &old,
        &fixture("device1-attest-9c.pem"),
        &fixture("device1-f9.pem"),
        None,
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            AttestError::PathLength {
                allowed: 0,
                found: 1,
                ..
            }
        ),
        "{err}"
    );
    // openssl says the same: "path length constraint exceeded".
    let out = openssl(
        &[
            "verify",
            "-CAfile",
            "yubico-piv-root-ca-old.pem",
            "-untrusted",
            "device1-f9.pem",
            "device1-attest-9c.pem",
        ],
        &data_dir(),
    );
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("path length constraint exceeded"), "{said}");
}

#[test]
fn the_new_chain_does_not_reach_the_legacy_root_alone() {
    let legacy_only: Vec<BuiltInCert> = BUILT_IN
        .iter()
        .filter(|b| b.marks == Some(AttestationRoot::LegacyPivRoot))
        .map(|b| BuiltInCert { ..*b })
        .collect();
    let err = verify_with(
        &legacy_only,
        &fixture("device8-attest-9a.pem"),
        &fixture("device8-f9.pem"),
        None,
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, AttestError::UnknownIssuer { .. }), "{err}");
}

#[test]
fn validity_is_checked() {
    let before = UNIX_EPOCH + Duration::from_secs(1_400_000_000); // 2014
    let after = UNIX_EPOCH + Duration::from_secs(2_600_000_000); // 2052-05
    for t in [before, after] {
        let err = verify_attestation(
            &fixture("device1-attest-9c.pem"),
            &fixture("device1-f9.pem"),
            None,
            t,
        )
        .unwrap_err();
        assert!(matches!(err, AttestError::OutsideValidity { .. }), "{err}");
    }
}

#[test]
fn garbage_is_refused_as_malformed() {
    let err = certificate_der(b"\x00\x01garbage", "input").unwrap_err();
    assert!(matches!(err, AttestError::Malformed { .. }), "{err}");
    let err = certificate_der(
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        "input",
    )
    .unwrap_err();
    assert!(matches!(err, AttestError::Malformed { .. }), "{err}");
    let err = verify_attestation(
        b"\x30\x03\x02\x01\x00",
        &fixture("device1-f9.pem"),
        None,
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, AttestError::Malformed { what, .. } if what == "the attestation certificate"),
        "{err}"
    );
    // A certificate with trailing bytes is not a certificate either.
    let mut long = fixture("device1-f9.pem");
    long.push(0);
    let err =
        verify_attestation(&fixture("device1-attest-9c.pem"), &long, None, now()).unwrap_err();
    assert!(
        matches!(&err, AttestError::Malformed { what, .. } if what == "the device (f9) certificate"),
        "{err}"
    );
}

#[test]
fn wrong_pem_types_are_named() {
    let key = verify("device1-attest-9c.pem", "device1-f9.pem")
        .unwrap()
        .public_key
        .to_pem();
    let err = certificate_der(key.as_bytes(), "attestation file 'k.pem'").unwrap_err();
    assert!(
        matches!(&err, AttestError::WrongPemType { label, .. } if label == "PUBLIC KEY"),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("attestation file 'k.pem' holds a PEM 'PUBLIC KEY' block")
    );

    let dir = data_dir();
    let mut two = std::fs::read(dir.join("device1-f9.pem")).unwrap();
    two.extend(std::fs::read(dir.join("device1-attest-9c.pem")).unwrap());
    let err = certificate_der(&two, "both").unwrap_err();
    assert!(
        matches!(err, AttestError::SeveralPemBlocks { count: 2, .. }),
        "{err}"
    );
}

#[test]
fn der_and_bom_prefixed_pem_are_read() {
    let dir = data_dir();
    let out = openssl(&["x509", "-in", "device8-f9.pem", "-outform", "DER"], &dir);
    assert!(out.status.success());
    assert_eq!(certificate_der(&out.stdout, "der").unwrap(), out.stdout);
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(std::fs::read(dir.join("device8-f9.pem")).unwrap());
    assert_eq!(certificate_der(&bom, "bom").unwrap(), out.stdout);
}

// ---------------------------------------------------------------------------------------------
// Chains made here with openssl: a CA that is not Yubico's.

struct MadeChain {
    ca_pem: Vec<u8>,
    f9: Vec<u8>,
    slot: Vec<u8>,
}

/// root (subject `ca_cn`) -> f9 (`f9_ext` extensions) -> slot 9c attestation, all P-256.
fn make_chain(ca_cn: &str, f9_ext: &str) -> MadeChain {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("f9.ext"), f9_ext).unwrap();
    std::fs::write(
        p.join("slot.ext"),
        "1.3.6.1.4.1.41482.3.3 = DER:05:07:04\n\
         1.3.6.1.4.1.41482.3.7 = DER:02:04:01:02:03:04\n\
         1.3.6.1.4.1.41482.3.8 = DER:03:02\n\
         1.3.6.1.4.1.41482.3.9 = DER:03\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = openssl(args, p);
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ca_subj = format!("/CN={ca_cn}");
    run(&[
        "req",
        "-x509",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        &ca_subj,
        "-days",
        "3650",
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:1",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    for (name, cn) in [
        ("f9", "Yubico PIV Attestation"),
        ("slot", "YubiKey PIV Attestation 9c"),
    ] {
        run(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ]);
    }
    run(&[
        "x509", "-req", "-in", "f9.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-out", "f9.pem",
        "-days", "3650", "-extfile", "f9.ext",
    ]);
    run(&[
        "x509", "-req", "-in", "slot.csr", "-CA", "f9.pem", "-CAkey", "f9.key", "-out", "slot.pem",
        "-days", "3650", "-extfile", "slot.ext",
    ]);
    let read = |f: &str| std::fs::read(p.join(f)).unwrap();
    MadeChain {
        ca_pem: read("ca.pem"),
        f9: certificate_der(&read("f9.pem"), "f9").unwrap(),
        slot: certificate_der(&read("slot.pem"), "slot").unwrap(),
    }
}

const F9_EXT: &str =
    "basicConstraints = critical,CA:TRUE,pathlen:0\n1.3.6.1.4.1.41482.3.3 = DER:05:07:04\n";

/// Trust the made chain's CA, as if it were built in.
fn trusting(chain: &MadeChain) -> [BuiltInCert; 1] {
    trusting_as(chain, Some(AttestationRoot::LegacyPivRoot))
}

fn trusting_as(chain: &MadeChain, marks: Option<AttestationRoot>) -> [BuiltInCert; 1] {
    let der = certificate_der(&chain.ca_pem, "ca").unwrap();
    [BuiltInCert {
        name: "test CA",
        file: "ca.pem",
        role: BuiltInRole::Root,
        pem: Vec::leak(chain.ca_pem.clone()),
        sha256: String::leak(hex(&sha2::Sha256::digest(&der)).to_ascii_uppercase()),
        marks,
    }]
}

#[test]
fn a_self_made_ca_is_an_unknown_root() {
    let chain = make_chain("Example Attestation CA", F9_EXT);
    // The chain itself is sound: trusted explicitly, it verifies and decodes.
    let a = verify_with(
        &trusting(&chain),
        &chain.slot,
        &chain.f9,
        None,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(
        (a.serial, a.slot, a.touch_policy),
        (Some(0x01020304), PivSlot(0x9c), Some(TouchPolicy::Always))
    );
    // But hsmsign does not trust it.
    let err = verify_attestation(&chain.slot, &chain.f9, None, SystemTime::now()).unwrap_err();
    assert!(
        matches!(&err, AttestError::UnknownIssuer { issuer, .. } if issuer == "CN=Example Attestation CA"),
        "{err}"
    );
}

#[test]
fn a_ca_that_copies_yubicos_name_is_refused_by_signature() {
    let chain = make_chain("Yubico PIV Root CA Serial 263751", F9_EXT);
    let err = verify_attestation(&chain.slot, &chain.f9, None, SystemTime::now()).unwrap_err();
    assert!(matches!(err, AttestError::BadSignature { .. }), "{err}");
}

#[test]
fn an_f9_that_is_not_a_ca_is_refused() {
    // Like YubiKey 4.3 f9 certificates: no basicConstraints at all.
    let chain = make_chain(
        "Example Attestation CA",
        "1.3.6.1.4.1.41482.3.3 = DER:04:03:04\n",
    );
    let err = verify_with(
        &trusting(&chain),
        &chain.slot,
        &chain.f9,
        None,
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, AttestError::NotACa { .. }), "{err}");
}

#[test]
fn an_unknown_critical_extension_is_refused() {
    let chain = make_chain(
        "Example Attestation CA",
        &format!("{F9_EXT}1.3.6.1.4.1.99999.1 = critical,DER:05:00\n"),
    );
    let err = verify_with(
        &trusting(&chain),
        &chain.slot,
        &chain.f9,
        None,
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, AttestError::UnknownCriticalExtension { oid, .. } if oid == "1.3.6.1.4.1.99999.1"),
        "{err}"
    );
}

#[test]
fn a_chain_to_root_1_must_pass_a_piv_attestation_ca() {
    // A root that, like Root 1, does not itself say which PIV attestation branch it is.
    let chain = make_chain("Example Attestation CA", F9_EXT);
    let err = verify_with(
        &trusting_as(&chain, None),
        &chain.slot,
        &chain.f9,
        None,
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(
        matches!(err, AttestError::NoPivAttestationCa { .. }),
        "{err}"
    );
}
