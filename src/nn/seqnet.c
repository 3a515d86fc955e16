/* Sequential network executor over one planned activation arena. */
#include "nn/seqnet.h"

#include "ops/act.h"
#include "ops/blur.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F4 sizeof(float)

static size_t slot_floats(const enco_slot *s) { return (size_t)s->c * s->h * s->w; }

/* Convolution workspace cap: the context policy's conv_ws_mib
 * (ENCO_CONV_WS_MIB), default 256 MiB on CPUs (it keeps model.26's
 * flipped-weight input gradient at 256x256, worth 3 s/iter there) and 128 MiB
 * on GPUs (where the flip gains nothing). Layers whose column matrix is
 * larger run in bands of output rows (src/ops/conv.h). At 256x256 the output
 * convolution's matrix alone would be 822 MB. */
static size_t ws_cap_floats(enco_ctx *ctx)
{
    return (size_t)enco_ctx_kernel_policy(ctx)->conv_ws_mib * 1024 * 1024 / F4;
}

static enco_status new_slot(enco_seqnet *net, int c, int h, int w, int *id)
{
    if (c <= 0 || h <= 0 || w <= 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "layer %zu would produce an empty %dx%dx%d output (input too small)",
                         net->nlayers, c, h, w);
    if (net->nslots == net->cap_slots) {
        size_t cap = net->cap_slots ? 2 * net->cap_slots : 64;
        enco_slot *s = realloc(net->slots, cap * sizeof *s);
        if (!s)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        net->slots = s;
        net->cap_slots = cap;
    }
    net->slots[net->nslots] = (enco_slot){c, h, w, 0};
    *id = (int)net->nslots++;
    return ENCO_OK;
}

static enco_status push_layer(enco_seqnet *net, enco_layer *l, int co, int ho, int wo)
{
    const enco_slot *in = &net->slots[net->cur];
    l->in = net->cur;
    l->c = in->c, l->h = in->h, l->w = in->w;
    l->co = co, l->ho = ho, l->wo = wo;
    ENCO_TRY(new_slot(net, co, ho, wo, &l->out));
    if (net->nlayers == net->cap_layers) {
        size_t cap = net->cap_layers ? 2 * net->cap_layers : 64;
        enco_layer *p = realloc(net->layers, cap * sizeof *p);
        if (!p)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        net->layers = p;
        net->cap_layers = cap;
    }
    net->layers[net->nlayers++] = *l;
    net->cur = l->out;
    return ENCO_OK;
}

static enco_layer blank(enco_layer_kind kind, int module)
{
    enco_layer l;
    memset(&l, 0, sizeof l);
    l.kind = kind;
    l.module = module;
    l.skip = -1;
    l.weight = l.bias = l.filt = -1;
    return l;
}

enco_status enco_seqnet_begin(enco_seqnet *net, enco_param_set *ps, int max_n, int c, int h,
                              int w)
{
    memset(net, 0, sizeof *net);
    if (max_n < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "batch size must be at least 1");
    net->ps = ps;
    net->max_n = max_n;
    int id = 0;
    ENCO_TRY(new_slot(net, c, h, w, &id));
    net->cur = id;
    return ENCO_OK;
}

/* What a layer's parameter is, which decides how it is declared. */
typedef enum param_role {
    ROLE_WEIGHT,    /* trainable, xavier_normal */
    ROLE_BIAS,      /* trainable, zero */
    ROLE_BLUR_DOWN, /* fixed Downsample filter */
    ROLE_BLUR_UP,   /* fixed Upsample filter */
} param_role;

static enco_status param(enco_seqnet *net, const char *name, const char *leaf, int ndim,
                         const int64_t *shape, param_role role, long *index)
{
    char full[ENCO_PARAM_NAME_MAX];
    snprintf(full, sizeof full, "%s.%s", name, leaf);
    size_t idx = 0;
    if (role == ROLE_WEIGHT)
        ENCO_TRY(enco_params_weight(net->ps, full, ndim, shape, &idx));
    else if (role == ROLE_BIAS)
        ENCO_TRY(enco_params_declare(net->ps, full, ndim, shape, 1, ENCO_INIT_ZERO, &idx));
    else
        ENCO_TRY(enco_params_declare(net->ps, full, ndim, shape, 0,
                                     role == ROLE_BLUR_DOWN ? ENCO_INIT_BLUR_DOWN
                                                            : ENCO_INIT_BLUR_UP,
                                     &idx));
    *index = (long)idx;
    return ENCO_OK;
}

