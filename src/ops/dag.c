/* DAG and random patch sampling: launchers, references, permutation helpers. */
#include "ops/dag.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DAG_TILE 128 /* must match cl/dag.cl */

/* Derived sizes of one configuration. */
typedef struct dag_sizes {
    int hw;    /* H*W */
    int k;     /* samples per image */
    int c;     /* candidates per image */
    int r;     /* covering samples per image */
    int keep;  /* importance samples per image: k - r */
} dag_sizes;

static enco_status dag_check_dims(int n, int h, int w, int num_patches, const char *what)
{
    if (n < 1 || h < 1 || w < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: N=%d, H=%d, W=%d must all be >= 1", what, n, h,
                         w);
    if ((long long)h * w > INT_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: H*W = %lld exceeds %d", what,
                         (long long)h * w, INT_MAX);
    if (num_patches < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: num_patches %d must be >= 1", what,
                         num_patches);
    return ENCO_OK;
}

static enco_status dag_sizes_get(dag_sizes *sz, int n, int h, int w, int num_patches,
                                 int oversample, double cover_ratio, int descending)
{
    ENCO_TRY(dag_check_dims(n, h, w, num_patches, "dag"));
    if (oversample < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "dag: oversample ratio %d must be >= 1",
                         oversample);
    if (!(cover_ratio >= 0.0 && cover_ratio <= 1.0))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "dag: covering ratio %g must lie in [0, 1]",
                         cover_ratio);
    if (descending != 0 && descending != 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "dag: descending must be 0 or 1, got %d",
                         descending);
    sz->hw = h * w;
    sz->k = num_patches < sz->hw ? num_patches : sz->hw;
    long long c = (long long)oversample * sz->k;
    sz->c = c < sz->hw ? (int)c : sz->hw;
    sz->r = (int)floor((double)sz->k * cover_ratio);
    sz->keep = sz->k - sz->r;
    return ENCO_OK;
}

int enco_dag_num_samples(int h, int w, int num_patches)
{
    if (h < 1 || w < 1 || num_patches < 1 || (long long)h * w > INT_MAX)
        return 0;
    return num_patches < h * w ? num_patches : h * w;
}

static enco_status check_buffer(cl_mem buf, size_t off, size_t n, size_t elem, const char *what)
{
    return enco_check_range("dag", what, buf, off, n, elem);
}

/* ---- DAG ---------------------------------------------------------------- */

enco_status enco_dag_forward(enco_ctx *ctx, cl_mem idx, size_t idx_off, cl_mem score,
                             size_t score_off, cl_mem cand, size_t cand_off, cl_mem cover,
                             size_t cover_off, int n, int h, int w, int num_patches,
                             int oversample, double cover_ratio, int descending)
{
    dag_sizes sz;
    ENCO_TRY(dag_sizes_get(&sz, n, h, w, num_patches, oversample, cover_ratio, descending));
    const size_t per = (size_t)n * (size_t)sz.hw;
    ENCO_TRY(check_buffer(idx, idx_off, (size_t)n * sz.k, sizeof(cl_int), "dag indices"));
    ENCO_TRY(check_buffer(score, score_off, per, sizeof(cl_float), "dag score map"));
    ENCO_TRY(check_buffer(cand, cand_off, per, sizeof(cl_int), "dag candidate permutation"));
    ENCO_TRY(check_buffer(cover, cover_off, per, sizeof(cl_int), "dag covering permutation"));
    const size_t global[2] = {enco_round_up((size_t)sz.c, DAG_TILE), (size_t)n};
    const size_t local[2] = {DAG_TILE, 1};
    return ENCO_RUN(ctx, "dag", "dag_rank", 2, global, local, ENCO_ARG_MEM(idx),
                    ENCO_ARG_ULONG(idx_off), ENCO_ARG_MEM(score), ENCO_ARG_ULONG(score_off),
                    ENCO_ARG_MEM(cand), ENCO_ARG_ULONG(cand_off), ENCO_ARG_MEM(cover),
                    ENCO_ARG_ULONG(cover_off), ENCO_ARG_INT(sz.hw), ENCO_ARG_INT(sz.c),
                    ENCO_ARG_INT(sz.k), ENCO_ARG_INT(sz.keep), ENCO_ARG_INT(descending));
}

