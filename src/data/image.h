/* 8-bit images: decoding (stb_image), PNG writing, PIL-compatible colour
 * conversion, PIL-exact bicubic resizing, crops and flips, and the float
 * tensor form the networks take.
 *
 * Colour conversion follows PIL's Image.convert, which the reference applies
 * to every file (convert('RGB'), or convert('L') when input_nc = 1):
 *   gray -> RGB   replicate;  gray+alpha -> RGB / L   alpha dropped;
 *   RGB(A) -> RGB alpha dropped (no compositing);
 *   RGB(A) -> L   L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16, PIL's
 *                 ITU-R 601-2 luma 0.299/0.587/0.114 in 16-bit fixed point.
 * 16-bit files are reduced to 8 bits by stb (x >> 8). JPEG files are decoded
 * by stb's own decoder, which can differ from libjpeg (PIL) by a few levels
 * (IDCT and chroma upsampling): exact agreement with the reference holds for
 * lossless formats only. */
#ifndef ENCO_DATA_IMAGE_H
#define ENCO_DATA_IMAGE_H

#include "core/internal.h"

#include <stdint.h>

/* Largest image accepted: each side and the pixel count. Bigger files are
 * refused rather than risk many GiB of memory from a corrupt header. */
#define ENCO_IMAGE_MAX_SIDE 16384
#define ENCO_IMAGE_MAX_PIXELS (1u << 28)

typedef struct enco_image {
    int w, h, c;        /* c = 1 (gray) or 3 (RGB); 2 and 4 only from enco_image_load(.., 0) */
    uint8_t *data;      /* (h, w, c), rows packed, malloc'd */
} enco_image;

/* Allocates a zeroed w x h x c image. */
enco_status enco_image_alloc(enco_image *img, int w, int h, int c);
void enco_image_free(enco_image *img);

/* Decodes a file (PNG, JPEG, BMP, TGA, GIF first frame, PSD, PNM, PIC, HDR
 * tone-mapped by stb) and converts it to `channels` (1 or 3; 0 keeps the
 * file's own 1..4). Errors name the file and the reason: missing, unreadable,
 * empty, truncated (the decoder wanted bytes past the end), corrupt (stb's
 * reason), zero-sized or over the size limit. */
enco_status enco_image_load(const char *path, int channels, enco_image *out);
/* The same from memory; `name` is used in messages. */
enco_status enco_image_load_memory(const void *buf, size_t size, const char *name, int channels,
                                   enco_image *out);

/* Converts between channel counts as PIL's convert('L') / convert('RGB'). */
enco_status enco_image_convert(const enco_image *in, int channels, enco_image *out);

/* Writes a PNG (c = 1, 2, 3 or 4) atomically: a temp file in the same
 * folder, then rename, so readers never see a half-written file. */
enco_status enco_image_save_png(const char *path, const enco_image *img);

/* ---- geometry ---------------------------------------------------------- */

/* PIL's Image.resize(..., BICUBIC) bit for bit: cubic kernel a = -0.5 with
 * support 2 scaled by the downscale factor (antialiasing), coefficients
 * normalised then fixed-point with 22 fraction bits, horizontal pass first
 * into an 8-bit intermediate (rounded), then the vertical pass; a pass whose
 * size does not change is skipped. */
enco_status enco_image_resize_bicubic(const enco_image *in, int w, int h, enco_image *out);

/* out = in[y .. y+h, x .. x+w); the window must lie inside the image. */
enco_status enco_image_crop(const enco_image *in, int x, int y, int w, int h, enco_image *out);
/* Mirrors left-right in place. */
void enco_image_flip_horizontal(enco_image *img);

/* ---- tensors ----------------------------------------------------------- */

/* chw[c][y][x] = v / 255 * 2 - 1 (in float: v / 255.0f * 2.0f - 1.0f, the
 * reference's ToTensor then Normalize(0.5, 0.5) up to float rounding). */
void enco_image_to_tensor(const enco_image *img, float *chw /* (c, h, w) */);
/* Back to 8 bits: round((x + 1) / 2 * 255) clamped to [0, 255]; NaN -> 0. */
enco_status enco_image_from_tensor(enco_image *out, const float *chw /* (c, h, w) */, int c, int h,
                                   int w);

/* Tiles n images of the same size and channel count into a grid of `cols`
 * columns with `pad` pixels of `fill` between and around them. */
enco_status enco_image_grid(enco_image *out, const enco_image *imgs, int n, int cols, int pad,
                            uint8_t fill);

#endif
