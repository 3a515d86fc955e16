/* Parity with the PyTorch twin (tools/reference): every fixture in
 * tests/fixtures holds a state (in.*) and what the twin's training step made
 * of it (out.*). One enco-cl step from the same state must agree on every
 * out.* tensor the twin wrote (the list is the fixture's, so an output
 * enco-cl lacks fails): images, D output, losses, patch ids, every gradient
 * and every updated weight and buffer; the trajectory fixture on five
 * iterations of losses, D outputs and patch ids, and on every weight, buffer
 * and Adam moment after them. Tolerances: tools/reference/README.md. */
#include "harness.h"
#include "models/family.h"
#include "train/stepio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIX ENCO_TEST_DATA "/../fixtures/"

/* Tolerances (tools/reference/README.md, "Tolerances to expect"). */
#define TOL_IMAGE 1e-5       /* fake_B, idt_B: abs */
#define TOL_PRED 1e-4        /* pred_fake: of its max (+ 1e-7) */
#define TOL_LOSS 1e-4        /* losses: relative */
#define TOL_GRAD 1e-3        /* grad.*: of the tensor's max */
#define TOL_NOISE 1e-4       /* IN-preceded biases: their |grad| (Adam moments: |m|, sqrt v) vs
                              * the largest of the layer's weight */
#define TOL_AFTER 0.05       /* after.* weights: of lr */
#define TOL_STATS_ABS 1e-5   /* BatchNorm running stats: abs + rel */
#define TOL_STATS_REL 1e-4
#define TOL_TRAJ_LOSS 1e-4   /* trajectory (5 iterations): losses, relative */
#define TOL_TRAJ_PRED 1e-4   /* D output of each iteration: of its max (+ 1e-7) */
#define TOL_TRAJ_AFTER 0.05  /* weights after 5 steps: of lr */
#define TOL_TRAJ_ADAM 1e-3   /* Adam moments m, v after 5 steps: of the tensor's max */

/* Worst value seen per kind of check, printed at the end. */
enum {
    W_IMAGE, W_PRED, W_LOSS, W_GRAD, W_NOISE, W_AFTER, W_ADAM_OWN, W_STATS,
    W_T_LOSS, W_T_PRED, W_T_AFTER, W_T_M, W_T_V, W_T_NOISE, W_T_STATS, W_COUNT
};
static struct {
    const char *what;
    double v;
    char where[200];
} W[W_COUNT] = {
    [W_IMAGE] = {"images, abs"},
    [W_PRED] = {"pred_fake, of max"},
    [W_LOSS] = {"losses, rel"},
    [W_GRAD] = {"gradients, of max"},
    [W_NOISE] = {"IN-preceded bias grads, of weight grads"},
    [W_AFTER] = {"updated weights, of lr"},
    [W_ADAM_OWN] = {"Adam step from own grads, of bound"},
    [W_STATS] = {"running stats, abs"},
    [W_T_LOSS] = {"trajectory losses, rel"},
    [W_T_PRED] = {"trajectory pred_fake, of max"},
    [W_T_AFTER] = {"trajectory weights, of lr"},
    [W_T_M] = {"trajectory adam_m, of max"},
    [W_T_V] = {"trajectory adam_v, of max"},
    [W_T_NOISE] = {"trajectory IN-bias moments, of weight's"},
    [W_T_STATS] = {"trajectory running stats, abs"},
};

static void note(int kind, double v, const char *fixture, const char *key)
{
    if (v > W[kind].v || W[kind].where[0] == '\0') {
        W[kind].v = fmax(W[kind].v, v);
        snprintf(W[kind].where, sizeof W[kind].where, "%s %s", fixture, key);
    }
}

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static const enco_st_tensor *need(const enco_st_file *f, const char *key)
{
    const enco_st_tensor *t = enco_st_find(f, key);
    ck_assert_msg(t != NULL, "missing %s", key);
    return t;
}

static double max_abs(const enco_st_tensor *t)
{
    double m = 0;
    for (size_t i = 0; i < enco_st_numel(t); i++)
        m = fmax(m, fabs(((const float *)t->data)[i]));
    return m;
}

/* max |a - b| over two float tensors of the same shape. */
static double max_diff(const enco_st_tensor *a, const enco_st_tensor *b, const char *what)
{
    ck_assert_msg(a->dtype == ENCO_DT_F32 && b->dtype == ENCO_DT_F32, "%s: dtype", what);
    ck_assert_msg(enco_st_numel(a) == enco_st_numel(b), "%s: %zu vs %zu elements", what,
                  enco_st_numel(a), enco_st_numel(b));
    double m = 0;
    for (size_t i = 0; i < enco_st_numel(a); i++) {
        double d = fabs((double)((const float *)a->data)[i] - ((const float *)b->data)[i]);
        if (isnan(d))
            d = INFINITY;
        m = fmax(m, d);
    }
    return m;
}

/* The DAG score of position pos in an fh x fw map of image b: the bilinear
 * (align_corners = False) resize of the twin's D output, in double (spec 4.1). */
static double dag_score(const enco_st_tensor *pred, int b, int fh, int fw, int64_t pos)
{
    int ph = (int)pred->shape[2], pw = (int)pred->shape[3];
    const float *d = (const float *)pred->data + (size_t)b * ph * pw;
    int y = (int)(pos / fw), x = (int)(pos % fw);
    double sy = fmax(0.0, ((double)y + 0.5) * ph / fh - 0.5);
    double sx = fmax(0.0, ((double)x + 0.5) * pw / fw - 0.5);
    int y0 = (int)sy, x0 = (int)sx;
    int y1 = y0 + (y0 < ph - 1), x1 = x0 + (x0 < pw - 1);
    double ly = sy - y0, lx = sx - x0;
    return (1 - ly) * ((1 - lx) * d[y0 * pw + x0] + lx * d[y0 * pw + x1]) +
           ly * ((1 - lx) * d[y1 * pw + x0] + lx * d[y1 * pw + x1]);
}

