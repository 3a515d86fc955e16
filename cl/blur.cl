/* Fixed anti-aliasing blur layers of CUT/EnCo (spec ENCO.md section 1).
 *
 * Downsample: reflect-pad 1, depthwise 3x3 conv, stride 2. Per dimension:
 *   y[o] = sum_k f[k] * x[reflect(2o + k - 1)]
 * Upsample: replicate-pad 1, depthwise transposed conv (stride 2, padding 2,
 *   4x4 filter), drop the first and last row and column. Per dimension:
 *   y[j] = sum_{i, k: k = j + 3 - 2i, 0 <= k < 4} f[k] * x[clamp(i - 1)]
 *   where i runs over the padded input 0 .. n+1.
 * Filters are per channel, (C, 1, K, K) row-major: f[c][kh][kw].
 * One work-item per element written; global size (W, H, N*C) rounded up to
 * the local size, so indices are guarded. Backward kernels gather (no
 * atomics): each input element sums, in a fixed order, the outputs it fed. */

#define BLUR_DOWN_MAX_TAPS 6
#define BLUR_UP_MAX_TAPS 12

/* The padded coordinates (input coordinate + 1) whose source is input element
 * s, for padding 1 on both sides. Returns their count (<= 3). */
static int blur_pads_of(int s, int n, int mode, int *pads)
{
    int np = 0;
    pads[np++] = s + 1;
    if (enco_pad_index(-1, n, mode) == s)
        pads[np++] = 0;
    if (enco_pad_index(n, n, mode) == s)
        pads[np++] = n + 1;
    return np;
}

/* Downsample, one dimension: the (o, k) pairs where y[o] reads x[s] through
 * tap k (no = output length). Returns their count. */
static int blur_down_taps(int s, int n, int no, int *o, int *k)
{
    int pads[3];
    int np = blur_pads_of(s, n, ENCO_PAD_REFLECT, pads);
    int cnt = 0;
    for (int p = 0; p < np; p++)
        for (int t = 0; t < 3; t++) {
            int d = pads[p] - t;
            if (d >= 0 && (d & 1) == 0 && d / 2 < no) {
                o[cnt] = d / 2;
                k[cnt] = t;
                cnt++;
            }
        }
    return cnt;
}

/* Upsample, one dimension: the (j, k) pairs where y[j] reads x[s] through
 * tap k (output length 2n). Returns their count. */
static int blur_up_taps(int s, int n, int *j, int *k)
{
    int pads[3];
    int np = blur_pads_of(s, n, ENCO_PAD_REPLICATE, pads);
    int cnt = 0;
    for (int p = 0; p < np; p++)
        for (int t = 0; t < 4; t++) {
            int q = 2 * pads[p] - 3 + t;
            if (q >= 0 && q < 2 * n) {
                j[cnt] = q;
                k[cnt] = t;
                cnt++;
            }
        }
    return cnt;
}

/* y (N, C, Ho, Wo) = Downsample(x (N, C, H, W)); Ho = ceil(H/2). */
__kernel void blur_down_forward(int C, int H, int W, int Ho, int Wo, int planes,
                                __global const float *x, ulong x_off,
                                __global const float *filt, ulong f_off,
                                __global float *y, ulong y_off)
{
    int ow = (int)get_global_id(0), oh = (int)get_global_id(1), p = (int)get_global_id(2);
    if (ow >= Wo || oh >= Ho || p >= planes)
        return;
    __global const float *xp = x + x_off + (size_t)p * H * W;
    __global const float *f = filt + f_off + (size_t)(p % C) * 9;
    float acc = 0.0f;
    for (int kh = 0; kh < 3; kh++) {
        int ih = enco_pad_index(2 * oh + kh - 1, H, ENCO_PAD_REFLECT);
        for (int kw = 0; kw < 3; kw++) {
            int iw = enco_pad_index(2 * ow + kw - 1, W, ENCO_PAD_REFLECT);
            acc = fma(f[kh * 3 + kw], xp[(size_t)ih * W + iw], acc);
        }
    }
    y[y_off + ((size_t)p * Ho + oh) * Wo + ow] = acc;
}

