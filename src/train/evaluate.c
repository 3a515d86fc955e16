/* Evaluation on test pairs. */
#include "train/evaluate.h"

#include "data/dataset.h"
#include "data/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *leaf(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* A and B of one pair at their size rounded to a multiple of 4. */
static enco_status load_pair(const enco_config *cfg, const char *pa, const char *pb,
                             enco_image *a4, enco_image *b4)
{
    enco_image a = {0}, b = {0};
    enco_status st = enco_image_load(pa, cfg->model.input_nc, &a);
    if (st == ENCO_OK)
        st = enco_image_load(pb, cfg->model.output_nc, &b);
    if (st == ENCO_OK && (a.w != b.w || a.h != b.h))
        st = ENCO_FAIL(ENCO_ERR_FORMAT, "%s is %dx%d but its pair %s is %dx%d", pa, a.w, a.h, pb,
                       b.w, b.h);
    int w = enco_round_to_4(a.w), h = enco_round_to_4(a.h);
    if (st == ENCO_OK)
        st = w == a.w && h == a.h ? enco_image_crop(&a, 0, 0, w, h, a4)
                                  : enco_image_resize_bicubic(&a, w, h, a4);
    if (st == ENCO_OK)
        st = w == b.w && h == b.h ? enco_image_crop(&b, 0, 0, w, h, b4)
                                  : enco_image_resize_bicubic(&b, w, h, b4);
    enco_image_free(&a);
    enco_image_free(&b);
    return st;
}

static enco_status score(const enco_image *x, const enco_image *b, double s[4])
{
    ENCO_TRY(enco_psnr_u8(x, b, &s[0]));
    if (s[0] > 100)
        s[0] = 100; /* identical images: infinite PSNR, capped for the mean */
    ENCO_TRY(enco_ssim(x, b, &s[1]));
    ENCO_TRY(enco_gradient_correlation(x, b, &s[2]));
    return enco_shape_iou(x, b, &s[3]);
}

static enco_status translate(enco_translator *tr, const enco_image *a4, enco_image *g)
{
    int c = tr->cfg.model.input_nc, oc = tr->cfg.model.output_nc, w = a4->w, h = a4->h;
    float *x = malloc((size_t)c * w * h * sizeof(float));
    float *y = malloc((size_t)oc * w * h * sizeof(float));
    enco_status st = x && y ? ENCO_OK : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    if (st == ENCO_OK) {
        enco_image_to_tensor(a4, x);
        st = enco_translator_run(tr, x, h, w, y);
    }
    if (st == ENCO_OK)
        st = enco_image_from_tensor(g, y, oc, h, w);
    free(x);
    free(y);
    return st;
}

enum { MODEL, IDENTITY, CONSTANT, AFFINE, LUT, HISTMATCH, N_ROWS };

typedef struct progress {
    enco_eval_progress_fn fn;
    void *user;
} progress;

static void report(const progress *pg, const char *what, size_t done, size_t total)
{
    if (pg->fn)
        pg->fn(pg->user, what, done, total);
}

/* Histogram matching fitted on ROOT/trainA and ROOT/trainB (at most
 * ENCO_HISTMATCH_MAX_IMAGES of each, evenly spread). Leaves f unfitted and
 * writes why to res->histmatch_note when it cannot be fitted; an image that
 * fails to load is an error. */
