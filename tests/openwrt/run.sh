#!/bin/sh
# The OpenWrt service in a throw-away root: installs the .apk (or .ipk, PKG_FORMAT=ipk) that
# scripts/mkapk (mkipk) makes from the static x86_64 binary into a directory with busybox
# (static) and small stand-ins for OpenWrt's shell libraries (stubs/: functions.sh, procd.sh, network.sh, rc.common, logger, uci), runs
# /etc/init.d/latchkey under chroot and checks the procd calls, the generated daemon config
# (which the init script also runs through `latchkey check`) and the logged messages.
# Touches nothing outside the root: no firewall tool exists in it, so `fw` finds no backend.
#
#   [PKG_FORMAT=apk|ipk] tests/openwrt/run.sh   (root; needs busybox-static, python3, and
#                                               scripts/build-cross output)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${LATCHKEY_STATIC:-${CARGO_TARGET_DIR:-$ROOT/target-cross}/x86_64-unknown-linux-musl/release/latchkey}
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BIN" ] || { echo "run.sh: no static binary at $BIN (scripts/build-cross x86_64-unknown-linux-musl)" >&2; exit 1; }
[ -x "$BUSYBOX" ] && file -b "$BUSYBOX" | grep -q 'statically linked' || { echo "run.sh: need static busybox (apt-get install busybox-static)" >&2; exit 1; }

W=$(mktemp -d /tmp/latchkey-owrt.XXXXXX)
trap 'rm -rf "$W"' EXIT
R=$W/root
PASS=0 FAIL=0
ok() { echo "ok   $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL $*"; FAIL=$((FAIL + 1)); }
expect() { # DESCRIPTION FILE EXPECTED-TEXT: FILE must equal the text
	if [ "$(cat "$2" 2>/dev/null)" = "$3" ]; then ok "$1"; else
		bad "$1"; echo "--- expected"; echo "$3"; echo "--- got"; cat "$2" 2>/dev/null; echo "---"; fi
}
has() { # DESCRIPTION FILE PATTERN (grep -E)
	if grep -Eq -- "$3" "$2" 2>/dev/null; then ok "$1"; else bad "$1 (no /$3/ in $(basename "$2"))"; cat "$2" 2>/dev/null | sed 's/^/     | /'; fi
}
hasnt() { if grep -Eq -- "$3" "$2" 2>/dev/null; then bad "$1 (/$3/ in $(basename "$2"))"; else ok "$1"; fi; }
in_root() { chroot "$R" /bin/sh -c "$*"; }

# --- the root: busybox, stand-ins, then the package as opkg would unpack it ----------------------
mkdir -p "$R/bin" "$R/sbin" "$R/usr/bin" "$R/lib/functions" "$R/etc/rc.d" "$R/tmp" "$R/var/run" "$R/var/etc" "$R/usr/lib/opkg/info"
mkdir -p "$R/dev"; mknod -m 666 "$R/dev/null" c 1 3
cp "$BUSYBOX" "$R/bin/busybox"
chroot "$R" /bin/busybox --install -s /bin
cp "$HERE/stubs/functions.sh" "$R/lib/functions.sh"
cp "$HERE/stubs/procd.sh" "$HERE/stubs/network.sh" "$R/lib/functions/"
cp "$HERE/stubs/rc.common" "$R/etc/rc.common"
rm -f "$R/usr/bin/logger" "$R/bin/logger"; cp "$HERE/stubs/logger" "$R/usr/bin/logger"
cp "$HERE/stubs/uci" "$R/sbin/uci"
# the package as the package manager installs it: PKG_FORMAT=apk (default: OpenWrt 25.12's apk,
# through tests/openwrt/apk-sim, which runs the .apk's own scripts chrooted) or ipk (opkg: data
# unpacked, control files and the file list in /usr/lib/opkg/info, postinst run)
FORMAT=${PKG_FORMAT:-apk}
echo "package format: $FORMAT"
case $FORMAT in
apk)
	SOURCE_DATE_EPOCH=0 python3 "$ROOT/scripts/mkapk" "$BIN" x86_64 "$W/apk" >/dev/null
	python3 "$HERE/apk-sim" add "$R" "$W"/apk/x86_64/latchkey-*.apk
	pm_remove() { python3 "$HERE/apk-sim" del "$R" latchkey; } ;;
