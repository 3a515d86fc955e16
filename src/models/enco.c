/* The EnCo family (docs/enco.md; spec ENCO.md section 6): G and D of the
 * reference, projection/prediction heads F over pairs of G's features, DAG
 * sampling ranked by D's output, the EnCo loss and the L1 identity term.
 * One iteration: phase "D" (G forward, D on fake_B detached and real_B, Adam
 * on D), then phase "G+F" (D frozen: GAN loss, heads, EnCo and identity
 * losses, G backward, Adam on G then F). All on the device: no host
 * synchronisation inside the step except uploading inputs and draws. */
#include "models/enco.h"
#include "models/common.h"
#include "models/family.h"

#include "ops/act.h"
#include "ops/dag.h"
#include "ops/loss.h"
#include "ops/patch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F4 sizeof(float)

enum { NET_G = 0, NET_D = 1, NET_F = 2 };

typedef struct enco_state {
    int key_layer[ENCO_MAX_PAIRS], query_layer[ENCO_MAX_PAIRS];
    enco_heads heads;
    cl_mem d_in;  /* (2N, 3, H, W): D step input, fake_B then real_B */
    cl_mem dpred; /* (2N, 1, ph, pw) */
    cl_mem g_dy;  /* (2N, 3, H, W) gradient of G's output */
    cl_mem work;  /* loss scratch */
    size_t work_floats;
    cl_mem cand, cover;           /* (N, max fh*fw) int32 */
    int32_t *perm_host;           /* per pair: cand then cover draws (2, N, fh*fw), staged
                                   * for non-blocking uploads within an iteration */
    size_t perm_stride;           /* int32 per pair in perm_host */
    int32_t *perm_global;         /* data-parallel: one pair's draws for the whole batch */
    cl_mem dq[ENCO_MAX_PAIRS];    /* (N*K, nc) */
    cl_mem dfeat[ENCO_MAX_PAIRS]; /* (N, C, fh, fw) */
} enco_state;

static enco_status mark(enco_trainer *t, int timer, double *since)
{
    return enco_trainer_mark(t, timer, since);
}

static enco_prj_norm prj_norm_of(const char *s)
{
    return strcmp(s, "ln") == 0     ? ENCO_PRJ_LN
           : strcmp(s, "none") == 0 ? ENCO_PRJ_NONE
                                    : ENCO_PRJ_BN;
}

