/* The DCLGAN family (docs/dclgan.md): two generators G_A (A -> B) and G_B
 * (B -> A), two LSGAN discriminators D_A (judges B) and D_B (judges A), and
 * two PatchSampleF head sets, F1 embedding G_A's encoder features and F2
 * G_B's. One iteration: phase "D" (both generators forward on (real,
 * other real): the translation and the identity image at once; each D on
 * its real batch and the detached translation; Adam on D_A, D_B), then phase
 * "G+F" (D frozen: GAN and identity terms, and the two cross PatchNCE terms
 * with cosine similarity and negatives from the whole batch: NCE1 has keys
 * F1(G_A's encoder on real_A) and queries F2(G_B's encoder on fake_B), NCE2
 * keys F2(G_B's encoder on real_B) and queries F1(G_A's encoder on fake_A);
 * backward through both encoder runs into the generators' weights and into
 * the fakes; Adam on G_A, G_B, then F1, F2 with F's own rate and betas). */
#include "models/common.h"
#include "models/family.h"

#include "ops/act.h"
#include "ops/loss.h"
#include "ops/patch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F4 sizeof(float)

enum { NET_GA = 0, NET_GB, NET_DA, NET_DB, NET_F1, NET_F2, NET_COUNT };

/* Loss slots: the reference's logged losses (weighted as it logs them),
 * loss_G, D's halves, then per layer l NCE1.l and NCE2.l (the PatchNCE
 * cross-entropy means, before lambda_NCE). */
enum {
    SLOT_D_A = 0,
    SLOT_D_B,
    SLOT_G_A,
    SLOT_G_B,
    SLOT_NCE1,
    SLOT_NCE2,
    SLOT_IDT_A,
    SLOT_IDT_B,
    SLOT_G,
    SLOT_D_A_REAL,
    SLOT_D_A_FAKE,
    SLOT_D_B_REAL,
    SLOT_D_B_FAKE,
    SLOT_LAYER0
};

enum {
    TIMER_G_FORWARD = 0,
    TIMER_D_STEP,
    TIMER_G_GAN,
    TIMER_NCE,
    TIMER_G_BACKWARD,
    TIMER_OPTIMIZER,
    TIMER_COUNT
};

typedef struct dcl_state {
    const enco_dclgan_config *c;
    int idt;               /* identity terms on */
    int nce;               /* lambda_NCE > 0: the NCE and identity terms (the reference's condition) */
    int gn;                /* images of a generator's default run: 2N with identity, else N */
    size_t img;
    int nl;
    int layer[ENCO_MAX_PAIRS];
    int stop;                /* last encoder module the NCE reads (0: the input only) */
    enco_seqnet g[2], d[2];  /* G_A, G_B; D_A, D_B */
    enco_seqnet_run enc[2];  /* G_A's encoder on fake_A, G_B's on fake_B */
    enco_heads heads[2];     /* F1, F2 */
    cl_mem gin_b, d_in, dpred, work, enc_dx;
    cl_mem dy[2];            /* gradient at G_A's, G_B's default-run output */
    cl_mem idx[ENCO_MAX_PAIRS]; /* (N, K) the positions of the term being computed */
    cl_mem dq[ENCO_MAX_PAIRS];
    cl_mem dfeat[ENCO_MAX_PAIRS];
    int32_t *host;           /* staging of the draws: per term and layer a permutation, then rows */
    size_t host_stride;
    enco_family_dp_buffers dp; /* several processes: the batch's keys */
} dcl_state;

