#!/bin/bash
# latchkey's own firewall action (an SPA door without Start_Command) on a host with nftables
# but no iptables: the daemon runs with PATH=$WORK/nftbin:/usr/bin, where nftbin holds only
# nft (on Debian iptables, ip6tables and nft all live in /usr/sbin), so its commands take the
# nft backend. Knocks come from `latchkey knock --spa`. Shown:
#   a. input chains with policy drop in two tables (inet filter, ip extra): the grant puts
#      one accept rule first in each and the element in each table's latchkey4 set; tcp/22
#      connects from the knocker only and closes after the access time (element gone);
#      a daemon killed with SIGKILL leaves an element the kernel times out by itself, and
#      the next start's close of that grant succeeds although the element is gone;
#   e. a second packet while the grant is open runs the open again, which renews the element's
#      kernel timeout: the door stays open past the first grant's end; a third asking for more
#      time (-f 5) extends the same grant to its later end; one close, at that end;
#   c. an IPv6 knocker (-s, the packet's source): latchkey6 in the inet table only;
#   b. no input chain drops: latchkey's own table inet latchkey holds the element;
#   d. neither iptables nor nft: the start fails with a message and its exit status, and
#      the daemon stays up.
# Root; namespaces only (lib.sh), never the host's firewall.
. "$(dirname "$0")/lib.sh"
command -v nft >/dev/null || { echo "skip nft: nft not installed (apt-get install -y nftables)"; exit 0; }
[ -x "$LATCHKEY" ] || { echo "FAIL nft: no binary at $LATCHKEY (cargo build --release)"; exit 1; }
if [ -x /usr/share/latchkey/fw ]; then
    echo "skip nft: /usr/share/latchkey/fw is installed here, and the firewall action prefers it"
    exit 0
fi
if found=$(env PATH=/usr/bin sh -c 'command -v iptables || command -v ip6tables || command -v nft'); then
    echo "skip nft: $found is in /usr/bin, so iptables/nft cannot be hidden from the daemon"
    exit 0
fi

e2e_setup nft
e2e_host c2 192.0.2.3 2001:db8::3
CLI2=$HOST_NS
listen_tcp 22

K=W71GMIGS9Fvy0fWjHOUmThOiYm8VRsnfi7ctLoZnCBI=
H=hmfIlOFc+JJkhrxebwuC3cU8GYXcxvOkzt5VxRp0Ry2erOnlGpB0PY/tzxL+kjIHqiIX977kYCFK+3i9MT9now==
printf '%s\n' "[options]" "    StateFile = $WORK/state" "[ssh-spa]" "    SPA_Port = 62201" \
    "    Key_Base64 = $K" "    HMAC_Key_Base64 = $H" "    Open_Ports = tcp/22" \
    "    Cmd_Timeout = 3" "    Require_Source_Address = no" >"$WORK/knockd.conf"

# The daemon through a wrapper that sets its PATH (start_daemon runs "$LATCHKEY" daemon ...;
# the wrapper execs, so LK_PID is the daemon's).
mkdir -p "$WORK/nftbin"
ln -s "$(command -v nft)" "$WORK/nftbin/nft"
REAL=$LATCHKEY
# daemon_with PATH: (re)start the daemon with that PATH for its commands.
daemon_with() {
    printf '#!/bin/sh\nPATH=%s exec "%s" "$@"\n' "$1" "$REAL" >"$WORK/latchkey-path"
    chmod +x "$WORK/latchkey-path"
    LATCHKEY=$WORK/latchkey-path start_daemon "$WORK/knockd.conf"
}

# spa_from NS ADDR [ARGS...]: an SPA packet for tcp/22 from NS to ADDR.
spa_from() {
    ns=$1 to=$2
    shift 2
    ip netns exec "$ns" "$REAL" knock --spa -A tcp/22 --key-base64-rijndael "$K" \
        --key-base64-hmac "$H" "$@" "$to" >>"$WORK/knock.out" 2>&1
}
# elements FAMILY TABLE SET: the set's elements, one per line, without timeouts.
elements() {
    in_srv nft -j list set "$1" "$2" "$3" 2>/dev/null | python3 -c '
import json, sys
for o in json.load(sys.stdin)["nftables"]:
    for e in o.get("set", {}).get("elem", []):
        k = e["elem"]["val"] if "elem" in e else e
        print(" . ".join(str(x) for x in k["concat"]))'
}
has_elem() { [ "$(elements "$1" "$2" "$3")" = "$4" ]; }
no_elem() { [ -z "$(elements "$1" "$2" "$3")" ]; }
# seen N PATTERN: the daemon logged PATTERN (grep -E) at least N times (waits up to 3 s).
seen() { wait_for 3 sh -c "[ \$(grep -Ec -- '$2' '$WORK/daemon.out') -ge $1 ]"; }
count() { grep -Ec -- "$1" "$WORK/daemon.out"; }
# expires_ms FAMILY TABLE SET: milliseconds left on the set's first element (-1: none).
expires_ms() {
    in_srv nft list set "$1" "$2" "$3" 2>/dev/null | python3 -c '
import re, sys
m = re.search(r"expires (?:(\d+)s)?(?:(\d+)ms)?", sys.stdin.read())
print(int(m.group(1) or 0) * 1000 + int(m.group(2) or 0) if m else -1)'
}
now_ms() { date +%s%3N; }
# sleep_until MS: sleeps until the clock reads MS (now_ms).
sleep_until() { sleep "$(python3 -c "print(max(0, ($1 - $(now_ms)) / 1000))")"; }

