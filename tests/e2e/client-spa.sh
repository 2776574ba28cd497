#!/bin/bash
# End-to-end test of the SPA client, `latchkey knock --spa` and `latchkey keygen`, against
# Debian's real fwknopd (apt package fwknop-server), in iptables mode. Run as root:
#
#   LATCHKEY=target/release/latchkey tests/e2e/client-spa.sh          # E2E_KEEP=1 keeps $WORK
#
# fwknopd runs in the server namespace (192.0.2.1) with its config in $WORK (-c/-a/-d/-p),
# sniffing eth0; its iptables rules live in that namespace only. The server's firewall
# rejects tcp 2200..2299 and 22 until fwknopd adds an ACCEPT rule to its FWKNOP_INPUT chain.
# start_debian_fwknopd (lib.sh) writes fwknopd's two stanzas: the keygen keys, and passphrases.
# Shown:
#   - keys from `latchkey keygen` are read by fwknopd (access.conf KEY_BASE64/HMAC_KEY_BASE64);
#   - `--spa -A tcp/22 -a 192.0.2.2` opens tcp/22 for 192.0.2.2 only: fwknopd's rule names
#     that address, the client connects, a second client (192.0.2.3) is still refused;
#   - `-s -f 20` from 192.0.2.3: the rule is for the packet's source, fwknopd decodes message
#     type 3 and the rule expires about 20 s later;
#   - `-n NAME --rc-file FILE` (a .fwknoprc stanza with passphrase keys, an allow IP that is
#     not the sender) opens for that IP; `-p` sends to fwknopd's second port;
#   - a saved host holding fwknop lines (pasted keygen output) with Check opens and exits 0;
#   - a wrong HMAC key opens nothing: --check gives up with exit 1, fwknopd logs the refusal;
#   - what fwknopd decoded (user, message string, type) is what was sent;
#   - the same packets open `latchkey fwknopd` run on the same files.

. "$(dirname "$0")/lib.sh"

command -v fwknopd >/dev/null || { echo "FAIL cspa: fwknopd not installed (apt-get install -y fwknop-server)"; exit 1; }
[ -x "$LATCHKEY" ] || { echo "FAIL cspa: no binary at $LATCHKEY (cargo build --release)"; exit 1; }

e2e_setup cspa
e2e_host c2 192.0.2.3 2001:db8::3
C2=$HOST_NS

# Keys: one pair from latchkey keygen (base64), one passphrase pair for the rc-file stanza.
"$LATCHKEY" keygen >"$WORK/keys" || e2e_fail "latchkey keygen failed"
KEY=$(sed -n 's/^KEY_BASE64: //p' "$WORK/keys")
HMAC=$(sed -n 's/^HMAC_KEY_BASE64: //p' "$WORK/keys")
if [ "${#KEY}" = 44 ] && [ "${#HMAC}" = 88 ]; then
    e2e_pass "keygen prints KEY_BASE64 (32 bytes) and HMAC_KEY_BASE64 (64 bytes)"
else e2e_fail "keygen output: $(cat "$WORK/keys")"; fi
OTHER=$("$LATCHKEY" keygen | sed -n 's/^HMAC_KEY_BASE64: //p')
[ "$OTHER" != "$HMAC" ] || e2e_fail "two keygen runs gave the same key"

in_srv iptables -A INPUT -p tcp --dport 22 -j REJECT --reject-with tcp-reset
in_srv iptables -A INPUT -p tcp --dport 2200:2299 -j REJECT --reject-with tcp-reset
for p in 22 2201 2202 2203; do listen_tcp "$p"; done

if start_debian_fwknopd "$KEY" "$HMAC"; then
    e2e_pass "fwknopd $(fwknopd --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1) runs with latchkey keygen's keys"
else
    e2e_fail "fwknopd did not start: $(tail -5 "$WORK/fwknopd.log")"
    exit 1
fi

refused "$CLI" 192.0.2.1 22 && refused "$C2" 192.0.2.1 22 ||
    e2e_fail "tcp/22 open before any SPA packet"

