/* Convolution family: Conv2d, ConvTranspose2d and a standalone 2-D padding
 * layer, forward and backward, with float64 references and costs.
 *
 * Conv2d and ConvTranspose2d run as im2col (padding fused in) + SGEMM; their
 * backward passes use col2im as a deterministic gather (no atomics): every
 * launch is bitwise reproducible (for a given workspace size). The column
 * matrix lives in a caller-owned workspace of enco_*_workspace_floats()
 * floats so that a training loop never allocates. A workspace sized for fewer
 * images than the batch makes the launcher process the batch in chunks of as
 * many images as fit; one smaller than a single image's column matrix (down to
 * one row of window positions: C*kh*kw*wo floats) makes it process one image
 * at a time in bands of as many output rows as fit, which bounds the memory
 * of large layers (e.g. 7x7 convolutions on 256x256 images) at some speed.
 *
 * All tensors are NCHW float32; every cl_mem is followed by its offset in
 * elements. Activation gradients are overwritten, parameter gradients
 * accumulate (+=). A NULL gradient buffer skips that gradient. */
#ifndef ENCO_OPS_CONV_H
#define ENCO_OPS_CONV_H

#include "core/internal.h"

/* ---- Conv2d (PyTorch nn.Conv2d, dilation 1, groups 1) ------------------- */

typedef struct enco_conv2d_shape {
    int n, cin, h, w;        /* input (n, cin, h, w) */
    int cout;                /* output channels */
    int kh, kw;              /* kernel size */
    int stride_h, stride_w;  /* >= 1 */
    int pad_h, pad_w;        /* padding on each side (top = bottom, left = right), >= 0 */
    enco_pad_mode pad_mode;  /* zero / reflect (pad < size) / replicate */
} enco_conv2d_shape;

/* Output size: floor((h + 2 pad_h - kh) / stride_h) + 1 (same for w). */
void enco_conv2d_out_size(const enco_conv2d_shape *s, int *ho, int *wo);
/* Checks a shape; ENCO_ERR_INVALID_ARG with a message when it is unusable. */
enco_status enco_conv2d_check(const enco_conv2d_shape *s);
/* Workspace (floats) holding the column matrices of `images` images at once:
 * images * cin*kh*kw * ho*wo. images = s->n processes the batch in one pass.
 * Any size from cin*kh*kw*wo (one output row) up works (see above). The same
 * workspace serves forward and backward. */
size_t enco_conv2d_workspace_floats(const enco_conv2d_shape *s, int images);

/* The workspace a network that runs one image at a time should plan for this
 * layer within cap_floats: one image's column matrix when it fits the cap,
 * else whole output rows up to the cap (banded processing; at least one row);
 * raised to what the flipped-weight input gradient of a stride-1 layer needs
 * when that is within the cap too (by the default rule: see
 * enco_kernel_policy.conv_bwd_flip). */
size_t enco_conv2d_workspace_plan_floats(const enco_conv2d_shape *s, size_t cap_floats);

/* As enco_conv2d_workspace_plan_floats for the paths ctx runs: where the
 * packed GEMM builds the column matrices itself (CPUs) only one output row
 * (the size check) or the flipped-weight input gradient's transposed weights
 * and one image's padded input gradient, when that is within the cap. */
size_t enco_conv2d_workspace_plan_floats_ctx(enco_ctx *ctx, const enco_conv2d_shape *s,
                                             size_t cap_floats);

/* The kernel paths of one shape on one context, chosen once from the
 * context's kernel policy (include/enco/enco.h, enco_kernel_policy) by
 * enco_conv2d_plan and kept with the layer: a network plans each of its
 * convolutions when it is built and runs them through the _planned entry
 * points. enco_conv2d_forward / _backward plan on every call. */
