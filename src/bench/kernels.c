/* The per-kernel table: every distinct launch of one training iteration of
 * the default model, at its real shapes, timed alone.
 *
 * The plan walks the layers of G and D as enco_generator_build /
 * enco_discriminator_build lay them out and the trainer runs them
 * (src/train/trainer.c): G over 2N images while the identity term is on, D
 * over 2N images in its own step (parameter gradients) and over N images in
 * the G step (input gradient only), the heads over N*K patch rows per pair.
 * Launches of identical shape are merged into one row with a count per
 * iteration, so that sum(count * time) estimates the iteration. Convolution
 * backward runs as two rows, the input gradient and the weight (+bias)
 * gradient, each launched with NULL for the gradients not measured. */
#include "bench/bench.h"

#include "nn/heads.h"
#include "nn/models.h"
#include "ops/act.h"
#include "ops/adam.h"
#include "ops/blur.h"
#include "ops/dag.h"
#include "ops/linear.h"
#include "ops/loss.h"
#include "ops/norm.h"
#include "ops/patch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define F4 sizeof(float)

typedef enum job_kind {
    J_CONV_FWD,
    J_CONV_BWD_DATA,
    J_CONV_BWD_WEIGHT,
    J_CONVT_FWD,
    J_CONVT_BWD_DATA,
    J_CONVT_BWD_WEIGHT,
    J_INORM_FWD,
    J_INORM_BWD,
    J_ACT_FWD,
    J_ACT_BWD,
    J_TANH_FWD,
    J_TANH_BWD,
    J_DOWN_FWD,
    J_DOWN_BWD,
    J_UP_FWD,
    J_UP_BWD,
    J_ADD_FWD,
    J_LINEAR_FWD,
    J_LINEAR_BWD,
    J_BN_FWD,
    J_BN_BWD,
    J_L2_FWD,
    J_L2_BWD,
    J_GATHER_FWD,
    J_GATHER_BWD,
    J_BILINEAR,
    J_DAG,
    J_DAG_PERMS,
    J_LOSS_LSGAN,
    J_LOSS_L1,
    J_LOSS_ENCO,
    J_ADAM,
} job_kind;

/* What a row launches. Layer jobs carry the layer (shapes with n set);
 * the others use the plain dimensions. */
typedef struct job {
    job_kind kind;
    int n;
    enco_layer layer;
    size_t m, in, out;   /* linear (m, in, out); batchnorm / l2norm (m rows, in); losses, adam (m) */
    int c, h, w, oh, ow; /* gather / bilinear / dag: (n, c, h, w), resize target oh x ow */
    int k;               /* patches per image */
    int bias;            /* linear with bias; batchnorm affine */
} job;

typedef struct planned {
    enco_bench_row row;
    job j;
    int wheres;          /* distinct places merged into the row */
} planned;

typedef struct plan {
    planned *v;
    size_t n, cap;
} plan;

static enco_status plan_add(plan *p, const job *j, const char *name, const char *where,
                            const char *shape, enco_op_cost cost)
{
    for (size_t i = 0; i < p->n; i++) {
        planned *e = &p->v[i];
        if (strcmp(e->row.name, name) == 0 && strcmp(e->row.shape, shape) == 0) {
            e->row.per_iter++;
            if (strcmp(e->row.where, where) != 0)
                e->wheres++;
            return ENCO_OK;
        }
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        planned *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
        p->v = v;
        p->cap = cap;
    }
    planned *e = &p->v[p->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->row.name, sizeof e->row.name, "%s", name);
    snprintf(e->row.where, sizeof e->row.where, "%s", where);
    snprintf(e->row.shape, sizeof e->row.shape, "%s", shape);
    e->row.per_iter = 1;
    e->row.cost = cost;
    e->j = *j;
    e->wheres = 1;
    return ENCO_OK;
}

static const char *pad_name(enco_pad_mode m)
{
    return m == ENCO_PAD_REFLECT ? "reflect" : m == ENCO_PAD_REPLICATE ? "replicate" : "zero";
}

static const char *act_name(enco_norm_act a)
{
    return a == ENCO_NORM_ACT_RELU ? "+relu" : a == ENCO_NORM_ACT_LEAKY ? "+lrelu" : "";
}

/* "G model.12.conv_block.1" from the layer's weight name, else its module. */
static void layer_where(char *buf, size_t size, char net, const enco_seqnet *s,
                        const enco_layer *l)
{
    long pi = l->weight >= 0 ? l->weight : l->filt;
    if (pi >= 0) {
        const char *nm = s->ps->list[pi].name;
        const char *dot = strrchr(nm, '.');
        int len = dot ? (int)(dot - nm) : (int)strlen(nm);
        snprintf(buf, size, "%c %.*s", net, len, nm);
    } else if (l->module >= 0) {
        snprintf(buf, size, "%c model.%d", net, l->module);
    } else {
        snprintf(buf, size, "%c (in block)", net);
    }
}

/* Adds the rows of one layer's forward (pass 0) or backward (pass 1: dx
 * wanted when want_dx, parameter gradients when want_dw). */
