/* Norm family: InstanceNorm2d (+ fused ReLU / LeakyReLU), BatchNorm1d
 * (training, running statistics), LayerNorm; forward and backward against
 * the float64 references, finite differences, determinism, argument checks. */
#include "harness.h"
#include "ops/norm.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *act_name(enco_norm_act a)
{
    return a == ENCO_NORM_ACT_NONE ? "none" : (a == ENCO_NORM_ACT_RELU ? "relu" : "leaky");
}

static double *f64(const float *x, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof(double));
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

static float *rnd(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(x);
    test_fill_uniform(x, n, seed, lo, hi);
    return x;
}

static double *dalloc(size_t n)
{
    double *d = calloc(n ? n : 1, sizeof(double));
    ck_assert_ptr_nonnull(d);
    return d;
}

/* Device buffer holding host[0..n) at element offset off (garbage before). */
static cl_mem upload_at(const float *host, size_t n, size_t off)
{
    float *tmp = malloc((n + off + 1) * sizeof(float));
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

static void close_named(const char *prefix, const char *part, const float *got, const double *ref,
                        size_t n, double atol, double rtol)
{
    char what[160];
    snprintf(what, sizeof what, "%s_%s", prefix, part);
    test_assert_close(what, got, ref, n, atol, rtol);
}

/* ---- InstanceNorm ----------------------------------------------------- */

typedef struct ishape {
    int n, c, h, w;
    float lo, hi; /* input range: a shifted range checks the two-pass variance */
} ishape;

static const ishape in_shapes[] = {
    {2, 3, 7, 5, -1, 1},   {1, 2, 16, 16, 2, 4}, {2, 1, 1, 3, -1, 1},
    {1, 4, 31, 33, -1, 1}, {1, 1, 256, 256, -1, 1},
};
static const ishape in_shapes_tiny[] = {{2, 2, 3, 5, -1, 1}, {1, 1, 1, 2, 2, 4}, {1, 1, 19, 17, -1, 1}};

static const enco_norm_act acts[] = {ENCO_NORM_ACT_NONE, ENCO_NORM_ACT_RELU, ENCO_NORM_ACT_LEAKY};

static void instnorm_case(ishape s, enco_norm_act act, size_t off, uint64_t seed)
{
    enco_ctx *ctx = test_ctx();
    const float slope = 0.2f;
    size_t e = (size_t)s.n * s.c * s.h * s.w, p = (size_t)s.n * s.c;
    float *x = rnd(e, seed, s.lo, s.hi), *dy = rnd(e, seed + 1, -1, 1);
    cl_mem bx = upload_at(x, e, off), bdy = upload_at(dy, e, off + 1);
    cl_mem by = test_alloc(e + off + 2), bm = test_alloc(p + off), br = test_alloc(p + off + 3);
    cl_mem bdx = test_alloc(e + 4);
    ENCO_CK(enco_instnorm_forward(ctx, by, off + 2, bm, off, br, off + 3, bx, off, s.n, s.c, s.h,
                                  s.w, act, slope));
    ENCO_CK(enco_instnorm_backward(ctx, bdx, 4, bdy, off + 1, bx, off, bm, off, br, off + 3, s.n,
                                   s.c, s.h, s.w, act, slope));
    float *y = download_at(by, e, off + 2), *mean = download_at(bm, p, off);
    float *rstd = download_at(br, p, off + 3), *dx = download_at(bdx, e, 4);
    double *dxv = f64(x, e), *ddy = f64(dy, e);
    double *ry = dalloc(e), *rm = dalloc(p), *rr = dalloc(p), *rdx = dalloc(e);
    enco_instnorm_forward_ref(ry, rm, rr, dxv, s.n, s.c, s.h, s.w, act, slope);
    enco_instnorm_backward_ref(rdx, ddy, dxv, s.n, s.c, s.h, s.w, act, slope);
    char pre[96];
    snprintf(pre, sizeof pre, "instnorm_%s_%dx%dx%dx%d", act_name(act), s.n, s.c, s.h, s.w);
    close_named(pre, "forward", y, ry, e, 1e-5, 1e-4);
    close_named(pre, "mean", mean, rm, p, 1e-6, 1e-5);
    close_named(pre, "rstd", rstd, rr, p, 1e-6, 1e-4);
    close_named(pre, "backward", dx, rdx, e, 1e-4, 1e-4);
    free(x), free(dy), free(y), free(mean), free(rstd), free(dx);
    free(dxv), free(ddy), free(ry), free(rm), free(rr), free(rdx);
    test_release(bx), test_release(bdy), test_release(by), test_release(bm), test_release(br);
    test_release(bdx);
}

START_TEST(instnorm_forward_backward)
{
    enco_norm_act act = acts[_i];
    int tiny = test_on_oclgrind();
    const ishape *list = tiny ? in_shapes_tiny : in_shapes;
    size_t cnt = tiny ? COUNT(in_shapes_tiny) : COUNT(in_shapes);
    for (size_t i = 0; i < cnt; i++)
        instnorm_case(list[i], act, i % 2 ? 3 : 0, 10 + i + 100 * (uint64_t)_i);
}
END_TEST

/* ---- BatchNorm -------------------------------------------------------- */

typedef struct mshape {
    int m, c;
} mshape;

static const mshape bn_shapes[] = {{2, 3}, {7, 5}, {64, 33}, {3, 17}, {512, 256}, {300, 7}};
static const mshape bn_shapes_tiny[] = {{2, 3}, {5, 4}, {33, 17}};

/* variant bit 0: affine, bit 1: running statistics. */
static void batchnorm_case(mshape s, int variant, size_t off, uint64_t seed)
{
    enco_ctx *ctx = test_ctx();
    int affine = variant & 1, track = (variant >> 1) & 1;
    const float momentum = 0.1f;
    size_t e = (size_t)s.m * s.c, c = (size_t)s.c;
    float *x = rnd(e, seed, -1, 3), *dy = rnd(e, seed + 1, -1, 1);
    float *w = rnd(c, seed + 2, 0.5f, 1.5f), *b = rnd(c, seed + 3, -1, 1);
    float *rm0 = rnd(c, seed + 4, -1, 1), *rv0 = rnd(c, seed + 5, 0.5f, 2);
    float *dw0 = rnd(c, seed + 6, -1, 1), *db0 = rnd(c, seed + 7, -1, 1);
    cl_mem bx = upload_at(x, e, off), bdy = upload_at(dy, e, off + 1);
    cl_mem bw = upload_at(w, c, off + 2), bb = upload_at(b, c, off);
    cl_mem brm = upload_at(rm0, c, off + 1), brv = upload_at(rv0, c, off);
    cl_mem bdw = upload_at(dw0, c, off + 3), bdb = upload_at(db0, c, off + 2);
    cl_mem by = test_alloc(e + off), bm = test_alloc(c + 1), br = test_alloc(c + 2);
    cl_mem bdx = test_alloc(e + off + 1);
    ENCO_CK(enco_batchnorm_forward(ctx, by, off, bm, 1, br, 2, track ? brm : NULL, off + 1,
                                   track ? brv : NULL, off, bx, off, affine ? bw : NULL, off + 2,
                                   affine ? bb : NULL, off, s.m, s.c, momentum));
    ENCO_CK(enco_batchnorm_backward(ctx, bdx, off + 1, affine ? bdw : NULL, off + 3,
                                    affine ? bdb : NULL, off + 2, bdy, off + 1, bx, off, bm, 1, br,
                                    2, affine ? bw : NULL, off + 2, s.m, s.c));
    float *y = download_at(by, e, off), *mean = download_at(bm, c, 1);
    float *rstd = download_at(br, c, 2), *dx = download_at(bdx, e, off + 1);
    float *rm = download_at(brm, c, off + 1), *rv = download_at(brv, c, off);
    float *dw = download_at(bdw, c, off + 3), *db = download_at(bdb, c, off + 2);

    double *dxv = f64(x, e), *ddy = f64(dy, e), *dwv = f64(w, c), *dbv = f64(b, c);
    double *rrm = f64(rm0, c), *rrv = f64(rv0, c), *rdw = f64(dw0, c), *rdb = f64(db0, c);
    double *ry = dalloc(e), *rmean = dalloc(c), *rrs = dalloc(c), *rdx = dalloc(e);
    enco_batchnorm_forward_ref(ry, rmean, rrs, track ? rrm : NULL, track ? rrv : NULL, dxv,
                               affine ? dwv : NULL, affine ? dbv : NULL, s.m, s.c, momentum);
    enco_batchnorm_backward_ref(rdx, affine ? rdw : NULL, affine ? rdb : NULL, ddy, dxv,
                                affine ? dwv : NULL, s.m, s.c);
    char pre[96];
    snprintf(pre, sizeof pre, "batchnorm_%s%s_%dx%d", affine ? "affine" : "plain",
             track ? "_running" : "", s.m, s.c);
    close_named(pre, "forward", y, ry, e, 1e-5, 1e-4);
    close_named(pre, "mean", mean, rmean, c, 1e-6, 1e-5);
    close_named(pre, "rstd", rstd, rrs, c, 1e-6, 1e-4);
    /* Untracked running statistics stay untouched (rrm still holds rm0). */
    close_named(pre, "running_mean", rm, rrm, c, 1e-6, 1e-5);
    close_named(pre, "running_var", rv, rrv, c, 1e-6, 1e-5);
    close_named(pre, "backward", dx, rdx, e, 1e-4, 1e-4);
    close_named(pre, "dweight", dw, rdw, c, 1e-4, 1e-4);
    close_named(pre, "dbias", db, rdb, c, 1e-4, 1e-4);
    free(x), free(dy), free(w), free(b), free(rm0), free(rv0), free(dw0), free(db0);
    free(y), free(mean), free(rstd), free(dx), free(rm), free(rv), free(dw), free(db);
    free(dxv), free(ddy), free(dwv), free(dbv), free(rrm), free(rrv), free(rdw), free(rdb);
    free(ry), free(rmean), free(rrs), free(rdx);
    cl_mem all[] = {bx, bdy, bw, bb, brm, brv, bdw, bdb, by, bm, br, bdx};
    for (size_t i = 0; i < COUNT(all); i++)
        test_release(all[i]);
}

START_TEST(batchnorm_forward_backward)
{
    int tiny = test_on_oclgrind();
    const mshape *list = tiny ? bn_shapes_tiny : bn_shapes;
    size_t cnt = tiny ? COUNT(bn_shapes_tiny) : COUNT(bn_shapes);
    for (size_t i = 0; i < cnt; i++)
        batchnorm_case(list[i], _i, i % 2 ? 2 : 0, 500 + i + 50 * (uint64_t)_i);
}
END_TEST

/* Known values: x column [1, 2, 3, 4]: mean 2.5, biased var 1.25, unbiased
 * 5/3. From running (0, 1), momentum 0.1, twice. */
START_TEST(batchnorm_running_stats_values)
{
    enco_ctx *ctx = test_ctx();
    const float x[8] = {1, -2, 2, -2, 3, -2, 4, -2}; /* column 1 constant */
    const float rm0[2] = {0, 0.5f}, rv0[2] = {1, 1};
    cl_mem bx = test_upload(x, 8), brm = test_upload(rm0, 2), brv = test_upload(rv0, 2);
    cl_mem by = test_alloc(8), bm = test_alloc(2), br = test_alloc(2);
    ENCO_CK(enco_batchnorm_forward(ctx, by, 0, bm, 0, br, 0, brm, 0, brv, 0, bx, 0, NULL, 0, NULL,
                                   0, 4, 2, 0.1f));
    float *rm = test_download(brm, 2), *rv = test_download(brv, 2);
    float *mean = test_download(bm, 2), *rstd = test_download(br, 2), *y = test_download(by, 8);
    ck_assert_float_eq_tol(mean[0], 2.5f, 1e-6f);
    ck_assert_float_eq_tol(mean[1], -2.0f, 1e-6f);
    ck_assert_float_eq_tol(rstd[0], 1.0 / sqrt(1.25 + 1e-5), 1e-6f);
    ck_assert_float_eq_tol(rstd[1], 1.0 / sqrt(1e-5), 1e-2f);
    ck_assert_float_eq_tol(rm[0], 0.25f, 1e-6f);
    ck_assert_float_eq_tol(rm[1], 0.9 * 0.5 + 0.1 * -2.0, 1e-6f);
    ck_assert_float_eq_tol(rv[0], 0.9 + 0.1 * 5.0 / 3.0, 1e-6f);
    ck_assert_float_eq_tol(rv[1], 0.9f, 1e-6f);
    ck_assert_float_eq_tol(y[0], -1.5 / sqrt(1.25 + 1e-5), 1e-5f);
    ck_assert_float_eq_tol(y[1], 0.0f, 1e-6f);
    free(rm), free(rv);
    ENCO_CK(enco_batchnorm_forward(ctx, by, 0, bm, 0, br, 0, brm, 0, brv, 0, bx, 0, NULL, 0, NULL,
                                   0, 4, 2, 0.1f));
    rm = test_download(brm, 2), rv = test_download(brv, 2);
    ck_assert_float_eq_tol(rm[0], 0.9 * 0.25 + 0.1 * 2.5, 1e-6f);
    ck_assert_float_eq_tol(rv[0], 0.9 * (0.9 + 0.1 * 5.0 / 3.0) + 0.1 * 5.0 / 3.0, 1e-6f);
    ck_assert_float_eq_tol(rv[1], 0.81f, 1e-6f);
    free(rm), free(rv), free(mean), free(rstd), free(y);
    cl_mem all[] = {bx, brm, brv, by, bm, br};
    for (size_t i = 0; i < COUNT(all); i++)
        test_release(all[i]);
}
END_TEST

/* ---- LayerNorm -------------------------------------------------------- */

static const mshape ln_shapes[] = {{1, 1}, {5, 1}, {4, 7}, {33, 256}, {512, 256}, {3, 300}, {2, 3}};
static const mshape ln_shapes_tiny[] = {{1, 1}, {3, 5}, {4, 33}};

static void layernorm_case(mshape s, size_t off, uint64_t seed)
{
    enco_ctx *ctx = test_ctx();
    size_t e = (size_t)s.m * s.c, c = (size_t)s.c, m = (size_t)s.m;
    float *x = rnd(e, seed, -2, 1), *dy = rnd(e, seed + 1, -1, 1);
    float *w = rnd(c, seed + 2, 0.5f, 1.5f), *b = rnd(c, seed + 3, -1, 1);
    float *dw0 = rnd(c, seed + 4, -1, 1), *db0 = rnd(c, seed + 5, -1, 1);
    cl_mem bx = upload_at(x, e, off), bdy = upload_at(dy, e, off + 1);
    cl_mem bw = upload_at(w, c, off + 2), bb = upload_at(b, c, off);
    cl_mem bdw = upload_at(dw0, c, off + 3), bdb = upload_at(db0, c, off + 2);
    cl_mem by = test_alloc(e + off), bm = test_alloc(m + 1), br = test_alloc(m + 2);
    cl_mem bdx = test_alloc(e + off + 1);
    ENCO_CK(enco_layernorm_forward(ctx, by, off, bm, 1, br, 2, bx, off, bw, off + 2, bb, off, s.m,
                                   s.c));
    ENCO_CK(enco_layernorm_backward(ctx, bdx, off + 1, bdw, off + 3, bdb, off + 2, bdy, off + 1,
                                    bx, off, bm, 1, br, 2, bw, off + 2, s.m, s.c));
    float *y = download_at(by, e, off), *mean = download_at(bm, m, 1);
    float *rstd = download_at(br, m, 2), *dx = download_at(bdx, e, off + 1);
    float *dw = download_at(bdw, c, off + 3), *db = download_at(bdb, c, off + 2);
    double *dxv = f64(x, e), *ddy = f64(dy, e), *dwv = f64(w, c), *dbv = f64(b, c);
    double *rdw = f64(dw0, c), *rdb = f64(db0, c);
    double *ry = dalloc(e), *rmean = dalloc(m), *rrs = dalloc(m), *rdx = dalloc(e);
    enco_layernorm_forward_ref(ry, rmean, rrs, dxv, dwv, dbv, s.m, s.c);
    enco_layernorm_backward_ref(rdx, rdw, rdb, ddy, dxv, dwv, s.m, s.c);
    char pre[96];
    snprintf(pre, sizeof pre, "layernorm_%dx%d", s.m, s.c);
    close_named(pre, "forward", y, ry, e, 1e-5, 1e-4);
    close_named(pre, "mean", mean, rmean, m, 1e-6, 1e-5);
    close_named(pre, "rstd", rstd, rrs, m, 1e-6, 1e-4);
    close_named(pre, "backward", dx, rdx, e, 1e-4, 1e-4);
    close_named(pre, "dweight", dw, rdw, c, 1e-4, 1e-4);
    close_named(pre, "dbias", db, rdb, c, 1e-4, 1e-4);
    free(x), free(dy), free(w), free(b), free(dw0), free(db0);
    free(y), free(mean), free(rstd), free(dx), free(dw), free(db);
    free(dxv), free(ddy), free(dwv), free(dbv), free(rdw), free(rdb);
    free(ry), free(rmean), free(rrs), free(rdx);
    cl_mem all[] = {bx, bdy, bw, bb, bdw, bdb, by, bm, br, bdx};
    for (size_t i = 0; i < COUNT(all); i++)
        test_release(all[i]);
}

START_TEST(layernorm_forward_backward)
{
    int tiny = test_on_oclgrind();
    const mshape *list = tiny ? ln_shapes_tiny : ln_shapes;
    size_t cnt = tiny ? COUNT(ln_shapes_tiny) : COUNT(ln_shapes);
    for (size_t i = 0; i < cnt; i++)
        layernorm_case(list[i], i % 2 ? 1 : 0, 900 + i);
}
END_TEST

/* ---- finite differences of the references ------------------------------ */

typedef enum { FD_IN, FD_BN, FD_LN } fd_kind;

typedef struct fd_prob {
    fd_kind kind;
    int n, c, h, w, m;
    enco_norm_act act;
    double *x, *wt, *b; /* wt, b NULL: not affine (BN) */
    double *y;
    const double *r;
    size_t ny;
} fd_prob;

static double fd_loss(const fd_prob *p)
{
    if (p->kind == FD_IN)
        enco_instnorm_forward_ref(p->y, NULL, NULL, p->x, p->n, p->c, p->h, p->w, p->act, 0.2);
    else if (p->kind == FD_BN)
        enco_batchnorm_forward_ref(p->y, NULL, NULL, NULL, NULL, p->x, p->wt, p->b, p->m, p->c,
                                   0.1);
    else
        enco_layernorm_forward_ref(p->y, NULL, NULL, p->x, p->wt, p->b, p->m, p->c);
    double l = 0;
    for (size_t i = 0; i < p->ny; i++)
        l += p->r[i] * p->y[i];
    return l;
}

static void fd_compare(const fd_prob *p, double *v, size_t n, const double *analytic,
                       const char *what)
{
    const double h = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double keep = v[i];
        v[i] = keep + h;
        double lp = fd_loss(p);
        v[i] = keep - h;
        double lm = fd_loss(p);
        v[i] = keep;
        double num = (lp - lm) / (2 * h);
        ck_assert_msg(fabs(num - analytic[i]) <= 1e-6 + 1e-5 * fabs(analytic[i]),
                      "%s: gradient[%zu] %.12g vs numeric %.12g", what, i, analytic[i], num);
    }
}

