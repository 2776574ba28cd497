#!/bin/sh
# End to end on an OpenWrt-shaped router, three namespaces:
#   phone  (lk-owk-c,  192.0.2.2)  --wan-- router (lk-owk-s, 192.0.2.1 / 198.18.0.1) --lan-- nas (lk-owk-l, 198.18.0.10)
#   phone2 (lk-owk-c2, 192.0.2.3) on the wan side too, never knocks.
# The router has a fw4-like table with latchkey's nftables includes, and runs the daemon on a
# config generated from UCI by the package's own generator. A knock opens WAN port 2222 ->
# nas:22 for the phone only; it closes at open_time; a re-knock during the grant renews the
# element's timeout (the door closes open_time after the re-knock, not after the first knock);
# and it still closes on time when the daemon is killed with SIGKILL in the middle of the grant.
# An SPA door from UCI opens the router's 2200; an fwknopd access.conf stanza imported by the
# generator (option import_fwknopd) opens 2201 for a packet from Debian's real fwknop client
# (latchkey knock --spa when it is not installed), through the same fw4 set.
# Root; namespaces only (lib.sh), never the host's firewall.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/openwrt-lib.sh"
[ -x "$LATCHKEY" ] || { echo "skip owk: no $LATCHKEY"; exit 0; }
OPEN=4
e2e_setup owk
e2e_host c2 192.0.2.3 2001:db8::3
PH2=$HOST_NS
LAN=$E2E_NS-owk-l
export LATCHKEY_RUN=$WORK/run LATCHKEY_FIREWALL=fw4

# the LAN side: router lan0 198.18.0.1/24 <-> nas eth0 198.18.0.10/24, nas routes via the router
ip netns add "$LAN"
ip link add lan0 netns "$SRV" type veth peer name eth0 netns "$LAN"
in_srv ip addr add 198.18.0.1/24 dev lan0; in_srv ip link set lan0 up
ip -n "$LAN" link set lo up; ip -n "$LAN" addr add 198.18.0.10/24 dev eth0; ip -n "$LAN" link set eth0 up
ip -n "$LAN" route add default via 198.18.0.1
in_srv sysctl -qw net.ipv4.ip_forward=1
# listener NS PORT: a TCP service in NS (stands in for sshd/dropbear)
listener() {
	ip netns exec "$1" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept(); c.close()
' "$2" &
	E2E_PIDS="${E2E_PIDS:-} $!"
}
listener "$LAN" 22
fw4_load "$SRV" eth0 lan0 || { e2e_fail "fw4-like table"; exit 1; }

# An SPA door on the router's own port 2200 (a listener stands in for dropbear), keys from
# `latchkey keygen`.
listener "$SRV" 2200
KEYS=$("$LATCHKEY" keygen)
SPA_KEY=$(echo "$KEYS" | awk '/^KEY_BASE64/ {print $2}')
SPA_HMAC=$(echo "$KEYS" | awk '/^HMAC_KEY_BASE64/ {print $2}')

# fwknopd's own files, as an OpenWrt fwknopd user has them: SPA on UDP 40001, a CMD_CYCLE stanza
# the generator skips (the rest still starts), then the stanza for the router's 2201.
listener "$SRV" 2201
KEYS=$("$LATCHKEY" keygen)
FW_KEY=$(echo "$KEYS" | awk '/^KEY_BASE64/ {print $2}')
FW_HMAC=$(echo "$KEYS" | awk '/^HMAC_KEY_BASE64/ {print $2}')
mkdir -p "$WORK/fwknop"
printf '%s\n' "PCAP_FILTER udp port 40001" "ENABLE_IPT_FORWARDING Y" > "$WORK/fwknop/fwknopd.conf"
cat > "$WORK/fwknop/access.conf" <<ACC
SOURCE                  ANY
KEY_BASE64              $FW_KEY
HMAC_KEY_BASE64         $FW_HMAC
CMD_CYCLE_OPEN          /usr/sbin/nft add element inet fw4 latchkey_in4 { \$IP . tcp . 2201 }
CMD_CYCLE_CLOSE         NONE

