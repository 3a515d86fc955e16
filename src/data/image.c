/* Image decoding and PNG writing through stb, colour conversion, tensors.
 *
 * stb is compiled here with STB_IMAGE_STATIC / STB_IMAGE_WRITE_STATIC, so its
 * functions are private to this file and never clash with the copy in
 * Debian's libstb.a that `pkg-config stb` links. Its failure reason is
 * thread-local (C11), so loader threads can decode side by side. */
#include "data/image.h"

#include <ctype.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* stb declares a few static functions it never defines in this
 * configuration; GCC reports those at the end of the file, outside any
 * push/pop region, so this one stays off for the whole file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wcast-qual"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
/* stb checks internal invariants with assert(), which aborts the process on
 * some corrupt files (fuzz_image: stbi__jpeg_huff_decode's code check on a
 * damaged JPEG, stb_image.h:2115 in Debian's 2.27). A corrupt input file must
 * end in an error, not take a training run down with it: a failed check is
 * recorded instead and the decode reported as corrupt (enco_image_load_memory
 * checks the flag after every stb call). */
static _Thread_local int stb_check_failed;
#define STBI_ASSERT(x) ((x) ? (void)0 : (void)(stb_check_failed = 1))
/* stb's JPEG bit reader (stbi__grow_buffer_unsafe) shifts by 32 or more on
 * some corrupt entropy-coded data (found by fuzz_image; reproducer
 * tests/fuzz/corpus/image/stb-jpeg-shift-exponent.jpg). The decoded bits are
 * garbage then, never an out-of-bounds access (ASan still checks that); the
 * UBSan shift check is turned off for stb's own functions only, under clang,
 * which builds the fuzz targets. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((no_sanitize("shift"))), apply_to = function)
#endif
#include <stb_image.h>
#if defined(__clang__)
#pragma clang attribute pop
#endif
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>
#pragma GCC diagnostic pop

enco_status enco_image_alloc(enco_image *img, int w, int h, int c)
{
    img->data = NULL;
    img->w = img->h = img->c = 0;
    if (w <= 0 || h <= 0 || c < 1 || c > 4 || w > ENCO_IMAGE_MAX_SIDE || h > ENCO_IMAGE_MAX_SIDE ||
        (uint64_t)w * (uint64_t)h > ENCO_IMAGE_MAX_PIXELS)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "image size %dx%dx%d out of range (max side %d, %u pixels)",
                         w, h, c, ENCO_IMAGE_MAX_SIDE, ENCO_IMAGE_MAX_PIXELS);
    img->data = calloc((size_t)w * (size_t)h * (size_t)c, 1);
    if (!img->data)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of memory for a %dx%dx%d image", w, h, c);
    img->w = w;
    img->h = h;
    img->c = c;
    return ENCO_OK;
}

void enco_image_free(enco_image *img)
{
    if (!img)
        return;
    free(img->data);
    img->data = NULL;
    img->w = img->h = img->c = 0;
}

/* ---- decoding ---------------------------------------------------------- */

/* stb reads through these callbacks; `overrun` records that the decoder asked
 * for bytes past the end of the file. Several stb decoders (JPEG, BMP, TGA)
 * silently substitute zeros there, so this is how a truncated file is told
 * apart from a complete one. */
typedef struct mem_reader {
    const unsigned char *data;
    size_t size, pos;
    int overrun;
} mem_reader;

static int reader_read(void *user, char *out, int n)
{
    mem_reader *r = user;
    size_t left = r->size - r->pos;
    size_t k = (size_t)n < left ? (size_t)n : left;
    if (n > 0 && k == 0)
        r->overrun = 1;
    memcpy(out, r->data + r->pos, k);
    r->pos += k;
    return (int)k;
}

static void reader_skip(void *user, int n)
{
    mem_reader *r = user;
    if (n < 0) {
        size_t back = (size_t)-(long)n;
        r->pos = back > r->pos ? 0 : r->pos - back;
        return;
    }
    if ((size_t)n > r->size - r->pos) {
        r->overrun = 1;
        r->pos = r->size;
        return;
    }
    r->pos += (size_t)n;
}

static int reader_eof(void *user)
{
    mem_reader *r = user;
    return r->pos >= r->size;
}

