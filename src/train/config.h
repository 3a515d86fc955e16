/* Run configuration: one option table drives parsing (libconfig files and
 * --set overrides), validation, help text and dumping the effective values. */
#ifndef ENCO_TRAIN_CONFIG_H
#define ENCO_TRAIN_CONFIG_H

#include "core/internal.h"

#define ENCO_MAX_NCE_LAYERS 16
#define ENCO_CFG_STR 512

/* The options of a CUT-like family (cut, fastcut: same keys, their own
 * defaults; docs/cut.md). */
typedef struct enco_cut_config {
    double lambda_GAN, lambda_NCE;
    int nce_idt;
    int nce_layers[ENCO_MAX_NCE_LAYERS];
    int n_nce_layers;
    double nce_T;
    int num_patches, netF_nc;
    int nce_includes_all_negatives_from_minibatch;
    int nce_flip_equivariance;
    double lr;
} enco_cut_config;

/* CycleGAN's options (docs/cyclegan.md). */
typedef struct enco_cyclegan_config {
    double lambda_A, lambda_B, lambda_identity;
    int pool_size;
    double lr;
    char nets[8];               /* gpu | cpu: the reference's nets on a GPU or on a CPU */
} enco_cyclegan_config;

/* DCLGAN's options (docs/dclgan.md). */
typedef struct enco_dclgan_config {
    double lambda_GAN, lambda_NCE, lambda_IDT;
    int nce_idt;
    int nce_layers[ENCO_MAX_NCE_LAYERS];
    int n_nce_layers;
    double nce_T;
    int num_patches, netF_nc;
    double lr, lr_F, beta1_F;
} enco_dclgan_config;

typedef struct enco_config {
    struct {
        char family[16];        /* enco | cut | fastcut | cyclegan | dclgan */
        int input_nc, output_nc;
        int ngf, n_blocks, ndf, n_layers_D;
        int nce_layers[ENCO_MAX_NCE_LAYERS];
        int n_nce_layers;
        int netF_nc;
        char prj_norm[16];      /* bn | ln | none */
        int no_antialias, no_antialias_up;
    } model;
    struct {
        double lambda_GAN, lambda_NCE, lambda_IDT;
        int nce_idt;
        int num_patches;
        char sampling[16];      /* dag | random */
        int oversample_ratio;
        double random_ratio;
        char dag_order[16];     /* ascending | descending */
        double lr_G, lr_D, lr_F, beta1, beta2, eps, init_gain;
        long long seed;
        int batch_size;
        int n_epochs, n_epochs_decay, epoch_count, warmup_epochs, stop_idt_epochs;
        char lr_policy[16];     /* linear | constant */
        int dp_bucket_kb;       /* several processes: gradient bucket size */
    } train;
    struct {
        char root[ENCO_CFG_STR];
        char preprocess[32];    /* resize_and_crop | crop | scale_width_and_crop | none */
        int load_size, crop_size;
        int no_flip, serial_batches, flip_equivariance;
        int threads;
        int max_items;          /* 0: all */
        int synthetic;          /* make the synthetic task in root if it is missing */
        int synth_train, synth_test;
    } data;
    struct {
        char dir[ENCO_CFG_STR];
        int print_every, sample_every, save_every;
        int eval_every;         /* scores on the test pairs (0: at the end only) */
        int max_iterations;     /* 0: run every epoch */
    } run;
    enco_cut_config cut, fastcut;
    enco_cyclegan_config cyclegan;
    enco_dclgan_config dclgan;
} enco_config;

typedef enum enco_opt_type {
    ENCO_OPT_INT,
    ENCO_OPT_INT64,
    ENCO_OPT_FLOAT,
    ENCO_OPT_BOOL,
    ENCO_OPT_STRING,
    ENCO_OPT_INT_LIST,
} enco_opt_type;

typedef struct enco_option {
    const char *key;        /* "group.name" */
    enco_opt_type type;
    size_t offset;          /* into enco_config */
    size_t count_offset;    /* ENCO_OPT_INT_LIST: offset of the int count */
    double min, max;        /* numeric range (inclusive) */
    const char *choices;    /* ENCO_OPT_STRING: "a|b|c", or NULL for free text */
    const char *def;        /* default, as written in a config file */
    const char *help;
} enco_option;

extern const enco_option enco_options[];
extern const size_t enco_options_count;

/* Every option at its default. */
void enco_config_defaults(enco_config *cfg);
/* Reads a libconfig file on top of cfg. Errors name the file, the line, the
 * key and the reason; unknown keys get a "did you mean" suggestion. */
enco_status enco_config_load(enco_config *cfg, const char *path);
/* The same from text in memory (e.g. a checkpoint's metadata); `name`
 * stands for the file in messages. */
enco_status enco_config_load_text(enco_config *cfg, const char *text, const char *name);
/* Applies "group.key=value" (a --set override). */
enco_status enco_config_set(enco_config *cfg, const char *assignment);
/* Checks cross-option rules (e.g. symmetric nce_layers). */
enco_status enco_config_validate(const enco_config *cfg);
/* Writes the effective configuration in libconfig syntax (malloc'd). */
char *enco_config_dump(const enco_config *cfg);

#endif
