/* The device self check's kernel: y = a*x + b*y followed by a small
 * nonlinearity, enough to prove that our programs build, run and read back. */
__kernel void selftest_axpby_tanh(int n, float a, __global const float *x, float b,
                                  __global float *y)
{
    int i = (int)get_global_id(0);
    if (i >= n)
        return;
    y[i] = tanh(a * x[i] + b * y[i]);
}
