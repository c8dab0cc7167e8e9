#!/usr/bin/env bash
# The main job: a full terminal session against the embedded host simulator (TLS on loopback):
# sign-in, sale, idempotent retry, void, sale + partial refund, a timed-out sale and its
# automatic reversal, a decline, settlement, and reconciliation of journal against host ledger.
# Then the same session again through the Kotlin bindings on the JVM (SMARTPOS_DEMO_KOTLIN=0
# leaves that part out). Installs what it needs (Rust; for the Kotlin part a JDK and Maven) by
# itself. Extra arguments go to `smartpos demo` (e.g. --dialect iso87b, --quiet).
#
# Time on a fresh clone, 2 cores (issue 22's measurement: 8 min 39 s in all): about half for the
# Rust part (mostly the release build of smartpos), half for the Kotlin part (a debug build of
# smartpos-ffi and Maven's first download of its plugins and dependencies into ~/.m2); seconds
# once built. Each step prints its own time.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
RUN_START=$SECONDS
need_rust
step "building smartpos (release; a few minutes on a fresh clone, seconds after)"
cargo build --release --locked -p smartpos-cli
step "smartpos demo $*"
"${CARGO_TARGET_DIR:-$ROOT/target}/release/smartpos" demo "$@"
if [ "${SMARTPOS_DEMO_KOTLIN:-1}" = 1 ]; then
    step "the same session through the Kotlin bindings on the JVM (builds smartpos-ffi and runs Maven; SMARTPOS_DEMO_KOTLIN=0 skips it)"
    bash "$ROOT/scripts/kotlin.sh" demo
else
    echo "(the Kotlin part is skipped: SMARTPOS_DEMO_KOTLIN=0)"
fi
steps_summary
echo "demo done in $(duration $((SECONDS - RUN_START)))"
