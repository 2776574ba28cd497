#!/bin/sh
# latchkey's fw4 integration with real nft in a network namespace: the nftables.d includes load
# into a fw4-like table, `fw open/close` put timed elements in and out, elements expire in the
# kernel by themselves, `fw4 reload`/restart empties the sets and the firewall include puts live
# grants back with the time they had left; and the iptables + ipset fallback.
# Root; namespaces only (lib.sh), never the host's firewall.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/openwrt-lib.sh"
e2e_setup owfw
export LATCHKEY_RUN=$WORK/run LATCHKEY_FIREWALL=fw4
FW() { in_srv sh "$LATCHKEY_FWSH" "$@" 2>>"$WORK/fw.log"; }
is() { # DESCRIPTION ACTUAL EXPECTED
	if [ "$2" = "$3" ]; then e2e_pass "$1"; else e2e_fail "$1: got '$2', want '$3'"; fi
}

if fw4_load "$SRV" eth0 lan0 2> "$WORK/nft.err"; then e2e_pass "includes load into a fw4-like table"
else e2e_fail "includes do not load: $(cat "$WORK/nft.err")"; exit 1; fi

FW open 192.0.2.2 tcp 22 20
is "open: router port element" "$(elements "$SRV" latchkey_in4)" "192.0.2.2 . tcp . 22"
FW open 2001:db8::2 tcp 22 20
is "open: IPv6 router port element" "$(elements "$SRV" latchkey_in6)" "2001:db8::2 . tcp . 22"
FW open 192.0.2.2 tcp 2222 20 198.18.0.10 22 2001:db8:1::10
is "open forward: DNAT map element" "$(elements "$SRV" latchkey_dnat4)" "192.0.2.2 . tcp . 2222 : 198.18.0.10 . 22"
is "open forward: forward element" "$(elements "$SRV" latchkey_fwd4)" "192.0.2.2 . 198.18.0.10 . tcp . 22"
FW open 2001:db8::2 tcp 2222 20 198.18.0.10 22 2001:db8:1::10
is "open forward, IPv6 knocker: forwarded without NAT" "$(elements "$SRV" latchkey_fwd6)" "2001:db8::2 . 2001:db8:1::10 . tcp . 22"

sleep 2
before=$(expires "$SRV" latchkey_in4)
FW open 192.0.2.2 tcp 22 20
after=$(expires "$SRV" latchkey_in4)
is "open again: still one element" "$(elements "$SRV" latchkey_in4)" "192.0.2.2 . tcp . 22"
[ "${after%%.*}" -gt "${before%%.*}" ] && e2e_pass "open again: timeout refreshed ($before s -> $after s)" || e2e_fail "timeout not refreshed ($before -> $after)"

FW close 192.0.2.2 tcp 22
is "close: element gone" "$(elements "$SRV" latchkey_in4)" ""
FW close 192.0.2.2 tcp 22 && e2e_pass "close of a closed door is fine" || e2e_fail "second close failed"
FW close 192.0.2.2 tcp 2222 198.18.0.10 22 2001:db8:1::10
is "close forward: map element gone" "$(elements "$SRV" latchkey_dnat4)" ""
is "close forward: forward element gone" "$(elements "$SRV" latchkey_fwd4)" ""
is "close forward: grant record gone" "$(awk '{print $3}' "$LATCHKEY_RUN/grants" | sort | tr '\n' ' ')" "2001:db8::2 2001:db8::2 "

# kernel-side expiry: no close needed
FW open 192.0.2.9 udp 53 2
is "short grant present" "$(elements "$SRV" latchkey_in4)" "192.0.2.9 . udp . 53"
sleep 3
is "short grant expired in the kernel by itself" "$(elements "$SRV" latchkey_in4)" ""

# fw4 reload (flush table + redefine: rules go, set elements stay) and fw4 restart (table deleted:
# sets come back empty). After both, the script include (firewall.include -> `fw restore`) must
# leave exactly the live grants, with the time they had left.
grep -q '/usr/share/latchkey/fw restore' "$OWRT_FILES/firewall.include" && e2e_pass "firewall include runs fw restore" || e2e_fail "firewall.include"
FW open 192.0.2.2 tcp 22 30
FW open 192.0.2.2 tcp 2222 30 198.18.0.10 22
FW open 192.0.2.7 tcp 22 1
sleep 3
fw4_load "$SRV" eth0 lan0
FW restore
is "fw4 reload + restore: live router-port grant there, expired one not" "$(elements "$SRV" latchkey_in4)" "192.0.2.2 . tcp . 22"
is "fw4 reload + restore: live forward there" "$(elements "$SRV" latchkey_dnat4)" "192.0.2.2 . tcp . 2222 : 198.18.0.10 . 22"
left=$(expires "$SRV" latchkey_in4); left=${left%%.*}
[ "$left" -le 27 ] && [ "$left" -ge 20 ] && e2e_pass "keeps the time left ($left s of 30)" || e2e_fail "expiry $left s (want 20..27)"
grep -q 192.0.2.7 "$LATCHKEY_RUN/grants" && e2e_fail "expired grant still recorded" || e2e_pass "expired grant dropped from the record"
fw4_restart "$SRV" eth0 lan0
is "fw4 restart empties the sets" "$(elements "$SRV" latchkey_in4)$(elements "$SRV" latchkey_fwd4)" ""
FW restore
is "fw4 restart + restore: router port back" "$(elements "$SRV" latchkey_in4)" "192.0.2.2 . tcp . 22"
is "fw4 restart + restore: forward back" "$(elements "$SRV" latchkey_fwd4)" "192.0.2.2 . 198.18.0.10 . tcp . 22"
left=$(expires "$SRV" latchkey_fwd4); left=${left%%.*}
[ "$left" -le 27 ] && [ "$left" -ge 18 ] && e2e_pass "restart + restore keeps the time left ($left s)" || e2e_fail "expiry after restart $left s"

