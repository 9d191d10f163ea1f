//! Bundle tests: every file is checked with `openssl` (3.x, default provider) and the JDK's
//! `keytool`, not only with our own reader. The CA, intermediate and leaf are made with openssl
//! in a temp dir for each test.

use std::path::{Path, PathBuf};
use std::process::Command;

use secrecy::SecretString;
use zeroize::Zeroizing;

use super::*;

const PASSWORD: &str = "correct horse battery";

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

fn fast() -> Pkcs12Options {
    Pkcs12Options {
        iterations: MIN_ITERATIONS,
    }
}

/// Runs a command; returns (success, stdout, stderr).
fn run(program: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(program: &str, args: &[&str]) -> String {
    let (success, stdout, stderr) = run(program, args);
    assert!(success, "{program} {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// A root CA, an intermediate CA and a leaf, all EC P-256, made with openssl.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new(leaf_subject: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = Self { dir };
        let p = |name: &str| pki.path(name).to_str().unwrap().to_string();
        let genkey = |name: &str| {
            ok(
                "openssl",
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    &p(name),
                ],
            );
        };
        std::fs::write(
            pki.path("ca.ext"),
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
             subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        )
        .unwrap();
        std::fs::write(
            pki.path("leaf.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:controller.example\n",
        )
        .unwrap();
        genkey("root.key");
        genkey("inter.key");
        genkey("leaf.key");
        ok(
            "openssl",
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &p("root.key"),
                "-subj",
                "/C=DE/O=SOS/CN=Test Root CA",
                "-days",
                "30",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-out",
                &p("root.pem"),
            ],
        );
        let issue = |csr_key: &str, subj: &str, ca: &str, ca_key: &str, ext: &str, out: &str| {
            ok(
                "openssl",
                &[
                    "req",
                    "-new",
                    "-utf8",
                    "-multivalue-rdn",
                    "-key",
                    &p(csr_key),
                    "-subj",
                    subj,
                    "-out",
                    &p("tmp.csr"),
                ],
            );
            ok(
                "openssl",
                &[
                    "x509",
                    "-req",
                    "-in",
                    &p("tmp.csr"),
                    "-CA",
                    &p(ca),
                    "-CAkey",
                    &p(ca_key),
                    "-CAcreateserial",
                    "-days",
                    "30",
                    "-extfile",
                    &p(ext),
                    "-out",
                    &p(out),
                ],
            );
        };
        issue(
            "inter.key",
            "/C=DE/O=SOS/CN=Test Intermediate CA",
            "root.pem",
            "root.key",
            "ca.ext",
            "inter.pem",
        );
        issue(
            "leaf.key",
            leaf_subject,
            "inter.pem",
            "inter.key",
            "leaf.ext",
            "leaf.pem",
        );
        for name in ["root", "inter", "leaf"] {
            ok(
                "openssl",
                &[
                    "x509",
                    "-in",
                    &p(&format!("{name}.pem")),
                    "-outform",
                    "DER",
                    "-out",
                    &p(&format!("{name}.der")),
                ],
            );
        }
        ok(
            "openssl",
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                &p("leaf.key"),
                "-outform",
                "DER",
                "-out",
                &p("leaf.p8"),
            ],
        );
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    fn leaf_key(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.read("leaf.p8"))
    }

    fn chain(&self) -> Vec<Vec<u8>> {
        vec![self.read("inter.der"), self.read("root.der")]
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        std::fs::write(self.path(name), bytes).unwrap();
        self.arg(name)
    }

    fn key_bundle(&self, alias: &str, options: &Pkcs12Options) -> Vec<u8> {
        let key = self.leaf_key();
        let cert = self.read("leaf.der");
        let chain = self.chain();
        KeyBundle {
            key: BundleKey::Pkcs8Der(&key),
            cert_der: &cert,
            chain_der: &chain,
            alias,
        }
        .to_pkcs12(&secret(PASSWORD), options)
        .unwrap()
    }
}

