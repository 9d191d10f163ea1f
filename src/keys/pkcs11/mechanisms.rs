//! Which PKCS#11 mechanism makes which signature, chosen from what the token reports.
//!
//! The table is read once per session from `C_GetMechanismList` and `C_GetMechanismInfo`
//! (key size range, CKF_SIGN, CKF_GENERATE_KEY_PAIR). Signing and key generation consult it,
//! and `token probe` prints the same plan, so what probe says is what a signature will use.

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::slot::Slot;

use crate::signer::{HashAlgorithm, KeyAlgorithm, SignatureAlgorithm};

/// What `C_GetMechanismInfo` said about one mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MechanismFacts {
    /// ulMinKeySize (bits for RSA and EC).
    pub min_key: usize,
    /// ulMaxKeySize.
    pub max_key: usize,
    /// CKF_SIGN.
    pub sign: bool,
    /// CKF_GENERATE_KEY_PAIR.
    pub generate_key_pair: bool,
}

impl MechanismFacts {
    /// Whether a key of `bits` is inside the reported range. A range of 0..0 is read as
    /// "not reported", and EC ranges given in bytes (some modules do) are accepted too.
    fn fits(&self, bits: usize, ec: bool) -> bool {
        if self.min_key == 0 && self.max_key == 0 {
            return true;
        }
        let inside = |v: usize| self.min_key <= v && v <= self.max_key;
        inside(bits) || (ec && inside(bits / 8))
    }
}

/// The mechanisms of one token.
#[derive(Clone, Debug, Default)]
pub struct MechanismTable {
    /// False when the token would not list its mechanisms: the raw mechanisms are then assumed.
    listed: bool,
    entries: Vec<(MechanismType, Option<MechanismFacts>)>,
}

/// One way to make a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignChoice {
    /// The mechanism.
    pub mechanism: MechanismType,
    /// True when the host hashes and the token signs the digest (raw mechanism); false when the
    /// token hashes the message itself.
    pub host_hash: bool,
}

impl SignChoice {
    /// The mechanism's PKCS#11 name, e.g. `CKM_ECDSA_SHA384`.
    pub fn name(&self) -> String {
        mechanism_name(self.mechanism)
    }

    /// The mechanism to pass to C_SignInit (none of these take parameters).
    pub fn mechanism(&self) -> Mechanism<'static> {
        match self.mechanism {
            MechanismType::ECDSA_SHA256 => Mechanism::EcdsaSha256,
            MechanismType::ECDSA_SHA384 => Mechanism::EcdsaSha384,
            MechanismType::ECDSA_SHA512 => Mechanism::EcdsaSha512,
            MechanismType::RSA_PKCS => Mechanism::RsaPkcs,
            MechanismType::SHA256_RSA_PKCS => Mechanism::Sha256RsaPkcs,
            MechanismType::SHA384_RSA_PKCS => Mechanism::Sha384RsaPkcs,
            MechanismType::SHA512_RSA_PKCS => Mechanism::Sha512RsaPkcs,
            _ => Mechanism::Ecdsa,
        }
    }

    /// How the signature is made, in words.
    pub fn describe(&self, key: KeyAlgorithm, alg: SignatureAlgorithm) -> String {
        if self.host_hash {
            let cut = if key.is_ec() {
                let digest_len = alg.hash().digest(b"").len();
                let input = crate::signer::ecdsa_input(key, &vec![0u8; digest_len]).len();
                if input < digest_len {
                    format!(", cut to {input} bytes (the curve order)")
                } else {
                    String::new()
                }
            } else {
                " in a DigestInfo".to_string()
            };
            format!(
                "{} over a {} digest made on the host{cut}",
                self.name(),
                hash_name(alg.hash())
            )
        } else {
            format!("{} (the token hashes the message)", self.name())
        }
    }
}

fn hash_name(h: HashAlgorithm) -> &'static str {
    match h {
        HashAlgorithm::Sha256 => "SHA-256",
        HashAlgorithm::Sha384 => "SHA-384",
        HashAlgorithm::Sha512 => "SHA-512",
    }
}

