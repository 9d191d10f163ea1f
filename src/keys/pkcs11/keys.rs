//! Keys on a token: generate, find, list, inspect, import, and sign through [`TokenKey`].
//!
//! No function here reads the value of a private key or wraps one: the private half is only ever
//! named by its handle. Public keys are read from the public-key object with the same CKA_ID
//! (or, failing that, from the RSA private key's public attributes or a certificate object).

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use der::{Decode, Encode};
use p256::elliptic_curve::sec1::ToSec1Point;
use zeroize::Zeroizing;

use super::mechanisms::SignChoice;
use super::{Pkcs11Uri, TokenError, TokenSession, ck};
use crate::signer::{KeyAlgorithm, PublicKey, SignError, SignatureAlgorithm, SigningKey};

/// DER of the named-curve OIDs, as CKA_EC_PARAMS holds them.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// A key pair on the token, as `key list` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyInfo {
    /// CKA_LABEL.
    pub label: String,
    /// CKA_ID, lower-case hex.
    pub id: String,
    /// Key kind.
    pub algorithm: String,
    /// Canonical URI naming this key.
    pub uri: String,
    /// SHA-256 of the public key's DER SPKI, hex (empty when the public half is not found).
    pub public_key_sha256: String,
}

/// Where a key came from, judged from its attributes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Provenance {
    /// CKA_LOCAL, CKA_NEVER_EXTRACTABLE and CKA_ALWAYS_SENSITIVE all true, not extractable now.
    GeneratedOnToken,
    /// Some property fails; the reasons say which.
    Weaker(Vec<String>),
}

impl Provenance {
    /// The verdict line `key inspect` prints.
    pub fn verdict(&self) -> String {
        match self {
            Self::GeneratedOnToken => {
                "generated on token, never extractable, always sensitive".into()
            }
            Self::Weaker(r) => r.join("; "),
        }
    }
}

/// Every security-relevant attribute of a private key, plus the verdict.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyInspection {
    /// The key.
    pub key: KeyInfo,
    /// Attribute name (CKA_*) and value, in a fixed order. Attributes the token does not report
    /// are absent.
    pub attributes: Vec<(String, String)>,
    /// Provenance verdict.
    pub provenance: Provenance,
    /// The verdict in words.
    pub verdict: String,
}

/// A private key found on the token.
#[derive(Clone, Debug)]
pub struct FoundKey {
    /// The private key object.
    pub handle: ObjectHandle,
    /// CKA_LABEL.
    pub label: String,
    /// CKA_ID.
    pub id: Vec<u8>,
    /// The public half.
    pub public: PublicKey,
    /// CKA_ALWAYS_AUTHENTICATE: a context-specific login is needed before every signature.
    pub always_authenticate: bool,
}

impl TokenSession {
    /// The canonical URI of an object on this session's token.
    pub fn object_uri(&self, label: &str, id: &[u8]) -> String {
        Pkcs11Uri {
            token: Some(self.token.label.clone()),
            serial: Some(self.token.serial.clone()),
            object: Some(label.to_string()),
            id: Some(id.to_vec()),
            ..Default::default()
        }
        .to_string()
    }

    fn attr_bytes(&self, handle: ObjectHandle, t: AttributeType) -> Option<Vec<u8>> {
        let attrs = self.session.get_attributes(handle, &[t]).ok()?;
        attrs.into_iter().find_map(|a| match a {
            Attribute::Label(v) | Attribute::Id(v) => Some(v),
            Attribute::EcParams(v) | Attribute::EcPoint(v) => Some(v),
            Attribute::Modulus(v) | Attribute::PublicExponent(v) => Some(v),
            _ => None,
        })
    }

    fn attr_bool(&self, handle: ObjectHandle, t: AttributeType) -> Option<bool> {
        let attrs = self.session.get_attributes(handle, &[t]).ok()?;
        attrs.into_iter().find_map(|a| match a {
            Attribute::Local(b)
            | Attribute::NeverExtractable(b)
            | Attribute::AlwaysSensitive(b)
            | Attribute::Sensitive(b)
            | Attribute::Extractable(b)
            | Attribute::Token(b)
            | Attribute::Private(b)
            | Attribute::Sign(b)
            | Attribute::Decrypt(b)
            | Attribute::Unwrap(b)
            | Attribute::Derive(b)
            | Attribute::AlwaysAuthenticate(b)
            | Attribute::Modifiable(b) => Some(b),
            _ => None,
        })
    }

    fn key_type(&self, handle: ObjectHandle) -> Option<KeyType> {
        let attrs = self
            .session
            .get_attributes(handle, &[AttributeType::KeyType])
            .ok()?;
        attrs.into_iter().find_map(|a| match a {
            Attribute::KeyType(k) => Some(k),
            _ => None,
        })
    }

    fn objects(
        &self,
        template: &[Attribute],
        doing: &str,
    ) -> Result<Vec<ObjectHandle>, TokenError> {
        self.session.find_objects(template).map_err(ck(doing))
    }

    /// The public half of the key pair with CKA_ID `id` (private key handle given for RSA).
    fn public_key_for(&self, private: ObjectHandle, id: &[u8]) -> Result<PublicKey, String> {
        let key_type = self.key_type(private);
        // Same CKA_ID and key type; keys made by other tools may share an (empty) id, so the
        // label decides between several candidates.
        let mut template = vec![
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(id.to_vec()),
        ];
        if let Some(k) = key_type {
            template.push(Attribute::KeyType(k));
        }
        let mut publics = self
            .session
            .find_objects(&template)
            .map_err(|e| e.to_string())?;
        if publics.len() > 1
            && let Some(label) = self.attr_bytes(private, AttributeType::Label)
        {
            publics.retain(|h| self.attr_bytes(*h, AttributeType::Label).as_ref() == Some(&label));
        }
        let from_object = |h: ObjectHandle| -> Result<PublicKey, String> {
            if key_type == Some(KeyType::EC) {
                let params = self
                    .attr_bytes(h, AttributeType::EcParams)
                    .ok_or("no CKA_EC_PARAMS")?;
                let point = self
                    .attr_bytes(h, AttributeType::EcPoint)
                    .ok_or("no CKA_EC_POINT")?;
                ec_public_key(&params, &point)
            } else {
                let n = self
                    .attr_bytes(h, AttributeType::Modulus)
                    .ok_or("no CKA_MODULUS")?;
                let e = self
                    .attr_bytes(h, AttributeType::PublicExponent)
                    .ok_or("no CKA_PUBLIC_EXPONENT")?;
                PublicKey::from_rsa_parts(&n, &e).map_err(|e| e.to_string())
            }
        };
        if let Some(&h) = publics.first() {
            return from_object(h);
        }
        // RSA private keys carry their modulus and public exponent (public attributes).
        if key_type == Some(KeyType::RSA) {
            return from_object(private);
        }
        // Last resort: a certificate with the same CKA_ID.
        if let Some(cert) = self.certificate(id).map_err(|e| e.to_string())? {
            let c = x509_cert::Certificate::from_der(&cert).map_err(|e| e.to_string())?;
            let spki = c
                .tbs_certificate()
                .subject_public_key_info()
                .to_der()
                .map_err(|e| e.to_string())?;
            return PublicKey::from_spki_der(&spki).map_err(|e| e.to_string());
        }
        Err("no public key object, and no certificate, with the same CKA_ID".into())
    }

