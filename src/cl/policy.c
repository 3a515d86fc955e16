/* The kernel policy (include/enco/enco.h): the options' values checked, the
 * ENCO_* environment overrides (read once, when a context is created), and
 * the device type's defaults filled in. */
#include "cl/ctx.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Defaults that are plain numbers (the reasons are with their users:
 * src/cl/gemm.c, src/ops/blur.c, src/nn/seqnet.c). */
#define GEMM_FUSED_KB 2304
#define GEMM_KC 4096
#define GEMM_NC (1 << 20)
#define GEMM_MB 4
#define WGRAD_SELF_KB 1024
#define DIRECT_MAX 4
#define SPLITK_MAX 1024
#define BLUR_BLOCK 4096
#define WS_MIB_CPU 256
#define WS_MIB_GPU 128

typedef enum value_kind {
    V_SWITCH,   /* 0 | 1 -> OFF | ON */
    V_IMPLICIT, /* 0 | 1 | 2 -> OFF | PACK | WGRAD */
    V_COUNT,    /* a positive integer */
    V_DIRECT,   /* 0 (none) .. DIRECT_MAX */
    V_SPLITK,   /* 0 | 1 (never) | 2 .. SPLITK_MAX parts */
} value_kind;

typedef struct override {
    const char *name;
    value_kind kind;
    size_t offset; /* of an int-sized field of enco_kernel_policy */
    const char *field;
} override;

#define OVERRIDE(name, kind, field)                                                         \
    {name, kind, offsetof(enco_kernel_policy, field), #field}

static const override overrides[] = {
    OVERRIDE("ENCO_GEMM_TILE", V_SWITCH, gemm_packed),
    OVERRIDE("ENCO_GEMM_FUSED", V_SWITCH, gemm_fused),
    OVERRIDE("ENCO_GEMM_FUSED_KB", V_COUNT, gemm_fused_kb),
    OVERRIDE("ENCO_GEMM_KC", V_COUNT, gemm_kc),
    OVERRIDE("ENCO_GEMM_NC", V_COUNT, gemm_nc),
    OVERRIDE("ENCO_GEMM_MB", V_COUNT, gemm_mb),
    OVERRIDE("ENCO_WGRAD_SELF", V_SWITCH, wgrad_self),
    OVERRIDE("ENCO_WGRAD_SELF_KB", V_COUNT, wgrad_self_kb),
    OVERRIDE("ENCO_CONV_IMPLICIT", V_IMPLICIT, conv_implicit),
    OVERRIDE("ENCO_CONV_DIRECT_MAX", V_DIRECT, conv_direct_max),
    OVERRIDE("ENCO_CONV_SPLITK", V_SPLITK, conv_splitk),
    OVERRIDE("ENCO_CONV_BWD_FLIP", V_SWITCH, conv_bwd_flip),
    OVERRIDE("ENCO_CONV_STRIP", V_SWITCH, conv_strip),
    OVERRIDE("ENCO_CONV_WS_MIB", V_COUNT, conv_ws_mib),
    OVERRIDE("ENCO_CONV_ROWS", V_SWITCH, conv_rows),
    OVERRIDE("ENCO_NORM_ROWS", V_SWITCH, norm_rows),
    OVERRIDE("ENCO_ACT_ROWS", V_SWITCH, act_rows),
    OVERRIDE("ENCO_BLUR_ROWS", V_SWITCH, blur_rows),
    OVERRIDE("ENCO_BLUR_BLOCK", V_COUNT, blur_block),
};
#define NOVERRIDES (sizeof overrides / sizeof overrides[0])

_Static_assert(sizeof(enco_path_switch) == sizeof(int) &&
                   sizeof(enco_conv_implicit) == sizeof(int),
               "the policy's switches are int-sized fields");

static int *field_of(enco_kernel_policy *p, const override *o)
{
    return (int *)((char *)p + o->offset);
}

static const char *accepted(value_kind k)
{
    switch (k) {
    case V_SWITCH:
        return "0 or 1";
    case V_IMPLICIT:
        return "0, 1 or 2";
    case V_COUNT:
        return "a positive integer";
    case V_DIRECT:
        return "an integer from 0 (none) to 4";
    default:
        return "0 or 1 (never split) or a number of parts from 2 to 1024";
    }
}

/* A whole decimal integer in [lo, hi]. */
static int parse_int(const char *s, long lo, long hi, long *v)
{
    char *end = NULL;
    errno = 0;
    *v = strtol(s, &end, 10);
    return errno == 0 && end != s && *end == '\0' && *v >= lo && *v <= hi;
}

static int parse(value_kind k, const char *s, int *out)
{
    long v = 0;
    switch (k) {
    case V_SWITCH:
        if (!parse_int(s, 0, 1, &v))
            return 0;
        *out = v ? ENCO_PATH_ON : ENCO_PATH_OFF;
        return 1;
    case V_IMPLICIT:
        if (!parse_int(s, 0, 2, &v))
            return 0;
        *out = v == 0 ? ENCO_CONV_IMPLICIT_OFF
               : v == 1 ? ENCO_CONV_IMPLICIT_PACK
                        : ENCO_CONV_IMPLICIT_WGRAD;
        return 1;
    case V_COUNT:
        if (!parse_int(s, 1, INT_MAX, &v))
            return 0;
        *out = (int)v;
        return 1;
    case V_DIRECT:
        if (!parse_int(s, 0, DIRECT_MAX, &v))
            return 0;
        *out = v ? (int)v : ENCO_POLICY_NEVER;
        return 1;
    default:
        if (!parse_int(s, 0, SPLITK_MAX, &v))
            return 0;
        *out = v >= 2 ? (int)v : ENCO_POLICY_NEVER;
        return 1;
    }
}

enco_status enco_kernel_policy_apply_env(enco_kernel_policy *p)
{
    if (!p)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "kernel policy: NULL");
    for (size_t i = 0; i < NOVERRIDES; i++) {
        const override *o = &overrides[i];
        const char *v = getenv(o->name);
        if (!v || !*v)
            continue;
        int value = 0;
        if (!parse(o->kind, v, &value))
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                             "environment variable %s=%s: accepted values are %s (or unset)",
                             o->name, v, accepted(o->kind));
        *field_of(p, o) = value;
    }
    return ENCO_OK;
}

