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

static enco_status e2e_body(enco_ctx *ctx, int size, int batch, int iters, int warmup,
                            enco_bench_progress_fn progress, void *user, enco_bench_e2e *out)
{
    enco_config cfg;
    enco_config_defaults(&cfg);
    snprintf(cfg.model.family, sizeof cfg.model.family, "%s", out->family);
    cfg.train.batch_size = batch;
    enco_trainer *t = NULL;
    size_t img = (size_t)batch * cfg.model.input_nc * size * size;
    float *in = malloc(2 * img * F4);
    double *times = calloc((size_t)iters, sizeof *times);
    enco_status st = in && times ? ENCO_OK
                                 : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    if (st == ENCO_OK) {
        enco_rng rng = enco_rng_make(1234, 9);
        st = enco_rng_uniform(&rng, in, 2 * img, -1.0f, 1.0f);
    }
    char what[96];
    if (st == ENCO_OK && progress) {
        snprintf(what, sizeof what, "e2e %dx%d: setup", size, size);
        progress(user, what, 0, (size_t)(warmup + 2 * iters));
    }
    double t0 = now_seconds();
    if (st == ENCO_OK)
        st = enco_trainer_create(ctx, &cfg, batch, size, size, &t);
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
        st = timed_step(t, in, in + img, &s);
        if (i == 0)
            out->first_iter_seconds = s;
    }
    for (int i = 0; st == ENCO_OK && i < iters; i++, done++) {
        if (progress) {
            snprintf(what, sizeof what, "e2e %dx%d: step %d/%d", size, size, i + 1, iters);
            progress(user, what, done, total);
        }
        st = timed_step(t, in, in + img, &times[i]);
    }
    if (st == ENCO_OK) {
        double mn = times[0];
        for (int i = 1; i < iters; i++)
            mn = times[i] < mn ? times[i] : mn;
        out->min_sec_per_iter = mn;
        out->sec_per_iter = enco_bench_median(times, (size_t)iters);
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
        st = timed_step(t, in, in + img, &times[i]);
    }
    if (st == ENCO_OK) {
        out->profiled_sec_per_iter = enco_bench_median(times, (size_t)iters);
        for (int p = 0; p < out->nphases; p++)
            out->phase_seconds[p] = t->phase_seconds[p] / iters;
        float losses[ENCO_LOSS_SLOTS];
        st = enco_trainer_losses(t, losses);
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
    memset(out, 0, sizeof *out);
    snprintf(out->family, sizeof out->family, "%s", family ? family : "enco");
    if (!enco_family_find(out->family))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench e2e: no model family \"%s\" (enco, cut, "
                         "fastcut)", out->family);
    out->size = size;
    out->batch = batch;
    out->iters = iters;
    if (iters < 1 || warmup < 0 || batch < 1 || size < 8 || size % 4)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "bench e2e: size %d (multiple of 4, >= 8), batch %d, iters %d (>= 1), "
                         "warm-up %d (>= 0)",
                         size, batch, iters, warmup);
    enco_ctx *ctx = NULL;
    ENCO_TRY(enco_ctx_create(&ctx, ctx_opts));
    enco_status st = e2e_body(ctx, size, batch, iters, warmup, progress, user, out);
    enco_ctx_free(ctx);
    return st;
}