    /// All private keys on the token (log in first: private objects are hidden before).
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>, TokenError> {
        let handles = self.objects(
            &[Attribute::Class(ObjectClass::PRIVATE_KEY)],
            "listing private keys",
        )?;
        let mut keys: Vec<KeyInfo> = handles.into_iter().map(|h| self.key_info(h)).collect();
        keys.sort_by(|a, b| a.label.cmp(&b.label).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    fn key_info(&self, h: ObjectHandle) -> KeyInfo {
        let label = self
            .attr_bytes(h, AttributeType::Label)
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        let id = self.attr_bytes(h, AttributeType::Id).unwrap_or_default();
        let public = self.public_key_for(h, &id).ok();
        let algorithm = match (&public, self.key_type(h)) {
            (Some(p), _) => p.algorithm().to_string(),
            (None, Some(k)) if k == KeyType::EC => "ec (unknown curve)".into(),
            (None, Some(k)) if k == KeyType::RSA => "rsa".into(),
            _ => "other".into(),
        };
        KeyInfo {
            uri: self.object_uri(&label, &id),
            label,
            id: crate::encoding::hex(&id),
            algorithm,
            public_key_sha256: public.map(|p| p.fingerprint_hex()).unwrap_or_default(),
        }
    }

    /// The one private key the URI names.
    pub fn find_key(&self, uri: &Pkcs11Uri) -> Result<FoundKey, TokenError> {
        if !uri.names_object() {
            return Err(TokenError::NoObject(uri.to_string()));
        }
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if let Some(l) = &uri.object {
            template.push(Attribute::Label(l.as_bytes().to_vec()));
        }
        if let Some(id) = &uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        let found = self.objects(&template, "looking for the key")?;
        let handle = match found.as_slice() {
            [h] => *h,
            [] => {
                let available: Vec<String> = self.list_keys()?.into_iter().map(|k| k.uri).collect();
                return Err(TokenError::KeyNotFound {
                    query: uri.to_string(),
                    token: self.token.label.clone(),
                    available: if available.is_empty() {
                        "none (is the PIN right and the key generated? `hsmsign key list`)".into()
                    } else {
                        available.join(", ")
                    },
                });
            }
            many => {
                return Err(TokenError::KeyAmbiguous {
                    query: uri.to_string(),
                    matches: many
                        .iter()
                        .map(|h| self.key_info(*h).uri)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        };
        let label = self
            .attr_bytes(handle, AttributeType::Label)
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        let id = self
            .attr_bytes(handle, AttributeType::Id)
            .unwrap_or_default();
        let key_uri = self.object_uri(&label, &id);
        let public =
            self.public_key_for(handle, &id)
                .map_err(|reason| TokenError::UnusableKey {
                    key: key_uri.clone(),
                    reason: format!("its public key cannot be read: {reason}"),
                })?;
        let always_authenticate = self
            .attr_bool(handle, AttributeType::AlwaysAuthenticate)
            .unwrap_or(false);
        Ok(FoundKey {
            handle,
            label,
            id,
            public,
            always_authenticate,
        })
    }

    /// A signing key for the URI, bound to this (logged-in) session.
    pub fn signing_key(&self, uri: &Pkcs11Uri) -> Result<TokenKey<'_>, TokenError> {
        let found = self.find_key(uri)?;
        if self.attr_bool(found.handle, AttributeType::Sign) == Some(false) {
            return Err(TokenError::UnusableKey {
                key: self.object_uri(&found.label, &found.id),
                reason: "CKA_SIGN is false: the token will not sign with it".into(),
            });
        }
        if found.always_authenticate && self.context_pin().is_none() {
            return Err(TokenError::UnusableKey {
                key: self.object_uri(&found.label, &found.id),
                reason: "it needs a PIN before every signature (CKA_ALWAYS_AUTHENTICATE) but the session was opened without keeping one".into(),
            });
        }
        Ok(TokenKey {
            session: self,
            uri: self.object_uri(&found.label, &found.id),
            key: found,
            refused: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn refuse_existing(&self, label: &str, id: Option<&[u8]>) -> Result<(), TokenError> {
        let by_label = self.objects(
            &[Attribute::Label(label.as_bytes().to_vec())],
            "checking the label is free",
        )?;
        if !by_label.is_empty() {
            return Err(TokenError::KeyExists {
                token: self.token.label.clone(),
                what: format!("label {label:?}"),
            });
        }
        if let Some(id) = id {
            let by_id = self.objects(&[Attribute::Id(id.to_vec())], "checking the id is free")?;
            if !by_id.is_empty() {
                return Err(TokenError::KeyExists {
                    token: self.token.label.clone(),
                    what: format!("id {}", crate::encoding::hex(id)),
                });
            }
        }
        Ok(())
    }

    /// A fresh random CKA_ID (from the token's RNG) not used by any object.
    fn fresh_id(&self) -> Result<Vec<u8>, TokenError> {
        for _ in 0..8 {
            let id = self.random(8)?;
            if self
                .objects(&[Attribute::Id(id.clone())], "checking the id is free")?
                .is_empty()
            {
                return Ok(id);
            }
        }
        Err(TokenError::UnusableKey {
            key: self.token.label.clone(),
            reason: "the token's RNG keeps returning ids already in use".into(),
        })
    }

    /// Generate a key pair that can never leave the token. `id` is drawn from the token's RNG
    /// unless given. Refuses a label or id that exists.
    pub fn generate_key(
        &self,
        label: &str,
        algorithm: KeyAlgorithm,
        id: Option<&[u8]>,
    ) -> Result<KeyInfo, TokenError> {
        let writable = if self.token.flags.iter().any(|f| f == "write-protected") {
            Err("the token is write-protected (CKF_WRITE_PROTECTED)".to_string())
        } else {
            Ok(())
        };
        // A token that generates no key pairs at all (OpenSC's PIV driver): say where keys come
        // from instead of suggesting another algorithm.
        if self.mechanisms.listed()
            && !self.mechanisms.has(MechanismType::ECC_KEY_PAIR_GEN)
            && !self.mechanisms.has(MechanismType::RSA_PKCS_KEY_PAIR_GEN)
        {
            return Err(TokenError::GenerationRefused {
                token: self.token.label.clone(),
                algorithm: algorithm.to_string(),
                why: "it offers neither CKM_EC_KEY_PAIR_GEN nor CKM_RSA_PKCS_KEY_PAIR_GEN".into(),
            });
        }
        writable
            .and_then(|()| self.mechanisms.can_generate(algorithm))
            .map_err(|reason| TokenError::CannotGenerate {
                token: self.token.label.clone(),
                algorithm: algorithm.to_string(),
                reason,
            })?;
        self.refuse_existing(label, id)?;
        let id = match id {
            Some(id) => id.to_vec(),
            None => self.fresh_id()?,
        };
        // The public template in two strengths. The full one also says what the public key may
        // do: verify, never encrypt or wrap. Some tokens compute those flags themselves and
        // refuse a template that disagrees: tpm2-pkcs11 1.9 derives the public key's CKA_VERIFY
        // from the TPM's decrypt bit and CKA_ENCRYPT from its sign bit, so a signing-only key
        // (private CKA_DECRYPT false) with public CKA_VERIFY true is a "mismatch" there
        // (CKR_GENERAL_ERROR). Those tokens get the reduced template, which leaves the public
        // key's usage flags to the token: hsmsign verifies every signature in software and never
        // asks the token to verify or encrypt, and the private key is checked after generation.
        let template = KeyTemplate { label, id: &id };
        let public_base = template.public_base();
        let public_usage = KeyTemplate::public_usage();
        let private = template.private();
        let (mechanism, specific) = match algorithm {
            KeyAlgorithm::EcP256 => (
                Mechanism::EccKeyPairGen,
                vec![Attribute::EcParams(P256_PARAMS.to_vec())],
            ),
            KeyAlgorithm::EcP384 => (
                Mechanism::EccKeyPairGen,
                vec![Attribute::EcParams(P384_PARAMS.to_vec())],
            ),
            KeyAlgorithm::Rsa(bits) => (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::ModulusBits((bits as u64).into()),
                    Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                ],
            ),
        };
        let doing = format!(
            "generating a {algorithm} key pair on token {:?}",
            self.token.label
        );
        let mut full = specific.clone();
        full.extend(public_base.iter().cloned());
        full.extend(public_usage);
        let priv_h = match self.session.generate_key_pair(&mechanism, &full, &private) {
            Ok((_, h)) => h,
            Err(CkError::Pkcs11(rv, _)) if template_refusal(rv) => {
                let mut reduced = specific;
                reduced.extend(public_base);
                match self
                    .session
                    .generate_key_pair(&mechanism, &reduced, &private)
                {
                    Ok((_, h)) => h,
                    Err(CkError::Pkcs11(again, _))
                        if template_refusal(again) || login_refusal(again) =>
                    {
                        return Err(TokenError::GenerationRefused {
                            token: self.token.label.clone(),
                            algorithm: algorithm.to_string(),
                            why: format!(
                                "C_GenerateKeyPair returned {}, and {} with the reduced public template",
                                super::ckr_name(&rv),
                                super::ckr_name(&again)
                            ),
                        });
                    }
                    Err(e) => {
                        return Err(ck(format!(
                            "{doing} (with the reduced public template after {})",
                            super::ckr_name(&rv)
                        ))(e));
                    }
                }
            }
            Err(CkError::Pkcs11(rv, _)) if login_refusal(rv) => {
                return Err(TokenError::GenerationRefused {
                    token: self.token.label.clone(),
                    algorithm: algorithm.to_string(),
                    why: format!("C_GenerateKeyPair returned {}", super::ckr_name(&rv)),
                });
            }
            Err(e) => return Err(ck(doing)(e)),
        };
        self.check_generated(priv_h, label)?;
        Ok(self.key_info(priv_h))
    }

    /// After generation: the private key must be what was asked for (sensitive, never
    /// extractable, signing only). A token that silently ignored part of the template gets its
    /// key destroyed and a refusal naming the attribute.
    fn check_generated(&self, h: ObjectHandle, label: &str) -> Result<(), TokenError> {
        let want = [
            ("CKA_SENSITIVE", AttributeType::Sensitive, true),
            ("CKA_EXTRACTABLE", AttributeType::Extractable, false),
            ("CKA_SIGN", AttributeType::Sign, true),
            ("CKA_DECRYPT", AttributeType::Decrypt, false),
            ("CKA_UNWRAP", AttributeType::Unwrap, false),
            ("CKA_DERIVE", AttributeType::Derive, false),
        ];
        let wrong: Vec<String> = want
            .iter()
            // An attribute the token does not report is not held against it here; `key inspect`
            // shows what is missing.
            .filter(|(_, t, v)| self.attr_bool(h, *t).is_some_and(|got| got != *v))
            .map(|(n, _, v)| format!("{n} is {}", !v))
            .collect();
        if wrong.is_empty() {
            return Ok(());
        }
        let id = self.attr_bytes(h, AttributeType::Id).unwrap_or_default();
        let uri = self.object_uri(label, &id);
        // Destroy the half-right key (and its public half) so that nothing weaker stays behind.
        let _ = self.session.destroy_object(h);
        if let Ok(publics) = self.objects(
            &[Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Id(id)],
            "finding the public half",
        ) {
            for p in publics {
                let _ = self.session.destroy_object(p);
            }
        }
        Err(TokenError::UnusableKey {
            key: uri,
            reason: format!(
                "token {:?} ignored part of the key template ({}); the key was destroyed. This token cannot hold a signing-only, non-extractable key of this type",
                self.token.label,
                wrong.join(", ")
            ),
        })
    }

    /// Import a PKCS#8 private key (migration of an existing CA key only) as sensitive and
    /// non-extractable. `key inspect` will report it as imported, not generated on the token.
    pub fn import_key(
        &self,
        label: &str,
        pkcs8_pem: &str,
        path: &std::path::Path,
    ) -> Result<KeyInfo, TokenError> {
        use p256::pkcs8::DecodePrivateKey;
        let bad = |reason: String| TokenError::Import {
            path: path.to_path_buf(),
            reason,
        };
        self.refuse_existing(label, None)?;
        let id = self.fresh_id()?;
        let template = KeyTemplate { label, id: &id };
        let (private_specific, public_specific): (Vec<Attribute>, Vec<Attribute>) = if let Ok(k) =
            p256::SecretKey::from_pkcs8_pem(pkcs8_pem)
        {
            let point = k.public_key().to_sec1_point(false);
            ec_templates(
                P256_PARAMS,
                Zeroizing::new(k.to_bytes().to_vec()),
                point.as_bytes(),
            )
        } else if let Ok(k) = p384::SecretKey::from_pkcs8_pem(pkcs8_pem) {
            let point = k.public_key().to_sec1_point(false);
            ec_templates(
                P384_PARAMS,
                Zeroizing::new(k.to_bytes().to_vec()),
                point.as_bytes(),
            )
        } else if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(pkcs8_pem) {
            rsa_templates(&k).map_err(bad)?
        } else {
            return Err(bad(
                    "not an unencrypted PKCS#8 EC P-256, EC P-384 or RSA private key (-----BEGIN PRIVATE KEY-----); convert it with `openssl pkcs8 -topk8 -nocrypt`".into(),
                ));
        };
        // The same template as a generated key: only the class and the key material differ.
        let mut private = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        private.extend(template.private());
        private.extend(private_specific);
        let mut public = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
        public.extend(template.public_base());
        public.extend(KeyTemplate::public_usage());
        public.extend(public_specific.iter().cloned());
        let created = self.session.create_object(&private);
        // The template held the private key's components: wipe them before anything else.
        wipe_secret_attributes(&mut private);
        let priv_h = created.map_err(ck("creating the imported private key"))?;
        let public_made = match self.session.create_object(&public) {
            // As for generation: a token that sets the public usage flags itself gets the
            // reduced template.
            Err(CkError::Pkcs11(rv, _)) if template_refusal(rv) => {
                let mut reduced = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
                reduced.extend(template.public_base());
                reduced.extend(public_specific);
                self.session.create_object(&reduced)
            }
            other => other,
        };
        if let Err(e) = public_made {
            // Leave nothing half-done: remove the private key again.
            let _ = self.session.destroy_object(priv_h);
            return Err(ck("creating the imported public key")(e));
        }
        Ok(self.key_info(priv_h))
    }

    /// Destroy a throwaway key pair made by `token probe --exercise`. Refuses any key whose
    /// label does not carry the exercise prefix, so no real key can be removed this way.
    pub(crate) fn destroy_exercise_key(&self, uri: &Pkcs11Uri) -> Result<(), TokenError> {
        let found = self.find_key(uri)?;
        if !found.label.starts_with(super::probe::EXERCISE_PREFIX) {
            return Err(TokenError::UnusableKey {
                key: uri.to_string(),
                reason: "not a probe exercise key: hsmsign does not destroy keys".into(),
            });
        }
        let mut handles = vec![found.handle];
        handles.extend(self.objects(
            &[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Id(found.id.clone()),
                Attribute::Label(found.label.as_bytes().to_vec()),
            ],
            "finding the exercise key's public half",
        )?);
        for h in handles {
            self.session
                .destroy_object(h)
                .map_err(ck(format!("destroying the exercise key {}", found.label)))?;
        }
        Ok(())
    }

    /// Every security attribute of the key and a provenance verdict.
    pub fn inspect(&self, uri: &Pkcs11Uri) -> Result<KeyInspection, TokenError> {
        let found = self.find_key(uri)?;
        let h = found.handle;
        let order = [
            ("CKA_TOKEN", AttributeType::Token),
            ("CKA_PRIVATE", AttributeType::Private),
            ("CKA_SENSITIVE", AttributeType::Sensitive),
            ("CKA_ALWAYS_SENSITIVE", AttributeType::AlwaysSensitive),
            ("CKA_EXTRACTABLE", AttributeType::Extractable),
            ("CKA_NEVER_EXTRACTABLE", AttributeType::NeverExtractable),
            ("CKA_LOCAL", AttributeType::Local),
            ("CKA_SIGN", AttributeType::Sign),
            ("CKA_DECRYPT", AttributeType::Decrypt),
            ("CKA_UNWRAP", AttributeType::Unwrap),
            ("CKA_DERIVE", AttributeType::Derive),
            ("CKA_ALWAYS_AUTHENTICATE", AttributeType::AlwaysAuthenticate),
            ("CKA_MODIFIABLE", AttributeType::Modifiable),
        ];
        let mut attributes = Vec::new();
        let mut get = |name: &str, t| {
            let v = self.attr_bool(h, t);
            if let Some(b) = v {
                attributes.push((name.to_string(), b.to_string()));
            }
            v
        };
        let values: Vec<Option<bool>> = order.iter().map(|(n, t)| get(n, *t)).collect();
        let val = |name: &str| {
            order
                .iter()
                .position(|(n, _)| *n == name)
                .and_then(|i| values[i])
        };
        let mut reasons = Vec::new();
        if val("CKA_LOCAL") != Some(true) {
            reasons.push("imported, not generated on token (CKA_LOCAL is not true)".to_string());
        }
        if val("CKA_NEVER_EXTRACTABLE") != Some(true) {
            reasons.push(
                "may have been extractable before (CKA_NEVER_EXTRACTABLE is not true)".into(),
            );
        }
        if val("CKA_ALWAYS_SENSITIVE") != Some(true) {
            reasons.push("may have been readable before (CKA_ALWAYS_SENSITIVE is not true)".into());
        }
        if val("CKA_EXTRACTABLE") != Some(false) {
            reasons.push("EXTRACTABLE now (CKA_EXTRACTABLE is not false)".into());
        }
        if val("CKA_SENSITIVE") != Some(true) {
            reasons.push("NOT sensitive (CKA_SENSITIVE is not true)".into());
        }
        for extra in ["CKA_DECRYPT", "CKA_UNWRAP", "CKA_DERIVE"] {
            if val(extra) == Some(true) {
                reasons.push(format!("also usable beyond signing ({extra} is true)"));
            }
        }
        let provenance = if reasons.is_empty() {
            Provenance::GeneratedOnToken
        } else {
            Provenance::Weaker(reasons)
        };
        Ok(KeyInspection {
            key: self.key_info(h),
            attributes,
            verdict: provenance.verdict(),
            provenance,
        })
    }

    /// The DER value of the certificate object with CKA_ID `id`, if any.
    pub fn certificate(&self, id: &[u8]) -> Result<Option<Vec<u8>>, TokenError> {
        let found = self.objects(
            &[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::Id(id.to_vec()),
            ],
            "looking for a certificate",
        )?;
        let Some(&h) = found.first() else {
            return Ok(None);
        };
        // CKA_VALUE of a CERTIFICATE object: public data.
        let attrs = self
            .session
            .get_attributes(h, &[AttributeType::Value])
            .map_err(ck("reading a certificate"))?;
        Ok(attrs.into_iter().find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        }))
    }

    /// Store a certificate on the token next to its key (same CKA_ID and label), so a token
    /// carried elsewhere brings its certificate along. Refuses when one is there already.
    pub fn store_certificate(
        &self,
        label: &str,
        id: &[u8],
        cert_der: &[u8],
    ) -> Result<(), TokenError> {
        if self.certificate(id)?.is_some() {
            return Err(TokenError::KeyExists {
                token: self.token.label.clone(),
                what: format!("a certificate under id {}", crate::encoding::hex(id)),
            });
        }
        let cert =
            x509_cert::Certificate::from_der(cert_der).map_err(|e| TokenError::UnusableKey {
                key: label.into(),
                reason: format!("certificate does not parse: {e}"),
            })?;
        let subject = cert
            .tbs_certificate()
            .subject()
            .to_der()
            .unwrap_or_default();
        self.session
            .create_object(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.to_vec()),
                Attribute::Subject(subject),
                // CKA_VALUE of a CERTIFICATE object: public data.
                Attribute::Value(cert_der.to_vec()),
            ])
            .map_err(ck("storing the certificate on the token"))?;
        Ok(())
    }
}

/// Return codes with which a token refuses a key template it could otherwise generate with
/// fewer attributes. tpm2-pkcs11 says CKR_GENERAL_ERROR for an attribute contradiction.
fn template_refusal(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::TemplateInconsistent
            | RvError::TemplateIncomplete
            | RvError::AttributeValueInvalid
            | RvError::AttributeTypeInvalid
            | RvError::AttributeReadOnly
            | RvError::GeneralError
    )
}

/// Return codes with which a token refuses an operation to the login hsmsign holds (a user
/// login) where it wants another (PIV modules generate keys after a management-key login).
fn login_refusal(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::UserNotLoggedIn | RvError::UserTypeInvalid | RvError::FunctionNotSupported
    )
}

