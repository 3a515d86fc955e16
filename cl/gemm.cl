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

/* Register-tiled SGEMM for CPU devices (PoCL): one work-item computes a
 * GT_MR x 16 block of C with 2 * GT_MR float8 accumulators, broadcasting one
 * element of op(A) per row against two float8 of B per k. Work-groups of one
 * item: the SIMD width comes from the float8 types, not from PoCL's
 * work-item loop vectoriser. op(B) must be B itself (no transpose: rows of B
 * are contiguous); op(A) is addressed through strides, so A and A^T are the
 * same code. Every element of C sums k in order with fma and is scaled
 * exactly as in gemm_builtin, so both kernels give the same bits.
 * Global size (ceil(M / GT_MR), ceil(N / 16), batch); dimension 0 runs over
 * the row blocks so that consecutive work-groups reuse one panel of B. */
#define GT_MR 6

#define GT_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void gemm_tile(
    int ta, int M, int N, int K, float alpha, __global const float *A, ulong a_off, int lda,
    ulong stride_a, __global const float *B, ulong b_off, int ldb, ulong stride_b, float beta,
    __global float *C, ulong c_off, int ldc, ulong stride_c)
{
    const int i0 = (int)get_global_id(0) * GT_MR;
    const int j0 = (int)get_global_id(1) * 16;
    const size_t batch = get_global_id(2);
    if (i0 >= M || j0 >= N)
        return;
    __global const float *a = A + a_off + batch * stride_a;
    __global const float *b = B + b_off + batch * stride_b;
    __global float *c = C + c_off + batch * stride_c;
    /* op(A)[i, k] = a[i * rs + k * ks]; rows past M repeat row M - 1. */
    const size_t rs = ta ? 1 : (size_t)lda, ks = ta ? (size_t)lda : 1;
#define GT_DECL(r)                                                                   \
    __global const float *ar##r = a + (size_t)min(i0 + r, M - 1) * rs;               \
    float8 c##r##a = (float8)(0.0f), c##r##b = (float8)(0.0f);
    GT_ROWS(GT_DECL)
#define GT_FMA(r)                                                                    \
    {                                                                                \
        const float8 av = (float8)(ar##r[(size_t)k * ks]);                           \
        c##r##a = fma(av, b0, c##r##a);                                              \
        c##r##b = fma(av, b1, c##r##b);                                              \
    }
    if (j0 + 16 <= N) {
        for (int k = 0; k < K; k++) {
            __global const float *bk = b + (size_t)k * ldb + j0;
            const float8 b0 = vload8(0, bk), b1 = vload8(1, bk);
            GT_ROWS(GT_FMA)
        }
    } else {
        for (int k = 0; k < K; k++) {
            __global const float *bk = b + (size_t)k * ldb;
            float t[16];
            for (int j = 0; j < 16; j++)
                t[j] = j0 + j < N ? bk[j0 + j] : 0.0f;
            const float8 b0 = vload8(0, t), b1 = vload8(1, t);
            GT_ROWS(GT_FMA)
        }
    }
#define GT_STORE(r)                                                                  \
    if (i0 + r < M) {                                                                \
        float t[16];                                                                 \
        vstore8(c##r##a, 0, t);                                                      \
        vstore8(c##r##b, 1, t);                                                      \
        __global float *cr = c + (size_t)(i0 + r) * ldc + j0;                        \
        for (int j = 0; j < 16 && j0 + j < N; j++)                                   \
            cr[j] = beta == 0.0f ? alpha * t[j] : alpha * t[j] + beta * cr[j];       \
    }
    GT_ROWS(GT_STORE)
#undef GT_DECL
#undef GT_FMA
#undef GT_STORE
}
