//! ISO 8583 decode, `iso87b` dialect: see `smartpos_fuzz::iso8583`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smartpos_fuzz::iso8583(smartpos_iso8583::Dialect::iso87b(), data);
});
