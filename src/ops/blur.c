/* Downsample / Upsample blur layers: launchers and float64 references. */
#include "ops/blur.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------- */

static enco_status need_mem(cl_mem mem, size_t off, size_t count, const char *what)
{
    return enco_check_range("blur", what, mem, off, count, sizeof(float));
}

static enco_status check_dims(const char *op, int n, int c, int h, int w, int min_hw)
{
    if (n < 1 || c < 1 || h < 1 || w < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: shape (%d, %d, %d, %d) must be positive", op,
                         n, c, h, w);
    if (h < min_hw || w < min_hw)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: H and W must be at least %d (reflect padding 1 needs pad < size), "
                         "got %dx%d",
                         op, min_hw, h, w);
    /* Outputs are at most 4x the input; keep every index inside 31 bits. */
    if ((uint64_t)n * c * h * w * 4 > INT32_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: shape (%d, %d, %d, %d) is too large", op, n,
                         c, h, w);
    return ENCO_OK;
}

static size_t pow2_at_least(size_t x, size_t cap)
{
    size_t p = 1;
    while (p < x && p < cap)
        p <<= 1;
    return p;
}

/* Launches `kernel` over (gw, gh, planes) with a 2D tile sized to the output. */
static enco_status launch(enco_ctx *ctx, const char *kernel, int gw, int gh, int planes,
                          size_t nargs, const enco_arg *args)
{
    size_t local[3];
    local[0] = pow2_at_least((size_t)gw, 32);
    local[1] = pow2_at_least((size_t)gh, 256 / local[0]);
    local[2] = 1;
    size_t global[3] = {(size_t)gw, (size_t)gh, (size_t)planes};
    return enco_kernel_run(ctx, "blur", kernel, 3, global, local, nargs, args);
}

/* Row kernels (cl/blur.cl *_rows: one work-item per block of output rows,
 * float8 strips) on CPU devices; the one-item-per-element kernels on GPUs,
 * Oclgrind included (it reports every device type). The policy's blur_rows
 * (ENCO_BLUR_ROWS=0 / =1) forces either; the tests cover both, so Oclgrind checks the row kernels
 * too, in their scalar form (vec = 0 below). */
static int use_rows(enco_ctx *ctx)
{
    return enco_ctx_kernel_policy(ctx)->blur_rows == ENCO_PATH_ON;
}

/* Launches a row kernel over planes x row blocks, work-groups of one item.
 * A block holds about blur_block outputs (policy, ENCO_BLUR_BLOCK; default
 * 4096: fewer items than that would leave the
 * two cores' queues short; more, and PoCL's per-group cost shows). The
 * first args are the kernel's up to `rows`; rows and nblk are inserted. */
static enco_status launch_rows(enco_ctx *ctx, const char *kernel, int out_h, int out_w,
                               int planes, size_t nhead, const enco_arg *head, size_t ntail,
                               const enco_arg *tail)
{
    const long target = enco_ctx_kernel_policy(ctx)->blur_block;
    long rows = target / out_w;
    if (rows < 1)
        rows = 1;
    if (rows > out_h)
        rows = out_h;
    int nblk = (int)((out_h + rows - 1) / rows);
    enco_arg args[16];
    size_t na = 0;
    for (size_t i = 0; i < nhead; i++)
        args[na++] = head[i];
    cl_int rows_arg = (cl_int)rows, nblk_arg = nblk;
    args[na++] = (enco_arg){sizeof rows_arg, &rows_arg};
    args[na++] = (enco_arg){sizeof nblk_arg, &nblk_arg};
    cl_int vec_arg = strstr(enco_ctx_device(ctx)->name, "Oclgrind") == NULL;
    args[na++] = (enco_arg){sizeof vec_arg, &vec_arg};
    for (size_t i = 0; i < ntail; i++)
        args[na++] = tail[i];
    size_t global[1] = {(size_t)planes * (size_t)nblk}, local[1] = {1};
    return enco_kernel_run(ctx, "blur", kernel, 1, global, local, na, args);
}

static void fill_filter(float *filt, int channels, const double *a, int k, double scale)
{
    double sum = 0;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++)
            sum += a[i] * a[j];
    for (int ch = 0; ch < channels; ch++)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                filt[((size_t)ch * k + i) * k + j] = (float)(a[i] * a[j] / sum * scale);
}

void enco_blur_down_filter(float *filt, int channels)
{
    static const double a[3] = {1, 2, 1};
    fill_filter(filt, channels, a, 3, 1.0);
}

void enco_blur_up_filter(float *filt, int channels)
{
    static const double a[4] = {1, 3, 3, 1};
    fill_filter(filt, channels, a, 4, 4.0); /* stride^2 */
}

/* ---- downsample ------------------------------------------------------- */

