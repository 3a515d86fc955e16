#!/usr/bin/python3
"""One DCLGAN training iteration (MODELS.md 4) in PyTorch, for parity tests of enco-cl.
enco_step.py dispatches here when model.family is "dclgan":

    python3 tools/reference/enco_step.py --config CFG --state IN.safetensors --out OUT.safetensors

Nets netG_A, netG_B, netD_A (judges domain B), netD_B, netF1 (embeds G_A's encoder features),
netF2 (G_B's); Adam over G_A + G_B and over D_A + D_B (lr, betas train.beta1/beta2), over F1 + F2
(lr_F, betas (beta1_F, 0.999)). D step, then the G + F step with the cross wiring:
NCE1: keys F1(G_A_enc(real_A)), queries F2(G_B_enc(fake_B)); NCE2: keys F2(G_B_enc(real_B)),
queries F1(G_A_enc(fake_A)); the "cos" PatchNCE with negatives from the whole batch.
See tools/reference/README.md ("CycleGAN and DCLGAN") for the tensor names of IN and OUT.
"""
import torch
import torch.nn as nn
import torch.nn.functional as Fn

from cut_model import PatchSampleHeads, encode, l2norm_rows
from cut_step import Draws, sample_rows
from cyclegan_step import d_loss, grads_of, run_family, scalar, set_requires_grad
from enco_model import NLayerDiscriminator, ResnetGenerator, init_weights

LOSSES = ("D_A", "D_B", "G_A", "G_B", "NCE1", "NCE2", "idt_A", "idt_B", "G")
TRAJ_KEYS = ("fake_B", "fake_A")


class DCLNets(nn.Module):
    """G_A, G_B (antialiased unless model.no_antialias / no_antialias_up), D_A, D_B, F1, F2
    (PatchSampleF heads mlp_<l> over dclgan.nce_layers, width netF_nc)."""

    NET_NAMES = ("netG_A", "netG_B", "netD_A", "netD_B", "netF1", "netF2")
    OPT_GROUPS = {"G": ("netG_A", "netG_B"), "D": ("netD_A", "netD_B"), "F": ("netF1", "netF2")}

    def __init__(self, cfg):
        super().__init__()
        m, s = cfg["model"], cfg["dclgan"]
        if m["input_nc"] != m["output_nc"]:
            raise ValueError("dclgan needs model.input_nc == model.output_nc (both G map input_nc -> output_nc "
                             "and G_B reads real_B, as the reference)")
        for n in ("netG_A", "netG_B"):
            setattr(self, n, ResnetGenerator(m["input_nc"], m["output_nc"], m["ngf"], m["n_blocks"],
                                             m["no_antialias"], m["no_antialias_up"]))
        for n in ("netD_A", "netD_B"):
            setattr(self, n, NLayerDiscriminator(m["output_nc"], m["ndf"], m["n_layers_D"], m["no_antialias"]))
        self.nce_layers = list(s["nce_layers"])
        info = self.netG_A.out_info
        for l in self.nce_layers:
            if not 0 <= l < len(info):
                raise ValueError("dclgan.nce_layers: layer %d out of range (G has modules 0..%d)" % (l, len(info) - 1))
        chans = [m["input_nc"] if l == 0 else info[l][0] for l in self.nce_layers]
        self.netF1 = PatchSampleHeads(chans, s["netF_nc"])
        self.netF2 = PatchSampleHeads(chans, s["netF_nc"])

    def init(self, seed, gain=0.02):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            init_weights(self, gain)


def patchnce_cos(q, k, nce_T):
    """MODELS.md 0.5b: logits [cos(q_i, k_i), cos(q_i, k_j) for all R rows j] / T, the j = i entry
    set to -10 before dividing; cos eps 1e-8; per-row CE with target 0. q, k (R, C)."""
    k = k.detach()
    R = q.shape[0]
    l_pos = Fn.cosine_similarity(q, k, dim=-1, eps=1e-8).view(R, 1)
    l_neg = Fn.cosine_similarity(q.view(R, 1, -1), k.view(1, R, -1), dim=-1, eps=1e-8)
    l_neg = l_neg.masked_fill(torch.eye(R, dtype=torch.bool, device=q.device), -10.0)
    logits = torch.cat((l_pos, l_neg), dim=1) / nce_T
    return Fn.cross_entropy(logits, torch.zeros(R, dtype=torch.long, device=q.device), reduction="none")


def nce(nets, s, G_q, F_q, G_k, F_k, src, tgt, draws, idname, N):
    """mean_l PatchNCE_cos(q_l = F_q(G_q_enc(tgt)), k_l = F_k(G_k_enc(src))) (without lambda_NCE).
    The ids of each layer are drawn by the key call (`idname`.<l>) and reused by the query call.
    Returns (loss, per-layer CE means, ids, [min, median] query norms before the L2 norm)."""
    layers = nets.nce_layers
    feat_q = encode(G_q, tgt, layers)
    with torch.no_grad():
        feat_k = encode(G_k, src, layers)
    ids = [draws.ids("%s.%d" % (idname, l), N, f.shape[2] * f.shape[3]) for l, f in enumerate(feat_k)]
    total, per, qn = 0.0, [], []
    for l, (fq, fk) in enumerate(zip(feat_q, feat_k)):
        with torch.no_grad():
            k = F_k(l, sample_rows(fk, ids[l]))
        qh = getattr(F_q, "mlp_%d" % l)(sample_rows(fq, ids[l]))
        norms = torch.linalg.vector_norm(qh.detach(), dim=1)
        qn.append(torch.stack([norms.min(), norms.median()]))
        ce = patchnce_cos(l2norm_rows(qh), k, s["nce_T"])
        per.append(ce.detach().mean())
        total = total + ce.mean()
    return total / len(layers), per, ids, qn


