/* Recording the commands of one step and enqueuing them again, op by op
 * (internal.h, "recording one step"): what bench's kernel table times. */
#include "cl/ctx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum cmd_kind { CMD_KERNEL, CMD_GEMM, CMD_COPY, CMD_FILL, CMD_UPLOAD } cmd_kind;

struct enco_trace_cmd {
    cmd_kind kind;
    /* kernel */
    char program[ENCO_NAME_MAX], kernel[ENCO_NAME_MAX];
    cl_uint dims;
    size_t global[3], local[3];
    int has_local;
    size_t nargs;
    enco_arg *args;        /* values point into data (NULL: __local) */
    unsigned char *data;
    /* gemm */
    enco_trace_gemm gemm;
    /* copy, fill, upload */
    cl_mem dst, src;
    size_t dst_off, src_off, bytes;
    void *host;            /* upload: a copy of the bytes */
};

enco_status enco_ctx_trace_begin(enco_ctx *ctx)
{
    if (ctx->trace)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "the context already records a trace");
    ctx->trace = calloc(1, sizeof *ctx->trace);
    if (!ctx->trace)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    return ENCO_OK;
}

enco_status enco_ctx_trace_end(enco_ctx *ctx, enco_trace **out)
{
    *out = NULL;
    enco_trace *tr = ctx->trace;
    ctx->trace = NULL;
    if (!tr)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "the context records no trace");
    if (tr->error != ENCO_OK) {
        enco_trace_free(tr);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "recording the step ran out of host memory");
    }
    tr->open = 0;
    *out = tr;
    return ENCO_OK;
}

int enco_ctx_tracing(const enco_ctx *ctx) { return ctx->trace != NULL; }

static enco_trace_op *new_op(enco_trace *tr, const char *name, const char *where,
                             const char *shape, enco_op_cost cost)
{
    if (tr->nops == tr->cap_ops) {
        size_t cap = tr->cap_ops ? 2 * tr->cap_ops : 256;
        enco_trace_op *v = realloc(tr->ops, cap * sizeof *v);
        if (!v) {
            tr->error = ENCO_ERR_NO_MEMORY;
            return NULL;
        }
        tr->ops = v;
        tr->cap_ops = cap;
    }
    enco_trace_op *op = &tr->ops[tr->nops++];
    memset(op, 0, sizeof *op);
    snprintf(op->name, sizeof op->name, "%s", name ? name : "?");
    snprintf(op->where, sizeof op->where, "%s", where ? where : "?");
    snprintf(op->shape, sizeof op->shape, "%s", shape ? shape : "");
    op->cost = cost;
    op->first = tr->ncmds;
    return op;
}

void enco_ctx_trace_op(enco_ctx *ctx, const char *name, const char *where, enco_op_cost cost,
                       const char *shape_fmt, ...)
{
    enco_trace *tr = ctx->trace;
    if (!tr || tr->error != ENCO_OK)
        return;
    char shape[96];
    va_list ap;
    va_start(ap, shape_fmt);
    vsnprintf(shape, sizeof shape, shape_fmt, ap);
    va_end(ap);
    tr->open = new_op(tr, name, where, shape, cost) != NULL;
}

void enco_ctx_trace_close(enco_ctx *ctx)
{
    if (ctx->trace)
        ctx->trace->open = 0;
}

/* A new command in the open op, or in an op of its own (`name`, "untagged"). */
static enco_trace_cmd *new_cmd(enco_ctx *ctx, cmd_kind kind, const char *name, const char *shape,
                               enco_op_cost cost)
{
    enco_trace *tr = ctx->trace;
    if (!tr || tr->error != ENCO_OK)
        return NULL;
    if (!tr->open && !new_op(tr, name, "untagged", shape, cost))
        return NULL;
    tr->open = 1;
    if (tr->ncmds == tr->cap_cmds) {
        size_t cap = tr->cap_cmds ? 2 * tr->cap_cmds : 1024;
        enco_trace_cmd *v = realloc(tr->cmds, cap * sizeof *v);
        if (!v) {
            tr->error = ENCO_ERR_NO_MEMORY;
            return NULL;
        }
        tr->cmds = v;
        tr->cap_cmds = cap;
    }
    enco_trace_cmd *c = &tr->cmds[tr->ncmds++];
    memset(c, 0, sizeof *c);
    c->kind = kind;
    tr->ops[tr->nops - 1].count++;
    return c;
}

/* An untagged command is an op of its own, closed after it. */
static void end_cmd(enco_ctx *ctx, int was_open)
{
    if (ctx->trace && !was_open)
        ctx->trace->open = 0;
}

