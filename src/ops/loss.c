/* Loss launchers and their float64 references (see loss.h and cl/loss.cl). */
#include "ops/loss.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>

#define LOSS_WG 256          /* work-group size of the partial and finish kernels */
#define LOSS_MAX_GROUPS 256  /* partial sums of LSGAN / L1 */
#define LOSS_ROW_WG_MAX 128  /* work-group size cap of the per-row EnCo kernel */

/* Smallest power of two >= n, capped at cap (a power of two). */
static size_t pow2_cover(size_t n, size_t cap)
{
    size_t l = 1;
    while (l < n && l < cap)
        l *= 2;
    return l;
}

static size_t partial_groups(size_t n)
{
    size_t g = (n + LOSS_WG - 1) / LOSS_WG;
    return g < LOSS_MAX_GROUPS ? g : LOSS_MAX_GROUPS;
}

/* Uses the caller's scratch, or allocates `floats` for this call (*owned then holds it and
 * the caller frees it after enqueueing: OpenCL keeps it alive for the queued kernels). */
static enco_status work_get(enco_ctx *ctx, cl_mem *work, size_t *work_off, size_t floats,
                            cl_mem *owned)
{
    *owned = NULL;
    if (*work)
        return ENCO_OK;
    ENCO_TRY(enco_buffer_alloc(ctx, floats * sizeof(float), owned));
    *work = *owned;
    *work_off = 0;
    return ENCO_OK;
}

/* out[out_off] = sum(partial[0..count)) / divisor on one work-group. */
static enco_status run_finish(enco_ctx *ctx, cl_mem out, size_t out_off, cl_mem partial,
                              size_t part_off, size_t count, float divisor)
{
    const size_t local = pow2_cover(count, LOSS_WG), global = local;
    return ENCO_RUN(ctx, "loss", "loss_finish", 1, &global, &local, ENCO_ARG_INT(count),
                    ENCO_ARG_MEM(partial), ENCO_ARG_ULONG(part_off), ENCO_ARG_FLOAT(divisor),
                    ENCO_ARG_MEM(out), ENCO_ARG_ULONG(out_off),
                    ENCO_ARG_LOCAL(local * sizeof(float)));
}

static enco_status check_common(const char *op, cl_mem loss, size_t n, float grad_scale)
{
    if (!loss)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: the loss buffer is NULL", op);
    if (n == 0 || n > INT_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %zu elements (must be 1..%d)", op, n,
                         INT_MAX);
    if (!isfinite(grad_scale))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: grad_scale %g is not finite", op,
                         (double)grad_scale);
    return ENCO_OK;
}

/* ---- LSGAN ------------------------------------------------------------- */

size_t enco_loss_lsgan_work(size_t n) { return partial_groups(n); }

/* Shared body of LSGAN and L1 (y == NULL: LSGAN against target). */
static enco_status run_elementwise(enco_ctx *ctx, cl_mem loss, size_t loss_off,
                                   cl_mem grad, size_t grad_off, cl_mem x, size_t x_off, cl_mem y,
                                   size_t y_off, size_t n, float target, float grad_scale,
                                   cl_mem work, size_t work_off)
{
    const size_t groups = partial_groups(n), local = LOSS_WG, global = groups * LOSS_WG;
    const int has_grad = grad != NULL;
    /* d/dx of the mean: 2 (x - t) / n for LSGAN, sign / n for L1, times grad_scale. */
    const float gscale = (float)((y ? 1.0 : 2.0) * (double)grad_scale / (double)n);
    cl_mem owned = NULL;
    ENCO_TRY(work_get(ctx, &work, &work_off, groups, &owned));
    cl_mem gmem = has_grad ? grad : work; /* never written when has_grad == 0 */
    enco_status st;
    if (y)
        st = ENCO_RUN(ctx, "loss", "loss_l1_partial", 1, &global, &local, ENCO_ARG_INT(n),
                      ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off), ENCO_ARG_MEM(y),
                      ENCO_ARG_ULONG(y_off), ENCO_ARG_MEM(gmem), ENCO_ARG_ULONG(grad_off),
                      ENCO_ARG_INT(has_grad), ENCO_ARG_FLOAT(gscale), ENCO_ARG_MEM(work),
                      ENCO_ARG_ULONG(work_off), ENCO_ARG_LOCAL(local * sizeof(float)));
    else
        st = ENCO_RUN(ctx, "loss", "loss_lsgan_partial", 1, &global, &local, ENCO_ARG_INT(n),
                      ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off), ENCO_ARG_FLOAT(target),
                      ENCO_ARG_MEM(gmem), ENCO_ARG_ULONG(grad_off), ENCO_ARG_INT(has_grad),
                      ENCO_ARG_FLOAT(gscale), ENCO_ARG_MEM(work), ENCO_ARG_ULONG(work_off),
                      ENCO_ARG_LOCAL(local * sizeof(float)));
    if (st == ENCO_OK)
        st = run_finish(ctx, loss, loss_off, work, work_off, groups, (float)n);
    enco_buffer_free(ctx, owned);
    return st;
}