START_TEST(backward_ref_fd)
{
    /* InstanceNorm, every activation, including a 2-element plane. */
    static const int ish[][4] = {{2, 2, 3, 4}, {1, 1, 1, 2}, {1, 2, 5, 1}};
    for (size_t a = 0; a < COUNT(acts); a++)
        for (size_t k = 0; k < COUNT(ish); k++) {
            fd_prob p = {.kind = FD_IN, .n = ish[k][0], .c = ish[k][1], .h = ish[k][2],
                         .w = ish[k][3], .act = acts[a]};
            size_t e = (size_t)p.n * p.c * p.h * p.w;
            double *x = dalloc(e), *r = dalloc(e), *dx = dalloc(e);
            test_fill_uniform_f64(x, e, 40 + k, -1, 1);
            test_fill_uniform_f64(r, e, 41 + k, -1, 1);
            p.x = x, p.r = r, p.y = dalloc(e), p.ny = e;
            enco_instnorm_backward_ref(dx, r, x, p.n, p.c, p.h, p.w, p.act, 0.2);
            char what[64];
            snprintf(what, sizeof what, "instnorm_%s fd dx", act_name(acts[a]));
            fd_compare(&p, x, e, dx, what);
            free(x), free(r), free(dx), free(p.y);
        }
    /* BatchNorm with and without affine; LayerNorm. */
    static const int msh[][2] = {{2, 3}, {5, 4}, {3, 1}};
    for (int kind = FD_BN; kind <= FD_LN; kind++)
        for (int affine = 0; affine < 2; affine++) {
            if (kind == FD_LN && !affine)
                continue;
            for (size_t k = 0; k < COUNT(msh); k++) {
                fd_prob p = {.kind = (fd_kind)kind, .m = msh[k][0], .c = msh[k][1]};
                size_t e = (size_t)p.m * p.c, c = (size_t)p.c;
                double *x = dalloc(e), *r = dalloc(e), *dx = dalloc(e);
                double *wt = dalloc(c), *b = dalloc(c), *dw = dalloc(c), *db = dalloc(c);
                test_fill_uniform_f64(x, e, 60 + k, -1, 2);
                test_fill_uniform_f64(r, e, 61 + k, -1, 1);
                test_fill_uniform_f64(wt, c, 62 + k, 0.5, 1.5);
                test_fill_uniform_f64(b, c, 63 + k, -1, 1);
                p.x = x, p.r = r, p.y = dalloc(e), p.ny = e;
                p.wt = affine ? wt : NULL, p.b = affine ? b : NULL;
                const char *nm = kind == FD_BN ? "batchnorm" : "layernorm";
                char what[64];
                if (kind == FD_BN)
                    enco_batchnorm_backward_ref(dx, affine ? dw : NULL, affine ? db : NULL, r, x,
                                                p.wt, p.m, p.c);
                else
                    enco_layernorm_backward_ref(dx, dw, db, r, x, wt, p.m, p.c);
                snprintf(what, sizeof what, "%s fd dx", nm);
                fd_compare(&p, x, e, dx, what);
                if (affine) {
                    snprintf(what, sizeof what, "%s fd dweight", nm);
                    fd_compare(&p, wt, c, dw, what);
                    snprintf(what, sizeof what, "%s fd dbias", nm);
                    fd_compare(&p, b, c, db, what);
                }
                free(x), free(r), free(dx), free(wt), free(b), free(dw), free(db), free(p.y);
            }
        }
}
END_TEST

