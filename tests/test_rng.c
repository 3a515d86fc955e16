/* Philox4x32-10: known answers, sequence layout, host/device bit equality,
 * distributions (fixed seeds, so the statistical bounds cannot flake). */
#include "harness.h"
#include "ops/rng.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- known answers -------------------------------------------------------- */

/* Random123 tests/kat_vectors, the three "philox4x32 10" lines
 * (counter[4] key[2] -> output[4]). The same values come out of this
 * independent Python rendering of the published algorithm:
 *
 *   M = 0xFFFFFFFF
 *   def philox(c, k):
 *       for r in range(10):
 *           p0 = 0xD2511F53 * c[0]; p1 = 0xCD9E8D57 * c[2]
 *           c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & M, (p0 >> 32) ^ c[3] ^ k[1], p0 & M]
 *           k = [(k[0] + 0x9E3779B9) & M, (k[1] + 0xBB67AE85) & M]
 *       return c
 */
START_TEST(philox_known_answers)
{
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        enco_philox4x32_10(out, kat[v], kat[v] + 4);
        for (int k = 0; k < 4; k++)
            ck_assert_msg(out[k] == kat[v][6 + k], "vector %d word %d: %08x, expected %08x", v,
                          k, out[k], kat[v][6 + k]);
    }
}
END_TEST

/* The (seed, stream, counter) -> Philox mapping, against the Python above
 * extended by
 *   def u32(seed, stream, e):
 *       b = e // 4
 *       return philox([b & M, b >> 32, stream & M, stream >> 32], [seed & M, seed >> 32])[e % 4]
 */
START_TEST(sequence_layout)
{
    const uint64_t seed = 0x0123456789ABCDEFULL, stream = 7;
    static const uint32_t expect[6] = {0xfdbf9305, 0xa6c02cf2, 0xf9a36445,
                                       0x1ee17293, 0x3ec6e16d, 0xc5949040};
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(enco_rng_u32_at(seed, stream, 2 + (uint64_t)i), expect[i]);
    /* High words of block and stream matter. */
    ck_assert_uint_eq(enco_rng_u32_at(5, 0x100000002ULL, (1ULL << 34) + 1), 0x638c7d9c);

    /* Drawing from counter 2 hands out the same elements and advances. */
    enco_rng r = {.seed = seed, .stream = stream, .counter = 2};
    uint32_t got[6];
    enco_rng_u32(&r, got, 3);
    enco_rng_u32(&r, got + 3, 3);
    ck_assert_uint_eq(r.counter, 8);
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(got[i], expect[i]);

    enco_rng a = enco_rng_make(9, 1);
    ck_assert(a.seed == 9 && a.stream == 1 && a.counter == 0);
    /* Streams and seeds give different sequences. */
    ck_assert_uint_ne(enco_rng_u32_at(9, 1, 0), enco_rng_u32_at(9, 2, 0));
    ck_assert_uint_ne(enco_rng_u32_at(9, 1, 0), enco_rng_u32_at(10, 1, 0));
}
END_TEST

/* Lemire bounded integers and Fisher-Yates, against the Python above with
 *   def bounded(r, n):             # r.next() = u32(seed, stream, c); c += 1
 *       while True:
 *           m = r.next() * n
 *           if (m & M) >= (2**32 - n) % n: return m >> 32
 *   def perm(r, n):
 *       p = list(range(n))
 *       for i in range(n - 1, 0, -1):
 *           j = bounded(r, i + 1); p[i], p[j] = p[j], p[i]
 *       return p
 */
START_TEST(bounded_and_permutation_known_answers)
{
    enco_rng r = enco_rng_make(42, 3);
    static const uint32_t big[4] = {956974408, 1121218462, 248043725, 1423480854};
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(enco_rng_bounded(&r, 0x80000001u), big[i]);
    ck_assert_uint_eq(r.counter, 7); /* three rejections on the way */

    r = enco_rng_make(42, 3);
    int32_t p[10];
    ENCO_CK(enco_rng_permutation(&r, p, 10));
    static const int32_t expect[10] = {1, 7, 6, 2, 9, 3, 8, 5, 4, 0};
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(p[i], expect[i]);
    ck_assert_uint_eq(r.counter, 9);

    /* range 1 needs no draw */
    uint64_t c = r.counter;
    ck_assert_uint_eq(enco_rng_bounded(&r, 1), 0);
    ck_assert_uint_eq(r.counter, c);
}
END_TEST

/* ---- host / device bit equality ------------------------------------------- */

static cl_mem alloc_bytes(size_t bytes)
{
    cl_mem m = NULL;
    ENCO_CK(enco_buffer_alloc(test_ctx(), bytes, &m));
    return m;
}

