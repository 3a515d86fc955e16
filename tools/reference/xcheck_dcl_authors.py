#!/usr/bin/python3
"""Cross-check of the DCLGAN fixtures against the authors' own DCLModel.

    /usr/bin/python3 tools/reference/xcheck_dcl_authors.py --repo PATH [--no-in-workaround] [FIXTURE ...]

PATH is an EnCo-pytorch checkout or its bare git directory (files are read from HEAD). Their
models/{base_model,networks,stylegan_networks,patchnce,dcl_model}.py and util/image_pool.py are
copied to a temporary folder (nothing of theirs is stored here), with the stand-ins of
xcheck_cut_authors.py.

For each dclgan_* fixture and traj3_dclgan: build their DCLModel with the fixture's options, put in
G_A, G_B, D_A, D_B of the fixture's size (their ResnetGenerator / NLayerDiscriminator), create the
F1/F2 heads from an encoder pass (their create_mlp), load the in.* weights with
load_state_dict(strict=True), make their three optimizers as their code does (optimizer_F with
PyTorch's Adam defaults, as data_dependent_initialize; the fixtures use lr_F 1e-3, beta1_F 0.9),
feed the fixture's ids through torch.randperm (NCE1's layers, then NCE2's), run
optimize_parameters() (per iteration for the trajectory, Adam carried) and compare losses,
images, gradients, weights after and (trajectory) the final Adam state.

Their PatchSampleF hits torch 1.13's InstanceNorm backward bug at batch 1 (README); as in
xcheck_cut_authors.py, torch.nn.functional.instance_norm is wrapped in this process so that the
gradient entering its backward is contiguous (values unchanged); --no-in-workaround runs their code as is.
"""
import argparse
import glob
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import xcheck_cut_authors as XC  # noqa: E402
import xcheck_cyclegan_authors as XG  # noqa: E402

