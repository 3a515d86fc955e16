/* Built-in SGEMM: one work-item per element of C, K summed in order.
 * Slow but exact in its reduction order and free of CLBlast; used on devices
 * where CLBlast cannot run (Oclgrind) or when ENCO_GEMM=builtin.
 * Row-major; ta/tb select op(A) = A^T / op(B) = B^T. Global size (N, M, batch). */
__kernel void gemm_builtin(int ta, int tb, int M, int N, int K, float alpha,
                           __global const float *A, ulong a_off, int lda, ulong stride_a,
                           __global const float *B, ulong b_off, int ldb, ulong stride_b,
                           float beta, __global float *C, ulong c_off, int ldc, ulong stride_c)
{
    int col = (int)get_global_id(0);
    int row = (int)get_global_id(1);
    size_t batch = get_global_id(2);
    if (col >= N || row >= M)
        return;
    __global const float *a = A + a_off + batch * stride_a;
    __global const float *b = B + b_off + batch * stride_b;
    __global float *c = C + c_off + batch * stride_c;
    float acc = 0.0f;
    for (int k = 0; k < K; k++) {
        float av = ta ? a[(size_t)k * lda + row] : a[(size_t)row * lda + k];
        float bv = tb ? b[(size_t)col * ldb + k] : b[(size_t)k * ldb + col];
        acc = fma(av, bv, acc);
    }
    size_t ci = (size_t)row * ldc + col;
    /* beta == 0 must not read C (it may hold anything). */
    c[ci] = beta == 0.0f ? alpha * acc : alpha * acc + beta * c[ci];
}
