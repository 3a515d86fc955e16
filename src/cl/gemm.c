/* SGEMM dispatch: CLBlast, or our own kernel where CLBlast cannot run. */
#include "cl/ctx.h"

#include <clblast_c.h>
#include <stdlib.h>
#include <string.h>

/* On CPU devices CLBlast's kernels (untuned for PoCL) reach a few GFLOP/s;
 * our packed kernels (cl/gemm.cl gemm_pack_a / gemm_pack_b / gemm_packed)
 * are many times faster there. The policy's gemm_packed (ENCO_GEMM_TILE)
 * turns them off (CLBlast for all) or forces them on any device and backend
 * (tests: the Oclgrind run checks them for races and uninitialised reads);
 * src/cl/policy.c resolves its default. */
static int use_packed(const enco_ctx *ctx) { return ctx->policy.gemm_packed == ENCO_PATH_ON; }

/* Must match cl/gemm.cl. */
#define GP_MR 6  /* K panel of the weight-gradient kernels */
#define GA_MR 12 /* row panel of A */
#define GP_NR 16
#define GP_KB 64
#define GP_PB 64
#define GP_PR 2

/* Blocking: K is cut into blocks of at most gemm_kc (a B panel of one block
 * stays in L2), B is packed in chunks of at most gemm_nc floats (a chunk
 * stays in the last-level cache while the row panels of A stream past it);
 * the policy's numbers (ENCO_GEMM_KC, ENCO_GEMM_NC, ENCO_GEMM_MB), defaults
 * 4096, 1048576 and 4 row panels per work-item. */
static size_t tune(int v) { return (size_t)v; }

/* The B operand of gemm_packed: a matrix (op(B) = B or B^T, kind 0) or the
 * column matrix of a convolution input x, built while packing (kind 1:
 * op(B) = im2col(x), kind 2: its transpose). sb is the batch stride of B or
 * of x. */
typedef struct bsrc {
    int kind, tb;
    cl_mem b;
    size_t b_off, ldb, sb;
    const enco_im2col_geom *g;
} bsrc;

static enco_status pack_b(enco_ctx *ctx, const bsrc *bs, size_t q0, size_t nq, size_t n,
                          size_t k0, size_t kcs, size_t j0, size_t npan, cl_mem s, size_t bp_off)
{
    const size_t off = bs->b_off + q0 * bs->sb;
    if (bs->kind != 0) {
        const enco_im2col_geom *g = bs->g;
        const size_t gb[3] = {npan, (kcs + GP_KB - 1) / GP_KB, nq};
        return ENCO_RUN(ctx, "gemm", bs->kind == 1 ? "gemm_pack_im2col" : "gemm_pack_im2col_t", 3,
                        gb, NULL, ENCO_ARG_INT(n), ENCO_ARG_INT(k0), ENCO_ARG_INT(kcs),
                        ENCO_ARG_INT(j0), ENCO_ARG_INT(npan), ENCO_ARG_MEM(bs->b),
                        ENCO_ARG_ULONG(off), ENCO_ARG_ULONG(bs->sb), ENCO_ARG_MEM(s),
                        ENCO_ARG_ULONG(bp_off), ENCO_ARG_INT(g->c), ENCO_ARG_INT(g->h),
                        ENCO_ARG_INT(g->w), ENCO_ARG_INT(g->wo), ENCO_ARG_INT(g->kh),
                        ENCO_ARG_INT(g->kw), ENCO_ARG_INT(g->sh), ENCO_ARG_INT(g->sw),
                        ENCO_ARG_INT(g->pt), ENCO_ARG_INT(g->pl), ENCO_ARG_INT(g->mode));
    }
    if (bs->tb) {
        const size_t gb[3] = {npan, (kcs + GP_KB - 1) / GP_KB, nq};
        return ENCO_RUN(ctx, "gemm", "gemm_pack_bt", 3, gb, NULL, ENCO_ARG_INT(n),
                        ENCO_ARG_INT(k0), ENCO_ARG_INT(kcs), ENCO_ARG_INT(j0), ENCO_ARG_INT(npan),
                        ENCO_ARG_MEM(bs->b), ENCO_ARG_ULONG(off), ENCO_ARG_INT(bs->ldb),
                        ENCO_ARG_ULONG(bs->sb), ENCO_ARG_MEM(s), ENCO_ARG_ULONG(bp_off));
    }
    const size_t gb[3] = {(kcs + GP_PR - 1) / GP_PR, (npan + GP_PB - 1) / GP_PB, nq};
    return ENCO_RUN(ctx, "gemm", "gemm_pack_b", 3, gb, NULL, ENCO_ARG_INT(n), ENCO_ARG_INT(k0),
                    ENCO_ARG_INT(kcs), ENCO_ARG_INT(j0), ENCO_ARG_INT(npan), ENCO_ARG_MEM(bs->b),
                    ENCO_ARG_ULONG(off), ENCO_ARG_INT(bs->ldb), ENCO_ARG_ULONG(bs->sb),
                    ENCO_ARG_MEM(s), ENCO_ARG_ULONG(bp_off));
}

