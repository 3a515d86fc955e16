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
 * Mask IoU: |a AND b| / |a OR b| of two binary masks (1 when both are empty). */
#ifndef ENCO_DATA_METRICS_H
#define ENCO_DATA_METRICS_H

#include "data/image.h"

enco_status enco_psnr_u8(const enco_image *a, const enco_image *b, double *psnr);
enco_status enco_psnr_tensor(const float *a, const float *b, size_t n, double *psnr);
enco_status enco_ssim(const enco_image *a, const enco_image *b, double *ssim);
enco_status enco_gradient_correlation(const enco_image *a, const enco_image *b, double *corr);
double enco_mask_iou(const uint8_t *a, const uint8_t *b, size_t n);

#endif
