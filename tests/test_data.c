/* Datasets, preprocessing and the loader threads: listing and its errors,
 * the documented random stream layout, determinism, order, resumption and
 * error propagation. Data are made on the fly in a temporary folder. */
#include "harness.h"

#include "data/loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];

static void put_file(const char *dir, const char *name, const void *data, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* A w x h RGB image whose pixels encode (x, y, tag). */
static void put_png(const char *dir, const char *name, int w, int h, int tag)
{
    enco_image img;
    ENCO_CK(enco_image_alloc(&img, w, h, 3));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = img.data + (y * w + x) * 3;
            p[0] = (uint8_t)(x * 9);
            p[1] = (uint8_t)(y * 7);
            p[2] = (uint8_t)(tag * 40);
        }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ENCO_CK(enco_image_save_png(path, &img));
    enco_image_free(&img);
}

static const char *sub(const char *leaf)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, leaf);
    return buf[k];
}

/* ROOT/trainA: 5 images (spaces, non-ASCII, mixed extensions and case, a
 * text file, a dot-file, a sub-folder); trainB: 3; testA only (no testB). */
static void make_dataset(void)
{
    if (root[0])
        return;
    snprintf(root, sizeof root, "/tmp/enco-test-data-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    const char *dirs[] = {"trainA", "trainB", "testA", "emptyA", "emptyB", "trainA/sub"};
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(mkdir(sub(dirs[i]), 0755), 0);
    put_png(sub("trainA"), "b image.png", 20, 16, 1);
    put_png(sub("trainA"), "a.PNG", 24, 18, 0);
    put_png(sub("trainA"), "\xc3\xa9t\xc3\xa9.png", 18, 18, 4);   /* "été.png" */
    put_png(sub("trainA"), "c.png", 16, 24, 2);
    put_png(sub("trainA"), "Z.png", 30, 20, 3);
    put_file(sub("trainA"), "notes.txt", "hello", 5);
    put_file(sub("trainA"), ".hidden.png", "x", 1);
    put_png(sub("trainB"), "x1.png", 20, 20, 5);
    put_png(sub("trainB"), "x2.png", 26, 19, 6);
    put_png(sub("trainB"), "x3.png", 17, 21, 7);
    put_png(sub("testA"), "t.png", 20, 20, 1);
    put_file(sub("emptyA"), "readme.md", "#", 1);
    put_png(sub("emptyB"), "e.png", 20, 20, 1);
}

static void small_opts(enco_data_opts *o)
{
    enco_data_opts_default(o);
    o->load_size = 18;
    o->crop_size = 16;
}

START_TEST(listing_sorted_and_skips)
{
    make_dataset();
    enco_dataset ds;
    ENCO_CK(enco_dataset_open(&ds, root, "train"));
    ck_assert_uint_eq(ds.a.count, 5);
    ck_assert_uint_eq(ds.b.count, 3);
    ck_assert_uint_eq(ds.a.skipped, 1);
    ck_assert_uint_eq(enco_dataset_len(&ds), 5);
    const char *order[] = {"Z.png", "a.PNG", "b image.png", "c.png", "\xc3\xa9t\xc3\xa9.png"};
    for (int i = 0; i < 5; i++) {
        const char *slash = strrchr(ds.a.paths[i], '/');
        ck_assert_str_eq(slash + 1, order[i]);
    }
    char warn[512];
    ck_assert_uint_eq(enco_dataset_warnings(&ds, warn, sizeof warn), 1);
    ck_assert_ptr_nonnull(strstr(warn, "trainA: skipped 1 non-image file"));
    enco_dataset_close(&ds);

    ck_assert(enco_is_image_name("x.JPEG"));
    ck_assert(enco_is_image_name("a.b.tga"));
    ck_assert(!enco_is_image_name("png"));
    ck_assert(!enco_is_image_name("x.png.txt"));
    ck_assert(!enco_is_image_name("x."));
}
END_TEST

START_TEST(listing_errors)
{
    make_dataset();
    enco_dataset ds;
    ck_assert_int_eq(enco_dataset_open(&ds, sub("nope"), "train"), ENCO_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "nope"));
    ck_assert_int_eq(enco_dataset_open(&ds, root, "test"), ENCO_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "testB"));
    ck_assert_int_eq(enco_dataset_open(&ds, root, "empty"), ENCO_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "emptyA: no image files (1 other file"));
}
END_TEST

