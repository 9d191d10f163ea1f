#!/usr/bin/env bash
# The release checks CI runs after the tests (.ci/run): the tools, the package and its install
# test, the reproducibility check, the SBOM, the dependency policy, the build without default
# features, and the minimum Rust version. Prints how long each part took.
# Run as root on a Debian machine (the install test uses dpkg -i).
set -euo pipefail
cd "$(dirname "$0")/.."

timings=()
step() {
  local name=$1
  shift
  local start
  start=$(date +%s)
  echo "== release-checks: $name" >&2
  "$@"
  timings+=("$(printf '%-28s %5d s' "$name" $(($(date +%s) - start)))")
}

step "tools" scripts/release-tools.sh
step "package (build + SBOM)" scripts/package.sh
step "package install test" scripts/test-package.sh
# The package above, from this fresh clone, is the first of the two builds compared.
step "reproducible build" scripts/repro-check.sh --reuse
step "dependency policy" cargo deny --frozen check licenses bans sources
step "no default features" cargo build --locked --no-default-features
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
# Its own target directory: another compiler's artifacts would force rebuilds of the main one.
step "minimum Rust $msrv" env CARGO_TARGET_DIR=target/msrv cargo "+$msrv" check --locked --all-targets

echo "release-checks: timings" >&2
printf '  %s\n' "${timings[@]}" >&2
echo "release-checks: all passed"