/* The options' values: the range each field accepts (its zero included). */
static enco_status check(const enco_kernel_policy *p)
{
    enco_kernel_policy c = *p;
    for (size_t i = 0; i < NOVERRIDES; i++) {
        const override *o = &overrides[i];
        const int v = *field_of(&c, o);
        long lo = 0, hi = INT_MAX;
        const char *what = "a value >= 0 (0: the default)";
        switch (o->kind) {
        case V_SWITCH:
            hi = ENCO_PATH_ON;
            what = "ENCO_PATH_AUTO, ENCO_PATH_OFF or ENCO_PATH_ON";
            break;
        case V_IMPLICIT:
            hi = ENCO_CONV_IMPLICIT_WGRAD;
            what = "an enco_conv_implicit";
            break;
        case V_COUNT:
            break;
        case V_DIRECT:
            lo = ENCO_POLICY_NEVER;
            hi = DIRECT_MAX;
            what = "ENCO_POLICY_NEVER or 0 (the default) to 4";
            break;
        case V_SPLITK:
            lo = ENCO_POLICY_NEVER;
            hi = SPLITK_MAX;
            what = "ENCO_POLICY_NEVER, 0 (the default), 1 (never) or 2 to 1024 parts";
            break;
        }
        if (v < lo || v > hi)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "kernel policy: %s is %d: accepted: %s",
                             o->field, v, what);
    }
    return ENCO_OK;
}

static enco_path_switch choose(enco_path_switch v, int on)
{
    return v != ENCO_PATH_AUTO ? v : on ? ENCO_PATH_ON : ENCO_PATH_OFF;
}

static void number(int *v, int dflt)
{
    if (*v == 0)
        *v = dflt;
}

enco_status enco_ctx_set_kernel_policy(enco_ctx *ctx, const enco_kernel_policy *in)
{
    if (!ctx || !in)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "kernel policy: NULL context or policy");
    ENCO_TRY(check(in));
    enco_kernel_policy p = *in;
    const int gpu = ctx->info.is_gpu;
    p.gemm_packed = choose(p.gemm_packed, ctx->gemm == ENCO_GEMM_CLBLAST &&
                                              strcmp(ctx->info.type, "CPU") == 0);
    p.gemm_fused = choose(p.gemm_fused, 1);
    number(&p.gemm_fused_kb, GEMM_FUSED_KB);
    number(&p.gemm_kc, GEMM_KC);
    number(&p.gemm_nc, GEMM_NC);
    number(&p.gemm_mb, GEMM_MB);
    number(&p.wgrad_self_kb, WGRAD_SELF_KB);
    /* The implicit im2col is the packed GEMM's. */
    if (p.gemm_packed != ENCO_PATH_ON)
        p.conv_implicit = ENCO_CONV_IMPLICIT_OFF;
    number(&p.conv_direct_max, DIRECT_MAX);
    if (p.conv_splitk == 1 || (p.conv_splitk == 0 && !gpu))
        p.conv_splitk = ENCO_POLICY_NEVER;
    p.conv_strip = choose(p.conv_strip, !gpu);
    number(&p.conv_ws_mib, gpu ? WS_MIB_GPU : WS_MIB_CPU);
    p.conv_rows = choose(p.conv_rows, !gpu);
    p.norm_rows = choose(p.norm_rows, !gpu);
    p.act_rows = choose(p.act_rows, !gpu);
    p.blur_rows = choose(p.blur_rows, !gpu);
    number(&p.blur_block, BLUR_BLOCK);
    ctx->policy = p;
    return ENCO_OK;
}

const enco_kernel_policy *enco_ctx_kernel_policy(const enco_ctx *ctx) { return &ctx->policy; }
