/* The generic training iteration: the family's phases, each followed by the
 * gradient reduction seam and the phase's Adam updates. */
#include "train/trainer.h"

#include "models/family.h"
#include "ops/adam.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define F4 sizeof(float)

static enco_status plan(enco_trainer *t)
{
    const enco_family *fam = t->family;
    t->nnets = fam->nnets;
    for (int i = 0; i < fam->nnets; i++) {
        char prefix[sizeof t->nets[i].prefix];
        int len = snprintf(prefix, sizeof prefix, "net%s.", fam->nets[i]);
        if (len < 0 || (size_t)len >= sizeof prefix)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "network name %s is too long", fam->nets[i]);
        enco_params_init(&t->nets[i], prefix);
    }
    for (int i = 0; i < ENCO_MAX_NETS; i++) {
        t->net_beta1[i] = t->cfg.train.beta1;
        t->net_beta2[i] = t->cfg.train.beta2;
    }
    ENCO_TRY(fam->plan(t));
    size_t img = (size_t)t->cfg.model.input_nc * t->h * t->w;
    ENCO_TRY(enco_buffer_alloc(t->ctx, 2 * (size_t)t->n * img * F4, &t->real));
    ENCO_TRY(enco_buffer_alloc(t->ctx, ENCO_LOSS_SLOTS * F4, &t->losses));
    return enco_fill_zero(t->ctx, t->losses, 0, ENCO_LOSS_SLOTS * F4);
}

enco_status enco_trainer_create(enco_ctx *ctx, const enco_config *cfg, int n, int h, int w,
                                enco_trainer **out)
{
    *out = NULL;
    ENCO_TRY(enco_config_validate(cfg));
    const enco_family *fam = enco_family_find(cfg->model.family);
    if (!fam)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "model.family \"%s\" is not a family enco-cl "
                         "trains",
                         cfg->model.family);
    if (n < 1 || h < 8 || w < 8 || h % 4 || w % 4)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "training images of %dx%d in batches of %d: sizes must be multiples of "
                         "4 and at least 8, the batch at least 1",
                         h, w, n);
    enco_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    t->ctx = ctx;
    t->cfg = *cfg;
    t->family = fam;
    t->n = n, t->h = h, t->w = w;
    t->lr_scale = 1.0;
    t->idt_on = cfg->train.nce_idt;
    t->rng = enco_rng_make((uint64_t)cfg->train.seed, 1);
    enco_status st = plan(t);
    if (st == CL_INVALID_BUFFER_SIZE || st == CL_MEM_OBJECT_ALLOCATION_FAILURE ||
        st == CL_OUT_OF_RESOURCES) {
        const enco_device_info *d = enco_ctx_device(ctx);
        enco_error_append("; training %dx%d images in batches of %d does not fit on %s "
                          "(%llu MiB, at most %llu MiB per buffer): try a smaller data.crop_size "
                          "or train.batch_size, or a smaller model (model.ngf)",
                          w, h, n, d->name, (unsigned long long)(d->global_mem_bytes >> 20),
                          (unsigned long long)(d->max_alloc_bytes >> 20));
    }
    if (st != ENCO_OK) {
        enco_trainer_free(t);
        return st;
    }
    *out = t;
    return ENCO_OK;
}

void enco_trainer_free(enco_trainer *t)
{
    if (!t)
        return;
    enco_ctx *ctx = t->ctx;
    /* Pending non-blocking uploads still read the family's staging (e.g.
     * after a failed step): let the queue drain before it is freed. */
    clFinish(enco_ctx_queue(ctx));
    if (t->family->release)
        t->family->release(t);
    enco_buffer_free(ctx, t->real);
    enco_buffer_free(ctx, t->losses);
    for (int p = 0; p < ENCO_MAX_PAIRS; p++) {
        enco_buffer_free(ctx, t->score[p]);
        enco_buffer_free(ctx, t->idx[p]);
        enco_buffer_free(ctx, t->idx_y[p]);
    }
    enco_seqnet_free(ctx, &t->gnet);
    enco_seqnet_free(ctx, &t->dnet);
    for (int i = 0; i < ENCO_MAX_NETS; i++)
        enco_params_free(ctx, &t->nets[i]);
    for (int i = 0; i < ENCO_MAX_NETS; i++) {
        free(t->watch[i].lo_of);
        free(t->watch[i].ev);
        free(t->watch[i].host);
    }
    free(t->gather_host);
    free(t);
}