fn ec_public_key(params: &[u8], point: &[u8]) -> Result<PublicKey, String> {
    let algorithm =
        curve_of(params).ok_or_else(|| "EC key on a curve other than P-256 / P-384".to_string())?;
    // CKA_EC_POINT is a DER OCTET STRING wrapping the point; some modules give the bare point.
    let raw = der::asn1::OctetString::from_der(point)
        .map(|o| o.as_bytes().to_vec())
        .unwrap_or_else(|_| point.to_vec());
    PublicKey::from_ec_point(algorithm, &raw).map_err(|e| e.to_string())
}

fn ec_templates(
    params: &[u8],
    scalar: Zeroizing<Vec<u8>>,
    point: &[u8],
) -> (Vec<Attribute>, Vec<Attribute>) {
    let wrapped = der::asn1::OctetString::new(point.to_vec())
        .and_then(|o| o.to_der())
        .unwrap_or_default();
    (
        vec![
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(params.to_vec()),
            // The key being imported is written into the token (never read back out).
            Attribute::Value(scalar.to_vec()),
        ],
        vec![
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(params.to_vec()),
            Attribute::EcPoint(wrapped),
        ],
    )
}

/// THE template of every key pair hsmsign puts on a token, generated or imported (only the
/// class and the key material are added per case): the private half stays on the token,
/// private, sensitive, never extractable, and may only sign; the public half is public and may
/// only verify.
struct KeyTemplate<'a> {
    label: &'a str,
    id: &'a [u8],
}

