//! The CA use cases as requests: what the officer asked for, checked by `validate()` before any
//! token is touched, then done by one function that opens the keys, signs inside one audited
//! state transaction, and writes the files after the record is committed.
//!
//! The command line and the ceremony runner build these requests and call these functions;
//! neither signs, records or writes on its own.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::{
    CaError, CertRequest, ImportRequest, Issued, Issuer, NewCaRequest, RequestCheck, Validity,
};
use crate::encoding::pem_encode;
use crate::keys::{KeyAccess, KeyHandle, operator};
use crate::output::{self, AtomicFile};
use crate::signer::PublicKey;
use crate::store::{CaRecord, CertificateRecord, Store};
use crate::x509::{
    self, CaCertificate, CertificateRequest, DistinguishedName, Profile, RevocationReason,
    SanEntry, Serial,
};

/// Parse `--subject`.
fn parse_subject(s: &str) -> Result<DistinguishedName, CaError> {
    DistinguishedName::parse(s).map_err(|e| CaError::Invalid(format!("--subject: {e}")))
}

/// The output files of a request, reserved before the token signs (a temporary file in each
/// target directory proves it writable); filled only after the record is committed.
fn reserve(path: Option<&Path>, force: bool) -> Result<Option<AtomicFile>, CaError> {
    Ok(path.map(|p| AtomicFile::create(p, force)).transpose()?)
}

/// Fill a reserved file after its record was committed. On failure the error says what is
/// already recorded and how to get the file again, so nothing is silently lost.
fn write_after_record(
    file: AtomicFile,
    data: &[u8],
    recorded: &str,
    again: &str,
) -> Result<(), CaError> {
    output::write_reserved(file, data).map_err(|error| CaError::AfterRecord {
        error,
        recorded: recorded.to_string(),
        again: again.to_string(),
    })
}

