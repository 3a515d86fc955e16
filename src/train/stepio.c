/* One iteration from a safetensors state, with everything written out. */
#include "train/stepio.h"

#include "models/family.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F4 sizeof(float)

typedef struct step_inputs {
    const enco_st_tensor *a, *b;
    int32_t *ids[ENCO_MAX_PAIRS], *ids_y[ENCO_MAX_PAIRS], *cand[ENCO_MAX_PAIRS],
        *cover[ENCO_MAX_PAIRS];
    int flipped;
    int32_t *pool_id[2];
} step_inputs;

static void inputs_free(step_inputs *si)
{
    for (int p = 0; p < ENCO_MAX_PAIRS; p++) {
        free(si->ids[p]);
        free(si->ids_y[p]);
        free(si->cand[p]);
        free(si->cover[p]);
    }
    free(si->pool_id[0]);
    free(si->pool_id[1]);
    memset(si, 0, sizeof *si);
}

/* An I64 (or I32) (n, cols) tensor as a new int32 array; NULL (no error) if absent. */
static enco_status int_rows(const enco_st_file *f, const char *key, int n, int cols,
                            int32_t **out)
{
    *out = NULL;
    const enco_st_tensor *t = enco_st_find(f, key);
    if (!t)
        return ENCO_OK;
    if ((t->dtype != ENCO_DT_I64 && t->dtype != ENCO_DT_I32) || t->ndim != 2 ||
        t->shape[0] != n || t->shape[1] != cols)
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s must be int64 of shape (%d, %d)", key, n, cols);
    size_t count = (size_t)n * (size_t)cols;
    int32_t *v = malloc((count ? count : 1) * sizeof *v);
    if (!v)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    for (size_t i = 0; i < count; i++) {
        int64_t x = t->dtype == ENCO_DT_I64 ? ((const int64_t *)t->data)[i]
                                            : ((const int32_t *)t->data)[i];
        if (x < 0 || x > INT32_MAX) {
            free(v);
            return ENCO_FAIL(ENCO_ERR_FORMAT, "%s holds %lld, not a position", key, (long long)x);
        }
        v[i] = (int32_t)x;
    }
    *out = v;
    return ENCO_OK;
}

