#!/usr/bin/env bash
# Builds the SmartPOS native library for Android (arm64-v8a, armeabi-v7a, x86_64) with
# cargo-ndk and generates the Kotlin bindings for bindings/android. For developers' machines:
# needs the Android NDK (ANDROID_NDK_HOME); the CI machines have none (see bindings/android).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

need_rust
: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to an Android NDK (r26 or newer)}"
# cargo-ndk goes under the project (.tools/, gitignored), not into ~/.cargo.
export PATH="$ROOT/.tools/bin:$PATH"
command -v cargo-ndk >/dev/null 2>&1 || cargo install cargo-ndk --locked --root "$ROOT/.tools"
rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$ROOT/bindings/android/src/main/jniLibs"
GEN="$ROOT/bindings/android/build/generated/uniffi"
API="${ANDROID_API:-24}"

step "native libraries (cargo-ndk, profile release-android, 16 KB page alignment)"
# 16 KB pages: Android 15+ devices may use them; Google Play requires aligned libraries.
# Packed relative relocations (`--pack-dyn-relocs=android`, API 23+) and C code without unwind
# tables (no Rust panic unwinds through SQLite or ring): the same size settings scripts/size.sh
# measures on x86_64 Linux (there with `-z pack-relative-relocs`). cargo-ndk passes --target,
# so RUSTFLAGS reach the library and not the build scripts. `rustc --crate-type cdylib`, not
# `build`: cargo applies the profile's LTO only to a crate that is not also an rlib (the
# package's lib is `["cdylib", "lib"]`; scripts/size.sh says what that costs).
CFLAGS="${CFLAGS:-} -fno-asynchronous-unwind-tables -fno-unwind-tables" \
RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-z,max-page-size=16384 -C link-arg=-Wl,--pack-dyn-relocs=android" \
    cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 --platform "$API" -o "$OUT" \
    rustc --locked -p smartpos-ffi --lib --profile release-android --crate-type cdylib

step "Kotlin bindings (library mode, from a host build with the same features: no testkit)"
cargo build --locked -p smartpos-ffi
rm -rf "$GEN"
"$CARGO_TARGET_DIR/debug/uniffi-bindgen" generate \
    --library "$CARGO_TARGET_DIR/debug/libsmartpos_ffi.so" \
    --language kotlin --no-format --out-dir "$GEN"

step "done"
find "$OUT" -name '*.so' -exec ls -l {} \;
echo "next: cd bindings/android && gradle assembleRelease"
