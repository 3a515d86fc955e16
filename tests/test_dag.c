/* DAG and random patch sampling: hand-worked examples, device vs the stable
 * merge-sort reference on many configurations (ties, NaN, K > H*W, H*W < k*K,
 * N = 2, descending), determinism, permutation helpers, bad arguments. */
#include "harness.h"
#include "ops/dag.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cl_mem upload_ints(const int32_t *host, size_t n)
{
    cl_mem m = NULL;
    ENCO_CK(enco_buffer_alloc(test_ctx(), (n ? n : 1) * sizeof(int32_t), &m));
    ENCO_CK(enco_upload(test_ctx(), m, 0, n * sizeof(int32_t), host));
    return m;
}

static int32_t *download_ints(cl_mem m, size_t off, size_t n)
{
    int32_t *x = malloc((n ? n : 1) * sizeof(int32_t));
    ENCO_CK(enco_download(test_ctx(), m, off * sizeof(int32_t), n * sizeof(int32_t), x));
    return x;
}

/* Exact comparison; also logs "maxrel <what> 0" through the harness. */
static void assert_same_indices(const char *what, const int32_t *got, const int32_t *ref, size_t n)
{
    float *g = malloc((n ? n : 1) * sizeof(float));
    double *r = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(got[i] == ref[i], "%s: index %zu is %d, reference %d", what, i, got[i],
                      ref[i]);
        g[i] = (float)got[i];
        r[i] = ref[i];
    }
    test_assert_close(what, g, r, n, 0.0, 0.0);
    free(g), free(r);
}

/* Runs the device op on host inputs; the output sits at offset 3 of its
 * buffer, the inputs at offsets 2, 5, 7, to exercise every offset. */
static int32_t *run_dag(const float *score, const int32_t *cand, const int32_t *cover, int n,
                        int h, int w, int np, int over, double ratio, int desc)
{
    enco_ctx *ctx = test_ctx();
    const size_t hw = (size_t)h * w, per = (size_t)n * hw;
    const size_t k = (size_t)enco_dag_num_samples(h, w, np);
    float *s = calloc(per + 2, sizeof(float));
    int32_t *c = calloc(per + 5, sizeof(int32_t)), *v = calloc(per + 7, sizeof(int32_t));
    memcpy(s + 2, score, per * sizeof(float));
    memcpy(c + 5, cand, per * sizeof(int32_t));
    memcpy(v + 7, cover, per * sizeof(int32_t));
    cl_mem bs = test_upload(s, per + 2), bc = upload_ints(c, per + 5), bv = upload_ints(v, per + 7);
    int32_t *fill = malloc((n * k + 4) * sizeof(int32_t));
    for (size_t i = 0; i < n * k + 4; i++)
        fill[i] = -7;
    cl_mem bi = upload_ints(fill, n * k + 4);
    ENCO_CK(enco_dag_forward(ctx, bi, 3, bs, 2, bc, 5, bv, 7, n, h, w, np, over, ratio, desc));
    int32_t *all = download_ints(bi, 0, n * k + 4);
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(all[i], -7);
    ck_assert_int_eq(all[n * k + 3], -7);
    int32_t *out = malloc((n * k > 0 ? n * k : 1) * sizeof(int32_t));
    memcpy(out, all + 3, n * k * sizeof(int32_t));
    free(s), free(c), free(v), free(fill), free(all);
    test_release(bs), test_release(bc), test_release(bv), test_release(bi);
    return out;
}

/* ---- hand-worked example ---------------------------------------------------- */

/* H x W = 2 x 3. Scores by position: 0.5 -1 3 NaN -1 0.
 * cand = 3 5 1 0 4 2 -> candidate scores NaN 0 -1 0.5 -1 3.
 * num_patches 4: K = 4, R = 2, keep 2; C = min(16, 6) = 6.
 *   ascending:  -1 (pos 1, earlier candidate) -1 (pos 4) 0 0.5 3 NaN -> 1 4
 *   descending: 3 (pos 2) 0.5 (pos 0) ...                           -> 2 0
 *   covering: last two of cover = 2 0 4 1 5 3 -> 5 3
 * oversample 1: C = 4 candidates (NaN 0 -1 0.5) -> ascending 1 5, then 5 3
 * (covering may repeat an importance position). */
