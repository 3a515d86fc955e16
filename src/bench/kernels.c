/* The per-kernel table, derived from one recorded training step of the
 * family: the trainer runs one untimed step (kernel builds, scratch sizes),
 * then one step while the context records every command it enqueues
 * (internal.h enco_ctx_trace_begin), grouped into the ops that the networks,
 * the families and the trainer tag (name and pass, where, shape, cost). Ops
 * of the same name, shape and commands are merged into one row with a count
 * per iteration, so that sum(count * time) estimates the iteration; each
 * row's first op is then enqueued again alone (enco_trace_replay) on the
 * trainer's own buffers and timed. Replays change the trainer's state (an
 * in-place Adam step runs again, gradients accumulate): the trainer is
 * thrown away after the table. */
#include "bench/bench.h"
#include "models/family.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define F4 sizeof(float)

typedef struct planned {
    enco_bench_row row;
    size_t op;    /* the recorded op timed for the row */
    size_t count; /* its commands */
    int wheres;   /* distinct places merged into the row */
} planned;

static int row_kept(const enco_bench_row *r, const char *filter)
{
    if (!filter || !*filter)
        return 1;
    char both[sizeof r->name + sizeof r->where + 2];
    snprintf(both, sizeof both, "%s %s", r->name, r->where);
    /* A trailing '$' anchors the text at the end ("G model.1$" is not model.12). */
    size_t fl = strlen(filter), bl = strlen(both);
    if (filter[fl - 1] == '$')
        return fl - 1 <= bl && strncmp(both + bl - (fl - 1), filter, fl - 1) == 0;
    return strstr(both, filter) != NULL;
}

/* Rows of a trace: ops merged by name, shape and commands, in first-seen order. */
static enco_status rows_of(const enco_trace *tr, planned **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    planned *v = calloc(tr->nops ? tr->nops : 1, sizeof *v);
    if (!v)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    size_t nv = 0;
    for (size_t i = 0; i < tr->nops; i++) {
        const enco_trace_op *o = &tr->ops[i];
        if (!o->count)
            continue; /* a tag whose call enqueued nothing */
        size_t j = 0;
        while (j < nv && !(strcmp(v[j].row.name, o->name) == 0 &&
                           strcmp(v[j].row.shape, o->shape) == 0 && v[j].count == o->count &&
                           (unsigned long)v[j].row.launches == o->launches))
            j++;
        if (j < nv) {
            v[j].row.per_iter++;
            if (strcmp(v[j].row.where, o->where) != 0)
                v[j].wheres++;
            continue;
        }
        planned *p = &v[nv++];
        snprintf(p->row.name, sizeof p->row.name, "%s", o->name);
        snprintf(p->row.where, sizeof p->row.where, "%s", o->where);
        snprintf(p->row.shape, sizeof p->row.shape, "%s", o->shape);
        p->row.per_iter = 1;
        p->row.cost = o->cost;
        p->row.launches = (int)o->launches;
        p->row.commands = (int)o->count;
        p->op = i;
        p->count = o->count;
        p->wheres = 1;
    }
    for (size_t i = 0; i < nv; i++)
        if (v[i].wheres > 1) {
            enco_bench_row *r = &v[i].row;
            size_t len = strlen(r->where);
            snprintf(r->where + len, sizeof r->where - len, " (+%d)", v[i].wheres - 1);
        }
    *out = v;
    *n = nv;
    return ENCO_OK;
}

/* The family's trainer at the table's size, one warm-up step, then one
 * recorded step. */
static enco_status record(enco_ctx *ctx, const enco_bench_options *o, enco_trainer **t,
                          enco_trace **tr)
{
    *t = NULL;
    *tr = NULL;
    const char *family = o->family && *o->family ? o->family : "enco";
    if (!enco_family_find(family))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench: no model family \"%s\" (enco, cut, fastcut)",
                         family);
    if (o->batch < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench: batch %d: at least 1", o->batch);
    if (o->size < 4 || o->size % 4)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench: size %d: images must be multiples of 4",
                         o->size);
    enco_config cfg;
    enco_config_defaults(&cfg);
    snprintf(cfg.model.family, sizeof cfg.model.family, "%s", family);
    cfg.train.batch_size = o->batch;
    const size_t img = (size_t)o->batch * cfg.model.input_nc * o->size * o->size;
    float *in = malloc(2 * img * F4);
    if (!in)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    enco_rng rng = enco_rng_make(1234, 9);
    enco_status st = enco_rng_uniform(&rng, in, 2 * img, -1.0f, 1.0f);
    if (st == ENCO_OK)
        st = enco_trainer_create(ctx, &cfg, o->batch, o->size, o->size, t);
    if (st == ENCO_OK)
        st = enco_trainer_init_weights(*t);
    if (st == ENCO_OK)
        st = enco_trainer_step(*t, in, in + img, NULL);
    if (st == ENCO_OK)
        st = enco_finish(ctx);
    if (st == ENCO_OK)
        st = enco_ctx_trace_begin(ctx);
    if (st == ENCO_OK) {
        st = enco_trainer_step(*t, in, in + img, NULL);
        enco_status end = enco_ctx_trace_end(ctx, tr);
        if (st == ENCO_OK)
            st = end;
    }
    if (st == ENCO_OK)
        st = enco_finish(ctx);
    free(in);
    if (st != ENCO_OK) {
        enco_trace_free(*tr);
        enco_trainer_free(*t);
        *tr = NULL;
        *t = NULL;
    }
    return st;
}

