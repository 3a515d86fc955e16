#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enco_ctx *ctx_shared;

enco_ctx *test_ctx(void)
{
    if (!ctx_shared) {
        enco_status st = enco_ctx_create(&ctx_shared, NULL);
        ck_assert_msg(st == ENCO_OK, "no OpenCL device for the tests (%s): %s",
                      enco_status_str(st), enco_last_error());
    }
    return ctx_shared;
}

int test_setenv(const char *name, const char *value)
{
    if ((value && *value ? setenv(name, value, 1) : unsetenv(name)) != 0)
        return -1;
    enco_kernel_policy p = {0};
    if (enco_kernel_policy_apply_env(&p) != ENCO_OK)
        return -1;
    return enco_ctx_set_kernel_policy(test_ctx(), &p) == ENCO_OK ? 0 : -1;
}

int test_on_oclgrind(void) { return strstr(enco_ctx_device(test_ctx())->name, "Oclgrind") != NULL; }

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void test_fill_uniform_f64(double *x, size_t n, uint64_t seed, double lo, double hi)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * ((double)(splitmix(&s) >> 11) * 0x1.0p-53);
}

void test_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * ((double)(splitmix(&s) >> 11) * 0x1.0p-53));
}

cl_mem test_alloc(size_t n)
{
    cl_mem m = NULL;
    ENCO_CK(enco_buffer_alloc(test_ctx(), (n ? n : 1) * sizeof(float), &m));
    return m;
}

cl_mem test_upload(const float *host, size_t n)
{
    cl_mem m = test_alloc(n);
    ENCO_CK(enco_upload(test_ctx(), m, 0, n * sizeof(float), host));
    return m;
}

float *test_download(cl_mem mem, size_t n)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(x);
    ENCO_CK(enco_download(test_ctx(), mem, 0, n * sizeof(float), x));
    return x;
}

void test_release(cl_mem mem) { enco_buffer_free(test_ctx(), mem); }

double test_assert_close(const char *what, const float *got, const double *ref, size_t n,
                         double atol, double rtol)
{
    double max_rel = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        ck_assert_msg(d <= atol + rtol * fabs(ref[i]),
                      "%s: element %zu is %.9g, reference %.9g (|diff| %.3g > %.3g + %.3g*|ref|)",
                      what, i, (double)got[i], ref[i], d, atol, rtol);
        double scale = fabs(ref[i]) > atol ? fabs(ref[i]) : atol;
        if (d / scale > max_rel)
            max_rel = d / scale;
    }
    printf("maxrel %s %.3g\n", what, max_rel);
    return max_rel;
}

void test_assert_bitwise(const char *what, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&a[i], &b[i], sizeof(float)) == 0,
                      "%s: run 1 and run 2 differ at element %zu (%.9g vs %.9g)", what, i,
                      (double)a[i], (double)b[i]);
}

int test_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    /* Freed here, not in atexit: Oclgrind tears its runtime down before
     * atexit handlers registered after it, and crashes on a late release. */
    enco_ctx_free(ctx_shared);
    ctx_shared = NULL;
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
