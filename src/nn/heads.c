/* Projection / prediction heads: forward for keys and queries, backward for
 * queries (keys are constants in the EnCo loss). */
#include "nn/heads.h"

#include "ops/act.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/patch.h"

#include <stdio.h>
#include <string.h>

#define F4 sizeof(float)
#define BN_MOMENTUM 0.1f

static enco_status declare(enco_param_set *ps, const char *name, int ndim, const int64_t *shape,
                           int kind, long *index)
{
    size_t idx = 0;
    if (kind == 0)
        ENCO_TRY(enco_params_weight(ps, name, ndim, shape, &idx));
    else
        ENCO_TRY(enco_params_declare(ps, name, ndim, shape, kind != 3,
                                     kind == 1 || kind == 3 ? ENCO_INIT_ZERO : ENCO_INIT_ONE, &idx));
    *index = (long)idx;
    return ENCO_OK;
}

/* kinds: 0 xavier weight, 1 zero trainable, 2 one trainable, 3 zero buffer, 4 one buffer */
static enco_status declare_norm(enco_heads *h, const char *base, int dim, int affine,
                                enco_head_norm *out)
{
    char nm[ENCO_PARAM_NAME_MAX];
    out->weight = out->bias = out->running_mean = out->running_var = -1;
    out->counter = -1;
    if (h->norm == ENCO_PRJ_NONE)
        return ENCO_OK;
    enco_param_set *ps = h->ps;
    if (affine || h->norm == ENCO_PRJ_LN) {
        snprintf(nm, sizeof nm, "%s.weight", base);
        ENCO_TRY(declare(ps, nm, 1, (int64_t[]){dim}, 2, &out->weight));
        snprintf(nm, sizeof nm, "%s.bias", base);
        ENCO_TRY(declare(ps, nm, 1, (int64_t[]){dim}, 1, &out->bias));
    }
    if (h->norm == ENCO_PRJ_BN) {
        size_t idx = 0;
        snprintf(nm, sizeof nm, "%s.running_mean", base);
        ENCO_TRY(enco_params_declare(ps, nm, 1, (int64_t[]){dim}, 0, ENCO_INIT_ZERO, &idx));
        out->running_mean = (long)idx;
        snprintf(nm, sizeof nm, "%s.running_var", base);
        ENCO_TRY(enco_params_declare(ps, nm, 1, (int64_t[]){dim}, 0, ENCO_INIT_ONE, &idx));
        out->running_var = (long)idx;
        snprintf(nm, sizeof nm, "%s.num_batches_tracked", base);
        out->counter = (int)ps->ncounters;
        ENCO_TRY(enco_params_counter(ps, nm));
    }
    return ENCO_OK;
}

enco_status enco_heads_build(enco_heads *h, enco_param_set *ps, enco_prj_norm norm, int npairs,
                             const int *cin, int nc, int max_rows)
{
    memset(h, 0, sizeof *h);
    if (npairs < 1 || npairs > ENCO_MAX_PAIRS || max_rows < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "heads: %d pairs (1..%d) of %d rows", npairs,
                         ENCO_MAX_PAIRS, max_rows);
    if (norm == ENCO_PRJ_BN && max_rows < 2)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "BatchNorm heads need at least 2 patches per pass (num_patches * batch)");
    if (nc < 2 || nc % 2 != 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "head width netF_nc = %d must be even and >= 2", nc);
    h->ps = ps;
    h->nc = nc;
    h->norm = norm;
    h->npairs = npairs;
    h->max_rows = max_rows;
    char nm[ENCO_PARAM_NAME_MAX];
    for (int p = 0; p < npairs; p++) {
        h->cin[p] = cin[p];
        snprintf(nm, sizeof nm, "mlp_%d.0.weight", p);
        ENCO_TRY(declare(ps, nm, 2, (int64_t[]){h->nc, cin[p]}, 0, &h->mlp0_w[p]));
        snprintf(nm, sizeof nm, "mlp_%d.1", p);
        ENCO_TRY(declare_norm(h, nm, h->nc, 1, &h->mlp1[p]));
        snprintf(nm, sizeof nm, "mlp_%d.3.weight", p);
        ENCO_TRY(declare(ps, nm, 2, (int64_t[]){h->nc, h->nc}, 0, &h->mlp3_w[p]));
        snprintf(nm, sizeof nm, "mlp_%d.4", p);
        ENCO_TRY(declare_norm(h, nm, h->nc, 0, &h->mlp4[p]));
    }
    for (int p = 0; p < npairs; p++) {
        snprintf(nm, sizeof nm, "prj_%d.0.weight", p);
        ENCO_TRY(declare(ps, nm, 2, (int64_t[]){h->nc / 2, h->nc}, 0, &h->prj0_w[p]));
        snprintf(nm, sizeof nm, "prj_%d.1", p);
        ENCO_TRY(declare_norm(h, nm, h->nc / 2, 1, &h->prj1[p]));
        snprintf(nm, sizeof nm, "prj_%d.3.weight", p);
        ENCO_TRY(declare(ps, nm, 2, (int64_t[]){h->nc, h->nc / 2}, 0, &h->prj3_w[p]));
        snprintf(nm, sizeof nm, "prj_%d.3.bias", p);
        ENCO_TRY(declare(ps, nm, 1, (int64_t[]){h->nc}, 1, &h->prj3_b[p]));
    }
    return ENCO_OK;
}

