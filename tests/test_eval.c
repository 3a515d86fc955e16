/* Metrics: PSNR, SSIM, gradient correlation, mask and shape IoU, the fitted
 * baselines of eval and histogram matching on known values. */
#include "harness.h"

#include "data/metrics.h"
#include "data/synth.h"
#include "train/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void make_image(enco_image *img, int w, int h, int c, int seed)
{
    ENCO_CK(enco_image_alloc(img, w, h, c));
    uint32_t s = (uint32_t)seed * 2654435761u + 1;
    for (size_t i = 0; i < (size_t)w * (size_t)h * (size_t)c; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        img->data[i] = (uint8_t)(20 + s % 200);
    }
}

START_TEST(psnr_known_values)
{
    enco_image a, b;
    make_image(&a, 16, 12, 3, 1);
    make_image(&b, 16, 12, 3, 1);
    double p;
    ENCO_CK(enco_psnr_u8(&a, &b, &p));
    ck_assert(isinf(p) && p > 0);
    for (size_t i = 0; i < 16 * 12 * 3; i++)
        b.data[i] = (uint8_t)(a.data[i] + (i % 2 ? 10 : -10));  /* MSE = 100 */
    ENCO_CK(enco_psnr_u8(&a, &b, &p));
    ck_assert_double_eq_tol(p, 10.0 * log10(255.0 * 255.0 / 100.0), 1e-12);
    ck_assert_double_eq_tol(p, 28.130803608679102, 1e-9);
    float x[4] = {-1, 0, 0.5f, 1}, y[4] = {-0.9f, 0.1f, 0.6f, 0.9f};
    ENCO_CK(enco_psnr_tensor(x, y, 4, &p));
    ck_assert_double_eq_tol(p, 10.0 * log10(4.0 / 0.01), 1e-5);  /* MSE 0.01, range 2 */
    ENCO_CK(enco_psnr_tensor(x, x, 4, &p));
    ck_assert(isinf(p));
    enco_image c;
    make_image(&c, 15, 12, 3, 1);
    ck_assert_int_eq(enco_psnr_u8(&a, &c, &p), ENCO_ERR_INVALID_ARG);
    enco_image_free(&a);
    enco_image_free(&b);
    enco_image_free(&c);
}
END_TEST

START_TEST(ssim_known_values)
{
    enco_image a, b;
    make_image(&a, 20, 16, 3, 2);
    double s;
    ENCO_CK(enco_ssim(&a, &a, &s));
    ck_assert_double_eq_tol(s, 1.0, 1e-12);
    make_image(&b, 20, 16, 3, 3);
    ENCO_CK(enco_ssim(&a, &b, &s));
    ck_assert_msg(s < 0.2, "ssim of unrelated noise %.4f", s);
    /* Flat images: SSIM = (2 mx my + C1) / (mx^2 + my^2 + C1). */
    memset(a.data, 100, 20 * 16 * 3);
    memset(b.data, 110, 20 * 16 * 3);
    ENCO_CK(enco_ssim(&a, &b, &s));
    double c1 = (0.01 * 255) * (0.01 * 255);
    ck_assert_double_eq_tol(s, (2 * 100.0 * 110 + c1) / (100.0 * 100 + 110.0 * 110 + c1), 1e-9);
    /* Luminance only: a pure-hue change of equal luma scores 1 on gray. */
    enco_image g1, g2;
    make_image(&g1, 12, 12, 1, 4);
    make_image(&g2, 12, 12, 1, 4);
    ENCO_CK(enco_ssim(&g1, &g2, &s));
    ck_assert_double_eq_tol(s, 1.0, 1e-12);
    enco_image small;
    make_image(&small, 10, 30, 1, 1);
    ck_assert_int_eq(enco_ssim(&small, &small, &s), ENCO_ERR_INVALID_ARG);
    enco_image *all[] = {&a, &b, &g1, &g2, &small};
    for (int i = 0; i < 5; i++)
        enco_image_free(all[i]);
}
END_TEST