static const uint64_t seeds[] = {0, 1, 0xDEADBEEFCAFEF00DULL, ~0ULL};
/* Offsets that start mid-block and one whose block index crosses 2^32. */
static const uint64_t offsets[] = {0, 1, 3, 6, 1001, (1ULL << 34) - 5};

START_TEST(device_u32_matches_host)
{
    enco_ctx *ctx = test_ctx();
    const size_t sizes[] = {1, 3, 8, test_on_oclgrind() ? 37 : 1237};
    const size_t pad = 5, cap = 1237 + 2 * pad;
    cl_mem buf = alloc_bytes(cap * sizeof(uint32_t));
    uint32_t *host = malloc(cap * sizeof(uint32_t)), *dev = malloc(cap * sizeof(uint32_t));
    const uint32_t sentinel = 0xA5A5A5A5u;
    int cases = 0;
    for (size_t si = 0; si < 4; si++)
        for (size_t oi = 0; oi < 6; oi++)
            for (size_t ni = 0; ni < 4; ni++) {
                if (test_on_oclgrind() && (si + oi + ni) % 3 != 0)
                    continue;
                size_t n = sizes[ni];
                enco_rng rh = {.seed = seeds[si], .stream = si * 977 + oi, .counter = offsets[oi]};
                enco_rng rd = rh;
                for (size_t i = 0; i < cap; i++)
                    dev[i] = sentinel;
                ENCO_CK(enco_upload(ctx, buf, 0, cap * sizeof(uint32_t), dev));
                enco_rng_u32(&rh, host, n);
                ENCO_CK(enco_rng_fill_u32(ctx, buf, pad, &rd, n));
                ENCO_CK(enco_download(ctx, buf, 0, cap * sizeof(uint32_t), dev));
                ck_assert(rh.counter == rd.counter && rd.counter == offsets[oi] + n);
                for (size_t i = 0; i < pad; i++)
                    ck_assert_uint_eq(dev[i], sentinel);
                for (size_t i = 0; i < n; i++)
                    ck_assert_msg(dev[pad + i] == host[i],
                                  "seed %zu offset %zu n %zu: element %zu %08x vs host %08x", si,
                                  oi, n, i, dev[pad + i], host[i]);
                for (size_t i = pad + n; i < cap; i++)
                    ck_assert_uint_eq(dev[i], sentinel);
                cases++;
            }
    ck_assert_int_ge(cases, 8);
    free(host), free(dev);
    test_release(buf);
}
END_TEST

static void uniform_case(float lo, float hi, size_t n, uint64_t seed, uint64_t offset)
{
    enco_ctx *ctx = test_ctx();
    cl_mem buf = test_alloc(n + 2);
    float *host = malloc(n * sizeof(float)), *dev = malloc((n + 2) * sizeof(float));
    enco_rng rh = {.seed = seed, .stream = 11, .counter = offset}, rd = rh;
    ENCO_CK(enco_rng_uniform(&rh, host, n, lo, hi));
    ENCO_CK(enco_rng_fill_uniform(ctx, buf, 1, &rd, n, lo, hi));
    ck_assert(rh.counter == rd.counter && rd.counter == offset + n);
    ENCO_CK(enco_download(ctx, buf, 0, (n + 2) * sizeof(float), dev));
    ck_assert(dev[0] == 0.0f && dev[n + 1] == 0.0f);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(memcmp(&dev[1 + i], &host[i], sizeof(float)) == 0,
                      "uniform [%g,%g) element %zu: device %.9g host %.9g", (double)lo, (double)hi,
                      i, (double)dev[1 + i], (double)host[i]);
        ck_assert_msg(host[i] >= lo && host[i] < hi, "uniform element %.9g outside [%g, %g)",
                      (double)host[i], (double)lo, (double)hi);
    }
    /* The value follows from the documented formula. */
    uint32_t x = enco_rng_u32_at(seed, 11, offset);
    double u = (double)(x >> 8) * 0x1.0p-24;
    if (lo == 0.0f && hi == 1.0f)
        ck_assert(host[0] == (float)u);
    free(host), free(dev);
    test_release(buf);
}

