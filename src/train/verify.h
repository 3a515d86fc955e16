/* Cross-device reproducibility: the same seed trained on two devices (or on
 * one device twice) from identical host-side draws, compared tensor group by
 * tensor group against documented tolerances (REPRODUCIBILITY.md). */
#ifndef ENCO_TRAIN_VERIFY_H
#define ENCO_TRAIN_VERIFY_H

#include "train/trainer.h"

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

typedef struct enco_verify_report {
    char device_a[128], device_b[128];
    int steps, same_device;
    int bitwise;               /* every compared value identical */
    enco_verify_row rows[ENCO_VG_COUNT];
    int pass;
} enco_verify_report;

/* Trains `steps` iterations of cfg on (n, h, w) synthetic batches on each
 * context and compares. With ctx_a == ctx_b semantics (same device twice)
 * the run must be bitwise identical. */
enco_status enco_verify(enco_ctx *ctx_a, enco_ctx *ctx_b, const enco_config *cfg, int n, int h,
                        int w, int steps, enco_verify_report *rep);

#endif