START_TEST(content_scores)
{
    enco_synth_scene s1, s2;
    enco_synth_scene_make(&s1, 5, 1);
    enco_synth_scene_make(&s2, 5, 2);
    enco_image a1, b1, b2;
    ENCO_CK(enco_synth_render(&s1, 0, 48, &a1));
    ENCO_CK(enco_synth_render(&s1, 1, 48, &b1));
    ENCO_CK(enco_synth_render(&s2, 1, 48, &b2));
    double same, other, self;
    ENCO_CK(enco_gradient_correlation(&a1, &a1, &self));
    ENCO_CK(enco_gradient_correlation(&a1, &b1, &same));
    ENCO_CK(enco_gradient_correlation(&a1, &b2, &other));
    printf("gradient correlation: self %.3f, same scene across domains %.3f, other scene %.3f\n",
           self, same, other);
    ck_assert_double_eq_tol(self, 1.0, 1e-12);
    ck_assert(same > 0.5);
    ck_assert(other < same - 0.3);
    enco_image flat;
    ENCO_CK(enco_image_alloc(&flat, 48, 48, 3));
    ENCO_CK(enco_gradient_correlation(&flat, &a1, &self));
    ck_assert_double_eq(self, 0.0);
    uint8_t m1[6] = {1, 1, 0, 0, 1, 0}, m2[6] = {1, 0, 0, 1, 1, 0}, z[6] = {0};
    ck_assert_double_eq_tol(enco_mask_iou(m1, m2, 6), 2.0 / 4.0, 1e-15);
    ck_assert_double_eq(enco_mask_iou(z, z, 6), 1.0);
    ck_assert_double_eq(enco_mask_iou(m1, z, 6), 0.0);
    enco_image *all[] = {&a1, &b1, &b2, &flat};
    for (int i = 0; i < 4; i++)
        enco_image_free(all[i]);
}
END_TEST

/* 1-channel images from a list of values, row by row. */
static void gray(enco_image *img, int w, int h, const uint8_t *v)
{
    ENCO_CK(enco_image_alloc(img, w, h, 1));
    memcpy(img->data, v, (size_t)w * (size_t)h);
}

static void fill_rgb(enco_image *img, int x0, int y0, int x1, int y1, uint8_t r, uint8_t g,
                     uint8_t b)
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            uint8_t *p = img->data + ((size_t)y * (size_t)img->w + (size_t)x) * 3;
            p[0] = r, p[1] = g, p[2] = b;
        }
}

START_TEST(border_colour_and_shape_iou)
{
    /* 6x6: the 20 border pixels are 11 x (1,2,3) and 9 x (7,7,7); the 16
     * inner ones (9,9,9), the most frequent colour of the whole image but
     * not of its border. */
    enco_image img;
    ENCO_CK(enco_image_alloc(&img, 6, 6, 3));
    fill_rgb(&img, 0, 0, 6, 6, 7, 7, 7);
    fill_rgb(&img, 1, 1, 5, 5, 9, 9, 9);
    fill_rgb(&img, 0, 0, 6, 1, 1, 2, 3);  /* top row: 6 */
    fill_rgb(&img, 0, 1, 1, 6, 1, 2, 3);  /* left column below it: 5 */
    uint8_t bg[4];
    ENCO_CK(enco_border_colour(&img, bg));
    ck_assert_int_eq(bg[0], 1);
    ck_assert_int_eq(bg[1], 2);
    ck_assert_int_eq(bg[2], 3);
    /* A tie (10 and 10 on the border) goes to the smaller colour. */
    fill_rgb(&img, 5, 5, 6, 6, 1, 2, 3);  /* bottom-right corner: now 12 vs 8 */
    fill_rgb(&img, 0, 0, 2, 1, 7, 7, 7);  /* two back: 10 vs 10 */
    ENCO_CK(enco_border_colour(&img, bg));
    ck_assert_int_eq(bg[0], 1);
    enco_image_free(&img);

    /* Shape IoU: true B is 8x8 navy with a 4x4 square at columns 2..5, rows
     * 2..5; G has a 4x4 square of another colour at columns 4..7, same rows:
     * 8 shared pixels of 16 + 16 - 8 = 24, IoU 1/3. A pixel exactly 40 from
     * navy is background, one 41 away is foreground. */
    enco_image b, g;
    ENCO_CK(enco_image_alloc(&b, 8, 8, 3));
    ENCO_CK(enco_image_alloc(&g, 8, 8, 3));
    fill_rgb(&b, 0, 0, 8, 8, 22, 26, 48);
    fill_rgb(&b, 2, 2, 6, 6, 200, 50, 160);
    fill_rgb(&g, 0, 0, 8, 8, 22, 26, 48);
    fill_rgb(&g, 4, 2, 8, 6, 0, 0, 0);   /* black: 58.9 from navy */
    fill_rgb(&g, 0, 0, 1, 1, 62, 26, 48); /* exactly 40 away */
    double iou;
    ENCO_CK(enco_shape_iou(&g, &b, &iou));
    ck_assert_double_eq_tol(iou, 8.0 / 24.0, 1e-15);
    fill_rgb(&g, 0, 0, 1, 1, 63, 26, 48); /* 41 away: one more pixel in the union */
    ENCO_CK(enco_shape_iou(&g, &b, &iou));
    ck_assert_double_eq_tol(iou, 8.0 / 25.0, 1e-15);
    ENCO_CK(enco_shape_iou(&b, &b, &iou));
    ck_assert_double_eq(iou, 1.0);
    enco_image c;
    ENCO_CK(enco_image_alloc(&c, 8, 7, 3));
    ck_assert_int_eq(enco_shape_iou(&g, &c, &iou), ENCO_ERR_INVALID_ARG);
    enco_image_free(&b);
    enco_image_free(&g);
    enco_image_free(&c);
}
END_TEST

