#!/usr/bin/env python3
"""tools/demo-picture (the README's docs/demo.png) on a run folder of known pictures: its
PNG decoder against every row filter, the layout (a row per saved iteration, newest first;
real_A | fake_B | real_B | idt_B; each pixel a scale x scale square), and a clear refusal of
every bad input. Needs no OpenCL device: the samples are written here."""
import os
import random
import subprocess
import sys
import tempfile

from testlib import check, finish, load_tool, write_png

TOOL = sys.argv[1]
dp = load_tool("demo_picture", TOOL)


def tool(*args):
    p = subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


rng = random.Random(11)
W, H = 8, 6
with tempfile.TemporaryDirectory() as tmp:
    # The decoder: every filter type, RGB and RGBA (opaque: the same pixels; alpha 0: white).
    path = os.path.join(tmp, "f.png")
    rgb = bytes(rng.randrange(256) for _ in range(W * H * 3))
    write_png(path, W, H, 2, rgb, [0, 1, 2, 3, 4])
    w, h, rows = dp.read_png(path)
    check("read_png: RGB with row filters 0-4 decodes to the pixels written",
          (w, h) == (W, H) and b"".join(rows) == rgb)
    rgba = b"".join(rgb[3 * i:3 * i + 3] + bytes([255 if i % 2 else 0]) for i in range(W * H))
    write_png(path, W, H, 6, rgba, [4, 3, 2, 1, 0])
    w, h, rows = dp.read_png(path)
    want = b"".join(rgb[3 * i:3 * i + 3] if i % 2 else b"\xff\xff\xff" for i in range(W * H))
    check("read_png: RGBA with filters 0-4 decodes, alpha over white", b"".join(rows) == want)

    # A run folder: iterations 5, 40 (with idt_B), 300 (fake_B only), like a run whose
    # identity term ended between 40 and 300.
    run = os.path.join(tmp, "run")
    sdir = os.path.join(run, "samples")
    os.makedirs(sdir)
    pix = {}
    for name, colour in (("real_A", 2), ("real_B", 6), ("iter_00000005_fake_B", 2),
                         ("iter_00000005_idt_B", 2), ("iter_00000040_fake_B", 2),
                         ("iter_00000040_idt_B", 2), ("iter_00000300_fake_B", 2)):
        px = bytes(rng.randrange(256) for _ in range(W * H * 3))
        data = px if colour == 2 else b"".join(px[3 * i:3 * i + 3] + b"\xff"
                                                for i in range(W * H))
        write_png(os.path.join(sdir, name + ".png"), W, H, colour, data, [1, 4, 2])
        pix[name] = px
    with open(os.path.join(sdir, "iter_00000040.png"), "wb") as f:
        f.write(b"the batch grid: not read")
    out = os.path.join(tmp, "demo.png")
    rc, so, se = tool(run, out)
    check("a run folder: exit 0 and a summary line", rc == 0 and "3 rows" in so and
          "real_A | fake_B | real_B | idt_B" in so, so + se)
    scale = round(128 / W)   # 16
    w, h, rows = dp.read_png(out)
    label_w = max(dp.text_width("300"), dp.text_width("ITER")) + 2 * dp.PAD
    x0, y0 = dp.PAD + label_w, dp.PAD + dp.GLYPH_H + 2 * dp.PAD
    cw, ch = W * scale, H * scale
    check("the picture's size: 4 columns and 3 rows of %dx%d cells, separators, labels" %
          (cw, ch), (w, h) == (x0 + 4 * cw + 5 * dp.SEP + dp.PAD,
                               y0 + 3 * ch + 4 * dp.SEP + dp.PAD), "%dx%d" % (w, h))

    def cell(r, c):
        """The cell's pixels, each scale x scale block checked to be one colour; the image
        they form (None where a block is not uniform)."""
        cx, ry = x0 + dp.SEP + c * (cw + dp.SEP), y0 + dp.SEP + r * (ch + dp.SEP)
        img = bytearray()
        for y in range(H):
            for x in range(W):
                blk = {bytes(rows[ry + y * scale + j][3 * (cx + x * scale + i):
                                                     3 * (cx + x * scale + i) + 3])
                       for j in range(scale) for i in range(scale)}
                if len(blk) != 1:
                    return None
                img += blk.pop()
        return bytes(img)

    order = [300, 40, 5]
    for r, it in enumerate(order):
        check("row %d is iteration %d (newest first): real_A | fake_B | real_B" % (r, it),
              cell(r, 0) == pix["real_A"] and cell(r, 2) == pix["real_B"] and
              cell(r, 1) == pix["iter_%08d_fake_B" % it])
    check("idt_B where saved (iterations 40, 5)",
          cell(1, 3) == pix["iter_00000040_idt_B"] and cell(2, 3) == pix["iter_00000005_idt_B"])
    cx, ry = x0 + dp.SEP + 3 * (cw + dp.SEP), y0 + dp.SEP
    blank = {bytes(rows[ry + j][3 * (cx + i):3 * (cx + i) + 3]) for j in range(ch)
             for i in range(cw)}
    check("idt_B at iteration 300 (not saved) is the empty cell with an OFF label",
          blank == {bytes(dp.EMPTY), bytes(dp.INK)}, str(blank)[:200])
    check("a separator line between the cells",
          bytes(rows[y0 + dp.SEP + ch][3 * (x0 + 10):3 * (x0 + 11)]) == bytes(dp.LINE))
    ink = [x for x in range(dp.PAD, x0) for y in range(y0 + dp.SEP, y0 + dp.SEP + ch)
           if bytes(rows[y][3 * x:3 * x + 3]) == bytes(dp.INK)]
    check("row labels drawn left of the cells", len(ink) > 20, str(len(ink)))

    rc, so, se = tool(run, out, "--scale", "1", "--rows", "2")
    w2, h2, rows2 = dp.read_png(out)
    check("--scale 1 --rows 2: the two newest rows at 1x", rc == 0 and "2 rows" in so and
          h2 == y0 + 2 * H + 3 * dp.SEP + dp.PAD and w2 == x0 + 4 * W + 5 * dp.SEP + dp.PAD,
          so + se)

    # Without any idt_B the column is left out.
    run2 = os.path.join(tmp, "run2")
    os.makedirs(os.path.join(run2, "samples"))
    for name in ("real_A", "real_B", "iter_00000010_fake_B"):
        write_png(os.path.join(run2, "samples", name + ".png"), W, H, 2, pix["real_A"], [0])
    rc, so, se = tool(run2, out)
    check("no idt_B saved: three columns", rc == 0 and "real_A | fake_B | real_B," in so,
          so + se)

    # Refusals: exit 1 (2 for a usage error), a clear line naming the problem, no picture.
    def refused(what, args, says, code=1):
        if os.path.exists(out):
            os.remove(out)
        rc, so, se = tool(*args)
        check("%s: exit %d, says %r (%s)" % (what, code, says, se.strip().splitlines()[-1]),
              rc == code and says in se and not os.path.exists(out), "rc %d %s" % (rc, se))

    refused("a missing run folder", [os.path.join(tmp, "nope"), out], "no such run folder")
    os.makedirs(os.path.join(tmp, "empty"))
    refused("a folder without samples/", [os.path.join(tmp, "empty"), out], "no samples/")
    os.makedirs(os.path.join(tmp, "empty", "samples"))
    refused("samples/ without iterations", [os.path.join(tmp, "empty"), out],
            "no samples/iter_<N>_fake_B.png")
    os.remove(os.path.join(run2, "samples", "real_B.png"))
    refused("no real_B.png", [run2, out], "samples/real_B.png is missing")
    write_png(os.path.join(run2, "samples", "real_B.png"), 1, 1, 0, b"\0", [0])
    refused("a greyscale PNG", [run2, out], "only 8-bit RGB")
    write_png(os.path.join(run2, "samples", "real_B.png"), 1, 1, 2, b"\0" * 3, [0],
              depth=16)
    refused("a 16-bit PNG", [run2, out], "only 8-bit RGB")
    write_png(os.path.join(run2, "samples", "real_B.png"), 1, 1, 2, b"\0" * 3, [0],
              interlace=1)
    refused("an interlaced PNG", [run2, out], "interlaced")
    write_png(os.path.join(run2, "samples", "real_B.png"), W + 1, H, 2,
              b"\0" * ((W + 1) * H * 3), [0])
    refused("a sample of another size", [run2, out], "but real_A.png is 8x6")
    with open(os.path.join(run2, "samples", "real_B.png"), "wb") as f:
        f.write(b"GIF89a")
    refused("not a PNG", [run2, out], "not a PNG")
    refused("--scale 0", [run, out, "--scale", "0"], "--scale must be 1 to 64", 2)

finish()
