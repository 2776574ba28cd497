# Helpers for the OpenWrt firewall tests (sourced after lib.sh): a minimal fw4-like table built
# the way fw4 builds its ruleset, with latchkey's /usr/share/nftables.d files included at the
# same places (table-pre, chain-pre/input|forward|dstnat).
OWRT_FILES=$E2E_ROOT/openwrt/latchkey/files
LATCHKEY_FWSH=$OWRT_FILES/latchkey.fw

# fw4_ruleset WAN-DEV LAN-DEV: print the ruleset; like fw4 it flushes and redefines the table,
# which is what `fw4 reload` does (latchkey's sets come back empty).
fw4_ruleset() {
	N=$OWRT_FILES/nftables.d
	cat <<NFT
table inet fw4
flush table inet fw4
table inet fw4 {
	include "$N/table-pre/latchkey.nft"
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		include "$N/chain-pre/input/latchkey.nft"
		ct state vmap { established : accept, related : accept }
		iifname "$2" accept
		meta l4proto tcp reject with tcp reset
		reject
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		include "$N/chain-pre/forward/latchkey.nft"
		ct state vmap { established : accept, related : accept }
		iifname "$2" accept
		meta l4proto tcp reject with tcp reset
		reject
	}
	chain output {
		type filter hook output priority filter; policy accept;
	}
	chain dstnat {
		type nat hook prerouting priority dstnat; policy accept;
		include "$N/chain-pre/dstnat/latchkey.nft"
	}
	chain srcnat {
		type nat hook postrouting priority srcnat; policy accept;
	}
}
NFT
}

# fw4_load NS WAN LAN: load (or reload) the table in NS
fw4_load() { fw4_ruleset "$2" "$3" | ip netns exec "$1" nft -f -; }

# fw4_restart NS WAN LAN: `fw4 restart`: the table is deleted and made anew
fw4_restart() { ip netns exec "$1" nft delete table inet fw4; fw4_load "$@"; }

# nft_json NS SET-OR-MAP: JSON listing (`list set` refuses maps)
nft_json() {
	ip netns exec "$1" nft -j list set inet fw4 "$2" 2>/dev/null || ip netns exec "$1" nft -j list map inet fw4 "$2" 2>/dev/null \
		|| echo '{"nftables": []}'
}

# elements NS SET: the set's elements, one per line, without the timeout/expires details
elements() {
	nft_json "$1" "$2" | python3 -c '
import json, sys
for o in json.load(sys.stdin)["nftables"]:
    s = o.get("set") or o.get("map")
    for e in (s or {}).get("elem", []):
        if isinstance(e, list):
            k, v = e
        else:
            k, v = e, None
        if isinstance(k, dict) and "elem" in k:
            k = k["elem"]["val"]
        k = " . ".join(str(x) for x in k["concat"]) if isinstance(k, dict) else str(k)
        if v is not None:
            v = " . ".join(str(x) for x in v["concat"]) if isinstance(v, dict) else str(v)
            k += " : " + v
        print(k)
'
}

# expires NS SET: seconds left of the first element
expires() {
	nft_json "$1" "$2" | python3 -c '
import json, sys
for o in json.load(sys.stdin)["nftables"]:
    s = o.get("set") or o.get("map")
    for e in (s or {}).get("elem", []):
        k = e[0] if isinstance(e, list) else e
        if isinstance(k, dict) and "elem" in k:
            print(k["elem"].get("expires", "none")); sys.exit()
'
}
