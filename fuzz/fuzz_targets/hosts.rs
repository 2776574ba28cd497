//! The client's saved-hosts parser on any text: errors name FILE:LINE, hosts are usable.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    latchkey_fuzz::saved_hosts(data);
});