void enco_trace_kernel(enco_ctx *ctx, const char *program, const char *kernel, cl_uint dims,
                       const size_t *global, const size_t *local, size_t nargs,
                       const enco_arg *args)
{
    if (!ctx->trace)
        return;
    const int was_open = ctx->trace->open;
    char shape[96];
    snprintf(shape, sizeof shape, "%s/%s", program, kernel);
    enco_trace_cmd *c = new_cmd(ctx, CMD_KERNEL, kernel, shape, (enco_op_cost){0, 0});
    if (!c)
        return;
    ctx->trace->ops[ctx->trace->nops - 1].launches++;
    snprintf(c->program, sizeof c->program, "%s", program);
    snprintf(c->kernel, sizeof c->kernel, "%s", kernel);
    c->dims = dims;
    for (cl_uint d = 0; d < dims && d < 3; d++) {
        c->global[d] = global[d];
        c->local[d] = local ? local[d] : 0;
    }
    c->has_local = local != NULL;
    size_t bytes = 0;
    for (size_t i = 0; i < nargs; i++)
        bytes += args[i].value ? args[i].size : 0;
    c->args = calloc(nargs ? nargs : 1, sizeof *c->args);
    c->data = malloc(bytes ? bytes : 1);
    if (!c->args || !c->data) {
        ctx->trace->error = ENCO_ERR_NO_MEMORY;
        return;
    }
    c->nargs = nargs;
    for (size_t i = 0, at = 0; i < nargs; i++) {
        c->args[i].size = args[i].size;
        if (args[i].value) {
            memcpy(c->data + at, args[i].value, args[i].size);
            c->args[i].value = c->data + at;
            at += args[i].size;
        }
    }
    end_cmd(ctx, was_open);
}

void enco_trace_gemm_call(enco_ctx *ctx, const enco_trace_gemm *g)
{
    if (!ctx->trace)
        return;
    const int was_open = ctx->trace->open;
    char shape[96];
    snprintf(shape, sizeof shape, "%zux%zux%zu batch %zu", g->m, g->n, g->k,
             g->batch ? g->batch : 1);
    const double b = g->batch ? (double)g->batch : 1.0;
    enco_trace_cmd *c =
        new_cmd(ctx, CMD_GEMM, "sgemm", shape,
                (enco_op_cost){2.0 * b * g->m * g->n * g->k,
                               4.0 * b * (g->m * g->k + g->k * g->n + 2.0 * g->m * g->n)});
    if (c)
        c->gemm = *g;
    end_cmd(ctx, was_open);
}

static void transfer(enco_ctx *ctx, cmd_kind kind, cl_mem dst, size_t dst_off, cl_mem src,
                     size_t src_off, size_t bytes, const void *host)
{
    static const char *const names[] = {"", "", "copy", "fill", "upload"};
    const int was_open = ctx->trace->open;
    char shape[96];
    snprintf(shape, sizeof shape, "%zu bytes", bytes);
    double traffic = kind == CMD_COPY ? 2.0 * (double)bytes : (double)bytes;
    enco_trace_cmd *c = new_cmd(ctx, kind, names[kind], shape, (enco_op_cost){0, traffic});
    if (!c)
        return;
    c->dst = dst;
    c->dst_off = dst_off;
    c->src = src;
    c->src_off = src_off;
    c->bytes = bytes;
    if (host) {
        c->host = malloc(bytes ? bytes : 1);
        if (!c->host)
            ctx->trace->error = ENCO_ERR_NO_MEMORY;
        else
            memcpy(c->host, host, bytes);
    }
    end_cmd(ctx, was_open);
}

void enco_trace_copy(enco_ctx *ctx, cl_mem dst, size_t dst_off, cl_mem src, size_t src_off,
                     size_t bytes)
{
    if (ctx->trace)
        transfer(ctx, CMD_COPY, dst, dst_off, src, src_off, bytes, NULL);
}

void enco_trace_fill(enco_ctx *ctx, cl_mem mem, size_t off, size_t bytes)
{
    if (ctx->trace)
        transfer(ctx, CMD_FILL, mem, off, NULL, 0, bytes, NULL);
}

void enco_trace_upload(enco_ctx *ctx, cl_mem mem, size_t off, size_t bytes, const void *host)
{
    if (ctx->trace)
        transfer(ctx, CMD_UPLOAD, mem, off, NULL, 0, bytes, host);
}

static enco_status replay_cmd(enco_ctx *ctx, const enco_trace_cmd *c)
{
    switch (c->kind) {
    case CMD_KERNEL:
        return enco_kernel_run(ctx, c->program, c->kernel, c->dims, c->global,
                               c->has_local ? c->local : NULL, c->nargs, c->args);
    case CMD_GEMM:
        return enco_gemm_replay(ctx, &c->gemm);
    case CMD_COPY:
        return enco_copy(ctx, c->dst, c->dst_off, c->src, c->src_off, c->bytes);
    case CMD_FILL:
        return enco_fill_zero(ctx, c->dst, c->dst_off, c->bytes);
    case CMD_UPLOAD:
        return enco_upload(ctx, c->dst, c->dst_off, c->bytes, c->host);
    }
    return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "trace: unknown command");
}

enco_status enco_trace_replay(enco_ctx *ctx, const enco_trace *tr, size_t op)
{
    if (ctx->trace)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "trace: replay while recording");
    if (op >= tr->nops)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "trace: no op %zu (%zu recorded)", op, tr->nops);
    const enco_trace_op *o = &tr->ops[op];
    for (size_t i = 0; i < o->count; i++)
        ENCO_TRY(replay_cmd(ctx, &tr->cmds[o->first + i]));
    return ENCO_OK;
}

void enco_trace_free(enco_trace *tr)
{
    if (!tr)
        return;
    for (size_t i = 0; i < tr->ncmds; i++) {
        free(tr->cmds[i].args);
        free(tr->cmds[i].data);
        free(tr->cmds[i].host);
    }
    free(tr->cmds);
    free(tr->ops);
    free(tr);
}
