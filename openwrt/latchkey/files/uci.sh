# latchkey: /etc/config/latchkey -> knockd-format config for the daemon. Sourced by
# /etc/init.d/latchkey after `config_load latchkey` (OpenWrt's /lib/functions.sh).
#
#   latchkey_generate OUT      writes OUT from every enabled `config door` and `config spa_door`
#                              section; returns 1 when no usable door is left (each rejected door
#                              is logged with its name)
#
# A door:
#   config door 'ssh'
#       option enabled '1'
#       list sequence '7000'           port[:tcp|:udp], in order (tcp when not given)
#       list sequence '8000:udp'
#       list sequence '9000'
#       option seq_timeout '15'        seconds for the whole sequence, from the first knock
#       option open_time '30'          seconds the door stays open for new connections
#       option proto 'tcp'             what opens: tcp|udp
#       option port '22'               a port on the router (e.g. dropbear) ...
#       option dest_ip '192.168.1.10'  ... or, with dest_ip: WAN `port` forwarded to dest_ip:dest_port
#       option dest_port '22'          (default: port)
#       option dest_ip6 '2001:db8::10' IPv6 knockers get this LAN host's dest_port (no NAT)
#       option tcpflags 'syn,!ack'     optional, passed through (knockd's TCPFlags)
#       option target '198.51.100.7'   optional, passed through (knockd's Target)
# An SPA door (fwknop's Single Packet Authorization: one encrypted, authenticated UDP packet
# from `fwknop` or `latchkey knock --spa`, keys from `latchkey keygen` or `fwknop --key-gen`):
#   config spa_door 'ssh_spa'
#       option enabled '1'
#       option port '62201'             UDP port the SPA packets are sent to (fwknop's default)
#       option key_base64 '...'         KEY_BASE64 (encryption key)
#       option hmac_key_base64 '...'    HMAC_KEY_BASE64
#       list open_ports 'tcp/22'        what a packet may ask for (fwknop -A); at least one
#       option open_time '30'           seconds a port stays open when the client asks for none
#       option max_timeout '300'        ceiling for the client's own time (fwknop -f)
#       option require_source_address '1'  refuse packets that ask for 0.0.0.0 (fwknop -s)
#       list source '198.51.100.0/24'   optional: only these senders (default: any)
# Its ports open on the router itself (e.g. dropbear on 22), for the address in the packet.
# Doors open through /usr/share/latchkey/fw, which puts timed elements into nftables/ipset sets.
#
# fwknopd's configuration, imported as SPA doors (option import_fwknopd '1' in `config latchkey
# 'main'`), read as OpenWrt's fwknopd package reads it: the `config access` sections of
# /etc/config/fwknopd (options named as access.conf's variables) and its `config config` options
# when that file's `config global` has option uci_enabled '1', else /etc/fwknop/fwknopd.conf and
# the access.conf it names (/etc/fwknop/access.conf by default). Each stanza becomes [fwknop_N]
# (fwknop_N_PORT per port when fwknopd.conf names several), N counting every stanza in file
# order. A stanza that cannot be served as it says (no HMAC key, GnuPG only, another digest or
# mode, commands, NAT, an end date, a variable not known here) is skipped and named in the log,
# as is one the daemon's own `latchkey check` refuses; harmless variables are ignored with a
# warning. See latchkey_fwknop_var for each variable.

# The daemon knows the helper by this path (it runs `/usr/share/latchkey/fw open` again to extend
# a grant): a test's stand-in must be called through a path that ends the same way.
LATCHKEY_FW=${LATCHKEY_FW:-/usr/share/latchkey/fw}

# The daemon, for `latchkey check` of each imported fwknopd stanza (skipped when it is not there:
# the init script checks the whole file anyway); where fwknopd's files are.
LATCHKEY_BIN=${LATCHKEY_BIN:-/usr/sbin/latchkey}
LATCHKEY_FWKNOP_DIR=${LATCHKEY_FWKNOP_DIR:-/etc/fwknop}

latchkey_err() { logger -t latchkey -p daemon.err "$*" 2>/dev/null; echo "latchkey: $*" >&2; }
latchkey_warn() { logger -t latchkey -p daemon.warning "$*" 2>/dev/null; echo "latchkey: $*" >&2; }

latchkey_is_port() { case $1 in ""|*[!0-9]*) return 1 ;; esac; [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }
latchkey_is_uint() { case $1 in ""|*[!0-9]*) return 1 ;; esac; [ "$1" -ge 1 ]; }
latchkey_is_ip4() { case $1 in *[!0-9.]*|"") return 1 ;; *.*.*.*) return 0 ;; esac; return 1; }
latchkey_is_ip6() { case $1 in *[!0-9a-fA-F:]*|"") return 1 ;; *:*) return 0 ;; esac; return 1; }

# one list item of `sequence`: normalise to port:proto, or complain
latchkey_seq_item() {
	local item=$1 port proto
	port=${item%%:*}; proto=tcp
	case $item in *:*) proto=$(echo "${item#*:}" | tr 'A-Z' 'a-z') ;; esac
	if ! latchkey_is_port "$port" || { [ "$proto" != tcp ] && [ "$proto" != udp ]; }; then
		latchkey_err "door '$LATCHKEY_DOOR': bad sequence item '$item' (want port[:tcp|:udp], port 1-65535)"
		LATCHKEY_BAD=1; return
	fi
	LATCHKEY_SEQ="${LATCHKEY_SEQ:+$LATCHKEY_SEQ,}$port:$proto"
}

