/* The MPI seam (src/dist): run alone (one rank: sums are the identity) and
 * under mpirun (tests/test_dist.sh): sums in rank order, bitwise the same on
 * every rank, across bucket boundaries; all-gather order, broadcast, any();
 * counts that disagree between ranks fail everywhere instead of hanging.
 * Usage: test_dist --expect-size N. No OpenCL device is used. Every rank
 * runs the same tests in the same order, so their collectives pair up. */
#include "dist/dist.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ENCO_TEST_HAVE_MPI
#error "tests/meson.build defines ENCO_TEST_HAVE_MPI (0 or 1)"
#endif

static enco_dist *dist;
static int expect_size = 1;
static int rank, size;

/* Values whose float sum depends on the order of addition: big ones that
 * cancel next to small ones that vanish beside them. */
static float fval(int r, size_t i)
{
    static const float t[] = {1e8f,  1.0f, -1e8f, 0.5f,        3.0f,  -1.0f,       7e7f,
                              1e-3f, -3e7f, 2.5f, 16777216.0f, -0.75f, 33554432.0f};
    size_t k = (i * 5 + (size_t)r * 7 + i / 13) % (sizeof t / sizeof t[0]);
    return t[k] * (1.0f + (float)(i % 7) * 0.125f);
}

static double dval(int r, size_t i)
{
    static const double t[] = {1e17, 1.0, -1e17, 0.5, 3.0, -1.0, 7e16, 1e-3, -3e16, 2.5, -0.75};
    size_t k = (i * 3 + (size_t)r * 5 + i / 11) % (sizeof t / sizeof t[0]);
    return t[k] * (1.0 + (double)(i % 5) * 0.25);
}

static float sum_in_rank_order(size_t i)
{
    float acc = fval(0, i);
    for (int r = 1; r < size; r++)
        acc += fval(r, i);
    return acc;
}

static float sum_in_reverse_order(size_t i)
{
    float acc = fval(size - 1, i);
    for (int r = size - 2; r >= 0; r--)
        acc += fval(r, i);
    return acc;
}

/* Fails unless `bytes` bytes at p are the same on every rank. */
static void assert_same_on_every_rank(const char *what, const void *p, size_t bytes)
{
    uint64_t h = enco_fnv1a(ENCO_FNV_OFFSET, p, bytes);
    uint64_t *all = malloc((size_t)size * sizeof h);
    ck_assert_ptr_nonnull(all);
    ENCO_CK(enco_dist_allgather(dist, &h, all, sizeof h));
    for (int r = 0; r < size; r++)
        ck_assert_msg(all[r] == h, "%s: rank %d's bits differ from rank %d's", what, r, rank);
    free(all);
}

START_TEST(test_topology)
{
    ck_assert_int_eq(enco_dist_size(dist), expect_size);
    ck_assert_int_eq(enco_dist_has_mpi(), ENCO_TEST_HAVE_MPI);
    ck_assert_int_ge(rank, 0);
    ck_assert_int_lt(rank, size);
    /* Every rank of the test runs on this one host, in world order. */
    ck_assert_int_eq(enco_dist_local_size(dist), size);
    ck_assert_int_eq(enco_dist_local_rank(dist), rank);
    ck_assert_int_eq(enco_dist_rank(NULL), 0);
    ck_assert_int_eq(enco_dist_size(NULL), 1);
    ck_assert_int_eq(enco_dist_local_rank(NULL), 0);
    ck_assert_int_eq(enco_dist_local_size(NULL), 1);
    /* Ranks are distinct: gathering them gives 0 .. size-1 in order. */
    int *ranks = malloc((size_t)size * sizeof *ranks);
    ck_assert_ptr_nonnull(ranks);
    ENCO_CK(enco_dist_allgather(dist, &rank, ranks, sizeof rank));
    for (int r = 0; r < size; r++)
        ck_assert_int_eq(ranks[r], r);
    free(ranks);
}
END_TEST

