/* Benchmarks (`enco-cl bench`): the device's measured ceilings (SGEMM rate
 * and copy bandwidth), a per-kernel table of one recorded training step of
 * a model family, and the end-to-end training iteration.
 *
 * Every timed launch is bracketed by clFinish and timed on the host
 * (CLOCK_MONOTONIC), so a row's time includes the launch overhead the
 * training loop pays; rows report the median of `repeat` launches after
 * `warmup` untimed ones. Work and traffic come from the op families' cost
 * functions (enco_*_cost). Nothing here prints: progress goes through a
 * callback. */
#ifndef ENCO_BENCH_BENCH_H
#define ENCO_BENCH_BENCH_H

#include "core/internal.h"
#include "dist/dist.h"
#include "train/trainer.h"

/* ---- ceilings ------------------------------------------------------------ */

typedef struct enco_bench_peak {
    int gemm_n;              /* square SGEMM size that gave the best rate */
    double gemm_seconds;     /* median time of one n x n x n SGEMM */
    double gemm_gflops;      /* best measured rate (2 n^3 / time) */
    double copy_mib;         /* size of the copied buffer */
    double copy_seconds;     /* median time of one clEnqueueCopyBuffer */
    double copy_gbs;         /* (read + write bytes) / time, GB/s (1e9) */
    double fma_gflops;       /* CPU devices: independent fma chains on every core
                              * (cl/peak.cl), the measured compute ceiling; 0 on GPUs */
    double nominal_gflops;   /* vendor-style FP32 peak; < 0 when unknown */
    char nominal_basis[128]; /* how the nominal peak was counted, or why unknown */
} enco_bench_peak;

/* Measures SGEMM through enco_sgemm at square sizes 256, 512, ... up to
 * max_n, and a device-to-device copy of copy_mib MiB; repeat >= 1 timed runs
 * each (median) after one warm-up; on CPU devices, the FMA rate of
 * independent chains on every compute unit (best of repeat runs). */
enco_status enco_bench_peak_run(enco_ctx *ctx, int max_n, double copy_mib, int repeat,
                                enco_bench_peak *out);

/* Nominal FP32 peak of a device from its description, in GFLOP/s; returns
 * < 0 (and says why in basis) where the SIMD width is not known. */
double enco_bench_nominal_gflops(const enco_device_info *dev, char *basis, size_t basis_size);

/* ---- GEMM at the convolution shapes ---------------------------------------- */

/* One enco_sgemm_batched problem: op(A) M x K (A shared by the batch,
 * stride 0, as the convolution weights are), B K x N and C M x N per item. */
typedef struct enco_bench_gemm_shape {
    const char *name;
    int ta;
    size_t m, n, k, batch;
    float beta;
} enco_bench_gemm_shape;

/* The shapes that dominate a training iteration (resblocks, 64/128-channel
 * layers at full resolution), plus a square reference. */
extern const enco_bench_gemm_shape enco_bench_gemm_shapes[];
extern const size_t enco_bench_gemm_shapes_count;

/* Times one shape: median of `repeat` calls (each up to clFinish) after
 * `warmup` untimed ones; *median wall seconds, *cpu_median the process's CPU
 * seconds (all threads: PoCL's workers run in the process), which a busy
 * machine disturbs less than wall time. */
enco_status enco_bench_gemm_run(enco_ctx *ctx, const enco_bench_gemm_shape *s, int repeat,
                                int warmup, double *median, double *cpu_median);

/* ---- per-kernel table ------------------------------------------------------ */