START_TEST(fitted_baselines)
{
    /* Two 2x2 gray pairs:
     *   A1 = 0 0 100 200   B1 = 10 10 50 250
     *   A2 = 100 100 200 0 B2 = 70 30 250 10
     * Constant image: the per-pixel mean of B = 40 20 150 130.
     * Lookup table: mean B where A = v: 0 -> 10 (10, 10, 10), 100 -> 50
     *   (50, 70, 30), 200 -> 250 (250, 250).
     * Affine: least squares over the 8 pixels: mean x 87.5, mean y 85,
     *   Sxy = 55500, Sxx = 48750, slope 1.13846, intercept -14.6154, so
     *   0 -> -14.6 (clamped to 0), 100 -> 99.23 -> 99, 200 -> 213.08 -> 213,
     *   and 50 (never seen: the table falls back to it) -> 42.31 -> 42. */
    static const uint8_t a1v[4] = {0, 0, 100, 200}, b1v[4] = {10, 10, 50, 250};
    static const uint8_t a2v[4] = {100, 100, 200, 0}, b2v[4] = {70, 30, 250, 10};
    static const uint8_t tv[4] = {0, 50, 100, 200};
    enco_image a1, b1, a2, b2, t, out;
    gray(&a1, 2, 2, a1v);
    gray(&b1, 2, 2, b1v);
    gray(&a2, 2, 2, a2v);
    gray(&b2, 2, 2, b2v);
    gray(&t, 2, 2, tv);
    enco_baselines f;
    memset(&f, 0, sizeof f);
    ck_assert_int_eq(enco_baselines_constant(&f, &out), ENCO_ERR_INVALID_ARG); /* no pairs */
    ENCO_CK(enco_baselines_add(&f, &a1, &b1));
    ENCO_CK(enco_baselines_add(&f, &a2, &b2));
    ENCO_CK(enco_baselines_constant(&f, &out));
    static const uint8_t cst[4] = {40, 20, 150, 130};
    ck_assert_mem_eq(out.data, cst, 4);
    enco_image_free(&out);
    ENCO_CK(enco_baselines_lut(&f, &t, &out));
    static const uint8_t lut[4] = {10, 42, 50, 250};
    ck_assert_mem_eq(out.data, lut, 4);
    enco_image_free(&out);
    ENCO_CK(enco_baselines_affine(&f, &t, &out));
    static const uint8_t aff[4] = {0, 42, 99, 213};
    ck_assert_mem_eq(out.data, aff, 4);
    enco_image_free(&out);

    /* A pair of another size: no constant image any more; the remaps stay. */
    enco_image a3, b3;
    static const uint8_t a3v[6] = {0, 0, 0, 0, 0, 0};
    gray(&a3, 3, 2, a3v);
    gray(&b3, 3, 2, a3v);
    ENCO_CK(enco_baselines_add(&f, &a3, &b3));
    ck_assert_int_eq(enco_baselines_constant(&f, &out), ENCO_ERR_INVALID_ARG);
    ENCO_CK(enco_baselines_lut(&f, &t, &out));
    ck_assert_int_eq(out.data[0], 3); /* A = 0 now: (10 * 3 + 0 * 6) / 9 = 3.33 -> 3 */
    enco_image_free(&out);
    enco_baselines_free(&f);

    /* A RGB, B gray: no per-channel map. */
    enco_image rgb;
    ENCO_CK(enco_image_alloc(&rgb, 2, 2, 3));
    memset(&f, 0, sizeof f);
    ENCO_CK(enco_baselines_add(&f, &rgb, &b1));
    ck_assert_int_eq(enco_baselines_affine(&f, &rgb, &out), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_baselines_lut(&f, &rgb, &out), ENCO_ERR_INVALID_ARG);
    ENCO_CK(enco_baselines_constant(&f, &out)); /* B alone: still defined */
    ck_assert_mem_eq(out.data, b1v, 4);
    enco_image_free(&out);
    enco_baselines_free(&f);
    ck_assert_int_eq(enco_baselines_add(&f, &a1, &b3), ENCO_ERR_INVALID_ARG); /* sizes differ */
    enco_image *all[] = {&a1, &b1, &a2, &b2, &t, &a3, &b3, &rgb};
    for (int i = 0; i < 8; i++)
        enco_image_free(all[i]);
}
END_TEST

