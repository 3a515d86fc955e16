/* The CUT and FastCUT families (docs/cut.md, docs/fastcut.md): G and D as
 * EnCo's, F = PatchSampleF (one MLP per nce layer), PatchNCE between G's
 * encoder features of the input and of the translation at patch positions
 * shared by the batch. One iteration: phase "D" (G forward on real_A, and
 * real_B with nce_idt, possibly flipped; D on fake_B detached and real_B;
 * Adam on D), then phase "G+F" (D frozen: GAN loss; G's encoder run again
 * on fake_B / idt_B as queries, keys from real_A / real_B; PatchNCE;
 * backward through both runs of G into the same gradients; Adam on G then
 * F). The two families differ only in their option defaults. */
#include "models/common.h"
#include "models/family.h"

#include "ops/act.h"
#include "ops/loss.h"
#include "ops/patch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F4 sizeof(float)

enum { NET_G = 0, NET_D = 1, NET_F = 2 };

/* Loss slots: fixed ones, then per layer l NCE.l and NCE_Y.l (the
 * PatchNCE cross-entropy means, before lambda_NCE). */
enum {
    SLOT_D_FAKE = 0,
    SLOT_D_REAL,
    SLOT_D,
    SLOT_GAN_RAW,
    SLOT_G_GAN,
    SLOT_NCE,
    SLOT_NCE_Y,
    SLOT_G,
    SLOT_LAYER0
};

enum {
    TIMER_G_FORWARD = 0,
    TIMER_D_STEP,
    TIMER_G_GAN,
    TIMER_ENCODER,
    TIMER_NCE,
    TIMER_G_BACKWARD,
    TIMER_OPTIMIZER,
    TIMER_COUNT
};

typedef struct cut_state {
    const enco_cut_config *c;
    int gn; /* images through G: 2N with nce_idt, else N */
    int nl; /* nce layers */
    int layer[ENCO_MAX_PAIRS];
    int stop;            /* last encoder module the NCE reads (0: the input only) */
    enco_seqnet_run enc; /* G's encoder, run on real (keys, when flipped) and fakes */
    enco_heads heads;
    cl_mem gin; /* (gn, C, H, W) G's input (flipped when the draw says so) */
    cl_mem d_in, dpred, g_dy, enc_dx, work;
    cl_mem kidx[ENCO_MAX_PAIRS];  /* (gn, K) key positions: NCE's rows, then NCE_Y's */
    cl_mem qidx[ENCO_MAX_PAIRS];  /* the same positions in the flipped query maps */
    cl_mem dq[ENCO_MAX_PAIRS];    /* (gn*K, nc) */
    cl_mem dfeat[ENCO_MAX_PAIRS]; /* (gn, C_l, H_l, W_l) */
    /* Host staging of the draws, one region per layer (a permutation, then key
     * and query id rows), and of the flipped input: uploaded without a host
     * sync, they stay untouched until the next iteration, whose blocking input
     * upload waits for this one's queue. */
    int32_t *host;
    size_t host_stride;           /* int32 per layer in host */
    float *flip_host;             /* staging: the flipped input */
    enco_family_dp_buffers dp;    /* several processes: the batch's keys */
} cut_state;

static const enco_cut_config *options(const enco_trainer *t)
{
    return strcmp(t->family->name, "fastcut") == 0 ? &t->cfg.fastcut : &t->cfg.cut;
}