/* ---- determinism -------------------------------------------------------- */

START_TEST(deterministic)
{
    enco_ctx *ctx = test_ctx();
    int tiny = test_on_oclgrind();
    int n = 2, c = 3, h = tiny ? 5 : 45, w = tiny ? 4 : 37, m = tiny ? 9 : 200, k = tiny ? 5 : 96;
    size_t e = (size_t)n * c * h * w, em = (size_t)m * k;
    size_t big = e > em ? e : em;
    float *x = rnd(big, 1, -1, 1), *dy = rnd(big, 2, -1, 1), *wt = rnd(k, 3, 0.5f, 1.5f);
    cl_mem bx = test_upload(x, big), bdy = test_upload(dy, big), bw = test_upload(wt, k);
    cl_mem bb = test_upload(dy, k);
    cl_mem out[2], dx[2], dw[2], db[2], st[2], rm[2];
    for (int run = 0; run < 2; run++) {
        out[run] = test_alloc(big), dx[run] = test_alloc(big), st[run] = test_alloc(4 * big);
        dw[run] = test_alloc(k), db[run] = test_alloc(k), rm[run] = test_alloc(2 * k);
    }
    const char *names[] = {"instnorm_leaky", "batchnorm", "layernorm"};
    for (int op = 0; op < 3; op++) {
        size_t cnt = op == 0 ? e : em;
        for (int run = 0; run < 2; run++) {
            ENCO_CK(enco_fill_zero(ctx, dw[run], 0, k * sizeof(float)));
            ENCO_CK(enco_fill_zero(ctx, db[run], 0, k * sizeof(float)));
            ENCO_CK(enco_fill_zero(ctx, rm[run], 0, 2 * k * sizeof(float)));
            if (op == 0) {
                ENCO_CK(enco_instnorm_forward(ctx, out[run], 0, st[run], 0, st[run], big, bx, 0,
                                              n, c, h, w, ENCO_NORM_ACT_LEAKY, 0.2f));
                ENCO_CK(enco_instnorm_backward(ctx, dx[run], 0, bdy, 0, bx, 0, st[run], 0,
                                               st[run], big, n, c, h, w, ENCO_NORM_ACT_LEAKY,
                                               0.2f));
            } else if (op == 1) {
                ENCO_CK(enco_batchnorm_forward(ctx, out[run], 0, st[run], 0, st[run], big, rm[run],
                                               0, rm[run], k, bx, 0, bw, 0, bb, 0, m, k, 0.1f));
                ENCO_CK(enco_batchnorm_backward(ctx, dx[run], 0, dw[run], 0, db[run], 0, bdy, 0,
                                                bx, 0, st[run], 0, st[run], big, bw, 0, m, k));
            } else {
                ENCO_CK(enco_layernorm_forward(ctx, out[run], 0, st[run], 0, st[run], big, bx, 0,
                                               bw, 0, bb, 0, m, k));
                ENCO_CK(enco_layernorm_backward(ctx, dx[run], 0, dw[run], 0, db[run], 0, bdy, 0,
                                                bx, 0, st[run], 0, st[run], big, bw, 0, m, k));
            }
        }
        cl_mem *bufs[] = {out, dx, dw, db, rm};
        size_t sizes[] = {cnt, cnt, (size_t)k, (size_t)k, 2 * (size_t)k};
        for (size_t q = 0; q < COUNT(bufs); q++) {
            float *a = test_download(bufs[q][0], sizes[q]), *b = test_download(bufs[q][1], sizes[q]);
            test_assert_bitwise(names[op], a, b, sizes[q]);
            free(a), free(b);
        }
    }
    for (int run = 0; run < 2; run++) {
        test_release(out[run]), test_release(dx[run]), test_release(st[run]);
        test_release(dw[run]), test_release(db[run]), test_release(rm[run]);
    }
    test_release(bx), test_release(bdy), test_release(bw), test_release(bb);
    free(x), free(dy), free(wt);
}
END_TEST

