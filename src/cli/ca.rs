//! `hsmsign ca ...` and `hsmsign crl generate`.

use std::path::PathBuf;

use clap::Subcommand;
use hsmsign::ca::{self, Issuer, NewCaRequest, Validity};
use hsmsign::encoding::pem_encode;
use hsmsign::input::InputKind;
use hsmsign::output::AtomicFile;
use hsmsign::store::{CaRecord, Store};
use hsmsign::x509::{
    CaCertificate, CertificateRequest, DistinguishedName, Profile, format_time, parse_ca_csr,
};
use serde_json::json;

use super::{CmdResult, Ctx, Failure};
use hsmsign::keys::KeyHandle;

/// CA commands.
#[derive(Subcommand, Debug)]
pub(crate) enum CaCmd {
    /// Make a self-signed root CA for a key already on the token.
    Init {
        /// A name for the CA (used as --ca / --issuer later).
        #[arg(long)]
        name: String,
        /// The CA key (made with `hsmsign key generate`).
        #[arg(long, value_name = "URI")]
        key: String,
        /// Subject DN, e.g. "CN=JS7 Root CA, OU=IT Operations, O=SOS, L=Berlin, ST=Berlin, C=DE".
        #[arg(long, value_name = "DN")]
        subject: String,
        /// Validity in days (default 20 years, at most 25).
        #[arg(long, value_parser = days_arg, allow_hyphen_values = true)]
        days: Option<u64>,
        /// pathLenConstraint: how many intermediate levels may follow.
        #[arg(long, value_parser = path_len_arg, allow_hyphen_values = true)]
        path_len: Option<u8>,
        /// Also write the certificate (PEM) here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Issue even if a still-valid certificate for another key of this appliance has the same
        /// subject DN (JS7 keeps only one certificate per DN in a trusted directory).
        #[arg(long)]
        allow_duplicate_dn: bool,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
    },
    /// Make an intermediate CA for a key on a token, signed by a CA of this appliance.
    Intermediate {
        /// A name for the new CA.
        #[arg(long)]
        name: String,
        /// The issuing CA.
        #[arg(long, value_name = "CA")]
        issuer: String,
        /// The intermediate's key (may be on another token of the same module).
        #[arg(long, value_name = "URI")]
        key: String,
        /// Subject DN.
        #[arg(long, value_name = "DN")]
        subject: String,
        /// Validity in days (default 10 years, at most 20; never beyond the issuer's).
        #[arg(long, value_parser = days_arg, allow_hyphen_values = true)]
        days: Option<u64>,
        /// pathLenConstraint (default 0: it issues end-entity certificates only).
        #[arg(long, value_parser = path_len_arg, allow_hyphen_values = true)]
        path_len: Option<u8>,
        /// Also write the certificate (PEM) here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Issue even if a still-valid certificate for another key of this appliance has the same
        /// subject DN (JS7 keeps only one certificate per DN in a trusted directory).
        #[arg(long)]
        allow_duplicate_dn: bool,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
    },
    /// Sign an intermediate CA certificate for an external key (a CSR made elsewhere).
    SignIntermediate {
        /// The issuing CA.
        #[arg(long, value_name = "CA")]
        issuer: String,
        /// The CSR (PEM or DER); its signature is verified first.
        #[arg(long, value_name = "FILE")]
        csr: PathBuf,
        /// Validity in days (default 10 years, at most 20; never beyond the issuer's).
        #[arg(long, value_parser = days_arg, allow_hyphen_values = true)]
        days: Option<u64>,
        /// pathLenConstraint (default 0).
        #[arg(long, value_parser = path_len_arg, allow_hyphen_values = true)]
        path_len: Option<u8>,
        /// Where to write the certificate (PEM).
        #[arg(long)]
        out: PathBuf,
        /// Issue even if a still-valid certificate for another key of this appliance has the same
        /// subject DN (JS7 keeps only one certificate per DN in a trusted directory).
        #[arg(long)]
        allow_duplicate_dn: bool,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
    },
    /// Adopt a CA certificate issued elsewhere for a key already on the token.
    Import {
        /// A name for the CA.
        #[arg(long)]
        name: String,
        /// The CA certificate (PEM or DER).
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// The CA's key on the token.
        #[arg(long, value_name = "URI")]
        key: String,
    },
    /// Show one CA, or list all.
    Show {
        /// The CA.
        #[arg(long)]
        name: Option<String>,
    },
    /// Write a CA certificate, or with --chain the CA bundle (the CA and its issuers), as PEM.
    Export {
        /// The CA.
        #[arg(long)]
        name: String,
        /// The whole chain up to the root, CA first.
        #[arg(long)]
        chain: bool,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
    },
}

