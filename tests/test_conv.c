/* Convolution family: Conv2d, ConvTranspose2d and Pad2d against their
 * float64 references; reference gradients against finite differences;
 * determinism; argument checks. */
#include "harness.h"
#include "ops/conv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

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

static double *zeros_f64(size_t n)
{
    double *d = calloc(n ? n : 1, sizeof(double));
    ck_assert_ptr_nonnull(d);
    return d;
}

static const char *mode_name(int m)
{
    return m == ENCO_PAD_ZERO ? "zero" : m == ENCO_PAD_REFLECT ? "reflect" : "replicate";
}

/* Tolerances: float32 against float64 on sums of at most a few hundred terms. */
#define ATOL 2e-5
#define RTOL 1e-4

/* Reference forward of one op as a function of its inputs, for the
 * finite-difference check: in[0] = x, in[1] = w, in[2] = b (NULL allowed). */
typedef void (*ref_fwd)(const void *shape, double *y, double *const *in);

/* Central differences of L = sum(g * f(in)) against analytic grads. */
static void fd_check(const char *what, const void *shape, ref_fwd f, double *const *in,
                     const size_t *sizes, int nin, size_t ny, const double *g,
                     double *const *grad)
{
    const double h = 1e-5;
    double *yp = zeros_f64(ny), *ym = zeros_f64(ny);
    double max_rel = 0;
    for (int t = 0; t < nin; t++) {
        if (!in[t])
            continue;
        for (size_t i = 0; i < sizes[t]; i++) {
            double v = in[t][i];
            in[t][i] = v + h;
            f(shape, yp, in);
            in[t][i] = v - h;
            f(shape, ym, in);
            in[t][i] = v;
            double fd = 0;
            for (size_t j = 0; j < ny; j++)
                fd += g[j] * (yp[j] - ym[j]);
            fd /= 2 * h;
            double d = fabs(fd - grad[t][i]);
            ck_assert_msg(d <= 1e-7 + 1e-6 * fabs(fd),
                          "%s: input %d element %zu: analytic %.12g, finite difference %.12g", what,
                          t, i, grad[t][i], fd);
            double rel = d / (fabs(fd) > 1e-7 ? fabs(fd) : 1e-7);
            if (rel > max_rel)
                max_rel = rel;
        }
    }
    printf("maxrel %s %.3g\n", what, max_rel);
    free(yp);
    free(ym);
}

/* ---- Conv2d ------------------------------------------------------------- */

typedef struct conv_case {
    int n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, mode, bias;
} conv_case;

static enco_conv2d_shape conv_shape(const conv_case *c)
{
    enco_conv2d_shape s = {.n = c->n, .cin = c->cin, .h = c->h, .w = c->w, .cout = c->cout,
                           .kh = c->kh, .kw = c->kw, .stride_h = c->sh, .stride_w = c->sw,
                           .pad_h = c->ph, .pad_w = c->pw, .pad_mode = (enco_pad_mode)c->mode};
    return s;
}

/* Full shapes on PoCL: odd sizes, H != W, batch 2, strides 1/2 (and mixed),
 * every padding mode with widths 0..3, kernels 1, 3, 4, 5, 7, bias or not. */
static const conv_case conv_cases[] = {
    {2, 3, 9, 7, 4, 3, 3, 1, 1, 1, 1, ENCO_PAD_ZERO, 1},
    {1, 3, 16, 12, 5, 4, 4, 1, 1, 1, 1, ENCO_PAD_ZERO, 1},      /* D: 16 -> 15 */
    {2, 2, 15, 13, 3, 4, 4, 1, 1, 1, 1, ENCO_PAD_ZERO, 0},      /* odd -> even */
    {2, 3, 13, 10, 4, 7, 7, 1, 1, 3, 3, ENCO_PAD_REFLECT, 1},
    {1, 4, 8, 9, 3, 1, 1, 1, 1, 0, 0, ENCO_PAD_ZERO, 0},
    {2, 3, 9, 11, 4, 3, 3, 2, 2, 1, 1, ENCO_PAD_REPLICATE, 0},
    {1, 2, 10, 7, 3, 3, 3, 2, 2, 2, 2, ENCO_PAD_REFLECT, 1},
    {1, 2, 7, 8, 3, 4, 4, 2, 2, 3, 3, ENCO_PAD_REPLICATE, 1},
    {1, 2, 9, 8, 3, 3, 4, 2, 1, 2, 0, ENCO_PAD_REFLECT, 1},
    {1, 3, 6, 6, 2, 7, 7, 1, 1, 3, 3, ENCO_PAD_REPLICATE, 0},
    {2, 2, 4, 5, 3, 3, 3, 1, 1, 3, 3, ENCO_PAD_REFLECT, 1},
    {1, 2, 6, 5, 2, 3, 3, 1, 1, 0, 0, ENCO_PAD_REFLECT, 1},
    {1, 2, 5, 1, 2, 3, 1, 1, 1, 2, 2, ENCO_PAD_REPLICATE, 1},   /* width 1 */
    {2, 3, 11, 9, 2, 3, 3, 2, 2, 0, 0, ENCO_PAD_ZERO, 1},
    {1, 2, 12, 10, 3, 4, 4, 2, 2, 1, 1, ENCO_PAD_ZERO, 1},
    {1, 3, 9, 9, 2, 5, 5, 2, 2, 2, 2, ENCO_PAD_ZERO, 0},
    {1, 3, 6, 5, 2, 3, 3, 1, 1, 3, 3, ENCO_PAD_ZERO, 1},        /* pad > k - 1 */
};

/* Tiny shapes for Oclgrind. */
static const conv_case conv_cases_tiny[] = {
    {2, 2, 4, 3, 2, 3, 3, 1, 1, 1, 1, ENCO_PAD_ZERO, 1},
    {1, 2, 5, 4, 2, 4, 4, 2, 2, 2, 2, ENCO_PAD_REFLECT, 0},
    {1, 1, 3, 4, 2, 3, 3, 2, 2, 3, 3, ENCO_PAD_REPLICATE, 1},
    {1, 2, 3, 3, 1, 1, 1, 1, 1, 0, 0, ENCO_PAD_ZERO, 1},
};

static const conv_case *conv_list(size_t *count)
{
    if (test_on_oclgrind()) {
        *count = sizeof conv_cases_tiny / sizeof conv_cases_tiny[0];
        return conv_cases_tiny;
    }
    *count = sizeof conv_cases / sizeof conv_cases[0];
    return conv_cases;
}

/* Host data of one case, float and float64 copies of the same values. */
typedef struct conv_data {
    enco_conv2d_shape s;
    int ho, wo;
    size_t nx, nw, nb, ny;
    float *x, *w, *b, *dy, *dw0, *db0;
    double *xd, *wd, *bd, *dyd;
} conv_data;

static conv_data conv_data_make(const conv_case *c, uint64_t seed)
{
    conv_data d = {.s = conv_shape(c)};
    ENCO_CK(enco_conv2d_check(&d.s));
    enco_conv2d_out_size(&d.s, &d.ho, &d.wo);
    d.nx = (size_t)c->n * c->cin * c->h * c->w;
    d.nw = (size_t)c->cout * c->cin * c->kh * c->kw;
    d.nb = (size_t)c->cout;
    d.ny = (size_t)c->n * c->cout * d.ho * d.wo;
    d.x = rand_f(d.nx, seed, -1, 1);
    d.w = rand_f(d.nw, seed + 1, -0.5f, 0.5f);
    d.b = rand_f(d.nb, seed + 2, -0.5f, 0.5f);
    d.dy = rand_f(d.ny, seed + 3, -1, 1);
    d.dw0 = rand_f(d.nw, seed + 4, -0.25f, 0.25f);
    d.db0 = rand_f(d.nb, seed + 5, -0.25f, 0.25f);
    d.xd = to_f64(d.x, d.nx);
    d.wd = to_f64(d.w, d.nw);
    d.bd = c->bias ? to_f64(d.b, d.nb) : NULL;
    d.dyd = to_f64(d.dy, d.ny);
    return d;
}

static void conv_data_free(conv_data *d)
{
    free(d->x), free(d->w), free(d->b), free(d->dy), free(d->dw0), free(d->db0);
    free(d->xd), free(d->wd), free(d->bd), free(d->dyd);
}

/* Workspace floats for `images` whole images, or for -images output rows
 * of one image when images < 0 (the banded path). */
static size_t conv_ws_min; /* a larger workspace where a test needs one */

static size_t conv_ws(const conv_data *d, int images)
{
    if (images > 0) {
        const size_t n = enco_conv2d_workspace_floats(&d->s, images);
        return n > conv_ws_min ? n : conv_ws_min;
    }
    return (size_t)-images * d->s.cin * d->s.kh * d->s.kw * d->wo;
}

/* Device forward with a workspace from conv_ws(images). */
static float *conv_fwd_device(const conv_data *d, int bias, int images)
{
    cl_mem x = test_upload(d->x, d->nx), w = test_upload(d->w, d->nw);
    cl_mem b = bias ? test_upload(d->b, d->nb) : NULL;
    size_t wsn = conv_ws(d, images);
    cl_mem ws = test_alloc(wsn);
    /* y starts as garbage: the forward must overwrite all of it. */
    float *junk = rand_f(d->ny, 99, 50, 60);
    cl_mem y = test_upload(junk, d->ny);
    free(junk);
    ENCO_CK(enco_conv2d_forward(test_ctx(), y, 0, x, 0, w, 0, b, 0, ws, 0, wsn, &d->s));
    float *out = test_download(y, d->ny);
    test_release(x), test_release(w), test_release(y), test_release(ws);
    if (b)
        test_release(b);
    return out;
}

typedef struct grads {
    float *dx, *dw, *db;
} grads;

static grads conv_bwd_device(const conv_data *d, int bias, int images)
{
    cl_mem x = test_upload(d->x, d->nx), w = test_upload(d->w, d->nw);
    cl_mem dy = test_upload(d->dy, d->ny);
    cl_mem dw = test_upload(d->dw0, d->nw);
    cl_mem db = bias ? test_upload(d->db0, d->nb) : NULL;
    float *junk = rand_f(d->nx, 98, 50, 60);
    cl_mem dx = test_upload(junk, d->nx);
    free(junk);
    size_t wsn = conv_ws(d, images);
    cl_mem ws = test_alloc(wsn);
    ENCO_CK(enco_conv2d_backward(test_ctx(), dx, 0, dw, 0, db, 0, dy, 0, x, 0, w, 0, ws, 0, wsn,
                                 &d->s));
    grads g = {test_download(dx, d->nx), test_download(dw, d->nw),
               bias ? test_download(db, d->nb) : NULL};
    test_release(x), test_release(w), test_release(dy), test_release(dw), test_release(dx);
    test_release(ws);
    if (db)
        test_release(db);
    return g;
}

static void grads_free(grads *g) { free(g->dx), free(g->dw), free(g->db); }

/* Reference backward with dw / db starting from dw0 / db0. */
static void conv_bwd_ref(const conv_data *d, int bias, double **dx, double **dw, double **db)
{
    *dx = zeros_f64(d->nx);
    *dw = to_f64(d->dw0, d->nw);
    *db = bias ? to_f64(d->db0, d->nb) : NULL;
    enco_conv2d_backward_ref(*dx, *dw, *db, d->dyd, d->xd, d->wd, &d->s);
}

static void conv_label(char *buf, size_t size, const char *what, const conv_case *c)
{
    snprintf(buf, size, "%s n%d c%d->%d %dx%d k%dx%d s%dx%d p%dx%d %s%s", what, c->n, c->cin,
             c->cout, c->h, c->w, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, mode_name(c->mode),
             c->bias ? " bias" : "");
}

START_TEST(conv2d_forward_matches_reference)
{
    size_t count;
    const conv_case *cases = conv_list(&count);
    for (size_t i = 0; i < count; i++) {
        conv_data d = conv_data_make(&cases[i], 100 + 10 * i);
        double *ref = zeros_f64(d.ny);
        enco_conv2d_forward_ref(ref, d.xd, d.wd, d.bd, &d.s);
        float *y = conv_fwd_device(&d, cases[i].bias, d.s.n);
        char label[160];
        conv_label(label, sizeof label, "conv2d_forward", &cases[i]);
        test_assert_close(label, y, ref, d.ny, ATOL, RTOL);
        free(y), free(ref);
        conv_data_free(&d);
    }
}
END_TEST