/* dx (N, C, H, W) = Downsample^T dy (N, C, Ho, Wo). */
__kernel void blur_down_backward(int C, int H, int W, int Ho, int Wo, int planes,
                                 __global const float *dy, ulong dy_off,
                                 __global const float *filt, ulong f_off,
                                 __global float *dx, ulong dx_off)
{
    int sw = (int)get_global_id(0), sh = (int)get_global_id(1), p = (int)get_global_id(2);
    if (sw >= W || sh >= H || p >= planes)
        return;
    int oh[BLUR_DOWN_MAX_TAPS], kh[BLUR_DOWN_MAX_TAPS];
    int ow[BLUR_DOWN_MAX_TAPS], kw[BLUR_DOWN_MAX_TAPS];
    int nh = blur_down_taps(sh, H, Ho, oh, kh);
    int nw = blur_down_taps(sw, W, Wo, ow, kw);
    __global const float *g = dy + dy_off + (size_t)p * Ho * Wo;
    __global const float *f = filt + f_off + (size_t)(p % C) * 9;
    float acc = 0.0f;
    for (int a = 0; a < nh; a++)
        for (int b = 0; b < nw; b++)
            acc = fma(f[kh[a] * 3 + kw[b]], g[(size_t)oh[a] * Wo + ow[b]], acc);
    dx[dx_off + ((size_t)p * H + sh) * W + sw] = acc;
}

/* y (N, C, 2H, 2W) = Upsample(x (N, C, H, W)). */
__kernel void blur_up_forward(int C, int H, int W, int planes,
                              __global const float *x, ulong x_off,
                              __global const float *filt, ulong f_off,
                              __global float *y, ulong y_off)
{
    int jw = (int)get_global_id(0), jh = (int)get_global_id(1), p = (int)get_global_id(2);
    int Ho = 2 * H, Wo = 2 * W;
    if (jw >= Wo || jh >= Ho || p >= planes)
        return;
    __global const float *xp = x + x_off + (size_t)p * H * W;
    __global const float *f = filt + f_off + (size_t)(p % C) * 16;
    float acc = 0.0f;
    /* Padded rows i with k = j + 3 - 2i in [0, 4): i = j/2 (+1) and so on. */
    for (int ih = jh / 2; ih <= jh / 2 + 2; ih++) {
        int th = jh + 3 - 2 * ih;
        if (th < 0 || th > 3)
            continue;
        int sh = enco_pad_index(ih - 1, H, ENCO_PAD_REPLICATE);
        for (int iw = jw / 2; iw <= jw / 2 + 2; iw++) {
            int tw = jw + 3 - 2 * iw;
            if (tw < 0 || tw > 3)
                continue;
            int sw = enco_pad_index(iw - 1, W, ENCO_PAD_REPLICATE);
            acc = fma(f[th * 4 + tw], xp[(size_t)sh * W + sw], acc);
        }
    }
    y[y_off + ((size_t)p * Ho + jh) * Wo + jw] = acc;
}

/* dx (N, C, H, W) = Upsample^T dy (N, C, 2H, 2W). */
__kernel void blur_up_backward(int C, int H, int W, int planes,
                               __global const float *dy, ulong dy_off,
                               __global const float *filt, ulong f_off,
                               __global float *dx, ulong dx_off)
{
    int sw = (int)get_global_id(0), sh = (int)get_global_id(1), p = (int)get_global_id(2);
    if (sw >= W || sh >= H || p >= planes)
        return;
    int jh[BLUR_UP_MAX_TAPS], kh[BLUR_UP_MAX_TAPS];
    int jw[BLUR_UP_MAX_TAPS], kw[BLUR_UP_MAX_TAPS];
    int nh = blur_up_taps(sh, H, jh, kh);
    int nw = blur_up_taps(sw, W, jw, kw);
    int Wo = 2 * W;
    __global const float *g = dy + dy_off + (size_t)p * (2 * H) * Wo;
    __global const float *f = filt + f_off + (size_t)(p % C) * 16;
    float acc = 0.0f;
    for (int a = 0; a < nh; a++)
        for (int b = 0; b < nw; b++)
            acc = fma(f[kh[a] * 4 + kw[b]], g[(size_t)jh[a] * Wo + jw[b]], acc);
    dx[dx_off + ((size_t)p * H + sh) * W + sw] = acc;
}

