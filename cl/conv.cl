/* Convolution family: im2col with fused padding, its adjoint col2im as a
 * deterministic gather, bias fill and bias-gradient reduction.
 *
 * Geometry shared by conv_im2col and conv_col2im (per image):
 *   source x: (C, H, W); window positions Ho x Wo, of which a band of rows
 *   [oh0, oh0 + rows) is handled per launch (the whole Ho when the workspace
 *   allows); column matrix col: (C*kh*kw, rows*Wo), row index
 *   (c*kh + ki)*kw + kj, column index (oh - oh0)*Wo + ow. Entry = x at the
 *   padded coordinate (oh*sh - pt + ki, ow*sw - pl + kj), mapped through
 *   enco_pad_index (zero outside for ENCO_PAD_ZERO).
 * A standalone padding layer is the case kh = kw = 1, sh = sw = 1. */

/* ---- im2col ------------------------------------------------------------ */

/* Columns of the band of output rows [oh0, oh0 + rows): per image the
 * column matrix is (C*kh*kw, rows*Wo). One work-item per (output row, column
 * row k, image) writes the Wo contiguous entries of that row, copying the
 * interior run straight and mapping only the border entries through
 * enco_pad_index. Global size (rows, C*kh*kw, nimg); 32-bit index math inside
 * an image (the host checks the sizes). */
__kernel void conv_im2col(__global const float *x, ulong x_off, __global float *col,
                          ulong col_off, int C, int H, int W, int Wo, int kh, int kw, int sh,
                          int sw, int pt, int pl, int mode, int oh0, int rows)
{
    const int r = (int)get_global_id(0);
    const int k = (int)get_global_id(1);
    const size_t n = get_global_id(2);
    if (r >= rows)
        return;
    const int P = rows * Wo;
    /* Quotient and remainder as q, x - q*y: Oclgrind cannot check the
     * `freeze` that LLVM emits for a div/rem pair on the same operands. */
    const int kq = k / kw;
    const int kj = k - kq * kw;
    const int c = kq / kh;
    const int ki = kq - c * kh;
    const int ih = enco_pad_index((oh0 + r) * sh - pt + ki, H, mode);
    __global float *dst = col + col_off + (n * get_global_size(1) + k) * (size_t)P + r * Wo;
    if (ih < 0) {
        for (int ow = 0; ow < Wo; ow++)
            dst[ow] = 0.0f;
        return;
    }
    __global const float *src = x + x_off + ENCO_IDX4(n, c, ih, 0, C, H, W);
    /* Interior: 0 <= ow*sw - pl + kj <= W - 1. */
    const int lo_num = pl - kj;
    int lo = lo_num <= 0 ? 0 : (lo_num + sw - 1) / sw;
    const int hi_num = W - 1 + pl - kj;
    int hi = hi_num < 0 ? -1 : hi_num / sw;
    if (hi > Wo - 1)
        hi = Wo - 1;
    if (lo > hi + 1)
        lo = hi + 1;
    for (int ow = 0; ow < lo; ow++) {
        const int iw = enco_pad_index(ow * sw - pl + kj, W, mode);
        dst[ow] = iw < 0 ? 0.0f : src[iw];
    }
    for (int ow = lo; ow <= hi; ow++)
        dst[ow] = src[ow * sw - pl + kj];
    for (int ow = hi + 1 > lo ? hi + 1 : lo; ow < Wo; ow++) {
        const int iw = enco_pad_index(ow * sw - pl + kj, W, mode);
        dst[ow] = iw < 0 ? 0.0f : src[iw];
    }
}

/* As conv_im2col, but writes the transposed column matrix: per image
 * (rows*Wo, K), entry [p, k] at p*K + k, so that the weight gradient is a
 * GEMM whose second operand is not transposed (dW += dY colT). One
 * work-item per (output row, c*kh + ki, image) writes, for each ow, the kw
 * contiguous entries of kj. Global size (rows, C*kh, nimg). */
__kernel void conv_im2col_t(__global const float *x, ulong x_off, __global float *col,
                            ulong col_off, int C, int H, int W, int Wo, int kh, int kw, int sh,
                            int sw, int pt, int pl, int mode, int oh0, int rows)
{
    const int r = (int)get_global_id(0);
    const int kq = (int)get_global_id(1);
    const size_t n = get_global_id(2);
    if (r >= rows)
        return;
    const int K = C * kh * kw;
    const int c = kq / kh;
    const int ki = kq - c * kh;
    const int ih = enco_pad_index((oh0 + r) * sh - pt + ki, H, mode);
    __global float *dst =
        col + col_off + (n * (size_t)rows * Wo + (size_t)r * Wo) * K + (size_t)kq * kw;
    __global const float *src = x + x_off + ENCO_IDX4(n, c, ih < 0 ? 0 : ih, 0, C, H, W);
    for (int ow = 0; ow < Wo; ow++) {
        __global float *d = dst + (size_t)ow * K;
        const int iw0 = ow * sw - pl;
        if (ih < 0) {
            for (int kj = 0; kj < kw; kj++)
                d[kj] = 0.0f;
        } else if (iw0 >= 0 && iw0 + kw <= W) {
            for (int kj = 0; kj < kw; kj++)
                d[kj] = src[iw0 + kj];
        } else {
            for (int kj = 0; kj < kw; kj++) {
                const int iw = enco_pad_index(iw0 + kj, W, mode);
                d[kj] = iw < 0 ? 0.0f : src[iw];
            }
        }
    }
}

/* ---- col2im (gather) ----------------------------------------------------- */