enco_status enco_loss_lsgan(enco_ctx *ctx, cl_mem loss, size_t loss_off, cl_mem grad,
                            size_t grad_off, cl_mem x, size_t x_off, size_t n, float target,
                            float grad_scale, cl_mem work, size_t work_off)
{
    ENCO_TRY(check_common("enco_loss_lsgan", loss, n, grad_scale));
    if (!x)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_loss_lsgan: the input x is NULL");
    if (!isfinite(target))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_loss_lsgan: target %g is not finite",
                         (double)target);
    return run_elementwise(ctx, loss, loss_off, grad, grad_off, x, x_off, NULL,
                           0, n, target, grad_scale, work, work_off);
}

void enco_loss_lsgan_ref(double *loss, double *grad, const double *x, size_t n, double target,
                         double grad_scale)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - target;
        s += d * d;
        if (grad)
            grad[i] = grad_scale * 2.0 * d / (double)n;
    }
    *loss = s / (double)n;
}

enco_op_cost enco_loss_lsgan_cost(size_t n)
{
    /* subtract, square-accumulate (2), gradient multiply; read x, write grad. */
    return (enco_op_cost){.flops = 4.0 * n, .bytes = 8.0 * n + 8.0 * partial_groups(n) + 4};
}

/* ---- L1 --------------------------------------------------------------- */

size_t enco_loss_l1_work(size_t n) { return partial_groups(n); }

enco_status enco_loss_l1(enco_ctx *ctx, cl_mem loss, size_t loss_off, cl_mem grad,
                         size_t grad_off, cl_mem x, size_t x_off, cl_mem y, size_t y_off,
                         size_t n, float grad_scale, cl_mem work, size_t work_off)
{
    ENCO_TRY(check_common("enco_loss_l1", loss, n, grad_scale));
    if (!x || !y)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_loss_l1: input %s is NULL", x ? "y" : "x");
    return run_elementwise(ctx, loss, loss_off, grad, grad_off, x, x_off, y,
                           y_off, n, 0.0f, grad_scale, work, work_off);
}

void enco_loss_l1_ref(double *loss, double *grad, const double *x, const double *y, size_t n,
                      double grad_scale)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - y[i];
        s += fabs(d);
        if (grad)
            grad[i] = grad_scale * (d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0)) / (double)n;
    }
    *loss = s / (double)n;
}

enco_op_cost enco_loss_l1_cost(size_t n)
{
    return (enco_op_cost){.flops = 3.0 * n, .bytes = 12.0 * n + 8.0 * partial_groups(n) + 4};
}

/* ---- EnCo ------------------------------------------------------------- */

size_t enco_loss_enco_work(size_t m) { return m; }