static enco_status plan(enco_trainer *t)
{
    enco_state *es = calloc(1, sizeof *es);
    if (!es)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    t->state = es;
    const enco_config *cfg = &t->cfg;
    enco_ctx *ctx = t->ctx;
    int n = t->n, h = t->h, w = t->w;
    if (cfg->model.input_nc != cfg->model.output_nc)
        return ENCO_FAIL(ENCO_ERR_UNSUPPORTED,
                         "input_nc (%d) must equal output_nc (%d): the identity term feeds "
                         "domain B images to G",
                         cfg->model.input_nc, cfg->model.output_nc);
    enco_model_config mc = enco_family_model_config(cfg);
    t->net_lr[NET_G] = cfg->train.lr_G;
    t->net_lr[NET_D] = cfg->train.lr_D;
    t->net_lr[NET_F] = cfg->train.lr_F;
    /* G sees real_A and real_B together while the identity term is on. */
    ENCO_TRY(enco_models_build(&mc, h, w, &t->gnet, &t->G, 2 * n, &t->dnet, &t->D, 2 * n));
    t->netdef[0] = &t->gnet;
    t->netdef[1] = &t->dnet;
    t->loss_feature_net[0] = 1;
    t->ph = t->dnet.slots[t->dnet.cur].h;
    t->pw = t->dnet.slots[t->dnet.cur].w;

    t->npairs = cfg->model.n_nce_layers / 2;
    t->ranked_picks = strcmp(cfg->train.sampling, "random") != 0;
    t->nloss_features = cfg->model.n_nce_layers;
    memcpy(t->loss_features, cfg->model.nce_layers, sizeof t->loss_features);
    if (t->npairs > ENCO_MAX_PAIRS)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "model.nce_layers: at most %d pairs",
                         ENCO_MAX_PAIRS);
    int max_rows = 1, cin[ENCO_MAX_PAIRS];
    size_t max_hw = 1;
    for (int p = 0; p < t->npairs; p++) {
        es->key_layer[p] = cfg->model.nce_layers[p];
        es->query_layer[p] = cfg->model.nce_layers[cfg->model.n_nce_layers - 1 - p];
        cl_mem m;
        size_t off;
        int kc, kh, kw;
        ENCO_TRY(enco_seqnet_feature(&t->gnet, es->key_layer[p], &m, &off, &kc, &kh, &kw));
        ENCO_TRY(enco_seqnet_feature(&t->gnet, es->query_layer[p], &m, &off, &t->fc[p], &t->fh[p],
                                     &t->fw[p]));
        if (kc != t->fc[p] || kh != t->fh[p] || kw != t->fw[p])
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                             "model.nce_layers: key layer %d (%dx%dx%d) and query layer %d "
                             "(%dx%dx%d) differ in shape; the list must be symmetric",
                             es->key_layer[p], kc, kh, kw, es->query_layer[p], t->fc[p], t->fh[p],
                             t->fw[p]);
        t->k[p] = enco_dag_num_samples(t->fh[p], t->fw[p], cfg->train.num_patches);
        if (n * t->k[p] > max_rows)
            max_rows = n * t->k[p];
        if ((size_t)t->fh[p] * t->fw[p] > max_hw)
            max_hw = (size_t)t->fh[p] * t->fw[p];
        cin[p] = t->fc[p];
    }
    ENCO_TRY(enco_heads_build(&es->heads, &t->F, prj_norm_of(cfg->model.prj_norm), t->npairs, cin,
                              cfg->model.netF_nc, max_rows));

    for (int i = 0; i < t->nnets; i++)
        ENCO_TRY(enco_params_alloc(ctx, &t->nets[i]));
    ENCO_TRY(enco_seqnet_finish(ctx, &t->gnet));
    ENCO_TRY(enco_seqnet_finish(ctx, &t->dnet));
    ENCO_TRY(enco_heads_alloc(ctx, &es->heads));

    size_t img = (size_t)cfg->model.input_nc * h * w;
    size_t pred = (size_t)t->ph * t->pw;
    ENCO_TRY(enco_family_alloc(t, 2 * n * img, &es->d_in));
    ENCO_TRY(enco_family_alloc(t, 2 * n * pred, &es->dpred));
    ENCO_TRY(enco_family_alloc(t, 2 * n * img, &es->g_dy));
    size_t wf = enco_loss_lsgan_work(n * pred);
    size_t x = enco_loss_l1_work(n * img);
    if (x > wf)
        wf = x;
    x = enco_loss_enco_work((size_t)max_rows);
    if (x > wf)
        wf = x;
    es->work_floats = wf;
    ENCO_TRY(enco_family_alloc(t, wf, &es->work));
    es->perm_stride = 2 * (size_t)n * max_hw;
    es->perm_host = malloc((size_t)t->npairs * es->perm_stride * sizeof(int32_t));
    if (!es->perm_host)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    ENCO_TRY(enco_family_alloc(t, (size_t)n * max_hw, &es->cand));
    ENCO_TRY(enco_family_alloc(t, (size_t)n * max_hw, &es->cover));
    for (int p = 0; p < t->npairs; p++) {
        ENCO_TRY(enco_family_alloc(t, (size_t)n * t->fh[p] * t->fw[p], &t->score[p]));
        ENCO_TRY(enco_family_alloc(t, (size_t)n * t->k[p], &t->idx[p]));
        ENCO_TRY(enco_family_alloc(t, (size_t)n * t->k[p] * cfg->model.netF_nc, &es->dq[p]));
        ENCO_TRY(enco_family_alloc(t, (size_t)n * t->fc[p] * t->fh[p] * t->fw[p], &es->dfeat[p]));
    }
    return ENCO_OK;
}