START_TEST(options_and_rounding)
{
    enco_data_opts o;
    enco_data_opts_default(&o);
    ck_assert_int_eq(o.load_size, 286);
    ck_assert_int_eq(o.crop_size, 256);
    ENCO_CK(enco_data_opts_validate(&o));
    o.crop_size = 300;
    ck_assert_int_eq(enco_data_opts_validate(&o), ENCO_ERR_INVALID_ARG);
    o.preprocess = ENCO_PRE_CROP;
    ENCO_CK(enco_data_opts_validate(&o));
    o.channels = 2;
    ck_assert_int_eq(enco_data_opts_validate(&o), ENCO_ERR_INVALID_ARG);
    enco_preprocess p;
    ENCO_CK(enco_preprocess_parse("scale_width_and_crop", &p));
    ck_assert_int_eq(p, ENCO_PRE_SCALE_WIDTH_AND_CROP);
    ck_assert_str_eq(enco_preprocess_name(p), "scale_width_and_crop");
    ck_assert_int_eq(enco_preprocess_parse("resize", &p), ENCO_ERR_INVALID_ARG);
    /* Python's round(x / 4) * 4: ties go to the even quotient. */
    int in[] = {1, 2, 4, 5, 6, 7, 10, 14, 18, 255, 256};
    int want[] = {4, 4, 4, 4, 8, 8, 8, 16, 16, 256, 256};
    for (int i = 0; i < 11; i++)
        ck_assert_msg(enco_round_to_4(in[i]) == want[i], "round_to_4(%d) = %d, expected %d", in[i],
                      enco_round_to_4(in[i]), want[i]);
}
END_TEST

START_TEST(augment_geometry)
{
    enco_data_opts o;
    small_opts(&o);
    enco_augment a;
    enco_rng rng = enco_rng_make(1, 2);
    for (int t = 0; t < 50; t++) {
        ENCO_CK(enco_augment_draw(&a, &o, 1, 30, 20, &rng));
        ck_assert_int_eq(a.resize_w, 18);
        ck_assert_int_eq(a.resize_h, 18);
        ck_assert(a.crop_x >= 0 && a.crop_x <= 2 && a.crop_y >= 0 && a.crop_y <= 2);
        ck_assert_int_eq(a.crop_w, 16);
    }
    /* scale_width: width to 18, height int(18 * 13 / 9) = 26 */
    o.preprocess = ENCO_PRE_SCALE_WIDTH_AND_CROP;
    ENCO_CK(enco_augment_draw(&a, &o, 1, 9, 13, &rng));
    ck_assert_int_eq(a.resize_w, 18);
    ck_assert_int_eq(a.resize_h, 26);
    ck_assert(a.crop_y <= 10);
    /* ... but never below crop_size */
    ENCO_CK(enco_augment_draw(&a, &o, 1, 40, 10, &rng));
    ck_assert_int_eq(a.resize_h, 16);
    /* decay phase: load_size becomes crop_size after n_epochs */
    o.preprocess = ENCO_PRE_RESIZE_AND_CROP;
    o.n_epochs = 3;
    ENCO_CK(enco_augment_draw(&a, &o, 4, 30, 20, &rng));
    ck_assert_int_eq(a.resize_w, 16);
    ck_assert_int_eq(a.crop_x, 0);
    /* crop needs an image at least crop_size */
    o.preprocess = ENCO_PRE_CROP;
    ck_assert_int_eq(enco_augment_draw(&a, &o, 1, 15, 40, &rng), ENCO_ERR_INVALID_ARG);
    o.preprocess = ENCO_PRE_NONE;
    o.no_flip = 1;
    ENCO_CK(enco_augment_draw(&a, &o, 1, 30, 18, &rng));
    ck_assert_int_eq(a.resize_w, 32);
    ck_assert_int_eq(a.resize_h, 16);
    ck_assert_int_eq(a.flip, 0);
    /* flips happen about half the time */
    o.no_flip = 0;
    int flips = 0;
    for (int t = 0; t < 200; t++) {
        ENCO_CK(enco_augment_draw(&a, &o, 1, 30, 18, &rng));
        flips += a.flip;
    }
    ck_assert(flips > 70 && flips < 130);
}
END_TEST

