//! `ceremony check`, the static part: everything that can be known from the ceremony file, the
//! site binding and the input files, with no token opened and nothing written.
//!
//! What depends on the CA state and the tokens (CA names free or existing, validity inside the
//! issuer's, key labels free) is asked of a [`StateCheck`]; [`NoState`] answers nothing, and
//! the runner supplies one that calls each use case's `validate()`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::file::{CeremonyFile, FileRef, Step};
use super::site::{SiteFile, check_source};

/// The longest validity a step may ask for, in days (100 years).
pub const MAX_DAYS: u64 = 36_500;

/// Key algorithms `key generate` and `--generate-key` make.
pub const KEY_ALGORITHMS: &[&str] = &["ec-p256", "ec-p384", "rsa-3072", "rsa-4096"];

/// Certificate profiles of `cert issue`.
pub const PROFILES: &[&str] = &["server", "client", "server-client", "signing"];

/// One thing wrong with a ceremony.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// The step it concerns, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

/// One step of the plan.
#[derive(Clone, Debug, Serialize)]
pub struct PlanStep {
    /// Step id.
    pub id: String,
    /// Step kind.
    pub kind: String,
    /// The hsmsign command it stands for.
    pub command: String,
    /// The token role it touches, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The key's PKCS#11 URI through the site binding, when bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_uri: Option<String>,
    /// The key's label on that token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_label: Option<String>,
    /// The CA whose token key signs in this step, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signs_with_ca: Option<String>,
    /// The files it reads, resolved.
    pub inputs: Vec<PathBuf>,
    /// The files it writes, resolved.
    pub outputs: Vec<PathBuf>,
}

/// The plan and the findings.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The ceremony's name.
    pub name: String,
    /// Its purpose.
    pub purpose: String,
    /// Each step in order.
    pub plan: Vec<PlanStep>,
    /// Everything wrong; empty when the ceremony may run.
    pub findings: Vec<Finding>,
    /// Worth a look, not wrong.
    pub notes: Vec<Finding>,
}

impl Report {
    /// Whether nothing was found.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// The plan and findings as text for the officer.
    pub fn human(&self) -> String {
        let mut s = format!("ceremony {:?}: {}\n", self.name, self.purpose);
        for (n, p) in self.plan.iter().enumerate() {
            s.push_str(&format!(
                "{:>3}. {} ({}: hsmsign {})\n",
                n + 1,
                p.id,
                p.kind,
                p.command
            ));
            if let Some(t) = &p.token {
                s.push_str(&format!(
                    "       token {t}{}{}\n",
                    p.key_label
                        .as_deref()
                        .map(|l| format!(", key {l:?}"))
                        .unwrap_or_default(),
                    p.key_uri
                        .as_deref()
                        .map(|u| format!(" = {u}"))
                        .unwrap_or_default()
                ));
            }
            if let Some(ca) = &p.signs_with_ca {
                s.push_str(&format!("       signs with the key of CA {ca:?}\n"));
            }
            for i in &p.inputs {
                s.push_str(&format!("       reads  {}\n", i.display()));
            }
            for o in &p.outputs {
                s.push_str(&format!("       writes {}\n", o.display()));
            }
        }
        for n in &self.notes {
            s.push_str(&format!("note: {}\n", n.message));
        }
        if self.findings.is_empty() {
            s.push_str("check passed: no finding\n");
        } else {
            s.push_str(&format!("{} finding(s):\n", self.findings.len()));
            for f in &self.findings {
                match &f.step {
                    Some(id) => s.push_str(&format!("  step {id}: {}\n", f.message)),
                    None => s.push_str(&format!("  {}\n", f.message)),
                }
            }
        }
        s
    }
}

/// The checks that need the CA state or a token: phase 2 implements this with the use cases'
/// `validate()` (CA names free or existing, validity inside the issuer's, labels free).
pub trait StateCheck {
    /// Findings for one step; `made` are the CAs earlier steps of the ceremony create.
    fn check_step(&self, step: &Step, made: &BTreeSet<String>) -> Vec<String>;
}

/// No state: the static check alone.
#[derive(Debug, Default)]
pub struct NoState;

impl StateCheck for NoState {
    fn check_step(&self, _step: &Step, _made: &BTreeSet<String>) -> Vec<String> {
        Vec::new()
    }
}

/// Where a ceremony's relative paths go: inputs against the ceremony file's directory, outputs
/// against the output directory (the working directory, or the rehearsal's).
#[derive(Clone, Debug)]
pub struct Paths {
    /// The ceremony file's directory.
    pub input_dir: PathBuf,
    /// Where outputs go.
    pub output_dir: PathBuf,
}

impl Paths {
    fn output(&self, p: &Path) -> PathBuf {
        self.output_dir.join(p)
    }
    fn input(&self, p: &Path) -> PathBuf {
        self.input_dir.join(p)
    }
}

