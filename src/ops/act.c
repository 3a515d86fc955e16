/* Elementwise activations and vector helpers: launchers and float64 references. */
#include "ops/act.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACT_LOCAL 256
/* Elements per work-item of the *_cpu block kernels (ACT_BLOCK in cl/act.cl). */
#define ACT_BLOCK 4096

/* ---- argument checks ---------------------------------------------------- */

/* m must hold elements [off, off + n) of 4-byte values. */
static enco_status check_buf(const char *op, const char *name, cl_mem m, size_t off, size_t n)
{
    return enco_check_range(op, name, m, off, n, 4);
}

/* An output and an input must be the same range (in place) or disjoint. */
static enco_status check_alias(const char *op, const char *out_name, cl_mem out, size_t out_off,
                               const char *in_name, cl_mem in, size_t in_off, size_t n)
{
    if (out != in || out_off == in_off)
        return ENCO_OK;
    size_t lo = out_off < in_off ? in_off - out_off : out_off - in_off;
    if (lo < n)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: %s [%zu, +%zu) partially overlaps %s [%zu, +%zu) in the same buffer",
                         op, out_name, out_off, n, in_name, in_off, n);
    return ENCO_OK;
}

static enco_status check_common(const char *op, enco_ctx *ctx, size_t n)
{
    if (!ctx)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: ctx is NULL", op);
    if (n == 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: n must be > 0", op);
    return ENCO_OK;
}

/* Checks out, in1 (and in2 when given) as ranges of n elements. */
static enco_status check_unary(const char *op, enco_ctx *ctx, size_t n, const char *on, cl_mem o,
                               size_t o_off, const char *n1, cl_mem i1, size_t i1_off,
                               const char *n2, cl_mem i2, size_t i2_off)
{
    ENCO_TRY(check_common(op, ctx, n));
    ENCO_TRY(check_buf(op, on, o, o_off, n));
    ENCO_TRY(check_buf(op, n1, i1, i1_off, n));
    ENCO_TRY(check_alias(op, on, o, o_off, n1, i1, i1_off, n));
    if (n2) {
        ENCO_TRY(check_buf(op, n2, i2, i2_off, n));
        ENCO_TRY(check_alias(op, on, o, o_off, n2, i2, i2_off, n));
    }
    return ENCO_OK;
}

static const size_t act_local = ACT_LOCAL;

/* The block kernels (cl/act.cl <kernel>_cpu: one work-item per ACT_BLOCK
 * elements, where PoCL's cost per work-group of ACT_LOCAL items shows) for
 * leaky ReLU, add and axpy; same bits as the per-element kernels.
 * The policy's act_rows (ENCO_ACT_ROWS; default: on CPUs). */
static int cpu_blocks(const enco_ctx *ctx)
{
    return enco_ctx_kernel_policy(ctx)->act_rows == ENCO_PATH_ON;
}

/* Runs `kernel` over n elements, or its block variant (same arguments). */
static enco_status run_act(enco_ctx *ctx, const char *kernel, size_t n, size_t nargs,
                           const enco_arg *args)
{
    if (cpu_blocks(ctx)) {
        char name[64];
        snprintf(name, sizeof name, "%s_cpu", kernel);
        const size_t blocks = (n + ACT_BLOCK - 1) / ACT_BLOCK, one = 1;
        return enco_kernel_run(ctx, "act", name, 1, &blocks, &one, nargs, args);
    }
    return enco_kernel_run(ctx, "act", kernel, 1, &n, &act_local, nargs, args);
}

#define ACT_RUN(ctx, kernel, n, ...)                                                          \
    run_act((ctx), (kernel), (n), sizeof((enco_arg[]){__VA_ARGS__}) / sizeof(enco_arg),       \
            (enco_arg[]){__VA_ARGS__})

/* ---- ReLU ------------------------------------------------------------- */

enco_status enco_relu_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x, size_t x_off,
                              size_t n)
{
    ENCO_TRY(check_unary("relu_forward", ctx, n, "y", y, y_off, "x", x, x_off, NULL, NULL, 0));
    return ENCO_RUN(ctx, "act", "act_relu_fwd", 1, &n, &act_local, ENCO_ARG_ULONG(n),
                    ENCO_ARG_MEM(y), ENCO_ARG_ULONG(y_off), ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off));
}

enco_status enco_relu_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy, size_t dy_off,
                               cl_mem x, size_t x_off, size_t n)
{
    ENCO_TRY(check_unary("relu_backward", ctx, n, "dx", dx, dx_off, "dy", dy, dy_off, "x", x,
                         x_off));
    return ENCO_RUN(ctx, "act", "act_relu_bwd", 1, &n, &act_local, ENCO_ARG_ULONG(n),
                    ENCO_ARG_MEM(dx), ENCO_ARG_ULONG(dx_off), ENCO_ARG_MEM(dy),
                    ENCO_ARG_ULONG(dy_off), ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off));
}

