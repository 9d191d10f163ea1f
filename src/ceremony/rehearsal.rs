//! Throwaway SoftHSM2 tokens for a rehearsal: one token per role the ceremony names, in a
//! directory of the rehearsal's own, with PINs drawn from the operating system's RNG and kept in
//! 0600 files there. The ceremony then runs unchanged in a child process whose SoftHSM2
//! configuration points at that directory (the module reads its configuration when it is
//! initialised, so a separate process is the one clean way to give it another).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::keys::pkcs11::resolve_module;

/// An error preparing a rehearsal.
#[derive(Debug, thiserror::Error)]
pub enum RehearsalError {
    /// The rehearsal directory exists already.
    #[error(
        "the rehearsal directory {0} exists already; remove it or name another with --rehearsal-dir"
    )]
    Exists(PathBuf),
    /// A file of the rehearsal could not be written.
    #[error("cannot prepare the rehearsal in {path}: {error}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// SoftHSM2 is not installed.
    #[error("a rehearsal needs SoftHSM2 ({0}); install the softhsm2 package")]
    NoSoftHsm(String),
    /// The operating system's RNG failed.
    #[error("cannot draw the throwaway PINs: {0}")]
    Random(String),
    /// A stand-in could not be made.
    #[error("cannot make {what} for the rehearsal: {detail}")]
    StandIn {
        /// What.
        what: String,
        /// What hsmsign said.
        detail: String,
    },
    /// Making a throwaway token failed.
    #[error("cannot make the throwaway token for role {role:?}: {detail}")]
    Token {
        /// The role.
        role: String,
        /// What the token tool said.
        detail: String,
    },
}

/// A prepared rehearsal directory.
#[derive(Debug)]
pub struct Rehearsal {
    /// The rehearsal's directory (kept afterwards, for review).
    pub dir: PathBuf,
    /// The SoftHSM2 configuration of its tokens.
    pub softhsm_conf: PathBuf,
    /// The SoftHSM2 module.
    pub module: PathBuf,
    /// The state directory of the rehearsal (never the real one).
    pub state: PathBuf,
    /// Where the rehearsal's outputs go.
    pub out: PathBuf,
    /// The user PIN file of every throwaway token.
    pub pin_file: PathBuf,
    so_pin_file: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RehearsalError + '_ {
    move |error| RehearsalError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Eight random decimal digits (a throwaway test PIN, never a real token's).
fn random_digits() -> Result<String, RehearsalError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| RehearsalError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| char::from(b'0' + b % 10)).collect())
}

fn write_secret(path: &Path, text: &str) -> Result<(), RehearsalError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    f.write_all(text.as_bytes()).map_err(io(path))
}