enco_status enco_blur_down_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x, size_t x_off,
                                   cl_mem filt, size_t filt_off, int n, int c, int h, int w)
{
    ENCO_TRY(check_dims("blur_down_forward", n, c, h, w, 2));
    int ho = enco_blur_down_size(h), wo = enco_blur_down_size(w);
    ENCO_TRY(need_mem(x, x_off, (size_t)n * c * h * w, "x"));
    ENCO_TRY(need_mem(y, y_off, (size_t)n * c * ho * wo, "y"));
    ENCO_TRY(need_mem(filt, filt_off, (size_t)c * 9, "filt"));
    enco_arg args[] = {ENCO_ARG_INT(c),     ENCO_ARG_INT(h),         ENCO_ARG_INT(w),
                       ENCO_ARG_INT(ho),    ENCO_ARG_INT(wo),        ENCO_ARG_INT(n * c),
                       ENCO_ARG_MEM(x),     ENCO_ARG_ULONG(x_off),   ENCO_ARG_MEM(filt),
                       ENCO_ARG_ULONG(filt_off), ENCO_ARG_MEM(y),    ENCO_ARG_ULONG(y_off)};
    if (use_rows(ctx))
        return launch_rows(ctx, "blur_down_forward_rows", ho, wo, n * c, 6, args,
                           sizeof args / sizeof args[0] - 6, args + 6);
    return launch(ctx, "blur_down_forward", wo, ho, n * c, sizeof args / sizeof args[0], args);
}

enco_status enco_blur_down_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy,
                                    size_t dy_off, cl_mem filt, size_t filt_off, int n, int c,
                                    int h, int w)
{
    ENCO_TRY(check_dims("blur_down_backward", n, c, h, w, 2));
    int ho = enco_blur_down_size(h), wo = enco_blur_down_size(w);
    ENCO_TRY(need_mem(dx, dx_off, (size_t)n * c * h * w, "dx"));
    ENCO_TRY(need_mem(dy, dy_off, (size_t)n * c * ho * wo, "dy"));
    ENCO_TRY(need_mem(filt, filt_off, (size_t)c * 9, "filt"));
    enco_arg args[] = {ENCO_ARG_INT(c),     ENCO_ARG_INT(h),         ENCO_ARG_INT(w),
                       ENCO_ARG_INT(ho),    ENCO_ARG_INT(wo),        ENCO_ARG_INT(n * c),
                       ENCO_ARG_MEM(dy),    ENCO_ARG_ULONG(dy_off),  ENCO_ARG_MEM(filt),
                       ENCO_ARG_ULONG(filt_off), ENCO_ARG_MEM(dx),   ENCO_ARG_ULONG(dx_off)};
    if (use_rows(ctx))
        return launch_rows(ctx, "blur_down_backward_rows", h, w, n * c, 6, args,
                           sizeof args / sizeof args[0] - 6, args + 6);
    return launch(ctx, "blur_down_backward", w, h, n * c, sizeof args / sizeof args[0], args);
}

static int reflect1(int i, int n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); }

void enco_blur_down_forward_ref(double *y, const double *x, const double *filt, int n, int c,
                                int h, int w)
{
    int ho = enco_blur_down_size(h), wo = enco_blur_down_size(w);
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++) {
            const double *xp = x + ((size_t)b * c + ch) * h * w;
            const double *f = filt + (size_t)ch * 9;
            double *yp = y + ((size_t)b * c + ch) * ho * wo;
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++) {
                    double acc = 0;
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++)
                            acc += f[kh * 3 + kw] * xp[(size_t)reflect1(2 * oh + kh - 1, h) * w +
                                                       reflect1(2 * ow + kw - 1, w)];
                    yp[(size_t)oh * wo + ow] = acc;
                }
        }
}

void enco_blur_down_backward_ref(double *dx, const double *dy, const double *filt, int n, int c,
                                 int h, int w)
{
    int ho = enco_blur_down_size(h), wo = enco_blur_down_size(w);
    for (size_t i = 0; i < (size_t)n * c * h * w; i++)
        dx[i] = 0;
    /* Scatter: the transpose of the forward loop. */
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++) {
            double *dxp = dx + ((size_t)b * c + ch) * h * w;
            const double *f = filt + (size_t)ch * 9;
            const double *g = dy + ((size_t)b * c + ch) * ho * wo;
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++)
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++)
                            dxp[(size_t)reflect1(2 * oh + kh - 1, h) * w +
                                reflect1(2 * ow + kw - 1, w)] +=
                                f[kh * 3 + kw] * g[(size_t)oh * wo + ow];
        }
}

enco_op_cost enco_blur_down_forward_cost(int n, int c, int h, int w)
{
    double out = (double)n * c * enco_blur_down_size(h) * enco_blur_down_size(w);
    double in = (double)n * c * h * w;
    return (enco_op_cost){2.0 * 9 * out, 4.0 * (in + out + 9.0 * c)};
}

enco_op_cost enco_blur_down_backward_cost(int n, int c, int h, int w)
{
    return enco_blur_down_forward_cost(n, c, h, w);
}

/* ---- upsample --------------------------------------------------------- */

