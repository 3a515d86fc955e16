/* Context lifetime, buffers and kernel launch. */
#include "cl/ctx.h"
#include "cl/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void resolve_gemm(enco_ctx *ctx, enco_gemm_backend requested)
{
    const char *env = getenv("ENCO_GEMM");
    if (requested == ENCO_GEMM_AUTO && env && *env) {
        if (strcmp(env, "builtin") == 0)
            requested = ENCO_GEMM_BUILTIN;
        else if (strcmp(env, "clblast") == 0)
            requested = ENCO_GEMM_CLBLAST;
    }
    if (requested == ENCO_GEMM_AUTO)
        /* Oclgrind 21.10 aborts inside some CLBlast kernels; our own GEMM runs there. */
        requested = strstr(ctx->info.name, "Oclgrind") ? ENCO_GEMM_BUILTIN : ENCO_GEMM_CLBLAST;
    ctx->gemm = requested;
}

static int cache_enabled(int mode)
{
    if (mode != 0)
        return mode > 0;
    const char *env = getenv("ENCO_CL_CACHE");
    return !(env && (strcmp(env, "0") == 0 || strcmp(env, "off") == 0 || strcmp(env, "no") == 0));
}

enco_status enco_ctx_create(enco_ctx **out, const enco_ctx_options *opts)
{
    static const enco_ctx_options defaults = {0};
    if (!opts)
        opts = &defaults;
    *out = NULL;
    enco_clear_error();

    /* The kernel policy: the options, then the environment's overrides. */
    enco_kernel_policy policy = opts->policy;
    ENCO_TRY(enco_kernel_policy_apply_env(&policy));

    enco_device_info *list = NULL;
    cl_device_id *ids = NULL;
    size_t n = 0;
    ENCO_TRY(enco_devices_enumerate(&list, &ids, &n));
    unsigned idx = 0;
    enco_status st = enco_device_pick(list, n, opts->device, &idx);
    if (st != ENCO_OK) {
        free(list);
        free(ids);
        return st;
    }
    enco_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        free(list);
        free(ids);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    }
    ctx->info = list[idx];
    ctx->device = ids[idx];
    free(list);
    free(ids);

    clGetDeviceInfo(ctx->device, CL_DEVICE_PLATFORM, sizeof ctx->platform, &ctx->platform, NULL);
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform,
                                     0};
    cl_int err = CL_SUCCESS;
    ctx->context = clCreateContext(props, 1, &ctx->device, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        st = ENCO_FAIL(err, "clCreateContext on %s failed", ctx->info.name);
        enco_ctx_free(ctx);
        return st;
    }
    ctx->queue = clCreateCommandQueue(ctx->context, ctx->device, 0, &err);
    if (err != CL_SUCCESS) {
        st = ENCO_FAIL(err, "clCreateCommandQueue on %s failed", ctx->info.name);
        enco_ctx_free(ctx);
        return st;
    }

    ctx->cache_on = cache_enabled(opts->cache_mode);
    if (opts->cache_dir && *opts->cache_dir)
        snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s", opts->cache_dir);
    else if (enco_cache_default_dir(ctx->cache_dir, sizeof ctx->cache_dir) != ENCO_OK)
        ctx->cache_on = 0;
    const char *kdir = opts->kernel_dir ? opts->kernel_dir : getenv("ENCO_CL_DIR");
    if (kdir && *kdir)
        snprintf(ctx->kernel_dir, sizeof ctx->kernel_dir, "%s", kdir);
    snprintf(ctx->build_options, sizeof ctx->build_options, "-cl-std=CL1.2");
    resolve_gemm(ctx, opts->gemm);
    st = enco_ctx_set_kernel_policy(ctx, &policy);
    if (st != ENCO_OK) {
        enco_ctx_free(ctx);
        return st;
    }
    ctx->host_zero_fill = strstr(ctx->info.name, "Oclgrind") != NULL;
    enco_tuning_load(ctx);
    const char *fault = getenv("ENCO_FAULT_AFTER_LAUNCHES");
    ctx->fault_after = fault ? strtol(fault, NULL, 10) : 0;
    const char *prof = getenv("ENCO_PROFILE_KERNELS");
    ctx->profile = opts->profile_kernels || (prof && *prof && strcmp(prof, "0") != 0);
    ctx->on_profile = opts->on_kernel_profile;
    ctx->on_profile_user = opts->on_kernel_profile_user;
    enco_clear_error();
    *out = ctx;
    return ENCO_OK;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int prof_cmp(const void *a, const void *b)
{
    const enco_kernel_profile_row *x = a, *y = b;
    return x->seconds < y->seconds ? 1 : x->seconds > y->seconds ? -1 : 0;
}

