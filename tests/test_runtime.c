/* Engine foundation: device selection, program build and cache, kernel round
 * trip, GEMM backends, status names. */
#include "harness.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_root[256];

static void make_tmp_root(void)
{
    if (tmp_root[0])
        return;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/enco-test-runtime-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp_root));
}

static void tmp_path(char *buf, size_t size, const char *leaf)
{
    make_tmp_root();
    snprintf(buf, size, "%s/%s", tmp_root, leaf);
}

/* ---- status names ----------------------------------------------------- */

START_TEST(status_names)
{
    ck_assert_str_eq(enco_status_str(ENCO_OK), "ENCO_OK");
    ck_assert_str_eq(enco_status_str(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
    ck_assert_str_eq(enco_status_str(CL_INVALID_KERNEL_NAME), "CL_INVALID_KERNEL_NAME");
    ck_assert_str_eq(enco_status_str(-1017), "CLBlastInvalidDimension");
    ck_assert_str_eq(enco_status_str(ENCO_ERR_BUILD), "ENCO_ERR_BUILD");
    ck_assert_str_eq(enco_status_str(ENCO_ERR_NO_DEVICE), "ENCO_ERR_NO_DEVICE");
    ck_assert_str_eq(enco_status_str(12345), "UNKNOWN_STATUS");
}
END_TEST

/* ---- device selection ------------------------------------------------- */

START_TEST(select_by_index)
{
    enco_device_info *list = NULL;
    size_t n = 0;
    ENCO_CK(enco_devices_list(&list, &n));
    ck_assert_uint_ge(n, 1);
    for (size_t i = 0; i < n; i++) {
        char spec[16];
        snprintf(spec, sizeof spec, "%zu", i);
        unsigned idx = 99;
        ENCO_CK(enco_device_select(spec, &idx));
        ck_assert_uint_eq(idx, i);
    }
    enco_devices_free(list);
}
END_TEST

START_TEST(select_by_name)
{
    enco_device_info *list = NULL;
    size_t n = 0;
    ENCO_CK(enco_devices_list(&list, &n));
    /* A case-changed piece of the last device's name selects it (first match wins). */
    char piece[8] = {0};
    const char *name = list[n - 1].name;
    size_t len = strlen(name);
    ck_assert_uint_ge(len, 3);
    for (size_t i = 0; i < 4 && i < len; i++)
        piece[i] = (char)((i % 2) ? toupper((unsigned char)name[i]) : tolower((unsigned char)name[i]));
    unsigned idx = 99;
    ENCO_CK(enco_device_select(piece, &idx));
    ck_assert_uint_lt(idx, n);
    char full[300];
    snprintf(full, sizeof full, "%s %s", list[idx].platform, list[idx].name);
    for (char *p = full; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (char *p = piece; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    ck_assert_msg(strstr(full, piece) != NULL, "selected '%s' for '%s'", full, piece);
    /* The platform name works too. */
    ENCO_CK(enco_device_select(list[0].platform, &idx));
    ck_assert_uint_eq(list[idx].platform_index, list[0].platform_index);
    enco_devices_free(list);
}
END_TEST

START_TEST(select_bad_index)
{
    unsigned idx = 0;
    enco_status st = enco_device_select("9999", &idx);
    ck_assert_int_eq(st, ENCO_ERR_NO_DEVICE);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "out of range"));
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "available devices:"));
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "0: "));
}
END_TEST

START_TEST(select_bad_name)
{
    unsigned idx = 0;
    enco_status st = enco_device_select("no-such-device-xyz", &idx);
    ck_assert_int_eq(st, ENCO_ERR_NO_DEVICE);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "no-such-device-xyz"));
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "available devices:"));
    /* The context refuses it the same way. */
    enco_ctx *ctx = NULL;
    enco_ctx_options o = {.device = "no-such-device-xyz"};
    ck_assert_int_eq(enco_ctx_create(&ctx, &o), ENCO_ERR_NO_DEVICE);
    ck_assert_ptr_null(ctx);
}
END_TEST

START_TEST(select_from_env)
{
    const char *old = getenv("ENCO_DEVICE");
    char *saved = old ? strdup(old) : NULL;
    setenv("ENCO_DEVICE", "no-such-device-env", 1);
    unsigned idx = 0;
    ck_assert_int_eq(enco_device_select(NULL, &idx), ENCO_ERR_NO_DEVICE);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "ENCO_DEVICE"));
    setenv("ENCO_DEVICE", "0", 1);
    ENCO_CK(enco_device_select(NULL, &idx));
    ck_assert_uint_eq(idx, 0);
    /* An explicit selection beats the environment. */
    setenv("ENCO_DEVICE", "no-such-device-env", 1);
    ENCO_CK(enco_device_select("0", &idx));
    if (saved) {
        setenv("ENCO_DEVICE", saved, 1);
        free(saved);
    } else {
        unsetenv("ENCO_DEVICE");
    }
}
END_TEST

START_TEST(default_prefers_gpu)
{
    enco_device_info *list = NULL;
    size_t n = 0;
    ENCO_CK(enco_devices_list(&list, &n));
    size_t expect = 0;
    for (size_t i = 0; i < n; i++)
        if (list[i].is_gpu) {
            expect = i;
            break;
        }
    const char *old = getenv("ENCO_DEVICE");
    char *saved = old ? strdup(old) : NULL;
    unsetenv("ENCO_DEVICE");
    unsigned idx = 99;
    ENCO_CK(enco_device_select(NULL, &idx));
    ck_assert_uint_eq(idx, expect);
    if (saved) {
        setenv("ENCO_DEVICE", saved, 1);
        free(saved);
    }
    /* The device info is filled in. */
    ck_assert(list[0].name[0] != '\0');
    ck_assert(list[0].compute_units >= 1);
    ck_assert(list[0].global_mem_bytes > 0);
    ck_assert(list[0].max_alloc_bytes > 0);
    ck_assert(strstr(list[0].opencl_c_version, "OpenCL C") != NULL);
    enco_devices_free(list);
}
END_TEST

/* ---- programs --------------------------------------------------------- */

