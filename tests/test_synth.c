/* The synthetic task: deterministic scenes, both domains keep the layout,
 * the written folders follow the documented streams, test pairs match. */
#include "harness.h"

#include "data/metrics.h"
#include "data/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S 48

START_TEST(scenes_deterministic)
{
    enco_synth_scene a, b, c;
    enco_synth_scene_make(&a, 7, ENCO_SYNTH_STREAM | 3);
    enco_synth_scene_make(&b, 7, ENCO_SYNTH_STREAM | 3);
    enco_synth_scene_make(&c, 7, ENCO_SYNTH_STREAM | 4);
    ck_assert_mem_eq(&a, &b, sizeof a);
    ck_assert(memcmp(&a, &c, sizeof a) != 0);
    for (uint64_t i = 0; i < 50; i++) {
        enco_synth_scene_make(&a, 1, i);
        ck_assert(a.n >= 2 && a.n <= ENCO_SYNTH_MAX_SHAPES);
        for (int k = 0; k < a.n; k++) {
            ck_assert(a.shapes[k].colour >= 0 && a.shapes[k].colour < ENCO_SYNTH_COLOURS);
            ck_assert(a.shapes[k].cx >= 0.18f && a.shapes[k].cx < 0.82f);
            ck_assert(a.shapes[k].rx >= 0.08f && a.shapes[k].rx < 0.22f);
        }
    }
}
END_TEST

START_TEST(domains_share_layout)
{
    uint8_t layout[S * S], fa[S * S], fb[S * S], any[S * S];
    double iou_sum = 0, layout_sum = 0;
    for (uint64_t i = 0; i < 10; i++) {
        enco_synth_scene sc;
        enco_synth_scene_make(&sc, 3, i);
        enco_image a, b;
        ENCO_CK(enco_synth_render(&sc, 0, S, &a));
        ENCO_CK(enco_synth_render(&sc, 1, S, &b));
        ENCO_CK(enco_synth_layout(&sc, S, layout));
        ENCO_CK(enco_synth_foreground(&a, 0, fa));
        ENCO_CK(enco_synth_foreground(&b, 1, fb));
        for (int k = 0; k < S * S; k++)
            any[k] = layout[k] != 0;
        double iou_a = enco_mask_iou(fa, any, S * S), iou_b = enco_mask_iou(fb, any, S * S);
        /* Antialiased edges: a one-pixel band may go either way. */
        ck_assert_msg(iou_a > 0.7 && iou_b > 0.7, "scene %d: IoU with the layout A %.3f B %.3f",
                      (int)i, iou_a, iou_b);
        iou_sum += enco_mask_iou(fa, fb, S * S);
        layout_sum += iou_a + iou_b;
        /* Background pixels hold the domain's background colour exactly. */
        for (int k = 0; k < S * S; k++) {
            int y = k / S, x = k % S;
            int clear = 1;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int yy = y + dy, xx = x + dx;
                    if (yy >= 0 && yy < S && xx >= 0 && xx < S && layout[yy * S + xx])
                        clear = 0;
                }
            if (!clear)
                continue;
            ck_assert_int_eq(a.data[3 * k], 232);
            ck_assert_int_eq(b.data[3 * k + 2], 48);
        }
        enco_image_free(&a);
        enco_image_free(&b);
    }
    printf("foreground IoU: A vs B %.3f, rendered vs layout %.3f\n", iou_sum / 10, layout_sum / 20);
    ck_assert(iou_sum / 10 > 0.95);
    ck_assert(layout_sum / 20 > 0.85);
    enco_image img;
    enco_synth_scene sc;
    enco_synth_scene_make(&sc, 3, 0);
    ck_assert_int_eq(enco_synth_render(&sc, 2, S, &img), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_synth_render(&sc, 0, 8, &img), ENCO_ERR_INVALID_ARG);
}
END_TEST

static void load_split(const char *root, const char *split, int i, enco_image *img)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s/%04d.png", root, split, i);
    ENCO_CK(enco_image_load(path, 3, img));
}

START_TEST(written_folders)
{
    char root[64] = "/tmp/enco-test-synth-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(root));
    char out[128];
    snprintf(out, sizeof out, "%s/syn", root);
    enco_synth_opts o = {.size = 32, .n_train = 4, .n_test = 3, .seed = 11};
    ENCO_CK(enco_synth_write(out, &o));
    const char *splits[] = {"trainA", "trainB", "testA", "testB"};
    const uint64_t streams[] = {0, 1ULL << 32, 2ULL << 32, 2ULL << 32};
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < (s < 2 ? 4 : 3); i++) {
            enco_image got, want;
            load_split(out, splits[s], i, &got);
            enco_synth_scene sc;
            enco_synth_scene_make(&sc, 11, ENCO_SYNTH_STREAM | streams[s] | (uint64_t)i);
            ENCO_CK(enco_synth_render(&sc, s % 2 == 0 ? 0 : 1, 32, &want));
            ck_assert_mem_eq(got.data, want.data, 32 * 32 * 3);
            enco_image_free(&got);
            enco_image_free(&want);
        }
    char path[600];
    snprintf(path, sizeof path, "%s/testA/0003.png", out);
    ck_assert_int_ne(access(path, F_OK), 0);
    /* Writing again with more images keeps the first ones identical. */
    enco_image before;
    load_split(out, "trainB", 2, &before);
    o.n_train = 5;
    ENCO_CK(enco_synth_write(out, &o));
    enco_image after;
    load_split(out, "trainB", 2, &after);
    ck_assert_mem_eq(before.data, after.data, 32 * 32 * 3);
    enco_image_free(&before);
    enco_image_free(&after);
    /* A file where a folder should be. */
    snprintf(path, sizeof path, "%s/file", root);
    FILE *f = fopen(path, "w");
    fclose(f);
    ck_assert_int_eq(enco_synth_write(path, &o), ENCO_ERR_IO);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), path));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("synth");
    TCase *tc = tcase_create("synth");
    tcase_add_test(tc, scenes_deterministic);
    tcase_add_test(tc, domains_share_layout);
    tcase_add_test(tc, written_folders);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
