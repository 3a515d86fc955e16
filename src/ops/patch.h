/* EnCo's patch sampling plumbing (spec ENCO.md sections 3-4): gathering the
 * sampled positions of a feature map into rows for the heads (and the
 * scatter-add back), per-row L2 normalisation, and bilinear resizing of the
 * discriminator's score map to the feature size.
 *
 * Index validation: sampled indices live on the device, so the kernels do not
 * trust them. An index outside [0, H*W) gathers a zero row and is skipped by
 * the backward; when a flag buffer (one int32, zero before use) is passed,
 * the launch also records the bad entry there (flag = 1 + the largest bad
 * position n*K + k). enco_patch_flag_check() turns a set flag into an
 * ENCO_ERR_INVALID_ARG with a clear message (and clears it);
 * enco_patch_check_indices() validates host indices before upload. */
#ifndef ENCO_OPS_PATCH_H
#define ENCO_OPS_PATCH_H

#include "core/internal.h"

#include <stdint.h>

/* The L2 normalisation's epsilon, added outside the square root as the
 * reference code's Normalize: y = x / (||x||_2 + ENCO_L2NORM_EPS). */
#define ENCO_L2NORM_EPS 1e-7f

/* ---- gather ----------------------------------------------------------- */

/* rows[n*K + k, :] = feat[n, :, idx[n, k]] where idx indexes the flattened
 * H*W positions: PyTorch's feat.permute(0,2,3,1).flatten(1,2)[:, idx, :]
 * concatenated over the batch. Indices may repeat. flag may be NULL. */
enco_status enco_patch_gather_forward(enco_ctx *ctx, cl_mem rows, size_t rows_off, /* (N*K, C) */
                                      cl_mem feat, size_t feat_off, /* (N, C, H, W) */
                                      cl_mem idx, size_t idx_off,   /* (N, K) int32 */
                                      cl_mem flag, size_t flag_off, /* (1) int32 or NULL */
                                      size_t n, size_t c, size_t h, size_t w, size_t k);

/* dfeat[n, :, idx[n, k]] += drows[n*K + k, :]. ACCUMULATES into dfeat (zero
 * it first for a plain gradient; this lets the EnCo gradient land on top of
 * the gradient a feature map already receives from the rest of the network).
 * Repeated indices accumulate in k order; no atomics, bitwise reproducible. */
enco_status enco_patch_gather_backward(enco_ctx *ctx, cl_mem dfeat, size_t dfeat_off, /* (N, C, H, W) */
                                       cl_mem drows, size_t drows_off, /* (N*K, C) */
                                       cl_mem idx, size_t idx_off,     /* (N, K) int32 */
                                       cl_mem flag, size_t flag_off,   /* (1) int32 or NULL */
                                       size_t n, size_t c, size_t h, size_t w, size_t k);

/* Reads the flag written by the gather launchers (this waits for the queue):
 * ENCO_OK when it is 0, else ENCO_ERR_INVALID_ARG naming the bad entry
 * (n, k) of a K-wide index array; the flag is reset to 0 in both cases. */
enco_status enco_patch_flag_check(enco_ctx *ctx, cl_mem flag, size_t flag_off, size_t k,
                                  size_t hw);

/* Host-side validation of indices (N, K) against [0, hw) before upload:
 * ENCO_ERR_INVALID_ARG naming the first bad entry. */
enco_status enco_patch_check_indices(const int32_t *idx, size_t n, size_t k, size_t hw);

/* ---- L2 normalisation per row ----------------------------------------- */

/* y = x / (||x||_2 + 1e-7) for each of `rows` rows of `dim` values. y may be x
 * (same offset) for an in-place run. */
enco_status enco_l2norm_forward(enco_ctx *ctx, cl_mem y, size_t y_off, /* (rows, dim) */
                                cl_mem x, size_t x_off,                /* (rows, dim) */
                                size_t rows, size_t dim);
/* dx = dy / d - x (dy . x) / (d^2 s) with s = ||x||, d = s + 1e-7, from the
 * forward INPUT x (overwrites dx; dx may be dy or x at the same offset, for
 * an in-place run, but must not partially overlap them). An all-zero
 * row gets dx = dy / 1e-7 (the subgradient with the norm's term taken as 0;
 * PyTorch's autograd gives NaN there). */
enco_status enco_l2norm_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, /* (rows, dim) */
                                 cl_mem dy, size_t dy_off,                /* (rows, dim) */
                                 cl_mem x, size_t x_off,                  /* (rows, dim) */
                                 size_t rows, size_t dim);

/* ---- bilinear resize (forward only) ------------------------------------- */

/* PyTorch F.interpolate(x, size=(H, W), mode='bilinear', align_corners=False)
 * (antialias off, the scale is in/out as when `size` is given): for each axis
 * src = max((dst + 0.5) * in / out - 0.5, 0), i0 = min(floor(src), in - 1),
 * i1 = min(i0 + 1, in - 1), weights 1 - l and l with l = src - i0. Up- and
 * downscaling, any sizes >= 1. y must not overlap x. */
enco_status enco_bilinear_forward(enco_ctx *ctx, cl_mem y, size_t y_off, /* (N, C, H, W) */
                                  cl_mem x, size_t x_off,                /* (N, C, h, w) */
                                  size_t n, size_t c, size_t h, size_t w, size_t out_h,
                                  size_t out_w);

/* ---- float64 references ------------------------------------------------- */

/* Bad indices behave as on the device (zero row / skipped). */
void enco_patch_gather_forward_ref(double *rows, const double *feat, const int32_t *idx,
                                   size_t n, size_t c, size_t h, size_t w, size_t k);
void enco_patch_gather_backward_ref(double *dfeat, const double *drows, const int32_t *idx,
                                    size_t n, size_t c, size_t h, size_t w, size_t k);
void enco_l2norm_forward_ref(double *y, const double *x, size_t rows, size_t dim, double eps);
void enco_l2norm_backward_ref(double *dx, const double *dy, const double *x, size_t rows,
                              size_t dim, double eps);
void enco_bilinear_forward_ref(double *y, const double *x, size_t n, size_t c, size_t h, size_t w,
                               size_t out_h, size_t out_w);

/* ---- costs ---------------------------------------------------------------- */

enco_op_cost enco_patch_gather_cost(size_t n, size_t c, size_t k, int backward);
enco_op_cost enco_l2norm_cost(size_t rows, size_t dim, int backward);
enco_op_cost enco_bilinear_cost(size_t n, size_t c, size_t h, size_t w, size_t out_h,
                                size_t out_w);

#endif
