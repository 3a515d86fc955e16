/* PSNR, SSIM, gradient correlation and mask IoU (definitions in metrics.h). */
#include "data/metrics.h"

#include <math.h>
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
