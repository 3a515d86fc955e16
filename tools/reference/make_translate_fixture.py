#!/usr/bin/python3
"""Write the translate fixture of enco-cl into tests/fixtures/translate/.

    /usr/bin/python3 tools/reference/make_translate_fixture.py [--outdir tests/fixtures/translate]

A known generator, two input images and what this twin's generator makes of them, so that
tests/test_translate.py can run `enco-cl translate` on the images and compare pixel values:

    G.safetensors         netG.* (the full state_dict: weights, biases, the blur filters `filt`)
                          of a small ResnetGenerator, metadata `config` (the configuration text,
                          as an enco-cl checkpoint carries it), `description`, `torch`
    in/<name>.png         8-bit RGB inputs whose sides are multiples of 4 (translate feeds them to
                          G unresized): `square` 32x32 and `wide` H=24 x W=40
    expected.safetensors  `<name>`: F32 3 x H x W, G(x) of the twin (tanh output in [-1, 1]) for
                          x = u8 / 255 * 2 - 1 computed in float32 (the same operations as
                          enco_image_to_tensor); `<name>.f64_diff`: F32 () the largest
                          |float32 - float64| of that output, the rounding spread to expect

translate writes round(clamp((y + 1) / 2 * 255, 0, 255)) per channel; the test compares with
the same rule applied to `<name>`.

The weights come from the twin's init (xavier_normal, spec section 6) but with gain 1.0
instead of 0.02, and the conv biases are drawn from N(0, 0.1) instead of 0: with the training
init the output is tanh of ~0.02 and every pixel lands on level 127 or 128, which would not
tell a right generator from most wrong ones. With these weights the outputs spread over most
of 0..255 (the script prints the range and refuses a fixture narrower than 100 levels).
"""
import argparse
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as Fn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enco_config  # noqa: E402
import safetensors_io as st  # noqa: E402
from enco_model import ResnetGenerator, init_weights  # noqa: E402

# same reason as enco_step.py: oneDNN float32 convolutions in this torch build drift
torch.backends.mkldnn.enabled = False

MODEL = {"ngf": 8, "ndf": 8, "n_blocks": 2, "nce_layers": [3, 7, 12, 13, 17, 21], "netF_nc": 32}
SEED = 3000
GAIN = 1.0
BIAS_STD = 0.1
IMAGES = [("square", 32, 32), ("wide", 24, 40)]  # name, H, W
MIN_SPREAD = 100  # levels between the lowest and highest expected value of a fixture


def write_png(path, rgb):
    """8-bit RGB, no interlace, filter 0 on every row (standard library only)."""
    h, w, c = rgb.shape
    assert c == 3 and rgb.dtype == np.uint8
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data +
                struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def make_image(h, w, gen):
    """Smooth colour noise, fine noise and a bright rectangle with hard edges, as uint8 HWC."""
    coarse = torch.rand(1, 3, max(h // 8, 2), max(w // 8, 2), generator=gen)
    img = Fn.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]
    img = img + 0.08 * torch.randn(3, h, w, generator=gen)
    img[:, h // 4: h // 2, w // 3: w // 3 + w // 4] = 0.95
    u8 = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    return u8.permute(1, 2, 0).contiguous().numpy()


def to_tensor(u8):
    """enco_image_to_tensor: v / 255.0f * 2.0f - 1.0f in float32, CHW."""
    t = torch.from_numpy(u8).permute(2, 0, 1).to(torch.float32)
    return (t / 255.0 * 2.0 - 1.0)[None].contiguous()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outdir", default=os.path.normpath(
        os.path.join(here, "..", "..", "tests", "fixtures", "translate")))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cfg = enco_config.load()
    cfg["model"].update(MODEL)
    cfg["train"]["seed"] = SEED
    cfg["train"]["init_gain"] = GAIN
    text = enco_config.dump(cfg)
    cfg = enco_config.load(text=text)
    m = cfg["model"]

    netG = ResnetGenerator(m["input_nc"], m["output_nc"], m["ngf"], m["n_blocks"],
                           m["no_antialias"], m["no_antialias_up"])
    gen = torch.Generator().manual_seed(SEED)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        init_weights(netG, GAIN)
        for mod in netG.modules():
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)) and mod.bias is not None:
                nn.init.normal_(mod.bias, 0.0, BIAS_STD)
    netG.eval()  # no dropout or batch norm in G; InstanceNorm uses instance statistics

    os.makedirs(os.path.join(args.outdir, "in"), exist_ok=True)
    weights = {"netG." + k: v for k, v in netG.state_dict().items()}
    st.save_torch(os.path.join(args.outdir, "G.safetensors"), weights, metadata={
        "config": text, "torch": torch.__version__,
        "description": "translate fixture: ngf 8, 2 blocks, xavier_normal gain %g, biases "
                       "N(0, %g), seed %d (tools/reference/make_translate_fixture.py)"
                       % (GAIN, BIAS_STD, SEED)})

    expected = {}
    g64 = ResnetGenerator(m["input_nc"], m["output_nc"], m["ngf"], m["n_blocks"],
                          m["no_antialias"], m["no_antialias_up"]).double()
    g64.load_state_dict({k: v.double() for k, v in netG.state_dict().items()})
    for name, h, w in IMAGES:
        u8 = make_image(h, w, gen)
        write_png(os.path.join(args.outdir, "in", name + ".png"), u8)
        x = to_tensor(u8)
        with torch.no_grad():
            y = netG(x)[0][0]
            y64 = g64(x.double())[0][0]
        diff = float((y.double() - y64).abs().max())
        levels = ((y.double() + 1.0) * 0.5 * 255.0).clamp(0, 255).round()
        lo, hi = int(levels.min()), int(levels.max())
        # distance of the exact levels from a rounding boundary (x.5): the closer, the more a
        # float32 engine may land on the other side
        frac = ((y64 + 1.0) * 0.5 * 255.0) % 1.0
        near = int(((frac - 0.5).abs() < 0.01).sum())
        print("%-6s %dx%d: levels %d..%d (mean %.1f), |f32 - f64| <= %.2e (%.2e levels), "
              "%d of %d values within 0.01 level of a rounding boundary"
              % (name, h, w, lo, hi, float(levels.mean()), diff, diff * 127.5, near, y.numel()))
        if hi - lo < MIN_SPREAD:
            sys.exit("%s: outputs span only %d levels (< %d): the fixture would not tell "
                     "generators apart" % (name, hi - lo, MIN_SPREAD))
        expected[name] = y
        expected[name + ".f64_diff"] = torch.tensor(diff, dtype=torch.float32)
    st.save_torch(os.path.join(args.outdir, "expected.safetensors"), expected, metadata={
        "producer": "tools/reference/make_translate_fixture.py", "torch": torch.__version__,
        "inputs": " ".join("in/%s.png" % n for n, _, _ in IMAGES)})
    total = sum(os.path.getsize(os.path.join(dp, f))
                for dp, _, fs in os.walk(args.outdir) for f in fs)
    print("wrote %s (%.1f KiB)" % (args.outdir, total / 1024.0))


if __name__ == "__main__":
    main()
