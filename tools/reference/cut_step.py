#!/usr/bin/python3
"""One CUT / FastCUT training iteration (docs/cut.md, docs/fastcut.md) in PyTorch, for parity
tests of enco-cl. enco_step.py dispatches here when model.family is "cut" or "fastcut":

    python3 tools/reference/enco_step.py --config CFG --state IN.safetensors --out OUT.safetensors

See tools/reference/README.md ("CUT and FastCUT") for the tensor names of IN and OUT.
"""
import time

import torch
import torch.nn.functional as Fn

import enco_step
from cut_model import CUTNets, encode, l2norm_rows


def make_optimizers(nets, cfg):
    t, s = cfg["train"], cfg[cfg["model"]["family"]]
    kw = dict(lr=s["lr"], betas=(t["beta1"], t["beta2"]), eps=t["eps"], foreach=False)
    return {n: torch.optim.Adam(getattr(nets, n).parameters(), **kw) for n in enco_step.NETS}


class Draws:
    """The random draws of one iteration: FastCUT's flip and the patch ids of each NCE call.

    Given tensors (`flipped`, `patch_ids.<l>`, `patch_ids_Y.<l>`) are used and checked; absent ones
    are drawn from the torch generator `gen` in the order flip, NCE ids (layer order), NCE_Y ids.
    Those draws are not expected to match the C engine's RNG."""

    def __init__(self, section, given, gen):
        self.s = section
        self.given = given
        self.gen = gen

    def flip(self):
        if "flipped" in self.given:
            f = self.given["flipped"]
            if f.dtype != torch.int64 or f.dim() != 0 or int(f) not in (0, 1):
                raise ValueError("flipped must be an I64 scalar 0 or 1, got %s %s"
                                 % (f.dtype, tuple(f.shape)))
            if int(f) and not self.s["nce_flip_equivariance"]:
                raise ValueError("flipped = 1 given but nce_flip_equivariance is off")
            return bool(int(f))
        if not self.s["nce_flip_equivariance"]:
            return False
        return bool(torch.rand((), generator=self.gen) < 0.5)

    def ids(self, name, n, hw):
        """I64 n x K ids (rows equal) for `name` = patch_ids.<l> or patch_ids_Y.<l>, H*W = hw."""
        K = min(self.s["num_patches"], hw)
        if name in self.given:
            ids = self.given[name]
            if ids.dtype != torch.int64 or tuple(ids.shape) != (n, K):
                raise ValueError("%s must be I64 %d x %d (N x min(num_patches, H*W)), got %s %s"
                                 % (name, n, K, ids.dtype, tuple(ids.shape)))
            if not torch.equal(ids, ids[:1].expand(n, K)):
                raise ValueError("%s: rows differ (one permutation per layer is shared by the batch)" % name)
            if ids.min() < 0 or ids.max() >= hw:
                raise ValueError("%s has indices outside 0..%d" % (name, hw - 1))
            return ids
        row = torch.randperm(hw, generator=self.gen)[:K]
        return row[None].expand(n, K).contiguous()


def patchnce_dot(q, k, groups, nce_T):
    """MODELS.md 0.5a: per-row CE with target 0 over [q_i.k_i, q_i.k_j (j in i's group)] / T,
    the self pair's negative logit replaced by -10 before dividing. q, k (R, C), R = groups * P."""
    k = k.detach()
    R, C = q.shape
    l_pos = torch.bmm(q.view(R, 1, C), k.view(R, C, 1)).view(R, 1)
    qg, kg = q.view(groups, -1, C), k.view(groups, -1, C)
    P = qg.shape[1]
    l_neg = torch.bmm(qg, kg.transpose(2, 1))
    self_pair = torch.eye(P, dtype=torch.bool, device=q.device)[None]
    l_neg = l_neg.masked_fill(self_pair, -10.0).view(-1, P)
    logits = torch.cat((l_pos, l_neg), dim=1) / nce_T
    return Fn.cross_entropy(logits, torch.zeros(R, dtype=torch.long, device=q.device), reduction="none")


def sample_rows(feat, ids):
    """feat N x C x H x W, ids N x K (rows equal) -> (N*K) x C, image-major.

    Gathered on the NCHW layout (then transposed) so that the gradient sent back to `feat` is a
    contiguous NCHW tensor. The reference's `feat.permute(0, 2, 3, 1).flatten(1, 2)[:, ids, :]` gives
    the same values but sends back a channels_last-strided gradient, and torch 1.13's CPU
    InstanceNorm backward is wrong for such a gradient at batch 1 (README "A torch 1.13 bug the twin
    works around"): every resblock-output NCE layer got a wrong G gradient."""
    return feat.flatten(2)[:, :, ids[0]].transpose(1, 2).flatten(0, 1)


