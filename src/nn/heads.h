/* The projection heads F, as row networks (nn/rownet):
 *
 * EnCo's heads (spec ENCO.md section 3), one per pair p of feature layers:
 * mlp_p (Linear, Norm, ReLU, Linear, Norm) serves both the key and the query;
 * only the query continues through prj_p (Linear, Norm, ReLU, Linear+bias).
 * Outputs are L2-normalised rows. Norm is BatchNorm1d in training mode
 * (default; the second one of mlp_p without affine parameters), LayerNorm,
 * or nothing.
 *
 * CUT's PatchSampleF (spec MODELS.md section 0.4), one per nce layer l:
 * mlp_l (Linear+bias, ReLU, Linear+bias), then the L2 normalisation. The key
 * and the query run the same network in two passes.
 *
 * Each head has a query pass (kept for enco_heads_backward) and a key pass
 * (forward only: keys are constants of the contrastive losses). */
#ifndef ENCO_NN_HEADS_H
#define ENCO_NN_HEADS_H

#include "nn/rownet.h"

#define ENCO_MAX_HEADS 8                /* heads of one F: EnCo pairs or CUT nce layers */
#define ENCO_MAX_PAIRS ENCO_MAX_HEADS   /* EnCo's name for it: one head per pair of layers */
#define ENCO_HEAD_NC 256                /* default head width (netF_nc) */

typedef enum enco_prj_norm {
    ENCO_PRJ_BN = 0,
    ENCO_PRJ_LN = 1,
    ENCO_PRJ_NONE = 2,
} enco_prj_norm;

typedef enum enco_head_kind {
    ENCO_HEAD_ENCO = 0,   /* mlp + prj (query), mlp (key): enco_heads_build */
    ENCO_HEAD_SAMPLE = 1, /* CUT's PatchSampleF: enco_heads_build_sample */
} enco_head_kind;

typedef struct enco_heads {
    enco_param_set *ps;
    enco_head_kind kind;
    enco_prj_norm norm;       /* ENCO_HEAD_ENCO only */
    int nc;                   /* head width: outputs nc (EnCo's prj hidden: nc / 2) */
    int nheads;               /* EnCo: pairs; sample: nce layers */
    int cin[ENCO_MAX_HEADS];  /* channels of head p's feature map */
    int max_rows;             /* most rows (images x patches per image) one pass runs */
    enco_rownet qnet[ENCO_MAX_HEADS]; /* query network of head p */
    enco_rownet knet[ENCO_MAX_HEADS]; /* EnCo's key network (shares mlp_p); sample: unused,
                                         the key runs qnet[p] */
    enco_rownet_pass query[ENCO_MAX_HEADS], key[ENCO_MAX_HEADS]; /* .out: (rows, nc) */
} enco_heads;

/* EnCo: declares the parameters of F for npairs pairs with input channels
 * cin[p], head width nc (256 in the paper), for up to max_rows patch rows
 * per pass (n * k of enco_heads_forward). */
enco_status enco_heads_build(enco_heads *h, enco_param_set *ps, enco_prj_norm norm, int npairs,
                             const int *cin, int nc, int max_rows);
/* CUT's PatchSampleF over nlayers (1..ENCO_MAX_HEADS) nce layers with cin[l]
 * channels: declares for each l "mlp_<l>.0.weight" (nc, cin[l]) xavier,
 * "mlp_<l>.0.bias" (nc) zero, "mlp_<l>.2.weight" (nc, nc) xavier,
 * "mlp_<l>.2.bias" (nc) zero; up to max_rows rows per pass (the images of
 * one call times the patches per image). */
enco_status enco_heads_build_sample(enco_heads *h, enco_param_set *ps, int nlayers,
                                    const int *cin, int nc, int max_rows);
/* Plans the passes (after enco_params_alloc of the set). The passes point
 * into h: h must not move until enco_heads_free. */
enco_status enco_heads_alloc(enco_ctx *ctx, enco_heads *h);
void enco_heads_free(enco_ctx *ctx, enco_heads *h);
/* Data-parallel training: every pass's BatchNorm statistics span the rows
 * of every process (enco_rownet_pass_set_sync on the query and key passes);
 * NULL: this process's rows alone. After enco_heads_alloc. */
enco_status enco_heads_set_sync(enco_ctx *ctx, enco_heads *h, const enco_stat_sync *sync);

/* Gathers rows = n*k patches of feat (n, cin[p], hh, ww) at idx (n, k) int32
 * (ids may repeat) and runs them through head p: the query pass when query is
 * set, else the key pass. BatchNorm runs in training mode and updates its
 * running statistics. The L2-normalised output is h->query[p].out or
 * h->key[p].out (rows, nc). */
enco_status enco_heads_forward(enco_ctx *ctx, enco_heads *h, int p, int query, cl_mem feat,
                               size_t feat_off, cl_mem idx, size_t idx_off, int n, int hh, int ww,
                               int k);
/* Backward of head p's last query pass from dq (rows, nc): parameter
 * gradients accumulate into ps->grads and dfeat (n, cin, hh, ww) receives
 * the scattered patch gradients (accumulated: zero it first). */
enco_status enco_heads_backward(enco_ctx *ctx, enco_heads *h, int p, cl_mem dq, size_t dq_off,
                                cl_mem dfeat, size_t dfeat_off, cl_mem idx, size_t idx_off, int n,
                                int hh, int ww, int k);

#endif