/* ---- row kernels (CPU devices) ------------------------------------------
 * One work-item (work-group size 1) writes `rows` consecutive output rows of
 * one plane: global size planes * nblk, item g -> plane g / nblk, row block
 * g % nblk. Each row is a sum over its (input row, filter row) taps; inside a
 * row, interior strips use float8/float16 code with no padding maps (the
 * last strip overlaps the one before it instead of running short: the same
 * item writes the same values twice), borders and narrow planes a scalar
 * loop over the general tap lists. Sums run in a fixed order per element.
 * vec = 0 turns the strips off (Oclgrind 21.10: its uninitialised-value check
 * misreports float16 .even/.odd and crashes on these kernels). */

static inline float16 blur_zip8(float8 e, float8 o)
{
    return (float16)(e.s0, o.s0, e.s1, o.s1, e.s2, o.s2, e.s3, o.s3, e.s4, o.s4, e.s5, o.s5,
                     e.s6, o.s6, e.s7, o.s7);
}

/* y row oh of a downsample (3 taps: filter rows 0..2 read input rows
 * reflect(2oh - 1 + kh)), outputs ow in [o0, o0 + 8): reads x cols 2o0 - 1 ..
 * 2o0 + 15 (all inside the row). */
static inline float8 blur_down_fwd_strip(__global const float *r, int c0, float a0, float a1,
                                         float a2, float8 acc)
{
    float16 v = vload16(0, r + c0);
    float8 ev = v.even, od = v.odd;
    float8 lf = (float8)(r[c0 - 1], od.s0123, od.s456);
    acc = fma((float8)a0, lf, acc);
    acc = fma((float8)a1, ev, acc);
    return fma((float8)a2, od, acc);
}

/* One downsample output (any column; reflect padding). */
static inline float blur_down_fwd_one(__global const float *r0, __global const float *r1,
                                      __global const float *r2, int W, int o,
                                      __global const float *f)
{
    int cl = enco_pad_index(2 * o - 1, W, ENCO_PAD_REFLECT), cm = 2 * o;
    int cr = enco_pad_index(2 * o + 1, W, ENCO_PAD_REFLECT);
    float acc = 0.0f;
    acc = fma(f[0], r0[cl], acc);
    acc = fma(f[1], r0[cm], acc);
    acc = fma(f[2], r0[cr], acc);
    acc = fma(f[3], r1[cl], acc);
    acc = fma(f[4], r1[cm], acc);
    acc = fma(f[5], r1[cr], acc);
    acc = fma(f[6], r2[cl], acc);
    acc = fma(f[7], r2[cm], acc);
    return fma(f[8], r2[cr], acc);
}

