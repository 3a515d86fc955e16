"""Minimal reader/writer for the safetensors file format (no third-party package).

Layout of a file:
    bytes 0..7   : N, unsigned 64-bit little-endian, length of the JSON header
    bytes 8..8+N : UTF-8 JSON object.  Each tensor entry is
                   name -> {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}
                   offsets are relative to the first byte after the header.
                   An optional "__metadata__" entry maps string -> string.
                   The header may be padded with trailing spaces (we pad to 8 bytes).
    rest         : raw little-endian tensor data, C order, tensors back to back.

Tensors are exchanged as numpy arrays by default; `load_torch` / `save_torch`
convert to / from torch tensors.
"""
import json
import struct
import sys

import numpy as np

# safetensors dtype tag <-> numpy dtype (always little-endian on disk)
_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def _tag_for(dt):
    dt = np.dtype(dt).newbyteorder("<") if np.dtype(dt).byteorder not in ("|",) else np.dtype(dt)
    for tag, npdt in _DTYPES.items():
        if npdt == dt:
            return tag
    raise TypeError("dtype %s cannot be stored in safetensors by this writer" % dt)


def save(path, tensors, metadata=None):
    """Write `tensors` (dict name -> numpy array, or anything np.asarray accepts) to `path`.

    Tensors are written in the order of the dict. `metadata` is an optional
    dict of str -> str stored as __metadata__."""
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("__metadata__ must map str -> str")
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        if name == "__metadata__":
            raise ValueError("tensor name __metadata__ is reserved")
        a = np.asarray(arr)
        tag = _tag_for(a.dtype)
        shape = a.shape
        a = np.ascontiguousarray(a, dtype=_DTYPES[tag]).reshape(shape)  # keep 0-d shape ()
        raw = a.tobytes(order="C")
        header[name] = {"dtype": tag, "shape": [int(s) for s in a.shape],
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def read_header(path):
    """Return (header dict without __metadata__, metadata dict, data start offset)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("%s: too short for a safetensors file" % path)
        (n,) = struct.unpack("<Q", head)
        if n > 100 * 1024 * 1024:
            raise ValueError("%s: implausible header length %d" % (path, n))
        header = json.loads(f.read(n).decode("utf-8"))
    meta = header.pop("__metadata__", None) or {}
    return header, meta, 8 + n


def load(path, with_metadata=False):
    """Read a safetensors file into an ordered dict name -> numpy array (order of data offsets)."""
    header, meta, start = read_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    out = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        tag = info["dtype"]
        if tag not in _DTYPES:
            raise TypeError("%s: unsupported dtype %s for %s" % (path, tag, name))
        dt = _DTYPES[tag]
        b, e = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape)) if shape else 1
        if e - b != count * dt.itemsize or e > len(data):
            raise ValueError("%s: bad data_offsets for %s" % (path, name))
        arr = np.frombuffer(data, dtype=dt, count=count, offset=b).reshape(shape).copy()
        out[name] = arr
    return (out, meta) if with_metadata else out


def load_torch(path, with_metadata=False):
    import torch
    t, meta = load(path, with_metadata=True)
    res = {k: torch.from_numpy(v.astype(v.dtype.newbyteorder("="))) for k, v in t.items()}
    return (res, meta) if with_metadata else res


def save_torch(path, tensors, metadata=None):
    arrs = {}
    for k, v in tensors.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu().contiguous().numpy()
        arrs[k] = v
    save(path, arrs, metadata)


if __name__ == "__main__":
    # `python3 safetensors_io.py FILE` lists the tensors of FILE
    for p in sys.argv[1:]:
        hdr, meta, _ = read_header(p)
        print("%s: %d tensors, metadata %s" % (p, len(hdr), json.dumps(meta)))
        for name, info in hdr.items():
            print("  %-50s %-4s %s" % (name, info["dtype"], tuple(info["shape"])))