START_TEST(embedded_sources)
{
    const char *want[] = {"common", "gemm", "selftest"};
    for (size_t w = 0; w < 3; w++) {
        int found = 0;
        for (size_t i = 0; i < enco_cl_sources_count; i++)
            if (strcmp(enco_cl_sources[i].name, want[w]) == 0 &&
                strlen(enco_cl_sources[i].source) > 20)
                found = 1;
        ck_assert_msg(found, "cl/%s.cl is not embedded", want[w]);
    }
}
END_TEST

static enco_ctx *ctx_with_cache(const char *dir, int mode)
{
    enco_ctx *ctx = NULL;
    enco_ctx_options o = {.cache_mode = mode, .cache_dir = dir};
    ENCO_CK(enco_ctx_create(&ctx, &o));
    return ctx;
}

static void run_selftest_kernel(enco_ctx *ctx, float scale)
{
    enum { N = 37 };
    float x[N], y[N], out[N];
    test_fill_uniform(x, N, 11, -1, 1);
    test_fill_uniform(y, N, 12, -1, 1);
    cl_mem bx = NULL, by = NULL;
    ENCO_CK(enco_buffer_alloc(ctx, sizeof x, &bx));
    ENCO_CK(enco_buffer_alloc(ctx, sizeof y, &by));
    ENCO_CK(enco_upload(ctx, bx, 0, sizeof x, x));
    ENCO_CK(enco_upload(ctx, by, 0, sizeof y, y));
    const size_t global = N, local = 16; /* N is not a multiple of local: tests the guard */
    ENCO_CK(ENCO_RUN(ctx, "selftest", "selftest_axpby_tanh", 1, &global, &local, ENCO_ARG_INT(N),
                     ENCO_ARG_FLOAT(0.5f), ENCO_ARG_MEM(bx), ENCO_ARG_FLOAT(2.0f),
                     ENCO_ARG_MEM(by)));
    ENCO_CK(enco_download(ctx, by, 0, sizeof out, out));
    double ref[N];
    for (int i = 0; i < N; i++)
        ref[i] = scale * tanh(0.5 * x[i] + 2.0 * y[i]);
    test_assert_close("selftest_axpby_tanh", out, ref, N, 1e-6, 1e-5);
    enco_buffer_free(ctx, bx);
    enco_buffer_free(ctx, by);
}

START_TEST(kernel_round_trip)
{
    enco_ctx *ctx = ctx_with_cache(NULL, -1);
    run_selftest_kernel(ctx, 1.0f);
    enco_ctx_stats s = enco_ctx_get_stats(ctx);
    ck_assert_uint_eq(s.programs_built, 1);
    ck_assert_uint_eq(s.cache_hits, 0);
    /* A second launch reuses the built kernel. */
    run_selftest_kernel(ctx, 1.0f);
    ck_assert_uint_eq(enco_ctx_get_stats(ctx).programs_built, 1);
    /* Allocations are counted and freed. */
    ck_assert_uint_eq(enco_ctx_get_stats(ctx).device_bytes, 0);
    ck_assert_uint_ge(enco_ctx_get_stats(ctx).device_peak_bytes, 2 * 37 * sizeof(float));
    enco_ctx_free(ctx);
}
END_TEST

START_TEST(unknown_kernel_and_program)
{
    enco_ctx *ctx = test_ctx();
    cl_kernel k = NULL;
    ck_assert_int_eq(enco_kernel_get(ctx, "selftest", "no_such_kernel", &k), CL_INVALID_KERNEL_NAME);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "no_such_kernel"));
    ck_assert_int_eq(enco_kernel_get(ctx, "no_such_program", "x", &k), ENCO_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "no_such_program"));
}
END_TEST

START_TEST(build_failure_reports_log)
{
    enco_ctx *ctx = ctx_with_cache(NULL, -1);
    cl_program p = NULL;
    const char *bad = "__kernel void broken(__global float *x) { x[0] = undefined_symbol_q; }\n";
    enco_status st = enco_program_build_source(ctx, "broken", bad, NULL, &p);
    ck_assert_int_eq(st, ENCO_ERR_BUILD);
    ck_assert_ptr_null(p);
    const char *msg = enco_last_error();
    ck_assert_ptr_nonnull(strstr(msg, "cl/broken.cl"));
    ck_assert_ptr_nonnull(strstr(msg, "build log:"));
    /* The log itself names the offending identifier. */
    ck_assert_msg(strstr(msg, "undefined_symbol_q") != NULL, "build log lacks the error: %s", msg);
    enco_ctx_free(ctx);
}
END_TEST

static int count_entries(const char *dir, char *first, size_t size)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s/*.bin 2>/dev/null", dir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    int n = 0;
    char line[512];
    while (fgets(line, sizeof line, p)) {
        if (n == 0 && first) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(first, size, "%s", line);
        }
        n++;
    }
    pclose(p);
    return n;
}

START_TEST(cache_hit)
{
    char dir[300];
    tmp_path(dir, sizeof dir, "cache-hit/nested");
    enco_ctx *ctx = ctx_with_cache(dir, 1);
    ck_assert_str_eq(enco_ctx_cache_dir(ctx), dir);
    run_selftest_kernel(ctx, 1.0f);
    enco_ctx_stats s = enco_ctx_get_stats(ctx);
    ck_assert_uint_eq(s.programs_built, 1);
    ck_assert_uint_eq(s.cache_hits, 0);
    enco_ctx_free(ctx);
    ck_assert_int_eq(count_entries(dir, NULL, 0), 1);

    ctx = ctx_with_cache(dir, 1);
    run_selftest_kernel(ctx, 1.0f);
    s = enco_ctx_get_stats(ctx);
    ck_assert_uint_eq(s.programs_built, 0);
    ck_assert_uint_eq(s.cache_hits, 1);
    ck_assert_uint_eq(s.cache_rejects, 0);
    enco_ctx_free(ctx);
}
END_TEST

static void corrupt(const char *path, int truncate_it)
{
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    ck_assert_int_gt(size, 100);
    if (truncate_it) {
        fclose(f);
        ck_assert_int_eq(truncate(path, size / 2), 0);
        return;
    }
    fseek(f, size - 10, SEEK_SET);
    int c = fgetc(f);
    fseek(f, size - 10, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

static void check_recovers(int truncate_it)
{
    char dir[300];
    tmp_path(dir, sizeof dir, truncate_it ? "cache-truncated" : "cache-flipped");
    enco_ctx *ctx = ctx_with_cache(dir, 1);
    run_selftest_kernel(ctx, 1.0f);
    enco_ctx_free(ctx);
    char entry[512];
    ck_assert_int_eq(count_entries(dir, entry, sizeof entry), 1);
    corrupt(entry, truncate_it);

    ctx = ctx_with_cache(dir, 1);
    run_selftest_kernel(ctx, 1.0f); /* must still work */
    enco_ctx_stats s = enco_ctx_get_stats(ctx);
    ck_assert_uint_eq(s.cache_rejects, 1);
    ck_assert_uint_eq(s.programs_built, 1);
    enco_ctx_free(ctx);

    /* The entry was rewritten and is good again. */
    ctx = ctx_with_cache(dir, 1);
    run_selftest_kernel(ctx, 1.0f);
    s = enco_ctx_get_stats(ctx);
    ck_assert_uint_eq(s.cache_hits, 1);
    ck_assert_uint_eq(s.cache_rejects, 0);
    enco_ctx_free(ctx);
}