enco_status enco_bench_plan(enco_ctx *ctx, const enco_bench_options *opts, enco_bench_row **rows,
                            size_t *count, unsigned long *launches)
{
    *rows = NULL;
    *count = 0;
    if (launches)
        *launches = 0;
    enco_trainer *t = NULL;
    enco_trace *tr = NULL;
    ENCO_TRY(record(ctx, opts, &t, &tr));
    planned *v = NULL;
    size_t nv = 0;
    enco_status st = rows_of(tr, &v, &nv);
    if (st == ENCO_OK && launches)
        for (size_t i = 0; i < tr->nops; i++)
            *launches += tr->ops[i].launches;
    if (st == ENCO_OK && nv) {
        *rows = calloc(nv, sizeof **rows);
        if (!*rows)
            st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
        for (size_t i = 0; st == ENCO_OK && i < nv; i++)
            if (row_kept(&v[i].row, opts->filter))
                (*rows)[(*count)++] = v[i].row;
    }
    free(v);
    enco_trace_free(tr);
    enco_trainer_free(t);
    return st;
}

/* ---- timing ------------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static enco_status time_row(enco_ctx *ctx, const enco_trace *tr, planned *pl, int warmup,
                            int repeat)
{
    double *t = calloc((size_t)repeat, sizeof *t);
    if (!t)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    enco_status st = ENCO_OK;
    for (int i = 0; st == ENCO_OK && i < warmup; i++)
        st = enco_trace_replay(ctx, tr, pl->op);
    if (st == ENCO_OK)
        st = enco_finish(ctx);
    for (int i = 0; st == ENCO_OK && i < repeat; i++) {
        double t0 = now_seconds();
        st = enco_trace_replay(ctx, tr, pl->op);
        if (st == ENCO_OK)
            st = enco_finish(ctx);
        t[i] = now_seconds() - t0;
    }
    if (st == ENCO_OK) {
        double mn = t[0];
        for (int i = 1; i < repeat; i++)
            mn = t[i] < mn ? t[i] : mn;
        pl->row.min_seconds = mn;
        pl->row.seconds = enco_bench_median(t, (size_t)repeat);
        pl->row.runs = repeat;
    }
    free(t);
    if (st != ENCO_OK)
        enco_error_append(" (bench row %s %s %s)", pl->row.name, pl->row.where, pl->row.shape);
    return st;
}

enco_status enco_bench_kernels(enco_ctx *ctx, const enco_bench_options *opts,
                               enco_bench_row **rows, size_t *count)
{
    *rows = NULL;
    *count = 0;
    if (opts->repeat < 1 || opts->warmup < 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench: repeat must be >= 1 and warmup >= 0");
    if (opts->progress)
        opts->progress(opts->progress_user, "recording one training step", 0, 1);
    enco_trainer *t = NULL;
    enco_trace *tr = NULL;
    ENCO_TRY(record(ctx, opts, &t, &tr));
    planned *v = NULL;
    size_t nv = 0, kept = 0;
    enco_status st = rows_of(tr, &v, &nv);
    for (size_t i = 0; st == ENCO_OK && i < nv; i++)
        if (row_kept(&v[i].row, opts->filter))
            v[kept++] = v[i];
    if (st == ENCO_OK && kept) {
        *rows = calloc(kept, sizeof **rows);
        if (!*rows)
            st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    }
    enco_bench_probe probe = {0};
    if (st == ENCO_OK && kept && opts->probe_n > 0)
        st = enco_bench_probe_init(ctx, opts->probe_n, &probe);
    for (size_t i = 0; st == ENCO_OK && i < kept; i++) {
        if (opts->progress) {
            char what[200];
            snprintf(what, sizeof what, "%s %s %s", v[i].row.name, v[i].row.where,
                     v[i].row.shape);
            opts->progress(opts->progress_user, what, i, kept);
        }
        /* The ceiling of the moment: probed before and after, the higher counts. */
        double before = 0, after = 0;
        if (probe.a)
            st = enco_bench_probe_rate(&probe, 3, &before);
        if (st == ENCO_OK)
            st = time_row(ctx, tr, &v[i], opts->warmup, opts->repeat);
        if (st == ENCO_OK && probe.a)
            st = enco_bench_probe_rate(&probe, 3, &after);
        v[i].row.local_gflops = before > after ? before : after;
        if (st == ENCO_OK)
            (*rows)[(*count)++] = v[i].row;
    }
    enco_bench_probe_free(&probe);
    if (st != ENCO_OK) {
        free(*rows);
        *rows = NULL;
        *count = 0;
    }
    free(v);
    enco_trace_free(tr);
    enco_trainer_free(t);
    return st;
}
