/* Benchmarks: the kernel table recorded from one training step (shapes,
 * counts, costs, launches; EnCo and CUT), replays, timed
 * rows on a tiny configuration, --op filtering, the roofline share, the
 * nominal peak, the ceilings, one end-to-end step and the JSON report. No
 * assertion is about speed. */
#include "harness.h"

#include "bench/bench.h"
#include "models/family.h"
#include "ops/adam.h"
#include "ops/conv.h"
#include "ops/norm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIZE 32

static const enco_bench_row *find_row(const enco_bench_row *rows, size_t n, const char *name,
                                      const char *where_prefix, const char *shape_part)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, name) == 0 &&
            strncmp(rows[i].where, where_prefix, strlen(where_prefix)) == 0 &&
            (!shape_part || strstr(rows[i].shape, shape_part)))
            return &rows[i];
    return NULL;
}

static enco_bench_options tiny(const char *filter)
{
    enco_bench_options o = enco_bench_options_default();
    o.size = SIZE;
    o.repeat = 1;
    o.warmup = 0;
    o.filter = filter;
    return o;
}

START_TEST(plan_shapes_and_counts)
{
    enco_bench_options o = tiny(NULL);
    enco_bench_row *rows = NULL;
    size_t n = 0;
    unsigned long launches = 0;
    ENCO_CK(enco_bench_plan(test_ctx(), &o, &rows, &n, &launches));
    ck_assert_uint_gt(n, 50);
    /* The rows are the recorded step: every launch is in exactly one row. */
    unsigned long sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (unsigned long)rows[i].per_iter * (unsigned long)rows[i].launches;
    ck_assert_uint_gt(launches, 500);
    ck_assert_uint_eq(sum, launches);

    /* G's first conv: 2 images (identity term), 7x7 reflect, 3 -> 64. */
    const enco_bench_row *r = find_row(rows, n, "conv2d.fwd", "G model.1", NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->per_iter, 1);
    ck_assert_int_ge(r->launches, 1);
    enco_conv2d_shape s = {.n = 2, .cin = 3, .h = SIZE, .w = SIZE, .cout = 64, .kh = 7, .kw = 7,
                           .stride_h = 1, .stride_w = 1, .pad_h = 3, .pad_w = 3,
                           .pad_mode = ENCO_PAD_REFLECT};
    enco_op_cost c = enco_conv2d_cost(&s, 0);
    ck_assert_double_eq_tol(r->cost.flops, c.flops, 0.5);
    ck_assert_double_eq_tol(r->cost.flops, 2.0 * 2 * 64 * SIZE * SIZE * 3 * 49 + 2 * 64 * SIZE * SIZE,
                            0.5);
    /* G's first conv gets no input gradient: its backward is the weight gradient alone. */
    ck_assert_ptr_null(find_row(rows, n, "conv2d.bwd", "G model.1", "n2 3x"));
    ck_assert_ptr_nonnull(find_row(rows, n, "conv2d.bwd_weight", "G model.1", NULL));

    /* 9 residual blocks: 18 identical convs at 1/4 resolution, forward and
     * backward (input and weight gradients in one call). */
    char shape[64];
    snprintf(shape, sizeof shape, "n2 256x%dx%d>256", SIZE / 4, SIZE / 4);
    r = find_row(rows, n, "conv2d.fwd", "G model.", shape);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->per_iter, 18);
    r = find_row(rows, n, "conv2d.bwd", "G model.", shape);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->per_iter, 18);
    /* Their residual adds: forward, and the two halves of the backward. */
    ck_assert_int_eq(find_row(rows, n, "add.fwd", "G model.", NULL)->per_iter, 9);
    ck_assert_int_eq(find_row(rows, n, "add.bwd_skip", "G model.", NULL)->per_iter, 9);

    /* D runs on 2 images in its step and on 1 in the G step; the dx-only
     * pass of the G step never computes weight gradients. */
    ck_assert_ptr_nonnull(find_row(rows, n, "conv2d.fwd", "D model.3", "n2 "));
    ck_assert_ptr_nonnull(find_row(rows, n, "conv2d.fwd", "D model.3", "n1 "));
    ck_assert_ptr_nonnull(find_row(rows, n, "conv2d.bwd", "D model.3", "n2 "));
    ck_assert_ptr_nonnull(find_row(rows, n, "conv2d.bwd_data", "D model.3", "n1 "));
    ck_assert_ptr_null(find_row(rows, n, "conv2d.bwd", "D model.3", "n1 "));
    ck_assert_ptr_null(find_row(rows, n, "conv2d.bwd_weight", "D model.3", "n1 "));

    /* Instance norm forward cost from the family's function. */
    r = find_row(rows, n, "instnorm.fwd", "G model.3", NULL);
    ck_assert_ptr_nonnull(r);
    c = enco_instnorm_forward_cost(2, 64, SIZE, SIZE);
    ck_assert_double_eq_tol(r->cost.flops, c.flops, 0.5);
    ck_assert_double_eq_tol(r->cost.bytes, c.bytes, 0.5);

    /* Adam over every parameter of G (11,378,179 in the default model). */
    r = find_row(rows, n, "adam", "G", NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->shape, "11378179 params");
    ck_assert_int_eq(r->launches, 1);
    c = enco_adam_cost(11378179);
    ck_assert_double_eq_tol(r->cost.flops, c.flops, 0.5);

    /* Three losses of LSGAN per iteration, one L1, an EnCo loss per pair. */
    r = find_row(rows, n, "loss.lsgan", "loss", NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->per_iter, 3);
    ck_assert_ptr_nonnull(find_row(rows, n, "loss.l1", "loss", NULL));
    ck_assert_ptr_nonnull(find_row(rows, n, "dag.fwd", "sampling pair 0", NULL));
    ck_assert_ptr_nonnull(find_row(rows, n, "linear.fwd", "F prj_0.3", "+bias"));
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_ge(rows[i].per_iter, 1);
        ck_assert_int_ge(rows[i].commands, 1);
        ck_assert_int_le(rows[i].launches, rows[i].commands);
        ck_assert_msg(rows[i].cost.bytes > 0, "%s %s has no traffic", rows[i].name,
                      rows[i].where);
        ck_assert_msg(strcmp(rows[i].where, "untagged") != 0, "untagged command %s %s",
                      rows[i].name, rows[i].shape);
        ck_assert(rows[i].seconds == 0);
    }
    free(rows);
}
END_TEST