__kernel void blur_down_forward_rows(int C, int H, int W, int Ho, int Wo, int planes, int rows,
                                     int nblk, int vec, __global const float *x, ulong x_off,
                                     __global const float *filt, ulong f_off,
                                     __global float *y, ulong y_off)
{
    int g = (int)get_global_id(0);
    if (g >= planes * nblk)
        return;
    int p = g / nblk, oh0 = (g - p * nblk) * rows, oh1 = min(Ho, oh0 + rows);
    __global const float *xp = x + x_off + (size_t)p * H * W;
    __global const float *f = filt + f_off + (size_t)(p % C) * 9;
    __global float *yp = y + y_off + (size_t)p * Ho * Wo;
    /* Vector strips start at 1 .. vend; vend + 8 .. Wo - 1 and 0 are scalar. */
    int vend = vec && W >= 18 ? (W - 16) / 2 : 0;
    float f0 = f[0], f1 = f[1], f2 = f[2], f3 = f[3], f4 = f[4], f5 = f[5], f6 = f[6], f7 = f[7],
          f8 = f[8];
    for (int oh = oh0; oh < oh1; oh++) {
        __global const float *r0 = xp + (size_t)enco_pad_index(2 * oh - 1, H, ENCO_PAD_REFLECT) * W;
        __global const float *r1 = xp + (size_t)(2 * oh) * W;
        __global const float *r2 = xp + (size_t)enco_pad_index(2 * oh + 1, H, ENCO_PAD_REFLECT) * W;
        __global float *yr = yp + (size_t)oh * Wo;
        int sc0 = 0;
        if (vend >= 1) {
            for (int o0 = 1;; o0 += 8) {
                if (o0 > vend)
                    o0 = vend;
                float8 acc = (float8)(0.0f);
                acc = blur_down_fwd_strip(r0, 2 * o0, f0, f1, f2, acc);
                acc = blur_down_fwd_strip(r1, 2 * o0, f3, f4, f5, acc);
                acc = blur_down_fwd_strip(r2, 2 * o0, f6, f7, f8, acc);
                vstore8(acc, 0, yr + o0);
                if (o0 == vend)
                    break;
            }
            sc0 = vend + 8;
        }
        if (vend >= 1)
            yr[0] = blur_down_fwd_one(r0, r1, r2, W, 0, f);
        for (int ow = sc0; ow < Wo; ow++)
            yr[ow] = blur_down_fwd_one(r0, r1, r2, W, ow, f);
    }
}

/* Downsample transpose, interior: dx cols 2m0 .. 2m0 + 15 from dy row g cols
 * m0 .. m0 + 8 through filter row (a0, a1, a2): even col 2m gets a1 g[m],
 * odd col 2m + 1 gets a0 g[m + 1] + a2 g[m]. */
static inline void blur_down_bwd_strip(__global const float *g, int m0, float a0, float a1,
                                       float a2, float8 *ev, float8 *od)
{
    float8 v = vload8(0, g + m0);
    float8 nx = (float8)(v.s1234, v.s567, g[m0 + 8]);
    *ev = fma((float8)a1, v, *ev);
    *od = fma((float8)a0, nx, *od);
    *od = fma((float8)a2, v, *od);
}

