/* A sequential network of the layers G and D are made of, with residual
 * adds, run forward and backward over one activation arena planned when the
 * network is built (no allocation per iteration). Layer outputs are kept for
 * the backward pass and can be read as features by their reference module
 * number (`model.<i>`), and gradients can be injected at those features. */
#ifndef ENCO_NN_SEQNET_H
#define ENCO_NN_SEQNET_H

#include "nn/params.h"
#include "ops/conv.h"
#include "ops/norm.h"

typedef enum enco_layer_kind {
    ENCO_L_CONV,  /* Conv2d with its padding fused in (zero, reflect, replicate) */
    ENCO_L_CONVT, /* ConvTranspose2d */
    ENCO_L_INORM, /* InstanceNorm2d + fused activation */
    ENCO_L_ACT,   /* ReLU / LeakyReLU alone */
    ENCO_L_TANH,
    ENCO_L_DOWN,  /* blur Downsample */
    ENCO_L_UP,    /* blur Upsample */
    ENCO_L_ADD,   /* residual: out = in + skip */
} enco_layer_kind;

typedef struct enco_layer {
    enco_layer_kind kind;
    int module;             /* reference module index of this output, -1 if none */
    int in, out, skip;      /* activation slots (skip: ENCO_L_ADD only) */
    int c, h, w;            /* input per image */
    int co, ho, wo;         /* output per image */
    enco_conv2d_shape conv;
    enco_conv2d_paths conv_paths; /* ENCO_L_CONV: its kernel paths (enco_seqnet_finish) */
    enco_conv_transpose2d_shape convt;
    long weight, bias, filt; /* parameter indices, -1 if none */
    enco_norm_act act;
    float slope;
    size_t stat_off;        /* ENCO_L_INORM: offset of mean (then rstd) in stats */
} enco_layer;

typedef struct enco_slot {
    int c, h, w;
    size_t off;             /* elements into the arena */
} enco_slot;

struct enco_seqnet;

/* One execution of a network definition: its activation arena and norm
 * statistics, planned once for up to max_n images (no allocation per
 * iteration). A network may have any number of runs (e.g. G's full forward
 * and CUT's encoder passes over generated images), each keeping its own
 * activations for its backward; all accumulate into the same parameter
 * gradients. A run may stop after a given module (CUT's encode_only). */
typedef struct enco_seqnet_run {
    struct enco_seqnet *net;
    int max_n;
    size_t nlayers;         /* layers executed: a prefix of the definition */
    int out;                /* slot of the last executed layer's output */
    cl_mem acts, stats;
    int n_run;              /* batch of the last forward */
} enco_seqnet_run;

typedef struct enco_seqnet {
    enco_param_set *ps;
    int max_n;
    enco_layer *layers;
    size_t nlayers, cap_layers;
    enco_slot *slots;
    size_t nslots, cap_slots;
    int cur;                /* slot the next layer reads */
    size_t stats_floats, max_slot_floats, ws_floats, skip_floats;
    /* The default run (every layer, max_n images), made by
     * enco_seqnet_finish; acts/stats alias its arena. Workspace and backward
     * gradients are the context's scratch slots. */
    enco_seqnet_run run;
    cl_mem acts, stats;
    int n_run;              /* batch of the default run's last forward */
    /* When set, a backward (of any run) with parameter gradients calls
     * grads_enqueued(grads_user, lo) after enqueueing each conv layer's
     * parameter gradients, lo being that layer's lowest parameter offset
     * (floats into ps->grads): the backward has then enqueued every gradient
     * it contributes from lo to the end (layers are declared in order and
     * run backwards). Data-parallel training reduces those while the
     * backward of the layers below runs (enco_trainer_watch_grads). */
    enco_status (*grads_enqueued)(void *user, size_t lo);
    void *grads_user;
} enco_seqnet;

/* Starts a network for inputs (max_n, c, h, w) whose parameters go into ps. */
enco_status enco_seqnet_begin(enco_seqnet *net, enco_param_set *ps, int max_n, int c, int h,
                              int w);
/* Layer builders: each reads the current slot and makes a new current slot.
 * Names are the parameter names without the net prefix ("model.1"); a NULL
 * name where a builder has no parameters. */
enco_status enco_seqnet_conv(enco_seqnet *net, int module, const char *name, int cout, int k,
                             int stride, int pad, enco_pad_mode mode, int bias);
