//! Putting keys on a token: the ONE template of every key pair hsmsign makes, generation on the
//! token, and import of a software key (written in, never read back out).

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use der::Encode;
use p256::elliptic_curve::sec1::ToSec1Point;
use zeroize::Zeroizing;

use super::curves::{P256_PARAMS, P384_PARAMS};
use super::{KeyInfo, TokenError, TokenSession, ck};
use crate::signer::KeyAlgorithm;

impl TokenSession {
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
