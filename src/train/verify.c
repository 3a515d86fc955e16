/* Train the same seed on two devices and compare. */
#include "train/verify.h"

#include "models/family.h"

#include "data/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F4 sizeof(float)

/* Batch `iter` of global_n images, of which this run takes the n from
 * `first` on (a process's share; one run alone: all, first 0): image j's A
 * rendered from the scene of stream 2 (iter global_n + j), its B from the
 * next (unpaired), identical host data for both devices. */
static enco_status batch(const enco_config *cfg, int n, int global_n, int first, int size,
                         int iter, float *a, float *b)
{
    for (int i = 0; i < n; i++)
        for (int d = 0; d < 2; d++) {
            enco_synth_scene sc;
            enco_synth_scene_make(&sc, (uint64_t)cfg->train.seed,
                                  ((uint64_t)(iter * global_n + first + i) << 1) | (uint64_t)d);
            enco_image img = {0}, conv = {0};
            ENCO_TRY(enco_synth_render(&sc, d, size, &img));
            enco_status st = enco_image_convert(&img, cfg->model.input_nc, &conv);
            if (st == ENCO_OK)
                enco_image_to_tensor(&conv, (d ? b : a) + (size_t)i * conv.c * size * size);
            enco_image_free(&img);
            enco_image_free(&conv);
            ENCO_TRY(st);
        }
    return ENCO_OK;
}

/* What is judged of one run after some iteration. */
typedef struct state {
    float *w[ENCO_MAX_NETS];    /* each net's params */
    float *buf[ENCO_MAX_NETS];  /* the heads' buffers (running stats) */
    float *vmin[ENCO_MAX_NETS]; /* each element's smallest bias-corrected Adam second
                                 * moment v_hat up to that iteration (NAN or NULL: no
                                 * step) */
} state;

typedef struct run_out {
    float *losses;          /* steps x ENCO_LOSS_SLOTS */
    int32_t *ids;           /* steps x pairs: n x k[p] picks each (at ids_off[p]) */
    float *scores;          /* steps x pairs: n x hw[p] score maps each (DAG sampling) */
    size_t ids_step, scores_step, ids_off[ENCO_MAX_PAIRS], scores_off[ENCO_MAX_PAIRS];
    state fin;              /* after the last iteration */
    state first;            /* after iteration 1, kept where steps >= 2 (else empty) */
    size_t nw[ENCO_MAX_NETS];
} run_out;

static void state_free(state *s)
{
    for (int i = 0; i < ENCO_MAX_NETS; i++) {
        free(s->w[i]);
        free(s->vmin[i]);
        free(s->buf[i]);
    }
}

static void run_out_free(run_out *r)
{
    free(r->losses);
    free(r->ids);
    free(r->scores);
    state_free(&r->fin);
    state_free(&r->first);
}

void enco_verify_vhat_min(float *vmin, const float *v, size_t n, long step, double beta2)
{
    const double bc2 = 1 - pow(beta2, (double)step);
    for (size_t j = 0; j < n; j++) {
        const float vh = (float)(v[j] / bc2);
        if (!(vmin[j] <= vh)) /* NAN (no step yet) or larger */
            vmin[j] = vh;
    }
}

/* Folds the set's Adam second moments after its last step into *vmin
 * (allocated here, NAN until the set's first step). */
static enco_status track_vmin(enco_ctx *ctx, const enco_param_set *ps, double beta2,
                              float **vmin, float **tmp)
{
    if (!ps->n_params || ps->adam_step < 1)
        return ENCO_OK;
    if (!*vmin) {
        *vmin = malloc(ps->n_params * F4);
        if (!*vmin)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        for (size_t j = 0; j < ps->n_params; j++)
            (*vmin)[j] = NAN;
    }
    float *t = realloc(*tmp, ps->n_params * F4);
    if (!t)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    *tmp = t;
    ENCO_TRY(enco_download(ctx, ps->adam_v, 0, ps->n_params * F4, t));
    enco_verify_vhat_min(*vmin, t, ps->n_params, (long)ps->adam_step, beta2);
    return ENCO_OK;
}

static float *host_copy(enco_ctx *ctx, cl_mem src, const float *host, size_t n,
                        enco_status *st)
{
    float *d = malloc(n * F4 + F4);
    if (!d)
        *st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    else if (host)
        memcpy(d, host, n * F4);
    else if (n)
        *st = enco_download(ctx, src, 0, n * F4, d);
    return d;
}

/* The verify group of net i: generators (G, G_A, ...), discriminators
 * (D, D_A, ...), the heads (F, F1, ...). */
static int group_of(const enco_trainer *t, int i)
{
    const char c = t->family->nets[i][0];
    return c == 'G' ? 0 : c == 'D' ? 1 : 2;
}

/* Whether net i's buffers are judged (the heads' BatchNorm running stats;
 * a sequential net's buffers are its fixed blur filters). */