enco_status enco_seqnet_conv(enco_seqnet *net, int module, const char *name, int cout, int k,
                             int stride, int pad, enco_pad_mode mode, int bias)
{
    const enco_slot *in = &net->slots[net->cur];
    enco_layer l = blank(ENCO_L_CONV, module);
    l.conv = (enco_conv2d_shape){.n = net->max_n, .cin = in->c, .h = in->h, .w = in->w,
                                 .cout = cout, .kh = k, .kw = k, .stride_h = stride,
                                 .stride_w = stride, .pad_h = pad, .pad_w = pad,
                                 .pad_mode = mode};
    ENCO_TRY(enco_conv2d_check(&l.conv));
    int ho = 0, wo = 0;
    enco_conv2d_out_size(&l.conv, &ho, &wo);
    ENCO_TRY(param(net, name, "weight", 4, (int64_t[]){cout, in->c, k, k}, ROLE_WEIGHT, &l.weight));
    if (bias)
        ENCO_TRY(param(net, name, "bias", 1, (int64_t[]){cout}, ROLE_BIAS, &l.bias));
    return push_layer(net, &l, cout, ho, wo);
}

enco_status enco_seqnet_convt(enco_seqnet *net, int module, const char *name, int cout, int k,
                              int stride, int pad, int out_pad)
{
    const enco_slot *in = &net->slots[net->cur];
    enco_layer l = blank(ENCO_L_CONVT, module);
    l.convt = (enco_conv_transpose2d_shape){.n = net->max_n, .cin = in->c, .h = in->h,
                                            .w = in->w, .cout = cout, .kh = k, .kw = k,
                                            .stride_h = stride, .stride_w = stride,
                                            .pad_h = pad, .pad_w = pad, .out_pad_h = out_pad,
                                            .out_pad_w = out_pad};
    ENCO_TRY(enco_conv_transpose2d_check(&l.convt));
    int ho = 0, wo = 0;
    enco_conv_transpose2d_out_size(&l.convt, &ho, &wo);
    /* ConvTranspose2d weights are (in, out, kh, kw): PyTorch's fan rule
     * then takes fan_in from dim 1 (= out channels), as it does. */
    ENCO_TRY(param(net, name, "weight", 4, (int64_t[]){in->c, cout, k, k}, ROLE_WEIGHT, &l.weight));
    ENCO_TRY(param(net, name, "bias", 1, (int64_t[]){cout}, ROLE_BIAS, &l.bias));
    return push_layer(net, &l, cout, ho, wo);
}

enco_status enco_seqnet_inorm(enco_seqnet *net, int module, enco_norm_act act, float slope)
{
    const enco_slot *in = &net->slots[net->cur];
    if (in->h * in->w < 2)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "instance norm over a 1x1 map (input too small)");
    enco_layer l = blank(ENCO_L_INORM, module);
    l.act = act;
    l.slope = slope;
    l.stat_off = net->stats_floats;
    net->stats_floats += 2 * (size_t)net->max_n * in->c;
    return push_layer(net, &l, in->c, in->h, in->w);
}

enco_status enco_seqnet_act(enco_seqnet *net, int module, enco_norm_act act, float slope)
{
    const enco_slot *in = &net->slots[net->cur];
    if (act == ENCO_NORM_ACT_NONE)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "activation layer without an activation");
    enco_layer l = blank(ENCO_L_ACT, module);
    l.act = act;
    l.slope = slope;
    return push_layer(net, &l, in->c, in->h, in->w);
}

enco_status enco_seqnet_tanh(enco_seqnet *net, int module)
{
    const enco_slot *in = &net->slots[net->cur];
    enco_layer l = blank(ENCO_L_TANH, module);
    return push_layer(net, &l, in->c, in->h, in->w);
}

enco_status enco_seqnet_down(enco_seqnet *net, int module, const char *name)
{
    const enco_slot *in = &net->slots[net->cur];
    if (in->h < 2 || in->w < 2)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "Downsample %s needs a map of at least 2x2, got %dx%d (image too small)",
                         name, in->h, in->w);
    enco_layer l = blank(ENCO_L_DOWN, module);
    ENCO_TRY(param(net, name, "filt", 4, (int64_t[]){in->c, 1, 3, 3}, ROLE_BLUR_DOWN, &l.filt));
    return push_layer(net, &l, in->c, enco_blur_down_size(in->h), enco_blur_down_size(in->w));
}

enco_status enco_seqnet_up(enco_seqnet *net, int module, const char *name)
{
    const enco_slot *in = &net->slots[net->cur];
    enco_layer l = blank(ENCO_L_UP, module);
    ENCO_TRY(param(net, name, "filt", 4, (int64_t[]){in->c, 1, 4, 4}, ROLE_BLUR_UP, &l.filt));
    return push_layer(net, &l, in->c, 2 * in->h, 2 * in->w);
}

