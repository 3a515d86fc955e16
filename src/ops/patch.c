/* Patch gather / scatter-add, per-row L2 normalisation and bilinear resize:
 * launchers and float64 references. */
#include "ops/patch.h"

#include <limits.h>
#include <math.h>

/* ---- argument checks ---------------------------------------------------- */

/* mem must hold elements [off, off + n) of 4-byte values (float or int32). */
static enco_status check_buf(const char *op, const char *name, cl_mem mem, size_t off, size_t n)
{
    return enco_check_range(op, name, mem, off, n, 4);
}

static enco_status check_disjoint(const char *op, const char *an_, cl_mem a, size_t ao, size_t an,
                                  const char *bn_, cl_mem b, size_t bo, size_t bn)
{
    return enco_check_disjoint(op, an_, a, ao, an, bn_, b, bo, bn);
}

/* Every size > 0, and the element counts the kernels index with int fit. */
static enco_status check_sizes(const char *op, enco_ctx *ctx, size_t count, const size_t *dims,
                               const char *names)
{
    if (!ctx)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: ctx is NULL", op);
    for (size_t i = 0; i < count; i++)
        if (dims[i] == 0 || dims[i] > INT_MAX)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                             "%s: bad shape (%s) : dimension %zu is %zu (must be in [1, INT_MAX])",
                             op, names, i, dims[i]);
    return ENCO_OK;
}

/* ---- gather ------------------------------------------------------------ */

static enco_status gather_checks(const char *op, enco_ctx *ctx, cl_mem big, size_t big_off,
                                 const char *big_name, cl_mem rows, size_t rows_off,
                                 const char *rows_name, cl_mem idx, size_t idx_off, cl_mem flag,
                                 size_t flag_off, size_t n, size_t c, size_t h, size_t w, size_t k)
{
    const size_t dims[5] = {n, c, h, w, k};
    ENCO_TRY(check_sizes(op, ctx, 5, dims, "N, C, H, W, K"));
    if (h * w > INT_MAX || n * k > INT_MAX - 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: H*W (%zu) or N*K (%zu) too large", op, h * w,
                         n * k);
    ENCO_TRY(check_buf(op, big_name, big, big_off, n * c * h * w));
    ENCO_TRY(check_buf(op, rows_name, rows, rows_off, n * k * c));
    ENCO_TRY(check_buf(op, "idx", idx, idx_off, n * k));
    ENCO_TRY(check_disjoint(op, big_name, big, big_off, n * c * h * w, rows_name, rows, rows_off,
                            n * k * c));
    ENCO_TRY(check_disjoint(op, big_name, big, big_off, n * c * h * w, "idx", idx, idx_off, n * k));
    ENCO_TRY(check_disjoint(op, rows_name, rows, rows_off, n * k * c, "idx", idx, idx_off, n * k));
    if (flag) {
        ENCO_TRY(check_buf(op, "flag", flag, flag_off, 1));
        ENCO_TRY(check_disjoint(op, "flag", flag, flag_off, 1, big_name, big, big_off,
                                n * c * h * w));
        ENCO_TRY(check_disjoint(op, "flag", flag, flag_off, 1, rows_name, rows, rows_off,
                                n * k * c));
        ENCO_TRY(check_disjoint(op, "flag", flag, flag_off, 1, "idx", idx, idx_off, n * k));
    }
    return ENCO_OK;
}

enco_status enco_patch_gather_forward(enco_ctx *ctx, cl_mem rows, size_t rows_off, cl_mem feat,
                                      size_t feat_off, cl_mem idx, size_t idx_off, cl_mem flag,
                                      size_t flag_off, size_t n, size_t c, size_t h, size_t w,
                                      size_t k)
{
    ENCO_TRY(gather_checks("patch_gather_forward", ctx, feat, feat_off, "feat", rows, rows_off,
                           "rows", idx, idx_off, flag, flag_off, n, c, h, w, k));
    const size_t total = n * k * c, local = 256;
    /* Without a flag, idx stands in for it and is never written (use_flag 0). */
    return ENCO_RUN(ctx, "patch", "patch_gather_fwd", 1, &total, &local, ENCO_ARG_ULONG(total),
                    ENCO_ARG_INT(c), ENCO_ARG_INT(k), ENCO_ARG_INT(h * w), ENCO_ARG_MEM(rows),
                    ENCO_ARG_ULONG(rows_off), ENCO_ARG_MEM(feat), ENCO_ARG_ULONG(feat_off),
                    ENCO_ARG_MEM(idx), ENCO_ARG_ULONG(idx_off), ENCO_ARG_INT(flag != NULL),
                    ENCO_ARG_MEM(flag ? flag : idx), ENCO_ARG_ULONG(flag ? flag_off : 0));
}