static enco_status plan_layer(plan *p, char net, const enco_seqnet *s, const enco_layer *l0,
                              int n, int pass, int want_dx, int want_dw)
{
    enco_layer l = *l0;
    l.conv.n = n;
    l.convt.n = n;
    job j = {.n = n, .layer = l};
    char where[64], shape[96];
    layer_where(where, sizeof where, net, s, &l);
    size_t elems = (size_t)n * l.co * l.ho * l.wo;
    switch (l.kind) {
    case ENCO_L_CONV: {
        const enco_conv2d_shape *c = &l.conv;
        snprintf(shape, sizeof shape, "n%d %dx%dx%d>%dx%dx%d k%d s%d p%d %s", n, c->cin, c->h,
                 c->w, c->cout, l.ho, l.wo, c->kh, c->stride_h, c->pad_h, pad_name(c->pad_mode));
        enco_op_cost fwd = enco_conv2d_cost(c, 0), bwd = enco_conv2d_cost(c, 1);
        if (pass == 0) {
            j.kind = J_CONV_FWD;
            return plan_add(p, &j, "conv2d.fwd", where, shape, fwd);
        }
        /* Split the combined backward cost: dx is one GEMM (and col2im)
         * like the forward; dw + db the other GEMM and the bias sum. */
        double ys = (double)elems, xs = (double)n * c->cin * c->h * c->w;
        double ws = (double)c->cout * c->cin * c->kh * c->kw;
        if (want_dx) {
            j.kind = J_CONV_BWD_DATA;
            enco_op_cost cd = {fwd.flops - ys, 4.0 * (ys + ws + xs)};
            ENCO_TRY(plan_add(p, &j, "conv2d.bwd_data", where, shape, cd));
        }
        if (want_dw) {
            j.kind = J_CONV_BWD_WEIGHT;
            enco_op_cost cw = {bwd.flops - (fwd.flops - ys), bwd.bytes - 4.0 * (ws + xs)};
            ENCO_TRY(plan_add(p, &j, "conv2d.bwd_weight", where, shape, cw));
        }
        return ENCO_OK;
    }
    case ENCO_L_CONVT: {
        const enco_conv_transpose2d_shape *c = &l.convt;
        snprintf(shape, sizeof shape, "n%d %dx%dx%d>%dx%dx%d k%d s%d p%d", n, c->cin, c->h, c->w,
                 c->cout, l.ho, l.wo, c->kh, c->stride_h, c->pad_h);
        enco_op_cost fwd = enco_conv_transpose2d_cost(c, 0), bwd = enco_conv_transpose2d_cost(c, 1);
        if (pass == 0) {
            j.kind = J_CONVT_FWD;
            return plan_add(p, &j, "convt2d.fwd", where, shape, fwd);
        }
        double ys = (double)elems, xs = (double)n * c->cin * c->h * c->w;
        double ws = (double)c->cout * c->cin * c->kh * c->kw;
        if (want_dx) {
            j.kind = J_CONVT_BWD_DATA;
            enco_op_cost cd = {fwd.flops - ys, 4.0 * (ys + ws + xs)};
            ENCO_TRY(plan_add(p, &j, "convt2d.bwd_data", where, shape, cd));
        }
        if (want_dw) {
            j.kind = J_CONVT_BWD_WEIGHT;
            enco_op_cost cw = {bwd.flops - (fwd.flops - ys), bwd.bytes - 4.0 * (ws + xs)};
            ENCO_TRY(plan_add(p, &j, "convt2d.bwd_weight", where, shape, cw));
        }
        return ENCO_OK;
    }
    default:
        break;
    }
    if (pass == 1 && !want_dx)
        return ENCO_OK;
    switch (l.kind) {
    case ENCO_L_INORM:
        snprintf(shape, sizeof shape, "n%d %dx%dx%d%s", n, l.c, l.h, l.w, act_name(l.act));
        j.kind = pass ? J_INORM_BWD : J_INORM_FWD;
        return plan_add(p, &j, pass ? "instnorm.bwd" : "instnorm.fwd", where, shape,
                        pass ? enco_instnorm_backward_cost(n, l.c, l.h, l.w)
                             : enco_instnorm_forward_cost(n, l.c, l.h, l.w));
    case ENCO_L_ACT: {
        snprintf(shape, sizeof shape, "n%d %dx%dx%d", n, l.c, l.h, l.w);
        j.kind = pass ? J_ACT_BWD : J_ACT_FWD;
        int leaky = l.act == ENCO_NORM_ACT_LEAKY;
        const char *nm = leaky ? (pass ? "leaky_relu.bwd" : "leaky_relu.fwd")
                               : (pass ? "relu.bwd" : "relu.fwd");
        return plan_add(p, &j, nm, where, shape,
                        leaky ? enco_leaky_relu_cost(elems, pass) : enco_relu_cost(elems, pass));
    }
    case ENCO_L_TANH:
        snprintf(shape, sizeof shape, "n%d %dx%dx%d", n, l.c, l.h, l.w);
        j.kind = pass ? J_TANH_BWD : J_TANH_FWD;
        return plan_add(p, &j, pass ? "tanh.bwd" : "tanh.fwd", where, shape,
                        enco_tanh_cost(elems, pass));
    case ENCO_L_DOWN:
        snprintf(shape, sizeof shape, "n%d %dx%dx%d>%dx%d", n, l.c, l.h, l.w, l.ho, l.wo);
        j.kind = pass ? J_DOWN_BWD : J_DOWN_FWD;
        return plan_add(p, &j, pass ? "blur_down.bwd" : "blur_down.fwd", where, shape,
                        pass ? enco_blur_down_backward_cost(n, l.c, l.h, l.w)
                             : enco_blur_down_forward_cost(n, l.c, l.h, l.w));
    case ENCO_L_UP:
        snprintf(shape, sizeof shape, "n%d %dx%dx%d>%dx%d", n, l.c, l.h, l.w, l.ho, l.wo);
        j.kind = pass ? J_UP_BWD : J_UP_FWD;
        return plan_add(p, &j, pass ? "blur_up.bwd" : "blur_up.fwd", where, shape,
                        pass ? enco_blur_up_backward_cost(n, l.c, l.h, l.w)
                             : enco_blur_up_forward_cost(n, l.c, l.h, l.w));
    case ENCO_L_ADD:
        if (pass)
            return ENCO_OK; /* a copy and an add of the gradient: not an op launch */
        snprintf(shape, sizeof shape, "n%d %dx%dx%d", n, l.c, l.h, l.w);
        j.kind = J_ADD_FWD;
        return plan_add(p, &j, "add.fwd", "G resblock", shape, enco_add_cost(elems, 0));
    default:
        return ENCO_OK;
    }
}

/* Forward over n images, then backward (dx except for the first layer unless
 * want_input_grad; parameter gradients when params). */
static enco_status plan_net(plan *p, char net, const enco_seqnet *s, int n, int params)
{
    for (size_t i = 0; i < s->nlayers; i++)
        ENCO_TRY(plan_layer(p, net, s, &s->layers[i], n, 0, 0, 0));
    for (size_t i = s->nlayers; i-- > 0;) {
        const enco_layer *l = &s->layers[i];
        int first = l->in == 0;
        ENCO_TRY(plan_layer(p, net, s, l, n, 1, !first, params));
        if (first)
            break;
    }
    return ENCO_OK;
}

