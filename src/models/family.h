/* A model family: everything that makes one model of the comparison (EnCo,
 * CUT, FastCUT, ...) different from another, behind one table. The generic
 * trainer (src/train/trainer.c), checkpoints, the run folder, `step`,
 * `verify`, `translate`, `eval` and `bench --e2e` read the family instead of
 * naming any model's networks or losses. Adding a family: src/models/README.md. */
#ifndef ENCO_MODELS_FAMILY_H
#define ENCO_MODELS_FAMILY_H

#include "io/safetensors.h"
#include "train/trainer.h"

/* One phase of an iteration: the family computes the gradients of the
 * phase's networks (the trainer zeroed them), the trainer reduces them
 * (a no-op today: the seam for data-parallel training) and runs Adam on each
 * of them in order. */
typedef struct enco_phase_def {
    const char *name;           /* "D", "G+F" */
    int nnets;
    int nets[ENCO_MAX_NETS];    /* indices into the family's nets, in update order */
    int timer;                  /* timer booked after the updates, -1: none */
} enco_phase_def;

struct enco_family {
    const char *name;           /* the value of model.family */
    const char *summary;        /* one line for `config --list` and docs */
    const char *section;        /* its configuration section ("cut"), NULL: none */
    int nnets;
    const char *nets[ENCO_MAX_NETS];   /* "G", "D", "F": tensors are net<name>.<key> */
    int generator;              /* the net translate and eval run (A -> B) */
    int two_way;                /* also a B -> A generator (CycleGAN, DCLGAN): */
    int generator_b;            /* its net */
    int nphases;
    enco_phase_def phases[ENCO_MAX_PHASES];
    int ntimers;
    const char *timers[ENCO_MAX_TIMERS];

    /* Builds the networks into t->nets / t->gnet / t->dnet, sets
     * t->net_lr, allocates the family's state (t->state) and every buffer
     * an iteration needs. */
    enco_status (*plan)(enco_trainer *t);
    void (*release)(enco_trainer *t);
    /* After weights are initialised: resets the family's own state. */
    void (*reset)(enco_trainer *t);
    /* Optional: puts the iteration's inputs on the device and makes the
     * host-side draws that decide them (FastCUT's flip). NULL: real_A and
     * real_B go to t->real as they are. */
    enco_status (*upload)(enco_trainer *t, const float *real_a, const float *real_b,
                          const enco_sampling_override *ov);
    /* Computes phase `phase`'s gradients (and the losses it reports). The
     * inputs are in t->real. since: for enco_trainer_mark. */
    enco_status (*phase)(enco_trainer *t, int phase, const enco_sampling_override *ov,
                         double *since);
    /* Optional: the options the generators are built with (CycleGAN's nets
     * follow its own option, not model.no_antialias*). NULL: the model group's. */
    enco_model_config (*model_config)(const enco_config *cfg);
    /* Optional: state beyond weights and Adam (CycleGAN's image pools),
     * written into checkpoints and `enco-cl step`'s output under prefix,
     * read back from them (absent tensors: the fresh state). */
    enco_status (*save_state)(enco_trainer *t, enco_st_file *out, const char *prefix);
    enco_status (*load_state)(enco_trainer *t, const enco_st_file *in, const char *prefix);
    /* Optional: the images of the last iteration for `enco-cl step` under
     * prefix. NULL: fake_B (and idt_B) from t->fake, pred_fake from t->dnet. */
    enco_status (*write_images)(enco_trainer *t, enco_st_file *out, const char *prefix);
    /* Optional: why data-parallel training over several processes is not
     * (yet) the same math as one process for this configuration, or NULL
     * when it is: sharing the gradients must be all the iteration needs of
     * the whole batch. A family without this hook is refused. */
    const char *(*data_parallel_refusal)(const enco_trainer *t);
    /* Optional: makes the statistics the family computes over the batch
     * (BatchNorm in the heads) span every process's rows, summed by sync
     * (NULL: this process's alone). NULL: the family has none. */
    enco_status (*set_stat_sync)(enco_trainer *t, const enco_stat_sync *sync);
    /* Loss slots: count and names (see enco_trainer_loss_name). */
    int (*loss_count)(const enco_trainer *t);
    const char *(*loss_name)(const enco_trainer *t, int slot, char *buf, size_t size,
                             int *flags);
};

/* The families, NULL-terminated, and lookup by name (NULL if unknown). */
extern const enco_family *const enco_families[];
const enco_family *enco_family_find(const char *name);

extern const enco_family enco_family_enco;
extern const enco_family enco_family_cut;
extern const enco_family enco_family_fastcut;
extern const enco_family enco_family_cyclegan;
extern const enco_family enco_family_dclgan;

/* The generator options of a family (model_config, or the model group's). */
enco_model_config enco_family_generator_config(const enco_family *fam, const enco_config *cfg);

#endif
