#!/bin/bash
# SPA end to end, with Debian's real fwknop client (apt package fwknop-client) against
# `latchkey fwknopd` (fwknopd.conf + access.conf, latchkey's iptables rule) and against an
# SPA door of `latchkey daemon` (knockd.conf, Start/Stop_Command): TCP 22 opens for the
# allowed address only and closes after the timeout; replays (same source, other source,
# after a restart), stale and future packets, wrong keys, REQUIRE_SOURCE_ADDRESS, a port
# outside OPEN_PORTS and a client timeout above MAX_FW_TIMEOUT are refused or clamped; a packet
# during a grant extends it with one rule, also after SIGKILL and a restart.
. "$(dirname "$0")/lib.sh"
command -v fwknop >/dev/null || { echo "skip spa: fwknop client not installed (scripts/ci-deps)"; exit 0; }

e2e_setup spad
e2e_host c2 192.0.2.3 2001:db8::3
CLI2=$HOST_NS
reject_ssh
listen_tcp 22

K=W71GMIGS9Fvy0fWjHOUmThOiYm8VRsnfi7ctLoZnCBI=
H=hmfIlOFc+JJkhrxebwuC3cU8GYXcxvOkzt5VxRp0Ry2erOnlGpB0PY/tzxL+kjIHqiIX977kYCFK+3i9MT9now==
K2=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE=
H2=c2Vjb25kIGhtYWMga2V5IHRoYXQgaXMgbm90IHRoZSByaWdodCBvbmUgYXQgYWxs

# spa NS [FWKNOP ARGS...]: one SPA packet from NS to 192.0.2.1 with the right keys unless
# KEY/HKEY say otherwise; the packet is also saved to $WORK/last.spa.
spa() {
    ns=$1
    shift
    rm -f "$WORK/last.spa"
    ip netns exec "$ns" env HOME="$WORK" fwknop --no-rc-file --no-save-args -D 192.0.2.1 \
        --use-hmac --key-base64-rijndael "${KEY:-$K}" --key-base64-hmac "${HKEY:-$H}" \
        --save-packet "$WORK/last.spa" "$@" >>"$WORK/fwknop.out" 2>&1
}
# resend NS FILE: the exact bytes of FILE (without its newline) as one UDP datagram from NS
# to 192.0.2.1:62201; with a third argument, that text is appended to the payload.
resend() {
    ip netns exec "$1" python3 -c '
import socket, sys
data = open(sys.argv[1], "rb").read().strip() + sys.argv[2].encode()
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(data, ("192.0.2.1", 62201))' "$2" "${3:-}"
}
# seen N PATTERN: the daemon logged PATTERN (grep -E) at least N times (waits up to 3 s).
seen() { wait_for 3 sh -c "[ \$(grep -Ec '$2' '$WORK/daemon.out') -ge $1 ]"; }
closed_within() { wait_for "$1" refused "$CLI" 192.0.2.1 22; }
no_spa_rule() { ! in_srv iptables -S INPUT | grep -q latchkey-spa; }

# --- latchkey fwknopd with fwknopd's own files ---------------------------------------------
mkdir -p "$WORK/fw"
printf '%s\n' "PCAP_INTF           eth9" "PCAP_FILTER         udp port 62201" \
    "MAX_SPA_PACKET_AGE  120" "FWKNOP_RUN_DIR      $WORK/fw/run" \
    "ENABLE_IPT_FORWARDING Y" >"$WORK/fw/fwknopd.conf"
printf '%s\n' "SOURCE              ANY" "KEY_BASE64          $K" "HMAC_KEY_BASE64     $H" \
    "OPEN_PORTS          tcp/22" "FW_ACCESS_TIMEOUT   3" "MAX_FW_TIMEOUT      4" \
    "REQUIRE_SOURCE_ADDRESS Y" >"$WORK/fw/access.conf"

