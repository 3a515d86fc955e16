#!/usr/bin/python3
"""One EnCo training iteration (spec section 6) in PyTorch, for parity tests of enco-cl.
With model.family = "cut" or "fastcut" in the config the iteration is CUT's / FastCUT's (cut_step.py);
"cyclegan" and "dclgan" run cyclegan_step.py / dclgan_step.py.

    python3 tools/reference/enco_step.py --config CFG --state IN.safetensors --out OUT.safetensors

See tools/reference/README.md for the tensor names of IN and OUT.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as Fn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enco_config  # noqa: E402
import safetensors_io as st  # noqa: E402
from enco_model import EnCoNets, count_params, l2norm  # noqa: E402

NETS = ("netG", "netD", "netF")

# oneDNN (mkldnn) float32 convolutions in this torch build (Debian 1.13) gave gradients off by
# several percent on some shapes (e.g. the 12x16 resblock maps of the 48x64 fixture) compared
# with float64; the native convolution path agrees with float64 to ~1e-6. Use it everywhere.
torch.backends.mkldnn.enabled = False


# ----------------------------------------------------------------------------- state I/O

def load_weights(nets, state, strict=True, names=NETS):
    """Copy the <net>.* tensors of `state` (net in `names`: netG/netD/netF; CycleGAN and DCLGAN
    pass theirs) into `nets`. Returns the missing names."""
    own = nets.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k.split(".", 1)[0] in names and k not in own]
    if extra:
        raise KeyError("state has weights the model does not: %s" % ", ".join(extra[:10]))
    if missing and strict:
        raise KeyError("state lacks weights: %s" % ", ".join(missing[:10]))
    for k, v in own.items():
        if k in state:
            src = state[k]
            if tuple(src.shape) != tuple(v.shape):
                raise ValueError("%s: shape %s in state, %s in model" % (k, tuple(src.shape), tuple(v.shape)))
            if src.dtype != v.dtype:
                raise TypeError("%s: dtype %s in state, %s in model" % (k, src.dtype, v.dtype))
            with torch.no_grad():
                v.copy_(src)
    return missing


def make_optimizers(nets, cfg):
    t = cfg["train"]
    betas = (t["beta1"], t["beta2"])
    return {
        "netG": torch.optim.Adam(nets.netG.parameters(), lr=t["lr_G"], betas=betas, eps=t["eps"], foreach=False),
        "netD": torch.optim.Adam(nets.netD.parameters(), lr=t["lr_D"], betas=betas, eps=t["eps"], foreach=False),
        "netF": torch.optim.Adam(nets.netF.parameters(), lr=t["lr_F"], betas=betas, eps=t["eps"], foreach=False),
    }


def named_params(nets):
    return [(k, p) for k, p in nets.named_parameters()]


def load_adam(nets, opts, state):
    """Optional Adam state: adam_step.<net> (I64 ()), adam_m.<param>, adam_v.<param>."""
    params = dict(named_params(nets))
    for net in NETS:
        key = "adam_step." + net
        if key not in state:
            continue
        step = float(state[key].item())
        for name, p in params.items():
            if name.startswith(net + "."):
                opts[net].state[p] = {"step": torch.tensor(step),
                                      "exp_avg": state["adam_m." + name].clone(),
                                      "exp_avg_sq": state["adam_v." + name].clone()}


def dump_adam(nets, opts, out, prefix=""):
    for net in NETS:
        step = 0
        for name, p in named_params(nets):
            if not name.startswith(net + "."):
                continue
            s = opts[net].state.get(p)
            if s:
                step = int(s["step"].item())
                out[prefix + "adam_m." + name] = s["exp_avg"].clone()
                out[prefix + "adam_v." + name] = s["exp_avg_sq"].clone()
        out[prefix + "adam_step." + net] = torch.tensor(step, dtype=torch.int64)


# ----------------------------------------------------------------------------- sampling

class Sampler:
    """Patch indices for one iteration, per pair p, image b (positions y*W+x in an H x W map).

    Priority: explicit `patch_ids.<p>` (N x K) > DAG with given permutations
    (`dag_cand.<p>` N x M, `dag_cover.<p>` N x R) > draws from a torch.Generator."""

    def __init__(self, cfg, given, gen):
        self.t = cfg["train"]
        self.given = given
        self.gen = gen

    def sizes(self, hw):
        t = self.t
        K = min(t["num_patches"], hw)
        M = min(t["oversample_ratio"] * K, hw)
        R = int(K * t["random_ratio"])
        return K, M, R

    def ids(self, p, score, hw):
        """score: (N, H*W) detached DAG score for the query map of pair p, or None."""
        N = score.shape[0]
        K, M, R = self.sizes(hw)
        key = "patch_ids.%d" % p
        if key in self.given:
            ids = self.given[key].to(torch.int64)
            if ids.dim() != 2 or ids.shape[0] != N:
                raise ValueError("%s must be N x K, got %s" % (key, tuple(ids.shape)))
            if ids.min() < 0 or ids.max() >= hw:
                raise ValueError("%s has indices outside 0..%d" % (key, hw - 1))
            return ids
        rows = []
        for b in range(N):
            if self.t["sampling"] == "random":
                rows.append(torch.randperm(hw, generator=self.gen)[:K].to(score.device))
                continue
            ck, vk = "dag_cand.%d" % p, "dag_cover.%d" % p
            if ck in self.given:
                cand = self.given[ck][b].to(torch.int64)
                cover = self.given[vk][b].to(torch.int64) if R > 0 else cand[:0]
                if cand.numel() != M or cover.numel() != R:
                    raise ValueError("pair %d: dag_cand must have %d and dag_cover %d columns" % (p, M, R))
            else:
                cand = torch.randperm(hw, generator=self.gen)[:M]
                cover = torch.randperm(hw, generator=self.gen)[hw - R:] if R > 0 else cand[:0]
            cand, cover = cand.to(score.device), cover.to(score.device)
            rows.append(dag_select(score[b], cand, cover, K - R,
                                   descending=self.t["dag_order"] == "descending"))
        return torch.stack(rows, 0)


def dag_select(score, cand, cover, n_good, descending=False):
    """Spec 4.3-4.5: rank the candidates by score (stable sort: ties keep candidate order),
    keep the first n_good, then append the covering positions."""
    order = torch.sort(score[cand], descending=descending, stable=True).indices
    return torch.cat([cand[order[:n_good]], cover])


def dag_scores(pred_fake, h, w):
    """Spec 4.1: bilinear (align_corners=False) resize of the D output to h x w, flattened."""
    s = Fn.interpolate(pred_fake.detach(), size=(h, w), mode="bilinear", align_corners=False)
    return s.flatten(1)


def gather(feat, ids):
    """feat N x C x H x W, ids N x K -> (N*K) x C, image-major."""
    N, C, H, W = feat.shape
    flat = feat.permute(0, 2, 3, 1).reshape(N, H * W, C)
    return torch.cat([flat[b, ids[b]] for b in range(N)], 0)


# ----------------------------------------------------------------------------- the iteration

def train_step(nets, opts, cfg, real_A, real_B, sampler):
    """Spec section 6. Returns a dict of output tensors (no prefixes)."""
    t = cfg["train"]
    N = real_A.shape[0]
    use_idt = bool(t["nce_idt"])
    nets.train()

    # 1. forward G (identity batch: one batched forward on cat(real_A, real_B))
    real = torch.cat([real_A, real_B], 0) if use_idt else real_A
    fake, feats = nets.netG(real, nets.nce_layers)
    fake_B = fake[:N]
    idt_B = fake[N:] if use_idt else None
    feats = [f[:N] for f in feats]

    # 2. D step: fake detached, no image pool
    for p in nets.netD.parameters():
        p.requires_grad_(True)
    opts["netD"].zero_grad(set_to_none=True)
    pred_fake_D = nets.netD(fake_B.detach())
    pred_real = nets.netD(real_B)
    loss_D = 0.5 * (pred_fake_D.pow(2).mean() + (pred_real - 1).pow(2).mean())
    loss_D.backward()
    grads = {"netD." + k: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
             for k, p in nets.netD.named_parameters()}
    opts["netD"].step()

    # 3. G step with the updated, frozen D
    for p in nets.netD.parameters():
        p.requires_grad_(False)
    opts["netG"].zero_grad(set_to_none=True)
    opts["netF"].zero_grad(set_to_none=True)
    pred_fake = nets.netD(fake_B)
    loss_G_GAN = t["lambda_GAN"] * (pred_fake - 1).pow(2).mean()

    P = len(nets.key_layers)
    f_keys = [f.detach() for f in feats[:P]]
    f_queries = feats[P:][::-1]
    id_list, losses, qmin = [], [], []
    q_out = []
    for p in range(P):  # query branch, all pairs (updates BN stats first)
        fq = f_queries[p]
        H, W = fq.shape[2], fq.shape[3]
        ids = sampler.ids(p, dag_scores(pred_fake, H, W), H * W)
        id_list.append(ids)
        qh = nets.netF.predict(p, nets.netF.project(p, gather(fq, ids)))
        qn = torch.linalg.vector_norm(qh.detach(), dim=1)
        qmin.append(torch.stack([qn.min(), qn.median()]))
        q_out.append(l2norm(qh))
    for p in range(P):  # key branch: same mlp, train-mode BN, constant result
        with torch.no_grad():
            k = l2norm(nets.netF.project(p, gather(f_keys[p], id_list[p])))
        cos = Fn.cosine_similarity(q_out[p], k, dim=-1, eps=1e-8)
        losses.append((2 - 2 * cos).mean())
    loss_EnCo = t["lambda_NCE"] * torch.stack(losses).mean()

    if use_idt:
        loss_idt = t["lambda_IDT"] * (idt_B - real_B).abs().mean()
    else:
        loss_idt = torch.zeros((), dtype=fake_B.dtype, device=fake_B.device)
    if use_idt and t["lambda_NCE"] > 0:  # reference: identity counts only with lambda_NCE > 0
        loss_G = loss_G_GAN + 0.5 * (loss_EnCo + loss_idt)
    else:
        loss_G = loss_G_GAN + loss_EnCo
    loss_G.backward()
    for net in ("netG", "netF"):
        for k, p in getattr(nets, net).named_parameters():
            grads[net + "." + k] = p.grad.clone() if p.grad is not None else torch.zeros_like(p)
    opts["netG"].step()
    opts["netF"].step()

    out = {"fake_B": fake_B.detach().clone()}
    if use_idt:
        out["idt_B"] = idt_B.detach().clone()
    out["pred_fake"] = pred_fake.detach().clone()
    out["pred_fake_D"] = pred_fake_D.detach().clone()
    out["pred_real"] = pred_real.detach().clone()
    for name, v in (("D", loss_D), ("G_GAN", loss_G_GAN), ("EnCo", loss_EnCo), ("idt", loss_idt), ("G", loss_G)):
        out["loss." + name] = v.detach().reshape(()).to(fake_B.dtype).clone()
    for p in range(P):
        out["loss.EnCo.%d" % p] = losses[p].detach().reshape(()).clone()
        out["patch_ids.%d" % p] = id_list[p].clone()
        out["diag.qnorm.%d" % p] = qmin[p].clone()  # [min, median] of ||q|| before the L2 norm
    order = [k for k, _ in nets.named_parameters()]
    for k in order:
        out["grad." + k] = grads[k]
    for k, v in nets.state_dict().items():
        out["after." + k] = v.detach().clone()
    return out


# ----------------------------------------------------------------------------- driver

def strip_prefix(state, prefix):
    if not prefix:
        return dict(state)
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def iteration_inputs(state, t):
    """Inputs of iteration t of a trajectory file (iter<t>.*), without the prefix."""
    return strip_prefix(state, "iter%d." % t)


def run(cfg, state, init=False, size=None, save_adam=False, log=print, dtype=torch.float32):
    torch.manual_seed(cfg["train"]["seed"])
    nets = EnCoNets(cfg)
    if init:
        nets.init(cfg["train"]["seed"], cfg["train"]["init_gain"])
    missing = load_weights(nets, state, strict=not init)
    if missing and init:
        log("initialised %d missing tensors from seed %d" % (len(missing), cfg["train"]["seed"]))
    if dtype != torch.float32:  # analysis only: e.g. float64 to measure float32 rounding effects
        nets.to(dtype)
        state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
    opts = make_optimizers(nets, cfg)
    load_adam(nets, opts, state)
    gen = torch.Generator().manual_seed(cfg["train"]["seed"])

    n_iter = 0
    while "iter%d.real_A" % n_iter in state:
        n_iter += 1
    out = {}
    if n_iter == 0:
        if "real_A" not in state:
            if not size:
                raise KeyError("state has no real_A (give --size N,H,W for synthetic inputs)")
            g = torch.Generator().manual_seed(cfg["train"]["seed"] + 1)
            state = dict(state)
            state["real_A"] = torch.rand(size, generator=g) * 2 - 1
            state["real_B"] = torch.rand(size, generator=g) * 2 - 1
        t0 = time.time()
        out = train_step(nets, opts, cfg, state["real_A"].to(dtype), state["real_B"].to(dtype),
                         Sampler(cfg, state, gen))
        out["time_s"] = torch.tensor(time.time() - t0, dtype=torch.float32)
    else:
        t0 = time.time()
        for i in range(n_iter):
            inp = iteration_inputs(state, i)
            o = train_step(nets, opts, cfg, inp["real_A"].to(dtype), inp["real_B"].to(dtype),
                           Sampler(cfg, inp, gen))
            for k, v in o.items():
                if k.startswith("loss.") or k.startswith("patch_ids.") or k in ("fake_B", "pred_fake"):
                    out["iter%d.%s" % (i, k)] = v
            if i == n_iter - 1:
                for k, v in o.items():
                    if k.startswith("after."):
                        out[k] = v
        out["time_s"] = torch.tensor(time.time() - t0, dtype=torch.float32)
    if save_adam:
        dump_adam(nets, opts, out)
    return out, nets


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="libconfig file (missing keys take the defaults)")
    ap.add_argument("--state", help="input safetensors (real_A, real_B, [patch_ids.<p>], weights; CUT/FastCUT: "
                                    "also [patch_ids_Y.<l>], [flipped])")
    ap.add_argument("--out", required=True, help="output safetensors")
    ap.add_argument("--in-prefix", default=None,
                    help="read IN tensors under this prefix (default: 'in.' if the file has in.real_A)")
    ap.add_argument("--init", action="store_true", help="initialise weights absent from --state (seed train.seed)")
    ap.add_argument("--size", default=None, help="N,H,W of random inputs when the state has none")
    ap.add_argument("--save-adam", action="store_true", help="also write adam_m./adam_v./adam_step. after the step")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--params", action="store_true", help="print parameter counts of G, D, F")
    ap.add_argument("--float64", action="store_true",
                    help="run in float64 (analysis only: outputs are then F64; fixtures are float32)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    cfg = enco_config.load(args.config)
    state = st.load_torch(args.state) if args.state else {}
    prefix = args.in_prefix
    if prefix is None:
        prefix = "in." if ("in.real_A" in state or "in.iter0.real_A" in state) else ""
    state = strip_prefix(state, prefix)
    size = [int(x) for x in args.size.split(",")] if args.size else None
    if size:
        size = [size[0], cfg["model"]["input_nc"], size[1], size[2]]
    runner, loss_names = run, ("D", "G_GAN", "EnCo", "idt", "G")
    fam = cfg["model"]["family"]
    if fam in ("cut", "fastcut"):  # CUT / FastCUT: cut_step.py
        import cut_step
        runner, loss_names = cut_step.run, ("D", "G_GAN", "NCE", "NCE_Y", "G")
    elif fam == "cyclegan":
        import cyclegan_step
        runner, loss_names = cyclegan_step.run, cyclegan_step.LOSSES
    elif fam == "dclgan":
        import dclgan_step
        runner, loss_names = dclgan_step.run, dclgan_step.LOSSES
    out, nets = runner(cfg, state, init=args.init or not args.state, size=size, save_adam=args.save_adam,
                       dtype=torch.float64 if args.float64 else torch.float32)
    if args.params:
        for n in getattr(nets, "NET_NAMES", NETS):
            print("%s parameters: %d" % (n, count_params(getattr(nets, n))))
    st.save_torch(args.out, out, metadata={"producer": "tools/reference/enco_step.py",
                                           "torch": torch.__version__, "scalars": "shape ()"})
    losses = {k: float(v) for k, v in out.items() if k.startswith("loss.") and v.dim() == 0}
    if losses:
        print(" ".join("%s=%.6f" % (k, v) for k, v in losses.items() if k.count(".") == 1))
    for i in range(100):
        if "iter%d.loss.G" % i not in out:
            break
        print("iter %d: " % i + " ".join("%s=%.6f" % (n, float(out["iter%d.loss.%s" % (i, n)]))
                                         for n in loss_names))
    print("step time %.3f s (torch threads %d)" % (float(out["time_s"]), args.threads))


if __name__ == "__main__":
    main()
