/* enco-cl bench [--peak] [--kernels] [--e2e] [options] */
#include "cli/cli.h"

#include "bench/bench.h"
#include "dist/dist.h"
#include "nn/models.h"

#include <errno.h>
#include <getopt.h>

#include "models/family.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: enco-cl bench [--peak] [--kernels] [--e2e] [options]\n\n"
           "Measures the device and a model family's training step. Without a part\n"
           "selected, runs all three parts at --size.\n\n"
           "  --peak          measured ceilings: SGEMM rate (enco_sgemm, square sizes up to\n"
           "                  --gemm-max), copy bandwidth (clEnqueueCopyBuffer, read +\n"
           "                  write bytes) and on CPU devices the FMA rate (independent\n"
           "                  fma chains on every core); the nominal FP32 peak where the\n"
           "                  vendor's SIMD width is known\n"
           "  --kernels       per-op table of one training step of the family's default\n"
           "                  configuration (batch 1): the trainer runs one step, records\n"
           "                  the next (every kernel launch, GEMM, copy, fill and upload,\n"
           "                  grouped into the ops of the layers, losses and optimizers),\n"
           "                  and each distinct op is enqueued again alone and timed:\n"
           "                  median of --repeat runs, each between clFinish calls; x is\n"
           "                  the op's calls per step; includes --peak\n"
           "                  for the share of the roofline ceiling (measured before and\n"
           "                  after the table; the higher counts)\n"
           "  --local-ceiling with --kernels: also time the ceiling's SGEMM just before\n"
           "                  and after each row and take each row's share against the\n"
           "                  higher of those two (column 'ceil'), for machines whose speed\n"
           "                  drifts during the table (shared VMs); adds ~0.1 s per row\n"
           "  --gemm          SGEMM (enco_sgemm_batched) at the convolution shapes that\n"
           "                  dominate training; median of --repeat calls, GFLOP/s\n"
           "  --e2e           seconds per training iteration (median of --iters steps after\n"
           "                  --warmup), then --iters profiled steps for the phase split, and\n"
           "                  the peak device memory (a fresh context per size), images/s.\n"
           "                  Under mpirun (a build with Open MPI) --e2e alone: each of the\n"
           "                  N processes trains --batch images of a global batch of N x\n"
           "                  --batch, its gradients summed across the processes after each\n"
           "                  phase as enco-cl train does; process 0 reports s/iter, images/s\n"
           "                  of the global batch and the communication per iteration (bytes\n"
           "                  received, sums, seconds inside the collectives and their share\n"
           "                  of the step; the gradients' device-host copies are not in it),\n"
           "                  the others print nothing\n\n"
           "  --size S        image size (a multiple of 4, at least 24: the smallest the\n"
           "                  default discriminator takes; default 256)\n"
           "  --sizes LIST    image sizes for --e2e, e.g. 256,128,64 (default: --size)\n"
           "  --family NAME   model family --kernels records and --e2e trains: enco\n"
           "                  (default), cut, fastcut, cyclegan, dclgan, each with its default\n"
           "                  configuration\n"
           "  --set K=V       with --e2e: override one option of the family's default\n"
           "                  configuration, e.g. --set 'model.prj_norm=\"ln\"' (repeatable)\n"
           "  --batch N       images per batch (per process under mpirun) for --e2e\n"
           "                  (default 1)\n"
           "  --op NAME       keep table rows whose 'name where' contains NAME (a\n"
           "                  trailing $ anchors it at the end: 'G model.1$')\n"
           "  --repeat N      timed launches per table row (default 5)\n"
           "  --iters N       timed steps per --e2e size (default 3)\n"
           "  --warmup N      untimed launches / steps first (default 1)\n"
           "  --gemm-max N    largest SGEMM size (default 1024 on CPUs, 4096 on GPUs)\n"
           "  --copy-mib M    copy size in MiB (default 64 on CPUs, 256 on GPUs)\n"
           "  --json FILE     also write the results as JSON (bench/compare_runs A.json\n"
           "                  B.json sets two such files side by side)\n"
           "  --quiet         no progress line on stderr (drawn on a terminal only)\n"
           "  --device SPEC   device (index or part of a name; default ENCO_DEVICE / first GPU)\n"
           "  -h, --help      this text\n");
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return 0;
    *out = (int)v;
    return 1;
}