void enco_relu_forward_ref(double *y, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] < 0 ? 0.0 : x[i];
}

void enco_relu_backward_ref(double *dx, const double *dy, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = x[i] > 0 ? dy[i] : 0.0;
}

enco_op_cost enco_relu_cost(size_t n, int backward)
{
    return (enco_op_cost){(double)n, (backward ? 12.0 : 8.0) * (double)n};
}

/* ---- LeakyReLU -------------------------------------------------------- */

static enco_status check_slope(const char *op, float slope)
{
    if (!isfinite(slope))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: slope must be finite", op);
    return ENCO_OK;
}

enco_status enco_leaky_relu_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x, size_t x_off,
                                    size_t n, float slope)
{
    ENCO_TRY(check_unary("leaky_relu_forward", ctx, n, "y", y, y_off, "x", x, x_off, NULL, NULL,
                         0));
    ENCO_TRY(check_slope("leaky_relu_forward", slope));
    return ACT_RUN(ctx, "act_leaky_fwd", n, ENCO_ARG_ULONG(n),
                   ENCO_ARG_FLOAT(slope), ENCO_ARG_MEM(y), ENCO_ARG_ULONG(y_off), ENCO_ARG_MEM(x),
                   ENCO_ARG_ULONG(x_off));
}

enco_status enco_leaky_relu_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy,
                                     size_t dy_off, cl_mem x, size_t x_off, size_t n, float slope)
{
    ENCO_TRY(check_unary("leaky_relu_backward", ctx, n, "dx", dx, dx_off, "dy", dy, dy_off, "x", x,
                         x_off));
    ENCO_TRY(check_slope("leaky_relu_backward", slope));
    return ACT_RUN(ctx, "act_leaky_bwd", n, ENCO_ARG_ULONG(n),
                   ENCO_ARG_FLOAT(slope), ENCO_ARG_MEM(dx), ENCO_ARG_ULONG(dx_off),
                   ENCO_ARG_MEM(dy), ENCO_ARG_ULONG(dy_off), ENCO_ARG_MEM(x),
                   ENCO_ARG_ULONG(x_off));
}

void enco_leaky_relu_forward_ref(double *y, const double *x, size_t n, double slope)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0 ? x[i] : slope * x[i];
}

void enco_leaky_relu_backward_ref(double *dx, const double *dy, const double *x, size_t n,
                                  double slope)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = x[i] > 0 ? dy[i] : slope * dy[i];
}

enco_op_cost enco_leaky_relu_cost(size_t n, int backward)
{
    return (enco_op_cost){(double)n, (backward ? 12.0 : 8.0) * (double)n};
}

/* ---- Tanh ------------------------------------------------------------- */

enco_status enco_tanh_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x, size_t x_off,
                              size_t n)
{
    ENCO_TRY(check_unary("tanh_forward", ctx, n, "y", y, y_off, "x", x, x_off, NULL, NULL, 0));
    return ENCO_RUN(ctx, "act", "act_tanh_fwd", 1, &n, &act_local, ENCO_ARG_ULONG(n),
                    ENCO_ARG_MEM(y), ENCO_ARG_ULONG(y_off), ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off));
}

enco_status enco_tanh_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy, size_t dy_off,
                               cl_mem y, size_t y_off, size_t n)
{
    ENCO_TRY(check_unary("tanh_backward", ctx, n, "dx", dx, dx_off, "dy", dy, dy_off, "y", y,
                         y_off));
    return ENCO_RUN(ctx, "act", "act_tanh_bwd", 1, &n, &act_local, ENCO_ARG_ULONG(n),
                    ENCO_ARG_MEM(dx), ENCO_ARG_ULONG(dx_off), ENCO_ARG_MEM(dy),
                    ENCO_ARG_ULONG(dy_off), ENCO_ARG_MEM(y), ENCO_ARG_ULONG(y_off));
}

void enco_tanh_forward_ref(double *y, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = tanh(x[i]);
}

void enco_tanh_backward_ref(double *dx, const double *dy, const double *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * (1.0 - y[i] * y[i]);
}

/* tanh counted as one operation (a transcendental; devices differ). */
enco_op_cost enco_tanh_cost(size_t n, int backward)
{
    return (enco_op_cost){(backward ? 3.0 : 1.0) * (double)n, (backward ? 12.0 : 8.0) * (double)n};
}

/* ---- residual add ----------------------------------------------------- */

enco_status enco_add_forward(enco_ctx *ctx, cl_mem out, size_t out_off, cl_mem a, size_t a_off,
                             cl_mem b, size_t b_off, size_t n)
{
    ENCO_TRY(check_unary("add_forward", ctx, n, "out", out, out_off, "a", a, a_off, "b", b, b_off));
    return ACT_RUN(ctx, "act_add_fwd", n, ENCO_ARG_ULONG(n),
                   ENCO_ARG_MEM(out), ENCO_ARG_ULONG(out_off), ENCO_ARG_MEM(a),
                   ENCO_ARG_ULONG(a_off), ENCO_ARG_MEM(b), ENCO_ARG_ULONG(b_off));
}

