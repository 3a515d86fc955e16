/* The CycleGAN family (docs/cyclegan.md): two generators G_A (A -> B) and
 * G_B (B -> A), two LSGAN discriminators D_A (judges B) and D_B (judges A),
 * cycle and identity L1 terms, and an image pool per generated domain.
 * One iteration, in the reference's order: phase "G" (D frozen, the D of
 * the previous iteration: GAN, cycle and identity losses; backward through
 * the rec runs into the fakes and on into the generator that made them;
 * Adam on G_A and G_B), then phase "D" (each D on a real batch and on the
 * pool's answer to this iteration's fakes, made before G's update; the
 * fake_B pool is queried first; Adam on D_A and D_B).
 *
 * Each generator runs three times per iteration: its default run on
 * (real, other real) gives the translation and the identity image at once
 * (InstanceNorm is per image), a second run translates the other
 * generator's output back (the cycle). */
#include "models/common.h"
#include "models/family.h"

#include "ops/act.h"
#include "ops/loss.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F4 sizeof(float)

enum { NET_GA = 0, NET_GB, NET_DA, NET_DB, NET_COUNT };

/* Loss slots: the reference's logged losses (weighted as it logs them),
 * loss_G, then D's halves. */
enum {
    SLOT_D_A = 0,
    SLOT_G_A,
    SLOT_CYCLE_A,
    SLOT_IDT_A,
    SLOT_D_B,
    SLOT_G_B,
    SLOT_CYCLE_B,
    SLOT_IDT_B,
    SLOT_G,
    SLOT_D_A_REAL,
    SLOT_D_A_FAKE,
    SLOT_D_B_REAL,
    SLOT_D_B_FAKE,
    SLOT_COUNT
};

enum { TIMER_G_FORWARD = 0, TIMER_G_LOSSES, TIMER_G_BACKWARD, TIMER_OPT_G, TIMER_D_STEP, TIMER_COUNT };

/* One pool of generated images (the reference's ImagePool): filled in
 * batch order until `size` images, then each new image replaces a stored
 * one drawn at random (and that one goes to D) with probability 1/2. */
typedef struct image_pool {
    int size, count;
    cl_mem images; /* (size, C, H, W) */
} image_pool;

typedef struct cg_state {
    const enco_cyclegan_config *c;
    int idt;               /* identity term on */
    int gn;                /* images of a generator's default run: 2N with identity, else N */
    size_t img;            /* floats per image */
    enco_seqnet g[2], d[2];  /* G_A, G_B; D_A, D_B */
    enco_seqnet_run rec[2];  /* G_A on fake_A (rec_B); G_B on fake_B (rec_A) */
    cl_mem gin_b;            /* G_B's input: real_B, then real_A */
    cl_mem dy[2];            /* gradient at G_A's, G_B's default-run output */
    cl_mem rdy, rdx;         /* gradient at a rec run's output, at its input */
    cl_mem d_in;             /* D's input: a real batch, then the pool's answer */
    cl_mem answer[2];        /* (N images) each pool's answer this iteration: what D was shown */
    cl_mem dpred, work;
    image_pool pools[2];     /* [0] the fake_A images (for D_B), [1] the fake_B images (D_A) */
    cl_mem gfake;            /* several processes: the whole batch's fakes a pool sees */
} cg_state;

static enco_model_config model_config(const enco_config *cfg)
{
    /* The reference passes its GPU list where define_G/define_D take
     * no_antialias (MODELS.md 3.1): on a GPU, strided down-sampling in G and
     * the strided PatchGAN; blur up-sampling either way. */
    enco_model_config mc = enco_family_model_config(cfg);
    mc.no_antialias = strcmp(cfg->cyclegan.nets, "gpu") == 0;
    mc.no_antialias_up = 0;
    return mc;
}

