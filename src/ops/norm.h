/* Normalisation layers: InstanceNorm2d (affine=False, optionally fused with
 * the ReLU / LeakyReLU that follows it), BatchNorm1d in training mode over
 * the rows of an (M, C) matrix, LayerNorm over the last dimension of (M, C).
 * All use eps = 1e-5 and the biased variance for normalising; the forward
 * saves mean and rstd = 1 / sqrt(var + eps) for the backward. Reductions run
 * in a fixed order (bitwise reproducible on a given device). */
#ifndef ENCO_OPS_NORM_H
#define ENCO_OPS_NORM_H

#include "core/internal.h"

#define ENCO_NORM_EPS 1e-5

/* Activation fused after InstanceNorm. LEAKY uses `slope` for z <= 0; the
 * backward treats z == 0 as negative (PyTorch: ReLU grad 0, LeakyReLU slope). */
typedef enum enco_norm_act {
    ENCO_NORM_ACT_NONE = 0,
    ENCO_NORM_ACT_RELU = 1,
    ENCO_NORM_ACT_LEAKY = 2,
} enco_norm_act;

/* ---- InstanceNorm2d ------------------------------------------------------
 * y = act((x - mean) * rstd) per (n, c) plane over H*W (H*W >= 2, as PyTorch
 * requires in training). y (N, C, H, W), mean and rstd (N * C) saved,
 * x (N, C, H, W). slope is used only by ENCO_NORM_ACT_LEAKY. */
enco_status enco_instnorm_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem mean,
                                  size_t mean_off, cl_mem rstd, size_t rstd_off, cl_mem x,
                                  size_t x_off, int n, int c, int h, int w, enco_norm_act act,
                                  float slope);
/* dx (N, C, H, W) overwritten; dy (N, C, H, W) the gradient of y; x, mean,
 * rstd as given to / saved by the forward. */
enco_status enco_instnorm_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy,
                                   size_t dy_off, cl_mem x, size_t x_off, cl_mem mean,
                                   size_t mean_off, cl_mem rstd, size_t rstd_off, int n, int c,
                                   int h, int w, enco_norm_act act, float slope);

/* ---- BatchNorm1d, training mode ------------------------------------------
 * Statistics over the M rows (M >= 2, as PyTorch requires in training) of
 * x (M, C): y = (x - mean) * rstd * weight + bias. weight and bias (C) are
 * both given (affine) or both NULL. running_mean and running_var (C), both
 * given or both NULL, are updated in place:
 *   running = (1 - momentum) * running + momentum * stat,
 * with the unbiased variance (var * M / (M - 1)). num_batches_tracked is the
 * caller's. mean, rstd (C) are saved for the backward. */
enco_status enco_batchnorm_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem mean,
                                   size_t mean_off, cl_mem rstd, size_t rstd_off,
                                   cl_mem running_mean, size_t rm_off, cl_mem running_var,
                                   size_t rv_off, cl_mem x, size_t x_off, cl_mem weight,
                                   size_t w_off, cl_mem bias, size_t b_off, int m, int c,
                                   float momentum);
/* Full batch-statistics backward. dx (M, C) overwritten; dweight, dbias (C)
 * accumulate (+=), both NULL when not affine (then weight is NULL too);
 * dy, x (M, C); mean, rstd (C) from the forward; weight (C) or NULL. */
enco_status enco_batchnorm_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dweight,
                                    size_t dw_off, cl_mem dbias, size_t db_off, cl_mem dy,
                                    size_t dy_off, cl_mem x, size_t x_off, cl_mem mean,
                                    size_t mean_off, cl_mem rstd, size_t rstd_off, cl_mem weight,
                                    size_t w_off, int m, int c);

/* ---- LayerNorm over the last dimension, affine ---------------------------
 * y (M, C) = (x - mean_row) * rstd_row * weight + bias; mean, rstd (M)
 * saved; x (M, C); weight, bias (C). */
enco_status enco_layernorm_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem mean,
                                   size_t mean_off, cl_mem rstd, size_t rstd_off, cl_mem x,
                                   size_t x_off, cl_mem weight, size_t w_off, cl_mem bias,
                                   size_t b_off, int m, int c);
/* dx (M, C) overwritten; dweight, dbias (C) accumulate (+=). */
enco_status enco_layernorm_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dweight,
                                    size_t dw_off, cl_mem dbias, size_t db_off, cl_mem dy,
                                    size_t dy_off, cl_mem x, size_t x_off, cl_mem mean,
                                    size_t mean_off, cl_mem rstd, size_t rstd_off, cl_mem weight,
                                    size_t w_off, int m, int c);

/* ---- float64 references (plain loops) -----------------------------------
 * Same shapes as the launchers; mean / rstd outputs may be NULL. The
 * backward references recompute the statistics from x. */
void enco_instnorm_forward_ref(double *y, double *mean, double *rstd, const double *x, int n,
                               int c, int h, int w, enco_norm_act act, double slope);
void enco_instnorm_backward_ref(double *dx, const double *dy, const double *x, int n, int c, int h,
                                int w, enco_norm_act act, double slope);
/* weight, bias NULL: not affine. running_mean/var NULL: no update. */
void enco_batchnorm_forward_ref(double *y, double *mean, double *rstd, double *running_mean,
                                double *running_var, const double *x, const double *weight,
                                const double *bias, int m, int c, double momentum);
/* dweight, dbias accumulate (+=); NULL (and weight NULL) when not affine. */
void enco_batchnorm_backward_ref(double *dx, double *dweight, double *dbias, const double *dy,
                                 const double *x, const double *weight, int m, int c);
void enco_layernorm_forward_ref(double *y, double *mean, double *rstd, const double *x,
                                const double *weight, const double *bias, int m, int c);
void enco_layernorm_backward_ref(double *dx, double *dweight, double *dbias, const double *dy,
                                 const double *x, const double *weight, int m, int c);

/* ---- costs ---------------------------------------------------------------- */
enco_op_cost enco_instnorm_forward_cost(int n, int c, int h, int w);
enco_op_cost enco_instnorm_backward_cost(int n, int c, int h, int w);
enco_op_cost enco_batchnorm_forward_cost(int m, int c);
enco_op_cost enco_batchnorm_backward_cost(int m, int c);
enco_op_cost enco_layernorm_forward_cost(int m, int c);
enco_op_cost enco_layernorm_backward_cost(int m, int c);

#endif
