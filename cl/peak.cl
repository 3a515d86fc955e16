/* bench --peak's compute ceiling on CPU devices: every work-item runs 12
 * independent chains of fma on float16 vectors (enough independent work to
 * fill two FMA pipes of latency 4), iters rounds: 12 * 16 * 2 * iters FLOP
 * per work-item. The sum written keeps the compiler from dropping the chains. */
#define PEAK_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__kernel void peak_fma(int iters, float b, float c, __global float *out)
{
    const float s = (float)get_global_id(0);
#define PEAK_DECL(i) float16 a##i = (float16)(s + (float)i);
    PEAK_CHAINS(PEAK_DECL)
#define PEAK_FMA(i) a##i = fma(a##i, (float16)(b), (float16)(c));
    for (int r = 0; r < iters; r++) {
        PEAK_CHAINS(PEAK_FMA)
    }
    float16 t = (float16)(0.0f);
#define PEAK_SUM(i) t += a##i;
    PEAK_CHAINS(PEAK_SUM)
    out[get_global_id(0)] = t.s0 + t.s1 + t.s2 + t.s3 + t.s4 + t.s5 + t.s6 + t.s7 + t.s8 +
                            t.s9 + t.sa + t.sb + t.sc + t.sd + t.se + t.sf;
}
