/* Translation with a trained generator: G alone, any input size that is a
 * multiple of 4 (the network is fully convolutional). */
#ifndef ENCO_TRAIN_TRANSLATE_H
#define ENCO_TRAIN_TRANSLATE_H

#include "data/image.h"
#include "io/safetensors.h"
#include "nn/models.h"
#include "train/config.h"

typedef struct enco_translator {
    enco_ctx *ctx;
    enco_config cfg;
    enco_st_file *weights;   /* the generator's tensors, kept to rebuild per size */
    char prefix[8];          /* the family's generator ("netG."): its tensors' prefix */
    enco_param_set g;
    enco_seqnet net;
    int built, h, w;
    int btoa;                /* the B -> A generator of a two-generator family */
} enco_translator;

/* Opens a checkpoint or a generator-only file (e.g. converted from PyTorch).
 * The architecture comes from cfg when given, else from the file's
 * metadata, else from the defaults; the generator is the one the
 * configuration's model.family translates A to B with. */
enco_status enco_translator_open(enco_ctx *ctx, const char *path, const enco_config *cfg,
                                 enco_translator **out);
/* The same for either direction: btoa opens the B -> A generator of a
 * two-generator family (CycleGAN's G_B); other families refuse it. */
enco_status enco_translator_open_direction(enco_ctx *ctx, const char *path,
                                           const enco_config *cfg, int btoa,
                                           enco_translator **out);
void enco_translator_close(enco_translator *t);
/* y = G(x) for one image x (c, h, w) in [-1, 1]; h, w multiples of 4. */
enco_status enco_translator_run(enco_translator *t, const float *x, int h, int w, float *y);

/* The test-time preprocessing of translate and test: each side rounded to a
 * multiple of 4 as the reference's __make_power_2 (Python's round: halves to
 * even), at least 8; PIL-exact bicubic when the size changes, else a copy. */
enco_status enco_translate_prepare(const enco_image *in, enco_image *out);
/* Loads an image file with the generator's input channels, prepares it and
 * translates it: *input receives what G saw, *output G's result (output_nc
 * channels, the same size), both to be freed with enco_image_free. On failure
 * both are left empty. */
enco_status enco_translate_file(enco_translator *t, const char *path, enco_image *input,
                                enco_image *output);

#endif
