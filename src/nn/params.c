/* Named parameter sets: declaration, allocation, init, save and load. */
#include "nn/params.h"

#include "ops/blur.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADAM_STEP_KEY "adam_step"

void enco_params_init(enco_param_set *ps, const char *prefix)
{
    memset(ps, 0, sizeof *ps);
    snprintf(ps->prefix, sizeof ps->prefix, "%s", prefix);
}

enco_status enco_params_declare(enco_param_set *ps, const char *name, int ndim,
                                const int64_t *shape, int trainable, enco_param_init init,
                                size_t *index)
{
    if (strlen(name) >= ENCO_PARAM_NAME_MAX || ndim < 1 || ndim > 4)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bad parameter declaration %s", name);
    if (enco_params_find(ps, name))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "parameter %s%s declared twice", ps->prefix, name);
    if (ps->count == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 64;
        enco_param *l = realloc(ps->list, cap * sizeof *l);
        if (!l)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        ps->list = l;
        ps->cap = cap;
    }
    enco_param *p = &ps->list[ps->count];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "parameter %s has an empty dimension", name);
        p->shape[i] = shape[i];
        p->numel *= (size_t)shape[i];
    }
    p->trainable = trainable;
    p->init = init;
    if (trainable) {
        p->offset = ps->n_params;
        ps->n_params += p->numel;
    } else {
        p->offset = ps->n_buffers;
        ps->n_buffers += p->numel;
    }
    if (index)
        *index = ps->count;
    ps->count++;
    return ENCO_OK;
}

enco_status enco_params_weight(enco_param_set *ps, const char *name, int ndim,
                               const int64_t *shape, size_t *index)
{
    size_t idx = 0;
    ENCO_TRY(enco_params_declare(ps, name, ndim, shape, 1, ENCO_INIT_XAVIER, &idx));
    enco_param *p = &ps->list[idx];
    /* PyTorch's fan computation: dim 1 is fan-in, dim 0 fan-out, times the
     * receptive field (the trailing dimensions). */
    size_t field = 1;
    for (int i = 2; i < ndim; i++)
        field *= (size_t)shape[i];
    p->fan_in = (size_t)(ndim > 1 ? shape[1] : 1) * field;
    p->fan_out = (size_t)shape[0] * field;
    if (index)
        *index = idx;
    return ENCO_OK;
}