START_TEST(cache_truncated_recovers) { check_recovers(1); }
END_TEST

START_TEST(cache_corrupt_recovers) { check_recovers(0); }
END_TEST

START_TEST(cache_garbage_file_recovers)
{
    char dir[300];
    tmp_path(dir, sizeof dir, "cache-garbage");
    enco_ctx *ctx = ctx_with_cache(dir, 1);
    run_selftest_kernel(ctx, 1.0f);
    enco_ctx_free(ctx);
    char entry[512];
    ck_assert_int_eq(count_entries(dir, entry, sizeof entry), 1);
    FILE *f = fopen(entry, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("not a program binary at all", f);
    fclose(f);
    ctx = ctx_with_cache(dir, 1);
    run_selftest_kernel(ctx, 1.0f);
    ck_assert_uint_eq(enco_ctx_get_stats(ctx).cache_rejects, 1);
    enco_ctx_free(ctx);
}
END_TEST

START_TEST(cache_disabled_and_clear)
{
    char dir[300];
    tmp_path(dir, sizeof dir, "cache-off");
    enco_ctx *ctx = ctx_with_cache(dir, -1);
    run_selftest_kernel(ctx, 1.0f);
    enco_ctx_free(ctx);
    ck_assert_int_eq(count_entries(dir, NULL, 0), 0);

    /* Environment switch. */
    setenv("ENCO_CL_CACHE", "0", 1);
    ctx = ctx_with_cache(dir, 0);
    run_selftest_kernel(ctx, 1.0f);
    enco_ctx_free(ctx);
    ck_assert_int_eq(count_entries(dir, NULL, 0), 0);
    unsetenv("ENCO_CL_CACHE");

    ctx = ctx_with_cache(dir, 0);
    run_selftest_kernel(ctx, 1.0f);
    cl_kernel k = NULL;
    ENCO_CK(enco_kernel_get(ctx, "gemm", "gemm_builtin", &k));
    enco_ctx_free(ctx);
    ck_assert_int_eq(count_entries(dir, NULL, 0), 2);

    /* clear removes our entries and nothing else */
    char other[400];
    snprintf(other, sizeof other, "%s/keep-me.txt", dir);
    FILE *f = fopen(other, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    unsigned removed = 0;
    ENCO_CK(enco_cache_clear(dir, &removed));
    ck_assert_uint_eq(removed, 2);
    ck_assert_int_eq(count_entries(dir, NULL, 0), 0);
    ck_assert_int_eq(access(other, F_OK), 0);
    /* Clearing a folder that does not exist is fine. */
    char missing[400];
    snprintf(missing, sizeof missing, "%s/none", dir);
    ENCO_CK(enco_cache_clear(missing, &removed));
    ck_assert_uint_eq(removed, 0);
}
END_TEST

START_TEST(cache_default_dir)
{
    char buf[512];
    const char *old_x = getenv("XDG_CACHE_HOME");
    const char *old_e = getenv("ENCO_CACHE_DIR");
    char *sx = old_x ? strdup(old_x) : NULL, *se = old_e ? strdup(old_e) : NULL;
    unsetenv("ENCO_CACHE_DIR");
    setenv("XDG_CACHE_HOME", "/x/y", 1);
    ENCO_CK(enco_cache_default_dir(buf, sizeof buf));
    ck_assert_str_eq(buf, "/x/y/enco-cl");
    unsetenv("XDG_CACHE_HOME");
    const char *old_h = getenv("HOME");
    char *sh = old_h ? strdup(old_h) : NULL;
    setenv("HOME", "/home/u", 1);
    ENCO_CK(enco_cache_default_dir(buf, sizeof buf));
    ck_assert_str_eq(buf, "/home/u/.cache/enco-cl");
    setenv("ENCO_CACHE_DIR", "/z", 1);
    ENCO_CK(enco_cache_default_dir(buf, sizeof buf));
    ck_assert_str_eq(buf, "/z");
    unsetenv("ENCO_CACHE_DIR");
    if (sh)
        setenv("HOME", sh, 1);
    free(sh);
    if (sx)
        setenv("XDG_CACHE_HOME", sx, 1);
    if (se)
        setenv("ENCO_CACHE_DIR", se, 1);
    free(sx);
    free(se);
}
END_TEST

START_TEST(kernel_dir_override)
{
    /* ENCO_CL_DIR-style folder: sources come from disk, not from the binary. */
    char dir[300], path[400];
    tmp_path(dir, sizeof dir, "kernels");
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/common.cl", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("#define SCALE 3.0f\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/selftest.cl", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("__kernel void selftest_axpby_tanh(int n, float a, __global const float *x, float b,\n"
          "  __global float *y) { int i = get_global_id(0); if (i < n) y[i] = SCALE * tanh(a * "
          "x[i] + b * y[i]); }\n",
          f);
    fclose(f);
    enco_ctx *ctx = NULL;
    enco_ctx_options o = {.cache_mode = -1, .kernel_dir = dir};
    ENCO_CK(enco_ctx_create(&ctx, &o));
    run_selftest_kernel(ctx, 3.0f);
    /* A file missing from the folder is a clear error. */
    cl_kernel k = NULL;
    ck_assert_int_eq(enco_kernel_get(ctx, "gemm", "gemm_builtin", &k), ENCO_ERR_IO);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "gemm.cl"));
    enco_ctx_free(ctx);
}
END_TEST