static enco_status plan(enco_trainer *t)
{
    cg_state *cs = calloc(1, sizeof *cs);
    if (!cs)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    t->state = cs;
    enco_ctx *ctx = t->ctx;
    const enco_config *cfg = &t->cfg;
    const enco_cyclegan_config *c = &cfg->cyclegan;
    cs->c = c;
    int n = t->n, h = t->h, w = t->w;
    if (cfg->model.input_nc != cfg->model.output_nc)
        return ENCO_FAIL(ENCO_ERR_UNSUPPORTED,
                         "cyclegan needs model.input_nc (%d) equal to model.output_nc (%d): each "
                         "generator reads the other's output",
                         cfg->model.input_nc, cfg->model.output_nc);
    for (int i = 0; i < NET_COUNT; i++) {
        t->net_lr[i] = c->lr;
        t->net_beta2[i] = 0.999; /* the reference's, whatever train.beta2 says */
    }
    cs->idt = c->lambda_identity > 0;
    cs->gn = cs->idt ? 2 * n : n;
    cs->img = (size_t)cfg->model.input_nc * h * w;
    enco_model_config mc = model_config(cfg);
    for (int i = 0; i < 2; i++)
        ENCO_TRY(enco_models_build(&mc, h, w, &cs->g[i], &t->nets[NET_GA + i], cs->gn, &cs->d[i],
                                   &t->nets[NET_DA + i], 2 * n));
    for (int i = 0; i < 2; i++) {
        t->netdef[NET_GA + i] = &cs->g[i];
        t->netdef[NET_DA + i] = &cs->d[i];
    }
    t->ph = cs->d[0].slots[cs->d[0].cur].h;
    t->pw = cs->d[0].slots[cs->d[0].cur].w;
    for (int i = 0; i < t->nnets; i++)
        ENCO_TRY(enco_params_alloc(ctx, &t->nets[i]));
    for (int i = 0; i < 2; i++) {
        ENCO_TRY(enco_seqnet_finish(ctx, &cs->g[i]));
        ENCO_TRY(enco_seqnet_finish(ctx, &cs->d[i]));
    }
    for (int i = 0; i < 2; i++)
        ENCO_TRY(enco_seqnet_run_create(ctx, &cs->g[i], n, -1, &cs->rec[i]));

    size_t img = cs->img, pred = (size_t)t->ph * t->pw;
    ENCO_TRY(enco_family_alloc(t, cs->gn * img, &cs->gin_b));
    for (int i = 0; i < 2; i++)
        ENCO_TRY(enco_family_alloc(t, cs->gn * img, &cs->dy[i]));
    ENCO_TRY(enco_family_alloc(t, n * img, &cs->rdy));
    ENCO_TRY(enco_family_alloc(t, n * img, &cs->rdx));
    ENCO_TRY(enco_family_alloc(t, 2 * n * img, &cs->d_in));
    for (int i = 0; i < 2; i++)
        ENCO_TRY(enco_family_alloc(t, n * img, &cs->answer[i]));
    ENCO_TRY(enco_family_alloc(t, 2 * n * pred, &cs->dpred));
    size_t wf = enco_loss_lsgan_work(n * pred), wl = enco_loss_l1_work(n * img);
    ENCO_TRY(enco_family_alloc(t, wf > wl ? wf : wl, &cs->work));
    for (int i = 0; i < 2; i++) {
        cs->pools[i].size = c->pool_size;
        if (c->pool_size > 0)
            ENCO_TRY(enco_family_alloc(t, (size_t)c->pool_size * img, &cs->pools[i].images));
    }
    t->has_pool = c->pool_size > 0;
    return ENCO_OK;
}

static void release(enco_trainer *t)
{
    cg_state *cs = t->state;
    if (!cs)
        return;
    enco_ctx *ctx = t->ctx;
    cl_mem bufs[] = {cs->gin_b,     cs->dy[0],     cs->dy[1],           cs->rdy,
                     cs->rdx,       cs->d_in,      cs->dpred,           cs->work,
                     cs->answer[0], cs->answer[1], cs->pools[0].images, cs->pools[1].images,
                     cs->gfake};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        enco_buffer_free(ctx, bufs[i]);
    for (int i = 0; i < 2; i++) {
        enco_seqnet_run_free(ctx, &cs->rec[i]);
        enco_seqnet_free(ctx, &cs->g[i]);
        enco_seqnet_free(ctx, &cs->d[i]);
    }
    free(cs);
    t->state = NULL;
}

static void reset(enco_trainer *t)
{
    cg_state *cs = t->state;
    cs->pools[0].count = cs->pools[1].count = 0;
}

/* An L1 term weight * mean|x - y| into slot (weighted in place, as the
 * reference logs it), its gradient into grad. */