/* Spec section 6, step 2: D on (fake_B detached, real_B), LSGAN (Adam on D follows). */
static enco_status d_step(enco_trainer *t, cl_mem gout, size_t gout_off)
{
    enco_state *es = t->state;
    enco_ctx *ctx = t->ctx;
    int n = t->n;
    size_t img = (size_t)t->cfg.model.output_nc * t->h * t->w;
    enco_ctx_trace_op(ctx, "copy", "D input", (enco_op_cost){0, 4.0 * 4.0 * n * img},
                      "2x n%d %zu floats", n, img);
    ENCO_TRY(enco_copy(ctx, es->d_in, 0, gout, gout_off * F4, n * img * F4));
    ENCO_TRY(enco_copy(ctx, es->d_in, n * img * F4, t->real, n * img * F4, n * img * F4));
    /* D on (fake_B detached, real_B) */
    return enco_family_d_lsgan(t, NET_D, &t->dnet, es->d_in, es->dpred, es->work, 0.0f,
                               ENCO_LOSS_D_FAKE, ENCO_LOSS_D_REAL, ENCO_LOSS_D, 1.0f);
}

/* Lays given DAG draws out as the permutation rows the DAG kernel reads:
 * candidates first in cand rows, covering positions last in cover rows. */
static enco_status upload_draws(enco_trainer *t, enco_state *es, int p, const int32_t *cand,
                                const int32_t *cover)
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
        st = enco_upload(t->ctx, es->cand, (size_t)i * hw * sizeof *rows, (size_t)hw * sizeof *rows,
                         rows);
        if (st != ENCO_OK)
            break;
        memset(rows, 0, (size_t)hw * sizeof *rows);
        if (r > 0)
            memcpy(rows + hw - r, cover + (size_t)i * r, (size_t)r * sizeof *rows);
        st = enco_upload(t->ctx, es->cover, (size_t)i * hw * sizeof *rows,
                         (size_t)hw * sizeof *rows, rows);
    }
    free(rows);
    return st;
}