ipk)
	SOURCE_DATE_EPOCH=0 sh "$ROOT/scripts/mkipk" "$BIN" x86_64 "$W" >/dev/null
	mkdir "$W/ipk" "$W/ipk/c" "$W/ipk/d"
	tar -xzf "$W"/latchkey_*_x86_64.ipk -C "$W/ipk"
	tar -xzf "$W/ipk/data.tar.gz" -C "$W/ipk/d"
	(cd "$W/ipk/d" && find . ! -type d | sed 's|^\.||') > "$R/usr/lib/opkg/info/latchkey.list"
	tar -xzf "$W/ipk/data.tar.gz" -C "$R"
	tar -xzf "$W/ipk/control.tar.gz" -C "$W/ipk/c"
	for s in postinst prerm postinst-pkg prerm-pkg postrm control conffiles; do cp "$W/ipk/c/$s" "$R/usr/lib/opkg/info/latchkey.$s"; done
	in_root "/usr/lib/opkg/info/latchkey.postinst configure"
	pm_remove() { in_root "/usr/lib/opkg/info/latchkey.prerm remove"; } ;;
*)	echo "run.sh: PKG_FORMAT is apk or ipk" >&2; exit 2 ;;
esac

# --- postinst: runs the uci-defaults (firewall include), enables, starts (disabled by default) ----
[ -L "$R/etc/rc.d/S95latchkey" ] && [ -L "$R/etc/rc.d/K10latchkey" ] && ok "postinst enabled the service (S95/K10 links)" || bad "postinst enable"
has "uci-defaults adds the firewall script include" "$R/tmp/uci.log" "set firewall.latchkey.path=/usr/share/latchkey/firewall.include"
has "uci-defaults marks it reload for fw3 (no /sbin/fw4 here)" "$R/tmp/uci.log" "set firewall.latchkey.reload=1"
[ ! -e "$R/etc/uci-defaults/90-latchkey" ] && ok "uci-defaults script removed after running" || bad "uci-defaults left behind"
has "default config is disabled: says so and starts nothing" "$R/tmp/logread" "latchkey daemon.info: disabled"
hasnt "no instance while disabled" "$R/tmp/procd.log" "open_instance"

# run ACTION with a fresh procd log and logread
svc() { rm -f "$R/tmp/procd.log" "$R/tmp/logread"; in_root "/etc/init.d/latchkey $1" || true; }
wan_up() { mkdir -p "$R/var/run/fake-netifd"; echo "$1" > "$R/var/run/fake-netifd/wan"; }
wan_down() { rm -f "$R/var/run/fake-netifd/wan"; }
uci_cfg() { cat > "$R/etc/config/latchkey"; }

# --- 1. default example enabled, wan up over PPPoE ---------------------------------------------
sed '0,/option enabled .0./s//option enabled '"'1'"'/' "$ROOT/openwrt/latchkey/files/latchkey.config" > "$W/cfg"
uci_cfg < "$W/cfg"
wan_up pppoe-wan
svc start
expect "enabled + wan up: the procd calls" "$R/tmp/procd.log" "open_service latchkey /etc/init.d/latchkey
open_instance
set_param command /usr/sbin/latchkey daemon -i pppoe-wan -c /var/etc/latchkey.conf
set_param env LATCHKEY_FIREWALL=auto
set_param respawn 3600 5 0
set_param stdout 1
set_param stderr 1
set_param file /var/etc/latchkey.conf
set_param netdev pppoe-wan
close_instance
open_trigger
add_reload_trigger latchkey
add_reload_interface_trigger wan
close_trigger
close_service"
expect "generated knockd-format config (the 'nas' door is disabled)" "$R/var/etc/latchkey.conf" "# Generated from /etc/config/latchkey by /etc/init.d/latchkey; edits here are overwritten.
# For a hand-written knockd-format file set: option config_file '/etc/latchkey.conf'
[options]

