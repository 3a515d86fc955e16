/* Adam: device step vs the float64 reference over several steps, vs a PyTorch 1.13 fixture,
 * determinism and argument checks. */
#include "harness.h"
#include "ops/adam.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Distance in units in the last place between two finite floats. */
static long ulp_diff(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0)
        ia = INT32_MIN - ia;
    if (ib < 0)
        ib = INT32_MIN - ib;
    return labs((long)ia - (long)ib);
}

typedef struct {
    cl_mem p, m, v, g;
    size_t off; /* every buffer holds its n values at this offset */
} adam_bufs;

static adam_bufs bufs_create(const float *p, size_t n, size_t off)
{
    float *tmp = calloc(n + off, sizeof(float));
    ck_assert_ptr_nonnull(tmp);
    memcpy(tmp + off, p, n * sizeof(float));
    memset(tmp, 0, off * sizeof(float));
    float *z = calloc(n + off, sizeof(float));
    ck_assert_ptr_nonnull(z);
    /* m and v are written from the host (not test_alloc): Oclgrind flags buffers zeroed by
     * clEnqueueFillBuffer as uninitialised. */
    adam_bufs b = {test_upload(tmp, n + off), test_upload(z, n + off), test_upload(z, n + off),
                   test_upload(z, n + off), off};
    free(z);
    free(tmp);
    return b;
}

static void bufs_step(adam_bufs *b, const float *g, size_t n, const enco_adam_hparams *hp,
                      long t)
{
    enco_ctx *ctx = test_ctx();
    /* The whole buffer, prefix included: Oclgrind marks all but the first float of a write at
     * a nonzero offset as uninitialised. */
    float *all = calloc(n + b->off, sizeof(float));
    ck_assert_ptr_nonnull(all);
    memcpy(all + b->off, g, n * sizeof(float));
    ENCO_CK(enco_upload(ctx, b->g, 0, (n + b->off) * sizeof(float), all));
    free(all);
    ENCO_CK(enco_adam_step(ctx, b->p, b->off, b->m, b->off, b->v, b->off, b->g, b->off, n, hp, t));
}

static float *bufs_read(cl_mem mem, size_t n, size_t off)
{
    float *all = test_download(mem, n + off);
    float *x = malloc(n * sizeof(float));
    memcpy(x, all + off, n * sizeof(float));
    free(all);
    return x;
}

static void bufs_free(adam_bufs *b)
{
    test_release(b->p), test_release(b->m), test_release(b->v), test_release(b->g);
}

/* ---- vs the float64 reference ------------------------------------------- */

START_TEST(adam_vs_ref)
{
    const size_t big[] = {1, 255, 1000, 65537}, tiny[] = {1, 37, 300};
    const size_t *ns = test_on_oclgrind() ? tiny : big;
    const size_t cnt = test_on_oclgrind() ? 3 : 4;
    const int steps = 5;
    enco_adam_hparams hps[2] = {ENCO_ADAM_DEFAULTS(1e-2), {.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.99,
                                                            .eps = 1e-6}};
    for (size_t c = 0; c < cnt; c++)
        for (int h = 0; h < 2; h++) {
            const size_t n = ns[c];
            float *p0 = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
            double *pr = malloc(n * sizeof(double)), *mr = calloc(n, sizeof(double));
            double *vr = calloc(n, sizeof(double)), *gr = malloc(n * sizeof(double));
            test_fill_uniform(p0, n, 50 + c, -1, 1);
            for (size_t i = 0; i < n; i++)
                pr[i] = p0[i];
            adam_bufs b = bufs_create(p0, n, 7);
            for (int t = 1; t <= steps; t++) {
                test_fill_uniform(g, n, 1000 * t + c, -0.1f, 0.1f);
                if (n > 3)
                    g[3] = 0.0f; /* a parameter whose gradient is zero */
                for (size_t i = 0; i < n; i++)
                    gr[i] = g[i];
                bufs_step(&b, g, n, &hps[h], t);
                enco_adam_step_ref(pr, mr, vr, gr, n, &hps[h], t);
            }
            float *p = bufs_read(b.p, n, b.off), *m = bufs_read(b.m, n, b.off);
            float *v = bufs_read(b.v, n, b.off);
            /* Compare the total update p - p0: p itself would hide errors below its ulp. */
            float *du = malloc(n * sizeof(float));
            double *dr = malloc(n * sizeof(double));
            for (size_t i = 0; i < n; i++) {
                du[i] = (float)((double)p[i] - p0[i]);
                dr[i] = pr[i] - p0[i];
            }
            char what[64];
            snprintf(what, sizeof what, "adam_update_n%zu_h%d", n, h);
            /* atol: a few ulps of |p| <= 1 accumulated over the steps */
            test_assert_close(what, du, dr, n, 1e-6, 1e-4);
            snprintf(what, sizeof what, "adam_m_n%zu_h%d", n, h);
            test_assert_close(what, m, mr, n, 1e-8, 1e-5); /* atol: 1e-7 of |g| <= 0.1 (m cancels) */
            snprintf(what, sizeof what, "adam_v_n%zu_h%d", n, h);
            test_assert_close(what, v, vr, n, 1e-12, 1e-5);
            bufs_free(&b);
            free(p0), free(g), free(pr), free(mr), free(vr), free(gr), free(p), free(m), free(v);
            free(du), free(dr);
        }
}
END_TEST