/* ---- GEMM and the self check ------------------------------------------ */

/* One GEMM problem as the tests pose it. */
typedef struct gemm_spec {
    enco_gemm_backend backend;
    int ta, tb;
    size_t m, n, k, batch;
    float beta;
    size_t pad;   /* extra elements per row of A, B and C (leading dimension > width) */
    int shared_a; /* stride_a = 0: one A for the whole batch, as the convolutions pass it */
    int nan_c;    /* C starts as NaN everywhere (only with beta = 0: C must not be read) */
} gemm_spec;

/* Runs spec on a fresh context, checks every C against a float64 reference
 * and every float around and between the C matrices for being untouched;
 * returns the whole C buffer after the call (malloc'd) for bitwise
 * comparisons, and the number of kernels launched through enco_kernel_run. */
static float *gemm_run(const gemm_spec *g, uint64_t *launches)
{
    enco_ctx *ctx = NULL;
    enco_ctx_options o = {.gemm = g->backend};
    ENCO_CK(enco_ctx_create(&ctx, &o));
    ck_assert_int_eq(enco_ctx_gemm_backend(ctx), g->backend);
    const size_t m = g->m, n = g->n, k = g->k, batch = g->batch;
    const size_t arows = g->ta ? k : m, acols = g->ta ? m : k;
    const size_t brows = g->tb ? n : k, bcols = g->tb ? k : n;
    const size_t lda = acols + g->pad, ldb = bcols + g->pad, ldc = n + g->pad;
    /* Padded strides; C rows also end with pad floats that must stay as they are. */
    const size_t sa = g->shared_a ? 0 : arows * lda + 3, sb = brows * ldb + 5, sc = m * ldc + 7;
    const size_t na = g->shared_a ? arows * lda : sa * batch, nb = sb * batch, nc = sc * batch;
    float *a = malloc(na * sizeof(float)), *b = malloc(nb * sizeof(float));
    float *c = malloc(nc * sizeof(float));
    test_fill_uniform(a, na, 21, -1, 1);
    test_fill_uniform(b, nb, 22, -1, 1);
    test_fill_uniform(c, nc, 23, -1, 1);
    if (g->nan_c) {
        ck_assert(g->beta == 0.0f);
        for (size_t i = 0; i < nc; i++)
            c[i] = NAN;
    }
    cl_mem ba, bb, bc;
    ENCO_CK(enco_buffer_alloc(ctx, (na + 2) * sizeof(float), &ba));
    ENCO_CK(enco_buffer_alloc(ctx, (nb + 2) * sizeof(float), &bb));
    ENCO_CK(enco_buffer_alloc(ctx, (nc + 2) * sizeof(float), &bc));
    /* Offsets of 2 elements exercise the offset arguments. */
    ENCO_CK(enco_upload(ctx, ba, 8, na * sizeof(float), a));
    ENCO_CK(enco_upload(ctx, bb, 8, nb * sizeof(float), b));
    ENCO_CK(enco_upload(ctx, bc, 8, nc * sizeof(float), c));
    const uint64_t launches0 = enco_ctx_get_stats(ctx).kernel_launches;
    if (batch == 1 && !g->shared_a)
        ENCO_CK(enco_sgemm(ctx, g->ta, g->tb, m, n, k, 1.5f, ba, 2, lda, bb, 2, ldb, g->beta, bc,
                           2, ldc));
    else
        ENCO_CK(enco_sgemm_batched(ctx, g->ta, g->tb, m, n, k, 1.5f, ba, 2, lda, sa, bb, 2, ldb,
                                   sb, g->beta, bc, 2, ldc, sc, batch));
    ENCO_CK(enco_finish(ctx));
    *launches = enco_ctx_get_stats(ctx).kernel_launches - launches0;
    float *out = malloc(nc * sizeof(float));
    ENCO_CK(enco_download(ctx, bc, 8, nc * sizeof(float), out));
    double *ref = malloc(m * n * sizeof(double));
    float *got = malloc(m * n * sizeof(float));
    char *inside = calloc(nc, 1);
    for (size_t q = 0; q < batch; q++) {
        const float *A = a + q * sa, *B = b + q * sb, *C = c + q * sc;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double acc = 0;
                for (size_t p = 0; p < k; p++) {
                    double av = g->ta ? A[p * lda + i] : A[i * lda + p];
                    double bv = g->tb ? B[j * ldb + p] : B[p * ldb + j];
                    acc += av * bv;
                }
                ref[i * n + j] = 1.5 * acc;
                if (g->beta != 0.0f)
                    ref[i * n + j] += (double)g->beta * C[i * ldc + j];
                got[i * n + j] = out[q * sc + i * ldc + j];
                inside[q * sc + i * ldc + j] = 1;
            }
        char what[128];
        snprintf(what, sizeof what, "sgemm_%s_%c%c_%zux%zux%zu_b%zu%s%s%s",
                 g->backend == ENCO_GEMM_BUILTIN ? "builtin" : "clblast", g->ta ? 'T' : 'N',
                 g->tb ? 'T' : 'N', m, n, k, batch, g->pad ? "_padded" : "",
                 g->shared_a ? "_shared_a" : "", g->nan_c ? "_nan_c" : "");
        test_assert_close(what, got, ref, m * n, 1e-4, 1e-4);
    }
    for (size_t i = 0; i < nc; i++)
        if (!inside[i])
            ck_assert_msg(memcmp(&out[i], &c[i], sizeof(float)) == 0,
                          "C buffer element %zu outside every C matrix changed (%.9g -> %.9g)",
                          i, (double)c[i], (double)out[i]);
    free(a), free(b), free(c), free(ref), free(got), free(inside);
    enco_buffer_free(ctx, ba);
    enco_buffer_free(ctx, bb);
    enco_buffer_free(ctx, bc);
    enco_ctx_free(ctx);
    return out;
}

