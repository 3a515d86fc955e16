/* Cross-device reproducibility: the same seed trained on two devices (or on
 * one device twice) from identical host-side draws, compared tensor group by
 * tensor group against documented tolerances (REPRODUCIBILITY.md). */
#ifndef ENCO_TRAIN_VERIFY_H
#define ENCO_TRAIN_VERIFY_H

#include "train/trainer.h"

#include <stdint.h>

typedef enum {
    ENCO_VG_LOSSES = 0,   /* every loss of every iteration */
    ENCO_VG_G,            /* generator weights after the run (or after iteration 1:
                           * rows1), but ENCO_VG_ILL */
    ENCO_VG_D,
    ENCO_VG_F,            /* heads weights */
    ENCO_VG_STATS,        /* BatchNorm running statistics */
    ENCO_VG_ILL,          /* weights whose Adam steps are ill-conditioned: G's and D's
                           * conv biases followed by an InstanceNorm, and every element
                           * of G, D or F with sqrt(v_hat) + eps < K eps on either run
                           * at some iteration (enco_verify_ill_conditioned) */
    ENCO_VG_COUNT
} enco_verify_group;

/* Tolerances (REPRODUCIBILITY.md, measured between PoCL, Oclgrind and
 * Intel's CPU runtime on the default tiny model and configs/demo.cfg).
 *
 * Adam's step lr m_hat / (sqrt(v_hat) + eps) is ill-conditioned where
 * sqrt(v_hat) is not large against eps: at the first step it is
 * lr g / (|g| + eps), which a relative gradient difference delta moves by
 * lr delta |g| eps / (|g| + eps)^2, up to lr delta / 4 at |g| = eps but at
 * most lr delta / K where |g| + eps >= K eps. So an element whose
 * sqrt(v_hat) + eps stays below K eps at some iteration on either run
 * (enco_verify_ill_conditioned) is judged at Adam's bound only, like the
 * conv biases followed by an InstanceNorm (true gradient 0: their computed
 * gradient is rounding noise); every other weight after one iteration at
 * ENCO_VERIFY_WEIGHT_LR x its net's lr, and the losses of iteration 1 at
 * ENCO_VERIFY_LOSS_REL.
 *
 * From iteration 2 on the first iteration's ill-conditioned steps, which
 * legitimately part output-affecting weights by up to about lr, drive every
 * difference: measured on the demo model, weights up to 1.9 lr apart after
 * two iterations. So after N >= 2 iterations every weight is judged at
 * Adam's bound, the losses of iteration s >= 2 at ENCO_VERIFY_LOSS_REL_2 x
 * GROWTH^(s-2), the running statistics at ENCO_VERIFY_STATS_ABS_2 x
 * 10^(N-2). The weights and running statistics after iteration 1 are
 * kept in such a run and judged as after a one-iteration run (rows1), and
 * the losses of iteration 1 are judged tightly in every run. */
#define ENCO_VERIFY_ILL_K 1000.0
#define ENCO_VERIFY_WEIGHT_LR 2e-4    /* well-conditioned weights after 1 iteration, x lr */
#define ENCO_VERIFY_LOSS_REL 2e-6     /* losses of iteration 1, relative */
#define ENCO_VERIFY_LOSS_REL_2 2e-3   /* losses of iteration 2, relative */
#define ENCO_VERIFY_GROWTH 5.0        /* per further iteration (losses, near-tie cap) */
#define ENCO_VERIFY_STATS_ABS 2e-8    /* running statistics after 1 iteration */
#define ENCO_VERIFY_STATS_ABS_2 1e-5  /* after 2 iterations, 10 times more per further one */
/* The largest score difference a near-tie of iteration 1 may span, whatever
 * the maps' difference d: 30 times the largest d measured there. From
 * iteration 2 on the maps part with the weights (measured d up to 5e-3 by
 * iteration 5 on the demo model) and only the 2 d rule holds: no cap. */
#define ENCO_VERIFY_NEAR_TIE_CAP 1e-8

/* The most two runs of `steps` Adam iterations at learning rate at most lr
 * can move one weight apart, whatever the gradients: 2 lr sum_t r_t, where
 * r_t bounds |m_hat_t| / sqrt(v_hat_t) by Cauchy-Schwarz (1 at t = 1, above
 * 1 later as v's bias correction fades: 1.13 at t = 3, 1.8 at t = 10 for
 * beta1 = 0.5, beta2 = 0.999). */
