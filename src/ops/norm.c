/* InstanceNorm2d (+ fused ReLU / LeakyReLU), BatchNorm1d (training),
 * LayerNorm: launchers and float64 references. */
#include "ops/norm.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------- */

static enco_status need_mem(cl_mem mem, size_t off, size_t count, const char *what)
{
    return enco_check_range("norm", what, mem, off, count, sizeof(float));
}

/* Largest power-of-two work-group size (<= 256) the kernel may use here. */
static enco_status wg_limit(enco_ctx *ctx, const char *kernel, size_t *out)
{
    cl_kernel k = NULL;
    ENCO_TRY(enco_kernel_get(ctx, "norm", kernel, &k));
    /* The device comes from the kernel's program (some platforms reject NULL). */
    cl_program prog = NULL;
    cl_device_id dev = NULL;
    ENCO_CL(clGetKernelInfo(k, CL_KERNEL_PROGRAM, sizeof prog, &prog, NULL));
    ENCO_CL(clGetProgramInfo(prog, CL_PROGRAM_DEVICES, sizeof dev, &dev, NULL));
    size_t kmax = 0;
    ENCO_CL(clGetKernelWorkGroupInfo(k, dev, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL));
    size_t lim = 256;
    if (kmax < lim)
        lim = kmax;
    size_t dmax = enco_ctx_device(ctx)->max_work_group_size;
    if (dmax && dmax < lim)
        lim = dmax;
    size_t p = 1;
    while (p * 2 <= lim)
        p *= 2;
    *out = p;
    return ENCO_OK;
}

static size_t pow2_at_least(size_t x, size_t cap)
{
    size_t p = 1;
    while (p < x && p < cap)
        p <<= 1;
    return p;
}

/* The lanes a <kernel>_cpu row kernel can emulate (NORM_ROWS_CPU_MAX in
 * cl/norm.cl); wg_limit keeps the group kernels within it. */
#define ROWS_CPU_MAX 256

/* The <kernel>_cpu row kernels (cl/norm.cl: one work-item per row, where
 * PoCL runs the group kernels with their barriers 3-4x below memory
 * bandwidth); they give the same bits as the group kernels.
 * The policy's norm_rows (ENCO_NORM_ROWS; default: on CPUs). */
static int cpu_rows(const enco_ctx *ctx)
{
    return enco_ctx_kernel_policy(ctx)->norm_rows == ENCO_PATH_ON;
}

/* One group per row of `len` floats, `rows` rows; nlocal local arrays, the
 * last args. The CPU variant takes the group size in place of them. */
static enco_status run_rows(enco_ctx *ctx, const char *kernel, size_t rows, size_t len,
                            int nlocal, size_t nargs, enco_arg *args)
{
    size_t lim;
    ENCO_TRY(wg_limit(ctx, kernel, &lim));
    size_t wg = pow2_at_least(len, lim);
    if (wg <= ROWS_CPU_MAX && cpu_rows(ctx)) {
        char name[64];
        snprintf(name, sizeof name, "%s_cpu", kernel);
        args[nargs - nlocal] = ENCO_ARG_INT(wg);
        const size_t one = 1;
        return enco_kernel_run(ctx, "norm", name, 1, &rows, &one, nargs - nlocal + 1, args);
    }
    for (int i = 0; i < nlocal; i++)
        args[nargs - nlocal + i] = ENCO_ARG_LOCAL(wg * sizeof(float));
    size_t global = rows * wg;
    return enco_kernel_run(ctx, "norm", kernel, 1, &global, &wg, nargs, args);
}

/* Column tiles over an (M, C) matrix; nlocal local arrays. */
static enco_status run_cols(enco_ctx *ctx, const char *kernel, int m, int c, int nlocal,
                            size_t nargs, enco_arg *args)
{
    size_t lim;
    ENCO_TRY(wg_limit(ctx, kernel, &lim));
    size_t local[2];
    local[0] = pow2_at_least((size_t)c, lim < 16 ? lim : 16);
    local[1] = pow2_at_least((size_t)m, lim / local[0]);
    for (int i = 0; i < nlocal; i++)
        args[nargs - nlocal + i] = ENCO_ARG_LOCAL(local[0] * local[1] * sizeof(float));
    size_t global[2] = {(size_t)c, local[1]};
    return enco_kernel_run(ctx, "norm", kernel, 2, global, local, nargs, args);
}

#define NARGS(a) (sizeof(a) / sizeof((a)[0]))

static enco_status check_act(const char *op, enco_norm_act act, float slope)
{
    if (act != ENCO_NORM_ACT_NONE && act != ENCO_NORM_ACT_RELU && act != ENCO_NORM_ACT_LEAKY)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: unknown activation %d (none/relu/leaky)", op,
                         (int)act);
    if (!isfinite(slope))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: slope must be finite", op);
    return ENCO_OK;
}

static enco_status check_in_dims(const char *op, int n, int c, int h, int w)
{
    if (n < 1 || c < 1 || h < 1 || w < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: shape (%d, %d, %d, %d) must be positive", op,
                         n, c, h, w);
    if ((int64_t)h * w < 2)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: instance norm needs more than 1 element per plane, got %dx%d", op,
                         h, w);
    if ((uint64_t)n * c * h * w > INT32_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: shape (%d, %d, %d, %d) is too large", op, n,
                         c, h, w);
    return ENCO_OK;
}

