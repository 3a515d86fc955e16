/* Checkpoint save / load and the learning-rate schedule. */
#include "train/checkpoint.h"

#include "models/family.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enco_status add_i64(enco_st_file *f, const char *name, int64_t v)
{
    return enco_st_add(f, name, ENCO_DT_I64, 0, NULL, &v);
}

static enco_status get_i64(const enco_st_file *f, const char *path, const char *name,
                           int64_t *v)
{
    const enco_st_tensor *t = enco_st_find(f, name);
    if (!t || t->dtype != ENCO_DT_I64 || enco_st_numel(t) != 1)
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: %s is missing or not a single int64 (not a "
                         "training checkpoint of enco-cl?)", path, name);
    memcpy(v, t->data, sizeof *v);
    return ENCO_OK;
}

/* The processes of a data-parallel job that share each batch (1 alone). */
static int64_t processes_of(const enco_trainer *t)
{
    return t->reducer.size > 1 ? t->reducer.size : 1;
}

enco_status enco_checkpoint_save(enco_trainer *t, const enco_run_state *rs, const char *path)
{
    enco_st_file *f = enco_st_new();
    if (!f)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    enco_status st = ENCO_OK;
    for (int i = 0; i < t->nnets && st == ENCO_OK; i++)
        st = enco_params_save(t->ctx, &t->nets[i], f, "");
    for (int i = 0; i < t->nnets && st == ENCO_OK; i++)
        st = enco_params_save_moments(t->ctx, &t->nets[i], f);
    if (st == ENCO_OK && t->family->save_state)
        st = t->family->save_state(t, f, "state.");
    if (st == ENCO_OK)
        st = add_i64(f, "state.epoch", rs->epoch);
    if (st == ENCO_OK)
        st = add_i64(f, "state.epoch_iter", rs->epoch_iter);
    if (st == ENCO_OK)
        st = add_i64(f, "state.total_iter", rs->total_iter);
    if (st == ENCO_OK)
        st = add_i64(f, "state.sched_steps", rs->sched_steps);
    if (st == ENCO_OK)
        st = add_i64(f, "state.rng_counter", (int64_t)t->rng.counter);
    if (st == ENCO_OK)
        st = add_i64(f, "state.seed", (int64_t)t->cfg.train.seed);
    if (st == ENCO_OK) /* with train.batch_size (the configuration): the global batch */
        st = add_i64(f, "state.processes", processes_of(t));
    if (st == ENCO_OK) {
        char *dump = enco_config_dump(&t->cfg);
        st = dump ? enco_st_set_meta(f, "config", dump)
                  : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        free(dump);
    }
    if (st == ENCO_OK)
        st = enco_st_set_meta(f, "format", ENCO_CHECKPOINT_FORMAT);
    if (st == ENCO_OK)
        st = enco_st_write(path, f);
    enco_st_free(f);
    return st;
}

/* A run continues on the global batch it was trained on (processes x
 * train.batch_size): its epoch and iteration count that batch's steps, and
 * the loader's batch order is that batch's. Any number of processes can
 * take it up; a checkpoint without state.processes is a single process's. */
static enco_status same_global_batch(const enco_trainer *t, const enco_st_file *f,
                                     const char *path, int saved_batch)
{
    int64_t procs = 1;
    const enco_st_tensor *pt = enco_st_find(f, "state.processes");
    if (pt && pt->dtype == ENCO_DT_I64 && enco_st_numel(pt) == 1)
        memcpy(&procs, pt->data, sizeof procs);
    const int64_t was = procs * saved_batch, now = processes_of(t) * (int64_t)t->cfg.train.batch_size;
    if (was == now)
        return ENCO_OK;
    char hint[160];
    if (was % processes_of(t) == 0)
        snprintf(hint, sizeof hint, "--set train.batch_size=%lld on %lld process%s",
                 (long long)(was / processes_of(t)), (long long)processes_of(t),
                 processes_of(t) == 1 ? "" : "es");
    else
        snprintf(hint, sizeof hint, "a number of processes that divides %lld", (long long)was);
    return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                     "%s was trained on a global batch of %lld images (%lld process%s x "
                     "train.batch_size %d); this job's is %lld (%lld x %d): a run continues "
                     "on its global batch (its epochs, iterations and batch order count that "
                     "batch), so resume with %s",
                     path, (long long)was, (long long)procs, procs == 1 ? "" : "es", saved_batch,
                     (long long)now, (long long)processes_of(t), t->cfg.train.batch_size, hint);
}

