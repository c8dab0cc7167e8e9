//! mPOS reader-link frames and chunks: see `smartpos_fuzz::reader_link`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smartpos_fuzz::reader_link(data);
});
