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

/* ---- kernel policy ---------------------------------------------------- */

/* Which kernel paths a context's operations take where several compute the
 * same thing (each choice gives the bits of the one it replaces unless said
 * otherwise; the defaults are the fastest measured per device type). A
 * context holds one policy, chosen once at creation: enco_ctx_options.policy,
 * then the ENCO_* environment variables named below as overrides (meant for
 * tests and benchmarks; read once, at context creation). Operations read the
 * context's policy, never the environment. The zero value of every field is
 * its default; enco_ctx_kernel_policy() returns the policy in effect, with
 * AUTO and 0 replaced by the device type's choice wherever that choice does
 * not also depend on the shape. */
typedef enum enco_path_switch {
    ENCO_PATH_AUTO = 0, /* the default given with the field */
    ENCO_PATH_OFF = 1,  /* environment value 0 */
    ENCO_PATH_ON = 2,   /* environment value 1 */
} enco_path_switch;

typedef enum enco_conv_implicit {
    ENCO_CONV_IMPLICIT_AUTO = 0,  /* WGRAD for output rows of 48 or more, PACK elsewhere */
    ENCO_CONV_IMPLICIT_OFF = 1,   /* (0) column matrices built in the workspace */
    ENCO_CONV_IMPLICIT_PACK = 2,  /* (1) packed from the input inside the GEMM */
    ENCO_CONV_IMPLICIT_WGRAD = 3, /* (2) also read inside the weight-gradient multiply, any shape */
} enco_conv_implicit;

#define ENCO_POLICY_NEVER (-1) /* conv_direct_max, conv_splitk: never */

typedef struct enco_kernel_policy {
    /* GEMM (src/cl/gemm.c). */
    enco_path_switch gemm_packed;   /* ENCO_GEMM_TILE: our packed GEMM kernels; AUTO: on CPU
                                     * devices with the CLBlast backend, off elsewhere; ON: on any
                                     * device and backend (tests, Oclgrind) */
    enco_path_switch gemm_fused;    /* ENCO_GEMM_FUSED: the forwards and flipped input gradients
                                     * pack their column panels per work-item in local memory
                                     * (AUTO = ON) instead of in separate kernels (OFF) */
    int gemm_fused_kb;              /* ENCO_GEMM_FUSED_KB: K values per local panel (0: 2304) */
    int gemm_kc;                    /* ENCO_GEMM_KC: K values per block (0: 4096) */
    int gemm_nc;                    /* ENCO_GEMM_NC: floats of packed B per chunk (0: 1048576) */
    int gemm_mb;                    /* ENCO_GEMM_MB: row panels per work-item (0: 4) */
    enco_path_switch wgrad_self;    /* ENCO_WGRAD_SELF: the weight-gradient multiply that reads
                                     * the input packs dY^T per work-item; AUTO: where
                                     * K = cin*kh*kw < 256 */
    int wgrad_self_kb;              /* ENCO_WGRAD_SELF_KB: pixels per packed block (0: 1024) */
    /* Convolutions (src/ops/conv.c). */
    enco_conv_implicit conv_implicit; /* ENCO_CONV_IMPLICIT: where the packed GEMM runs; OFF
                                       * wherever it does not */
    int conv_direct_max;            /* ENCO_CONV_DIRECT_MAX: largest cout (1..4) that takes the
                                     * direct small-cout kernels instead of im2col + GEMM
                                     * (0: 4; ENCO_POLICY_NEVER: none) */
    int conv_splitk;                /* ENCO_CONV_SPLITK: parts of the weight-gradient reduction:
                                     * N >= 2 always N (any device, tests); ENCO_POLICY_NEVER or 1
                                     * never; 0: on GPUs where few output tiles would leave
                                     * compute units idle, never on other devices */
    enco_path_switch conv_bwd_flip; /* ENCO_CONV_BWD_FLIP: input gradient of stride-1 convolutions
                                     * as a convolution of dy with the flipped weights; AUTO:
                                     * always with the implicit im2col, else where cout < cin or
                                     * cout is within conv_direct_max */
    enco_path_switch conv_strip;    /* ENCO_CONV_STRIP: small-cout strip / row kernels (AUTO: on
                                     * devices that are not GPUs) */
    int conv_ws_mib;                /* ENCO_CONV_WS_MIB: a network's convolution workspace cap in
                                     * MiB (0: 256 on devices that are not GPUs, 128 on GPUs) */
    /* Per-plane / per-row / per-block CPU kernels (AUTO: on devices that are
     * not GPUs; ON: on any device). */
    enco_path_switch conv_rows;     /* ENCO_CONV_ROWS: padding folds, bias gradients, flips */
    enco_path_switch norm_rows;     /* ENCO_NORM_ROWS */
    enco_path_switch act_rows;      /* ENCO_ACT_ROWS */
    enco_path_switch blur_rows;     /* ENCO_BLUR_ROWS */
    int blur_block;                 /* ENCO_BLUR_BLOCK: outputs per row block (0: 4096) */
} enco_kernel_policy;