static void print_peak(const enco_bench_peak *pk)
{
    printf("ceilings (measured)\n");
    printf("  SGEMM        %8.1f GFLOP/s  (n = %d, %.2f ms)\n", pk->gemm_gflops, pk->gemm_n,
           pk->gemm_seconds * 1e3);
    printf("  copy         %8.2f GB/s     (%.0f MiB, read + write, %.2f ms)\n", pk->copy_gbs,
           pk->copy_mib, pk->copy_seconds * 1e3);
    if (pk->fma_gflops > 0)
        printf("  FMA          %8.1f GFLOP/s  (independent fma chains on every compute unit); "
               "SGEMM reaches %.0f%%\n",
               pk->fma_gflops, 100.0 * pk->gemm_gflops / pk->fma_gflops);
    if (pk->nominal_gflops > 0 && pk->fma_gflops > 1.05 * pk->nominal_gflops)
        printf("  nominal FP32 %8.1f GFLOP/s  (%s); below the measured FMA rate: the cores run "
               "above the clock the device reports\n",
               pk->nominal_gflops, pk->nominal_basis);
    else if (pk->nominal_gflops > 0)
        printf("  nominal FP32 %8.1f GFLOP/s  (%s); SGEMM reaches %.0f%%\n", pk->nominal_gflops,
               pk->nominal_basis, 100.0 * pk->gemm_gflops / pk->nominal_gflops);
    else
        printf("  nominal FP32  unknown (%s)\n", pk->nominal_basis);
}

static int cmp_row_time(const void *a, const void *b)
{
    const enco_bench_row *x = *(const enco_bench_row *const *)a;
    const enco_bench_row *y = *(const enco_bench_row *const *)b;
    double tx = x->per_iter * x->seconds, ty = y->per_iter * y->seconds;
    return tx < ty ? 1 : tx > ty ? -1 : 0;
}

static void print_table(const enco_bench_options *o, const enco_bench_peak *pk,
                        const enco_bench_row *rows, size_t n)
{
    double total = 0;
    int local = 0;
    for (size_t i = 0; i < n; i++) {
        total += rows[i].per_iter * rows[i].seconds;
        local |= rows[i].local_gflops > 0;
    }
    printf("\nkernels of one %s step at %dx%d, batch %d (median of %d after %d warm-up; x = "
           "calls per iteration)\n",
           o->family ? o->family : "enco", o->size, o->size, o->batch, o->repeat, o->warmup);
    if (local)
        printf("shares of compute-bound rows against 'ceil', the SGEMM rate at n = %d probed "
               "just before and after the row (the higher)\n",
               o->probe_n);
    printf("%-18s %-28s %-40s %3s %9s %8s %7s %3s %6s %9s %5s%s\n", "op", "where", "shape", "x",
           "ms", "GFLOP/s", "GB/s", "bnd", "share", "ms/iter", "%it", local ? "    ceil" : "");
    for (size_t i = 0; i < n; i++) {
        const enco_bench_row *r = &rows[i];
        double share;
        int mem = enco_bench_row_share(r, pk, &share);
        double it = r->per_iter * r->seconds;
        printf("%-18s %-28.28s %-40.40s %3d %9.3f %8.2f %7.2f %3s %5.1f%% %9.2f %5.1f", r->name,
               r->where, r->shape, r->per_iter, r->seconds * 1e3,
               r->seconds > 0 ? r->cost.flops / r->seconds / 1e9 : 0.0,
               r->seconds > 0 ? r->cost.bytes / r->seconds / 1e9 : 0.0, mem ? "mem" : "cmp",
               100.0 * share, it * 1e3, total > 0 ? 100.0 * it / total : 0.0);
        if (local)
            printf(" %7.1f", r->local_gflops);
        putchar('\n');
    }
    printf("sum over rows x launches per iteration: %.3f s\n", total);
    if (!n)
        return;
    /* Where the time goes: the heaviest rows and the op totals. */
    const enco_bench_row **sorted = malloc(n * sizeof *sorted);
    if (!sorted)
        return;
    for (size_t i = 0; i < n; i++)
        sorted[i] = &rows[i];
    qsort(sorted, n, sizeof *sorted, cmp_row_time);
    printf("\nheaviest rows (share of the sum)\n");
    for (size_t i = 0; i < n && i < 10; i++) {
        const enco_bench_row *r = sorted[i];
        double it = r->per_iter * r->seconds;
        printf("  %5.1f%%  %8.2f ms  %-18s %s  %s\n", total > 0 ? 100.0 * it / total : 0.0,
               it * 1e3, r->name, r->where, r->shape);
    }
    printf("\nby op (share of the sum)\n");
    typedef struct op_sum {
        const char *name;
        double seconds;
    } op_sum;
    op_sum *ops = calloc(n, sizeof *ops);
    size_t nops = 0;
    for (size_t i = 0; ops && i < n; i++) {
        size_t j = 0;
        while (j < nops && strcmp(ops[j].name, rows[i].name) != 0)
            j++;
        if (j == nops)
            ops[nops++].name = rows[i].name;
        ops[j].seconds += rows[i].per_iter * rows[i].seconds;
    }
    for (size_t i = 1; i < nops; i++) /* few entries: insertion sort, largest first */
        for (size_t j = i; j > 0 && ops[j].seconds > ops[j - 1].seconds; j--) {
            op_sum t = ops[j];
            ops[j] = ops[j - 1];
            ops[j - 1] = t;
        }
    for (size_t i = 0; i < nops; i++)
        printf("  %5.1f%%  %8.2f ms  %s\n", total > 0 ? 100.0 * ops[i].seconds / total : 0.0,
               ops[i].seconds * 1e3, ops[i].name);
    free(ops);
    free(sorted);
}

