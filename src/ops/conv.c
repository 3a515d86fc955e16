/* Convolution family: host launchers and float64 references.
 *
 * Conv2d forward:   col_n = im2col(x_n) (K x P), y_n = W (Cout x K) col_n [+ b].
 * Conv2d backward:  dW += sum_n dY_n col_n^T, dcol_n = W^T dY_n,
 *                   dx_n = col2im(dcol_n) (a gather), db += sum_{n,p} dY.
 * ConvTranspose2d is the adjoint of a zero-padded Conv2d whose input is the
 * transposed convolution's output, so it reuses the same two kernels with
 * the roles swapped. Pad2d is im2col / col2im with a 1x1 kernel.
 * K = C*kh*kw (row (c*kh + ki)*kw + kj), P = Ho*Wo. */
#include "ops/conv.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Geometry of one im2col / col2im pair (see cl/conv.cl): the same fields as
 * the implicit im2col operand of the packed GEMM (c, h, w: the padded tensor,
 * source of im2col, target of col2im; ho, wo: window positions; kh, kw, sh,
 * sw; pt, pl: top / left padding; mode). */
typedef enco_im2col_geom conv_geom;

/* Where the packed CPU GEMM runs, no column matrix is stored: the GEMM packs
 * it from x (enco_sgemm_im2col), and by default the weight gradient reads x
 * inside the multiply instead (enco_conv_gemm_wgrad: 1.5-2x faster at the
 * 64- and 128-channel layers at 256x256, even at the residual blocks).
 * The policy's conv_implicit PACK (ENCO_CONV_IMPLICIT=1) packs for the
 * weight gradient too, OFF (0) builds the column matrices in the workspace
 * (what other devices do; src/cl/policy.c sets OFF wherever the packed GEMM
 * does not run). All three give the same bits. Returns 0, 1 or 2. */
static int implicit_mode(const enco_kernel_policy *p)
{
    return p->conv_implicit == ENCO_CONV_IMPLICIT_OFF    ? 0
           : p->conv_implicit == ENCO_CONV_IMPLICIT_PACK ? 1
                                                         : 2;
}

static int use_implicit(const enco_ctx *ctx)
{
    return implicit_mode(enco_ctx_kernel_policy(ctx)) != 0;
}

/* The direct weight gradient sets up six source rows per output row, which
 * short rows do not repay: at D's 31-wide 512-channel layer it took 112 ms
 * against 75 ms for packing the transposed column matrix (alternated runs,
 * PoCL, 2 cores), at the 63-wide and wider layers it is ahead. So by
 * default it takes rows of at least WGRAD_DIRECT_MIN_WO outputs;
 * conv_implicit WGRAD (ENCO_CONV_IMPLICIT=2) forces it for every shape
 * (tests). */
#define WGRAD_DIRECT_MIN_WO 48

static int wgrad_direct(const enco_kernel_policy *p, const conv_geom *g)
{
    if (implicit_mode(p) != 2)
        return 0;
    return p->conv_implicit == ENCO_CONV_IMPLICIT_WGRAD || g->wo >= WGRAD_DIRECT_MIN_WO;
}

static size_t geom_k(const conv_geom *g) { return (size_t)g->c * g->kh * g->kw; }
static size_t geom_p(const conv_geom *g) { return (size_t)g->ho * g->wo; }

/* Work-group size along dimension 0 (the pixels of a plane): 256, or the
 * smallest power of two covering a smaller plane (less idle padding). */
static size_t local0(size_t n)
{
    size_t l = 1;
    while (l < n && l < 256)
        l *= 2;
    return l;
}

/* ---- argument checks ---------------------------------------------------- */

/* mem must hold off + count floats. */
static enco_status check_mem(cl_mem mem, size_t off, size_t count, const char *op,
                             const char *name)
{
    return enco_check_range(op, name, mem, off, count, sizeof(float));
}

static enco_status check_mode(int mode, const char *op)
{
    if (mode != ENCO_PAD_ZERO && mode != ENCO_PAD_REFLECT && mode != ENCO_PAD_REPLICATE)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: unknown padding mode %d", op, mode);
    return ENCO_OK;
}

/* Every count below must stay inside int for the kernels' index math. */
static enco_status check_int_range(size_t v, const char *op, const char *what)
{
    if (v > (size_t)INT_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s (%zu) is too large", op, what, v);
    return ENCO_OK;
}

/* ---- the two kernels ---------------------------------------------------- */

/* Columns of output rows [oh0, oh0 + rows) of nimg images into col
 * (per image (K, rows*wo)). */
static enco_status run_im2col(enco_ctx *ctx, cl_mem col, size_t col_off, cl_mem x, size_t x_off,
                              int nimg, const conv_geom *g, int oh0, int rows)
{
    const size_t global[3] = {(size_t)rows, geom_k(g), (size_t)nimg};
    return ENCO_RUN(ctx, "conv", "conv_im2col", 3, global, NULL, ENCO_ARG_MEM(x),
                    ENCO_ARG_ULONG(x_off), ENCO_ARG_MEM(col), ENCO_ARG_ULONG(col_off),
                    ENCO_ARG_INT(g->c), ENCO_ARG_INT(g->h), ENCO_ARG_INT(g->w),
                    ENCO_ARG_INT(g->wo), ENCO_ARG_INT(g->kh), ENCO_ARG_INT(g->kw),
                    ENCO_ARG_INT(g->sh), ENCO_ARG_INT(g->sw), ENCO_ARG_INT(g->pt),
                    ENCO_ARG_INT(g->pl), ENCO_ARG_INT(g->mode), ENCO_ARG_INT(oh0),
                    ENCO_ARG_INT(rows));
}

/* As run_im2col, transposed: per image (rows*wo, K). */
static enco_status run_im2col_t(enco_ctx *ctx, cl_mem col, size_t col_off, cl_mem x,
                                size_t x_off, int nimg, const conv_geom *g, int oh0, int rows)
{
    const size_t global[3] = {(size_t)rows, (size_t)g->c * g->kh, (size_t)nimg};
    return ENCO_RUN(ctx, "conv", "conv_im2col_t", 3, global, NULL, ENCO_ARG_MEM(x),
                    ENCO_ARG_ULONG(x_off), ENCO_ARG_MEM(col), ENCO_ARG_ULONG(col_off),
                    ENCO_ARG_INT(g->c), ENCO_ARG_INT(g->h), ENCO_ARG_INT(g->w),
                    ENCO_ARG_INT(g->wo), ENCO_ARG_INT(g->kh), ENCO_ARG_INT(g->kw),
                    ENCO_ARG_INT(g->sh), ENCO_ARG_INT(g->sw), ENCO_ARG_INT(g->pt),
                    ENCO_ARG_INT(g->pl), ENCO_ARG_INT(g->mode), ENCO_ARG_INT(oh0),
                    ENCO_ARG_INT(rows));
}

/* The source rows [*lo, *hi] read by output rows [oh0, oh0 + rows); empty
 * (*lo > *hi) when only zero padding is read. */
static void band_source_rows(const conv_geom *g, int oh0, int rows, int *lo, int *hi)
{
    *lo = g->h;
    *hi = -1;
    const int t1 = (oh0 + rows - 1) * g->sh - g->pt + g->kh - 1;
    for (int t = oh0 * g->sh - g->pt; t <= t1; t++) {
        int i = enco_pad_index(t, g->h, (enco_pad_mode)g->mode);
        if (i < 0)
            continue;
        if (i < *lo)
            *lo = i;
        if (i > *hi)
            *hi = i;
    }
}

/* The per-plane CPU kernels (conv_fold_rows, conv_bias_grad_rows,
 * conv_flip_weights_rows: one work-item per plane or channel, where PoCL
 * runs the per-element kernels 10-30x slower than memory allows); each gives
 * the same bits as the kernel it replaces. The policy's conv_rows
 * (ENCO_CONV_ROWS; default: on CPUs). */
static int cpu_rows(const enco_ctx *ctx)
{
    return enco_ctx_kernel_policy(ctx)->conv_rows == ENCO_PATH_ON;
}

/* conv_fold_rows applies to a whole-plane 1x1 stride-1 col2im (the padding
 * folds). */
static int fold_rows(int rows_k, const conv_geom *g, int oh0, int rows, int accumulate,
                     cl_mem bias)
{
    if (g->kh != 1 || g->kw != 1 || g->sh != 1 || g->sw != 1 || oh0 != 0 || rows != g->ho ||
        accumulate || bias)
        return 0;
    return rows_k;
}

/* x = col2im(col) for output rows [oh0, oh0 + rows): with accumulate = 0 it
 * overwrites all of x (starting from bias[c], or 0 when bias is NULL); with
 * accumulate = 1 it adds to the rows of x this band reads. rows_k: the CPU
 * per-plane kernels (cpu_rows). */
static enco_status run_col2im(enco_ctx *ctx, cl_mem x, size_t x_off, cl_mem col, size_t col_off,
                              cl_mem bias, size_t bias_off, int nimg, const conv_geom *g, int oh0,
                              int rows, int accumulate, int rows_k)
{
    if (fold_rows(rows_k, g, oh0, rows, accumulate, bias)) {
        const size_t fg[2] = {(size_t)g->c, (size_t)nimg};
        const size_t one[2] = {1, 1};
        return ENCO_RUN(ctx, "conv", "conv_fold_rows", 2, fg, one, ENCO_ARG_MEM(col),
                        ENCO_ARG_ULONG(col_off), ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off),
                        ENCO_ARG_INT(g->c), ENCO_ARG_INT(g->h), ENCO_ARG_INT(g->w),
                        ENCO_ARG_INT(g->ho), ENCO_ARG_INT(g->wo), ENCO_ARG_INT(g->pt),
                        ENCO_ARG_INT(g->pl), ENCO_ARG_INT(g->mode));
    }
    int lo = 0, hi = g->h - 1;
    if (accumulate)
        band_source_rows(g, oh0, rows, &lo, &hi);
    if (lo > hi)
        return ENCO_OK;
    const int hrows = hi - lo + 1;
    const size_t global[3] = {(size_t)hrows * g->w, (size_t)g->c, (size_t)nimg};
    const size_t local[3] = {local0(global[0]), 1, 1};
    /* Without bias, pass any valid buffer: the kernel does not read it. */
    return ENCO_RUN(ctx, "conv", "conv_col2im", 3, global, local, ENCO_ARG_MEM(col),
                    ENCO_ARG_ULONG(col_off), ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off),
                    ENCO_ARG_MEM(bias ? bias : col), ENCO_ARG_ULONG(bias ? bias_off : 0),
                    ENCO_ARG_INT(bias != NULL), ENCO_ARG_INT(accumulate), ENCO_ARG_INT(g->c), ENCO_ARG_INT(g->h), ENCO_ARG_INT(g->w),
                    ENCO_ARG_INT(g->ho), ENCO_ARG_INT(g->wo), ENCO_ARG_INT(g->kh),
                    ENCO_ARG_INT(g->kw), ENCO_ARG_INT(g->sh), ENCO_ARG_INT(g->sw),
                    ENCO_ARG_INT(g->pt), ENCO_ARG_INT(g->pl), ENCO_ARG_INT(g->mode),
                    ENCO_ARG_INT(oh0), ENCO_ARG_INT(rows), ENCO_ARG_INT(lo), ENCO_ARG_INT(hrows));
}

