/* CLBlast tuning per device: results of CLBlast's own tuners
 * (clblast_tuner_xgemm writes clblast_xgemm_<V>_32.json) are imported once,
 * checked, stored in the cache folder under a key of the device and driver,
 * and applied with CLBlastOverrideParameters whenever a context is created on
 * that device. CLBlast 1.5.3 ships no parameters for many recent devices
 * (NVIDIA Hopper among them) and falls back to generic ones.
 *
 * The stored file is text, one line per kernel:
 *     # comment
 *     Xgemm <best time in ms> NAME=VALUE NAME=VALUE ...
 */
#include "cl/ctx.h"

#include <clblast_c.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PARAMS 32
#define MAX_KERNELS 8

typedef struct tuned_kernel {
    char kernel[64];
    double time_ms;
    int nparams;
    char names[MAX_PARAMS][40];
    size_t values[MAX_PARAMS];
    char source[ENCO_PATH_MAX + 96];
} tuned_kernel;

static void device_key(const enco_ctx *ctx, char hex[17])
{
    const char *parts[] = {ctx->info.name, ctx->info.vendor, ctx->info.driver_version,
                           ctx->info.platform_version, ctx->info.device_version};
    uint64_t h = ENCO_FNV_OFFSET;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        h = enco_fnv1a(h, parts[i], strlen(parts[i]) + 1);
    snprintf(hex, 17, "%016llx", (unsigned long long)h);
}

enco_status enco_tuning_path(const enco_ctx *ctx, char *path, size_t size)
{
    char hex[17];
    device_key(ctx, hex);
    int n = snprintf(path, size, "%s/clblast-%s.tuning", ctx->cache_dir, hex);
    if (n < 0 || (size_t)n >= size)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "tuning file path too long");
    return ENCO_OK;
}

const char *enco_ctx_tuning(const enco_ctx *ctx) { return ctx->tuning; }

/* "NAME=V NAME=V ..." -> names/values, PRECISION dropped. */
static enco_status parse_params(const char *s, tuned_kernel *t, const char *where)
{
    t->nparams = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '\n')
            break;
        const char *eq = strchr(s, '=');
        const char *end = s + strcspn(s, " \t\n");
        if (!eq || eq > end || eq == s || (size_t)(eq - s) >= sizeof t->names[0])
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: bad parameter '%.*s' (want NAME=VALUE)",
                             where, (int)(end - s), s);
        char *num_end;
        errno = 0;
        unsigned long long v = strtoull(eq + 1, &num_end, 10);
        if (num_end != end || eq + 1 == end || errno)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: bad value in '%.*s'", where,
                             (int)(end - s), s);
        if ((size_t)(eq - s) == 9 && strncmp(s, "PRECISION", 9) == 0) {
            if (v != 32)
                return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                                 "%s: results for precision %llu; enco-cl uses single (32)",
                                 where, v);
        } else {
            if (t->nparams == MAX_PARAMS)
                return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: more than %d parameters", where,
                                 MAX_PARAMS);
            memcpy(t->names[t->nparams], s, (size_t)(eq - s));
            t->names[t->nparams][eq - s] = '\0';
            t->values[t->nparams++] = (size_t)v;
        }
        s = end;
    }
    if (t->nparams == 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: no parameters", where);
    return ENCO_OK;
}

static enco_status apply(enco_ctx *ctx, const tuned_kernel *t)
{
    const char *names[MAX_PARAMS];
    for (int i = 0; i < t->nparams; i++)
        names[i] = t->names[i];
    CLBlastStatusCode st = CLBlastOverrideParameters(ctx->device, t->kernel,
                                                     CLBlastPrecisionSingle,
                                                     (size_t)t->nparams, names, t->values);
    if (st != CLBlastSuccess)
        return ENCO_FAIL((enco_status)st, "CLBlast refused the parameters for %s (%s)",
                         t->kernel, t->source);
    return ENCO_OK;
}

