//! hsmsign: a Certificate Authority and JS7 deployment signer whose keys never leave a
//! PKCS#11 token.
//!
//! Layers, top to bottom (arrows point down only):
//! the binary's CLI -> use cases (CA, certificate issuance, JS7 archives) -> X.509 building and
//! [`signer`] -> [`keys`], with [`store`] beside them. Nothing in this library prints to the terminal or reads a
//! prompt except through what the CLI hands it (a PIN source, a progress callback).

pub mod archive;
pub mod attest;
pub mod bundle;
pub mod ca;
pub mod encoding;
pub mod expiry;
pub mod input;
pub mod keys;
pub mod output;
pub mod secrets;
pub mod signer;
pub mod store;
pub mod x509;