/* A net's layer named by a row's where ("G model.12.conv_block.1", "D
 * model.3", "F mlp_0.0", "F prj_0"): a parameter name starts with it, or a
 * layer of the network keeps that module. */
static int names_layer(const enco_trainer *t, const char *where)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", where);
    char *plus = strstr(buf, " (+");
    if (plus)
        *plus = 0;
    static const char *const other[] = {"grads", "input", "input grad", "output grad"};
    for (int i = 0; i < t->nnets; i++) {
        size_t nl = strlen(t->family->nets[i]);
        if (strcmp(buf, t->family->nets[i]) == 0)
            return 1; /* the whole network: its Adam step */
        if (strncmp(buf, t->family->nets[i], nl) != 0 || buf[nl] != ' ')
            continue;
        const char *part = buf + nl + 1;
        for (size_t k = 0; k < sizeof other / sizeof other[0]; k++)
            if (strcmp(part, other[k]) == 0)
                return 1;
        const size_t pl = strlen(part);
        const enco_param_set *ps = &t->nets[i];
        for (size_t k = 0; k < ps->count; k++)
            if (strncmp(ps->list[k].name, part, pl) == 0 && ps->list[k].name[pl] == '.')
                return 1;
        const enco_seqnet *sn = i == 0 ? &t->gnet : i == 1 ? &t->dnet : NULL;
        int module = -1;
        if (sn && sscanf(part, "model.%d", &module) == 1 && !strchr(part + 6, '.'))
            for (size_t k = 0; k < sn->nlayers; k++)
                if (sn->layers[k].module == module)
                    return 1;
    }
    return strcmp(buf, "loss") == 0 || strcmp(buf, "input") == 0 ||
           strncmp(buf, "sampling ", 9) == 0;
}

/* Records one step of `family` directly and checks the recording against
 * the context's launch counter, the table's rows against the trainer's
 * layers, and a replay of every op. */