enco_status enco_seqnet_add(enco_seqnet *net, int module, int skip)
{
    const enco_slot *in = &net->slots[net->cur];
    const enco_slot *s = &net->slots[skip];
    if (s->c != in->c || s->h != in->h || s->w != in->w)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "residual add of mismatched shapes");
    enco_layer l = blank(ENCO_L_ADD, module);
    l.skip = skip;
    return push_layer(net, &l, in->c, in->h, in->w);
}

static enco_status grad_buffers(enco_ctx *ctx, const enco_seqnet *net, cl_mem *ga, cl_mem *gb,
                                cl_mem *gs)
{
    const size_t g = net->max_slot_floats * (size_t)net->max_n * F4;
    ENCO_TRY(enco_ctx_scratch(ctx, ENCO_SCRATCH_GRAD_A, g, ga));
    ENCO_TRY(enco_ctx_scratch(ctx, ENCO_SCRATCH_GRAD_B, g, gb));
    return enco_ctx_scratch(ctx, ENCO_SCRATCH_GRAD_SKIP, net->skip_floats * F4, gs);
}

enco_status enco_seqnet_finish(enco_ctx *ctx, enco_seqnet *net)
{
    size_t total = 0;
    for (size_t i = 0; i < net->nslots; i++) {
        net->slots[i].off = total;
        size_t f = slot_floats(&net->slots[i]);
        total += f * (size_t)net->max_n;
        if (f > net->max_slot_floats)
            net->max_slot_floats = f;
    }
    /* The skip gradient only ever holds a residual block's output. */
    net->skip_floats = 1;
    for (size_t i = 0; i < net->nlayers; i++) {
        const enco_layer *l = &net->layers[i];
        size_t f = (size_t)l->co * l->ho * l->wo * (size_t)net->max_n;
        if (l->kind == ENCO_L_ADD && f > net->skip_floats)
            net->skip_floats = f;
    }
    (void)total;
    /* Each convolution's kernel paths, chosen once from the context's policy. */
    for (size_t i = 0; i < net->nlayers; i++)
        if (net->layers[i].kind == ENCO_L_CONV)
            ENCO_TRY(enco_conv2d_plan(ctx, &net->layers[i].conv, &net->layers[i].conv_paths));
    ENCO_TRY(enco_seqnet_run_create(ctx, net, net->max_n, -1, &net->run));
    net->acts = net->run.acts;
    net->stats = net->run.stats;
    /* The backward's gradient buffers live only during one backward call,
     * so every network of a context shares them (G and D: D's 100 MB at
     * 256x256 are saved); sized here so that training never grows them. */
    cl_mem ga, gb, gs;
    ENCO_TRY(grad_buffers(ctx, net, &ga, &gb, &gs));
    /* The convolution workspace is the context's (one for G, D and every
     * other network: it only lives during one layer's launch); sized here so
     * that the training loop never grows it. */
    net->ws_floats = enco_seqnet_workspace_floats(ctx, net);
    cl_mem ws;
    return enco_ctx_scratch(ctx, ENCO_SCRATCH_CONV, net->ws_floats * F4, &ws);
}

size_t enco_seqnet_workspace_floats(enco_ctx *ctx, const enco_seqnet *net)
{
    const size_t cap = ws_cap_floats(ctx);
    size_t most = 1;
    for (size_t i = 0; i < net->nlayers; i++) {
        const enco_layer *l = &net->layers[i];
        size_t ws = l->kind == ENCO_L_CONV ? enco_conv2d_workspace_plan_floats_ctx(ctx, &l->conv, cap)
                    : l->kind == ENCO_L_CONVT
                        ? enco_conv_transpose2d_workspace_floats(&l->convt, 1)
                        : 0;
        if (ws > most)
            most = ws;
    }
    return most;
}

void enco_seqnet_free(enco_ctx *ctx, enco_seqnet *net)
{
    enco_seqnet_run_free(ctx, &net->run);
    free(net->layers);
    free(net->slots);
    memset(net, 0, sizeof *net);
}

/* ---- the bench's step recording (internal.h enco_ctx_trace_op) ---------- */

/* "G" from the parameter set's prefix "netG.". */
static void net_name(char *buf, size_t size, const enco_seqnet *net)
{
    const char *p = net->ps->prefix;
    if (strncmp(p, "net", 3) == 0)
        p += 3;
    size_t len = strcspn(p, ".");
    snprintf(buf, size, "%.*s", (int)len, p);
}

