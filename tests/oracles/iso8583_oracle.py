#!/usr/bin/env python3
"""Oracle check of smartpos-iso8583 against pyiso8583 (an independent ISO 8583 implementation).

For each of the dialects iso87a and iso87b: 1,000 random messages (random MTI, random subset of
fields, random valid values), in two directions:

  ours -> theirs: `smartpos tool iso8583 encode`, then pyiso8583 `decode`: field-for-field equal,
                  and pyiso8583 `encode` of the same message gives the same bytes;
  theirs -> ours: pyiso8583 `encode`, then `smartpos tool iso8583 decode --unmasked`:
                  field-for-field equal.

Specs (field formats are facts; the code here is ours):
  iso87a: pyiso8583 `specs.default_ascii`, unchanged.
  iso87b: pyiso8583 `specs.default` is ISO 8583:1987 with a binary bitmap but ASCII numerics and
          ASCII length prefixes. Our iso87b is the binary variant as jPOS's ISO87BPackager packs
          it (BCD MTI, BCD numerics, BCD length prefixes), so the oracle takes `specs.default`
          and re-declares, with pyiso8583's own options, the MTI (data_enc b), fixed numerics
          (data_enc b, nibbles, left pad 0), variable numerics 2 32 33 99 100 and track 2 (35)
          (nibbles, right pad 0), track 3 (36, ASCII) and every length prefix (len_enc bcd).
          Field lengths and text/binary encodings are pyiso8583's, except 54 (ISO 8583:1987
          an..120, pyiso8583 240): values are generated within 120.
  iso87b-smartpos-0.1: the same with our previous convention (variable numerics left pad 0,
          track data 35/36 nibbles right pad F), through the profile
          tests/oracles/iso87b-smartpos-0.1.toml (`[codec] convention = "smartpos-0.1"`).

Excluded fields: 65. pyiso8583 treats bit 65 as the tertiary-bitmap indicator (fields 129-192);
ISO 8583:1987 and our dialects treat 65 as an ordinary b64 field, with no fields past 128.
For iso87b also 28-31 and 97: jPOS packs the x+n sign as a character and the digits in BCD,
which pyiso8583 cannot express (tests/oracles/jpos_oracle.py covers them against jPOS).

Env: SMARTPOS_BIN (default target/release/smartpos). Exit code 1 on any disagreement.
"""

import copy
import json
import os
import random
import subprocess
import sys
import time

import iso8583
from iso8583 import specs

SEED = 8583
COUNT = 1000
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SMARTPOS_BIN", os.path.join(ROOT, "target", "release", "smartpos"))

# ISO 8583:1987 character classes of fields 2..128, as in pure/iso8583/src/tables.rs.
KIND = {}
def _kinds(fields, kind):
    for f in fields:
        KIND[f] = kind
_kinds([2], "n"); _kinds(range(3, 28), "n"); _kinds(range(28, 32), "xn"); _kinds([32, 33], "n")
_kinds([34], "ns"); _kinds([35, 36], "z"); _kinds(range(37, 41), "an"); _kinds([41, 42, 43], "ans")
_kinds([44], "an"); _kinds([45, 46, 47, 48], "ans"); _kinds([49, 50, 51], "an"); _kinds([52], "b")
_kinds([53], "n"); _kinds([54], "an"); _kinds([55], "b"); _kinds(range(56, 64), "ans")
_kinds([64, 65], "b"); _kinds(range(66, 91), "n"); _kinds(range(91, 96), "an"); _kinds([96], "b")
_kinds([97], "xn"); _kinds([98], "ans"); _kinds([99, 100], "n"); _kinds(range(101, 128), "ans")
_kinds([128], "b")

EXCLUDED = {65}
EXCLUDED_ISO87B = {28, 29, 30, 31, 97}
PROFILE_0_1 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "iso87b-smartpos-0.1.toml")
ALPHABET = {
    "n": "0123456789",
    "z": "0123456789D",
    "an": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ",
    "ans": "".join(chr(c) for c in range(0x20, 0x7F)),
    "ns": "0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
}


def iso87b_spec(convention="jpos"):
    spec = copy.deepcopy(specs.default)
    spec["t"] = {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 2, "desc": "MTI"}
    for f in range(2, 129):
        fs = spec[str(f)]
        var = fs["len_type"]  # 0, 2 (LL) or 3 (LLL) ASCII digits in specs.default
        fs["len_enc"] = "bcd"
        fs["len_type"] = {0: 0, 2: 1, 3: 2}[var]
        if f == 36 and convention == "jpos":
            continue  # track 3: ASCII text
        if KIND[f] in ("n", "z"):
            fs["data_enc"] = "b"
            fs["len_count"] = "nibbles"
            if convention == "jpos" and (var != 0 or f == 35):
                fs["right_pad"] = "0"
            elif KIND[f] == "z":
                fs["right_pad"] = "F"
            else:
                fs["left_pad"] = "0"
    spec["54"]["max_len"] = 120
    return spec


