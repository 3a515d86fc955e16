/* The generic training iteration: a model family (src/models/) declares its
 * networks, parameter groups, losses and the ordered phases of one
 * iteration; the trainer runs each phase as "zero the phase's gradients,
 * let the family compute them, reduce them (the hook where data-parallel
 * training will sum them across devices; nothing today), Adam on the
 * phase's groups". Everything an iteration needs is planned once at
 * creation. */
#ifndef ENCO_TRAIN_TRAINER_H
#define ENCO_TRAIN_TRAINER_H

#include "nn/heads.h"
#include "nn/models.h"
#include "ops/rng.h"
#include "train/config.h"

#define ENCO_MAX_NETS 6
#define ENCO_MAX_PHASES 4
#define ENCO_MAX_TIMERS 8
/* Loss scalars an iteration may leave (the family names them). */
#define ENCO_LOSS_SLOTS 32

typedef struct enco_family enco_family;

/* Replaces the trainer's own random draws (for parity tests with another
 * implementation and verify's replays). Per sampled map p (EnCo: pair p;
 * CUT: nce layer p), either patch_ids[p] (n, k[p]) positions used as they
 * are, or (EnCo's DAG) cand[p] (n, M) candidates and cover[p] (n, R)
 * covering positions (M = min(oversample * K, H*W), R = floor(K * ratio))
 * ranked by this engine's score map. NULL entries fall back to sampling. */
typedef struct enco_sampling_override {
    const int32_t *patch_ids[ENCO_MAX_PAIRS];
    const int32_t *patch_ids_Y[ENCO_MAX_PAIRS]; /* CUT: NCE(real_B, idt_B)'s ids */
    const int32_t *cand[ENCO_MAX_PAIRS];
    const int32_t *cover[ENCO_MAX_PAIRS];
    const int *flipped;      /* FastCUT's flip draw (0 or 1); NULL: drawn */
    /* CycleGAN's image pools, [0] the pool of fake_A images, [1] of fake_B:
     * per image of a query, u in [0, 1) (swap with a stored image when
     * u > 0.5, once the pool is full) and the stored image taken. */
    const float *pool_u[2];
    const int32_t *pool_id[2];
    /* Draw the generator's permutations even where the above replace them,
     * so that the iterations after this one draw what they would have drawn
     * without the override (verify's replays). */
    int keep_draws;
} enco_sampling_override;

/* Data-parallel training: the processes that share each batch, and how a
 * phase's gradients are summed across them (the seam between the trainer's
 * phases and their optimizer steps). sum must leave the same bits in buf
 * on every process. */
typedef struct enco_grad_reducer {
    int size, rank;          /* processes; this one's place, 0 .. size-1 */
    void *user;
    enco_status (*sum)(void *user, float *buf, size_t n);
    /* Every process's `bytes` bytes of mine into all (size * bytes, process
     * order), on every process: what a family shares beyond the gradients
     * (the batch's PatchNCE keys, the fakes an image pool sees). NULL: the
     * families that need it are refused. */
    enco_status (*allgather)(void *user, const void *mine, void *all, size_t bytes);
    /* The same for doubles: the statistics that span the whole batch (the
     * heads' BatchNorm). Required by families that have them. */
    enco_status (*sum_doubles)(void *user, double *buf, size_t n);
} enco_grad_reducer;

/* Data-parallel: one network's gradients on their way between processes,
 * in buckets enqueued while its backward runs (enco_trainer_watch_grads). */
typedef struct enco_grad_watch {
    struct enco_seqnet *sn; /* watched in this phase (its hook armed); NULL: not */
    size_t hi;              /* gradients [hi, n_params) are in enqueued buckets */
    int nb, cap;            /* buckets enqueued; room */
    size_t *lo_of;          /* bucket b: [lo_of[b], b ? lo_of[b - 1] : n_params) */
    cl_event *ev;           /* bucket b's download */
    float *host;            /* staging (n_params floats) */
} enco_grad_watch;

