/* PSNR, SSIM, gradient correlation and mask IoU (definitions in metrics.h). */
#include "data/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static enco_status same_shape(const enco_image *a, const enco_image *b, const char *what)
{
    if (!a->data || !b->data || a->w != b->w || a->h != b->h || a->c != b->c)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: images differ in size (%dx%dx%d vs %dx%dx%d)",
                         what, a->w, a->h, a->c, b->w, b->h, b->c);
    return ENCO_OK;
}

static double psnr_from_mse(double mse, double max)
{
    return mse == 0.0 ? INFINITY : 10.0 * log10(max * max / mse);
}

enco_status enco_psnr_u8(const enco_image *a, const enco_image *b, double *psnr)
{
    ENCO_TRY(same_shape(a, b, "psnr"));
    size_t n = (size_t)a->w * (size_t)a->h * (size_t)a->c;
    double se = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a->data[i] - (double)b->data[i];
        se += d * d;
    }
    *psnr = psnr_from_mse(se / (double)n, 255.0);
    return ENCO_OK;
}

enco_status enco_psnr_tensor(const float *a, const float *b, size_t n, double *psnr)
{
    if (n == 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "psnr: empty tensors");
    double se = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        se += d * d;
    }
    if (!isfinite(se))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "psnr: tensors hold non-finite values");
    *psnr = psnr_from_mse(se / (double)n, 2.0);
    return ENCO_OK;
}

/* Luminance as double, (h, w). */
static double *luminance(const enco_image *img)
{
    size_t n = (size_t)img->w * (size_t)img->h;
    double *y = malloc(n * sizeof *y);
    if (!y)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = img->data + i * (size_t)img->c;
        y[i] = img->c >= 3 ? 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] : (double)p[0];
    }
    return y;
}

enco_status enco_ssim(const enco_image *a, const enco_image *b, double *ssim)
{
    ENCO_TRY(same_shape(a, b, "ssim"));
    enum { WIN = 11 };
    if (a->w < WIN || a->h < WIN)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "ssim: images of %dx%d are smaller than the 11x11 window",
                         a->w, a->h);
    double g[WIN], gs = 0.0;
    for (int i = 0; i < WIN; i++) {
        double t = i - WIN / 2;
        g[i] = exp(-t * t / (2.0 * 1.5 * 1.5));
        gs += g[i];
    }
    for (int i = 0; i < WIN; i++)
        g[i] /= gs;
    double *x = luminance(a), *y = luminance(b);
    if (!x || !y) {
        free(x);
        free(y);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "ssim: out of memory");
    }
    const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
    int w = a->w, ow = a->w - WIN + 1, oh = a->h - WIN + 1;
    double total = 0.0;
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
            double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
            for (int i = 0; i < WIN; i++)
                for (int j = 0; j < WIN; j++) {
                    double wt = g[i] * g[j];
                    size_t k = (size_t)(oy + i) * (size_t)w + (size_t)(ox + j);
                    mx += wt * x[k];
                    my += wt * y[k];
                    sxx += wt * x[k] * x[k];
                    syy += wt * y[k] * y[k];
                    sxy += wt * x[k] * y[k];
                }
            double vx = sxx - mx * mx, vy = syy - my * my, cxy = sxy - mx * my;
            total += ((2 * mx * my + c1) * (2 * cxy + c2)) /
                     ((mx * mx + my * my + c1) * (vx + vy + c2));
        }
    free(x);
    free(y);
    *ssim = total / ((double)ow * (double)oh);
    return ENCO_OK;
}

