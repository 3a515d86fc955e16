/* enco-cl public API: devices, contexts, status codes.
 *
 * Conventions: every function returns an enco_status (0 = success). OpenCL and
 * CLBlast codes pass through unchanged (both are negative and do not overlap);
 * enco-cl's own codes live in [-3999, -3000]. On failure a human-readable message
 * (call, code, file:line, build log where relevant) is available from
 * enco_last_error() on the failing thread. The library never prints or exits. */
#ifndef ENCO_ENCO_H
#define ENCO_ENCO_H

#include <stddef.h>
#include <stdint.h>

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ENCO_API __attribute__((visibility("default")))
#else
#define ENCO_API
#endif

typedef int enco_status;

enum {
    ENCO_OK = 0,
    ENCO_ERR_NO_PLATFORM = -3000,  /* no OpenCL platform/ICD installed */
    ENCO_ERR_NO_DEVICE = -3001,    /* selection matched no device */
    ENCO_ERR_BUILD = -3002,        /* kernel build failed; message holds the build log */
    ENCO_ERR_NO_MEMORY = -3003,    /* host allocation failed */
    ENCO_ERR_IO = -3004,           /* file I/O failed */
    ENCO_ERR_INVALID_ARG = -3005,  /* bad argument or shape */
    ENCO_ERR_NOT_FOUND = -3006,    /* named kernel/program/file absent */
    ENCO_ERR_MISMATCH = -3007,     /* self-check result out of tolerance */
    ENCO_ERR_UNSUPPORTED = -3008,  /* feature not available on this device */
    ENCO_ERR_FORMAT = -3009,       /* malformed input data */
    ENCO_ERR_NUMERIC = -3010,      /* NaN or Inf where a number was expected */
    ENCO_ERR_INTERRUPTED = -3011,  /* stopped on request (signal); state was saved */
};

/* Name of any status: ours, OpenCL's ("CL_OUT_OF_RESOURCES") or CLBlast's. */
ENCO_API const char *enco_status_str(enco_status status);
/* Message describing the last failure on this thread ("" if none). */
ENCO_API const char *enco_last_error(void);
ENCO_API void enco_clear_error(void);

/* ---- devices ---------------------------------------------------------- */

typedef struct enco_device_info {
    unsigned index;                /* global index across all platforms */
    unsigned platform_index;
    char platform[128];
    char platform_version[128];
    char name[128];
    char vendor[128];
    char type[16];                 /* "GPU", "CPU", "ACCELERATOR", "OTHER" */
    char driver_version[128];
    char device_version[128];
    char opencl_c_version[128];
    unsigned compute_units;
    unsigned max_clock_mhz;
    size_t max_work_group_size;
    uint64_t global_mem_bytes;
    uint64_t max_alloc_bytes;
    uint64_t local_mem_bytes;
    int fp16;
    int fp64;
    int is_gpu;
} enco_device_info;

/* Lists every device of every platform. Free with enco_devices_free(). */
ENCO_API enco_status enco_devices_list(enco_device_info **out, size_t *count);
ENCO_API void enco_devices_free(enco_device_info *list);

/* Resolves a device selection: spec is a decimal index or a case-insensitive
 * substring of "platform name" / "device name". NULL or "" means: the
 * ENCO_DEVICE environment variable if set, else the first GPU, else device 0.
 * A bad selection fails with ENCO_ERR_NO_DEVICE and lists the devices. */
ENCO_API enco_status enco_device_select(const char *spec, unsigned *index);

/* ---- context ---------------------------------------------------------- */

typedef struct enco_ctx enco_ctx;

typedef enum enco_gemm_backend {
    ENCO_GEMM_AUTO = 0,     /* CLBlast, except on devices known to break it */
    ENCO_GEMM_CLBLAST = 1,
    ENCO_GEMM_BUILTIN = 2,  /* our own simple kernel: slow, runs anywhere */
} enco_gemm_backend;