static enco_status read_inputs(const enco_trainer *t, const enco_st_file *in, const char *prefix,
                               int use_dag_draws, step_inputs *si, enco_sampling_override *ov)
{
    memset(si, 0, sizeof *si);
    memset(ov, 0, sizeof *ov);
    char key[256];
    int64_t shape[4] = {t->n, t->cfg.model.input_nc, t->h, t->w};
    snprintf(key, sizeof key, "%sreal_A", prefix);
    ENCO_TRY(enco_st_expect(in, key, ENCO_DT_F32, 4, shape, &si->a));
    snprintf(key, sizeof key, "%sreal_B", prefix);
    ENCO_TRY(enco_st_expect(in, key, ENCO_DT_F32, 4, shape, &si->b));
    const int dag = t->score[0] != NULL;
    if (t->has_pool) { /* CycleGAN: the pools' draws, per image of each query */
        for (int p = 0; p < 2; p++) {
            const char *d = p ? "B" : "A";
            snprintf(key, sizeof key, "%spool_u.%s", prefix, d);
            const enco_st_tensor *u = enco_st_find(in, key);
            if (u) {
                const enco_st_tensor *x = NULL;
                ENCO_TRY(enco_st_expect(in, key, ENCO_DT_F32, 1, (int64_t[]){t->n}, &x));
                ov->pool_u[p] = x->data;
            }
            snprintf(key, sizeof key, "%spool_id.%s", prefix, d);
            const enco_st_tensor *id = enco_st_find(in, key);
            if (id) {
                if ((id->dtype != ENCO_DT_I64 && id->dtype != ENCO_DT_I32) || id->ndim != 1 ||
                    id->shape[0] != t->n)
                    return ENCO_FAIL(ENCO_ERR_FORMAT, "%s must be int64 of shape (%d)", key,
                                     t->n);
                si->pool_id[p] = malloc((size_t)t->n * sizeof(int32_t));
                if (!si->pool_id[p])
                    return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
                for (int i = 0; i < t->n; i++) {
                    int64_t v = id->dtype == ENCO_DT_I64 ? ((const int64_t *)id->data)[i]
                                                         : ((const int32_t *)id->data)[i];
                    if (v < 0 || v > INT32_MAX)
                        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s holds %lld, not a pool slot", key,
                                         (long long)v);
                    si->pool_id[p][i] = (int32_t)v;
                }
                ov->pool_id[p] = si->pool_id[p];
            }
        }
    }
    const char *yname = t->draws_y_name ? t->draws_y_name : "patch_ids_Y";
    if (t->has_draws_y) { /* CUT's families: NCE_Y's ids and the flip draw */
        for (int p = 0; p < t->npairs; p++) {
            snprintf(key, sizeof key, "%s%s.%d", prefix, yname, p);
            ENCO_TRY(int_rows(in, key, t->n, t->k[p], &si->ids_y[p]));
            ov->patch_ids_Y[p] = si->ids_y[p];
        }
        snprintf(key, sizeof key, "%sflipped", prefix);
        const enco_st_tensor *f = t->has_flip ? enco_st_find(in, key) : NULL;
        if (f) {
            int64_t v = 0;
            if (f->dtype == ENCO_DT_I64 && f->ndim == 0)
                memcpy(&v, f->data, sizeof v);
            if (f->dtype != ENCO_DT_I64 || f->ndim != 0 || (v != 0 && v != 1))
                return ENCO_FAIL(ENCO_ERR_FORMAT, "%s must be an int64 scalar, 0 or 1", key);
            si->flipped = (int)v;
            ov->flipped = &si->flipped;
        }
    }
    for (int p = 0; p < t->npairs; p++) {
        int hw = t->fh[p] * t->fw[p], K = t->k[p];
        int m = t->cfg.train.oversample_ratio * K < hw ? t->cfg.train.oversample_ratio * K : hw;
        int r = (int)((double)K * t->cfg.train.random_ratio);
        snprintf(key, sizeof key, "%sdag_cand.%d", prefix, p);
        if (dag && use_dag_draws && enco_st_find(in, key)) {
            ENCO_TRY(int_rows(in, key, t->n, m, &si->cand[p]));
            snprintf(key, sizeof key, "%sdag_cover.%d", prefix, p);
            ENCO_TRY(int_rows(in, key, t->n, r, &si->cover[p]));
            if (r > 0 && !si->cover[p])
                return ENCO_FAIL(ENCO_ERR_FORMAT, "%s is missing", key);
            ov->cand[p] = si->cand[p];
            ov->cover[p] = si->cover[p];
            continue;
        }
        snprintf(key, sizeof key, "%spatch_ids.%d", prefix, p);
        ENCO_TRY(int_rows(in, key, t->n, K, &si->ids[p]));
        ov->patch_ids[p] = si->ids[p];
    }
    return ENCO_OK;
}

static enco_status add_scalar(enco_st_file *out, const char *prefix, const char *name, float v)
{
    char key[256];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    return enco_st_add(out, key, ENCO_DT_F32, 0, NULL, &v);
}

static enco_status add_device(enco_trainer *t, enco_st_file *out, const char *key, cl_mem m,
                              size_t off, int ndim, const int64_t *shape)
{
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= (size_t)shape[i];
    float *host = malloc(count * F4);
    if (!host)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    enco_status st = enco_download(t->ctx, m, off * F4, count * F4, host);
    if (st == ENCO_OK)
        st = enco_st_add(out, key, ENCO_DT_F32, ndim, shape, host);
    free(host);
    return st;
}

