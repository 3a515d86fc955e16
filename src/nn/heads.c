/* Projection heads: EnCo's mlp/prj heads and CUT's PatchSampleF, each a pair
 * of row-network passes (query with backward, key forward only). */
#include "nn/heads.h"

#include <stdio.h>
#include <string.h>

static enco_status check_common(enco_heads *h, const char *what, int nheads, const int *cin,
                                int max_rows)
{
    if (nheads < 1 || nheads > ENCO_MAX_HEADS || max_rows < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %d heads (1..%d) of %d rows (>= 1)", what,
                         nheads, ENCO_MAX_HEADS, max_rows);
    for (int p = 0; p < nheads; p++)
        if (!cin || cin[p] < 1)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: head %d has %d input channels", what, p,
                             cin ? cin[p] : 0);
    h->nheads = nheads;
    h->max_rows = max_rows;
    memcpy(h->cin, cin, (size_t)nheads * sizeof *cin);
    return ENCO_OK;
}

static enco_status name_of(char *nm, const char *fmt, int p)
{
    int len = snprintf(nm, ENCO_PARAM_NAME_MAX, fmt, p);
    if (len < 0 || len >= ENCO_PARAM_NAME_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "heads: name %s too long", fmt);
    return ENCO_OK;
}

/* The configured Norm layer (affine: BatchNorm with weight and bias;
 * LayerNorm always has them), or none. */
static enco_status add_norm(const enco_heads *h, enco_rownet *net, const char *fmt, int p,
                            int affine)
{
    char nm[ENCO_PARAM_NAME_MAX];
    ENCO_TRY(name_of(nm, fmt, p));
    switch (h->norm) {
    case ENCO_PRJ_BN:
        return enco_rownet_batchnorm(net, nm, affine);
    case ENCO_PRJ_LN:
        return enco_rownet_layernorm(net, nm);
    case ENCO_PRJ_NONE:
        return ENCO_OK;
    }
    return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "heads: unknown norm %d", (int)h->norm);
}

static enco_status add_linear(enco_rownet *net, const char *fmt, int p, int out, int bias)
{
    char nm[ENCO_PARAM_NAME_MAX];
    ENCO_TRY(name_of(nm, fmt, p));
    return enco_rownet_linear(net, nm, out, bias);
}

enco_status enco_heads_build(enco_heads *h, enco_param_set *ps, enco_prj_norm norm, int npairs,
                             const int *cin, int nc, int max_rows)
{
    memset(h, 0, sizeof *h);
    ENCO_TRY(check_common(h, "heads", npairs, cin, max_rows));
    if (norm == ENCO_PRJ_BN && max_rows < 2)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "BatchNorm heads need at least 2 patches per pass (num_patches * batch)");
    if (nc < 2 || nc % 2 != 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "head width netF_nc = %d must be even and >= 2", nc);
    h->ps = ps;
    h->kind = ENCO_HEAD_ENCO;
    h->nc = nc;
    h->norm = norm;
    /* Declaration order (every mlp, then every prj) fixes the parameter
     * layout and the initialisation draws: the reference's module order. */
    for (int p = 0; p < npairs; p++) {
        enco_rownet *q = &h->qnet[p];
        ENCO_TRY(enco_rownet_init(q, ps, cin[p]));
        ENCO_TRY(add_linear(q, "mlp_%d.0", p, nc, 0));
        ENCO_TRY(add_norm(h, q, "mlp_%d.1", p, 1));
        ENCO_TRY(enco_rownet_relu(q));
        ENCO_TRY(add_linear(q, "mlp_%d.3", p, nc, 0));
        ENCO_TRY(add_norm(h, q, "mlp_%d.4", p, 0));
        /* The key: the same mlp_p, then the L2 normalisation. */
        enco_rownet *k = &h->knet[p];
        ENCO_TRY(enco_rownet_init(k, ps, cin[p]));
        for (int i = 1; i < q->nlayers; i++)
            ENCO_TRY(enco_rownet_share(k, q, i));
        ENCO_TRY(enco_rownet_l2norm(k));
    }
    for (int p = 0; p < npairs; p++) {
        enco_rownet *q = &h->qnet[p];
        ENCO_TRY(add_linear(q, "prj_%d.0", p, nc / 2, 0));
        ENCO_TRY(add_norm(h, q, "prj_%d.1", p, 1));
        ENCO_TRY(enco_rownet_relu(q));
        ENCO_TRY(add_linear(q, "prj_%d.3", p, nc, 1));
        ENCO_TRY(enco_rownet_l2norm(q));
    }
    return ENCO_OK;
}

