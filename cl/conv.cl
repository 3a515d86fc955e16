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

/* One work-item per column entry, for the band of output rows [oh0, oh0 +
 * rows): per image the column matrix is (C*kh*kw, rows*Wo). Global size
 * (rows*Wo rounded up: guarded, C*kh*kw, nimg); 32-bit index math inside an
 * image (the host checks the sizes). */
__kernel void conv_im2col(__global const float *x, ulong x_off, __global float *col,
                          ulong col_off, int C, int H, int W, int Wo, int kh, int kw, int sh,
                          int sw, int pt, int pl, int mode, int oh0, int rows)
{
    const int p = (int)get_global_id(0);
    const int k = (int)get_global_id(1);
    const size_t n = get_global_id(2);
    const int P = rows * Wo;
    if (p >= P)
        return;
    /* Quotient and remainder as q, x - q*y: Oclgrind cannot check the
     * `freeze` that LLVM emits for a div/rem pair on the same operands. */
    const int r = p / Wo;
    const int ow = p - r * Wo;
    const int oh = oh0 + r;
    const int kq = k / kw;
    const int kj = k - kq * kw;
    const int c = kq / kh;
    const int ki = kq - c * kh;
    const int ih = enco_pad_index(oh * sh - pt + ki, H, mode);
    const int iw = enco_pad_index(ow * sw - pl + kj, W, mode);
    float v = 0.0f;
    if (ih >= 0 && iw >= 0)
        v = x[x_off + ENCO_IDX4(n, c, ih, iw, C, H, W)];
    col[col_off + (n * get_global_size(1) + k) * (size_t)P + p] = v;
}

/* As conv_im2col, but writes the transposed column matrix: per image
 * (rows*Wo, C*kh*kw), entry [p, k] at p*K + k. The weight gradient then is a
 * GEMM whose second operand is not transposed (dW += dY colT). Global size
 * (K, rows*Wo, nimg): consecutive work-items write consecutive floats. */
__kernel void conv_im2col_t(__global const float *x, ulong x_off, __global float *col,
                            ulong col_off, int C, int H, int W, int Wo, int kh, int kw, int sh,
                            int sw, int pt, int pl, int mode, int oh0, int rows)
{
    const int k = (int)get_global_id(0);
    const int p = (int)get_global_id(1);
    const size_t n = get_global_id(2);
    const int K = C * kh * kw;
    if (k >= K)
        return;
    const int r = p / Wo;
    const int ow = p - r * Wo;
    const int oh = oh0 + r;
    const int kq = k / kw;
    const int kj = k - kq * kw;
    const int c = kq / kh;
    const int ki = kq - c * kh;
    const int ih = enco_pad_index(oh * sh - pt + ki, H, mode);
    const int iw = enco_pad_index(ow * sw - pl + kj, W, mode);
    float v = 0.0f;
    if (ih >= 0 && iw >= 0)
        v = x[x_off + ENCO_IDX4(n, c, ih, iw, C, H, W)];
    col[col_off + (n * get_global_size(1) + p) * (size_t)K + k] = v;
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