/* "G model.12.conv_block.1" from the layer's parameter name, else "G model.<module>". */
static void layer_where(char *buf, size_t size, const enco_seqnet *net, const enco_layer *l)
{
    char nn[16];
    net_name(nn, sizeof nn, net);
    long pi = l->weight >= 0 ? l->weight : l->filt;
    if (pi >= 0) {
        const char *nm = net->ps->list[pi].name;
        const char *dot = strrchr(nm, '.');
        snprintf(buf, size, "%s %.*s", nn, dot ? (int)(dot - nm) : (int)strlen(nm), nm);
    } else if (l->module >= 0) {
        snprintf(buf, size, "%s model.%d", nn, l->module);
    } else {
        /* Inside a block (a residual block's norm): the block's module, from
         * the nearest convolution before it ("model.12.conv_block"). */
        for (const enco_layer *p = l; p-- > net->layers;)
            if (p->weight >= 0) {
                const char *nm = net->ps->list[p->weight].name;
                const char *dot = strrchr(nm, '.');
                int len = dot ? (int)(dot - nm) : (int)strlen(nm);
                while (len > 0 && nm[len - 1] != '.')
                    len--; /* drop the conv's own index */
                snprintf(buf, size, "%s %.*s", nn, len > 0 ? len - 1 : 0, nm);
                return;
            }
        snprintf(buf, size, "%s (in block)", nn);
    }
}

static const char *pad_name(enco_pad_mode m)
{
    return m == ENCO_PAD_REFLECT ? "reflect" : m == ENCO_PAD_REPLICATE ? "replicate" : "zero";
}

static const char *act_name(enco_norm_act a)
{
    return a == ENCO_NORM_ACT_RELU ? "+relu" : a == ENCO_NORM_ACT_LEAKY ? "+lrelu" : "";
}

/* Tags the launches of layer l's forward (backward = 0) or backward (dx,
 * dw: which gradients it computes) over n images. */
static void trace_layer(enco_ctx *ctx, const enco_seqnet *net, const enco_layer *l, int n,
                        int backward, int dx, int dw)
{
    if (!enco_ctx_tracing(ctx))
        return;
    char where[64];
    layer_where(where, sizeof where, net, l);
    const size_t elems = (size_t)n * l->co * l->ho * l->wo;
    const int b = backward;
    if (l->kind == ENCO_L_CONV || l->kind == ENCO_L_CONVT) {
        const int conv = l->kind == ENCO_L_CONV;
        enco_conv2d_shape c = l->conv;
        enco_conv_transpose2d_shape t = l->convt;
        c.n = t.n = n;
        const enco_op_cost fwd = conv ? enco_conv2d_cost(&c, 0) : enco_conv_transpose2d_cost(&t, 0);
        const enco_op_cost all = conv ? enco_conv2d_cost(&c, 1) : enco_conv_transpose2d_cost(&t, 1);
        const int cin = conv ? c.cin : t.cin, cout = conv ? c.cout : t.cout;
        const int k = conv ? c.kh : t.kh, st = conv ? c.stride_h : t.stride_h;
        const int pad = conv ? c.pad_h : t.pad_h;
        /* The backward's cost split: the input gradient is one GEMM like the
         * forward; the weight (and bias) gradient the rest. */
        const double ys = (double)elems, xs = (double)n * cin * l->h * l->w;
        const double ws = (double)cout * cin * k * k;
        const enco_op_cost data = {fwd.flops - ys, 4.0 * (ys + ws + xs)};
        const enco_op_cost weight = {all.flops - data.flops, all.bytes - 4.0 * (ws + xs)};
        char name[32];
        snprintf(name, sizeof name, "%s.%s", conv ? "conv2d" : "convt2d",
                 !b ? "fwd" : dx && dw ? "bwd" : dx ? "bwd_data" : "bwd_weight");
        const enco_op_cost cost = !b ? fwd : dx && dw ? all : dx ? data : weight;
        enco_ctx_trace_op(ctx, name, where, cost, "n%d %dx%dx%d>%dx%dx%d k%d s%d p%d%s%s", n, cin,
                          l->h, l->w, cout, l->ho, l->wo, k, st, pad, conv ? " " : "",
                          conv ? pad_name(c.pad_mode) : "");
        return;
    }
    const int leaky = l->act == ENCO_NORM_ACT_LEAKY;
    switch (l->kind) {
    case ENCO_L_INORM:
        enco_ctx_trace_op(ctx, b ? "instnorm.bwd" : "instnorm.fwd", where,
                          b ? enco_instnorm_backward_cost(n, l->c, l->h, l->w)
                            : enco_instnorm_forward_cost(n, l->c, l->h, l->w),
                          "n%d %dx%dx%d%s", n, l->c, l->h, l->w, act_name(l->act));
        return;
    case ENCO_L_ACT:
        enco_ctx_trace_op(ctx,
                          leaky ? (b ? "leaky_relu.bwd" : "leaky_relu.fwd")
                                : (b ? "relu.bwd" : "relu.fwd"),
                          where, leaky ? enco_leaky_relu_cost(elems, b) : enco_relu_cost(elems, b),
                          "n%d %dx%dx%d", n, l->c, l->h, l->w);
        return;
    case ENCO_L_TANH:
        enco_ctx_trace_op(ctx, b ? "tanh.bwd" : "tanh.fwd", where, enco_tanh_cost(elems, b),
                          "n%d %dx%dx%d", n, l->c, l->h, l->w);
        return;
    case ENCO_L_DOWN:
        enco_ctx_trace_op(ctx, b ? "blur_down.bwd" : "blur_down.fwd", where,
                          b ? enco_blur_down_backward_cost(n, l->c, l->h, l->w)
                            : enco_blur_down_forward_cost(n, l->c, l->h, l->w),
                          "n%d %dx%dx%d>%dx%d", n, l->c, l->h, l->w, l->ho, l->wo);
        return;
    case ENCO_L_UP:
        enco_ctx_trace_op(ctx, b ? "blur_up.bwd" : "blur_up.fwd", where,
                          b ? enco_blur_up_backward_cost(n, l->c, l->h, l->w)
                            : enco_blur_up_forward_cost(n, l->c, l->h, l->w),
                          "n%d %dx%dx%d>%dx%d", n, l->c, l->h, l->w, l->ho, l->wo);
        return;
    case ENCO_L_ADD:
        enco_ctx_trace_op(ctx, b ? "add.bwd" : "add.fwd", where,
                          b ? (enco_op_cost){0, 2.0 * 4.0 * (double)elems} : enco_add_cost(elems, 0),
                          "n%d %dx%dx%d", n, l->c, l->h, l->w);
        return;
    default:
        return;
    }
}

