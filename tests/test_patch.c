/* Patch gather / scatter-add, L2 normalisation, bilinear resize. */
#include "harness.h"
#include "ops/patch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------- */

/* A zeroed buffer written from the host: test_alloc zeroes with
 * clEnqueueFillBuffer, which Oclgrind 21.10 leaves marked uninitialised. */
static cl_mem dev_zeros(size_t n)
{
    float *z = calloc(n ? n : 1, sizeof(float));
    ck_assert_ptr_nonnull(z);
    cl_mem m = test_upload(z, n ? n : 1);
    free(z);
    return m;
}

static cl_mem upload_ints(const int32_t *v, size_t n)
{
    cl_mem m = dev_zeros(n);
    ENCO_CK(enco_upload(test_ctx(), m, 0, n * sizeof(int32_t), v));
    return m;
}

static float *rand_f(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
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

/* Indices in [0, hw), with forced repeats (entry 1 repeats entry 0 and the
 * last repeats the middle one). */
static int32_t *make_indices(size_t n, size_t k, size_t hw, uint64_t seed)
{
    double *u = malloc(n * k * sizeof(double));
    int32_t *idx = malloc(n * k * sizeof(int32_t));
    ck_assert(u && idx);
    test_fill_uniform_f64(u, n * k, seed, 0.0, (double)hw);
    for (size_t i = 0; i < n * k; i++)
        idx[i] = (int32_t)floor(u[i]);
    for (size_t b = 0; b < n && k >= 3; b++) {
        idx[b * k + 1] = idx[b * k];
        idx[b * k + k - 1] = idx[b * k + k / 2];
    }
    free(u);
    return idx;
}

/* ---- gather ----------------------------------------------------------- */

typedef struct gshape {
    size_t n, c, h, w, k;
} gshape;

static const gshape gshapes_full[] = {
    {1, 1, 1, 1, 1},   {2, 3, 5, 7, 4},     {2, 8, 6, 6, 50}, /* K > H*W: repeats */
    {1, 64, 16, 16, 256}, {2, 5, 3, 3, 20}, {2, 16, 9, 7, 100},
};
static const gshape gshapes_tiny[] = {{1, 1, 1, 1, 1}, {2, 3, 5, 7, 4}, {2, 3, 3, 3, 20}};

static const gshape *gather_shapes(size_t *count)
{
    if (test_on_oclgrind()) {
        *count = sizeof gshapes_tiny / sizeof gshapes_tiny[0];
        return gshapes_tiny;
    }
    *count = sizeof gshapes_full / sizeof gshapes_full[0];
    return gshapes_full;
}

START_TEST(gather_forward_backward)
{
    size_t ns;
    const gshape *sh = gather_shapes(&ns);
    for (size_t s = 0; s < ns; s++) {
        size_t n = sh[s].n, c = sh[s].c, h = sh[s].h, w = sh[s].w, k = sh[s].k, hw = h * w;
        size_t fe = n * c * hw, re = n * k * c;
        /* Every buffer at an offset. */
        const size_t fo = 3, ro = 2, io = 1;
        float *feat = rand_f(fe + fo, 10 + s, -1, 1);
        int32_t *idx = make_indices(n, k, hw, 20 + s);
        int32_t *idx_pad = calloc(n * k + io, sizeof(int32_t));
        memcpy(idx_pad + io, idx, n * k * sizeof(int32_t));
        ENCO_CK(enco_patch_check_indices(idx, n, k, hw));
        cl_mem bfeat = test_upload(feat, fe + fo), bidx = upload_ints(idx_pad, n * k + io);
        cl_mem brows = dev_zeros(re + ro), flag = dev_zeros(1);

        ENCO_CK(enco_patch_gather_forward(test_ctx(), brows, ro, bfeat, fo, bidx, io, flag, 0, n,
                                          c, h, w, k));
        float *rows = test_download(brows, re + ro);
        double *fd = to_f64(feat + fo, fe), *rref = malloc(re * sizeof(double));
        enco_patch_gather_forward_ref(rref, fd, idx, n, c, h, w, k);
        char what[96];
        snprintf(what, sizeof what, "patch_gather_forward N=%zu C=%zu %zux%zu K=%zu", n, c, h, w,
                 k);
        test_assert_close(what, rows + ro, rref, re, 0, 0);
        ENCO_CK(enco_patch_flag_check(test_ctx(), flag, 0, k, hw));

        /* Backward accumulates into a non-zero dfeat. */
        float *drows = rand_f(re + ro, 30 + s, -1, 1);
        float *dfeat0 = rand_f(fe + fo, 40 + s, -1, 1);
        cl_mem bdrows = test_upload(drows, re + ro), bdfeat = test_upload(dfeat0, fe + fo);
        ENCO_CK(enco_patch_gather_backward(test_ctx(), bdfeat, fo, bdrows, ro, bidx, io, flag, 0,
                                           n, c, h, w, k));
        float *dfeat = test_download(bdfeat, fe + fo);
        double *dref = to_f64(dfeat0 + fo, fe), *drd = to_f64(drows + ro, re);
        enco_patch_gather_backward_ref(dref, drd, idx, n, c, h, w, k);
        snprintf(what, sizeof what, "patch_gather_backward N=%zu C=%zu %zux%zu K=%zu", n, c, h, w,
                 k);
        test_assert_close(what, dfeat + fo, dref, fe, 1e-6, 1e-6);
        for (size_t i = 0; i < fo; i++)
            ck_assert(dfeat[i] == dfeat0[i]);
        ENCO_CK(enco_patch_flag_check(test_ctx(), flag, 0, k, hw));

        /* Determinism, forward and backward (from the same start). */
        ENCO_CK(enco_patch_gather_forward(test_ctx(), brows, ro, bfeat, fo, bidx, io, NULL, 0, n,
                                          c, h, w, k));
        float *rows2 = test_download(brows, re + ro);
        test_assert_bitwise(what, rows, rows2, re + ro);
        ENCO_CK(enco_upload(test_ctx(), bdfeat, 0, (fe + fo) * sizeof(float), dfeat0));
        ENCO_CK(enco_patch_gather_backward(test_ctx(), bdfeat, fo, bdrows, ro, bidx, io, NULL, 0,
                                           n, c, h, w, k));
        float *dfeat2 = test_download(bdfeat, fe + fo);
        test_assert_bitwise(what, dfeat, dfeat2, fe + fo);

        free(feat), free(idx), free(idx_pad), free(rows), free(rows2), free(fd), free(rref);
        free(drows), free(dfeat0), free(dfeat), free(dfeat2), free(dref), free(drd);
        test_release(bfeat), test_release(bidx), test_release(brows), test_release(flag);
        test_release(bdrows), test_release(bdfeat);
    }
}
END_TEST

/* With many repeats the scatter-add must sum every contribution: K = 12
 * samples of a 2x2 map, compared with hand-summed values. */
START_TEST(gather_backward_repeats_sum)
{
    const int32_t idx[12] = {0, 0, 0, 3, 3, 1, 0, 3, 3, 3, 0, 0};
    float drows[12];
    for (int i = 0; i < 12; i++)
        drows[i] = (float)(1 << i); /* C = 1: exact powers of two */
    cl_mem bidx = upload_ints(idx, 12), bdr = test_upload(drows, 12), bdf = dev_zeros(4);
    ENCO_CK(enco_patch_gather_backward(test_ctx(), bdf, 0, bdr, 0, bidx, 0, NULL, 0, 1, 1, 2, 2,
                                       12));
    float *df = test_download(bdf, 4);
    ck_assert(df[0] == (float)(1 + 2 + 4 + 64 + 1024 + 2048));
    ck_assert(df[1] == 32.0f);
    ck_assert(df[2] == 0.0f);
    ck_assert(df[3] == (float)(8 + 16 + 128 + 256 + 512));
    free(df);
    test_release(bidx), test_release(bdr), test_release(bdf);
}
END_TEST

START_TEST(gather_finite_differences)
{
    enum { N = 2, C = 3, H = 2, W = 3, K = 9 };
    double feat[N * C * H * W], g[N * K * C], rows[N * K * C], grad[N * C * H * W], fdv[N * C * H * W];
    int32_t *idx = make_indices(N, K, H * W, 5);
    test_fill_uniform_f64(feat, N * C * H * W, 6, -1, 1);
    test_fill_uniform_f64(g, N * K * C, 7, -1, 1);
    memset(grad, 0, sizeof grad);
    enco_patch_gather_backward_ref(grad, g, idx, N, C, H, W, K);
    const double h = 1e-6;
    float got[N * C * H * W];
    for (size_t i = 0; i < N * C * H * W; i++) {
        double v = feat[i], lp = 0, lm = 0;
        feat[i] = v + h;
        enco_patch_gather_forward_ref(rows, feat, idx, N, C, H, W, K);
        for (size_t j = 0; j < N * K * C; j++)
            lp += g[j] * rows[j];
        feat[i] = v - h;
        enco_patch_gather_forward_ref(rows, feat, idx, N, C, H, W, K);
        for (size_t j = 0; j < N * K * C; j++)
            lm += g[j] * rows[j];
        feat[i] = v;
        fdv[i] = (lp - lm) / (2 * h);
        got[i] = (float)grad[i];
    }
    test_assert_close("patch_gather_ref_backward_vs_fd", got, fdv, N * C * H * W, 1e-7, 1e-6);
    free(idx);
}
END_TEST

START_TEST(gather_bad_indices_flagged)
{
    /* N = 2, K = 4, C = 2, 2x2 map. Bad entries: (0, 1) = -1, (1, 2) = 4. */
    enum { N = 2, C = 2, H = 2, W = 2, K = 4 };
    const int32_t idx[N * K] = {0, -1, 3, 2, 1, 1, 4, 0};
    ck_assert_int_eq(enco_patch_check_indices(idx, N, K, H * W), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "(n 0, k 1) is -1"));
    float feat[N * C * H * W];
    for (int i = 0; i < N * C * H * W; i++)
        feat[i] = (float)(i + 1);
    cl_mem bf = test_upload(feat, N * C * H * W), bi = upload_ints(idx, N * K);
    cl_mem br = dev_zeros(N * K * C), flag = dev_zeros(1);
    ENCO_CK(enco_patch_gather_forward(test_ctx(), br, 0, bf, 0, bi, 0, flag, 0, N, C, H, W, K));
    float *rows = test_download(br, N * K * C);
    double ref[N * K * C], fd[N * C * H * W];
    for (int i = 0; i < N * C * H * W; i++)
        fd[i] = feat[i];
    enco_patch_gather_forward_ref(ref, fd, idx, N, C, H, W, K);
    test_assert_close("patch_gather_forward bad indices", rows, ref, N * K * C, 0, 0);
    ck_assert(rows[1 * C] == 0.0f && rows[1 * C + 1] == 0.0f);              /* (0, 1) */
    ck_assert(rows[(K + 2) * C] == 0.0f && rows[(K + 2) * C + 1] == 0.0f); /* (1, 2) */
    ck_assert(rows[0] == 1.0f && rows[1] == 5.0f); /* (0, 0): feat[0, :, 0] */
    /* The flag names the last bad entry, then is cleared. */
    ck_assert_int_eq(enco_patch_flag_check(test_ctx(), flag, 0, K, H * W), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "(n 1, k 2) is out of range [0, 4)"));
    ENCO_CK(enco_patch_flag_check(test_ctx(), flag, 0, K, H * W));

    /* The backward skips the bad entries and flags them too. */
    float drows[N * K * C];
    for (int i = 0; i < N * K * C; i++)
        drows[i] = 1.0f;
    cl_mem bdr = test_upload(drows, N * K * C), bdf = dev_zeros(N * C * H * W);
    ENCO_CK(enco_patch_gather_backward(test_ctx(), bdf, 0, bdr, 0, bi, 0, flag, 0, N, C, H, W, K));
    float *df = test_download(bdf, N * C * H * W);
    double dref[N * C * H * W] = {0}, drd[N * K * C];
    for (int i = 0; i < N * K * C; i++)
        drd[i] = 1.0;
    enco_patch_gather_backward_ref(dref, drd, idx, N, C, H, W, K);
    test_assert_close("patch_gather_backward bad indices", df, dref, N * C * H * W, 0, 0);
    /* Image 0 got 3 valid samples per channel, image 1 got 3 too. */
    double sum0 = 0, sum1 = 0;
    for (int i = 0; i < C * H * W; i++) {
        sum0 += df[i];
        sum1 += df[C * H * W + i];
    }
    ck_assert(sum0 == 3.0 * C && sum1 == 3.0 * C);
    ck_assert_int_eq(enco_patch_flag_check(test_ctx(), flag, 0, K, H * W), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "(n 1, k 2)"));
    free(rows), free(df);
    test_release(bf), test_release(bi), test_release(br), test_release(flag);
    test_release(bdr), test_release(bdf);
}
END_TEST