impl KeyTemplate<'_> {
    /// The private key's attributes.
    fn private(&self) -> Vec<Attribute> {
        vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            // SoftHSM2 and others default these to true unless told: a signing key does
            // nothing else.
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(self.label.as_bytes().to_vec()),
            Attribute::Id(self.id.to_vec()),
        ]
    }

    /// The public key's attributes apart from its usages.
    fn public_base(&self) -> Vec<Attribute> {
        vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(self.label.as_bytes().to_vec()),
            Attribute::Id(self.id.to_vec()),
        ]
    }

    /// What the public key may do: verify, never encrypt or wrap (left out only for tokens that
    /// refuse to be told, see `generate_key`).
    fn public_usage() -> [Attribute; 3] {
        [
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
        ]
    }
}

type Templates = (Vec<Attribute>, Vec<Attribute>);

fn rsa_templates(k: &rsa::RsaPrivateKey) -> Result<Templates, String> {
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let be = |n: &rsa::BoxedUint| n.to_be_bytes_trimmed_vartime().to_vec();
    let primes = k.primes();
    if primes.len() != 2 {
        return Err("multi-prime RSA keys are not supported".into());
    }
    let dp = k.dp().ok_or("missing CRT exponent dP")?;
    let dq = k.dq().ok_or("missing CRT exponent dQ")?;
    let qinv = k.qinv().ok_or("missing CRT coefficient")?;
    let n = be(k.n());
    let e = be(k.e());
    Ok((
        vec![
            Attribute::KeyType(KeyType::RSA),
            Attribute::Modulus(n.clone()),
            Attribute::PublicExponent(e.clone()),
            Attribute::PrivateExponent(be(k.d())),
            Attribute::Prime1(be(&primes[0])),
            Attribute::Prime2(be(&primes[1])),
            Attribute::Exponent1(be(dp)),
            Attribute::Exponent2(be(dq)),
            Attribute::Coefficient(be(&qinv.retrieve())),
        ],
        vec![
            Attribute::KeyType(KeyType::RSA),
            Attribute::Modulus(n),
            Attribute::PublicExponent(e),
        ],
    ))
}

