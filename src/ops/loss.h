/* Losses of EnCo / CUT training (spec ENCO.md section 5): LSGAN, L1, EnCo (2 - 2 cos),
 * PatchNCE (dot products as CUT, cosines as DCLGAN), and a combiner of device scalars.
 *
 * Every loss launcher
 *  - writes the scalar loss into loss[loss_off] (one float on the device: the training loop
 *    never has to read it back), reduced in a fixed order (bitwise reproducible run to run);
 *  - when grad is not NULL, OVERWRITES grad with grad_scale * d(loss)/d(input) (the input is
 *    x for LSGAN / L1 and q for EnCo / PatchNCE; targets, y and k are constants). grad_scale
 *    is the caller's d(total)/d(loss), e.g. 0.5 * lambda. grad must not overlap the inputs;
 *  - takes scratch space `work` of at least enco_loss_<name>_work(...) floats at work_off,
 *    or NULL to have the launcher allocate (and release) it for this call.
 * Lengths and offsets are in floats. */
#ifndef ENCO_OPS_LOSS_H
#define ENCO_OPS_LOSS_H

#include "core/internal.h"

/* ---- LSGAN: loss = mean((x - target)^2), d/dx = 2 (x - target) / n ---- */
enco_status enco_loss_lsgan(enco_ctx *ctx, cl_mem loss, size_t loss_off, /* (1) */
                            cl_mem grad, size_t grad_off,                /* (n) or NULL */
                            cl_mem x, size_t x_off,                      /* (n) */
                            size_t n, float target, float grad_scale, cl_mem work,
                            size_t work_off);
size_t enco_loss_lsgan_work(size_t n);
void enco_loss_lsgan_ref(double *loss, double *grad /* (n) or NULL */, const double *x, size_t n,
                         double target, double grad_scale);
enco_op_cost enco_loss_lsgan_cost(size_t n);

/* ---- L1: loss = mean(|x - y|), d/dx = sign(x - y) / n (sign(0) = 0) ---- */
enco_status enco_loss_l1(enco_ctx *ctx, cl_mem loss, size_t loss_off, /* (1) */
                         cl_mem grad, size_t grad_off,                /* (n) or NULL */
                         cl_mem x, size_t x_off,                      /* (n) */
                         cl_mem y, size_t y_off,                      /* (n), constant */
                         size_t n, float grad_scale, cl_mem work, size_t work_off);
size_t enco_loss_l1_work(size_t n);
void enco_loss_l1_ref(double *loss, double *grad /* (n) or NULL */, const double *x,
                      const double *y, size_t n, double grad_scale);
enco_op_cost enco_loss_l1_cost(size_t n);

/* ---- EnCo: loss = mean_i (2 - 2 cos(q_i, k_i)) over the M rows ----
 * cos as PyTorch 1.13's F.cosine_similarity(eps): (q.k) / (max(|q|,eps) * max(|k|,eps)).
 * The gradient is the one PyTorch 1.13's autograd produces for that formula (its clamp runs
 * under no_grad, so it is invisible to autograd): with n1 = max(|q|,eps), n2 = max(|k|,eps),
 * d cos / d q = k / (n1 n2) - cos * q / n1^2. Above eps this is the exact derivative; below
 * it, it is PyTorch's, not the derivative of the clamped forward. k gets no gradient. */
#define ENCO_COS_EPS 1e-8f
enco_status enco_loss_enco(enco_ctx *ctx, cl_mem loss, size_t loss_off, /* (1) */
                           cl_mem grad, size_t grad_off,                /* (M, D) or NULL */
                           cl_mem q, size_t q_off,                      /* (M, D) */
                           cl_mem k, size_t k_off,                      /* (M, D), constant */
                           size_t m, size_t d, float grad_scale, cl_mem work, size_t work_off);
size_t enco_loss_enco_work(size_t m);
void enco_loss_enco_ref(double *loss, double *grad /* (M, D) or NULL */, const double *q,
                        const double *k, size_t m, size_t d, double eps, double grad_scale);
enco_op_cost enco_loss_enco_cost(size_t m, size_t d);

/* ---- PatchNCE (CUT): B images of K patches, rows i = b*K + r of q, k (B*K, D) ----
 * l_pos[i] = q_i.k_i; l_neg[i][j] = q_i.k_{b*K+j} for j < K, with l_neg[i][r] = -10;
 * loss = mean_i CE([l_pos[i], l_neg[i][0..K)] / tau, target 0). Plain dot products (CUT
 * feeds L2-normalised features). k gets no gradient (CUT detaches it). Uses two batched
 * GEMMs (q k^T and dS k). */
enco_status enco_loss_patchnce(enco_ctx *ctx, cl_mem loss, size_t loss_off, /* (1) */
                               cl_mem grad, size_t grad_off,                /* (B*K, D) or NULL */
                               cl_mem q, size_t q_off,                      /* (B*K, D) */
                               cl_mem k, size_t k_off,                      /* (B*K, D) */
                               size_t b, size_t kp, size_t d, float tau, float grad_scale,
                               cl_mem work, size_t work_off);