/* Patch ids against the twin's. exact: they must be equal. Otherwise (our own
 * DAG ranking of the twin's draws) a position may differ only where the two
 * picks are a near-tie: their scores, from the twin's D output, within 1e-5 of
 * its largest value (float32 score maps of the two engines differ by ~7e-6 of
 * it), so that ranking the same near-equal scores in another order is the
 * only way to get there. */
static void check_ids(const enco_st_tensor *a, const enco_st_tensor *b, const char *what,
                      int exact, const enco_st_tensor *pred, int fh, int fw)
{
    ck_assert_uint_eq(enco_st_numel(a), enco_st_numel(b));
    size_t n = enco_st_numel(a), bad = 0, per_image = a->ndim == 2 ? (size_t)a->shape[1] : n;
    double gap = 0, tol = exact ? 0 : 1e-5 * (max_abs(pred) + 1e-7);
    for (size_t i = 0; i < n; i++) {
        int64_t u = ((const int64_t *)a->data)[i], v = ((const int64_t *)b->data)[i];
        if (u == v)
            continue;
        bad++;
        if (!exact) {
            int img = (int)(i / per_image);
            gap = fmax(gap, fabs(dag_score(pred, img, fh, fw, u) -
                                     dag_score(pred, img, fh, fw, v)));
        }
    }
    printf("ids %s: %zu of %zu differ", what, bad, n);
    if (!exact)
        printf(", largest score gap between differing picks %.3g (tie tolerance %.3g)", gap, tol);
    printf("\n");
    if (exact)
        ck_assert_msg(bad == 0, "%s: %zu indices differ", what, bad);
    else
        ck_assert_msg(gap <= tol, "%s: %zu of %zu indices differ, score gap %g > %g", what, bad,
                      n, gap, tol);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Conv biases that feed an InstanceNorm: their true gradient is 0, so both
 * engines produce rounding noise there (tools/reference/README.md), unless
 * the conv's output is itself a feature of the loss (CUT's layers 4 and 8). */
static int bias_before_norm(const enco_trainer *t, const char *name)
{
    for (int k = 0; k < t->nnets; k++) {
        const enco_seqnet *net = t->netdef[k];
        const enco_param_set *set = &t->nets[k];
        size_t plen = strlen(set->prefix);
        if (!net || strncmp(name, set->prefix, plen) != 0)
            continue;
        for (size_t i = 0; i + 1 < net->nlayers; i++) {
            const enco_layer *l = &net->layers[i];
            if (l->bias >= 0 && net->layers[i + 1].kind == ENCO_L_INORM &&
                strcmp(set->list[l->bias].name, name + plen) == 0)
                return !(t->loss_feature_net[k] && l->module >= 0 &&
                         enco_trainer_loss_feature(t, l->module));
        }
    }
    return 0;
}

/* The base learning rate of the net a parameter name belongs to. */
static double lr_of(const enco_trainer *t, const char *name)
{
    for (int i = 0; i < t->nnets; i++)
        if (starts(name, t->nets[i].prefix))
            return t->net_lr[i];
    ck_abort_msg("%s belongs to no net of the model", name);
    return 0;
}

/* The largest |after - twin's after| of a weight over its elements, but for
 * those where the two gradients agree within the gradient tolerance
 * (|g - g_twin| <= TOL_GRAD * max |g_twin|) and still give Adam's first step
 * lr * g / (|g| + eps) sizes more than TOL_AFTER / 2 lr apart: gradients near
 * zero, whose sign (or, near eps, size) rounding decides, so that the updates
 * differ by up to 2 lr while the gradients agree (checked by grad.*; the step
 * by check_own_adam_step). Such elements are counted, at most one in a
 * thousand. */
static double after_diff(const enco_st_tensor *mine, const enco_st_tensor *ref,
                         const enco_st_tensor *g, const enco_st_tensor *gref, const char *fixture,
                         const char *key)
{
    size_t n = enco_st_numel(ref), flipped = 0;
    ck_assert_uint_eq(enco_st_numel(mine), n);
    ck_assert_uint_eq(enco_st_numel(g), n);
    ck_assert_uint_eq(enco_st_numel(gref), n);
    const float *a = mine->data, *b = ref->data, *ga = g->data, *gb = gref->data;
    double tol = TOL_GRAD * max_abs(gref), d = 0;
    for (size_t i = 0; i < n; i++) {
        const double eps = 1e-8, sa = ga[i] / (fabs((double)ga[i]) + eps),
                     sb = gb[i] / (fabs((double)gb[i]) + eps);
        if (fabs(sa - sb) > 0.5 * TOL_AFTER && fabs((double)ga[i] - gb[i]) <= tol) {
            flipped++;
            continue;
        }
        d = fmax(d, fabs((double)a[i] - b[i]));
    }
    if (flipped)
        printf("%s %s: %zu element(s) whose near-zero gradient rounding decides, not compared\n",
               fixture, key, flipped);
    ck_assert_msg(flipped * 1000 <= n + 1000, "%s %s: %zu of %zu near-zero gradients decided by rounding",
                  fixture, key, flipped, n);
    return d;
}