/* ---- CPU row kernels ---------------------------------------------------- */

/* Outputs of one instance norm or layer norm forward + backward. */
typedef struct rows_out {
    float *y, *mean, *rstd, *dx, *dw, *db; /* dw, db: layer norm only */
} rows_out;

static void rows_out_free(rows_out *o)
{
    free(o->y), free(o->mean), free(o->rstd), free(o->dx), free(o->dw), free(o->db);
}

/* Instance norm (w = NULL: p planes of len, shape (1, p, 1, len)) or layer
 * norm ((p, len) with w, b, dw0, db0 of len) with ENCO_NORM_ROWS = rows_env. */
static rows_out rows_run(const char *rows_env, size_t p, size_t len, enco_norm_act act,
                         const float *x, const float *dy, const float *w, const float *b,
                         const float *dw0, const float *db0)
{
    enco_ctx *ctx = test_ctx();
    ck_assert_int_eq(test_setenv("ENCO_NORM_ROWS", rows_env), 0);
    size_t e = p * len;
    rows_out o = {0};
    cl_mem bx = test_upload(x, e), bdy = test_upload(dy, e), by = test_alloc(e);
    cl_mem bm = test_alloc(p), br = test_alloc(p), bdx = test_alloc(e);
    if (w) {
        cl_mem bw = test_upload(w, len), bb = test_upload(b, len);
        cl_mem bdw = test_upload(dw0, len), bdb = test_upload(db0, len);
        ENCO_CK(enco_layernorm_forward(ctx, by, 0, bm, 0, br, 0, bx, 0, bw, 0, bb, 0, (int)p,
                                       (int)len));
        ENCO_CK(enco_layernorm_backward(ctx, bdx, 0, bdw, 0, bdb, 0, bdy, 0, bx, 0, bm, 0, br, 0,
                                        bw, 0, (int)p, (int)len));
        o.dw = test_download(bdw, len), o.db = test_download(bdb, len);
        test_release(bw), test_release(bb), test_release(bdw), test_release(bdb);
    } else {
        ENCO_CK(enco_instnorm_forward(ctx, by, 0, bm, 0, br, 0, bx, 0, 1, (int)p, 1, (int)len,
                                      act, 0.2f));
        ENCO_CK(enco_instnorm_backward(ctx, bdx, 0, bdy, 0, bx, 0, bm, 0, br, 0, 1, (int)p, 1,
                                       (int)len, act, 0.2f));
    }
    o.y = test_download(by, e), o.mean = test_download(bm, p), o.rstd = test_download(br, p);
    o.dx = test_download(bdx, e);
    cl_mem all[] = {bx, bdy, by, bm, br, bdx};
    for (size_t i = 0; i < COUNT(all); i++)
        test_release(all[i]);
    return o;
}

/* The row kernels for CPUs (ENCO_NORM_ROWS=1) give the group kernels' bits
 * (=0): rows shorter than the group, not a multiple of it, a multiple of
 * it, of 1 and 2 elements; several rows; batch 2 (as planes, the kernels
 * see only rows). Both also against the float64 references. */
