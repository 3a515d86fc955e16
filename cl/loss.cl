/* Losses: every loss computes its scalar on the device (deterministic, fixed-order
 * reductions in local memory) and, optionally, the gradient w.r.t. its input.
 * Work-group sizes are powers of two chosen by the launchers (src/ops/loss.c). */

/* Sums buf[0..L) into buf[0] by a fixed binary tree; every work-item of the group
 * must call it (the loop trip count is the same for all of them). */
static void loss_tree_sum(__local float *buf, int lid, int L)
{
    for (int s = L / 2; s > 0; s >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < s)
            buf[lid] += buf[lid + s];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

static void loss_tree_max(__local float *buf, int lid, int L)
{
    for (int s = L / 2; s > 0; s >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < s)
            buf[lid] = fmax(buf[lid], buf[lid + s]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

/* LSGAN partial sums: partial[g] = sum over this group's elements of (x - target)^2;
 * grad[i] = (x[i] - target) * gscale when has_grad (gscale = 2 * scale / n).
 * Elements are dealt grid-stride: group g, item l takes g*L + l, then + L*G, ... */
__kernel void loss_lsgan_partial(int n, __global const float *x, ulong x_off, float target,
                                 __global float *grad, ulong grad_off, int has_grad, float gscale,
                                 __global float *partial, ulong part_off, __local float *buf)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    const int stride = L * get_num_groups(0);
    float acc = 0.0f;
    for (int i = get_group_id(0) * L + lid; i < n; i += stride) {
        float d = x[x_off + i] - target;
        acc += d * d;
        if (has_grad)
            grad[grad_off + i] = d * gscale;
    }
    buf[lid] = acc;
    loss_tree_sum(buf, lid, L);
    if (lid == 0)
        partial[part_off + get_group_id(0)] = buf[0];
}

/* L1 partial sums of |x - y|; grad[i] = sign(x - y) * gscale (sign 0 at 0 and for NaN). */
__kernel void loss_l1_partial(int n, __global const float *x, ulong x_off, __global const float *y,
                              ulong y_off, __global float *grad, ulong grad_off, int has_grad,
                              float gscale, __global float *partial, ulong part_off,
                              __local float *buf)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    const int stride = L * get_num_groups(0);
    float acc = 0.0f;
    for (int i = get_group_id(0) * L + lid; i < n; i += stride) {
        float d = x[x_off + i] - y[y_off + i];
        acc += fabs(d);
        if (has_grad)
            grad[grad_off + i] = d > 0.0f ? gscale : (d < 0.0f ? -gscale : 0.0f);
    }
    buf[lid] = acc;
    loss_tree_sum(buf, lid, L);
    if (lid == 0)
        partial[part_off + get_group_id(0)] = buf[0];
}

/* One work-group: out = (sum of partial[0..count)) / divisor. */
__kernel void loss_finish(int count, __global const float *partial, ulong part_off, float divisor,
                          __global float *out, ulong out_off, __local float *buf)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    float acc = 0.0f;
    for (int i = lid; i < count; i += L)
        acc += partial[part_off + i];
    buf[lid] = acc;
    loss_tree_sum(buf, lid, L);
    if (lid == 0)
        out[out_off] = buf[0] / divisor;
}

/* EnCo, one work-group per row i of q, k (M, D):
 *   cos_i = (q.k) / (max(|q|, eps) * max(|k|, eps))      (PyTorch 1.13 cosine_similarity)
 *   rowloss[i] = 2 - 2 cos_i
 *   grad_q[i] = gscale * (-(k / (n1 n2)) + cos_i * q / n1^2),  n1, n2 the clamped norms,
 * gscale = 2 * scale / M (the autograd gradient of 1.13, whose clamp is invisible to autograd). */