START_TEST(test_sum_floats_rank_order)
{
    const size_t n = 4099;
    float *buf = malloc(n * sizeof *buf);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = fval(rank, i);
    ENCO_CK(enco_dist_sum_floats(dist, buf, n));
    size_t order_matters = 0;
    for (size_t i = 0; i < n; i++) {
        float want = sum_in_rank_order(i);
        ck_assert_msg(memcmp(&buf[i], &want, sizeof want) == 0,
                      "rank %d: element %zu is %.9g, the rank-order sum is %.9g", rank, i,
                      (double)buf[i], (double)want);
        float rev = sum_in_reverse_order(i);
        order_matters += memcmp(&rev, &want, sizeof want) != 0;
    }
    /* The values make the order visible: with 3 ranks or more, adding them
     * in another order changes some results (with 2, a + b == b + a). */
    if (size >= 3)
        ck_assert_msg(order_matters > n / 10, "only %zu of %zu sums depend on the order",
                      order_matters, n);
    /* The result's bytes, gathered from every rank, are identical. */
    float *all = malloc((size_t)size * n * sizeof *all);
    ck_assert_ptr_nonnull(all);
    ENCO_CK(enco_dist_allgather(dist, buf, all, n * sizeof *buf));
    for (int r = 0; r < size; r++)
        ck_assert_msg(memcmp(all + (size_t)r * n, buf, n * sizeof *buf) == 0,
                      "rank %d's sum differs from rank %d's", r, rank);
    free(all);
    free(buf);
}
END_TEST

START_TEST(test_sum_floats_buckets)
{
    /* Two full buckets and a part of a third. */
    const size_t bucket = ENCO_DIST_BUCKET_BYTES / sizeof(float);
    const size_t n = 2 * bucket + 4321;
    float *buf = malloc(n * sizeof *buf);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = fval(rank, i);
    ENCO_CK(enco_dist_sum_floats(dist, buf, n));
    /* One assertion per test, not per element (Check records each one). */
    size_t bad = n;
    float want = 0;
    for (size_t i = 0; i < n && bad == n; i++) {
        want = sum_in_rank_order(i);
        if (memcmp(&buf[i], &want, sizeof want) != 0)
            bad = i;
    }
    ck_assert_msg(bad == n, "rank %d: element %zu (bucket %zu) is %.9g, the rank-order sum is %.9g",
                  rank, bad, bad / bucket, bad < n ? (double)buf[bad] : 0.0, (double)want);
    assert_same_on_every_rank("sum of 2.0 buckets", buf, n * sizeof *buf);
    free(buf);
}
END_TEST

START_TEST(test_sum_doubles)
{
    const size_t bucket = ENCO_DIST_BUCKET_BYTES / sizeof(double);
    const size_t n = bucket + 77;
    double *buf = malloc(n * sizeof *buf);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = dval(rank, i);
    ENCO_CK(enco_dist_sum_doubles(dist, buf, n));
    size_t bad = n;
    double want = 0;
    for (size_t i = 0; i < n && bad == n; i++) {
        want = dval(0, i);
        for (int r = 1; r < size; r++)
            want += dval(r, i);
        if (memcmp(&buf[i], &want, sizeof want) != 0)
            bad = i;
    }
    ck_assert_msg(bad == n, "rank %d: element %zu is %.17g, the rank-order sum is %.17g", rank,
                  bad, bad < n ? buf[bad] : 0.0, want);
    assert_same_on_every_rank("sum of doubles", buf, n * sizeof *buf);
    free(buf);
}
END_TEST

START_TEST(test_empty_counts)
{
    ENCO_CK(enco_dist_sum_floats(dist, NULL, 0));
    ENCO_CK(enco_dist_sum_doubles(dist, NULL, 0));
    ENCO_CK(enco_dist_allgather(dist, NULL, NULL, 0));
    ENCO_CK(enco_dist_bcast(dist, NULL, 0, 0));
    float one = 1.5f;
    ENCO_CK(enco_dist_sum_floats(dist, &one, 0));
    ck_assert(one == 1.5f);
}
END_TEST