START_TEST(hand_example)
{
    const float score[6] = {0.5f, -1.0f, 3.0f, NAN, -1.0f, 0.0f};
    const int32_t cand[6] = {3, 5, 1, 0, 4, 2}, cover[6] = {2, 0, 4, 1, 5, 3};
    const int32_t asc[4] = {1, 4, 5, 3}, desc[4] = {2, 0, 5, 3}, over1[4] = {1, 5, 5, 3};
    int32_t ref[4];
    ck_assert_int_eq(enco_dag_num_samples(2, 3, 4), 4);

    ENCO_CK(enco_dag_forward_ref(ref, score, cand, cover, 1, 2, 3, 4, 4, 0.5, 0));
    ck_assert_mem_eq(ref, asc, sizeof asc);
    int32_t *got = run_dag(score, cand, cover, 1, 2, 3, 4, 4, 0.5, 0);
    assert_same_indices("dag_hand_ascending", got, asc, 4);
    free(got);

    ENCO_CK(enco_dag_forward_ref(ref, score, cand, cover, 1, 2, 3, 4, 4, 0.5, 1));
    ck_assert_mem_eq(ref, desc, sizeof desc);
    got = run_dag(score, cand, cover, 1, 2, 3, 4, 4, 0.5, 1);
    assert_same_indices("dag_hand_descending", got, desc, 4);
    free(got);

    ENCO_CK(enco_dag_forward_ref(ref, score, cand, cover, 1, 2, 3, 4, 1, 0.5, 0));
    ck_assert_mem_eq(ref, over1, sizeof over1);
    got = run_dag(score, cand, cover, 1, 2, 3, 4, 1, 0.5, 0);
    assert_same_indices("dag_hand_oversample1", got, over1, 4);
    free(got);

    /* random sampling: the first K of the permutation */
    int32_t rnd[4];
    ENCO_CK(enco_dag_random_ref(rnd, cand, 1, 2, 3, 4));
    ck_assert_mem_eq(rnd, cand, sizeof rnd);
}
END_TEST

/* ---- device vs reference ---------------------------------------------------- */

typedef struct dag_case {
    int n, h, w, np, over;
    double ratio;
    int desc;
    int scores; /* 0: continuous, 1: heavy ties (3 levels, +-0), 2: ties + NaN + inf */
    int big;    /* skipped under Oclgrind */
} dag_case;

static const dag_case cases[] = {
    {1, 16, 16, 8, 4, 0.5, 0, 0, 0},   /* K 8, C 32 */
    {2, 9, 7, 10, 4, 0.5, 0, 0, 0},    /* odd sizes, N = 2 */
    {1, 5, 5, 10, 4, 0.5, 0, 1, 0},    /* H*W < k*K: C = H*W */
    {2, 3, 5, 20, 4, 0.5, 1, 2, 0},    /* K > H*W: K = C = 15, R = 7 */
    {1, 1, 1, 4, 4, 0.5, 0, 0, 0},     /* one position: K 1, R 0 */
    {2, 6, 6, 10, 4, 0.3, 1, 2, 0},    /* R = floor(3) = 3 */
    {1, 7, 9, 12, 3, 0.0, 0, 1, 0},    /* no covering */
    {1, 7, 9, 12, 2, 1.0, 0, 0, 0},    /* only covering */
    {2, 11, 13, 30, 1, 0.5, 1, 0, 0},  /* no oversampling */
    {2, 32, 32, 64, 4, 0.5, 1, 2, 1},  /* C 256: two tiles */
    {2, 30, 33, 77, 4, 0.5, 0, 1, 1},  /* C 308: partial last tile */
    {1, 64, 64, 256, 4, 0.5, 0, 0, 1}, /* the default config at 64x64: C 1024 */
    {2, 64, 64, 256, 4, 0.5, 1, 2, 1},
};

static void make_scores(float *s, size_t n, int kind, uint64_t seed)
{
    test_fill_uniform(s, n, seed, -1.0f, 1.0f);
    if (kind == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        s[i] = floorf(s[i] * 1.5f); /* -2, -1, 0, 1 */
        if (s[i] == 0.0f && i % 2)
            s[i] = -0.0f;
        if (kind == 2 && i % 7 == 3)
            s[i] = NAN;
        if (kind == 2 && i % 11 == 5)
            s[i] = (i % 2) ? INFINITY : -INFINITY;
    }
}