static void recorded_family(const char *family, int want_prj)
{
    enco_ctx *ctx = test_ctx();
    enco_config cfg;
    enco_config_defaults(&cfg);
    snprintf(cfg.model.family, sizeof cfg.model.family, "%s", family);
    cfg.train.batch_size = 1;
    enco_trainer *t = NULL;
    ENCO_CK(enco_trainer_create(ctx, &cfg, 1, SIZE, SIZE, &t));
    ENCO_CK(enco_trainer_init_weights(t));
    const size_t img = 3 * SIZE * SIZE;
    float *in = calloc(2 * img, sizeof *in);
    ck_assert_ptr_nonnull(in);
    for (size_t i = 0; i < 2 * img; i++)
        in[i] = (float)(i % 17) / 8.5f - 1.0f;
    ENCO_CK(enco_trainer_step(t, in, in + img, NULL));
    ENCO_CK(enco_finish(ctx));
    const unsigned long before = enco_ctx_get_stats(ctx).kernel_launches;
    ENCO_CK(enco_ctx_trace_begin(ctx));
    ck_assert_int_eq(enco_ctx_trace_begin(ctx), ENCO_ERR_INVALID_ARG);
    ENCO_CK(enco_trainer_step(t, in, in + img, NULL));
    enco_trace *tr = NULL;
    ENCO_CK(enco_ctx_trace_end(ctx, &tr));
    const unsigned long step = enco_ctx_get_stats(ctx).kernel_launches - before;
    unsigned long recorded = 0;
    for (size_t i = 0; i < tr->nops; i++)
        recorded += tr->ops[i].launches;
    ck_assert_uint_eq(recorded, step);
    /* Replaying an op launches exactly its recorded launches again. */
    for (size_t i = 0; i < tr->nops; i++) {
        const unsigned long b = enco_ctx_get_stats(ctx).kernel_launches;
        ENCO_CK(enco_trace_replay(ctx, tr, i));
        ck_assert_uint_eq(enco_ctx_get_stats(ctx).kernel_launches - b, tr->ops[i].launches);
    }
    ENCO_CK(enco_finish(ctx));
    ck_assert_int_eq(enco_trace_replay(ctx, tr, tr->nops), ENCO_ERR_INVALID_ARG);

    /* The table of the same family and size: the same launches, every row
     * placed at a real layer (or a loss, the sampling, the inputs). */
    enco_bench_options o = tiny(NULL);
    o.family = family;
    enco_bench_row *rows = NULL;
    size_t n = 0;
    unsigned long launches = 0;
    ENCO_CK(enco_bench_plan(ctx, &o, &rows, &n, &launches));
    ck_assert_uint_eq(launches, step);
    int mlp = 0, prj = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(names_layer(t, rows[i].where), "%s: row %s at '%s' names no layer", family,
                      rows[i].name, rows[i].where);
        mlp += strncmp(rows[i].where, "F mlp_", 6) == 0;
        prj += strncmp(rows[i].where, "F prj_", 6) == 0;
        ck_assert_msg(want_prj || (strcmp(rows[i].name, "loss.enco") != 0 &&
                                   strncmp(rows[i].where, "sampling pair", 13) != 0),
                      "%s has EnCo's %s %s", family, rows[i].name, rows[i].where);
    }
    ck_assert_int_gt(mlp, 0);
    ck_assert_int_eq(prj > 0, want_prj);
    ck_assert_ptr_nonnull(find_row(rows, n, want_prj ? "loss.enco" : "loss.patchnce", "loss",
                                   NULL));
    free(rows);
    enco_trace_free(tr);
    enco_trainer_free(t);
    free(in);
}

START_TEST(recorded_step)
{
    recorded_family("enco", 1);
    recorded_family("cut", 0);
}
END_TEST

