//! DN decoding from DER (a CSR's or certificate's subject), the never-failing describer used in
//! messages, and the round trip of an accepted name through DER and text.
#![no_main]

use hsmsign::x509::DistinguishedName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hsmsign::x509::dn::describe_name_der(data);
    let Ok(dn) = DistinguishedName::from_der(data, "fuzz") else {
        return;
    };
    let der = match dn.to_der() {
        Ok(der) => der,
        Err(e) => panic!("decoded name not encodable: {e}"),
    };
    match DistinguishedName::from_der(&der, "fuzz") {
        Ok(again) => assert_eq!(again.to_der().ok(), Some(der.clone()), "DER round trip"),
        Err(e) => panic!("re-encoded name does not decode: {e}"),
    }
    let text = dn.to_string();
    match DistinguishedName::parse(&text) {
        Ok(again) => assert_eq!(
            again.to_der().ok(),
            Some(der),
            "text round trip via {text:?}"
        ),
        Err(e) => panic!("decoded name printed as {text:?} does not parse: {e}"),
    }
});
