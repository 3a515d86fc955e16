/* Elementwise activations (ReLU, LeakyReLU, Tanh), the residual add and the
 * small vector helpers a training step needs (axpy, fill, scale).
 *
 * All ops work on flat buffers of n floats; offsets are in elements. Every
 * launcher may run in place (output and input the same buffer at the same
 * offset); partially overlapping ranges are rejected. n must be > 0.
 *
 * PyTorch parity at the kinks: ReLU's gradient at x == 0 is 0, LeakyReLU's is
 * slope (both take the x > 0 branch only for x strictly positive). ReLU maps
 * NaN to NaN and -0 to -0, as torch.relu. */
#ifndef ENCO_OPS_ACT_H
#define ENCO_OPS_ACT_H

#include "core/internal.h"

/* ---- launchers -------------------------------------------------------- */

/* y = max(x, 0). */
enco_status enco_relu_forward(enco_ctx *ctx, cl_mem y, size_t y_off, /* (n) */
                              cl_mem x, size_t x_off,                /* (n) */
                              size_t n);
/* dx = x > 0 ? dy : 0 (overwrites dx). x is the forward input or output (same
 * mask), so an in-place forward can pass its output. */
enco_status enco_relu_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, /* (n) */
                               cl_mem dy, size_t dy_off,                /* (n) */
                               cl_mem x, size_t x_off,                  /* (n) */
                               size_t n);

/* y = x > 0 ? x : slope * x (the model uses slope 0.2). */
enco_status enco_leaky_relu_forward(enco_ctx *ctx, cl_mem y, size_t y_off, /* (n) */
                                    cl_mem x, size_t x_off,                /* (n) */
                                    size_t n, float slope);
/* dx = x > 0 ? dy : slope * dy (overwrites dx). For slope > 0 the forward
 * output may stand in for x (same sign). */
enco_status enco_leaky_relu_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, /* (n) */
                                     cl_mem dy, size_t dy_off,                /* (n) */
                                     cl_mem x, size_t x_off,                  /* (n) */
                                     size_t n, float slope);

/* y = tanh(x). */
enco_status enco_tanh_forward(enco_ctx *ctx, cl_mem y, size_t y_off, /* (n) */
                              cl_mem x, size_t x_off,                /* (n) */
                              size_t n);
/* dx = dy * (1 - y^2) from the saved forward output y (overwrites dx). */
enco_status enco_tanh_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, /* (n) */
                               cl_mem dy, size_t dy_off,                /* (n) */
                               cl_mem y, size_t y_off,                  /* (n) */
                               size_t n);

/* Residual add: out = a + b. */
enco_status enco_add_forward(enco_ctx *ctx, cl_mem out, size_t out_off, /* (n) */
                             cl_mem a, size_t a_off,                    /* (n) */
                             cl_mem b, size_t b_off,                    /* (n) */
                             size_t n);
/* da = dy and db = dy (overwrite). Either of da, db may be NULL (not wanted),
 * not both. To add a branch's gradient on top, use enco_axpy. */
enco_status enco_add_backward(enco_ctx *ctx, cl_mem da, size_t da_off, /* (n) or NULL */
                              cl_mem db, size_t db_off,                /* (n) or NULL */
                              cl_mem dy, size_t dy_off,                /* (n) */
                              size_t n);

/* y += alpha * x (gradient accumulation). */
enco_status enco_axpy(enco_ctx *ctx, cl_mem y, size_t y_off, /* (n) */
                      cl_mem x, size_t x_off,                /* (n) */
                      size_t n, float alpha);
/* y = value. */
enco_status enco_fill(enco_ctx *ctx, cl_mem y, size_t y_off, /* (n) */
                      size_t n, float value);
/* y = alpha * y. */
enco_status enco_scale(enco_ctx *ctx, cl_mem y, size_t y_off, /* (n) */
                       size_t n, float alpha);

/* ---- float64 references (same semantics, plain loops) ------------------ */

void enco_relu_forward_ref(double *y, const double *x, size_t n);
void enco_relu_backward_ref(double *dx, const double *dy, const double *x, size_t n);
void enco_leaky_relu_forward_ref(double *y, const double *x, size_t n, double slope);
void enco_leaky_relu_backward_ref(double *dx, const double *dy, const double *x, size_t n,
                                  double slope);
void enco_tanh_forward_ref(double *y, const double *x, size_t n);
void enco_tanh_backward_ref(double *dx, const double *dy, const double *y, size_t n);
void enco_add_forward_ref(double *out, const double *a, const double *b, size_t n);
/* da, db may be NULL. */
void enco_add_backward_ref(double *da, double *db, const double *dy, size_t n);
void enco_axpy_ref(double *y, const double *x, size_t n, double alpha);
void enco_fill_ref(double *y, size_t n, double value);
void enco_scale_ref(double *y, size_t n, double alpha);

/* ---- costs (backward = 0 for the forward launcher, 1 for the backward) -- */

enco_op_cost enco_relu_cost(size_t n, int backward);
enco_op_cost enco_leaky_relu_cost(size_t n, int backward);
enco_op_cost enco_tanh_cost(size_t n, int backward);
/* backward with both gradients wanted. */
enco_op_cost enco_add_cost(size_t n, int backward);
enco_op_cost enco_axpy_cost(size_t n);
enco_op_cost enco_fill_cost(size_t n);
enco_op_cost enco_scale_cost(size_t n);

#endif