START_TEST(device_uniform_matches_host)
{
    size_t n = test_on_oclgrind() ? 29 : 2001;
    for (size_t si = 0; si < 4; si++) {
        uniform_case(0.0f, 1.0f, n, seeds[si], offsets[si]);
        uniform_case(-1.0f, 1.0f, n, seeds[si], offsets[si + 2]);
    }
    uniform_case(-0.02f, 0.02f, n, 5, 3);
    uniform_case(3.0f, 3.0001f, n, 6, 2);
    /* A one-ulp range: lo + t rounds up to hi for about half the draws, and
     * the clamp must map those back below hi identically on both sides. */
    uniform_case(1.0f, nextafterf(1.0f, 2.0f), n, 7, 0);
    uniform_case(-1e30f, 1e30f, n, 8, 1);
}
END_TEST

/* Host and device calls can be interleaved on one state. */
START_TEST(interleaved_host_device)
{
    enco_ctx *ctx = test_ctx();
    enco_rng a = enco_rng_make(77, 2), b = a;
    float ref[40], got[40];
    ENCO_CK(enco_rng_uniform(&a, ref, 40, 0.0f, 1.0f));
    cl_mem buf = test_alloc(40);
    ENCO_CK(enco_rng_uniform(&b, got, 7, 0.0f, 1.0f));
    ENCO_CK(enco_rng_fill_uniform(ctx, buf, 7, &b, 21, 0.0f, 1.0f));
    ENCO_CK(enco_rng_uniform(&b, got + 28, 12, 0.0f, 1.0f));
    ENCO_CK(enco_download(ctx, buf, 7 * sizeof(float), 21 * sizeof(float), got + 7));
    ck_assert(a.counter == b.counter);
    test_assert_bitwise("rng_interleaved", got, ref, 40);
    test_release(buf);
}
END_TEST

START_TEST(device_determinism)
{
    enco_ctx *ctx = test_ctx();
    size_t n = test_on_oclgrind() ? 33 : 4099;
    cl_mem buf = test_alloc(n);
    enco_rng r1 = enco_rng_make(3, 4), r2 = r1;
    r1.counter = r2.counter = 2;
    ENCO_CK(enco_rng_fill_uniform(ctx, buf, 0, &r1, n, -2.0f, 5.0f));
    float *a = test_download(buf, n);
    ENCO_CK(enco_fill_zero(ctx, buf, 0, n * sizeof(float)));
    ENCO_CK(enco_rng_fill_uniform(ctx, buf, 0, &r2, n, -2.0f, 5.0f));
    float *b = test_download(buf, n);
    test_assert_bitwise("rng_fill_uniform", a, b, n);
    free(a), free(b);
    test_release(buf);
}
END_TEST

/* ---- distributions (host; fixed seeds) ------------------------------------ */

START_TEST(uniform_moments)
{
    const size_t n = 200000;
    float *x = malloc(n * sizeof(float));
    enco_rng r = enco_rng_make(2024, 0);
    ENCO_CK(enco_rng_uniform(&r, x, n, 0.0f, 1.0f));
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert(x[i] >= 0.0f && x[i] < 1.0f);
        ck_assert(x[i] * 16777216.0f == floorf(x[i] * 16777216.0f)); /* 24-bit grid */
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    double mean = s / n, var = s2 / n - mean * mean;
    /* sd of the mean = sqrt(1/12/n) = 6.5e-4; of the variance ~ 2.0e-4 */
    ck_assert_msg(fabs(mean - 0.5) < 4e-3, "uniform mean %g", mean);
    ck_assert_msg(fabs(var - 1.0 / 12) < 2e-3, "uniform variance %g", var);
    printf("uniform mean %.5f var %.5f\n", mean, var);
    free(x);
}
END_TEST

START_TEST(normal_moments)
{
    const size_t n = 200001; /* odd: the last pair's second value is dropped */
    float *x = malloc(n * sizeof(float));
    enco_rng r = enco_rng_make(99, 5);
    r.counter = 3; /* pairs need not start on a block */
    ENCO_CK(enco_rng_normal(&r, x, n, 0.0, 1.0));
    ck_assert_uint_eq(r.counter, 3 + 4 * ((n + 1) / 2));
    double s = 0, s2 = 0, s4 = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert(isfinite(x[i]));
        s += x[i];
    }
    double mean = s / n;
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - mean;
        s2 += d * d;
        s4 += d * d * d * d;
    }
    double var = s2 / n, kurt = s4 / n / (var * var);
    /* sd: mean 2.2e-3, variance 3.2e-3, kurtosis 2.2e-2; bounds are >= 6 sd */
    ck_assert_msg(fabs(mean) < 0.015, "normal mean %g", mean);
    ck_assert_msg(fabs(var - 1.0) < 0.02, "normal variance %g", var);
    ck_assert_msg(fabs(kurt - 3.0) < 0.15, "normal kurtosis %g", kurt);
    printf("normal mean %.5f var %.5f kurtosis %.4f\n", mean, var, kurt);

    /* mean and std are applied: same draws, shifted and scaled. */
    enco_rng r2 = enco_rng_make(99, 5);
    r2.counter = 3;
    float y[9];
    ENCO_CK(enco_rng_normal(&r2, y, 9, 2.0, 0.5));
    for (int i = 0; i < 9; i++)
        ck_assert_msg(fabs(y[i] - (2.0 + 0.5 * x[i])) < 1e-6, "scaled normal %d", i);
    free(x);
}
END_TEST