FW flush
is "flush empties every set" "$(elements "$SRV" latchkey_in4)$(elements "$SRV" latchkey_dnat4)$(elements "$SRV" latchkey_fwd4)" ""
[ ! -e "$LATCHKEY_RUN/grants" ] && e2e_pass "flush forgets grants" || e2e_fail "grants left after flush"

FW open '192.0.2.2;reboot' tcp 22 5 && e2e_fail "accepted a bad address" || e2e_pass "bad address refused"
FW open 192.0.2.2 icmp 22 5 && e2e_fail "accepted a bad protocol" || e2e_pass "bad protocol refused"

# fw setup (the init script, before the daemon starts): when fw4 runs without latchkey's sets (the
# package was installed on a running router; fw4 reads nftables.d only when it reloads), it has fw4
# reload once; with the sets there it leaves fw4 alone; with no fw4 table it starts nothing.
fw4_ruleset eth0 lan0 > "$WORK/fw4.nft"
printf '#!/bin/sh\necho "$*" >> %s/fw4.calls\nnft -f %s/fw4.nft\n' "$WORK" "$WORK" > "$WORK/fw4"; chmod +x "$WORK/fw4"
in_srv nft delete table inet fw4
in_srv nft add table inet fw4
LATCHKEY_FW4=$WORK/fw4 FW setup
is "setup: fw4 without latchkey's sets is reloaded once" "$(cat "$WORK/fw4.calls" 2>/dev/null)" "-q reload"
is "setup: then the sets are there" "$(in_srv nft list set inet fw4 latchkey_in4 >/dev/null 2>&1 && echo yes)" yes
LATCHKEY_FW4=$WORK/fw4 FW setup
is "setup: sets present, fw4 left alone" "$(wc -l < "$WORK/fw4.calls")" 1
in_srv nft delete table inet fw4
LATCHKEY_FW4=$WORK/fw4 FW setup
is "setup: no fw4 table (firewall off), no reload" "$(wc -l < "$WORK/fw4.calls")" 1
fw4_load "$SRV" eth0 lan0

# --- iptables + ipset fallback (OpenWrt 21.02 / plain Linux), in the client namespace ------------
if command -v ipset >/dev/null && command -v iptables >/dev/null; then
	export LATCHKEY_FIREWALL=iptables
	FWC() { in_cli sh "$LATCHKEY_FWSH" "$@" 2>>"$WORK/fw.log"; }
	FWC setup && e2e_pass "iptables: setup" || e2e_fail "iptables: setup"
	FWC setup
	is "iptables: setup is idempotent (one jump)" "$(in_cli iptables -S INPUT | grep -c latchkey_input)" 1
	FWC open 192.0.2.1 tcp 22 20
	in_cli ipset test latchkey_in4 192.0.2.1,tcp:22 2>/dev/null && e2e_pass "iptables: router port in ipset" || e2e_fail "iptables: not in ipset"
	FWC open 192.0.2.1 tcp 2222 20 198.18.0.10 22
	in_cli ipset test latchkey_dnat4 192.0.2.1,tcp:2222 2>/dev/null && in_cli ipset test latchkey_fwd4 192.0.2.1,tcp:22,198.18.0.10 2>/dev/null \
		&& e2e_pass "iptables: forward in ipsets" || e2e_fail "iptables: forward not in ipsets"
	in_cli iptables -t nat -S latchkey_dstnat | grep -q -- "--to-destination 198.18.0.10:22" && e2e_pass "iptables: DNAT rule made" || e2e_fail "iptables: no DNAT rule"
	FWC open 192.0.2.1 tcp 2222 20 198.18.0.10 22
	is "iptables: DNAT rule made once" "$(in_cli iptables -t nat -S latchkey_dstnat | grep -c DNAT)" 1
	FWC close 192.0.2.1 tcp 22
	in_cli ipset test latchkey_in4 192.0.2.1,tcp:22 2>/dev/null && e2e_fail "iptables: close left it" || e2e_pass "iptables: close"
	FWC open 192.0.2.5 tcp 22 1; sleep 2
	in_cli ipset test latchkey_in4 192.0.2.5,tcp:22 2>/dev/null && e2e_fail "iptables: ipset timeout did not expire" || e2e_pass "iptables: ipset entry expired by itself"
	# package removal: every chain, jump and ipset goes
	FWC teardown
	left=$( (in_cli iptables -S; in_cli ip6tables -S; in_cli iptables -t nat -S; in_cli ipset list -n) 2>/dev/null | grep latchkey)
	is "iptables: teardown leaves no chain, jump or ipset" "$left" ""
else
	echo "skip owfw: iptables/ipset not installed"
fi
[ "$E2E_FAILS" -eq 0 ] || { echo "--- fw log"; cat "$WORK/fw.log"; }