/* The padded coordinates t whose source (enco_pad_index) is i, as three runs
 * [a[r], b[r]] in the fixed order: i itself, then the low padding side, then
 * the high padding side. lo/hi bound the padded coordinates that are read. */
static inline void conv_source_runs(int i, int n, int lo, int hi, int mode, int *a, int *b)
{
    a[0] = i;
    b[0] = i;
    a[1] = 0;
    b[1] = -1; /* empty */
    a[2] = 0;
    b[2] = -1;
    if (mode == ENCO_PAD_REFLECT) {
        if (i >= 1 && -i >= lo) {
            a[1] = -i;
            b[1] = -i;
        }
        if (i <= n - 2 && 2 * (n - 1) - i <= hi) {
            a[2] = 2 * (n - 1) - i;
            b[2] = 2 * (n - 1) - i;
        }
    } else if (mode == ENCO_PAD_REPLICATE) {
        if (i == 0) {
            a[1] = lo;
            b[1] = -1;
        }
        if (i == n - 1) {
            a[2] = n;
            b[2] = hi;
        }
    }
}

/* One work-item per source element in rows [ih0, ih0 + hrows) of each image:
 * the sum of every column entry of the band of output rows [oh0, oh0 + rows)
 * that reads it (through padding too), in a fixed order. The column matrix
 * per image is (C*kh*kw, rows*Wo). The sum starts from x itself when
 * accumulate is set, else from bias[c] (has_bias) or 0. Global size
 * (hrows*W rounded up: guarded, C, nimg). */
__kernel void conv_col2im(__global const float *col, ulong col_off, __global float *x,
                          ulong x_off, __global const float *bias, ulong bias_off, int has_bias,
                          int accumulate, int C, int H, int W, int Ho, int Wo, int kh, int kw,
                          int sh, int sw, int pt, int pl, int mode, int oh0, int rows, int ih0,
                          int hrows)
{
    const int q = (int)get_global_id(0);
    const int c = (int)get_global_id(1);
    const size_t n = get_global_id(2);
    if (q >= hrows * W)
        return;
    const int r = q / W;
    const int iw = q - r * W;
    const int ih = ih0 + r;
    const size_t P = (size_t)rows * Wo;
    __global const float *cn = col + col_off + n * (size_t)C * kh * kw * P;
    const size_t xi = x_off + ENCO_IDX4(n, c, ih, iw, C, H, W);

    int ha[3], hb[3], wa[3], wb[3];
    conv_source_runs(ih, H, -pt, (Ho - 1) * sh - pt + kh - 1, mode, ha, hb);
    conv_source_runs(iw, W, -pl, (Wo - 1) * sw - pl + kw - 1, mode, wa, wb);

    float acc = accumulate ? x[xi] : has_bias ? bias[bias_off + c] : 0.0f;
    for (int rh = 0; rh < 3; rh++)
        for (int th = ha[rh]; th <= hb[rh]; th++)
            for (int ki = 0; ki < kh; ki++) {
                const int nh = th + pt - ki;
                if (nh < oh0 * sh)
                    break; /* nh only decreases with ki */
                const int oh = nh / sh;
                if (oh * sh != nh || oh >= oh0 + rows)
                    continue;
                __global const float *crow = cn + (size_t)((c * kh + ki) * kw) * P +
                                             (size_t)(oh - oh0) * Wo;
                for (int rw = 0; rw < 3; rw++)
                    for (int tw = wa[rw]; tw <= wb[rw]; tw++)
                        for (int kj = 0; kj < kw; kj++) {
                            const int nw = tw + pl - kj;
                            if (nw < 0)
                                break;
                            const int ow = nw / sw;
                            if (ow * sw != nw || ow >= Wo)
                                continue;
                            acc += crow[(size_t)kj * P + ow];
                        }
            }
    x[xi] = acc;
}

/* col2im of a 1x1, stride-1 geometry over the whole plane (the fold of
 * Pad2d's backward and of the flipped-weight input gradient) for CPUs: one
 * work-item per plane (c, image) of x, no divisions, no per-work-item
 * arrays for PoCL to spill. Every element sums the same terms in the same
 * order as conv_col2im (from 0: the padded rows whose source is ih, in
 * conv_source_runs order, each over the padded columns whose source is iw,
 * in that order), so both give the same bits. col per image is (C, Hp, Wp);
 * global size (C, nimg). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void conv_fold_rows(
    __global const float *col, ulong col_off, __global float *x, ulong x_off, int C, int H, int W,
    int Hp, int Wp, int pt, int pl, int mode)
{
    const int c = (int)get_global_id(0);
    const size_t n = get_global_id(1);
    if (c >= C)
        return;
    __global const float *cp = col + col_off + (n * C + c) * (size_t)Hp * Wp;
    __global float *xp = x + x_off + ENCO_IDX4(n, c, 0, 0, C, H, W);
    /* The longest run [jlo, jhi] of columns whose only source column is
     * themselves (with reflection, columns 0 and W-1 are such columns too, but
     * apart from the interior). */
    int jlo = 0, jhi = -1, start = -1;
    for (int iw = 0; iw <= W; iw++) {
        int trivial = 0;
        if (iw < W) {
            int wa[3], wb[3];
            conv_source_runs(iw, W, -pl, Wp - 1 - pl, mode, wa, wb);
            trivial = wa[1] > wb[1] && wa[2] > wb[2];
        }
        if (trivial && start < 0)
            start = iw;
        if (!trivial && start >= 0) {
            if (iw - 1 - start > jhi - jlo) {
                jlo = start;
                jhi = iw - 1;
            }
            start = -1;
        }
    }
    for (int ih = 0; ih < H; ih++) {
        int ha[3], hb[3];
        conv_source_runs(ih, H, -pt, Hp - 1 - pt, mode, ha, hb);
        __global float *xr = xp + (size_t)ih * W;
        for (int iw = 0; iw < W; iw++) {
            if (iw == jlo && jhi >= jlo) {
                /* Interior columns: one term per source row. */
                for (int j = jlo; j <= jhi; j++)
                    xr[j] = 0.0f;
                for (int rh = 0; rh < 3; rh++)
                    for (int th = ha[rh]; th <= hb[rh]; th++) {
                        __global const float *row = cp + (size_t)(th + pt) * Wp + pl;
                        for (int j = jlo; j <= jhi; j++)
                            xr[j] += row[j];
                    }
                iw = jhi;
                continue;
            }
            int wa[3], wb[3];
            conv_source_runs(iw, W, -pl, Wp - 1 - pl, mode, wa, wb);
            float acc = 0.0f;
            for (int rh = 0; rh < 3; rh++)
                for (int th = ha[rh]; th <= hb[rh]; th++) {
                    __global const float *row = cp + (size_t)(th + pt) * Wp + pl;
                    for (int rw = 0; rw < 3; rw++)
                        for (int tw = wa[rw]; tw <= wb[rw]; tw++)
                            acc += row[tw];
                }
            xr[iw] = acc;
        }
    }
}

