#!/usr/bin/env bash
# Benchmarks (criterion and small harnesses), not tests. Prints ONE table at the end, one row
# per measurement of issue 10, each with its target where the issue sets one:
#   1. ISO 8583 pack/unpack of the reference sale per dialect (criterion: `unpack` builds an
#      owned Message, `view` reads in place without allocating), next to jPOS 2.1.10 (iso87b,
#      ISO87BPackager, JIT-warm) and pyiso8583 (iso87a and iso87b) on the same 19-field message
#      in the same run, with the ratios and issue 20's targets (5x jPOS, 25x pyiso8583; plus
#      TLV parsing and DUKPT for reference).
#   2. SDK overhead per contactless sale against the physical floor of the same run (loopback
#      round trip + two synchronous=FULL WAL commits), and the card-in-field time of the SDK;
#      a contact chip sale through the certified-kernel bridge and what the bridge adds.
#   3. The same sale through the Kotlin bindings on the JVM (scripts/kotlin.sh bench).
#   4. Journal scaling: open time and per-sale cost with 10^3, 10^5 and 10^6 rows.
#   5. Host simulator throughput with 100 concurrent terminals on loopback.
#   6. Size of the stripped release-android libsmartpos_ffi.so (scripts/size.sh).
#
# Usage: scripts/bench.sh [--quick] [--no-kotlin] [--codec] [--rounds N]
#   --quick      shorter criterion runs, fewer sales, journal sizes up to 10^5 only
#   --no-kotlin  leave out item 3 (needs a JDK and Maven, installed from Debian when missing)
#   --codec      item 1's codec rows only: our codec, jPOS and pyiso8583 (a few minutes)
#   --rounds N   run our codec bench and jPOS's N times, alternating (default 1), and judge
#                the jPOS ratios on the median of the N per-round ratios: on a shared machine
#                a load that comes and goes then weighs on both sides alike
# Harness directories (journal files) go to BENCH_DIR (default: target/bench-tmp), which must be
# on the disk whose fsync cost matters; it is not a tmpfs here.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
need_rust
need_venv

QUICK=0
KOTLIN=1
CODEC_ONLY=0
ROUNDS=1
usage() { echo "usage: $0 [--quick] [--no-kotlin] [--codec] [--rounds N]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --no-kotlin) KOTLIN=0 ;;
        --codec) CODEC_ONLY=1 ;;
        --rounds)
            shift
            case "${1:-}" in ''|*[!0-9]*|0) usage ;; esac
            ROUNDS="$1" ;;
        *) usage ;;
    esac
    shift
done
MEASURE=5
SALES=300
WARMUP=30
SIZES=1000,100000,1000000
J_SALES=50
SECONDS_HOST=5
if [ "$QUICK" = 1 ]; then
    MEASURE=2; SALES=100; WARMUP=10; SIZES=1000,100000; J_SALES=20; SECONDS_HOST=2
fi
ARGS=(--warm-up-time 1 --measurement-time "$MEASURE" --noplot)
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$TARGET_DIR/bench-results"
BENCH_DIR="${BENCH_DIR:-$TARGET_DIR/bench-tmp}"
rm -rf "$OUT"
mkdir -p "$OUT" "$BENCH_DIR"

if [ "$CODEC_ONLY" = 0 ]; then
step "criterion: TLV"
cargo bench --locked -p smartpos-emv --bench tlv -- "${ARGS[@]}" >/dev/null
step "criterion: DUKPT"
cargo bench --locked -p smartpos-crypto --bench dukpt -- "${ARGS[@]}" >/dev/null
fi
step "pyiso8583 on the same message (iso87a, iso87b)"
"$PYTHON" scripts/bench_iso8583_py.py 20000 | tee "$OUT/pyiso8583.txt"
command -v mvn >/dev/null 2>&1 || need_debs maven
command -v javac >/dev/null 2>&1 || need_debs openjdk-17-jdk-headless
JPOS_ITER=1000000
[ "$QUICK" = 1 ] && JPOS_ITER=200000
# Our codec and jPOS, alternating; each round's medians are kept for the ratios
# ($OUT/codec-rounds.txt: round, dialect, operation, ours ns, jPOS ns).
: >"$OUT/codec-rounds.txt"
for round in $(seq 1 "$ROUNDS"); do
    step "round $round/$ROUNDS: criterion, ISO 8583 codec"
    cargo bench --locked -p smartpos-iso8583 --bench codec -- "${ARGS[@]}" >/dev/null
    step "round $round/$ROUNDS: jPOS 2.1.10 ISO87BPackager on the same iso87b message (Maven Central; tests/oracles/jpos)"
    if ! tests/oracles/jpos/run.sh bench "$JPOS_ITER" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | tee "$OUT/jpos.txt"; then
        echo "jpos bench failed" >>"$OUT/jpos.txt"
    fi
    "$PYTHON" - "$TARGET_DIR/criterion" "$OUT/jpos.txt" "$round" >>"$OUT/codec-rounds.txt" <<'PY'