enco_status enco_patch_gather_backward(enco_ctx *ctx, cl_mem dfeat, size_t dfeat_off, cl_mem drows,
                                       size_t drows_off, cl_mem idx, size_t idx_off, cl_mem flag,
                                       size_t flag_off, size_t n, size_t c, size_t h, size_t w,
                                       size_t k)
{
    ENCO_TRY(gather_checks("patch_gather_backward", ctx, dfeat, dfeat_off, "dfeat", drows,
                           drows_off, "drows", idx, idx_off, flag, flag_off, n, c, h, w, k));
    if (n * c > INT_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "patch_gather_backward: N*C too large");
    const size_t total = n * c, local = 64;
    return ENCO_RUN(ctx, "patch", "patch_gather_bwd", 1, &total, &local, ENCO_ARG_INT(n),
                    ENCO_ARG_INT(c), ENCO_ARG_INT(k), ENCO_ARG_INT(h * w), ENCO_ARG_MEM(dfeat),
                    ENCO_ARG_ULONG(dfeat_off), ENCO_ARG_MEM(drows), ENCO_ARG_ULONG(drows_off),
                    ENCO_ARG_MEM(idx), ENCO_ARG_ULONG(idx_off), ENCO_ARG_INT(flag != NULL),
                    ENCO_ARG_MEM(flag ? flag : idx), ENCO_ARG_ULONG(flag ? flag_off : 0));
}

enco_status enco_patch_flag_check(enco_ctx *ctx, cl_mem flag, size_t flag_off, size_t k,
                                  size_t hw)
{
    const char *op = "patch_flag_check";
    if (!ctx)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: ctx is NULL", op);
    if (k == 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: K must be > 0", op);
    ENCO_TRY(check_buf(op, "flag", flag, flag_off, 1));
    cl_int v = 0;
    const cl_int zero = 0;
    ENCO_TRY(enco_download(ctx, flag, flag_off * sizeof(cl_int), sizeof v, &v));
    if (v == 0)
        return ENCO_OK;
    ENCO_TRY(enco_upload(ctx, flag, flag_off * sizeof(cl_int), sizeof zero, &zero));
    size_t pos = (size_t)v - 1;
    return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                     "patch indices: entry (n %zu, k %zu) is out of range [0, %zu) (the gather "
                     "gave it a zero row and the backward skipped it)",
                     pos / k, pos % k, hw);
}

enco_status enco_patch_check_indices(const int32_t *idx, size_t n, size_t k, size_t hw)
{
    if (!idx || n == 0 || k == 0 || hw == 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "patch_check_indices: NULL indices or an empty shape (N %zu, K %zu, H*W %zu)",
                         n, k, hw);
    for (size_t i = 0; i < n * k; i++)
        if (idx[i] < 0 || (size_t)idx[i] >= hw)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                             "patch indices: entry (n %zu, k %zu) is %d, outside [0, %zu)", i / k,
                             i % k, (int)idx[i], hw);
    return ENCO_OK;
}

void enco_patch_gather_forward_ref(double *rows, const double *feat, const int32_t *idx,
                                   size_t n, size_t c, size_t h, size_t w, size_t k)
{
    size_t hw = h * w;
    for (size_t b = 0; b < n; b++)
        for (size_t j = 0; j < k; j++) {
            int32_t i = idx[b * k + j];
            for (size_t ch = 0; ch < c; ch++)
                rows[(b * k + j) * c + ch] =
                    (i >= 0 && (size_t)i < hw) ? feat[(b * c + ch) * hw + (size_t)i] : 0.0;
        }
}

void enco_patch_gather_backward_ref(double *dfeat, const double *drows, const int32_t *idx,
                                    size_t n, size_t c, size_t h, size_t w, size_t k)
{
    size_t hw = h * w;
    for (size_t b = 0; b < n; b++)
        for (size_t j = 0; j < k; j++) {
            int32_t i = idx[b * k + j];
            if (i < 0 || (size_t)i >= hw)
                continue;
            for (size_t ch = 0; ch < c; ch++)
                dfeat[(b * c + ch) * hw + (size_t)i] += drows[(b * k + j) * c + ch];
        }
}