/* Reads the stored file into ts; *n = 0 when there is none. */
static enco_status read_stored(const char *path, tuned_kernel *ts, int *n)
{
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? ENCO_OK
                               : ENCO_FAIL(ENCO_ERR_IO, "cannot read %s: %s", path,
                                           strerror(errno));
    char line[2048];
    int lineno = 0;
    enco_status st = ENCO_OK;
    while (st == ENCO_OK && fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (*n == MAX_KERNELS) {
            st = ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: more than %d kernels", path, MAX_KERNELS);
            break;
        }
        tuned_kernel *t = &ts[*n];
        memset(t, 0, sizeof *t);
        snprintf(t->source, sizeof t->source, "%s:%d", path, lineno);
        int used = 0;
        if (sscanf(line, "%63s %lf %n", t->kernel, &t->time_ms, &used) != 2) {
            st = ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: want 'KERNEL TIME NAME=VALUE ...'",
                           t->source);
            break;
        }
        st = parse_params(line + used, t, t->source);
        if (st == ENCO_OK)
            (*n)++;
    }
    fclose(f);
    return st;
}

void enco_tuning_load(enco_ctx *ctx)
{
    ctx->tuning[0] = '\0';
    const char *env = getenv("ENCO_CLBLAST_TUNING");
    if ((env && strcmp(env, "0") == 0) || ctx->gemm != ENCO_GEMM_CLBLAST)
        return;
    char path[ENCO_PATH_MAX + 64];
    if (enco_tuning_path(ctx, path, sizeof path) != ENCO_OK)
        return;
    tuned_kernel ts[MAX_KERNELS];
    int n = 0;
    enco_status st = read_stored(path, ts, &n);
    for (int i = 0; st == ENCO_OK && i < n; i++)
        st = apply(ctx, &ts[i]);
    if (st != ENCO_OK) {
        snprintf(ctx->tuning, sizeof ctx->tuning, "ignored (%s)", enco_last_error());
        enco_clear_error();
        return;
    }
    if (n > 0) {
        int len = snprintf(ctx->tuning, sizeof ctx->tuning, "%s", path);
        for (int i = 0; i < n && len > 0 && (size_t)len < sizeof ctx->tuning; i++)
            len += snprintf(ctx->tuning + len, sizeof ctx->tuning - (size_t)len, "%s%s",
                            i ? ", " : " (", ts[i].kernel);
        if (len > 0 && (size_t)len < sizeof ctx->tuning)
            snprintf(ctx->tuning + len, sizeof ctx->tuning - (size_t)len, ")");
    }
}

/* The value of "key": "value" in a tuner JSON file (the metadata the tuner
 * writes before its "results" list, one per line). */
static int json_field(const char *json, const char *key, char *out, size_t size)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *results = strstr(json, "\"results\"");
    const char *p = strstr(json, pat);
    if (!p || (results && p > results))
        return 0;
    p += strlen(pat);
    while (*p == ' ' || *p == ':' || *p == '\t')
        p++;
    if (*p != '"')
        return 0;
    p++;
    const char *e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= size)
        return 0;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return 1;
}