enco_status enco_ctx_kernel_profile(const enco_ctx *ctx, enco_kernel_profile *out)
{
    static const char *const slot_names[ENCO_SCRATCH_SLOTS] = {"splitk", "gemm", "conv",
                                                               "grad_a", "grad_b", "grad_skip"};
    _Static_assert((int)ENCO_SCRATCH_SLOTS == (int)ENCO_SCRATCH_AREAS, "scratch areas");
    memset(out, 0, sizeof *out);
    for (int i = 0; i < ENCO_SCRATCH_SLOTS; i++) {
        out->scratch_names[i] = slot_names[i];
        out->scratch_bytes[i] = ctx->scratch_bytes[i];
    }
    if (!ctx->profile)
        return ENCO_OK;
    enco_kernel_profile_row *v = malloc((ctx->nkernels + 1) * sizeof *v);
    if (!v)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    size_t n = 0;
    for (size_t i = 0; i < ctx->nkernels; i++)
        if (ctx->kernels[i].prof_n) {
            const enco_kernel_entry *e = &ctx->kernels[i];
            v[n++] = (enco_kernel_profile_row){e->program, e->name, e->prof_s, e->prof_n};
            out->total_seconds += e->prof_s;
        }
    qsort(v, n, sizeof *v, prof_cmp);
    out->rows = v;
    out->nrows = n;
    return ENCO_OK;
}

void enco_kernel_profile_free(enco_kernel_profile *p)
{
    if (!p)
        return;
    free((void *)p->rows);
    p->rows = NULL;
    p->nrows = 0;
}

void enco_ctx_free(enco_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->queue)
        clFinish(ctx->queue);
    if (ctx->profile && ctx->on_profile) {
        enco_kernel_profile p;
        if (enco_ctx_kernel_profile(ctx, &p) == ENCO_OK)
            ctx->on_profile(&p, ctx->on_profile_user);
        enco_kernel_profile_free(&p);
        enco_clear_error();
    }
    for (int i = 0; i < ENCO_SCRATCH_SLOTS; i++)
        if (ctx->scratch[i])
            enco_buffer_free(ctx, ctx->scratch[i]);
    for (size_t i = 0; i < ctx->nkernels; i++)
        clReleaseKernel(ctx->kernels[i].kernel);
    for (size_t i = 0; i < ctx->nprograms; i++)
        clReleaseProgram(ctx->programs[i].program);
    free(ctx->kernels);
    free(ctx->programs);
    enco_trace_free(ctx->trace);
    if (ctx->queue)
        clReleaseCommandQueue(ctx->queue);
    if (ctx->context)
        clReleaseContext(ctx->context);
    free(ctx);
}

enco_status enco_ctx_scratch(enco_ctx *ctx, int slot, size_t bytes, cl_mem *out)
{
    if (slot < 0 || slot >= ENCO_SCRATCH_SLOTS)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "scratch slot %d out of range", slot);
    if (ctx->scratch_bytes[slot] < bytes) {
        if (ctx->scratch[slot]) {
            /* OpenCL frees it once the commands queued on it have run. */
            enco_buffer_free(ctx, ctx->scratch[slot]);
            ctx->scratch[slot] = NULL;
            ctx->scratch_bytes[slot] = 0;
        }
        ENCO_TRY(enco_buffer_alloc(ctx, bytes, &ctx->scratch[slot]));
        ctx->scratch_bytes[slot] = bytes;
    }
    *out = ctx->scratch[slot];
    return ENCO_OK;
}

const enco_device_info *enco_ctx_device(const enco_ctx *ctx) { return &ctx->info; }
enco_ctx_stats enco_ctx_get_stats(const enco_ctx *ctx) { return ctx->stats; }
enco_gemm_backend enco_ctx_gemm_backend(const enco_ctx *ctx) { return ctx->gemm; }
cl_context enco_ctx_cl_context(const enco_ctx *ctx) { return ctx->context; }
cl_command_queue enco_ctx_queue(const enco_ctx *ctx) { return ctx->queue; }
const char *enco_ctx_cache_dir(const enco_ctx *ctx) { return ctx->cache_dir; }

