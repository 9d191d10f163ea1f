//! Objects on a token: finding, listing and inspecting keys, and the certificates kept beside
//! them.
//!
//! No function here reads the value of a private key or wraps one: the private half is only ever
//! named by its handle. Public keys are read from the public-key object with the same CKA_ID
//! (or, failing that, from the RSA private key's public attributes or a certificate object).

use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use der::{Decode, Encode};

use super::curves::curve_of;
use super::{Pkcs11Uri, TokenError, TokenSession, ck};
use crate::signer::PublicKey;

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

    pub(super) fn attr_bytes(&self, handle: ObjectHandle, t: AttributeType) -> Option<Vec<u8>> {
        let attrs = self.session.get_attributes(handle, &[t]).ok()?;
        attrs.into_iter().find_map(|a| match a {
            Attribute::Label(v) | Attribute::Id(v) => Some(v),
            Attribute::EcParams(v) | Attribute::EcPoint(v) => Some(v),
            Attribute::Modulus(v) | Attribute::PublicExponent(v) => Some(v),
            _ => None,
        })
    }

    pub(super) fn attr_bool(&self, handle: ObjectHandle, t: AttributeType) -> Option<bool> {
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

    pub(super) fn key_type(&self, handle: ObjectHandle) -> Option<KeyType> {
        let attrs = self
            .session
            .get_attributes(handle, &[AttributeType::KeyType])
            .ok()?;
        attrs.into_iter().find_map(|a| match a {
            Attribute::KeyType(k) => Some(k),
            _ => None,
        })
    }

    pub(super) fn objects(
        &self,
        template: &[Attribute],
        doing: &str,
    ) -> Result<Vec<ObjectHandle>, TokenError> {
        self.session.find_objects(template).map_err(ck(doing))
    }

    /// The public half of the key pair with CKA_ID `id` (private key handle given for RSA).
    pub(super) fn public_key_for(
        &self,
        private: ObjectHandle,
        id: &[u8],
    ) -> Result<PublicKey, String> {
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

    pub(super) fn key_info(&self, h: ObjectHandle) -> KeyInfo {
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

fn ec_public_key(params: &[u8], point: &[u8]) -> Result<PublicKey, String> {
    let algorithm =
        curve_of(params).ok_or_else(|| "EC key on a curve other than P-256 / P-384".to_string())?;
    // CKA_EC_POINT is a DER OCTET STRING wrapping the point; some modules give the bare point.
    let raw = der::asn1::OctetString::from_der(point)
        .map(|o| o.as_bytes().to_vec())
        .unwrap_or_else(|_| point.to_vec());
    PublicKey::from_ec_point(algorithm, &raw).map_err(|e| e.to_string())
}
