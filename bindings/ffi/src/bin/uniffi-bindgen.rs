//! The uniffi-bindgen command, built from the same uniffi version as the library, so the
//! generated Kotlin always matches the scaffolding. Run in library mode:
//! `uniffi-bindgen generate --library target/debug/libsmartpos_ffi.so --language kotlin --out-dir DIR`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