/* Sampling order of candidates a and b (scores sa, sb): < 0 when a comes
 * first. NaN last in both directions; equal scores compare equal (the merge
 * sort then keeps candidate order). */
static int dag_order(double sa, double sb, int descending)
{
    int na = isnan(sa), nb = isnan(sb);
    if (na || nb)
        return na - nb;
    if (sa == sb)
        return 0;
    return (sa < sb) == !descending ? -1 : 1;
}

/* Stable top-down merge sort of items[0..n) by key (scores of the items). */
static void merge_sort(int *items, int *tmp, int n, const double *key, int descending)
{
    if (n < 2)
        return;
    int half = n / 2;
    merge_sort(items, tmp, half, key, descending);
    merge_sort(items + half, tmp, n - half, key, descending);
    int a = 0, b = half, o = 0;
    while (a < half && b < n) {
        /* Take from the right run only when strictly earlier: stability. */
        if (dag_order(key[items[b]], key[items[a]], descending) < 0)
            tmp[o++] = items[b++];
        else
            tmp[o++] = items[a++];
    }
    while (a < half)
        tmp[o++] = items[a++];
    while (b < n)
        tmp[o++] = items[b++];
    memcpy(items, tmp, (size_t)n * sizeof(int));
}

enco_status enco_dag_forward_ref(int32_t *idx, const float *score, const int32_t *cand,
                                 const int32_t *cover, int n, int h, int w, int num_patches,
                                 int oversample, double cover_ratio, int descending)
{
    dag_sizes sz;
    ENCO_TRY(dag_sizes_get(&sz, n, h, w, num_patches, oversample, cover_ratio, descending));
    /* order[] holds candidate positions 0..C-1; key[j] is candidate j's score. */
    int *order = malloc((size_t)sz.c * 2 * sizeof(int));
    double *key = malloc((size_t)sz.c * sizeof(double));
    if (!order || !key) {
        free(order), free(key);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "dag reference: no host memory");
    }
    for (int img = 0; img < n; img++) {
        const float *s = score + (size_t)img * sz.hw;
        const int32_t *cp = cand + (size_t)img * sz.hw;
        const int32_t *cv = cover + (size_t)img * sz.hw;
        int32_t *out = idx + (size_t)img * sz.k;
        for (int j = 0; j < sz.c; j++) {                     /* 2. oversample */
            order[j] = j;
            key[j] = cp[j] >= 0 && cp[j] < sz.hw ? (double)s[cp[j]] : NAN;
        }
        merge_sort(order, order + sz.c, sz.c, key, descending); /* 3. rank */
        for (int j = 0; j < sz.keep; j++)                     /* 4. importance */
            out[j] = cp[order[j]];
        for (int j = 0; j < sz.r; j++)                        /* 5. covering */
            out[sz.keep + j] = cv[sz.hw - sz.r + j];
    }
    free(order), free(key);
    return ENCO_OK;
}

/* ---- random ------------------------------------------------------------- */

