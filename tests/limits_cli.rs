//! The documented limits, through the binary: day counts, names, subject alternative names,
//! sizes, key sizes and curves, and `ca sign-intermediate` for ordinary CA requests.
//!
//! Every refusal is run with a WRONG PIN source: a check that touched the token would fail on
//! the PIN instead, so the expected message also proves the check came first. Each refusal
//! must leave no output file, no audit record and no certificate row.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

mod common;

use common::{Pki, stderr, stdout};

/// Run with a wrong PIN source (see the module documentation).
fn refused(pki: &Pki, args: &[&str]) -> std::process::Output {
    let wrong = format!("file:{}", pki.path("wrong-pin").display());
    let mut all = vec!["--pin-source", &wrong];
    all.extend_from_slice(args);
    pki.run(&all)
}

/// `args` is refused with exit `code`, a message holding every one of `needles`, no panic, and
/// nothing written: no `out` file, no audit record, no certificate row.
fn assert_refused(pki: &Pki, args: &[&str], code: i32, needles: &[&str], out: &str) {
    let before = pki.counts();
    let result = refused(pki, args);
    let err = stderr(&result);
    assert_eq!(result.status.code(), Some(code), "{args:?}: {err}");
    for needle in needles {
        assert!(err.contains(needle), "{args:?}: want {needle:?} in {err}");
    }
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(!err.contains("PIN"), "{args:?} touched the token: {err}");
    assert!(!pki.path(out).exists(), "{args:?} wrote {out}");
    assert_eq!(pki.counts(), before, "{args:?} changed the record");
}

/// DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// An attribute (OID content bytes, UTF8String value).
fn atav(oid: &[u8], value: &str) -> Vec<u8> {
    seq(&[&tlv(0x06, oid), &tlv(0x0c, value.as_bytes())])
}

const CN: &[u8] = &[0x55, 0x04, 0x03];
const O: &[u8] = &[0x55, 0x04, 0x0a];
const OU: &[u8] = &[0x55, 0x04, 0x0b];

/// A P-256 request `NAME.csr` (DER) with exactly the subject `subject_der`, signed with a fresh
/// openssl key: for names openssl will not write.
fn csr_with_subject(pki: &Pki, name: &str, subject_der: &[u8]) {
    let key = format!("{name}.key");
    let (ok, out) = pki.openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &key,
    ]);
    assert!(ok, "{out}");
    let spki_file = format!("{name}.spki");
    let (ok, out) = pki.openssl(&[
        "pkey", "-in", &key, "-pubout", "-outform", "DER", "-out", &spki_file,
    ]);
    assert!(ok, "{out}");
    let spki = std::fs::read(pki.path(&spki_file)).unwrap();
    let info = seq(&[&tlv(0x02, &[0]), subject_der, &spki, &[0xa0, 0x00]]);
    let info_file = format!("{name}.info");
    std::fs::write(pki.path(&info_file), &info).unwrap();
    let sig_file = format!("{name}.sig");
    let (ok, out) = pki.openssl(&[
        "dgst", "-sha256", "-sign", &key, "-out", &sig_file, &info_file,
    ]);
    assert!(ok, "{out}");
    let sig = std::fs::read(pki.path(&sig_file)).unwrap();
    let ecdsa_sha256 = tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
    let csr = seq(&[
        &info,
        &seq(&[&ecdsa_sha256]),
        &tlv(0x03, &[&[0u8][..], &sig].concat()),
    ]);
    std::fs::write(pki.path(&format!("{name}.csr")), csr).unwrap();
    // openssl agrees it is a well-signed request: only its name is wrong.
    let (ok, out) = pki.openssl(&[
        "req",
        "-inform",
        "DER",
        "-in",
        &format!("{name}.csr"),
        "-noout",
        "-verify",
    ]);
    assert!(ok, "{out}");
}