/* Sobel gradient magnitude over all channels at interior pixels, (h-2, w-2). */
static double *gradient_magnitude(const enco_image *img)
{
    int w = img->w, h = img->h, c = img->c;
    double *m = malloc((size_t)(w - 2) * (size_t)(h - 2) * sizeof *m);
    if (!m)
        return NULL;
#define PX(xx, yy, k) ((double)img->data[((size_t)(yy) * (size_t)w + (size_t)(xx)) * (size_t)c + (size_t)(k)])
    for (int y = 1; y < h - 1; y++)
        for (int x = 1; x < w - 1; x++) {
            double s = 0.0;
            for (int k = 0; k < c; k++) {
                double gx = PX(x + 1, y - 1, k) + 2 * PX(x + 1, y, k) + PX(x + 1, y + 1, k) -
                            PX(x - 1, y - 1, k) - 2 * PX(x - 1, y, k) - PX(x - 1, y + 1, k);
                double gy = PX(x - 1, y + 1, k) + 2 * PX(x, y + 1, k) + PX(x + 1, y + 1, k) -
                            PX(x - 1, y - 1, k) - 2 * PX(x, y - 1, k) - PX(x + 1, y - 1, k);
                s += gx * gx + gy * gy;
            }
            m[(size_t)(y - 1) * (size_t)(w - 2) + (size_t)(x - 1)] = sqrt(s);
        }
#undef PX
    return m;
}

enco_status enco_gradient_correlation(const enco_image *a, const enco_image *b, double *corr)
{
    ENCO_TRY(same_shape(a, b, "gradient correlation"));
    if (a->w < 3 || a->h < 3)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "gradient correlation: images must be >= 3x3");
    double *ga = gradient_magnitude(a), *gb = gradient_magnitude(b);
    if (!ga || !gb) {
        free(ga);
        free(gb);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "gradient correlation: out of memory");
    }
    size_t n = (size_t)(a->w - 2) * (size_t)(a->h - 2);
    double ma = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        ma += ga[i];
        mb += gb[i];
    }
    ma /= (double)n;
    mb /= (double)n;
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++) {
        double da = ga[i] - ma, db = gb[i] - mb;
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    free(ga);
    free(gb);
    *corr = saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0.0;
    return ENCO_OK;
}

double enco_mask_iou(const uint8_t *a, const uint8_t *b, size_t n)
{
    size_t inter = 0, uni = 0;
    for (size_t i = 0; i < n; i++) {
        inter += a[i] && b[i];
        uni += a[i] || b[i];
    }
    return uni == 0 ? 1.0 : (double)inter / (double)uni;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

static uint32_t pack(const uint8_t *p, int c)
{
    uint32_t v = 0;
    for (int k = 0; k < c; k++)
        v = v << 8 | p[k];
    return v;
}

enco_status enco_border_colour(const enco_image *img, uint8_t colour[4])
{
    if (!img->data || img->w < 1 || img->h < 1 || img->c < 1 || img->c > 4)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "border colour: empty image or %d channels", img->c);
    int w = img->w, h = img->h, c = img->c;
    size_t n = 0, cap = (size_t)2 * (size_t)(w + h);
    uint32_t *v = malloc(cap * sizeof *v);
    if (!v)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "border colour: out of memory");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (y != 0 && y != h - 1 && x != 0 && x != w - 1)
                x = w - 1; /* inner row: on to its last pixel */
            v[n++] = pack(img->data + ((size_t)y * (size_t)w + (size_t)x) * (size_t)c, c);
        }
    qsort(v, n, sizeof *v, cmp_u32);
    uint32_t best = v[0];
    size_t best_run = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j] == v[i])
            j++;
        if (j - i > best_run)
            best_run = j - i, best = v[i];
        i = j;
    }
    free(v);
    for (int k = c - 1; k >= 0; k--, best >>= 8)
        colour[k] = (uint8_t)(best & 0xff);
    return ENCO_OK;
}

void enco_foreground_mask(const enco_image *img, const uint8_t colour[4], double dist, uint8_t *mask)
{
    size_t n = (size_t)img->w * (size_t)img->h;
    for (size_t i = 0; i < n; i++) {
        double d2 = 0;
        for (int k = 0; k < img->c; k++) {
            double d = (double)img->data[i * (size_t)img->c + (size_t)k] - (double)colour[k];
            d2 += d * d;
        }
        mask[i] = d2 > dist * dist;
    }
}

