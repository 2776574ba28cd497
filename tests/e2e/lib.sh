# Shared helpers for latchkey's end-to-end tests (sourced, POSIX sh + iproute2).
#
# Every test gets its own pair of network namespaces joined by a veth pair, named after the
# test so that tests never collide, and removed by an EXIT trap even when the test fails.
# Addresses come only from the documentation ranges: 192.0.2.0/24 and 2001:db8::/32.
#
#   . tests/e2e/lib.sh
#   e2e_setup knock           # namespaces $SRV (192.0.2.1, 2001:db8::1) and $CLI (.2, ::2)
#   in_srv iptables -L        # run in the server namespace;  in_cli ... in the client's
#   e2e_pass "what was shown" / e2e_fail "what went wrong"

set -u
E2E_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LATCHKEY=${LATCHKEY:-$E2E_ROOT/target/release/latchkey}
E2E_FAILS=0
# Namespace prefix: runs from several checkouts at once on one machine must not share (and
# tear down) each other's namespaces: E2E_NS=lk2 scripts/test.
E2E_NS=${E2E_NS:-lk}

# e2e_setup NAME: namespaces lk-NAME-s (server: 192.0.2.1, 2001:db8::1 on eth0) and lk-NAME-c
# (client: 192.0.2.2, 2001:db8::2), both plugged into a bridge in lk-NAME-b; and a work dir $WORK.
e2e_setup() {
    E2E_NAME=$1
    SRV=$E2E_NS-$1-s
    CLI=$E2E_NS-$1-c
    BR=$E2E_NS-$1-b
    WORK=$(mktemp -d "/tmp/latchkey-e2e-$1.XXXXXX")
    trap e2e_cleanup EXIT
    trap 'exit 130' INT TERM
    e2e_teardown_netns
    ip netns add "$BR"
    ip -n "$BR" link add br0 type bridge
    ip -n "$BR" link set br0 up
    e2e_host s 192.0.2.1 2001:db8::1
    e2e_host c 192.0.2.2 2001:db8::2
}

# e2e_host SUFFIX ADDR4 ADDR6: namespace lk-NAME-SUFFIX with eth0 on the bridge (used for
# further clients: e2e_host c2 192.0.2.3 2001:db8::3, then ip netns exec lk-NAME-c2 ...);
# sets HOST_NS to its name.
e2e_host() {
    ns=$E2E_NS-$E2E_NAME-$1
    HOST_NS=$ns
    ip netns add "$ns"
    ip link add "p-$1" netns "$BR" type veth peer name eth0 netns "$ns"
    ip -n "$BR" link set "p-$1" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$2/24" dev eth0
    ip -n "$ns" addr add "$3/64" dev eth0 nodad
    ip -n "$ns" link set eth0 up
}

in_srv() { ip netns exec "$SRV" "$@"; }
in_cli() { ip netns exec "$CLI" "$@"; }

e2e_teardown_netns() {
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$E2E_NS-$E2E_NAME-"); do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
}

e2e_cleanup() {
    rc=$?
    for p in ${E2E_PIDS:-}; do kill "$p" 2>/dev/null; done
    e2e_teardown_netns
    [ "${E2E_KEEP:-0}" = 1 ] || rm -rf "$WORK"
    if [ "$E2E_FAILS" -gt 0 ] && [ "$rc" -eq 0 ]; then rc=1; fi
    exit "$rc"
}

e2e_pass() { echo "ok   $E2E_NAME: $*"; }
e2e_fail() { echo "FAIL $E2E_NAME: $*"; E2E_FAILS=$((E2E_FAILS + 1)); }

# tcp_open NS ADDR PORT: succeeds when a TCP connect from NS to ADDR:PORT completes within 2 s.
tcp_open() {
    ip netns exec "$1" timeout 3 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null
}