__kernel void blur_down_backward_rows(int C, int H, int W, int Ho, int Wo, int planes, int rows,
                                      int nblk, int vec, __global const float *dy, ulong dy_off,
                                      __global const float *filt, ulong f_off,
                                      __global float *dx, ulong dx_off)
{
    int gi = (int)get_global_id(0);
    if (gi >= planes * nblk)
        return;
    int p = gi / nblk, sh0 = (gi - p * nblk) * rows, sh1 = min(H, sh0 + rows);
    __global const float *gp = dy + dy_off + (size_t)p * Ho * Wo;
    __global const float *f = filt + f_off + (size_t)(p % C) * 9;
    __global float *dxp = dx + dx_off + (size_t)p * H * W;
    float fr[9];
    for (int i = 0; i < 9; i++)
        fr[i] = f[i];
    /* Vector strips m0 in 1 .. mend (dx cols 2 .. 2 mend + 15); they need
     * m0 + 8 <= Wo - 1 and must miss col W - 2 when W is odd (reflected tap). */
    int mend = vec ? min(Wo - 9, (W - 18) / 2) : 0;
    for (int sh = sh0; sh < sh1; sh++) {
        int oh[BLUR_DOWN_MAX_TAPS], kh[BLUR_DOWN_MAX_TAPS];
        int nh = blur_down_taps(sh, H, Ho, oh, kh);
        __global float *dr = dxp + (size_t)sh * W;
        __global const float *g0 = gp + (size_t)oh[0] * Wo;
        __global const float *g1 = gp + (size_t)oh[nh > 1 ? 1 : 0] * Wo;
        int q0 = kh[0] * 3, q1 = kh[nh > 1 ? 1 : 0] * 3;
        float p00 = fr[q0], p01 = fr[q0 + 1], p02 = fr[q0 + 2];
        float p10 = fr[q1], p11 = fr[q1 + 1], p12 = fr[q1 + 2];
        int sc0 = 0;
        if (mend >= 1) {
            for (int m0 = 1;; m0 += 8) {
                if (m0 > mend)
                    m0 = mend;
                float8 ev = (float8)(0.0f), od = (float8)(0.0f);
                if (nh <= 2) { /* every row but 1 and H - 2: taps hoisted */
                    blur_down_bwd_strip(g0, m0, p00, p01, p02, &ev, &od);
                    if (nh == 2)
                        blur_down_bwd_strip(g1, m0, p10, p11, p12, &ev, &od);
                } else {
                    for (int a = 0; a < nh; a++)
                        blur_down_bwd_strip(gp + (size_t)oh[a] * Wo, m0, fr[kh[a] * 3],
                                            fr[kh[a] * 3 + 1], fr[kh[a] * 3 + 2], &ev, &od);
                }
                vstore16(blur_zip8(ev, od), 0, dr + 2 * m0);
                if (m0 == mend)
                    break;
            }
            sc0 = 2 * mend + 16;
        }
        for (int sw = (mend >= 1 ? 0 : W); sw < 2; sw++) {
            int ow[BLUR_DOWN_MAX_TAPS], kw[BLUR_DOWN_MAX_TAPS];
            int nw = blur_down_taps(sw, W, Wo, ow, kw);
            float acc = 0.0f;
            for (int a = 0; a < nh; a++)
                for (int b = 0; b < nw; b++)
                    acc = fma(fr[kh[a] * 3 + kw[b]], gp[(size_t)oh[a] * Wo + ow[b]], acc);
            dr[sw] = acc;
        }
        for (int sw = sc0; sw < W; sw++) {
            int ow[BLUR_DOWN_MAX_TAPS], kw[BLUR_DOWN_MAX_TAPS];
            int nw = blur_down_taps(sw, W, Wo, ow, kw);
            float acc = 0.0f;
            for (int a = 0; a < nh; a++)
                for (int b = 0; b < nw; b++)
                    acc = fma(fr[kh[a] * 3 + kw[b]], gp[(size_t)oh[a] * Wo + ow[b]], acc);
            dr[sw] = acc;
        }
    }
}

/* Upsample, interior: y cols 2m0 .. 2m0 + 15 from x row r cols m0 - 1 ..
 * m0 + 8 through filter row (a0..a3): y[2m] gets a1 x[m] + a3 x[m - 1],
 * y[2m + 1] gets a0 x[m + 1] + a2 x[m]. */
static inline void blur_up_fwd_strip(__global const float *r, int m0, float a0, float a1,
                                     float a2, float a3, float8 *ev, float8 *od)
{
    float8 v = vload8(0, r + m0);
    float8 pv = (float8)(r[m0 - 1], v.s0123, v.s456);
    float8 nx = (float8)(v.s1234, v.s567, r[m0 + 8]);
    *ev = fma((float8)a1, v, *ev);
    *ev = fma((float8)a3, pv, *ev);
    *od = fma((float8)a0, nx, *od);
    *od = fma((float8)a2, v, *od);
}

/* One upsample output col j of input row r (replicate padding). */
static inline float blur_up_fwd_one(__global const float *r, int W, int j, float a0, float a1,
                                    float a2, float a3, float acc)
{
    int m = j >> 1;
    if ((j & 1) == 0) {
        acc = fma(a1, r[m], acc);
        return fma(a3, r[max(m - 1, 0)], acc);
    }
    acc = fma(a0, r[min(m + 1, W - 1)], acc);
    return fma(a2, r[m], acc);
}

