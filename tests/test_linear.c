/* Fully connected layer: y = x W^T + b and its gradients. */
#include "harness.h"
#include "ops/linear.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shape {
    size_t m, in, out;
} shape;

static const shape shapes_full[] = {{1, 1, 1}, {5, 7, 3}, {37, 64, 29}, {66, 130, 96}, {2, 256, 128}};
static const shape shapes_tiny[] = {{1, 1, 1}, {5, 7, 3}, {9, 16, 12}};

static const shape *test_shapes(size_t *count)
{
    if (test_on_oclgrind()) {
        *count = sizeof shapes_tiny / sizeof shapes_tiny[0];
        return shapes_tiny;
    }
    *count = sizeof shapes_full / sizeof shapes_full[0];
    return shapes_full;
}

static cl_mem upload(const float *host, size_t n) { return test_upload(host, n); }

/* A zeroed buffer written from the host: test_alloc zeroes with
 * clEnqueueFillBuffer, which Oclgrind 21.10 leaves marked uninitialised. */
static cl_mem dev_zeros(size_t n)
{
    float *z = calloc(n, sizeof(float));
    ck_assert_ptr_nonnull(z);
    cl_mem m = upload(z, n);
    free(z);
    return m;
}

static float *rand_f(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = malloc(n * sizeof(float));
    ck_assert_ptr_nonnull(x);
    test_fill_uniform(x, n, seed, lo, hi);
    return x;
}

static double *to_f64(const float *x, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof(double));
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

/* Tolerance of a float32 dot product of length k of values in [-1, 1]:
 * absolute, scaled by sqrt(k) (rounding error of a sum grows about so). */
static double dot_atol(size_t k) { return 2e-6 * (1.0 + sqrt((double)k)) * (1.0 + k / 64.0); }

/* ---- forward ---------------------------------------------------------- */

START_TEST(forward_matches_reference)
{
    int with_bias = _i;
    size_t ns;
    const shape *sh = test_shapes(&ns);
    for (size_t s = 0; s < ns; s++) {
        size_t m = sh[s].m, in = sh[s].in, out = sh[s].out;
        float *x = rand_f(m * in, 10 + s, -1, 1), *w = rand_f(out * in, 20 + s, -1, 1);
        float *b = rand_f(out, 30 + s, -1, 1);
        /* y sits at an offset inside a larger buffer; b shares one with w. */
        const size_t yo = 3;
        float *wb = malloc((out * in + out) * sizeof(float));
        memcpy(wb, w, out * in * sizeof(float));
        memcpy(wb + out * in, b, out * sizeof(float));
        cl_mem bx = upload(x, m * in), bwb = upload(wb, out * in + out);
        cl_mem by = dev_zeros(m * out + 2 * yo);
        ENCO_CK(enco_linear_forward(test_ctx(), by, yo, bx, 0, bwb, 0, with_bias ? bwb : NULL,
                                    out * in, m, in, out));
        float *y = test_download(by, m * out + 2 * yo);
        double *xd = to_f64(x, m * in), *wd = to_f64(w, out * in), *bd = to_f64(b, out);
        double *ref = malloc(m * out * sizeof(double));
        enco_linear_forward_ref(ref, xd, wd, with_bias ? bd : NULL, m, in, out);
        char what[96];
        snprintf(what, sizeof what, "linear_forward%s M=%zu in=%zu out=%zu",
                 with_bias ? "+bias" : "", m, in, out);
        test_assert_close(what, y + yo, ref, m * out, dot_atol(in), 1e-5);
        for (size_t i = 0; i < yo; i++)
            ck_assert(y[i] == 0.0f && y[yo + m * out + i] == 0.0f);

        /* Determinism. */
        ENCO_CK(enco_linear_forward(test_ctx(), by, yo, bx, 0, bwb, 0, with_bias ? bwb : NULL,
                                    out * in, m, in, out));
        float *y2 = test_download(by, m * out + 2 * yo);
        test_assert_bitwise(what, y, y2, m * out + 2 * yo);
        free(x), free(w), free(b), free(wb), free(y), free(y2), free(xd), free(wd), free(bd),
            free(ref);
        test_release(bx), test_release(bwb), test_release(by);
    }
}
END_TEST

/* ---- backward --------------------------------------------------------- */