static enco_status fit_histmatch(const enco_config *cfg, const char *root, int btoa,
                                 enco_histmatch *f, enco_eval_result *res, const progress *pg)
{
    const char *const dirs[2] = {btoa ? "trainB" : "trainA", btoa ? "trainA" : "trainB"};
    char path[2][4096];
    for (int d = 0; d < 2; d++) {
        struct stat sb;
        snprintf(path[d], sizeof path[d], "%s/%s", root, dirs[d]);
        if (stat(path[d], &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            snprintf(res->histmatch_note, sizeof res->histmatch_note,
                     "histogram matching n/a: no %s/%s folder (it is fitted on the training images)",
                     root, dirs[d]);
            return ENCO_OK;
        }
    }
    if (cfg->model.input_nc != cfg->model.output_nc) {
        snprintf(res->histmatch_note, sizeof res->histmatch_note,
                 "histogram matching n/a: A has %d channels and B %d (no per-channel map)",
                 cfg->model.input_nc, cfg->model.output_nc);
        return ENCO_OK;
    }
    enco_status st = ENCO_OK;
    for (int d = 0; d < 2 && st == ENCO_OK; d++) {
        enco_file_list list;
        memset(&list, 0, sizeof list);
        if (enco_file_list_read(&list, path[d]) != ENCO_OK) {
            snprintf(res->histmatch_note, sizeof res->histmatch_note, "histogram matching n/a: %s",
                     enco_last_error());
            memset(f, 0, sizeof *f);
            return ENCO_OK;
        }
        size_t n = list.count < ENCO_HISTMATCH_MAX_IMAGES ? list.count : ENCO_HISTMATCH_MAX_IMAGES;
        char what[64];
        snprintf(what, sizeof what, "eval: histogram matching fit on %s", dirs[d]);
        report(pg, what, 0, n);
        for (size_t i = 0; i < n && st == ENCO_OK; i++) {
            enco_image img = {0};
            st = enco_image_load(list.paths[i * list.count / n],
                                 d ? cfg->model.output_nc : cfg->model.input_nc, &img);
            if (st == ENCO_OK)
                st = enco_histmatch_add(f, &img, d);
            enco_image_free(&img);
            if (st == ENCO_OK)
                report(pg, what, i + 1, n);
        }
        enco_file_list_free(&list);
    }
    res->histmatch_a = f->images_a;
    res->histmatch_b = f->images_b;
    return st;
}

static void mean_of(const double sum[4], size_t n, enco_eval_scores *out)
{
    double d = n ? (double)n : NAN;
    *out = (enco_eval_scores){sum[0] / d, sum[1] / d, sum[2] / d, sum[3] / d};
}

enco_status enco_evaluate(enco_translator *tr, const char *root, size_t max_images,
                          enco_eval_result *res)
{
    return enco_evaluate_progress(tr, root, max_images, NULL, NULL, res);
}

enco_status enco_evaluate_progress(enco_translator *tr, const char *root, size_t max_images,
                                   enco_eval_progress_fn progress_fn, void *user,
                                   enco_eval_result *res)
{
    const progress pg = {progress_fn, user};
    char what[320];
    memset(res, 0, sizeof *res);
    res->min_content = INFINITY;
    res->btoa = tr->btoa;
    enco_dataset ds;
    memset(&ds, 0, sizeof ds);
    ENCO_TRY(enco_dataset_open(&ds, root, "test"));
    if (tr->btoa) { /* G_B: testB is the input, testA the truth */
        enco_file_list swap = ds.a;
        ds.a = ds.b;
        ds.b = swap;
    }
    /* The pairs: testA and testB files of the same name (both lists sorted). */
    size_t *pa = malloc((ds.a.count + 1) * sizeof *pa), *pb = malloc((ds.a.count + 1) * sizeof *pb);
    size_t np = 0;
    enco_status st = pa && pb ? ENCO_OK : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    for (size_t i = 0, j = 0; st == ENCO_OK && i < ds.a.count; i++) {
        if (max_images && np >= max_images)
            break;
        const char *name = leaf(ds.a.paths[i]);
        while (j < ds.b.count && strcmp(leaf(ds.b.paths[j]), name) < 0)
            j++;
        if (j < ds.b.count && strcmp(leaf(ds.b.paths[j]), name) == 0)
            pa[np] = i, pb[np] = j, np++;
    }
    if (st == ENCO_OK && np == 0)
        st = ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                       "%s/testA and %s/testB share no file names: no ground truth to score",
                       root, root);
    double sum[N_ROWS][4] = {{0}};
    size_t count[N_ROWS] = {0};
    enco_baselines fit;
    memset(&fit, 0, sizeof fit);
    /* Pass 1: G(A) and identity, and the baselines' fit. */
    for (size_t p = 0; st == ENCO_OK && p < np; p++) {
        enco_image a4 = {0}, b4 = {0}, g = {0};
        double s[4];
        snprintf(what, sizeof what, "eval: G(A) of %s", leaf(ds.a.paths[pa[p]]));
        report(&pg, what, p, np);
        st = load_pair(&tr->cfg, ds.a.paths[pa[p]], ds.b.paths[pb[p]], &a4, &b4);
        if (st == ENCO_OK)
            st = translate(tr, &a4, &g);
        if (st == ENCO_OK)
            st = score(&g, &b4, s);
        if (st == ENCO_OK) {
            for (int k = 0; k < 4; k++)
                sum[MODEL][k] += s[k];
            count[MODEL]++;
            if (s[2] < res->min_content) {
                res->min_content = s[2];
                snprintf(res->worst, sizeof res->worst, "%s", leaf(ds.a.paths[pa[p]]));
            }
        }
        if (st == ENCO_OK && a4.c == b4.c) {
            st = score(&a4, &b4, s);
            for (int k = 0; k < 4 && st == ENCO_OK; k++)
                sum[IDENTITY][k] += s[k];
            count[IDENTITY] += st == ENCO_OK;
        }
        if (st == ENCO_OK)
            st = enco_baselines_add(&fit, &a4, &b4);
        enco_image_free(&a4);
        enco_image_free(&b4);
        enco_image_free(&g);
        if (st == ENCO_OK)
            report(&pg, what, p + 1, np);
    }
    /* Pass 2: the baselines, those fitted on the pairs scored on the pairs
     * they were fitted on, histogram matching (fitted on the training
     * folders) on the same pairs. */
    enco_image cst = {0};
    int have_cst = st == ENCO_OK && fit.same_size;
    if (have_cst)
        st = enco_baselines_constant(&fit, &cst);
    enco_histmatch hm;
    memset(&hm, 0, sizeof hm);
    if (st == ENCO_OK)
        st = fit_histmatch(&tr->cfg, root, tr->btoa, &hm, res, &pg);
    int have_hm = st == ENCO_OK && hm.images_a && hm.images_b;
    if (st == ENCO_OK)
        report(&pg, "eval: baselines", 0, np);
    for (size_t p = 0; st == ENCO_OK && p < np; p++) {
        enco_image a4 = {0}, b4 = {0}, x = {0};
        double s[4];
        st = load_pair(&tr->cfg, ds.a.paths[pa[p]], ds.b.paths[pb[p]], &a4, &b4);
        for (int row = CONSTANT; row <= HISTMATCH && st == ENCO_OK; row++) {
            if (row == CONSTANT && !have_cst)
                continue;
            if (row != CONSTANT && a4.c != b4.c)
                continue;
            if (row == HISTMATCH && !have_hm)
                continue;
            st = row == CONSTANT    ? score(&cst, &b4, s)
                 : row == AFFINE    ? enco_baselines_affine(&fit, &a4, &x)
                 : row == LUT       ? enco_baselines_lut(&fit, &a4, &x)
                                    : enco_histmatch_apply(&hm, &a4, &x);
            if (st == ENCO_OK && row != CONSTANT)
                st = score(&x, &b4, s);
            enco_image_free(&x);
            for (int k = 0; k < 4 && st == ENCO_OK; k++)
                sum[row][k] += s[k];
            count[row] += st == ENCO_OK;
        }
        enco_image_free(&a4);
        enco_image_free(&b4);
        if (st == ENCO_OK)
            report(&pg, "eval: baselines", p + 1, np);
    }
    enco_image_free(&cst);
    enco_baselines_free(&fit);
    free(pa);
    free(pb);
    enco_dataset_close(&ds);
    ENCO_TRY(st);
    res->images = np;
    mean_of(sum[MODEL], count[MODEL], &res->model);
    mean_of(sum[IDENTITY], count[IDENTITY], &res->identity);
    mean_of(sum[CONSTANT], count[CONSTANT], &res->constant);
    mean_of(sum[AFFINE], count[AFFINE], &res->affine);
    mean_of(sum[LUT], count[LUT], &res->lut);
    mean_of(sum[HISTMATCH], count[HISTMATCH], &res->histmatch);
    return ENCO_OK;
}