typedef struct enco_trainer {
    enco_ctx *ctx;
    enco_config cfg;
    const enco_family *family;
    int n, h, w;             /* batch and image size */

    /* The family's networks' parameters, in the family's order. The
     * families of today (enco, cut, fastcut) have G, D and F: nets 0..2. */
    int nnets;
    union {
        enco_param_set nets[ENCO_MAX_NETS];
        struct {
            enco_param_set G, D, F;
        };
    };
    double net_lr[ENCO_MAX_NETS]; /* base learning rate of each net's optimizer */
    /* The sequential network each net's parameters belong to (NULL for the
     * heads): what verify and the tests read the layer structure from. */
    const enco_seqnet *netdef[ENCO_MAX_NETS];
    /* Nets whose modules' outputs the contrastive loss reads (loss_features):
     * their conv biases before an InstanceNorm get true gradients. */
    int loss_feature_net[ENCO_MAX_NETS];
    /* Adam's betas of each net's optimizer (train.beta1, train.beta2 unless
     * the family says otherwise: DCLGAN's F). */
    double net_beta1[ENCO_MAX_NETS], net_beta2[ENCO_MAX_NETS];

    /* Filled by families with one generator and one discriminator. */
    enco_seqnet gnet, dnet;
    int ph, pw;              /* discriminator output size */
    /* Sampled feature maps: count, patches per image, map size, the indices
     * (n, k[p]) int32 of the last iteration; score[p] is the map the picks
     * were ranked by (EnCo's DAG; NULL where picks do not depend on it). */
    /* G's modules whose outputs the contrastive loss reads (their outputs
     * get gradients of their own: a conv bias there is no longer noise). */
    int nloss_features;
    int loss_features[ENCO_MAX_NCE_LAYERS];
    int npairs;
    int fc[ENCO_MAX_PAIRS], fh[ENCO_MAX_PAIRS], fw[ENCO_MAX_PAIRS];
    int k[ENCO_MAX_PAIRS];
    cl_mem idx[ENCO_MAX_PAIRS];
    cl_mem score[ENCO_MAX_PAIRS];
    int ranked_picks;        /* the picks depend on score (EnCo's DAG sampling) */
    /* CUT's families: NCE_Y's indices (n, k[p]) and the flip draw; DCLGAN:
     * NCE2's indices, named draws_y_name ("patch_ids_2"; NULL: "patch_ids_Y"). */
    int has_draws_y, has_flip;
    const char *draws_y_name;
    cl_mem idx_y[ENCO_MAX_PAIRS];
    int flipped;
    /* The translation of the last iteration: fake_B (n images), then idt_B
     * (n more) when has_idt. */
    cl_mem fake;
    size_t fake_off;
    int has_idt;
    int has_pool;            /* CycleGAN: pool draws are inputs of `step` */

    cl_mem real;             /* (2N, C, H, W): real_A then real_B of this iteration */
    cl_mem losses;           /* (ENCO_LOSS_SLOTS) */
    void *state;             /* the family's own */

    enco_rng rng;            /* sampling draws */
    enco_grad_reducer reducer; /* size 0 or 1: a single process */
    enco_grad_watch watch[ENCO_MAX_NETS]; /* several processes: each net's buckets */
    struct enco_trainer *watch_self[ENCO_MAX_NETS]; /* the seqnet hooks' user: &watch_self[net] */
    size_t bucket_floats;    /* train.dp_bucket_kb in floats */
    long dp_buckets, dp_overlapped; /* buckets summed; of them, before the backward ended */
    float *gather_host;      /* staging of enco_family_allgather (grows once) */
    size_t gather_cap;       /* its floats */
    long long iteration;     /* iterations done */
    double lr_scale;         /* learning-rate schedule factor (1 = base) */
    int idt_on;              /* identity term on in this phase (EnCo: train.stop_idt_epochs) */
    int profile;             /* time the family's timers (adds a device sync per mark) */
    double phase_seconds[ENCO_MAX_TIMERS]; /* accumulated while profiling */
} enco_trainer;

/* Plans everything for batches of n images of h x w (multiples of 4), for
 * the family cfg->model.family. */