/* bias: NULL, or m floats from bias_off added to the rows of C at the
 * finish (C = alpha * sum + bias; beta is then not used). */
static enco_status gemm_packed(enco_ctx *ctx, int ta, const bsrc *bs, size_t m, size_t n,
                               size_t k, float alpha, cl_mem a, size_t a_off, size_t lda,
                               size_t sa, float beta, cl_mem c, size_t c_off, size_t ldc,
                               size_t sc, size_t batch, cl_mem bias, size_t bias_off)
{
    const size_t kc_max = tune(ctx->policy.gemm_kc), nc_floats = tune(ctx->policy.gemm_nc);
    const size_t mb = tune(ctx->policy.gemm_mb);
    const size_t mpan = (m + GA_MR - 1) / GA_MR, mpad = mpan * GA_MR;
    const size_t npad = enco_round_up(n, GP_NR);
    const size_t nsplit = (k + kc_max - 1) / kc_max, kc = (k + nsplit - 1) / nsplit;
    /* A shared by the batch (stride 0) is packed once. */
    const size_t batch_a = sa ? batch : 1, ap_stride = sa ? mpad * k : 0;
    size_t nc, qg;
    if (npad * kc <= nc_floats) {
        nc = npad;
        qg = nc_floats / (npad * kc);
        qg = qg < 1 ? 1 : qg > batch ? batch : qg;
    } else {
        nc = nc_floats / kc / GP_NR * GP_NR;
        nc = nc < GP_NR ? GP_NR : nc;
        qg = 1;
    }
    const size_t ap_size = batch_a * mpad * k, bp_size = qg * nc * kc;
    const size_t p_size = nsplit > 1 ? qg * mpad * nc : 0;
    cl_mem s;
    ENCO_TRY(enco_ctx_scratch(ctx, ENCO_SCRATCH_GEMM, (ap_size + bp_size + p_size) * sizeof(float),
                              &s));
    const size_t ap_off = 0, bp_off = ap_size, p_off = ap_size + bp_size;

    const size_t lone[3] = {1, 1, 1};
    const size_t ga[3] = {mpan, (k + GP_KB - 1) / GP_KB, batch_a};
    ENCO_TRY(ENCO_RUN(ctx, "gemm", "gemm_pack_a", 3, ga, NULL, ENCO_ARG_INT(ta), ENCO_ARG_INT(m),
                      ENCO_ARG_INT(k), ENCO_ARG_MEM(a), ENCO_ARG_ULONG(a_off), ENCO_ARG_INT(lda),
                      ENCO_ARG_ULONG(sa), ENCO_ARG_MEM(s), ENCO_ARG_ULONG(ap_off)));
    for (size_t q0 = 0; q0 < batch; q0 += qg) {
        const size_t nq = batch - q0 < qg ? batch - q0 : qg;
        for (size_t j0 = 0; j0 < n; j0 += nc) {
            const size_t cols = n - j0 < nc ? n - j0 : nc, npan = (cols + GP_NR - 1) / GP_NR;
            for (size_t sp = 0; sp < nsplit; sp++) {
                const size_t k0 = sp * kc, kcs = k - k0 < kc ? k - k0 : kc;
                ENCO_TRY(pack_b(ctx, bs, q0, nq, n, k0, kcs, j0, npan, s, bp_off));
                const int mode = (sp > 0 ? 1 : 0) | (sp + 1 == nsplit ? 2 : 0);
                const size_t gm[3] = {(mpan + mb - 1) / mb, npan, nq};
                ENCO_TRY(ENCO_RUN(
                    ctx, "gemm", "gemm_packed", 3, gm, lone, ENCO_ARG_INT(m), ENCO_ARG_INT(n),
                    ENCO_ARG_INT(k), ENCO_ARG_INT(k0), ENCO_ARG_INT(kcs), ENCO_ARG_INT(j0),
                    ENCO_ARG_INT(npan), ENCO_ARG_INT(mode), ENCO_ARG_INT(mb), ENCO_ARG_FLOAT(alpha),
                    ENCO_ARG_FLOAT(beta), ENCO_ARG_MEM(s), ENCO_ARG_ULONG(ap_off + q0 * ap_stride),
                    ENCO_ARG_ULONG(ap_stride), ENCO_ARG_MEM(s), ENCO_ARG_ULONG(bp_off),
                    ENCO_ARG_MEM(s), ENCO_ARG_ULONG(p_off), ENCO_ARG_MEM(c),
                    ENCO_ARG_ULONG(c_off + q0 * sc), ENCO_ARG_INT(ldc), ENCO_ARG_ULONG(sc),
                    ENCO_ARG_MEM(bias ? bias : c), ENCO_ARG_ULONG(bias_off),
                    ENCO_ARG_INT(bias != NULL)));
            }
        }
    }
    return ENCO_OK;
}