/* Tags the network's own transfers and gradient sums ("copy", "axpy") at `what`. */
static void trace_misc(enco_ctx *ctx, const enco_seqnet *net, const char *name, const char *what,
                       const enco_layer *l, size_t count, int n, const enco_slot *s)
{
    if (!enco_ctx_tracing(ctx))
        return;
    char where[64], nn[16];
    if (l) {
        layer_where(where, sizeof where, net, l);
    } else {
        net_name(nn, sizeof nn, net);
        snprintf(where, sizeof where, "%s %s", nn, what);
    }
    const enco_op_cost cost = strcmp(name, "axpy") == 0 || strcmp(name, "add.bwd_skip") == 0
                                  ? enco_axpy_cost(count)
                                  : (enco_op_cost){0, (strcmp(name, "fill") == 0 ? 4.0 : 8.0) *
                                                          (double)count};
    enco_ctx_trace_op(ctx, name, where, cost, "n%d %dx%dx%d", n, s->c, s->h, s->w);
}

static size_t poff(const enco_seqnet *net, long index)
{
    return index < 0 ? 0 : net->ps->list[index].offset;
}

static cl_mem pmem(const enco_seqnet *net, long index)
{
    return index < 0 ? NULL : enco_params_mem(net->ps, &net->ps->list[index]);
}

static enco_status layer_forward(enco_ctx *ctx, enco_seqnet_run *run, const enco_layer *l, int n)
{
    enco_seqnet *net = run->net;
    cl_mem a = run->acts, st = run->stats, ws = NULL;
    if (l->kind == ENCO_L_CONV || l->kind == ENCO_L_CONVT)
        ENCO_TRY(enco_ctx_scratch(ctx, ENCO_SCRATCH_CONV, net->ws_floats * F4, &ws));
    size_t xo = net->slots[l->in].off, yo = net->slots[l->out].off;
    size_t count = (size_t)n * l->co * l->ho * l->wo;
    trace_layer(ctx, net, l, n, 0, 0, 0);
    switch (l->kind) {
    case ENCO_L_CONV: {
        enco_conv2d_shape s = l->conv;
        s.n = n;
        return enco_conv2d_forward_planned(ctx, a, yo, a, xo, pmem(net, l->weight),
                                           poff(net, l->weight), pmem(net, l->bias),
                                           poff(net, l->bias), ws, 0, net->ws_floats, &s,
                                           &l->conv_paths);
    }
    case ENCO_L_CONVT: {
        enco_conv_transpose2d_shape s = l->convt;
        s.n = n;
        return enco_conv_transpose2d_forward(ctx, a, yo, a, xo, pmem(net, l->weight),
                                             poff(net, l->weight), pmem(net, l->bias),
                                             poff(net, l->bias), ws, 0, net->ws_floats, &s);
    }
    case ENCO_L_INORM:
        return enco_instnorm_forward(ctx, a, yo, st, l->stat_off, st,
                                     l->stat_off + (size_t)n * l->c, a, xo, n, l->c, l->h, l->w,
                                     l->act, l->slope);
    case ENCO_L_ACT:
        if (l->act == ENCO_NORM_ACT_RELU)
            return enco_relu_forward(ctx, a, yo, a, xo, count);
        return enco_leaky_relu_forward(ctx, a, yo, a, xo, count, l->slope);
    case ENCO_L_TANH:
        return enco_tanh_forward(ctx, a, yo, a, xo, count);
    case ENCO_L_DOWN:
        return enco_blur_down_forward(ctx, a, yo, a, xo, net->ps->buffers, poff(net, l->filt), n,
                                      l->c, l->h, l->w);
    case ENCO_L_UP:
        return enco_blur_up_forward(ctx, a, yo, a, xo, net->ps->buffers, poff(net, l->filt), n,
                                    l->c, l->h, l->w);
    case ENCO_L_ADD:
        return enco_add_forward(ctx, a, yo, a, xo, a, net->slots[l->skip].off, count);
    }
    return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "unknown layer kind");
}

