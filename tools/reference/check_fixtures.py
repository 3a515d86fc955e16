#!/usr/bin/python3
"""Re-run every fixture of tests/fixtures through enco_step.py (as a subprocess, CLI as a user
would call it) and compare with the stored out.* tensors; also check invariants of each step.

    /usr/bin/python3 tools/reference/check_fixtures.py [--dir tests/fixtures] [--threads 2]
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import enco_config  # noqa: E402
import safetensors_io as st  # noqa: E402

FAILS = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        FAILS.append(what)


def maxdiff(a, b):
    return max(((a[k].double() - b[k].double()).abs().max().item() if a[k].numel() else 0.0) for k in a)


def close(a, b, rel=1e-5):
    return abs(a - b) < rel * max(1.0, abs(b))


def cut_invariants(cfg, inp, out, pre=""):
    """CUT / FastCUT: the losses from their parts, the draws used as given."""
    s = cfg[cfg["model"]["family"]]
    L = {k[len(pre) + 5:]: float(v) for k, v in out.items() if k.startswith(pre + "loss.")}
    check(close(L["D"], 0.5 * (L["D_fake"] + L["D_real"])), pre + "loss.D = 0.5*(D_fake + D_real)")
    idt = s["nce_idt"] and s["lambda_NCE"] > 0
    g = L["G_GAN"] + (0.5 * (L["NCE"] + L["NCE_Y"]) if idt else L["NCE"])
    check(close(L["G"], g), pre + "loss.G = G_GAN + %s" % ("0.5*(NCE+NCE_Y)" if idt else "NCE"))
    n_layers = len(s["nce_layers"])
    for name, on in (("NCE", s["lambda_NCE"] > 0), ("NCE_Y", idt)):
        per = [L.get("%s.%d" % (name, l)) for l in range(n_layers)]
        if on:
            want = s["lambda_NCE"] * sum(per) / n_layers
            check(close(L[name], want), pre + "loss.%s = lambda_NCE * mean_l(loss.%s.<l>)" % (name, name))
            ids = "patch_ids" if name == "NCE" else "patch_ids_Y"
            ok = all(torch.equal(out[pre + "%s.%d" % (ids, l)], inp[pre + "%s.%d" % (ids, l)]) for l in range(n_layers))
            ok = ok and all(torch.equal(v, v[:1].expand_as(v)) for k, v in out.items() if k.startswith(pre + ids + "."))
            check(ok, pre + "%s.<l> used as given, rows equal" % ids)
        else:
            check(L[name] == 0.0 and all(p is None for p in per), pre + "loss.%s = 0 (off)" % name)
    check(torch.equal(out[pre + "flipped"], inp[pre + "flipped"]), pre + "flipped used as given (%d)" % int(inp[pre + "flipped"]))
    if pre + "pred_fake_D" in out:
        pfd, pr, pf = out["pred_fake_D"].double(), out["pred_real"].double(), out["pred_fake"].double()
        check(close(pfd.pow(2).mean().item(), L["D_fake"], 1e-6), "loss.D_fake = mse(pred_fake_D, 0)")
        check(close((pr - 1).pow(2).mean().item(), L["D_real"], 1e-6), "loss.D_real = mse(pred_real, 1)")
        gg = s["lambda_GAN"] * (pf - 1).pow(2).mean()
        check(close(gg.item(), L["G_GAN"], 1e-6), "loss.G_GAN from pred_fake (D after its update)")
        check(not torch.equal(pf, pfd), "pred_fake differs from pred_fake_D (D was updated in between)")
        check(("idt_B" in out) == bool(s["nce_idt"]), "idt_B present exactly when nce_idt")


def pool_after(size, stored, fakes, u, ids):
    """MODELS.md 3.3 from the stored images, the batch's fakes and the draws: the pool after a query."""
    pool = list(stored)
    for i, img in enumerate(fakes):
        if len(pool) < size:
            pool.append(img)
        elif float(u[i]) > 0.5:
            pool[int(ids[i])] = img
    return pool