static enco_status plan_linear(plan *p, const char *where, size_t m, size_t in, size_t out,
                               int bias, int backward)
{
    char shape[96];
    snprintf(shape, sizeof shape, "%zux%zu>%zu%s", m, in, out, bias ? " +bias" : "");
    job j = {.kind = backward ? J_LINEAR_BWD : J_LINEAR_FWD, .m = m, .in = in, .out = out,
             .bias = bias};
    return plan_add(p, &j, backward ? "linear.bwd" : "linear.fwd", where, shape,
                    enco_linear_cost(m, in, out, bias, backward));
}

static enco_status plan_rows(plan *p, job_kind kind, const char *name, const char *where,
                             size_t m, size_t c, int affine, enco_op_cost cost)
{
    char shape[96];
    snprintf(shape, sizeof shape, "%zux%zu%s", m, c, affine ? " affine" : "");
    job j = {.kind = kind, .m = m, .in = c, .bias = affine};
    return plan_add(p, &j, name, where, shape, cost);
}

/* One pair's heads: query pass (mlp + prj), key pass (mlp), query backward. */
static enco_status plan_heads(plan *p, int pair, int n, int c, int h, int w, int k, int nc)
{
    char where[64], shape[96];
    size_t rows = (size_t)n * k;
    snprintf(where, sizeof where, "F pair %d", pair);
    job g = {.kind = J_GATHER_FWD, .n = n, .c = c, .h = h, .w = w, .k = k};
    snprintf(shape, sizeof shape, "n%d %dx%dx%d k%d", n, c, h, w, k);
    for (int pass = 0; pass < 2; pass++) { /* query, key */
        int query = pass == 0;
        g.kind = J_GATHER_FWD;
        ENCO_TRY(plan_add(p, &g, "gather.fwd", where, shape,
                          enco_patch_gather_cost((size_t)n, (size_t)c, (size_t)k, 0)));
        ENCO_TRY(plan_linear(p, where, rows, (size_t)c, (size_t)nc, 0, 0));
        ENCO_TRY(plan_rows(p, J_BN_FWD, "batchnorm.fwd", where, rows, (size_t)nc, 1,
                           enco_batchnorm_forward_cost((int)rows, nc)));
        ENCO_TRY(plan_rows(p, J_ACT_FWD, "relu.fwd", where, rows, (size_t)nc, 0,
                           enco_relu_cost(rows * nc, 0)));
        ENCO_TRY(plan_linear(p, where, rows, (size_t)nc, (size_t)nc, 0, 0));
        ENCO_TRY(plan_rows(p, J_BN_FWD, "batchnorm.fwd", where, rows, (size_t)nc, 0,
                           enco_batchnorm_forward_cost((int)rows, nc)));
        if (query) {
            ENCO_TRY(plan_linear(p, where, rows, (size_t)nc, (size_t)nc / 2, 0, 0));
            ENCO_TRY(plan_rows(p, J_BN_FWD, "batchnorm.fwd", where, rows, (size_t)nc / 2, 1,
                               enco_batchnorm_forward_cost((int)rows, nc / 2)));
            ENCO_TRY(plan_rows(p, J_ACT_FWD, "relu.fwd", where, rows, (size_t)nc / 2, 0,
                               enco_relu_cost(rows * nc / 2, 0)));
            ENCO_TRY(plan_linear(p, where, rows, (size_t)nc / 2, (size_t)nc, 1, 0));
        }
        ENCO_TRY(plan_rows(p, J_L2_FWD, "l2norm.fwd", where, rows, (size_t)nc, 0,
                           enco_l2norm_cost(rows, (size_t)nc, 0)));
    }
    ENCO_TRY(plan_rows(p, J_L2_BWD, "l2norm.bwd", where, rows, (size_t)nc, 0,
                       enco_l2norm_cost(rows, (size_t)nc, 1)));
    ENCO_TRY(plan_linear(p, where, rows, (size_t)nc / 2, (size_t)nc, 1, 1));
    ENCO_TRY(plan_rows(p, J_ACT_BWD, "relu.bwd", where, rows, (size_t)nc / 2, 0,
                       enco_relu_cost(rows * nc / 2, 1)));
    ENCO_TRY(plan_rows(p, J_BN_BWD, "batchnorm.bwd", where, rows, (size_t)nc / 2, 1,
                       enco_batchnorm_backward_cost((int)rows, nc / 2)));
    ENCO_TRY(plan_linear(p, where, rows, (size_t)nc, (size_t)nc / 2, 0, 1));
    ENCO_TRY(plan_rows(p, J_BN_BWD, "batchnorm.bwd", where, rows, (size_t)nc, 0,
                       enco_batchnorm_backward_cost((int)rows, nc)));
    ENCO_TRY(plan_linear(p, where, rows, (size_t)nc, (size_t)nc, 0, 1));
    ENCO_TRY(plan_rows(p, J_ACT_BWD, "relu.bwd", where, rows, (size_t)nc, 0,
                       enco_relu_cost(rows * nc, 1)));
    ENCO_TRY(plan_rows(p, J_BN_BWD, "batchnorm.bwd", where, rows, (size_t)nc, 1,
                       enco_batchnorm_backward_cost((int)rows, nc)));
    ENCO_TRY(plan_linear(p, where, rows, (size_t)c, (size_t)nc, 0, 1));
    g.kind = J_GATHER_BWD;
    return plan_add(p, &g, "gather.bwd", where, shape,
                    enco_patch_gather_cost((size_t)n, (size_t)c, (size_t)k, 1));
}

typedef struct model_plan {
    enco_config cfg;
    enco_param_set G, D;
    enco_seqnet gnet, dnet;
} model_plan;

static void model_free(model_plan *mp)
{
    enco_seqnet_free(NULL, &mp->gnet);
    enco_seqnet_free(NULL, &mp->dnet);
    enco_params_free(NULL, &mp->G);
    enco_params_free(NULL, &mp->D);
}

