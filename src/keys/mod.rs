//! Every key backend behind one handle: PKCS#11 tokens ([`pkcs11`]), a YubiKey's PIV application
//! used natively ([`piv`], cargo feature `yubikey`), and where PINs come from ([`pin`]).
//!
//! Private keys never leave their device: each backend hands out a [`crate::signer::SigningKey`]
//! whose private half is only ever a handle on the device.

pub mod pin;
#[cfg(feature = "yubikey")]
pub mod piv;
pub mod pkcs11;

mod access;
mod handle;
mod usecases;

pub use access::{AskOnce, KeyAccess, KeyError, Officer, operator};
pub use handle::KeyHandle;
pub use usecases::{
    KeyGenerate, KeyGenerated, KeyImport, KeyImported, generate, import, label_of, probe_exercise,
};
