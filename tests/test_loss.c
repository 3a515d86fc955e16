/* Loss family: LSGAN, L1, EnCo, PatchNCE (dot and cos) and the scalar combiner, on the device vs the
 * float64 references; references vs finite differences; PyTorch 1.13 fixtures. */
#include "harness.h"
#include "ops/loss.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOSS_RTOL 2e-5
#define GRAD_RTOL 1e-4

static double *to_f64(const float *x, size_t n)
{
    double *y = malloc((n ? n : 1) * sizeof(double));
    ck_assert_ptr_nonnull(y);
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
    return y;
}

static float *host_uniform(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(x);
    test_fill_uniform(x, n, seed, lo, hi);
    return x;
}

/* Rows of x (m, d) scaled to unit L2 norm times s (as the model's l2norm feeds them). */
static void normalize_rows(float *x, size_t m, size_t d, float s)
{
    for (size_t i = 0; i < m; i++) {
        double nrm = 0;
        for (size_t j = 0; j < d; j++)
            nrm += (double)x[i * d + j] * x[i * d + j];
        nrm = sqrt(nrm) + 1e-7;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = (float)(s * x[i * d + j] / nrm);
    }
}

/* Largest |g| of an array: the gradient checks use an absolute floor relative to it. */
static double max_abs(const double *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

/* Which loss a generic runner launches. */
typedef enum { L_LSGAN, L_L1, L_ENCO, L_NCE, L_NCE_COS } loss_kind;

typedef struct {
    loss_kind kind;
    size_t n;       /* elements of x (and grad) */
    size_t m, d;    /* rows and features (EnCo, PatchNCE) */
    size_t b, kp;   /* images and patches (PatchNCE) */
    float target;   /* LSGAN */
    float tau;      /* PatchNCE */
    float scale;    /* gradient scale */
} loss_case;

static size_t work_floats(const loss_case *c)
{
    switch (c->kind) {
    case L_LSGAN: return enco_loss_lsgan_work(c->n);
    case L_L1: return enco_loss_l1_work(c->n);
    case L_ENCO: return enco_loss_enco_work(c->m);
    case L_NCE: return enco_loss_patchnce_work(c->b, c->kp);
    default: return enco_loss_patchnce_cos_work(c->b, c->kp, c->d);
    }
}

/* Launches the loss with buffers placed at nonzero offsets; returns loss and grad on the host
 * (grad NULL: the launch computes no gradient). own_work: let the launcher allocate scratch. */
static void run_device(const loss_case *c, const float *x, const float *y, float *loss,
                       float *grad, int own_work)
{
    enum { XO = 3, YO = 5, GO = 2, LO = 1, WO = 4 };
    const size_t n = c->n;
    float *xb = calloc(n + XO, sizeof(float)), *yb = calloc(n + YO, sizeof(float));
    ck_assert_ptr_nonnull(xb);
    ck_assert_ptr_nonnull(yb);
    memcpy(xb + XO, x, n * sizeof(float));
    if (y)
        memcpy(yb + YO, y, n * sizeof(float));
    cl_mem bx = test_upload(xb, n + XO), by = test_upload(yb, n + YO);
    cl_mem bg = grad ? test_alloc(n + GO) : NULL, bl = test_alloc(LO + 1);
    cl_mem bw = own_work ? NULL : test_alloc(work_floats(c) + WO);
    enco_ctx *ctx = test_ctx();
    switch (c->kind) {
    case L_LSGAN:
        ENCO_CK(enco_loss_lsgan(ctx, bl, LO, bg, GO, bx, XO, n, c->target, c->scale, bw, WO));
        break;
    case L_L1:
        ENCO_CK(enco_loss_l1(ctx, bl, LO, bg, GO, bx, XO, by, YO, n, c->scale, bw, WO));
        break;
    case L_ENCO:
        ENCO_CK(enco_loss_enco(ctx, bl, LO, bg, GO, bx, XO, by, YO, c->m, c->d, c->scale, bw, WO));
        break;
    case L_NCE:
        ENCO_CK(enco_loss_patchnce(ctx, bl, LO, bg, GO, bx, XO, by, YO, c->b, c->kp, c->d, c->tau,
                                   c->scale, bw, WO));
        break;
    case L_NCE_COS:
        ENCO_CK(enco_loss_patchnce_cos(ctx, bl, LO, bg, GO, bx, XO, by, YO, c->b, c->kp, c->d,
                                       c->tau, c->scale, bw, WO));
        break;
    }
    float *l = test_download(bl, LO + 1);
    *loss = l[LO];
    free(l);
    if (grad) {
        float *g = test_download(bg, n + GO);
        memcpy(grad, g + GO, n * sizeof(float));
        free(g);
    }
    test_release(bx), test_release(by), test_release(bl);
    if (bg)
        test_release(bg);
    if (bw)
        test_release(bw);
    free(xb), free(yb);
}

static void run_ref(const loss_case *c, const double *x, const double *y, double *loss,
                    double *grad)
{
    switch (c->kind) {
    case L_LSGAN: enco_loss_lsgan_ref(loss, grad, x, c->n, c->target, c->scale); break;
    case L_L1: enco_loss_l1_ref(loss, grad, x, y, c->n, c->scale); break;
    case L_ENCO: enco_loss_enco_ref(loss, grad, x, y, c->m, c->d, 1e-8, c->scale); break;
    case L_NCE: enco_loss_patchnce_ref(loss, grad, x, y, c->b, c->kp, c->d, c->tau, c->scale);
        break;
    case L_NCE_COS:
        enco_loss_patchnce_cos_ref(loss, grad, x, y, c->b, c->kp, c->d, c->tau, 1e-8, c->scale);
        break;
    }
}

static const char *kind_name(loss_kind k)
{
    static const char *names[] = {"lsgan", "l1", "enco", "patchnce", "patchnce_cos"};
    return names[k];
}

/* Device vs reference (loss and gradient), determinism, the no-gradient path and the
 * launcher-allocated scratch, for one case. */
static void check_case(const loss_case *c, const float *x, const float *y)
{
    const size_t n = c->n;
    double *xd = to_f64(x, n), *yd = y ? to_f64(y, n) : NULL;
    double lref, *gref = malloc(n * sizeof(double));
    run_ref(c, xd, yd, &lref, gref);
    float loss, loss2, loss3, *grad = malloc(n * sizeof(float)), *grad2 = malloc(n * sizeof(float));
    run_device(c, x, y, &loss, grad, 0);

    char what[96];
    snprintf(what, sizeof what, "%s_loss_n%zu_m%zu_d%zu_b%zu", kind_name(c->kind), n, c->m, c->d,
             c->b);
    test_assert_close(what, &loss, &lref, 1, 1e-6, LOSS_RTOL);
    snprintf(what, sizeof what, "%s_grad_n%zu_m%zu_d%zu_b%zu", kind_name(c->kind), n, c->m, c->d,
             c->b);
    if (c->kind == L_NCE_COS) {
        /* Row by row: a row below eps has a gradient ~1/eps larger than the others. The
         * floor: float's rounding of softmax - 1 (~1e-7) times the scale of every term of a
         * row's gradient, scale / (M tau |q_i|), for rows whose positive wins by far. */
        double worst = 0;
        for (size_t i = 0; i < c->m; i++) {
            const double rmax = max_abs(gref + i * c->d, c->d);
            double n1 = 0;
            for (size_t j = 0; j < c->d; j++)
                n1 += xd[i * c->d + j] * xd[i * c->d + j];
            n1 = fmax(sqrt(n1), 1e-8);
            const double floor = 1e-6 * fabs(c->scale) / ((double)c->m * c->tau * n1);
            test_assert_close(what, grad + i * c->d, gref + i * c->d, c->d, 1e-5 * rmax + floor,
                              GRAD_RTOL);
            for (size_t j = 0; j < c->d; j++)
                worst = fmax(worst, fabs(grad[i * c->d + j] - gref[i * c->d + j]) /
                                        fmax(rmax, 1e-30));
        }
        printf("max |diff| / max|row| %s %.3g\n", what, worst);
    } else {
        test_assert_close(what, grad, gref, n, 1e-5 * max_abs(gref, n) + 1e-6 * fabs(c->scale),
                          GRAD_RTOL);
    }

    /* Same launch twice: bitwise identical; launcher-owned scratch gives the same bits. */
    run_device(c, x, y, &loss2, grad2, 1);
    test_assert_bitwise("loss determinism", &loss, &loss2, 1);
    test_assert_bitwise("grad determinism", grad, grad2, n);
    /* Without a gradient the loss is unchanged. */
    run_device(c, x, y, &loss3, NULL, 0);
    test_assert_bitwise("loss without gradient", &loss, &loss3, 1);
    free(xd), free(yd), free(gref), free(grad), free(grad2);
}

/* ---- forward / backward vs reference --------------------------------- */

START_TEST(lsgan_vs_ref)
{
    const size_t big[] = {1, 7, 900, 4096, 70001}, tiny[] = {1, 7, 300};
    const size_t *ns = test_on_oclgrind() ? tiny : big;
    const size_t cnt = test_on_oclgrind() ? 3 : 5;
    for (size_t i = 0; i < cnt; i++)
        for (int t = 0; t < 2; t++) {
            loss_case c = {.kind = L_LSGAN, .n = ns[i], .target = (float)t, .scale = 0.5f};
            float *x = host_uniform(c.n, 100 + i, -1.5f, 1.5f);
            check_case(&c, x, NULL);
            free(x);
        }
}
END_TEST

START_TEST(l1_vs_ref)
{
    const size_t big[] = {1, 5, 999, 3 * 64 * 64 + 1, 70001}, tiny[] = {1, 5, 300};
    const size_t *ns = test_on_oclgrind() ? tiny : big;
    const size_t cnt = test_on_oclgrind() ? 3 : 5;
    for (size_t i = 0; i < cnt; i++) {
        loss_case c = {.kind = L_L1, .n = ns[i], .scale = 5.0f};
        float *x = host_uniform(c.n, 200 + i, -1, 1), *y = host_uniform(c.n, 300 + i, -1, 1);
        for (size_t j = 0; j < c.n; j += 3)
            y[j] = x[j]; /* exact ties: sign(0) = 0 */
        check_case(&c, x, y);
        free(x), free(y);
    }
}
END_TEST

START_TEST(enco_vs_ref)
{
    static const size_t big[][2] = {{1, 1}, {3, 5}, {7, 33}, {16, 256}, {256, 256}, {5, 300}};
    static const size_t tiny[][2] = {{1, 1}, {3, 5}, {4, 17}};
    const size_t(*s)[2] = test_on_oclgrind() ? tiny : big;
    const size_t cnt = test_on_oclgrind() ? 3 : 6;
    for (size_t i = 0; i < cnt; i++)
        for (int norm = 0; norm < 2; norm++) {
            loss_case c = {.kind = L_ENCO, .m = s[i][0], .d = s[i][1], .scale = 1.0f};
            c.n = c.m * c.d;
            float *q = host_uniform(c.n, 400 + i, -1, 1), *k = host_uniform(c.n, 500 + i, -1, 1);
            if (norm) { /* as in the model: unit rows */
                normalize_rows(q, c.m, c.d, 1);
                normalize_rows(k, c.m, c.d, 1);
                c.scale = 0.5f * 2.0f / 3.0f; /* 0.5 * lambda_NCE / P */
            }
            check_case(&c, q, k);
            free(q), free(k);
        }
}
END_TEST

START_TEST(patchnce_vs_ref)
{
    /* (B, K, D) */
    static const size_t big[][3] = {{1, 1, 3}, {1, 5, 7}, {2, 6, 9}, {2, 33, 16}, {1, 64, 256},
                                    {2, 256, 20}};
    static const size_t tiny[][3] = {{1, 1, 3}, {1, 3, 4}, {2, 3, 5}};
    const size_t(*s)[3] = test_on_oclgrind() ? tiny : big;
    const size_t cnt = test_on_oclgrind() ? 3 : 6;
    for (size_t i = 0; i < cnt; i++)
        for (int norm = 0; norm < 2; norm++) {
            loss_case c = {.kind = L_NCE, .b = s[i][0], .kp = s[i][1], .d = s[i][2],
                           .tau = 0.07f, .scale = 1.0f};
            c.m = c.b * c.kp;
            c.n = c.m * c.d;
            float *q = host_uniform(c.n, 600 + i, -1, 1), *k = host_uniform(c.n, 700 + i, -1, 1);
            /* unit rows as in CUT, or norm 3: logits then reach 9 / 0.07 ~ 129, and exp(129)
             * overflows float, so only a max-shifted log-sum-exp passes */
            normalize_rows(q, c.m, c.d, norm ? 1.0f : 3.0f);
            normalize_rows(k, c.m, c.d, norm ? 1.0f : 3.0f);
            check_case(&c, q, k);
            free(q), free(k);
        }
}
END_TEST

/* Rows of random length (0.05 to 5), row 1 of q and row 2 of k (when there) below
 * eps = 1e-8, and the last k row all zero (when there are 4 rows or more). */
static void cos_rows(float *q, float *k, size_t m, size_t d, uint64_t seed)
{
    float len[2];
    for (size_t i = 0; i < m; i++) {
        test_fill_uniform(len, 2, seed + i, 0.05f, 5.0f);
        normalize_rows(q + i * d, 1, d, i == 1 ? 3e-9f : len[0]);
        normalize_rows(k + i * d, 1, d, i == 2 ? 5e-9f : len[1]);
    }
    if (m >= 4)
        memset(k + (m - 1) * d, 0, d * sizeof(float));
}

START_TEST(patchnce_cos_vs_ref)
{
    /* (B, K, D): DCLGAN's one group (1, N*K) with N = 1, 2, and B = 2 groups */
    static const size_t big[][3] = {{1, 1, 3},   {1, 2 * 4, 32}, {2, 6, 32},  {1, 2 * 64, 256},
                                    {2, 33, 256}, {1, 256, 32},  {1, 2 * 7, 5}};
    static const size_t tiny[][3] = {{1, 1, 3}, {1, 2 * 2, 5}, {2, 3, 4}};
    const size_t(*s)[3] = test_on_oclgrind() ? tiny : big;
    const size_t cnt = test_on_oclgrind() ? 3 : 7;
    for (size_t i = 0; i < cnt; i++) {
        loss_case c = {.kind = L_NCE_COS, .b = s[i][0], .kp = s[i][1], .d = s[i][2],
                       .tau = 0.07f, .scale = 0.5f};
        c.m = c.b * c.kp;
        c.n = c.m * c.d;
        float *q = host_uniform(c.n, 800 + i, -1, 1), *k = host_uniform(c.n, 900 + i, -1, 1);
        cos_rows(q, k, c.m, c.d, 1000 + 10 * i);
        check_case(&c, q, k);
        /* On unit rows the cos loss is the dot loss (the gradients differ by the projection
         * that removes the part along q: compare losses only). */
        test_fill_uniform(q, c.n, 1100 + i, -1, 1);
        test_fill_uniform(k, c.n, 1200 + i, -1, 1);
        normalize_rows(q, c.m, c.d, 1.0f);
        normalize_rows(k, c.m, c.d, 1.0f);
        loss_case dot = c;
        dot.kind = L_NCE;
        float lcos, ldot;
        run_device(&c, q, k, &lcos, NULL, 0);
        run_device(&dot, q, k, &ldot, NULL, 0);
        const double ld = ldot;
        test_assert_close("patchnce_cos_vs_dot_on_unit_rows", &lcos, &ld, 1, 1e-5, 1e-5);
        free(q), free(k);
    }
}
END_TEST

/* Data-parallel PatchNCE: one group's query rows split into slices (even, uneven, the whole
 * group). The slice reference is the whole-group reference's rows: the row-weighted mean of
 * the slices' losses is the group's loss and each slice's gradient is the group's rows times
 * kp / mq. The device's slice equals the slice reference, for the dot and the cos logits. */
START_TEST(patchnce_slices)
{
    static const size_t shapes[][2] = {{2 * 8, 16}, {3 * 5, 32}, {2 * 64, 64}}; /* (kp, D) */
    const size_t nshapes = test_on_oclgrind() ? 1 : 3;
    const float tau = 0.07f, scale = 0.5f;
    for (int cosine = 0; cosine < 2; cosine++)
        for (size_t si = 0; si < nshapes; si++) {
            const size_t kp = shapes[si][0], d = shapes[si][1], n = kp * d;
            float *q = host_uniform(n, 1300 + si, -1, 1), *k = host_uniform(n, 1400 + si, -1, 1);
            if (cosine) { /* rows of length 0.5 to 3: the cos logits see the norms */
                for (size_t i = 0; i < kp; i++) {
                    float len[2];
                    test_fill_uniform(len, 2, 1500 + i, 0.5f, 3.0f);
                    normalize_rows(q + i * d, 1, d, len[0]);
                    normalize_rows(k + i * d, 1, d, len[1]);
                }
            } else {
                normalize_rows(q, kp, d, 1.0f);
                normalize_rows(k, kp, d, 1.0f);
            }
            double *qd = to_f64(q, n), *kd = to_f64(k, n);
            double lfull, *gfull = malloc(n * sizeof(double)), *gs = malloc(n * sizeof(double));
            ck_assert_ptr_nonnull(gfull);
            ck_assert_ptr_nonnull(gs);
            if (cosine)
                enco_loss_patchnce_cos_ref(&lfull, gfull, qd, kd, 1, kp, d, tau, 1e-8, scale);
            else
                enco_loss_patchnce_ref(&lfull, gfull, qd, kd, 1, kp, d, tau, scale);
            cl_mem bq = test_upload(q, n), bk = test_upload(k, n), bg = test_alloc(n + 3),
                   bl = test_alloc(2);
            const size_t splits[][3] = {{kp / 2, kp - kp / 2, 0}, {3, 5, kp - 8}, {kp, 0, 0}};
            for (size_t sp = 0; sp < 3; sp++) {
                double total = 0;
                size_t first = 0;
                for (size_t part = 0; part < 3 && splits[sp][part]; part++) {
                    const size_t mq = splits[sp][part];
                    double ls;
                    enco_loss_patchnce_slice_ref(&ls, gs, qd + first * d, kd, first, mq, kp, d,
                                                 tau, cosine, 1e-8, scale);
                    total += ls * (double)mq;
                    char what[96];
                    snprintf(what, sizeof what, "slice_ref_vs_group_grad_cos%d_kp%zu_rows%zu+%zu",
                             cosine, kp, first, mq);
                    for (size_t j = 0; j < mq * d; j++)
                        if (fabs(gs[j] * (double)mq / (double)kp - gfull[first * d + j]) >
                            1e-12 + 1e-9 * fabs(gfull[first * d + j]))
                            ck_abort_msg("%s: element %zu: %.17g vs %.17g", what, j,
                                         gs[j] * (double)mq / (double)kp, gfull[first * d + j]);
                    ENCO_CK(enco_loss_patchnce_slice(test_ctx(), bl, 1, bg, 3, bq, first * d, bk,
                                                     0, first, mq, kp, d, tau, scale, cosine,
                                                     NULL, 0));
                    float *l = test_download(bl, 2), *g = test_download(bg, n + 3);
                    snprintf(what, sizeof what, "slice_loss_cos%d_kp%zu_rows%zu+%zu", cosine, kp,
                             first, mq);
                    test_assert_close(what, l + 1, &ls, 1, 1e-6, LOSS_RTOL);
                    snprintf(what, sizeof what, "slice_grad_cos%d_kp%zu_rows%zu+%zu", cosine, kp,
                             first, mq);
                    test_assert_close(what, g + 3, gs, mq * d,
                                      1e-5 * max_abs(gs, mq * d) + 1e-6 * scale / (double)mq,
                                      GRAD_RTOL);
                    free(l), free(g);
                    first += mq;
                }
                ck_assert_uint_eq(first, kp);
                const double mean = total / (double)kp;
                test_assert_close("slice_losses_mean_is_group_loss", &(float){(float)mean},
                                  &lfull, 1, 1e-6, 1e-6);
                ck_assert_msg(fabs(mean - lfull) <= 1e-12 * fabs(lfull) + 1e-14,
                              "slices' mean %.17g vs group %.17g", mean, lfull);
            }
            /* rows outside the keys are refused */
            ck_assert_int_eq(enco_loss_patchnce_slice(test_ctx(), bl, 0, NULL, 0, bq, 0, bk, 0,
                                                      kp - 1, 2, kp, d, tau, scale, cosine, NULL,
                                                      0),
                             ENCO_ERR_INVALID_ARG);
            ck_assert_ptr_nonnull(strstr(enco_last_error(), "not among the group's"));
            test_release(bq), test_release(bk), test_release(bg), test_release(bl);
            free(q), free(k), free(qd), free(kd), free(gfull), free(gs);
        }
}
END_TEST

/* ---- finite differences of the float64 references -------------------- */

static void fd_check(const loss_case *c, double *x, const double *y, double h, double tol)
{
    const size_t n = c->n;
    double l0, lp, lm, *g = malloc(n * sizeof(double));
    run_ref(c, x, y, &l0, g);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double save = x[i];
        x[i] = save + h;
        run_ref(c, x, y, &lp, NULL);
        x[i] = save - h;
        run_ref(c, x, y, &lm, NULL);
        x[i] = save;
        double fd = c->scale * (lp - lm) / (2 * h);
        double err = fabs(fd - g[i]) / fmax(fabs(g[i]), 1e-3);
        ck_assert_msg(err < tol, "%s: d/dx[%zu] fd %.10g, backward %.10g", kind_name(c->kind), i,
                      fd, g[i]);
        worst = fmax(worst, err);
    }
    printf("maxrel fd_%s %.3g\n", kind_name(c->kind), worst);
    free(g);
}

