#!/bin/bash
# End-to-end test of the client, `latchkey knock`, against each server in turn: Debian's
# knockd (the reference) and `latchkey daemon`. Run as root (network namespaces):
#
#   LATCHKEY=target/release/latchkey tests/e2e/client.sh          # E2E_KEEP=1 keeps $WORK
#   E2E_SERVERS=knockd tests/e2e/client.sh                        # one server only
#
# Shown for each server, in a server namespace whose firewall rejects the protected ports
# (2201..2207) until a door opens them for the knocker, and silently drops the knock ports:
#   - doors open over TCP, UDP, a mixed sequence, and IPv6;
#   - `-d` is visible on the wire (server-side capture timestamps) and is not slept after the
#     last knock; knocks arrive in order;
#   - each TCP knock is exactly one packet (one SYN, no retransmission, no RST), each UDP knock
#     one datagram of one byte; a blocking connect to a dropped port is the control that shows
#     the capture would see a retransmission;
#   - a name with A and AAAA records is knocked and checked at the address getaddrinfo lists
#     first, `-4` forces IPv4;
#   - `--check` exits 0 when the door opens and 1 when the sequence is wrong;
#   - a saved host (-F FILE) with Delay, Family and Check; --list; config errors exit 2;
#   - a link-local address with its scope id (fe80::...%eth0) is knocked over TCP.

. "$(dirname "$0")/lib.sh"

e2e_setup client
# A name with both families for the client only: `ip netns exec` bind-mounts this over
# /etc/hosts inside the client namespace. Removed on exit, before lib.sh's own cleanup.
mkdir -p "/etc/netns/$CLI"
printf '192.0.2.1 door.test\n2001:db8::1 door.test\n' >"/etc/netns/$CLI/hosts"
# rmdir only removes /etc/netns when nothing else uses it (it did not exist before).
trap 'rc=$?; rm -rf "/etc/netns/$CLI"; rmdir /etc/netns 2>/dev/null; (exit $rc); e2e_cleanup' EXIT

[ -x "$LATCHKEY" ] || { e2e_fail "no binary at $LATCHKEY (set LATCHKEY)"; exit 1; }

{
    printf '[options]\n    LogFile = %s/server.log\n' "$WORK"
    port_door tcp 7001,7002,7003 2201
    port_door udp 7011:udp,7012:udp,7013:udp 2202
    port_door mixed 7021,7022:udp,7023 2203
    port_door six 7031,7032:udp,7033 2204
    port_door check 7041,7042,7043 2205
    port_door name 7051,7052,7053 2206
    port_door saved 7061,7062:udp,7063 2207
} >"$WORK/doors.conf"

cat >"$WORK/knock.conf" <<'EOF'
# saved hosts for the e2e test
Host home door
    HostName door.test
    Sequence 7061, 7062:udp, 7063
    Delay 100
    Family 4
    Check 2207
EOF
printf 'Host broken\n    Sequence 7061,99999\n' >"$WORK/broken.conf"

# The server's firewall: protected ports refused (RST, so a closed check fails fast), knock
# ports dropped without a word, as on a router; knockd sees the packets before netfilter does.
fw_reset() {
    for ipt in iptables ip6tables; do
        in_srv "$ipt" -F INPUT
        in_srv "$ipt" -A INPUT -p tcp --dport 2200:2299 -j REJECT --reject-with tcp-reset
        in_srv "$ipt" -A INPUT -p tcp --dport 7000:7999 -j DROP
        in_srv "$ipt" -A INPUT -p udp --dport 7000:7999 -j DROP
    done
}

for p in 2201 2202 2203 2204 2205 2206 2207; do listen_tcp "$p"; done

knock() { in_cli "$LATCHKEY" knock "$@"; }
now_ms() { date +%s%3N; }

# dst_addrs FILTER: the distinct destination addresses of the captured packets.
dst_addrs() { pkts "$@" | awk '{ d = $5; sub(/\.[0-9]+:$/, "", d); print d }' | sort -u; }

