/* DAG patch sampling: rank candidates by score, keep the best K-R, append
 * R covering positions (see src/ops/dag.h for the order and tie rules). */

#define DAG_TILE 128 /* work-group size of dag_rank; the host launches with it */

/* Unsigned key whose order is the sampling order: ascending floats (or
 * descending), -0 == +0, NaN last in both directions. Finite and infinite
 * keys lie in [0x007FFFFF, 0xFF800000], so 0xFFFFFFFF is free for NaN. */
static inline uint dag_key(float s, int descending)
{
    /* Integer tests only: a device that flushes denormals must not see a
     * tiny score as zero. */
    uint b = as_uint(s);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u)
        return 0xFFFFFFFFu;
    if ((b & 0x7FFFFFFFu) == 0u)
        b = 0u;
    uint k = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    return descending ? ~k : k;
}

static inline uint dag_candidate_key(__global const float *s, int pos, int hw, int descending)
{
    return dag_key(pos >= 0 && pos < hw ? s[pos] : NAN, descending);
}

/* global (C rounded up to DAG_TILE, N), local (DAG_TILE, 1). Work-item i of
 * image n: rank = #{j : key_j < key_i or (key_j == key_i and j < i)}, a
 * permutation of 0..C-1, so the writes out[rank] for rank < keep never
 * collide. Items i < R also copy one covering entry. Keys are staged through
 * local memory a tile at a time; every item of a group runs the same number
 * of tiles (C is uniform), so the barriers are safe. */
__kernel __attribute__((reqd_work_group_size(DAG_TILE, 1, 1)))
void dag_rank(__global int *idx, ulong idx_off, __global const float *score, ulong score_off,
              __global const int *cand, ulong cand_off, __global const int *cover, ulong cover_off,
              int hw, int c, int k, int keep, int descending)
{
    __local uint tile[DAG_TILE];
    const int i = (int)get_global_id(0);
    const int img = (int)get_global_id(1);
    const int lid = (int)get_local_id(0);
    __global const float *s = score + score_off + (size_t)img * hw;
    __global const int *cp = cand + cand_off + (size_t)img * hw;

    int pos = 0;
    uint mine = 0;
    if (i < c) {
        pos = cp[i];
        mine = dag_candidate_key(s, pos, hw, descending);
    }
    int rank = 0;
    for (int t0 = 0; t0 < c; t0 += DAG_TILE) {
        int j = t0 + lid;
        tile[lid] = j < c ? dag_candidate_key(s, cp[j], hw, descending) : 0u;
        barrier(CLK_LOCAL_MEM_FENCE);
        int m = min(DAG_TILE, c - t0);
        for (int q = 0; q < m; q++) {
            uint kq = tile[q];
            rank += (kq < mine || (kq == mine && t0 + q < i)) ? 1 : 0;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    __global int *out = idx + idx_off + (size_t)img * k;
    if (i < c && rank < keep)
        out[rank] = pos;
    const int r = k - keep;
    if (i < r)
        out[keep + i] = cover[cover_off + (size_t)img * hw + (size_t)(hw - r + i)];
}

/* CUT's random sampling: out[n][i] = perm[n][i] for i < K.
 * global (K rounded up, N). */
__kernel void dag_random(__global int *idx, ulong idx_off, __global const int *perm,
                         ulong perm_off, int hw, int k)
{
    const int i = (int)get_global_id(0);
    const int img = (int)get_global_id(1);
    if (i >= k)
        return;
    idx[idx_off + (size_t)img * k + i] = perm[perm_off + (size_t)img * hw + i];
}
