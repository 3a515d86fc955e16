/* Image I/O: every format against the formula the fixtures were drawn from
 * (tools/make_data_fixtures.py), PIL's colour conversions and bicubic resize
 * (bit-exact), broken files, PNG writing, tensors, crops, flips, grids. */
#include "harness.h"

#include "data/image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define W 13
#define H 9

static char tmp_root[256];

static const char *tmp_path(const char *leaf)
{
    static char buf[512];
    if (!tmp_root[0]) {
        snprintf(tmp_root, sizeof tmp_root, "/tmp/enco-test-image-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmp_root));
    }
    snprintf(buf, sizeof buf, "%s/%s", tmp_root, leaf);
    return buf;
}

static const char *fixture(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/images/%s", ENCO_TEST_DATA, name);
    return buf;
}

/* The RGBA pattern of the fixtures (as tools/make_data_fixtures.py). */
static void pattern(int x, int y, uint8_t px[4])
{
    px[0] = (uint8_t)((x * 37 + y * 11) & 255);
    px[1] = (uint8_t)((x * 5 + y * 23 + 7) & 255);
    px[2] = (uint8_t)((x * x + y * 3) & 255);
    px[3] = (uint8_t)((x * 13 + y * 7 + 100) & 255);
}

static void load_ok(const char *name, int channels, enco_image *img)
{
    ENCO_CK(enco_image_load(fixture(name), channels, img));
}

static void assert_same(const char *what, const enco_image *a, const enco_image *b)
{
    ck_assert_msg(a->w == b->w && a->h == b->h && a->c == b->c, "%s: %dx%dx%d vs %dx%dx%d", what,
                  a->w, a->h, a->c, b->w, b->h, b->c);
    size_t n = (size_t)a->w * (size_t)a->h * (size_t)a->c;
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(a->data[i] == b->data[i], "%s: byte %zu is %d, expected %d", what, i,
                      a->data[i], b->data[i]);
}

static void assert_pattern_rgb(const char *name, const enco_image *img)
{
    ck_assert_int_eq(img->w, W);
    ck_assert_int_eq(img->h, H);
    ck_assert_int_eq(img->c, 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t px[4];
            pattern(x, y, px);
            const uint8_t *p = img->data + (y * W + x) * 3;
            for (int k = 0; k < 3; k++)
                ck_assert_msg(p[k] == px[k], "%s: (%d,%d) channel %d is %d, expected %d", name, x,
                              y, k, p[k], px[k]);
        }
}

/* ---- decoding ---------------------------------------------------------- */

START_TEST(decode_lossless_rgb)
{
    const char *names[] = {"rgb.png", "rgba.png", "rgb.bmp", "rgb.tga", "rgb_rle.tga", "rgb.ppm"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        enco_image img;
        load_ok(names[i], 3, &img);
        assert_pattern_rgb(names[i], &img);
        enco_image_free(&img);
    }
}
END_TEST

START_TEST(decode_native_channels)
{
    struct { const char *name; int c; } cases[] = {
        {"rgb.png", 3}, {"rgba.png", 4}, {"gray.png", 1}, {"gray_alpha.png", 2}, {"gray.pgm", 1},
        {"rgb.ppm", 3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enco_image img;
        load_ok(cases[i].name, 0, &img);
        ck_assert_msg(img.c == cases[i].c, "%s: %d channels, expected %d", cases[i].name, img.c,
                      cases[i].c);
        enco_image_free(&img);
    }
    enco_image img;
    load_ok("rgba.png", 0, &img);
    uint8_t px[4];
    pattern(4, 7, px);
    ck_assert_int_eq(img.data[(7 * W + 4) * 4 + 3], px[3]);
    enco_image_free(&img);
}
END_TEST

START_TEST(gray_to_rgb_and_alpha_dropped)
{
    const char *names[] = {"gray.png", "gray.pgm", "gray_alpha.png"};
    for (size_t i = 0; i < 3; i++) {
        enco_image rgb, l;
        load_ok(names[i], 3, &rgb);
        load_ok(names[i], 1, &l);
        ck_assert_int_eq(rgb.c, 3);
        ck_assert_int_eq(l.c, 1);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                uint8_t px[4];
                pattern(x, y, px);
                ck_assert_int_eq(l.data[y * W + x], px[0]);
                for (int k = 0; k < 3; k++)
                    ck_assert_int_eq(rgb.data[(y * W + x) * 3 + k], px[0]);
            }
        enco_image_free(&rgb);
        enco_image_free(&l);
    }
}
END_TEST

START_TEST(rgb_to_l_matches_pil)
{
    struct { const char *src, *expect; } cases[] = {{"rgb.png", "rgb_L.png"}, {"rgba.png", "rgba_L.png"},
                                                    {"rgb.bmp", "rgb_L.png"}};
    for (size_t i = 0; i < 3; i++) {
        enco_image got, want;
        load_ok(cases[i].src, 1, &got);
        load_ok(cases[i].expect, 0, &want);
        assert_same(cases[i].src, &got, &want);
        enco_image_free(&got);
        enco_image_free(&want);
    }
    /* One value by hand: (255, 0, 0) -> (255 * 19595 + 0x8000) >> 16 = 76;
     * (0, 255, 0) -> 150; (0, 0, 255) -> 29; white stays 255. */
    uint8_t px[12] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
    enco_image in = {4, 1, 3, px}, out;
    ENCO_CK(enco_image_convert(&in, 1, &out));
    ck_assert_int_eq(out.data[0], 76);
    ck_assert_int_eq(out.data[1], 150);
    ck_assert_int_eq(out.data[2], 29);
    ck_assert_int_eq(out.data[3], 255);
    enco_image_free(&out);
}
END_TEST

START_TEST(palette_and_gif_match_pil)
{
    struct { const char *src, *expect; } cases[] = {{"palette.png", "palette_RGB.png"},
                                                    {"rgb.gif", "gif_RGB.png"}};
    for (size_t i = 0; i < 2; i++) {
        enco_image got, want;
        load_ok(cases[i].src, 3, &got);
        load_ok(cases[i].expect, 3, &want);
        assert_same(cases[i].src, &got, &want);
        enco_image_free(&got);
        enco_image_free(&want);
    }
}
END_TEST

/* stb's JPEG decoder is not libjpeg: small differences are expected. */
START_TEST(jpeg_close_to_pil)
{
    struct { const char *src, *expect; int c; } cases[] = {{"rgb.jpg", "jpg_RGB.png", 3},
                                                           {"gray.jpg", "grayjpg_L.png", 1},
                                                           {"rgb_prog.jpg", "jpgprog_RGB.png", 3}};
    for (size_t i = 0; i < 3; i++) {
        enco_image got, want;
        load_ok(cases[i].src, cases[i].c, &got);
        load_ok(cases[i].expect, cases[i].c, &want);
        ck_assert_int_eq(got.w, want.w);
        ck_assert_int_eq(got.h, want.h);
        size_t n = (size_t)got.w * (size_t)got.h * (size_t)got.c;
        int maxd = 0;
        double sum = 0;
        for (size_t k = 0; k < n; k++) {
            int d = abs((int)got.data[k] - (int)want.data[k]);
            maxd = d > maxd ? d : maxd;
            sum += d;
        }
        printf("jpeg %s: max |stb - PIL| %d, mean %.3f\n", cases[i].src, maxd, sum / (double)n);
        ck_assert_msg(maxd <= 3 && sum / (double)n <= 1.0, "%s: max diff %d mean %.3f", cases[i].src,
                      maxd, sum / (double)n);
        enco_image_free(&got);
        enco_image_free(&want);
    }
}
END_TEST

/* ---- broken files ------------------------------------------------------ */

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(*n);
    ck_assert_uint_eq(fread(buf, 1, *n, f), *n);
    fclose(f);
    return buf;
}