enco_status enco_loss_enco(enco_ctx *ctx, cl_mem loss, size_t loss_off, cl_mem grad,
                           size_t grad_off, cl_mem q, size_t q_off, cl_mem k, size_t k_off,
                           size_t m, size_t d, float grad_scale, cl_mem work, size_t work_off)
{
    ENCO_TRY(check_common("enco_loss_enco", loss, m, grad_scale));
    if (!q || !k)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_loss_enco: input %s is NULL", q ? "k" : "q");
    if (d == 0 || d > INT_MAX / m)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "enco_loss_enco: feature size %zu for %zu rows (need 1 <= M*D <= %d)", d,
                         m, INT_MAX);
    const size_t local = pow2_cover(d, LOSS_ROW_WG_MAX), global = m * local;
    const int has_grad = grad != NULL;
    const float gscale = (float)(2.0 * (double)grad_scale / (double)m);
    cl_mem owned = NULL;
    ENCO_TRY(work_get(ctx, &work, &work_off, m, &owned));
    enco_status st = ENCO_RUN(
        ctx, "loss", "loss_enco_rows", 1, &global, &local, ENCO_ARG_INT(m), ENCO_ARG_INT(d),
        ENCO_ARG_MEM(q), ENCO_ARG_ULONG(q_off), ENCO_ARG_MEM(k), ENCO_ARG_ULONG(k_off),
        ENCO_ARG_FLOAT(ENCO_COS_EPS), ENCO_ARG_FLOAT(gscale), ENCO_ARG_MEM(has_grad ? grad : work),
        ENCO_ARG_ULONG(grad_off), ENCO_ARG_INT(has_grad), ENCO_ARG_MEM(work),
        ENCO_ARG_ULONG(work_off), ENCO_ARG_LOCAL(3 * local * sizeof(float)));
    if (st == ENCO_OK)
        st = run_finish(ctx, loss, loss_off, work, work_off, m, (float)m);
    enco_buffer_free(ctx, owned);
    return st;
}

void enco_loss_enco_ref(double *loss, double *grad, const double *q, const double *k, size_t m,
                        size_t d, double eps, double grad_scale)
{
    double total = 0;
    for (size_t i = 0; i < m; i++) {
        const double *qi = q + i * d, *ki = k + i * d;
        double s12 = 0, s11 = 0, s22 = 0;
        for (size_t j = 0; j < d; j++) {
            s12 += qi[j] * ki[j];
            s11 += qi[j] * qi[j];
            s22 += ki[j] * ki[j];
        }
        double n1 = fmax(sqrt(s11), eps), n2 = fmax(sqrt(s22), eps);
        double c = s12 / (n1 * n2);
        total += 2.0 - 2.0 * c;
        if (grad)
            for (size_t j = 0; j < d; j++)
                grad[i * d + j] =
                    grad_scale * (-2.0 / (double)m) * (ki[j] / (n1 * n2) - c * qi[j] / (n1 * n1));
    }
    *loss = total / (double)m;
}

enco_op_cost enco_loss_enco_cost(size_t m, size_t d)
{
    /* three dot products (6 flops per element) and the gradient (3 per element). */
    return (enco_op_cost){.flops = 9.0 * m * d, .bytes = 16.0 * m * d + 8.0 * m + 4};
}

/* ---- PatchNCE --------------------------------------------------------- */

size_t enco_loss_patchnce_work(size_t b, size_t kp) { return b * kp * kp + b * kp; }

/* Argument checks shared by both PatchNCE variants. */
static enco_status patchnce_check(const char *op, cl_mem loss, cl_mem q, cl_mem k, size_t b,
                                  size_t kp, size_t d, float tau, float grad_scale)
{
    if (b == 0 || kp == 0 || b > INT_MAX / kp)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %zu images of %zu patches (need >= 1 each)",
                         op, b, kp);
    const size_t m = b * kp;
    ENCO_TRY(check_common(op, loss, m, grad_scale));
    if (!q || !k)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: input %s is NULL", op, q ? "k" : "q");
    if (d == 0 || d > INT_MAX / m)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: feature size %zu for %zu rows", op, d, m);
    if (kp > INT_MAX / m)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %zu x %zu similarity matrices are too large",
                         op, b, kp);
    if (!(tau > 0.0f) || !isfinite(tau))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: temperature %g must be positive", op,
                         (double)tau);
    return ENCO_OK;
}

/* The dot-product PatchNCE on checked arguments, with b * kq * (kp + 1) floats of scratch at
 * work_off: b groups of kp keys whose queries are kq rows each, query r of a group being
 * row first + r of its keys (a whole group: kq = kp, first = 0). */