# --- a. two tables whose input chains drop -------------------------------------------------
in_srv nft -f - <<'EOF'
table inet filter {
    chain input {
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        iif lo accept
        meta l4proto ipv6-icmp accept
        tcp dport 22 reject with tcp reset
    }
}
table ip extra {
    chain input {
        type filter hook input priority 10; policy drop;
        ct state established,related accept
    }
}
EOF
daemon_with "$WORK/nftbin:/usr/bin"
expect "tcp/22 is closed before any SPA" refused "$CLI" 192.0.2.1 22
spa_from "$CLI" 192.0.2.1 -a 192.0.2.2
expect "an SPA packet opens tcp/22 for 192.0.2.2 through nft (no iptables on PATH)" \
    wait_for 3 tcp_open "$CLI" 192.0.2.1 22
expect "... not for 192.0.2.3" refused "$CLI2" 192.0.2.1 22
expect "... the element is in inet filter's set latchkey4" \
    has_elem inet filter latchkey4 "192.0.2.2 . tcp . 22"
expect "... and in ip extra's (every input chain that drops)" \
    has_elem ip extra latchkey4 "192.0.2.2 . tcp . 22"
expect "... with the grant's timeout, in the kernel" \
    sh -c "ip netns exec $SRV nft list set inet filter latchkey4 | grep -q '192.0.2.2 . tcp . 22 timeout 3s'"