static enco_status plan(enco_trainer *t)
{
    dcl_state *cs = calloc(1, sizeof *cs);
    if (!cs)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    t->state = cs;
    enco_ctx *ctx = t->ctx;
    const enco_config *cfg = &t->cfg;
    const enco_dclgan_config *c = &cfg->dclgan;
    cs->c = c;
    int n = t->n, h = t->h, w = t->w;
    if (cfg->model.input_nc != cfg->model.output_nc)
        return ENCO_FAIL(ENCO_ERR_UNSUPPORTED,
                         "dclgan needs model.input_nc (%d) equal to model.output_nc (%d): each "
                         "generator's encoder reads the other's output",
                         cfg->model.input_nc, cfg->model.output_nc);
    for (int i = 0; i < NET_COUNT; i++)
        t->net_lr[i] = i >= NET_F1 ? c->lr_F : c->lr;
    /* F's optimizer: Adam's defaults in the reference (betas 0.9, 0.999) */
    t->net_beta1[NET_F1] = t->net_beta1[NET_F2] = c->beta1_F;
    t->net_beta2[NET_F1] = t->net_beta2[NET_F2] = 0.999;
    cs->idt = c->nce_idt;
    cs->nce = c->lambda_NCE > 0;
    cs->gn = cs->idt ? 2 * n : n;
    cs->img = (size_t)cfg->model.input_nc * h * w;
    enco_model_config mc = enco_family_model_config(cfg);
    for (int i = 0; i < 2; i++) {
        ENCO_TRY(enco_models_build(&mc, h, w, &cs->g[i], &t->nets[NET_GA + i], cs->gn, &cs->d[i],
                                   &t->nets[NET_DA + i], 2 * n));
        t->netdef[NET_GA + i] = &cs->g[i];
        t->netdef[NET_DA + i] = &cs->d[i];
        t->loss_feature_net[NET_GA + i] = 1;
    }
    t->ph = cs->d[0].slots[cs->d[0].cur].h;
    t->pw = cs->d[0].slots[cs->d[0].cur].w;

    cs->nl = c->n_nce_layers;
    t->nloss_features = c->n_nce_layers;
    memcpy(t->loss_features, c->nce_layers, sizeof t->loss_features);
    t->npairs = cs->nl;
    t->has_draws_y = 1;
    t->draws_y_name = "patch_ids_2";
    int cin[ENCO_MAX_PAIRS], max_rows = 1;
    size_t max_hw = 1;
    for (int l = 0; l < cs->nl; l++) {
        cs->layer[l] = c->nce_layers[l];
        if (cs->layer[l] == 0) {
            t->fc[l] = cfg->model.input_nc, t->fh[l] = h, t->fw[l] = w;
        } else {
            cl_mem m;
            size_t off;
            enco_status st = enco_seqnet_feature(&cs->g[0], cs->layer[l], &m, &off, &t->fc[l],
                                                 &t->fh[l], &t->fw[l]);
            if (st != ENCO_OK) {
                int last = cs->g[0].nlayers ? cs->g[0].layers[cs->g[0].nlayers - 1].module : 0;
                enco_error_append(" (dclgan.nce_layers: G's modules are 0 to %d; 0 is the input "
                                  "image)",
                                  last);
                return st;
            }
        }
        if (cs->layer[l] > cs->stop)
            cs->stop = cs->layer[l];
        int hw = t->fh[l] * t->fw[l];
        t->k[l] = c->num_patches < hw ? c->num_patches : hw;
        cin[l] = t->fc[l];
        if (n * t->k[l] > max_rows)
            max_rows = n * t->k[l];
        if ((size_t)hw > max_hw)
            max_hw = (size_t)hw;
    }
    for (int i = 0; i < 2; i++)
        ENCO_TRY(enco_heads_build_sample(&cs->heads[i], &t->nets[NET_F1 + i], cs->nl, cin,
                                         c->netF_nc, max_rows));
    for (int i = 0; i < t->nnets; i++)
        ENCO_TRY(enco_params_alloc(ctx, &t->nets[i]));
    for (int i = 0; i < 2; i++) {
        ENCO_TRY(enco_seqnet_finish(ctx, &cs->g[i]));
        ENCO_TRY(enco_seqnet_finish(ctx, &cs->d[i]));
        ENCO_TRY(enco_heads_alloc(ctx, &cs->heads[i]));
        if (cs->stop > 0)
            ENCO_TRY(enco_seqnet_run_create(ctx, &cs->g[i], n, cs->stop, &cs->enc[i]));
    }

    size_t img = cs->img, pred = (size_t)t->ph * t->pw;
    ENCO_TRY(enco_family_alloc(t, cs->gn * img, &cs->gin_b));
    ENCO_TRY(enco_family_alloc(t, 2 * n * img, &cs->d_in));
    ENCO_TRY(enco_family_alloc(t, 2 * n * pred, &cs->dpred));
    ENCO_TRY(enco_family_alloc(t, n * img, &cs->enc_dx));
    for (int i = 0; i < 2; i++)
        ENCO_TRY(enco_family_alloc(t, cs->gn * img, &cs->dy[i]));
    size_t wf = enco_loss_lsgan_work(2 * n * pred), wl = enco_loss_l1_work(n * img);
    wf = wl > wf ? wl : wf;
    for (int l = 0; l < cs->nl; l++) {
        size_t x = enco_loss_patchnce_cos_work(1, (size_t)n * t->k[l], (size_t)c->netF_nc);
        wf = x > wf ? x : wf;
    }
    ENCO_TRY(enco_family_alloc(t, wf, &cs->work));
    for (int l = 0; l < cs->nl; l++) {
        size_t rows = (size_t)n * t->k[l];
        ENCO_TRY(enco_family_alloc(t, rows, &cs->idx[l]));
        ENCO_TRY(enco_family_alloc(t, rows * c->netF_nc, &cs->dq[l]));
        ENCO_TRY(enco_family_alloc(t, (size_t)n * t->fc[l] * t->fh[l] * t->fw[l], &cs->dfeat[l]));
        ENCO_TRY(enco_family_alloc(t, rows, &t->idx[l]));
        ENCO_TRY(enco_family_alloc(t, rows, &t->idx_y[l]));
    }
    cs->host_stride = max_hw + (size_t)n * max_hw;
    cs->host = malloc(2 * (size_t)cs->nl * cs->host_stride * sizeof *cs->host);
    if (!cs->host)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    return ENCO_OK;
}