enco_status enco_seqnet_run_forward(enco_ctx *ctx, enco_seqnet_run *run, cl_mem x, size_t x_off,
                                    int n)
{
    if (n < 1 || n > run->max_n)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "batch of %d images; this network takes 1..%d", n,
                         run->max_n);
    const enco_slot *in = &run->net->slots[0];
    if (x != run->acts || x_off != in->off) { /* the caller may have written slot 0 itself */
        trace_misc(ctx, run->net, "copy", "input", NULL, (size_t)n * slot_floats(in), n, in);
        ENCO_TRY(enco_copy(ctx, run->acts, in->off * F4, x, x_off * F4,
                           (size_t)n * slot_floats(in) * F4));
    }
    for (size_t i = 0; i < run->nlayers; i++)
        ENCO_TRY(layer_forward(ctx, run, &run->net->layers[i], n));
    enco_ctx_trace_close(ctx);
    run->n_run = n;
    return ENCO_OK;
}

enco_status enco_seqnet_forward(enco_ctx *ctx, enco_seqnet *net, cl_mem x, size_t x_off, int n)
{
    ENCO_TRY(enco_seqnet_run_forward(ctx, &net->run, x, x_off, n));
    net->n_run = n;
    return ENCO_OK;
}

enco_status enco_seqnet_run_create(enco_ctx *ctx, enco_seqnet *net, int max_n, int stop_module,
                                   enco_seqnet_run *run)
{
    memset(run, 0, sizeof *run);
    if (max_n < 1 || max_n > net->max_n)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "a run of %d images; the network was planned for "
                         "1..%d", max_n, net->max_n);
    size_t count = net->nlayers;
    if (stop_module >= 0) {
        count = 0;
        for (size_t i = 0; i < net->nlayers; i++)
            if (net->layers[i].module == stop_module)
                count = i + 1;
        if (!count)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                             "layer %d is not a feature this network keeps (padding and norm "
                             "outputs are fused into the next layer); use a conv, activation, "
                             "blur or residual block output",
                             stop_module);
    }
    run->net = net;
    run->max_n = max_n;
    run->nlayers = count;
    run->out = count ? net->layers[count - 1].out : 0;
    /* Slots keep the definition's layout (strided for the network's max_n);
     * a run allocates the prefix its layers reach. */
    size_t total = 0, stats = 1;
    for (size_t i = 0; i <= (size_t)run->out && i < net->nslots; i++) {
        size_t end = net->slots[i].off + slot_floats(&net->slots[i]) * (size_t)net->max_n;
        if (end > total)
            total = end;
    }
    for (size_t i = 0; i < count; i++)
        if (net->layers[i].kind == ENCO_L_INORM) {
            size_t end = net->layers[i].stat_off + 2 * (size_t)net->max_n * net->layers[i].c;
            if (end > stats)
                stats = end;
        }
    ENCO_TRY(enco_buffer_alloc(ctx, total * F4, &run->acts));
    return enco_buffer_alloc(ctx, stats * F4, &run->stats);
}

void enco_seqnet_run_free(enco_ctx *ctx, enco_seqnet_run *run)
{
    enco_buffer_free(ctx, run->acts);
    enco_buffer_free(ctx, run->stats);
    memset(run, 0, sizeof *run);
}

void enco_seqnet_run_input(const enco_seqnet_run *run, cl_mem *mem, size_t *off)
{
    *mem = run->acts;
    *off = run->net->slots[0].off;
}

void enco_seqnet_run_output(const enco_seqnet_run *run, cl_mem *mem, size_t *off)
{
    *mem = run->acts;
    *off = run->net->slots[run->out].off;
}

void enco_seqnet_output(const enco_seqnet *net, cl_mem *mem, size_t *off, int *c, int *h, int *w)
{
    const enco_slot *s = &net->slots[net->cur];
    *mem = net->acts;
    *off = s->off;
    if (c)
        *c = s->c;
    if (h)
        *h = s->h;
    if (w)
        *w = s->w;
}

