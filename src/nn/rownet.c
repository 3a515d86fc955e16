/* Row networks: declaration of the layers and their parameters, passes
 * (activation plans), forward and backward. */
#include "nn/rownet.h"

#include "ops/act.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/patch.h"

#include <stdio.h>
#include <string.h>

#define F4 sizeof(float)

static const enco_row_params no_params = {ENCO_ROW_NONE, ENCO_ROW_NONE, ENCO_ROW_NONE,
                                          ENCO_ROW_NONE, ENCO_ROW_NONE};

enco_status enco_rownet_init(enco_rownet *net, enco_param_set *ps, int channels)
{
    memset(net, 0, sizeof *net);
    if (!ps || channels < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "rownet: %d input channels (need >= 1)%s",
                         channels, ps ? "" : " and no parameter set");
    net->ps = ps;
    net->layers[0] = (enco_row_layer){ENCO_ROW_GATHER, channels, channels, no_params};
    net->nlayers = 1;
    return ENCO_OK;
}

int enco_rownet_out_features(const enco_rownet *net)
{
    return net->nlayers > 0 ? net->layers[net->nlayers - 1].out : 0;
}

/* The next layer slot, taking `in` features from the current output. */
static enco_status next_layer(enco_rownet *net, enco_row_op op, int out, enco_row_layer **l)
{
    if (net->nlayers < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "rownet: layer appended before enco_rownet_init");
    if (net->nlayers >= ENCO_ROWNET_MAX_LAYERS)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "rownet: more than %d layers",
                         ENCO_ROWNET_MAX_LAYERS);
    if (out < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "rownet: a layer of %d output features", out);
    *l = &net->layers[net->nlayers];
    **l = (enco_row_layer){op, enco_rownet_out_features(net), out, no_params};
    return ENCO_OK;
}

static enco_status param_name(char *nm, const char *base, const char *suffix)
{
    int len = snprintf(nm, ENCO_PARAM_NAME_MAX, "%s.%s", base, suffix);
    if (len < 0 || len >= ENCO_PARAM_NAME_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "rownet: parameter name %s.%s too long", base,
                         suffix);
    return ENCO_OK;
}

/* Declares "<base>.<suffix>" (dim) with init; trainable or a fixed buffer. */
static enco_status declare_vector(enco_param_set *ps, const char *base, const char *suffix, int dim,
                                  int trainable, enco_param_init init, long *index)
{
    char nm[ENCO_PARAM_NAME_MAX];
    size_t idx = 0;
    ENCO_TRY(param_name(nm, base, suffix));
    ENCO_TRY(enco_params_declare(ps, nm, 1, (int64_t[]){dim}, trainable, init, &idx));
    *index = (long)idx;
    return ENCO_OK;
}

enco_status enco_rownet_linear(enco_rownet *net, const char *name, int out, int bias)
{
    enco_row_layer *l;
    ENCO_TRY(next_layer(net, ENCO_ROW_LINEAR, out, &l));
    char nm[ENCO_PARAM_NAME_MAX];
    size_t idx = 0;
    ENCO_TRY(param_name(nm, name, "weight"));
    ENCO_TRY(enco_params_weight(net->ps, nm, 2, (int64_t[]){out, l->in}, &idx));
    l->p.weight = (long)idx;
    if (bias)
        ENCO_TRY(declare_vector(net->ps, name, "bias", out, 1, ENCO_INIT_ZERO, &l->p.bias));
    net->nlayers++;
    return ENCO_OK;
}

