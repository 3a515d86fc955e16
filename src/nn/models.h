/* The EnCo networks (spec ENCO.md sections 1-2): the ResNet generator and the
 * PatchGAN discriminator, built as sequential networks whose parameter names
 * and module numbers are the reference implementation's. */
#ifndef ENCO_NN_MODELS_H
#define ENCO_NN_MODELS_H

#include "nn/seqnet.h"

typedef struct enco_model_config {
    int input_nc, output_nc;  /* 3, 3 */
    int ngf, n_blocks;        /* 64, 9 */
    int ndf, n_layers_d;      /* 64, 3 */
    int no_antialias;         /* stride-2 convs instead of conv + Downsample */
    int no_antialias_up;      /* ConvTranspose2d instead of Upsample + conv */
} enco_model_config;

/* The paper's defaults. */
enco_model_config enco_model_config_default(void);

/* Builds G for inputs (max_n, input_nc, h, w); h and w must be multiples of 4. */
enco_status enco_generator_build(enco_seqnet *net, enco_param_set *ps,
                                 const enco_model_config *cfg, int max_n, int h, int w);
/* Builds D for inputs (max_n, output_nc, h, w). */
enco_status enco_discriminator_build(enco_seqnet *net, enco_param_set *ps,
                                     const enco_model_config *cfg, int max_n, int h, int w);

/* ENCO_OK when G and D build for h x w images; otherwise
 * ENCO_ERR_INVALID_ARG with a message naming the smallest square size they
 * take (a deep discriminator shrinks its input to nothing: 24 for the
 * default three layers). Allocates nothing on a device. */
enco_status enco_models_check_size(const enco_model_config *cfg, int h, int w);
/* The smallest multiple of 4 (up to 4096) whose square images G and D
 * build for; 0 if none. */
int enco_models_min_size(const enco_model_config *cfg);
/* enco_generator_build (for gn images) and enco_discriminator_build (dn)
 * of h x w images; where they fail because the images are too small, the
 * error is enco_models_check_size's, naming the smallest size. */
enco_status enco_models_build(const enco_model_config *cfg, int h, int w, enco_seqnet *gnet,
                              enco_param_set *g, int gn, enco_seqnet *dnet, enco_param_set *d,
                              int dn);

#endif
