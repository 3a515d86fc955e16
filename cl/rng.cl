/* Philox4x32-10 fills, bit-identical to the host functions in src/ops/rng.c
 * (see src/ops/rng.h for the sequence layout). */

/* a + b*c must round twice, as on the host, never fuse into one fma. */
#pragma OPENCL FP_CONTRACT OFF

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline uint4 philox_round(uint4 c, uint2 k)
{
    uint hi0 = mul_hi(PHILOX_M0, c.x), lo0 = PHILOX_M0 * c.x;
    uint hi1 = mul_hi(PHILOX_M1, c.z), lo1 = PHILOX_M1 * c.z;
    return (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
}

static inline uint4 philox4x32_10(uint4 c, uint2 k)
{
    c = philox_round(c, k);
    for (int r = 1; r < 10; r++) {
        k += (uint2)(PHILOX_W0, PHILOX_W1);
        c = philox_round(c, k);
    }
    return c;
}

/* Block `block` of sequence (seed, stream). */
static inline uint4 rng_block(ulong seed, ulong stream, ulong block)
{
    uint4 ctr = (uint4)((uint)block, (uint)(block >> 32), (uint)stream, (uint)(stream >> 32));
    return philox4x32_10(ctr, (uint2)((uint)seed, (uint)(seed >> 32)));
}

static inline float rng_uniform(uint x, float lo, float hi)
{
    float u = (float)(x >> 8) * 0x1.0p-24f;
    float t = (hi - lo) * u;
    float v = lo + t;
    return v < hi ? v : nextafter(hi, lo);
}

/* Work-item g handles the Philox block first/4 + g and writes those of its
 * four elements that fall in [first, first + n). */
__kernel void rng_fill_u32(__global uint *out, ulong out_off, ulong n, ulong seed, ulong stream,
                           ulong first)
{
    ulong block = first / 4 + get_global_id(0);
    ulong e0 = block * 4;
    if (e0 >= first + n)
        return;
    uint4 r = rng_block(seed, stream, block);
    uint w[4] = {r.x, r.y, r.z, r.w};
    for (int k = 0; k < 4; k++) {
        ulong e = e0 + (ulong)k;
        if (e >= first && e < first + n)
            out[out_off + (e - first)] = w[k];
    }
}

__kernel void rng_fill_uniform(__global float *out, ulong out_off, ulong n, ulong seed,
                               ulong stream, ulong first, float lo, float hi)
{
    ulong block = first / 4 + get_global_id(0);
    ulong e0 = block * 4;
    if (e0 >= first + n)
        return;
    uint4 r = rng_block(seed, stream, block);
    uint w[4] = {r.x, r.y, r.z, r.w};
    for (int k = 0; k < 4; k++) {
        ulong e = e0 + (ulong)k;
        if (e >= first && e < first + n)
            out[out_off + (e - first)] = rng_uniform(w[k], lo, hi);
    }
}
