//! ISO 8583 decode, `cup` dialect: see `smartpos_fuzz::iso8583`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smartpos_fuzz::iso8583(smartpos_iso8583::Dialect::cup(), data);
});