static double scalar(const enco_st_tensor *t)
{
    ck_assert_msg(t->dtype == ENCO_DT_F32 && enco_st_numel(t) == 1, "%s is not a scalar",
                  t->name);
    return *(const float *)t->data;
}

static void check_i64_equal(const enco_st_tensor *a, const enco_st_tensor *b, const char *fixture,
                            const char *key)
{
    ck_assert_msg(a->dtype == ENCO_DT_I64 && b->dtype == ENCO_DT_I64, "%s %s: dtype", fixture,
                  key);
    ck_assert_uint_eq(enco_st_numel(a), enco_st_numel(b));
    ck_assert_msg(memcmp(a->data, b->data, a->nbytes) == 0, "%s %s differs (first %lld vs %lld)",
                  fixture, key, (long long)*(const int64_t *)a->data,
                  (long long)*(const int64_t *)b->data);
}

/* A loss, relative to the twin's. */
static void check_loss(const enco_st_tensor *mine, const enco_st_tensor *ref, int kind,
                       double tol, const char *fixture, const char *key)
{
    double got = scalar(mine), want = scalar(ref);
    double rel = fabs(got - want) / fmax(fabs(want), 1e-6);
    note(kind, rel, fixture, key);
    ck_assert_msg(rel <= tol, "%s %s: enco-cl %.7g, twin %.7g (rel %.3g > %g)", fixture, key, got,
                  want, rel, tol);
}

/* A D output, relative to its largest value. */
static void check_pred(const enco_st_tensor *mine, const enco_st_tensor *ref, int kind,
                       double tol, const char *fixture, const char *key)
{
    double d = max_diff(mine, ref, key), m = max_abs(ref);
    note(kind, d / (m + 1e-30), fixture, key);
    ck_assert_msg(d <= tol * m + 1e-7, "%s %s: max diff %g (max %g)", fixture, key, d, m);
}

/* A BatchNorm running statistic. */
static void check_stats(const enco_st_tensor *mine, const enco_st_tensor *ref, int kind,
                        const char *fixture, const char *key)
{
    double d = max_diff(mine, ref, key);
    note(kind, d, fixture, key);
    ck_assert_msg(d <= TOL_STATS_ABS + TOL_STATS_REL * max_abs(ref), "%s %s: %g", fixture, key,
                  d);
}

/* The largest |x| of the tensor named like `name` with its trailing "bias"
 * replaced by "weight", in f under key_prefix. */
static double weight_max(const enco_st_file *f, const char *key_prefix, const char *name)
{
    char wkey[256];
    snprintf(wkey, sizeof wkey, "%s%.*sweight", key_prefix, (int)(strlen(name) - 4), name);
    return max_abs(need(f, wkey));
}

/* Adam's first step from enco-cl's own gradient: after = in - lr g/(|g|+eps)
 * per element, within float32 rounding (of the quotient, about 1e-6 of lr,
 * and of the weight it lands on). For every parameter, including the
 * IN-preceded biases whose gradient is noise and whose update is therefore
 * anything in [-lr, lr]: this is the check that can fail for them. */
static void check_own_adam_step(const enco_st_tensor *after, const enco_st_tensor *in,
                                const enco_st_tensor *grad, double lr, double eps,
                                const char *fixture, const char *key)
{
    ck_assert_uint_eq(enco_st_numel(after), enco_st_numel(in));
    ck_assert_uint_eq(enco_st_numel(after), enco_st_numel(grad));
    const float *a = after->data, *w = in->data, *g = grad->data;
    for (size_t i = 0; i < enco_st_numel(after); i++) {
        double want = w[i] - lr * g[i] / (fabs(g[i]) + eps);
        double tol = 1e-6 * lr + 1.2e-7 * fmax(fabs(w[i]), fabs(a[i]));
        double d = fabs(a[i] - want);
        note(W_ADAM_OWN, d / tol, fixture, key);
        ck_assert_msg(d <= tol,
                      "%s %s[%zu]: %.9g -> %.9g, but Adam's first step with enco-cl's gradient "
                      "%.6g gives %.9g",
                      fixture, key, i, w[i], a[i], g[i], want);
    }
}

/* Keys of the fixture that enco-cl does not write: the D step's outputs
 * (overwritten by the G step's D pass; their mean squares are loss.D), the
 * twin's seed-health diagnostic, and CycleGAN's pool draws, which the twin
 * echoes from its inputs (given to enco-cl as they are; what they did is
 * checked through pool.A, pool.B and the D losses). */
static int not_produced(const char *k)
{
    return strcmp(k, "pred_fake_D") == 0 || strcmp(k, "pred_real") == 0 || starts(k, "diag.") ||
           starts(k, "pool_u.") || starts(k, "pool_id.");
}

/* Images of a step: the translations, the two-generator families' cycle and identity images
 * and its image pools after the step. */
static int is_image(const char *k)
{
    static const char *const names[] = {"fake_B", "idt_B",  "fake_A",     "idt_A",     "rec_A",
                                        "rec_B",  "pool.A", "pool.B", "pool_out.A", "pool_out.B"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(k, names[i]) == 0)
            return 1;
    return 0;
}

