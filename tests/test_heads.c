/* Projection heads on the row-network executor: CUT's PatchSampleF and
 * EnCo's BatchNorm and LayerNorm heads against a float64 reference written
 * here from the specs (MODELS.md 0.4, ENCO.md 3), layer by layer with the op
 * families' float64 references; the reference's backward against central
 * finite differences of its forward; BatchNorm running statistics and
 * num_batches_tracked after the passes; refusals. */
#include "harness.h"
#include "nn/heads.h"
#include "ops/act.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/patch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the float64 reference ------------------------------------------------- */

typedef enum rop {
    R_LIN,       /* Linear, no bias */
    R_LIN_B,     /* Linear with bias */
    R_BN,        /* BatchNorm1d, training mode, affine=False */
    R_BN_AFFINE, /* BatchNorm1d, training mode, affine */
    R_LN,        /* LayerNorm, affine */
    R_RELU,
    R_L2,        /* x / (||x|| + 1e-7) */
} rop;

typedef struct rstep {
    rop op;
    char name[32]; /* module name: "mlp_1.0" */
    int out;       /* output width of a Linear */
} rstep;

typedef enum hkind { H_SAMPLE = 0, H_ENCO_BN = 1, H_ENCO_LN = 2 } hkind;

static void step(rstep *s, int *ns, rop op, const char *fmt, int p, int out)
{
    s[*ns] = (rstep){op, "", out};
    if (fmt)
        snprintf(s[*ns].name, sizeof s[*ns].name, fmt, p);
    (*ns)++;
}

/* The head's layers, spelled out from the specs (not from the library's
 * layer list). query = 0: EnCo's key path (mlp_p then L2). */
static int head_steps(rstep *s, hkind kind, int p, int nc, int query)
{
    int ns = 0;
    if (kind == H_SAMPLE) { /* MODELS.md 0.4 */
        step(s, &ns, R_LIN_B, "mlp_%d.0", p, nc);
        step(s, &ns, R_RELU, NULL, p, 0);
        step(s, &ns, R_LIN_B, "mlp_%d.2", p, nc);
        step(s, &ns, R_L2, NULL, p, 0);
        return ns;
    }
    int ln = kind == H_ENCO_LN;
    step(s, &ns, R_LIN, "mlp_%d.0", p, nc);
    step(s, &ns, ln ? R_LN : R_BN_AFFINE, "mlp_%d.1", p, 0);
    step(s, &ns, R_RELU, NULL, p, 0);
    step(s, &ns, R_LIN, "mlp_%d.3", p, nc);
    step(s, &ns, ln ? R_LN : R_BN, "mlp_%d.4", p, 0);
    if (query) {
        step(s, &ns, R_LIN, "prj_%d.0", p, nc / 2);
        step(s, &ns, ln ? R_LN : R_BN_AFFINE, "prj_%d.1", p, 0);
        step(s, &ns, R_RELU, NULL, p, 0);
        step(s, &ns, R_LIN_B, "prj_%d.3", p, nc);
    }
    step(s, &ns, R_L2, NULL, p, 0);
    return ns;
}

/* Offset of "<module>.<suffix>", which must exist with shape (d0) or (d0, d1). */
static size_t param_off(const enco_param_set *ps, const char *module, const char *suffix,
                        int trainable, int64_t d0, int64_t d1)
{
    char nm[ENCO_PARAM_NAME_MAX];
    snprintf(nm, sizeof nm, "%s.%s", module, suffix);
    const enco_param *p = enco_params_find(ps, nm);
    ck_assert_msg(p != NULL, "parameter %s not declared", nm);
    ck_assert_msg(p->trainable == trainable, "%s trainable %d", nm, p->trainable);
    ck_assert_int_eq(p->ndim, d1 ? 2 : 1);
    ck_assert_msg(p->shape[0] == d0 && (!d1 || p->shape[1] == d1), "%s has the wrong shape", nm);
    return p->offset;
}

typedef struct ref_run {
    int nsteps;
    rstep s[16];
    double *act[17]; /* act[0]: gathered rows; act[i + 1]: output of step i */
    int width[17];
} ref_run;

/* Forward of one pass. B: the fixed buffers (running statistics updated in
 * place) or NULL (no update: for finite differences). */