static int judged_buffers(const enco_trainer *t, int i)
{
    return !t->netdef[i] && t->nets[i].n_buffers;
}

/* Copies the trainer's weights and heads' buffers, and the v_hat minima so
 * far (vmin: NULL entries stay NULL), into *out. */
static enco_status keep_state(enco_ctx *ctx, const enco_trainer *t,
                              float *const vmin[ENCO_MAX_NETS], state *out)
{
    enco_status st = ENCO_OK;
    for (int i = 0; i < t->nnets && st == ENCO_OK; i++) {
        const enco_param_set *ps = &t->nets[i];
        out->w[i] = host_copy(ctx, ps->params, NULL, ps->n_params, &st);
        if (st == ENCO_OK && vmin[i])
            out->vmin[i] = host_copy(ctx, NULL, vmin[i], ps->n_params, &st);
        if (st == ENCO_OK && judged_buffers(t, i))
            out->buf[i] = host_copy(ctx, ps->buffers, NULL, ps->n_buffers, &st);
    }
    return st;
}

typedef struct progress {
    enco_verify_progress_fn fn;
    void *user;
    char what[320];  /* the run */
} progress;

/* A run's share of each batch: alone (red NULL or of size 1), the whole
 * batch; as one of red->size processes, the n images from red->rank * n on
 * of a batch of red->size * n, the gradients summed by red. */
static int share_first(const enco_grad_reducer *red, int n)
{
    return red && red->size > 1 ? red->rank * n : 0;
}

static int share_global(const enco_grad_reducer *red, int n)
{
    return red && red->size > 1 ? red->size * n : n;
}

/* Trains on ctx, alone or as one of red's processes (its share of every
 * batch; the losses kept are the means over the processes). replay: NULL,
 * or the picks of another run of the whole batch (laid out as a lone run's
 * out->ids) used as they are for this run's images for the first `until`
 * iterations; the trainer still draws those iterations' permutations
 * (keep_draws), so that the later iterations draw the same. pg: progress
 * after each iteration. */
static enco_status train_on(enco_ctx *ctx, const enco_config *cfg, int n, int h, int steps,
                            const enco_grad_reducer *red, const int32_t *replay, int until,
                            run_out *out, enco_trainer **keep, const progress *pg)
{
    if (pg->fn)
        pg->fn(pg->user, pg->what, 0, (size_t)steps);
    memset(out, 0, sizeof *out);
    enco_trainer *t = NULL;
    ENCO_TRY(enco_trainer_create(ctx, cfg, n, h, h, &t));
    const int global_n = share_global(red, n), first = share_first(red, n);
    if (red && red->size > 1) {
        enco_status rst = enco_trainer_set_reducer(t, red);
        if (rst != ENCO_OK) {
            enco_trainer_free(t);
            return rst;
        }
    }
    size_t img = (size_t)n * cfg->model.input_nc * h * h;
    float *a = malloc(img * F4), *b = malloc(img * F4);
    out->losses = malloc((size_t)steps * ENCO_LOSS_SLOTS * F4);
    const int dag = t->ranked_picks;
    for (int p = 0; p < t->npairs; p++) {
        out->ids_off[p] = out->ids_step;
        out->ids_step += (size_t)n * t->k[p];
        out->scores_off[p] = out->scores_step;
        out->scores_step += dag ? (size_t)n * t->fh[p] * t->fw[p] : 0;
    }
    out->ids = malloc((size_t)steps * out->ids_step * sizeof(int32_t) + 1);
    out->scores = malloc((size_t)steps * out->scores_step * F4 + 1);
    /* The replayed picks of this run's images (replay holds global_n's). */
    int32_t *mine = malloc(out->ids_step * sizeof(int32_t) + 1);
    size_t replay_step = 0, replay_off[ENCO_MAX_PAIRS];
    for (int p = 0; p < t->npairs; p++) {
        replay_off[p] = replay_step;
        replay_step += (size_t)global_n * t->k[p];
    }
    float *vtmp = NULL;
    enco_status st = a && b && out->losses && out->ids && out->scores && mine
                         ? enco_trainer_init_weights(t)
                         : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    for (int s = 0; s < steps && st == ENCO_OK; s++) {
        st = batch(cfg, n, global_n, first, h, s, a, b);
        enco_sampling_override ov = {.keep_draws = 1};
        const int replayed = replay && s < until;
        for (int p = 0; replayed && p < t->npairs; p++) {
            const size_t k = (size_t)t->k[p];
            memcpy(mine + out->ids_off[p],
                   replay + s * replay_step + replay_off[p] + (size_t)first * k,
                   (size_t)n * k * sizeof(int32_t));
            ov.patch_ids[p] = mine + out->ids_off[p];
        }
        if (st == ENCO_OK)
            st = enco_trainer_step(t, a, b, replayed ? &ov : NULL);
        if (st == ENCO_OK)
            st = enco_trainer_losses_mean(t, out->losses + (size_t)s * ENCO_LOSS_SLOTS);
        for (int i = 0; i < t->nnets && st == ENCO_OK; i++)
            st = track_vmin(ctx, &t->nets[i], cfg->train.beta2, &out->fin.vmin[i], &vtmp);
        /* Iteration 1's state, judged as a one-iteration run's would be. */
        if (st == ENCO_OK && s == 0 && steps >= 2)
            st = keep_state(ctx, t, out->fin.vmin, &out->first);
        for (int p = 0; p < t->npairs && st == ENCO_OK; p++) {
            st = enco_trainer_patch_ids(t, p, out->ids + s * out->ids_step + out->ids_off[p]);
            /* A replayed iteration computes no score map. */
            if (st == ENCO_OK && dag && !replayed)
                st = enco_download(ctx, t->score[p], 0,
                                   (size_t)n * t->fh[p] * t->fw[p] * F4,
                                   out->scores + s * out->scores_step + out->scores_off[p]);
        }
        if (st == ENCO_OK && pg->fn)
            pg->fn(pg->user, pg->what, (size_t)s + 1, (size_t)steps);
    }
    free(vtmp);
    free(mine);
    for (int i = 0; i < t->nnets; i++)
        out->nw[i] = t->nets[i].n_params;
    if (st == ENCO_OK) { /* the final state keeps the v_hat minima themselves */
        float *none[ENCO_MAX_NETS] = {NULL};
        st = keep_state(ctx, t, none, &out->fin);
    }
    free(a);
    free(b);
    if (st != ENCO_OK) {
        run_out_free(out);
        enco_trainer_free(t);
        return st;
    }
    *keep = t;
    return ENCO_OK;
}