static void json_num(FILE *f, const char *key, double v, int digits)
{
    if (isfinite(v))
        fprintf(f, ", \"%s\": %.*f", key, digits, v);
    else
        fprintf(f, ", \"%s\": null", key);
}

static void json_scores(FILE *f, const char *prefix, const enco_eval_scores *s)
{
    static const char *const names[4] = {"psnr", "ssim", "content", "iou"};
    const double v[4] = {s->psnr, s->ssim, s->content, s->iou};
    char key[64];
    for (int k = 0; k < 4; k++) {
        snprintf(key, sizeof key, "%s%s", prefix, names[k]);
        json_num(f, key, v[k], k == 0 ? 4 : 5);
    }
}

enco_status enco_eval_write_json(const enco_eval_result *r, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "%s: out of memory", path);
    fprintf(f, "{\"images\": %zu", r->images);
    json_scores(f, "", &r->model);
    json_scores(f, "identity_", &r->identity);
    json_scores(f, "constant_", &r->constant);
    json_scores(f, "remap_", &r->affine);
    json_scores(f, "lut_", &r->lut);
    json_scores(f, "histmatch_", &r->histmatch);
    fprintf(f, ", \"histmatch_trainA\": %zu, \"histmatch_trainB\": %zu", r->histmatch_a,
            r->histmatch_b);
    json_num(f, "worst_content", r->min_content, 5);
    fputs(", \"worst\": \"", f);
    for (const char *c = r->worst; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if ((unsigned char)*c < 0x20)
            fprintf(f, "\\u%04x", (unsigned char)*c);
        else
            fputc(*c, f);
    }
    fprintf(f, "\", \"direction\": \"%s\"}\n", r->btoa ? "BtoA" : "AtoB");
    int bad = ferror(f);
    bad = fclose(f) != 0 || bad;
    enco_status st = bad ? ENCO_FAIL(ENCO_ERR_NO_MEMORY, "%s: out of memory", path)
                         : enco_write_text_atomic(path, text);
    free(text);
    return st;
}
