//! CSR parsing and checking from raw bytes (PEM or DER), and everything a caller reads from an
//! accepted request.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = hsmsign::x509::parse_csr(data, "fuzz") {
        let _ = req.subject();
        let _ = req.subject_text();
        let _ = req.sans();
        let _ = req.ignored();
        let _ = req.public_key().fingerprint_hex();
        let _ = req.signature_algorithm();
    }
});
