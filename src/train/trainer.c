/* The EnCo training iteration (spec section 6), all on the device: no host
 * synchronisation inside the step except uploading inputs and permutations. */
#include "train/trainer.h"

#include "ops/act.h"
#include "ops/adam.h"
#include "ops/dag.h"
#include "ops/loss.h"
#include "ops/patch.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define F4 sizeof(float)

static enco_prj_norm prj_norm_of(const char *s)
{
    return strcmp(s, "ln") == 0 ? ENCO_PRJ_LN : strcmp(s, "none") == 0 ? ENCO_PRJ_NONE : ENCO_PRJ_BN;
}

static enco_model_config model_of(const enco_config *cfg)
{
    return (enco_model_config){.input_nc = cfg->model.input_nc,
                               .output_nc = cfg->model.output_nc,
                               .ngf = cfg->model.ngf,
                               .n_blocks = cfg->model.n_blocks,
                               .ndf = cfg->model.ndf,
                               .n_layers_d = cfg->model.n_layers_D,
                               .no_antialias = cfg->model.no_antialias,
                               .no_antialias_up = cfg->model.no_antialias_up};
}

static enco_status alloc(enco_trainer *t, size_t floats, cl_mem *m)
{
    return enco_buffer_alloc(t->ctx, (floats ? floats : 1) * F4, m);
}

static enco_status plan(enco_trainer *t)
{
    const enco_config *cfg = &t->cfg;
    enco_ctx *ctx = t->ctx;
    int n = t->n, h = t->h, w = t->w;
    if (cfg->model.input_nc != cfg->model.output_nc)
        return ENCO_FAIL(ENCO_ERR_UNSUPPORTED,
                         "input_nc (%d) must equal output_nc (%d): the identity term feeds "
                         "domain B images to G",
                         cfg->model.input_nc, cfg->model.output_nc);
    enco_model_config mc = model_of(cfg);
    enco_params_init(&t->G, "netG.");
    enco_params_init(&t->D, "netD.");
    enco_params_init(&t->F, "netF.");
    /* G sees real_A and real_B together while the identity term is on. */
    ENCO_TRY(enco_models_build(&mc, h, w, &t->gnet, &t->G, 2 * n, &t->dnet, &t->D, 2 * n));
    t->ph = t->dnet.slots[t->dnet.cur].h;
    t->pw = t->dnet.slots[t->dnet.cur].w;

    t->npairs = cfg->model.n_nce_layers / 2;
    if (t->npairs > ENCO_MAX_PAIRS)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "model.nce_layers: at most %d pairs",
                         ENCO_MAX_PAIRS);
    int max_rows = 1, cin[ENCO_MAX_PAIRS];
    size_t max_hw = 1;
    for (int p = 0; p < t->npairs; p++) {
        t->key_layer[p] = cfg->model.nce_layers[p];
        t->query_layer[p] = cfg->model.nce_layers[cfg->model.n_nce_layers - 1 - p];
        cl_mem m;
        size_t off;
        int kc, kh, kw;
        ENCO_TRY(enco_seqnet_feature(&t->gnet, t->key_layer[p], &m, &off, &kc, &kh, &kw));
        ENCO_TRY(enco_seqnet_feature(&t->gnet, t->query_layer[p], &m, &off, &t->fc[p], &t->fh[p],
                                     &t->fw[p]));
        if (kc != t->fc[p] || kh != t->fh[p] || kw != t->fw[p])
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                             "model.nce_layers: key layer %d (%dx%dx%d) and query layer %d "
                             "(%dx%dx%d) differ in shape; the list must be symmetric",
                             t->key_layer[p], kc, kh, kw, t->query_layer[p], t->fc[p], t->fh[p],
                             t->fw[p]);
        t->k[p] = enco_dag_num_samples(t->fh[p], t->fw[p], cfg->train.num_patches);
        if (n * t->k[p] > max_rows)
            max_rows = n * t->k[p];
        if ((size_t)t->fh[p] * t->fw[p] > max_hw)
            max_hw = (size_t)t->fh[p] * t->fw[p];
        cin[p] = t->fc[p];
    }
    ENCO_TRY(enco_heads_build(&t->heads, &t->F, prj_norm_of(cfg->model.prj_norm), t->npairs, cin,
                              cfg->model.netF_nc, max_rows));

    ENCO_TRY(enco_params_alloc(ctx, &t->G));
    ENCO_TRY(enco_params_alloc(ctx, &t->D));
    ENCO_TRY(enco_params_alloc(ctx, &t->F));
    ENCO_TRY(enco_seqnet_finish(ctx, &t->gnet));
    ENCO_TRY(enco_seqnet_finish(ctx, &t->dnet));
    ENCO_TRY(enco_heads_alloc(ctx, &t->heads));

    size_t img = (size_t)cfg->model.input_nc * h * w;
    size_t pred = (size_t)t->ph * t->pw;
    ENCO_TRY(alloc(t, 2 * n * img, &t->real));
    ENCO_TRY(alloc(t, 2 * n * img, &t->d_in));
    ENCO_TRY(alloc(t, 2 * n * pred, &t->dpred));
    ENCO_TRY(alloc(t, 2 * n * img, &t->g_dy));
    ENCO_TRY(alloc(t, ENCO_LOSS_SLOTS, &t->losses));
    size_t wf = enco_loss_lsgan_work(n * pred);
    size_t x = enco_loss_l1_work(n * img);
    if (x > wf)
        wf = x;
    x = enco_loss_enco_work((size_t)max_rows);
    if (x > wf)
        wf = x;
    t->work_floats = wf;
    ENCO_TRY(alloc(t, wf, &t->work));
    t->perm_stride = 2 * (size_t)n * max_hw;
    t->perm_host = malloc((size_t)t->npairs * t->perm_stride * sizeof(int32_t));
    if (!t->perm_host)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    ENCO_TRY(alloc(t, (size_t)n * max_hw, &t->cand));
    ENCO_TRY(alloc(t, (size_t)n * max_hw, &t->cover));
    for (int p = 0; p < t->npairs; p++) {
        ENCO_TRY(alloc(t, (size_t)n * t->fh[p] * t->fw[p], &t->score[p]));
        ENCO_TRY(alloc(t, (size_t)n * t->k[p], &t->idx[p]));
        ENCO_TRY(alloc(t, (size_t)n * t->k[p] * cfg->model.netF_nc, &t->dq[p]));
        ENCO_TRY(alloc(t, (size_t)n * t->fc[p] * t->fh[p] * t->fw[p], &t->dfeat[p]));
    }
    return ENCO_OK;
}

