/* Philox4x32-10 on the host and the device launchers; see rng.h.
 *
 * The host float code must round exactly as the kernels do: every float
 * operation below is its own statement (C11 forbids contracting across
 * statements, and the build uses -std=c11, i.e. -ffp-contract=off). */
#include "ops/rng.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* ---- generator ---------------------------------------------------------- */

void enco_philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

enco_rng enco_rng_make(uint64_t seed, uint64_t stream)
{
    return (enco_rng){.seed = seed, .stream = stream, .counter = 0};
}

static void rng_block(uint32_t out[4], uint64_t seed, uint64_t stream, uint64_t block)
{
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                             (uint32_t)(stream >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    enco_philox4x32_10(out, ctr, key);
}

uint32_t enco_rng_u32_at(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint32_t b[4];
    rng_block(b, seed, stream, index / 4);
    return b[index % 4];
}

/* Elements first .. first+n-1 of the sequence, one Philox block per 4. */
static void rng_peek(const enco_rng *rng, uint64_t first, uint32_t *out, size_t n)
{
    size_t i = 0;
    uint64_t e = first;
    while (i < n) {
        uint32_t b[4];
        rng_block(b, rng->seed, rng->stream, e / 4);
        for (unsigned k = (unsigned)(e % 4); k < 4 && i < n; k++, i++, e++)
            out[i] = b[k];
    }
}

void enco_rng_u32(enco_rng *rng, uint32_t *out, size_t n)
{
    rng_peek(rng, rng->counter, out, n);
    rng->counter += n;
}

/* Buffered one-at-a-time reader for draws whose count is not known up front
 * (rejection sampling): the counter advances only by what is consumed. */
typedef struct rng_reader {
    enco_rng *rng;
    uint32_t buf[256];
    size_t pos, len, refill;
} rng_reader;

static uint32_t reader_next(rng_reader *rd)
{
    if (rd->pos == rd->len) {
        rng_peek(rd->rng, rd->rng->counter, rd->buf, rd->refill);
        rd->pos = 0;
        rd->len = rd->refill;
    }
    rd->rng->counter++;
    return rd->buf[rd->pos++];
}

/* Lemire, "Fast random integer generation in an interval" (2019): the high
 * word of x * range is uniform once the low words below 2^32 mod range are
 * rejected. */
static uint32_t reader_bounded(rng_reader *rd, uint32_t range)
{
    uint64_t m = (uint64_t)reader_next(rd) * range;
    uint32_t low = (uint32_t)m;
    if (low < range) {
        uint32_t threshold = (uint32_t)(0u - range) % range;
        while (low < threshold) {
            m = (uint64_t)reader_next(rd) * range;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

uint32_t enco_rng_bounded(enco_rng *rng, uint32_t range)
{
    if (range <= 1)
        return 0; /* no draw needed: the only value */
    rng_reader rd = {.rng = rng, .refill = 4};
    return reader_bounded(&rd, range);
}

/* ---- host distributions ------------------------------------------------- */

static float uniform_from(uint32_t x, float lo, float hi)
{
    float u = (float)(x >> 8) * 0x1.0p-24f;
    float width = hi - lo;
    float t = width * u;
    float v = lo + t;
    return v < hi ? v : nextafterf(hi, lo);
}

static enco_status check_range(float lo, float hi)
{
    if (!isfinite(lo) || !isfinite(hi) || !(lo < hi) || !isfinite(hi - lo))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "uniform range [%g, %g) must be finite with lo < hi (and hi - lo finite)",
                         (double)lo, (double)hi);
    return ENCO_OK;
}

enco_status enco_rng_uniform(enco_rng *rng, float *out, size_t n, float lo, float hi)
{
    ENCO_TRY(check_range(lo, hi));
    uint32_t buf[256];
    for (size_t i = 0; i < n; i += 256) {
        size_t m = n - i < 256 ? n - i : 256;
        enco_rng_u32(rng, buf, m);
        for (size_t k = 0; k < m; k++)
            out[i + k] = uniform_from(buf[k], lo, hi);
    }
    return ENCO_OK;
}

/* 53-bit uniform from two words: (a >> 5) * 2^26 + (b >> 6), scaled by 2^-53. */
static double u53(uint32_t a, uint32_t b)
{
    return ((double)(a >> 5) * 67108864.0 + (double)(b >> 6)) * 0x1.0p-53;
}

enco_status enco_rng_normal(enco_rng *rng, float *out, size_t n, double mean, double std)
{
    if (!isfinite(mean) || !isfinite(std) || std < 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "normal: mean %g and std %g must be finite, std >= 0",
                         mean, std);
    const double two_pi = 6.283185307179586476925286766559;
    uint32_t buf[256];
    size_t pairs = (n + 1) / 2;
    for (size_t p = 0; p < pairs; p += 64) {
        size_t m = pairs - p < 64 ? pairs - p : 64;
        enco_rng_u32(rng, buf, 4 * m);
        for (size_t k = 0; k < m; k++) {
            const uint32_t *w = buf + 4 * k;
            double u1 = 1.0 - u53(w[0], w[1]); /* (0, 1]: log stays finite */
            double u2 = u53(w[2], w[3]);
            double radius = sqrt(-2.0 * log(u1));
            size_t i = 2 * (p + k);
            out[i] = (float)(mean + std * radius * cos(two_pi * u2));
            if (i + 1 < n)
                out[i + 1] = (float)(mean + std * radius * sin(two_pi * u2));
        }
    }
    return ENCO_OK;
}

enco_status enco_rng_permutation(enco_rng *rng, int32_t *perm, size_t n)
{
    if (n > (size_t)INT32_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "permutation of %zu elements: at most %d", n,
                         (int)INT32_MAX);
    for (size_t i = 0; i < n; i++)
        perm[i] = (int32_t)i;
    rng_reader rd = {.rng = rng, .refill = 256};
    for (size_t i = n; i-- > 1;) {
        uint32_t j = reader_bounded(&rd, (uint32_t)(i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    return ENCO_OK;
}

static enco_status xavier_std(size_t fan_in, size_t fan_out, double gain, double *std)
{
    if (fan_in == 0 || fan_out == 0 || !(gain > 0) || !isfinite(gain))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "xavier_normal: fan_in %zu and fan_out %zu must be >= 1, gain %g > 0",
                         fan_in, fan_out, gain);
    *std = gain * sqrt(2.0 / ((double)fan_in + (double)fan_out));
    return ENCO_OK;
}

enco_status enco_rng_xavier_normal(enco_rng *rng, float *w, size_t n, size_t fan_in,
                                   size_t fan_out, double gain)
{
    double std;
    ENCO_TRY(xavier_std(fan_in, fan_out, gain, &std));
    return enco_rng_normal(rng, w, n, 0.0, std);
}

/* ---- device ------------------------------------------------------------- */

static enco_status check_buffer(cl_mem buf, size_t off, size_t n, size_t elem, const char *what)
{
    return enco_check_range("rng", what, buf, off, n, elem);
}

/* Number of Philox blocks touched by elements [first, first + n), n >= 1. */
static size_t blocks_spanned(uint64_t first, size_t n)
{
    return (size_t)((first + n - 1) / 4 - first / 4 + 1);
}

enco_status enco_rng_fill_u32(enco_ctx *ctx, cl_mem out, size_t out_off, enco_rng *rng, size_t n)
{
    if (!rng)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "rng_fill_u32: NULL generator state");
    ENCO_TRY(check_buffer(out, out_off, n, sizeof(cl_uint), "rng_fill_u32 out"));
    if (n == 0)
        return ENCO_OK;
    const size_t global = blocks_spanned(rng->counter, n), local = 64;
    ENCO_TRY(ENCO_RUN(ctx, "rng", "rng_fill_u32", 1, &global, &local, ENCO_ARG_MEM(out),
                      ENCO_ARG_ULONG(out_off), ENCO_ARG_ULONG(n), ENCO_ARG_ULONG(rng->seed),
                      ENCO_ARG_ULONG(rng->stream), ENCO_ARG_ULONG(rng->counter)));
    rng->counter += n;
    return ENCO_OK;
}

enco_status enco_rng_fill_uniform(enco_ctx *ctx, cl_mem out, size_t out_off, enco_rng *rng,
                                  size_t n, float lo, float hi)
{
    if (!rng)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "rng_fill_uniform: NULL generator state");
    ENCO_TRY(check_range(lo, hi));
    ENCO_TRY(check_buffer(out, out_off, n, sizeof(cl_float), "rng_fill_uniform out"));
    if (n == 0)
        return ENCO_OK;
    const size_t global = blocks_spanned(rng->counter, n), local = 64;
    ENCO_TRY(ENCO_RUN(ctx, "rng", "rng_fill_uniform", 1, &global, &local, ENCO_ARG_MEM(out),
                      ENCO_ARG_ULONG(out_off), ENCO_ARG_ULONG(n), ENCO_ARG_ULONG(rng->seed),
                      ENCO_ARG_ULONG(rng->stream), ENCO_ARG_ULONG(rng->counter),
                      ENCO_ARG_FLOAT(lo), ENCO_ARG_FLOAT(hi)));
    rng->counter += n;
    return ENCO_OK;
}

enco_status enco_rng_xavier_normal_upload(enco_ctx *ctx, cl_mem w, size_t w_off, enco_rng *rng,
                                          size_t n, size_t fan_in, size_t fan_out, double gain)
{
    if (!rng)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "xavier_normal: NULL generator state");
    double std;
    ENCO_TRY(xavier_std(fan_in, fan_out, gain, &std));
    ENCO_TRY(check_buffer(w, w_off, n, sizeof(cl_float), "xavier_normal weight"));
    if (n == 0)
        return ENCO_OK;
    float *host = malloc(n * sizeof(float));
    if (!host)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "xavier_normal: no host memory for %zu floats", n);
    enco_status st = enco_rng_normal(rng, host, n, 0.0, std);
    if (st == ENCO_OK)
        st = enco_upload(ctx, w, w_off * sizeof(float), n * sizeof(float), host);
    free(host);
    return st;
}

enco_op_cost enco_rng_fill_u32_cost(size_t n) { return (enco_op_cost){0.0, 4.0 * (double)n}; }

enco_op_cost enco_rng_fill_uniform_cost(size_t n)
{
    /* int->float, scale, multiply, add, compare per element */
    return (enco_op_cost){4.0 * (double)n, 4.0 * (double)n};
}