enco_status enco_rownet_batchnorm(enco_rownet *net, const char *name, int affine)
{
    enco_row_layer *l;
    ENCO_TRY(next_layer(net, ENCO_ROW_BATCHNORM, enco_rownet_out_features(net), &l));
    enco_param_set *ps = net->ps;
    int dim = l->in;
    if (affine) {
        ENCO_TRY(declare_vector(ps, name, "weight", dim, 1, ENCO_INIT_ONE, &l->p.weight));
        ENCO_TRY(declare_vector(ps, name, "bias", dim, 1, ENCO_INIT_ZERO, &l->p.bias));
    }
    ENCO_TRY(declare_vector(ps, name, "running_mean", dim, 0, ENCO_INIT_ZERO, &l->p.running_mean));
    ENCO_TRY(declare_vector(ps, name, "running_var", dim, 0, ENCO_INIT_ONE, &l->p.running_var));
    char nm[ENCO_PARAM_NAME_MAX];
    ENCO_TRY(param_name(nm, name, "num_batches_tracked"));
    l->p.counter = (long)ps->ncounters;
    ENCO_TRY(enco_params_counter(ps, nm));
    net->nlayers++;
    return ENCO_OK;
}

enco_status enco_rownet_layernorm(enco_rownet *net, const char *name)
{
    enco_row_layer *l;
    ENCO_TRY(next_layer(net, ENCO_ROW_LAYERNORM, enco_rownet_out_features(net), &l));
    ENCO_TRY(declare_vector(net->ps, name, "weight", l->in, 1, ENCO_INIT_ONE, &l->p.weight));
    ENCO_TRY(declare_vector(net->ps, name, "bias", l->in, 1, ENCO_INIT_ZERO, &l->p.bias));
    net->nlayers++;
    return ENCO_OK;
}

static enco_status append_plain(enco_rownet *net, enco_row_op op)
{
    enco_row_layer *l;
    ENCO_TRY(next_layer(net, op, enco_rownet_out_features(net), &l));
    net->nlayers++;
    return ENCO_OK;
}

enco_status enco_rownet_relu(enco_rownet *net) { return append_plain(net, ENCO_ROW_RELU); }
enco_status enco_rownet_l2norm(enco_rownet *net) { return append_plain(net, ENCO_ROW_L2NORM); }

enco_status enco_rownet_share(enco_rownet *net, const enco_rownet *src, int layer)
{
    if (!src || src->ps != net->ps || layer < 1 || layer >= src->nlayers)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "rownet: can share only a layer 1..%d of a network on the same "
                         "parameter set (asked for %d)",
                         src ? src->nlayers - 1 : 0, layer);
    const enco_row_layer *s = &src->layers[layer];
    if (s->in != enco_rownet_out_features(net))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "rownet: shared layer %d takes %d features, the network gives %d", layer,
                         s->in, enco_rownet_out_features(net));
    enco_row_layer *l;
    ENCO_TRY(next_layer(net, s->op, s->out, &l));
    *l = *s;
    net->nlayers++;
    return ENCO_OK;
}

/* ---- passes -------------------------------------------------------------- */

static int is_norm(enco_row_op op) { return op == ENCO_ROW_BATCHNORM || op == ENCO_ROW_LAYERNORM; }

/* Floats per statistic (mean or rstd) of a norm layer: one per feature for
 * BatchNorm, one per row for LayerNorm. */
static size_t stat_len(const enco_row_layer *l, int max_rows)
{
    return l->op == ENCO_ROW_BATCHNORM ? (size_t)l->in : (size_t)max_rows;
}