static void release(enco_trainer *t)
{
    dcl_state *cs = t->state;
    if (!cs)
        return;
    enco_ctx *ctx = t->ctx;
    cl_mem bufs[] = {cs->gin_b, cs->d_in, cs->dpred, cs->work, cs->enc_dx, cs->dy[0], cs->dy[1]};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        enco_buffer_free(ctx, bufs[i]);
    for (int l = 0; l < ENCO_MAX_PAIRS; l++) {
        enco_buffer_free(ctx, cs->idx[l]);
        enco_buffer_free(ctx, cs->dq[l]);
        enco_buffer_free(ctx, cs->dfeat[l]);
    }
    for (int i = 0; i < 2; i++) {
        enco_seqnet_run_free(ctx, &cs->enc[i]);
        enco_heads_free(ctx, &cs->heads[i]);
        enco_seqnet_free(ctx, &cs->g[i]);
        enco_seqnet_free(ctx, &cs->d[i]);
    }
    enco_family_dp_free(t, &cs->dp);
    free(cs->host);
    free(cs);
    t->state = NULL;
}

/* Phase D: both generators forward, then D_A on (real_B, fake_B detached)
 * and D_B on (real_A, fake_A detached). */
static enco_status d_phase(enco_trainer *t, double *since)
{
    dcl_state *cs = t->state;
    const enco_dclgan_config *c = cs->c;
    enco_ctx *ctx = t->ctx;
    int n = t->n;
    size_t ni = (size_t)n * cs->img;
    ENCO_TRY(enco_seqnet_forward(ctx, &cs->g[0], t->real, 0, cs->gn));
    ENCO_TRY(enco_family_copy_images(t, "G_B input", cs->gin_b, 0, t->real, ni, (size_t)n));
    if (cs->idt)
        ENCO_TRY(enco_family_copy_images(t, "G_B input", cs->gin_b, (size_t)n, t->real, 0,
                                         (size_t)n));
    ENCO_TRY(enco_seqnet_forward(ctx, &cs->g[1], cs->gin_b, 0, cs->gn));
    enco_seqnet_output(&cs->g[0], &t->fake, &t->fake_off, NULL, NULL, NULL);
    t->has_idt = 0;
    ENCO_TRY(enco_trainer_mark(t, TIMER_G_FORWARD, since));
    for (int d = 0; d < 2; d++) {
        cl_mem fake;
        size_t fake_off;
        enco_seqnet_output(&cs->g[d], &fake, &fake_off, NULL, NULL, NULL);
        /* D_A: real_B and fake_B; D_B: real_A and fake_A */
        ENCO_TRY(enco_family_copy_images(t, "D input", cs->d_in, 0, t->real, d ? 0 : ni,
                                         (size_t)n));
        ENCO_TRY(enco_family_copy_images(t, "D input", cs->d_in, (size_t)n, fake, fake_off,
                                         (size_t)n));
        /* logged times lambda_GAN, which does not scale D's gradient (the reference) */
        ENCO_TRY(enco_family_d_lsgan(t, NET_DA + d, &cs->d[d], cs->d_in, cs->dpred, cs->work,
                                     1.0f, d ? SLOT_D_B_REAL : SLOT_D_A_REAL,
                                     d ? SLOT_D_B_FAKE : SLOT_D_A_FAKE, d ? SLOT_D_B : SLOT_D_A,
                                     (float)c->lambda_GAN));
    }
    return ENCO_OK;
}