static enco_status gemm_builtin(enco_ctx *ctx, int ta, int tb, size_t m, size_t n, size_t k,
                                float alpha, cl_mem a, size_t a_off, size_t lda, size_t sa,
                                cl_mem b, size_t b_off, size_t ldb, size_t sb, float beta, cl_mem c,
                                size_t c_off, size_t ldc, size_t sc, size_t batch)
{
    const size_t local[3] = {16, 16, 1};
    const size_t global[3] = {n, m, batch};
    return ENCO_RUN(ctx, "gemm", "gemm_builtin", 3, global, local, ENCO_ARG_INT(ta),
                    ENCO_ARG_INT(tb), ENCO_ARG_INT(m), ENCO_ARG_INT(n), ENCO_ARG_INT(k),
                    ENCO_ARG_FLOAT(alpha), ENCO_ARG_MEM(a), ENCO_ARG_ULONG(a_off),
                    ENCO_ARG_INT(lda), ENCO_ARG_ULONG(sa), ENCO_ARG_MEM(b), ENCO_ARG_ULONG(b_off),
                    ENCO_ARG_INT(ldb), ENCO_ARG_ULONG(sb), ENCO_ARG_FLOAT(beta), ENCO_ARG_MEM(c),
                    ENCO_ARG_ULONG(c_off), ENCO_ARG_INT(ldc), ENCO_ARG_ULONG(sc));
}

static enco_status check_dims(size_t m, size_t n, size_t k)
{
    if (m == 0 || n == 0 || k == 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "GEMM with an empty dimension (%zu x %zu x %zu)", m,
                         n, k);
    if (m > 0x7fffffff || n > 0x7fffffff || k > 0x7fffffff)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "GEMM dimension too large");
    return ENCO_OK;
}

