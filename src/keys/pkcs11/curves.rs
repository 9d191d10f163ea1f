//! The curve a key's CKA_EC_PARAMS names, in each of the forms modules write.

use crate::signer::KeyAlgorithm;

/// DER of the named-curve OIDs, as CKA_EC_PARAMS holds them.
pub(super) const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(super) const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// The curve CKA_EC_PARAMS names. X9.62 ECParameters come in three forms and modules use all of
/// them: a named-curve OID (most), the explicit domain parameters (Yubico's ykcs11 writes
/// SEQUENCE { version, prime field, curve a b, base point, order, cofactor }), and a
/// PrintableString curve name (PKCS#11 3.0). An explicit curve is P-256 or P-384 only if its
/// field prime, a, b, base point and order all are.
pub(super) fn curve_of(params: &[u8]) -> Option<KeyAlgorithm> {
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