/// Open the key of CA `name`, log in, and run `f` with the CA ready to sign.
pub fn with_issuer<T>(
    keys: &KeyAccess<'_>,
    store: &Store,
    name: &str,
    f: impl FnOnce(&Issuer<'_>, &KeyHandle) -> Result<T, CaError>,
) -> Result<T, CaError> {
    let record = store
        .ca(name)?
        .ok_or_else(|| CaError::UnknownCa(name.to_string()))?;
    let handle = keys.open_key(&record.key_uri, Some(store), None)?;
    let touch = || keys.officer.touch();
    let result = {
        let key = handle.signing_key(&touch)?;
        let issuer = Issuer::load(store, name, key.as_ref())?;
        f(&issuer, &handle)
    };
    handle.finish();
    result
}

/// The chain of CA `name` up to its root, CA first.
pub fn chain_of(store: &Store, name: &str) -> Result<Vec<CaRecord>, CaError> {
    let mut chain = Vec::new();
    let mut next = Some(name.to_string());
    while let Some(n) = next {
        let rec = store.ca(&n)?.ok_or_else(|| CaError::UnknownCa(n.clone()))?;
        next = rec.parent.clone();
        chain.push(rec);
        if chain.len() > 16 {
            break;
        }
    }
    Ok(chain)
}

/// What a new CA produced.
#[derive(Debug)]
pub struct CaCreated {
    /// The CA as recorded.
    pub record: CaRecord,
    /// The certificate and its audit record.
    pub issued: Issued,
    /// Where its certificate was written.
    pub out: Option<PathBuf>,
}

/// `ca init`: a self-signed root CA for a key on a token or YubiKey.
#[derive(Clone, Debug)]
pub struct CaInit {
    /// The CA's name in the state.
    pub name: String,
    /// Its key (`pkcs11:` URI or `yubikey:` slot).
    pub key: String,
    /// Subject DN.
    pub subject: String,
    /// Validity in days (`None`: the profile's default).
    pub days: Option<u64>,
    /// pathLenConstraint.
    pub path_len: Option<u8>,
    /// Where to write the certificate (PEM).
    pub out: Option<PathBuf>,
    /// Make it even when another still-valid certificate has its subject DN.
    pub allow_duplicate_dn: bool,
    /// Replace an existing output file.
    pub force: bool,
}

/// A new CA's request after [`CaInit::validate`] or [`CaIntermediate::validate`].
#[derive(Debug)]
pub struct ValidNewCa {
    /// The parsed subject.
    pub subject: DistinguishedName,
    /// The validity.
    pub validity: Validity,
}

/// Everything a new CA needs checked before the token: subject, validity, key name, output
/// path, and a free name in the state (`req` as a root or, with `profile`, an intermediate).
fn validate_new_ca(
    keys: &KeyAccess<'_>,
    store: &Store,
    req: &CaInit,
    profile: Profile,
) -> Result<ValidNewCa, CaError> {
    let subject = parse_subject(&req.subject)?;
    let validity = Validity::for_profile(profile, req.days)?;
    keys.check_key_name(&req.key)?;
    if let Some(o) = &req.out {
        output::check_new(o, req.force)?;
    }
    if store.ca(&req.name)?.is_some() {
        return Err(CaError::NameTaken(req.name.clone()));
    }
    Ok(ValidNewCa { subject, validity })
}

impl CaInit {
    /// Check the request against the state, without a token.
    pub fn validate(&self, keys: &KeyAccess<'_>, store: &Store) -> Result<ValidNewCa, CaError> {
        validate_new_ca(keys, store, self, Profile::Root)
    }
}

/// Make the root CA `req` asks for.
pub fn init(keys: &KeyAccess<'_>, store: &Store, req: &CaInit) -> Result<CaCreated, CaError> {
    let v = req.validate(keys, store)?;
    let out_file = reserve(req.out.as_deref(), req.force)?;
    let handle = keys.open_key(&req.key, Some(store), None)?;
    let touch = || keys.officer.touch();
    let issued = {
        let key = handle.signing_key(&touch)?;
        handle.refuse_existing_certificate()?;
        let (provenance, attestation) = handle.provenance()?;
        let serial = super::fresh_serial(store, &mut |n| handle.random(keys.officer, n))?;
        let issued = super::create_root(
            store,
            &NewCaRequest {
                name: &req.name,
                subject: &v.subject,
                key_uri: &key.name(),
                public_key: key.public_key(),
                provenance: &provenance,
                validity: v.validity,
                path_len: req.path_len,
                serial: &serial,
                attestation: attestation.as_deref(),
                allow_duplicate_dn: req.allow_duplicate_dn,
            },
            key.as_ref(),
            operator(Some(&handle.holder())),
        )?;
        handle.store_certificate(keys.officer, &issued.der);
        issued
    };
    handle.finish();
    finish_ca(keys, store, &req.name, issued, out_file)
}

/// `ca intermediate`: an intermediate CA for a key on a token or YubiKey, signed by a CA of
/// this appliance.
#[derive(Clone, Debug)]
pub struct CaIntermediate {
    /// The new CA's name.
    pub name: String,
    /// The issuing CA.
    pub issuer: String,
    /// The new CA's key.
    pub key: String,
    /// Subject DN.
    pub subject: String,
    /// Validity in days.
    pub days: Option<u64>,
    /// pathLenConstraint (default 0).
    pub path_len: Option<u8>,
    /// Where to write the certificate.
    pub out: Option<PathBuf>,
    /// Make it even when another still-valid certificate has its subject DN.
    pub allow_duplicate_dn: bool,
    /// Replace an existing output file.
    pub force: bool,
}

impl CaIntermediate {
    /// Check the request against the state and the issuer, without a token.
    pub fn validate(&self, keys: &KeyAccess<'_>, store: &Store) -> Result<ValidNewCa, CaError> {
        let as_new_ca = CaInit {
            name: self.name.clone(),
            key: self.key.clone(),
            subject: self.subject.clone(),
            days: self.days,
            path_len: self.path_len,
            out: self.out.clone(),
            allow_duplicate_dn: self.allow_duplicate_dn,
            force: self.force,
        };
        let v = validate_new_ca(keys, store, &as_new_ca, Profile::Intermediate)?;
        // The issuer's end and path length.
        super::check_request(
            store,
            &self.issuer,
            &RequestCheck {
                subject: &v.subject,
                public_key: None,
                profile: Profile::Intermediate,
                sans: &[],
                validity: v.validity,
                days: self.days,
                path_len: Some(self.path_len.unwrap_or(0)),
                allow_duplicate_dn: self.allow_duplicate_dn,
            },
        )?;
        Ok(v)
    }
}

/// Make the intermediate CA `req` asks for.
pub fn intermediate(
    keys: &KeyAccess<'_>,
    store: &Store,
    req: &CaIntermediate,
) -> Result<CaCreated, CaError> {
    let v = req.validate(keys, store)?;
    let out_file = reserve(req.out.as_deref(), req.force)?;
    let issued = with_issuer(keys, store, &req.issuer, |iss, issuer_handle| {
        // The new CA's key may sit on the issuer's token or YubiKey, or on another one.
        let subject_handle = keys.open_other(issuer_handle, &req.key, store)?;
        let public_key = subject_handle.public_key()?;
        subject_handle.refuse_existing_certificate()?;
        let (provenance, attestation) = subject_handle.provenance()?;
        let serial = super::fresh_serial(store, &mut |n| issuer_handle.random(keys.officer, n))?;
        let issued = super::create_intermediate(
            store,
            &NewCaRequest {
                name: &req.name,
                subject: &v.subject,
                key_uri: &subject_handle.key_name()?,
                public_key: &public_key,
                provenance: &provenance,
                validity: v.validity,
                path_len: req.path_len,
                serial: &serial,
                attestation: attestation.as_deref(),
                allow_duplicate_dn: req.allow_duplicate_dn,
            },
            iss,
            operator(Some(&issuer_handle.holder())),
        )?;
        subject_handle.store_certificate(keys.officer, &issued.der);
        subject_handle.finish();
        Ok(issued)
    })?;
    finish_ca(keys, store, &req.name, issued, out_file)
}

/// After a new CA is recorded: its certificate file, the notice, the record.
fn finish_ca(
    keys: &KeyAccess<'_>,
    store: &Store,
    name: &str,
    issued: Issued,
    out_file: Option<AtomicFile>,
) -> Result<CaCreated, CaError> {
    let out = out_file.as_ref().map(|f| f.path().to_path_buf());
    if let Some(file) = out_file {
        write_after_record(
            file,
            pem_encode("CERTIFICATE", &issued.der).as_bytes(),
            &format!(
                "CA {name:?} was created and recorded in the state directory (audit record {})",
                issued.audit_seq
            ),
            &format!(
                "write its certificate again with `hsmsign ca export --name {name} --out FILE`"
            ),
        )?;
    }
    if let Some(n) = &issued.notice {
        keys.officer.notice(n);
    }
    let record = store
        .ca(name)?
        .ok_or_else(|| CaError::UnknownCa(name.to_string()))?;
    Ok(CaCreated {
        record,
        issued,
        out,
    })
}

/// `ca sign-intermediate`: an intermediate CA certificate for an external CA's CSR.
#[derive(Clone, Debug)]
pub struct CaSignIntermediate {
    /// The issuing CA.
    pub issuer: String,
    /// The CSR file (PEM or DER).
    pub csr: PathBuf,
    /// Validity in days.
    pub days: Option<u64>,
    /// pathLenConstraint (default 0).
    pub path_len: Option<u8>,
    /// Where to write the certificate.
    pub out: PathBuf,
    /// Issue even when another still-valid certificate has its subject DN.
    pub allow_duplicate_dn: bool,
    /// Replace an existing output file.
    pub force: bool,
}

/// A checked [`CaSignIntermediate`].
#[derive(Debug)]
pub struct ValidSignIntermediate {
    /// The parsed, self-signature-checked request.
    pub request: CertificateRequest,
    /// Its subject.
    pub subject: DistinguishedName,
    /// The validity.
    pub validity: Validity,
    /// The path length the certificate carries.
    pub path_len: u8,
    /// The notice issuing will give when the validity is cut to the issuer's.
    pub capped: Option<String>,
}

impl CaSignIntermediate {
    /// Check the CSR, the output and the request against the issuer, without a token.
    pub fn validate(&self, store: &Store) -> Result<ValidSignIntermediate, CaError> {
        let bytes = x509::read_csr_file(&self.csr)?;
        // A request for a CA: CA:TRUE, keyCertSign and cRLSign are what it should ask for.
        let request = x509::parse_ca_csr(&bytes, &self.csr.display().to_string())?;
        let subject = request.subject()?;
        let validity = Validity::for_profile(Profile::Intermediate, self.days)?;
        let path_len = self.path_len.unwrap_or(0);
        output::check_distinct(&[&self.out], &[&self.csr])?;
        output::check_new(&self.out, self.force)?;
        let capped = super::check_request(
            store,
            &self.issuer,
            &RequestCheck {
                subject: &subject,
                public_key: Some(request.public_key()),
                profile: Profile::Intermediate,
                sans: &[],
                validity,
                days: self.days,
                path_len: Some(path_len),
                allow_duplicate_dn: self.allow_duplicate_dn,
            },
        )?;
        Ok(ValidSignIntermediate {
            request,
            subject,
            validity,
            path_len,
            capped,
        })
    }
}

/// What `ca sign-intermediate` produced.
#[derive(Debug)]
pub struct SignedIntermediate {
    /// The certificate and its audit record.
    pub issued: Issued,
    /// Its subject.
    pub subject: DistinguishedName,
    /// The path length it carries.
    pub path_len: u8,
}

/// Sign the external intermediate CA's request `req`.
pub fn sign_intermediate(
    keys: &KeyAccess<'_>,
    store: &Store,
    req: &CaSignIntermediate,
) -> Result<SignedIntermediate, CaError> {
    let v = req.validate(store)?;
    let out_file = AtomicFile::create(&req.out, req.force)?;
    for w in v.request.ignored() {
        keys.officer.notice(&format!("CSR: {w}"));
    }
    if let Some(note) = requested_constraints_note(&v.request, v.path_len) {
        keys.officer.notice(&note);
    }
    let issued = with_issuer(keys, store, &req.issuer, |iss, handle| {
        let serial = super::fresh_serial(store, &mut |n| handle.random(keys.officer, n))?;
        super::issue_certificate(
            store,
            iss,
            &CertRequest {
                subject: &v.subject,
                public_key: v.request.public_key(),
                profile: Profile::Intermediate,
                sans: &[],
                validity: v.validity,
                path_len: Some(v.path_len),
                serial: &serial,
                key_source: "csr".into(),
                csr: Some(&v.request),
                allow_duplicate_dn: req.allow_duplicate_dn,
            },
            operator(Some(&handle.holder())),
        )
    })?;
    write_after_record(
        out_file,
        pem_encode("CERTIFICATE", &issued.der).as_bytes(),
        &format!(
            "certificate {} was issued and recorded in the state directory (audit record {})",
            issued.serial, issued.audit_seq
        ),
        &format!(
            "write it again with `hsmsign cert show --serial {} --out FILE`",
            issued.serial
        ),
    )?;
    if let Some(n) = issued.notice.as_ref().or(v.capped.as_ref()) {
        keys.officer.notice(n);
    }
    Ok(SignedIntermediate {
        issued,
        subject: v.subject,
        path_len: v.path_len,
    })
}

/// A notice when the request's basicConstraints differ from what the certificate will carry.
fn requested_constraints_note(request: &CertificateRequest, path_len: u8) -> Option<String> {
    let asked = request.requested_basic_constraints()?;
    if !asked.ca {
        return Some(format!(
            "CSR: the request asks for basicConstraints CA:FALSE; an intermediate CA certificate carries CA:TRUE, pathlen:{path_len}"
        ));
    }
    match asked.path_len {
        Some(p) if p == path_len => None,
        Some(p) => Some(format!(
            "CSR: the request asks for pathlen:{p}; the certificate carries pathlen:{path_len} (--path-len decides; default 0)"
        )),
        None => Some(format!(
            "CSR: the request asks for no path length limit; the certificate carries pathlen:{path_len} (--path-len decides; default 0)"
        )),
    }
}

/// `ca import`: adopt a CA certificate issued elsewhere for a key already on a token.
#[derive(Clone, Debug)]
pub struct CaImport {
    /// The name to record it under.
    pub name: String,
    /// The certificate file (PEM or DER).
    pub cert: PathBuf,
    /// The key it certifies.
    pub key: String,
}

impl CaImport {
    /// Read and check the certificate and the name, without a token.
    pub fn validate(&self, keys: &KeyAccess<'_>, store: &Store) -> Result<CaCertificate, CaError> {
        let bytes = crate::input::read(&self.cert, crate::input::InputKind::Certificate)?;
        let parsed = CaCertificate::parse(&bytes, &self.cert.display().to_string())?;
        keys.check_key_name(&self.key)?;
        if store.ca(&self.name)?.is_some() {
            return Err(CaError::NameTaken(self.name.clone()));
        }
        Ok(parsed)
    }
}

/// Import the CA certificate `req` names.
pub fn import(keys: &KeyAccess<'_>, store: &Store, req: &CaImport) -> Result<CaRecord, CaError> {
    let parsed = req.validate(keys, store)?;
    let handle = keys.open_key(&req.key, Some(store), None)?;
    let record = {
        let key_uri = handle.key_name()?;
        let public = handle.public_key()?;
        let (provenance, _) = handle.provenance()?;
        let record = super::import_ca(
            store,
            &ImportRequest {
                name: &req.name,
                cert: parsed.der(),
                source: &req.cert.display().to_string(),
                key_uri: &key_uri,
                key_public: &public,
                provenance: &provenance,
            },
            operator(Some(&handle.holder())),
        )?;
        if handle.refuse_existing_certificate().is_ok() {
            handle.store_certificate(keys.officer, parsed.der());
        }
        record
    };
    handle.finish();
    for w in parsed.warnings() {
        keys.officer.notice(w);
    }
    Ok(record)
}

/// Where the key of a new certificate comes from.
#[derive(Clone, Debug)]
pub enum CertKey {
    /// A CSR made on the instance (PEM or DER): the key never leaves the instance.
    Csr(PathBuf),
    /// A key on a token or YubiKey (an operator's signing key).
    Token(String),
    /// An instance key made here (ec-p256), handed over in a PKCS#12 key bundle.
    Generate {
        /// The algorithm asked for (only `ec-p256` is offered).
        algorithm: String,
        /// The PKCS#12 file to write.
        pkcs12: PathBuf,
        /// Where its password comes from (prompt, env:, file:, fd:).
        password_source: Option<String>,
    },
}

/// `cert issue`: a certificate for a JS7 instance or an operator.
#[derive(Clone, Debug)]
pub struct CertIssue {
    /// The issuing CA.
    pub ca: String,
    /// The profile (server, client, server-client, signing).
    pub profile: String,
    /// The key to certify.
    pub key: CertKey,
    /// Subject DN (required with a token key or a generated key; overrides the CSR's).
    pub subject: Option<String>,
    /// Subject alternative names (`DNS:host,IP:1.2.3.4,...`), added to the CSR's.
    pub san: Option<String>,
    /// Validity in days.
    pub days: Option<u64>,
    /// Where to write the certificate (PEM).
    pub out: Option<PathBuf>,
    /// Where to write the CA bundle (issuing CA up to the root).
    pub chain_out: Option<PathBuf>,
    /// Issue even when another still-valid certificate has its subject DN.
    pub allow_duplicate_dn: bool,
    /// Replace existing output files.
    pub force: bool,
}

/// A checked [`CertIssue`].
#[derive(Debug)]
pub struct ValidCertIssue {
    /// The profile.
    pub profile: Profile,
    /// The subject.
    pub subject: DistinguishedName,
    /// The SANs (the CSR's and the request's).
    pub sans: Vec<SanEntry>,
    /// The validity.
    pub validity: Validity,
    /// The parsed CSR, if the key comes from one.
    pub csr: Option<CertificateRequest>,
    /// The notice issuing will give (validity cut to the CA's, a shared DN).
    pub notice: Option<String>,
}

impl CertIssue {
    fn pkcs12(&self) -> Option<&Path> {
        match &self.key {
            CertKey::Generate { pkcs12, .. } => Some(pkcs12),
            _ => None,
        }
    }

    fn outputs(&self) -> Vec<&Path> {
        [
            self.out.as_deref(),
            self.chain_out.as_deref(),
            self.pkcs12(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Everything that can be checked without the token: profile, names, CSR, outputs.
    /// `generated` is the public key of an instance key made already (`None` before).
    fn check_inputs(&self, keys: &KeyAccess<'_>) -> Result<ValidCertIssue, CaError> {
        let profile = Profile::parse(&self.profile).map_err(|e| CaError::Invalid(e.to_string()))?;
        if profile.is_ca() {
            return Err(CaError::Usage(format!(
                "--profile {} is a CA profile: use `hsmsign ca intermediate` or `ca sign-intermediate`",
                profile.name()
            )));
        }
        let subject = self.subject.as_deref().map(parse_subject).transpose()?;
        let mut sans = match &self.san {
            Some(list) => {
                SanEntry::parse_list(list).map_err(|e| CaError::Invalid(format!("--san: {e}")))?
            }
            None => Vec::new(),
        };
        let validity = Validity::for_profile(profile, self.days)?;
        let csr = match &self.key {
            CertKey::Csr(path) => {
                let bytes = x509::read_csr_file(path)?;
                Some(x509::parse_csr(&bytes, &path.display().to_string())?)
            }
            _ => None,
        };
        if let (Some(c), CertKey::Csr(path)) = (&csr, &self.key) {
            for s in c.sans() {
                if !sans.contains(s) {
                    sans.push(s.clone());
                }
            }
            x509::san::check_count(sans.len()).map_err(|e| {
                CaError::Invalid(format!(
                    "--san and the names requested in {}: {e}",
                    path.display()
                ))
            })?;
        }
        let subject = match (subject, &csr) {
            (Some(s), _) => s,
            (None, Some(c)) => c.subject()?,
            (None, None) => {
                return Err(CaError::Usage(
                    "--subject is required with --key and --generate-key".into(),
                ));
            }
        };
        if let CertKey::Generate {
            algorithm,
            password_source,
            ..
        } = &self.key
        {
            if algorithm != "ec-p256" {
                return Err(CaError::Usage(format!(
                    "--generate-key {algorithm:?}: only ec-p256 is offered for key bundles"
                )));
            }
            if password_source.is_none() {
                return Err(CaError::Usage(
                    "--generate-key needs --pkcs12 FILE and --p12-password-source SRC: the key leaves this appliance only inside a password-protected PKCS#12".into(),
                ));
            }
        }
        // Every output is checked together before the token signs: a key bundle must never
        // be lost after its certificate is issued.
        let inputs: Vec<&Path> = match &self.key {
            CertKey::Csr(p) => vec![p.as_path()],
            _ => Vec::new(),
        };
        output::check_distinct(&self.outputs(), &inputs)?;
        for o in self.outputs() {
            output::check_new(o, self.force)?;
        }
        if let CertKey::Token(k) = &self.key {
            keys.check_key_name(k)?;
        }
        Ok(ValidCertIssue {
            profile,
            subject,
            sans,
            validity,
            csr,
            notice: None,
        })
    }

    /// The request's inputs (checked by [`Self::check_inputs`]) against the state and the CA.
    fn check_with(
        &self,
        inputs: ValidCertIssue,
        store: &Store,
        generated: Option<&PublicKey>,
    ) -> Result<ValidCertIssue, CaError> {
        let ValidCertIssue {
            profile,
            subject,
            sans,
            validity,
            csr,
            ..
        } = inputs;
        chain_of(store, &self.ca)?;
        // The whole request against the CA: an explicit --days that reaches past the issuer
        // is a mistake to point out (the default validity is cut to the issuer's end instead,
        // with a notice); path length, profile rules, names, size.
        let notice = super::check_request(
            store,
            &self.ca,
            &RequestCheck {
                subject: &subject,
                public_key: csr.as_ref().map(|c| c.public_key()).or(generated),
                profile,
                sans: &sans,
                validity,
                days: self.days,
                path_len: None,
                allow_duplicate_dn: self.allow_duplicate_dn,
            },
        )?;
        Ok(ValidCertIssue {
            profile,
            subject,
            sans,
            validity,
            csr,
            notice,
        })
    }

    /// Check the request against the state and the CA, without a token.
    pub fn validate(&self, keys: &KeyAccess<'_>, store: &Store) -> Result<ValidCertIssue, CaError> {
        self.check_with(self.check_inputs(keys)?, store, None)
    }
}

/// What `cert issue` produced.
#[derive(Debug)]
pub struct CertIssued {
    /// The certificate and its audit record.
    pub issued: Issued,
    /// The certificate as recorded.
    pub record: CertificateRecord,
    /// The profile.
    pub profile: Profile,
    /// Whether a PKCS#12 key bundle with a key made here was written.
    pub generated_key: bool,
}

/// Issue the certificate `req` asks for.
pub fn issue(keys: &KeyAccess<'_>, store: &Store, req: &CertIssue) -> Result<CertIssued, CaError> {
    let inputs = req.check_inputs(keys)?;
    // Reserved (temporary files made) before the token signs.
    let out_file = reserve(req.out.as_deref(), req.force)?;
    let chain_file = reserve(req.chain_out.as_deref(), req.force)?;
    let p12_file = req
        .pkcs12()
        .map(|p| AtomicFile::create_secret(p, req.force))
        .transpose()?;
    // The bundle password first, so a missing one stops before anything is signed.
    let generated = match &req.key {
        CertKey::Generate {
            password_source, ..
        } => {
            let password = keys.read_secret(
                password_source.as_deref(),
                "Password for the PKCS#12 key bundle",
            )?;
            Some(crate::bundle::InstanceKey::generate(password)?)
        }
        _ => None,
    };
    let v = req.check_with(inputs, store, generated.as_ref().map(|g| g.public_key()))?;
    if let Some(c) = &v.csr {
        for w in c.ignored() {
            keys.officer.notice(&format!("CSR: {w}"));
        }
    }
    let chain = chain_of(store, &req.ca)?;
    let issued = with_issuer(keys, store, &req.ca, |iss, issuer_handle| {
        let (public_key, key_source): (PublicKey, String) = match (&req.key, &v.csr, &generated) {
            (CertKey::Token(key), _, _) => {
                // An operator's key on their own token or YubiKey (or on the CA's).
                let subject_handle = keys.open_other(issuer_handle, key, store)?;
                let named = (subject_handle.public_key()?, subject_handle.key_name()?);
                subject_handle.finish();
                named
            }
            (_, Some(c), _) => (c.public_key().clone(), "csr".to_string()),
            (_, None, Some(g)) => (
                g.public_key().clone(),
                "generated in memory, handed over in a PKCS#12 key bundle".to_string(),
            ),
            _ => {
                return Err(CaError::Usage(
                    "give exactly one of --csr, --key or --generate-key".into(),
                ));
            }
        };
        let serial = super::fresh_serial(store, &mut |n| issuer_handle.random(keys.officer, n))?;
        super::issue_certificate(
            store,
            iss,
            &CertRequest {
                subject: &v.subject,
                public_key: &public_key,
                profile: v.profile,
                sans: &v.sans,
                validity: v.validity,
                path_len: None,
                serial: &serial,
                key_source,
                csr: v.csr.as_ref(),
                allow_duplicate_dn: req.allow_duplicate_dn,
            },
            operator(Some(&issuer_handle.holder())),
        )
    })?;
    // Files, only after the record is committed: the key bundle first (it holds the only copy
    // of a generated key), then the certificate and the chain.
    let chain_ders: Vec<Vec<u8>> = chain.iter().map(|c| c.certificate_der.clone()).collect();
    let recorded = format!(
        "certificate {} was issued and recorded in the state directory (audit record {})",
        issued.serial, issued.audit_seq
    );
    let again = format!(
        "write it again with `hsmsign cert show --serial {} --out FILE`",
        issued.serial
    );
    if let (Some(g), Some(file)) = (&generated, p12_file) {
        // One alias for every key bundle, the one js7-config names by default.
        let bytes = g.pkcs12(&issued.der, &chain_ders, crate::bundle::KEY_BUNDLE_ALIAS)?;
        write_after_record(
            file,
            &bytes,
            &recorded,
            "the generated key is only in this bundle: if it was kept under a temporary name, rename it; otherwise revoke the certificate and issue a new one",
        )?;
        keys.officer.notice(
            "Medium security: this instance key was made on the appliance and handed over in a PKCS#12 file. Prefer a CSR made on the instance; transfer the file securely and delete copies.",
        );
    }
    if let Some(file) = out_file {
        let pem = pem_encode("CERTIFICATE", &issued.der);
        write_after_record(file, pem.as_bytes(), &recorded, &again)?;
    }
    if let Some(file) = chain_file {
        let pem: String = chain_ders
            .iter()
            .map(|d| pem_encode("CERTIFICATE", d))
            .collect();
        write_after_record(
            file,
            pem.as_bytes(),
            &recorded,
            &format!(
                "write it again with `hsmsign ca export --name {} --chain --out FILE`",
                req.ca
            ),
        )?;
    }
    if let Some(n) = &issued.notice {
        keys.officer.notice(n);
    }
    let record = store.certificate(&issued.serial)?.ok_or_else(|| {
        CaError::Invalid("the issued certificate is missing from the state".into())
    })?;
    Ok(CertIssued {
        issued,
        record,
        profile: v.profile,
        generated_key: generated.is_some(),
    })
}

/// `cert revoke`: revoke a certificate of this appliance (final).
#[derive(Clone, Debug)]
pub struct CertRevoke {
    /// The CA that issued it.
    pub ca: String,
    /// Its serial (as `openssl x509 -serial` prints it).
    pub serial: String,
    /// The reason (`unspecified`, `keyCompromise`, `superseded`, ...).
    pub reason: String,
}

impl CertRevoke {
    /// Parse the serial and reason and check the CA and the certificate exist, unrevoked.
    pub fn validate(&self, store: &Store) -> Result<(Serial, RevocationReason), CaError> {
        let serial = Serial::parse(&self.serial).map_err(|e| {
            CaError::Usage(format!(
                "--serial {:?}: {e}. Give it as `openssl x509 -serial` prints it, e.g. 4A:1F:...",
                self.serial
            ))
        })?;
        let reason =
            RevocationReason::parse(&self.reason).map_err(|e| CaError::Usage(e.to_string()))?;
        if store.ca(&self.ca)?.is_none() {
            return Err(CaError::UnknownCa(self.ca.clone()));
        }
        Ok((serial, reason))
    }
}

/// Revoke what `req` names. Needs no token: the revocation is recorded, and the next CRL
/// lists it.
pub fn revoke_request(store: &Store, req: &CertRevoke) -> Result<CertificateRecord, CaError> {
    let (serial, reason) = req.validate(store)?;
    super::revoke(store, &req.ca, &serial, reason, operator(None))
}

/// `crl generate`: a CRL of everything a CA revoked.
#[derive(Clone, Debug)]
pub struct CrlGenerate {
    /// The CA.
    pub ca: String,
    /// nextUpdate, in days from now.
    pub days: u64,
    /// The file to write (PEM).
    pub out: PathBuf,
    /// Replace an existing output file.
    pub force: bool,
}

/// What `crl generate` produced.
#[derive(Debug)]
pub struct CrlGenerated {
    /// The CRL, DER.
    pub der: Vec<u8>,
    /// Its number.
    pub number: u64,
    /// How many certificates it lists.
    pub revoked: usize,
}

impl CrlGenerate {
    /// Check the window against the CA and that the CA may sign CRLs, without a token.
    pub fn validate(&self, store: &Store) -> Result<(), CaError> {
        output::check_new(&self.out, self.force)?;
        let record = store
            .ca(&self.ca)?
            .ok_or_else(|| CaError::UnknownCa(self.ca.clone()))?;
        let cert = CaCertificate::parse(
            &record.certificate_der,
            &format!("certificate of CA {:?}", self.ca),
        )?;
        super::crl_next_update(
            &self.ca,
            cert.not_after(),
            OffsetDateTime::now_utc(),
            self.days,
        )?;
        if !cert.can_sign_crl() {
            return Err(x509::IssueError::CannotSignCrl {
                subject: cert.subject().to_string(),
            }
            .into());
        }
        Ok(())
    }
}

/// Sign and write the CRL `req` asks for.
pub fn crl(
    keys: &KeyAccess<'_>,
    store: &Store,
    req: &CrlGenerate,
) -> Result<CrlGenerated, CaError> {
    let out_file = AtomicFile::create(&req.out, req.force)?;
    req.validate(store)?;
    let (der, number) = with_issuer(keys, store, &req.ca, |iss, handle| {
        super::generate_crl(store, iss, req.days, operator(Some(&handle.holder())))
    })?;
    let revoked = store.revocations(&req.ca)?.len();
    write_after_record(
        out_file,
        pem_encode("X509 CRL", &der).as_bytes(),
        &format!(
            "CRL number {number} of CA {:?} was signed and recorded in the state directory",
            req.ca
        ),
        "run `hsmsign crl generate` again for a new CRL (it lists the same revocations)",
    )?;
    Ok(CrlGenerated {
        der,
        number,
        revoked,
    })
}

/// `audit anchor`: a CA's key signs the head of the audit chain, so a later change to any
/// earlier record is detectable even by someone who can rewrite the whole database.
#[derive(Clone, Debug)]
pub struct AuditAnchor {
    /// The CA whose key signs.
    pub ca: String,
}

impl AuditAnchor {
    /// Check the CA exists, without a token.
    pub fn validate(&self, store: &Store) -> Result<CaRecord, CaError> {
        store.ca(&self.ca)?.ok_or_else(|| {
            CaError::Invalid(format!(
                "no CA named {:?} in {}; `hsmsign ca show` lists them",
                self.ca,
                store.path().display()
            ))
        })
    }
}

/// Sign the audit chain's head with the key of the CA `req` names.
pub fn anchor_audit(
    keys: &KeyAccess<'_>,
    store: &Store,
    req: &AuditAnchor,
) -> Result<crate::store::AuditRecord, CaError> {
    let record = req.validate(store)?;
    let handle = keys.open_key(&record.key_uri, Some(store), None)?;
    let touch = || keys.officer.touch();
    let anchored = {
        let key = handle.signing_key(&touch)?;
        store.anchor_head(key.as_ref(), &req.ca, operator(Some(&handle.holder())))?
    };
    handle.finish();
    Ok(anchored)
}

/// `ca export`: a CA's certificate, or its chain up to the root, as PEM.
#[derive(Clone, Debug)]
pub struct CaExport {
    /// The CA.
    pub name: String,
    /// The chain up to the root instead of the CA's certificate alone.
    pub chain: bool,
    /// The file to write.
    pub out: PathBuf,
    /// Replace an existing output file.
    pub force: bool,
}

impl CaExport {
    /// Check the output and the CA; returns the certificates to write, CA first.
    pub fn validate(&self, store: &Store) -> Result<Vec<CaRecord>, CaError> {
        output::check_new(&self.out, self.force)?;
        if self.chain {
            chain_of(store, &self.name)
        } else {
            Ok(vec![
                store
                    .ca(&self.name)?
                    .ok_or_else(|| CaError::UnknownCa(self.name.clone()))?,
            ])
        }
    }
}

/// Write what `req` asks for; returns the certificates written.
pub fn export(store: &Store, req: &CaExport) -> Result<Vec<CaRecord>, CaError> {
    let certs = req.validate(store)?;
    let pem: String = certs
        .iter()
        .map(|c| pem_encode("CERTIFICATE", &c.certificate_der))
        .collect();
    output::write_new(&req.out, pem.as_bytes(), req.force)?;
    Ok(certs)
}