/* The positions of layer l for term `term` (0: NCE1, 1: NCE2): one
 * permutation, its first K shared by the batch; given ones replace it.
 * Uploaded into cs->idx[l] and the trainer's record. */
static enco_status draw_ids(enco_trainer *t, int term, int l, const enco_sampling_override *ov)
{
    dcl_state *cs = t->state;
    int n = t->n, K = t->k[l], hw = t->fh[l] * t->fw[l];
    int32_t *perm = cs->host + ((size_t)term * cs->nl + l) * cs->host_stride, *rows = perm + hw;
    const int32_t *given = ov ? (term ? ov->patch_ids_Y[l] : ov->patch_ids[l]) : NULL, *row;
    ENCO_TRY(enco_family_batch_patch_row(t, given, ov && ov->keep_draws, perm, hw, K,
                                         term ? "patch_ids_2" : "patch_ids", l, &row));
    for (int i = 0; i < n; i++)
        memcpy(rows + (size_t)i * K, row, (size_t)K * sizeof *rows);
    size_t bytes = (size_t)n * K * sizeof(int32_t);
    if (enco_ctx_tracing(t->ctx)) {
        char where[40];
        snprintf(where, sizeof where, "sampling NCE%d layer %d", term + 1, cs->layer[l]);
        enco_ctx_trace_op(t->ctx, "upload", where, (enco_op_cost){0, 2.0 * bytes}, "n%d K%d", n,
                          K);
    }
    ENCO_TRY(enco_upload_async(t->ctx, cs->idx[l], 0, bytes, rows));
    return enco_copy(t->ctx, term ? t->idx_y[l] : t->idx[l], 0, cs->idx[l], 0, bytes);
}

/* Feature map of layer l in run r, or its input. */
static enco_status feature(const dcl_state *cs, const enco_seqnet_run *r, int l, cl_mem *m,
                           size_t *off)
{
    if (cs->layer[l] == 0) {
        enco_seqnet_run_input(r, m, off);
        return ENCO_OK;
    }
    int c, h, w;
    return enco_seqnet_run_feature(r, cs->layer[l], m, off, &c, &h, &w);
}

/* One cross PatchNCE term (0: NCE1, 1: NCE2): keys through F_k from the key
 * generator's default run on its real input, queries through F_q from the
 * other generator's encoder run on the key generator's translation; its
 * backward into F_q, the query generator's weights and the translation's
 * gradient (dy of the key generator). */