# listen_tcp PORT: a TCP listener in the server namespace on every address (stands in for sshd).
listen_tcp() {
    ip netns exec "$SRV" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept(); c.close()
' "$1" &
    E2E_PIDS="${E2E_PIDS:-} $!"
    sleep 0.3
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds or the time is up.
wait_for() {
    t=$(( $1 * 10 )); shift
    while [ "$t" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; t=$((t - 1)); done
    return 1
}

# start_daemon CONF [ARGS...]: `latchkey daemon -i eth0 -c CONF -v ARGS` in the server
# namespace; output in $WORK/daemon.out; sets LK_PID; waits until it listens.
start_daemon() {
    conf=$1
    shift
    n=$(grep -c "listening on eth0 (index" "$WORK/daemon.out" 2>/dev/null)
    ip netns exec "$SRV" "$LATCHKEY" daemon -i eth0 -c "$conf" -v "$@" >>"$WORK/daemon.out" 2>&1 &
    LK_PID=$!
    E2E_PIDS="${E2E_PIDS:-} $LK_PID"
    wait_for 5 sh -c "[ \$(grep -c 'listening on eth0 (index' '$WORK/daemon.out') -gt ${n:-0} ]" ||
        e2e_fail "daemon did not start listening: $(tail -5 "$WORK/daemon.out")"
}

# stop_daemon [SIGNAL]: signals the daemon (TERM by default) and waits for it to exit.
stop_daemon() {
    kill "-${1:-TERM}" "$LK_PID" 2>/dev/null
    wait "$LK_PID" 2>/dev/null
    LK_RC=$?
}

# expect DESCRIPTION CMD...: passes when CMD succeeds.
expect() {
    d=$1
    shift
    if "$@"; then e2e_pass "$d"; else e2e_fail "$d"; fi
}

# refused NS ADDR PORT: the TCP connect does not complete.
refused() { ! tcp_open "$@"; }

# reject_ssh: in the server namespace, port 22 is refused unless a rule above lets it in.
reject_ssh() {
    in_srv iptables -A INPUT -p tcp --dport 22 -j REJECT
    in_srv ip6tables -A INPUT -p tcp --dport 22 -j REJECT
}

# knock_from NS ARGS...: Debian's knock client in namespace NS.
knock_from() {
    ns=$1
    shift
    ip netns exec "$ns" knock "$@"
}

# pkt NS ARGS...: crafted packets (tests/e2e/pkt.py) from namespace NS.
pkt() {
    ns=$1
    shift
    ip netns exec "$ns" python3 "$E2E_ROOT/tests/e2e/pkt.py" "$@"
}

# logged PATTERN: the daemon's output has a line matching PATTERN (grep -E).
logged() { grep -Eq "$1" "$WORK/daemon.out"; }

# door NAME SEQUENCE [EXTRA KEY=VALUE LINES...]: a door section whose commands add and remove
# an iptables rule tagged with the door's name (see has_rule).
door() {
    name=$1
    seq=$2
    shift 2
    printf '[%s]\n    sequence = %s\n    seq_timeout = 5\n    cmd_timeout = 3\n' "$name" "$seq"
    printf '    start_command = iptables -I INPUT 1 -s %%IP%% -p tcp --dport 22 -m comment --comment %s -j ACCEPT\n' "$name"
    printf '    stop_command = iptables -D INPUT -s %%IP%% -p tcp --dport 22 -m comment --comment %s -j ACCEPT\n' "$name"
    for kv in "$@"; do printf '    %s\n' "$kv"; done
}

# has_rule NAME [SRC]: the server's INPUT chain holds door NAME's rule (for SRC).
has_rule() {
    in_srv iptables -S INPUT | grep -- "--comment $1 " | grep -q -- "${2:-}"
}
has_rule6() {
    in_srv ip6tables -S INPUT | grep -- "--comment $1 " | grep -q -- "${2:-}"
}

# --- Helpers shared by the client tests (client.sh, windows.sh): knockd or latchkey as the
# server, doors that each open their own TCP port, a capture of the knock ports.

# port_door NAME SEQUENCE PORT: a door whose start commands let the knocker reach tcp PORT
# (IPv4 and IPv6), so one door's success cannot hide another's failure.
port_door() {
    cat <<EOF
[$1]
    Sequence = $2
    Seq_Timeout = 10
    Start_Command = iptables -I INPUT -s %IP% -p tcp --dport $3 -j ACCEPT
    Start_Command_6 = ip6tables -I INPUT -s %IP% -p tcp --dport $3 -j ACCEPT
EOF
}

# start_server knockd|latchkey: that server in $SRV on eth0 with $WORK/doors.conf; sets
# SERVER_PID. `ip netns exec` itself, not in_srv: a function sent to the background is a
# subshell, and $! would be its PID, so stopping it would leave the server running.
start_server() {
    : >"$WORK/server.log"
    case $1 in
    knockd) ip netns exec "$SRV" knockd -i eth0 -c "$WORK/doors.conf" -v >"$WORK/$1.out" 2>&1 & ;;
    latchkey) ip netns exec "$SRV" "$LATCHKEY" daemon -i eth0 -c "$WORK/doors.conf" -v >"$WORK/$1.out" 2>&1 & ;;
    esac
    SERVER_PID=$!
    E2E_PIDS="${E2E_PIDS:-} $SERVER_PID"
    # Both print a "listening" line once the capture is up; give a daemon without one a second.
    wait_for 5 grep -qi listening "$WORK/$1.out" "$WORK/server.log" || sleep 1
    kill -0 "$SERVER_PID" 2>/dev/null
}