START_TEST(reference_backward_vs_finite_differences)
{
    enum { M = 3, IN = 4, OUT = 5 };
    double x[M * IN], w[OUT * IN], b[OUT], g[M * OUT], y[M * OUT];
    double dx[M * IN], dw[OUT * IN], db[OUT];
    test_fill_uniform_f64(x, M * IN, 1, -1, 1);
    test_fill_uniform_f64(w, OUT * IN, 2, -1, 1);
    test_fill_uniform_f64(b, OUT, 3, -1, 1);
    test_fill_uniform_f64(g, M * OUT, 4, -1, 1);
    /* Start the accumulated gradients at 0 so they equal the plain gradient. */
    memset(dw, 0, sizeof dw);
    memset(db, 0, sizeof db);
    enco_linear_backward_ref(dx, dw, db, g, x, w, M, IN, OUT);
    double *params[3] = {x, w, b}, *grads[3] = {dx, dw, db};
    size_t sizes[3] = {M * IN, OUT * IN, OUT};
    const char *names[3] = {"linear_ref dx vs fd", "linear_ref dw vs fd", "linear_ref db vs fd"};
    const double h = 1e-6;
    for (int p = 0; p < 3; p++) {
        double fd[M * IN > OUT * IN ? M * IN : OUT * IN];
        float got[sizeof fd / sizeof fd[0]];
        for (size_t i = 0; i < sizes[p]; i++) {
            double v = params[p][i], lp = 0, lm = 0;
            params[p][i] = v + h;
            enco_linear_forward_ref(y, x, w, b, M, IN, OUT);
            for (size_t j = 0; j < M * OUT; j++)
                lp += g[j] * y[j];
            params[p][i] = v - h;
            enco_linear_forward_ref(y, x, w, b, M, IN, OUT);
            for (size_t j = 0; j < M * OUT; j++)
                lm += g[j] * y[j];
            params[p][i] = v;
            fd[i] = (lp - lm) / (2 * h);
            got[i] = (float)grads[p][i];
        }
        test_assert_close(names[p], got, fd, sizes[p], 1e-7, 1e-6);
    }
}
END_TEST

START_TEST(backward_matches_reference)
{
    size_t ns;
    const shape *sh = test_shapes(&ns);
    for (size_t s = 0; s < ns; s++) {
        size_t m = sh[s].m, in = sh[s].in, out = sh[s].out;
        float *x = rand_f(m * in, 40 + s, -1, 1), *w = rand_f(out * in, 50 + s, -1, 1);
        float *dy = rand_f(m * out, 60 + s, -1, 1);
        /* Accumulators start non-zero (+= is tested); dx starts with garbage
         * (= is tested). */
        float *dw0 = rand_f(out * in, 70 + s, -1, 1), *db0 = rand_f(out, 80 + s, -1, 1);
        float *dx0 = rand_f(m * in, 90 + s, 100, 200);
        cl_mem bx = upload(x, m * in), bw = upload(w, out * in), bdy = upload(dy, m * out);
        cl_mem bdx = upload(dx0, m * in), bdw = upload(dw0, out * in), bdb = upload(db0, out);
        ENCO_CK(enco_linear_backward(test_ctx(), bdx, 0, bdw, 0, bdb, 0, bdy, 0, bx, 0, bw, 0, m,
                                     in, out));
        float *dx = test_download(bdx, m * in), *dw = test_download(bdw, out * in);
        float *db = test_download(bdb, out);
        double *xd = to_f64(x, m * in), *wd = to_f64(w, out * in), *dyd = to_f64(dy, m * out);
        double *rdx = malloc(m * in * sizeof(double)), *rdw = to_f64(dw0, out * in);
        double *rdb = to_f64(db0, out);
        enco_linear_backward_ref(rdx, rdw, rdb, dyd, xd, wd, m, in, out);
        char what[96];
        snprintf(what, sizeof what, "linear_backward dx M=%zu in=%zu out=%zu", m, in, out);
        test_assert_close(what, dx, rdx, m * in, dot_atol(out), 1e-5);
        snprintf(what, sizeof what, "linear_backward dw M=%zu in=%zu out=%zu", m, in, out);
        test_assert_close(what, dw, rdw, out * in, dot_atol(m), 1e-5);
        snprintf(what, sizeof what, "linear_backward db M=%zu in=%zu out=%zu", m, in, out);
        test_assert_close(what, db, rdb, out, dot_atol(m), 1e-5);

        /* Determinism: from the same starting accumulators, bitwise equal. */
        ENCO_CK(enco_upload(test_ctx(), bdw, 0, out * in * sizeof(float), dw0));
        ENCO_CK(enco_upload(test_ctx(), bdb, 0, out * sizeof(float), db0));
        ENCO_CK(enco_upload(test_ctx(), bdx, 0, m * in * sizeof(float), dx0));
        ENCO_CK(enco_linear_backward(test_ctx(), bdx, 0, bdw, 0, bdb, 0, bdy, 0, bx, 0, bw, 0, m,
                                     in, out));
        float *dx2 = test_download(bdx, m * in), *dw2 = test_download(bdw, out * in);
        float *db2 = test_download(bdb, out);
        test_assert_bitwise("linear_backward dx", dx, dx2, m * in);
        test_assert_bitwise("linear_backward dw", dw, dw2, out * in);
        test_assert_bitwise("linear_backward db", db, db2, out);

        /* Each output alone gives the same values (NULL = not wanted). */
        ENCO_CK(enco_upload(test_ctx(), bdw, 0, out * in * sizeof(float), dw0));
        ENCO_CK(enco_linear_backward(test_ctx(), NULL, 0, bdw, 0, NULL, 0, bdy, 0, bx, 0, NULL, 0,
                                     m, in, out));
        float *dw3 = test_download(bdw, out * in);
        test_assert_bitwise("linear_backward dw alone", dw, dw3, out * in);
        ENCO_CK(enco_linear_backward(test_ctx(), bdx, 0, NULL, 0, NULL, 0, bdy, 0, NULL, 0, bw, 0,
                                     m, in, out));
        float *dx3 = test_download(bdx, m * in);
        test_assert_bitwise("linear_backward dx alone", dx, dx3, m * in);
        /* db accumulates: a second call adds the column sums again. */
        ENCO_CK(enco_linear_backward(test_ctx(), NULL, 0, NULL, 0, bdb, 0, bdy, 0, NULL, 0, NULL,
                                     0, m, in, out));
        float *db3 = test_download(bdb, out);
        for (size_t j = 0; j < out; j++)
            rdb[j] += rdb[j] - db0[j];
        snprintf(what, sizeof what, "linear_backward db x2 M=%zu", m);
        test_assert_close(what, db3, rdb, out, 2 * dot_atol(m), 1e-5);

        free(x), free(w), free(dy), free(dw0), free(db0), free(dx0), free(dx), free(dw), free(db);
        free(dx2), free(dw2), free(db2), free(dw3), free(dx3), free(db3);
        free(xd), free(wd), free(dyd), free(rdx), free(rdw), free(rdb);
        test_release(bx), test_release(bw), test_release(bdy), test_release(bdx);
        test_release(bdw), test_release(bdb);
    }
}
END_TEST