static enco_status check_mc(const char *op, int m, int c, int min_m)
{
    if (m < min_m || c < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: shape (M=%d, C=%d) needs M >= %d and C >= 1%s", op, m, c, min_m,
                         min_m > 1 ? " (batch statistics need more than 1 row)" : "");
    if ((uint64_t)m * c > INT32_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: shape (%d, %d) is too large", op, m, c);
    return ENCO_OK;
}

static double act_ref(double z, enco_norm_act act, double slope)
{
    if (act == ENCO_NORM_ACT_NONE || !(z < 0)) /* NaN and -0 pass, as torch */
        return z;
    return act == ENCO_NORM_ACT_RELU ? 0.0 : z * slope;
}

static double act_grad_ref(double z, enco_norm_act act, double slope)
{
    if (act == ENCO_NORM_ACT_NONE || z > 0)
        return 1.0;
    return act == ENCO_NORM_ACT_RELU ? 0.0 : slope;
}

/* Mean and rstd of `count` values `stride` apart (double). */
static void stats_ref(const double *x, size_t count, size_t stride, double *mean, double *rstd)
{
    double s = 0, v = 0;
    for (size_t i = 0; i < count; i++)
        s += x[i * stride];
    double mu = s / (double)count;
    for (size_t i = 0; i < count; i++)
        v += (x[i * stride] - mu) * (x[i * stride] - mu);
    *mean = mu;
    *rstd = 1.0 / sqrt(v / (double)count + ENCO_NORM_EPS);
}

/* ---- InstanceNorm2d ------------------------------------------------------ */

enco_status enco_instnorm_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem mean,
                                  size_t mean_off, cl_mem rstd, size_t rstd_off, cl_mem x,
                                  size_t x_off, int n, int c, int h, int w, enco_norm_act act,
                                  float slope)
{
    ENCO_TRY(check_in_dims("instnorm_forward", n, c, h, w));
    ENCO_TRY(check_act("instnorm_forward", act, slope));
    size_t planes = (size_t)n * c, len = (size_t)h * w;
    ENCO_TRY(need_mem(x, x_off, planes * len, "x"));
    ENCO_TRY(need_mem(y, y_off, planes * len, "y"));
    ENCO_TRY(need_mem(mean, mean_off, planes, "mean"));
    ENCO_TRY(need_mem(rstd, rstd_off, planes, "rstd"));
    enco_arg args[] = {ENCO_ARG_INT(len),     ENCO_ARG_INT(act),
                       ENCO_ARG_FLOAT(slope), ENCO_ARG_INT(0),
                       ENCO_ARG_MEM(x),       ENCO_ARG_ULONG(x_off),
                       ENCO_ARG_MEM(x),       ENCO_ARG_ULONG(0), /* no weight */
                       ENCO_ARG_MEM(x),       ENCO_ARG_ULONG(0), /* no bias */
                       ENCO_ARG_MEM(y),       ENCO_ARG_ULONG(y_off),
                       ENCO_ARG_MEM(mean),    ENCO_ARG_ULONG(mean_off),
                       ENCO_ARG_MEM(rstd),    ENCO_ARG_ULONG(rstd_off),
                       ENCO_ARG_LOCAL(4)};
    return run_rows(ctx, "norm_rows_forward", planes, len, 1, NARGS(args), args);
}

enco_status enco_instnorm_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy,
                                   size_t dy_off, cl_mem x, size_t x_off, cl_mem mean,
                                   size_t mean_off, cl_mem rstd, size_t rstd_off, int n, int c,
                                   int h, int w, enco_norm_act act, float slope)
{
    ENCO_TRY(check_in_dims("instnorm_backward", n, c, h, w));
    ENCO_TRY(check_act("instnorm_backward", act, slope));
    size_t planes = (size_t)n * c, len = (size_t)h * w;
    ENCO_TRY(need_mem(dx, dx_off, planes * len, "dx"));
    ENCO_TRY(need_mem(dy, dy_off, planes * len, "dy"));
    ENCO_TRY(need_mem(x, x_off, planes * len, "x"));
    ENCO_TRY(need_mem(mean, mean_off, planes, "mean"));
    ENCO_TRY(need_mem(rstd, rstd_off, planes, "rstd"));
    enco_arg args[] = {ENCO_ARG_INT(len),     ENCO_ARG_INT(act),
                       ENCO_ARG_FLOAT(slope), ENCO_ARG_INT(0),
                       ENCO_ARG_MEM(dy),      ENCO_ARG_ULONG(dy_off),
                       ENCO_ARG_MEM(x),       ENCO_ARG_ULONG(x_off),
                       ENCO_ARG_MEM(mean),    ENCO_ARG_ULONG(mean_off),
                       ENCO_ARG_MEM(rstd),    ENCO_ARG_ULONG(rstd_off),
                       ENCO_ARG_MEM(x),       ENCO_ARG_ULONG(0), /* no weight */
                       ENCO_ARG_MEM(dx),      ENCO_ARG_ULONG(dx_off),
                       ENCO_ARG_LOCAL(4),     ENCO_ARG_LOCAL(4)};
    return run_rows(ctx, "norm_rows_backward", planes, len, 2, NARGS(args), args);
}

void enco_instnorm_forward_ref(double *y, double *mean, double *rstd, const double *x, int n,
                               int c, int h, int w, enco_norm_act act, double slope)
{
    size_t len = (size_t)h * w;
    for (size_t p = 0; p < (size_t)n * c; p++) {
        const double *xp = x + p * len;
        double mu, rs;
        stats_ref(xp, len, 1, &mu, &rs);
        for (size_t i = 0; i < len; i++)
            y[p * len + i] = act_ref((xp[i] - mu) * rs, act, slope);
        if (mean)
            mean[p] = mu;
        if (rstd)
            rstd[p] = rs;
    }
}

