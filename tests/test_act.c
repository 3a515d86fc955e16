/* Elementwise activations, residual add and vector helpers. */
#include "harness.h"
#include "ops/act.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOPE 0.2f

static const size_t sizes_full[] = {1, 37, 1000, 4099};
static const size_t sizes_tiny[] = {1, 37, 300};

static const size_t *test_sizes(size_t *count)
{
    if (test_on_oclgrind()) {
        *count = sizeof sizes_tiny / sizeof sizes_tiny[0];
        return sizes_tiny;
    }
    *count = sizeof sizes_full / sizeof sizes_full[0];
    return sizes_full;
}

/* Random data in [-2, 2) with exact zeros (both signs) sprinkled in, so the
 * kinks are exercised. */
static float *make_input(size_t n, uint64_t seed)
{
    float *x = malloc(n * sizeof(float));
    ck_assert_ptr_nonnull(x);
    test_fill_uniform(x, n, seed, -2.0f, 2.0f);
    for (size_t i = 3; i < n; i += 7)
        x[i] = (i % 2) ? 0.0f : -0.0f;
    return x;
}

static double *to_f64(const float *x, size_t n)
{
    double *d = malloc(n * sizeof(double));
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

static double *alloc_f64(size_t n)
{
    double *d = calloc(n, sizeof(double));
    ck_assert_ptr_nonnull(d);
    return d;
}

/* A zeroed device buffer written from the host. (test_alloc zeroes with
 * clEnqueueFillBuffer, and Oclgrind 21.10 then reports later kernel reads of
 * that buffer as uninitialised even after a kernel has written it.) */
static cl_mem dev_zeros(size_t n)
{
    float *z = calloc(n, sizeof(float));
    ck_assert_ptr_nonnull(z);
    cl_mem m = test_upload(z, n);
    free(z);
    return m;
}

enum op { OP_RELU, OP_LEAKY, OP_TANH };
static const char *op_name[] = {"relu", "leaky_relu", "tanh"};

static enco_status run_fwd(enum op op, cl_mem y, size_t y_off, cl_mem x, size_t x_off, size_t n)
{
    enco_ctx *ctx = test_ctx();
    switch (op) {
    case OP_RELU:
        return enco_relu_forward(ctx, y, y_off, x, x_off, n);
    case OP_LEAKY:
        return enco_leaky_relu_forward(ctx, y, y_off, x, x_off, n, SLOPE);
    default:
        return enco_tanh_forward(ctx, y, y_off, x, x_off, n);
    }
}

/* `saved` is x for ReLU / LeakyReLU, y for Tanh. */
static enco_status run_bwd(enum op op, cl_mem dx, size_t dx_off, cl_mem dy, size_t dy_off,
                           cl_mem saved, size_t s_off, size_t n)
{
    enco_ctx *ctx = test_ctx();
    switch (op) {
    case OP_RELU:
        return enco_relu_backward(ctx, dx, dx_off, dy, dy_off, saved, s_off, n);
    case OP_LEAKY:
        return enco_leaky_relu_backward(ctx, dx, dx_off, dy, dy_off, saved, s_off, n, SLOPE);
    default:
        return enco_tanh_backward(ctx, dx, dx_off, dy, dy_off, saved, s_off, n);
    }
}

static void ref_fwd(enum op op, double *y, const double *x, size_t n)
{
    switch (op) {
    case OP_RELU:
        enco_relu_forward_ref(y, x, n);
        break;
    case OP_LEAKY:
        enco_leaky_relu_forward_ref(y, x, n, (double)SLOPE);
        break;
    default:
        enco_tanh_forward_ref(y, x, n);
    }
}

static void ref_bwd(enum op op, double *dx, const double *dy, const double *saved, size_t n)
{
    switch (op) {
    case OP_RELU:
        enco_relu_backward_ref(dx, dy, saved, n);
        break;
    case OP_LEAKY:
        enco_leaky_relu_backward_ref(dx, dy, saved, n, (double)SLOPE);
        break;
    default:
        enco_tanh_backward_ref(dx, dy, saved, n);
    }
}

static const double op_rtol[] = {0, 1e-7, 2e-6};
static const double op_atol[] = {0, 1e-12, 1e-6};

/* ---- forward / backward vs reference ------------------------------------ */

START_TEST(unary_forward_backward)
{
    enum op op = (enum op)_i;
    size_t ns;
    const size_t *sizes = test_sizes(&ns);
    for (size_t s = 0; s < ns; s++) {
        size_t n = sizes[s];
        const size_t off = 5; /* every buffer used at an offset */
        float *x = make_input(n, 100 + n);
        float *dy = malloc(n * sizeof(float));
        test_fill_uniform(dy, n, 200 + n, -1.0f, 1.0f);
        float *pad = calloc(n + 2 * off, sizeof(float));
        memcpy(pad + off, x, n * sizeof(float));
        cl_mem bx = test_upload(pad, n + 2 * off);
        memcpy(pad + off, dy, n * sizeof(float));
        cl_mem bdy = test_upload(pad, n + 2 * off);
        cl_mem by = dev_zeros(n + 2 * off);
        cl_mem bdx = dev_zeros(n + 2 * off);

        ENCO_CK(run_fwd(op, by, off, bx, off, n));
        float *y = test_download(by, n + 2 * off);
        double *xd = to_f64(x, n), *yref = alloc_f64(n);
        ref_fwd(op, yref, xd, n);
        char what[64];
        snprintf(what, sizeof what, "%s_forward n=%zu", op_name[op], n);
        test_assert_close(what, y + off, yref, n, op_atol[op], op_rtol[op]);
        /* Nothing outside [off, off + n) was touched. */
        for (size_t i = 0; i < off; i++)
            ck_assert(y[i] == 0.0f && y[off + n + i] == 0.0f);

        /* Tanh's backward takes the saved output: use the device's own. */
        cl_mem saved = op == OP_TANH ? by : bx;
        ENCO_CK(run_bwd(op, bdx, off, bdy, off, saved, off, n));
        float *dx = test_download(bdx, n + 2 * off);
        double *dyd = to_f64(dy, n), *dxref = alloc_f64(n);
        double *sd = op == OP_TANH ? to_f64(y + off, n) : to_f64(x, n);
        ref_bwd(op, dxref, dyd, sd, n);
        snprintf(what, sizeof what, "%s_backward n=%zu", op_name[op], n);
        test_assert_close(what, dx + off, dxref, n, op_atol[op], op_rtol[op]);

        /* Determinism: a second launch is bitwise identical. */
        cl_mem by2 = dev_zeros(n + 2 * off), bdx2 = dev_zeros(n + 2 * off);
        ENCO_CK(run_fwd(op, by2, off, bx, off, n));
        ENCO_CK(run_bwd(op, bdx2, off, bdy, off, saved, off, n));
        float *y2 = test_download(by2, n + 2 * off), *dx2 = test_download(bdx2, n + 2 * off);
        test_assert_bitwise(what, y, y2, n + 2 * off);
        test_assert_bitwise(what, dx, dx2, n + 2 * off);

        /* In place: y = f(y), then dy = f'(dy) on the same buffer. */
        ENCO_CK(run_fwd(op, bx, off, bx, off, n));
        float *yin = test_download(bx, n + 2 * off);
        test_assert_bitwise("in-place forward", yin, y, n + 2 * off);
        ENCO_CK(run_bwd(op, bdy, off, bdy, off, op == OP_TANH ? by : bx, off, n));
        float *dxin = test_download(bdy, n + 2 * off);
        test_assert_bitwise("in-place backward", dxin, dx, n + 2 * off);

        free(x), free(dy), free(pad), free(y), free(dx), free(y2), free(dx2), free(yin),
            free(dxin);
        free(xd), free(yref), free(dyd), free(dxref), free(sd);
        test_release(bx), test_release(bdy), test_release(by), test_release(bdx);
        test_release(by2), test_release(bdx2);
    }
}
END_TEST

/* Reference backward vs central differences of the reference forward (away
 * from the kinks, where the derivative exists). */
START_TEST(unary_finite_differences)
{
    enum op op = (enum op)_i;
    enum { N = 24 };
    double x[N], g[N], y[N], dx[N], yp[N], ym[N];
    test_fill_uniform_f64(x, N, 7, -2.0, 2.0);
    test_fill_uniform_f64(g, N, 8, -1.0, 1.0);
    for (size_t i = 0; i < N; i++)
        if (fabs(x[i]) < 0.05)
            x[i] = 0.3;
    ref_fwd(op, y, x, N);
    ref_bwd(op, dx, g, op == OP_TANH ? y : x, N);
    const double h = 1e-6;
    double fd[N];
    for (size_t i = 0; i < N; i++) {
        double xi = x[i], lp = 0, lm = 0;
        x[i] = xi + h;
        ref_fwd(op, yp, x, N);
        x[i] = xi - h;
        ref_fwd(op, ym, x, N);
        x[i] = xi;
        for (size_t j = 0; j < N; j++) {
            lp += g[j] * yp[j];
            lm += g[j] * ym[j];
        }
        fd[i] = (lp - lm) / (2 * h);
    }
    float got[N];
    for (size_t i = 0; i < N; i++)
        got[i] = (float)dx[i];
    char what[64];
    snprintf(what, sizeof what, "%s_ref_backward_vs_fd", op_name[op]);
    /* got is rounded to float: compare at float precision. */
    double ref_fd[N];
    memcpy(ref_fd, fd, sizeof fd);
    test_assert_close(what, got, ref_fd, N, 1e-7, 1e-6);
}
END_TEST

/* PyTorch 1.13: relu'(0) = 0, leaky_relu'(0) = slope, relu(-0) = -0,
 * relu(NaN) = NaN (checked with torch interactively). */
START_TEST(kinks_follow_pytorch)
{
    const float x[5] = {-1.0f, 0.0f, -0.0f, 1.0f, NAN};
    const float ones[5] = {1, 1, 1, 1, 1};
    cl_mem bx = test_upload(x, 5), bg = test_upload(ones, 5), bo = dev_zeros(5);
    ENCO_CK(enco_relu_backward(test_ctx(), bo, 0, bg, 0, bx, 0, 4));
    float *d = test_download(bo, 4);
    ck_assert(d[0] == 0.0f && d[1] == 0.0f && d[2] == 0.0f && d[3] == 1.0f);
    free(d);
    ENCO_CK(enco_leaky_relu_backward(test_ctx(), bo, 0, bg, 0, bx, 0, 4, SLOPE));
    d = test_download(bo, 4);
    ck_assert(d[0] == SLOPE && d[1] == SLOPE && d[2] == SLOPE && d[3] == 1.0f);
    free(d);
    ENCO_CK(enco_relu_forward(test_ctx(), bo, 0, bx, 0, 5));
    d = test_download(bo, 5);
    ck_assert(d[0] == 0.0f && d[1] == 0.0f && !signbit(d[1]) && d[2] == 0.0f && signbit(d[2]) &&
              d[3] == 1.0f && isnan(d[4]));
    free(d);
    ENCO_CK(enco_leaky_relu_forward(test_ctx(), bo, 0, bx, 0, 5, SLOPE));
    d = test_download(bo, 5);
    ck_assert(d[0] == -SLOPE && d[1] == 0.0f && d[3] == 1.0f && isnan(d[4]));
    free(d);
    test_release(bx), test_release(bg), test_release(bo);
}
END_TEST

/* ---- residual add ----------------------------------------------------- */

START_TEST(add_forward_backward)
{
    size_t ns;
    const size_t *sizes = test_sizes(&ns);
    for (size_t s = 0; s < ns; s++) {
        size_t n = sizes[s];
        float *a = make_input(n, 300 + n), *b = make_input(n, 400 + n), *g = make_input(n, 500);
        /* a and b live in one buffer at offsets 0 and n, the output at 2n. */
        float *host = calloc(3 * n, sizeof(float));
        memcpy(host, a, n * sizeof(float));
        memcpy(host + n, b, n * sizeof(float));
        cl_mem buf = test_upload(host, 3 * n);
        ENCO_CK(enco_add_forward(test_ctx(), buf, 2 * n, buf, 0, buf, n, n));
        float *out = test_download(buf, 3 * n);
        double *ad = to_f64(a, n), *bd = to_f64(b, n), *ref = alloc_f64(n);
        enco_add_forward_ref(ref, ad, bd, n);
        test_assert_close("add_forward", out + 2 * n, ref, n, 0, 1e-7);

        cl_mem bg = test_upload(g, n), bda = dev_zeros(n), bdb = dev_zeros(n);
        ENCO_CK(enco_add_backward(test_ctx(), bda, 0, bdb, 0, bg, 0, n));
        float *da = test_download(bda, n), *db = test_download(bdb, n);
        double *gd = to_f64(g, n), *dar = alloc_f64(n), *dbr = alloc_f64(n);
        enco_add_backward_ref(dar, dbr, gd, n);
        test_assert_close("add_backward da", da, dar, n, 0, 0);
        test_assert_close("add_backward db", db, dbr, n, 0, 0);
        /* Only one wanted: the other buffer is left alone. */
        ENCO_CK(enco_fill(test_ctx(), bdb, 0, n, 7.0f));
        ENCO_CK(enco_add_backward(test_ctx(), NULL, 0, bdb, 0, bg, 0, n));
        float *db2 = test_download(bdb, n);
        test_assert_bitwise("add_backward db only", db2, g, n);
        ENCO_CK(enco_fill(test_ctx(), bdb, 0, n, 7.0f));
        ENCO_CK(enco_add_backward(test_ctx(), bda, 0, NULL, 0, bg, 0, n));
        float *db3 = test_download(bdb, n);
        for (size_t i = 0; i < n; i++)
            ck_assert(db3[i] == 7.0f);
        /* Determinism. */
        ENCO_CK(enco_add_forward(test_ctx(), buf, 2 * n, buf, 0, buf, n, n));
        float *out2 = test_download(buf, 3 * n);
        test_assert_bitwise("add_forward", out, out2, 3 * n);
        free(a), free(b), free(g), free(host), free(out), free(out2), free(da), free(db),
            free(db2), free(db3);
        free(ad), free(bd), free(ref), free(gd), free(dar), free(dbr);
        test_release(buf), test_release(bg), test_release(bda), test_release(bdb);
    }
}
END_TEST

START_TEST(add_finite_differences)
{
    enum { N = 10 };
    double a[N], b[N], g[N], da[N], db[N], o[N];
    test_fill_uniform_f64(a, N, 1, -1, 1);
    test_fill_uniform_f64(b, N, 2, -1, 1);
    test_fill_uniform_f64(g, N, 3, -1, 1);
    enco_add_backward_ref(da, db, g, N);
    const double h = 1e-6;
    for (size_t i = 0; i < N; i++)
        for (int which = 0; which < 2; which++) {
            double *v = which ? b : a, vi = v[i], lp = 0, lm = 0;
            v[i] = vi + h;
            enco_add_forward_ref(o, a, b, N);
            for (size_t j = 0; j < N; j++)
                lp += g[j] * o[j];
            v[i] = vi - h;
            enco_add_forward_ref(o, a, b, N);
            for (size_t j = 0; j < N; j++)
                lm += g[j] * o[j];
            v[i] = vi;
            double fd = (lp - lm) / (2 * h), an = which ? db[i] : da[i];
            ck_assert_msg(fabs(fd - an) <= 1e-7, "add fd %zu: %g vs %g", i, fd, an);
        }
}
END_TEST

/* ---- helpers ---------------------------------------------------------- */

START_TEST(axpy_fill_scale)
{
    size_t ns;
    const size_t *sizes = test_sizes(&ns);
    for (size_t s = 0; s < ns; s++) {
        size_t n = sizes[s];
        float *x = make_input(n, 600 + n), *y = make_input(n, 700 + n);
        cl_mem bx = test_upload(x, n), by = test_upload(y, n);
        const float alpha = -0.37f, beta = 1.75f;
        double *xd = to_f64(x, n), *ref = to_f64(y, n);

        ENCO_CK(enco_axpy(test_ctx(), by, 0, bx, 0, n, alpha));
        enco_axpy_ref(ref, xd, n, (double)alpha);
        float *got = test_download(by, n);
        test_assert_close("axpy", got, ref, n, 1e-7, 1e-6);
        free(got);
        /* Accumulate twice more: each call adds on top. */
        ENCO_CK(enco_axpy(test_ctx(), by, 0, bx, 0, n, alpha));
        ENCO_CK(enco_axpy(test_ctx(), by, 0, bx, 0, n, alpha));
        enco_axpy_ref(ref, xd, n, (double)alpha);
        enco_axpy_ref(ref, xd, n, (double)alpha);
        got = test_download(by, n);
        test_assert_close("axpy x3", got, ref, n, 1e-6, 1e-5);
        free(got);

        ENCO_CK(enco_scale(test_ctx(), by, 0, n, beta));
        enco_scale_ref(ref, n, (double)beta);
        got = test_download(by, n);
        test_assert_close("scale", got, ref, n, 1e-6, 1e-5);
        free(got);

        /* fill on a sub-range only. */
        size_t lo = n / 3, len = n - lo;
        ENCO_CK(enco_fill(test_ctx(), by, lo, len, 0.5f));
        enco_fill_ref(ref + lo, len, 0.5);
        got = test_download(by, n);
        test_assert_close("fill", got, ref, n, 1e-6, 1e-5);
        for (size_t i = lo; i < n; i++)
            ck_assert(got[i] == 0.5f);
        free(got);
        free(x), free(y), free(xd), free(ref);
        test_release(bx), test_release(by);
    }
}
END_TEST

/* ---- block kernels for CPUs ---------------------------------------------- */

enum rows_op { ROWS_LEAKY_FWD, ROWS_LEAKY_BWD, ROWS_ADD, ROWS_AXPY, ROWS_LEAKY_IN_PLACE, ROWS_N };
static const char *rows_name[] = {"leaky_fwd", "leaky_bwd", "add", "axpy", "leaky_in_place"};

/* Runs op on x, y (n values at offset off in buffers of n + 2 off) with
 * ENCO_ACT_ROWS = env; returns the whole written buffer. */
static float *rows_run(const char *env, enum rows_op op, const float *x, const float *y, size_t n,
                       size_t off)
{
    enco_ctx *ctx = test_ctx();
    ck_assert_int_eq(test_setenv("ENCO_ACT_ROWS", env), 0);
    size_t len = n + 2 * off;
    float *pad = calloc(len, sizeof(float));
    ck_assert_ptr_nonnull(pad);
    memcpy(pad + off, x, n * sizeof(float));
    cl_mem bx = test_upload(pad, len);
    memcpy(pad + off, y, n * sizeof(float));
    cl_mem by = test_upload(pad, len), bo = dev_zeros(len);
    cl_mem out = op == ROWS_AXPY ? by : op == ROWS_LEAKY_IN_PLACE ? bx : bo;
    if (op == ROWS_LEAKY_FWD || op == ROWS_LEAKY_IN_PLACE)
        ENCO_CK(enco_leaky_relu_forward(ctx, out, off, bx, off, n, SLOPE));
    else if (op == ROWS_LEAKY_BWD)
        ENCO_CK(enco_leaky_relu_backward(ctx, bo, off, by, off, bx, off, n, SLOPE));
    else if (op == ROWS_ADD)
        ENCO_CK(enco_add_forward(ctx, bo, off, bx, off, by, off, n));
    else
        ENCO_CK(enco_axpy(ctx, by, off, bx, off, n, -0.37f));
    float *r = test_download(out, len);
    free(pad);
    test_release(bx), test_release(by), test_release(bo);
    return r;
}

/* The block kernels (ENCO_ACT_ROWS=1) write the per-element kernels' bits
 * (=0) and nothing outside the range: sizes around the block (4096) and the
 * float8 step, offsets that misalign the vectors, zeros of both signs, NaN,
 * infinities and subnormals. */
START_TEST(cpu_blocks_same_bits)
{
    static const size_t blk_sizes[] = {1, 7, 8, 9, 4095, 4096, 4097, 3 * 4096 + 13};
    static const size_t blk_tiny[] = {1, 9, 37};
    int tiny = test_on_oclgrind();
    size_t ns = tiny ? sizeof blk_tiny / sizeof blk_tiny[0]
                     : sizeof blk_sizes / sizeof blk_sizes[0];
    for (size_t s = 0; s < ns; s++) {
        size_t n = tiny ? blk_tiny[s] : blk_sizes[s];
        float *x = make_input(n, 800 + n), *y = make_input(n, 900 + n);
        const float special[] = {NAN, INFINITY, -INFINITY, 1e-40f, -1e-40f, -0.0f};
        for (size_t i = 0; i < n; i += 5)
            x[i] = special[(i / 5) % 6], y[n - 1 - i] = special[(i / 5 + 1) % 6];
        for (size_t off = 0; off < 4; off += 3)
            for (int op = 0; op < ROWS_N; op++) {
                float *a = rows_run("0", (enum rows_op)op, x, y, n, off);
                float *b = rows_run("1", (enum rows_op)op, x, y, n, off);
                char what[64];
                snprintf(what, sizeof what, "act_rows %s n=%zu off=%zu", rows_name[op], n, off);
                test_assert_bitwise(what, a, b, n + 2 * off);
                free(a), free(b);
            }
        free(x), free(y);
    }
    ck_assert_int_eq(test_setenv("ENCO_ACT_ROWS", NULL), 0);
}
END_TEST

/* ---- rejections ------------------------------------------------------- */

START_TEST(rejects_bad_args)
{
    enco_ctx *ctx = test_ctx();
    cl_mem a = dev_zeros(16), b = dev_zeros(16);
    ck_assert_int_eq(enco_relu_forward(ctx, a, 0, b, 0, 0), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "n must be > 0"));
    ck_assert_int_eq(enco_relu_forward(ctx, NULL, 0, b, 0, 4), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "NULL"));
    ck_assert_int_eq(enco_tanh_forward(ctx, a, 0, b, 10, 7), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "holds 16 values"));
    ck_assert_int_eq(enco_leaky_relu_forward(ctx, a, 2, a, 0, 8, SLOPE), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "overlaps"));
    ck_assert_int_eq(enco_leaky_relu_forward(ctx, a, 0, b, 0, 8, NAN), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_add_backward(ctx, NULL, 0, NULL, 0, b, 0, 8), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_axpy(ctx, a, 0, b, 9, 8, 1.0f), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_fill(ctx, a, 17, 1, 1.0f), ENCO_ERR_INVALID_ARG);
    /* Disjoint ranges of one buffer are fine. */
    ENCO_CK(enco_relu_forward(ctx, a, 8, a, 0, 8));
    test_release(a), test_release(b);
}
END_TEST

