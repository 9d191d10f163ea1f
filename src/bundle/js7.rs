//! The `private.conf` lines (HOCON) that point a JS7 Controller or Agent at its key bundle and
//! truststore, and that let its peers accept its certificate for mutual TLS.

use std::fmt::Write as _;

use super::BundleError;
use super::dn::subject_dn_rfc2253;

/// Placeholder for the key bundle's password (JS7's `key-password` and `store-password`).
pub const KEYSTORE_PASSWORD_PLACEHOLDER: &str = "<KEYSTORE-PASSWORD>";
/// Placeholder for the truststore's password.
pub const TRUSTSTORE_PASSWORD_PLACEHOLDER: &str = "<TRUSTSTORE-PASSWORD>";

/// The kind of JS7 instance a certificate belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Js7Role {
    /// A Controller: a TLS server for JOC Cockpit, a TLS client towards its Agents and its
    /// cluster partner. Agents map its certificate to the Controller ID.
    Controller,
    /// An Agent: a TLS server for the Controller; a Director Agent is also a TLS client towards
    /// its Subagents and its pairing Director, which map its certificate to its Subagent ID.
    Agent,
}

impl Js7Role {
    fn name(self) -> &'static str {
        match self {
            Self::Controller => "Controller",
            Self::Agent => "Agent",
        }
    }

    /// The placeholder for the account the peers map this certificate to.
    pub fn account_placeholder(self) -> &'static str {
        match self {
            Self::Controller => "<CONTROLLER-ID>",
            Self::Agent => "<SUBAGENT-ID>",
        }
    }
}

/// The `private.conf` snippet for the instance that holds the certificate `cert_der` (DER) in
/// a key bundle under `alias`.
///
/// Part 1 goes into the instance's own `config/private/private.conf`: `js7.web.https.keystore`
/// (`file=${js7.config-directory}"/private/https-keystore.p12"`, key and store password, alias)
/// and `js7.web.https.truststores` (`https-truststore.p12`). Part 2 goes into the private.conf of
/// the instances that this one connects to as a TLS client: `js7.auth.users.<account>` with the
/// certificate's subject DN as the JVM prints it (see [`super::subject_dn_rfc2253`]); for an
/// Agent it also grants `permissions=[ AgentDirector ]`.
///
/// No password is ever written. The operator replaces these placeholders (keeping the quotes):
/// [`KEYSTORE_PASSWORD_PLACEHOLDER`], [`TRUSTSTORE_PASSWORD_PLACEHOLDER`] and
/// [`Js7Role::account_placeholder`] (the Controller ID, or the Director Agent's Subagent ID). The
/// text lists them in its header comment.
pub fn js7_config(cert_der: &[u8], role: Js7Role, alias: &str) -> Result<String, BundleError> {
    super::check_key_alias(alias)?;
    let dn = subject_dn_rfc2253(cert_der)?;
    let name = role.name();
    let account = role.account_placeholder();
    let keystore_pw = KEYSTORE_PASSWORD_PLACEHOLDER;
    let truststore_pw = TRUSTSTORE_PASSWORD_PLACEHOLDER;
    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        out,
        "\
# JS7 {name} private.conf settings (HOCON) for the certificate
#   {dn}
# Replace these placeholders before use, keeping the double quotes around them
# (inside quotes write \\\" for a quote and \\\\ for a backslash):
#   {keystore_pw:<22} the password of https-keystore.p12 (key and store share it)
#   {truststore_pw:<22} the password of https-truststore.p12
#   {account:<22} {account_help}

# Part 1: this {name}'s config/private/private.conf
# (https-keystore.p12 and https-truststore.p12 go into config/private/).
js7 {{
  web {{
    https {{
      keystore {{
        file=${{js7.config-directory}}\"/private/https-keystore.p12\"
        key-password=\"{keystore_pw}\"
        store-password=\"{keystore_pw}\"
        alias={alias}
      }}
      truststores=[
        {{
          file=${{js7.config-directory}}\"/private/https-truststore.p12\"
          store-password=\"{truststore_pw}\"
        }}
      ]
    }}
  }}
}}

# Part 2: {part2_where}
# so that they accept this certificate as a TLS client. List every instance's DN there
# (both instances of a cluster).
js7 {{
  auth {{
    users {{
      \"{account}\" {{
{permissions}        distinguished-names=[
          {dn_quoted}
        ]
      }}
    }}
  }}
}}
",
        account_help = match role {
            Js7Role::Controller => "the Controller ID given when the Controller was installed",
            Js7Role::Agent => "the Subagent ID of this Director Agent instance (not the Agent ID)",
        },
        alias = hocon_string(alias),
        part2_where = match role {
            Js7Role::Controller =>
                "the private.conf of every Agent (and of the partner Controller of a cluster),",
            Js7Role::Agent =>
                "the private.conf of every Subagent and of the pairing Director Agent instance,",
        },
        permissions = match role {
            Js7Role::Controller => "",
            Js7Role::Agent => "        permissions=[ AgentDirector ]\n",
        },
        dn_quoted = hocon_string(&dn),
    );
    Ok(out)
}

/// A HOCON quoted string (JSON string syntax).
pub(super) fn hocon_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