/* conv_bias_grad's result for CPUs: one work-item per channel keeps the ls
 * lane sums of that kernel's work-group in a private array (lane l sums the
 * elements p = l (mod ls) of every image, in order) and reduces them in the
 * same tree, so both give the same bits. ls is the work-group size the GPU
 * kernel would use (a power of two, at most 256). Global size (C). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void conv_bias_grad_rows(
    __global const float *dy, ulong dy_off, __global float *db, ulong db_off, int N, int C, int P,
    int ls)
{
    const int c = (int)get_global_id(0);
    if (c >= C)
        return;
    float acc[256];
    for (int l = 0; l < ls; l++)
        acc[l] = 0.0f;
    for (int n = 0; n < N; n++) {
        __global const float *plane = dy + dy_off + ((size_t)n * C + c) * (size_t)P;
        int p = 0;
        for (; p + ls <= P; p += ls)
            for (int l = 0; l < ls; l++)
                acc[l] += plane[p + l];
        for (int l = 0; p + l < P; l++)
            acc[l] += plane[p + l];
    }
    for (int s = ls / 2; s > 0; s >>= 1)
        for (int l = 0; l < s; l++)
            acc[l] += acc[l + s];
    db[db_off + c] += acc[0];
}

/* conv_flip_weights for CPUs: one work-item per input channel writes its
 * row of wt. Global size (cin). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void conv_flip_weights_rows(
    __global const float *w, ulong w_off, __global float *wt, ulong wt_off, int cin, int cout,
    int kh, int kw)
{
    const int ci = (int)get_global_id(0);
    if (ci >= cin)
        return;
    __global float *dst = wt + wt_off + (size_t)ci * cout * kh * kw;
    for (int co = 0; co < cout; co++) {
        __global const float *src = w + w_off + ((size_t)co * cin + ci) * kh * kw;
        for (int r = kh * kw - 1; r >= 0; r--)
            *dst++ = src[r];
    }
}

/* ---- bias ----------------------------------------------------------------- */

/* y[n, c, p] = bias[c] for N images of (C, P). Global size (P rounded up,
 * C, N). */
__kernel void conv_fill_bias(__global float *y, ulong y_off, __global const float *bias,
                             ulong bias_off, int C, int P)
{
    const int p = (int)get_global_id(0);
    const int c = (int)get_global_id(1);
    const size_t n = get_global_id(2);
    if (p >= P)
        return;
    y[y_off + (n * C + c) * (size_t)P + p] = bias[bias_off + c];
}

/* db[c] += sum over n, p of dy[n, c, p]. One work-group per channel (global
 * size C * local size, local size a power of two); each item sums a fixed
 * strided subset in order, then a fixed tree in local memory. */