/* ---- rejections and costs ----------------------------------------------- */

START_TEST(rejects_bad_args)
{
    enco_ctx *ctx = test_ctx();
    cl_mem a = dev_zeros(64), b = dev_zeros(64), c = dev_zeros(64);
    ck_assert_int_eq(enco_linear_forward(ctx, a, 0, b, 0, c, 0, NULL, 0, 0, 4, 4),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "empty shape"));
    ck_assert_int_eq(enco_linear_forward(ctx, a, 0, b, 0, c, 0, NULL, 0, 4, 8, 9),
                     ENCO_ERR_INVALID_ARG); /* W needs 72 floats */
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "w needs"));
    ck_assert_int_eq(enco_linear_forward(ctx, a, 0, NULL, 0, c, 0, NULL, 0, 2, 2, 2),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_linear_forward(ctx, a, 0, a, 2, c, 0, NULL, 0, 2, 2, 2),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "overlap"));
    ck_assert_int_eq(enco_linear_backward(ctx, NULL, 0, NULL, 0, NULL, 0, a, 0, b, 0, c, 0, 2, 2,
                                          2),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "nothing to do"));
    ck_assert_int_eq(enco_linear_backward(ctx, a, 0, NULL, 0, NULL, 0, b, 0, NULL, 0, NULL, 0, 2,
                                          2, 2),
                     ENCO_ERR_INVALID_ARG); /* dx needs W */
    ck_assert_int_eq(enco_linear_backward(ctx, NULL, 0, a, 0, a, 2, b, 0, c, 0, NULL, 0, 2, 2,
                                          2),
                     ENCO_ERR_INVALID_ARG); /* dw and db overlap */
    test_release(a), test_release(b), test_release(c);
}
END_TEST

START_TEST(costs)
{
    enco_op_cost f = enco_linear_cost(10, 20, 30, 0, 0);
    ck_assert(f.flops == 2.0 * 10 * 20 * 30);
    ck_assert(f.bytes == 4.0 * (10 * 20 + 30 * 20 + 10 * 30));
    ck_assert(enco_linear_cost(10, 20, 30, 1, 0).flops == f.flops + 300);
    ck_assert(enco_linear_cost(10, 20, 30, 1, 1).flops == 2 * f.flops + 300);
}
END_TEST

static Suite *linear_suite(void)
{
    Suite *s = suite_create("linear");
    TCase *tc = tcase_create("linear");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, forward_matches_reference, 0, 2);
    tcase_add_test(tc, reference_backward_vs_finite_differences);
    tcase_add_test(tc, backward_matches_reference);
    tcase_add_test(tc, rejects_bad_args);
    tcase_add_test(tc, costs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(linear_suite()); }
