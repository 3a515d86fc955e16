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

/* No longer dispatched (src/cl/gemm.c uses the packed kernels below); kept
 * for tests/test_conv.c gemm_tile_matches_reference, which launches it by name.
 * Register-tiled SGEMM for CPU devices (PoCL): one work-item computes a
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

/* Packed SGEMM for CPU devices (PoCL), in three kernels:
 *   gemm_pack_a  op(A) (M x K) -> Ap: panels of GA_MR rows, k-major
 *                (Ap[q][panel][k][GA_MR]), rows past M zero;
 *   gemm_pack_b  a block of op(B) (kc rows from k0, columns from j0) -> Bp:
 *                panels of GP_NR columns, k-major (Bp[q][panel][k][GP_NR]),
 *                columns past N zero;
 *   gemm_packed  one work-item per GA_MR x GP_NR block of C, reading its A
 *                and B panels as contiguous streams.
 * Packed panels are contiguous, so the hardware prefetcher follows them and
 * no cache set or TLB entry is thrashed by a large leading dimension (rows of
 * B 16 KiB apart map to the same L1 set). The host (src/cl/gemm.c) packs B
 * in column chunks that stay in the last-level cache and, for a very long K,
 * splits K in blocks whose raw partial sums go through a scratch P, so that
 * every element of C is still one fma chain over k = 0..K-1 in order, scaled
 * as gemm_builtin scales it: the result does not depend on the blocking. */
/* GA_MR rows of A per panel (gemm_pack_a, gemm_packed, gemm_im2col_fused):
 * 12 rows x 16 columns of C are 24 float8 accumulators, which an AVX-512
 * target keeps in its 32 vector registers; each k then loads 2 vectors of B
 * and 12 scalars of A for 24 fmas (6 rows: 2 and 6 for 12). On the Zen 4
 * EPYC (PoCL, 2 cores) the 256-channel convolutions ran 10-13 % faster than
 * with 6 rows (bench/RESULTS.md, issue 18). GP_MR (6) stays the K panel of
 * the weight-gradient kernels below. The row panel does not change the sum:
 * each element of C is the same fma chain over k. */
#define GP_MR 6
#define GA_MR 12
#define GP_NR 16
#define GP_KB 64 /* k values per packing work-item */

/* Global size (ceil(M / GA_MR), ceil(K / GP_KB), batch); Ap item q starts
 * q * ceil(M / GA_MR) * GA_MR * K floats after ap_off. ta 0: op(A) = A
 * (row i at a + i * lda); 1: A^T; 2: the input-gradient operand of a
 * convolution's weights w (cout, M, kh, kw) with lda = kh * kw: row i, column
 * k = co * lda + r is w[co][i] at kernel position lda - 1 - r (flipped), the
 * matrix conv_flip_weights writes out, packed without writing it. */
__kernel void gemm_pack_a(int ta, int M, int K, __global const float *A, ulong a_off, int lda,
                          ulong stride_a, __global float *Ap, ulong ap_off)
{
    const int p = (int)get_global_id(0), kb = (int)get_global_id(1) * GP_KB;
    const size_t q = get_global_id(2);
    const int np = (M + GA_MR - 1) / GA_MR;
    if (p >= np || kb >= K)
        return;
    __global const float *a = A + a_off + q * stride_a;
    __global float *dst = Ap + ap_off + ((q * np + p) * (size_t)K + kb) * GA_MR;
    const int ke = min(kb + GP_KB, K) - kb;
    for (int r = 0; r < GA_MR; r++) {
        const int i = p * GA_MR + r;
        if (i >= M) {
            for (int k = 0; k < ke; k++)
                dst[k * GA_MR + r] = 0.0f;
        } else if (ta == 2) {
            /* Kernel plane co from its last position down, then plane co + 1. */
            const int co0 = kb / lda;
            __global const float *src = a + ((size_t)co0 * M + i) * lda + (lda - 1);
            int t = kb - co0 * lda;
            src -= t;
            for (int k = 0; k < ke; k++) {
                dst[k * GA_MR + r] = *src--;
                if (++t == lda) {
                    t = 0;
                    src += (size_t)M * lda + lda;
                }
            }
        } else if (ta) {
            for (int k = 0; k < ke; k++)
                dst[k * GA_MR + r] = a[(size_t)(kb + k) * lda + i];
        } else {
            __global const float *ar = a + (size_t)i * lda + kb;
            for (int k = 0; k < ke; k++)
                dst[k * GA_MR + r] = ar[k];
        }
    }
}