START_TEST(device_matches_reference)
{
    enco_rng rng = enco_rng_make(2025, 1);
    int ran = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const dag_case *c = &cases[ci];
        if (c->big && test_on_oclgrind())
            continue;
        const size_t hw = (size_t)c->h * c->w, per = (size_t)c->n * hw;
        const size_t k = (size_t)enco_dag_num_samples(c->h, c->w, c->np);
        float *score = malloc(per * sizeof(float));
        int32_t *cand = malloc(per * sizeof(int32_t)), *cover = malloc(per * sizeof(int32_t));
        int32_t *ref = malloc(c->n * k * sizeof(int32_t));
        make_scores(score, per, c->scores, 100 + ci);
        ENCO_CK(enco_dag_make_perms(&rng, cand, cover, c->n, (int)hw));
        ENCO_CK(enco_dag_forward_ref(ref, score, cand, cover, c->n, c->h, c->w, c->np, c->over,
                                     c->ratio, c->desc));
        int32_t *got = run_dag(score, cand, cover, c->n, c->h, c->w, c->np, c->over, c->ratio,
                               c->desc);
        char what[96];
        snprintf(what, sizeof what, "dag_N%d_%dx%d_np%d_k%d_r%.1f_%s_s%d", c->n, c->h, c->w,
                 c->np, c->over, c->ratio, c->desc ? "desc" : "asc", c->scores);
        assert_same_indices(what, got, ref, c->n * k);

        /* Independent properties of the reference's output. */
        const int kk = (int)k, r = (int)floor(kk * c->ratio), keep = kk - r;
        int cc = c->over * kk < (int)hw ? c->over * kk : (int)hw;
        for (int img = 0; img < c->n; img++) {
            const int32_t *o = ref + (size_t)img * k, *cp = cand + (size_t)img * hw;
            const float *s = score + (size_t)img * hw;
            for (int j = 0; j < r; j++)
                ck_assert_int_eq(o[keep + j], cover[(size_t)img * hw + hw - r + j]);
            /* importance picks are distinct candidates, ordered, and no
             * unpicked candidate is strictly better than the last pick. */
            for (int j = 0; j < keep; j++) {
                int found = 0;
                for (int q = 0; q < cc; q++)
                    found += cp[q] == o[j];
                ck_assert_int_eq(found, 1);
                for (int q = 0; q < j; q++)
                    ck_assert_int_ne(o[q], o[j]);
            }
            if (keep > 0 && c->scores == 0) {
                float last = s[o[keep - 1]];
                int better = 0;
                for (int q = 0; q < cc; q++)
                    better += c->desc ? s[cp[q]] > last : s[cp[q]] < last;
                ck_assert_int_eq(better, keep - 1);
            }
        }
        free(score), free(cand), free(cover), free(ref), free(got);
        ran++;
    }
    ck_assert_int_ge(ran, 9);
}
END_TEST

/* Ties keep candidate order: with all scores equal the importance part is
 * cand[0 .. K-R) in either direction; all-NaN likewise. */
START_TEST(ties_are_stable)
{
    const int n = 2, h = 6, w = 7, np = 9, hw = h * w;
    float score[2 * 42];
    int32_t cand[2 * 42], cover[2 * 42], ref[2 * 9];
    enco_rng rng = enco_rng_make(4, 4);
    ENCO_CK(enco_dag_make_perms(&rng, cand, cover, n, hw));
    for (int fill = 0; fill < 3; fill++) {
        for (int i = 0; i < n * hw; i++)
            score[i] = fill == 0 ? 0.25f : fill == 1 ? NAN : (i % 2 ? 0.0f : -0.0f);
        for (int desc = 0; desc < 2; desc++) {
            ENCO_CK(enco_dag_forward_ref(ref, score, cand, cover, n, h, w, np, 4, 0.5, desc));
            int32_t *got = run_dag(score, cand, cover, n, h, w, np, 4, 0.5, desc);
            for (int img = 0; img < n; img++)
                for (int j = 0; j < np - np / 2; j++) {
                    ck_assert_int_eq(ref[img * np + j], cand[img * hw + j]);
                    ck_assert_int_eq(got[img * np + j], cand[img * hw + j]);
                }
            assert_same_indices("dag_all_ties", got, ref, (size_t)n * np);
            free(got);
        }
    }
}
END_TEST

START_TEST(determinism)
{
    const int n = 2, h = test_on_oclgrind() ? 8 : 40, w = test_on_oclgrind() ? 9 : 40;
    const int np = test_on_oclgrind() ? 16 : 256, hw = h * w;
    float *score = malloc((size_t)n * hw * sizeof(float));
    int32_t *cand = malloc((size_t)n * hw * sizeof(int32_t));
    int32_t *cover = malloc((size_t)n * hw * sizeof(int32_t));
    make_scores(score, (size_t)n * hw, 2, 77);
    enco_rng rng = enco_rng_make(8, 0);
    ENCO_CK(enco_dag_make_perms(&rng, cand, cover, n, hw));
    int32_t *a = run_dag(score, cand, cover, n, h, w, np, 4, 0.5, 0);
    int32_t *b = run_dag(score, cand, cover, n, h, w, np, 4, 0.5, 0);
    ck_assert_mem_eq(a, b, (size_t)n * np * sizeof(int32_t));
    free(a), free(b), free(score), free(cand), free(cover);
}
END_TEST