static void ref_forward(ref_run *r, const enco_param_set *ps, const double *P, double *B,
                        const double *feat, const int32_t *idx, int n, int c, int h, int w, int k)
{
    size_t m = (size_t)n * k;
    r->width[0] = c;
    r->act[0] = malloc(m * c * sizeof(double));
    enco_patch_gather_forward_ref(r->act[0], feat, idx, (size_t)n, (size_t)c, (size_t)h,
                                  (size_t)w, (size_t)k);
    for (int i = 0; i < r->nsteps; i++) {
        const rstep *s = &r->s[i];
        int in = r->width[i], out = s->op == R_LIN || s->op == R_LIN_B ? s->out : in;
        const double *x = r->act[i];
        double *y = malloc(m * out * sizeof(double));
        switch (s->op) {
        case R_LIN:
        case R_LIN_B: {
            const double *b =
                s->op == R_LIN_B ? P + param_off(ps, s->name, "bias", 1, out, 0) : NULL;
            enco_linear_forward_ref(y, x, P + param_off(ps, s->name, "weight", 1, out, in), b, m,
                                    (size_t)in, (size_t)out);
            break;
        }
        case R_BN:
        case R_BN_AFFINE: {
            int aff = s->op == R_BN_AFFINE;
            size_t rm = param_off(ps, s->name, "running_mean", 0, in, 0);
            size_t rv = param_off(ps, s->name, "running_var", 0, in, 0);
            enco_batchnorm_forward_ref(y, NULL, NULL, B ? B + rm : NULL, B ? B + rv : NULL, x,
                                       aff ? P + param_off(ps, s->name, "weight", 1, in, 0) : NULL,
                                       aff ? P + param_off(ps, s->name, "bias", 1, in, 0) : NULL,
                                       (int)m, in, 0.1);
            break;
        }
        case R_LN:
            enco_layernorm_forward_ref(y, NULL, NULL, x,
                                       P + param_off(ps, s->name, "weight", 1, in, 0),
                                       P + param_off(ps, s->name, "bias", 1, in, 0), (int)m, in);
            break;
        case R_RELU:
            enco_relu_forward_ref(y, x, m * in);
            break;
        case R_L2:
            enco_l2norm_forward_ref(y, x, m, (size_t)in, (double)ENCO_L2NORM_EPS);
            break;
        }
        r->act[i + 1] = y;
        r->width[i + 1] = out;
    }
}

/* Backward from dy: parameter gradients accumulate into dP, the rows'
 * gradient is scattered into dfeat (accumulated). */
static void ref_backward(const ref_run *r, const enco_param_set *ps, const double *P,
                         const double *dy, double *dP, double *dfeat, const int32_t *idx, int n,
                         int c, int h, int w, int k)
{
    size_t m = (size_t)n * k;
    double *g = malloc(m * r->width[r->nsteps] * sizeof(double));
    memcpy(g, dy, m * r->width[r->nsteps] * sizeof(double));
    for (int i = r->nsteps - 1; i >= 0; i--) {
        const rstep *s = &r->s[i];
        int in = r->width[i], out = r->width[i + 1];
        const double *x = r->act[i];
        double *dx = malloc(m * in * sizeof(double));
        switch (s->op) {
        case R_LIN:
        case R_LIN_B: {
            size_t wo = param_off(ps, s->name, "weight", 1, out, in);
            double *db = s->op == R_LIN_B ? dP + param_off(ps, s->name, "bias", 1, out, 0) : NULL;
            enco_linear_backward_ref(dx, dP + wo, db, g, x, P + wo, m, (size_t)in, (size_t)out);
            break;
        }
        case R_BN:
            enco_batchnorm_backward_ref(dx, NULL, NULL, g, x, NULL, (int)m, in);
            break;
        case R_BN_AFFINE:
        case R_LN: {
            size_t wo = param_off(ps, s->name, "weight", 1, in, 0);
            size_t bo = param_off(ps, s->name, "bias", 1, in, 0);
            if (s->op == R_LN)
                enco_layernorm_backward_ref(dx, dP + wo, dP + bo, g, x, P + wo, (int)m, in);
            else
                enco_batchnorm_backward_ref(dx, dP + wo, dP + bo, g, x, P + wo, (int)m, in);
            break;
        }
        case R_RELU:
            enco_relu_backward_ref(dx, g, x, m * in);
            break;
        case R_L2:
            enco_l2norm_backward_ref(dx, g, x, m, (size_t)in, (double)ENCO_L2NORM_EPS);
            break;
        }
        free(g);
        g = dx;
    }
    enco_patch_gather_backward_ref(dfeat, g, idx, (size_t)n, (size_t)c, (size_t)h, (size_t)w,
                                   (size_t)k);
    free(g);
}

static void ref_free(ref_run *r)
{
    for (int i = 0; i <= r->nsteps; i++)
        free(r->act[i]);
    memset(r->act, 0, sizeof r->act);
}

/* ---- the cases --------------------------------------------------------------- */

