#!/usr/bin/env bash
# Install what hsmsign's demo and tests need on a fresh Debian machine (only what is missing).
# Used by scripts/demo.sh and scripts/test.sh.
set -euo pipefail
need=()
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || need+=(opensc)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v keytool >/dev/null 2>&1 || need+=(default-jre-headless)
# The JVM checks run small Java programs straight from source (`java File.java`: the JVM
# mutual-TLS handshake, Java's ZipInputStream view of an archive), which needs the compiler.
command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
command -v setsid >/dev/null 2>&1 || need+=(util-linux)
# Independent archive readers and writers for tests/archive_hostile.rs.
command -v zip >/dev/null 2>&1 || need+=(zip)
command -v unzip >/dev/null 2>&1 || need+=(unzip)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The ceremony record test (tests/ceremony_record.rs) prints the HTML record to PDF with headless
# Chromium and reads its text back with pdftotext, as a person would see the page.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
# Native YubiKey support (the default `yubikey` feature) links libpcsclite.
dpkg -s libpcsclite-dev >/dev/null 2>&1 || need+=(libpcsclite-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# The token matrix (tests/token_matrix.rs): tpm2-pkcs11 on swtpm behind tpm2-abrmd on a private
# D-Bus, and p11-kit's client/server pair. The network-HSM stand-in (tools/stand-in-hsm, built by
# the tests and scripts/bench-sessions.sh) needs gcc and the PKCS#11 header of libp11-kit-dev. Checked per package: the libraries have no command.
for pkg in libtpm2-pkcs11-1 libtpm2-pkcs11-tools swtpm swtpm-tools libtss2-tcti-swtpm0 tpm2-tools \
  tpm2-abrmd libtss2-tcti-tabrmd0 dbus-daemon p11-kit p11-kit-modules \
  gcc libp11-kit-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# pkilint (PyPI), an independent RFC 5280 linter that tests/lint_cli.rs runs over every kind of
# certificate and CRL hsmsign makes. In a private virtualenv, pinned.
pkilint_venv="${XDG_CACHE_HOME:-$HOME/.cache}/hsmsign/pkilint-0.13.3"
if [ ! -x "$pkilint_venv/bin/lint_pkix_cert" ]; then
  command -v python3 >/dev/null 2>&1 || need_py=1
  if [ -n "${need_py:-}" ] || ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  echo "setup: installing pkilint into $pkilint_venv" >&2
  rm -rf "$pkilint_venv"
  python3 -m venv "$pkilint_venv"
  "$pkilint_venv/bin/pip" install -q --disable-pip-version-check "pkilint==0.13.3"
fi
