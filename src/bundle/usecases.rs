//! The bundle use cases as requests: `bundle truststore`, `bundle trusted-keys` and
//! `bundle js7-config`, each checked by `validate()` before anything is written.

use std::path::{Path, PathBuf};

use super::{BundleError, Js7Role, Pkcs12Options, TrustedCert, TrustedKeyFile};
use crate::keys::KeyAccess;
use crate::store::{CaRecord, Store};

/// An error of a bundle use case.
#[derive(Debug, thiserror::Error)]
pub enum BundleUseError {
    /// Building the bundle failed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A CA named is not in the state.
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    /// A password could not be read.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// An output file may not be written.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// An input file could not be read.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// A certificate file is not one certificate.
    #[error(transparent)]
    CertificateFile(#[from] crate::x509::CertificateFileError),
    /// The request's options do not fit together (a usage error: exit status 2).
    #[error("{0}")]
    Usage(String),
    /// The request cannot be done as asked (the message says why and what to do).
    #[error("{0}")]
    Refused(String),
}

/// The records of CAs named in a request, each once.
fn ca_records(store: &Store, cas: &[String]) -> Result<Vec<CaRecord>, BundleUseError> {
    let mut records: Vec<CaRecord> = Vec::new();
    for name in cas {
        let record = store
            .ca(name)?
            .ok_or_else(|| crate::ca::CaError::UnknownCa(name.clone()))?;
        if records.iter().any(|r| r.name == record.name) {
            return Err(BundleUseError::Usage(format!("--ca {name} is given twice")));
        }
        records.push(record);
    }
    Ok(records)
}

/// `bundle truststore`: the CA bundle of one or more CAs, PEM or a PKCS#12 truststore.
#[derive(Clone, Debug)]
pub struct Truststore {
    /// The CAs to include.
    pub cas: Vec<String>,
    /// The file to write.
    pub out: PathBuf,
    /// A password-protected PKCS#12 truststore instead of PEM.
    pub pkcs12: bool,
    /// With `pkcs12`: where the store password comes from.
    pub password_source: Option<String>,
    /// Replace an existing output file.
    pub force: bool,
}

impl Truststore {
    /// Check the options, the output and the CAs.
    pub fn validate(&self, store: &Store) -> Result<Vec<CaRecord>, BundleUseError> {
        crate::output::check_new(&self.out, self.force)?;
        if self.password_source.is_some() && !self.pkcs12 {
            return Err(BundleUseError::Usage(
                "--password-source goes with --pkcs12".into(),
            ));
        }
        let mut records = Vec::new();
        for name in &self.cas {
            records.push(
                store
                    .ca(name)?
                    .ok_or_else(|| crate::ca::CaError::UnknownCa(name.clone()))?,
            );
        }
        Ok(records)
    }
}

/// Write the truststore `req` asks for; returns the CAs it holds.
pub fn truststore(
    keys: &KeyAccess<'_>,
    store: &Store,
    req: &Truststore,
) -> Result<Vec<CaRecord>, BundleUseError> {
    let records = req.validate(store)?;
    let bytes = if req.pkcs12 {
        let password = keys.read_secret(
            req.password_source.as_deref(),
            "Password for the PKCS#12 truststore",
        )?;
        let trusted: Vec<TrustedCert<'_>> = records
            .iter()
            .map(|r| TrustedCert {
                alias: &r.name,
                cert_der: &r.certificate_der,
            })
            .collect();
        super::truststore_pkcs12(&trusted, &password, &Pkcs12Options::default())?
    } else {
        let ders: Vec<&[u8]> = records
            .iter()
            .map(|r| r.certificate_der.as_slice())
            .collect();
        super::truststore_pem(&ders)?.into_bytes()
    };
    crate::output::write_new(&req.out, &bytes, req.force)?;
    Ok(records)
}

/// `bundle trusted-keys`: one PEM file per CA, as a JS7 trusted-x509-keys directory holds them.
#[derive(Clone, Debug)]
pub struct TrustedKeys {
    /// The CAs to trust.
    pub cas: Vec<String>,
    /// The directory to write into (made if missing).
    pub out: PathBuf,
    /// Replace existing files of the same names.
    pub force: bool,
}

impl TrustedKeys {
    /// Check the CAs, the directory and the files already in it (a second certificate for a
    /// subject DN would displace, or be displaced by, the new one in JS7), without writing.
    pub fn validate(
        &self,
        store: &Store,
    ) -> Result<(Vec<CaRecord>, Vec<TrustedKeyFile>), BundleUseError> {
        let records = ca_records(store, &self.cas)?;
        let named: Vec<(&str, &[u8])> = records
            .iter()
            .map(|r| (r.name.as_str(), r.certificate_der.as_slice()))
            .collect();
        let files = super::trusted_key_files(&named)?;
        let out = &self.out;
        match std::fs::symlink_metadata(out) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(BundleUseError::Refused(format!(
                    "{} exists and is not a directory: give the directory to fill (for example a new one, copied into config/private/trusted-x509-keys/ afterwards)",
                    out.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((records, files)),
            Err(e) => {
                return Err(BundleUseError::Refused(format!(
                    "cannot inspect {}: {e}",
                    out.display()
                )));
            }
        }
        let existing = crate::archive::read_trusted_source(out)
            .map(|s| s.entries)
            .unwrap_or_default();
        let targets = targets(out, &files);
        for entry in &existing {
            let Ok(der) = &entry.cert else { continue };
            let Ok(subject) = super::subject_dn_rfc2253(der) else {
                continue;
            };
            if records.iter().any(|r| &r.certificate_der == der) {
                continue;
            }
            if let Some(f) = files.iter().find(|f| f.subject == subject)
                && !targets
                    .iter()
                    .any(|t| t.display().to_string() == entry.name)
            {
                return Err(BundleUseError::Refused(format!(
                    "{} already holds a certificate for {subject} and {} would be a second one: JS7 keeps only one certificate per subject DN. Remove the old file first (after the rollover), or write into another directory",
                    entry.name, f.file_name
                )));
            }
        }
        Ok((records, files))
    }
}

fn targets(out: &Path, files: &[TrustedKeyFile]) -> Vec<PathBuf> {
    files.iter().map(|f| out.join(&f.file_name)).collect()
}

/// What `bundle trusted-keys` wrote.
#[derive(Debug)]
pub struct TrustedKeysWritten {
    /// The files, in the directory.
    pub files: Vec<TrustedKeyFile>,
    /// The CAs they hold.
    pub records: Vec<CaRecord>,
}

/// Write the files `req` asks for. Every file is checked and reserved before the first is
/// linked into place, so a refusal leaves the directory as it was.
pub fn trusted_keys(
    keys: &KeyAccess<'_>,
    store: &Store,
    req: &TrustedKeys,
) -> Result<TrustedKeysWritten, BundleUseError> {
    let (records, files) = req.validate(store)?;
    if !req.out.exists() {
        std::fs::create_dir_all(&req.out).map_err(|e| {
            BundleUseError::Refused(format!(
                "cannot make the directory {}: {e}",
                req.out.display()
            ))
        })?;
    }
    let mut reserved = Vec::new();
    for target in &targets(&req.out, &files) {
        reserved.push(crate::output::AtomicFile::create(target, req.force)?);
    }
    for (file, content) in reserved.into_iter().zip(&files) {
        crate::output::write_reserved(file, content.pem.as_bytes())?;
    }
    let now = time::OffsetDateTime::now_utc();
    for r in &records {
        if r.not_after <= now {
            keys.officer.notice(&format!(
                "CA {:?} has expired ({}): JS7 up to 2.5.12, 2.6.x, 2.7.6 and 2.8.1 reject what it signed, and before 2.5.9 one expired file disables X.509 verification altogether",
                r.name,
                crate::x509::format_time(r.not_after)
            ));
        }
    }
    Ok(TrustedKeysWritten { files, records })
}

/// `bundle js7-config`: the private.conf lines of a Controller or Agent for its certificate.
#[derive(Clone, Debug)]
pub struct Js7Config {
    /// The instance's certificate (PEM or DER).
    pub cert: PathBuf,
    /// Controller or Agent.
    pub role: Js7Role,
    /// The key's alias in the instance's key bundle (default: the one every key bundle uses).
    pub alias: Option<String>,
    /// Read the alias from this key bundle, checking that it holds the key of `cert`.
    pub keystore: Option<PathBuf>,
    /// With `keystore`: where its password comes from.
    pub password_source: Option<String>,
}

/// The private.conf lines and the DN they name.
#[derive(Debug)]
pub struct Js7ConfigText {
    /// The private.conf snippet.
    pub text: String,
    /// The instance's subject DN as JS7 compares it (RFC 2253).
    pub distinguished_name: String,
}

impl Js7Config {
    /// Read and check the certificate.
    pub fn validate(&self) -> Result<Vec<u8>, BundleUseError> {
        if self.password_source.is_some() && self.keystore.is_none() {
            return Err(BundleUseError::Usage(
                "--password-source goes with --keystore".into(),
            ));
        }
        Ok(crate::x509::read_certificate_file(&self.cert)?)
    }
}

/// The snippet `req` asks for.
pub fn private_conf(
    keys: &KeyAccess<'_>,
    req: &Js7Config,
) -> Result<Js7ConfigText, BundleUseError> {
    let der = req.validate()?;
    let alias = match &req.keystore {
        Some(path) => keystore_alias(keys, path, req.password_source.as_deref(), &der)?,
        None => req
            .alias
            .clone()
            .unwrap_or_else(|| super::KEY_BUNDLE_ALIAS.to_string()),
    };
    let text = super::js7_config(&der, req.role, &alias)?;
    let distinguished_name = super::subject_dn_rfc2253(&der)?;
    Ok(Js7ConfigText {
        text,
        distinguished_name,
    })
}

/// The alias under which the key bundle at `path` holds the key certified by `cert_der`.
fn keystore_alias(
    keys: &KeyAccess<'_>,
    path: &Path,
    password_source: Option<&str>,
    cert_der: &[u8],
) -> Result<String, BundleUseError> {
    let bytes = crate::input::read_secret(path, crate::input::InputKind::Certificate)?;
    let password = keys.read_secret(
        password_source,
        &format!("Password of the key bundle {}", path.display()),
    )?;
    let contents = super::read_pkcs12(&bytes, &password)?;
    // The certificate of the key is the one carrying the key's localKeyId.
    let entry = contents.keys.iter().find_map(|k| {
        contents
            .certs
            .iter()
            .find(|c| c.local_key_id.is_some() && c.local_key_id == k.local_key_id)
            .map(|c| (k, c))
    });
    let Some((key, key_cert)) = entry else {
        return Err(BundleUseError::Refused(format!(
            "{} holds no private key with its certificate; give the instance's key bundle (https-keystore.p12)",
            path.display()
        )));
    };
    if key_cert.der != cert_der {
        return Err(BundleUseError::Refused(format!(
            "the key bundle {} holds the key of another certificate than --cert; give the certificate that is in the bundle",
            path.display()
        )));
    }
    let alias = key.alias.clone().ok_or_else(|| {
        BundleUseError::Refused(format!(
            "the key in {} has no alias (friendlyName); JS7 needs one to find it. Make the bundle again with hsmsign",
            path.display()
        ))
    })?;
    // The JVM lists PKCS#12 aliases in lower case, and that is the name JS7 must be given.
    Ok(alias.to_lowercase())
}
