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

/* ---- BatchNorm1d over rows spread across processes -----------------------
 * Data-parallel training (issue 17): each process holds some of the rows
 * (its part, m >= 1 rows) and the statistics span every part's rows, as one
 * process would compute them on all of them. The stages below each reduce
 * this part's rows to per-column partial sums (float, the device's fixed
 * order); the host turns them into doubles, sums them over the parts and
 * derives the global statistics in double (enco_batchnorm_global_*), which
 * the next stage uses:
 *   forward:  partial_stats (sum x) -> mean; partial_stats (sum (x-mean)^2)
 *             -> rstd, unbiased variance; apply (y, saved mean and rstd,
 *             running statistics)
 *   backward: partial_grads (sum dy, sum dy*xhat; dweight, dbias += this
 *             part's sums) -> their means over all rows; apply_grads (dx)
 * The variance is the two-pass one of enco_batchnorm_forward (squared
 * deviations from the global mean): no cancellation for large means.
 * dweight and dbias get this part's share only: summed over the processes
 * (the trainer's gradient reduction) they are the whole batch's. */

/* Sums a vector over the processes in place, the same bits on every process
 * (enco_dist_sum_doubles). Every process calls it at the same points with
 * the same n. */
typedef struct enco_stat_sync {
    void *user;
    enco_status (*sum)(void *user, double *buf, size_t n);
} enco_stat_sync;

/* out (C): mean NULL: the column sums of x (M, C); else the column sums of
 * (x - mean[c])^2 (mean (C)). */
enco_status enco_batchnorm_partial_stats(enco_ctx *ctx, cl_mem out, size_t out_off, cl_mem x,
                                         size_t x_off, cl_mem mean, size_t mean_off, int m,
                                         int c);
/* y (M, C) = (x - mean) * rstd * weight + bias with the given statistics
 * st (3C: mean, rstd, unbiased variance), which also go to mean and rstd (C,
 * saved for the backward) and update running_mean/var as
 * enco_batchnorm_forward does (both given or both NULL). */
enco_status enco_batchnorm_apply(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem mean,
                                 size_t mean_off, cl_mem rstd, size_t rstd_off,
                                 cl_mem running_mean, size_t rm_off, cl_mem running_var,
                                 size_t rv_off, cl_mem x, size_t x_off, cl_mem st, size_t st_off,
                                 cl_mem weight, size_t w_off, cl_mem bias, size_t b_off, int m,
                                 int c, float momentum);
/* out (2C): the column sums of dy, then of dy * xhat (xhat from mean, rstd);
 * dbias += the first, dweight += the second (both NULL when not affine). */
enco_status enco_batchnorm_partial_grads(enco_ctx *ctx, cl_mem out, size_t out_off,
                                         cl_mem dweight, size_t dw_off, cl_mem dbias,
                                         size_t db_off, cl_mem dy, size_t dy_off, cl_mem x,
                                         size_t x_off, cl_mem mean, size_t mean_off, cl_mem rstd,
                                         size_t rstd_off, int m, int c);
/* dx (M, C) = weight * rstd * (dy - gm[c] - xhat * gm[C + c]), gm (2C) the
 * means over all rows of dy and dy * xhat; weight NULL: 1. */
enco_status enco_batchnorm_apply_grads(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy,
                                       size_t dy_off, cl_mem x, size_t x_off, cl_mem mean,
                                       size_t mean_off, cl_mem rstd, size_t rstd_off,
                                       cl_mem weight, size_t w_off, cl_mem gm, size_t gm_off,
                                       int m, int c);
/* The global statistics from the partial sums summed over the parts
 * (count: the rows of all parts): mean (C) = sums / count; rstd (C) and the
 * unbiased variance (C) from the squared deviations; gm (2C) = sums / count. */
void enco_batchnorm_global_mean(float *mean, const double *sums, double count, int c);
void enco_batchnorm_global_var(float *rstd, float *unbiased, const double *sqdev, double count,
                               int c);
void enco_batchnorm_global_grads(float *gm, const double *sums, double count, int c);

/* enco_batchnorm_forward / _backward with the statistics over the rows of
 * every process: the stages above with sync->sum between them (two sums
 * in the forward, one in the backward; the row counts travel with the first
 * sum of each). The arguments are those of enco_batchnorm_forward /
 * _backward, m this process's rows (>= 1; all processes' together >= 2),
 * plus scratch (3C floats) on the device. (Host writes go to scratch_off
 * itself: Oclgrind 21.10 counts a write at an offset into a buffer as
 * uninitialised data.) With one process the results are
 * those of enco_batchnorm_forward / _backward within float rounding. */
enco_status enco_batchnorm_forward_sync(enco_ctx *ctx, const enco_stat_sync *sync,
                                        cl_mem scratch, size_t scratch_off, cl_mem y,
                                        size_t y_off, cl_mem mean, size_t mean_off, cl_mem rstd,
                                        size_t rstd_off, cl_mem running_mean, size_t rm_off,
                                        cl_mem running_var, size_t rv_off, cl_mem x, size_t x_off,
                                        cl_mem weight, size_t w_off, cl_mem bias, size_t b_off,
                                        int m, int c, float momentum);
enco_status enco_batchnorm_backward_sync(enco_ctx *ctx, const enco_stat_sync *sync,
                                         cl_mem scratch, size_t scratch_off, cl_mem dx,
                                         size_t dx_off, cl_mem dweight, size_t dw_off,
                                         cl_mem dbias, size_t db_off, cl_mem dy, size_t dy_off,
                                         cl_mem x, size_t x_off, cl_mem mean, size_t mean_off,
                                         cl_mem rstd, size_t rstd_off, cl_mem weight,
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