static enco_status run_fill_bias(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem b, size_t b_off,
                                 int n, int c, size_t p)
{
    const size_t global[3] = {p, (size_t)c, (size_t)n};
    const size_t local[3] = {local0(p), 1, 1};
    return ENCO_RUN(ctx, "conv", "conv_fill_bias", 3, global, local, ENCO_ARG_MEM(y),
                    ENCO_ARG_ULONG(y_off), ENCO_ARG_MEM(b), ENCO_ARG_ULONG(b_off),
                    ENCO_ARG_INT(c), ENCO_ARG_INT(p));
}

static enco_status run_bias_grad(enco_ctx *ctx, cl_mem db, size_t db_off, cl_mem dy,
                                 size_t dy_off, int n, int c, size_t p, int rows_k)
{
    /* A power of two no larger than the device allows (the order of the sum
     * depends on it, so it is fixed per device). */
    size_t local = 256;
    size_t maxwg = enco_ctx_device(ctx)->max_work_group_size;
    while (local > 1 && local > maxwg)
        local /= 2;
    if (rows_k) {
        const size_t cg[1] = {(size_t)c}, one[1] = {1};
        return ENCO_RUN(ctx, "conv", "conv_bias_grad_rows", 1, cg, one, ENCO_ARG_MEM(dy),
                        ENCO_ARG_ULONG(dy_off), ENCO_ARG_MEM(db), ENCO_ARG_ULONG(db_off),
                        ENCO_ARG_INT(n), ENCO_ARG_INT(c), ENCO_ARG_INT(p),
                        ENCO_ARG_INT((int)local));
    }
    const size_t global = (size_t)c * local;
    return ENCO_RUN(ctx, "conv", "conv_bias_grad", 1, &global, &local, ENCO_ARG_MEM(dy),
                    ENCO_ARG_ULONG(dy_off), ENCO_ARG_MEM(db), ENCO_ARG_ULONG(db_off),
                    ENCO_ARG_INT(n), ENCO_ARG_INT(c), ENCO_ARG_INT(p),
                    ENCO_ARG_LOCAL(local * sizeof(float)));
}

/* How a workspace of ws_floats is used: `chunk` whole images at a time when
 * it holds at least one image's column matrix (band = ho), else one image at
 * a time in bands of `band` output rows (at least one row must fit). */
typedef struct conv_plan {
    int chunk, band;
} conv_plan;

static enco_status plan_workspace(const char *op, const conv_geom *g, int n, cl_mem ws,
                                  size_t ws_off, size_t ws_floats, conv_plan *pl)
{
    const size_t row = geom_k(g) * g->wo, image = row * g->ho;
    if (ws_floats >= image) {
        size_t fit = ws_floats / image;
        pl->chunk = fit < (size_t)n ? (int)fit : n;
        pl->band = g->ho;
    } else if (ws_floats >= row) {
        pl->chunk = 1;
        pl->band = (int)(ws_floats / row);
    } else {
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: workspace of %zu floats is smaller than one output row's column "
                         "matrix (%zu floats; %zu for a whole image)",
                         op, ws_floats, row, image);
    }
    return check_mem(ws, ws_off, (size_t)pl->chunk * row * pl->band, op, "workspace");
}

/* ---- direct kernels for few output channels ------------------------------ */

/* Largest cout that the direct kernels (cl/conv.cl conv_*_small) take
 * instead of im2col + GEMM: the policy's conv_direct_max, 4 by default
 * (ENCO_CONV_DIRECT_MAX=0 turns them off, for tests of the GEMM path on the
 * same shapes). */
static int direct_max(const enco_kernel_policy *p)
{
    return p->conv_direct_max < 0 ? 0 : p->conv_direct_max;
}

/* Partial sums of a weight gradient split into `parts` (GPUs: split-K and
 * split rows; CPUs: the strip kernel's row blocks): a scratch area of parts x
 * count floats, and dw[i] += part[0][i] + part[1][i] + ... in part order
 * (conv_splitk_reduce), so the result does not depend on scheduling. */
static enco_status parts_scratch(enco_ctx *ctx, size_t parts, size_t count, cl_mem *part)
{
    return enco_ctx_scratch(ctx, ENCO_SCRATCH_SPLITK, parts * count * sizeof(float), part);
}

static enco_status add_parts(enco_ctx *ctx, cl_mem part, size_t parts, size_t count, cl_mem dw,
                             size_t dw_off)
{
    const size_t global[1] = {(count + 63) / 64 * 64};
    return ENCO_RUN(ctx, "conv", "conv_splitk_reduce", 1, global, NULL, ENCO_ARG_MEM(part),
                    ENCO_ARG_INT((int)parts), ENCO_ARG_ULONG(count), ENCO_ARG_MEM(dw),
                    ENCO_ARG_ULONG(dw_off));
}

/* The policy's conv_splitk (ENCO_CONV_SPLITK): 1 with *parts set when it is
 * fixed (never: 0 parts; N >= 2: N parts on any device), 0 when the device
 * decides (GPUs; src/cl/policy.c fixes it to never elsewhere). */
static int splitk_fixed(int splitk, size_t *parts)
{
    if (splitk == 0)
        return 0;
    *parts = splitk < 0 ? 0 : (size_t)splitk;
    return 1;
}

/* The float8 strip kernels for few output channels (CPUs, stride 1 along w):
 * the policy's conv_strip, on CPU devices unless ENCO_CONV_STRIP=0;
 * ENCO_CONV_STRIP=1 forces them on any device (the bitwise
 * cross-implementation check pins the path). */
static int use_strip(const enco_kernel_policy *p, const conv_geom *g)
{
    return p->conv_strip == ENCO_PATH_ON && g->sw == 1;
}

static enco_status run_fwd_small(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x, size_t x_off,
                                 cl_mem w, size_t w_off, cl_mem b, size_t b_off, int n, int cout,
                                 const conv_geom *g, int strip)
{
    /* CPUs, stride 1 along w: strips of 16 outputs with float8, a work-item
     * per strip (conv_fwd_small_strip) or, for rows of 64 outputs or more,
     * per row of up to 256 (conv_fwd_small_rows: the output conv 68 -> 53 ms
     * in alternated runs; at D's 30-wide last conv it was 50 % slower);
     * GPUs and other shapes: one work-item per output. All give the same
     * bits. */
    if (strip && g->kw <= 16) {
        const int rows = g->wo >= 64;
        const size_t span = rows ? 256 : 16;
        const size_t sg[3] = {((size_t)g->wo + span - 1) / span, (size_t)g->ho, (size_t)n};
        const size_t sl[3] = {1, 1, 1};
        return ENCO_RUN(ctx, "conv", rows ? "conv_fwd_small_rows" : "conv_fwd_small_strip", 3, sg,
                        sl, ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off), ENCO_ARG_MEM(w),
                        ENCO_ARG_ULONG(w_off), ENCO_ARG_MEM(b ? b : w),
                        ENCO_ARG_ULONG(b ? b_off : 0), ENCO_ARG_INT(b != NULL),
                        ENCO_ARG_MEM(y), ENCO_ARG_ULONG(y_off), ENCO_ARG_INT(cout),
                        ENCO_ARG_INT(g->c), ENCO_ARG_INT(g->h), ENCO_ARG_INT(g->w),
                        ENCO_ARG_INT(g->ho), ENCO_ARG_INT(g->wo), ENCO_ARG_INT(g->kh),
                        ENCO_ARG_INT(g->kw), ENCO_ARG_INT(g->sh), ENCO_ARG_INT(g->pt),
                        ENCO_ARG_INT(g->pl), ENCO_ARG_INT(g->mode));
    }
    const size_t global[2] = {geom_p(g), (size_t)n};
    const size_t local[2] = {local0(global[0]), 1};
    return ENCO_RUN(ctx, "conv", "conv_fwd_small", 2, global, local, ENCO_ARG_MEM(x),
                    ENCO_ARG_ULONG(x_off), ENCO_ARG_MEM(w), ENCO_ARG_ULONG(w_off),
                    ENCO_ARG_MEM(b ? b : w), ENCO_ARG_ULONG(b ? b_off : 0),
                    ENCO_ARG_INT(b != NULL), ENCO_ARG_MEM(y), ENCO_ARG_ULONG(y_off),
                    ENCO_ARG_INT(cout), ENCO_ARG_INT(g->c), ENCO_ARG_INT(g->h),
                    ENCO_ARG_INT(g->w), ENCO_ARG_INT(g->ho), ENCO_ARG_INT(g->wo),
                    ENCO_ARG_INT(g->kh), ENCO_ARG_INT(g->kw), ENCO_ARG_INT(g->sh),
                    ENCO_ARG_INT(g->sw), ENCO_ARG_INT(g->pt), ENCO_ARG_INT(g->pl),
                    ENCO_ARG_INT(g->mode));
}

