#!/usr/bin/env bash
# A full demo ceremony on throwaway SoftHSM2 tokens. Nothing outside a fresh temp directory is
# touched. PINs come from files in that directory (a real ceremony types them at the prompt).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet
hsmsign=$PWD/target/release/hsmsign

work=$(mktemp -d "${TMPDIR:-/tmp}/hsmsign-demo.XXXXXX")
eval "$(softhsm-config/new-token-dir.sh "$work/softhsm")"
export HSMSIGN_STATE=$work/state
cd "$work"
umask 077
# Throwaway PINs for throwaway tokens.
head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > so-pin
head -c 6 /dev/urandom | od -An -tu1 | tr -d ' \n' | cut -c1-8 > user-pin
export HSMSIGN_PIN_SOURCE=file:$work/user-pin

step() { printf '\n=== %s\n' "$*"; }
run() { printf '$ hsmsign %s\n' "$*"; "$hsmsign" "$@"; }

step "1. Two tokens: the CA token (root + intermediate keys) and an operator's token"
run token init --label "JS7 CA" --so-pin-source "file:$work/so-pin"
run token init --label "Operator Alice" --so-pin-source "file:$work/so-pin"
run token list

step "2. Keys generated inside the tokens; they can never leave them"
run key generate --key "pkcs11:token=JS7%20CA;object=root-ca" --algorithm ec-p384
run key generate --key "pkcs11:token=JS7%20CA;object=intermediate-ca" --algorithm ec-p256
run key generate --key "pkcs11:token=Operator%20Alice;object=signing" --algorithm ec-p256
run key list --token "pkcs11:token=JS7%20CA"

step "3. Proof of provenance: every security attribute, and the verdict"
run key inspect --key "pkcs11:token=JS7%20CA;object=root-ca"
run key inspect --key "pkcs11:token=Operator%20Alice;object=signing"

step "Done. Everything is in $work"
