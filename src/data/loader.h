/* Background loading: worker threads decode and augment batches ahead of
 * the training loop into a bounded ring; the consumer receives them strictly
 * in iteration order. Each item depends only on (seed, epoch, index) (see
 * data/dataset.h), so the batches are the same for any number of threads and
 * any thread timing, and a run can resume at any batch of any epoch.
 *
 * Batch j of an epoch holds items j*N .. j*N+N-1 (N = batch_size); an epoch
 * has floor(max(|A|, |B|) / N) batches (the last partial batch is dropped,
 * as the reference's drop_last). Sharded (data-parallel training over S
 * processes), shard s of batch j holds items j*S*N + s*N .. j*S*N + s*N+N-1:
 * the S shards of batch j together are batch j of an unsharded loader with
 * batch_size S*N, and an epoch has floor(max(|A|, |B|) / (S*N)) batches. */
#ifndef ENCO_DATA_LOADER_H
#define ENCO_DATA_LOADER_H

#include "data/dataset.h"

typedef struct enco_batch {
    int n, c, h, w;
    float *a;            /* (n, c, h, w) in [-1, 1] */
    float *b;            /* (n, c, h, w) */
    size_t *index_a;     /* (n) file index in the A list of each item */
    size_t *index_b;     /* (n) */
    int epoch;
    size_t batch;        /* index within the epoch */
} enco_batch;

typedef struct enco_loader_opts {
    enco_data_opts data;
    uint64_t seed;
    int batch_size;      /* >= 1 */
    int threads;         /* worker threads, >= 1 */
    int depth;           /* ready batches held ahead; 0 = 2 * threads */
    int shards;          /* data-parallel processes sharing each batch (0 or 1: none) */
    int shard;           /* this process's share, 0 .. shards-1 */
} enco_loader_opts;

typedef struct enco_loader enco_loader;

/* The loader keeps a pointer to ds, which must outlive it. */
enco_status enco_loader_create(enco_loader **out, const enco_dataset *ds,
                               const enco_loader_opts *opts);
void enco_loader_free(enco_loader *l);
/* Batches per epoch. */
size_t enco_loader_batches(const enco_loader *l);
/* Starts producing epoch `epoch` (1-based) from batch `first` on; stops any
 * work of a previous start first. */
enco_status enco_loader_start(enco_loader *l, int epoch, size_t first);
/* Waits for the next batch. *out stays valid until the next call (or free);
 * it is NULL after the epoch's last batch. A batch that failed to load
 * returns its error (naming the file) here, in order. */
enco_status enco_loader_next(enco_loader *l, const enco_batch **out);

/* Loads `batches` batches of epoch 1 with `threads` workers and reports
 * images per second (A and B images both count) by the wall clock. */
enco_status enco_loader_benchmark(const enco_dataset *ds, const enco_loader_opts *opts,
                                  size_t batches, double *images_per_s);

#endif
