# Shared helpers for the scripts in this folder. Source it; do not run it.
# Keeps cargo parallelism sane on small CI machines and installs what a fresh machine lacks.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-$(nproc)}"

# Steps: `step WHAT` ends the step before it (printing how long it took) and announces the
# next; `steps_summary` prints every step of this script with its duration. Each script that
# sources this file times its own steps.
STEP_NAME=""
STEP_START=$SECONDS
STEP_TIMES=()
duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
end_step() {
    [ -n "$STEP_NAME" ] || return 0
    local took=$((SECONDS - STEP_START))
    printf '<== %s (%s)\n' "$STEP_NAME" "$(duration "$took")"
    STEP_TIMES+=("$(printf '%9s  %s' "$(duration "$took")" "$STEP_NAME")")
    STEP_NAME=""
}
step() {
    end_step
    STEP_NAME="$*"
    STEP_START=$SECONDS
    printf '\n==> %s\n' "$*"
}
steps_summary() {
    end_step
    printf '\nsteps:\n'
    printf '  %s\n' "${STEP_TIMES[@]}"
}

# Maven in batch mode without colour codes. Debian's Maven 3.8.7 writes two ANSI resets
# (ESC[0m ESC[0m) before its first line even with -B and -Dstyle.color=never (and whatever
# MAVEN_OPTS say about jansi), so the output also goes through a filter that drops escape
# sequences. stderr is merged into stdout; the exit status is Maven's.
mvn_plain() {
    mvn -B -Dstyle.color=never "$@" 2>&1 | sed -u 's/\x1b\[[0-9;]*m//g'
    return "${PIPESTATUS[0]}"
}

# The features every build of this workspace uses, so that one `cargo test` builds each crate
# once and the Kotlin bindings (scripts/kotlin.sh, scripts/android-sample.sh) reuse it: the
# bindings need smartpos-ffi's test kit, and a build with another feature set would compile
# smartpos-ffi (and the crates whose features change with it) a second time.
WORKSPACE_FEATURES=(--features smartpos-ffi/testkit)

# Installs Debian packages that are missing (needs root or sudo; silently skips when neither).
need_debs() {
    local missing=()
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    step "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
}

# Makes sure a Rust toolchain with rustfmt and clippy is on PATH.
need_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        step "installing Rust (rustup, stable)"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
        . "$HOME/.cargo/env"
    fi
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
}

# Creates (once) the Python venv used by the oracle checks and benches, at $ROOT/.venv.
need_venv() {
    local venv="$ROOT/.venv"
    if [ ! -x "$venv/bin/python" ]; then
        step "creating Python venv at .venv"
        python3 -m venv "$venv" || { need_debs python3-venv; python3 -m venv "$venv"; }
    fi
    if ! cmp -s "$ROOT/tests/oracles/requirements.txt" "$venv/.requirements.txt" 2>/dev/null; then
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$ROOT/tests/oracles/requirements.txt"
        cp "$ROOT/tests/oracles/requirements.txt" "$venv/.requirements.txt"
    fi
    export PYTHON="$venv/bin/python"
}
