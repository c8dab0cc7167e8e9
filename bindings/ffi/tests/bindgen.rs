//! Our `uniffi-bindgen` generates the Kotlin bindings from the library `cargo test` built.
//!
//! Besides checking the generator, this test makes `cargo test --workspace` build the
//! `uniffi-bindgen` binary (cargo builds a package's binaries for its integration tests) with
//! the same features as everything else, so `scripts/kotlin.sh` and `scripts/android-sample.sh`
//! reuse that build inside `scripts/test.sh` instead of compiling `smartpos-ffi` again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

/// The cdylib next to this test binary (`target/<profile>/deps/libsmartpos_ffi.so`).
fn native_library() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps directory");
    let name = format!(
        "{}smartpos_ffi{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    deps.join(name)
}

#[test]
fn kotlin_bindings_are_generated_from_the_built_library() {
    let lib = native_library();
    assert!(lib.exists(), "{} not built", lib.display());
    let out = std::env::temp_dir().join(format!("smartpos-bindgen-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .args(["generate", "--library"])
        .arg(&lib)
        .args(["--language", "kotlin", "--no-format", "--out-dir"])
        .arg(&out)
        .status()
        .expect("run uniffi-bindgen");
    assert!(status.success(), "uniffi-bindgen failed");
    let kt = std::fs::read_to_string(out.join("com/smartpos/sdk/ffi/smartpos_ffi.kt"))
        .expect("generated Kotlin");
    let _ = std::fs::remove_dir_all(&out);
    for expected in [
        "class Terminal",
        "suspend fun `saleContactless`",
        "interface SecureStore",
        "class JournalRefused",
        // Our generator's addition: callback threads stay attached to the VM.
        "CallbackThreadInitializer",
    ] {
        assert!(
            kt.contains(expected),
            "{expected} missing from the bindings"
        );
    }
}