/// The PKCS#11 name of a mechanism type (`CKM_...`).
pub fn mechanism_name(t: MechanismType) -> String {
    let known = [
        (MechanismType::ECDSA, "CKM_ECDSA"),
        (MechanismType::ECDSA_SHA256, "CKM_ECDSA_SHA256"),
        (MechanismType::ECDSA_SHA384, "CKM_ECDSA_SHA384"),
        (MechanismType::ECDSA_SHA512, "CKM_ECDSA_SHA512"),
        (MechanismType::RSA_PKCS, "CKM_RSA_PKCS"),
        (MechanismType::SHA256_RSA_PKCS, "CKM_SHA256_RSA_PKCS"),
        (MechanismType::SHA384_RSA_PKCS, "CKM_SHA384_RSA_PKCS"),
        (MechanismType::SHA512_RSA_PKCS, "CKM_SHA512_RSA_PKCS"),
        (MechanismType::ECC_KEY_PAIR_GEN, "CKM_EC_KEY_PAIR_GEN"),
        (
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            "CKM_RSA_PKCS_KEY_PAIR_GEN",
        ),
    ];
    known
        .iter()
        .find(|(k, _)| *k == t)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| t.to_string())
}

/// Every mechanism hsmsign may use: signing (raw and combined) and key pair generation.
const USED: [MechanismType; 10] = [
    MechanismType::ECDSA,
    MechanismType::ECDSA_SHA256,
    MechanismType::ECDSA_SHA384,
    MechanismType::ECDSA_SHA512,
    MechanismType::RSA_PKCS,
    MechanismType::SHA256_RSA_PKCS,
    MechanismType::SHA384_RSA_PKCS,
    MechanismType::SHA512_RSA_PKCS,
    MechanismType::ECC_KEY_PAIR_GEN,
    MechanismType::RSA_PKCS_KEY_PAIR_GEN,
];

fn key_bits(key: KeyAlgorithm) -> usize {
    match key {
        KeyAlgorithm::EcP256 => 256,
        KeyAlgorithm::EcP384 => 384,
        KeyAlgorithm::Rsa(bits) => bits,
    }
}

impl MechanismTable {
    /// Read the table of the token in `slot`.
    pub fn read(ctx: &Pkcs11, slot: Slot) -> Self {
        let Ok(list) = ctx.get_mechanism_list(slot) else {
            return Self::default();
        };
        if list.is_empty() {
            return Self::default();
        }
        let entries = list
            .into_iter()
            .filter(|m| USED.contains(m))
            .map(|m| {
                let facts = ctx
                    .get_mechanism_info(slot, m)
                    .ok()
                    .map(|i| MechanismFacts {
                        min_key: i.min_key_size(),
                        max_key: i.max_key_size(),
                        sign: i.sign(),
                        generate_key_pair: i.generate_key_pair(),
                    });
                (m, facts)
            })
            .collect();
        Self {
            listed: true,
            entries,
        }
    }

    /// A table from known facts (tests, and the probe's report).
    pub fn from_entries(entries: Vec<(MechanismType, Option<MechanismFacts>)>) -> Self {
        Self {
            listed: true,
            entries,
        }
    }

    /// Whether the token listed its mechanisms at all.
    pub fn listed(&self) -> bool {
        self.listed
    }

    /// The facts of a listed mechanism (`Some(None)`: listed but C_GetMechanismInfo failed).
    pub fn facts(&self, m: MechanismType) -> Option<Option<MechanismFacts>> {
        self.entries.iter().find(|(t, _)| *t == m).map(|(_, f)| *f)
    }

    /// Whether `m` is listed.
    pub fn has(&self, m: MechanismType) -> bool {
        self.facts(m).is_some()
    }

    /// Whether `m` can sign with a key of kind `key` (listed, CKF_SIGN, key size in range).
    /// Unknown facts count as yes; a token that lists nothing is assumed to have the raw ones.
    fn can_sign(&self, m: MechanismType, key: KeyAlgorithm) -> bool {
        if !self.listed {
            return m == MechanismType::ECDSA || m == MechanismType::RSA_PKCS;
        }
        match self.facts(m) {
            None => false,
            Some(None) => true,
            Some(Some(f)) => f.sign && f.fits(key_bits(key), key.is_ec()),
        }
    }