static enco_status sample(enco_trainer *t, int p, cl_mem dout, size_t doff,
                          const enco_sampling_override *ov)
{
    enco_state *es = t->state;
    enco_ctx *ctx = t->ctx;
    int n = t->n, hw = t->fh[p] * t->fw[p];
    char where[32];
    snprintf(where, sizeof where, "sampling pair %d", p);
    const enco_op_cost perms = {0, 2.0 * 4.0 * n * hw};
    if (ov && ov->patch_ids[p]) {
        enco_ctx_trace_op(ctx, "upload", where, (enco_op_cost){0, 4.0 * n * t->k[p]}, "n%d K%d", n,
                          t->k[p]);
        ENCO_TRY(
            enco_patch_check_indices(ov->patch_ids[p], (size_t)n, (size_t)t->k[p], (size_t)hw));
        return enco_upload(ctx, t->idx[p], 0, (size_t)n * t->k[p] * sizeof(int32_t),
                           ov->patch_ids[p]);
    }
    int given = ov && ov->cand[p];
    /* Draws made at the start of the G step (draw_perms), uploaded without a
     * host sync; the staging area stays untouched until the next iteration,
     * whose blocking input upload waits for this one's queue. */
    const int32_t *stage = es->perm_host + (size_t)p * es->perm_stride;
    size_t bytes = (size_t)n * hw * sizeof(int32_t);
    if (strcmp(t->cfg.train.sampling, "random") == 0) {
        enco_ctx_trace_op(ctx, "dag.perms_upload", where, perms, "n%d 1x%d", n, hw);
        ENCO_TRY(enco_upload_async(ctx, es->cand, 0, bytes, stage));
        enco_ctx_trace_op(ctx, "dag.random", where,
                          enco_dag_random_cost(n, t->fh[p], t->fw[p], t->cfg.train.num_patches),
                          "n%d %dx%d K%d", n, t->fh[p], t->fw[p], t->k[p]);
        return enco_dag_random_forward(ctx, t->idx[p], 0, es->cand, 0, n, t->fh[p], t->fw[p],
                                       t->cfg.train.num_patches);
    }
    enco_ctx_trace_op(ctx, "bilinear.fwd", where,
                      enco_bilinear_cost((size_t)n, 1, (size_t)t->ph, (size_t)t->pw,
                                         (size_t)t->fh[p], (size_t)t->fw[p]),
                      "n%d %dx%d>%dx%d", n, t->ph, t->pw, t->fh[p], t->fw[p]);
    ENCO_TRY(enco_bilinear_forward(ctx, t->score[p], 0, dout, doff, (size_t)n, 1, (size_t)t->ph,
                                   (size_t)t->pw, (size_t)t->fh[p], (size_t)t->fw[p]));
    enco_ctx_trace_op(ctx, "dag.perms_upload", where, perms, "n%d 2x%d", n, hw);
    if (given)
        ENCO_TRY(upload_draws(t, es, p, ov->cand[p], ov->cover[p]));
    else {
        ENCO_TRY(enco_upload_async(ctx, es->cand, 0, bytes, stage));
        ENCO_TRY(enco_upload_async(ctx, es->cover, 0, bytes, stage + (size_t)n * hw));
    }
    enco_ctx_trace_op(ctx, "dag.fwd", where,
                      enco_dag_cost(n, t->fh[p], t->fw[p], t->cfg.train.num_patches,
                                    t->cfg.train.oversample_ratio, t->cfg.train.random_ratio),
                      "n%d %dx%d K%d x%d", n, t->fh[p], t->fw[p], t->k[p],
                      t->cfg.train.oversample_ratio);
    return enco_dag_forward(ctx, t->idx[p], 0, t->score[p], 0, es->cand, 0, es->cover, 0, n,
                            t->fh[p], t->fw[p], t->cfg.train.num_patches,
                            t->cfg.train.oversample_ratio, t->cfg.train.random_ratio,
                            strcmp(t->cfg.train.dag_order, "descending") == 0);
}

/* The permutations every pair samples from this iteration, drawn in pair
 * order (the generator's sequence does not depend on the device). */
static enco_status draw_perms(enco_trainer *t, const enco_sampling_override *ov)
{
    enco_state *es = t->state;
    int dag = strcmp(t->cfg.train.sampling, "random") != 0;
    for (int p = 0; p < t->npairs; p++) {
        if (ov && !ov->keep_draws && (ov->patch_ids[p] || (dag && ov->cand[p])))
            continue;
        int hw = t->fh[p] * t->fw[p];
        int32_t *stage = es->perm_host + (size_t)p * es->perm_stride;
        if (t->reducer.size > 1) {
            /* Data-parallel: the draws of the whole batch, as one process
             * makes them, and this process's share of its images. */
            const int all = t->n * t->reducer.size;
            const size_t rows = (size_t)all * hw, mine = (size_t)t->n * hw;
            if (!es->perm_global) {
                size_t most = 0;
                for (int q = 0; q < t->npairs; q++)
                    most = (size_t)t->fh[q] * t->fw[q] > most ? (size_t)t->fh[q] * t->fw[q] : most;
                es->perm_global = malloc(2 * (size_t)all * most * sizeof(int32_t));
                if (!es->perm_global)
                    return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
            }
            ENCO_TRY(enco_dag_make_perms(&t->rng, es->perm_global,
                                         dag ? es->perm_global + rows : NULL, all, hw));
            const size_t first = (size_t)t->reducer.rank * mine;
            memcpy(stage, es->perm_global + first, mine * sizeof(int32_t));
            if (dag)
                memcpy(stage + mine, es->perm_global + rows + first, mine * sizeof(int32_t));
            continue;
        }
        ENCO_TRY(
            enco_dag_make_perms(&t->rng, stage, dag ? stage + (size_t)t->n * hw : NULL, t->n, hw));
    }
    return ENCO_OK;
}

