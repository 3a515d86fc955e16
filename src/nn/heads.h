/* EnCo's projection and prediction heads F (spec ENCO.md section 3): for each
 * pair p of feature layers, mlp_p (Linear, Norm, ReLU, Linear, Norm) serves
 * both the key and the query; only the query continues through prj_p
 * (Linear, Norm, ReLU, Linear+bias). Outputs are L2-normalised rows. Norm is
 * BatchNorm1d in training mode (default), LayerNorm, or nothing. */
#ifndef ENCO_NN_HEADS_H
#define ENCO_NN_HEADS_H

#include "nn/params.h"

#define ENCO_MAX_PAIRS 8
#define ENCO_HEAD_NC 256 /* default head width (netF_nc) */

typedef enum enco_prj_norm {
    ENCO_PRJ_BN = 0,
    ENCO_PRJ_LN = 1,
    ENCO_PRJ_NONE = 2,
} enco_prj_norm;

/* One Norm layer's parameter indices (-1 where absent). */
typedef struct enco_head_norm {
    long weight, bias, running_mean, running_var;
    int counter; /* index into ps->counters, -1 if none */
} enco_head_norm;

/* Buffers of one pass through a head: every intermediate kept for backward. */
typedef struct enco_head_pass {
    cl_mem x;                 /* (rows, cin) gathered patches */
    cl_mem h1, n1, r1, h2, n2; /* mlp: linear, norm, relu, linear, norm */
    cl_mem g1, gn1, gr1, g2;  /* prj: linear, norm, relu, linear (query only) */
    cl_mem out;               /* (rows, nc) L2-normalised */
    cl_mem stats;             /* mean/rstd of the four norms */
} enco_head_pass;

typedef struct enco_heads {
    enco_param_set *ps;
    enco_prj_norm norm;
    int nc;                   /* head width: mlp outputs nc, prj hidden nc / 2 */
    int npairs;
    int cin[ENCO_MAX_PAIRS];
    int max_rows;
    long mlp0_w[ENCO_MAX_PAIRS], mlp3_w[ENCO_MAX_PAIRS];
    long prj0_w[ENCO_MAX_PAIRS], prj3_w[ENCO_MAX_PAIRS], prj3_b[ENCO_MAX_PAIRS];
    enco_head_norm mlp1[ENCO_MAX_PAIRS], mlp4[ENCO_MAX_PAIRS], prj1[ENCO_MAX_PAIRS];
    enco_head_pass query[ENCO_MAX_PAIRS], key[ENCO_MAX_PAIRS];
    cl_mem grad_a, grad_b, grad_x; /* backward scratch */
    int rows_run[ENCO_MAX_PAIRS];
} enco_heads;

/* Declares the parameters of F for pairs with input channels cin[p], head
 * width nc (256 in the paper), for up to max_rows patch rows per pair. */
enco_status enco_heads_build(enco_heads *h, enco_param_set *ps, enco_prj_norm norm, int npairs,
                             const int *cin, int nc, int max_rows);
enco_status enco_heads_alloc(enco_ctx *ctx, enco_heads *h);
void enco_heads_free(enco_ctx *ctx, enco_heads *h);

/* Gathers rows = n*k patches of feat (n, cin[p], hh, ww) at idx (n, k) int32
 * and runs them through pair p's head: the query (mlp + prj) when query is
 * set, else the key (mlp only). BatchNorm runs in training mode and updates
 * its running statistics. The L2-normalised output is h->query[p].out or
 * h->key[p].out. */
enco_status enco_heads_forward(enco_ctx *ctx, enco_heads *h, int p, int query, cl_mem feat,
                               size_t feat_off, cl_mem idx, size_t idx_off, int n, int hh, int ww,
                               int k);
/* Backward of pair p's last query pass from dq (rows, nc): parameter
 * gradients accumulate into ps->grads and dfeat (n, cin, hh, ww) receives
 * the scattered patch gradients (accumulated: zero it first). */
enco_status enco_heads_backward(enco_ctx *ctx, enco_heads *h, int p, cl_mem dq, size_t dq_off,
                                cl_mem dfeat, size_t dfeat_off, cl_mem idx, size_t idx_off, int n,
                                int hh, int ww, int k);

#endif