[ssh]
	sequence      = 7000:tcp,8000:udp,9000:tcp
	seq_timeout   = 15
	start_command = /usr/share/latchkey/fw open %IP% tcp 22 30
	cmd_timeout   = 30"
[ "$(stat -c %a "$R/var/etc/latchkey.conf")" = 600 ] && ok "generated config is 0600" || bad "generated config mode"
if "$BIN" check -c "$R/var/etc/latchkey.conf" > "$W/check.out" 2>&1; then ok "latchkey check accepts the generated config"; else bad "latchkey check"; cat "$W/check.out"; fi

# --- 2. wan down: wait, no instance, but keep following wan --------------------------------------
wan_down
svc start
has "wan down: logs that it waits" "$R/tmp/logread" "network 'wan' is not up; waiting"
hasnt "wan down: no instance" "$R/tmp/procd.log" "open_instance"
has "wan down: interface trigger still set (starts when wan comes up)" "$R/tmp/procd.log" "add_reload_interface_trigger wan"

# --- 3. wan comes up on another device: reload picks it up ---------------------------------------
wan_up eth1
svc reload
has "reload after ifup: follows the new L3 device" "$R/tmp/procd.log" "^set_param command /usr/sbin/latchkey daemon -i eth1 -c /var/etc/latchkey.conf$"
has "reload: netdev follows" "$R/tmp/procd.log" "^set_param netdev eth1$"

# --- 4. fixed device, verbose, other network, forwarded door with IPv6, tcpflags ----------------
uci_cfg <<'EOF2'
config latchkey 'main'
	option enabled '1'
	option network 'wan6'
	option device 'eth9'
	option verbose '1'
	option respawn_retry '5'

config door 'nas'
	list sequence '7100'
	list sequence '7200:UDP'
	list sequence '7300:tcp'
	option seq_timeout '10'
	option open_time '45'
	option port '2222'
	option dest_ip '192.168.1.10'
	option dest_port '22'
	option dest_ip6 '2001:db8::10'
	option tcpflags 'syn,!ack'

config door 'dns'
	list sequence '5353:udp'
	option proto 'udp'
	option port '53'
EOF2
svc start
has "device option: -i eth9" "$R/tmp/procd.log" "^set_param command /usr/sbin/latchkey daemon -i eth9 -c /var/etc/latchkey.conf$"
has "verbose: -v appended" "$R/tmp/procd.log" "^append_param command -v$"
has "respawn_retry option" "$R/tmp/procd.log" "^set_param respawn 3600 5 5$"
hasnt "fixed device: no interface trigger" "$R/tmp/procd.log" "interface_trigger"
expect "forwarded door and udp door" "$R/var/etc/latchkey.conf" "# Generated from /etc/config/latchkey by /etc/init.d/latchkey; edits here are overwritten.
# For a hand-written knockd-format file set: option config_file '/etc/latchkey.conf'
[options]

[nas]
	sequence      = 7100:tcp,7200:udp,7300:tcp
	seq_timeout   = 10
	tcpflags      = syn,!ack
	start_command = /usr/share/latchkey/fw open %IP% tcp 2222 45 192.168.1.10 22 2001:db8::10
	cmd_timeout   = 45

[dns]
	sequence      = 5353:udp
	seq_timeout   = 15
	start_command = /usr/share/latchkey/fw open %IP% udp 53 30
	cmd_timeout   = 30"
if "$BIN" check -c "$R/var/etc/latchkey.conf" > "$W/check.out" 2>&1; then ok "latchkey check accepts it"; else bad "latchkey check"; cat "$W/check.out"; fi

