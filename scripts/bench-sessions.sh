#!/usr/bin/env bash
# Parallel signing sessions benchmark (see docs/benchmarks.md, "Parallel signing sessions").
#
#   scripts/bench-sessions.sh
#
# On a throwaway SoftHSM2 token with a P-256 key, for each row (a) SoftHSM2 itself, (b) the
# network-HSM stand-in (tools/stand-in-hsm) adding a delay to each C_Sign, (c) p11-kit's client
# module talking to `p11-kit server` (the token in another process) and each session count:
#   raw/s      the token's own rate: C_Sign in a tight loop on that many sessions at once
#   objects/s  `archive sign` of the same export with that many sessions (release build of
#              examples/bench_archive.rs, timed from the logged-in key to the committed output)
#   peak       the signing process's peak RSS (/usr/bin/time -v, else VmHWM)
# Then peak RSS at BENCH_RSS_OBJECTS objects for zip and tar.gz, and JS7's documented way: one
# `openssl dgst -engine pkcs11 -sign` process per file through libp11's engine, on the same token.
#
# Settings (environment):
#   BENCH_OBJECTS        objects in the export, default 10000
#   BENCH_SIZE           MIN:MAX object bytes, default 1024:20480
#   BENCH_FORMAT         zip or tar.gz for the session rows, default zip
#   BENCH_SESSIONS       default "1 2 4 8 16"
#   BENCH_ROWS           default "softhsm standin p11kit"
#   BENCH_DELAY_US       the stand-in's C_Sign delay, default 5000 (5 ms)
#   BENCH_RAW_COUNT      signatures per raw measurement, default BENCH_OBJECTS (the stand-in row
#                        uses at most 2000: at 5 ms a signature it measures the same rate)
#   BENCH_RSS_OBJECTS    objects for the memory run, default 40000 (0 skips it)
#   BENCH_RSS_SESSIONS   default "1 16"
#   BENCH_ENGINE_N       files for the openssl engine baseline, default 200 (0 skips it)
#   BENCH_KEEP=1         keep the work directory
set -euo pipefail
cd "$(dirname "$0")/.."
objects=${BENCH_OBJECTS:-10000}
size=${BENCH_SIZE:-1024:20480}
format=${BENCH_FORMAT:-zip}
sessions_list=${BENCH_SESSIONS:-"1 2 4 8 16"}
rows=${BENCH_ROWS:-"softhsm standin p11kit"}
delay=${BENCH_DELAY_US:-5000}
raw_count=${BENCH_RAW_COUNT:-$objects}
rss_objects=${BENCH_RSS_OBJECTS:-40000}
rss_sessions=${BENCH_RSS_SESSIONS:-"1 16"}
engine_n=${BENCH_ENGINE_N:-200}

cargo build --release --locked --quiet --bin hsmsign --example bench_archive
hsmsign=$PWD/target/release/hsmsign
bench=$PWD/target/release/examples/bench_archive
standin_src=$PWD/tools/stand-in-hsm/stand-in-hsm.c

first() { for f in "$@"; do [ -e "$f" ] && { echo "$f"; return; }; done; }
softhsm=$(first /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so)
p11kit_client=$(first /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so \
  /usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so /usr/lib/pkcs11/p11-kit-client.so)
engine=$(first /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so \
  /usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so /usr/lib/engines-3/pkcs11.so)