/* ---- random sampling ---------------------------------------------------------- */

START_TEST(random_matches_reference)
{
    enco_ctx *ctx = test_ctx();
    static const int shapes[][4] = {{1, 8, 8, 16}, {2, 5, 7, 100}, {2, 16, 16, 64}, {1, 1, 1, 3}};
    enco_rng rng = enco_rng_make(31, 2);
    for (int si = 0; si < 4; si++) {
        const int n = shapes[si][0], h = shapes[si][1], w = shapes[si][2], np = shapes[si][3];
        const int hw = h * w, k = enco_dag_num_samples(h, w, np);
        int32_t *perm = malloc((size_t)n * hw * sizeof(int32_t));
        int32_t *ref = malloc((size_t)n * k * sizeof(int32_t));
        ENCO_CK(enco_dag_make_perms(&rng, perm, NULL, n, hw));
        ENCO_CK(enco_dag_random_ref(ref, perm, n, h, w, np));
        for (int img = 0; img < n; img++)
            ck_assert_mem_eq(ref + (size_t)img * k, perm + (size_t)img * hw,
                             (size_t)k * sizeof(int32_t));
        cl_mem bp = upload_ints(perm, (size_t)n * hw);
        cl_mem bi = NULL;
        ENCO_CK(enco_buffer_alloc(ctx, ((size_t)n * k + 1) * sizeof(int32_t), &bi));
        ENCO_CK(enco_dag_random_forward(ctx, bi, 1, bp, 0, n, h, w, np));
        int32_t *got = download_ints(bi, 1, (size_t)n * k);
        char what[64];
        snprintf(what, sizeof what, "dag_random_N%d_%dx%d_np%d", n, h, w, np);
        assert_same_indices(what, got, ref, (size_t)n * k);
        free(perm), free(ref), free(got);
        test_release(bp), test_release(bi);
    }
}
END_TEST

/* ---- permutation helpers -------------------------------------------------------- */

START_TEST(perms_from_state)
{
    enco_ctx *ctx = test_ctx();
    const int n = 2, hw = 50;
    int32_t cand[100], cover[100], c2[100], v2[100], seq[4][50];
    enco_rng a = enco_rng_make(12, 3), b = a, c = a;
    ENCO_CK(enco_dag_make_perms(&a, cand, cover, n, hw));
    /* Documented order: image 0 cand, image 0 cover, image 1 cand, image 1 cover. */
    for (int i = 0; i < 4; i++)
        ENCO_CK(enco_rng_permutation(&b, seq[i], hw));
    ck_assert(a.counter == b.counter && a.counter > 0);
    ck_assert_mem_eq(cand, seq[0], sizeof seq[0]);
    ck_assert_mem_eq(cover, seq[1], sizeof seq[1]);
    ck_assert_mem_eq(cand + hw, seq[2], sizeof seq[2]);
    ck_assert_mem_eq(cover + hw, seq[3], sizeof seq[3]);
    for (int img = 0; img < n; img++) {
        int seen[50] = {0};
        for (int i = 0; i < hw; i++)
            seen[cand[img * hw + i]]++;
        for (int i = 0; i < hw; i++)
            ck_assert_int_eq(seen[i], 1);
    }
    ck_assert(memcmp(cand, cover, hw * sizeof(int32_t)) != 0);

    /* The upload helper puts the same permutations on the device. */
    cl_mem bc = NULL, bv = NULL;
    ENCO_CK(enco_buffer_alloc(ctx, 102 * sizeof(int32_t), &bc));
    ENCO_CK(enco_buffer_alloc(ctx, 101 * sizeof(int32_t), &bv));
    ENCO_CK(enco_dag_perms_upload(ctx, bc, 2, bv, 1, &c, n, hw));
    ck_assert(c.counter == a.counter);
    int32_t *gc = download_ints(bc, 2, 100), *gv = download_ints(bv, 1, 100);
    memcpy(c2, gc, sizeof c2);
    memcpy(v2, gv, sizeof v2);
    ck_assert_mem_eq(c2, cand, sizeof cand);
    ck_assert_mem_eq(v2, cover, sizeof cover);
    free(gc), free(gv);
    test_release(bc), test_release(bv);
}
END_TEST

/* ---- arguments and cost ------------------------------------------------------- */