static enco_status patchnce_run(enco_ctx *ctx, cl_mem loss, size_t loss_off, cl_mem grad,
                                size_t grad_off, cl_mem q, size_t q_off, cl_mem k, size_t k_off,
                                size_t b, size_t kq, size_t kp, size_t first, size_t d, float tau,
                                float grad_scale, cl_mem work, size_t work_off)
{
    const size_t m = b * kq;
    const size_t s_off = work_off, r_off = work_off + b * kq * kp;
    const int has_grad = grad != NULL;
    /* S_b = q_b k_b^T for every group b: (Kq x D) (D x K). */
    enco_status st = enco_sgemm_batched(ctx, 0, 1, kq, kp, d, 1.0f, q, q_off, d, kq * d, k,
                                        k_off, d, kp * d, 0.0f, work, s_off, kp, kq * kp, b);
    if (st == ENCO_OK) {
        const size_t local = pow2_cover(kp + 1, LOSS_WG), global = m * local;
        const float gscale = (float)((double)grad_scale / ((double)m * (double)tau));
        st = ENCO_RUN(ctx, "loss", "loss_patchnce_rows", 1, &global, &local, ENCO_ARG_INT(m),
                      ENCO_ARG_INT(kq), ENCO_ARG_INT(kp), ENCO_ARG_INT(first),
                      ENCO_ARG_FLOAT(tau), ENCO_ARG_FLOAT(gscale), ENCO_ARG_MEM(work),
                      ENCO_ARG_ULONG(s_off), ENCO_ARG_INT(has_grad), ENCO_ARG_MEM(work),
                      ENCO_ARG_ULONG(r_off), ENCO_ARG_LOCAL(local * sizeof(float)));
    }
    if (st == ENCO_OK)
        st = run_finish(ctx, loss, loss_off, work, r_off, m, (float)m);
    /* grad_b = dS_b k_b: (Kq x K) (K x D). */
    if (st == ENCO_OK && has_grad)
        st = enco_sgemm_batched(ctx, 0, 0, kq, d, kp, 1.0f, work, s_off, kp, kq * kp, k, k_off, d,
                                kp * d, 0.0f, grad, grad_off, d, kq * d, b);
    return st;
}

enco_status enco_loss_patchnce(enco_ctx *ctx, cl_mem loss, size_t loss_off, cl_mem grad,
                               size_t grad_off, cl_mem q, size_t q_off, cl_mem k, size_t k_off,
                               size_t b, size_t kp, size_t d, float tau, float grad_scale,
                               cl_mem work, size_t work_off)
{
    ENCO_TRY(patchnce_check("enco_loss_patchnce", loss, q, k, b, kp, d, tau, grad_scale));
    cl_mem owned = NULL;
    ENCO_TRY(work_get(ctx, &work, &work_off, enco_loss_patchnce_work(b, kp), &owned));
    enco_status st = patchnce_run(ctx, loss, loss_off, grad, grad_off, q, q_off, k, k_off, b,
                                  kp, kp, 0, d, tau, grad_scale, work, work_off);
    enco_buffer_free(ctx, owned);
    return st;
}

void enco_loss_patchnce_ref(double *loss, double *grad, const double *q, const double *k,
                            size_t b, size_t kp, size_t d, double tau, double grad_scale)
{
    const size_t m = b * kp;
    double total = 0;
    for (size_t img = 0; img < b; img++)
        for (size_t r = 0; r < kp; r++) {
            const size_t i = img * kp + r;
            const double *qi = q + i * d;
            /* logits z[0] = l_pos, z[1 + j] = l_neg[j] (diagonal -10), all / tau */
            double zmax = -INFINITY;
            double z0 = 0;
            for (size_t t = 0; t < d; t++)
                z0 += qi[t] * k[i * d + t];
            z0 /= tau;
            zmax = z0;
            for (size_t j = 0; j < kp; j++) {
                double z = -10.0 / tau;
                if (j != r) {
                    z = 0;
                    for (size_t t = 0; t < d; t++)
                        z += qi[t] * k[(img * kp + j) * d + t];
                    z /= tau;
                }
                if (z > zmax)
                    zmax = z;
            }
            double se = exp(z0 - zmax);
            for (size_t j = 0; j < kp; j++) {
                double z = -10.0 / tau;
                if (j != r) {
                    z = 0;
                    for (size_t t = 0; t < d; t++)
                        z += qi[t] * k[(img * kp + j) * d + t];
                    z /= tau;
                }
                se += exp(z - zmax);
            }
            total += log(se) + zmax - z0;
            if (!grad)
                continue;
            double *gi = grad + i * d;
            const double c = grad_scale / ((double)m * tau);
            double p0 = exp(z0 - zmax) / se;
            for (size_t t = 0; t < d; t++)
                gi[t] = c * (p0 - 1.0) * k[i * d + t];
            for (size_t j = 0; j < kp; j++) {
                if (j == r)
                    continue;
                const double *kj = k + (img * kp + j) * d;
                double z = 0;
                for (size_t t = 0; t < d; t++)
                    z += qi[t] * kj[t];
                double p = exp(z / tau - zmax) / se;
                for (size_t t = 0; t < d; t++)
                    gi[t] += c * p * kj[t];
            }
        }
    *loss = total / (double)m;
}