void enco_instnorm_backward_ref(double *dx, const double *dy, const double *x, int n, int c, int h,
                                int w, enco_norm_act act, double slope)
{
    size_t len = (size_t)h * w;
    for (size_t p = 0; p < (size_t)n * c; p++) {
        const double *xp = x + p * len, *gp = dy + p * len;
        double mu, rs, a = 0, b = 0;
        stats_ref(xp, len, 1, &mu, &rs);
        for (size_t i = 0; i < len; i++) {
            double xh = (xp[i] - mu) * rs, g = gp[i] * act_grad_ref(xh, act, slope);
            a += g;
            b += g * xh;
        }
        a /= (double)len;
        b /= (double)len;
        for (size_t i = 0; i < len; i++) {
            double xh = (xp[i] - mu) * rs, g = gp[i] * act_grad_ref(xh, act, slope);
            dx[p * len + i] = rs * (g - a - xh * b);
        }
    }
}

enco_op_cost enco_instnorm_forward_cost(int n, int c, int h, int w)
{
    double e = (double)n * c * h * w;
    /* sum, squared deviations, normalise + act; reads x three times. */
    return (enco_op_cost){7.0 * e, 4.0 * (4.0 * e + 2.0 * n * c)};
}

enco_op_cost enco_instnorm_backward_cost(int n, int c, int h, int w)
{
    double e = (double)n * c * h * w;
    return (enco_op_cost){14.0 * e, 4.0 * (5.0 * e + 2.0 * n * c)};
}

/* ---- BatchNorm1d --------------------------------------------------------- */

/* The checks a forward that writes y, mean, rstd (and the running
 * statistics) shares: m rows (at least min_rows) of c features. */
static enco_status check_bn_forward(const char *op, int m, int c, int min_rows, cl_mem y,
                                    size_t y_off, cl_mem mean, size_t mean_off, cl_mem rstd,
                                    size_t rstd_off, cl_mem running_mean, size_t rm_off,
                                    cl_mem running_var, size_t rv_off, cl_mem x, size_t x_off,
                                    cl_mem weight, size_t w_off, cl_mem bias, size_t b_off,
                                    float momentum)
{
    ENCO_TRY(check_mc(op, m, c, min_rows));
    if ((weight == NULL) != (bias == NULL))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: weight and bias must both be given or both "
                                               "NULL", op);
    if ((running_mean == NULL) != (running_var == NULL))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: running_mean and running_var "
                                               "must both be given or both NULL", op);
    if (!(momentum >= 0.0f && momentum <= 1.0f))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: momentum %g not in [0, 1]", op,
                         (double)momentum);
    const size_t e = (size_t)m * c, cc = (size_t)c;
    ENCO_TRY(need_mem(x, x_off, e, "x"));
    ENCO_TRY(need_mem(y, y_off, e, "y"));
    ENCO_TRY(need_mem(mean, mean_off, cc, "mean"));
    ENCO_TRY(need_mem(rstd, rstd_off, cc, "rstd"));
    if (weight) {
        ENCO_TRY(need_mem(weight, w_off, cc, "weight"));
        ENCO_TRY(need_mem(bias, b_off, cc, "bias"));
    }
    if (running_mean) {
        ENCO_TRY(need_mem(running_mean, rm_off, cc, "running_mean"));
        ENCO_TRY(need_mem(running_var, rv_off, cc, "running_var"));
    }
    return ENCO_OK;
}

enco_status enco_batchnorm_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem mean,
                                   size_t mean_off, cl_mem rstd, size_t rstd_off,
                                   cl_mem running_mean, size_t rm_off, cl_mem running_var,
                                   size_t rv_off, cl_mem x, size_t x_off, cl_mem weight,
                                   size_t w_off, cl_mem bias, size_t b_off, int m, int c,
                                   float momentum)
{
    ENCO_TRY(check_bn_forward("batchnorm_forward", m, c, 2, y, y_off, mean, mean_off, rstd,
                              rstd_off, running_mean, rm_off, running_var, rv_off, x, x_off,
                              weight, w_off, bias, b_off, momentum));
    int affine = weight != NULL, track = running_mean != NULL;
    /* Absent buffers are replaced by valid ones the kernel never touches. */
    enco_arg args[] = {ENCO_ARG_INT(m),
                       ENCO_ARG_INT(c),
                       ENCO_ARG_INT(affine),
                       ENCO_ARG_INT(track),
                       ENCO_ARG_FLOAT(momentum),
                       ENCO_ARG_MEM(x),
                       ENCO_ARG_ULONG(x_off),
                       ENCO_ARG_MEM(affine ? weight : x),
                       ENCO_ARG_ULONG(affine ? w_off : 0),
                       ENCO_ARG_MEM(affine ? bias : x),
                       ENCO_ARG_ULONG(affine ? b_off : 0),
                       ENCO_ARG_MEM(y),
                       ENCO_ARG_ULONG(y_off),
                       ENCO_ARG_MEM(mean),
                       ENCO_ARG_ULONG(mean_off),
                       ENCO_ARG_MEM(rstd),
                       ENCO_ARG_ULONG(rstd_off),
                       ENCO_ARG_MEM(track ? running_mean : mean),
                       ENCO_ARG_ULONG(track ? rm_off : mean_off),
                       ENCO_ARG_MEM(track ? running_var : rstd),
                       ENCO_ARG_ULONG(track ? rv_off : rstd_off),
                       ENCO_ARG_LOCAL(4)};
    return run_cols(ctx, "batchnorm_forward", m, c, 1, NARGS(args), args);
}