static void print_e2e(const enco_bench_e2e *e)
{
    printf("\nend to end %dx%d, batch %d: %.3f s/iter (median of %d, min %.3f); first step "
           "%.3f s, setup %.3f s\n",
           e->size, e->size, e->batch, e->sec_per_iter, e->iters, e->min_sec_per_iter,
           e->first_iter_seconds, e->setup_seconds);
    printf("  model %s; peak device memory %.1f MiB; parameters", e->family,
           (double)e->device_peak_bytes / (1024.0 * 1024.0));
    for (int k = 0; k < e->nnets; k++)
        printf("%s %s %zu", k ? "," : "", e->net_names[k], e->params[k]);
    printf("; loss_G %.4f\n", (double)e->loss_g);
    double sum = 0;
    for (int p = 0; p < e->nphases; p++)
        sum += e->phase_seconds[p];
    if (e->processes > 1) {
        printf("  %d processes x batch %d = %d images per iteration: %.2f images/s\n",
               e->processes, e->batch, e->global_batch, e->images_per_second);
        printf("  communication per iteration (process 0): %.2f MiB received in %.0f sums of "
               "%.0f floats, %.4f s in the collectives = %.1f%% of the step\n",
               e->comm_bytes_per_iter / (1024.0 * 1024.0), e->comm_sums_per_iter,
               e->comm_floats_per_iter, e->comm_seconds_per_iter, 100.0 * e->comm_share);
    } else {
        printf("  %.2f images/s (one process)\n", e->images_per_second);
    }
    printf("  profiled: %.3f s/iter (a device sync per phase)\n", e->profiled_sec_per_iter);
    for (int p = 0; p < e->nphases; p++)
        printf("    %-34s %8.3f s  %5.1f%%\n", e->phase_names[p],
               e->phase_seconds[p], sum > 0 ? 100.0 * e->phase_seconds[p] / sum : 0.0);
}

static int bench_body(int want_peak, int want_kernels, int want_e2e, int want_gemm,
                      int local_ceiling, int iters, int gemm_max, int copy_mib,
                      const int *sizes, int nsizes, int e2e_batch, const enco_config *ecfg,
                      const char *json, const char *device, int quiet, enco_bench_options *ko_in,
                      enco_dist *dist);

int cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"peak", no_argument, NULL, 'P'},       {"kernels", no_argument, NULL, 'K'},
        {"e2e", no_argument, NULL, 'E'},        {"gemm", no_argument, NULL, 'G'},        {"size", required_argument, NULL, 's'},
        {"sizes", required_argument, NULL, 'S'}, {"op", required_argument, NULL, 'o'},
        {"repeat", required_argument, NULL, 'r'}, {"iters", required_argument, NULL, 'i'},
        {"warmup", required_argument, NULL, 'w'}, {"gemm-max", required_argument, NULL, 'g'},
        {"copy-mib", required_argument, NULL, 'c'}, {"json", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},      {"device", required_argument, NULL, 'd'},
        {"local-ceiling", no_argument, NULL, 'L'}, {"family", required_argument, NULL, 'f'},
        {"set", required_argument, NULL, 'T'}, {"batch", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    int want_peak = 0, want_kernels = 0, want_e2e = 0, want_gemm = 0, iters = 3, gemm_max = 0, copy_mib = 0;
    int local_ceiling = 0, e2e_batch = 1;
    const char *sets[64];
    int nsets = 0;
    int sizes[16], nsizes = 0;
    const char *json = NULL, *device = NULL, *family = NULL;
    int quiet = 0;
    enco_bench_options ko = enco_bench_options_default();
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'P': want_peak = 1; break;
        case 'K': want_kernels = 1; break;
        case 'E': want_e2e = 1; break;
        case 'G': want_gemm = 1; break;
        case 'L': local_ceiling = 1; break;
        case 'f':
            if (!enco_family_find(optarg))
                return cli_usage_error("bench", "--family %s: one of enco, cut, fastcut, cyclegan, dclgan", optarg);
            family = optarg;
            ko.family = optarg;
            break;
        case 's':
            if (!parse_int(optarg, 4, 8192, &ko.size) || ko.size % 4)
                return cli_usage_error("bench", "--size %s: a multiple of 4 up to 8192",
                                       optarg);
            break;
        case 'S': {
            char *list = strdup(optarg), *save = NULL;
            if (!list)
                return cli_usage_error("bench", "out of memory");
            nsizes = 0;
            for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int v;
                if (nsizes == 16 || !parse_int(t, 4, 8192, &v) || v % 4) {
                    free(list);
                    return cli_usage_error("bench",
                                           "--sizes %s: up to 16 multiples of 4, each up to 8192",
                                           optarg);
                }
                sizes[nsizes++] = v;
            }
            free(list);
            break;
        }
        case 'T':
            if (nsets == 64)
                return cli_usage_error("bench", "too many --set options");
            sets[nsets++] = optarg;
            break;
        case 'b':
            if (!parse_int(optarg, 1, 4096, &e2e_batch))
                return cli_usage_error("bench", "--batch %s: a number from 1 to 4096", optarg);
            break;
        case 'o': ko.filter = optarg; break;
        case 'r':
            if (!parse_int(optarg, 1, 100000, &ko.repeat))
                return cli_usage_error("bench", "--repeat %s: a number >= 1", optarg);
            break;
        case 'i':
            if (!parse_int(optarg, 1, 100000, &iters))
                return cli_usage_error("bench", "--iters %s: a number >= 1", optarg);
            break;
        case 'w':
            if (!parse_int(optarg, 0, 100000, &ko.warmup))
                return cli_usage_error("bench", "--warmup %s: a number >= 0", optarg);
            break;
        case 'g':
            if (!parse_int(optarg, 64, 32768, &gemm_max))
                return cli_usage_error("bench", "--gemm-max %s: 64 to 32768", optarg);
            break;
        case 'c':
            if (!parse_int(optarg, 1, 65536, &copy_mib))
                return cli_usage_error("bench", "--copy-mib %s: 1 to 65536", optarg);
            break;
        case 'j': json = optarg; break;
        case 'q': quiet = 1; break;
        case 'd': device = optarg; break;
        case 'h': help(); return 0;
        default:
            return cli_usage_error("bench", "unknown option or missing value '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    if (!want_peak && !want_kernels && !want_e2e && !want_gemm)
        want_peak = want_kernels = want_e2e = 1;
    if (nsets && (!want_e2e || want_kernels))
        return cli_usage_error("bench", "--set applies to --e2e alone (the kernel table "
                                        "records the family's default configuration)");
    /* --e2e's configuration: the family's defaults and the --set options. */
    enco_config ecfg;
    enco_config_defaults(&ecfg);
    snprintf(ecfg.model.family, sizeof ecfg.model.family, "%s", family ? family : "enco");
    enco_status st = ENCO_OK;
    for (int i = 0; st == ENCO_OK && i < nsets; i++)
        st = enco_config_set(&ecfg, sets[i]);
    if (st == ENCO_OK)
        st = enco_config_validate(&ecfg);
    if (st != ENCO_OK)
        return cli_fail("bench", st);
    if (!enco_family_find(ecfg.model.family))
        return cli_usage_error("bench", "model.family %s: one of enco, cut, fastcut, cyclegan, "
                                        "dclgan", ecfg.model.family);
    if (local_ceiling && !want_kernels)
        return cli_usage_error("bench", "--local-ceiling needs --kernels (it probes the "
                                        "ceiling next to each table row)");
    if (!nsizes)
        sizes[nsizes++] = ko.size;
    /* The smallest size the default model builds for (24: D's three layers). */
    const enco_model_config mc = enco_model_config_default();
    const int min_size = enco_models_min_size(&mc);
    if (want_kernels && ko.size < min_size)
        return cli_usage_error("bench", "--size %d: the default model needs images of at least "
                                        "%dx%d",
                               ko.size, min_size, min_size);
    for (int i = 0; want_e2e && i < nsizes; i++)
        if (sizes[i] < min_size)
            return cli_usage_error("bench", "size %d: the default model needs images of at "
                                            "least %dx%d",
                                   sizes[i], min_size, min_size);
    /* Under mpirun: the processes train one model (--e2e alone). */
    enco_dist *dist = NULL;
    st = enco_dist_init(NULL, NULL, &dist);
    if (st != ENCO_OK)
        return cli_fail("bench", st);
    const int nproc = enco_dist_size(dist), rank = enco_dist_rank(dist);
    if (nproc > 1 && (want_peak || want_kernels || want_gemm)) {
        enco_dist_free(dist);
        return cli_usage_error("bench", "under mpirun (%d processes) bench runs --e2e alone: "
                                        "the ceilings, the table and --gemm measure one "
                                        "device", nproc);
    }
    int rc = bench_body(want_peak, want_kernels, want_e2e, want_gemm, local_ceiling, iters,
                        gemm_max, copy_mib, sizes, nsizes, e2e_batch, &ecfg, json, device,
                        quiet || rank != 0, &ko, dist);
    if (rc != 0 && nproc > 1) {
        /* the other processes wait in a collective for this one: end the job */
        fprintf(stderr, "enco-cl bench: process %d of %d failed; ending the job\n", rank,
                nproc);
        enco_dist_abort(dist, rc);
    }
    enco_dist_free(dist);
    return rc;
}

