#!/usr/bin/env bash
# Install the Debian package as an officer would and check what it promises, then purge it:
# `hsmsign --version`, `man hsmsign-archive-sign`, bash completion, the SBOM. Root only (dpkg -i).
# Usage: scripts/test-package.sh [path/to/hsmsign_*.deb]   (default: the newest in target/debian)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "test-package: needs root (dpkg -i); run it as root or skip it" >&2
  exit 1
fi
deb=${1:-$(ls -t target/debian/hsmsign_*.deb 2>/dev/null | head -1)}
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
  echo "test-package: no .deb found; build one with scripts/package.sh" >&2
  exit 1
fi
if dpkg -s hsmsign >/dev/null 2>&1; then
  echo "test-package: a hsmsign package is already installed; purge it first (dpkg --purge hsmsign)" >&2
  exit 1
fi
# What the checks need: man (man-db) and bash-completion. Debian's minimal images drop man pages
# through a dpkg filter; the package's own must be there for `man` to find.
need=()
command -v man >/dev/null 2>&1 || need+=(man-db)
[ -f /usr/share/bash-completion/bash_completion ] || need+=(bash-completion)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
filter=/etc/dpkg/dpkg.cfg.d/excludes
moved=
if [ -f "$filter" ] && grep -q '^path-exclude=/usr/share/man' "$filter"; then
  mv "$filter" "$filter.hsmsign-test"
  moved=1
fi
cleanup() {
  dpkg --purge hsmsign >/dev/null 2>&1 || true
  if [ -n "$moved" ]; then mv "$filter.hsmsign-test" "$filter"; fi
}
trap cleanup EXIT

fail() { echo "test-package: FAILED: $*" >&2; exit 1; }

echo "test-package: installing $deb"
# The run-time dependencies (libpcsclite1) come from the distribution: apt resolves them.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$(realpath "$deb")" >/dev/null

version=$(/usr/bin/hsmsign --version)
echo "$version"
grep -q '^hsmsign [0-9]' <<<"$version" || fail "--version does not name the version"
grep -q '^commit: [0-9a-f]\{40\}$' <<<"$version" || fail "--version does not name the commit"
grep -q '^features: yubikey$' <<<"$version" || fail "--version does not list the yubikey feature"
grep -q '^PKCS#11 API: [0-9]\+\.[0-9]\+$' <<<"$version" || fail "--version does not name the PKCS#11 API"
/usr/bin/hsmsign --version --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["name"]=="hsmsign" and d["features"]==["yubikey"], d'

# The man page of a subcommand, rendered by man itself.
page=$(MANPAGER=cat MANWIDTH=100 man hsmsign-archive-sign 2>&1) || fail "man hsmsign-archive-sign: $page"
grep -q -- '--out' <<<"$page" || fail "the archive sign page does not document --out"
pages=$(dpkg -L hsmsign | grep -c '^/usr/share/man/man1/hsmsign.*\.1\.gz$')
[ "$pages" -ge 20 ] || fail "only $pages man pages installed"
echo "test-package: man hsmsign-archive-sign shows $(wc -l <<<"$page") lines; $pages man pages installed"

# Bash completion as an interactive shell loads it: `hsmsign arc<TAB>` and `hsmsign archive s<TAB>`.
words=$(bash -c '
  source /usr/share/bash-completion/bash_completion
  _comp_load hsmsign 2>/dev/null || __load_completion hsmsign
  complete_for() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=(); _hsmsign hsmsign "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"; echo "${COMPREPLY[*]}"; }
  complete_for hsmsign arc
  complete_for hsmsign archive s
')
echo "test-package: bash completes: $(tr '\n' '|' <<<"$words")"
[ "$(sed -n 1p <<<"$words")" = "archive" ] || fail "bash does not complete 'hsmsign arc' to 'archive'"
[ "$(sed -n 2p <<<"$words")" = "sign" ] || fail "bash does not complete 'hsmsign archive s' to 'sign'"
[ -f /usr/share/zsh/vendor-completions/_hsmsign ] || fail "no zsh completion"
[ -f /usr/share/fish/vendor_completions.d/hsmsign.fish ] || fail "no fish completion"

# The SBOM inside names the crates of the build.
sbom=/usr/share/doc/hsmsign/sbom/hsmsign.cdx.json
python3 - "$sbom" <<'PY' || fail "the SBOM is incomplete"
import json, sys
bom = json.load(open(sys.argv[1]))
assert bom["bomFormat"] == "CycloneDX", bom.get("bomFormat")
comps = {c["name"]: c for c in bom["components"]}
for name in ("cryptoki", "rusqlite", "clap"):
    c = comps[name]
    assert c.get("version"), c
    assert c.get("licenses"), c
# Crates from crates.io carry the registry's SHA-256; the vendored cryptoki (a path dependency,
# vendor/README.md) has none to carry and is named as the vendored copy instead.
for name in ("rusqlite", "clap", "der"):
    assert any(h["alg"] == "SHA-256" for h in comps[name].get("hashes", [])), comps[name]
assert "vendor/cryptoki" in comps["cryptoki"]["bom-ref"], comps["cryptoki"]
print(f"test-package: SBOM lists {len(comps)} components with versions, licenses and checksums")
PY

dpkg --purge hsmsign >/dev/null
[ ! -e /usr/bin/hsmsign ] || fail "dpkg --purge left /usr/bin/hsmsign"
echo "test-package: purged; all checks passed"