static enco_status nce_term(enco_trainer *t, int term, const enco_sampling_override *ov)
{
    dcl_state *cs = t->state;
    const enco_dclgan_config *c = cs->c;
    enco_ctx *ctx = t->ctx;
    int n = t->n, L = cs->nl;
    size_t ni = (size_t)n * cs->img;
    const int kg = term, qg = 1 - term; /* NCE1: keys G_A / F1, queries G_B / F2 */
    enco_heads *kf = &cs->heads[kg], *qf = &cs->heads[qg];
    for (int l = 0; l < L; l++)
        ENCO_TRY(draw_ids(t, term, l, ov));
    cl_mem fake;
    size_t fake_off;
    enco_seqnet_output(&cs->g[kg], &fake, &fake_off, NULL, NULL, NULL);
    if (cs->stop > 0)
        ENCO_TRY(enco_seqnet_run_forward(ctx, &cs->enc[qg], fake, fake_off, n));
    const float scale = (float)(0.5 * c->lambda_NCE / L);
    const size_t nc = (size_t)c->netF_nc;
    for (int l = 0; l < L; l++) {
        cl_mem m;
        size_t off;
        ENCO_TRY(feature(cs, &cs->g[kg].run, l, &m, &off));
        ENCO_TRY(enco_heads_forward(ctx, kf, l, 0, m, off, cs->idx[l], 0, n, t->fh[l], t->fw[l],
                                    t->k[l]));
        if (cs->stop > 0)
            ENCO_TRY(feature(cs, &cs->enc[qg], l, &m, &off));
        else
            m = fake, off = fake_off;
        ENCO_TRY(enco_heads_forward(ctx, qf, l, 1, m, off, cs->idx[l], 0, n, t->fh[l], t->fw[l],
                                    t->k[l]));
        size_t rows = (size_t)n * t->k[l];
        ENCO_TRY(enco_family_batch_patchnce(t, &cs->dp, 1, t->losses,
                                            (size_t)SLOT_LAYER0 + (size_t)term * L + l, cs->dq[l],
                                            0, qf->query[l].out, 0, kf->key[l].out, 0, rows, nc,
                                            (float)c->nce_T, scale, cs->work, 0));
    }
    int slots[ENCO_MAX_PAIRS];
    float weights[ENCO_MAX_PAIRS];
    for (int l = 0; l < L; l++) {
        slots[l] = SLOT_LAYER0 + term * L + l;
        weights[l] = (float)(c->lambda_NCE / L);
    }
    ENCO_TRY(enco_family_combine(t, term ? SLOT_NCE2 : SLOT_NCE1, slots, weights, (size_t)L));

    /* Backward: the query heads into the encoder run's maps, the run into the
     * query generator's weights and the translation. */
    enco_feature_grad inject[ENCO_MAX_PAIRS];
    int ninject = 0;
    enco_ctx_trace_op(ctx, "fill", "G input grad", (enco_op_cost){0, 4.0 * ni}, "n%d %zu floats",
                      n, cs->img);
    ENCO_TRY(enco_fill_zero(ctx, cs->enc_dx, 0, ni * F4));
    for (int l = 0; l < L; l++) {
        size_t fsize = (size_t)n * t->fc[l] * t->fh[l] * t->fw[l];
        enco_ctx_trace_op(ctx, "fill", "G feature grad", (enco_op_cost){0, 4.0 * fsize},
                          "n%d %dx%dx%d", n, t->fc[l], t->fh[l], t->fw[l]);
        ENCO_TRY(enco_fill_zero(ctx, cs->dfeat[l], 0, fsize * F4));
        ENCO_TRY(enco_heads_backward(ctx, qf, l, cs->dq[l], 0, cs->dfeat[l], 0, cs->idx[l], 0, n,
                                     t->fh[l], t->fw[l], t->k[l]));
        if (cs->layer[l] > 0)
            inject[ninject++] = (enco_feature_grad){cs->layer[l], cs->dfeat[l], 0, n};
    }
    if (cs->stop > 0)
        ENCO_TRY(enco_seqnet_run_backward(ctx, &cs->enc[qg], NULL, 0, cs->enc_dx, 0, 1, inject,
                                          (size_t)ninject));
    enco_ctx_trace_op(ctx, "axpy", "G output grad", enco_axpy_cost(ni), "n%d %zu floats", n,
                      cs->img);
    for (int l = 0; l < L; l++)
        if (cs->layer[l] == 0)
            ENCO_TRY(enco_axpy(ctx, cs->enc_dx, 0, cs->dfeat[l], 0, ni, 1.0f));
    return enco_axpy(ctx, cs->dy[kg], 0, cs->enc_dx, 0, ni, 1.0f);
}