# start_fwknopd N: latchkey fwknopd in the foreground; waits for its Nth "listening" line.
start_fwknopd() {
    ip netns exec "$SRV" "$LATCHKEY" fwknopd -f -v -i eth0 -c "$WORK/fw/fwknopd.conf" \
        -a "$WORK/fw/access.conf" >>"$WORK/daemon.out" 2>&1 &
    LK_PID=$!
    E2E_PIDS="${E2E_PIDS:-} $LK_PID"
    wait_for 5 sh -c "[ \$(grep -c 'listening on eth0 (index' '$WORK/daemon.out') -ge $1 ]" ||
        e2e_fail "fwknopd did not start: $(tail -5 "$WORK/daemon.out")"
}
start_fwknopd 1
expect "fwknopd.conf's ignored variable is named with FILE:LINE" \
    grep -q "fwknopd.conf:5: ENABLE_IPT_FORWARDING: ignored" "$WORK/daemon.out"
expect "port 22 is closed before any SPA" refused "$CLI" 192.0.2.1 22

spa "$CLI" -A tcp/22 -a 192.0.2.2
cp "$WORK/last.spa" "$WORK/first.spa"
expect "a valid SPA from the real fwknop client opens tcp/22 for 192.0.2.2" \
    wait_for 3 tcp_open "$CLI" 192.0.2.1 22
expect "... through latchkey's iptables rule for that address and port only" \
    sh -c "ip netns exec $SRV iptables -S INPUT | grep -q -- '-s 192.0.2.2/32 -p tcp -m tcp --dport 22 .*latchkey-spa.* -j ACCEPT'"
expect "... and not for 192.0.2.3" refused "$CLI2" 192.0.2.1 22
spa "$CLI" -A tcp/22 -a 192.0.2.2
expect "a second packet during the grant extends it and runs the open again" \
    seen 1 'already open, extended by 3 s; running its start command again'
expect "... which exits with status 0" seen 2 'command exited with status 0'
expect "... having found the rule there: still one rule" \
    sh -c "[ \$(ip netns exec $SRV iptables -S INPUT | grep -c latchkey-spa) = 1 ]"
expect "it closes after FW_ACCESS_TIMEOUT (3 s)" closed_within 6
expect "... and the rule is gone" no_spa_rule

resend "$CLI" "$WORK/first.spa"
expect "a replay from the same source is refused" seen 1 'SPA refused: replay'
resend "$CLI2" "$WORK/first.spa"
expect "a replay from another source is refused" seen 2 'SPA refused: replay'
resend "$CLI" "$WORK/first.spa" "
"
expect "a replay with a trailing newline is refused" seen 3 'SPA refused: replay'
expect "no replay opened anything" refused "$CLI" 192.0.2.1 22

spa "$CLI" -A tcp/22 -a 192.0.2.2 --time-offset-minus 300
expect "a packet 300 s old is refused as stale" seen 1 'SPA refused: stale\(-3'
spa "$CLI" -A tcp/22 -a 192.0.2.2 --time-offset-plus 300
expect "a packet 300 s in the future is refused as stale" seen 1 'SPA refused: stale\(\+3'
HKEY=$H2 spa "$CLI" -A tcp/22 -a 192.0.2.2
expect "a wrong HMAC key is refused (logged with -v only)" seen 1 'SPA refused: bad-mac'
KEY=$K2 spa "$CLI" -A tcp/22 -a 192.0.2.2
expect "a wrong encryption key is refused" seen 1 'SPA refused: bad-key'
spa "$CLI" -A tcp/22 -s
expect "0.0.0.0 (-s) is refused under REQUIRE_SOURCE_ADDRESS" seen 1 'SPA refused: need-source-address'
spa "$CLI" -A tcp/23 -a 192.0.2.2
expect "a port outside OPEN_PORTS is refused" seen 1 'SPA refused: port-denied'
expect "none of those opened anything" refused "$CLI" 192.0.2.1 22

spa "$CLI" -A tcp/22 -a 192.0.2.2 -f 5000
expect "a client timeout of 5000 s is clamped to MAX_FW_TIMEOUT (4 s)" \
    seen 1 'opening tcp/22 for 192.0.2.2 for 4 s'