enco_op_cost enco_loss_patchnce_cost(size_t b, size_t kp, size_t d)
{
    const double s = (double)b * kp * kp, f = (double)b * kp * d;
    /* two GEMMs (2 flops per multiply-add) and ~8 flops per logit (exp counted once). */
    return (enco_op_cost){.flops = 4.0 * s * d + 8.0 * s,
                          .bytes = 4.0 * (2 * f + s) + 4.0 * (2 * s) + 4.0 * (s + f + f)};
}

/* ---- PatchNCE "cos" -------------------------------------------------- */

size_t enco_loss_patchnce_cos_work(size_t b, size_t kp, size_t d)
{
    /* qh, kh (M x D each), the clamped norms of q (M), then the dot PatchNCE's scratch */
    return 2 * b * kp * d + b * kp + enco_loss_patchnce_work(b, kp);
}

/* xh = x / max(|x|, eps) row by row; with norms, norms[n_off + i] = max(|x_i|, eps). */
static enco_status run_l2_rows(enco_ctx *ctx, size_t m, size_t d, cl_mem x, size_t x_off,
                               cl_mem xh, size_t xh_off, cl_mem norms, size_t n_off)
{
    const size_t local = pow2_cover(d, LOSS_ROW_WG_MAX), global = m * local;
    const int has_norm = norms != NULL;
    return ENCO_RUN(ctx, "loss", "loss_l2_rows", 1, &global, &local, ENCO_ARG_INT(m),
                    ENCO_ARG_INT(d), ENCO_ARG_MEM(x), ENCO_ARG_ULONG(x_off),
                    ENCO_ARG_FLOAT(ENCO_COS_EPS), ENCO_ARG_MEM(xh), ENCO_ARG_ULONG(xh_off),
                    ENCO_ARG_INT(has_norm), ENCO_ARG_MEM(has_norm ? norms : xh),
                    ENCO_ARG_ULONG(n_off), ENCO_ARG_LOCAL(local * sizeof(float)));
}

/* The cos PatchNCE on checked arguments (groups as patchnce_run), with
 * cos_work(b * kq, b * kp, kp, d) floats of scratch at work_off. */
static size_t cos_work(size_t mq, size_t mk, size_t kp, size_t d)
{
    /* qh (mq x D), kh (mk x D), the clamped norms of q (mq), the dot PatchNCE's scratch */
    return mq * d + mk * d + mq + mq * (kp + 1);
}

