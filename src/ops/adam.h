/* Adam optimiser step on a flat parameter buffer, torch.optim.Adam semantics (PyTorch 1.13,
 * weight_decay 0, amsgrad off, maximize off). */
#ifndef ENCO_OPS_ADAM_H
#define ENCO_OPS_ADAM_H

#include "core/internal.h"

/* Hyper-parameters as PyTorch holds them (Python floats, i.e. double). */
typedef struct enco_adam_hparams {
    double lr;
    double beta1; /* EnCo: 0.5 */
    double beta2; /* 0.999 */
    double eps;   /* 1e-8 */
} enco_adam_hparams;

/* ENCO_ADAM_DEFAULTS(lr): beta1 0.5, beta2 0.999, eps 1e-8 (spec section 6). */
#define ENCO_ADAM_DEFAULTS(lr_) ((enco_adam_hparams){.lr = (lr_), .beta1 = 0.5, .beta2 = 0.999, .eps = 1e-8})

/* One Adam step t (1-based: the first update is t = 1) on n parameters, in one launch:
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * The bias corrections and the step size are computed on the host in double, as PyTorch does,
 * and passed as floats. param, m and v are updated in place (m, v start at zero); grad is
 * read only. The four ranges must not overlap. */
enco_status enco_adam_step(enco_ctx *ctx, cl_mem param, size_t param_off, /* (n), in/out */
                           cl_mem m, size_t m_off,                        /* (n), in/out */
                           cl_mem v, size_t v_off,                        /* (n), in/out */
                           cl_mem grad, size_t grad_off,                  /* (n) */
                           size_t n, const enco_adam_hparams *hp, long step);

/* The same step in double precision on host arrays. */
void enco_adam_step_ref(double *param, double *m, double *v, const double *grad, size_t n,
                        const enco_adam_hparams *hp, long step);

enco_op_cost enco_adam_cost(size_t n);

#endif