double enco_verify_adam_bound(int steps, double lr, double beta1, double beta2)
{
    /* |m_t| <= (1 - b1) sqrt(sum_k (b1^2 / b2)^k) sqrt(v_t / (1 - b2)), k < t;
     * m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t). */
    const double ratio = beta2 > 0 ? beta1 * beta1 / beta2 : beta1 > 0 ? INFINITY : 0;
    double geo = 0, q = 1, total = 0;
    for (int t = 1; t <= steps; t++) {
        geo += q;
        q *= ratio; /* beta2 = 0 < beta1: no bound (v forgets, m does not) */
        total += (1 - beta1) * sqrt(geo / (1 - beta2)) * sqrt(1 - pow(beta2, t)) /
                 (1 - pow(beta1, t));
    }
    return 2 * lr * total;
}

double enco_verify_tolerance(enco_verify_group g, int steps, double lr, double adam)
{
    switch (g) {
    case ENCO_VG_LOSSES:
        return steps <= 1 ? ENCO_VERIFY_LOSS_REL
                          : ENCO_VERIFY_LOSS_REL_2 * pow(ENCO_VERIFY_GROWTH, steps - 2);
    case ENCO_VG_G:
    case ENCO_VG_D:
    case ENCO_VG_F: return steps <= 1 ? fmin(ENCO_VERIFY_WEIGHT_LR * lr, adam) : adam;
    case ENCO_VG_STATS:
        return steps <= 1 ? ENCO_VERIFY_STATS_ABS
                          : ENCO_VERIFY_STATS_ABS_2 * pow(10.0, steps - 2);
    case ENCO_VG_ILL: return adam;
    default: return 0;
    }
}

int enco_verify_ill_conditioned(double vhat_min_a, double vhat_min_b, double eps)
{
    /* NAN (never stepped) counts as well conditioned: its weight never moved. */
    const double v = fmin(isnan(vhat_min_a) ? INFINITY : vhat_min_a,
                          isnan(vhat_min_b) ? INFINITY : vhat_min_b);
    return sqrt(v) + eps < ENCO_VERIFY_ILL_K * eps;
}

double enco_verify_near_tie_cap(int s)
{
    return s <= 1 ? ENCO_VERIFY_NEAR_TIE_CAP : INFINITY;
}

const char *enco_verify_loss_name(const enco_trainer *t, int slot, char *buf, size_t size)
{
    char name[40];
    if (!enco_trainer_loss_name(t, slot, name, sizeof name, NULL))
        snprintf(name, sizeof name, "slot %d", slot);
    snprintf(buf, size, "loss_%s", name);
    return buf;
}

/* Compares n values into row; with mask, only those where mask[i] == want.
 * ps (optional) names the tensor holding the worst element. */
