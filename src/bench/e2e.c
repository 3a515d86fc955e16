/* The end-to-end benchmark: the full training iteration of the default
 * configuration, timed plain and then with the trainer's phase profiling. */
#include "bench/bench.h"
#include "models/family.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define F4 sizeof(float)

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static enco_status timed_step(enco_trainer *t, const float *a, const float *b, double *sec)
{
    double t0 = now_seconds();
    ENCO_TRY(enco_trainer_step(t, a, b, NULL));
    ENCO_TRY(enco_finish(t->ctx));
    *sec = now_seconds() - t0;
    return ENCO_OK;
}

/* The trainer's reducer over dist, counting its calls and floats. */
typedef struct counted_sum {
    enco_dist *dist;
    double calls, floats;
} counted_sum;

static enco_status dist_sum(void *user, float *buf, size_t n)
{
    counted_sum *c = user;
    c->calls += 1;
    c->floats += (double)n;
    return enco_dist_sum_floats(c->dist, buf, n);
}

/* What a family shares beyond the gradients (in the communication totals of
 * enco_dist_stats, not in the gradient sums' count). */
static enco_status dist_sum_doubles(void *user, double *buf, size_t n)
{
    return enco_dist_sum_doubles(((counted_sum *)user)->dist, buf, n);
}

static enco_status dist_allgather(void *user, const void *mine, void *all, size_t bytes)
{
    return enco_dist_allgather(((counted_sum *)user)->dist, mine, all, bytes);
}

static enco_status e2e_body(enco_ctx *ctx, const enco_config *base, int size, int batch,
                            int iters, int warmup, enco_dist *dist,
                            enco_bench_progress_fn progress, void *user, enco_bench_e2e *out)
{
    enco_config cfg = *base;
    cfg.train.batch_size = batch;
    const int nproc = enco_dist_size(dist), rank = enco_dist_rank(dist);
    enco_trainer *t = NULL;
    /* This process's share of a global batch of synthetic images. */
    size_t img = (size_t)batch * cfg.model.input_nc * size * size;
    float *in = malloc(2 * img * nproc * F4);
    double *times = calloc((size_t)iters, sizeof *times);
    enco_status st = in && times ? ENCO_OK
                                 : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    if (st == ENCO_OK) {
        enco_rng rng = enco_rng_make(1234, 9);
        st = enco_rng_uniform(&rng, in, 2 * img * nproc, -1.0f, 1.0f);
    }
    const float *mine_a = in + (size_t)rank * img, *mine_b = in + (size_t)(nproc + rank) * img;
    char what[96];
    if (st == ENCO_OK && progress) {
        snprintf(what, sizeof what, "e2e %dx%d: setup", size, size);
        progress(user, what, 0, (size_t)(warmup + 2 * iters));
    }
    double t0 = now_seconds();
    counted_sum cs = {.dist = dist};
    if (st == ENCO_OK)
        st = enco_trainer_create(ctx, &cfg, batch, size, size, &t);
    if (st == ENCO_OK && nproc > 1) {
        enco_grad_reducer red = {.size = nproc,
                                 .rank = rank,
                                 .user = &cs,
                                 .sum = dist_sum,
                                 .sum_doubles = dist_sum_doubles,
                                 .allgather = dist_allgather};
        st = enco_trainer_set_reducer(t, &red);
    }
    if (st == ENCO_OK)
        st = enco_trainer_init_weights(t);
    if (st == ENCO_OK)
        st = enco_finish(ctx);
    out->setup_seconds = now_seconds() - t0;
    if (st == ENCO_OK) {
        out->nnets = t->nnets;
        for (int i = 0; i < t->nnets; i++) {
            out->net_names[i] = t->family->nets[i];
            out->params[i] = t->nets[i].n_params;
        }
        out->nphases = enco_trainer_timer_count(t);
        for (int i = 0; i < out->nphases; i++)
            out->phase_names[i] = enco_trainer_timer_name(t, i);
    }
    size_t done = 0, total = (size_t)(warmup + 2 * iters);
    for (int i = 0; st == ENCO_OK && i < warmup; i++, done++) {
        if (progress) {
            snprintf(what, sizeof what, "e2e %dx%d: warm-up step %d/%d", size, size, i + 1,
                     warmup);
            progress(user, what, done, total);
        }
        double s = 0;
        st = timed_step(t, mine_a, mine_b, &s);
        if (i == 0)
            out->first_iter_seconds = s;
    }
    /* The communication of the timed steps. */
    double bytes0 = 0, sec0 = 0, calls0 = cs.calls, floats0 = cs.floats, steps_sum = 0;
    enco_dist_stats(dist, &bytes0, &sec0);
    for (int i = 0; st == ENCO_OK && i < iters; i++, done++) {
        if (progress) {
            snprintf(what, sizeof what, "e2e %dx%d: step %d/%d", size, size, i + 1, iters);
            progress(user, what, done, total);
        }
        st = timed_step(t, mine_a, mine_b, &times[i]);
        steps_sum += times[i];
    }
    if (st == ENCO_OK) {
        double bytes1 = 0, sec1 = 0;
        enco_dist_stats(dist, &bytes1, &sec1);
        out->comm_bytes_per_iter = (bytes1 - bytes0) / iters;
        out->comm_seconds_per_iter = (sec1 - sec0) / iters;
        out->comm_share = steps_sum > 0 ? (sec1 - sec0) / steps_sum : 0;
        out->comm_sums_per_iter = (cs.calls - calls0) / iters;
        out->comm_floats_per_iter = (cs.floats - floats0) / iters;
    }
    if (st == ENCO_OK) {
        double mn = times[0];
        for (int i = 1; i < iters; i++)
            mn = times[i] < mn ? times[i] : mn;
        out->min_sec_per_iter = mn;
        out->sec_per_iter = enco_bench_median(times, (size_t)iters);
        out->images_per_second =
            out->sec_per_iter > 0 ? out->global_batch / out->sec_per_iter : 0;
        if (warmup == 0)
            out->first_iter_seconds = times[0];
        t->profile = 1;
        memset(t->phase_seconds, 0, sizeof t->phase_seconds);
    }
    for (int i = 0; st == ENCO_OK && i < iters; i++, done++) {
        if (progress) {
            snprintf(what, sizeof what, "e2e %dx%d: profiled step %d/%d", size, size, i + 1,
                     iters);
            progress(user, what, done, total);
        }
        st = timed_step(t, mine_a, mine_b, &times[i]);
    }
    if (st == ENCO_OK) {
        out->profiled_sec_per_iter = enco_bench_median(times, (size_t)iters);
        for (int p = 0; p < out->nphases; p++)
            out->phase_seconds[p] = t->phase_seconds[p] / iters;
        float losses[ENCO_LOSS_SLOTS];
        st = enco_trainer_losses_mean(t, losses);
        const int g = enco_trainer_loss_slot(t, "G");
        if (st == ENCO_OK && (g < 0 || !isfinite(losses[g])))
            st = ENCO_FAIL(ENCO_ERR_MISMATCH, "bench e2e %dx%d: loss_G is not finite (%g)", size,
                           size, g < 0 ? NAN : (double)losses[g]);
        out->loss_g = g < 0 ? NAN : losses[g];
    }
    enco_ctx_stats stats = enco_ctx_get_stats(ctx);
    out->device_peak_bytes = stats.device_peak_bytes;
    out->device_bytes = stats.device_bytes;
    enco_trainer_free(t);
    free(in);
    free(times);
    return st;
}