static enco_status build_plan(const enco_bench_options *o, plan *p, model_plan *mp)
{
    if (o->batch < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench: batch %d: at least 1", o->batch);
    enco_config_defaults(&mp->cfg);
    const enco_config *cfg = &mp->cfg;
    enco_model_config mc = enco_model_config_default();
    int n = o->batch, sz = o->size;
    int gn = cfg->train.nce_idt ? 2 * n : n;
    enco_params_init(&mp->G, "netG.");
    enco_params_init(&mp->D, "netD.");
    ENCO_TRY(enco_models_build(&mc, sz, sz, &mp->gnet, &mp->G, gn, &mp->dnet, &mp->D, 2 * n));

    /* Iteration order: G forward (+ backward later), D step, G step. */
    ENCO_TRY(plan_net(p, 'G', &mp->gnet, gn, 1));
    ENCO_TRY(plan_net(p, 'D', &mp->dnet, 2 * n, 1));
    ENCO_TRY(plan_net(p, 'D', &mp->dnet, n, 0));

    const enco_slot *dout = &mp->dnet.slots[mp->dnet.cur];
    size_t pred = (size_t)n * dout->h * dout->w;
    char shape[96];
    job j = {.kind = J_LOSS_LSGAN, .m = pred};
    snprintf(shape, sizeof shape, "%zu", pred);
    for (int i = 0; i < 3; i++) /* D fake, D real, G GAN */
        ENCO_TRY(plan_add(p, &j, "loss.lsgan", "loss", shape, enco_loss_lsgan_cost(pred)));
    if (cfg->train.nce_idt) {
        size_t img = (size_t)n * cfg->model.output_nc * sz * sz;
        j = (job){.kind = J_LOSS_L1, .m = img};
        snprintf(shape, sizeof shape, "%zu", img);
        ENCO_TRY(plan_add(p, &j, "loss.l1", "loss", shape, enco_loss_l1_cost(img)));
    }

    int npairs = cfg->model.n_nce_layers / 2, nc = cfg->model.netF_nc;
    for (int q = 0; q < npairs; q++) {
        cl_mem m;
        size_t off;
        int c, h, w;
        ENCO_TRY(enco_seqnet_feature(&mp->gnet, cfg->model.nce_layers[q], &m, &off, &c, &h, &w));
        int k = enco_dag_num_samples(h, w, cfg->train.num_patches);
        char where[32];
        snprintf(where, sizeof where, "sampling pair %d", q);
        j = (job){.kind = J_BILINEAR, .n = n, .c = 1, .h = dout->h, .w = dout->w, .oh = h, .ow = w};
        snprintf(shape, sizeof shape, "n%d %dx%d>%dx%d", n, dout->h, dout->w, h, w);
        ENCO_TRY(plan_add(p, &j, "bilinear.fwd", where, shape,
                          enco_bilinear_cost((size_t)n, 1, (size_t)dout->h, (size_t)dout->w,
                                             (size_t)h, (size_t)w)));
        j = (job){.kind = J_DAG_PERMS, .n = n, .h = h, .w = w};
        snprintf(shape, sizeof shape, "n%d 2x%d", n, h * w);
        ENCO_TRY(plan_add(p, &j, "dag.perms_upload", where, shape,
                          (enco_op_cost){0, 2.0 * 4.0 * n * h * w}));
        j = (job){.kind = J_DAG, .n = n, .h = h, .w = w, .k = k};
        snprintf(shape, sizeof shape, "n%d %dx%d K%d x%d", n, h, w, k,
                 cfg->train.oversample_ratio);
        ENCO_TRY(plan_add(p, &j, "dag.fwd", where, shape,
                          enco_dag_cost(n, h, w, cfg->train.num_patches,
                                        cfg->train.oversample_ratio, cfg->train.random_ratio)));
        ENCO_TRY(plan_heads(p, q, n, c, h, w, k, nc));
        size_t rows = (size_t)n * k;
        j = (job){.kind = J_LOSS_ENCO, .m = rows, .in = (size_t)nc};
        snprintf(shape, sizeof shape, "%zux%d", rows, nc);
        ENCO_TRY(plan_add(p, &j, "loss.enco", "loss", shape,
                          enco_loss_enco_cost(rows, (size_t)nc)));
    }

    /* Adam: one launch per network over its flat parameter block. F's size
     * comes from the heads' declaration. */
    enco_param_set F;
    enco_heads heads;
    int cin[ENCO_MAX_PAIRS];
    int max_rows = 2;
    for (int q = 0; q < npairs; q++) {
        cl_mem m;
        size_t off;
        int h, w;
        ENCO_TRY(enco_seqnet_feature(&mp->gnet, cfg->model.nce_layers[q], &m, &off, &cin[q], &h,
                                     &w));
        int r = n * enco_dag_num_samples(h, w, cfg->train.num_patches);
        if (r > max_rows)
            max_rows = r;
    }
    enco_params_init(&F, "netF.");
    enco_status st = enco_heads_build(&heads, &F, ENCO_PRJ_BN, npairs, cin, nc, max_rows);
    size_t nf = F.n_params;
    enco_params_free(NULL, &F);
    ENCO_TRY(st);
    const struct {
        const char *where;
        size_t count;
    } nets[] = {{"G", mp->G.n_params}, {"D", mp->D.n_params}, {"F", nf}};
    for (int i = 0; i < 3; i++) {
        j = (job){.kind = J_ADAM, .m = nets[i].count};
        snprintf(shape, sizeof shape, "%zu params", nets[i].count);
        ENCO_TRY(plan_add(p, &j, "adam", nets[i].where, shape, enco_adam_cost(nets[i].count)));
    }

    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].wheres > 1) {
            enco_bench_row *r = &p->v[i].row;
            size_t len = strlen(r->where);
            snprintf(r->where + len, sizeof r->where - len, " (+%d)", p->v[i].wheres - 1);
        }
    return ENCO_OK;
}

static int row_kept(const enco_bench_row *r, const char *filter)
{
    if (!filter || !*filter)
        return 1;
    char both[sizeof r->name + sizeof r->where + 2];
    snprintf(both, sizeof both, "%s %s", r->name, r->where);
    /* A trailing '$' anchors the text at the end ("G model.1$" is not model.12). */
    size_t fl = strlen(filter), bl = strlen(both);
    if (filter[fl - 1] == '$')
        return fl - 1 <= bl && strncmp(both + bl - (fl - 1), filter, fl - 1) == 0;
    return strstr(both, filter) != NULL;
}

