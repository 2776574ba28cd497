#!/bin/sh
# The package's life on a running OpenWrt router, for both package managers (apk on 25.12, opkg
# on 24.10 and older): install -> enable -> the FIRST knock opens; upgrade keeps an edited
# /etc/config/latchkey and restarts the daemon; removal stops it and leaves no set, rule, grant,
# process or file behind.
#
# The router is a throw-away root (static busybox, the stand-ins of tests/openwrt/stubs, the real
# nft, a stand-in /sbin/fw4 that loads a fw4-like table with whatever /usr/share/nftables.d
# includes are installed, as fw4 does), chrooted inside the network namespace lk-owi-s; procd's
# stand-in really runs the daemon (/etc/procd-run). The phone (lk-owi-c, 192.0.2.2) knocks with
# `latchkey knock` and connects to port 22 on the router (192.0.2.1), where a listener stands in
# for dropbear. The firewall is up before the package arrives, as on a live router: fw4 has not
# seen latchkey's nftables.d files (before the fix, the first knock logged `open ... (none)`).
#
# Root; namespaces only (lib.sh), never the host's firewall. Needs busybox-static, nft, python3.
set -u
. "$(dirname "$0")/lib.sh"
BIN=${LATCHKEY_STATIC:-${CARGO_TARGET_DIR:-$E2E_ROOT/target-cross}/x86_64-unknown-linux-musl/release/latchkey}
LATCHKEY=$BIN
[ -x "$BIN" ] || { echo "FAIL owi: no static binary at $BIN (scripts/build-cross x86_64-unknown-linux-musl)"; exit 1; }
BUSYBOX=${BUSYBOX:-/bin/busybox}
file -b "$BUSYBOX" | grep -q 'statically linked' || { echo "FAIL owi: need static busybox (apt-get install busybox-static)"; exit 1; }
STUBS=$E2E_ROOT/tests/openwrt/stubs
e2e_setup owi
R=$WORK/root

# in_root CMD: run CMD with the router's shell: in its namespace, chrooted, /proc mounted (in the
# private mount namespace `ip netns exec` makes, so nothing is mounted on the host)
in_root() {
	ip netns exec "$SRV" sh -c 'mount -t proc proc "$1/proc" && exec chroot "$1" /bin/sh -c "$2"' _ "$R" "$*"
}
# host_in_router CMD...: a host command in the router's namespace with the root's /proc mounted
# (the package managers' stand-ins run the package scripts chrooted from there)
host_in_router() {
	ip netns exec "$SRV" sh -c 'mount -t proc proc "$0/proc" && exec "$@"' "$R" "$@"
}