enco_status enco_sgemm(enco_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                       float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                       size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc)
{
    ENCO_TRY(check_dims(m, n, k));
    if (ctx->gemm == ENCO_GEMM_BUILTIN)
        return gemm_builtin(ctx, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, 0, b, b_off, ldb,
                            0, beta, c, c_off, ldc, 0, 1);
    if (use_packed(ctx)) {
        const bsrc bs = {0, trans_b, b, b_off, ldb, 0, NULL};
        return gemm_packed(ctx, trans_a, &bs, m, n, k, alpha, a, a_off, lda, 0, beta, c, c_off,
                           ldc, 0, 1, NULL, 0);
    }
    if (ctx->trace)
        enco_trace_gemm_call(ctx, &(enco_trace_gemm){trans_a, trans_b, m, n, k, alpha, beta, a, b,
                                                     c, a_off, lda, 0, b_off, ldb, 0, c_off, ldc,
                                                     0, 0});
    CLBlastStatusCode s = CLBlastSgemm(
        CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
        trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off, lda, b,
        b_off, ldb, beta, c, c_off, ldc, &ctx->queue, NULL);
    if (s != CLBlastSuccess)
        return ENCO_FAIL((enco_status)s, "CLBlastSgemm(%c%c, %zu x %zu x %zu) failed",
                         trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k);
    return ENCO_OK;
}

enco_status enco_sgemm_batched(enco_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n,
                               size_t k, float alpha, cl_mem a, size_t a_off, size_t lda,
                               size_t stride_a, cl_mem b, size_t b_off, size_t ldb,
                               size_t stride_b, float beta, cl_mem c, size_t c_off, size_t ldc,
                               size_t stride_c, size_t batch)
{
    ENCO_TRY(check_dims(m, n, k));
    if (batch == 0)
        return ENCO_OK;
    if (ctx->gemm == ENCO_GEMM_BUILTIN)
        return gemm_builtin(ctx, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, stride_a, b,
                            b_off, ldb, stride_b, beta, c, c_off, ldc, stride_c, batch);
    if (use_packed(ctx)) {
        const bsrc bs = {0, trans_b, b, b_off, ldb, stride_b, NULL};
        return gemm_packed(ctx, trans_a, &bs, m, n, k, alpha, a, a_off, lda, stride_a, beta, c,
                           c_off, ldc, stride_c, batch, NULL, 0);
    }
    if (batch == 1)
        return enco_sgemm(ctx, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, b, b_off, ldb,
                          beta, c, c_off, ldc);
    if (ctx->trace)
        enco_trace_gemm_call(ctx, &(enco_trace_gemm){trans_a, trans_b, m, n, k, alpha, beta, a, b,
                                                     c, a_off, lda, stride_a, b_off, ldb,
                                                     stride_b, c_off, ldc, stride_c, batch});
    CLBlastStatusCode s = CLBlastSgemmStridedBatched(
        CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
        trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off, lda,
        stride_a, b, b_off, ldb, stride_b, beta, c, c_off, ldc, stride_c, batch, &ctx->queue,
        NULL);
    if (s != CLBlastSuccess)
        return ENCO_FAIL((enco_status)s,
                         "CLBlastSgemmStridedBatched(%c%c, %zu x %zu x %zu, batch %zu) failed",
                         trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, batch);
    return ENCO_OK;
}

/* Calls CLBlast directly: a recorded GEMM was a CLBlast call, and a replay
 * must not take another path if the policy changed since. */
enco_status enco_gemm_replay(enco_ctx *ctx, const enco_trace_gemm *g)
{
    const CLBlastTranspose ta = g->ta ? CLBlastTransposeYes : CLBlastTransposeNo;
    const CLBlastTranspose tb = g->tb ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastStatusCode s =
        g->batch == 0
            ? CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, g->m, g->n, g->k, g->alpha, g->a,
                           g->a_off, g->lda, g->b, g->b_off, g->ldb, g->beta, g->c, g->c_off,
                           g->ldc, &ctx->queue, NULL)
            : CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, g->m, g->n, g->k,
                                         g->alpha, g->a, g->a_off, g->lda, g->sa, g->b, g->b_off,
                                         g->ldb, g->sb, g->beta, g->c, g->c_off, g->ldc, g->sc,
                                         g->batch, &ctx->queue, NULL);
    if (s != CLBlastSuccess)
        return ENCO_FAIL((enco_status)s, "replaying a CLBlast GEMM (%zu x %zu x %zu) failed",
                         g->m, g->n, g->k);
    return ENCO_OK;
}