static enco_status run_bwd_data_small(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy,
                                      size_t dy_off, cl_mem w, size_t w_off, int n, int cout,
                                      const conv_geom *g)
{
    const size_t global[3] = {(size_t)g->h * g->w, (size_t)g->c, (size_t)n};
    const size_t local[3] = {local0(global[0]), 1, 1};
    return ENCO_RUN(ctx, "conv", "conv_bwd_data_small", 3, global, local, ENCO_ARG_MEM(dy),
                    ENCO_ARG_ULONG(dy_off), ENCO_ARG_MEM(w), ENCO_ARG_ULONG(w_off),
                    ENCO_ARG_MEM(dx), ENCO_ARG_ULONG(dx_off), ENCO_ARG_INT(cout),
                    ENCO_ARG_INT(g->c), ENCO_ARG_INT(g->h), ENCO_ARG_INT(g->w),
                    ENCO_ARG_INT(g->ho), ENCO_ARG_INT(g->wo), ENCO_ARG_INT(g->kh),
                    ENCO_ARG_INT(g->kw), ENCO_ARG_INT(g->sh), ENCO_ARG_INT(g->sw),
                    ENCO_ARG_INT(g->pt), ENCO_ARG_INT(g->pl), ENCO_ARG_INT(g->mode));
}

static enco_status run_bwd_weight_small(enco_ctx *ctx, cl_mem dw, size_t dw_off, cl_mem dy,
                                        size_t dy_off, cl_mem x, size_t x_off, int n, int cout,
                                        const conv_geom *g, int strip)
{
    /* CPUs, stride 1 along w: conv_bwd_weight_small_strip over blocks of 16
     * output rows of each image into the split-K scratch, then the parts
     * added to dw in order (image, block). */
    if (strip) {
        const int rows = 16, nblk = (g->ho + rows - 1) / rows, parts = n * nblk;
        const size_t count = (size_t)cout * geom_k(g);
        cl_mem part;
        ENCO_TRY(parts_scratch(ctx, (size_t)parts, count, &part));
        const size_t sg[3] = {(size_t)g->c * g->kh * ((g->kw + 1) / 2), (size_t)nblk, (size_t)n};
        const size_t sl[3] = {1, 1, 1};
        ENCO_TRY(ENCO_RUN(ctx, "conv", "conv_bwd_weight_small_strip", 3, sg, sl, ENCO_ARG_MEM(dy),
                          ENCO_ARG_ULONG(dy_off), ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off),
                          ENCO_ARG_MEM(part), ENCO_ARG_INT(cout), ENCO_ARG_INT(g->c),
                          ENCO_ARG_INT(g->h), ENCO_ARG_INT(g->w), ENCO_ARG_INT(g->ho),
                          ENCO_ARG_INT(g->wo), ENCO_ARG_INT(g->kh), ENCO_ARG_INT(g->kw),
                          ENCO_ARG_INT(g->sh), ENCO_ARG_INT(g->pt), ENCO_ARG_INT(g->pl),
                          ENCO_ARG_INT(g->mode), ENCO_ARG_INT(rows)));
        return add_parts(ctx, part, (size_t)parts, count, dw, dw_off);
    }
    const size_t global[1] = {geom_k(g)};
    const size_t local[1] = {local0(global[0]) < 64 ? local0(global[0]) : 64};
    return ENCO_RUN(ctx, "conv", "conv_bwd_weight_small", 1, global, local, ENCO_ARG_MEM(dy),
                    ENCO_ARG_ULONG(dy_off), ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off),
                    ENCO_ARG_MEM(dw), ENCO_ARG_ULONG(dw_off), ENCO_ARG_INT(n),
                    ENCO_ARG_INT(cout), ENCO_ARG_INT(g->c), ENCO_ARG_INT(g->h),
                    ENCO_ARG_INT(g->w), ENCO_ARG_INT(g->ho), ENCO_ARG_INT(g->wo),
                    ENCO_ARG_INT(g->kh), ENCO_ARG_INT(g->kw), ENCO_ARG_INT(g->sh),
                    ENCO_ARG_INT(g->sw), ENCO_ARG_INT(g->pt), ENCO_ARG_INT(g->pl),
                    ENCO_ARG_INT(g->mode));
}

/* ---- split-K weight gradient for GPUs ------------------------------------ */

/* The weight gradient dW (cout x K) += dY (cout x pb) colT (pb x K) has a
 * long reduction (pb = output pixels, up to 65536) and few output tiles when
 * cout and K are small: one GEMM then occupies a handful of a GPU's compute
 * units. Split the reduction into parts computed as one batched GEMM into a
 * scratch area, then add the parts in order (conv_splitk_reduce).
 * conv_splitk (ENCO_CONV_SPLITK): never; N >= 2 = always N parts (any device;
 * tests); by default on GPUs, enough parts for about 4 work-groups of 64 x 64
 * per compute unit, each part at least 512 long, at most 64 parts. */
static int splitk_parts(const enco_ctx *ctx, int splitk, size_t m, size_t n, size_t k)
{
    size_t s;
    if (splitk_fixed(splitk, &s)) {
        if (s > k)
            s = k;
    } else {
        const enco_device_info *d = enco_ctx_device(ctx);
        if (!d->is_gpu)
            return 1;
        const size_t tiles = ((m + 63) / 64) * ((n + 63) / 64);
        const size_t want = 4 * (size_t)d->compute_units;
        s = (want + tiles - 1) / tiles;
        if (s > k / 512)
            s = k / 512;
        if (s > 64)
            s = 64;
    }
    return s < 2 ? 1 : (int)s;
}

/* Parts for the direct small-cout weight gradient: conv_splitk as above
 * (N >= 2 forces N, clamped to the output rows); by default on GPUs enough
 * for about 8 * 256 work-items per compute unit. */
static int small_parts(const enco_ctx *ctx, int splitk, size_t K, int ho)
{
    size_t s;
    if (!splitk_fixed(splitk, &s)) {
        const enco_device_info *d = enco_ctx_device(ctx);
        if (!d->is_gpu)
            return 1;
        s = (8 * 256 * (size_t)d->compute_units + K - 1) / K;
    }
    if (s > (size_t)ho)
        s = (size_t)ho;
    return s < 2 ? 1 : (int)s;
}

static enco_status run_bwd_weight_small_split(enco_ctx *ctx, int parts, cl_mem dw, size_t dw_off,
                                              cl_mem dy, size_t dy_off, cl_mem x, size_t x_off,
                                              int n, int cout, const conv_geom *g)
{
    const size_t K = geom_k(g), count = (size_t)cout * K;
    cl_mem part;
    ENCO_TRY(parts_scratch(ctx, (size_t)parts, count, &part));
    const size_t global[2] = {(K + 63) / 64 * 64, (size_t)parts};
    const size_t local[2] = {64, 1};
    ENCO_TRY(ENCO_RUN(ctx, "conv", "conv_bwd_weight_small_part", 2, global, local,
                      ENCO_ARG_MEM(dy), ENCO_ARG_ULONG(dy_off), ENCO_ARG_MEM(x),
                      ENCO_ARG_ULONG(x_off), ENCO_ARG_MEM(part), ENCO_ARG_INT(n),
                      ENCO_ARG_INT(cout), ENCO_ARG_INT(g->c), ENCO_ARG_INT(g->h),
                      ENCO_ARG_INT(g->w), ENCO_ARG_INT(g->ho), ENCO_ARG_INT(g->wo),
                      ENCO_ARG_INT(g->kh), ENCO_ARG_INT(g->kw), ENCO_ARG_INT(g->sh),
                      ENCO_ARG_INT(g->sw), ENCO_ARG_INT(g->pt), ENCO_ARG_INT(g->pl),
                      ENCO_ARG_INT(g->mode), ENCO_ARG_INT(parts)));
    return add_parts(ctx, part, (size_t)parts, count, dw, dw_off);
}

/* dw (m x n, ldc n) += a (m x k, lda) b (k x n, ldb n) in `parts` parts. */
static enco_status gemm_splitk(enco_ctx *ctx, int parts, size_t m, size_t n, size_t k, cl_mem a,
                               size_t a_off, size_t lda, cl_mem b, size_t b_off, cl_mem dw,
                               size_t dw_off)
{
    const size_t len = (k + (size_t)parts - 1) / (size_t)parts, full = k / len,
                 rem = k - full * len, count = m * n, total = full + (rem > 0);
    cl_mem part;
    ENCO_TRY(parts_scratch(ctx, total, count, &part));
    ENCO_TRY(enco_sgemm_batched(ctx, 0, 0, m, n, len, 1.0f, a, a_off, lda, len, b, b_off, n,
                                len * n, 0.0f, part, 0, n, count, full));
    if (rem)
        ENCO_TRY(enco_sgemm(ctx, 0, 0, m, n, rem, 1.0f, a, a_off + full * len, lda, b,
                            b_off + full * len * n, n, 0.0f, part, full * count, n));
    return add_parts(ctx, part, total, count, dw, dw_off);
}

/* ---- input gradient of stride-1 convolutions as a forward convolution ---- */