static const enco_layer *find_module(const enco_seqnet *net, int module)
{
    for (size_t i = 0; i < net->nlayers; i++)
        if (net->layers[i].module == module)
            return &net->layers[i];
    return NULL;
}

enco_status enco_seqnet_run_feature(const enco_seqnet_run *run, int module, cl_mem *mem,
                                    size_t *off, int *c, int *h, int *w)
{
    const enco_seqnet *net = run->net;
    const enco_layer *l = find_module(net, module);
    if (!l || l >= net->layers + run->nlayers)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "layer %d is not a feature this network keeps (padding and norm "
                         "outputs are fused into the next layer); use a conv, activation, "
                         "blur or residual block output",
                         module);
    const enco_slot *s = &net->slots[l->out];
    *mem = run->acts;
    *off = s->off;
    *c = s->c, *h = s->h, *w = s->w;
    return ENCO_OK;
}

enco_status enco_seqnet_feature(const enco_seqnet *net, int module, cl_mem *mem, size_t *off,
                                int *c, int *h, int *w)
{
    /* Also before enco_seqnet_finish (shapes only; *mem is then NULL). */
    enco_seqnet_run all = net->run;
    all.net = (enco_seqnet *)net;
    all.nlayers = net->nlayers;
    return enco_seqnet_run_feature(&all, module, mem, off, c, h, w);
}

/* Gradient of layer l's input into gx from the gradient of its output gy.
 * gx NULL: only parameter gradients are wanted. */
static enco_status layer_backward(enco_ctx *ctx, enco_seqnet_run *run, const enco_layer *l, int n,
                                  cl_mem gy, cl_mem gx, int param_grads)
{
    enco_seqnet *net = run->net;
    cl_mem a = run->acts, st = run->stats, ws = NULL;
    if (l->kind == ENCO_L_CONV || l->kind == ENCO_L_CONVT)
        ENCO_TRY(enco_ctx_scratch(ctx, ENCO_SCRATCH_CONV, net->ws_floats * F4, &ws));
    enco_param_set *ps = net->ps;
    size_t xo = net->slots[l->in].off, yo = net->slots[l->out].off;
    size_t count = (size_t)n * l->co * l->ho * l->wo;
    cl_mem gw = param_grads ? ps->grads : NULL;
    cl_mem gb = param_grads && l->bias >= 0 ? ps->grads : NULL;
    const int has_w = l->kind == ENCO_L_CONV || l->kind == ENCO_L_CONVT;
    if (gx || (has_w && gw))
        trace_layer(ctx, net, l, n, 1, gx != NULL, has_w && gw != NULL);
    switch (l->kind) {
    case ENCO_L_CONV: {
        if (!gx && !gw)
            return ENCO_OK;
        enco_conv2d_shape s = l->conv;
        s.n = n;
        return enco_conv2d_backward_planned(ctx, gx, 0, gw, poff(net, l->weight), gb,
                                            poff(net, l->bias), gy, 0, a, xo, ps->params,
                                            poff(net, l->weight), ws, 0, net->ws_floats, &s,
                                            &l->conv_paths);
    }
    case ENCO_L_CONVT: {
        if (!gx && !gw)
            return ENCO_OK;
        enco_conv_transpose2d_shape s = l->convt;
        s.n = n;
        return enco_conv_transpose2d_backward(ctx, gx, 0, gw, poff(net, l->weight), gb,
                                              poff(net, l->bias), gy, 0, a, xo, ps->params,
                                              poff(net, l->weight), ws, 0, net->ws_floats,
                                              &s);
    }
    default:
        break;
    }
    if (!gx)
        return ENCO_OK; /* the remaining layers have no parameters */
    switch (l->kind) {
    case ENCO_L_INORM:
        return enco_instnorm_backward(ctx, gx, 0, gy, 0, a, xo, st, l->stat_off,
                                      st, l->stat_off + (size_t)n * l->c, n, l->c, l->h,
                                      l->w, l->act, l->slope);
    case ENCO_L_ACT:
        if (l->act == ENCO_NORM_ACT_RELU)
            return enco_relu_backward(ctx, gx, 0, gy, 0, a, xo, count);
        return enco_leaky_relu_backward(ctx, gx, 0, gy, 0, a, xo, count, l->slope);
    case ENCO_L_TANH:
        return enco_tanh_backward(ctx, gx, 0, gy, 0, a, yo, count);
    case ENCO_L_DOWN:
        return enco_blur_down_backward(ctx, gx, 0, gy, 0, ps->buffers, poff(net, l->filt), n,
                                       l->c, l->h, l->w);
    case ENCO_L_UP:
        return enco_blur_up_backward(ctx, gx, 0, gy, 0, ps->buffers, poff(net, l->filt), n, l->c,
                                     l->h, l->w);
    default:
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "unknown layer kind");
    }
}