/// A private key on a logged-in token session, usable through [`crate::signer::sign`].
pub struct TokenKey<'s> {
    session: &'s TokenSession,
    key: FoundKey,
    uri: String,
    /// Mechanisms this key's token refused at C_Sign time in this run, skipped from then on.
    refused: std::sync::Mutex<Vec<MechanismType>>,
}

impl TokenKey<'_> {
    /// The key's CKA_ID.
    pub fn id(&self) -> &[u8] {
        &self.key.id
    }

    /// The key's CKA_LABEL.
    pub fn label(&self) -> &str {
        &self.key.label
    }

    /// The token session the key is on.
    pub fn session(&self) -> &TokenSession {
        self.session
    }

    /// `n` more sessions on this key's token, each with this key, for the workers of a batch.
    /// No new login (the token's login covers every session of this process) and no new
    /// search (the key handle is valid in every session). Opens as many as the token gives:
    /// when it refuses one (CKR_SESSION_COUNT and the like), the batch goes on with fewer, and
    /// the returned notice says so. A key that needs a PIN before every signature
    /// (CKA_ALWAYS_AUTHENTICATE) gets no workers: it signs on its own session only.
    pub fn workers(&self, module: &super::Module, n: usize) -> (Vec<WorkerKey>, Option<String>) {
        let token = &self.session.token().label;
        if self.key.always_authenticate {
            let notice = (n > 1).then(|| {
                format!(
                    "key {} needs a PIN before every signature (CKA_ALWAYS_AUTHENTICATE): signing on one session",
                    self.uri
                )
            });
            return (Vec::new(), notice);
        }
        let mut workers = Vec::with_capacity(n);
        let mut notice = None;
        for _ in 0..n {
            match module.ctx().open_ro_session(self.session.slot) {
                Ok(session) => workers.push(WorkerKey {
                    session,
                    key: self.key.clone(),
                    uri: self.uri.clone(),
                    table: self.session.mechanisms().clone(),
                    token: token.clone(),
                    refused: std::sync::Mutex::new(Vec::new()),
                }),
                Err(e) => {
                    let why = describe_ck(e);
                    notice = Some(format!(
                        "token {token:?} gave {} of the {n} sessions asked for ({why}): signing with {}",
                        workers.len(),
                        if workers.is_empty() {
                            "its first session only".to_string()
                        } else {
                            format!("{} sessions", workers.len())
                        }
                    ));
                    break;
                }
            }
        }
        (workers, notice)
    }

    fn signing(&self) -> Signing<'_> {
        Signing {
            session: self.session.session(),
            key: &self.key,
            uri: &self.uri,
            table: self.session.mechanisms(),
            token: &self.session.token().label,
            pin: self.session.context_pin(),
            refused: &self.refused,
        }
    }
}

