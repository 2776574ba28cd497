#!/bin/bash
# Config mistakes: `latchkey check` and the daemon both exit 1 and name FILE:LINE and what
# was expected; a good config is printed as understood; the binary answers as `knockd`.
. "$(dirname "$0")/lib.sh"
E2E_NAME=cf
WORK=$(mktemp -d /tmp/latchkey-e2e-cf.XXXXXX)
trap 'rm -rf "$WORK"; [ "$E2E_FAILS" -eq 0 ]' EXIT

# bad NAME LINE PATTERN TEXT: TEXT is refused by check and daemon with FILE:LINE: PATTERN.
bad() {
    f="$WORK/$1.conf"
    printf '%b' "$4" >"$f"
    out=$("$LATCHKEY" check -c "$f" 2>&1)
    rc=$?
    if [ "$rc" = 1 ] && echo "$out" | grep -q "^$f:$2: .*$3"; then
        e2e_pass "check: $1 -> $f:$2"
    else
        e2e_fail "check: $1 (rc $rc): $out"
    fi
    out=$(timeout 5 "$LATCHKEY" daemon -i lo -c "$f" 2>&1)
    rc=$?
    if [ "$rc" = 1 ] && echo "$out" | grep -q "^$f:$2: .*$3"; then
        e2e_pass "daemon refuses: $1"
    else
        e2e_fail "daemon: $1 (rc $rc): $out"
    fi
}
D='[d]\nsequence = 1000,2000\n'
bad unknown-key 3 "unknown key 'frobnicate'.*expected one of" "$D"'frobnicate = 1\n'
bad unknown-option 2 "unknown option 'Colour'" '[options]\nColour = blue\n'"$D"
bad key-before-section 1 "outside any section" 'interface = eth0\n'"$D"
bad port-zero 2 "bad port '0'.*1 to 65535" '[d]\nsequence = 0,2000\n'
bad port-70000 3 "bad port '70000'.*1 to 65535" '[d]\n\nsequence = 1000,70000\n'
bad bad-protocol 2 "bad protocol 'icmp'.*tcp or udp" '[d]\nsequence = 1000:icmp\n'
bad bad-flag 3 "unknown TCP flag 'sin'" "$D"'tcpflags = sin\n'
bad missing-sequence 1 "door \[d\] has no sequence" '[d]\ncommand = true\n'
bad empty-section 1 "empty section name" '[]\n'"$D"
bad bad-timeout 3 "expected a whole number" "$D"'seq_timeout = soon\n'
bad bad-target 3 "not an IP address" "$D"'target = router\n'
bad no-value 3 "expected 'key = value'" "$D"'sequence\n'

mkdir "$WORK/dir.conf"
for f in "$WORK/missing.conf" "$WORK/dir.conf"; do
    out=$("$LATCHKEY" check -c "$f" 2>&1)
    rc=$?
    expect "unreadable $(basename "$f"): exit 1, names the file" \
        sh -c "[ $rc = 1 ] && echo '$out' | grep -q '^$f:0: cannot read config file'"
done

printf '%b' "$D"'\nfoo = 1\n\n[e]\nsequence = 0\n' >"$WORK/many.conf"
"$LATCHKEY" check -c "$WORK/many.conf" >"$WORK/out" 2>&1
expect "every error is reported, not just the first" \
    sh -c "grep -q many.conf:4: '$WORK/out' && grep -q many.conf:7: '$WORK/out'"

printf '[options]\nUseSyslog\n[ssh]\nsequence = 7000, 8000:udp ,9000\ntcpflags = syn,!ack\n' >"$WORK/good.conf"
printf 'start_command = /sbin/iptables -I INPUT -s %%IP%% -j ACCEPT\n' >>"$WORK/good.conf"
"$LATCHKEY" check -c "$WORK/good.conf" >"$WORK/out"
expect "check prints the doors as understood" \
    sh -c "grep -q '7000:tcp,8000:udp,9000:tcp' '$WORK/out' && grep -q 'syn,!ack' '$WORK/out'"

ln -sf "$LATCHKEY" "$WORK/knockd"
expect "as 'knockd' it is the daemon (-V)" sh -c "'$WORK/knockd' -V | grep -q latchkey"
out=$("$WORK/knockd" -c "$WORK/unknown-key.conf" 2>&1)
expect "as 'knockd' it refuses a bad config with FILE:LINE" \
    sh -c "echo '$out' | grep -q '^$WORK/unknown-key.conf:3:'"
expect "knockd -h prints usage" sh -c "'$WORK/knockd' -h | grep -q -- '--interface'"