static void check_step(const char *name, int use_dag_draws)
{
    char path[512];
    snprintf(path, sizeof path, FIX "%s.cfg", name);
    enco_config cfg;
    enco_config_defaults(&cfg);
    ENCO_CK(enco_config_load(&cfg, path));
    snprintf(path, sizeof path, FIX "%s.safetensors", name);
    enco_st_file *f = NULL;
    ENCO_CK(enco_st_read(path, &f));
    /* the own-gradient Adam check assumes a fresh optimiser */
    ck_assert_ptr_null(enco_st_find(f, "in.adam_step.netG"));
    enco_st_file *out = enco_st_new();
    enco_trainer *t = NULL;
    ENCO_CK(enco_step_from_state(test_ctx(), &cfg, f, "in.", use_dag_draws, out, &t));
    /* the D output (a single-D family's) that the DAG's ranking read */
    const enco_st_tensor *pref = enco_st_find(f, "out.pred_fake");
    char key[256];
    int checked = 0, skipped = 0;
    for (size_t i = 0; i < f->count; i++) {
        const char *fk = f->tensors[i].name;
        if (!starts(fk, "out."))
            continue;
        const char *k = fk + 4;
        const enco_st_tensor *ref = &f->tensors[i];
        if (not_produced(k)) {
            skipped++;
            continue;
        }
        /* With the twin's DAG draws only the sampling and what follows from
         * it are under test; the gradients are those of fixture_steps. */
        if (use_dag_draws && (starts(k, "grad.") || starts(k, "after.")))
            continue;
        const enco_st_tensor *mine = need(out, k);
        checked++;
        if (is_image(k)) {
            double d = max_diff(mine, ref, fk);
            note(W_IMAGE, d, name, k);
            ck_assert_msg(d <= TOL_IMAGE, "%s %s: max abs diff %g", name, k, d);
        } else if (strcmp(k, "pred_fake") == 0) {
            check_pred(mine, ref, W_PRED, TOL_PRED, name, k);
        } else if (starts(k, "loss.")) {
            printf("%s %s: enco-cl %.7g twin %.7g\n", name, k, scalar(mine), scalar(ref));
            check_loss(mine, ref, W_LOSS, TOL_LOSS, name, k);
        } else if (starts(k, "patch_ids.")) {
            int p = atoi(k + 10);
            ck_assert_int_lt(p, t->npairs);
            if (use_dag_draws) /* our ranking reads the twin's D output */
                ck_assert_ptr_nonnull(pref);
            check_ids(mine, ref, fk, !use_dag_draws, pref, t->fh[p], t->fw[p]);
        } else if (starts(k, "patch_ids_Y.") || starts(k, "patch_ids_2.") || strcmp(k, "flipped") == 0) {
            check_i64_equal(mine, ref, name, k); /* CUT's draws, given */
        } else if (starts(k, "grad.")) {
            const char *pname = k + 5;
            if (bias_before_norm(t, pname)) {
                /* true gradient 0: compare with the layer's weight gradients */
                double wm = weight_max(f, "out.grad.", pname);
                note(W_NOISE, max_abs(mine) / wm, name, k);
                ck_assert_msg(max_abs(mine) <= TOL_NOISE * wm, "%s %s: %g (weight grads %g)",
                              name, k, max_abs(mine), wm);
                continue;
            }
            double d = max_diff(mine, ref, fk), m = max_abs(ref);
            note(W_GRAD, d / (m + 1e-30), name, k);
            ck_assert_msg(d <= TOL_GRAD * m + 1e-9, "%s %s: max diff %g, max %g", name, k, d, m);
        } else if (starts(k, "after.")) {
            const char *pname = k + 6;
            if (ref->dtype == ENCO_DT_I64) {
                check_i64_equal(mine, ref, name, k);
            } else if (ends_with(pname, ".filt")) {
                ck_assert_msg(max_diff(mine, ref, fk) == 0, "%s %s changed", name, k);
            } else if (ends_with(pname, "running_mean") || ends_with(pname, "running_var")) {
                check_stats(mine, ref, W_STATS, name, k);
            } else {
                double lr = lr_of(t, pname);
                snprintf(key, sizeof key, "in.%s", pname);
                const enco_st_tensor *in = need(f, key);
                snprintf(key, sizeof key, "grad.%s", pname);
                check_own_adam_step(mine, in, need(out, key), lr, cfg.train.eps, name, k);
                if (bias_before_norm(t, pname))
                    continue; /* noise turned into steps of up to lr: no agreement */
                snprintf(key, sizeof key, "out.grad.%s", pname);
                double d = after_diff(mine, ref, need(out, key + 4), need(f, key), name, k);
                note(W_AFTER, d / lr, name, k);
                ck_assert_msg(d <= TOL_AFTER * lr, "%s %s: %g (limit %g)", name, k, d,
                              TOL_AFTER * lr);
            }
        } else {
            ck_abort_msg("%s: the fixture's %s is not checked by this test", name, fk);
        }
    }
    printf("%s: %d of the fixture's outputs compared, %d not produced by enco-cl\n", name,
           checked, skipped);
    ck_assert_int_gt(checked, use_dag_draws ? 10 : 20);
    enco_trainer_free(t);
    enco_st_free(out);
    enco_st_free(f);
}

START_TEST(fixture_steps)
{
    static const char *names[] = {"b1_bn_dag",      "b2_bn_dag_48x64",       "b1_ln_random",
                                  "b1_none_dagdesc_noidt", "b2_bn_noaa_k256", "b1_bn_dag_9blk",
                                  /* model.family = "cut" / "fastcut" */
                                  "cut_b1",    "cut_b2",       "cut_b2_allneg",
                                  "cut_9blk",  "fastcut_flip", "fastcut_noflip",
                                  /* "cyclegan" */
                                  "cyclegan_b1", "cyclegan_b2_pool", "cyclegan_cpu_noidt",
                                  /* "dclgan" */
                                  "dclgan_b1", "dclgan_b2"};
    check_step(names[_i], 0);
}
END_TEST

