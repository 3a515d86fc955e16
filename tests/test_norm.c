/* Norm family: InstanceNorm2d (+ fused ReLU / LeakyReLU), BatchNorm1d
 * (training, running statistics), LayerNorm; forward and backward against
 * the float64 references, finite differences, determinism, argument checks. */
#include "harness.h"
#include "ops/norm.h"

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
    tcase_add_test(t, layernorm_forward_backward);
    tcase_add_test(t, deterministic);
    tcase_add_test(t, cpu_rows_same_bits);
    tcase_add_test(t, rejects_bad_args);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return test_run_suite(norm_suite()); }