/* Applies the ENCO_* overrides of the current environment to *p (a variable
 * unset or empty leaves its field alone). A value outside a variable's
 * accepted ones fails with ENCO_ERR_INVALID_ARG naming the variable and
 * them. enco_ctx_create calls it once. */
ENCO_API enco_status enco_kernel_policy_apply_env(enco_kernel_policy *p);

/* One kernel's line of the profile (enco_ctx_options.profile_kernels). */
typedef struct enco_kernel_profile_row {
    const char *program, *kernel;  /* valid while the context lives */
    double seconds;                /* wall time over its launches, a device sync around each */
    unsigned long launches;
} enco_kernel_profile_row;

enum { ENCO_SCRATCH_AREAS = 6 };

/* The kernel profile: kernels by total time, most first, and the scratch
 * areas' sizes (names "splitk", "gemm", "conv", "grad_a", "grad_b",
 * "grad_skip"). */
typedef struct enco_kernel_profile {
    double total_seconds;
    size_t nrows;
    const enco_kernel_profile_row *rows;
    const char *scratch_names[ENCO_SCRATCH_AREAS];
    uint64_t scratch_bytes[ENCO_SCRATCH_AREAS];
} enco_kernel_profile;

typedef struct enco_ctx_options {
    const char *device;          /* selection as for enco_device_select() */
    int cache_mode;              /* 0: env ENCO_CL_CACHE decides (default on), 1: on, -1: off */
    const char *cache_dir;       /* NULL: $ENCO_CACHE_DIR, $XDG_CACHE_HOME/enco-cl, ~/.cache/enco-cl */
    const char *kernel_dir;      /* NULL: $ENCO_CL_DIR if set, else embedded sources */
    enco_gemm_backend gemm;      /* AUTO: env ENCO_GEMM=clblast|builtin may override */
    enco_kernel_policy policy;   /* zero: the defaults; env ENCO_* overrides (see above) */
    int profile_kernels;         /* 1: sync and time every kernel launch (0: env
                                  * ENCO_PROFILE_KERNELS=1 turns it on) */
    /* Called by enco_ctx_free with the profile when profile_kernels is on
     * (the library never prints: the caller does). */
    void (*on_kernel_profile)(const enco_kernel_profile *profile, void *user);
    void *on_kernel_profile_user;
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
/* The kernel policy in effect (see enco_kernel_policy). */
ENCO_API const enco_kernel_policy *enco_ctx_kernel_policy(const enco_ctx *ctx);
/* Replaces the policy (checked and completed as at creation; the environment
 * is not read). For tests and benchmarks that compare paths on one context:
 * plans made before keep the paths they chose. */
ENCO_API enco_status enco_ctx_set_kernel_policy(enco_ctx *ctx, const enco_kernel_policy *p);
/* The kernel profile so far (enco_ctx_options.profile_kernels; empty when
 * off). Free with enco_kernel_profile_free. */
ENCO_API enco_status enco_ctx_kernel_profile(const enco_ctx *ctx, enco_kernel_profile *out);
ENCO_API void enco_kernel_profile_free(enco_kernel_profile *p);

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