START_TEST(test_allgather)
{
    enum { COUNT = 13 };
    unsigned char mine[COUNT];
    for (int j = 0; j < COUNT; j++)
        mine[j] = (unsigned char)(rank * 37 + j * 5 + 1);
    unsigned char *all = malloc((size_t)size * COUNT);
    ck_assert_ptr_nonnull(all);
    memset(all, 0xEE, (size_t)size * COUNT);
    ENCO_CK(enco_dist_allgather(dist, mine, all, COUNT));
    for (int r = 0; r < size; r++)
        for (int j = 0; j < COUNT; j++)
            ck_assert_msg(all[r * COUNT + j] == (unsigned char)(r * 37 + j * 5 + 1),
                          "rank %d: byte %d of rank %d's part is %u", rank, j, r,
                          all[r * COUNT + j]);
    free(all);

    /* Larger than one bucket: gathered piece by piece, each in its place. */
    const size_t big = ENCO_DIST_BUCKET_BYTES + 3;
    unsigned char *src = malloc(big);
    unsigned char *dst = malloc((size_t)size * big);
    ck_assert_ptr_nonnull(src);
    ck_assert_ptr_nonnull(dst);
    for (size_t j = 0; j < big; j++)
        src[j] = (unsigned char)(j * 7 + (size_t)rank * 13 + (j >> 12));
    ENCO_CK(enco_dist_allgather(dist, src, dst, big));
    size_t wrong = 0, first = 0;
    for (int r = 0; r < size; r++)
        for (size_t j = 0; j < big; j++)
            if (dst[(size_t)r * big + j] != (unsigned char)(j * 7 + (size_t)r * 13 + (j >> 12)))
                first = wrong++ ? first : (size_t)r * big + j;
    ck_assert_msg(wrong == 0, "rank %d: %zu wrong bytes, the first at %zu (rank %zu's byte %zu)",
                  rank, wrong, first, first / big, first % big);
    free(src);
    free(dst);
}
END_TEST

START_TEST(test_bcast)
{
    enum { COUNT = 1000 };
    for (int root = size - 1; root >= 0; root -= size > 1 ? size - 1 : 1) {
        unsigned char buf[COUNT];
        for (int j = 0; j < COUNT; j++)
            buf[j] = rank == root ? (unsigned char)(j * 11 + root + 3) : 0xAA;
        ENCO_CK(enco_dist_bcast(dist, buf, COUNT, root));
        for (int j = 0; j < COUNT; j++)
            ck_assert_msg(buf[j] == (unsigned char)(j * 11 + root + 3),
                          "rank %d: byte %d from root %d is %u", rank, j, root, buf[j]);
    }
}
END_TEST

START_TEST(test_any)
{
    int any = -1;
    ENCO_CK(enco_dist_any(dist, 0, &any));
    ck_assert_int_eq(any, 0);
    ENCO_CK(enco_dist_any(dist, rank == size - 1, &any));
    ck_assert_int_eq(any, 1);
    ENCO_CK(enco_dist_any(dist, rank == 0 ? 7 : 0, &any));
    ck_assert_int_eq(any, 1);
    ENCO_CK(enco_dist_any(dist, 1, &any));
    ck_assert_int_eq(any, 1);
}
END_TEST