fn pubkey_pem(key_file: &str) -> String {
    ok("openssl", &["pkey", "-in", key_file, "-pubout"])
}

fn keytool_list(store: &str, password: &str) -> (bool, String, String) {
    run(
        "keytool",
        &[
            "-list",
            "-v",
            "-storetype",
            "PKCS12",
            "-keystore",
            store,
            "-storepass",
            password,
        ],
    )
}

#[test]
fn key_bundle_is_read_by_openssl_with_pbes2_aes256_and_sha256_mac() {
    let pki = Pki::new("/C=DE/O=SOS/OU=IT/CN=controller");
    let file = pki.write("bundle.p12", &pki.key_bundle("https", &fast()));
    let pass = format!("pass:{PASSWORD}");

    let (success, stdout, stderr) = run(
        "openssl",
        &["pkcs12", "-info", "-noout", "-in", &file, "-passin", &pass],
    );
    assert!(success, "openssl pkcs12 -info failed:\n{stdout}\n{stderr}");
    let info = format!("{stdout}{stderr}");
    assert!(info.contains("MAC: sha256"), "{info}");
    assert!(info.contains("Iteration 10000"), "{info}");
    assert!(
        info.contains(
            "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256"
        ),
        "{info}"
    );
    assert!(
        info.contains(
            "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256"
        ),
        "{info}"
    );
    assert_eq!(info.matches("Certificate bag").count(), 3, "{info}");

    // The full dump: one key, 1 + 2 certificates, alias and localKeyId on key and leaf.
    let dump = ok(
        "openssl",
        &["pkcs12", "-in", &file, "-passin", &pass, "-nodes"],
    );
    assert_eq!(
        dump.matches("-----BEGIN PRIVATE KEY-----").count(),
        1,
        "{dump}"
    );
    assert_eq!(
        dump.matches("-----BEGIN CERTIFICATE-----").count(),
        3,
        "{dump}"
    );
    assert_eq!(dump.matches("friendlyName: https").count(), 2, "{dump}");
    let key_ids: Vec<&str> = dump
        .lines()
        .filter(|l| l.trim_start().starts_with("localKeyID:"))
        .collect();
    assert_eq!(key_ids.len(), 2, "{dump}");
    assert_eq!(key_ids[0].trim(), key_ids[1].trim());

    // Same private key: compare the public keys openssl derives from both.
    let key_out = pki.arg("out.key");
    ok(
        "openssl",
        &[
            "pkcs12", "-in", &file, "-passin", &pass, "-nocerts", "-nodes", "-out", &key_out,
        ],
    );
    assert_eq!(pubkey_pem(&key_out), pubkey_pem(&pki.arg("leaf.key")));

    // The leaf certificate comes out first and unchanged.
    let cert_out = pki.arg("out.crt");
    ok(
        "openssl",
        &[
            "pkcs12", "-in", &file, "-passin", &pass, "-clcerts", "-nokeys", "-out", &cert_out,
        ],
    );
    let fingerprint = |f: &str| {
        ok(
            "openssl",
            &["x509", "-in", f, "-noout", "-fingerprint", "-sha256"],
        )
    };
    assert_eq!(fingerprint(&cert_out), fingerprint(&pki.arg("leaf.pem")));
}