/* Losses, pred_fake and the draws of the last iteration. */
static enco_status write_ids(enco_trainer *t, enco_st_file *out, const char *key, cl_mem m,
                             int k)
{
    size_t count = (size_t)t->n * k;
    int32_t *ids = malloc(count * sizeof *ids);
    int64_t *ids64 = malloc(count * sizeof *ids64);
    enco_status st = ids && ids64 ? enco_download(t->ctx, m, 0, count * sizeof *ids, ids)
                                  : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    for (size_t i = 0; st == ENCO_OK && i < count; i++)
        ids64[i] = ids[i];
    if (st == ENCO_OK)
        st = enco_st_add(out, key, ENCO_DT_I64, 2, (int64_t[]){t->n, k}, ids64);
    free(ids);
    free(ids64);
    return st;
}

static enco_status write_iteration(enco_trainer *t, enco_st_file *out, const char *pre)
{
    float l[ENCO_LOSS_SLOTS];
    ENCO_TRY(enco_trainer_losses(t, l));
    char key[256], name[64];
    for (int i = 0; i < enco_trainer_loss_count(t); i++) {
        int flags = 0;
        enco_trainer_loss_name(t, i, name, sizeof name, &flags);
        if (!(flags & ENCO_LOSS_STEP))
            continue;
        snprintf(key, sizeof key, "loss.%s", name);
        ENCO_TRY(add_scalar(out, pre, key, l[i]));
    }
    for (int p = 0; p < t->npairs; p++) {
        snprintf(key, sizeof key, "%spatch_ids.%d", pre, p);
        ENCO_TRY(write_ids(t, out, key, t->idx[p], t->k[p]));
        if (t->has_draws_y) {
            snprintf(key, sizeof key, "%s%s.%d", pre,
                     t->draws_y_name ? t->draws_y_name : "patch_ids_Y", p);
            ENCO_TRY(write_ids(t, out, key, t->idx_y[p], t->k[p]));
        }
    }
    if (t->has_flip) {
        int64_t f = t->flipped;
        snprintf(key, sizeof key, "%sflipped", pre);
        ENCO_TRY(enco_st_add(out, key, ENCO_DT_I64, 0, NULL, &f));
    }
    if (t->family->write_images) /* no single D: the family writes its images */
        return pre[0] ? t->family->write_images(t, out, pre) : ENCO_OK;
    cl_mem dm;
    size_t doff;
    enco_seqnet_output(&t->dnet, &dm, &doff, NULL, NULL, NULL);
    snprintf(key, sizeof key, "%spred_fake", pre);
    return add_device(t, out, key, dm, doff, 4, (int64_t[]){t->n, 1, t->ph, t->pw});
}

enco_status enco_step_again(enco_trainer *t, const enco_st_file *in, const char *prefix,
                            int use_dag_draws, enco_st_file *out, const char *out_prefix)
{
    step_inputs si;
    enco_sampling_override ov;
    enco_status st = read_inputs(t, in, prefix, use_dag_draws, &si, &ov);
    if (st == ENCO_OK)
        st = enco_trainer_step(t, si.a->data, si.b->data, &ov);
    inputs_free(&si);
    ENCO_TRY(st);
    return write_iteration(t, out, out_prefix);
}

/* The net ("netG." ...) a name after "adam_m." / "adam_v." / "adam_step."
 * belongs to, or NULL; *leaf: the rest (parameter name, or "" for adam_step). */
static enco_param_set *adam_net(enco_trainer *t, const char *rest, int is_step, const char **leaf)
{
    enco_param_set *sets[ENCO_MAX_NETS];
    for (int i = 0; i < t->nnets; i++)
        sets[i] = &t->nets[i];
    for (int i = 0; i < t->nnets; i++) {
        size_t n = strlen(sets[i]->prefix) - 1; /* "netG" without its dot */
        if (strncmp(rest, sets[i]->prefix, n) != 0)
            continue;
        if (is_step && rest[n] == '\0') {
            *leaf = rest + n;
            return sets[i];
        }
        if (!is_step && rest[n] == '.') {
            *leaf = rest + n + 1;
            return sets[i];
        }
    }
    return NULL;
}

/* One adam_m / adam_v tensor of a trainable parameter into the trainer's
 * moment block (F32, the parameter's shape; v must not be negative). */