# --- 5. bad doors are skipped with their reason; none left = no start -----------------------------
uci_cfg <<'EOF2'
config latchkey 'main'
	option enabled '1'
	option device 'eth0'

config door 'good'
	list sequence '1000'
	option port '22'

config door 'badport'
	list sequence '1000'
	list sequence '70000'
	option port '22'

config door 'noseq'
	option port '22'

config door 'badfwd'
	list sequence '1000'
	option port '22'
	option dest_ip 'lan-host'

config door 'off'
	option enabled '0'
	option port 'nonsense'
EOF2
svc start
has "bad sequence item named" "$R/tmp/logread" "door 'badport': bad sequence item '70000'"
has "missing sequence named" "$R/tmp/logread" "door 'noseq': no sequence"
has "bad dest_ip named" "$R/tmp/logread" "door 'badfwd': dest_ip 'lan-host' is not an IPv4 address"
hasnt "disabled door not even checked" "$R/tmp/logread" "'off'"
has "the good door still runs" "$R/tmp/procd.log" "^open_instance$"
[ "$(grep -c '^\[' "$R/var/etc/latchkey.conf")" = 2 ] && ok "only [options] and [good] generated" || bad "door count"; 
uci_cfg <<'EOF2'
config latchkey 'main'
	option enabled '1'
	option device 'eth0'

config door 'broken'
	list sequence 'x'
	option port '22'
EOF2
svc start
has "no usable door: says so" "$R/tmp/logread" "no usable door"
hasnt "no usable door: no instance" "$R/tmp/procd.log" "open_instance"

# --- 6. option config_file: a knockd-format file used as is ---------------------------------------
cat > "$R/etc/knockd.conf" <<'EOF2'
[options]
	Interface = eth0
[openSSH]
	sequence    = 7000,8000,9000
	seq_timeout = 5
	command     = /usr/share/latchkey/fw open %IP% tcp 22 10
	tcpflags    = syn
EOF2
uci_cfg <<'EOF2'
config latchkey 'main'
	option enabled '1'
	option network 'wan'
	option config_file '/etc/knockd.conf'
EOF2
wan_up pppoe-wan
svc start
has "config_file: passed to the daemon" "$R/tmp/procd.log" "^set_param command /usr/sbin/latchkey daemon -i pppoe-wan -c /etc/knockd.conf$"
has "config_file: procd watches it" "$R/tmp/procd.log" "^set_param file /etc/knockd.conf$"
echo "bogus line" >> "$R/etc/knockd.conf"
svc start
has "config_file with an error: FILE:LINE in the log" "$R/tmp/logread" "/etc/knockd.conf:8"
hasnt "config_file with an error: no instance" "$R/tmp/procd.log" "open_instance"

# --- 6b. several networks / devices: one daemon watches every device that is up ----------------
uci_cfg <<'EOF2'
config latchkey 'main'
	option enabled '1'
	option network 'wan wg'
	option config_file '/etc/knockd.conf'
EOF2
sed -i '/bogus line/d' "$R/etc/knockd.conf"
wan_up pppoe-wan
rm -f "$R/var/run/fake-netifd/wg"
svc start
has "two networks, one up: its device is watched" "$R/tmp/procd.log" "^set_param command /usr/sbin/latchkey daemon -i pppoe-wan -c /etc/knockd.conf$"
has "two networks, one up: says it waits for the other" "$R/tmp/logread" "network 'wg' is not up; waiting"
has "two networks: a trigger for each" "$R/tmp/procd.log" "add_reload_interface_trigger wg"
echo wg0 > "$R/var/run/fake-netifd/wg"
svc reload
has "two networks up: both devices, one daemon" "$R/tmp/procd.log" "^set_param command /usr/sbin/latchkey daemon -i pppoe-wan,wg0 -c /etc/knockd.conf$"
has "two networks up: procd follows both devices" "$R/tmp/procd.log" "^set_param netdev pppoe-wan wg0$"
uci_cfg <<'EOF2'
config latchkey 'main'
	option enabled '1'
	option device 'eth1, wg0'
	option config_file '/etc/knockd.conf'
