/* The training loop and the run folder it keeps. */
#include "train/run.h"

#include "data/dataset.h"
#include "data/image.h"
#include "models/family.h"
#include "train/runlock.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define F4 sizeof(float)

/* The series logged: the family's losses flagged ENCO_LOSS_LOGGED, in slot
 * order, named loss_<name> as the reference logs them. */
static const char *const series_colour[ENCO_MAX_LOGGED] = {
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#111111", "#ff7f0e",
    "#8c564b", "#17becf", "#e377c2", "#7f7f7f", "#bcbd22", "#393b79"};

typedef struct history {
    int64_t *iter;
    float *v[ENCO_MAX_LOGGED];
    size_t n, cap;
} history;

/* One evaluation on the test pairs. */
typedef struct eval_point {
    int64_t iter;
    enco_eval_scores model, identity;
} eval_point;

typedef enum run_state { RUNNING, DONE, STOPPED, FAILED } run_state;

/* The page is rewritten at every sample, evaluation, epoch end and state
 * change, and after a loss log entry when this long has passed since the
 * last write. */
#define PAGE_MIN_INTERVAL_S 2.0

typedef struct run {
    enco_trainer *t;
    int nseries;
    int series_slot[ENCO_MAX_LOGGED];
    char series_name[ENCO_MAX_LOGGED][48]; /* "loss_D" */
    enco_batch_source *src;
    const enco_run_options *o;
    enco_run_state rs;
    history h;
    char path[1200];
    float *a, *b, *host_out;
    int64_t epoch_length, total_planned;
    double t0;
    int64_t iter0;
    double extra_s;          /* seconds spent on samples, scores, pages, checkpoints */
    double last_page;        /* when the page was last written */
    int64_t last_sample_iter, last_eval_iter;
    /* The scores on the test pairs (where data.root has ground truth). */
    int has_truth;
    eval_point *ev;
    size_t nev, capev;
    /* The fixed image translated at every sample (fix_ok = 0: none found). */
    int fix_ok;
    enco_image fix_a, fix_b;
    char fix_a_name[256], fix_b_name[256];
    char *config_text;       /* the effective configuration */
    run_state state;
    char message[1024];      /* the failure */
} run;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *file_in(run *r, const char *leaf)
{
    snprintf(r->path, sizeof r->path, "%s/%s", r->o->dir, leaf);
    return r->path;
}

static enco_status make_dir(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return ENCO_FAIL(ENCO_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
            *p = '/';
        }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return ENCO_FAIL(ENCO_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    return ENCO_OK;
}

static enco_status history_add(const run *r, history *h, int64_t iter, const float *losses)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 256;
        int64_t *it = realloc(h->iter, cap * sizeof *it);
        if (!it)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        h->iter = it;
        for (int s = 0; s < r->nseries; s++) {
            float *v = realloc(h->v[s], cap * sizeof *v);
            if (!v)
                return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
            h->v[s] = v;
        }
        h->cap = cap;
    }
    h->iter[h->n] = iter;
    for (int s = 0; s < r->nseries; s++)
        h->v[s][h->n] = losses[r->series_slot[s]];
    h->n++;
    return ENCO_OK;
}

static void history_free(history *h)
{
    free(h->iter);
    for (int s = 0; s < ENCO_MAX_LOGGED; s++)
        free(h->v[s]);
}

/* Re-reads losses.jsonl up to the resumed iteration (later lines belonged to
 * a run that was not checkpointed) and rewrites it. */
static enco_status history_reload(run *r)
{
    FILE *f = fopen(file_in(r, "losses.jsonl"), "r");
    if (!f)
        return ENCO_OK;
    size_t cap = 1 << 16, len = 0;
    char *kept = malloc(cap), line[1024];
    if (!kept) {
        fclose(f);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    }
    kept[0] = '\0';
    enco_status st = ENCO_OK;
    while (st == ENCO_OK && fgets(line, sizeof line, f)) {
        long long it = 0;
        float l[ENCO_LOSS_SLOTS] = {0};
        int epoch = 0, found = 0;
        double lr = 0;
        if (sscanf(line, "{\"iter\": %lld, \"epoch\": %d, \"lr_factor\": %lf,", &it, &epoch,
                   &lr) != 3 ||
            it > r->rs.total_iter)
            continue;
        for (int s = 0; s < r->nseries; s++) {
            char key[64];
            snprintf(key, sizeof key, "\"%s\": ", r->series_name[s]);
            const char *at = strstr(line, key);
            char *end = NULL;
            if (at) {
                l[r->series_slot[s]] = strtof(at + strlen(key), &end);
                found += end != at + strlen(key);
            }
        }
        if (found != r->nseries) /* another family's run, or a damaged line */
            continue;
        st = history_add(r, &r->h, it, l);
        size_t ll = strlen(line);
        if (len + ll + 1 > cap) {
            cap = 2 * (len + ll + 1);
            char *p = realloc(kept, cap);
            if (!p) {
                st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
                break;
            }
            kept = p;
        }
        memcpy(kept + len, line, ll + 1);
        len += ll;
    }
    fclose(f);
    if (st == ENCO_OK)
        st = enco_write_text_atomic(file_in(r, "losses.jsonl"), kept);
    free(kept);
    return st;
}

static enco_status log_losses(run *r, const float *l)
{
    if (r->o->follower)
        return ENCO_OK;
    ENCO_TRY(history_add(r, &r->h, r->rs.total_iter, l));
    FILE *f = fopen(file_in(r, "losses.jsonl"), "a");
    if (!f)
        return ENCO_FAIL(ENCO_ERR_IO, "cannot append to %s: %s", r->path, strerror(errno));
    fprintf(f, "{\"iter\": %lld, \"epoch\": %lld, \"lr_factor\": %.9g",
            (long long)r->rs.total_iter, (long long)r->rs.epoch, r->t->lr_scale);
    for (int s = 0; s < r->nseries; s++)
        fprintf(f, ", \"%s\": %.9g", r->series_name[s], l[r->series_slot[s]]);
    fprintf(f, ", \"seconds\": %.3f}\n", now_s() - r->t0);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return ENCO_FAIL(ENCO_ERR_IO, "writing %s failed", r->path);
    return ENCO_OK;
}

/* Downloads the losses and refuses NaN / Inf with a diagnosis. */
static enco_status read_losses(run *r, float *l)
{
    char lr_key[32];
    snprintf(lr_key, sizeof lr_key, "%s.lr", r->t->family->name);
    ENCO_TRY(enco_trainer_losses_mean(r->t, l)); /* the same on every process */
    for (int s = 0; s < r->nseries; s++)
        if (!isfinite(l[r->series_slot[s]]))
            return ENCO_FAIL(ENCO_ERR_NUMERIC,
                             "%s became %g at iteration %lld (epoch %lld): training diverged. "
                             "The last good checkpoint is kept in %s/latest.safetensors; try "
                             "lower learning rates (%s)",
                             r->series_name[s], (double)l[r->series_slot[s]],
                             (long long)r->rs.total_iter, (long long)r->rs.epoch, r->o->dir,
                             strcmp(r->t->family->name, "enco") == 0
                                 ? "train.lr_G, train.lr_D, train.lr_F"
                             : strcmp(r->t->family->name, "dclgan") == 0 ? "dclgan.lr, dclgan.lr_F"
                                                                         : lr_key);
    return ENCO_OK;
}

