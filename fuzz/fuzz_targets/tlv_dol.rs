//! BER-TLV and DOL parsing: see `smartpos_fuzz::tlv_dol`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smartpos_fuzz::tlv_dol(data);
});