import json, os, re, sys
crit, jpos, rnd = sys.argv[1:4]
peer = {}
for line in open(jpos):
    m = re.search(r"/iso87b/(pack|unpack)\s+([0-9.]+)\s*ns", line)
    if m:
        peer[m.group(1)] = float(m.group(2))
for op, peer_op in (("pack", "pack"), ("view", "unpack"), ("unpack", "unpack")):
    try:
        est = json.load(open(os.path.join(crit, f"iso8583_iso87b_{op}", "new", "estimates.json")))
    except OSError:
        continue
    if peer_op in peer:
        print(rnd, "iso87b", op, est["median"]["point_estimate"], peer[peer_op])
PY
done
if [ "$CODEC_ONLY" = 0 ]; then
step "harnesses: building smartpos-bench (release)"
cargo build --locked --release -p smartpos-bench
BENCH_BIN="$TARGET_DIR/release/smartpos-bench"

step "2. SDK overhead per contactless sale ($SALES sales after $WARMUP warm-up)"
"$BENCH_BIN" sale --sales "$SALES" --warmup "$WARMUP" --dir "$BENCH_DIR" | tee "$OUT/sale.json"

step "4. journal scaling ($SIZES rows)"
"$BENCH_BIN" journal --sizes "$SIZES" --sales "$J_SALES" --dir "$BENCH_DIR" | tee "$OUT/journal.json"

step "5. host simulator throughput (100 terminals, ${SECONDS_HOST} s)"
"$BENCH_BIN" host --terminals 100 --seconds "$SECONDS_HOST" --warmup 1 | tee "$OUT/host.json"

if [ "$KOTLIN" = 1 ] && [ -f bindings/kotlin/pom.xml ]; then
    step "3. the same sale through the Kotlin bindings (scripts/kotlin.sh bench)"
    if ! scripts/kotlin.sh bench "$SALES" 2>&1 | tee "$OUT/kotlin.txt"; then
        echo "kotlin bench failed" >>"$OUT/kotlin.txt"
    fi
fi

step "6. native library size (scripts/size.sh)"
scripts/size.sh 2>"$OUT/size.log" | tee "$OUT/size.txt" || true
fi

CODEC_ONLY="$CODEC_ONLY" "$PYTHON" - "$TARGET_DIR/criterion" "$OUT" <<'PY'
import json, os, re, statistics, sys
crit, out = sys.argv[1], sys.argv[2]

def mean(*parts, stat="mean"):
    p = os.path.join(crit, *parts, "new", "estimates.json")
    try:
        return json.load(open(p))[stat]["point_estimate"]
    except OSError:
        return None

def load(name):
    try:
        return json.load(open(os.path.join(out, name)))
    except (OSError, ValueError):
        return None

def text(name):
    try:
        return open(os.path.join(out, name)).read()
    except OSError:
        return ""

rows = []  # (item, what, result, target, verdict)
def row(item, what, result, target="", ok=None):
    rows.append((item, what, result, target, "" if ok is None else ("met" if ok else "MISSED")))

# 1. codec, next to jPOS and pyiso8583 (same message, same run)
def peers(name):
    got = {}
    for line in text(name).splitlines():
        m = re.search(r"/(iso87[ab])/(pack|unpack)\s+([0-9.]+)\s*ns", line)
        if m:
            got[(m.group(1), m.group(2))] = float(m.group(3))
    return got
py, jp = peers("pyiso8583.txt"), peers("jpos.txt")
# --rounds N: (dialect, op) -> [(ours ns, jPOS ns)] of each alternating round.
rounds = {}
for line in text("codec-rounds.txt").splitlines():
    f = line.split()
    if len(f) == 5:
        rounds.setdefault((f[1], f[2]), []).append((float(f[3]), float(f[4])))