START_TEST(plan_filter)
{
    enco_bench_options o = tiny("adam");
    enco_bench_row *rows = NULL;
    size_t n = 0;
    ENCO_CK(enco_bench_plan(test_ctx(), &o, &rows, &n, NULL));
    ck_assert_uint_eq(n, 3); /* G, D, F */
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(rows[i].name, "adam");
    free(rows);

    o.filter = "D model.0"; /* matches on "name where" */
    ENCO_CK(enco_bench_plan(test_ctx(), &o, &rows, &n, NULL));
    ck_assert_uint_gt(n, 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(rows[i].where, "D model.0");
    free(rows);

    o.filter = "no-such-op";
    ENCO_CK(enco_bench_plan(test_ctx(), &o, &rows, &n, NULL));
    ck_assert_uint_eq(n, 0);
    free(rows);

    o.filter = NULL;
    o.size = 30; /* not a multiple of 4 */
    ck_assert_int_eq(enco_bench_plan(test_ctx(), &o, &rows, &n, NULL), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "multiples of 4"));
    o.size = 20; /* D shrinks it to nothing */
    ck_assert_int_ne(enco_bench_plan(test_ctx(), &o, &rows, &n, NULL), ENCO_OK);
    o.size = 24;
    ENCO_CK(enco_bench_plan(test_ctx(), &o, &rows, &n, NULL));
    ck_assert_uint_gt(n, 0);
    free(rows);
    o.batch = 0;
    ck_assert_int_eq(enco_bench_plan(test_ctx(), &o, &rows, &n, NULL), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "batch 0"));
    o.batch = 1;
    o.family = "pix2pix";
    ck_assert_int_eq(enco_bench_plan(test_ctx(), &o, &rows, &n, NULL), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "pix2pix"));
}
END_TEST

/* Runs a filtered table and checks every row was timed. */
static void run_filtered(const char *filter, size_t min_rows)
{
    enco_bench_options o = tiny(filter);
    enco_bench_row *rows = NULL;
    size_t n = 0;
    ENCO_CK(enco_bench_kernels(test_ctx(), &o, &rows, &n));
    ck_assert_uint_ge(n, min_rows);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(strstr(rows[i].name, filter) || strstr(rows[i].where, filter),
                      "row %s %s kept by filter %s", rows[i].name, rows[i].where, filter);
        ck_assert_msg(rows[i].seconds > 0 && rows[i].min_seconds > 0, "%s not timed",
                      rows[i].name);
        ck_assert_int_eq(rows[i].runs, 1);
    }
    free(rows);
}

START_TEST(kernels_run_tiny)
{
    run_filtered("instnorm", 8);
    run_filtered("adam", 3);
    run_filtered("loss", 3);
    run_filtered("sampling", 6); /* bilinear, permutations, DAG */
    run_filtered("F mlp_2", 8); /* head 2: gather, linear, batchnorm, relu */
    run_filtered("blur", 4);
    run_filtered("D model.14", 4); /* its conv: fwd (2 and 1 images), bwd, bwd_data */
}
END_TEST

START_TEST(row_share_roofline)
{
    enco_bench_peak pk = {.gemm_gflops = 100, .copy_gbs = 10};
    /* 1 GFLOP over 1 GB: intensity 1 -> memory-bound at 10 GFLOP/s. */
    enco_bench_row r = {.seconds = 0.2, .cost = {1e9, 1e9}};
    double share;
    ck_assert_int_eq(enco_bench_row_share(&r, &pk, &share), 1);
    ck_assert_double_eq_tol(share, 0.5, 1e-12); /* 5 of 10 GFLOP/s */
    /* Intensity 100: compute-bound at 100 GFLOP/s. */
    r.cost = (enco_op_cost){1e9, 1e7};
    r.seconds = 0.04;
    ck_assert_int_eq(enco_bench_row_share(&r, &pk, &share), 0);
    ck_assert_double_eq_tol(share, 0.25, 1e-12);
    /* The row's own probed ceiling replaces the table's: 25 of 50 GFLOP/s. */
    r.local_gflops = 50;
    ck_assert_int_eq(enco_bench_row_share(&r, &pk, &share), 0);
    ck_assert_double_eq_tol(share, 0.5, 1e-12);
    /* ... and moves the roofline's ridge: intensity 2 is memory-bound (20
     * GFLOP/s) under 100 but compute-bound under a probed 15. */
    r.cost = (enco_op_cost){1e9, 5e8};
    r.seconds = 0.1; /* 10 GFLOP/s */
    r.local_gflops = 0;
    ck_assert_int_eq(enco_bench_row_share(&r, &pk, &share), 1);
    ck_assert_double_eq_tol(share, 0.5, 1e-12);
    r.local_gflops = 15;
    ck_assert_int_eq(enco_bench_row_share(&r, &pk, &share), 0);
    ck_assert_double_eq_tol(share, 10.0 / 15.0, 1e-12);
    r.local_gflops = 0;
    /* No FLOPs: bandwidth share. */
    r.cost = (enco_op_cost){0, 1e9};
    r.seconds = 0.5;
    ck_assert_int_eq(enco_bench_row_share(&r, &pk, &share), 1);
    ck_assert_double_eq_tol(share, 0.2, 1e-12);
}
END_TEST