#define GP_PB 64
#define GP_PR 2

/* op(B) = B: global size (ceil(kc / GP_PR), ceil(npan / GP_PB), batch).
 * Work-item (kr, g) copies rows k0 + kr * GP_PR .. (GP_PR of them) of B,
 * columns j0 + g * GP_PB * GP_NR .. (contiguous runs), into GP_PB panels.
 * Panel p holds columns j0 + p * GP_NR .. of rows k0 .. k0 + kc - 1; Bp item
 * q starts q * npan * kc * GP_NR floats after bp_off. */
__kernel void gemm_pack_b(int N, int k0, int kc, int j0, int npan, __global const float *B,
                          ulong b_off, int ldb, ulong stride_b, __global float *Bp, ulong bp_off)
{
    const int kr = (int)get_global_id(0) * GP_PR, g = (int)get_global_id(1);
    const size_t q = get_global_id(2);
    if (kr >= kc || g * GP_PB >= npan)
        return;
    const int pe = min((g + 1) * GP_PB, npan), ke = min(kr + GP_PR, kc);
    for (int k = kr; k < ke; k++) {
        __global const float *src = B + b_off + q * stride_b + (size_t)(k0 + k) * ldb;
        for (int p = g * GP_PB; p < pe; p++) {
            const int jb = j0 + p * GP_NR;
            __global float *dst = Bp + bp_off + ((q * npan + p) * (size_t)kc + k) * GP_NR;
            if (jb + GP_NR <= N) {
                vstore16(vload16(0, src + jb), 0, dst);
            } else {
                for (int c = 0; c < GP_NR; c++)
                    dst[c] = jb + c < N ? src[jb + c] : 0.0f;
            }
        }
    }
}

/* op(B) = B^T (B is N x K): as gemm_pack_b, global size
 * (npan, ceil(kc / GP_KB), batch): work-item (p, kb) reads GP_NR rows of B
 * from column k0 + kb * GP_KB on. */
__kernel void gemm_pack_bt(int N, int k0, int kc, int j0, int npan, __global const float *B,
                           ulong b_off, int ldb, ulong stride_b, __global float *Bp, ulong bp_off)
{
    const int p = (int)get_global_id(0), kb = (int)get_global_id(1) * GP_KB;
    const size_t q = get_global_id(2);
    if (p >= npan || kb >= kc)
        return;
    __global const float *b = B + b_off + q * stride_b;
    __global float *dst = Bp + bp_off + ((q * npan + p) * (size_t)kc + kb) * GP_NR;
    const int ke = min(kb + GP_KB, kc) - kb, jb = j0 + p * GP_NR;
    for (int c = 0; c < GP_NR; c++) {
        __global const float *src = b + (size_t)(jb + c) * ldb + k0 + kb;
        for (int k = 0; k < ke; k++)
            dst[k * GP_NR + c] = jb + c < N ? src[k] : 0.0f;
    }
}

#define GP_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define GA_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* A block's accumulators c<r>a, c<r>b (GA_MR or GP_MR rows of 16): zero,
 * or (from_p) the raw sums a previous K block left in P (pp, rows pld
 * apart); and saving them there for the next block. */
#define GP_INIT(r)                                                                   \
    float8 c##r##a = (float8)(0.0f), c##r##b = (float8)(0.0f);                       \
    if (from_p) {                                                                    \
        c##r##a = vload8(0, pp + r * pld);                                           \
        c##r##b = vload8(1, pp + r * pld);                                           \
    }
