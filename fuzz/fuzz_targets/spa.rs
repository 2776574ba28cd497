//! The SPA decoder and per-packet decision on any payload, and on any plaintext sealed with
//! the door's keys: no panic, a grant keeps the door's limits, a second copy is a replay.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = latchkey_fuzz::spa(data);
});
