#!/usr/bin/env bash
# Benchmarks (criterion), not tests. Prints one table at the end: ISO 8583 pack/unpack of the
# reference sale per dialect next to pyiso8583 on the same iso87a message (measured in this run),
# TLV parsing, DUKPT derivation. Usage: scripts/bench.sh [--quick]
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
need_rust
need_venv
MEASURE=5
[ "${1:-}" = "--quick" ] && MEASURE=2
ARGS=(--warm-up-time 1 --measurement-time "$MEASURE" --noplot)

step "criterion: ISO 8583 codec"
cargo bench --locked -p smartpos-iso8583 --bench codec -- "${ARGS[@]}" >/dev/null
step "criterion: TLV"
cargo bench --locked -p smartpos-emv --bench tlv -- "${ARGS[@]}" >/dev/null
step "criterion: DUKPT"
cargo bench --locked -p smartpos-crypto --bench dukpt -- "${ARGS[@]}" >/dev/null
step "pyiso8583 on the same iso87a message"
PY_OUT="$("$PYTHON" scripts/bench_iso8583_py.py 20000)"
echo "$PY_OUT"

"$PYTHON" - "$ROOT/target/criterion" "$PY_OUT" <<'PY'
import json, os, re, sys
root, py_out = sys.argv[1], sys.argv[2]
def mean(*parts):
    p = os.path.join(root, *parts, "new", "estimates.json")
    try:
        return json.load(open(p))["mean"]["point_estimate"]
    except OSError:
        return None
py = {}
for line in py_out.splitlines():
    m = re.search(r"(pack|unpack)\D*([0-9.]+)\s*ns", line)
    if m:
        py[m.group(1)] = float(m.group(2))
rows = []
for d in ("cup", "iso87b", "iso87a"):
    for op in ("pack", "unpack"):
        v = mean(f"iso8583_{d}_{op}")
        if v is not None:
            ref = py.get(op) if d == "iso87a" else None
            ratio = f"{ref / v:6.1f}x faster than pyiso8583 ({ref:,.0f} ns)" if ref else ""
            rows.append((f"iso8583 {d} {op} (reference sale)", v, ratio))
for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
    if name.startswith("tlv") or "dukpt" in name:
        for sub in sorted(os.listdir(os.path.join(root, name))):
            v = mean(name, sub)
            if v is not None:
                rows.append((f"{name}/{sub}", v, ""))
        v = mean(name)
        if v is not None:
            rows.append((name, v, ""))
print()
print(f"{'benchmark':<52} {'ns/op':>12}  comparison")
for n, v, r in rows:
    print(f"{n:<52} {v:>12,.0f}  {r}")
print(f"\nmachine: {os.uname().sysname} {os.uname().machine}, {os.cpu_count()} cores")
PY
