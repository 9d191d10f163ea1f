#!/usr/bin/env bash
# Build the Debian package of hsmsign for an air-gapped appliance, reproducibly:
#   target/dist/hsmsign                 the binary (stripped; byte for byte the one in the .deb)
#   target/debian/hsmsign_<ver>_<arch>.deb
#   target/package-assets/              man pages, completions and the CycloneDX SBOM it ships
# Two runs from the same commit in different directories give the same SHA-256 for the binary
# and the .deb (scripts/repro-check.sh; docs/release.md). Needs cargo-deb and cargo-cyclonedx
# at the versions scripts/release-tools.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)

# Time: every timestamp (the .deb's file dates, the SBOM's) is the commit's, not the clock's.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
# Paths: the checkout and the cargo home must not appear in the binary (panic locations and
# debug strings would otherwise name this build's directory).
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
export RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$root=/build/hsmsign --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$rustup_home=/rustup"
# The same for the C parts (SQLite, ring's assembly glue): their __FILE__ strings.
export CFLAGS="${CFLAGS:-} -ffile-prefix-map=$root=/build/hsmsign -ffile-prefix-map=$cargo_home=/cargo"
# The commit for --version (build.rs): also right in a checkout without .git metadata.
if [ -z "${HSMSIGN_GIT_COMMIT:-}" ]; then
  HSMSIGN_GIT_COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
fi
export HSMSIGN_GIT_COMMIT
export CARGO_TARGET_DIR="$root/target"

cargo build --locked --profile dist --bin hsmsign

assets=target/package-assets
rm -rf "$assets"
mkdir -p "$assets"
target/dist/hsmsign __generate-docs "$assets"

# The SBOM: every crate in the dependency tree of the packaged build with its version, license
# and checksum. cargo-cyclonedx writes a random serial number and the current time: the serial
# is dropped and the time replaced by the commit's, so the SBOM is reproducible too.
rm -f hsmsign.cdx.json
cargo cyclonedx --format json --spec-version 1.5 --target "$(rustc -vV | sed -n 's/^host: //p')" >/dev/null
# The references of the crate and of its path dependencies (vendor/cryptoki) name the checkout's
# path: mapped to /build/hsmsign as in the binary.
python3 - "$SOURCE_DATE_EPOCH" hsmsign.cdx.json "$assets/hsmsign.cdx.json" "$root" <<'PY'
import datetime, json, sys
epoch, src, dst, root = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
with open(src) as f:
    text = f.read()
bom = json.loads(text.replace("path+file://" + root, "path+file:///build/hsmsign"))
if root in json.dumps(bom):
    sys.exit(f"package: the SBOM still names the checkout {root}")
bom.pop("serialNumber", None)
meta = bom.setdefault("metadata", {})
meta["timestamp"] = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
with open(dst, "w") as f:
    json.dump(bom, f, indent=2, sort_keys=True)
    f.write("\n")
PY
rm -f hsmsign.cdx.json

cargo deb --locked --no-build --no-strip --profile dist
deb=$(ls -t target/debian/hsmsign_*.deb | head -1)
echo "binary: $(sha256sum target/dist/hsmsign)"
echo "package: $(sha256sum "$deb")"
