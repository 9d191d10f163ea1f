//! `hsmsign bundle ...` (CA bundles, truststores, JS7 private.conf snippets) and the in-memory
//! instance key of `cert issue --generate-key`.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use hsmsign::bundle::{self, Js7Role};
use serde_json::json;

use super::{CmdResult, Ctx, Failure};

/// Bundle commands.
#[derive(Subcommand, Debug)]
pub(crate) enum BundleCmd {
    /// The CA bundle of one or more CAs: PEM, or a PKCS#12 truststore the JVM loads
    /// (JS7's https-truststore.p12).
    Truststore {
        /// A CA to include (repeat: --ca root --ca issuing).
        #[arg(long = "ca", value_name = "CA", required = true)]
        cas: Vec<String>,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// Write a password-protected PKCS#12 truststore instead of PEM.
        #[arg(long)]
        pkcs12: bool,
        /// With --pkcs12: where the store password comes from (prompt, env:, file:, fd:).
        #[arg(long, value_name = "SRC")]
        password_source: Option<String>,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
    },
    /// The content of a JS7 trusted-x509-keys directory: one PEM file per CA, as Controllers
    /// and Agents read it. Give the direct issuer of the operators' signing certificates.
    TrustedKeys {
        /// A CA to trust (repeat: --ca issuing --ca issuing-2027).
        #[arg(long = "ca", value_name = "CA", required = true)]
        cas: Vec<String>,
        /// The directory to write the files into (made if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace existing files of the same names.
        #[arg(long)]
        force: bool,
    },
    /// Print the private.conf lines a Controller or Agent needs for this certificate.
    Js7Config {
        /// The instance's certificate (PEM or DER).
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// controller or agent.
        #[arg(long, value_enum, default_value_t = Role::Controller)]
        role: Role,
        /// The key's alias in https-keystore.p12 (lower case; default: the alias of every key
        /// bundle hsmsign writes, "https").
        #[arg(long, conflicts_with = "keystore")]
        alias: Option<String>,
        /// Read the alias from this key bundle (https-keystore.p12), and check that it holds the
        /// key of --cert.
        #[arg(long, value_name = "FILE")]
        keystore: Option<PathBuf>,
        /// With --keystore: where its password comes from (prompt, env:VAR, file:PATH, fd:N).
        #[arg(long, value_name = "SRC", requires = "keystore")]
        password_source: Option<String>,
    },
}

/// A JS7 instance kind.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Role {
    /// A Controller.
    Controller,
    /// An Agent.
    Agent,
}

pub(super) fn run(ctx: &Ctx, cmd: BundleCmd) -> CmdResult {
    match cmd {
        BundleCmd::Truststore {
            cas,
            out,
            pkcs12,
            password_source,
            force,
        } => {
            let request = bundle::Truststore {
                cas,
                out,
                pkcs12,
                password_source,
                force,
            };
            // The output and the options first, then the state.
            hsmsign::output::check_new(&request.out, request.force)?;
            if request.password_source.is_some() && !request.pkcs12 {
                return Err(Failure::Usage(
                    "--password-source goes with --pkcs12".into(),
                ));
            }
            let store = ctx.require_store()?;
            let records =
                bundle::truststore(&ctx.keys, &store, &request).map_err(bundle_failure)?;
            ctx.emit(
                format!(
                    "Wrote a {} truststore with {} CA certificate(s) to {}: {}",
                    if pkcs12 { "PKCS#12" } else { "PEM" },
                    records.len(),
                    request.out.display(),
                    records
                        .iter()
                        .map(|r| r.subject.clone())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                json!({"out": request.out, "format": if pkcs12 {"pkcs12"} else {"pem"}, "cas": request.cas}),
            );
            Ok(())
        }
        BundleCmd::TrustedKeys { cas, out, force } => {
            let store = ctx.require_store()?;
            let request = bundle::TrustedKeys { cas, out, force };
            let written =
                bundle::trusted_keys(&ctx.keys, &store, &request).map_err(bundle_failure)?;
            let mut text = format!(
                "Wrote {} trusted certificate file(s) into {}:",
                written.files.len(),
                request.out.display()
            );
            for f in &written.files {
                text.push_str(&format!("\n  {}  {}", f.file_name, f.subject));
            }
            text.push_str("\nCopy them into config/private/trusted-x509-keys/ of every Controller and Agent (JS7 reads the directory again without a restart).");
            ctx.emit(
                text,
                json!({
                    "out": request.out,
                    "files": written.files.iter().map(|f| json!({"file": f.file_name, "subject": f.subject})).collect::<Vec<_>>(),
                }),
            );
            Ok(())
        }
        BundleCmd::Js7Config {
            cert,
            role,
            alias,
            keystore,
            password_source,
        } => {
            let role = match role {
                Role::Controller => Js7Role::Controller,
                Role::Agent => Js7Role::Agent,
            };
            let snippet = bundle::private_conf(
                &ctx.keys,
                &bundle::Js7Config {
                    cert,
                    role,
                    alias,
                    keystore,
                    password_source,
                },
            )
            .map_err(bundle_failure)?;
            ctx.emit(
                snippet.text.trim_end(),
                json!({"private_conf": snippet.text, "distinguished_name": snippet.distinguished_name}),
            );
            Ok(())
        }
    }
}

/// A bundle use case's error: its usage errors exit with status 2, the rest with 1.
fn bundle_failure(e: bundle::BundleUseError) -> Failure {
    match e {
        bundle::BundleUseError::Usage(m) => Failure::Usage(m),
        e => Failure::Failed(e.into()),
    }
}
