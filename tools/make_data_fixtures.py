#!/usr/bin/python3
"""Writes the image fixtures of tests/test_image.c into tests/data/images/.

Every source image is a formula of (x, y) that the C tests recompute, so
lossless decodes are checked against exact values; the expected results of
PIL's colour conversions and of PIL's bicubic resize (what torchvision's
transforms.Resize does on a PIL image) are written as PNG files beside them.

Needs Pillow (Debian: python3-pil). Run from anywhere:
    /usr/bin/python3 tools/make_data_fixtures.py
The output is deterministic; the files are small (a few KB in all).
"""
import os
import sys

from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "images")
W, H = 13, 9


def pattern(x, y):
    """The RGBA test pattern (mirrored in tests/test_image.c)."""
    return ((x * 37 + y * 11) & 255, (x * 5 + y * 23 + 7) & 255, (x * x + y * 3) & 255,
            (x * 13 + y * 7 + 100) & 255)


def noise(w, h, seed):
    """A deterministic noisy RGB image (xorshift32), for resize checks."""
    s = seed
    data = []
    for _ in range(w * h * 3):
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        data.append(s & 255)
    img = Image.new("RGB", (w, h))
    img.putdata([tuple(data[i:i + 3]) for i in range(0, len(data), 3)])
    return img


def main():
    os.makedirs(OUT, exist_ok=True)
    rgba = Image.new("RGBA", (W, H))
    rgba.putdata([pattern(x, y) for y in range(H) for x in range(W)])
    rgb = rgba.convert("RGB")
    gray = Image.new("L", (W, H))
    gray.putdata([pattern(x, y)[0] for y in range(H) for x in range(W)])
    la = Image.merge("LA", (gray, Image.new("L", (W, H), 77)))

    def save(img, name, **kw):
        img.save(os.path.join(OUT, name), **kw)

    # Sources, one per format and colour type.
    save(rgb, "rgb.png")
    save(rgba, "rgba.png")
    save(gray, "gray.png")
    save(la, "gray_alpha.png")
    save(rgb.quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE),
         "palette.png")
    save(rgb, "rgb.bmp")
    save(rgb, "rgb.tga")
    save(rgb, "rgb_rle.tga", compression="tga_rle")
    save(rgb, "rgb.ppm")
    save(gray, "gray.pgm")
    save(rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=8), "rgb.gif")
    save(rgb, "rgb.jpg", quality=95, subsampling=0)
    save(gray, "gray.jpg", quality=95)
    save(rgb, "rgb_prog.jpg", quality=95, subsampling=0, progressive=True)

    # PIL's conversions of the sources (the reference's convert('RGB'/'L')).
    save(rgba.convert("L"), "rgba_L.png")
    save(rgb.convert("L"), "rgb_L.png")
    pal = Image.open(os.path.join(OUT, "palette.png"))
    save(pal.convert("RGB"), "palette_RGB.png")
    gif = Image.open(os.path.join(OUT, "rgb.gif"))
    save(gif.convert("RGB"), "gif_RGB.png")
    # PIL's (libjpeg's) decodes, for a tolerance check of stb's decoder.
    save(Image.open(os.path.join(OUT, "rgb.jpg")).convert("RGB"), "jpg_RGB.png")
    save(Image.open(os.path.join(OUT, "gray.jpg")).convert("L"), "grayjpg_L.png")
    save(Image.open(os.path.join(OUT, "rgb_prog.jpg")).convert("RGB"), "jpgprog_RGB.png")

    # Bicubic resizes: upscale, downscale (antialiased), mixed, gray.
    src = noise(23, 17, 12345)
    save(src, "resize_src.png")
    for w, h in [(37, 29), (11, 8), (40, 9), (23, 5), (7, 17)]:
        save(src.resize((w, h), Image.BICUBIC), "resize_%dx%d.png" % (w, h))
    gsrc = noise(17, 23, 999).convert("L")
    save(gsrc, "resize_gray_src.png")
    save(gsrc.resize((30, 7), Image.BICUBIC), "resize_gray_30x7.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
