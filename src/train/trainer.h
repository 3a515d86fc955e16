/* One EnCo training iteration on the device (spec ENCO.md section 6): the
 * networks, their optimiser state, the sampling generator and every buffer
 * an iteration needs, planned once at creation. */
#ifndef ENCO_TRAIN_TRAINER_H
#define ENCO_TRAIN_TRAINER_H

#include "nn/heads.h"
#include "nn/models.h"
#include "ops/rng.h"
#include "train/config.h"

/* Scalars an iteration leaves in the loss buffer (floats). */
enum {
    ENCO_LOSS_D_FAKE = 0,
    ENCO_LOSS_D_REAL,
    ENCO_LOSS_D,
    ENCO_LOSS_GAN_RAW,
    ENCO_LOSS_G_GAN,
    ENCO_LOSS_ENCO,
    ENCO_LOSS_IDT_RAW,
    ENCO_LOSS_IDT,
    ENCO_LOSS_G,
    ENCO_LOSS_ENCO_PAIR0, /* + p for pair p */
    ENCO_LOSS_SLOTS = ENCO_LOSS_ENCO_PAIR0 + ENCO_MAX_PAIRS
};

/* Phases of an iteration, timed when enco_trainer.profile is set. */
typedef enum enco_phase {
    ENCO_PHASE_G_FORWARD = 0,
    ENCO_PHASE_D_STEP,      /* D forward, losses, backward, Adam on D */
    ENCO_PHASE_G_GAN,       /* D forward on fake_B and backward to the image */
    ENCO_PHASE_HEADS,       /* sampling, heads forward and backward, EnCo loss */
    ENCO_PHASE_G_BACKWARD,
    ENCO_PHASE_OPTIMIZER,   /* Adam on G and F */
    ENCO_PHASE_COUNT
} enco_phase;

typedef struct enco_trainer {
    enco_ctx *ctx;
    enco_config cfg;
    int n, h, w;             /* batch and image size */
    int npairs;
    int key_layer[ENCO_MAX_PAIRS], query_layer[ENCO_MAX_PAIRS];
    int fc[ENCO_MAX_PAIRS], fh[ENCO_MAX_PAIRS], fw[ENCO_MAX_PAIRS]; /* feature shapes */
    int k[ENCO_MAX_PAIRS];   /* patches per image of each pair */
    enco_param_set G, D, F;
    enco_seqnet gnet, dnet;
    enco_heads heads;
    int ph, pw;              /* discriminator output size */

    cl_mem real;             /* (2N, 3, H, W): real_A then real_B */
    cl_mem d_in;             /* (2N, 3, H, W): D step input, fake_B then real_B */
    cl_mem dpred;            /* (2N, 1, ph, pw) */
    cl_mem g_dy;             /* (2N, 3, H, W) gradient of G's output */
    cl_mem losses;           /* (ENCO_LOSS_SLOTS) */
    cl_mem work;             /* loss scratch */
    size_t work_floats;
    cl_mem score[ENCO_MAX_PAIRS];  /* (N, 1, fh, fw) */
    cl_mem idx[ENCO_MAX_PAIRS];    /* (N, K) int32 */
    cl_mem cand, cover;            /* (N, max fh*fw) int32 */
    int32_t *perm_host;            /* per pair: cand then cover draws (2, N, fh*fw), staged
                                    * for non-blocking uploads within an iteration */
    size_t perm_stride;            /* int32 per pair in perm_host */
    cl_mem dq[ENCO_MAX_PAIRS];     /* (N*K, nc) */
    cl_mem dfeat[ENCO_MAX_PAIRS];  /* (N, C, fh, fw) */

    enco_rng rng;            /* sampling draws (permutations) */
    long long iteration;     /* iterations done */
    double lr_scale;         /* learning-rate schedule factor (1 = base) */
    int idt_on;              /* identity term on in this phase */
    int profile;             /* time phases (adds a device sync per phase) */
    double phase_seconds[ENCO_PHASE_COUNT]; /* accumulated while profiling */
} enco_trainer;

/* Plans everything for batches of n images of h x w (multiples of 4). */
enco_status enco_trainer_create(enco_ctx *ctx, const enco_config *cfg, int n, int h, int w,
                                enco_trainer **out);
void enco_trainer_free(enco_trainer *t);
/* Initialises G, D and F from cfg.train.seed (spec section 6: xavier_normal
 * gain init_gain, biases 0, norms weight 1 bias 0, fixed blur filters) and
 * resets the optimiser and sampling state. */
enco_status enco_trainer_init_weights(enco_trainer *t);

/* Replaces the trainer's own sampling draws (for parity tests with another
 * implementation). Per pair p, either patch_ids[p] (n, k[p]) positions used
 * as they are, or DAG draws: cand[p] (n, M) candidates and cover[p] (n, R)
 * covering positions (M = min(oversample * K, H*W), R = floor(K * ratio))
 * ranked by this engine's score map. NULL entries fall back to sampling. */
typedef struct enco_sampling_override {
    const int32_t *patch_ids[ENCO_MAX_PAIRS];
    const int32_t *cand[ENCO_MAX_PAIRS];
    const int32_t *cover[ENCO_MAX_PAIRS];
    /* Draw the generator's permutations for every pair even where the above
     * replace them, so that the iterations after this one draw what they
     * would have drawn without the override (verify's replays). */
    int keep_draws;
} enco_sampling_override;

/* One iteration. real_a, real_b: (n, 3, h, w) host floats in [-1, 1].
 * ov: NULL to sample with the trainer's generator. */
enco_status enco_trainer_step(enco_trainer *t, const float *real_a, const float *real_b,
                              const enco_sampling_override *ov);
/* The indices (n, k[p]) the last iteration used for pair p (host int32). */
enco_status enco_trainer_patch_ids(enco_trainer *t, int p, int32_t *out);

/* Reads the loss scalars of the last iteration (waits for the device). */
enco_status enco_trainer_losses(enco_trainer *t, float out[ENCO_LOSS_SLOTS]);

#endif