enco_status enco_trainer_create(enco_ctx *ctx, const enco_config *cfg, int n, int h, int w,
                                enco_trainer **out);
void enco_trainer_free(enco_trainer *t);
/* Initialises every network from cfg.train.seed (xavier_normal gain
 * init_gain, biases 0, norms weight 1 bias 0, fixed blur filters) and
 * resets the optimiser and sampling state. */
enco_status enco_trainer_init_weights(enco_trainer *t);

/* One iteration. real_a, real_b: (n, 3, h, w) host floats in [-1, 1].
 * ov: NULL to draw with the trainer's generator. */
enco_status enco_trainer_step(enco_trainer *t, const float *real_a, const float *real_b,
                              const enco_sampling_override *ov);
/* The indices (n, k[p]) the last iteration used for map p (host int32). */
enco_status enco_trainer_patch_ids(enco_trainer *t, int p, int32_t *out);

/* Whether G's module `module` is one of t->loss_features. */
int enco_trainer_loss_feature(const enco_trainer *t, int module);

/* Reads the loss scalars of the last iteration (waits for the device). */
enco_status enco_trainer_losses(enco_trainer *t, float out[ENCO_LOSS_SLOTS]);
/* The same, averaged over the processes of data-parallel training (every
 * process must call it at the same iteration). */
enco_status enco_trainer_losses_mean(enco_trainer *t, float out[ENCO_LOSS_SLOTS]);

/* Makes this trainer one of r->size processes that train one model on
 * batches of r->size * n images: after each phase, the phase's gradients
 * are summed across the processes by r->sum and divided by r->size before
 * the optimizer steps, so that every process takes the step one process
 * would take on the whole batch; statistics over the whole batch (the heads'
 * BatchNorm) are summed by r->sum_doubles. Refused (ENCO_ERR_UNSUPPORTED, naming why)
 * for the families and options whose iteration needs more than the
 * gradients shared (statistics or draws over the whole batch). */
enco_status enco_trainer_set_reducer(enco_trainer *t, const enco_grad_reducer *r);
/* Called by a family right before the last backward of network `net` (whose
 * definition is sn) in a phase: with several processes, its gradients are
 * then downloaded in buckets of train.dp_bucket_kb as the backward enqueues
 * them, layer by layer from the output, and each bucket is summed across the
 * processes while the device still runs the backward of the layers below
 * (as DDP's buckets). The bits are those of one bucket: the sums are
 * element by element. One process: nothing. */
enco_status enco_trainer_watch_grads(enco_trainer *t, int net, struct enco_seqnet *sn);
/* Buckets summed so far, and how many of them were summed before their
 * phase's backward had finished on the device (communication hidden). */
void enco_trainer_dp_stats(const enco_trainer *t, long *buckets, long *overlapped);

/* ---- What the family says about its losses and timers ---- */
enum {
    ENCO_LOSS_LOGGED = 1, /* in losses.jsonl, the progress line and index.html */
    ENCO_LOSS_STEP = 2,   /* written by `enco-cl step` as loss.<name> */
};
/* Number of loss slots the family uses with this configuration. */
int enco_trainer_loss_count(const enco_trainer *t);
/* Name of slot i ("D", "G_GAN", "EnCo.0", ...; the reference's loss_<name>)
 * into buf; *flags: ENCO_LOSS_* bits. NULL past the last slot. */
const char *enco_trainer_loss_name(const enco_trainer *t, int i, char *buf, size_t size,
                                   int *flags);
/* The slot of the loss named name, -1 if none. */
int enco_trainer_loss_slot(const enco_trainer *t, const char *name);
/* Timers of the family (bench's phase split) and their names. */
int enco_trainer_timer_count(const enco_trainer *t);
const char *enco_trainer_timer_name(const enco_trainer *t, int i);

/* For families: ends timer `timer` (profiling only: waits for the device
 * and books the time since *since). */
enco_status enco_trainer_mark(enco_trainer *t, int timer, double *since);

#endif