static void write_all(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void expect_fail(const char *path, enco_status want, const char *needle)
{
    enco_image img = {0};
    enco_status st = enco_image_load(path, 3, &img);
    ck_assert_msg(st == want, "%s: status %s, expected %s (%s)", path, enco_status_str(st),
                  enco_status_str(want), enco_last_error());
    ck_assert_ptr_null(img.data);
    ck_assert_msg(strstr(enco_last_error(), path) != NULL, "message lacks the path: %s",
                  enco_last_error());
    ck_assert_msg(strstr(enco_last_error(), needle) != NULL, "message lacks '%s': %s", needle,
                  enco_last_error());
}

START_TEST(missing_empty_and_non_image)
{
    expect_fail(tmp_path("does-not-exist.png"), ENCO_ERR_NOT_FOUND, "cannot open");
    write_all(tmp_path("empty.png"), "", 0);
    expect_fail(tmp_path("empty.png"), ENCO_ERR_FORMAT, "empty file");
    const char text[] = "this is not an image, just some text\n";
    write_all(tmp_path("text.png"), text, sizeof text - 1);
    expect_fail(tmp_path("text.png"), ENCO_ERR_FORMAT, "not a readable image");
}
END_TEST

START_TEST(truncated_files)
{
    const char *names[] = {"rgb.png", "rgb.jpg", "rgb.bmp", "rgb.tga", "rgb_rle.tga", "rgb.ppm",
                           "gray.jpg"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n;
        unsigned char *buf = read_all(fixture(names[i]), &n);
        /* Cut inside the pixel data (TGA files end in a 26-byte footer
         * that is not needed to decode them). */
        size_t cuts[3] = {n * 2 / 3, n - 30, n / 2};
        for (int c = 0; c < 3; c++) {
            char leaf[64];
            snprintf(leaf, sizeof leaf, "cut%d_%s", c, names[i]);
            char path[512];
            snprintf(path, sizeof path, "%s", tmp_path(leaf));
            write_all(path, buf, cuts[c]);
            enco_image img = {0};
            enco_status st = enco_image_load(path, 3, &img);
            ck_assert_msg(st == ENCO_ERR_FORMAT, "%s cut to %zu of %zu bytes: %s", names[i],
                          cuts[c], n, st == ENCO_OK ? "loaded" : enco_last_error());
            ck_assert_msg(strstr(enco_last_error(), path) != NULL, "%s", enco_last_error());
        }
        free(buf);
    }
}
END_TEST

/* Huffman tables with more than 256 codes overflow stb's table (an
 * out-of-bounds write): refused before stb runs. */
START_TEST(jpeg_bad_huffman_table)
{
    size_t n;
    unsigned char *buf = read_all(fixture("rgb.jpg"), &n);
    size_t at = 0;
    for (size_t i = 2; i + 1 < n && !at; i++)
        if (buf[i] == 0xFF && buf[i + 1] == 0xC4)
            at = i;
    ck_assert(at > 0);
    buf[at + 5 + 12] = 0xFC;  /* 252 codes of 13 bits on top of the table's own */
    write_all(tmp_path("dht.jpg"), buf, n);
    expect_fail(tmp_path("dht.jpg"), ENCO_ERR_FORMAT, "Huffman table");
    free(buf);
    /* The fuzzer's reproducers (the second hides the table behind garbage
     * bytes that stb skips). */
    const char *repros[] = {"image-stb-jpeg-dht-overflow.jpg", "image-stb-jpeg-dht-overflow-2.jpg",
                            "image-stb-jpeg-dht-overflow-3.jpg" /* behind FF fill bytes */,
                            "image-stb-jpeg-dht-overflow-4.jpg" /* table past its segment */};
    for (int i = 0; i < 4; i++) {
        char repro[1024];
        snprintf(repro, sizeof repro, "%s/../fuzz/repro/%s", ENCO_TEST_DATA, repros[i]);
        ck_assert_msg(access(repro, R_OK) == 0, "missing %s", repro);
        expect_fail(repro, ENCO_ERR_FORMAT, "Huffman table");
    }
    /* A 305-byte RLE TGA claiming 6144x3072 pixels (a fuzzer timeout) is
     * refused before decoding. */
    char big[1024];
    snprintf(big, sizeof big, "%s/../fuzz/repro/image-tga-rle-huge-claim.tga", ENCO_TEST_DATA);
    expect_fail(big, ENCO_ERR_FORMAT, "claims 6144x3072");
    /* A PNG whose IDAT chunk claims more bytes than the file (stb would
     * allocate gigabytes for it: a fuzzer out-of-memory). */
    snprintf(big, sizeof big, "%s/../fuzz/repro/image-png-idat-length-oom.png", ENCO_TEST_DATA);
    expect_fail(big, ENCO_ERR_FORMAT, "a chunk is longer than the file");
    /* A PNM width of 48 digits (stb's int parsing would overflow). */
    snprintf(big, sizeof big, "%s/../fuzz/repro/image-stb-pnm-int-overflow.ppm", ENCO_TEST_DATA);
    expect_fail(big, ENCO_ERR_FORMAT, "PNM header");
}
END_TEST

/* A PNG with only a signature, an IHDR and an IEND (stb ignores CRCs). */
static void write_png_header(const char *path, uint32_t w, uint32_t h)
{
    unsigned char b[8 + 25 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char *p = b + 8;
    p[3] = 13;
    memcpy(p + 4, "IHDR", 4);
    for (int k = 0; k < 4; k++) {
        p[8 + k] = (unsigned char)(w >> (24 - 8 * k));
        p[12 + k] = (unsigned char)(h >> (24 - 8 * k));
    }
    p[16] = 8;   /* bit depth */
    p[17] = 2;   /* RGB */
    p += 25;
    memcpy(p + 4, "IEND", 4);
    write_all(path, b, sizeof b);
}

START_TEST(zero_and_oversized)
{
    write_png_header(tmp_path("zero.png"), 0, 10);
    expect_fail(tmp_path("zero.png"), ENCO_ERR_FORMAT, "not a readable image");
    write_png_header(tmp_path("huge.png"), 20000, 10);
    expect_fail(tmp_path("huge.png"), ENCO_ERR_FORMAT, "too large");
    write_png_header(tmp_path("huge2.png"), 16384, 16385);
    expect_fail(tmp_path("huge2.png"), ENCO_ERR_FORMAT, "too large");
    /* A valid header without image data is corrupt, not loadable. */
    write_png_header(tmp_path("nodata.png"), 4, 4);
    enco_image img;
    ck_assert_int_eq(enco_image_load(tmp_path("nodata.png"), 3, &img), ENCO_ERR_FORMAT);
}
END_TEST

/* ---- writing ----------------------------------------------------------- */

START_TEST(png_round_trip_atomic)
{
    for (int c = 1; c <= 4; c++) {
        enco_image img;
        ENCO_CK(enco_image_alloc(&img, 7, 5, c));
        for (size_t i = 0; i < (size_t)7 * 5 * (size_t)c; i++)
            img.data[i] = (uint8_t)(i * 29 + 3);
        char leaf[32];
        snprintf(leaf, sizeof leaf, "out%d.png", c);
        char path[512];
        snprintf(path, sizeof path, "%s", tmp_path(leaf));
        ENCO_CK(enco_image_save_png(path, &img));
        ENCO_CK(enco_image_save_png(path, &img));  /* replaces */
        enco_image back;
        ENCO_CK(enco_image_load(path, 0, &back));
        assert_same(leaf, &back, &img);
        enco_image_free(&back);
        enco_image_free(&img);
    }
    /* No temporary files are left behind. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp > /dev/null", tmp_root);
    ck_assert_int_ne(system(cmd), 0);
    enco_image img;
    ENCO_CK(enco_image_alloc(&img, 2, 2, 3));
    const char *bad = "/nonexistent-enco-dir/x.png";
    ck_assert_int_eq(enco_image_save_png(bad, &img), ENCO_ERR_IO);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), bad));
    enco_image_free(&img);
}
END_TEST

/* ---- tensors and geometry ---------------------------------------------- */

START_TEST(tensor_round_trip)
{
    enco_image img;
    ENCO_CK(enco_image_alloc(&img, 256, 1, 2));
    for (int i = 0; i < 256; i++) {
        img.data[2 * i] = (uint8_t)i;
        img.data[2 * i + 1] = (uint8_t)(255 - i);
    }
    float t[512];
    enco_image_to_tensor(&img, t);
    ck_assert_float_eq(t[0], -1.0f);
    ck_assert_float_eq(t[255], 1.0f);
    ck_assert_float_eq(t[256], 1.0f);  /* channel 1 starts at HW */
    ck_assert_float_eq(t[128], 128.0f / 255.0f * 2.0f - 1.0f);
    enco_image back;
    ENCO_CK(enco_image_from_tensor(&back, t, 2, 1, 256));
    assert_same("tensor round trip", &back, &img);
    enco_image_free(&back);
    float odd[5] = {-3.0f, 7.0f, NAN, 0.0f, 0.999f};
    ENCO_CK(enco_image_from_tensor(&back, odd, 1, 1, 5));
    ck_assert_int_eq(back.data[0], 0);
    ck_assert_int_eq(back.data[1], 255);
    ck_assert_int_eq(back.data[2], 0);
    ck_assert_int_eq(back.data[3], 128);  /* 127.5 rounds away from zero */
    ck_assert_int_eq(back.data[4], 255);
    enco_image_free(&back);
    enco_image_free(&img);
}
END_TEST

START_TEST(resize_matches_pil)
{
    enco_image src, gsrc;
    load_ok("resize_src.png", 3, &src);
    load_ok("resize_gray_src.png", 1, &gsrc);
    struct { int w, h, gray; } cases[] = {{37, 29, 0}, {11, 8, 0}, {40, 9, 0}, {23, 5, 0},
                                          {7, 17, 0}, {30, 7, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, cases[i].gray ? "resize_gray_%dx%d.png" : "resize_%dx%d.png",
                 cases[i].w, cases[i].h);
        enco_image want, got;
        load_ok(name, cases[i].gray ? 1 : 3, &want);
        ENCO_CK(enco_image_resize_bicubic(cases[i].gray ? &gsrc : &src, cases[i].w, cases[i].h, &got));
        assert_same(name, &got, &want);  /* bit-exact */
        enco_image_free(&want);
        enco_image_free(&got);
    }
    enco_image same;
    ENCO_CK(enco_image_resize_bicubic(&src, src.w, src.h, &same));
    assert_same("resize to the same size", &same, &src);
    enco_image_free(&same);
    ck_assert_int_eq(enco_image_resize_bicubic(&src, 0, 4, &same), ENCO_ERR_INVALID_ARG);
    enco_image_free(&src);
    enco_image_free(&gsrc);
}
END_TEST

START_TEST(crop_flip_grid)
{
    enco_image img, crop, grid;
    load_ok("rgb.png", 3, &img);
    ENCO_CK(enco_image_crop(&img, 3, 2, 5, 4, &crop));
    enco_image_flip_horizontal(&crop);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 5; x++) {
            uint8_t px[4];
            pattern(3 + (4 - x), 2 + y, px);
            for (int k = 0; k < 3; k++)
                ck_assert_int_eq(crop.data[(y * 5 + x) * 3 + k], px[k]);
        }
    ck_assert_int_eq(enco_image_crop(&img, 10, 0, 4, 4, &grid), ENCO_ERR_INVALID_ARG);
    enco_image two[2] = {crop, crop};
    ENCO_CK(enco_image_grid(&grid, two, 2, 2, 1, 9));
    ck_assert_int_eq(grid.w, 2 * 5 + 3);
    ck_assert_int_eq(grid.h, 4 + 2);
    ck_assert_int_eq(grid.data[0], 9);
    ck_assert_int_eq(grid.data[((1 * grid.w) + 7) * 3 + 0], crop.data[0]);
    enco_image_free(&grid);
    enco_image_free(&crop);
    enco_image_free(&img);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("image");
    tcase_add_test(tc, decode_lossless_rgb);
    tcase_add_test(tc, decode_native_channels);
    tcase_add_test(tc, gray_to_rgb_and_alpha_dropped);
    tcase_add_test(tc, rgb_to_l_matches_pil);
    tcase_add_test(tc, palette_and_gif_match_pil);
    tcase_add_test(tc, jpeg_close_to_pil);
    tcase_add_test(tc, missing_empty_and_non_image);
    tcase_add_test(tc, truncated_files);
    tcase_add_test(tc, zero_and_oversized);
    tcase_add_test(tc, jpeg_bad_huffman_table);
    tcase_add_test(tc, png_round_trip_atomic);
    tcase_add_test(tc, tensor_round_trip);
    tcase_add_test(tc, resize_matches_pil);
    tcase_add_test(tc, crop_flip_grid);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