typedef struct enco_bench_row {
    char name[32];       /* op and pass: "conv2d.fwd", "instnorm.bwd", "adam" */
    char where[64];      /* layer(s): "G model.1", "D model.3", "F mlp_0.0", "loss";
                          * " (+k)": k more places of the same op and shape */
    char shape[96];      /* human-readable shape */
    int per_iter;        /* calls of this op at this shape per training iteration */
    int launches;        /* kernel launches of one call (enco_kernel_run) */
    int commands;        /* commands of one call: launches, CLBlast GEMMs, copies,
                          * fills, uploads */
    int runs;            /* timed launches */
    double seconds;      /* median */
    double min_seconds;
    enco_op_cost cost;   /* of one launch */
    double local_gflops; /* SGEMM rate probed just before and after the row (the
                          * higher; enco_bench_options.probe_n), 0: not probed */
} enco_bench_row;

/* Progress: called before each row (or phase) with a short label. */
typedef void (*enco_bench_progress_fn)(void *user, const char *what, size_t done, size_t total);

typedef struct enco_bench_options {
    int size;            /* image height = width, multiple of 4 (default 256) */
    int batch;           /* images per batch (default 1) */
    const char *family;  /* model.family recorded (NULL: enco) */
    int repeat;          /* timed launches per row (default 5) */
    int warmup;          /* untimed launches per row first (default 1) */
    const char *filter;  /* keep rows whose "name where" contains this; NULL: all */
    int probe_n;         /* > 0: time an n x n x n SGEMM (median of 3) just before and
                          * after each row into row.local_gflops, the ceiling of
                          * that moment on a machine whose speed drifts (0: off) */
    enco_bench_progress_fn progress;
    void *progress_user;
} enco_bench_options;

/* Defaults as documented above. */
enco_bench_options enco_bench_options_default(void);

/* The rows of one training iteration of `family`'s default configuration
 * (batch opts->batch, opts->size square) on ctx: creates the family's
 * trainer, runs one step, records the next (every command ctx enqueues,
 * grouped into the ops the networks, families and trainer tag) and merges
 * ops of the same name, shape and commands into rows with per_iter and cost
 * filled, times zero. *launches (may be NULL): kernel launches of the
 * recorded step. */
enco_status enco_bench_plan(enco_ctx *ctx, const enco_bench_options *opts, enco_bench_row **rows,
                            size_t *count, unsigned long *launches);

/* Records as above and times every row kept by the filter: the row's first
 * op is enqueued again alone (warmup, then repeat times, each to clFinish)
 * on the recorded step's buffers. *rows is malloc'd (free()); a filter that
 * keeps nothing gives *count = 0. */
enco_status enco_bench_kernels(enco_ctx *ctx, const enco_bench_options *opts,
                               enco_bench_row **rows, size_t *count);

/* The SGEMM ceiling probe: n x n x n operands allocated once. */
typedef struct enco_bench_probe {
    enco_ctx *ctx;
    int n;
    cl_mem a, b, c;
} enco_bench_probe;

/* n >= 16. */
enco_status enco_bench_probe_init(enco_ctx *ctx, int n, enco_bench_probe *p);
/* *gflops: the rate of the median of `repeat` timed SGEMMs after one untimed. */
enco_status enco_bench_probe_rate(enco_bench_probe *p, int repeat, double *gflops);
void enco_bench_probe_free(enco_bench_probe *p);

/* Attainable rate of a row under the roofline of the measured ceilings:
 * min(gemm_gflops, intensity * copy_gbs) in GFLOP/s, or for rows without
 * FLOPs the copy bandwidth in GB/s; *share is the achieved fraction of it
 * (0 when the row was not timed). The row's own local_gflops, where probed,
 * stands in for gemm_gflops. Returns 1 when the row is memory-bound. */
int enco_bench_row_share(const enco_bench_row *row, const enco_bench_peak *peak, double *share);

/* ---- end to end ------------------------------------------------------------ */