static enco_status l1_term(enco_trainer *t, int slot, cl_mem grad, size_t grad_off, cl_mem x,
                           size_t x_off, cl_mem y, size_t y_off, double weight)
{
    cg_state *cs = t->state;
    size_t count = (size_t)t->n * cs->img;
    enco_ctx_trace_op(t->ctx, "loss.l1", "loss", enco_loss_l1_cost(count), "%zu", count);
    ENCO_TRY(enco_loss_l1(t->ctx, t->losses, (size_t)slot, grad, grad_off, x, x_off, y, y_off,
                          count, (float)weight, cs->work, 0));
    return enco_family_combine(t, slot, (int[]){slot}, (float[]){(float)weight}, 1);
}

/* mse(D(fake), 1) through frozen D (d: 0 D_A, 1 D_B); the image gradient
 * into grad (n images). */
static enco_status gan_term(enco_trainer *t, int d, int slot, cl_mem fake, size_t fake_off,
                            cl_mem grad)
{
    cg_state *cs = t->state;
    enco_ctx *ctx = t->ctx;
    size_t pred = (size_t)t->ph * t->pw * t->n;
    ENCO_TRY(enco_seqnet_forward(ctx, &cs->d[d], fake, fake_off, t->n));
    cl_mem dout;
    size_t doff;
    enco_seqnet_output(&cs->d[d], &dout, &doff, NULL, NULL, NULL);
    enco_ctx_trace_op(ctx, "loss.lsgan", "loss", enco_loss_lsgan_cost(pred), "%zu", pred);
    ENCO_TRY(enco_loss_lsgan(ctx, t->losses, (size_t)slot, cs->dpred, 0, dout, doff, pred, 1.0f,
                             1.0f, cs->work, 0));
    return enco_seqnet_backward(ctx, &cs->d[d], cs->dpred, 0, grad, 0, 0, NULL, 0);
}

static enco_status g_phase(enco_trainer *t, double *since)
{
    cg_state *cs = t->state;
    const enco_cyclegan_config *c = cs->c;
    enco_ctx *ctx = t->ctx;
    int n = t->n;
    size_t img = cs->img, ni = (size_t)n * img;

    /* G_A on (real_A, real_B): fake_B, idt_A; G_B on (real_B, real_A):
     * fake_A, idt_B; then the cycle: rec_A = G_B(fake_B), rec_B = G_A(fake_A). */
    ENCO_TRY(enco_seqnet_forward(ctx, &cs->g[0], t->real, 0, cs->gn));
    ENCO_TRY(enco_family_copy_images(t, "G_B input", cs->gin_b, 0, t->real, ni, (size_t)n));
    if (cs->idt)
        ENCO_TRY(enco_family_copy_images(t, "G_B input", cs->gin_b, (size_t)n, t->real, 0,
                                         (size_t)n));
    ENCO_TRY(enco_seqnet_forward(ctx, &cs->g[1], cs->gin_b, 0, cs->gn));
    cl_mem out[2];
    size_t off[2];
    for (int i = 0; i < 2; i++)
        enco_seqnet_output(&cs->g[i], &out[i], &off[i], NULL, NULL, NULL);
    t->fake = out[0];
    t->fake_off = off[0];
    t->has_idt = 0;
    ENCO_TRY(enco_seqnet_run_forward(ctx, &cs->rec[1], out[0], off[0], n));
    ENCO_TRY(enco_seqnet_run_forward(ctx, &cs->rec[0], out[1], off[1], n));
    ENCO_TRY(enco_trainer_mark(t, TIMER_G_FORWARD, since));

    /* GAN terms through the frozen discriminators: D_A judges fake_B. */
    ENCO_TRY(gan_term(t, 0, SLOT_G_A, out[0], off[0], cs->dy[0]));
    ENCO_TRY(gan_term(t, 1, SLOT_G_B, out[1], off[1], cs->dy[1]));
    /* Cycle terms: back through the other generator's rec run into its
     * weights and into the fake it read. */
    for (int i = 0; i < 2; i++) {
        /* i = 0: rec_A = G_B(fake_B) vs real_A; i = 1: rec_B = G_A(fake_A) vs real_B */
        enco_seqnet_run *rec = &cs->rec[1 - i];
        cl_mem r;
        size_t roff;
        enco_seqnet_run_output(rec, &r, &roff);
        ENCO_TRY(l1_term(t, i ? SLOT_CYCLE_B : SLOT_CYCLE_A, cs->rdy, 0, r, roff, t->real,
                         i ? ni : 0, i ? c->lambda_B : c->lambda_A));
        ENCO_TRY(enco_seqnet_run_backward(ctx, rec, cs->rdy, 0, cs->rdx, 0, 1, NULL, 0));
        enco_ctx_trace_op(ctx, "axpy", "G output grad", enco_axpy_cost(ni), "n%d %zu floats", n,
                          img);
        ENCO_TRY(enco_axpy(ctx, cs->dy[i], 0, cs->rdx, 0, ni, 1.0f));
    }
    /* Identity terms: idt_A = G_A(real_B) vs real_B, idt_B = G_B(real_A) vs real_A. */
    if (cs->idt) {
        ENCO_TRY(l1_term(t, SLOT_IDT_A, cs->dy[0], ni, out[0], off[0] + ni, t->real, ni,
                         c->lambda_B * c->lambda_identity));
        ENCO_TRY(l1_term(t, SLOT_IDT_B, cs->dy[1], ni, out[1], off[1] + ni, t->real, 0,
                         c->lambda_A * c->lambda_identity));
    } else {
        enco_ctx_trace_op(ctx, "fill", "loss", (enco_op_cost){0, 8.0}, "2");
        ENCO_TRY(enco_fill_zero(ctx, t->losses, SLOT_IDT_A * F4, F4));
        ENCO_TRY(enco_fill_zero(ctx, t->losses, SLOT_IDT_B * F4, F4));
    }
    ENCO_TRY(enco_family_combine(
        t, SLOT_G,
        (int[]){SLOT_G_A, SLOT_G_B, SLOT_CYCLE_A, SLOT_CYCLE_B, SLOT_IDT_A, SLOT_IDT_B},
        (float[]){1, 1, 1, 1, 1, 1}, 6));
    ENCO_TRY(enco_trainer_mark(t, TIMER_G_LOSSES, since));
    for (int i = 0; i < 2; i++) {
        ENCO_TRY(enco_trainer_watch_grads(t, NET_GA + i, &cs->g[i]));
        ENCO_TRY(enco_seqnet_backward(ctx, &cs->g[i], cs->dy[i], 0, NULL, 0, 1, NULL, 0));
    }
    return enco_trainer_mark(t, TIMER_G_BACKWARD, since);
}