static enco_status load_moment(enco_trainer *t, const enco_param_set *ps, const enco_param *p,
                               const enco_st_file *in, const char *prefix, int is_v)
{
    char key[256];
    snprintf(key, sizeof key, "%sadam_%c.%s%s", prefix, is_v ? 'v' : 'm', ps->prefix, p->name);
    if (!enco_st_find(in, key))
        return ENCO_FAIL(ENCO_ERR_FORMAT,
                         "incomplete Adam state: tensor %s is missing (with any adam_* tensor of "
                         "%.*s, the state needs adam_step, adam_m and adam_v of each of its "
                         "trainable parameters)",
                         key, (int)strlen(ps->prefix) - 1, ps->prefix);
    const enco_st_tensor *x = NULL;
    ENCO_TRY(enco_st_expect(in, key, ENCO_DT_F32, p->ndim, p->shape, &x));
    const float *v = x->data;
    for (size_t i = 0; i < p->numel; i++)
        if (!isfinite(v[i]) || (is_v && v[i] < 0))
            return ENCO_FAIL(ENCO_ERR_FORMAT, "tensor %s holds %g at %zu (Adam moments are "
                             "finite, adam_v not negative)", key, (double)v[i], i);
    return enco_upload(t->ctx, is_v ? ps->adam_v : ps->adam_m, p->offset * F4, p->numel * F4,
                       x->data);
}

/* Optional Adam state in in (the twin's names under prefix): for every net
 * that has any adam_* tensor, its step and both moments of each trainable
 * parameter, which replace the trainer's fresh Adam; nets without any start
 * fresh. A tensor that fits no parameter, or a partial set, is refused. */
static enco_status load_adam(enco_trainer *t, const enco_st_file *in, const char *prefix)
{
    int has[ENCO_MAX_NETS] = {0};
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < in->count; i++) {
        const char *name = in->tensors[i].name;
        if (strncmp(name, prefix, plen) != 0 || strncmp(name + plen, "adam_", 5) != 0)
            continue;
        const char *kind = name + plen + 5, *leaf = NULL;
        int is_step = strncmp(kind, "step.", 5) == 0;
        if (!is_step && strncmp(kind, "m.", 2) != 0 && strncmp(kind, "v.", 2) != 0)
            return ENCO_FAIL(ENCO_ERR_FORMAT,
                             "tensor %s is not Adam state (adam_step.<net>, adam_m.<param>, "
                             "adam_v.<param>)",
                             name);
        enco_param_set *ps = adam_net(t, kind + (is_step ? 5 : 2), is_step, &leaf);
        const enco_param *p = ps && !is_step ? enco_params_find(ps, leaf) : NULL;
        if (!ps || (!is_step && (!p || !p->trainable)))
            return ENCO_FAIL(ENCO_ERR_FORMAT,
                             "tensor %s names no %s of this model", name,
                             is_step ? "net (netG, netD, netF)" : "trainable parameter");
        has[ps - t->nets] = 1;
    }
    for (int s = 0; s < t->nnets; s++) {
        if (!has[s])
            continue;
        enco_param_set *ps = &t->nets[s];
        char key[256];
        snprintf(key, sizeof key, "%sadam_step.%.*s", prefix, (int)strlen(ps->prefix) - 1,
                 ps->prefix);
        const enco_st_tensor *x = enco_st_find(in, key);
        if (!x)
            return ENCO_FAIL(ENCO_ERR_FORMAT,
                             "incomplete Adam state: tensor %s is missing (the state has other "
                             "adam_* tensors of this net)",
                             key);
        if (x->dtype != ENCO_DT_I64 || x->ndim != 0)
            return ENCO_FAIL(ENCO_ERR_FORMAT, "tensor %s must be an int64 scalar (shape ())",
                             key);
        int64_t step;
        memcpy(&step, x->data, sizeof step);
        if (step < 1 || step > LONG_MAX - 1)
            return ENCO_FAIL(ENCO_ERR_FORMAT,
                             "tensor %s is %lld: the Adam steps taken, at least 1 (leave the "
                             "net's adam_* tensors out for fresh Adam)",
                             key, (long long)step);
        for (size_t i = 0; i < ps->count; i++) {
            const enco_param *p = &ps->list[i];
            if (!p->trainable)
                continue;
            ENCO_TRY(load_moment(t, ps, p, in, prefix, 0));
            ENCO_TRY(load_moment(t, ps, p, in, prefix, 1));
        }
        ps->adam_step = step;
    }
    return ENCO_OK;
}