enco_status enco_seqnet_backward(enco_ctx *ctx, enco_seqnet *net, cl_mem dy, size_t dy_off,
                                 cl_mem dx, size_t dx_off, int param_grads,
                                 const enco_feature_grad *inject, size_t ninject)
{
    return enco_seqnet_run_backward(ctx, &net->run, dy, dy_off, dx, dx_off, param_grads, inject,
                                    ninject);
}

enco_status enco_seqnet_run_backward(enco_ctx *ctx, enco_seqnet_run *run, cl_mem dy,
                                     size_t dy_off, cl_mem dx, size_t dx_off, int param_grads,
                                     const enco_feature_grad *inject, size_t ninject)
{
    enco_seqnet *net = run->net;
    int n = run->n_run;
    if (n < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "backward without a forward");
    for (size_t j = 0; j < ninject; j++) {
        const enco_layer *l = find_module(net, inject[j].module);
        if (!l || l >= net->layers + run->nlayers || inject[j].n < 1 || inject[j].n > n)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "cannot inject a gradient at layer %d",
                             inject[j].module);
    }
    cl_mem gy, gx, gskip;
    ENCO_TRY(grad_buffers(ctx, net, &gy, &gx, &gskip));
    const enco_slot *out = &net->slots[run->out];
    trace_misc(ctx, net, dy ? "copy" : "fill", "output grad", NULL, (size_t)n * slot_floats(out),
               n, out);
    if (dy)
        ENCO_TRY(enco_copy(ctx, gy, 0, dy, dy_off * F4, (size_t)n * slot_floats(out) * F4));
    else
        ENCO_TRY(enco_fill_zero(ctx, gy, 0, (size_t)n * slot_floats(out) * F4));
    int pending_skip = -1;
    const enco_layer *pending_add = NULL; /* the residual add whose skip gradient waits */
    for (size_t i = run->nlayers; i-- > 0;) {
        const enco_layer *l = &net->layers[i];
        size_t out_count = (size_t)n * l->co * l->ho * l->wo;
        for (size_t j = 0; j < ninject; j++)
            if (inject[j].module == l->module && l->module >= 0) {
                trace_misc(ctx, net, "axpy", NULL, l, (size_t)inject[j].n * l->co * l->ho * l->wo,
                           inject[j].n, &net->slots[l->out]);
                ENCO_TRY(enco_axpy(ctx, gy, 0, inject[j].grad, inject[j].off,
                                   (size_t)inject[j].n * l->co * l->ho * l->wo, 1.0f));
            }
        if (l->kind == ENCO_L_ADD) {
            trace_layer(ctx, net, l, n, 1, 1, 0);
            /* Both inputs get gy: the skip's share waits in grad_skip until the
             * backward reaches the skip slot. */
            if (pending_skip >= 0)
                return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "nested residual blocks unsupported");
            ENCO_TRY(enco_copy(ctx, gskip, 0, gy, 0, out_count * F4));
            pending_skip = l->skip;
            pending_add = l;
            if (l->in == pending_skip) {
                ENCO_TRY(enco_axpy(ctx, gy, 0, gskip, 0, out_count, 1.0f));
                pending_skip = -1;
            }
            continue;
        }
        int first = l->in == 0;
        cl_mem target = first && !dx ? NULL : gx;
        ENCO_TRY(layer_backward(ctx, run, l, n, gy, target, param_grads));
        if (param_grads && net->grads_enqueued && l->weight >= 0 &&
            (l->kind == ENCO_L_CONV || l->kind == ENCO_L_CONVT)) {
            size_t lo = poff(net, l->weight);
            if (l->bias >= 0 && poff(net, l->bias) < lo)
                lo = poff(net, l->bias);
            ENCO_TRY(net->grads_enqueued(net->grads_user, lo));
        }
        if (!target)
            break;
        if (l->in == pending_skip) {
            size_t in_count = (size_t)n * l->c * l->h * l->w;
            trace_misc(ctx, net, "add.bwd_skip", NULL, pending_add, in_count, n,
                       &net->slots[l->in]);
            ENCO_TRY(enco_axpy(ctx, gx, 0, gskip, 0, in_count, 1.0f));
            pending_skip = -1;
        }
        cl_mem t = gy;
        gy = gx;
        gx = t;
    }
    if (dx) {
        trace_misc(ctx, net, "copy", "input grad", NULL, (size_t)n * slot_floats(&net->slots[0]),
                   n, &net->slots[0]);
        ENCO_TRY(enco_copy(ctx, dx, dx_off * F4, gy, 0,
                           (size_t)n * slot_floats(&net->slots[0]) * F4));
    }
    enco_ctx_trace_close(ctx);
    return ENCO_OK;
}