/* With probe_n every row carries the SGEMM rate probed next to it; without,
 * none does. A bad probe size is refused. */
START_TEST(kernels_local_ceiling)
{
    enco_bench_options o = tiny("D model.14");
    enco_bench_row *rows = NULL;
    size_t n = 0;
    o.probe_n = 64;
    ENCO_CK(enco_bench_kernels(test_ctx(), &o, &rows, &n));
    ck_assert_uint_ge(n, 3);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(rows[i].local_gflops > 0 && isfinite(rows[i].local_gflops),
                      "row %s %s: local ceiling %g", rows[i].name, rows[i].where,
                      rows[i].local_gflops);
    free(rows);
    o.probe_n = 0;
    ENCO_CK(enco_bench_kernels(test_ctx(), &o, &rows, &n));
    for (size_t i = 0; i < n; i++)
        ck_assert(rows[i].local_gflops == 0);
    free(rows);
    enco_bench_probe p;
    ck_assert_int_eq(enco_bench_probe_init(test_ctx(), 8, &p), ENCO_ERR_INVALID_ARG);
    double r;
    ck_assert_int_eq(enco_bench_probe_rate(&p, 1, &r), ENCO_ERR_INVALID_ARG);
    enco_bench_probe_free(&p);
}
END_TEST

START_TEST(nominal_peak)
{
    enco_device_info d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "pthread-haswell-AMD EPYC");
    snprintf(d.vendor, sizeof d.vendor, "AuthenticAMD");
    snprintf(d.type, sizeof d.type, "CPU");
    d.compute_units = 2;
    d.max_clock_mhz = 2500;
    char basis[128];
    ck_assert_double_eq_tol(enco_bench_nominal_gflops(&d, basis, sizeof basis), 160.0, 1e-9);
    /* PoCL's skylake-avx512 target on an AMD CPU is a Zen 4: 256-bit FMA units */
    snprintf(d.name, sizeof d.name, "pthread-skylake-avx512-AMD EPYC");
    ck_assert_double_eq_tol(enco_bench_nominal_gflops(&d, basis, sizeof basis), 160.0, 1e-9);
    ck_assert_ptr_nonnull(strstr(basis, "Zen 4"));
    snprintf(d.name, sizeof d.name, "pthread-skylake-avx512-Intel(R) Xeon(R) Gold 6248");
    snprintf(d.vendor, sizeof d.vendor, "GenuineIntel");
    ck_assert_double_eq_tol(enco_bench_nominal_gflops(&d, basis, sizeof basis), 320.0, 1e-9);
    snprintf(d.name, sizeof d.name, "pthread-cortex-a72");
    ck_assert(enco_bench_nominal_gflops(&d, basis, sizeof basis) < 0);
    ck_assert_ptr_nonnull(strstr(basis, "unknown"));
    snprintf(d.name, sizeof d.name, "NVIDIA H100");
    snprintf(d.vendor, sizeof d.vendor, "NVIDIA Corporation");
    snprintf(d.type, sizeof d.type, "GPU");
    d.is_gpu = 1;
    ck_assert(enco_bench_nominal_gflops(&d, basis, sizeof basis) < 0);
    snprintf(d.vendor, sizeof d.vendor, "Advanced Micro Devices, Inc.");
    d.compute_units = 60;
    d.max_clock_mhz = 2000;
    ck_assert_double_eq_tol(enco_bench_nominal_gflops(&d, basis, sizeof basis), 15360.0, 1e-6);
}
END_TEST