size_t enco_loss_patchnce_work(size_t b, size_t kp);
void enco_loss_patchnce_ref(double *loss, double *grad /* (B*K, D) or NULL */, const double *q,
                            const double *k, size_t b, size_t kp, size_t d, double tau,
                            double grad_scale);
enco_op_cost enco_loss_patchnce_cost(size_t b, size_t kp, size_t d);

/* ---- PatchNCE "cos" (DCLGAN's PatchNCELoss, spec MODELS.md 0.5b) ----
 * As enco_loss_patchnce (same arguments, groups, -10 diagonal before / tau, CE with target
 * 0, mean over the B*K rows, k constant) with cosine similarities for logits:
 * l_pos[i] = cos(q_i, k_i), l_neg[i][j] = cos(q_i, k_{b*K+j}). cos is PyTorch 1.13's
 * F.cosine_similarity with eps = ENCO_COS_EPS, i.e. (q/n1).(k/n2) with n1 = max(|q|,eps),
 * n2 = max(|k|,eps) each clamped under no_grad; its autograd gradient (checked against
 * torch 1.13 in float64, tiny rows included) is d cos/d q = k/(n1 n2) - cos q/n1^2 for
 * every row, below eps too (there n1 = eps is a constant to autograd, so it is not
 * I/eps; the derivative of the clamped forward is not what 1.13 gives). The device
 * normalises the rows into `work` (qh = q/n1, kh = k/n2), runs the dot PatchNCE on qh, kh
 * and maps its gradient g back row by row: grad_q = (g - (g.qh) qh) / n1. DCLGAN uses the
 * whole minibatch as one group: (b, kp) = (1, N*K). */
enco_status enco_loss_patchnce_cos(enco_ctx *ctx, cl_mem loss, size_t loss_off, /* (1) */
                                   cl_mem grad, size_t grad_off, /* (B*K, D) or NULL */
                                   cl_mem q, size_t q_off,       /* (B*K, D) */
                                   cl_mem k, size_t k_off,       /* (B*K, D) */
                                   size_t b, size_t kp, size_t d, float tau, float grad_scale,
                                   cl_mem work, size_t work_off);
size_t enco_loss_patchnce_cos_work(size_t b, size_t kp, size_t d);
void enco_loss_patchnce_cos_ref(double *loss, double *grad /* (B*K, D) or NULL */,
                                const double *q, const double *k, size_t b, size_t kp, size_t d,
                                double tau, double eps, double grad_scale);
enco_op_cost enco_loss_patchnce_cos_cost(size_t b, size_t kp, size_t d);

/* ---- PatchNCE over a slice of one group's queries (data-parallel training) ----
 * One group (b = 1) of kp keys k (kp, D), and the queries of its rows first .. first+mq-1
 * only: q (mq, D), query i's positive is key first + i. Loss and gradient are those of
 * enco_loss_patchnce (cosine = 0) or enco_loss_patchnce_cos (cosine = 1) with (b, kp) =
 * (1, kp) restricted to these rows: the loss is the mean over the mq rows, grad (mq, D) is
 * grad_scale * d(that mean)/dq. So the mean over the slices of a split of the group's rows
 * is the whole group's loss, and each slice's gradient is the whole group's rows' scaled by
 * kp / mq: a process that holds some of a batch's images and all the batch's keys computes
 * its images' share. k constant. */
enco_status enco_loss_patchnce_slice(enco_ctx *ctx, cl_mem loss, size_t loss_off, /* (1) */
                                     cl_mem grad, size_t grad_off, /* (mq, D) or NULL */
                                     cl_mem q, size_t q_off,       /* (mq, D) */
                                     cl_mem k, size_t k_off,       /* (kp, D) */
                                     size_t first, size_t mq, size_t kp, size_t d, float tau,
                                     float grad_scale, int cosine, cl_mem work, size_t work_off);
size_t enco_loss_patchnce_slice_work(size_t mq, size_t kp, size_t d, int cosine);
/* Written apart from the two references above (row by row, one similarity at a time). */
void enco_loss_patchnce_slice_ref(double *loss, double *grad /* (mq, D) or NULL */,
                                  const double *q, const double *k, size_t first, size_t mq,
                                  size_t kp, size_t d, double tau, int cosine, double eps,
                                  double grad_scale);

/* ---- combine: out = sum_{i<count} weights[i] * losses[i][offs[i]], summed in order in float,
 * 1 <= count <= ENCO_LOSS_COMBINE_MAX. out may be one of the inputs. ---- */
#define ENCO_LOSS_COMBINE_MAX 8
enco_status enco_loss_combine(enco_ctx *ctx, cl_mem out, size_t out_off, /* (1) */
                              const cl_mem *losses, const size_t *offs, /* count x (1) */
                              const float *weights, size_t count);
void enco_loss_combine_ref(double *out, const double *losses, const double *weights,
                           size_t count);
enco_op_cost enco_loss_combine_cost(size_t count);

#endif