static void compare(enco_verify_row *row, const float *a, const float *b, size_t n,
                    const unsigned char *mask, int want, const enco_param_set *ps, int buffers,
                    double floor, int *bitwise)
{
    for (size_t i = 0; i < n; i++) {
        if (mask && mask[i] != want)
            continue;
        if (memcmp(&a[i], &b[i], F4) != 0)
            *bitwise = 0;
        double d = fabs((double)a[i] - b[i]);
        if (isnan(d))
            d = INFINITY;
        double scale = fmax(fmax(fabs(a[i]), fabs(b[i])), floor);
        if (d / scale > row->max_rel)
            row->max_rel = d / scale;
        if (d > row->max_abs) {
            row->max_abs = d;
            if (ps) /* name the tensor holding the worst element */
                for (size_t k = 0; k < ps->count; k++) {
                    const enco_param *p = &ps->list[k];
                    if (p->trainable == !buffers && i >= p->offset && i < p->offset + p->numel)
                        snprintf(row->worst, sizeof row->worst, "%s%s", ps->prefix, p->name);
                }
        }
    }
}

/* Marks (1) the elements of the conv biases that an InstanceNorm follows. */
/* The conv biases an InstanceNorm follows (true gradient 0), but where the
 * conv's output is a feature of the contrastive loss (CUT's 4 and 8). */
static unsigned char *in_bias_mask(const enco_trainer *t, int k)
{
    const enco_seqnet *net = t->netdef[k];
    const enco_param_set *ps = &t->nets[k];
    unsigned char *m = calloc(ps->n_params + 1, 1);
    for (size_t i = 0; m && net && i + 1 < net->nlayers; i++) {
        const enco_layer *l = &net->layers[i];
        if ((l->kind == ENCO_L_CONV || l->kind == ENCO_L_CONVT) && l->bias >= 0 &&
            net->layers[i + 1].kind == ENCO_L_INORM &&
            !(t->loss_feature_net[k] && l->module >= 0 && enco_trainer_loss_feature(t, l->module))) {
            const enco_param *p = &ps->list[l->bias];
            memset(m + p->offset, 1, p->numel);
        }
    }
    return m;
}

void enco_verify_picks_compare(enco_verify_picks *acc, const int32_t *ids_a,
                               const int32_t *ids_b, int k, int ranked, const float *score_a,
                               const float *score_b, int hw, double cap)
{
    double d = 0;
    if (ranked > 0)
        for (int i = 0; i < hw; i++) {
            double e = fabs((double)score_a[i] - (double)score_b[i]);
            if (isnan(e))
                e = INFINITY;
            d = fmax(d, e);
        }
    acc->score_diff = fmax(acc->score_diff, d);
    const double allow = fmin(2 * d, cap);
    for (int j = 0; j < k; j++) {
        acc->compared++;
        const int32_t ia = ids_a[j], ib = ids_b[j];
        if (ia == ib)
            continue;
        acc->differ++;
        int explained = j < ranked && ia >= 0 && ia < hw && ib >= 0 && ib < hw;
        if (explained) {
            /* Exact in double: the difference of two floats. */
            const double ga = fabs((double)score_a[ia] - (double)score_a[ib]);
            const double gb = fabs((double)score_b[ia] - (double)score_b[ib]);
            explained = ga <= allow && gb <= allow;
        }
        if (!explained)
            acc->unexplained++;
    }
}

/* Compares the picks of iteration s of both runs into rep->picks; returns
 * whether any differs. */
static int compare_picks(enco_verify_report *rep, const run_out *ra, const run_out *rb,
                         const enco_trainer *t, int s)
{
    const int dag = t->ranked_picks;
    const long before = rep->picks.differ;
    for (int p = 0; p < t->npairs; p++) {
        const int k = t->k[p], hw = t->fh[p] * t->fw[p];
        const int ranked = dag ? k - (int)floor(k * t->cfg.train.random_ratio) : 0;
        for (int i = 0; i < t->n; i++) {
            const size_t io = s * ra->ids_step + ra->ids_off[p] + (size_t)i * k;
            const size_t so = s * ra->scores_step + ra->scores_off[p] + (size_t)i * hw;
            enco_verify_picks_compare(&rep->picks, ra->ids + io, rb->ids + io, k, ranked,
                                      dag ? ra->scores + so : NULL, dag ? rb->scores + so : NULL,
                                      hw, enco_verify_near_tie_cap(s + 1));
        }
    }
    if (rep->picks.differ == before)
        return 0;
    rep->picks.iterations_differ++;
    if (!rep->picks.first_iteration)
        rep->picks.first_iteration = s + 1;
    return 1;
}

/* Judges the weights and running statistics of two runs after `steps`
 * iterations (a, b) into rows (all but ENCO_VG_LOSSES; after1: named as
 * iteration 1's state in a longer run), with the tolerances of that many iterations: the conv biases
 * before an InstanceNorm and the elements ill-conditioned by a and b's v_hat
 * minima at Adam's bound (row ENCO_VG_ILL, counted into ill[3] and
 * *in_bias), the rest in their net's row. */