enco_status enco_heads_build_sample(enco_heads *h, enco_param_set *ps, int nlayers,
                                    const int *cin, int nc, int max_rows)
{
    memset(h, 0, sizeof *h);
    ENCO_TRY(check_common(h, "PatchSampleF", nlayers, cin, max_rows));
    if (nc < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "PatchSampleF width netF_nc = %d must be >= 1",
                         nc);
    h->ps = ps;
    h->kind = ENCO_HEAD_SAMPLE;
    h->norm = ENCO_PRJ_NONE;
    h->nc = nc;
    for (int l = 0; l < nlayers; l++) {
        enco_rownet *q = &h->qnet[l];
        ENCO_TRY(enco_rownet_init(q, ps, cin[l]));
        ENCO_TRY(add_linear(q, "mlp_%d.0", l, nc, 1));
        ENCO_TRY(enco_rownet_relu(q));
        ENCO_TRY(add_linear(q, "mlp_%d.2", l, nc, 1));
        ENCO_TRY(enco_rownet_l2norm(q));
    }
    return ENCO_OK;
}

static const enco_rownet *key_net(const enco_heads *h, int p)
{
    return h->kind == ENCO_HEAD_SAMPLE ? &h->qnet[p] : &h->knet[p];
}

enco_status enco_heads_alloc(enco_ctx *ctx, enco_heads *h)
{
    for (int p = 0; p < h->nheads; p++) {
        ENCO_TRY(enco_rownet_pass_alloc(ctx, &h->query[p], &h->qnet[p], h->max_rows, 1));
        ENCO_TRY(enco_rownet_pass_alloc(ctx, &h->key[p], key_net(h, p), h->max_rows, 0));
    }
    return ENCO_OK;
}

enco_status enco_heads_set_sync(enco_ctx *ctx, enco_heads *h, const enco_stat_sync *sync)
{
    for (int p = 0; p < h->nheads; p++) {
        ENCO_TRY(enco_rownet_pass_set_sync(ctx, &h->query[p], sync));
        ENCO_TRY(enco_rownet_pass_set_sync(ctx, &h->key[p], sync));
    }
    return ENCO_OK;
}

void enco_heads_free(enco_ctx *ctx, enco_heads *h)
{
    for (int p = 0; p < h->nheads && p < ENCO_MAX_HEADS; p++) {
        enco_rownet_pass_free(ctx, &h->query[p]);
        enco_rownet_pass_free(ctx, &h->key[p]);
    }
    memset(h, 0, sizeof *h);
}

static enco_status check_head(const enco_heads *h, int p)
{
    if (p < 0 || p >= h->nheads)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "heads: head %d of %d", p, h->nheads);
    return ENCO_OK;
}

enco_status enco_heads_forward(enco_ctx *ctx, enco_heads *h, int p, int query, cl_mem feat,
                               size_t feat_off, cl_mem idx, size_t idx_off, int n, int hh, int ww,
                               int k)
{
    ENCO_TRY(check_head(h, p));
    return enco_rownet_forward(ctx, query ? &h->query[p] : &h->key[p], feat, feat_off, idx,
                               idx_off, n, hh, ww, k);
}

enco_status enco_heads_backward(enco_ctx *ctx, enco_heads *h, int p, cl_mem dq, size_t dq_off,
                                cl_mem dfeat, size_t dfeat_off, cl_mem idx, size_t idx_off, int n,
                                int hh, int ww, int k)
{
    ENCO_TRY(check_head(h, p));
    return enco_rownet_backward(ctx, &h->query[p], dq, dq_off, dfeat, dfeat_off, idx, idx_off, n,
                                hh, ww, k);
}
