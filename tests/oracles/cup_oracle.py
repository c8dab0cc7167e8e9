#!/usr/bin/env python3
"""Oracle check of the `cup` dialect and the shipped UnionPay profiles against pyiso8583.

pyiso8583 4.0.1 is told the cup layout with its own options (header "h" 11 bytes, BCD MTI,
binary bitmap, BCD length prefixes, BCD numerics right-aligned or, for 2 22 32 48 60 61,
left-aligned with a trailing 0, track data with a trailing F, ASCII text, raw binary), then:

  cup:      COUNT random messages over every field of the built-in cup table, 58 and 59
            included: `smartpos tool iso8583 encode --dialect cup` gives pyiso8583's bytes,
            and pyiso8583's bytes decode to the same fields with ours, both ways.
  national: the 0210 of profiles/testdata/unionpay_national_0210.md is built by pyiso8583 (GBK
            text in 43 and 56, 63 = "CUP" then national-algorithm items as raw bytes); its
            bytes must equal the committed .hex, and both shipped UnionPay profiles
            (profiles/unionpay-national.toml, profiles/unionpay-acquirer.toml) must read it to
            the same fields. `--write` rewrites the .hex from pyiso8583 (then review the diff).

Env: SMARTPOS_BIN (default target/release/smartpos). Exit code 1 on any disagreement.
"""

import copy
import json
import os
import random
import sys
import time

import iso8583

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iso8583_oracle import ALPHABET, BIN, ROOT, smartpos  # noqa: E402

SEED = 59
COUNT = 300
TESTDATA = os.path.join(ROOT, "profiles", "testdata", "unionpay_national_0210.hex")
PROFILES = [os.path.join(ROOT, "profiles", p) for p in ("unionpay-national.toml", "unionpay-acquirer.toml")]

# The built-in cup table (pure/iso8583/src/tables.rs): field -> (kind, length type, max).
# Length type: 0 fixed, 2 LLVAR, 3 LLLVAR.
CUP = {
    2: ("n", 2, 19), 3: ("n", 0, 6), 4: ("n", 0, 12), 11: ("n", 0, 6), 12: ("n", 0, 6),
    13: ("n", 0, 4), 14: ("n", 0, 4), 15: ("n", 0, 4), 22: ("n", 0, 3), 23: ("n", 0, 3),
    25: ("n", 0, 2), 26: ("n", 0, 2), 32: ("n", 2, 11), 35: ("z", 2, 37), 36: ("z", 3, 104),
    37: ("an", 0, 12), 38: ("an", 0, 6), 39: ("an", 0, 2), 41: ("ans", 0, 8), 42: ("ans", 0, 15),
    44: ("an", 2, 25), 48: ("n", 3, 322), 49: ("an", 0, 3), 52: ("b", 0, 8), 53: ("n", 0, 16),
    54: ("an", 3, 20), 55: ("b", 3, 255), 58: ("b", 3, 100), 59: ("b", 3, 999), 60: ("n", 3, 17),
    61: ("n", 3, 29), 62: ("b", 3, 512), 63: ("ans", 3, 163), 64: ("b", 0, 8),
}
LEFT_ALIGNED = {2, 22, 32, 48, 60, 61}


def cup_spec(extra=None):
    spec = {
        "h": {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 11, "desc": "TPDU + header"},
        "t": {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 2, "desc": "MTI"},
        "p": {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 8, "desc": "Bitmap"},
        "1": {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 8, "desc": "Bitmap, secondary"},
    }
    for f, (kind, lt, mx) in {**CUP, **(extra or {})}.items():
        fs = {"data_enc": "ascii", "len_enc": "bcd", "len_type": {0: 0, 2: 1, 3: 2}[lt],
              "max_len": mx, "desc": f"field {f}"}
        if kind in ("n", "z"):
            fs["data_enc"] = "b"
            fs["len_count"] = "nibbles"
            if kind == "z":
                fs["right_pad"] = "F"
            elif f in LEFT_ALIGNED:
                fs["right_pad"] = "0"
            else:
                fs["left_pad"] = "0"
        elif kind == "b":
            fs["data_enc"] = "b"
        elif kind == "gbk":
            fs["data_enc"] = "gbk"
        spec[str(f)] = fs
    return spec


def random_value(rng, kind, lt, mx):
    n = mx if lt == 0 else (mx if rng.random() < 0.1 else rng.randint(0, min(mx, 40)))
    if kind == "b":
        return bytes(rng.randrange(256) for _ in range(n)).hex().upper()
    return "".join(rng.choice(ALPHABET[kind]) for _ in range(n))


