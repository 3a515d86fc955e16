/* Blur family: Downsample / Upsample forward and backward against the
 * float64 references, finite differences, determinism, argument checks. */
#include "harness.h"
#include "ops/blur.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shape {
    int n, c, h, w;
} shape;

static size_t in_count(shape s) { return (size_t)s.n * s.c * s.h * s.w; }

static size_t out_count(int up, shape s)
{
    if (up)
        return in_count(s) * 4;
    return (size_t)s.n * s.c * enco_blur_down_size(s.h) * enco_blur_down_size(s.w);
}

static int ksize(int up) { return up ? ENCO_BLUR_UP_K : ENCO_BLUR_DOWN_K; }

static double *to_f64(const float *x, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof(double));
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

/* Filters: the standard one, or random per-channel values (which expose any
 * transposed or mirrored tap indexing that a symmetric filter would hide). */
static float *make_filter(int up, int c, int random, uint64_t seed)
{
    int k = ksize(up);
    float *f = malloc((size_t)c * k * k * sizeof(float));
    ck_assert_ptr_nonnull(f);
    if (random)
        test_fill_uniform(f, (size_t)c * k * k, seed, -1, 1);
    else if (up)
        enco_blur_up_filter(f, c);
    else
        enco_blur_down_filter(f, c);
    return f;
}

static void ref_forward(int up, double *y, const double *x, const double *f, shape s)
{
    if (up)
        enco_blur_up_forward_ref(y, x, f, s.n, s.c, s.h, s.w);
    else
        enco_blur_down_forward_ref(y, x, f, s.n, s.c, s.h, s.w);
}

static void ref_backward(int up, double *dx, const double *dy, const double *f, shape s)
{
    if (up)
        enco_blur_up_backward_ref(dx, dy, f, s.n, s.c, s.h, s.w);
    else
        enco_blur_down_backward_ref(dx, dy, f, s.n, s.c, s.h, s.w);
}

static enco_status dev_forward(int up, cl_mem y, size_t yo, cl_mem x, size_t xo, cl_mem f,
                               size_t fo, shape s)
{
    if (up)
        return enco_blur_up_forward(test_ctx(), y, yo, x, xo, f, fo, s.n, s.c, s.h, s.w);
    return enco_blur_down_forward(test_ctx(), y, yo, x, xo, f, fo, s.n, s.c, s.h, s.w);
}

static enco_status dev_backward(int up, cl_mem dx, size_t dxo, cl_mem dy, size_t dyo, cl_mem f,
                                size_t fo, shape s)
{
    if (up)
        return enco_blur_up_backward(test_ctx(), dx, dxo, dy, dyo, f, fo, s.n, s.c, s.h, s.w);
    return enco_blur_down_backward(test_ctx(), dx, dxo, dy, dyo, f, fo, s.n, s.c, s.h, s.w);
}

/* Uploads host[0..n) at element offset off of a fresh buffer (garbage before it). */
static cl_mem upload_at(const float *host, size_t n, size_t off)
{
    float *tmp = malloc((n + off) * sizeof(float));
    ck_assert_ptr_nonnull(tmp);
    for (size_t i = 0; i < off; i++)
        tmp[i] = 1e30f;
    memcpy(tmp + off, host, n * sizeof(float));
    cl_mem m = test_upload(tmp, n + off);
    free(tmp);
    return m;
}