enco_status enco_batchnorm_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dweight,
                                    size_t dw_off, cl_mem dbias, size_t db_off, cl_mem dy,
                                    size_t dy_off, cl_mem x, size_t x_off, cl_mem mean,
                                    size_t mean_off, cl_mem rstd, size_t rstd_off, cl_mem weight,
                                    size_t w_off, int m, int c)
{
    ENCO_TRY(check_mc("batchnorm_backward", m, c, 2));
    int affine = weight != NULL;
    if ((dweight != NULL) != affine || (dbias != NULL) != affine)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "batchnorm_backward: weight, dweight and dbias "
                                               "must all be given (affine) or all NULL");
    size_t e = (size_t)m * c;
    ENCO_TRY(need_mem(dx, dx_off, e, "dx"));
    ENCO_TRY(need_mem(dy, dy_off, e, "dy"));
    ENCO_TRY(need_mem(x, x_off, e, "x"));
    ENCO_TRY(need_mem(mean, mean_off, (size_t)c, "mean"));
    ENCO_TRY(need_mem(rstd, rstd_off, (size_t)c, "rstd"));
    if (affine) {
        ENCO_TRY(need_mem(weight, w_off, (size_t)c, "weight"));
        ENCO_TRY(need_mem(dweight, dw_off, (size_t)c, "dweight"));
        ENCO_TRY(need_mem(dbias, db_off, (size_t)c, "dbias"));
    }
    enco_arg args[] = {ENCO_ARG_INT(m),
                       ENCO_ARG_INT(c),
                       ENCO_ARG_INT(affine),
                       ENCO_ARG_MEM(dy),
                       ENCO_ARG_ULONG(dy_off),
                       ENCO_ARG_MEM(x),
                       ENCO_ARG_ULONG(x_off),
                       ENCO_ARG_MEM(mean),
                       ENCO_ARG_ULONG(mean_off),
                       ENCO_ARG_MEM(rstd),
                       ENCO_ARG_ULONG(rstd_off),
                       ENCO_ARG_MEM(affine ? weight : x),
                       ENCO_ARG_ULONG(affine ? w_off : 0),
                       ENCO_ARG_MEM(dx),
                       ENCO_ARG_ULONG(dx_off),
                       ENCO_ARG_MEM(affine ? dweight : dx),
                       ENCO_ARG_ULONG(affine ? dw_off : 0),
                       ENCO_ARG_MEM(affine ? dbias : dx),
                       ENCO_ARG_ULONG(affine ? db_off : 0),
                       ENCO_ARG_LOCAL(4),
                       ENCO_ARG_LOCAL(4)};
    return run_cols(ctx, "batchnorm_backward", m, c, 2, NARGS(args), args);
}

void enco_batchnorm_forward_ref(double *y, double *mean, double *rstd, double *running_mean,
                                double *running_var, const double *x, const double *weight,
                                const double *bias, int m, int c, double momentum)
{
    for (int j = 0; j < c; j++) {
        double mu, rs;
        stats_ref(x + j, (size_t)m, (size_t)c, &mu, &rs);
        double ga = weight ? weight[j] : 1.0, be = bias ? bias[j] : 0.0;
        for (int r = 0; r < m; r++)
            y[(size_t)r * c + j] = (x[(size_t)r * c + j] - mu) * rs * ga + be;
        if (mean)
            mean[j] = mu;
        if (rstd)
            rstd[j] = rs;
        if (running_mean && running_var) {
            double v = 0; /* sum of squared deviations: unbiased variance v / (m - 1) */
            for (int r = 0; r < m; r++)
                v += (x[(size_t)r * c + j] - mu) * (x[(size_t)r * c + j] - mu);
            running_mean[j] = (1.0 - momentum) * running_mean[j] + momentum * mu;
            running_var[j] = (1.0 - momentum) * running_var[j] + momentum * v / (m - 1);
        }
    }
}

void enco_batchnorm_backward_ref(double *dx, double *dweight, double *dbias, const double *dy,
                                 const double *x, const double *weight, int m, int c)
{
    for (int j = 0; j < c; j++) {
        double mu, rs, a = 0, b = 0;
        stats_ref(x + j, (size_t)m, (size_t)c, &mu, &rs);
        for (int r = 0; r < m; r++) {
            size_t i = (size_t)r * c + j;
            a += dy[i];
            b += dy[i] * (x[i] - mu) * rs;
        }
        double k = (weight ? weight[j] : 1.0) * rs;
        for (int r = 0; r < m; r++) {
            size_t i = (size_t)r * c + j;
            dx[i] = k * (dy[i] - a / m - (x[i] - mu) * rs * b / m);
        }
        if (dweight)
            dweight[j] += b;
        if (dbias)
            dbias[j] += a;
    }
}

enco_op_cost enco_batchnorm_forward_cost(int m, int c)
{
    double e = (double)m * c;
    return (enco_op_cost){7.0 * e, 4.0 * (4.0 * e + 8.0 * c)};
}

enco_op_cost enco_batchnorm_backward_cost(int m, int c)
{
    double e = (double)m * c;
    return (enco_op_cost){12.0 * e, 4.0 * (5.0 * e + 7.0 * c)};
}

/* ---- BatchNorm1d in stages (statistics over several processes) ------------ */

/* Element-wise kernels: one item per element of (M, C). */
static enco_status run_elems(enco_ctx *ctx, const char *kernel, int m, int c, size_t nargs,
                             enco_arg *args)
{
    size_t global = (size_t)m * (size_t)c;
    return enco_kernel_run(ctx, "norm", kernel, 1, &global, NULL, nargs, args);
}