double enco_verify_adam_bound(int steps, double lr, double beta1, double beta2);

/* The tolerance of group g for iteration (losses) or after iteration (the
 * rest) `steps`; lr: the net's learning rate and adam: enco_verify_adam_bound
 * for it, for the weight groups. */
double enco_verify_tolerance(enco_verify_group g, int steps, double lr, double adam);

/* Whether an element whose smallest v_hat over the iterations was
 * vhat_min_a on one run and vhat_min_b on the other took an ill-conditioned
 * Adam step: sqrt(min) + eps < ENCO_VERIFY_ILL_K eps (NAN: never stepped,
 * well conditioned). */
int enco_verify_ill_conditioned(double vhat_min_a, double vhat_min_b, double eps);
/* Folds the bias-corrected second moments v / (1 - beta2^step) of n
 * elements after Adam step `step` into vmin (element-wise minimum; a NAN in
 * vmin is replaced). */
void enco_verify_vhat_min(float *vmin, const float *v, size_t n, long step, double beta2);
/* The cap on the near-tie allowance at iteration s (1-based; INFINITY from 2 on). */
double enco_verify_near_tie_cap(int s);

#define ENCO_VERIFY_MAX_REPORTED 256 /* iterations with per-iteration loss results */

typedef struct enco_verify_row {
    const char *name;
    double max_abs, max_rel;   /* rel: |a - b| / max(|a|, |b|, floor) */
    double tolerance;          /* on max_abs (losses: on max_rel, of the iteration
                                * nearest its tolerance, which the row then shows) */
    int pass;
    char worst[128];           /* tensor (or iteration and loss) with the largest difference */
} enco_verify_row;

/* The sampled patch positions of both runs, compared slot by slot. DAG
 * ranks the same candidates by each run's score map, so where the maps
 * differ by at most d (the largest |score_a - score_b|), the j-th ranked
 * score moves by at most d, and two positions whose scores lie within 2 d of
 * each other on both maps may trade places: a near-tie the maps explain
 * (REPRODUCIBILITY.md). The allowance is min(2 d, cap): maps that differ by
 * more than real implementations do explain no more than the cap. Any other
 * difference, and any difference in the covering or randomly drawn slots
 * (host draws), is unexplained. */
typedef struct enco_verify_picks {
    long compared;          /* picks compared */
    long differ;            /* of them, differing */
    long unexplained;       /* differing beyond what the score maps explain */
    double score_diff;      /* largest |score_a - score_b| over the compared maps */
    int first_iteration;    /* first iteration (1-based) with a differing pick; 0: none */
    int iterations_differ;  /* iterations with a differing pick */
} enco_verify_picks;

/* Adds one image's picks to *acc: ids (k), of which the first `ranked` were
 * ranked by score (the rest drawn), scores (hw) of each run; cap: the
 * largest allowance (enco_verify_near_tie_cap). */
void enco_verify_picks_compare(enco_verify_picks *acc, const int32_t *ids_a,
                               const int32_t *ids_b, int k, int ranked, const float *score_a,
                               const float *score_b, int hw, double cap);

/* The name of loss slot `slot` ("loss_D", "loss_EnCo.0", ...) into buf. */
const char *enco_verify_loss_name(const enco_trainer *t, int slot, char *buf, size_t size);

typedef struct enco_verify_report {
    char device_a[128], device_b[128];
    int processes;             /* enco_verify_dp: run B's processes (0: enco_verify) */
    int steps, same_device;
    int bitwise;               /* every compared value identical */
    enco_verify_row rows[ENCO_VG_COUNT];
    /* steps >= 2: the weights and running statistics after iteration 1 of
     * both runs (which used the same patches), judged exactly as after a
     * one-iteration run: groups by the v_hat of iteration 1, tolerances
     * enco_verify_tolerance(g, 1, ...). rows1[ENCO_VG_LOSSES] is unused (the
     * losses of iteration 1 are judged in rows[ENCO_VG_LOSSES]). */
    int has_iteration1;
    enco_verify_row rows1[ENCO_VG_COUNT];
    long ill_elements1[3];     /* G, D, F elements ill-conditioned by iteration 1 */
    enco_verify_picks picks;
    int picks_pass;            /* no unexplained pick difference */
    long ill_elements[3];      /* G, D, F elements judged ill-conditioned by Adam's state */
    long ill_in_bias;          /* biases before an InstanceNorm (always in ENCO_VG_ILL) */
    int replays;               /* runs of B repeated to replay A's picks (see enco_verify) */
    double loss_rel[ENCO_VERIFY_MAX_REPORTED]; /* largest relative loss difference of
                                                * each iteration (the first ones) */
    int pass;
} enco_verify_report;

