#!/bin/bash
# The client's unit tests (`cargo test --lib client`) built for x86_64-pc-windows-gnu and run
# under wine, in a throw-away network namespace with only loopback (the tests use 127.0.0.1):
# the Windows branches (knock.rs's socket, %APPDATA% paths, std's Windows sockets) are exercised.
# Run as root after scripts/ci-deps-windows:  tests/e2e/windows-unit.sh [TEST-FILTER]
#
# Wine 8 (Debian 12) has no bcryptprimitives.dll, which Rust's std imports on Windows (ProcessPrng,
# used by HashMap's random keys; libtest needs it, latchkey.exe itself does not, see
# scripts/build-windows): a 20-line stand-in built with MinGW is put next to the test exe. It is
# test-only and never shipped. Wine's sockets live in the wineserver's namespace: a wineserver is
# started inside the namespace and stopped on exit.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-win}
WINE=${WINE:-/usr/lib/wine/wine64}
WINESERVER=${WINESERVER:-/usr/lib/wine/wineserver}
WINE_DIR=${LATCHKEY_WINE_DIR:-/tmp/latchkey-wine}
T=x86_64-pc-windows-gnu
export WINEPREFIX=$WINE_DIR/prefix TMPDIR=$WINE_DIR/tmp WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY
mkdir -p "$WINEPREFIX" "$TMPDIR"
# One run at a time per wine prefix (tests/e2e/windows.sh takes the same lock).
exec 9>"$WINE_DIR/.lock"
flock -w 300 9 || { echo "FAIL: another run holds $WINE_DIR/.lock"; exit 1; }

wine_stop() {
    t=50
    while [ "$t" -gt 0 ] && "$WINESERVER" -k 2>/dev/null; do sleep 0.1; t=$((t - 1)); done
}
trap wine_stop EXIT

TEST_EXE=$(cargo test -q --no-run --locked --lib --target "$T" --message-format=json |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -f "$TEST_EXE" ] || { echo "FAIL windows-unit: no test executable built"; exit 1; }

DIR=$(dirname "$TEST_EXE")
if [ ! -f "$DIR/bcryptprimitives.dll" ]; then
    cat >"$DIR/bcryptprimitives-stub.c" <<'C'
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID, ULONG); /* RtlGenRandom, advapi32 */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
C
    x86_64-w64-mingw32-gcc -shared -O2 -s -o "$DIR/bcryptprimitives.dll" \
        "$DIR/bcryptprimitives-stub.c" -ladvapi32 || exit 1
fi

wine_stop
OUT=$(mktemp /tmp/latchkey-windows-unit.XXXXXX)
# shellcheck disable=SC2016 # expanded by the inner shell
unshare -n sh -c 'ip link set lo up &&
    "$0" -p </dev/null >/dev/null 2>&1 9>&- &&
    timeout 120 "$1" "$2" "$3" --test-threads=2 </dev/null' \
    "$WINESERVER" "$WINE" "$TEST_EXE" "${1:-client}" >"$OUT" 2>&1
rc=$?
grep -E '^test |^test result|panicked|FAILED' "$OUT"
rm -f "$OUT"
if [ $rc = 0 ]; then echo "ok   windows-unit: the client's unit tests pass under wine"
else echo "FAIL windows-unit: exit $rc"; fi
exit $rc