enco_status enco_rownet_pass_alloc(enco_ctx *ctx, enco_rownet_pass *pass, const enco_rownet *net,
                                   int max_rows, int backward)
{
    memset(pass, 0, sizeof *pass);
    if (!net || net->nlayers < 1 || max_rows < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "rownet pass: %d rows of a %d-layer network",
                         max_rows, net ? net->nlayers : 0);
    pass->net = net;
    pass->max_rows = max_rows;
    pass->backward = backward != 0;
    size_t widest = 1, stats = 0, stats_max = 0;
    for (int i = 0; i < net->nlayers; i++) {
        const enco_row_layer *l = &net->layers[i];
        if ((size_t)l->out > widest)
            widest = (size_t)l->out;
        if (!is_norm(l->op))
            continue;
        size_t two = 2 * stat_len(l, max_rows);
        /* Without backward nothing reads the statistics back: one slot. */
        pass->stat_off[i] = backward ? stats : 0;
        stats += two;
        if (two > stats_max)
            stats_max = two;
    }
    size_t rows = (size_t)max_rows;
    if (backward) {
        for (int i = 0; i < net->nlayers; i++)
            ENCO_TRY(enco_buffer_alloc(ctx, rows * (size_t)net->layers[i].out * F4,
                                       &pass->act[i]));
        ENCO_TRY(enco_buffer_alloc(ctx, rows * widest * F4, &pass->grad[0]));
        ENCO_TRY(enco_buffer_alloc(ctx, rows * widest * F4, &pass->grad[1]));
    } else {
        for (int i = 0; i < net->nlayers && i < 2; i++)
            ENCO_TRY(enco_buffer_alloc(ctx, rows * widest * F4, &pass->act[i]));
        for (int i = 2; i < net->nlayers; i++)
            pass->act[i] = pass->act[i % 2];
    }
    size_t sbytes = (backward ? stats : stats_max) * F4;
    if (sbytes)
        ENCO_TRY(enco_buffer_alloc(ctx, sbytes, &pass->stats));
    pass->out = pass->act[net->nlayers - 1];
    return ENCO_OK;
}

void enco_rownet_pass_free(enco_ctx *ctx, enco_rownet_pass *pass)
{
    int owned = pass->net ? (pass->backward ? pass->net->nlayers : 2) : 0;
    for (int i = 0; i < owned && i < ENCO_ROWNET_MAX_LAYERS; i++)
        enco_buffer_free(ctx, pass->act[i]);
    enco_buffer_free(ctx, pass->grad[0]);
    enco_buffer_free(ctx, pass->grad[1]);
    enco_buffer_free(ctx, pass->stats);
    enco_buffer_free(ctx, pass->sync_scratch);
    memset(pass, 0, sizeof *pass);
}

enco_status enco_rownet_pass_set_sync(enco_ctx *ctx, enco_rownet_pass *pass,
                                      const enco_stat_sync *sync)
{
    if (!pass->net)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "rownet: pass not allocated");
    if (!sync || !sync->sum) {
        enco_buffer_free(ctx, pass->sync_scratch);
        pass->sync_scratch = NULL;
        pass->sync = (enco_stat_sync){0};
        return ENCO_OK;
    }
    size_t widest = 0;
    for (int i = 0; i < pass->net->nlayers; i++) {
        const enco_row_layer *l = &pass->net->layers[i];
        if (l->op == ENCO_ROW_BATCHNORM && (size_t)l->in > widest)
            widest = (size_t)l->in;
    }
    if (widest && !pass->sync_scratch)
        ENCO_TRY(enco_buffer_alloc(ctx, 3 * widest * F4, &pass->sync_scratch));
    pass->sync = *sync;
    return ENCO_OK;
}

/* ---- forward and backward ------------------------------------------------ */

static size_t off_of(const enco_param_set *ps, long idx)
{
    return idx < 0 ? 0 : ps->list[idx].offset;
}

/* ---- the bench's step recording (internal.h enco_ctx_trace_op) ---------- */

/* "F mlp_0.0" for a layer with parameters (its name without the leaf),
 * "F mlp_0" (the module of the nearest layer with parameters) for the
 * others. */