START_TEST(references_vs_finite_differences)
{
    double x[60], y[60];
    test_fill_uniform_f64(x, 60, 11, -1, 1);
    test_fill_uniform_f64(y, 60, 12, -1, 1);
    loss_case ls = {.kind = L_LSGAN, .n = 13, .target = 1, .scale = 0.7f};
    fd_check(&ls, x, NULL, 1e-6, 1e-6);
    ls.target = 0;
    fd_check(&ls, x, NULL, 1e-6, 1e-6);
    /* L1: |x - y| is smooth away from x == y; the inputs differ by far more than h. */
    loss_case l1 = {.kind = L_L1, .n = 13, .scale = 10};
    fd_check(&l1, x, y, 1e-6, 1e-6);
    loss_case en = {.kind = L_ENCO, .m = 3, .d = 5, .n = 15, .scale = 1};
    fd_check(&en, x, y, 1e-6, 1e-6);
    loss_case nce = {.kind = L_NCE, .b = 2, .kp = 3, .d = 4, .m = 6, .n = 24, .tau = 0.07f,
                     .scale = 1};
    fd_check(&nce, x, y, 1e-7, 1e-5);
    loss_case nce1 = {.kind = L_NCE, .b = 1, .kp = 5, .d = 2, .m = 5, .n = 10, .tau = 0.5f,
                      .scale = 2};
    fd_check(&nce1, x, y, 1e-6, 1e-6);
    /* cos: the rows here are far above eps, where 1.13's gradient is the derivative. */
    loss_case cs = {.kind = L_NCE_COS, .b = 2, .kp = 3, .d = 4, .m = 6, .n = 24, .tau = 0.07f,
                    .scale = 1};
    fd_check(&cs, x, y, 1e-7, 1e-5);
    loss_case cs1 = {.kind = L_NCE_COS, .b = 1, .kp = 6, .d = 5, .m = 6, .n = 30, .tau = 0.5f,
                     .scale = 2};
    fd_check(&cs1, x, y, 1e-6, 1e-6);
}
END_TEST

