#!/usr/bin/env python3
"""enco-cl translate checked on values: a known generator on known images must give the
PyTorch twin's output to within one level per pixel and channel.

tests/fixtures/translate (written by tools/reference/make_translate_fixture.py) holds the
generator (G.safetensors, with its configuration in the metadata, as a checkpoint carries it),
two inputs whose sides are multiples of 4 (in/square.png 32x32, in/wide.png 24x40) and the
twin's float output for each (expected.safetensors). translate writes
round(clamp((y + 1) / 2 * 255)); the checks:

1. every output pixel is within 1 level of the twin's output quantised by that rule, and
   within 0.5 + TOL_LEVELS of the twin's exact value (so translate rounds to nearest: a
   truncating or off-by-half quantisation fails even where the 1-level check would not);
2. the output has the input's size and name; a folder and a single file both work;
3. a checkpoint that does not fit is refused with a message, and writes nothing: a
   configuration with another width, one with fewer blocks, a file with no generator, a
   truncated file.

The device is the default one or ENCO_DEVICE's (the test does not change it).
"""
import array
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib

BIN = sys.argv[1]
FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "translate")
# float32 engine vs the float32 twin: the twin itself is within 3e-4 levels of float64
# (make_translate_fixture.py prints it); summation order differs by a few times that.
TOL_LEVELS = 0.05
MIN_SPREAD = 100  # the fixture must spread over this many levels to tell generators apart

checks = failures = 0


def check(name, cond, detail=""):
    global checks, failures
    checks += 1
    if cond:
        print("ok   " + name)
    else:
        failures += 1
        print("FAIL " + name + (": " + detail if detail else ""))


def read_safetensors(path):
    """name -> (dtype, shape, array or raw bytes) and the metadata (standard library only)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
        data = f.read()
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = data[b:e]
        if info["dtype"] == "F32":
            a = array.array("f")
            a.frombytes(raw)
            if sys.byteorder != "little":
                a.byteswap()
            raw = a
        out[name] = (info["dtype"], info["shape"], raw)
    return out, meta


def write_safetensors(path, tensors, meta=None):
    """tensors: name -> (dtype, shape, bytes)."""
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name, (dt, shape, raw) in tensors.items():
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_png(path):
    """8-bit, non-interlaced PNG -> (w, h, channels, bytes of rows without filter bytes)."""
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("%s is not a PNG" % path)
    pos, idat, ihdr = 8, b"", None
    while pos < len(buf):
        (n,) = struct.unpack(">I", buf[pos:pos + 4])
        tag, body = buf[pos + 4:pos + 8], buf[pos + 8:pos + 8 + n]
        pos += 12 + n
        if tag == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat += body
        elif tag == b"IEND":
            break
    w, h, depth, ctype, _, _, interlace = ihdr
    chans = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or chans is None or interlace:
        raise ValueError("%s: only 8-bit non-interlaced grey/RGB(A) PNGs are read here" % path)
    raw = zlib.decompress(idat)
    stride = w * chans
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - chans] if i >= chans else 0
            b = prev[i]
            c = prev[i - chans] if i >= chans else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            elif ft != 0:
                raise ValueError("%s: bad filter %d" % (path, ft))
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return w, h, chans, bytes(out)


def write_png(path, w, h, rgb):
    """8-bit RGB PNG, filter 0 on every row."""
    rows = b"".join(b"\x00" + rgb[y * w * 3:(y + 1) * w * 3] for y in range(h))

    def chunk(tag, body):
        return (struct.pack(">I", len(body)) + tag + body +
                struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def run(*args):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout, p.stderr


def compare(name, out_png, y, shape):
    """Checks one translated image against the twin's float output y (C x H x W)."""
    c, h, w = shape
    try:
        pw, ph, pc, px = read_png(out_png)
    except (OSError, ValueError) as e:
        check("%s: translate wrote %s" % (name, os.path.basename(out_png)), False, str(e))
        return
    check("%s: output is %dx%d with %d channels" % (name, w, h, c),
          (pw, ph, pc) == (w, h, c), "got %dx%d with %d" % (pw, ph, pc))
    if (pw, ph, pc) != (w, h, c):
        return
    worst_q = worst_exact = 0.0
    off1 = 0
    where = ""
    for k in range(c):
        for i in range(h * w):
            exact = min(max((float(y[k * h * w + i]) + 1.0) * 0.5 * 255.0, 0.0), 255.0)
            twin = math.floor(exact + 0.5)  # lround of a non-negative value
            got = px[i * c + k]
            dq, de = abs(got - twin), abs(got - exact)
            off1 += dq != 0
            if dq > worst_q:
                worst_q, where = dq, "channel %d y %d x %d: %d, twin %.3f" % (
                    k, i // w, i % w, got, exact)
            worst_exact = max(worst_exact, de)
    n = c * h * w
    print("     %s: %d of %d values differ from the twin's quantised output (max %d level), "
          "max |out - twin exact| %.4f levels" % (name, off1, n, worst_q, worst_exact))
    check("%s: every value within 1 level of the twin" % name, worst_q <= 1, where)
    check("%s: every value rounds the twin's exact value to nearest (<= 0.5 + %g level)"
          % (name, TOL_LEVELS), worst_exact <= 0.5 + TOL_LEVELS,
          "max %.4f levels" % worst_exact)


def pngs(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".png")) if os.path.isdir(d) else []