enco_status enco_seqnet_convt(enco_seqnet *net, int module, const char *name, int cout, int k,
                              int stride, int pad, int out_pad);
enco_status enco_seqnet_inorm(enco_seqnet *net, int module, enco_norm_act act, float slope);
enco_status enco_seqnet_act(enco_seqnet *net, int module, enco_norm_act act, float slope);
enco_status enco_seqnet_tanh(enco_seqnet *net, int module);
enco_status enco_seqnet_down(enco_seqnet *net, int module, const char *name);
enco_status enco_seqnet_up(enco_seqnet *net, int module, const char *name);
/* out = current + slot `skip` (an earlier enco_seqnet_mark()). */
enco_status enco_seqnet_add(enco_seqnet *net, int module, int skip);
static inline int enco_seqnet_mark(const enco_seqnet *net) { return net->cur; }
/* Plans and allocates the arena. Call once after the last layer. */
enco_status enco_seqnet_finish(enco_ctx *ctx, enco_seqnet *net);
void enco_seqnet_free(enco_ctx *ctx, enco_seqnet *net);
/* Floats of convolution workspace the network plans on this device (the
 * largest layer's need under the cap; see ENCO_CONV_WS_MIB in seqnet.c). */
size_t enco_seqnet_workspace_floats(enco_ctx *ctx, const enco_seqnet *net);

/* Runs n <= max_n images x (n, c, h, w) through the network. x may be the
 * input slot itself (acts at slots[0].off), filled by the caller. */
enco_status enco_seqnet_forward(enco_ctx *ctx, enco_seqnet *net, cl_mem x, size_t x_off, int n);
/* The final output (n, co, ho, wo) of the last forward. */
void enco_seqnet_output(const enco_seqnet *net, cl_mem *mem, size_t *off, int *c, int *h, int *w);
/* The output of reference module `module` of the last forward; fails if the
 * network does not keep it (e.g. a padding layer fused into a conv). */
enco_status enco_seqnet_feature(const enco_seqnet *net, int module, cl_mem *mem, size_t *off,
                                int *c, int *h, int *w);

/* A gradient to add at a module's output during the backward pass: images
 * 0..n-1 of that output get grad (n, c, h, w) added. */
typedef struct enco_feature_grad {
    int module;
    cl_mem grad;
    size_t off;
    int n;
} enco_feature_grad;

/* Backward of the last forward from dy (n, co, ho, wo). dx (n, c, h, w) is
 * written when non-NULL; parameter gradients accumulate into ps->grads when
 * param_grads is set (a frozen network passes 0). */
enco_status enco_seqnet_backward(enco_ctx *ctx, enco_seqnet *net, cl_mem dy, size_t dy_off,
                                 cl_mem dx, size_t dx_off, int param_grads,
                                 const enco_feature_grad *inject, size_t ninject);

/* ---- Further runs of a finished network ----
 * Plans a run for up to max_n (<= the network's max_n) images that executes
 * the layers up to and including the last one of reference module
 * stop_module (-1: every layer). */
enco_status enco_seqnet_run_create(enco_ctx *ctx, enco_seqnet *net, int max_n, int stop_module,
                                   enco_seqnet_run *run);
void enco_seqnet_run_free(enco_ctx *ctx, enco_seqnet_run *run);
enco_status enco_seqnet_run_forward(enco_ctx *ctx, enco_seqnet_run *run, cl_mem x, size_t x_off,
                                    int n);
/* The run's input (feature 0 of CUT's encoder: the image itself). */
void enco_seqnet_run_input(const enco_seqnet_run *run, cl_mem *mem, size_t *off);
void enco_seqnet_run_output(const enco_seqnet_run *run, cl_mem *mem, size_t *off);
enco_status enco_seqnet_run_feature(const enco_seqnet_run *run, int module, cl_mem *mem,
                                    size_t *off, int *c, int *h, int *w);
/* Backward of the run's last forward: dy NULL means a zero gradient at the
 * run's output (only injected feature gradients flow). */
enco_status enco_seqnet_run_backward(enco_ctx *ctx, enco_seqnet_run *run, cl_mem dy,
                                     size_t dy_off, cl_mem dx, size_t dx_off, int param_grads,
                                     const enco_feature_grad *inject, size_t ninject);

#endif