def logical_bounds(spec, f, dialect):
    """(min, max) logical length: digits/characters, or bytes for b fields."""
    fs = spec[str(f)]
    mx = fs["max_len"]
    if KIND[f] == "b" and dialect == "iso87a":
        mx //= 2  # hex characters on the wire
    return (mx, mx) if fs["len_type"] == 0 else (0, mx)


def random_value(rng, f, spec, dialect):
    lo, hi = logical_bounds(spec, f, dialect)
    if lo == hi:
        n = hi
    elif rng.random() < 0.1:
        n = hi
    else:
        n = rng.randint(lo, min(hi, 40))
    kind = KIND[f]
    if kind == "b":
        return bytes(rng.randrange(256) for _ in range(n)).hex().upper()
    if kind == "xn":
        return rng.choice("CD") + "".join(rng.choice("0123456789") for _ in range(n - 1))
    return "".join(rng.choice(ALPHABET[kind]) for _ in range(n))


def random_message(rng, spec, dialect):
    doc = {"t": "%04d" % rng.randrange(10000)}
    density = rng.choice([0.05, 0.2, 0.5])
    excluded = EXCLUDED | (EXCLUDED_ISO87B if dialect == "iso87b" else set())
    for f in range(2, 129):
        if f not in excluded and rng.random() < density:
            doc[str(f)] = random_value(rng, f, spec, dialect)
    return doc


def smartpos(*args):
    out = subprocess.run([BIN, "tool", "iso8583", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return json.loads(out.stdout)


def fields_of(doc):
    return {k: v for k, v in doc.items() if k.isdigit() and k not in ("1",)}


def check(dialect, spec, rng, name=None, count=COUNT):
    """`dialect` names our dialect (`--dialect`) or, with `name`, a profile file (`--profile`)."""
    where = ["--profile", dialect] if name else ["--dialect", dialect]
    gen = "iso87b" if name else dialect
    name = name or dialect
    failures = {"ours->theirs": 0, "theirs->ours": 0}
    shown = 0
    for i in range(count):
        doc = random_message(rng, spec, gen)
        ours_json = {"mti": doc["t"], "fields": fields_of(doc)}
        # ours -> theirs
        try:
            packed = bytes.fromhex(smartpos("encode", *where, json.dumps(ours_json))["hex"])
            theirs, _ = iso8583.decode(packed, spec)
            theirs_bytes, _ = iso8583.encode(copy.deepcopy(doc), spec)
            ok = (theirs["t"] == doc["t"] and fields_of(theirs) == fields_of(doc)
                  and bytes(theirs_bytes) == packed)
            problem = "fields or bytes differ"
        except Exception as e:  # a failure to encode or decode is a disagreement too
            ok, problem = False, str(e)
        if not ok:
            failures["ours->theirs"] += 1
            if shown < 5:
                shown += 1
                print(f"  {name} ours->theirs message {i}: {problem}: {json.dumps(ours_json)[:300]}")
        # theirs -> ours
        try:
            encoded, _ = iso8583.encode(copy.deepcopy(doc), spec)
            ours = smartpos("decode", *where, "--unmasked", bytes(encoded).hex())
            ok = ours["mti"] == doc["t"] and ours["fields"] == fields_of(doc)
            problem = "fields differ"
        except Exception as e:
            ok, problem = False, str(e)
        if not ok:
            failures["theirs->ours"] += 1
            if shown < 5:
                shown += 1
                print(f"  {name} theirs->ours message {i}: {problem}: {json.dumps(doc)[:300]}")
    for direction, n in failures.items():
        print(f"iso8583 oracle {name} {direction}: {count - n}/{count} agree")
    return sum(failures.values())


def main():
    if not os.path.exists(BIN):
        print(f"smartpos binary not found at {BIN} (set SMARTPOS_BIN)")
        return 1
    print(f"iso8583 oracle: pyiso8583 {iso8583.__version__}, seed {SEED}, {COUNT} messages per dialect")
    rng = random.Random(SEED)
    start = time.time()
    bad = (check("iso87a", specs.default_ascii, rng) + check("iso87b", iso87b_spec(), rng)
           + check(PROFILE_0_1, iso87b_spec("smartpos-0.1"), rng, "iso87b-smartpos-0.1", 300))
    print(f"iso8583 oracle: {'FAILED' if bad else 'ok'} in {time.time() - start:.1f}s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