START_TEST(cpu_rows_same_bits)
{
    /* {rows, len}; instance norm needs len >= 2. */
    static const mshape in_sh[] = {{6, 35}, {1, 2}, {4, 323}, {2, 1024}, {3, 257}, {4, 4096}};
    static const mshape in_sh_tiny[] = {{6, 35}, {1, 2}, {2, 67}};
    static const mshape ln_sh[] = {{1, 1}, {5, 1}, {4, 7}, {3, 300}, {7, 256}, {2, 513}};
    static const mshape ln_sh_tiny[] = {{1, 1}, {5, 1}, {3, 33}};
    int tiny = test_on_oclgrind();
    const mshape *ins = tiny ? in_sh_tiny : in_sh, *lns = tiny ? ln_sh_tiny : ln_sh;
    size_t nin = tiny ? COUNT(in_sh_tiny) : COUNT(in_sh);
    size_t nln = tiny ? COUNT(ln_sh_tiny) : COUNT(ln_sh);
    for (size_t k = 0; k < nin + nln; k++) {
        int ln = k >= nin;
        mshape s = ln ? lns[k - nin] : ins[k];
        size_t p = (size_t)s.m, len = (size_t)s.c, e = p * len;
        float *x = rnd(e, 70 + k, -1, 2), *dy = rnd(e, 71 + k, -1, 1);
        float *w = rnd(len, 72 + k, 0.5f, 1.5f), *b = rnd(len, 73 + k, -1, 1);
        float *dw0 = rnd(len, 74 + k, -1, 1), *db0 = rnd(len, 75 + k, -1, 1);
        double *dxv = f64(x, e), *ddy = f64(dy, e), *dwv = f64(w, len), *dbv = f64(b, len);
        double *ry = dalloc(e), *rm = dalloc(p), *rr = dalloc(p), *rdx = dalloc(e);
        for (size_t a = 0; a < (ln ? 1 : COUNT(acts)); a++) {
            enco_norm_act act = acts[a];
            rows_out g = rows_run("0", p, len, act, x, dy, ln ? w : NULL, b, dw0, db0);
            rows_out c = rows_run("1", p, len, act, x, dy, ln ? w : NULL, b, dw0, db0);
            char pre[96];
            snprintf(pre, sizeof pre, "%s_rows_%zux%zu", ln ? "layernorm" : act_name(act), p,
                     len);
            const float *gs[] = {g.y, g.mean, g.rstd, g.dx, g.dw, g.db};
            const float *cs[] = {c.y, c.mean, c.rstd, c.dx, c.dw, c.db};
            const size_t ns[] = {e, p, p, e, len, len};
            for (size_t q = 0; q < (ln ? 6 : 4); q++)
                test_assert_bitwise(pre, gs[q], cs[q], ns[q]);
            double *rdw = f64(dw0, len), *rdb = f64(db0, len);
            if (ln) {
                enco_layernorm_forward_ref(ry, rm, rr, dxv, dwv, dbv, s.m, s.c);
                enco_layernorm_backward_ref(rdx, rdw, rdb, ddy, dxv, dwv, s.m, s.c);
                close_named(pre, "dweight", c.dw, rdw, len, 1e-4, 1e-4);
                close_named(pre, "dbias", c.db, rdb, len, 1e-4, 1e-4);
            } else {
                enco_instnorm_forward_ref(ry, rm, rr, dxv, 1, s.m, 1, s.c, act, 0.2);
                enco_instnorm_backward_ref(rdx, ddy, dxv, 1, s.m, 1, s.c, act, 0.2);
            }
            close_named(pre, "forward", c.y, ry, e, 1e-5, 1e-4);
            close_named(pre, "mean", c.mean, rm, p, 1e-6, 1e-5);
            close_named(pre, "rstd", c.rstd, rr, p, 1e-6, 1e-4);
            close_named(pre, "backward", c.dx, rdx, e, 1e-4, 1e-4);
            free(rdw), free(rdb);
            rows_out_free(&g), rows_out_free(&c);
        }
        free(x), free(dy), free(w), free(b), free(dw0), free(db0);
        free(dxv), free(ddy), free(dwv), free(dbv), free(ry), free(rm), free(rr), free(rdx);
    }
    ck_assert_int_eq(test_setenv("ENCO_NORM_ROWS", NULL), 0);
}
END_TEST

/* ---- argument checks ------------------------------------------------------ */

/* ---- BatchNorm over rows spread across processes ------------------------
 * The batch's M rows split into parts (one per process, uneven sizes, a part
 * of one row), each part in its own buffers; the stages run on each part and
 * the partial sums are added over the parts in double on the host, as
 * enco_dist_sum_doubles does across processes. The result is the whole
 * batch's BatchNorm: y, mean, rstd, running statistics (every part's copy),
 * dx, and dweight / dbias summed over the parts, against the float64
 * reference within the tolerances of the single-kernel test. */

typedef struct bn_split {
    int c, nparts;
    int rows[3];
    float lo, hi; /* input range: a large mean checks the two-pass variance */
} bn_split;

static const bn_split bn_splits[] = {
    {3, 2, {1, 1}, -1, 3},        {5, 2, {3, 4}, -1, 3},         {33, 3, {1, 40, 23}, -1, 3},
    {7, 3, {100, 100, 100}, -1, 3}, {17, 2, {30, 34}, 1000, 1002}, {256, 3, {128, 96, 32}, -1, 1},
};
static const bn_split bn_splits_tiny[] = {{3, 2, {1, 2}, -1, 3}, {5, 3, {2, 3, 1}, 500, 501}};

/* One part's device buffers (its own, as on its own process). */
typedef struct bn_part {
    int m;
    size_t first; /* its first row in the whole batch */
    cl_mem x, dy, y, dx, mean, rstd, scratch, rm, rv, dw, db;
} bn_part;

/* Adds the n partial sums at scratch[off..) of every part, in part order,
 * into sum. */
static void add_parts(double *sum, bn_part *parts, int nparts, size_t off, size_t n)
{
    for (size_t j = 0; j < n; j++)
        sum[j] = 0;
    for (int p = 0; p < nparts; p++) {
        float *f = download_at(parts[p].scratch, n, off);
        for (size_t j = 0; j < n; j++)
            sum[j] += (double)f[j];
        free(f);
    }
}

