/* Evaluation on test pairs. */
#include "train/evaluate.h"

#include "data/dataset.h"
#include "data/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *leaf(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static enco_status score_one(enco_translator *tr, const char *pa, const char *pb,
                             double out[6])
{
    int c = tr->cfg.model.input_nc;
    enco_image a = {0}, b = {0}, a4 = {0}, b4 = {0}, g = {0};
    float *x = NULL, *y = NULL;
    enco_status st = enco_image_load(pa, c, &a);
    if (st == ENCO_OK)
        st = enco_image_load(pb, tr->cfg.model.output_nc, &b);
    if (st == ENCO_OK && (a.w != b.w || a.h != b.h))
        st = ENCO_FAIL(ENCO_ERR_FORMAT, "%s is %dx%d but its pair %s is %dx%d", pa, a.w, a.h, pb,
                       b.w, b.h);
    int w = enco_round_to_4(a.w), h = enco_round_to_4(a.h);
    if (st == ENCO_OK)
        st = w == a.w && h == a.h ? enco_image_crop(&a, 0, 0, w, h, &a4)
                                  : enco_image_resize_bicubic(&a, w, h, &a4);
    if (st == ENCO_OK)
        st = w == b.w && h == b.h ? enco_image_crop(&b, 0, 0, w, h, &b4)
                                  : enco_image_resize_bicubic(&b, w, h, &b4);
    if (st == ENCO_OK) {
        x = malloc((size_t)c * w * h * sizeof(float));
        y = malloc((size_t)tr->cfg.model.output_nc * w * h * sizeof(float));
        if (!x || !y)
            st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    }
    if (st == ENCO_OK) {
        enco_image_to_tensor(&a4, x);
        st = enco_translator_run(tr, x, h, w, y);
    }
    if (st == ENCO_OK)
        st = enco_image_from_tensor(&g, y, tr->cfg.model.output_nc, h, w);
    if (st == ENCO_OK)
        st = enco_psnr_u8(&g, &b4, &out[0]);
    if (st == ENCO_OK)
        st = enco_ssim(&g, &b4, &out[1]);
    if (st == ENCO_OK)
        st = enco_gradient_correlation(&g, &b4, &out[2]);
    if (st == ENCO_OK && a4.c == b4.c) {
        st = enco_psnr_u8(&a4, &b4, &out[3]);
        if (st == ENCO_OK)
            st = enco_ssim(&a4, &b4, &out[4]);
        if (st == ENCO_OK)
            st = enco_gradient_correlation(&a4, &b4, &out[5]);
    } else if (st == ENCO_OK) {
        out[3] = out[4] = out[5] = NAN;
    }
    free(x);
    free(y);
    enco_image_free(&a);
    enco_image_free(&b);
    enco_image_free(&a4);
    enco_image_free(&b4);
    enco_image_free(&g);
    return st;
}

enco_status enco_evaluate(enco_translator *tr, const char *root, size_t max_images,
                          enco_eval_result *res)
{
    memset(res, 0, sizeof *res);
    res->min_content = INFINITY;
    enco_dataset ds;
    memset(&ds, 0, sizeof ds);
    ENCO_TRY(enco_dataset_open(&ds, root, "test"));
    enco_status st = ENCO_OK;
    double sum[6] = {0};
    size_t j = 0;
    for (size_t i = 0; i < ds.a.count && st == ENCO_OK; i++) {
        if (max_images && res->images >= max_images)
            break;
        const char *name = leaf(ds.a.paths[i]);
        while (j < ds.b.count && strcmp(leaf(ds.b.paths[j]), name) < 0)
            j++;
        if (j == ds.b.count || strcmp(leaf(ds.b.paths[j]), name) != 0)
            continue; /* no ground truth for this one */
        double s[6];
        st = score_one(tr, ds.a.paths[i], ds.b.paths[j], s);
        if (st != ENCO_OK)
            break;
        /* Identical images have infinite PSNR: cap at 100 dB for the mean. */
        for (int k = 0; k < 6; k++)
            sum[k] += (k == 0 || k == 3) && s[k] > 100 ? 100 : s[k];
        if (s[2] < res->min_content) {
            res->min_content = s[2];
            snprintf(res->worst, sizeof res->worst, "%s", name);
        }
        res->images++;
    }
    enco_dataset_close(&ds);
    ENCO_TRY(st);
    if (res->images == 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s/testA and %s/testB share no file names: no ground truth to score",
                         root, root);
    double n = (double)res->images;
    res->psnr = sum[0] / n, res->ssim = sum[1] / n, res->content = sum[2] / n;
    res->base_psnr = sum[3] / n, res->base_ssim = sum[4] / n, res->base_content = sum[5] / n;
    return ENCO_OK;
}