/* ---- L2 normalisation ----------------------------------------------------- */

typedef struct lshape {
    size_t rows, dim;
} lshape;

static const lshape lshapes_full[] = {{1, 1}, {3, 5}, {7, 130}, {4, 64}, {37, 256}, {512, 256}};
static const lshape lshapes_tiny[] = {{1, 1}, {3, 5}, {5, 70}};

START_TEST(l2norm_forward_backward)
{
    size_t ns = test_on_oclgrind() ? sizeof lshapes_tiny / sizeof lshapes_tiny[0]
                                   : sizeof lshapes_full / sizeof lshapes_full[0];
    const lshape *sh = test_on_oclgrind() ? lshapes_tiny : lshapes_full;
    for (size_t s = 0; s < ns; s++) {
        size_t r = sh[s].rows, d = sh[s].dim, e = r * d;
        float *x = rand_f(e, 50 + s, -1, 1), *g = rand_f(e, 60 + s, -1, 1);
        cl_mem bx = test_upload(x, e), bg = test_upload(g, e);
        cl_mem by = dev_zeros(e + 4), bdx = dev_zeros(e);
        ENCO_CK(enco_l2norm_forward(test_ctx(), by, 4, bx, 0, r, d));
        float *y = test_download(by, e + 4);
        double *xd = to_f64(x, e), *gd = to_f64(g, e);
        double *yref = malloc(e * sizeof(double)), *dref = malloc(e * sizeof(double));
        enco_l2norm_forward_ref(yref, xd, r, d, 1e-7);
        char what[96];
        snprintf(what, sizeof what, "l2norm_forward rows=%zu dim=%zu", r, d);
        test_assert_close(what, y + 4, yref, e, 1e-7, 2e-6);

        ENCO_CK(enco_l2norm_backward(test_ctx(), bdx, 0, bg, 0, bx, 0, r, d));
        float *dx = test_download(bdx, e);
        enco_l2norm_backward_ref(dref, gd, xd, r, d, 1e-7);
        snprintf(what, sizeof what, "l2norm_backward rows=%zu dim=%zu", r, d);
        test_assert_close(what, dx, dref, e, 1e-6, 1e-5);

        /* Determinism and in-place runs give the same bits. */
        ENCO_CK(enco_l2norm_backward(test_ctx(), bg, 0, bg, 0, bx, 0, r, d));
        float *dx2 = test_download(bg, e);
        test_assert_bitwise(what, dx, dx2, e);
        ENCO_CK(enco_l2norm_forward(test_ctx(), bx, 0, bx, 0, r, d));
        float *y2 = test_download(bx, e);
        test_assert_bitwise(what, y + 4, y2, e);

        free(x), free(g), free(y), free(dx), free(dx2), free(y2), free(xd), free(gd), free(yref),
            free(dref);
        test_release(bx), test_release(bg), test_release(by), test_release(bdx);
    }
}
END_TEST