static enco_status parse_tuner_json(const enco_ctx *ctx, const char *path, tuned_kernel *t)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ENCO_FAIL(ENCO_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    }
    /* The metadata is at the top; 64 KiB holds it. */
    len = fread(buf, 1, cap, f);
    fclose(f);
    buf[len] = '\0';
    memset(t, 0, sizeof *t);
    snprintf(t->source, sizeof t->source, "%s", path);
    char time_s[64], params[1024], dev[256], family[64];
    enco_status st = ENCO_OK;
    if (!json_field(buf, "best_kernel", t->kernel, sizeof t->kernel) ||
        !json_field(buf, "best_time", time_s, sizeof time_s) ||
        !json_field(buf, "best_parameters", params, sizeof params))
        st = ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                       "%s: not a CLBlast tuner result (no best_kernel / best_time / "
                       "best_parameters)",
                       path);
    else if (!json_field(buf, "kernel_family", family, sizeof family) ||
             (strncmp(family, "xgemm", 5) != 0 && strcmp(family, "gemm_routine") != 0))
        st = ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                       "%s: results of the '%s' tuner; enco-cl applies the GEMM tuners' "
                       "(clblast_tuner_xgemm, clblast_tuner_xgemm_direct, "
                       "clblast_tuner_routine_xgemm)",
                       path, family);
    else if (json_field(buf, "clblast_device_name", dev, sizeof dev) &&
             strcmp(dev, ctx->info.name) != 0)
        st = ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s was tuned on '%s', not on '%s'", path, dev,
                       ctx->info.name);
    else {
        /* The routine tuner names its result after the test it ran; the
         * parameter (XGEMM_MIN_INDIRECT_SIZE) belongs to CLBlast's GemmRoutine. */
        if (strcmp(family, "gemm_routine") == 0)
            snprintf(t->kernel, sizeof t->kernel, "GemmRoutine");
        /* The direct tuner names the variant it timed (XgemmDirectTN, ...);
         * all variants share XgemmDirect's parameters. */
        else if (strncmp(t->kernel, "XgemmDirect", 11) == 0)
            t->kernel[11] = '\0';
        char *end;
        t->time_ms = strtod(time_s, &end);
        if (end == time_s || !(t->time_ms > 0))
            st = ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: bad best_time '%s'", path, time_s);
        else
            st = parse_params(params, t, path);
    }
    free(buf);
    return st;
}

static float pattern(size_t i, unsigned salt)
{
    uint32_t x = (uint32_t)i * 2654435761u + salt * 40503u;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    return (float)(x & 0xffffff) / (float)0x800000 - 1.0f;
}

/* CLBlast SGEMMs (small: the direct kernel; large: the tuned indirect one)
 * against float64 on the host. */
static enco_status check_clblast(enco_ctx *ctx)
{
    static const size_t shapes[][3] = {{67, 45, 83}, {640, 576, 520}};
    enco_status st = ENCO_OK;
    for (size_t s = 0; st == ENCO_OK && s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc(m * k * sizeof *a), *b = malloc(k * n * sizeof *b),
              *c = malloc(m * n * sizeof *c);
        cl_mem ba = NULL, bb = NULL, bc = NULL;
        if (!a || !b || !c)
            st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        for (size_t i = 0; st == ENCO_OK && i < m * k; i++)
            a[i] = pattern(i, 7);
        for (size_t i = 0; st == ENCO_OK && i < k * n; i++)
            b[i] = pattern(i, 8);
        if (st == ENCO_OK)
            st = enco_buffer_alloc(ctx, m * k * sizeof *a, &ba);
        if (st == ENCO_OK)
            st = enco_buffer_alloc(ctx, k * n * sizeof *b, &bb);
        if (st == ENCO_OK)
            st = enco_buffer_alloc(ctx, m * n * sizeof *c, &bc);
        if (st == ENCO_OK)
            st = enco_upload(ctx, ba, 0, m * k * sizeof *a, a);
        if (st == ENCO_OK)
            st = enco_upload(ctx, bb, 0, k * n * sizeof *b, b);
        if (st == ENCO_OK) {
            cl_command_queue q = ctx->queue;
            CLBlastStatusCode cs = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                                                CLBlastTransposeNo, m, n, k, 1.0f, ba, 0, k, bb,
                                                0, n, 0.0f, bc, 0, n, &q, NULL);
            if (cs != CLBlastSuccess)
                st = ENCO_FAIL((enco_status)cs, "CLBlast SGEMM %zux%zux%zu failed with the "
                                                "tuned parameters", m, n, k);
        }
        if (st == ENCO_OK)
            st = enco_download(ctx, bc, 0, m * n * sizeof *c, c);
        double worst = 0;
        for (size_t i = 0; st == ENCO_OK && i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double ref = 0, mag = 0;
                for (size_t l = 0; l < k; l++) {
                    ref += (double)a[i * k + l] * b[l * n + j];
                    mag += fabs((double)a[i * k + l] * b[l * n + j]);
                }
                double err = fabs(ref - c[i * n + j]) / (mag + 1e-30);
                if (!(err <= worst))
                    worst = isnan(err) ? INFINITY : err;
            }
        if (st == ENCO_OK && !(worst <= 1e-5))
            st = ENCO_FAIL(ENCO_ERR_NUMERIC,
                           "CLBlast SGEMM %zux%zux%zu with the tuned parameters is wrong "
                           "(relative error %g)",
                           m, n, k, worst);
        enco_buffer_free(ctx, ba);
        enco_buffer_free(ctx, bb);
        enco_buffer_free(ctx, bc);
        free(a), free(b), free(c);
    }
    return st;
}