static void batchnorm_split_case(bn_split s, int affine, uint64_t seed)
{
    enco_ctx *ctx = test_ctx();
    const float momentum = 0.1f;
    int m = 0;
    for (int p = 0; p < s.nparts; p++)
        m += s.rows[p];
    size_t e = (size_t)m * s.c, c = (size_t)s.c;
    float *x = rnd(e, seed, s.lo, s.hi), *dy = rnd(e, seed + 1, -1, 1);
    float *w = rnd(c, seed + 2, 0.5f, 1.5f), *b = rnd(c, seed + 3, -1, 1);
    float *rm0 = rnd(c, seed + 4, -1, 1), *rv0 = rnd(c, seed + 5, 0.5f, 2);
    float *dw0 = rnd(c, seed + 6, -1, 1), *zero = calloc(c, sizeof(float));
    ck_assert_ptr_nonnull(zero);
    cl_mem bw = test_upload(w, c), bb = test_upload(b, c);
    bn_part parts[3];
    size_t first = 0;
    for (int p = 0; p < s.nparts; p++) {
        bn_part *q = &parts[p];
        size_t pe = (size_t)s.rows[p] * c;
        q->m = s.rows[p];
        q->first = first;
        q->x = upload_at(x + first * c, pe, 1);
        q->dy = upload_at(dy + first * c, pe, 2);
        q->y = test_alloc(pe), q->dx = test_alloc(pe);
        q->mean = test_alloc(c), q->rstd = test_alloc(c), q->scratch = test_alloc(3 * c);
        q->rm = test_upload(rm0, c), q->rv = test_upload(rv0, c);
        /* The first part's gradients start from dw0 (they accumulate). */
        q->dw = test_upload(p == 0 ? dw0 : zero, c), q->db = test_upload(p == 0 ? dw0 : zero, c);
        first += (size_t)q->m;
    }
    double *sum = dalloc(2 * c);
    float *hf = malloc(3 * c * sizeof(float)); /* mean, rstd, unbiased variance */
    ck_assert_ptr_nonnull(hf);
    /* forward: the mean, then the squared deviations from it */
    for (int p = 0; p < s.nparts; p++)
        ENCO_CK(enco_batchnorm_partial_stats(ctx, parts[p].scratch, 0, parts[p].x, 1, NULL, 0,
                                             parts[p].m, s.c));
    add_parts(sum, parts, s.nparts, 0, c);
    enco_batchnorm_global_mean(hf, sum, (double)m, s.c);
    for (int p = 0; p < s.nparts; p++) {
        bn_part *q = &parts[p];
        ENCO_CK(enco_upload(ctx, q->scratch, 0, c * sizeof(float), hf));
        ENCO_CK(enco_batchnorm_partial_stats(ctx, q->scratch, c, q->x, 1, q->scratch, 0, q->m,
                                             s.c));
    }
    add_parts(sum, parts, s.nparts, c, c);
    enco_batchnorm_global_var(hf + c, hf + 2 * c, sum, (double)m, s.c);
    for (int p = 0; p < s.nparts; p++) {
        bn_part *q = &parts[p];
        ENCO_CK(enco_upload(ctx, q->scratch, 0, 3 * c * sizeof(float), hf));
        ENCO_CK(enco_batchnorm_apply(ctx, q->y, 0, q->mean, 0, q->rstd, 0, q->rm, 0, q->rv, 0,
                                     q->x, 1, q->scratch, 0, affine ? bw : NULL, 0,
                                     affine ? bb : NULL, 0, q->m, s.c, momentum));
    }
    /* backward: each part's sums of dy and dy * xhat, their global means */
    for (int p = 0; p < s.nparts; p++) {
        bn_part *q = &parts[p];
        ENCO_CK(enco_batchnorm_partial_grads(ctx, q->scratch, 0, affine ? q->dw : NULL, 0,
                                             affine ? q->db : NULL, 0, q->dy, 2, q->x, 1, q->mean,
                                             0, q->rstd, 0, q->m, s.c));
    }
    add_parts(sum, parts, s.nparts, 0, 2 * c);
    enco_batchnorm_global_grads(hf, sum, (double)m, s.c);
    for (int p = 0; p < s.nparts; p++) {
        bn_part *q = &parts[p];
        ENCO_CK(enco_upload(ctx, q->scratch, 0, 2 * c * sizeof(float), hf));
        ENCO_CK(enco_batchnorm_apply_grads(ctx, q->dx, 0, q->dy, 2, q->x, 1, q->mean, 0, q->rstd,
                                           0, affine ? bw : NULL, 0, q->scratch, 0, q->m, s.c));
    }

    double *dxv = f64(x, e), *ddy = f64(dy, e), *dwv = f64(w, c), *dbv = f64(b, c);
    double *rrm = f64(rm0, c), *rrv = f64(rv0, c), *rdw = f64(dw0, c), *rdb = f64(dw0, c);
    double *ry = dalloc(e), *rmean = dalloc(c), *rrs = dalloc(c), *rdx = dalloc(e);
    enco_batchnorm_forward_ref(ry, rmean, rrs, rrm, rrv, dxv, affine ? dwv : NULL,
                               affine ? dbv : NULL, m, s.c, momentum);
    enco_batchnorm_backward_ref(rdx, rdw, rdb, ddy, dxv, affine ? dwv : NULL, m, s.c);
    /* A large mean costs (x - mean) its float rounding: |x| ulp * rstd. */
    double big = fabs(s.lo) > fabs(s.hi) ? fabs(s.lo) : fabs(s.hi), rs_max = 0;
    for (size_t j = 0; j < c; j++)
        rs_max = rrs[j] > rs_max ? rrs[j] : rs_max;
    double atol = 1e-5 + 2.0 * big * FLT_EPSILON * rs_max;
    char pre[96];
    snprintf(pre, sizeof pre, "batchnorm_split%d_%s_%dx%d", s.nparts, affine ? "affine" : "plain",
             m, s.c);
    float *y = malloc(e * sizeof(float)), *dx = malloc(e * sizeof(float));
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_nonnull(dx);
    float *dw = calloc(c, sizeof(float)), *db = calloc(c, sizeof(float));
    double *dwsum = dalloc(c), *dbsum = dalloc(c);
    for (int p = 0; p < s.nparts; p++) {
        bn_part *q = &parts[p];
        size_t pe = (size_t)q->m * c;
        float *py = test_download(q->y, pe), *pdx = test_download(q->dx, pe);
        memcpy(y + q->first * c, py, pe * sizeof(float));
        memcpy(dx + q->first * c, pdx, pe * sizeof(float));
        free(py), free(pdx);
        /* Every part holds the same statistics and running statistics. */
        float *mean = test_download(q->mean, c), *rstd = test_download(q->rstd, c);
        float *rm = test_download(q->rm, c), *rv = test_download(q->rv, c);
        close_named(pre, "mean", mean, rmean, c, 1e-6, 1e-5);
        close_named(pre, "rstd", rstd, rrs, c, 1e-6, 1e-4);
        close_named(pre, "running_mean", rm, rrm, c, 1e-6, 1e-5);
        close_named(pre, "running_var", rv, rrv, c, 1e-6, 1e-5);
        free(mean), free(rstd), free(rm), free(rv);
        float *pdw = test_download(q->dw, c), *pdb = test_download(q->db, c);
        for (size_t j = 0; j < c; j++)
            dwsum[j] += pdw[j], dbsum[j] += pdb[j];
        free(pdw), free(pdb);
    }
    close_named(pre, "forward", y, ry, e, atol, 1e-4);
    close_named(pre, "backward", dx, rdx, e, 1e-4 + atol, 1e-4);
    if (affine) {
        for (size_t j = 0; j < c; j++)
            dw[j] = (float)dwsum[j], db[j] = (float)dbsum[j];
        /* dweight sums dy * xhat over the rows (|dy| <= 1): m times xhat's error. */
        close_named(pre, "dweight", dw, rdw, c, 1e-4 + m * (atol - 1e-5), 1e-4);
        close_named(pre, "dbias", db, rdb, c, 1e-4, 1e-4);
    } else { /* not affine: nothing touched the gradients */
        ck_assert_double_eq(dwsum[0], (double)dw0[0]);
    }
    for (int p = 0; p < s.nparts; p++) {
        bn_part *q = &parts[p];
        cl_mem all[] = {q->x,    q->dy,      q->y,  q->dx, q->mean, q->rstd,
                        q->scratch, q->rm, q->rv, q->dw, q->db};
        for (size_t i = 0; i < COUNT(all); i++)
            test_release(all[i]);
    }
    test_release(bw), test_release(bb);
    free(x), free(dy), free(w), free(b), free(rm0), free(rv0), free(dw0), free(zero), free(hf);
    free(y), free(dx), free(dw), free(db), free(dwsum), free(dbsum), free(sum);
    free(dxv), free(ddy), free(dwv), free(dbv), free(rrm), free(rrv), free(rdw), free(rdb);
    free(ry), free(rmean), free(rrs), free(rdx);
}

START_TEST(batchnorm_split_parts)
{
    int tiny = test_on_oclgrind();
    const bn_split *list = tiny ? bn_splits_tiny : bn_splits;
    size_t cnt = tiny ? COUNT(bn_splits_tiny) : COUNT(bn_splits);
    for (size_t i = 0; i < cnt; i++)
        batchnorm_split_case(list[i], _i, 900 + i + 50 * (uint64_t)_i);
}
END_TEST

/* A stand-in for the other processes: each sum adds the next of the vectors
 * `other` (what the other parts contributed at that point, in part order
 * after this one's), and records the lengths asked for. */
typedef struct fake_sum {
    const double *other[4];
    size_t n[4];
    int calls, fail_at;
} fake_sum;

static enco_status fake_sum_fn(void *user, double *buf, size_t n)
{
    fake_sum *f = user;
    int i = f->calls++;
    if (i == f->fail_at)
        return ENCO_FAIL(ENCO_ERR_IO, "fake sum: the other process is gone");
    ck_assert_int_lt(i, 4);
    f->n[i] = n;
    if (f->other[i])
        for (size_t j = 0; j < n; j++)
            buf[j] += f->other[i][j];
    return ENCO_OK;
}

