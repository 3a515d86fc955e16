/* Normalisation layers: InstanceNorm2d (optionally fused with the ReLU /
 * LeakyReLU after it), BatchNorm1d (training mode), LayerNorm.
 *
 * Row kernels (InstanceNorm planes, LayerNorm rows): one work-group per row
 * of `len` contiguous floats; local size a power of two. Each item sums a
 * strided slice in order, then a fixed tree in local memory combines them:
 * the result depends only on the shape and the local size (bitwise stable).
 * For CPUs, *_cpu variants give the same bits with one work-item per row.
 * Column kernels (BatchNorm, LayerNorm parameter gradients) over an (M, C)
 * matrix: local size (TC, TR), TC adjacent columns per group (coalesced row
 * reads), TR row slices per column combined by a fixed tree over TR.
 * Statistics: two passes (mean, then mean squared deviation), biased
 * variance, rstd = 1 / sqrt(var + eps). Barriers only outside data loops. */

#define NORM_EPS 1e-5f

#define NORM_ACT_NONE 0
#define NORM_ACT_RELU 1
#define NORM_ACT_LEAKY 2

static float norm_act(float z, int act, float slope)
{
    /* As torch.relu / leaky_relu: NaN and -0 pass through unchanged (a NaN
     * must reach the loss, where the training loop stops on it). */
    if (act == NORM_ACT_NONE || !(z < 0.0f))
        return z;
    return act == NORM_ACT_RELU ? 0.0f : z * slope;
}

/* Derivative of the activation at pre-activation z (0 counts as negative,
 * as PyTorch's ReLU / LeakyReLU backward). */
static float norm_act_grad(float z, int act, float slope)
{
    if (act == NORM_ACT_NONE || z > 0.0f)
        return 1.0f;
    return act == NORM_ACT_RELU ? 0.0f : slope;
}

/* Sum of v over the n (power of two) items of a 1D group; every item gets it.
 * Must be reached by all items of the group. */
static float norm_group_sum(__local float *red, float v, int lid, int n)
{
    red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = n >> 1; s > 0; s >>= 1) {
        if (lid < s)
            red[lid] += red[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE); /* red may be reused after return */
    return r;
}