static const stbi_io_callbacks reader_callbacks = {reader_read, reader_skip, reader_eof};

/* Debian's stb (2.27) builds a JPEG Huffman table from 16 code counts
 * without checking that they sum to at most 256, and writes past its
 * 257-entry size list when they do (found by tests/fuzz/fuzz_image.c). Walk
 * the segments as stb does and refuse such a DHT before stb sees it; returns
 * the offending sum, or 0 when the file is fine (or not a JPEG). */
/* stb sizes its PNG buffers from the chunk lengths before reading the data,
 * so a chunk claiming gigabytes makes it allocate them. Every chunk must fit
 * in the file: returns 1 when one does not. */
static int png_bad_chunk(const unsigned char *b, size_t size)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size < 8 || memcmp(b, sig, 8) != 0)
        return 0;
    size_t pos = 8;
    while (pos + 12 <= size) {
        uint32_t len = (uint32_t)b[pos] << 24 | (uint32_t)b[pos + 1] << 16 |
                       (uint32_t)b[pos + 2] << 8 | b[pos + 3];
        if (len > size - pos - 12)
            return 1;
        if (memcmp(b + pos + 4, "IEND", 4) == 0)
            return 0;
        pos += 12 + (size_t)len;
    }
    return 0;
}

static size_t jpeg_bad_dht(const unsigned char *b, size_t size)
{
    /* stb takes a JPEG after any run of 0xFF fill bytes before SOI. */
    size_t at = 0;
    while (at < size && b[at] == 0xFF)
        at++;
    if (at == 0 || at >= size || b[at] != 0xD8)
        return 0;
    /* Rather than follow stb's marker parsing (which skips garbage and fill
     * bytes in several places), check every FF C4 in the file: a DHT whose
     * code counts add up to more than 256 would overflow stb's table. Entropy
     * data cannot hold FF C4 (an FF there is stuffed as FF 00). */
    for (size_t pos = at; pos + 4 < size; pos++) {
        if (b[pos] != 0xFF || b[pos + 1] != 0xC4)
            continue;
        /* As stb: tables are read while the segment length has bytes left,
         * even past the segment's end; reads past the file give 0. */
        long left = ((long)b[pos + 2] << 8 | b[pos + 3]) - 2;
        size_t p = pos + 4;
        while (left > 0 && p < size) {
            size_t n = 0;
            for (size_t i = 0; i < 16; i++)
                n += p + 1 + i < size ? b[p + 1 + i] : 0;
            if (n > 256)
                return n;
            p += 17 + n;
            left -= 17 + (long)n;
        }
    }
    return 0;
}

/* stb reads uncompressed TGA rows with a read whose short count it ignores,
 * so a cut TGA decodes "successfully"; check its size against the header. */
static int tga_uncompressed_short(const unsigned char *buf, size_t size)
{
    stbi__context s;
    stbi__start_mem(&s, buf, (int)size);
    if (size < 18 || !stbi__tga_test(&s))
        return 0;
    int type = buf[2];
    if (type != 1 && type != 2 && type != 3)
        return 0;
    size_t cmap_len = (size_t)buf[5] | (size_t)buf[6] << 8;
    size_t cmap_bytes = buf[1] ? cmap_len * (((size_t)buf[7] + 7) / 8) : 0;
    size_t w = (size_t)buf[12] | (size_t)buf[13] << 8, h = (size_t)buf[14] | (size_t)buf[15] << 8;
    size_t need = 18 + (size_t)buf[0] + cmap_bytes + w * h * (((size_t)buf[16] + 7) / 8);
    return size < need;
}

/* The same for binary PNM (P5, P6): stb ignores a short pixel read. */
/* stb reads a PNM header's numbers into an int without an overflow check
 * (undefined behaviour): refuse a P5/P6 header number of more than 9 digits. */
