#!/usr/bin/env bash
# Runs every cargo-fuzz target (libFuzzer) for SECONDS each (default 30) from its seed corpus,
# and prints the executions per target. New inputs found
# are kept in a scratch corpus under the target directory, not in fuzz/corpus (the committed
# seeds stay small); crashes are written to fuzz/artifacts/<target>/ and make the script exit
# non-zero. cargo-fuzz is installed into .tools/ when missing.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 0 tlv_dol   # stop after N executions instead of a time
#   FUZZ_SANITIZER=none scripts/fuzz.sh ...        # no AddressSanitizer (default: address)
#
# Toolchains: AddressSanitizer needs nightly (`-Zsanitizer`), so the default run uses
# `cargo +nightly`. Without a sanitizer cargo-fuzz passes only stable codegen flags (sancov
# passes and LLVM arguments), so FUZZ_SANITIZER=none builds with the stable toolchain: that is
# how scripts/test.sh fuzzes on a fresh machine, which can reach crates.io (cargo-fuzz) but not
# the Rust toolchain server (no nightly). Our code is safe Rust (the workspace forbids `unsafe`),
# so a run without AddressSanitizer still finds every panic, overflow (debug assertions are on)
# and hang, at several times the executions per second; docs/RELIABILITY.md says which
# sanitizer each quoted run used.
#
# `cargo test --manifest-path fuzz/Cargo.toml` runs the same target bodies over the seed corpus
# and seeded mutations without libFuzzer (see fuzz/README.md).
source "$(dirname "$0")/lib.sh"
need_rust
set -euo pipefail
cd "$ROOT/fuzz"
SECONDS_PER_TARGET="${1:-30}"
RUNS="${FUZZ_RUNS:-0}"
SANITIZER="${FUZZ_SANITIZER:-address}"
shift || true
TARGET_DIR="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/fuzz-$SANITIZER}"
TOOLCHAIN=()
[ "$SANITIZER" != none ] && TOOLCHAIN=(+nightly)
# libfuzzer-sys compiles libFuzzer (C++) with the system compiler.
command -v c++ >/dev/null 2>&1 || need_debs g++
# cargo-fuzz goes under the project (.tools/, gitignored), not into ~/.cargo: a clone's tools
# leave with the clone.
export PATH="$ROOT/.tools/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  step "installing cargo-fuzz 0.13.2 into .tools/ (crates.io)"
  cargo install cargo-fuzz --locked --version 0.13.2 --root "$ROOT/.tools"
fi
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo "${TOOLCHAIN[@]}" fuzz list)
fi
# Build once, then run the binaries directly (`cargo fuzz run` would rebuild before each).
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  cargo "${TOOLCHAIN[@]}" fuzz build --sanitizer "$SANITIZER" --debug-assertions --target-dir "$TARGET_DIR"
fi
triple="$(rustc "${TOOLCHAIN[@]}" -vV | sed -n 's/^host: //p')"
bin_dir="$TARGET_DIR/$triple/release"
status=0
summary=()
for t in "${targets[@]}"; do
  scratch="$TARGET_DIR/corpus/$t"
  mkdir -p "$scratch" "artifacts/$t"
  log="$TARGET_DIR/$t.log"
  # -runs=-1 means no limit; -max_total_time=0 means no limit.
  RUNS_ARG=-1
  if [ "$RUNS" -gt 0 ]; then RUNS_ARG="$RUNS"; fi
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s / $RUNS runs (0 = no limit), sanitizer $SANITIZER"
  started=$(date +%s)
  if [ ! -x "$bin_dir/$t" ]; then
    summary+=("$(printf '%-20s %-6s' "$t" "NOT BUILT")")
    status=1
    continue
  fi
  if ASAN_OPTIONS="detect_odr_violation=0" "$bin_dir/$t" -artifact_prefix="artifacts/$t/" \
      -max_total_time="$SECONDS_PER_TARGET" -runs="$RUNS_ARG" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 "$scratch" "corpus/$t" >"$log" 2>&1; then
    result=ok
  else
    result=CRASH
    status=1
    tail -40 "$log"
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  if [ -z "$execs" ]; then
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  fi
  summary+=("$(printf '%-20s %-6s %12s execs %6ss' "$t" "$result" "${execs:-?}" "$(( $(date +%s) - started ))")")
done
end_step
echo "fuzz summary (${SECONDS_PER_TARGET}s / $RUNS runs per target, sanitizer $SANITIZER):"
printf '  %s\n' "${summary[@]}"
exit "$status"
