#!/bin/bash
# The knockd example config, unchanged but for the interface (given with -i), shorter
# timeouts and a log file in the work dir: Debian's knock client opens SSH for the knocker
# only, it closes at cmd_timeout, and the second door opens for everyone.
. "$(dirname "$0")/lib.sh"
e2e_setup kd
e2e_host c2 192.0.2.3 2001:db8::3
C2=$HOST_NS
listen_tcp 22
reject_ssh
# tests/knockd-example.conf is knockd's example as issue 3 gives it; only the log file's
# place and cmd_timeout change (the interface comes with -i).
sed -e "s|/var/log/knockd.log|$WORK/knockd.log|" -e 's/cmd_timeout = 180/cmd_timeout = 4/' \
    "$E2E_ROOT/tests/knockd-example.conf" >"$WORK/knockd.conf"
start_daemon "$WORK/knockd.conf"

expect "ssh refused before the knock" refused "$CLI" 192.0.2.1 22
knock_from "$CLI" 192.0.2.1 64001 64099 64024 64005
expect "ssh reachable from the knocker after it" wait_for 2 tcp_open "$CLI" 192.0.2.1 22
expect "still refused from a second client" refused "$C2" 192.0.2.1 22
expect "exactly one rule for the knocker" \
    test "$(in_srv iptables -S INPUT | grep -c -- '-s 192.0.2.2/32')" = 1
expect "refused again after cmd_timeout" wait_for 6 refused "$CLI" 192.0.2.1 22
expect "rule removed" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 192.0.2.2"

knock_from "$C2" 192.0.2.1 64005 64025 64098 64010
expect "second door opens for everyone (knocker)" wait_for 2 tcp_open "$C2" 192.0.2.1 22
expect "second door opens for everyone (other client)" tcp_open "$CLI" 192.0.2.1 22
expect "second door closes at cmd_timeout" wait_for 6 refused "$CLI" 192.0.2.1 22

for line in "192.0.2.2: openSSH4knocker: Stage 1" "192.0.2.2: openSSH4knocker: Stage 3" \
    "192.0.2.2: openSSH4knocker: OPEN SESAME" \
    "openSSH4knocker: running command: /sbin/iptables -I INPUT 1 -s 192.0.2.2 -p tcp --dport 22 -j ACCEPT" \
    "192.0.2.3: openSSH4everyone: OPEN SESAME"; do
    expect "LogFile has '$line'" grep -q "^\[[0-9-]* [0-9:]*\] $line" "$WORK/knockd.log"
done
stop_daemon
expect "SIGTERM exits 0" test "$LK_RC" = 0
