# Stand-in for OpenWrt's /lib/functions/procd.sh (test use only): every call that would go to
# procd over ubus is written as one line to $PROCD_LOG, for the tests to compare.
PROCD_LOG=${PROCD_LOG:-/tmp/procd.log}
_procd_log() { echo "$*" >> "$PROCD_LOG"; }

procd_open_service() { _procd_log "open_service $*"; }
procd_close_service() { _procd_log "close_service"; }
procd_open_instance() { _procd_log "open_instance${1:+ $1}"; }
procd_close_instance() { _procd_log "close_instance"; }
procd_set_param() { _procd_log "set_param $*"; }
procd_append_param() { _procd_log "append_param $*"; }
procd_open_trigger() { _procd_log "open_trigger"; }
procd_close_trigger() { _procd_log "close_trigger"; }
procd_add_reload_trigger() { _procd_log "add_reload_trigger $*"; }
procd_add_reload_interface_trigger() { _procd_log "add_reload_interface_trigger $*"; }
procd_add_interface_trigger() { _procd_log "add_interface_trigger $*"; }
procd_kill() { _procd_log "kill $*"; }
