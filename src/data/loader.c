/* Loader threads: a ring of `depth` slots; batch j (counted from the start
 * batch) lives in slot j % depth. A worker claims the lowest unclaimed batch
 * whose slot the consumer has released, fills it without holding the lock,
 * and marks it ready; the consumer takes slots in order. */
#include "data/loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct slot {
    enco_batch batch;
    size_t cap;            /* floats allocated in batch.a and batch.b */
    int ready;
    enco_status status;
    char message[1024];
} slot;

struct enco_loader {
    const enco_dataset *ds;
    enco_loader_opts o;
    size_t per_epoch;
    slot *slots;
    int depth;

    pthread_t *workers;
    int running;           /* workers alive */
    int sync_ready;        /* mu and cv initialised */
    pthread_mutex_t mu;
    pthread_cond_t cv;     /* any state change */
    int stop;
    int epoch;
    size_t first;          /* first batch of this start */
    size_t claimed;        /* batches (from first) handed to workers */
    size_t consumed;       /* batches the consumer has released */
    size_t given;          /* batches returned by next() */
    int holding;           /* the consumer holds slot (given - 1) */
};

/* Fills s with batch `b` of the epoch; the caller owns s exclusively. */
static enco_status fill_batch(enco_loader *l, slot *s, int epoch, size_t b)
{
    int n = l->o.batch_size;
    const size_t shards = l->o.shards > 1 ? (size_t)l->o.shards : 1;
    const size_t first = b * shards * (size_t)n + (size_t)(shards > 1 ? l->o.shard : 0) * n;
    enco_batch *bt = &s->batch;
    bt->n = n;
    bt->epoch = epoch;
    bt->batch = b;
    for (int k = 0; k < n; k++) {
        size_t index = first + (size_t)k;
        enco_image ia = {0}, ib = {0};
        size_t fa, fb;
        enco_rng rng;
        enco_dataset_pick(l->ds, &l->o.data, l->o.seed, epoch, index, &fa, &fb, &rng);
        ENCO_TRY(enco_dataset_item(l->ds, &l->o.data, l->o.seed, epoch, index, &ia, &ib));
        enco_status st = ENCO_OK;
        if (k == 0) {
            size_t need = (size_t)n * (size_t)ia.c * (size_t)ia.h * (size_t)ia.w;
            if (need > s->cap) {
                float *a = realloc(bt->a, need * sizeof(float));
                if (a)
                    bt->a = a;
                float *bb = a ? realloc(bt->b, need * sizeof(float)) : NULL;
                if (bb)
                    bt->b = bb;
                if (!a || !bb)
                    st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "loader: out of memory for a batch");
                else
                    s->cap = need;
            }
            bt->c = ia.c;
            bt->h = ia.h;
            bt->w = ia.w;
        }
        if (st == ENCO_OK && (ia.w != bt->w || ia.h != bt->h || ib.w != bt->w || ib.h != bt->h))
            st = ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                           "%s / %s: sample is %dx%d / %dx%d but the batch is %dx%d (a batch "
                           "needs images of one size; use batch_size 1 with preprocess none)",
                           l->ds->a.paths[fa], l->ds->b.paths[fb], ia.w, ia.h, ib.w, ib.h, bt->w,
                           bt->h);
        if (st == ENCO_OK) {
            size_t per = (size_t)bt->c * (size_t)bt->h * (size_t)bt->w;
            enco_image_to_tensor(&ia, bt->a + (size_t)k * per);
            enco_image_to_tensor(&ib, bt->b + (size_t)k * per);
            bt->index_a[k] = fa;
            bt->index_b[k] = fb;
        }
        enco_image_free(&ia);
        enco_image_free(&ib);
        if (st != ENCO_OK)
            return st;
    }
    return ENCO_OK;
}

static void *worker_main(void *arg)
{
    enco_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && (l->first + l->claimed >= l->per_epoch ||
                            l->claimed >= l->consumed + (size_t)l->depth))
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->stop)
            break;
        size_t j = l->claimed++;
        int epoch = l->epoch;
        size_t b = l->first + j;
        slot *s = &l->slots[j % (size_t)l->depth];
        pthread_mutex_unlock(&l->mu);

        enco_clear_error();
        enco_status st = fill_batch(l, s, epoch, b);

        pthread_mutex_lock(&l->mu);
        s->status = st;
        if (st != ENCO_OK)
            snprintf(s->message, sizeof s->message, "%s", enco_last_error());
        s->ready = 1;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void stop_workers(enco_loader *l)
{
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->running; i++)
        pthread_join(l->workers[i], NULL);
    l->running = 0;
    l->stop = 0;
}