enco_status enco_trainer_init_weights(enco_trainer *t)
{
    /* One generator stream per network, so adding an option to one net never
     * changes another's initial weights. */
    uint64_t seed = (uint64_t)t->cfg.train.seed;
    for (int i = 0; i < t->nnets; i++) {
        enco_rng r = enco_rng_make(seed, 100 + (uint64_t)i);
        ENCO_TRY(enco_params_initialize(t->ctx, &t->nets[i], &r, t->cfg.train.init_gain));
    }
    for (int i = 0; i < t->nnets; i++)
        if (t->nets[i].n_params) {
            size_t bytes = t->nets[i].n_params * F4;
            ENCO_TRY(enco_fill_zero(t->ctx, t->nets[i].adam_m, 0, bytes));
            ENCO_TRY(enco_fill_zero(t->ctx, t->nets[i].adam_v, 0, bytes));
        }
    t->rng = enco_rng_make(seed, 1);
    t->iteration = 0;
    if (t->family->reset)
        t->family->reset(t);
    return ENCO_OK;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enco_status enco_trainer_mark(enco_trainer *t, int timer, double *since)
{
    if (!t->profile || timer < 0 || timer >= ENCO_MAX_TIMERS)
        return ENCO_OK;
    ENCO_TRY(enco_finish(t->ctx));
    double now = now_seconds();
    t->phase_seconds[timer] += now - *since;
    *since = now;
    return ENCO_OK;
}

static enco_status adam(enco_trainer *t, int net)
{
    enco_param_set *ps = &t->nets[net];
    if (!ps->n_params)
        return ENCO_OK;
    enco_adam_hparams hp = {.lr = t->net_lr[net] * t->lr_scale,
                            .beta1 = t->net_beta1[net],
                            .beta2 = t->net_beta2[net],
                            .eps = t->cfg.train.eps};
    ps->adam_step++;
    enco_ctx_trace_op(t->ctx, "adam", t->family->nets[net], enco_adam_cost(ps->n_params),
                      "%zu params", ps->n_params);
    return enco_adam_step(t->ctx, ps->params, 0, ps->adam_m, 0, ps->adam_v, 0, ps->grads, 0,
                          ps->n_params, &hp, (long)ps->adam_step);
}

/* Enqueues the download of net's gradients [lo, hi) as its next bucket. */
static enco_status enqueue_bucket(enco_trainer *t, int net, size_t lo)
{
    enco_grad_watch *w = &t->watch[net];
    enco_param_set *ps = &t->nets[net];
    if (w->nb >= w->cap)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: more gradient buckets than planned",
                         t->family->nets[net]);
    ENCO_TRY(enco_download_async(t->ctx, ps->grads, lo * F4, (w->hi - lo) * F4, w->host + lo,
                                 &w->ev[w->nb]));
    w->lo_of[w->nb++] = lo;
    w->hi = lo;
    return ENCO_OK;
}

/* seqnet's hook: the backward has enqueued net's gradients from lo on. */
static enco_status grads_enqueued(void *user, size_t lo)
{
    enco_trainer *t = *(enco_trainer **)user;
    const int net = (int)((enco_trainer **)user - t->watch_self);
    enco_grad_watch *w = &t->watch[net];
    return w->hi > lo && w->hi - lo >= t->bucket_floats ? enqueue_bucket(t, net, lo) : ENCO_OK;
}

enco_status enco_trainer_watch_grads(enco_trainer *t, int net, enco_seqnet *sn)
{
    if (t->reducer.size <= 1)
        return ENCO_OK;
    if (net < 0 || net >= t->nnets || sn->ps != &t->nets[net])
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "watch_grads: network %d is not that definition's",
                         net);
    enco_grad_watch *w = &t->watch[net];
    w->sn = sn;
    w->hi = t->nets[net].n_params;
    w->nb = 0;
    sn->grads_enqueued = grads_enqueued;
    sn->grads_user = &t->watch_self[net];
    return ENCO_OK;
}

void enco_trainer_dp_stats(const enco_trainer *t, long *buckets, long *overlapped)
{
    if (buckets)
        *buckets = t->dp_buckets;
    if (overlapped)
        *overlapped = t->dp_overlapped;
}

/* The seam where data-parallel training sums a phase's gradients across
 * processes before its updates: each net's gradients go to the host in
 * buckets (those of a watched net already on their way while its backward
 * ran), each bucket is summed (the same bits on every process, whatever the
 * buckets: the sums are element by element in process order) and divided
 * by the process count (each process's gradient is its share's mean; the
 * step is the whole batch's), and goes back. Every process makes the same
 * sums in the same order: the buckets follow the layers, the same
 * everywhere. One process: nothing to do. */
