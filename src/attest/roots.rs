//! Yubico's attestation CA certificates, compiled into the binary.
//!
//! Their origin and fingerprints are listed in `src/attest/roots/README.md`. The SHA-256 of each
//! is pinned here as well: a file that does not hash to its pinned value is refused.

use std::fmt;

/// Which built-in root (and, under Root 1, which branch) an attestation chains to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttestationRoot {
    /// `Yubico PIV Root CA Serial 263751` (2018 re-issue, pathlen 1): firmware before 5.7.4.
    LegacyPivRoot,
    /// `Yubico Attestation Root 1` via `Intermediate A 1` and `PIV Attestation A 1`.
    Root1BranchA,
    /// `Yubico Attestation Root 1` via `Intermediate B 1` and `PIV Attestation B 1`.
    Root1BranchB,
}

impl fmt::Display for AttestationRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::LegacyPivRoot => "Yubico PIV Root CA Serial 263751",
            Self::Root1BranchA => "Yubico Attestation Root 1, branch A",
            Self::Root1BranchB => "Yubico Attestation Root 1, branch B",
        })
    }
}

/// What a built-in certificate is in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltInRole {
    /// A self-signed trust anchor.
    Root,
    /// An intermediate CA; chains are built through it up to a root.
    Intermediate,
}

/// One compiled-in CA certificate.
#[derive(Debug)]
pub struct BuiltInCert {
    /// The subject common name, for messages.
    pub name: &'static str,
    /// The file name under `src/attest/roots/`.
    pub file: &'static str,
    /// Root or intermediate.
    pub role: BuiltInRole,
    /// The PEM text.
    pub pem: &'static [u8],
    /// SHA-256 over the DER certificate, upper-case hex (as `openssl x509 -fingerprint` prints).
    pub sha256: &'static str,
    /// For the intermediates that issue device f9 certificates and for the legacy root: the
    /// anchor a chain through this certificate reports.
    pub marks: Option<AttestationRoot>,
}

/// The certificates hsmsign trusts for YubiKey PIV attestation.
pub static BUILT_IN: &[BuiltInCert] = &[
    BuiltInCert {
        name: "Yubico PIV Root CA Serial 263751",
        file: "yubico-piv-root-ca.pem",
        role: BuiltInRole::Root,
        pem: include_bytes!("roots/yubico-piv-root-ca.pem"),
        sha256: "63ECE914E54DD87915F34033C85AF4C0696BA1512F8ADD66CED738331207B546",
        marks: Some(AttestationRoot::LegacyPivRoot),
    },
    BuiltInCert {
        name: "Yubico Attestation Root 1",
        file: "yubico-attestation-root-1.pem",
        role: BuiltInRole::Root,
        pem: include_bytes!("roots/yubico-attestation-root-1.pem"),
        sha256: "62760C6A6EF91679F454C8902B80FD009825B3F25DA90F1FBACE2EC6586CD5A8",
        marks: None,
    },
    BuiltInCert {
        name: "Yubico Attestation Intermediate A 1",
        file: "yubico-attestation-intermediate-a-1.pem",
        role: BuiltInRole::Intermediate,
        pem: include_bytes!("roots/yubico-attestation-intermediate-a-1.pem"),
        sha256: "4698A1D3389C3EC60016C216250F1D0439922832D65142327436376DC2942B55",
        marks: None,
    },
    BuiltInCert {
        name: "Yubico Attestation Intermediate B 1",
        file: "yubico-attestation-intermediate-b-1.pem",
        role: BuiltInRole::Intermediate,
        pem: include_bytes!("roots/yubico-attestation-intermediate-b-1.pem"),
        sha256: "D4CC3F456FDAF4E7812A21AAB1DFE9D8E27D24E2FD2D6F21C9940109F0DAA754",
        marks: None,
    },
    BuiltInCert {
        name: "Yubico PIV Attestation A 1",
        file: "yubico-piv-attestation-a-1.pem",
        role: BuiltInRole::Intermediate,
        pem: include_bytes!("roots/yubico-piv-attestation-a-1.pem"),
        sha256: "6DE693F05376F5D8CA29069261E1C8626C75D503BD2EDBFD75354CAD1F722870",
        marks: Some(AttestationRoot::Root1BranchA),
    },
    BuiltInCert {
        name: "Yubico PIV Attestation B 1",
        file: "yubico-piv-attestation-b-1.pem",
        role: BuiltInRole::Intermediate,
        pem: include_bytes!("roots/yubico-piv-attestation-b-1.pem"),
        sha256: "2D55B7998F4E42569D6D8FA382B6DC77D1DACF07358B19701163892922B17052",
        marks: Some(AttestationRoot::Root1BranchB),
    },
];