START_TEST(test_refusals_end_everywhere)
{
    /* A bad argument on every rank, then on the last rank only: every rank
     * fails (none waits for the one that stopped). */
    ck_assert_int_eq(enco_dist_sum_floats(dist, NULL, 4), ENCO_ERR_INVALID_ARG);
    float x[4] = {1, 2, 3, 4};
    enco_status st = enco_dist_sum_floats(dist, rank == size - 1 ? NULL : x, 4);
    ck_assert_int_eq(st, ENCO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(enco_last_error(), "NULL") || strstr(enco_last_error(), "invalid"),
                  "message: %s", enco_last_error());
    ck_assert_int_eq(enco_dist_bcast(dist, x, sizeof x, -1), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_dist_bcast(dist, x, sizeof x, size), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "not a rank"));
    unsigned char both[64];
    ck_assert_int_eq(enco_dist_allgather(dist, both, both, 8), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_dist_any(dist, 0, NULL), ENCO_ERR_INVALID_ARG);
    if (size > 1) {
        /* Counts that differ between ranks. */
        float y[8] = {0};
        st = enco_dist_sum_floats(dist, y, 4 + (size_t)rank);
        ck_assert_int_eq(st, ENCO_ERR_INVALID_ARG);
        ck_assert_msg(strstr(enco_last_error(), "count"), "message: %s", enco_last_error());
        /* Roots that differ. */
        st = enco_dist_bcast(dist, y, sizeof y, rank);
        ck_assert_int_eq(st, ENCO_ERR_INVALID_ARG);
        ck_assert_msg(strstr(enco_last_error(), "root"), "message: %s", enco_last_error());
        /* Different calls at the same time. */
        int any;
        st = rank == 0 ? enco_dist_any(dist, 0, &any) : enco_dist_sum_floats(dist, y, 2);
        ck_assert_int_eq(st, ENCO_ERR_INVALID_ARG);
        ck_assert_msg(strstr(enco_last_error(), "same collective calls"), "message: %s",
                      enco_last_error());
    }
    /* The communicator still works afterwards. */
    float z[3] = {1.0f, (float)rank, -2.0f};
    ENCO_CK(enco_dist_sum_floats(dist, z, 3));
    ck_assert(z[0] == (float)size);
    ck_assert(z[1] == (float)(size * (size - 1) / 2));
    ck_assert(z[2] == -2.0f * (float)size);
}
END_TEST

START_TEST(test_null_is_one_rank)
{
    float f[2] = {1e8f, 1.0f};
    ENCO_CK(enco_dist_sum_floats(NULL, f, 2));
    ck_assert(f[0] == 1e8f && f[1] == 1.0f);
    double g = 0.25;
    ENCO_CK(enco_dist_sum_doubles(NULL, &g, 1));
    ck_assert(g == 0.25);
    char mine[5] = "abcd", all[5] = {0};
    ENCO_CK(enco_dist_allgather(NULL, mine, all, sizeof mine));
    ck_assert_str_eq(all, "abcd");
    ENCO_CK(enco_dist_bcast(NULL, mine, sizeof mine, 0));
    ck_assert_int_eq(enco_dist_bcast(NULL, mine, sizeof mine, 1), ENCO_ERR_INVALID_ARG);
    int any = -1;
    ENCO_CK(enco_dist_any(NULL, 3, &any));
    ck_assert_int_eq(any, 1);
    enco_dist_abort(NULL, 1); /* returns */
    double bytes = -1, seconds = -1;
    enco_dist_stats(NULL, &bytes, &seconds);
    ck_assert(bytes == 0 && seconds == 0);
    enco_dist_free(NULL);
}
END_TEST

START_TEST(test_stats)
{
    double b0, s0, b1, s1;
    enco_dist_stats(dist, &b0, &s0);
    float *buf = calloc(1000, sizeof *buf);
    ck_assert_ptr_nonnull(buf);
    ENCO_CK(enco_dist_sum_floats(dist, buf, 1000));
    enco_dist_stats(dist, &b1, &s1);
    /* The 32-byte header and 4000 bytes from each other rank. */
    ck_assert_msg(b1 - b0 == (double)(size - 1) * (32 + 4000), "bytes %g -> %g", b0, b1);
    if (size > 1)
        ck_assert(s1 > s0);
    else
        ck_assert(b1 == 0 && s1 == 0);
    free(buf);
}
END_TEST