#define NHEADS 2
#define NIMG 2
#define FH 3
#define FW 4
#define KP 4 /* patches per image */
#define NC 8

static const int cin_of[NHEADS] = {3, 6};

typedef struct fixture {
    hkind kind;
    enco_param_set ps;
    enco_heads h;
    size_t fsize[NHEADS];
    float *featq[NHEADS], *featk[NHEADS];
    double *featq_d[NHEADS], *featk_d[NHEADS];
    int32_t idx[NHEADS][NIMG * KP];
    cl_mem dfq[NHEADS], dfk[NHEADS], didx[NHEADS];
    double *P, *B; /* host copies of parameters and fixed buffers */
} fixture;

static double *widen(const float *x, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof(double));
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

/* Ids per image, with a repeat (the last patch repeats the first) and the
 * images at different positions. */
static void make_ids(int32_t *idx, int p)
{
    for (int i = 0; i < NIMG; i++)
        for (int j = 0; j < KP; j++)
            idx[i * KP + j] =
                j == KP - 1 ? idx[i * KP] : (int32_t)((5 * j + 3 * i + p) % (FH * FW));
}

/* Builds the heads with random parameters (biases and norm scales included)
 * and random feature maps. */
static void fixture_init(fixture *f, hkind kind)
{
    memset(f, 0, sizeof *f);
    f->kind = kind;
    enco_ctx *ctx = test_ctx();
    enco_params_init(&f->ps, "netF.");
    int max_rows = NIMG * KP + 3; /* passes run below their planned size */
    if (kind == H_SAMPLE)
        ENCO_CK(enco_heads_build_sample(&f->h, &f->ps, NHEADS, cin_of, NC, max_rows));
    else
        ENCO_CK(enco_heads_build(&f->h, &f->ps, kind == H_ENCO_LN ? ENCO_PRJ_LN : ENCO_PRJ_BN,
                                 NHEADS, cin_of, NC, max_rows));
    ENCO_CK(enco_params_alloc(ctx, &f->ps));
    ENCO_CK(enco_heads_alloc(ctx, &f->h));
    float *p = malloc(f->ps.n_params * sizeof(float));
    test_fill_uniform(p, f->ps.n_params, 7 + kind, -0.6f, 0.6f);
    ENCO_CK(enco_upload(ctx, f->ps.params, 0, f->ps.n_params * sizeof(float), p));
    f->P = widen(p, f->ps.n_params);
    /* Gradients start non-zero: the heads accumulate into them. */
    test_fill_uniform(p, f->ps.n_params, 8 + kind, -0.1f, 0.1f);
    ENCO_CK(enco_upload(ctx, f->ps.grads, 0, f->ps.n_params * sizeof(float), p));
    free(p);
    if (f->ps.n_buffers) {
        float *b = malloc(f->ps.n_buffers * sizeof(float));
        test_fill_uniform(b, f->ps.n_buffers, 9, 0.5f, 1.5f);
        ENCO_CK(enco_upload(ctx, f->ps.buffers, 0, f->ps.n_buffers * sizeof(float), b));
        f->B = widen(b, f->ps.n_buffers);
        free(b);
    }
    for (size_t i = 0; i < f->ps.ncounters; i++)
        f->ps.counters[i].value = 3;
    for (int q = 0; q < NHEADS; q++) {
        f->fsize[q] = (size_t)NIMG * cin_of[q] * FH * FW;
        f->featq[q] = malloc(f->fsize[q] * sizeof(float));
        f->featk[q] = malloc(f->fsize[q] * sizeof(float));
        test_fill_uniform(f->featq[q], f->fsize[q], 20 + q, -1, 1);
        test_fill_uniform(f->featk[q], f->fsize[q], 30 + q, -1, 1);
        f->featq_d[q] = widen(f->featq[q], f->fsize[q]);
        f->featk_d[q] = widen(f->featk[q], f->fsize[q]);
        f->dfq[q] = test_upload(f->featq[q], f->fsize[q]);
        f->dfk[q] = test_upload(f->featk[q], f->fsize[q]);
        make_ids(f->idx[q], q);
        f->didx[q] = test_alloc(NIMG * KP);
        ENCO_CK(enco_upload(ctx, f->didx[q], 0, sizeof f->idx[q], f->idx[q]));
    }
}

static void fixture_free(fixture *f)
{
    for (int q = 0; q < NHEADS; q++) {
        free(f->featq[q]), free(f->featk[q]), free(f->featq_d[q]), free(f->featk_d[q]);
        test_release(f->dfq[q]), test_release(f->dfk[q]), test_release(f->didx[q]);
    }
    enco_heads_free(test_ctx(), &f->h);
    enco_params_free(test_ctx(), &f->ps);
    free(f->P), free(f->B);
}