static int bench_body(int want_peak, int want_kernels, int want_e2e, int want_gemm,
                      int local_ceiling, int iters, int gemm_max, int copy_mib,
                      const int *sizes, int nsizes, int e2e_batch, const enco_config *ecfg,
                      const char *json, const char *device, int quiet, enco_bench_options *ko_in,
                      enco_dist *dist)
{
    const int lead = enco_dist_rank(dist) == 0; /* the process that reports */
    enco_bench_options ko = *ko_in;
    enco_status st = ENCO_OK;
    /* The progress line (on a terminal only): the table's rows, e2e's steps. */
    cli_progress ps;
    cli_progress_init(&ps, "row", quiet);
    ko.progress = cli_progress_fn;
    ko.progress_user = &ps;

    enco_ctx_options co = CLI_CTX_OPTIONS(device);
    enco_ctx *ctx = NULL;
    st = enco_ctx_create(&ctx, &co);
    if (st != ENCO_OK)
        return cli_fail("bench", st);
    const enco_device_info devinfo = *enco_ctx_device(ctx); /* outlives ctx */
    const enco_device_info *dev = &devinfo;
    if (lead)
        printf("device: %s (%s, %s, %u compute units @ %u MHz)%s\n", dev->name, dev->platform,
               dev->type, dev->compute_units, dev->max_clock_mhz,
               enco_dist_size(dist) > 1 ? " (process 0)" : "");
    if (!gemm_max)
        gemm_max = dev->is_gpu ? 4096 : 1024;
    if (!copy_mib)
        copy_mib = dev->is_gpu ? 256 : 64;

    int rc = 0;
    enco_bench_peak peak, *pk = NULL;
    enco_bench_row *rows = NULL;
    size_t nrows = 0;
    enco_bench_e2e e2e[16];
    size_t ne2e = 0;
    if (want_peak || want_kernels) {
        cli_progress_update(&ps, "ceilings: SGEMM and copy", 0, 1);
        st = enco_bench_peak_run(ctx, gemm_max, copy_mib, ko.repeat, &peak);
        cli_progress_clear(&ps);
        if (st != ENCO_OK) {
            rc = cli_fail("bench --peak", st);
            goto done;
        }
        pk = &peak;
        print_peak(pk);
        fflush(stdout);
    }
    if (want_gemm) {
        printf("\nSGEMM at the convolution shapes (median of %d after %d warm-up)\n", ko.repeat,
               ko.warmup);
        printf("%-18s %2s %6s %6s %6s %5s %4s %9s %8s %9s %8s\n", "shape", "op", "M", "N", "K",
               "batch", "beta", "ms", "GFLOP/s", "cpu ms", "GF/cpu-s");
        for (size_t i = 0; i < enco_bench_gemm_shapes_count; i++) {
            const enco_bench_gemm_shape *s = &enco_bench_gemm_shapes[i];
            if (ko.filter && !strstr(s->name, ko.filter))
                continue;
            double t = 0, tc = 0;
            st = enco_bench_gemm_run(ctx, s, ko.repeat, ko.warmup, &t, &tc);
            if (st != ENCO_OK) {
                rc = cli_fail("bench --gemm", st);
                goto done;
            }
            double fl = 2.0 * (double)s->m * (double)s->n * (double)s->k * (double)s->batch;
            /* GF/cpu-s: the rate per CPU-second of the process (per core, on a CPU device). */
            printf("%-18s %2s %6zu %6zu %6zu %5zu %4.1f %9.3f %8.1f %9.3f %8.1f\n", s->name,
                   s->ta ? "TN" : "NN", s->m, s->n, s->k, s->batch, (double)s->beta, t * 1e3,
                   t > 0 ? fl / t / 1e9 : 0.0, tc * 1e3, tc > 0 ? fl / tc / 1e9 : 0.0);
            fflush(stdout);
        }
    }
    if (want_kernels) {
        if (local_ceiling)
            ko.probe_n = peak.gemm_n;
        st = enco_bench_kernels(ctx, &ko, &rows, &nrows);
        cli_progress_clear(&ps);
        if (st != ENCO_OK) {
            rc = cli_fail("bench --kernels", st);
            goto done;
        }
        if (!nrows && ko.filter)
            fprintf(stderr, "enco-cl bench: --op %s matches no row\n", ko.filter);
        if (nrows) {
            /* The ceilings again: a shared machine's speed drifts over the
             * table, and a share against a slow moment's ceiling flatters. */
            enco_bench_peak again;
            cli_progress_update(&ps, "ceilings again", 0, 1);
            st = enco_bench_peak_run(ctx, gemm_max, copy_mib, ko.repeat, &again);
            cli_progress_clear(&ps);
            if (st != ENCO_OK) {
                rc = cli_fail("bench --kernels", st);
                goto done;
            }
            printf("\nceilings measured again after the table: SGEMM %.1f GFLOP/s, copy %.2f "
                   "GB/s; shares use the higher of each (%.1f GFLOP/s, %.2f GB/s)\n",
                   again.gemm_gflops, again.copy_gbs,
                   again.gemm_gflops > peak.gemm_gflops ? again.gemm_gflops : peak.gemm_gflops,
                   again.copy_gbs > peak.copy_gbs ? again.copy_gbs : peak.copy_gbs);
            if (again.gemm_gflops > peak.gemm_gflops) {
                peak.gemm_gflops = again.gemm_gflops;
                peak.gemm_n = again.gemm_n;
                peak.gemm_seconds = again.gemm_seconds;
            }
            if (again.copy_gbs > peak.copy_gbs) {
                peak.copy_gbs = again.copy_gbs;
                peak.copy_seconds = again.copy_seconds;
            }
        }
        print_table(&ko, pk, rows, nrows);
        fflush(stdout);
    }
    if (want_e2e) {
        /* Each size on a fresh context: its peak memory is its own. */
        enco_ctx_free(ctx);
        ctx = NULL;
        for (int i = 0; i < nsizes; i++) {
            ps.unit = "step";
            st = enco_bench_e2e_run_config(&co, ecfg, sizes[i], e2e_batch, iters, ko.warmup,
                                           dist, cli_progress_fn, &ps, &e2e[ne2e]);
            cli_progress_clear(&ps);
            if (st != ENCO_OK) {
                rc = cli_fail("bench --e2e", st);
                goto done;
            }
            if (lead)
                print_e2e(&e2e[ne2e]);
            ne2e++;
            fflush(stdout);
        }
    }
done:
    if (json && rc == 0 && lead) {
        st = enco_bench_write_json(json, dev, pk, want_kernels ? &ko : NULL, rows, nrows,
                                   want_e2e ? e2e : NULL, ne2e);
        if (st != ENCO_OK)
            rc = cli_fail("bench --json", st);
    }
    free(rows);
    enco_ctx_free(ctx);
    return rc;
}