    /// The ways to make `alg` with a key of kind `key`, best first. Empty when the token offers
    /// none (see [`MechanismTable::why_not`]).
    ///
    /// ECDSA: raw CKM_ECDSA over the host's digest first (the host decides what is hashed; the
    /// digest is cut to the curve order, which keeps tokens that take only 20/32/48/64 input
    /// bytes happy), then the token's CKM_ECDSA_SHAx. RSA: the token's CKM_SHAx_RSA_PKCS
    /// first, because raw CKM_RSA_PKCS is a bare private-key operation that some tokens
    /// (TPMs) only allow for keys with decryption rights, which hsmsign never grants; PKCS#1
    /// v1.5 is deterministic, so both give the same signature. `prefer_combined` (keys that
    /// need a login before each signature go through multi-part calls, which raw CKM_ECDSA
    /// often lacks) puts the combined mechanism first.
    pub fn sign_choices(
        &self,
        key: KeyAlgorithm,
        alg: SignatureAlgorithm,
        prefer_combined: bool,
    ) -> Vec<SignChoice> {
        let (raw, combined) = pair(key, alg);
        let raw = SignChoice {
            mechanism: raw,
            host_hash: true,
        };
        let combined = SignChoice {
            mechanism: combined,
            host_hash: false,
        };
        let ordered = if key.is_ec() && !prefer_combined {
            [raw, combined]
        } else {
            [combined, raw]
        };
        ordered
            .into_iter()
            .filter(|c| self.can_sign(c.mechanism, key))
            .collect()
    }

    /// Why no mechanism fits: what is missing, in words.
    pub fn why_not(&self, key: KeyAlgorithm, alg: SignatureAlgorithm) -> String {
        let (raw, combined) = pair(key, alg);
        let bits = key_bits(key);
        let one = |m: MechanismType| match self.facts(m) {
            None => format!("{} is not offered", mechanism_name(m)),
            Some(None) => format!("{} is listed", mechanism_name(m)),
            Some(Some(f)) if !f.sign => format!("{} is listed without CKF_SIGN", mechanism_name(m)),
            Some(Some(f)) => format!(
                "{} takes {}..{}-bit keys, not {bits}",
                mechanism_name(m),
                f.min_key,
                f.max_key
            ),
        };
        format!("{}, and {}", one(raw), one(combined))
    }

    /// Whether the token can generate a key pair of kind `key`; `Err` says why not.
    pub fn can_generate(&self, key: KeyAlgorithm) -> Result<(), String> {
        if !self.listed {
            return Ok(());
        }
        let m = if key.is_ec() {
            MechanismType::ECC_KEY_PAIR_GEN
        } else {
            MechanismType::RSA_PKCS_KEY_PAIR_GEN
        };
        match self.facts(m) {
            None => Err(format!("it does not offer {}", mechanism_name(m))),
            Some(None) => Ok(()),
            Some(Some(f)) if !f.generate_key_pair => Err(format!(
                "it lists {} without CKF_GENERATE_KEY_PAIR",
                mechanism_name(m)
            )),
            Some(Some(f)) if !f.fits(key_bits(key), key.is_ec()) => Err(format!(
                "its {} takes {}..{}-bit keys, not {}",
                mechanism_name(m),
                f.min_key,
                f.max_key,
                key_bits(key)
            )),
            Some(Some(_)) => Ok(()),
        }
    }
}

