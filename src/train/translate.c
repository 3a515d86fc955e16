/* Generator-only inference. */
#include "train/translate.h"

#include "data/dataset.h"
#include "models/common.h"
#include "models/family.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F4 sizeof(float)

enco_status enco_translator_open(enco_ctx *ctx, const char *path, const enco_config *cfg,
                                 enco_translator **out)
{
    return enco_translator_open_direction(ctx, path, cfg, 0, out);
}

enco_status enco_translator_open_direction(enco_ctx *ctx, const char *path,
                                           const enco_config *cfg, int btoa,
                                           enco_translator **out)
{
    *out = NULL;
    enco_translator *t = calloc(1, sizeof *t);
    if (!t)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    t->ctx = ctx;
    enco_status st = enco_st_read(path, &t->weights);
    if (st == ENCO_OK) {
        if (cfg) {
            t->cfg = *cfg;
        } else {
            enco_config_defaults(&t->cfg);
            const char *text = enco_st_get_meta(t->weights, "config");
            if (text)
                st = enco_config_load_text(&t->cfg, text, path);
        }
    }
    const enco_family *fam = st == ENCO_OK ? enco_family_find(t->cfg.model.family) : NULL;
    if (st == ENCO_OK && !fam)
        st = ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: model.family \"%s\" is not a family enco-cl "
                       "knows", path, t->cfg.model.family);
    if (st == ENCO_OK && btoa && !fam->two_way)
        st = ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                       "%s: model.family \"%s\" translates A to B only (BtoA needs a "
                       "two-generator family: cyclegan, dclgan)",
                       path, fam->name);
    char probe[64];
    if (st == ENCO_OK) {
        t->btoa = btoa;
        snprintf(t->prefix, sizeof t->prefix, "net%s.",
                 fam->nets[btoa ? fam->generator_b : fam->generator]);
        snprintf(probe, sizeof probe, "%smodel.1.weight", t->prefix);
    }
    if (st == ENCO_OK && !enco_st_find(t->weights, probe))
        st = ENCO_FAIL(ENCO_ERR_FORMAT,
                       "%s holds no generator (no %s): convert PyTorch files "
                       "with tools/pth2safetensors.py",
                       path, probe);
    if (st != ENCO_OK) {
        enco_translator_close(t);
        return st;
    }
    *out = t;
    return ENCO_OK;
}

static void unbuild(enco_translator *t)
{
    if (!t->built)
        return;
    enco_seqnet_free(t->ctx, &t->net);
    enco_params_free(t->ctx, &t->g);
    t->built = 0;
}

void enco_translator_close(enco_translator *t)
{
    if (!t)
        return;
    unbuild(t);
    enco_st_free(t->weights);
    free(t);
}

static enco_status build(enco_translator *t, int h, int w)
{
    unbuild(t);
    enco_model_config mc =
        enco_family_generator_config(enco_family_find(t->cfg.model.family), &t->cfg);
    enco_params_init(&t->g, t->prefix);
    t->built = 1; /* from here on unbuild() releases what exists */
    ENCO_TRY(enco_generator_build(&t->net, &t->g, &mc, 1, h, w));
    ENCO_TRY(enco_params_alloc(t->ctx, &t->g));
    ENCO_TRY(enco_seqnet_finish(t->ctx, &t->net));
    enco_status st = enco_params_load(t->ctx, &t->g, t->weights, "");
    if (st != ENCO_OK) {
        enco_error_append(" (the generator does not match the configuration: ngf %d, %d blocks)",
                          mc.ngf, mc.n_blocks);
        return st;
    }
    t->h = h, t->w = w;
    return ENCO_OK;
}

enco_status enco_translator_run(enco_translator *t, const float *x, int h, int w, float *y)
{
    if (!t->built || t->h != h || t->w != w) {
        enco_status st = build(t, h, w);
        if (st != ENCO_OK) {
            unbuild(t);
            return st;
        }
    }
    size_t in = (size_t)t->cfg.model.input_nc * h * w;
    size_t outn = (size_t)t->cfg.model.output_nc * h * w;
    const enco_slot *s0 = &t->net.slots[0];
    ENCO_TRY(enco_upload(t->ctx, t->net.acts, s0->off * F4, in * F4, x));
    ENCO_TRY(enco_seqnet_forward(t->ctx, &t->net, t->net.acts, s0->off, 1));
    cl_mem m;
    size_t off;
    enco_seqnet_output(&t->net, &m, &off, NULL, NULL, NULL);
    return enco_download(t->ctx, m, off * F4, outn * F4, y);
}

static int side(int v)
{
    int r = enco_round_to_4(v);
    return r < 8 ? 8 : r;
}

enco_status enco_translate_prepare(const enco_image *in, enco_image *out)
{
    int w = side(in->w), h = side(in->h);
    if (w == in->w && h == in->h)
        return enco_image_crop(in, 0, 0, w, h, out);
    return enco_image_resize_bicubic(in, w, h, out);
}

enco_status enco_translate_file(enco_translator *t, const char *path, enco_image *input,
                                enco_image *output)
{
    *input = (enco_image){0}, *output = (enco_image){0};
    enco_image img = {0};
    int cin = t->cfg.model.input_nc, cout = t->cfg.model.output_nc;
    enco_status st = enco_image_load(path, cin, &img);
    if (st == ENCO_OK)
        st = enco_translate_prepare(&img, input);
    enco_image_free(&img);
    float *x = NULL, *y = NULL;
    if (st == ENCO_OK) {
        size_t px = (size_t)input->w * input->h;
        x = malloc((size_t)cin * px * F4);
        y = malloc((size_t)cout * px * F4);
        if (!x || !y)
            st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory for %s", path);
    }
    if (st == ENCO_OK) {
        enco_image_to_tensor(input, x);
        st = enco_translator_run(t, x, input->h, input->w, y);
    }
    if (st == ENCO_OK)
        st = enco_image_from_tensor(output, y, cout, input->h, input->w);
    free(x);
    free(y);
    if (st != ENCO_OK) {
        enco_image_free(input);
        enco_image_free(output);
    }
    return st;
}