enco_status enco_tuning_import(enco_ctx *ctx, const char *const *files, int nfiles,
                               char *summary, size_t size)
{
    if (ctx->gemm != ENCO_GEMM_CLBLAST)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "the GEMM backend of this context is not CLBlast: nothing to tune");
    if (nfiles <= 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "no tuner result files given");
    tuned_kernel best[MAX_KERNELS];
    int nbest = 0;
    for (int i = 0; i < nfiles; i++) {
        tuned_kernel t;
        ENCO_TRY(parse_tuner_json(ctx, files[i], &t));
        int j = 0;
        while (j < nbest && strcmp(best[j].kernel, t.kernel) != 0)
            j++;
        if (j == nbest) {
            if (nbest == MAX_KERNELS)
                return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "results for more than %d kernels",
                                 MAX_KERNELS);
            best[nbest++] = t;
        } else if (t.time_ms < best[j].time_ms) {
            best[j] = t;
        }
    }
    for (int i = 0; i < nbest; i++)
        ENCO_TRY(apply(ctx, &best[i]));
    ENCO_TRY(check_clblast(ctx));

    char path[ENCO_PATH_MAX + 64], tmp[ENCO_PATH_MAX + 80];
    ENCO_TRY(enco_tuning_path(ctx, path, sizeof path));
    if (enco_mkdir_p(ctx->cache_dir) != 0)
        return ENCO_FAIL(ENCO_ERR_IO, "cannot create %s: %s", ctx->cache_dir, strerror(errno));
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return ENCO_FAIL(ENCO_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, "# enco-cl: CLBlast parameters for %s (%s, driver %s)\n", ctx->info.name,
            ctx->info.platform_version, ctx->info.driver_version);
    fprintf(f, "# kernel, best time in ms at the tuned size, parameters\n");
    for (int i = 0; i < nbest; i++) {
        fprintf(f, "# from %s\n%s %g", best[i].source, best[i].kernel, best[i].time_ms);
        for (int p = 0; p < best[i].nparams; p++)
            fprintf(f, " %s=%zu", best[i].names[p], best[i].values[p]);
        fprintf(f, "\n");
    }
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return ENCO_FAIL(ENCO_ERR_IO, "cannot write %s", path);
    }
    int len = snprintf(summary, size, "%s:", path);
    for (int i = 0; i < nbest && len > 0 && (size_t)len < size; i++)
        len += snprintf(summary + len, size - (size_t)len, " %s %.4g ms (%s)", best[i].kernel,
                        best[i].time_ms, best[i].source);
    snprintf(ctx->tuning, sizeof ctx->tuning, "%s", path);
    return ENCO_OK;
}

enco_status enco_tuning_clear(const enco_ctx *ctx, int *removed)
{
    char path[ENCO_PATH_MAX + 64];
    ENCO_TRY(enco_tuning_path(ctx, path, sizeof path));
    *removed = 0;
    if (unlink(path) == 0)
        *removed = 1;
    else if (errno != ENOENT)
        return ENCO_FAIL(ENCO_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    return ENCO_OK;
}
