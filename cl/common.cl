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

/* The padded coordinates t whose source (enco_pad_index) is i, as three runs
 * [a[r], b[r]] in the fixed order: i itself, then the low padding side, then
 * the high padding side. lo/hi bound the padded coordinates that are read. */
static inline void enco_source_runs(int i, int n, int lo, int hi, int mode, int *a, int *b)
{
    a[0] = i;
    b[0] = i;
    a[1] = 0;
    b[1] = -1; /* empty */
    a[2] = 0;
    b[2] = -1;
    if (mode == ENCO_PAD_REFLECT) {
        if (i >= 1 && -i >= lo) {
            a[1] = -i;
            b[1] = -i;
        }
        if (i <= n - 2 && 2 * (n - 1) - i <= hi) {
            a[2] = 2 * (n - 1) - i;
            b[2] = 2 * (n - 1) - i;
        }
    } else if (mode == ENCO_PAD_REPLICATE) {
        if (i == 0) {
            a[1] = lo;
            b[1] = -1;
        }
        if (i == n - 1) {
            a[2] = n;
            b[2] = hi;
        }
    }
}

/* The input gradient of a stride-1 convolution with reflect or replicate
 * padding as one GEMM over dx's own plane (no padded plane, no fold): its
 * column matrix of dy (cout*kh*kw rows, in the flipped-weight order) holds
 * at dx position (i, j), for kernel offset (ki, kj), the sum of the
 * zero-padded dy entries src[th - pt + ki][tw - pl + kj] over the padded
 * coordinates th whose source (enco_pad_index, mode fm) is i and tw whose
 * source is j, in enco_source_runs order (tw outer, th inner; i and j
 * themselves first), starting from the first term; pt = kh - 1 - pad_h, pl
 * = kw - 1 - pad_w. Such an operand's geometry carries mode
 * ENCO_IM2COL_FOLD(fm) (the source itself is zero padded). ro = ki - pt, co
 * = kj - pl; src is the H x W plane of one dy channel; the positions are an
 * nh x nw plane with pads ph, pw. */
#define ENCO_IM2COL_FOLD(fm) (((fm) + 1) << 4)
#define ENCO_IM2COL_FOLD_MODE(mode) (((mode) >> 4) - 1)

static inline float enco_fold_entry(__global const float *src, int H, int W, int i, int j,
                                    int nh, int nw, int ph, int pw, int fm, int ro, int co)
{
    int ha[3], hb[3], wa[3], wb[3];
    enco_source_runs(i, nh, -ph, nh - 1 + ph, fm, ha, hb);
    enco_source_runs(j, nw, -pw, nw - 1 + pw, fm, wa, wb);
    float acc = 0.0f;
    int first = 1;
    for (int rw = 0; rw < 3; rw++)
        for (int tw = wa[rw]; tw <= wb[rw]; tw++) {
            const int c = tw + co;
            for (int rh = 0; rh < 3; rh++)
                for (int th = ha[rh]; th <= hb[rh]; th++) {
                    const int r = th + ro;
                    const float z = r >= 0 && r < H && c >= 0 && c < W ? src[r * W + c] : 0.0f;
                    acc = first ? z : acc + z;
                    first = 0;
                }
        }
    return acc;
}

#endif
