#!/bin/bash
# The daemon's surroundings misbehave, and it keeps its two duties (knocks open doors, doors
# close):
#   - a syslog daemon that stops reading (a datagram socket at /dev/log, in a private mount
#     namespace, that never reads): knocks still open and close doors, SIGTERM still exits 0,
#     and once the reader reads again it is told how many lines were dropped;
#   - syslog lines keep their ident (`knockd` when run under that name) and UseSyslog holds
#     across SIGHUP reloads, also one that changes LogFile;
#   - a flood of first knocks with a LogFile: the file stays small and says how many knock
#     lines were suppressed, and a real knock still opens;
#   - started with SIGCHLD ignored (inherited from its parent): more than MaxChildren commands
#     still run.
. "$(dirname "$0")/lib.sh"
e2e_setup lg
listen_tcp 22
reject_ssh
no_rule() { ! has_rule "$@"; }

# syslog_daemon MODE: runs $WORK/run.sh (which execs the daemon) in the server's network
# namespace and in a private mount namespace whose /dev is a fresh tmpfs (null, zero, random,
# urandom) with a datagram socket bound at /dev/log. MODE stall: the socket is never read until
# $WORK/release exists, then it is read into $WORK/syslog.txt; read: read from the start.
# Sets LK_PID (the daemon, once the shell has exec'd it) and waits until it listens.
syslog_daemon() {
    rm -f "$WORK/release" "$WORK/syslog.txt" "$WORK/sink.ready"
    cat >"$WORK/sink.py" <<'EOF'
import os, socket, sys, time
mode, work = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
open(work + "/sink.ready", "w").close()
while mode == "stall" and not os.path.exists(work + "/release"):
    time.sleep(0.1)
with open(work + "/syslog.txt", "ab", buffering=0) as out:
    while True:
        out.write(s.recv(4096) + b"\n")
EOF
    n=$(grep -c "listening on eth0 (index" "$WORK/daemon.out" 2>/dev/null)
    ip netns exec "$SRV" unshare -m --propagation private sh -c '
        mount -t tmpfs -o mode=755 lk-dev /dev || exit 1
        mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5
        mknod -m 666 /dev/random c 1 8; mknod -m 666 /dev/urandom c 1 9
        python3 "$1/sink.py" "$2" "$1" &
        i=0; while [ ! -e "$1/sink.ready" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
        exec sh "$1/run.sh"' sh "$WORK" "$1" >>"$WORK/daemon.out" 2>&1 &
    LK_PID=$!
    E2E_PIDS="${E2E_PIDS:-} $LK_PID"
    wait_for 5 sh -c "[ \$(grep -c 'listening on eth0 (index' '$WORK/daemon.out') -gt ${n:-0} ]" ||
        e2e_fail "daemon did not start listening: $(tail -5 "$WORK/daemon.out")"
}

# --- A syslog daemon that stopped reading.
{
    printf '[options]\n    UseSyslog\n    StateFile = %s/state\n' "$WORK"
    door ssh 1000,1100,1200 "cmd_timeout = 2"
} >"$WORK/syslog.conf"
printf 'exec "%s" daemon -i eth0 -c "%s/syslog.conf" -v\n' "$LATCHKEY" "$WORK" >"$WORK/run.sh"
syslog_daemon stall
# Far more lines than the socket's queue holds (net.unix.max_dgram_qlen, 10 by default).
for i in 1 2 3 4 5 6 7 8; do pkt "$CLI" tcp "192.0.2.$((100 + i))" 192.0.2.1 1000; done
knock_from "$CLI" 192.0.2.1 1000 1100 1200
expect "a stalled syslog reader: the knock still opens" wait_for 3 has_rule ssh 192.0.2.2
expect "and the door still closes on time" wait_for 4 no_rule ssh 192.0.2.2
knock_from "$CLI" 192.0.2.1 1000 1100 1200
expect "a second knock still opens" wait_for 3 has_rule ssh 192.0.2.2
touch "$WORK/release"
sleep 0.5
kill -USR1 "$LK_PID"
expect "once syslog reads again it is told how many lines were dropped" \
    wait_for 3 grep -Eq "latchkey\[[0-9]+\]: [0-9]+ log lines could not be sent to syslog" "$WORK/syslog.txt"
expect "then the lines flow again" wait_for 3 grep -q "counters: packets" "$WORK/syslog.txt"
rm -f "$WORK/release"
stop_daemon TERM
expect "SIGTERM exits 0 with syslog stalled" test "$LK_RC" = 0

# Stalled for good, then SIGTERM: the daemon must not hang on its last lines.
syslog_daemon stall
for i in 1 2 3 4 5 6 7 8; do pkt "$CLI" tcp "192.0.2.$((100 + i))" 192.0.2.1 1000; done
knock_from "$CLI" 192.0.2.1 1000 1100 1200
wait_for 3 has_rule ssh 192.0.2.2
kill -TERM "$LK_PID"
if wait_for 5 sh -c "! kill -0 $LK_PID"; then
    e2e_pass "SIGTERM with syslog stalled: exits within 5 s"
    stop_daemon TERM
else
    e2e_fail "SIGTERM with syslog stalled: still running after 5 s"
    stop_daemon KILL
fi
expect "and exits 0" test "$LK_RC" = 0
expect "and closed the door" no_rule ssh 192.0.2.2

# --- The ident and UseSyslog across reloads, run under knockd's name.
ln -sf "$LATCHKEY" "$WORK/knockd"
{
    printf '[options]\n    UseSyslog\n    LogFile = %s/one.log\n    StateFile = %s/state\n' "$WORK" "$WORK"
    door ssh 1000,1100,1200 "cmd_timeout = 2"
} >"$WORK/knockd.conf"
printf 'exec "%s/knockd" -i eth0 -c "%s/knockd.conf" -v\n' "$WORK" "$WORK" >"$WORK/run.sh"
syslog_daemon read
expect "run as knockd, syslog lines say knockd" wait_for 3 grep -Eq "^<[0-9]+>knockd\[[0-9]+\]: listening on eth0" "$WORK/syslog.txt"
# A reload with a different LogFile.
sed -i "s|one.log|two.log|" "$WORK/knockd.conf"
kill -HUP "$LK_PID"
wait_for 3 logged "reloaded: 1 door"
knock_from "$CLI" 192.0.2.1 1000 1100 1200
expect "after SIGHUP (new LogFile) syslog still gets the knock" \
    wait_for 3 grep -q "192.0.2.2: ssh: OPEN SESAME" "$WORK/syslog.txt"
expect "under the ident knockd" \
    sh -c "! grep 'OPEN SESAME' '$WORK/syslog.txt' | grep -qv '>knockd\['"
expect "and the new LogFile too" wait_for 2 grep -q "192.0.2.2: ssh: OPEN SESAME" "$WORK/two.log"
# A reload with the same LogFile.
wait_for 4 no_rule ssh 192.0.2.2
kill -HUP "$LK_PID"
sleep 0.5
knock_from "$CLI" 192.0.2.1 1000 1100 1200
expect "after a second SIGHUP syslog still gets the knock" \
    wait_for 3 sh -c "[ \$(grep -c 'OPEN SESAME' '$WORK/syslog.txt') = 2 ]"
# A reload without UseSyslog: syslog is left alone.
wait_for 4 no_rule ssh 192.0.2.2
sed -i "/UseSyslog/d" "$WORK/knockd.conf"
kill -HUP "$LK_PID"
sleep 0.5
knock_from "$CLI" 192.0.2.1 1000 1100 1200
wait_for 3 grep -q "OPEN SESAME" "$WORK/two.log"
wait_for 3 sh -c "[ \$(grep -c 'OPEN SESAME' '$WORK/two.log') = 2 ]"
expect "a reload that drops UseSyslog stops the syslog lines" \
    test "$(grep -c 'OPEN SESAME' "$WORK/syslog.txt")" = 2
stop_daemon TERM

# --- A flood of first knocks with a LogFile.
{
    printf '[options]\n    LogFile = %s/flood.log\n    StateFile = %s/state\n' "$WORK" "$WORK"
    door ssh 1000,1100,1200 "cmd_timeout = 2"
    # A one-step door: every packet to 1300 completes a sequence (no command, so that only
    # the open lines count; MaxGrants fills and each further one is refused, in a line too).
    printf '[one]\n    sequence = 1300\n    cmd_timeout = 30\n'
} >"$WORK/flood.conf"
start_daemon "$WORK/flood.conf"
pkt "$CLI" flood 198.18.0.0/15 192.0.2.1 1000 20000
sleep 0.5
knock_from "$CLI" 192.0.2.1 1000 1100 1200
expect "a real knock opens right after 20,000 spoofed first knocks" wait_for 3 has_rule ssh 192.0.2.2
expect "the file says at once that knock lines are being suppressed" \
    grep -q "too many knock lines: .* suppressed" "$WORK/flood.log"
expect "the open is logged all the same" grep -q "192.0.2.2: ssh: OPEN SESAME" "$WORK/flood.log"
sleep 6 # the flood's attempts time out (seq_timeout 5): 2,048 more knock lines to hold back
pkt "$CLI" flood 198.18.0.0/15 192.0.2.1 1300 20000
expect "20,000 opens at a one-step door: the file says open lines are being suppressed" \
    wait_for 2 grep -q "too many open lines: .* suppressed" "$WORK/flood.log"
stop_daemon TERM
size=$(stat -c %s "$WORK/flood.log")
lines=$(wc -l <"$WORK/flood.log")
count() { sed -En "s/.* ([0-9]+) $1 log lines suppressed.*/\\1/p" "$WORK/flood.log" | awk '{ s += $1 } END { print s + 0 }'; }
knocks=$(count knock) opens=$(count open)
echo "     flood.log: $size bytes, $lines lines; suppressed: $knocks knock lines, $opens open lines"
expect "the log file stays small (under 16 KB)" test "$size" -lt 16384
expect "the suppressed knock lines are counted" test "$knocks" -ge 15000
expect "the suppressed open lines are counted" test "$opens" -ge 15000

# --- Started with SIGCHLD ignored: more than MaxChildren commands still run.
: >"$WORK/ran"
{
    printf '[options]\n    MaxChildren = 2\n    StateFile = %s/state\n' "$WORK"
    printf '[one]\n    sequence = 1300\n    cmd_timeout = 1\n'
    printf '    start_command = echo start %%IP%% >>%s/ran\n' "$WORK"
    printf '    stop_command = echo stop %%IP%% >>%s/ran\n' "$WORK"
} >"$WORK/chld.conf"
n=$(grep -c "listening on eth0 (index" "$WORK/daemon.out")
ip netns exec "$SRV" python3 -c '
import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
os.execv(sys.argv[1], sys.argv[1:])' "$LATCHKEY" daemon -i eth0 -c "$WORK/chld.conf" -v >>"$WORK/daemon.out" 2>&1 &
LK_PID=$!
E2E_PIDS="${E2E_PIDS:-} $LK_PID"
wait_for 5 sh -c "[ \$(grep -c 'listening on eth0 (index' '$WORK/daemon.out') -gt $n ]"
expect "the daemon was started with SIGCHLD ignored" \
    sh -c "ip netns exec $SRV python3 -c 'import signal; signal.signal(signal.SIGCHLD, signal.SIG_IGN); import os; os.execvp(\"grep\", [\"grep\", \"-q\", \"SigIgn:.*[13579bdf]....\$\", \"/proc/self/status\"])'"
for i in 1 2 3 4 5 6; do
    pkt "$CLI" tcp "192.0.2.$((110 + i))" 192.0.2.1 1300
    sleep 0.2
done
expect "six knocks with MaxChildren = 2: six start commands ran" \
    wait_for 3 sh -c "[ \$(grep -c start '$WORK/ran') = 6 ]"
expect "and six stop commands" wait_for 4 sh -c "[ \$(grep -c stop '$WORK/ran') = 6 ]"
stop_daemon TERM
expect "SIGTERM exits 0" test "$LK_RC" = 0
