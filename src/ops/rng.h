/* Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw,
 * "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
 *
 * One generator state is three integers (seed, stream, counter). The uint32
 * sequence of (seed, stream) is the concatenation of Philox blocks:
 *
 *   element e  =  word (e mod 4) of  Philox4x32-10(ctr, key)
 *   ctr = {lo32(e / 4), hi32(e / 4), lo32(stream), hi32(stream)}
 *   key = {lo32(seed), hi32(seed)}
 *
 * and `counter` is the position e of the next element to hand out. Every
 * draw advances counter by the number of uint32 it consumed, so storing the
 * state in a checkpoint and restoring it continues the run exactly. Element e
 * is the same value on the host and on every OpenCL device: the host
 * functions and the device fills below are interchangeable (same output, same
 * state afterwards).
 *
 * Floats: uniform [0, 1) is (u >> 8) * 2^-24 (top 24 bits, exact in float);
 * uniform [lo, hi) is lo + (hi - lo) * that, in float32 with separately
 * rounded operations (no fused multiply-add; the kernels turn FP_CONTRACT
 * off), clamped below hi. Bit equality with the device holds wherever the
 * result is not a denormal (devices may flush those).
 *
 * Normals are made on the HOST only, by Box-Muller in double: device
 * transcendentals (log, cos, sin) are not correctly rounded and differ between
 * devices, so normals generated there would not be reproducible. Weight
 * initialisation therefore draws on the host and uploads
 * (enco_rng_xavier_normal_upload). */
#ifndef ENCO_OPS_RNG_H
#define ENCO_OPS_RNG_H

#include "core/internal.h"

#include <stdint.h>

/* Generator state; plain data, safe to copy and to store in checkpoints. */
typedef struct enco_rng {
    uint64_t seed;     /* Philox key */
    uint64_t stream;   /* high half of the Philox counter: independent sequences */
    uint64_t counter;  /* position of the next uint32 in the (seed, stream) sequence */
} enco_rng;

/* ---- the raw generator -------------------------------------------------- */

/* One Philox4x32-10 block: out = philox(ctr, key), 10 rounds. */
void enco_philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);

/* State at the start of sequence (seed, stream). */
enco_rng enco_rng_make(uint64_t seed, uint64_t stream);

/* Element `index` of the (seed, stream) sequence; does not touch any state. */
uint32_t enco_rng_u32_at(uint64_t seed, uint64_t stream, uint64_t index);

/* ---- host draws (each advances rng->counter by what it consumed) --------- */

/* The next n uint32 of the sequence. */
void enco_rng_u32(enco_rng *rng, uint32_t *out /* (n) */, size_t n);

/* n floats uniform in [lo, hi); one uint32 each. Needs lo < hi, both finite. */
enco_status enco_rng_uniform(enco_rng *rng, float *out /* (n) */, size_t n, float lo, float hi);

/* A uniform integer in [0, range), unbiased (Lemire's multiply-shift with
 * rejection: consumes one uint32, more only on the rare rejection).
 * range must be >= 1. */
uint32_t enco_rng_bounded(enco_rng *rng, uint32_t range);

/* n normals N(mean, std^2) by Box-Muller in double, rounded to float. Each
 * pair of outputs consumes four uint32 (two 53-bit uniforms); an odd n
 * discards the second normal of the last pair (the counter still advances by
 * 4 per pair, 2 * n rounded up to a multiple of 4). std >= 0. */
enco_status enco_rng_normal(enco_rng *rng, float *out /* (n) */, size_t n, double mean, double std);

/* A uniformly random permutation of 0..n-1 (Durstenfeld's Fisher-Yates, i from
 * n-1 down to 1 swaps perm[i] with perm[bounded(i + 1)]). n <= INT32_MAX. */
enco_status enco_rng_permutation(enco_rng *rng, int32_t *perm /* (n) */, size_t n);

/* PyTorch's xavier_normal_: N(0, std^2) with
 * std = gain * sqrt(2 / (fan_in + fan_out)). For a convolution weight
 * (C_out, C_in, kh, kw): fan_in = C_in*kh*kw, fan_out = C_out*kh*kw; for a
 * linear weight (out, in): fan_in = in, fan_out = out. gain > 0. */
enco_status enco_rng_xavier_normal(enco_rng *rng, float *w /* (n) */, size_t n, size_t fan_in,
                                   size_t fan_out, double gain);

/* ---- device ------------------------------------------------------------- */

/* out[out_off .. out_off+n) = the next n uint32 (bit-identical to enco_rng_u32). */
enco_status enco_rng_fill_u32(enco_ctx *ctx, cl_mem out, size_t out_off /* (n) uint32 */,
                              enco_rng *rng, size_t n);

/* out[out_off .. out_off+n) = n floats uniform in [lo, hi), bit-identical to
 * enco_rng_uniform (non-denormal results). */
enco_status enco_rng_fill_uniform(enco_ctx *ctx, cl_mem out, size_t out_off /* (n) */,
                                  enco_rng *rng, size_t n, float lo, float hi);

/* Draws enco_rng_xavier_normal on the host and uploads it into w. */
enco_status enco_rng_xavier_normal_upload(enco_ctx *ctx, cl_mem w, size_t w_off /* (n) */,
                                          enco_rng *rng, size_t n, size_t fan_in,
                                          size_t fan_out, double gain);

/* Work of one fill: integer Philox work is not counted as FLOPs; bytes are
 * the writes. */
enco_op_cost enco_rng_fill_u32_cost(size_t n);
enco_op_cost enco_rng_fill_uniform_cost(size_t n);

#endif
