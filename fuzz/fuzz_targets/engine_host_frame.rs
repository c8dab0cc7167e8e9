//! Host frames fed to an engine waiting for a sale response: see
//! `smartpos_fuzz::engine_host_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smartpos_fuzz::engine_host_frame(data);
});