START_TEST(l2norm_finite_differences)
{
    enum { R = 3, D = 5 };
    double x[R * D], g[R * D], y[R * D], dx[R * D], fdv[R * D];
    test_fill_uniform_f64(x, R * D, 8, -1, 1);
    test_fill_uniform_f64(g, R * D, 9, -1, 1);
    enco_l2norm_backward_ref(dx, g, x, R, D, 1e-7);
    const double h = 1e-6;
    float got[R * D];
    for (size_t i = 0; i < R * D; i++) {
        double v = x[i], lp = 0, lm = 0;
        x[i] = v + h;
        enco_l2norm_forward_ref(y, x, R, D, 1e-7);
        for (size_t j = 0; j < R * D; j++)
            lp += g[j] * y[j];
        x[i] = v - h;
        enco_l2norm_forward_ref(y, x, R, D, 1e-7);
        for (size_t j = 0; j < R * D; j++)
            lm += g[j] * y[j];
        x[i] = v;
        fdv[i] = (lp - lm) / (2 * h);
        got[i] = (float)dx[i];
    }
    test_assert_close("l2norm_ref_backward_vs_fd", got, fdv, R * D, 1e-7, 1e-6);
}
END_TEST

/* eps is added outside the square root (x / (||x|| + 1e-7)); a zero row
 * stays zero and its gradient is dy / 1e-7. */