/// The same key on a session of its own, for one worker of a batch (see
/// [`TokenKey::workers`]). It owns its session and may move to another thread; the
/// token's login (per application and token) covers it, and the key handle found once by the
/// logged-in session is used as is: no C_FindObjects or C_GetAttributeValue per worker.
pub struct WorkerKey {
    session: Session,
    key: FoundKey,
    uri: String,
    table: super::mechanisms::MechanismTable,
    token: String,
    refused: std::sync::Mutex<Vec<MechanismType>>,
}

impl WorkerKey {
    fn signing(&self) -> Signing<'_> {
        Signing {
            session: &self.session,
            key: &self.key,
            uri: &self.uri,
            table: &self.table,
            token: &self.token,
            pin: None,
            refused: &self.refused,
        }
    }
}

impl SigningKey for WorkerKey {
    fn public_key(&self) -> &PublicKey {
        &self.key.public
    }

    fn name(&self) -> String {
        self.uri.clone()
    }

    fn sign_digest(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        digest: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        self.signing().sign_digest(alg, message, digest)
    }
}

/// What one signature needs: a session, the key found on the token, and the token's mechanisms.
struct Signing<'a> {
    session: &'a Session,
    key: &'a FoundKey,
    uri: &'a str,
    table: &'a super::mechanisms::MechanismTable,
    token: &'a str,
    pin: Option<&'a secrecy::SecretString>,
    refused: &'a std::sync::Mutex<Vec<MechanismType>>,
}