enco_status enco_dag_random_forward(enco_ctx *ctx, cl_mem idx, size_t idx_off, cl_mem perm,
                                    size_t perm_off, int n, int h, int w, int num_patches)
{
    ENCO_TRY(dag_check_dims(n, h, w, num_patches, "dag_random"));
    const int hw = h * w, k = enco_dag_num_samples(h, w, num_patches);
    ENCO_TRY(check_buffer(idx, idx_off, (size_t)n * k, sizeof(cl_int), "dag_random indices"));
    ENCO_TRY(check_buffer(perm, perm_off, (size_t)n * hw, sizeof(cl_int),
                          "dag_random permutation"));
    const size_t global[2] = {enco_round_up((size_t)k, 64), (size_t)n}, local[2] = {64, 1};
    return ENCO_RUN(ctx, "dag", "dag_random", 2, global, local, ENCO_ARG_MEM(idx),
                    ENCO_ARG_ULONG(idx_off), ENCO_ARG_MEM(perm), ENCO_ARG_ULONG(perm_off),
                    ENCO_ARG_INT(hw), ENCO_ARG_INT(k));
}

enco_status enco_dag_random_ref(int32_t *idx, const int32_t *perm, int n, int h, int w,
                                int num_patches)
{
    ENCO_TRY(dag_check_dims(n, h, w, num_patches, "dag_random"));
    const int hw = h * w, k = enco_dag_num_samples(h, w, num_patches);
    for (int img = 0; img < n; img++)
        for (int i = 0; i < k; i++)
            idx[(size_t)img * k + i] = perm[(size_t)img * hw + i];
    return ENCO_OK;
}

/* ---- permutations ------------------------------------------------------- */

enco_status enco_dag_make_perms(enco_rng *rng, int32_t *cand, int32_t *cover, int n, int hw)
{
    if (!rng || !cand)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "dag permutations: NULL generator or output");
    if (n < 1 || hw < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "dag permutations: N=%d and H*W=%d must be >= 1",
                         n, hw);
    for (int img = 0; img < n; img++) {
        ENCO_TRY(enco_rng_permutation(rng, cand + (size_t)img * hw, (size_t)hw));
        if (cover)
            ENCO_TRY(enco_rng_permutation(rng, cover + (size_t)img * hw, (size_t)hw));
    }
    return ENCO_OK;
}

enco_status enco_dag_perms_upload(enco_ctx *ctx, cl_mem cand, size_t cand_off, cl_mem cover,
                                  size_t cover_off, enco_rng *rng, int n, int hw)
{
    if (n < 1 || hw < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "dag permutations: N=%d and H*W=%d must be >= 1",
                         n, hw);
    const size_t per = (size_t)n * (size_t)hw;
    ENCO_TRY(check_buffer(cand, cand_off, per, sizeof(cl_int), "dag candidate permutation"));
    if (cover)
        ENCO_TRY(check_buffer(cover, cover_off, per, sizeof(cl_int), "dag covering permutation"));
    int32_t *host = malloc(per * (cover ? 2 : 1) * sizeof(int32_t));
    if (!host)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "dag permutations: no host memory");
    enco_status st = enco_dag_make_perms(rng, host, cover ? host + per : NULL, n, hw);
    if (st == ENCO_OK)
        st = enco_upload(ctx, cand, cand_off * sizeof(int32_t), per * sizeof(int32_t), host);
    if (st == ENCO_OK && cover)
        st = enco_upload(ctx, cover, cover_off * sizeof(int32_t), per * sizeof(int32_t),
                         host + per);
    free(host);
    return st;
}

/* ---- cost --------------------------------------------------------------- */

enco_op_cost enco_dag_cost(int n, int h, int w, int num_patches, int oversample,
                           double cover_ratio)
{
    dag_sizes sz;
    if (dag_sizes_get(&sz, n, h, w, num_patches, oversample, cover_ratio, 0) != ENCO_OK)
        return (enco_op_cost){0, 0};
    double c = sz.c;
    return (enco_op_cost){(double)n * c * c,
                          (double)n * 4.0 * (2.0 * c + (double)sz.r + (double)sz.k)};
}

enco_op_cost enco_dag_random_cost(int n, int h, int w, int num_patches)
{
    int k = enco_dag_num_samples(h, w, num_patches);
    return (enco_op_cost){0.0, n > 0 ? (double)n * 8.0 * k : 0.0};
}
