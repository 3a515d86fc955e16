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
import math
import os
import re
import struct
import subprocess
import sys
import tempfile

import testlib
from testlib import check, finish, floats, png_pixels, write_png, write_safetensors

BIN = sys.argv[1]
FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "translate")
# float32 engine vs the float32 twin: the twin itself is within 3e-4 levels of float64
# (make_translate_fixture.py prints it); summation order differs by a few times that.
TOL_LEVELS = 0.05
MIN_SPREAD = 100  # the fixture must spread over this many levels to tell generators apart


def read_safetensors(path):
    """name -> (dtype, shape, the values for F32, raw bytes otherwise) and the metadata."""
    out, meta = testlib.read_safetensors(path)
    return {k: (dt, shape, floats(raw) if dt == "F32" else raw)
            for k, (dt, shape, raw) in out.items()}, meta


def run(*args):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout, p.stderr


def compare(name, out_png, y, shape):
    """Checks one translated image against the twin's float output y (C x H x W)."""
    c, h, w = shape
    try:
        pw, ph, pc, px = png_pixels(out_png)
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
        write_png(os.path.join(odd, "odd.png"), 30, 26, 2, bytes((i * 7) % 256 for i in range(30 * 26 * 3)))
        out2 = os.path.join(tmp, "odd-out")
        rc, so, se = run("translate", "-m", ckpt, "-i", odd, "-o", out2)
        size = png_pixels(os.path.join(out2, "odd.png"))[:2] if rc == 0 else None
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

    finish()


if __name__ == "__main__":
    main()
