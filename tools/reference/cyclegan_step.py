#!/usr/bin/python3
"""One CycleGAN training iteration (MODELS.md 3) in PyTorch, for parity tests of enco-cl.
enco_step.py dispatches here when model.family is "cyclegan":

    python3 tools/reference/enco_step.py --config CFG --state IN.safetensors --out OUT.safetensors

Nets netG_A (A -> B), netG_B (B -> A), netD_A (judges domain B), netD_B (judges domain A); one
Adam over G_A + G_B, one over D_A + D_B (their adam_step.<net> counters stay equal). The G step
comes before the D step; D sees the fakes through one ImagePool per fake domain (MODELS.md 3.3).
See tools/reference/README.md ("CycleGAN and DCLGAN") for the tensor names of IN and OUT.
"""
import time

import torch
import torch.nn as nn
import torch.nn.functional as Fn

import enco_step
from enco_model import NLayerDiscriminator, ResnetGenerator, init_weights

LOSSES = ("D_A", "D_B", "G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "G")
TRAJ_KEYS = ("fake_B", "fake_A", "pool_out.A", "pool_out.B")


class CycleGANNets(nn.Module):
    """netG_A, netG_B, netD_A, netD_B. cyclegan.nets "gpu" (the reference on a GPU, MODELS.md 3.1):
    G with stride-2 down convs and blur Upsample + conv up, D the strided PatchGAN; "cpu": the
    antialiased G and D of EnCo. model.no_antialias* are not read."""

    NET_NAMES = ("netG_A", "netG_B", "netD_A", "netD_B")
    OPT_GROUPS = {"G": ("netG_A", "netG_B"), "D": ("netD_A", "netD_B")}

    def __init__(self, cfg):
        super().__init__()
        m, s = cfg["model"], cfg["cyclegan"]
        strided = s["nets"] == "gpu"
        if s["lambda_identity"] > 0 and m["input_nc"] != m["output_nc"]:
            raise ValueError("cyclegan.lambda_identity > 0 needs model.input_nc == model.output_nc "
                             "(G_A(real_B) and G_B(real_A))")
        self.netG_A = ResnetGenerator(m["input_nc"], m["output_nc"], m["ngf"], m["n_blocks"], strided, False)
        self.netG_B = ResnetGenerator(m["output_nc"], m["input_nc"], m["ngf"], m["n_blocks"], strided, False)
        self.netD_A = NLayerDiscriminator(m["output_nc"], m["ndf"], m["n_layers_D"], strided)
        self.netD_B = NLayerDiscriminator(m["input_nc"], m["ndf"], m["n_layers_D"], strided)

    def init(self, seed, gain=0.02):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            init_weights(self, gain)


# ----------------------------------------------------------------------------- Adam over net groups

def make_group_optimizers(nets, hparams):
    """hparams: group -> dict(lr, betas, eps); one Adam per group over its nets' parameters in order."""
    return {g: torch.optim.Adam([p for n in nets.OPT_GROUPS[g] for p in getattr(nets, n).parameters()],
                                foreach=False, **hparams[g]) for g in nets.OPT_GROUPS}


def load_adam_groups(nets, opts, state):
    """Optional Adam state: adam_step.<net> (I64 (), equal within a group), adam_m.<net>.<param>,
    adam_v.<net>.<param>. A group is either wholly given or absent (fresh Adam)."""
    for g, members in nets.OPT_GROUPS.items():
        have = [n for n in members if "adam_step." + n in state]
        if not have:
            continue
        if len(have) != len(members):
            raise KeyError("adam_step given for %s but not for %s (one optimizer over %s)"
                           % (", ".join(have), ", ".join(n for n in members if n not in have), " + ".join(members)))
        steps = {int(state["adam_step." + n]) for n in members}
        if len(steps) != 1:
            raise ValueError("adam_step.%s differ (one optimizer: the counters are equal)" % "/".join(members))
        step = float(steps.pop())
        for n in members:
            for k, p in getattr(nets, n).named_parameters():
                name = "%s.%s" % (n, k)
                for pre in ("adam_m.", "adam_v."):
                    if pre + name not in state:
                        raise KeyError("adam_step.%s given but %s%s missing" % (n, pre, name))
                    if tuple(state[pre + name].shape) != tuple(p.shape):
                        raise ValueError("%s%s: shape %s, parameter %s" % (pre, name, tuple(state[pre + name].shape),
                                                                         tuple(p.shape)))
                opts[g].state[p] = {"step": torch.tensor(step), "exp_avg": state["adam_m." + name].clone().to(p.dtype),
                                    "exp_avg_sq": state["adam_v." + name].clone().to(p.dtype)}


def dump_adam_groups(nets, opts, out):
    for g, members in nets.OPT_GROUPS.items():
        for n in members:
            step = 0
            for k, p in getattr(nets, n).named_parameters():
                s = opts[g].state.get(p)
                if s:
                    step = int(s["step"].item())
                    out["adam_m.%s.%s" % (n, k)] = s["exp_avg"].clone()
                    out["adam_v.%s.%s" % (n, k)] = s["exp_avg_sq"].clone()
            out["adam_step." + n] = torch.tensor(step, dtype=torch.int64)


def grads_of(nets, names):
    return {"%s.%s" % (n, k): (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
            for n in names for k, p in getattr(nets, n).named_parameters()}


def set_requires_grad(nets, names, flag):
    for n in names:
        for p in getattr(nets, n).parameters():
            p.requires_grad_(flag)


def scalar(v, dtype):
    if not torch.is_tensor(v):
        v = torch.tensor(float(v))
    return v.detach().reshape(()).to(dtype).clone()


# ----------------------------------------------------------------------------- the image pool

class ImagePool:
    """MODELS.md 3.3. `images`: the stored images (C x H x W each), in slot order."""

    def __init__(self, size, contents=None):
        self.size = size
        self.images = [] if contents is None else [c.clone() for c in contents]
        if len(self.images) > size:
            raise ValueError("pool holds %d images, pool_size is %d" % (len(self.images), size))

    def query(self, images, u, ids):
        """Per image of the batch, in order: pool not full -> store and return it; full -> if u > 0.5
        return stored slot ids[i] and store the image there, else return the image. Size 0: identity."""
        if self.size == 0:
            return images
        out = []
        for i, img in enumerate(images):
            img = img.detach().clone()
            if len(self.images) < self.size:
                self.images.append(img)
                out.append(img)
            elif float(u[i]) > 0.5:
                j = int(ids[i])
                out.append(self.images[j])
                self.images[j] = img
            else:
                out.append(img)
        return torch.stack(out, 0)

    def tensor(self):
        return torch.stack(self.images, 0) if self.images else None


class PoolDraws:
    """pool_u.<X> (F32 N), pool_id.<X> (I64 N) given, or drawn from `gen` (u = rand(N), then
    id = randint(pool_size, N), at each query, B's first). These draws are not expected to match
    the C engine's RNG; parity tests pass them."""

    def __init__(self, pool_size, given, gen):
        self.size = pool_size
        self.given = given
        self.gen = gen

    def draws(self, dom, n):
        ku, ki = "pool_u." + dom, "pool_id." + dom
        if ku in self.given or ki in self.given:
            if ku not in self.given or ki not in self.given:
                raise KeyError("%s and %s must be given together" % (ku, ki))
            u, ids = self.given[ku], self.given[ki]
            if not u.is_floating_point() or tuple(u.shape) != (n,):
                raise ValueError("%s must be F32 of shape (N,) = (%d,), got %s %s" % (ku, n, u.dtype, tuple(u.shape)))
            if ids.dtype != torch.int64 or tuple(ids.shape) != (n,):
                raise ValueError("%s must be I64 of shape (N,) = (%d,), got %s %s" % (ki, n, ids.dtype, tuple(ids.shape)))
            if not ((u >= 0) & (u <= 1)).all():
                raise ValueError("%s must lie in [0, 1]" % ku)
            if self.size > 0 and (ids.min() < 0 or ids.max() >= self.size):
                raise ValueError("%s has slots outside 0..%d (pool_size %d)" % (ki, self.size - 1, self.size))
            return u, ids
        u = torch.rand(n, generator=self.gen)
        ids = torch.randint(0, max(self.size, 1), (n,), generator=self.gen)
        return u, ids


def make_pools(s, state, img_shape, dtype):
    """ImagePool per fake domain from pool.A / pool.B (count x C x H x W; absent = empty)."""
    pools = {}
    for dom in ("A", "B"):
        c = state.get("pool." + dom)
        if c is not None:
            if c.dim() != 4 or tuple(c.shape[1:]) != tuple(img_shape):
                raise ValueError("pool.%s must be count x %s, got %s" % (dom, "x".join(map(str, img_shape)),
                                                                        tuple(c.shape)))
            c = c.to(dtype)
        pools[dom] = ImagePool(s["pool_size"], list(c) if c is not None else None)
    return pools


# ----------------------------------------------------------------------------- the iteration

def d_loss(netD, real, fake):
    """0.5 (mse(D(real), 1) + mse(D(fake), 0)), D(real) first, as backward_D_basic."""
    pred_real = netD(real)
    loss_real = Fn.mse_loss(pred_real, torch.ones_like(pred_real))
    pred_fake = netD(fake.detach())
    loss_fake = Fn.mse_loss(pred_fake, torch.zeros_like(pred_fake))
    return (loss_real + loss_fake) * 0.5


def train_step(nets, opts, cfg, real_A, real_B, pools, draws):
    """MODELS.md 3.4. Returns a dict of output tensors (no prefixes)."""
    s = cfg["cyclegan"]
    N = real_A.shape[0]
    lam_A, lam_B, lam_idt = s["lambda_A"], s["lambda_B"], s["lambda_identity"]
    nets.train()
    G_A = lambda x: nets.netG_A(x)[0]  # noqa: E731
    G_B = lambda x: nets.netG_B(x)[0]  # noqa: E731

    # 1. forward
    fake_B = G_A(real_A)
    rec_A = G_B(fake_B)
    fake_A = G_B(real_B)
    rec_B = G_A(fake_A)

    # 2. G step, D frozen (the D before this iteration's update)
    set_requires_grad(nets, ("netD_A", "netD_B"), False)
    opts["G"].zero_grad(set_to_none=True)
    zero = torch.zeros((), dtype=real_A.dtype)
    idt_A = idt_B = None
    if lam_idt > 0:
        idt_A = G_A(real_B)
        loss_idt_A = Fn.l1_loss(idt_A, real_B) * lam_B * lam_idt
        idt_B = G_B(real_A)
        loss_idt_B = Fn.l1_loss(idt_B, real_A) * lam_A * lam_idt
    else:
        loss_idt_A = loss_idt_B = zero
    pred = nets.netD_A(fake_B)
    loss_G_A = Fn.mse_loss(pred, torch.ones_like(pred))
    pred = nets.netD_B(fake_A)
    loss_G_B = Fn.mse_loss(pred, torch.ones_like(pred))
    loss_cycle_A = Fn.l1_loss(rec_A, real_A) * lam_A
    loss_cycle_B = Fn.l1_loss(rec_B, real_B) * lam_B
    loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
    loss_G.backward()
    grads = grads_of(nets, ("netG_A", "netG_B"))
    opts["G"].step()

    # 3. D step: the fake_B pool first (for D_A), then the fake_A pool (for D_B)
    set_requires_grad(nets, ("netD_A", "netD_B"), True)
    opts["D"].zero_grad(set_to_none=True)
    u_B, id_B = draws.draws("B", N)
    pooled_B = pools["B"].query(fake_B, u_B, id_B)
    loss_D_A = d_loss(nets.netD_A, real_B, pooled_B)
    loss_D_A.backward()
    u_A, id_A = draws.draws("A", N)
    pooled_A = pools["A"].query(fake_A, u_A, id_A)
    loss_D_B = d_loss(nets.netD_B, real_A, pooled_A)
    loss_D_B.backward()
    grads.update(grads_of(nets, ("netD_A", "netD_B")))
    opts["D"].step()

    dt = real_A.dtype
    res = {"fake_B": fake_B.detach().clone(), "fake_A": fake_A.detach().clone(),
           "rec_A": rec_A.detach().clone(), "rec_B": rec_B.detach().clone()}
    if idt_A is not None:
        res["idt_A"] = idt_A.detach().clone()
        res["idt_B"] = idt_B.detach().clone()
    for name, v in zip(LOSSES, (loss_D_A, loss_D_B, loss_G_A, loss_G_B, loss_cycle_A, loss_cycle_B,
                                loss_idt_A, loss_idt_B, loss_G)):
        res["loss." + name] = scalar(v, dt)
    # what each D was shown as fakes: the pool's answers (the fakes themselves without a pool)
    res["pool_out.B"] = pooled_B.detach().clone()
    res["pool_out.A"] = pooled_A.detach().clone()
    if s["pool_size"] > 0:
        res["pool_u.B"], res["pool_id.B"] = u_B.clone(), id_B.clone()
        res["pool_u.A"], res["pool_id.A"] = u_A.clone(), id_A.clone()
    for k, _ in nets.named_parameters():
        res["grad." + k] = grads[k]
    for k, v in nets.state_dict().items():
        res["after." + k] = v.detach().clone()
    return res


def hparams(cfg):
    t, s = cfg["train"], cfg["cyclegan"]
    kw = dict(lr=s["lr"], betas=(t["beta1"], 0.999), eps=t["eps"])  # beta2 0.999 hard-coded (MODELS.md 3.2)
    return {"G": kw, "D": kw}


def run_family(nets_cls, step_fn, hparams_fn, traj_keys, cfg, state, init, size, save_adam, log, dtype,
               make_extra):
    """Shared driver of cyclegan_step.run / dclgan_step.run: nets from `state` (or --init), Adam
    state, single step or trajectory (iter<t>.* inputs, weights and Adam carried)."""
    torch.manual_seed(cfg["train"]["seed"])
    nets = nets_cls(cfg)
    if init:
        nets.init(cfg["train"]["seed"], cfg["train"]["init_gain"])
    missing = enco_step.load_weights(nets, state, strict=not init, names=nets.NET_NAMES)
    if missing and init:
        log("initialised %d missing tensors from seed %d" % (len(missing), cfg["train"]["seed"]))
    if dtype != torch.float32:  # analysis only
        nets.to(dtype)
        state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
    opts = make_group_optimizers(nets, hparams_fn(cfg))
    load_adam_groups(nets, opts, state)
    gen = torch.Generator().manual_seed(cfg["train"]["seed"])

    n_iter = 0
    while "iter%d.real_A" % n_iter in state:
        n_iter += 1
    t0 = time.time()
    out = {}
    if n_iter == 0:
        if "real_A" not in state:
            if not size:
                raise KeyError("state has no real_A (give --size N,H,W for synthetic inputs)")
            g = torch.Generator().manual_seed(cfg["train"]["seed"] + 1)
            state = dict(state)
            state["real_A"] = (torch.rand(size, generator=g) * 2 - 1).to(dtype)
            state["real_B"] = (torch.rand(size, generator=g) * 2 - 1).to(dtype)
        steps = [state]
    else:
        steps = [enco_step.iteration_inputs(state, i) for i in range(n_iter)]
    for inp in steps:
        if "real_A" not in inp or "real_B" not in inp or inp["real_B"].shape != inp["real_A"].shape:
            raise KeyError("each step needs real_A and real_B of one shape N x C x H x W")
    extra = make_extra(cfg, state, steps[0]["real_A"].shape[1:], dtype)
    for i, inp in enumerate(steps):
        o = step_fn(nets, opts, cfg, inp["real_A"], inp["real_B"], gen, inp, extra)
        if n_iter == 0:
            out = o
        else:
            for k, v in o.items():
                if k.startswith(("loss.", "patch_ids", "pool_u.", "pool_id.")) or k in traj_keys:
                    out["iter%d.%s" % (i, k)] = v
            if i == n_iter - 1:
                out.update({k: v for k, v in o.items() if k.startswith(("after.", "pool."))})
    out["time_s"] = torch.tensor(time.time() - t0, dtype=torch.float32)
    if save_adam:
        dump_adam_groups(nets, opts, out)
    return out, nets


def _step(nets, opts, cfg, real_A, real_B, gen, inp, pools):
    out = train_step(nets, opts, cfg, real_A, real_B, pools, PoolDraws(cfg["cyclegan"]["pool_size"], inp, gen))
    for dom in ("A", "B"):
        c = pools[dom].tensor()
        if c is not None:
            out["pool." + dom] = c.clone()
    return out


def _pools(cfg, state, img_shape, dtype):
    return make_pools(cfg["cyclegan"], state, img_shape, dtype)


def run(cfg, state, init=False, size=None, save_adam=False, log=print, dtype=torch.float32):
    """As enco_step.run, for model.family "cyclegan". The pools start from state's pool.A / pool.B
    (trajectory: once, before iteration 0) and their contents after the step are out pool.A / pool.B."""
    return run_family(CycleGANNets, _step, hparams, TRAJ_KEYS, cfg, state, init, size, save_adam, log, dtype,
                      _pools)


def in_preceded_biases(nets):
    """Conv biases directly followed by InstanceNorm in every G and D of `nets` (true gradient 0:
    IN removes the channel mean; any float32 value is rounding noise, README)."""
    out = set()
    for pre in nets.NET_NAMES:
        mods = list(getattr(nets, pre).named_modules())
        for i, (nm, m) in enumerate(mods):
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and i + 1 < len(mods) \
                    and isinstance(mods[i + 1][1], nn.InstanceNorm2d):
                out.add("%s.%s.bias" % (pre, nm))
    return out