static int pnm_bad_header(const unsigned char *b, size_t size)
{
    if (size < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6'))
        return 0;
    size_t pos = 2;
    for (int field = 0; field < 3 && pos < size; field++) {
        while (pos < size && (isspace(b[pos]) || b[pos] == '#')) {
            if (b[pos] == '#')
                while (pos < size && b[pos] != '\n' && b[pos] != '\r')
                    pos++;
            else
                pos++;
        }
        size_t digits = 0;
        while (pos < size && isdigit(b[pos])) {
            digits++;
            pos++;
        }
        if (digits > 9)
            return 1;
    }
    return 0;
}

static int pnm_short(const unsigned char *buf, size_t size)
{
    stbi__context s;
    stbi__start_mem(&s, buf, (int)size);
    if (!stbi__pnm_test(&s))
        return 0;
    int w, h, c;
    int bits = stbi__pnm_info(&s, &w, &h, &c);
    if (bits <= 0 || w <= 0 || h <= 0)
        return 0;
    size_t header = (size_t)(s.img_buffer - s.img_buffer_original);
    size_t need = header + (size_t)w * (size_t)h * (size_t)c * (size_t)(bits / 8);
    return size < need;
}

static uint8_t luma_pil(const uint8_t *rgb)
{
    return (uint8_t)(((uint32_t)rgb[0] * 19595u + (uint32_t)rgb[1] * 38470u +
                      (uint32_t)rgb[2] * 7471u + 0x8000u) >> 16);
}

enco_status enco_image_convert(const enco_image *in, int channels, enco_image *out)
{
    if (channels != 1 && channels != 3)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "convert: channels must be 1 or 3, not %d", channels);
    if (!in->data || in->c < 1 || in->c > 4)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "convert: bad input image");
    ENCO_TRY(enco_image_alloc(out, in->w, in->h, channels));
    size_t n = (size_t)in->w * (size_t)in->h;
    const uint8_t *s = in->data;
    uint8_t *d = out->data;
    for (size_t i = 0; i < n; i++, s += in->c, d += channels) {
        if (in->c <= 2) {           /* gray or gray + alpha */
            for (int k = 0; k < channels; k++)
                d[k] = s[0];
        } else if (channels == 3) { /* RGB(A) -> RGB */
            d[0] = s[0];
            d[1] = s[1];
            d[2] = s[2];
        } else {                    /* RGB(A) -> L */
            d[0] = luma_pil(s);
        }
    }
    return ENCO_OK;
}

enco_status enco_image_load_memory(const void *buf, size_t size, const char *name, int channels,
                                   enco_image *out)
{
    out->data = NULL;
    out->w = out->h = out->c = 0;
    if (channels < 0 || channels == 2 || channels > 4)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: channels must be 0, 1, 3 or 4, not %d", name,
                         channels);
    if (size == 0)
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: empty file", name);
    if (size > INT_MAX)
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: file too large (%zu bytes)", name, size);

    if (pnm_bad_header(buf, size))
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: corrupt PNM header (a number is too long)", name);
    if (png_bad_chunk(buf, size))
        return ENCO_FAIL(ENCO_ERR_FORMAT,
                         "%s: truncated or corrupt PNG (a chunk is longer than the file)", name);
    size_t dht = jpeg_bad_dht(buf, size);
    if (dht)
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: corrupt JPEG (a Huffman table declares %zu codes, "
                         "at most 256 are possible)", name, dht);

    mem_reader r = {buf, size, 0, 0};
    int w = 0, h = 0, c = 0;
    if (!stbi_info_from_callbacks(&reader_callbacks, &r, &w, &h, &c))
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: not a readable image (%s)", name,
                         stbi_failure_reason() ? stbi_failure_reason() : "unknown format");
    if (w <= 0 || h <= 0)
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: zero-sized image (%dx%d)", name, w, h);
    if (w > ENCO_IMAGE_MAX_SIDE || h > ENCO_IMAGE_MAX_SIDE ||
        (uint64_t)w * (uint64_t)h > ENCO_IMAGE_MAX_PIXELS)
        return ENCO_FAIL(ENCO_ERR_FORMAT,
                         "%s: image %dx%d too large (limit %d pixels per side, %u pixels)", name, w,
                         h, ENCO_IMAGE_MAX_SIDE, ENCO_IMAGE_MAX_PIXELS);
    /* No supported format compresses by more than a few thousand pixels per
     * byte (deflate ~1032:1, GIF LZW below 4096:1): a tiny file claiming a huge
     * image is truncated or corrupt, and decoding it would only waste time. */
    if ((uint64_t)w * (uint64_t)h > 8192u * (uint64_t)size + (1u << 20))
        return ENCO_FAIL(ENCO_ERR_FORMAT,
                         "%s: truncated or corrupt file (its header claims %dx%d pixels, the "
                         "file holds %zu bytes)",
                         name, w, h, size);

    r = (mem_reader){buf, size, 0, 0};
    stb_check_failed = 0;
    unsigned char *px = stbi_load_from_callbacks(&reader_callbacks, &r, &w, &h, &c, 0);
    if (stb_check_failed) {
        stbi_image_free(px);
        return ENCO_FAIL(ENCO_ERR_FORMAT,
                         "%s: corrupt image (the decoder's consistency check failed)", name);
    }
    if (!px) {
        const char *why = stbi_failure_reason();
        if (r.overrun)
            return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: truncated file (%s)", name, why ? why : "?");
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: corrupt image (%s)", name, why ? why : "?");
    }
    if (r.overrun || tga_uncompressed_short(buf, size) || pnm_short(buf, size)) {
        stbi_image_free(px);
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: truncated file (data ends before the image does)",
                         name);
    }
    if (w <= 0 || h <= 0 || c < 1 || c > 4) {
        stbi_image_free(px);
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: decoder returned %dx%dx%d", name, w, h, c);
    }
    enco_image raw = {w, h, c, px};
    enco_status st = ENCO_OK;
    if (channels == 0 || channels == c) {
        st = enco_image_alloc(out, w, h, c);
        if (st == ENCO_OK)
            memcpy(out->data, px, (size_t)w * (size_t)h * (size_t)c);
    } else if (channels == 4) {
        st = ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: conversion to 4 channels is not supported", name);
    } else {
        st = enco_image_convert(&raw, channels, out);
    }
    stbi_image_free(px);
    return st;
}