START_TEST(l2norm_eps_and_zero_row)
{
    const float x[6] = {3e-7f, 4e-7f, 0.0f, 0.0f, 3.0f, 4.0f};
    const float g[6] = {1.0f, -2.0f, 0.5f, -0.25f, 1.0f, 1.0f};
    cl_mem bx = test_upload(x, 6), bg = test_upload(g, 6), by = dev_zeros(6), bd = dev_zeros(6);
    ENCO_CK(enco_l2norm_forward(test_ctx(), by, 0, bx, 0, 3, 2));
    float *y = test_download(by, 6);
    /* Row 0: ||x|| = 5e-7, so y = x / 6e-7 = (0.5, 0.667): eps is not inside the sqrt
     * (that would give about 1e-3). */
    double yref[6] = {0.5, 4.0 / 6.0, 0, 0, 3.0 / (5.0 + 1e-7), 4.0 / (5.0 + 1e-7)};
    test_assert_close("l2norm eps outside sqrt", y, yref, 6, 1e-7, 1e-5);
    ENCO_CK(enco_l2norm_backward(test_ctx(), bd, 0, bg, 0, bx, 0, 3, 2));
    float *dx = test_download(bd, 6);
    for (int i = 0; i < 6; i++)
        ck_assert(isfinite(dx[i]));
    double dref[6], xd[6], gd[6];
    for (int i = 0; i < 6; i++)
        xd[i] = x[i], gd[i] = g[i];
    enco_l2norm_backward_ref(dref, gd, xd, 3, 2, 1e-7);
    ck_assert(fabs(dref[2] - 0.5 / 1e-7) < 1e-3 && fabs(dref[3] + 0.25 / 1e-7) < 1e-3);
    test_assert_close("l2norm backward eps/zero row", dx, dref, 6, 1e-6, 1e-4);
    free(y), free(dx);
    test_release(bx), test_release(bg), test_release(by), test_release(bd);
}
END_TEST

