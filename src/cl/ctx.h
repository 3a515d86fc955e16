/* The context's layout, shared by the runtime modules in src/cl/. */
#ifndef ENCO_CL_CTX_H
#define ENCO_CL_CTX_H
#include "core/internal.h"

#define ENCO_PATH_MAX 1024
#define ENCO_NAME_MAX 64

typedef struct enco_program_entry {
    char name[ENCO_NAME_MAX];
    cl_program program;
} enco_program_entry;

typedef struct enco_kernel_entry {
    char program[ENCO_NAME_MAX];
    char name[ENCO_NAME_MAX];
    cl_kernel kernel;
    double prof_s;          /* profiling: wall seconds over its launches */
    unsigned long prof_n;   /* launches (counted always) */
} enco_kernel_entry;

struct enco_ctx {
    enco_device_info info;
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;

    int cache_on;
    char cache_dir[ENCO_PATH_MAX];
    char kernel_dir[ENCO_PATH_MAX]; /* "" = embedded sources */
    enco_gemm_backend gemm;
    int host_zero_fill; /* zero buffers by host writes (Oclgrind) */
    enco_kernel_policy policy; /* chosen at creation (src/cl/policy.c) */
    int profile;        /* profile_kernels / ENCO_PROFILE_KERNELS: sync and time every launch */
    void (*on_profile)(const enco_kernel_profile *profile, void *user); /* at free */
    void *on_profile_user;
    long fault_after;   /* ENCO_FAULT_AFTER_LAUNCHES: simulate a lost device after this many
                         * kernel launches (testing aid; 0 = never) */
    char build_options[256];
    char tuning[ENCO_PATH_MAX + 256]; /* "" = CLBlast's own parameters; else the file applied, or why not */


    enco_ctx_stats stats;
    cl_mem scratch[ENCO_SCRATCH_SLOTS]; /* grown on demand, freed with the context */
    size_t scratch_bytes[ENCO_SCRATCH_SLOTS];
    enco_program_entry *programs;
    size_t nprograms, cap_programs;
    enco_kernel_entry *kernels;
    size_t nkernels, cap_kernels;
    enco_trace *trace;  /* recording one step (src/cl/trace.c), NULL: not recording */
};

/* Recording transfers while ctx->trace is set (src/cl/trace.c). */
void enco_trace_copy(enco_ctx *ctx, cl_mem dst, size_t dst_off, cl_mem src, size_t src_off,
                     size_t bytes);
void enco_trace_fill(enco_ctx *ctx, cl_mem mem, size_t off, size_t bytes);
void enco_trace_upload(enco_ctx *ctx, cl_mem mem, size_t off, size_t bytes, const void *host);

/* mkdir -p: 0 on success (or when it exists). */
int enco_mkdir_p(const char *dir);

/* Applies the stored CLBlast tuning of this device, if any (src/cl/tune.c). */
void enco_tuning_load(enco_ctx *ctx);

/* Builds (or loads from the disk cache) source for this ctx's device. */
enco_status enco_program_build_cached(enco_ctx *ctx, const char *name, const char *source,
                                      const char *options, cl_program *out);
#endif
