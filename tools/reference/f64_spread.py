#!/usr/bin/python3
"""float32 vs float64: re-run fixtures in float64 (enco_step's --float64 path) from their in.* and
print, per output group, the largest difference from the stored float32 out.* (the spread that
float32 rounding alone produces; README "Tolerances to expect").

    /usr/bin/python3 tools/reference/f64_spread.py [FIXTURE ...]     (default: the CUT/FastCUT ones)
"""
import argparse
import glob
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cut_step  # noqa: E402
import cyclegan_step  # noqa: E402
import dclgan_step  # noqa: E402
from cut_model import in_preceded_biases  # noqa: E402
import enco_config  # noqa: E402
import enco_step  # noqa: E402
import safetensors_io as st  # noqa: E402


def rel_to_max(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures")))
    ap.add_argument("fixtures", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(2)
    names = args.fixtures or sorted(os.path.basename(p)[:-12] for p in glob.glob(os.path.join(args.dir, "*.safetensors"))
                                    if os.path.basename(p).startswith(("cut_", "fastcut_", "traj3_cut", "cyclegan_", "traj3_cyclegan",
                                                                                       "dclgan_", "traj3_dclgan")))
    for name in names:
        cfg = enco_config.load(os.path.join(args.dir, name + ".cfg"))
        d = st.load_torch(os.path.join(args.dir, name + ".safetensors"))
        inp = {k[3:]: v for k, v in d.items() if k.startswith("in.")}
        ref = {k[4:]: v for k, v in d.items() if k.startswith("out.")}
        fam = cfg["model"]["family"]
        runner = {"enco": enco_step.run, "cyclegan": cyclegan_step.run, "dclgan": dclgan_step.run}.get(fam, cut_step.run)
        new, nets = runner(cfg, inp, save_adam=any(k.startswith("adam_") for k in ref), dtype=torch.float64)
        lr = cfg[fam]["lr"] if fam != "enco" else cfg["train"]["lr_D"]
        zb = (cyclegan_step.in_preceded_biases if fam in ("cyclegan", "dclgan") else in_preceded_biases)(nets)
        res = {}

        def put(group, v, what):
            if v > res.get(group, (-1.0, ""))[0]:
                res[group] = (v, what)
        for k, r in ref.items():
            if k not in new or not r.is_floating_point():
                if k in new and not torch.equal(new[k], r):
                    put("MISMATCH (integer)", 1.0, k)
                continue
            n = new[k]
            base = k.split(".", 1)[1] if k.startswith("iter") else k
            if base in ("fake_B", "idt_B", "fake_A", "idt_A", "rec_A", "rec_B") or base.startswith("pool."):
                put("images abs", (n - r.double()).abs().max().item(), k)
            elif base.startswith("pred_"):
                put("pred_* / max", rel_to_max(n, r), k)
            elif base.startswith("loss."):
                put("losses rel", (abs(float(n) - float(r)) / max(abs(float(r)), 1e-30)), k)
            elif base.startswith("diag."):
                continue
            elif k.startswith("grad."):
                put("grad / tensor max (IN-preceded biases)" if k[5:] in zb else "grad / tensor max",
                    rel_to_max(n, r), k)
            elif k.startswith("after."):
                p = k[6:]
                lr_p = cfg[fam]["lr_F"] if fam == "dclgan" and p.startswith("netF") else lr
                grp = "after: update diff / lr (IN-preceded biases)" if p in zb else "after: update diff / lr"
                put(grp, ((n - inp[p].double()) - (r.double() - inp[p].double())).abs().max().item() / lr_p, k)
            elif k.startswith("adam_m.") or k.startswith("adam_v."):
                grp = k[:6] + " / tensor max" + (" (IN-preceded biases)" if k[7:] in zb else "")
                put(grp, rel_to_max(n, r), k)
        print(name)
        for g in sorted(res):
            print("  %-48s %.2e  (%s)" % (g, res[g][0], res[g][1]))


if __name__ == "__main__":
    main()