int enco_sgemm_im2col_available(const enco_ctx *ctx)
{
    return use_packed(ctx);
}

/* The implicit im2col GEMMs exist only as packed CPU kernels. */
static enco_status require_packed(const enco_ctx *ctx, const char *what)
{
    if (use_packed(ctx))
        return ENCO_OK;
    return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s needs the packed CPU GEMM (device %s)", what,
                     ctx->info.name);
}

/* The fused implicit-im2col GEMM (cl/gemm.cl gemm_im2col_fused) keeps a
 * block of at most the policy's gemm_fused_kb (ENCO_GEMM_FUSED_KB, default 2304) K values of one
 * 16-pixel panel in local memory. Measured on PoCL (2 cores, alternated A/B
 * runs, 256x256 model): 5-25 % faster than packing into the last-level
 * cache for the forwards and flipped input gradients with K up to 2304
 * (64-channel layers at full resolution most); a 4096-long panel (256 KiB)
 * was up to 8 % slower, as it no longer shares L2 with the A stream, hence
 * the blocks. gemm_fused OFF (ENCO_GEMM_FUSED=0) turns it off (the separate
 * packing kernels). */

static size_t fused_kb(const enco_ctx *ctx, size_t k)
{
    if (ctx->policy.gemm_fused == ENCO_PATH_OFF)
        return 0;
    size_t kb = tune(ctx->policy.gemm_fused_kb);
    const size_t fit = ctx->info.local_mem_bytes / (GP_NR * sizeof(float));
    kb = kb < fit ? kb : fit;
    if (kb < GP_KB)
        return 0;
    /* Blocks of equal length (no short tail block). */
    const size_t nb = (k + kb - 1) / kb;
    return (k + nb - 1) / nb;
}

static enco_status gemm_im2col_fused(enco_ctx *ctx, int ta, size_t kb, size_t m, size_t n,
                                     size_t k, float alpha, cl_mem a, size_t a_off, size_t lda,
                                     size_t sa, cl_mem x, size_t x_off, size_t stride_x,
                                     const enco_im2col_geom *g, float beta, cl_mem c, size_t c_off,
                                     size_t ldc, size_t sc, size_t batch, cl_mem bias,
                                     size_t bias_off)
{
    if (sa != 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "gemm_im2col_fused: A must be shared by the batch");
    const size_t mpan = (m + GA_MR - 1) / GA_MR, npan = (n + GP_NR - 1) / GP_NR;
    const size_t ap_size = mpan * GA_MR * k;
    const size_t p_size = kb < k ? batch * mpan * GA_MR * npan * GP_NR : 0;
    cl_mem s;
    ENCO_TRY(enco_ctx_scratch(ctx, ENCO_SCRATCH_GEMM, (ap_size + p_size) * sizeof(float), &s));
    const size_t ga[3] = {mpan, (k + GP_KB - 1) / GP_KB, 1};
    ENCO_TRY(ENCO_RUN(ctx, "gemm", "gemm_pack_a", 3, ga, NULL, ENCO_ARG_INT(ta), ENCO_ARG_INT(m),
                      ENCO_ARG_INT(k), ENCO_ARG_MEM(a), ENCO_ARG_ULONG(a_off), ENCO_ARG_INT(lda),
                      ENCO_ARG_ULONG(0), ENCO_ARG_MEM(s), ENCO_ARG_ULONG(0)));
    const size_t gl[2] = {npan, batch}, one[2] = {1, 1};
    return ENCO_RUN(ctx, "gemm", "gemm_im2col_fused", 2, gl, one, ENCO_ARG_INT(m), ENCO_ARG_INT(n),
                    ENCO_ARG_INT(k), ENCO_ARG_INT(kb), ENCO_ARG_FLOAT(alpha), ENCO_ARG_FLOAT(beta),
                    ENCO_ARG_MEM(s), ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off),
                    ENCO_ARG_ULONG(stride_x), ENCO_ARG_MEM(s), ENCO_ARG_ULONG(ap_size),
                    ENCO_ARG_INT(npan * GP_NR), ENCO_ARG_MEM(c), ENCO_ARG_ULONG(c_off),
                    ENCO_ARG_INT(ldc), ENCO_ARG_ULONG(sc), ENCO_ARG_MEM(bias ? bias : c),
                    ENCO_ARG_ULONG(bias_off), ENCO_ARG_INT(bias != NULL),
                    ENCO_ARG_LOCAL(kb * GP_NR * sizeof(float)),
                    ENCO_ARG_INT(g->c), ENCO_ARG_INT(g->h), ENCO_ARG_INT(g->w), ENCO_ARG_INT(g->wo),
                    ENCO_ARG_INT(g->kh), ENCO_ARG_INT(g->kw), ENCO_ARG_INT(g->sh),
                    ENCO_ARG_INT(g->sw), ENCO_ARG_INT(g->pt), ENCO_ARG_INT(g->pl),
                    ENCO_ARG_INT(g->mode));
}