test_server() {
    SERVER=$1
    fw_reset
    start_capture "$SERVER" || { e2e_fail "$SERVER: tcpdump did not start"; return; }
    start_server "$SERVER" || { e2e_fail "$SERVER: did not start: $(tail -3 "$WORK/$SERVER.out")"; return; }

    # Nothing is open before a knock.
    if tcp_open "$CLI" 192.0.2.1 2201; then e2e_fail "$SERVER: 2201 open before any knock"; fi

    # TCP, with a delay: 3 knocks, 300 ms apart, and no pause after the last.
    t0=$(now_ms)
    knock -d 300 192.0.2.1 7001 7002 7003
    rc=$? elapsed=$(($(now_ms) - t0))
    if [ $rc -eq 0 ] && opened 2201; then e2e_pass "$SERVER: TCP sequence opens the door"
    else e2e_fail "$SERVER: TCP sequence (rc $rc)"; fi
    # 2 pauses = 600 ms; knock 0.8's pause after the last knock would make it 900.
    if [ "$elapsed" -ge 600 ] && [ "$elapsed" -lt 850 ]; then
        e2e_pass "$SERVER: -d 300 with 3 knocks took ${elapsed} ms (no pause after the last)"
    else e2e_fail "$SERVER: -d 300 with 3 knocks took ${elapsed} ms, want 600..850"; fi

    # UDP, with -u making bare ports UDP.
    knock -u 192.0.2.1 7011 7012 7013
    if opened 2202; then e2e_pass "$SERVER: UDP sequence (-u) opens the door"
    else e2e_fail "$SERVER: UDP sequence"; fi

    # Mixed protocols.
    knock 192.0.2.1 7021 7022:udp 7023:tcp
    if opened 2203; then e2e_pass "$SERVER: mixed TCP/UDP sequence opens the door"
    else e2e_fail "$SERVER: mixed sequence"; fi

    # IPv6: the door opens for the IPv6 knocker (ip6tables), not for IPv4.
    knock -6 '[2001:db8::1]' 7031 7032:udp 7033
    if opened 2204 2001:db8::1 && ! tcp_open "$CLI" 192.0.2.1 2204; then
        e2e_pass "$SERVER: IPv6 mixed sequence opens the door for the IPv6 address only"
    else e2e_fail "$SERVER: IPv6 sequence"; fi

    # --check: a wrong order stays closed (exit 1, after its retries), the right one opens (0).
    knock --check 2205 192.0.2.1 7041 7043 7042 2>"$WORK/check-wrong.err"
    rc=$?
    if [ $rc -eq 1 ]; then e2e_pass "$SERVER: --check exits 1 for a wrong sequence"
    else e2e_fail "$SERVER: --check with a wrong sequence exited $rc, want 1"; fi
    knock --check 2205 192.0.2.1 7041 7042 7043
    rc=$?
    if [ $rc -eq 0 ]; then e2e_pass "$SERVER: --check exits 0 when the door opens"
    else e2e_fail "$SERVER: --check with the right sequence exited $rc, want 0"; fi

    # A name with A and AAAA: knocks and check all go to getaddrinfo's first answer (the
    # addresses on the wire are read in check_wire, once the capture is complete).
    FIRST=$(in_cli getent ahosts door.test | awk 'NR == 1 { print $1 }')
    knock --check 2206 door.test 7051 7052 7053
    NAME_RC=$?

    # A saved host: Family 4 overrides the name's first answer; Check 2207; Delay 100.
    knock -F "$WORK/knock.conf" home
    SAVED_RC=$?

    sleep 1.5 # longer than the first SYN retransmission timeout (1 s): a retransmission would show
    # Control: a blocking connect to a dropped port does retransmit, and the capture sees it.
    timeout 2.5 ip netns exec "$CLI" bash -c 'exec 3<>/dev/tcp/192.0.2.1/7099' 2>/dev/null
    stop_pid "$SERVER_PID"
    stop_pid "$CAPTURE_PID"

    check_wire
}

