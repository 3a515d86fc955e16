/* Benchmarks: measured ceilings, the end-to-end iteration, roofline shares
 * and the JSON report. The per-kernel table is in kernels.c. */
#include "bench/bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define F4 sizeof(float)

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double enco_bench_median(double *v, size_t n)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

enco_bench_options enco_bench_options_default(void)
{
    return (enco_bench_options){.size = 256, .batch = 1, .repeat = 5, .warmup = 1};
}

/* ---- ceilings ------------------------------------------------------------ */

static int name_has(const char *s, const char *part)
{
    size_t n = strlen(part);
    for (; *s; s++) {
        size_t i = 0;
        while (i < n && s[i] && (s[i] | 0x20) == (part[i] | 0x20))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

double enco_bench_nominal_gflops(const enco_device_info *dev, char *basis, size_t basis_size)
{
    double cu = dev->compute_units, ghz = dev->max_clock_mhz / 1000.0;
    if (cu <= 0 || ghz <= 0) {
        snprintf(basis, basis_size, "unknown: the device reports no compute units or clock");
        return -1;
    }
    if (!dev->is_gpu && strcmp(dev->type, "CPU") == 0) {
        /* PoCL names its CPU device after the LLVM target: the vector width
         * follows from it. Per core and cycle: FMA pipes x lanes x 2. */
        /* PoCL names Zen 4 after the skylake-avx512 target where its LLVM
         * lacks znver4, but Zen 4 runs AVX-512 on 256-bit FMA units (two
         * passes per instruction: measured 116 GFLOP/s per core at 3.6 GHz
         * with zmm as with ymm, bench/RESULTS.md). Zen 5 has 512-bit units. */
        if (name_has(dev->name, "avx512") && name_has(dev->name, "AMD")) {
            snprintf(basis, basis_size,
                     "%u cores x %u MHz x 32 FLOP/cycle (AMD AVX-512, Zen 4: 2 FMA x 8 lanes x 2, "
                     "512-bit ops in two passes; a Zen 5 would be 64)",
                     dev->compute_units, dev->max_clock_mhz);
            return cu * ghz * 32;
        }
        static const struct {
            const char *target;
            int flops;
            const char *why;
        } cpus[] = {
            {"avx512", 64, "AVX-512: 2 FMA x 16 lanes x 2"},
            {"skylake-avx512", 64, "AVX-512: 2 FMA x 16 lanes x 2"},
            {"icelake", 64, "AVX-512: 2 FMA x 16 lanes x 2"},
            {"sapphirerapids", 64, "AVX-512: 2 FMA x 16 lanes x 2"},
            {"znver4", 32, "AVX2 (Zen 4 AVX-512 is double-pumped): 2 FMA x 8 lanes x 2"},
            {"znver3", 32, "AVX2: 2 FMA x 8 lanes x 2"},
            {"znver2", 32, "AVX2: 2 FMA x 8 lanes x 2"},
            {"znver1", 16, "AVX2 on 128-bit units: 2 FMA x 4 lanes x 2"},
            {"haswell", 32, "AVX2: 2 FMA x 8 lanes x 2"},
            {"broadwell", 32, "AVX2: 2 FMA x 8 lanes x 2"},
            {"skylake", 32, "AVX2: 2 FMA x 8 lanes x 2"},
            {"alderlake", 32, "AVX2: 2 FMA x 8 lanes x 2"},
        };
        for (size_t i = 0; i < sizeof cpus / sizeof cpus[0]; i++)
            if (name_has(dev->name, cpus[i].target)) {
                snprintf(basis, basis_size, "%u cores x %u MHz x %d FLOP/cycle (%s target '%s')",
                         dev->compute_units, dev->max_clock_mhz, cpus[i].flops, cpus[i].why,
                         cpus[i].target);
                return cu * ghz * cpus[i].flops;
            }
        snprintf(basis, basis_size, "unknown: CPU vector width not known for '%s'", dev->name);
        return -1;
    }
    if (name_has(dev->vendor, "advanced micro devices") || name_has(dev->vendor, "amd")) {
        snprintf(basis, basis_size,
                 "%u CUs x 64 lanes x 2 x %u MHz (GCN/RDNA1-2; RDNA3 dual issue can double it)",
                 dev->compute_units, dev->max_clock_mhz);
        return cu * 64 * 2 * ghz;
    }
    if (name_has(dev->vendor, "intel")) {
        snprintf(basis, basis_size, "%u EUs x 8 lanes x 2 x %u MHz", dev->compute_units,
                 dev->max_clock_mhz);
        return cu * 8 * 2 * ghz;
    }
    snprintf(basis, basis_size,
             "unknown: FP32 lanes per compute unit are not reported by OpenCL for vendor '%s'",
             dev->vendor);
    return -1;
}

static enco_status time_gemm(enco_ctx *ctx, int n, int repeat, cl_mem a, cl_mem b, cl_mem c,
                             double *median)
{
    double *t = calloc((size_t)repeat, sizeof *t);
    if (!t)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    enco_status st = enco_sgemm(ctx, 0, 0, (size_t)n, (size_t)n, (size_t)n, 1.0f, a, 0, (size_t)n,
                                b, 0, (size_t)n, 0.0f, c, 0, (size_t)n);
    if (st == ENCO_OK)
        st = enco_finish(ctx);
    for (int i = 0; st == ENCO_OK && i < repeat; i++) {
        double t0 = now_seconds();
        st = enco_sgemm(ctx, 0, 0, (size_t)n, (size_t)n, (size_t)n, 1.0f, a, 0, (size_t)n, b, 0,
                        (size_t)n, 0.0f, c, 0, (size_t)n);
        if (st == ENCO_OK)
            st = enco_finish(ctx);
        t[i] = now_seconds() - t0;
    }
    *median = enco_bench_median(t, (size_t)repeat);
    free(t);
    return st;
}

/* cl/peak.cl on every compute unit (4 work-items per unit, one per group),
 * with rounds enough for >= 50 ms; the best rate of repeat runs. */
static enco_status time_fma(enco_ctx *ctx, int repeat, double *gflops)
{
    const size_t items = 4 * (size_t)enco_ctx_device(ctx)->compute_units, one = 1;
    cl_mem out = NULL;
    ENCO_TRY(enco_buffer_alloc(ctx, items * F4, &out));
    /* a first launch builds the program */
    enco_status st = ENCO_RUN(ctx, "peak", "peak_fma", 1, &items, &one, ENCO_ARG_INT(1),
                              ENCO_ARG_FLOAT(1.0000001f), ENCO_ARG_FLOAT(1e-7f),
                              ENCO_ARG_MEM(out));
    if (st == ENCO_OK)
        st = enco_finish(ctx);
    int iters = 1 << 12;
    double best = 0;
    for (int run = 0; st == ENCO_OK && run < repeat + 12; run++) {
        double t0 = now_seconds();
        st = ENCO_RUN(ctx, "peak", "peak_fma", 1, &items, &one, ENCO_ARG_INT(iters),
                      ENCO_ARG_FLOAT(1.0000001f), ENCO_ARG_FLOAT(1e-7f), ENCO_ARG_MEM(out));
        if (st == ENCO_OK)
            st = enco_finish(ctx);
        const double t = now_seconds() - t0;
        if (t < 0.05 && iters < (1 << 26)) { /* too short to time: more rounds */
            iters *= 2;
            continue;
        }
        const double rate = 12.0 * 16 * 2 * (double)iters * (double)items / t / 1e9;
        best = rate > best ? rate : best;
        if (--repeat <= 0)
            break;
    }
    enco_buffer_free(ctx, out);
    *gflops = best;
    return st;
}

enco_status enco_bench_peak_run(enco_ctx *ctx, int max_n, double copy_mib, int repeat,
                                enco_bench_peak *out)
{
    memset(out, 0, sizeof *out);
    if (max_n < 64 || repeat < 1 || copy_mib <= 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "bench peak: SGEMM size %d (>= 64), repeat %d (>= 1), copy %.1f MiB",
                         max_n, repeat, copy_mib);
    out->nominal_gflops = enco_bench_nominal_gflops(enco_ctx_device(ctx), out->nominal_basis,
                                                    sizeof out->nominal_basis);
    /* One set of max_n x max_n operands; a smaller n uses their first n x n floats. */
    enco_bench_probe probe;
    enco_status st = enco_bench_probe_init(ctx, max_n, &probe);
    /* Sizes from small to max_n: the best rate is the ceiling. */
    int sizes[8], ns = 0;
    for (int n = 256; n < max_n && ns < 7; n *= 2)
        sizes[ns++] = n;
    sizes[ns++] = max_n;
    for (int i = 0; st == ENCO_OK && i < ns; i++) {
        double t = 0;
        st = time_gemm(ctx, sizes[i], repeat, probe.a, probe.b, probe.c, &t);
        double rate = t > 0 ? 2.0 * sizes[i] * (double)sizes[i] * sizes[i] / t / 1e9 : 0;
        if (st == ENCO_OK && rate > out->gemm_gflops) {
            out->gemm_gflops = rate;
            out->gemm_n = sizes[i];
            out->gemm_seconds = t;
        }
    }
    enco_bench_probe_free(&probe);
    ENCO_TRY(st);
    if (!enco_ctx_device(ctx)->is_gpu)
        ENCO_TRY(time_fma(ctx, repeat, &out->fma_gflops));

    cl_mem a = NULL, b = NULL;
    size_t bytes = (size_t)(copy_mib * 1024 * 1024) / 4 * 4;
    st = enco_buffer_alloc(ctx, bytes, &a);
    if (st == ENCO_OK)
        st = enco_buffer_alloc(ctx, bytes, &b);
    if (st == ENCO_OK)
        st = enco_fill_zero(ctx, a, 0, bytes);
    if (st == ENCO_OK)
        st = enco_fill_zero(ctx, b, 0, bytes);
    double *t = calloc((size_t)repeat, sizeof *t);
    if (!t && st == ENCO_OK)
        st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    if (st == ENCO_OK)
        st = enco_copy(ctx, b, 0, a, 0, bytes);
    if (st == ENCO_OK)
        st = enco_finish(ctx);
    for (int i = 0; st == ENCO_OK && i < repeat; i++) {
        double t0 = now_seconds();
        st = enco_copy(ctx, b, 0, a, 0, bytes);
        if (st == ENCO_OK)
            st = enco_finish(ctx);
        t[i] = now_seconds() - t0;
    }
    if (st == ENCO_OK) {
        out->copy_mib = (double)bytes / (1024.0 * 1024.0);
        out->copy_seconds = enco_bench_median(t, (size_t)repeat);
        out->copy_gbs = out->copy_seconds > 0 ? 2.0 * (double)bytes / out->copy_seconds / 1e9 : 0;
    }
    free(t);
    enco_buffer_free(ctx, a);
    enco_buffer_free(ctx, b);
    return st;
}

enco_status enco_bench_probe_init(enco_ctx *ctx, int n, enco_bench_probe *p)
{
    memset(p, 0, sizeof *p);
    if (n < 16 || n > 16384)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench: probe size %d (16 .. 16384)", n);
    p->ctx = ctx;
    p->n = n;
    const size_t nn = (size_t)n * n;
    float *host = malloc(nn * F4);
    if (!host)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    for (size_t i = 0; i < nn; i++)
        host[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    enco_status st = enco_buffer_alloc(ctx, nn * F4, &p->a);
    if (st == ENCO_OK)
        st = enco_buffer_alloc(ctx, nn * F4, &p->b);
    if (st == ENCO_OK)
        st = enco_buffer_alloc(ctx, nn * F4, &p->c);
    if (st == ENCO_OK)
        st = enco_upload(ctx, p->a, 0, nn * F4, host);
    if (st == ENCO_OK)
        st = enco_upload(ctx, p->b, 0, nn * F4, host);
    free(host);
    if (st != ENCO_OK)
        enco_bench_probe_free(p);
    return st;
}

enco_status enco_bench_probe_rate(enco_bench_probe *p, int repeat, double *gflops)
{
    *gflops = 0;
    if (repeat < 1 || !p->a)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "bench: probe not ready or repeat < 1");
    double t = 0;
    ENCO_TRY(time_gemm(p->ctx, p->n, repeat, p->a, p->b, p->c, &t));
    *gflops = t > 0 ? 2.0 * p->n * (double)p->n * p->n / t / 1e9 : 0;
    return ENCO_OK;
}

void enco_bench_probe_free(enco_bench_probe *p)
{
    if (p->ctx) {
        enco_buffer_free(p->ctx, p->a);
        enco_buffer_free(p->ctx, p->b);
        enco_buffer_free(p->ctx, p->c);
    }
    memset(p, 0, sizeof *p);
}

int enco_bench_row_share(const enco_bench_row *row, const enco_bench_peak *peak, double *share)
{
    *share = 0;
    const enco_op_cost *c = &row->cost;
    const double gemm = row->local_gflops > 0 ? row->local_gflops : peak->gemm_gflops;
    if (c->flops > 0 && gemm > 0) {
        double ai = c->bytes > 0 ? c->flops / c->bytes : INFINITY;
        double mem_rate = ai * peak->copy_gbs;
        int memory_bound = mem_rate < gemm;
        double attainable = memory_bound ? mem_rate : gemm;
        if (row->seconds > 0 && attainable > 0)
            *share = c->flops / row->seconds / 1e9 / attainable;
        return memory_bound;
    }
    if (row->seconds > 0 && peak->copy_gbs > 0)
        *share = c->bytes / row->seconds / 1e9 / peak->copy_gbs;
    return 1;
}

/* ---- end to end -------------------------------------------------------- */


/* ---- JSON --------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* Numbers: finite values as %.9g, anything else as null. */
static void json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

/* `, "key": value` */
static void json_kv(FILE *f, const char *key, double v)
{
    fprintf(f, ", \"%s\": ", key);
    json_num(f, v);
}

static void json_rows(FILE *f, const enco_bench_peak *peak, const enco_bench_row *rows,
                      size_t nrows)
{
    fputs("[", f);
    for (size_t i = 0; i < nrows; i++) {
        const enco_bench_row *r = &rows[i];
        fputs(i ? ",\n    {" : "\n    {", f);
        fputs("\"name\": ", f);
        json_str(f, r->name);
        fputs(", \"where\": ", f);
        json_str(f, r->where);
        fputs(", \"shape\": ", f);
        json_str(f, r->shape);
        fprintf(f, ", \"per_iter\": %d, \"launches\": %d, \"commands\": %d, \"runs\": %d, "
                   "\"seconds\": ",
                r->per_iter, r->launches, r->commands, r->runs);
        json_num(f, r->seconds);
        json_kv(f, "min_seconds", r->min_seconds);
        json_kv(f, "flops", r->cost.flops);
        json_kv(f, "bytes", r->cost.bytes);
        json_kv(f, "gflops", r->seconds > 0 ? r->cost.flops / r->seconds / 1e9 : 0);
        json_kv(f, "gbs", r->seconds > 0 ? r->cost.bytes / r->seconds / 1e9 : 0);
        if (r->local_gflops > 0)
            json_kv(f, "local_ceiling_gflops", r->local_gflops);
        if (peak) {
            double share;
            int mem = enco_bench_row_share(r, peak, &share);
            fprintf(f, ", \"bound\": \"%s\", \"share\": ", mem ? "memory" : "compute");
            json_num(f, share);
        }
        fputs("}", f);
    }
    fputs(nrows ? "\n  ]" : "]", f);
}

enco_status enco_bench_write_json(const char *path, const enco_device_info *dev,
                                  const enco_bench_peak *peak, const enco_bench_options *kopts,
                                  const enco_bench_row *rows, size_t nrows,
                                  const enco_bench_e2e *e2e, size_t ne2e)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    snprintf(tmp, len + 16, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        enco_status st = ENCO_FAIL(ENCO_ERR_IO, "%s: cannot open for writing", tmp);
        free(tmp);
        return st;
    }
    fputs("{\n  \"tool\": \"enco-cl bench\"", f);
    if (dev) {
        fputs(",\n  \"device\": {\"name\": ", f);
        json_str(f, dev->name);
        fputs(", \"platform\": ", f);
        json_str(f, dev->platform);
        fputs(", \"vendor\": ", f);
        json_str(f, dev->vendor);
        fputs(", \"type\": ", f);
        json_str(f, dev->type);
        fputs(", \"driver\": ", f);
        json_str(f, dev->driver_version);
        fprintf(f, ", \"compute_units\": %u, \"max_clock_mhz\": %u}", dev->compute_units,
                dev->max_clock_mhz);
    }
    if (peak) {
        fprintf(f, ",\n  \"peak\": {\"gemm_n\": %d, \"gemm_seconds\": ", peak->gemm_n);
        json_num(f, peak->gemm_seconds);
        json_kv(f, "gemm_gflops", peak->gemm_gflops);
        json_kv(f, "copy_mib", peak->copy_mib);
        json_kv(f, "copy_seconds", peak->copy_seconds);
        json_kv(f, "copy_gbs", peak->copy_gbs);
        json_kv(f, "fma_gflops", peak->fma_gflops);
        fputs(", \"nominal_gflops\": ", f);
        if (peak->nominal_gflops > 0)
            json_num(f, peak->nominal_gflops);
        else
            fputs("null", f);
        fputs(", \"nominal_basis\": ", f);
        json_str(f, peak->nominal_basis);
        fputs("}", f);
    }
    if (kopts) {
        fprintf(f, ",\n  \"kernels\": {\"family\": ");
        json_str(f, kopts->family ? kopts->family : "enco");
        fprintf(f, ", \"size\": %d, \"batch\": %d, \"repeat\": %d, \"warmup\": %d, "
                   "\"filter\": ",
                kopts->size, kopts->batch, kopts->repeat, kopts->warmup);
        if (kopts->filter)
            json_str(f, kopts->filter);
        else
            fputs("null", f);
        double total = 0;
        for (size_t i = 0; i < nrows; i++)
            total += rows[i].per_iter * rows[i].seconds;
        json_kv(f, "sum_per_iter_seconds", total);
        fputs(",\n  \"rows\": ", f);
        json_rows(f, peak, rows, nrows);
        fputs("}", f);
    }
    if (e2e) {
        fputs(",\n  \"e2e\": [", f);
        for (size_t i = 0; i < ne2e; i++) {
            const enco_bench_e2e *e = &e2e[i];
            fprintf(f, "%s\n    {\"size\": %d, \"batch\": %d, \"iters\": %d, \"sec_per_iter\": ",
                    i ? "," : "", e->size, e->batch, e->iters);
            json_num(f, e->sec_per_iter);
            json_kv(f, "min_sec_per_iter", e->min_sec_per_iter);
            json_kv(f, "profiled_sec_per_iter", e->profiled_sec_per_iter);
            json_kv(f, "first_iter_seconds", e->first_iter_seconds);
            json_kv(f, "setup_seconds", e->setup_seconds);
            fprintf(f, ", \"device_peak_bytes\": %llu, \"params\": [",
                    (unsigned long long)e->device_peak_bytes);
            for (int k = 0; k < e->nnets; k++)
                fprintf(f, "%s%zu", k ? ", " : "", e->params[k]);
            fputs("], \"family\": ", f);
            json_str(f, e->family);
            fputs(", \"loss_G\": ", f);
            json_num(f, e->loss_g);
            fputs(", \"phases\": {", f);
            for (int p = 0; p < e->nphases; p++) {
                fputs(p ? ", " : "", f);
                json_str(f, e->phase_names[p]);
                fputs(": ", f);
                json_num(f, e->phase_seconds[p]);
            }
            /* Data-parallel: 1 process and zeros alone (after the keys of
             * one-process runs, which readers of older files find as they
             * were). */
            fprintf(f, "}, \"processes\": %d, \"global_batch\": %d", e->processes,
                    e->global_batch);
            json_kv(f, "images_per_second", e->images_per_second);
            fputs(", \"comm\": {\"bytes_per_iter\": ", f);
            json_num(f, e->comm_bytes_per_iter);
            json_kv(f, "seconds_per_iter", e->comm_seconds_per_iter);
            json_kv(f, "share", e->comm_share);
            json_kv(f, "sums_per_iter", e->comm_sums_per_iter);
            json_kv(f, "floats_per_iter", e->comm_floats_per_iter);
            fputs("}}", f);
        }
        fputs(ne2e ? "\n  ]" : "]", f);
    }
    fputs("\n}\n", f);
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    enco_status st = ENCO_OK;
    if (bad)
        st = ENCO_FAIL(ENCO_ERR_IO, "%s: write failed", tmp);
    else if (rename(tmp, path) != 0)
        st = ENCO_FAIL(ENCO_ERR_IO, "%s: cannot rename to %s", tmp, path);
    if (st != ENCO_OK)
        remove(tmp);
    free(tmp);
    return st;
}

/* ---- GEMM at the convolution shapes --------------------------------------- */

const enco_bench_gemm_shape enco_bench_gemm_shapes[] = {
    {"square 1024", 0, 1024, 1024, 1024, 1, 0.0f},
    {"res fwd (256px)", 0, 256, 4096, 2304, 2, 0.0f},
    {"res dcol (256px)", 1, 2304, 4096, 256, 2, 0.0f},
    {"res dW (256px)", 0, 256, 2304, 4096, 1, 1.0f},
    {"res fwd (64px)", 0, 256, 256, 2304, 2, 0.0f},
    {"c128 fwd (256px)", 0, 128, 65536, 576, 1, 0.0f},
    {"c64 fwd (256px)", 0, 64, 65536, 1152, 1, 0.0f},
    {"c64 dW (256px)", 0, 64, 576, 65536, 1, 1.0f},
    {"c128 dW (256px)", 0, 128, 1152, 65536, 1, 1.0f},
    {"c64 dcol (256px)", 1, 576, 65536, 64, 1, 0.0f},
    {"c128 dcol (256px)", 1, 1152, 65536, 128, 1, 0.0f},
};
const size_t enco_bench_gemm_shapes_count =
    sizeof enco_bench_gemm_shapes / sizeof enco_bench_gemm_shapes[0];

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enco_status enco_bench_gemm_run(enco_ctx *ctx, const enco_bench_gemm_shape *s, int repeat,
                                int warmup, double *median, double *cpu_median)
{
    *median = *cpu_median = 0;
    const size_t sa = s->m * s->k, sb = s->k * s->n, sc = s->m * s->n;
    const size_t lda = s->ta ? s->m : s->k;
    size_t most = sa > sb ? sa : sb;
    most = most > sc ? most : sc;
    float *host = malloc(most * F4);
    double *t = calloc((size_t)(repeat > 0 ? repeat : 1), sizeof *t);
    double *tc = calloc((size_t)(repeat > 0 ? repeat : 1), sizeof *tc);
    if (!host || !t || !tc) {
        free(host);
        free(t);
        free(tc);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "bench: out of host memory");
    }
    for (size_t i = 0; i < most; i++)
        host[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    cl_mem a = NULL, b = NULL, c = NULL;
    enco_status st = enco_buffer_alloc(ctx, sa * F4, &a);
    if (st == ENCO_OK)
        st = enco_buffer_alloc(ctx, sb * s->batch * F4, &b);
    if (st == ENCO_OK)
        st = enco_buffer_alloc(ctx, sc * s->batch * F4, &c);
    if (st == ENCO_OK)
        st = enco_upload(ctx, a, 0, sa * F4, host);
    for (size_t q = 0; st == ENCO_OK && q < s->batch; q++)
        st = enco_upload(ctx, b, q * sb * F4, sb * F4, host);
    for (size_t q = 0; st == ENCO_OK && q < s->batch; q++)
        st = enco_upload(ctx, c, q * sc * F4, sc * F4, host);
    free(host);
    for (int i = 0; st == ENCO_OK && i < warmup + repeat; i++) {
        double t0 = now_seconds(), c0 = cpu_seconds();
        /* The weight as A, shared by the batch (stride 0), as the convolutions use it. */
        st = enco_sgemm_batched(ctx, s->ta, 0, s->m, s->n, s->k, 1.0f, a, 0, lda, 0, b, 0, s->n,
                                sb, s->beta, c, 0, s->n, sc, s->batch);
        if (st == ENCO_OK)
            st = enco_finish(ctx);
        if (i >= warmup) {
            t[i - warmup] = now_seconds() - t0;
            tc[i - warmup] = cpu_seconds() - c0;
        }
    }
    if (st == ENCO_OK) {
        *median = enco_bench_median(t, (size_t)repeat);
        *cpu_median = enco_bench_median(tc, (size_t)repeat);
    }
    free(t);
    free(tc);
    enco_buffer_free(ctx, a);
    enco_buffer_free(ctx, b);
    enco_buffer_free(ctx, c);
    return st;
}
