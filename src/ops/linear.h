/* Fully connected layer, PyTorch nn.Linear layout: y = x W^T + b with
 * x (M, in), W (out, in), b (out) or none. Rows are samples (for the heads:
 * the N*K sampled patches). Products go through enco_sgemm; the bias terms
 * through small kernels with a fixed summation order (bitwise reproducible). */
#ifndef ENCO_OPS_LINEAR_H
#define ENCO_OPS_LINEAR_H

#include "core/internal.h"

/* y = x W^T (+ b). b may be NULL (no bias). y must not overlap x, w or b. */
enco_status enco_linear_forward(enco_ctx *ctx, cl_mem y, size_t y_off, /* (M, out) */
                                cl_mem x, size_t x_off,                /* (M, in) */
                                cl_mem w, size_t w_off,                /* (out, in) */
                                cl_mem b, size_t b_off,                /* (out) or NULL */
                                size_t m, size_t in, size_t out);

/* Gradients of enco_linear_forward:
 *   dx  = dy W          (overwritten; NULL: not wanted)
 *   dw += dy^T x        (accumulated; NULL: not wanted, e.g. frozen weights)
 *   db += sum_r dy[r,:] (accumulated, rows in order 0..M-1; NULL: no bias)
 * At least one of dx, dw, db must be given. Outputs must not overlap the
 * inputs or each other. */
enco_status enco_linear_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, /* (M, in) or NULL */
                                 cl_mem dw, size_t dw_off,                /* (out, in) or NULL */
                                 cl_mem db, size_t db_off,                /* (out) or NULL */
                                 cl_mem dy, size_t dy_off,                /* (M, out) */
                                 cl_mem x, size_t x_off,                  /* (M, in) */
                                 cl_mem w, size_t w_off,                  /* (out, in) */
                                 size_t m, size_t in, size_t out);

/* float64 references, same semantics (b, dx, dw, db may be NULL). */
void enco_linear_forward_ref(double *y, const double *x, const double *w, const double *b,
                             size_t m, size_t in, size_t out);
void enco_linear_backward_ref(double *dx, double *dw, double *db, const double *dy,
                              const double *x, const double *w, size_t m, size_t in, size_t out);

/* Forward (backward = 0) with or without bias; backward (backward = 1)
 * counting dx, dw and, when has_bias, db. */
enco_op_cost enco_linear_cost(size_t m, size_t in, size_t out, int has_bias, int backward);

#endif