static void run_steps(ref_run *r, hkind kind, int p, int query)
{
    memset(r, 0, sizeof *r);
    r->nsteps = head_steps(r->s, kind, p, NC, query);
}

/* Tolerances. The heads are float32 chains of at most 10 layers of width
 * <= 8 over 8 rows, on values of order 1: each dot product or norm statistic
 * carries a relative error of a few 1e-7, and BatchNorm over 8 rows (and the
 * L2 normalisation) divides by statistics that can be well below 1,
 * amplifying it. The largest errors seen (PoCL and Intel) are 4e-7 absolute
 * on the outputs and under 1e-6 on the gradients; the tolerances below leave
 * a margin of 20x or more over that while any wrong layer, order, parameter,
 * momentum or index moves entries by 1e-2 or more (checked by breaking
 * each). Gradients pass through every layer twice (forward activations and
 * backward products): twice the forward's tolerance. */
#define FWD_ATOL 1e-5
#define FWD_RTOL 1e-4
#define BWD_ATOL 2e-5
#define BWD_RTOL 2e-4

/* ---- forward, running statistics, backward ----------------------------------- */

START_TEST(heads_match_reference)
{
    hkind kind = (hkind)_i;
    static const char *label[] = {"sample", "enco bn", "enco ln"};
    enco_ctx *ctx = test_ctx();
    fixture f;
    fixture_init(&f, kind);
    size_t rows = NIMG * KP;
    char what[96];

    /* Trainer order: every query, then every key. */
    ref_run rq[NHEADS], rk[NHEADS];
    for (int q = 0; q < NHEADS; q++) {
        ENCO_CK(enco_heads_forward(ctx, &f.h, q, 1, f.dfq[q], 0, f.didx[q], 0, NIMG, FH, FW, KP));
        run_steps(&rq[q], kind, q, 1);
        ref_forward(&rq[q], &f.ps, f.P, f.B, f.featq_d[q], f.idx[q], NIMG, cin_of[q], FH, FW, KP);
    }
    for (int q = 0; q < NHEADS; q++) {
        ENCO_CK(enco_heads_forward(ctx, &f.h, q, 0, f.dfk[q], 0, f.didx[q], 0, NIMG, FH, FW, KP));
        run_steps(&rk[q], kind, q, kind == H_SAMPLE); /* the sample head's key is its query */
        ref_forward(&rk[q], &f.ps, f.P, f.B, f.featk_d[q], f.idx[q], NIMG, cin_of[q], FH, FW, KP);
    }
    for (int q = 0; q < NHEADS; q++) {
        float *qo = test_download(f.h.query[q].out, rows * NC);
        float *ko = test_download(f.h.key[q].out, rows * NC);
        snprintf(what, sizeof what, "%s query %d", label[kind], q);
        test_assert_close(what, qo, rq[q].act[rq[q].nsteps], rows * NC, FWD_ATOL, FWD_RTOL);
        snprintf(what, sizeof what, "%s key %d", label[kind], q);
        test_assert_close(what, ko, rk[q].act[rk[q].nsteps], rows * NC, FWD_ATOL, FWD_RTOL);
        /* Rows are unit vectors (the L2 normalisation is the last layer). */
        double s = 0;
        for (int j = 0; j < NC; j++)
            s += (double)qo[j] * qo[j];
        ck_assert_msg(fabs(s - 1) < 1e-5, "query row norm^2 %g", s);
        free(qo), free(ko);
    }

    /* BatchNorm: running statistics after 2 (mlp) and 1 (prj) passes per
     * head; num_batches_tracked counts them. */
    if (kind == H_ENCO_BN) {
        float *b = test_download(f.ps.buffers, f.ps.n_buffers);
        snprintf(what, sizeof what, "%s running stats", label[kind]);
        test_assert_close(what, b, f.B, f.ps.n_buffers, FWD_ATOL, FWD_RTOL);
        free(b);
        ck_assert_int_eq((int)f.ps.ncounters, 3 * NHEADS);
        for (size_t i = 0; i < f.ps.ncounters; i++) {
            const char *nm = f.ps.counters[i].name;
            int64_t want = 3 + (strncmp(nm, "prj_", 4) == 0 ? 1 : 2);
            ck_assert_msg(f.ps.counters[i].value == want, "%s = %lld, want %lld", nm,
                          (long long)f.ps.counters[i].value, (long long)want);
        }
        /* mlp_p.1, mlp_p.4 (nc each), prj_p.1 (nc / 2): mean and var. */
        ck_assert_int_eq((int)f.ps.n_buffers, NHEADS * 5 * NC);
    } else {
        ck_assert_int_eq((int)f.ps.ncounters, 0);
        ck_assert_int_eq((int)f.ps.n_buffers, 0);
    }

    /* Backward of every query: gradients land on the preset ones, dfeat on
     * a preset map. */
    float *g0 = test_download(f.ps.grads, f.ps.n_params);
    double *dP = widen(g0, f.ps.n_params);
    free(g0);
    for (int q = 0; q < NHEADS; q++) {
        float *dq = malloc(rows * NC * sizeof(float)), *df0 = malloc(f.fsize[q] * sizeof(float));
        test_fill_uniform(dq, rows * NC, 40 + q, -1, 1);
        test_fill_uniform(df0, f.fsize[q], 50 + q, -0.5f, 0.5f);
        cl_mem ddq = test_upload(dq, rows * NC), ddf = test_upload(df0, f.fsize[q]);
        ENCO_CK(enco_heads_backward(ctx, &f.h, q, ddq, 0, ddf, 0, f.didx[q], 0, NIMG, FH, FW, KP));
        double *dq_d = widen(dq, rows * NC), *dfeat = widen(df0, f.fsize[q]);
        ref_backward(&rq[q], &f.ps, f.P, dq_d, dP, dfeat, f.idx[q], NIMG, cin_of[q], FH, FW, KP);
        float *got = test_download(ddf, f.fsize[q]);
        snprintf(what, sizeof what, "%s dfeat %d", label[kind], q);
        test_assert_close(what, got, dfeat, f.fsize[q], BWD_ATOL, BWD_RTOL);
        free(got), free(dq), free(df0), free(dq_d), free(dfeat);
        test_release(ddq), test_release(ddf);
    }
    float *g = test_download(f.ps.grads, f.ps.n_params);
    snprintf(what, sizeof what, "%s parameter grads", label[kind]);
    test_assert_close(what, g, dP, f.ps.n_params, BWD_ATOL, BWD_RTOL);
    free(g), free(dP);
    for (int q = 0; q < NHEADS; q++)
        ref_free(&rq[q]), ref_free(&rk[q]);
    fixture_free(&f);
}
END_TEST