def check_cup(rng):
    spec = cup_spec()
    bad, shown = 0, 0
    header = "6000030000603100311000"
    for i in range(COUNT):
        mti = "%04d" % rng.randrange(10000)
        density = rng.choice([0.1, 0.3, 0.6])
        fields = {str(f): random_value(rng, *CUP[f]) for f in CUP if rng.random() < density}
        if rng.random() < 0.5:  # the fields this check is about, always in half the messages
            for f in (58, 59):
                fields[str(f)] = random_value(rng, *CUP[f])
        doc = {"h": header, "t": mti, **fields}
        problem = None
        try:
            theirs, _ = iso8583.encode(copy.deepcopy(doc), spec)
            theirs = bytes(theirs).hex().upper()
            ours = smartpos("encode", "--dialect", "cup",
                            json.dumps({"mti": mti, "fields": fields}))["hex"].upper()
            back, _ = iso8583.decode(bytes.fromhex(ours), spec)
            read = smartpos("decode", "--dialect", "cup", "--unmasked", theirs)
            if ours != theirs:
                problem = f"bytes differ: ours {ours[:100]} theirs {theirs[:100]}"
            elif {k: v for k, v in back.items() if k.isdigit() and k != "1"} != fields:
                problem = "pyiso8583 reads ours differently"
            elif read["mti"] != mti or read["fields"] != fields:
                problem = "we read pyiso8583's differently"
        except Exception as e:  # a failure either side is a disagreement
            problem = str(e)[:200]
        if problem:
            bad += 1
            if shown < 5:
                shown += 1
                print(f"  cup message {i}: {problem}")
    print(f"cup oracle cup (58, 59 included): {COUNT - bad}/{COUNT} agree both ways")
    return bad


# The national-algorithm 0210 (profiles/testdata/unionpay_national_0210.md).
NATIONAL_TEXT = {
    "3": "000000", "4": "000000001234", "11": "000042", "12": "101112", "13": "0304",
    "15": "0305", "25": "00", "32": "01020000", "37": "260304000042", "38": "A12345",
    "39": "00", "41": "12345678", "42": "123456789012345", "43": "银联测试商户（上海）",
    "44": "0102000001020000", "49": "156", "56": "谢谢惠顾，欢迎再来", "60": "22000007",
}
SM4_DATA = bytes(range(0x10, 0x20))                      # 16 made-up bytes
SM3_DIGEST = bytes.fromhex("66C7F0F462EEEDD9D1F2D46BDC10E4E2")  # 16 made-up bytes
NATIONAL_63 = b"CUP" + b"SM" + bytes([len(SM4_DATA)]) + SM4_DATA + b"S3" + bytes([len(SM3_DIGEST)]) + SM3_DIGEST
NATIONAL_MAC = bytes.fromhex("0102030405060708")
NATIONAL_HEADER = "6000120000603100311000"


def national_doc():
    return {"h": NATIONAL_HEADER, "t": "0210", **NATIONAL_TEXT,
            "63": NATIONAL_63.hex().upper(), "64": NATIONAL_MAC.hex().upper()}


def check_national(write):
    spec = cup_spec({43: ("gbk", 2, 40), 56: ("gbk", 3, 300), 63: ("b", 3, 512)})
    packed = bytes(iso8583.encode(national_doc(), spec)[0]).hex().upper()
    if write:
        with open(TESTDATA, "w") as fh:
            fh.write(packed + "\n")
        print(f"cup oracle: wrote {os.path.relpath(TESTDATA, ROOT)} ({len(packed) // 2} bytes)")
    with open(TESTDATA) as fh:
        committed = "".join(fh.read().split()).upper()
    bad = 0
    if committed != packed:
        print("cup oracle national: pyiso8583 no longer builds the committed bytes")
        bad += 1
    want = {**NATIONAL_TEXT, "63": NATIONAL_63.hex().upper(), "64": NATIONAL_MAC.hex().upper()}
    for profile in PROFILES:
        name = os.path.basename(profile)
        try:
            got = smartpos("decode", "--profile", profile, "--unmasked", committed)
            ok = got["mti"] == "0210" and got["fields"] == want
            detail = "" if ok else f": {sorted(set(got['fields'].items()) ^ set(want.items()))[:4]}"
        except Exception as e:
            ok, detail = False, f": {str(e)[:200]}"
        bad += 0 if ok else 1
        print(f"cup oracle national 0210 read by {name}: {'same fields' if ok else 'DIFFERENT'}{detail}")
    return bad


def main():
    write = "--write" in sys.argv
    if not os.path.exists(BIN):
        print(f"smartpos binary not found at {BIN} (set SMARTPOS_BIN)")
        return 1
    start = time.time()
    print(f"cup oracle: pyiso8583 {iso8583.__version__}, seed {SEED}, {COUNT} messages")
    bad = check_national(write) + check_cup(random.Random(SEED))
    print(f"cup oracle: {'FAILED' if bad else 'ok'} in {time.time() - start:.1f}s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