static enco_status judge_state(enco_verify_row *rows, long *ill, long *in_bias,
                               const state *a, const state *b, const enco_trainer *t,
                               const enco_config *cfg, int steps, int after1, int *bitwise)
{
    static const char *names[2][ENCO_VG_COUNT] = {
        {"losses", "G weights", "D weights", "F weights", "F running stats", "ill-conditioned"},
        {"losses", "G weights after iteration 1", "D weights after iteration 1",
         "F weights after iteration 1", "F running stats after iteration 1",
         "ill-conditioned after iteration 1"}};
    /* Each group's rate: the largest of its nets' (the families of today
     * give the nets of one group one rate). */
    double lr[3] = {0, 0, 0};
    for (int i = 0; i < t->nnets; i++)
        lr[group_of(t, i)] = fmax(lr[group_of(t, i)], t->net_lr[i]);
    const double b1 = cfg->train.beta1, b2 = cfg->train.beta2;
    for (int g = ENCO_VG_G; g < ENCO_VG_COUNT; g++) {
        rows[g].name = names[after1][g];
        /* ENCO_VG_ILL: each net's elements at its own bound, the row shows
         * the largest. */
        const double glr = g == ENCO_VG_ILL ? fmax(fmax(lr[0], lr[1]), lr[2])
                           : g <= ENCO_VG_F ? lr[g - ENCO_VG_G]
                                            : 0;
        rows[g].tolerance = enco_verify_tolerance((enco_verify_group)g, steps, glr,
                                                  enco_verify_adam_bound(steps, glr, b1, b2));
    }
    /* The elements judged at Adam's bound: the biases before an InstanceNorm,
     * and every element whose Adam step was ill-conditioned on either run at
     * some iteration; the rest in their group's row. */
    enco_verify_row *brow = &rows[ENCO_VG_ILL];
    brow->pass = 1;
    int first_ill = 1;
    for (int g = ENCO_VG_G; g <= ENCO_VG_F; g++)
        rows[g].pass = 1;
    for (int i = 0; i < t->nnets; i++) {
        const enco_param_set *ps = &t->nets[i];
        const int grp = group_of(t, i);
        unsigned char *mask = in_bias_mask(t, i);
        if (!mask)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        const size_t nw = ps->n_params;
        for (size_t j = 0; j < nw; j++) {
            if (mask[j]) {
                (*in_bias)++;
            } else if (enco_verify_ill_conditioned(a->vmin[i] ? a->vmin[i][j] : NAN,
                                                   b->vmin[i] ? b->vmin[i][j] : NAN,
                                                   cfg->train.eps)) {
                mask[j] = 1;
                ill[grp]++;
            }
        }
        enco_verify_row *row = &rows[ENCO_VG_G + grp];
        enco_verify_row net = {0};
        compare(&net, a->w[i], b->w[i], nw, mask, 0, ps, 0, 1e-3, bitwise);
        if (net.max_abs > row->max_abs || !row->worst[0])
            memcpy(row->worst, net.worst, sizeof row->worst);
        row->max_abs = fmax(row->max_abs, net.max_abs);
        row->max_rel = fmax(row->max_rel, net.max_rel);
        row->pass &= net.max_abs <= row->tolerance;
        /* Each net's elements at its own learning rate's bound. */
        enco_verify_row one = {0};
        compare(&one, a->w[i], b->w[i], nw, mask, 1, ps, 0, 1e-3, bitwise);
        brow->pass &= one.max_abs <= enco_verify_adam_bound(steps, t->net_lr[i], b1, b2);
        if (one.max_abs > brow->max_abs || first_ill) {
            brow->max_abs = fmax(brow->max_abs, one.max_abs);
            memcpy(brow->worst, one.worst, sizeof brow->worst);
            first_ill = 0;
        }
        brow->max_rel = fmax(brow->max_rel, one.max_rel);
        free(mask);
    }
    enco_verify_row *srow = &rows[ENCO_VG_STATS];
    for (int i = 0; i < t->nnets; i++)
        if (judged_buffers(t, i))
            compare(srow, a->buf[i], b->buf[i], t->nets[i].n_buffers, NULL, 0, &t->nets[i], 1,
                    1e-3, bitwise);
    srow->pass = srow->max_abs <= srow->tolerance;
    return ENCO_OK;
}

/* Judges run b against run a (a's trainer ta), both of `steps` iterations
 * on the same patches, into rep (its picks already compared): every loss of
 * every iteration, the state after the last iteration and, where steps >= 2,
 * after the first. */