typedef struct enco_bench_e2e {
    char family[16];             /* model.family timed */
    int size, batch, iters;
    double setup_seconds;        /* trainer creation and weight init */
    double first_iter_seconds;   /* first step (includes any kernel builds) */
    double sec_per_iter;         /* median of the unprofiled timed steps */
    double min_sec_per_iter;
    double profiled_sec_per_iter; /* median of the profiled steps (adds syncs) */
    int nphases;                 /* the family's timers */
    const char *phase_names[ENCO_MAX_TIMERS];
    double phase_seconds[ENCO_MAX_TIMERS]; /* per iteration, mean over profiled steps */
    uint64_t device_peak_bytes;  /* enco_ctx_get_stats() of a fresh context */
    uint64_t device_bytes;       /* still allocated at the end (the trainer) */
    int nnets;
    const char *net_names[ENCO_MAX_NETS]; /* "G", "D", "F" */
    size_t params[ENCO_MAX_NETS];         /* trainable floats per net */
    float loss_g;                /* loss_G of the last step, the mean over the processes
                                  * (finite, or the run fails) */
    /* Data-parallel (several processes, enco_bench_e2e_run_config with an
     * enco_dist of size > 1): each process trains `batch` images of a global
     * batch of processes x batch, its gradients summed across the processes
     * by enco_dist_sum_floats after every phase (train's reducer). One
     * process: processes 1 and every comm_* 0. */
    int processes;
    int global_batch;            /* processes x batch */
    double images_per_second;    /* global_batch / sec_per_iter */
    /* The collectives of the timed (unprofiled) steps, per iteration, as
     * enco_dist_stats counts them on this process: bytes received from the
     * others (payload plus each call's header), seconds inside the calls
     * (waiting for a slower process included). The device -> host -> device
     * copies of the gradients are outside (in the phases' time). */
    double comm_bytes_per_iter;
    double comm_seconds_per_iter;
    double comm_share;           /* comm seconds / step seconds over the same timed steps */
    double comm_sums_per_iter;   /* the reducer's sum calls */
    double comm_floats_per_iter; /* floats they summed */
} enco_bench_e2e;

/* Times the full training iteration of the default configuration at
 * size x size, batch `batch`, on a context of its own (so the peak memory is
 * this run's): `warmup` steps, `iters` timed steps, then `iters` steps with
 * profiling on for the phase split (iters >= 1). Inputs are synthetic
 * uniform values in [-1, 1]. */
enco_status enco_bench_e2e_run(const enco_ctx_options *ctx_opts, int size, int batch, int iters,
                               int warmup, enco_bench_progress_fn progress, void *user,
                               enco_bench_e2e *out);
/* The same for model.family `family` (NULL: the default, enco) with its
 * default configuration. */
enco_status enco_bench_e2e_run_family(const enco_ctx_options *ctx_opts, const char *family,
                                      int size, int batch, int iters, int warmup,
                                      enco_bench_progress_fn progress, void *user,
                                      enco_bench_e2e *out);

/* The same for the configuration cfg (model.family, its options; the
 * batch is `batch`), on `dist`'s processes: NULL or a single rank trains
 * alone; under mpirun each process runs this with the same arguments and
 * trains its share (the trainer's reducer summing gradients over dist), so
 * every process must call it, and a family refused under several processes
 * fails with the trainer's message on every one. */
enco_status enco_bench_e2e_run_config(const enco_ctx_options *ctx_opts, const enco_config *cfg,
                                      int size, int batch, int iters, int warmup,
                                      enco_dist *dist, enco_bench_progress_fn progress,
                                      void *user, enco_bench_e2e *out);

/* Median of v[0..n) (sorts v); 0 for n = 0. */
double enco_bench_median(double *v, size_t n);

/* ---- JSON ------------------------------------------------------------------ */

/* Writes whatever is given (NULL parts are left out) as one JSON object:
 * {"device": {...}, "peak": {...}, "kernels": {"size":..,"rows":[...]},
 *  "e2e": [...]}. Replaces the file atomically. */
enco_status enco_bench_write_json(const char *path, const enco_device_info *dev,
                                  const enco_bench_peak *peak, const enco_bench_options *kopts,
                                  const enco_bench_row *rows, size_t nrows,
                                  const enco_bench_e2e *e2e, size_t ne2e);

#endif