impl Rehearsal {
    /// Make the directory `dir` (which must not exist) with a SoftHSM2 configuration, PIN files,
    /// an empty state directory and an output directory.
    pub fn prepare(dir: &Path) -> Result<Self, RehearsalError> {
        let module =
            resolve_module(None, None).map_err(|e| RehearsalError::NoSoftHsm(e.to_string()))?;
        if fs::symlink_metadata(dir).is_ok() {
            return Err(RehearsalError::Exists(dir.to_path_buf()));
        }
        let mut builder = fs::DirBuilder::new();
        builder.mode(0o700).recursive(true);
        let tokens = dir.join("tokens");
        let out = dir.join("out");
        for d in [dir, &tokens, &out] {
            builder.create(d).map_err(io(d))?;
        }
        let dir = dir.canonicalize().map_err(io(dir))?;
        let tokens = dir.join("tokens");
        let softhsm_conf = dir.join("softhsm2.conf");
        fs::write(
            &softhsm_conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .map_err(io(&softhsm_conf))?;
        let pin_file = dir.join("user-pin");
        let so_pin_file = dir.join("so-pin");
        write_secret(&pin_file, &random_digits()?)?;
        write_secret(&so_pin_file, &random_digits()?)?;
        Ok(Self {
            state: dir.join("state"),
            out: dir.join("out"),
            dir,
            softhsm_conf,
            module,
            pin_file,
            so_pin_file,
        })
    }

    /// The token label of `role`'s throwaway token.
    pub fn label(role: &str) -> String {
        format!("rehearsal {role}")
    }

    /// A command running `exe` against the throwaway tokens: SoftHSM2's configuration, the
    /// module, the rehearsal's state and PIN file, in the output directory.
    pub fn command(&self, exe: &Path) -> Command {
        let mut cmd = Command::new(exe);
        cmd.env("SOFTHSM2_CONF", &self.softhsm_conf)
            .env("HSMSIGN_MODULE", &self.module)
            .env("HSMSIGN_STATE", &self.state)
            .env(
                "HSMSIGN_PIN_SOURCE",
                format!("file:{}", self.pin_file.display()),
            )
            .current_dir(&self.out);
        cmd
    }

    /// Make `role`'s throwaway token with `exe`'s own `token init`.
    pub fn make_token(&self, exe: &Path, role: &str) -> Result<String, RehearsalError> {
        let label = Self::label(role);
        let out = self
            .command(exe)
            .args(["token", "init", "--label", &label, "--so-pin-source"])
            .arg(format!("file:{}", self.so_pin_file.display()))
            .output()
            .map_err(|e| RehearsalError::Token {
                role: role.to_string(),
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(RehearsalError::Token {
                role: role.to_string(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(label)
    }
}

impl Rehearsal {
    /// Run `exe` with `args` against the throwaway tokens; its output, or why it failed.
    fn hsmsign(&self, exe: &Path, what: &str, args: &[&str]) -> Result<String, RehearsalError> {
        let out = self
            .command(exe)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| RehearsalError::StandIn {
                what: what.to_string(),
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(RehearsalError::StandIn {
                what: what.to_string(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The throwaway token holding the keys of stand-in CAs.
const STAND_INS: &str = "stand-ins";

/// The URI of a throwaway token, encoded as every other URI hsmsign writes.
fn token_uri(label: &str) -> String {
    crate::keys::pkcs11::Pkcs11Uri {
        token: Some(label.to_string()),
        ..Default::default()
    }
    .to_string()
}

/// The `--key` URI of `object` (with its hex `id`) on the throwaway token `label`: the same
/// construction the ceremony's site binding uses.
fn uri(label: &str, object: &str, id: Option<&str>) -> Result<String, RehearsalError> {
    super::site::Binding {
        token: token_uri(label),
        module: None,
        pin_source: None,
    }
    .key_uri(&super::file::KeyRef {
        token: label.to_string(),
        label: object.to_string(),
        id: id.map(str::to_string),
    })
    .map_err(|detail| RehearsalError::StandIn {
        what: format!("the URI of {object:?}"),
        detail,
    })
}

/// A TOML basic string (JSON's escapes are TOML's).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// What the rehearsal prepared, for the officer.
#[derive(Debug)]
pub struct Prepared {
    /// The rehearsal.
    pub rehearsal: Rehearsal,
    /// The site file binding the roles to the throwaway tokens.
    pub site: PathBuf,
    /// The stand-ins, in words.
    pub stand_ins: Vec<String>,
    /// The substitutions file the ceremony runs with.
    pub substitutions: PathBuf,
}

/// Prepare a rehearsal of `file` in `dir`: a throwaway token per role; stand-ins for what the
/// file uses but only the real site has (a CA of the state: a throwaway root of the same name; a
/// key made before the ceremony: a throwaway key of the same label; an operator's signing
/// certificate: one for that throwaway key, with the same subject); a site file binding the
/// roles; one throwaway secret answering every password the file asks for.
pub fn prepare(
    exe: &Path,
    file: &super::file::CeremonyFile,
    input_dir: &Path,
    dir: &Path,
) -> Result<Prepared, RehearsalError> {
    use super::file::{FileRef, Step};
    let r = Rehearsal::prepare(dir)?;
    let mut stand_ins = Vec::new();
    let mut site = String::from(
        "# Written by hsmsign for a rehearsal: every role is bound to a throwaway SoftHSM2 token.\n",
    );
    for role in file.tokens.keys() {
        let label = r.make_token(exe, role)?;
        site.push_str(&format!(
            "\n[role.{}]\ntoken = {}\nmodule = {}\n",
            toml_str(role),
            toml_str(&token_uri(&label)),
            toml_str(&r.module.display().to_string())
        ));
    }
    let stand_in_label = r.make_token(exe, STAND_INS)?;
    let secret = r.dir.join("secret");
    write_secret(&secret, &random_digits()?)?;

    // CAs the file uses but does not make, and keys it uses but does not make.
    let mut made_cas: Vec<&str> = Vec::new();
    let mut made_keys: Vec<(&str, &str)> = Vec::new();
    let mut stand_in_cas: Vec<String> = Vec::new();
    for step in &file.steps {
        for ca in step.needs_cas() {
            if !made_cas.contains(&ca) && !stand_in_cas.iter().any(|c| c == ca) {
                let key = uri(&stand_in_label, &format!("{ca}-key"), None)?;
                r.hsmsign(
                    exe,
                    &format!("the key of stand-in CA {ca:?}"),
                    &["key", "generate", "--key", &key, "--algorithm", "ec-p256"],
                )?;
                r.hsmsign(
                    exe,
                    &format!("stand-in CA {ca:?}"),
                    &[
                        "ca",
                        "init",
                        "--name",
                        ca,
                        "--key",
                        &key,
                        "--subject",
                        &format!("CN={ca} (rehearsal stand-in), O=hsmsign rehearsal"),
                    ],
                )?;
                stand_ins.push(format!(
                    "CA {ca:?}: a throwaway root of the same name (the state's own is not used)"
                ));
                stand_in_cas.push(ca.to_string());
            }
        }
        if let Some(ca) = step.creates_ca() {
            made_cas.push(ca);
        }
        if let Step::KeyGenerate(s) = step {
            made_keys.push((&s.key.token, &s.key.label));
            continue;
        }
        // A key made before the ceremony (an imported CA's key cannot be stood in for: its
        // certificate names the real one).
        if let Some(k) = step.key().filter(|_| !matches!(step, Step::CaImport(_)))
            && !made_keys.contains(&(k.token.as_str(), k.label.as_str()))
        {
            let rsa = matches!(step, Step::ArchiveSign(s) if s.algorithm.as_deref().is_some_and(|a| a.ends_with("withRSA")));
            let alg = if rsa { "rsa-3072" } else { "ec-p256" };
            r.hsmsign(
                exe,
                &format!("stand-in key {:?}", k.label),
                &[
                    "key",
                    "generate",
                    "--key",
                    &uri(&Rehearsal::label(&k.token), &k.label, k.id.as_deref())?,
                    "--algorithm",
                    alg,
                ],
            )?;
            stand_ins.push(format!(
                "key {:?} on {:?}: a throwaway {alg} key of the same label",
                k.label, k.token
            ));
            made_keys.push((&k.token, &k.label));
        }
    }
    // Signing certificates read from files: one for the throwaway key, same subject, issued by
    // the first stand-in CA (or one of the rehearsal's own).
    let mut inputs = std::collections::BTreeMap::new();
    for step in &file.steps {
        let Step::ArchiveSign(s) = step else { continue };
        let Ok(FileRef::Path(p)) = FileRef::parse(&s.cert) else {
            continue;
        };
        let path = input_dir.join(p);
        if inputs.contains_key(&path) {
            continue;
        }
        let subject = crate::x509::read_certificate_file(&path)
            .ok()
            .and_then(|der| {
                use der::Decode;
                // The slash form, in the certificate's own order.
                x509_cert::Certificate::from_der(&der).ok().map(|c| {
                    c.tbs_certificate()
                        .subject()
                        .as_ref()
                        .iter()
                        .map(|rdn| format!("/{rdn}"))
                        .collect::<String>()
                })
            })
            .unwrap_or_else(|| "CN=Rehearsal Operator".into());
        let issuer = match stand_in_cas.first() {
            Some(ca) => ca.clone(),
            None => {
                let key = uri(&stand_in_label, "operators-key", None)?;
                r.hsmsign(
                    exe,
                    "the key of the rehearsal's operator CA",
                    &["key", "generate", "--key", &key, "--algorithm", "ec-p256"],
                )?;
                r.hsmsign(
                    exe,
                    "the rehearsal's operator CA",
                    &[
                        "ca",
                        "init",
                        "--name",
                        "rehearsal-operators",
                        "--key",
                        &key,
                        "--subject",
                        "CN=Rehearsal Operators CA, O=hsmsign rehearsal",
                    ],
                )?;
                stand_in_cas.push("rehearsal-operators".into());
                "rehearsal-operators".into()
            }
        };
        let out = r.dir.join(format!("stand-in-{}.pem", s.id));
        r.hsmsign(
            exe,
            &format!("the stand-in signing certificate of step {:?}", s.id),
            &[
                "cert",
                "issue",
                "--ca",
                &issuer,
                "--profile",
                "signing",
                "--key",
                &uri(
                    &Rehearsal::label(&s.key.token),
                    &s.key.label,
                    s.key.id.as_deref(),
                )?,
                "--subject",
                &subject,
                "--out",
                &out.display().to_string(),
            ],
        )?;
        stand_ins.push(format!("certificate {}: one for the throwaway key with subject {subject}, issued by CA {issuer:?}", path.display()));
        inputs.insert(path, out);
    }
    let site_path = r.dir.join("site.toml");
    fs::write(&site_path, site).map_err(io(&site_path))?;
    let subst = super::plan::Substitutions {
        inputs,
        secret_file: Some(secret),
    };
    let substitutions = r.dir.join("substitutions.json");
    fs::write(
        &substitutions,
        serde_json::to_vec_pretty(&subst).unwrap_or_default(),
    )
    .map_err(io(&substitutions))?;
    Ok(Prepared {
        rehearsal: r,
        site: site_path,
        stand_ins,
        substitutions,
    })
}
