/* The training loop and the run folder it keeps. */
#include "train/run.h"

#include "data/image.h"
#include "models/family.h"

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
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#111111", "#ff7f0e", "#8c564b", "#17becf"};

typedef struct history {
    int64_t *iter;
    float *v[ENCO_MAX_LOGGED];
    size_t n, cap;
} history;

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
    const char *last_sample;
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
    ENCO_TRY(enco_trainer_losses(r->t, l));
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
                                 : strcmp(r->t->family->name, "cut") == 0 ? "cut.lr"
                                                                          : "fastcut.lr");
    return ENCO_OK;
}

static void report(run *r, const float *l, const char *event, const char *path)
{
    if (!r->o->on_progress)
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
    if (r->rs.total_iter > 0)
        ENCO_TRY(read_losses(r, l)); /* never checkpoint a diverged model */
    ENCO_TRY(enco_checkpoint_save(r->t, &r->rs, file_in(r, "latest.safetensors")));
    report(r, NULL, "checkpoint", r->path);
    return ENCO_OK;
}

/* input | translation | identity (real_B when the identity term is off). */
static enco_status sample(run *r)
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
    if (st == ENCO_OK)
        report(r, NULL, "sample", file_in(r, leaf));
    for (int i = 0; i < 3 * n; i++)
        enco_image_free(&tiles[i]);
    free(tiles);
    enco_image_free(&grid);
    return st;
}

static void svg_series(char **p, size_t *left, const history *h, int s, float lo, float hi)
{
    int64_t i0 = h->iter[0], i1 = h->iter[h->n - 1];
    double xs = i1 > i0 ? 760.0 / (double)(i1 - i0) : 0, ys = hi > lo ? 260.0 / (hi - lo) : 0;
    int k = snprintf(*p, *left, "<polyline fill='none' stroke='%s' stroke-width='1.5' points='",
                     series_colour[s]);
    *p += k, *left -= (size_t)k;
    for (size_t i = 0; i < h->n && *left > 64; i++) {
        k = snprintf(*p, *left, "%.1f,%.1f ", 30 + xs * (double)(h->iter[i] - i0),
                     290 - ys * (h->v[s][i] - lo));
        *p += k, *left -= (size_t)k;
    }
    k = snprintf(*p, *left, "'/>\n");
    *p += k, *left -= (size_t)k;
}

static enco_status write_html(run *r)
{
    const history *h = &r->h;
    size_t cap = 8192 + h->n * (size_t)r->nseries * 24;
    char *buf = malloc(cap), *p = buf;
    if (!buf)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    size_t left = cap;
    int k = snprintf(p, left,
                     "<!doctype html>\n<html><head><meta charset='utf-8'><title>enco-cl run</title>"
                     "<style>body{font-family:sans-serif;margin:2em}td{padding:0 1em}</style>"
                     "</head><body>\n<h1>enco-cl training run</h1>\n<p>epoch %lld, iteration "
                     "%lld of %lld, learning-rate factor %.4g</p>\n",
                     (long long)r->rs.epoch, (long long)r->rs.total_iter,
                     (long long)r->total_planned, r->t->lr_scale);
    p += k, left -= (size_t)k;
    if (h->n > 0) {
        float lo = INFINITY, hi = -INFINITY;
        for (int s = 0; s < r->nseries; s++)
            for (size_t i = 0; i < h->n; i++) {
                lo = fminf(lo, h->v[s][i]);
                hi = fmaxf(hi, h->v[s][i]);
            }
        k = snprintf(p, left,
                     "<h2>Losses</h2>\n<svg width='800' height='320' "
                     "style='border:1px solid #ccc'>\n<text x='2' y='14' font-size='11'>%.3g</text>"
                     "<text x='2' y='300' font-size='11'>%.3g</text>\n",
                     (double)hi, (double)lo);
        p += k, left -= (size_t)k;
        for (int s = 0; s < r->nseries; s++)
            svg_series(&p, &left, h, s, lo, hi);
        k = snprintf(p, left, "</svg>\n<table><tr>");
        p += k, left -= (size_t)k;
        for (int s = 0; s < r->nseries; s++) {
            k = snprintf(p, left, "<td style='color:%s'>&#9632; %s = %.4g</td>", series_colour[s],
                         r->series_name[s], (double)h->v[s][h->n - 1]);
            p += k, left -= (size_t)k;
        }
        k = snprintf(p, left, "</tr></table>\n");
        p += k, left -= (size_t)k;
    }
    snprintf(p, left,
             "<h2>Latest samples</h2>\n<p>input | translation | identity (G on real_B)</p>\n"
             "<img src='samples/latest.png' style='image-rendering:pixelated;width:600px'>\n"
             "<p>Files: <a href='losses.jsonl'>losses.jsonl</a>, <a href='config.cfg'>config.cfg"
             "</a>, latest.safetensors (checkpoint)</p>\n</body></html>\n");
    enco_status st = enco_write_text_atomic(file_in(r, "index.html"), buf);
    free(buf);
    return st;
}

