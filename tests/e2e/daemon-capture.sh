#!/bin/bash
# The capture: what the kernel filter keeps away from the daemon (it must not even wake it),
# sweeps of every probe kind, labelled addresses, several interfaces with their own lifecycle,
# and a capture that cannot work (no CAP_NET_RAW) failing loudly.
. "$(dirname "$0")/lib.sh"
e2e_setup cap

# cpu_ns PID: nanoseconds of CPU the process has used, over all its threads.
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f\n", s}'; }

# --- What never wakes the daemon. -------------------------------------------------------------
{
    door quiet 7000,8000,9000 "tcpflags = syn,!ack"
} >"$WORK/quiet.conf"
# Another address on the client's side of the bridge that the server's MAC answers for: the
# client routes it through the server, so its frames reach eth0 as PACKET_HOST.
in_cli ip route add 192.0.2.99/32 via 192.0.2.1
# A frame to another MAC (a promiscuous or bridged port sees those): the client believes the
# server's address lives at a MAC nobody has, and the bridge floods the frames to every port.
ip netns exec "$CLI" ip neigh replace 192.0.2.77 lladdr 02:00:00:00:00:77 dev eth0 nud permanent
in_srv ip addr add 192.0.2.77/24 dev eth0
# Address notifications (the link-local address leaving its tentative state) would wake the
# daemon, rightly: let them pass first.
wait_for 5 sh -c "[ -z \"\$(ip netns exec $SRV ip addr show tentative)\" ]"
start_daemon "$WORK/quiet.conf" -D
sleep 1
n0=$(wc -l <"$WORK/daemon.out")
c0=$(cpu_ns "$LK_PID")
pkt "$CLI" tcp 192.0.2.2 192.0.2.1 7000 A 3000     # ACKs of an ordinary connection
pkt "$CLI" tcp 192.0.2.2 192.0.2.1 8000 R 1000     # its RSTs
pkt "$CLI" tcp 192.0.2.2 192.0.2.1 9000 SA 1000    # SYN+ACKs
pkt "$CLI" tcp 192.0.2.2 192.0.2.1 7001 A 1000     # ACKs next to a sequence port
for p in 7000 8000 9000; do pkt "$CLI" tcp 192.0.2.2 192.0.2.99 "$p"; done   # not our address
for p in 7000 8000 9000; do pkt "$CLI" tcp 192.0.2.2 192.0.2.77 "$p"; done   # another MAC
sleep 0.5
c1=$(cpu_ns "$LK_PID")
expect "ACKs, RSTs and SYN+ACKs to sequence ports, knocks to another address and to another MAC: 0 ns of daemon CPU (used $((c1 - c0)) ns)" test "$c1" = "$c0"
[ "$c1" = "$c0" ] || tail -n +"$((n0 + 1))" "$WORK/daemon.out" | head -5
expect "the knock to an address that is not the interface's opened nothing" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment quiet'"
knock_from "$CLI" 192.0.2.1 7000 8000 9000
expect "a real knock still opens" wait_for 2 has_rule quiet 192.0.2.2
stop_daemon
kill -0 "$LK_PID" 2>/dev/null && e2e_fail "daemon still running"
expect "the daemon counted no packet but the knock's (3)" logged "counters: packets 3,"
in_srv ip addr del 192.0.2.77/24 dev eth0

# --- Sweeps of every kind open nothing. ----------------------------------------------------------
{
    door any 7000,8000,9000
    door syn 7100,8100,9100 "tcpflags = syn"
    door udp 7200:udp,8200:udp,9200:udp
} >"$WORK/sweep.conf"
start_daemon "$WORK/sweep.conf"
pkt "$CLI" sweep 192.0.2.2 192.0.2.1 6990 9010 A      # nmap -sA -r (and -sW)
pkt "$CLI" sweep 192.0.2.2 192.0.2.1 9010 6990 FA     # Maimon (nmap -sM), descending
pkt "$CLI" sweep 192.0.2.2 192.0.2.1 7090 9110 SA     # SYN+ACK
pkt "$CLI" sweep 192.0.2.2 192.0.2.1 7190 9210 udp    # nmap -sU -r
sleep 0.5
expect "ACK, Maimon, SYN+ACK and UDP sweeps open nothing" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment '"
expect "the wrong knocks were seen" logged "192.0.2.2: udp: Stage 1"
pkt "$CLI" tcp 192.0.2.2 192.0.2.1 7000 A
pkt "$CLI" tcp 192.0.2.2 192.0.2.1 8000 A
pkt "$CLI" tcp 192.0.2.2 192.0.2.1 9000 A
expect "an ACK knock (no TCPFlags: any packet knocks) still opens" wait_for 2 has_rule any 192.0.2.2
stop_daemon