static enco_status zero_slots(enco_trainer *t, const int *slots, int count)
{
    enco_ctx_trace_op(t->ctx, "fill", "loss", (enco_op_cost){0, 4.0 * count}, "%d", count);
    for (int i = 0; i < count; i++)
        ENCO_TRY(enco_fill_zero(t->ctx, t->losses, (size_t)slots[i] * F4, F4));
    return ENCO_OK;
}

static enco_status g_phase(enco_trainer *t, const enco_sampling_override *ov, double *since)
{
    dcl_state *cs = t->state;
    const enco_dclgan_config *c = cs->c;
    enco_ctx *ctx = t->ctx;
    int n = t->n, L = cs->nl;
    size_t ni = (size_t)n * cs->img, pred = (size_t)t->ph * t->pw * n;
    cl_mem out[2];
    size_t off[2];
    for (int i = 0; i < 2; i++)
        enco_seqnet_output(&cs->g[i], &out[i], &off[i], NULL, NULL, NULL);

    /* GAN terms through the frozen, just updated discriminators:
     * 0.5 lambda_GAN mse(D_A(fake_B), 1) + the same for D_B(fake_A). */
    for (int d = 0; d < 2; d++) {
        const int slot = d ? SLOT_G_B : SLOT_G_A;
        if (c->lambda_GAN > 0) {
            ENCO_TRY(enco_seqnet_forward(ctx, &cs->d[d], out[d], off[d], n));
            cl_mem dout;
            size_t doff;
            enco_seqnet_output(&cs->d[d], &dout, &doff, NULL, NULL, NULL);
            enco_ctx_trace_op(ctx, "loss.lsgan", "loss", enco_loss_lsgan_cost(pred), "%zu", pred);
            ENCO_TRY(enco_loss_lsgan(ctx, t->losses, (size_t)slot, cs->dpred, 0, dout, doff, pred,
                                     1.0f, (float)(0.5 * c->lambda_GAN), cs->work, 0));
            ENCO_TRY(enco_family_combine(t, slot, (int[]){slot}, (float[]){(float)c->lambda_GAN},
                                         1));
            ENCO_TRY(enco_seqnet_backward(ctx, &cs->d[d], cs->dpred, 0, cs->dy[d], 0, 0, NULL, 0));
        } else {
            ENCO_TRY(zero_slots(t, &slot, 1));
            ENCO_TRY(enco_fill_zero(ctx, cs->dy[d], 0, ni * F4));
        }
    }
    ENCO_TRY(enco_trainer_mark(t, TIMER_G_GAN, since));

    /* Identity terms: lambda_IDT L1(G_A(real_B), real_B), lambda_IDT
     * L1(G_B(real_A), real_A), at weight 0.5 in loss_G. */
    if (cs->idt && cs->nce) {
        for (int i = 0; i < 2; i++) {
            const int slot = i ? SLOT_IDT_B : SLOT_IDT_A;
            enco_ctx_trace_op(ctx, "loss.l1", "loss", enco_loss_l1_cost(ni), "%zu", ni);
            ENCO_TRY(enco_loss_l1(ctx, t->losses, (size_t)slot, cs->dy[i], ni, out[i], off[i] + ni,
                                  t->real, i ? 0 : ni, ni, (float)(0.5 * c->lambda_IDT), cs->work,
                                  0));
            ENCO_TRY(enco_family_combine(t, slot, (int[]){slot}, (float[]){(float)c->lambda_IDT},
                                         1));
        }
    } else {
        ENCO_TRY(zero_slots(t, (int[]){SLOT_IDT_A, SLOT_IDT_B}, 2));
        if (cs->idt)
            for (int i = 0; i < 2; i++)
                ENCO_TRY(enco_fill_zero(ctx, cs->dy[i], ni * F4, ni * F4));
    }

    if (cs->nce) {
        ENCO_TRY(nce_term(t, 0, ov));
        ENCO_TRY(nce_term(t, 1, ov));
    } else {
        ENCO_TRY(zero_slots(t, (int[]){SLOT_NCE1, SLOT_NCE2}, 2));
        for (int l = 0; l < 2 * L; l++)
            ENCO_TRY(zero_slots(t, (int[]){SLOT_LAYER0 + l}, 1));
    }
    ENCO_TRY(enco_trainer_mark(t, TIMER_NCE, since));
    ENCO_TRY(enco_family_combine(
        t, SLOT_G, (int[]){SLOT_G_A, SLOT_G_B, SLOT_NCE1, SLOT_NCE2, SLOT_IDT_A, SLOT_IDT_B},
        (float[]){0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f}, 6));
    for (int i = 0; i < 2; i++) {
        ENCO_TRY(enco_trainer_watch_grads(t, NET_GA + i, &cs->g[i]));
        ENCO_TRY(enco_seqnet_backward(ctx, &cs->g[i], cs->dy[i], 0, NULL, 0, 1, NULL, 0));
    }
    return enco_trainer_mark(t, TIMER_G_BACKWARD, since);
}

