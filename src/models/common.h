/* Helpers the families share (not part of the family interface). */
#ifndef ENCO_MODELS_COMMON_H
#define ENCO_MODELS_COMMON_H

#include "train/trainer.h"

/* G and D options of a configuration. */
enco_model_config enco_family_model_config(const enco_config *cfg);
/* A device buffer of `floats` floats (at least 1). */
enco_status enco_family_alloc(enco_trainer *t, size_t floats, cl_mem *m);
/* t->losses[out] = sum_i weights[i] * t->losses[slots[i]], in order, on the device. */
enco_status enco_family_combine(enco_trainer *t, int out, const int *slots, const float *weights,
                                size_t count);

#endif