enco_status enco_batchnorm_partial_stats(enco_ctx *ctx, cl_mem out, size_t out_off, cl_mem x,
                                         size_t x_off, cl_mem mean, size_t mean_off, int m, int c)
{
    ENCO_TRY(check_mc("batchnorm_partial_stats", m, c, 1));
    ENCO_TRY(need_mem(x, x_off, (size_t)m * c, "x"));
    ENCO_TRY(need_mem(out, out_off, (size_t)c, "out"));
    if (mean)
        ENCO_TRY(need_mem(mean, mean_off, (size_t)c, "mean"));
    enco_arg args[] = {ENCO_ARG_INT(m),
                       ENCO_ARG_INT(c),
                       ENCO_ARG_INT(mean != NULL),
                       ENCO_ARG_MEM(x),
                       ENCO_ARG_ULONG(x_off),
                       ENCO_ARG_MEM(mean ? mean : x),
                       ENCO_ARG_ULONG(mean ? mean_off : 0),
                       ENCO_ARG_MEM(out),
                       ENCO_ARG_ULONG(out_off),
                       ENCO_ARG_LOCAL(4)};
    return run_cols(ctx, "batchnorm_partial_stats", m, c, 1, NARGS(args), args);
}

enco_status enco_batchnorm_apply(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem mean,
                                 size_t mean_off, cl_mem rstd, size_t rstd_off,
                                 cl_mem running_mean, size_t rm_off, cl_mem running_var,
                                 size_t rv_off, cl_mem x, size_t x_off, cl_mem st, size_t st_off,
                                 cl_mem weight, size_t w_off, cl_mem bias, size_t b_off, int m,
                                 int c, float momentum)
{
    ENCO_TRY(check_bn_forward("batchnorm_apply", m, c, 1, y, y_off, mean, mean_off, rstd,
                              rstd_off, running_mean, rm_off, running_var, rv_off, x, x_off,
                              weight, w_off, bias, b_off, momentum));
    ENCO_TRY(need_mem(st, st_off, 3 * (size_t)c, "st"));
    int affine = weight != NULL, track = running_mean != NULL;
    enco_arg args[] = {ENCO_ARG_INT(m),
                       ENCO_ARG_INT(c),
                       ENCO_ARG_INT(affine),
                       ENCO_ARG_INT(track),
                       ENCO_ARG_FLOAT(momentum),
                       ENCO_ARG_MEM(x),
                       ENCO_ARG_ULONG(x_off),
                       ENCO_ARG_MEM(affine ? weight : x),
                       ENCO_ARG_ULONG(affine ? w_off : 0),
                       ENCO_ARG_MEM(affine ? bias : x),
                       ENCO_ARG_ULONG(affine ? b_off : 0),
                       ENCO_ARG_MEM(st),
                       ENCO_ARG_ULONG(st_off),
                       ENCO_ARG_MEM(y),
                       ENCO_ARG_ULONG(y_off),
                       ENCO_ARG_MEM(mean),
                       ENCO_ARG_ULONG(mean_off),
                       ENCO_ARG_MEM(rstd),
                       ENCO_ARG_ULONG(rstd_off),
                       ENCO_ARG_MEM(track ? running_mean : y),
                       ENCO_ARG_ULONG(track ? rm_off : y_off),
                       ENCO_ARG_MEM(track ? running_var : y),
                       ENCO_ARG_ULONG(track ? rv_off : y_off)};
    return run_elems(ctx, "batchnorm_apply", m, c, NARGS(args), args);
}

enco_status enco_batchnorm_partial_grads(enco_ctx *ctx, cl_mem out, size_t out_off,
                                         cl_mem dweight, size_t dw_off, cl_mem dbias,
                                         size_t db_off, cl_mem dy, size_t dy_off, cl_mem x,
                                         size_t x_off, cl_mem mean, size_t mean_off, cl_mem rstd,
                                         size_t rstd_off, int m, int c)
{
    ENCO_TRY(check_mc("batchnorm_partial_grads", m, c, 1));
    int affine = dweight != NULL;
    if ((dbias != NULL) != affine)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "batchnorm_partial_grads: dweight and dbias must "
                                               "both be given (affine) or both NULL");
    size_t e = (size_t)m * c, cc = (size_t)c;
    ENCO_TRY(need_mem(out, out_off, 2 * cc, "out"));
    ENCO_TRY(need_mem(dy, dy_off, e, "dy"));
    ENCO_TRY(need_mem(x, x_off, e, "x"));
    ENCO_TRY(need_mem(mean, mean_off, cc, "mean"));
    ENCO_TRY(need_mem(rstd, rstd_off, cc, "rstd"));
    if (affine) {
        ENCO_TRY(need_mem(dweight, dw_off, cc, "dweight"));
        ENCO_TRY(need_mem(dbias, db_off, cc, "dbias"));
    }
    enco_arg args[] = {ENCO_ARG_INT(m),
                       ENCO_ARG_INT(c),
                       ENCO_ARG_INT(affine),
                       ENCO_ARG_MEM(dy),
                       ENCO_ARG_ULONG(dy_off),
                       ENCO_ARG_MEM(x),
                       ENCO_ARG_ULONG(x_off),
                       ENCO_ARG_MEM(mean),
                       ENCO_ARG_ULONG(mean_off),
                       ENCO_ARG_MEM(rstd),
                       ENCO_ARG_ULONG(rstd_off),
                       ENCO_ARG_MEM(out),
                       ENCO_ARG_ULONG(out_off),
                       ENCO_ARG_MEM(affine ? dweight : out),
                       ENCO_ARG_ULONG(affine ? dw_off : 0),
                       ENCO_ARG_MEM(affine ? dbias : out),
                       ENCO_ARG_ULONG(affine ? db_off : 0),
                       ENCO_ARG_LOCAL(4),
                       ENCO_ARG_LOCAL(4)};
    return run_cols(ctx, "batchnorm_partial_grads", m, c, 2, NARGS(args), args);
}