static enco_status phase(enco_trainer *t, int ph, const enco_sampling_override *ov, double *since)
{
    return ph == 0 ? d_phase(t, since) : g_phase(t, ov, since);
}

static enco_status write_images(enco_trainer *t, enco_st_file *out, const char *prefix)
{
    dcl_state *cs = t->state;
    return enco_family_add_two_way(t, out, prefix, &cs->g[0], &cs->g[1], cs->idt);
}

static int loss_count(const enco_trainer *t)
{
    return SLOT_LAYER0 + 2 * t->npairs;
}

static const char *loss_name(const enco_trainer *t, int slot, char *buf, size_t size, int *flags)
{
    static const char *const names[SLOT_LAYER0] = {
        "D_A", "D_B", "G_A", "G_B", "NCE1", "NCE2", "idt_A", "idt_B", "G",
        "D_A_real", "D_A_fake", "D_B_real", "D_B_fake"};
    if (slot < 0 || slot >= loss_count(t))
        return NULL;
    const int both = ENCO_LOSS_LOGGED | ENCO_LOSS_STEP;
    if (slot < SLOT_LAYER0) {
        snprintf(buf, size, "%s", names[slot]);
        *flags = slot >= SLOT_D_A_REAL ? 0
                 : (slot == SLOT_IDT_A || slot == SLOT_IDT_B) && !t->cfg.dclgan.nce_idt
                     ? ENCO_LOSS_STEP
                     : both;
    } else {
        int l = slot - SLOT_LAYER0;
        snprintf(buf, size, "%s.%d", l < t->npairs ? "NCE1" : "NCE2", l % t->npairs);
        *flags = ENCO_LOSS_STEP;
    }
    return buf;
}

/* Its PatchNCE takes negatives from the whole batch: the processes share
 * the batch's keys (enco_family_batch_patchnce). */
static const char *data_parallel_refusal(const enco_trainer *t)
{
    return t->reducer.allgather ? NULL
                                : "its PatchNCE takes negatives from the whole batch, and this "
                                  "run's processes cannot share them";
}

const enco_family enco_family_dclgan = {
    .name = "dclgan",
    .summary = "DCLGAN (CVPR-W 2021): two generators, two cross PatchNCE terms with cosine "
               "similarity",
    .section = "dclgan",
    .nnets = NET_COUNT,
    .nets = {"G_A", "G_B", "D_A", "D_B", "F1", "F2"},
    .generator = NET_GA,
    .two_way = 1,
    .generator_b = NET_GB,
    .nphases = 2,
    .phases = {{"D", 2, {NET_DA, NET_DB}, TIMER_D_STEP},
               {"G+F", 4, {NET_GA, NET_GB, NET_F1, NET_F2}, TIMER_OPTIMIZER}},
    .ntimers = TIMER_COUNT,
    .timers = {"G forward", "D step", "G GAN (D fwd+bwd)", "encoder passes + heads + PatchNCE",
               "G backward", "Adam G+F"},
    .plan = plan,
    .release = release,
    .phase = phase,
    .write_images = write_images,
    .loss_count = loss_count,
    .loss_name = loss_name,
    .data_parallel_refusal = data_parallel_refusal,
};
