#!/bin/bash
# End-to-end test of the Windows client, latchkey.exe, run under wine in a client network
# namespace against Debian's knockd and `latchkey daemon` (the Linux build) in a server namespace.
# Run as root (network namespaces), after scripts/build-windows and a Linux `cargo build --release`:
#
#   tests/e2e/windows.sh                      # EXE=..., LATCHKEY=... override the binaries
#   E2E_SERVERS=knockd tests/e2e/windows.sh   # one server only; E2E_KEEP=1 keeps $WORK
#
# Shown for each server, in a server namespace that drops the knock ports (7000-7069) silently,
# refuses 7070-7079 with a TCP reset, and refuses the protected ports until a door opens one:
#   - doors open over TCP (with -d 300), UDP (-u), a mixed sequence over IPv6, to knock ports that
#     answer with a reset, to a host name (with -4), and from a saved host in %APPDATA%;
#   - from the server-side capture: each TCP knock is exactly one SYN and nothing else (no
#     retransmission, no RST, no FIN, also 1.5 s after the last knock), each UDP knock one
#     datagram holding one zero byte, knocks in order, and the -d / Delay gaps kept;
#   - --check exits 0 when the door opens and 1 when it stays closed (3 tries, 3 SYNs per port);
#   - the control: a blocking connect to a dropped port retransmits, and the same checker says so.
# Against Debian's fwknopd: keys from latchkey.exe keygen, --spa with keys on the command line,
# -n NAME from %USERPROFILE%\.fwknoprc; fwknopd's real iptables rules and a real connect.
# Client-only: --help/--version without the daemon, the `knock.exe` personality, -F with a
# Windows path, the default saved-hosts path under %APPDATA%, errors with exit status 2.
#
# Wine's sockets are created by the wineserver, in the wineserver's network namespace, not the
# caller's: the test stops any wineserver of its prefix before and after, so the first wine
# process, started inside the client namespace, starts a new one there (and checks it did).

. "$(dirname "$0")/lib.sh"

# One run at a time per wine prefix (and per namespace name): a second run waits here rather
# than stopping the first one's wineserver.
WINE_DIR=${LATCHKEY_WINE_DIR:-/tmp/latchkey-wine}
mkdir -p "$WINE_DIR"
exec 9>"$WINE_DIR/.lock"
flock -w 300 9 || { echo "FAIL: another run holds $WINE_DIR/.lock"; exit 1; }

EXE=${EXE:-$E2E_ROOT/target-win/x86_64-pc-windows-gnu/release/latchkey.exe}
WINE=${WINE:-/usr/lib/wine/wine64}
WINESERVER=${WINESERVER:-/usr/lib/wine/wineserver}
# The prefix (~700 MB, made on first use in 5-10 s) is kept between runs in $WINE_DIR, outside
# the repo.

e2e_setup win
wine_env() {
    env -u DISPLAY WINEPREFIX="$WINE_DIR/prefix" TMPDIR="$WINE_DIR/tmp" WINEDEBUG=-all \
        WINEDLLOVERRIDES="mscoree,mshtml=" "$@"
}
# wine_stop: kills the prefix's wineserver (and with it every wine process of the prefix), in
# whatever namespace it runs; `wineserver -k` fails once there is none left.
wine_stop() {
    t=50
    while [ "$t" -gt 0 ] && wine_env "$WINESERVER" -k 2>/dev/null; do sleep 0.1; t=$((t - 1)); done
}
mkdir -p "/etc/netns/$CLI" "$WINE_DIR/tmp"
printf '192.0.2.1 door.test\n2001:db8::1 door.test\n' >"/etc/netns/$CLI/hosts"
trap 'rc=$?; wine_stop; rm -rf "$WINE_DIR"/prefix/drive_c/users/*/AppData/Roaming/latchkey; rm -rf "/etc/netns/$CLI"; rmdir /etc/netns 2>/dev/null; (exit $rc); e2e_cleanup' EXIT
wine_stop

[ -f "$EXE" ] || { e2e_fail "no exe at $EXE (scripts/build-windows, or set EXE)"; exit 1; }
[ -x "$WINE" ] || { e2e_fail "no wine at $WINE (scripts/ci-deps-windows)"; exit 1; }
cp "$EXE" "$WORK/latchkey.exe"
cp "$EXE" "$WORK/knock.exe"