make_root() {
	for p in $(latchkeys_in_netns); do kill -9 "$p"; done  # a daemon a failed round left
	rm -rf "$R"
	mkdir -p "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" "$R/lib/functions" "$R/etc/config" "$R/etc/rc.d" \
		"$R/tmp" "$R/var/run/fake-netifd" "$R/var/etc" "$R/usr/lib/opkg/info" "$R/proc" "$R/dev"
	mknod -m 666 "$R/dev/null" c 1 3
	cp "$BUSYBOX" "$R/bin/busybox"
	chroot "$R" /bin/busybox --install -s /bin
	cp "$STUBS/functions.sh" "$R/lib/functions.sh"
	cp "$STUBS/procd.sh" "$STUBS/network.sh" "$R/lib/functions/"
	cp "$STUBS/rc.common" "$R/etc/rc.common"
	rm -f "$R/bin/logger" "$R/usr/bin/logger"; cp "$STUBS/logger" "$R/usr/bin/logger"
	cp "$STUBS/uci" "$R/sbin/uci"
	touch "$R/etc/procd-run"                  # procd's stand-in runs the instances
	# logd's stand-in: with /proc mounted busybox runs its own logger applet, which writes to
	# /dev/log; collect those messages in /tmp/logread as "TAG FACILITY.LEVEL: message"
	[ -n "${LOGD_PID:-}" ] && kill "$LOGD_PID" 2>/dev/null
	python3 -c '
import os, re, socket, sys
fac = "kern user mail daemon auth syslog lpr news uucp cron authpriv ftp".split()
lev = "emerg alert crit err warning notice info debug".split()
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
print("ready", flush=True)
while True:
    m = re.match(r"<(\d+)>(?:\w{3} [ \d]\d \d\d:\d\d:\d\d )?([^:\[ ]+)(?:\[\d+\])?: ?(.*)", s.recv(4096).decode(errors="replace").rstrip("\n\0"), re.S)
    if m:
        p = int(m.group(1)); f = fac[p >> 3] if p >> 3 < len(fac) else "local"
        with open(sys.argv[2], "a") as o:
            o.write("%s %s.%s: %s\n" % (m.group(2), f, lev[p & 7], m.group(3)))
' "$R/dev/log" "$R/tmp/logread" > "$WORK/logd.ready" &
	LOGD_PID=$!; E2E_PIDS="${E2E_PIDS:-} $LOGD_PID"
	wait_for 3 grep -q ready "$WORK/logd.ready"
	echo eth0 > "$R/var/run/fake-netifd/wan"  # wan is up on eth0
	# the real nft with its libraries
	for f in /usr/sbin/nft $(ldd /usr/sbin/nft | grep -o '/[^ ]*'); do
		mkdir -p "$R$(dirname "$f")"; cp -L "$f" "$R$f"
	done
	# fw4's stand-in: the table fw4 renders, with each installed nftables.d include at its place;
	# reload = flush + redefine (as fw4: set elements and sets stay), restart = delete + define;
	# then the script includes (the one latchkey's uci-defaults adds)
	cat > "$R/sbin/fw4" <<'FW4'
#!/bin/sh
[ "$1" = -q ] && shift
N=/usr/share/nftables.d
inc() { for f in "$N/$1"/*.nft; do [ -f "$f" ] && echo "include \"$f\""; done; }
case $1 in
stop) nft delete table inet fw4 2>/dev/null; exit 0 ;;
restart) nft delete table inet fw4 2>/dev/null ;;
start|reload) ;;
*) echo "fw4 stand-in: unknown command $1" >&2; exit 1 ;;
esac
cat > /tmp/fw4.nft <<NFT
table inet fw4
flush table inet fw4
table inet fw4 {
$(inc table-pre)
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
$(inc chain-pre/input)
		ct state vmap { established : accept, related : accept }
		meta l4proto tcp reject with tcp reset
		reject
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
$(inc chain-pre/forward)
		ct state vmap { established : accept, related : accept }
	}
	chain dstnat {
		type nat hook prerouting priority dstnat; policy accept;
$(inc chain-pre/dstnat)
	}
}
NFT
nft -f /tmp/fw4.nft || exit 1
echo "fw4 $1" >> /tmp/fw4.log
[ -f /usr/share/latchkey/firewall.include ] && . /usr/share/latchkey/firewall.include
exit 0
FW4
	chmod 0755 "$R/sbin/fw4"
}

# --- the packages: version r1, and r2 for the upgrade --------------------------------------------
P=$WORK/pkg
for rel in 1 2; do
	SOURCE_DATE_EPOCH=0 PKG_RELEASE=$rel python3 "$E2E_ROOT/scripts/mkapk" "$BIN" x86_64 "$P/apk$rel" >/dev/null \
		|| { e2e_fail "mkapk"; exit 1; }
	SOURCE_DATE_EPOCH=0 PKG_RELEASE=$rel sh "$E2E_ROOT/scripts/mkipk" "$BIN" x86_64 "$P/ipk$rel" >/dev/null \
		|| { e2e_fail "mkipk"; exit 1; }
done

# opkg's part, reduced to what it does with a package on a running router: unpack the data
# (a changed conffile stays, the new one goes beside it as FILE-opkg), keep the control files and
# the file list in /usr/lib/opkg/info, run postinst (PKG_UPGRADE=1 on upgrade); on removal prerm,
# delete the files (a changed conffile stays), postrm.
opkg_install() { # IPK
	d=$WORK/ipk.x; rm -rf "$d"; mkdir -p "$d/c" "$d/d"
	tar -xzf "$1" -C "$d" && tar -xzf "$d/control.tar.gz" -C "$d/c" && tar -xzf "$d/data.tar.gz" -C "$d/d"
	up=; [ -f "$R/usr/lib/opkg/info/latchkey.control" ] && up=1
	while read -r cf; do
		if [ -f "$R$cf" ] && [ -n "$up" ] && ! cmp -s "$R$cf" "$R/usr/lib/opkg/info/latchkey.pristine$(echo "$cf" | tr / _)"; then
			mv "$d/d$cf" "$d/d$cf-opkg"
		fi
		cp "$d/d$cf" "$R/usr/lib/opkg/info/latchkey.pristine$(echo "$cf" | tr / _)" 2>/dev/null
	done < "$d/c/conffiles"
	(cd "$d/d" && find . ! -type d | sed 's|^\.||') > "$R/usr/lib/opkg/info/latchkey.list"
	tar -C "$d/d" -cf - . | tar -C "$R" -xf -
	for s in control conffiles postinst prerm postinst-pkg prerm-pkg postrm; do
		cp "$d/c/$s" "$R/usr/lib/opkg/info/latchkey.$s"
	done
	if [ -n "$up" ]; then in_root "PKG_UPGRADE=1 /usr/lib/opkg/info/latchkey.postinst configure"
	else in_root "/usr/lib/opkg/info/latchkey.postinst configure"; fi
}
opkg_remove() {
	in_root "/usr/lib/opkg/info/latchkey.prerm remove"
	while read -r f; do
		case $f in /etc/config/latchkey) cmp -s "$R$f" "$R/usr/lib/opkg/info/latchkey.pristine_etc_config_latchkey" || continue ;; esac
		rm -f "$R$f"
	done < "$R/usr/lib/opkg/info/latchkey.list"
	in_root "/usr/lib/opkg/info/latchkey.postrm remove"
	rm -f "$R"/usr/lib/opkg/info/latchkey.*
}

# --- checks ---------------------------------------------------------------------------------------
daemon_pid() { cat "$R/var/run/procd-latchkey.pid" 2>/dev/null; }
daemon_alive() { p=$(daemon_pid); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
latchkeys_in_netns() { # PIDs of latchkey processes in the router's namespace
	for p in $(ip netns pids "$SRV"); do [ "$(cat /proc/$p/comm 2>/dev/null)" = latchkey ] && echo "$p"; done
}
listening() { grep -c "listening on eth0 (index" "$R/tmp/latchkey.out" 2>/dev/null; }
knock() { ip netns exec "$CLI" "$BIN" knock -d 100 192.0.2.1 7000 8000:udp 9000 >/dev/null 2>&1; }
port22() { tcp_open "$CLI" 192.0.2.1 22; }
nft_latchkey() { ip netns exec "$SRV" nft list ruleset 2>/dev/null | grep -i latchkey; }

listen_tcp 22
# the user's door, as written after installing: the default example, enabled, on wan
user_config() {
	cat > "$R/etc/config/latchkey" <<UCI
config latchkey 'main'
	option enabled '1'
	option network 'wan'
	option firewall 'auto'
	option verbose '1'

config door 'ssh'
	list sequence '7000'
	list sequence '8000:udp'
	list sequence '9000'
	option seq_timeout '15'
	option open_time '$1'
	option proto 'tcp'
	option port '22'
UCI
}

for fmt in apk ipk; do
	make_root
	ip netns exec "$SRV" nft delete table inet fw4 2>/dev/null
	# 1. a running router: firewall up, no latchkey yet
	in_root "/sbin/fw4 start" && e2e_pass "$fmt: router: fw4 running without latchkey" || { e2e_fail "$fmt: fw4 stand-in does not load"; cat "$R/tmp/fw4.nft"; continue; }
	port22 && e2e_fail "$fmt: port 22 open before anything" || e2e_pass "$fmt: port 22 closed to the phone"

	# 2. install: postinst runs the uci-defaults (firewall include), enables; the default config
	#    is disabled, so nothing starts yet
	case $fmt in
	apk) host_in_router python3 "$E2E_ROOT/tests/openwrt/apk-sim" add "$R" "$P/apk1/x86_64/latchkey-0.1.0-r1.apk" > "$WORK/pm.log" 2>&1 ;;
	ipk) opkg_install "$P/ipk1/latchkey_0.1.0-r1_x86_64.ipk" > "$WORK/pm.log" 2>&1 ;;
	esac
	[ -x "$R/usr/sbin/latchkey" ] && e2e_pass "$fmt: installed ($fmt)" || { e2e_fail "$fmt: install: $(cat "$WORK/pm.log")"; continue; }
	[ -L "$R/etc/rc.d/S95latchkey" ] && e2e_pass "$fmt: postinst enabled the service" || e2e_fail "$fmt: service not enabled"
	grep -q "set firewall.latchkey.path=/usr/share/latchkey/firewall.include" "$R/tmp/uci.log" \
		&& e2e_pass "$fmt: postinst added the firewall include" || e2e_fail "$fmt: no firewall include added"
	daemon_alive && e2e_fail "$fmt: a daemon runs although the config is disabled" || e2e_pass "$fmt: disabled by default: no daemon"

	# 3. enable a door (`uci commit latchkey` makes procd reload the service) and knock once
	user_config 10
	in_root "/etc/init.d/latchkey reload" > "$WORK/svc.log" 2>&1
	wait_for 5 sh -c "[ \"\$(grep -c 'listening on eth0 (index' '$R/tmp/latchkey.out' 2>/dev/null)\" -ge 1 ]" \
		&& e2e_pass "$fmt: enabled: the daemon runs and listens on eth0" || e2e_fail "$fmt: daemon did not start: $(tail -n 5 "$R/tmp/latchkey.out" 2>/dev/null) $(cat "$WORK/svc.log")"
	port22 && e2e_fail "$fmt: port 22 open before the knock" || e2e_pass "$fmt: port 22 still closed before the knock"
	knock
	if wait_for 3 port22; then e2e_pass "$fmt: FIRST knock after install opens port 22 for the phone"
	else e2e_fail "$fmt: first knock after install opened nothing: $(grep latchkey-fw "$R/tmp/logread" | tail -n 3)"; fi
	# fw open logs after it added the element: the port can open before the line is written.
	wait_for 2 grep -q "latchkey-fw.*open 192.0.2.2 tcp 22 .*(nft)" "$R/tmp/logread" && e2e_pass "$fmt: the door opened through fw4's set (nft)" \
		|| e2e_fail "$fmt: door not opened through nft: $(grep 'latchkey-fw.*open' "$R/tmp/logread")"
	grep -q "latchkey-fw.*(none)" "$R/tmp/logread" && e2e_fail "$fmt: a door opened through nothing: $(grep '(none)' "$R/tmp/logread")" || e2e_pass "$fmt: no 'open ... (none)'"
	grep -q "reloading the firewall" "$R/tmp/logread" && e2e_pass "$fmt: service start had fw4 load latchkey's sets" || e2e_fail "$fmt: no fw4 reload logged"

	# 4. upgrade after a local edit of the config: the edit stays, the daemon restarts on it
	user_config 12
	echo "# my edit" >> "$R/etc/config/latchkey"
	before=$(daemon_pid)
	case $fmt in
	apk) host_in_router python3 "$E2E_ROOT/tests/openwrt/apk-sim" add "$R" "$P/apk2/x86_64/latchkey-0.1.0-r2.apk" > "$WORK/pm.log" 2>&1; new=.apk-new ;;
	ipk) opkg_install "$P/ipk2/latchkey_0.1.0-r2_x86_64.ipk" > "$WORK/pm.log" 2>&1; new=-opkg ;;
	esac
	grep -q "# my edit" "$R/etc/config/latchkey" && grep -q "open_time '12'" "$R/etc/config/latchkey" \
		&& e2e_pass "$fmt: upgrade keeps the edited /etc/config/latchkey" || e2e_fail "$fmt: upgrade replaced the edited config"
	[ -f "$R/etc/config/latchkey$new" ] && e2e_pass "$fmt: the package's config is beside it as latchkey$new" || e2e_fail "$fmt: no latchkey$new"
	after=$(daemon_pid)
	if daemon_alive && [ -n "$before" ] && [ "$before" != "$after" ]; then e2e_pass "$fmt: upgrade restarted the daemon (pid $before -> $after)"
	else e2e_fail "$fmt: daemon not restarted by the upgrade (pid $before -> $after)"; fi
	[ "$(latchkeys_in_netns | wc -l)" = 1 ] && e2e_pass "$fmt: one daemon runs after the upgrade" || e2e_fail "$fmt: daemons running: $(latchkeys_in_netns | tr '\n' ' ')"
	grep -q "cmd_timeout   = 12" "$R/var/etc/latchkey.conf" && e2e_pass "$fmt: the daemon runs the edited door (open_time 12)" || e2e_fail "$fmt: generated config: $(grep cmd_timeout "$R/var/etc/latchkey.conf")"
	wait_for 5 sh -c "[ \"\$(grep -c 'listening on eth0 (index' '$R/tmp/latchkey.out')\" -ge 2 ]"
	sleep 10   # the first grant (10 s) runs out
	port22 && e2e_fail "$fmt: port 22 still open after the first grant's time" || e2e_pass "$fmt: first grant closed on time"
	knock
	wait_for 3 port22 && e2e_pass "$fmt: a knock after the upgrade opens" \
		|| { e2e_fail "$fmt: no door after the upgrade"; cat "$R/var/etc/latchkey.conf"; }

	# 5. removal with a grant open: the daemon stops, every set, rule, grant and file goes
	case $fmt in
	apk) host_in_router python3 "$E2E_ROOT/tests/openwrt/apk-sim" del "$R" latchkey > "$WORK/pm.log" 2>&1 ;;
	ipk) opkg_remove > "$WORK/pm.log" 2>&1 ;;
	esac
	sleep 0.3
	[ -z "$(latchkeys_in_netns)" ] && e2e_pass "$fmt: removal stopped the daemon" || e2e_fail "$fmt: daemon still runs after removal"
	port22 && e2e_fail "$fmt: port 22 still open after removal" || e2e_pass "$fmt: removal closed the open grant"
	left=$(nft_latchkey)
	[ -z "$left" ] && e2e_pass "$fmt: no latchkey set or rule left in fw4's table" || e2e_fail "$fmt: left in nft: $left"
	ip netns exec "$SRV" nft list table inet fw4 >/dev/null 2>&1 && e2e_pass "$fmt: fw4's table itself is still there" || e2e_fail "$fmt: fw4 table gone"
	[ ! -e "$R/var/run/latchkey/grants" ] && [ ! -e "$R/var/etc/latchkey.conf" ] && e2e_pass "$fmt: no grant record or generated config left" \
		|| e2e_fail "$fmt: left: $(ls "$R/var/run/latchkey" "$R/var/etc" 2>/dev/null)"
	grep -q "delete firewall.latchkey" "$R/tmp/uci.log" && e2e_pass "$fmt: firewall include removed" || e2e_fail "$fmt: firewall include kept"
	[ ! -e "$R/usr/sbin/latchkey" ] && [ ! -e "$R/etc/init.d/latchkey" ] && [ ! -e "$R/usr/share/nftables.d/table-pre/latchkey.nft" ] \
		&& e2e_pass "$fmt: package files removed" || e2e_fail "$fmt: package files left"
	[ ! -e "$R/etc/rc.d/S95latchkey" ] && e2e_pass "$fmt: service disabled" || e2e_fail "$fmt: rc.d link left"
	[ "$E2E_FAILS" -eq 0 ] || { echo "--- $fmt: logread"; tail -n 25 "$R/tmp/logread"; echo "--- daemon"; tail -n 15 "$R/tmp/latchkey.out"; cat "$WORK/pm.log"; }
done