static void gemm_case(enco_gemm_backend backend, int ta, int tb, size_t m, size_t n, size_t k,
                      size_t batch, float beta)
{
    gemm_spec g = {backend, ta, tb, m, n, k, batch, beta, 0, 0, 0};
    uint64_t launches;
    free(gemm_run(&g, &launches));
}

START_TEST(gemm_backends)
{
    int tr = _i; /* loop index: the four transpose combinations */
    int ta = tr & 1, tb = (tr >> 1) & 1;
    gemm_case(ENCO_GEMM_BUILTIN, ta, tb, 19, 23, 17, 1, 0.0f);
    gemm_case(ENCO_GEMM_BUILTIN, ta, tb, 7, 5, 9, 3, 0.5f);
    if (!test_on_oclgrind()) {
        gemm_case(ENCO_GEMM_CLBLAST, ta, tb, 19, 23, 17, 1, 0.0f);
        gemm_case(ENCO_GEMM_CLBLAST, ta, tb, 33, 20, 41, 3, 0.5f);
    }
}
END_TEST

/* Sets (value != NULL) or clears an environment variable, returning a copy of
 * the old value for gemm_env_restore. */
static char *gemm_env_set(const char *name, const char *value)
{
    const char *old = getenv(name);
    char *saved = old ? strdup(old) : NULL;
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
    return saved;
}

static void gemm_env_restore(const char *name, char *saved)
{
    if (saved)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
}

static int gemm_is_packed_device(void)
{
    return strcmp(enco_ctx_device(test_ctx())->type, "CPU") == 0 && !test_on_oclgrind();
}

/* The packed path (CPU devices, backend CLBlast): sizes that are not
 * multiples of the 6 x 16 block or of the 64-wide packing steps, transposes,
 * padded leading dimensions, batches with strides and with a shared A, beta
 * 0 over NaN garbage and beta != 0; then the same problems with K cut into
 * blocks and B packed in narrow chunks and in batch groups (ENCO_GEMM_KC /
 * ENCO_GEMM_NC) must give the same bits, because every element is one fma
 * chain over k in order whatever the blocking. */
static const gemm_spec packed_specs[] = {
    {ENCO_GEMM_CLBLAST, 0, 0, 13, 37, 130, 2, 0.0f, 3, 1, 1},
    {ENCO_GEMM_CLBLAST, 1, 0, 13, 37, 130, 3, 0.5f, 2, 0, 0},
    {ENCO_GEMM_CLBLAST, 0, 1, 7, 50, 67, 2, 1.0f, 1, 0, 0},
    {ENCO_GEMM_CLBLAST, 1, 1, 25, 16, 65, 1, 0.0f, 0, 0, 1},
    {ENCO_GEMM_CLBLAST, 0, 0, 6, 16, 1, 1, 0.0f, 0, 0, 0},
    {ENCO_GEMM_CLBLAST, 0, 0, 1, 1, 300, 2, -2.0f, 5, 1, 0},
    {ENCO_GEMM_CLBLAST, 1, 0, 70, 129, 200, 2, 0.0f, 0, 1, 1},
};

START_TEST(gemm_packed_blocking)
{
    if (!gemm_is_packed_device())
        return;
    const gemm_spec *g = &packed_specs[_i];
    char *kc = gemm_env_set("ENCO_GEMM_KC", NULL), *nc = gemm_env_set("ENCO_GEMM_NC", NULL);
    char *tile = gemm_env_set("ENCO_GEMM_TILE", NULL);
    uint64_t launches;
    float *ref = gemm_run(g, &launches);
    /* pack A, pack B, the product: our kernels ran, not CLBlast. */
    ck_assert_uint_ge(launches, 3);
    float *again = gemm_run(g, &launches);
    const size_t nc_floats = ((g->m * (g->n + g->pad) + 7) * g->batch);
    test_assert_bitwise("sgemm_packed_repeat", ref, again, nc_floats);
    free(again);
    /* K in blocks of 30 or fewer, B chunks of 32 columns: more launches, same bits. */
    char *kc2 = gemm_env_set("ENCO_GEMM_KC", "30");
    char *nc2 = gemm_env_set("ENCO_GEMM_NC", "960");
    uint64_t launches_blocked;
    float *blocked = gemm_run(g, &launches_blocked);
    test_assert_bitwise("sgemm_packed_blocked", ref, blocked, nc_floats);
    if (g->k > 30 || g->n > 32)
        ck_assert_uint_gt(launches_blocked, launches);
    free(blocked);
    /* A chunk budget for two batch items at a time. */
    char buf[32];
    snprintf(buf, sizeof buf, "%zu", 2 * ((g->n + 15) / 16 * 16) * g->k);
    gemm_env_restore("ENCO_GEMM_KC", kc2);
    free(gemm_env_set("ENCO_GEMM_NC", buf));
    float *grouped = gemm_run(g, &launches);
    test_assert_bitwise("sgemm_packed_grouped", ref, grouped, nc_floats);
    free(grouped);
    gemm_env_restore("ENCO_GEMM_NC", nc2);
    free(ref);
    gemm_env_restore("ENCO_GEMM_KC", kc);
    gemm_env_restore("ENCO_GEMM_NC", nc);
    gemm_env_restore("ENCO_GEMM_TILE", tile);
}
END_TEST

/* ENCO_GEMM_TILE=0 sends CPU devices to CLBlast: none of our kernels run. */
START_TEST(gemm_tile_off_uses_clblast)
{
    if (!gemm_is_packed_device())
        return;
    char *tile = gemm_env_set("ENCO_GEMM_TILE", "0");
    const gemm_spec g = {ENCO_GEMM_CLBLAST, 0, 0, 13, 37, 130, 2, 0.0f, 3, 1, 1};
    uint64_t launches;
    free(gemm_run(&g, &launches));
    ck_assert_uint_eq(launches, 0);
    gemm_env_restore("ENCO_GEMM_TILE", tile);
}
END_TEST