EOF2
svc start
has "option device with two names" "$R/tmp/procd.log" "^set_param command /usr/sbin/latchkey daemon -i eth1,wg0 -c /etc/knockd.conf$"
rm -f "$R/var/run/fake-netifd/wg"

# --- 6c. option import_fwknopd: fwknopd's stanzas become SPA doors -------------------------------
# From /etc/fwknop (OpenWrt's stock /etc/config/fwknopd, uci_enabled not set, is not read): a good
# stanza, one with CMD_CYCLE_OPEN, one without an HMAC key, a GnuPG one, and one with passphrases
# and no REQUIRE_SOURCE_ADDRESS; fwknopd.conf's port and packet age.
FK=W71GMIGS9Fvy0fWjHOUmThOiYm8VRsnfi7ctLoZnCBI=
FH=hmfIlOFc+JJkhrxebwuC3cU8GYXcxvOkzt5VxRp0Ry2erOnlGpB0PY/tzxL+kjIHqiIX977kYCFK+3i9MT9now==
mkdir -p "$R/etc/fwknop"
cat > "$R/etc/config/fwknopd" <<'EOF2'
config global
	# option uci_enabled '1'

config network
	# option network 'wan'

config access
	option SOURCE 'ANY'
	option HMAC_KEY '__CHANGEME__'
	option KEY '__CHANGEME__'

config config
	option ENABLE_IPT_FORWARDING 'Y'
	option ENABLE_NAT_DNS 'Y'
EOF2
cat > "$R/etc/fwknop/fwknopd.conf" <<'EOF2'
# fwknopd.conf
PCAP_FILTER                 udp port 40001
MAX_SPA_PACKET_AGE          60
ENABLE_IPT_FORWARDING       Y
EOF2
cat > "$R/etc/fwknop/access.conf" <<EOF2
# access.conf
SOURCE                  ANY
KEY_BASE64              $FK
HMAC_KEY_BASE64         $FH
OPEN_PORTS              tcp/22
FW_ACCESS_TIMEOUT       45
REQUIRE_SOURCE_ADDRESS  Y

SOURCE                  192.0.2.0/24
KEY                     correct horse
HMAC_KEY                battery staple
CMD_CYCLE_OPEN          /usr/sbin/nft add element inet fw4 allow { \$IP . \$PORT }
CMD_CYCLE_CLOSE         NONE

SOURCE                  ANY
KEY_BASE64              $FK

SOURCE                  ANY
GPG_DECRYPT_ID          ABCD1234
GPG_REMOTE_ID           5678EFAB

SOURCE:                 192.0.2.0/24, 2001:db8::/32
KEY                     correct horse
HMAC_KEY                battery staple ; fwknopd ends a value at ';'
RESTRICT_PORTS          tcp/23
MAX_FW_TIMEOUT          600
EOF2
uci_cfg <<'EOF2'
config latchkey 'main'
	option enabled '1'
	option device 'eth0'
	option import_fwknopd '1'

config door 'ssh'
	list sequence '7000'
	option port '22'
EOF2
touch "$R/etc/init.d/fwknopd"; ln -sf ../init.d/fwknopd "$R/etc/rc.d/S95fwknopd"
svc start
has "import: the service runs" "$R/tmp/procd.log" "^open_instance$"
has "import: fwknopd's UCI config is a reload trigger too" "$R/tmp/procd.log" "^add_reload_trigger latchkey fwknopd$"
expect "import: the door, then the two stanzas that can be served as they say" "$R/var/etc/latchkey.conf" "# Generated from /etc/config/latchkey by /etc/init.d/latchkey; edits here are overwritten.
# For a hand-written knockd-format file set: option config_file '/etc/latchkey.conf'
[options]

