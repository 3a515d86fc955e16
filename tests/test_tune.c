/* CLBlast tuning (src/cl/tune.c): importing clblast_tuner_xgemm results,
 * choosing the fastest, refusing foreign or broken files, storing per device
 * and applying on later contexts. Each test runs in a process of its own
 * (CLBlast's parameter overrides are process-wide) with its own cache folder. */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parameters CLBlast accepts on every device we test on (found by its tuner on
 * an H100; valid OpenCL for any device with work-groups of 128). */
#define GOOD "GEMMK=0 KREG=1 KWG=32 KWI=2 MDIMA=8 MDIMC=8 MWG=32 NDIMB=16 NDIMC=16 NWG=64 " \
             "PRECISION=32 SA=1 SB=1 STRM=0 STRN=0 VWM=4 VWN=4"
#define OTHER "GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=16 NDIMB=8 NDIMC=8 NWG=16 " \
              "PRECISION=32 SA=0 SB=0 STRM=0 STRN=0 VWM=1 VWN=1"

static char dir[128];

static enco_ctx *fresh_ctx(void)
{
    enco_ctx *ctx = NULL;
    enco_ctx_options o = {.cache_dir = dir};
    ENCO_CK(enco_ctx_create(&ctx, &o));
    return ctx;
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/enco-test-tune-%ld", (long)getpid());
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    unsetenv("ENCO_CLBLAST_TUNING");
}

static void teardown(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A tuner result file as clblast_tuner_xgemm writes it (metadata first). */
static void write_result(const char *path, const char *family, const char *device,
                         const char *time, const char *params)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\n  \"kernel_family\": \"%s\",\n  \"precision\": \"32\",\n", family);
    fprintf(f, "  \"best_kernel\": \"Xgemm\",\n");
    if (time)
        fprintf(f, "  \"best_time\": \"%s\",\n", time);
    if (params)
        fprintf(f, "  \"best_parameters\": \"%s\",\n", params);
    fprintf(f, "  \"arg_m\": \"256\",\n  \"clblast_device_name\": \"%s\",\n", device);
    fprintf(f, "  \"results\": [\n    {\n      \"kernel\": \"Xgemm\",\n      \"time\": 9.0,\n"
               "      \"parameters\": {\"MWG\": 128}\n    }\n  ]\n}\n");
    fclose(f);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int stored_exists(enco_ctx *ctx)
{
    char path[2048];
    ENCO_CK(enco_tuning_path(ctx, path, sizeof path));
    return access(path, F_OK) == 0;
}

/* C = A B through CLBlast (ENCO_GEMM_TILE=0 keeps CPU devices on it) against
 * float64, at a size that takes CLBlast's tuned (indirect) kernel. */
static void check_gemm(enco_ctx *ctx)
{
    const size_t m = 600, n = 560, k = 530;
    float *a = malloc(m * k * sizeof *a), *b = malloc(k * n * sizeof *b);
    test_fill_uniform(a, m * k, 11, -1, 1);
    test_fill_uniform(b, k * n, 12, -1, 1);
    cl_mem ba, bb, bc;
    ENCO_CK(enco_buffer_alloc(ctx, m * k * 4, &ba));
    ENCO_CK(enco_buffer_alloc(ctx, k * n * 4, &bb));
    ENCO_CK(enco_buffer_alloc(ctx, m * n * 4, &bc));
    ENCO_CK(enco_upload(ctx, ba, 0, m * k * 4, a));
    ENCO_CK(enco_upload(ctx, bb, 0, k * n * 4, b));
    /* CLBlast, not the packed CPU GEMM (the policy's ENCO_GEMM_TILE=0). */
    const enco_kernel_policy keep = *enco_ctx_kernel_policy(ctx);
    enco_kernel_policy clblast = keep;
    clblast.gemm_packed = ENCO_PATH_OFF;
    ENCO_CK(enco_ctx_set_kernel_policy(ctx, &clblast));
    ENCO_CK(enco_sgemm(ctx, 0, 0, m, n, k, 1.0f, ba, 0, k, bb, 0, n, 0.0f, bc, 0, n));
    ENCO_CK(enco_ctx_set_kernel_policy(ctx, &keep));
    float *c = malloc(m * n * sizeof *c);
    ENCO_CK(enco_download(ctx, bc, 0, m * n * 4, c));
    double worst = 0;
    for (size_t i = 0; i < m; i += 7)
        for (size_t j = 0; j < n; j++) {
            double ref = 0, mag = 0;
            for (size_t l = 0; l < k; l++) {
                ref += (double)a[i * k + l] * b[l * n + j];
                mag += fabs((double)a[i * k + l] * b[l * n + j]);
            }
            worst = fmax(worst, fabs(ref - c[i * n + j]) / mag);
        }
    printf("maxrel clblast_tuned_sgemm %.3g\n", worst);
    ck_assert_msg(worst < 1e-5, "tuned CLBlast SGEMM relative error %g", worst);
    enco_buffer_free(ctx, ba), enco_buffer_free(ctx, bb), enco_buffer_free(ctx, bc);
    free(a), free(b), free(c);
}