/* ---- finite differences ------------------------------------------------------ */

/* L = sum(dq .* query_0(P, feat)) in float64, no running-statistics update. */
static double ref_loss(const fixture *f, const double *P, const double *feat, const double *dq)
{
    ref_run r;
    run_steps(&r, f->kind, 0, 1);
    ref_forward(&r, &f->ps, P, NULL, feat, f->idx[0], NIMG, cin_of[0], FH, FW, KP);
    double l = 0, *y = r.act[r.nsteps];
    for (size_t i = 0; i < (size_t)NIMG * KP * NC; i++)
        l += dq[i] * y[i];
    ref_free(&r);
    return l;
}

static size_t entry_of(const enco_param_set *ps, const char *name, size_t i)
{
    const enco_param *p = enco_params_find(ps, name);
    ck_assert_msg(p != NULL, "parameter %s not declared", name);
    ck_assert(i < p->numel);
    return p->offset + i;
}

START_TEST(gradients_match_finite_differences)
{
    hkind kind = (hkind)_i;
    enco_ctx *ctx = test_ctx();
    fixture f;
    fixture_init(&f, kind);
    ENCO_CK(enco_fill_zero(ctx, f.ps.grads, 0, f.ps.n_params * sizeof(float)));
    size_t rows = NIMG * KP, fs = f.fsize[0];
    float *dq = malloc(rows * NC * sizeof(float));
    test_fill_uniform(dq, rows * NC, 60, -1, 1);
    double *dq_d = widen(dq, rows * NC);

    /* Device gradients of head 0's query. */
    cl_mem ddq = test_upload(dq, rows * NC), ddf = test_alloc(fs);
    ENCO_CK(enco_fill_zero(ctx, ddf, 0, fs * sizeof(float)));
    ENCO_CK(enco_heads_forward(ctx, &f.h, 0, 1, f.dfq[0], 0, f.didx[0], 0, NIMG, FH, FW, KP));
    ENCO_CK(enco_heads_backward(ctx, &f.h, 0, ddq, 0, ddf, 0, f.didx[0], 0, NIMG, FH, FW, KP));
    float *g = test_download(f.ps.grads, f.ps.n_params), *df = test_download(ddf, fs);

    /* Reference gradients. */
    ref_run r;
    run_steps(&r, kind, 0, 1);
    ref_forward(&r, &f.ps, f.P, NULL, f.featq_d[0], f.idx[0], NIMG, cin_of[0], FH, FW, KP);
    double *dP = calloc(f.ps.n_params, sizeof(double)), *dfeat = calloc(fs, sizeof(double));
    ref_backward(&r, &f.ps, f.P, dq_d, dP, dfeat, f.idx[0], NIMG, cin_of[0], FH, FW, KP);
    ref_free(&r);

    /* A few parameters: first and last Linear, a norm scale and shift. */
    const char *last_bias = kind == H_SAMPLE ? "mlp_0.2.bias" : "prj_0.3.bias";
    size_t pe[4] = {entry_of(&f.ps, "mlp_0.0.weight", 5), entry_of(&f.ps, last_bias, 1), 0, 0};
    size_t npe = 2;
    if (kind != H_SAMPLE) {
        pe[npe++] = entry_of(&f.ps, "mlp_0.1.weight", 2);
        pe[npe++] = entry_of(&f.ps, "prj_0.1.bias", 1);
    }
    /* Central differences of the float64 forward: truncation error
     * ~ h^2 * f''' ~ 1e-10 and rounding ~ 1e-16 / h ~ 1e-11, so the
     * reference backward must agree to 1e-7 absolute; the device gradient
     * to the backward tolerance above. */
    const double h = 1e-5;
    double *P = malloc(f.ps.n_params * sizeof(double));
    memcpy(P, f.P, f.ps.n_params * sizeof(double));
    for (size_t e = 0; e < npe; e++) {
        size_t i = pe[e];
        P[i] = f.P[i] + h;
        double lp = ref_loss(&f, P, f.featq_d[0], dq_d);
        P[i] = f.P[i] - h;
        double lm = ref_loss(&f, P, f.featq_d[0], dq_d);
        P[i] = f.P[i];
        double fd = (lp - lm) / (2 * h);
        ck_assert_msg(fabs(fd - dP[i]) <= 1e-7 + 1e-6 * fabs(fd), "param %zu: fd %.9g ref %.9g",
                      i, fd, dP[i]);
        ck_assert_msg(fabs(g[i] - fd) <= BWD_ATOL + BWD_RTOL * fabs(fd),
                      "param %zu: device %.9g fd %.9g", i, (double)g[i], fd);
        ck_assert_msg(fabs(fd) > 1e-4, "param %zu: gradient %g too small to test", i, fd);
    }
    /* dfeat: image 0 channel 1 at the repeated id (two rows add up), image 1
     * channel 0 at its second id, and a position no patch samples (0). */
    int hw = FH * FW, unsampled = -1;
    for (int pos = 0; pos < hw && unsampled < 0; pos++) {
        int used = 0;
        for (int j = 0; j < KP; j++)
            used |= f.idx[0][j] == pos;
        if (!used)
            unsampled = pos;
    }
    ck_assert_int_ge(unsampled, 0);
    size_t fe[3] = {(size_t)(0 * cin_of[0] + 1) * hw + (size_t)f.idx[0][0],
                    (size_t)(1 * cin_of[0] + 0) * hw + (size_t)f.idx[0][KP + 1],
                    (size_t)(0 * cin_of[0] + 2) * hw + (size_t)unsampled};
    double *feat = malloc(fs * sizeof(double));
    memcpy(feat, f.featq_d[0], fs * sizeof(double));
    for (size_t e = 0; e < 3; e++) {
        size_t i = fe[e];
        feat[i] = f.featq_d[0][i] + h;
        double lp = ref_loss(&f, f.P, feat, dq_d);
        feat[i] = f.featq_d[0][i] - h;
        double lm = ref_loss(&f, f.P, feat, dq_d);
        feat[i] = f.featq_d[0][i];
        double fd = (lp - lm) / (2 * h);
        ck_assert_msg(fabs(fd - dfeat[i]) <= 1e-7 + 1e-6 * fabs(fd),
                      "dfeat %zu: fd %.9g ref %.9g", i, fd, dfeat[i]);
        ck_assert_msg(fabs(df[i] - fd) <= BWD_ATOL + BWD_RTOL * fabs(fd),
                      "dfeat %zu: device %.9g fd %.9g", i, (double)df[i], fd);
        if (e == 2)
            ck_assert_msg(df[i] == 0.0f && dfeat[i] == 0.0, "unsampled position got %g",
                          (double)df[i]);
        else
            ck_assert_msg(fabs(fd) > 1e-4, "dfeat %zu: gradient %g too small to test", i, fd);
    }
    free(P), free(feat), free(dP), free(dfeat), free(g), free(df), free(dq), free(dq_d);
    test_release(ddq), test_release(ddf);
    fixture_free(&f);
}
END_TEST

