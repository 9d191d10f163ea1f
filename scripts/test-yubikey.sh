#!/usr/bin/env bash
# PIV tests on an emulated card: installs pcscd, vsmartcard's vpcd, the emulator's build needs
# and the PIV PKCS#11 modules (OpenSC, Yubico's ykcs11, with yubico-piv-tool to put certificates
# in slots), builds tools/piv-emulator, and runs the ignored tests beside a private pcscd: the
# native YubiKey ceremony and rows 3 and 4 of the token matrix. Needs root (private mount and
# network namespaces); elsewhere it says so and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "test-yubikey: skipped (needs root for a private pcscd); run it as root to test YubiKey support" >&2
  exit 0
fi
need=()
for pkg in pcscd vsmartcard-vpcd libpcsclite-dev libclang-dev clang pkg-config iproute2 \
  opensc-pkcs11 ykcs11 yubico-piv-tool openssl util-linux; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "test-yubikey: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
(cd tools/piv-emulator && cargo build --release --locked --quiet)
cargo test --locked --test yubikey_emulated -- --ignored --test-threads 1
# Rows 3 (OpenSC) and 4 (ykcs11); each starts its own pcscd and card.
cargo test --locked --test token_matrix -- --ignored --test-threads 1
