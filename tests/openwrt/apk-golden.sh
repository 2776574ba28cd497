#!/bin/sh
# Golden test of scripts/mkapk's container writer, and negative tests of scripts/verify-apk.
#
# The tree, metadata and SOURCE_DATE_EPOCH below are the fixture whose package the real
# `apk mkpkg` (apk-tools 3.0.5, what OpenWrt 25.12 uses) was seen to write; the SHA-256 values are
# what it wrote (the project's apk note). Our writer must give the same decompressed stream and the
# same ADB payload byte for byte. The compressed bytes depend on the deflate library, so their
# match is reported but not required.
#
#   tests/openwrt/apk-golden.sh      (no root needed; python3)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
W=$(mktemp -d /tmp/latchkey-apk-golden.XXXXXX)
trap 'rm -rf "$W"' EXIT
PASS=0 FAIL=0
ok() { echo "ok   $*"; PASS=$((PASS + 1)); }
bad() { echo "FAIL $*"; FAIL=$((FAIL + 1)); }

STREAM_LEN=1824 STREAM_SHA=491a52764722d61339f2b60112d68b9c62adfac433a1004f6fd1e9a493ac125f
ADB_LEN=1364 ADB_SHA=f613a87281271466c4d746bf2f76138f4c8e241e67b3a2f0cd327174ee2f7a84
FILE_LEN=1135 FILE_SHA=9a2d55aa09da2e7fadd1108744bcd3c0f766e56bbc45c7c029dee4c3c1ba5b29