# What the capture shows: one SYN per TCP knock, one byte per UDP knock, spacing, order.
check_wire() {
    bad=0
    for port in 7001 7002 7003 7021 7023 7031 7033 7041 7042 7043 7051 7052 7053; do
        n=$(pkts "(src host 192.0.2.2 or src host 2001:db8::2) and dst port $port" | wc -l)
        syn=$(pkts "((ip and tcp[tcpflags] == tcp-syn) or (ip6 and ip6[53] == 2)) and dst port $port" | wc -l)
        # 7041..7043 are knocked twice per --check run (wrong + right) times retries: skip the
        # exact count there, but every packet must still be a bare SYN.
        case $port in 704?) [ "$n" -ge 1 ] && [ "$n" = "$syn" ] || bad=1 ;;
        *) [ "$n" = 1 ] && [ "$syn" = 1 ] || { bad=1; echo "  port $port: $n packets, $syn SYN"; } ;;
        esac
    done
    ctrl=$(pkts dst port 7099 | wc -l)
    if [ $bad = 0 ] && [ "$ctrl" -ge 2 ]; then
        e2e_pass "$SERVER: each TCP knock is exactly one SYN on the wire (control: a blocking connect sent $ctrl)"
    else e2e_fail "$SERVER: TCP knocks not one SYN each (control sent $ctrl)"; fi

    lens=$(pkts udp and '(dst port 7011 or dst port 7012 or dst port 7013 or dst port 7022 or dst port 7032)' |
        grep -o 'length [0-9]*' | sort | uniq -c | awk '{ print $1 "x" $3 }')
    if [ "$lens" = 5x1 ]; then e2e_pass "$SERVER: each UDP knock is one datagram of one byte"
    else e2e_fail "$SERVER: UDP knocks: $lens (want 5x1)"; fi

    dsts=$(dst_addrs 'portrange 7051-7053')
    if [ "$NAME_RC" -eq 0 ] && [ "$dsts" = "$FIRST" ]; then
        e2e_pass "$SERVER: door.test (A + AAAA) knocked and checked at $FIRST only (getaddrinfo's first)"
    else e2e_fail "$SERVER: door.test: rc $NAME_RC, knocks went to '$dsts', first answer $FIRST"; fi
    dsts=$(dst_addrs 'portrange 7061-7063')
    if [ "$SAVED_RC" -eq 0 ] && [ "$dsts" = 192.0.2.1 ]; then
        e2e_pass "$SERVER: saved host 'home' (Family 4, Check 2207) opens the door over IPv4"
    else e2e_fail "$SERVER: saved host: rc $SAVED_RC, knocks went to '$dsts'"; fi

    # Spacing of the -d 300 knocks, from the server-side capture.
    times=$(pkts 'dst port 7001 or dst port 7002 or dst port 7003' | awk '{ print $1, $5 }')
    gaps=$(echo "$times" | awk 'NR > 1 { printf "%d ", ($1 - t) * 1000 } { t = $1 }')
    order=$(echo "$times" | awk '{ n = split($2, a, "."); printf "%s ", a[n] }')
    ok=1
    for g in $gaps; do [ "$g" -ge 295 ] && [ "$g" -lt 400 ] || ok=0; done
    if [ $ok = 1 ] && [ "$(echo $gaps | wc -w)" = 2 ] && [ "$order" = "7001: 7002: 7003: " ]; then
        e2e_pass "$SERVER: -d 300 on the wire: gaps ${gaps}ms, in order"
    else e2e_fail "$SERVER: -d 300 on the wire: gaps '${gaps}', order '$order'"; fi
    times=$(pkts 'portrange 7061-7063' | awk '{ print $1 }')
    gaps=$(echo "$times" | awk 'NR > 1 { printf "%d ", ($1 - t) * 1000 } { t = $1 }')
    ok=1
    for g in $gaps; do [ "$g" -ge 95 ] && [ "$g" -lt 200 ] || ok=0; done
    if [ $ok = 1 ] && [ "$(echo $gaps | wc -w)" = 2 ]; then
        e2e_pass "$SERVER: saved Delay 100 on the wire: gaps ${gaps}ms"
    else e2e_fail "$SERVER: saved Delay 100 on the wire: gaps '${gaps}'"; fi
}