static enco_status plan(enco_trainer *t)
{
    cut_state *cs = calloc(1, sizeof *cs);
    if (!cs)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    t->state = cs;
    enco_ctx *ctx = t->ctx;
    const enco_config *cfg = &t->cfg;
    const enco_cut_config *c = options(t);
    const char *g = t->family->name;
    cs->c = c;
    int n = t->n, h = t->h, w = t->w;
    if (c->nce_idt && cfg->model.input_nc != cfg->model.output_nc)
        return ENCO_FAIL(ENCO_ERR_UNSUPPORTED,
                         "input_nc (%d) must equal output_nc (%d) with %s.nce_idt: the NCE_Y "
                         "term feeds domain B images to G",
                         cfg->model.input_nc, cfg->model.output_nc, g);
    for (int i = 0; i < 3; i++)
        t->net_lr[i] = c->lr;
    cs->gn = c->nce_idt ? 2 * n : n;
    enco_model_config mc = enco_family_model_config(cfg);
    ENCO_TRY(enco_models_build(&mc, h, w, &t->gnet, &t->G, cs->gn, &t->dnet, &t->D, 2 * n));
    t->netdef[NET_G] = &t->gnet;
    t->netdef[NET_D] = &t->dnet;
    t->loss_feature_net[NET_G] = 1;
    t->ph = t->dnet.slots[t->dnet.cur].h;
    t->pw = t->dnet.slots[t->dnet.cur].w;

    cs->nl = c->n_nce_layers;
    t->nloss_features = c->n_nce_layers;
    memcpy(t->loss_features, c->nce_layers, sizeof t->loss_features);
    t->npairs = cs->nl;
    t->has_draws_y = 1;
    t->has_flip = 1;
    int cin[ENCO_MAX_PAIRS], max_rows = 1;
    size_t max_hw = 1;
    for (int l = 0; l < cs->nl; l++) {
        cs->layer[l] = c->nce_layers[l];
        if (cs->layer[l] == 0) {
            t->fc[l] = cfg->model.input_nc, t->fh[l] = h, t->fw[l] = w;
        } else {
            cl_mem m;
            size_t off;
            enco_status st = enco_seqnet_feature(&t->gnet, cs->layer[l], &m, &off, &t->fc[l],
                                                 &t->fh[l], &t->fw[l]);
            if (st != ENCO_OK) {
                int last = t->gnet.nlayers ? t->gnet.layers[t->gnet.nlayers - 1].module : 0;
                enco_error_append(" (%s.nce_layers: G's modules are 0 to %d; 0 is the input "
                                  "image)",
                                  g, last);
                return st;
            }
        }
        if (cs->layer[l] > cs->stop)
            cs->stop = cs->layer[l];
        int hw = t->fh[l] * t->fw[l];
        t->k[l] = c->num_patches < hw ? c->num_patches : hw;
        cin[l] = t->fc[l];
        if (cs->gn * t->k[l] > max_rows)
            max_rows = cs->gn * t->k[l];
        if ((size_t)hw > max_hw)
            max_hw = (size_t)hw;
    }
    ENCO_TRY(enco_heads_build_sample(&cs->heads, &t->F, cs->nl, cin, c->netF_nc, max_rows));
    for (int i = 0; i < t->nnets; i++)
        ENCO_TRY(enco_params_alloc(ctx, &t->nets[i]));
    ENCO_TRY(enco_seqnet_finish(ctx, &t->gnet));
    ENCO_TRY(enco_seqnet_finish(ctx, &t->dnet));
    ENCO_TRY(enco_heads_alloc(ctx, &cs->heads));
    if (cs->stop > 0)
        ENCO_TRY(enco_seqnet_run_create(ctx, &t->gnet, cs->gn, cs->stop, &cs->enc));

    size_t img = (size_t)cfg->model.input_nc * h * w;
    size_t pred = (size_t)t->ph * t->pw;
    ENCO_TRY(enco_family_alloc(t, cs->gn * img, &cs->gin));
    ENCO_TRY(enco_family_alloc(t, 2 * n * img, &cs->d_in));
    ENCO_TRY(enco_family_alloc(t, 2 * n * pred, &cs->dpred));
    ENCO_TRY(enco_family_alloc(t, cs->gn * img, &cs->g_dy));
    ENCO_TRY(enco_family_alloc(t, cs->gn * img, &cs->enc_dx));
    size_t wf = enco_loss_lsgan_work(2 * n * pred);
    for (int l = 0; l < cs->nl; l++) {
        size_t x = enco_loss_patchnce_work((size_t)n, (size_t)t->k[l]);
        size_t y = enco_loss_patchnce_work(1, (size_t)n * t->k[l]);
        wf = x > wf ? x : wf;
        wf = y > wf ? y : wf;
    }
    ENCO_TRY(enco_family_alloc(t, wf, &cs->work));
    for (int l = 0; l < cs->nl; l++) {
        size_t rows = (size_t)cs->gn * t->k[l];
        ENCO_TRY(enco_family_alloc(t, rows, &cs->kidx[l]));
        ENCO_TRY(enco_family_alloc(t, rows, &cs->qidx[l]));
        ENCO_TRY(enco_family_alloc(t, rows * c->netF_nc, &cs->dq[l]));
        ENCO_TRY(
            enco_family_alloc(t, (size_t)cs->gn * t->fc[l] * t->fh[l] * t->fw[l], &cs->dfeat[l]));
        ENCO_TRY(enco_family_alloc(t, (size_t)n * t->k[l], &t->idx[l]));
        ENCO_TRY(enco_family_alloc(t, (size_t)n * t->k[l], &t->idx_y[l]));
    }
    cs->host_stride = max_hw + 2 * (size_t)cs->gn * max_hw;
    cs->host = malloc((size_t)cs->nl * cs->host_stride * sizeof *cs->host);
    cs->flip_host = malloc(cs->gn * img * sizeof *cs->flip_host);
    if (!cs->host || !cs->flip_host)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    return ENCO_OK;
}