/* With stride 1 the gradient of the padded input, dxp (cin, Hp, Wp) with
 * Hp = h + 2 pad_h, is the correlation of dy zero-padded by kh-1 / kw-1 with
 * the flipped, channel-transposed weights: dxp = wt im2col(dy), a GEMM with
 * the long dimension Hp*Wp as N and K' = cout*kh*kw. dx is dxp folded
 * through the padding (Pad2d's backward); with zero padding the GEMM writes
 * dx directly instead (flip_plane). This replaces the (cin*kh*kw x P)
 * column gradient and its col2im gather. Used when flip_wanted() and wt plus
 * one image's im2col(dy) and dxp (where it folds) fit the workspace
 * (layout: wt, then per image of the chunk its column matrix, then the dxp of
 * the chunk). Returns 0 in *done when it does not apply. */
/* Both paths do the same FLOPs; what differs is the GEMM's inner dimension
 * (cout for the column gradient, cout*kh*kw here) and the memory passes
 * around it. With the implicit im2col (CPUs) the flip path builds no column
 * matrix at all and skips col2im's gather, so it is taken for every stride-1
 * convolution there. Without it, measured at 128x128 on PoCL (packed GEMM; bench/RESULTS.md) the
 * flip wins where cout < cin (model.22, model.26: +13 to +40 %) or cout is
 * tiny (the output conv: 6x), and loses where cout >= cin (resblocks -10 %,
 * model.8 -22 %, D's 4x4 convs -28 to -50 %); on the H100 the two were even.
 * The policy's conv_bwd_flip (ENCO_CONV_BWD_FLIP): OFF = never, ON = whenever
 * it fits, AUTO = that rule. */
static int flip_rule(const enco_kernel_policy *p, const enco_conv2d_shape *s, int implicit)
{
    if (s->stride_h != 1 || s->stride_w != 1)
        return 0;
    if (p->conv_bwd_flip != ENCO_PATH_AUTO)
        return p->conv_bwd_flip == ENCO_PATH_ON;
    return implicit || s->cout < s->cin || s->cout <= direct_max(p);
}

/* The policy of a context with the defaults, for the planners that take no
 * context: the flip rule above with the direct kernels up to cout 4. */
static const enco_kernel_policy default_policy = {.conv_direct_max = 4};

/* The plane the flipped GEMM writes. With zero padding (or none) it is dx
 * itself: dy padded by kh-1-pad_h / kw-1-pad_w gives the h x w gradient
 * directly, the padded border's gradient (always dropped) is never formed, and
 * there is no dxp and no fold; the products summed are the same, in the same
 * order, so the bits are too. Reflect padding folds the border back in: that
 * needs the hp x wp plane of the padded input and a fold. Returns whether it
 * folds; *ph x *pw is the plane, *pt / *pl the padding of dy. */
static int flip_plane(const enco_conv2d_shape *s, int *ph, int *pw, int *pt, int *pl)
{
    const int fold = !(s->pad_mode == ENCO_PAD_ZERO || (s->pad_h == 0 && s->pad_w == 0)) ||
                     s->pad_h > s->kh - 1 || s->pad_w > s->kw - 1;
    *ph = fold ? s->h + 2 * s->pad_h : s->h;
    *pw = fold ? s->w + 2 * s->pad_w : s->w;
    *pt = fold ? s->kh - 1 : s->kh - 1 - s->pad_h;
    *pl = fold ? s->kw - 1 : s->kw - 1 - s->pad_w;
    return fold;
}

/* Floats conv2d_bwd_data_flip needs in the workspace for one image besides
 * the flipped weights (the column matrix of dy without the implicit im2col,
 * the dxp plane where it folds). */
static size_t flip_per_image(const enco_conv2d_shape *s, int implicit)
{
    int ph, pw, pt, pl;
    const int fold = flip_plane(s, &ph, &pw, &pt, &pl);
    const size_t kt = (size_t)s->cout * s->kh * s->kw, pp = (size_t)ph * pw;
    return (implicit ? 0 : kt * pp) + (fold ? (size_t)s->cin * pp : 0);
}

static enco_status conv2d_bwd_data_flip(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy,
                                        size_t dy_off, cl_mem w, size_t w_off, cl_mem ws,
                                        size_t ws_off, size_t ws_floats,
                                        const enco_conv2d_shape *s,
                                        const enco_conv2d_paths *paths, int *done)
{
    *done = 0;
    const int implicit = paths->implicit;
    if (!paths->bwd_flip)
        return ENCO_OK;
    int ho, wo, hp, wp, ptd, pld;
    enco_conv2d_out_size(s, &ho, &wo);
    const int fold = flip_plane(s, &hp, &wp, &ptd, &pld);
    const size_t kt = (size_t)s->cout * s->kh * s->kw, pp = (size_t)hp * wp;
    /* The flipped weights take room in the workspace only where they are
     * written out (the implicit GEMM packs them from w). */
    const size_t wt_sz = implicit ? 0 : (size_t)s->cin * kt,
                 per_img = flip_per_image(s, implicit);
    if (kt > (size_t)INT_MAX || pp > (size_t)INT_MAX / 2 || ws_floats < wt_sz + per_img)
        return ENCO_OK;
    size_t fit = per_img ? (ws_floats - wt_sz) / per_img : (size_t)s->n;
    const int chunk = fit < (size_t)s->n ? (int)fit : s->n;
    /* im2col(dy): source (cout, ho, wo), hp x wp window positions, zero pad. */
    const conv_geom gd = {.c = s->cout, .h = ho, .w = wo, .ho = hp, .wo = wp, .kh = s->kh,
                          .kw = s->kw, .sh = 1, .sw = 1, .pt = ptd, .pl = pld,
                          .mode = ENCO_PAD_ZERO};
    /* The fold: Pad2d of (cin, h, w) to (cin, hp, wp). */
    const conv_geom gp = {.c = s->cin, .h = s->h, .w = s->w, .ho = hp, .wo = wp, .kh = 1, .kw = 1,
                          .sh = 1, .sw = 1, .pt = s->pad_h, .pl = s->pad_w, .mode = s->pad_mode};
    const int rows_k = paths->rows;
    /* The implicit GEMM packs the flipped weights straight from w (the
     * packed panels are those of the flipped matrix, so the bits are too);
     * the explicit path writes them out for enco_sgemm_batched. */
    if (!implicit) {
        const size_t global[2] = {rows_k ? (size_t)s->cin : kt, rows_k ? 1 : (size_t)s->cin};
        const size_t one[2] = {1, 1};
        ENCO_TRY(ENCO_RUN(ctx, "conv", rows_k ? "conv_flip_weights_rows" : "conv_flip_weights",
                          2, global, rows_k ? one : NULL, ENCO_ARG_MEM(w), ENCO_ARG_ULONG(w_off),
                          ENCO_ARG_MEM(ws), ENCO_ARG_ULONG(ws_off), ENCO_ARG_INT(s->cin),
                          ENCO_ARG_INT(s->cout), ENCO_ARG_INT(s->kh), ENCO_ARG_INT(s->kw)));
    }
    const size_t in_img = (size_t)s->cin * s->h * s->w, out_img = (size_t)s->cout * ho * wo;
    for (int n0 = 0; n0 < s->n; n0 += chunk) {
        const int m = s->n - n0 < chunk ? s->n - n0 : chunk;
        const size_t col_off = ws_off + wt_sz,
                     dxp_off = col_off + (implicit ? 0 : (size_t)m * kt * pp);
        /* Without the fold the GEMM writes dx itself. */
        cl_mem c = fold ? ws : dx;
        const size_t c_off = fold ? dxp_off : dx_off + (size_t)n0 * in_img,
                     c_img = fold ? (size_t)s->cin * pp : in_img;
        if (implicit) {
            ENCO_TRY(enco_sgemm_im2col_flipped(ctx, (size_t)s->cin, 1.0f, w, w_off, dy,
                                               dy_off + (size_t)n0 * out_img, out_img, &gd, 0.0f,
                                               c, c_off, pp, c_img, (size_t)m));
        } else {
            ENCO_TRY(run_im2col(ctx, ws, col_off, dy, dy_off + (size_t)n0 * out_img, m, &gd, 0,
                                hp));
            ENCO_TRY(enco_sgemm_batched(ctx, 0, 0, (size_t)s->cin, pp, kt, 1.0f, ws, ws_off, kt,
                                        0, ws, col_off, pp, kt * pp, 0.0f, c, c_off, pp, c_img,
                                        (size_t)m));
        }
        if (fold)
            ENCO_TRY(run_col2im(ctx, dx, dx_off + (size_t)n0 * in_img, ws, dxp_off, NULL, 0, m,
                                &gp, 0, hp, 0, rows_k));
    }
    *done = 1;
    return ENCO_OK;
}