START_TEST(conv2d_backward_matches_reference)
{
    size_t count;
    const conv_case *cases = conv_list(&count);
    for (size_t i = 0; i < count; i++) {
        const int bias = cases[i].bias;
        conv_data d = conv_data_make(&cases[i], 200 + 10 * i);
        double *rdx, *rdw, *rdb;
        conv_bwd_ref(&d, bias, &rdx, &rdw, &rdb);
        grads g = conv_bwd_device(&d, bias, d.s.n);
        char label[160];
        conv_label(label, sizeof label, "conv2d_backward_dx", &cases[i]);
        test_assert_close(label, g.dx, rdx, d.nx, ATOL, RTOL);
        conv_label(label, sizeof label, "conv2d_backward_dw", &cases[i]);
        test_assert_close(label, g.dw, rdw, d.nw, ATOL, RTOL);
        if (bias) {
            conv_label(label, sizeof label, "conv2d_backward_db", &cases[i]);
            test_assert_close(label, g.db, rdb, d.nb, ATOL, RTOL);
        }
        grads_free(&g);
        free(rdx), free(rdw), free(rdb);
        conv_data_free(&d);
    }
}
END_TEST

/* The discriminator's odd sizes, exactly: 4x4, stride 1, pad 1 maps
 * 2m -> 2m - 1 and the output size formula is floor division. */
START_TEST(conv2d_output_sizes)
{
    const int in[] = {256, 128, 64, 32, 31};
    const int out[] = {255, 127, 63, 31, 30};
    for (int i = 0; i < 5; i++) {
        enco_conv2d_shape s = {.n = 1, .cin = 1, .h = in[i], .w = in[i], .cout = 1, .kh = 4,
                               .kw = 4, .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1};
        int ho, wo;
        enco_conv2d_out_size(&s, &ho, &wo);
        ck_assert_int_eq(ho, out[i]);
        ck_assert_int_eq(wo, out[i]);
    }
    enco_conv2d_shape s = {.n = 2, .cin = 3, .h = 9, .w = 8, .cout = 4, .kh = 3, .kw = 3,
                           .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1};
    int ho, wo;
    enco_conv2d_out_size(&s, &ho, &wo);
    ck_assert_int_eq(ho, 5);
    ck_assert_int_eq(wo, 4);
    ck_assert_uint_eq(enco_conv2d_workspace_floats(&s, 1), (size_t)3 * 9 * 5 * 4);
    ck_assert_uint_eq(enco_conv2d_workspace_floats(&s, 2), (size_t)2 * 3 * 9 * 5 * 4);
    enco_op_cost c = enco_conv2d_cost(&s, 0);
    ck_assert(fabs(c.flops - (2.0 * 2 * 4 * 20 * 27 + 2 * 4 * 20)) < 0.5);
    ck_assert(fabs(c.bytes - 4.0 * (2 * 3 * 72 + 4 * 27 + 4 + 2 * 4 * 20)) < 0.5);
    ck_assert(enco_conv2d_cost(&s, 1).flops > c.flops);

    /* The network planner: one image's column matrix when it fits the cap,
     * else whole output rows (at least one), raised to the flipped-weight
     * input gradient's need where that path is taken and fits. */
    const size_t row = (size_t)3 * 9 * 4, image = row * 5; /* s: stride 2, no flip */
    ck_assert_uint_eq(enco_conv2d_workspace_plan_floats(&s, 1000), image);
    ck_assert_uint_eq(enco_conv2d_workspace_plan_floats(&s, image - 1), 4 * row);
    ck_assert_uint_eq(enco_conv2d_workspace_plan_floats(&s, row + 5), row);
    ck_assert_uint_eq(enco_conv2d_workspace_plan_floats(&s, 7), row);
    /* cout < cin, stride 1: the flip path needs cin*kt + kt*h*w with zero
     * padding (the GEMM writes dx), cin*kt + kt*pp + cin*pp with reflect
     * padding (the padded plane dxp, then the fold). */
    enco_conv2d_shape f = {.n = 1, .cin = 6, .h = 5, .w = 4, .cout = 5, .kh = 3, .kw = 3,
                           .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
                           .pad_mode = ENCO_PAD_ZERO};
    const size_t kt = 5 * 9, pp = 7 * 6, flip = 6 * kt + kt * 5 * 4,
                 rflip = 6 * kt + kt * pp + 6 * pp;
    const size_t fimage = (size_t)6 * 9 * 5 * 4;
    ck_assert_uint_lt(fimage, flip);
    ck_assert_uint_eq(enco_conv2d_workspace_plan_floats(&f, 100000), flip);
    ck_assert_uint_eq(enco_conv2d_workspace_plan_floats(&f, flip - 1), fimage); /* no room */
    f.pad_mode = ENCO_PAD_REFLECT;
    ck_assert_uint_eq(enco_conv2d_workspace_plan_floats(&f, 100000), rflip);
    ck_assert_uint_eq(enco_conv2d_workspace_plan_floats(&f, rflip - 1), fimage);
    f.pad_mode = ENCO_PAD_ZERO;
    f.cout = 8; /* cout >= cin: the column-gradient path, no flip workspace */
    ck_assert_uint_eq(enco_conv2d_workspace_plan_floats(&f, 100000), (size_t)6 * 9 * 5 * 4);

    /* Where the packed GEMM builds the column matrices (CPUs): one output row
     * (the size check), raised to the flip path's need, which every stride-1
     * layer takes there: wt alone with zero padding, wt + one image's dxp
     * with reflect padding. */
    enco_ctx *ctx = test_ctx();
    f.cout = 8;
    const size_t kt8 = 8 * 9, frow = (size_t)6 * 9 * 4, fflip = 6 * kt8, rfflip = fflip + 6 * pp;
    if (enco_sgemm_im2col_available(ctx)) {
        ck_assert_uint_eq(enco_conv2d_workspace_plan_floats_ctx(ctx, &f, 100000), fflip);
        ck_assert_uint_eq(enco_conv2d_workspace_plan_floats_ctx(ctx, &f, fflip - 1), frow);
        f.pad_mode = ENCO_PAD_REFLECT;
        ck_assert_uint_eq(enco_conv2d_workspace_plan_floats_ctx(ctx, &f, 100000), rfflip);
        ck_assert_uint_eq(enco_conv2d_workspace_plan_floats_ctx(ctx, &f, rfflip - 1), frow);
        ck_assert_uint_eq(enco_conv2d_workspace_plan_floats_ctx(ctx, &s, 100000), row);
    } else {
        ck_assert_uint_eq(enco_conv2d_workspace_plan_floats_ctx(ctx, &f, 100000),
                          enco_conv2d_workspace_plan_floats(&f, 100000));
    }
}
END_TEST

/* A layer runs with exactly the workspace its context's plan gives, and the
 * result matches the reference (the implicit path must not need more). */
