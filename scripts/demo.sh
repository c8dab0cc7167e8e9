#!/usr/bin/env bash
# The main job: a full terminal session against the embedded host simulator (TLS on loopback):
# sign-in, sale, idempotent retry, void, sale + partial refund, a timed-out sale and its
# automatic reversal, a decline, settlement, and reconciliation of journal against host ledger.
# Installs what it needs (Rust) by itself. Extra arguments go to `smartpos demo`
# (e.g. --dialect iso87b, --quiet).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
need_rust
step "building smartpos (release)"
cargo build --release --locked -p smartpos-cli
step "smartpos demo $*"
"${CARGO_TARGET_DIR:-$ROOT/target}/release/smartpos" demo "$@"
if [ "${SMARTPOS_DEMO_KOTLIN:-1}" = 1 ]; then
    step "the same session through the Kotlin bindings on the JVM (SMARTPOS_DEMO_KOTLIN=0 skips it)"
    bash "$ROOT/scripts/kotlin.sh" demo
fi