# --- A labelled address is the interface's. -----------------------------------------------------
door lab 7000,8000,9000 >"$WORK/lab.conf"
in_srv ip addr add 192.0.2.9/24 dev eth0 label eth0:1
start_daemon "$WORK/lab.conf"
knock_from "$CLI" 192.0.2.9 7000 8000 9000
expect "a knock to a labelled address (eth0:1) opens" wait_for 2 has_rule lab 192.0.2.2
stop_daemon
in_srv ip addr del 192.0.2.9/24 dev eth0

# --- Two interfaces, each with its own addresses and lifecycle. -------------------------------
# eth1: a second link to namespace $E2E_NS-cap-d (192.0.2.66/26, server 192.0.2.65/26).
DNS=$E2E_NS-cap-d
ip netns add "$DNS"
ip -n "$DNS" link set lo up
mklink() {
    ip link add eth1 netns "$SRV" type veth peer name eth0 netns "$DNS"
    in_srv ip addr add 192.0.2.65/26 dev eth1
    ip -n "$DNS" addr add 192.0.2.66/26 dev eth0 2>/dev/null
    in_srv ip link set eth1 up
    ip -n "$DNS" link set eth0 up
}
mklink
{
    echo "[options]"
    echo "    Interface = eth0, eth1"
    door two 7000,8000,9000
} >"$WORK/two.conf"
expect "latchkey check shows both interfaces" sh -c "'$LATCHKEY' check -c '$WORK/two.conf' | grep -q 'interface  *eth0, eth1'"
# -i twice (what the config says too, so both spellings are shown to work).
start_daemon "$WORK/two.conf" -i eth1
expect "listening on eth1 as well" wait_for 3 logged "listening on eth1 \(index"
knock_from "$CLI" 192.0.2.1 7000 8000 9000
knock_from "$DNS" 192.0.2.65 7000 8000 9000
expect "a knock on eth0 opens" wait_for 2 has_rule two 192.0.2.2
expect "a knock on eth1 opens" wait_for 2 has_rule two 192.0.2.66
wait_for 6 sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment two'"
knock_from "$CLI" 192.0.2.65 7000 8000 9000
sleep 0.5
expect "eth1's address knocked on eth0 does not count (each interface has its own addresses)" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment two'"
in_srv ip link del eth1
expect "eth1 deleted: the daemon says it waits" wait_for 2 logged "interface eth1 is gone"
knock_from "$CLI" 192.0.2.1 7000 8000 9000
expect "knocks on eth0 still open while eth1 is gone" wait_for 2 has_rule two 192.0.2.2
mklink
expect "eth1 re-created: listening again" wait_for 3 sh -c "[ \$(grep -c 'listening on eth1 (index' '$WORK/daemon.out') -ge 2 ]"
sleep 0.3
knock_from "$DNS" 192.0.2.65 7000 8000 9000
expect "a knock on the re-created eth1 opens" wait_for 2 has_rule two 192.0.2.66
stop_daemon
expect "SIGTERM exits 0" test "$LK_RC" = 0

# --- A capture that cannot work fails loudly. --------------------------------------------------
: >"$WORK/eperm.out"
timeout 10 ip netns exec "$SRV" setpriv --bounding-set=-net_raw --inh-caps=-net_raw \
    "$LATCHKEY" daemon -i eth0 -c "$WORK/lab.conf" -v >"$WORK/eperm.out" 2>&1
rc=$?
expect "without CAP_NET_RAW the daemon exits 1 at once (got $rc)" test "$rc" = 1
expect "and says why" grep -q "cannot capture packets: .*needs root or CAP_NET_RAW" "$WORK/eperm.out"
timeout 10 ip netns exec "$SRV" setpriv --bounding-set=-net_raw --inh-caps=-net_raw \
    "$LATCHKEY" daemon -i nosuch0 -c "$WORK/lab.conf" -v >"$WORK/eperm.out" 2>&1
rc=$?
expect "also when its interface does not exist yet (got $rc)" test "$rc" = 1
expect "and says why" grep -q "cannot capture packets: .*needs root or CAP_NET_RAW" "$WORK/eperm.out"