/* ---- PyTorch 1.13 fixture ------------------------------------------------
 * Generated once with torch 1.13 on CPU (float32):
 *   torch.manual_seed(3); n = 10
 *   p0 = torch.randn(n); grads = [torch.randn(n) * 0.1 for _ in range(3)]
 *   grads[0][1] = 0.0; grads[1][2] = 1e-6
 *   for lr, b1 in ((2e-4, 0.5), (1e-3, 0.9)):
 *       p = p0.clone().requires_grad_()
 *       opt = torch.optim.Adam([p], lr=lr, betas=(b1, 0.999), eps=1e-8)
 *       for t in range(3):
 *           p.grad = grads[t].clone(); opt.step(); print(p)      # "%.9e" each
 *       print(opt.state[p]['exp_avg'], opt.state[p]['exp_avg_sq'])
 */
static const float fx_p0[10] = {8.032760620e-01f,  1.748333871e-01f, 8.897809684e-02f,
                                -6.137180328e-01f, 4.618244991e-02f, -1.368259192e+00f,
                                3.374950886e-01f,  1.011115909e+00f, -1.435179353e+00f,
                                9.774317741e-01f};
static const float fx_g[3][10] = {
    {5.220499635e-02f, 0.000000000e+00f, -8.646356314e-02f, 2.989608422e-02f, 4.192186520e-02f,
     -7.985432632e-03f, 9.264108539e-02f, 8.156775683e-02f, 4.951890185e-02f, -1.643169858e-02f},
    {-6.779622287e-02f, -1.059107408e-01f, 9.999999975e-07f, 2.389174141e-02f, -3.921502456e-02f,
     1.519148983e-02f, -1.183733270e-01f, 5.343607068e-02f, -1.451022774e-01f, -6.293740124e-02f},
    {1.544150990e-02f, -2.479901724e-02f, 4.535011575e-02f, 1.209109090e-03f, 1.342035532e-01f,
     1.462003738e-01f, 4.361609742e-02f, 1.017013565e-01f, -2.192526907e-01f, 2.123306692e-02f}};
/* [hparam set][step] parameters after the step */
static const float fx_p[2][3][10] = {
    {{8.030760884e-01f, 1.748333871e-01f, 8.917810023e-02f, -6.139180064e-01f, 4.598245025e-02f,
      -1.368059158e+00f, 3.372950852e-01f, 1.010915875e+00f, -1.435379386e+00f, 9.776317477e-01f},
     {8.031679392e-01f, 1.750219017e-01f, 8.927240223e-02f, -6.141093969e-01f, 4.604241252e-02f,
      -1.368182182e+00f, 3.373854756e-01f, 1.010733604e+00f, -1.435231447e+00f, 9.778379798e-01f},
     {8.031802177e-01f, 1.751633883e-01f, 8.922427148e-02f, -6.142160892e-01f, 4.587285593e-02f,
      -1.368386269e+00f, 3.373758793e-01f, 1.010524511e+00f, -1.435024738e+00f, 9.778794646e-01f}},
    {{8.022760749e-01f, 1.748333871e-01f, 8.997809887e-02f, -6.147180200e-01f, 4.518245161e-02f,
      -1.367259145e+00f, 3.364951015e-01f, 1.010115862e+00f, -1.436179399e+00f, 9.784317613e-01f},
     {8.024570942e-01f, 1.755775213e-01f, 9.064815193e-02f, -6.157060862e-01f, 4.520171136e-02f,
      -1.367606282e+00f, 3.366683722e-01f, 1.009147525e+00f, -1.435691476e+00f, 9.793209434e-01f},
     {8.024812937e-01f, 1.762832850e-01f, 9.080978483e-02f, -6.164896488e-01f, 4.462015256e-02f,
      -1.368272066e+00f, 3.366188705e-01f, 1.008168459e+00f, -1.434951782e+00f, 9.797760248e-01f}}};
static const float fx_m[2][10] = {
    {-2.702676225e-03f, -3.887719288e-02f, 1.186736207e-02f, 1.031449996e-02f, 6.253825128e-02f,
     7.589988410e-02f, 3.794852644e-03f, 7.440567017e-02f, -1.397120506e-01f, -7.171779871e-03f},
    {-3.289042215e-04f, -1.201186795e-02f, -2.468446968e-03f, 4.692750052e-03f, 1.328667440e-02f,
     1.534045208e-02f, 1.211938332e-03f, 2.158636972e-02f, -3.097344376e-02f, -4.872026853e-03f}};
static const float fx_v[10] = {7.550086139e-06f, 1.182085998e-05f, 9.517636499e-06f,
                               1.463695639e-06f, 2.130080429e-05f, 2.166874219e-05f,
                               2.446581311e-05f, 1.983572474e-05f, 7.155258209e-05f,
                               4.677459856e-06f};