enco_status enco_batchnorm_apply_grads(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy,
                                       size_t dy_off, cl_mem x, size_t x_off, cl_mem mean,
                                       size_t mean_off, cl_mem rstd, size_t rstd_off,
                                       cl_mem weight, size_t w_off, cl_mem gm, size_t gm_off,
                                       int m, int c)
{
    ENCO_TRY(check_mc("batchnorm_apply_grads", m, c, 1));
    size_t e = (size_t)m * c, cc = (size_t)c;
    int affine = weight != NULL;
    ENCO_TRY(need_mem(dx, dx_off, e, "dx"));
    ENCO_TRY(need_mem(dy, dy_off, e, "dy"));
    ENCO_TRY(need_mem(x, x_off, e, "x"));
    ENCO_TRY(need_mem(mean, mean_off, cc, "mean"));
    ENCO_TRY(need_mem(rstd, rstd_off, cc, "rstd"));
    ENCO_TRY(need_mem(gm, gm_off, 2 * cc, "gm"));
    if (affine)
        ENCO_TRY(need_mem(weight, w_off, cc, "weight"));
    enco_arg args[] = {ENCO_ARG_INT(m),
                       ENCO_ARG_INT(c),
                       ENCO_ARG_INT(affine),
                       ENCO_ARG_MEM(dy),
                       ENCO_ARG_ULONG(dy_off),
                       ENCO_ARG_MEM(x),
                       ENCO_ARG_ULONG(x_off),
                       ENCO_ARG_MEM(mean),
                       ENCO_ARG_ULONG(mean_off),
                       ENCO_ARG_MEM(rstd),
                       ENCO_ARG_ULONG(rstd_off),
                       ENCO_ARG_MEM(affine ? weight : x),
                       ENCO_ARG_ULONG(affine ? w_off : 0),
                       ENCO_ARG_MEM(gm),
                       ENCO_ARG_ULONG(gm_off),
                       ENCO_ARG_MEM(dx),
                       ENCO_ARG_ULONG(dx_off)};
    return run_elems(ctx, "batchnorm_apply_grads", m, c, NARGS(args), args);
}

void enco_batchnorm_global_mean(float *mean, const double *sums, double count, int c)
{
    for (int j = 0; j < c; j++)
        mean[j] = (float)(sums[j] / count);
}

void enco_batchnorm_global_var(float *rstd, float *unbiased, const double *sqdev, double count,
                               int c)
{
    for (int j = 0; j < c; j++) {
        double var = sqdev[j] / count;
        rstd[j] = (float)(1.0 / sqrt(var + ENCO_NORM_EPS));
        unbiased[j] = (float)(sqdev[j] / (count - 1.0));
    }
}

void enco_batchnorm_global_grads(float *gm, const double *sums, double count, int c)
{
    for (int j = 0; j < 2 * c; j++)
        gm[j] = (float)(sums[j] / count);
}

/* Host memory of one synchronised call: n doubles (the sums), n floats (the
 * statistics for the device) and n floats where the partial sums arrive. */
typedef struct sync_host {
    double *d;
    float *f, *in;
} sync_host;

static void sync_host_free(sync_host *h)
{
    free(h->d), free(h->f), free(h->in);
}

static enco_status sync_host_alloc(sync_host *h, size_t n)
{
    h->d = malloc(n * sizeof *h->d);
    h->f = malloc(n * sizeof *h->f);
    h->in = malloc(n * sizeof *h->in);
    if (!h->d || !h->f || !h->in) {
        sync_host_free(h);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "batchnorm_sync: out of host memory");
    }
    return ENCO_OK;
}

/* n floats of the device's partial sums, as doubles in h->d[0..n). */
static enco_status sync_fetch(enco_ctx *ctx, sync_host *h, cl_mem mem, size_t off, size_t n)
{
    ENCO_TRY(enco_download(ctx, mem, off * sizeof(float), n * sizeof(float), h->in));
    for (size_t i = 0; i < n; i++)
        h->d[i] = h->in[i];
    return ENCO_OK;
}

/* The rows of every process from the summed count (exact in double). */
static enco_status sync_count(const char *op, double total, int min_rows)
{
    if (!(total >= min_rows) || total > (double)INT32_MAX || total != floor(total))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: %g rows over all processes (batch statistics need more than 1 row)",
                         op, total);
    return ENCO_OK;
}

static enco_status sync_check(const char *op, const enco_stat_sync *sync)
{
    if (!sync || !sync->sum)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: no sum across processes given", op);
    return ENCO_OK;
}

