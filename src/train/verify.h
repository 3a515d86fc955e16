/* Cross-device reproducibility: the same seed trained on two devices (or on
 * one device twice) from identical host-side draws, compared tensor group by
 * tensor group against documented tolerances (REPRODUCIBILITY.md). */
#ifndef ENCO_TRAIN_VERIFY_H
#define ENCO_TRAIN_VERIFY_H

#include "train/trainer.h"

#include <stdint.h>

typedef enum {
    ENCO_VG_LOSSES = 0,   /* every loss of every iteration */
    ENCO_VG_G,            /* generator weights after the run */
    ENCO_VG_D,
    ENCO_VG_F,            /* heads weights */
    ENCO_VG_STATS,        /* BatchNorm running statistics */
    ENCO_VG_COUNT
} enco_verify_group;

typedef struct enco_verify_row {
    const char *name;
    double max_abs, max_rel;   /* rel: |a - b| / max(|a|, |b|, floor) */
    double tolerance;          /* on max_abs (losses: on max_rel) */
    int pass;
    char worst[128];           /* tensor (or iteration) with the largest difference */
} enco_verify_row;

/* The sampled patch positions of both runs, compared slot by slot. DAG
 * ranks the same candidates by each run's score map, so where the maps
 * differ by at most d (the largest |score_a - score_b|), the j-th ranked
 * score moves by at most d, and two positions whose scores lie within 2 d of
 * each other on both maps may trade places: a near-tie the maps explain
 * (REPRODUCIBILITY.md). Any other difference, and any difference in the
 * covering or randomly drawn slots (host draws), is unexplained. */
typedef struct enco_verify_picks {
    long compared;          /* picks compared */
    long differ;            /* of them, differing */
    long unexplained;       /* differing beyond what the score maps explain */
    double score_diff;      /* largest |score_a - score_b| over the compared maps */
    int first_iteration;    /* first iteration (1-based) with a differing pick; 0: none */
} enco_verify_picks;

/* Adds one image's picks to *acc: ids (k), of which the first `ranked` were
 * ranked by score (the rest drawn), scores (hw) of each run. */
void enco_verify_picks_compare(enco_verify_picks *acc, const int32_t *ids_a,
                               const int32_t *ids_b, int k, int ranked, const float *score_a,
                               const float *score_b, int hw);

typedef struct enco_verify_report {
    char device_a[128], device_b[128];
    int steps, same_device;
    int bitwise;               /* every compared value identical */
    enco_verify_row rows[ENCO_VG_COUNT];
    enco_verify_picks picks;
    int picks_pass;            /* no unexplained pick difference */
    int losses_judged;         /* iterations whose losses were judged: those before the
                                * first differing pick (a different patch moves the EnCo
                                * loss by percent; the weights are judged throughout) */
    int pass;
} enco_verify_report;

/* Trains `steps` iterations of cfg on (n, h, w) synthetic batches on each
 * context and compares. With ctx_a == ctx_b semantics (same device twice)
 * the run must be bitwise identical. */
enco_status enco_verify(enco_ctx *ctx_a, enco_ctx *ctx_b, const enco_config *cfg, int n, int h,
                        int w, int steps, enco_verify_report *rep);

#endif
