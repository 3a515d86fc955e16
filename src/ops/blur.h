/* Fixed anti-aliasing blur layers (spec ENCO.md section 1): CUT's
 * Downsample(c) (reflect pad 1, depthwise 3x3 [1,2,1]x[1,2,1]/16, stride 2)
 * and Upsample(c) (replicate pad 1, depthwise transposed 4x4
 * [1,3,3,1]x[1,3,3,1]/64*4, stride 2, padding 2, first and last row and
 * column dropped). The filters are fixed buffers (checkpoint key
 * model.<i>.filt, shape (C, 1, K, K)): they get no gradient. */
#ifndef ENCO_OPS_BLUR_H
#define ENCO_OPS_BLUR_H

#include "core/internal.h"

/* Filter edge: 3 for the downsample, 4 for the upsample. */
#define ENCO_BLUR_DOWN_K 3
#define ENCO_BLUR_UP_K 4

/* Output size of the downsample along one dimension: ceil(n / 2). */
static inline int enco_blur_down_size(int n) { return (n + 1) / 2; }

/* Fills filt (channels, 1, 3, 3) with outer([1,2,1],[1,2,1]) / 16. */
void enco_blur_down_filter(float *filt, int channels);
/* Fills filt (channels, 1, 4, 4) with outer([1,3,3,1],[1,3,3,1]) / 64 * 4. */
void enco_blur_up_filter(float *filt, int channels);

/* Downsample. y (N, C, ceil(H/2), ceil(W/2)), x (N, C, H, W), filt (C, 1, 3, 3).
 * Reflect padding needs H >= 2 and W >= 2 (as PyTorch); smaller is rejected. */
enco_status enco_blur_down_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x, size_t x_off,
                                   cl_mem filt, size_t filt_off, int n, int c, int h, int w);
/* Gradient w.r.t. the input (overwrites dx). dx (N, C, H, W),
 * dy (N, C, ceil(H/2), ceil(W/2)), filt (C, 1, 3, 3). */
enco_status enco_blur_down_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy,
                                    size_t dy_off, cl_mem filt, size_t filt_off, int n, int c,
                                    int h, int w);

/* Upsample. y (N, C, 2H, 2W), x (N, C, H, W), filt (C, 1, 4, 4). Any H, W >= 1. */
enco_status enco_blur_up_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x, size_t x_off,
                                 cl_mem filt, size_t filt_off, int n, int c, int h, int w);
/* Gradient w.r.t. the input (overwrites dx). dx (N, C, H, W), dy (N, C, 2H, 2W). */
enco_status enco_blur_up_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy,
                                  size_t dy_off, cl_mem filt, size_t filt_off, int n, int c, int h,
                                  int w);

/* float64 references (plain loops, same shapes as the launchers). */
void enco_blur_down_forward_ref(double *y, const double *x, const double *filt, int n, int c,
                                int h, int w);
void enco_blur_down_backward_ref(double *dx, const double *dy, const double *filt, int n, int c,
                                 int h, int w);
void enco_blur_up_forward_ref(double *y, const double *x, const double *filt, int n, int c, int h,
                              int w);
void enco_blur_up_backward_ref(double *dx, const double *dy, const double *filt, int n, int c,
                               int h, int w);

/* Work and traffic of each launcher (h, w: the input size). */
enco_op_cost enco_blur_down_forward_cost(int n, int c, int h, int w);
enco_op_cost enco_blur_down_backward_cost(int n, int c, int h, int w);
enco_op_cost enco_blur_up_forward_cost(int n, int c, int h, int w);
enco_op_cost enco_blur_up_backward_cost(int n, int c, int h, int w);

#endif
