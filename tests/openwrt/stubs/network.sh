# Stand-in for OpenWrt's /lib/functions/network.sh (test use only). netifd's state is faked
# with files: /var/run/fake-netifd/NETWORK holds the network's L3 device while it is up
# (e.g. "pppoe-wan" for wan over PPPoE); no file means the network is down.
network_get_device() {
	local dev=
	[ -f "/var/run/fake-netifd/$2" ] && read -r dev < "/var/run/fake-netifd/$2"
	eval "$1=\$dev"
	[ -n "$dev" ]
}
network_get_physdev() { network_get_device "$@"; }
network_is_up() { [ -f "/var/run/fake-netifd/$1" ]; }
