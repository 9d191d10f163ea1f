#!/usr/bin/env bash
# The whole test suite: unit tests and integration tests against fresh SoftHSM2 tokens.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --locked "$@"
# YubiKey PIV support against an emulated card (root only: it runs a private pcscd).
scripts/test-yubikey.sh