#[test]
fn key_bundle_is_one_private_key_entry_for_keytool() {
    let pki = Pki::new("/C=DE/O=SOS/OU=IT/CN=controller");
    let file = pki.write("bundle.p12", &pki.key_bundle("controller-1", &fast()));
    let (success, stdout, stderr) = keytool_list(&file, PASSWORD);
    assert!(success, "keytool failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("Your keystore contains 1 entry"),
        "{stdout}"
    );
    assert!(stdout.contains("Alias name: controller-1"), "{stdout}");
    assert!(stdout.contains("Entry type: PrivateKeyEntry"), "{stdout}");
    assert!(stdout.contains("Certificate chain length: 3"), "{stdout}");
    assert!(
        stdout.contains("Owner: CN=controller, OU=IT, O=SOS, C=DE"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Owner: CN=Test Root CA, O=SOS, C=DE"),
        "{stdout}"
    );
}

#[test]
fn default_iterations_are_accepted_by_keytool_and_openssl() {
    let pki = Pki::new("/CN=agent-1");
    let file = pki.write(
        "bundle.p12",
        &pki.key_bundle("https", &Pkcs12Options::default()),
    );
    let (success, stdout, stderr) = keytool_list(&file, PASSWORD);
    assert!(success, "keytool failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("Entry type: PrivateKeyEntry"), "{stdout}");
    let info = ok(
        "openssl",
        &[
            "pkcs12",
            "-info",
            "-noout",
            "-in",
            &file,
            "-passin",
            &format!("pass:{PASSWORD}"),
        ],
    );
    let (_, _, stderr) = run(
        "openssl",
        &[
            "pkcs12",
            "-info",
            "-noout",
            "-in",
            &file,
            "-passin",
            &format!("pass:{PASSWORD}"),
        ],
    );
    assert!(
        format!("{info}{stderr}").contains(&format!("Iteration {DEFAULT_ITERATIONS}")),
        "{info}{stderr}"
    );
}

#[test]
fn wrong_password_fails_cleanly_everywhere() {
    let pki = Pki::new("/CN=controller");
    let bytes = pki.key_bundle("https", &fast());
    let file = pki.write("bundle.p12", &bytes);

    let (success, stdout, stderr) = run(
        "openssl",
        &[
            "pkcs12",
            "-info",
            "-noout",
            "-in",
            &file,
            "-passin",
            "pass:wrong",
        ],
    );
    assert!(!success, "openssl accepted a wrong password:\n{stdout}");
    assert!(stderr.contains("Mac verify error"), "{stderr}");

    let (success, stdout, stderr) = keytool_list(&file, "wrong-password");
    assert!(!success, "keytool accepted a wrong password:\n{stdout}");
    assert!(
        format!("{stdout}{stderr}").contains("password was incorrect"),
        "{stdout}{stderr}"
    );

    let err = read_pkcs12(&bytes, &secret("wrong")).unwrap_err();
    assert!(matches!(err, BundleError::WrongPassword), "{err}");
}

#[test]
fn our_reader_returns_what_was_written() {
    let pki = Pki::new("/CN=controller");
    let bytes = pki.key_bundle("https", &fast());
    let contents = read_pkcs12(&bytes, &secret(PASSWORD)).unwrap();
    assert_eq!(contents.keys.len(), 1);
    let key = &contents.keys[0];
    assert_eq!(key.pkcs8_der.as_slice(), pki.leaf_key().as_slice());
    assert_eq!(key.alias.as_deref(), Some("https"));
    let ders: Vec<Vec<u8>> = contents.certs.iter().map(|c| c.der.clone()).collect();
    assert_eq!(
        ders,
        vec![
            pki.read("leaf.der"),
            pki.read("inter.der"),
            pki.read("root.der")
        ]
    );
    assert_eq!(contents.certs[0].alias.as_deref(), Some("https"));
    assert!(key.local_key_id.is_some());
    assert_eq!(contents.certs[0].local_key_id, key.local_key_id);
    assert!(contents.certs.iter().all(|c| !c.trusted));
    assert!(contents.certs[1..].iter().all(|c| c.alias.is_none()));
}

#[test]
fn our_reader_reads_an_openssl_made_pkcs12() {
    let pki = Pki::new("/CN=controller");
    let file = pki.arg("openssl.p12");
    ok(
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-inkey",
            &pki.arg("leaf.key"),
            "-in",
            &pki.arg("leaf.pem"),
            "-certfile",
            &pki.arg("inter.pem"),
            "-name",
            "from-openssl",
            "-passout",
            &format!("pass:{PASSWORD}"),
            "-out",
            &file,
        ],
    );
    let contents = read_pkcs12(&pki.read("openssl.p12"), &secret(PASSWORD)).unwrap();
    assert_eq!(contents.keys.len(), 1);
    assert_eq!(contents.keys[0].alias.as_deref(), Some("from-openssl"));
    assert_eq!(contents.certs.len(), 2);
    // OpenSSL writes the key as PKCS#8 too; the public keys agree.
    let p8 = pki.write("back.p8", &contents.keys[0].pkcs8_der);
    assert_eq!(
        ok(
            "openssl",
            &["pkey", "-inform", "DER", "-in", &p8, "-pubout"]
        ),
        pubkey_pem(&pki.arg("leaf.key"))
    );
    assert!(matches!(
        read_pkcs12(&pki.read("openssl.p12"), &secret("nope")),
        Err(BundleError::WrongPassword)
    ));
}

#[test]
fn in_memory_p256_key_gives_the_same_key() {
    use p256::pkcs8::DecodePrivateKey;
    let pki = Pki::new("/CN=controller");
    let secret_key = p256::SecretKey::from_pkcs8_der(&pki.leaf_key()).unwrap();
    let cert = pki.read("leaf.der");
    let bytes = KeyBundle {
        key: BundleKey::P256(&secret_key),
        cert_der: &cert,
        chain_der: &[],
        alias: "https",
    }
    .to_pkcs12(&secret(PASSWORD), &fast())
    .unwrap();
    let file = pki.write("bundle.p12", &bytes);
    let key_out = pki.arg("out.key");
    ok(
        "openssl",
        &[
            "pkcs12",
            "-in",
            &file,
            "-passin",
            &format!("pass:{PASSWORD}"),
            "-nocerts",
            "-nodes",
            "-out",
            &key_out,
        ],
    );
    assert_eq!(pubkey_pem(&key_out), pubkey_pem(&pki.arg("leaf.key")));
    let (success, stdout, stderr) = keytool_list(&file, PASSWORD);
    assert!(success, "keytool failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("Certificate chain length: 1"), "{stdout}");
    // p256 writes its own PKCS#8 form; the JVM must decrypt and use it too.
    let java = pki.write("KeyCheck.java", KEY_CHECK_JAVA.as_bytes());
    let out = ok("java", &[&java, &file, PASSWORD, "https"]);
    assert_eq!(out.trim(), "chain 1 verified true");
}

#[test]
fn key_of_another_certificate_is_refused() {
    let pki = Pki::new("/CN=controller");
    ok(
        "openssl",
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            &pki.arg("inter.key"),
            "-outform",
            "DER",
            "-out",
            &pki.arg("inter.p8"),
        ],
    );
    let other = Zeroizing::new(pki.read("inter.p8"));
    let cert = pki.read("leaf.der");
    let err = KeyBundle {
        key: BundleKey::Pkcs8Der(&other),
        cert_der: &cert,
        chain_der: &[],
        alias: "https",
    }
    .to_pkcs12(&secret(PASSWORD), &fast())
    .unwrap_err();
    assert!(matches!(err, BundleError::KeyMismatch { .. }), "{err}");
}

#[test]
fn bad_inputs_are_refused_before_encrypting() {
    let pki = Pki::new("/CN=controller");
    let key = pki.leaf_key();
    let cert = pki.read("leaf.der");
    let bundle = |alias: &'static str, chain: &'static [Vec<u8>]| KeyBundle {
        key: BundleKey::Pkcs8Der(&key),
        cert_der: &cert,
        chain_der: chain,
        alias,
    };
    assert!(matches!(
        bundle("https", &[]).to_pkcs12(&secret(""), &fast()),
        Err(BundleError::EmptyPassword)
    ));
    assert!(matches!(
        bundle("", &[]).to_pkcs12(&secret(PASSWORD), &fast()),
        Err(BundleError::BadAlias { .. })
    ));
    assert!(matches!(
        bundle("https", &[]).to_pkcs12(&secret(PASSWORD), &Pkcs12Options { iterations: 2048 }),
        Err(BundleError::Iterations { iterations: 2048 })
    ));
    assert!(matches!(
        bundle("https", &[]).to_pkcs12(&secret("pw\u{1F600}"), &fast()),
        Err(BundleError::PasswordNotBmp)
    ));
    let garbage = Zeroizing::new(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
    let err = KeyBundle {
        key: BundleKey::Pkcs8Der(&garbage),
        cert_der: &cert,
        chain_der: &[],
        alias: "https",
    }
    .to_pkcs12(&secret(PASSWORD), &fast())
    .unwrap_err();
    assert!(matches!(err, BundleError::PrivateKey { .. }), "{err}");
    let err = KeyBundle {
        key: BundleKey::Pkcs8Der(&key),
        cert_der: b"not a certificate",
        chain_der: &[],
        alias: "https",
    }
    .to_pkcs12(&secret(PASSWORD), &fast())
    .unwrap_err();
    assert!(matches!(err, BundleError::Certificate { .. }), "{err}");
}

#[test]
fn truststore_lists_trusted_cert_entries_in_keytool_and_loads_in_openssl() {
    let pki = Pki::new("/CN=controller");
    let root = pki.read("root.der");
    let inter = pki.read("inter.der");
    let root_alias = default_alias(&root).unwrap();
    let inter_alias = default_alias(&inter).unwrap();
    assert_eq!(root_alias, "test-root-ca");
    assert_eq!(inter_alias, "test-intermediate-ca");
    let bytes = truststore_pkcs12(
        &[
            TrustedCert {
                alias: &root_alias,
                cert_der: &root,
            },
            TrustedCert {
                alias: &inter_alias,
                cert_der: &inter,
            },
        ],
        &secret(PASSWORD),
        &fast(),
    )
    .unwrap();
    let file = pki.write("trust.p12", &bytes);

    let (success, stdout, stderr) = keytool_list(&file, PASSWORD);
    assert!(success, "keytool failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("Your keystore contains 2 entries"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("Entry type: trustedCertEntry").count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("Alias name: test-root-ca"), "{stdout}");
    assert!(
        stdout.contains("Alias name: test-intermediate-ca"),
        "{stdout}"
    );

    let pass = format!("pass:{PASSWORD}");
    let dump = ok(
        "openssl",
        &["pkcs12", "-in", &file, "-passin", &pass, "-nokeys"],
    );
    assert_eq!(
        dump.matches("-----BEGIN CERTIFICATE-----").count(),
        2,
        "{dump}"
    );
    assert!(!dump.contains("PRIVATE KEY"), "{dump}");
    assert!(dump.contains("friendlyName: test-root-ca"), "{dump}");
    // The JDK's trust attribute is on both bags (OpenSSL 3.0 prints its OID, later versions
    // its name "Trusted key usage (Oracle)").
    let trust_marks = dump.matches("2.16.840.1.113894.746875.1.1").count()
        + dump.matches("Trusted key usage (Oracle)").count();
    assert_eq!(trust_marks, 2, "{dump}");

    let (success, stdout, stderr) = keytool_list(&file, "wrong-password");
    assert!(!success, "keytool accepted a wrong password:\n{stdout}");
    assert!(
        format!("{stdout}{stderr}").contains("password was incorrect"),
        "{stdout}{stderr}"
    );

    let contents = read_pkcs12(&bytes, &secret(PASSWORD)).unwrap();
    assert!(contents.keys.is_empty());
    assert_eq!(contents.certs.len(), 2);
    assert!(contents.certs.iter().all(|c| c.trusted));
}

#[test]
fn truststore_refuses_duplicate_aliases_and_empty_lists() {
    let pki = Pki::new("/CN=controller");
    let root = pki.read("root.der");
    let inter = pki.read("inter.der");
    let err = truststore_pkcs12(
        &[
            TrustedCert {
                alias: "CA",
                cert_der: &root,
            },
            TrustedCert {
                alias: "ca",
                cert_der: &inter,
            },
        ],
        &secret(PASSWORD),
        &fast(),
    )
    .unwrap_err();
    assert!(matches!(err, BundleError::DuplicateAlias { .. }), "{err}");
    assert!(matches!(
        truststore_pkcs12(&[], &secret(PASSWORD), &fast()),
        Err(BundleError::NoCertificates)
    ));
}

#[test]
fn truststore_pem_is_verified_by_openssl_as_a_ca_file() {
    let pki = Pki::new("/CN=controller");
    let root = pki.read("root.der");
    let inter = pki.read("inter.der");
    let pem = truststore_pem(&[&inter, &root]).unwrap();
    assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 2);
    let bundle = pki.write("ca-bundle.pem", pem.as_bytes());
    let out = ok(
        "openssl",
        &["verify", "-CAfile", &bundle, &pki.arg("leaf.pem")],
    );
    assert!(out.contains(": OK"), "{out}");
}

/// Splits an RFC 2253 string at the commas that separate RDNs (not the escaped ones) and trims.
fn rdns(dn: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in dn.chars() {
        let last = parts.last_mut().unwrap();
        if escaped {
            last.push(c);
            escaped = false;
        } else if c == '\\' {
            last.push(c);
            escaped = true;
        } else if c == ',' {
            parts.push(String::new());
        } else {
            last.push(c);
        }
    }
    parts.iter().map(|p| p.trim_start().to_string()).collect()
}

fn openssl_subject(pem: &Path) -> String {
    let out = ok(
        "openssl",
        &[
            "x509",
            "-in",
            pem.to_str().unwrap(),
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
        ],
    );
    out.trim().trim_start_matches("subject=").trim().to_string()
}

#[test]
fn dn_matches_openssl_rfc2253_order() {
    let pki = Pki::new("/C=DE/ST=Berlin/L=Berlin/O=SOS\\, GmbH/OU=IT/CN=controller");
    let ours = subject_dn_rfc2253(&pki.read("leaf.der")).unwrap();
    assert_eq!(
        ours,
        "CN=controller, OU=IT, O=SOS\\, GmbH, L=Berlin, ST=Berlin, C=DE"
    );
    assert_eq!(rdns(&ours), rdns(&openssl_subject(&pki.path("leaf.pem"))));
}

#[test]
fn js7_config_points_at_the_stores_and_names_the_dn() {
    let pki = Pki::new("/C=DE/O=SOS/OU=IT/CN=controller");
    let text = js7_config(&pki.read("leaf.der"), Js7Role::Controller, "https").unwrap();
    let dn = openssl_subject(&pki.path("leaf.pem"));
    let ours = subject_dn_rfc2253(&pki.read("leaf.der")).unwrap();
    assert_eq!(rdns(&ours), rdns(&dn));
    assert!(text.contains(&format!("\"{ours}\"")), "{text}");
    assert!(text.contains("file=${js7.config-directory}\"/private/https-keystore.p12\""));
    assert!(text.contains("file=${js7.config-directory}\"/private/https-truststore.p12\""));
    assert!(text.contains("key-password=\"<KEYSTORE-PASSWORD>\""));
    assert!(text.contains("store-password=\"<KEYSTORE-PASSWORD>\""));
    assert!(text.contains("store-password=\"<TRUSTSTORE-PASSWORD>\""));
    assert!(text.contains("alias=\"https\""));
    assert!(text.contains("\"<CONTROLLER-ID>\" {"));
    assert!(!text.contains(PASSWORD));
    // Braces balance (a cheap check that the HOCON blocks are closed).
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert_eq!(
        code.matches('{').count(),
        code.matches('}').count(),
        "{text}"
    );
    assert_eq!(
        code.matches('[').count(),
        code.matches(']').count(),
        "{text}"
    );

    let agent = js7_config(&pki.read("leaf.der"), Js7Role::Agent, "agent-1").unwrap();
    assert!(agent.contains("permissions=[ AgentDirector ]"), "{agent}");
    assert!(agent.contains("\"<SUBAGENT-ID>\" {"), "{agent}");
}

#[test]
fn hocon_strings_are_escaped() {
    assert_eq!(
        js7::hocon_string("O=A\\, B \"x\""),
        "\"O=A\\\\, B \\\"x\\\"\""
    );
}

/// The JVM's own view: `X500Principal.getName()` of the certificate, and whether our string
/// parses to the same name (as `LdapName` and as `X500Principal`).
const DN_CHECK_JAVA: &str = r#"
import java.io.FileInputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import javax.naming.ldap.LdapName;
import javax.security.auth.x500.X500Principal;

public class DnCheck {
    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(System.out, true, "UTF-8");
        X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509")
            .generateCertificate(new FileInputStream(args[0]));
        String ours = Files.readString(Path.of(args[1]));
        X500Principal subject = cert.getSubjectX500Principal();
        out.println(subject.getName());
        out.println(new LdapName(subject.getName()).equals(new LdapName(ours)));
        out.println(new X500Principal(ours).equals(subject));
    }
}
"#;

#[test]
fn dn_is_the_one_the_jvm_prints_even_for_unusual_names() {
    let pki = Pki::new(
        "/C=DE/ST=Berlin/O=SOS\\, GmbH/OU=IT+OU=Ops/CN=J\u{fc}rgen #1 /emailAddress=ops@example.de",
    );
    let ours = subject_dn_rfc2253(&pki.read("leaf.der")).unwrap();
    let java = pki.write("DnCheck.java", DN_CHECK_JAVA.as_bytes());
    let ours_file = pki.write("ours.txt", ours.as_bytes());
    let out = ok("java", &[&java, &pki.arg("leaf.pem"), &ours_file]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        rdns(&ours),
        rdns(lines[0]),
        "ours: {ours}\nJVM:  {}",
        lines[0]
    );
    assert_eq!(lines[1], "true", "LdapName differs: {ours}");
    assert_eq!(lines[2], "true", "X500Principal differs: {ours}");
    assert!(ours.starts_with("1.2.840.113549.1.9.1=#16"), "{ours}");
}

/// What JS7 does with a key bundle: the JVM loads it, decrypts the key with the password and
/// signs with it; the signature must verify with the entry's certificate.
const KEY_CHECK_JAVA: &str = r#"
import java.io.FileInputStream;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.Certificate;

public class KeyCheck {
    public static void main(String[] args) throws Exception {
        char[] password = args[1].toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(args[0])) {
            ks.load(in, password);
        }
        PrivateKey key = (PrivateKey) ks.getKey(args[2], password);
        Certificate[] chain = ks.getCertificateChain(args[2]);
        Signature signer = Signature.getInstance("SHA256withECDSA");
        signer.initSign(key);
        signer.update("JS7".getBytes("UTF-8"));
        byte[] signature = signer.sign();
        Signature verifier = Signature.getInstance("SHA256withECDSA");
        verifier.initVerify(chain[0].getPublicKey());
        verifier.update("JS7".getBytes("UTF-8"));
        System.out.println("chain " + chain.length + " verified " + verifier.verify(signature));
    }
}
"#;

#[test]
fn the_jvm_decrypts_the_key_and_signs_with_it() {
    let pki = Pki::new("/CN=controller");
    let file = pki.write("bundle.p12", &pki.key_bundle("https", &fast()));
    let java = pki.write("KeyCheck.java", KEY_CHECK_JAVA.as_bytes());
    let out = ok("java", &[&java, &file, PASSWORD, "https"]);
    assert_eq!(out.trim(), "chain 3 verified true");
}