/* ta: 0, or 2 for the flipped convolution weights (gemm_pack_a). */
static enco_status sgemm_im2col(enco_ctx *ctx, int ta, int transposed, size_t m, float alpha,
                                cl_mem a, size_t a_off, size_t lda, size_t stride_a, cl_mem x,
                                size_t x_off, size_t stride_x, const enco_im2col_geom *g,
                                float beta, cl_mem c, size_t c_off, size_t ldc, size_t stride_c,
                                size_t batch, cl_mem bias, size_t bias_off)
{
    ENCO_TRY(require_packed(ctx, "enco_sgemm_im2col"));
    if (bias && (transposed || beta != 0.0f))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "enco_sgemm_im2col: a bias needs the untransposed product and beta 0");
    const size_t kk = (size_t)g->c * g->kh * g->kw, pp = (size_t)g->ho * g->wo;
    const size_t n = transposed ? kk : pp, k = transposed ? pp : kk;
    ENCO_TRY(check_dims(m, n, k));
    if (batch == 0)
        return ENCO_OK;
    const size_t kb = transposed ? 0 : fused_kb(ctx, k);
    if (kb)
        return gemm_im2col_fused(ctx, ta, kb, m, n, k, alpha, a, a_off, lda, stride_a, x, x_off,
                                 stride_x, g, beta, c, c_off, ldc, stride_c, batch, bias,
                                 bias_off);
    const bsrc bs = {transposed ? 2 : 1, 0, x, x_off, 0, stride_x, g};
    return gemm_packed(ctx, ta, &bs, m, n, k, alpha, a, a_off, lda, stride_a, beta, c, c_off, ldc,
                       stride_c, batch, bias, bias_off);
}

enco_status enco_sgemm_im2col(enco_ctx *ctx, int transposed, size_t m, float alpha, cl_mem a,
                              size_t a_off, size_t lda, size_t stride_a, cl_mem x, size_t x_off,
                              size_t stride_x, const enco_im2col_geom *g, float beta, cl_mem c,
                              size_t c_off, size_t ldc, size_t stride_c, size_t batch,
                              cl_mem bias, size_t bias_off)
{
    return sgemm_im2col(ctx, 0, transposed, m, alpha, a, a_off, lda, stride_a, x, x_off, stride_x,
                        g, beta, c, c_off, ldc, stride_c, batch, bias, bias_off);
}