/* The pool's answer to this iteration's fakes (pool p: 0 fake_A, 1 fake_B)
 * into cs->answer[p]; its draws from t->rng, replaced by the override's
 * where given. */
static enco_status query(enco_trainer *t, int p, cl_mem fake, size_t fake_off,
                         const enco_sampling_override *ov)
{
    cg_state *cs = t->state;
    image_pool *pool = &cs->pools[p];
    const char *name = p ? "B" : "A";
    const float *gu = ov ? ov->pool_u[p] : NULL;
    const int32_t *gid = ov ? ov->pool_id[p] : NULL;
    int n = t->n;
    /* Several processes: each holds the same pool and the same draws, and
     * queries it with the whole batch's fakes in the batch's order (gathered
     * from every process), keeping its own images' answers. */
    int all = n, mine = 0;
    if (t->reducer.size > 1 && pool->size > 0) {
        all = n * t->reducer.size, mine = n * t->reducer.rank;
        if (!cs->gfake)
            ENCO_TRY(enco_family_alloc(t, (size_t)all * cs->img, &cs->gfake));
        ENCO_TRY(enco_family_allgather(t, "pool fakes", fake, fake_off, (size_t)n * cs->img,
                                       cs->gfake, 0));
        fake = cs->gfake, fake_off = 0;
    }
    for (int g = 0; g < all; g++) {
        size_t src = fake_off + (size_t)g * cs->img;
        /* i: this process's image (the answer's slot), or -1: another's */
        const int i = g >= mine && g < mine + n ? g - mine : -1;
        if (pool->size == 0) {
            ENCO_TRY(enco_family_copy_images(t, "pool", cs->answer[p], (size_t)i, fake, src, 1));
            continue;
        }
        if (pool->count < pool->size) {
            ENCO_TRY(enco_family_copy_images(t, "pool", pool->images, (size_t)pool->count, fake,
                                             src, 1));
            if (i >= 0)
                ENCO_TRY(
                    enco_family_copy_images(t, "pool", cs->answer[p], (size_t)i, fake, src, 1));
            pool->count++;
            continue;
        }
        float u = 0;
        int32_t id = 0;
        if (!gu || ov->keep_draws) {
            ENCO_TRY(enco_rng_uniform(&t->rng, &u, 1, 0.0f, 1.0f));
            if (u > 0.5f)
                id = (int32_t)enco_rng_bounded(&t->rng, (uint32_t)pool->size);
        }
        if (gu) {
            u = gu[g];
            if (!(u >= 0.0f && u <= 1.0f))
                return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "pool_u.%s[%d] = %g is not in [0, 1]",
                                 name, g, (double)u);
            if (u > 0.5f) {
                if (!gid)
                    return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                                     "pool_u.%s[%d] = %g swaps with a stored image, but no "
                                     "pool_id.%s was given",
                                     name, g, (double)u, name);
                id = gid[g];
            }
        }
        if (u > 0.5f) {
            if (id < 0 || id >= pool->size)
                return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                                 "pool_id.%s[%d] = %d: the pool holds images 0 to %d", name, g,
                                 (int)id, pool->size - 1);
            if (i >= 0)
                ENCO_TRY(enco_family_copy_images(t, "pool", cs->answer[p], (size_t)i,
                                                 pool->images, (size_t)id * cs->img, 1));
            ENCO_TRY(enco_family_copy_images(t, "pool", pool->images, (size_t)id, fake, src, 1));
        } else if (i >= 0) {
            ENCO_TRY(enco_family_copy_images(t, "pool", cs->answer[p], (size_t)i, fake, src, 1));
        }
    }
    return ENCO_OK;
}