static void report(run *r, const float *l, const char *event, const char *path)
{
    if (!r->o->on_progress || r->o->follower)
        return;
    enco_progress p = {0};
    p.epoch = r->rs.epoch;
    p.epoch_iter = r->rs.epoch_iter;
    p.epoch_length = r->epoch_length;
    p.total_iter = r->rs.total_iter;
    p.total_planned = r->total_planned;
    double el = now_s() - r->t0;
    int64_t done = r->rs.total_iter - r->iter0;
    p.it_per_s = el > 0 ? (double)done / el : 0;
    p.eta_s = p.it_per_s > 0 ? (double)(r->total_planned - r->rs.total_iter) / p.it_per_s : 0;
    p.lr_factor = r->t->lr_scale;
    p.nlosses = r->nseries;
    for (int s = 0; s < r->nseries; s++) {
        p.loss_names[s] = r->series_name[s] + 5; /* without "loss_" */
        p.losses[s] = l ? l[r->series_slot[s]] : 0.0f;
    }
    p.event = event;
    p.path = path;
    r->o->on_progress(&p, r->o->user);
}

static enco_status save(run *r)
{
    float l[ENCO_LOSS_SLOTS];
    double t0 = now_s();
    if (r->rs.total_iter > 0)
        ENCO_TRY(read_losses(r, l)); /* never checkpoint a diverged model */
    if (r->o->follower)
        return ENCO_OK;
    ENCO_TRY(enco_checkpoint_save(r->t, &r->rs, file_in(r, "latest.safetensors")));
    report(r, NULL, "checkpoint", r->path);
    r->extra_s += now_s() - t0;
    return ENCO_OK;
}

/* ---- the generator as it is now, for samples and scores ----------------- */

/* A translator holding a copy of the trainer's generator (the run's
 * configuration; weights copied from the device now). */
static enco_status snapshot_translator_dir(run *r, int btoa, enco_translator **out)
{
    enco_trainer *t = r->t;
    const enco_family *fam = t->family;
    const int net = btoa ? fam->generator_b : fam->generator;
    *out = NULL;
    enco_translator *tr = calloc(1, sizeof *tr);
    if (!tr)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    tr->ctx = t->ctx;
    tr->cfg = t->cfg;
    tr->btoa = btoa;
    snprintf(tr->prefix, sizeof tr->prefix, "net%s.", fam->nets[net]);
    tr->weights = enco_st_new();
    enco_status st = tr->weights ? ENCO_OK : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    if (st == ENCO_OK)
        st = enco_params_save(t->ctx, &t->nets[net], tr->weights, "");
    if (st != ENCO_OK) {
        enco_translator_close(tr);
        return st;
    }
    *out = tr;
    return ENCO_OK;
}

static enco_status snapshot_translator(run *r, enco_translator **out)
{
    return snapshot_translator_dir(r, 0, out);
}

static enco_status translate_image(enco_translator *tr, const enco_image *in, enco_image *out)
{
    int c = tr->cfg.model.input_nc, oc = tr->cfg.model.output_nc, w = in->w, h = in->h;
    float *x = malloc((size_t)c * w * h * F4), *y = malloc((size_t)oc * w * h * F4);
    enco_status st = x && y ? ENCO_OK : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    if (st == ENCO_OK) {
        enco_image_to_tensor(in, x);
        st = enco_translator_run(tr, x, h, w, y);
    }
    if (st == ENCO_OK)
        st = enco_image_from_tensor(out, y, oc, h, w);
    free(x);
    free(y);
    return st;
}

static const char *leaf_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Loads one image of the fixed sample: at most the training size (kept in
 * proportion), each side a multiple of 4 as translate prepares it. */
static enco_status load_fixed(run *r, const char *path, int channels, enco_image *out)
{
    enco_image img = {0}, small = {0};
    ENCO_TRY(enco_image_load(path, channels, &img));
    enco_status st = ENCO_OK;
    double f = fmin((double)r->t->w / img.w, (double)r->t->h / img.h);
    if (f < 1) {
        int w = (int)(img.w * f + 0.5), h = (int)(img.h * f + 0.5);
        st = enco_image_resize_bicubic(&img, w < 1 ? 1 : w, h < 1 ? 1 : h, &small);
        enco_image_free(&img);
        img = small;
    }
    if (st == ENCO_OK)
        st = enco_translate_prepare(&img, out);
    enco_image_free(&img);
    return st;
}

/* The fixed sample: the first testA image and its testB pair (else the
 * first testB image), or the first trainA and trainB images. None when
 * data.root has neither (a run fed by a test's generator). */
static enco_status choose_fixed(run *r)
{
    const enco_config *cfg = &r->t->cfg;
    if (!cfg->data.root[0])
        return ENCO_OK;
    static const char *const phases[2] = {"test", "train"};
    for (int k = 0; k < 2; k++) {
        enco_dataset ds;
        memset(&ds, 0, sizeof ds);
        if (enco_dataset_open(&ds, cfg->data.root, phases[k]) != ENCO_OK) {
            enco_dataset_close(&ds);
            continue;
        }
        if (ds.a.count == 0 || ds.b.count == 0) {
            enco_dataset_close(&ds);
            continue;
        }
        const char *pa = ds.a.paths[0], *pb = ds.b.paths[0];
        for (size_t j = 0; j < ds.b.count; j++)
            if (strcmp(leaf_of(ds.b.paths[j]), leaf_of(pa)) == 0)
                pb = ds.b.paths[j];
        snprintf(r->fix_a_name, sizeof r->fix_a_name, "%sA/%s", phases[k], leaf_of(pa));
        snprintf(r->fix_b_name, sizeof r->fix_b_name, "%sB/%s", phases[k], leaf_of(pb));
        /* An image that does not load is no reason to stop training: the
         * next split, or no fixed sample. */
        enco_status st = load_fixed(r, pa, cfg->model.input_nc, &r->fix_a);
        if (st == ENCO_OK)
            st = load_fixed(r, pb, cfg->model.output_nc, &r->fix_b);
        enco_dataset_close(&ds);
        if (st != ENCO_OK) {
            enco_image_free(&r->fix_a);
            enco_image_free(&r->fix_b);
            continue;
        }
        char path[1200];
        snprintf(path, sizeof path, "%s/samples/real_A.png", r->o->dir);
        ENCO_TRY(enco_image_save_png(path, &r->fix_a));
        snprintf(path, sizeof path, "%s/samples/real_B.png", r->o->dir);
        ENCO_TRY(enco_image_save_png(path, &r->fix_b));
        r->fix_ok = 1;
        return ENCO_OK;
    }
    return ENCO_OK;
}

/* Whether ROOT/testA and ROOT/testB share a file name (ground truth). */
static int has_ground_truth(const char *root)
{
    if (!root[0])
        return 0;
    enco_dataset ds;
    memset(&ds, 0, sizeof ds);
    int found = 0;
    if (enco_dataset_open(&ds, root, "test") == ENCO_OK)
        for (size_t i = 0, j = 0; i < ds.a.count && !found; i++) {
            const char *name = leaf_of(ds.a.paths[i]);
            while (j < ds.b.count && strcmp(leaf_of(ds.b.paths[j]), name) < 0)
                j++;
            found = j < ds.b.count && strcmp(leaf_of(ds.b.paths[j]), name) == 0;
        }
    enco_dataset_close(&ds);
    return found;
}

/* The visuals of the fixed pair of a two-generator family: fake_B = G_A(real_A),
 * rec_A = G_B(fake_B), fake_A = G_B(real_B), rec_B = G_A(fake_A). */
static const char *const two_way_visual[4] = {"fake_B", "rec_A", "fake_A", "rec_B"};

