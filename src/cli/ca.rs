//! `hsmsign ca ...` and `hsmsign crl generate`.

use std::path::PathBuf;

use clap::Subcommand;
use hsmsign::ca;
use hsmsign::store::{CaRecord, Store};
use hsmsign::x509::{CaCertificate, format_time};
use serde_json::json;

use super::{CmdResult, Ctx, Failure, ca_failure};

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

/// The chain of CA `name` up to its root, CA first.
pub(super) fn chain_of(store: &Store, name: &str) -> Result<Vec<CaRecord>, Failure> {
    ca::chain_of(store, name).map_err(ca_failure)
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
            let store = ctx.require_store()?;
            let created = ca::init(
                &ctx.keys,
                &store,
                &ca::CaInit {
                    name,
                    key,
                    subject,
                    days,
                    path_len,
                    out,
                    allow_duplicate_dn,
                    force,
                },
            )
            .map_err(ca_failure)?;
            print_created(ctx, &created);
            Ok(())
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
            let store = ctx.require_store()?;
            let created = ca::intermediate(
                &ctx.keys,
                &store,
                &ca::CaIntermediate {
                    name,
                    issuer,
                    key,
                    subject,
                    days,
                    path_len,
                    out,
                    allow_duplicate_dn,
                    force,
                },
            )
            .map_err(ca_failure)?;
            print_created(ctx, &created);
            Ok(())
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
            let store = ctx.require_store()?;
            let signed = ca::sign_intermediate(
                &ctx.keys,
                &store,
                &ca::CaSignIntermediate {
                    issuer,
                    csr,
                    days,
                    path_len,
                    out: out.clone(),
                    allow_duplicate_dn,
                    force,
                },
            )
            .map_err(ca_failure)?;
            let carries = carried_constraints(signed.path_len);
            ctx.emit(
                format!(
                    "Signed an intermediate CA certificate for {} (serial {}); wrote {}.\nIt carries {carries}.\nIt is recorded as a certificate; this appliance does not hold its key.",
                    signed.subject,
                    signed.issued.serial,
                    out.display()
                ),
                json!({
                    "serial": signed.issued.serial.to_string(),
                    "subject": signed.subject.to_string(),
                    "out": out,
                    "audit_seq": signed.issued.audit_seq,
                    "basic_constraints": {"ca": true, "path_len": signed.path_len, "critical": true},
                    "key_usage": ["keyCertSign", "cRLSign"],
                }),
            );
            Ok(())
        }
        CaCmd::Import { name, cert, key } => {
            let store = ctx.require_store()?;
            let record = ca::import(&ctx.keys, &store, &ca::CaImport { name, cert, key })
                .map_err(ca_failure)?;
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
            let store = ctx.require_store()?;
            let certs = ca::export(
                &store,
                &ca::CaExport {
                    name,
                    chain,
                    out: out.clone(),
                    force,
                },
            )
            .map_err(ca_failure)?;
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

/// What a new CA's commands print.
fn print_created(ctx: &Ctx, created: &ca::CaCreated) {
    let mut text = format!("Created\n{}", describe_ca(&created.record));
    if let Some(o) = &created.out {
        text.push_str(&format!("\n  written to:  {}", o.display()));
    }
    ctx.emit(
        text,
        json!({"ca": ca_json(&created.record), "out": created.out}),
    );
}

pub(super) fn run_crl(ctx: &Ctx, cmd: CrlCmd) -> CmdResult {
    match cmd {
        CrlCmd::Generate {
            ca: name,
            days,
            out,
            force,
        } => {
            let store = ctx.require_store()?;
            let done = ca::crl(
                &ctx.keys,
                &store,
                &ca::CrlGenerate {
                    ca: name.clone(),
                    days,
                    out: out.clone(),
                    force,
                },
            )
            .map_err(ca_failure)?;
            let (number, revoked) = (done.number, done.revoked);
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
