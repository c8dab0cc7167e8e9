//! Card responses through the contactless kernel: see `smartpos_fuzz::kernel_card`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    smartpos_fuzz::kernel_card(data);
});