# win ARGS...: latchkey.exe ARGS under wine in the client namespace (knock.exe: WIN_EXE=knock).
win() { in_cli env -C "$WORK" -u DISPLAY WINEPREFIX="$WINE_DIR/prefix" TMPDIR="$WINE_DIR/tmp" \
    WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" "$WINE" "$WORK/${WIN_EXE:-latchkey}.exe" "$@"; }
knock() { win knock "$@"; }

# A persistent wineserver, started here in the client namespace; every wine process uses it.
# (It finds its socket directory through the prefix's inode: the directory must exist first.)
mkdir -p "$WINE_DIR/prefix"
in_cli env -u DISPLAY WINEPREFIX="$WINE_DIR/prefix" TMPDIR="$WINE_DIR/tmp" "$WINESERVER" -p \
    </dev/null >/dev/null 2>&1 9>&-
server_in_cli() {
    for p in $(pgrep -x wineserver64; pgrep -x wineserver); do
        [ "$(ip netns identify "$p" 2>/dev/null)" = "$CLI" ] && return 0
    done
    return 1
}
if wait_for 5 server_in_cli; then e2e_pass "the wineserver runs in the client namespace"
else
    e2e_fail "no wineserver in $CLI: knocks would leave from another namespace; stopping"
    exit 1
fi
# The first wine process creates the prefix when there is none (inside the namespace, which
# has no route out: wine's first-run helpers cannot reach anything).
t0=$(date +%s)
out=$(win --version 2>"$WORK/wine-first.err" | tr -d '\r')
rc=$?
if [ $rc = 0 ] && echo "$out" | grep -q '^latchkey [0-9]'; then
    e2e_pass "latchkey.exe --version under wine: '$out' ($(($(date +%s) - t0)) s, prefix included)"
else e2e_fail "latchkey.exe --version: rc $rc, '$out' $(tail -3 "$WORK/wine-first.err")"; fi

{
    printf '[options]\n    LogFile = %s/server.log\n' "$WORK"
    port_door tcp 7001,7002,7003 2201
    port_door udp 7011:udp,7012:udp,7013:udp 2202
    port_door six 7031,7032:udp,7033 2204
    port_door check 7041,7042,7043 2205
    port_door name 7051,7052,7053 2206
    port_door saved 7061,7062:udp,7063 2207
    port_door rst 7071,7072,7073 2208
} >"$WORK/doors.conf"

# The saved host, in the default file %APPDATA%\latchkey\knock.conf of the wine prefix (none
# there before the test, none left after it; the path is asked from latchkey.exe itself).
rm -rf "$WINE_DIR"/prefix/drive_c/users/*/AppData/Roaming/latchkey
appdata_conf() {
    win knock --list -v 2>&1 | sed -n 's/.*looked in \([^,]*\),.*/\1/p' | tr -d '\r'
}
CONF_WIN=$(appdata_conf)
case $CONF_WIN in
'C:\'*) CONF_UNIX="$WINE_DIR/prefix/drive_c/$(printf '%s' "${CONF_WIN#C:\\}" | tr '\\' /)" ;;
*) CONF_UNIX="" ;;
esac
if [ -n "$CONF_UNIX" ] && echo "$CONF_WIN" | grep -q 'AppData\\Roaming\\latchkey\\knock.conf$'; then
    e2e_pass "default saved-hosts file: $CONF_WIN"
    mkdir -p "$(dirname "$CONF_UNIX")"
    # Written as PowerShell 5's `>` writes: UTF-16LE with a byte-order mark, CRLF lines.
    { printf '\377\376'; printf '# saved hosts for the wine e2e test\r\nHost home door\r\n    HostName door.test\r\n    Sequence 7061, 7062:udp, 7063\r\n    Delay 100\r\n    Family 4\r\n    Check 2207\r\n' |
        iconv -f UTF-8 -t UTF-16LE; } >"$CONF_UNIX"
else e2e_fail "default saved-hosts path: '$CONF_WIN'"; fi
printf 'Host broken\n    Sequence 7061,99999\n' >"$WORK/broken.conf"

fw_reset() {
    for ipt in iptables ip6tables; do
        in_srv "$ipt" -F INPUT
        in_srv "$ipt" -A INPUT -p tcp --dport 2200:2299 -j REJECT --reject-with tcp-reset
        in_srv "$ipt" -A INPUT -p tcp --dport 7070:7079 -j REJECT --reject-with tcp-reset
        in_srv "$ipt" -A INPUT -p tcp --dport 7000:7999 -j DROP
        in_srv "$ipt" -A INPUT -p udp --dport 7000:7999 -j DROP
    done
}
for p in 2201 2202 2204 2205 2206 2207 2208; do listen_tcp "$p"; done