SOURCE                  ANY
KEY_BASE64              $FW_KEY
HMAC_KEY_BASE64         $FW_HMAC
OPEN_PORTS              tcp/2201
FW_ACCESS_TIMEOUT       $OPEN
REQUIRE_SOURCE_ADDRESS  Y
ACC

# UCI -> daemon config with the package's generator (stand-in functions.sh for config_load)
mkdir -p "$WORK/config"
cat > "$WORK/config/latchkey" <<UCI
config latchkey 'main'
	option enabled '1'
	option device 'eth0'
	option import_fwknopd '1'

config door 'nas'
	list sequence '7100'
	list sequence '7200:udp'
	list sequence '7300'
	option seq_timeout '10'
	option open_time '$OPEN'
	option port '2222'
	option dest_ip '198.18.0.10'
	option dest_port '22'

config spa_door 'ssh_spa'
	option key_base64 '$SPA_KEY'
	option hmac_key_base64 '$SPA_HMAC'
	list open_ports 'tcp/2200'
	option open_time '$OPEN'
UCI
(
	. "$E2E_ROOT/tests/openwrt/stubs/functions.sh"
	# The daemon knows the helper by its path (it runs `.../usr/share/latchkey/fw open` again
	# to extend a grant): the package's file, called through a path that ends the same way.
	mkdir -p "$WORK/usr/share/latchkey"
	ln -s "$LATCHKEY_FWSH" "$WORK/usr/share/latchkey/fw"
	LATCHKEY_FW=$WORK/usr/share/latchkey/fw
	# shellcheck disable=SC2034 # read by uci.sh: fwknopd's files, and the daemon for its checks
	LATCHKEY_FWKNOP_DIR=$WORK/fwknop LATCHKEY_BIN=$LATCHKEY
	. "$OWRT_FILES/uci.sh"
	UCI_CONFIG_DIR=$WORK/config config_load latchkey
	latchkey_generate "$WORK/latchkey.conf"
) 2> "$WORK/generator.err" || { e2e_fail "generator: $(cat "$WORK/generator.err")"; exit 1; }
grep -q "^\[fwknop_2\]" "$WORK/latchkey.conf" && ! grep -q "^\[fwknop_1\]" "$WORK/latchkey.conf" \
	&& e2e_pass "generator imports the access.conf stanza it can serve as [fwknop_2]" || e2e_fail "no [fwknop_2] (or a [fwknop_1])"
grep -q "stanza 1 (line 1) skipped: CMD_CYCLE_OPEN (line 4)" "$WORK/generator.err" \
	&& e2e_pass "... and names the CMD_CYCLE stanza it skips" || e2e_fail "no message for the skipped stanza: $(cat "$WORK/generator.err")"
"$LATCHKEY" check -c "$WORK/latchkey.conf" > /dev/null && e2e_pass "generated config passes latchkey check" || e2e_fail "latchkey check"

start_daemon() {
	# `ip netns exec` itself, not the in_srv function: a backgrounded function is a subshell,
	# and $! would be its PID, so the SIGKILL below would miss the daemon.
	ip netns exec "$SRV" "$LATCHKEY" daemon -i eth0 -c "$WORK/latchkey.conf" -v >> "$WORK/daemon.log" 2>&1 &
	DPID=$!
	sleep 0.5
}
knock() { in_cli "$LATCHKEY" knock -d 100 192.0.2.1 7100 7200:udp 7300 >/dev/null 2>&1; }
closed() { ! tcp_open "$1" 192.0.2.1 2222; }

start_daemon
closed "$CLI" && e2e_pass "before knocking: 2222 closed for the phone" || e2e_fail "2222 open before any knock"
knock
t0=$(date +%s)
wait_for 2 tcp_open "$CLI" 192.0.2.1 2222 && e2e_pass "knock opens 2222 -> nas:22 for the phone" || e2e_fail "door did not open"
closed "$PH2" && e2e_pass "phone2 (no knock) still closed" || e2e_fail "phone2 got in"
tcp_open "$CLI" 198.18.0.10 22 && e2e_fail "LAN host reachable directly" || e2e_pass "only the forwarded port, not the LAN host directly"
sleep $(( OPEN - 2 - ($(date +%s) - t0) > 0 ? OPEN - 2 - ($(date +%s) - t0) : 0 ))
tcp_open "$CLI" 192.0.2.1 2222 && e2e_pass "still open shortly before open_time" || e2e_fail "closed too early"
sleep $(( t0 + OPEN + 1 - $(date +%s) > 0 ? t0 + OPEN + 1 - $(date +%s) : 0 ))
closed "$CLI" && e2e_pass "closed after open_time (${OPEN}s)" || e2e_fail "still open after open_time"

