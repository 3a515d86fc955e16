/* Adam launcher and its float64 reference (see adam.h and cl/adam.cl). */
#include "ops/adam.h"

#include <limits.h>
#include <math.h>

static enco_status check_hparams(const enco_adam_hparams *hp, long step)
{
    if (!hp)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_adam_step: hyper-parameters are NULL");
    if (!(hp->lr >= 0) || !isfinite(hp->lr))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_adam_step: learning rate %g is invalid",
                         hp->lr);
    if (!(hp->beta1 >= 0 && hp->beta1 < 1) || !(hp->beta2 >= 0 && hp->beta2 < 1))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "enco_adam_step: betas (%g, %g) must lie in [0, 1)", hp->beta1,
                         hp->beta2);
    if (!(hp->eps >= 0) || !isfinite(hp->eps))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_adam_step: eps %g is invalid", hp->eps);
    if (step < 1)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_adam_step: step %ld (the first step is 1)",
                         step);
    return ENCO_OK;
}

enco_status enco_adam_step(enco_ctx *ctx, cl_mem param, size_t param_off, cl_mem m, size_t m_off,
                           cl_mem v, size_t v_off, cl_mem grad, size_t grad_off, size_t n,
                           const enco_adam_hparams *hp, long step)
{
    ENCO_TRY(check_hparams(hp, step));
    if (!param || !m || !v || !grad)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_adam_step: a buffer is NULL");
    if (n == 0 || n > INT_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_adam_step: %zu parameters (must be 1..%d)",
                         n, INT_MAX);
    /* As torch/optim/adam.py (_single_tensor_adam), in double. */
    const double bc1 = 1.0 - pow(hp->beta1, (double)step);
    const double bc2 = 1.0 - pow(hp->beta2, (double)step);
    const double step_size = hp->lr / bc1;
    const double bc2_sqrt = sqrt(bc2);
    const size_t local = 256, global = enco_round_up(n, local);
    return ENCO_RUN(ctx, "adam", "adam_step", 1, &global, &local, ENCO_ARG_INT(n),
                    ENCO_ARG_MEM(param), ENCO_ARG_ULONG(param_off), ENCO_ARG_MEM(m),
                    ENCO_ARG_ULONG(m_off), ENCO_ARG_MEM(v), ENCO_ARG_ULONG(v_off),
                    ENCO_ARG_MEM(grad), ENCO_ARG_ULONG(grad_off), ENCO_ARG_FLOAT(hp->beta1),
                    ENCO_ARG_FLOAT(1.0 - hp->beta1), ENCO_ARG_FLOAT(hp->beta2),
                    ENCO_ARG_FLOAT(1.0 - hp->beta2), ENCO_ARG_FLOAT(-step_size),
                    ENCO_ARG_FLOAT(bc2_sqrt), ENCO_ARG_FLOAT(hp->eps));
}

void enco_adam_step_ref(double *param, double *m, double *v, const double *grad, size_t n,
                        const enco_adam_hparams *hp, long step)
{
    const double bc1 = 1.0 - pow(hp->beta1, (double)step);
    const double bc2 = 1.0 - pow(hp->beta2, (double)step);
    for (size_t i = 0; i < n; i++) {
        m[i] = hp->beta1 * m[i] + (1.0 - hp->beta1) * grad[i];
        v[i] = hp->beta2 * v[i] + (1.0 - hp->beta2) * grad[i] * grad[i];
        double denom = sqrt(v[i]) / sqrt(bc2) + hp->eps;
        param[i] -= hp->lr / bc1 * m[i] / denom;
    }
}

enco_op_cost enco_adam_cost(size_t n)
{
    /* ~12 flops per element (sqrt and division counted once); read p, m, v, g; write p, m, v. */
    return (enco_op_cost){.flops = 12.0 * n, .bytes = 28.0 * n};
}