/* ---- PyTorch 1.13 fixtures ---------------------------------------------
 * Generated once with torch 1.13 (float32):
 *   torch.manual_seed(7)
 *   q = torch.randn(3, 4); k = torch.randn(3, 4); q[1] *= 1e-9; k[2] *= 1e-9
 *   q.requires_grad_()
 *   loss = (2 - 2 * F.cosine_similarity(q, k, dim=-1)).mean(); loss.backward()
 *   B, K, D = 2, 3, 4
 *   fq = F.normalize(torch.randn(B*K, D), dim=1) * 1.5; fk = F.normalize(torch.randn(B*K, D), dim=1)
 *   fq.requires_grad_(); feat_k = fk.detach()
 *   l_pos = torch.bmm(fq.view(B*K, 1, -1), feat_k.view(B*K, -1, 1)).view(B*K, 1)
 *   l_neg = torch.bmm(fq.view(B, -1, D), feat_k.view(B, -1, D).transpose(2, 1))
 *   l_neg.masked_fill_(torch.eye(K, dtype=torch.bool)[None], -10.0)
 *   out = torch.cat((l_pos, l_neg.view(-1, K)), dim=1) / 0.07
 *   lo = F.cross_entropy(out, torch.zeros(B*K, dtype=torch.long), reduction='none').mean()
 *   lo.backward()
 *   print("%.9e" % v for v in q, k, loss, q.grad, fq, fk, lo, fq.grad)
 * The EnCo rows 1 and 2 have |q| resp. |k| below eps = 1e-8: they pin down how 1.13 clamps
 * each norm separately and what gradient its autograd gives there. */