static enco_status judge(enco_verify_report *rep, const run_out *ra, const run_out *rb,
                         const enco_trainer *ta, const enco_config *cfg, int steps)
{
    enco_status st = ENCO_OK;
    int bitwise = 1;
    rep->rows[ENCO_VG_LOSSES].name = "losses";
    rep->picks_pass = rep->picks.unexplained == 0;
    if (rep->picks.differ)
        bitwise = 0;
    /* Every loss of every iteration, each iteration at its own tolerance; the
     * last run of B used A's patches. The row shows the loss nearest its
     * tolerance. */
    enco_verify_row *lrow = &rep->rows[ENCO_VG_LOSSES];
    double worst_ratio = -1;
    lrow->pass = 1;
    for (int s = 0; s < steps; s++) {
        enco_verify_row it = {0};
        const double tol = enco_verify_tolerance(ENCO_VG_LOSSES, s + 1, 0, 0);
        for (int k = 0; k < enco_trainer_loss_count(ta); k++) {
            const double before = it.max_rel;
            const size_t o = (size_t)s * ENCO_LOSS_SLOTS + k;
            compare(&it, ra->losses + o, rb->losses + o, 1, NULL, 0, NULL, 0, 1e-6, &bitwise);
            if (it.max_rel > before || !k) {
                char nm[48];
                snprintf(it.worst, sizeof it.worst, "iteration %d, %s", s + 1,
                         enco_verify_loss_name(ta, k, nm, sizeof nm));
            }
        }
        if (s < ENCO_VERIFY_MAX_REPORTED)
            rep->loss_rel[s] = it.max_rel;
        lrow->pass &= it.max_rel <= tol;
        if (it.max_rel / tol > worst_ratio) {
            worst_ratio = it.max_rel / tol;
            lrow->max_abs = it.max_abs;
            lrow->max_rel = it.max_rel;
            lrow->tolerance = tol;
            memcpy(lrow->worst, it.worst, sizeof lrow->worst);
        }
    }
    /* The state after the last iteration, and after iteration 1 in a longer
     * run, judged as after a one-iteration run (the runs' first iterations
     * used the same patches: A's picks or, where B's differed, replayed). */
    st = judge_state(rep->rows, rep->ill_elements, &rep->ill_in_bias, &ra->fin, &rb->fin, ta, cfg,
                     steps, 0, &bitwise);
    if (st == ENCO_OK && steps >= 2) {
        long in_bias = 0;
        rep->has_iteration1 = 1;
        st = judge_state(rep->rows1, rep->ill_elements1, &in_bias, &ra->first, &rb->first, ta,
                         cfg, 1, 1, &bitwise);
    }
    if (st == ENCO_OK) {
        rep->bitwise = bitwise;
        rep->pass = rep->picks_pass;
        for (int g = 0; g < ENCO_VG_COUNT; g++)
            rep->pass &= rep->rows[g].pass && (!rep->has_iteration1 || g == ENCO_VG_LOSSES ||
                                               rep->rows1[g].pass);
        if (rep->same_device)
            rep->pass &= bitwise; /* one device must reproduce itself exactly */
    }
    return st;
}

enco_status enco_verify(enco_ctx *ctx_a, enco_ctx *ctx_b, const enco_config *cfg, int n, int h,
                        int w, int steps, int kernels_differ, enco_verify_report *rep)
{
    return enco_verify_progress(ctx_a, ctx_b, cfg, n, h, w, steps, kernels_differ, NULL, NULL,
                                rep);
}

enco_status enco_verify_progress(enco_ctx *ctx_a, enco_ctx *ctx_b, const enco_config *cfg, int n,
                                 int h, int w, int steps, int kernels_differ,
                                 enco_verify_progress_fn progress_fn, void *user,
                                 enco_verify_report *rep)
{
    memset(rep, 0, sizeof *rep);
    if (h != w)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "verify uses square images");
    if (steps < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "verify needs at least one step");
    snprintf(rep->device_a, sizeof rep->device_a, "%s", enco_ctx_device(ctx_a)->name);
    snprintf(rep->device_b, sizeof rep->device_b, "%s", enco_ctx_device(ctx_b)->name);
    rep->steps = steps;
    rep->same_device = !kernels_differ && strcmp(rep->device_a, rep->device_b) == 0 &&
                       strcmp(enco_ctx_device(ctx_a)->platform,
                              enco_ctx_device(ctx_b)->platform) == 0;
    run_out ra, rb;
    enco_trainer *ta = NULL, *tb = NULL;
    progress pg = {.fn = progress_fn, .user = user};
    snprintf(pg.what, sizeof pg.what, "verify: run A on %s", rep->device_a);
    ENCO_TRY(train_on(ctx_a, cfg, n, h, steps, NULL, NULL, 0, &ra, &ta, &pg));
    /* B's picks are compared iteration by iteration; at the first differing
     * one, B runs again replaying A's picks up to it, and its own picks are
     * compared from the next iteration on. Every pick is so compared between
     * runs whose weights agree to rounding, and the last run of B used A's
     * patches throughout. */
    int until = 0;
    enco_status st = ENCO_OK;
    for (;;) {
        if (until)
            snprintf(pg.what, sizeof pg.what,
                     "verify: run B again on %s, A's picks up to iteration %d", rep->device_b,
                     until);
        else
            snprintf(pg.what, sizeof pg.what, "verify: run B on %s", rep->device_b);
        st = train_on(ctx_b, cfg, n, h, steps, NULL, ra.ids, until, &rb, &tb, &pg);
        if (st != ENCO_OK)
            break;
        int s = until;
        while (s < steps && !compare_picks(rep, &ra, &rb, ta, s))
            s++;
        if (s == steps)
            break;
        until = s + 1;
        rep->replays++;
        run_out_free(&rb);
        enco_trainer_free(tb);
        tb = NULL;
    }
    if (st != ENCO_OK) {
        run_out_free(&ra);
        enco_trainer_free(ta);
        return st;
    }
    st = judge(rep, &ra, &rb, ta, cfg, steps);
    run_out_free(&ra);
    run_out_free(&rb);
    enco_trainer_free(ta);
    enco_trainer_free(tb);
    return st;
}