/* The checks Conv2d and ConvTranspose2d share. */
static enco_status check_geometry(const char *op, int n, int cin, int h, int w, int cout, int kh,
                                  int kw, int stride_h, int stride_w, int pad_h, int pad_w)
{
    if (n < 1 || cin < 1 || h < 1 || w < 1 || cout < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: empty tensor (n %d, cin %d, h %d, w %d, cout %d)", op, n, cin, h, w,
                         cout);
    if (kh < 1 || kw < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: kernel %dx%d", op, kh, kw);
    if (stride_h < 1 || stride_w < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: stride %dx%d must be >= 1", op, stride_h,
                         stride_w);
    if (pad_h < 0 || pad_w < 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: negative padding %dx%d", op, pad_h, pad_w);
    return ENCO_OK;
}

/* ---- Conv2d ------------------------------------------------------------- */

void enco_conv2d_out_size(const enco_conv2d_shape *s, int *ho, int *wo)
{
    *ho = (s->h + 2 * s->pad_h - s->kh) / s->stride_h + 1;
    *wo = (s->w + 2 * s->pad_w - s->kw) / s->stride_w + 1;
}

enco_status enco_conv2d_check(const enco_conv2d_shape *s)
{
    const char *op = "conv2d";
    if (!s)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: shape is NULL", op);
    ENCO_TRY(check_geometry(op, s->n, s->cin, s->h, s->w, s->cout, s->kh, s->kw, s->stride_h,
                            s->stride_w, s->pad_h, s->pad_w));
    ENCO_TRY(check_mode(s->pad_mode, op));
    if (s->pad_mode == ENCO_PAD_REFLECT && (s->pad_h >= s->h || s->pad_w >= s->w))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: reflect padding %dx%d needs pad < size (input %dx%d)", op, s->pad_h,
                         s->pad_w, s->h, s->w);
    if (s->h > INT_MAX / 4 || s->w > INT_MAX / 4 || s->pad_h > INT_MAX / 4 ||
        s->pad_w > INT_MAX / 4)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: size too large", op);
    if (s->h + 2 * s->pad_h < s->kh || s->w + 2 * s->pad_w < s->kw)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: kernel %dx%d larger than the padded input %dx%d", op, s->kh, s->kw,
                         s->h + 2 * s->pad_h, s->w + 2 * s->pad_w);
    int ho, wo;
    enco_conv2d_out_size(s, &ho, &wo);
    ENCO_TRY(check_int_range((size_t)s->cin * s->kh * s->kw, op, "cin*kh*kw"));
    ENCO_TRY(check_int_range((size_t)ho * wo, op, "output plane"));
    ENCO_TRY(check_int_range((size_t)s->cin * s->h * s->w, op, "input image"));
    ENCO_TRY(check_int_range((size_t)s->cout * ho * wo, op, "output image"));
    return ENCO_OK;
}

size_t enco_conv2d_workspace_floats(const enco_conv2d_shape *s, int images)
{
    int ho, wo;
    enco_conv2d_out_size(s, &ho, &wo);
    return (size_t)(images < 1 ? 1 : images) * s->cin * s->kh * s->kw * (size_t)ho * wo;
}

/* Floats conv2d_bwd_data_flip needs for one image on the explicit path (0:
 * not used here). */
static size_t flip_floats(const enco_kernel_policy *p, const enco_conv2d_shape *s)
{
    if (!flip_rule(p, s, 0))
        return 0;
    return (size_t)s->cin * s->cout * s->kh * s->kw + flip_per_image(s, 0);
}

static size_t plan_floats(const enco_kernel_policy *p, const enco_conv2d_shape *s,
                          size_t cap_floats)
{
    int ho, wo;
    enco_conv2d_out_size(s, &ho, &wo);
    const size_t row = (size_t)s->cin * s->kh * s->kw * (size_t)wo, image = row * (size_t)ho;
    size_t need = image <= cap_floats ? image : row >= cap_floats ? row : cap_floats / row * row;
    const size_t flip = flip_floats(p, s);
    if (flip > need && flip <= cap_floats)
        need = flip;
    return need;
}

size_t enco_conv2d_workspace_plan_floats(const enco_conv2d_shape *s, size_t cap_floats)
{
    return plan_floats(&default_policy, s, cap_floats);
}

size_t enco_conv2d_workspace_plan_floats_ctx(enco_ctx *ctx, const enco_conv2d_shape *s,
                                             size_t cap_floats)
{
    const enco_kernel_policy *p = enco_ctx_kernel_policy(ctx);
    if (!use_implicit(ctx))
        return plan_floats(p, s, cap_floats);
    /* The argument check's one output row of the column matrix, or the
     * room of the flipped-weight input gradient's wt and one image's dxp
     * where it folds: the implicit GEMM packs the flipped weights from w,
     * so that room holds the dxp planes of further images, which then share
     * one packing of the weights. */
    int ho, wo;
    enco_conv2d_out_size(s, &ho, &wo);
    size_t need = (size_t)s->cin * s->kh * s->kw * (size_t)wo;
    if (flip_rule(p, s, 1)) {
        const size_t flip =
            (size_t)s->cin * s->cout * s->kh * s->kw + flip_per_image(s, 1);
        if (flip > need && flip <= cap_floats)
            need = flip;
    }
    return need;
}

static conv_geom conv2d_geom(const enco_conv2d_shape *s)
{
    conv_geom g = {.c = s->cin, .h = s->h, .w = s->w, .kh = s->kh, .kw = s->kw,
                   .sh = s->stride_h, .sw = s->stride_w, .pt = s->pad_h, .pl = s->pad_w,
                   .mode = s->pad_mode};
    enco_conv2d_out_size(s, &g.ho, &g.wo);
    return g;
}

enco_status enco_conv2d_plan(enco_ctx *ctx, const enco_conv2d_shape *s, enco_conv2d_paths *out)
{
    memset(out, 0, sizeof *out);
    ENCO_TRY(enco_conv2d_check(s));
    const enco_kernel_policy *p = enco_ctx_kernel_policy(ctx);
    const conv_geom g = conv2d_geom(s);
    out->shape = *s;
    out->direct = s->cout <= direct_max(p);
    out->strip = use_strip(p, &g);
    out->implicit = implicit_mode(p) != 0;
    out->wgrad_direct = wgrad_direct(p, &g);
    out->bwd_flip = flip_rule(p, s, out->implicit);
    out->rows = p->conv_rows == ENCO_PATH_ON;
    out->splitk = p->conv_splitk;
    out->small_parts = small_parts(ctx, p->conv_splitk, geom_k(&g), g.ho);
    return ENCO_OK;
}

enco_status enco_conv2d_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x, size_t x_off,
                                cl_mem w, size_t w_off, cl_mem b, size_t b_off, cl_mem ws,
                                size_t ws_off, size_t ws_floats, const enco_conv2d_shape *s)
{
    enco_conv2d_paths paths;
    ENCO_TRY(enco_conv2d_plan(ctx, s, &paths));
    return enco_conv2d_forward_planned(ctx, y, y_off, x, x_off, w, w_off, b, b_off, ws, ws_off,
                                       ws_floats, s, &paths);
}

/* Paths from enco_conv2d_plan for s (the batch size aside: no choice
 * depends on it), checked as far as they can be: choices that are 0 or 1. */
static enco_status check_paths(const char *op, const enco_conv2d_shape *s,
                               const enco_conv2d_paths *p)
{
    if (!p)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: paths are NULL", op);
    ENCO_TRY(enco_conv2d_check(s));
    enco_conv2d_shape made = p->shape;
    made.n = s->n;
    if (memcmp(&made, s, sizeof made) != 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: paths planned for another shape (cin %d -> cout %d, %dx%d, kernel "
                         "%dx%d) than this one (cin %d -> cout %d, %dx%d, kernel %dx%d)",
                         op, p->shape.cin, p->shape.cout, p->shape.h, p->shape.w, p->shape.kh,
                         p->shape.kw, s->cin, s->cout, s->h, s->w, s->kh, s->kw);
    const int flags[] = {p->direct, p->strip, p->implicit, p->wgrad_direct, p->bwd_flip, p->rows};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (flags[i] != 0 && flags[i] != 1)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                             "%s: paths not made by enco_conv2d_plan (a choice is %d)", op,
                             flags[i]);
    if (p->small_parts < 1 || p->splitk < ENCO_POLICY_NEVER)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: paths not made by enco_conv2d_plan", op);
    return ENCO_OK;
}

enco_status enco_conv2d_forward_planned(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x,
                                        size_t x_off, cl_mem w, size_t w_off, cl_mem b,
                                        size_t b_off, cl_mem ws, size_t ws_off, size_t ws_floats,
                                        const enco_conv2d_shape *s,
                                        const enco_conv2d_paths *paths)
{
    const char *op = "conv2d_forward";
    ENCO_TRY(check_paths(op, s, paths));
    const conv_geom g = conv2d_geom(s);
    const size_t K = geom_k(&g), P = geom_p(&g), in_img = (size_t)s->cin * s->h * s->w,
                 out_img = (size_t)s->cout * P;
    ENCO_TRY(check_mem(y, y_off, (size_t)s->n * out_img, op, "y"));
    ENCO_TRY(check_mem(x, x_off, (size_t)s->n * in_img, op, "x"));
    ENCO_TRY(check_mem(w, w_off, (size_t)s->cout * K, op, "w"));
    if (b)
        ENCO_TRY(check_mem(b, b_off, (size_t)s->cout, op, "b"));
    conv_plan pl;
    ENCO_TRY(plan_workspace(op, &g, s->n, ws, ws_off, ws_floats, &pl));
    if (paths->direct)
        return run_fwd_small(ctx, y, y_off, x, x_off, w, w_off, b, b_off, s->n, s->cout, &g,
                             paths->strip);

    /* The implicit GEMM adds the bias as it stores y (no fill and re-read). */
    if (paths->implicit)
        return enco_sgemm_im2col(ctx, 0, (size_t)s->cout, 1.0f, w, w_off, K, 0, x, x_off, in_img,
                                 &g, 0.0f, y, y_off, P, out_img, (size_t)s->n, b, b_off);
    if (b)
        ENCO_TRY(run_fill_bias(ctx, y, y_off, b, b_off, s->n, s->cout, P));
    for (int n0 = 0; n0 < s->n; n0 += pl.chunk) {
        const int m = s->n - n0 < pl.chunk ? s->n - n0 : pl.chunk;
        for (int oh0 = 0; oh0 < g.ho; oh0 += pl.band) {
            const int rows = g.ho - oh0 < pl.band ? g.ho - oh0 : pl.band;
            const size_t pb = (size_t)rows * g.wo;
            ENCO_TRY(run_im2col(ctx, ws, ws_off, x, x_off + (size_t)n0 * in_img, m, &g, oh0, rows));
            ENCO_TRY(enco_sgemm_batched(ctx, 0, 0, s->cout, pb, K, 1.0f, w, w_off, K, 0, ws,
                                        ws_off, pb, K * pb, b ? 1.0f : 0.0f, y,
                                        y_off + (size_t)n0 * out_img + (size_t)oh0 * g.wo, P,
                                        out_img, (size_t)m));
        }
    }
    return ENCO_OK;
}