/* Trains `steps` iterations of cfg on (n, h, w) synthetic batches on each
 * context and compares. Where a pick of B differs from A's at iteration s
 * (a near-tie or a bug: the picks check tells), B is run again replaying
 * A's picks up to s, so that B's own picks after s are ranked with weights
 * that still agree to rounding, and in the end every loss of every
 * iteration and every weight is compared between runs that used the same
 * patches, at the tolerances above. With ctx_a and ctx_b on the same device
 * the run must be bitwise identical unless kernels_differ (B reads other
 * kernel sources). */
enco_status enco_verify(enco_ctx *ctx_a, enco_ctx *ctx_b, const enco_config *cfg, int n, int h,
                        int w, int steps, int kernels_differ, enco_verify_report *rep);

/* Progress of enco_verify_progress: called before each run (done = 0) and
 * after each of its training iterations (done of total = steps); what names
 * the run (A, B, or B again replaying A's picks). */
typedef void (*enco_verify_progress_fn)(void *user, const char *what, size_t done, size_t total);

/* enco_verify, reporting progress through progress(user, ...) (NULL: none). */
enco_status enco_verify_progress(enco_ctx *ctx_a, enco_ctx *ctx_b, const enco_config *cfg, int n,
                                 int h, int w, int steps, int kernels_differ,
                                 enco_verify_progress_fn progress, void *user,
                                 enco_verify_report *rep);

/* The processes of a data-parallel job (mpirun) as enco_verify_dp uses
 * them: sum as the trainer's reducer sums gradients (the same bits on every
 * process), allgather of count bytes of each into all (size x count, rank
 * order), bcast of process 0's count bytes to all. */
typedef struct enco_verify_procs {
    int size, rank;
    void *user;
    enco_status (*sum)(void *user, float *buf, size_t n);
    enco_status (*sum_doubles)(void *user, double *buf, size_t n);
    enco_status (*allgather)(void *user, const void *mine, void *all, size_t count);
    enco_status (*bcast)(void *user, void *buf, size_t count);
} enco_verify_procs;

/* Data-parallel against one process at the same global batch: every one of
 * procs->size processes calls this with the same arguments. Run B: the
 * processes train `steps` iterations of cfg from the same seed, each its
 * share of batches of size x n images (n each, the trainer's reducer summing
 * every phase's gradients through procs->sum, as enco-cl train does under
 * mpirun), on ctx_b. Run A: process 0 alone trains the same batches of
 * size x n images on ctx_a (the other processes pass ctx_a NULL). Process 0
 * compares as enco_verify does (B's picks, losses and score maps gathered
 * from every process; where a pick differs, B runs again replaying A's
 * picks) at the tolerances between devices (enco_verify_tolerance: the runs
 * differ by the float rounding of where each batch's gradient is summed,
 * which the ill-conditioned Adam steps of iteration 1 amplify from
 * iteration 2 on as they do between devices; REPRODUCIBILITY.md), never bit
 * for bit, and every process returns the same rep->pass. A family or
 * option the trainer refuses under several processes fails with the
 * trainer's message (ENCO_ERR_UNSUPPORTED) on every process before any
 * training. A failure on one process alone leaves the others waiting in a
 * collective: the caller ends the job (enco_dist_abort). */
enco_status enco_verify_dp(enco_ctx *ctx_a, enco_ctx *ctx_b, const enco_config *cfg, int n,
                           int h, int w, int steps, const enco_verify_procs *procs,
                           enco_verify_progress_fn progress, void *user,
                           enco_verify_report *rep);

#endif