enco_status enco_finish(enco_ctx *ctx)
{
    ENCO_CL(clFinish(ctx->queue));
    return ENCO_OK;
}

/* ---- buffers ---------------------------------------------------------- */

enco_status enco_buffer_alloc(enco_ctx *ctx, size_t bytes, cl_mem *out)
{
    *out = NULL;
    if (bytes == 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "zero-byte device buffer requested");
    if (bytes > ctx->info.max_alloc_bytes)
        return ENCO_FAIL(CL_INVALID_BUFFER_SIZE,
                         "a buffer of %zu bytes exceeds the largest allocation of %s (%llu bytes)",
                         bytes, ctx->info.name, (unsigned long long)ctx->info.max_alloc_bytes);
    cl_int err = CL_SUCCESS;
    cl_mem mem = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS)
        return ENCO_FAIL(err,
                         "allocating %zu bytes on %s failed (%llu bytes in use, device has %llu)",
                         bytes, ctx->info.name, (unsigned long long)ctx->stats.device_bytes,
                         (unsigned long long)ctx->info.global_mem_bytes);
    /* New buffers start at zero: garbage (NaN) must never leak into a GEMM with beta 0,
     * and it keeps every run bit-reproducible. */
    enco_status st = enco_fill_zero(ctx, mem, 0, bytes);
    if (st != ENCO_OK) {
        clReleaseMemObject(mem);
        return st;
    }
    ctx->stats.device_bytes += bytes;
    if (ctx->stats.device_bytes > ctx->stats.device_peak_bytes)
        ctx->stats.device_peak_bytes = ctx->stats.device_bytes;
    *out = mem;
    return ENCO_OK;
}

void enco_buffer_free(enco_ctx *ctx, cl_mem mem)
{
    if (!mem)
        return;
    size_t bytes = 0;
    if (clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL) == CL_SUCCESS &&
        bytes <= ctx->stats.device_bytes)
        ctx->stats.device_bytes -= bytes;
    clReleaseMemObject(mem);
}

enco_status enco_upload(enco_ctx *ctx, cl_mem mem, size_t offset, size_t bytes, const void *host)
{
    if (bytes == 0)
        return ENCO_OK;
    if (ctx->trace)
        enco_trace_upload(ctx, mem, offset, bytes, host);
    ENCO_CL(clEnqueueWriteBuffer(ctx->queue, mem, CL_TRUE, offset, bytes, host, 0, NULL, NULL));
    return ENCO_OK;
}

enco_status enco_upload_async(enco_ctx *ctx, cl_mem mem, size_t offset, size_t bytes,
                              const void *host)
{
    if (bytes == 0)
        return ENCO_OK;
    if (ctx->trace)
        enco_trace_upload(ctx, mem, offset, bytes, host);
    ENCO_CL(clEnqueueWriteBuffer(ctx->queue, mem, CL_FALSE, offset, bytes, host, 0, NULL, NULL));
    return ENCO_OK;
}

enco_status enco_download(enco_ctx *ctx, cl_mem mem, size_t offset, size_t bytes, void *host)
{
    if (bytes == 0)
        return ENCO_OK;
    ENCO_CL(clEnqueueReadBuffer(ctx->queue, mem, CL_TRUE, offset, bytes, host, 0, NULL, NULL));
    return ENCO_OK;
}

enco_status enco_download_async(enco_ctx *ctx, cl_mem mem, size_t offset, size_t bytes,
                                void *host, cl_event *done)
{
    *done = NULL;
    if (bytes == 0)
        return ENCO_OK;
    ENCO_CL(clEnqueueReadBuffer(ctx->queue, mem, CL_FALSE, offset, bytes, host, 0, NULL, done));
    return ENCO_OK;
}

enco_status enco_marker(enco_ctx *ctx, cl_event *done)
{
    *done = NULL;
    ENCO_CL(clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, done));
    return ENCO_OK;
}

enco_status enco_flush(enco_ctx *ctx)
{
    ENCO_CL(clFlush(ctx->queue));
    return ENCO_OK;
}

enco_status enco_event_wait(cl_event ev)
{
    if (!ev)
        return ENCO_OK;
    cl_int err = clWaitForEvents(1, &ev);
    cl_int status = CL_COMPLETE;
    if (err == CL_SUCCESS)
        err = clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL);
    clReleaseEvent(ev);
    ENCO_CL(err);
    ENCO_CL(status < 0 ? status : CL_SUCCESS);
    return ENCO_OK;
}