# A re-knock 2 s into the grant runs `fw open` again, which renews the element's timeout.
knock
wait_for 2 tcp_open "$CLI" 192.0.2.1 2222 && e2e_pass "re-knock: a knock opens again" || e2e_fail "knock did not open"
sleep 2
knock
wait_for 2 grep -q "nas: already open, extended by $OPEN s; running its start command again" "$WORK/daemon.log" \
	&& e2e_pass "... a re-knock 2 s later extends the grant and runs fw open again" || e2e_fail "re-knock: no extension"
sleep 2.3
tcp_open "$CLI" 192.0.2.1 2222 && e2e_pass "... still open past the first knock's open_time" || e2e_fail "re-knock: closed at the first knock's open_time"
wait_for 3 closed "$CLI" && e2e_pass "... closed open_time after the re-knock" || e2e_fail "re-knock: still open"

# SIGKILL mid-grant: no stop command will ever run; the kernel's element timeout closes it
knock
t0=$(date +%s)
wait_for 2 tcp_open "$CLI" 192.0.2.1 2222 && e2e_pass "second knock opens again" || e2e_fail "second knock"
kill -9 "$DPID"; wait "$DPID" 2>/dev/null
if ip netns pids "$SRV" | xargs -r -I{} cat /proc/{}/comm 2>/dev/null | grep -qx latchkey; then
	e2e_fail "a latchkey daemon still runs after SIGKILL"
else
	e2e_pass "daemon killed with SIGKILL mid-grant"
fi
tcp_open "$CLI" 192.0.2.1 2222 && e2e_pass "grant survives the daemon's death until its time" || e2e_fail "closed at once by the kill"
sleep $(( t0 + OPEN + 1 - $(date +%s) > 0 ? t0 + OPEN + 1 - $(date +%s) : 0 ))
closed "$CLI" && e2e_pass "closed on time although the daemon was dead" || e2e_fail "still open after the daemon died"
[ -z "$(elements "$SRV" latchkey_dnat4)$(elements "$SRV" latchkey_fwd4)" ] && e2e_pass "no element left behind" || e2e_fail "elements left: $(elements "$SRV" latchkey_dnat4)"
grep -q "OPEN SESAME\|open" "$WORK/daemon.log" && e2e_pass "daemon logged the opening" || e2e_fail "no opening in the daemon log"

# The UCI SPA door: one packet from `latchkey knock --spa` opens the router's 2200 for the phone
# only, through fw4's set, and the element's own timeout closes it.
start_daemon
spa() {
	ip netns exec "$1" "$LATCHKEY" knock --spa -A tcp/2200 -a "$2" --key-base64-rijndael "$SPA_KEY" \
		--key-base64-hmac "$SPA_HMAC" 192.0.2.1 >/dev/null 2>&1
}
refused "$CLI" 192.0.2.1 2200 && e2e_pass "SPA door: 2200 closed before the packet" || e2e_fail "2200 open before SPA"
spa "$CLI" 192.0.2.2
t0=$(date +%s)
wait_for 2 tcp_open "$CLI" 192.0.2.1 2200 && e2e_pass "SPA door from UCI: one packet opens 2200 for the phone" || e2e_fail "SPA packet opened nothing"
refused "$PH2" 192.0.2.1 2200 && e2e_pass "SPA door: phone2 still closed" || e2e_fail "SPA door let phone2 in"
elements "$SRV" latchkey_in4 | grep -q "192.0.2.2 . tcp . 2200" && e2e_pass "SPA grant is an element of fw4's latchkey_in4" \
	|| e2e_fail "no latchkey_in4 element: $(elements "$SRV" latchkey_in4)"
