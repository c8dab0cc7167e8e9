#!/usr/bin/env python3
"""Times pyiso8583 encode/decode of the reference sale, for comparison with
`cargo bench -p smartpos-iso8583` (iso8583/iso87a/* and iso8583/iso87b/*) and with jPOS
(tests/oracles/jpos/run.sh bench), in the same scripts/bench.sh run.

The message is pure/iso8583/testdata/iso87a_sale.json (the same content as
smartpos_iso8583::reference::iso87a_sale(), checked by the crate's integration tests), encoded
with pyiso8583's `specs.default_ascii` (iso87a) and with the iso87b spec of
tests/oracles/iso8583_oracle.py (pyiso8583's own options declaring BCD numerics and prefixes as
jPOS's ISO87BPackager writes them; the same bytes as ours, checked there). Prints ns per pack
and per unpack. Run with the oracle venv: .venv/bin/python scripts/bench_iso8583_py.py [iterations]
"""

import copy
import json
import os
import sys
import time

import iso8583
from iso8583.specs import default_ascii

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "oracles"))
from iso8583_oracle import iso87b_spec  # noqa: E402


def bench(name, spec, doc, iterations):
    packed, _ = iso8583.encode(copy.deepcopy(doc), spec)
    packed = bytes(packed)
    # pyiso8583 encode mutates its input (adds bitmap keys), so each run gets a fresh copy,
    # made before the clock starts.
    copies = [copy.deepcopy(doc) for _ in range(iterations)]
    start = time.perf_counter_ns()
    for d in copies:
        iso8583.encode(d, spec)
    pack_ns = (time.perf_counter_ns() - start) / iterations

    start = time.perf_counter_ns()
    for _ in range(iterations):
        iso8583.decode(packed, spec)
    unpack_ns = (time.perf_counter_ns() - start) / iterations
    same = ""
    if name == "iso87b":
        with open(os.path.join(ROOT, "pure", "iso8583", "testdata", "iso87b_sale_jpos.hex")) as f:
            jpos = bytes.fromhex("".join(f.read().split()))
        same = "; the same bytes as jPOS's" if jpos == packed else "; NOT the bytes jPOS packs"
    print(f"pyiso8583 {iso8583.__version__} {name} reference sale ({len(packed)} bytes, "
          f"{iterations} iterations{same})")
    print(f"pyiso8583/{name}/pack   {pack_ns:10.0f} ns")
    print(f"pyiso8583/{name}/unpack {unpack_ns:10.0f} ns")


def main():
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    with open(os.path.join(ROOT, "pure", "iso8583", "testdata", "iso87a_sale.json")) as f:
        ref = json.load(f)
    doc = {"t": ref["mti"], **ref["fields"]}
    bench("iso87a", default_ascii, doc, iterations)
    bench("iso87b", iso87b_spec(), doc, iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
