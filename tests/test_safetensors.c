/* safetensors reader/writer: round trips, a file written by Python, every
 * kind of malformed input, and atomic saving under a simulated full disk. */
#include "harness.h"
#include "io/safetensors.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static char dir[256];

static const char *path_in_tmp(const char *leaf)
{
    static char buf[512];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/enco-test-st-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
    }
    snprintf(buf, sizeof buf, "%s/%s", dir, leaf);
    return buf;
}

static enco_st_file *sample(void)
{
    enco_st_file *f = enco_st_new();
    float a[6] = {1, -2, 3.5f, 0, 1e-30f, -7};
    double b[2] = {0.1, -1e300};
    int64_t c[3] = {-1, 0, (int64_t)1 << 40};
    int32_t d[1] = {-5};
    uint8_t e[5] = {0, 1, 2, 254, 255};
    ENCO_CK(enco_st_add(f, "netG.model.1.weight", ENCO_DT_F32, 2, (int64_t[]){2, 3}, a));
    ENCO_CK(enco_st_add(f, "b", ENCO_DT_F64, 1, (int64_t[]){2}, b));
    ENCO_CK(enco_st_add(f, "patch_ids.0", ENCO_DT_I64, 2, (int64_t[]){1, 3}, c));
    ENCO_CK(enco_st_add(f, "scalar", ENCO_DT_I32, 0, NULL, d));
    ENCO_CK(enco_st_add(f, "name with \"quotes\" and \\ and \xc3\xa9", ENCO_DT_U8, 1,
                        (int64_t[]){5}, e));
    ENCO_CK(enco_st_add(f, "empty", ENCO_DT_F32, 2, (int64_t[]){0, 4}, NULL));
    ENCO_CK(enco_st_set_meta(f, "format", "enco-cl"));
    ENCO_CK(enco_st_set_meta(f, "config", "line1\nline2\t\"q\""));
    return f;
}

static void assert_same(const enco_st_file *a, const enco_st_file *b)
{
    ck_assert_uint_eq(a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        const enco_st_tensor *x = &a->tensors[i];
        const enco_st_tensor *y = enco_st_find(b, x->name);
        ck_assert_msg(y != NULL, "tensor %s lost", x->name);
        ck_assert_int_eq(x->dtype, y->dtype);
        ck_assert_int_eq(x->ndim, y->ndim);
        for (int d = 0; d < x->ndim; d++)
            ck_assert_int_eq(x->shape[d], y->shape[d]);
        ck_assert_uint_eq(x->nbytes, y->nbytes);
        ck_assert(x->nbytes == 0 || memcmp(x->data, y->data, x->nbytes) == 0);
    }
    ck_assert_uint_eq(a->nmeta, b->nmeta);
    for (size_t i = 0; i < a->nmeta; i++)
        ck_assert_str_eq(enco_st_get_meta(b, a->meta_keys[i]), a->meta_values[i]);
}

START_TEST(round_trip)
{
    enco_st_file *f = sample();
    const char *p = path_in_tmp("rt.safetensors");
    ENCO_CK(enco_st_write(p, f));
    enco_st_file *g = NULL;
    ENCO_CK(enco_st_read(p, &g));
    assert_same(f, g);
    /* The data starts 8-byte aligned and the file has no temporary left over. */
    FILE *fp = fopen(p, "rb");
    unsigned char len8[8];
    ck_assert_int_eq(fread(len8, 1, 8, fp), 8);
    fclose(fp);
    ck_assert_int_eq(len8[0] % 8, 0);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    ck_assert_int_ne(access(tmp, F_OK), 0);
    enco_st_free(f);
    enco_st_free(g);
}
END_TEST

START_TEST(expect_names_mismatch)
{
    enco_st_file *f = sample();
    const enco_st_tensor *t = NULL;
    ENCO_CK(enco_st_expect(f, "netG.model.1.weight", ENCO_DT_F32, 2, (int64_t[]){2, 3}, &t));
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(enco_st_expect(f, "missing.w", ENCO_DT_F32, 1, (int64_t[]){1}, &t),
                     ENCO_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "missing.w is missing"));
    ck_assert_int_eq(enco_st_expect(f, "b", ENCO_DT_F32, 1, (int64_t[]){2}, NULL),
                     ENCO_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "dtype F64, expected F32"));
    ck_assert_int_eq(
        enco_st_expect(f, "netG.model.1.weight", ENCO_DT_F32, 2, (int64_t[]){2, 4}, NULL),
        ENCO_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "size 3 in dimension 1, expected 4"));
    ck_assert_int_eq(enco_st_expect(f, "b", ENCO_DT_F64, 2, (int64_t[]){2, 1}, NULL),
                     ENCO_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "1 dimensions, expected 2"));
    /* Adding a duplicate is refused. */
    ck_assert_int_eq(enco_st_add(f, "b", ENCO_DT_F64, 1, (int64_t[]){1}, (double[]){1}),
                     ENCO_ERR_INVALID_ARG);
    enco_st_free(f);
}
END_TEST

/* Builds a file image from a header string and `data_len` data bytes. */
static unsigned char *image(const char *header, size_t data_len, size_t *len)
{
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    unsigned char *b = calloc(1, *len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    return b;
}

static void expect_bad(const char *header, size_t data_len, const char *needle)
{
    size_t len = 0;
    unsigned char *b = image(header, data_len, &len);
    enco_st_file *f = NULL;
    enco_status st = enco_st_parse(b, len, "bad.safetensors", &f);
    ck_assert_msg(st == ENCO_ERR_FORMAT, "accepted: %s", header);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(enco_last_error(), needle) != NULL, "for %s: message '%s' lacks '%s'",
                  header, enco_last_error(), needle);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "bad.safetensors"));
    free(b);
}