/* Spec section 6, step 3: G and F against the updated, frozen D. */
static enco_status g_step(enco_trainer *t, cl_mem gout, size_t gout_off,
                          const enco_sampling_override *ov, double *since)
{
    enco_state *es = t->state;
    enco_ctx *ctx = t->ctx;
    const enco_config *cfg = &t->cfg;
    int n = t->n, P = t->npairs;
    size_t img = (size_t)cfg->model.output_nc * t->h * t->w;
    size_t pred = (size_t)t->ph * t->pw * n;
    /* The reference counts the identity term only while lambda_NCE > 0. */
    int idt_counted = t->idt_on && cfg->train.lambda_NCE > 0;
    float half = idt_counted ? 0.5f : 1.0f;

    ENCO_TRY(enco_seqnet_forward(ctx, &t->dnet, gout, gout_off, n));
    cl_mem dout;
    size_t doff;
    enco_seqnet_output(&t->dnet, &dout, &doff, NULL, NULL, NULL);
    enco_ctx_trace_op(ctx, "loss.lsgan", "loss", enco_loss_lsgan_cost(pred), "%zu", pred);
    ENCO_TRY(enco_loss_lsgan(ctx, t->losses, ENCO_LOSS_GAN_RAW, es->dpred, 0, dout, doff, pred,
                             1.0f, (float)cfg->train.lambda_GAN, es->work, 0));
    ENCO_TRY(enco_family_combine(t, ENCO_LOSS_G_GAN, (int[]){ENCO_LOSS_GAN_RAW},
                                 (float[]){(float)cfg->train.lambda_GAN}, 1));
    /* dL/d fake_B through the frozen D (no D parameter gradients). */
    ENCO_TRY(enco_seqnet_backward(ctx, &t->dnet, es->dpred, 0, es->g_dy, 0, 0, NULL, 0));
    ENCO_TRY(mark(t, ENCO_PHASE_G_GAN, since));

    ENCO_TRY(draw_perms(t, ov));
    /* Queries of every pair first, then keys: BatchNorm running statistics
     * are updated in the reference's order. */
    for (int p = 0; p < P; p++) {
        ENCO_TRY(sample(t, p, dout, doff, ov));
        cl_mem fm;
        size_t fo;
        int c, h, w;
        ENCO_TRY(enco_seqnet_feature(&t->gnet, es->query_layer[p], &fm, &fo, &c, &h, &w));
        ENCO_TRY(enco_heads_forward(ctx, &es->heads, p, 1, fm, fo, t->idx[p], 0, n, h, w, t->k[p]));
    }
    enco_feature_grad inject[ENCO_MAX_PAIRS];
    int slots[ENCO_MAX_PAIRS];
    float weights[ENCO_MAX_PAIRS];
    for (int p = 0; p < P; p++) {
        cl_mem fm;
        size_t fo;
        int c, h, w;
        ENCO_TRY(enco_seqnet_feature(&t->gnet, es->key_layer[p], &fm, &fo, &c, &h, &w));
        ENCO_TRY(enco_heads_forward(ctx, &es->heads, p, 0, fm, fo, t->idx[p], 0, n, h, w, t->k[p]));
        size_t rows = (size_t)n * t->k[p];
        float scale = half * (float)(cfg->train.lambda_NCE / P);
        enco_ctx_trace_op(ctx, "loss.enco", "loss",
                          enco_loss_enco_cost(rows, (size_t)cfg->model.netF_nc), "%zux%d", rows,
                          cfg->model.netF_nc);
        ENCO_TRY(enco_loss_enco(ctx, t->losses, (size_t)ENCO_LOSS_ENCO_PAIR0 + p, es->dq[p], 0,
                                es->heads.query[p].out, 0, es->heads.key[p].out, 0, rows,
                                (size_t)cfg->model.netF_nc, scale, es->work, 0));
        slots[p] = ENCO_LOSS_ENCO_PAIR0 + p;
        weights[p] = (float)(cfg->train.lambda_NCE / P);
    }
    ENCO_TRY(enco_family_combine(t, ENCO_LOSS_ENCO, slots, weights, (size_t)P));

    if (t->idt_on) {
        enco_ctx_trace_op(ctx, "loss.l1", "loss", enco_loss_l1_cost(n * img), "%zu", n * img);
        ENCO_TRY(enco_loss_l1(ctx, t->losses, ENCO_LOSS_IDT_RAW, es->g_dy, n * img, gout,
                              gout_off + n * img, t->real, n * img, n * img,
                              idt_counted ? 0.5f * (float)cfg->train.lambda_IDT : 0.0f, es->work,
                              0));
        ENCO_TRY(enco_family_combine(t, ENCO_LOSS_IDT, (int[]){ENCO_LOSS_IDT_RAW},
                                     (float[]){(float)cfg->train.lambda_IDT}, 1));
    } else {
        enco_ctx_trace_op(ctx, "fill", "loss", enco_fill_cost(1), "1");
        ENCO_TRY(enco_fill(ctx, t->losses, ENCO_LOSS_IDT, 1, 0.0f));
    }
    if (idt_counted)
        ENCO_TRY(enco_family_combine(t, ENCO_LOSS_G,
                                     (int[]){ENCO_LOSS_G_GAN, ENCO_LOSS_ENCO, ENCO_LOSS_IDT},
                                     (float[]){1.0f, 0.5f, 0.5f}, 3));
    else
        ENCO_TRY(enco_family_combine(t, ENCO_LOSS_G, (int[]){ENCO_LOSS_G_GAN, ENCO_LOSS_ENCO},
                                     (float[]){1.0f, 1.0f}, 2));

    for (int p = 0; p < P; p++) {
        size_t fsize = (size_t)n * t->fc[p] * t->fh[p] * t->fw[p];
        if (enco_ctx_tracing(ctx)) {
            char where[32];
            snprintf(where, sizeof where, "G model.%d", es->query_layer[p]);
            enco_ctx_trace_op(ctx, "fill", where, (enco_op_cost){0, 4.0 * fsize}, "n%d %dx%dx%d", n,
                              t->fc[p], t->fh[p], t->fw[p]);
        }
        ENCO_TRY(enco_fill_zero(ctx, es->dfeat[p], 0, fsize * F4));
        ENCO_TRY(enco_heads_backward(ctx, &es->heads, p, es->dq[p], 0, es->dfeat[p], 0, t->idx[p],
                                     0, n, t->fh[p], t->fw[p], t->k[p]));
        inject[p] = (enco_feature_grad){es->query_layer[p], es->dfeat[p], 0, n};
    }
    ENCO_TRY(mark(t, ENCO_PHASE_HEADS, since));
    ENCO_TRY(enco_trainer_watch_grads(t, NET_G, &t->gnet));
    ENCO_TRY(enco_seqnet_backward(ctx, &t->gnet, es->g_dy, 0, NULL, 0, 1, inject, (size_t)P));
    return mark(t, ENCO_PHASE_G_BACKWARD, since);
}