START_TEST(costs)
{
    ck_assert(enco_relu_cost(100, 0).bytes == 800.0);
    ck_assert(enco_relu_cost(100, 1).bytes == 1200.0);
    ck_assert(enco_axpy_cost(10).flops == 20.0);
    ck_assert(enco_tanh_cost(10, 0).flops > 0 && enco_leaky_relu_cost(10, 1).bytes > 0);
    ck_assert(enco_add_cost(10, 0).bytes == 120.0 && enco_fill_cost(10).bytes == 40.0 &&
              enco_scale_cost(10).flops == 10.0);
}
END_TEST

static Suite *act_suite(void)
{
    Suite *s = suite_create("act");
    TCase *tc = tcase_create("act");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, unary_forward_backward, OP_RELU, OP_TANH + 1);
    tcase_add_loop_test(tc, unary_finite_differences, OP_RELU, OP_TANH + 1);
    tcase_add_test(tc, kinks_follow_pytorch);
    tcase_add_test(tc, add_forward_backward);
    tcase_add_test(tc, add_finite_differences);
    tcase_add_test(tc, axpy_fill_scale);
    tcase_add_test(tc, cpu_blocks_same_bits);
    tcase_add_test(tc, rejects_bad_args);
    tcase_add_test(tc, costs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(act_suite()); }