latchkey_door() {
	local s=$1 enabled seq_timeout open_time proto port dest_ip dest_port dest_ip6 tcpflags target fwd=
	LATCHKEY_DOOR=$s LATCHKEY_SEQ= LATCHKEY_BAD=0
	config_get_bool enabled "$s" enabled 1
	[ "$enabled" = 1 ] || return 0
	case $s in *[!A-Za-z0-9_]*) latchkey_err "door '$s': name may hold only letters, digits and _"; return 0 ;; esac
	config_list_foreach "$s" sequence latchkey_seq_item
	config_get seq_timeout "$s" seq_timeout 15
	config_get open_time "$s" open_time 30
	config_get proto "$s" proto tcp
	config_get port "$s" port
	config_get dest_ip "$s" dest_ip
	config_get dest_port "$s" dest_port "$port"
	config_get dest_ip6 "$s" dest_ip6
	config_get tcpflags "$s" tcpflags
	config_get target "$s" target
	[ -n "$LATCHKEY_SEQ" ] || { latchkey_err "door '$s': no sequence"; LATCHKEY_BAD=1; }
	latchkey_is_uint "$seq_timeout" || { latchkey_err "door '$s': seq_timeout '$seq_timeout' is not a number of seconds"; LATCHKEY_BAD=1; }
	latchkey_is_uint "$open_time" || { latchkey_err "door '$s': open_time '$open_time' is not a number of seconds"; LATCHKEY_BAD=1; }
	case $proto in tcp|udp) ;; *) latchkey_err "door '$s': proto '$proto' (want tcp or udp)"; LATCHKEY_BAD=1 ;; esac
	latchkey_is_port "$port" || { latchkey_err "door '$s': port '$port' (want 1-65535)"; LATCHKEY_BAD=1; }
	if [ -n "$dest_ip" ] || [ -n "$dest_ip6" ]; then
		[ -z "$dest_ip" ] || latchkey_is_ip4 "$dest_ip" || { latchkey_err "door '$s': dest_ip '$dest_ip' is not an IPv4 address"; LATCHKEY_BAD=1; }
		[ -z "$dest_ip6" ] || latchkey_is_ip6 "$dest_ip6" || { latchkey_err "door '$s': dest_ip6 '$dest_ip6' is not an IPv6 address"; LATCHKEY_BAD=1; }
		latchkey_is_port "$dest_port" || { latchkey_err "door '$s': dest_port '$dest_port' (want 1-65535)"; LATCHKEY_BAD=1; }
		fwd="${dest_ip:--} $dest_port${dest_ip6:+ $dest_ip6}"
	fi
	[ "$LATCHKEY_BAD" = 0 ] || { latchkey_err "door '$s' skipped"; return 0; }
	{
		echo
		echo "[$s]"
		echo "	sequence      = $LATCHKEY_SEQ"
		echo "	seq_timeout   = $seq_timeout"
		[ -z "$tcpflags" ] || echo "	tcpflags      = $tcpflags"
		[ -z "$target" ] || echo "	target        = $target"
		# No stop command: the firewall element carries its own timeout, so the door closes
		# on time even without the daemon; a knock during a live grant runs `fw open` again
		# (the daemon does so for start commands that call .../latchkey/fw open, at most once
		# a second), which refreshes the timeout.
		echo "	start_command = $LATCHKEY_FW open %IP% $proto $port $open_time${fwd:+ $fwd}"
		echo "	cmd_timeout   = $open_time"
	} >> "$LATCHKEY_OUT.tmp"
	LATCHKEY_DOORS=$((LATCHKEY_DOORS + 1)) LATCHKEY_NAMES="$LATCHKEY_NAMES $s"
}

# one list item of an SPA door's `open_ports` / `source`: collected space-separated
latchkey_spa_port() {
	case $1 in
	tcp/*|udp/*) latchkey_is_port "${1#*/}" && { LATCHKEY_PORTS="${LATCHKEY_PORTS:+$LATCHKEY_PORTS,}$1"; return; } ;;
	esac
	latchkey_err "spa_door '$LATCHKEY_DOOR': bad open_ports item '$1' (want tcp/PORT or udp/PORT)"
	LATCHKEY_BAD=1
}
latchkey_spa_source() {
	case $1 in *[!0-9a-fA-F.:/]*|"") latchkey_err "spa_door '$LATCHKEY_DOOR': bad source '$1'"; LATCHKEY_BAD=1; return ;; esac
	LATCHKEY_SRCS="${LATCHKEY_SRCS:+$LATCHKEY_SRCS, }$1"
}
latchkey_is_b64() { case $1 in ""|*[!A-Za-z0-9+/=]*) return 1 ;; esac; return 0; }

