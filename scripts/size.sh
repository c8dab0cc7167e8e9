#!/usr/bin/env bash
# Size check of the native library apps embed: builds libsmartpos_ffi.so for this machine
# (x86_64 Linux here; the same profile as the Android builds: opt-level z, fat LTO, one codegen
# unit, symbols stripped, unwinding kept for uniffi) and fails when it is over the budget.
#
#   scripts/size.sh            # build, print the size, exit 1 above 3 MB (3,145,728 bytes)
#   scripts/size.sh --no-build # only measure what the last build left
#
# Prints one line: "libsmartpos_ffi.so: N bytes (X.XX MiB), budget 3145728 bytes: OK|OVER".
# scripts/bench.sh reads that line for its table.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

BUDGET=3145728
PROFILE=release-android
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
LIB="$TARGET_DIR/$PROFILE/libsmartpos_ffi.so"

if [ "${1:-}" != "--no-build" ]; then
    need_rust
    step "cargo build -p smartpos-ffi --lib --profile $PROFILE"
    # The default features only: the testkit (host simulator for JVM tests) is not shipped.
    cargo build --locked -p smartpos-ffi --lib --profile "$PROFILE" >&2
fi

if [ ! -f "$LIB" ]; then
    echo "size.sh: $LIB not found (did the build fail?)" >&2
    exit 2
fi

# The profile strips already; strip again only if a tool is there, and say if it changed anything.
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

MIB=$(awk -v b="$BYTES" 'BEGIN { printf "%.2f", b / 1048576 }')
if [ "$BYTES" -le "$BUDGET" ]; then
    echo "libsmartpos_ffi.so: $BYTES bytes ($MIB MiB), budget $BUDGET bytes: OK"
else
    echo "libsmartpos_ffi.so: $BYTES bytes ($MIB MiB), budget $BUDGET bytes: OVER"
    exit 1
fi
