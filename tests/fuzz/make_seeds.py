#!/usr/bin/env python3
"""Writes the safetensors seed corpus (tests/fuzz/corpus/safetensors/):
small valid files covering every dtype, metadata, scalars and empty tensors,
and invalid ones, each broken in one way. Run again after changing it; the
output is committed so the fuzz run needs no Python."""
import json
import os
import struct
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "safetensors")


def st(header, data=b"", raw_header=None, hlen=None):
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


def tensor(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def main():
    os.makedirs(OUT, exist_ok=True)
    f32 = struct.pack("<6f", 1, -2, 3.5, 0, 1e-30, -7)
    seeds = {
        # valid
        "valid_f32.st": st({"w": tensor("F32", [2, 3], 0, 24)}, f32),
        "valid_all_dtypes.st": st(
            {"__metadata__": {"format": "enco-cl", "config": "line1\nline2"},
             "a": tensor("F32", [1], 0, 4), "b": tensor("F64", [1], 4, 12),
             "c": tensor("I64", [1], 12, 20), "d": tensor("I32", [], 20, 24),
             "e": tensor("U8", [2, 2], 24, 28), "z": tensor("F32", [0, 4], 28, 28)},
            bytes(range(28))),
        "valid_empty.st": st({}),
        "valid_meta_only.st": st({"__metadata__": {"k": "v"}}),
        "valid_escapes.st": st(None, b"\x01\x02",
                               raw_header=b'{"n\\u00e9\\"\\\\\\ud83d\\ude00":{"dtype":"U8",'
                                          b'"shape":[2],"data_offsets":[0,2]}}  '),
        # invalid, one fault each
        "bad_short.st": b"\x08\x00\x00",
        "bad_hlen_huge.st": st({"w": tensor("F32", [1], 0, 4)}, b"\0" * 4, hlen=1 << 40),
        "bad_truncated.st": st({"w": tensor("F32", [2, 3], 0, 24)}, f32[:20]),
        "bad_overlap.st": st({"a": tensor("F32", [2], 0, 8), "b": tensor("F32", [2], 4, 12)},
                             b"\0" * 12),
        "bad_gap.st": st({"a": tensor("F32", [1], 4, 8)}, b"\0" * 8),
        "bad_dtype.st": st({"a": tensor("BF16", [1], 0, 2)}, b"\0\0"),
        "bad_shape_bytes.st": st({"a": tensor("F32", [3], 0, 8)}, b"\0" * 8),
        "bad_overflow.st": st({"a": tensor("F64", [4294967296, 4294967296, 16], 0, 8)},
                              b"\0" * 8),
        "bad_dup.st": st(None, b"\0" * 4, raw_header=b'{"a":{"dtype":"U8","shape":[4],'
                         b'"data_offsets":[0,4]},"a":{"dtype":"U8","shape":[4],'
                         b'"data_offsets":[0,4]}}'),
        "bad_json.st": st(None, b"", raw_header=b'{"a":{"dtype":"F32","shape":[1,],'),
        "bad_trailing.st": st(None, b"", raw_header=b'{} x'),
        "bad_escape.st": st(None, b"", raw_header=b'{"\\x":1}'),
        "bad_control.st": st(None, b"", raw_header=b'{"a\nb":1}'),
    }
    for name, blob in seeds.items():
        with open(os.path.join(OUT, name), "wb") as fp:
            fp.write(blob)
    print(f"{len(seeds)} seeds in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
