#!/usr/bin/env bash
# The one entry point for checks: formatting, lints, all Rust tests (the README's command blocks
# and the docs' code among them), fuzzing, oracle checks, the Kotlin bindings, the Android
# sample on the JVM and the native library size check. CI (.ci/run) calls this on a fresh clone.
# Installs what it needs by itself. Each step says what it runs and how long it took; the end
# prints every step's time, the wall time and the disk the run used.
#
# A fresh run needs about 3.4 GiB of disk and 25 minutes on 2 cores (README, "Two commands",
# says how that was measured): the cargo target directory 2.5 GiB (dev build with tests 1.2,
# clippy 0.4, the release-android size build 0.4, the libFuzzer build 0.5), Maven's repository
# 0.66 GiB (~/.m2) and its build directories 0.2 GiB, the Python venv (.venv) 44 MiB and
# cargo-fuzz (.tools) 3 MiB.
#
# Each crate is compiled once per build configuration: dev (`cargo test --workspace`, which also
# builds the smartpos binary the oracle checks use, and smartpos-ffi with its test kit plus
# uniffi-bindgen, which the Kotlin bindings and the Android sample reuse: SMARTPOS_SHARED_BUILD),
# clippy's check, the fuzzing build (release with coverage instrumentation) and the size build
# (release-android, LTO). Every cargo command uses the same features (WORKSPACE_FEATURES).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
RUN_START=$SECONDS

need_rust

# One full run builds the workspace, the fuzz targets, the Kotlin library and the size build.
# With full debug info and incremental caches that took 6 GB of disk on a fresh clone; CI has
# no use for either. Line tables keep file:line in panic backtraces. A plain `cargo test` keeps
# the dev profile's defaults.
export CARGO_INCREMENTAL=0
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export SMARTPOS_SHARED_BUILD=1
M2_REPO="${MAVEN_REPO:-$HOME/.m2/repository}"

# Disk: what each place the run writes to holds (KiB), before and after.
DISK_PLACES=("$CARGO_TARGET_DIR" "$M2_REPO" "$ROOT/.venv" "$ROOT/.tools" "$ROOT/bindings/kotlin/target" "$ROOT/android-sample/verify/target")
disk_kib() { if [ -e "$1" ]; then du -sk "$1" 2>/dev/null | awk '{ print $1 }'; else echo 0; fi; }
declare -A DISK_BEFORE
for p in "${DISK_PLACES[@]}"; do DISK_BEFORE[$p]=$(disk_kib "$p"); done
gib() { awk -v k="$1" 'BEGIN { printf "%.2f GiB", k / 1048576 }'; }

mkdir -p "$CARGO_TARGET_DIR"
free_kb=$(df -Pk "$CARGO_TARGET_DIR" | awk 'NR == 2 { print $4 }')
echo "disk free where the build goes: $(gib "$free_kb") (a fresh run needs about 3.4 GiB: 2.5 target, 0.9 Maven)"
if [ "$free_kb" -lt $((4 * 1048576)) ]; then
    echo "warning: less than 4 GiB free; the build may fail with 'No space left on device'" >&2
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "layout: no tokio, SQLite or TLS under pure/ (cargo tree of every pure crate)"
for manifest in pure/*/Cargo.toml; do
    crate=$(awk -F'"' '/^name = / { print $2; exit }' "$manifest")
    if cargo tree --locked -p "$crate" -e normal --prefix none | grep -E '^(tokio|tokio-rustls|rustls|rusqlite|libsqlite3-sys) '; then
        echo "$crate ($manifest) depends on an I/O crate: it belongs under io/ or tools/" >&2
        exit 1
    fi
done

step "cargo clippy --workspace --all-targets (deny warnings)"
cargo clippy --workspace --all-targets --locked "${WORKSPACE_FEATURES[@]}" -- -D warnings

step "cargo test --workspace (unit, integration, crash harness, CLI and README blocks, docs checks)"
cargo test --workspace --locked "${WORKSPACE_FEATURES[@]}"

# The libFuzzer run executes every seed corpus input first (debug assertions on), then mutates
# for 30 s per target: a superset of `cargo test --manifest-path fuzz/Cargo.toml` (the same
# bodies on the seeds plus seeded mutations, for machines without libFuzzer). That replay is
# not run here: the fuzz crate is its own workspace, so it would compile smartpos-types, -crypto,
# -iso8583, -emv and -txn (and ring) a second time in the dev profile with other features.
step "libFuzzer, 30 s per target (stable toolchain, no sanitizer: see scripts/fuzz.sh)"
FUZZ_SANITIZER=none bash "$ROOT/scripts/fuzz.sh" 30

step "oracle checks against independent implementations (tests/oracles)"
# The smartpos binary `cargo test` built for the CLI's tests: no second build.
export SMARTPOS_BIN="$CARGO_TARGET_DIR/debug/smartpos"
[ -x "$SMARTPOS_BIN" ] || { echo "missing $SMARTPOS_BIN (the cargo test step builds it)" >&2; exit 1; }
need_venv
# jpos_oracle.py runs jPOS 2.1.10 (Maven Central) through Maven and a JDK.
command -v mvn >/dev/null 2>&1 || need_debs maven
command -v javac >/dev/null 2>&1 || need_debs openjdk-17-jdk-headless
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

steps_summary
echo
echo "all checks passed in $(duration $((SECONDS - RUN_START))) (wall time)"
echo "disk used by this run (growth; size now):"
total=0
for p in "${DISK_PLACES[@]}"; do
    now=$(disk_kib "$p")
    grew=$((now - ${DISK_BEFORE[$p]}))
    total=$((total + grew))
    printf '  %-12s %-48s %s\n' "+$(gib "$grew")" "${p/#$HOME/\~}" "$(gib "$now")"
done
echo "  total +$(gib "$total")"
