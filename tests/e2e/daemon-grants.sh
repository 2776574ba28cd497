#!/bin/bash
# Doors that always close (issue 11): one-time swaps cannot crash the daemon or be shortcut;
# a failed start leaves no phantom grant; hung commands are killed at CommandTimeout; a flood
# at a stop-less door runs its command once and never delays another door's stop; a stop never
# overtakes its own start; SIGTERM with a hung stop command leaves the grant in the state file
# and the next start closes it; a state file others could write is refused.
. "$(dirname "$0")/lib.sh"
e2e_setup gr
e2e_host c2 192.0.2.3 2001:db8::3
C2=$HOST_NS
listen_tcp 22
reject_ssh
STATE="$WORK/state"
options() {
    printf '[options]\n    StateFile = %s\n' "$STATE"
    for kv in "$@"; do printf '    %s\n' "$kv"; done
}
gone() { ! has_rule "$@"; }
alive() { kill -0 "$LK_PID" 2>/dev/null; }

# --- One-time sequences: the mirror of a used line's first knocks carries on into nothing.
# A Latin-1 comment comes first: the '#' must still land on the used line's first byte.
printf '# caf\xe9\n7001,7002,7003\n7201,7202,7203\n7101\n' >"$WORK/once"
{
    options
    printf '[once]\n    one_time_sequences = %s\n    seq_timeout = 5\n    cmd_timeout = 2\n' "$WORK/once"
    printf '    start_command = iptables -I INPUT 1 -s %%IP%% -p tcp --dport 22 -m comment --comment once -j ACCEPT\n'
    printf '    stop_command = iptables -D INPUT -s %%IP%% -p tcp --dport 22 -m comment --comment once -j ACCEPT\n'
} >"$WORK/once.conf"
start_daemon "$WORK/once.conf"
pkt "$C2" tcp 192.0.2.3 192.0.2.1 7001
pkt "$C2" tcp 192.0.2.3 192.0.2.1 7002
knock_from "$CLI" 192.0.2.1 7001 7002 7003
expect "one-time: the owner opens" wait_for 2 has_rule once 192.0.2.2
expect "one-time: the used line is marked on its first byte" \
    cmp -s "$WORK/once" <(printf '# caf\xe9\n#001,7002,7003\n7201,7202,7203\n7101\n')
# The mirror (at stage 2 of the used line) sends only the last port of the next line.
pkt "$C2" tcp 192.0.2.3 192.0.2.1 7203
sleep 0.3
expect "one-time: a stale attempt cannot shortcut the next line" gone once 192.0.2.3
# Again, and now the next line (7101) is shorter than the mirror's stage.
pkt "$C2" tcp 192.0.2.3 192.0.2.1 7201
pkt "$C2" tcp 192.0.2.3 192.0.2.1 7202
knock_from "$CLI" 192.0.2.1 7201 7202 7203
wait_for 2 logged "once: no one-time sequences left|Stage 1" >/dev/null
pkt "$C2" tcp 192.0.2.3 192.0.2.1 7003
sleep 0.3
expect "one-time: a shorter next line does not crash the daemon" alive
stop_daemon TERM

# --- A start command that fails once: no phantom grant, the next knock runs it again.
{
    options
    door flaky 1000,1100,1200 "cmd_timeout = 3"
} >"$WORK/flaky.conf"
sed -i "s|start_command = |start_command = if [ ! -e $WORK/failed ]; then touch $WORK/failed; exit 4; fi; |" "$WORK/flaky.conf"
start_daemon "$WORK/flaky.conf"
knock_from "$CLI" 192.0.2.1 1000 1100 1200
expect "a failed start is logged with its status" wait_for 2 logged "command returned non-zero status code \(4\)"
expect "a failed start leaves the door shut" gone flaky
knock_from "$CLI" 192.0.2.1 1000 1100 1200
expect "the next knock runs the start command again" wait_for 2 has_rule flaky 192.0.2.2
expect "... not an extension of a grant that never opened" sh -c "! grep -q 'flaky: already open' '$WORK/daemon.out'"
expect "... and the door closes on time" wait_for 5 gone flaky
stop_daemon TERM