START_TEST(own_dag_ranking)
{
    /* The same steps with the twin's raw DAG draws: our score map and ranking
     * must pick the indices the twin picked. */
    static const char *names[] = {"b1_bn_dag", "b2_bn_dag_48x64", "b1_none_dagdesc_noidt"};
    check_step(names[_i], 1);
}
END_TEST

/* The trajectory fixture's iteration-0 state: inputs of iteration 0 and the
 * weights, all under in. (the fixture's own names). */
static enco_st_file *traj_state(const enco_st_file *f)
{
    enco_st_file *state = enco_st_new();
    ck_assert_ptr_nonnull(state);
    for (size_t i = 0; i < f->count; i++) {
        const enco_st_tensor *x = &f->tensors[i];
        char key[256];
        if (starts(x->name, "in.iter0."))
            snprintf(key, sizeof key, "in.%s", x->name + 9);
        else if (starts(x->name, "in.net") || starts(x->name, "in.pool."))
            snprintf(key, sizeof key, "%s", x->name);
        else
            continue;
        ENCO_CK(enco_st_add(state, key, x->dtype, x->ndim, x->shape, x->data));
    }
    return state;
}

/* One trajectory output: an iteration's (iter<t>.*) or the final state's. */
static void check_traj_key(const char *name, const enco_trainer *t, const enco_st_file *f,
                           const enco_st_tensor *ref, const enco_st_file *out,
                           const enco_st_file *fin, double adam_tol, double after_tol,
                           int *checked)
{
    const char *fk = ref->name, *k = fk + 4;
    if (starts(k, "iter")) {
        char *end = NULL;
        long it = strtol(k + 4, &end, 10);
        ck_assert_msg(end && *end == '.', "%s: no iteration number", fk);
        const char *rest = end + 1;
        if (not_produced(rest))
            return;
        /* iteration 0 is enco_step_from_state's, written without a prefix */
        const enco_st_tensor *mine = need(out, it == 0 ? rest : k);
        (*checked)++;
        if (starts(rest, "loss."))
            check_loss(mine, ref, W_T_LOSS, TOL_TRAJ_LOSS, name, k);
        else if (starts(rest, "patch_ids.") || starts(rest, "patch_ids_Y.") ||
                 starts(rest, "patch_ids_2.") ||
                 strcmp(rest, "flipped") == 0) /* given: used as they are */
            check_i64_equal(mine, ref, name, k);
        else if (strcmp(rest, "pred_fake") == 0)
            check_pred(mine, ref, W_T_PRED, TOL_TRAJ_PRED, name, k);
        else if (is_image(rest)) { /* CycleGAN: what D was shown, per iteration */
            double d = max_diff(mine, ref, fk);
            note(W_T_PRED, d, name, k);
            ck_assert_msg(d <= TOL_IMAGE, "%s %s: max abs diff %g", name, k, d);
        }
        else
            ck_abort_msg("%s: the fixture's %s is not checked by this test", name, fk);
        return;
    }
    const enco_st_tensor *mine = need(fin, k);
    (*checked)++;
    if (is_image(k)) { /* CycleGAN's pools after the last iteration */
        double d = max_diff(mine, ref, fk);
        note(W_T_PRED, d, name, k);
        ck_assert_msg(d <= TOL_IMAGE, "%s %s: max abs diff %g", name, k, d);
    } else if (starts(k, "adam_step.")) {
        check_i64_equal(mine, ref, name, k);
    } else if (starts(k, "adam_m.") || starts(k, "adam_v.")) {
        const char *pname = k + 7;
        int is_v = k[5] == 'v';
        if (bias_before_norm(t, pname)) {
            /* sums of noise gradients: compared with the layer's weight's
             * moments (sqrt v, a gradient scale) */
            char pre[16];
            snprintf(pre, sizeof pre, "adam_%c.", k[5]);
            double own = max_abs(mine), wm = weight_max(fin, pre, pname);
            double r = is_v ? sqrt(own / wm) : own / wm;
            note(W_T_NOISE, r, name, k);
            ck_assert_msg(r <= TOL_NOISE, "%s %s: %g (the weight's %g)", name, k, own, wm);
            return;
        }
        double d = max_diff(mine, ref, fk), m = max_abs(ref);
        note(is_v ? W_T_V : W_T_M, d / (m + 1e-30), name, k);
        ck_assert_msg(d <= adam_tol * m, "%s %s: max diff %g, max %g", name, k, d, m);
    } else if (starts(k, "after.")) {
        const char *pname = k + 6;
        if (ref->dtype == ENCO_DT_I64) {
            check_i64_equal(mine, ref, name, k);
        } else if (ends_with(pname, ".filt")) {
            ck_assert_msg(max_diff(mine, ref, fk) == 0, "%s %s changed", name, k);
        } else if (ends_with(pname, "running_mean") || ends_with(pname, "running_var")) {
            check_stats(mine, ref, W_T_STATS, name, k);
        } else if (bias_before_norm(t, pname)) {
            /* five Adam steps of noise (checked through its moments above) */
            (*checked)--;
        } else {
            double lr = lr_of(t, pname), d = max_diff(mine, ref, fk);
            note(W_T_AFTER, d / lr, name, k);
            ck_assert_msg(d <= after_tol * lr, "%s %s: %g (limit %g)", name, k, d,
                          after_tol * lr);
        }
    } else {
        ck_abort_msg("%s: the fixture's %s is not checked by this test", name, fk);
    }
    (void)f;
}