/* N*K items read one index and move one float each way per channel. */
enco_op_cost enco_patch_gather_cost(size_t n, size_t c, size_t k, int backward)
{
    double e = (double)n * (double)k * (double)c, ix = 4.0 * (double)n * (double)k;
    if (!backward)
        return (enco_op_cost){0.0, ix + 8.0 * e};
    return (enco_op_cost){e, ix + 12.0 * e};
}

/* ---- L2 normalisation ---------------------------------------------------- */

static size_t l2norm_local(size_t dim)
{
    size_t l = 1;
    while (l < dim && l < 256)
        l *= 2;
    return l;
}

static enco_status l2norm_checks(const char *op, enco_ctx *ctx, size_t rows, size_t dim)
{
    const size_t dims[2] = {rows, dim};
    ENCO_TRY(check_sizes(op, ctx, 2, dims, "rows, dim"));
    return ENCO_OK;
}

enco_status enco_l2norm_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x, size_t x_off,
                                size_t rows, size_t dim)
{
    const char *op = "l2norm_forward";
    ENCO_TRY(l2norm_checks(op, ctx, rows, dim));
    size_t e = rows * dim;
    ENCO_TRY(check_buf(op, "y", y, y_off, e));
    ENCO_TRY(check_buf(op, "x", x, x_off, e));
    if (!(y == x && y_off == x_off))
        ENCO_TRY(check_disjoint(op, "y", y, y_off, e, "x", x, x_off, e));
    const size_t local = l2norm_local(dim), global = rows * local;
    return ENCO_RUN(ctx, "patch", "patch_l2norm_fwd", 1, &global, &local, ENCO_ARG_INT(dim),
                    ENCO_ARG_FLOAT(ENCO_L2NORM_EPS), ENCO_ARG_MEM(y), ENCO_ARG_ULONG(y_off),
                    ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off), ENCO_ARG_LOCAL(local * sizeof(float)));
}

enco_status enco_l2norm_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy, size_t dy_off,
                                 cl_mem x, size_t x_off, size_t rows, size_t dim)
{
    const char *op = "l2norm_backward";
    ENCO_TRY(l2norm_checks(op, ctx, rows, dim));
    size_t e = rows * dim;
    ENCO_TRY(check_buf(op, "dx", dx, dx_off, e));
    ENCO_TRY(check_buf(op, "dy", dy, dy_off, e));
    ENCO_TRY(check_buf(op, "x", x, x_off, e));
    /* Each element is read and written by the same work-item only, so dx may
     * be dy or x at the same offset; partial overlaps are refused. */
    if (!(dx == dy && dx_off == dy_off))
        ENCO_TRY(check_disjoint(op, "dx", dx, dx_off, e, "dy", dy, dy_off, e));
    if (!(dx == x && dx_off == x_off))
        ENCO_TRY(check_disjoint(op, "dx", dx, dx_off, e, "x", x, x_off, e));
    const size_t local = l2norm_local(dim), global = rows * local;
    return ENCO_RUN(ctx, "patch", "patch_l2norm_bwd", 1, &global, &local, ENCO_ARG_INT(dim),
                    ENCO_ARG_FLOAT(ENCO_L2NORM_EPS), ENCO_ARG_MEM(dx), ENCO_ARG_ULONG(dx_off),
                    ENCO_ARG_MEM(dy), ENCO_ARG_ULONG(dy_off), ENCO_ARG_MEM(x),
                    ENCO_ARG_ULONG(x_off), ENCO_ARG_LOCAL(local * sizeof(float)));
}

void enco_l2norm_forward_ref(double *y, const double *x, size_t rows, size_t dim, double eps)
{
    for (size_t r = 0; r < rows; r++) {
        const double *xr = x + r * dim;
        double ss = 0;
        for (size_t j = 0; j < dim; j++)
            ss += xr[j] * xr[j];
        double d = sqrt(ss) + eps;
        for (size_t j = 0; j < dim; j++)
            y[r * dim + j] = xr[j] / d;
    }
}

