# Stand-in for OpenWrt's /lib/functions/procd.sh (test use only): every call that would go to
# procd over ubus is written as one line to $PROCD_LOG, for the tests to compare.
# When /etc/procd-run exists, instances also really run, as procd runs them: an instance whose
# command and environment did not change keeps running, a changed one is restarted, a service
# start without an instance (or `stop`) stops it. PID in /var/run/procd-NAME.pid, output
# appended to /tmp/NAME.out.
PROCD_LOG=${PROCD_LOG:-/tmp/procd.log}
_procd_log() { echo "$*" >> "$PROCD_LOG"; }

procd_open_service() { _procd_log "open_service $*"; _PROCD_NAME=$1 _PROCD_INST=0; }
procd_close_service() {
	_procd_log "close_service"
	[ "$_PROCD_INST" = 1 ] || _procd_stop_instance "$_PROCD_NAME"
}
procd_open_instance() { _procd_log "open_instance${1:+ $1}"; _PROCD_CMD= _PROCD_ENV=; }
procd_close_instance() {
	_procd_log "close_instance"
	_PROCD_INST=1
	[ -e /etc/procd-run ] || return 0
	local pidf=/var/run/procd-$_PROCD_NAME.pid want="$_PROCD_ENV $_PROCD_CMD"
	if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null && [ "$(cat "$pidf.cmd")" = "$want" ]; then
		return 0  # unchanged: procd leaves it running
	fi
	_procd_stop_instance "$_PROCD_NAME"
	env $_PROCD_ENV $_PROCD_CMD >> "/tmp/$_PROCD_NAME.out" 2>&1 &
	echo $! > "$pidf"; echo "$want" > "$pidf.cmd"
}
# _procd_stop_instance NAME: SIGTERM, wait up to 5 s for the exit (procd's term_timeout)
_procd_stop_instance() {
	local pidf=/var/run/procd-$1.pid pid n=50
	[ -e /etc/procd-run ] && [ -f "$pidf" ] || return 0
	pid=$(cat "$pidf"); rm -f "$pidf" "$pidf.cmd"
	kill "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	kill -9 "$pid" 2>/dev/null
	return 0
}
procd_set_param() {
	_procd_log "set_param $*"
	local k=$1; shift
	case $k in command) _PROCD_CMD="$*" ;; env) _PROCD_ENV="$*" ;; esac
}
procd_append_param() {
	_procd_log "append_param $*"
	local k=$1; shift
	case $k in command) _PROCD_CMD="$_PROCD_CMD $*" ;; env) _PROCD_ENV="$_PROCD_ENV $*" ;; esac
}
procd_open_trigger() { _procd_log "open_trigger"; }
procd_close_trigger() { _procd_log "close_trigger"; }
procd_add_reload_trigger() { _procd_log "add_reload_trigger $*"; }
procd_add_reload_interface_trigger() { _procd_log "add_reload_interface_trigger $*"; }
procd_add_interface_trigger() { _procd_log "add_interface_trigger $*"; }
procd_kill() { _procd_log "kill $*"; }
