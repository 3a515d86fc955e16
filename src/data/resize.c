/* Bicubic resizing, bit-exact with PIL's Image.resize(size, BICUBIC) on
 * 8-bit images (Pillow's Resample.c algorithm, rewritten): torchvision's
 * transforms.Resize on a PIL image calls exactly that. */
#include "data/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RESIZE_PRECISION_BITS (32 - 8 - 2)

static double cubic_kernel(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0)
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* Fixed-point weights for resizing a line of in_size samples to out_size:
 * output j reads inputs bounds[2j] .. bounds[2j] + bounds[2j+1] with weights
 * kk[j * ksize ..]. */
typedef struct resize_coeffs {
    int ksize;
    int *bounds;    /* (out, 2): first input, count */
    int32_t *kk;    /* (out, ksize) */
} resize_coeffs;

static enco_status coeffs_make(resize_coeffs *rc, int in_size, int out_size)
{
    double scale = (double)in_size / (double)out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    rc->ksize = ksize;
    rc->bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
    rc->kk = malloc(sizeof(int32_t) * (size_t)ksize * (size_t)out_size);
    double *w = malloc(sizeof(double) * (size_t)ksize);
    if (!rc->bounds || !rc->kk || !w) {
        free(rc->bounds);
        free(rc->kk);
        free(w);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "resize: out of memory for coefficients");
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale;
        double ss = 1.0 / filterscale, ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            w[x] = cubic_kernel((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = rc->kk + (size_t)xx * (size_t)ksize;
        for (int x = 0; x < ksize; x++) {
            double v = x < xmax ? (ww != 0.0 ? w[x] / ww : w[x]) : 0.0;
            double f = v * (double)(1 << RESIZE_PRECISION_BITS);
            k[x] = (int32_t)(v < 0 ? -0.5 + f : 0.5 + f);
        }
        rc->bounds[2 * xx] = xmin;
        rc->bounds[2 * xx + 1] = xmax;
    }
    free(w);
    return ENCO_OK;
}

static void coeffs_free(resize_coeffs *rc)
{
    free(rc->bounds);
    free(rc->kk);
}

static uint8_t clip8(int32_t acc)
{
    int32_t v = acc >> RESIZE_PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void pass_horizontal(const enco_image *in, enco_image *out, const resize_coeffs *rc)
{
    int c = in->c;
    for (int y = 0; y < in->h; y++) {
        const uint8_t *src = in->data + (size_t)y * (size_t)in->w * (size_t)c;
        uint8_t *dst = out->data + (size_t)y * (size_t)out->w * (size_t)c;
        for (int xx = 0; xx < out->w; xx++) {
            int xmin = rc->bounds[2 * xx], xmax = rc->bounds[2 * xx + 1];
            const int32_t *k = rc->kk + (size_t)xx * (size_t)rc->ksize;
            for (int ch = 0; ch < c; ch++) {
                int32_t acc = 1 << (RESIZE_PRECISION_BITS - 1);
                for (int x = 0; x < xmax; x++)
                    acc += (int32_t)src[(xmin + x) * c + ch] * k[x];
                dst[xx * c + ch] = clip8(acc);
            }
        }
    }
}

static void pass_vertical(const enco_image *in, enco_image *out, const resize_coeffs *rc)
{
    int c = in->c;
    size_t stride = (size_t)in->w * (size_t)c;
    for (int yy = 0; yy < out->h; yy++) {
        int ymin = rc->bounds[2 * yy], ymax = rc->bounds[2 * yy + 1];
        const int32_t *k = rc->kk + (size_t)yy * (size_t)rc->ksize;
        uint8_t *dst = out->data + (size_t)yy * stride;
        for (size_t i = 0; i < stride; i++) {
            int32_t acc = 1 << (RESIZE_PRECISION_BITS - 1);
            for (int y = 0; y < ymax; y++)
                acc += (int32_t)in->data[(size_t)(ymin + y) * stride + i] * k[y];
            dst[i] = clip8(acc);
        }
    }
}

enco_status enco_image_resize_bicubic(const enco_image *in, int w, int h, enco_image *out)
{
    out->data = NULL;
    if (!in->data || in->w <= 0 || in->h <= 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "resize: empty input image");
    if (w <= 0 || h <= 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "resize: bad target size %dx%d", w, h);
    enco_image mid = {0}, tmp = {0};
    const enco_image *src = in;
    enco_status st = ENCO_OK;
    if (w != in->w) {
        resize_coeffs rc;
        ENCO_TRY(coeffs_make(&rc, in->w, w));
        st = enco_image_alloc(&mid, w, in->h, in->c);
        if (st == ENCO_OK)
            pass_horizontal(in, &mid, &rc);
        coeffs_free(&rc);
        if (st != ENCO_OK)
            return st;
        src = &mid;
    }
    if (h != in->h) {
        resize_coeffs rc;
        st = coeffs_make(&rc, in->h, h);
        if (st == ENCO_OK) {
            st = enco_image_alloc(&tmp, w, h, in->c);
            if (st == ENCO_OK)
                pass_vertical(src, &tmp, &rc);
            coeffs_free(&rc);
        }
        enco_image_free(&mid);
        if (st != ENCO_OK)
            return st;
        *out = tmp;
        return ENCO_OK;
    }
    if (src == &mid) {
        *out = mid;
        return ENCO_OK;
    }
    ENCO_TRY(enco_image_alloc(out, w, h, in->c));
    memcpy(out->data, in->data, (size_t)w * (size_t)h * (size_t)in->c);
    return ENCO_OK;
}