/* RGB image from a list of pixels. */
static void rgb(enco_image *img, int w, int h, const uint8_t *v)
{
    ENCO_CK(enco_image_alloc(img, w, h, 3));
    memcpy(img->data, v, (size_t)w * (size_t)h * 3);
}

START_TEST(histogram_matching)
{
    /* Training A: two 2x2 RGB images, training B: two others (8 pixels each).
     * R: A = 0 0 100 100 | 100 100 200 250 (counts 0:2 100:4 200:1 250:1,
     *    cumulative 2 6 7 8 of 8); B = 5 5 5 60 | 60 90 90 240 (cumulative
     *    5:3 60:5 90:7 240:8).
     *    v = 0: q = (0 + 2) / 16 = 1/8 -> 5 (F_B(5) = 3/8);
     *    v = 1..99 (empty bins): q = 2/8 -> 5;
     *    v = 100 (a tie of 4 pixels over B's 5, 60, 60, 90): q = (2 + 6) / 16
     *      = 4/8 -> 60 (F_B(5) = 3/8 < 4/8 <= F_B(60) = 5/8);
     *    v = 101..200: q = 6/8 and 6.5/8 -> 90;
     *    v = 201..249: q = 7/8 = F_B(90) exactly -> 90;
     *    v = 250: q = 7.5/8 -> 240; v = 251..255: q = 1 -> 240.
     * G: A is 50 everywhere (one value); B = 20 20 20 100 | 100 100 100 180.
     *    v < 50: q = 0 -> 20 (B's smallest value, not 0);
     *    v = 50: q = 1/2 -> 100 (F_B(20) = 3/8, F_B(100) = 7/8);
     *    v > 50: q = 1 -> 180.
     * B: B is 77 everywhere: every A value maps to 77. */
    static const uint8_t a1v[12] = {0, 50, 0, 0, 50, 9, 100, 50, 100, 100, 50, 200};
    static const uint8_t a2v[12] = {100, 50, 3, 100, 50, 4, 200, 50, 5, 250, 50, 255};
    static const uint8_t b1v[12] = {5, 20, 77, 5, 20, 77, 5, 20, 77, 60, 100, 77};
    static const uint8_t b2v[12] = {60, 100, 77, 90, 100, 77, 90, 100, 77, 240, 180, 77};
    enco_image a1, a2, b1, b2, t, out;
    rgb(&a1, 2, 2, a1v);
    rgb(&a2, 2, 2, a2v);
    rgb(&b1, 2, 2, b1v);
    rgb(&b2, 2, 2, b2v);
    enco_histmatch f;
    memset(&f, 0, sizeof f);
    uint8_t table[4][256];
    ENCO_CK(enco_histmatch_add(&f, &a1, 0));
    ck_assert_int_eq(enco_histmatch_table(&f, table), ENCO_ERR_INVALID_ARG); /* no B yet */
    ENCO_CK(enco_histmatch_add(&f, &b2, 1));
    ENCO_CK(enco_histmatch_add(&f, &a2, 0));
    ENCO_CK(enco_histmatch_add(&f, &b1, 1)); /* the order of images does not matter */
    ck_assert_uint_eq(f.images_a, 2);
    ck_assert_uint_eq(f.images_b, 2);
    ENCO_CK(enco_histmatch_table(&f, table));
    for (int v = 0; v < 256; v++) {
        uint8_t r = v == 0 || v < 100 ? 5 : v == 100 ? 60 : v < 250 ? 90 : 240;
        uint8_t g = v < 50 ? 20 : v == 50 ? 100 : 180;
        ck_assert_msg(table[0][v] == r && table[1][v] == g && table[2][v] == 77,
                      "v %d: T = %d %d %d, expected %d %d 77", v, table[0][v], table[1][v],
                      table[2][v], r, g);
    }
    /* Applied per pixel to an image never seen in training. */
    static const uint8_t tv[12] = {0, 50, 0, 100, 10, 255, 201, 60, 100, 250, 50, 30};
    static const uint8_t want[12] = {5, 100, 77, 60, 20, 77, 90, 180, 77, 240, 100, 77};
    rgb(&t, 2, 2, tv);
    ENCO_CK(enco_histmatch_apply(&f, &t, &out));
    ck_assert_int_eq(out.w, 2);
    ck_assert_int_eq(out.c, 3);
    ck_assert_mem_eq(out.data, want, 12);
    enco_image_free(&out);

    /* Bad inputs: a gray image for an RGB map, a gray image into RGB A, A RGB
     * with B gray. */
    enco_image g;
    static const uint8_t gv[4] = {1, 2, 3, 4};
    gray(&g, 2, 2, gv);
    ck_assert_int_eq(enco_histmatch_apply(&f, &g, &out), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_histmatch_add(&f, &g, 0), ENCO_ERR_INVALID_ARG);
    enco_histmatch m;
    memset(&m, 0, sizeof m);
    ENCO_CK(enco_histmatch_add(&m, &a1, 0));
    ENCO_CK(enco_histmatch_add(&m, &g, 1));
    ck_assert_int_eq(enco_histmatch_table(&m, table), ENCO_ERR_INVALID_ARG);

    /* Exact comparisons at counts whose products pass 2^64: A = 2^40 x 0 and
     * 2^40 x 1, so q(0) = 1/4; B = 2^60 x 5 and 3 x 2^60 -+ 1 x 9, so F_B(5) =
     * 2^60 / (2^62 -+ 1) is just above 1/4 (T[0] = 5) or just below it (T[0] =
     * 9). 2 |A| C_B(5) and |B| (C_A(-1) + C_A(0)) are near 2^102 and differ
     * by 2^40: wrapped 64-bit products or doubles get one of the two wrong. */
    for (int above = 0; above < 2; above++) {
        memset(&m, 0, sizeof m);
        m.c_a = m.c_b = 1, m.images_a = m.images_b = 1;
        m.ha[0][0] = m.ha[0][1] = (uint64_t)1 << 40;
        m.hb[0][5] = (uint64_t)1 << 60;
        m.hb[0][9] = 3 * ((uint64_t)1 << 60) + (above ? (uint64_t)-1 : 1);
        ENCO_CK(enco_histmatch_table(&m, table));
        ck_assert_int_eq(table[0][0], above ? 5 : 9);
        ck_assert_int_eq(table[0][1], 9);
    }
    enco_image *all[] = {&a1, &a2, &b1, &b2, &t, &g};
    for (int i = 0; i < 6; i++)
        enco_image_free(all[i]);
}
END_TEST