static enco_status sample_two_way(run *r)
{
    enco_translator *tr[2] = {NULL, NULL};
    enco_image img[4] = {{0}};
    enco_status st = snapshot_translator_dir(r, 0, &tr[0]);
    if (st == ENCO_OK)
        st = snapshot_translator_dir(r, 1, &tr[1]);
    if (st == ENCO_OK)
        st = translate_image(tr[0], &r->fix_a, &img[0]);
    if (st == ENCO_OK)
        st = translate_image(tr[1], &img[0], &img[1]);
    if (st == ENCO_OK)
        st = translate_image(tr[1], &r->fix_b, &img[2]);
    if (st == ENCO_OK)
        st = translate_image(tr[0], &img[2], &img[3]);
    for (int i = 0; i < 4 && st == ENCO_OK; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/samples/iter_%08lld_%s.png", r->o->dir,
                 (long long)r->rs.total_iter, two_way_visual[i]);
        st = enco_image_save_png(path, &img[i]);
    }
    for (int i = 0; i < 4; i++)
        enco_image_free(&img[i]);
    enco_translator_close(tr[0]);
    enco_translator_close(tr[1]);
    return st;
}

/* The fixed image through G (fake_B) and, while the identity term is on,
 * real_B through G (idt_B); both directions for two-generator families. */
static enco_status sample_fixed(run *r)
{
    if (!r->fix_ok)
        return ENCO_OK;
    if (r->t->family->two_way)
        return sample_two_way(r);
    enco_translator *tr = NULL;
    ENCO_TRY(snapshot_translator(r, &tr));
    enco_image out = {0};
    char path[1200];
    enco_status st = translate_image(tr, &r->fix_a, &out);
    snprintf(path, sizeof path, "%s/samples/iter_%08lld_fake_B.png", r->o->dir,
             (long long)r->rs.total_iter);
    if (st == ENCO_OK)
        st = enco_image_save_png(path, &out);
    enco_image_free(&out);
    if (st == ENCO_OK && r->t->has_idt) { /* EnCo: while idt_on; CUT: cut.nce_idt */
        st = translate_image(tr, &r->fix_b, &out);
        snprintf(path, sizeof path, "%s/samples/iter_%08lld_idt_B.png", r->o->dir,
                 (long long)r->rs.total_iter);
        if (st == ENCO_OK)
            st = enco_image_save_png(path, &out);
        enco_image_free(&out);
    }
    enco_translator_close(tr);
    return st;
}

/* ---- scores on the test pairs ------------------------------------------- */

static enco_status eval_add(run *r, const eval_point *e)
{
    if (r->nev == r->capev) {
        size_t cap = r->capev ? 2 * r->capev : 64;
        eval_point *p = realloc(r->ev, cap * sizeof *p);
        if (!p)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        r->ev = p, r->capev = cap;
    }
    r->ev[r->nev++] = *e;
    return ENCO_OK;
}

static const char *const score_key[4] = {"psnr", "ssim", "content", "iou"};

static double *score_at(enco_eval_scores *s, int k)
{
    return k == 0 ? &s->psnr : k == 1 ? &s->ssim : k == 2 ? &s->content : &s->iou;
}

static void eval_line(FILE *f, const eval_point *e)
{
    eval_point c = *e;
    fprintf(f, "{\"iter\": %lld", (long long)c.iter);
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < 4; k++) {
            double v = *score_at(w ? &c.identity : &c.model, k);
            fprintf(f, ", \"%s%s\": ", w ? "identity_" : "", score_key[k]);
            if (isfinite(v))
                fprintf(f, "%.6g", v);
            else
                fputs("null", f);
        }
    fputs("}\n", f);
}

/* Re-reads evals.jsonl up to the resumed iteration and rewrites it. */
static enco_status evals_reload(run *r)
{
    FILE *f = fopen(file_in(r, "evals.jsonl"), "r");
    if (!f)
        return ENCO_OK;
    char *text = NULL;
    size_t len = 0;
    FILE *kept = open_memstream(&text, &len);
    if (!kept) {
        fclose(f);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    }
    char line[1024];
    enco_status st = ENCO_OK;
    while (st == ENCO_OK && fgets(line, sizeof line, f)) {
        long long it = 0;
        if (sscanf(line, "{\"iter\": %lld", &it) != 1 || it > r->rs.total_iter)
            continue;
        eval_point e = {.iter = it};
        int found = 0;
        for (int w = 0; w < 2; w++)
            for (int k = 0; k < 4; k++) {
                char key[48];
                snprintf(key, sizeof key, "\"%s%s\": ", w ? "identity_" : "", score_key[k]);
                const char *at = strstr(line, key);
                double *v = score_at(w ? &e.identity : &e.model, k);
                *v = NAN;
                if (at) {
                    char *end = NULL;
                    double x = strtod(at + strlen(key), &end);
                    if (end != at + strlen(key))
                        *v = x;
                    found++;
                }
            }
        if (found != 8)
            continue;
        st = eval_add(r, &e);
        eval_line(kept, &e);
    }
    fclose(f);
    int bad = ferror(kept);
    bad = fclose(kept) != 0 || bad;
    if (st == ENCO_OK && bad)
        st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    if (st == ENCO_OK) {
        st = enco_write_text_atomic(file_in(r, "evals.jsonl"), text);
        if (r->nev)
            r->last_eval_iter = r->ev[r->nev - 1].iter;
    }
    free(text);
    return st;
}

/* Scores the generator as it is now on the test pairs; appends to
 * evals.jsonl. res receives the whole result. */
static enco_status evaluate_now(run *r, enco_eval_result *res)
{
    double t0 = now_s();
    enco_translator *tr = NULL;
    ENCO_TRY(snapshot_translator(r, &tr));
    enco_status st = enco_evaluate(tr, r->t->cfg.data.root, 0, res);
    enco_translator_close(tr);
    ENCO_TRY(st);
    eval_point e = {.iter = r->rs.total_iter, .model = res->model, .identity = res->identity};
    ENCO_TRY(eval_add(r, &e));
    r->last_eval_iter = e.iter;
    FILE *f = fopen(file_in(r, "evals.jsonl"), "a");
    if (!f)
        return ENCO_FAIL(ENCO_ERR_IO, "cannot append to %s: %s", r->path, strerror(errno));
    eval_line(f, &e);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return ENCO_FAIL(ENCO_ERR_IO, "writing %s failed", r->path);
    report(r, NULL, "eval", r->path);
    r->extra_s += now_s() - t0;
    return ENCO_OK;
}

/* input | translation | identity (real_B when the identity term is off). */
static enco_status sample_batch(run *r)
{
    enco_trainer *t = r->t;
    int n = t->n, c = t->cfg.model.output_nc;
    size_t img = (size_t)c * t->h * t->w;
    ENCO_TRY(enco_download(t->ctx, t->fake, t->fake_off * F4, (t->has_idt ? 2 : 1) * n * img * F4,
                           r->host_out));
    enco_image *tiles = calloc((size_t)3 * n, sizeof *tiles);
    if (!tiles)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    enco_status st = ENCO_OK;
    for (int i = 0; i < n && st == ENCO_OK; i++) {
        const float *third = t->has_idt ? r->host_out + (size_t)(n + i) * img : r->b + i * img;
        st = enco_image_from_tensor(&tiles[3 * i], r->a + i * img, c, t->h, t->w);
        if (st == ENCO_OK)
            st = enco_image_from_tensor(&tiles[3 * i + 1], r->host_out + i * img, c, t->h, t->w);
        if (st == ENCO_OK)
            st = enco_image_from_tensor(&tiles[3 * i + 2], third, c, t->h, t->w);
    }
    enco_image grid = {0};
    if (st == ENCO_OK)
        st = enco_image_grid(&grid, tiles, 3 * n, 3, 2, 255);
    char leaf[64];
    snprintf(leaf, sizeof leaf, "samples/iter_%08lld.png", (long long)r->rs.total_iter);
    if (st == ENCO_OK)
        st = enco_image_save_png(file_in(r, leaf), &grid);
    if (st == ENCO_OK)
        st = enco_image_save_png(file_in(r, "samples/latest.png"), &grid);
    for (int i = 0; i < 3 * n; i++)
        enco_image_free(&tiles[i]);
    free(tiles);
    enco_image_free(&grid);
    return st;
}