/* The drivers (enco_batchnorm_forward_sync / backward_sync) are the stages
 * with the sums in between: as part 0 of two parts, with a sum that adds
 * part 1's sums (made beforehand by the stages), they give the stages' bits;
 * alone (a sum that adds nothing) they give the single-kernel BatchNorm
 * within rounding; a failing sum and a batch of one row are errors. */
START_TEST(batchnorm_sync_drivers)
{
    enco_ctx *ctx = test_ctx();
    const int c = 9, m0 = 5, m1 = 6, m = m0 + m1;
    const size_t cc = (size_t)c, fb = sizeof(float);
    float *x = rnd((size_t)m * cc, 71, -2, 5), *dy = rnd((size_t)m * cc, 72, -1, 1);
    float *w = rnd(cc, 73, 0.5f, 1.5f), *b = rnd(cc, 74, -1, 1);
    const float zero[9] = {0}, one[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    cl_mem bw = test_upload(w, cc), bb = test_upload(b, cc);
    const size_t e0 = (size_t)m0 * cc, e1 = (size_t)m1 * cc;
    cl_mem x0 = test_upload(x, e0), x1 = test_upload(x + e0, e1);
    cl_mem d0 = test_upload(dy, e0), d1 = test_upload(dy + e0, e1);
    cl_mem st = test_alloc(3 * cc), mean = test_alloc(cc), rstd = test_alloc(cc);
    cl_mem y = test_alloc((size_t)m * cc), dx = test_alloc((size_t)m * cc);
    cl_mem rm = test_upload(zero, cc), rv = test_upload(one, cc);
    cl_mem dw = test_upload(zero, cc), db = test_upload(zero, cc);

    /* Both parts by the stages (as in batchnorm_split_parts), keeping part
     * 1's contributions and part 0's results. */
    double s0[10], s1[10], q0[9], q1[9], g0[19], g1[19];
    float hf[27], *f;
    ENCO_CK(enco_batchnorm_partial_stats(ctx, st, 0, x0, 0, NULL, 0, m0, c));
    f = test_download(st, cc);
    for (size_t j = 0; j < cc; j++)
        s0[j] = f[j];
    free(f);
    ENCO_CK(enco_batchnorm_partial_stats(ctx, st, 0, x1, 0, NULL, 0, m1, c));
    f = test_download(st, cc);
    for (size_t j = 0; j < cc; j++)
        s1[j] = f[j];
    free(f);
    s0[cc] = m0, s1[cc] = m1;
    double tot[19];
    for (size_t j = 0; j <= cc; j++)
        tot[j] = s0[j] + s1[j];
    enco_batchnorm_global_mean(hf, tot, tot[cc], c);
    ENCO_CK(enco_upload(ctx, st, 0, cc * fb, hf));
    ENCO_CK(enco_batchnorm_partial_stats(ctx, st, cc, x0, 0, st, 0, m0, c));
    f = download_at(st, cc, cc);
    for (size_t j = 0; j < cc; j++)
        q0[j] = f[j];
    free(f);
    ENCO_CK(enco_batchnorm_partial_stats(ctx, st, cc, x1, 0, st, 0, m1, c));
    f = download_at(st, cc, cc);
    for (size_t j = 0; j < cc; j++)
        q1[j] = f[j];
    free(f);
    for (size_t j = 0; j < cc; j++)
        tot[j] = q0[j] + q1[j];
    enco_batchnorm_global_var(hf + cc, hf + 2 * cc, tot, (double)m, c);
    ENCO_CK(enco_upload(ctx, st, 0, 3 * cc * fb, hf));
    ENCO_CK(enco_batchnorm_apply(ctx, y, 0, mean, 0, rstd, 0, rm, 0, rv, 0, x0, 0, st, 0, bw, 0,
                                 bb, 0, m0, c, 0.1f));
    ENCO_CK(enco_batchnorm_partial_grads(ctx, st, 0, dw, 0, db, 0, d0, 0, x0, 0, mean, 0, rstd, 0,
                                         m0, c));
    f = test_download(st, 2 * cc);
    for (size_t j = 0; j < 2 * cc; j++)
        g0[j] = f[j];
    free(f);
    ENCO_CK(enco_batchnorm_partial_grads(ctx, st, 0, NULL, 0, NULL, 0, d1, 0, x1, 0, mean, 0,
                                         rstd, 0, m1, c));
    f = test_download(st, 2 * cc);
    for (size_t j = 0; j < 2 * cc; j++)
        g1[j] = f[j];
    free(f);
    g0[2 * cc] = m0, g1[2 * cc] = m1;
    for (size_t j = 0; j <= 2 * cc; j++)
        tot[j] = g0[j] + g1[j];
    enco_batchnorm_global_grads(hf, tot, tot[2 * cc], c);
    ENCO_CK(enco_upload(ctx, st, 0, 2 * cc * fb, hf));
    ENCO_CK(enco_batchnorm_apply_grads(ctx, dx, 0, d0, 0, x0, 0, mean, 0, rstd, 0, bw, 0, st, 0,
                                       m0, c));
    float *want[6] = {test_download(y, (size_t)m0 * cc), test_download(mean, cc),
                      test_download(rstd, cc),           test_download(rm, cc),
                      test_download(rv, cc),             test_download(dx, (size_t)m0 * cc)};
    float *want_dw = test_download(dw, cc), *want_db = test_download(db, cc);

    /* The drivers on part 0, the other part's sums coming from the fake. */
    ENCO_CK(enco_upload(ctx, rm, 0, cc * fb, zero));
    ENCO_CK(enco_upload(ctx, rv, 0, cc * fb, one));
    ENCO_CK(enco_upload(ctx, dw, 0, cc * fb, zero));
    ENCO_CK(enco_upload(ctx, db, 0, cc * fb, zero));
    fake_sum fs = {.other = {s1, q1, g1}, .fail_at = -1};
    enco_stat_sync sync = {&fs, fake_sum_fn};
    ENCO_CK(enco_batchnorm_forward_sync(ctx, &sync, st, 0, y, 0, mean, 0, rstd, 0, rm, 0, rv, 0,
                                        x0, 0, bw, 0, bb, 0, m0, c, 0.1f));
    ENCO_CK(enco_batchnorm_backward_sync(ctx, &sync, st, 0, dx, 0, dw, 0, db, 0, d0, 0, x0, 0, mean,
                                         0, rstd, 0, bw, 0, m0, c));
    ck_assert_int_eq(fs.calls, 3);
    ck_assert_uint_eq(fs.n[0], cc + 1); /* the sums of x and the row count */
    ck_assert_uint_eq(fs.n[1], cc);     /* the squared deviations */
    ck_assert_uint_eq(fs.n[2], 2 * cc + 1);
    float *got[6] = {test_download(y, (size_t)m0 * cc), test_download(mean, cc),
                     test_download(rstd, cc),           test_download(rm, cc),
                     test_download(rv, cc),             test_download(dx, (size_t)m0 * cc)};
    size_t len[6] = {(size_t)m0 * cc, cc, cc, cc, cc, (size_t)m0 * cc};
    for (int i = 0; i < 6; i++) {
        ck_assert_msg(memcmp(got[i], want[i], len[i] * fb) == 0,
                      "driver result %d differs from the stages' (first %.9g, %.9g)", i,
                      (double)got[i][0], (double)want[i][0]);
        free(got[i]), free(want[i]);
    }
    float *got_dw = test_download(dw, cc), *got_db = test_download(db, cc);
    ck_assert_int_eq(memcmp(got_dw, want_dw, cc * fb), 0);
    ck_assert_int_eq(memcmp(got_db, want_db, cc * fb), 0);
    free(got_dw), free(got_db), free(want_dw), free(want_db);

    /* Alone: the single-kernel BatchNorm on all m rows within rounding. */
    cl_mem xa = test_upload(x, (size_t)m * cc), da = test_upload(dy, (size_t)m * cc);
    cl_mem y2 = test_alloc((size_t)m * cc), dx2 = test_alloc((size_t)m * cc);
    cl_mem mean2 = test_alloc(cc), rstd2 = test_alloc(cc);
    cl_mem rm2 = test_upload(zero, cc), rv2 = test_upload(one, cc);
    cl_mem dw2 = test_upload(zero, cc), db2 = test_upload(zero, cc);
    ENCO_CK(enco_upload(ctx, rm, 0, cc * fb, zero));
    ENCO_CK(enco_upload(ctx, rv, 0, cc * fb, one));
    ENCO_CK(enco_upload(ctx, dw, 0, cc * fb, zero));
    ENCO_CK(enco_upload(ctx, db, 0, cc * fb, zero));
    fake_sum alone = {.fail_at = -1};
    sync.user = &alone;
    ENCO_CK(enco_batchnorm_forward_sync(ctx, &sync, st, 0, y, 0, mean, 0, rstd, 0, rm, 0, rv, 0,
                                        xa, 0, bw, 0, bb, 0, m, c, 0.1f));
    ENCO_CK(enco_batchnorm_backward_sync(ctx, &sync, st, 0, dx, 0, dw, 0, db, 0, da, 0, xa, 0,
                                         mean, 0, rstd, 0, bw, 0, m, c));
    ENCO_CK(enco_batchnorm_forward(ctx, y2, 0, mean2, 0, rstd2, 0, rm2, 0, rv2, 0, xa, 0, bw, 0, bb,
                                   0, m, c, 0.1f));
    ENCO_CK(enco_batchnorm_backward(ctx, dx2, 0, dw2, 0, db2, 0, da, 0, xa, 0, mean2, 0, rstd2, 0,
                                    bw, 0, m, c));
    cl_mem pairs[][2] = {{y, y2}, {mean, mean2}, {rstd, rstd2}, {rm, rm2},
                         {rv, rv2}, {dx, dx2},   {dw, dw2},     {db, db2}};
    const char *names[] = {"y",           "mean", "rstd",    "running_mean",
                           "running_var", "dx",   "dweight", "dbias"};
    for (size_t i = 0; i < COUNT(pairs); i++) {
        size_t n = i == 0 || i == 5 ? (size_t)m * cc : cc;
        float *a = test_download(pairs[i][0], n), *r = test_download(pairs[i][1], n);
        double *rd = f64(r, n);
        char what[64];
        snprintf(what, sizeof what, "batchnorm_sync_alone_%s", names[i]);
        test_assert_close(what, a, rd, n, 1e-5, 1e-5);
        free(a), free(r), free(rd);
    }

    /* A sum that fails fails the call with its message; one row over all
     * processes is refused as the single kernel refuses it. */
    fake_sum broken = {.fail_at = 1};
    sync.user = &broken;
    ck_assert_int_eq(enco_batchnorm_forward_sync(ctx, &sync, st, 0, y, 0, mean, 0, rstd, 0, rm, 0,
                                                 rv, 0, xa, 0, bw, 0, bb, 0, m, c, 0.1f),
                     ENCO_ERR_IO);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "the other process is gone"));
    fake_sum lone = {.fail_at = -1};
    sync.user = &lone;
    ck_assert_int_eq(enco_batchnorm_forward_sync(ctx, &sync, st, 0, y, 0, mean, 0, rstd, 0, rm, 0,
                                                 rv, 0, xa, 0, bw, 0, bb, 0, 1, c, 0.1f),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "more than 1 row"));
    ck_assert_int_eq(enco_batchnorm_forward_sync(ctx, NULL, st, 0, y, 0, mean, 0, rstd, 0, rm, 0,
                                                 rv, 0, xa, 0, bw, 0, bb, 0, m, c, 0.1f),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_batchnorm_forward_sync(ctx, &sync, st, 1, y, 0, mean, 0, rstd, 0, rm, 0,
                                                 rv, 0, xa, 0, bw, 0, bb, 0, m, c, 0.1f),
                     ENCO_ERR_INVALID_ARG); /* scratch too short */
    cl_mem all[] = {bw, bb, x0, x1, d0, d1, st, mean, rstd, y, dx, rm, rv, dw, db,
                    xa, da, y2, dx2, mean2, rstd2, rm2, rv2, dw2, db2};
    for (size_t i = 0; i < COUNT(all); i++)
        test_release(all[i]);
    free(x), free(dy), free(w), free(b);
}
END_TEST