static int identity_on(const enco_config *cfg, int64_t epoch)
{
    int last = cfg->train.stop_idt_epochs >= 0 ? cfg->train.stop_idt_epochs : cfg->train.n_epochs;
    return cfg->train.nce_idt && epoch <= last;
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
            if (r->o->stop && *r->o->stop) {
                ENCO_TRY(save(r));
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
            }
            if (cfg->run.sample_every > 0 && r->rs.total_iter % cfg->run.sample_every == 0) {
                ENCO_TRY(sample(r));
                ENCO_TRY(write_html(r));
            }
            if (cfg->run.save_every > 0 && r->rs.total_iter % cfg->run.save_every == 0)
                ENCO_TRY(save(r));
            if (done) {
                ENCO_TRY(sample(r));
                ENCO_TRY(save(r));
                return write_html(r);
            }
        }
        r->rs.epoch++;
        r->rs.epoch_iter = 0;
        r->rs.sched_steps++;
        ENCO_TRY(save(r));
        ENCO_TRY(write_html(r));
    }
    ENCO_TRY(sample(r));
    return write_html(r);
}

enco_status enco_run_train(enco_trainer *t, enco_batch_source *src, const enco_run_options *o)
{
    run r;
    memset(&r, 0, sizeof r);
    r.t = t, r.src = src, r.o = o;
    r.rs.epoch = t->cfg.train.epoch_count;
    for (int i = 0; i < enco_trainer_loss_count(t) && r.nseries < ENCO_MAX_LOGGED; i++) {
        char name[40];
        int flags = 0;
        enco_trainer_loss_name(t, i, name, sizeof name, &flags);
        if (!(flags & ENCO_LOSS_LOGGED))
            continue;
        snprintf(r.series_name[r.nseries], sizeof r.series_name[0], "loss_%s", name);
        r.series_slot[r.nseries++] = i;
    }
    ENCO_TRY(make_dir(o->dir));
    char samples[1100];
    snprintf(samples, sizeof samples, "%s/samples", o->dir);
    ENCO_TRY(make_dir(samples));
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
    enco_status st = r.a && r.b && r.host_out ? ENCO_OK
                                               : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    if (st == ENCO_OK && o->resume) {
        st = enco_checkpoint_load(t, &r.rs, file_in(&r, "latest.safetensors"));
        if (st == ENCO_OK)
            st = history_reload(&r);
        if (st == ENCO_OK)
            report(&r, NULL, "resume", file_in(&r, "latest.safetensors"));
    } else if (st == ENCO_OK) {
        remove(file_in(&r, "losses.jsonl"));
    }
    if (st == ENCO_OK) {
        char *dump = enco_config_dump(cfg);
        st = dump ? enco_write_text_atomic(file_in(&r, "config.cfg"), dump)
                  : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        free(dump);
    }
    r.t0 = now_s();
    r.iter0 = r.rs.total_iter;
    if (st == ENCO_OK)
        st = train_loop(&r);
    free(r.a);
    free(r.b);
    free(r.host_out);
    history_free(&r.h);
    return st;
}