/* The samples of this iteration: the fixed image's visuals first, then the
 * batch grid (whose file marks a saved sample iteration on the page). */
static enco_status sample(run *r)
{
    if (r->last_sample_iter == r->rs.total_iter || r->o->follower)
        return ENCO_OK;
    double t0 = now_s();
    ENCO_TRY(sample_fixed(r));
    ENCO_TRY(sample_batch(r));
    r->last_sample_iter = r->rs.total_iter;
    char leaf[64];
    snprintf(leaf, sizeof leaf, "samples/iter_%08lld.png", (long long)r->rs.total_iter);
    report(r, NULL, "sample", file_in(r, leaf));
    r->extra_s += now_s() - t0;
    return ENCO_OK;
}

/* ---- the run page -------------------------------------------------------- */

static void html_text(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
}

/* A chart's series: points (x[i], y[i]); non-finite y (and y <= 0 on a log
 * axis) break the line. */
enum { LINE_SMOOTH = 1, LINE_DASHED = 2, LINE_MARKERS = 4 };
typedef struct line {
    const char *name, *colour;
    const double *x, *y;
    size_t n;
    int style;
} line;

typedef struct axis {
    double lo, hi;
    int log;
    double ticks[32];
    int nticks;
} axis;

/* Plot area of every chart (SVG user units). */
#define CH_W 880
#define CH_H 300
#define PL_X0 70.0
#define PL_X1 690.0
#define PL_Y0 14.0
#define PL_Y1 256.0
#define MAX_DRAWN 600 /* buckets a long series is drawn with */

static double nice_step(double range, int want)
{
    double raw = range / want, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/* Range and ticks for values in [lo, hi] (finite); log: lo > 0. */
static void axis_fit(axis *a, double lo, double hi, int log_scale, int want)
{
    a->log = log_scale;
    a->nticks = 0;
    if (log_scale) {
        double d0 = floor(log10(lo)), d1 = ceil(log10(hi));
        if (d1 <= d0)
            d1 = d0 + 1;
        a->lo = pow(10, d0), a->hi = pow(10, d1);
        int sub = d1 - d0 <= 2;
        for (double d = d0; d <= d1 && a->nticks < 30; d++) {
            a->ticks[a->nticks++] = pow(10, d);
            if (sub && d < d1) {
                a->ticks[a->nticks++] = 2 * pow(10, d);
                a->ticks[a->nticks++] = 5 * pow(10, d);
            }
        }
        return;
    }
    if (!(hi > lo)) {
        double pad = fabs(lo) > 0 ? 0.1 * fabs(lo) : 1;
        lo -= pad, hi += pad;
    }
    double step = nice_step(hi - lo, want);
    a->lo = floor(lo / step) * step;
    a->hi = ceil(hi / step) * step;
    for (int i = 0; a->nticks < 30; i++) {
        double v = a->lo + i * step;
        if (v > a->hi + 1e-9 * step)
            break;
        a->ticks[a->nticks++] = fabs(v) < 1e-9 * step ? 0 : v;
    }
}

static double axis_pos(const axis *a, double v, double p0, double p1)
{
    double t = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo))
                      : (v - a->lo) / (a->hi - a->lo);
    return p0 + t * (p1 - p0);
}

static int drawable(const axis *ya, double v) { return isfinite(v) && (!ya->log || v > 0); }

/* The smoothing of a series of n points: a debiased exponential moving
 * average whose weight grows with the length of the series. */
static double ema_weight(size_t n) { return n < 3 ? 0 : fmin(0.95, fmax(0.5, 1 - 10.0 / n)); }

/* A line as SVG polylines, a new one after each gap. */
typedef struct pen {
    FILE *f;
    const char *attrs;
    int down; /* a polyline is open */
} pen;

static void pen_to(pen *p, double x, double y)
{
    if (!p->down)
        fprintf(p->f, "<polyline fill='none' %s points='", p->attrs);
    fprintf(p->f, "%s%.1f,%.1f", p->down ? " " : "", x, y);
    p->down = 1;
}

static void pen_up(pen *p)
{
    if (p->down)
        fputs("'/>\n", p->f);
    p->down = 0;
}

/* Draws y over x: every point when few, else per bucket of points the
 * bucket's minimum and maximum (envelope) or its last value. */
static void draw_path(FILE *f, const axis *xa, const axis *ya, const double *x, const double *y,
                      size_t n, int envelope, const char *attrs)
{
    size_t bucket = n > MAX_DRAWN ? (n + MAX_DRAWN - 1) / MAX_DRAWN : 1;
    pen p = {f, attrs, 0};
    for (size_t i = 0; i < n; i += bucket) {
        size_t e = i + bucket < n ? i + bucket : n;
        double px = axis_pos(xa, x[e - 1], PL_X0, PL_X1);
        if (bucket == 1 || !envelope) {
            if (drawable(ya, y[e - 1]))
                pen_to(&p, px, axis_pos(ya, y[e - 1], PL_Y1, PL_Y0));
            else
                pen_up(&p);
            continue;
        }
        double lo = INFINITY, hi = -INFINITY;
        for (size_t k = i; k < e; k++)
            if (drawable(ya, y[k]))
                lo = fmin(lo, y[k]), hi = fmax(hi, y[k]);
        if (lo > hi) {
            pen_up(&p);
            continue;
        }
        pen_to(&p, px, axis_pos(ya, lo, PL_Y1, PL_Y0));
        pen_to(&p, px, axis_pos(ya, hi, PL_Y1, PL_Y0));
    }
    pen_up(&p);
}

static void fmt_tick(char *buf, size_t size, double v)
{
    if (fabs(v) >= 1e6 || (fabs(v) < 1e-3 && v != 0))
        snprintf(buf, size, "%.0e", v);
    else
        snprintf(buf, size, "%.4g", v);
}

/* One chart: y of every line over the iterations 0..xmax, with tick labels
 * on both axes and a legend. Returns 0 (and draws nothing) when no value
 * can be drawn. */