START_TEST(rejects_bad_args)
{
    enco_ctx *ctx = test_ctx();
    cl_mem a = test_alloc(64), b = test_alloc(64), s = test_alloc(64), t = test_alloc(64);
    ck_assert_int_eq(enco_instnorm_forward(ctx, b, 0, s, 0, t, 0, a, 0, 1, 2, 1, 1,
                                           ENCO_NORM_ACT_NONE, 0),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "more than 1 element"));
    ck_assert_int_eq(enco_instnorm_forward(ctx, b, 0, s, 0, t, 0, a, 0, 1, 2, 2, 2,
                                           (enco_norm_act)7, 0),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "activation"));
    ck_assert_int_eq(enco_instnorm_backward(ctx, b, 0, a, 0, a, 0, s, 0, t, 0, 1, 2, 8, 8,
                                            ENCO_NORM_ACT_RELU, 0),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "needs elements [0, 128)"));
    ck_assert_int_eq(enco_batchnorm_forward(ctx, b, 0, s, 0, t, 0, NULL, 0, NULL, 0, a, 0, NULL,
                                            0, NULL, 0, 1, 4, 0.1f),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "more than 1 row"));
    ck_assert_int_eq(enco_batchnorm_forward(ctx, b, 0, s, 0, t, 0, NULL, 0, NULL, 0, a, 0, s, 0,
                                            NULL, 0, 4, 4, 0.1f),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "weight and bias"));
    ck_assert_int_eq(enco_batchnorm_forward(ctx, b, 0, s, 0, t, 0, s, 0, NULL, 0, a, 0, NULL, 0,
                                            NULL, 0, 4, 4, 0.1f),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_batchnorm_forward(ctx, b, 0, s, 0, t, 0, NULL, 0, NULL, 0, a, 0, NULL,
                                            0, NULL, 0, 4, 4, 1.5f),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "momentum"));
    ck_assert_int_eq(enco_batchnorm_backward(ctx, b, 0, s, 0, NULL, 0, a, 0, a, 0, s, 0, t, 0, s,
                                             0, 4, 4),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_layernorm_forward(ctx, b, 0, s, 0, t, 0, a, 0, NULL, 0, s, 0, 4, 4),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "weight buffer is NULL"));
    ck_assert_int_eq(enco_layernorm_backward(ctx, b, 0, s, 0, t, 0, a, 0, a, 0, s, 0, t, 0, s, 0,
                                             0, 4),
                     ENCO_ERR_INVALID_ARG);
    test_release(a), test_release(b), test_release(s), test_release(t);
}
END_TEST

static Suite *norm_suite(void)
{
    Suite *s = suite_create("norm");
    TCase *t = tcase_create("norm");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, backward_ref_fd);
    tcase_add_loop_test(t, instnorm_forward_backward, 0, 3);
    tcase_add_loop_test(t, batchnorm_forward_backward, 0, 4);
    tcase_add_test(t, batchnorm_running_stats_values);
    tcase_add_loop_test(t, batchnorm_split_parts, 0, 2);
    tcase_add_test(t, batchnorm_sync_drivers);
    tcase_add_test(t, layernorm_forward_backward);
    tcase_add_test(t, deterministic);
    tcase_add_test(t, cpu_rows_same_bits);
    tcase_add_test(t, rejects_bad_args);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return test_run_suite(norm_suite()); }