/* ---- bilinear ------------------------------------------------------------- */

typedef struct bshape {
    size_t n, c, h, w, oh, ow;
} bshape;

static const bshape bshapes_full[] = {
    {1, 1, 30, 30, 64, 64}, {1, 1, 30, 30, 256, 256}, {2, 3, 5, 7, 11, 3}, {1, 2, 64, 64, 30, 30},
    {1, 1, 1, 1, 4, 5},     {1, 1, 3, 4, 1, 1},       {2, 2, 7, 5, 13, 17}, {2, 1, 30, 30, 30, 30},
};
static const bshape bshapes_tiny[] = {
    {2, 3, 5, 7, 11, 3}, {1, 1, 6, 6, 4, 3}, {1, 1, 1, 1, 4, 5}, {1, 1, 3, 4, 1, 1}, {1, 1, 3, 3, 3, 3},
};

START_TEST(bilinear_matches_reference)
{
    size_t ns = test_on_oclgrind() ? sizeof bshapes_tiny / sizeof bshapes_tiny[0]
                                   : sizeof bshapes_full / sizeof bshapes_full[0];
    const bshape *sh = test_on_oclgrind() ? bshapes_tiny : bshapes_full;
    for (size_t s = 0; s < ns; s++) {
        bshape b = sh[s];
        size_t ie = b.n * b.c * b.h * b.w, oe = b.n * b.c * b.oh * b.ow;
        float *x = rand_f(ie + 2, 70 + s, -1, 1);
        cl_mem bx = test_upload(x, ie + 2), by = dev_zeros(oe);
        ENCO_CK(enco_bilinear_forward(test_ctx(), by, 0, bx, 2, b.n, b.c, b.h, b.w, b.oh, b.ow));
        float *y = test_download(by, oe);
        double *xd = to_f64(x + 2, ie), *ref = malloc(oe * sizeof(double));
        enco_bilinear_forward_ref(ref, xd, b.n, b.c, b.h, b.w, b.oh, b.ow);
        char what[96];
        snprintf(what, sizeof what, "bilinear_forward N=%zu C=%zu %zux%zu->%zux%zu", b.n, b.c, b.h,
                 b.w, b.oh, b.ow);
        /* float coordinates (as PyTorch) vs double ones: a few ulps of the
         * source position times the data slope. */
        test_assert_close(what, y, ref, oe, 1e-5, 1e-5);
        if (b.h == b.oh && b.w == b.ow) /* same size: an exact copy */
            test_assert_bitwise("bilinear identity", y, x + 2, oe);
        ENCO_CK(enco_bilinear_forward(test_ctx(), by, 0, bx, 2, b.n, b.c, b.h, b.w, b.oh, b.ow));
        float *y2 = test_download(by, oe);
        test_assert_bitwise(what, y, y2, oe);
        free(x), free(y), free(y2), free(xd), free(ref);
        test_release(bx), test_release(by);
    }
}
END_TEST