static enco_status reduce_gradients(enco_trainer *t, const enco_phase_def *ph)
{
    if (t->reducer.size <= 1)
        return ENCO_OK;
    enco_status st = ENCO_OK;
    for (int i = 0; i < ph->nnets; i++) {
        const int net = ph->nets[i];
        enco_grad_watch *w = &t->watch[net];
        if (w->sn) { /* disarm: the phase's last backward of it has been enqueued */
            w->sn->grads_enqueued = NULL;
            w->sn->grads_user = NULL;
            w->sn = NULL;
        } else {
            w->hi = t->nets[net].n_params;
            w->nb = 0;
        }
        if (st == ENCO_OK && w->hi > 0)
            st = enqueue_bucket(t, net, 0);
    }
    cl_event end = NULL;
    if (st == ENCO_OK)
        st = enco_marker(t->ctx, &end);
    if (st == ENCO_OK)
        st = enco_flush(t->ctx);
    const float scale = 1.0f / (float)t->reducer.size;
    for (int i = 0; i < ph->nnets; i++) {
        const int net = ph->nets[i];
        enco_grad_watch *w = &t->watch[net];
        enco_param_set *ps = &t->nets[net];
        for (int b = 0; b < w->nb; b++) {
            if (st != ENCO_OK) { /* release the rest */
                enco_event_release(w->ev[b]);
                continue;
            }
            const size_t lo = w->lo_of[b], hi = b ? w->lo_of[b - 1] : ps->n_params;
            st = enco_event_wait(w->ev[b]);
            if (st == ENCO_OK)
                st = t->reducer.sum(t->reducer.user, w->host + lo, hi - lo);
            if (st != ENCO_OK)
                continue;
            for (size_t j = lo; j < hi; j++)
                w->host[j] *= scale;
            t->dp_buckets++;
            t->dp_overlapped += !enco_event_done(end);
            st = enco_upload_async(t->ctx, ps->grads, lo * F4, (hi - lo) * F4, w->host + lo);
        }
        w->nb = 0;
    }
    enco_event_release(end);
    return st;
}

enco_status enco_trainer_set_reducer(enco_trainer *t, const enco_grad_reducer *r)
{
    enco_status (*set_sync)(enco_trainer *, const enco_stat_sync *) = t->family->set_stat_sync;
    if (r->size <= 1) {
        t->reducer = (enco_grad_reducer){0};
        return set_sync ? set_sync(t, NULL) : ENCO_OK;
    }
    if (!r->sum || r->rank < 0 || r->rank >= r->size)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "data-parallel rank %d of %d", r->rank, r->size);
    if (set_sync && !r->sum_doubles)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "model.family \"%s\" on %d processes needs the "
                         "sum of its statistics across them (sum_doubles)",
                         t->family->name, r->size);
    /* the refusal reads the reducer (which of its collectives exist) */
    const enco_grad_reducer before = t->reducer;
    t->reducer = *r;
    const char *why = t->family->data_parallel_refusal
                          ? t->family->data_parallel_refusal(t)
                          : "its iteration has not been made data-parallel yet";
    t->reducer = before;
    if (why)
        return ENCO_FAIL(ENCO_ERR_UNSUPPORTED,
                         "model.family \"%s\" cannot train on %d processes: %s (issue 17); "
                         "train it on one",
                         t->family->name, r->size, why);
    t->bucket_floats = (size_t)t->cfg.train.dp_bucket_kb * 1024 / F4;
    for (int i = 0; i < t->nnets; i++) {
        enco_grad_watch *w = &t->watch[i];
        const size_t n = t->nets[i].n_params;
        /* a bucket holds at least bucket_floats, but the last */
        const int cap = (int)(n / t->bucket_floats) + 2;
        size_t *lo_of = realloc(w->lo_of, (size_t)cap * sizeof *lo_of);
        if (lo_of)
            w->lo_of = lo_of;
        cl_event *ev = realloc(w->ev, (size_t)cap * sizeof *ev);
        if (ev)
            w->ev = ev;
        float *host = realloc(w->host, (n ? n : 1) * F4);
        if (host)
            w->host = host;
        if (!lo_of || !ev || !host)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        w->cap = cap;
        w->nb = 0;
        w->sn = NULL;
        t->watch_self[i] = t;
    }
    t->reducer = *r;
    if (set_sync)
        ENCO_TRY(set_sync(t, &(enco_stat_sync){r->user, r->sum_doubles}));
    return ENCO_OK;
}