START_TEST(xavier_normal_std)
{
    enco_ctx *ctx = test_ctx();
    const size_t fan_in = 64 * 9, fan_out = 128 * 9, n = 128 * 64 * 9;
    const double gain = 0.02, expect = gain * sqrt(2.0 / (fan_in + fan_out));
    float *w = malloc(n * sizeof(float));
    enco_rng r = enco_rng_make(1, 0), r2 = r;
    ENCO_CK(enco_rng_xavier_normal(&r, w, n, fan_in, fan_out, gain));
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        s += w[i];
        s2 += (double)w[i] * w[i];
    }
    double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    /* relative sd of the sample std ~ 1/sqrt(2n) = 0.3% */
    ck_assert_msg(fabs(sd / expect - 1.0) < 0.03, "xavier std %g, expected %g", sd, expect);
    ck_assert_msg(fabs(mean) < 6 * expect / sqrt((double)n), "xavier mean %g", mean);

    /* The upload variant puts exactly the host draws on the device. */
    cl_mem buf = test_alloc(n + 3);
    ENCO_CK(enco_rng_xavier_normal_upload(ctx, buf, 3, &r2, n, fan_in, fan_out, gain));
    ck_assert(r.counter == r2.counter);
    float *d = test_download(buf, n + 3);
    test_assert_bitwise("xavier_upload", d + 3, w, n);
    free(d), free(w);
    test_release(buf);
}
END_TEST

START_TEST(permutation_valid)
{
    const size_t sizes[] = {0, 1, 2, 17, 1000, 65536};
    enco_rng r = enco_rng_make(5, 5);
    for (size_t si = 0; si < 6; si++) {
        size_t n = sizes[si];
        int32_t *p = malloc((n ? n : 1) * sizeof(int32_t));
        char *seen = calloc(n ? n : 1, 1);
        ENCO_CK(enco_rng_permutation(&r, p, n));
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(p[i] >= 0 && (size_t)p[i] < n, "entry %d out of range", p[i]);
            ck_assert_msg(!seen[p[i]], "value %d repeated", p[i]);
            seen[p[i]] = 1;
        }
        free(p), free(seen);
    }
}
END_TEST

/* All 24 orders of 4 elements equally often; every (value, position) of 10
 * equally often. Chi-square bounds sit > 8 sd above the mean (df 23: mean 23,
 * sd 6.8; df 81 ((10-1)^2): mean 81, sd 12.7): with fixed seeds the test is
 * deterministic, and a biased shuffle (e.g. j = x % (i+1) with small x, or
 * the naive swap with any j) lands far above. */
START_TEST(permutation_uniform)
{
    enco_rng r = enco_rng_make(123, 9);
    const int reps = 24000;
    int counts[256] = {0};
    for (int t = 0; t < reps; t++) {
        int32_t p[4];
        ENCO_CK(enco_rng_permutation(&r, p, 4));
        counts[p[0] * 64 + p[1] * 16 + p[2] * 4 + p[3]]++;
    }
    double chi = 0, e = reps / 24.0;
    int cells = 0;
    for (int c = 0; c < 256; c++) {
        int a = c / 64, b = c / 16 % 4, d = c / 4 % 4, f = c % 4;
        int is_perm = a != b && a != d && a != f && b != d && b != f && d != f;
        if (!is_perm) {
            ck_assert_int_eq(counts[c], 0);
            continue;
        }
        cells++;
        chi += (counts[c] - e) * (counts[c] - e) / e;
    }
    ck_assert_int_eq(cells, 24);
    ck_assert_msg(chi < 80.0, "chi-square over 24 orders %g", chi);

    const int n = 10, reps2 = 20000;
    int pos[10][10] = {{0}};
    for (int t = 0; t < reps2; t++) {
        int32_t p[10];
        ENCO_CK(enco_rng_permutation(&r, p, n));
        for (int i = 0; i < n; i++)
            pos[p[i]][i]++;
    }
    double chi2 = 0, e2 = reps2 / 10.0;
    for (int v = 0; v < n; v++)
        for (int i = 0; i < n; i++)
            chi2 += (pos[v][i] - e2) * (pos[v][i] - e2) / e2;
    ck_assert_msg(chi2 < 190.0, "chi-square over (value, position) %g", chi2);
    printf("permutation chi2 %.1f (df 23) %.1f (df 81)\n", chi, chi2);
}
END_TEST