latchkey_spa_door() {
	local s=$1 enabled port key hmac open_time max_timeout require
	LATCHKEY_DOOR=$s LATCHKEY_PORTS= LATCHKEY_SRCS= LATCHKEY_BAD=0
	config_get_bool enabled "$s" enabled 1
	[ "$enabled" = 1 ] || return 0
	case $s in *[!A-Za-z0-9_]*) latchkey_err "spa_door '$s': name may hold only letters, digits and _"; return 0 ;; esac
	config_get port "$s" port 62201
	config_get key "$s" key_base64
	config_get hmac "$s" hmac_key_base64
	config_get open_time "$s" open_time 30
	config_get max_timeout "$s" max_timeout 300
	config_get_bool require "$s" require_source_address 1
	config_list_foreach "$s" open_ports latchkey_spa_port
	config_list_foreach "$s" source latchkey_spa_source
	latchkey_is_port "$port" || { latchkey_err "spa_door '$s': port '$port' (want 1-65535)"; LATCHKEY_BAD=1; }
	latchkey_is_b64 "$key" || { latchkey_err "spa_door '$s': key_base64 missing or not base64 (latchkey keygen makes one)"; LATCHKEY_BAD=1; }
	latchkey_is_b64 "$hmac" || { latchkey_err "spa_door '$s': hmac_key_base64 missing or not base64 (latchkey keygen makes one)"; LATCHKEY_BAD=1; }
	[ -n "$LATCHKEY_PORTS" ] || { latchkey_err "spa_door '$s': no open_ports (e.g. list open_ports 'tcp/22')"; LATCHKEY_BAD=1; }
	latchkey_is_uint "$open_time" || { latchkey_err "spa_door '$s': open_time '$open_time' is not a number of seconds"; LATCHKEY_BAD=1; }
	latchkey_is_uint "$max_timeout" || { latchkey_err "spa_door '$s': max_timeout '$max_timeout' is not a number of seconds"; LATCHKEY_BAD=1; }
	[ "$LATCHKEY_BAD" = 0 ] || { latchkey_err "spa_door '$s' skipped"; return 0; }
	{
		echo
		echo "[$s]"
		echo "	SPA_Port        = $port"
		echo "	Key_Base64      = $key"
		echo "	HMAC_Key_Base64 = $hmac"
		echo "	Open_Ports      = $LATCHKEY_PORTS"
		[ -z "$LATCHKEY_SRCS" ] || echo "	Source          = $LATCHKEY_SRCS"
		echo "	Require_Source_Address = $([ "$require" = 1 ] && echo yes || echo no)"
		echo "	Cmd_Timeout     = $open_time"
		echo "	Max_Timeout     = $max_timeout"
		# As for knock doors: no stop command, the firewall element carries its own timeout.
		echo "	Start_Command   = $LATCHKEY_FW open %IP% %PROTO% %PORT% %TIMEOUT%"
	} >> "$LATCHKEY_OUT.tmp"
	LATCHKEY_DOORS=$((LATCHKEY_DOORS + 1)) LATCHKEY_NAMES="$LATCHKEY_NAMES $s"
}

# --- fwknopd's configuration as SPA doors (option import_fwknopd) ------------------------------
# State of the stanza being read: LKF_ON (1 inside one), LKF_N (its number), LKF_WHERE (what the
# log and the comment above its section call it), LKF_BAD (why it is skipped; the first reason),
# and one LKF_<knockd key> value with LKF_<knockd key>_AT (its variable and line) per key it sets.
LKF_TAB='	'
LKF_CR=$(printf '\r')
LKF_NL='
'
LKF_KEYS="Source Destination Key HMAC Open_Ports Restrict_Ports Require_Source_Address Require_Username Cmd_Timeout Max_Timeout"

# LKF_U=NAME in capitals (a fork only for names that need it: access.conf's are capitals)
latchkey_fwknop_upper() {
	LKF_U=$1
	case $1 in *[a-z]*) LKF_U=$(printf '%s' "$1" | tr 'a-z' 'A-Z') ;; esac
}

# LKF_V=VALUE as fwknopd reads it: up to the first ';', without the blanks around it
latchkey_fwknop_value() {
	LKF_V=${1%%;*}
	LKF_V=${LKF_V#"${LKF_V%%[!" $LKF_TAB$LKF_CR"]*}"}
	LKF_V=${LKF_V%"${LKF_V##*[!" $LKF_TAB$LKF_CR"]}"}
}

# LKF_D=a whole number without its leading zeros (shell arithmetic would read 062201 as octal)
latchkey_fwknop_dec() { LKF_D=${1#"${1%%[!0]*}"}; LKF_D=${LKF_D:-0}; }

latchkey_fwknop_yes() { case $1 in [Yy]|[Yy][Ee][Ss]|1) return 0 ;; esac; return 1; }
latchkey_fwknop_no() { case $1 in [Nn]|[Nn][Oo]|0) return 0 ;; esac; return 1; }
# whole seconds from 1 to 8388608, fwknopd's limit for its timeouts: LKF_D
latchkey_fwknop_secs() {
	case $1 in ""|*[!0-9]*) return 1 ;; esac
	latchkey_fwknop_dec "$1"
	case $LKF_D in 0|????????*) return 1 ;; esac
	[ "$LKF_D" -le 8388608 ]
}