# --- Hung commands are killed at CommandTimeout, with their children; a flood at a stop-less
# door runs its command once per source, and another door still closes on time.
{
    options "CommandTimeout = 2" "MaxChildren = 1"
    printf '[hang]\n    sequence = 3000\n    start_command = sleep 300 & echo %%IP%% >>%s/hang.ran; wait\n' "$WORK"
    door ssh 1000,1100,1200 "cmd_timeout = 2"
} >"$WORK/hang.conf"
start_daemon "$WORK/hang.conf"
knock_from "$CLI" 192.0.2.1 1000 1100 1200
expect "flood: the ssh door opens" wait_for 2 has_rule ssh 192.0.2.2
pkt "$C2" tcp 192.0.2.3 192.0.2.1 3000 S 200
t0=$(date +%s)
expect "flood: ssh closes on time while start commands hang" wait_for 4 gone ssh
expect "flood: 200 packets from one source ran the command once" \
    test "$(grep -c 192.0.2.3 "$WORK/hang.ran" 2>/dev/null)" = 1
expect "a hung command is killed at its time limit" wait_for 4 logged "hang: command killed after its time limit of 2 s"
expect "... with its children" wait_for 2 sh -c "! ip netns pids $SRV | xargs -r ps -o args= -p | grep -q '^sleep 300'"
expect "the daemon answered quickly through it all" test $(( $(date +%s) - t0 )) -le 6
stop_daemon TERM

# --- A stop never overtakes its start: a slow start, cmd_timeout shorter than it, MaxChildren 4.
{
    options "MaxChildren = 4"
    door slow 1000,1100,1200 "cmd_timeout = 1"
} >"$WORK/slow.conf"
sed -i "s|start_command = |start_command = sleep 2; |" "$WORK/slow.conf"
start_daemon "$WORK/slow.conf"
knock_from "$CLI" 192.0.2.1 1000 1100 1200
sleep 2.5
expect "ordering: the stop ran after the start, the rule is gone" wait_for 4 gone slow
stop_daemon TERM

# --- SIGTERM while a stop command hangs: the grant stays in the state file; restart closes it.
{
    options "CommandTimeout = 30"
    door stuck 1000,1100,1200 "cmd_timeout = 30"
} >"$WORK/stuck.conf"
sed -i "s|stop_command = |stop_command = if [ ! -e $WORK/stuck-once ]; then touch $WORK/stuck-once; sleep 300; fi; |" "$WORK/stuck.conf"
start_daemon "$WORK/stuck.conf"
knock_from "$CLI" 192.0.2.1 1000 1100 1200
wait_for 2 has_rule stuck 192.0.2.2
t0=$(date +%s)
stop_daemon TERM
expect "SIGTERM with a hung stop: exits within the grace period" test $(( $(date +%s) - t0 )) -le 6
expect "... the door is still open" has_rule stuck 192.0.2.2
expect "... and the state file keeps the grant" grep -q "stuck.192.0.2.2" "$STATE"
expect "... written mode 0600" test "$(stat -c %a "$STATE")" = 600
start_daemon "$WORK/stuck.conf"
expect "restart closes the grant the hung stop left open" wait_for 3 gone stuck
stop_daemon TERM
expect "state file gone once every door is closed" test ! -e "$STATE"

# --- A state file that others can write is refused: its commands never run as root.
{
    options
    door ssh 1000,1100,1200
} >"$WORK/plain.conf"
printf 'x 0 ssh\t192.0.2.9\ttouch %s/planted\n' "$WORK" >"$STATE"
chmod 666 "$STATE"
start_daemon "$WORK/plain.conf"
expect "a world-writable state file is refused" wait_for 2 logged "refusing state file .*writable by others"
sleep 0.5
expect "... and none of its commands ran" test ! -e "$WORK/planted"
stop_daemon TERM
rm -f "$STATE"
printf 'x 0 ssh\t192.0.2.9\ttouch %s/planted\n' "$WORK" >"$WORK/elsewhere"
ln -s "$WORK/elsewhere" "$STATE"
start_daemon "$WORK/plain.conf"
expect "a symlinked state file is refused" wait_for 2 logged "refusing state file .*symlink"
stop_daemon TERM
expect "... and none of its commands ran" test ! -e "$WORK/planted"