START_TEST(trajectory)
{
    /* EnCo over 5 iterations, CUT over 3 (with NCE_Y, ids given) */
    static const struct {
        const char *name;
        int iters, min_checked;
        double adam_tol, after_tol;
    } cases[] = {{"traj5_b1_bn_dag", 5, 250, TOL_TRAJ_ADAM, TOL_TRAJ_AFTER},
                 /* The twin's own float32 step drifts from its float64 one by 1.3e-3 of the
                  * max on adam_m and 3.7e-2 lr on the weights after 3 steps of this seed
                  * (tools/reference/README.md): 10 and 2 times the EnCo limits. */
                 {"traj3_cut", 3, 150, 10 * TOL_TRAJ_ADAM, 2 * TOL_TRAJ_AFTER},
                 /* CycleGAN: the pools fill, then swap; four nets' Adam carried */
                 {"traj3_cyclegan", 3, 150, TOL_TRAJ_ADAM, TOL_TRAJ_AFTER},
                 {"traj3_dclgan", 3, 150, TOL_TRAJ_ADAM, TOL_TRAJ_AFTER}};
    const char *name = cases[_i].name;
    char path[256];
    enco_config cfg;
    enco_config_defaults(&cfg);
    snprintf(path, sizeof path, FIX "%s.cfg", name);
    ENCO_CK(enco_config_load(&cfg, path));
    enco_st_file *f = NULL;
    snprintf(path, sizeof path, FIX "%s.safetensors", name);
    ENCO_CK(enco_st_read(path, &f));
    /* The iteration inputs live under in.iter<t>.; weights under in. */
    enco_st_file *state = traj_state(f);
    int iters = 0;
    for (size_t i = 0; i < f->count; i++)
        if (starts(f->tensors[i].name, "in.iter") && strstr(f->tensors[i].name, ".real_A"))
            iters++;
    ck_assert_int_eq(iters, cases[_i].iters);
    enco_st_file *out = enco_st_new(), *fin = enco_st_new();
    enco_trainer *t = NULL;
    ENCO_CK(enco_step_from_state(test_ctx(), &cfg, state, "in.", 0, out, &t));
    for (int it = 1; it < iters; it++) {
        char pre[32], opre[32];
        snprintf(pre, sizeof pre, "in.iter%d.", it);
        snprintf(opre, sizeof opre, "iter%d.", it);
        ENCO_CK(enco_step_again(t, f, pre, 0, out, opre));
    }
    for (int i = 0; i < t->nnets; i++)
        ENCO_CK(enco_params_save(test_ctx(), &t->nets[i], fin, "after."));
    ENCO_CK(enco_step_save_adam(t, fin, ""));
    if (t->family->save_state)
        ENCO_CK(t->family->save_state(t, fin, ""));
    int checked = 0;
    for (size_t i = 0; i < f->count; i++)
        if (starts(f->tensors[i].name, "out."))
            check_traj_key(name, t, f, &f->tensors[i], out, fin, cases[_i].adam_tol,
                           cases[_i].after_tol, &checked);
    printf("trajectory %s: %d of the fixture's outputs compared\n", name, checked);
    /* per iteration its losses, ids and pred_fake, then after.*, m, v */
    ck_assert_int_gt(checked, cases[_i].min_checked);
    enco_trainer_free(t);
    enco_st_free(fin);
    enco_st_free(out);
    enco_st_free(state);
    enco_st_free(f);
}
END_TEST

/* A state as `enco-cl step` reads it, made of iteration 1's inputs (the
 * fixture's in.iter1.*), the weights after step 0 (after.* of step0) and the
 * Adam state after it (adam_* of adam). Changes for the refusal cases: drop
 * leaves that tensor out, flat writes it 1-D, step (>= 0) replaces
 * adam_step.netG. */
static enco_st_file *continued_state(const enco_st_file *f, const enco_st_file *step0,
                                     const enco_st_file *adam, const char *drop, const char *flat,
                                     int64_t step)
{
    enco_st_file *s = enco_st_new();
    ck_assert_ptr_nonnull(s);
    const enco_st_file *src[] = {f, step0, adam};
    const char *pre[] = {"in.iter1.", "after.", "adam_"};
    for (int j = 0; j < 3; j++)
        for (size_t i = 0; i < src[j]->count; i++) {
            const enco_st_tensor *x = &src[j]->tensors[i];
            if (!starts(x->name, pre[j]))
                continue;
            const char *key = j == 2 ? x->name : x->name + strlen(pre[j]);
            if (drop && strcmp(key, drop) == 0)
                continue;
            const void *data = x->data;
            if (step >= 0 && strcmp(key, "adam_step.netG") == 0)
                data = &step;
            int64_t numel = (int64_t)enco_st_numel(x);
            if (flat && strcmp(key, flat) == 0)
                ENCO_CK(enco_st_add(s, key, x->dtype, 1, &numel, data));
            else
                ENCO_CK(enco_st_add(s, key, x->dtype, x->ndim, x->shape, data));
        }
    return s;
}

static void check_bitwise(const enco_st_file *a, const enco_st_file *b, const char *key)
{
    const enco_st_tensor *x = need(a, key), *y = need(b, key);
    ck_assert_msg(x->dtype == y->dtype && x->ndim == y->ndim &&
                      enco_st_numel(x) == enco_st_numel(y),
                  "%s: dtype or shape differs", key);
    ck_assert_msg(memcmp(x->data, y->data, enco_st_numel(x) * enco_dtype_size(x->dtype)) == 0,
                  "%s differs between the resumed and the uninterrupted step", key);
}

