/* Scoring a generator on test pairs with ground truth (the synthetic task,
 * or any dataset whose testB/<name> is the true translation of testA/<name>). */
#ifndef ENCO_TRAIN_EVALUATE_H
#define ENCO_TRAIN_EVALUATE_H

#include "train/translate.h"

typedef struct enco_eval_result {
    size_t images;
    double psnr, ssim, content;            /* G(A) vs the true B, means */
    double base_psnr, base_ssim, base_content; /* identity baseline: A itself vs true B */
    double min_content;                    /* worst image's content score of G(A) */
    char worst[256];                       /* its file name */
} enco_eval_result;

/* Translates every ROOT/testA image of the pairs and compares it with the
 * ROOT/testB file of the same name: PSNR, SSIM and gradient correlation
 * (content kept), next to the same scores for A itself. Images are used at
 * their size rounded to a multiple of 4. */
enco_status enco_evaluate(enco_translator *tr, const char *root, size_t max_images,
                          enco_eval_result *res);

#endif