static const float fx_enco_q[] = {
    -1.467950940e-01f, 7.861412764e-01f, 9.468216300e-01f,  -1.114344001e+00f,
    1.690790175e-09f,  -8.948278785e-10f, -3.556250294e-10f, 1.232385749e-09f,
    1.381726563e-01f,  -1.682198524e+00f, 3.176783025e-01f,  1.328069717e-01f};
static const float fx_enco_k[] = {
    1.373240948e-01f, 2.405461222e-01f,  1.395450830e+00f,  1.347022653e+00f,
    2.438208103e+00f, 2.027582824e-01f,  2.450541258e+00f,  2.025601864e+00f,
    1.779154934e-09f, -9.179306759e-10f, -4.578188939e-10f, -7.244732592e-10f};
static const double fx_enco_loss = 1.849802852e+00;
static const double fx_enco_grad[] = {
    -2.791946381e-02, -4.973826557e-02, -2.856563628e-01, -2.741240263e-01,
    -3.895385200e+07, -4.197059000e+06, -4.105160400e+07, -3.252122800e+07,
    -6.606428325e-02, 1.556228846e-03,  2.413267083e-02,  3.071929328e-02};

static const float fx_nce_q[] = {
    -5.381692648e-01f, -7.837266922e-01f, -4.375582188e-02f, -1.159410119e+00f,
    -1.348177671e+00f, -4.820413589e-01f, -1.404443830e-01f, 4.246508479e-01f,
    8.024058938e-01f,  3.101155162e-01f,  -3.301897943e-01f, -1.183616400e+00f,
    -4.965402484e-01f, -1.191408873e+00f, 7.374038100e-01f,  2.005695701e-01f,
    -6.350026131e-01f, 3.291976750e-01f,  6.277146339e-01f,  1.159471869e+00f,
    8.429552317e-01f,  5.684888959e-01f,  -9.048019648e-01f, -6.305397749e-01f};
