/* Image quality and content metrics for evaluating translations.
 *
 * PSNR: 10 log10(MAX^2 / MSE) over every channel and pixel; MAX = 255 for
 *   8-bit images, 2 for tensors in [-1, 1]. Identical images give +INFINITY.
 * SSIM: Wang et al. 2004 on the luminance Y = 0.299 R + 0.587 G + 0.114 B
 *   (unrounded, in 0..255 units; gray images as they are), 11x11 Gaussian
 *   window sigma 1.5 (normalised), K1 = 0.01, K2 = 0.03, L = 255, averaged
 *   over the valid windows only (no padding); images need sides >= 11.
 * Content (gradient correlation): the Pearson correlation of the Sobel
 *   gradient magnitudes sqrt(sum over channels of gx^2 + gy^2) of the two
 *   images over interior pixels. It is 1 when both images have edges in the
 *   same places with proportional strength, whatever the colours (a
 *   recoloured copy of a scene scores high; a different scene near 0), so it
 *   shows that a translation kept the content. Flat images (no gradient)
 *   give 0.
 * Mask IoU: |a AND b| / |a OR b| of two binary masks (1 when both are empty).
 * Shape IoU (for scenes of flat shapes on a flat background, like the
 *   synthetic task): the background colour is the most frequent colour on
 *   the outermost pixel ring of the true image b (ties: the smallest value,
 *   R first); a pixel is foreground when it is further than
 *   ENCO_FG_DISTANCE (Euclidean over the channels, 0..255 units) from that
 *   colour. The score is the mask IoU of the foregrounds of g and b, both
 *   taken against b's background colour, so it measures whether g put
 *   shapes where b has them, whatever their colours.
 *
 * Baselines fitted on test pairs (A, true B): an upper bound for what a
 * generator that ignores its input, or only recolours it, can score on them.
 *   Constant image: the per-pixel mean of all B (rounded): the image of
 *     least squared error that does not depend on A. Needs every B of one
 *     size.
 *   Per-channel affine remap: B_k ~ s_k A_k + t_k for each channel k, least
 *     squares over every pixel of every pair (s_k = 0 when A_k is constant);
 *     the best global tone curve of degree one, i.e. colour grading.
 *   Per-channel lookup table: B_k ~ T_k[A_k], T_k[v] the mean of B_k over
 *     the pixels with A_k = v (values never seen fall back to the affine
 *     remap): the best any per-pixel function of one channel can do. Needs A
 *     and B with the same channel count.
 * These use the pairing (which B pixel belongs to which A pixel), i.e. the
 * supervision an unpaired method does not have: oracles, not bars.
 *
 * Unpaired baseline fitted on training images (no pairs): per-channel
 * histogram matching, the classical colour transfer. For each channel k,
 * with H_A and H_B the value histograms of channel k over all A and all B
 * training pixels, F_A(v) = H_A[0..v] / |A| and F_B(u) = H_B[0..u] / |B|
 * their cumulative distributions (F(-1) = 0), value v of A maps to
 *     T_k[v] = the smallest u with H_B[u] > 0 and F_B(u) >= q(v),
 *     q(v) = (F_A(v - 1) + F_A(v)) / 2,
 * the B value at the middle of the quantile range that v occupies in A (a
 * value held by many A pixels, a tie, takes the B value at the middle of its
 * range; a value no A pixel has takes the B value at its quantile, so that
 * values below every A value go to B's smallest value, above to B's largest).
 * T_k is monotone (non-decreasing); comparisons are exact (integer counts). */
#ifndef ENCO_DATA_METRICS_H
#define ENCO_DATA_METRICS_H

#include "data/image.h"

enco_status enco_psnr_u8(const enco_image *a, const enco_image *b, double *psnr);
enco_status enco_psnr_tensor(const float *a, const float *b, size_t n, double *psnr);
enco_status enco_ssim(const enco_image *a, const enco_image *b, double *ssim);
enco_status enco_gradient_correlation(const enco_image *a, const enco_image *b, double *corr);
double enco_mask_iou(const uint8_t *a, const uint8_t *b, size_t n);

#define ENCO_FG_DISTANCE 40.0

/* The most frequent colour on img's outermost pixel ring (c values). */
enco_status enco_border_colour(const enco_image *img, uint8_t colour[4]);
/* mask[i] = 1 where pixel i is further than `dist` from `colour`. */
void enco_foreground_mask(const enco_image *img, const uint8_t colour[4], double dist,
                          uint8_t *mask /* (h*w) */);
enco_status enco_shape_iou(const enco_image *g, const enco_image *b, double *iou);

typedef struct enco_baselines {
    int w, h, c_a, c_b;
    int same_size;           /* every B so far had the first one's size */
    size_t pairs;
    double *sum_b;           /* (h, w, c_b) per-pixel sums of B */
    double n[4], sa[4], sb[4], saa[4], sab[4];  /* affine sums per channel */
    double lut_sum[4][256], lut_n[4][256];
} enco_baselines;

/* Accumulates one pair (a and b of one size). Start from a zeroed struct. */
enco_status enco_baselines_add(enco_baselines *f, const enco_image *a, const enco_image *b);
/* The constant image (fails when the B differed in size or none was added). */
enco_status enco_baselines_constant(const enco_baselines *f, enco_image *out);
/* The remaps of a (fail when A and B differ in channel count). */
enco_status enco_baselines_affine(const enco_baselines *f, const enco_image *a, enco_image *out);
enco_status enco_baselines_lut(const enco_baselines *f, const enco_image *a, enco_image *out);
void enco_baselines_free(enco_baselines *f);

typedef struct enco_histmatch {
    int c_a, c_b;                   /* channels of the A and of the B images (0: none yet) */
    size_t images_a, images_b;
    uint64_t ha[4][256], hb[4][256]; /* per-channel value counts */
} enco_histmatch;

/* Accumulates one training image of domain A (to_b = 0) or B (to_b = 1).
 * Start from a zeroed struct; every image of a domain needs the same
 * channel count. */
enco_status enco_histmatch_add(enco_histmatch *f, const enco_image *img, int to_b);
/* The tables T_k (fails when a domain has no image or A and B differ in
 * channel count); rows k >= c_a are left as they are. */
enco_status enco_histmatch_table(const enco_histmatch *f, uint8_t table[4][256]);
/* T applied to every pixel of a (a with the training A's channel count). */
enco_status enco_histmatch_apply(const enco_histmatch *f, const enco_image *a, enco_image *out);

#endif
