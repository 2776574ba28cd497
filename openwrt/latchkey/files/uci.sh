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

# The daemon knows the helper by this path (it runs `/usr/share/latchkey/fw open` again to extend
# a grant): a test's stand-in must be called through a path that ends the same way.
LATCHKEY_FW=${LATCHKEY_FW:-/usr/share/latchkey/fw}

latchkey_err() { logger -t latchkey -p daemon.err "$*" 2>/dev/null; echo "latchkey: $*" >&2; }

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
	LATCHKEY_DOORS=$((LATCHKEY_DOORS + 1))
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
	LATCHKEY_DOORS=$((LATCHKEY_DOORS + 1))
}

latchkey_generate() {
	LATCHKEY_OUT=$1 LATCHKEY_DOORS=0
	mkdir -p "$(dirname "$LATCHKEY_OUT")"
	umask 077
	{
		echo "# Generated from /etc/config/latchkey by /etc/init.d/latchkey; edits here are overwritten."
		echo "# For a hand-written knockd-format file set: option config_file '/etc/latchkey.conf'"
		echo "[options]"
	} > "$LATCHKEY_OUT.tmp"
	config_foreach latchkey_door door
	config_foreach latchkey_spa_door spa_door
	if [ "$LATCHKEY_DOORS" -eq 0 ]; then
		rm -f "$LATCHKEY_OUT.tmp"
		latchkey_err "no usable door in /etc/config/latchkey"
		return 1
	fi
	mv "$LATCHKEY_OUT.tmp" "$LATCHKEY_OUT"
}