/* The stream layout documented in dataset.h, recomputed by hand. */
START_TEST(item_follows_stream_layout)
{
    make_dataset();
    enco_dataset ds;
    ENCO_CK(enco_dataset_open(&ds, root, "train"));
    enco_data_opts o;
    small_opts(&o);
    const uint64_t seed = 42;
    int bseen[3] = {0, 0, 0};
    for (size_t index = 0; index < 12; index++) {
        enco_image a, b;
        ENCO_CK(enco_dataset_item(&ds, &o, seed, 3, index, &a, &b));
        enco_rng rng = enco_rng_make(seed, ENCO_DATA_STREAM | (3ULL << 32) | index);
        size_t ib = enco_rng_bounded(&rng, 3);
        bseen[ib]++;
        enco_image ra, rb, ea, eb;
        ENCO_CK(enco_image_load(ds.a.paths[index % 5], 3, &ra));
        ENCO_CK(enco_image_load(ds.b.paths[ib], 3, &rb));
        enco_augment ga, gb;
        ENCO_CK(enco_augment_draw(&ga, &o, 3, ra.w, ra.h, &rng));
        ENCO_CK(enco_augment_draw(&gb, &o, 3, rb.w, rb.h, &rng));
        ENCO_CK(enco_augment_apply(&ga, &ra, &ea));
        ENCO_CK(enco_augment_apply(&gb, &rb, &eb));
        ck_assert_int_eq(a.w, 16);
        ck_assert_int_eq(b.h, 16);
        ck_assert_mem_eq(a.data, ea.data, 16 * 16 * 3);
        ck_assert_mem_eq(b.data, eb.data, 16 * 16 * 3);
        enco_image *all[] = {&a, &b, &ra, &rb, &ea, &eb};
        for (int k = 0; k < 6; k++)
            enco_image_free(all[k]);
    }
    ck_assert(bseen[0] && bseen[1] && bseen[2]);
    /* serial_batches: B[i mod |B|]; grayscale when channels = 1 */
    o.serial_batches = 1;
    o.channels = 1;
    size_t ia, ib;
    enco_rng rng;
    enco_dataset_pick(&ds, &o, seed, 1, 7, &ia, &ib, &rng);
    ck_assert_uint_eq(ia, 2);
    ck_assert_uint_eq(ib, 1);
    enco_image a, b;
    ENCO_CK(enco_dataset_item(&ds, &o, seed, 1, 7, &a, &b));
    ck_assert_int_eq(a.c, 1);
    ck_assert_int_eq(b.c, 1);
    enco_image_free(&a);
    enco_image_free(&b);
    enco_dataset_close(&ds);
}
END_TEST

static float *collect_epoch(const enco_dataset *ds, int threads, int batch, int epoch, size_t first,
                            size_t *nbatches)
{
    enco_loader_opts lo = {.seed = 9, .batch_size = batch, .threads = threads};
    small_opts(&lo.data);
    enco_loader *l;
    ENCO_CK(enco_loader_create(&l, ds, &lo));
    size_t per = enco_loader_batches(l);
    size_t floats = (size_t)batch * 3 * 16 * 16;
    float *all = calloc(per * 2 * floats, sizeof(float));
    ENCO_CK(enco_loader_start(l, epoch, first));
    size_t j = first;
    const enco_batch *bt;
    for (;;) {
        ENCO_CK(enco_loader_next(l, &bt));
        if (!bt)
            break;
        ck_assert_uint_eq(bt->batch, j);
        ck_assert_int_eq(bt->epoch, epoch);
        ck_assert_int_eq(bt->n, batch);
        ck_assert_int_eq(bt->h, 16);
        for (int k = 0; k < batch; k++)
            ck_assert_uint_eq(bt->index_a[k], (j * (size_t)batch + (size_t)k) % ds->a.count);
        memcpy(all + j * 2 * floats, bt->a, floats * sizeof(float));
        memcpy(all + j * 2 * floats + floats, bt->b, floats * sizeof(float));
        j++;
    }
    ck_assert_uint_eq(j, per);
    ENCO_CK(enco_loader_next(l, &bt));  /* stays at the end */
    ck_assert_ptr_null(bt);
    enco_loader_free(l);
    *nbatches = per;
    return all;
}

