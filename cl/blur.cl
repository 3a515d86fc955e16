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
