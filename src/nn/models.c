/* ResNet generator and PatchGAN discriminator, numbered like the reference
 * nn.Sequential so that `model.<i>` names and nce_layers mean the same. */
#include "nn/models.h"

#include <string.h>

#include <stdio.h>

enco_model_config enco_model_config_default(void)
{
    return (enco_model_config){.input_nc = 3, .output_nc = 3, .ngf = 64, .n_blocks = 9,
                               .ndf = 64, .n_layers_d = 3};
}

static const char *name_of(char *buf, size_t size, int module)
{
    snprintf(buf, size, "model.%d", module);
    return buf;
}

enco_status enco_generator_build(enco_seqnet *net, enco_param_set *ps,
                                 const enco_model_config *cfg, int max_n, int h, int w)
{
    if (h % 4 != 0 || w % 4 != 0 || h < 8 || w < 8)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "generator input %dx%d: height and width must be multiples of 4 and at "
                         "least 8",
                         h, w);
    if (cfg->ngf < 1 || cfg->n_blocks < 0 || cfg->input_nc < 1 || cfg->output_nc < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bad generator configuration");
    char nm[64];
    int ngf = cfg->ngf;
    ENCO_TRY(enco_seqnet_begin(net, ps, max_n, cfg->input_nc, h, w));
    /* 0 ReflectionPad2d(3) (fused), 1 Conv 7x7, 2 IN, 3 ReLU */
    ENCO_TRY(enco_seqnet_conv(net, 1, name_of(nm, sizeof nm, 1), ngf, 7, 1, 3, ENCO_PAD_REFLECT,
                              1));
    ENCO_TRY(enco_seqnet_inorm(net, 3, ENCO_NORM_ACT_RELU, 0));
    int m = 4;
    for (int i = 0; i < 2; i++) {
        int c = ngf << (i + 1);
        if (cfg->no_antialias) { /* Conv s2, IN, ReLU */
            ENCO_TRY(enco_seqnet_conv(net, m, name_of(nm, sizeof nm, m), c, 3, 2, 1, ENCO_PAD_ZERO,
                                      1));
            ENCO_TRY(enco_seqnet_inorm(net, m + 2, ENCO_NORM_ACT_RELU, 0));
            m += 3;
        } else { /* Conv s1, IN, ReLU, Downsample */
            ENCO_TRY(enco_seqnet_conv(net, m, name_of(nm, sizeof nm, m), c, 3, 1, 1, ENCO_PAD_ZERO,
                                      1));
            ENCO_TRY(enco_seqnet_inorm(net, m + 2, ENCO_NORM_ACT_RELU, 0));
            ENCO_TRY(enco_seqnet_down(net, m + 3, name_of(nm, sizeof nm, m + 3)));
            m += 4;
        }
    }
    int c = ngf * 4;
    for (int b = 0; b < cfg->n_blocks; b++, m++) {
        /* ResnetBlock: x + [ReflPad, Conv, IN, ReLU, ReflPad, Conv, IN](x) */
        int skip = enco_seqnet_mark(net);
        char cb[64];
        snprintf(cb, sizeof cb, "model.%d.conv_block.1", m);
        ENCO_TRY(enco_seqnet_conv(net, -1, cb, c, 3, 1, 1, ENCO_PAD_REFLECT, 1));
        ENCO_TRY(enco_seqnet_inorm(net, -1, ENCO_NORM_ACT_RELU, 0));
        snprintf(cb, sizeof cb, "model.%d.conv_block.5", m);
        ENCO_TRY(enco_seqnet_conv(net, -1, cb, c, 3, 1, 1, ENCO_PAD_REFLECT, 1));
        ENCO_TRY(enco_seqnet_inorm(net, -1, ENCO_NORM_ACT_NONE, 0));
        ENCO_TRY(enco_seqnet_add(net, m, skip));
    }
    for (int i = 0; i < 2; i++) {
        int co = c / 2;
        if (cfg->no_antialias_up) { /* ConvTranspose s2, IN, ReLU */
            ENCO_TRY(enco_seqnet_convt(net, m, name_of(nm, sizeof nm, m), co, 3, 2, 1, 1));
            ENCO_TRY(enco_seqnet_inorm(net, m + 2, ENCO_NORM_ACT_RELU, 0));
            m += 3;
        } else { /* Upsample, Conv s1, IN, ReLU */
            ENCO_TRY(enco_seqnet_up(net, m, name_of(nm, sizeof nm, m)));
            ENCO_TRY(enco_seqnet_conv(net, m + 1, name_of(nm, sizeof nm, m + 1), co, 3, 1, 1,
                                      ENCO_PAD_ZERO, 1));
            ENCO_TRY(enco_seqnet_inorm(net, m + 3, ENCO_NORM_ACT_RELU, 0));
            m += 4;
        }
        c = co;
    }
    /* ReflectionPad2d(3) (fused), Conv 7x7, Tanh */
    ENCO_TRY(enco_seqnet_conv(net, m + 1, name_of(nm, sizeof nm, m + 1), cfg->output_nc, 7, 1, 3,
                              ENCO_PAD_REFLECT, 1));
    return enco_seqnet_tanh(net, m + 2);
}