CLIENT='(src host 192.0.2.2 or src host 2001:db8::2)'
# A TCP SYN without ACK, for IPv4 and IPv6 (no extension headers in these tests).
SYN='((ip and tcp[tcpflags] == tcp-syn) or (ip6 and ip6[6] == 6 and ip6[53] == 2))'

# knock_opens DESCRIPTION PORT ADDR KNOCK-ARGS...: the knock exits 0 and opens PORT for ADDR.
knock_opens() {
    d=$1 port=$2 addr=$3
    shift 3
    knock "$@"
    rc=$?
    if [ $rc = 0 ] && opened "$port" "$addr"; then e2e_pass "$SERVER: $d opens the door"
    else e2e_fail "$SERVER: $d: rc $rc, port $port not open"; fi
}

test_server() {
    SERVER=$1
    fw_reset
    start_capture "$SERVER" || { e2e_fail "$SERVER: tcpdump did not start"; return; }
    start_server "$SERVER" || { e2e_fail "$SERVER: did not start: $(tail -3 "$WORK/$SERVER.out")"; return; }
    if tcp_open "$CLI" 192.0.2.1 2201; then e2e_fail "$SERVER: 2201 open before any knock"; fi

    knock_opens "TCP sequence, -d 300" 2201 192.0.2.1 -d 300 192.0.2.1 7001 7002 7003
    knock_opens "UDP sequence (-u)" 2202 192.0.2.1 -u 192.0.2.1 7011 7012 7013
    knock_opens "IPv6 mixed sequence (-6)" 2204 2001:db8::1 -6 '[2001:db8::1]' 7031 7032:udp 7033
    knock_opens "TCP sequence to ports that reset" 2208 192.0.2.1 192.0.2.1 7071 7072 7073

    if [ "$SERVER" = knockd ]; then
        # Nothing knocks 7045/7046 open: exit 1, after CHECK_ATTEMPTS (3) full sequences.
        knock --check 2205 192.0.2.1 7045 7046 2>"$WORK/check-wrong.err"
        rc=$?
        if [ $rc -eq 1 ]; then e2e_pass "$SERVER: --check exits 1 when the door stays closed"
        else e2e_fail "$SERVER: --check for a closed door exited $rc, want 1"; fi
    fi
    knock --check 2205 192.0.2.1 7041 7042 7043
    rc=$?
    if [ $rc -eq 0 ]; then e2e_pass "$SERVER: --check exits 0 when the door opens"
    else e2e_fail "$SERVER: --check with the right sequence exited $rc, want 0"; fi

    # The name resolves (in the knock.exe process, through /etc/hosts) to both families.
    knock_opens "host name with -4" 2206 192.0.2.1 -4 door.test 7051 7052 7053
    # The saved host from %APPDATA%: Family 4, Delay 100, Check 2207.
    knock home
    SAVED_RC=$?
    if [ "$SAVED_RC" = 0 ]; then e2e_pass "$SERVER: saved host 'home' from %APPDATA% opens the door (Check 2207)"
    else e2e_fail "$SERVER: saved host 'home' exited $SAVED_RC"; fi

    # Longer than Linux's first SYN retransmission timeout (1 s): a leftover socket would show.
    sleep 1.5
    # Control: a blocking connect to a dropped port, which must retransmit.
    timeout 2.5 ip netns exec "$CLI" bash -c 'exec 3<>/dev/tcp/192.0.2.1/7099' 2>/dev/null
    stop_pid "$SERVER_PID"
    stop_pid "$CAPTURE_PID"
    check_wire
}

# one_syn PORT [WANT]: the client sent PORT exactly WANT (1) packets, each a bare SYN.
one_syn() {
    n=$(pkts "$CLIENT and tcp and dst port $1" | wc -l)
    s=$(pkts "$CLIENT and $SYN and dst port $1" | wc -l)
    [ "$n" = "${2:-1}" ] && [ "$s" = "${2:-1}" ] && return 0
    echo "  $SERVER: $1/tcp: $s SYNs in $n packets (want ${2:-1})"
    return 1
}

# gaps FILTER MIN MAX: the client's packets matching FILTER are in port order, and the gaps
# between them (capture time) are all within MIN..MAX ms; sets GAPS for the message.
gaps() {
    times=$(pkts "$CLIENT and ($1)" | awk '{ n = split($5, a, "."); print $1, a[n] }')
    GAPS=$(echo "$times" | awk 'NR > 1 { printf "%d ", ($1 - t) * 1000 } { t = $1 }')
    order=$(echo "$times" | awk '{ printf "%s", $2 }')
    sorted=$(echo "$times" | sort -k2 -n | awk '{ printf "%s", $2 }')
    [ "$order" = "$sorted" ] || { GAPS="$GAPS(out of order: $order)"; return 1; }
    for g in $GAPS; do [ "$g" -ge "$2" ] && [ "$g" -lt "$3" ] || return 1; done
    [ -n "$GAPS" ]
}