/// What kind of content an input must have.
fn input_kind(step: &Step, flag: &str) -> &'static str {
    match (step, flag) {
        (Step::CaSignIntermediate(_), "csr") => "ca-csr",
        (_, "csr") => "csr",
        (Step::ArchiveVerify(_), "trusted" | "node") => "trusted",
        (_, "cert") => "cert",
        _ => "file",
    }
}

/// Reads and parses an input that exists now.
fn check_input_file(path: &Path, kind: &str) -> Result<(), String> {
    let name = path.display().to_string();
    match kind {
        "csr" | "ca-csr" => {
            let bytes = crate::x509::csr::read_csr_file(path).map_err(|e| e.to_string())?;
            if kind == "csr" {
                crate::x509::csr::parse_csr(&bytes, &name).map(drop)
            } else {
                crate::x509::csr::parse_ca_csr(&bytes, &name).map(drop)
            }
            .map_err(|e| e.to_string())
        }
        "cert" => crate::x509::read_certificate_file(path)
            .map(drop)
            .map_err(|e| e.to_string()),
        "trusted" => crate::archive::read_trusted_source(path)
            .map(drop)
            .map_err(|e| e.to_string()),
        _ => std::fs::metadata(path)
            .map(drop)
            .map_err(|e| format!("{name}: {e}")),
    }
}

/// The key algorithm family an archive signature algorithm needs.
fn signature_family(alg: &str) -> Option<&'static str> {
    if alg.ends_with("withECDSA") {
        Some("ec")
    } else if alg.ends_with("withRSA") {
        Some("rsa")
    } else {
        None
    }
}

/// The CA whose key signs in a step.
fn signing_ca(step: &Step) -> Option<&str> {
    match step {
        Step::CaIntermediate(s) => Some(&s.issuer),
        Step::CaSignIntermediate(s) => Some(&s.issuer),
        Step::CertIssue(s) => Some(&s.ca),
        Step::KeyBundle(s) => Some(&s.ca),
        Step::Crl(s) => Some(&s.ca),
        Step::AuditAnchor(s) => Some(&s.ca),
        _ => None,
    }
}