/// The raw and the combined mechanism for `alg` with a key of kind `key`.
fn pair(key: KeyAlgorithm, alg: SignatureAlgorithm) -> (MechanismType, MechanismType) {
    use HashAlgorithm as H;
    use MechanismType as M;
    match (key.is_ec(), alg.hash()) {
        (true, H::Sha256) => (M::ECDSA, M::ECDSA_SHA256),
        (true, H::Sha384) => (M::ECDSA, M::ECDSA_SHA384),
        (true, H::Sha512) => (M::ECDSA, M::ECDSA_SHA512),
        (false, H::Sha256) => (M::RSA_PKCS, M::SHA256_RSA_PKCS),
        (false, H::Sha384) => (M::RSA_PKCS, M::SHA384_RSA_PKCS),
        (false, H::Sha512) => (M::RSA_PKCS, M::SHA512_RSA_PKCS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(min: usize, max: usize, sign: bool) -> Option<MechanismFacts> {
        Some(MechanismFacts {
            min_key: min,
            max_key: max,
            sign,
            generate_key_pair: !sign,
        })
    }

    #[test]
    fn ecdsa_prefers_host_hashing_and_falls_back_to_the_combined_mechanism() {
        let t = MechanismTable::from_entries(vec![
            (MechanismType::ECDSA, facts(256, 384, true)),
            (MechanismType::ECDSA_SHA384, facts(256, 384, true)),
        ]);
        let c = t.sign_choices(KeyAlgorithm::EcP256, SignatureAlgorithm::EcdsaSha384, false);
        assert_eq!(c.len(), 2);
        assert!(c[0].host_hash && c[0].name() == "CKM_ECDSA");
        assert_eq!(c[1].name(), "CKM_ECDSA_SHA384");
        assert!(
            c[0].describe(KeyAlgorithm::EcP256, SignatureAlgorithm::EcdsaSha384)
                .contains("cut to 32 bytes")
        );
        // Only the combined one for SHA-512: none offered, so only raw.
        let c = t.sign_choices(KeyAlgorithm::EcP256, SignatureAlgorithm::EcdsaSha512, false);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn rsa_prefers_the_combined_mechanism_and_key_sizes_count() {
        let t = MechanismTable::from_entries(vec![
            (MechanismType::RSA_PKCS, facts(1024, 3072, true)),
            (MechanismType::SHA256_RSA_PKCS, facts(1024, 3072, true)),
            (
                MechanismType::RSA_PKCS_KEY_PAIR_GEN,
                facts(1024, 3072, false),
            ),
        ]);
        let c = t.sign_choices(
            KeyAlgorithm::Rsa(3072),
            SignatureAlgorithm::RsaSha256,
            false,
        );
        assert_eq!(c[0].name(), "CKM_SHA256_RSA_PKCS");
        assert!(!c[0].host_hash);
        assert!(
            t.sign_choices(
                KeyAlgorithm::Rsa(4096),
                SignatureAlgorithm::RsaSha256,
                false
            )
            .is_empty()
        );
        let why = t.why_not(KeyAlgorithm::Rsa(4096), SignatureAlgorithm::RsaSha256);
        assert!(why.contains("1024..3072-bit keys, not 4096"), "{why}");
        assert!(t.can_generate(KeyAlgorithm::Rsa(3072)).is_ok());
        let e = t.can_generate(KeyAlgorithm::Rsa(4096)).unwrap_err();
        assert!(e.contains("not 4096"), "{e}");
        let e = t.can_generate(KeyAlgorithm::EcP256).unwrap_err();
        assert!(e.contains("CKM_EC_KEY_PAIR_GEN"), "{e}");
    }

    #[test]
    fn a_mechanism_without_sign_is_not_used_and_the_reason_says_so() {
        let t = MechanismTable::from_entries(vec![(MechanismType::ECDSA, facts(256, 384, false))]);
        assert!(
            t.sign_choices(KeyAlgorithm::EcP256, SignatureAlgorithm::EcdsaSha256, false)
                .is_empty()
        );
        let why = t.why_not(KeyAlgorithm::EcP256, SignatureAlgorithm::EcdsaSha256);
        assert!(
            why.contains("CKM_ECDSA is listed without CKF_SIGN"),
            "{why}"
        );
        assert!(why.contains("CKM_ECDSA_SHA256 is not offered"), "{why}");
    }

    #[test]
    fn a_silent_token_gets_the_raw_mechanisms() {
        let t = MechanismTable::default();
        let c = t.sign_choices(
            KeyAlgorithm::Rsa(3072),
            SignatureAlgorithm::RsaSha384,
            false,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].name(), "CKM_RSA_PKCS");
    }
}
