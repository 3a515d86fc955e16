#!/usr/bin/python3
"""Cross-check of the CUT / FastCUT fixtures against the authors' own model classes.

    /usr/bin/python3 tools/reference/xcheck_cut_authors.py --repo PATH [FIXTURE ...]

PATH is an EnCo-pytorch checkout or its bare git directory (files are read from HEAD). Their
models/{base_model,networks,stylegan_networks,patchnce,cut_model,fastcut_model}.py are copied to a
temporary folder (nothing of theirs is stored here). Two small stand-ins are written there because
Debian's torch lacks them: util.util.str2bool and packaging.version.parse (the only names used).

For each cut_*/fastcut_* fixture and traj3_cut: build their CUTModel / FASTCUTModel with the
fixture's options, put G and D of the fixture's size in (their ResnetGenerator/NLayerDiscriminator),
load the in.* weights with load_state_dict(strict=True), feed the fixture's ids through
torch.randperm (a permutation starting with the given row) and its flip through np.random.random,
run their optimize_parameters() (once; per iteration for the trajectory, Adam carried) and compare
losses, fake_B, gradients, weights after and (trajectory) the final Adam state.

Their PatchSampleF gathers with feat.permute(0, 2, 3, 1).flatten(1, 2)[:, ids, :], whose gradient
is channels_last-strided, and torch 1.13's CPU InstanceNorm backward is wrong for such a gradient
at batch 1 (README "A torch 1.13 bug the twin works around"). Their files are not edited: in this
process torch.nn.functional.instance_norm is wrapped so that the gradient entering InstanceNorm's
backward is made contiguous first (values unchanged). --no-in-workaround runs their code as is.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = ["models/base_model.py", "models/networks.py", "models/stylegan_networks.py",
         "models/patchnce.py", "models/cut_model.py", "models/fastcut_model.py"]


def copy_authors(repo, tmp):
    os.makedirs(os.path.join(tmp, "models"))
    for f in FILES:
        dst = os.path.join(tmp, f)
        if os.path.exists(os.path.join(repo, f)):
            shutil.copy(os.path.join(repo, f), dst)
        else:
            with open(dst, "wb") as fh:
                fh.write(subprocess.check_output(["git", "--git-dir", repo, "show", "HEAD:" + f]))
    open(os.path.join(tmp, "models", "__init__.py"), "w").close()
    os.makedirs(os.path.join(tmp, "util"))
    open(os.path.join(tmp, "util", "__init__.py"), "w").close()
    with open(os.path.join(tmp, "util", "util.py"), "w") as fh:
        fh.write("def str2bool(v):\n    return v if isinstance(v, bool) else str(v).lower() in ('1', 'true', 'yes')\n")
    os.makedirs(os.path.join(tmp, "packaging"))
    open(os.path.join(tmp, "packaging", "__init__.py"), "w").close()
    with open(os.path.join(tmp, "packaging", "version.py"), "w") as fh:
        fh.write("import re\n\ndef parse(v):\n    return tuple(int(x) for x in re.findall(r'\\d+', v)[:3])\n")


def patch_instance_norm(torch):
    """Wrap torch.nn.functional.instance_norm (what nn.InstanceNorm2d calls) so that its backward
    receives a contiguous gradient: identity forward (a copy, as their ReLU(inplace) may follow),
    grad.contiguous() backward. Values are unchanged; only the strides torch 1.13 mishandles go."""
    class ContiguousGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, y):
            return y.clone()

        @staticmethod
        def backward(ctx, g):
            return g.contiguous()
    real = torch.nn.functional.instance_norm

    def instance_norm(*a, **kw):
        return ContiguousGrad.apply(real(*a, **kw))
    torch.nn.functional.instance_norm = instance_norm


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True, help="EnCo-pytorch checkout or bare git directory")
    ap.add_argument("--dir", default=os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures")))
    ap.add_argument("--no-in-workaround", action="store_true",
                    help="run their code without the InstanceNorm gradient workaround (shows the torch bug)")
    ap.add_argument("fixtures", nargs="*")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    copy_authors(args.repo, tmp)
    sys.path.insert(0, tmp)
    sys.path.insert(0, HERE)
    import numpy as np
    import torch
    import torch.nn as nn
    torch.backends.mkldnn.enabled = False
    torch.set_num_threads(2)
    if not args.no_in_workaround:
        patch_instance_norm(torch)
    from models import networks as AN
    from models.cut_model import CUTModel
    from models.fastcut_model import FASTCUTModel
    import enco_config
    import safetensors_io as st

    names = args.fixtures or sorted(os.path.basename(p)[:-12] for p in glob.glob(os.path.join(args.dir, "*.safetensors"))
                                    if os.path.basename(p).startswith(("cut_", "fastcut_", "traj3_cut")))
    worst = {"loss": 0.0, "fake_B": 0.0, "grad": 0.0, "update": 0.0}
    for name in names:
        cfg = enco_config.load(os.path.join(args.dir, name + ".cfg"))
        m, t = cfg["model"], cfg["train"]
        fam = m["family"]
        s = cfg[fam]
        d = st.load_torch(os.path.join(args.dir, name + ".safetensors"))
        inp = {k[3:]: v for k, v in d.items() if k.startswith("in.")}
        ref = {k[4:]: v for k, v in d.items() if k.startswith("out.")}
        first = "real_A" if "real_A" in inp else "iter0.real_A"
        N = inp[first].shape[0]
        opt = argparse.Namespace(
            gpu_ids=[], isTrain=True, checkpoints_dir=tmp, name="x", preprocess="none", direction="AtoB",
            input_nc=m["input_nc"], output_nc=m["output_nc"], ngf=m["ngf"], ndf=m["ndf"], netG="resnet_9blocks",
            netD="basic", n_layers_D=m["n_layers_D"], normG="instance", normD="instance", no_dropout=True,
            init_type="xavier", init_gain=t["init_gain"], no_antialias=m["no_antialias"],
            no_antialias_up=m["no_antialias_up"], netF="mlp_sample", netF_nc=s["netF_nc"], nce_T=s["nce_T"],
            num_patches=s["num_patches"], nce_layers=",".join(str(x) for x in s["nce_layers"]),
            nce_idt=s["nce_idt"], lambda_GAN=s["lambda_GAN"], lambda_NCE=s["lambda_NCE"], lambda_IDT=10.0,
            flip_equivariance=s["nce_flip_equivariance"],
            nce_includes_all_negatives_from_minibatch=s["nce_includes_all_negatives_from_minibatch"],
            batch_size=N, gan_mode="lsgan", lr=s["lr"], beta1=t["beta1"], beta2=t["beta2"], pool_size=0)
        model = (CUTModel if fam == "cut" else FASTCUTModel)(opt)
        # G and D of the fixture's size (define_G knows only 4/6/9 blocks), then their optimizers
        model.netG = AN.ResnetGenerator(m["input_nc"], m["output_nc"], m["ngf"], norm_layer=AN.get_norm_layer("instance"),
                                        use_dropout=False, n_blocks=m["n_blocks"], no_antialias=m["no_antialias"],
                                        no_antialias_up=m["no_antialias_up"], opt=opt)
        model.netD = AN.NLayerDiscriminator(m["output_nc"], m["ndf"], m["n_layers_D"],
                                            norm_layer=AN.get_norm_layer("instance"), no_antialias=m["no_antialias"])
        betas = (t["beta1"], t["beta2"])
        with torch.no_grad():
            feats = model.netG(inp[first], model.nce_layers, encode_only=True)
        model.netF.create_mlp(feats)

        def load(net, pre):
            net.load_state_dict({k[len(pre):]: v for k, v in inp.items() if k.startswith(pre)}, strict=True)
        load(model.netG, "netG."); load(model.netD, "netD."); load(model.netF, "netF.")
        model.optimizer_G = torch.optim.Adam(model.netG.parameters(), lr=s["lr"], betas=betas)
        model.optimizer_D = torch.optim.Adam(model.netD.parameters(), lr=s["lr"], betas=betas)
        model.optimizer_F = torch.optim.Adam(model.netF.parameters(), lr=s["lr"], betas=betas)
        for net in (model.netG, model.netD, model.netF):
            net.train()

        iters = ["iter%d." % i for i in range(100) if "iter%d.real_A" % i in inp] or [""]
        lrel, lexact, ln = 0.0, 0, 0
        for pre in iters:
            # the fixture's draws: randperm calls in their order (NCE layers, then NCE_Y layers)
            rows = [inp[pre + "patch_ids.%d" % l][0] for l in range(len(s["nce_layers"]))]
            rows += [inp[pre + "patch_ids_Y.%d" % l][0] for l in range(len(s["nce_layers"]))
                     if pre + "patch_ids_Y.%d" % l in inp]
            queue = list(rows)
            real_randperm, real_random = torch.randperm, np.random.random

            def given_randperm(n, **kw):
                row = queue.pop(0)
                rest = torch.ones(n, dtype=torch.bool)
                rest[row] = False
                return torch.cat([row, torch.arange(n)[rest]])
            torch.randperm = given_randperm
            np.random.random = lambda: 0.25 if int(inp[pre + "flipped"]) else 0.75
            try:
                model.set_input({"A": inp[pre + "real_A"], "B": inp[pre + "real_B"], "A_paths": None, "B_paths": None})
                model.optimize_parameters()
            finally:
                torch.randperm, np.random.random = real_randperm, real_random
            if queue:
                raise RuntimeError("%s: %d id rows unused" % (name, len(queue)))
            losses = {"D": model.loss_D, "D_real": model.loss_D_real, "D_fake": model.loss_D_fake,
                      "G_GAN": model.loss_G_GAN, "NCE": model.loss_NCE, "G": model.loss_G}
            if s["nce_idt"]:
                losses["NCE_Y"] = model.loss_NCE_Y
            lrel = max([lrel] + [abs(float(v) - float(ref[pre + "loss." + k])) / max(abs(float(ref[pre + "loss." + k])), 1e-30)
                                 for k, v in losses.items()])
            lexact += sum(float(v) == float(ref[pre + "loss." + k]) for k, v in losses.items())
            ln += len(losses)

        def md(a, b):
            return (a.double() - b.double()).abs().max().item()
        grads, after, zb = {}, {}, set()
        for pre, net in (("netG.", model.netG), ("netD.", model.netD), ("netF.", model.netF)):
            grads.update({pre + k: p.grad for k, p in net.named_parameters()})
            after.update({pre + k: v for k, v in net.state_dict().items()})
            mods = list(net.named_modules())
            for i, (nm, mm) in enumerate(mods):  # conv biases right before InstanceNorm: true gradient 0
                if isinstance(mm, (nn.Conv2d, nn.ConvTranspose2d)) and i + 1 < len(mods) \
                        and isinstance(mods[i + 1][1], nn.InstanceNorm2d):
                    zb.add(pre + nm + ".bias")
        names_ok = sorted(after) == sorted(k[6:] for k in ref if k.startswith("after."))
        upd = max((md(after[k] - inp[k], ref["after." + k] - inp[k]) / s["lr"], k) for k in after if k not in zb)
        aexact = sum(torch.equal(after[k], ref["after." + k]) for k in after)
        flips = ",".join(str(int(inp[pre + "flipped"])) for pre in iters)
        print("%s (%s, N=%d, %d iteration(s), flipped=%s)" % (name, fam, N, len(iters), flips))
        print("  losses: %d/%d bit-identical, worst rel diff %.2e" % (lexact, ln, lrel))
        fb = 0.0
        if iters == [""]:  # single step: fake_B and gradients are stored
            gexact = sum(torch.equal(grads[k], ref["grad." + k]) for k in grads)
            grel = max((md(grads[k], ref["grad." + k]) / max(ref["grad." + k].abs().max().item(), 1e-30), k)
                       for k in grads if k not in zb)
            fb = md(model.fake_B, ref["fake_B"])
            print("  fake_B max abs diff %.2e; state-dict names equal: %s" % (fb, names_ok))
            print("  grads: %d/%d bit-identical; worst diff / tensor max (excl. %d IN-preceded biases) %.2e (%s)"
                  % (gexact, len(grads), len(zb), grel[0], grel[1]))
            worst["grad"] = max(worst["grad"], grel[0])
        else:  # trajectory: the Adam moments after the last iteration
            opts = {"netG": model.optimizer_G, "netD": model.optimizer_D, "netF": model.optimizer_F}
            mv = []
            for net, o in opts.items():
                for k, p in getattr(model, net).named_parameters():
                    st_ = o.state[p]
                    mv.append(torch.equal(st_["exp_avg"], ref["adam_m.%s.%s" % (net, k)]) and
                              torch.equal(st_["exp_avg_sq"], ref["adam_v.%s.%s" % (net, k)]) and
                              int(st_["step"]) == int(ref["adam_step." + net]))
            print("  Adam state after the last iteration: %d/%d parameters bit-identical (m, v, step)"
                  % (sum(mv), len(mv)))
        print("  after: %d/%d bit-identical; worst update diff %.2e lr (%s)" % (aexact, len(after), upd[0], upd[1]))
        worst["loss"] = max(worst["loss"], lrel)
        worst["fake_B"] = max(worst["fake_B"], fb)
        worst["update"] = max(worst["update"], upd[0])
    print("worst over %d fixtures: loss rel %.2e, fake_B abs %.2e, grad/max %.2e, update %.2e lr"
          % (len(names), worst["loss"], worst["fake_B"], worst["grad"], worst["update"]))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