/* eval.json: every score, NaN as null, the worst file's name escaped; a
 * folder that does not exist is an error and leaves nothing behind. */
START_TEST(eval_json)
{
    enco_eval_result r;
    memset(&r, 0, sizeof r);
    r.images = 3;
    r.model = (enco_eval_scores){14.5, 0.5, 0.625, 0.75};
    r.identity = (enco_eval_scores){2.5, NAN, 0.25, 0.125};
    r.constant = r.affine = r.lut = r.histmatch = (enco_eval_scores){NAN, NAN, NAN, NAN};
    r.min_content = 0.5;
    snprintf(r.worst, sizeof r.worst, "a\"b.png");
    char dir[] = "/tmp/enco-evaljson-XXXXXX", path[128], text[4096];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/eval.json", dir);
    ENCO_CK(enco_eval_write_json(&r, path));
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    const char *want[] = {"{\"images\": 3, \"psnr\": 14.5000, \"ssim\": 0.50000",
                          "\"iou\": 0.75000", "\"identity_ssim\": null",
                          "\"identity_iou\": 0.12500", "\"histmatch_psnr\": null",
                          "\"worst\": \"a\\\"b.png\", \"direction\": \"AtoB\"}\n"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        ck_assert_msg(strstr(text, want[i]) != NULL, "eval.json lacks %s: %s", want[i], text);
    remove(path);
    snprintf(path, sizeof path, "%s/no-such-folder/eval.json", dir);
    ck_assert_int_eq(enco_eval_write_json(&r, path), ENCO_ERR_IO);
    ck_assert(strstr(enco_last_error(), "no-such-folder") != NULL);
    ck_assert_int_eq(rmdir(dir), 0); /* no temporary file left */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("eval");
    TCase *tc = tcase_create("eval");
    tcase_add_test(tc, psnr_known_values);
    tcase_add_test(tc, ssim_known_values);
    tcase_add_test(tc, content_scores);
    tcase_add_test(tc, border_colour_and_shape_iou);
    tcase_add_test(tc, fitted_baselines);
    tcase_add_test(tc, histogram_matching);
    tcase_add_test(tc, eval_json);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