typedef struct enco_ctx_options {
    const char *device;          /* selection as for enco_device_select() */
    int cache_mode;              /* 0: env ENCO_CL_CACHE decides (default on), 1: on, -1: off */
    const char *cache_dir;       /* NULL: $ENCO_CACHE_DIR, $XDG_CACHE_HOME/enco-cl, ~/.cache/enco-cl */
    const char *kernel_dir;      /* NULL: $ENCO_CL_DIR if set, else embedded sources */
    enco_gemm_backend gemm;      /* AUTO: env ENCO_GEMM=clblast|builtin may override */
} enco_ctx_options;

typedef struct enco_ctx_stats {
    unsigned programs_built;     /* compiled from source */
    unsigned cache_hits;         /* loaded from the on-disk cache */
    unsigned cache_rejects;      /* cache entries found corrupt and rebuilt */
    uint64_t device_bytes;       /* currently allocated through enco_buffer_alloc */
    uint64_t device_peak_bytes;
    uint64_t kernel_launches;    /* kernels enqueued through enco_kernel_run */
} enco_ctx_stats;

ENCO_API enco_status enco_ctx_create(enco_ctx **out, const enco_ctx_options *opts);
ENCO_API void enco_ctx_free(enco_ctx *ctx);
ENCO_API const enco_device_info *enco_ctx_device(const enco_ctx *ctx);
ENCO_API enco_ctx_stats enco_ctx_get_stats(const enco_ctx *ctx);
ENCO_API enco_gemm_backend enco_ctx_gemm_backend(const enco_ctx *ctx);
ENCO_API cl_context enco_ctx_cl_context(const enco_ctx *ctx);
ENCO_API cl_command_queue enco_ctx_queue(const enco_ctx *ctx);
ENCO_API enco_status enco_finish(enco_ctx *ctx);

/* ---- program cache ---------------------------------------------------- */

/* Directory the cache uses for these options (never NULL for a valid ctx). */
ENCO_API const char *enco_ctx_cache_dir(const enco_ctx *ctx);
/* Removes every cache entry of ours from dir; *removed counts them. */
ENCO_API enco_status enco_cache_clear(const char *dir, unsigned *removed);
/* Default cache directory from the environment, written to buf. */
ENCO_API enco_status enco_cache_default_dir(char *buf, size_t size);

/* ---- CLBlast tuning ---------------------------------------------------- */

/* CLBlast has tuned GEMM parameters for some devices only; others get generic
 * ones. Results of CLBlast's tuner (clblast_tuner_xgemm writes
 * clblast_xgemm_<V>_32.json in its working folder) can be imported for the
 * context's device: the fastest result per kernel is applied
 * (CLBlastOverrideParameters), checked with CLBlast SGEMMs against the host,
 * and stored in the cache folder under a key of device, vendor, driver and
 * platform versions; every later context on that device applies it (unless
 * ENCO_CLBLAST_TUNING=0). Files from another device are refused. */
ENCO_API enco_status enco_tuning_import(enco_ctx *ctx, const char *const *files, int nfiles,
                                        char *summary, size_t size);
/* Where this device's tuning is (or would be) stored. */
ENCO_API enco_status enco_tuning_path(const enco_ctx *ctx, char *path, size_t size);
/* What this context applied: "" (none), the file, or "ignored (reason)". */
ENCO_API const char *enco_ctx_tuning(const enco_ctx *ctx);
/* Removes this device's stored tuning (*removed = 1 if there was one). Takes
 * effect for contexts created afterwards in new processes. */
ENCO_API enco_status enco_tuning_clear(const enco_ctx *ctx, int *removed);

/* ---- self check ------------------------------------------------------- */

typedef struct enco_check_result {
    double kernel_max_err;       /* our kernel vs CPU, max abs error */
    double gemm_max_err;         /* SGEMM vs float64 CPU, max relative error */
    int kernel_ok;
    int gemm_ok;
    const char *gemm_backend;    /* "CLBlast" or "builtin" */
} enco_check_result;

/* Runs a small kernel of ours and an SGEMM and compares both with the CPU. */
ENCO_API enco_status enco_ctx_self_check(enco_ctx *ctx, enco_check_result *res);

#ifdef __cplusplus
}
#endif
#endif
