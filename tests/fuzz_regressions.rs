//! Inputs the fuzz targets (fuzz/, docs/fuzzing.md) once failed on, kept in fuzz/regressions/
//! TARGET/ and replayed here with the same properties the targets check.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;

use hsmsign::keys::pkcs11::Pkcs11Uri;
use hsmsign::x509::DistinguishedName;

/// Every kept input of one target, with its file name.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no inputs in {}", dir.display());
    out
}

#[test]
fn dn_inputs_round_trip() {
    for (name, data) in inputs("dn") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let Ok(dn) = DistinguishedName::parse(text) else {
            continue;
        };
        let again = DistinguishedName::parse(&dn.to_string()).unwrap();
        assert_eq!(again, dn, "{name}: RFC 4514 round trip");
        let again = DistinguishedName::parse(&dn.to_slash_form()).unwrap();
        assert_eq!(again, dn, "{name}: slash round trip");
        // DER sorts a multi-valued RDN's attributes: the same DER, not the same order.
        let der = dn.to_der().unwrap();
        let decoded = DistinguishedName::from_der(&der, "test").unwrap();
        assert_eq!(decoded.to_der().unwrap(), der, "{name}: DER round trip");
    }
}

#[test]
fn multi_valued_rdn_is_encoded_in_der_set_order() {
    // The first dn crasher: CN given before OU in one RDN. DER SET OF puts OU (2.5.4.11,
    // shorter encoding) first; reading the DER back gives OU first.
    let dn = DistinguishedName::parse("/CN=slash\\/ine-O=A+OU=B").unwrap();
    assert_eq!(dn.rdns().len(), 1);
    let decoded = DistinguishedName::from_der(&dn.to_der().unwrap(), "test").unwrap();
    let kinds: Vec<&str> = decoded.rdns()[0].iter().map(|a| a.kind.name()).collect();
    assert_eq!(kinds, ["OU", "CN"]);
    assert_eq!(decoded.common_name(), "slash/ine-O=A");
}

#[test]
fn pkcs11_uri_inputs_round_trip_without_pin() {
    for (name, data) in inputs("pkcs11_uri") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let Ok(mut uri) = Pkcs11Uri::parse(text) else {
            continue;
        };
        let printed = uri.to_string();
        let again = Pkcs11Uri::parse(&printed).unwrap();
        assert!(
            again.pin_value.is_none(),
            "{name}: pin-value printed in {printed:?}"
        );
        uri.pin_value = None;
        assert_eq!(again, uri, "{name}: round trip via {printed:?}");
    }
}