static enco_status phase(enco_trainer *t, int ph, const enco_sampling_override *ov, double *since)
{
    cl_mem gout;
    size_t goff;
    if (ph == 0) {
        int gn = t->idt_on ? 2 * t->n : t->n;
        ENCO_TRY(enco_seqnet_forward(t->ctx, &t->gnet, t->real, 0, gn));
        ENCO_TRY(mark(t, ENCO_PHASE_G_FORWARD, since));
        enco_seqnet_output(&t->gnet, &gout, &goff, NULL, NULL, NULL);
        t->fake = gout;
        t->fake_off = goff;
        t->has_idt = t->idt_on;
        return d_step(t, gout, goff);
    }
    return g_step(t, t->fake, t->fake_off, ov, since);
}

static void release(enco_trainer *t)
{
    enco_state *es = t->state;
    if (!es)
        return;
    enco_ctx *ctx = t->ctx;
    cl_mem bufs[] = {es->d_in, es->dpred, es->g_dy, es->work, es->cand, es->cover};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        enco_buffer_free(ctx, bufs[i]);
    for (int p = 0; p < ENCO_MAX_PAIRS; p++) {
        enco_buffer_free(ctx, es->dq[p]);
        enco_buffer_free(ctx, es->dfeat[p]);
    }
    free(es->perm_host);
    free(es->perm_global);
    enco_heads_free(ctx, &es->heads);
    free(es);
    t->state = NULL;
}