void enco_l2norm_backward_ref(double *dx, const double *dy, const double *x, size_t rows,
                              size_t dim, double eps)
{
    for (size_t r = 0; r < rows; r++) {
        const double *xr = x + r * dim, *gr = dy + r * dim;
        double ss = 0, gx = 0;
        for (size_t j = 0; j < dim; j++) {
            ss += xr[j] * xr[j];
            gx += gr[j] * xr[j];
        }
        double s = sqrt(ss), d = s + eps;
        double coef = s > 0 ? gx / (d * d * s) : 0.0;
        for (size_t j = 0; j < dim; j++)
            dx[r * dim + j] = gr[j] / d - xr[j] * coef;
    }
}

enco_op_cost enco_l2norm_cost(size_t rows, size_t dim, int backward)
{
    double e = (double)rows * (double)dim;
    if (!backward)
        return (enco_op_cost){3.0 * e, 8.0 * e};
    return (enco_op_cost){7.0 * e, 12.0 * e};
}

/* ---- bilinear resize ------------------------------------------------------ */

enco_status enco_bilinear_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x, size_t x_off,
                                  size_t n, size_t c, size_t h, size_t w, size_t out_h,
                                  size_t out_w)
{
    const char *op = "bilinear_forward";
    const size_t dims[6] = {n, c, h, w, out_h, out_w};
    ENCO_TRY(check_sizes(op, ctx, 6, dims, "N, C, h, w, H, W"));
    if (h * w > INT_MAX || out_h * out_w > INT_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: a plane of more than INT_MAX elements", op);
    size_t in_e = n * c * h * w, out_e = n * c * out_h * out_w;
    ENCO_TRY(check_buf(op, "y", y, y_off, out_e));
    ENCO_TRY(check_buf(op, "x", x, x_off, in_e));
    ENCO_TRY(check_disjoint(op, "y", y, y_off, out_e, "x", x, x_off, in_e));
    /* PyTorch computes the scale in float: (float)in / out. */
    const float scale_h = (float)h / (float)out_h, scale_w = (float)w / (float)out_w;
    const size_t local = 256;
    return ENCO_RUN(ctx, "patch", "patch_bilinear_fwd", 1, &out_e, &local, ENCO_ARG_ULONG(out_e),
                    ENCO_ARG_INT(h), ENCO_ARG_INT(w), ENCO_ARG_INT(out_h), ENCO_ARG_INT(out_w),
                    ENCO_ARG_FLOAT(scale_h), ENCO_ARG_FLOAT(scale_w), ENCO_ARG_MEM(y),
                    ENCO_ARG_ULONG(y_off), ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off));
}

static void bilinear_axis(size_t dst, size_t in, size_t out, size_t *i0, size_t *i1, double *l)
{
    double src = ((double)dst + 0.5) * (double)in / (double)out - 0.5;
    if (src < 0)
        src = 0;
    size_t a = (size_t)floor(src);
    if (a > in - 1)
        a = in - 1;
    double t = src - (double)a;
    *l = t < 0 ? 0 : (t > 1 ? 1 : t);
    *i0 = a;
    *i1 = a + 1 < in ? a + 1 : a;
}

void enco_bilinear_forward_ref(double *y, const double *x, size_t n, size_t c, size_t h, size_t w,
                               size_t out_h, size_t out_w)
{
    for (size_t p = 0; p < n * c; p++) {
        const double *xp = x + p * h * w;
        for (size_t oy = 0; oy < out_h; oy++) {
            size_t y0, y1;
            double ly;
            bilinear_axis(oy, h, out_h, &y0, &y1, &ly);
            for (size_t ox = 0; ox < out_w; ox++) {
                size_t x0, x1;
                double lx;
                bilinear_axis(ox, w, out_w, &x0, &x1, &lx);
                double top = (1 - lx) * xp[y0 * w + x0] + lx * xp[y0 * w + x1];
                double bot = (1 - lx) * xp[y1 * w + x0] + lx * xp[y1 * w + x1];
                y[(p * out_h + oy) * out_w + ox] = (1 - ly) * top + ly * bot;
            }
        }
    }
}

/* Six multiplies and three adds per output; traffic at minimum reads the
 * input once and writes the output. */
enco_op_cost enco_bilinear_cost(size_t n, size_t c, size_t h, size_t w, size_t out_h,
                                size_t out_w)
{
    double in_e = (double)n * c * h * w, out_e = (double)n * c * out_h * out_w;
    return (enco_op_cost){9.0 * out_e, 4.0 * (in_e + out_e)};
}
