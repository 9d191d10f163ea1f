//! Certificate reading from PEM or DER: attestation inputs and CA certificates (`ca import`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hsmsign::attest::certificate_der(data, "fuzz");
    if let Ok(ca) = hsmsign::x509::CaCertificate::parse(data, "fuzz") {
        let _ = ca.to_pem();
        let _ = ca.subject();
        let _ = ca.path_len();
        let _ = ca.is_self_signed();
        let _ = ca.warnings();
        let _ = ca.verify_issued_by(&ca);
    }
});