def train_step(nets, opts, cfg, real_A, real_B, draws):
    """MODELS.md 4.3. Returns a dict of output tensors (no prefixes)."""
    s = cfg["dclgan"]
    N = real_A.shape[0]
    nets.train()
    G_A = lambda x: nets.netG_A(x)[0]  # noqa: E731
    G_B = lambda x: nets.netG_B(x)[0]  # noqa: E731
    zero = torch.zeros((), dtype=real_A.dtype)

    # 1. forward
    fake_B = G_A(real_A)
    fake_A = G_B(real_B)
    idt_A = idt_B = None
    if s["nce_idt"]:
        idt_A = G_A(real_B)
        idt_B = G_B(real_A)

    # 2. D step (D's gradient is not scaled by lambda_GAN; the logged loss is)
    set_requires_grad(nets, ("netD_A", "netD_B"), True)
    opts["D"].zero_grad(set_to_none=True)
    loss_D_A = d_loss(nets.netD_A, real_B, fake_B)
    loss_D_A.backward()
    loss_D_A = loss_D_A * s["lambda_GAN"]
    loss_D_B = d_loss(nets.netD_B, real_A, fake_A)
    loss_D_B.backward()
    loss_D_B = loss_D_B * s["lambda_GAN"]
    grads = grads_of(nets, ("netD_A", "netD_B"))
    opts["D"].step()

    # 3. G + F step with the updated, frozen D
    set_requires_grad(nets, ("netD_A", "netD_B"), False)
    opts["G"].zero_grad(set_to_none=True)
    opts["F"].zero_grad(set_to_none=True)
    if s["lambda_GAN"] > 0:
        pred = nets.netD_A(fake_B)
        loss_G_A = Fn.mse_loss(pred, torch.ones_like(pred)).mean() * s["lambda_GAN"]
        pred = nets.netD_B(fake_A)
        loss_G_B = Fn.mse_loss(pred, torch.ones_like(pred)).mean() * s["lambda_GAN"]
    else:
        loss_G_A = loss_G_B = zero
    out = {}
    L = len(nets.nce_layers)
    loss_idt_A = loss_idt_B = zero
    if s["lambda_NCE"] > 0:
        n1, per1, ids1, qn1 = nce(nets, s, nets.netG_B, nets.netF2, nets.netG_A, nets.netF1, real_A, fake_B,
                                  draws, "patch_ids", N)
        loss_NCE1 = n1 * s["lambda_NCE"]
        n2, per2, ids2, qn2 = nce(nets, s, nets.netG_A, nets.netF1, nets.netG_B, nets.netF2, real_B, fake_A,
                                  draws, "patch_ids_2", N)
        loss_NCE2 = n2 * s["lambda_NCE"]
        for l in range(L):
            out["loss.NCE1.%d" % l], out["loss.NCE2.%d" % l] = per1[l], per2[l]
            out["patch_ids.%d" % l], out["patch_ids_2.%d" % l] = ids1[l], ids2[l]
            out["diag.qnorm.%d" % l], out["diag.qnorm_2.%d" % l] = qn1[l], qn2[l]
        if s["nce_idt"]:  # the reference's condition is lambda_NCE > 0 (it crashes without nce_idt)
            loss_idt_A = Fn.l1_loss(idt_A, real_B) * s["lambda_IDT"]
            loss_idt_B = Fn.l1_loss(idt_B, real_A) * s["lambda_IDT"]
            loss_NCE_both = (loss_NCE1 + loss_NCE2) * 0.5 + (loss_idt_A + loss_idt_B) * 0.5
        else:
            loss_NCE_both = (loss_NCE1 + loss_NCE2) * 0.5
    else:
        loss_NCE1 = loss_NCE2 = zero
        loss_NCE_both = (loss_NCE1 + loss_NCE2) * 0.5
    loss_G = (loss_G_A + loss_G_B) * 0.5 + loss_NCE_both
    if loss_G.requires_grad:
        loss_G.backward()
    grads.update(grads_of(nets, ("netG_A", "netG_B", "netF1", "netF2")))
    opts["G"].step()
    opts["F"].step()

    dt = real_A.dtype
    res = {"fake_B": fake_B.detach().clone(), "fake_A": fake_A.detach().clone()}
    if idt_A is not None:
        res["idt_A"] = idt_A.detach().clone()
        res["idt_B"] = idt_B.detach().clone()
    for name, v in zip(LOSSES, (loss_D_A, loss_D_B, loss_G_A, loss_G_B, loss_NCE1, loss_NCE2,
                                loss_idt_A, loss_idt_B, loss_G)):
        res["loss." + name] = scalar(v, dt)
    res.update({k: v.clone() for k, v in out.items()})
    for k, _ in nets.named_parameters():
        res["grad." + k] = grads[k]
    for k, v in nets.state_dict().items():
        res["after." + k] = v.detach().clone()
    return res


def hparams(cfg):
    t, s = cfg["train"], cfg["dclgan"]
    gd = dict(lr=s["lr"], betas=(t["beta1"], t["beta2"]), eps=t["eps"])
    return {"G": gd, "D": gd, "F": dict(lr=s["lr_F"], betas=(s["beta1_F"], 0.999), eps=t["eps"])}


def _step(nets, opts, cfg, real_A, real_B, gen, inp, _extra):
    return train_step(nets, opts, cfg, real_A, real_B, Draws(dict(cfg["dclgan"], nce_flip_equivariance=False), inp, gen))


def run(cfg, state, init=False, size=None, save_adam=False, log=print, dtype=torch.float32):
    """As enco_step.run, for model.family "dclgan"."""
    return run_family(DCLNets, _step, hparams, TRAJ_KEYS, cfg, state, init, size, save_adam, log, dtype,
                      lambda *a: None)