static const float fx_nce_k[] = {
    2.176202089e-01f,  9.370002747e-01f,  -4.410103336e-02f, 2.696793079e-01f,
    6.631651521e-01f,  6.695483923e-01f,  8.400626481e-02f,  -3.238208592e-01f,
    -8.468375802e-01f, -2.367559075e-01f, 4.713150263e-01f,  6.837221980e-02f,
    -5.017595887e-01f, -4.192373157e-01f, 5.478640795e-01f,  5.218451023e-01f,
    -4.227139354e-01f, 5.991004705e-01f,  -6.271890402e-01f, 2.627270520e-01f,
    -3.012663722e-01f, 4.285993278e-01f,  1.978041679e-01f,  8.285015225e-01f};
static const double fx_nce_loss = 2.026827431e+01;
static const double fx_nce_grad[] = {
    -2.534422159e+00, -2.794656754e+00, 1.227180958e+00,  -4.793028831e-01,
    -3.595244408e+00, -2.157867432e+00, 9.221637249e-01,  9.337930679e-01,
    3.595242977e+00,  2.157868624e+00,  -9.221642017e-01, -9.337908626e-01,
    -5.638101541e-09, 8.021095788e-09,  3.701767115e-09,  1.550506212e-08,
    2.814453244e-01,  -4.385813475e-01, 1.977739930e+00,  1.335280895e+00,
    -2.891607881e-01, 4.059550762e-01,  -1.964269400e+00, -1.347081900e+00};

