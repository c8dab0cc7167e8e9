#!/usr/bin/env bash
# The one entry point for checks: formatting, lints, all Rust tests, fuzzing, oracle checks,
# the Kotlin bindings, the Android sample on the JVM and the native library size check.
# CI (.ci/run) calls this on a fresh clone. Installs what it needs by itself.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

need_rust

# One full run builds the workspace, the fuzz targets, the Kotlin library and the size build.
# With full debug info and incremental caches that took 6 GB of disk on a fresh clone; CI has
# no use for either. Line tables keep file:line in panic backtraces. A plain `cargo test` keeps
# the dev profile's defaults.
export CARGO_INCREMENTAL=0
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
free_kb=$(df -Pk "${CARGO_TARGET_DIR:-$ROOT}" | awk 'NR == 2 { print $4 }')
echo "disk free where the build goes: $((free_kb / 1048576)) GiB (a fresh run needs about 3.5 GiB)"
if [ "$free_kb" -lt $((4 * 1048576)) ]; then
    echo "warning: less than 4 GiB free; the build may fail with 'No space left on device'" >&2
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (deny warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "fuzz targets replayed on stable (seed corpora + seeded mutations, no libFuzzer)"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}" cargo test --locked --manifest-path fuzz/Cargo.toml

step "libFuzzer, 30 s per target (stable toolchain, no sanitizer: see scripts/fuzz.sh)"
FUZZ_SANITIZER=none bash "$ROOT/scripts/fuzz.sh" 30

step "the smartpos binary for the oracle checks (the debug build the tests already made)"
cargo build --locked -p smartpos-cli
export SMARTPOS_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/smartpos"

step "oracle checks against independent implementations (tests/oracles)"
need_venv
for oracle in "$ROOT"/tests/oracles/*_oracle.py; do
    [ -e "$oracle" ] || continue
    echo "--- $(basename "$oracle")"
    "$PYTHON" "$oracle"
done

step "Kotlin bindings (uniffi) on the JVM: JUnit 5 against the in-process simulator"
bash "$ROOT/scripts/kotlin.sh" test

step "Android sample on the JVM: Robolectric tests of the adapters, ViewModel through the real core"
bash "$ROOT/scripts/android-sample.sh"

step "native library size (release-android profile, x86_64): fails above the limit in scripts/size.sh"
bash "$ROOT/scripts/size.sh"

step "all checks passed"