# 1. Everything on the command line, fwknop's own option names.
in_cli "$LATCHKEY" knock --spa -A tcp/22 -a 192.0.2.2 --key-base64-rijndael "$KEY" \
    --key-base64-hmac "$HMAC" 192.0.2.1
rc=$?
if [ $rc = 0 ] && wait_for 5 fw_rule 192.0.2.2 22; then
    e2e_pass "--spa -A tcp/22 -a 192.0.2.2: fwknopd added its iptables rule for 192.0.2.2 tcp/22"
else e2e_fail "--spa -a: rc $rc, FWKNOP_INPUT: $(in_srv iptables -S FWKNOP_INPUT 2>&1 | tr '\n' ' ')"; fi
if tcp_open "$CLI" 192.0.2.1 22 && refused "$C2" 192.0.2.1 22; then
    e2e_pass "tcp/22 now connects from 192.0.2.2, still refused from 192.0.2.3"
else e2e_fail "after the SPA packet: 192.0.2.2 or 192.0.2.3 not as expected"; fi
if fw_decoded "Message String: 192.0.2.2,tcp/22" && fw_decoded "Message Type: 1 (Access msg)"; then
    e2e_pass "fwknopd decoded our packet: message '192.0.2.2,tcp/22', type 1"
else e2e_fail "fwknopd's decoding not as sent: $(grep -E 'Message|Error' "$WORK/fwknopd.log" | tail -3)"; fi

# 2. -s (the packet's source) and -f (message type 3), from the second client, with -U.
t0=$(date +%s)
ip netns exec "$C2" "$LATCHKEY" knock --spa -s -f 20 -U spa-tester -A tcp/2201 \
    --key-base64-rijndael="$KEY" --key-base64-hmac="$HMAC" -D 192.0.2.1
rc=$?
if [ $rc = 0 ] && wait_for 5 fw_rule 192.0.2.3 2201 && tcp_open "$C2" 192.0.2.1 2201 &&
    refused "$CLI" 192.0.2.1 2201; then
    e2e_pass "-s from 192.0.2.3: rule for the packet's source, tcp/2201 connects from there only"
else e2e_fail "-s: rc $rc, FWKNOP_INPUT: $(in_srv iptables -S FWKNOP_INPUT 2>&1 | tr '\n' ' ')"; fi
exp=$(in_srv iptables -S FWKNOP_INPUT | grep -- "-s 192.0.2.3/32" | grep -o '_exp_[0-9]*' | tr -dc 0-9)
if fw_decoded "Message Type: 3 (Client timeout access msg)" && fw_decoded "Client Timeout: 20" &&
    fw_decoded "Username: spa-tester" && [ -n "$exp" ] && [ $((exp - t0)) -ge 18 ] && [ $((exp - t0)) -le 23 ]; then
    e2e_pass "-f 20 -U spa-tester: fwknopd decoded type 3, timeout 20, user spa-tester; rule expires in $((exp - t0)) s"
else e2e_fail "-f 20: exp '$exp' (sent at $t0); $(grep -E 'Message Type|Client Timeout|Username' "$WORK/fwknopd.log" | tail -3 | tr '\n' ' ')"; fi

# 3. -n NAME from a .fwknoprc stanza: passphrase keys, an allow IP other than the sender's,
#    the server and port from the file ([default] gives the port, -p would override it).
cat >"$WORK/fwknoprc" <<'EOF'
[default]
SPA_SERVER_PORT     40001
USE_HMAC            Y

[router]
SPA_SERVER          192.0.2.1
ACCESS              tcp/2202
ALLOW_IP            192.0.2.77
KEY                 correct horse
HMAC_KEY            battery staple
EOF
in_cli "$LATCHKEY" knock -n router --rc-file "$WORK/fwknoprc"
rc=$?
if [ $rc = 0 ] && wait_for 5 fw_rule 192.0.2.77 2202 && fw_decoded "SPA Packet from IP: 192.0.2.2 received"; then
    e2e_pass "-n router (.fwknoprc: passphrase keys, port 40001): rule for the allow IP 192.0.2.77"
else e2e_fail "-n router: rc $rc, FWKNOP_INPUT: $(in_srv iptables -S FWKNOP_INPUT 2>&1 | tr '\n' ' ')"; fi