START_TEST(rejects_bad_arguments)
{
    enco_ctx *ctx = test_ctx();
    cl_mem s = test_alloc(64), p = test_alloc(64), q = test_alloc(64), o = test_alloc(16);
    /* N 1, 8 x 8, K 16: fits. Written from the host: Oclgrind's
     * uninitialized-value check does not count clEnqueueFillBuffer. */
    const float zeros[64] = {0};
    ENCO_CK(enco_upload(ctx, s, 0, sizeof zeros, zeros));
    ENCO_CK(enco_upload(ctx, p, 0, sizeof zeros, zeros));
    ENCO_CK(enco_upload(ctx, q, 0, sizeof zeros, zeros));
    ENCO_CK(enco_dag_forward(ctx, o, 0, s, 0, p, 0, q, 0, 1, 8, 8, 16, 4, 0.5, 0));
#define BAD(call, text)                                                                \
    do {                                                                               \
        ck_assert_int_eq((call), ENCO_ERR_INVALID_ARG);                                \
        ck_assert_msg(strstr(enco_last_error(), (text)) != NULL, "message '%s' lacks '%s'", \
                      enco_last_error(), (text));                                      \
    } while (0)
    BAD(enco_dag_forward(ctx, o, 0, s, 0, p, 0, q, 0, 1, 8, 8, 16, 0, 0.5, 0), "oversample");
    BAD(enco_dag_forward(ctx, o, 0, s, 0, p, 0, q, 0, 1, 8, 8, 16, 4, 1.5, 0), "covering ratio");
    BAD(enco_dag_forward(ctx, o, 0, s, 0, p, 0, q, 0, 1, 8, 8, 16, 4, NAN, 0), "covering ratio");
    BAD(enco_dag_forward(ctx, o, 0, s, 0, p, 0, q, 0, 1, 8, 8, 16, 4, 0.5, 2), "descending");
    BAD(enco_dag_forward(ctx, o, 0, s, 0, p, 0, q, 0, 0, 8, 8, 16, 4, 0.5, 0), "N=0");
    BAD(enco_dag_forward(ctx, o, 0, s, 0, p, 0, q, 0, 1, 8, 8, 0, 4, 0.5, 0), "num_patches");
    BAD(enco_dag_forward(ctx, o, 1, s, 0, p, 0, q, 0, 1, 8, 8, 16, 4, 0.5, 0), "dag indices");
    BAD(enco_dag_forward(ctx, o, 0, s, 0, p, 0, q, 0, 1, 8, 9, 16, 4, 0.5, 0), "score map");
    BAD(enco_dag_forward(ctx, o, 0, s, 0, NULL, 0, q, 0, 1, 8, 8, 16, 4, 0.5, 0), "candidate");
    BAD(enco_dag_random_forward(ctx, o, 0, p, 0, 2, 8, 8, 16), "dag_random indices");
    BAD(enco_dag_random_forward(ctx, o, 0, p, 0, 1, 0, 8, 16), "H=0");
    int32_t buf[4], ref[4];
    float sc[4] = {0};
    enco_rng r = enco_rng_make(1, 1);
    BAD(enco_dag_make_perms(&r, buf, NULL, 1, 0), "H*W=0");
    BAD(enco_dag_forward_ref(ref, sc, buf, buf, 1, 2, 2, 4, -1, 0.5, 0), "oversample");
    BAD(enco_dag_perms_upload(ctx, o, 0, NULL, 0, &r, 1, 17), "but its buffer holds 16 values");
    ck_assert_uint_eq(r.counter, 0);
#undef BAD
    ck_assert_int_eq(enco_dag_num_samples(0, 3, 4), 0);
    ck_assert_int_eq(enco_dag_num_samples(3, 3, 100), 9);
    test_release(s), test_release(p), test_release(q), test_release(o);
}
END_TEST

START_TEST(costs)
{
    enco_op_cost c = enco_dag_cost(1, 64, 64, 256, 4, 0.5);
    ck_assert(c.flops == 1024.0 * 1024.0);
    ck_assert(c.bytes == 4.0 * (2 * 1024 + 128 + 256));
    ck_assert(enco_dag_random_cost(2, 8, 8, 16).bytes == 2 * 8.0 * 16);
}
END_TEST

static Suite *dag_suite(void)
{
    Suite *s = suite_create("dag");
    TCase *t = tcase_create("dag");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, hand_example);
    tcase_add_test(t, device_matches_reference);
    tcase_add_test(t, ties_are_stable);
    tcase_add_test(t, determinism);
    tcase_add_test(t, random_matches_reference);
    tcase_add_test(t, perms_from_state);
    tcase_add_test(t, rejects_bad_arguments);
    tcase_add_test(t, costs);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return test_run_suite(dag_suite()); }
