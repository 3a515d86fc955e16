/* Cross-device reproducibility: the same seed trained on two devices (or on
 * one device twice) from identical host-side draws, compared tensor group by
 * tensor group against documented tolerances (REPRODUCIBILITY.md). */
#ifndef ENCO_TRAIN_VERIFY_H
#define ENCO_TRAIN_VERIFY_H

#include "train/trainer.h"

#include <stdint.h>

typedef enum {
    ENCO_VG_LOSSES = 0,   /* every loss of every iteration */
    ENCO_VG_G,            /* generator weights after the run (but ENCO_VG_IN_BIAS) */
    ENCO_VG_D,
    ENCO_VG_F,            /* heads weights */
    ENCO_VG_STATS,        /* BatchNorm running statistics */
    ENCO_VG_IN_BIAS,      /* G's and D's conv biases followed by an InstanceNorm */
    ENCO_VG_COUNT
} enco_verify_group;

/* Tolerances (REPRODUCIBILITY.md, measured between PoCL, Oclgrind and
 * Intel's CPU runtime). Differences between implementations start at
 * rounding and grow geometrically with the iterations (each iteration trains
 * on the previous one's differences): by a factor of up to about 5 per
 * iteration in the measured runs. So the losses of iteration s are judged at
 * ENCO_VERIFY_LOSS_REL x ENCO_VERIFY_GROWTH^(s-1) (relative), the weights
 * after N iterations at ENCO_VERIFY_*_ABS x ENCO_VERIFY_GROWTH^(N-1)
 * (absolute), never above the most Adam lets two runs part
 * (enco_verify_adam_bound), and the near-tie allowance of iteration s is capped at ENCO_VERIFY_NEAR_TIE_CAP x GROWTH^(s-1). The
 * first iterations are judged tightly; after about 8 the bounds no longer
 * constrain much (the runs have diverged, on any two implementations). */
#define ENCO_VERIFY_GROWTH 5.0
#define ENCO_VERIFY_LOSS_REL 2e-6
#define ENCO_VERIFY_G_ABS 2e-8
#define ENCO_VERIFY_D_ABS 4e-6 /* Adam's first step on a gradient near eps: lr dg / eps */
#define ENCO_VERIFY_F_ABS 2e-8
#define ENCO_VERIFY_STATS_ABS 2e-8
/* The largest score difference a near-tie of the first iteration may span,
 * whatever the maps' difference d: 30 times the largest d measured there. */
#define ENCO_VERIFY_NEAR_TIE_CAP 1e-8
/* A conv bias followed by an InstanceNorm has a true gradient of 0 (the norm
 * removes it); its computed gradient is rounding noise whose sign Adam turns
 * into a step of about lr on any device, so only Adam's bound holds there
 * (group ENCO_VG_IN_BIAS). The bias has no effect on any output. */

/* The most two runs of `steps` Adam iterations at learning rate at most lr
 * can move one weight apart, whatever the gradients: 2 lr sum_t r_t, where
 * r_t bounds |m_hat_t| / sqrt(v_hat_t) by Cauchy-Schwarz (1 at t = 1, above
 * 1 later as v's bias correction fades: 1.13 at t = 3, 1.8 at t = 10 for
 * beta1 = 0.5, beta2 = 0.999). */
double enco_verify_adam_bound(int steps, double lr, double beta1, double beta2);

/* The tolerance of group g for iteration (losses) or after iteration (the
 * rest) `steps`; adam: enco_verify_adam_bound for the group's learning rate
 * (ENCO_VG_IN_BIAS: the larger of G's and D's), for the weight groups. */
double enco_verify_tolerance(enco_verify_group g, int steps, double adam);
/* The cap on the near-tie allowance at iteration s (1-based). */
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
const char *enco_verify_loss_name(int slot, char *buf, size_t size);

typedef struct enco_verify_report {
    char device_a[128], device_b[128];
    int steps, same_device;
    int bitwise;               /* every compared value identical */
    enco_verify_row rows[ENCO_VG_COUNT];
    enco_verify_picks picks;
    int picks_pass;            /* no unexplained pick difference */
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

#endif
