//! DN parsing from text (RFC 4514 and OpenSSL slash form), with round trips: an accepted name
//! printed in either form parses back to the same name, and its DER decodes back to it.
#![no_main]

use hsmsign::x509::DistinguishedName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(dn) = DistinguishedName::parse(text) else {
        return;
    };
    let rfc4514 = dn.to_string();
    match DistinguishedName::parse(&rfc4514) {
        Ok(again) => assert_eq!(again, dn, "RFC 4514 round trip of {text:?} via {rfc4514:?}"),
        Err(e) => panic!("{text:?} printed as {rfc4514:?} does not parse again: {e}"),
    }
    let slash = dn.to_slash_form();
    match DistinguishedName::parse(&slash) {
        Ok(again) => assert_eq!(again, dn, "slash round trip of {text:?} via {slash:?}"),
        Err(e) => panic!("{text:?} printed as {slash:?} does not parse again: {e}"),
    }
    let der = match dn.to_der() {
        Ok(der) => der,
        Err(e) => panic!("{text:?} accepted but not encodable: {e}"),
    };
    // DER sorts the attributes of a multi-valued RDN (SET OF), so the value read back may
    // list them in another order: the property is the same DER.
    match DistinguishedName::from_der(&der, "fuzz") {
        Ok(again) => assert_eq!(
            again.to_der().ok(),
            Some(der.clone()),
            "DER round trip of {text:?}"
        ),
        Err(e) => panic!("{text:?} encoded does not decode again: {e}"),
    }
    let _ = hsmsign::x509::dn::describe_name_der(&der);
    let _ = dn.common_name();
});