def cyclegan_invariants(cfg, inp, out, pre=""):
    s = cfg["cyclegan"]
    L = {k[len(pre) + 5:]: float(v) for k, v in out.items() if k.startswith(pre + "loss.")}
    g = L["G_A"] + L["G_B"] + L["cycle_A"] + L["cycle_B"] + L["idt_A"] + L["idt_B"]
    check(close(L["G"], g), pre + "loss.G = G_A + G_B + cycle_A + cycle_B + idt_A + idt_B")
    if s["lambda_identity"] == 0:
        check(L["idt_A"] == 0 and L["idt_B"] == 0 and pre + "idt_A" not in out, pre + "identity off: idt losses 0, no idt_*")
    if not pre:  # single step: the losses from the stored images
        ra, rb = inp["real_A"].double(), inp["real_B"].double()
        l1 = lambda a, b: (a.double() - b).abs().mean().item()  # noqa: E731
        check(close(L["cycle_A"], s["lambda_A"] * l1(out["rec_A"], ra), 1e-6) and
              close(L["cycle_B"], s["lambda_B"] * l1(out["rec_B"], rb), 1e-6), "cycle_A/B = lambda * L1(rec, real)")
        if s["lambda_identity"] > 0:
            check(close(L["idt_A"], s["lambda_B"] * s["lambda_identity"] * l1(out["idt_A"], rb), 1e-6) and
                  close(L["idt_B"], s["lambda_A"] * s["lambda_identity"] * l1(out["idt_B"], ra), 1e-6),
                  "idt_A = lambda_B lambda_idt L1(G_A(real_B), real_B), idt_B likewise")
    if s["pool_size"] == 0:
        check(not any(k.startswith((pre + "pool.", pre + "pool_u", pre + "pool_id")) for k in out),
              pre + "pool_size 0: no pool contents or draws")
        for dom, fake in (("A", "fake_A"), ("B", "fake_B")):
            if pre + "pool_out." + dom in out and fake in out:
                check(torch.equal(out[pre + "pool_out." + dom], out[fake]),
                      pre + "pool_size 0: D is shown the fakes themselves (pool_out.%s)" % dom)
        return
    for dom in ("A", "B"):
        ok = all(torch.equal(out[pre + k + dom], inp[pre + k + dom]) for k in ("pool_u.", "pool_id."))
        check(ok, pre + "pool draws of %s used as given" % dom)
    if not pre:
        for dom, fake in (("A", "fake_A"), ("B", "fake_B")):
            stored = list(inp["pool." + dom]) if "pool." + dom in inp else []
            want = pool_after(s["pool_size"], stored, list(out[fake]), inp["pool_u." + dom], inp["pool_id." + dom])
            check(torch.equal(torch.stack(want), out["pool." + dom]),
                  "pool.%s after = the pool rule applied to pool.%s, %s and the draws (%d of %d slots)"
                  % (dom, dom, fake, len(want), s["pool_size"]))


def dclgan_invariants(cfg, inp, out, pre=""):
    s = cfg["dclgan"]
    L = {k[len(pre) + 5:]: float(v) for k, v in out.items() if k.startswith(pre + "loss.")}
    g = 0.5 * (L["G_A"] + L["G_B"]) + 0.5 * (L["NCE1"] + L["NCE2"]) + 0.5 * (L["idt_A"] + L["idt_B"])
    check(close(L["G"], g), pre + "loss.G = 0.5 (G_A + G_B) + 0.5 (NCE1 + NCE2) + 0.5 (idt_A + idt_B)")
    n = len(s["nce_layers"])
    for name, ids in (("NCE1", "patch_ids"), ("NCE2", "patch_ids_2")):
        want = s["lambda_NCE"] * sum(L["%s.%d" % (name, l)] for l in range(n)) / n
        check(close(L[name], want), pre + "loss.%s = lambda_NCE * mean_l(loss.%s.<l>)" % (name, name))
        ok = all(torch.equal(out[pre + "%s.%d" % (ids, l)], inp[pre + "%s.%d" % (ids, l)]) for l in range(n))
        ok = ok and all(torch.equal(v, v[:1].expand_as(v)) for k, v in out.items() if k.startswith(pre + ids + "."))
        check(ok, pre + "%s.<l> used as given, rows equal" % ids)
    if not pre and s["nce_idt"]:
        l1 = lambda a, b: (a.double() - b.double()).abs().mean().item()  # noqa: E731
        check(close(L["idt_A"], s["lambda_IDT"] * l1(out["idt_A"], inp["real_B"]), 1e-6) and
              close(L["idt_B"], s["lambda_IDT"] * l1(out["idt_B"], inp["real_A"]), 1e-6),
              "idt_A = lambda_IDT L1(G_A(real_B), real_B), idt_B likewise")


def invariants(cfg, inp, out, pre=""):
    fam = cfg["model"]["family"]
    if fam == "cyclegan":
        return cyclegan_invariants(cfg, inp, out, pre)
    if fam == "dclgan":
        return dclgan_invariants(cfg, inp, out, pre)
    if fam != "enco":
        return cut_invariants(cfg, inp, out, pre)
    t = cfg["train"]
    L = {k[len(pre) + 5:]: float(v) for k, v in out.items() if k.startswith(pre + "loss.")}
    idt = t["nce_idt"] and t["lambda_NCE"] > 0
    g = L["G_GAN"] + (0.5 * (L["EnCo"] + L["idt"]) if idt else L["EnCo"])
    check(abs(g - L["G"]) < 1e-5 * max(1, abs(g)), pre + "loss.G = G_GAN + %s" % ("0.5*(EnCo+idt)" if idt else "EnCo"))
    pairs = sorted(int(k.rsplit(".", 1)[1]) for k in L if k.startswith("EnCo."))
    e = t["lambda_NCE"] * sum(L["EnCo.%d" % p] for p in pairs) / len(pairs)
    check(abs(e - L["EnCo"]) < 1e-5 * max(1, abs(e)), pre + "loss.EnCo = lambda_NCE * mean_p(loss_p)")
    for p in pairs:
        check(torch.equal(out[pre + "patch_ids.%d" % p], inp[pre + "patch_ids.%d" % p]), pre + "patch_ids.%d used as given" % p)
    if pre + "pred_fake_D" in out:
        pfd, pr, pf = out["pred_fake_D"].double(), out["pred_real"].double(), out["pred_fake"].double()
        d = 0.5 * (pfd.pow(2).mean() + (pr - 1).pow(2).mean())
        check(abs(d.item() - L["D"]) < 1e-6, "loss.D from pred_fake_D/pred_real")
        gg = t["lambda_GAN"] * (pf - 1).pow(2).mean()
        check(abs(gg.item() - L["G_GAN"]) < 1e-6, "loss.G_GAN from pred_fake (D after its update)")
        check(not torch.equal(pf, pfd), "pred_fake differs from pred_fake_D (D was updated in between)")