typedef struct enco_conv2d_paths {
    enco_conv2d_shape shape; /* the shape they were chosen for (any n runs them) */
    int direct;       /* cout within conv_direct_max: the direct small-cout kernels */
    int strip;        /* those as the CPU strip / row kernels */
    int implicit;     /* the packed GEMM builds the column matrices itself */
    int wgrad_direct; /* ... and the weight gradient reads x inside its multiply */
    int bwd_flip;     /* input gradient as a convolution with the flipped weights (stride 1,
                       * where the workspace holds it) */
    int rows;         /* the per-plane CPU kernels (folds, bias gradient, weight flips) */
    int splitk;       /* the policy's conv_splitk (the parts of a band count at the call) */
    int small_parts;  /* parts of the direct weight gradient */
} enco_conv2d_paths;

/* Checks s and chooses its paths on ctx. */
enco_status enco_conv2d_plan(enco_ctx *ctx, const enco_conv2d_shape *s, enco_conv2d_paths *out);

/* y = conv(x, w) + b. b may be NULL (no bias). */
enco_status enco_conv2d_forward(enco_ctx *ctx,
                                cl_mem y, size_t y_off,        /* (n, cout, ho, wo) */
                                cl_mem x, size_t x_off,        /* (n, cin, h, w) */
                                cl_mem w, size_t w_off,        /* (cout, cin, kh, kw) */
                                cl_mem b, size_t b_off,        /* (cout) or NULL */
                                cl_mem ws, size_t ws_off, size_t ws_floats,
                                const enco_conv2d_shape *s);

/* dx = dL/dx (overwritten), dw += dL/dw, db += dL/db; each may be NULL.
 * x is needed only for dw (may be NULL otherwise), w only for dx. */
enco_status enco_conv2d_backward(enco_ctx *ctx,
                                 cl_mem dx, size_t dx_off,     /* (n, cin, h, w) or NULL */
                                 cl_mem dw, size_t dw_off,     /* (cout, cin, kh, kw) or NULL */
                                 cl_mem db, size_t db_off,     /* (cout) or NULL */
                                 cl_mem dy, size_t dy_off,     /* (n, cout, ho, wo) */
                                 cl_mem x, size_t x_off,       /* (n, cin, h, w) */
                                 cl_mem w, size_t w_off,       /* (cout, cin, kh, kw) */
                                 cl_mem ws, size_t ws_off, size_t ws_floats,
                                 const enco_conv2d_shape *s);

/* enco_conv2d_forward / _backward along paths chosen by enco_conv2d_plan
 * for s (any batch size s->n: no choice depends on it; another shape is
 * refused). */
enco_status enco_conv2d_forward_planned(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x,
                                        size_t x_off, cl_mem w, size_t w_off, cl_mem b,
                                        size_t b_off, cl_mem ws, size_t ws_off, size_t ws_floats,
                                        const enco_conv2d_shape *s,
                                        const enco_conv2d_paths *paths);
enco_status enco_conv2d_backward_planned(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dw,
                                         size_t dw_off, cl_mem db, size_t db_off, cl_mem dy,
                                         size_t dy_off, cl_mem x, size_t x_off, cl_mem w,
                                         size_t w_off, cl_mem ws, size_t ws_off, size_t ws_floats,
                                         const enco_conv2d_shape *s,
                                         const enco_conv2d_paths *paths);

/* float64 references (plain loops). b / dx / dw / db may be NULL. */
void enco_conv2d_forward_ref(double *y, const double *x, const double *w, const double *b,
                             const enco_conv2d_shape *s);
void enco_conv2d_backward_ref(double *dx, double *dw, double *db, const double *dy,
                              const double *x, const double *w, const enco_conv2d_shape *s);

/* FLOPs and minimum global traffic of one forward (backward = 0) or one
 * backward computing all three gradients (backward = 1). */
enco_op_cost enco_conv2d_cost(const enco_conv2d_shape *s, int backward);

/* ---- ConvTranspose2d (PyTorch nn.ConvTranspose2d, zero padding) --------- */

typedef struct enco_conv_transpose2d_shape {
    int n, cin, h, w;            /* input (n, cin, h, w) */
    int cout;
    int kh, kw;
    int stride_h, stride_w;      /* >= 1 */
    int pad_h, pad_w;            /* >= 0 */
    int out_pad_h, out_pad_w;    /* output_padding, 0 <= out_pad < stride */
} enco_conv_transpose2d_shape;