static void release(enco_trainer *t)
{
    cut_state *cs = t->state;
    if (!cs)
        return;
    enco_ctx *ctx = t->ctx;
    cl_mem bufs[] = {cs->gin, cs->d_in, cs->dpred, cs->g_dy, cs->enc_dx, cs->work};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        enco_buffer_free(ctx, bufs[i]);
    for (int l = 0; l < ENCO_MAX_PAIRS; l++) {
        enco_buffer_free(ctx, cs->kidx[l]);
        enco_buffer_free(ctx, cs->qidx[l]);
        enco_buffer_free(ctx, cs->dq[l]);
        enco_buffer_free(ctx, cs->dfeat[l]);
    }
    enco_seqnet_run_free(ctx, &cs->enc);
    enco_heads_free(ctx, &cs->heads);
    enco_family_dp_free(t, &cs->dp);
    free(cs->host);
    free(cs->flip_host);
    free(cs);
    t->state = NULL;
}

static void reset(enco_trainer *t)
{
    t->flipped = 0;
}

/* The flip draw (one per iteration, p = 0.5) and G's input: real_A (and
 * real_B with nce_idt), mirrored left-right when flipped. */
static enco_status upload(enco_trainer *t, const float *real_a, const float *real_b,
                          const enco_sampling_override *ov)
{
    cut_state *cs = t->state;
    const enco_cut_config *c = cs->c;
    int flip = 0;
    if (c->nce_flip_equivariance) {
        int drawn = 0;
        if (!(ov && ov->flipped) || ov->keep_draws)
            drawn = enco_rng_bounded(&t->rng, 2) == 1;
        flip = ov && ov->flipped ? *ov->flipped != 0 : drawn;
    } else if (ov && ov->flipped && *ov->flipped) {
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "a flipped iteration was given, but "
                         "%s.nce_flip_equivariance is off",
                         t->family->name);
    }
    t->flipped = flip;
    size_t img = (size_t)t->cfg.model.input_nc * t->h * t->w;
    enco_ctx_trace_op(t->ctx, flip ? "upload" : "copy", "G input",
                      (enco_op_cost){0, (flip ? 4.0 : 8.0) * cs->gn * img}, "n%d %dx%dx%d%s",
                      cs->gn, t->cfg.model.input_nc, t->h, t->w, flip ? " flipped" : "");
    if (!flip)
        return enco_copy(t->ctx, cs->gin, 0, t->real, 0, cs->gn * img * F4);
    float *x = cs->flip_host;
    int rows = cs->gn * t->cfg.model.input_nc * t->h, w = t->w;
    for (int r = 0; r < rows; r++) {
        const int image = r / (t->cfg.model.input_nc * t->h);
        const float *src =
            (image < t->n ? real_a : real_b) +
            (size_t)(r - (image < t->n ? 0 : t->n * t->cfg.model.input_nc * t->h)) * w;
        for (int j = 0; j < w; j++)
            x[(size_t)r * w + j] = src[w - 1 - j];
    }
    return enco_upload_async(t->ctx, cs->gin, 0, cs->gn * img * F4, x);
}