static enco_status alloc_pass(enco_ctx *ctx, enco_head_pass *ps, int rows, int cin, int query,
                              size_t nc)
{
    size_t r = (size_t)rows * F4;
    ENCO_TRY(enco_buffer_alloc(ctx, r * (size_t)cin, &ps->x));
    cl_mem *full[] = {&ps->h1, &ps->n1, &ps->r1, &ps->h2, &ps->n2, &ps->out};
    for (size_t i = 0; i < sizeof full / sizeof full[0]; i++)
        ENCO_TRY(enco_buffer_alloc(ctx, r * nc, full[i]));
    if (query) {
        ENCO_TRY(enco_buffer_alloc(ctx, r * nc / 2, &ps->g1));
        ENCO_TRY(enco_buffer_alloc(ctx, r * nc / 2, &ps->gn1));
        ENCO_TRY(enco_buffer_alloc(ctx, r * nc / 2, &ps->gr1));
        ENCO_TRY(enco_buffer_alloc(ctx, r * nc, &ps->g2));
    }
    /* 4 norms x (mean, rstd) x max(rows, nc) */
    size_t per = (size_t)rows > nc ? (size_t)rows : nc;
    return enco_buffer_alloc(ctx, 8 * per * F4, &ps->stats);
}

enco_status enco_heads_alloc(enco_ctx *ctx, enco_heads *h)
{
    int cmax = h->nc;
    for (int p = 0; p < h->npairs; p++) {
        ENCO_TRY(alloc_pass(ctx, &h->query[p], h->max_rows, h->cin[p], 1, (size_t)h->nc));
        ENCO_TRY(alloc_pass(ctx, &h->key[p], h->max_rows, h->cin[p], 0, (size_t)h->nc));
        if (h->cin[p] > cmax)
            cmax = h->cin[p];
    }
    size_t r = (size_t)h->max_rows * F4;
    ENCO_TRY(enco_buffer_alloc(ctx, r * h->nc, &h->grad_a));
    ENCO_TRY(enco_buffer_alloc(ctx, r * h->nc, &h->grad_b));
    return enco_buffer_alloc(ctx, r * (size_t)cmax, &h->grad_x);
}

static void free_pass(enco_ctx *ctx, enco_head_pass *ps)
{
    cl_mem all[] = {ps->x,  ps->h1,  ps->n1,  ps->r1, ps->h2,  ps->n2,
                    ps->g1, ps->gn1, ps->gr1, ps->g2, ps->out, ps->stats};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        enco_buffer_free(ctx, all[i]);
}

void enco_heads_free(enco_ctx *ctx, enco_heads *h)
{
    for (int p = 0; p < h->npairs; p++) {
        free_pass(ctx, &h->query[p]);
        free_pass(ctx, &h->key[p]);
    }
    enco_buffer_free(ctx, h->grad_a);
    enco_buffer_free(ctx, h->grad_b);
    enco_buffer_free(ctx, h->grad_x);
    memset(h, 0, sizeof *h);
}

static size_t off_of(const enco_heads *h, long idx) { return idx < 0 ? 0 : h->ps->list[idx].offset; }
static cl_mem mem_of(const enco_heads *h, long idx)
{
    return idx < 0 ? NULL : enco_params_mem(h->ps, &h->ps->list[idx]);
}

