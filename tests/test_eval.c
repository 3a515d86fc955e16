/* Metrics: PSNR, SSIM, gradient correlation and mask IoU on known values. */
#include "harness.h"

#include "data/metrics.h"
#include "data/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    Suite *s = suite_create("eval");
    TCase *tc = tcase_create("eval");
    tcase_add_test(tc, psnr_known_values);
    tcase_add_test(tc, ssim_known_values);
    tcase_add_test(tc, content_scores);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