enco_status enco_shape_iou(const enco_image *g, const enco_image *b, double *iou)
{
    ENCO_TRY(same_shape(g, b, "shape IoU"));
    uint8_t bg[4];
    ENCO_TRY(enco_border_colour(b, bg));
    size_t n = (size_t)b->w * (size_t)b->h;
    uint8_t *mg = malloc(n), *mb = malloc(n);
    if (!mg || !mb) {
        free(mg);
        free(mb);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "shape IoU: out of memory");
    }
    enco_foreground_mask(g, bg, ENCO_FG_DISTANCE, mg);
    enco_foreground_mask(b, bg, ENCO_FG_DISTANCE, mb);
    *iou = enco_mask_iou(mg, mb, n);
    free(mg);
    free(mb);
    return ENCO_OK;
}

enco_status enco_baselines_add(enco_baselines *f, const enco_image *a, const enco_image *b)
{
    if (!a->data || !b->data || a->w != b->w || a->h != b->h || a->c < 1 || a->c > 4 ||
        b->c < 1 || b->c > 4)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "baselines: pair of %dx%dx%d and %dx%dx%d", a->w,
                         a->h, a->c, b->w, b->h, b->c);
    size_t np = (size_t)b->w * (size_t)b->h;
    if (f->pairs == 0) {
        f->w = b->w, f->h = b->h, f->c_a = a->c, f->c_b = b->c, f->same_size = 1;
        f->sum_b = calloc(np * (size_t)b->c, sizeof *f->sum_b);
        if (!f->sum_b)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "baselines: out of memory");
    } else if (a->c != f->c_a || b->c != f->c_b) {
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "baselines: pairs differ in channel count");
    }
    if (b->w != f->w || b->h != f->h)
        f->same_size = 0;
    if (f->same_size)
        for (size_t i = 0; i < np * (size_t)b->c; i++)
            f->sum_b[i] += b->data[i];
    if (a->c == b->c)
        for (size_t i = 0; i < np; i++)
            for (int k = 0; k < a->c; k++) {
                double x = a->data[i * (size_t)a->c + (size_t)k];
                double y = b->data[i * (size_t)b->c + (size_t)k];
                f->n[k] += 1, f->sa[k] += x, f->sb[k] += y, f->saa[k] += x * x, f->sab[k] += x * y;
                f->lut_sum[k][(int)x] += y, f->lut_n[k][(int)x] += 1;
            }
    f->pairs++;
    return ENCO_OK;
}

static uint8_t to_u8(double v)
{
    return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)lround(v);
}

enco_status enco_baselines_constant(const enco_baselines *f, enco_image *out)
{
    if (f->pairs == 0 || !f->same_size)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "constant baseline: %s",
                         f->pairs ? "the test images differ in size" : "no pairs");
    ENCO_TRY(enco_image_alloc(out, f->w, f->h, f->c_b));
    for (size_t i = 0; i < (size_t)f->w * (size_t)f->h * (size_t)f->c_b; i++)
        out->data[i] = to_u8(f->sum_b[i] / (double)f->pairs);
    return ENCO_OK;
}

/* Least-squares slope and intercept of channel k. */
static void affine_of(const enco_baselines *f, int k, double *s, double *t)
{
    double n = f->n[k], den = n * f->saa[k] - f->sa[k] * f->sa[k];
    *s = den > 0 ? (n * f->sab[k] - f->sa[k] * f->sb[k]) / den : 0.0;
    *t = (f->sb[k] - *s * f->sa[k]) / n;
}

/* out = a with each channel k mapped through table[k]. */
static enco_status apply_tables(const enco_image *a, uint8_t table[4][256], enco_image *out)
{
    ENCO_TRY(enco_image_alloc(out, a->w, a->h, a->c));
    for (size_t i = 0; i < (size_t)a->w * (size_t)a->h; i++)
        for (int k = 0; k < a->c; k++)
            out->data[i * (size_t)a->c + (size_t)k] = table[k][a->data[i * (size_t)a->c + (size_t)k]];
    return ENCO_OK;
}

static enco_status remap(const enco_baselines *f, const enco_image *a, int lut, enco_image *out)
{
    if (f->pairs == 0 || f->c_a != f->c_b || a->c != f->c_a)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "colour remap: %s",
                         f->pairs == 0 ? "no pairs"
                                       : "A and B differ in channel count (no per-channel map)");
    uint8_t table[4][256];
    for (int k = 0; k < a->c; k++) {
        double s, t;
        affine_of(f, k, &s, &t);
        for (int v = 0; v < 256; v++)
            table[k][v] = to_u8(lut && f->lut_n[k][v] > 0 ? f->lut_sum[k][v] / f->lut_n[k][v]
                                                          : s * v + t);
    }
    return apply_tables(a, table, out);
}