#define GP_SAVE(r)                                                                   \
    vstore8(c##r##a, 0, pp + r * pld);                                               \
    vstore8(c##r##b, 1, pp + r * pld);

/* Global size (ceil(M / (GA_MR * mb)), npan, batch). Work-item (mg, np)
 * computes the GA_MR x GP_NR blocks of row panels mg * mb .. mg * mb + mb - 1
 * in turn against one B panel, which stays in L1/L2 meanwhile (and a work-item
 * has enough work to hide PoCL's per-work-group cost). Block (mp, np) of batch
 * item q: rows mp * GA_MR.., columns j0 + np * GP_NR.. of C, k from k0 to
 * k0 + kc - 1 of the packed A (whose panels hold ka values of k each). mode
 * bit 0: start from the raw sums in P (else 0); bit 1: finish (C = alpha *
 * sum + beta * C, C not read when beta == 0; with hb, C = alpha * sum +
 * bias[bias_off + row] instead), else store the raw sums in P.
 * P item q is ceil(M / GA_MR) * GA_MR rows of npan * GP_NR. */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void gemm_packed(
    int M, int N, int ka, int k0, int kc, int j0, int npan, int mode, int mb, float alpha,
    float beta, __global const float *Ap, ulong ap_off, ulong ap_stride,
    __global const float *Bp, ulong bp_off, __global float *P, ulong p_off, __global float *C,
    ulong c_off, int ldc, ulong stride_c, __global const float *bias, ulong bias_off, int hb)
{
    const int mg = (int)get_global_id(0), np = (int)get_global_id(1);
    const size_t q = get_global_id(2);
    const int mpan = (M + GA_MR - 1) / GA_MR;
    if (mg * mb >= mpan || np >= npan)
        return;
    const int me = min(mg * mb + mb, mpan);
    for (int mp = mg * mb; mp < me; mp++) {
    const int i0 = mp * GA_MR, jl = np * GP_NR, j = j0 + jl;
    const int mpad = mpan * GA_MR, pld = npan * GP_NR;
    __global const float *ap = Ap + ap_off + q * ap_stride + ((size_t)mp * ka + k0) * GA_MR;
    __global const float *bp = Bp + bp_off + (q * npan + np) * (size_t)kc * GP_NR;
    __global float *pp = P + p_off + (q * mpad + i0) * (size_t)pld + jl;
    const int from_p = mode & 1;
    GA_ROWS(GP_INIT)
#define GP_FMA(r)                                                                    \
    {                                                                                \
        const float8 av = (float8)(ap[r]);                                           \
        c##r##a = fma(av, b0, c##r##a);                                              \
        c##r##b = fma(av, b1, c##r##b);                                              \
    }
    for (int k = 0; k < kc; k++) {
        const float8 b0 = vload8(0, bp), b1 = vload8(1, bp);
        GA_ROWS(GP_FMA)
        ap += GA_MR;
        bp += GP_NR;
    }
    if (!(mode & 2)) {
        GA_ROWS(GP_SAVE)
        continue;
    }
    __global float *c = C + c_off + q * stride_c + (size_t)i0 * ldc + j;
    if (i0 + GA_MR <= M && j + GP_NR <= N) {
#define GP_STORE_FULL(r)                                                             \
        {                                                                            \
            __global float *cr = c + (size_t)r * ldc;                                \
            if (hb) {                                                                \
                const float8 bv = (float8)(bias[bias_off + i0 + r]);                 \
                vstore8(alpha * c##r##a + bv, 0, cr);                                \
                vstore8(alpha * c##r##b + bv, 1, cr);                                \
            } else if (beta == 0.0f) {                                               \
                vstore8(alpha * c##r##a, 0, cr);                                     \
                vstore8(alpha * c##r##b, 1, cr);                                     \
            } else {                                                                 \
                vstore8(alpha * c##r##a + beta * vload8(0, cr), 0, cr);              \
                vstore8(alpha * c##r##b + beta * vload8(1, cr), 1, cr);              \
            }                                                                        \
        }
        GA_ROWS(GP_STORE_FULL)
        continue;
    }
#define GP_STORE_EDGE(r)                                                             \
    if (i0 + r < M) {                                                                \
        float t[GP_NR];                                                              \
        vstore8(c##r##a, 0, t);                                                      \
        vstore8(c##r##b, 1, t);                                                      \
        __global float *cr = c + (size_t)r * ldc;                                    \
        const float bv = hb ? bias[bias_off + i0 + r] : 0.0f;                        \
        for (int jj = 0; jj < GP_NR && j + jj < N; jj++)                             \
            cr[jj] = hb ? alpha * t[jj] + bv                                         \
                        : beta == 0.0f ? alpha * t[jj] : alpha * t[jj] + beta * cr[jj]; \
    }
    GA_ROWS(GP_STORE_EDGE)
    }
}

/* Implicit im2col operands for the packed GEMM: the packing kernels below
 * read the convolution input x directly instead of a column matrix built in
 * memory, so a convolution pays one pass over its packed operand instead of
 * three (im2col write, pack read, pack write). They write exactly what
 * gemm_pack_b / gemm_pack_bt write from the explicit matrix, so the GEMM's
 * result is the same to the bit.
 * Column matrix of image q (x + x_off + q * stride_x, shape (C, H, W)):
 * (C*kh*kw) x (Ho*Wo), row k = (c*kh + ki)*kw + kj, column p = oh*Wo + ow,
 * entry x[c, enco_pad_index(oh*sh - pt + ki), enco_pad_index(ow*sw - pl + kj)]
 * (0 where either is -1), as conv_im2col in cl/conv.cl. */

/* Rows kk .. kk + ke - 1 of the column matrix of image xs, at the GP_NR
 * columns from jb (ncols of them inside N; the rest of the panel zero), into
 * dst (k-major, GP_NR floats per row). One body for a __global and a
 * __local destination (OpenCL 1.2 has no generic address space). */
#define GP_IM2COL_PANEL(NAME, AS)                                                       \
    static void NAME(AS float *dst, __global const float *xs, int kk, int ke, int jb,     \
                     int ncols, int H, int W, int Wo, int kh, int kw, int sh, int sw,     \
                     int pt, int pl, int mode)                                            \
    {                                                                                     \
        const int oh = jb / Wo, ow0 = jb - oh * Wo;                                       \
        const int fast = ncols == GP_NR && ow0 + GP_NR <= Wo && sw == 1;                  \
        const int kq = kk / kw;                                                           \
        int kj = kk - kq * kw;                                                            \
        int c = kq / kh;                                                                  \
        int ki = kq - c * kh;                                                             \
        for (int k = 0; k < ke; k++) {                                                    \
            AS float *d = dst + k * GP_NR;                                                \
            if (fast) {                                                                   \
                const int ih = enco_pad_index(oh * sh - pt + ki, H, mode);                \
                const int iw0 = ow0 - pl + kj;                                            \
                if (ih < 0) {                                                             \
                    vstore16((float16)(0.0f), 0, d);                                      \
                } else {                                                                  \
                    __global const float *row = xs + ((size_t)c * H + ih) * W;            \
                    if (iw0 >= 0 && iw0 + GP_NR <= W) {                                   \
                        vstore16(vload16(0, row + iw0), 0, d);                            \
                    } else {                                                              \
                        for (int jj = 0; jj < GP_NR; jj++) {                              \
                            const int iw = enco_pad_index(iw0 + jj, W, mode);             \
                            d[jj] = iw < 0 ? 0.0f : row[iw];                              \
                        }                                                                 \
                    }                                                                     \
                }                                                                         \
            } else {                                                                      \
                /* Edge panels (across output rows, at the padding, or strided):          \
                 * segments of the panel within one output row, each a straight           \
                 * copy where its columns are inside the image. */                        \
                int o_h = oh, o_w = ow0, jj = 0;                                          \
                while (jj < ncols) {                                                      \
                    const int len = min(ncols - jj, Wo - o_w);                            \
                    const int ih = enco_pad_index(o_h * sh - pt + ki, H, mode);           \
                    const int t0 = o_w * sw - pl + kj, t1 = t0 + (len - 1) * sw;          \
                    if (ih < 0) {                                                         \
                        for (int t = 0; t < len; t++)                                     \
                            d[jj + t] = 0.0f;                                             \
                    } else {                                                              \
                        __global const float *row = xs + ((size_t)c * H + ih) * W;        \
                        if (t0 >= 0 && t1 < W) {                                          \
                            for (int t = 0; t < len; t++)                                 \
                                d[jj + t] = row[t0 + t * sw];                             \
                        } else {                                                          \
                            for (int t = 0; t < len; t++) {                               \
                                const int iw = enco_pad_index(t0 + t * sw, W, mode);      \
                                d[jj + t] = iw < 0 ? 0.0f : row[iw];                      \
                            }                                                             \
                        }                                                                 \
                    }                                                                     \
                    jj += len;                                                            \
                    o_w = 0;                                                              \
                    o_h++;                                                                \
                }                                                                         \
                for (; jj < GP_NR; jj++)                                                  \
                    d[jj] = 0.0f;                                                         \
            }                                                                             \
            if (++kj == kw) {                                                             \
                kj = 0;                                                                   \
                if (++ki == kh) {                                                         \
                    ki = 0;                                                               \
                    c++;                                                                  \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
    }

GP_IM2COL_PANEL(im2col_panel_global, __global)
GP_IM2COL_PANEL(im2col_panel_local, __local)

/* op(B) = the column matrix (K x P). Global size (npan, ceil(kc / GP_KB),
 * batch): work-item (p, kb) writes panel p (columns j0 + p*GP_NR ..) for
 * rows k0 + kb .. (GP_KB of them), each a contiguous run of GP_NR floats. */
__kernel void gemm_pack_im2col(int N, int k0, int kc, int j0, int npan, __global const float *x,
                               ulong x_off, ulong stride_x, __global float *Bp, ulong bp_off,
                               int C, int H, int W, int Wo, int kh, int kw, int sh, int sw,
                               int pt, int pl, int mode)
{
    const int p = (int)get_global_id(0), kb = (int)get_global_id(1) * GP_KB;
    const size_t q = get_global_id(2);
    if (p >= npan || kb >= kc)
        return;
    const int jb = j0 + p * GP_NR;
    im2col_panel_global(Bp + bp_off + ((q * npan + p) * (size_t)kc + kb) * GP_NR,
                        x + x_off + q * stride_x, k0 + kb, min(kb + GP_KB, kc) - kb, jb,
                        min(GP_NR, N - jb), H, W, Wo, kh, kw, sh, sw, pt, pl, mode);
}

/* op(B) = the transposed column matrix (P x K): GEMM rows are pixels, columns
 * are K indices. Global size (npan, ceil(kc / GP_KB), batch): work-item
 * (p, kb) writes panel p (K indices j0 + p*GP_NR ..) for pixels k0 + kb ..
 * (GP_KB of them), one K index (a strided column of the panel) at a time,
 * walking the pixels in runs along output rows. */
__kernel void gemm_pack_im2col_t(int N, int k0, int kc, int j0, int npan,
                                 __global const float *x, ulong x_off, ulong stride_x,
                                 __global float *Bp, ulong bp_off, int C, int H, int W, int Wo,
                                 int kh, int kw, int sh, int sw, int pt, int pl, int mode)
{
    const int p = (int)get_global_id(0), kb = (int)get_global_id(1) * GP_KB;
    const size_t q = get_global_id(2);
    if (p >= npan || kb >= kc)
        return;
    __global const float *xs = x + x_off + q * stride_x;
    __global float *dst = Bp + bp_off + ((q * npan + p) * (size_t)kc + kb) * GP_NR;
    const int ke = min(kb + GP_KB, kc) - kb, jb = j0 + p * GP_NR;
    const int pix0 = k0 + kb, oh0 = pix0 / Wo, ow00 = pix0 - oh0 * Wo;
    for (int jj = 0; jj < GP_NR; jj++) {
        __global float *d = dst + jj;
        const int j = jb + jj;
        if (j >= N) {
            for (int k = 0; k < ke; k++)
                d[k * GP_NR] = 0.0f;
            continue;
        }
        const int kq = j / kw, kj = j - kq * kw, c = kq / kh, ki = kq - c * kh;
        __global const float *plane = xs + (size_t)c * H * W;
        int oh = oh0, ow = ow00;
        for (int k = 0; k < ke;) {
            const int run = min(ke - k, Wo - ow);
            const int ih = enco_pad_index(oh * sh - pt + ki, H, mode);
            if (ih < 0) {
                for (int r = 0; r < run; r++)
                    d[(k + r) * GP_NR] = 0.0f;
            } else {
                __global const float *row = plane + (size_t)ih * W;
                for (int r = 0; r < run; r++) {
                    const int t = (ow + r) * sw - pl + kj;
                    const int iw = t >= 0 && t < W ? t : enco_pad_index(t, W, mode);
                    d[(k + r) * GP_NR] = iw < 0 ? 0.0f : row[iw];
                }
            }
            k += run;
            ow = 0;
            oh++;
        }
    }
}

/* Direct (implicit) im2col weight gradient for CPU devices: the column
 * matrix is read from x inside the multiply, never packed. It computes the
 * transposed product dW^T = col dY^T, with the column matrix as the
 * broadcast operand (six scalars per pixel, from six rows of x, each
 * advancing along an output row) and dY^T packed by gemm_pack_bt, and stores
 * the transpose back, so every element is the same fma chain over the pixels
 * in the same order as gemm_packed on the packed transposed column matrix:
 * the bits are the same (fma(a, b, c) == fma(b, a, c); padding entries are
 * multiplied as zeros, as there). Geometry as in gemm_pack_im2col.
 * The same idea for the forward (six output pixels broadcast, rows of x
 * read per channel and kernel row) ran 2x slower than packing on PoCL: rows
 * of consecutive channels are H*W*4 bytes apart, often a multiple of 4 KiB,
 * and thrash the same L1 sets; packing streams them instead. */
#define GC_FMA(r)                                                                    \
        {                                                                            \
            const float8 av = (float8)(a##r);                                        \
            c##r##a = fma(av, b0, c##r##a);                                          \
            c##r##b = fma(av, b1, c##r##b);                                          \
        }

/* K panel kp (six K indices) against channel panel cp of dY^T over pixels
 * k0 .. k0 + kc - 1, whose packed block (kc x 16) starts at bp. */
static void wgrad_panel(int kp, int cp, int N, int K, int k0, int kc, int mode, float alpha,
                        float beta, __global const float *xs, __global const float *bp,
                        __global float *Ps, __global float *Cm, ulong c_off, int ldc, int H,
                        int W, int Wo, int kh, int kw, int sh, int sw, int pt, int pl, int pmode)
{
    const int pld = ((N + GP_NR - 1) / GP_NR) * GP_NR;
    /* The six K indices of the panel: channel, kernel row and column. */
    int cr[GP_MR], kir[GP_MR], kjr[GP_MR];
    int lo = 0, hi = Wo - 1, nvr = 0;
    for (int r = 0; r < GP_MR; r++) {
        const int kk = min(kp * GP_MR + r, K - 1), kq = kk / kw;
        kjr[r] = kk - kq * kw;
        cr[r] = kq / kh;
        kir[r] = kq - cr[r] * kh;
        if (kp * GP_MR + r < K)
            nvr++;
        /* Interior output columns for this kj (stride 1): 0 <= ow - pl + kj < W. */
        lo = max(lo, pl - kjr[r]);
        hi = min(hi, W - 1 + pl - kjr[r]);
    }
    __global float *pp = Ps + (size_t)kp * GP_MR * pld + cp * GP_NR;
    const int from_p = mode & 1;
    GP_ROWS(GP_INIT)
    int oh = k0 / Wo, ow = k0 - oh * Wo;
    for (int k = 0; k < kc;) {
        const int run = min(kc - k, Wo - ow);
        /* Source rows of the six K indices for this output row. */
        __global const float *rows[GP_MR];
        int allrows = nvr == GP_MR;
        for (int r = 0; r < GP_MR; r++) {
            const int ih = enco_pad_index(oh * sh - pt + kir[r], H, pmode);
            rows[r] = ih < 0 || r >= nvr ? 0 : xs + ((size_t)cr[r] * H + ih) * W;
            if (ih < 0)
                allrows = 0;
        }
        const int fa = sw == 1 && allrows ? max(ow, lo) : ow + run;
        const int fb = sw == 1 && allrows ? min(ow + run - 1, hi) : ow + run - 1;
        for (int o = ow; o < ow + run; o++) {
            const float8 b0 = vload8(0, bp), b1 = vload8(1, bp);
            bp += GP_NR;
            if (o >= fa && o <= fb) {
                /* Interior: the loop below runs the whole interior run. */
                const int n = fb - fa + 1;
                __global const float *s0 = rows[0] + o - pl + kjr[0];
                __global const float *s1 = rows[1] + o - pl + kjr[1];
                __global const float *s2 = rows[2] + o - pl + kjr[2];
                __global const float *s3 = rows[3] + o - pl + kjr[3];
                __global const float *s4 = rows[4] + o - pl + kjr[4];
                __global const float *s5 = rows[5] + o - pl + kjr[5];
                float8 bb0 = b0, bb1 = b1;
                for (int t = 0; t < n; t++) {
                    if (t > 0) {
                        bb0 = vload8(0, bp);
                        bb1 = vload8(1, bp);
                        bp += GP_NR;
                    }
#define GW_FMA(r)                                                                    \
                    {                                                                \
                        const float8 av = (float8)(s##r[t]);                         \
                        c##r##a = fma(av, bb0, c##r##a);                             \
                        c##r##b = fma(av, bb1, c##r##b);                             \
                    }
                    GP_ROWS(GW_FMA)
                }
                o = fb;
                continue;
            }
#define GW_LANE(r)                                                                   \
            float a##r = 0.0f;                                                       \
            if (rows[r]) {                                                           \
                const int iw = enco_pad_index(o * sw - pl + kjr[r], W, pmode);       \
                if (iw >= 0)                                                         \
                    a##r = rows[r][iw];                                              \
            }
            GP_ROWS(GW_LANE)
            GP_ROWS(GC_FMA)
        }
        k += run;
        ow = 0;
        oh++;
    }
    if (!(mode & 2)) {
        GP_ROWS(GP_SAVE)
        return;
    }
    const int k0r = kp * GP_MR, co0 = cp * GP_NR;
#define GW_STORE(r)                                                                  \
    if (r < nvr) {                                                                   \
        float t[GP_NR];                                                              \
        vstore8(c##r##a, 0, t);                                                      \
        vstore8(c##r##b, 1, t);                                                      \
        for (int jj = 0; jj < GP_NR && co0 + jj < N; jj++) {                         \
            __global float *d = Cm + c_off + (size_t)(co0 + jj) * ldc + k0r + r;     \
            *d = beta == 0.0f ? alpha * t[jj] : alpha * t[jj] + beta * *d;           \
        }                                                                            \
    }
    GP_ROWS(GW_STORE)
}

/* dW (N x K, ldc) += alpha * dY col^T for one image, i.e. the transposed
 * product dW^T = col dY^T with rows = K indices (panels of 6) and the pixels
 * as the inner dimension, in blocks [k0, k0 + kc) whose raw sums go through
 * P (mode bit 0: start from P, bit 1: finish into dW = alpha * sum + beta *
 * dW, else save to P), as gemm_packed. dY^T's block is packed by
 * gemm_pack_bt into Bp (ceil(N / 16) panels of kc x 16). P holds
 * ceil(K / 6) * 6 rows of ceil(N / 16) * 16. Global size
 * (ceil(ceil(K / 6) / mb), ceil(N / 16)). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void gemm_conv_wgrad(
    int N, int K, int k0, int kc, int mode, int mb, float alpha, float beta,
    __global const float *x, ulong x_off, __global const float *Bp, ulong bp_off,
    __global float *Ps, ulong p_off, __global float *Cm, ulong c_off, int ldc, int C, int H,
    int W, int Ho, int Wo, int kh, int kw, int sh, int sw, int pt, int pl, int pmode)
{
    const int g = (int)get_global_id(0), cp = (int)get_global_id(1);
    const int kpan = (K + GP_MR - 1) / GP_MR;
    if (g * mb >= kpan || cp * GP_NR >= N)
        return;
    const int ke = min(g * mb + mb, kpan);
    for (int kp = g * mb; kp < ke; kp++)
        wgrad_panel(kp, cp, N, K, k0, kc, mode, alpha, beta, x + x_off,
                    Bp + bp_off + (size_t)cp * kc * GP_NR, Ps + p_off, Cm, c_off, ldc, H, W, Wo,
                    kh, kw, sh, sw, pt, pl, pmode);
}

/* gemm_conv_wgrad for one whole image with dY^T packed by each work-item
 * itself, kb pixels at a time, into its own slice of S (kb x 16 floats, which
 * stays in L1/L2 while the work-item's K panels run over it). Made for the
 * small K of 3-channel inputs (G's 7x7 input conv: K = 147, D's first conv:
 * 48), where gemm_pack_bt's trip of dY^T through memory cost about as much
 * as the multiply and the per-block launches added up. Each element is the
 * same fma chain over the pixels in order as in gemm_conv_wgrad (the raw
 * sums wait in P between blocks): the same bits. S holds, from s_off, the
 * slices (ceil(ceil(K / 6) / mb) * ceil(N / 16) of kb * 16 floats), then P
 * (ceil(K / 6) * 6 rows of ceil(N / 16) * 16). Global size
 * (ceil(ceil(K / 6) / mb), ceil(N / 16)). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void gemm_conv_wgrad_self(
    int N, int K, int kb, int mb, float alpha, float beta, __global const float *x, ulong x_off,
    __global const float *dy, ulong dy_off, int lddy, __global float *S, ulong s_off,
    __global float *Cm, ulong c_off, int ldc, int H, int W, int Ho, int Wo, int kh, int kw,
    int sh, int sw, int pt, int pl, int pmode)
{
    const int g = (int)get_global_id(0), cp = (int)get_global_id(1);
    const int kpan = (K + GP_MR - 1) / GP_MR, npan = (N + GP_NR - 1) / GP_NR;
    const int ng = (kpan + mb - 1) / mb;
    if (g >= ng || cp >= npan)
        return;
    __global float *bp = S + s_off + ((size_t)cp * ng + g) * kb * GP_NR;
    __global float *Ps = S + s_off + (size_t)ng * npan * kb * GP_NR;
    const int ke = min(g * mb + mb, kpan), P = Ho * Wo, co0 = cp * GP_NR;
    for (int k0 = 0; k0 < P; k0 += kb) {
        const int kc = min(kb, P - k0);
        for (int c = 0; c < GP_NR; c++) {
            if (co0 + c < N) {
                __global const float *src = dy + dy_off + (size_t)(co0 + c) * lddy + k0;
                for (int k = 0; k < kc; k++)
                    bp[k * GP_NR + c] = src[k];
            } else {
                for (int k = 0; k < kc; k++)
                    bp[k * GP_NR + c] = 0.0f;
            }
        }
        const int mode = (k0 > 0 ? 1 : 0) | (k0 + kc == P ? 2 : 0);
        for (int kp = g * mb; kp < ke; kp++)
            wgrad_panel(kp, cp, N, K, k0, kc, mode, alpha, beta, x + x_off, bp, Ps, Cm, c_off,
                        ldc, H, W, Wo, kh, kw, sh, sw, pt, pl, pmode);
    }
}

/* Fused implicit-im2col GEMM for CPU devices: one work-item packs one panel
 * of GP_NR output pixels of the column matrix into local memory (a
 * per-thread buffer on PoCL, which stays in L1/L2) and multiplies every row
 * panel of the packed A (M x K, all of it, panels of GA_MR) against it. The
 * packed B never goes out to the last-level cache and back, which is what
 * the separate gemm_pack_im2col + gemm_packed pay, and is the larger cost
 * where M is small (64 output channels at 256x256). K is taken in blocks of
 * at most kb floats (the local panel, bl: kb * GP_NR floats); between blocks
 * the raw sums of the work-item's M x GP_NR block wait in P (batch item q:
 * ceil(M / GA_MR) * GA_MR rows of pld floats, from column jb), as in
 * gemm_packed. Each element of C is one fma chain over k = 0..K-1 in order,
 * scaled as in gemm_packed's finish: the same bits. Global size
 * (ceil(N / GP_NR), batch). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1))) void gemm_im2col_fused(
    int M, int N, int K, int kb, float alpha, float beta, __global const float *Ap,
    __global const float *x, ulong x_off, ulong stride_x, __global float *P, ulong p_off,
    int pld, __global float *C, ulong c_off, int ldc, ulong stride_c,
    __global const float *bias, ulong bias_off, int hb, __local float *bl, int Cin, int H, int W,
    int Wo, int kh, int kw, int sh, int sw, int pt, int pl, int mode)
{
    const int p = (int)get_global_id(0);
    const size_t q = get_global_id(1);
    const int jb = p * GP_NR;
    if (jb >= N)
        return;
    const int mpan = (M + GA_MR - 1) / GA_MR;
    __global const float *xs = x + x_off + q * stride_x;
    __global float *pq = P + p_off + q * (size_t)mpan * GA_MR * pld + jb;
    for (int k0 = 0; k0 < K; k0 += kb) {
        const int kc = min(kb, K - k0), first = k0 == 0, last = k0 + kc == K;
        im2col_panel_local(bl, xs, k0, kc, jb, min(GP_NR, N - jb), H, W, Wo, kh, kw, sh, sw, pt,
                           pl, mode);
        for (int mp = 0; mp < mpan; mp++) {
            const int i0 = mp * GA_MR;
            __global const float *ap = Ap + ((size_t)mp * K + k0) * GA_MR;
            __local const float *bp = bl;
            __global float *pp = pq + (size_t)i0 * pld;
            const int from_p = !first;
            GA_ROWS(GP_INIT)
            for (int k = 0; k < kc; k++) {
                const float8 b0 = vload8(0, bp), b1 = vload8(1, bp);
                GA_ROWS(GP_FMA)
                ap += GA_MR;
                bp += GP_NR;
            }
            if (!last) {
                GA_ROWS(GP_SAVE)
                continue;
            }
            __global float *c = C + c_off + q * stride_c + (size_t)i0 * ldc + jb;
            const int j = jb;
            if (i0 + GA_MR <= M && j + GP_NR <= N) {
                GA_ROWS(GP_STORE_FULL)
                continue;
            }
            GA_ROWS(GP_STORE_EDGE)
        }
    }
}
