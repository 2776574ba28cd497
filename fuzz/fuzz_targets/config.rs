//! The knockd config parser on any text: errors carry lines inside the file, valid configs
//! keep their invariants.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    latchkey_fuzz::knockd_config(data);
});