/* DCLGAN's PatchNCELoss (patchnce.py:13-48: nn.CosineSimilarity(dim=-1), the broadcast
 * (M,1,1,D) x (1,1,M,D) negatives, diagonal -10, / nce_T, CE target 0), torch 1.13, float32:
 *   torch.manual_seed(11); M, D, T = 4, 3, 0.07
 *   q = torch.randn(M, D) * torch.tensor([[1.0], [1e-9], [0.3], [2.0]])
 *   k = torch.randn(M, D) * torch.tensor([[0.5], [1.0], [1e-9], [1.5]])
 *   q.requires_grad_(); fk = k.detach(); cos = torch.nn.CosineSimilarity(dim=-1)
 *   l_pos = cos(q, fk).view(M, 1)
 *   l_neg = cos(q.view(M, 1, -1).unsqueeze(1), fk.view(1, M, -1).unsqueeze(0)).view(1, M, -1)
 *   l_neg.masked_fill_(torch.eye(M, dtype=torch.bool)[None], -10.0)
 *   out = torch.cat((l_pos, l_neg.view(-1, M)), dim=1) / T
 *   lo = F.cross_entropy(out, torch.zeros(M, dtype=torch.long), reduction='none').mean()
 *   lo.backward()
 * Row 1 of q and row 2 of k are below eps = 1e-8 (q's row 1 gradient is 1.13's, ~1/eps). */
static const float fx_cos_q[] = {
    7.376294732e-01f,  1.945929170e+00f,  -6.995416284e-01f, -1.302297270e-09f,
    -5.132622105e-10f, -2.696195489e-10f, 7.385540009e-02f,  1.451775879e-01f,
    1.351253390e-01f,  -1.913666844e+00f, 3.002375841e+00f,  -6.271473169e-01f};
static const float fx_cos_k[] = {
    -1.171421930e-01f, -5.356546044e-01f, 8.239921927e-02f,  1.156544909e-01f,
    3.834064901e-01f,  -1.234158650e-01f, 8.928814910e-10f,  -4.890560179e-10f,
    -1.447020725e-09f, 1.791104317e+00f,  8.193613887e-01f,  -3.112523079e+00f};
static const double fx_cos_loss = 1.205593872e+01;
static const double fx_cos_grad[] = {
    -2.823752165e-01, 2.133377790e-01,  2.956957221e-01,  -1.084260160e+08,
    -5.093103360e+08, 8.946443200e+07,  -5.631853342e-01, 8.963142395e+00,
    -9.322108269e+00, 1.012281775e-01,  1.992455721e-01,  6.449731588e-01};