# 4. A saved host holding fwknop lines (keygen's output pasted as is) and a Check.
{
    printf 'Host router\n    HostName 192.0.2.1\n    ACCESS tcp/2203\n    ALLOW_IP source\n'
    sed 's/^/    /' "$WORK/keys"
    printf '    Check 2203\n'
} >"$WORK/knock.conf"
in_cli "$LATCHKEY" knock -F "$WORK/knock.conf" router
rc=$?
if [ $rc = 0 ] && fw_rule 192.0.2.2 2203; then
    e2e_pass "saved host with KEY_BASE64/HMAC_KEY_BASE64 and Check 2203: door open, exit 0"
else e2e_fail "saved SPA host: rc $rc"; fi
list=$(in_cli "$LATCHKEY" knock -F "$WORK/knock.conf" --list -v)
if echo "$list" | grep -q "spa tcp/2203 allow source" && ! echo "$list" | grep -qF "$KEY"; then
    e2e_pass "--list -v shows the SPA host without its keys"
else e2e_fail "--list -v: $list"; fi

# 5. A wrong HMAC key: fwknopd refuses, nothing opens, --check gives up with exit 1.
in_cli "$LATCHKEY" knock --spa -A tcp/2299 -a 192.0.2.2 --key-base64-rijndael "$KEY" \
    --key-base64-hmac "$OTHER" --check 2299 192.0.2.1 2>"$WORK/wrong.err"
rc=$?
if [ $rc = 1 ] && ! fw_rule 192.0.2.2 2299 && grep -q "still closed" "$WORK/wrong.err" &&
    fw_decoded "FKO_ERROR_INVALID_DATA_HMAC_COMPAREFAIL"; then
    e2e_pass "wrong HMAC key: fwknopd refuses (HMAC_COMPAREFAIL), no rule, --check exits 1"
else e2e_fail "wrong HMAC key: rc $rc, $(cat "$WORK/wrong.err")"; fi

# 6. No HMAC key at all: refused before anything is sent (exit 2, one line).
err=$(in_cli "$LATCHKEY" knock --spa -A tcp/22 -a 192.0.2.2 --key-rijndael k 192.0.2.1 2>&1)
rc=$?
if [ $rc = 2 ] && [ "$(echo "$err" | wc -l)" = 1 ] && echo "$err" | grep -q "HMAC key"; then
    e2e_pass "no HMAC key: refused on the command line (exit 2)"
else e2e_fail "no HMAC key: rc $rc, '$err'"; fi

# 7. The same client and files against latchkey's own fwknopd (the other end of this repo).
stop_pid "$FWKNOPD_PID"
ip netns exec "$SRV" "$LATCHKEY" fwknopd -f -i eth0 -c "$WORK/fwknopd.conf" -a "$WORK/access.conf" \
    >"$WORK/latchkey-fwknopd.out" 2>&1 &
E2E_PIDS="${E2E_PIDS:-} $!"
listen_tcp 2204
lk_rule() { in_srv iptables -S INPUT | grep -- "-s $1/32" | grep -- "--dport $2 " | grep -q latchkey-spa; }
if wait_for 5 grep -q "listening on eth0 (index" "$WORK/latchkey-fwknopd.out"; then
    in_cli "$LATCHKEY" knock --spa -A tcp/2204 -a 192.0.2.2 --key-base64-rijndael "$KEY" \
        --key-base64-hmac "$HMAC" --check 2204 192.0.2.1
    rc=$?
    in_cli "$LATCHKEY" knock -n router --rc-file "$WORK/fwknoprc" -A tcp/2205
    if [ $rc = 0 ] && lk_rule 192.0.2.2 2204 && wait_for 3 lk_rule 192.0.2.77 2205; then
        e2e_pass "latchkey fwknopd with the same files: --spa (--check 2204 opens) and -n router (port 40001, 192.0.2.77)"
    else e2e_fail "latchkey fwknopd: rc $rc; $(tail -3 "$WORK/latchkey-fwknopd.out")"; fi
else e2e_fail "latchkey fwknopd did not start: $(tail -3 "$WORK/latchkey-fwknopd.out")"; fi

[ "$E2E_FAILS" = 0 ]