START_TEST(conv2d_planned_workspace_suffices)
{
    const conv_case cases[] = {
        {2, 6, 9, 7, 8, 3, 3, 1, 1, 1, 1, ENCO_PAD_REFLECT, 1},
        {2, 5, 10, 8, 3, 4, 4, 2, 2, 1, 1, ENCO_PAD_ZERO, 0},
        {1, 8, 7, 9, 4, 7, 7, 1, 1, 3, 3, ENCO_PAD_REFLECT, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conv_data d = conv_data_make(&cases[i], 1700 + 10 * i);
        conv_ws_min = 0;
        const size_t plan = enco_conv2d_workspace_plan_floats_ctx(test_ctx(), &d.s, 1u << 20);
        /* Never less than the one output row the argument check asks for. */
        const size_t row = (size_t)d.s.cin * d.s.kh * d.s.kw * d.wo;
        ck_assert_uint_ge(plan, row);
        cl_mem x = test_upload(d.x, d.nx), w = test_upload(d.w, d.nw);
        cl_mem b = cases[i].bias ? test_upload(d.b, d.nb) : NULL;
        cl_mem dy = test_upload(d.dy, d.ny), dw = test_upload(d.dw0, d.nw);
        cl_mem db = cases[i].bias ? test_upload(d.db0, d.nb) : NULL;
        cl_mem y = test_alloc(d.ny), dx = test_alloc(d.nx), ws = test_alloc(plan);
        ENCO_CK(enco_conv2d_forward(test_ctx(), y, 0, x, 0, w, 0, b, 0, ws, 0, plan, &d.s));
        ENCO_CK(enco_conv2d_backward(test_ctx(), dx, 0, dw, 0, db, 0, dy, 0, x, 0, w, 0, ws, 0,
                                     plan, &d.s));
        float *yh = test_download(y, d.ny);
        grads g = {test_download(dx, d.nx), test_download(dw, d.nw),
                   db ? test_download(db, d.nb) : NULL};
        double *ref = zeros_f64(d.ny), *rdx, *rdw, *rdb;
        enco_conv2d_forward_ref(ref, d.xd, d.wd, d.bd, &d.s);
        conv_bwd_ref(&d, cases[i].bias, &rdx, &rdw, &rdb);
        char label[160];
        conv_label(label, sizeof label, "planned_ws_forward", &cases[i]);
        test_assert_close(label, yh, ref, d.ny, ATOL, RTOL);
        conv_label(label, sizeof label, "planned_ws_dx", &cases[i]);
        test_assert_close(label, g.dx, rdx, d.nx, ATOL, RTOL);
        conv_label(label, sizeof label, "planned_ws_dw", &cases[i]);
        test_assert_close(label, g.dw, rdw, d.nw, ATOL, RTOL);
        if (db) {
            conv_label(label, sizeof label, "planned_ws_db", &cases[i]);
            test_assert_close(label, g.db, rdb, d.nb, ATOL, RTOL);
        }
        grads_free(&g);
        free(yh), free(ref), free(rdx), free(rdw), free(rdb);
        test_release(x), test_release(w), test_release(dy), test_release(dw), test_release(y);
        test_release(dx), test_release(ws);
        if (b)
            test_release(b);
        if (db)
            test_release(db);
        conv_data_free(&d);
    }
}
END_TEST

/* A workspace smaller than the batch processes it in chunks of images (3
 * images with room for 1 and for 2); one smaller than an image, in bands of
 * output rows (1, 2, 3 and 4 rows of 7, and of 4 under Oclgrind). Same values. */
START_TEST(conv2d_chunked_workspace)
{
    static const conv_case cases[] = {
        {3, 2, 7, 6, 3, 3, 3, 2, 1, 1, 2, ENCO_PAD_REFLECT, 1},
        {2, 2, 8, 5, 2, 4, 4, 1, 1, 3, 2, ENCO_PAD_REPLICATE, 1},
        {1, 2, 13, 6, 2, 3, 3, 2, 2, 1, 1, ENCO_PAD_ZERO, 1},
        {1, 1, 9, 5, 2, 7, 3, 1, 1, 3, 1, ENCO_PAD_REFLECT, 1},
    };
    static const conv_case tiny[] = {
        {3, 1, 3, 4, 2, 3, 3, 2, 1, 1, 2, ENCO_PAD_REFLECT, 1},
        {1, 1, 4, 3, 2, 4, 4, 1, 1, 3, 2, ENCO_PAD_REPLICATE, 1},
    };
    const int on_ocl = test_on_oclgrind();
    const size_t count = on_ocl ? 2 : sizeof cases / sizeof cases[0];
    static const int plans[] = {1, 2, -1, -2, -3, -4};
    for (size_t i = 0; i < count; i++) {
        const conv_case *c = on_ocl ? &tiny[i] : &cases[i];
        conv_data d = conv_data_make(c, 300 + 10 * i);
        double *ref = zeros_f64(d.ny);
        enco_conv2d_forward_ref(ref, d.xd, d.wd, d.bd, &d.s);
        double *rdx, *rdw, *rdb;
        conv_bwd_ref(&d, 1, &rdx, &rdw, &rdb);
        for (size_t k = 0; k < sizeof plans / sizeof plans[0]; k++) {
            char label[200], what[80];
            snprintf(what, sizeof what, "conv2d_%s_ws%+d", "forward", plans[k]);
            conv_label(label, sizeof label, what, c);
            float *y = conv_fwd_device(&d, 1, plans[k]);
            test_assert_close(label, y, ref, d.ny, ATOL, RTOL);
            grads g = conv_bwd_device(&d, 1, plans[k]);
            snprintf(what, sizeof what, "conv2d_%s_ws%+d", "backward_dx", plans[k]);
            conv_label(label, sizeof label, what, c);
            test_assert_close(label, g.dx, rdx, d.nx, ATOL, RTOL);
            snprintf(what, sizeof what, "conv2d_%s_ws%+d", "backward_dw", plans[k]);
            conv_label(label, sizeof label, what, c);
            test_assert_close(label, g.dw, rdw, d.nw, ATOL, RTOL);
            snprintf(what, sizeof what, "conv2d_%s_ws%+d", "backward_db", plans[k]);
            conv_label(label, sizeof label, what, c);
            test_assert_close(label, g.db, rdb, d.nb, ATOL, RTOL);
            grads_free(&g);
            free(y);
        }
        free(ref), free(rdx), free(rdw), free(rdb);
        conv_data_free(&d);
    }
}
END_TEST

/* The banded path is deterministic too. */
START_TEST(conv2d_banded_deterministic)
{
    conv_case c = {1, 2, 9, 7, 3, 3, 3, 1, 1, 2, 2, ENCO_PAD_REFLECT, 1};
    if (test_on_oclgrind())
        c = (conv_case){1, 1, 4, 3, 2, 3, 3, 1, 1, 2, 2, ENCO_PAD_REFLECT, 1};
    conv_data d = conv_data_make(&c, 650);
    grads g1 = conv_bwd_device(&d, 1, -2), g2 = conv_bwd_device(&d, 1, -2);
    test_assert_bitwise("conv2d_backward_dx_banded", g1.dx, g2.dx, d.nx);
    test_assert_bitwise("conv2d_backward_dw_banded", g1.dw, g2.dw, d.nw);
    grads_free(&g1), grads_free(&g2);
    conv_data_free(&d);
}
END_TEST

/* Only some gradients: dx alone (no x, no workspace for dw), dw alone (no
 * w), db alone (no workspace at all). The others stay untouched. */
START_TEST(conv2d_partial_gradients)
{
    conv_case c = {2, 2, 6, 5, 3, 3, 3, 1, 1, 1, 1, ENCO_PAD_REPLICATE, 1};
    if (test_on_oclgrind())
        c = (conv_case){1, 1, 3, 3, 2, 3, 3, 1, 1, 1, 1, ENCO_PAD_REPLICATE, 1};
    conv_data d = conv_data_make(&c, 400);
    double *rdx, *rdw, *rdb;
    conv_bwd_ref(&d, 1, &rdx, &rdw, &rdb);
    enco_ctx *ctx = test_ctx();
    cl_mem x = test_upload(d.x, d.nx), w = test_upload(d.w, d.nw), dy = test_upload(d.dy, d.ny);
    cl_mem dx = test_alloc(d.nx), dw = test_upload(d.dw0, d.nw), db = test_upload(d.db0, d.nb);
    size_t wsn = enco_conv2d_workspace_floats(&d.s, d.s.n);
    cl_mem ws = test_alloc(wsn);

    ENCO_CK(enco_conv2d_backward(ctx, dx, 0, NULL, 0, NULL, 0, dy, 0, NULL, 0, w, 0, ws, 0, wsn,
                                 &d.s));
    float *got = test_download(dx, d.nx);
    test_assert_close("conv2d_backward_dx_only", got, rdx, d.nx, ATOL, RTOL);
    free(got);
    ENCO_CK(enco_conv2d_backward(ctx, NULL, 0, dw, 0, NULL, 0, dy, 0, x, 0, NULL, 0, ws, 0, wsn,
                                 &d.s));
    got = test_download(dw, d.nw);
    test_assert_close("conv2d_backward_dw_only", got, rdw, d.nw, ATOL, RTOL);
    free(got);
    ENCO_CK(enco_conv2d_backward(ctx, NULL, 0, NULL, 0, db, 0, dy, 0, NULL, 0, NULL, 0, NULL, 0, 0,
                                 &d.s));
    got = test_download(db, d.nb);
    test_assert_close("conv2d_backward_db_only", got, rdb, d.nb, ATOL, RTOL);
    free(got);

    test_release(x), test_release(w), test_release(dy), test_release(dx), test_release(dw);
    test_release(db), test_release(ws);
    free(rdx), free(rdw), free(rdb);
    conv_data_free(&d);
}
END_TEST

/* Offsets in elements: the op reads and writes inside larger buffers. */
START_TEST(conv2d_offsets)
{
    conv_case c = {1, 2, 5, 4, 2, 3, 3, 1, 1, 1, 1, ENCO_PAD_ZERO, 1};
    conv_data d = conv_data_make(&c, 450);
    const size_t off = 7;
    float *big = calloc(d.nx + d.nw + d.nb + d.ny + 4 * off, sizeof(float));
    ck_assert_ptr_nonnull(big);
    memcpy(big + off, d.x, d.nx * sizeof(float));
    memcpy(big + 2 * off + d.nx, d.w, d.nw * sizeof(float));
    memcpy(big + 3 * off + d.nx + d.nw, d.b, d.nb * sizeof(float));
    const size_t total = d.nx + d.nw + d.nb + d.ny + 4 * off;
    cl_mem m = test_upload(big, total);
    size_t wsn = enco_conv2d_workspace_floats(&d.s, 1);
    cl_mem ws = test_alloc(wsn + 5);
    const size_t yo = 4 * off + d.nx + d.nw + d.nb - off;
    ENCO_CK(enco_conv2d_forward(test_ctx(), m, yo, m, off, m, 2 * off + d.nx, m,
                                3 * off + d.nx + d.nw, ws, 5, wsn, &d.s));
    float *all = test_download(m, total);
    double *ref = zeros_f64(d.ny);
    enco_conv2d_forward_ref(ref, d.xd, d.wd, d.bd, &d.s);
    test_assert_close("conv2d_forward_offsets", all + yo, ref, d.ny, ATOL, RTOL);
    /* The inputs around it are intact. */
    test_assert_bitwise("conv2d_offsets_x", all + off, d.x, d.nx);
    test_release(m), test_release(ws);
    free(all), free(big), free(ref);
    conv_data_free(&d);
}
END_TEST

static void conv_ref_fwd(const void *shape, double *y, double *const *in)
{
    enco_conv2d_forward_ref(y, in[0], in[1], in[2], shape);
}

START_TEST(conv2d_reference_gradients_vs_finite_differences)
{
    static const conv_case cases[] = {
        {2, 2, 5, 4, 2, 3, 3, 1, 1, 1, 1, ENCO_PAD_ZERO, 1},
        {1, 2, 5, 4, 2, 3, 3, 2, 2, 2, 2, ENCO_PAD_REFLECT, 1},
        {1, 2, 4, 5, 2, 4, 4, 2, 2, 3, 3, ENCO_PAD_REPLICATE, 1},
        {1, 1, 4, 4, 2, 4, 4, 1, 1, 3, 1, ENCO_PAD_REFLECT, 0},
        {1, 2, 1, 3, 1, 3, 3, 1, 1, 2, 1, ENCO_PAD_REPLICATE, 1},
        {1, 2, 4, 3, 2, 1, 1, 2, 1, 0, 0, ENCO_PAD_ZERO, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conv_data d = conv_data_make(&cases[i], 500 + 10 * i);
        double *dx = zeros_f64(d.nx), *dw = zeros_f64(d.nw), *db = zeros_f64(d.nb);
        enco_conv2d_backward_ref(dx, dw, cases[i].bias ? db : NULL, d.dyd, d.xd, d.wd, &d.s);
        double *in[3] = {d.xd, d.wd, d.bd};
        double *gr[3] = {dx, dw, db};
        size_t sizes[3] = {d.nx, d.nw, d.nb};
        char label[160];
        conv_label(label, sizeof label, "fd_conv2d", &cases[i]);
        fd_check(label, &d.s, conv_ref_fwd, in, sizes, 3, d.ny, d.dyd, gr);
        free(dx), free(dw), free(db);
        conv_data_free(&d);
    }
}
END_TEST

START_TEST(conv2d_deterministic)
{
    conv_case c = {2, 3, 9, 8, 4, 4, 4, 2, 2, 2, 2, ENCO_PAD_REFLECT, 1};
    if (test_on_oclgrind())
        c = (conv_case){2, 1, 4, 3, 2, 3, 3, 2, 2, 2, 2, ENCO_PAD_REFLECT, 1};
    conv_data d = conv_data_make(&c, 600);
    float *y1 = conv_fwd_device(&d, 1, d.s.n), *y2 = conv_fwd_device(&d, 1, d.s.n);
    test_assert_bitwise("conv2d_forward", y1, y2, d.ny);
    grads g1 = conv_bwd_device(&d, 1, d.s.n), g2 = conv_bwd_device(&d, 1, d.s.n);
    test_assert_bitwise("conv2d_backward_dx", g1.dx, g2.dx, d.nx);
    test_assert_bitwise("conv2d_backward_dw", g1.dw, g2.dw, d.nw);
    test_assert_bitwise("conv2d_backward_db", g1.db, g2.db, d.nb);
    free(y1), free(y2);
    grads_free(&g1), grads_free(&g2);
    conv_data_free(&d);
}
END_TEST

static void expect_invalid(enco_status st, const char *needle)
{
    ck_assert_msg(st == ENCO_ERR_INVALID_ARG, "expected ENCO_ERR_INVALID_ARG, got %s (%s)",
                  enco_status_str(st), enco_last_error());
    ck_assert_msg(strstr(enco_last_error(), needle) != NULL, "message '%s' lacks '%s'",
                  enco_last_error(), needle);
}

/* The implicit im2col GEMMs refuse a context without the packed CPU GEMM
 * (ENCO_GEMM_TILE=0 turns it off on the CPU) instead of running anything,
 * and a bias they cannot add. */
START_TEST(conv_gemm_implicit_needs_packed)
{
    const enco_im2col_geom g = {.c = 2, .h = 5, .w = 4, .ho = 5, .wo = 4, .kh = 3, .kw = 3,
                                .sh = 1, .sw = 1, .pt = 1, .pl = 1, .mode = ENCO_PAD_ZERO};
    cl_mem x = test_alloc(40), a = test_alloc(64), c = test_alloc(64);
    ck_assert_int_eq(test_setenv("ENCO_GEMM_TILE", "0"), 0);
    ck_assert_int_eq(enco_sgemm_im2col_available(test_ctx()), 0);
    expect_invalid(enco_sgemm_im2col(test_ctx(), 0, 2, 1.0f, a, 0, 18, 0, x, 0, 40, &g, 0.0f, c,
                                     0, 20, 40, 1, NULL, 0),
                   "packed CPU GEMM");
    expect_invalid(enco_conv_gemm_wgrad(test_ctx(), 2, 1.0f, a, 0, 20, x, 0, &g, 1.0f, c, 0, 18),
                   "packed CPU GEMM");
    /* A bias is added only where it is the whole of the rest (beta 0, not
     * transposed). */
    ck_assert_int_eq(test_setenv("ENCO_GEMM_TILE", "1"), 0);
    expect_invalid(enco_sgemm_im2col(test_ctx(), 0, 2, 1.0f, a, 0, 18, 0, x, 0, 40, &g, 1.0f, c,
                                     0, 20, 40, 1, a, 0),
                   "bias");
    expect_invalid(enco_sgemm_im2col(test_ctx(), 1, 2, 1.0f, a, 0, 20, 0, x, 0, 40, &g, 0.0f, c,
                                     0, 18, 36, 1, a, 0),
                   "bias");
    ck_assert_int_eq(test_setenv("ENCO_GEMM_TILE", NULL), 0);
    test_release(x), test_release(a), test_release(c);
}
END_TEST

static unsigned long small_launches(void)
{
    return enco_kernel_launches(test_ctx(), "conv_fwd_small") +
           enco_kernel_launches(test_ctx(), "conv_fwd_small_strip") +
           enco_kernel_launches(test_ctx(), "conv_fwd_small_rows");
}

/* A layer's paths are chosen once (enco_conv2d_plan) from the context's
 * policy and follow it; the planned entry points give the bits of the
 * unplanned ones; paths planned before a policy change keep their kernels
 * (while an unplanned call follows the new policy); made-up paths are
 * refused. */
START_TEST(conv2d_plan_is_kept)
{
    enco_ctx *ctx = test_ctx();
    const enco_conv2d_shape s = {.n = 2, .cin = 3, .h = 9, .w = 11, .cout = 2, .kh = 3, .kw = 3,
                                 .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
                                 .pad_mode = ENCO_PAD_REFLECT};
    const size_t nx = 2 * 3 * 9 * 11, ny = 2 * 2 * 9 * 11, nw = 2 * 3 * 9, wsn = 20000;
    float *hx = malloc(nx * sizeof *hx), *hw = malloc(nw * sizeof *hw), *hdy = malloc(ny * sizeof *hdy);
    const float hb[2] = {0.25f, -0.5f};
    test_fill_uniform(hx, nx, 31, -1, 1);
    test_fill_uniform(hw, nw, 32, -1, 1);
    test_fill_uniform(hdy, ny, 33, -1, 1);
    cl_mem x = test_upload(hx, nx), w = test_upload(hw, nw), b = test_upload(hb, 2),
           dy = test_upload(hdy, ny), ws = test_alloc(wsn);
    cl_mem y[2] = {test_alloc(ny), test_alloc(ny)}, dx[2] = {test_alloc(nx), test_alloc(nx)},
           dw[2] = {test_alloc(nw), test_alloc(nw)}, db[2] = {test_alloc(2), test_alloc(2)};

    const enco_kernel_policy keep = *enco_ctx_kernel_policy(ctx);
    enco_kernel_policy base = keep; /* whatever ENCO_* the suite runs under */
    base.conv_direct_max = 4;
    base.conv_bwd_flip = ENCO_PATH_AUTO;
    ENCO_CK(enco_ctx_set_kernel_policy(ctx, &base));
    enco_conv2d_paths direct, gemm;
    ENCO_CK(enco_conv2d_plan(ctx, &s, &direct));
    ck_assert_int_eq(direct.direct, 1);
    ck_assert_int_eq(direct.bwd_flip, 1);
    ck_assert_int_eq(direct.rows, keep.conv_rows == ENCO_PATH_ON);
    /* The unplanned reference, under the policy the plan was made with. */
    ENCO_CK(enco_conv2d_forward(ctx, y[0], 0, x, 0, w, 0, b, 0, ws, 0, wsn, &s));
    ENCO_CK(enco_conv2d_backward(ctx, dx[0], 0, dw[0], 0, db[0], 0, dy, 0, x, 0, w, 0, ws, 0,
                                 wsn, &s));

    enco_kernel_policy q = base;
    q.conv_direct_max = ENCO_POLICY_NEVER;
    q.conv_bwd_flip = ENCO_PATH_OFF;
    ENCO_CK(enco_ctx_set_kernel_policy(ctx, &q));
    ENCO_CK(enco_conv2d_plan(ctx, &s, &gemm));
    ck_assert_int_eq(gemm.direct, 0);
    ck_assert_int_eq(gemm.bwd_flip, 0);
    unsigned long n0 = small_launches();
    ENCO_CK(enco_conv2d_forward(ctx, y[1], 0, x, 0, w, 0, b, 0, ws, 0, wsn, &s));
    ck_assert_uint_eq(small_launches(), n0); /* unplanned: the new policy, no direct kernel */
    ENCO_CK(enco_conv2d_forward_planned(ctx, y[1], 0, x, 0, w, 0, b, 0, ws, 0, wsn, &s, &direct));
    ck_assert_uint_eq(small_launches(), n0 + 1); /* planned: the direct kernel it chose */
    ENCO_CK(enco_conv2d_backward_planned(ctx, dx[1], 0, dw[1], 0, db[1], 0, dy, 0, x, 0, w, 0, ws,
                                         0, wsn, &s, &direct));
    float *a, *c;
    const struct {
        const char *what;
        cl_mem *m;
        size_t n;
    } outs[] = {{"conv2d_planned_y", y, ny}, {"conv2d_planned_dx", dx, nx},
                {"conv2d_planned_dw", dw, nw}, {"conv2d_planned_db", db, 2}};
    for (size_t i = 0; i < 4; i++) {
        a = test_download(outs[i].m[0], outs[i].n);
        c = test_download(outs[i].m[1], outs[i].n);
        test_assert_bitwise(outs[i].what, a, c, outs[i].n);
        free(a), free(c);
    }
    ENCO_CK(enco_ctx_set_kernel_policy(ctx, &keep));

    enco_conv2d_paths bad = direct;
    bad.direct = 5;
    expect_invalid(
        enco_conv2d_forward_planned(ctx, y[1], 0, x, 0, w, 0, b, 0, ws, 0, wsn, &s, &bad),
        "enco_conv2d_plan");
    /* Another batch size runs the same paths; another shape is refused. */
    enco_conv2d_shape one = s, other = s;
    one.n = 1;
    ENCO_CK(enco_conv2d_forward_planned(ctx, y[1], 0, x, 0, w, 0, b, 0, ws, 0, wsn, &one, &direct));
    other.pad_mode = ENCO_PAD_ZERO;
    expect_invalid(enco_conv2d_backward_planned(ctx, dx[1], 0, NULL, 0, NULL, 0, dy, 0, NULL, 0, w,
                                                0, ws, 0, wsn, &other, &direct),
                   "another shape");
    other = s;
    other.kh = 0;
    expect_invalid(enco_conv2d_plan(ctx, &other, &gemm), "kernel");
    for (int i = 0; i < 2; i++)
        test_release(y[i]), test_release(dx[i]), test_release(dw[i]), test_release(db[i]);
    test_release(x), test_release(w), test_release(b), test_release(dy), test_release(ws);
    free(hx), free(hw), free(hdy);
}
END_TEST

START_TEST(conv2d_rejects_bad_arguments)
{
    enco_ctx *ctx = test_ctx();
    enco_conv2d_shape ok = {.n = 1, .cin = 2, .h = 4, .w = 5, .cout = 2, .kh = 3, .kw = 3,
                            .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
                            .pad_mode = ENCO_PAD_REFLECT};
    cl_mem x = test_alloc(40), w = test_alloc(36), y = test_alloc(40), b = test_alloc(2);
    size_t wsn = enco_conv2d_workspace_floats(&ok, 1);
    cl_mem ws = test_alloc(wsn);
    ENCO_CK(enco_conv2d_forward(ctx, y, 0, x, 0, w, 0, b, 0, ws, 0, wsn, &ok));

    enco_conv2d_shape s = ok;
    s.pad_h = 4; /* reflect needs pad < h */
    expect_invalid(enco_conv2d_forward(ctx, y, 0, x, 0, w, 0, b, 0, ws, 0, wsn, &s), "reflect");
    s = ok;
    s.stride_w = 0;
    expect_invalid(enco_conv2d_forward(ctx, y, 0, x, 0, w, 0, b, 0, ws, 0, wsn, &s), "stride");
    s = ok;
    s.pad_mode = (enco_pad_mode)7;
    expect_invalid(enco_conv2d_forward(ctx, y, 0, x, 0, w, 0, b, 0, ws, 0, wsn, &s), "mode");
    s = ok;
    s.kh = 7;
    s.pad_h = 0;
    expect_invalid(enco_conv2d_forward(ctx, y, 0, x, 0, w, 0, b, 0, ws, 0, wsn, &s), "larger");
    s = ok;
    s.n = 0;
    expect_invalid(enco_conv2d_check(&s), "empty");
    /* Below one output row's column matrix (18 * 5 floats). */
    expect_invalid(enco_conv2d_forward(ctx, y, 0, x, 0, w, 0, b, 0, ws, 0, 18 * 5 - 1, &ok),
                   "workspace");
    /* A workspace size larger than the buffer. */
    expect_invalid(enco_conv2d_forward(ctx, y, 0, x, 0, w, 0, b, 0, ws, 1, wsn, &ok),
                   "workspace needs elements");
    expect_invalid(enco_conv2d_forward(ctx, y, 0, x, 1, w, 0, b, 0, ws, 0, wsn, &ok), "x needs elements");
    expect_invalid(enco_conv2d_forward(ctx, y, 0, NULL, 0, w, 0, b, 0, ws, 0, wsn, &ok), "NULL");
    expect_invalid(enco_conv2d_backward(ctx, x, 0, w, 0, NULL, 0, y, 0, NULL, 0, w, 0, ws, 0, wsn,
                                        &ok),
                   "x buffer is NULL");
    test_release(x), test_release(w), test_release(y), test_release(b), test_release(ws);
}
END_TEST

/* ---- ConvTranspose2d ------------------------------------------------------ */

typedef struct convt_case {
    int n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, oph, opw, bias;
} convt_case;

static const convt_case convt_cases[] = {
    {2, 3, 5, 4, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1}, /* the generator's no_antialias_up */
    {1, 4, 6, 7, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1},
    {1, 2, 4, 6, 3, 3, 3, 2, 2, 1, 1, 0, 0, 0},
    {1, 2, 3, 5, 2, 4, 4, 2, 2, 1, 1, 1, 0, 1},
    {2, 3, 4, 4, 2, 3, 3, 1, 1, 1, 1, 0, 0, 1},
    {1, 2, 3, 3, 2, 5, 5, 3, 3, 0, 0, 2, 1, 1},
    {1, 2, 4, 3, 3, 3, 2, 2, 1, 2, 1, 1, 0, 0},
};

static const convt_case convt_cases_tiny[] = {
    {2, 2, 3, 2, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1},
    {1, 2, 2, 3, 1, 4, 4, 2, 2, 1, 2, 1, 0, 0},
};

static const convt_case *convt_list(size_t *count)
{
    if (test_on_oclgrind()) {
        *count = sizeof convt_cases_tiny / sizeof convt_cases_tiny[0];
        return convt_cases_tiny;
    }
    *count = sizeof convt_cases / sizeof convt_cases[0];
    return convt_cases;
}

static enco_conv_transpose2d_shape convt_shape(const convt_case *c)
{
    enco_conv_transpose2d_shape s = {
        .n = c->n, .cin = c->cin, .h = c->h, .w = c->w, .cout = c->cout, .kh = c->kh,
        .kw = c->kw, .stride_h = c->sh, .stride_w = c->sw, .pad_h = c->ph, .pad_w = c->pw,
        .out_pad_h = c->oph, .out_pad_w = c->opw};
    return s;
}

static void convt_label(char *buf, size_t size, const char *what, const convt_case *c)
{
    snprintf(buf, size, "%s n%d c%d->%d %dx%d k%dx%d s%dx%d p%dx%d op%dx%d%s", what, c->n, c->cin,
             c->cout, c->h, c->w, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, c->oph, c->opw,
             c->bias ? " bias" : "");
}

typedef struct convt_data {
    enco_conv_transpose2d_shape s;
    int ho, wo;
    size_t nx, nw, nb, ny;
    float *x, *w, *b, *dy, *dw0, *db0;
    double *xd, *wd, *bd, *dyd;
} convt_data;

static convt_data convt_data_make(const convt_case *c, uint64_t seed)
{
    convt_data d = {.s = convt_shape(c)};
    ENCO_CK(enco_conv_transpose2d_check(&d.s));
    enco_conv_transpose2d_out_size(&d.s, &d.ho, &d.wo);
    d.nx = (size_t)c->n * c->cin * c->h * c->w;
    d.nw = (size_t)c->cin * c->cout * c->kh * c->kw;
    d.nb = (size_t)c->cout;
    d.ny = (size_t)c->n * c->cout * d.ho * d.wo;
    d.x = rand_f(d.nx, seed, -1, 1);
    d.w = rand_f(d.nw, seed + 1, -0.5f, 0.5f);
    d.b = rand_f(d.nb, seed + 2, -0.5f, 0.5f);
    d.dy = rand_f(d.ny, seed + 3, -1, 1);
    d.dw0 = rand_f(d.nw, seed + 4, -0.25f, 0.25f);
    d.db0 = rand_f(d.nb, seed + 5, -0.25f, 0.25f);
    d.xd = to_f64(d.x, d.nx);
    d.wd = to_f64(d.w, d.nw);
    d.bd = c->bias ? to_f64(d.b, d.nb) : NULL;
    d.dyd = to_f64(d.dy, d.ny);
    return d;
}

static void convt_data_free(convt_data *d)
{
    free(d->x), free(d->w), free(d->b), free(d->dy), free(d->dw0), free(d->db0);
    free(d->xd), free(d->wd), free(d->bd), free(d->dyd);
}

/* As conv_ws: whole images, or -images rows of the input (the rows of the
 * adjoint convolution's window positions). */
static size_t convt_ws(const convt_data *d, int images)
{
    if (images > 0)
        return enco_conv_transpose2d_workspace_floats(&d->s, images);
    return (size_t)-images * d->s.cout * d->s.kh * d->s.kw * d->s.w;
}

static float *convt_fwd_device(const convt_data *d, int bias, int images)
{
    cl_mem x = test_upload(d->x, d->nx), w = test_upload(d->w, d->nw);
    cl_mem b = bias ? test_upload(d->b, d->nb) : NULL;
    size_t wsn = convt_ws(d, images);
    cl_mem ws = test_alloc(wsn);
    float *junk = rand_f(d->ny, 97, 50, 60);
    cl_mem y = test_upload(junk, d->ny);
    free(junk);
    ENCO_CK(enco_conv_transpose2d_forward(test_ctx(), y, 0, x, 0, w, 0, b, 0, ws, 0, wsn, &d->s));
    float *out = test_download(y, d->ny);
    test_release(x), test_release(w), test_release(y), test_release(ws);
    if (b)
        test_release(b);
    return out;
}

static grads convt_bwd_device(const convt_data *d, int bias, int images)
{
    cl_mem x = test_upload(d->x, d->nx), w = test_upload(d->w, d->nw);
    cl_mem dy = test_upload(d->dy, d->ny);
    cl_mem dw = test_upload(d->dw0, d->nw);
    cl_mem db = bias ? test_upload(d->db0, d->nb) : NULL;
    float *junk = rand_f(d->nx, 96, 50, 60);
    cl_mem dx = test_upload(junk, d->nx);
    free(junk);
    size_t wsn = convt_ws(d, images);
    cl_mem ws = test_alloc(wsn);
    ENCO_CK(enco_conv_transpose2d_backward(test_ctx(), dx, 0, dw, 0, db, 0, dy, 0, x, 0, w, 0, ws,
                                           0, wsn, &d->s));
    grads g = {test_download(dx, d->nx), test_download(dw, d->nw),
               bias ? test_download(db, d->nb) : NULL};
    test_release(x), test_release(w), test_release(dy), test_release(dw), test_release(dx);
    test_release(ws);
    if (db)
        test_release(db);
    return g;
}

START_TEST(convt_output_sizes)
{
    /* ConvTranspose2d(3, s2, p1, op1) doubles the size. */
    enco_conv_transpose2d_shape s = {.n = 1, .cin = 4, .h = 64, .w = 33, .cout = 2, .kh = 3,
                                     .kw = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1,
                                     .pad_w = 1, .out_pad_h = 1, .out_pad_w = 1};
    int ho, wo;
    enco_conv_transpose2d_out_size(&s, &ho, &wo);
    ck_assert_int_eq(ho, 128);
    ck_assert_int_eq(wo, 66);
    ck_assert_uint_eq(enco_conv_transpose2d_workspace_floats(&s, 1), (size_t)2 * 9 * 64 * 33);
    enco_op_cost c = enco_conv_transpose2d_cost(&s, 0);
    ck_assert(fabs(c.flops - (2.0 * 4 * 64 * 33 * 2 * 9 + 2 * 128 * 66)) < 0.5);
}
END_TEST

START_TEST(convt_forward_matches_reference)
{
    size_t count;
    const convt_case *cases = convt_list(&count);
    for (size_t i = 0; i < count; i++) {
        convt_data d = convt_data_make(&cases[i], 700 + 10 * i);
        double *ref = zeros_f64(d.ny);
        enco_conv_transpose2d_forward_ref(ref, d.xd, d.wd, d.bd, &d.s);
        char label[160];
        convt_label(label, sizeof label, "convt_forward", &cases[i]);
        /* Whole batch, one image at a time, bands of 1 and 2 input rows. */
        const int plans[] = {d.s.n, 1, -1, -2};
        for (int k = 0; k < 4; k++) {
            float *y = convt_fwd_device(&d, cases[i].bias, plans[k]);
            test_assert_close(label, y, ref, d.ny, ATOL, RTOL);
            free(y);
        }
        free(ref);
        convt_data_free(&d);
    }
}
END_TEST

START_TEST(convt_backward_matches_reference)
{
    size_t count;
    const convt_case *cases = convt_list(&count);
    for (size_t i = 0; i < count; i++) {
        const int bias = cases[i].bias;
        convt_data d = convt_data_make(&cases[i], 800 + 10 * i);
        double *rdx = zeros_f64(d.nx), *rdw = to_f64(d.dw0, d.nw);
        double *rdb = bias ? to_f64(d.db0, d.nb) : NULL;
        enco_conv_transpose2d_backward_ref(rdx, rdw, rdb, d.dyd, d.xd, d.wd, &d.s);
        char label[160];
        const int plans[] = {d.s.n, 1, -1, -2};
        for (int k = 0; k < 4; k++) {
            grads g = convt_bwd_device(&d, bias, plans[k]);
            convt_label(label, sizeof label, "convt_backward_dx", &cases[i]);
            test_assert_close(label, g.dx, rdx, d.nx, ATOL, RTOL);
            convt_label(label, sizeof label, "convt_backward_dw", &cases[i]);
            test_assert_close(label, g.dw, rdw, d.nw, ATOL, RTOL);
            if (bias) {
                convt_label(label, sizeof label, "convt_backward_db", &cases[i]);
                test_assert_close(label, g.db, rdb, d.nb, ATOL, RTOL);
            }
            grads_free(&g);
        }
        free(rdx), free(rdw), free(rdb);
        convt_data_free(&d);
    }
}
END_TEST

static void convt_ref_fwd(const void *shape, double *y, double *const *in)
{
    enco_conv_transpose2d_forward_ref(y, in[0], in[1], in[2], shape);
}

START_TEST(convt_reference_gradients_vs_finite_differences)
{
    static const convt_case cases[] = {
        {2, 2, 3, 2, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1},
        {1, 2, 2, 3, 1, 4, 4, 2, 2, 1, 2, 1, 0, 1},
        {1, 1, 3, 3, 2, 3, 2, 1, 2, 0, 1, 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        convt_data d = convt_data_make(&cases[i], 900 + 10 * i);
        double *dx = zeros_f64(d.nx), *dw = zeros_f64(d.nw), *db = zeros_f64(d.nb);
        enco_conv_transpose2d_backward_ref(dx, dw, cases[i].bias ? db : NULL, d.dyd, d.xd, d.wd,
                                           &d.s);
        double *in[3] = {d.xd, d.wd, d.bd};
        double *gr[3] = {dx, dw, db};
        size_t sizes[3] = {d.nx, d.nw, d.nb};
        char label[160];
        convt_label(label, sizeof label, "fd_convt", &cases[i]);
        fd_check(label, &d.s, convt_ref_fwd, in, sizes, 3, d.ny, d.dyd, gr);
        free(dx), free(dw), free(db);
        convt_data_free(&d);
    }
}
END_TEST

START_TEST(convt_deterministic)
{
    const convt_case *c = &convt_list(&(size_t){0})[0];
    convt_data d = convt_data_make(c, 950);
    float *y1 = convt_fwd_device(&d, 1, d.s.n), *y2 = convt_fwd_device(&d, 1, d.s.n);
    test_assert_bitwise("convt_forward", y1, y2, d.ny);
    grads g1 = convt_bwd_device(&d, 1, d.s.n), g2 = convt_bwd_device(&d, 1, d.s.n);
    test_assert_bitwise("convt_backward_dx", g1.dx, g2.dx, d.nx);
    test_assert_bitwise("convt_backward_dw", g1.dw, g2.dw, d.nw);
    test_assert_bitwise("convt_backward_db", g1.db, g2.db, d.nb);
    free(y1), free(y2);
    grads_free(&g1), grads_free(&g2);
    convt_data_free(&d);
}
END_TEST

START_TEST(convt_rejects_bad_arguments)
{
    enco_ctx *ctx = test_ctx();
    enco_conv_transpose2d_shape ok = {.n = 1, .cin = 2, .h = 3, .w = 3, .cout = 2, .kh = 3,
                                      .kw = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1,
                                      .pad_w = 1, .out_pad_h = 1, .out_pad_w = 1};
    ENCO_CK(enco_conv_transpose2d_check(&ok));
    enco_conv_transpose2d_shape s = ok;
    s.out_pad_h = 2;
    expect_invalid(enco_conv_transpose2d_check(&s), "output_padding");
    s = ok;
    s.pad_h = 5;
    expect_invalid(enco_conv_transpose2d_check(&s), "empty output");
    cl_mem x = test_alloc(18), w = test_alloc(36), y = test_alloc(72);
    size_t wsn = enco_conv_transpose2d_workspace_floats(&ok, 1);
    cl_mem ws = test_alloc(wsn);
    expect_invalid(enco_conv_transpose2d_forward(ctx, y, 1, x, 0, w, 0, NULL, 0, ws, 0, wsn, &ok),
                   "y needs elements");
    expect_invalid(enco_conv_transpose2d_forward(ctx, y, 0, x, 0, w, 0, NULL, 0, ws, 0, 3, &ok),
                   "workspace");
    ENCO_CK(enco_conv_transpose2d_forward(ctx, y, 0, x, 0, w, 0, NULL, 0, ws, 0, wsn, &ok));
    test_release(x), test_release(w), test_release(y), test_release(ws);
}
END_TEST

/* ---- Pad2d ---------------------------------------------------------------- */

/* Every mode with widths 0..3 on each side (rotated so each side sees each
 * width), plus 1-pixel-wide inputs for replicate / zero. */
static int pad_cases(enco_pad2d_shape *out, int max)
{
    int k = 0;
    const int tiny = test_on_oclgrind();
    for (int mode = 0; mode < 3; mode++)
        for (int wdt = 0; wdt < 4 && k < max; wdt++) {
            enco_pad2d_shape s = {.n = tiny ? 1 : 2, .c = tiny ? 1 : 3, .h = 5, .w = 4,
                                  .top = wdt, .bottom = (wdt + 1) % 4, .left = (wdt + 2) % 4,
                                  .right = (wdt + 3) % 4, .mode = (enco_pad_mode)mode};
            out[k++] = s;
            if (tiny && wdt == 1)
                wdt = 2; /* 0, 1, 3 under Oclgrind */
        }
    enco_pad2d_shape one = {.n = 1, .c = 2, .h = 1, .w = 3, .top = 2, .bottom = 3, .left = 1,
                            .right = 2, .mode = ENCO_PAD_REPLICATE};
    out[k++] = one;
    one.h = 3, one.w = 1, one.mode = ENCO_PAD_ZERO;
    out[k++] = one;
    one.h = 2, one.w = 2, one.top = 1, one.bottom = 1, one.left = 0, one.right = 1;
    one.mode = ENCO_PAD_REFLECT;
    out[k++] = one;
    return k;
}

static void pad_label(char *buf, size_t size, const char *what, const enco_pad2d_shape *s)
{
    snprintf(buf, size, "%s n%d c%d %dx%d t%d b%d l%d r%d %s", what, s->n, s->c, s->h, s->w,
             s->top, s->bottom, s->left, s->right, mode_name(s->mode));
}

START_TEST(pad2d_matches_reference)
{
    enco_pad2d_shape cases[20];
    int count = pad_cases(cases, 16);
    for (int i = 0; i < count; i++) {
        const enco_pad2d_shape *s = &cases[i];
        int ho, wo;
        enco_pad2d_out_size(s, &ho, &wo);
        ck_assert_int_eq(ho, s->h + s->top + s->bottom);
        size_t nx = (size_t)s->n * s->c * s->h * s->w, ny = (size_t)s->n * s->c * ho * wo;
        float *x = rand_f(nx, 1000 + i, -1, 1), *dy = rand_f(ny, 1100 + i, -1, 1);
        double *xd = to_f64(x, nx), *dyd = to_f64(dy, ny);
        double *ry = zeros_f64(ny), *rdx = zeros_f64(nx);
        enco_pad2d_forward_ref(ry, xd, s);
        enco_pad2d_backward_ref(rdx, dyd, s);
        float *junk = rand_f(ny > nx ? ny : nx, 1200, 50, 60);
        cl_mem bx = test_upload(x, nx), bdy = test_upload(dy, ny);
        cl_mem by = test_upload(junk, ny), bdx = test_upload(junk, nx);
        ENCO_CK(enco_pad2d_forward(test_ctx(), by, 0, bx, 0, s));
        ENCO_CK(enco_pad2d_backward(test_ctx(), bdx, 0, bdy, 0, s));
        float *y = test_download(by, ny), *dx = test_download(bdx, nx);
        char label[160];
        pad_label(label, sizeof label, "pad2d_forward", s);
        /* A copy: exact. */
        test_assert_close(label, y, ry, ny, 0, 0);
        pad_label(label, sizeof label, "pad2d_backward", s);
        test_assert_close(label, dx, rdx, nx, 1e-6, 1e-6);
        /* Run twice: bitwise identical. */
        ENCO_CK(enco_pad2d_backward(test_ctx(), bdx, 0, bdy, 0, s));
        float *dx2 = test_download(bdx, nx);
        test_assert_bitwise("pad2d_backward", dx, dx2, nx);
        test_release(bx), test_release(bdy), test_release(by), test_release(bdx);
        free(x), free(dy), free(xd), free(dyd), free(ry), free(rdx), free(junk), free(y), free(dx);
        free(dx2);
    }
}
END_TEST

static void pad_ref_fwd(const void *shape, double *y, double *const *in)
{
    enco_pad2d_forward_ref(y, in[0], shape);
}

START_TEST(pad2d_reference_gradient_vs_finite_differences)
{
    enco_pad2d_shape cases[20];
    int count = pad_cases(cases, 16);
    for (int i = 0; i < count; i++) {
        const enco_pad2d_shape *s = &cases[i];
        int ho, wo;
        enco_pad2d_out_size(s, &ho, &wo);
        size_t nx = (size_t)s->n * s->c * s->h * s->w, ny = (size_t)s->n * s->c * ho * wo;
        double *x = zeros_f64(nx), *g = zeros_f64(ny), *dx = zeros_f64(nx);
        test_fill_uniform_f64(x, nx, 1300 + i, -1, 1);
        test_fill_uniform_f64(g, ny, 1400 + i, -1, 1);
        enco_pad2d_backward_ref(dx, g, s);
        double *in[1] = {x};
        double *gr[1] = {dx};
        char label[160];
        pad_label(label, sizeof label, "fd_pad2d", s);
        fd_check(label, s, pad_ref_fwd, in, &nx, 1, ny, g, gr);
        free(x), free(g), free(dx);
    }
}
END_TEST

START_TEST(pad2d_rejects_bad_arguments)
{
    enco_pad2d_shape s = {.n = 1, .c = 1, .h = 3, .w = 4, .top = 3, .mode = ENCO_PAD_REFLECT};
    cl_mem x = test_alloc(12), y = test_alloc(64);
    expect_invalid(enco_pad2d_forward(test_ctx(), y, 0, x, 0, &s), "reflect");
    s.mode = ENCO_PAD_REPLICATE; /* fine for replicate */
    ENCO_CK(enco_pad2d_forward(test_ctx(), y, 0, x, 0, &s));
    s.left = -1;
    expect_invalid(enco_pad2d_check(&s), "negative");
    s.left = 0;
    s.mode = (enco_pad_mode)3;
    expect_invalid(enco_pad2d_backward(test_ctx(), x, 0, y, 0, &s), "mode");
    s.mode = ENCO_PAD_ZERO;
    s.bottom = 20; /* y too small */
    expect_invalid(enco_pad2d_forward(test_ctx(), y, 0, x, 0, &s), "y needs elements");
    enco_op_cost c = enco_pad2d_cost(&s, 0);
    ck_assert(fabs(c.bytes - 4.0 * (12 + 26 * 4)) < 0.5);
    test_release(x), test_release(y);
}
END_TEST

/* Every convolution path on the same shapes: im2col + GEMM (forced with
 * ENCO_CONV_DIRECT_MAX=0), the direct kernels for cout <= 4 (forced up to
 * 4), and each without the flipped-weight input gradient
 * (ENCO_CONV_BWD_FLIP=0), whole batch and banded workspace, and the GEMM
 * path with the weight gradient's reduction split in 3 and in 7 parts (the
 * GPU split-K, forced with ENCO_CONV_SPLITK; 7 leaves a shorter last part on
 * most shapes), the direct kernels with the weight gradient's rows split
 * in 3 parts, and the direct kernels without the CPU strip kernels, against
 * the float64 references; the first and third again with explicit
 * column matrices.
 * Extra shapes with cout > 4 and wide rows exercise the im2col interior runs
 * next to every padding mode. */
static const conv_case conv_cases_paths[] = {
    {2, 5, 11, 19, 7, 3, 3, 1, 1, 1, 1, ENCO_PAD_REFLECT, 1},
    {1, 4, 10, 23, 9, 7, 7, 1, 1, 3, 3, ENCO_PAD_REFLECT, 1},
    {2, 3, 12, 21, 6, 4, 4, 2, 2, 1, 1, ENCO_PAD_ZERO, 0},
    {1, 2, 9, 17, 3, 5, 5, 2, 1, 2, 2, ENCO_PAD_REPLICATE, 1},
    {2, 6, 7, 20, 1, 3, 3, 1, 1, 1, 1, ENCO_PAD_REFLECT, 1},
    /* cin > cout, stride 1: the flipped-weight input gradient fits. */
    {2, 8, 9, 11, 2, 3, 3, 1, 1, 1, 1, ENCO_PAD_REFLECT, 1},
    {1, 8, 8, 10, 3, 5, 5, 1, 1, 2, 2, ENCO_PAD_REPLICATE, 0},
    {2, 10, 7, 9, 2, 4, 4, 1, 1, 1, 1, ENCO_PAD_ZERO, 1},
    /* The CPU strip kernels (16 outputs per forward strip, 8 columns per
     * weight-gradient vector step): border, interior and partial strips,
     * cout 1..4, stride 2 along h only, kw 9, a kernel larger than the image,
     * and kw 17 (the per-output forward kernel). */
    {2, 3, 5, 45, 3, 7, 7, 1, 1, 3, 3, ENCO_PAD_REFLECT, 1},
    {1, 2, 6, 37, 1, 4, 4, 1, 1, 1, 1, ENCO_PAD_ZERO, 0},
    {2, 2, 7, 40, 4, 3, 5, 2, 1, 1, 2, ENCO_PAD_REPLICATE, 1},
    {1, 3, 4, 34, 2, 5, 9, 1, 1, 2, 4, ENCO_PAD_REPLICATE, 0},
    {1, 2, 3, 3, 2, 5, 5, 1, 1, 2, 2, ENCO_PAD_ZERO, 1},
    {1, 1, 4, 20, 2, 3, 17, 1, 1, 1, 8, ENCO_PAD_ZERO, 0},
    /* Taller than one 16-row block of the weight-gradient strip kernel. */
    {2, 4, 40, 24, 3, 7, 7, 1, 1, 3, 3, ENCO_PAD_REFLECT, 1},
    {1, 3, 35, 19, 2, 4, 4, 1, 1, 1, 1, ENCO_PAD_ZERO, 0},
};

START_TEST(conv2d_gemm_and_direct_paths_match_reference)
{
    size_t count;
    const conv_case *base = conv_list(&count);
    const size_t nextra = test_on_oclgrind() ? 1 : sizeof conv_cases_paths / sizeof conv_cases_paths[0];
    static const char *const splitk[8] = {"0", "0", "0", "0", "3", "7", "3", "0"};
    /* Modes 8 and 9: modes 0 and 2 with the column matrices in memory
     * (ENCO_CONV_IMPLICIT=0; on CPUs the packed GEMM otherwise builds them
     * while packing, so the banded workspace is only used here). */
    for (int xmode = 0; xmode < 10; xmode++) {
        const int mode = xmode < 8 ? xmode : 2 * (xmode - 8);
        ck_assert_int_eq(test_setenv("ENCO_CONV_IMPLICIT", xmode >= 8 ? "0" : ""), 0);
        const int path = mode < 4 ? mode & 1 : mode >= 6;
        /* mode 7: the per-output / per-weight small kernels instead of the
         * CPU strip kernels (ENCO_CONV_STRIP=0; what GPUs run). */
        ck_assert_int_eq(test_setenv("ENCO_CONV_STRIP", mode == 7 ? "0" : ""), 0);
        ck_assert_int_eq(test_setenv("ENCO_CONV_DIRECT_MAX", path ? "4" : "0"), 0);
        ck_assert_int_eq(test_setenv("ENCO_CONV_BWD_FLIP", mode & 2 ? "0" : "1"), 0);
        ck_assert_int_eq(test_setenv("ENCO_CONV_SPLITK", splitk[mode]), 0);
        for (size_t i = 0; i < count + nextra; i++) {
            const conv_case *c = i < count ? &base[i] : &conv_cases_paths[i - count];
            for (int banded = 0; banded < 2; banded++) {
                conv_data d = conv_data_make(c, 500 + 10 * i);
                const int images = banded ? -1 : d.s.n;
                double *ref = zeros_f64(d.ny);
                enco_conv2d_forward_ref(ref, d.xd, d.wd, d.bd, &d.s);
                float *y = conv_fwd_device(&d, c->bias, images);
                char label[160];
                char what[64];
                snprintf(what, sizeof what, "conv2d_%s%s_forward", path ? "direct" : "gemm",
                         banded ? "_banded" : "");
                conv_label(label, sizeof label, what, c);
                test_assert_close(label, y, ref, d.ny, ATOL, RTOL);
                double *rdx, *rdw, *rdb;
                conv_bwd_ref(&d, c->bias, &rdx, &rdw, &rdb);
                grads g = conv_bwd_device(&d, c->bias, images);
                snprintf(what, sizeof what, "conv2d_%s%s_dx", path ? "direct" : "gemm",
                         banded ? "_banded" : "");
                conv_label(label, sizeof label, what, c);
                test_assert_close(label, g.dx, rdx, d.nx, ATOL, RTOL);
                snprintf(what, sizeof what, "conv2d_%s%s_dw%s%s", path ? "direct" : "gemm",
                         banded ? "_banded" : "", mode >= 4 ? "_splitk" : "",
                         mode >= 4 ? splitk[mode] : "");
                conv_label(label, sizeof label, what, c);
                test_assert_close(label, g.dw, rdw, d.nw, ATOL, RTOL);
                if (c->bias)
                    test_assert_close(label, g.db, rdb, d.nb, ATOL, RTOL);
                grads_free(&g);
                free(rdx), free(rdw), free(rdb), free(y), free(ref);
                conv_data_free(&d);
            }
        }
    }
    ck_assert_int_eq(test_setenv("ENCO_CONV_DIRECT_MAX", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_CONV_BWD_FLIP", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_CONV_SPLITK", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_CONV_STRIP", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_CONV_IMPLICIT", NULL), 0);
}
END_TEST

/* The CPU kernels give the bits of the portable ones: the implicit im2col
 * of the packed GEMM (forward, weight gradient, and the flipped-weight input
 * gradient's im2col of dy) against the column matrix in memory
 * (ENCO_CONV_IMPLICIT=0), and the per-plane fold, bias-gradient and
 * weight-flip kernels against the per-element ones (ENCO_CONV_ROWS=0/1).
 * The flipped-weight input gradient is forced in both runs so that the
 * comparison is of the same arithmetic. Where the packed GEMM does not run
 * (Oclgrind), the first half compares the explicit path with itself and the
 * second still holds. Shapes: reflection with a pad of 3 on narrow planes
 * (columns 0 and W-1 are apart from the interior), replicate, zero, panels
 * of 16 columns that straddle output rows, bias. */
static const conv_case conv_cases_cpu_bits[] = {
    {2, 3, 13, 10, 4, 7, 7, 1, 1, 3, 3, ENCO_PAD_REFLECT, 1},
    {2, 5, 11, 19, 7, 3, 3, 1, 1, 1, 1, ENCO_PAD_REFLECT, 1},
    {1, 4, 9, 23, 6, 3, 3, 1, 1, 1, 1, ENCO_PAD_REPLICATE, 0},
    {2, 6, 17, 33, 9, 4, 4, 1, 1, 1, 1, ENCO_PAD_ZERO, 1},
    {1, 3, 8, 9, 5, 3, 3, 2, 2, 1, 1, ENCO_PAD_REFLECT, 1},
    {1, 2, 6, 5, 2, 3, 3, 1, 1, 2, 2, ENCO_PAD_REPLICATE, 1},
    /* 21 output channels: two channel panels of the weight-gradient kernels,
     * the second partial. */
    {2, 3, 6, 50, 21, 3, 3, 1, 1, 1, 1, ENCO_PAD_REFLECT, 1},
};

START_TEST(conv2d_cpu_kernels_same_bits)
{
    const size_t ncase = test_on_oclgrind() ? 2 : sizeof conv_cases_cpu_bits / sizeof conv_cases_cpu_bits[0];
    ck_assert_int_eq(test_setenv("ENCO_CONV_BWD_FLIP", "1"), 0);
    ck_assert_int_eq(test_setenv("ENCO_CONV_DIRECT_MAX", "0"), 0);
    for (size_t i = 0; i < ncase; i++) {
        const conv_case *c = &conv_cases_cpu_bits[i];
        conv_data d = conv_data_make(c, 900 + 10 * i);
        float *y[5];
        grads g[5];
        /* Room for the explicit flipped-weight path (its column matrix of dy). */
        conv_ws_min = (size_t)4 * d.s.n * d.s.cout * d.s.kh * d.s.kw * (d.s.h + 2 * d.s.pad_h) *
                      (d.s.w + 2 * d.s.pad_w);
        /* 0: column matrices in memory and the per-element kernels; 1: the
         * column matrix packed from x by separate packing kernels; 2: the
         * default (forward and flipped input gradient through the fused
         * kernel, weight gradient read from x inside the multiply, dY^T
         * packed by the multiply's work-items for these small K); 3: as 2
         * with the separate packing kernels (dY^T too); 4: as 2 with the
         * fused kernel's K in blocks of at most 64 and dY^T packed 7 pixels
         * at a time. */
        static const char *const modes[5] = {"0", "1", "2", "2", "2"};
        static const char *const fused_env[5] = {"0", "0", "", "0", ""};
        for (int fast = 0; fast < 5; fast++) {
            ck_assert_int_eq(test_setenv("ENCO_CONV_IMPLICIT", modes[fast]), 0);
            ck_assert_int_eq(test_setenv("ENCO_GEMM_FUSED", fused_env[fast]), 0);
            ck_assert_int_eq(test_setenv("ENCO_GEMM_FUSED_KB", fast == 4 ? "64" : ""), 0);
            ck_assert_int_eq(test_setenv("ENCO_WGRAD_SELF", fast == 3 ? "0" : ""), 0);
            ck_assert_int_eq(test_setenv("ENCO_WGRAD_SELF_KB", fast == 4 ? "7" : ""), 0);
            /* Under Oclgrind (a GPU to enco-cl, with the built-in GEMM) the
             * packed CPU GEMM is forced for the fast runs, so that Oclgrind
             * checks its kernels too. */
            if (test_on_oclgrind())
                ck_assert_int_eq(test_setenv("ENCO_GEMM_TILE", fast ? "1" : ""), 0);
            ck_assert_int_eq(test_setenv("ENCO_CONV_ROWS", fast ? "1" : "0"), 0);
            const unsigned long fused0 = enco_kernel_launches(test_ctx(), "gemm_im2col_fused");
            const unsigned long pack0 = enco_kernel_launches(test_ctx(), "gemm_pack_im2col");
            const unsigned long self0 = enco_kernel_launches(test_ctx(), "gemm_conv_wgrad_self");
            const unsigned long wg0 = enco_kernel_launches(test_ctx(), "gemm_conv_wgrad");
            y[fast] = conv_fwd_device(&d, c->bias, d.s.n);
            g[fast] = conv_bwd_device(&d, c->bias, d.s.n);
            /* The path each mode names is the one that ran. */
            const unsigned long fused = enco_kernel_launches(test_ctx(), "gemm_im2col_fused") - fused0;
            const unsigned long pack = enco_kernel_launches(test_ctx(), "gemm_pack_im2col") - pack0;
            ck_assert_msg((fast == 2 || fast == 4) == (fused > 0), "mode %d: %lu fused launches", fast, fused);
            ck_assert_msg((fast == 1 || fast == 3) == (pack > 0), "mode %d: %lu packing launches",
                          fast, pack);
            /* The direct weight gradient (modes 2-4 force it for every
             * width) packs dY^T itself, except in mode 3. */
            const int direct = fast >= 2;
            const unsigned long self = enco_kernel_launches(test_ctx(), "gemm_conv_wgrad_self") - self0;
            const unsigned long wg = enco_kernel_launches(test_ctx(), "gemm_conv_wgrad") - wg0;
            ck_assert_msg((direct && fast != 3) == (self > 0), "mode %d: %lu self-packing launches",
                          fast, self);
            ck_assert_msg((direct && fast == 3) == (wg > 0), "mode %d: %lu wgrad launches", fast, wg);
        }
        char label[160];
        for (int fast = 1; fast < 5; fast++) {
            char what[64];
            snprintf(what, sizeof what, "cpu_kernels%d_forward", fast);
            conv_label(label, sizeof label, what, c);
            test_assert_bitwise(label, y[fast], y[0], d.ny);
            snprintf(what, sizeof what, "cpu_kernels%d_dx", fast);
            conv_label(label, sizeof label, what, c);
            test_assert_bitwise(label, g[fast].dx, g[0].dx, d.nx);
            snprintf(what, sizeof what, "cpu_kernels%d_dw", fast);
            conv_label(label, sizeof label, what, c);
            test_assert_bitwise(label, g[fast].dw, g[0].dw, d.nw);
            if (c->bias) {
                snprintf(what, sizeof what, "cpu_kernels%d_db", fast);
                conv_label(label, sizeof label, what, c);
                test_assert_bitwise(label, g[fast].db, g[0].db, d.nb);
            }
        }
        /* And against the float64 reference, so that "the same" is right. */
        double *rdx, *rdw, *rdb;
        conv_bwd_ref(&d, c->bias, &rdx, &rdw, &rdb);
        conv_label(label, sizeof label, "cpu_kernels_dx_ref", c);
        test_assert_close(label, g[2].dx, rdx, d.nx, ATOL, RTOL);
        conv_label(label, sizeof label, "cpu_kernels_dw_ref", c);
        test_assert_close(label, g[2].dw, rdw, d.nw, ATOL, RTOL);
        free(rdx), free(rdw), free(rdb);
        conv_ws_min = 0;
        for (int k = 0; k < 5; k++)
            free(y[k]), grads_free(&g[k]);
        conv_data_free(&d);
    }
    /* Pad2d's backward is the fold alone. */
    for (int mode = 0; mode < 3; mode++) {
        enco_pad2d_shape ps = {.n = 2, .c = 3, .h = 7, .w = 6, .top = 3, .bottom = 2, .left = 1,
                               .right = 3, .mode = mode};
        const size_t nx = 2 * 3 * 7 * 6, ny = (size_t)2 * 3 * (7 + 5) * (6 + 4);
        float *dyh = rand_f(ny, 77 + (uint64_t)mode, -1, 1);
        cl_mem dy = test_upload(dyh, ny);
        float *dx[2];
        for (int fast = 0; fast < 2; fast++) {
            ck_assert_int_eq(test_setenv("ENCO_CONV_ROWS", fast ? "1" : "0"), 0);
            cl_mem dxm = test_alloc(nx);
            ENCO_CK(enco_pad2d_backward(test_ctx(), dxm, 0, dy, 0, &ps));
            dx[fast] = test_download(dxm, nx);
            test_release(dxm);
        }
        test_assert_bitwise("cpu_kernels_pad2d_backward", dx[1], dx[0], nx);
        free(dx[0]), free(dx[1]), free(dyh);
        test_release(dy);
    }
    ck_assert_int_eq(test_setenv("ENCO_CONV_IMPLICIT", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_GEMM_FUSED", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_GEMM_FUSED_KB", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_WGRAD_SELF", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_WGRAD_SELF_KB", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_GEMM_TILE", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_CONV_ROWS", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_CONV_BWD_FLIP", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_CONV_DIRECT_MAX", NULL), 0);
}
END_TEST

/* The small-cout forward's CPU kernels (a work-item per 16-wide strip, or
 * per row of up to 256 outputs where rows are 64 or longer) give the bits of
 * the per-output kernel GPUs run (ENCO_CONV_STRIP=0): the same sum over
 * (c, ki, kj) in order. Rows longer than 256 and not a multiple of 16,
 * every padding mode, 1 to 4 channels. */
START_TEST(conv2d_small_cout_forward_same_bits)
{
    static const conv_case cases[] = {
        {1, 3, 4, 70, 2, 3, 3, 1, 1, 1, 1, ENCO_PAD_ZERO, 0},
        {1, 3, 9, 21, 1, 4, 4, 1, 1, 1, 1, ENCO_PAD_ZERO, 1},
        {2, 5, 6, 300, 3, 7, 7, 1, 1, 3, 3, ENCO_PAD_REFLECT, 1},
        {1, 2, 7, 37, 4, 3, 5, 2, 1, 2, 2, ENCO_PAD_REPLICATE, 0},
        {2, 4, 5, 16, 2, 3, 3, 1, 1, 1, 1, ENCO_PAD_ZERO, 0},
        /* Long rows with 1 and 4 channels. */
        {1, 2, 3, 100, 1, 3, 3, 1, 1, 1, 1, ENCO_PAD_ZERO, 1},
        {1, 2, 3, 80, 4, 3, 3, 1, 1, 1, 1, ENCO_PAD_REPLICATE, 1},
    };
    const size_t ncase = test_on_oclgrind() ? 2 : sizeof cases / sizeof cases[0];
    ck_assert_int_eq(test_setenv("ENCO_CONV_DIRECT_MAX", "4"), 0);
    for (size_t i = 0; i < ncase; i++) {
        conv_data d = conv_data_make(&cases[i], 40 + 3 * i);
        float *y[2];
        for (int rows = 0; rows < 2; rows++) {
            ck_assert_int_eq(test_setenv("ENCO_CONV_STRIP", rows ? "1" : "0"), 0);
            const unsigned long k0 = enco_kernel_launches(test_ctx(), "conv_fwd_small_rows");
            y[rows] = conv_fwd_device(&d, cases[i].bias, d.s.n);
            const unsigned long k = enco_kernel_launches(test_ctx(), "conv_fwd_small_rows") - k0;
            const int wo = d.s.w + 2 * d.s.pad_w - d.s.kw + 1;
            ck_assert_msg((k > 0) == (rows && wo >= 64), "ENCO_CONV_STRIP=%d, width %d: %lu "
                          "row-kernel launches", rows, wo, k);
        }
        char label[160];
        conv_label(label, sizeof label, "small_cout_rows_forward", &cases[i]);
        test_assert_bitwise(label, y[1], y[0], d.ny);
        double *ref = zeros_f64(d.ny);
        enco_conv2d_forward_ref(ref, d.xd, d.wd, cases[i].bias ? d.bd : NULL, &d.s);
        test_assert_close(label, y[1], ref, d.ny, ATOL, RTOL);
        free(ref), free(y[0]), free(y[1]);
        conv_data_free(&d);
    }
    ck_assert_int_eq(test_setenv("ENCO_CONV_STRIP", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_CONV_DIRECT_MAX", NULL), 0);
}
END_TEST

/* The weight gradient's default on CPUs: the direct kernel for rows of 48
 * outputs or more, the packed transposed column matrix for shorter ones;
 * the direct kernel packs dY^T inside the multiply for K = cin*kh*kw below
 * 256 (gemm_conv_wgrad_self), after gemm_pack_bt for larger K. */
START_TEST(conv2d_wgrad_path_rule)
{
    if (!enco_sgemm_im2col_available(test_ctx()))
        ck_assert_int_eq(test_setenv("ENCO_GEMM_TILE", "1"), 0);
    ck_assert_int_eq(test_setenv("ENCO_CONV_DIRECT_MAX", "0"), 0);
    ck_assert_int_eq(test_setenv("ENCO_CONV_IMPLICIT", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_WGRAD_SELF", NULL), 0);
    /* 0: packed (short rows); 1: direct, self-packing (K = 18); 2: direct
     * after gemm_pack_bt (K = 29 * 9 = 261); 3: the largest K below 256
     * (K = 5 * 51 = 255; 5 x 51 kernel, 1 x 51 output). */
    static const conv_case cases[4] = {
        {1, 2, 5, 47, 7, 3, 3, 1, 1, 1, 1, ENCO_PAD_ZERO, 0},
        {1, 2, 5, 48, 7, 3, 3, 1, 1, 1, 1, ENCO_PAD_ZERO, 0},
        {1, 29, 3, 48, 7, 3, 3, 1, 1, 1, 1, ENCO_PAD_ZERO, 0},
        {1, 5, 1, 100, 3, 1, 51, 1, 1, 0, 0, ENCO_PAD_ZERO, 0},
    };
    for (int i = 0; i < 4; i++) {
        conv_data d = conv_data_make(&cases[i], 70 + (uint64_t)i);
        const unsigned long self0 = enco_kernel_launches(test_ctx(), "gemm_conv_wgrad_self");
        const unsigned long direct0 = enco_kernel_launches(test_ctx(), "gemm_conv_wgrad");
        const unsigned long bt0 = enco_kernel_launches(test_ctx(), "gemm_pack_bt");
        const unsigned long packed0 = enco_kernel_launches(test_ctx(), "gemm_pack_im2col_t");
        grads g = conv_bwd_device(&d, 0, d.s.n);
        const unsigned long self =
            enco_kernel_launches(test_ctx(), "gemm_conv_wgrad_self") - self0;
        const unsigned long direct = enco_kernel_launches(test_ctx(), "gemm_conv_wgrad") - direct0;
        const unsigned long bt = enco_kernel_launches(test_ctx(), "gemm_pack_bt") - bt0;
        const unsigned long packed =
            enco_kernel_launches(test_ctx(), "gemm_pack_im2col_t") - packed0;
        ck_assert_msg((packed > 0) == (i == 0) && (self > 0) == (i == 1 || i == 3) &&
                          (direct > 0) == (i == 2) && (bt > 0) == (i == 2),
                      "case %d: %lu packed, %lu self-packing, %lu direct, %lu dY^T packing "
                      "launches",
                      i, packed, self, direct, bt);
        double *rdx, *rdw, *rdb;
        conv_bwd_ref(&d, 0, &rdx, &rdw, &rdb);
        char label[160];
        conv_label(label, sizeof label, "wgrad_rule_dw", &cases[i]);
        test_assert_close(label, g.dw, rdw, d.nw, ATOL, RTOL);
        free(rdx), free(rdw), free(rdb);
        grads_free(&g);
        conv_data_free(&d);
    }
    ck_assert_int_eq(test_setenv("ENCO_CONV_DIRECT_MAX", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_GEMM_TILE", NULL), 0);
}
END_TEST

/* The flipped-weight input gradient writes dx straight from the GEMM where
 * the padding is zero and at most k - 1 (no padded plane, no fold), and folds
 * the padded plane back otherwise (reflect padding, or zero padding wider
 * than the kernel reaches), with and without the implicit im2col. The
 * explicit path writes the flipped weights out (one flip kernel per call);
 * the implicit one packs them straight from w (none). */
/* Launches so far of the fold (either kernel) and of the weight flip. */
static unsigned long folds_run(void)
{
    return enco_kernel_launches(test_ctx(), "conv_fold_rows") +
           enco_kernel_launches(test_ctx(), "conv_col2im");
}

static unsigned long flips_run(void)
{
    return enco_kernel_launches(test_ctx(), "conv_flip_weights_rows") +
           enco_kernel_launches(test_ctx(), "conv_flip_weights");
}

START_TEST(conv2d_flip_fold_rule)
{
    static const conv_case cases[] = {
        {2, 5, 7, 19, 3, 3, 3, 1, 1, 1, 1, ENCO_PAD_ZERO, 0},
        {1, 4, 9, 6, 2, 4, 4, 1, 1, 1, 1, ENCO_PAD_ZERO, 0},
        {2, 5, 7, 19, 3, 3, 3, 1, 1, 1, 1, ENCO_PAD_REFLECT, 0},
        {1, 3, 6, 5, 2, 3, 3, 1, 1, 3, 3, ENCO_PAD_ZERO, 0},
    };
    ck_assert_int_eq(test_setenv("ENCO_CONV_BWD_FLIP", "1"), 0);
    ck_assert_int_eq(test_setenv("ENCO_CONV_DIRECT_MAX", "0"), 0);
    conv_ws_min = 1u << 16; /* room for the padded plane where it folds */
    for (int explicit_cols = 0; explicit_cols < 2; explicit_cols++) {
        ck_assert_int_eq(test_setenv("ENCO_CONV_IMPLICIT", explicit_cols ? "0" : ""), 0);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const conv_case *c = &cases[i];
            conv_data d = conv_data_make(c, 90 + (uint64_t)i);
            const unsigned long f0 = folds_run(), t0 = flips_run();
            grads g = conv_bwd_device(&d, 0, d.s.n);
            const unsigned long folds = folds_run() - f0, flips = flips_run() - t0;
            const int fold = c->mode != ENCO_PAD_ZERO || c->ph > c->kh - 1;
            enco_conv2d_paths paths;
            ENCO_CK(enco_conv2d_plan(test_ctx(), &d.s, &paths));
            ck_assert_int_eq(paths.bwd_flip, 1);
            const unsigned long want_flips = paths.implicit ? 0 : 1;
            ck_assert_msg(flips == want_flips && (folds > 0) == fold,
                          "case %zu, implicit %d: %lu flips (expected %lu), %lu folds (fold "
                          "expected: %d)",
                          i, paths.implicit, flips, want_flips, folds, fold);
            double *rdx, *rdw, *rdb;
            conv_bwd_ref(&d, 0, &rdx, &rdw, &rdb);
            char label[160];
            conv_label(label, sizeof label, explicit_cols ? "flip_dx_explicit" : "flip_dx", c);
            test_assert_close(label, g.dx, rdx, d.nx, ATOL, RTOL);
            free(rdx), free(rdw), free(rdb);
            grads_free(&g);
            conv_data_free(&d);
        }
    }
    conv_ws_min = 0;
    ck_assert_int_eq(test_setenv("ENCO_CONV_IMPLICIT", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_CONV_DIRECT_MAX", NULL), 0);
    ck_assert_int_eq(test_setenv("ENCO_CONV_BWD_FLIP", NULL), 0);
}
END_TEST

/* ---- the CPU GEMM kernel (cl/gemm.cl gemm_tile) --------------------------- */

/* Launches kernel `name` of cl/gemm.cl ("gemm_builtin" or "gemm_tile") on
 * C = alpha op(A) B + beta C for `batch` problems, as src/cl/gemm.c does. */
static void gemm_launch(const char *name, int ta, int m, int n, int k, float alpha, cl_mem a,
                        size_t a_off, int lda, size_t sa, cl_mem b, size_t b_off, int ldb,
                        size_t sb, float beta, cl_mem c, size_t c_off, int ldc, size_t sc,
                        int batch)
{
    const int tile = strcmp(name, "gemm_tile") == 0;
    const size_t local_b[3] = {16, 16, 1}, local_t[3] = {1, 1, 1};
    const size_t global_b[3] = {(size_t)n, (size_t)m, (size_t)batch};
    const size_t global_t[3] = {(size_t)(m + 5) / 6, (size_t)(n + 15) / 16, (size_t)batch};
    if (tile)
        ENCO_CK(ENCO_RUN(test_ctx(), "gemm", name, 3, global_t, local_t, ENCO_ARG_INT(ta),
                         ENCO_ARG_INT(m), ENCO_ARG_INT(n), ENCO_ARG_INT(k), ENCO_ARG_FLOAT(alpha),
                         ENCO_ARG_MEM(a), ENCO_ARG_ULONG(a_off), ENCO_ARG_INT(lda),
                         ENCO_ARG_ULONG(sa), ENCO_ARG_MEM(b), ENCO_ARG_ULONG(b_off),
                         ENCO_ARG_INT(ldb), ENCO_ARG_ULONG(sb), ENCO_ARG_FLOAT(beta),
                         ENCO_ARG_MEM(c), ENCO_ARG_ULONG(c_off), ENCO_ARG_INT(ldc),
                         ENCO_ARG_ULONG(sc)));
    else
        ENCO_CK(ENCO_RUN(test_ctx(), "gemm", name, 3, global_b, local_b, ENCO_ARG_INT(ta),
                         ENCO_ARG_INT(0), ENCO_ARG_INT(m), ENCO_ARG_INT(n), ENCO_ARG_INT(k),
                         ENCO_ARG_FLOAT(alpha), ENCO_ARG_MEM(a), ENCO_ARG_ULONG(a_off),
                         ENCO_ARG_INT(lda), ENCO_ARG_ULONG(sa), ENCO_ARG_MEM(b),
                         ENCO_ARG_ULONG(b_off), ENCO_ARG_INT(ldb), ENCO_ARG_ULONG(sb),
                         ENCO_ARG_FLOAT(beta), ENCO_ARG_MEM(c), ENCO_ARG_ULONG(c_off),
                         ENCO_ARG_INT(ldc), ENCO_ARG_ULONG(sc)));
}

/* gemm_tile against float64 and against gemm_builtin (bit for bit where
 * alpha = 1, beta = 0, the convolutions' forward and input-gradient case):
 * sizes around the 6 x 16 tile, A transposed or not, padded leading
 * dimensions, offsets, a batch of 2, beta 0 (C holds NaN: must not be read)
 * and beta != 0. */
START_TEST(gemm_tile_matches_reference)
{
    static const int full[][3] = {{1, 1, 1},  {5, 15, 3},  {6, 16, 4},  {7, 17, 9},
                                  {13, 40, 5}, {3, 70, 11}, {12, 33, 1}};
    static const int tiny[][3] = {{1, 1, 1}, {7, 17, 3}};
    const int ncase = test_on_oclgrind() ? 2 : 7;
    const int (*cases)[3] = test_on_oclgrind() ? tiny : full;
    for (int ci = 0; ci < ncase; ci++)
        for (int ta = 0; ta < 2; ta++)
            for (int bi = 0; bi < 2; bi++) {
                const int m = cases[ci][0], n = cases[ci][1], k = cases[ci][2], batch = 2;
                const float alpha = bi ? 0.75f : 1.0f, beta = bi ? -1.5f : 0.0f;
                const int lda = (ta ? m : k) + 3, ldb = n + 2, ldc = n + 1;
                const size_t a_off = 5, b_off = 7, c_off = 3;
                const size_t sa = (size_t)lda * (ta ? k : m) + 4, sb = (size_t)ldb * k + 1,
                             sc = (size_t)ldc * m + 2;
                const size_t na = a_off + sa * batch, nb = b_off + sb * batch,
                             nc = c_off + sc * batch;
                float *ha = rand_f(na, 1000 + ci, -1, 1), *hb = rand_f(nb, 2000 + ci, -1, 1);
                float *hc = rand_f(nc, 3000 + ci, -1, 1);
                if (beta == 0.0f)
                    for (size_t i = 0; i < nc; i++)
                        hc[i] = NAN;
                double *ref = zeros_f64((size_t)batch * m * n);
                float *got_c = malloc((size_t)batch * m * n * sizeof(float));
                ck_assert_ptr_nonnull(got_c);
                for (int q = 0; q < batch; q++)
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++) {
                            double acc = 0;
                            for (int t = 0; t < k; t++) {
                                const float av = ta ? ha[a_off + q * sa + (size_t)t * lda + i]
                                                    : ha[a_off + q * sa + (size_t)i * lda + t];
                                acc += (double)av * hb[b_off + q * sb + (size_t)t * ldb + j];
                            }
                            const double c0 = hc[c_off + q * sc + (size_t)i * ldc + j];
                            ref[((size_t)q * m + i) * n + j] =
                                alpha * acc + (beta == 0.0f ? 0.0 : beta * c0);
                        }
                float *outs[2];
                const char *names[2] = {"gemm_builtin", "gemm_tile"};
                for (int v = 0; v < 2; v++) {
                    cl_mem a = test_upload(ha, na), b = test_upload(hb, nb),
                           c = test_upload(hc, nc);
                    gemm_launch(names[v], ta, m, n, k, alpha, a, a_off, lda, sa, b, b_off, ldb,
                                sb, beta, c, c_off, ldc, sc, batch);
                    outs[v] = test_download(c, nc);
                    test_release(a), test_release(b), test_release(c);
                }
                char what[96];
                snprintf(what, sizeof what, "gemm_tile m%d n%d k%d ta%d beta %g", m, n, k, ta,
                         beta);
                /* Padding between rows and batches of C is left untouched. */
                for (size_t i = 0; i < nc; i++) {
                    const size_t r = i < c_off ? 0 : (i - c_off) % sc;
                    const int inside = i >= c_off && i < c_off + sc * batch &&
                                       r < (size_t)ldc * m && (int)(r % ldc) < n;
                    if (!inside)
                        ck_assert_msg(memcmp(&outs[1][i], &hc[i], sizeof(float)) == 0,
                                      "%s: element %zu outside C changed", what, i);
                }
                for (int q = 0; q < batch; q++)
                    for (int i = 0; i < m; i++)
                        memcpy(got_c + ((size_t)q * m + i) * n,
                               outs[1] + c_off + q * sc + (size_t)i * ldc, n * sizeof(float));
                test_assert_close(what, got_c, ref, (size_t)batch * m * n, 1e-5, 1e-5);
                if (beta == 0.0f)
                    for (int q = 0; q < batch; q++)
                        for (int i = 0; i < m; i++)
                            test_assert_bitwise(
                                what, outs[1] + c_off + q * sc + (size_t)i * ldc,
                                outs[0] + c_off + q * sc + (size_t)i * ldc, (size_t)n);
                free(ha), free(hb), free(hc), free(ref), free(got_c), free(outs[0]),
                    free(outs[1]);
            }
}
END_TEST

static Suite *conv_suite(void)
{
    Suite *s = suite_create("conv");
    TCase *t = tcase_create("conv");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, conv2d_output_sizes);
    tcase_add_test(t, conv2d_forward_matches_reference);
    tcase_add_test(t, conv2d_backward_matches_reference);
    tcase_add_test(t, conv2d_chunked_workspace);
    tcase_add_test(t, conv2d_cpu_kernels_same_bits);
    tcase_add_test(t, conv2d_planned_workspace_suffices);
    tcase_add_test(t, conv2d_wgrad_path_rule);
    tcase_add_test(t, conv2d_flip_fold_rule);
    tcase_add_test(t, conv2d_small_cout_forward_same_bits);
    tcase_add_test(t, conv_gemm_implicit_needs_packed);
    tcase_add_test(t, conv2d_plan_is_kept);
    tcase_add_test(t, conv2d_banded_deterministic);
    tcase_add_test(t, conv2d_partial_gradients);
    tcase_add_test(t, conv2d_offsets);
    tcase_add_test(t, conv2d_reference_gradients_vs_finite_differences);
    tcase_add_test(t, conv2d_deterministic);
    tcase_add_test(t, conv2d_rejects_bad_arguments);
    tcase_add_test(t, convt_output_sizes);
    tcase_add_test(t, convt_forward_matches_reference);
    tcase_add_test(t, convt_backward_matches_reference);
    tcase_add_test(t, convt_reference_gradients_vs_finite_differences);
    tcase_add_test(t, convt_deterministic);
    tcase_add_test(t, convt_rejects_bad_arguments);
    tcase_add_test(t, pad2d_matches_reference);
    tcase_add_test(t, pad2d_reference_gradient_vs_finite_differences);
    tcase_add_test(t, pad2d_rejects_bad_arguments);
    tcase_add_test(t, gemm_tile_matches_reference);
    tcase_add_test(t, conv2d_gemm_and_direct_paths_match_reference);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return test_run_suite(conv_suite()); }