START_TEST(gemm_rejects_empty)
{
    enco_ctx *ctx = test_ctx();
    cl_mem m = test_alloc(4);
    ck_assert_int_eq(enco_sgemm(ctx, 0, 0, 0, 2, 2, 1, m, 0, 2, m, 0, 2, 0, m, 0, 2),
                     ENCO_ERR_INVALID_ARG);
    test_release(m);
}
END_TEST

START_TEST(self_check_passes)
{
    enco_ctx *ctx = test_ctx();
    enco_check_result r;
    ENCO_CK(enco_ctx_self_check(ctx, &r));
    ck_assert_msg(r.kernel_ok, "kernel error %g", r.kernel_max_err);
    ck_assert_msg(r.gemm_ok, "gemm error %g", r.gemm_max_err);
    ck_assert(r.kernel_max_err < 1e-5);
    ck_assert(r.gemm_max_err < 1e-5);
    printf("maxrel self_check_kernel %.3g\nmaxrel self_check_gemm_%s %.3g\n", r.kernel_max_err,
           r.gemm_backend, r.gemm_max_err);
}
END_TEST

START_TEST(buffer_too_large_is_clear)
{
    enco_ctx *ctx = test_ctx();
    cl_mem m = NULL;
    size_t huge = (size_t)enco_ctx_device(ctx)->max_alloc_bytes + 4096;
    enco_status st = enco_buffer_alloc(ctx, huge, &m);
    ck_assert_int_eq(st, CL_INVALID_BUFFER_SIZE);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "largest allocation"));
    ck_assert_int_eq(enco_buffer_alloc(ctx, 0, &m), ENCO_ERR_INVALID_ARG);
}
END_TEST

/* ---- kernel policy -------------------------------------------------------- */

static const char *const policy_vars[] = {
    "ENCO_GEMM_TILE", "ENCO_GEMM_FUSED", "ENCO_GEMM_FUSED_KB", "ENCO_GEMM_KC",
    "ENCO_GEMM_NC", "ENCO_GEMM_MB", "ENCO_WGRAD_SELF", "ENCO_WGRAD_SELF_KB",
    "ENCO_CONV_IMPLICIT", "ENCO_CONV_DIRECT_MAX", "ENCO_CONV_SPLITK", "ENCO_CONV_BWD_FLIP",
    "ENCO_CONV_STRIP", "ENCO_CONV_WS_MIB", "ENCO_CONV_ROWS", "ENCO_NORM_ROWS",
    "ENCO_ACT_ROWS", "ENCO_BLUR_ROWS", "ENCO_BLUR_BLOCK"};
#define NPOLICY_VARS (sizeof policy_vars / sizeof policy_vars[0])

static void policy_env_clear(char **saved)
{
    for (size_t i = 0; i < NPOLICY_VARS; i++)
        saved[i] = gemm_env_set(policy_vars[i], NULL);
}

static void policy_env_restore(char **saved)
{
    for (size_t i = 0; i < NPOLICY_VARS; i++)
        gemm_env_restore(policy_vars[i], saved[i]);
}

/* Without options or environment the policy is the device type's: the CPU
 * kernels on devices that are not GPUs, the packed GEMM on CPUs with
 * CLBlast, the numbers' defaults; the shape-dependent choices stay AUTO. */
START_TEST(policy_defaults_per_device_type)
{
    char *saved[NPOLICY_VARS];
    policy_env_clear(saved);
    enco_ctx *ctx = NULL;
    ENCO_CK(enco_ctx_create(&ctx, NULL));
    const enco_kernel_policy *p = enco_ctx_kernel_policy(ctx);
    const enco_device_info *d = enco_ctx_device(ctx);
    const enco_path_switch cpu = d->is_gpu ? ENCO_PATH_OFF : ENCO_PATH_ON;
    ck_assert_int_eq(p->conv_rows, cpu);
    ck_assert_int_eq(p->norm_rows, cpu);
    ck_assert_int_eq(p->act_rows, cpu);
    ck_assert_int_eq(p->blur_rows, cpu);
    ck_assert_int_eq(p->conv_strip, cpu);
    const int packed = strcmp(d->type, "CPU") == 0 && enco_ctx_gemm_backend(ctx) == ENCO_GEMM_CLBLAST;
    ck_assert_int_eq(p->gemm_packed, packed ? ENCO_PATH_ON : ENCO_PATH_OFF);
    ck_assert_int_eq(p->conv_implicit, packed ? ENCO_CONV_IMPLICIT_AUTO : ENCO_CONV_IMPLICIT_OFF);
    ck_assert_int_eq(p->gemm_fused, ENCO_PATH_ON);
    ck_assert_int_eq(p->gemm_fused_kb, 2304);
    ck_assert_int_eq(p->gemm_kc, 4096);
    ck_assert_int_eq(p->gemm_nc, 1 << 20);
    ck_assert_int_eq(p->gemm_mb, 4);
    ck_assert_int_eq(p->wgrad_self, ENCO_PATH_AUTO);
    ck_assert_int_eq(p->wgrad_self_kb, 1024);
    ck_assert_int_eq(p->conv_direct_max, 4);
    ck_assert_int_eq(p->conv_splitk, d->is_gpu ? 0 : ENCO_POLICY_NEVER);
    ck_assert_int_eq(p->conv_bwd_flip, ENCO_PATH_AUTO);
    ck_assert_int_eq(p->conv_ws_mib, d->is_gpu ? 128 : 256);
    ck_assert_int_eq(p->blur_block, 4096);
    enco_ctx_free(ctx);
    policy_env_restore(saved);
}
END_TEST

/* The options set the policy; each environment variable overrides its field
 * (read back through the accessor); a variable unset leaves the option. */