static void layer_where(char *buf, size_t size, const enco_rownet *net, int i)
{
    const enco_param_set *ps = net->ps;
    const char *p = ps->prefix;
    if (strncmp(p, "net", 3) == 0)
        p += 3;
    const int nlen = (int)strcspn(p, ".");
    const enco_row_layer *l = &net->layers[i];
    long pi = l->p.weight >= 0 ? l->p.weight : l->p.running_mean;
    if (pi >= 0) {
        const char *nm = ps->list[pi].name, *dot = strrchr(nm, '.');
        snprintf(buf, size, "%.*s %.*s", nlen, p, dot ? (int)(dot - nm) : (int)strlen(nm), nm);
        return;
    }
    for (int d = 1; d < net->nlayers; d++)
        for (int j = i - d; j <= i + d; j += 2 * d) {
            if (j < 0 || j >= net->nlayers)
                continue;
            const enco_row_params *q = &net->layers[j].p;
            long qi = q->weight >= 0 ? q->weight : q->running_mean;
            if (qi >= 0) {
                const char *nm = ps->list[qi].name;
                snprintf(buf, size, "%.*s %.*s", nlen, p, (int)strcspn(nm, "."), nm);
                return;
            }
        }
    snprintf(buf, size, "%.*s layer %d", nlen, p, i);
}

/* Tags layer i's forward (backward = 0) or backward over `rows` rows. */
static void trace_layer(enco_ctx *ctx, const enco_rownet_pass *pass, int i, int backward,
                        size_t rows)
{
    if (!enco_ctx_tracing(ctx))
        return;
    const enco_rownet *net = pass->net;
    const enco_row_layer *l = &net->layers[i];
    char where[64];
    layer_where(where, sizeof where, net, i);
    const int b = backward, affine = l->p.weight >= 0;
    const size_t in = (size_t)l->in, out = (size_t)l->out;
    switch (l->op) {
    case ENCO_ROW_GATHER:
        enco_ctx_trace_op(ctx, b ? "gather.bwd" : "gather.fwd", where,
                          enco_patch_gather_cost((size_t)pass->n, in, (size_t)pass->k, b),
                          "n%d %zux%dx%d k%d", pass->n, in, pass->h, pass->w, pass->k);
        return;
    case ENCO_ROW_LINEAR:
        enco_ctx_trace_op(ctx, b ? "linear.bwd" : "linear.fwd", where,
                          enco_linear_cost(rows, in, out, l->p.bias >= 0, b), "%zux%zu>%zu%s",
                          rows, in, out, l->p.bias >= 0 ? " +bias" : "");
        return;
    case ENCO_ROW_BATCHNORM:
        enco_ctx_trace_op(ctx, b ? "batchnorm.bwd" : "batchnorm.fwd", where,
                          b ? enco_batchnorm_backward_cost((int)rows, (int)in)
                            : enco_batchnorm_forward_cost((int)rows, (int)in),
                          "%zux%zu%s", rows, in, affine ? " affine" : "");
        return;
    case ENCO_ROW_LAYERNORM:
        enco_ctx_trace_op(ctx, b ? "layernorm.bwd" : "layernorm.fwd", where,
                          b ? enco_layernorm_backward_cost((int)rows, (int)in)
                            : enco_layernorm_forward_cost((int)rows, (int)in),
                          "%zux%zu affine", rows, in);
        return;
    case ENCO_ROW_RELU:
        enco_ctx_trace_op(ctx, b ? "relu.bwd" : "relu.fwd", where, enco_relu_cost(rows * in, b),
                          "%zux%zu", rows, in);
        return;
    case ENCO_ROW_L2NORM:
        enco_ctx_trace_op(ctx, b ? "l2norm.bwd" : "l2norm.fwd", where,
                          enco_l2norm_cost(rows, in, b), "%zux%zu", rows, in);
        return;
    }
}