/* D_A on (real_B, pool_B(fake_B)), then D_B on (real_A, pool_A(fake_A)). */
static enco_status d_phase(enco_trainer *t, const enco_sampling_override *ov)
{
    cg_state *cs = t->state;
    int n = t->n;
    size_t ni = (size_t)n * cs->img;
    for (int d = 0; d < 2; d++) {
        cl_mem fake;
        size_t fake_off;
        enco_seqnet_output(&cs->g[d], &fake, &fake_off, NULL, NULL, NULL);
        /* D_A: real_B and the fake_B pool; D_B: real_A and the fake_A pool */
        ENCO_TRY(enco_family_copy_images(t, "D input", cs->d_in, 0, t->real, d ? 0 : ni,
                                         (size_t)n));
        ENCO_TRY(query(t, 1 - d, fake, fake_off, ov));
        ENCO_TRY(enco_family_copy_images(t, "D input", cs->d_in, (size_t)n, cs->answer[1 - d], 0,
                                         (size_t)n));
        ENCO_TRY(enco_family_d_lsgan(t, NET_DA + d, &cs->d[d], cs->d_in, cs->dpred, cs->work,
                                     1.0f, d ? SLOT_D_B_REAL : SLOT_D_A_REAL,
                                     d ? SLOT_D_B_FAKE : SLOT_D_A_FAKE, d ? SLOT_D_B : SLOT_D_A,
                                     1.0f));
    }
    return ENCO_OK;
}

static enco_status phase(enco_trainer *t, int ph, const enco_sampling_override *ov, double *since)
{
    return ph == 0 ? g_phase(t, since) : d_phase(t, ov);
}

static enco_status save_state(enco_trainer *t, enco_st_file *out, const char *prefix)
{
    cg_state *cs = t->state;
    for (int p = 0; p < 2; p++) {
        const image_pool *pool = &cs->pools[p];
        if (!pool->count)
            continue;
        size_t count = (size_t)pool->count * cs->img;
        float *host = malloc(count * F4);
        if (!host)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        enco_status st = enco_download(t->ctx, pool->images, 0, count * F4, host);
        char key[256];
        snprintf(key, sizeof key, "%spool.%s", prefix, p ? "B" : "A");
        if (st == ENCO_OK)
            st = enco_st_add(out, key, ENCO_DT_F32, 4,
                             (int64_t[]){pool->count, t->cfg.model.input_nc, t->h, t->w}, host);
        free(host);
        ENCO_TRY(st);
    }
    return ENCO_OK;
}

