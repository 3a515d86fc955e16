#!/usr/bin/python3
"""Cross-check of the CycleGAN fixtures against the authors' own CycleGANModel.

    /usr/bin/python3 tools/reference/xcheck_cyclegan_authors.py --repo PATH [FIXTURE ...]

PATH is an EnCo-pytorch checkout or its bare git directory (files are read from HEAD). Their
models/{base_model,networks,stylegan_networks,cycle_gan_model}.py and util/image_pool.py are copied
to a temporary folder (nothing of theirs is stored here), with the stand-ins of xcheck_cut_authors.py.

For each cyclegan_* fixture and traj3_cyclegan: build their CycleGANModel with the fixture's options
(gpu_ids = [], so their define_G/define_D calls give the antialiased nets), then put in G_A, G_B,
D_A, D_B of the fixture's size built by their ResnetGenerator / NLayerDiscriminator with
no_antialias = (nets == "gpu"), no_antialias_up = False (what their call quirk gives on a GPU run,
MODELS.md 3.1; "cpu": the antialiased ones) and their two optimizers over those nets as their
constructor writes them; load the in.* weights with load_state_dict(strict=True); fill their two
ImagePools with in.pool.A / in.pool.B; feed the fixture's pool draws through their ImagePool's
random.uniform / random.randint; run optimize_parameters() (per iteration for the trajectory, Adam
carried) and compare losses, fake/rec/idt images, gradients, weights after, pool contents and
(trajectory) the final Adam state.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import xcheck_cut_authors as XC  # noqa: E402


BASE_FILES = ["models/base_model.py", "models/networks.py", "models/stylegan_networks.py"]
MODELS = ["models/cycle_gan_model.py"]


def files(models):
    """Every file of theirs that copy_authors(repo, tmp, models) copies."""
    return BASE_FILES + list(models) + ["util/image_pool.py"]


def copy_authors(repo, tmp, models):
    XC.FILES = BASE_FILES + list(models)
    XC.copy_authors(repo, tmp)
    f = "util/image_pool.py"
    with open(os.path.join(tmp, f), "wb") as fh:
        if os.path.exists(os.path.join(repo, f)):
            fh.write(open(os.path.join(repo, f), "rb").read())
        else:
            fh.write(subprocess.check_output(["git", "--git-dir", repo, "show", "HEAD:" + f]))


def zero_grad_biases(nn, net, pre):
    out = set()
    mods = list(net.named_modules())
    for i, (nm, mm) in enumerate(mods):  # conv biases right before InstanceNorm: true gradient 0
        if isinstance(mm, (nn.Conv2d, nn.ConvTranspose2d)) and i + 1 < len(mods) \
                and isinstance(mods[i + 1][1], nn.InstanceNorm2d):
            out.add(pre + nm + ".bias")
    return out


def compare(name, torch, nn, model, nets, opts, inp, ref, iters, losses_seen, lr_of, extra_images):
    """Print and return the worst differences (shared with xcheck_dcl_authors.py).
    losses_seen: (rel worst, bit-identical count, total); opts: optimizer -> its net names."""
    def md(a, b):
        return (a.double() - b.double()).abs().max().item()
    grads, after, zb = {}, {}, set()
    for pre in nets:
        net = getattr(model, pre)
        grads.update({pre + "." + k: p.grad for k, p in net.named_parameters()})
        after.update({pre + "." + k: v for k, v in net.state_dict().items()})
        zb |= zero_grad_biases(nn, net, pre + ".")
    names_ok = sorted(after) == sorted(k[6:] for k in ref if k.startswith("after."))
    upd = max((md(after[k] - inp[k], ref["after." + k] - inp[k]) / lr_of(k), k) for k in after if k not in zb)
    aexact = sum(torch.equal(after[k], ref["after." + k]) for k in after)
    lrel, lexact, ln = losses_seen
    print("%s (N=%d, %d iteration(s))" % (name, inp[("iter0." if iters != [""] else "") + "real_A"].shape[0], len(iters)))
    print("  losses: %d/%d bit-identical, worst rel diff %.2e" % (lexact, ln, lrel))
    w = {"loss": lrel, "image": 0.0, "grad": 0.0, "update": upd[0]}
    if iters == [""]:
        im = max((md(v, ref[k]), k) for k, v in extra_images.items())
        iexact = sum(torch.equal(v, ref[k]) for k, v in extra_images.items())
        gexact = sum(torch.equal(grads[k], ref["grad." + k]) for k in grads)
        gdiff = sorted(k for k in grads if not torch.equal(grads[k], ref["grad." + k]))
        grel = max((md(grads[k], ref["grad." + k]) / max(ref["grad." + k].abs().max().item(), 1e-30), k)
                   for k in grads if k not in zb)
        print("  images (%s): %d/%d bit-identical, max abs diff %.2e; state-dict names equal: %s"
              % (", ".join(extra_images), iexact, len(extra_images), im[0], names_ok))
        print("  grads: %d/%d bit-identical; worst diff / tensor max (excl. %d IN-preceded biases) %.2e (%s)"
              % (gexact, len(grads), len(zb), grel[0], grel[1]))
        if gdiff:
            print("  grads not bit-identical: %s (IN-preceded: %s)" % (", ".join(gdiff), all(k in zb for k in gdiff)))
        w["image"], w["grad"] = im[0], grel[0]
    else:
        mv = []
        for o, members in opts:
            for pre in members:
                for k, p in getattr(model, pre).named_parameters():
                    s = o.state[p]
                    mv.append(torch.equal(s["exp_avg"], ref["adam_m.%s.%s" % (pre, k)]) and
                              torch.equal(s["exp_avg_sq"], ref["adam_v.%s.%s" % (pre, k)]) and
                              int(s["step"]) == int(ref["adam_step." + pre]))
        print("  Adam state after the last iteration: %d/%d parameters bit-identical (m, v, step)" % (sum(mv), len(mv)))
    print("  after: %d/%d bit-identical; worst update diff %.2e lr (%s)" % (aexact, len(after), upd[0], upd[1]))
    return w


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True, help="EnCo-pytorch checkout or bare git directory")
    ap.add_argument("--dir", default=os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures")))
    ap.add_argument("fixtures", nargs="*")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    copy_authors(args.repo, tmp, MODELS)
    sys.path.insert(0, tmp)
    import itertools
    import torch
    import torch.nn as nn
    torch.backends.mkldnn.enabled = False
    torch.set_num_threads(2)
    from models import networks as AN
    from models.cycle_gan_model import CycleGANModel
    import util.image_pool as AP
    import enco_config
    import safetensors_io as st

    names = args.fixtures or sorted(os.path.basename(p)[:-12] for p in glob.glob(os.path.join(args.dir, "*.safetensors"))
                                    if os.path.basename(p).startswith(("cyclegan_", "traj3_cyclegan")))
    worst = {}
    for name in names:
        cfg = enco_config.load(os.path.join(args.dir, name + ".cfg"))
        m, t, s = cfg["model"], cfg["train"], cfg["cyclegan"]
        d = st.load_torch(os.path.join(args.dir, name + ".safetensors"))
        inp = {k[3:]: v for k, v in d.items() if k.startswith("in.")}
        ref = {k[4:]: v for k, v in d.items() if k.startswith("out.")}
        opt = argparse.Namespace(
            gpu_ids=[], isTrain=True, checkpoints_dir=tmp, name="x", preprocess="none", direction="AtoB",
            input_nc=m["input_nc"], output_nc=m["output_nc"], ngf=m["ngf"], ndf=m["ndf"], netG="resnet_9blocks",
            netD="basic", n_layers_D=m["n_layers_D"], normG="instance", normD="instance", no_dropout=True,
            init_type="xavier", init_gain=t["init_gain"], lambda_A=s["lambda_A"], lambda_B=s["lambda_B"],
            lambda_identity=s["lambda_identity"], pool_size=s["pool_size"], gan_mode="lsgan", lr=s["lr"],
            beta1=t["beta1"])
        model = CycleGANModel(opt)
        strided = s["nets"] == "gpu"
        norm = AN.get_norm_layer("instance")
        model.netG_A = AN.ResnetGenerator(m["input_nc"], m["output_nc"], m["ngf"], norm_layer=norm, use_dropout=False,
                                          n_blocks=m["n_blocks"], no_antialias=strided, no_antialias_up=False)
        model.netG_B = AN.ResnetGenerator(m["output_nc"], m["input_nc"], m["ngf"], norm_layer=norm, use_dropout=False,
                                          n_blocks=m["n_blocks"], no_antialias=strided, no_antialias_up=False)
        model.netD_A = AN.NLayerDiscriminator(m["output_nc"], m["ndf"], m["n_layers_D"], norm_layer=norm,
                                              no_antialias=strided)
        model.netD_B = AN.NLayerDiscriminator(m["input_nc"], m["ndf"], m["n_layers_D"], norm_layer=norm,
                                              no_antialias=strided)
        for pre in ("netG_A", "netG_B", "netD_A", "netD_B"):
            getattr(model, pre).load_state_dict({k[len(pre) + 1:]: v for k, v in inp.items() if k.startswith(pre + ".")},
                                                strict=True)
            getattr(model, pre).train()
        # their constructor's optimizers, over the nets just put in
        model.optimizer_G = torch.optim.Adam(itertools.chain(model.netG_A.parameters(), model.netG_B.parameters()),
                                             lr=opt.lr, betas=(opt.beta1, 0.999))
        model.optimizer_D = torch.optim.Adam(itertools.chain(model.netD_A.parameters(), model.netD_B.parameters()),
                                             lr=opt.lr, betas=(opt.beta1, 0.999))
        for dom, pool in (("A", model.fake_A_pool), ("B", model.fake_B_pool)):
            if "pool." + dom in inp:
                pool.images = [im[None].clone() for im in inp["pool." + dom]]
                pool.num_imgs = len(pool.images)

        iters = ["iter%d." % i for i in range(100) if "iter%d.real_A" % i in inp] or [""]
        lrel, lexact, ln = 0.0, 0, 0
        real_random = AP.random
        for pre in iters:
            # their ImagePool draws random.uniform for each image that meets a full pool, then
            # random.randint for those with u > 0.5: feed the fixture's draws in that order
            for dom, pool in (("A", model.fake_A_pool), ("B", model.fake_B_pool)):
                if opt.pool_size == 0:
                    continue
                u, ids = inp[pre + "pool_u." + dom], inp[pre + "pool_id." + dom]
                first_full = max(0, opt.pool_size - pool.num_imgs)
                us = [float(x) for x in u[first_full:]]
                rid = [int(ids[i]) for i in range(first_full, len(u)) if float(u[i]) > 0.5]
                real_query = AP.ImagePool.query

                def query(images, _pool=pool, _us=us, _ids=rid):
                    class R:
                        @staticmethod
                        def uniform(a, b):
                            return _us.pop(0)

                        @staticmethod
                        def randint(a, b):
                            assert (a, b) == (0, opt.pool_size - 1)
                            return _ids.pop(0)
                    AP.random = R
                    try:
                        return real_query(_pool, images)
                    finally:
                        AP.random = real_random
                        assert not _us and not _ids, "draws left unused"
                pool.query = query
            model.set_input({"A": inp[pre + "real_A"], "B": inp[pre + "real_B"], "A_paths": None, "B_paths": None})
            model.optimize_parameters()
            losses = {k: getattr(model, "loss_" + k) for k in ("D_A", "D_B", "G_A", "G_B", "cycle_A", "cycle_B",
                                                               "idt_A", "idt_B", "G")}
            lrel = max([lrel] + [abs(float(v) - float(ref[pre + "loss." + k])) / max(abs(float(ref[pre + "loss." + k])), 1e-30)
                                 for k, v in losses.items()])
            lexact += sum(float(v) == float(ref[pre + "loss." + k]) for k, v in losses.items())
            ln += len(losses)
        images = {}
        if iters == [""]:
            for k in ("fake_B", "fake_A", "rec_A", "rec_B") + (("idt_A", "idt_B") if opt.lambda_identity > 0 else ()):
                images[k] = getattr(model, k)
        pool_ok = True
        for dom, pool in (("A", model.fake_A_pool), ("B", model.fake_B_pool)):
            if opt.pool_size:
                pool_ok &= torch.equal(torch.cat(pool.images, 0), ref["pool." + dom])
        w = compare(name, torch, nn, model, ("netG_A", "netG_B", "netD_A", "netD_B"),
                    [(model.optimizer_G, ("netG_A", "netG_B")), (model.optimizer_D, ("netD_A", "netD_B"))],
                    inp, ref, iters, (lrel, lexact, ln), lambda k: s["lr"], images)
        if opt.pool_size:
            print("  pools after (pool.A, pool.B): %s" % ("bit-identical" if pool_ok else "DIFFER"))
        for k, v in w.items():
            worst[k] = max(worst.get(k, 0.0), v)
        worst["pool mismatch"] = worst.get("pool mismatch", 0) + (not pool_ok)
    print("worst over %d fixtures: %s" % (len(names), ", ".join("%s %.2e" % kv for kv in worst.items())))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
