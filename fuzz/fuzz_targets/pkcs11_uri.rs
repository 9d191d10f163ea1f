//! RFC 7512 PKCS#11 URI parsing, with the round trip: an accepted URI printed and parsed again
//! is the same URI (except `pin-value`, which is never printed).
#![no_main]

use hsmsign::keys::pkcs11::Pkcs11Uri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut uri) = Pkcs11Uri::parse(text) else {
        return;
    };
    let _ = uri.token_part();
    let _ = uri.names_object();
    let printed = uri.to_string();
    // pin-value is never printed, so the URI read back has none.
    uri.pin_value = None;
    match Pkcs11Uri::parse(&printed) {
        Ok(again) => assert_eq!(again, uri, "round trip of {text:?} via {printed:?}"),
        Err(e) => panic!("{text:?} printed as {printed:?} does not parse again: {e}"),
    }
});