/* Phase D: G forward, then D on (fake_B detached, real_B), LSGAN. */
static enco_status d_phase(enco_trainer *t, double *since)
{
    cut_state *cs = t->state;
    enco_ctx *ctx = t->ctx;
    int n = t->n;
    ENCO_TRY(enco_seqnet_forward(ctx, &t->gnet, cs->gin, 0, cs->gn));
    ENCO_TRY(enco_trainer_mark(t, TIMER_G_FORWARD, since));
    enco_seqnet_output(&t->gnet, &t->fake, &t->fake_off, NULL, NULL, NULL);
    t->has_idt = cs->c->nce_idt;
    size_t img = (size_t)t->cfg.model.output_nc * t->h * t->w;
    enco_ctx_trace_op(ctx, "copy", "D input", (enco_op_cost){0, 4.0 * 4.0 * n * img},
                      "2x n%d %zu floats", n, img);
    ENCO_TRY(enco_copy(ctx, cs->d_in, 0, t->fake, t->fake_off * F4, n * img * F4));
    ENCO_TRY(enco_copy(ctx, cs->d_in, n * img * F4, t->real, n * img * F4, n * img * F4));
    return enco_family_d_lsgan(t, NET_D, &t->dnet, cs->d_in, cs->dpred, cs->work, 0.0f,
                               SLOT_D_FAKE, SLOT_D_REAL, SLOT_D, 1.0f);
}

/* The positions of layer l for this iteration: one permutation per term
 * (NCE, then NCE_Y), its first K shared by the batch; given ones replace
 * them. Key rows (gn, K) as drawn, query rows mirrored when flipped. */
static enco_status draw_ids(enco_trainer *t, int l, const enco_sampling_override *ov)
{
    cut_state *cs = t->state;
    int n = t->n, K = t->k[l], hw = t->fh[l] * t->fw[l], fw = t->fw[l];
    int32_t *perm = cs->host + (size_t)l * cs->host_stride, *krows = perm + hw, *qrows = krows + (size_t)cs->gn * K;
    for (int term = 0; term < (cs->c->nce_idt ? 2 : 1); term++) {
        const int32_t *given = ov ? (term ? ov->patch_ids_Y[l] : ov->patch_ids[l]) : NULL, *row;
        ENCO_TRY(enco_family_batch_patch_row(t, given, ov && ov->keep_draws, perm, hw, K,
                                             term ? "patch_ids_Y" : "patch_ids", l, &row));
        for (int i = 0; i < n; i++)
            for (int r = 0; r < K; r++) {
                int32_t id = row[r];
                size_t o = ((size_t)term * n + i) * K + r;
                krows[o] = id;
                qrows[o] = t->flipped ? id - id % fw + (fw - 1 - id % fw) : id;
            }
    }
    size_t bytes = (size_t)cs->gn * K * sizeof(int32_t);
    if (enco_ctx_tracing(t->ctx)) {
        char where[32];
        snprintf(where, sizeof where, "sampling layer %d", cs->layer[l]);
        enco_ctx_trace_op(t->ctx, "upload", where, (enco_op_cost){0, 2.0 * bytes}, "2x n%d K%d",
                          cs->gn, K);
    }
    ENCO_TRY(enco_upload_async(t->ctx, cs->kidx[l], 0, bytes, krows));
    ENCO_TRY(enco_upload_async(t->ctx, cs->qidx[l], 0, bytes, qrows));
    size_t half = (size_t)n * K * sizeof(int32_t);
    ENCO_TRY(enco_copy(t->ctx, t->idx[l], 0, cs->kidx[l], 0, half));
    if (cs->c->nce_idt)
        ENCO_TRY(enco_copy(t->ctx, t->idx_y[l], 0, cs->kidx[l], half, half));
    return ENCO_OK;
}

