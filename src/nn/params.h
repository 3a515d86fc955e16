/* Named parameter sets of a network (G, D or F), llm.c style: every trainable
 * tensor is a view into one flat device block, with flat gradient and Adam
 * moment blocks beside it; fixed buffers (blur filters, BatchNorm running
 * statistics) live in a second flat block. Names are the reference
 * implementation's state-dict keys so checkpoints move to and from PyTorch. */
#ifndef ENCO_NN_PARAMS_H
#define ENCO_NN_PARAMS_H

#include "core/internal.h"
#include "io/safetensors.h"
#include "ops/rng.h"

#define ENCO_PARAM_NAME_MAX 96

typedef enum enco_param_init {
    ENCO_INIT_XAVIER = 0,  /* xavier_normal, gain 0.02 (spec section 6) */
    ENCO_INIT_ZERO,
    ENCO_INIT_ONE,
    ENCO_INIT_BLUR_DOWN,   /* fixed Downsample filter */
    ENCO_INIT_BLUR_UP,     /* fixed Upsample filter */
} enco_param_init;

typedef struct enco_param {
    char name[ENCO_PARAM_NAME_MAX]; /* key without the net prefix: "model.1.weight" */
    int ndim;
    int64_t shape[4];
    size_t numel;
    size_t offset;       /* elements into params (trainable) or buffers (fixed) */
    int trainable;
    enco_param_init init;
    size_t fan_in, fan_out; /* for xavier */
} enco_param;

/* A BatchNorm's num_batches_tracked counter: int64 in PyTorch, kept on the host. */
typedef struct enco_counter {
    char name[ENCO_PARAM_NAME_MAX];
    int64_t value;
} enco_counter;

typedef struct enco_param_set {
    char prefix[8];          /* "netG." */
    enco_param *list;
    size_t count, cap;
    enco_counter *counters;
    size_t ncounters, cap_counters;
    size_t n_params;         /* trainable floats */
    size_t n_buffers;        /* fixed floats */
    cl_mem params, grads, adam_m, adam_v; /* (n_params) each */
    cl_mem buffers;                        /* (n_buffers) */
    int64_t adam_step;       /* Adam steps taken on this set */
} enco_param_set;

void enco_params_init(enco_param_set *ps, const char *prefix);
/* Declares a tensor; returns its index. Offsets are assigned in order. */
enco_status enco_params_declare(enco_param_set *ps, const char *name, int ndim,
                                const int64_t *shape, int trainable, enco_param_init init,
                                size_t *index);
/* Declares a weight with xavier init: fan counts from shape (conv or linear). */
enco_status enco_params_weight(enco_param_set *ps, const char *name, int ndim,
                               const int64_t *shape, size_t *index);
enco_status enco_params_counter(enco_param_set *ps, const char *name);
const enco_param *enco_params_find(const enco_param_set *ps, const char *name);

/* Allocates the device blocks (params, grads, moments, buffers; all zero). */
enco_status enco_params_alloc(enco_ctx *ctx, enco_param_set *ps);
/* Initialises every tensor per its init rule with draws from rng (host side,
 * uploaded: identical on every device); gain: the xavier_normal gain
 * (train.init_gain, the reference's --init_gain). */
enco_status enco_params_initialize(enco_ctx *ctx, enco_param_set *ps, enco_rng *rng, double gain);
void enco_params_free(enco_ctx *ctx, enco_param_set *ps);

/* Device block and offset of a tensor's values (params or buffers). */
cl_mem enco_params_mem(const enco_param_set *ps, const enco_param *p);

/* Copies every tensor into f as "<prefix><name>" (F32; counters I64);
 * with a non-NULL tag, also grads as "grad.<prefix><name>" etc.: see .c. */
enco_status enco_params_save(enco_ctx *ctx, const enco_param_set *ps, enco_st_file *f,
                             const char *key_prefix);
/* Same for the gradients of trainable tensors ("<key_prefix><prefix><name>"). */
enco_status enco_params_save_grads(enco_ctx *ctx, const enco_param_set *ps, enco_st_file *f,
                                   const char *key_prefix);
enco_status enco_params_save_moments(enco_ctx *ctx, const enco_param_set *ps, enco_st_file *f);
/* Loads every tensor from f ("<key_prefix><prefix><name>"); a missing tensor,
 * wrong dtype or shape fails naming the first mismatch. With require_all = 0
 * missing counters are tolerated (PyTorch files may lack them). */
enco_status enco_params_load(enco_ctx *ctx, enco_param_set *ps, const enco_st_file *f,
                             const char *key_prefix);
enco_status enco_params_load_moments(enco_ctx *ctx, enco_param_set *ps, const enco_st_file *f);

#endif