__kernel void conv_bias_grad(__global const float *dy, ulong dy_off, __global float *db,
                             ulong db_off, int N, int C, int P, __local float *part)
{
    const int c = (int)get_group_id(0);
    const int lid = (int)get_local_id(0);
    const int ls = (int)get_local_size(0);
    float acc = 0.0f;
    for (int n = 0; n < N; n++) {
        __global const float *plane = dy + dy_off + ((size_t)n * C + c) * (size_t)P;
        for (int p = lid; p < P; p += ls)
            acc += plane[p];
    }
    part[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = ls / 2; s > 0; s >>= 1) {
        if (lid < s)
            part[lid] += part[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        db[db_off + c] += part[0];
}

/* ---- direct kernels for few output channels (cout <= CONV_SMALL) --------- */

/* With cout <= 4 (the 64 -> 3 output convolution, D's last layer) the GEMM
 * has M = cout and im2col's column matrix (K x P, written then read once)
 * costs far more than the products; these kernels compute the same sums
 * straight from x / dy / w, in the same order as the GEMM path. Geometry as
 * conv_im2col with K = C*kh*kw; w is (cout, K). */
#define CONV_SMALL 4

/* y[n, co, p] = b[co] (or 0) + sum_k w[co, k] col[k, p], k in order.
 * Global size (P rounded up, nimg). */
__kernel void conv_fwd_small(__global const float *x, ulong x_off, __global const float *w,
                             ulong w_off, __global const float *bias, ulong bias_off,
                             int has_bias, __global float *y, ulong y_off, int cout, int C,
                             int H, int W, int Ho, int Wo, int kh, int kw, int sh, int sw, int pt,
                             int pl, int mode)
{
    const int p = (int)get_global_id(0);
    const size_t n = get_global_id(1);
    const int P = Ho * Wo;
    if (p >= P)
        return;
    const int oh = p / Wo;
    const int ow = p - oh * Wo;
    const int K = C * kh * kw;
    /* Four scalar accumulators (registers); the channels past cout repeat
     * the last one's weights and are not stored. */
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    __global const float *w0 = w + w_off;
    __global const float *w1 = w0 + (size_t)min(1, cout - 1) * K;
    __global const float *w2 = w0 + (size_t)min(2, cout - 1) * K;
    __global const float *w3 = w0 + (size_t)min(3, cout - 1) * K;
    for (int c = 0; c < C; c++) {
        __global const float *xc = x + x_off + (n * C + c) * (size_t)H * W;
        for (int ki = 0; ki < kh; ki++) {
            const int ih = enco_pad_index(oh * sh - pt + ki, H, mode);
            if (ih < 0)
                continue;
            for (int kj = 0; kj < kw; kj++) {
                const int iw = enco_pad_index(ow * sw - pl + kj, W, mode);
                if (iw < 0)
                    continue;
                const float v = xc[ih * W + iw];
                const int k = (c * kh + ki) * kw + kj;
                a0 = fma(w0[k], v, a0);
                a1 = fma(w1[k], v, a1);
                a2 = fma(w2[k], v, a2);
                a3 = fma(w3[k], v, a3);
            }
        }
    }
    for (int co = 0; co < cout; co++) {
        const float b0 = has_bias ? bias[bias_off + co] : 0.0f;
        const float acc = co == 0 ? a0 : co == 1 ? a1 : co == 2 ? a2 : a3;
        y[y_off + (n * cout + co) * (size_t)P + p] = b0 + acc;
    }
}

/* dx = col2im(W^T dY) without the column matrix: as conv_col2im over the
 * whole output (one band), each column entry computed as
 * sum_co w[co, k] dy[n, co, p] (co in order) where it is read. Global size
 * (H*W rounded up, C, nimg). */
__kernel void conv_bwd_data_small(__global const float *dy, ulong dy_off,
                                  __global const float *w, ulong w_off, __global float *x,
                                  ulong x_off, int cout, int C, int H, int W, int Ho, int Wo,
                                  int kh, int kw, int sh, int sw, int pt, int pl, int mode)
{
    const int q = (int)get_global_id(0);
    const int c = (int)get_global_id(1);
    const size_t n = get_global_id(2);
    if (q >= H * W)
        return;
    const int ih = q / W;
    const int iw = q - ih * W;
    const int K = C * kh * kw;
    const size_t P = (size_t)Ho * Wo;
    __global const float *dyn = dy + dy_off + n * (size_t)cout * P;
    __global const float *wp = w + w_off;
    int ha[3], hb[3], wa[3], wb[3];
    conv_source_runs(ih, H, -pt, (Ho - 1) * sh - pt + kh - 1, mode, ha, hb);
    conv_source_runs(iw, W, -pl, (Wo - 1) * sw - pl + kw - 1, mode, wa, wb);
    float acc = 0.0f;
    for (int rh = 0; rh < 3; rh++)
        for (int th = ha[rh]; th <= hb[rh]; th++)
            for (int ki = 0; ki < kh; ki++) {
                const int nh = th + pt - ki;
                if (nh < 0)
                    break;
                const int oh = nh / sh;
                if (oh * sh != nh || oh >= Ho)
                    continue;
                for (int rw = 0; rw < 3; rw++)
                    for (int tw = wa[rw]; tw <= wb[rw]; tw++)
                        for (int kj = 0; kj < kw; kj++) {
                            const int nw = tw + pl - kj;
                            if (nw < 0)
                                break;
                            const int ow = nw / sw;
                            if (ow * sw != nw || ow >= Wo)
                                continue;
                            const int k = (c * kh + ki) * kw + kj;
                            const size_t p = (size_t)oh * Wo + ow;
                            float t = 0.0f;
                            for (int co = 0; co < cout; co++)
                                t = fma(wp[co * K + k], dyn[co * P + p], t);
                            acc += t;
                        }
            }
    x[x_off + ENCO_IDX4(n, c, ih, iw, C, H, W)] = acc;
}

/* Returns a + (sum over output rows [oh_lo, oh_hi) of image n, pixels p in
 * order, of dy[n, co, p] * the input under weight (c, ki, kj) at p), channel co
 * in component co; channels past cout repeat the last one's dy (their sums
 * are not stored). Scalar fma chains, one per channel. */
static inline float4 small_dw_rows(__global const float *dy, __global const float *x, size_t n,
                                   int cout, int C, int H, int W, int Ho, int Wo, int sh, int sw,
                                   int pt, int pl, int mode, int c, int ki, int kj, int oh_lo,
                                   int oh_hi, float4 a)
{
    const size_t P = (size_t)Ho * Wo;
    __global const float *xc = x + (n * C + c) * (size_t)H * W;
    __global const float *d0 = dy + n * cout * P;
    __global const float *d1 = d0 + (size_t)min(1, cout - 1) * P;
    __global const float *d2 = d0 + (size_t)min(2, cout - 1) * P;
    __global const float *d3 = d0 + (size_t)min(3, cout - 1) * P;
    float a0 = a.s0, a1 = a.s1, a2 = a.s2, a3 = a.s3;
    for (int oh = oh_lo; oh < oh_hi; oh++) {
        const int ih = enco_pad_index(oh * sh - pt + ki, H, mode);
        if (ih < 0)
            continue;
        for (int ow = 0; ow < Wo; ow++) {
            const int iw = enco_pad_index(ow * sw - pl + kj, W, mode);
            if (iw < 0)
                continue;
            const float v = xc[ih * W + iw];
            const size_t p = (size_t)oh * Wo + ow;
            a0 = fma(d0[p], v, a0);
            a1 = fma(d1[p], v, a1);
            a2 = fma(d2[p], v, a2);
            a3 = fma(d3[p], v, a3);
        }
    }
    return (float4)(a0, a1, a2, a3);
}

/* dw[co, k] += sum over images in order of (sum_p dy[n, co, p] col_n[k, p],
 * p in order). One work-item per k, all cout at once. Global size (K rounded
 * up). */
__kernel void conv_bwd_weight_small(__global const float *dy, ulong dy_off,
                                    __global const float *x, ulong x_off, __global float *dw,
                                    ulong dw_off, int nimg, int cout, int C, int H, int W, int Ho,
                                    int Wo, int kh, int kw, int sh, int sw, int pt, int pl,
                                    int mode)
{
    const int k = (int)get_global_id(0);
    const int K = C * kh * kw;
    if (k >= K)
        return;
    const int kq = k / kw;
    const int kj = k - kq * kw;
    const int c = kq / kh;
    const int ki = kq - c * kh;
    __global float *dwk = dw + dw_off + k;
    float4 t = (float4)(dwk[0], dwk[(size_t)min(1, cout - 1) * K],
                        dwk[(size_t)min(2, cout - 1) * K], dwk[(size_t)min(3, cout - 1) * K]);
    for (int n = 0; n < nimg; n++)
        /* Images in order, each image's sum added as a whole (as the GEMM
         * path's beta = 1 accumulation). */
        t += small_dw_rows(dy + dy_off, x + x_off, (size_t)n, cout, C, H, W, Ho, Wo, sh, sw, pt,
                           pl, mode, c, ki, kj, 0, Ho, (float4)(0.0f));
    for (int co = 0; co < cout; co++)
        dwk[(size_t)co * K] = co == 0 ? t.s0 : co == 1 ? t.s1 : co == 2 ? t.s2 : t.s3;
}

/* ---- strip kernels for few output channels on CPUs (stride 1 along w) ---- */

/* conv_fwd_small for stride-1 rows and kw <= 16, explicit float8 for PoCL's
 * CPU device: a work-item (work-groups of 1) computes SPAN consecutive
 * outputs of one row for every output channel, in strips of 16 with two
 * float8 accumulators per channel, summing k = (c, ki, kj) in order as
 * conv_fwd_small (the same bits). Strips whose inputs lie inside the row load
 * them straight with vload8; border and partial strips first gather their
 * padded input segment (16 + kw - 1 values, zeros past the last needed
 * column) into private memory. Two spans (compile-time constants, as the
 * channel count CO):
 * - CONV_STRIP (conv_fwd_small_strip): one strip, accumulators in registers;
 * - CONV_ROWW (conv_fwd_small_rows): up to 256 outputs, walking (c, ki)
 *   outside and the strips inside with the accumulators in private memory
 *   (4 KiB, L1) between the steps, so each input row is read along its
 *   length once per (c, ki) instead of in 448 short segments of far-apart
 *   rows per strip (64 channels x 7 kernel rows at the output conv: planes
 *   256 KiB apart collide in L1 sets). */
#define CONV_STRIP 16

#define CONV_FWD_FMA1(I, xa, xb, kidx)                                                            \
    do {                                                                                          \
        const float8 w_ = (float8)(wp[(I) * K + (kidx)]);                                         \
        a##I = fma(w_, xa, a##I);                                                                 \
        b##I = fma(w_, xb, b##I);                                                                 \
    } while (0)

#define CONV_FWD_FMA(CO, xa, xb, kidx)                                                            \
    do {                                                                                          \
        CONV_FWD_FMA1(0, xa, xb, kidx);                                                           \
        if ((CO) > 1)                                                                             \
            CONV_FWD_FMA1(1, xa, xb, kidx);                                                       \
        if ((CO) > 2)                                                                             \
            CONV_FWD_FMA1(2, xa, xb, kidx);                                                       \
        if ((CO) > 3)                                                                             \
            CONV_FWD_FMA1(3, xa, xb, kidx);                                                       \
    } while (0)

#define CONV_FWD_STORE(I)                                                                         \
    do {                                                                                          \
        if ((I) < CO) {                                                                           \
            const float8 b_ = (float8)(has_bias ? bias[I] : 0.0f);                                \
            __global float *yr_ = y + ((n * CO + (I)) * (size_t)Ho + oh) * Wo + ow0;              \
            if (full) {                                                                           \
                vstore8(b_ + a##I, 0, yr_);                                                       \
                vstore8(b_ + b##I, 0, yr_ + 8);                                                   \
            } else {                                                                              \
                float t_[CONV_STRIP];                                                             \
                vstore8(b_ + a##I, 0, t_);                                                        \
                vstore8(b_ + b##I, 0, t_ + 8);                                                    \
                for (int l_ = 0; l_ < Wo - ow0; l_++)                                             \
                    yr_[l_] = t_[l_];                                                             \
            }                                                                                     \
        }                                                                                         \
    } while (0)

#define CONV_ROWW 256

static inline __attribute__((always_inline)) void
conv_fwd_small_body(__global const float *x, __global const float *w, __global const float *bias,
                    int has_bias, __global float *y, const int CO, const int SPAN, int C, int H,
                    int W, int Ho, int Wo, int kh, int kw, int sh, int pt, int pl, int mode,
                    int owc, int oh, size_t n)
{
    const int K = C * kh * kw;
    const int ns = SPAN == CONV_STRIP ? 1 : (min(SPAN, Wo - owc) + CONV_STRIP - 1) / CONV_STRIP;
    const int last = Wo - 1 - pl + kw - 1;
    float8 acc[4][2 * CONV_ROWW / CONV_STRIP]; /* SPAN <= CONV_ROWW */
    for (int s = 0; s < 2 * ns; s++)
        for (int i = 0; i < CO; i++)
            acc[i][s] = (float8)(0.0f);
#define CONV_ACC_LOAD(st)                                                                         \
    float8 a0 = acc[0][2 * (st)], b0 = acc[0][2 * (st) + 1], a1 = 0.0f, b1 = 0.0f, a2 = 0.0f,     \
           b2 = 0.0f, a3 = 0.0f, b3 = 0.0f;                                                       \
    if (CO > 1)                                                                                   \
        a1 = acc[1][2 * (st)], b1 = acc[1][2 * (st) + 1];                                         \
    if (CO > 2)                                                                                   \
        a2 = acc[2][2 * (st)], b2 = acc[2][2 * (st) + 1];                                         \
    if (CO > 3)                                                                                   \
        a3 = acc[3][2 * (st)], b3 = acc[3][2 * (st) + 1];
    for (int c = 0; c < C; c++) {
        __global const float *xc = x + (n * C + c) * (size_t)H * W;
        for (int ki = 0; ki < kh; ki++) {
            const int ih = enco_pad_index(oh * sh - pt + ki, H, mode);
            if (ih < 0)
                continue;
            __global const float *xr = xc + (size_t)ih * W;
            __global const float *wp = w + (c * kh + ki) * kw;
            for (int st = 0; st < ns; st++) {
                const int ow0 = owc + st * CONV_STRIP, iw0 = ow0 - pl;
                const int full = ow0 + CONV_STRIP <= Wo;
                const int interior = full && iw0 >= 0 && iw0 + CONV_STRIP - 1 + kw - 1 < W;
                CONV_ACC_LOAD(st)
                if (interior) {
                    __global const float *xs = xr + iw0;
                    for (int kj = 0; kj < kw; kj++) {
                        const float8 xa = vload8(0, xs + kj);
                        const float8 xb = vload8(0, xs + kj + 8);
                        CONV_FWD_FMA(CO, xa, xb, kj);
                    }
                } else {
                    float seg[2 * CONV_STRIP];
                    for (int t = 0; t < CONV_STRIP - 1 + kw; t++) {
                        const int i = iw0 + t;
                        const int sx = i > last ? -1 : enco_pad_index(i, W, mode);
                        seg[t] = sx < 0 ? 0.0f : xr[sx];
                    }
                    for (int kj = 0; kj < kw; kj++) {
                        const float8 xa = vload8(0, seg + kj);
                        const float8 xb = vload8(0, seg + kj + 8);
                        CONV_FWD_FMA(CO, xa, xb, kj);
                    }
                }
                acc[0][2 * st] = a0, acc[0][2 * st + 1] = b0;
                if (CO > 1)
                    acc[1][2 * st] = a1, acc[1][2 * st + 1] = b1;
                if (CO > 2)
                    acc[2][2 * st] = a2, acc[2][2 * st + 1] = b2;
                if (CO > 3)
                    acc[3][2 * st] = a3, acc[3][2 * st + 1] = b3;
            }
        }
    }
    for (int st = 0; st < ns; st++) {
        const int ow0 = owc + st * CONV_STRIP, full = ow0 + CONV_STRIP <= Wo;
        CONV_ACC_LOAD(st)
        CONV_FWD_STORE(0);
        CONV_FWD_STORE(1);
        CONV_FWD_STORE(2);
        CONV_FWD_STORE(3);
    }
#undef CONV_ACC_LOAD
}

/* Global size (ceil(Wo / SPAN), Ho, nimg), work-groups of 1. Needs sw == 1,
 * kw <= 16, 1 <= cout <= 4. */
#define CONV_FWD_SMALL_KERNEL(NAME, SPAN)                                                         \
    __kernel void NAME(__global const float *x, ulong x_off, __global const float *w,             \
                       ulong w_off, __global const float *bias, ulong bias_off, int has_bias,      \
                       __global float *y, ulong y_off, int cout, int C, int H, int W, int Ho,     \
                       int Wo, int kh, int kw, int sh, int pt, int pl, int mode)                  \
    {                                                                                             \
        const int owc = (int)get_global_id(0) * (SPAN);                                           \
        const int oh = (int)get_global_id(1);                                                     \
        const size_t n = get_global_id(2);                                                        \
        if (owc >= Wo || oh >= Ho)                                                                \
            return;                                                                               \
        x += x_off, w += w_off, bias += bias_off, y += y_off;                                     \
        if (cout == 1)                                                                            \
            conv_fwd_small_body(x, w, bias, has_bias, y, 1, SPAN, C, H, W, Ho, Wo, kh, kw, sh,    \
                                pt, pl, mode, owc, oh, n);                                        \
        else if (cout == 2)                                                                       \
            conv_fwd_small_body(x, w, bias, has_bias, y, 2, SPAN, C, H, W, Ho, Wo, kh, kw, sh,    \
                                pt, pl, mode, owc, oh, n);                                        \
        else if (cout == 3)                                                                       \
            conv_fwd_small_body(x, w, bias, has_bias, y, 3, SPAN, C, H, W, Ho, Wo, kh, kw, sh,    \
                                pt, pl, mode, owc, oh, n);                                        \
        else                                                                                      \
            conv_fwd_small_body(x, w, bias, has_bias, y, 4, SPAN, C, H, W, Ho, Wo, kh, kw, sh,    \
                                pt, pl, mode, owc, oh, n);                                        \
    }

CONV_FWD_SMALL_KERNEL(conv_fwd_small_strip, CONV_STRIP)
CONV_FWD_SMALL_KERNEL(conv_fwd_small_rows, CONV_ROWW)

/* conv_bwd_weight_small for stride-1 rows on CPUs: one work-item (work-groups
 * of 1) per (c, ki, pair of kj) and block of output rows of one image sums
 * dy[n, co, p] x[...] over the block's pixels into
 * part[(n * nblk + blk) * cout + co][k]; conv_splitk_reduce then adds the
 * parts to dw in order. Along a row, the columns where both kj read inside
 * the input go eight at a time (float8 accumulators per (co, kj), vload8 of
 * dy and x); the rest (borders, the last < 8) go one at a time through
 * enco_pad_index into scalar accumulators. Each sum is (lanes pairwise) +
 * scalars: a fixed order. Global size (C * kh * ceil(kw / 2), nblk, nimg). */
#define CONV_WG_FMA2(I, d)                                                                        \
    do {                                                                                          \
        v##I##0 = fma(d, x0, v##I##0);                                                            \
        v##I##1 = fma(d, x1, v##I##1);                                                            \
    } while (0)

#define CONV_WG_FMA1(I, d)                                                                        \
    do {                                                                                          \
        s##I##0 = fma(d, y0, s##I##0);                                                            \
        s##I##1 = fma(d, y1, s##I##1);                                                            \
    } while (0)

#define CONV_WG_STORE1(I, J)                                                                      \
    do {                                                                                          \
        if ((I) < CO && ((J) == 0 || kj0 + 1 < kw)) {                                             \
            const float4 h4_ = v##I##J.lo + v##I##J.hi;                                           \
            const float2 h2_ = h4_.lo + h4_.hi;                                                   \
            part[((size_t)q * CO + (I)) * K + k0 + (J)] = (h2_.x + h2_.y) + s##I##J;              \
        }                                                                                         \
    } while (0)

static inline __attribute__((always_inline)) void
conv_bwd_weight_strip_body(__global const float *dy, __global const float *x, __global float *part,
                           const int CO, int C, int H, int W, int Ho, int Wo, int kh, int kw,
                           int sh, int pt, int pl, int mode, int c, int ki, int kj0, int oh_lo,
                           int oh_hi, size_t n, int q)
{
    const int K = C * kh * kw;
    const int kj1 = min(kj0 + 1, kw - 1);
    const int k0 = (c * kh + ki) * kw + kj0;
    const size_t P = (size_t)Ho * Wo;
    __global const float *xc = x + (n * C + c) * (size_t)H * W;
    __global const float *dyn = dy + n * CO * P;
    /* Columns ow in [lo, hi) read x inside the row for both kj. */
    const int lo = max(0, pl - kj0), hi = min(Wo, W + pl - kj1);
    const int vend = hi > lo ? lo + (hi - lo) / 8 * 8 : lo;
    float8 v00 = 0.0f, v01 = 0.0f, v10 = 0.0f, v11 = 0.0f, v20 = 0.0f, v21 = 0.0f, v30 = 0.0f,
           v31 = 0.0f;
    float s00 = 0.0f, s01 = 0.0f, s10 = 0.0f, s11 = 0.0f, s20 = 0.0f, s21 = 0.0f, s30 = 0.0f,
          s31 = 0.0f;
    for (int oh = oh_lo; oh < oh_hi; oh++) {
        const int ih = enco_pad_index(oh * sh - pt + ki, H, mode);
        if (ih < 0)
            continue;
        __global const float *xr = xc + (size_t)ih * W;
        __global const float *dr = dyn + (size_t)oh * Wo;
        for (int ow = lo; ow < vend; ow += 8) {
            const float8 x0 = vload8(0, xr + ow - pl + kj0);
            const float8 x1 = vload8(0, xr + ow - pl + kj1);
            CONV_WG_FMA2(0, vload8(0, dr + ow));
            if (CO > 1)
                CONV_WG_FMA2(1, vload8(0, dr + P + ow));
            if (CO > 2)
                CONV_WG_FMA2(2, vload8(0, dr + 2 * P + ow));
            if (CO > 3)
                CONV_WG_FMA2(3, vload8(0, dr + 3 * P + ow));
        }
        for (int ow = 0; ow < Wo; ow++) {
            if (ow == lo)
                ow = vend;
            if (ow >= Wo)
                break;
            const int i0 = enco_pad_index(ow - pl + kj0, W, mode);
            const int i1 = enco_pad_index(ow - pl + kj1, W, mode);
            const float y0 = i0 < 0 ? 0.0f : xr[i0];
            const float y1 = i1 < 0 ? 0.0f : xr[i1];
            CONV_WG_FMA1(0, dr[ow]);
            if (CO > 1)
                CONV_WG_FMA1(1, dr[P + ow]);
            if (CO > 2)
                CONV_WG_FMA1(2, dr[2 * P + ow]);
            if (CO > 3)
                CONV_WG_FMA1(3, dr[3 * P + ow]);
        }
    }
    CONV_WG_STORE1(0, 0);
    CONV_WG_STORE1(0, 1);
    CONV_WG_STORE1(1, 0);
    CONV_WG_STORE1(1, 1);
    CONV_WG_STORE1(2, 0);
    CONV_WG_STORE1(2, 1);
    CONV_WG_STORE1(3, 0);
    CONV_WG_STORE1(3, 1);
}

__kernel void conv_bwd_weight_small_strip(__global const float *dy, ulong dy_off,
                                          __global const float *x, ulong x_off,
                                          __global float *part, int cout, int C, int H, int W,
                                          int Ho, int Wo, int kh, int kw, int sh, int pt, int pl,
                                          int mode, int rows)
{
    const int g = (int)get_global_id(0);
    const int blk = (int)get_global_id(1);
    const size_t n = get_global_id(2);
    const int ngrp = (kw + 1) / 2;
    if (g >= C * kh * ngrp)
        return;
    const int cq = g / ngrp;
    const int kj0 = 2 * (g - cq * ngrp);
    const int c = cq / kh;
    const int ki = cq - c * kh;
    const int oh_lo = blk * rows, oh_hi = min(Ho, oh_lo + rows);
    const int q = (int)n * (int)get_global_size(1) + blk;
    dy += dy_off, x += x_off;
    switch (cout) {
    case 1:
        conv_bwd_weight_strip_body(dy, x, part, 1, C, H, W, Ho, Wo, kh, kw, sh, pt, pl, mode, c,
                                   ki, kj0, oh_lo, oh_hi, n, q);
        break;
    case 2:
        conv_bwd_weight_strip_body(dy, x, part, 2, C, H, W, Ho, Wo, kh, kw, sh, pt, pl, mode, c,
                                   ki, kj0, oh_lo, oh_hi, n, q);
        break;
    case 3:
        conv_bwd_weight_strip_body(dy, x, part, 3, C, H, W, Ho, Wo, kh, kw, sh, pt, pl, mode, c,
                                   ki, kj0, oh_lo, oh_hi, n, q);
        break;
    default:
        conv_bwd_weight_strip_body(dy, x, part, 4, C, H, W, Ho, Wo, kh, kw, sh, pt, pl, mode, c,
                                   ki, kj0, oh_lo, oh_hi, n, q);
        break;
    }
}

/* ---- input gradient of stride-1 convolutions as a forward convolution ---- */

/* wt (cin, cout*kh*kw) = w (cout, cin, kh, kw) transposed over the channels
 * and flipped in space: wt[ci, (co*kh + ki)*kw + kj] =
 * w[co, ci, kh-1-ki, kw-1-kj]. Global size (cout*kh*kw rounded up, cin). */
__kernel void conv_flip_weights(__global const float *w, ulong w_off, __global float *wt,
                                ulong wt_off, int cin, int cout, int kh, int kw)
{
    const int q = (int)get_global_id(0);
    const int ci = (int)get_global_id(1);
    const int kk = kh * kw;
    if (q >= cout * kk)
        return;
    const int co = q / kk;
    const int r = q - co * kk;
    const int ki = r / kw;
    const int kj = r - ki * kw;
    wt[wt_off + (size_t)ci * cout * kk + q] =
        w[w_off + (((size_t)co * cin + ci) * kh + (kh - 1 - ki)) * kw + (kw - 1 - kj)];
}

/* Split-K weight gradient (GPUs): dw[i] += part[0][i] + part[1][i] + ... in
 * part order, so the result does not depend on scheduling. Global size
 * (count rounded up). */
__kernel void conv_splitk_reduce(__global const float *part, int parts, ulong count,
                                 __global float *dw, ulong dw_off)
{
    const size_t i = get_global_id(0);
    if (i >= count)
        return;
    float s = part[i];
    for (int p = 1; p < parts; p++)
        s += part[(size_t)p * count + i];
    dw[dw_off + i] += s;
}

/* conv_bwd_weight_small for GPUs: the output rows split into `parts` ranges,
 * one work-item per (k, part) summing its rows of every image in order into
 * part[part][co][k] (conv_splitk_reduce then adds the parts to dw in order).
 * Adjacent work-items read adjacent inputs. Global size (K rounded up,
 * parts). */
__kernel void conv_bwd_weight_small_part(__global const float *dy, ulong dy_off,
                                         __global const float *x, ulong x_off,
                                         __global float *part, int nimg, int cout, int C, int H,
                                         int W, int Ho, int Wo, int kh, int kw, int sh, int sw,
                                         int pt, int pl, int mode, int parts)
{
    const int k = (int)get_global_id(0);
    const int q = (int)get_global_id(1);
    const int K = C * kh * kw;
    if (k >= K || q >= parts)
        return;
    const int len = (Ho + parts - 1) / parts;
    const int oh_lo = q * len, oh_hi = min(Ho, oh_lo + len);
    const int kq = k / kw;
    const int kj = k - kq * kw;
    const int c = kq / kh;
    const int ki = kq - c * kh;
    float4 t = (float4)(0.0f);
    for (int n = 0; n < nimg; n++)
        t = small_dw_rows(dy + dy_off, x + x_off, (size_t)n, cout, C, H, W, Ho, Wo, sh, sw, pt, pl,
                          mode, c, ki, kj, oh_lo, oh_hi, t);
    __global float *o = part + (size_t)q * cout * K + k;
    for (int co = 0; co < cout; co++)
        o[(size_t)co * K] = co == 0 ? t.s0 : co == 1 ? t.s1 : co == 2 ? t.s2 : t.s3;
}