/* Feature map of layer l in run r (NULL: G's main run), or its input. */
static enco_status feature(enco_trainer *t, const enco_seqnet_run *r, int l, cl_mem *m, size_t *off)
{
    cut_state *cs = t->state;
    const enco_seqnet_run *run = r ? r : &t->gnet.run;
    if (cs->layer[l] == 0) {
        enco_seqnet_run_input(run, m, off);
        return ENCO_OK;
    }
    int c, h, w;
    return enco_seqnet_run_feature(run, cs->layer[l], m, off, &c, &h, &w);
}

static enco_status g_phase(enco_trainer *t, const enco_sampling_override *ov, double *since)
{
    cut_state *cs = t->state;
    const enco_cut_config *c = cs->c;
    enco_ctx *ctx = t->ctx;
    int n = t->n, gn = cs->gn, L = cs->nl;
    size_t img = (size_t)t->cfg.model.output_nc * t->h * t->w;
    size_t pred = (size_t)t->ph * t->pw * n;

    /* GAN loss through the frozen, just updated D. */
    ENCO_TRY(enco_seqnet_forward(ctx, &t->dnet, t->fake, t->fake_off, n));
    cl_mem dout;
    size_t doff;
    enco_seqnet_output(&t->dnet, &dout, &doff, NULL, NULL, NULL);
    enco_ctx_trace_op(ctx, "loss.lsgan", "loss", enco_loss_lsgan_cost(pred), "%zu", pred);
    ENCO_TRY(enco_loss_lsgan(ctx, t->losses, SLOT_GAN_RAW, cs->dpred, 0, dout, doff, pred, 1.0f,
                             (float)c->lambda_GAN, cs->work, 0));
    ENCO_TRY(enco_family_combine(t, SLOT_G_GAN, (int[]){SLOT_GAN_RAW},
                                 (float[]){(float)c->lambda_GAN}, 1));
    ENCO_TRY(enco_seqnet_backward(ctx, &t->dnet, cs->dpred, 0, cs->g_dy, 0, 0, NULL, 0));
    if (gn > n) {
        enco_ctx_trace_op(ctx, "fill", "G output grad", (enco_op_cost){0, 4.0 * (gn - n) * img},
                          "n%d %zu floats", gn - n, img);
        ENCO_TRY(enco_fill_zero(ctx, cs->g_dy, n * img * F4, (size_t)(gn - n) * img * F4));
    }
    ENCO_TRY(enco_trainer_mark(t, TIMER_G_GAN, since));

    const int nce = c->lambda_NCE > 0;
    if (!nce) {
        enco_ctx_trace_op(ctx, "fill", "loss", (enco_op_cost){0, 4.0 * (2 + 2 * L)}, "%d",
                          2 + 2 * L);
        ENCO_TRY(enco_fill_zero(ctx, t->losses, SLOT_NCE * F4, 2 * F4));
        for (int l = 0; l < L; l++) {
            ENCO_TRY(enco_fill_zero(ctx, t->losses, (SLOT_LAYER0 + l) * F4, F4));
            ENCO_TRY(enco_fill_zero(ctx, t->losses, (SLOT_LAYER0 + L + l) * F4, F4));
        }
        ENCO_TRY(enco_family_combine(t, SLOT_G, (int[]){SLOT_G_GAN}, (float[]){1.0f}, 1));
        ENCO_TRY(enco_trainer_watch_grads(t, NET_G, &t->gnet));
        ENCO_TRY(enco_seqnet_backward(ctx, &t->gnet, cs->g_dy, 0, NULL, 0, 1, NULL, 0));
        return enco_trainer_mark(t, TIMER_G_BACKWARD, since);
    }
    for (int l = 0; l < L; l++)
        ENCO_TRY(draw_ids(t, l, ov));

    /* Keys: G's encoder features of real_A (and real_B), unflipped. The main
     * run saw them unless the batch was flipped. */
    const enco_seqnet_run *keys = NULL;
    if (t->flipped) {
        if (cs->stop > 0)
            ENCO_TRY(enco_seqnet_run_forward(ctx, &cs->enc, t->real, 0, gn));
        keys = &cs->enc;
    }
    for (int l = 0; l < L; l++) {
        cl_mem m;
        size_t off;
        if (t->flipped && cs->stop == 0) {
            m = t->real, off = 0;
        } else if (t->flipped) {
            ENCO_TRY(feature(t, keys, l, &m, &off));
        } else {
            ENCO_TRY(feature(t, NULL, l, &m, &off));
        }
        ENCO_TRY(enco_heads_forward(ctx, &cs->heads, l, 0, m, off, cs->kidx[l], 0, gn, t->fh[l],
                                    t->fw[l], t->k[l]));
    }
    /* Queries: the encoder again, on fake_B (and idt_B). */
    if (cs->stop > 0)
        ENCO_TRY(enco_seqnet_run_forward(ctx, &cs->enc, t->fake, t->fake_off, gn));
    ENCO_TRY(enco_trainer_mark(t, TIMER_ENCODER, since));
    float half = c->nce_idt ? 0.5f : 1.0f;
    float lw = (float)(c->lambda_NCE / L);
    const int all = c->nce_includes_all_negatives_from_minibatch;
    for (int l = 0; l < L; l++) {
        cl_mem m;
        size_t off;
        if (cs->stop > 0)
            ENCO_TRY(feature(t, &cs->enc, l, &m, &off));
        else
            m = t->fake, off = t->fake_off;
        ENCO_TRY(enco_heads_forward(ctx, &cs->heads, l, 1, m, off, cs->qidx[l], 0, gn, t->fh[l],
                                    t->fw[l], t->k[l]));
        size_t K = (size_t)t->k[l], rows = (size_t)n * K, nc = (size_t)c->netF_nc;
        for (int term = 0; term < (c->nce_idt ? 2 : 1); term++) {
            size_t r0 = (size_t)term * rows * nc;
            const size_t slot = (size_t)SLOT_LAYER0 + (size_t)term * L + l;
            if (all) {
                ENCO_TRY(enco_family_batch_patchnce(
                    t, &cs->dp, 0, t->losses, slot, cs->dq[l], r0, cs->heads.query[l].out, r0,
                    cs->heads.key[l].out, r0, rows, nc, (float)c->nce_T, half * lw, cs->work, 0));
                continue;
            }
            enco_ctx_trace_op(ctx, "loss.patchnce", "loss", enco_loss_patchnce_cost(n, K, nc),
                              "%dx%zux%zu", n, K, nc);
            ENCO_TRY(enco_loss_patchnce(ctx, t->losses, slot, cs->dq[l], r0,
                                        cs->heads.query[l].out, r0, cs->heads.key[l].out, r0,
                                        (size_t)n, K, nc, (float)c->nce_T, half * lw, cs->work,
                                        0));
        }
    }
    int slots[ENCO_MAX_PAIRS];
    float weights[ENCO_MAX_PAIRS];
    for (int l = 0; l < L; l++) {
        slots[l] = SLOT_LAYER0 + l;
        weights[l] = lw;
    }
    ENCO_TRY(enco_family_combine(t, SLOT_NCE, slots, weights, (size_t)L));
    if (c->nce_idt) {
        for (int l = 0; l < L; l++)
            slots[l] = SLOT_LAYER0 + L + l;
        ENCO_TRY(enco_family_combine(t, SLOT_NCE_Y, slots, weights, (size_t)L));
        ENCO_TRY(enco_family_combine(t, SLOT_G, (int[]){SLOT_G_GAN, SLOT_NCE, SLOT_NCE_Y},
                                     (float[]){1.0f, 0.5f, 0.5f}, 3));
    } else {
        enco_ctx_trace_op(ctx, "fill", "loss", (enco_op_cost){0, 4.0 * (1 + L)}, "%d", 1 + L);
        ENCO_TRY(enco_fill_zero(ctx, t->losses, SLOT_NCE_Y * F4, F4));
        for (int l = 0; l < L; l++)
            ENCO_TRY(enco_fill_zero(ctx, t->losses, (SLOT_LAYER0 + L + l) * F4, F4));
        ENCO_TRY(enco_family_combine(t, SLOT_G, (int[]){SLOT_G_GAN, SLOT_NCE},
                                     (float[]){1.0f, 1.0f}, 2));
    }

    /* Backward: the heads into the query maps, the encoder run into G's
     * gradients and its input (fake_B, idt_B), then G's main run. */
    enco_feature_grad inject[ENCO_MAX_PAIRS];
    int ninject = 0;
    enco_ctx_trace_op(ctx, "fill", "G input grad", (enco_op_cost){0, 4.0 * gn * img},
                      "n%d %zu floats", gn, img);
    ENCO_TRY(enco_fill_zero(ctx, cs->enc_dx, 0, (size_t)gn * img * F4));
    for (int l = 0; l < L; l++) {
        size_t fsize = (size_t)gn * t->fc[l] * t->fh[l] * t->fw[l];
        if (enco_ctx_tracing(ctx)) {
            char where[32];
            snprintf(where, sizeof where, cs->layer[l] ? "G model.%d" : "G input", cs->layer[l]);
            enco_ctx_trace_op(ctx, "fill", where, (enco_op_cost){0, 4.0 * fsize}, "n%d %dx%dx%d",
                              gn, t->fc[l], t->fh[l], t->fw[l]);
        }
        ENCO_TRY(enco_fill_zero(ctx, cs->dfeat[l], 0, fsize * F4));
        ENCO_TRY(enco_heads_backward(ctx, &cs->heads, l, cs->dq[l], 0, cs->dfeat[l], 0, cs->qidx[l],
                                     0, gn, t->fh[l], t->fw[l], t->k[l]));
        if (cs->layer[l] > 0)
            inject[ninject++] = (enco_feature_grad){cs->layer[l], cs->dfeat[l], 0, gn};
    }
    ENCO_TRY(enco_trainer_mark(t, TIMER_NCE, since));
    if (cs->stop > 0)
        ENCO_TRY(enco_seqnet_run_backward(ctx, &cs->enc, NULL, 0, cs->enc_dx, 0, 1, inject,
                                          (size_t)ninject));
    enco_ctx_trace_op(ctx, "axpy", "G input grad", enco_axpy_cost((size_t)gn * img),
                      "n%d %zu floats", gn, img);
    for (int l = 0; l < L; l++)
        if (cs->layer[l] == 0)
            ENCO_TRY(enco_axpy(ctx, cs->enc_dx, 0, cs->dfeat[l], 0, (size_t)gn * img, 1.0f));
    ENCO_TRY(enco_axpy(ctx, cs->g_dy, 0, cs->enc_dx, 0, (size_t)gn * img, 1.0f));
    ENCO_TRY(enco_trainer_watch_grads(t, NET_G, &t->gnet));
    ENCO_TRY(enco_seqnet_backward(ctx, &t->gnet, cs->g_dy, 0, NULL, 0, 1, NULL, 0));
    return enco_trainer_mark(t, TIMER_G_BACKWARD, since);
}

