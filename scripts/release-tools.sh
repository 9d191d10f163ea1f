#!/usr/bin/env bash
# Install the release tools at pinned versions (only what is missing): cargo-deb (the .deb),
# cargo-cyclonedx (the SBOM), cargo-deny (the dependency policy), dpkg-dev (dpkg-shlibdeps for
# the package's dependencies), and the minimum Rust toolchain (Cargo.toml's rust-version).
# Built from crates.io with `cargo install --locked`: the tools' own lock files, so the same
# versions of everything every time. Cold on a 2-core machine this takes minutes (docs/release.md).
set -euo pipefail
cd "$(dirname "$0")/.."

# name version (bump deliberately; docs/release.md records what was measured with these)
tools=(
  "cargo-deb 3.8.0"
  "cargo-cyclonedx 0.5.9"
  "cargo-deny 0.20.2"
)
for t in "${tools[@]}"; do
  read -r name version <<<"$t"
  sub=${name#cargo-}
  have=$(cargo "$sub" --version 2>/dev/null | grep -o '[0-9]\+\.[0-9]\+\.[0-9]\+' | head -1 || true)
  if [ "$have" != "$version" ]; then
    echo "release-tools: installing $name $version (have: ${have:-none})" >&2
    cargo install --locked --quiet "$name@$version"
  fi
done

need=()
command -v dpkg-shlibdeps >/dev/null 2>&1 || need+=(dpkg-dev)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "release-tools: installing ${need[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
if ! rustup run "$msrv" rustc --version >/dev/null 2>&1; then
  echo "release-tools: installing Rust $msrv (the declared minimum)" >&2
  rustup toolchain install "$msrv" --profile minimal >/dev/null
fi
