#!/usr/bin/env python3
"""One training iteration of any configuration (default: the full default
model at 256x256) in the PyTorch twin and in enco-cl, from the same state and
patch indices, then the max difference of every output group.

  python3 tools/reference/compare_full.py --enco build/enco-cl [--config F] [--size N,H,W]

Writes its files to --work (default /tmp/enco-compare-full). Prints per group
the largest absolute difference relative to the group's largest value, the
losses side by side, and both step times.
"""
import argparse
import os
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enco_config  # noqa: E402
import enco_step  # noqa: E402
import safetensors_io  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--enco", required=True, help="path of the enco-cl binary")
    ap.add_argument("--config", default=None)
    ap.add_argument("--size", default="1,256,256")
    ap.add_argument("--work", default="/tmp/enco-compare-full")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reuse", action="store_true",
                    help="reuse the twin's output of an earlier run in --work")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    torch.set_num_threads(a.threads)
    cfg = enco_config.load(a.config)
    n, h, w = (int(x) for x in a.size.split(","))

    # The state: initialised weights and inputs, saved as IN.
    torch.manual_seed(cfg["train"]["seed"])
    nets = enco_step.EnCoNets(cfg)
    nets.init(cfg["train"]["seed"], cfg["train"]["init_gain"])
    g = torch.Generator().manual_seed(cfg["train"]["seed"] + 1)
    state = {k: v.detach().clone() for k, v in nets.state_dict().items()}
    state["real_A"] = torch.rand((n, 3, h, w), generator=g) * 2 - 1
    state["real_B"] = torch.rand((n, 3, h, w), generator=g) * 2 - 1
    twin_path = os.path.join(a.work, "out_twin.safetensors")
    t0 = time.time()
    if a.reuse and os.path.exists(twin_path):
        r = safetensors_io.load_torch(twin_path)
        out_t = r[0] if isinstance(r, tuple) else r
    else:
        out_t, _ = enco_step.run(cfg, state)
        safetensors_io.save_torch(twin_path, {k: v.contiguous() for k, v in out_t.items()})
    t_twin = float(out_t["time_s"]) if "time_s" in out_t else time.time() - t0
    # Same indices for enco-cl.
    for k, v in out_t.items():
        if k.startswith("patch_ids."):
            state[k] = v
    inp = os.path.join(a.work, "in.safetensors")
    safetensors_io.save_torch(inp, state)
    cfg_path = a.config
    if cfg_path is None:
        cfg_path = os.path.join(a.work, "default.cfg")
        open(cfg_path, "w").write("model = { };\n")
    out_path = os.path.join(a.work, "out_enco.safetensors")
    t0 = time.time()
    subprocess.run([a.enco, "step", "-c", cfg_path, "-s", inp, "-o", out_path], check=True)
    t_enco = time.time() - t0
    r = safetensors_io.load_torch(out_path)
    out_e = r[0] if isinstance(r, tuple) else r

    # Tensors whose true value is 0, so both engines hold rounding noise (see
    # README: conv biases feeding an InstanceNorm and prj_<p>.1.running_mean):
    # reported apart, by absolute size.
    def is_noise(k):
        name = k.split(".", 1)[1] if k.startswith(("grad.", "after.")) else ""
        if name.endswith(".running_mean") and ".prj_" in name:
            return True
        if not name.endswith(".bias") or not name.startswith(("netG.", "netD.")):
            return False
        w = name[:-4] + "weight"
        layers = [x for x in out_t if x.startswith("grad." + name.split(".")[0] + ".")
                  and x.endswith(".weight")]
        # the last conv of each net feeds no norm; D's first conv feeds a LeakyReLU
        last = max(layers, key=lambda x: [int(t) for t in x.split(".") if t.isdigit()])
        return ("grad." + w) != last and w != "netD.model.0.weight"

    noise = 0.0
    groups = {}
    for k, ref in out_t.items():
        if k not in out_e or not ref.is_floating_point() or k == "time_s":
            continue
        if is_noise(k):
            noise = max(noise, (out_e[k].double() - ref.double()).abs().max().item())
            continue
        grp = k.split(".")[0] if k.split(".")[0] in ("grad", "after", "loss") else k
        if grp in ("grad", "after"):
            grp += "." + k.split(".")[1]
        d = (out_e[k].double() - ref.double()).abs().max().item()
        m = ref.double().abs().max().item()
        old = groups.get(grp, (0.0, ""))
        rel = d / (m + 1e-30)
        if k.startswith("loss."):
            print("%-12s twin %.7g enco-cl %.7g rel %.2g" % (k, ref.item(), out_e[k].item(), rel))
        if rel > old[0]:
            groups[grp] = (rel, k)
    print("largest |diff| / max|twin| per group:")
    for grp, (rel, k) in sorted(groups.items()):
        print("  %-14s %.3g  (%s)" % (grp, rel, k))
    print("noise tensors (true value 0; biases before InstanceNorm, prj running means): "
          "max |diff| %.3g" % noise)
    print("step time: twin %.1f s (torch %s, %d threads), enco-cl %.1f s (incl. start-up)" %
          (t_twin, torch.__version__, a.threads, t_enco))


if __name__ == "__main__":
    main()