enco_status enco_checkpoint_load(enco_trainer *t, enco_run_state *rs, const char *path)
{
    enco_st_file *f = NULL;
    ENCO_TRY(enco_st_read(path, &f));
    enco_status st = ENCO_OK;
    const char *fmt = enco_st_get_meta(f, "format");
    if (!fmt || strcmp(fmt, ENCO_CHECKPOINT_FORMAT) != 0)
        st = ENCO_FAIL(ENCO_ERR_FORMAT, "%s is not an enco-cl training checkpoint (format %s)",
                       path, fmt ? fmt : "missing");
    /* The family first: another family's checkpoint has other networks. */
    const char *meta = st == ENCO_OK ? enco_st_get_meta(f, "config") : NULL;
    if (meta) {
        enco_config saved;
        enco_config_defaults(&saved);
        if (enco_config_load_text(&saved, meta, path) == ENCO_OK) {
            if (strcmp(saved.model.family, t->cfg.model.family) != 0)
                st = ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                               "%s is a checkpoint of model.family \"%s\"; the configuration "
                               "says \"%s\"",
                               path, saved.model.family, t->cfg.model.family);
            else
                st = same_global_batch(t, f, path, saved.train.batch_size);
        }
    }
    for (int i = 0; i < t->nnets && st == ENCO_OK; i++) {
        st = enco_params_load(t->ctx, &t->nets[i], f, "");
        if (st == ENCO_OK)
            st = enco_params_load_moments(t->ctx, &t->nets[i], f);
        if (st != ENCO_OK)
            enco_error_append(" (in %s: a checkpoint of a different architecture?)", path);
    }
    if (st == ENCO_OK && t->family->load_state)
        st = t->family->load_state(t, f, "state.");
    int64_t seed = 0, counter = 0;
    if (st == ENCO_OK)
        st = get_i64(f, path, "state.epoch", &rs->epoch);
    if (st == ENCO_OK)
        st = get_i64(f, path, "state.epoch_iter", &rs->epoch_iter);
    if (st == ENCO_OK)
        st = get_i64(f, path, "state.total_iter", &rs->total_iter);
    if (st == ENCO_OK)
        st = get_i64(f, path, "state.sched_steps", &rs->sched_steps);
    if (st == ENCO_OK)
        st = get_i64(f, path, "state.rng_counter", &counter);
    if (st == ENCO_OK)
        st = get_i64(f, path, "state.seed", &seed);
    if (st == ENCO_OK && seed != t->cfg.train.seed)
        st = ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                       "%s was trained with train.seed = %lld, the configuration says %lld", path,
                       (long long)seed, (long long)t->cfg.train.seed);
    if (st == ENCO_OK) {
        t->rng = enco_rng_make((uint64_t)seed, 1);
        t->rng.counter = (uint64_t)counter;
        t->iteration = rs->total_iter;
    }
    enco_st_free(f);
    return st;
}

enco_status enco_generator_load(enco_ctx *ctx, enco_param_set *g, const char *path)
{
    enco_st_file *f = NULL;
    ENCO_TRY(enco_st_read(path, &f));
    enco_status st = enco_params_load(ctx, g, f, "");
    if (st != ENCO_OK)
        enco_error_append(" (in %s: does the configuration match the checkpoint's generator?)",
                          path);
    enco_st_free(f);
    return st;
}

double enco_lr_factor(const enco_config *cfg, int64_t sched_steps)
{
    if (strcmp(cfg->train.lr_policy, "constant") == 0)
        return 1.0;
    double epoch = (double)sched_steps;
    int w = cfg->train.warmup_epochs;
    if (w > 0 && sched_steps < w)
        return (epoch + cfg->train.epoch_count) / w;
    double over = epoch + cfg->train.epoch_count - cfg->train.n_epochs;
    if (over < 0)
        over = 0;
    double f = 1.0 - over / (cfg->train.n_epochs_decay + 1.0);
    return f > 0 ? f : 0;
}