static enco_status phase(enco_trainer *t, int ph, const enco_sampling_override *ov, double *since)
{
    return ph == 0 ? d_phase(t, since) : g_phase(t, ov, since);
}

static int loss_count(const enco_trainer *t)
{
    return SLOT_LAYER0 + 2 * t->npairs;
}

static const char *loss_name(const enco_trainer *t, int slot, char *buf, size_t size, int *flags)
{
    static const char *const names[SLOT_LAYER0] = {
        "D_fake", "D_real", "D", "G_GAN (unweighted)", "G_GAN", "NCE", "NCE_Y", "G"};
    const int both = ENCO_LOSS_LOGGED | ENCO_LOSS_STEP;
    const int fl[SLOT_LAYER0] = {ENCO_LOSS_STEP,
                                 ENCO_LOSS_STEP,
                                 both,
                                 0,
                                 both,
                                 both,
                                 options(t)->nce_idt ? both : ENCO_LOSS_STEP,
                                 both};
    if (slot < 0 || slot >= loss_count(t))
        return NULL;
    if (slot < SLOT_LAYER0) {
        snprintf(buf, size, "%s", names[slot]);
        *flags = fl[slot];
    } else {
        int l = slot - SLOT_LAYER0;
        snprintf(buf, size, "%s.%d", l < t->npairs ? "NCE" : "NCE_Y", l % t->npairs);
        *flags = ENCO_LOSS_STEP;
    }
    return buf;
}