START_TEST(loader_order_threads_resume)
{
    make_dataset();
    enco_dataset ds;
    ENCO_CK(enco_dataset_open(&ds, root, "train"));
    size_t n1, n3, nr;
    float *one = collect_epoch(&ds, 1, 2, 2, 0, &n1);
    float *three = collect_epoch(&ds, 3, 2, 2, 0, &n3);
    ck_assert_uint_eq(n1, 2);  /* floor(5 / 2) */
    ck_assert_uint_eq(n3, n1);
    size_t floats = 2 * 3 * 16 * 16;
    test_assert_bitwise("loader 1 vs 3 threads", one, three, n1 * 2 * floats);
    float *resumed = collect_epoch(&ds, 2, 2, 2, 1, &nr);
    test_assert_bitwise("loader resumed at batch 1", resumed + 2 * floats, one + 2 * floats, 2 * floats);
    /* The batch equals the items made one by one. */
    enco_data_opts o;
    small_opts(&o);
    enco_image a, b;
    ENCO_CK(enco_dataset_item(&ds, &o, 9, 2, 3, &a, &b));
    float t[3 * 16 * 16];
    enco_image_to_tensor(&b, t);
    test_assert_bitwise("batch 1 item 1 (B)", one + 2 * floats + floats + 3 * 16 * 16, t, 3 * 16 * 16);
    enco_image_free(&a);
    enco_image_free(&b);
    /* Another epoch draws other crops and B choices. */
    float *other = collect_epoch(&ds, 1, 2, 3, 0, &n1);
    ck_assert(memcmp(other, one, n1 * 2 * floats * sizeof(float)) != 0);
    free(one);
    free(three);
    free(resumed);
    free(other);

    double ips = 0;
    enco_loader_opts lo = {.seed = 1, .batch_size = 1, .threads = 2};
    small_opts(&lo.data);
    ENCO_CK(enco_loader_benchmark(&ds, &lo, 8, &ips));
    ck_assert(ips > 0);
    enco_dataset_close(&ds);
}
END_TEST

/* Data-parallel shards: shard s of batch j holds images s*N .. s*N+N-1 of
 * batch j of the unsharded loader with batch S*N (the same pixels), and the
 * epoch is as long as that loader's. */
START_TEST(loader_shards)
{
    make_dataset();
    enco_dataset ds;
    ENCO_CK(enco_dataset_open(&ds, root, "train"));
    size_t nwhole = 0;
    float *whole = collect_epoch(&ds, 1, 2, 2, 0, &nwhole); /* 2 batches of 2 */
    const size_t img = 3 * 16 * 16;
    for (int shard = 0; shard < 2; shard++) {
        enco_loader_opts lo = {.seed = 9, .batch_size = 1, .threads = 2, .shards = 2,
                               .shard = shard};
        small_opts(&lo.data);
        enco_loader *l;
        ENCO_CK(enco_loader_create(&l, &ds, &lo));
        ck_assert_uint_eq(enco_loader_batches(l), nwhole);
        ENCO_CK(enco_loader_start(l, 2, 0));
        for (size_t j = 0; j < nwhole; j++) {
            const enco_batch *bt;
            ENCO_CK(enco_loader_next(l, &bt));
            ck_assert_ptr_nonnull(bt);
            ck_assert_uint_eq(bt->index_a[0], (j * 2 + (size_t)shard) % ds.a.count);
            char what[64];
            snprintf(what, sizeof what, "shard %d of batch %zu (A)", shard, j);
            test_assert_bitwise(what, bt->a, whole + j * 2 * 2 * img + (size_t)shard * img, img);
            snprintf(what, sizeof what, "shard %d of batch %zu (B)", shard, j);
            test_assert_bitwise(what, bt->b, whole + (j * 2 + 1) * 2 * img + (size_t)shard * img,
                                img);
        }
        enco_loader_free(l);
    }
    free(whole);
    enco_loader_opts bad = {.seed = 9, .batch_size = 1, .threads = 1, .shards = 2, .shard = 2};
    small_opts(&bad.data);
    enco_loader *l = NULL;
    ck_assert_int_eq(enco_loader_create(&l, &ds, &bad), ENCO_ERR_INVALID_ARG);
    bad.shard = 0;
    bad.batch_size = 3; /* 6 images a batch, 5 in the set */
    ck_assert_int_eq(enco_loader_create(&l, &ds, &bad), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "global batch 6"));
    enco_dataset_close(&ds);
}
END_TEST

