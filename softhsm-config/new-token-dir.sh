#!/usr/bin/env bash
# Make a throwaway SoftHSM2 token directory and its config, and print the line that selects it.
#
#   eval "$(softhsm-config/new-token-dir.sh /tmp/my-tokens)"   # sets SOFTHSM2_CONF
#
# Without an argument a fresh directory under ${TMPDIR:-/tmp} is made. Nothing outside that
# directory is touched: no /etc/softhsm changes, no system tokens.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/hsmsign-tokens.XXXXXX")}
mkdir -p "$dir/tokens"
chmod 700 "$dir" "$dir/tokens"
sed "s#@TOKENDIR@#$dir/tokens#" "$here/softhsm2.conf.template" > "$dir/softhsm2.conf"
echo "export SOFTHSM2_CONF='$dir/softhsm2.conf'"
