/* SGEMM dispatch: CLBlast, or our own kernel where CLBlast cannot run. */
#include "cl/ctx.h"

#include <clblast_c.h>
#include <stdlib.h>
#include <string.h>

/* On CPU devices CLBlast's kernels (untuned for PoCL) reach a few GFLOP/s;
 * our register-tiled kernel (cl/gemm.cl gemm_tile) is several times faster
 * there for op(B) = B. ENCO_GEMM_TILE=0 turns it off (CLBlast for all). */
static int use_tile(const enco_ctx *ctx, int trans_b)
{
    if (trans_b || ctx->gemm != ENCO_GEMM_CLBLAST || strcmp(ctx->info.type, "CPU") != 0)
        return 0;
    const char *env = getenv("ENCO_GEMM_TILE");
    return !(env && strcmp(env, "0") == 0);
}

static enco_status gemm_tile(enco_ctx *ctx, int ta, size_t m, size_t n, size_t k, float alpha,
                             cl_mem a, size_t a_off, size_t lda, size_t sa, cl_mem b,
                             size_t b_off, size_t ldb, size_t sb, float beta, cl_mem c,
                             size_t c_off, size_t ldc, size_t sc, size_t batch)
{
    const size_t local[3] = {1, 1, 1};
    const size_t global[3] = {(m + 5) / 6, (n + 15) / 16, batch};
    return ENCO_RUN(ctx, "gemm", "gemm_tile", 3, global, local, ENCO_ARG_INT(ta),
                    ENCO_ARG_INT(m), ENCO_ARG_INT(n), ENCO_ARG_INT(k), ENCO_ARG_FLOAT(alpha),
                    ENCO_ARG_MEM(a), ENCO_ARG_ULONG(a_off), ENCO_ARG_INT(lda), ENCO_ARG_ULONG(sa),
                    ENCO_ARG_MEM(b), ENCO_ARG_ULONG(b_off), ENCO_ARG_INT(ldb), ENCO_ARG_ULONG(sb),
                    ENCO_ARG_FLOAT(beta), ENCO_ARG_MEM(c), ENCO_ARG_ULONG(c_off),
                    ENCO_ARG_INT(ldc), ENCO_ARG_ULONG(sc));
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
    if (use_tile(ctx, trans_b))
        return gemm_tile(ctx, trans_a, m, n, k, alpha, a, a_off, lda, 0, b, b_off, ldb, 0, beta, c,
                         c_off, ldc, 0, 1);
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
    if (use_tile(ctx, trans_b))
        return gemm_tile(ctx, trans_a, m, n, k, alpha, a, a_off, lda, stride_a, b, b_off, ldb,
                         stride_b, beta, c, c_off, ldc, stride_c, batch);
    if (batch == 1)
        return enco_sgemm(ctx, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, b, b_off, ldb,
                          beta, c, c_off, ldc);
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
