//! Frames as the cooked capture delivers them (any ethertype, VLAN tags, packet types), with
//! time passing between them: kernel filter interpreter, parser, knock state machine.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    latchkey_fuzz::packet_path(data);
});