static float *download_at(cl_mem m, size_t n, size_t off)
{
    float *all = test_download(m, n + off);
    float *r = malloc((n ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(r);
    memcpy(r, all + off, n * sizeof(float));
    free(all);
    return r;
}

/* Runs forward (backward when bwd) on the device and compares with the ref. */
static void check_case(int up, int bwd, shape s, int random_filter, size_t off, uint64_t seed)
{
    int k = ksize(up);
    size_t nin = bwd ? out_count(up, s) : in_count(s);
    size_t nout = bwd ? in_count(s) : out_count(up, s);
    size_t nf = (size_t)s.c * k * k;
    float *in = malloc(nin * sizeof(float));
    test_fill_uniform(in, nin, seed, -1, 1);
    float *f = make_filter(up, s.c, random_filter, seed + 1);
    cl_mem bin = upload_at(in, nin, off), bf = upload_at(f, nf, off + 1);
    cl_mem bout = test_alloc(nout + off + 2);
    if (bwd)
        ENCO_CK(dev_backward(up, bout, off + 2, bin, off, bf, off + 1, s));
    else
        ENCO_CK(dev_forward(up, bout, off + 2, bin, off, bf, off + 1, s));
    float *got = download_at(bout, nout, off + 2);
    double *din = to_f64(in, nin), *df = to_f64(f, nf);
    double *ref = malloc(nout * sizeof(double));
    if (bwd)
        ref_backward(up, ref, din, df, s);
    else
        ref_forward(up, ref, din, df, s);
    char what[96];
    snprintf(what, sizeof what, "blur_%s_%s_%dx%dx%dx%d%s", up ? "up" : "down",
             bwd ? "backward" : "forward", s.n, s.c, s.h, s.w, random_filter ? "_randfilt" : "");
    test_assert_close(what, got, ref, nout, 1e-5, 1e-5);
    free(in), free(f), free(got), free(din), free(df), free(ref);
    test_release(bin), test_release(bf), test_release(bout);
}

/* On CPU devices the row kernels run: float8 strips inside a row, overlapping
 * last strip, scalar borders, and narrow rows all scalar. The widths below
 * hit each case: downsample forward vectorises from W = 18 (one strip), its
 * backward from W = 20; upsample forward and backward from W = 10; 40 and 41
 * give several strips with an overlapped last one, odd and even. */
static const shape down_shapes[] = {
    {2, 3, 7, 5},  {1, 2, 8, 8},  {2, 1, 2, 3},  {1, 2, 3, 2},  {1, 3, 31, 17}, {2, 2, 16, 9},
    {1, 1, 5, 18}, {2, 1, 4, 19}, {1, 2, 3, 20}, {2, 2, 9, 40}, {1, 3, 6, 41},  {1, 1, 37, 37},
};
static const shape down_shapes_tiny[] = {{2, 2, 5, 4}, {1, 1, 2, 3}, {1, 1, 3, 3},
                                         {1, 1, 3, 20}, {1, 1, 2, 21}};
static const shape up_shapes[] = {
    {2, 3, 7, 5},  {1, 2, 8, 8},  {2, 1, 1, 3},  {1, 2, 1, 1},  {1, 3, 16, 11}, {2, 2, 2, 9},
    {1, 1, 3, 10}, {2, 1, 1, 10}, {1, 2, 5, 17}, {2, 2, 4, 20}, {1, 1, 9, 29},  {1, 3, 2, 40},
};
static const shape up_shapes_tiny[] = {{2, 2, 3, 4}, {1, 1, 1, 2}, {1, 1, 2, 1}, {1, 1, 2, 10},
                                       {1, 1, 1, 11}};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void run_shapes(int up, int bwd)
{
    int tiny = test_on_oclgrind();
    const shape *list = up ? (tiny ? up_shapes_tiny : up_shapes)
                           : (tiny ? down_shapes_tiny : down_shapes);
    size_t cnt = up ? (tiny ? COUNT(up_shapes_tiny) : COUNT(up_shapes))
                    : (tiny ? COUNT(down_shapes_tiny) : COUNT(down_shapes));
    for (size_t i = 0; i < cnt; i++) {
        check_case(up, bwd, list[i], 1, i % 3, 100 + i);
        if (i == 0 || i == 2)
            check_case(up, bwd, list[i], 0, 0, 200 + i);
    }
}

/* ---- tests ------------------------------------------------------------ */

START_TEST(filters_standard)
{
    float d[2 * 9], u[2 * 16];
    enco_blur_down_filter(d, 2);
    enco_blur_up_filter(u, 2);
    const double a3[3] = {1, 2, 1}, a4[4] = {1, 3, 3, 1};
    for (int ch = 0; ch < 2; ch++) {
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                ck_assert_float_eq_tol(d[ch * 9 + i * 3 + j], a3[i] * a3[j] / 16.0, 1e-7);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                ck_assert_float_eq_tol(u[ch * 16 + i * 4 + j], a4[i] * a4[j] / 64.0 * 4.0, 1e-7);
    }
    ck_assert_float_eq(d[4], 0.25f);
    ck_assert_float_eq(u[5], 0.5625f);
    ck_assert_float_eq(u[0], 0.0625f);
}
END_TEST

/* A constant image stays constant through both standard layers (each output
 * sums filter taps to 1), borders included: checks padding without the ref. */
START_TEST(constant_preserved)
{
    shape s = test_on_oclgrind() ? (shape){1, 2, 3, 21} : (shape){2, 3, 9, 42};
    for (int up = 0; up < 2; up++) {
        size_t nin = in_count(s), nout = out_count(up, s);
        float *x = malloc(nin * sizeof(float));
        for (size_t i = 0; i < nin; i++)
            x[i] = 0.75f;
        float *f = make_filter(up, s.c, 0, 0);
        cl_mem bx = test_upload(x, nin), bf = test_upload(f, (size_t)s.c * ksize(up) * ksize(up));
        cl_mem by = test_alloc(nout);
        ENCO_CK(dev_forward(up, by, 0, bx, 0, bf, 0, s));
        float *y = test_download(by, nout);
        for (size_t i = 0; i < nout; i++)
            ck_assert_msg(fabsf(y[i] - 0.75f) < 1e-6f, "%s: y[%zu] = %.9g", up ? "up" : "down", i,
                          (double)y[i]);
        free(x), free(f), free(y);
        test_release(bx), test_release(bf), test_release(by);
    }
}
END_TEST

START_TEST(down_forward) { run_shapes(0, 0); }
END_TEST

START_TEST(up_forward) { run_shapes(1, 0); }
END_TEST

START_TEST(down_backward) { run_shapes(0, 1); }
END_TEST

/* The per-element kernels (GPU devices) on every shape. */
START_TEST(element_kernels)
{
    test_setenv("ENCO_BLUR_ROWS", "0");
    for (int up = 0; up < 2; up++)
        for (int bwd = 0; bwd < 2; bwd++)
            run_shapes(up, bwd);
    test_setenv("ENCO_BLUR_ROWS", NULL);
}
END_TEST

/* Row kernels with tiny row blocks: several blocks per plane, the last one
 * partial (37 outputs per block: 1 row of a 40-wide plane, 2 of a 17-wide). */
START_TEST(row_blocks)
{
    test_setenv("ENCO_BLUR_ROWS", "1");
    test_setenv("ENCO_BLUR_BLOCK", "37");
    for (int up = 0; up < 2; up++)
        for (int bwd = 0; bwd < 2; bwd++)
            run_shapes(up, bwd);
    test_setenv("ENCO_BLUR_BLOCK", NULL);
    test_setenv("ENCO_BLUR_ROWS", NULL);
}
END_TEST

START_TEST(up_backward) { run_shapes(1, 1); }
END_TEST

/* Reference backward vs central differences of the reference forward, on
 * L = sum(r * y) with random r, random filters, tiny shapes with edge sizes. */
static void fd_case(int up, shape s, uint64_t seed)
{
    int k = ksize(up);
    size_t nin = in_count(s), nout = out_count(up, s), nf = (size_t)s.c * k * k;
    double *x = malloc(nin * sizeof(double)), *r = malloc(nout * sizeof(double));
    double *f = malloc(nf * sizeof(double)), *y = malloc(nout * sizeof(double));
    double *dx = malloc(nin * sizeof(double)), *num = malloc(nin * sizeof(double));
    test_fill_uniform_f64(x, nin, seed, -1, 1);
    test_fill_uniform_f64(r, nout, seed + 1, -1, 1);
    test_fill_uniform_f64(f, nf, seed + 2, -1, 1);
    ref_backward(up, dx, r, f, s);
    const double h = 1e-6;
    for (size_t i = 0; i < nin; i++) {
        double keep = x[i], lp = 0, lm = 0;
        x[i] = keep + h;
        ref_forward(up, y, x, f, s);
        for (size_t j = 0; j < nout; j++)
            lp += r[j] * y[j];
        x[i] = keep - h;
        ref_forward(up, y, x, f, s);
        for (size_t j = 0; j < nout; j++)
            lm += r[j] * y[j];
        x[i] = keep;
        num[i] = (lp - lm) / (2 * h);
    }
    for (size_t i = 0; i < nin; i++)
        ck_assert_msg(fabs(num[i] - dx[i]) <= 1e-7 + 1e-6 * fabs(dx[i]),
                      "blur %s fd (%d,%d,%d,%d): dx[%zu] %.12g vs numeric %.12g",
                      up ? "up" : "down", s.n, s.c, s.h, s.w, i, dx[i], num[i]);
    free(x), free(r), free(f), free(y), free(dx), free(num);
}

START_TEST(backward_ref_fd)
{
    static const shape down[] = {{1, 1, 2, 2}, {1, 1, 3, 3}, {2, 2, 5, 4}, {1, 1, 2, 7}};
    static const shape up[] = {{1, 1, 1, 1}, {1, 1, 2, 3}, {2, 2, 3, 4}, {1, 1, 1, 5}};
    for (size_t i = 0; i < COUNT(down); i++)
        fd_case(0, down[i], 300 + i);
    for (size_t i = 0; i < COUNT(up); i++)
        fd_case(1, up[i], 400 + i);
}
END_TEST

START_TEST(deterministic)
{
    shape s = test_on_oclgrind() ? (shape){1, 2, 5, 21} : (shape){2, 3, 33, 41};
    for (int up = 0; up < 2; up++)
        for (int bwd = 0; bwd < 2; bwd++) {
            size_t nin = bwd ? out_count(up, s) : in_count(s);
            size_t nout = bwd ? in_count(s) : out_count(up, s);
            float *in = malloc(nin * sizeof(float));
            test_fill_uniform(in, nin, 77, -1, 1);
            float *f = make_filter(up, s.c, 1, 78);
            cl_mem bin = test_upload(in, nin);
            cl_mem bf = test_upload(f, (size_t)s.c * ksize(up) * ksize(up));
            cl_mem b1 = test_alloc(nout), b2 = test_alloc(nout);
            if (bwd) {
                ENCO_CK(dev_backward(up, b1, 0, bin, 0, bf, 0, s));
                ENCO_CK(dev_backward(up, b2, 0, bin, 0, bf, 0, s));
            } else {
                ENCO_CK(dev_forward(up, b1, 0, bin, 0, bf, 0, s));
                ENCO_CK(dev_forward(up, b2, 0, bin, 0, bf, 0, s));
            }
            float *o1 = test_download(b1, nout), *o2 = test_download(b2, nout);
            test_assert_bitwise(up ? (bwd ? "blur_up_backward" : "blur_up_forward")
                                   : (bwd ? "blur_down_backward" : "blur_down_forward"),
                                o1, o2, nout);
            free(in), free(f), free(o1), free(o2);
            test_release(bin), test_release(bf), test_release(b1), test_release(b2);
        }
}
END_TEST

START_TEST(rejects_bad_args)
{
    enco_ctx *ctx = test_ctx();
    cl_mem a = test_alloc(64), b = test_alloc(64), f = test_alloc(64);
    /* Reflect padding needs H, W >= 2. */
    ck_assert_int_eq(enco_blur_down_forward(ctx, b, 0, a, 0, f, 0, 1, 1, 1, 4),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "at least 2"));
    ck_assert_int_eq(enco_blur_down_backward(ctx, b, 0, a, 0, f, 0, 1, 1, 4, 1),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_blur_up_forward(ctx, b, 0, a, 0, f, 0, 0, 1, 2, 2),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "positive"));
    /* Buffers too small for the shape (64 floats; the output needs 4*1*1*4*4). */
    ck_assert_int_eq(enco_blur_up_forward(ctx, b, 0, a, 0, f, 0, 1, 1, 4, 5),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "y needs"));
    ck_assert_int_eq(enco_blur_down_forward(ctx, b, 0, a, 60, f, 0, 1, 1, 2, 4),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "x needs"));
    ck_assert_int_eq(enco_blur_up_backward(ctx, b, 0, a, 0, NULL, 0, 1, 1, 2, 2),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "filt"));
    test_release(a), test_release(b), test_release(f);
}
END_TEST

static Suite *blur_suite(void)
{
    Suite *s = suite_create("blur");
    TCase *t = tcase_create("blur");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, filters_standard);
    tcase_add_test(t, constant_preserved);
    tcase_add_test(t, down_forward);
    tcase_add_test(t, up_forward);
    tcase_add_test(t, backward_ref_fd);
    tcase_add_test(t, down_backward);
    tcase_add_test(t, up_backward);
    tcase_add_test(t, element_kernels);
    tcase_add_test(t, row_blocks);
    tcase_add_test(t, deterministic);
    tcase_add_test(t, rejects_bad_args);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return test_run_suite(blur_suite()); }