fn issue_client(csr: &str, extra: &[&'static str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "cert",
        "issue",
        "--ca",
        "issuing",
        "--profile",
        "client",
        "--csr",
        csr,
        "--out",
        "leaf.pem",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn crl_days_are_bounded_checked_and_never_panic() {
    let pki = Pki::new();
    // Too long: named with the maximum (these panicked, or made a CRL valid until 4764).
    for days in ["3000000", "1000000", "367", "4294967295"] {
        assert_refused(
            &pki,
            &[
                "crl", "generate", "--ca", "issuing", "--days", days, "--out", "c.crl",
            ],
            1,
            &[&format!("--days {days}"), "the maximum is 366 days"],
            "c.crl",
        );
    }
    // Not a usable number at all: a usage error naming the option.
    for (days, needle) in [
        ("0", "at least 1"),
        ("-5", "negative"),
        ("seven", "not a whole number"),
        ("7.5", "not a whole number"),
        ("99999999999999999999999", "far beyond every maximum"),
    ] {
        assert_refused(
            &pki,
            &[
                "crl", "generate", "--ca", "issuing", "--days", days, "--out", "c.crl",
            ],
            2,
            &["--days", needle],
            "c.crl",
        );
    }
    // The maximum itself is fine, and openssl reads a nextUpdate within it.
    pki.ok(&[
        "crl", "generate", "--ca", "issuing", "--days", "366", "--out", "c.crl",
    ]);
    let (ok, next) = pki.openssl(&["crl", "-in", "c.crl", "-noout", "-nextupdate"]);
    assert!(ok, "{next}");
    let year: i32 = next
        .split_whitespace()
        .find_map(|w| w.parse().ok().filter(|y: &i32| *y > 2000))
        .unwrap();
    let now = time::OffsetDateTime::now_utc().year();
    assert!(year == now || year == now + 1, "{next}");
}

#[test]
fn a_crl_may_not_outlive_its_ca() {
    let hsm = common::Hsm::with_token("CA");
    hsm.key("CA", "root-key", "ec-p256");
    let pki = Pki { hsm };
    pki.ok(&[
        "ca",
        "init",
        "--name",
        "short",
        "--key",
        "pkcs11:token=CA;object=root-key",
        "--subject",
        "CN=Short Root",
        "--days",
        "5",
    ]);
    assert_refused(
        &pki,
        &[
            "crl", "generate", "--ca", "short", "--days", "30", "--out", "c.crl",
        ],
        1,
        &[
            "--days 30",
            "after the end of CA \"short\"",
            "--days 4 or fewer",
        ],
        "c.crl",
    );
    pki.ok(&[
        "crl", "generate", "--ca", "short", "--days", "4", "--out", "c.crl",
    ]);
}

#[test]
fn certificate_and_ca_days_are_bounded_checked_and_never_panic() {
    let pki = Pki::new();
    pki.hsm.openssl_req("c", "/CN=c", false, &[]);
    pki.hsm.key("CA", "spare", "ec-p256");
    for days in ["3000000", "1000000", "4294967296", "18446744073709551615"] {
        let args = issue_client("c.csr", &[]);
        let mut args = strs(&args);
        args.extend_from_slice(&["--days", days]);
        assert_refused(
            &pki,
            &args,
            1,
            &[&format!("--days {days}"), "maximum is 10 years"],
            "leaf.pem",
        );
        assert_refused(
            &pki,
            &[
                "ca",
                "init",
                "--name",
                "r2",
                "--key",
                "pkcs11:token=CA;object=spare",
                "--subject",
                "CN=R2",
                "--days",
                days,
                "--out",
                "r2.pem",
            ],
            1,
            &[&format!("--days {days}"), "maximum is 25 years"],
            "r2.pem",
        );
        assert_refused(
            &pki,
            &[
                "ca",
                "intermediate",
                "--name",
                "i2",
                "--issuer",
                "root",
                "--key",
                "pkcs11:token=CA;object=spare",
                "--subject",
                "CN=I2",
                "--days",
                days,
                "--out",
                "i2.pem",
            ],
            1,
            &[&format!("--days {days}"), "maximum is 20 years"],
            "i2.pem",
        );
    }
    for (days, needle) in [
        ("0", "at least 1"),
        ("-1", "negative"),
        ("1y", "not a whole"),
    ] {
        let args = issue_client("c.csr", &[]);
        let mut args = strs(&args);
        args.extend_from_slice(&["--days", days]);
        assert_refused(&pki, &args, 2, &["--days", needle], "leaf.pem");
    }
    // An explicit validity past the issuer's end is refused for CAs too (it was cut silently).
    pki.ok(&[
        "ca",
        "init",
        "--name",
        "short",
        "--key",
        "pkcs11:token=CA;object=spare",
        "--subject",
        "CN=Short Root",
        "--days",
        "30",
    ]);
    pki.hsm.key("CA", "sub", "ec-p256");
    assert_refused(
        &pki,
        &[
            "ca",
            "intermediate",
            "--name",
            "sub",
            "--issuer",
            "short",
            "--key",
            "pkcs11:token=CA;object=sub",
            "--subject",
            "CN=Sub",
            "--days",
            "60",
            "--out",
            "sub.pem",
        ],
        1,
        &["--days 60 reaches past the end of CA \"short\""],
        "sub.pem",
    );
}

#[test]
fn malformed_subjects_in_requests_are_refused_naming_the_request() {
    let pki = Pki::new();
    // `CN=x, ` as keytool showed it: an empty RDN after the CN.
    let empty_rdn = seq(&[&tlv(0x31, &atav(CN, "x")), &tlv(0x31, &[])]);
    csr_with_subject(&pki, "emptyrdn", &empty_rdn);
    let empty_value = seq(&[&tlv(0x31, &atav(O, "")), &tlv(0x31, &atav(CN, "x"))]);
    csr_with_subject(&pki, "emptyvalue", &empty_value);
    let twice = seq(&[
        &tlv(0x31, &[atav(OU, "a"), atav(OU, "b")].concat()),
        &tlv(0x31, &atav(CN, "x")),
    ]);
    csr_with_subject(&pki, "twice", &twice);
    let ous: Vec<Vec<u8>> = (0..16)
        .map(|i| tlv(0x31, &atav(OU, &format!("u{i}"))))
        .chain([tlv(0x31, &atav(CN, "x"))])
        .collect();
    csr_with_subject(&pki, "deep", &tlv(0x30, &ous.concat()));
    let bidi = seq(&[&tlv(0x31, &atav(CN, "\u{202e}gpj.exe"))]);
    csr_with_subject(&pki, "bidi", &bidi);
    for (file, needles) in [
        ("emptyrdn.csr", &["emptyrdn.csr", "empty RDN", "X.501"][..]),
        (
            "emptyvalue.csr",
            &["emptyvalue.csr", "O has an empty value"][..],
        ),
        ("twice.csr", &["twice.csr", "OU appears twice"][..]),
        ("deep.csr", &["deep.csr", "17 RDNs", "at most 16"][..]),
        ("bidi.csr", &["bidi.csr", "\\u{202e}gpj.exe", "U+202E"][..]),
    ] {
        let args = issue_client(file, &[]);
        assert_refused(&pki, &strs(&args), 1, needles, "leaf.pem");
        let result = refused(&pki, &strs(&args));
        assert!(!stderr(&result).contains('\u{202e}'), "{}", stderr(&result));
        assert_refused(
            &pki,
            &[
                "ca",
                "sign-intermediate",
                "--issuer",
                "root",
                "--csr",
                file,
                "--out",
                "sub.pem",
            ],
            1,
            needles,
            "sub.pem",
        );
    }
}

#[test]
fn malformed_subjects_on_the_command_line_are_refused() {
    let pki = Pki::new();
    pki.hsm.openssl_req("c", "/CN=c", false, &[]);
    let seventeen = format!(
        "CN=x,{}",
        (0..16)
            .map(|i| format!("OU=u{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let long_cn = format!("CN={}", "x".repeat(65));
    for (subject, needle) in [
        ("CN=x,,O=y", "empty component"),
        ("CN=x,", "empty component"),
        ("/C=DE//CN=x", "empty component"),
        ("CN=x, O=", "O has an empty value"),
        ("CN=x, OU=a+OU=b", "OU appears twice"),
        (seventeen.as_str(), "at most 16"),
        (long_cn.as_str(), "at most 64"),
        ("CN=\u{202e}gpj.exe", "\\u{202e}gpj.exe"),
        ("CN=a\u{200b}b", "\\u{200b}"),
        ("CN=a\u{1b}[31mb", "\\u{1b}"),
    ] {
        let args = issue_client("c.csr", &[]);
        let mut args = strs(&args);
        args.extend_from_slice(&["--subject", subject]);
        assert_refused(&pki, &args, 1, &["--subject", needle], "leaf.pem");
    }
}

#[test]
fn subject_alternative_names_are_limited_and_checked() {
    let pki = Pki::new();
    pki.hsm.openssl_req("c", "/CN=c", false, &[]);
    let list = |n: usize, prefix: &str| {
        (0..n)
            .map(|i| format!("DNS:{prefix}{i}.example.com"))
            .collect::<Vec<_>>()
            .join(",")
    };
    // On the command line.
    let many = list(101, "h");
    let args = issue_client("c.csr", &[]);
    let mut a = strs(&args);
    a.extend_from_slice(&["--san", &many]);
    assert_refused(&pki, &a, 1, &["--san", "101", "at most 100"], "leaf.pem");
    // In the request.
    pki.hsm.openssl_req(
        "many",
        "/CN=many",
        false,
        &["-addext", &format!("subjectAltName={}", list(101, "h"))],
    );
    let args = issue_client("many.csr", &[]);
    assert_refused(
        &pki,
        &strs(&args),
        1,
        &["many.csr", "at most 100"],
        "leaf.pem",
    );
    // Both together.
    pki.hsm.openssl_req(
        "sixty",
        "/CN=sixty",
        false,
        &["-addext", &format!("subjectAltName={}", list(60, "a"))],
    );
    let more = list(41, "b");
    let args = issue_client("sixty.csr", &[]);
    let mut a = strs(&args);
    a.extend_from_slice(&["--san", &more]);
    assert_refused(
        &pki,
        &a,
        1,
        &["--san and the names requested in sixty.csr", "at most 100"],
        "leaf.pem",
    );
    // A hundred names that are each allowed but together make a certificate over 16 KiB.
    let long: Vec<String> = (0..100)
        .map(|i| {
            let label = format!("{i:03}{}", "a".repeat(57));
            format!("DNS:{label}.{label}.{label}.{}.example.com", "b".repeat(46))
        })
        .collect();
    let long = long.join(",");
    let args = issue_client("c.csr", &[]);
    let mut a = strs(&args);
    a.extend_from_slice(&["--san", &long]);
    assert_refused(&pki, &a, 1, &["at most 16384 bytes"], "leaf.pem");
    // Bidirectional and invisible characters, shown escaped.
    for (san, shown) in [
        (
            "DNS:\u{202e}gpj.exe.example.com",
            "DNS:\\u{202e}gpj.exe.example.com",
        ),
        (
            "email:a\u{200d}b@example.com",
            "email:a\\u{200d}b@example.com",
        ),
    ] {
        let args = issue_client("c.csr", &[]);
        let mut a = strs(&args);
        a.extend_from_slice(&["--san", san]);
        assert_refused(&pki, &a, 1, &["--san", shown, "U+"], "leaf.pem");
    }
    // A hundred ordinary names are fine, and openssl sees all of them.
    let hundred = list(100, "ok");
    let args = issue_client("c.csr", &[]);
    let mut a = strs(&args);
    a.extend_from_slice(&["--san", &hundred]);
    pki.ok(&a);
    let (ok, text) = pki.openssl(&[
        "x509",
        "-in",
        "leaf.pem",
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    assert!(ok, "{text}");
    assert_eq!(text.matches("DNS:").count(), 100, "{text}");
}

#[test]
fn unsupported_keys_are_named_by_size_or_curve() {
    let pki = Pki::new();
    // An RSA-16384 request (a fake modulus: the key is refused before its signature is read).
    let mut n = vec![0xffu8; 2048];
    n[0] = 0xc1;
    let rsa_pub = seq(&[
        &tlv(0x02, &[&[0u8][..], &n].concat()),
        &tlv(0x02, &[1, 0, 1]),
    ]);
    let rsa_alg = seq(&[
        &tlv(
            0x06,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
        ),
        &[0x05, 0x00],
    ]);
    let spki = seq(&[&rsa_alg, &tlv(0x03, &[&[0u8][..], &rsa_pub].concat())]);
    let subject = seq(&[&tlv(0x31, &atav(CN, "big"))]);
    let info = seq(&[&tlv(0x02, &[0]), &subject, &spki, &[0xa0, 0x00]]);
    let sha256_rsa = seq(&[
        &tlv(
            0x06,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
        ),
        &[0x05, 0x00],
    ]);
    let csr = seq(&[&info, &sha256_rsa, &tlv(0x03, &[0u8; 65])]);
    std::fs::write(pki.path("rsa16384.csr"), csr).unwrap();
    let args = issue_client("rsa16384.csr", &[]);
    assert_refused(
        &pki,
        &strs(&args),
        1,
        &["rsa16384.csr", "RSA-16384", "2048 to 8192 bits"],
        "leaf.pem",
    );
    let result = refused(&pki, &strs(&args));
    assert!(
        !stderr(&result).contains("malformed"),
        "{}",
        stderr(&result)
    );
    // A P-521 request: the curve is named with its OID, and the supported ones listed.
    let (ok, out) = pki.openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-521",
        "-nodes",
        "-keyout",
        "p521.key",
        "-subj",
        "/CN=p521",
        "-out",
        "p521.csr",
    ]);
    assert!(ok, "{out}");
    let args = issue_client("p521.csr", &[]);
    assert_refused(
        &pki,
        &strs(&args),
        1,
        &["p521.csr", "P-521", "1.3.132.0.35", "P-256", "P-384"],
        "leaf.pem",
    );
}

#[test]
fn sign_intermediate_accepts_an_ordinary_ca_request_and_says_what_it_issued() {
    let pki = Pki::new();
    pki.hsm.openssl_req(
        "sub",
        "/C=DE/O=SOS/CN=Sub CA",
        false,
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let out = pki.ok(&[
        "ca",
        "sign-intermediate",
        "--issuer",
        "root",
        "--csr",
        "sub.csr",
        "--out",
        "sub.pem",
    ]);
    assert!(out.contains("CA:TRUE, pathlen:0"), "{out}");
    assert!(out.contains("end-entity certificates only"), "{out}");
    let (ok, v) = pki.openssl(&["verify", "-x509_strict", "-CAfile", "root.pem", "sub.pem"]);
    assert!(ok, "{v}");
    let (_, text) = pki.openssl(&["x509", "-in", "sub.pem", "-noout", "-text"]);
    assert!(
        text.contains("X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:0"),
        "{text}"
    );
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    let (ok, kt) = pki.hsm.tool("keytool", &["-printcert", "-file", "sub.pem"]);
    assert!(ok, "{kt}");
    assert!(kt.contains("Owner: CN=Sub CA, O=SOS, C=DE"), "{kt}");
    assert!(kt.contains("CA:true") && kt.contains("PathLen:0"), "{kt}");

    // A request for pathlen:2 gets what --path-len says, and the difference is pointed out.
    pki.hsm.openssl_req(
        "deep",
        "/CN=Deep CA",
        false,
        &["-addext", "basicConstraints=critical,CA:TRUE,pathlen:2"],
    );
    let result = pki.run(&[
        "--json",
        "ca",
        "sign-intermediate",
        "--issuer",
        "root",
        "--csr",
        "deep.csr",
        "--path-len",
        "1",
        "--out",
        "deep.pem",
    ]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(stderr(&result).contains("pathlen:2"), "{}", stderr(&result));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&result)).unwrap();
    assert_eq!(doc["basic_constraints"]["path_len"], 1);
    assert_eq!(doc["basic_constraints"]["ca"], true);
    let (_, text) = pki.openssl(&["x509", "-in", "deep.pem", "-noout", "-text"]);
    assert!(text.contains("CA:TRUE, pathlen:1"), "{text}");

    // Under a CA whose path length forbids it: refused before the token, nothing written.
    assert_refused(
        &pki,
        &[
            "ca",
            "sign-intermediate",
            "--issuer",
            "issuing",
            "--csr",
            "sub.csr",
            "--out",
            "under-issuing.pem",
        ],
        1,
        &["path length constraint 0"],
        "under-issuing.pem",
    );
    // Too long, or reaching past the issuer.
    assert_refused(
        &pki,
        &[
            "ca",
            "sign-intermediate",
            "--issuer",
            "root",
            "--csr",
            "sub.csr",
            "--days",
            "3000000",
            "--out",
            "x.pem",
        ],
        1,
        &["--days 3000000", "maximum is 20 years"],
        "x.pem",
    );
    // An ill-formed path length is a usage error naming the option.
    for bad in ["-1", "256", "one"] {
        assert_refused(
            &pki,
            &[
                "ca",
                "sign-intermediate",
                "--issuer",
                "root",
                "--csr",
                "sub.csr",
                "--path-len",
                bad,
                "--out",
                "x.pem",
            ],
            2,
            &["--path-len", "not a path length", "0 to 255"],
            "x.pem",
        );
    }
    // End-entity profiles keep refusing CA requests.
    let args = issue_client("sub.csr", &[]);
    assert_refused(
        &pki,
        &strs(&args),
        1,
        &["asks for a CA certificate", "ca sign-intermediate"],
        "leaf.pem",
    );
}

#[test]
fn an_oversized_or_endless_request_file_is_refused_without_reading_it_whole() {
    let pki = Pki::new();
    std::fs::write(pki.path("huge.csr"), vec![b'A'; 1 << 20]).unwrap();
    for (file, needles) in [
        (
            "huge.csr",
            &["huge.csr", "at least 1048576 bytes", "at most 65536"][..],
        ),
        ("/dev/zero", &["/dev/zero", "character device"][..]),
    ] {
        let args = issue_client(file, &[]);
        assert_refused(&pki, &strs(&args), 1, needles, "leaf.pem");
        assert_refused(
            &pki,
            &[
                "ca",
                "sign-intermediate",
                "--issuer",
                "root",
                "--csr",
                file,
                "--out",
                "sub.pem",
            ],
            1,
            needles,
            "sub.pem",
        );
    }
}
