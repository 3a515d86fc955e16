/* Elementwise activations and small vector helpers on flat float buffers.
 * One work-item per element; offsets are in elements. Every kernel may run
 * in place (output and input the same buffer and offset): each work-item
 * reads its own element before writing it. For CPUs, *_cpu variants of
 * some (at the end) take a block of elements per work-item. */

/* No a*b+c contraction: results do not depend on the compiler's fusing
 * choices, and Oclgrind's uninitialised-value check does not understand the
 * fused intrinsic (it reports every fused result as uninitialised). */
#pragma OPENCL FP_CONTRACT OFF

#define ACT_GUARD(i, n)              \
    size_t i = get_global_id(0);     \
    if (i >= (n))                    \
        return;

/* ReLU: y = x < 0 ? 0 : x (NaN and -0 pass through, as torch.relu). */
__kernel void act_relu_fwd(ulong n, __global float *y, ulong y_off, __global const float *x,
                           ulong x_off)
{
    ACT_GUARD(i, n)
    float v = x[x_off + i];
    y[y_off + i] = v < 0.0f ? 0.0f : v;
}

/* dx = x > 0 ? dy : 0 (gradient 0 at x == 0, as PyTorch). x may be the
 * ReLU's input or its output: both give the same mask. */
__kernel void act_relu_bwd(ulong n, __global float *dx, ulong dx_off, __global const float *dy,
                           ulong dy_off, __global const float *x, ulong x_off)
{
    ACT_GUARD(i, n)
    dx[dx_off + i] = x[x_off + i] > 0.0f ? dy[dy_off + i] : 0.0f;
}

/* LeakyReLU: y = x > 0 ? x : slope * x. */
__kernel void act_leaky_fwd(ulong n, float slope, __global float *y, ulong y_off,
                            __global const float *x, ulong x_off)
{
    ACT_GUARD(i, n)
    float v = x[x_off + i];
    y[y_off + i] = v > 0.0f ? v : slope * v;
}

/* dx = x > 0 ? dy : slope * dy (slope at x == 0, as PyTorch). */
__kernel void act_leaky_bwd(ulong n, float slope, __global float *dx, ulong dx_off,
                            __global const float *dy, ulong dy_off, __global const float *x,
                            ulong x_off)
{
    ACT_GUARD(i, n)
    float g = dy[dy_off + i];
    dx[dx_off + i] = x[x_off + i] > 0.0f ? g : slope * g;
}

__kernel void act_tanh_fwd(ulong n, __global float *y, ulong y_off, __global const float *x,
                           ulong x_off)
{
    ACT_GUARD(i, n)
    y[y_off + i] = tanh(x[x_off + i]);
}

/* dx = dy * (1 - y^2) from the saved output y. */
__kernel void act_tanh_bwd(ulong n, __global float *dx, ulong dx_off, __global const float *dy,
                           ulong dy_off, __global const float *y, ulong y_off)
{
    ACT_GUARD(i, n)
    float t = y[y_off + i];
    dx[dx_off + i] = dy[dy_off + i] * (1.0f - t * t);
}

/* out = a + b. */
__kernel void act_add_fwd(ulong n, __global float *out, ulong out_off, __global const float *a,
                          ulong a_off, __global const float *b, ulong b_off)
{
    ACT_GUARD(i, n)
    out[out_off + i] = a[a_off + i] + b[b_off + i];
}

/* da = dy and db = dy; has_a / has_b select which are written. */
__kernel void act_add_bwd(ulong n, int has_a, __global float *da, ulong da_off, int has_b,
                          __global float *db, ulong db_off, __global const float *dy, ulong dy_off)
{
    ACT_GUARD(i, n)
    float g = dy[dy_off + i];
    if (has_a)
        da[da_off + i] = g;
    if (has_b)
        db[db_off + i] = g;
}

/* y += alpha * x. */
__kernel void act_axpy(ulong n, __global float *y, ulong y_off, float alpha,
                       __global const float *x, ulong x_off)
{
    ACT_GUARD(i, n)
    y[y_off + i] += alpha * x[x_off + i];
}

__kernel void act_fill(ulong n, __global float *y, ulong y_off, float value)
{
    ACT_GUARD(i, n)
    y[y_off + i] = value;
}

__kernel void act_scale(ulong n, __global float *y, ulong y_off, float alpha)
{
    ACT_GUARD(i, n)
    y[y_off + i] = alpha * y[y_off + i];
}

/* ---- block kernels for CPUs ------------------------------------------------
 * PoCL pays a fixed cost per work-group, and the kernels above have one per
 * 256 elements (30k groups for a 64x255x255 pair of images). These do the
 * same operation per element with one work-item per block of ACT_BLOCK
 * elements (global = blocks, local = 1), eight at a time through float8
 * loads. The operations per element are those above, so the bits are too.
 * vload8 before vstore8 keeps the in-place case (same buffer and offset)
 * right; partial overlaps are rejected by the host. */

#define ACT_BLOCK 4096

/* [i, end): this work-item's block of the n elements. */
#define ACT_BLOCK_RANGE(i, end, n)                                        \
    size_t i = get_global_id(0) * ACT_BLOCK;                              \
    size_t end = (n) - i < ACT_BLOCK ? (n) : i + ACT_BLOCK;

/* act_leaky_fwd. */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void act_leaky_fwd_cpu(
    ulong n, float slope, __global float *y, ulong y_off, __global const float *x, ulong x_off)
{
    ACT_BLOCK_RANGE(i, end, n)
    for (; i + 8 <= end; i += 8) {
        float8 v = vload8(0, x + x_off + i);
        vstore8(select(slope * v, v, v > 0.0f), 0, y + y_off + i);
    }
    for (; i < end; i++) {
        float v = x[x_off + i];
        y[y_off + i] = v > 0.0f ? v : slope * v;
    }
}

/* act_leaky_bwd. */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void act_leaky_bwd_cpu(
    ulong n, float slope, __global float *dx, ulong dx_off, __global const float *dy,
    ulong dy_off, __global const float *x, ulong x_off)
{
    ACT_BLOCK_RANGE(i, end, n)
    for (; i + 8 <= end; i += 8) {
        float8 g = vload8(0, dy + dy_off + i);
        vstore8(select(slope * g, g, vload8(0, x + x_off + i) > 0.0f), 0, dx + dx_off + i);
    }
    for (; i < end; i++) {
        float g = dy[dy_off + i];
        dx[dx_off + i] = x[x_off + i] > 0.0f ? g : slope * g;
    }
}

/* act_add_fwd. */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void act_add_fwd_cpu(
    ulong n, __global float *out, ulong out_off, __global const float *a, ulong a_off,
    __global const float *b, ulong b_off)
{
    ACT_BLOCK_RANGE(i, end, n)
    for (; i + 8 <= end; i += 8)
        vstore8(vload8(0, a + a_off + i) + vload8(0, b + b_off + i), 0, out + out_off + i);
    for (; i < end; i++)
        out[out_off + i] = a[a_off + i] + b[b_off + i];
}

/* act_axpy. */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void act_axpy_cpu(
    ulong n, __global float *y, ulong y_off, float alpha, __global const float *x, ulong x_off)
{
    ACT_BLOCK_RANGE(i, end, n)
    for (; i + 8 <= end; i += 8)
        vstore8(vload8(0, y + y_off + i) + alpha * vload8(0, x + x_off + i), 0, y + y_off + i);
    for (; i < end; i++)
        y[y_off + i] += alpha * x[x_off + i];
}
