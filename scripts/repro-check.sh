#!/usr/bin/env bash
# Reproducibility check: build the package twice from the same commit in two different
# directories (fresh git worktrees, each with its own target directory) and compare the SHA-256
# of the binary and of the .deb. Exit 0 only when both match.
# Usage: scripts/repro-check.sh [COMMIT]   (default: HEAD; uncommitted changes are not built)
set -euo pipefail
cd "$(dirname "$0")/.."
commit=$(git rev-parse --verify "${1:-HEAD}^{commit}")
tmp=$(mktemp -d /tmp/hsmsign-repro.XXXXXX)
# Different directories, and different depths, so a path that leaks shows up as a difference.
dirs=("$tmp/a" "$tmp/b/deeper/tree")
cleanup() {
  for d in "${dirs[@]}"; do
    git worktree remove --force "$d" >/dev/null 2>&1 || true
  done
  rm -rf "$tmp"
  git worktree prune
}
trap cleanup EXIT

for i in 0 1; do
  d=${dirs[$i]}
  mkdir -p "$(dirname "$d")"
  git worktree add --detach "$d" "$commit" >/dev/null 2>&1
  echo "repro-check: build $((i + 1)) of $commit in $d" >&2
  start=$(date +%s)
  (cd "$d" && unset CARGO_TARGET_DIR RUSTFLAGS CFLAGS SOURCE_DATE_EPOCH HSMSIGN_GIT_COMMIT && scripts/package.sh >"$tmp/build$i.log" 2>&1) || {
    tail -30 "$tmp/build$i.log" >&2
    echo "repro-check: build $((i + 1)) failed" >&2
    exit 1
  }
  echo "repro-check: build $((i + 1)) took $(($(date +%s) - start)) s" >&2
done
sum() { sha256sum "$1" | cut -d' ' -f1; }
a=${dirs[0]}
b=${dirs[1]}
bin_a=$(sum "$a/target/dist/hsmsign")
bin_b=$(sum "$b/target/dist/hsmsign")
deb_a=$(ls "$a"/target/debian/hsmsign_*.deb)
deb_b=$(ls "$b"/target/debian/hsmsign_*.deb)
pkg_a=$(sum "$deb_a")
pkg_b=$(sum "$deb_b")
echo "binary  $bin_a  $bin_b"
echo "package $pkg_a  $pkg_b  ($(basename "$deb_a"))"
if [ "$bin_a" = "$bin_b" ] && [ "$pkg_a" = "$pkg_b" ]; then
  echo "repro-check: reproducible: commit $commit gives binary $bin_a and package $pkg_a"
  exit 0
fi
echo "repro-check: NOT reproducible (compare the two trees with diffoscope, e.g. apt-get install diffoscope-minimal)" >&2
exit 1