static void refuse(const enco_config *cfg, enco_st_file *state, const char *needle)
{
    enco_st_file *out = enco_st_new();
    enco_status st = enco_step_from_state(test_ctx(), cfg, state, "", 0, out, NULL);
    ck_assert_msg(st != ENCO_OK, "a state that should be refused (%s) was taken", needle);
    ck_assert_msg(strstr(enco_last_error(), needle) != NULL, "error '%s' does not name %s",
                  enco_last_error(), needle);
    printf("refused: %s\n", enco_last_error());
    enco_st_free(out);
    enco_st_free(state);
}

/* cyclegan_b2_pool's state (in.* without the prefix) with tensor `key`
 * dropped or replaced by (dtype, ndim, shape, data). */
static enco_st_file *pool_state(const enco_st_file *f, const char *key, enco_dtype dt, int ndim,
                                const int64_t *shape, const void *data)
{
    enco_st_file *s = enco_st_new();
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < f->count; i++) {
        const enco_st_tensor *x = &f->tensors[i];
        if (!starts(x->name, "in.") || strcmp(x->name + 3, key) == 0)
            continue;
        ENCO_CK(enco_st_add(s, x->name + 3, x->dtype, x->ndim, x->shape, x->data));
    }
    if (data)
        ENCO_CK(enco_st_add(s, key, dt, ndim, shape, data));
    return s;
}

/* CycleGAN's pool inputs of `step`: each bad one is refused, naming it. */
START_TEST(pool_inputs_refused)
{
    enco_config cfg;
    enco_config_defaults(&cfg);
    ENCO_CK(enco_config_load(&cfg, FIX "cyclegan_b2_pool.cfg"));
    enco_st_file *f = NULL;
    ENCO_CK(enco_st_read(FIX "cyclegan_b2_pool.safetensors", &f));
    /* the fixture swaps image 0 of the full fake_B pool (pool_size 3) */
    ck_assert(((const float *)need(f, "in.pool_u.B")->data)[0] > 0.5f);
    const float u_bad[2] = {1.5f, 0.2f};
    refuse(&cfg, pool_state(f, "pool_u.B", ENCO_DT_F32, 1, (int64_t[]){2}, u_bad),
           "pool_u.B[0] = 1.5 is not in [0, 1]");
    const int64_t id_bad[2] = {7, 0};
    refuse(&cfg, pool_state(f, "pool_id.B", ENCO_DT_I64, 1, (int64_t[]){2}, id_bad),
           "pool_id.B[0] = 7: the pool holds images 0 to 2");
    refuse(&cfg, pool_state(f, "pool_id.B", ENCO_DT_I64, 0, NULL, NULL), "no pool_id.B was given");
    const float u_short[1] = {0.9f};
    refuse(&cfg, pool_state(f, "pool_u.A", ENCO_DT_F32, 1, (int64_t[]){1}, u_short), "pool_u.A");
    const int64_t id_f[2] = {0, 0};
    refuse(&cfg, pool_state(f, "pool_id.A", ENCO_DT_F32, 1, (int64_t[]){2}, id_f),
           "pool_id.A must be int64");
    const enco_st_tensor *pb = need(f, "in.pool.B");
    size_t img = enco_st_numel(pb) / (size_t)pb->shape[0];
    float *four = calloc(4 * img, sizeof *four);
    ck_assert_ptr_nonnull(four);
    refuse(&cfg,
           pool_state(f, "pool.B", ENCO_DT_F32, 4,
                      (int64_t[]){4, pb->shape[1], pb->shape[2], pb->shape[3]}, four),
           "count at most cyclegan.pool_size = 3");
    free(four);
    enco_st_free(f);
    /* each generator reads the other's output: the channels must agree */
    const char *fams[] = {"cyclegan", "dclgan"};
    for (int i = 0; i < 2; i++) {
        enco_config c = cfg;
        snprintf(c.model.family, sizeof c.model.family, "%s", fams[i]);
        c.model.input_nc = 1;
        enco_trainer *t = NULL;
        ck_assert_int_eq(enco_trainer_create(test_ctx(), &c, 1, 32, 32, &t), ENCO_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(enco_last_error(), "needs model.input_nc (1) equal to") != NULL,
                      "%s", enco_last_error());
        ck_assert_ptr_null(t);
    }
}
END_TEST

