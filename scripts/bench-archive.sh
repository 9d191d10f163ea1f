#!/usr/bin/env bash
# Archive-signing benchmark on a throwaway SoftHSM2 token (see docs/benchmarks.md).
#
#   scripts/bench-archive.sh
#
# For each size: generate a synthetic JS7 export (zip and tar.gz), measure the token's raw
# signing rate for the same number of digests on one session, sign the archive, and report
# objects/s, the ratio to the raw rate and the peak RSS of the signing process. Each step runs
# in its own process, so each peak RSS belongs to that step alone. Then the baseline users have
# today: one `openssl dgst -sha256 -sign` process per file through a key file.
#
# Settings (environment):
#   BENCH_SIZES      objects per run, "COUNT[:MIN_BYTES:MAX_BYTES]" separated by spaces;
#                    default "10000:1024:20480 100000:1024:4096"
#   BENCH_FORMATS    default "zip tar.gz"
#   BENCH_OPENSSL_N  files for the openssl baseline, default 200
#   BENCH_KEEP=1     keep the work directory
# Everything is generated under a fresh temp directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${BENCH_SIZES:-"10000:1024:20480 100000:1024:4096"}
formats=${BENCH_FORMATS:-"zip tar.gz"}
openssl_n=${BENCH_OPENSSL_N:-200}

cargo build --release --locked --quiet --bin hsmsign --example bench_archive
hsmsign=$PWD/target/release/hsmsign
bench=$PWD/target/release/examples/bench_archive

work=$(mktemp -d "${TMPDIR:-/tmp}/hsmsign-bench.XXXXXX")
[ "${BENCH_KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
eval "$(softhsm-config/new-token-dir.sh "$work/softhsm")"
cd "$work"
umask 077
# Throwaway PINs for a throwaway token.
head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > so-pin
head -c 6 /dev/urandom | od -An -tu1 | tr -d ' \n' | cut -c1-8 > pin
export HSMSIGN_PIN_SOURCE=file:$work/pin
key="pkcs11:token=Bench;object=signing"
"$hsmsign" token init --label Bench --so-pin-source "file:$work/so-pin" >/dev/null
"$hsmsign" key generate --key "$key" --algorithm ec-p256 >/dev/null
"$hsmsign" key public --key "$key" --out pub.pem >/dev/null

# A signer certificate for the token key, from a throwaway openssl CA.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -subj "/CN=Bench CA" -days 2 -out ca.pem 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' > signer.ext
openssl x509 -new -force_pubkey pub.pem -subj "/CN=Bench Signer" -CA ca.pem -CAkey ca.key \
  -days 2 -extfile signer.ext -outform DER -out signer.der 2>/dev/null

field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
# Peak RSS as the kernel reports it to /usr/bin/time, when installed (VmHWM otherwise).
timed() {
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v -o time.txt "$@"
    echo " time_max_rss_kib=$(sed -n 's/.*Maximum resident set size (kbytes): //p' time.txt)"
  else
    "$@"
    echo
  fi
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(uname -m)"
echo "softhsm: $(softhsm2-util --version 2>/dev/null || echo '?'); openssl: $(openssl version)"
echo
printf '%-8s %-7s %8s %9s %7s %9s %9s %8s %9s %9s %6s %9s\n' objects format json_MB avg_KB sign_s \
  objects/s raw/s verify/s raw+ver/s ratio ratio2 peak_MiB
for spec in $sizes; do
  IFS=: read -r n min max <<<"$spec"
  min=${min:-1024}
  max=${max:-20480}
  raw=$("$bench" raw --key "$key" --pin-file pin --count "$n")
  for fmt in $formats; do
    gen=$("$bench" generate --out "export-$n.$fmt" --objects "$n" --min-size "$min" --max-size "$max")
    out=$(timed "$bench" sign --key "$key" --pin-file pin --cert signer.der \
      --in "export-$n.$fmt" --out "signed-$n.$fmt")
    rss=$(field "$out" time_max_rss_kib)
    rss=${rss:-$(field "$out" peak_rss_kib)}
    awk -v n="$n" -v fmt="$fmt" -v bytes="$(field "$gen" json_bytes)" \
      -v avg="$(field "$gen" avg_object)" -v s="$(field "$out" sign_s)" \
      -v ops="$(field "$out" objects_per_s)" -v raw="$(field "$raw" raw_per_s)" \
      -v ver="$(field "$raw" verify_per_s)" -v sv="$(field "$raw" sign_verify_per_s)" -v rss="$rss" \
      'BEGIN { printf "%-8d %-7s %8.0f %9.1f %7.2f %9.0f %9.0f %8.0f %9.0f %8.0f%% %5.0f%% %9.1f\n",
                      n, fmt, bytes/1e6, avg/1024, s, ops, raw, ver, sv, 100*ops/raw, 100*ops/sv, rss/1024 }'
    rm -f "export-$n.$fmt" "signed-$n.$fmt"
  done
done
echo "ratio = objects/s over raw/s (bare C_Sign); ratio2 = over raw+ver/s (C_Sign + the software"
echo "verification that every signature gets). Peak: maximum RSS of the signing process."

# The baseline: one openssl process per file with the key in a file (JS7's documented way).
echo
mkdir baseline
cd baseline
"$bench" generate --out files.tar.gz --objects "$openssl_n" >/dev/null
tar xzf files.tar.gz
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ../file.key 2>/dev/null
mapfile -t files < <(find . -name '*.workflow.json' -o -name '*.jobresource.json')
start=$(date +%s.%N)
for f in "${files[@]}"; do
  openssl dgst -sha256 -sign ../file.key "$f" | base64 -w0 > "$f.sig"
done
end=$(date +%s.%N)
awk -v n="${#files[@]}" -v a="$start" -v b="$end" 'BEGIN {
  r = n / (b - a)
  printf "openssl baseline: %d files in %.2f s = %.0f files/s; 10,000 files ~ %.0f s, 100,000 ~ %.0f s\n",
         n, b - a, r, 10000 / r, 100000 / r }'