/* ---- declarations ------------------------------------------------------------- */

START_TEST(sample_head_declares_reference_names)
{
    enco_param_set ps;
    enco_heads h;
    enco_params_init(&ps, "netF.");
    const int cin[3] = {3, 128, 256};
    ENCO_CK(enco_heads_build_sample(&h, &ps, 3, cin, 256, 512));
    ck_assert_int_eq((int)ps.count, 12);
    ck_assert_int_eq((int)ps.ncounters, 0);
    size_t total = 0;
    for (int l = 0; l < 3; l++) {
        char nm[64];
        const struct {
            const char *fmt;
            int64_t d0, d1;
            enco_param_init init;
        } want[] = {{"mlp_%d.0.weight", 256, cin[l], ENCO_INIT_XAVIER},
                    {"mlp_%d.0.bias", 256, 0, ENCO_INIT_ZERO},
                    {"mlp_%d.2.weight", 256, 256, ENCO_INIT_XAVIER},
                    {"mlp_%d.2.bias", 256, 0, ENCO_INIT_ZERO}};
        for (int i = 0; i < 4; i++) {
            snprintf(nm, sizeof nm, want[i].fmt, l);
            const enco_param *p = &ps.list[l * 4 + i]; /* in the reference's order */
            ck_assert_str_eq(p->name, nm);
            ck_assert_int_eq(p->trainable, 1);
            ck_assert_int_eq((int)p->init, (int)want[i].init);
            ck_assert_int_eq(p->ndim, want[i].d1 ? 2 : 1);
            ck_assert(p->shape[0] == want[i].d0 && (!want[i].d1 || p->shape[1] == want[i].d1));
            total += p->numel;
        }
    }
    ck_assert_uint_eq(ps.n_params, total);
    ck_assert_int_eq(h.kind, ENCO_HEAD_SAMPLE);
    ck_assert_int_eq(h.nheads, 3);
    enco_params_free(NULL, &ps);
}
END_TEST