enco_status enco_sgemm_im2col_flipped(enco_ctx *ctx, size_t m, float alpha, cl_mem w,
                                      size_t w_off, cl_mem x, size_t x_off, size_t stride_x,
                                      const enco_im2col_geom *g, float beta, cl_mem c,
                                      size_t c_off, size_t ldc, size_t stride_c, size_t batch)
{
    return sgemm_im2col(ctx, 2, 0, m, alpha, w, w_off, (size_t)g->kh * g->kw, 0, x, x_off,
                        stride_x, g, beta, c, c_off, ldc, stride_c, batch, NULL, 0);
}

/* Small K (3-channel inputs: G's 7x7 input conv, K = 147; D's first conv,
 * 48): gemm_conv_wgrad_self, one launch per image, each work-item packing
 * its own dY^T blocks of wgrad_self_kb pixels (default 1024: 64 KiB). There the separate
 * gemm_pack_bt wrote dY^T out and the multiply read it back, two passes
 * through memory of a 33 MB gradient, in 16 launches of each kernel per
 * image. The K panels are split into groups only as far as it takes for 2
 * work-items per compute unit: every group packs dY^T again, and that pass
 * is memory-bound (PoCL, 2 cores, D's first conv: 13 ms with one group, 18
 * with two, 27 with four). The policy's wgrad_self (ENCO_WGRAD_SELF): OFF =
 * never, ON = for every K (tests), AUTO = K < WSELF_K_MAX; wgrad_self_kb
 * (ENCO_WGRAD_SELF_KB): the block (tests). */
#define WSELF_K_MAX 256

static int wgrad_self(const enco_ctx *ctx, size_t kk)
{
    if (ctx->policy.wgrad_self != ENCO_PATH_AUTO)
        return ctx->policy.wgrad_self == ENCO_PATH_ON;
    return kk < WSELF_K_MAX;
}

static enco_status conv_gemm_wgrad_self(enco_ctx *ctx, size_t n, float alpha, cl_mem dy,
                                        size_t dy_off, size_t lddy, cl_mem x, size_t x_off,
                                        const enco_im2col_geom *g, float beta, cl_mem c,
                                        size_t c_off, size_t ldc)
{
    const size_t kk = (size_t)g->c * g->kh * g->kw, pp = (size_t)g->ho * g->wo;
    const size_t npan = (n + GP_NR - 1) / GP_NR, kpan = (kk + GP_MR - 1) / GP_MR;
    size_t kb = tune(ctx->policy.wgrad_self_kb);
    if (kb > pp)
        kb = pp;
    /* Groups of K panels: enough work-items for 2 per compute unit. */
    const size_t want = 2 * (size_t)enco_ctx_device(ctx)->compute_units;
    size_t groups = (want + npan - 1) / npan;
    groups = groups < 1 ? 1 : groups > kpan ? kpan : groups;
    const size_t mb = (kpan + groups - 1) / groups, ng = (kpan + mb - 1) / mb;
    const size_t floats = ng * npan * kb * GP_NR + kpan * GP_MR * npan * GP_NR;
    cl_mem s;
    ENCO_TRY(enco_ctx_scratch(ctx, ENCO_SCRATCH_GEMM, floats * sizeof(float), &s));
    const size_t gl[3] = {ng, npan, 1}, one[3] = {1, 1, 1};
    return ENCO_RUN(ctx, "gemm", "gemm_conv_wgrad_self", 3, gl, one, ENCO_ARG_INT(n),
                    ENCO_ARG_INT(kk), ENCO_ARG_INT(kb), ENCO_ARG_INT(mb), ENCO_ARG_FLOAT(alpha),
                    ENCO_ARG_FLOAT(beta), ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off),
                    ENCO_ARG_MEM(dy), ENCO_ARG_ULONG(dy_off), ENCO_ARG_INT(lddy),
                    ENCO_ARG_MEM(s), ENCO_ARG_ULONG(0), ENCO_ARG_MEM(c), ENCO_ARG_ULONG(c_off),
                    ENCO_ARG_INT(ldc), ENCO_ARG_INT(g->h), ENCO_ARG_INT(g->w),
                    ENCO_ARG_INT(g->ho), ENCO_ARG_INT(g->wo), ENCO_ARG_INT(g->kh),
                    ENCO_ARG_INT(g->kw), ENCO_ARG_INT(g->sh), ENCO_ARG_INT(g->sw),
                    ENCO_ARG_INT(g->pt), ENCO_ARG_INT(g->pl), ENCO_ARG_INT(g->mode));
}