static int chart(FILE *f, const char *id, const char *ylabel, double xmax, int log_scale,
                 const line *lines, int nlines)
{
    double lo = INFINITY, hi = -INFINITY;
    axis ya = {.log = log_scale};
    for (int s = 0; s < nlines; s++)
        for (size_t i = 0; i < lines[s].n; i++)
            if (drawable(&ya, lines[s].y[i]))
                lo = fmin(lo, lines[s].y[i]), hi = fmax(hi, lines[s].y[i]);
    if (lo > hi)
        return 0;
    axis xa;
    axis_fit(&xa, 0, xmax > 0 ? xmax : 1, 0, 8);
    axis_fit(&ya, lo, hi, log_scale, 6);
    fprintf(f,
            "<svg id='%s' class='chart' width='%d' height='%d' viewBox='0 0 %d %d' role='img'>\n"
            "<rect x='%.0f' y='%.0f' width='%.0f' height='%.0f' fill='#fff' stroke='#999'/>\n",
            id, CH_W, CH_H, CH_W, CH_H, PL_X0, PL_Y0, PL_X1 - PL_X0, PL_Y1 - PL_Y0);
    char num[32];
    for (int i = 0; i < xa.nticks; i++) {
        double px = axis_pos(&xa, xa.ticks[i], PL_X0, PL_X1);
        fmt_tick(num, sizeof num, xa.ticks[i]);
        fprintf(f,
                "<line x1='%.1f' x2='%.1f' y1='%.0f' y2='%.0f' stroke='#e4e4e4'/>"
                "<text class='tick x' x='%.1f' y='%.0f' text-anchor='middle'>%s</text>\n",
                px, px, PL_Y0, PL_Y1 + 4, px, PL_Y1 + 17, num);
    }
    for (int i = 0; i < ya.nticks; i++) {
        double py = axis_pos(&ya, ya.ticks[i], PL_Y1, PL_Y0);
        fmt_tick(num, sizeof num, ya.ticks[i]);
        fprintf(f,
                "<line x1='%.0f' x2='%.0f' y1='%.1f' y2='%.1f' stroke='#e4e4e4'/>"
                "<text class='tick y' x='%.0f' y='%.1f' text-anchor='end'>%s</text>\n",
                PL_X0 - 4, PL_X1, py, py, PL_X0 - 7, py + 4, num);
    }
    fprintf(f,
            "<text x='%.0f' y='%d' text-anchor='middle'>iteration</text>\n"
            "<text x='14' y='%.0f' text-anchor='middle' transform='rotate(-90 14 %.0f)'>%s%s"
            "</text>\n",
            (PL_X0 + PL_X1) / 2, CH_H - 8, (PL_Y0 + PL_Y1) / 2, (PL_Y0 + PL_Y1) / 2, ylabel,
            log_scale ? " (log)" : "");
    for (int s = 0; s < nlines; s++) {
        const line *l = &lines[s];
        char attrs[160];
        if (l->style & LINE_SMOOTH) {
            snprintf(attrs, sizeof attrs, "stroke='%s' stroke-width='1' stroke-opacity='0.25'",
                     l->colour);
            draw_path(f, &xa, &ya, l->x, l->y, l->n, 1, attrs);
            double *sm = malloc((l->n ? l->n : 1) * sizeof *sm), w = ema_weight(l->n), acc = 0,
                   wk = 1;
            if (sm) {
                for (size_t i = 0; i < l->n; i++) {
                    if (isfinite(l->y[i])) {
                        acc = w * acc + (1 - w) * l->y[i];
                        wk *= w;
                        sm[i] = acc / (1 - wk);
                    } else {
                        sm[i] = l->y[i];
                    }
                }
                snprintf(attrs, sizeof attrs, "stroke='%s' stroke-width='2'", l->colour);
                draw_path(f, &xa, &ya, l->x, sm, l->n, 0, attrs);
                free(sm);
            }
        } else {
            snprintf(attrs, sizeof attrs, "stroke='%s' stroke-width='2'%s", l->colour,
                     l->style & LINE_DASHED ? " stroke-dasharray='6 4'" : "");
            draw_path(f, &xa, &ya, l->x, l->y, l->n, 1, attrs);
        }
        if (l->style & LINE_MARKERS)
            for (size_t i = 0; i < l->n && l->n <= MAX_DRAWN; i++)
                if (drawable(&ya, l->y[i]))
                    fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n",
                            axis_pos(&xa, l->x[i], PL_X0, PL_X1),
                            axis_pos(&ya, l->y[i], PL_Y1, PL_Y0), l->colour);
        /* legend */
        double ly = PL_Y0 + 12 + 20 * s;
        fprintf(f,
                "<line x1='%.0f' x2='%.0f' y1='%.0f' y2='%.0f' stroke='%s' stroke-width='3'%s/>"
                "<text class='legend' x='%.0f' y='%.0f'>",
                PL_X1 + 12, PL_X1 + 36, ly - 4, ly - 4, l->colour,
                l->style & LINE_DASHED ? " stroke-dasharray='6 4'" : "", PL_X1 + 42, ly);
        html_text(f, l->name);
        if (l->n && isfinite(l->y[l->n - 1]))
            fprintf(f, " %.4g", l->y[l->n - 1]);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
    return 1;
}

static const char *state_name(run_state s)
{
    return s == RUNNING ? "running" : s == DONE ? "done" : s == STOPPED ? "stopped" : "failed";
}

