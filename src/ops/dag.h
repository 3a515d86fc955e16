/* DAG patch sampling (spec/ENCO.md section 4) and CUT's random sampling.
 *
 * Per image, with HW = H*W, K = min(num_patches, HW), C = min(oversample*K, HW),
 * R = floor(K * cover_ratio):
 *   candidates = cand[0 .. C)                       (first C of a random permutation)
 *   order them by score[cand[i]], ascending (descending = the paper's variant)
 *   idx[0 .. K-R)   = the first K - R candidates in that order
 *   idx[K-R .. K)   = cover[HW-R .. HW)             (last R of a second permutation)
 * Step 1 of the spec (bilinear resize of D's output to H x W) is done by the
 * caller: `score` is the already resized map.
 *
 * Order and ties (the same on the device and in the reference):
 * - the sort is STABLE: equal scores keep their candidate order (position in
 *   cand). PyTorch's torch.sort (used by the published code) does not promise
 *   stability, so on exact ties its choice may differ; with real-valued D
 *   outputs exact ties are rare and the sampled set is equally valid.
 * - -0.0 and +0.0 are equal (ties by position).
 * - NaN scores sort LAST in both directions (a NaN patch is never preferred);
 *   NaNs among themselves keep candidate order.
 * The covering entries may repeat positions chosen by importance (as in the
 * published code).
 *
 * Indices are int32 positions h*W + w in [0, HW). Permutation entries must be
 * in [0, HW); an out-of-range candidate is read as a NaN score (no read out
 * of bounds) and copied through unchanged. */
#ifndef ENCO_OPS_DAG_H
#define ENCO_OPS_DAG_H

#include "core/internal.h"
#include "ops/rng.h"

#include <stdint.h>

/* Samples per image: K = min(num_patches, h*w) (0 for bad arguments). */
int enco_dag_num_samples(int h, int w, int num_patches);

/* DAG sampling on the device (deterministic: one work-item per candidate
 * computes its rank by counting, no atomics). */
enco_status enco_dag_forward(enco_ctx *ctx, cl_mem idx, size_t idx_off /* (N, K) int32 */,
                             cl_mem score, size_t score_off /* (N, 1, H, W) */,
                             cl_mem cand, size_t cand_off /* (N, H*W) int32 */,
                             cl_mem cover, size_t cover_off /* (N, H*W) int32 */, int n, int h,
                             int w, int num_patches, int oversample, double cover_ratio,
                             int descending);

/* Reference: the same steps with a stable merge sort in double. */
enco_status enco_dag_forward_ref(int32_t *idx /* (N, K) */, const float *score /* (N, 1, H, W) */,
                                 const int32_t *cand /* (N, H*W) */,
                                 const int32_t *cover /* (N, H*W) */, int n, int h, int w,
                                 int num_patches, int oversample, double cover_ratio,
                                 int descending);

/* CUT's PatchSampleF: idx = perm[0 .. K) per image. */
enco_status enco_dag_random_forward(enco_ctx *ctx, cl_mem idx, size_t idx_off /* (N, K) int32 */,
                                    cl_mem perm, size_t perm_off /* (N, H*W) int32 */, int n,
                                    int h, int w, int num_patches);
enco_status enco_dag_random_ref(int32_t *idx /* (N, K) */, const int32_t *perm /* (N, H*W) */,
                                int n, int h, int w, int num_patches);

/* The permutations one step needs, from the generator state: for image
 * i = 0 .. n-1 in turn, cand[i] = enco_rng_permutation(hw), then (when cover
 * is not NULL) cover[i] = enco_rng_permutation(hw). Pass cover = NULL for
 * random sampling. */
enco_status enco_dag_make_perms(enco_rng *rng, int32_t *cand /* (N, H*W) */,
                                int32_t *cover /* (N, H*W) or NULL */, int n, int hw);

/* enco_dag_make_perms on the host, uploaded into cand/cover (cover may be
 * NULL): the one call the training step makes before enco_dag_forward. */
enco_status enco_dag_perms_upload(enco_ctx *ctx, cl_mem cand, size_t cand_off /* (N, H*W) */,
                                  cl_mem cover, size_t cover_off /* (N, H*W) or NULL */,
                                  enco_rng *rng, int n, int hw);

/* Work: N*C*C score comparisons (counted as FLOPs); bytes: candidate indices
 * and scores read, covering entries read, K indices written per image. */
enco_op_cost enco_dag_cost(int n, int h, int w, int num_patches, int oversample,
                           double cover_ratio);
enco_op_cost enco_dag_random_cost(int n, int h, int w, int num_patches);

#endif