expect "... the door opens" wait_for 3 tcp_open "$CLI" 192.0.2.1 22
expect "... and closes after 4 s" closed_within 7
cp "$WORK/last.spa" "$WORK/clamped.spa"

stop_daemon
expect "the replay cache is kept in FWKNOP_RUN_DIR, mode 0600" \
    sh -c "[ \$(stat -c %a '$WORK/fw/run/latchkey-replay.cache') = 600 ]"
start_fwknopd 2
resend "$CLI" "$WORK/clamped.spa"
expect "a replay after a restart is refused" seen 4 'SPA refused: replay'
expect "... and opens nothing" refused "$CLI" 192.0.2.1 22
spa "$CLI" -A tcp/22 -a 192.0.2.2
expect "a fresh packet after the restart opens" wait_for 3 tcp_open "$CLI" 192.0.2.1 22
stop_daemon
expect "SIGTERM closes the open door" no_spa_rule

# SIGKILL mid-grant, then a new packet after the restart: the grant the state file kept is
# extended (its open runs again and finds the rule), not doubled, and closes once.
start_fwknopd 3
spa "$CLI" -A tcp/22 -a 192.0.2.2
expect "a fresh packet opens again" wait_for 3 tcp_open "$CLI" 192.0.2.1 22
stop_daemon KILL
start_fwknopd 4
expect "after SIGKILL, the restart takes over the open grant" seen 1 'grant left open by a previous run'
n=$(grep -c 'command exited with status 0' "$WORK/daemon.out")
spa "$CLI" -A tcp/22 -a 192.0.2.2
expect "... and a new packet extends it, running the open again" \
    seen 2 'already open, extended by 3 s; running its start command again'
expect "... which exits with status 0" seen $((n + 1)) 'command exited with status 0'
expect "... having found the rule there: still one rule" \
    sh -c "[ \$(ip netns exec $SRV iptables -S INPUT | grep -c latchkey-spa) = 1 ]"
expect "... it closes at the new end" closed_within 6
expect "... and the rule is gone" no_spa_rule
stop_daemon

# CMD_CYCLE mode: every requested port substituted, $PROTO as a number, ports enforced, the
# close command after CMD_CYCLE_TIMER; -S and -K through the PID file.
printf '#!/bin/sh\necho "$*" >>%s\n' "$WORK/hook.log" >"$WORK/hook.sh"
chmod +x "$WORK/hook.sh"
printf '%s\n' "SOURCE ANY" "KEY_BASE64 $K" "HMAC_KEY_BASE64 $H" "OPEN_PORTS tcp/22, udp/53" \
    "CMD_CYCLE_OPEN $WORK/hook.sh open \$IP \$PKT_SRC \$DST \$PORT \$PROTO \$CLIENT_TIMEOUT" \
    "CMD_CYCLE_CLOSE $WORK/hook.sh close \$IP \$PORT \$PROTO" "CMD_CYCLE_TIMER 2" \
    "MAX_FW_TIMEOUT 3" >"$WORK/fw/access.conf"
start_fwknopd 5
expect "fwknopd -S finds the running daemon" \
    ip netns exec "$SRV" "$LATCHKEY" fwknopd -S -c "$WORK/fw/fwknopd.conf" -a "$WORK/fw/access.conf"
spa "$CLI" -A tcp/22,udp/53 -a 192.0.2.77
expect "CMD_CYCLE_OPEN runs once per requested port, with fwknopd's variables" \
    wait_for 3 sh -c "grep -qx 'open 192.0.2.77 192.0.2.2 192.0.2.1 22 6 2' '$WORK/hook.log' &&
        grep -qx 'open 192.0.2.77 192.0.2.2 192.0.2.1 53 17 2' '$WORK/hook.log'"
expect "CMD_CYCLE_CLOSE runs after CMD_CYCLE_TIMER for each port" \
    wait_for 5 sh -c "grep -qx 'close 192.0.2.77 22 6' '$WORK/hook.log' &&
        grep -qx 'close 192.0.2.77 53 17' '$WORK/hook.log'"
