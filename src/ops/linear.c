/* Fully connected layer: launchers (SGEMM + bias kernels) and float64 references. */
#include "ops/linear.h"

#include <limits.h>

/* ---- argument checks ---------------------------------------------------- */

static enco_status check_buf(const char *op, const char *name, cl_mem mem, size_t off, size_t n)
{
    return enco_check_range(op, name, mem, off, n, 4);
}

/* Ranges [ao, ao + an) and [bo, bo + bn) must not share elements of one buffer. */
static enco_status check_disjoint(const char *op, const char *an_, cl_mem a, size_t ao, size_t an,
                                  const char *bn_, cl_mem b, size_t bo, size_t bn)
{
    return enco_check_disjoint(op, an_, a, ao, an, bn_, b, bo, bn);
}

static enco_status check_dims(const char *op, enco_ctx *ctx, size_t m, size_t in, size_t out)
{
    if (!ctx)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: ctx is NULL", op);
    if (m == 0 || in == 0 || out == 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: empty shape (M %zu, in %zu, out %zu); all must be > 0", op, m, in,
                         out);
    if (m > INT_MAX || in > INT_MAX || out > INT_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: dimension above INT_MAX", op);
    return ENCO_OK;
}

/* ---- forward ------------------------------------------------------------ */

enco_status enco_linear_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x, size_t x_off,
                                cl_mem w, size_t w_off, cl_mem b, size_t b_off, size_t m,
                                size_t in, size_t out)
{
    const char *op = "linear_forward";
    ENCO_TRY(check_dims(op, ctx, m, in, out));
    ENCO_TRY(check_buf(op, "y", y, y_off, m * out));
    ENCO_TRY(check_buf(op, "x", x, x_off, m * in));
    ENCO_TRY(check_buf(op, "w", w, w_off, out * in));
    if (b)
        ENCO_TRY(check_buf(op, "b", b, b_off, out));
    ENCO_TRY(check_disjoint(op, "y", y, y_off, m * out, "x", x, x_off, m * in));
    ENCO_TRY(check_disjoint(op, "y", y, y_off, m * out, "w", w, w_off, out * in));
    ENCO_TRY(check_disjoint(op, "y", y, y_off, m * out, "b", b, b_off, out));

    /* y (m, out) = x (m, in) * W^T (in, out). */
    ENCO_TRY(enco_sgemm(ctx, 0, 1, m, out, in, 1.0f, x, x_off, in, w, w_off, in, 0.0f, y, y_off,
                        out));
    if (!b)
        return ENCO_OK;
    const size_t global[2] = {out, m}, local[2] = {64, 1};
    return ENCO_RUN(ctx, "linear", "linear_bias_add", 2, global, local, ENCO_ARG_INT(m),
                    ENCO_ARG_INT(out), ENCO_ARG_MEM(y), ENCO_ARG_ULONG(y_off), ENCO_ARG_MEM(b),
                    ENCO_ARG_ULONG(b_off));
}

void enco_linear_forward_ref(double *y, const double *x, const double *w, const double *b,
                             size_t m, size_t in, size_t out)
{
    for (size_t r = 0; r < m; r++)
        for (size_t j = 0; j < out; j++) {
            double s = 0;
            for (size_t k = 0; k < in; k++)
                s += x[r * in + k] * w[j * in + k];
            y[r * out + j] = s + (b ? b[j] : 0.0);
        }
}

/* ---- backward ----------------------------------------------------------- */

