#!/bin/bash
# What one `latchkey knock` TCP knock puts on the wire, read from a capture on the server's
# interface, for each way the knocked port can answer (IPv4 and IPv6):
#   - closed (the server answers RST): one SYN, nothing else;
#   - filtered (dropped, no answer): one SYN, nothing else, also after the 1 s in which a
#     connect would have retransmitted it;
#   - open (something listens; on this LAN the SYN-ACK comes back before the client closes):
#     the SYN, then the kernel's ACK and one RST (the abortive close); never a FIN, data or a
#     second SYN.
# The README's "On the wire" paragraph says the same.
. "$(dirname "$0")/lib.sh"
e2e_setup cw
[ -x "$LATCHKEY" ] || { e2e_fail "no binary at $LATCHKEY"; exit 1; }
"$LATCHKEY" knock --help >/dev/null 2>&1 || { echo "skip: $LATCHKEY has no client"; exit 0; }

listen_tcp 7005 # open
for ipt in iptables ip6tables; do in_srv "$ipt" -A INPUT -p tcp --dport 7006 -j DROP; done
# 7007: nothing listens, the kernel answers RST.

ip netns exec "$SRV" tcpdump -i eth0 -n -U -w "$WORK/wire.pcap" 'tcp and portrange 7000-7999' \
    2>"$WORK/tcpdump.err" &
CAPTURE_PID=$!
E2E_PIDS="${E2E_PIDS:-} $CAPTURE_PID"
wait_for 5 grep -q listening "$WORK/tcpdump.err" || e2e_fail "tcpdump did not start"

in_cli "$LATCHKEY" knock -d 100 192.0.2.1 7005 7006 7007 || e2e_fail "IPv4 knock failed"
in_cli "$LATCHKEY" knock -d 100 '[2001:db8::1]' 7005 7006 7007 || e2e_fail "IPv6 knock failed"
sleep 1.5 # past the first SYN retransmission timeout (1 s): a retransmission would show
kill "$CAPTURE_PID"
wait "$CAPTURE_PID" 2>/dev/null

# flags FAMILY PORT: the TCP flags of the client's packets to PORT, in order, one word.
flags() {
    tcpdump -r "$WORK/wire.pcap" -n "$1 and src host $2 and dst port $3" 2>/dev/null |
        sed -En 's/.*Flags \[([^]]*)\].*/\1/p' | tr '\n' ' ' | sed 's/ $//'
}
for fam in "ip 192.0.2.2" "ip6 2001:db8::2"; do
    set -- $fam
    f=$(flags "$1" "$2" 7007)
    expect "$1: closed port: one SYN and nothing else (saw: $f)" test "$f" = S
    f=$(flags "$1" "$2" 7006)
    expect "$1: filtered port: one SYN and nothing else (saw: $f)" test "$f" = S
    f=$(flags "$1" "$2" 7005)
    # S, then the ACK of the handshake and the RST of the abortive close (R or R.), or the
    # RST alone when the SYN-ACK came after the close.
    case $f in
    "S . R" | "S . R." | "S R") e2e_pass "$1: open port: the SYN, then only the kernel's answer to SYN-ACK ($f)" ;;
    *) e2e_fail "$1: open port: want 'S . R' or 'S R', saw '$f'" ;;
    esac
done

# latchkey daemon counts that answer as repeats of the knock just accepted (TolerateRepeats),
# so a sequence whose middle port is open still opens, without TCPFlags.
door mid 7006,7005,7007 >"$WORK/doors.conf"
printf '[options]\n    StateFile = %s/state\n' "$WORK" >>"$WORK/doors.conf"
start_daemon "$WORK/doors.conf"
in_cli "$LATCHKEY" knock 192.0.2.1 7006 7005 7007
expect "latchkey daemon opens a door whose middle port answers the knock" wait_for 3 has_rule mid 192.0.2.2
stop_daemon
