# Stand-in for OpenWrt's /lib/functions.sh (test use only): the config_* API that init scripts
# use, over the UCI file itself. UCI's file syntax (config/option/list lines with shell quoting)
# is what `uci export` prints and what the real config_load evals, so sourcing the file with
# these three functions defined reads it the same way for the plain files our tests use. As the
# real ones, they call config_cb TYPE NAME / option_cb NAME VALUE / list_cb NAME VALUE (no-ops
# until a script defines them; reset_cb puts the no-ops back), and config_load ends with a
# config_cb without arguments, which closes the last section.

CONFIG_SECTIONS=
CONFIG_SECTION=
CONFIG_NUM_SECTIONS=0
CONFIG_LIST_STATE=

reset_cb() {
	config_cb() { return 0; }
	option_cb() { return 0; }
	list_cb() { return 0; }
}
reset_cb

config() {
	local type=$1 name=$2
	CONFIG_NUM_SECTIONS=$((CONFIG_NUM_SECTIONS + 1))
	[ -n "$name" ] || name=cfg$CONFIG_NUM_SECTIONS
	CONFIG_SECTIONS="$CONFIG_SECTIONS $name"
	CONFIG_SECTION=$name
	eval "CONFIG_${name}_TYPE=\$type"
	config_cb "$type" "$name"
}
option() {
	eval "CONFIG_${CONFIG_SECTION}_$1=\$2"
	option_cb "$1" "$2"
}
list() {
	local len
	eval "len=\${CONFIG_${CONFIG_SECTION}_$1_LENGTH:-0}"
	[ "$len" = 0 ] && CONFIG_LIST_STATE="$CONFIG_LIST_STATE ${CONFIG_SECTION}_$1"
	len=$((len + 1))
	eval "CONFIG_${CONFIG_SECTION}_$1_ITEM$len=\$2"
	eval "CONFIG_${CONFIG_SECTION}_$1_LENGTH=$len"
	eval "CONFIG_${CONFIG_SECTION}_$1=\"\${CONFIG_${CONFIG_SECTION}_$1:+\${CONFIG_${CONFIG_SECTION}_$1} }\$2\""
	list_cb "$1" "$2"
}

config_load() {
	local s
	for s in $CONFIG_SECTIONS; do unset "CONFIG_${s}_TYPE"; done
	# lists start empty again, as OpenWrt's uci_load does (a restart loads twice in one shell)
	for s in $CONFIG_LIST_STATE; do unset "CONFIG_${s}" "CONFIG_${s}_LENGTH"; done
	CONFIG_LIST_STATE= CONFIG_SECTIONS= CONFIG_NUM_SECTIONS=0 CONFIG_SECTION=
	[ -f "${UCI_CONFIG_DIR:-/etc/config}/$1" ] && . "${UCI_CONFIG_DIR:-/etc/config}/$1"
	[ -z "$CONFIG_SECTION" ] || config_cb
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

# Package-manager hooks: OpenWrt's default_postinst/default_prerm (package/base-files/files/lib/
# functions.sh), reduced to what a package like ours uses. Both read the package's file list:
# /lib/apk/packages/NAME.list (apk, 25.12: the script wrapper exports pkgname) or
# /usr/lib/opkg/info/NAME.list (opkg: the name comes from the script's path, $1).
add_group_and_user() { return 0; }   # latchkey has no .rusers
default_postinst() {
	local root="${IPKG_INSTROOT:-}" ret=0 i
	local pkgname="${pkgname:-$(basename "${1%.*}")}"
	local filelist="$root/usr/lib/opkg/info/${pkgname}.list"
	[ -f "$root/lib/apk/packages/${pkgname}.list" ] && filelist="$root/lib/apk/packages/${pkgname}.list"
	if [ -f "$root/usr/lib/opkg/info/${pkgname}.postinst-pkg" ]; then
		( . "$root/usr/lib/opkg/info/${pkgname}.postinst-pkg" )
		ret=$?
	fi
	if [ -z "$root" ] && grep -m1 -q -s "^/etc/uci-defaults/" "$filelist"; then
		for i in $(grep -s "^/etc/uci-defaults/" "$filelist"); do
			( [ -f "$i" ] && cd "$(dirname "$i")" && . "$i" ) && rm -f "$i"
		done
		uci commit
	fi
	for i in $(grep -s "^/etc/init.d/" "$filelist"); do
		if [ -n "$root" ]; then
			sh "$root/etc/rc.common" "$root$i" enable
		else
			[ "${PKG_UPGRADE:-}" != 1 ] && "$i" enable
			"$i" start
		fi
	done
	return $ret
}
default_prerm() {
	local root="${IPKG_INSTROOT:-}" ret=0 i
	local pkgname="${pkgname:-$(basename "${1%.*}")}"
	local filelist="$root/usr/lib/opkg/info/${pkgname}.list"
	[ -f "$root/lib/apk/packages/${pkgname}.list" ] && filelist="$root/lib/apk/packages/${pkgname}.list"
	# a subshell, as OpenWrt's: the package's part may `exit`
	if [ -f "$root/usr/lib/opkg/info/${pkgname}.prerm-pkg" ]; then
		( . "$root/usr/lib/opkg/info/${pkgname}.prerm-pkg" )
		ret=$?
	fi
	for i in $(grep -s "^/etc/init.d/" "$filelist"); do
		if [ -n "$root" ]; then
			sh "$root/etc/rc.common" "$root$i" disable
		else
			[ "${PKG_UPGRADE:-}" != 1 ] && "$i" disable
			"$i" stop
		fi
	done
	return $ret
}