START_TEST(enco_head_declares_reference_names)
{
    /* The published layout, in declaration order (checkpoints and the
     * initialisation draws depend on it). */
    static const char *bn[] = {
        "mlp_0.0.weight",        "mlp_0.1.weight",      "mlp_0.1.bias",
        "mlp_0.1.running_mean",  "mlp_0.1.running_var", "mlp_0.3.weight",
        "mlp_0.4.running_mean",  "mlp_0.4.running_var", "prj_0.0.weight",
        "prj_0.1.weight",        "prj_0.1.bias",        "prj_0.1.running_mean",
        "prj_0.1.running_var",   "prj_0.3.weight",      "prj_0.3.bias"};
    static const char *ln[] = {"mlp_0.0.weight", "mlp_0.1.weight", "mlp_0.1.bias",
                               "mlp_0.3.weight", "mlp_0.4.weight", "mlp_0.4.bias",
                               "prj_0.0.weight", "prj_0.1.weight", "prj_0.1.bias",
                               "prj_0.3.weight", "prj_0.3.bias"};
    static const char *none[] = {"mlp_0.0.weight", "mlp_0.3.weight", "prj_0.0.weight",
                                 "prj_0.3.weight", "prj_0.3.bias"};
    const struct {
        enco_prj_norm norm;
        const char **names;
        size_t count, counters;
    } cases[] = {{ENCO_PRJ_BN, bn, 15, 3}, {ENCO_PRJ_LN, ln, 11, 0}, {ENCO_PRJ_NONE, none, 5, 0}};
    for (size_t c = 0; c < 3; c++) {
        enco_param_set ps;
        enco_heads h;
        enco_params_init(&ps, "netF.");
        ENCO_CK(enco_heads_build(&h, &ps, cases[c].norm, 1, (int[]){16}, 8, 4));
        ck_assert_uint_eq(ps.count, cases[c].count);
        ck_assert_uint_eq(ps.ncounters, cases[c].counters);
        for (size_t i = 0; i < ps.count; i++)
            ck_assert_str_eq(ps.list[i].name, cases[c].names[i]);
        if (cases[c].counters)
            ck_assert_str_eq(ps.counters[0].name, "mlp_0.1.num_batches_tracked");
        enco_params_free(NULL, &ps);
    }
}
END_TEST

/* ---- refusals ------------------------------------------------------------------ */

