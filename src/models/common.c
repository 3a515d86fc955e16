/* Helpers the families share. */
#include "models/common.h"

#include "ops/loss.h"
#include "ops/patch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

enco_status enco_family_allgather(enco_trainer *t, const char *where, cl_mem src, size_t src_off,
                                  size_t count, cl_mem dst, size_t dst_off)
{
    const int size = t->reducer.size > 1 ? t->reducer.size : 1;
    enco_ctx_trace_op(t->ctx, "allgather", where, (enco_op_cost){0, 4.0 * (size + 1) * count},
                      "%d x %zu floats", size, count);
    if (size == 1)
        return enco_copy(t->ctx, dst, dst_off * sizeof(float), src, src_off * sizeof(float),
                         count * sizeof(float));
    if (!t->reducer.allgather)
        return ENCO_FAIL(ENCO_ERR_UNSUPPORTED, "%s: this run's processes cannot share data", where);
    const size_t need = ((size_t)size + 1) * count;
    if (need > t->gather_cap) {
        float *h = realloc(t->gather_host, need * sizeof(float));
        if (!h)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory (%zu floats)", need);
        t->gather_host = h;
        t->gather_cap = need;
    }
    float *mine = t->gather_host, *all = t->gather_host + count;
    ENCO_TRY(enco_download(t->ctx, src, src_off * sizeof(float), count * sizeof(float), mine));
    ENCO_TRY(t->reducer.allgather(t->reducer.user, mine, all, count * sizeof(float)));
    return enco_upload(t->ctx, dst, dst_off * sizeof(float), (size_t)size * count * sizeof(float),
                       all);
}

/* *m holds at least `floats` floats (grown, contents dropped). */
static enco_status grow(enco_trainer *t, cl_mem *m, size_t *cap, size_t floats)
{
    if (*m && *cap >= floats)
        return ENCO_OK;
    enco_buffer_free(t->ctx, *m);
    *m = NULL;
    ENCO_TRY(enco_family_alloc(t, floats, m));
    *cap = floats;
    return ENCO_OK;
}

enco_status enco_family_batch_patchnce(enco_trainer *t, enco_family_dp_buffers *dp, int cosine,
                                       cl_mem loss, size_t loss_off, cl_mem grad, size_t grad_off,
                                       cl_mem q, size_t q_off, cl_mem k, size_t k_off,
                                       size_t rows, size_t d, float tau, float scale, cl_mem work,
                                       size_t work_off)
{
    enco_ctx *ctx = t->ctx;
    const size_t procs = t->reducer.size > 1 ? (size_t)t->reducer.size : 1;
    if (procs == 1) {
        if (cosine) {
            enco_ctx_trace_op(ctx, "loss.patchnce_cos", "loss",
                              enco_loss_patchnce_cos_cost(1, rows, d), "1x%zux%zu", rows, d);
            return enco_loss_patchnce_cos(ctx, loss, loss_off, grad, grad_off, q, q_off, k, k_off,
                                          1, rows, d, tau, scale, work, work_off);
        }
        enco_ctx_trace_op(ctx, "loss.patchnce", "loss", enco_loss_patchnce_cost(1, rows, d),
                          "1x%zux%zu", rows, d);
        return enco_loss_patchnce(ctx, loss, loss_off, grad, grad_off, q, q_off, k, k_off, 1,
                                  rows, d, tau, scale, work, work_off);
    }
    const size_t kp = procs * rows;
    ENCO_TRY(grow(t, &dp->keys, &dp->keys_cap, kp * d));
    ENCO_TRY(grow(t, &dp->work, &dp->work_cap, enco_loss_patchnce_slice_work(rows, kp, d, cosine)));
    ENCO_TRY(enco_family_allgather(t, "PatchNCE keys", k, k_off, rows * d, dp->keys, 0));
    enco_op_cost cost = cosine ? enco_loss_patchnce_cos_cost(1, rows, d)
                               : enco_loss_patchnce_cost(1, rows, d);
    cost.flops *= (double)procs, cost.bytes *= (double)procs; /* rows x procs*rows logits */
    enco_ctx_trace_op(ctx, cosine ? "loss.patchnce_cos" : "loss.patchnce", "loss", cost,
                      "rows %zu of 1x%zux%zu", (size_t)t->reducer.rank * rows, kp, d);
    return enco_loss_patchnce_slice(ctx, loss, loss_off, grad, grad_off, q, q_off, dp->keys, 0,
                                    (size_t)t->reducer.rank * rows, rows, kp, d, tau, scale,
                                    cosine, dp->work, 0);
}