static void reset(enco_trainer *t)
{
    (void)t;
}

static int loss_count(const enco_trainer *t)
{
    return ENCO_LOSS_ENCO_PAIR0 + t->npairs;
}

static const char *loss_name(const enco_trainer *t, int slot, char *buf, size_t size, int *flags)
{
    static const char *const names[ENCO_LOSS_ENCO_PAIR0] = {
        "D_fake",           "D_real", "D", "G_GAN (unweighted)", "G_GAN", "EnCo",
        "idt (unweighted)", "idt",    "G"};
    static const int fl[ENCO_LOSS_ENCO_PAIR0] = {0,
                                                 0,
                                                 ENCO_LOSS_LOGGED | ENCO_LOSS_STEP,
                                                 0,
                                                 ENCO_LOSS_LOGGED | ENCO_LOSS_STEP,
                                                 ENCO_LOSS_LOGGED | ENCO_LOSS_STEP,
                                                 0,
                                                 ENCO_LOSS_LOGGED | ENCO_LOSS_STEP,
                                                 ENCO_LOSS_LOGGED | ENCO_LOSS_STEP};
    if (slot < 0 || slot >= loss_count(t))
        return NULL;
    if (slot < ENCO_LOSS_ENCO_PAIR0) {
        snprintf(buf, size, "%s", names[slot]);
        *flags = fl[slot];
    } else {
        snprintf(buf, size, "EnCo.%d", slot - ENCO_LOSS_ENCO_PAIR0);
        *flags = ENCO_LOSS_STEP;
    }
    return buf;
}

/* The patch draws are made for the whole batch on every process (each
 * keeps its images'), the losses are means; the heads' BatchNorm statistics
 * span the whole batch's patches: set_stat_sync sums them across the
 * processes. */
static const char *data_parallel_refusal(const enco_trainer *t)
{
    (void)t;
    return NULL;
}

static enco_status set_stat_sync(enco_trainer *t, const enco_stat_sync *sync)
{
    enco_state *es = t->state;
    return enco_heads_set_sync(t->ctx, &es->heads, sync);
}

const enco_family enco_family_enco = {
    .name = "enco",
    .summary = "EnCo (AAAI 2024): contrastive heads over G's own features, DAG sampling",
    .section = NULL,
    .nnets = 3,
    .nets = {"G", "D", "F"},
    .generator = NET_G,
    .nphases = 2,
    .phases = {{"D", 1, {NET_D}, ENCO_PHASE_D_STEP},
               {"G+F", 2, {NET_G, NET_F}, ENCO_PHASE_OPTIMIZER}},
    .ntimers = ENCO_PHASE_COUNT,
    .timers = {"G forward", "D step", "G GAN (D fwd+bwd)", "heads + sampling", "G backward",
               "Adam G+F"},
    .plan = plan,
    .release = release,
    .reset = reset,
    .phase = phase,
    .loss_count = loss_count,
    .loss_name = loss_name,
    .data_parallel_refusal = data_parallel_refusal,
    .set_stat_sync = set_stat_sync,
};
