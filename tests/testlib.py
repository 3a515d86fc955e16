"""What the Python tests (tests/test_*.py) share, standard library only: the tally of their
checks (an "ok" or "FAIL" line each, a closing count, exit 1 when one failed), reading and
writing safetensors files, a PNG reader and writer (zlib and the five PNG row filters; no
numpy or PIL) and loading a tool's script as a module. Imported from the tests' folder (the
running script's, first on sys.path). tools/ does not import it: the tools run without the
tests."""
import importlib.machinery
import importlib.util
import json
import operator
import struct
import sys
import zlib

_tally = {"checks": 0, "failures": 0}
# A failed check's line, with a detail and without; test_cli.py keeps its own (fail_lines).
_fail = ["FAIL {name}: {detail}", "FAIL {name}"]


def fail_lines(with_detail, without):
    """Sets how a failed check reads (str.format with name and detail)."""
    _fail[:] = [with_detail, without]


def check(name, cond, detail=""):
    """Prints ok / FAIL for one named check; a failure is counted and shows detail."""
    _tally["checks"] += 1
    if cond:
        print("ok   " + name)
    else:
        _tally["failures"] += 1
        print(_fail[0 if detail else 1].format(name=name, detail=detail))


def finish(closing="{checks} checks, {failed} failed"):
    """Prints the closing line (str.format with checks, passed and failed) and exits 1 when a
    check failed, 0 otherwise."""
    n, failed = _tally["checks"], _tally["failures"]
    print(closing.format(checks=n, passed=n - failed, failed=failed))
    sys.exit(1 if failed else 0)


# ---- safetensors ---------------------------------------------------------------------------

def read_safetensors(path):
    """({name: (dtype, shape, raw bytes)}, the __metadata__ dict or {}) of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for k, v in header.items():
        b, e = v["data_offsets"]
        out[k] = (v["dtype"], v["shape"], data[8 + n + b:8 + n + e])
    return out, meta


def tensors(path):
    """name -> (dtype, shape, raw bytes) of a safetensors file."""
    return read_safetensors(path)[0]


def write_safetensors(path, tensors, meta=None):
    """tensors: name -> (dtype, shape, raw bytes), written in that order; meta: the
    __metadata__ dict, if any. The header is padded with spaces to a multiple of 8."""
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name, (dt, shape, raw) in tensors.items():
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def floats(raw):
    """The little-endian float32 values of raw bytes, as a tuple."""
    return struct.unpack("<%df" % (len(raw) // 4), raw)


# ---- PNG -----------------------------------------------------------------------------------

PNG_SIG = b"\x89PNG\r\n\x1a\n"
RGB_RGBA = (2, 6)
ANY_COLOUR = (2, 6, 0, 4)
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}
_COLOUR_NAMES = {0: "grey (0)", 2: "RGB (2)", 4: "grey and alpha (4)", 6: "RGBA (6)"}
_MOD256 = bytes(range(256)) * 2       # (a + b) mod 256 for a, b < 256, as a table


def read_png(path, colours=RGB_RGBA):
    """Decodes an 8-bit, non-interlaced PNG of one of the colour types in colours (by default
    RGB or RGBA: what Chromium and stb_image_write write) with zlib and the five PNG row
    filters; anything else is refused with a ValueError that says why. Returns (width, height,
    channels, rows), rows a list of bytes objects."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(PNG_SIG):
        raise ValueError("%s: not a PNG (no PNG signature)" % path)
    pos, ihdr, idat = 8, None, []
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if len(body) != n or len(data) < pos + 12 + n:
            raise ValueError("%s: truncated %r chunk" % (path, kind))
        if zlib.crc32(kind + body) != struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]:
            raise ValueError("%s: bad CRC in the %r chunk" % (path, kind))
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + n
    else:
        raise ValueError("%s: no IEND chunk (truncated)" % path)
    if ihdr is None or not idat:
        raise ValueError("%s: no IHDR or no IDAT chunk" % path)
    w, h, depth, colour, comp, filt, interlace = ihdr
    if depth != 8 or colour not in colours:
        raise ValueError("%s: bit depth %d, colour type %d: only 8-bit %s are read" %
                         (path, depth, colour, " or ".join(_COLOUR_NAMES[c] for c in colours)))
    if comp != 0 or filt != 0:
        raise ValueError("%s: unknown compression %d or filter method %d" % (path, comp, filt))
    if interlace != 0:
        raise ValueError("%s: interlaced (Adam7): only non-interlaced PNGs are read" % path)
    bpp = _CHANNELS[colour]
    stride = w * bpp
    raw = zlib.decompress(b"".join(idat))
    if len(raw) != h * (stride + 1):
        raise ValueError("%s: %d bytes of image data, %d expected for %dx%d" %
                         (path, len(raw), h * (stride + 1), w, h))
    rows, prev = [], bytes(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)]
        if ft == 0:
            cur = line
        elif ft == 2:
            cur = bytes(map(_MOD256.__getitem__, map(operator.add, line, prev)))
        elif ft in (1, 3, 4):
            cur = bytearray(line)
            if ft == 1:
                for i in range(bpp, stride):
                    cur[i] = (cur[i] + cur[i - bpp]) & 255
            elif ft == 3:
                for i in range(stride):
                    cur[i] = (cur[i] + ((cur[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
            else:
                for i in range(stride):
                    if i < bpp:
                        cur[i] = (cur[i] + prev[i]) & 255
                        continue
                    a, b, c = cur[i - bpp], prev[i], prev[i - bpp]
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    cur[i] = (cur[i] + pred) & 255
            cur = bytes(cur)
        else:
            raise ValueError("%s: row %d has filter type %d (PNG has 0-4)" % (path, y, ft))
        rows.append(cur)
        prev = cur
    return w, h, bpp, rows


def png_pixels(path):
    """Any 8-bit non-interlaced PNG (grey, grey and alpha, RGB, RGBA) as (width, height,
    channels, the rows' bytes one after the other)."""
    w, h, c, rows = read_png(path, ANY_COLOUR)
    return w, h, c, b"".join(rows)


def write_png(path, w, h, colour, data, filters=(0,), depth=8, interlace=0):
    """Writes a PNG of colour type colour from raw 8-bit pixels, filtering row y with
    filters[y % len(filters)] (every filter type: for testing decoders). depth and interlace
    only go into the header (a picture a decoder must refuse)."""
    bpp = _CHANNELS.get(colour, 1)
    stride, out, prev = w * bpp, b"", bytes(w * bpp)
    for y in range(h):
        cur, ft = data[y * stride:(y + 1) * stride], filters[y % len(filters)]
        enc = bytearray()
        for i in range(stride):
            a = cur[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = [0, a, b, (a + b) // 2, a if pa <= pb and pa <= pc else (b if pb <= pc else c)]
            enc.append((cur[i] - pred[ft]) & 255)
        out += bytes([ft]) + bytes(enc)
        prev = cur

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I",
                                                                         zlib.crc32(kind + body))
    with open(path, "wb") as f:
        f.write(PNG_SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0,
                                                     interlace)) +
                chunk(b"IDAT", zlib.compress(out)) + chunk(b"IEND", b""))


def load_tool(name, path):
    """Imports the Python script at path (a tool, with or without .py) as module name."""
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