def nce(nets, s, src, tgt, flipped, draws, idname, N, feat_k=None):
    """lambda_NCE * mean_l PatchNCE(q_l, k_l): q from G_enc(tgt) (flipped back along W when the
    batch was flipped), k from G_enc(src) (constant). Returns (loss, per-layer CE means, ids, qnorm).
    `feat_k` (optional) replaces G_enc(src): test_reference's finite differences hold the keys fixed."""
    layers = nets.nce_layers
    feat_q = encode(nets.netG, tgt, layers)
    if flipped:
        feat_q = [torch.flip(f, [3]) for f in feat_q]
    if feat_k is None:
        with torch.no_grad():
            feat_k = encode(nets.netG, src, layers)
    groups = 1 if s["nce_includes_all_negatives_from_minibatch"] else N
    total, per, ids_used, qn = 0.0, [], [], []
    for l, (fq, fk) in enumerate(zip(feat_q, feat_k)):
        hw = fq.shape[2] * fq.shape[3]
        ids = draws.ids("%s.%d" % (idname, l), N, hw)
        ids_used.append(ids)
        with torch.no_grad():
            k = nets.netF(l, sample_rows(fk, ids))
        mlp = getattr(nets.netF, "mlp_%d" % l)
        qh = mlp(sample_rows(fq, ids))
        norms = torch.linalg.vector_norm(qh.detach(), dim=1)
        qn.append(torch.stack([norms.min(), norms.median()]))
        q = l2norm_rows(qh)
        ce = patchnce_dot(q, k, groups, s["nce_T"])
        per.append(ce.detach().mean())
        total = total + (ce * s["lambda_NCE"]).mean()
    return total / len(layers), per, ids_used, qn


def train_step(nets, opts, cfg, real_A, real_B, draws):
    """MODELS.md 1.2 / 2. Returns a dict of output tensors (no prefixes)."""
    s = cfg[nets.family]
    N = real_A.shape[0]
    nce_idt = bool(s["nce_idt"])
    nets.train()

    # 1. forward: G(real), real = cat(real_A, real_B) with nce_idt, flipped along W on the flip draw
    flipped = draws.flip()
    real = torch.cat((real_A, real_B), 0) if nce_idt else real_A
    if flipped:
        real = torch.flip(real, [3])
    fake, _ = nets.netG(real)
    fake_B = fake[:N]
    idt_B = fake[N:] if nce_idt else None

    # 2. D step (CUT: one batched D call on cat(fake, real_B) as cut_model.py; FastCUT: two calls)
    for p in nets.netD.parameters():
        p.requires_grad_(True)
    opts["netD"].zero_grad(set_to_none=True)
    if nets.family == "cut":
        pred = nets.netD(torch.cat((fake_B.detach(), real_B), 0))
        pred_fake_D, pred_real = pred[:N], pred[N:]
    else:
        pred_fake_D = nets.netD(fake_B.detach())
        pred_real = nets.netD(real_B)
    loss_D_fake = Fn.mse_loss(pred_fake_D, torch.zeros_like(pred_fake_D))
    loss_D_real = Fn.mse_loss(pred_real, torch.ones_like(pred_real))
    loss_D = (loss_D_fake + loss_D_real) * 0.5
    loss_D.backward()
    grads = {"netD." + k: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
             for k, p in nets.netD.named_parameters()}
    opts["netD"].step()

    # 3. G step with the updated, frozen D
    for p in nets.netD.parameters():
        p.requires_grad_(False)
    opts["netG"].zero_grad(set_to_none=True)
    opts["netF"].zero_grad(set_to_none=True)
    zero = torch.zeros((), dtype=fake_B.dtype)
    if s["lambda_GAN"] > 0:
        pred_fake = nets.netD(fake_B)
        loss_G_GAN = Fn.mse_loss(pred_fake, torch.ones_like(pred_fake)) * s["lambda_GAN"]
    else:  # the reference skips D here; pred_fake is reported anyway
        with torch.no_grad():
            pred_fake = nets.netD(fake_B)
        loss_G_GAN = zero
    L = len(nets.nce_layers)
    out = {}
    if s["lambda_NCE"] > 0:
        loss_NCE, per, ids, qn = nce(nets, s, real_A, fake_B, flipped, draws, "patch_ids", N)
        for l in range(L):
            out["loss.NCE.%d" % l] = per[l]
            out["patch_ids.%d" % l] = ids[l]
            out["diag.qnorm.%d" % l] = qn[l]
    else:
        loss_NCE = zero
    if nce_idt and s["lambda_NCE"] > 0:  # the reference's condition
        loss_NCE_Y, per, ids, qn = nce(nets, s, real_B, idt_B, flipped, draws, "patch_ids_Y", N)
        for l in range(L):
            out["loss.NCE_Y.%d" % l] = per[l]
            out["patch_ids_Y.%d" % l] = ids[l]
            out["diag.qnorm_Y.%d" % l] = qn[l]
        loss_NCE_both = (loss_NCE + loss_NCE_Y) * 0.5
    else:
        loss_NCE_Y = zero
        loss_NCE_both = loss_NCE
    loss_G = loss_G_GAN + loss_NCE_both
    if loss_G.requires_grad:
        loss_G.backward()
    for net in ("netG", "netF"):
        for k, p in getattr(nets, net).named_parameters():
            grads[net + "." + k] = p.grad.clone() if p.grad is not None else torch.zeros_like(p)
    opts["netG"].step()
    opts["netF"].step()

    res = {"fake_B": fake_B.detach().clone()}
    if nce_idt:
        res["idt_B"] = idt_B.detach().clone()
    res["pred_fake"] = pred_fake.detach().clone()
    res["pred_fake_D"] = pred_fake_D.detach().clone()
    res["pred_real"] = pred_real.detach().clone()
    for name, v in (("D", loss_D), ("D_real", loss_D_real), ("D_fake", loss_D_fake), ("G_GAN", loss_G_GAN),
                    ("NCE", loss_NCE), ("NCE_Y", loss_NCE_Y), ("G", loss_G)):
        res["loss." + name] = v.detach().reshape(()).to(fake_B.dtype).clone()
    res.update({k: v.clone() for k, v in out.items()})
    res["flipped"] = torch.tensor(int(flipped), dtype=torch.int64)
    for k, _ in nets.named_parameters():
        res["grad." + k] = grads[k]
    for k, v in nets.state_dict().items():
        res["after." + k] = v.detach().clone()
    return res