def main():
    ckpt = os.path.join(FIX, "G.safetensors")
    expected, _ = read_safetensors(os.path.join(FIX, "expected.safetensors"))
    weights, meta = read_safetensors(ckpt)
    names = sorted(k for k, v in expected.items() if len(v[1]) == 3)
    check("fixture holds two images", names == ["square", "wide"], str(names))
    for name in names:
        y = expected[name][2]
        levels = [(v + 1.0) * 127.5 for v in y]
        check("fixture %s spreads over >= %d levels" % (name, MIN_SPREAD),
              max(levels) - min(levels) >= MIN_SPREAD,
              "%.1f..%.1f" % (min(levels), max(levels)))

    with tempfile.TemporaryDirectory(prefix="enco-translate-") as tmp:
        # 1 + 2: the whole folder in one run (the generator is rebuilt for the second size)
        out = os.path.join(tmp, "out")
        rc, so, se = run("translate", "-m", ckpt, "-i", os.path.join(FIX, "in"), "-o", out)
        check("translate of the fixture folder exits 0", rc == 0, se)
        check("one PNG per input, named after it", pngs(out) == ["square.png", "wide.png"],
              str(pngs(out)))
        for name in names:
            compare(name, os.path.join(out, name + ".png"), expected[name][2], expected[name][1])
        # a single file, with the configuration given explicitly (-c) instead of the metadata
        cfg = os.path.join(tmp, "g.cfg")
        with open(cfg, "w") as f:
            f.write(meta["config"])
        out1 = os.path.join(tmp, "one")
        rc, so, se = run("translate", "-m", ckpt, "-c", cfg, "-i",
                         os.path.join(FIX, "in", "wide.png"), "-o", out1)
        check("translate of one file with -c exits 0", rc == 0, se)
        compare("wide (one file, -c)", os.path.join(out1, "wide.png"), expected["wide"][2],
                expected["wide"][1])

        # Sides that are not multiples of 4 are resized as the reference's
        # __make_power_2 does (Python's round: halves to even): 30 x 26 -> 32 x 24.
        odd = os.path.join(tmp, "odd")
        os.makedirs(odd)
        write_png(os.path.join(odd, "odd.png"), 30, 26, bytes((i * 7) % 256 for i in range(30 * 26 * 3)))
        out2 = os.path.join(tmp, "odd-out")
        rc, so, se = run("translate", "-m", ckpt, "-i", odd, "-o", out2)
        size = read_png(os.path.join(out2, "odd.png"))[:2] if rc == 0 else None
        check("a 30x26 input comes out 32x24 (sides rounded to 4, halves to even)",
              size == (32, 24), "exit %d, size %s: %s" % (rc, size, se.strip()))

        # 3: checkpoints that do not fit are refused and nothing is written
        text = meta["config"]
        ngf = int(re.search(r"\bngf\s*=\s*(\d+)", text).group(1))
        blocks = int(re.search(r"\bn_blocks\s*=\s*(\d+)", text).group(1))
        narrow = os.path.join(tmp, "narrow.cfg")
        with open(narrow, "w") as f:
            f.write(re.sub(r"\bngf\s*=\s*\d+", "ngf = %d" % (ngf // 2), text))
        fewer = os.path.join(tmp, "fewer.cfg")
        with open(fewer, "w") as f:
            f.write(re.sub(r"\bn_blocks\s*=\s*\d+", "n_blocks = %d" % (blocks - 1), text))
        d_only = os.path.join(tmp, "d_only.safetensors")
        write_safetensors(d_only, {"netD.model.0.weight": ("F32", [1], struct.pack("<f", 1.0))},
                          {"config": text})
        cut = os.path.join(tmp, "cut.safetensors")
        with open(ckpt, "rb") as f, open(cut, "wb") as g:
            g.write(f.read()[: os.path.getsize(ckpt) // 2])
        cases = [
            ("a configuration with half the width (ngf %d)" % (ngf // 2),
             ["-m", ckpt, "-c", narrow], "does not match the configuration"),
            ("a configuration with one block fewer", ["-m", ckpt, "-c", fewer],
             "not part of this model"),
            ("a file with no generator", ["-m", d_only], "no generator"),
            ("a truncated checkpoint", ["-m", cut], "cut.safetensors"),
        ]
        for i, (what, args, msg) in enumerate(cases):
            o = os.path.join(tmp, "refused%d" % i)
            rc, so, se = run("translate", *args, "-i", os.path.join(FIX, "in"), "-o", o)
            check("translate refuses %s (exit 1, says '%s')" % (what, msg),
                  rc == 1 and msg in se, "exit %d: %s" % (rc, se.strip()))
            check("... and writes no image", pngs(o) == [], str(pngs(o)))
        check("the fixture checkpoint holds only netG.* tensors",
              all(k.startswith("netG.") for k in weights), "")

    print("%d checks, %d failed" % (checks, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