sleep $(( t0 + OPEN + 1 - $(date +%s) > 0 ? t0 + OPEN + 1 - $(date +%s) : 0 ))
refused "$CLI" 192.0.2.1 2200 && e2e_pass "SPA door closed after open_time" || e2e_fail "SPA door still open after open_time"
OTHER=$("$LATCHKEY" keygen)
ip netns exec "$PH2" "$LATCHKEY" knock --spa -A tcp/2200 -a 192.0.2.3 \
	--key-base64-rijndael "$(echo "$OTHER" | awk '/^KEY_BASE64/ {print $2}')" \
	--key-base64-hmac "$(echo "$OTHER" | awk '/^HMAC_KEY_BASE64/ {print $2}')" 192.0.2.1 >/dev/null 2>&1
sleep 1
refused "$PH2" 192.0.2.1 2200 && e2e_pass "SPA door: a packet with other keys opens nothing" || e2e_fail "wrong keys opened the SPA door"

# The imported stanza: one packet to UDP 40001 opens the router's 2201 for the phone only.
fwknop_spa() { # NS -a ADDR | NS -s: -A tcp/2201 to 192.0.2.1:40001 with the stanza's keys
	ns=$1
	shift
	if command -v fwknop >/dev/null; then
		ip netns exec "$ns" env HOME="$WORK" fwknop --no-rc-file --no-save-args -D 192.0.2.1 -p 40001 \
			-A tcp/2201 "$@" --use-hmac --key-base64-rijndael "$FW_KEY" --key-base64-hmac "$FW_HMAC" >>"$WORK/fwknop.out" 2>&1
	else
		ip netns exec "$ns" "$LATCHKEY" knock --spa -p 40001 -A tcp/2201 "$@" --key-base64-rijndael "$FW_KEY" \
			--key-base64-hmac "$FW_HMAC" 192.0.2.1 >>"$WORK/fwknop.out" 2>&1
	fi
}
CLIENT=$(command -v fwknop >/dev/null && echo "the fwknop client" || echo "latchkey knock --spa")
refused "$CLI" 192.0.2.1 2201 && e2e_pass "imported stanza: 2201 closed before the packet" || e2e_fail "2201 open before SPA"
fwknop_spa "$CLI" -a 192.0.2.2
t0=$(date +%s)
wait_for 2 tcp_open "$CLI" 192.0.2.1 2201 && e2e_pass "imported stanza: one packet from $CLIENT opens 2201 for the phone" \
	|| e2e_fail "the imported stanza opened nothing: $(tail -n 3 "$WORK/fwknop.out")"
grep -q "fwknop_2: SPA accepted" "$WORK/daemon.log" && e2e_pass "... through the door [fwknop_2]" || e2e_fail "no 'fwknop_2: SPA accepted' in the daemon log"
refused "$PH2" 192.0.2.1 2201 && e2e_pass "imported stanza: phone2 still closed" || e2e_fail "imported stanza let phone2 in"
elements "$SRV" latchkey_in4 | grep -q "192.0.2.2 . tcp . 2201" && e2e_pass "imported stanza's grant is an element of fw4's latchkey_in4" \
	|| e2e_fail "no latchkey_in4 element for 2201: $(elements "$SRV" latchkey_in4)"
sleep $(( t0 + OPEN + 1 - $(date +%s) > 0 ? t0 + OPEN + 1 - $(date +%s) : 0 ))
refused "$CLI" 192.0.2.1 2201 && e2e_pass "imported stanza: closed after FW_ACCESS_TIMEOUT" || e2e_fail "2201 still open after FW_ACCESS_TIMEOUT"
fwknop_spa "$CLI" -s
wait_for 2 grep -q "fwknop_2: SPA refused: need-source-address" "$WORK/daemon.log" && refused "$CLI" 192.0.2.1 2201 && e2e_pass "imported stanza: REQUIRE_SOURCE_ADDRESS Y refuses a packet asking for 0.0.0.0 (-s)" \
	|| e2e_fail "a 0.0.0.0 packet opened 2201"
kill "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null
[ "$E2E_FAILS" -eq 0 ] || { echo "--- daemon log"; tail -n 30 "$WORK/daemon.log"; }