START_TEST(policy_from_options_and_environment)
{
    char *saved[NPOLICY_VARS];
    policy_env_clear(saved);
    enco_ctx_options o = {0};
    o.policy.conv_rows = ENCO_PATH_OFF;
    o.policy.act_rows = ENCO_PATH_ON;
    o.policy.conv_direct_max = 2;
    o.policy.conv_splitk = 3;
    o.policy.blur_block = 100;
    o.policy.conv_ws_mib = 7;
    o.policy.gemm_packed = ENCO_PATH_ON;
    o.policy.conv_implicit = ENCO_CONV_IMPLICIT_PACK;
    enco_ctx *ctx = NULL;
    ENCO_CK(enco_ctx_create(&ctx, &o));
    const enco_kernel_policy *p = enco_ctx_kernel_policy(ctx);
    ck_assert_int_eq(p->conv_rows, ENCO_PATH_OFF);
    ck_assert_int_eq(p->act_rows, ENCO_PATH_ON);
    ck_assert_int_eq(p->conv_direct_max, 2);
    ck_assert_int_eq(p->conv_splitk, 3);
    ck_assert_int_eq(p->blur_block, 100);
    ck_assert_int_eq(p->conv_ws_mib, 7);
    ck_assert_int_eq(p->conv_implicit, ENCO_CONV_IMPLICIT_PACK);
    enco_ctx_free(ctx);

    static const struct {
        const char *name, *value;
    } env[] = {{"ENCO_CONV_ROWS", "1"},     {"ENCO_ACT_ROWS", "0"},     {"ENCO_CONV_DIRECT_MAX", "0"},
               {"ENCO_CONV_SPLITK", "0"},   {"ENCO_BLUR_BLOCK", "37"},  {"ENCO_CONV_IMPLICIT", "2"},
               {"ENCO_GEMM_KC", "30"},      {"ENCO_WGRAD_SELF", "1"},   {"ENCO_CONV_BWD_FLIP", "0"},
               {"ENCO_NORM_ROWS", "0"},     {"ENCO_CONV_STRIP", "0"},   {"ENCO_CONV_WS_MIB", "64"},
               {"ENCO_GEMM_FUSED", "0"},    {"ENCO_GEMM_FUSED_KB", "64"}, {"ENCO_GEMM_NC", "960"},
               {"ENCO_GEMM_MB", "2"},       {"ENCO_WGRAD_SELF_KB", "7"}, {"ENCO_BLUR_ROWS", "1"}};
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
        free(gemm_env_set(env[i].name, env[i].value));
    ENCO_CK(enco_ctx_create(&ctx, &o));
    p = enco_ctx_kernel_policy(ctx);
    ck_assert_int_eq(p->conv_rows, ENCO_PATH_ON);
    ck_assert_int_eq(p->act_rows, ENCO_PATH_OFF);
    ck_assert_int_eq(p->conv_direct_max, ENCO_POLICY_NEVER);
    ck_assert_int_eq(p->conv_splitk, ENCO_POLICY_NEVER);
    ck_assert_int_eq(p->blur_block, 37);
    ck_assert_int_eq(p->conv_implicit, ENCO_CONV_IMPLICIT_WGRAD);
    ck_assert_int_eq(p->gemm_kc, 30);
    ck_assert_int_eq(p->wgrad_self, ENCO_PATH_ON);
    ck_assert_int_eq(p->conv_bwd_flip, ENCO_PATH_OFF);
    ck_assert_int_eq(p->norm_rows, ENCO_PATH_OFF);
    ck_assert_int_eq(p->conv_strip, ENCO_PATH_OFF);
    ck_assert_int_eq(p->conv_ws_mib, 64);
    ck_assert_int_eq(p->gemm_fused, ENCO_PATH_OFF);
    ck_assert_int_eq(p->gemm_fused_kb, 64);
    ck_assert_int_eq(p->gemm_nc, 960);
    ck_assert_int_eq(p->gemm_mb, 2);
    ck_assert_int_eq(p->wgrad_self_kb, 7);
    ck_assert_int_eq(p->blur_rows, ENCO_PATH_ON);
    /* Read once: changing the environment afterwards changes nothing. */
    free(gemm_env_set("ENCO_CONV_ROWS", "0"));
    ck_assert_int_eq(enco_ctx_kernel_policy(ctx)->conv_rows, ENCO_PATH_ON);
    /* Turning the packed GEMM off turns its implicit im2col off with it. */
    enco_kernel_policy q = *p;
    q.gemm_packed = ENCO_PATH_OFF;
    ENCO_CK(enco_ctx_set_kernel_policy(ctx, &q));
    ck_assert_int_eq(enco_ctx_kernel_policy(ctx)->conv_implicit, ENCO_CONV_IMPLICIT_OFF);
    enco_ctx_free(ctx);
    policy_env_restore(saved);
}
END_TEST

/* A value outside a variable's accepted ones refuses the context, naming
 * the variable and the values; so does an option out of its range. */
START_TEST(policy_rejects_bad_values)
{
    static const struct {
        const char *name, *value, *accepted;
    } bad[] = {{"ENCO_CONV_IMPLICIT", "3", "0, 1 or 2"},
               {"ENCO_CONV_ROWS", "yes", "0 or 1"},
               {"ENCO_GEMM_TILE", "2", "0 or 1"},
               {"ENCO_CONV_DIRECT_MAX", "8", "from 0 (none) to 4"},
               {"ENCO_CONV_DIRECT_MAX", "-1", "from 0 (none) to 4"},
               {"ENCO_CONV_SPLITK", "2000", "from 2 to 1024"},
               {"ENCO_GEMM_KC", "0", "a positive integer"},
               {"ENCO_BLUR_BLOCK", "12x", "a positive integer"},
               {"ENCO_CONV_WS_MIB", "-5", "a positive integer"}};
    char *saved[NPOLICY_VARS];
    policy_env_clear(saved);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *old = gemm_env_set(bad[i].name, bad[i].value);
        enco_ctx *ctx = NULL;
        enco_status st = enco_ctx_create(&ctx, NULL);
        ck_assert_msg(st == ENCO_ERR_INVALID_ARG, "%s=%s accepted", bad[i].name, bad[i].value);
        ck_assert_ptr_null(ctx);
        const char *msg = enco_last_error();
        char want[96];
        snprintf(want, sizeof want, "%s=%s", bad[i].name, bad[i].value);
        ck_assert_msg(strstr(msg, want) && strstr(msg, bad[i].accepted),
                      "message '%s' lacks '%s' or '%s'", msg, want, bad[i].accepted);
        gemm_env_restore(bad[i].name, old);
    }
    enco_ctx_options o = {0};
    o.policy.conv_direct_max = 5;
    enco_ctx *ctx = NULL;
    ck_assert_int_eq(enco_ctx_create(&ctx, &o), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "conv_direct_max is 5"));
    o.policy.conv_direct_max = 0;
    o.policy.norm_rows = (enco_path_switch)7;
    ck_assert_int_eq(enco_ctx_create(&ctx, &o), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "norm_rows is 7"));
    o.policy.norm_rows = ENCO_PATH_AUTO;
    o.policy.gemm_kc = -3;
    ck_assert_int_eq(enco_ctx_create(&ctx, &o), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "gemm_kc is -3"));
    /* The setter checks as creation does and keeps the policy it had. */
    enco_kernel_policy p = *enco_ctx_kernel_policy(test_ctx());
    enco_kernel_policy q = p;
    q.conv_splitk = -2;
    ck_assert_int_eq(enco_ctx_set_kernel_policy(test_ctx(), &q), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(memcmp(enco_ctx_kernel_policy(test_ctx()), &p, sizeof p), 0);
    policy_env_restore(saved);
}
END_TEST

