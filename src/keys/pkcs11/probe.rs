//! `token probe`: what a module and a token are, and what hsmsign will be able to do with them.
//!
//! Read-only: no session is opened, nothing is logged in to, nothing is created. The signature
//! verdicts come from the same [`MechanismTable`] that signing uses, so the mechanism probe
//! names is the one a signature will be made with first.

use cryptoki::slot::Limit;
use serde::Serialize;

use super::mechanisms::{MechanismTable, mechanism_name};
use super::{Module, Pkcs11Uri, TokenError, TokenSession, TokenSummary, ck};
use crate::signer::{KeyAlgorithm, SignatureAlgorithm};

/// The key kinds probe judges.
pub const PROBED_KEYS: [KeyAlgorithm; 4] = [
    KeyAlgorithm::EcP256,
    KeyAlgorithm::EcP384,
    KeyAlgorithm::Rsa(3072),
    KeyAlgorithm::Rsa(4096),
];

/// The module, as C_GetInfo describes it.
#[derive(Clone, Debug, Serialize)]
pub struct ModuleReport {
    /// The file.
    pub path: String,
    /// The PKCS#11 version the module implements.
    pub cryptoki_version: String,
    /// Its manufacturer.
    pub manufacturer: String,
    /// Its description.
    pub description: String,
    /// Its version.
    pub library_version: String,
}

/// The token, as C_GetTokenInfo describes it.
#[derive(Clone, Debug, Serialize)]
pub struct TokenReport {
    /// Label, serial, model, flags, URI.
    #[serde(flatten)]
    pub summary: TokenSummary,
    /// Smallest PIN length.
    pub pin_min: usize,
    /// Largest PIN length.
    pub pin_max: usize,
    /// Most sessions at once ("unlimited", "not reported" or a number).
    pub max_sessions: String,
    /// Most read-write sessions at once.
    pub max_rw_sessions: String,
    /// Hardware version.
    pub hardware_version: String,
    /// Firmware version.
    pub firmware_version: String,
    /// Free public memory in bytes, when reported.
    pub free_public_memory: Option<usize>,
    /// The signing sessions a batch (`archive sign`) uses by default, and why.
    pub signing_sessions: super::SessionDefault,
}

/// Whether a key kind can be generated, and how.
#[derive(Clone, Debug, Serialize)]
pub struct GenerateVerdict {
    /// ec-p256, ec-p384, rsa-3072, rsa-4096.
    pub algorithm: String,
    /// True when the token offers generation of such keys.
    pub possible: bool,
    /// The mechanism, or why not.
    pub detail: String,
}

/// How one signature algorithm will be made with one kind of key.
#[derive(Clone, Debug, Serialize)]
pub struct SignVerdict {
    /// The key kind.
    pub key: String,
    /// The Java / JS7 name, e.g. SHA256withECDSA.
    pub algorithm: String,
    /// True when some mechanism fits.
    pub possible: bool,
    /// The first mechanism tried (CKM_...), if any.
    pub mechanism: Option<String>,
    /// "host" (the host hashes, the token signs the digest) or "token".
    pub hashing: Option<String>,
    /// The plan in words, or what the token lacks.
    pub detail: String,
    /// The mechanism tried next if the token refuses the first one at signing time.
    pub fallback: Option<String>,
}

/// Everything probe found.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeReport {
    /// The module.
    pub module: ModuleReport,
    /// The token.
    pub token: TokenReport,
    /// False when the token would not list its mechanisms.
    pub mechanisms_listed: bool,
    /// Key generation per kind. Non-extractability cannot be known without generating: hsmsign
    /// checks every key right after generation and destroys one the token made weaker.
    pub generate: Vec<GenerateVerdict>,
    /// Signature plans.
    pub signatures: Vec<SignVerdict>,
    /// Context-specific login (CKA_ALWAYS_AUTHENTICATE) in words.
    pub context_specific_login: String,
    /// Whether certificates can be stored on the token.
    pub certificates: String,
    /// True when the token has its own PIN pad (CKF_PROTECTED_AUTHENTICATION_PATH).
    pub pin_pad: bool,
    /// True when the token is write-protected (no key generation, no certificates).
    pub write_protected: bool,
}

