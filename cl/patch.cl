/* EnCo patch plumbing: gather / scatter-add of sampled positions, per-row L2
 * normalisation and bilinear resizing. Offsets are in elements (floats, or
 * ints for the index and flag buffers). */

#pragma OPENCL FP_CONTRACT OFF

/* Records a bad index: *flag = max(*flag, pos + 1), so any bad entry leaves
 * the flag non-zero and it names the last bad position. */
static inline void patch_flag_bad(__global int *flag, ulong flag_off, int use_flag, size_t pos)
{
    if (use_flag)
        atomic_max((volatile __global int *)(flag + flag_off), (int)(pos + 1));
}

/* rows[(n*K + k)*C + c] = feat[n, c, idx[n, k]]. One work-item per output
 * element (c fastest, so writes are contiguous). An index outside [0, hw)
 * yields 0 and sets the flag. */
__kernel void patch_gather_fwd(ulong total, int C, int K, int hw, __global float *rows,
                               ulong rows_off, __global const float *feat, ulong feat_off,
                               __global const int *idx, ulong idx_off, int use_flag,
                               __global int *flag, ulong flag_off)
{
    size_t g = get_global_id(0);
    if (g >= total)
        return;
    size_t row = g / (size_t)C;
    int c = (int)(g - row * (size_t)C);
    size_t n = row / (size_t)K;
    int i = idx[idx_off + row];
    float v = 0.0f;
    if (i >= 0 && i < hw)
        v = feat[feat_off + (n * (size_t)C + (size_t)c) * (size_t)hw + (size_t)i];
    else if (c == 0)
        patch_flag_bad(flag, flag_off, use_flag, row);
    rows[rows_off + g] = v;
}

/* dfeat[n, c, idx[n, k]] += drows[(n*K + k)*C + c] for k = 0..K-1 in order.
 * One work-item per (n, c) plane: the planes are disjoint, so there are no
 * races and no atomics, repeated indices accumulate in k order, and the
 * result is bitwise reproducible. Bad indices are skipped and flagged. */
__kernel void patch_gather_bwd(int N, int C, int K, int hw, __global float *dfeat,
                               ulong dfeat_off, __global const float *drows, ulong drows_off,
                               __global const int *idx, ulong idx_off, int use_flag,
                               __global int *flag, ulong flag_off)
{
    size_t g = get_global_id(0);
    if (g >= (size_t)N * (size_t)C)
        return;
    size_t n = g / (size_t)C;
    size_t c = g - n * (size_t)C;
    __global float *plane = dfeat + dfeat_off + g * (size_t)hw;
    __global const int *ix = idx + idx_off + n * (size_t)K;
    __global const float *src = drows + drows_off + n * (size_t)K * (size_t)C + c;
    for (int k = 0; k < K; k++) {
        int i = ix[k];
        if (i >= 0 && i < hw)
            plane[i] += src[(size_t)k * (size_t)C];
        else if (c == 0)
            patch_flag_bad(flag, flag_off, use_flag, n * (size_t)K + (size_t)k);
    }
}

/* Sum of buf[0..L) for a power-of-two L = get_local_size(0), tree order
 * fixed; every item of the group gets the result. */
static inline float patch_group_sum(__local float *buf, float v)
{
    int lid = (int)get_local_id(0);
    int L = (int)get_local_size(0);
    buf[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = L / 2; s > 0; s >>= 1) {
        if (lid < s)
            buf[lid] += buf[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = buf[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* y = x / (||x||_2 + eps) per row of D. One work-group per row. */
__kernel void patch_l2norm_fwd(int D, float eps, __global float *y, ulong y_off,
                               __global const float *x, ulong x_off, __local float *buf)
{
    size_t r = get_group_id(0);
    int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    __global const float *xr = x + x_off + r * (size_t)D;
    __global float *yr = y + y_off + r * (size_t)D;
    float s = 0.0f;
    for (int j = lid; j < D; j += L)
        s += xr[j] * xr[j];
    float d = sqrt(patch_group_sum(buf, s)) + eps;
    for (int j = lid; j < D; j += L)
        yr[j] = xr[j] / d;
}

/* dx = dy / d - x * (dy . x) / (d^2 * s), s = ||x||, d = s + eps; for an
 * all-zero row the second term is taken as 0 (dx = dy / eps). */
__kernel void patch_l2norm_bwd(int D, float eps, __global float *dx, ulong dx_off,
                               __global const float *dy, ulong dy_off, __global const float *x,
                               ulong x_off, __local float *buf)
{
    size_t r = get_group_id(0);
    int lid = (int)get_local_id(0), L = (int)get_local_size(0);
    __global const float *xr = x + x_off + r * (size_t)D;
    __global const float *gr = dy + dy_off + r * (size_t)D;
    __global float *dr = dx + dx_off + r * (size_t)D;
    float ss = 0.0f, gx = 0.0f;
    for (int j = lid; j < D; j += L) {
        float xv = xr[j];
        ss += xv * xv;
        gx += gr[j] * xv;
    }
    ss = patch_group_sum(buf, ss);
    gx = patch_group_sum(buf, gx);
    float s = sqrt(ss);
    float d = s + eps;
    float coef = s > 0.0f ? gx / (d * d * s) : 0.0f;
    for (int j = lid; j < D; j += L)
        dr[j] = gr[j] / d - xr[j] * coef;
}

/* Source index and weight of one axis, as PyTorch's upsample_bilinear2d with
 * align_corners=False: src = max(scale * (dst + 0.5) - 0.5, 0),
 * i0 = min(floor(src), in - 1), i1 = i0 + (i0 < in - 1), lambda = src - i0
 * clamped to [0, 1]. */
static inline void patch_axis(int dst, int in, float scale, int *i0, int *i1, float *l1)
{
    float src = scale * ((float)dst + 0.5f) - 0.5f;
    if (src < 0.0f)
        src = 0.0f;
    int a = (int)floor(src);
    if (a > in - 1)
        a = in - 1;
    float l = src - (float)a;
    *l1 = l < 0.0f ? 0.0f : (l > 1.0f ? 1.0f : l);
    *i0 = a;
    *i1 = a + (a < in - 1 ? 1 : 0);
}

/* (N, C, h, w) -> (N, C, H, W); one work-item per output element. */
__kernel void patch_bilinear_fwd(ulong total, int h, int w, int H, int W, float scale_h,
                                 float scale_w, __global float *y, ulong y_off,
                                 __global const float *x, ulong x_off)
{
    size_t g = get_global_id(0);
    if (g >= total)
        return;
    /* Remainders by subtraction: a div/rem pair becomes an LLVM `freeze`
     * that Oclgrind 21.10 cannot run. */
    size_t t = g / (size_t)W;
    int ox = (int)(g - t * (size_t)W);
    size_t plane = t / (size_t)H;
    int oy = (int)(t - plane * (size_t)H);
    int y0, y1, x0, x1;
    float ly, lx;
    patch_axis(oy, h, scale_h, &y0, &y1, &ly);
    patch_axis(ox, w, scale_w, &x0, &x1, &lx);
    __global const float *p = x + x_off + plane * (size_t)h * (size_t)w;
    float top = (1.0f - lx) * p[y0 * w + x0] + lx * p[y0 * w + x1];
    float bot = (1.0f - lx) * p[y1 * w + x0] + lx * p[y1 * w + x1];
    y[y_off + g] = (1.0f - ly) * top + ly * bot;
}