static enco_status layer_forward(enco_ctx *ctx, enco_rownet_pass *pass, int i, cl_mem x,
                                 size_t x_off, int rows)
{
    const enco_row_layer *l = &pass->net->layers[i];
    enco_param_set *ps = pass->net->ps;
    cl_mem y = pass->act[i], W = ps->params, st = pass->stats;
    size_t m = (size_t)rows, so = pass->stat_off[i], sl = stat_len(l, pass->max_rows);
    int has_w = l->p.weight >= 0, has_b = l->p.bias >= 0;
    trace_layer(ctx, pass, i, 0, m);
    switch (l->op) {
    case ENCO_ROW_LINEAR:
        return enco_linear_forward(ctx, y, 0, x, x_off, W, off_of(ps, l->p.weight),
                                   has_b ? W : NULL, off_of(ps, l->p.bias), m, (size_t)l->in,
                                   (size_t)l->out);
    case ENCO_ROW_BATCHNORM:
        if (pass->sync.sum)
            ENCO_TRY(enco_batchnorm_forward_sync(
                ctx, &pass->sync, pass->sync_scratch, 0, y, 0, st, so, st, so + sl, ps->buffers,
                off_of(ps, l->p.running_mean), ps->buffers, off_of(ps, l->p.running_var), x,
                x_off, has_w ? W : NULL, off_of(ps, l->p.weight), has_b ? W : NULL,
                off_of(ps, l->p.bias), rows, l->in, ENCO_ROWNET_BN_MOMENTUM));
        else
            ENCO_TRY(enco_batchnorm_forward(
                ctx, y, 0, st, so, st, so + sl, ps->buffers, off_of(ps, l->p.running_mean),
                ps->buffers, off_of(ps, l->p.running_var), x, x_off, has_w ? W : NULL,
                off_of(ps, l->p.weight), has_b ? W : NULL, off_of(ps, l->p.bias), rows, l->in,
                ENCO_ROWNET_BN_MOMENTUM));
        ps->counters[l->p.counter].value++;
        return ENCO_OK;
    case ENCO_ROW_LAYERNORM:
        return enco_layernorm_forward(ctx, y, 0, st, so, st, so + sl, x, x_off, W,
                                      off_of(ps, l->p.weight), W, off_of(ps, l->p.bias), rows,
                                      l->in);
    case ENCO_ROW_RELU:
        return enco_relu_forward(ctx, y, 0, x, x_off, m * (size_t)l->in);
    case ENCO_ROW_L2NORM:
        return enco_l2norm_forward(ctx, y, 0, x, x_off, m, (size_t)l->in);
    case ENCO_ROW_GATHER:
        break;
    }
    return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "rownet: layer %d (op %d) cannot follow layer 0", i,
                     (int)l->op);
}

static enco_status check_geometry(const enco_rownet_pass *pass, int n, int h, int w, int k)
{
    if (!pass->net)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "rownet: pass not allocated");
    if (n < 1 || h < 1 || w < 1 || k < 1 || (long)n * k > pass->max_rows)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "rownet: %d images x %d patches of %dx%d maps; the pass holds at most "
                         "%d rows",
                         n, k, h, w, pass->max_rows);
    return ENCO_OK;
}

enco_status enco_rownet_forward(enco_ctx *ctx, enco_rownet_pass *pass, cl_mem feat,
                                size_t feat_off, cl_mem idx, size_t idx_off, int n, int h, int w,
                                int k)
{
    ENCO_TRY(check_geometry(pass, n, h, w, k));
    const enco_rownet *net = pass->net;
    pass->rows = 0; /* invalid until the whole forward ran */
    int rows = n * k;
    pass->n = n;
    pass->h = h;
    pass->w = w;
    pass->k = k;
    trace_layer(ctx, pass, 0, 0, (size_t)rows);
    ENCO_TRY(enco_patch_gather_forward(ctx, pass->act[0], 0, feat, feat_off, idx, idx_off, NULL,
                                       0, (size_t)n, (size_t)net->layers[0].in, (size_t)h,
                                       (size_t)w, (size_t)k));
    for (int i = 1; i < net->nlayers; i++)
        ENCO_TRY(layer_forward(ctx, pass, i, pass->act[i - 1], 0, rows));
    enco_ctx_trace_close(ctx);
    pass->rows = rows;
    pass->n = n;
    pass->h = h;
    pass->w = w;
    pass->k = k;
    return ENCO_OK;
}