int enco_event_done(cl_event ev)
{
    cl_int status = CL_COMPLETE;
    if (ev &&
        clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL) !=
            CL_SUCCESS)
        return 1;
    return status == CL_COMPLETE || status < 0;
}

void enco_event_release(cl_event ev)
{
    if (ev)
        clReleaseEvent(ev);
}

enco_status enco_fill_zero(enco_ctx *ctx, cl_mem mem, size_t offset, size_t bytes)
{
    if (bytes == 0)
        return ENCO_OK;
    if (ctx->trace)
        enco_trace_fill(ctx, mem, offset, bytes);
    if (ctx->host_zero_fill) {
        /* Oclgrind's uninitialised-value check does not count
         * clEnqueueFillBuffer as a write; a host write it does see. */
        void *zeros = calloc(1, bytes);
        if (!zeros)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        cl_int err = clEnqueueWriteBuffer(ctx->queue, mem, CL_TRUE, offset, bytes, zeros, 0,
                                          NULL, NULL);
        free(zeros);
        ENCO_CL(err);
        return ENCO_OK;
    }
    if (offset % 4 == 0 && bytes % 4 == 0) {
        const cl_uint zero = 0;
        ENCO_CL(clEnqueueFillBuffer(ctx->queue, mem, &zero, sizeof zero, offset, bytes, 0, NULL,
                                    NULL));
    } else {
        const cl_uchar zero = 0;
        ENCO_CL(clEnqueueFillBuffer(ctx->queue, mem, &zero, 1, offset, bytes, 0, NULL, NULL));
    }
    return ENCO_OK;
}

enco_status enco_copy(enco_ctx *ctx, cl_mem dst, size_t dst_offset, cl_mem src, size_t src_offset,
                      size_t bytes)
{
    if (bytes == 0)
        return ENCO_OK;
    if (ctx->trace)
        enco_trace_copy(ctx, dst, dst_offset, src, src_offset, bytes);
    ENCO_CL(clEnqueueCopyBuffer(ctx->queue, src, dst, src_offset, dst_offset, bytes, 0, NULL,
                                NULL));
    return ENCO_OK;
}

enco_status enco_check_range(const char *op, const char *name, cl_mem mem, size_t off,
                             size_t count, size_t elem_size)
{
    if (!mem)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s buffer is NULL", op, name);
    size_t bytes = 0;
    ENCO_CL(clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL));
    size_t have = bytes / elem_size;
    if (off > have || count > have - off)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: %s needs elements [%zu, %zu) but its buffer holds %zu values", op,
                         name, off, off + count, have);
    return ENCO_OK;
}

enco_status enco_check_disjoint(const char *op, const char *a_name, cl_mem a, size_t a_off,
                                size_t a_count, const char *b_name, cl_mem b, size_t b_off,
                                size_t b_count)
{
    if (a && a == b && a_off < b_off + b_count && b_off < a_off + a_count)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s and %s overlap in the same buffer", op,
                         a_name, b_name);
    return ENCO_OK;
}

/* ---- programs and kernels --------------------------------------------- */