/* Norm slot s (0..3) of a pass keeps mean at s*2*per, rstd at (s*2+1)*per. */
static size_t stat_off(const enco_heads *h, int s, int which)
{
    size_t per = (size_t)(h->max_rows > h->nc ? h->max_rows : h->nc);
    return ((size_t)s * 2 + (size_t)which) * per;
}

static enco_status norm_forward(enco_ctx *ctx, enco_heads *h, const enco_head_norm *nd,
                                enco_head_pass *pass, int slot, cl_mem y, cl_mem x, int rows,
                                int dim)
{
    if (h->norm == ENCO_PRJ_NONE)
        return enco_copy(ctx, y, 0, x, 0, (size_t)rows * dim * F4);
    cl_mem st = pass->stats;
    if (h->norm == ENCO_PRJ_LN)
        return enco_layernorm_forward(ctx, y, 0, st, stat_off(h, slot, 0), st,
                                      stat_off(h, slot, 1), x, 0, mem_of(h, nd->weight),
                                      off_of(h, nd->weight), mem_of(h, nd->bias),
                                      off_of(h, nd->bias), rows, dim);
    ENCO_TRY(enco_batchnorm_forward(ctx, y, 0, st, stat_off(h, slot, 0), st, stat_off(h, slot, 1),
                                    h->ps->buffers, off_of(h, nd->running_mean), h->ps->buffers,
                                    off_of(h, nd->running_var), x, 0, mem_of(h, nd->weight),
                                    off_of(h, nd->weight), mem_of(h, nd->bias),
                                    off_of(h, nd->bias), rows, dim, BN_MOMENTUM));
    h->ps->counters[nd->counter].value++;
    return ENCO_OK;
}

static enco_status norm_backward(enco_ctx *ctx, enco_heads *h, const enco_head_norm *nd,
                                 enco_head_pass *pass, int slot, cl_mem dx, cl_mem dy, cl_mem x,
                                 int rows, int dim)
{
    if (h->norm == ENCO_PRJ_NONE)
        return enco_copy(ctx, dx, 0, dy, 0, (size_t)rows * dim * F4);
    cl_mem st = pass->stats, g = h->ps->grads;
    int affine = nd->weight >= 0;
    if (h->norm == ENCO_PRJ_LN)
        return enco_layernorm_backward(ctx, dx, 0, g, off_of(h, nd->weight), g,
                                       off_of(h, nd->bias), dy, 0, x, 0, st, stat_off(h, slot, 0),
                                       st, stat_off(h, slot, 1), mem_of(h, nd->weight),
                                       off_of(h, nd->weight), rows, dim);
    return enco_batchnorm_backward(ctx, dx, 0, affine ? g : NULL, off_of(h, nd->weight),
                                   affine ? g : NULL, off_of(h, nd->bias), dy, 0, x, 0, st,
                                   stat_off(h, slot, 0), st, stat_off(h, slot, 1),
                                   mem_of(h, nd->weight), off_of(h, nd->weight), rows, dim);
}

enco_status enco_heads_forward(enco_ctx *ctx, enco_heads *h, int p, int query, cl_mem feat,
                               size_t feat_off, cl_mem idx, size_t idx_off, int n, int hh, int ww,
                               int k)
{
    int rows = n * k;
    if (p < 0 || p >= h->npairs || rows < 1 || rows > h->max_rows)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "heads: pair %d with %d rows (max %d)", p, rows,
                         h->max_rows);
    enco_head_pass *ps = query ? &h->query[p] : &h->key[p];
    cl_mem W = h->ps->params;
    int cin = h->cin[p];
    ENCO_TRY(enco_patch_gather_forward(ctx, ps->x, 0, feat, feat_off, idx, idx_off, NULL, 0,
                                       (size_t)n, (size_t)cin, (size_t)hh, (size_t)ww,
                                       (size_t)k));
    ENCO_TRY(enco_linear_forward(ctx, ps->h1, 0, ps->x, 0, W, off_of(h, h->mlp0_w[p]), NULL, 0,
                                 (size_t)rows, (size_t)cin, h->nc));
    ENCO_TRY(norm_forward(ctx, h, &h->mlp1[p], ps, 0, ps->n1, ps->h1, rows, h->nc));
    ENCO_TRY(enco_relu_forward(ctx, ps->r1, 0, ps->n1, 0, (size_t)rows * h->nc));
    ENCO_TRY(enco_linear_forward(ctx, ps->h2, 0, ps->r1, 0, W, off_of(h, h->mlp3_w[p]), NULL, 0,
                                 (size_t)rows, h->nc, h->nc));
    ENCO_TRY(norm_forward(ctx, h, &h->mlp4[p], ps, 1, ps->n2, ps->h2, rows, h->nc));
    cl_mem last = ps->n2;
    if (query) {
        ENCO_TRY(enco_linear_forward(ctx, ps->g1, 0, ps->n2, 0, W, off_of(h, h->prj0_w[p]), NULL,
                                     0, (size_t)rows, h->nc, h->nc / 2));
        ENCO_TRY(norm_forward(ctx, h, &h->prj1[p], ps, 2, ps->gn1, ps->g1, rows, h->nc / 2));
        ENCO_TRY(enco_relu_forward(ctx, ps->gr1, 0, ps->gn1, 0, (size_t)rows * h->nc / 2));
        ENCO_TRY(enco_linear_forward(ctx, ps->g2, 0, ps->gr1, 0, W, off_of(h, h->prj3_w[p]), W,
                                     off_of(h, h->prj3_b[p]), (size_t)rows, h->nc / 2, h->nc));
        last = ps->g2;
        h->rows_run[p] = rows;
    }
    return enco_l2norm_forward(ctx, ps->out, 0, last, 0, (size_t)rows, h->nc);
}