latchkey_fwknop_begin() { # WHERE
	local k
	LKF_N=$((LKF_N + 1)) LKF_ON=1 LKF_WHERE=$1 LKF_BAD='' LKF_GPG=''
	for k in $LKF_KEYS; do eval "LKF_$k='' LKF_${k}_AT="; done
}

# a stanza's mistake: the first one is the reason it is skipped
latchkey_fwknop_bad() { [ -n "$LKF_BAD" ] || LKF_BAD=$1; }

# latchkey_fwknop_set KNOCKD-KEY VALUE AT [KNOCKD-NAME]: the stanza sets KNOCKD-KEY (for the
# keys, KNOCKD-NAME says which form: Key or Key_Base64, HMAC_Key or HMAC_Key_Base64)
latchkey_fwknop_set() {
	[ -n "$2" ] || { latchkey_fwknop_bad "$3: no value"; return; }
	eval "LKF_$1=\$2 LKF_${1}_AT=\$3"
	[ -z "${4:-}" ] || eval "LKF_${1}_NAME=\$4"
}

# latchkey_fwknop_var NAME VALUE AT: one access.conf variable of the current stanza (VALUE as
# latchkey_fwknop_value made it; AT says where, e.g. "KEY (line 4)"). Mirrors latchkey's own
# access.conf reader (src/fwknop/access.rs) where the generated file can say the same, and skips
# the stanza where it cannot, or where the variable is unknown.
latchkey_fwknop_var() {
	local v="$2" at="$3"
	latchkey_fwknop_upper "$1"
	# No line break can reach the generated file, where it would start a key or section of its
	# own (access.conf is read line by line; a UCI value can hold one).
	case $v in *"$LKF_NL"*|*"$LKF_CR"*) latchkey_fwknop_bad "$at: the value holds a line break"; return ;; esac
	[ "$v" != __CHANGEME__ ] || { latchkey_fwknop_bad "$at: still the placeholder __CHANGEME__; set a real key (latchkey keygen or fwknop --key-gen makes one)"; return; }
	case $LKF_U in
	SOURCE) latchkey_fwknop_set Source "$v" "$at" ;;
	DESTINATION) latchkey_fwknop_set Destination "$v" "$at" ;;
	KEY) latchkey_fwknop_set Key "$v" "$at" Key ;;
	KEY_BASE64) latchkey_fwknop_set Key "$v" "$at" Key_Base64 ;;
	HMAC_KEY) latchkey_fwknop_set HMAC "$v" "$at" HMAC_Key ;;
	HMAC_KEY_BASE64) latchkey_fwknop_set HMAC "$v" "$at" HMAC_Key_Base64 ;;
	OPEN_PORTS) latchkey_fwknop_set Open_Ports "$v" "$at" ;;
	RESTRICT_PORTS) latchkey_fwknop_set Restrict_Ports "$v" "$at" ;;
	FW_ACCESS_TIMEOUT|MAX_FW_TIMEOUT)
		latchkey_fwknop_secs "$v" || { latchkey_fwknop_bad "$at: '$v': expected seconds from 1 to 8388608"; return; }
		if [ "$LKF_U" = FW_ACCESS_TIMEOUT ]; then latchkey_fwknop_set Cmd_Timeout "$LKF_D" "$at"
		else latchkey_fwknop_set Max_Timeout "$LKF_D" "$at"; fi ;;
	REQUIRE_SOURCE_ADDRESS|REQUIRE_SOURCE)
		if latchkey_fwknop_yes "$v"; then latchkey_fwknop_set Require_Source_Address yes "$at"
		elif latchkey_fwknop_no "$v"; then latchkey_fwknop_set Require_Source_Address no "$at"
		else latchkey_fwknop_bad "$at: '$v': expected Y or N"; fi ;;
	REQUIRE_USERNAME) latchkey_fwknop_set Require_Username "$v" "$at" ;;
	HMAC_DIGEST_TYPE)
		case $v in [Ss][Hh][Aa]256) ;; *) latchkey_fwknop_bad "$at: '$v': only SHA256 is served" ;; esac ;;
	ENCRYPTION_MODE)
		case $v in [Cc][Bb][Cc]) ;; *) latchkey_fwknop_bad "$at: '$v': only CBC (fwknop's default) is served" ;; esac ;;
	CMD_CYCLE_OPEN|CMD_CYCLE_CLOSE)
		# fwknopd's $IP/$PKT_SRC/$DST, $PROTO as a number, $TIMEOUT as a date and its way of
		# running a command (split at blanks, no shell) have no exact knockd-style equivalent
		latchkey_fwknop_bad "$at: fwknopd's command variables and way of running commands differ from latchkey's %IP% %PROTO% %PORT% %TIMEOUT%; write a config spa_door or a knockd-format Start_Command instead" ;;
	CMD_CYCLE_TIMER) ;; # only used with CMD_CYCLE_OPEN, which is skipped
	ACCESS_EXPIRE|ACCESS_EXPIRE_EPOCH)
		latchkey_fwknop_bad "$at: an end date cannot be said in the generated config (latchkey fwknopd honours it on arm and x86 builds)" ;;
	ENABLE_CMD_EXEC|ENABLE_CMD_SUDO_EXEC)
		latchkey_fwknop_no "$v" || latchkey_fwknop_bad "$at: '$v': SPA command messages (remote commands) are never run" ;;
	FORCE_NAT|FORCE_SNAT|FORCE_MASQUERADE|DISABLE_DNAT|FORWARD_ALL)
		latchkey_fwknop_no "$v" || latchkey_fwknop_bad "$at: '$v': NAT access is not supported" ;;
	GPG_*)
		LKF_GPG=1
		latchkey_warn "fwknop import: $LKF_WHERE: $at: GnuPG is not supported; ignored" ;;
	CMD_EXEC_USER|CMD_EXEC_GROUP|CMD_SUDO_EXEC_USER|CMD_SUDO_EXEC_GROUP|KEYTYPE|HKEYTYPE)
		latchkey_warn "fwknop import: $LKF_WHERE: $at: ignored (not used by latchkey)" ;;
	%INCLUDE_KEYS) latchkey_fwknop_bad "$at: not supported; put the keys in the stanza" ;;
	*) latchkey_fwknop_bad "$at: unknown access variable; the stanza is skipped rather than served without it" ;;
	esac
}