enco_status enco_conv2d_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dw,
                                 size_t dw_off, cl_mem db, size_t db_off, cl_mem dy,
                                 size_t dy_off, cl_mem x, size_t x_off, cl_mem w, size_t w_off,
                                 cl_mem ws, size_t ws_off, size_t ws_floats,
                                 const enco_conv2d_shape *s)
{
    enco_conv2d_paths paths;
    ENCO_TRY(enco_conv2d_plan(ctx, s, &paths));
    return enco_conv2d_backward_planned(ctx, dx, dx_off, dw, dw_off, db, db_off, dy, dy_off, x,
                                        x_off, w, w_off, ws, ws_off, ws_floats, s, &paths);
}

enco_status enco_conv2d_backward_planned(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dw,
                                         size_t dw_off, cl_mem db, size_t db_off, cl_mem dy,
                                         size_t dy_off, cl_mem x, size_t x_off, cl_mem w,
                                         size_t w_off, cl_mem ws, size_t ws_off, size_t ws_floats,
                                         const enco_conv2d_shape *s,
                                         const enco_conv2d_paths *paths)
{
    const char *op = "conv2d_backward";
    ENCO_TRY(check_paths(op, s, paths));
    const conv_geom g = conv2d_geom(s);
    const size_t K = geom_k(&g), P = geom_p(&g), in_img = (size_t)s->cin * s->h * s->w,
                 out_img = (size_t)s->cout * P;
    ENCO_TRY(check_mem(dy, dy_off, (size_t)s->n * out_img, op, "dy"));
    if (dx) {
        ENCO_TRY(check_mem(dx, dx_off, (size_t)s->n * in_img, op, "dx"));
        ENCO_TRY(check_mem(w, w_off, (size_t)s->cout * K, op, "w"));
    }
    if (dw) {
        ENCO_TRY(check_mem(dw, dw_off, (size_t)s->cout * K, op, "dw"));
        ENCO_TRY(check_mem(x, x_off, (size_t)s->n * in_img, op, "x"));
    }
    if (db)
        ENCO_TRY(check_mem(db, db_off, (size_t)s->cout, op, "db"));
    conv_plan pl = {s->n, g.ho};
    if (dx || dw)
        ENCO_TRY(plan_workspace(op, &g, s->n, ws, ws_off, ws_floats, &pl));
    if (dx) {
        int done;
        ENCO_TRY(conv2d_bwd_data_flip(ctx, dx, dx_off, dy, dy_off, w, w_off, ws, ws_off,
                                      ws_floats, s, paths, &done));
        if (done)
            dx = NULL;
    }
    if (paths->direct) {
        /* The direct weight gradient runs one work-item per weight (cin*kh*kw
         * of them): right for a CPU, far too few for a GPU, which splits the
         * output rows into parts as well. */
        if (dw) {
            const int parts = paths->small_parts;
            if (parts > 1)
                ENCO_TRY(run_bwd_weight_small_split(ctx, parts, dw, dw_off, dy, dy_off, x, x_off,
                                                    s->n, s->cout, &g));
            else
                ENCO_TRY(run_bwd_weight_small(ctx, dw, dw_off, dy, dy_off, x, x_off, s->n,
                                              s->cout, &g, paths->strip));
            dw = NULL;
        }
        if (dx)
            ENCO_TRY(run_bwd_data_small(ctx, dx, dx_off, dy, dy_off, w, w_off, s->n, s->cout,
                                        &g));
        dx = NULL;
    }

    /* Implicit im2col: dW += dY_n col_n^T image by image (a fixed order),
     * the transposed column matrix packed straight from x. The forced GPU
     * split-K (tests) keeps the explicit path. */
    if (dw && paths->implicit && splitk_parts(ctx, paths->splitk, (size_t)s->cout, K, P) <= 1) {
        for (int j = 0; j < s->n; j++)
            ENCO_TRY(paths->wgrad_direct
                         ? enco_conv_gemm_wgrad(ctx, (size_t)s->cout, 1.0f, dy,
                                                dy_off + (size_t)j * out_img, P, x,
                                                x_off + (size_t)j * in_img, &g, 1.0f, dw, dw_off,
                                                K)
                         : enco_sgemm_im2col(ctx, 1, (size_t)s->cout, 1.0f, dy,
                                       dy_off + (size_t)j * out_img, P, 0, x,
                                       x_off + (size_t)j * in_img, 0, &g, 1.0f, dw, dw_off, K, 0,
                                       1, NULL, 0));
        dw = NULL;
    }
    for (int n0 = 0; (dx || dw) && n0 < s->n; n0 += pl.chunk) {
        const int m = s->n - n0 < pl.chunk ? s->n - n0 : pl.chunk;
        for (int oh0 = 0; oh0 < g.ho; oh0 += pl.band) {
            const int rows = g.ho - oh0 < pl.band ? g.ho - oh0 : pl.band;
            const size_t pb = (size_t)rows * g.wo;
            const size_t dy_band = dy_off + (size_t)n0 * out_img + (size_t)oh0 * g.wo;
            if (dw) {
                ENCO_TRY(run_im2col_t(ctx, ws, ws_off, x, x_off + (size_t)n0 * in_img, m, &g,
                                      oh0, rows));
                /* Images in order: a fixed summation order over the batch.
                 * dW (cout x K) += dY_n[:, band] (cout x pb) colT_n (pb x K). */
                const int parts = splitk_parts(ctx, paths->splitk, (size_t)s->cout, K, pb);
                for (int j = 0; j < m; j++) {
                    if (parts > 1)
                        ENCO_TRY(gemm_splitk(ctx, parts, (size_t)s->cout, K, pb, dy,
                                             dy_band + (size_t)j * out_img, P, ws,
                                             ws_off + (size_t)j * K * pb, dw, dw_off));
                    else
                        ENCO_TRY(enco_sgemm(ctx, 0, 0, s->cout, K, pb, 1.0f, dy,
                                            dy_band + (size_t)j * out_img, P, ws,
                                            ws_off + (size_t)j * K * pb, K, 1.0f, dw, dw_off,
                                            K));
                }
            }
            if (dx) {
                ENCO_TRY(enco_sgemm_batched(ctx, 1, 0, K, pb, s->cout, 1.0f, w, w_off, K, 0, dy,
                                            dy_band, P, out_img, 0.0f, ws, ws_off, pb, K * pb,
                                            (size_t)m));
                ENCO_TRY(run_col2im(ctx, dx, dx_off + (size_t)n0 * in_img, ws, ws_off, NULL, 0,
                                    m, &g, oh0, rows, oh0 > 0, paths->rows));
            }
        }
    }
    if (db)
        ENCO_TRY(run_bias_grad(ctx, db, db_off, dy, dy_off, s->n, s->cout, P, paths->rows));
    return ENCO_OK;
}

void enco_conv2d_forward_ref(double *y, const double *x, const double *w, const double *b,
                             const enco_conv2d_shape *s)
{
    int ho, wo;
    enco_conv2d_out_size(s, &ho, &wo);
    for (int n = 0; n < s->n; n++)
        for (int co = 0; co < s->cout; co++)
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++) {
                    double acc = b ? b[co] : 0.0;
                    for (int ci = 0; ci < s->cin; ci++)
                        for (int ki = 0; ki < s->kh; ki++) {
                            int ih = enco_pad_index(oh * s->stride_h - s->pad_h + ki, s->h,
                                                    s->pad_mode);
                            if (ih < 0)
                                continue;
                            for (int kj = 0; kj < s->kw; kj++) {
                                int iw = enco_pad_index(ow * s->stride_w - s->pad_w + kj, s->w,
                                                        s->pad_mode);
                                if (iw < 0)
                                    continue;
                                acc += w[((size_t)(co * s->cin + ci) * s->kh + ki) * s->kw + kj] *
                                       x[(((size_t)n * s->cin + ci) * s->h + ih) * s->w + iw];
                            }
                        }
                    y[(((size_t)n * s->cout + co) * ho + oh) * wo + ow] = acc;
                }
}

void enco_conv2d_backward_ref(double *dx, double *dw, double *db, const double *dy,
                              const double *x, const double *w, const enco_conv2d_shape *s)
{
    int ho, wo;
    enco_conv2d_out_size(s, &ho, &wo);
    if (dx)
        memset(dx, 0, sizeof(double) * (size_t)s->n * s->cin * s->h * s->w);
    for (int n = 0; n < s->n; n++)
        for (int co = 0; co < s->cout; co++)
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++) {
                    const double g = dy[(((size_t)n * s->cout + co) * ho + oh) * wo + ow];
                    if (db)
                        db[co] += g;
                    for (int ci = 0; ci < s->cin; ci++)
                        for (int ki = 0; ki < s->kh; ki++) {
                            int ih = enco_pad_index(oh * s->stride_h - s->pad_h + ki, s->h,
                                                    s->pad_mode);
                            if (ih < 0)
                                continue;
                            for (int kj = 0; kj < s->kw; kj++) {
                                int iw = enco_pad_index(ow * s->stride_w - s->pad_w + kj, s->w,
                                                        s->pad_mode);
                                if (iw < 0)
                                    continue;
                                size_t wi = ((size_t)(co * s->cin + ci) * s->kh + ki) * s->kw + kj;
                                size_t xi = (((size_t)n * s->cin + ci) * s->h + ih) * s->w + iw;
                                if (dx)
                                    dx[xi] += w[wi] * g;
                                if (dw)
                                    dw[wi] += x[xi] * g;
                            }
                        }
                }
}