/* Built without MPI, a launcher's environment is refused (size > 1 or
 * unknown) with the way out; size 1 is a single rank. Not under mpirun:
 * the variables are this process's own. */
static void launcher_env(const char *name, const char *value, enco_status want)
{
    ck_assert_int_eq(setenv(name, value, 1), 0);
    enco_dist *d = (enco_dist *)(uintptr_t)1; /* init must clear it */
    enco_status st = enco_dist_init(NULL, NULL, &d);
    unsetenv(name);
    ck_assert_msg(st == want, "%s=%s: %s (%s)", name, value, enco_status_str(st),
                  st ? enco_last_error() : "");
    if (st == ENCO_OK) {
        ck_assert_int_eq(enco_dist_size(d), 1);
        ck_assert_int_eq(enco_dist_rank(d), 0);
        enco_dist_free(d);
        return;
    }
    ck_assert_ptr_null(d);
    const char *msg = enco_last_error();
    ck_assert_msg(strstr(msg, "-Dmpi=enabled") && strstr(msg, "libopenmpi-dev openmpi-bin") &&
                      strstr(msg, name),
                  "message: %s", msg);
}

START_TEST(test_without_mpi_under_launcher)
{
    launcher_env("OMPI_COMM_WORLD_SIZE", "2", ENCO_ERR_UNSUPPORTED);
    launcher_env("OMPI_COMM_WORLD_SIZE", "1", ENCO_OK);
    launcher_env("PMI_SIZE", "3", ENCO_ERR_UNSUPPORTED);
    launcher_env("PMIX_RANK", "0", ENCO_ERR_UNSUPPORTED);
}
END_TEST

START_TEST(test_init_arguments)
{
    ck_assert_int_eq(enco_dist_init(NULL, NULL, NULL), ENCO_ERR_INVALID_ARG);
}
END_TEST

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--expect-size") == 0 && i + 1 < argc) {
            expect_size = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--") != 0 && argv[i][0] == '-') {
            fprintf(stderr, "usage: test_dist [--expect-size N]\n");
            return 2;
        }
    }
    enco_status st = enco_dist_init(&argc, &argv, &dist);
    if (st != ENCO_OK) {
        fprintf(stderr, "enco_dist_init: %s: %s\n", enco_status_str(st), enco_last_error());
        return EXIT_FAILURE;
    }
    rank = enco_dist_rank(dist);
    size = enco_dist_size(dist);

    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("dist");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_topology);
    tcase_add_test(tc, test_sum_floats_rank_order);
    tcase_add_test(tc, test_sum_floats_buckets);
    tcase_add_test(tc, test_sum_doubles);
    tcase_add_test(tc, test_empty_counts);
    tcase_add_test(tc, test_allgather);
    tcase_add_test(tc, test_bcast);
    tcase_add_test(tc, test_any);
    tcase_add_test(tc, test_refusals_end_everywhere);
    tcase_add_test(tc, test_null_is_one_rank);
    tcase_add_test(tc, test_stats);
    tcase_add_test(tc, test_init_arguments);
    if (!enco_dist_has_mpi())
        tcase_add_test(tc, test_without_mpi_under_launcher);
    suite_add_tcase(s, tc);
    int rc = test_run_suite(s);
    /* Every rank learns whether another failed, so that mpirun's status
     * says so even when only one rank's tests failed. */
    int any = 0;
    st = enco_dist_any(dist, rc != EXIT_SUCCESS, &any);
    if (st != ENCO_OK) {
        fprintf(stderr, "enco_dist_any: %s\n", enco_last_error());
        any = 1;
    }
    if (any && rc == EXIT_SUCCESS)
        fprintf(stderr, "rank %d: another rank's tests failed\n", rank);
    enco_dist_free(dist);
    return any ? EXIT_FAILURE : EXIT_SUCCESS;
}