enco_status enco_batchnorm_forward_sync(enco_ctx *ctx, const enco_stat_sync *sync,
                                        cl_mem scratch, size_t scratch_off, cl_mem y,
                                        size_t y_off, cl_mem mean, size_t mean_off, cl_mem rstd,
                                        size_t rstd_off, cl_mem running_mean, size_t rm_off,
                                        cl_mem running_var, size_t rv_off, cl_mem x, size_t x_off,
                                        cl_mem weight, size_t w_off, cl_mem bias, size_t b_off,
                                        int m, int c, float momentum)
{
    static const char op[] = "batchnorm_forward_sync";
    ENCO_TRY(sync_check(op, sync));
    ENCO_TRY(check_mc(op, m, c, 1));
    if ((running_mean == NULL) != (running_var == NULL))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: running_mean and running_var must both be "
                                               "given or both NULL", op);
    ENCO_TRY(need_mem(scratch, scratch_off, 3 * (size_t)c, "scratch"));
    ENCO_TRY(need_mem(mean, mean_off, (size_t)c, "mean"));
    ENCO_TRY(need_mem(rstd, rstd_off, (size_t)c, "rstd"));
    size_t fb = sizeof(float), cc = (size_t)c;
    /* d: the sums (and the row count); f: mean, rstd, unbiased variance, the
     * layout the apply stage reads from scratch */
    sync_host h;
    ENCO_TRY(sync_host_alloc(&h, 3 * cc));
    /* The sum of x (and the row count), then the squared deviations from the
     * global mean: the two passes of enco_batchnorm_forward. */
    enco_status st =
        enco_batchnorm_partial_stats(ctx, scratch, scratch_off, x, x_off, NULL, 0, m, c);
    if (st == ENCO_OK)
        st = sync_fetch(ctx, &h, scratch, scratch_off, cc);
    if (st == ENCO_OK) {
        h.d[cc] = (double)m;
        st = sync->sum(sync->user, h.d, cc + 1);
    }
    double count = st == ENCO_OK ? h.d[cc] : 0;
    if (st == ENCO_OK)
        st = sync_count(op, count, 2);
    if (st == ENCO_OK) {
        enco_batchnorm_global_mean(h.f, h.d, count, c);
        st = enco_upload(ctx, scratch, scratch_off * fb, cc * fb, h.f);
    }
    if (st == ENCO_OK)
        st = enco_batchnorm_partial_stats(ctx, scratch, scratch_off + cc, x, x_off, scratch,
                                          scratch_off, m, c);
    if (st == ENCO_OK)
        st = sync_fetch(ctx, &h, scratch, scratch_off + cc, cc);
    if (st == ENCO_OK)
        st = sync->sum(sync->user, h.d, cc);
    if (st == ENCO_OK) {
        enco_batchnorm_global_var(h.f + cc, h.f + 2 * cc, h.d, count, c);
        st = enco_upload(ctx, scratch, scratch_off * fb, 3 * cc * fb, h.f);
    }
    sync_host_free(&h);
    ENCO_TRY(st);
    return enco_batchnorm_apply(ctx, y, y_off, mean, mean_off, rstd, rstd_off, running_mean,
                                rm_off, running_var, rv_off, x, x_off, scratch, scratch_off,
                                weight, w_off, bias, b_off, m, c, momentum);
}

enco_status enco_batchnorm_backward_sync(enco_ctx *ctx, const enco_stat_sync *sync,
                                         cl_mem scratch, size_t scratch_off, cl_mem dx,
                                         size_t dx_off, cl_mem dweight, size_t dw_off,
                                         cl_mem dbias, size_t db_off, cl_mem dy, size_t dy_off,
                                         cl_mem x, size_t x_off, cl_mem mean, size_t mean_off,
                                         cl_mem rstd, size_t rstd_off, cl_mem weight,
                                         size_t w_off, int m, int c)
{
    static const char op[] = "batchnorm_backward_sync";
    ENCO_TRY(sync_check(op, sync));
    ENCO_TRY(check_mc(op, m, c, 1));
    int affine = weight != NULL;
    if ((dweight != NULL) != affine || (dbias != NULL) != affine)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: weight, dweight and dbias must all be given "
                                               "(affine) or all NULL", op);
    ENCO_TRY(need_mem(scratch, scratch_off, 2 * (size_t)c, "scratch"));
    size_t fb = sizeof(float), c2 = 2 * (size_t)c;
    /* This part's sums (its share of dweight, dbias); their global means. */
    ENCO_TRY(enco_batchnorm_partial_grads(ctx, scratch, scratch_off, dweight, dw_off, dbias,
                                          db_off, dy, dy_off, x, x_off, mean, mean_off, rstd,
                                          rstd_off, m, c));
    sync_host h;
    ENCO_TRY(sync_host_alloc(&h, c2 + 1));
    enco_status st = sync_fetch(ctx, &h, scratch, scratch_off, c2);
    if (st == ENCO_OK) {
        h.d[c2] = (double)m;
        st = sync->sum(sync->user, h.d, c2 + 1);
    }
    if (st == ENCO_OK)
        st = sync_count(op, h.d[c2], 2);
    if (st == ENCO_OK) {
        enco_batchnorm_global_grads(h.f, h.d, h.d[c2], c);
        st = enco_upload(ctx, scratch, scratch_off * fb, c2 * fb, h.f);
    }
    sync_host_free(&h);
    ENCO_TRY(st);
    return enco_batchnorm_apply_grads(ctx, dx, dx_off, dy, dy_off, x, x_off, mean, mean_off, rstd,
                                      rstd_off, weight, w_off, scratch, scratch_off, m, c);
}

/* ---- LayerNorm ------------------------------------------------------------ */

enco_status enco_layernorm_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem mean,
                                   size_t mean_off, cl_mem rstd, size_t rstd_off, cl_mem x,
                                   size_t x_off, cl_mem weight, size_t w_off, cl_mem bias,
                                   size_t b_off, int m, int c)
{
    ENCO_TRY(check_mc("layernorm_forward", m, c, 1));
    size_t e = (size_t)m * c;
    ENCO_TRY(need_mem(x, x_off, e, "x"));
    ENCO_TRY(need_mem(y, y_off, e, "y"));
    ENCO_TRY(need_mem(mean, mean_off, (size_t)m, "mean"));
    ENCO_TRY(need_mem(rstd, rstd_off, (size_t)m, "rstd"));
    ENCO_TRY(need_mem(weight, w_off, (size_t)c, "weight"));
    ENCO_TRY(need_mem(bias, b_off, (size_t)c, "bias"));
    enco_arg args[] = {ENCO_ARG_INT(c),        ENCO_ARG_INT(ENCO_NORM_ACT_NONE),
                       ENCO_ARG_FLOAT(0),      ENCO_ARG_INT(1),
                       ENCO_ARG_MEM(x),        ENCO_ARG_ULONG(x_off),
                       ENCO_ARG_MEM(weight),   ENCO_ARG_ULONG(w_off),
                       ENCO_ARG_MEM(bias),     ENCO_ARG_ULONG(b_off),
                       ENCO_ARG_MEM(y),        ENCO_ARG_ULONG(y_off),
                       ENCO_ARG_MEM(mean),     ENCO_ARG_ULONG(mean_off),
                       ENCO_ARG_MEM(rstd),     ENCO_ARG_ULONG(rstd_off),
                       ENCO_ARG_LOCAL(4)};
    return run_rows(ctx, "norm_rows_forward", (size_t)m, (size_t)c, 1, NARGS(args), args);
}

