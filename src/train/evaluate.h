/* Scoring a generator on test pairs with ground truth (the synthetic task,
 * or any dataset whose testB/<name> is the true translation of testA/<name>). */
#ifndef ENCO_TRAIN_EVALUATE_H
#define ENCO_TRAIN_EVALUATE_H

#include "train/translate.h"

/* Means over the pairs; NaN where a score does not apply (see below). */
typedef struct enco_eval_scores {
    double psnr, ssim, content, iou;
} enco_eval_scores;

typedef struct enco_eval_result {
    size_t images;
    enco_eval_scores model;     /* G(A) vs the true B */
    enco_eval_scores identity;  /* A itself vs B (NaN when A and B differ in channels) */
    /* Baselines fitted on these same pairs (data/metrics.h): what a generator
     * that ignores its input (constant) or only recolours each channel
     * (affine, lookup table) could score at best. The remaps use the pairing
     * (supervision): oracles no unpaired method can be held to. constant is NaN when the
     * test images differ in size, the remaps when A and B differ in channels. */
    enco_eval_scores constant, affine, lut;
    /* The unpaired colour baseline: per-channel histogram matching of A to B
     * (data/metrics.h) fitted on ROOT/trainA and ROOT/trainB, at most
     * ENCO_HISTMATCH_MAX_IMAGES of each (spread evenly over the sorted list),
     * applied to each test A. NaN when the training folders are absent or
     * A and B differ in channels; histmatch_note then says why. */
    enco_eval_scores histmatch;
    size_t histmatch_a, histmatch_b; /* training images it was fitted on */
    char histmatch_note[320];        /* empty when fitted */
    double min_content;         /* worst image's content score of G(A) */
    int btoa;                   /* the B -> A generator scored: A and B swap roles above */
    char worst[256];            /* its file name */
} enco_eval_result;

#define ENCO_HISTMATCH_MAX_IMAGES 200

/* Translates every ROOT/testA image of the pairs and compares it with the
 * ROOT/testB file of the same name: PSNR, SSIM, gradient correlation
 * (content kept) and shape IoU, next to the same scores for A itself and for
 * the baselines (fitted on the pairs; histogram matching on the training
 * folders). Images are used at their size rounded to a multiple
 * of 4. PSNR is capped at 100 dB per image (identical images) in the means. */
enco_status enco_evaluate(enco_translator *tr, const char *root, size_t max_images,
                          enco_eval_result *res);

/* Progress of enco_evaluate_progress: called before the first item of each
 * phase (done = 0) and after each item (done of total finished); what names
 * the phase and, while translating, the image. */
typedef void (*enco_eval_progress_fn)(void *user, const char *what, size_t done, size_t total);

/* enco_evaluate, reporting progress through progress(user, ...) (NULL: none):
 * the pairs translated and scored, the training images histogram matching is
 * fitted on, the pairs the baselines are scored on. */
enco_status enco_evaluate_progress(enco_translator *tr, const char *root, size_t max_images,
                                   enco_eval_progress_fn progress, void *user,
                                   enco_eval_result *res);

/* Writes the result as one JSON object (NaN as null) to path, atomically
 * (enco_write_text_atomic): a reader sees a complete file. Keys: images, psnr, ssim,
 * content, iou, worst_content, worst, and identity_ / constant_ / remap_
 * (the affine remap) / lut_ / histmatch_ followed by psnr, ssim, content, iou,
 * and histmatch_trainA, histmatch_trainB (training images fitted on). */
enco_status enco_eval_write_json(const enco_eval_result *res, const char *path);

#endif