# Client-only behaviour, no server needed.
test_client() {
    out=$(knock -F "$WORK/knock.conf" --list)
    outv=$(knock -F "$WORK/knock.conf" --list -v)
    if [ "$out" = "home door" ] && echo "$outv" | grep -q '7061,7062:udp,7063'; then
        e2e_pass "--list shows names; -v adds sequences"
    else e2e_fail "--list: '$out' / '$outv'"; fi

    err=$(knock -F "$WORK/broken.conf" broken 2>&1)
    rc=$?
    if [ $rc = 2 ] && [ "$err" = "latchkey knock: $WORK/broken.conf:2: bad port '99999': expected a number 1..65535" ]; then
        e2e_pass "a bad saved-hosts file: one line naming FILE:LINE, exit 2"
    else e2e_fail "bad saved-hosts file: rc $rc, '$err'"; fi

    for bad in "nosuch" "no.such.invalid 1" "192.0.2.1 0" "192.0.2.1 1:icmp" "-6 192.0.2.1 1"; do
        # shellcheck disable=SC2086 # word splitting wanted
        err=$(knock -F "$WORK/knock.conf" $bad 2>&1)
        rc=$?
        if [ $rc != 2 ] || [ "$(echo "$err" | wc -l)" != 1 ]; then
            e2e_fail "'knock $bad': rc $rc, '$err' (want one line, exit 2)"
            return
        fi
    done
    e2e_pass "user errors (unknown name, unresolvable, bad port/protocol, wrong family): one line, exit 2"

    # A link-local address with its scope id (fe80::...%eth0): the knocks must keep the
    # scope id, without which the kernel refuses a TCP connect (EINVAL; UDP would leave
    # through the only link-local route anyway).
    wait_for 5 sh -c "[ -z \"\$(ip -n $CLI -6 addr show dev eth0 scope link tentative)\" ]"
    ll=$(ip -n "$SRV" -6 addr show dev eth0 scope link | awk '/inet6/ { sub(/\/.*/, "", $2); print $2; exit }')
    # Captured on the client's side of the link: what left, to where.
    ip netns exec "$CLI" tcpdump -i eth0 -n -U --immediate-mode -Z root -w "$WORK/scope.pcap" 'tcp dst portrange 7091-7092' \
        2>"$WORK/scope.err" &
    cap=$!
    E2E_PIDS="${E2E_PIDS:-} $cap"
    wait_for 5 grep -q listening "$WORK/scope.err"
    err=$(knock -v "$ll%eth0" 7091 7092 2>&1 >/dev/null)
    rc=$?
    sleep 0.5
    stop_pid "$cap"
    dsts=$(tcpdump -r "$WORK/scope.pcap" -n 2>/dev/null | awk '{ d = $5; sub(/\.[0-9]+:$/, "", d); print d }' | sort -u)
    if [ $rc = 0 ] && [ -z "$err" ] && [ "$dsts" = "$ll" ]; then
        e2e_pass "a link-local address with a scope id ($ll%eth0) is knocked"
    else e2e_fail "$ll%eth0: rc $rc, '$err', knocks went to '$dsts'"; fi
}

test_client
for server in ${E2E_SERVERS:-knockd latchkey}; do
    case $server in
    knockd)
        command -v knockd >/dev/null || { e2e_fail "knockd not installed (apt-get install -y knockd)"; continue; } ;;
    latchkey)
        [ -x "$LATCHKEY" ] || { e2e_fail "no build at $LATCHKEY (cargo build --release, or set LATCHKEY)"; continue; } ;;
    esac
    test_server "$server"
done
[ "$E2E_FAILS" = 0 ]