/// CRL commands.
#[derive(Subcommand, Debug)]
pub(crate) enum CrlCmd {
    /// Sign a CRL of everything the CA revoked.
    Generate {
        /// The CA.
        #[arg(long, value_name = "CA")]
        ca: String,
        /// nextUpdate this many days from now (at most 366, and not after the CA's end).
        #[arg(long, default_value_t = hsmsign::x509::limits::DEFAULT_CRL_DAYS, value_parser = days_arg, allow_hyphen_values = true)]
        days: u64,
        /// The file to write (PEM).
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
    },
}

/// `--days`: a whole number of days, at least 1 (the maximum is checked where it is known).
pub(super) fn days_arg(s: &str) -> Result<u64, String> {
    ca::parse_days(s)
}

/// `--path-len`: how many levels of intermediate CAs may follow, 0 to 255.
fn path_len_arg(s: &str) -> Result<u8, String> {
    let t = s.trim();
    if !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = t.parse::<u8>()
    {
        return Ok(n);
    }
    Err(format!(
        "`{}` is not a path length: give a whole number from 0 to 255 (how many levels of \
         intermediate CAs may follow; 0 = it issues end-entity certificates only)",
        hsmsign::x509::limits::escape_for_display(t)
    ))
}

pub(super) fn parse_dn(s: &str) -> Result<DistinguishedName, Failure> {
    Ok(DistinguishedName::parse(s).map_err(|e| anyhow::anyhow!("--subject: {e}"))?)
}