enco_status enco_bench_e2e_run(const enco_ctx_options *ctx_opts, int size, int batch, int iters,
                               int warmup, enco_bench_progress_fn progress, void *user,
                               enco_bench_e2e *out)
{
    return enco_bench_e2e_run_family(ctx_opts, NULL, size, batch, iters, warmup, progress, user,
                                     out);
}

enco_status enco_bench_e2e_run_family(const enco_ctx_options *ctx_opts, const char *family,
                                      int size, int batch, int iters, int warmup,
                                      enco_bench_progress_fn progress, void *user,
                                      enco_bench_e2e *out)
{
    enco_config cfg;
    enco_config_defaults(&cfg);
    const char *name = family ? family : "enco";
    if (strlen(name) >= sizeof cfg.model.family || !enco_family_find(name)) {
        memset(out, 0, sizeof *out);
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench e2e: no model family \"%s\" (enco, cut, "
                         "fastcut, cyclegan, dclgan)", name);
    }
    snprintf(cfg.model.family, sizeof cfg.model.family, "%s", name);
    return enco_bench_e2e_run_config(ctx_opts, &cfg, size, batch, iters, warmup, NULL, progress,
                                     user, out);
}

enco_status enco_bench_e2e_run_config(const enco_ctx_options *ctx_opts, const enco_config *cfg,
                                      int size, int batch, int iters, int warmup,
                                      enco_dist *dist, enco_bench_progress_fn progress,
                                      void *user, enco_bench_e2e *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->family, sizeof out->family, "%s", cfg->model.family);
    if (!enco_family_find(cfg->model.family))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench e2e: no model family \"%s\" (enco, cut, "
                         "fastcut, cyclegan, dclgan)", cfg->model.family);
    out->size = size;
    out->batch = batch;
    out->iters = iters;
    out->processes = enco_dist_size(dist);
    out->global_batch = batch * out->processes;
    if (iters < 1 || warmup < 0 || batch < 1 || size < 8 || size % 4)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "bench e2e: size %d (multiple of 4, >= 8), batch %d, iters %d (>= 1), "
                         "warm-up %d (>= 0)",
                         size, batch, iters, warmup);
    enco_ctx *ctx = NULL;
    ENCO_TRY(enco_ctx_create(&ctx, ctx_opts));
    enco_status st = e2e_body(ctx, cfg, size, batch, iters, warmup, dist, progress, user, out);
    enco_ctx_free(ctx);
    return st;
}