check_wire() {
    bad=0
    for port in 7001 7002 7003 7031 7033 7041 7042 7043 7051 7052 7053 7061 7063 7071 7072 7073; do
        one_syn "$port" || bad=1
    done
    if [ "$SERVER" = knockd ]; then
        one_syn 7045 3 || bad=1
        one_syn 7046 3 || bad=1
    fi
    if one_syn 7099 >/dev/null; then ctrl=ok; else ctrl=$(pkts "$CLIENT and $SYN and dst port 7099" | wc -l); fi
    if [ $bad = 0 ] && [ "$ctrl" != ok ] && [ "$ctrl" -ge 2 ]; then
        e2e_pass "$SERVER: each TCP knock was exactly one SYN, nothing else (control: the checker fails a blocking connect, $ctrl SYNs)"
    else e2e_fail "$SERVER: TCP knocks not one SYN each, or the control was not caught ($ctrl)"; fi

    udp=$(pkts "$CLIENT and udp" | wc -l)
    zero=$(pkts "$CLIENT and ((ip and udp[4:2] == 9 and udp[8] == 0) or (ip6 and ip6[6] == 17 and ip6[44:2] == 9 and ip6[48] == 0))" | wc -l)
    if [ "$udp" = 5 ] && [ "$zero" = 5 ]; then e2e_pass "$SERVER: each UDP knock was one datagram holding one zero byte (5/5)"
    else e2e_fail "$SERVER: UDP knocks: $zero of $udp datagrams are one zero byte (want 5 of 5)"; fi

    # -d 300: a TCP knock under wine waits up to 50 ms for an answer (a dropped port: all of it)
    # before the pause starts, so a gap is 300 + 50 + wine's overhead.
    if gaps 'dst port 7001 or dst port 7002 or dst port 7003' 298 450; then
        e2e_pass "$SERVER: -d 300 kept on the wire: gaps ${GAPS}ms, in order"
    else e2e_fail "$SERVER: -d 300 on the wire: gaps '${GAPS}' (want 298..450 ms, in order)"; fi
    if gaps 'portrange 7061-7063' 98 250; then
        e2e_pass "$SERVER: saved Delay 100 kept on the wire: gaps ${GAPS}ms, in order"
    else e2e_fail "$SERVER: saved Delay 100 on the wire: gaps '${GAPS}' (want 98..250 ms)"; fi
    # Without -d: back to back, and in order.
    if gaps 'portrange 7011-7013' 0 150 && gaps 'portrange 7031-7033' 0 150; then
        e2e_pass "$SERVER: without -d the knocks leave back to back, in order"
    else e2e_fail "$SERVER: knocks without -d: gaps '${GAPS}'"; fi
    dsts=$(pkts "$CLIENT and portrange 7051-7063" | awk '{ d = $5; sub(/\.[0-9]+:$/, "", d); print d }' | sort -u)
    if [ "$dsts" = 192.0.2.1 ]; then e2e_pass "$SERVER: door.test with -4 and the saved host (Family 4) knocked 192.0.2.1 only"
    else e2e_fail "$SERVER: name knocks went to '$dsts'"; fi
}

test_client() {
    out=$(win --help | tr -d '\r')
    if echo "$out" | grep -q knock; then e2e_pass "latchkey.exe --help"
    else e2e_fail "latchkey.exe --help: '$out'"; fi
    out=$(WIN_EXE=knock win --version | tr -d '\r')
    if echo "$out" | grep -q '^knock (latchkey '; then e2e_pass "run as knock.exe it is knock: '$out'"
    else e2e_fail "knock.exe --version: '$out'"; fi
    win daemon -i eth0 >/dev/null 2>&1
    rc=$?
    if [ $rc = 2 ]; then e2e_pass "no daemon in the Windows build (exit 2)"
    else e2e_fail "latchkey.exe daemon exited $rc"; fi

    out=$(knock --list | tr -d '\r')
    if [ "$out" = "home door" ]; then e2e_pass "--list reads %APPDATA%\\latchkey\\knock.conf (UTF-16, CRLF lines)"
    else e2e_fail "--list: '$out'"; fi
    wpath="Z:$(printf '%s' "$WORK/broken.conf" | tr / '\\')"
    err=$(knock -F "$wpath" broken 2>&1 | tr -d '\r')
    if [ "$err" = "latchkey knock: $wpath:2: bad port '99999': expected a number 1..65535" ]; then
        e2e_pass "-F with a Windows path; a bad file: one line naming FILE:LINE"
    else e2e_fail "-F $wpath: '$err'"; fi
    for bad in "nosuch" "no.such.invalid 1" "192.0.2.1 0" "192.0.2.1 1:icmp" "-6 192.0.2.1 1" "-4 -6 192.0.2.1 1"; do
        # shellcheck disable=SC2086 # word splitting wanted
        err=$(knock $bad 2>&1)
        rc=$?
        err=$(printf '%s' "$err" | tr -d '\r')
        if [ "$rc" != 2 ] || [ "$(echo "$err" | wc -l)" != 1 ]; then
            e2e_fail "'knock $bad': rc $rc, '$err' (want one line, exit 2)"
            return
        fi
    done
    e2e_pass "user errors (unknown name, unresolvable, bad port/protocol, wrong family): one line, exit 2"
}