/// Open the key of CA `name` (a token or a YubiKey), log in, and run `f` with the CA ready
/// to sign.
pub(super) fn with_issuer<T>(
    ctx: &Ctx,
    store: &Store,
    name: &str,
    f: impl FnOnce(&Issuer<'_>, &KeyHandle) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let record = store
        .ca(name)?
        .ok_or_else(|| ca::CaError::UnknownCa(name.to_string()))?;
    let handle = ctx.keys.open_key(&record.key_uri, Some(store), None)?;
    let result = {
        let key = handle.signing_key(&super::touch)?;
        let issuer = Issuer::load(store, name, key.as_ref())?;
        f(&issuer, &handle)
    };
    handle.finish();
    result
}

/// The chain of CA `name` up to its root, CA first.
pub(super) fn chain_of(store: &Store, name: &str) -> Result<Vec<CaRecord>, Failure> {
    let mut chain = Vec::new();
    let mut next = Some(name.to_string());
    while let Some(n) = next {
        let rec = store
            .ca(&n)?
            .ok_or_else(|| ca::CaError::UnknownCa(n.clone()))?;
        next = rec.parent.clone();
        chain.push(rec);
        if chain.len() > 16 {
            break;
        }
    }
    Ok(chain)
}

fn describe_ca(rec: &CaRecord) -> String {
    format!(
        "CA {:?}\n  subject:     {}\n  issuer:      {}\n  serial:      {}\n  valid:       {} .. {}\n  SHA-256:     {}\n  key:         {}\n  key verdict: {}\n  parent CA:   {}",
        rec.name,
        rec.subject,
        CaCertificate::parse(&rec.certificate_der, "CA certificate")
            .map(|c| if c.is_self_signed() {
                "(self-signed root)".to_string()
            } else {
                issuer_of(&rec.certificate_der)
            })
            .unwrap_or_default(),
        rec.serial,
        format_time(rec.not_before),
        format_time(rec.not_after),
        rec.fingerprint,
        rec.key_uri,
        rec.key_provenance,
        rec.parent.as_deref().unwrap_or("-"),
    )
}

fn issuer_of(der: &[u8]) -> String {
    use der::{Decode, Encode};
    x509_cert::Certificate::from_der(der)
        .ok()
        .and_then(|c| c.tbs_certificate().issuer().to_der().ok())
        .map(|d| hsmsign::x509::dn::describe_name_der(&d))
        .unwrap_or_default()
}

fn ca_json(rec: &CaRecord) -> serde_json::Value {
    json!({
        "name": rec.name,
        "subject": rec.subject,
        "issuer": issuer_of(&rec.certificate_der),
        "serial": rec.serial.to_string(),
        "not_before": format_time(rec.not_before),
        "not_after": format_time(rec.not_after),
        "sha256": rec.fingerprint,
        "key_uri": rec.key_uri,
        "key_provenance": rec.key_provenance,
        "parent": rec.parent,
        "audit_seq": rec.audit_seq,
    })
}

/// Everything a new CA needs checked before the token is touched: the subject, the validity,
/// the key URI, the output path, and a free name in the state.
#[allow(clippy::too_many_arguments)] // the command's own arguments, passed through once
fn prepare_new_ca(
    ctx: &Ctx,
    name: &str,
    key: &str,
    subject: &str,
    days: Option<u64>,
    profile: Profile,
    out: &Option<PathBuf>,
    force: bool,
) -> Result<(DistinguishedName, Validity, Store, Option<AtomicFile>), Failure> {
    let subject = parse_dn(subject)?;
    let validity = Validity::for_profile(profile, days)?;
    ctx.keys.check_key_name(key)?;
    if let Some(o) = out {
        hsmsign::output::check_new(o, force)?;
    }
    let store = ctx.require_store()?;
    if store.ca(name)?.is_some() {
        return Err(ca::CaError::NameTaken(name.to_string()).into());
    }
    // Reserved before the token signs: proves the directory writable.
    let out_file = out
        .as_deref()
        .map(|o| AtomicFile::create(o, force))
        .transpose()?;
    Ok((subject, validity, store, out_file))
}

pub(super) fn run(ctx: &Ctx, cmd: CaCmd) -> CmdResult {
    match cmd {
        CaCmd::Init {
            name,
            key,
            subject,
            days,
            path_len,
            out,
            allow_duplicate_dn,
            force,
        } => {
            let (subject, validity, store, out_file) =
                prepare_new_ca(ctx, &name, &key, &subject, days, Profile::Root, &out, force)?;
            let handle = ctx.keys.open_key(&key, Some(&store), None)?;
            let issued = {
                let key = handle.signing_key(&super::touch)?;
                handle.refuse_existing_certificate()?;
                let (provenance, attestation) = handle.provenance()?;
                let serial = ca::fresh_serial(&store, &mut |n| handle.random(ctx.keys.officer, n))?;
                let issued = ca::create_root(
                    &store,
                    &NewCaRequest {
                        name: &name,
                        subject: &subject,
                        key_uri: &key.name(),
                        public_key: key.public_key(),
                        provenance: &provenance,
                        validity,
                        path_len,
                        serial: &serial,
                        attestation: attestation.as_deref(),
                        allow_duplicate_dn,
                    },
                    key.as_ref(),
                    hsmsign::keys::operator(Some(&handle.holder())),
                )?;
                handle.store_certificate(ctx.keys.officer, &issued.der);
                issued
            };
            handle.finish();
            finish_ca(ctx, &store, &name, &issued, out_file)
        }
        CaCmd::Intermediate {
            name,
            issuer,
            key,
            subject,
            days,
            path_len,
            out,
            allow_duplicate_dn,
            force,
        } => {
            let (subject, validity, store, out_file) = prepare_new_ca(
                ctx,
                &name,
                &key,
                &subject,
                days,
                Profile::Intermediate,
                &out,
                force,
            )?;
            // The issuer's end and path length, before any token is opened.
            ca::check_request(
                &store,
                &issuer,
                &ca::RequestCheck {
                    subject: &subject,
                    public_key: None,
                    profile: Profile::Intermediate,
                    sans: &[],
                    validity,
                    days,
                    path_len: Some(path_len.unwrap_or(0)),
                    allow_duplicate_dn,
                },
            )?;
            let issued = with_issuer(ctx, &store, &issuer, |iss, issuer_handle| {
                // The new CA's key may sit on the issuer's token or YubiKey, or on another one.
                let subject_handle = ctx.keys.open_other(issuer_handle, &key, &store)?;
                let public_key = subject_handle.public_key()?;
                subject_handle.refuse_existing_certificate()?;
                let (provenance, attestation) = subject_handle.provenance()?;
                let serial =
                    ca::fresh_serial(&store, &mut |n| issuer_handle.random(ctx.keys.officer, n))?;
                let issued = ca::create_intermediate(
                    &store,
                    &NewCaRequest {
                        name: &name,
                        subject: &subject,
                        key_uri: &subject_handle.key_name()?,
                        public_key: &public_key,
                        provenance: &provenance,
                        validity,
                        path_len,
                        serial: &serial,
                        attestation: attestation.as_deref(),
                        allow_duplicate_dn,
                    },
                    iss,
                    hsmsign::keys::operator(Some(&issuer_handle.holder())),
                )?;
                subject_handle.store_certificate(ctx.keys.officer, &issued.der);
                subject_handle.finish();
                Ok(issued)
            })?;
            finish_ca(ctx, &store, &name, &issued, out_file)
        }
        CaCmd::SignIntermediate {
            issuer,
            csr,
            days,
            path_len,
            out,
            allow_duplicate_dn,
            force,
        } => {
            let bytes = hsmsign::x509::read_csr_file(&csr)?;
            // A request for a CA: CA:TRUE, keyCertSign and cRLSign are what it should ask for.
            let request = parse_ca_csr(&bytes, &csr.display().to_string())?;
            let subject = request.subject()?;
            let validity = Validity::for_profile(Profile::Intermediate, days)?;
            let path_len = path_len.unwrap_or(0);
            hsmsign::output::check_distinct(&[&out], &[&csr])?;
            let out_file = AtomicFile::create(&out, force)?;
            let store = ctx.require_store()?;
            let capped = ca::check_request(
                &store,
                &issuer,
                &ca::RequestCheck {
                    subject: &subject,
                    public_key: Some(request.public_key()),
                    profile: Profile::Intermediate,
                    sans: &[],
                    validity,
                    days,
                    path_len: Some(path_len),
                    allow_duplicate_dn,
                },
            )?;
            for w in request.ignored() {
                ctx.warn(format!("CSR: {w}"));
            }
            if let Some(note) = requested_constraints_note(&request, path_len) {
                ctx.warn(note);
            }
            let issued = with_issuer(ctx, &store, &issuer, |iss, handle| {
                let serial = ca::fresh_serial(&store, &mut |n| handle.random(ctx.keys.officer, n))?;
                Ok(ca::issue_certificate(
                    &store,
                    iss,
                    &ca::CertRequest {
                        subject: &subject,
                        public_key: request.public_key(),
                        profile: Profile::Intermediate,
                        sans: &[],
                        validity,
                        path_len: Some(path_len),
                        serial: &serial,
                        key_source: "csr".into(),
                        csr: Some(&request),
                        allow_duplicate_dn,
                    },
                    hsmsign::keys::operator(Some(&handle.holder())),
                )?)
            })?;
            let pem = pem_encode("CERTIFICATE", &issued.der);
            super::after_record(
                super::write_reserved(out_file, pem.as_bytes()),
                &format!(
                    "certificate {} was issued and recorded in the state directory (audit record {})",
                    issued.serial, issued.audit_seq
                ),
                &format!(
                    "write it again with `hsmsign cert show --serial {} --out FILE`",
                    issued.serial
                ),
            )?;
            if let Some(n) = issued.notice.as_ref().or(capped.as_ref()) {
                ctx.warn(n);
            }
            let carries = carried_constraints(path_len);
            ctx.emit(
                format!(
                    "Signed an intermediate CA certificate for {} (serial {}); wrote {}.\nIt carries {carries}.\nIt is recorded as a certificate; this appliance does not hold its key.",
                    subject,
                    issued.serial,
                    out.display()
                ),
                json!({
                    "serial": issued.serial.to_string(),
                    "subject": subject.to_string(),
                    "out": out,
                    "audit_seq": issued.audit_seq,
                    "basic_constraints": {"ca": true, "path_len": path_len, "critical": true},
                    "key_usage": ["keyCertSign", "cRLSign"],
                }),
            );
            Ok(())
        }
        CaCmd::Import { name, cert, key } => {
            let bytes = hsmsign::input::read(&cert, InputKind::Certificate)?;
            let parsed = CaCertificate::parse(&bytes, &cert.display().to_string())?;
            ctx.keys.check_key_name(&key)?;
            let store = ctx.require_store()?;
            if store.ca(&name)?.is_some() {
                return Err(ca::CaError::NameTaken(name).into());
            }
            let handle = ctx.keys.open_key(&key, Some(&store), None)?;
            let record = {
                let key_uri = handle.key_name()?;
                let public = handle.public_key()?;
                let (provenance, _) = handle.provenance()?;
                let record = ca::import_ca(
                    &store,
                    &ca::ImportRequest {
                        name: &name,
                        cert: parsed.der(),
                        source: &cert.display().to_string(),
                        key_uri: &key_uri,
                        key_public: &public,
                        provenance: &provenance,
                    },
                    hsmsign::keys::operator(Some(&handle.holder())),
                )?;
                if handle.refuse_existing_certificate().is_ok() {
                    handle.store_certificate(ctx.keys.officer, parsed.der());
                }
                record
            };
            handle.finish();
            for w in parsed.warnings() {
                ctx.warn(w);
            }
            ctx.emit(
                format!("Imported\n{}", describe_ca(&record)),
                json!({"ca": ca_json(&record)}),
            );
            Ok(())
        }
        CaCmd::Show { name } => {
            let store = ctx.require_store()?;
            match name {
                Some(n) => {
                    let chain = chain_of(&store, &n)?;
                    let mut text = describe_ca(&chain[0]);
                    text.push_str("\n  chain:");
                    for c in &chain {
                        text.push_str(&format!("\n    {} ({})", c.subject, c.name));
                    }
                    ctx.emit(
                        text,
                        json!({"ca": ca_json(&chain[0]), "chain": chain.iter().map(|c| c.name.clone()).collect::<Vec<_>>()}),
                    );
                }
                None => {
                    let cas = store.cas()?;
                    let mut text = String::new();
                    for c in &cas {
                        text.push_str(&format!(
                            "{:<20} {}  (until {}, parent {})\n",
                            c.name,
                            c.subject,
                            format_time(c.not_after),
                            c.parent.as_deref().unwrap_or("-")
                        ));
                    }
                    if cas.is_empty() {
                        text.push_str("no CAs yet: `hsmsign ca init` makes a root");
                    }
                    ctx.emit(
                        text.trim_end(),
                        json!({"cas": cas.iter().map(ca_json).collect::<Vec<_>>()}),
                    );
                }
            }
            Ok(())
        }
        CaCmd::Export {
            name,
            chain,
            out,
            force,
        } => {
            hsmsign::output::check_new(&out, force)?;
            let store = ctx.require_store()?;
            let certs = if chain {
                chain_of(&store, &name)?
            } else {
                vec![
                    store
                        .ca(&name)?
                        .ok_or_else(|| ca::CaError::UnknownCa(name.clone()))?,
                ]
            };
            let pem: String = certs
                .iter()
                .map(|c| pem_encode("CERTIFICATE", &c.certificate_der))
                .collect();
            hsmsign::output::write_new(&out, pem.as_bytes(), force)?;
            ctx.emit(
                format!(
                    "Wrote {} certificate(s) to {}: {}",
                    certs.len(),
                    out.display(),
                    certs
                        .iter()
                        .map(|c| c.subject.clone())
                        .collect::<Vec<_>>()
                        .join(" <- ")
                ),
                json!({"out": out, "certificates": certs.iter().map(ca_json).collect::<Vec<_>>()}),
            );
            Ok(())
        }
    }
}

/// What an intermediate CA certificate with `path_len` carries, for the output.
fn carried_constraints(path_len: u8) -> String {
    let reach = match path_len {
        0 => "it may issue end-entity certificates only".to_string(),
        1 => "one more level of intermediate CAs may follow it".to_string(),
        n => format!("{n} more levels of intermediate CAs may follow it"),
    };
    format!(
        "basicConstraints critical CA:TRUE, pathlen:{path_len} ({reach}) and keyUsage critical keyCertSign, cRLSign"
    )
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

fn finish_ca(
    ctx: &Ctx,
    store: &Store,
    name: &str,
    issued: &ca::Issued,
    out_file: Option<AtomicFile>,
) -> CmdResult {
    let out = out_file.as_ref().map(|f| f.path().to_path_buf());
    if let Some(file) = out_file {
        super::after_record(
            super::write_reserved(file, pem_encode("CERTIFICATE", &issued.der).as_bytes()),
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
        ctx.warn(n);
    }
    let rec = store
        .ca(name)?
        .ok_or_else(|| ca::CaError::UnknownCa(name.to_string()))?;
    let mut text = format!("Created\n{}", describe_ca(&rec));
    if let Some(o) = &out {
        text.push_str(&format!("\n  written to:  {}", o.display()));
    }
    ctx.emit(text, json!({"ca": ca_json(&rec), "out": out}));
    Ok(())
}

pub(super) fn run_crl(ctx: &Ctx, cmd: CrlCmd) -> CmdResult {
    match cmd {
        CrlCmd::Generate {
            ca: name,
            days,
            out,
            force,
        } => {
            let out_file = AtomicFile::create(&out, force)?;
            let store = ctx.require_store()?;
            // The window, before the token is opened.
            let record = store
                .ca(&name)?
                .ok_or_else(|| ca::CaError::UnknownCa(name.clone()))?;
            let cert = CaCertificate::parse(
                &record.certificate_der,
                &format!("certificate of CA {name:?}"),
            )?;
            ca::crl_next_update(
                &name,
                cert.not_after(),
                time::OffsetDateTime::now_utc(),
                days,
            )?;
            if !cert.can_sign_crl() {
                return Err(hsmsign::x509::IssueError::CannotSignCrl {
                    subject: cert.subject().to_string(),
                }
                .into());
            }
            let (der, number) = with_issuer(ctx, &store, &name, |iss, handle| {
                Ok(ca::generate_crl(
                    &store,
                    iss,
                    days,
                    hsmsign::keys::operator(Some(&handle.holder())),
                )?)
            })?;
            let revoked = store.revocations(&name)?.len();
            super::after_record(
                super::write_reserved(out_file, pem_encode("X509 CRL", &der).as_bytes()),
                &format!(
                    "CRL number {number} of CA {name:?} was signed and recorded in the state directory"
                ),
                "run `hsmsign crl generate` again for a new CRL (it lists the same revocations)",
            )?;
            ctx.emit(
                format!(
                    "Signed CRL number {number} of CA {name:?} listing {revoked} revoked certificate(s), next update in {days} days; wrote {}.\nNote: JS7 itself reads no CRLs; publish it for JOC Cockpit's web server, proxies and other consumers.",
                    out.display()
                ),
                json!({"ca": name, "crl_number": number, "revoked": revoked, "out": out}),
            );
            Ok(())
        }
    }
}