# latchkey_fwknop_put KNOCKD-KEY VALUE AT: one line of the stanza's section, remembering which
# variable it came from (LKF_MAP, "LINE=AT" lines) to name it when `latchkey check` refuses it
latchkey_fwknop_put() {
	printf '\t%-15s = %s\n' "$1" "$2" >> "$LKF_SEC"
	LKF_LINE=$((LKF_LINE + 1))
	[ -z "$3" ] || LKF_MAP="$LKF_MAP$LKF_LINE=$3$LKF_NL"
}

# the stanza read so far: its section(s), or the reason it is skipped
latchkey_fwknop_end() {
	local port name k v at msg line
	[ "$LKF_ON" = 1 ] || return 0
	LKF_ON=0
	if [ -z "$LKF_Key" ] && [ -n "$LKF_GPG" ]; then
		latchkey_fwknop_bad "it uses GnuPG only (no KEY or KEY_BASE64); latchkey serves Rijndael with HMAC-SHA256"
	elif [ -z "$LKF_Key" ]; then
		latchkey_fwknop_bad "no KEY or KEY_BASE64"
	elif [ -z "$LKF_HMAC" ]; then
		latchkey_fwknop_bad "no HMAC_KEY or HMAC_KEY_BASE64: fwknopd would accept unauthenticated packets, latchkey requires an HMAC key"
	fi
	[ -n "$LKF_Source" ] || latchkey_fwknop_bad "no SOURCE"
	[ -z "$LKF_BAD" ] || { latchkey_err "fwknop import: $LKF_WHERE skipped: $LKF_BAD"; return 0; }
	# a section per SPA port; checked alone first, with an empty [options]
	LKF_SEC=$LATCHKEY_OUT.fwknop LKF_LINE=1 LKF_MAP=''
	echo "[options]" > "$LKF_SEC"
	for port in $LKF_PORTS; do
		name=fwknop_$LKF_N
		[ "$LKF_PORTS" = "$port" ] || name=${name}_$port
		case " $LATCHKEY_NAMES " in
		*" $name "*) rm -f "$LKF_SEC"; latchkey_err "fwknop import: $LKF_WHERE skipped: [$name] is the name of a door in /etc/config/latchkey; rename that door"; return 0 ;;
		esac
		{ echo; echo "# from $LKF_WHERE"; echo "[$name]"; } >> "$LKF_SEC"
		LKF_LINE=$((LKF_LINE + 3))
		latchkey_fwknop_put SPA_Port "$port" "$LKF_PORT_AT"
		for k in $LKF_KEYS; do
			eval "v=\$LKF_$k at=\$LKF_${k}_AT"
			case $k in
			Key|HMAC) eval "k=\$LKF_${k}_NAME" ;;
			# fwknopd's default; a new latchkey door's is yes
			Require_Source_Address) [ -n "$v" ] || v=no ;;
			esac
			[ -z "$v" ] || latchkey_fwknop_put "$k" "$v" "$at"
		done
		[ -z "$LKF_AGE" ] || latchkey_fwknop_put Max_Packet_Age "$LKF_AGE" "$LKF_AGE_AT"
		# As for spa_door sections: the helper's element carries its own timeout.
		latchkey_fwknop_put Start_Command "$LATCHKEY_FW open %IP% %PROTO% %PORT% %TIMEOUT%" ""
	done
	if [ -x "$LATCHKEY_BIN" ] && ! "$LATCHKEY_BIN" check -c "$LKF_SEC" < /dev/null > /dev/null 2> "$LKF_SEC.err"; then
		# FILE:LINE: why, for the first mistake; LINE names the variable it came from
		msg=$(head -n 1 "$LKF_SEC.err")
		msg=${msg#"$LKF_SEC":}
		line=${msg%%:*} msg=${msg#*: } at=''
		while IFS='=' read -r k v; do [ "$k" != "$line" ] || at="$v: "; done <<EOF
$LKF_MAP
EOF
		rm -f "$LKF_SEC" "$LKF_SEC.err"
		latchkey_err "fwknop import: $LKF_WHERE skipped: $at$msg"
		return 0
	fi
	rm -f "$LKF_SEC.err"
	[ -n "$LKF_Require_Source_Address" ] || latchkey_warn "fwknop import: $LKF_WHERE: REQUIRE_SOURCE_ADDRESS not set: a packet asking for 0.0.0.0 opens for its sender (fwknopd's default; set it to Y to refuse those)"
	[ -n "$LKF_Open_Ports" ] || latchkey_warn "fwknop import: $LKF_WHERE: no OPEN_PORTS: a packet may open any port of the router (as with fwknopd)"
	sed 1d "$LKF_SEC" >> "$LATCHKEY_OUT.tmp"
	rm -f "$LKF_SEC"
	for port in $LKF_PORTS; do LKF_DOORS=$((LKF_DOORS + 1)); done
}

# latchkey_fwknop_conf NAME VALUE AT: one fwknopd.conf variable (from the file or from a UCI
# `config config` section): notes the SPA ports (PCAP_FILTER's UDP ones, or UDPSERV_PORT under
# ENABLE_UDP_SERVER Y) and the packet age for latchkey_fwknop_settings; a value it cannot honour
# sets LKF_CONF_BAD, and nothing is imported.
latchkey_fwknop_conf() {
	local v="$2" at="$3" w alt='' tcp='' ports=''
	latchkey_fwknop_upper "$1"
	case $LKF_U in
	PCAP_FILTER)
		# `[udp|tcp] [dst] port N`, alternatives joined by `or`, as latchkey fwknopd reads it
		set -f
		# shellcheck disable=SC2046 # split into words on purpose
		set -- $(printf '%s' "$v" | tr 'A-Z' 'a-z') or
		set +f
		for w; do
			[ "$w" = or ] || { alt="$alt $w"; continue; }
			set -f
			# shellcheck disable=SC2086
			set -- $alt
			set +f
			alt=''
			w=any
			case ${1:-} in udp|tcp) w=$1; shift ;; esac
			[ "${1:-}" != dst ] || shift
			if [ $# != 2 ] || [ "$1" != port ] || ! latchkey_is_port "$2"; then
				LKF_CONF_BAD="$at: '$v' is not understood; expected 'udp [dst] port N [or udp port M ...]'"
				return
			fi
			[ "$w" = udp ] || tcp=1
			latchkey_fwknop_dec "$2"
			[ "$w" = tcp ] || case " $ports " in *" $LKF_D "*) ;; *) ports="$ports $LKF_D" ;; esac
		done
		[ -n "$ports" ] || { LKF_CONF_BAD="$at: '$v' names no UDP port; SPA is served over UDP only"; return; }
		[ -z "$tcp" ] || latchkey_warn "fwknop import: $at: TCP ports ignored; SPA over TCP is not served"
		LKF_FILTER_PORTS=${ports# } LKF_FILTER_AT=$at ;;
	ENABLE_UDP_SERVER)
		if latchkey_fwknop_yes "$v"; then LKF_UDPSERV=1
		elif latchkey_fwknop_no "$v"; then LKF_UDPSERV=''
		else LKF_CONF_BAD="$at: '$v': expected Y or N"; fi ;;
	UDPSERV_PORT)
		latchkey_is_port "$v" || { LKF_CONF_BAD="$at: '$v': expected a port from 1 to 65535"; return; }
		latchkey_fwknop_dec "$v"
		LKF_UDPPORT=$LKF_D LKF_UDPPORT_AT=$at ;;
	ENABLE_SPA_PACKET_AGING)
		if latchkey_fwknop_yes "$v"; then LKF_AGING=1
		elif latchkey_fwknop_no "$v"; then LKF_AGING=0 LKF_AGING_AT=$at
		else LKF_CONF_BAD="$at: '$v': expected Y or N"; fi ;;
	MAX_SPA_PACKET_AGE)
		latchkey_fwknop_dec "$v"
		# 0 is "the same second" for fwknopd but "no aging" in latchkey's Max_Packet_Age
		case $LKF_D in *[!0-9]*|0|???????*) LKF_CONF_BAD="$at: '$v': expected seconds from 1 to 100000"; return ;; esac
		[ "$LKF_D" -le 100000 ] || { LKF_CONF_BAD="$at: '$v': expected seconds from 1 to 100000"; return; }
		LKF_AGE=$LKF_D LKF_AGE_AT=$at ;;
	ACCESS_FILE) LKF_ACCESS_FILE=$v ;;
	ACCESS_FOLDER) LKF_ACCESS_FOLDER=$v ;;
	PCAP_INTF) latchkey_warn "fwknop import: $at: not used; latchkey watches the devices of its own option network (or device) in /etc/config/latchkey" ;;
	*) latchkey_warn "fwknop import: $at: ignored (fwknopd's own plumbing, or unknown to it)" ;;
	esac
}

