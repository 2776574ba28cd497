#!/bin/bash
# What counts as a knock: order, time window, UDP and mixed sequences, TCPFlags with
# negation, IPv6 with Start_Command_6, Target, One_Time_Sequences, and a config that names
# its interface only with `Interface =`. Each door tags its iptables rule with its name.
. "$(dirname "$0")/lib.sh"
e2e_setup mt
listen_tcp 22
reject_ssh
SRV_MAC=$(in_srv cat /sys/class/net/eth0/address)
# Knocks to Target 192.0.2.50 must reach the server's NIC: nobody owns that address.
in_cli ip neigh replace 192.0.2.50 lladdr "$SRV_MAC" dev eth0 nud permanent
printf '2000,2001,2002\n3000:udp,3001\n' >"$WORK/onetime"
{
    echo "[options]"
    echo "    interface = eth0"
    door order 1000,1100,1200
    door slow 1300,1400,1500 "seq_timeout = 2"
    door udp 2100:udp,2200:udp,2300:udp
    door mixed 2400:udp,2500:tcp,2600:UDP
    door flags 2700,2800 "tcpflags = fin,!ack"
    door six 2900,3100
    echo "    start_command_6 = ip6tables -I INPUT 1 -s %IP% -p tcp --dport 22 -m comment --comment six -j ACCEPT"
    echo "    stop_command_6 = ip6tables -D INPUT -s %IP% -p tcp --dport 22 -m comment --comment six -j ACCEPT"
    door target 3200,3300 "target = 192.0.2.50"
    door onetime 9 "one_time_sequences = $WORK/onetime"
} >"$WORK/knockd.conf"
# No -i: the config's `Interface = eth0` is used.
ip netns exec "$SRV" "$LATCHKEY" daemon -c "$WORK/knockd.conf" -v >>"$WORK/daemon.out" 2>&1 &
LK_PID=$!
E2E_PIDS="${E2E_PIDS:-} $LK_PID"
expect "config with only 'Interface =' listens on eth0" \
    wait_for 5 grep -q "listening on eth0 (index" "$WORK/daemon.out"

knock_from "$CLI" 192.0.2.1 1000 1200 1100
sleep 0.3
expect "wrong order opens nothing" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment order'"
knock_from "$CLI" 192.0.2.1 1000 1100 1200
expect "right order opens" wait_for 2 has_rule order 192.0.2.2

knock_from "$CLI" -d 1200 192.0.2.1 1300 1400 1500
sleep 0.5
expect "too slow opens nothing" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment slow'"
expect "too slow is logged as a sequence timeout" logged "192.0.2.2: slow: sequence timeout \(stage 2\)"

knock_from "$CLI" -u 192.0.2.1 2100 2200 2300
expect "UDP sequence opens" wait_for 2 has_rule udp 192.0.2.2
knock_from "$CLI" 192.0.2.1 2400:udp 2500:tcp 2600:udp
expect "mixed sequence opens" wait_for 2 has_rule mixed 192.0.2.2

knock_from "$CLI" 192.0.2.1 2700 2800
sleep 0.3
expect "SYN knocks do not match tcpflags = fin,!ack" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment flags'"
pkt "$CLI" tcp 192.0.2.2 192.0.2.1 2700 F
pkt "$CLI" tcp 192.0.2.2 192.0.2.1 2800 FA
sleep 0.3
expect "FIN+ACK fails !ack" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment flags'"
pkt "$CLI" tcp 192.0.2.2 192.0.2.1 2800 F
expect "FIN knocks open tcpflags = fin,!ack (the FIN+ACK in between was ignored)" \
    wait_for 2 has_rule flags 192.0.2.2

knock_from "$CLI" -6 2001:db8::1 2900 3100
expect "IPv6 knock runs Start_Command_6" wait_for 2 has_rule6 six 2001:db8::2
expect "IPv6 ssh reachable after the knock" wait_for 2 tcp_open "$CLI" 2001:db8::1 22
expect "IPv6 knock did not run the IPv4 command" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment six'"

knock_from "$CLI" 192.0.2.1 3200 3300
sleep 0.3
expect "Target door ignores knocks to the interface's own address" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment target'"
knock_from "$CLI" 192.0.2.50 3200 3300
expect "Target door opens for knocks sent to the target" wait_for 2 has_rule target 192.0.2.2

knock_from "$CLI" 192.0.2.1 2000 2001 2002
expect "first one-time sequence opens" wait_for 2 has_rule onetime 192.0.2.2
expect "used line marked with # in place" grep -qx '#000,2001,2002' "$WORK/onetime"
expect "grant closes at cmd_timeout" wait_for 5 sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment onetime'"
knock_from "$CLI" 192.0.2.1 2000 2001 2002
sleep 0.5
expect "a used one-time sequence does not open again" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment onetime'"
knock_from "$CLI" 192.0.2.1 3000:udp 3001
expect "the next one-time sequence is live" wait_for 2 has_rule onetime 192.0.2.2
expect "no sequence left is logged" wait_for 2 logged "onetime: no one-time sequences left"
stop_daemon
expect "SIGTERM exits 0" test "$LK_RC" = 0