__kernel void loss_enco_rows(int M, int D, __global const float *q, ulong q_off,
                             __global const float *k, ulong k_off, float eps, float gscale,
                             __global float *grad, ulong grad_off, int has_grad,
                             __global float *rowloss, ulong row_off, __local float *buf)
{
    const int row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    if (row >= M)
        return; /* whole group */
    __global const float *qr = q + q_off + (size_t)row * D;
    __global const float *kr = k + k_off + (size_t)row * D;
    float s12 = 0.0f, s11 = 0.0f, s22 = 0.0f;
    for (int d = lid; d < D; d += L) {
        float a = qr[d], b = kr[d];
        s12 += a * b;
        s11 += a * a;
        s22 += b * b;
    }
    __local float *b12 = buf, *b11 = buf + L, *b22 = buf + 2 * L;
    b12[lid] = s12;
    b11[lid] = s11;
    b22[lid] = s22;
    for (int s = L / 2; s > 0; s >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < s) {
            b12[lid] += b12[lid + s];
            b11[lid] += b11[lid + s];
            b22[lid] += b22[lid + s];
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const float n1 = fmax(sqrt(b11[0]), eps), n2 = fmax(sqrt(b22[0]), eps);
    const float cosv = b12[0] / (n1 * n2);
    if (lid == 0)
        rowloss[row_off + row] = 2.0f - 2.0f * cosv;
    if (has_grad) {
        const float ca = -gscale / (n1 * n2), cb = gscale * cosv / (n1 * n1);
        __global float *gr = grad + grad_off + (size_t)row * D;
        for (int d = lid; d < D; d += L)
            gr[d] = ca * kr[d] + cb * qr[d];
    }
}

/* PatchNCE, one work-group per row i (group b = i / Kq, query r = first + i % Kq of its
 * group's K keys). S holds, for each group, the Kq x K matrix q_b k_b^T, so row i of S (at
 * i*K) is q_i . k_j of its group and S[i][r] is l_pos. Logits z = [l_pos, l_neg_0..l_neg_{K-1}]
 * / tau with l_neg_r = -10. rowloss[i] = logsumexp(z) - z_0 (cross-entropy with target 0).
 * With has_grad the row is overwritten by dL/dS scaled: P[i][j] = gscale * (softmax_{j+1}),
 * P[i][r] = gscale * (softmax_0 - 1), gscale = scale / (M * tau); the launcher then forms
 * grad = P k. A whole group's queries: Kq = K, first = 0. */
__kernel void loss_patchnce_rows(int M, int Kq, int K, int first, float tau, float gscale,
                                 __global float *S, ulong s_off, int has_grad,
                                 __global float *rowloss, ulong row_off, __local float *buf)
{
    const int row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    if (row >= M)
        return; /* whole group */
    const int r = first + row % Kq;
    __global float *Sr = S + s_off + (size_t)row * K;
    const float z0 = Sr[r] / tau;
    const float zmask = -10.0f / tau;
    float mx = -INFINITY;
    for (int c = lid; c <= K; c += L) {
        float z = c == 0 ? z0 : (c - 1 == r ? zmask : Sr[c - 1] / tau);
        mx = fmax(mx, z);
    }
    buf[lid] = mx;
    loss_tree_max(buf, lid, L);
    mx = buf[0];
    barrier(CLK_LOCAL_MEM_FENCE); /* everyone has read buf[0] before it is reused */
    float se = 0.0f;
    for (int c = lid; c <= K; c += L) {
        float z = c == 0 ? z0 : (c - 1 == r ? zmask : Sr[c - 1] / tau);
        se += exp(z - mx);
    }
    buf[lid] = se;
    loss_tree_sum(buf, lid, L);
    se = buf[0];
    if (lid == 0)
        rowloss[row_off + row] = -((z0 - mx) - log(se));
    if (has_grad) {
        /* Every read of Sr above (by any item of the group) happens before these writes. */
        barrier(CLK_GLOBAL_MEM_FENCE);
        for (int j = lid; j < K; j += L) {
            float p = j == r ? exp(z0 - mx) / se - 1.0f : exp(Sr[j] / tau - mx) / se;
            Sr[j] = p * gscale;
        }
    }
}

/* Row normalisation of PyTorch 1.13's cosine_similarity, one work-group per row of x (M, D):
 * xh = x / n with n = max(|x|, eps); norms[n_off + row] = n when has_norm. */
__kernel void loss_l2_rows(int M, int D, __global const float *x, ulong x_off, float eps,
                           __global float *xh, ulong xh_off, int has_norm,
                           __global float *norms, ulong n_off, __local float *buf)
{
    const int row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    if (row >= M)
        return; /* whole group */
    __global const float *xr = x + x_off + (size_t)row * D;
    float s = 0.0f;
    for (int d = lid; d < D; d += L)
        s += xr[d] * xr[d];
    buf[lid] = s;
    loss_tree_sum(buf, lid, L);
    const float n = fmax(sqrt(buf[0]), eps);
    __global float *hr = xh + xh_off + (size_t)row * D;
    for (int d = lid; d < D; d += L)
        hr[d] = xr[d] / n;
    if (has_norm && lid == 0)
        norms[n_off + row] = n;
}

/* The cos PatchNCE's chain back through qh = q / n1 (n1 clamped, a constant to PyTorch 1.13's
 * autograd), one work-group per row, in place: on entry grad holds g = dL/dqh, on exit
 * dL/dq = (g - (g . qh) qh) / n1. Each item rewrites only the elements it read. */
__kernel void loss_cos_chain_rows(int M, int D, __global float *grad, ulong grad_off,
                                  __global const float *qh, ulong qh_off,
                                  __global const float *norms, ulong n_off, __local float *buf)
{
    const int row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    if (row >= M)
        return; /* whole group */
    __global float *gr = grad + grad_off + (size_t)row * D;
    __global const float *hr = qh + qh_off + (size_t)row * D;
    float s = 0.0f;
    for (int d = lid; d < D; d += L)
        s += gr[d] * hr[d];
    buf[lid] = s;
    loss_tree_sum(buf, lid, L);
    const float gh = buf[0], n1 = norms[n_off + row];
    for (int d = lid; d < D; d += L)
        gr[d] = (gr[d] - gh * hr[d]) / n1;
}

/* out = sum_{i < count} w_i * l_i, in order i = 0, 1, ... (one work-item; out may alias an
 * input, all inputs are read first). */
__kernel void loss_combine(int count, __global float *out, ulong out_off,
                           __global const float *l0, ulong o0, float w0,
                           __global const float *l1, ulong o1, float w1,
                           __global const float *l2, ulong o2, float w2,
                           __global const float *l3, ulong o3, float w3,
                           __global const float *l4, ulong o4, float w4,
                           __global const float *l5, ulong o5, float w5,
                           __global const float *l6, ulong o6, float w6,
                           __global const float *l7, ulong o7, float w7)
{
    if (get_global_id(0) != 0)
        return;
    float acc = w0 * l0[o0];
    if (count > 1) acc += w1 * l1[o1];
    if (count > 2) acc += w2 * l2[o2];
    if (count > 3) acc += w3 * l3[o3];
    if (count > 4) acc += w4 * l4[o4];
    if (count > 5) acc += w5 * l5[o5];
    if (count > 6) acc += w6 * l6[o6];
    if (count > 7) acc += w7 * l7[o7];
    out[out_off] = acc;
}