enco_op_cost enco_conv2d_cost(const enco_conv2d_shape *s, int backward)
{
    int ho, wo;
    enco_conv2d_out_size(s, &ho, &wo);
    const double macs = (double)s->n * s->cout * ho * wo * s->cin * s->kh * s->kw;
    const double xs = (double)s->n * s->cin * s->h * s->w, ys = (double)s->n * s->cout * ho * wo,
                 ws = (double)s->cout * s->cin * s->kh * s->kw, bs = s->cout;
    enco_op_cost c;
    if (!backward) {
        c.flops = 2 * macs + ys;                 /* products, sums, bias */
        c.bytes = 4 * (xs + ws + bs + ys);
    } else {
        c.flops = 4 * macs + ys;                 /* dx, dw, db */
        c.bytes = 4 * (ys + xs + ws + xs + 2 * ws + 2 * bs); /* read dy x w, write dx, rmw dw db */
    }
    return c;
}

/* ---- ConvTranspose2d ---------------------------------------------------- */

void enco_conv_transpose2d_out_size(const enco_conv_transpose2d_shape *s, int *ho, int *wo)
{
    *ho = (s->h - 1) * s->stride_h - 2 * s->pad_h + s->kh + s->out_pad_h;
    *wo = (s->w - 1) * s->stride_w - 2 * s->pad_w + s->kw + s->out_pad_w;
}

enco_status enco_conv_transpose2d_check(const enco_conv_transpose2d_shape *s)
{
    const char *op = "conv_transpose2d";
    if (!s)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: shape is NULL", op);
    ENCO_TRY(check_geometry(op, s->n, s->cin, s->h, s->w, s->cout, s->kh, s->kw, s->stride_h,
                            s->stride_w, s->pad_h, s->pad_w));
    if (s->out_pad_h < 0 || s->out_pad_w < 0 || s->out_pad_h >= s->stride_h ||
        s->out_pad_w >= s->stride_w)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: output_padding %dx%d must be >= 0 and < stride %dx%d", op,
                         s->out_pad_h, s->out_pad_w, s->stride_h, s->stride_w);
    if (s->h > INT_MAX / 4 || s->w > INT_MAX / 4 || s->stride_h > INT_MAX / 4 / s->h ||
        s->stride_w > INT_MAX / 4 / s->w || s->kh > INT_MAX / 4 || s->kw > INT_MAX / 4)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: size too large", op);
    int ho, wo;
    enco_conv_transpose2d_out_size(s, &ho, &wo);
    if (ho < 1 || wo < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: empty output %dx%d (padding %dx%d too large)",
                         op, ho, wo, s->pad_h, s->pad_w);
    ENCO_TRY(check_int_range((size_t)s->cout * s->kh * s->kw, op, "cout*kh*kw"));
    ENCO_TRY(check_int_range((size_t)s->h * s->w, op, "input plane"));
    ENCO_TRY(check_int_range((size_t)s->cin * s->h * s->w, op, "input image"));
    ENCO_TRY(check_int_range((size_t)s->cout * ho * wo, op, "output image"));
    return ENCO_OK;
}

size_t enco_conv_transpose2d_workspace_floats(const enco_conv_transpose2d_shape *s, int images)
{
    return (size_t)(images < 1 ? 1 : images) * s->cout * s->kh * s->kw * (size_t)s->h * s->w;
}

/* The Conv2d whose adjoint this is: it maps (cout, ho, wo) to (cin, h, w). */
static conv_geom convt_geom(const enco_conv_transpose2d_shape *s)
{
    conv_geom g = {.c = s->cout, .ho = s->h, .wo = s->w, .kh = s->kh, .kw = s->kw,
                   .sh = s->stride_h, .sw = s->stride_w, .pt = s->pad_h, .pl = s->pad_w,
                   .mode = ENCO_PAD_ZERO};
    enco_conv_transpose2d_out_size(s, &g.h, &g.w);
    return g;
}

enco_status enco_conv_transpose2d_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x,
                                          size_t x_off, cl_mem w, size_t w_off, cl_mem b,
                                          size_t b_off, cl_mem ws, size_t ws_off,
                                          size_t ws_floats, const enco_conv_transpose2d_shape *s)
{
    const char *op = "conv_transpose2d_forward";
    ENCO_TRY(enco_conv_transpose2d_check(s));
    const conv_geom g = convt_geom(s);
    const size_t K = geom_k(&g), P = geom_p(&g), in_img = (size_t)s->cin * P,
                 out_img = (size_t)s->cout * g.h * g.w;
    ENCO_TRY(check_mem(y, y_off, (size_t)s->n * out_img, op, "y"));
    ENCO_TRY(check_mem(x, x_off, (size_t)s->n * in_img, op, "x"));
    ENCO_TRY(check_mem(w, w_off, (size_t)s->cin * K, op, "w"));
    if (b)
        ENCO_TRY(check_mem(b, b_off, (size_t)s->cout, op, "b"));
    conv_plan pl;
    ENCO_TRY(plan_workspace(op, &g, s->n, ws, ws_off, ws_floats, &pl));
    for (int n0 = 0; n0 < s->n; n0 += pl.chunk) {
        const int m = s->n - n0 < pl.chunk ? s->n - n0 : pl.chunk;
        for (int oh0 = 0; oh0 < g.ho; oh0 += pl.band) {
            const int rows = g.ho - oh0 < pl.band ? g.ho - oh0 : pl.band;
            const size_t pb = (size_t)rows * g.wo;
            /* col_n (K x pb) = W^T (K x cin) x_n[:, band] (cin x pb) */
            ENCO_TRY(enco_sgemm_batched(ctx, 1, 0, K, pb, s->cin, 1.0f, w, w_off, K, 0, x,
                                        x_off + (size_t)n0 * in_img + (size_t)oh0 * g.wo, P,
                                        in_img, 0.0f, ws, ws_off, pb, K * pb, (size_t)m));
            ENCO_TRY(run_col2im(ctx, y, y_off + (size_t)n0 * out_img, ws, ws_off, b, b_off, m, &g,
                                oh0, rows, oh0 > 0, cpu_rows(ctx)));
        }
    }
    return ENCO_OK;
}

enco_status enco_conv_transpose2d_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dw,
                                           size_t dw_off, cl_mem db, size_t db_off, cl_mem dy,
                                           size_t dy_off, cl_mem x, size_t x_off, cl_mem w,
                                           size_t w_off, cl_mem ws, size_t ws_off,
                                           size_t ws_floats, const enco_conv_transpose2d_shape *s)
{
    const char *op = "conv_transpose2d_backward";
    ENCO_TRY(enco_conv_transpose2d_check(s));
    const conv_geom g = convt_geom(s);
    const size_t K = geom_k(&g), P = geom_p(&g), in_img = (size_t)s->cin * P,
                 out_img = (size_t)s->cout * g.h * g.w;
    ENCO_TRY(check_mem(dy, dy_off, (size_t)s->n * out_img, op, "dy"));
    if (dx) {
        ENCO_TRY(check_mem(dx, dx_off, (size_t)s->n * in_img, op, "dx"));
        ENCO_TRY(check_mem(w, w_off, (size_t)s->cin * K, op, "w"));
    }
    if (dw) {
        ENCO_TRY(check_mem(dw, dw_off, (size_t)s->cin * K, op, "dw"));
        ENCO_TRY(check_mem(x, x_off, (size_t)s->n * in_img, op, "x"));
    }
    if (db)
        ENCO_TRY(check_mem(db, db_off, (size_t)s->cout, op, "db"));
    conv_plan pl = {s->n, g.ho};
    if (dx || dw)
        ENCO_TRY(plan_workspace(op, &g, s->n, ws, ws_off, ws_floats, &pl));
    for (int n0 = 0; (dx || dw) && n0 < s->n; n0 += pl.chunk) {
        const int m = s->n - n0 < pl.chunk ? s->n - n0 : pl.chunk;
        for (int oh0 = 0; oh0 < g.ho; oh0 += pl.band) {
            const int rows = g.ho - oh0 < pl.band ? g.ho - oh0 : pl.band;
            const size_t pb = (size_t)rows * g.wo;
            const size_t x_band = (size_t)n0 * in_img + (size_t)oh0 * g.wo;
            if (dx) {
                /* col_n = im2col(dy_n): the conv whose adjoint the forward is. */
                ENCO_TRY(run_im2col(ctx, ws, ws_off, dy, dy_off + (size_t)n0 * out_img, m, &g,
                                    oh0, rows));
                ENCO_TRY(enco_sgemm_batched(ctx, 0, 0, s->cin, pb, K, 1.0f, w, w_off, K, 0, ws,
                                            ws_off, pb, K * pb, 0.0f, dx, dx_off + x_band, P,
                                            in_img, (size_t)m));
            }
            if (dw) {
                /* dW (cin x K) += x_n[:, band] (cin x pb) colT_n (pb x K) */
                ENCO_TRY(run_im2col_t(ctx, ws, ws_off, dy, dy_off + (size_t)n0 * out_img, m, &g,
                                      oh0, rows));
                for (int j = 0; j < m; j++)
                    ENCO_TRY(enco_sgemm(ctx, 0, 0, s->cin, K, pb, 1.0f, x,
                                        x_off + x_band + (size_t)j * in_img, P, ws,
                                        ws_off + (size_t)j * K * pb, K, 1.0f, dw, dw_off, K));
            }
        }
    }
    if (db)
        ENCO_TRY(run_bias_grad(ctx, db, db_off, dy, dy_off, s->n, s->cout, (size_t)g.h * g.w,
                               cpu_rows(ctx)));
    return ENCO_OK;
}