static enco_status patchnce_cos_run(enco_ctx *ctx, cl_mem loss, size_t loss_off, cl_mem grad,
                                    size_t grad_off, cl_mem q, size_t q_off, cl_mem k,
                                    size_t k_off, size_t b, size_t kq, size_t kp, size_t first,
                                    size_t d, float tau, float grad_scale, cl_mem work,
                                    size_t work_off)
{
    const size_t mq = b * kq, mk = b * kp;
    const size_t qh_off = work_off, kh_off = qh_off + mq * d, n_off = kh_off + mk * d;
    const size_t nce_off = n_off + mq;
    enco_status st = run_l2_rows(ctx, mq, d, q, q_off, work, qh_off, work, n_off);
    if (st == ENCO_OK)
        st = run_l2_rows(ctx, mk, d, k, k_off, work, kh_off, NULL, 0);
    /* grad receives g = grad_scale * dL/dqh, then becomes grad_scale * dL/dq in place. */
    if (st == ENCO_OK)
        st = patchnce_run(ctx, loss, loss_off, grad, grad_off, work, qh_off, work, kh_off, b, kq,
                          kp, first, d, tau, grad_scale, work, nce_off);
    if (st == ENCO_OK && grad) {
        const size_t local = pow2_cover(d, LOSS_ROW_WG_MAX), global = mq * local;
        st = ENCO_RUN(ctx, "loss", "loss_cos_chain_rows", 1, &global, &local, ENCO_ARG_INT(mq),
                      ENCO_ARG_INT(d), ENCO_ARG_MEM(grad), ENCO_ARG_ULONG(grad_off),
                      ENCO_ARG_MEM(work), ENCO_ARG_ULONG(qh_off), ENCO_ARG_MEM(work),
                      ENCO_ARG_ULONG(n_off), ENCO_ARG_LOCAL(local * sizeof(float)));
    }
    return st;
}

enco_status enco_loss_patchnce_cos(enco_ctx *ctx, cl_mem loss, size_t loss_off, cl_mem grad,
                                   size_t grad_off, cl_mem q, size_t q_off, cl_mem k,
                                   size_t k_off, size_t b, size_t kp, size_t d, float tau,
                                   float grad_scale, cl_mem work, size_t work_off)
{
    ENCO_TRY(patchnce_check("enco_loss_patchnce_cos", loss, q, k, b, kp, d, tau, grad_scale));
    cl_mem owned = NULL;
    ENCO_TRY(work_get(ctx, &work, &work_off, enco_loss_patchnce_cos_work(b, kp, d), &owned));
    enco_status st = patchnce_cos_run(ctx, loss, loss_off, grad, grad_off, q, q_off, k, k_off, b,
                                      kp, kp, 0, d, tau, grad_scale, work, work_off);
    enco_buffer_free(ctx, owned);
    return st;
}

/* ---- PatchNCE over a slice of one group's queries ----------------------- */

size_t enco_loss_patchnce_slice_work(size_t mq, size_t kp, size_t d, int cosine)
{
    return cosine ? cos_work(mq, kp, kp, d) : mq * (kp + 1);
}

enco_status enco_loss_patchnce_slice(enco_ctx *ctx, cl_mem loss, size_t loss_off, cl_mem grad,
                                     size_t grad_off, cl_mem q, size_t q_off, cl_mem k,
                                     size_t k_off, size_t first, size_t mq, size_t kp, size_t d,
                                     float tau, float grad_scale, int cosine, cl_mem work,
                                     size_t work_off)
{
    const char *op = "enco_loss_patchnce_slice";
    ENCO_TRY(patchnce_check(op, loss, q, k, 1, kp, d, tau, grad_scale));
    if (mq == 0 || first > kp || mq > kp - first)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "%s: query rows %zu to %zu are not among the group's %zu keys", op,
                         first, first + mq, kp);
    cl_mem owned = NULL;
    ENCO_TRY(work_get(ctx, &work, &work_off, enco_loss_patchnce_slice_work(mq, kp, d, cosine),
                      &owned));
    enco_status st =
        cosine ? patchnce_cos_run(ctx, loss, loss_off, grad, grad_off, q, q_off, k, k_off, 1, mq,
                                  kp, first, d, tau, grad_scale, work, work_off)
               : patchnce_run(ctx, loss, loss_off, grad, grad_off, q, q_off, k, k_off, 1, mq, kp,
                              first, d, tau, grad_scale, work, work_off);
    enco_buffer_free(ctx, owned);
    return st;
}

