#!/usr/bin/env python3
"""Times pyiso8583 encode/decode of the reference iso87a sale, for comparison with
`cargo bench -p smartpos-iso8583` (iso8583/iso87a/pack and unpack).

The message is pure/iso8583/testdata/iso87a_sale.json (the same content as
smartpos_iso8583::reference::iso87a_sale(), checked by the crate's integration tests), encoded
with pyiso8583's `specs.default_ascii`. Prints ns per pack and per unpack.
Run with the oracle venv: .venv/bin/python scripts/bench_iso8583_py.py [iterations]
"""

import copy
import json
import os
import sys
import time

import iso8583
from iso8583.specs import default_ascii

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    with open(os.path.join(ROOT, "core", "iso8583", "testdata", "iso87a_sale.json")) as f:
        ref = json.load(f)
    doc = {"t": ref["mti"], **ref["fields"]}
    packed, _ = iso8583.encode(copy.deepcopy(doc), default_ascii)
    packed = bytes(packed)

    # pyiso8583 encode mutates its input (adds bitmap keys), so each run gets a fresh copy,
    # made before the clock starts.
    copies = [copy.deepcopy(doc) for _ in range(iterations)]
    start = time.perf_counter_ns()
    for d in copies:
        iso8583.encode(d, default_ascii)
    pack_ns = (time.perf_counter_ns() - start) / iterations

    start = time.perf_counter_ns()
    for _ in range(iterations):
        iso8583.decode(packed, default_ascii)
    unpack_ns = (time.perf_counter_ns() - start) / iterations

    print(f"pyiso8583 {iso8583.__version__} iso87a reference sale ({len(packed)} bytes, "
          f"{iterations} iterations)")
    print(f"pyiso8583/iso87a/pack   {pack_ns:10.0f} ns")
    print(f"pyiso8583/iso87a/unpack {unpack_ns:10.0f} ns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