/* ---- several processes against one -------------------------------------- */

/* Run B's picks and score maps of every process (each its own n images per
 * iteration, gathered in rank order) into *all, laid out as run A's (a lone
 * run of size x n images: ra's offsets); the losses (means over the
 * processes) and states are mine's, moved. tb: process 0's trainer of B. */
static enco_status gather_run(const enco_verify_procs *pr, run_out *mine, const run_out *ra,
                              const enco_trainer *tb, int steps, run_out *all)
{
    const int size = pr->size, n = tb->n, lead = pr->rank == 0;
    const size_t ids_bytes = (size_t)steps * mine->ids_step * sizeof(int32_t);
    const size_t scores_bytes = (size_t)steps * mine->scores_step * F4;
    int32_t *ids = malloc((size_t)size * ids_bytes + 1);
    float *scores = malloc((size_t)size * scores_bytes + 1);
    enco_status st = ids && scores ? ENCO_OK
                                   : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    if (st == ENCO_OK && ids_bytes)
        st = pr->allgather(pr->user, mine->ids, ids, ids_bytes);
    if (st == ENCO_OK && scores_bytes)
        st = pr->allgather(pr->user, mine->scores, scores, scores_bytes);
    if (st == ENCO_OK && lead) {
        memset(all, 0, sizeof *all);
        all->ids_step = ra->ids_step;
        all->scores_step = ra->scores_step;
        memcpy(all->ids_off, ra->ids_off, sizeof all->ids_off);
        memcpy(all->scores_off, ra->scores_off, sizeof all->scores_off);
        all->ids = malloc((size_t)steps * all->ids_step * sizeof(int32_t) + 1);
        all->scores = malloc((size_t)steps * all->scores_step * F4 + 1);
        if (!all->ids || !all->scores)
            st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        for (int s = 0; st == ENCO_OK && s < steps; s++)
            for (int p = 0; p < tb->npairs; p++)
                for (int r = 0; r < size; r++) {
                    const size_t k = (size_t)tb->k[p];
                    memcpy(all->ids + s * all->ids_step + all->ids_off[p] + (size_t)r * n * k,
                           ids + (size_t)r * (ids_bytes / sizeof(int32_t)) +
                               s * mine->ids_step + mine->ids_off[p],
                           (size_t)n * k * sizeof(int32_t));
                    if (!mine->scores_step)
                        continue;
                    const size_t hw = (size_t)tb->fh[p] * tb->fw[p];
                    memcpy(all->scores + s * all->scores_step + all->scores_off[p] +
                               (size_t)r * n * hw,
                           scores + (size_t)r * (scores_bytes / F4) + s * mine->scores_step +
                               mine->scores_off[p],
                           (size_t)n * hw * F4);
                }
        if (st == ENCO_OK) { /* the losses and the states are this process's */
            all->losses = mine->losses;
            all->fin = mine->fin;
            all->first = mine->first;
            memcpy(all->nw, mine->nw, sizeof all->nw);
            mine->losses = NULL;
            memset(&mine->fin, 0, sizeof mine->fin);
            memset(&mine->first, 0, sizeof mine->first);
        }
    }
    free(ids);
    free(scores);
    return st;
}

