/* Internal API shared by the library's modules: error reporting, buffers,
 * kernel launch, GEMM. Not installed; ops and networks build on this. */
#ifndef ENCO_INTERNAL_H
#define ENCO_INTERNAL_H

#include "enco/enco.h"

#include <stdarg.h>
#include <stddef.h>

/* ---- errors ----------------------------------------------------------- */

/* Records a message for enco_last_error() and returns status. */
enco_status enco_fail(enco_status status, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Appends text to the current error message (e.g. a build log). */
void enco_error_append(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define ENCO_FAIL(status, ...) enco_fail((status), __FILE__, __LINE__, __VA_ARGS__)

/* Writes text to path atomically: a temporary file beside it, fsync, rename
 * (a reader sees the old file or the whole new one). */
enco_status enco_write_text_atomic(const char *path, const char *text);

/* Wraps an OpenCL call returning cl_int: on failure records the call text and
 * returns its code from the enclosing function. */
#define ENCO_CL(call)                                                                 \
    do {                                                                              \
        cl_int enco_cl_err_ = (call);                                                 \
        if (enco_cl_err_ != CL_SUCCESS)                                               \
            return enco_fail(enco_cl_err_, __FILE__, __LINE__, "%s failed: %s", #call, \
                             enco_status_str(enco_cl_err_));                          \
    } while (0)

/* Propagates a non-zero enco_status from the enclosing function. */
#define ENCO_TRY(expr)                         \
    do {                                       \
        enco_status enco_try_st_ = (expr);     \
        if (enco_try_st_ != ENCO_OK)           \
            return enco_try_st_;               \
    } while (0)

/* ---- buffers ---------------------------------------------------------- */

/* Device allocations are counted so benchmarks can report peak memory.
 * Offsets and sizes below are in bytes unless a name says otherwise. */
enco_status enco_buffer_alloc(enco_ctx *ctx, size_t bytes, cl_mem *out);
void enco_buffer_free(enco_ctx *ctx, cl_mem mem);
enco_status enco_upload(enco_ctx *ctx, cl_mem mem, size_t offset, size_t bytes, const void *host);

/* Scratch buffers owned by the context, one per slot, grown (never shrunk) to
 * the largest request: the first use of a shape allocates, later ones reuse.
 * Counted in the device memory statistics like every buffer. The contents do
 * not survive a larger request. */
enum {
    ENCO_SCRATCH_SPLITK,
    ENCO_SCRATCH_GEMM,
    ENCO_SCRATCH_CONV,
    ENCO_SCRATCH_GRAD_A, /* seqnet backward: gradient ping-pong and skip */
    ENCO_SCRATCH_GRAD_B,
    ENCO_SCRATCH_GRAD_SKIP,
    ENCO_SCRATCH_SLOTS
};
enco_status enco_ctx_scratch(enco_ctx *ctx, int slot, size_t bytes, cl_mem *out);
/* Non-blocking upload: host must stay unchanged until the queue has run it. */
enco_status enco_upload_async(enco_ctx *ctx, cl_mem mem, size_t offset, size_t bytes,
                              const void *host);
enco_status enco_download(enco_ctx *ctx, cl_mem mem, size_t offset, size_t bytes, void *host);
/* Non-blocking download: host holds the bytes once *done has completed
 * (enco_event_wait). Nothing to download: *done is NULL. */
enco_status enco_download_async(enco_ctx *ctx, cl_mem mem, size_t offset, size_t bytes,
                                void *host, cl_event *done);
/* *done completes when everything enqueued so far has run. */
enco_status enco_marker(enco_ctx *ctx, cl_event *done);
/* Starts the commands enqueued so far on the device without waiting. */
enco_status enco_flush(enco_ctx *ctx);
/* Waits for ev and releases it (NULL: nothing to wait for). */
enco_status enco_event_wait(cl_event ev);
/* Whether ev has completed, without waiting (NULL: yes). */
int enco_event_done(cl_event ev);
void enco_event_release(cl_event ev);
enco_status enco_fill_zero(enco_ctx *ctx, cl_mem mem, size_t offset, size_t bytes);
enco_status enco_copy(enco_ctx *ctx, cl_mem dst, size_t dst_offset, cl_mem src, size_t src_offset,
                      size_t bytes);

/* Argument checks shared by the op launchers: mem must be non-NULL and hold
 * elements [off, off + count) of elem_size bytes; two ranges of one buffer
 * must not overlap. Messages start with "op: name". */
enco_status enco_check_range(const char *op, const char *name, cl_mem mem, size_t off,
                             size_t count, size_t elem_size);
enco_status enco_check_disjoint(const char *op, const char *a_name, cl_mem a, size_t a_off,
                                size_t a_count, const char *b_name, cl_mem b, size_t b_off,
                                size_t b_count);

/* ---- kernels ---------------------------------------------------------- */

/* One kernel argument: size and pointer to its value (NULL value = __local). */
typedef struct enco_arg {
    size_t size;
    const void *value;
} enco_arg;

#define ENCO_ARG_MEM(m) ((enco_arg){sizeof(cl_mem), &(cl_mem){(m)}})
#define ENCO_ARG_INT(v) ((enco_arg){sizeof(cl_int), &(cl_int){(cl_int)(v)}})
#define ENCO_ARG_UINT(v) ((enco_arg){sizeof(cl_uint), &(cl_uint){(cl_uint)(v)}})
#define ENCO_ARG_LONG(v) ((enco_arg){sizeof(cl_long), &(cl_long){(cl_long)(v)}})
#define ENCO_ARG_ULONG(v) ((enco_arg){sizeof(cl_ulong), &(cl_ulong){(cl_ulong)(v)}})
#define ENCO_ARG_FLOAT(v) ((enco_arg){sizeof(cl_float), &(cl_float){(cl_float)(v)}})
#define ENCO_ARG_LOCAL(bytes) ((enco_arg){(bytes), NULL})

/* Returns the kernel `kernel` of program `program` (the file cl/<program>.cl,
 * prefixed by cl/common.cl), building and caching the program on first use. */
enco_status enco_kernel_get(enco_ctx *ctx, const char *program, const char *kernel, cl_kernel *out);

/* Sets the arguments and enqueues. global is rounded up to a multiple of local
 * (when local is given), so kernels must guard their index ranges. */
enco_status enco_kernel_run(enco_ctx *ctx, const char *program, const char *kernel, cl_uint dims,
                            const size_t *global, const size_t *local, size_t nargs,
                            const enco_arg *args);

#define ENCO_RUN(ctx, program, kernel, dims, global, local, ...)                              \
    enco_kernel_run((ctx), (program), (kernel), (dims), (global), (local),                    \
                    sizeof((enco_arg[]){__VA_ARGS__}) / sizeof(enco_arg), (enco_arg[]){__VA_ARGS__})

/* Builds a program from explicit source (no common.cl prefix); used by tests
 * and the self check. The result is owned by the caller. */
enco_status enco_program_build_source(enco_ctx *ctx, const char *name, const char *source,
                                      const char *options, cl_program *out);

/* Embedded kernel sources, generated at build time from cl/\*.cl. */
typedef struct enco_cl_source {
    const char *name;    /* file name without .cl */
    const char *source;
} enco_cl_source;
extern const enco_cl_source enco_cl_sources[];
extern const size_t enco_cl_sources_count;

/* Source text of cl/<name>.cl: from ENCO_CL_DIR / kernel_dir when set, else
 * embedded. *owned is set when the caller must free() the result. */
enco_status enco_cl_source_get(const enco_ctx *ctx, const char *name, const char **src, int *owned);

/* Launches of kernel `kernel` (any program) in this context so far: lets
 * tests check which path an operation took. */
unsigned long enco_kernel_launches(const enco_ctx *ctx, const char *kernel);

/* ---- GEMM ------------------------------------------------------------- */

/* Row-major C = alpha * op(A) * op(B) + beta * C; offsets and leading
 * dimensions in elements. op(A) is M x K, op(B) is K x N. */
enco_status enco_sgemm(enco_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                       float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                       size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc);

/* As enco_sgemm for `batch` problems whose matrices start stride_* elements apart. */
enco_status enco_sgemm_batched(enco_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n,
                               size_t k, float alpha, cl_mem a, size_t a_off, size_t lda,
                               size_t stride_a, cl_mem b, size_t b_off, size_t ldb,
                               size_t stride_b, float beta, cl_mem c, size_t c_off, size_t ldc,
                               size_t stride_c, size_t batch);

/* An implicit im2col operand (cl/gemm.cl gemm_pack_im2col*): per image x is
 * (c, h, w); its column matrix is (c*kh*kw) x (ho*wo), row (ci*kh + ki)*kw +
 * kj, column oh*wo + ow, entry x at the padded coordinate (oh*sh - pt + ki,
 * ow*sw - pl + kj) through enco_pad_index with padding `mode` (an
 * enco_pad_mode). */
typedef struct enco_im2col_geom {
    int c, h, w;
    int ho, wo;
    int kh, kw, sh, sw;
    int pt, pl;
    int mode;
} enco_im2col_geom;

/* 1 when enco_sgemm_im2col runs on this context: the packed CPU GEMM is in
 * use (CPU device, not ENCO_GEMM_TILE=0, not the built-in GEMM). */
int enco_sgemm_im2col_available(const enco_ctx *ctx);

/* C_q = alpha * A_q op(B_q) + beta * C_q for q < batch (A not transposed,
 * lda, batch strides in elements), where B_q is the column matrix of image
 * q of x (x_off + q * stride_x), never stored: transposed = 0: op(B) = col
 * (m x P result, inner dimension K = c*kh*kw); transposed = 1: op(B) =
 * col^T (m x K result, inner dimension P = ho*wo). bias: NULL, or m floats
 * from bias_off added to the rows at the finish (transposed = 0, beta = 0:
 * C_q = alpha * A_q col_q + bias, the bits of filling C_q with the bias and
 * taking beta = 1). The bits equal those of building the column matrix and
 * calling enco_sgemm_batched. */
enco_status enco_sgemm_im2col(enco_ctx *ctx, int transposed, size_t m, float alpha, cl_mem a,
                              size_t a_off, size_t lda, size_t stride_a, cl_mem x, size_t x_off,
                              size_t stride_x, const enco_im2col_geom *g, float beta, cl_mem c,
                              size_t c_off, size_t ldc, size_t stride_c, size_t batch,
                              cl_mem bias, size_t bias_off);

/* enco_sgemm_im2col (transposed = 0, no bias, A shared by the batch) with
 * A the input-gradient operand of a convolution's weights w (cout, m, kh, kw),
 * kk = kh * kw taken from g: A[i][co * kk + r] = w[co][i][kk - 1 - r], the
 * flipped, transposed weights that conv_flip_weights writes out, packed
 * straight from w. x is dy (g->c = cout channels), g its column matrix; the
 * bits are those of flipping into a matrix and passing that as A. */
enco_status enco_sgemm_im2col_flipped(enco_ctx *ctx, size_t m, float alpha, cl_mem w,
                                      size_t w_off, cl_mem x, size_t x_off, size_t stride_x,
                                      const enco_im2col_geom *g, float beta, cl_mem c,
                                      size_t c_off, size_t ldc, size_t stride_c, size_t batch);

/* Direct weight-gradient GEMM (packed CPU GEMM only; cl/gemm.cl
 * gemm_conv_wgrad): C (n x K, ldc) = alpha * dY col(x)^T + beta * C for one
 * image, dY (n x P, lddy), the column matrix read from x inside the
 * multiply, never stored or packed; same bits as enco_sgemm_im2col. */
enco_status enco_conv_gemm_wgrad(enco_ctx *ctx, size_t n, float alpha, cl_mem dy, size_t dy_off,
                                 size_t lddy, cl_mem x, size_t x_off, const enco_im2col_geom *g,
                                 float beta, cl_mem c, size_t c_off, size_t ldc);

/* ---- shared op vocabulary --------------------------------------------- */

/* Padding modes, as PyTorch's zero / ReflectionPad2d / ReplicationPad2d.
 * The same numbering is used on the device (see cl/common.cl). */
typedef enum enco_pad_mode {
    ENCO_PAD_ZERO = 0,
    ENCO_PAD_REFLECT = 1,
    ENCO_PAD_REPLICATE = 2,
} enco_pad_mode;

/* Maps a padded coordinate i (may be < 0 or >= n) to a source coordinate in
 * [0, n), or -1 where zero padding applies. Reflect needs pad < n. */
static inline int enco_pad_index(int i, int n, enco_pad_mode mode)
{
    if (i >= 0 && i < n)
        return i;
    if (mode == ENCO_PAD_ZERO)
        return -1;
    if (mode == ENCO_PAD_REPLICATE)
        return i < 0 ? 0 : n - 1;
    return i < 0 ? -i : 2 * (n - 1) - i;
}

/* Work and traffic of one launch of an op, for the benchmark table: each op
 * family provides enco_<op>_cost() functions returning this. */
typedef struct enco_op_cost {
    double flops;   /* floating-point operations (a fused multiply-add counts 2) */
    double bytes;   /* bytes read plus bytes written in global memory, at minimum */
} enco_op_cost;

/* ---- recording one step (bench's kernel table) ------------------------- */

/* While a context records, every command it enqueues (kernel launches,
 * CLBlast GEMMs, copies, zero fills, uploads) is copied, with its arguments,
 * into an enco_trace, grouped into ops: enco_ctx_trace_op opens an op (its
 * name and pass "conv2d.fwd", where "G model.1", the op family's cost of
 * one call, a human shape) and the commands that follow belong to it until
 * the next enco_ctx_trace_op or enco_ctx_trace_close; a command outside any
 * op becomes an op of its own named after it, placed "untagged". Each op can
 * then be enqueued again alone (enco_trace_replay) on the same buffers. Not
 * recording, the tag calls cost a pointer test: callers that format strings
 * check enco_ctx_tracing first. */
typedef struct enco_trace_op {
    char name[32];
    char where[64];
    char shape[96];
    enco_op_cost cost;       /* of one call */
    size_t first, count;     /* its commands */
    unsigned long launches;  /* kernel launches (enco_kernel_run calls) among them */
} enco_trace_op;

typedef struct enco_trace_cmd enco_trace_cmd;

typedef struct enco_trace {
    enco_trace_op *ops;
    size_t nops, cap_ops;
    enco_trace_cmd *cmds;
    size_t ncmds, cap_cmds;
    int open;                /* the last op takes further commands */
    enco_status error;       /* first failure to record (host memory) */
} enco_trace;

/* Starts recording on ctx (fails if it already records). */
enco_status enco_ctx_trace_begin(enco_ctx *ctx);
/* Stops recording and hands the trace over (free with enco_trace_free);
 * fails if recording ran out of host memory. */
enco_status enco_ctx_trace_end(enco_ctx *ctx, enco_trace **out);
int enco_ctx_tracing(const enco_ctx *ctx);
/* shape_fmt: printf-style; nothing is formatted unless ctx records. */
void enco_ctx_trace_op(enco_ctx *ctx, const char *name, const char *where, enco_op_cost cost,
                       const char *shape_fmt, ...) __attribute__((format(printf, 5, 6)));
void enco_ctx_trace_close(enco_ctx *ctx);
/* Enqueues op `op` of tr again on ctx (the context that recorded it, whose
 * buffers must still exist). Does not record. */
enco_status enco_trace_replay(enco_ctx *ctx, const enco_trace *tr, size_t op);
void enco_trace_free(enco_trace *tr);

/* For the launch paths (src/cl): record a command when ctx records. */
void enco_trace_kernel(enco_ctx *ctx, const char *program, const char *kernel, cl_uint dims,
                       const size_t *global, const size_t *local, size_t nargs,
                       const enco_arg *args);
/* A CLBlast GEMM (batch 0: enco_sgemm's CLBlastSgemm, else strided batched). */
typedef struct enco_trace_gemm {
    int ta, tb;
    size_t m, n, k;
    float alpha, beta;
    cl_mem a, b, c;
    size_t a_off, lda, sa, b_off, ldb, sb, c_off, ldc, sc, batch;
} enco_trace_gemm;
void enco_trace_gemm_call(enco_ctx *ctx, const enco_trace_gemm *g);
/* Runs a recorded CLBlast GEMM again (src/cl/gemm.c). */
enco_status enco_gemm_replay(enco_ctx *ctx, const enco_trace_gemm *g);

/* ---- small helpers ---------------------------------------------------- */

static inline size_t enco_round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* 64-bit FNV-1a, chained through `h` (start with ENCO_FNV_OFFSET). */
#define ENCO_FNV_OFFSET 0xcbf29ce484222325ULL
uint64_t enco_fnv1a(uint64_t h, const void *data, size_t len);

#endif