spa "$CLI" -A tcp/22,tcp/23 -a 192.0.2.2
expect "OPEN_PORTS is enforced in CMD_CYCLE mode too (fwknopd does not)" \
    seen 2 'SPA refused: port-denied'
spa "$CLI" -A udp/53 -a 192.0.2.2 -f 5000
expect "... and the client timeout is clamped to MAX_FW_TIMEOUT (fwknopd does not)" \
    wait_for 3 grep -qx 'open 192.0.2.2 192.0.2.2 192.0.2.1 53 17 3' "$WORK/hook.log"
expect "fwknopd -K stops it" \
    ip netns exec "$SRV" "$LATCHKEY" fwknopd -K -c "$WORK/fw/fwknopd.conf" -a "$WORK/fw/access.conf"
wait "$LK_PID" 2>/dev/null
expect "... and its close commands ran at exit" \
    wait_for 3 grep -qx 'close 192.0.2.2 53 17' "$WORK/hook.log"

# --- an SPA door of latchkey daemon, in knockd.conf ----------------------------------------
: >"$WORK/daemon.out"
printf '%s\n' "[options]" "    StateFile = $WORK/state" "[ssh-spa]" \
    "    SPA_Port        = 62201" "    Key_Base64      = $K" "    HMAC_Key_Base64 = $H" \
    "    Open_Ports      = tcp/22" "    Cmd_Timeout     = 3" \
    "    Start_Command   = iptables -I INPUT 1 -s %IP% -p %PROTO% --dport %PORT% -m comment --comment ssh-spa -j ACCEPT" \
    "    Stop_Command    = iptables -D INPUT -s %IP% -p %PROTO% --dport %PORT% -m comment --comment ssh-spa -j ACCEPT" \
    >"$WORK/knockd.conf"
start_daemon "$WORK/knockd.conf"
spa "$CLI" -A tcp/22 -a 192.0.2.2
expect "latchkey daemon's SPA door opens tcp/22 for the real fwknop client" \
    wait_for 3 tcp_open "$CLI" 192.0.2.1 22
expect "... with the door's own command" has_rule ssh-spa 192.0.2.2
expect "... not for 192.0.2.3" refused "$CLI2" 192.0.2.1 22
expect "... and closes after Cmd_Timeout" closed_within 6
resend "$CLI2" "$WORK/last.spa"
expect "a replay to the knockd.conf door is refused" seen 1 'ssh-spa: SPA refused: replay'
spa "$CLI" -A tcp/22 -s
expect "a new door requires a real address by default (-s refused)" \
    seen 1 'SPA refused: need-source-address'

# A flood: garbage that passes the kernel pre-check, and mutated copies of a valid packet.
rss() { awk '/^VmRSS/ {print $2}' "/proc/$LK_PID/status"; }
rss0=$(rss)
ip netns exec "$CLI2" python3 -c '
import os, random, socket, sys
good = open(sys.argv[1], "rb").read().strip()
alpha = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rnd = random.Random(7)
for i in range(20000):
    if i % 2:
        p = bytearray(good)
        p[rnd.randrange(len(p))] = rnd.choice(alpha)
    else:
        p = b"/" + bytes(rnd.choice(alpha) for _ in range(rnd.randrange(139, 400)))
    s.sendto(bytes(p), ("192.0.2.1", 62201))' "$WORK/last.spa"
sleep 1
rss1=$(rss)
expect "a flood of 20000 garbage and mutated packets leaves the daemon alive" kill -0 "$LK_PID"
expect "... its memory flat (VmRSS $rss0 -> $rss1 kB)" [ "$((rss1 - rss0))" -le 64 ]
spa "$CLI" -A tcp/22 -a 192.0.2.2
expect "... and a valid packet still opens" wait_for 3 tcp_open "$CLI" 192.0.2.1 22
stop_daemon
expect "the daemon exited cleanly" [ "$LK_RC" = 0 ]
exit 0