enco_status enco_trainer_step(enco_trainer *t, const float *real_a, const float *real_b,
                              const enco_sampling_override *ov)
{
    enco_ctx *ctx = t->ctx;
    int n = t->n;
    size_t img = (size_t)t->cfg.model.input_nc * t->h * t->w;
    const enco_family *fam = t->family;
    enco_ctx_trace_op(ctx, "upload", "input", (enco_op_cost){0, 2.0 * n * img * F4},
                      "2x n%d %dx%dx%d", n, t->cfg.model.input_nc, t->h, t->w);
    ENCO_TRY(enco_upload(ctx, t->real, 0, n * img * F4, real_a));
    ENCO_TRY(enco_upload(ctx, t->real, n * img * F4, n * img * F4, real_b));
    if (fam->upload)
        ENCO_TRY(fam->upload(t, real_a, real_b, ov));
    double since = t->profile ? now_seconds() : 0;
    for (int p = 0; p < fam->nphases; p++) {
        const enco_phase_def *ph = &fam->phases[p];
        for (int i = 0; i < ph->nnets; i++) {
            enco_param_set *ps = &t->nets[ph->nets[i]];
            if (!ps->n_params)
                continue;
            char where[32];
            snprintf(where, sizeof where, "%s grads", fam->nets[ph->nets[i]]);
            enco_ctx_trace_op(ctx, "fill", where, (enco_op_cost){0, 4.0 * ps->n_params},
                              "%zu params", ps->n_params);
            ENCO_TRY(enco_fill_zero(ctx, ps->grads, 0, ps->n_params * F4));
        }
        ENCO_TRY(fam->phase(t, p, ov, &since));
        ENCO_TRY(reduce_gradients(t, ph));
        for (int i = 0; i < ph->nnets; i++)
            ENCO_TRY(adam(t, ph->nets[i]));
        enco_ctx_trace_close(ctx);
        ENCO_TRY(enco_trainer_mark(t, ph->timer, &since));
    }
    t->iteration++;
    return ENCO_OK;
}

enco_status enco_trainer_losses(enco_trainer *t, float out[ENCO_LOSS_SLOTS])
{
    return enco_download(t->ctx, t->losses, 0, ENCO_LOSS_SLOTS * F4, out);
}

enco_status enco_trainer_losses_mean(enco_trainer *t, float out[ENCO_LOSS_SLOTS])
{
    ENCO_TRY(enco_trainer_losses(t, out));
    if (t->reducer.size <= 1)
        return ENCO_OK;
    ENCO_TRY(t->reducer.sum(t->reducer.user, out, ENCO_LOSS_SLOTS));
    for (int i = 0; i < ENCO_LOSS_SLOTS; i++)
        out[i] /= (float)t->reducer.size;
    return ENCO_OK;
}

enco_status enco_trainer_patch_ids(enco_trainer *t, int p, int32_t *out)
{
    if (p < 0 || p >= t->npairs)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "no sampled map %d", p);
    return enco_download(t->ctx, t->idx[p], 0, (size_t)t->n * t->k[p] * sizeof(int32_t), out);
}

int enco_trainer_loss_feature(const enco_trainer *t, int module)
{
    for (int i = 0; i < t->nloss_features; i++)
        if (t->loss_features[i] == module)
            return 1;
    return 0;
}

int enco_trainer_loss_count(const enco_trainer *t)
{
    return t->family->loss_count(t);
}

const char *enco_trainer_loss_name(const enco_trainer *t, int i, char *buf, size_t size, int *flags)
{
    int f = 0;
    const char *r = t->family->loss_name(t, i, buf, size, &f);
    if (flags)
        *flags = f;
    return r;
}

int enco_trainer_loss_slot(const enco_trainer *t, const char *name)
{
    char buf[64];
    for (int i = 0; i < enco_trainer_loss_count(t); i++)
        if (enco_trainer_loss_name(t, i, buf, sizeof buf, NULL) && strcmp(buf, name) == 0)
            return i;
    return -1;
}

int enco_trainer_timer_count(const enco_trainer *t)
{
    return t->family->ntimers;
}

const char *enco_trainer_timer_name(const enco_trainer *t, int i)
{
    return i >= 0 && i < t->family->ntimers ? t->family->timers[i] : "?";
}
