#!/usr/bin/env bash
# Runs a command while a private pcscd shows an emulated PIV card in its reader
# "Virtual PCD 00 00" (or "NAME 00 00" with --reader-name NAME), then stops both.
#
#   run-with-pcscd.sh [--share-net] [--emulator PATH] [--keep-logs DIR] [--reader-name NAME]
#                     -- COMMAND [ARGS...]
#
# Needs root and the Debian packages pcscd, vsmartcard-vpcd and iproute2. Touches nothing
# of the system's configuration: everything runs in a private mount namespace (pcscd's
# socket directory /run/pcscd is a fresh tmpfs there, so a system pcscd is neither seen nor
# disturbed) and, unless --share-net, a private network namespace with only loopback (the
# vpcd driver listens on all addresses of ports 35963 and 35964; there, that is loopback of
# an otherwise empty network). --share-net keeps the host network, for commands that need
# it (for example a cargo that still has to download); vpcd's ports are then open on the
# host's addresses while the command runs, and must be free.
#
# --reader-name sets the FRIENDLYNAME of the private reader configuration, from which pcscd
# names the reader: for clients that filter readers by name (Yubico's ykcs11 lists only readers
# whose name starts with "Yubico", so --reader-name "Yubico Virtual PCD").
#
# The command's exit status is the script's. Logs of pcscd and the emulator go to a
# temporary directory that is removed at the end, unless --keep-logs names one to copy
# them into; they are printed when the setup fails.
#
# Environment: PIV_EMULATOR_TRACE=1 makes the emulator log every APDU.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
emulator="$here/target/release/piv-emulator"
share_net=0
keep_logs=""
reader_name="Virtual PCD"

usage() {
    echo "usage: $0 [--share-net] [--emulator PATH] [--keep-logs DIR] [--reader-name NAME] -- COMMAND [ARGS...]" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --share-net) share_net=1; shift ;;
        --emulator) [ $# -ge 2 ] || usage; emulator="$2"; shift 2 ;;
        --keep-logs) [ $# -ge 2 ] || usage; keep_logs="$2"; shift 2 ;;
        --reader-name) [ $# -ge 2 ] || usage; reader_name="$2"; shift 2 ;;
        --) shift; break ;;
        -h|--help) usage ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || usage
case "$reader_name" in
    ""|*[!A-Za-z0-9\ ._-]*)
        echo "$0: --reader-name \"$reader_name\": use letters, digits, blanks, dots, dashes or underscores" >&2
        exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
    echo "$0: needs root (for private mount and network namespaces); run it with sudo" >&2
    exit 2
fi
for tool in pcscd unshare; do
    command -v "$tool" >/dev/null || {
        echo "$0: $tool not found; install the Debian packages pcscd vsmartcard-vpcd" >&2
        exit 2
    }
done
driver=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
[ -e "$driver" ] || { echo "$0: $driver not found; install vsmartcard-vpcd" >&2; exit 2; }
[ -x "$emulator" ] || {
    echo "$0: $emulator not found; build it: (cd $here && cargo build --release)" >&2
    exit 2
}
emulator="$(cd "$(dirname "$emulator")" && pwd)/$(basename "$emulator")"

# First pass: re-run this script inside new namespaces.
if [ "${PIV_EMULATOR_IN_NAMESPACE:-}" != 1 ]; then
    flags=(--mount --propagation private)
    if [ "$share_net" = 0 ]; then
        flags+=(--net)
        command -v ip >/dev/null || { echo "$0: ip not found; install iproute2" >&2; exit 2; }
    fi
    mkdir -p /run/pcscd
    args=(--emulator "$emulator")
    [ "$share_net" = 1 ] && args+=(--share-net)
    [ -n "$keep_logs" ] && args+=(--keep-logs "$keep_logs")
    args+=(--reader-name "$reader_name")
    PIV_EMULATOR_IN_NAMESPACE=1 exec unshare "${flags[@]}" "$0" "${args[@]}" -- "$@"
fi

# Second pass: inside the namespaces.
mount -t tmpfs -o mode=0755 tmpfs /run/pcscd
[ "$share_net" = 1 ] || ip link set lo up

work="$(mktemp -d)"
pcscd_pid=""
emulator_pid=""
command_pid=""

stop() {
    local status=$?
    trap - EXIT INT TERM
    [ -n "$command_pid" ] && kill "$command_pid" 2>/dev/null || true
    [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null || true
    [ -n "$pcscd_pid" ] && kill "$pcscd_pid" 2>/dev/null || true
    [ -n "$emulator_pid" ] && wait "$emulator_pid" 2>/dev/null || true
    [ -n "$pcscd_pid" ] && wait "$pcscd_pid" 2>/dev/null || true
    if [ -n "$keep_logs" ]; then
        mkdir -p "$keep_logs" && cp "$work"/*.log "$keep_logs"/ 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

setup_failed() {
    echo "$0: $1" >&2
    for log in "$work"/pcscd.log "$work"/emulator.log; do
        [ -s "$log" ] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }
    done
    exit 1
}

mkdir "$work/reader.conf.d"
cat >"$work/reader.conf.d/vpcd" <<EOF
FRIENDLYNAME "$reader_name"
DEVICENAME   /dev/null:0x8C7B
LIBPATH      $driver
CHANNELID    0x8C7B
EOF

pcscd --foreground --info --config "$work/reader.conf.d" >"$work/pcscd.log" 2>&1 &
pcscd_pid=$!
"$emulator" --wait 20 >"$work/emulator.log" 2>&1 &
emulator_pid=$!

# Ready when pcscd has powered the card and read its ATR (it logs "Card ATR").
for _ in $(seq 200); do
    grep -q "Card ATR" "$work/pcscd.log" && break
    kill -0 "$pcscd_pid" 2>/dev/null || setup_failed "pcscd stopped"
    kill -0 "$emulator_pid" 2>/dev/null || setup_failed "the emulator stopped"
    sleep 0.1
done
grep -q "Card ATR" "$work/pcscd.log" || setup_failed "no card in the virtual reader after 20 s"

unset PIV_EMULATOR_IN_NAMESPACE
# In the background, so that INT or TERM reach the traps at once (bash runs traps only
# after a foreground command ends); stdin is passed on explicitly.
"$@" <&0 &
command_pid=$!
set +e
wait "$command_pid"
status=$?
set -e
command_pid=""
exit "$status"