START_TEST(resume_adam)
{
    /* Step 0 of the trajectory, its weights and Adam state written out and
     * read back as a new state with iteration 1's inputs: that step must be
     * bit for bit the step the same trainer takes next (enco_step_again). */
    enco_config cfg;
    enco_config_defaults(&cfg);
    ENCO_CK(enco_config_load(&cfg, FIX "traj5_b1_bn_dag.cfg"));
    enco_st_file *f = NULL;
    ENCO_CK(enco_st_read(FIX "traj5_b1_bn_dag.safetensors", &f));
    enco_st_file *state = traj_state(f), *step0 = enco_st_new(), *adam0 = enco_st_new();
    enco_trainer *t = NULL;
    ENCO_CK(enco_step_from_state(test_ctx(), &cfg, state, "in.", 0, step0, &t));
    ENCO_CK(enco_step_save_adam(t, adam0, ""));
    ck_assert_ptr_nonnull(enco_st_find(adam0, "adam_step.netG"));
    ck_assert_int_eq(*(const int64_t *)need(adam0, "adam_step.netG")->data, 1);

    /* uninterrupted: the same trainer's next step */
    enco_st_file *cont = enco_st_new();
    ENCO_CK(enco_step_again(t, f, "in.iter1.", 0, cont, ""));
    enco_param_set *sets[] = {&t->G, &t->D, &t->F};
    for (int i = 0; i < 3; i++)
        ENCO_CK(enco_params_save(test_ctx(), sets[i], cont, "after."));
    ENCO_CK(enco_step_save_adam(t, cont, ""));

    /* resumed: a fresh trainer from the saved state */
    enco_st_file *s1 = continued_state(f, step0, adam0, NULL, NULL, -1);
    enco_st_file *res = enco_st_new();
    enco_trainer *t2 = NULL;
    ENCO_CK(enco_step_from_state(test_ctx(), &cfg, s1, "", 0, res, &t2));
    ENCO_CK(enco_step_save_adam(t2, res, ""));
    ck_assert_int_eq(t2->G.adam_step, 2);
    ck_assert_int_eq(t2->D.adam_step, 2);
    ck_assert_int_eq(t2->F.adam_step, 2);

    int compared = 0, adam = 0;
    for (size_t i = 0; i < cont->count; i++) {
        const char *k = cont->tensors[i].name;
        check_bitwise(cont, res, k);
        compared++;
        adam += starts(k, "adam_");
    }
    printf("resume_adam: %d tensors identical (%d of them Adam state)\n", compared, adam);
    ck_assert_int_gt(adam, 10);
    /* the resumed step is not the fresh-Adam step: the state was used */
    enco_st_file *fresh_in = continued_state(f, step0, adam0, NULL, NULL, -1);
    enco_st_file *fresh_only = enco_st_new();
    for (size_t i = 0; i < fresh_in->count; i++) {
        const enco_st_tensor *x = &fresh_in->tensors[i];
        if (!starts(x->name, "adam_"))
            ENCO_CK(enco_st_add(fresh_only, x->name, x->dtype, x->ndim, x->shape, x->data));
    }
    enco_st_file *fresh = enco_st_new();
    ENCO_CK(enco_step_from_state(test_ctx(), &cfg, fresh_only, "", 0, fresh, NULL));
    const enco_st_tensor *a = need(fresh, "after.netG.model.1.weight"),
                         *b = need(res, "after.netG.model.1.weight");
    ck_assert_msg(memcmp(a->data, b->data, enco_st_numel(a) * sizeof(float)) != 0,
                  "fresh Adam and the resumed Adam state gave the same update");

    /* refusals: a partial or mismatched set names the tensor */
    const char *pname = NULL;
    for (size_t i = 0; i < adam0->count && !pname; i++)
        if (starts(adam0->tensors[i].name, "adam_v.netD."))
            pname = adam0->tensors[i].name;
    ck_assert_ptr_nonnull(pname);
    refuse(&cfg, continued_state(f, step0, adam0, pname, NULL, -1), pname);
    char mname[256];
    snprintf(mname, sizeof mname, "adam_m.%s", pname + 7);
    refuse(&cfg, continued_state(f, step0, adam0, NULL, mname, -1), mname);
    refuse(&cfg, continued_state(f, step0, adam0, NULL, NULL, 0), "adam_step.netG");
    refuse(&cfg, continued_state(f, step0, adam0, "adam_step.netF", NULL, -1), "adam_step.netF");
    /* names that are no Adam state or no parameter, a float step, moments
     * that are not finite or a negative v */
    const enco_st_tensor *m0 = need(adam0, mname), *v0 = need(adam0, pname);
    float one = 1.0f;
    enco_st_file *bad = continued_state(f, step0, adam0, NULL, NULL, -1);
    ENCO_CK(enco_st_add(bad, "adam_x.netG.model.1.weight", ENCO_DT_F32, 0, NULL, &one));
    refuse(&cfg, bad, "adam_x.netG.model.1.weight");
    bad = continued_state(f, step0, adam0, NULL, NULL, -1);
    ENCO_CK(enco_st_add(bad, "adam_m.netG.no.such.weight", ENCO_DT_F32, 0, NULL, &one));
    refuse(&cfg, bad, "adam_m.netG.no.such.weight");
    bad = continued_state(f, step0, adam0, "adam_step.netD", NULL, -1);
    ENCO_CK(enco_st_add(bad, "adam_step.netD", ENCO_DT_F32, 0, NULL, &one));
    refuse(&cfg, bad, "adam_step.netD");
    for (int k = 0; k < 2; k++) {
        const enco_st_tensor *x = k ? v0 : m0;
        float *copy = malloc(enco_st_numel(x) * sizeof(float));
        memcpy(copy, x->data, enco_st_numel(x) * sizeof(float));
        copy[enco_st_numel(x) / 2] = k ? -1e-6f : NAN;
        bad = continued_state(f, step0, adam0, x->name, NULL, -1);
        ENCO_CK(enco_st_add(bad, x->name, ENCO_DT_F32, x->ndim, x->shape, copy));
        free(copy);
        refuse(&cfg, bad, x->name);
    }

    enco_st_free(fresh);
    enco_st_free(fresh_only);
    enco_st_free(fresh_in);
    enco_trainer_free(t2);
    enco_trainer_free(t);
    enco_st_free(res);
    enco_st_free(s1);
    enco_st_free(cont);
    enco_st_free(adam0);
    enco_st_free(step0);
    enco_st_free(state);
    enco_st_free(f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fixtures");
    TCase *tc = tcase_create("pytorch_parity");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, fixture_steps, 0, 17);
    tcase_add_loop_test(tc, own_dag_ranking, 0, 3);
    tcase_add_loop_test(tc, trajectory, 0, 4);
    tcase_add_test(tc, resume_adam);
    tcase_add_test(tc, pool_inputs_refused);
    suite_add_tcase(s, tc);
    int rc = test_run_suite(s);
    for (int i = 0; i < W_COUNT; i++)
        printf("worst %-42s %.3g  (%s)\n", W[i].what, W[i].v, W[i].where);
    return rc;
}
