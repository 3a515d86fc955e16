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
/* Data-parallel training: every process's `count` floats of src (at float
 * offset src_off) into dst at dst_off in process order (size * count
 * floats), on every process, through the host and t->reducer.allgather
 * (traced as "allgather"). A single process copies src to dst. */
enco_status enco_family_allgather(enco_trainer *t, const char *where, cl_mem src, size_t src_off,
                                  size_t count, cl_mem dst, size_t dst_off);
/* A PatchNCE whose one group is the whole batch (CUT's
 * nce_includes_all_negatives_from_minibatch, DCLGAN): rows = this
 * process's images x patches of q and k. One process: enco_loss_patchnce
 * (cosine 0) or enco_loss_patchnce_cos (cosine 1) with (b, kp) = (1, rows)
 * on work. Several: the keys of every process are gathered (process order
 * is the batch's order) and this process's queries are the slice at
 * rank * rows of the batch's group (enco_loss_patchnce_slice), on the
 * buffers of dp, which grow on first use. */
typedef struct enco_family_dp_buffers {
    cl_mem keys, work;
    size_t keys_cap, work_cap; /* floats */
} enco_family_dp_buffers;
enco_status enco_family_batch_patchnce(enco_trainer *t, enco_family_dp_buffers *dp, int cosine,
                                       cl_mem loss, size_t loss_off, cl_mem grad, size_t grad_off,
                                       cl_mem q, size_t q_off, cl_mem k, size_t k_off,
                                       size_t rows, size_t d, float tau, float scale, cl_mem work,
                                       size_t work_off);
void enco_family_dp_free(enco_trainer *t, enco_family_dp_buffers *dp);
/* A discriminator's LSGAN step on its input d_in of 2n images, the first n
 * judged against first_target (1: real, 0: fake) and the next n against the
 * other: D's forward, one term per half (slot_first, slot_second; each 0.5 of
 * D's loss, its gradient into its half of dpred, 2 x n x t->ph x t->pw),
 * slot_out = log_weight * 0.5 * (first + second) (the logged loss; D's
 * gradient is unscaled, as in the references), and D's backward into net's
 * gradients, the phase's last of net (watched for data-parallel buckets).
 * work: enco_loss_lsgan_work(n x ph x pw) floats. */
struct enco_seqnet;
enco_status enco_family_d_lsgan(enco_trainer *t, int net, struct enco_seqnet *d, cl_mem d_in,
                                cl_mem dpred, cl_mem work, float first_target, int slot_first,
                                int slot_second, int slot_out, float log_weight);
/* `enco-cl step`'s translations of a two-generator family: fake_B and
 * fake_A, the default runs' outputs of ga (G_A) and gb (G_B), and with the
 * identity runs (idt) idt_A and idt_B, their second n images. */
enco_status enco_family_add_two_way(enco_trainer *t, enco_st_file *out, const char *prefix,
                                    struct enco_seqnet *ga, struct enco_seqnet *gb, int idt);
/* One layer's patch positions for the whole batch (PatchSampleF of CUT and
 * DCLGAN: one permutation of the hw positions per layer, its first K for
 * every image): *row = the K ids, drawn into perm (hw ints) from t->rng, or
 * `given` (n rows of K, each checked: valid ids, every row the same; errors
 * name them `name`.l), drawn anyway with keep_draws so that later draws stay
 * those of a run without the override. */
enco_status enco_family_batch_patch_row(enco_trainer *t, const int32_t *given, int keep_draws,
                                        int32_t *perm, int hw, int K, const char *name, int l,
                                        const int32_t **row);
/* Adds the batch's n images of m at float offset off to out as
 * <prefix><name> (F32 n x output_nc x h x w): `enco-cl step`'s images. */
enco_status enco_family_add_images(enco_trainer *t, enco_st_file *out, const char *prefix,
                                   const char *name, cl_mem m, size_t off);

#endif