__kernel void blur_up_forward_rows(int C, int H, int W, int planes, int rows, int nblk, int vec,
                                   __global const float *x, ulong x_off,
                                   __global const float *filt, ulong f_off,
                                   __global float *y, ulong y_off)
{
    int gi = (int)get_global_id(0);
    if (gi >= planes * nblk)
        return;
    int Ho = 2 * H, Wo = 2 * W;
    int p = gi / nblk, jh0 = (gi - p * nblk) * rows, jh1 = min(Ho, jh0 + rows);
    __global const float *xp = x + x_off + (size_t)p * H * W;
    __global const float *f = filt + f_off + (size_t)(p % C) * 16;
    __global float *yp = y + y_off + (size_t)p * Ho * Wo;
    float fr[16];
    for (int i = 0; i < 16; i++)
        fr[i] = f[i];
    int mend = vec ? W - 9 : 0; /* strips m0 in 1 .. mend need x cols m0 - 1 .. m0 + 8 */
    for (int jh = jh0; jh < jh1; jh++) {
        int m = jh >> 1;
        /* Two taps: (input row, filter row). Even rows: (m, 1), (m - 1, 3);
         * odd rows: (m + 1, 0), (m, 2); rows clamped (replicate). */
        int ra, ka, rb, kb;
        if ((jh & 1) == 0) {
            ra = m, ka = 1, rb = max(m - 1, 0), kb = 3;
        } else {
            ra = min(m + 1, H - 1), ka = 0, rb = m, kb = 2;
        }
        __global const float *xa = xp + (size_t)ra * W, *xb = xp + (size_t)rb * W;
        float a0 = fr[ka * 4], a1 = fr[ka * 4 + 1], a2 = fr[ka * 4 + 2], a3 = fr[ka * 4 + 3];
        float b0 = fr[kb * 4], b1 = fr[kb * 4 + 1], b2 = fr[kb * 4 + 2], b3 = fr[kb * 4 + 3];
        __global float *yr = yp + (size_t)jh * Wo;
        int sc0 = 0;
        if (mend >= 1) {
            for (int m0 = 1;; m0 += 8) {
                if (m0 > mend)
                    m0 = mend;
                float8 ev = (float8)(0.0f), od = (float8)(0.0f);
                blur_up_fwd_strip(xa, m0, a0, a1, a2, a3, &ev, &od);
                blur_up_fwd_strip(xb, m0, b0, b1, b2, b3, &ev, &od);
                vstore16(blur_zip8(ev, od), 0, yr + 2 * m0);
                if (m0 == mend)
                    break;
            }
            sc0 = 2 * mend + 16;
            for (int j = 0; j < 2; j++)
                yr[j] = blur_up_fwd_one(xb, W, j, b0, b1, b2, b3,
                                        blur_up_fwd_one(xa, W, j, a0, a1, a2, a3, 0.0f));
        }
        for (int j = sc0; j < Wo; j++)
            yr[j] = blur_up_fwd_one(xb, W, j, b0, b1, b2, b3,
                                    blur_up_fwd_one(xa, W, j, a0, a1, a2, a3, 0.0f));
    }
}

/* Upsample transpose, interior: dx cols s0 .. s0 + 7 from dy row g cols
 * 2s0 - 1 .. 2s0 + 16: dx[s] = a0 g[2s - 1] + a1 g[2s] + a2 g[2s + 1] + a3 g[2s + 2]. */
static inline float8 blur_up_bwd_strip(__global const float *g, int s0, float a0, float a1,
                                       float a2, float a3, float8 acc)
{
    float16 v = vload16(0, g + 2 * s0);
    float8 ev = v.even, od = v.odd;
    float8 pv = (float8)(g[2 * s0 - 1], od.s0123, od.s456);
    float8 nx = (float8)(ev.s1234, ev.s567, g[2 * s0 + 16]);
    acc = fma((float8)a0, pv, acc);
    acc = fma((float8)a1, ev, acc);
    acc = fma((float8)a2, od, acc);
    return fma((float8)a3, nx, acc);
}