rule='ip saddr . meta l4proto . th dport @latchkey4 accept'
expect "... accepted by one rule first in each chain" sh -c "
    [ \"\$(ip netns exec $SRV nft list chain inet filter input | sed -n 4p | xargs)\" = '$rule' ] &&
    [ \"\$(ip netns exec $SRV nft list chain ip extra input | sed -n 4p | xargs)\" = '$rule' ] &&
    [ \$(ip netns exec $SRV nft list ruleset | grep -c '@latchkey4') = 2 ]"
expect "... and no table of latchkey's own" sh -c "! ip netns exec $SRV nft list table inet latchkey 2>/dev/null"
expect "the command log shows the nft branch's arguments" \
    logged "running command: .*set -- open 192.0.2.2 tcp 22 3; "
expect "it closes after the access time (3 s)" wait_for 6 refused "$CLI" 192.0.2.1 22
expect "... the element is gone from both sets" \
    wait_for 3 sh -c "[ -z \"\$(ip netns exec $SRV nft list set inet filter latchkey4 | grep 192.0.2.2)\" ] &&
        [ -z \"\$(ip netns exec $SRV nft list set ip extra latchkey4 | grep 192.0.2.2)\" ]"
expect "... and the daemon's open and close both exited with status 0" \
    sh -c "[ \$(grep -c 'command exited with status 0' '$WORK/daemon.out') -ge 2 ] &&
        ! grep -q 'non-zero status' '$WORK/daemon.out'"

# --- e. a second packet while the grant is open (the two drop chains of a) -------------------
n=$(count 'command exited with status 0')
closes=$(count 'running command: .*set -- close 192.0.2.2 tcp 22; ')
spa_from "$CLI" 192.0.2.1 -a 192.0.2.2
t0=$(now_ms)
expect "re-grant: a packet opens tcp/22 for 3 s" wait_for 3 tcp_open "$CLI" 192.0.2.1 22
sleep_until $((t0 + 1500))
e1=$(expires_ms inet filter latchkey4)
spa_from "$CLI" 192.0.2.1 -a 192.0.2.2
expect "... a second packet 1.5 s later extends the grant and runs the open again" \
    seen 1 'ssh-spa tcp/22: already open, extended by 3 s; running its start command again'
expect "... which exits with status 0" seen $((n + 2)) 'command exited with status 0'
e2=$(expires_ms inet filter latchkey4)
expect "... the element's kernel timeout is renewed (expires ${e1} ms -> ${e2} ms)" \
    [ "$e1" -gt 0 ] && [ "$e2" -gt $((e1 + 1000)) ]
sleep_until $((t0 + 3700))
expect "... tcp/22 is still open past the first grant's end (3 s)" tcp_open "$CLI" 192.0.2.1 22
spa_from "$CLI" 192.0.2.1 -a 192.0.2.2 -f 5
t2=$(now_ms)
expect "... a third packet asking for 5 s extends the same grant to its later end" \
    seen 1 'ssh-spa tcp/22: already open, extended by 5 s; running its start command again'
expect "... and renews the element for 5 s" \
    wait_for 2 sh -c "ip netns exec $SRV nft list set inet filter latchkey4 | grep -q '192.0.2.2 . tcp . 22 timeout 5s'"
sleep_until $((t2 + 4300))
expect "... tcp/22 is still open 4.3 s after it" tcp_open "$CLI" 192.0.2.1 22
expect "... and closes at the extended end" wait_for 3 refused "$CLI" 192.0.2.1 22
expect "... the element is gone" wait_for 3 no_elem inet filter latchkey4
expect "... one grant: its close ran once, at the end" \
    sh -c "[ \$(grep -Ec -- 'running command: .*set -- close 192.0.2.2 tcp 22; ' '$WORK/daemon.out') = $((closes + 1)) ]"
expect "... and no command failed" sh -c "! grep -q 'non-zero status' '$WORK/daemon.out'"

spa_from "$CLI" 192.0.2.1 -a 192.0.2.2
expect "a second grant opens again" wait_for 3 tcp_open "$CLI" 192.0.2.1 22
expect "... without a second rule in the chain" \
    sh -c "[ \$(ip netns exec $SRV nft list chain inet filter input | grep -c '@latchkey4') = 1 ]"
stop_daemon KILL
expect "SIGKILL leaves the element behind" has_elem inet filter latchkey4 "192.0.2.2 . tcp . 22"
expect "... which the kernel times out by itself: tcp/22 closes" wait_for 6 refused "$CLI" 192.0.2.1 22
expect "... and the element is gone" wait_for 3 no_elem inet filter latchkey4
n=$(count 'command exited with status 0')
daemon_with "$WORK/nftbin:/usr/bin"
expect "the next start runs the lost grant's close (state file), which succeeds with the element gone" \
    seen $((n + 1)) 'command exited with status 0'
expect "... no command failed" sh -c "! grep -q 'non-zero status' '$WORK/daemon.out'"

# --- c. an IPv6 knocker --------------------------------------------------------------------
expect "IPv6: tcp/22 is closed before any SPA" refused "$CLI" 2001:db8::1 22
spa_from "$CLI" 2001:db8::1 -s
expect "IPv6: an SPA packet with -s opens tcp/22 for 2001:db8::2" \
    wait_for 3 tcp_open "$CLI" 2001:db8::1 22
expect "... not for 2001:db8::3" refused "$CLI2" 2001:db8::1 22
expect "... the element is in inet filter's latchkey6" \
    has_elem inet filter latchkey6 "2001:db8::2 . tcp . 22"
expect "... and the ip table got no IPv6 set" sh -c "! ip netns exec $SRV nft list set ip extra latchkey6 2>/dev/null"
expect "... it closes after the access time" wait_for 6 refused "$CLI" 2001:db8::1 22
expect "... the element is gone" wait_for 3 no_elem inet filter latchkey6
stop_daemon

# --- b. no input chain drops: latchkey's own table -----------------------------------------
in_srv nft flush ruleset
daemon_with "$WORK/nftbin:/usr/bin"
n=$(count 'command exited with status 0')
spa_from "$CLI" 192.0.2.1 -a 192.0.2.2
expect "no drop chain: the grant makes table inet latchkey with the element" \
    wait_for 3 has_elem inet latchkey latchkey4 "192.0.2.2 . tcp . 22"
expect "... and its input chain (priority filter - 1, policy accept) with the one rule" sh -c "
    ip netns exec $SRV nft list chain inet latchkey input | grep -q 'hook input priority filter - 1; policy accept;' &&
    [ \"\$(ip netns exec $SRV nft list chain inet latchkey input | sed -n 4p | xargs)\" = '$rule' ] &&
    [ \$(ip netns exec $SRV nft list ruleset | grep -c '@latchkey') = 1 ]"
expect "... the element is gone after the access time" wait_for 6 no_elem inet latchkey latchkey4
expect "... open and close exited with status 0" seen $((n + 2)) 'command exited with status 0'
stop_daemon

# --- d. neither iptables nor nft -----------------------------------------------------------
daemon_with /usr/bin
spa_from "$CLI" 192.0.2.1 -a 192.0.2.2
expect "without iptables and nft, the start fails with a message on stderr" \
    seen 1 'latchkey: cannot open tcp/22 for 192.0.2.2: no /usr/share/latchkey/fw, iptables or nft'
expect "... logged with its exit status" seen 1 'command returned non-zero status code \(127\)'
expect "... and as a failed start" seen 1 'start command failed; the door is not open'
sleep 0.5
expect "... and the daemon stays up" kill -0 "$LK_PID"
stop_daemon
expect "... and exits cleanly" [ "$LK_RC" = 0 ]
exit 0