fn limit(l: Limit) -> String {
    match l {
        Limit::Max(n) => n.to_string(),
        Limit::Unavailable => "not reported".into(),
        Limit::Infinite => "unlimited".into(),
    }
}

/// Probe the token named by `uri` (or the only initialised one) in `module`.
pub fn probe(module: &Module, uri: &Pkcs11Uri) -> Result<ProbeReport, TokenError> {
    let ctx = module.ctx();
    let info = ctx.get_library_info().map_err(ck("reading C_GetInfo"))?;
    let module_report = ModuleReport {
        path: module.path().display().to_string(),
        cryptoki_version: info.cryptoki_version().to_string(),
        manufacturer: info.manufacturer_id().trim_end().to_string(),
        description: info.library_description().trim_end().to_string(),
        library_version: info.library_version().to_string(),
    };
    let (slot, summary) = module.find_token(uri)?;
    let ti = ctx.get_token_info(slot).map_err(ck(format!(
        "reading the token information of {:?}",
        summary.label
    )))?;
    let write_protected = ti.write_protected();
    let pin_pad = ti.protected_authentication_path();
    let token = TokenReport {
        pin_min: ti.min_pin_length(),
        pin_max: ti.max_pin_length(),
        max_sessions: limit(ti.max_session_count()),
        max_rw_sessions: limit(ti.max_rw_session_count()),
        hardware_version: ti.hardware_version().to_string(),
        firmware_version: ti.firmware_version().to_string(),
        free_public_memory: ti.free_public_memory(),
        signing_sessions: module.default_sessions(slot, false),
        summary,
    };
    let table = MechanismTable::read(ctx, slot);
    let generate = PROBED_KEYS
        .iter()
        .map(|&k| {
            let verdict = if write_protected {
                Err("the token is write-protected (CKF_WRITE_PROTECTED)".to_string())
            } else {
                table.can_generate(k)
            };
            let mech = if k.is_ec() {
                cryptoki::mechanism::MechanismType::ECC_KEY_PAIR_GEN
            } else {
                cryptoki::mechanism::MechanismType::RSA_PKCS_KEY_PAIR_GEN
            };
            GenerateVerdict {
                algorithm: k.to_string(),
                possible: verdict.is_ok(),
                detail: match verdict {
                    Ok(()) if table.listed() => format!(
                        "{}{}; non-extractable: checked on the key right after generation; whether the token generates for a user login (PIV modules want their management key) only --exercise shows",
                        mechanism_name(mech),
                        table
                            .facts(mech)
                            .flatten()
                            .map(|f| format!(" ({}..{} bits)", f.min_key, f.max_key))
                            .unwrap_or_default()
                    ),
                    Ok(()) => "the token lists no mechanisms: unknown until tried".into(),
                    Err(why) => why,
                },
            }
        })
        .collect();
    let mut signatures = Vec::new();
    for &k in &PROBED_KEYS {
        for alg in SignatureAlgorithm::ALL.into_iter().filter(|a| a.fits(k)) {
            let choices = table.sign_choices(k, alg, false);
            signatures.push(match choices.first() {
                Some(c) => SignVerdict {
                    key: k.to_string(),
                    algorithm: alg.java_name().into(),
                    possible: true,
                    mechanism: Some(c.name()),
                    hashing: Some(if c.host_hash { "host" } else { "token" }.into()),
                    detail: c.describe(k, alg),
                    fallback: choices.get(1).map(|f| f.name()),
                },
                None => SignVerdict {
                    key: k.to_string(),
                    algorithm: alg.java_name().into(),
                    possible: false,
                    mechanism: None,
                    hashing: None,
                    detail: table.why_not(k, alg),
                    fallback: None,
                },
            });
        }
    }
    let certificates = if write_protected {
        "no: the token is write-protected; CA certificates then live only in the state database"
            .into()
    } else {
        "unknown until tried (a read-only probe cannot tell); when the token refuses a certificate object, the CA certificate lives only in the state database".into()
    };
    Ok(ProbeReport {
        module: module_report,
        token,
        mechanisms_listed: table.listed(),
        generate,
        signatures,
        context_specific_login: "decided per key by CKA_ALWAYS_AUTHENTICATE (absent counts as false); for such keys hsmsign keeps the PIN for the run, logs in before each signature and prefers the token's hash-and-sign mechanism".into(),
        certificates,
        pin_pad,
        write_protected,
    })
}