def step_checks(cfg, inp, out):
    t = cfg["train"]
    fam = cfg["model"]["family"]
    if fam == "enco":
        lr = {"netG": t["lr_G"], "netD": t["lr_D"], "netF": t["lr_F"]}
    elif fam in ("cyclegan", "dclgan"):
        lr = {n: cfg[fam]["lr"] for n in ("netG_A", "netG_B", "netD_A", "netD_B")}
        if fam == "dclgan":
            lr.update(netF1=cfg[fam]["lr_F"], netF2=cfg[fam]["lr_F"])
    else:
        lr = dict.fromkeys(("netG", "netD", "netF"), cfg[cfg["model"]["family"]]["lr"])
    worst = 0.0
    zero_grads = []
    for k in out:
        if not k.startswith("grad."):
            continue
        name = k[5:]
        g = out[k].double()
        if not g.abs().max() > 0:
            zero_grads.append(name)
        # first Adam step from zero state: update = lr * g / (|g| + eps)
        want = inp[name].double() - lr[name.split(".")[0]] * g / (g.abs() + t["eps"])
        worst = max(worst, (out["after." + name].double() - want).abs().max().item())
    check(worst < 1e-9 + 1e-3 * max(lr.values()), "after = in - lr*g/(|g|+eps) (Adam step 1), worst %.2e" % worst)
    check(not zero_grads, "every parameter has a nonzero gradient%s" % (
        "" if not zero_grads else " (zero: %s)" % ", ".join(zero_grads[:5])))
    ok_buf = True
    for k in inp:
        if k.endswith(".filt"):
            ok_buf &= torch.equal(inp[k], out["after." + k])
        if k.endswith("num_batches_tracked"):
            inc = 2 if ".mlp_" in k else 1
            ok_buf &= int(out["after." + k]) == int(inp[k]) + inc
        if k.endswith("running_mean") or k.endswith("running_var"):
            ok_buf &= not torch.equal(inp[k], out["after." + k])
    check(ok_buf, "filt unchanged" + ("; BN running stats moved; num_batches_tracked +2 (mlp), +1 (prj)"
                                       if cfg["model"]["family"] == "enco" and cfg["model"]["prj_norm"] == "bn" else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures")))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    total = 0
    for path in sorted(glob.glob(os.path.join(args.dir, "*.safetensors"))):
        name = os.path.basename(path)[:-len(".safetensors")]
        cfgp = os.path.join(args.dir, name + ".cfg")
        total += os.path.getsize(path) + os.path.getsize(cfgp)
        print("%s (%.0f KiB)" % (name, os.path.getsize(path) / 1024.0))
        cfg = enco_config.load(cfgp)
        data, meta = st.load_torch(path, with_metadata=True)
        inp = {k[3:]: v for k, v in data.items() if k.startswith("in.")}
        ref = {k[4:]: v for k, v in data.items() if k.startswith("out.")}
        outp = os.path.join(tmp, name + ".out.safetensors")
        cmd = [sys.executable, os.path.join(HERE, "enco_step.py"), "--config", cfgp, "--state", path,
               "--out", outp, "--threads", str(args.threads)]
        if any(k.startswith("adam_") for k in ref):  # the trajectory keeps its final Adam state
            cmd.append("--save-adam")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            print(r.stdout + r.stderr)
            check(False, "enco_step.py ran")
            continue
        new = st.load_torch(outp)
        new.pop("time_s", None)
        ref_keys = set(ref)
        check(ref_keys <= set(new), "enco_step output has every stored out.* tensor (%d)" % len(ref))
        common = {k: ref[k] for k in ref if k in new}
        exact = all(torch.equal(ref[k], new[k]) for k in common)
        md = maxdiff(common, {k: new[k] for k in common})
        check(md < 1e-5, "re-run matches the fixture: %s (max abs diff %.2e)" % ("bit-exact" if exact else "close", md))
        iters = sorted({k.split(".")[0] for k in ref if k.startswith("iter")})
        if iters:
            for it in iters:
                invariants(cfg, inp, ref, it + ".")
        else:
            invariants(cfg, inp, ref)
            step_checks(cfg, inp, ref)
    print("fixtures: %.2f MiB in all" % (total / 2.0 ** 20))
    print("%d failure(s)" % len(FAILS))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
