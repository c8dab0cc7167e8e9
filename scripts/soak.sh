#!/usr/bin/env bash
# Fault soak: N mixed transactions (default 1000) from 4 terminals against one in-process host
# simulator injecting every fault kind at a combined 20% rate; then recovery against a clean
# server and reconciliation. Prints the figures; exits non-zero if anything was lost, doubled
# or left in doubt.
#
#   scripts/soak.sh [N] [extra soak args: --seed S --terminals T --rate R --timeout-ms MS --dialect D]
#   SMARTPOS_SOAK_SEED=123 scripts/soak.sh 10000
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000}"
shift || true
cargo build --release -p smartpos-tests --bin soak
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/soak" "$N" "$@"
