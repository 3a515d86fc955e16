/* Helpers the families share (not part of the family interface). */
#ifndef ENCO_MODELS_COMMON_H
#define ENCO_MODELS_COMMON_H

#include "io/safetensors.h"
#include "train/trainer.h"

/* G and D options of a configuration. */
enco_model_config enco_family_model_config(const enco_config *cfg);
/* A device buffer of `floats` floats (at least 1). */
enco_status enco_family_alloc(enco_trainer *t, size_t floats, cl_mem *m);
/* t->losses[out] = sum_i weights[i] * t->losses[slots[i]], in order, on the device. */
enco_status enco_family_combine(enco_trainer *t, int out, const int *slots, const float *weights,
                                size_t count);

/* Copies `images` whole images (input_nc x h x w floats each) from src at
 * float offset src_off to image slot dst_img of dst, traced as "copy". */
enco_status enco_family_copy_images(enco_trainer *t, const char *where, cl_mem dst, size_t dst_img,
                                    cl_mem src, size_t src_off, size_t images);
/* Adds the batch's n images of m at float offset off to out as
 * <prefix><name> (F32 n x output_nc x h x w): `enco-cl step`'s images. */
enco_status enco_family_add_images(enco_trainer *t, enco_st_file *out, const char *prefix,
                                   const char *name, cl_mem m, size_t off);

#endif