[ssh]
	sequence      = 7000:tcp
	seq_timeout   = 15
	start_command = /usr/share/latchkey/fw open %IP% tcp 22 30
	cmd_timeout   = 30

# from /etc/fwknop/access.conf, stanza 1 (line 2)
[fwknop_1]
	SPA_Port        = 40001
	Source          = ANY
	Key_Base64      = $FK
	HMAC_Key_Base64 = $FH
	Open_Ports      = tcp/22
	Require_Source_Address = yes
	Cmd_Timeout     = 45
	Max_Packet_Age  = 60
	Start_Command   = /usr/share/latchkey/fw open %IP% %PROTO% %PORT% %TIMEOUT%

# from /etc/fwknop/access.conf, stanza 5 (line 22)
[fwknop_5]
	SPA_Port        = 40001
	Source          = 192.0.2.0/24, 2001:db8::/32
	Key             = correct horse
	HMAC_Key        = battery staple
	Restrict_Ports  = tcp/23
	Require_Source_Address = no
	Max_Timeout     = 600
	Max_Packet_Age  = 60
	Start_Command   = /usr/share/latchkey/fw open %IP% %PROTO% %PORT% %TIMEOUT%"
has "import: CMD_CYCLE_OPEN stanza skipped, named" "$R/tmp/logread" "daemon.err: fwknop import: /etc/fwknop/access.conf, stanza 2 \(line 9\) skipped: CMD_CYCLE_OPEN \(line 12\): "
has "import: stanza without HMAC key skipped" "$R/tmp/logread" "daemon.err: fwknop import: /etc/fwknop/access.conf, stanza 3 \(line 15\) skipped: no HMAC_KEY or HMAC_KEY_BASE64: fwknopd would accept unauthenticated packets"
has "import: GnuPG stanza skipped" "$R/tmp/logread" "daemon.err: fwknop import: /etc/fwknop/access.conf, stanza 4 \(line 18\) skipped: it uses GnuPG only"
has "import: GPG variables named as ignored" "$R/tmp/logread" "daemon.warning: fwknop import: /etc/fwknop/access.conf, stanza 4 \(line 18\): GPG_DECRYPT_ID \(line 19\): GnuPG is not supported; ignored"
has "import: REQUIRE_SOURCE_ADDRESS unset: fwknopd's N, with a warning" "$R/tmp/logread" "stanza 5 \(line 22\): REQUIRE_SOURCE_ADDRESS not set"
has "import: stanza without OPEN_PORTS: warned" "$R/tmp/logread" "stanza 5 \(line 22\): no OPEN_PORTS"
has "import: fwknopd.conf's plumbing named as ignored" "$R/tmp/logread" "daemon.warning: fwknop import: /etc/fwknop/fwknopd.conf: ENABLE_IPT_FORWARDING \(line 4\): ignored"
has "import: says fwknopd is still enabled" "$R/tmp/logread" "fwknopd is enabled too"
hasnt "import: /etc/config/fwknopd without uci_enabled is not read" "$R/tmp/logread" "__CHANGEME__|ENABLE_NAT_DNS"
if "$BIN" check -c "$R/var/etc/latchkey.conf" > "$W/check.out" 2>&1; then ok "latchkey check accepts the imported config"; else bad "latchkey check (import)"; cat "$W/check.out"; fi
rm -f "$R/etc/rc.d/S95fwknopd" "$R/etc/init.d/fwknopd"

# /etc/config/fwknopd with uci_enabled 1: its access sections and config options, not the files
cat > "$R/etc/config/fwknopd" <<EOF2
config global
	option uci_enabled '1'

config network
	option network 'wan'

config access
	option SOURCE 'ANY'
	option keytype 'Base 64 key'
	option hkeytype 'Base 64 key'
	option KEY_BASE64 '$FK'
	option HMAC_KEY_BASE64 '$FH'
	option OPEN_PORTS 'tcp/22, udp/53'
	option REQUIRE_SOURCE_ADDRESS 'Y'
	option ENABLE_CMD_EXEC 'N'