latchkey_fwknop_conf_line() { latchkey_fwknop_conf "$1" "$2" "$4: $1 (line $3)"; } # NAME VALUE LINE FILE

# the SPA ports and packet age, once fwknopd.conf is read
latchkey_fwknop_settings() {
	LKF_PORTS=${LKF_FILTER_PORTS:-62201} LKF_PORT_AT=$LKF_FILTER_AT
	[ -z "$LKF_UDPSERV" ] || LKF_PORTS=${LKF_UDPPORT:-62201} LKF_PORT_AT=$LKF_UDPPORT_AT
	[ "$LKF_AGING" = 1 ] && return 0
	LKF_AGE=0 LKF_AGE_AT=$LKF_AGING_AT
	latchkey_warn "fwknop import: $LKF_AGING_AT: packets never get too old, so latchkey's replay table fills up and then refuses every packet; keep aging on"
}

# latchkey_fwknop_read FILE FN [ARG...]: `FN NAME VALUE LINE ARG...` for each variable of FILE, as
# fwknopd reads its files: `NAME value` or `NAME: value`, the value up to `;`, `#` and `;` lines
# are comments
latchkey_fwknop_read() {
	local file="$1" fn="$2" n=0 line name
	shift 2
	while IFS='' read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		line=${line#"${line%%[!" $LKF_TAB"]*}"}
		case $line in ""|"#"*|";"*|"$LKF_CR") continue ;; esac
		name=${line%%[" $LKF_TAB"]*}
		latchkey_fwknop_value "${line#"$name"}"
		"$fn" "${name%:}" "$LKF_V" "$n" "$@"
	done < "$file"
}