/* dx = gradient of layer i's input from dy; parameter gradients accumulate. */
static enco_status layer_backward(enco_ctx *ctx, enco_rownet_pass *pass, int i, cl_mem dx,
                                  cl_mem dy, size_t dy_off)
{
    const enco_row_layer *l = &pass->net->layers[i];
    enco_param_set *ps = pass->net->ps;
    cl_mem x = pass->act[i - 1], W = ps->params, G = ps->grads, st = pass->stats;
    size_t m = (size_t)pass->rows, so = pass->stat_off[i], sl = stat_len(l, pass->max_rows);
    int rows = pass->rows, has_w = l->p.weight >= 0, has_b = l->p.bias >= 0;
    size_t w_off = off_of(ps, l->p.weight), b_off = off_of(ps, l->p.bias);
    trace_layer(ctx, pass, i, 1, m);
    switch (l->op) {
    case ENCO_ROW_LINEAR:
        return enco_linear_backward(ctx, dx, 0, G, w_off, has_b ? G : NULL, b_off, dy, dy_off, x,
                                    0, W, w_off, m, (size_t)l->in, (size_t)l->out);
    case ENCO_ROW_BATCHNORM:
        if (pass->sync.sum)
            return enco_batchnorm_backward_sync(ctx, &pass->sync, pass->sync_scratch, 0, dx, 0,
                                                has_w ? G : NULL, w_off, has_b ? G : NULL, b_off,
                                                dy, dy_off, x, 0, st, so, st, so + sl,
                                                has_w ? W : NULL, w_off, rows, l->in);
        return enco_batchnorm_backward(ctx, dx, 0, has_w ? G : NULL, w_off, has_b ? G : NULL,
                                       b_off, dy, dy_off, x, 0, st, so, st, so + sl,
                                       has_w ? W : NULL, w_off, rows, l->in);
    case ENCO_ROW_LAYERNORM:
        return enco_layernorm_backward(ctx, dx, 0, G, w_off, G, b_off, dy, dy_off, x, 0, st, so,
                                       st, so + sl, W, w_off, rows, l->in);
    case ENCO_ROW_RELU:
        return enco_relu_backward(ctx, dx, 0, dy, dy_off, x, 0, m * (size_t)l->in);
    case ENCO_ROW_L2NORM:
        return enco_l2norm_backward(ctx, dx, 0, dy, dy_off, x, 0, m, (size_t)l->in);
    case ENCO_ROW_GATHER:
        break;
    }
    return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "rownet: layer %d (op %d) cannot follow layer 0", i,
                     (int)l->op);
}

enco_status enco_rownet_backward(enco_ctx *ctx, enco_rownet_pass *pass, cl_mem dy, size_t dy_off,
                                 cl_mem dfeat, size_t dfeat_off, cl_mem idx, size_t idx_off, int n,
                                 int h, int w, int k)
{
    ENCO_TRY(check_geometry(pass, n, h, w, k));
    if (!pass->backward)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "rownet: backward on a pass planned without it");
    if (pass->rows == 0 || n != pass->n || h != pass->h || w != pass->w || k != pass->k)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "rownet: backward of %d images x %d patches of %dx%d without a matching "
                         "forward (last: %d x %d of %dx%d)",
                         n, k, h, w, pass->n, pass->k, pass->h, pass->w);
    const enco_rownet *net = pass->net;
    cl_mem g = dy;
    size_t g_off = dy_off;
    for (int i = net->nlayers - 1, s = 0; i >= 1; i--, s ^= 1) {
        ENCO_TRY(layer_backward(ctx, pass, i, pass->grad[s], g, g_off));
        g = pass->grad[s];
        g_off = 0;
    }
    trace_layer(ctx, pass, 0, 1, (size_t)pass->rows);
    enco_status st = enco_patch_gather_backward(ctx, dfeat, dfeat_off, g, g_off, idx, idx_off, NULL, 0,
                                      (size_t)n, (size_t)net->layers[0].in, (size_t)h, (size_t)w,
                                      (size_t)k);
    enco_ctx_trace_close(ctx);
    return st;
}
