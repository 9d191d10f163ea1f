#!/usr/bin/env bash
# Reproducibility check: build the package twice from the same commit in two different
# directories (fresh git worktrees, each with its own target directory) and compare the SHA-256
# of the binary and of the .deb. Exit 0 only when both match.
# Usage: scripts/repro-check.sh [--reuse] [COMMIT]   (default: HEAD; uncommitted changes are
#        not built)
# --reuse: the first build is the one scripts/package.sh already made in this checkout, which
#          must be clean and at COMMIT (CI: a fresh clone), so only one more build is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
reuse=
if [ "${1:-}" = --reuse ]; then
  reuse=1
  shift
fi
commit=$(git rev-parse --verify "${1:-HEAD}^{commit}")
if [ -n "$reuse" ]; then
  if [ "$(git rev-parse HEAD)" != "$commit" ] || [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "repro-check: --reuse needs a clean checkout at $commit (commit or stash your changes)" >&2
    exit 1
  fi
  if [ ! -f target/dist/hsmsign ] || ! ls target/debian/hsmsign_*.deb >/dev/null 2>&1; then
    echo "repro-check: --reuse needs scripts/package.sh to have run here first" >&2
    exit 1
  fi
fi
tmp=$(mktemp -d /tmp/hsmsign-repro.XXXXXX)
# Different directories, and different depths, so a path that leaks shows up as a difference.
dirs=("$tmp/a" "$tmp/b/deeper/tree")
cleanup() {
  for d in "${dirs[@]}"; do
    case $d in "$tmp"/*) git worktree remove --force "$d" >/dev/null 2>&1 || true ;; esac
  done
  rm -rf "$tmp"
  git worktree prune
}
trap cleanup EXIT

first=0
if [ -n "$reuse" ]; then
  dirs[0]=$(pwd -P)
  first=1
fi
for i in $(seq "$first" 1); do
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
deb_a=$(ls -t "$a"/target/debian/hsmsign_*.deb | head -1)
deb_b=$(ls -t "$b"/target/debian/hsmsign_*.deb | head -1)
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