work=$(mktemp -d "${TMPDIR:-/tmp}/hsmsign-bench-sessions.XXXXXX")
server_pid=
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  [ "${BENCH_KEEP:-}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
eval "$(softhsm-config/new-token-dir.sh "$work/softhsm")"
cd "$work"
umask 077
# Throwaway PINs for a throwaway token.
head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > so-pin
head -c 6 /dev/urandom | od -An -tu1 | tr -d ' \n' | cut -c1-8 > pin
export HSMSIGN_PIN_SOURCE=file:$work/pin
export HSMSIGN_MODULE=$softhsm
key="pkcs11:token=Bench;object=signing"
"$hsmsign" token init --label Bench --so-pin-source "file:$work/so-pin" >/dev/null
"$hsmsign" key generate --key "$key" --algorithm ec-p256 >/dev/null
"$hsmsign" key public --key "$key" --out pub.pem >/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -subj "/CN=Bench CA" -days 2 -out ca.pem 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' > signer.ext
openssl x509 -new -force_pubkey pub.pem -subj "/CN=Bench Signer" -CA ca.pem -CAkey ca.key \
  -days 2 -extfile signer.ext -outform DER -out signer.der 2>/dev/null

# The stand-in, built here (test support, never installed).
gcc -shared -fPIC -O2 -I/usr/include/p11-kit-1 -o stand-in-hsm.so "$standin_src" -ldl

# p11-kit server exporting the token from another process.
if [[ " $rows " == *" p11kit "* ]]; then
  p11-kit server -f -n "$work/p11.sock" --provider "$softhsm" "pkcs11:token=Bench" \
    >p11kit.log 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do [ -S "$work/p11.sock" ] && break; sleep 0.1; done
  [ -S "$work/p11.sock" ] || { echo "p11-kit server did not start:" >&2; cat p11kit.log >&2; exit 1; }
fi

row_env() {
  case $1 in
    softhsm) echo "HSMSIGN_MODULE=$softhsm" ;;
    standin) echo "HSMSIGN_MODULE=$work/stand-in-hsm.so STANDIN_MODULE=$softhsm STANDIN_SIGN_DELAY_US=$delay" ;;
    p11kit) echo "HSMSIGN_MODULE=$p11kit_client P11_KIT_SERVER_ADDRESS=unix:path=$work/p11.sock" ;;
  esac
}
row_name() {
  case $1 in
    softhsm) echo "SoftHSM2" ;;
    standin) echo "stand-in $((delay / 1000)).$(( (delay % 1000) / 100 )) ms" ;;
    p11kit) echo "p11-kit c/s" ;;
  esac
}
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
timed() {
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v -o time.txt "$@"
    echo " time_max_rss_kib=$(sed -n 's/.*Maximum resident set size (kbytes): //p' time.txt)"
  else
    "$@"
    echo
  fi
}
peak() { local r; r=$(field "$1" time_max_rss_kib); echo "${r:-$(field "$1" peak_rss_kib)}"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg), $(uname -m)"
echo "softhsm: $(softhsm2-util --version 2>/dev/null || echo '?'); p11-kit: $(dpkg-query -W -f '${Version}' p11-kit 2>/dev/null || echo '?'); openssl: $(openssl version)"
IFS=: read -r min max <<<"$size"
gen=$("$bench" generate --out "export.$format" --objects "$objects" --min-size "$min" --max-size "$max")
echo "export: $objects objects, $(field "$gen" json_bytes) bytes of JSON, $format, P-256, SHA256withECDSA"
echo
printf '%-16s %8s %9s %9s %7s %9s %9s\n' row sessions objects/s raw/s ratio speedup peak_MiB
for row in $rows; do
  renv=$(row_env "$row")
  count=$raw_count
  [ "$row" = standin ] && [ "$count" -gt 2000 ] && count=2000
  base=
  for n in $sessions_list; do
    # shellcheck disable=SC2086 # the row's settings are words
    raw=$(env $renv "$bench" raw --key "$key" --pin-file pin --count "$count" --sessions "$n")
    rm -f "signed.$format"
    # shellcheck disable=SC2086
    out=$(timed env $renv "$bench" sign --key "$key" --pin-file pin --cert signer.der \
      --in "export.$format" --out "signed.$format" --sessions "$n")
    ops=$(field "$out" objects_per_s)
    base=${base:-$ops}
    awk -v row="$(row_name "$row")" -v n="$n" -v ops="$ops" -v raw="$(field "$raw" raw_per_s)" \
      -v base="$base" -v rss="$(peak "$out")" \
      'BEGIN { printf "%-16s %8d %9.0f %9.0f %6.0f%% %8.2fx %9.1f\n", row, n, ops, raw, 100*ops/raw, ops/base, rss/1024 }'
  done
done
rm -f "signed.$format"
echo "raw/s: C_Sign alone on that many sessions at once; ratio = objects/s over raw/s;"
echo "speedup = objects/s over the same row's one-session objects/s."

if [ "$rss_objects" -gt 0 ]; then
  echo
  echo "peak RSS at $rss_objects objects (1-4 KB each), SoftHSM2:"
  for fmt in zip tar.gz; do
    "$bench" generate --out "big.$fmt" --objects "$rss_objects" --min-size 1024 --max-size 4096 >/dev/null
    for n in $rss_sessions; do
      rm -f "big-signed.$fmt"
      out=$(timed "$bench" sign --key "$key" --pin-file pin --cert signer.der \
        --in "big.$fmt" --out "big-signed.$fmt" --sessions "$n")
      awk -v fmt="$fmt" -v n="$n" -v ops="$(field "$out" objects_per_s)" -v rss="$(peak "$out")" \
        'BEGIN { printf "  %-7s sessions %-3d %7.0f objects/s  peak %6.1f MiB\n", fmt, n, ops, rss/1024 }'
    done
    rm -f "big.$fmt" "big-signed.$fmt"
  done
fi

echo
if [ "$engine_n" -eq 0 ]; then
  exit 0
fi
if [ -z "$engine" ]; then
  echo "openssl engine baseline: skipped, libp11's engine (libengine-pkcs11-openssl) is not installed"
  exit 0
fi
# JS7's documented way: one openssl process per file, the key on the token through libp11's
# engine. The PIN goes in the key URI: a throwaway PIN of a throwaway token.
mkdir engine
cd engine
"$bench" generate --out files.tar.gz --objects "$engine_n" --min-size "$min" --max-size "$max" >/dev/null
tar xzf files.tar.gz
mapfile -t files < <(find . -name '*.workflow.json' -o -name '*.jobresource.json')
engine_run() {
  local module=$1
  cat > openssl.cnf <<EOF
openssl_conf = init
[init]
engines = engines
[engines]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $engine
MODULE_PATH = $module
init = 0
EOF
  local uri="pkcs11:token=Bench;object=signing;type=private;pin-value=$(cat ../pin)"
  local start end
  start=$(date +%s.%N)
  for f in "${files[@]}"; do
    OPENSSL_CONF=$PWD/openssl.cnf openssl dgst -sha256 -engine pkcs11 -keyform engine \
      -sign "$uri" "$f" 2>/dev/null | base64 -w0 > "$f.sig"
  done
  end=$(date +%s.%N)
  # Each signature is checked, so a failing engine cannot pass for a fast one.
  openssl dgst -sha256 -verify ../pub.pem -signature <(base64 -d "${files[0]}.sig") "${files[0]}" >/dev/null
  awk -v n="${#files[@]}" -v a="$start" -v b="$end" -v what="$2" 'BEGIN {
    r = n / (b - a)
    printf "openssl engine, one process per file, %s: %d files in %.2f s = %.1f files/s; 10,000 files ~ %.0f s\n",
           what, n, b - a, r, 10000 / r }'
}
engine_run "$softhsm" "SoftHSM2"
STANDIN_MODULE=$softhsm STANDIN_SIGN_DELAY_US=$delay engine_run "$work/stand-in-hsm.so" "stand-in $((delay / 1000)) ms"