enco_status enco_verify_dp(enco_ctx *ctx_a, enco_ctx *ctx_b, const enco_config *cfg, int n,
                           int h, int w, int steps, const enco_verify_procs *pr,
                           enco_verify_progress_fn progress_fn, void *user,
                           enco_verify_report *rep)
{
    memset(rep, 0, sizeof *rep);
    if (h != w)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "verify uses square images");
    if (steps < 1 || n < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "verify needs at least one step and one image");
    if (!pr || pr->size < 2 || pr->rank < 0 || pr->rank >= pr->size || !pr->sum ||
        !pr->allgather || !pr->bcast)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "verify across processes needs at least 2 processes and their "
                         "collectives");
    const int lead = pr->rank == 0, size = pr->size;
    if (!ctx_b || (lead && !ctx_a))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "verify across processes: no device context");
    const enco_grad_reducer red = {.size = size,
                                   .rank = pr->rank,
                                   .user = pr->user,
                                   .sum = pr->sum,
                                   .sum_doubles = pr->sum_doubles,
                                   .allgather = pr->allgather};
    /* What the trainer refuses under several processes, every process alike
     * and before any training. */
    enco_trainer *probe = NULL;
    ENCO_TRY(enco_trainer_create(ctx_b, cfg, n, h, h, &probe));
    enco_status st = enco_trainer_set_reducer(probe, &red);
    enco_trainer_free(probe);
    ENCO_TRY(st);

    rep->steps = steps;
    rep->processes = size;
    snprintf(rep->device_a, sizeof rep->device_a, "%.80s (1 process, batch %d)",
             lead ? enco_ctx_device(ctx_a)->name : "-", size * n);
    snprintf(rep->device_b, sizeof rep->device_b, "%.80s (%d processes x batch %d)",
             enco_ctx_device(ctx_b)->name, size, n);
    progress pg = {.fn = progress_fn, .user = user};
    /* Run A on process 0; the others wait for its outcome. */
    run_out ra, rb, all;
    memset(&ra, 0, sizeof ra);
    memset(&rb, 0, sizeof rb);
    memset(&all, 0, sizeof all);
    enco_trainer *ta = NULL, *tb = NULL;
    if (lead) {
        snprintf(pg.what, sizeof pg.what, "verify: run A, one process, batch %d", size * n);
        st = train_on(ctx_a, cfg, size * n, h, steps, NULL, NULL, 0, &ra, &ta, &pg);
    }
    int failed = st != ENCO_OK;
    enco_status cst = pr->bcast(pr->user, &failed, sizeof failed);
    if (st != ENCO_OK || cst != ENCO_OK)
        return st != ENCO_OK ? st : cst;
    if (failed)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "verify: process 0's run alone failed");
    /* Run B on every process, again replaying A's picks (process 0 decides
     * where, as enco_verify does) until its own picks agree. */
    int32_t *a_ids = lead ? ra.ids : NULL, *a_ids_own = NULL;
    int until = 0;
    for (;;) {
        if (until)
            snprintf(pg.what, sizeof pg.what,
                     "verify: run B again, %d processes x batch %d, A's picks up to iteration "
                     "%d", size, n, until);
        else
            snprintf(pg.what, sizeof pg.what, "verify: run B, %d processes x batch %d", size, n);
        st = train_on(ctx_b, cfg, n, h, steps, &red, until ? a_ids : NULL, until, &rb, &tb, &pg);
        if (st != ENCO_OK) {
            memset(&rb, 0, sizeof rb); /* train_on freed it */
            break;
        }
        st = gather_run(pr, &rb, &ra, tb, steps, &all);
        int next = -1;
        if (st == ENCO_OK && lead) {
            int s = until;
            while (s < steps && !compare_picks(rep, &ra, &all, ta, s))
                s++;
            next = s == steps ? -1 : s + 1;
        }
        if (st == ENCO_OK)
            st = pr->bcast(pr->user, &next, sizeof next);
        if (st == ENCO_OK && next > 0 && !a_ids) { /* A's picks, once, to every process */
            const size_t count = (size_t)steps * size * rb.ids_step;
            a_ids = a_ids_own = malloc(count * sizeof(int32_t) + 1);
            st = a_ids ? ENCO_OK : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        }
        if (st == ENCO_OK && next > 0 && until == 0)
            st = pr->bcast(pr->user, a_ids, (size_t)steps * size * rb.ids_step * sizeof(int32_t));
        if (st != ENCO_OK || next < 0)
            break;
        until = next;
        rep->replays++;
        run_out_free(&rb);
        run_out_free(&all);
        memset(&all, 0, sizeof all);
        enco_trainer_free(tb);
        tb = NULL;
    }
    if (st == ENCO_OK && lead)
        st = judge(rep, &ra, &all, ta, cfg, steps);
    /* Every process exits as process 0 judged. */
    int verdict[2] = {st == ENCO_OK, rep->pass};
    if (st == ENCO_OK || lead) {
        enco_status bst = pr->bcast(pr->user, verdict, sizeof verdict);
        if (st == ENCO_OK && bst != ENCO_OK)
            st = bst;
    }
    if (st == ENCO_OK && !verdict[0])
        st = ENCO_FAIL(ENCO_ERR_INVALID_ARG, "verify: process 0 could not judge the runs");
    rep->pass = verdict[1];
    free(a_ids_own);
    run_out_free(&ra);
    run_out_free(&rb);
    run_out_free(&all);
    enco_trainer_free(ta);
    enco_trainer_free(tb);
    return st;
}