/* K panels per work-item of gemm_conv_wgrad: ENCO_GEMM_MB, as gemm_packed's row panels. */
enco_status enco_conv_gemm_wgrad(enco_ctx *ctx, size_t n, float alpha, cl_mem dy, size_t dy_off,
                                 size_t lddy, cl_mem x, size_t x_off, const enco_im2col_geom *g,
                                 float beta, cl_mem c, size_t c_off, size_t ldc)
{
    ENCO_TRY(require_packed(ctx, "enco_conv_gemm_wgrad"));
    const size_t kk = (size_t)g->c * g->kh * g->kw, pp = (size_t)g->ho * g->wo;
    ENCO_TRY(check_dims(kk, n, pp));
    if (wgrad_self(ctx, kk))
        return conv_gemm_wgrad_self(ctx, n, alpha, dy, dy_off, lddy, x, x_off, g, beta, c, c_off,
                                    ldc);
    const size_t kc_max = tune(ctx->policy.gemm_kc), mb = tune(ctx->policy.gemm_mb);
    const size_t nsplit = (pp + kc_max - 1) / kc_max, kc = (pp + nsplit - 1) / nsplit;
    const size_t npan = (n + GP_NR - 1) / GP_NR, kpan = (kk + GP_MR - 1) / GP_MR;
    const size_t bp_size = npan * GP_NR * kc, p_size = nsplit > 1 ? kpan * GP_MR * npan * GP_NR : 0;
    cl_mem s;
    ENCO_TRY(enco_ctx_scratch(ctx, ENCO_SCRATCH_GEMM, (bp_size + p_size) * sizeof(float), &s));
    const size_t gl[3] = {(kpan + mb - 1) / mb, npan, 1}, one[3] = {1, 1, 1};
    for (size_t sp = 0; sp < nsplit; sp++) {
        const size_t k0 = sp * kc, kcs = pp - k0 < kc ? pp - k0 : kc;
        /* dY^T's block (pixels k0 .. k0 + kcs - 1) in panels of 16 channels. */
        const bsrc bs = {0, 1, dy, dy_off, lddy, 0, NULL};
        ENCO_TRY(pack_b(ctx, &bs, 0, 1, n, k0, kcs, 0, npan, s, 0));
        const int mode = (sp > 0 ? 1 : 0) | (sp + 1 == nsplit ? 2 : 0);
        ENCO_TRY(ENCO_RUN(ctx, "gemm", "gemm_conv_wgrad", 3, gl, one, ENCO_ARG_INT(n),
                          ENCO_ARG_INT(kk), ENCO_ARG_INT(k0), ENCO_ARG_INT(kcs),
                          ENCO_ARG_INT(mode), ENCO_ARG_INT(mb), ENCO_ARG_FLOAT(alpha),
                          ENCO_ARG_FLOAT(beta), ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off),
                          ENCO_ARG_MEM(s), ENCO_ARG_ULONG(0), ENCO_ARG_MEM(s),
                          ENCO_ARG_ULONG(bp_size), ENCO_ARG_MEM(c), ENCO_ARG_ULONG(c_off),
                          ENCO_ARG_INT(ldc), ENCO_ARG_INT(g->c), ENCO_ARG_INT(g->h),
                          ENCO_ARG_INT(g->w), ENCO_ARG_INT(g->ho), ENCO_ARG_INT(g->wo),
                          ENCO_ARG_INT(g->kh), ENCO_ARG_INT(g->kw), ENCO_ARG_INT(g->sh),
                          ENCO_ARG_INT(g->sw), ENCO_ARG_INT(g->pt), ENCO_ARG_INT(g->pl),
                          ENCO_ARG_INT(g->mode)));
    }
    return ENCO_OK;
}