START_TEST(import_keeps_the_fastest_and_later_contexts_apply_it)
{
    enco_ctx *ctx = fresh_ctx();
    const char *dev = enco_ctx_device(ctx)->name;
    ck_assert_str_eq(enco_ctx_tuning(ctx), "");
    char f1[300], f2[300];
    snprintf(f1, sizeof f1, "%s/clblast_xgemm_1_32.json", dir);
    snprintf(f2, sizeof f2, "%s/clblast_xgemm_2_32.json", dir);
    write_result(f1, "xgemm_1", dev, "0.5", OTHER);
    write_result(f2, "xgemm_2", dev, "0.19", GOOD);
    const char *files[] = {f1, f2};
    char summary[4096];
    ENCO_CK(enco_tuning_import(ctx, files, 2, summary, sizeof summary));
    ck_assert_ptr_nonnull(strstr(summary, "0.19 ms"));
    enco_ctx_free(ctx);

    ctx = fresh_ctx();
    char path[2048];
    ENCO_CK(enco_tuning_path(ctx, path, sizeof path));
    const char *text = slurp(path);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strstr(text, "Xgemm 0.19 GEMMK=0 KREG=1 KWG=32") != NULL, "stored: %s", text);
    ck_assert_ptr_null(strstr(text, "PRECISION"));
    ck_assert_ptr_null(strstr(text, "KWG=16"));
    ck_assert_ptr_nonnull(strstr(enco_ctx_tuning(ctx), path));
    check_gemm(ctx);
    enco_ctx_free(ctx);

    setenv("ENCO_CLBLAST_TUNING", "0", 1);
    ctx = fresh_ctx();
    ck_assert_str_eq(enco_ctx_tuning(ctx), "");
    unsetenv("ENCO_CLBLAST_TUNING");
    int removed = 0;
    ENCO_CK(enco_tuning_clear(ctx, &removed));
    ck_assert_int_eq(removed, 1);
    ck_assert(!stored_exists(ctx));
    ENCO_CK(enco_tuning_clear(ctx, &removed));
    ck_assert_int_eq(removed, 0);
    enco_ctx_free(ctx);
}
END_TEST

static void expect_refused(enco_ctx *ctx, const char *path, enco_status want, const char *text)
{
    const char *files[] = {path};
    char summary[256];
    enco_status st = enco_tuning_import(ctx, files, 1, summary, sizeof summary);
    ck_assert_msg(st == want, "%s: got %s (%s)", path, enco_status_str(st), enco_last_error());
    ck_assert_msg(strstr(enco_last_error(), text) != NULL, "message '%s' lacks '%s'",
                  enco_last_error(), text);
    ck_assert(!stored_exists(ctx));
}

START_TEST(foreign_or_broken_results_are_refused)
{
    enco_ctx *ctx = fresh_ctx();
    const char *dev = enco_ctx_device(ctx)->name;
    char f[300];
    snprintf(f, sizeof f, "%s/r.json", dir);
    write_result(f, "xgemm_1", "Some Other GPU", "0.2", GOOD);
    expect_refused(ctx, f, ENCO_ERR_INVALID_ARG, "tuned on 'Some Other GPU'");
    write_result(f, "xgemm_1", dev, "0.2", NULL);
    expect_refused(ctx, f, ENCO_ERR_INVALID_ARG, "not a CLBlast tuner result");
    write_result(f, "copy", dev, "0.2", "COPY_DIMX=8 COPY_DIMY=8 COPY_VW=1 COPY_WPT=1");
    expect_refused(ctx, f, ENCO_ERR_INVALID_ARG, "results of the 'copy' tuner");
    write_result(f, "xgemm_1", dev, "0.2", "MWG=32 PRECISION=64");
    expect_refused(ctx, f, ENCO_ERR_INVALID_ARG, "precision 64");
    write_result(f, "xgemm_1", dev, "0.2", "MWG=3x2 NWG=16");
    expect_refused(ctx, f, ENCO_ERR_INVALID_ARG, "bad value in 'MWG=3x2'");
    write_result(f, "xgemm_1", dev, "fast", GOOD);
    expect_refused(ctx, f, ENCO_ERR_INVALID_ARG, "bad best_time");
    /* CLBlast itself refuses a parameter set that lacks its names. */
    write_result(f, "xgemm_1", dev, "0.2", "MWG=32 NWG=64 KWG=32 PRECISION=32");
    const char *files[] = {f};
    char summary[256];
    ck_assert_int_ne(enco_tuning_import(ctx, files, 1, summary, sizeof summary), ENCO_OK);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "CLBlast refused the parameters for Xgemm"));
    ck_assert(!stored_exists(ctx));
    snprintf(f, sizeof f, "%s/missing.json", dir);
    expect_refused(ctx, f, ENCO_ERR_IO, "cannot read");
    enco_ctx_free(ctx);
}
END_TEST

START_TEST(a_damaged_stored_file_is_ignored_with_the_reason)
{
    enco_ctx *ctx = fresh_ctx();
    char path[2048];
    ENCO_CK(enco_tuning_path(ctx, path, sizeof path));
    enco_ctx_free(ctx);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "# damaged\nXgemm 0.2 MWG=32 NWG=\n");
    fclose(f);
    ctx = fresh_ctx(); /* must still open: the engine runs on CLBlast's own parameters */
    ck_assert_msg(strncmp(enco_ctx_tuning(ctx), "ignored (", 9) == 0, "%s", enco_ctx_tuning(ctx));
    ck_assert_ptr_nonnull(strstr(enco_ctx_tuning(ctx), "bad value in 'NWG='"));
    enco_check_result r;
    ENCO_CK(enco_ctx_self_check(ctx, &r));
    ck_assert(r.gemm_ok);
    enco_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tune");
    TCase *t = tcase_create("clblast");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 600);
    tcase_add_test(t, import_keeps_the_fastest_and_later_contexts_apply_it);
    tcase_add_test(t, foreign_or_broken_results_are_refused);
    tcase_add_test(t, a_damaged_stored_file_is_ignored_with_the_reason);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