/* PyTorch's definition: input (ih, iw) scatters w[ci, co] into output
 * (ih*s - p + ki, iw*s - p + kj) where that lies inside the output. */
void enco_conv_transpose2d_forward_ref(double *y, const double *x, const double *w,
                                       const double *b, const enco_conv_transpose2d_shape *s)
{
    int ho, wo;
    enco_conv_transpose2d_out_size(s, &ho, &wo);
    for (int n = 0; n < s->n; n++)
        for (int co = 0; co < s->cout; co++)
            for (int i = 0; i < ho * wo; i++)
                y[((size_t)n * s->cout + co) * ho * wo + i] = b ? b[co] : 0.0;
    for (int n = 0; n < s->n; n++)
        for (int ci = 0; ci < s->cin; ci++)
            for (int ih = 0; ih < s->h; ih++)
                for (int iw = 0; iw < s->w; iw++) {
                    const double v = x[(((size_t)n * s->cin + ci) * s->h + ih) * s->w + iw];
                    for (int co = 0; co < s->cout; co++)
                        for (int ki = 0; ki < s->kh; ki++) {
                            int oh = ih * s->stride_h - s->pad_h + ki;
                            if (oh < 0 || oh >= ho)
                                continue;
                            for (int kj = 0; kj < s->kw; kj++) {
                                int ow = iw * s->stride_w - s->pad_w + kj;
                                if (ow < 0 || ow >= wo)
                                    continue;
                                y[(((size_t)n * s->cout + co) * ho + oh) * wo + ow] +=
                                    v * w[((size_t)(ci * s->cout + co) * s->kh + ki) * s->kw + kj];
                            }
                        }
                }
}

void enco_conv_transpose2d_backward_ref(double *dx, double *dw, double *db, const double *dy,
                                        const double *x, const double *w,
                                        const enco_conv_transpose2d_shape *s)
{
    int ho, wo;
    enco_conv_transpose2d_out_size(s, &ho, &wo);
    if (db)
        for (int n = 0; n < s->n; n++)
            for (int co = 0; co < s->cout; co++)
                for (int i = 0; i < ho * wo; i++)
                    db[co] += dy[((size_t)n * s->cout + co) * ho * wo + i];
    for (int n = 0; n < s->n; n++)
        for (int ci = 0; ci < s->cin; ci++)
            for (int ih = 0; ih < s->h; ih++)
                for (int iw = 0; iw < s->w; iw++) {
                    const size_t xi = (((size_t)n * s->cin + ci) * s->h + ih) * s->w + iw;
                    double acc = 0;
                    for (int co = 0; co < s->cout; co++)
                        for (int ki = 0; ki < s->kh; ki++) {
                            int oh = ih * s->stride_h - s->pad_h + ki;
                            if (oh < 0 || oh >= ho)
                                continue;
                            for (int kj = 0; kj < s->kw; kj++) {
                                int ow = iw * s->stride_w - s->pad_w + kj;
                                if (ow < 0 || ow >= wo)
                                    continue;
                                size_t wi = ((size_t)(ci * s->cout + co) * s->kh + ki) * s->kw + kj;
                                double g = dy[(((size_t)n * s->cout + co) * ho + oh) * wo + ow];
                                acc += w[wi] * g;
                                if (dw)
                                    dw[wi] += x[xi] * g;
                            }
                        }
                    if (dx)
                        dx[xi] = acc;
                }
}

enco_op_cost enco_conv_transpose2d_cost(const enco_conv_transpose2d_shape *s, int backward)
{
    int ho, wo;
    enco_conv_transpose2d_out_size(s, &ho, &wo);
    const double macs = (double)s->n * s->cin * s->h * s->w * s->cout * s->kh * s->kw;
    const double xs = (double)s->n * s->cin * s->h * s->w, ys = (double)s->n * s->cout * ho * wo,
                 ws = (double)s->cin * s->cout * s->kh * s->kw, bs = s->cout;
    enco_op_cost c;
    if (!backward) {
        c.flops = 2 * macs + ys;
        c.bytes = 4 * (xs + ws + bs + ys);
    } else {
        c.flops = 4 * macs + ys;
        c.bytes = 4 * (ys + xs + ws + xs + 2 * ws + 2 * bs);
    }
    return c;
}

/* ---- Pad2d -------------------------------------------------------------- */

void enco_pad2d_out_size(const enco_pad2d_shape *s, int *ho, int *wo)
{
    *ho = s->h + s->top + s->bottom;
    *wo = s->w + s->left + s->right;
}

enco_status enco_pad2d_check(const enco_pad2d_shape *s)
{
    const char *op = "pad2d";
    if (!s)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: shape is NULL", op);
    if (s->n < 1 || s->c < 1 || s->h < 1 || s->w < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: empty tensor (n %d, c %d, h %d, w %d)", op,
                         s->n, s->c, s->h, s->w);
    if (s->top < 0 || s->bottom < 0 || s->left < 0 || s->right < 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: negative padding (top %d, bottom %d, left %d, right %d)", op, s->top,
                         s->bottom, s->left, s->right);
    ENCO_TRY(check_mode(s->mode, op));
    if (s->mode == ENCO_PAD_REFLECT &&
        (s->top >= s->h || s->bottom >= s->h || s->left >= s->w || s->right >= s->w))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: reflect padding (top %d, bottom %d, left %d, right %d) needs pad < "
                         "size (input %dx%d)",
                         op, s->top, s->bottom, s->left, s->right, s->h, s->w);
    if (s->h > INT_MAX / 4 || s->w > INT_MAX / 4 || s->top > INT_MAX / 4 ||
        s->bottom > INT_MAX / 4 || s->left > INT_MAX / 4 || s->right > INT_MAX / 4)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: size too large", op);
    int ho, wo;
    enco_pad2d_out_size(s, &ho, &wo);
    ENCO_TRY(check_int_range((size_t)s->c * ho * wo, op, "output image"));
    return ENCO_OK;
}

static conv_geom pad2d_geom(const enco_pad2d_shape *s)
{
    conv_geom g = {.c = s->c, .h = s->h, .w = s->w, .kh = 1, .kw = 1, .sh = 1, .sw = 1,
                   .pt = s->top, .pl = s->left, .mode = s->mode};
    enco_pad2d_out_size(s, &g.ho, &g.wo);
    return g;
}

enco_status enco_pad2d_forward(enco_ctx *ctx, cl_mem y, size_t y_off, cl_mem x, size_t x_off,
                               const enco_pad2d_shape *s)
{
    const char *op = "pad2d_forward";
    ENCO_TRY(enco_pad2d_check(s));
    const conv_geom g = pad2d_geom(s);
    ENCO_TRY(check_mem(y, y_off, (size_t)s->n * s->c * geom_p(&g), op, "y"));
    ENCO_TRY(check_mem(x, x_off, (size_t)s->n * s->c * s->h * s->w, op, "x"));
    /* With a 1x1 kernel the column matrices of all images are exactly y. */
    return run_im2col(ctx, y, y_off, x, x_off, s->n, &g, 0, g.ho);
}

enco_status enco_pad2d_backward(enco_ctx *ctx, cl_mem dx, size_t dx_off, cl_mem dy,
                                size_t dy_off, const enco_pad2d_shape *s)
{
    const char *op = "pad2d_backward";
    ENCO_TRY(enco_pad2d_check(s));
    const conv_geom g = pad2d_geom(s);
    ENCO_TRY(check_mem(dx, dx_off, (size_t)s->n * s->c * s->h * s->w, op, "dx"));
    ENCO_TRY(check_mem(dy, dy_off, (size_t)s->n * s->c * geom_p(&g), op, "dy"));
    return run_col2im(ctx, dx, dx_off, dy, dy_off, NULL, 0, s->n, &g, 0, g.ho, 0, cpu_rows(ctx));
}

void enco_pad2d_forward_ref(double *y, const double *x, const enco_pad2d_shape *s)
{
    int ho, wo;
    enco_pad2d_out_size(s, &ho, &wo);
    for (int nc = 0; nc < s->n * s->c; nc++)
        for (int oh = 0; oh < ho; oh++)
            for (int ow = 0; ow < wo; ow++) {
                int ih = enco_pad_index(oh - s->top, s->h, s->mode);
                int iw = enco_pad_index(ow - s->left, s->w, s->mode);
                y[((size_t)nc * ho + oh) * wo + ow] =
                    ih < 0 || iw < 0 ? 0.0 : x[((size_t)nc * s->h + ih) * s->w + iw];
            }
}

void enco_pad2d_backward_ref(double *dx, const double *dy, const enco_pad2d_shape *s)
{
    int ho, wo;
    enco_pad2d_out_size(s, &ho, &wo);
    memset(dx, 0, sizeof(double) * (size_t)s->n * s->c * s->h * s->w);
    for (int nc = 0; nc < s->n * s->c; nc++)
        for (int oh = 0; oh < ho; oh++)
            for (int ow = 0; ow < wo; ow++) {
                int ih = enco_pad_index(oh - s->top, s->h, s->mode);
                int iw = enco_pad_index(ow - s->left, s->w, s->mode);
                if (ih >= 0 && iw >= 0)
                    dx[((size_t)nc * s->h + ih) * s->w + iw] += dy[((size_t)nc * ho + oh) * wo + ow];
            }
}

enco_op_cost enco_pad2d_cost(const enco_pad2d_shape *s, int backward)
{
    int ho, wo;
    enco_pad2d_out_size(s, &ho, &wo);
    const double xs = (double)s->n * s->c * s->h * s->w, ys = (double)s->n * s->c * ho * wo;
    enco_op_cost c;
    c.flops = backward ? ys - xs : 0; /* the extra reads folded in by the gather */
    if (c.flops < 0)
        c.flops = 0;
    c.bytes = 4 * (xs + ys);
    return c;
}