enco_status enco_layernorm_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dweight,
                                    size_t dw_off, cl_mem dbias, size_t db_off, cl_mem dy,
                                    size_t dy_off, cl_mem x, size_t x_off, cl_mem mean,
                                    size_t mean_off, cl_mem rstd, size_t rstd_off, cl_mem weight,
                                    size_t w_off, int m, int c)
{
    ENCO_TRY(check_mc("layernorm_backward", m, c, 1));
    size_t e = (size_t)m * c;
    ENCO_TRY(need_mem(dx, dx_off, e, "dx"));
    ENCO_TRY(need_mem(dy, dy_off, e, "dy"));
    ENCO_TRY(need_mem(x, x_off, e, "x"));
    ENCO_TRY(need_mem(mean, mean_off, (size_t)m, "mean"));
    ENCO_TRY(need_mem(rstd, rstd_off, (size_t)m, "rstd"));
    ENCO_TRY(need_mem(weight, w_off, (size_t)c, "weight"));
    ENCO_TRY(need_mem(dweight, dw_off, (size_t)c, "dweight"));
    ENCO_TRY(need_mem(dbias, db_off, (size_t)c, "dbias"));
    enco_arg a1[] = {ENCO_ARG_INT(c),      ENCO_ARG_INT(ENCO_NORM_ACT_NONE),
                     ENCO_ARG_FLOAT(0),    ENCO_ARG_INT(1),
                     ENCO_ARG_MEM(dy),     ENCO_ARG_ULONG(dy_off),
                     ENCO_ARG_MEM(x),      ENCO_ARG_ULONG(x_off),
                     ENCO_ARG_MEM(mean),   ENCO_ARG_ULONG(mean_off),
                     ENCO_ARG_MEM(rstd),   ENCO_ARG_ULONG(rstd_off),
                     ENCO_ARG_MEM(weight), ENCO_ARG_ULONG(w_off),
                     ENCO_ARG_MEM(dx),     ENCO_ARG_ULONG(dx_off),
                     ENCO_ARG_LOCAL(4),    ENCO_ARG_LOCAL(4)};
    ENCO_TRY(run_rows(ctx, "norm_rows_backward", (size_t)m, (size_t)c, 2, NARGS(a1), a1));
    enco_arg a2[] = {ENCO_ARG_INT(m),       ENCO_ARG_INT(c),
                     ENCO_ARG_MEM(dy),      ENCO_ARG_ULONG(dy_off),
                     ENCO_ARG_MEM(x),       ENCO_ARG_ULONG(x_off),
                     ENCO_ARG_MEM(mean),    ENCO_ARG_ULONG(mean_off),
                     ENCO_ARG_MEM(rstd),    ENCO_ARG_ULONG(rstd_off),
                     ENCO_ARG_MEM(dweight), ENCO_ARG_ULONG(dw_off),
                     ENCO_ARG_MEM(dbias),   ENCO_ARG_ULONG(db_off),
                     ENCO_ARG_LOCAL(4),     ENCO_ARG_LOCAL(4)};
    return run_cols(ctx, "layernorm_backward_params", m, c, 2, NARGS(a2), a2);
}

void enco_layernorm_forward_ref(double *y, double *mean, double *rstd, const double *x,
                                const double *weight, const double *bias, int m, int c)
{
    for (int r = 0; r < m; r++) {
        const double *xr = x + (size_t)r * c;
        double mu, rs;
        stats_ref(xr, (size_t)c, 1, &mu, &rs);
        for (int j = 0; j < c; j++)
            y[(size_t)r * c + j] = (xr[j] - mu) * rs * weight[j] + bias[j];
        if (mean)
            mean[r] = mu;
        if (rstd)
            rstd[r] = rs;
    }
}

void enco_layernorm_backward_ref(double *dx, double *dweight, double *dbias, const double *dy,
                                 const double *x, const double *weight, int m, int c)
{
    for (int r = 0; r < m; r++) {
        const double *xr = x + (size_t)r * c, *gr = dy + (size_t)r * c;
        double mu, rs, a = 0, b = 0;
        stats_ref(xr, (size_t)c, 1, &mu, &rs);
        for (int j = 0; j < c; j++) {
            double xh = (xr[j] - mu) * rs, g = gr[j] * weight[j];
            a += g;
            b += g * xh;
            dweight[j] += gr[j] * xh;
            dbias[j] += gr[j];
        }
        for (int j = 0; j < c; j++) {
            double xh = (xr[j] - mu) * rs, g = gr[j] * weight[j];
            dx[(size_t)r * c + j] = rs * (g - a / c - xh * b / c);
        }
    }
}

enco_op_cost enco_layernorm_forward_cost(int m, int c)
{
    double e = (double)m * c;
    return (enco_op_cost){8.0 * e, 4.0 * (4.0 * e + 2.0 * c + 2.0 * m)};
}

enco_op_cost enco_layernorm_backward_cost(int m, int c)
{
    double e = (double)m * c;
    return (enco_op_cost){20.0 * e, 4.0 * (8.0 * e + 5.0 * c + 4.0 * m)};
}
