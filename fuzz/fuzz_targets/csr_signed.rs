//! CSR checking past the self-signature: the input is a CertificationRequestInfo (DER), which
//! the target signs with a fixed P-256 key (ecdsa-with-SHA256) and wraps into a CSR. Seeds whose
//! SubjectPublicKeyInfo is that key's reach the subject, attribute and extension checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p256::ecdsa::signature::Signer;

/// DER of AlgorithmIdentifier { ecdsa-with-SHA256 }.
const ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];

fn der_header(tag: u8, len: usize, out: &mut Vec<u8>) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fuzz_target!(|info: &[u8]| {
    // The key make-seeds.sh builds its csr_signed seeds with: the scalar 0x0101...01.
    let Ok(key) = p256::ecdsa::SigningKey::from_slice(&[1u8; 32]) else {
        return;
    };
    let sig: p256::ecdsa::Signature = key.sign(info);
    let sig = sig.to_der();
    let mut bits = Vec::new();
    der_header(0x03, sig.as_bytes().len() + 1, &mut bits);
    bits.push(0);
    bits.extend_from_slice(sig.as_bytes());
    let mut csr = Vec::new();
    der_header(0x30, info.len() + ECDSA_SHA256.len() + bits.len(), &mut csr);
    csr.extend_from_slice(info);
    csr.extend_from_slice(ECDSA_SHA256);
    csr.extend_from_slice(&bits);
    if let Ok(req) = hsmsign::x509::parse_csr(&csr, "fuzz") {
        if let Ok(dn) = req.subject() {
            // A subject we accept must survive the text round trip the CLI shows and reads back.
            let again = hsmsign::x509::DistinguishedName::parse(&dn.to_string());
            assert_eq!(again.as_ref().ok(), Some(&dn), "subject text {dn}");
        }
        let _ = req.subject_text();
        for san in req.sans() {
            let _ = san.to_string();
        }
        let _ = req.ignored();
    }
});