enco_status enco_discriminator_build(enco_seqnet *net, enco_param_set *ps,
                                     const enco_model_config *cfg, int max_n, int h, int w)
{
    if (cfg->ndf < 1 || cfg->n_layers_d < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bad discriminator configuration");
    char nm[64];
    int ndf = cfg->ndf, aa = !cfg->no_antialias;
    ENCO_TRY(enco_seqnet_begin(net, ps, max_n, cfg->output_nc, h, w));
    ENCO_TRY(enco_seqnet_conv(net, 0, "model.0", ndf, 4, aa ? 1 : 2, 1, ENCO_PAD_ZERO, 1));
    ENCO_TRY(enco_seqnet_act(net, 1, ENCO_NORM_ACT_LEAKY, 0.2f));
    int m = 2;
    if (aa) {
        ENCO_TRY(enco_seqnet_down(net, 2, "model.2"));
        m = 3;
    }
    for (int n = 1; n <= cfg->n_layers_d; n++) {
        int mult = 1 << (n < 3 ? n : 3);
        int last = n == cfg->n_layers_d;
        int stride = last || aa ? 1 : 2;
        ENCO_TRY(enco_seqnet_conv(net, m, name_of(nm, sizeof nm, m), ndf * mult, 4, stride, 1,
                                  ENCO_PAD_ZERO, 1));
        ENCO_TRY(enco_seqnet_inorm(net, m + 2, ENCO_NORM_ACT_LEAKY, 0.2f));
        if (aa && !last) {
            ENCO_TRY(enco_seqnet_down(net, m + 3, name_of(nm, sizeof nm, m + 3)));
            m += 4;
        } else {
            m += 3;
        }
    }
    return enco_seqnet_conv(net, m, name_of(nm, sizeof nm, m), 1, 4, 1, 1, ENCO_PAD_ZERO, 1);
}

/* Builds G and D for one h x w image and frees them again (host only). */
static enco_status try_build(const enco_model_config *cfg, int h, int w)
{
    enco_param_set g, d;
    enco_seqnet gn, dn;
    memset(&gn, 0, sizeof gn);
    memset(&dn, 0, sizeof dn);
    enco_params_init(&g, "netG.");
    enco_params_init(&d, "netD.");
    enco_status st = enco_generator_build(&gn, &g, cfg, 1, h, w);
    if (st == ENCO_OK)
        st = enco_discriminator_build(&dn, &d, cfg, 1, h, w);
    enco_seqnet_free(NULL, &gn);
    enco_seqnet_free(NULL, &dn);
    enco_params_free(NULL, &g);
    enco_params_free(NULL, &d);
    return st;
}

int enco_models_min_size(const enco_model_config *cfg)
{
    for (int s = 4; s <= 4096; s += 4)
        if (try_build(cfg, s, s) == ENCO_OK)
            return s;
    return 0;
}

enco_status enco_models_check_size(const enco_model_config *cfg, int h, int w)
{
    const int mult4 = h >= 4 && w >= 4 && h % 4 == 0 && w % 4 == 0;
    if (mult4 && try_build(cfg, h, w) == ENCO_OK)
        return ENCO_OK;
    const int min = enco_models_min_size(cfg);
    if (mult4 && min && h >= min && w >= min)
        return try_build(cfg, h, w); /* not a size problem: its own error */
    return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                     "images of %dx%d are too small or not multiples of 4 for this model "
                     "(discriminator layers %d): sides must be multiples of 4 and at least %d",
                     h, w, cfg->n_layers_d, min);
}

enco_status enco_models_build(const enco_model_config *cfg, int h, int w, enco_seqnet *gnet,
                              enco_param_set *g, int gn, enco_seqnet *dnet, enco_param_set *d,
                              int dn)
{
    enco_status st = enco_generator_build(gnet, g, cfg, gn, h, w);
    if (st == ENCO_OK)
        st = enco_discriminator_build(dnet, d, cfg, dn, h, w);
    if (st == ENCO_OK)
        return ENCO_OK;
    /* Only on failure: is it the size? Then say which sizes work. */
    const enco_status size_st = enco_models_check_size(cfg, h, w);
    return size_st != ENCO_OK ? size_st : st;
}