enco_status enco_linear_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dw, size_t dw_off,
                                 cl_mem db, size_t db_off, cl_mem dy, size_t dy_off, cl_mem x,
                                 size_t x_off, cl_mem w, size_t w_off, size_t m, size_t in,
                                 size_t out)
{
    const char *op = "linear_backward";
    ENCO_TRY(check_dims(op, ctx, m, in, out));
    if (!dx && !dw && !db)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: dx, dw and db are all NULL (nothing to do)",
                         op);
    ENCO_TRY(check_buf(op, "dy", dy, dy_off, m * out));
    if (dx) {
        ENCO_TRY(check_buf(op, "dx", dx, dx_off, m * in));
        ENCO_TRY(check_buf(op, "w", w, w_off, out * in));
    }
    if (dw) {
        ENCO_TRY(check_buf(op, "dw", dw, dw_off, out * in));
        ENCO_TRY(check_buf(op, "x", x, x_off, m * in));
    }
    if (db)
        ENCO_TRY(check_buf(op, "db", db, db_off, out));
    /* Every output against every input and the other outputs. */
    const struct {
        const char *name;
        cl_mem mem;
        size_t off, n;
    } outs[3] = {{"dx", dx, dx_off, m * in}, {"dw", dw, dw_off, out * in}, {"db", db, db_off, out}},
      ins[3] = {{"dy", dy, dy_off, m * out}, {"x", x, x_off, m * in}, {"w", w, w_off, out * in}};
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
            ENCO_TRY(check_disjoint(op, outs[i].name, outs[i].mem, outs[i].off, outs[i].n,
                                    ins[j].name, ins[j].mem, ins[j].off, ins[j].n));
        for (int j = i + 1; j < 3; j++)
            ENCO_TRY(check_disjoint(op, outs[i].name, outs[i].mem, outs[i].off, outs[i].n,
                                    outs[j].name, outs[j].mem, outs[j].off, outs[j].n));
    }

    /* dx (m, in) = dy (m, out) * W (out, in). */
    if (dx)
        ENCO_TRY(enco_sgemm(ctx, 0, 0, m, in, out, 1.0f, dy, dy_off, out, w, w_off, in, 0.0f, dx,
                            dx_off, in));
    /* dW (out, in) += dy^T (out, m) * x (m, in). */
    if (dw)
        ENCO_TRY(enco_sgemm(ctx, 1, 0, out, in, m, 1.0f, dy, dy_off, out, x, x_off, in, 1.0f, dw,
                            dw_off, in));
    if (db) {
        const size_t global = out, local = 64;
        ENCO_TRY(ENCO_RUN(ctx, "linear", "linear_bias_grad", 1, &global, &local, ENCO_ARG_INT(m),
                          ENCO_ARG_INT(out), ENCO_ARG_MEM(db), ENCO_ARG_ULONG(db_off),
                          ENCO_ARG_MEM(dy), ENCO_ARG_ULONG(dy_off)));
    }
    return ENCO_OK;
}

void enco_linear_backward_ref(double *dx, double *dw, double *db, const double *dy,
                              const double *x, const double *w, size_t m, size_t in, size_t out)
{
    if (dx)
        for (size_t r = 0; r < m; r++)
            for (size_t k = 0; k < in; k++) {
                double s = 0;
                for (size_t j = 0; j < out; j++)
                    s += dy[r * out + j] * w[j * in + k];
                dx[r * in + k] = s;
            }
    if (dw)
        for (size_t j = 0; j < out; j++)
            for (size_t k = 0; k < in; k++) {
                double s = 0;
                for (size_t r = 0; r < m; r++)
                    s += dy[r * out + j] * x[r * in + k];
                dw[j * in + k] += s;
            }
    if (db)
        for (size_t j = 0; j < out; j++) {
            double s = 0;
            for (size_t r = 0; r < m; r++)
                s += dy[r * out + j];
            db[j] += s;
        }
}

enco_op_cost enco_linear_cost(size_t m, size_t in, size_t out, int has_bias, int backward)
{
    double M = (double)m, I = (double)in, O = (double)out;
    if (!backward)
        return (enco_op_cost){2 * M * I * O + (has_bias ? M * O : 0),
                              4 * (M * I + O * I + M * O + (has_bias ? O : 0))};
    /* dx: reads dy, W, writes dx; dW: reads dy, x, reads+writes dW; db: reads
     * dy, reads+writes db. */
    double flops = 4 * M * I * O + (has_bias ? M * O : 0);
    double bytes = 4 * ((M * O + O * I + M * I) + (M * O + M * I + 2 * O * I) +
                        (has_bias ? M * O + 2 * O : 0));
    return (enco_op_cost){flops, bytes};
}