TRAJ_KEYS = ("fake_B", "pred_fake", "flipped")


def run(cfg, state, init=False, size=None, save_adam=False, log=print, dtype=torch.float32):
    """As enco_step.run, for model.family "cut" / "fastcut"."""
    s = cfg[cfg["model"]["family"]]
    torch.manual_seed(cfg["train"]["seed"])
    nets = CUTNets(cfg)
    if init:
        nets.init(cfg["train"]["seed"], cfg["train"]["init_gain"])
    missing = enco_step.load_weights(nets, state, strict=not init)
    if missing and init:
        log("initialised %d missing tensors from seed %d" % (len(missing), cfg["train"]["seed"]))
    if dtype != torch.float32:  # analysis only
        nets.to(dtype)
        state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
    opts = make_optimizers(nets, cfg)
    enco_step.load_adam(nets, opts, state)
    gen = torch.Generator().manual_seed(cfg["train"]["seed"])

    n_iter = 0
    while "iter%d.real_A" % n_iter in state:
        n_iter += 1
    out = {}
    t0 = time.time()
    if n_iter == 0:
        if "real_A" not in state:
            if not size:
                raise KeyError("state has no real_A (give --size N,H,W for synthetic inputs)")
            g = torch.Generator().manual_seed(cfg["train"]["seed"] + 1)
            state = dict(state)
            state["real_A"] = torch.rand(size, generator=g) * 2 - 1
            state["real_B"] = torch.rand(size, generator=g) * 2 - 1
        if "real_B" not in state or state["real_B"].shape != state["real_A"].shape:
            raise KeyError("state needs real_B of the shape of real_A")
        out = train_step(nets, opts, cfg, state["real_A"].to(dtype), state["real_B"].to(dtype),
                         Draws(s, state, gen))
    else:
        for i in range(n_iter):
            inp = enco_step.iteration_inputs(state, i)
            o = train_step(nets, opts, cfg, inp["real_A"].to(dtype), inp["real_B"].to(dtype),
                           Draws(s, inp, gen))
            for k, v in o.items():
                if k.startswith("loss.") or k.startswith("patch_ids") or k in TRAJ_KEYS:
                    out["iter%d.%s" % (i, k)] = v
            if i == n_iter - 1:
                out.update({k: v for k, v in o.items() if k.startswith("after.")})
    out["time_s"] = torch.tensor(time.time() - t0, dtype=torch.float32)
    if save_adam:
        enco_step.dump_adam(nets, opts, out)
    return out, nets
