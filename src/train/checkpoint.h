/* Checkpoints: safetensors files holding G, D and F under the reference
 * names (netG.*, netD.*, netF.*: a PyTorch state dict converted by
 * tools/pth2safetensors.py loads the same way), the Adam moments
 * (adam_m.*, adam_v.*, adam_step.*), and the training state (state.*) plus
 * the configuration in the metadata, so that a resumed run continues
 * exactly. Writes are atomic (temporary file, fsync, rename). */
#ifndef ENCO_TRAIN_CHECKPOINT_H
#define ENCO_TRAIN_CHECKPOINT_H

#include "train/trainer.h"

#define ENCO_CHECKPOINT_FORMAT "enco-cl-checkpoint-1"

/* Where a run stands; saved in checkpoints. */
typedef struct enco_run_state {
    int64_t epoch;           /* current epoch, counted from train.epoch_count */
    int64_t epoch_iter;      /* iterations done in this epoch */
    int64_t total_iter;      /* iterations done in all */
    int64_t sched_steps;     /* learning-rate scheduler steps taken */
} enco_run_state;

enco_status enco_checkpoint_save(enco_trainer *t, const enco_run_state *rs, const char *path);
/* Restores everything saved by enco_checkpoint_save into a trainer built
 * for the same architecture; a mismatch names the first differing tensor. */
enco_status enco_checkpoint_load(enco_trainer *t, enco_run_state *rs, const char *path);
/* Loads only the generator's tensors (netG.*) from a checkpoint or a
 * converted PyTorch generator. */
enco_status enco_generator_load(enco_ctx *ctx, enco_param_set *g, const char *path);

/* Learning-rate factor of the spec's schedule after `sched_steps` epoch
 * ends: linear decay after n_epochs, optional warm-up, or constant. */
double enco_lr_factor(const enco_config *cfg, int64_t sched_steps);

#endif