enco_status enco_trainer_create(enco_ctx *ctx, const enco_config *cfg, int n, int h, int w,
                                enco_trainer **out)
{
    *out = NULL;
    ENCO_TRY(enco_config_validate(cfg));
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
    /* Pending non-blocking uploads still read perm_host (e.g. after a failed
     * step): let the queue drain before it is freed. */
    clFinish(enco_ctx_queue(ctx));
    cl_mem bufs[] = {t->real, t->d_in, t->dpred, t->g_dy, t->losses, t->work, t->cand, t->cover};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        enco_buffer_free(ctx, bufs[i]);
    for (int p = 0; p < ENCO_MAX_PAIRS; p++) {
        enco_buffer_free(ctx, t->score[p]);
        enco_buffer_free(ctx, t->idx[p]);
        enco_buffer_free(ctx, t->dq[p]);
        enco_buffer_free(ctx, t->dfeat[p]);
    }
    free(t->perm_host);
    enco_heads_free(ctx, &t->heads);
    enco_seqnet_free(ctx, &t->gnet);
    enco_seqnet_free(ctx, &t->dnet);
    enco_params_free(ctx, &t->G);
    enco_params_free(ctx, &t->D);
    enco_params_free(ctx, &t->F);
    free(t);
}

enco_status enco_trainer_init_weights(enco_trainer *t)
{
    /* One generator stream per network, so adding an option to one net never
     * changes another's initial weights. */
    uint64_t seed = (uint64_t)t->cfg.train.seed;
    enco_rng rg = enco_rng_make(seed, 100), rd = enco_rng_make(seed, 101),
             rf = enco_rng_make(seed, 102);
    ENCO_TRY(enco_params_initialize(t->ctx, &t->G, &rg, t->cfg.train.init_gain));
    ENCO_TRY(enco_params_initialize(t->ctx, &t->D, &rd, t->cfg.train.init_gain));
    ENCO_TRY(enco_params_initialize(t->ctx, &t->F, &rf, t->cfg.train.init_gain));
    enco_param_set *sets[] = {&t->G, &t->D, &t->F};
    for (int i = 0; i < 3; i++)
        if (sets[i]->n_params) {
            size_t bytes = sets[i]->n_params * F4;
            ENCO_TRY(enco_fill_zero(t->ctx, sets[i]->adam_m, 0, bytes));
            ENCO_TRY(enco_fill_zero(t->ctx, sets[i]->adam_v, 0, bytes));
        }
    t->rng = enco_rng_make(seed, 1);
    t->iteration = 0;
    return ENCO_OK;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Ends a phase: with profiling on, waits for the device and books the time
 * since the previous mark. */
static enco_status mark(enco_trainer *t, enco_phase phase, double *since)
{
    if (!t->profile)
        return ENCO_OK;
    ENCO_TRY(enco_finish(t->ctx));
    double now = now_seconds();
    t->phase_seconds[phase] += now - *since;
    *since = now;
    return ENCO_OK;
}

static enco_status adam(enco_trainer *t, enco_param_set *ps, double lr)
{
    if (!ps->n_params)
        return ENCO_OK;
    enco_adam_hparams hp = {.lr = lr * t->lr_scale, .beta1 = t->cfg.train.beta1,
                            .beta2 = t->cfg.train.beta2, .eps = t->cfg.train.eps};
    ps->adam_step++;
    return enco_adam_step(t->ctx, ps->params, 0, ps->adam_m, 0, ps->adam_v, 0, ps->grads, 0,
                          ps->n_params, &hp, (long)ps->adam_step);
}

static enco_status zero_grads(enco_trainer *t, enco_param_set *ps)
{
    return ps->n_params ? enco_fill_zero(t->ctx, ps->grads, 0, ps->n_params * F4) : ENCO_OK;
}

static enco_status combine(enco_trainer *t, int out, const int *slots, const float *weights,
                           size_t count)
{
    cl_mem mems[ENCO_LOSS_COMBINE_MAX];
    size_t offs[ENCO_LOSS_COMBINE_MAX];
    for (size_t i = 0; i < count; i++) {
        mems[i] = t->losses;
        offs[i] = (size_t)slots[i];
    }
    return enco_loss_combine(t->ctx, t->losses, (size_t)out, mems, offs, weights, count);
}

/* Spec section 6, step 2: D on (fake_B detached, real_B), LSGAN, Adam on D. */
static enco_status d_step(enco_trainer *t, cl_mem gout, size_t gout_off, double *since)
{
    enco_ctx *ctx = t->ctx;
    int n = t->n;
    size_t img = (size_t)t->cfg.model.output_nc * t->h * t->w;
    size_t pred = (size_t)t->ph * t->pw * n;
    ENCO_TRY(enco_copy(ctx, t->d_in, 0, gout, gout_off * F4, n * img * F4));
    ENCO_TRY(enco_copy(ctx, t->d_in, n * img * F4, t->real, n * img * F4, n * img * F4));
    ENCO_TRY(zero_grads(t, &t->D));
    ENCO_TRY(enco_seqnet_forward(ctx, &t->dnet, t->d_in, 0, 2 * n));
    cl_mem dout;
    size_t doff;
    enco_seqnet_output(&t->dnet, &dout, &doff, NULL, NULL, NULL);
    ENCO_TRY(enco_loss_lsgan(ctx, t->losses, ENCO_LOSS_D_FAKE, t->dpred, 0, dout, doff, pred,
                             0.0f, 0.5f, t->work, 0));
    ENCO_TRY(enco_loss_lsgan(ctx, t->losses, ENCO_LOSS_D_REAL, t->dpred, pred, dout, doff + pred,
                             pred, 1.0f, 0.5f, t->work, 0));
    ENCO_TRY(combine(t, ENCO_LOSS_D, (int[]){ENCO_LOSS_D_FAKE, ENCO_LOSS_D_REAL},
                     (float[]){0.5f, 0.5f}, 2));
    ENCO_TRY(enco_seqnet_backward(ctx, &t->dnet, t->dpred, 0, NULL, 0, 1, NULL, 0));
    ENCO_TRY(adam(t, &t->D, t->cfg.train.lr_D));
    return mark(t, ENCO_PHASE_D_STEP, since);
}

/* Lays given DAG draws out as the permutation rows the DAG kernel reads:
 * candidates first in cand rows, covering positions last in cover rows. */
static enco_status upload_draws(enco_trainer *t, int p, const int32_t *cand, const int32_t *cover)
{
    int n = t->n, hw = t->fh[p] * t->fw[p], K = t->k[p];
    int m = t->cfg.train.oversample_ratio * K < hw ? t->cfg.train.oversample_ratio * K : hw;
    int r = (int)((double)K * t->cfg.train.random_ratio);
    ENCO_TRY(enco_patch_check_indices(cand, (size_t)n, (size_t)m, (size_t)hw));
    if (r > 0)
        ENCO_TRY(enco_patch_check_indices(cover, (size_t)n, (size_t)r, (size_t)hw));
    int32_t *rows = calloc((size_t)hw, sizeof *rows);
    if (!rows)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    enco_status st = ENCO_OK;
    for (int i = 0; i < n && st == ENCO_OK; i++) {
        memset(rows, 0, (size_t)hw * sizeof *rows);
        memcpy(rows, cand + (size_t)i * m, (size_t)m * sizeof *rows);
        st = enco_upload(t->ctx, t->cand, (size_t)i * hw * sizeof *rows, (size_t)hw * sizeof *rows,
                         rows);
        if (st != ENCO_OK)
            break;
        memset(rows, 0, (size_t)hw * sizeof *rows);
        if (r > 0)
            memcpy(rows + hw - r, cover + (size_t)i * r, (size_t)r * sizeof *rows);
        st = enco_upload(t->ctx, t->cover, (size_t)i * hw * sizeof *rows,
                         (size_t)hw * sizeof *rows, rows);
    }
    free(rows);
    return st;
}

static enco_status sample(enco_trainer *t, int p, cl_mem dout, size_t doff,
                          const enco_sampling_override *ov)
{
    enco_ctx *ctx = t->ctx;
    int n = t->n, hw = t->fh[p] * t->fw[p];
    if (ov && ov->patch_ids[p]) {
        ENCO_TRY(enco_patch_check_indices(ov->patch_ids[p], (size_t)n, (size_t)t->k[p],
                                          (size_t)hw));
        return enco_upload(ctx, t->idx[p], 0, (size_t)n * t->k[p] * sizeof(int32_t),
                           ov->patch_ids[p]);
    }
    int given = ov && ov->cand[p];
    /* Draws made at the start of the G step (draw_perms), uploaded without a
     * host sync; the staging area stays untouched until the next iteration,
     * whose blocking input upload waits for this one's queue. */
    const int32_t *stage = t->perm_host + (size_t)p * t->perm_stride;
    size_t bytes = (size_t)n * hw * sizeof(int32_t);
    if (strcmp(t->cfg.train.sampling, "random") == 0) {
        ENCO_TRY(enco_upload_async(ctx, t->cand, 0, bytes, stage));
        return enco_dag_random_forward(ctx, t->idx[p], 0, t->cand, 0, n, t->fh[p], t->fw[p],
                                       t->cfg.train.num_patches);
    }
    ENCO_TRY(enco_bilinear_forward(ctx, t->score[p], 0, dout, doff, (size_t)n, 1, (size_t)t->ph,
                                   (size_t)t->pw, (size_t)t->fh[p], (size_t)t->fw[p]));
    if (given)
        ENCO_TRY(upload_draws(t, p, ov->cand[p], ov->cover[p]));
    else {
        ENCO_TRY(enco_upload_async(ctx, t->cand, 0, bytes, stage));
        ENCO_TRY(enco_upload_async(ctx, t->cover, 0, bytes, stage + (size_t)n * hw));
    }
    return enco_dag_forward(ctx, t->idx[p], 0, t->score[p], 0, t->cand, 0, t->cover, 0, n,
                            t->fh[p], t->fw[p], t->cfg.train.num_patches,
                            t->cfg.train.oversample_ratio, t->cfg.train.random_ratio,
                            strcmp(t->cfg.train.dag_order, "descending") == 0);
}

/* The permutations every pair samples from this iteration, drawn in pair
 * order (the generator's sequence does not depend on the device). */
static enco_status draw_perms(enco_trainer *t, const enco_sampling_override *ov)
{
    int dag = strcmp(t->cfg.train.sampling, "random") != 0;
    for (int p = 0; p < t->npairs; p++) {
        if (ov && !ov->keep_draws && (ov->patch_ids[p] || (dag && ov->cand[p])))
            continue;
        int hw = t->fh[p] * t->fw[p];
        int32_t *stage = t->perm_host + (size_t)p * t->perm_stride;
        ENCO_TRY(enco_dag_make_perms(&t->rng, stage, dag ? stage + (size_t)t->n * hw : NULL,
                                     t->n, hw));
    }
    return ENCO_OK;
}

/* Spec section 6, step 3: G and F against the updated, frozen D. */
static enco_status g_step(enco_trainer *t, cl_mem gout, size_t gout_off,
                          const enco_sampling_override *ov, double *since)
{
    enco_ctx *ctx = t->ctx;
    const enco_config *cfg = &t->cfg;
    int n = t->n, P = t->npairs;
    size_t img = (size_t)cfg->model.output_nc * t->h * t->w;
    size_t pred = (size_t)t->ph * t->pw * n;
    /* The reference counts the identity term only while lambda_NCE > 0. */
    int idt_counted = t->idt_on && cfg->train.lambda_NCE > 0;
    float half = idt_counted ? 0.5f : 1.0f;

    ENCO_TRY(zero_grads(t, &t->G));
    ENCO_TRY(zero_grads(t, &t->F));
    ENCO_TRY(enco_seqnet_forward(ctx, &t->dnet, gout, gout_off, n));
    cl_mem dout;
    size_t doff;
    enco_seqnet_output(&t->dnet, &dout, &doff, NULL, NULL, NULL);
    ENCO_TRY(enco_loss_lsgan(ctx, t->losses, ENCO_LOSS_GAN_RAW, t->dpred, 0, dout, doff, pred,
                             1.0f, (float)cfg->train.lambda_GAN, t->work, 0));
    ENCO_TRY(combine(t, ENCO_LOSS_G_GAN, (int[]){ENCO_LOSS_GAN_RAW},
                     (float[]){(float)cfg->train.lambda_GAN}, 1));
    /* dL/d fake_B through the frozen D (no D parameter gradients). */
    ENCO_TRY(enco_seqnet_backward(ctx, &t->dnet, t->dpred, 0, t->g_dy, 0, 0, NULL, 0));
    ENCO_TRY(mark(t, ENCO_PHASE_G_GAN, since));

    ENCO_TRY(draw_perms(t, ov));
    /* Queries of every pair first, then keys: BatchNorm running statistics
     * are updated in the reference's order. */
    for (int p = 0; p < P; p++) {
        ENCO_TRY(sample(t, p, dout, doff, ov));
        cl_mem fm;
        size_t fo;
        int c, h, w;
        ENCO_TRY(enco_seqnet_feature(&t->gnet, t->query_layer[p], &fm, &fo, &c, &h, &w));
        ENCO_TRY(enco_heads_forward(ctx, &t->heads, p, 1, fm, fo, t->idx[p], 0, n, h, w,
                                    t->k[p]));
    }
    enco_feature_grad inject[ENCO_MAX_PAIRS];
    int slots[ENCO_MAX_PAIRS];
    float weights[ENCO_MAX_PAIRS];
    for (int p = 0; p < P; p++) {
        cl_mem fm;
        size_t fo;
        int c, h, w;
        ENCO_TRY(enco_seqnet_feature(&t->gnet, t->key_layer[p], &fm, &fo, &c, &h, &w));
        ENCO_TRY(enco_heads_forward(ctx, &t->heads, p, 0, fm, fo, t->idx[p], 0, n, h, w,
                                    t->k[p]));
        size_t rows = (size_t)n * t->k[p];
        float scale = half * (float)(cfg->train.lambda_NCE / P);
        ENCO_TRY(enco_loss_enco(ctx, t->losses, (size_t)ENCO_LOSS_ENCO_PAIR0 + p, t->dq[p], 0,
                                t->heads.query[p].out, 0, t->heads.key[p].out, 0, rows,
                                (size_t)cfg->model.netF_nc, scale, t->work, 0));
        slots[p] = ENCO_LOSS_ENCO_PAIR0 + p;
        weights[p] = (float)(cfg->train.lambda_NCE / P);
    }
    ENCO_TRY(combine(t, ENCO_LOSS_ENCO, slots, weights, (size_t)P));

    if (t->idt_on) {
        ENCO_TRY(enco_loss_l1(ctx, t->losses, ENCO_LOSS_IDT_RAW, t->g_dy, n * img, gout,
                              gout_off + n * img, t->real, n * img, n * img,
                              idt_counted ? 0.5f * (float)cfg->train.lambda_IDT : 0.0f, t->work,
                              0));
        ENCO_TRY(combine(t, ENCO_LOSS_IDT, (int[]){ENCO_LOSS_IDT_RAW},
                         (float[]){(float)cfg->train.lambda_IDT}, 1));
    } else {
        ENCO_TRY(enco_fill(ctx, t->losses, ENCO_LOSS_IDT, 1, 0.0f));
    }
    if (idt_counted)
        ENCO_TRY(combine(t, ENCO_LOSS_G, (int[]){ENCO_LOSS_G_GAN, ENCO_LOSS_ENCO, ENCO_LOSS_IDT},
                         (float[]){1.0f, 0.5f, 0.5f}, 3));
    else
        ENCO_TRY(combine(t, ENCO_LOSS_G, (int[]){ENCO_LOSS_G_GAN, ENCO_LOSS_ENCO},
                         (float[]){1.0f, 1.0f}, 2));

    for (int p = 0; p < P; p++) {
        size_t fsize = (size_t)n * t->fc[p] * t->fh[p] * t->fw[p];
        ENCO_TRY(enco_fill_zero(ctx, t->dfeat[p], 0, fsize * F4));
        ENCO_TRY(enco_heads_backward(ctx, &t->heads, p, t->dq[p], 0, t->dfeat[p], 0, t->idx[p], 0,
                                     n, t->fh[p], t->fw[p], t->k[p]));
        inject[p] = (enco_feature_grad){t->query_layer[p], t->dfeat[p], 0, n};
    }
    ENCO_TRY(mark(t, ENCO_PHASE_HEADS, since));
    ENCO_TRY(enco_seqnet_backward(ctx, &t->gnet, t->g_dy, 0, NULL, 0, 1, inject, (size_t)P));
    ENCO_TRY(mark(t, ENCO_PHASE_G_BACKWARD, since));
    ENCO_TRY(adam(t, &t->G, cfg->train.lr_G));
    ENCO_TRY(adam(t, &t->F, cfg->train.lr_F));
    return mark(t, ENCO_PHASE_OPTIMIZER, since);
}

enco_status enco_trainer_step(enco_trainer *t, const float *real_a, const float *real_b,
                              const enco_sampling_override *ov)
{
    enco_ctx *ctx = t->ctx;
    int n = t->n;
    size_t img = (size_t)t->cfg.model.input_nc * t->h * t->w;
    ENCO_TRY(enco_upload(ctx, t->real, 0, n * img * F4, real_a));
    ENCO_TRY(enco_upload(ctx, t->real, n * img * F4, n * img * F4, real_b));
    double since = t->profile ? now_seconds() : 0;
    int gn = t->idt_on ? 2 * n : n;
    ENCO_TRY(enco_seqnet_forward(ctx, &t->gnet, t->real, 0, gn));
    ENCO_TRY(mark(t, ENCO_PHASE_G_FORWARD, &since));
    cl_mem gout;
    size_t goff;
    enco_seqnet_output(&t->gnet, &gout, &goff, NULL, NULL, NULL);
    ENCO_TRY(d_step(t, gout, goff, &since));
    ENCO_TRY(g_step(t, gout, goff, ov, &since));
    t->iteration++;
    return ENCO_OK;
}

enco_status enco_trainer_losses(enco_trainer *t, float out[ENCO_LOSS_SLOTS])
{
    return enco_download(t->ctx, t->losses, 0, ENCO_LOSS_SLOTS * F4, out);
}

enco_status enco_trainer_patch_ids(enco_trainer *t, int p, int32_t *out)
{
    if (p < 0 || p >= t->npairs)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "no pair %d", p);
    return enco_download(t->ctx, t->idx[p], 0, (size_t)t->n * t->k[p] * sizeof(int32_t), out);
}