config access
	option SOURCE 'ANY'
	option HMAC_KEY '__CHANGEME__'
	option KEY '__CHANGEME__'

config access
	option SOURCE 'ANY'
	option KEY_BASE64 '$FK'
	option HMAC_KEY_BASE64 '$FH'
	option ENABLE_CMD_EXEC 'Y'

config access
	option SOURCE 'ANY'
	option KEY 'correct horse
[evil]'
	option HMAC_KEY 'battery staple'

config config
	option PCAP_FILTER 'udp port 62201'
	option MAX_SPA_PACKET_AGE '90'
	option ENABLE_IPT_FORWARDING 'Y'
EOF2
svc start
expect "import (uci_enabled 1): the door and the one served access section" "$R/var/etc/latchkey.conf" "# Generated from /etc/config/latchkey by /etc/init.d/latchkey; edits here are overwritten.
# For a hand-written knockd-format file set: option config_file '/etc/latchkey.conf'
[options]

[ssh]
	sequence      = 7000:tcp
	seq_timeout   = 15
	start_command = /usr/share/latchkey/fw open %IP% tcp 22 30
	cmd_timeout   = 30

# from /etc/config/fwknopd, stanza 1 (config access 'cfg3')
[fwknop_1]
	SPA_Port        = 62201
	Source          = ANY
	Key_Base64      = $FK
	HMAC_Key_Base64 = $FH
	Open_Ports      = tcp/22, udp/53
	Require_Source_Address = yes
	Max_Packet_Age  = 90
	Start_Command   = /usr/share/latchkey/fw open %IP% %PROTO% %PORT% %TIMEOUT%"
has "import (uci): LuCI's keytype named as ignored" "$R/tmp/logread" "daemon.warning: fwknop import: /etc/config/fwknopd, stanza 1 \(config access 'cfg3'\): option keytype: ignored"
has "import (uci): the __CHANGEME__ placeholder skipped" "$R/tmp/logread" "stanza 2 \(config access 'cfg4'\) skipped: option (HMAC_)?KEY: still the placeholder __CHANGEME__"
has "import (uci): ENABLE_CMD_EXEC Y skipped" "$R/tmp/logread" "stanza 3 \(config access 'cfg5'\) skipped: option ENABLE_CMD_EXEC: 'Y': SPA command messages \(remote commands\) are never run"
has "import (uci): a value with a line break skipped" "$R/tmp/logread" "stanza 4 \(config access 'cfg6'\) skipped: option KEY: the value holds a line break"
hasnt "import (uci): nothing of the line break reaches the file" "$R/var/etc/latchkey.conf" "evil|correct horse"
has "import (uci): its config options are fwknopd.conf's" "$R/tmp/logread" "/etc/config/fwknopd: config config, option ENABLE_IPT_FORWARDING: ignored"
has "import (uci): fwknopd's network is not used, and says so" "$R/tmp/logread" "config network is not used; latchkey watches the devices of its own option network"
if "$BIN" check -c "$R/var/etc/latchkey.conf" > "$W/check.out" 2>&1; then ok "latchkey check accepts it"; else bad "latchkey check (import, uci)"; cat "$W/check.out"; fi

# fwknopd.conf's ACCESS_FILE, an %include beside it, two UDP ports in PCAP_FILTER (one section
# per stanza and port, the TCP one dropped with a warning)
rm -f "$R/etc/config/fwknopd"
mkdir -p "$R/etc/fwknop/more"
printf '%s\n' "PCAP_FILTER udp port 40001 or udp dst port 40002 or tcp port 40003" \
	"ACCESS_FILE /etc/fwknop/main.conf" > "$R/etc/fwknop/fwknopd.conf"