enco_status enco_step_from_state(enco_ctx *ctx, const enco_config *cfg, const enco_st_file *in,
                                 const char *prefix, int use_dag_draws, enco_st_file *out,
                                 enco_trainer **trainer_out)
{
    if (trainer_out)
        *trainer_out = NULL;
    char key[256];
    snprintf(key, sizeof key, "%sreal_A", prefix);
    const enco_st_tensor *a = enco_st_find(in, key);
    if (!a || a->dtype != ENCO_DT_F32 || a->ndim != 4)
        return ENCO_FAIL(ENCO_ERR_FORMAT, "the state needs %s as float32 (N, C, H, W)", key);
    enco_trainer *t = NULL;
    ENCO_TRY(enco_trainer_create(ctx, cfg, (int)a->shape[0], (int)a->shape[2], (int)a->shape[3],
                                 &t));
    enco_status st = ENCO_OK;
    for (int i = 0; i < t->nnets && st == ENCO_OK; i++)
        st = enco_params_load(ctx, &t->nets[i], in, prefix);
    if (st == ENCO_OK)
        st = load_adam(t, in, prefix);
    if (st == ENCO_OK && t->family->load_state)
        st = t->family->load_state(t, in, prefix);
    if (st == ENCO_OK)
        st = enco_step_again(t, in, prefix, use_dag_draws, out, "");
    if (st == ENCO_OK && t->family->write_images) {
        st = t->family->write_images(t, out, "");
    } else if (st == ENCO_OK) {
        cl_mem gm = t->fake;
        size_t goff = t->fake_off;
        int64_t shape[4] = {t->n, t->cfg.model.output_nc, t->h, t->w};
        size_t img = (size_t)shape[1] * t->h * t->w;
        st = add_device(t, out, "fake_B", gm, goff, 4, shape);
        if (st == ENCO_OK && t->has_idt)
            st = add_device(t, out, "idt_B", gm, goff + (size_t)t->n * img, 4, shape);
    }
    for (int i = 0; i < t->nnets && st == ENCO_OK; i++)
        st = enco_params_save_grads(ctx, &t->nets[i], out, "grad.");
    for (int i = 0; i < t->nnets && st == ENCO_OK; i++)
        st = enco_params_save(ctx, &t->nets[i], out, "after.");
    if (st != ENCO_OK || !trainer_out)
        enco_trainer_free(t);
    else
        *trainer_out = t;
    return st;
}

enco_status enco_step_save_adam(enco_trainer *t, enco_st_file *out, const char *out_prefix)
{
    /* The checkpoint's writer, then the twin's names: adam_step.<net> has
     * no trailing dot there. */
    enco_st_file *tmp = enco_st_new();
    if (!tmp)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    enco_status st = ENCO_OK;
    for (int i = 0; i < t->nnets && st == ENCO_OK; i++)
        st = enco_params_save_moments(t->ctx, &t->nets[i], tmp);
    for (size_t i = 0; i < tmp->count && st == ENCO_OK; i++) {
        const enco_st_tensor *x = &tmp->tensors[i];
        char key[256];
        int n = snprintf(key, sizeof key, "%s%s", out_prefix, x->name);
        if (n > 0 && strncmp(x->name, "adam_step.", 10) == 0 && key[n - 1] == '.')
            key[n - 1] = '\0';
        st = enco_st_add(out, key, x->dtype, x->ndim, x->shape, x->data);
    }
    enco_st_free(tmp);
    return st;
}