impl ProbeReport {
    /// The report as text.
    pub fn text(&self) -> String {
        let m = &self.module;
        let t = &self.token;
        let s = &t.summary;
        let mut out = format!(
            "Module {}\n  PKCS#11 {}, {} ({}), version {}\n",
            m.path, m.cryptoki_version, m.manufacturer, m.description, m.library_version
        );
        out.push_str(&format!(
            "Token {:?}\n  {}\n  manufacturer: {}\n  model: {}\n  serial: {}\n  hardware {}, firmware {}\n  flags: {}\n  PIN length: {}..{}\n  sessions: at most {} ({} read-write); batch signing uses {} by default ({})\n  free memory: private {}, public {}\n",
            s.label,
            s.uri,
            s.manufacturer,
            s.model,
            s.serial,
            t.hardware_version,
            t.firmware_version,
            s.flags.join(", "),
            t.pin_min,
            t.pin_max,
            t.max_sessions,
            t.max_rw_sessions,
            t.signing_sessions.sessions,
            t.signing_sessions.reason,
            s.free_private_memory
                .map_or_else(|| "not reported".into(), |b| format!("{b} bytes")),
            t.free_public_memory
                .map_or_else(|| "not reported".into(), |b| format!("{b} bytes")),
        ));
        if !self.mechanisms_listed {
            out.push_str("  (the token lists no mechanisms: the raw ones are assumed)\n");
        }
        out.push_str("Key generation:\n");
        for g in &self.generate {
            out.push_str(&format!(
                "  {:<9} {}: {}\n",
                g.algorithm,
                if g.possible { "yes" } else { "NO " },
                g.detail
            ));
        }
        out.push_str("Signatures:\n");
        for v in &self.signatures {
            out.push_str(&format!(
                "  {:<9} {:<16} {}: {}{}\n",
                v.key,
                v.algorithm,
                if v.possible { "yes" } else { "NO " },
                v.detail,
                v.fallback
                    .as_ref()
                    .map(|f| format!(" (if refused: {f})"))
                    .unwrap_or_default()
            ));
        }
        out.push_str(&format!(
            "Context-specific login: {}\nCertificates on the token: {}\nPIN pad: {}\nWrite-protected: {}",
            self.context_specific_login,
            self.certificates,
            if self.pin_pad {
                "yes (CKF_PROTECTED_AUTHENTICATION_PATH: the PIN is entered on the device, hsmsign sends none)"
            } else {
                "no"
            },
            if self.write_protected { "yes" } else { "no" }
        ));
        out
    }
}

/// The label prefix of the throwaway keys `token probe --exercise` makes (and only these can
/// be destroyed by it).
pub const EXERCISE_PREFIX: &str = "hsmsign-probe-exercise-";

/// The key kinds `--exercise` tries (where probe says the token can generate them).
pub const EXERCISED_KEYS: [KeyAlgorithm; 3] = [
    KeyAlgorithm::EcP256,
    KeyAlgorithm::EcP384,
    KeyAlgorithm::Rsa(3072),
];