enco_status enco_loader_create(enco_loader **out, const enco_dataset *ds,
                               const enco_loader_opts *opts)
{
    *out = NULL;
    ENCO_TRY(enco_data_opts_validate(&opts->data));
    if (opts->batch_size < 1 || opts->threads < 1 || opts->threads > 256 || opts->depth < 0 ||
        opts->depth > 4096)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "loader: batch_size %d (>= 1), threads %d (1..256), depth %d (0..4096)",
                         opts->batch_size, opts->threads, opts->depth);
    const int shards = opts->shards > 1 ? opts->shards : 1;
    if (opts->shards < 0 || opts->shard < 0 || opts->shard >= shards)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "loader: shard %d of %d", opts->shard,
                         opts->shards);
    size_t len = enco_dataset_len(ds);
    if (len < (size_t)opts->batch_size * shards)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: %zu images per domain, fewer than the global batch %d (batch_size "
                         "%d x %d processes)",
                         ds->root ? ds->root : "dataset", len, opts->batch_size * shards,
                         opts->batch_size, shards);
    enco_loader *l = calloc(1, sizeof *l);
    if (!l)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "loader: out of memory");
    l->ds = ds;
    l->o = *opts;
    l->per_epoch = len / ((size_t)opts->batch_size * shards);
    l->depth = opts->depth ? opts->depth : 2 * opts->threads;
    l->slots = calloc((size_t)l->depth, sizeof *l->slots);
    l->workers = calloc((size_t)opts->threads, sizeof *l->workers);
    int ok = l->slots && l->workers;
    for (int i = 0; ok && i < l->depth; i++) {
        l->slots[i].batch.index_a = calloc((size_t)opts->batch_size, sizeof(size_t));
        l->slots[i].batch.index_b = calloc((size_t)opts->batch_size, sizeof(size_t));
        ok = l->slots[i].batch.index_a && l->slots[i].batch.index_b;
    }
    if (!ok || pthread_mutex_init(&l->mu, NULL) != 0) {
        enco_loader_free(l);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "loader: out of memory");
    }
    pthread_cond_init(&l->cv, NULL);
    l->sync_ready = 1;
    *out = l;
    return ENCO_OK;
}

void enco_loader_free(enco_loader *l)
{
    if (!l)
        return;
    if (l->sync_ready && l->running)
        stop_workers(l);
    if (l->sync_ready) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
    }
    for (int i = 0; l->slots && i < l->depth; i++) {
        free(l->slots[i].batch.a);
        free(l->slots[i].batch.b);
        free(l->slots[i].batch.index_a);
        free(l->slots[i].batch.index_b);
    }
    free(l->slots);
    free(l->workers);
    free(l);
}

size_t enco_loader_batches(const enco_loader *l)
{
    return l->per_epoch;
}

enco_status enco_loader_start(enco_loader *l, int epoch, size_t first)
{
    if (epoch < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "loader: epochs count from 1, not %d", epoch);
    if (first > l->per_epoch)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "loader: batch %zu past the epoch's %zu", first,
                         l->per_epoch);
    stop_workers(l);
    l->epoch = epoch;
    l->first = first;
    l->claimed = l->consumed = l->given = 0;
    l->holding = 0;
    for (int i = 0; i < l->depth; i++)
        l->slots[i].ready = 0;
    for (int i = 0; i < l->o.threads; i++) {
        if (pthread_create(&l->workers[i], NULL, worker_main, l) != 0) {
            stop_workers(l);
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "loader: cannot start thread %d", i);
        }
        l->running++;
    }
    return ENCO_OK;
}

enco_status enco_loader_next(enco_loader *l, const enco_batch **out)
{
    *out = NULL;
    if (!l->running && l->given == 0 && l->first < l->per_epoch)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "loader: next() before start()");
    pthread_mutex_lock(&l->mu);
    if (l->holding) {
        l->slots[(l->given - 1) % (size_t)l->depth].ready = 0;
        l->consumed++;
        l->holding = 0;
        pthread_cond_broadcast(&l->cv);
    }
    if (l->first + l->given >= l->per_epoch) {
        pthread_mutex_unlock(&l->mu);
        return ENCO_OK;
    }
    slot *s = &l->slots[l->given % (size_t)l->depth];
    while (!s->ready)
        pthread_cond_wait(&l->cv, &l->mu);
    l->given++;
    l->holding = 1;
    enco_status st = s->status;
    pthread_mutex_unlock(&l->mu);
    if (st != ENCO_OK)
        return ENCO_FAIL(st, "%s", s->message);
    *out = &s->batch;
    return ENCO_OK;
}

enco_status enco_loader_benchmark(const enco_dataset *ds, const enco_loader_opts *opts,
                                  size_t batches, double *images_per_s)
{
    *images_per_s = 0.0;
    enco_loader *l;
    ENCO_TRY(enco_loader_create(&l, ds, opts));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t done = 0, images = 0;
    enco_status st = ENCO_OK;
    int epoch = 1;
    while (done < batches && st == ENCO_OK) {
        st = enco_loader_start(l, epoch++, 0);
        const enco_batch *b = NULL;
        while (st == ENCO_OK && done < batches) {
            st = enco_loader_next(l, &b);
            if (st != ENCO_OK || !b)
                break;
            images += 2 * (size_t)b->n;
            done++;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    enco_loader_free(l);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (st == ENCO_OK && s > 0)
        *images_per_s = (double)images / s;
    return st;
}