START_TEST(pytorch_fixtures)
{
    loss_case en = {.kind = L_ENCO, .m = 3, .d = 4, .n = 12, .scale = 1};
    float loss, grad[24];
    run_device(&en, fx_enco_q, fx_enco_k, &loss, grad, 0);
    test_assert_close("enco_vs_torch_loss", &loss, &fx_enco_loss, 1, 1e-6, 1e-6);
    test_assert_close("enco_vs_torch_grad", grad, fx_enco_grad, 12, 1e-6, 1e-5);
    /* The float64 reference encodes the same rule. */
    double qd[12], kd[12], lref, gref[12];
    for (int i = 0; i < 12; i++)
        qd[i] = fx_enco_q[i], kd[i] = fx_enco_k[i];
    enco_loss_enco_ref(&lref, gref, qd, kd, 3, 4, 1e-8, 1);
    ck_assert_msg(fabs(lref - fx_enco_loss) < 1e-6, "enco ref loss %.9g", lref);
    for (int i = 0; i < 12; i++)
        ck_assert_msg(fabs(gref[i] - fx_enco_grad[i]) <= 1e-6 + 1e-6 * fabs(fx_enco_grad[i]),
                      "enco ref grad %d: %.9g vs torch %.9g", i, gref[i], fx_enco_grad[i]);

    loss_case nce = {.kind = L_NCE, .b = 2, .kp = 3, .d = 4, .m = 6, .n = 24, .tau = 0.07f,
                     .scale = 1};
    run_device(&nce, fx_nce_q, fx_nce_k, &loss, grad, 0);
    test_assert_close("patchnce_vs_torch_loss", &loss, &fx_nce_loss, 1, 1e-6, 1e-6);
    test_assert_close("patchnce_vs_torch_grad", grad, fx_nce_grad, 24, 1e-5, 1e-5);

    loss_case cs = {.kind = L_NCE_COS, .b = 1, .kp = 4, .d = 3, .m = 4, .n = 12, .tau = 0.07f,
                    .scale = 1};
    run_device(&cs, fx_cos_q, fx_cos_k, &loss, grad, 0);
    test_assert_close("patchnce_cos_vs_torch_loss", &loss, &fx_cos_loss, 1, 1e-6, 1e-6);
    for (int r = 0; r < 4; r++) /* row by row: row 1 is ~1e8 */
        test_assert_close("patchnce_cos_vs_torch_grad", grad + 3 * r, fx_cos_grad + 3 * r, 3,
                          1e-5 * max_abs(fx_cos_grad + 3 * r, 3), 1e-5);
    for (int i = 0; i < 12; i++)
        qd[i] = fx_cos_q[i], kd[i] = fx_cos_k[i];
    enco_loss_patchnce_cos_ref(&lref, gref, qd, kd, 1, 4, 3, 0.07f, 1e-8, 1);
    ck_assert_msg(fabs(lref - fx_cos_loss) < 1e-5, "cos ref loss %.9g", lref);
    for (int i = 0; i < 12; i++)
        ck_assert_msg(fabs(gref[i] - fx_cos_grad[i]) <= 1e-5 * fabs(fx_cos_grad[i]) + 1e-6,
                      "cos ref grad %d: %.9g vs torch %.9g", i, gref[i], fx_cos_grad[i]);
}
END_TEST

/* ---- combine ------------------------------------------------------------ */

START_TEST(combine_scalars)
{
    enco_ctx *ctx = test_ctx();
    float vals[10];
    test_fill_uniform(vals, 10, 31, 0, 3);
    cl_mem buf = test_upload(vals, 10);
    cl_mem other = test_upload(vals + 5, 1);
    float w[8] = {1.0f, 0.5f, 0.5f, 2.0f / 3, -1.5f, 0.25f, 3.0f, 0.125f};
    for (size_t count = 1; count <= ENCO_LOSS_COMBINE_MAX; count++) {
        cl_mem ls[8];
        size_t offs[8];
        double lv[8], wd[8], ref;
        for (size_t i = 0; i < count; i++) {
            ls[i] = i == 2 ? other : buf;
            offs[i] = i == 2 ? 0 : i + 1;
            lv[i] = i == 2 ? vals[5] : vals[i + 1];
            wd[i] = w[i];
        }
        cl_mem out = test_alloc(3);
        ENCO_CK(enco_loss_combine(ctx, out, 2, ls, offs, w, count));
        float *got = test_download(out, 3);
        enco_loss_combine_ref(&ref, lv, wd, count);
        char what[48];
        snprintf(what, sizeof what, "combine_%zu", count);
        test_assert_close(what, got + 2, &ref, 1, 1e-6, 1e-6);
        ck_assert(got[0] == 0 && got[1] == 0); /* nothing else written */
        free(got);
        test_release(out);
    }
    /* out aliasing an input: loss_G = loss_G + 0.5 * loss_idt in place. */
    cl_mem ls[2] = {buf, buf};
    size_t offs[2] = {0, 9};
    float w2[2] = {1.0f, 0.5f};
    ENCO_CK(enco_loss_combine(ctx, buf, 0, ls, offs, w2, 2));
    float *got = test_download(buf, 10);
    double ref = (double)vals[0] + 0.5 * vals[9];
    test_assert_close("combine_in_place", got, &ref, 1, 1e-6, 1e-6);
    free(got);
    test_release(buf);
    test_release(other);
}
END_TEST

/* A realistic chain without host reads: loss_G = GAN + 0.5 * (EnCo + idt). */
START_TEST(combine_chain_on_device)
{
    enco_ctx *ctx = test_ctx();
    const size_t n = 37, m = 4, d = 8;
    float *dx = host_uniform(n, 41, -1, 1), *a = host_uniform(n, 42, -1, 1);
    float *b = host_uniform(n, 43, -1, 1), *q = host_uniform(m * d, 44, -1, 1);
    float *k = host_uniform(m * d, 45, -1, 1);
    cl_mem bdx = test_upload(dx, n), ba = test_upload(a, n), bb = test_upload(b, n);
    cl_mem bq = test_upload(q, m * d), bk = test_upload(k, m * d), ls = test_alloc(4);
    ENCO_CK(enco_loss_lsgan(ctx, ls, 0, NULL, 0, bdx, 0, n, 1.0f, 1.0f, NULL, 0));
    ENCO_CK(enco_loss_enco(ctx, ls, 1, NULL, 0, bq, 0, bk, 0, m, d, 1.0f, NULL, 0));
    ENCO_CK(enco_loss_l1(ctx, ls, 2, NULL, 0, ba, 0, bb, 0, n, 1.0f, NULL, 0));
    cl_mem terms[3] = {ls, ls, ls};
    size_t offs[3] = {0, 1, 2};
    float w[3] = {1.0f, 0.5f * 2.0f, 0.5f * 10.0f}; /* lambda_NCE 2, lambda_IDT 10 */
    ENCO_CK(enco_loss_combine(ctx, ls, 3, terms, offs, w, 3));
    float *got = test_download(ls, 4);
    double *dxd = to_f64(dx, n), *ad = to_f64(a, n), *bd = to_f64(b, n);
    double *qd = to_f64(q, m * d), *kd = to_f64(k, m * d);
    double l[3], ref;
    enco_loss_lsgan_ref(&l[0], NULL, dxd, n, 1, 1);
    enco_loss_enco_ref(&l[1], NULL, qd, kd, m, d, 1e-8, 1);
    enco_loss_l1_ref(&l[2], NULL, ad, bd, n, 1);
    ref = l[0] + 0.5 * (2 * l[1] + 10 * l[2]);
    test_assert_close("combine_chain", got + 3, &ref, 1, 1e-6, 1e-5);
    free(got), free(dx), free(a), free(b), free(q), free(k);
    free(dxd), free(ad), free(bd), free(qd), free(kd);
    test_release(bdx), test_release(ba), test_release(bb), test_release(bq), test_release(bk);
    test_release(ls);
}
END_TEST

