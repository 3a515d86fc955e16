/* Row networks: a chain of row-wise layers over a (rows, features) matrix
 * whose rows are patches gathered from a feature map. The projection heads
 * (EnCo's mlp/prj, CUT's PatchSampleF) are row networks.
 *
 * Definition apart from execution (as seqnet): an enco_rownet is the layer
 * list; its parameters are declared once, under their reference names, into
 * an enco_param_set while the layers are appended. A network may reuse layers
 * of another (enco_rownet_share: the same module called on a second path,
 * EnCo's key head is the query head's mlp). An enco_rownet_pass is one
 * execution of a network: its activation buffers are allocated once, for up
 * to max_rows rows, and every forward/backward runs in them (nothing is
 * allocated per iteration). Any number of passes may run the same network.
 *
 * Layer 0 is always the gather: rows = n * k, row i*k + j holds
 * feat[i, :, idx[i, j]] (image-major, ops/patch). The other layers:
 *   LINEAR     y = x W^T (+ b)                 W (out, in), b (out)
 *   BATCHNORM  BatchNorm1d in training mode (batch statistics over the rows,
 *              eps 1e-5; running statistics updated with momentum 0.1 and the
 *              num_batches_tracked counter incremented by every forward);
 *              affine or not
 *   LAYERNORM  LayerNorm over the features, affine (eps 1e-5)
 *   RELU       max(x, 0)
 *   L2NORM     x / (||x||_2 + 1e-7) per row
 */
#ifndef ENCO_NN_ROWNET_H
#define ENCO_NN_ROWNET_H

#include "nn/params.h"
#include "ops/norm.h"

#define ENCO_ROWNET_MAX_LAYERS 16
#define ENCO_ROWNET_BN_MOMENTUM 0.1f /* PyTorch's BatchNorm1d default */

typedef enum enco_row_op {
    ENCO_ROW_GATHER = 0, /* layer 0 only: patches of (n, C, H, W) at int32 ids (n, k) */
    ENCO_ROW_LINEAR,
    ENCO_ROW_BATCHNORM,
    ENCO_ROW_LAYERNORM,
    ENCO_ROW_RELU,
    ENCO_ROW_L2NORM,
} enco_row_op;

/* A layer's parameters by role: indices into ps->list (counter: into
 * ps->counters), ENCO_ROW_NONE where the layer has no such parameter. */
#define ENCO_ROW_NONE (-1L)
typedef struct enco_row_params {
    long weight;       /* LINEAR (out, in), xavier; norm scale (dim), ones */
    long bias;         /* LINEAR (out) or norm shift (dim), zeros */
    long running_mean; /* BATCHNORM buffer (dim), zeros */
    long running_var;  /* BATCHNORM buffer (dim), ones */
    long counter;      /* BATCHNORM num_batches_tracked */
} enco_row_params;

typedef struct enco_row_layer {
    enco_row_op op;
    int in, out; /* features per row entering / leaving the layer */
    enco_row_params p;
} enco_row_layer;

typedef struct enco_rownet {
    enco_param_set *ps; /* where the layers' parameters live */
    int nlayers;
    enco_row_layer layers[ENCO_ROWNET_MAX_LAYERS];
} enco_rownet;

/* Starts a network on ps whose layer 0 gathers rows of `channels` features. */
enco_status enco_rownet_init(enco_rownet *net, enco_param_set *ps, int channels);
/* Appends a layer, declaring its parameters as "<name>.weight", "<name>.bias"
 * (and for BatchNorm "<name>.running_mean", ".running_var",
 * ".num_batches_tracked"), in that order. */
enco_status enco_rownet_linear(enco_rownet *net, const char *name, int out, int bias);
enco_status enco_rownet_batchnorm(enco_rownet *net, const char *name, int affine);
enco_status enco_rownet_layernorm(enco_rownet *net, const char *name);
enco_status enco_rownet_relu(enco_rownet *net);
enco_status enco_rownet_l2norm(enco_rownet *net);
/* Appends layer `layer` of src (declared on the same parameter set) without
 * declaring anything: both networks use its parameters. */
enco_status enco_rownet_share(enco_rownet *net, const enco_rownet *src, int layer);
/* Features per row of the network's output. */
int enco_rownet_out_features(const enco_rownet *net);

/* One execution of a network. */
typedef struct enco_rownet_pass {
    const enco_rownet *net;
    int max_rows; /* most rows (images x patches per image) one forward may run */
    int backward; /* keeps every activation and has scratch for enco_rownet_backward */
    /* act[i]: output of layer i (rows, layers[i].out). A pass without backward
     * has two buffers that the layers alternate between (act[i] = act[i % 2]). */
    cl_mem act[ENCO_ROWNET_MAX_LAYERS];
    cl_mem out;   /* (rows, out features): the last layer's output, one of act[] */
    cl_mem stats; /* mean then rstd of each norm layer, at stat_off[i] */
    size_t stat_off[ENCO_ROWNET_MAX_LAYERS];
    cl_mem grad[2]; /* backward scratch (max_rows, widest layer), alternating */
    int rows, n, h, w, k; /* the last forward (rows = n * k; 0: none yet) */
    /* Data-parallel training: BatchNorm statistics over every process's rows
     * (enco_rownet_pass_set_sync); sync.sum NULL: this pass's rows alone. */
    enco_stat_sync sync;
    cl_mem sync_scratch; /* 3 x the widest BatchNorm's features */
} enco_rownet_pass;

/* Plans a pass of net for up to max_rows rows (>= 1). */
enco_status enco_rownet_pass_alloc(enco_ctx *ctx, enco_rownet_pass *pass, const enco_rownet *net,
                                   int max_rows, int backward);
void enco_rownet_pass_free(enco_ctx *ctx, enco_rownet_pass *pass);
/* Makes the pass's BatchNorm layers one part of a batch spread over several
 * processes: their statistics (forward) and the sums of their backward span
 * every process's rows, summed by sync->sum (ops/norm.h
 * enco_batchnorm_forward_sync), so that each process's forward and backward
 * are those of one process on all the rows (dweight / dbias: this process's
 * share, to be summed with the other gradients). Every process must run the
 * same passes in the same order. NULL (or a NULL sum): this pass's rows
 * alone, the single-kernel path. */
enco_status enco_rownet_pass_set_sync(enco_ctx *ctx, enco_rownet_pass *pass,
                                      const enco_stat_sync *sync);

/* Gathers n*k rows of feat (n, C, h, w) at idx (n, k) int32 and runs every
 * layer; the result is pass->out. BatchNorm layers update their running
 * statistics and counters (in layer order). */
enco_status enco_rownet_forward(enco_ctx *ctx, enco_rownet_pass *pass, cl_mem feat,
                                size_t feat_off, cl_mem idx, size_t idx_off, int n, int h, int w,
                                int k);
/* Backward of the pass's last forward from dy (rows, out features), on a pass
 * planned with backward: parameter gradients accumulate into ps->grads, the
 * rows' gradient is scattered into dfeat (n, C, h, w) (accumulated: zero it
 * first for a plain gradient). idx must hold the forward's ids; n, h, w, k
 * must be the forward's. */
enco_status enco_rownet_backward(enco_ctx *ctx, enco_rownet_pass *pass, cl_mem dy, size_t dy_off,
                                 cl_mem dfeat, size_t dfeat_off, cl_mem idx, size_t idx_off, int n,
                                 int h, int w, int k);

#endif