void enco_family_dp_free(enco_trainer *t, enco_family_dp_buffers *dp)
{
    enco_buffer_free(t->ctx, dp->keys);
    enco_buffer_free(t->ctx, dp->work);
    *dp = (enco_family_dp_buffers){0};
}

enco_status enco_family_d_lsgan(enco_trainer *t, int net, enco_seqnet *d, cl_mem d_in,
                                cl_mem dpred, cl_mem work, float first_target, int slot_first,
                                int slot_second, int slot_out, float log_weight)
{
    enco_ctx *ctx = t->ctx;
    const int n = t->n;
    const size_t pred = (size_t)t->ph * t->pw * n;
    ENCO_TRY(enco_seqnet_forward(ctx, d, d_in, 0, 2 * n));
    cl_mem dout;
    size_t doff;
    enco_seqnet_output(d, &dout, &doff, NULL, NULL, NULL);
    enco_ctx_trace_op(ctx, "loss.lsgan", "loss", enco_loss_lsgan_cost(pred), "%zu", pred);
    ENCO_TRY(enco_loss_lsgan(ctx, t->losses, (size_t)slot_first, dpred, 0, dout, doff, pred,
                             first_target, 0.5f, work, 0));
    enco_ctx_trace_op(ctx, "loss.lsgan", "loss", enco_loss_lsgan_cost(pred), "%zu", pred);
    ENCO_TRY(enco_loss_lsgan(ctx, t->losses, (size_t)slot_second, dpred, pred, dout, doff + pred,
                             pred, 1.0f - first_target, 0.5f, work, 0));
    ENCO_TRY(enco_family_combine(t, slot_out, (int[]){slot_first, slot_second},
                                 (float[]){0.5f * log_weight, 0.5f * log_weight}, 2));
    ENCO_TRY(enco_trainer_watch_grads(t, net, d));
    return enco_seqnet_backward(ctx, d, dpred, 0, NULL, 0, 1, NULL, 0);
}

enco_status enco_family_batch_patch_row(enco_trainer *t, const int32_t *given, int keep_draws,
                                        int32_t *perm, int hw, int K, const char *name, int l,
                                        const int32_t **row)
{
    if (!given || keep_draws)
        ENCO_TRY(enco_rng_permutation(&t->rng, perm, (size_t)hw));
    if (given) {
        ENCO_TRY(enco_patch_check_indices(given, (size_t)t->n, (size_t)K, (size_t)hw));
        for (int i = 1; i < t->n; i++)
            if (memcmp(given, given + (size_t)i * K, (size_t)K * sizeof *given) != 0)
                return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                                 "%s.%d: every image's row must be the same (one draw per layer "
                                 "for the batch)",
                                 name, l);
    }
    *row = given ? given : perm;
    return ENCO_OK;
}

enco_status enco_family_add_two_way(enco_trainer *t, enco_st_file *out, const char *prefix,
                                    enco_seqnet *ga, enco_seqnet *gb, int idt)
{
    const size_t ni = (size_t)t->n * t->cfg.model.output_nc * t->h * t->w;
    cl_mem a, b;
    size_t oa, ob;
    enco_seqnet_output(ga, &a, &oa, NULL, NULL, NULL);
    enco_seqnet_output(gb, &b, &ob, NULL, NULL, NULL);
    ENCO_TRY(enco_family_add_images(t, out, prefix, "fake_B", a, oa));
    ENCO_TRY(enco_family_add_images(t, out, prefix, "fake_A", b, ob));
    if (idt) {
        ENCO_TRY(enco_family_add_images(t, out, prefix, "idt_A", a, oa + ni));
        ENCO_TRY(enco_family_add_images(t, out, prefix, "idt_B", b, ob + ni));
    }
    return ENCO_OK;
}