enco_status enco_bench_plan(const enco_bench_options *opts, enco_bench_row **rows, size_t *count)
{
    *rows = NULL;
    *count = 0;
    plan p = {0};
    model_plan mp;
    memset(&mp, 0, sizeof mp);
    enco_status st = build_plan(opts, &p, &mp);
    if (st == ENCO_OK && p.n) {
        *rows = calloc(p.n, sizeof **rows);
        if (!*rows)
            st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
        for (size_t i = 0; st == ENCO_OK && i < p.n; i++)
            if (row_kept(&p.v[i].row, opts->filter))
                (*rows)[(*count)++] = p.v[i].row;
    }
    free(p.v);
    model_free(&mp);
    return st;
}

/* ---- running ------------------------------------------------------------ */

/* Device buffers of one row, all released after it. */
#define MAX_BUFS 12
typedef struct bufs {
    enco_ctx *ctx;
    cl_mem m[MAX_BUFS];
    int n;
} bufs;

static float *pattern(size_t *len)
{
    static float *p;
    static const size_t n = 1 << 16;
    if (!p) {
        p = malloc(n * sizeof *p);
        if (!p)
            return NULL;
        uint64_t s = 0x9e3779b97f4a7c15ULL;
        for (size_t i = 0; i < n; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            p[i] = (float)((double)(s >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
        }
    }
    *len = n;
    return p;
}

/* A buffer of `floats` floats filled with a fixed pseudo-random pattern in
 * [-1, 1) (never zero-sized). */
static enco_status buf_rand(bufs *b, size_t floats, cl_mem *out)
{
    if (b->n == MAX_BUFS)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench: too many buffers for one row");
    size_t n = floats ? floats : 1;
    ENCO_TRY(enco_buffer_alloc(b->ctx, n * F4, &b->m[b->n]));
    *out = b->m[b->n++];
    size_t plen;
    const float *pat = pattern(&plen);
    if (!pat)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    for (size_t off = 0; off < n; off += plen) {
        size_t len = n - off < plen ? n - off : plen;
        ENCO_TRY(enco_upload(b->ctx, *out, off * F4, len * F4, pat));
    }
    return ENCO_OK;
}

/* int32 positions in [0, hw): `rows` rows of `per` entries, each row the
 * start of a permutation. */
static enco_status buf_indices(bufs *b, int rows, int per, int hw, cl_mem *out)
{
    if (b->n == MAX_BUFS)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench: too many buffers for one row");
    size_t n = (size_t)rows * per;
    ENCO_TRY(enco_buffer_alloc(b->ctx, (n ? n : 1) * sizeof(int32_t), &b->m[b->n]));
    *out = b->m[b->n++];
    int32_t *perm = malloc((size_t)hw * sizeof *perm);
    int32_t *host = malloc((n ? n : 1) * sizeof *host);
    enco_status st = perm && host ? ENCO_OK
                                  : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    enco_rng rng = enco_rng_make(7, 3);
    for (int r = 0; st == ENCO_OK && r < rows; r++) {
        st = enco_rng_permutation(&rng, perm, (size_t)hw);
        for (int i = 0; st == ENCO_OK && i < per; i++)
            host[(size_t)r * per + i] = perm[i % hw];
    }
    if (st == ENCO_OK)
        st = enco_upload(b->ctx, *out, 0, n * sizeof(int32_t), host);
    free(perm);
    free(host);
    return st;
}

static void bufs_free(bufs *b)
{
    for (int i = 0; i < b->n; i++)
        enco_buffer_free(b->ctx, b->m[i]);
    b->n = 0;
}

/* Everything a row's launch needs, prepared once. */
typedef struct launch {
    const job *j;
    cl_mem a, b, c, d, e, f, g, h2;
    size_t ws_floats;
    enco_rng rng;
    int oversample;
    double cover_ratio;
    int num_patches;
    enco_adam_hparams hp;
    long step;
} launch;

static enco_status prepare(bufs *b, launch *L, const job *j, const enco_config *cfg,
                           size_t ws_g, size_t ws_d, char net)
{
    const enco_layer *l = &j->layer;
    int n = j->n;
    size_t in_e = (size_t)n * l->c * l->h * l->w, out_e = (size_t)n * l->co * l->ho * l->wo;
    L->j = j;
    L->oversample = cfg->train.oversample_ratio;
    L->cover_ratio = cfg->train.random_ratio;
    L->num_patches = cfg->train.num_patches;
    switch (j->kind) {
    case J_CONV_FWD:
    case J_CONV_BWD_DATA:
    case J_CONV_BWD_WEIGHT: {
        const enco_conv2d_shape *s = &l->conv;
        size_t wn = (size_t)s->cout * s->cin * s->kh * s->kw;
        L->ws_floats = net == 'G' ? ws_g : ws_d;
        ENCO_TRY(buf_rand(b, in_e, &L->a));          /* x or dx */
        ENCO_TRY(buf_rand(b, out_e, &L->b));         /* y or dy */
        ENCO_TRY(buf_rand(b, wn, &L->c));            /* w */
        ENCO_TRY(buf_rand(b, (size_t)s->cout, &L->d)); /* b */
        ENCO_TRY(buf_rand(b, L->ws_floats, &L->e));  /* workspace */
        if (j->kind != J_CONV_FWD) {
            ENCO_TRY(buf_rand(b, wn, &L->f));        /* dw */
            ENCO_TRY(buf_rand(b, (size_t)s->cout, &L->g)); /* db */
            ENCO_TRY(buf_rand(b, in_e, &L->h2));     /* dx */
        }
        return ENCO_OK;
    }
    case J_CONVT_FWD:
    case J_CONVT_BWD_DATA:
    case J_CONVT_BWD_WEIGHT: {
        const enco_conv_transpose2d_shape *s = &l->convt;
        size_t wn = (size_t)s->cout * s->cin * s->kh * s->kw;
        L->ws_floats = net == 'G' ? ws_g : ws_d;
        ENCO_TRY(buf_rand(b, in_e, &L->a));
        ENCO_TRY(buf_rand(b, out_e, &L->b));
        ENCO_TRY(buf_rand(b, wn, &L->c));
        ENCO_TRY(buf_rand(b, (size_t)s->cout, &L->d));
        ENCO_TRY(buf_rand(b, L->ws_floats, &L->e));
        if (j->kind != J_CONVT_FWD) {
            ENCO_TRY(buf_rand(b, wn, &L->f));
            ENCO_TRY(buf_rand(b, (size_t)s->cout, &L->g));
            ENCO_TRY(buf_rand(b, in_e, &L->h2));
        }
        return ENCO_OK;
    }
    case J_INORM_FWD:
    case J_INORM_BWD:
        ENCO_TRY(buf_rand(b, in_e, &L->a));                 /* x */
        ENCO_TRY(buf_rand(b, in_e, &L->b));                 /* y / dy */
        ENCO_TRY(buf_rand(b, 2 * (size_t)n * l->c, &L->c)); /* mean, rstd */
        ENCO_TRY(buf_rand(b, in_e, &L->d));                 /* dx */
        /* Consistent statistics for the backward. */
        return enco_instnorm_forward(b->ctx, L->b, 0, L->c, 0, L->c, (size_t)n * l->c, L->a, 0, n,
                                     l->c, l->h, l->w, l->act, l->slope);
    case J_ACT_FWD:
    case J_ACT_BWD:
    case J_TANH_FWD:
    case J_TANH_BWD:
    case J_ADD_FWD: {
        size_t e = j->m ? j->m * j->in : out_e; /* heads' relu rows, else a layer */
        L->ws_floats = e;
        ENCO_TRY(buf_rand(b, e, &L->a));
        ENCO_TRY(buf_rand(b, e, &L->b));
        return buf_rand(b, e, &L->c);
    }
    case J_DOWN_FWD:
    case J_DOWN_BWD:
    case J_UP_FWD:
    case J_UP_BWD: {
        int down = j->kind == J_DOWN_FWD || j->kind == J_DOWN_BWD;
        int k = down ? ENCO_BLUR_DOWN_K : ENCO_BLUR_UP_K;
        ENCO_TRY(buf_rand(b, in_e, &L->a));
        ENCO_TRY(buf_rand(b, out_e, &L->b));
        ENCO_TRY(buf_rand(b, (size_t)l->c * k * k, &L->c));
        float *f = malloc((size_t)l->c * k * k * sizeof *f);
        if (!f)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
        if (down)
            enco_blur_down_filter(f, l->c);
        else
            enco_blur_up_filter(f, l->c);
        enco_status st = enco_upload(b->ctx, L->c, 0, (size_t)l->c * k * k * F4, f);
        free(f);
        return st;
    }
    case J_LINEAR_FWD:
    case J_LINEAR_BWD:
        ENCO_TRY(buf_rand(b, j->m * j->in, &L->a));  /* x */
        ENCO_TRY(buf_rand(b, j->m * j->out, &L->b)); /* y / dy */
        ENCO_TRY(buf_rand(b, j->out * j->in, &L->c)); /* w */
        ENCO_TRY(buf_rand(b, j->out, &L->d));         /* b */
        ENCO_TRY(buf_rand(b, j->m * j->in, &L->e));  /* dx */
        ENCO_TRY(buf_rand(b, j->out * j->in, &L->f)); /* dw */
        return buf_rand(b, j->out, &L->g);            /* db */
    case J_BN_FWD:
    case J_BN_BWD: {
        int m = (int)j->m, c = (int)j->in;
        ENCO_TRY(buf_rand(b, j->m * j->in, &L->a)); /* x */
        ENCO_TRY(buf_rand(b, j->m * j->in, &L->b)); /* y / dy */
        ENCO_TRY(buf_rand(b, 2 * j->in, &L->c));    /* mean, rstd */
        ENCO_TRY(buf_rand(b, 2 * j->in, &L->d));    /* running mean, var */
        ENCO_TRY(buf_rand(b, 2 * j->in, &L->e));    /* weight, bias */
        ENCO_TRY(buf_rand(b, 2 * j->in, &L->f));    /* dweight, dbias */
        ENCO_TRY(buf_rand(b, j->m * j->in, &L->g)); /* dx */
        ENCO_TRY(enco_fill(b->ctx, L->d, j->in, j->in, 1.0f)); /* running_var > 0 */
        cl_mem wt = j->bias ? L->e : NULL;
        return enco_batchnorm_forward(b->ctx, L->b, 0, L->c, 0, L->c, j->in, L->d, 0, L->d, j->in,
                                      L->a, 0, wt, 0, wt, j->in, m, c, 0.1f);
    }
    case J_L2_FWD:
    case J_L2_BWD:
        ENCO_TRY(buf_rand(b, j->m * j->in, &L->a));
        ENCO_TRY(buf_rand(b, j->m * j->in, &L->b));
        return buf_rand(b, j->m * j->in, &L->c);
    case J_GATHER_FWD:
    case J_GATHER_BWD:
        ENCO_TRY(buf_rand(b, (size_t)n * j->c * j->h * j->w, &L->a)); /* feat / dfeat */
        ENCO_TRY(buf_rand(b, (size_t)n * j->k * j->c, &L->b));        /* rows */
        return buf_indices(b, n, j->k, j->h * j->w, &L->c);
    case J_BILINEAR:
        ENCO_TRY(buf_rand(b, (size_t)n * j->c * j->h * j->w, &L->a));
        return buf_rand(b, (size_t)n * j->c * j->oh * j->ow, &L->b);
    case J_DAG:
    case J_DAG_PERMS:
        ENCO_TRY(buf_rand(b, (size_t)n * j->h * j->w, &L->a));    /* score */
        ENCO_TRY(buf_indices(b, n, j->h * j->w, j->h * j->w, &L->b)); /* cand */
        ENCO_TRY(buf_indices(b, n, j->h * j->w, j->h * j->w, &L->c)); /* cover */
        ENCO_TRY(buf_rand(b, (size_t)n * (j->k ? j->k : 1), &L->d)); /* idx */
        L->rng = enco_rng_make(11, 1);
        return ENCO_OK;
    case J_LOSS_LSGAN:
    case J_LOSS_L1:
    case J_LOSS_ENCO: {
        size_t e = j->kind == J_LOSS_ENCO ? j->m * j->in : j->m;
        size_t work = j->kind == J_LOSS_LSGAN ? enco_loss_lsgan_work(j->m)
                      : j->kind == J_LOSS_L1  ? enco_loss_l1_work(j->m)
                                              : enco_loss_enco_work(j->m);
        ENCO_TRY(buf_rand(b, e, &L->a));
        ENCO_TRY(buf_rand(b, e, &L->b));
        ENCO_TRY(buf_rand(b, e, &L->c));
        ENCO_TRY(buf_rand(b, 1, &L->d));
        return buf_rand(b, work, &L->e);
    }
    case J_ADAM:
        ENCO_TRY(buf_rand(b, j->m, &L->a));
        ENCO_TRY(buf_rand(b, j->m, &L->b));
        ENCO_TRY(buf_rand(b, j->m, &L->c));
        ENCO_TRY(buf_rand(b, j->m, &L->d));
        ENCO_TRY(enco_fill_zero(b->ctx, L->b, 0, j->m * F4));
        ENCO_TRY(enco_fill_zero(b->ctx, L->c, 0, j->m * F4));
        L->hp = (enco_adam_hparams){.lr = cfg->train.lr_G, .beta1 = cfg->train.beta1,
                                    .beta2 = cfg->train.beta2, .eps = cfg->train.eps};
        return ENCO_OK;
    }
    return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench: unknown row kind");
}

static enco_status run_once(enco_ctx *ctx, launch *L)
{
    const job *j = L->j;
    const enco_layer *l = &j->layer;
    int n = j->n;
    switch (j->kind) {
    case J_CONV_FWD:
        return enco_conv2d_forward(ctx, L->b, 0, L->a, 0, L->c, 0, L->d, 0, L->e, 0, L->ws_floats,
                                   &l->conv);
    case J_CONV_BWD_DATA:
        return enco_conv2d_backward(ctx, L->h2, 0, NULL, 0, NULL, 0, L->b, 0, L->a, 0, L->c, 0,
                                    L->e, 0, L->ws_floats, &l->conv);
    case J_CONV_BWD_WEIGHT:
        return enco_conv2d_backward(ctx, NULL, 0, L->f, 0, L->g, 0, L->b, 0, L->a, 0, L->c, 0,
                                    L->e, 0, L->ws_floats, &l->conv);
    case J_CONVT_FWD:
        return enco_conv_transpose2d_forward(ctx, L->b, 0, L->a, 0, L->c, 0, L->d, 0, L->e, 0,
                                             L->ws_floats, &l->convt);
    case J_CONVT_BWD_DATA:
        return enco_conv_transpose2d_backward(ctx, L->h2, 0, NULL, 0, NULL, 0, L->b, 0, L->a, 0,
                                              L->c, 0, L->e, 0, L->ws_floats, &l->convt);
    case J_CONVT_BWD_WEIGHT:
        return enco_conv_transpose2d_backward(ctx, NULL, 0, L->f, 0, L->g, 0, L->b, 0, L->a, 0,
                                              L->c, 0, L->e, 0, L->ws_floats, &l->convt);
    case J_INORM_FWD:
        return enco_instnorm_forward(ctx, L->b, 0, L->c, 0, L->c, (size_t)n * l->c, L->a, 0, n,
                                     l->c, l->h, l->w, l->act, l->slope);
    case J_INORM_BWD:
        return enco_instnorm_backward(ctx, L->d, 0, L->b, 0, L->a, 0, L->c, 0, L->c,
                                      (size_t)n * l->c, n, l->c, l->h, l->w, l->act, l->slope);
    case J_ACT_FWD:
        if (!j->m && l->act == ENCO_NORM_ACT_LEAKY)
            return enco_leaky_relu_forward(ctx, L->b, 0, L->a, 0, L->ws_floats, l->slope);
        return enco_relu_forward(ctx, L->b, 0, L->a, 0, L->ws_floats);
    case J_ACT_BWD:
        if (!j->m && l->act == ENCO_NORM_ACT_LEAKY)
            return enco_leaky_relu_backward(ctx, L->c, 0, L->b, 0, L->a, 0, L->ws_floats,
                                            l->slope);
        return enco_relu_backward(ctx, L->c, 0, L->b, 0, L->a, 0, L->ws_floats);
    case J_TANH_FWD:
        return enco_tanh_forward(ctx, L->b, 0, L->a, 0, L->ws_floats);
    case J_TANH_BWD:
        return enco_tanh_backward(ctx, L->c, 0, L->b, 0, L->a, 0, L->ws_floats);
    case J_ADD_FWD:
        return enco_add_forward(ctx, L->c, 0, L->a, 0, L->b, 0, L->ws_floats);
    case J_DOWN_FWD:
        return enco_blur_down_forward(ctx, L->b, 0, L->a, 0, L->c, 0, n, l->c, l->h, l->w);
    case J_DOWN_BWD:
        return enco_blur_down_backward(ctx, L->a, 0, L->b, 0, L->c, 0, n, l->c, l->h, l->w);
    case J_UP_FWD:
        return enco_blur_up_forward(ctx, L->b, 0, L->a, 0, L->c, 0, n, l->c, l->h, l->w);
    case J_UP_BWD:
        return enco_blur_up_backward(ctx, L->a, 0, L->b, 0, L->c, 0, n, l->c, l->h, l->w);
    case J_LINEAR_FWD:
        return enco_linear_forward(ctx, L->b, 0, L->a, 0, L->c, 0, j->bias ? L->d : NULL, 0, j->m,
                                   j->in, j->out);
    case J_LINEAR_BWD:
        return enco_linear_backward(ctx, L->e, 0, L->f, 0, j->bias ? L->g : NULL, 0, L->b, 0,
                                    L->a, 0, L->c, 0, j->m, j->in, j->out);
    case J_BN_FWD: {
        cl_mem wt = j->bias ? L->e : NULL;
        return enco_batchnorm_forward(ctx, L->b, 0, L->c, 0, L->c, j->in, L->d, 0, L->d, j->in,
                                      L->a, 0, wt, 0, wt, j->in, (int)j->m, (int)j->in, 0.1f);
    }
    case J_BN_BWD: {
        cl_mem wt = j->bias ? L->e : NULL, dw = j->bias ? L->f : NULL;
        return enco_batchnorm_backward(ctx, L->g, 0, dw, 0, dw, j->in, L->b, 0, L->a, 0, L->c, 0,
                                       L->c, j->in, wt, 0, (int)j->m, (int)j->in);
    }
    case J_L2_FWD:
        return enco_l2norm_forward(ctx, L->b, 0, L->a, 0, j->m, j->in);
    case J_L2_BWD:
        return enco_l2norm_backward(ctx, L->c, 0, L->b, 0, L->a, 0, j->m, j->in);
    case J_GATHER_FWD:
        return enco_patch_gather_forward(ctx, L->b, 0, L->a, 0, L->c, 0, NULL, 0, (size_t)n,
                                         (size_t)j->c, (size_t)j->h, (size_t)j->w, (size_t)j->k);
    case J_GATHER_BWD:
        return enco_patch_gather_backward(ctx, L->a, 0, L->b, 0, L->c, 0, NULL, 0, (size_t)n,
                                          (size_t)j->c, (size_t)j->h, (size_t)j->w,
                                          (size_t)j->k);
    case J_BILINEAR:
        return enco_bilinear_forward(ctx, L->b, 0, L->a, 0, (size_t)n, (size_t)j->c, (size_t)j->h,
                                     (size_t)j->w, (size_t)j->oh, (size_t)j->ow);
    case J_DAG:
        return enco_dag_forward(ctx, L->d, 0, L->a, 0, L->b, 0, L->c, 0, n, j->h, j->w,
                                L->num_patches, L->oversample, L->cover_ratio, 0);
    case J_DAG_PERMS:
        return enco_dag_perms_upload(ctx, L->b, 0, L->c, 0, &L->rng, n, j->h * j->w);
    case J_LOSS_LSGAN:
        return enco_loss_lsgan(ctx, L->d, 0, L->c, 0, L->a, 0, j->m, 1.0f, 0.5f, L->e, 0);
    case J_LOSS_L1:
        return enco_loss_l1(ctx, L->d, 0, L->c, 0, L->a, 0, L->b, 0, j->m, 5.0f, L->e, 0);
    case J_LOSS_ENCO:
        return enco_loss_enco(ctx, L->d, 0, L->c, 0, L->a, 0, L->b, 0, j->m, j->in, 1.0f, L->e, 0);
    case J_ADAM:
        return enco_adam_step(ctx, L->a, 0, L->b, 0, L->c, 0, L->d, 0, j->m, &L->hp, ++L->step);
    }
    return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench: unknown row kind");
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static enco_status time_row(enco_ctx *ctx, planned *pl, const enco_config *cfg, size_t ws_g,
                            size_t ws_d, int warmup, int repeat)
{
    bufs b = {.ctx = ctx};
    launch L;
    memset(&L, 0, sizeof L);
    char net = pl->row.where[0];
    double *t = calloc((size_t)repeat, sizeof *t);
    if (!t)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    enco_status st = prepare(&b, &L, &pl->j, cfg, ws_g, ws_d, net);
    if (st == ENCO_OK)
        st = enco_finish(ctx);
    for (int i = 0; st == ENCO_OK && i < warmup; i++)
        st = run_once(ctx, &L);
    if (st == ENCO_OK)
        st = enco_finish(ctx);
    for (int i = 0; st == ENCO_OK && i < repeat; i++) {
        double t0 = now_seconds();
        st = run_once(ctx, &L);
        if (st == ENCO_OK)
            st = enco_finish(ctx);
        t[i] = now_seconds() - t0;
    }
    if (st == ENCO_OK) {
        double mn = t[0];
        for (int i = 1; i < repeat; i++)
            mn = t[i] < mn ? t[i] : mn;
        pl->row.min_seconds = mn;
        pl->row.seconds = enco_bench_median(t, (size_t)repeat);
        pl->row.runs = repeat;
    }
    free(t);
    enco_status fst = enco_finish(ctx);
    bufs_free(&b);
    if (st != ENCO_OK) {
        enco_error_append(" (bench row %s %s %s)", pl->row.name, pl->row.where, pl->row.shape);
        return st;
    }
    return fst;
}

enco_status enco_bench_kernels(enco_ctx *ctx, const enco_bench_options *opts,
                               enco_bench_row **rows, size_t *count)
{
    *rows = NULL;
    *count = 0;
    if (opts->repeat < 1 || opts->warmup < 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench: repeat must be >= 1 and warmup >= 0");
    plan p = {0};
    model_plan mp;
    memset(&mp, 0, sizeof mp);
    enco_status st = build_plan(opts, &p, &mp);
    size_t kept = 0;
    for (size_t i = 0; st == ENCO_OK && i < p.n; i++)
        if (row_kept(&p.v[i].row, opts->filter))
            p.v[kept++] = p.v[i];
    if (st == ENCO_OK && kept) {
        *rows = calloc(kept, sizeof **rows);
        if (!*rows)
            st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    }
    enco_bench_probe probe = {0};
    if (st == ENCO_OK && kept && opts->probe_n > 0)
        st = enco_bench_probe_init(ctx, opts->probe_n, &probe);
    for (size_t i = 0; st == ENCO_OK && i < kept; i++) {
        if (opts->progress) {
            char what[200];
            snprintf(what, sizeof what, "%s %s %s", p.v[i].row.name, p.v[i].row.where,
                     p.v[i].row.shape);
            opts->progress(opts->progress_user, what, i, kept);
        }
        /* The ceiling of the moment: probed before and after, the higher counts. */
        double before = 0, after = 0;
        if (probe.a)
            st = enco_bench_probe_rate(&probe, 3, &before);
        if (st == ENCO_OK)
            st = time_row(ctx, &p.v[i], &mp.cfg, enco_seqnet_workspace_floats(ctx, &mp.gnet),
                          enco_seqnet_workspace_floats(ctx, &mp.dnet), opts->warmup,
                          opts->repeat);
        if (st == ENCO_OK && probe.a)
            st = enco_bench_probe_rate(&probe, 3, &after);
        p.v[i].row.local_gflops = before > after ? before : after;
        if (st == ENCO_OK)
            (*rows)[(*count)++] = p.v[i].row;
    }
    enco_bench_probe_free(&probe);
    if (st != ENCO_OK) {
        free(*rows);
        *rows = NULL;
        *count = 0;
    }
    free(p.v);
    model_free(&mp);
    return st;
}
