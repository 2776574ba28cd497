# Stand-in for OpenWrt's /lib/functions.sh (test use only): the config_* API that init scripts
# use, over the UCI file itself. UCI's file syntax (config/option/list lines with shell quoting)
# is what `uci export` prints and what the real config_load evals, so sourcing the file with
# these three functions defined reads it the same way for the plain files our tests use.

CONFIG_SECTIONS=
CONFIG_SECTION=
CONFIG_NUM_SECTIONS=0

config() {
	local type=$1 name=$2
	CONFIG_NUM_SECTIONS=$((CONFIG_NUM_SECTIONS + 1))
	[ -n "$name" ] || name=cfg$CONFIG_NUM_SECTIONS
	CONFIG_SECTIONS="$CONFIG_SECTIONS $name"
	CONFIG_SECTION=$name
	eval "CONFIG_${name}_TYPE=\$type"
}
option() {
	eval "CONFIG_${CONFIG_SECTION}_$1=\$2"
}
list() {
	local len
	eval "len=\${CONFIG_${CONFIG_SECTION}_$1_LENGTH:-0}"
	len=$((len + 1))
	eval "CONFIG_${CONFIG_SECTION}_$1_ITEM$len=\$2"
	eval "CONFIG_${CONFIG_SECTION}_$1_LENGTH=$len"
	eval "CONFIG_${CONFIG_SECTION}_$1=\"\${CONFIG_${CONFIG_SECTION}_$1:+\${CONFIG_${CONFIG_SECTION}_$1} }\$2\""
}

config_load() {
	local s
	for s in $CONFIG_SECTIONS; do unset "CONFIG_${s}_TYPE"; done
	CONFIG_SECTIONS= CONFIG_NUM_SECTIONS=0 CONFIG_SECTION=
	[ -f "${UCI_CONFIG_DIR:-/etc/config}/$1" ] && . "${UCI_CONFIG_DIR:-/etc/config}/$1"
	return 0
}

config_get() {
	case $# in
	2) eval "echo \"\${CONFIG_$1_$2:-}\"" ;;
	*) eval "$1=\"\${CONFIG_$2_$3:-\${4:-}}\"" ;;
	esac
}

get_bool() {
	case $1 in
	1|on|true|yes|enabled) echo 1 ;;
	0|off|false|no|disabled) echo 0 ;;
	*) echo "$2" ;;
	esac
}

config_get_bool() {
	local _v
	config_get _v "$2" "$3" "$4"
	eval "$1=\$(get_bool \"\$_v\" \"\$4\")"
}

config_foreach() {
	local fn=$1 type=$2 s t
	shift; [ $# -gt 0 ] && shift
	for s in $CONFIG_SECTIONS; do
		eval "t=\${CONFIG_${s}_TYPE:-}"
		[ -z "$type" ] || [ "$t" = "$type" ] || continue
		"$fn" "$s" "$@"
	done
}

config_list_foreach() {
	local s=$1 o=$2 fn=$3 len i v
	shift 3
	eval "len=\${CONFIG_${s}_${o}_LENGTH:-0}"
	i=1
	while [ "$i" -le "$len" ]; do
		eval "v=\${CONFIG_${s}_${o}_ITEM$i}"
		"$fn" "$v" "$@"
		i=$((i + 1))
	done
}

append() {
	local var=$1 value=$2 sep=${3:- }
	eval "$var=\${$var:+\${$var}\${sep}}\$value"
}

# Package-manager hooks as OpenWrt generates them, reduced to what our postinst/prerm rely on.
default_postinst() {
	local name=${1##*/}; name=${name%.postinst}
	local root=${IPKG_INSTROOT:-} f
	for f in "$root"/etc/uci-defaults/*"$name"*; do
		[ -f "$f" ] || continue
		( cd "$root/etc/uci-defaults" && IPKG_INSTROOT=$root sh "$f" ) && rm -f "$f"
	done
	for f in "$root"/etc/init.d/"$name"; do
		[ -x "$f" ] || continue
		IPKG_INSTROOT=$root sh "$root/etc/rc.common" "$f" enable
		[ -n "$root" ] || "$f" start
	done
	return 0
}
default_prerm() {
	local name=${1##*/}; name=${name%.prerm}
	local root=${IPKG_INSTROOT:-}
	# a subshell, as OpenWrt's default_prerm: the package's part may `exit`
	[ -f "$root/usr/lib/opkg/info/$name.prerm-pkg" ] && ( . "$root/usr/lib/opkg/info/$name.prerm-pkg" )
	[ -x "$root/etc/init.d/$name" ] && IPKG_INSTROOT=$root sh "$root/etc/rc.common" "$root/etc/init.d/$name" disable
	return 0
}
