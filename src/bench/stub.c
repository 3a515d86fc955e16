/* Builds without every op family (-Dops=...) have no networks or trainer:
 * the table and end-to-end benchmarks report that instead of linking. */
#include "bench/bench.h"

#include <string.h>

static enco_status unavailable(void)
{
    return ENCO_FAIL(ENCO_ERR_UNSUPPORTED,
                     "bench: the kernel table and end-to-end runs need every op family "
                     "(this build was configured with -Dops=...)");
}

enco_status enco_bench_plan(enco_ctx *ctx, const enco_bench_options *opts, enco_bench_row **rows,
                            size_t *count, unsigned long *launches)
{
    (void)ctx;
    (void)opts;
    *rows = NULL;
    *count = 0;
    if (launches)
        *launches = 0;
    return unavailable();
}

enco_status enco_bench_kernels(enco_ctx *ctx, const enco_bench_options *opts,
                               enco_bench_row **rows, size_t *count)
{
    *rows = NULL;
    *count = 0;
    return unavailable();
}

enco_status enco_bench_e2e_run(const enco_ctx_options *ctx_opts, int size, int batch, int iters,
                               int warmup, enco_bench_progress_fn progress, void *user,
                               enco_bench_e2e *out)
{
    memset(out, 0, sizeof *out);
    return unavailable();
}

enco_status enco_bench_e2e_run_family(const enco_ctx_options *ctx_opts, const char *family,
                                      int size, int batch, int iters, int warmup,
                                      enco_bench_progress_fn progress, void *user,
                                      enco_bench_e2e *out)
{
    (void)family;
    memset(out, 0, sizeof *out);
    return unavailable();
}

enco_status enco_bench_e2e_run_config(const enco_ctx_options *ctx_opts, const enco_config *cfg,
                                      int size, int batch, int iters, int warmup,
                                      enco_dist *dist, enco_bench_progress_fn progress,
                                      void *user, enco_bench_e2e *out)
{
    (void)cfg;
    (void)dist;
    memset(out, 0, sizeof *out);
    return unavailable();
}