# --- the fixture tree: a script, an init script, a 0600 config, an empty file, a symlink, and the
# /lib/apk/packages files as OpenWrt's build makes them --------------------------------------------
fixture() { # DIR
	D=$1
	(
		umask 022
		mkdir -p "$D/usr/sbin" "$D/usr/bin" "$D/etc/init.d" "$D/etc/config" "$D/usr/share/latchkey" "$D/lib/apk/packages"
		printf '#!/bin/sh\necho latchkey\n' > "$D/usr/sbin/latchkey"
		printf '#!/bin/sh /etc/rc.common\nSTART=95\nUSE_PROCD=1\n' > "$D/etc/init.d/latchkey"
		printf "config latchkey 'main'\n\toption enabled '0'\n" > "$D/etc/config/latchkey"
		: > "$D/usr/share/latchkey/empty"
		ln -s ../sbin/latchkey "$D/usr/bin/lk"
		chmod 0755 "$D/usr/sbin/latchkey" "$D/etc/init.d/latchkey"
		chmod 0600 "$D/etc/config/latchkey"
		chmod 0644 "$D/usr/share/latchkey/empty"
		# the list: files and symlinks, made before the conffiles files exist
		(cd "$D" && find . -type f,l | sed 's|^\.||' | LC_ALL=C sort) > "$D/lib/apk/packages/latchkey.list"
		echo /etc/config/latchkey > "$D/lib/apk/packages/latchkey.conffiles"
		echo "/etc/config/latchkey $(sha256sum < "$D/etc/config/latchkey" | cut -d' ' -f1)" \
			> "$D/lib/apk/packages/latchkey.conffiles_static"
		chmod 0644 "$D"/lib/apk/packages/*
		printf '#!/bin/sh\necho post-install\n' > "$D.post-install"
		printf '#!/bin/sh\necho pre-deinstall\n' > "$D.pre-deinstall"
	)
}

build() { # TREE OUTPUT
	SOURCE_DATE_EPOCH=1700000000 python3 "$ROOT/scripts/mkapk" pack \
		--info name:latchkey --info version:0.1.0-r1 --info description:fixture --info arch:mips_24kc \
		--info license:MIT --info origin:feeds/latchkey/latchkey --info url:https://example.invalid/latchkey \
		--info maintainer:latchkey-maintainers --info provides:latchkey-any --info depends:libc \
		--script "post-install:$1.post-install" --script "pre-deinstall:$1.pre-deinstall" \
		--files "$1" --output "$2"
}

# measure FILE: "file-len file-sha stream-len stream-sha adb-len adb-sha"
measure() {
	python3 - "$1" <<'PY'
import hashlib, struct, sys, zlib
raw = open(sys.argv[1], "rb").read()
assert raw[:4] == b"ADBd", raw[:4]
s = zlib.decompress(raw[4:], -15)
n = struct.unpack_from("<I", s, 8)[0] & 0x3FFFFFFF
adb = s[12:8 + n]
h = lambda b: hashlib.sha256(b).hexdigest()
print(len(raw), h(raw), len(s), h(s), len(adb), h(adb))
PY
}

fixture "$W/fx"
if build "$W/fx" "$W/fx.apk" 2> "$W/err"; then ok "mkapk pack writes the fixture package"; else bad "mkapk pack: $(cat "$W/err")"; exit 1; fi
set -- $(measure "$W/fx.apk")
[ "$3 $4" = "$STREAM_LEN $STREAM_SHA" ] && ok "decompressed stream = apk mkpkg's ($3 bytes, $4)" \
	|| bad "decompressed stream: $3 bytes $4, apk mkpkg wrote $STREAM_LEN bytes $STREAM_SHA"
[ "$5 $6" = "$ADB_LEN $ADB_SHA" ] && ok "ADB payload = apk mkpkg's ($5 bytes, $6)" \
	|| bad "ADB payload: $5 bytes $6, apk mkpkg wrote $ADB_LEN bytes $ADB_SHA"
if [ "$1 $2" = "$FILE_LEN $FILE_SHA" ]; then echo "info compressed file identical too ($1 bytes; same zlib as apk's)"
else echo "info compressed file: $1 bytes (apk's zlib 1.2.13: $FILE_LEN); the streams are what must match"; fi

# the same inputs again, in another directory: the same bytes
fixture "$W/again/fx"
build "$W/again/fx" "$W/again.apk" && cmp -s "$W/fx.apk" "$W/again.apk" && ok "reproducible: a second build is byte-identical" || bad "second build differs"

# verify-apk reads it back
if python3 "$ROOT/scripts/verify-apk" --structure "$W/fx.apk" > "$W/v.log" 2>&1; then ok "verify-apk --structure accepts it ($(grep -c '^ok' "$W/v.log") checks)"
else bad "verify-apk --structure on the fixture"; grep FAIL "$W/v.log"; fi
grep -q "unique id = SHA-256" "$W/v.log" && ok "verify-apk checked the unique id" || bad "unique id not checked"

# --- verify-apk must refuse broken packages --------------------------------------------------------
# mutate NAME PYTHON: apply PYTHON to the decompressed stream s (bytearray), write $W/NAME.apk
mutate() {
	python3 - "$W/fx.apk" "$W/$1.apk" "$2" <<'PY'
import struct, sys, zlib
raw = open(sys.argv[1], "rb").read()
s = bytearray(zlib.decompress(raw[4:], -15))
n = struct.unpack_from("<I", s, 8)[0] & 0x3FFFFFFF
adb_end = 8 + ((n + 7) & ~7)   # first DATA block
exec(sys.argv[3])
z = zlib.compressobj(9, zlib.DEFLATED, -15)
out = globals().get("out") or b"ADBd" + z.compress(bytes(s)) + z.flush()
open(sys.argv[2], "wb").write(out)
PY
}
refused() { # NAME WHAT-verify-apk-must-say
	if python3 "$ROOT/scripts/verify-apk" --structure "$W/$1.apk" > "$W/$1.log" 2>&1; then bad "verify-apk accepted $1"
	elif grep -q "^FAIL.*$2" "$W/$1.log"; then ok "verify-apk refuses $1: $(grep -m1 "^FAIL.*$2" "$W/$1.log" | cut -c6-100)"
	else bad "verify-apk refused $1 without saying '$2'"; cat "$W/$1.log"; fi
}
# one content byte of the first DATA block (after its 4-byte header and 8 bytes of indices)
mutate data-byte 's[adb_end + 12] ^= 1'
refused data-byte "SHA-256 differs"
# the first DATA block claims to be file 2 of its directory
mutate data-index 'struct.pack_into("<I", s, adb_end + 8, 2)'
refused data-index "indices"
# the last DATA block dropped
mutate data-missing 'import re; last = max(i for i in range(adb_end, len(s), 8) if s[i+3] >> 6 == 2); del s[last:]'
refused data-missing "DATA blocks for"
# a byte of the ADB payload changed (a name): the unique id no longer matches
mutate adb-byte 'i = s.find(b"\x05empty"); s[i + 1] ^= 0x20'
refused adb-byte "unique id"
# zstd-compressed container (what OpenWrt's apk cannot read)
mutate zstd 'out = b"ADBc\x02\x03" + bytes(s)'
refused zstd "zstd"
# a DATA block before the ADB block
mutate order 'a = bytes(s[8:adb_end]); d = bytes(s[adb_end:]); s[8:] = d + a'
refused order "block"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