impl Signing<'_> {
    fn device_error(&self, e: impl std::fmt::Display) -> SignError {
        SignError::Device {
            key: self.uri.to_owned(),
            reason: e.to_string(),
        }
    }

    /// One signature with one mechanism. The error carries the message and, for a PKCS#11
    /// failure, the return code (to decide whether another mechanism is worth a try).
    fn run(
        &self,
        mechanism: &Mechanism<'_>,
        data: &[u8],
    ) -> Result<Vec<u8>, (String, Option<RvError>)> {
        let fail = |e: CkError| {
            let rv = match &e {
                CkError::Pkcs11(rv, _) => Some(*rv),
                _ => None,
            };
            (describe_ck(e), rv)
        };
        let s = self.session;
        if !self.key.always_authenticate {
            // The signature's size is known from the key: one C_Sign, no length query.
            let mut buf = vec![0u8; signature_len(self.key.public.algorithm())];
            let n = s
                .sign_into(mechanism, self.key.handle, data, &mut buf)
                .map_err(fail)?;
            buf.truncate(n);
            return Ok(buf);
        }
        // CKA_ALWAYS_AUTHENTICATE: C_SignInit, then a context-specific login, then the data.
        let pin = self.pin.ok_or_else(|| {
            (
                "no PIN kept for the context-specific login".to_string(),
                None,
            )
        })?;
        s.sign_init(mechanism, self.key.handle).map_err(fail)?;
        s.login(UserType::ContextSpecific, Some(pin))
            .map_err(fail)?;
        s.sign_update(data).map_err(|e| {
            let (m, rv) = fail(e);
            (format!(
                "{m}; this key needs a PIN before every signature (CKA_ALWAYS_AUTHENTICATE), which hsmsign can only do through multi-part signing, and the token refuses that for this mechanism. Use a key without CKA_ALWAYS_AUTHENTICATE (e.g. PIV slot 9a instead of 9c)"
            ), rv)
        })?;
        s.sign_final().map_err(fail)
    }

    fn sign_digest(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        digest: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        let public = &self.key.public;
        let key = public.algorithm();
        let ec = key.is_ec();
        let table = self.table;
        let refused = self.refused.lock().map(|r| r.clone()).unwrap_or_default();
        let choices: Vec<SignChoice> = table
            .sign_choices(key, alg, self.key.always_authenticate)
            .into_iter()
            .filter(|c| !refused.contains(&c.mechanism))
            .collect();
        if choices.is_empty() {
            return Err(self.device_error(format!(
                "token {:?} offers no mechanism for {alg} with a {key} key: {}{}. Use a key type the token can sign with (`hsmsign token probe` lists them)",
                self.token,
                table.why_not(key, alg),
                if refused.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (refused at signing time in this run: {})",
                        refused
                            .iter()
                            .map(|m| super::mechanisms::mechanism_name(*m))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            )));
        }
        let mut failures = Vec::new();
        let mut signature = None;
        for (i, choice) in choices.iter().enumerate() {
            let result = if !choice.host_hash {
                self.run(&choice.mechanism(), message)
            } else if ec {
                self.run(&choice.mechanism(), crate::signer::ecdsa_input(key, digest))
            } else {
                let mut info = alg.hash().digest_info_prefix().to_vec();
                info.extend_from_slice(digest);
                self.run(&choice.mechanism(), &info)
            };
            match result {
                Ok(s) => {
                    signature = Some(s);
                    break;
                }
                // The token lists the mechanism but will not use it with this key (a TPM's raw
                // RSA needs decryption rights; some raw ECDSA takes only certain lengths): try
                // the next one, and skip this one for the rest of the run.
                Err(e) if i + 1 < choices.len() && mechanism_refusal(&e.1) => {
                    failures.push(format!("{}: {}", choice.name(), e.0));
                    if let Ok(mut r) = self.refused.lock() {
                        r.push(choice.mechanism);
                    }
                }
                Err(e) => {
                    failures.push(format!("{}: {}", choice.name(), e.0));
                    return Err(self.device_error(format!(
                        "{} on token {:?}.{}",
                        failures.join("; then "),
                        self.token,
                        e.1.map(|rv| format!(" {}", super::advice(rv)))
                            .unwrap_or_default()
                    )));
                }
            }
        }
        let signature = signature.ok_or_else(|| self.device_error(failures.join("; ")))?;
        if ec {
            crate::signer::ecdsa_raw_to_der(&signature)
        } else {
            Ok(signature)
        }
    }
}

/// The size of a signature of a `key` key as the token returns it: raw `r || s` for ECDSA, the
/// modulus length for RSA PKCS#1 v1.5.
fn signature_len(key: KeyAlgorithm) -> usize {
    match key {
        KeyAlgorithm::EcP256 => 64,
        KeyAlgorithm::EcP384 => 96,
        KeyAlgorithm::Rsa(bits) => bits.div_ceil(8),
    }
}

/// Return codes with which a token refuses one mechanism for one key while another mechanism
/// may still work. A lost token or session (CKR_DEVICE_REMOVED, CKR_SESSION_HANDLE_INVALID,
/// ...) is not among them: nothing else would work either.
fn mechanism_refusal(rv: &Option<RvError>) -> bool {
    matches!(
        rv,
        Some(
            RvError::GeneralError
                | RvError::FunctionFailed
                | RvError::FunctionNotSupported
                | RvError::KeyFunctionNotPermitted
                | RvError::KeyTypeInconsistent
                | RvError::KeySizeRange
                | RvError::MechanismInvalid
                | RvError::MechanismParamInvalid
                | RvError::DataLenRange
                | RvError::DataInvalid
        )
    )
}

fn describe_ck(e: cryptoki::error::Error) -> String {
    match e {
        cryptoki::error::Error::Pkcs11(rv, f) => {
            format!("C_{f:?} returned {}", super::ckr_name(&rv))
        }
        other => other.to_string(),
    }
}

impl SigningKey for TokenKey<'_> {
    fn public_key(&self) -> &PublicKey {
        &self.key.public
    }

    fn name(&self) -> String {
        self.uri.clone()
    }

    fn sign_digest(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        digest: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        self.signing().sign_digest(alg, message, digest)
    }
}

/// Overwrite the private components of a key template (after `C_CreateObject` has copied them
/// into the token) so no copy of an imported key stays in this process's memory.
fn wipe_secret_attributes(template: &mut [Attribute]) {
    use zeroize::Zeroize;
    for attr in template {
        match attr {
            Attribute::Value(v)
            | Attribute::PrivateExponent(v)
            | Attribute::Prime1(v)
            | Attribute::Prime2(v)
            | Attribute::Exponent1(v)
            | Attribute::Exponent2(v)
            | Attribute::Coefficient(v) => v.zeroize(),
            _ => {}
        }
    }
}