enco_status enco_image_load(const char *path, int channels, enco_image *out)
{
    out->data = NULL;
    out->w = out->h = out->c = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ENCO_FAIL(errno == ENOENT ? ENCO_ERR_NOT_FOUND : ENCO_ERR_IO, "%s: cannot open: %s",
                         path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return ENCO_FAIL(ENCO_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size == 0) {
        fclose(f);
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: empty file", path);
    }
    if (size > INT_MAX) {
        fclose(f);
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: file too large (%zu bytes)", path, size);
    }
    unsigned char *buf = malloc(size);
    if (!buf) {
        fclose(f);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "%s: out of memory for %zu bytes", path, size);
    }
    size_t got = fread(buf, 1, size, f);
    int err = ferror(f);
    fclose(f);
    if (got != size || err) {
        free(buf);
        return ENCO_FAIL(ENCO_ERR_IO, "%s: read failed (%zu of %zu bytes)", path, got, size);
    }
    enco_status st = enco_image_load_memory(buf, size, path, channels, out);
    free(buf);
    return st;
}

/* ---- writing ----------------------------------------------------------- */

typedef struct mem_writer {
    unsigned char *data;
    size_t size, cap;
    int failed;
} mem_writer;

static void writer_put(void *user, void *data, int n)
{
    mem_writer *m = user;
    if (m->failed || n <= 0)
        return;
    if (m->size + (size_t)n > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 4096;
        while (cap < m->size + (size_t)n)
            cap *= 2;
        unsigned char *p = realloc(m->data, cap);
        if (!p) {
            m->failed = 1;
            return;
        }
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->size, data, (size_t)n);
    m->size += (size_t)n;
}

static enco_status write_atomic(const char *path, const void *data, size_t size)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "%s: out of memory", path);
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        enco_status st = ENCO_FAIL(ENCO_ERR_IO, "%s: cannot create a temporary file: %s", path,
                                   strerror(errno));
        free(tmp);
        return st;
    }
    (void)fchmod(fd, 0644);
    const unsigned char *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t k = write(fd, p, left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            enco_status st = ENCO_FAIL(ENCO_ERR_IO, "%s: write failed: %s", path,
                                       k < 0 ? strerror(errno) : "no progress");
            close(fd);
            unlink(tmp);
            free(tmp);
            return st;
        }
        p += k;
        left -= (size_t)k;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        enco_status st = ENCO_FAIL(ENCO_ERR_IO, "%s: cannot finish writing: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return ENCO_OK;
}