void enco_loss_patchnce_slice_ref(double *loss, double *grad, const double *q, const double *k,
                                  size_t first, size_t mq, size_t kp, size_t d, double tau,
                                  int cosine, double eps, double grad_scale)
{
    double *z = malloc((kp + 1) * sizeof *z), *cs = malloc((kp + 1) * sizeof *cs);
    double total = 0;
    for (size_t i = 0; i < mq && z && cs; i++) {
        const double *qi = q + i * d;
        const size_t pos = first + i;
        double nq = 0;
        for (size_t t = 0; t < d; t++)
            nq += qi[t] * qi[t];
        nq = cosine ? fmax(sqrt(nq), eps) : 1.0;
        /* z[0] the positive, z[1 + j] key j (the positive's own column masked to -10);
         * cs[] the similarities, nk folded in below */
        for (size_t j = 0; j <= kp; j++) {
            const double *kj = k + (j ? j - 1 : pos) * d;
            double dot = 0, nk = 0;
            for (size_t t = 0; t < d; t++)
                dot += qi[t] * kj[t], nk += kj[t] * kj[t];
            nk = cosine ? fmax(sqrt(nk), eps) : 1.0;
            cs[j] = dot / (nq * nk);
            z[j] = j && j - 1 == pos ? -10.0 / tau : cs[j] / tau;
        }
        double zmax = z[0], se = 0;
        for (size_t j = 1; j <= kp; j++)
            zmax = fmax(zmax, z[j]);
        for (size_t j = 0; j <= kp; j++)
            se += exp(z[j] - zmax);
        total += log(se) + zmax - z[0];
        if (!grad)
            continue;
        double *gi = grad + i * d;
        for (size_t t = 0; t < d; t++)
            gi[t] = 0;
        for (size_t j = 0; j <= kp; j++) {
            if (j && j - 1 == pos)
                continue; /* the masked logit is a constant */
            const double *kj = k + (j ? j - 1 : pos) * d;
            double nk = 0;
            for (size_t t = 0; t < d; t++)
                nk += kj[t] * kj[t];
            nk = cosine ? fmax(sqrt(nk), eps) : 1.0;
            const double w =
                grad_scale / ((double)mq * tau) * (exp(z[j] - zmax) / se - (j == 0 ? 1.0 : 0.0));
            /* d sim / d q: k / (nq nk) - sim q / nq^2 (the second term only for cos) */
            for (size_t t = 0; t < d; t++)
                gi[t] += w * (kj[t] / (nq * nk) - (cosine ? cs[j] * qi[t] / (nq * nq) : 0.0));
        }
    }
    *loss = z && cs ? total / (double)mq : NAN;
    free(z);
    free(cs);
}

/* PyTorch 1.13's cosine_similarity of two rows; *n1, *n2 get the clamped norms. */
static double cos_ref(const double *a, const double *b, size_t d, double eps, double *n1,
                      double *n2)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t t = 0; t < d; t++) {
        ab += a[t] * b[t];
        aa += a[t] * a[t];
        bb += b[t] * b[t];
    }
    *n1 = fmax(sqrt(aa), eps);
    *n2 = fmax(sqrt(bb), eps);
    return ab / (*n1 * *n2);
}

/* Logit `col` of row i = img*K + r: col 0 is the positive k_i, col 1 + j the key img*K + j
 * (the masked -10 at j == r); *key gets the key's row (or K*B for the mask). */
static double nce_cos_logit(const double *q, const double *k, size_t kp, size_t d, size_t i,
                            size_t col, double tau, double eps, double *cosv, double *n1,
                            double *n2, size_t *key)
{
    const size_t img = i / kp, r = i % kp;
    if (col > 0 && col - 1 == r) {
        *key = SIZE_MAX;
        return -10.0 / tau;
    }
    *key = col == 0 ? i : img * kp + col - 1;
    *cosv = cos_ref(q + i * d, k + *key * d, d, eps, n1, n2);
    return *cosv / tau;
}