/* Two sums at once (same tree). */
static void norm_group_sum2(__local float *ra, __local float *rb, float *a, float *b, int lid,
                            int n)
{
    ra[lid] = *a;
    rb[lid] = *b;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = n >> 1; s > 0; s >>= 1) {
        if (lid < s) {
            ra[lid] += ra[lid + s];
            rb[lid] += rb[lid + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    *a = ra[0];
    *b = rb[0];
    barrier(CLK_LOCAL_MEM_FENCE);
}

/* Column version: sums over the TR items sharing local id 0 (lx); tc columns. */
static float norm_col_sum(__local float *red, float v, int lx, int ly, int tc, int tr)
{
    red[ly * tc + lx] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = tr >> 1; s > 0; s >>= 1) {
        if (ly < s)
            red[ly * tc + lx] += red[(ly + s) * tc + lx];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = red[lx];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

static void norm_col_sum2(__local float *ra, __local float *rb, float *a, float *b, int lx, int ly,
                          int tc, int tr)
{
    ra[ly * tc + lx] = *a;
    rb[ly * tc + lx] = *b;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = tr >> 1; s > 0; s >>= 1) {
        if (ly < s) {
            ra[ly * tc + lx] += ra[(ly + s) * tc + lx];
            rb[ly * tc + lx] += rb[(ly + s) * tc + lx];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    *a = ra[lx];
    *b = rb[lx];
    barrier(CLK_LOCAL_MEM_FENCE);
}

/* ---- row kernels: InstanceNorm (act, no affine), LayerNorm (affine) ---- */

/* Row r = group id: y = act(xhat * w + b) with xhat = (x - mean) * rstd;
 * weight/bias per position in the row when affine. Saves mean, rstd. The host
 * uses affine (LayerNorm) and act (InstanceNorm) separately, never together. */
__kernel void norm_rows_forward(int len, int act, float slope, int affine,
                                __global const float *x, ulong x_off,
                                __global const float *weight, ulong w_off,
                                __global const float *bias, ulong b_off,
                                __global float *y, ulong y_off,
                                __global float *mean, ulong mean_off,
                                __global float *rstd, ulong rstd_off,
                                __local float *red)
{
    int r = (int)get_group_id(0), lid = (int)get_local_id(0), n = (int)get_local_size(0);
    __global const float *xr = x + x_off + (size_t)r * len;
    __global float *yr = y + y_off + (size_t)r * len;
    float s = 0.0f;
    for (int i = lid; i < len; i += n)
        s += xr[i];
    float mu = norm_group_sum(red, s, lid, n) / (float)len;
    float v = 0.0f;
    for (int i = lid; i < len; i += n) {
        float d = xr[i] - mu;
        v = fma(d, d, v);
    }
    float var = norm_group_sum(red, v, lid, n) / (float)len;
    float rs = 1.0f / sqrt(var + NORM_EPS);
    for (int i = lid; i < len; i += n) {
        float z = (xr[i] - mu) * rs;
        if (affine)
            z = fma(z, weight[w_off + i], bias[b_off + i]);
        yr[i] = norm_act(z, act, slope);
    }
    if (lid == 0) {
        mean[mean_off + r] = mu;
        rstd[rstd_off + r] = rs;
    }
}

/* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * w[i] when
 * affine (LayerNorm, no activation), else g = dy * act'(xhat) (InstanceNorm). */
__kernel void norm_rows_backward(int len, int act, float slope, int affine,
                                 __global const float *dy, ulong dy_off,
                                 __global const float *x, ulong x_off,
                                 __global const float *mean, ulong mean_off,
                                 __global const float *rstd, ulong rstd_off,
                                 __global const float *weight, ulong w_off,
                                 __global float *dx, ulong dx_off,
                                 __local float *ra, __local float *rb)
{
    int r = (int)get_group_id(0), lid = (int)get_local_id(0), n = (int)get_local_size(0);
    __global const float *xr = x + x_off + (size_t)r * len;
    __global const float *gr = dy + dy_off + (size_t)r * len;
    __global float *dxr = dx + dx_off + (size_t)r * len;
    float mu = mean[mean_off + r], rs = rstd[rstd_off + r];
    float a = 0.0f, b = 0.0f;
    for (int i = lid; i < len; i += n) {
        float xh = (xr[i] - mu) * rs;
        float g = gr[i] * (affine ? weight[w_off + i] : norm_act_grad(xh, act, slope));
        a += g;
        b = fma(g, xh, b);
    }
    norm_group_sum2(ra, rb, &a, &b, lid, n);
    a /= (float)len;
    b /= (float)len;
    for (int i = lid; i < len; i += n) {
        float xh = (xr[i] - mu) * rs;
        float g = gr[i] * (affine ? weight[w_off + i] : norm_act_grad(xh, act, slope));
        dxr[i] = rs * (g - a - xh * b);
    }
}

/* ---- row kernels for CPUs -------------------------------------------------
 * PoCL runs the group kernels above 3-4x below memory bandwidth (a group of
 * up to 256 items with barriers, and a serial loop per item between them).
 * These give the same bits with one work-item per row (global = rows, local
 * = 1): lane l of a group of wg items is a slot acc[l] of a private array
 * that sums the elements l, l + wg, l + 2wg, ... in that order with the same
 * operations, and the slots are combined by norm_group_sum's tree. The
 * inner loops run over wg consecutive elements (one block), so they
 * vectorise. wg is the local size the group kernel would have (a power of
 * two, at most NORM_ROWS_CPU_MAX; the host checks). */

#define NORM_ROWS_CPU_MAX 256

/* norm_group_sum's tree over the n slots of acc; acc is overwritten. */
static float norm_lanes_sum(float *acc, int n)
{
    for (int s = n >> 1; s > 0; s >>= 1)
        for (int l = 0; l < s; l++)
            acc[l] += acc[l + s];
    return acc[0];
}

/* norm_rows_forward with the local memory replaced by wg (its local size). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void norm_rows_forward_cpu(
    int len, int act, float slope, int affine, __global const float *x, ulong x_off,
    __global const float *weight, ulong w_off, __global const float *bias, ulong b_off,
    __global float *y, ulong y_off, __global float *mean, ulong mean_off, __global float *rstd,
    ulong rstd_off, int wg)
{
    int r = (int)get_global_id(0);
    __global const float *xr = x + x_off + (size_t)r * len;
    __global float *yr = y + y_off + (size_t)r * len;
    /* Blocks of wg elements start at b = 0, wg, ..., full; the last one has
     * len - full (maybe 0) elements. */
    int full = len - len % wg;
    float acc[NORM_ROWS_CPU_MAX];
    for (int l = 0; l < wg; l++)
        acc[l] = 0.0f;
    for (int b = 0; b <= full; b += wg) {
        int n = b < full ? wg : len - full;
        for (int l = 0; l < n; l++)
            acc[l] += xr[b + l];
    }
    float mu = norm_lanes_sum(acc, wg) / (float)len;
    for (int l = 0; l < wg; l++)
        acc[l] = 0.0f;
    for (int b = 0; b <= full; b += wg) {
        int n = b < full ? wg : len - full;
        for (int l = 0; l < n; l++) {
            float d = xr[b + l] - mu;
            acc[l] = fma(d, d, acc[l]);
        }
    }
    float var = norm_lanes_sum(acc, wg) / (float)len;
    float rs = 1.0f / sqrt(var + NORM_EPS);
    /* Element-wise from here: any order gives the same bits. */
    if (affine)
        for (int i = 0; i < len; i++)
            yr[i] = norm_act(fma((xr[i] - mu) * rs, weight[w_off + i], bias[b_off + i]), act,
                             slope);
    else
        for (int i = 0; i < len; i++)
            yr[i] = norm_act((xr[i] - mu) * rs, act, slope);
    mean[mean_off + r] = mu;
    rstd[rstd_off + r] = rs;
}

/* norm_rows_backward with the local memory replaced by wg (its local size). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void norm_rows_backward_cpu(
    int len, int act, float slope, int affine, __global const float *dy, ulong dy_off,
    __global const float *x, ulong x_off, __global const float *mean, ulong mean_off,
    __global const float *rstd, ulong rstd_off, __global const float *weight, ulong w_off,
    __global float *dx, ulong dx_off, int wg)
{
    int r = (int)get_global_id(0);
    __global const float *xr = x + x_off + (size_t)r * len;
    __global const float *gr = dy + dy_off + (size_t)r * len;
    __global const float *wr = weight + w_off;
    __global float *dxr = dx + dx_off + (size_t)r * len;
    float mu = mean[mean_off + r], rs = rstd[rstd_off + r];
    int full = len - len % wg; /* blocks as in norm_rows_forward_cpu */
    float acc_a[NORM_ROWS_CPU_MAX], acc_b[NORM_ROWS_CPU_MAX];
    for (int l = 0; l < wg; l++) {
        acc_a[l] = 0.0f;
        acc_b[l] = 0.0f;
    }
    for (int b = 0; b <= full; b += wg) {
        int n = b < full ? wg : len - full;
        for (int l = 0; l < n; l++) {
            float xh = (xr[b + l] - mu) * rs;
            float g = gr[b + l] * (affine ? wr[b + l] : norm_act_grad(xh, act, slope));
            acc_a[l] += g;
            acc_b[l] = fma(g, xh, acc_b[l]);
        }
    }
    float a = norm_lanes_sum(acc_a, wg), b = norm_lanes_sum(acc_b, wg);
    a /= (float)len;
    b /= (float)len;
    for (int i = 0; i < len; i++) {
        float xh = (xr[i] - mu) * rs;
        float g = gr[i] * (affine ? wr[i] : norm_act_grad(xh, act, slope));
        dxr[i] = rs * (g - a - xh * b);
    }
}

/* LayerNorm parameter gradients over the M rows of (M, C):
 * dweight[c] += sum_r dy * xhat, dbias[c] += sum_r dy. Column tiles. */
__kernel void layernorm_backward_params(int M, int C,
                                        __global const float *dy, ulong dy_off,
                                        __global const float *x, ulong x_off,
                                        __global const float *mean, ulong mean_off,
                                        __global const float *rstd, ulong rstd_off,
                                        __global float *dweight, ulong dw_off,
                                        __global float *dbias, ulong db_off,
                                        __local float *ra, __local float *rb)
{
    int lx = (int)get_local_id(0), ly = (int)get_local_id(1);
    int tc = (int)get_local_size(0), tr = (int)get_local_size(1);
    int c = (int)get_group_id(0) * tc + lx;
    float a = 0.0f, b = 0.0f;
    if (c < C)
        for (int r = ly; r < M; r += tr) {
            size_t i = (size_t)r * C + c;
            float g = dy[dy_off + i];
            float xh = (x[x_off + i] - mean[mean_off + r]) * rstd[rstd_off + r];
            a += g;
            b = fma(g, xh, b);
        }
    norm_col_sum2(ra, rb, &a, &b, lx, ly, tc, tr);
    if (c < C && ly == 0) {
        dweight[dw_off + c] += b;
        dbias[db_off + c] += a;
    }
}

/* ---- BatchNorm1d, training mode, over the rows of (M, C) ------------- */

__kernel void batchnorm_forward(int M, int C, int affine, int track, float momentum,
                                __global const float *x, ulong x_off,
                                __global const float *weight, ulong w_off,
                                __global const float *bias, ulong b_off,
                                __global float *y, ulong y_off,
                                __global float *mean, ulong mean_off,
                                __global float *rstd, ulong rstd_off,
                                __global float *run_mean, ulong rm_off,
                                __global float *run_var, ulong rv_off,
                                __local float *red)
{
    int lx = (int)get_local_id(0), ly = (int)get_local_id(1);
    int tc = (int)get_local_size(0), tr = (int)get_local_size(1);
    int c = (int)get_group_id(0) * tc + lx;
    int valid = c < C;
    float s = 0.0f;
    if (valid)
        for (int r = ly; r < M; r += tr)
            s += x[x_off + (size_t)r * C + c];
    float mu = norm_col_sum(red, s, lx, ly, tc, tr) / (float)M;
    float v = 0.0f;
    if (valid)
        for (int r = ly; r < M; r += tr) {
            float d = x[x_off + (size_t)r * C + c] - mu;
            v = fma(d, d, v);
        }
    float var = norm_col_sum(red, v, lx, ly, tc, tr) / (float)M;
    float rs = 1.0f / sqrt(var + NORM_EPS);
    if (!valid)
        return; /* no barrier below */
    float ga = affine ? weight[w_off + c] : 1.0f, be = affine ? bias[b_off + c] : 0.0f;
    for (int r = ly; r < M; r += tr) {
        size_t i = (size_t)r * C + c;
        y[y_off + i] = fma((x[x_off + i] - mu) * rs, ga, be);
    }
    if (ly == 0) {
        mean[mean_off + c] = mu;
        rstd[rstd_off + c] = rs;
        if (track) {
            float unbiased = var * ((float)M / (float)(M - 1));
            run_mean[rm_off + c] = (1.0f - momentum) * run_mean[rm_off + c] + momentum * mu;
            run_var[rv_off + c] = (1.0f - momentum) * run_var[rv_off + c] + momentum * unbiased;
        }
    }
}

/* dx = w * rstd * (dy - mean_r(dy) - xhat * mean_r(dy * xhat));
 * dweight += sum_r dy * xhat, dbias += sum_r dy (when affine). */
__kernel void batchnorm_backward(int M, int C, int affine,
                                 __global const float *dy, ulong dy_off,
                                 __global const float *x, ulong x_off,
                                 __global const float *mean, ulong mean_off,
                                 __global const float *rstd, ulong rstd_off,
                                 __global const float *weight, ulong w_off,
                                 __global float *dx, ulong dx_off,
                                 __global float *dweight, ulong dw_off,
                                 __global float *dbias, ulong db_off,
                                 __local float *ra, __local float *rb)
{
    int lx = (int)get_local_id(0), ly = (int)get_local_id(1);
    int tc = (int)get_local_size(0), tr = (int)get_local_size(1);
    int c = (int)get_group_id(0) * tc + lx;
    int valid = c < C;
    float mu = valid ? mean[mean_off + c] : 0.0f, rs = valid ? rstd[rstd_off + c] : 0.0f;
    float a = 0.0f, b = 0.0f;
    if (valid)
        for (int r = ly; r < M; r += tr) {
            size_t i = (size_t)r * C + c;
            float g = dy[dy_off + i];
            a += g;
            b = fma(g, (x[x_off + i] - mu) * rs, b);
        }
    norm_col_sum2(ra, rb, &a, &b, lx, ly, tc, tr);
    if (!valid)
        return;
    float k = (affine ? weight[w_off + c] : 1.0f) * rs;
    float ma = a / (float)M, mb = b / (float)M;
    for (int r = ly; r < M; r += tr) {
        size_t i = (size_t)r * C + c;
        float xh = (x[x_off + i] - mu) * rs;
        dx[dx_off + i] = k * (dy[dy_off + i] - ma - xh * mb);
    }
    if (affine && ly == 0) {
        dweight[dw_off + c] += b;
        dbias[db_off + c] += a;
    }
}

/* ---- BatchNorm1d split into stages (statistics over several processes) ----
 * The host sums each stage's per-column partial sums over the parts (in
 * double) and hands the global statistics to the next stage
 * (ops/norm.h: enco_batchnorm_forward_sync). Reductions as batchnorm_forward:
 * column tiles, TR row slices combined by a fixed tree. */

/* out[c] = sum_r x[r, c] (centered = 0), or sum_r (x[r, c] - mean[c])^2. */
__kernel void batchnorm_partial_stats(int M, int C, int centered,
                                      __global const float *x, ulong x_off,
                                      __global const float *mean, ulong mean_off,
                                      __global float *out, ulong out_off,
                                      __local float *red)
{
    int lx = (int)get_local_id(0), ly = (int)get_local_id(1);
    int tc = (int)get_local_size(0), tr = (int)get_local_size(1);
    int c = (int)get_group_id(0) * tc + lx;
    int valid = c < C;
    float mu = valid && centered ? mean[mean_off + c] : 0.0f;
    float s = 0.0f;
    if (valid) {
        if (centered)
            for (int r = ly; r < M; r += tr) {
                float d = x[x_off + (size_t)r * C + c] - mu;
                s = fma(d, d, s);
            }
        else
            for (int r = ly; r < M; r += tr)
                s += x[x_off + (size_t)r * C + c];
    }
    s = norm_col_sum(red, s, lx, ly, tc, tr);
    if (valid && ly == 0)
        out[out_off + c] = s;
}

/* y = (x - mean) * rstd * w + b with the given (global) statistics st (3C:
 * mean, rstd, unbiased variance), one item per element; the items of row 0
 * save mean and rstd for the backward and update the running statistics
 * (track). */
__kernel void batchnorm_apply(int M, int C, int affine, int track, float momentum,
                              __global const float *x, ulong x_off,
                              __global const float *weight, ulong w_off,
                              __global const float *bias, ulong b_off,
                              __global const float *st, ulong st_off,
                              __global float *y, ulong y_off,
                              __global float *mean, ulong mean_off,
                              __global float *rstd, ulong rstd_off,
                              __global float *run_mean, ulong rm_off,
                              __global float *run_var, ulong rv_off)
{
    size_t i = get_global_id(0);
    if (i >= (size_t)M * C)
        return;
    int c = (int)(i % (size_t)C);
    float mu = st[st_off + c], rs = st[st_off + C + c];
    float ga = affine ? weight[w_off + c] : 1.0f, be = affine ? bias[b_off + c] : 0.0f;
    y[y_off + i] = fma((x[x_off + i] - mu) * rs, ga, be);
    if (i >= (size_t)C)
        return;
    mean[mean_off + c] = mu;
    rstd[rstd_off + c] = rs;
    if (track) {
        float unbiased = st[st_off + 2 * C + c];
        run_mean[rm_off + c] = (1.0f - momentum) * run_mean[rm_off + c] + momentum * mu;
        run_var[rv_off + c] = (1.0f - momentum) * run_var[rv_off + c] + momentum * unbiased;
    }
}

/* out[c] = sum_r dy, out[C + c] = sum_r dy * xhat over this part's rows;
 * dbias[c] += the first, dweight[c] += the second (affine). */
__kernel void batchnorm_partial_grads(int M, int C, int affine,
                                      __global const float *dy, ulong dy_off,
                                      __global const float *x, ulong x_off,
                                      __global const float *mean, ulong mean_off,
                                      __global const float *rstd, ulong rstd_off,
                                      __global float *out, ulong out_off,
                                      __global float *dweight, ulong dw_off,
                                      __global float *dbias, ulong db_off,
                                      __local float *ra, __local float *rb)
{
    int lx = (int)get_local_id(0), ly = (int)get_local_id(1);
    int tc = (int)get_local_size(0), tr = (int)get_local_size(1);
    int c = (int)get_group_id(0) * tc + lx;
    int valid = c < C;
    float mu = valid ? mean[mean_off + c] : 0.0f, rs = valid ? rstd[rstd_off + c] : 0.0f;
    float a = 0.0f, b = 0.0f;
    if (valid)
        for (int r = ly; r < M; r += tr) {
            size_t i = (size_t)r * C + c;
            float g = dy[dy_off + i];
            a += g;
            b = fma(g, (x[x_off + i] - mu) * rs, b);
        }
    norm_col_sum2(ra, rb, &a, &b, lx, ly, tc, tr);
    if (!valid || ly != 0)
        return;
    out[out_off + c] = a;
    out[out_off + C + c] = b;
    if (affine) {
        dweight[dw_off + c] += b;
        dbias[db_off + c] += a;
    }
}

/* dx = w * rstd * (dy - ma - xhat * mb), ma = gm[c] and mb = gm[C + c] the
 * global means of dy and dy * xhat over every part's rows. */
__kernel void batchnorm_apply_grads(int M, int C, int affine,
                                    __global const float *dy, ulong dy_off,
                                    __global const float *x, ulong x_off,
                                    __global const float *mean, ulong mean_off,
                                    __global const float *rstd, ulong rstd_off,
                                    __global const float *weight, ulong w_off,
                                    __global const float *gm, ulong gm_off,
                                    __global float *dx, ulong dx_off)
{
    size_t i = get_global_id(0);
    if (i >= (size_t)M * C)
        return;
    int c = (int)(i % (size_t)C);
    float mu = mean[mean_off + c], rs = rstd[rstd_off + c];
    float k = (affine ? weight[w_off + c] : 1.0f) * rs;
    float xh = (x[x_off + i] - mu) * rs;
    dx[dx_off + i] = k * (dy[dy_off + i] - gm[gm_off + c] - xh * gm[gm_off + C + c]);
}
