//! `hsmsign cert ...`: issue, list, show, revoke.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use hsmsign::ca::{self, CertIssue, CertKey};
use hsmsign::encoding::pem_encode;
use hsmsign::store::{CertificateRecord, Store};
use hsmsign::x509::{Profile, RevocationReason, Serial, format_time};
use serde_json::json;
use time::OffsetDateTime;

use super::{CmdResult, Ctx, Failure, ca_failure};

/// Where the certified key comes from: exactly one.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub(crate) struct KeySource {
    /// A CSR made on the instance (PEM or DER): preferred, the key never leaves the instance.
    #[arg(long, value_name = "FILE")]
    csr: Option<PathBuf>,
    /// A key on a token (e.g. an operator's signing key on their own token).
    #[arg(long, value_name = "URI")]
    key: Option<String>,
    /// Make the instance key here (ec-p256) and hand it over in a PKCS#12 key bundle.
    #[arg(long, value_name = "ALG")]
    generate_key: Option<String>,
}

/// Certificate commands.
#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per run; boxing would only obscure clap's derive
pub(crate) enum CertCmd {
    /// Issue a certificate for JOC Cockpit, a Controller, an Agent, or an operator.
    Issue {
        /// The issuing CA.
        #[arg(long, value_name = "CA")]
        ca: String,
        /// server, client, server-client (what JS7 instances use) or signing (operators).
        #[arg(long)]
        profile: String,
        #[command(flatten)]
        source: KeySource,
        /// Subject DN (required with --key and --generate-key; overrides the CSR's).
        #[arg(long, value_name = "DN")]
        subject: Option<String>,
        /// Subject alternative names: DNS:host,IP:1.2.3.4,URI:...,email:... (added to the CSR's).
        #[arg(long, value_name = "LIST")]
        san: Option<String>,
        /// Validity in days (default 2 years for instances, 1 year for signing; at most 10 and
        /// 5 years; never beyond the CA's end).
        #[arg(long, value_parser = super::ca::days_arg, allow_hyphen_values = true)]
        days: Option<u64>,
        /// Write the certificate (PEM) here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the CA bundle (issuing CA up to the root, PEM) here.
        #[arg(long)]
        chain_out: Option<PathBuf>,
        /// With --generate-key: the PKCS#12 key bundle to write.
        #[arg(long, value_name = "FILE")]
        pkcs12: Option<PathBuf>,
        /// With --generate-key: where the PKCS#12 password comes from (prompt, env:, file:, fd:).
        #[arg(long, value_name = "SRC")]
        p12_password_source: Option<String>,
        /// Issue even if a still-valid certificate for another key of this appliance has the same
        /// subject DN (JS7 keeps only one certificate per DN in a trusted directory).
        #[arg(long)]
        allow_duplicate_dn: bool,
        /// Replace existing output files.
        #[arg(long)]
        force: bool,
    },
    /// List issued certificates.
    List {
        /// Only those of this CA.
        #[arg(long, value_name = "CA")]
        ca: Option<String>,
        /// Only unrevoked ones that end within this many days or have ended (30d, 30, 4w).
        #[arg(long, value_name = "DAYS", value_parser = hsmsign::expiry::parse_window)]
        expiring: Option<time::Duration>,
    },
    /// Show one issued certificate.
    Show {
        /// Serial number as `openssl x509 -serial` prints it (colons and case ignored).
        #[arg(long, value_name = "HEX")]
        serial: String,
        /// Also write the certificate (PEM) to this file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
    },
    /// Revoke a certificate (final).
    Revoke {
        /// The CA that issued it.
        #[arg(long, value_name = "CA")]
        ca: String,
        /// Its serial number.
        #[arg(long, value_name = "HEX")]
        serial: String,
        /// unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,
        /// cessationOfOperation, privilegeWithdrawn, aACompromise.
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
}

fn status(store: &Store, rec: &CertificateRecord) -> Result<String, Failure> {
    if let Some(r) = store.revocation(&rec.serial)? {
        return Ok(format!(
            "REVOKED {} ({})",
            format_time(r.revoked_at),
            r.reason.name()
        ));
    }
    let now = OffsetDateTime::now_utc();
    Ok(if rec.not_after <= now {
        "expired".into()
    } else if rec.not_before > now {
        "not yet valid".into()
    } else {
        "valid".into()
    })
}

fn cert_json(store: &Store, rec: &CertificateRecord) -> Result<serde_json::Value, Failure> {
    Ok(json!({
        "serial": rec.serial.to_string(),
        "subject": rec.subject,
        "sans": rec.sans,
        "profile": rec.profile,
        "issuer": rec.issuer,
        "not_before": format_time(rec.not_before),
        "not_after": format_time(rec.not_after),
        "sha256": rec.fingerprint,
        "status": status(store, rec)?,
        "audit_seq": rec.audit_seq,
    }))
}

fn parse_serial(s: &str) -> Result<Serial, Failure> {
    Serial::parse(s).map_err(|e| {
        Failure::Usage(format!(
            "--serial {s:?}: {e}. Give it as `openssl x509 -serial` prints it, e.g. 4A:1F:..."
        ))
    })
}

pub(super) fn run(ctx: &Ctx, cmd: CertCmd) -> CmdResult {
    match cmd {
        CertCmd::Issue {
            ca: ca_name,
            profile,
            source,
            subject,
            san,
            days,
            out,
            chain_out,
            pkcs12,
            p12_password_source,
            allow_duplicate_dn,
            force,
        } => {
            let key = match (source.csr, source.key, source.generate_key) {
                (Some(csr), None, None) => CertKey::Csr(csr),
                (None, Some(key), None) => CertKey::Token(key),
                (None, None, Some(algorithm)) => {
                    let Some(pkcs12) = pkcs12.clone() else {
                        return Err(Failure::Usage(
                            "--generate-key needs --pkcs12 FILE and --p12-password-source SRC: the key leaves this appliance only inside a password-protected PKCS#12".into(),
                        ));
                    };
                    CertKey::Generate {
                        algorithm,
                        pkcs12,
                        password_source: p12_password_source,
                    }
                }
                _ => {
                    return Err(Failure::Usage(
                        "give exactly one of --csr, --key or --generate-key".into(),
                    ));
                }
            };
            if pkcs12.is_some() && !matches!(key, CertKey::Generate { .. }) {
                return Err(Failure::Usage(
                    "--pkcs12 goes with --generate-key only (with --csr the key stays on the instance)".into(),
                ));
            }
            let store = ctx.require_store()?;
            let done = ca::issue(
                &ctx.keys,
                &store,
                &CertIssue {
                    ca: ca_name.clone(),
                    profile,
                    key,
                    subject,
                    san,
                    days,
                    out: out.clone(),
                    chain_out: chain_out.clone(),
                    allow_duplicate_dn,
                    force,
                },
            )
            .map_err(ca_failure)?;
            let (profile, rec) = (done.profile, done.record);
            let mut text = format!(
                "Issued {} certificate\n  subject: {}\n  serial:  {}\n  SHA-256: {}\n  valid:   {} .. {}",
                profile.name(),
                rec.subject,
                rec.serial,
                rec.fingerprint,
                format_time(rec.not_before),
                format_time(rec.not_after)
            );
            if !rec.sans.is_empty() {
                text.push_str(&format!("\n  SANs:    {}", rec.sans.join(", ")));
            }
            for (what, p) in [
                ("certificate", &out),
                ("CA bundle", &chain_out),
                ("PKCS#12", &pkcs12),
            ] {
                if let Some(p) = p {
                    text.push_str(&format!("\n  {what}: {}", p.display()));
                }
            }
            let mut doc = cert_json(&store, &rec)?;
            if profile == Profile::Signing {
                // JS7 builds no chains: the certificate that directly signed this one must be
                // trusted (section 6 of the JS7 notes), and this one goes into the JOC profile.
                text.push_str(&format!(
                    "\n  For JS7: put the certificate of CA {ca_name:?} (its direct issuer; the root alone is not enough, JS7 builds no chains) into config/private/trusted-x509-keys/ of every Controller and Agent that must accept this operator's signatures:\n    hsmsign bundle trusted-keys --ca {ca_name} --out DIR\n  and store this certificate in the operator's JOC Cockpit profile (JOC then sends it with each object)."
                ));
                doc["js7"] = json!({
                    "trusted_x509_keys": [ca_name],
                    "joc_profile_certificate": rec.serial.to_string(),
                });
            }
            doc["out"] = json!(out);
            doc["chain_out"] = json!(chain_out);
            doc["pkcs12"] = json!(pkcs12);
            ctx.emit(text, doc);
            Ok(())
        }
        CertCmd::List {
            ca: filter,
            expiring,
        } => {
            let store = ctx.require_store()?;
            if let Some(c) = &filter
                && store.ca(c)?.is_none()
            {
                return Err(ca::CaError::UnknownCa(c.clone()).into());
            }
            let mut certs = store.certificates(filter.as_deref())?;
            if let Some(window) = expiring {
                let until = OffsetDateTime::now_utc() + window;
                let mut kept = Vec::new();
                for c in certs {
                    if c.not_after <= until && store.revocation(&c.serial)?.is_none() {
                        kept.push(c);
                    }
                }
                certs = kept;
            }
            let mut text = String::new();
            let mut docs = Vec::new();
            for c in &certs {
                let st = status(&store, c)?;
                text.push_str(&format!(
                    "{}  {:<13} {:<20} {}  until {}  [{st}]\n",
                    c.serial,
                    c.profile,
                    c.issuer,
                    c.subject,
                    format_time(c.not_after)
                ));
                docs.push(cert_json(&store, c)?);
            }
            if certs.is_empty() {
                match expiring {
                    Some(w) => text.push_str(&format!(
                        "no unrevoked certificate ends within {} day(s)",
                        w.whole_days()
                    )),
                    None => text.push_str("no certificates"),
                }
            }
            ctx.emit(text.trim_end(), json!({"certificates": docs}));
            Ok(())
        }
        CertCmd::Show { serial, out, force } => {
            let serial = parse_serial(&serial)?;
            if let Some(o) = &out {
                hsmsign::output::check_new(o, force)?;
            }
            let store = ctx.require_store()?;
            let rec = store.certificate(&serial)?.ok_or_else(|| {
                anyhow::anyhow!("no certificate with serial {serial} in the state directory; `hsmsign cert list` shows them")
            })?;
            if let Some(o) = &out {
                hsmsign::output::write_new(
                    o,
                    pem_encode("CERTIFICATE", &rec.der).as_bytes(),
                    force,
                )?;
            }
            let text = format!(
                "certificate {}\n  subject: {}\n  SANs:    {}\n  profile: {}\n  issuer:  CA {:?}\n  valid:   {} .. {}\n  SHA-256: {}\n  status:  {}\n{}",
                rec.serial,
                rec.subject,
                if rec.sans.is_empty() {
                    "-".to_string()
                } else {
                    rec.sans.join(", ")
                },
                rec.profile,
                rec.issuer,
                format_time(rec.not_before),
                format_time(rec.not_after),
                rec.fingerprint,
                status(&store, &rec)?,
                pem_encode("CERTIFICATE", &rec.der).trim_end()
            );
            let mut doc = cert_json(&store, &rec)?;
            doc["pem"] = json!(pem_encode("CERTIFICATE", &rec.der));
            ctx.emit(text, doc);
            Ok(())
        }
        CertCmd::Revoke {
            ca: ca_name,
            serial,
            reason,
        } => {
            let store = ctx.require_store()?;
            let request = ca::CertRevoke {
                ca: ca_name.clone(),
                serial,
                reason,
            };
            let rec = ca::revoke_request(&store, &request).map_err(ca_failure)?;
            let reason = RevocationReason::parse(&request.reason)
                .map_err(|e| Failure::Usage(e.to_string()))?;
            ctx.emit(
                format!(
                    "Revoked {} ({}), reason {}.\nJS7 reads no CRLs: to withdraw it from JS7, remove this certificate (or its signer) from the Controllers' and Agents' config/private/trusted-x509-keys/ and from the https truststores, and re-issue where needed. Publish a new CRL with `hsmsign crl generate --ca {}` for other consumers.",
                    rec.serial,
                    rec.subject,
                    reason.name(),
                    ca_name
                ),
                json!({"serial": rec.serial.to_string(), "subject": rec.subject, "reason": reason.name()}),
            );
            Ok(())
        }
    }
}