# SPA from latchkey.exe to Debian's fwknopd: keys from latchkey.exe keygen, a packet with
# every key on the command line, and -n NAME from %USERPROFILE%\.fwknoprc (passphrase keys,
# -s and a client timeout, fwknopd's second port).
test_spa() {
    SERVER=fwknopd
    fw_reset
    out=$(win keygen | tr -d '\r')
    key=$(echo "$out" | sed -n 's/^KEY_BASE64: //p')
    hmac=$(echo "$out" | sed -n 's/^HMAC_KEY_BASE64: //p')
    if [ "${#key}" = 44 ] && [ "${#hmac}" = 88 ]; then e2e_pass "fwknopd: latchkey.exe keygen (OS random source under wine)"
    else e2e_fail "fwknopd: latchkey.exe keygen: '$out'"; return; fi
    start_debian_fwknopd "$key" "$hmac" || { e2e_fail "fwknopd did not start: $(tail -3 "$WORK/fwknopd.log")"; return; }

    knock --spa -A tcp/2201 -a 192.0.2.2 --key-base64-rijndael "$key" --key-base64-hmac "$hmac" 192.0.2.1
    rc=$?
    if [ $rc = 0 ] && wait_for 5 fw_rule 192.0.2.2 2201 && opened 2201; then
        e2e_pass "fwknopd: --spa -A tcp/2201 -a 192.0.2.2 opens fwknopd's door for 192.0.2.2"
    else e2e_fail "fwknopd: --spa: rc $rc, FWKNOP_INPUT: $(in_srv iptables -S FWKNOP_INPUT 2>&1 | tr '\n' ' ')"; fi

    rc_unix="${CONF_UNIX%/AppData/Roaming/latchkey/knock.conf}/.fwknoprc"
    printf '[default]\r\nSPA_SERVER_PORT 40001\r\n[router]\r\nSPA_SERVER 192.0.2.1\r\nACCESS tcp/2202\r\nALLOW_IP source\r\nFW_TIMEOUT 20\r\nKEY correct horse\r\nHMAC_KEY battery staple\r\n' >"$rc_unix"
    knock -n router
    rc=$?
    rm -f "$rc_unix"
    if [ $rc = 0 ] && wait_for 5 fw_rule 192.0.2.2 2202 && opened 2202 &&
        fw_decoded "Message Type: 3 (Client timeout access msg)" && fw_decoded "Client Timeout: 20"; then
        e2e_pass "fwknopd: -n router from %USERPROFILE%\\.fwknoprc (CRLF, passphrases, -s, timeout 20, port 40001)"
    else e2e_fail "fwknopd: -n router: rc $rc, FWKNOP_INPUT: $(in_srv iptables -S FWKNOP_INPUT 2>&1 | tr '\n' ' ')"; fi
    stop_pid "$FWKNOPD_PID"
}

test_client
for server in ${E2E_SERVERS:-knockd latchkey fwknopd}; do
    case $server in
    knockd)
        command -v knockd >/dev/null || { e2e_fail "knockd not installed (apt-get install -y knockd)"; continue; } ;;
    latchkey)
        [ -x "$LATCHKEY" ] || { e2e_fail "no Linux build at $LATCHKEY (cargo build --release, or set LATCHKEY)"; continue; } ;;
    fwknopd)
        command -v fwknopd >/dev/null || { e2e_fail "fwknopd not installed (apt-get install -y fwknop-server)"; continue; }
        test_spa
        continue ;;
    esac
    test_server "$server"
done
[ "$E2E_FAILS" = 0 ]