START_TEST(peak_small)
{
    enco_bench_peak pk;
    ENCO_CK(enco_bench_peak_run(test_ctx(), 128, 1.0, 1, &pk));
    ck_assert(pk.gemm_gflops > 0 && pk.gemm_seconds > 0);
    ck_assert_int_eq(pk.gemm_n == 128 || pk.gemm_n == 256, 1);
    ck_assert(pk.copy_gbs > 0);
    ck_assert_double_eq_tol(pk.copy_mib, 1.0, 1e-9);
    /* the FMA ceiling is measured on CPU devices only */
    if (enco_ctx_device(test_ctx())->is_gpu)
        ck_assert(pk.fma_gflops == 0);
    else
        ck_assert(pk.fma_gflops > 0);
    ck_assert_int_eq(enco_bench_peak_run(test_ctx(), 32, 1.0, 1, &pk), ENCO_ERR_INVALID_ARG);
}
END_TEST

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char *buf = calloc(1, 1 << 20);
    ck_assert_ptr_nonnull(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

START_TEST(e2e_and_json)
{
    enco_bench_e2e e;
    ENCO_CK(enco_bench_e2e_run(NULL, SIZE, 1, 1, 0, NULL, NULL, &e));
    ck_assert(e.sec_per_iter > 0 && e.profiled_sec_per_iter > 0 && e.first_iter_seconds > 0);
    double sum = 0;
    for (int p = 0; p < e.nphases; p++) {
        ck_assert(e.phase_seconds[p] >= 0);
        sum += e.phase_seconds[p];
    }
    ck_assert(sum > 0 && sum <= 1.5 * e.profiled_sec_per_iter + 0.05);
    ck_assert_uint_eq(e.params[0], 11378179);
    ck_assert_uint_eq(e.params[1], 2764737);
    ck_assert(e.device_peak_bytes >= 4 * (uint64_t)(e.params[0] + e.params[1]) * 4);
    ck_assert(isfinite(e.loss_g));

    enco_bench_options o = tiny("adam");
    enco_bench_row *rows = NULL;
    size_t n = 0;
    ENCO_CK(enco_bench_kernels(test_ctx(), &o, &rows, &n));
    enco_bench_peak pk = {.gemm_n = 256, .gemm_seconds = 0.01, .gemm_gflops = 3.5,
                          .copy_mib = 1, .copy_seconds = 0.001, .copy_gbs = 2.5,
                          .nominal_gflops = -1};
    snprintf(pk.nominal_basis, sizeof pk.nominal_basis, "unknown: \"quoted\" test");
    char path[] = "/tmp/enco-test-bench-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ENCO_CK(enco_bench_write_json(path, enco_ctx_device(test_ctx()), &pk, &o, rows, n, &e, 1));
    char *text = slurp(path);
    ck_assert_ptr_nonnull(strstr(text, "\"gemm_gflops\": 3.5"));
    ck_assert_ptr_nonnull(strstr(text, "\"fma_gflops\": "));
    ck_assert_ptr_nonnull(strstr(text, "\"nominal_gflops\": null"));
    ck_assert_ptr_nonnull(strstr(text, "\\\"quoted\\\""));
    ck_assert_ptr_nonnull(strstr(text, "\"name\": \"adam\""));
    ck_assert_ptr_nonnull(strstr(text, "\"filter\": \"adam\""));
    free(text);

    /* A real JSON parser reads it back (python3 is a build dependency). */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
             "r=d[\"kernels\"][\"rows\"]; "
             "print(len(r), r[0][\"name\"], r[0][\"per_iter\"], r[0][\"seconds\"] > 0, "
             "d[\"e2e\"][0][\"size\"], d[\"e2e\"][0][\"params\"][0], "
             "d[\"peak\"][\"copy_gbs\"], sorted(d[\"e2e\"][0][\"phases\"])[0])' %s",
             path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[256] = {0};
    ck_assert_ptr_nonnull(fgets(line, sizeof line, p));
    ck_assert_int_eq(pclose(p), 0);
    char expect[256];
    snprintf(expect, sizeof expect, "3 adam 1 True %d 11378179 2.5 Adam G+F\n", SIZE);
    ck_assert_str_eq(line, expect);
    unlink(path);
    free(rows);

    /* An unwritable path is an error naming it. */
    ck_assert_int_eq(enco_bench_write_json("/nonexistent-dir/x.json", NULL, NULL, NULL, NULL, 0,
                                           NULL, 0),
                     ENCO_ERR_IO);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "/nonexistent-dir/x.json"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench");
    TCase *tc = tcase_create("bench");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, plan_shapes_and_counts);
    tcase_add_test(tc, plan_filter);
    tcase_add_test(tc, recorded_step);
    tcase_add_test(tc, row_share_roofline);
    tcase_add_test(tc, kernels_local_ceiling);
    tcase_add_test(tc, nominal_peak);
    tcase_add_test(tc, kernels_run_tiny);
    tcase_add_test(tc, peak_small);
    tcase_add_test(tc, e2e_and_json);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