/* Every draw of CUT's iteration is one for the whole batch (the patch
 * positions, FastCUT's flip), and its losses are means of per-image terms:
 * the gradients shared are all it needs; with the PatchNCE negatives from
 * the whole batch the processes also share the batch's keys. */
static const char *data_parallel_refusal(const enco_trainer *t)
{
    return options(t)->nce_includes_all_negatives_from_minibatch && !t->reducer.allgather
               ? "nce_includes_all_negatives_from_minibatch takes PatchNCE negatives from the "
                 "whole batch, and this run's processes cannot share them"
               : NULL;
}

#define CUT_FAMILY(var, fname, text)                                                               \
    const enco_family var = {                                                                      \
        .name = fname,                                                                             \
        .summary = text,                                                                           \
        .section = fname,                                                                          \
        .nnets = 3,                                                                                \
        .nets = {"G", "D", "F"},                                                                   \
        .generator = NET_G,                                                                        \
        .nphases = 2,                                                                              \
        .phases = {{"D", 1, {NET_D}, TIMER_D_STEP}, {"G+F", 2, {NET_G, NET_F}, TIMER_OPTIMIZER}},  \
        .ntimers = TIMER_COUNT,                                                                    \
        .timers = {"G forward", "D step", "G GAN (D fwd+bwd)", "encoder passes",                   \
                   "heads + PatchNCE", "G backward", "Adam G+F"},                                  \
        .plan = plan,                                                                              \
        .release = release,                                                                        \
        .reset = reset,                                                                            \
        .upload = upload,                                                                          \
        .phase = phase,                                                                            \
        .loss_count = loss_count,                                                                  \
        .loss_name = loss_name,                                                                    \
        .data_parallel_refusal = data_parallel_refusal,                                            \
    }

CUT_FAMILY(enco_family_cut, "cut",
           "CUT (ECCV 2020): PatchNCE between G's encoder features of input and translation");
CUT_FAMILY(enco_family_fastcut, "fastcut",
           "FastCUT: CUT without the NCE_Y term, lambda_NCE 10, flip-equivariance");
