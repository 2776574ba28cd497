#!/bin/bash
# Grants across the daemon's life: a repeat knock extends a live grant (one rule, not two),
# SIGTERM closes live grants, a grant left by SIGKILL is closed after a restart within
# cmd_timeout, SIGHUP reloads a good config and keeps the old one on a bad one, -d detaches.
. "$(dirname "$0")/lib.sh"
e2e_setup lc
listen_tcp 22
reject_ssh
rules_for() { in_srv iptables -S INPUT | grep -c -- "--comment $1 "; }
door ssh 1000,1100,1200 "cmd_timeout = 4" >"$WORK/knockd.conf"
STATE="$WORK/state"
printf '[options]\n    StateFile = %s\n' "$STATE" >>"$WORK/knockd.conf"
start_daemon "$WORK/knockd.conf"

knock_from "$CLI" 192.0.2.1 1000 1100 1200
wait_for 2 has_rule ssh 192.0.2.2
sleep 2
knock_from "$CLI" 192.0.2.1 1000 1100 1200
expect "a repeat knock extends the grant" wait_for 2 logged "192.0.2.2: ssh: already open, extended by 4 s"
expect "still one rule after the repeat knock" test "$(rules_for ssh)" = 1
sleep 2.8
expect "extended grant still open past the first deadline" has_rule ssh 192.0.2.2
expect "extended grant closes at the new deadline" wait_for 3 sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment ssh'"

knock_from "$CLI" 192.0.2.1 1000 1100 1200
wait_for 2 has_rule ssh 192.0.2.2
expect "state file records the live grant" wait_for 2 grep -q "192.0.2.2" "$STATE"
stop_daemon TERM
expect "SIGTERM exits 0" test "$LK_RC" = 0
expect "SIGTERM with a live grant: the rule is gone" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment ssh'"
expect "state file removed once every door is closed" test ! -e "$STATE"

start_daemon "$WORK/knockd.conf"
knock_from "$CLI" 192.0.2.1 1000 1100 1200
wait_for 2 has_rule ssh 192.0.2.2
wait_for 2 grep -q "192.0.2.2" "$STATE"
stop_daemon KILL
expect "after SIGKILL the rule is still there" has_rule ssh 192.0.2.2
start_daemon "$WORK/knockd.conf"
expect "restart takes over the grant left open" logged "192.0.2.2: ssh: grant left open by a previous run"
expect "after SIGKILL and a restart the rule is gone within cmd_timeout" \
    wait_for 5 sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment ssh'"

# SIGHUP with a good config: the new sequence works, the old one does not.
door ssh 2000,2100,2200 "cmd_timeout = 4" >"$WORK/knockd.conf"
printf '[options]\n    StateFile = %s\n' "$STATE" >>"$WORK/knockd.conf"
kill -HUP "$LK_PID"
expect "SIGHUP reloads" wait_for 2 logged "reloaded: 1 door"
knock_from "$CLI" 192.0.2.1 1000 1100 1200
sleep 0.3
expect "old sequence no longer opens after reload" sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment ssh'"
knock_from "$CLI" 192.0.2.1 2000 2100 2200
expect "new sequence opens after reload" wait_for 2 has_rule ssh 192.0.2.2

# SIGHUP with a broken config: logged with FILE:LINE, the old config keeps working.
wait_for 6 sh -c "! ip netns exec $SRV iptables -S INPUT | grep -q 'comment ssh'"
printf '[ssh]\nsequence = 2000,99999\n' >"$WORK/knockd.conf"
kill -HUP "$LK_PID"
expect "bad reload is logged with FILE:LINE" wait_for 2 logged "$WORK/knockd.conf:2: sequence: bad port '99999'"
expect "bad reload keeps the old configuration" logged "keeping the old one"
expect "daemon still running after a bad reload" kill -0 "$LK_PID"
knock_from "$CLI" 192.0.2.1 2000 2100 2200
expect "old config still opens after a bad reload" wait_for 2 has_rule ssh 192.0.2.2
stop_daemon TERM

# -d detaches and writes the PID file; SIGTERM through it.
door ssh 1000,1100,1200 >"$WORK/knockd.conf"
in_srv "$LATCHKEY" daemon -d -i eth0 -c "$WORK/knockd.conf" -p "$WORK/pid" -g "$WORK/log"
expect "-d returns at once and writes the PID file" wait_for 3 test -s "$WORK/pid"
pid=$(cat "$WORK/pid" 2>/dev/null)
expect "-d: the detached daemon runs" kill -0 "$pid"
expect "-g: log file written" wait_for 3 grep -q "starting up, listening on eth0" "$WORK/log"
kill "$pid"
expect "-d: PID file removed at exit" wait_for 3 test ! -e "$WORK/pid"