printf '%s\n' "%include more/inc.conf" "%include_folder more/d" > "$R/etc/fwknop/main.conf"
printf '%s\n' "SOURCE 192.0.2.2" "KEY correct horse" "HMAC_KEY battery staple" "OPEN_PORTS tcp/22" \
	"REQUIRE_SOURCE_ADDRESS yes" > "$R/etc/fwknop/more/inc.conf"
# a file whose name would put a section of its own into the comment that names it: not read
mkdir -p "$R/etc/fwknop/more/d"
cp "$R/etc/fwknop/more/inc.conf" "$R/etc/fwknop/more/d/x
[evil]
.conf"
svc start
expect "import: ACCESS_FILE, %include, %include_folder, a section per SPA port" "$R/var/etc/latchkey.conf" "# Generated from /etc/config/latchkey by /etc/init.d/latchkey; edits here are overwritten.
# For a hand-written knockd-format file set: option config_file '/etc/latchkey.conf'
[options]

[ssh]
	sequence      = 7000:tcp
	seq_timeout   = 15
	start_command = /usr/share/latchkey/fw open %IP% tcp 22 30
	cmd_timeout   = 30

# from /etc/fwknop/more/inc.conf, stanza 1 (line 1)
[fwknop_1_40001]
	SPA_Port        = 40001
	Source          = 192.0.2.2
	Key             = correct horse
	HMAC_Key        = battery staple
	Open_Ports      = tcp/22
	Require_Source_Address = yes
	Start_Command   = /usr/share/latchkey/fw open %IP% %PROTO% %PORT% %TIMEOUT%

# from /etc/fwknop/more/inc.conf, stanza 1 (line 1)
[fwknop_1_40002]
	SPA_Port        = 40002
	Source          = 192.0.2.2
	Key             = correct horse
	HMAC_Key        = battery staple
	Open_Ports      = tcp/22
	Require_Source_Address = yes
	Start_Command   = /usr/share/latchkey/fw open %IP% %PROTO% %PORT% %TIMEOUT%"
has "import: PCAP_FILTER's TCP port named as ignored" "$R/tmp/logread" "fwknopd.conf: PCAP_FILTER \(line 1\): TCP ports ignored"
has "import: %include_folder: a file name with a line break is not read" "$R/tmp/logread" "fwknop import: a file name with a line break is not read"
if "$BIN" check -c "$R/var/etc/latchkey.conf" > "$W/check.out" 2>&1; then ok "latchkey check accepts it"; else bad "latchkey check (import, two ports)"; cat "$W/check.out"; fi

# nothing left to serve: no instance; a PCAP_FILTER it cannot read imports nothing
uci_cfg <<'EOF2'
config latchkey 'main'
	option enabled '1'
	option device 'eth0'
	option import_fwknopd '1'
EOF2
rm -f "$R/etc/config/fwknopd"
echo "PCAP_FILTER udp portrange 40000-40010" > "$R/etc/fwknop/fwknopd.conf"
svc start
has "import: an unreadable PCAP_FILTER imports nothing, named" "$R/tmp/logread" "fwknopd.conf: PCAP_FILTER \(line 1\): 'udp portrange 40000-40010' is not understood.*; nothing imported"
has "import: no door at all: says so" "$R/tmp/logread" "no usable door in /etc/config/latchkey nor in fwknopd's configuration"
hasnt "import: no door at all: no instance" "$R/tmp/procd.log" "open_instance"
rm -rf "$R/etc/fwknop"

# --- 7. stop closes every door (fw flush), prerm disables -----------------------------------------
mkdir -p "$R/var/run/latchkey"; echo "999 30 192.0.2.2 tcp 22" > "$R/var/run/latchkey/grants"
svc stop
[ ! -e "$R/var/run/latchkey/grants" ] && ok "stop: grants forgotten (fw flush)" || bad "stop: grants file left"
pm_remove
[ ! -e "$R/etc/rc.d/S95latchkey" ] && ok "removal (prerm) disabled the service" || bad "prerm disable"
has "removal (prerm) drops the firewall include" "$R/tmp/uci.log" "delete firewall.latchkey"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