/* Values printed by PyTorch 1.13 (float32) for
 * F.interpolate(x, size, mode='bilinear', align_corners=False) with
 * x[i] = ((i * 7) % 11 - 5) / 4 on a 1x1xhxw map. */
static const float torch_3x4_to_5x6[30] = {
    -1.25f,       -0.375f,      0.333333254f,  -0.333333373f, 0.375000209f, 1.25f,
    -0.649999976f, -0.324999988f, 0.0166666284f, 0.0833333656f, 0.425000072f, 0.74999994f,
    0.249999925f, -0.25f,       -0.458333164f, 0.708333373f,  0.499999791f, -7.4505806e-08f,
    -0.500000119f, -0.174999982f, 0.166666746f, 0.23333326f,  -0.250000209f, -0.750000119f,
    -1.0f,        -0.125f,      0.583333254f,  -0.0833333805f, -0.750000119f, -1.25f};
static const float torch_5x7_to_2x3[6] = {-0.520833313f, 0.125000045f,  0.0833333805f,
                                          -0.604166627f, -0.18749994f, -0.229166612f};

static void check_torch(size_t h, size_t w, size_t oh, size_t ow, const float *expect)
{
    float x[35];
    for (size_t i = 0; i < h * w; i++)
        x[i] = (float)((int)((i * 7) % 11) - 5) / 4.0f;
    cl_mem bx = test_upload(x, h * w), by = dev_zeros(oh * ow);
    ENCO_CK(enco_bilinear_forward(test_ctx(), by, 0, bx, 0, 1, 1, h, w, oh, ow));
    float *y = test_download(by, oh * ow);
    double ref[30];
    for (size_t i = 0; i < oh * ow; i++)
        ref[i] = expect[i];
    char what[64];
    snprintf(what, sizeof what, "bilinear vs torch %zux%zu->%zux%zu", h, w, oh, ow);
    test_assert_close(what, y, ref, oh * ow, 1e-6, 1e-6);
    free(y);
    test_release(bx), test_release(by);
}

