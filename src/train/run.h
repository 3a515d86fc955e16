/* The training loop: epochs, learning-rate schedule, identity phase, loss
 * log, sample grids, scores on test pairs, index.html, checkpoints, resume
 * and clean stops. The library reports progress through a callback and
 * never prints.
 *
 * The run folder (o->dir):
 *   losses.jsonl   one line per run.print_every iterations: iter, epoch,
 *                  lr_factor, loss_<name> of each logged loss, seconds
 *   evals.jsonl    where data.root has ground truth (testA/<name> and
 *                  testB/<name>): one line per evaluation (every
 *                  run.eval_every iterations and at the end): iter, psnr,
 *                  ssim, content, iou and identity_* (A itself)
 *   eval.json      the end-of-run evaluation (enco_eval_write_json)
 *   samples/iter_NNNNNNNN.png   grids input | translation | identity (real_B
 *                  when there is no identity term) of the batch, one row
 *                  per image; samples/latest.png the newest
 *   samples/real_A.png, real_B.png and iter_NNNNNNNN_fake_B.png,
 *                  iter_NNNNNNNN_idt_B.png: a fixed image (the first testA
 *                  image and its testB pair or the first testB, else the
 *                  first of trainA / trainB) translated at every sample
 *   index.html     the run page (static, no network): state, device, speed,
 *                  peak device memory, loss curves, scores, the samples
 *                  table newest first, the configuration; rewritten
 *                  atomically while training, so it is complete whenever
 *                  the run is killed
 *   config.cfg, latest.safetensors
 *   .lock          held by the running trainer (train/runlock.h): a second
 *                  trainer on the folder is refused; emptied at the end */
#ifndef ENCO_TRAIN_RUN_H
#define ENCO_TRAIN_RUN_H

#include "train/checkpoint.h"
#include "train/evaluate.h"

#include <signal.h>

#define ENCO_MAX_LOGGED 12

/* Where batches come from (a dataset loader, or a test's generator). */
typedef struct enco_batch_source {
    void *self;
    /* Iterations in one epoch (with the run's batch size). */
    int64_t (*epoch_length)(void *self);
    /* Fills batch `iter` of `epoch`: real_a, real_b (n, c, h, w). Must be a
     * pure function of (epoch, iter) for resumed runs to match. */
    enco_status (*get)(void *self, int64_t epoch, int64_t iter, float *real_a, float *real_b);
} enco_batch_source;

typedef struct enco_progress {
    int64_t epoch, epoch_iter, epoch_length, total_iter, total_planned;
    double it_per_s, eta_s, lr_factor;
    int nlosses;             /* the family's logged losses */
    const char *loss_names[ENCO_MAX_LOGGED]; /* "D", "G_GAN", ... */
    float losses[ENCO_MAX_LOGGED];
    const char *event;       /* NULL, or "checkpoint", "sample", "eval", "resume", "stop",
                              * "takeover" (only event, path and detail set) */
    const char *path;        /* file of the event */
    const char *detail;      /* "takeover": the earlier holder of the folder's lock,
                              * "pid N on host H, since T" */
} enco_progress;

typedef struct enco_run_options {
    const char *dir;                 /* run folder (created) */
    int resume;                      /* continue from dir/latest.safetensors */
    volatile sig_atomic_t *stop;     /* set by a signal handler: save and stop */
    void (*on_progress)(const enco_progress *p, void *user);
    void *user;
    /* Out, optional: the end-of-run scores where the dataset has ground
     * truth (images = 0 when none were measured). */
    enco_eval_result *final_eval;
    /* Data-parallel training: the processes other than the first are
     * followers: they train in step but write nothing to the run folder
     * (the first process owns it) and report nothing. */
    int follower;
    /* Optional: whether any process asks to stop (every process calls it
     * after every iteration with its own request), so that all stop at the
     * same iteration; NULL: this process's request alone. */
    enco_status (*agree_stop)(void *user, int mine, int *any);
} enco_run_options;

/* Trains t->cfg's schedule (or up to run.max_iterations in all). On a stop
 * request a checkpoint is written and ENCO_ERR_INTERRUPTED returned (the
 * page says "stopped"). A NaN or Inf loss ends the run with ENCO_ERR_NUMERIC
 * and a diagnosis; the last good checkpoint is kept. Any failure after the
 * folder exists leaves a page that says "failed" with the message. A folder
 * whose lock a live trainer holds fails with ENCO_ERR_INVALID_ARG naming the
 * holder, before anything in it is touched. */
enco_status enco_run_train(enco_trainer *t, enco_batch_source *src, const enco_run_options *o);

#endif