START_TEST(loader_errors_propagate)
{
    make_dataset();
    char broken[600];
    snprintf(broken, sizeof broken, "%s/broken", root);
    ck_assert_int_eq(mkdir(broken, 0755), 0);
    char d[700];
    snprintf(d, sizeof d, "%s/brokenA", broken);
    ck_assert_int_eq(mkdir(d, 0755), 0);
    for (int i = 0; i < 6; i++) {
        char name[32];
        snprintf(name, sizeof name, "%d.png", i);
        if (i == 3)
            put_file(d, name, "\x89PNG\r\n\x1a\n garbage", 17);
        else
            put_png(d, name, 20, 20, i);
    }
    snprintf(d, sizeof d, "%s/brokenB", broken);
    ck_assert_int_eq(mkdir(d, 0755), 0);
    put_png(d, "b.png", 20, 20, 1);
    enco_dataset ds;
    ENCO_CK(enco_dataset_open(&ds, broken, "broken"));
    for (int threads = 1; threads <= 3; threads += 2) {
        enco_loader_opts lo = {.seed = 1, .batch_size = 1, .threads = threads, .depth = 2};
        small_opts(&lo.data);
        enco_loader *l;
        ENCO_CK(enco_loader_create(&l, &ds, &lo));
        ENCO_CK(enco_loader_start(l, 1, 0));
        const enco_batch *bt;
        for (size_t j = 0; j < 6; j++) {
            enco_status st = enco_loader_next(l, &bt);
            if (j == 3) {
                ck_assert_int_eq(st, ENCO_ERR_FORMAT);
                ck_assert_ptr_nonnull(strstr(enco_last_error(), "brokenA/3.png"));
                ck_assert_ptr_null(bt);
            } else {
                ck_assert_msg(st == ENCO_OK, "batch %zu: %s", j, enco_last_error());
                ck_assert_uint_eq(bt->batch, j);
            }
        }
        /* Restart mid-epoch, then free with work in flight. */
        ENCO_CK(enco_loader_start(l, 2, 1));
        ENCO_CK(enco_loader_next(l, &bt));
        ck_assert_uint_eq(bt->batch, 1);
        enco_loader_free(l);
    }
    enco_loader *l;
    enco_loader_opts bad = {.seed = 1, .batch_size = 7, .threads = 1};
    small_opts(&bad.data);
    ck_assert_int_eq(enco_loader_create(&l, &ds, &bad), ENCO_ERR_INVALID_ARG);
    enco_dataset_close(&ds);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("data");
    tcase_add_test(tc, listing_sorted_and_skips);
    tcase_add_test(tc, listing_errors);
    tcase_add_test(tc, options_and_rounding);
    tcase_add_test(tc, augment_geometry);
    tcase_add_test(tc, item_follows_stream_layout);
    tcase_add_test(tc, loader_order_threads_resume);
    tcase_add_test(tc, loader_errors_propagate);
    tcase_add_test(tc, loader_shards);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