enco_status enco_params_counter(enco_param_set *ps, const char *name)
{
    if (ps->ncounters == ps->cap_counters) {
        size_t cap = ps->cap_counters ? 2 * ps->cap_counters : 16;
        enco_counter *c = realloc(ps->counters, cap * sizeof *c);
        if (!c)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        ps->counters = c;
        ps->cap_counters = cap;
    }
    enco_counter *c = &ps->counters[ps->ncounters++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->value = 0;
    return ENCO_OK;
}

const enco_param *enco_params_find(const enco_param_set *ps, const char *name)
{
    for (size_t i = 0; i < ps->count; i++)
        if (strcmp(ps->list[i].name, name) == 0)
            return &ps->list[i];
    return NULL;
}

cl_mem enco_params_mem(const enco_param_set *ps, const enco_param *p)
{
    return p->trainable ? ps->params : ps->buffers;
}

enco_status enco_params_alloc(enco_ctx *ctx, enco_param_set *ps)
{
    if (ps->n_params) {
        size_t bytes = ps->n_params * sizeof(float);
        ENCO_TRY(enco_buffer_alloc(ctx, bytes, &ps->params));
        ENCO_TRY(enco_buffer_alloc(ctx, bytes, &ps->grads));
        ENCO_TRY(enco_buffer_alloc(ctx, bytes, &ps->adam_m));
        ENCO_TRY(enco_buffer_alloc(ctx, bytes, &ps->adam_v));
    }
    if (ps->n_buffers)
        ENCO_TRY(enco_buffer_alloc(ctx, ps->n_buffers * sizeof(float), &ps->buffers));
    return ENCO_OK;
}

void enco_params_free(enco_ctx *ctx, enco_param_set *ps)
{
    enco_buffer_free(ctx, ps->params);
    enco_buffer_free(ctx, ps->grads);
    enco_buffer_free(ctx, ps->adam_m);
    enco_buffer_free(ctx, ps->adam_v);
    enco_buffer_free(ctx, ps->buffers);
    free(ps->list);
    free(ps->counters);
    memset(ps, 0, sizeof *ps);
}

static enco_status init_one(enco_ctx *ctx, enco_param_set *ps, const enco_param *p, enco_rng *rng,
                            double gain, float *host)
{
    switch (p->init) {
    case ENCO_INIT_XAVIER:
        ENCO_TRY(enco_rng_xavier_normal(rng, host, p->numel, p->fan_in, p->fan_out, gain));
        break;
    case ENCO_INIT_ZERO:
        memset(host, 0, p->numel * sizeof(float));
        break;
    case ENCO_INIT_ONE:
        for (size_t i = 0; i < p->numel; i++)
            host[i] = 1.0f;
        break;
    case ENCO_INIT_BLUR_DOWN:
        enco_blur_down_filter(host, (int)p->shape[0]);
        break;
    case ENCO_INIT_BLUR_UP:
        enco_blur_up_filter(host, (int)p->shape[0]);
        break;
    }
    return enco_upload(ctx, enco_params_mem(ps, p), p->offset * sizeof(float),
                       p->numel * sizeof(float), host);
}

enco_status enco_params_initialize(enco_ctx *ctx, enco_param_set *ps, enco_rng *rng, double gain)
{
    size_t biggest = 1;
    for (size_t i = 0; i < ps->count; i++)
        if (ps->list[i].numel > biggest)
            biggest = ps->list[i].numel;
    float *host = malloc(biggest * sizeof(float));
    if (!host)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    enco_status st = ENCO_OK;
    for (size_t i = 0; i < ps->count && st == ENCO_OK; i++)
        st = init_one(ctx, ps, &ps->list[i], rng, gain, host);
    free(host);
    for (size_t i = 0; i < ps->ncounters; i++)
        ps->counters[i].value = 0;
    ps->adam_step = 0;
    return st;
}

static enco_status save_block(enco_ctx *ctx, const enco_param_set *ps, enco_st_file *f,
                              const char *key_prefix, int which, int trainable_only)
{
    size_t biggest = 1;
    for (size_t i = 0; i < ps->count; i++)
        if (ps->list[i].numel > biggest)
            biggest = ps->list[i].numel;
    float *host = malloc(biggest * sizeof(float));
    if (!host)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    enco_status st = ENCO_OK;
    for (size_t i = 0; i < ps->count && st == ENCO_OK; i++) {
        const enco_param *p = &ps->list[i];
        if (trainable_only && !p->trainable)
            continue;
        cl_mem m = !p->trainable ? ps->buffers
                   : which == 0  ? ps->params
                   : which == 1  ? ps->grads
                   : which == 2  ? ps->adam_m
                                 : ps->adam_v;
        st = enco_download(ctx, m, p->offset * sizeof(float), p->numel * sizeof(float), host);
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", key_prefix, ps->prefix, p->name);
        if (st == ENCO_OK)
            st = enco_st_add(f, key, ENCO_DT_F32, p->ndim, p->shape, host);
    }
    free(host);
    return st;
}

enco_status enco_params_save(enco_ctx *ctx, const enco_param_set *ps, enco_st_file *f,
                             const char *key_prefix)
{
    ENCO_TRY(save_block(ctx, ps, f, key_prefix, 0, 0));
    for (size_t i = 0; i < ps->ncounters; i++) {
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", key_prefix, ps->prefix, ps->counters[i].name);
        ENCO_TRY(enco_st_add(f, key, ENCO_DT_I64, 0, NULL, &ps->counters[i].value));
    }
    return ENCO_OK;
}

enco_status enco_params_save_grads(enco_ctx *ctx, const enco_param_set *ps, enco_st_file *f,
                                   const char *key_prefix)
{
    return save_block(ctx, ps, f, key_prefix, 1, 1);
}

enco_status enco_params_save_moments(enco_ctx *ctx, const enco_param_set *ps, enco_st_file *f)
{
    ENCO_TRY(save_block(ctx, ps, f, "adam_m.", 2, 1));
    ENCO_TRY(save_block(ctx, ps, f, "adam_v.", 3, 1));
    char key[64];
    snprintf(key, sizeof key, "%s%s", ADAM_STEP_KEY ".", ps->prefix);
    return enco_st_add(f, key, ENCO_DT_I64, 0, NULL, &ps->adam_step);
}

static enco_status load_block(enco_ctx *ctx, enco_param_set *ps, const enco_st_file *f,
                              const char *key_prefix, int which, int trainable_only)
{
    for (size_t i = 0; i < ps->count; i++) {
        const enco_param *p = &ps->list[i];
        if (trainable_only && !p->trainable)
            continue;
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", key_prefix, ps->prefix, p->name);
        const enco_st_tensor *t = NULL;
        ENCO_TRY(enco_st_expect(f, key, ENCO_DT_F32, p->ndim, p->shape, &t));
        cl_mem m = !p->trainable ? ps->buffers
                   : which == 0  ? ps->params
                   : which == 2  ? ps->adam_m
                                 : ps->adam_v;
        ENCO_TRY(enco_upload(ctx, m, p->offset * sizeof(float), p->numel * sizeof(float),
                             t->data));
    }
    return ENCO_OK;
}

/* A tensor under "<key_prefix><prefix>" that this set does not declare means
 * the file holds another architecture (e.g. more blocks): name it. */
static enco_status refuse_extra(const enco_param_set *ps, const enco_st_file *f,
                                const char *key_prefix)
{
    char pre[128];
    snprintf(pre, sizeof pre, "%s%s", key_prefix, ps->prefix);
    size_t plen = strlen(pre);
    for (size_t i = 0; i < f->count; i++) {
        const char *name = f->tensors[i].name;
        if (strncmp(name, pre, plen) != 0)
            continue;
        const char *leaf = name + plen;
        int known = enco_params_find(ps, leaf) != NULL;
        for (size_t c = 0; !known && c < ps->ncounters; c++)
            known = strcmp(ps->counters[c].name, leaf) == 0;
        if (!known)
            return ENCO_FAIL(ENCO_ERR_FORMAT,
                             "tensor %s is not part of this model (a checkpoint of a different "
                             "architecture?)",
                             name);
    }
    return ENCO_OK;
}

enco_status enco_params_load(enco_ctx *ctx, enco_param_set *ps, const enco_st_file *f,
                             const char *key_prefix)
{
    ENCO_TRY(refuse_extra(ps, f, key_prefix));
    ENCO_TRY(load_block(ctx, ps, f, key_prefix, 0, 0));
    for (size_t i = 0; i < ps->ncounters; i++) {
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", key_prefix, ps->prefix, ps->counters[i].name);
        const enco_st_tensor *t = enco_st_find(f, key);
        if (!t)
            continue; /* counters only feed momentum=None BatchNorm: optional */
        if (t->dtype != ENCO_DT_I64 || enco_st_numel(t) != 1)
            return ENCO_FAIL(ENCO_ERR_FORMAT, "tensor %s must be a single int64", key);
        memcpy(&ps->counters[i].value, t->data, sizeof(int64_t));
    }
    return ENCO_OK;
}

enco_status enco_params_load_moments(enco_ctx *ctx, enco_param_set *ps, const enco_st_file *f)
{
    ENCO_TRY(load_block(ctx, ps, f, "adam_m.", 2, 1));
    ENCO_TRY(load_block(ctx, ps, f, "adam_v.", 3, 1));
    char key[64];
    snprintf(key, sizeof key, "%s%s", ADAM_STEP_KEY ".", ps->prefix);
    const enco_st_tensor *t = NULL;
    ENCO_TRY(enco_st_expect(f, key, ENCO_DT_I64, 0, NULL, &t));
    memcpy(&ps->adam_step, t->data, sizeof(int64_t));
    return ENCO_OK;
}