/// What `--exercise` did with one key kind.
#[derive(Clone, Debug, Serialize)]
pub struct ExerciseResult {
    /// The key kind.
    pub algorithm: String,
    /// The throwaway key's URI (destroyed afterwards), when it was made.
    pub key: Option<String>,
    /// True when the key was generated.
    pub generated: bool,
    /// The provenance verdict of `key inspect`.
    pub verdict: Option<String>,
    /// Per signature algorithm: "ok" (signed and verified in software) or the error.
    pub signatures: Vec<(String, String)>,
    /// True when the throwaway key was destroyed again.
    pub destroyed: bool,
    /// Why generation failed, if it did.
    pub error: Option<String>,
}

impl ExerciseResult {
    /// True when the key was made, is non-extractable, signed every algorithm and is gone.
    pub fn ok(&self) -> bool {
        self.generated
            && self.verdict.as_deref()
                == Some(super::Provenance::GeneratedOnToken.verdict().as_str())
            && self.signatures.iter().all(|(_, r)| r == "ok")
            && self.destroyed
    }
}

/// Make a throwaway key of each kind the report says the token can generate, check its
/// provenance, sign and verify every fitting algorithm with it, and destroy it.
pub fn exercise(session: &TokenSession, report: &ProbeReport) -> Vec<ExerciseResult> {
    let mut out = Vec::new();
    for alg in EXERCISED_KEYS {
        if !report
            .generate
            .iter()
            .any(|g| g.algorithm == alg.to_string() && g.possible)
        {
            continue;
        }
        let suffix = session
            .random(4)
            .map(|r| crate::encoding::hex(&r))
            .unwrap_or_else(|_| std::process::id().to_string());
        let label = format!("{EXERCISE_PREFIX}{alg}-{suffix}");
        let mut result = ExerciseResult {
            algorithm: alg.to_string(),
            key: None,
            generated: false,
            verdict: None,
            signatures: Vec::new(),
            destroyed: false,
            error: None,
        };
        let info = match session.generate_key(&label, alg, None) {
            Ok(i) => i,
            Err(e) => {
                result.error = Some(e.to_string());
                out.push(result);
                continue;
            }
        };
        result.generated = true;
        result.key = Some(info.uri.clone());
        match Pkcs11Uri::parse(&info.uri) {
            Ok(uri) => {
                result.verdict = session.inspect(&uri).ok().map(|i| i.verdict);
                match session.signing_key(&uri) {
                    Ok(key) => {
                        for sig in SignatureAlgorithm::ALL.into_iter().filter(|a| a.fits(alg)) {
                            let r =
                                crate::signer::sign(&key, sig, b"hsmsign token probe --exercise")
                                    .map(|_| "ok".to_string())
                                    .unwrap_or_else(|e| e.to_string());
                            result.signatures.push((sig.java_name().into(), r));
                        }
                    }
                    Err(e) => result.error = Some(e.to_string()),
                }
                match session.destroy_exercise_key(&uri) {
                    Ok(()) => result.destroyed = true,
                    Err(e) => {
                        result.error = Some(format!(
                            "{}the throwaway key could not be destroyed: {e}",
                            result.error.map(|p| format!("{p}; ")).unwrap_or_default()
                        ))
                    }
                }
            }
            Err(e) => result.error = Some(e.to_string()),
        }
        out.push(result);
    }
    out
}

/// The exercise results as text.
pub fn exercise_text(results: &[ExerciseResult]) -> String {
    let mut out = String::from("Exercise (throwaway keys, destroyed afterwards):\n");
    for r in results {
        out.push_str(&format!(
            "  {:<9} {}: generated {}, {}, {}{}\n",
            r.algorithm,
            if r.ok() { "ok " } else { "NO " },
            if r.generated { "yes" } else { "no" },
            r.verdict.as_deref().unwrap_or("no verdict"),
            r.signatures
                .iter()
                .map(|(a, s)| format!("{a} {s}"))
                .collect::<Vec<_>>()
                .join(", "),
            r.error
                .as_ref()
                .map(|e| format!("; {e}"))
                .unwrap_or_default()
        ));
    }
    out.trim_end().to_string()
}