static void fmt_duration(char *buf, size_t size, double s)
{
    long t = (long)(s + 0.5);
    snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The saved sample iterations (samples/iter_NNNNNNNN.png up to the current
 * iteration), newest first; malloc'd, *n of them. */
static int64_t *sample_iterations(run *r, size_t *n)
{
    *n = 0;
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/samples", r->o->dir);
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    size_t cap = 64;
    int64_t *it = malloc(cap * sizeof *it);
    struct dirent *e;
    while (it && (e = readdir(d))) {
        long long v;
        int end = 0;
        if (strlen(e->d_name) != 17 || sscanf(e->d_name, "iter_%8lld.png%n", &v, &end) != 1 ||
            end != 17 || v > r->rs.total_iter)
            continue;
        if (*n == cap) {
            int64_t *p = realloc(it, 2 * cap * sizeof *p);
            if (!p)
                break;
            it = p, cap *= 2;
        }
        it[(*n)++] = v;
    }
    closedir(d);
    if (it)
        qsort(it, *n, sizeof *it, cmp_desc);
    return it;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void page_losses(run *r, FILE *f, double xmax)
{
    const history *h = &r->h;
    fputs("<h2>Losses</h2>\n", f);
    if (h->n == 0) {
        fprintf(f, "<p>No loss logged yet (one entry every %d iterations: run.print_every).</p>\n",
                r->t->cfg.run.print_every);
        return;
    }
    double *x = malloc(h->n * sizeof *x), *y = malloc((size_t)r->nseries * h->n * sizeof *y);
    line lines[ENCO_MAX_LOGGED];
    if (!x || !y) {
        free(x), free(y);
        fputs("<p>(out of memory drawing the losses)</p>\n", f);
        return;
    }
    for (size_t i = 0; i < h->n; i++)
        x[i] = (double)h->iter[i];
    for (int s = 0; s < r->nseries; s++) {
        for (size_t i = 0; i < h->n; i++)
            y[(size_t)s * h->n + i] = h->v[s][i];
        lines[s] = (line){.name = r->series_name[s], .colour = series_colour[s], .x = x,
                          .y = y + (size_t)s * h->n, .n = h->n, .style = LINE_SMOOTH};
    }
    fprintf(f,
            "<p class='note'>%zu entries, one every %d iterations; thick lines: exponential "
            "moving average (weight %.2f), raw values faint behind.</p>\n"
            "<div class='scales'><input type='checkbox' id='logscale'> <label for='logscale'>"
            "log scale</label>\n<div class='lin'>\n",
            h->n, r->t->cfg.run.print_every, ema_weight(h->n));
    chart(f, "losses", "loss", xmax, 0, lines, r->nseries);
    fputs("</div>\n<div class='log'>\n", f);
    if (!chart(f, "losses-log", "loss", xmax, 1, lines, r->nseries))
        fputs("<p>No positive loss to draw on a log scale.</p>\n", f);
    fputs("</div></div>\n", f);
    free(x);
    free(y);
}

static void page_scores(run *r, FILE *f, double xmax)
{
    if (!r->has_truth)
        return;
    fputs("<h2>Scores on the test pairs</h2>\n", f);
    const enco_config *cfg = &r->t->cfg;
    if (r->nev == 0) {
        if (cfg->run.eval_every > 0)
            fprintf(f, "<p>The first evaluation comes at iteration %d (run.eval_every).</p>\n",
                    cfg->run.eval_every);
        else
            fputs("<p>Measured at the end of the run (set run.eval_every to measure during "
                  "training).</p>\n", f);
        return;
    }
    size_t n = r->nev;
    double *v = malloc(9 * n * sizeof *v);
    if (!v) {
        fputs("<p>(out of memory drawing the scores)</p>\n", f);
        return;
    }
    double *x = v, *mp = v + n, *ip = v + 2 * n, *ms = v + 3 * n, *is = v + 4 * n,
           *mc = v + 5 * n, *ic = v + 6 * n;
    for (size_t i = 0; i < n; i++) {
        x[i] = (double)r->ev[i].iter;
        mp[i] = r->ev[i].model.psnr, ip[i] = r->ev[i].identity.psnr;
        ms[i] = r->ev[i].model.ssim, is[i] = r->ev[i].identity.ssim;
        mc[i] = r->ev[i].model.content, ic[i] = r->ev[i].identity.content;
    }
    /* The identity baseline (A itself against B) does not change: a line
     * across the whole axis. */
    const eval_point *last = &r->ev[n - 1];
    double bx[2] = {0, xmax}, bp[2] = {last->identity.psnr, last->identity.psnr},
           bs[2] = {last->identity.ssim, last->identity.ssim},
           bc[2] = {last->identity.content, last->identity.content};
    (void)ip, (void)is, (void)ic;
    fprintf(f,
            "<p class='note'>G(A) against the true B on the pairs of %s/testA and testB, every "
            "%s; dashed: the identity baseline (A itself).</p>\n",
            cfg->data.root[0] ? cfg->data.root : ".",
            cfg->run.eval_every > 0 ? "run.eval_every iterations and at the end" : "at the end");
    line psnr[2] = {{"PSNR G(A)", "#1f77b4", x, mp, n, LINE_MARKERS},
                    {"PSNR identity", "#1f77b4", bx, bp, 2, LINE_DASHED}};
    chart(f, "scores-psnr", "PSNR (dB)", xmax, 0, psnr, 2);
    line sc[4] = {{"SSIM G(A)", "#2ca02c", x, ms, n, LINE_MARKERS},
                  {"content G(A)", "#d62728", x, mc, n, LINE_MARKERS},
                  {"SSIM identity", "#2ca02c", bx, bs, 2, LINE_DASHED},
                  {"content identity", "#d62728", bx, bc, 2, LINE_DASHED}};
    chart(f, "scores-ssim", "SSIM, content", xmax, 0, sc, 4);
    fputs("<table class='scores' id='scores-table'><tr><th>iteration</th><th>PSNR (dB)</th><th>SSIM</th>"
          "<th>content</th><th>shape IoU</th></tr>\n", f);
    for (size_t i = n; i-- > 0;) {
        const eval_point *e = &r->ev[i];
        fprintf(f, "<tr><td>%lld</td><td>%.2f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td></tr>\n",
                (long long)e->iter, e->model.psnr, e->model.ssim, e->model.content, e->model.iou);
    }
    fprintf(f, "<tr class='baseline'><td>identity</td><td>%.2f</td><td>%.3f</td><td>%.3f</td>"
               "<td>%.3f</td></tr>\n</table>\n",
            last->identity.psnr, last->identity.ssim, last->identity.content, last->identity.iou);
    free(v);
}

static void page_samples(run *r, FILE *f)
{
    size_t n = 0;
    int64_t *its = sample_iterations(r, &n);
    char path[1200];
    /* An idt_B column while the family computes the identity term, or where
     * a row has one (EnCo's identity term stops after train.stop_idt_epochs). */
    int idt = r->t->has_idt;
    for (size_t i = 0; i < n && !idt && r->fix_ok; i++) {
        snprintf(path, sizeof path, "%s/samples/iter_%08lld_idt_B.png", r->o->dir,
                 (long long)its[i]);
        idt = file_exists(path);
    }
    fputs("<h2>Samples</h2>\n", f);
    const int two_way = r->t->family->two_way;
    if (r->fix_ok && two_way) {
        fputs("<p class='note'>The same pair at every saved iteration: real_A is ", f);
        html_text(f, r->fix_a_name);
        fputs(", real_B ", f);
        html_text(f, r->fix_b_name);
        fputs(", fake_B = G_A(real_A), rec_A = G_B(fake_B), fake_A = G_B(real_B), rec_B = "
              "G_A(fake_A). The batch grid (input | translation | real_B, one row per image) is "
              "the iteration's training batch (A to B).</p>\n", f);
    } else if (r->fix_ok) {
        fputs("<p class='note'>The same image at every saved iteration: real_A is ", f);
        html_text(f, r->fix_a_name);
        fputs(", real_B ", f);
        html_text(f, r->fix_b_name);
        fprintf(f, ", fake_B = G(real_A)%s. The batch grid (input | translation | %s, one row "
                   "per image) is the iteration's training batch.</p>\n",
                idt ? ", idt_B = G(real_B) while the identity term is on" : "",
                idt ? "identity" : "real_B");
    } else {
        fprintf(f, "<p class='note'>The batch grid: input | translation | %s, one row per "
                   "image of the iteration's training batch.</p>\n",
                idt ? "identity" : "real_B");
    }
    if (n == 0) {
        fprintf(f, "<p>No sample saved yet (every %d iterations: run.sample_every, and at the "
                   "end).</p>\n",
                r->t->cfg.run.sample_every);
        free(its);
        return;
    }
    fputs("<table class='samples'><tr><th>iteration</th>", f);
    if (r->fix_ok && two_way)
        fputs("<th>real_A</th><th>fake_B</th><th>rec_A</th><th>real_B</th><th>fake_A</th>"
              "<th>rec_B</th>", f);
    else if (r->fix_ok)
        fprintf(f, "<th>real_A</th><th>fake_B</th><th>real_B</th>%s", idt ? "<th>idt_B</th>" : "");
    fputs("<th>batch grid</th></tr>\n", f);
    for (size_t i = 0; i < n; i++) {
        long long it = (long long)its[i];
        fprintf(f, "<tr class='sample'><td>%lld</td>", it);
        if (r->fix_ok && two_way) {
            for (int v = 0; v < 6; v++) {
                if (v == 0 || v == 3) {
                    fprintf(f, "<td><img class='v' src='samples/%s.png' alt='%s'></td>",
                            v ? "real_B" : "real_A", v ? "real_B" : "real_A");
                    continue;
                }
                const char *name = two_way_visual[v < 3 ? v - 1 : v - 2];
                snprintf(path, sizeof path, "%s/samples/iter_%08lld_%s.png", r->o->dir, it, name);
                if (file_exists(path))
                    fprintf(f, "<td><img class='v' src='samples/iter_%08lld_%s.png' alt='%s'></td>",
                            it, name, name);
                else
                    fputs("<td>-</td>", f);
            }
        } else if (r->fix_ok) {
            fputs("<td><img class='v' src='samples/real_A.png' alt='real_A'></td>", f);
            snprintf(path, sizeof path, "%s/samples/iter_%08lld_fake_B.png", r->o->dir, it);
            if (file_exists(path))
                fprintf(f, "<td><img class='v' src='samples/iter_%08lld_fake_B.png' "
                           "alt='fake_B'></td>", it);
            else
                fputs("<td>-</td>", f);
            fputs("<td><img class='v' src='samples/real_B.png' alt='real_B'></td>", f);
            snprintf(path, sizeof path, "%s/samples/iter_%08lld_idt_B.png", r->o->dir, it);
            if (idt && file_exists(path))
                fprintf(f, "<td><img class='v' src='samples/iter_%08lld_idt_B.png' "
                           "alt='idt_B'></td>", it);
            else if (idt)
                fputs("<td>(identity off)</td>", f);
        }
        fprintf(f, "<td><a href='samples/iter_%08lld.png'><img class='g' "
                   "src='samples/iter_%08lld.png' alt='batch grid'></a></td></tr>\n", it, it);
    }
    fputs("</table>\n", f);
    free(its);
}

static enco_status write_html(run *r)
{
    if (r->o->follower)
        return ENCO_OK;
    double t0 = now_s();
    enco_trainer *t = r->t;
    const enco_config *cfg = &t->cfg;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    const char *state = state_name(r->state);
    fputs("<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>\n<title>", f);
    html_text(f, r->o->dir);
    fprintf(f, " (%s) - enco-cl run</title>\n", state);
    fputs("<style>\n"
          "body{font-family:sans-serif;margin:1.5em;color:#222}\n"
          "table{border-collapse:collapse}\n"
          "td,th{padding:2px 10px;text-align:left;vertical-align:middle}\n"
          "table.samples td,table.samples th,table.scores td,table.scores th"
          "{border-bottom:1px solid #ddd}\n"
          ".facts th{color:#555;font-weight:normal}\n"
          ".state{font-weight:bold;padding:1px 8px;border-radius:4px}\n"
          ".state.running{background:#ddeeff}.state.done{background:#ddffdd}\n"
          ".state.stopped{background:#fff3cc}.state.failed{background:#ffdddd}\n"
          ".error{background:#ffdddd;padding:8px;white-space:pre-wrap}\n"
          ".note{color:#555}\n"
          "svg.chart text{font-size:12px;font-family:sans-serif}\n"
          "img.v{width:128px;image-rendering:pixelated}\n"
          "img.g{height:64px;image-rendering:pixelated}\n"
          ".scales .log{display:none}\n"
          "#logscale:checked~.lin{display:none}\n"
          "#logscale:checked~.log{display:block}\n"
          "pre{background:#f6f6f6;padding:8px;font-size:12px}\n"
          "</style></head><body>\n<h1>enco-cl training run: ", f);
    html_text(f, r->o->dir);
    fprintf(f, "</h1>\n<table class='facts' id='facts'>\n<tr><th>state</th><td><span id='state' "
               "class='state %s'>%s</span></td></tr>\n",
            state, state);
    int64_t last_epoch =
        cfg->train.epoch_count + cfg->train.n_epochs + cfg->train.n_epochs_decay - 1;
    int64_t epoch = r->rs.epoch > last_epoch ? last_epoch : r->rs.epoch;
    fprintf(f, "<tr><th>model family</th><td>");
    html_text(f, t->family->name);
    fprintf(f, "</td></tr>\n<tr><th>progress</th><td>iteration %lld of %lld, epoch %lld of "
               "%lld, learning-rate factor %.4g</td></tr>\n",
            (long long)r->rs.total_iter, (long long)r->total_planned, (long long)epoch,
            (long long)last_epoch, t->lr_scale);
    const enco_device_info *dev = enco_ctx_device(t->ctx);
    fputs("<tr><th>device</th><td>", f);
    if (dev) {
        html_text(f, dev->name);
        fputs(" (", f);
        html_text(f, dev->platform);
        fputs(")", f);
    }
    double el = now_s() - r->t0;
    int64_t done = r->rs.total_iter - r->iter0;
    char dur[32];
    fmt_duration(dur, sizeof dur, el);
    fputs("</td></tr>\n<tr><th>speed</th><td>", f);
    if (done > 0)
        fprintf(f, "%.4g s/iter training (%.4g s/iter with samples, scores and checkpoints); "
                   "%lld iterations in %s",
                (el - r->extra_s) / (double)done, el / (double)done, (long long)done, dur);
    else
        fputs("-", f);
    if (r->iter0 > 0)
        fprintf(f, " (resumed at iteration %lld)", (long long)r->iter0);
    enco_ctx_stats stats = enco_ctx_get_stats(t->ctx);
    time_t now = time(NULL);
    char stamp[64] = "";
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", localtime(&now));
    fprintf(f, "</td></tr>\n<tr><th>peak device memory</th><td>%.1f MiB</td></tr>\n"
               "<tr><th>page written</th><td>%s (reload for the latest)</td></tr>\n</table>\n",
            (double)stats.device_peak_bytes / (1024.0 * 1024.0), stamp);
    if (r->state == FAILED) {
        fputs("<p class='error' id='message'>", f);
        html_text(f, r->message);
        fputs("</p>\n", f);
    } else if (r->state == STOPPED) {
        fprintf(f, "<p class='note'>Stopped on request at iteration %lld; the state is saved "
                   "in latest.safetensors: continue with <code>enco-cl train ... "
                   "--resume</code>.</p>\n",
                (long long)r->rs.total_iter);
    }
    double xmax = (double)(r->total_planned > r->rs.total_iter ? r->total_planned
                                                               : r->rs.total_iter);
    page_losses(r, f, xmax);
    page_scores(r, f, xmax);
    page_samples(r, f);
    fputs("<h2>Configuration</h2>\n<pre id='config'>", f);
    if (r->config_text)
        html_text(f, r->config_text);
    fputs("</pre>\n<h2>Files</h2>\n<p><a href='losses.jsonl'>losses.jsonl</a>, "
          "<a href='config.cfg'>config.cfg</a>, <a href='samples/latest.png'>samples/latest.png"
          "</a>", f);
    if (r->has_truth)
        fputs(", <a href='evals.jsonl'>evals.jsonl</a>", f);
    if (r->has_truth && r->state == DONE)
        fputs(", <a href='eval.json'>eval.json</a>", f);
    fputs(", latest.safetensors (the checkpoint)</p>\n</body></html>\n", f);
    int bad = ferror(f);
    bad = fclose(f) != 0 || bad;
    enco_status st = bad ? ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory")
                         : enco_write_text_atomic(file_in(r, "index.html"), text);
    free(text);
    r->last_page = now_s();
    r->extra_s += r->last_page - t0;
    return st;
}
static int identity_on(const enco_config *cfg, int64_t epoch)
{
    int last = cfg->train.stop_idt_epochs >= 0 ? cfg->train.stop_idt_epochs : cfg->train.n_epochs;
    return cfg->train.nce_idt && epoch <= last;
}

/* Scores every run.eval_every iterations where there is ground truth. */
static enco_status maybe_evaluate(run *r)
{
    if (r->o->follower)
        return ENCO_OK;
    int every = r->t->cfg.run.eval_every;
    /* The last iteration's scores are measured by finish(). */
    if (!r->has_truth || every <= 0 || r->rs.total_iter % every != 0 ||
        r->last_eval_iter == r->rs.total_iter || r->rs.total_iter >= r->total_planned)
        return ENCO_OK;
    enco_eval_result res;
    ENCO_TRY(evaluate_now(r, &res));
    return write_html(r);
}

static enco_status train_loop(run *r)
{
    enco_trainer *t = r->t;
    const enco_config *cfg = &t->cfg;
    int64_t last_epoch = cfg->train.epoch_count + cfg->train.n_epochs + cfg->train.n_epochs_decay - 1;
    int64_t max_it = cfg->run.max_iterations;
    float l[ENCO_LOSS_SLOTS];
    while (r->rs.epoch <= last_epoch) {
        t->idt_on = identity_on(cfg, r->rs.epoch);
        t->lr_scale = enco_lr_factor(cfg, r->rs.sched_steps);
        while (r->rs.epoch_iter < r->epoch_length) {
            int stop = r->o->stop && *r->o->stop;
            if (r->o->agree_stop)
                ENCO_TRY(r->o->agree_stop(r->o->user, stop, &stop));
            if (stop) {
                ENCO_TRY(save(r));
                r->state = STOPPED;
                ENCO_TRY(write_html(r));
                report(r, NULL, "stop", NULL);
                return ENCO_FAIL(ENCO_ERR_INTERRUPTED,
                                 "stopped at iteration %lld; the state is saved in %s: continue "
                                 "with --resume",
                                 (long long)r->rs.total_iter, file_in(r, "latest.safetensors"));
            }
            ENCO_TRY(r->src->get(r->src->self, r->rs.epoch, r->rs.epoch_iter, r->a, r->b));
            ENCO_TRY(enco_trainer_step(t, r->a, r->b, NULL));
            r->rs.epoch_iter++;
            r->rs.total_iter++;
            int done = max_it > 0 && r->rs.total_iter >= max_it;
            if (r->rs.total_iter % cfg->run.print_every == 0 || done) {
                ENCO_TRY(read_losses(r, l));
                ENCO_TRY(log_losses(r, l));
                report(r, l, NULL, NULL);
                if (now_s() - r->last_page >= PAGE_MIN_INTERVAL_S)
                    ENCO_TRY(write_html(r));
            }
            if (cfg->run.sample_every > 0 && r->rs.total_iter % cfg->run.sample_every == 0) {
                ENCO_TRY(sample(r));
                ENCO_TRY(write_html(r));
            }
            ENCO_TRY(maybe_evaluate(r));
            if (cfg->run.save_every > 0 && r->rs.total_iter % cfg->run.save_every == 0)
                ENCO_TRY(save(r));
            if (done) {
                ENCO_TRY(sample(r));
                return save(r);
            }
        }
        r->rs.epoch++;
        r->rs.epoch_iter = 0;
        r->rs.sched_steps++;
        ENCO_TRY(save(r));
        ENCO_TRY(write_html(r));
    }
    return sample(r);
}

/* The end of a run that finished: the final scores (where there is ground
 * truth) into evals.jsonl, eval.json and o->final_eval. */
static enco_status finish(run *r)
{
    if (!r->has_truth || r->o->follower)
        return ENCO_OK;
    enco_eval_result res;
    ENCO_TRY(evaluate_now(r, &res));
    ENCO_TRY(enco_eval_write_json(&res, file_in(r, "eval.json")));
    if (r->o->final_eval)
        *r->o->final_eval = res;
    return ENCO_OK;
}

/* Removes the samples of an earlier run in this folder (a fresh run). */
static void clear_samples(const char *dir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/samples", dir);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, "iter_", 5) != 0 || n < 9 || strcmp(e->d_name + n - 4, ".png") != 0)
            continue;
        snprintf(path, sizeof path, "%s/samples/%s", dir, e->d_name);
        remove(path);
    }
    closedir(d);
}

static enco_status run_train_locked(enco_trainer *t, enco_batch_source *src,
                                    const enco_run_options *o)
{
    run r;
    memset(&r, 0, sizeof r);
    r.t = t, r.src = src, r.o = o;
    r.rs.epoch = t->cfg.train.epoch_count;
    r.last_sample_iter = r.last_eval_iter = -1;
    if (o->final_eval)
        memset(o->final_eval, 0, sizeof *o->final_eval);
    for (int i = 0; i < enco_trainer_loss_count(t) && r.nseries < ENCO_MAX_LOGGED; i++) {
        char name[40];
        int flags = 0;
        enco_trainer_loss_name(t, i, name, sizeof name, &flags);
        if (!(flags & ENCO_LOSS_LOGGED))
            continue;
        snprintf(r.series_name[r.nseries], sizeof r.series_name[0], "loss_%s", name);
        r.series_slot[r.nseries++] = i;
    }
    char samples[1100];
    snprintf(samples, sizeof samples, "%s/samples", o->dir);
    if (!o->follower) {
        ENCO_TRY(make_dir(o->dir));
        ENCO_TRY(make_dir(samples));
    }
    r.epoch_length = src->epoch_length(src->self);
    if (r.epoch_length < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "the dataset yields no batches");
    const enco_config *cfg = &t->cfg;
    r.total_planned = (int64_t)(cfg->train.n_epochs + cfg->train.n_epochs_decay) * r.epoch_length;
    if (cfg->run.max_iterations > 0 && cfg->run.max_iterations < r.total_planned)
        r.total_planned = cfg->run.max_iterations;
    size_t img = (size_t)cfg->model.input_nc * t->h * t->w * (size_t)t->n;
    r.a = malloc(img * F4);
    r.b = malloc(img * F4);
    r.host_out = malloc(2 * img * F4);
    r.config_text = enco_config_dump(cfg);
    r.has_truth = has_ground_truth(cfg->data.root);
    r.t0 = now_s();
    enco_status st = r.a && r.b && r.host_out && r.config_text
                         ? ENCO_OK
                         : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    if (st == ENCO_OK && o->resume) {
        st = enco_checkpoint_load(t, &r.rs, file_in(&r, "latest.safetensors"));
        if (st == ENCO_OK && !o->follower)
            st = history_reload(&r);
        if (st == ENCO_OK && !o->follower)
            st = evals_reload(&r);
        if (st == ENCO_OK)
            report(&r, NULL, "resume", file_in(&r, "latest.safetensors"));
    } else if (st == ENCO_OK && !o->follower) {
        remove(file_in(&r, "losses.jsonl"));
        remove(file_in(&r, "evals.jsonl"));
        remove(file_in(&r, "eval.json"));
        clear_samples(o->dir);
    }
    if (st == ENCO_OK && !o->follower)
        st = enco_write_text_atomic(file_in(&r, "config.cfg"), r.config_text);
    if (st == ENCO_OK && !o->follower)
        st = choose_fixed(&r);
    r.t0 = now_s();
    r.iter0 = r.rs.total_iter;
    if (st == ENCO_OK)
        st = write_html(&r);
    if (st == ENCO_OK)
        st = train_loop(&r);
    if (st == ENCO_OK)
        st = finish(&r);
    if (st == ENCO_OK) {
        r.state = DONE;
        st = write_html(&r);
    } else if (st != ENCO_ERR_INTERRUPTED) {
        /* The page says why the run ended; the run's error stays the one
         * returned. */
        snprintf(r.message, sizeof r.message, "%s", enco_last_error());
        r.state = FAILED;
        if (write_html(&r) != ENCO_OK)
            enco_fail(st, __FILE__, __LINE__, "%s", r.message);
    }
    free(r.a);
    free(r.b);
    free(r.host_out);
    free(r.config_text);
    free(r.ev);
    enco_image_free(&r.fix_a);
    enco_image_free(&r.fix_b);
    history_free(&r.h);
    return st;
}

enco_status enco_run_train(enco_trainer *t, enco_batch_source *src, const enco_run_options *o)
{
    /* One owner of the folder, taken before anything is written into it and
     * released however the run ends (see runlock.h); the first process of a
     * data-parallel job alone owns it. */
    if (o->follower)
        return run_train_locked(t, src, o);
    ENCO_TRY(make_dir(o->dir));
    enco_runlock lock;
    ENCO_TRY(enco_runlock_take(&lock, o->dir, "enco-cl train"));
    if (lock.previous[0] && o->on_progress) {
        enco_progress p = {.event = "takeover", .path = lock.path, .detail = lock.previous};
        o->on_progress(&p, o->user);
    }
    enco_status st = run_train_locked(t, src, o);
    enco_runlock_release(&lock);
    return st;
}
