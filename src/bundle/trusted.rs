//! The content of a JS7 `trusted-x509-keys` directory (section 2 of the JS7 notes): one PEM
//! certificate per file, files starting with `.` ignored, and (since 2.5.9) only one certificate
//! kept per subject DN, so two of them with the same DN would displace each other.

use der::{Decode, Encode};
use x509_cert::Certificate;

use super::BundleError;
use crate::encoding::pem_encode;

/// One file of a trusted-x509-keys directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKeyFile {
    /// The file name (no directory part, never starting with `.`).
    pub file_name: String,
    /// Its content: exactly one PEM certificate.
    pub pem: String,
    /// The certificate's subject DN, as printed in messages.
    pub subject: String,
}

/// A file name for the certificate recorded as `name`: letters, digits, `-`, `_` and `.` kept,
/// anything else `_`, never a leading `.` (JS7 would skip the file), `.pem` appended.
fn file_name_for(name: &str) -> String {
    let mut base: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if base.starts_with('.') || base.is_empty() {
        base.insert(0, '_');
    }
    format!("{base}.pem")
}

/// The files of a trusted-x509-keys directory for the named certificates (`(name, DER)`): one
/// PEM file each, named after the name. Refuses two certificates with the same subject DN (JS7
/// would keep only one of them) and two names that map to the same file name.
pub fn trusted_key_files(certs: &[(&str, &[u8])]) -> Result<Vec<TrustedKeyFile>, BundleError> {
    let mut files: Vec<(TrustedKeyFile, Vec<u8>)> = Vec::new();
    for (name, der) in certs {
        let what = || format!("certificate of {name:?}");
        let cert = Certificate::from_der(der).map_err(|source| BundleError::Certificate {
            what: what(),
            source,
        })?;
        let subject_der = cert
            .tbs_certificate()
            .subject()
            .to_der()
            .map_err(|source| BundleError::Certificate {
                what: what(),
                source,
            })?;
        let subject = super::subject_dn_rfc2253(der)?;
        let file_name = file_name_for(name);
        if let Some((other, _)) = files
            .iter()
            .find(|(f, s)| f.subject == subject || *s == subject_der)
        {
            return Err(BundleError::TrustedDuplicateDn {
                subject,
                first: other.file_name.clone(),
                second: file_name,
            });
        }
        if files.iter().any(|(f, _)| f.file_name == file_name) {
            return Err(BundleError::TrustedFileNameClash { file_name });
        }
        files.push((
            TrustedKeyFile {
                file_name,
                pem: pem_encode("CERTIFICATE", der),
                subject,
            },
            subject_der,
        ));
    }
    Ok(files.into_iter().map(|(f, _)| f).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_never_hidden() {
        assert_eq!(file_name_for("issuing"), "issuing.pem");
        assert_eq!(file_name_for("JS7 Issuing/2027"), "JS7_Issuing_2027.pem");
        assert_eq!(file_name_for(".hidden"), "_.hidden.pem");
        assert_eq!(file_name_for("../x"), "_.._x.pem");
    }
}
