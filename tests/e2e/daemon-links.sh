#!/bin/bash
# A raw-IP interface (tun: no link header at all, as on WireGuard, ipip or PPP), IPv4 and
# IPv6: knockd 0.8 does IPv6 only on Ethernet-like interfaces. The knocks are injected into
# the server's tun0 by a small program holding the device (tests/e2e/pkt.py tun).
. "$(dirname "$0")/lib.sh"
e2e_setup ln
door ssh 1000,1100,1200 "tcpflags = syn" >"$WORK/knockd.conf"
echo "    start_command_6 = ip6tables -I INPUT 1 -s %IP% -p tcp --dport 22 -m comment --comment ssh -j ACCEPT" >>"$WORK/knockd.conf"
echo "    stop_command_6 = ip6tables -D INPUT -s %IP% -p tcp --dport 22 -m comment --comment ssh -j ACCEPT" >>"$WORK/knockd.conf"
mkfifo "$WORK/inject"
ip netns exec "$SRV" python3 "$E2E_ROOT/tests/e2e/pkt.py" tun tun0 <"$WORK/inject" >"$WORK/tun.out" &
E2E_PIDS="${E2E_PIDS:-} $!"
exec 3>"$WORK/inject"
wait_for 3 grep -q ready "$WORK/tun.out"
in_srv ip addr add 192.0.2.201 peer 192.0.2.202 dev tun0
in_srv ip addr add 2001:db8:7::1/64 dev tun0 nodad
in_srv ip link set tun0 up
ip netns exec "$SRV" "$LATCHKEY" daemon -i tun0 -c "$WORK/knockd.conf" -v >"$WORK/daemon.out" 2>&1 &
LK_PID=$!
E2E_PIDS="${E2E_PIDS:-} $LK_PID"
expect "daemon listens on a tun device" wait_for 5 grep -q "listening on tun0 (index" "$WORK/daemon.out"
for p in 1000 1100 1200; do echo "tcp 192.0.2.202 192.0.2.201 $p" >&3; done
expect "IPv4 knock over raw IP opens" wait_for 2 has_rule ssh 192.0.2.202
for p in 1000 1100 1200; do echo "tcp 2001:db8:7::2 2001:db8:7::1 $p" >&3; done
expect "IPv6 knock over raw IP opens (Start_Command_6)" wait_for 2 has_rule6 ssh 2001:db8:7::2
for p in 1000 1100 1200; do echo "tcp 198.18.3.3 192.0.2.99 $p" >&3; done
sleep 0.3
expect "knocks to an address that is not tun0's are ignored" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 198.18.3.3"
stop_daemon
expect "SIGTERM closes both (v4)" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment ssh'"
expect "SIGTERM closes both (v6)" sh -c "! ip netns exec $SRV ip6tables -S INPUT | grep -q 'comment ssh'"
exec 3>&-
