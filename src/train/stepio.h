/* `enco-cl step` as a library call: one training iteration from a state file
 * (inputs and every weight) to an output file (images, D output, losses,
 * gradients and updated weights), in the names the PyTorch twin uses
 * (tools/reference/README.md). */
#ifndef ENCO_TRAIN_STEPIO_H
#define ENCO_TRAIN_STEPIO_H

#include "io/safetensors.h"
#include "train/trainer.h"

/* Reads `prefix`real_A / real_B / weights / optional patch_ids.<p> or
 * dag_cand.<p> + dag_cover.<p> and optional Adam state (adam_step.<net>,
 * adam_m.<name>, adam_v.<name>: for a net with any of them, all of them;
 * nets without start fresh Adam) from in, runs one iteration and adds OUT
 * tensors to out (names without prefix). With a non-NULL *trainer_out the
 * trainer is kept for further steps (the caller frees it). */
enco_status enco_step_from_state(enco_ctx *ctx, const enco_config *cfg, const enco_st_file *in,
                                 const char *prefix, int use_dag_draws, enco_st_file *out,
                                 enco_trainer **trainer_out);

/* Runs one more iteration on an existing trainer with inputs from in under
 * `prefix` (real_A, real_B, patch_ids / dag draws), adding loss.*, pred_fake
 * and patch_ids.* to out under `out_prefix`. */
enco_status enco_step_again(enco_trainer *t, const enco_st_file *in, const char *prefix,
                            int use_dag_draws, enco_st_file *out, const char *out_prefix);

/* Adds the Adam state of G, D and F to out under `out_prefix`, in the twin's
 * names (enco_step.py --save-adam): adam_m.<name>, adam_v.<name> for every
 * trainable tensor and adam_step.<net> (int64: steps taken). */
enco_status enco_step_save_adam(enco_trainer *t, enco_st_file *out, const char *out_prefix);

#endif