for d in ("cup", "iso87b", "iso87a"):
    for op in ("pack", "unpack", "view"):
        # Medians on both sides (jPOS: of 10,000-iteration batches; pyiso8583: one long run),
        # so a preempted sample on a busy machine moves neither much.
        v = mean(f"iso8583_{d}_{op}", stat="median")
        if v is None:
            continue
        peer_op = "pack" if op == "pack" else "unpack"
        parts, ok = [], None
        for who, table, target in (("jPOS", jp, 5.0), ("pyiso8583", py, 25.0)):
            ref = table.get((d, peer_op))
            per_round = sorted(j / o for o, j in rounds.get((d, op), []))
            if who == "jPOS" and len(per_round) > 1:
                # Several alternating rounds: judged on the median of the per-round ratios.
                mid = statistics.median(per_round)
                shown = " / ".join(f"{r:.1f}" for r in per_round)
                if op != "unpack":
                    parts.append(f"jPOS {shown}x in {len(per_round)} rounds, median {mid:.1f}x")
                    ok = (ok is not False) and mid >= target
                else:
                    parts.append(f"jPOS median {mid:.1f}x ({shown})")
            elif ref and op != "unpack":
                ratio = ref / v
                parts.append(f"{who} {ref:,.0f} ns, ours {ratio:.1f}x faster")
                ok = (ok is not False) and ratio >= target
            elif ref:
                parts.append(f"{who} {ref / v:.1f}x")
        what = {"pack": "pack", "unpack": "unpack to an owned Message", "view": "unpack in place (view)"}[op]
        target = "5x jPOS, 25x pyiso8583" if d == "iso87b" and op != "unpack" else ("25x pyiso8583" if d == "iso87a" and op != "unpack" else "")
        row("1", f"iso8583 {d} {what}", f"{v:,.0f} ns" + ("; " + "; ".join(parts) if parts else ""),
            target, ok if target else None)
codec_only = os.environ.get("CODEC_ONLY") == "1"
for name in sorted(os.listdir(crit)) if os.path.isdir(crit) and not codec_only else []:
    if name.startswith("tlv") or "dukpt" in name:
        subs = sorted(os.listdir(os.path.join(crit, name)))
        for sub in subs:
            v = mean(name, sub)
            if v is not None:
                row("1", f"{name}/{sub}", f"{v:,.0f} ns")
        v = mean(name)
        if v is not None:
            row("1", name, f"{v:,.0f} ns")

# 2. sale overhead
s = load("sale.json")
if s:
    med = lambda k: s[k]["median_ms"]
    row("2", f"contactless sale, median of {s['sales']}", f"{med('sale'):.2f} ms (p90 {s['sale']['p90_ms']:.2f})")
    row("2", "physical floor: loopback RTT + 2 FULL commits",
        f"{med('floor'):.2f} ms (RTT {med('floor_round_trip'):.3f} + commits {med('floor_two_commits'):.2f})")
    row("2", "raw ratio (sale / floor), simulators' own work included", f"{s['ratio_median']:.2f}x")
    row("2", "card's and host's own work per sale (simulators)",
        f"card {med('card_in_field_card'):.3f} ms + host {med('host_work'):.3f} ms")
    row("2", "SDK overhead ratio, peers answering at once",
        f"{s['ratio_instant_peers_median']:.2f}x ({med('sale_instant_peers'):.2f} / {med('floor'):.2f} ms)",
        "<= 1.3x", s["ratio_instant_peers_median"] <= 1.3)
    row("2", "card-in-field time spent in the SDK", f"{med('card_in_field_sdk'):.3f} ms of {med('card_in_field'):.3f} ms in field ({s['apdus_per_sale']} APDUs)",
        "<= 5 ms", med("card_in_field_sdk") <= 5.0)
    w = s.get("wal_frames") or {}
    if w:
        row("2", "  pages written to the WAL, one sale / one floor sample", f"{w['sale']} / {w['floor']}")
    row("2", "  where the sale's time goes (medians)",
        f"{s['engine_commits_per_sale']} engine commits {med('engine_commit_time'):.2f} ms; host wait {med('host_wait'):.2f}; "
        f"card {med('card_in_field'):.2f}; rest {med('sdk_rest'):.2f}")
    if 'chip_sale' in s:
        row("2", "contact chip sale through the certified-kernel bridge (simulated kernel)",
            f"{med('chip_sale'):.2f} ms; {med('chip_sale_instant_peers'):.2f} ms without the kernel's and host's work "
            f"({s['chip_engine_commits_per_sale']} commits, {s['chip_frames_sent_per_sale']} frames: the sale and the previous chip sale's TC upload)")
        row("2", "  what the bridge adds per sale (chip minus contactless, peers' work out)",
            f"{s['bridge_adds_ms_median']:.3f} ms")

