#!/usr/bin/env bash
# Size check of the native library apps embed: builds libsmartpos_ffi.so for this machine
# (x86_64 Linux here) with the settings of the Android builds (scripts/build-android.sh):
#   - profile release-android: opt-level z, fat LTO, one codegen unit, symbols stripped,
#     panic = unwind kept (uniffi turns a Rust panic into a Kotlin exception instead of
#     killing the app);
#   - relative relocations packed (`-z pack-relative-relocs` here; Android uses
#     `--pack-dyn-relocs=android`, which needs API 23, below our minSdk 24);
#   - the C code (bundled SQLite, ring) without unwind tables: no Rust panic unwinds through it;
#   - SQLite without the features the journal does not use (.cargo/config.toml).
#
#   scripts/size.sh            # build, print the size, exit 1 above the CI limit
#   scripts/size.sh --no-build # only measure what the last build left
#
# Two numbers (issue 10): the TARGET is 3 MiB (3,145,728 bytes) and is not met yet (README,
# Performance, item 6, says why and what would close the gap). The LIMIT is a ratchet that
# scripts/test.sh enforces so the library cannot grow unnoticed: lower it whenever the library
# shrinks. Prints one line that scripts/bench.sh reads:
#   "libsmartpos_ffi.so: N bytes (X.XX MiB); target 3145728: MET|NOT MET; limit L: OK|OVER"
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

TARGET=3145728
LIMIT=3800000 # 3.62 MiB: session 8, the first limit from LTO builds (3,716,648 bytes measured with the profile's [emv] section read without the TOML crate's serde deserializer; README item 6). Before: 4.61 MiB from builds without LTO (see the build step below), raised in session 7 after issue 18 (security module, DUKPT, SM4) and issue 20, from 3.84 MiB (issue 19's mutual TLS), from 3.48 MiB (session 6, card acceptance)
PROFILE=release-android
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
need_rust
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
LIB="$TARGET_DIR/$TRIPLE/$PROFILE/libsmartpos_ffi.so"

if [ "${1:-}" != "--no-build" ]; then
    step "cargo rustc -p smartpos-ffi --lib --profile $PROFILE --target $TRIPLE --crate-type cdylib"
    # `--crate-type cdylib`: the package's lib is `["cdylib", "lib"]` (the rlib serves Rust
    # callers and tests), and cargo does not apply the profile's `lto` to a crate that is also
    # an rlib: it passes no `-C lto` at all and builds the dependencies without bitcode. Until
    # session 8 every shipped library was built that way, without LTO: 4,667,376 bytes where
    # this build gives 3,716,648 (the bindings generator's exception tables alone were 229 KB).
    # The LIMIT below is set from LTO builds, so losing LTO again fails the check.
    # An explicit --target keeps these flags off the build scripts (they run on this machine).
    # The default features only: the testkit (host simulator for JVM tests) is not shipped.
    cflags_var="CFLAGS_${TRIPLE//-/_}"
    env "$cflags_var=-fno-asynchronous-unwind-tables -fno-unwind-tables" \
        RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-z,pack-relative-relocs" \
        cargo rustc --locked -p smartpos-ffi --lib --profile "$PROFILE" --target "$TRIPLE" \
        --crate-type cdylib >&2
fi

if [ ! -f "$LIB" ]; then
    echo "size.sh: $LIB not found (did the build fail?)" >&2
    exit 2
fi

# The profile strips already; say so if a strip tool would still remove something.
BYTES=$(stat -c %s "$LIB")
if command -v strip >/dev/null 2>&1; then
    TMP="$(mktemp)"
    strip --strip-all -o "$TMP" "$LIB"
    STRIPPED=$(stat -c %s "$TMP")
    rm -f "$TMP"
    if [ "$STRIPPED" -lt "$BYTES" ]; then
        echo "size.sh: note: strip --strip-all would remove $((BYTES - STRIPPED)) more bytes" >&2
    fi
fi
if command -v size >/dev/null 2>&1; then
    size -A "$LIB" | awk '$1 ~ /^\./ && $2 > 16384 { printf "size.sh:   %-20s %9d\n", $1, $2 }' >&2
fi

MIB=$(awk -v b="$BYTES" 'BEGIN { printf "%.2f", b / 1048576 }')
met="NOT MET"
[ "$BYTES" -le "$TARGET" ] && met="MET"
if [ "$BYTES" -le "$LIMIT" ]; then
    echo "libsmartpos_ffi.so: $BYTES bytes ($MIB MiB); target $TARGET: $met; limit $LIMIT: OK"
else
    echo "libsmartpos_ffi.so: $BYTES bytes ($MIB MiB); target $TARGET: $met; limit $LIMIT: OVER"
    exit 1
fi