/// Checks a ceremony statically. `site` is the binding and where it came from (`None`: no
/// binding given, so the roles are not checked against one).
pub fn check(
    file: &CeremonyFile,
    site: Option<(&SiteFile, &str)>,
    paths: &Paths,
    state: &dyn StateCheck,
) -> Report {
    let mut findings = Vec::new();
    let mut plan = Vec::new();
    let mut ids = BTreeSet::new();
    // step id -> flag -> resolved output path
    let mut outputs: BTreeMap<String, BTreeMap<&'static str, PathBuf>> = BTreeMap::new();
    let mut all_outputs: BTreeMap<PathBuf, String> = BTreeMap::new();
    let later_ids: BTreeSet<&str> = file.steps.iter().map(Step::id).collect();
    let later_cas: BTreeSet<&str> = file.steps.iter().filter_map(Step::creates_ca).collect();
    let mut made_cas: BTreeSet<String> = BTreeSet::new();
    let mut ca_days: BTreeMap<String, u64> = BTreeMap::new();
    // (role, label) -> algorithm, for keys generated in the ceremony
    let mut key_algs: BTreeMap<(String, String), String> = BTreeMap::new();

    if file.steps.is_empty() {
        findings.push(Finding {
            step: None,
            message: "the ceremony has no [[step]]: add the steps it is to do".into(),
        });
    }
    let mut used_roles = BTreeSet::new();
    let mut notes = Vec::new();

    for step in &file.steps {
        let id = step.id().to_owned();
        let mut f = |m: String| {
            findings.push(Finding {
                step: Some(id.clone()),
                message: m,
            })
        };
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            f(format!(
                "step id {id:?} must be letters, digits, - or _ (it is used in @{id}.out references)"
            ));
        }
        if !ids.insert(id.clone()) {
            f(format!(
                "step id {id:?} is used twice: give each step its own id"
            ));
        }
        // Token and key.
        let (mut token, mut key_uri, mut key_label) = (None, None, None);
        if let Some(k) = step.key() {
            used_roles.insert(k.token.clone());
            if !file.tokens.contains_key(&k.token) {
                f(format!(
                    "key {:?} is on token role {:?}, which [tokens] does not declare: add [tokens.{}]",
                    k.label, k.token, k.token
                ));
            }
            if k.label.is_empty() {
                f("the key's label is empty: name the key object".into());
            }
            if let Some(hexid) = &k.id
                && (hexid.is_empty()
                    || hexid.len() % 2 != 0
                    || !hexid.chars().all(|c| c.is_ascii_hexdigit()))
            {
                f(format!("key id {hexid:?} is not hex bytes (e.g. \"01\")"));
            }
            token = Some(k.token.clone());
            key_label = Some(k.label.clone());
            if let Some(b) = site.and_then(|(s, _)| s.role.get(&k.token)) {
                match b.key_uri(k) {
                    Ok(u) => key_uri = Some(u),
                    Err(e) => f(format!("key {:?}: {e}", k.label)),
                }
            }
        }
        // Algorithms.
        match step {
            Step::KeyGenerate(s) => {
                if KEY_ALGORITHMS.contains(&s.algorithm.as_str()) {
                    key_algs.insert(
                        (s.key.token.clone(), s.key.label.clone()),
                        s.algorithm.clone(),
                    );
                } else {
                    f(format!(
                        "algorithm {:?} is not one hsmsign makes: use {}",
                        s.algorithm,
                        KEY_ALGORITHMS.join(", ")
                    ));
                }
            }
            Step::KeyBundle(s) if !KEY_ALGORITHMS.contains(&s.generate_key.as_str()) => {
                f(format!(
                    "generate-key {:?} is not one hsmsign makes: use {}",
                    s.generate_key,
                    KEY_ALGORITHMS.join(", ")
                ));
            }
            Step::ArchiveSign(s) => {
                if let Some(alg) = &s.algorithm {
                    match signature_family(alg) {
                        None => f(format!(
                            "algorithm {alg:?} is not a JS7 signature algorithm: use SHA256withECDSA, SHA512withECDSA, SHA256withRSA or SHA512withRSA"
                        )),
                        Some(fam) => {
                            if let Some(kalg) =
                                key_algs.get(&(s.key.token.clone(), s.key.label.clone()))
                                && !kalg.starts_with(fam)
                            {
                                f(format!(
                                    "algorithm {alg} does not fit key {:?}, made as {kalg} in an earlier step: use a {} algorithm or another key",
                                    s.key.label,
                                    if kalg.starts_with("ec") {
                                        "withECDSA"
                                    } else {
                                        "withRSA"
                                    }
                                ));
                            }
                        }
                    }
                }
                if s.sessions == Some(0) {
                    f("sessions = 0: give at least 1".into());
                }
            }
            _ => {}
        }
        // Profiles and the cert-issue key choice.
        match step {
            Step::CertIssue(s) => {
                if !PROFILES.contains(&s.profile.as_str()) {
                    f(format!(
                        "profile {:?} is not one of {}",
                        s.profile,
                        PROFILES.join(", ")
                    ));
                }
                match (&s.csr, &s.key) {
                    (Some(_), Some(_)) => f("give csr or key, not both".into()),
                    (None, None) => f("give csr (a request file) or key (a token key with subject); for a software key use kind = \"key-bundle\"".into()),
                    (None, Some(_)) if s.subject.is_none() => f("a token key needs subject".into()),
                    _ => {}
                }
            }
            Step::KeyBundle(s) if !PROFILES.contains(&s.profile.as_str()) => {
                f(format!(
                    "profile {:?} is not one of {}",
                    s.profile,
                    PROFILES.join(", ")
                ));
            }
            Step::ArchiveVerify(s) => {
                if s.trusted.is_none() && s.node.is_empty() {
                    f(
                        "give trusted (a trusted-x509-keys directory or PEM file) or node entries"
                            .into(),
                    );
                }
                for n in &s.node {
                    if n.split_once('=').is_none_or(|(name, dir)| {
                        name.is_empty() || dir.is_empty() || dir.starts_with(',')
                    }) {
                        f(format!(
                            "node {n:?} is not NAME=DIR[,version=X.Y.Z][,allow-expired=yes|no]"
                        ));
                    }
                }
                if let Some(v) = &s.js7_version
                    && (v.split('.').count() != 3
                        || !v
                            .split('.')
                            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
                {
                    f(format!("js7-version {v:?} is not X.Y.Z (e.g. 2.7.2)"));
                }
                if let Some(a) = &s.allow_expired_certificates
                    && a != "yes"
                    && a != "no"
                {
                    f(format!("allow-expired-certificates {a:?}: give yes or no"));
                }
            }
            Step::Js7Config(s) if !["controller", "agent"].contains(&s.role.as_str()) => {
                f(format!("role {:?} is not controller or agent", s.role));
            }
            Step::Truststore(s) if s.password_source.is_some() && !s.pkcs12 => {
                f(
                    "password-source is only used with pkcs12 = true: remove it or set pkcs12"
                        .into(),
                );
            }
            _ => {}
        }
        for (flag, src) in step.secret_sources() {
            if let Err(e) = check_source(src) {
                f(format!("{flag}: {e}"));
            }
        }
        // Validity.
        let days = match step {
            Step::CaRoot(s) => s.days,
            Step::CaIntermediate(s) => s.days,
            Step::CaSignIntermediate(s) => s.days,
            Step::CertIssue(s) => s.days,
            Step::KeyBundle(s) => s.days,
            Step::Crl(s) => s.days,
            _ => None,
        };
        if let Some(d) = days
            && (d == 0 || d > MAX_DAYS)
        {
            f(format!("days = {d}: give between 1 and {MAX_DAYS}"));
        }
        // CAs: made earlier, or (phase 2) in the state; never made only later.
        for ca in step.needs_cas() {
            if !made_cas.contains(ca) && later_cas.contains(ca) {
                f(format!(
                    "CA {ca:?} is made by a later step: move this step after the step that makes it"
                ));
            }
            if let (Some(d), Some(issuer_days)) = (days, ca_days.get(ca))
                && d > *issuer_days
                && !matches!(step, Step::Crl(_))
            {
                f(format!(
                    "days = {d} outlasts CA {ca:?}, made in this ceremony for {issuer_days} days: shorten it"
                ));
            }
        }
        for m in state.check_step(step, &made_cas) {
            f(m);
        }
        if let Some(ca) = step.creates_ca() {
            if !made_cas.insert(ca.to_owned()) {
                f(format!(
                    "CA {ca:?} is made twice in this ceremony: give it another name"
                ));
            }
            if let Some(d) = days {
                ca_days.insert(ca.to_owned(), d);
            }
        }
        // Inputs.
        let mut inputs = Vec::new();
        for (flag, raw) in step.inputs() {
            match FileRef::parse(raw) {
                Err(e) => f(format!("{flag}: {e}")),
                Ok(FileRef::Path(p)) => {
                    let path = paths.input(&p);
                    if let Err(e) = check_input_file(&path, input_kind(step, flag)) {
                        f(format!(
                            "{flag} {}: {e}; give an existing, valid file",
                            path.display()
                        ));
                    }
                    inputs.push(path);
                }
                Ok(FileRef::Output {
                    step: from,
                    flag: of,
                }) => match outputs.get(&from) {
                    Some(o) => match o.get(of.as_str()) {
                        Some(p) => inputs.push(p.clone()),
                        None => f(format!(
                            "{flag} = {raw:?}: step {from:?} writes no {of:?} (it writes: {}); name one of those",
                            o.keys().copied().collect::<Vec<_>>().join(", ")
                        )),
                    },
                    None if later_ids.contains(from.as_str()) && from != id => f(format!(
                        "{flag} = {raw:?} refers to step {from:?}, which comes later: a step reads only earlier steps' outputs; reorder the steps"
                    )),
                    None => f(format!(
                        "{flag} = {raw:?}: there is no earlier step {from:?}"
                    )),
                },
            }
        }
        // Outputs.
        let mut outs = Vec::new();
        let mut mine = BTreeMap::new();
        for (flag, p) in step.outputs() {
            let path = paths.output(p);
            if std::fs::symlink_metadata(&path).is_ok() {
                f(format!(
                    "{flag} {} exists already: a ceremony never overwrites; move it away or name a new file",
                    path.display()
                ));
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
                && !parent.is_dir()
                && !all_outputs.contains_key(parent)
            {
                f(format!(
                    "{flag} {}: the directory {} does not exist; create it before the ceremony",
                    path.display(),
                    parent.display()
                ));
            }
            if let Some(other) = all_outputs.insert(path.clone(), id.clone()) {
                f(format!(
                    "{flag} {} is also written by step {other:?}: give each output its own path",
                    path.display()
                ));
            }
            if inputs.contains(&path) {
                f(format!(
                    "{flag} {} is also this step's input: write to a new file",
                    path.display()
                ));
            }
            mine.insert(flag, path.clone());
            outs.push(path);
        }
        outputs.entry(id.clone()).or_insert(mine);
        plan.push(PlanStep {
            id: id.clone(),
            kind: step.kind().to_owned(),
            command: step.command().to_owned(),
            token,
            key_uri,
            key_label,
            signs_with_ca: signing_ca(step).map(str::to_owned),
            inputs,
            outputs: outs,
        });
    }
    for role in file.tokens.keys() {
        if !used_roles.contains(role) {
            notes.push(Finding {
                step: None,
                message: format!(
                    "no step names a key on [tokens.{role}]: right when it holds the key of a CA the state already has (the steps signing with that CA use it); otherwise remove it"
                ),
            });
        }
    }
    if let Some((s, source)) = site {
        let (wrong, extra) = s.findings(file.tokens.keys().map(String::as_str), source);
        for m in wrong {
            findings.push(Finding {
                step: None,
                message: m,
            });
        }
        for m in extra {
            notes.push(Finding {
                step: None,
                message: m,
            });
        }
    }
    Report {
        name: file.name.clone(),
        purpose: file.purpose.clone(),
        plan,
        findings,
        notes,
    }
}
