//! hsmsign: a Certificate Authority and JS7 deployment signer whose keys never leave a
//! PKCS#11 token.
//!
//! Layers, top to bottom (arrows point down only): the front ends (the binary's command line,
//! the ceremony runner) build requests -> use cases ([`ca`], [`archive`], [`bundle`], and
//! [`keys::generate`]), each with a `validate()` that needs no token -> [`x509`] building and
//! [`signer`] -> [`keys`], with [`store`] beside them. Nothing in this library prints to the
//! terminal or reads a prompt except through the [`keys::Officer`] a front end hands it.

pub mod archive;
pub mod attest;
pub mod bundle;
pub mod ca;
pub mod ceremony;
pub mod encoding;
pub mod expiry;
pub mod input;
pub mod keys;
pub mod output;
pub mod secrets;
pub mod signer;
pub mod store;
pub mod x509;