void enco_loss_patchnce_cos_ref(double *loss, double *grad, const double *q, const double *k,
                                size_t b, size_t kp, size_t d, double tau, double eps,
                                double grad_scale)
{
    const size_t m = b * kp;
    double total = 0, cosv = 0, n1 = 1, n2 = 1;
    size_t key;
    for (size_t i = 0; i < m; i++) {
        const double z0 = nce_cos_logit(q, k, kp, d, i, 0, tau, eps, &cosv, &n1, &n2, &key);
        double zmax = z0, se = 0;
        for (size_t col = 1; col <= kp; col++)
            zmax = fmax(zmax, nce_cos_logit(q, k, kp, d, i, col, tau, eps, &cosv, &n1, &n2, &key));
        for (size_t col = 0; col <= kp; col++)
            se += exp(nce_cos_logit(q, k, kp, d, i, col, tau, eps, &cosv, &n1, &n2, &key) - zmax);
        total += log(se) + zmax - z0;
        if (!grad)
            continue;
        /* dCE/dz_col = p_col - [col == 0], dz/dcos = 1/tau (the masked logit is constant),
         * dcos/dq_i = k_j / (n1 n2) - cos q_i / n1^2 (PyTorch 1.13's autograd). */
        double *gi = grad + i * d;
        const double *qi = q + i * d;
        for (size_t t = 0; t < d; t++)
            gi[t] = 0;
        for (size_t col = 0; col <= kp; col++) {
            double z = nce_cos_logit(q, k, kp, d, i, col, tau, eps, &cosv, &n1, &n2, &key);
            if (key == SIZE_MAX)
                continue;
            const double w =
                grad_scale / ((double)m * tau) * (exp(z - zmax) / se - (col == 0 ? 1.0 : 0.0));
            const double a = w / (n1 * n2), c = w * cosv / (n1 * n1);
            for (size_t t = 0; t < d; t++)
                gi[t] += a * k[key * d + t] - c * qi[t];
        }
    }
    *loss = total / (double)m;
}

enco_op_cost enco_loss_patchnce_cos_cost(size_t b, size_t kp, size_t d)
{
    const double f = (double)b * kp * d;
    enco_op_cost c = enco_loss_patchnce_cost(b, kp, d);
    /* two row normalisations (square-accumulate, divide: 3 flops per element each, read x,
     * write xh) and the chain back to q (dot, then 3 flops per element; read g, qh, write). */
    c.flops += 6.0 * f + 5.0 * f;
    c.bytes += 4.0 * (4 * f) + 4.0 * (3 * f) + 4.0 * (b * kp);
    return c;
}

/* ---- combine ------------------------------------------------------------ */

enco_status enco_loss_combine(enco_ctx *ctx, cl_mem out, size_t out_off, const cl_mem *losses,
                              const size_t *offs, const float *weights, size_t count)
{
    if (!out || !losses || !offs || !weights)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_loss_combine: NULL argument");
    if (count == 0 || count > ENCO_LOSS_COMBINE_MAX)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_loss_combine: %zu terms (must be 1..%d)",
                         count, ENCO_LOSS_COMBINE_MAX);
    cl_mem l[ENCO_LOSS_COMBINE_MAX];
    size_t o[ENCO_LOSS_COMBINE_MAX];
    float w[ENCO_LOSS_COMBINE_MAX];
    for (size_t i = 0; i < ENCO_LOSS_COMBINE_MAX; i++) {
        if (i < count && !losses[i])
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_loss_combine: loss %zu is NULL", i);
        if (i < count && !isfinite(weights[i]))
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_loss_combine: weight %zu is %g", i,
                             (double)weights[i]);
        /* Unused slots repeat term 0; the kernel never reads them. */
        l[i] = losses[i < count ? i : 0];
        o[i] = offs[i < count ? i : 0];
        w[i] = i < count ? weights[i] : 0.0f;
    }
    const size_t one = 1;
#define TERM(i) ENCO_ARG_MEM(l[i]), ENCO_ARG_ULONG(o[i]), ENCO_ARG_FLOAT(w[i])
    return ENCO_RUN(ctx, "loss", "loss_combine", 1, &one, &one, ENCO_ARG_INT(count),
                    ENCO_ARG_MEM(out), ENCO_ARG_ULONG(out_off), TERM(0), TERM(1), TERM(2),
                    TERM(3), TERM(4), TERM(5), TERM(6), TERM(7));
#undef TERM
}

void enco_loss_combine_ref(double *out, const double *losses, const double *weights,
                           size_t count)
{
    double acc = 0;
    for (size_t i = 0; i < count; i++)
        acc += weights[i] * losses[i];
    *out = acc;
}

enco_op_cost enco_loss_combine_cost(size_t count)
{
    return (enco_op_cost){.flops = 2.0 * count, .bytes = 4.0 * (count + 1)};
}