START_TEST(malformed_inputs)
{
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t len = 0;
    unsigned char *b = image(ok, 8, &len);
    enco_st_file *f = NULL;
    ENCO_CK(enco_st_parse(b, len, "ok", &f));
    enco_st_free(f);
    /* truncated in the data, in the header, in the length */
    ck_assert_int_eq(enco_st_parse(b, len - 1, "t.safetensors", &f), ENCO_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "truncated"));
    ck_assert_int_eq(enco_st_parse(b, 20, "t.safetensors", &f), ENCO_ERR_FORMAT);
    ck_assert_int_eq(enco_st_parse(b, 5, "t.safetensors", &f), ENCO_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "too short"));
    /* wrong magic: a PNG signature read as a length */
    unsigned char png[64] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    ck_assert_int_eq(enco_st_parse(png, sizeof png, "img.png", &f), ENCO_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "not a safetensors file"));
    free(b);

    expect_bad("[1,2]   ", 0, "not a JSON object");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "expected");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8,
               "trailing");
    expect_bad("{\"a\":{\"dtype\":\"Q8\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
               "unsupported dtype Q8");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
               "needs 12");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8,
               "outside");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "outside");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
               "non-negative integer");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8,
               "expected an integer");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "lacks data_offsets");
    expect_bad("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "lacks dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8,
               "unexpected or repeated field");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
               16, "appears twice");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               12, "overlaps");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "gap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12,
               "after the last");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
               4, "too many");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}",
               4, "too large");
    expect_bad("{\"a\\q\":{}}", 0, "bad escape");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "expected");
    expect_bad("{\"__metadata__\":{\"k\":1}}", 0, "expected '\"'");
    expect_bad("{\"abc", 0, "unterminated");
}
END_TEST

START_TEST(reads_python_written_file)
{
    /* Written by Python's json + struct the way the safetensors library does
     * (no padding, metadata first, key order arbitrary). */
    const char *hdr = "{\"__metadata__\": {\"format\": \"pt\"}, \"w\": {\"dtype\": \"F32\", "
                      "\"shape\": [1, 2], \"data_offsets\": [8, 16]}, \"i\": {\"dtype\": "
                      "\"I64\", \"shape\": [1], \"data_offsets\": [0, 8]}}";
    size_t len = 0;
    unsigned char *b = image(hdr, 16, &len);
    int64_t seven = 7;
    float w[2] = {0.5f, -2.0f};
    memcpy(b + len - 16, &seven, 8);
    memcpy(b + len - 8, w, 8);
    enco_st_file *f = NULL;
    ENCO_CK(enco_st_parse(b, len, "py", &f));
    const enco_st_tensor *t = NULL;
    ENCO_CK(enco_st_expect(f, "w", ENCO_DT_F32, 2, (int64_t[]){1, 2}, &t));
    ck_assert(((float *)t->data)[1] == -2.0f);
    ENCO_CK(enco_st_expect(f, "i", ENCO_DT_I64, 1, (int64_t[]){1}, &t));
    ck_assert_int_eq(*(int64_t *)t->data, 7);
    ck_assert_str_eq(enco_st_get_meta(f, "format"), "pt");
    enco_st_free(f);
    free(b);
}
END_TEST

START_TEST(missing_file_is_io_error)
{
    enco_st_file *f = NULL;
    ck_assert_int_eq(enco_st_read("/nonexistent/x.safetensors", &f), ENCO_ERR_IO);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "/nonexistent/x.safetensors"));
}
END_TEST

START_TEST(full_disk_keeps_previous_file)
{
    /* Save once, then save a bigger file with the file-size limit set below
     * its size: the write fails as on a full disk, and the first file must be
     * intact and no temporary left behind. */
    const char *p = path_in_tmp("ckpt.safetensors");
    enco_st_file *f = sample();
    ENCO_CK(enco_st_write(p, f));
    enco_st_file *big = enco_st_new();
    size_t n = 1 << 20;
    float *z = calloc(n, sizeof(float));
    ENCO_CK(enco_st_add(big, "big", ENCO_DT_F32, 1, (int64_t[]){(int64_t)n}, z));
    free(z);

    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    enco_status st = enco_st_write(p, big);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    ck_assert_int_eq(st, ENCO_ERR_IO);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "previous file is untouched"));

    enco_st_file *g = NULL;
    ENCO_CK(enco_st_read(p, &g));
    assert_same(f, g);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    ck_assert_int_ne(access(tmp, F_OK), 0);
    /* Unwritable folder: clear error, nothing created. */
    ck_assert_int_eq(enco_st_write("/nonexistent-dir/x.safetensors", f), ENCO_ERR_IO);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "cannot create"));
    enco_st_free(f);
    enco_st_free(g);
    enco_st_free(big);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("safetensors");
    TCase *t = tcase_create("io");
    tcase_add_test(t, round_trip);
    tcase_add_test(t, expect_names_mismatch);
    tcase_add_test(t, malformed_inputs);
    tcase_add_test(t, reads_python_written_file);
    tcase_add_test(t, missing_file_is_io_error);
    tcase_add_test(t, full_disk_keeps_previous_file);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return 1;
    }
    return failed ? 1 : 0;
}