enco_status enco_add_backward(enco_ctx *ctx, cl_mem da, size_t da_off, cl_mem db, size_t db_off,
                              cl_mem dy, size_t dy_off, size_t n)
{
    const char *op = "add_backward";
    ENCO_TRY(check_common(op, ctx, n));
    if (!da && !db)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: da and db are both NULL", op);
    ENCO_TRY(check_buf(op, "dy", dy, dy_off, n));
    if (da) {
        ENCO_TRY(check_buf(op, "da", da, da_off, n));
        ENCO_TRY(check_alias(op, "da", da, da_off, "dy", dy, dy_off, n));
    }
    if (db) {
        ENCO_TRY(check_buf(op, "db", db, db_off, n));
        ENCO_TRY(check_alias(op, "db", db, db_off, "dy", dy, dy_off, n));
    }
    if (da && db && da == db) {
        size_t d = da_off < db_off ? db_off - da_off : da_off - db_off;
        if (d < n)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: da and db overlap", op);
    }
    /* A missing output is replaced by dy itself and never written. */
    return ENCO_RUN(ctx, "act", "act_add_bwd", 1, &n, &act_local, ENCO_ARG_ULONG(n),
                    ENCO_ARG_INT(da != NULL), ENCO_ARG_MEM(da ? da : dy), ENCO_ARG_ULONG(da_off),
                    ENCO_ARG_INT(db != NULL), ENCO_ARG_MEM(db ? db : dy), ENCO_ARG_ULONG(db_off),
                    ENCO_ARG_MEM(dy), ENCO_ARG_ULONG(dy_off));
}

void enco_add_forward_ref(double *out, const double *a, const double *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

void enco_add_backward_ref(double *da, double *db, const double *dy, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (da)
            da[i] = dy[i];
        if (db)
            db[i] = dy[i];
    }
}

enco_op_cost enco_add_cost(size_t n, int backward)
{
    return (enco_op_cost){backward ? 0.0 : (double)n, 12.0 * (double)n};
}

/* ---- helpers ---------------------------------------------------------- */

enco_status enco_axpy(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x, size_t x_off, size_t n,
                      float alpha)
{
    ENCO_TRY(check_unary("axpy", ctx, n, "y", y, y_off, "x", x, x_off, NULL, NULL, 0));
    return ACT_RUN(ctx, "act_axpy", n, ENCO_ARG_ULONG(n), ENCO_ARG_MEM(y),
                   ENCO_ARG_ULONG(y_off), ENCO_ARG_FLOAT(alpha), ENCO_ARG_MEM(x),
                   ENCO_ARG_ULONG(x_off));
}

enco_status enco_fill(enco_ctx *ctx, cl_mem y, size_t y_off, size_t n, float value)
{
    ENCO_TRY(check_common("fill", ctx, n));
    ENCO_TRY(check_buf("fill", "y", y, y_off, n));
    return ENCO_RUN(ctx, "act", "act_fill", 1, &n, &act_local, ENCO_ARG_ULONG(n), ENCO_ARG_MEM(y),
                    ENCO_ARG_ULONG(y_off), ENCO_ARG_FLOAT(value));
}

enco_status enco_scale(enco_ctx *ctx, cl_mem y, size_t y_off, size_t n, float alpha)
{
    ENCO_TRY(check_common("scale", ctx, n));
    ENCO_TRY(check_buf("scale", "y", y, y_off, n));
    return ENCO_RUN(ctx, "act", "act_scale", 1, &n, &act_local, ENCO_ARG_ULONG(n), ENCO_ARG_MEM(y),
                    ENCO_ARG_ULONG(y_off), ENCO_ARG_FLOAT(alpha));
}

void enco_axpy_ref(double *y, const double *x, size_t n, double alpha)
{
    for (size_t i = 0; i < n; i++)
        y[i] += alpha * x[i];
}

void enco_fill_ref(double *y, size_t n, double value)
{
    for (size_t i = 0; i < n; i++)
        y[i] = value;
}

void enco_scale_ref(double *y, size_t n, double alpha)
{
    for (size_t i = 0; i < n; i++)
        y[i] *= alpha;
}

enco_op_cost enco_axpy_cost(size_t n) { return (enco_op_cost){2.0 * (double)n, 12.0 * (double)n}; }
enco_op_cost enco_fill_cost(size_t n) { return (enco_op_cost){0.0, 4.0 * (double)n}; }
enco_op_cost enco_scale_cost(size_t n) { return (enco_op_cost){(double)n, 8.0 * (double)n}; }