MODELS = ["models/patchnce.py", "models/dcl_model.py"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True, help="EnCo-pytorch checkout or bare git directory")
    ap.add_argument("--dir", default=os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures")))
    ap.add_argument("--no-in-workaround", action="store_true",
                    help="run their code without the InstanceNorm gradient workaround (shows the torch bug)")
    ap.add_argument("fixtures", nargs="*")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    XG.copy_authors(args.repo, tmp, MODELS)
    sys.path.insert(0, tmp)
    import itertools
    import torch
    import torch.nn as nn
    torch.backends.mkldnn.enabled = False
    torch.set_num_threads(2)
    if not args.no_in_workaround:
        XC.patch_instance_norm(torch)
    from models import networks as AN
    from models.dcl_model import DCLModel
    import enco_config
    import safetensors_io as st

    names = args.fixtures or sorted(os.path.basename(p)[:-12] for p in glob.glob(os.path.join(args.dir, "*.safetensors"))
                                    if os.path.basename(p).startswith(("dclgan_", "traj3_dclgan")))
    worst = {}
    nets = ("netG_A", "netG_B", "netD_A", "netD_B", "netF1", "netF2")
    for name in names:
        cfg = enco_config.load(os.path.join(args.dir, name + ".cfg"))
        m, t, s = cfg["model"], cfg["train"], cfg["dclgan"]
        if (s["lr_F"], s["beta1_F"]) != (1e-3, 0.9):
            raise SystemExit("%s: their optimizer_F has Adam's defaults (lr 1e-3, betas 0.9/0.999)" % name)
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
            no_antialias_up=m["no_antialias_up"], DCL_mode="DCL", netF="mlp_sample", netF_nc=s["netF_nc"],
            nce_T=s["nce_T"], num_patches=s["num_patches"], nce_layers=",".join(str(x) for x in s["nce_layers"]),
            nce_idt=s["nce_idt"], lambda_GAN=s["lambda_GAN"], lambda_NCE=s["lambda_NCE"], lambda_IDT=s["lambda_IDT"],
            flip_equivariance=False, nce_includes_all_negatives_from_minibatch=False, batch_size=N,
            gan_mode="lsgan", lr=s["lr"], beta1=t["beta1"], beta2=t["beta2"], pool_size=0)
        model = DCLModel(opt)
        norm = AN.get_norm_layer("instance")
        for g in ("netG_A", "netG_B"):
            setattr(model, g, AN.ResnetGenerator(m["input_nc"], m["output_nc"], m["ngf"], norm_layer=norm,
                                                 use_dropout=False, n_blocks=m["n_blocks"],
                                                 no_antialias=m["no_antialias"], no_antialias_up=m["no_antialias_up"],
                                                 opt=opt))
        for dn in ("netD_A", "netD_B"):
            setattr(model, dn, AN.NLayerDiscriminator(m["output_nc"], m["ndf"], m["n_layers_D"], norm_layer=norm,
                                                      no_antialias=m["no_antialias"]))
        with torch.no_grad():
            feats = model.netG_A(inp[first], model.nce_layers, encode_only=True)
        model.netF1.create_mlp(feats)
        model.netF2.create_mlp(feats)
        for pre in nets:
            getattr(model, pre).load_state_dict({k[len(pre) + 1:]: v for k, v in inp.items() if k.startswith(pre + ".")},
                                                strict=True)
            getattr(model, pre).train()
        model.optimizer_G = torch.optim.Adam(itertools.chain(model.netG_A.parameters(), model.netG_B.parameters()),
                                             lr=opt.lr, betas=(opt.beta1, opt.beta2))
        model.optimizer_D = torch.optim.Adam(itertools.chain(model.netD_A.parameters(), model.netD_B.parameters()),
                                             lr=opt.lr, betas=(opt.beta1, opt.beta2))
        model.optimizer_F = torch.optim.Adam(itertools.chain(model.netF1.parameters(), model.netF2.parameters()))

        iters = ["iter%d." % i for i in range(100) if "iter%d.real_A" % i in inp] or [""]
        lrel, lexact, ln = 0.0, 0, 0
        L = len(s["nce_layers"])
        for pre in iters:
            queue = [inp[pre + "patch_ids.%d" % l][0] for l in range(L)]
            queue += [inp[pre + "patch_ids_2.%d" % l][0] for l in range(L)]
            real_randperm = torch.randperm

            def given_randperm(n, **kw):
                row = queue.pop(0)
                rest = torch.ones(n, dtype=torch.bool)
                rest[row] = False
                return torch.cat([row, torch.arange(n)[rest]])
            torch.randperm = given_randperm
            try:
                model.set_input({"A": inp[pre + "real_A"], "B": inp[pre + "real_B"], "A_paths": None, "B_paths": None})
                model.optimize_parameters()
            finally:
                torch.randperm = real_randperm
            if queue:
                raise RuntimeError("%s: %d id rows unused" % (name, len(queue)))
            losses = {k: getattr(model, "loss_" + k) for k in ("D_A", "D_B", "G_A", "G_B", "NCE1", "NCE2", "G")
                      + (("idt_A", "idt_B") if s["nce_idt"] else ())}
            lrel = max([lrel] + [abs(float(v) - float(ref[pre + "loss." + k])) / max(abs(float(ref[pre + "loss." + k])), 1e-30)
                                 for k, v in losses.items()])
            lexact += sum(float(v) == float(ref[pre + "loss." + k]) for k, v in losses.items())
            ln += len(losses)
        images = {}
        if iters == [""]:
            for k in ("fake_B", "fake_A") + (("idt_A", "idt_B") if s["nce_idt"] else ()):
                images[k] = getattr(model, k)

        def lr_of(k):
            return s["lr_F"] if k.startswith("netF") else s["lr"]
        w = XG.compare(name, torch, nn, model, nets,
                       [(model.optimizer_G, ("netG_A", "netG_B")), (model.optimizer_D, ("netD_A", "netD_B")),
                        (model.optimizer_F, ("netF1", "netF2"))],
                       inp, ref, iters, (lrel, lexact, ln), lr_of, images)
        for k, v in w.items():
            worst[k] = max(worst.get(k, 0.0), v)
    print("worst over %d fixtures: %s" % (len(names), ", ".join("%s %.2e" % kv for kv in worst.items())))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