enco_status enco_image_save_png(const char *path, const enco_image *img)
{
    if (!img->data || img->w <= 0 || img->h <= 0 || img->c < 1 || img->c > 4)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: no image to write", path);
    mem_writer m = {0};
    int ok = stbi_write_png_to_func(writer_put, &m, img->w, img->h, img->c, img->data,
                                    img->w * img->c);
    if (!ok || m.failed) {
        free(m.data);
        return ENCO_FAIL(ok ? ENCO_ERR_NO_MEMORY : ENCO_ERR_FORMAT, "%s: PNG encoding failed", path);
    }
    enco_status st = write_atomic(path, m.data, m.size);
    free(m.data);
    return st;
}

/* ---- geometry and tensors ---------------------------------------------- */

enco_status enco_image_crop(const enco_image *in, int x, int y, int w, int h, enco_image *out)
{
    if (x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > in->w || y + h > in->h)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "crop %dx%d at (%d, %d) outside a %dx%d image", w, h,
                         x, y, in->w, in->h);
    ENCO_TRY(enco_image_alloc(out, w, h, in->c));
    size_t row = (size_t)w * (size_t)in->c;
    for (int r = 0; r < h; r++)
        memcpy(out->data + (size_t)r * row,
               in->data + ((size_t)(y + r) * (size_t)in->w + (size_t)x) * (size_t)in->c, row);
    return ENCO_OK;
}

void enco_image_flip_horizontal(enco_image *img)
{
    int c = img->c;
    for (int y = 0; y < img->h; y++) {
        uint8_t *row = img->data + (size_t)y * (size_t)img->w * (size_t)c;
        for (int a = 0, b = img->w - 1; a < b; a++, b--)
            for (int k = 0; k < c; k++) {
                uint8_t t = row[a * c + k];
                row[a * c + k] = row[b * c + k];
                row[b * c + k] = t;
            }
    }
}

void enco_image_to_tensor(const enco_image *img, float *chw)
{
    size_t hw = (size_t)img->w * (size_t)img->h;
    for (int k = 0; k < img->c; k++)
        for (size_t i = 0; i < hw; i++)
            chw[(size_t)k * hw + i] = (float)img->data[i * (size_t)img->c + (size_t)k] / 255.0f * 2.0f - 1.0f;
}

enco_status enco_image_from_tensor(enco_image *out, const float *chw, int c, int h, int w)
{
    ENCO_TRY(enco_image_alloc(out, w, h, c));
    size_t hw = (size_t)w * (size_t)h;
    for (int k = 0; k < c; k++)
        for (size_t i = 0; i < hw; i++) {
            double v = ((double)chw[(size_t)k * hw + i] + 1.0) * 0.5 * 255.0;
            v = isnan(v) ? 0.0 : v < 0.0 ? 0.0 : v > 255.0 ? 255.0 : v;
            out->data[i * (size_t)c + (size_t)k] = (uint8_t)lround(v);
        }
    return ENCO_OK;
}

enco_status enco_image_grid(enco_image *out, const enco_image *imgs, int n, int cols, int pad,
                            uint8_t fill)
{
    if (n <= 0 || cols <= 0 || pad < 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "grid: need n > 0, cols > 0, pad >= 0");
    int w = imgs[0].w, h = imgs[0].h, c = imgs[0].c;
    for (int i = 1; i < n; i++)
        if (imgs[i].w != w || imgs[i].h != h || imgs[i].c != c)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "grid: image %d is %dx%dx%d, image 0 %dx%dx%d", i,
                             imgs[i].w, imgs[i].h, imgs[i].c, w, h, c);
    if (cols > n)
        cols = n;
    int rows = (n + cols - 1) / cols;
    ENCO_TRY(enco_image_alloc(out, cols * (w + pad) + pad, rows * (h + pad) + pad, c));
    memset(out->data, fill, (size_t)out->w * (size_t)out->h * (size_t)c);
    size_t row = (size_t)w * (size_t)c;
    for (int i = 0; i < n; i++) {
        int x0 = pad + (i % cols) * (w + pad), y0 = pad + (i / cols) * (h + pad);
        for (int y = 0; y < h; y++)
            memcpy(out->data + ((size_t)(y0 + y) * (size_t)out->w + (size_t)x0) * (size_t)c,
                   imgs[i].data + (size_t)y * row, row);
    }
    return ENCO_OK;
}