enco_status enco_baselines_affine(const enco_baselines *f, const enco_image *a, enco_image *out)
{
    return remap(f, a, 0, out);
}

enco_status enco_baselines_lut(const enco_baselines *f, const enco_image *a, enco_image *out)
{
    return remap(f, a, 1, out);
}

void enco_baselines_free(enco_baselines *f)
{
    free(f->sum_b);
    f->sum_b = NULL;
}

enco_status enco_histmatch_add(enco_histmatch *f, const enco_image *img, int to_b)
{
    if (!img->data || img->w < 1 || img->h < 1 || img->c < 1 || img->c > 4)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "histogram matching: image of %dx%dx%d", img->w,
                         img->h, img->c);
    int *c = to_b ? &f->c_b : &f->c_a;
    if (*c && *c != img->c)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "histogram matching: %s images with %d and %d channels", to_b ? "B" : "A",
                         *c, img->c);
    *c = img->c;
    uint64_t(*h)[256] = to_b ? f->hb : f->ha;
    size_t n = (size_t)img->w * (size_t)img->h;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < img->c; k++)
            h[k][img->data[i * (size_t)img->c + (size_t)k]]++;
    *(to_b ? &f->images_b : &f->images_a) += 1;
    return ENCO_OK;
}

/* x * y as a 128-bit number in two halves (no 128-bit type in C11). */
static void mul_wide(uint64_t x, uint64_t y, uint64_t *hi, uint64_t *lo)
{
    uint64_t xl = x & 0xffffffffu, xh = x >> 32, yl = y & 0xffffffffu, yh = y >> 32;
    uint64_t ll = xl * yl, lh = xl * yh, hl = xh * yl, hh = xh * yh;
    uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
    *lo = (ll & 0xffffffffu) | (mid << 32);
    *hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
}

/* a * b >= c * d, exactly. */
static int product_ge(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    uint64_t h1, l1, h2, l2;
    mul_wide(a, b, &h1, &l1);
    mul_wide(c, d, &h2, &l2);
    return h1 != h2 ? h1 > h2 : l1 >= l2;
}

enco_status enco_histmatch_table(const enco_histmatch *f, uint8_t table[4][256])
{
    if (!f->images_a || !f->images_b || f->c_a != f->c_b)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "histogram matching: %s",
                         !f->images_a || !f->images_b
                             ? "needs training images of both domains"
                             : "A and B differ in channel count (no per-channel map)");
    for (int k = 0; k < f->c_a; k++) {
        uint64_t na = 0, nb = 0;
        for (int v = 0; v < 256; v++)
            na += f->ha[k][v], nb += f->hb[k][v];
        /* q(v) >= ... compared as counts: F_B(u) >= q(v) <=> 2 na CB(u) >= nb (CA(v-1) + CA(v)),
         * CA and CB the cumulative counts. q(v) grows with v, so u only moves up. */
        uint64_t ca_prev = 0, ca = 0, cb = 0;
        int u = -1;
        for (int v = 0; v < 256; v++) {
            ca += f->ha[k][v];
            uint64_t need = ca_prev + ca; /* 2 na q(v) */
            while (u < 255 && (u < 0 || f->hb[k][u] == 0 || !product_ge(2 * na, cb, nb, need))) {
                u++;
                cb += f->hb[k][u];
            }
            table[k][v] = (uint8_t)u;
            ca_prev = ca;
        }
    }
    return ENCO_OK;
}

enco_status enco_histmatch_apply(const enco_histmatch *f, const enco_image *a, enco_image *out)
{
    uint8_t table[4][256];
    ENCO_TRY(enco_histmatch_table(f, table));
    if (!a->data || a->c != f->c_a)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "histogram matching: a %d-channel image for a map fitted on %d channels",
                         a->c, f->c_a);
    return apply_tables(a, table, out);
}
