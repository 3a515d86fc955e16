/* Fully connected layer helpers; the products themselves go through
 * enco_sgemm. Offsets are in elements. */

#pragma OPENCL FP_CONTRACT OFF

/* y[r, j] += b[j] for a row-major (m, out) y. Global (out, m). */
__kernel void linear_bias_add(int m, int out, __global float *y, ulong y_off,
                              __global const float *b, ulong b_off)
{
    int j = (int)get_global_id(0);
    int r = (int)get_global_id(1);
    if (j >= out || r >= m)
        return;
    y[y_off + (size_t)r * out + j] += b[b_off + j];
}

/* db[j] += sum_r dy[r, j], rows summed in order 0..m-1 (one work-item per
 * column: deterministic, and neighbouring items read neighbouring columns). */
__kernel void linear_bias_grad(int m, int out, __global float *db, ulong db_off,
                               __global const float *dy, ulong dy_off)
{
    int j = (int)get_global_id(0);
    if (j >= out)
        return;
    __global const float *col = dy + dy_off + j;
    float s = 0.0f;
    for (int r = 0; r < m; r++)
        s += col[(size_t)r * out];
    db[db_off + j] += s;
}