/// The curve CKA_EC_PARAMS names. X9.62 ECParameters come in three forms and modules use all of
/// them: a named-curve OID (most), the explicit domain parameters (Yubico's ykcs11 writes
/// SEQUENCE { version, prime field, curve a b, base point, order, cofactor }), and a
/// PrintableString curve name (PKCS#11 3.0). An explicit curve is P-256 or P-384 only if its
/// field prime, a, b, base point and order all are.
fn curve_of(params: &[u8]) -> Option<KeyAlgorithm> {
    match params {
        P256_PARAMS => return Some(KeyAlgorithm::EcP256),
        P384_PARAMS => return Some(KeyAlgorithm::EcP384),
        _ => {}
    }
    let (tag, body, rest) = der_tlv(params)?;
    if !rest.is_empty() {
        return None;
    }
    match tag {
        // PrintableString
        0x13 => match body {
            b"prime256v1" | b"secp256r1" | b"P-256" => Some(KeyAlgorithm::EcP256),
            b"secp384r1" | b"P-384" => Some(KeyAlgorithm::EcP384),
            _ => None,
        },
        // SEQUENCE: explicit domain parameters
        0x30 => {
            let (_version, rest) = der_expect(body, 0x02)?;
            let (field, rest) = der_expect(rest, 0x30)?;
            let (curve, rest) = der_expect(rest, 0x30)?;
            let (base, rest) = der_expect(rest, 0x04)?;
            let (order, _cofactor) = der_expect(rest, 0x02)?;
            let (field_type, field) = der_expect(field, 0x06)?;
            let (prime, _) = der_expect(field, 0x02)?;
            let (a, curve) = der_expect(curve, 0x04)?;
            let (b, _seed) = der_expect(curve, 0x04)?;
            // id-fieldType prime-field 1.2.840.10045.1.1
            if field_type != [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x01, 0x01] {
                return None;
            }
            // INTEGERs carry a leading zero byte when their top bit is set; the octet strings
            // a and b may be written without leading zeros: compare magnitudes.
            let unsigned = |x: &[u8]| -> String {
                let mut v = x;
                while let [0, tail @ ..] = v {
                    v = tail;
                }
                crate::encoding::hex(v)
            };
            [
                (KeyAlgorithm::EcP256, &P256_EXPLICIT),
                (KeyAlgorithm::EcP384, &P384_EXPLICIT),
            ]
            .into_iter()
            .find(|(_, c)| {
                unsigned(prime) == c.p
                    && unsigned(a) == c.a
                    && unsigned(b) == c.b
                    && crate::encoding::hex(base) == c.g
                    && unsigned(order) == c.n
            })
            .map(|(alg, _)| alg)
        }
        _ => None,
    }
}

/// The domain parameters of a curve as X9.62 writes them explicitly (hex, no leading zeros).
struct ExplicitCurve {
    p: &'static str,
    a: &'static str,
    b: &'static str,
    /// The base point, uncompressed.
    g: &'static str,
    n: &'static str,
}

/// P-256 (FIPS 186-4 D.1.2.3).
const P256_EXPLICIT: ExplicitCurve = ExplicitCurve {
    p: "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
    a: "ffffffff00000001000000000000000000000000fffffffffffffffffffffffc",
    b: "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
    g: concat!(
        "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
        "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
    ),
    n: "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
};

/// P-384 (FIPS 186-4 D.1.2.4).
const P384_EXPLICIT: ExplicitCurve = ExplicitCurve {
    p: "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
    a: "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffc",
    b: "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
    g: concat!(
        "04aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
        "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f"
    ),
    n: "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
};

/// One DER TLV: (tag, contents, what follows). Single-byte tags, definite lengths only.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = if len < 0x80 {
        (usize::from(len), rest)
    } else {
        let n = usize::from(len & 0x7f);
        if n == 0 || n > 2 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        (
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)),
            rest,
        )
    };
    if rest.len() < len {
        return None;
    }
    let (body, rest) = rest.split_at(len);
    Some((tag, body, rest))
}

/// The contents of the next TLV, which must carry `tag`, and what follows it.
fn der_expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, body, rest) = der_tlv(input)?;
    (t == tag).then_some((body, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// CKA_EC_PARAMS exactly as Yubico's ykcs11 2.2.0 returned them for P-256 and P-384 keys.
    const YKCS11_P256: &str = "3081f7020101302c06072a8648ce3d0101022100ffffffff00000001000000000000000000000000ffffffffffffffffffffffff305b0420ffffffff00000001000000000000000000000000fffffffffffffffffffffffc04205ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b031500c49d360886e704936a6678e1139d26b7819f7e900441046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5022100ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551020101";
    const YKCS11_P384: &str = "30820157020101303c06072a8648ce3d0101023100fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff307b0430fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffc0430b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef031500a335926aa319a27a1d00896a6773a4827acdac73046104aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab73617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f023100ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973020101";

    #[test]
    fn ec_params_in_every_form_name_the_curve() {
        assert_eq!(curve_of(P256_PARAMS), Some(KeyAlgorithm::EcP256));
        assert_eq!(curve_of(P384_PARAMS), Some(KeyAlgorithm::EcP384));
        assert_eq!(curve_of(&unhex(YKCS11_P256)), Some(KeyAlgorithm::EcP256));
        assert_eq!(curve_of(&unhex(YKCS11_P384)), Some(KeyAlgorithm::EcP384));
        assert_eq!(curve_of(b"\x13\x0aprime256v1"), Some(KeyAlgorithm::EcP256));
        assert_eq!(curve_of(b"\x13\x09secp384r1"), Some(KeyAlgorithm::EcP384));
    }

    #[test]
    fn other_or_broken_ec_params_name_no_curve() {
        // secp256k1 by OID, a name we do not sign with, trailing bytes, truncation.
        assert_eq!(curve_of(&unhex("06052b8104000a")), None);
        assert_eq!(curve_of(b"\x13\x09secp256k1"), None);
        let mut trailing = P256_PARAMS.to_vec();
        trailing.push(0);
        assert_eq!(curve_of(&trailing), None);
        let full = unhex(YKCS11_P256);
        for cut in [1, 2, 10, full.len() - 1] {
            assert_eq!(curve_of(&full[..cut]), None, "cut at {cut}");
        }
        // The same explicit curve with one bit of b changed is not P-256.
        let mut other = full.clone();
        let b_at = YKCS11_P256.find("5ac635d8").expect("b") / 2;
        other[b_at] ^= 1;
        assert_eq!(curve_of(&other), None);
        // Nor with a different base point.
        let mut other = full;
        let g_at = YKCS11_P256.find("046b17d1").expect("g") / 2 + 5;
        other[g_at] ^= 1;
        assert_eq!(curve_of(&other), None);
    }
}