__kernel void blur_up_backward_rows(int C, int H, int W, int planes, int rows, int nblk, int vec,
                                    __global const float *dy, ulong dy_off,
                                    __global const float *filt, ulong f_off,
                                    __global float *dx, ulong dx_off)
{
    int gi = (int)get_global_id(0);
    if (gi >= planes * nblk)
        return;
    int Wo = 2 * W;
    int p = gi / nblk, sh0 = (gi - p * nblk) * rows, sh1 = min(H, sh0 + rows);
    __global const float *gp = dy + dy_off + (size_t)p * (2 * H) * Wo;
    __global const float *f = filt + f_off + (size_t)(p % C) * 16;
    __global float *dxp = dx + dx_off + (size_t)p * H * W;
    float fr[16];
    for (int i = 0; i < 16; i++)
        fr[i] = f[i];
    int send = vec ? W - 9 : 0; /* strips s0 in 1 .. send: s0 + 7 <= W - 2 */
    for (int sh = sh0; sh < sh1; sh++) {
        int jh[BLUR_UP_MAX_TAPS], kh[BLUR_UP_MAX_TAPS];
        int nh = blur_up_taps(sh, H, jh, kh);
        __global float *dr = dxp + (size_t)sh * W;
        /* Rows 1 .. H - 2 read dy rows 2sh - 1 .. 2sh + 2 with taps 0 .. 3. */
        int inner = sh >= 1 && sh <= H - 2;
        __global const float *gr = gp + (size_t)(inner ? 2 * sh - 1 : 0) * Wo;
        int sc0 = 0;
        if (send >= 1) {
            for (int s0 = 1;; s0 += 8) {
                if (s0 > send)
                    s0 = send;
                float8 acc = (float8)(0.0f);
                if (inner) { /* dy rows 2sh - 1 .. 2sh + 2 through filter rows 0 .. 3 */
                    acc = blur_up_bwd_strip(gr, s0, fr[0], fr[1], fr[2], fr[3], acc);
                    acc = blur_up_bwd_strip(gr + Wo, s0, fr[4], fr[5], fr[6], fr[7], acc);
                    acc = blur_up_bwd_strip(gr + 2 * Wo, s0, fr[8], fr[9], fr[10], fr[11], acc);
                    acc = blur_up_bwd_strip(gr + 3 * Wo, s0, fr[12], fr[13], fr[14], fr[15], acc);
                } else {
                    for (int a = 0; a < nh; a++) {
                        int k = kh[a] * 4;
                        acc = blur_up_bwd_strip(gp + (size_t)jh[a] * Wo, s0, fr[k], fr[k + 1],
                                                fr[k + 2], fr[k + 3], acc);
                    }
                }
                vstore8(acc, 0, dr + s0);
                if (s0 == send)
                    break;
            }
            sc0 = send + 8;
        }
        for (int sw = (send >= 1 ? 0 : W); sw < 1; sw++) {
            int jw[BLUR_UP_MAX_TAPS], kw[BLUR_UP_MAX_TAPS];
            int nw = blur_up_taps(sw, W, jw, kw);
            float acc = 0.0f;
            for (int a = 0; a < nh; a++)
                for (int b = 0; b < nw; b++)
                    acc = fma(fr[kh[a] * 4 + kw[b]], gp[(size_t)jh[a] * Wo + jw[b]], acc);
            dr[sw] = acc;
        }
        for (int sw = sc0; sw < W; sw++) {
            int jw[BLUR_UP_MAX_TAPS], kw[BLUR_UP_MAX_TAPS];
            int nw = blur_up_taps(sw, W, jw, kw);
            float acc = 0.0f;
            for (int a = 0; a < nh; a++)
                for (int b = 0; b < nw; b++)
                    acc = fma(fr[kh[a] * 4 + kw[b]], gp[(size_t)jh[a] * Wo + jw[b]], acc);
            dr[sw] = acc;
        }
    }
}