static void count_profile(const enco_kernel_profile *p, void *user)
{
    unsigned long *seen = user;
    for (size_t i = 0; i < p->nrows; i++)
        if (strcmp(p->rows[i].kernel, "conv_fill_bias") == 0 && p->rows[i].seconds >= 0)
            seen[0] += p->rows[i].launches;
    seen[1]++;
    seen[2] = p->scratch_names[2] && strcmp(p->scratch_names[2], "conv") == 0;
}

/* The profile is a table handed to the caller (the library prints nothing):
 * through the accessor while the context lives and the callback when it is
 * freed; off, the table is empty and the callback is not called. */
START_TEST(kernel_profile_is_returned)
{
    unsigned long seen[3] = {0, 0, 0};
    enco_ctx_options o = {.profile_kernels = 1, .on_kernel_profile = count_profile,
                          .on_kernel_profile_user = seen};
    enco_ctx *ctx = NULL;
    ENCO_CK(enco_ctx_create(&ctx, &o));
    cl_mem y, b;
    ENCO_CK(enco_buffer_alloc(ctx, 64 * sizeof(float), &y));
    ENCO_CK(enco_buffer_alloc(ctx, 4 * sizeof(float), &b));
    const size_t g[3] = {16, 4, 1};
    for (int i = 0; i < 3; i++)
        ENCO_CK(ENCO_RUN(ctx, "conv", "conv_fill_bias", 3, g, NULL, ENCO_ARG_MEM(y),
                         ENCO_ARG_ULONG(0), ENCO_ARG_MEM(b), ENCO_ARG_ULONG(0), ENCO_ARG_INT(4),
                         ENCO_ARG_INT(16)));
    enco_kernel_profile prof;
    ENCO_CK(enco_ctx_kernel_profile(ctx, &prof));
    ck_assert_uint_eq(prof.nrows, 1);
    ck_assert_str_eq(prof.rows[0].program, "conv");
    ck_assert_str_eq(prof.rows[0].kernel, "conv_fill_bias");
    ck_assert_uint_eq(prof.rows[0].launches, 3);
    ck_assert(prof.total_seconds >= prof.rows[0].seconds);
    enco_kernel_profile_free(&prof);
    enco_buffer_free(ctx, y);
    enco_buffer_free(ctx, b);
    enco_ctx_free(ctx);
    ck_assert_uint_eq(seen[0], 3);
    ck_assert_uint_eq(seen[1], 1);
    ck_assert_uint_eq(seen[2], 1);

    char *prof_env = gemm_env_set("ENCO_PROFILE_KERNELS", NULL);
    o.profile_kernels = 0;
    ENCO_CK(enco_ctx_create(&ctx, &o));
    ENCO_CK(enco_ctx_kernel_profile(ctx, &prof));
    ck_assert_uint_eq(prof.nrows, 0);
    enco_kernel_profile_free(&prof);
    enco_ctx_free(ctx);
    ck_assert_uint_eq(seen[1], 1);
    gemm_env_restore("ENCO_PROFILE_KERNELS", prof_env);
}
END_TEST

static Suite *runtime_suite(void)
{
    Suite *s = suite_create("runtime");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, status_names);
    tcase_add_test(t, select_by_index);
    tcase_add_test(t, select_by_name);
    tcase_add_test(t, select_bad_index);
    tcase_add_test(t, select_bad_name);
    tcase_add_test(t, select_from_env);
    tcase_add_test(t, default_prefers_gpu);
    tcase_add_test(t, embedded_sources);
    tcase_add_test(t, kernel_round_trip);
    tcase_add_test(t, unknown_kernel_and_program);
    tcase_add_test(t, build_failure_reports_log);
    tcase_add_test(t, cache_hit);
    tcase_add_test(t, cache_truncated_recovers);
    tcase_add_test(t, cache_corrupt_recovers);
    tcase_add_test(t, cache_garbage_file_recovers);
    tcase_add_test(t, cache_disabled_and_clear);
    tcase_add_test(t, cache_default_dir);
    tcase_add_test(t, kernel_dir_override);
    tcase_add_loop_test(t, gemm_backends, 0, 4);
    tcase_add_loop_test(t, gemm_packed_blocking, 0,
                        (int)(sizeof packed_specs / sizeof packed_specs[0]));
    tcase_add_test(t, gemm_tile_off_uses_clblast);
    tcase_add_test(t, gemm_rejects_empty);
    tcase_add_test(t, policy_defaults_per_device_type);
    tcase_add_test(t, policy_from_options_and_environment);
    tcase_add_test(t, policy_rejects_bad_values);
    tcase_add_test(t, kernel_profile_is_returned);
    tcase_add_test(t, self_check_passes);
    tcase_add_test(t, buffer_too_large_is_clear);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    int rc = test_run_suite(runtime_suite());
    if (tmp_root[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmp_root);
    }
    return rc;
}
