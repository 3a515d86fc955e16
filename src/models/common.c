/* Helpers the families share. */
#include "models/common.h"

#include "ops/loss.h"

#include <stdio.h>
#include <stdlib.h>

enco_model_config enco_family_model_config(const enco_config *cfg)
{
    return (enco_model_config){.input_nc = cfg->model.input_nc,
                               .output_nc = cfg->model.output_nc,
                               .ngf = cfg->model.ngf,
                               .n_blocks = cfg->model.n_blocks,
                               .ndf = cfg->model.ndf,
                               .n_layers_d = cfg->model.n_layers_D,
                               .no_antialias = cfg->model.no_antialias,
                               .no_antialias_up = cfg->model.no_antialias_up};
}

enco_status enco_family_alloc(enco_trainer *t, size_t floats, cl_mem *m)
{
    return enco_buffer_alloc(t->ctx, (floats ? floats : 1) * sizeof(float), m);
}

enco_status enco_family_combine(enco_trainer *t, int out, const int *slots, const float *weights,
                                size_t count)
{
    if (count > ENCO_LOSS_COMBINE_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "combining %zu losses (at most %d)", count,
                         ENCO_LOSS_COMBINE_MAX);
    cl_mem mems[ENCO_LOSS_COMBINE_MAX];
    size_t offs[ENCO_LOSS_COMBINE_MAX];
    for (size_t i = 0; i < count; i++) {
        mems[i] = t->losses;
        offs[i] = (size_t)slots[i];
    }
    enco_ctx_trace_op(t->ctx, "loss.combine", "loss", enco_loss_combine_cost(count), "%zu terms",
                      count);
    return enco_loss_combine(t->ctx, t->losses, (size_t)out, mems, offs, weights, count);
}

enco_status enco_family_copy_images(enco_trainer *t, const char *where, cl_mem dst, size_t dst_img,
                                    cl_mem src, size_t src_off, size_t images)
{
    const size_t img = (size_t)t->cfg.model.input_nc * t->h * t->w;
    const size_t bytes = images * img * sizeof(float);
    enco_ctx_trace_op(t->ctx, "copy", where, (enco_op_cost){0, 2.0 * bytes}, "n%zu %zu floats",
                      images, img);
    return enco_copy(t->ctx, dst, dst_img * img * sizeof(float), src, src_off * sizeof(float),
                     bytes);
}

enco_status enco_family_add_images(enco_trainer *t, enco_st_file *out, const char *prefix,
                                   const char *name, cl_mem m, size_t off)
{
    const size_t count = (size_t)t->n * t->cfg.model.output_nc * t->h * t->w;
    float *host = malloc(count * sizeof(float));
    if (!host)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    enco_status st = enco_download(t->ctx, m, off * sizeof(float), count * sizeof(float), host);
    char key[256];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    if (st == ENCO_OK)
        st = enco_st_add(out, key, ENCO_DT_F32, 4,
                         (int64_t[]){t->n, t->cfg.model.output_nc, t->h, t->w}, host);
    free(host);
    return st;
}
