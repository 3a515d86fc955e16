/* Prepended to every program. Kept tiny: shared helpers only. */
#ifndef ENCO_COMMON_CL
#define ENCO_COMMON_CL

/* Index helpers for NCHW tensors. */
#define ENCO_IDX4(n, c, h, w, C, H, W) ((((size_t)(n) * (C) + (c)) * (H) + (h)) * (W) + (w))

#endif