enco_status enco_heads_backward(enco_ctx *ctx, enco_heads *h, int p, cl_mem dq, size_t dq_off,
                                cl_mem dfeat, size_t dfeat_off, cl_mem idx, size_t idx_off, int n,
                                int hh, int ww, int k)
{
    int rows = n * k;
    if (p < 0 || p >= h->npairs || rows != h->rows_run[p])
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "heads backward without a matching query pass");
    enco_head_pass *ps = &h->query[p];
    cl_mem W = h->ps->params, G = h->ps->grads, a = h->grad_a, b = h->grad_b;
    size_t r = (size_t)rows;
    int cin = h->cin[p];
    ENCO_TRY(enco_l2norm_backward(ctx, a, 0, dq, dq_off, ps->g2, 0, r, h->nc));
    /* prj: Linear(128 -> 256, bias), ReLU, Norm, Linear(256 -> 128) */
    ENCO_TRY(enco_linear_backward(ctx, b, 0, G, off_of(h, h->prj3_w[p]), G,
                                  off_of(h, h->prj3_b[p]), a, 0, ps->gr1, 0, W,
                                  off_of(h, h->prj3_w[p]), r, h->nc / 2, h->nc));
    ENCO_TRY(enco_relu_backward(ctx, a, 0, b, 0, ps->gn1, 0, r * h->nc / 2));
    ENCO_TRY(norm_backward(ctx, h, &h->prj1[p], ps, 2, b, a, ps->g1, rows, h->nc / 2));
    ENCO_TRY(enco_linear_backward(ctx, a, 0, G, off_of(h, h->prj0_w[p]), NULL, 0, b, 0, ps->n2,
                                  0, W, off_of(h, h->prj0_w[p]), r, h->nc, h->nc / 2));
    /* mlp: Norm, Linear(256 -> 256), ReLU, Norm, Linear(cin -> 256) */
    ENCO_TRY(norm_backward(ctx, h, &h->mlp4[p], ps, 1, b, a, ps->h2, rows, h->nc));
    ENCO_TRY(enco_linear_backward(ctx, a, 0, G, off_of(h, h->mlp3_w[p]), NULL, 0, b, 0, ps->r1, 0,
                                  W, off_of(h, h->mlp3_w[p]), r, h->nc, h->nc));
    ENCO_TRY(enco_relu_backward(ctx, b, 0, a, 0, ps->n1, 0, r * h->nc));
    ENCO_TRY(norm_backward(ctx, h, &h->mlp1[p], ps, 0, a, b, ps->h1, rows, h->nc));
    ENCO_TRY(enco_linear_backward(ctx, h->grad_x, 0, G, off_of(h, h->mlp0_w[p]), NULL, 0, a, 0,
                                  ps->x, 0, W, off_of(h, h->mlp0_w[p]), r, (size_t)cin, h->nc));
    return enco_patch_gather_backward(ctx, dfeat, dfeat_off, h->grad_x, 0, idx, idx_off, NULL, 0,
                                      (size_t)n, (size_t)cin, (size_t)hh, (size_t)ww, (size_t)k);
}