# latchkey_fwknop_file FILE DEPTH: an access.conf; a stanza starts at each SOURCE line and ends at
# the next one, an %include, or the end of its file; %include and %include_folder are followed
# (three levels deep at most, relative paths beside FILE)
latchkey_fwknop_file() {
	# the name goes into the comment above each section: one line (a name in an %include_folder
	# could hold a line break)
	case $1 in *"$LKF_NL"*|*"$LKF_CR"*) latchkey_err "fwknop import: a file name with a line break is not read"; return ;; esac
	[ -r "$1" ] || { latchkey_err "fwknop import: cannot read $1"; return; }
	latchkey_fwknop_read "$1" latchkey_fwknop_access_line "$1" "$2"
	latchkey_fwknop_end
}
latchkey_fwknop_access_line() { # NAME VALUE LINE FILE DEPTH
	local name="$1" v="$2" n="$3" file="$4" depth="$5" path f
	latchkey_fwknop_upper "$name"
	case $LKF_U in
	SOURCE)
		latchkey_fwknop_end
		latchkey_fwknop_begin "$file, stanza $((LKF_N + 1)) (line $n)"
		latchkey_fwknop_var SOURCE "$v" "SOURCE (line $n)" ;;
	%INCLUDE|%INCLUDE_FOLDER)
		latchkey_fwknop_end
		case $v in /*) path=$v ;; *) path=${file%/*}/$v ;; esac
		if [ "$depth" -ge 3 ]; then
			latchkey_err "fwknop import: $file: $name (line $n): includes nested deeper than 3; not followed"
		elif [ "$LKF_U" = %INCLUDE ]; then
			latchkey_fwknop_file "$path" $((depth + 1))
		else
			for f in "$path"/*.conf; do
				[ ! -f "$f" ] || latchkey_fwknop_file "$f" $((depth + 1))
			done
		fi ;;
	*)
		if [ "$LKF_ON" = 1 ]; then
			latchkey_fwknop_var "$name" "$v" "$name (line $n)"
		else
			latchkey_warn "fwknop import: $file: $name (line $n): outside any stanza (before the first SOURCE line, or after an %include), ignored"
		fi ;;
	esac
}

# The UCI form (option uci_enabled '1'), as fwknopd's init script turns it into its two files: the
# options of `config config` sections are fwknopd.conf's (latchkey_fwknop_uci_conf FILE), each
# `config access` section is a stanza whose options are access.conf's (latchkey_fwknop_uci_access
# FILE; its init script writes no `list`: one is skipped). `config network` is fwknopd's
# interface, not used: latchkey has its own option network.
latchkey_fwknop_uci_conf() {
	local sec type o v
	for sec in $LKF_SECS; do
		type=${sec%%:*} sec=${sec#*:}
		[ "$type" = config ] || continue
		eval "o=\$LKF_O_$sec"
		for o in $o; do
			config_get v "$sec" "$o"
			latchkey_fwknop_value "$v"
			latchkey_fwknop_conf "$o" "$LKF_V" "$1: config config, option $o"
		done
	done
}
latchkey_fwknop_uci_access() {
	local sec type o v
	for sec in $LKF_SECS; do
		type=${sec%%:*} sec=${sec#*:}
		case $type in
		network) latchkey_warn "fwknop import: $1: config network is not used; latchkey watches the devices of its own option network (or device) in /etc/config/latchkey"; continue ;;
		access) ;;
		*) continue ;;
		esac
		latchkey_fwknop_begin "$1, stanza $((LKF_N + 1)) (config access '$sec')"
		eval "o=\$LKF_L_$sec"
		for o in $o; do latchkey_fwknop_bad "list $o: fwknopd reads options only (option $o '...')"; done
		eval "o=\$LKF_O_$sec"
		for o in $o; do
			config_get v "$sec" "$o"
			latchkey_fwknop_value "$v"
			latchkey_fwknop_var "$o" "$LKF_V" "option $o"
		done
		latchkey_fwknop_end
	done
}

# Prints how many doors it wrote to $LATCHKEY_OUT.tmp. Run in a subshell: it loads
# /etc/config/fwknopd, and defines config_load's callbacks.
latchkey_fwknop_import() {
	local uci="${UCI_CONFIG_DIR:-/etc/config}/fwknopd" dir="$LATCHKEY_FWKNOP_DIR" sec uci_enabled='' f
	LKF_N=0 LKF_ON=0 LKF_DOORS=0 LKF_SECS='' LKF_CONF_BAD='' LKF_FILTER_PORTS='' LKF_FILTER_AT=''
	LKF_UDPSERV='' LKF_UDPPORT='' LKF_UDPPORT_AT='' LKF_AGING=1 LKF_AGING_AT='' LKF_AGE='' LKF_AGE_AT=''
	LKF_ACCESS_FILE='' LKF_ACCESS_FOLDER=''
	for f in /etc/rc.d/S??fwknopd; do
		[ ! -e "$f" ] || latchkey_warn "fwknop import: fwknopd is enabled too, and would answer the same packets: /etc/init.d/fwknopd disable; /etc/init.d/fwknopd stop"
	done
	# which options and lists each section has: config_load tells only through its callbacks
	# shellcheck disable=SC2317 # called by config_load
	config_cb() {
		LKF_SEC=''
		case ${2:-} in ""|*[!A-Za-z0-9_]*) return 0 ;; esac
		LKF_SEC=$2 LKF_SECS="$LKF_SECS $1:$2"
		eval "LKF_O_$2= LKF_L_$2="
	}
	# shellcheck disable=SC2317
	option_cb() {
		case $1 in *[!A-Za-z0-9_]*) return 0 ;; esac
		[ -z "$LKF_SEC" ] || eval "LKF_O_$LKF_SEC=\"\$LKF_O_$LKF_SEC $1\""
	}
	# shellcheck disable=SC2317
	list_cb() {
		case $1 in *[!A-Za-z0-9_]*) return 0 ;; esac
		[ -z "$LKF_SEC" ] || eval "LKF_L_$LKF_SEC=\"\$LKF_L_$LKF_SEC $1\""
	}
	LKF_SEC=''
	config_load fwknopd
	reset_cb
	for sec in $LKF_SECS; do
		[ "${sec%%:*}" = global ] || continue
		config_get uci_enabled "${sec#*:}" uci_enabled
		# fwknopd's init script: `[ "$value" -eq 1 ]`
		[ "$uci_enabled" != 1 ] || break
	done
	if [ "$uci_enabled" = 1 ]; then
		latchkey_fwknop_uci_conf "$uci"
	elif [ -r "$dir/fwknopd.conf" ]; then
		latchkey_fwknop_read "$dir/fwknopd.conf" latchkey_fwknop_conf_line "$dir/fwknopd.conf"
	fi
	if [ -n "$LKF_CONF_BAD" ]; then
		latchkey_err "fwknop import: $LKF_CONF_BAD; nothing imported"
	else
		latchkey_fwknop_settings
		if [ "$uci_enabled" = 1 ]; then
			latchkey_fwknop_uci_access "$uci"
		elif [ -n "$LKF_ACCESS_FOLDER" ]; then
			for f in "$LKF_ACCESS_FOLDER"/*.conf; do
				[ ! -f "$f" ] || latchkey_fwknop_file "$f" 0
			done
		else
			latchkey_fwknop_file "${LKF_ACCESS_FILE:-$dir/access.conf}" 0
		fi
	fi
	[ "$LKF_N" -gt 0 ] || [ -n "$LKF_CONF_BAD" ] || latchkey_err "fwknop import: no access stanza found (in $uci with option uci_enabled '1', else in $dir/access.conf)"
	echo "$LKF_DOORS"
}

latchkey_generate() {
	local import n from_fwknopd=''
	LATCHKEY_OUT=$1 LATCHKEY_DOORS=0 LATCHKEY_NAMES=''
	mkdir -p "$(dirname "$LATCHKEY_OUT")"
	umask 077
	{
		echo "# Generated from /etc/config/latchkey by /etc/init.d/latchkey; edits here are overwritten."
		echo "# For a hand-written knockd-format file set: option config_file '/etc/latchkey.conf'"
		echo "[options]"
	} > "$LATCHKEY_OUT.tmp"
	config_foreach latchkey_door door
	config_foreach latchkey_spa_door spa_door
	config_get_bool import main import_fwknopd 0
	if [ "$import" = 1 ]; then
		# in a subshell: loading /etc/config/fwknopd replaces the loaded latchkey config, and
		# the callbacks it defines stay there; it prints how many doors it wrote
		n=$(latchkey_fwknop_import)
		LATCHKEY_DOORS=$((LATCHKEY_DOORS + ${n:-0})) from_fwknopd=" nor in fwknopd's configuration"
	fi
	if [ "$LATCHKEY_DOORS" -eq 0 ]; then
		rm -f "$LATCHKEY_OUT.tmp"
		latchkey_err "no usable door in /etc/config/latchkey${from_fwknopd:-}"
		return 1
	fi
	mv "$LATCHKEY_OUT.tmp" "$LATCHKEY_OUT"
}
