/* Prepended to every program. Kept tiny: shared helpers only. */
#ifndef ENCO_COMMON_CL
#define ENCO_COMMON_CL

/* Index of element (n, c, h, w) of an NCHW tensor. */
#define ENCO_IDX4(n, c, h, w, C, H, W) ((((size_t)(n) * (C) + (c)) * (H) + (h)) * (W) + (w))

/* Padding modes: same numbers as enco_pad_mode on the host. */
#define ENCO_PAD_ZERO 0
#define ENCO_PAD_REFLECT 1
#define ENCO_PAD_REPLICATE 2

/* Padded coordinate -> source coordinate in [0, n), or -1 for zero padding.
 * Reflect (PyTorch ReflectionPad) needs pad < n. */
static inline int enco_pad_index(int i, int n, int mode)
{
    if (i >= 0 && i < n)
        return i;
    if (mode == ENCO_PAD_ZERO)
        return -1;
    if (mode == ENCO_PAD_REPLICATE)
        return i < 0 ? 0 : n - 1;
    return i < 0 ? -i : 2 * (n - 1) - i;
}

#endif