START_TEST(rejects_bad_use)
{
    enco_ctx *ctx = test_ctx();
    fixture f;
    fixture_init(&f, H_ENCO_BN);
    cl_mem dq = test_alloc(NIMG * KP * NC), df = test_alloc(f.fsize[0]);
    /* No query pass ran yet. */
    ck_assert_int_eq(
        enco_heads_backward(ctx, &f.h, 0, dq, 0, df, 0, f.didx[0], 0, NIMG, FH, FW, KP),
        ENCO_ERR_INVALID_ARG);
    /* More rows than planned, an unknown head. */
    ck_assert_int_eq(enco_heads_forward(ctx, &f.h, 0, 1, f.dfq[0], 0, f.didx[0], 0, NIMG, FH, FW,
                                        (NIMG * KP + 3) / NIMG + 1),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(
        enco_heads_forward(ctx, &f.h, NHEADS, 1, f.dfq[0], 0, f.didx[0], 0, NIMG, FH, FW, KP),
        ENCO_ERR_INVALID_ARG);
    /* A backward whose geometry is not the forward's; a key pass has none. */
    ENCO_CK(enco_heads_forward(ctx, &f.h, 0, 1, f.dfq[0], 0, f.didx[0], 0, NIMG, FH, FW, KP));
    ck_assert_int_eq(
        enco_heads_backward(ctx, &f.h, 0, dq, 0, df, 0, f.didx[0], 0, NIMG, FH, FW, KP - 1),
        ENCO_ERR_INVALID_ARG);
    ENCO_CK(enco_heads_forward(ctx, &f.h, 0, 0, f.dfk[0], 0, f.didx[0], 0, NIMG, FH, FW, KP));
    ck_assert_int_eq(enco_rownet_backward(ctx, &f.h.key[0], dq, 0, df, 0, f.didx[0], 0, NIMG, FH,
                                          FW, KP),
                     ENCO_ERR_INVALID_ARG);
    test_release(dq), test_release(df);
    fixture_free(&f);

    enco_param_set ps;
    enco_heads h;
    enco_params_init(&ps, "netF.");
    int cin[ENCO_MAX_HEADS + 1];
    for (int i = 0; i <= ENCO_MAX_HEADS; i++)
        cin[i] = 4;
    ck_assert_int_eq(enco_heads_build_sample(&h, &ps, ENCO_MAX_HEADS + 1, cin, 8, 4),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_heads_build_sample(&h, &ps, 2, (int[]){4, 0}, 8, 4),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_heads_build_sample(&h, &ps, 1, cin, 0, 4), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_heads_build(&h, &ps, ENCO_PRJ_BN, 1, cin, 8, 1), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_heads_build(&h, &ps, ENCO_PRJ_LN, 1, cin, 7, 4), ENCO_ERR_INVALID_ARG);
    enco_params_free(NULL, &ps);
    enco_params_init(&ps, "netF.");
    ENCO_CK(enco_heads_build_sample(&h, &ps, ENCO_MAX_HEADS, cin, 8, 4));
    enco_params_free(NULL, &ps);

    /* The row-network definition: a layer before init, a shared layer from
     * another parameter set, more layers than the limit. */
    enco_rownet net, other;
    enco_param_set ps2;
    enco_params_init(&ps, "netF.");
    enco_params_init(&ps2, "netX.");
    memset(&net, 0, sizeof net);
    ck_assert_int_eq(enco_rownet_relu(&net), ENCO_ERR_INVALID_ARG);
    ENCO_CK(enco_rownet_init(&net, &ps, 4));
    ENCO_CK(enco_rownet_init(&other, &ps2, 4));
    ENCO_CK(enco_rownet_linear(&other, "a", 4, 1));
    ck_assert_int_eq(enco_rownet_share(&net, &other, 1), ENCO_ERR_INVALID_ARG);
    for (int i = 1; i < ENCO_ROWNET_MAX_LAYERS; i++)
        ENCO_CK(enco_rownet_relu(&net));
    ck_assert_int_eq(enco_rownet_relu(&net), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_rownet_linear(&other, "a", 4, 1), ENCO_ERR_INVALID_ARG); /* twice */
    enco_params_free(NULL, &ps);
    enco_params_free(NULL, &ps2);
}
END_TEST

static Suite *heads_suite(void)
{
    Suite *s = suite_create("heads");
    TCase *tc = tcase_create("heads");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, heads_match_reference, H_SAMPLE, H_ENCO_LN + 1);
    tcase_add_loop_test(tc, gradients_match_finite_differences, H_SAMPLE, H_ENCO_LN + 1);
    tcase_add_test(tc, sample_head_declares_reference_names);
    tcase_add_test(tc, enco_head_declares_reference_names);
    tcase_add_test(tc, rejects_bad_use);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return test_run_suite(heads_suite()); }
