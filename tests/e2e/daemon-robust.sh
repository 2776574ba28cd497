#!/bin/bash
# What the network throws at the daemon: two knockers at once, a retransmitted SYN, port
# sweeps, a flood of spoofed first knocks (memory must not grow), and the interface going
# down, being deleted and re-created, and changing its address.
. "$(dirname "$0")/lib.sh"
e2e_setup rb
listen_tcp 22
reject_ssh
{
    door ssh 1000,1100,1200 "tcpflags = syn"
    door desc 1500,1400,1300 "tcpflags = syn"
} >"$WORK/knockd.conf"
start_daemon "$WORK/knockd.conf"
no_rule() { ! in_srv iptables -S INPUT | grep -q -- "--comment $1 .*${2:-}"; }
closed_all() { ! in_srv iptables -S INPUT | grep -q -- "--comment"; }

# Two knockers interleaved; the second sends a wrong port. The first still opens.
pkt "$CLI" tcp 192.0.2.2 192.0.2.1 1000
pkt "$CLI" tcp 192.0.2.3 192.0.2.1 1000
pkt "$CLI" tcp 192.0.2.3 192.0.2.1 1200
pkt "$CLI" tcp 192.0.2.2 192.0.2.1 1100
pkt "$CLI" tcp 192.0.2.3 192.0.2.1 1100
pkt "$CLI" tcp 192.0.2.2 192.0.2.1 1200
pkt "$CLI" tcp 192.0.2.3 192.0.2.1 1200
expect "knocker unaffected by another's wrong port opens" wait_for 2 has_rule ssh 192.0.2.2
expect "the wrong knocker does not" no_rule ssh 192.0.2.3
wait_for 6 closed_all

# A retransmitted SYN (the same knock twice) still opens.
pkt "$CLI" tcp 192.0.2.4 192.0.2.1 1000 S 2
pkt "$CLI" tcp 192.0.2.4 192.0.2.1 1100 S 3
pkt "$CLI" tcp 192.0.2.4 192.0.2.1 1200
expect "retransmitted SYNs still open" wait_for 2 has_rule ssh 192.0.2.4

# Port sweeps across the sequences, ascending and descending, open nothing.
pkt "$CLI" sweep 198.18.0.5 192.0.2.1 900 1600
pkt "$CLI" sweep 198.18.0.6 192.0.2.1 1600 900
sleep 0.5
expect "ascending sweep opens nothing" no_rule ssh 198.18.0.5
expect "descending sweep opens nothing" no_rule desc 198.18.0.6
expect "sweeps were seen as wrong knocks" logged "198.18.0.6: desc: Stage 1"

# 100,000 spoofed first knocks from distinct sources, then a real knock.
rss() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
wait_for 6 closed_all
knock_from "$CLI" 192.0.2.1 1000 1100 1200 # warm every code path once
# ... including the log's rate limit and its report, which only a flood reaches (its deeper
# stack can touch one more page of the anonymous stack mapping).
pkt "$CLI" flood 198.18.0.0/15 192.0.2.1 1000 200
sleep 0.3
before=$(rss "$LK_PID" VmRSS)
anon_before=$(rss "$LK_PID" RssAnon)
pkt "$CLI" flood 198.18.0.0/15 192.0.2.1 1000 100000
sleep 1
knock_from "$CLI" 192.0.2.1 1000 1100 1200
expect "real knock opens after 100,000 spoofed first knocks" wait_for 2 has_rule ssh 192.0.2.2
after=$(rss "$LK_PID" VmRSS)
anon_after=$(rss "$LK_PID" RssAnon)
echo "     VmRSS ${before} kB -> ${after} kB, RssAnon ${anon_before} kB -> ${anon_after} kB"
expect "anonymous memory did not grow under the flood" test "$anon_after" -le "$anon_before"
expect "resident memory did not grow by more than one page" test "$after" -le $((before + 4))
kill -USR1 "$LK_PID"
expect "SIGUSR1 logs counters with evictions" wait_for 2 logged "counters: packets [0-9]+, .*evictions [1-9]"

# Interface down and up.
wait_for 6 closed_all
in_srv ip link set eth0 down
sleep 0.5
in_srv ip link set eth0 up
wait_for 5 tcp_open "$CLI" 192.0.2.1 1 || sleep 1
knock_from "$CLI" 192.0.2.1 1000 1100 1200
expect "knock opens after interface down/up" wait_for 2 has_rule ssh 192.0.2.2

# Interface deleted (the daemon waits, it does not exit) and re-created.
wait_for 6 closed_all
in_srv ip link del eth0
sleep 0.5
expect "daemon keeps running while the interface is gone" kill -0 "$LK_PID"
expect "daemon says it waits for the interface" logged "interface eth0 is gone"
ip link add p-s netns "$BR" type veth peer name eth0 netns "$SRV"
ip -n "$BR" link set p-s master br0 up
in_srv ip addr add 192.0.2.1/24 dev eth0
in_srv ip addr add 2001:db8::1/64 dev eth0 nodad
in_srv ip link set eth0 up
sleep 1
knock_from "$CLI" 192.0.2.1 1000 1100 1200
expect "knock opens after the interface was re-created" wait_for 3 has_rule ssh 192.0.2.2

# Address changed (DHCP, PPPoE reconnect): knocks to the new address count.
wait_for 6 closed_all
in_srv ip addr del 192.0.2.1/24 dev eth0
in_srv ip addr add 192.0.2.10/24 dev eth0
sleep 0.5
knock_from "$CLI" 192.0.2.10 1000 1100 1200
expect "knock to the new address opens" wait_for 2 has_rule ssh 192.0.2.2
wait_for 6 closed_all
knock_from "$CLI" 192.0.2.1 1000 1100 1200
sleep 0.5
expect "old address no longer counts" closed_all
stop_daemon
expect "SIGTERM exits 0" test "$LK_RC" = 0

# -v with stderr on a pipe nobody reads (a wedged supervisor): the pipe fills after a few
# hundred lines; the daemon drops log lines rather than stall, and a real knock still opens.
wait_for 6 closed_all
ip netns exec "$SRV" sh -c "exec '$LATCHKEY' daemon -i eth0 -c '$WORK/knockd.conf' -v 2>&1 | sleep 600" &
E2E_PIDS="${E2E_PIDS:-} $!"
sleep 1
pkt "$CLI" flood 198.18.0.0/15 192.0.2.10 1000 20000
sleep 0.5
knock_from "$CLI" 192.0.2.10 1000 1100 1200
expect "a full stderr pipe does not stall the daemon" wait_for 3 has_rule ssh 192.0.2.2
# Only this test's namespace: pkill would reach every namespace on the machine.
for p in $(ip netns pids "$SRV"); do
    case $(cat "/proc/$p/comm" 2>/dev/null) in latchkey | sleep) kill "$p" ;; esac
done

# Started before its interface exists: it waits (does not exit) and starts listening when the
# interface appears.
ip netns exec "$SRV" "$LATCHKEY" daemon -i late0 -c "$WORK/knockd.conf" -v >"$WORK/late.out" 2>&1 &
late=$!
E2E_PIDS="${E2E_PIDS:-} $late"
sleep 1
expect "daemon waits for a missing interface instead of exiting" kill -0 "$late"
expect "and says so" grep -q "interface late0 does not exist yet" "$WORK/late.out"
in_srv ip link add late0 type vxlan id 7 dstport 4789
in_srv ip link set late0 up
expect "it starts listening when the interface appears" \
    wait_for 3 grep -q "listening on late0 (index" "$WORK/late.out"
kill "$late"