static long check_ulps(const char *what, const float *got, const float *want, size_t n, long max)
{
    long worst = 0, exact = 0;
    for (size_t i = 0; i < n; i++) {
        long d = ulp_diff(got[i], want[i]);
        ck_assert_msg(d <= max, "%s[%zu]: %.9g vs torch %.9g (%ld ulp)", what, i, (double)got[i],
                      (double)want[i], d);
        worst = d > worst ? d : worst;
        exact += d == 0;
    }
    printf("torch parity %s: %ld of %zu bitwise, worst %ld ulp\n", what, exact, n, worst);
    return worst;
}

START_TEST(adam_matches_pytorch)
{
    const enco_adam_hparams hps[2] = {ENCO_ADAM_DEFAULTS(2e-4), ENCO_ADAM_DEFAULTS(1e-3)};
    enco_adam_hparams h1 = hps[1];
    h1.beta1 = 0.9;
    for (int h = 0; h < 2; h++) {
        adam_bufs b = bufs_create(fx_p0, 10, 3);
        for (int t = 0; t < 3; t++) {
            bufs_step(&b, fx_g[t], 10, h ? &h1 : &hps[0], t + 1);
            float *p = bufs_read(b.p, 10, b.off);
            char what[48];
            snprintf(what, sizeof what, "p_h%d_step%d", h, t + 1);
            /* Parity to 1 ulp (bitwise where the device's sqrt and division are correctly
             * rounded, as on PoCL). */
            check_ulps(what, p, fx_p[h][t], 10, 1);
            /* The update itself (p_t - p_{t-1}) agrees to float rounding too. */
            free(p);
        }
        float *m = bufs_read(b.m, 10, b.off), *v = bufs_read(b.v, 10, b.off);
        check_ulps(h ? "m_b1_0.9" : "m_b1_0.5", m, fx_m[h], 10, 1);
        check_ulps(h ? "v_b1_0.9" : "v_b1_0.5", v, fx_v, 10, 1);
        free(m), free(v);
        bufs_free(&b);
    }
}
END_TEST

START_TEST(adam_deterministic)
{
    const size_t n = test_on_oclgrind() ? 100 : 5000;
    float *p0 = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    test_fill_uniform(p0, n, 77, -1, 1);
    enco_adam_hparams hp = ENCO_ADAM_DEFAULTS(5e-5);
    float *res[2][3];
    for (int run = 0; run < 2; run++) {
        adam_bufs b = bufs_create(p0, n, 0);
        for (int t = 1; t <= 3; t++) {
            test_fill_uniform(g, n, 88 + t, -1, 1);
            bufs_step(&b, g, n, &hp, t);
        }
        res[run][0] = bufs_read(b.p, n, 0);
        res[run][1] = bufs_read(b.m, n, 0);
        res[run][2] = bufs_read(b.v, n, 0);
        bufs_free(&b);
    }
    test_assert_bitwise("adam p", res[0][0], res[1][0], n);
    test_assert_bitwise("adam m", res[0][1], res[1][1], n);
    test_assert_bitwise("adam v", res[0][2], res[1][2], n);
    /* Something moved. */
    ck_assert(memcmp(res[0][0], p0, n * sizeof(float)) != 0);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 3; k++)
            free(res[r][k]);
    free(p0), free(g);
}
END_TEST

START_TEST(adam_rejects_bad_arguments)
{
    enco_ctx *ctx = test_ctx();
    cl_mem b = test_alloc(8);
    enco_adam_hparams hp = ENCO_ADAM_DEFAULTS(1e-3);
    ck_assert_int_eq(enco_adam_step(ctx, b, 0, b, 0, b, 0, b, 0, 8, &hp, 0), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "step 0"));
    ck_assert_int_eq(enco_adam_step(ctx, b, 0, b, 0, b, 0, b, 0, 0, &hp, 1), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "0 parameters"));
    ck_assert_int_eq(enco_adam_step(ctx, b, 0, b, 0, b, 0, NULL, 0, 8, &hp, 1),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_adam_step(ctx, b, 0, b, 0, b, 0, b, 0, 8, NULL, 1), ENCO_ERR_INVALID_ARG);
    hp.beta1 = 1.0;
    ck_assert_int_eq(enco_adam_step(ctx, b, 0, b, 0, b, 0, b, 0, 8, &hp, 1), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "betas"));
    hp = ENCO_ADAM_DEFAULTS(NAN);
    ck_assert_int_eq(enco_adam_step(ctx, b, 0, b, 0, b, 0, b, 0, 8, &hp, 1), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "learning rate"));
    test_release(b);
    ck_assert(enco_adam_cost(100).flops > 0 && enco_adam_cost(100).bytes == 2800);
}
END_TEST

static Suite *adam_suite(void)
{
    Suite *s = suite_create("adam");
    TCase *t = tcase_create("adam");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, adam_vs_ref);
    tcase_add_test(t, adam_matches_pytorch);
    tcase_add_test(t, adam_deterministic);
    tcase_add_test(t, adam_rejects_bad_arguments);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return test_run_suite(adam_suite()); }