static enco_status program_get(enco_ctx *ctx, const char *name, cl_program *out)
{
    for (size_t i = 0; i < ctx->nprograms; i++)
        if (strcmp(ctx->programs[i].name, name) == 0) {
            *out = ctx->programs[i].program;
            return ENCO_OK;
        }
    if (strlen(name) >= ENCO_NAME_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "program name too long: %s", name);

    const char *common = NULL, *body = NULL;
    int own_common = 0, own_body = 0;
    ENCO_TRY(enco_cl_source_get(ctx, "common", &common, &own_common));
    enco_status st = enco_cl_source_get(ctx, name, &body, &own_body);
    if (st != ENCO_OK) {
        if (own_common)
            free((void *)common);
        return st;
    }
    size_t lc = strlen(common), lb = strlen(body);
    char *src = malloc(lc + lb + 64);
    if (!src)
        st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    else
        /* #line keeps the build log's line numbers those of cl/<name>.cl. */
        sprintf(src, "%s\n#line 1\n%s", common, body);
    if (own_common)
        free((void *)common);
    if (own_body)
        free((void *)body);
    if (st != ENCO_OK)
        return st;

    cl_program prog = NULL;
    st = enco_program_build_cached(ctx, name, src, ctx->build_options, &prog);
    free(src);
    if (st != ENCO_OK)
        return st;
    if (ctx->nprograms == ctx->cap_programs) {
        size_t cap = ctx->cap_programs ? 2 * ctx->cap_programs : 16;
        enco_program_entry *p = realloc(ctx->programs, cap * sizeof *p);
        if (!p) {
            clReleaseProgram(prog);
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        }
        ctx->programs = p;
        ctx->cap_programs = cap;
    }
    enco_program_entry *e = &ctx->programs[ctx->nprograms++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->program = prog;
    *out = prog;
    return ENCO_OK;
}

enco_status enco_kernel_get(enco_ctx *ctx, const char *program, const char *kernel, cl_kernel *out)
{
    for (size_t i = 0; i < ctx->nkernels; i++) {
        enco_kernel_entry *e = &ctx->kernels[i];
        if (strcmp(e->name, kernel) == 0 && strcmp(e->program, program) == 0) {
            *out = e->kernel;
            return ENCO_OK;
        }
    }
    if (strlen(kernel) >= ENCO_NAME_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "kernel name too long: %s", kernel);
    cl_program prog = NULL;
    ENCO_TRY(program_get(ctx, program, &prog));
    cl_int err = CL_SUCCESS;
    cl_kernel k = clCreateKernel(prog, kernel, &err);
    if (err != CL_SUCCESS)
        return ENCO_FAIL(err, "kernel '%s' not found in cl/%s.cl", kernel, program);
    if (ctx->nkernels == ctx->cap_kernels) {
        size_t cap = ctx->cap_kernels ? 2 * ctx->cap_kernels : 64;
        enco_kernel_entry *p = realloc(ctx->kernels, cap * sizeof *p);
        if (!p) {
            clReleaseKernel(k);
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        }
        ctx->kernels = p;
        ctx->cap_kernels = cap;
    }
    enco_kernel_entry *e = &ctx->kernels[ctx->nkernels++];
    snprintf(e->program, sizeof e->program, "%s", program);
    snprintf(e->name, sizeof e->name, "%s", kernel);
    e->kernel = k;
    e->prof_s = 0;
    e->prof_n = 0;
    *out = k;
    return ENCO_OK;
}

enco_status enco_kernel_run(enco_ctx *ctx, const char *program, const char *kernel, cl_uint dims,
                            const size_t *global, const size_t *local, size_t nargs,
                            const enco_arg *args)
{
    ctx->stats.kernel_launches++;
    if (ctx->trace)
        enco_trace_kernel(ctx, program, kernel, dims, global, local, nargs, args);
    if (ctx->fault_after > 0 && (long)ctx->stats.kernel_launches > ctx->fault_after)
        return ENCO_FAIL(CL_OUT_OF_RESOURCES,
                         "launching kernel %s/%s failed: the device stopped responding "
                         "(simulated by ENCO_FAULT_AFTER_LAUNCHES)",
                         program, kernel);
    cl_kernel k = NULL;
    ENCO_TRY(enco_kernel_get(ctx, program, kernel, &k));
    for (size_t i = 0; i < nargs; i++) {
        cl_int err = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].value);
        if (err != CL_SUCCESS)
            return ENCO_FAIL(err, "setting argument %zu of kernel %s/%s failed", i, program,
                             kernel);
    }
    size_t g[3];
    for (cl_uint d = 0; d < dims; d++) {
        g[d] = local ? enco_round_up(global[d], local[d]) : global[d];
        if (g[d] == 0)
            return ENCO_OK; /* empty launch: nothing to do */
    }
    double t0 = 0;
    if (ctx->profile) {
        clFinish(ctx->queue);
        t0 = now_s();
    }
    cl_int err = clEnqueueNDRangeKernel(ctx->queue, k, dims, NULL, g, local, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return ENCO_FAIL(err, "launching kernel %s/%s failed", program, kernel);
    if (ctx->profile)
        clFinish(ctx->queue);
    for (size_t i = 0; i < ctx->nkernels; i++)
        if (ctx->kernels[i].kernel == k) {
            if (ctx->profile)
                ctx->kernels[i].prof_s += now_s() - t0;
            ctx->kernels[i].prof_n++;
            break;
        }
    return ENCO_OK;
}

unsigned long enco_kernel_launches(const enco_ctx *ctx, const char *kernel)
{
    unsigned long n = 0;
    for (size_t i = 0; i < ctx->nkernels; i++)
        if (strcmp(ctx->kernels[i].name, kernel) == 0)
            n += ctx->kernels[i].prof_n;
    return n;
}