# 3. Kotlin
k = text("kotlin.txt")
if k:
    t = re.search(r"time per sale:\s*([0-9.]+)\s*ms", k)
    c = re.search(r"total crossings per sale:\s*([0-9.]+)", k)
    e = re.search(r"exported calls per sale:\s*([0-9.]+)", k)
    if t:
        row("3", "same contactless sale through Kotlin/JVM bindings", f"{float(t.group(1)):.2f} ms per sale")
    a = re.search(r"APDU exchanges per sale:\s*([0-9.]+)", k)
    if e and c:
        crossings = float(c.group(1))
        row("3", "FFI crossings per sale (besides APDUs)",
            f"{crossings:.2f} crossings incl. uniffi plumbing ({float(e.group(1)):.2f} exported calls); "
            f"{a.group(1) if a else '?'} APDU exchanges apart",
            "<= 10", crossings <= 10)
    if not t and not e:
        row("3", "Kotlin bindings bench", "did not run (see target/bench-results/kotlin.txt)")

# 4. journal scaling
j = load("journal.json")
if j:
    for z in j["sizes"]:
        n = z["rows"]
        exp = f"10^{len(str(n)) - 1}" if str(n).strip("0") == "1" else f"{n:,}"
        op = z["terminal_open"]["median_ms"]
        row("4", f"journal {exp} rows: open / sale",
            f"open {op:.2f} ms (p90 {z['terminal_open']['p90_ms']:.2f}); sale {z['sale']['median_ms']:.2f} ms, "
            f"{z['sale_without_commits']['median_ms']:.3f} ms without its 2 commits",
            "open < 50 ms" if n >= 1_000_000 else "", (op < 50.0) if n >= 1_000_000 else None)
    cpu = [z["sale_without_commits"]["median_ms"] for z in j["sizes"]]
    if len(cpu) > 1 and cpu[0] > 0:
        growth = cpu[-1] / cpu[0]
        row("4", "per-sale cost without disk syncs, largest / smallest journal",
            f"{growth:.2f}x ({cpu[-1]:.3f} / {cpu[0]:.3f} ms)", "flat (<= 1.5x)", growth <= 1.5)

# 5. host throughput
h = load("host.json")
if h:
    row("5", f"host simulator, {h['terminals']} concurrent terminals", f"{h['sales_per_second']:,.0f} sales/s with MAC (latency p50 {h['sale_latency']['median_ms']:.1f} ms, p90 {h['sale_latency']['p90_ms']:.1f})")

# 6. size (not measured by --codec)
sz = text("size.txt")
m = None if not sz and os.environ.get("CODEC_ONLY") == "1" else re.search(r"libsmartpos_ffi.so: (\d+) bytes \(([0-9.]+) MiB\)", sz)
if m is None and os.environ.get("CODEC_ONLY") == "1":
    pass
elif m:
    b = int(m.group(1))
    row("6", "libsmartpos_ffi.so, release-android, x86_64", f"{b:,} bytes ({m.group(2)} MiB)", "<= 3 MiB", b <= 3145728)
else:
    row("6", "libsmartpos_ffi.so, release-android, x86_64", "not built (see target/bench-results/size.log)", "<= 3 MiB", False)

w = [max(len(r[i]) for r in rows) for i in range(5)]
print()
hdr = ("#", "measurement", "result", "target", "")
print(f"| {hdr[0]} | {hdr[1]:<{w[1]}} | {hdr[2]:<{w[2]}} | {hdr[3]:<{w[3]}} | verdict |")
print(f"|---|{'-' * (w[1] + 2)}|{'-' * (w[2] + 2)}|{'-' * (w[3] + 2)}|---------|")
for r in rows:
    print(f"| {r[0]} | {r[1]:<{w[1]}} | {r[2]:<{w[2]}} | {r[3]:<{w[3]}} | {r[4]:<7} |")
cpu = "unknown CPU"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
print(f"\nmachine: {os.uname().sysname} {os.uname().machine}, {os.cpu_count()} cores (nproc), {cpu}; load average at the end {load1:.2f}")
PY
