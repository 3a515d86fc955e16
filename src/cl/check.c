/* Device self check: one kernel of ours and one SGEMM against the CPU. */
#include "cl/ctx.h"

#include <math.h>
#include <stdlib.h>

#define CHECK_N 1000
#define GEMM_M 67
#define GEMM_N 45
#define GEMM_K 83

static float pattern(unsigned i, unsigned salt)
{
    /* Deterministic values in [-1, 1) without pulling in the RNG. */
    uint32_t x = i * 2654435761u + salt * 40503u;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    return (float)(x & 0xffffff) / (float)0x800000 - 1.0f;
}

static enco_status check_kernel(enco_ctx *ctx, float *x, float *y, cl_mem bx, cl_mem by,
                                enco_check_result *res)
{
    const float a = 0.75f, b = -0.5f;
    for (unsigned i = 0; i < CHECK_N; i++) {
        x[i] = pattern(i, 1);
        y[i] = pattern(i, 2);
    }
    ENCO_TRY(enco_upload(ctx, bx, 0, CHECK_N * sizeof(float), x));
    ENCO_TRY(enco_upload(ctx, by, 0, CHECK_N * sizeof(float), y));
    const size_t global = CHECK_N, local = 64;
    ENCO_TRY(ENCO_RUN(ctx, "selftest", "selftest_axpby_tanh", 1, &global, &local,
                      ENCO_ARG_INT(CHECK_N), ENCO_ARG_FLOAT(a), ENCO_ARG_MEM(bx), ENCO_ARG_FLOAT(b),
                      ENCO_ARG_MEM(by)));
    float *out = x + CHECK_N; /* x has room for 2N */
    ENCO_TRY(enco_download(ctx, by, 0, CHECK_N * sizeof(float), out));
    double max_err = 0;
    for (unsigned i = 0; i < CHECK_N; i++) {
        double ref = tanh((double)a * x[i] + (double)b * y[i]);
        double err = fabs(ref - out[i]);
        if (!(err <= max_err)) /* also catches NaN */
            max_err = isnan(err) ? INFINITY : err;
    }
    res->kernel_max_err = max_err;
    res->kernel_ok = max_err <= 1e-5;
    return ENCO_OK;
}

static enco_status check_gemm(enco_ctx *ctx, float *a, float *b, float *c, cl_mem ba, cl_mem bb,
                              cl_mem bc, enco_check_result *res)
{
    for (unsigned i = 0; i < GEMM_M * GEMM_K; i++)
        a[i] = pattern(i, 3);
    for (unsigned i = 0; i < GEMM_K * GEMM_N; i++)
        b[i] = pattern(i, 4);
    ENCO_TRY(enco_upload(ctx, ba, 0, GEMM_M * GEMM_K * sizeof(float), a));
    ENCO_TRY(enco_upload(ctx, bb, 0, GEMM_K * GEMM_N * sizeof(float), b));
    ENCO_TRY(enco_sgemm(ctx, 0, 0, GEMM_M, GEMM_N, GEMM_K, 1.0f, ba, 0, GEMM_K, bb, 0, GEMM_N, 0.0f,
                        bc, 0, GEMM_N));
    ENCO_TRY(enco_download(ctx, bc, 0, GEMM_M * GEMM_N * sizeof(float), c));
    double max_rel = 0;
    for (unsigned i = 0; i < GEMM_M; i++)
        for (unsigned j = 0; j < GEMM_N; j++) {
            double ref = 0, mag = 0;
            for (unsigned k = 0; k < GEMM_K; k++) {
                double p = (double)a[i * GEMM_K + k] * b[k * GEMM_N + j];
                ref += p;
                mag += fabs(p);
            }
            /* Error relative to the sum of magnitudes: the float32 rounding scale. */
            double rel = fabs(ref - c[i * GEMM_N + j]) / (mag > 0 ? mag : 1);
            if (!(rel <= max_rel))
                max_rel = isnan(rel) ? INFINITY : rel;
        }
    res->gemm_max_err = max_rel;
    res->gemm_ok = max_rel <= 1e-5;
    return ENCO_OK;
}

enco_status enco_ctx_self_check(enco_ctx *ctx, enco_check_result *res)
{
    res->kernel_ok = res->gemm_ok = 0;
    res->kernel_max_err = res->gemm_max_err = INFINITY;
    res->gemm_backend = ctx->gemm == ENCO_GEMM_BUILTIN ? "builtin" : "CLBlast";

    size_t host_floats = 2 * CHECK_N + GEMM_M * GEMM_K + GEMM_K * GEMM_N + GEMM_M * GEMM_N;
    float *host = malloc(host_floats * sizeof(float));
    if (!host)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    float *y = malloc(CHECK_N * sizeof(float));
    cl_mem bx = NULL, by = NULL, ba = NULL, bb = NULL, bc = NULL;
    enco_status st = y ? ENCO_OK : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    if (st == ENCO_OK)
        st = enco_buffer_alloc(ctx, CHECK_N * sizeof(float), &bx);
    if (st == ENCO_OK)
        st = enco_buffer_alloc(ctx, CHECK_N * sizeof(float), &by);
    if (st == ENCO_OK)
        st = enco_buffer_alloc(ctx, GEMM_M * GEMM_K * sizeof(float), &ba);
    if (st == ENCO_OK)
        st = enco_buffer_alloc(ctx, GEMM_K * GEMM_N * sizeof(float), &bb);
    if (st == ENCO_OK)
        st = enco_buffer_alloc(ctx, GEMM_M * GEMM_N * sizeof(float), &bc);
    if (st == ENCO_OK)
        st = check_kernel(ctx, host, y, bx, by, res);
    if (st == ENCO_OK) {
        float *a = host + 2 * CHECK_N;
        float *b = a + GEMM_M * GEMM_K;
        float *c = b + GEMM_K * GEMM_N;
        st = check_gemm(ctx, a, b, c, ba, bb, bc, res);
    }
    enco_buffer_free(ctx, bx);
    enco_buffer_free(ctx, by);
    enco_buffer_free(ctx, ba);
    enco_buffer_free(ctx, bb);
    enco_buffer_free(ctx, bc);
    free(y);
    free(host);
    return st;
}
