#!/usr/bin/env python3
"""Oracle check of smartpos-iso8583's iso87b against jPOS 2.1.10's stock ISO87BPackager.

jPOS (org.jpos:jpos from Maven Central, AGPL) runs as a black box through
tests/oracles/jpos/run.sh (our Java, compiled against the jPOS jar on first use); nothing of it
is shipped. Two checks:

  golden: jPOS packs the 19-field reference sale (pure/iso8583/testdata/iso87a_sale.json, the
          same as smartpos_iso8583::reference::iso87a_sale()); `smartpos tool iso8583 encode
          --dialect iso87b` of the same message must give the same bytes.
  random: COUNT random messages over every field 2..128 but 65, 93 and 96 (whose lengths jPOS
          sets apart from ISO 8583:1987: b1, an6, b16 against b8, an5, b8), values within both
          tables' lengths (55 up to 255 bytes, ours; 54 up to 120): our bytes must
          equal jPOS's for the same fields, jPOS must read our bytes back to the same fields,
          and `smartpos tool iso8583 decode` must read jPOS's bytes back to the same fields.

jPOS writes the track 2 separator as '=' (nibble D); our logical value has 'D' (the same nibble),
so field 35 is translated between the two; track 3 (36) is ASCII text in both.

Env: SMARTPOS_BIN (default target/release/smartpos). Needs Maven and a JDK (scripts/kotlin.sh
installs both). Exit code 1 on any disagreement; 0 with a note when Maven is missing.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iso8583_oracle import ALPHABET, BIN, KIND, ROOT, iso87b_spec, logical_bounds, smartpos  # noqa: E402

SEED = 20
COUNT = 300
RUN = os.path.join(ROOT, "tests", "oracles", "jpos", "run.sh")
BINARY_JPOS = {52, 64, 96, 128}  # IFB_BINARY: bytes in jPOS; every other field is a string there
# Lengths where jPOS's table is not ISO 8583:1987's (ours, and pyiso8583's): 65 jPOS b1 (ISO
# b64 = 8 bytes), 93 jPOS an6 (ISO an5), 96 jPOS b16 (ISO b64 = 8 bytes).
EXCLUDED = {65, 93, 96}


def jpos(*args):
    out = subprocess.run([RUN, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip()[-2000:])
    return out.stdout


def ours_to_jpos(f, value):
    """Our logical value (JSON text; hex for b fields) as the bytes jPOS holds."""
    if KIND[f] == "b":
        return bytes.fromhex(value)
    if f == 35:
        value = value.replace("D", "=")
    return value.encode("latin-1")


def random_value(rng, f, spec):
    lo, hi = logical_bounds(spec, f, "iso87b")
    if f == 55:
        hi = min(hi, 255)
    n = hi if lo == hi else (hi if rng.random() < 0.1 else rng.randint(lo, min(hi, 40)))
    kind = KIND[f]
    if kind == "b":
        return bytes(rng.randrange(256) for _ in range(n)).hex().upper()
    if kind == "xn":
        return rng.choice("CD") + "".join(rng.choice("0123456789") for _ in range(n - 1))
    if f == 36:
        return "".join(rng.choice("0123456789=") for _ in range(n))
    return "".join(rng.choice(ALPHABET[kind]) for _ in range(n))


def golden():
    with open(os.path.join(ROOT, "pure", "iso8583", "testdata", "iso87a_sale.json")) as fh:
        ref = json.load(fh)
    msg = {"mti": ref["mti"], "fields": ref["fields"]}
    ours = smartpos("encode", "--dialect", "iso87b", json.dumps(msg))["hex"].upper()
    theirs = jpos("golden").strip().upper()
    ok = ours == theirs
    print(f"jpos oracle golden reference sale: {'same bytes' if ok else 'DIFFERENT'} ({len(ours) // 2} bytes)")
    if not ok:
        print(f"  ours  {ours}\n  jPOS  {theirs}")
    return 0 if ok else 1


def random_check(rng):
    spec = iso87b_spec()
    docs, lines = [], []
    for i in range(COUNT):
        mti = "%04d" % rng.randrange(10000)
        density = rng.choice([0.05, 0.2, 0.5])
        fields = {str(f): random_value(rng, f, spec) for f in range(2, 129)
                  if f not in EXCLUDED and rng.random() < density}
        ours_hex = smartpos("encode", "--dialect", "iso87b",
                            json.dumps({"mti": mti, "fields": fields}))["hex"].upper()
        packed = ",".join(f"{f}={ours_to_jpos(int(f), v).hex().upper()}" for f, v in fields.items())
        docs.append((mti, fields, ours_hex))
        lines.append(f"{i} {mti} {packed or '-'} {ours_hex}")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(lines) + "\n")
        path = fh.name
    try:
        out = jpos("check", path).splitlines()
    finally:
        os.unlink(path)
    bad = {"same bytes": 0, "jPOS reads ours": 0, "we read jPOS's": 0}
    shown = 0
    for line in out:
        parts = line.split(" ")
        i = int(parts[0])
        mti, fields, ours_hex = docs[i]
        problems = []
        if parts[1] == "ERROR":
            problems.append(("same bytes", " ".join(parts[2:])[:200]))
        else:
            jpos_hex, read = parts[1].upper(), parts[2]
            if jpos_hex != ours_hex:
                problems.append(("same bytes", f"ours {ours_hex[:120]} jPOS {jpos_hex[:120]}"))
            expect = {"mti": mti, **{f: ours_to_jpos(int(f), v).hex().upper() for f, v in fields.items()}}
            got = dict(kv.split("=", 1) for kv in read.split(","))
            if got != expect:
                problems.append(("jPOS reads ours", f"{sorted(set(got.items()) ^ set(expect.items()))[:4]}"))
            try:
                back = smartpos("decode", "--dialect", "iso87b", "--unmasked", jpos_hex)
                if back["mti"] != mti or back["fields"] != fields:
                    problems.append(("we read jPOS's", "fields differ"))
            except Exception as e:  # a failure to decode is a disagreement too
                problems.append(("we read jPOS's", str(e)[:200]))
        for what, detail in problems:
            bad[what] += 1
            if shown < 5:
                shown += 1
                print(f"  message {i} {what}: {detail}")
    for what, n in bad.items():
        print(f"jpos oracle iso87b {what}: {len(out) - n}/{COUNT} agree")
    return (1 if len(out) != COUNT else 0) + sum(bad.values())


def main():
    if not os.path.exists(BIN):
        print(f"smartpos binary not found at {BIN} (set SMARTPOS_BIN)")
        return 1
    if not shutil.which("mvn") or not shutil.which("javac"):
        print("jpos oracle: skipped (no Maven or JDK on this machine; scripts/kotlin.sh installs them)")
        return 0
    start = time.time()
    print(f"jpos oracle: jPOS 2.1.10 ISO87BPackager, seed {SEED}, {COUNT} random messages")
    bad = golden() + random_check(random.Random(SEED))
    print(f"jpos oracle: {'FAILED' if bad else 'ok'} in {time.time() - start:.1f}s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