# start_capture NAME: tcpdump of the knock ports (7000-7999) in $SRV into $WORK/NAME.pcap.
start_capture() {
    ip netns exec "$SRV" tcpdump -i eth0 -n -U -Z root -w "$WORK/$1.pcap" 'portrange 7000-7999' \
        2>"$WORK/tcpdump.err" &
    CAPTURE_PID=$!
    E2E_PIDS="${E2E_PIDS:-} $CAPTURE_PID"
    wait_for 5 grep -q listening "$WORK/tcpdump.err"
}

# pkts [FILTER]: the capture of the current $SERVER, one line per packet, with timestamps.
pkts() { tcpdump -r "$WORK/$SERVER.pcap" -tt -n "$@" 2>/dev/null; }
# stop_pid PID: stops a background process and reaps it.
stop_pid() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
# opened PORT [ADDR]: the client namespace can connect to ADDR (192.0.2.1) PORT within 3 s.
opened() { wait_for 3 tcp_open "$CLI" "${2:-192.0.2.1}" "$1"; }

# --- Debian's fwknopd (fwknop-server) as an SPA server, for the SPA client tests.

# start_debian_fwknopd KEY_B64 HMAC_B64: fwknopd in $SRV on eth0, iptables mode, its config in $WORK
# (-c/-a/-d/-p: nothing of the host's /etc/fwknop is read), UDP ports 62201 and 40001. Two
# stanzas, both SOURCE ANY: the base64 keys given, then the passphrases 'correct horse' and
# 'battery staple' (fwknopd tries them in order). Output in $WORK/fwknopd.log; sets FWKNOPD_PID.
start_debian_fwknopd() {
    mkdir -p "$WORK/run"
    cat >"$WORK/fwknopd.conf" <<EOC
PCAP_INTF                 eth0
PCAP_FILTER               udp port 62201 or udp port 40001
ENABLE_PCAP_PROMISC       N
MAX_SPA_PACKET_AGE        120
FWKNOP_RUN_DIR            $WORK/run
EOC
    cat >"$WORK/access.conf" <<EOC
SOURCE              ANY
KEY_BASE64          $1
HMAC_KEY_BASE64     $2
FW_ACCESS_TIMEOUT   60
MAX_FW_TIMEOUT      300

SOURCE              ANY
KEY                 correct horse
HMAC_KEY            battery staple
FW_ACCESS_TIMEOUT   60
EOC
    chmod 600 "$WORK/fwknopd.conf" "$WORK/access.conf"
    ip netns exec "$SRV" fwknopd -f -v -i eth0 -c "$WORK/fwknopd.conf" -a "$WORK/access.conf" \
        -d "$WORK/run/digest.cache" -p "$WORK/run/fwknopd.pid" >"$WORK/fwknopd.log" 2>&1 &
    FWKNOPD_PID=$!
    E2E_PIDS="${E2E_PIDS:-} $FWKNOPD_PID"
    wait_for 10 grep -q "Starting fwknopd" "$WORK/fwknopd.log" && sleep 1 &&
        kill -0 "$FWKNOPD_PID" 2>/dev/null
}

# fw_rule SRC PORT: fwknopd's FWKNOP_INPUT chain lets SRC in to tcp PORT.
fw_rule() { in_srv iptables -S FWKNOP_INPUT 2>/dev/null | grep -- "-s $1/32" | grep -q -- "--dport $2 "; }
# fw_decoded TEXT: fwknopd logged TEXT (it logs every field of a packet it decoded).
fw_decoded() { grep -qF -- "$1" "$WORK/fwknopd.log"; }