enco_status enco_blur_up_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x, size_t x_off,
                                 cl_mem filt, size_t filt_off, int n, int c, int h, int w)
{
    ENCO_TRY(check_dims("blur_up_forward", n, c, h, w, 1));
    ENCO_TRY(need_mem(x, x_off, (size_t)n * c * h * w, "x"));
    ENCO_TRY(need_mem(y, y_off, (size_t)n * c * h * w * 4, "y"));
    ENCO_TRY(need_mem(filt, filt_off, (size_t)c * 16, "filt"));
    enco_arg args[] = {ENCO_ARG_INT(c),       ENCO_ARG_INT(h),          ENCO_ARG_INT(w),
                       ENCO_ARG_INT(n * c),   ENCO_ARG_MEM(x),          ENCO_ARG_ULONG(x_off),
                       ENCO_ARG_MEM(filt),    ENCO_ARG_ULONG(filt_off), ENCO_ARG_MEM(y),
                       ENCO_ARG_ULONG(y_off)};
    if (use_rows(ctx))
        return launch_rows(ctx, "blur_up_forward_rows", 2 * h, 2 * w, n * c, 4, args,
                           sizeof args / sizeof args[0] - 4, args + 4);
    return launch(ctx, "blur_up_forward", 2 * w, 2 * h, n * c, sizeof args / sizeof args[0], args);
}

enco_status enco_blur_up_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy,
                                  size_t dy_off, cl_mem filt, size_t filt_off, int n, int c, int h,
                                  int w)
{
    ENCO_TRY(check_dims("blur_up_backward", n, c, h, w, 1));
    ENCO_TRY(need_mem(dx, dx_off, (size_t)n * c * h * w, "dx"));
    ENCO_TRY(need_mem(dy, dy_off, (size_t)n * c * h * w * 4, "dy"));
    ENCO_TRY(need_mem(filt, filt_off, (size_t)c * 16, "filt"));
    enco_arg args[] = {ENCO_ARG_INT(c),       ENCO_ARG_INT(h),          ENCO_ARG_INT(w),
                       ENCO_ARG_INT(n * c),   ENCO_ARG_MEM(dy),         ENCO_ARG_ULONG(dy_off),
                       ENCO_ARG_MEM(filt),    ENCO_ARG_ULONG(filt_off), ENCO_ARG_MEM(dx),
                       ENCO_ARG_ULONG(dx_off)};
    if (use_rows(ctx))
        return launch_rows(ctx, "blur_up_backward_rows", h, w, n * c, 4, args,
                           sizeof args / sizeof args[0] - 4, args + 4);
    return launch(ctx, "blur_up_backward", w, h, n * c, sizeof args / sizeof args[0], args);
}

static int clamp1(int i, int n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

/* The literal definition: transposed conv of the replicate-padded input into
 * the full (2H+2) x (2W+2) output (stride 2, padding 2), then the crop
 * [1, 2H+1) x [1, 2W+1). Forward: src = x, dst = y. Transpose: src = dy,
 * dst = dx (the same loop, each product scattered the other way). */
static void up_ref(double *dst, const double *src, const double *filt, int n, int c, int h, int w,
                   int transpose)
{
    int ho = 2 * h, wo = 2 * w;
    size_t in_plane = (size_t)h * w, out_plane = (size_t)ho * wo;
    size_t dst_plane = transpose ? in_plane : out_plane, src_plane = transpose ? out_plane : in_plane;
    for (size_t i = 0; i < (size_t)n * c * dst_plane; i++)
        dst[i] = 0;
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++) {
            double *d = dst + ((size_t)b * c + ch) * dst_plane;
            const double *s = src + ((size_t)b * c + ch) * src_plane;
            const double *f = filt + (size_t)ch * 16;
            for (int ih = 0; ih < h + 2; ih++)
                for (int iw = 0; iw < w + 2; iw++)
                    for (int kh = 0; kh < 4; kh++)
                        for (int kw = 0; kw < 4; kw++) {
                            int fh = 2 * ih - 2 + kh, fw = 2 * iw - 2 + kw; /* full output */
                            int jh = fh - 1, jw = fw - 1;                     /* cropped */
                            if (jh < 0 || jh >= ho || jw < 0 || jw >= wo)
                                continue;
                            size_t xi = (size_t)clamp1(ih - 1, h) * w + clamp1(iw - 1, w);
                            size_t yi = (size_t)jh * wo + jw;
                            if (transpose)
                                d[xi] += f[kh * 4 + kw] * s[yi];
                            else
                                d[yi] += f[kh * 4 + kw] * s[xi];
                        }
        }
}

void enco_blur_up_forward_ref(double *y, const double *x, const double *filt, int n, int c, int h,
                              int w)
{
    up_ref(y, x, filt, n, c, h, w, 0);
}

void enco_blur_up_backward_ref(double *dx, const double *dy, const double *filt, int n, int c,
                               int h, int w)
{
    up_ref(dx, dy, filt, n, c, h, w, 1);
}

enco_op_cost enco_blur_up_forward_cost(int n, int c, int h, int w)
{
    double in = (double)n * c * h * w, out = 4.0 * in;
    return (enco_op_cost){2.0 * 4 * out, 4.0 * (in + out + 16.0 * c)};
}

enco_op_cost enco_blur_up_backward_cost(int n, int c, int h, int w)
{
    return enco_blur_up_forward_cost(n, c, h, w);
}
