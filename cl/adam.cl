/* Adam (torch.optim.Adam, no weight decay, amsgrad off) on a flat parameter buffer.
 * The operation order is PyTorch 1.13's CPU float32 kernels (x86 AVX2 build), where
 *   exp_avg.mul_(b1).add_(g, alpha=1-b1)       -> m = fma(g, 1-b1, m*b1)
 *   exp_avg_sq.mul_(b2).addcmul_(g, g, 1-b2)   -> v = fma((1-b2)*g, g, v*b2)
 *   denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
 *   param.addcdiv_(exp_avg, denom, value=-step_size) -> p = p + (-step_size*m) / denom
 * (checked bitwise against torch; the fused forms are what its vectorised kernels do).
 * Contraction is off so that no other multiply-add gets fused. */
#pragma OPENCL FP_CONTRACT OFF

__kernel void adam_step(int n, __global float *p, ulong p_off, __global float *m, ulong m_off,
                        __global float *v, ulong v_off, __global const float *g, ulong g_off,
                        float beta1, float one_minus_beta1, float beta2, float one_minus_beta2,
                        float neg_step_size, float bc2_sqrt, float eps)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const float gi = g[g_off + i];
    const float mi = fma(gi, one_minus_beta1, m[m_off + i] * beta1);
    const float vi = fma(one_minus_beta2 * gi, gi, v[v_off + i] * beta2);
    const float denom = sqrt(vi) / bc2_sqrt + eps;
    m[m_off + i] = mi;
    v[v_off + i] = vi;
    p[p_off + i] = p[p_off + i] + (neg_step_size * mi) / denom;
}