/* ---- argument checks ------------------------------------------------------ */

START_TEST(rejects_bad_arguments)
{
    enco_ctx *ctx = test_ctx();
    cl_mem m = test_alloc(64);
    ck_assert_int_eq(enco_loss_lsgan(ctx, m, 0, NULL, 0, m, 0, 0, 1, 1, NULL, 0),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "0 elements"));
    ck_assert_int_eq(enco_loss_lsgan(ctx, NULL, 0, NULL, 0, m, 0, 4, 1, 1, NULL, 0),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "loss buffer"));
    ck_assert_int_eq(enco_loss_lsgan(ctx, m, 0, NULL, 0, m, 0, 4, NAN, 1, NULL, 0),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_loss_l1(ctx, m, 0, NULL, 0, m, 0, NULL, 0, 4, 1, NULL, 0),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "input y"));
    ck_assert_int_eq(enco_loss_l1(ctx, m, 0, NULL, 0, m, 0, m, 0, 4, INFINITY, NULL, 0),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "grad_scale"));
    ck_assert_int_eq(enco_loss_enco(ctx, m, 0, NULL, 0, m, 0, m, 0, 4, 0, 1, NULL, 0),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "feature size"));
    ck_assert_int_eq(enco_loss_patchnce(ctx, m, 0, NULL, 0, m, 0, m, 0, 2, 3, 4, 0.0f, 1, NULL, 0),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "temperature"));
    ck_assert_int_eq(enco_loss_patchnce(ctx, m, 0, NULL, 0, m, 0, m, 0, 0, 3, 4, 0.07f, 1, NULL,
                                        0),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "0 images"));
    ck_assert_int_eq(
        enco_loss_patchnce_cos(ctx, m, 0, NULL, 0, m, 0, m, 0, 2, 3, 4, -1.0f, 1, NULL, 0),
        ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "enco_loss_patchnce_cos: temperature"));
    ck_assert_int_eq(
        enco_loss_patchnce_cos(ctx, m, 0, NULL, 0, m, 0, NULL, 0, 2, 3, 4, 0.07f, 1, NULL, 0),
        ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "input k"));
    ck_assert_int_eq(
        enco_loss_patchnce_cos(ctx, m, 0, NULL, 0, m, 0, m, 0, 1, 3, 0, 0.07f, 1, NULL, 0),
        ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "feature size"));
    cl_mem ls[9] = {m, m, m, m, m, m, m, m, m};
    size_t offs[9] = {0};
    float w[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    ck_assert_int_eq(enco_loss_combine(ctx, m, 0, ls, offs, w, 0), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_loss_combine(ctx, m, 0, ls, offs, w, 9), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "9 terms"));
    test_release(m);
}
END_TEST

START_TEST(costs_are_positive)
{
    ck_assert(enco_loss_lsgan_cost(900).flops > 0 && enco_loss_lsgan_cost(900).bytes >= 900 * 4);
    ck_assert(enco_loss_l1_cost(100).bytes >= 100 * 12);
    ck_assert(enco_loss_enco_cost(256, 256).flops >= 6.0 * 256 * 256);
    ck_assert(enco_loss_patchnce_cost(1, 256, 256).flops >= 4.0 * 256 * 256 * 256);
    ck_assert(enco_loss_patchnce_cos_cost(1, 256, 256).flops >
              enco_loss_patchnce_cost(1, 256, 256).flops);
    ck_assert(enco_loss_patchnce_cos_work(2, 3, 4) >= enco_loss_patchnce_work(2, 3) + 2 * 24);
    ck_assert(enco_loss_combine_cost(3).flops == 6);
}
END_TEST

static Suite *loss_suite(void)
{
    Suite *s = suite_create("loss");
    TCase *t = tcase_create("loss");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, lsgan_vs_ref);
    tcase_add_test(t, l1_vs_ref);
    tcase_add_test(t, enco_vs_ref);
    tcase_add_test(t, patchnce_vs_ref);
    tcase_add_test(t, patchnce_cos_vs_ref);
    tcase_add_test(t, patchnce_slices);
    tcase_add_test(t, references_vs_finite_differences);
    tcase_add_test(t, pytorch_fixtures);
    tcase_add_test(t, combine_scalars);
    tcase_add_test(t, combine_chain_on_device);
    tcase_add_test(t, rejects_bad_arguments);
    tcase_add_test(t, costs_are_positive);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return test_run_suite(loss_suite()); }