static enco_status load_state(enco_trainer *t, const enco_st_file *in, const char *prefix)
{
    cg_state *cs = t->state;
    for (int p = 0; p < 2; p++) {
        image_pool *pool = &cs->pools[p];
        char key[256];
        snprintf(key, sizeof key, "%spool.%s", prefix, p ? "B" : "A");
        const enco_st_tensor *x = enco_st_find(in, key);
        pool->count = 0;
        if (!x)
            continue;
        if (x->dtype != ENCO_DT_F32 || x->ndim != 4 || x->shape[0] < 0 ||
            x->shape[0] > pool->size || x->shape[1] != t->cfg.model.input_nc ||
            x->shape[2] != t->h || x->shape[3] != t->w)
            return ENCO_FAIL(ENCO_ERR_FORMAT,
                             "%s must be float32 (count, %d, %d, %d) with count at most "
                             "cyclegan.pool_size = %d",
                             key, t->cfg.model.input_nc, t->h, t->w, pool->size);
        if (x->shape[0] > 0)
            ENCO_TRY(enco_upload(t->ctx, pool->images, 0, (size_t)x->shape[0] * cs->img * F4,
                                 x->data));
        pool->count = (int)x->shape[0];
    }
    return ENCO_OK;
}

static enco_status write_images(enco_trainer *t, enco_st_file *out, const char *prefix)
{
    cg_state *cs = t->state;
    cl_mem rec_a, rec_b;
    size_t ra, rb;
    ENCO_TRY(enco_family_add_two_way(t, out, prefix, &cs->g[0], &cs->g[1], cs->idt));
    enco_seqnet_run_output(&cs->rec[1], &rec_a, &ra);
    enco_seqnet_run_output(&cs->rec[0], &rec_b, &rb);
    ENCO_TRY(enco_family_add_images(t, out, prefix, "rec_A", rec_a, ra));
    ENCO_TRY(enco_family_add_images(t, out, prefix, "rec_B", rec_b, rb));
    /* what each D was shown as fakes */
    ENCO_TRY(enco_family_add_images(t, out, prefix, "pool_out.A", cs->answer[0], 0));
    ENCO_TRY(enco_family_add_images(t, out, prefix, "pool_out.B", cs->answer[1], 0));
    return save_state(t, out, prefix);
}

static int loss_count(const enco_trainer *t)
{
    (void)t;
    return SLOT_COUNT;
}

static const char *loss_name(const enco_trainer *t, int slot, char *buf, size_t size, int *flags)
{
    static const char *const names[SLOT_COUNT] = {
        "D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B", "G",
        "D_A_real", "D_A_fake", "D_B_real", "D_B_fake"};
    if (slot < 0 || slot >= SLOT_COUNT)
        return NULL;
    const int both = ENCO_LOSS_LOGGED | ENCO_LOSS_STEP;
    const int idt = t->cfg.cyclegan.lambda_identity > 0;
    snprintf(buf, size, "%s", names[slot]);
    *flags = slot >= SLOT_D_A_REAL                              ? 0
             : (slot == SLOT_IDT_A || slot == SLOT_IDT_B) && !idt ? ENCO_LOSS_STEP
                                                                  : both;
    return buf;
}

/* The iteration is per-image terms with batch means; the image pools see
 * the whole batch's fakes in order, which the processes share. */
static const char *data_parallel_refusal(const enco_trainer *t)
{
    return t->cfg.cyclegan.pool_size > 0 && !t->reducer.allgather
               ? "its image pools (cyclegan.pool_size > 0) hold and draw over the whole batch's "
                 "fakes, and this run's processes cannot share them"
               : NULL;
}

const enco_family enco_family_cyclegan = {
    .name = "cyclegan",
    .summary = "CycleGAN (ICCV 2017): two generators tied by cycle-consistency, image pools",
    .section = "cyclegan",
    .nnets = NET_COUNT,
    .nets = {"G_A", "G_B", "D_A", "D_B"},
    .generator = NET_GA,
    .two_way = 1,
    .generator_b = NET_GB,
    .nphases = 2,
    .phases = {{"G", 2, {NET_GA, NET_GB}, TIMER_OPT_G}, {"D", 2, {NET_DA, NET_DB}, TIMER_D_STEP}},
    .ntimers = TIMER_COUNT,
    .timers = {"G forward (3 runs each)", "GAN + cycle + identity", "G backward", "Adam G",
               "D step (pools, D fwd+bwd, Adam D)"},
    .plan = plan,
    .release = release,
    .reset = reset,
    .phase = phase,
    .model_config = model_config,
    .save_state = save_state,
    .load_state = load_state,
    .write_images = write_images,
    .loss_count = loss_count,
    .loss_name = loss_name,
    .data_parallel_refusal = data_parallel_refusal,
};