START_TEST(bilinear_matches_torch_values)
{
    check_torch(3, 4, 5, 6, torch_3x4_to_5x6);
    check_torch(5, 7, 2, 3, torch_5x7_to_2x3);
}
END_TEST

/* ---- rejections and costs --------------------------------------------------- */

START_TEST(rejects_bad_args)
{
    enco_ctx *ctx = test_ctx();
    cl_mem a = dev_zeros(64), b = dev_zeros(64), i = dev_zeros(64);
    ck_assert_int_eq(enco_patch_gather_forward(ctx, a, 0, b, 0, i, 0, NULL, 0, 1, 2, 2, 2, 0),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "bad shape"));
    ck_assert_int_eq(enco_patch_gather_forward(ctx, a, 0, b, 0, i, 0, NULL, 0, 2, 4, 3, 3, 4),
                     ENCO_ERR_INVALID_ARG); /* feat needs 72 */
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "feat needs"));
    ck_assert_int_eq(enco_patch_gather_forward(ctx, a, 0, a, 4, i, 0, NULL, 0, 1, 2, 2, 2, 4),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "overlap"));
    ck_assert_int_eq(enco_patch_gather_backward(ctx, a, 0, b, 0, NULL, 0, NULL, 0, 1, 2, 2, 2, 4),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_patch_gather_backward(ctx, a, 0, b, 0, i, 0, i, 2, 1, 2, 2, 2, 4),
                     ENCO_ERR_INVALID_ARG); /* flag inside idx */
    ck_assert_int_eq(enco_l2norm_forward(ctx, a, 0, b, 0, 4, 0), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_l2norm_forward(ctx, a, 1, a, 0, 4, 4), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_l2norm_backward(ctx, a, 0, b, 0, b, 0, 5, 13), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_bilinear_forward(ctx, a, 0, b, 0, 1, 1, 4, 4, 0, 4),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_bilinear_forward(ctx, a, 0, b, 0, 1, 1, 4, 4, 9, 9),
                     ENCO_ERR_INVALID_ARG); /* y needs 81 */
    ck_assert_int_eq(enco_patch_flag_check(ctx, NULL, 0, 4, 4), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_patch_check_indices(NULL, 1, 1, 1), ENCO_ERR_INVALID_ARG);
    test_release(a), test_release(b), test_release(i);
}
END_TEST

START_TEST(costs)
{
    ck_assert(enco_patch_gather_cost(2, 3, 4, 0).bytes == 4.0 * 8 + 8.0 * 24);
    ck_assert(enco_patch_gather_cost(2, 3, 4, 1).flops == 24.0);
    ck_assert(enco_l2norm_cost(10, 256, 0).flops == 3.0 * 2560);
    ck_assert(enco_l2norm_cost(10, 256, 1).bytes == 12.0 * 2560);
    ck_assert(enco_bilinear_cost(1, 1, 30, 30, 64, 64).bytes == 4.0 * (900 + 4096));
}
END_TEST

static Suite *patch_suite(void)
{
    Suite *s = suite_create("patch");
    TCase *tc = tcase_create("patch");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, gather_forward_backward);
    tcase_add_test(tc, gather_backward_repeats_sum);
    tcase_add_test(tc, gather_finite_differences);
    tcase_add_test(tc, gather_bad_indices_flagged);
    tcase_add_test(tc, l2norm_forward_backward);
    tcase_add_test(tc, l2norm_finite_differences);
    tcase_add_test(tc, l2norm_eps_and_zero_row);
    tcase_add_test(tc, bilinear_matches_reference);
    tcase_add_test(tc, bilinear_matches_torch_values);
    tcase_add_test(tc, rejects_bad_args);
    tcase_add_test(tc, costs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(patch_suite()); }