START_TEST(bounded_uniform)
{
    /* range 7 (chi-square df 6: mean 6, sd 3.5, bound 40) and the rejection
     * rate of a range just above 2^31 (half the draws are rejected). */
    enco_rng r = enco_rng_make(8, 8);
    int counts[7] = {0};
    const int reps = 70000;
    for (int t = 0; t < reps; t++) {
        uint32_t v = enco_rng_bounded(&r, 7);
        ck_assert_uint_lt(v, 7);
        counts[v]++;
    }
    double chi = 0;
    for (int v = 0; v < 7; v++)
        chi += (counts[v] - 10000.0) * (counts[v] - 10000.0) / 10000.0;
    ck_assert_msg(chi < 40.0, "bounded(7) chi-square %g", chi);

    uint64_t c0 = r.counter;
    int high = 0;
    for (int t = 0; t < 10000; t++) {
        uint32_t v = enco_rng_bounded(&r, 0x80000001u);
        ck_assert_uint_le(v, 0x80000000u);
        high += v >= 0x40000000u;
    }
    uint64_t used = r.counter - c0; /* expected 1 / (1 - 0.5) per value: 20000 */
    ck_assert_msg(used > 18000 && used < 22000, "bounded(2^31+1) consumed %llu draws",
                  (unsigned long long)used);
    ck_assert_msg(high > 4700 && high < 5300, "bounded(2^31+1): %d of 10000 in the top half", high);
}
END_TEST

/* ---- arguments and cost --------------------------------------------------- */

START_TEST(rejects_bad_arguments)
{
    enco_ctx *ctx = test_ctx();
    enco_rng r = enco_rng_make(1, 1);
    float x[4];
    cl_mem buf = test_alloc(8);
    ck_assert_int_eq(enco_rng_uniform(&r, x, 4, 1.0f, 1.0f), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "lo < hi"));
    ck_assert_int_eq(enco_rng_uniform(&r, x, 4, 0.0f, NAN), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_rng_uniform(&r, x, 4, -FLT_MAX, FLT_MAX), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_rng_normal(&r, x, 4, 0.0, -1.0), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_rng_xavier_normal(&r, x, 4, 0, 3, 1.0), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_rng_xavier_normal(&r, x, 4, 3, 3, 0.0), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_rng_fill_uniform(ctx, buf, 0, &r, 4, 2.0f, 1.0f), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_rng_fill_uniform(ctx, buf, 5, &r, 4, 0.0f, 1.0f), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "needs elements [5, 9)"));
    ck_assert_int_eq(enco_rng_fill_u32(ctx, NULL, 0, &r, 4), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_rng_fill_u32(ctx, buf, 0, NULL, 4), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_rng_fill_u32(ctx, buf, 0, &r, 9), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_rng_xavier_normal_upload(ctx, buf, 0, &r, 9, 3, 3, 1.0),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_rng_permutation(&r, NULL, (size_t)INT32_MAX + 1),
                     ENCO_ERR_INVALID_ARG);
    /* Nothing was consumed by the rejected calls. */
    ck_assert_uint_eq(r.counter, 0);
    test_release(buf);
}
END_TEST

START_TEST(costs)
{
    ck_assert(enco_rng_fill_u32_cost(100).bytes == 400.0);
    ck_assert(enco_rng_fill_uniform_cost(100).bytes == 400.0);
    ck_assert(enco_rng_fill_uniform_cost(100).flops > 0.0);
}
END_TEST

static Suite *rng_suite(void)
{
    Suite *s = suite_create("rng");
    TCase *t = tcase_create("rng");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, philox_known_answers);
    tcase_add_test(t, sequence_layout);
    tcase_add_test(t, bounded_and_permutation_known_answers);
    tcase_add_test(t, device_u32_matches_host);
    tcase_add_test(t, device_uniform_matches_host);
    tcase_add_test(t, interleaved_host_device);
    tcase_add_test(t, device_determinism);
    tcase_add_test(t, uniform_moments);
    tcase_add_test(t, normal_moments);
    tcase_add_test(t, xavier_normal_std);
    tcase_add_test(t, permutation_valid);
    tcase_add_test(t, permutation_uniform);
    tcase_add_test(t, bounded_uniform);
    tcase_add_test(t, rejects_bad_arguments);
    tcase_add_test(t, costs);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return test_run_suite(rng_suite()); }
