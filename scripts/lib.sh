# Shared helpers for the scripts in this folder. Source it; do not run it.
# Keeps cargo parallelism sane on small CI machines and installs what a fresh machine lacks.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-$(nproc)}"

step() { printf '\n==> %s\n' "$*"; }

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