/* ho = (h - 1) * stride_h - 2 pad_h + kh + out_pad_h (same for w). */
void enco_conv_transpose2d_out_size(const enco_conv_transpose2d_shape *s, int *ho, int *wo);
enco_status enco_conv_transpose2d_check(const enco_conv_transpose2d_shape *s);
/* images * cout*kh*kw * h*w floats; the minimum is cout*kh*kw*w (one input
 * row: the bands run over the input rows here). */
size_t enco_conv_transpose2d_workspace_floats(const enco_conv_transpose2d_shape *s, int images);

enco_status enco_conv_transpose2d_forward(enco_ctx *ctx,
                                          cl_mem y, size_t y_off,   /* (n, cout, ho, wo) */
                                          cl_mem x, size_t x_off,   /* (n, cin, h, w) */
                                          cl_mem w, size_t w_off,   /* (cin, cout, kh, kw) */
                                          cl_mem b, size_t b_off,   /* (cout) or NULL */
                                          cl_mem ws, size_t ws_off, size_t ws_floats,
                                          const enco_conv_transpose2d_shape *s);

enco_status enco_conv_transpose2d_backward(enco_ctx *ctx,
                                           cl_mem dx, size_t dx_off, /* (n, cin, h, w) or NULL */
                                           cl_mem dw, size_t dw_off, /* (cin, cout, kh, kw) or NULL */
                                           cl_mem db, size_t db_off, /* (cout) or NULL */
                                           cl_mem dy, size_t dy_off, /* (n, cout, ho, wo) */
                                           cl_mem x, size_t x_off,   /* (n, cin, h, w) */
                                           cl_mem w, size_t w_off,   /* (cin, cout, kh, kw) */
                                           cl_mem ws, size_t ws_off, size_t ws_floats,
                                           const enco_conv_transpose2d_shape *s);

void enco_conv_transpose2d_forward_ref(double *y, const double *x, const double *w,
                                       const double *b, const enco_conv_transpose2d_shape *s);
void enco_conv_transpose2d_backward_ref(double *dx, double *dw, double *db, const double *dy,
                                        const double *x, const double *w,
                                        const enco_conv_transpose2d_shape *s);
enco_op_cost enco_conv_transpose2d_cost(const enco_conv_transpose2d_shape *s, int backward);

/* ---- Pad2d (ZeroPad2d / ReflectionPad2d / ReplicationPad2d) ------------- */

typedef struct enco_pad2d_shape {
    int n, c, h, w;                  /* input (n, c, h, w) */
    int top, bottom, left, right;    /* >= 0; reflect needs each < the size it pads */
    enco_pad_mode mode;
} enco_pad2d_shape;

/* ho = h + top + bottom, wo = w + left + right. */
void enco_pad2d_out_size(const enco_pad2d_shape *s, int *ho, int *wo);
enco_status enco_pad2d_check(const enco_pad2d_shape *s);

enco_status enco_pad2d_forward(enco_ctx *ctx,
                               cl_mem y, size_t y_off,   /* (n, c, ho, wo) */
                               cl_mem x, size_t x_off,   /* (n, c, h, w) */
                               const enco_pad2d_shape *s);
/* dx (overwritten) = sum of the dy entries that read each input element. */
enco_status enco_pad2d_backward(enco_ctx *ctx,
                                cl_mem dx, size_t dx_off, /* (n, c, h, w) */
                                cl_mem dy, size_t dy_off, /* (n, c, ho, wo) */
                                const enco_pad2d_shape *s);

void enco_pad2d_forward_ref(double *y, const double *x, const enco_pad2d_shape *s);
void enco_pad2d_backward_ref(double *dx, const double *dy, const enco_pad2d_shape *s);
enco_op_cost enco_pad2d_cost(const enco_pad2d_shape *s, int backward);

#endif
