#!/usr/bin/env python3
"""tools/pth2safetensors.py's name rules, without torch or numpy (CI has neither): the network of
a reference file <epoch>_net_<name>.pth, the one-generator names G, D, F (EnCo, CUT, FastCUT)
and the two-generator names G_A, G_B, D_A, D_B, F1, F2 (CycleGAN, DCLGAN), the grouping of
safetensors names net<name>.<key> for --reverse, and a clear refusal (no traceback, nothing
written) of unknown names and of the two kinds mixed. The conversion itself (torch.load /
torch.save, bit-exact round trips) is checked by tools/reference/test_reference.py under the
PyTorch twin's python."""
import os
import subprocess
import sys
import tempfile

from testlib import check, finish, load_tool

TOOL = sys.argv[1]
p2s = load_tool("pth2safetensors", TOOL)


def refusal(fn, *args):
    """The message fn(*args) exits with, or None when it returns."""
    try:
        fn(*args)
    except SystemExit as e:
        return str(e.code)
    return None


# The network of a file, as base_model.py names them ('%s_net_%s.pth' % (epoch, name)).
for path, name in (("latest_net_G.pth", "G"), ("ckpt/200_net_D.pth", "D"), ("5_net_F.pth", "F"),
                   ("latest_net_G_A.pth", "G_A"), ("run/200_net_G_B.pth", "G_B"),
                   ("iter_5000_net_D_A.pth", "D_A"), ("latest_net_D_B.pth", "D_B"),
                   ("latest_net_F1.pth", "F1"), ("/x/y/150_net_F2.pth", "F2"), ("net_G_A.pth", "G_A")):
    got = refusal(p2s.net_of, path) or p2s.net_of(path)
    check("%s is network %s" % (path, name), got == name, repr(got))
for path, needle in (("latest_net_G_C.pth", "unknown network G_C"), ("latest_net_F3.pth", "unknown network F3"),
                     ("latest_net_g_a.pth", "unknown network g_a"), ("generator.pth", "NAME=PATH"),
                     ("latest_net_G_A.pt", "NAME=PATH"), ("latest_net_.pth", "NAME=PATH")):
    msg = refusal(p2s.net_of, path)
    check("%s is refused (%s)" % (path, needle), msg is not None and needle in msg, repr(msg))

# Which names go together.
for names in (["G", "D", "F"], ["G"], ["G_A", "G_B", "D_A", "D_B"], ["G_A", "F1", "D_A", "G_B", "F2", "D_B"]):
    msg = refusal(p2s.check_names, names, "inputs")
    check("%s accepted together" % ",".join(names), msg is None, repr(msg))
for names, needle in ((["G", "G_A"], "mixes G (EnCo, CUT, FastCUT) with G_A (CycleGAN, DCLGAN)"),
                      (["F", "D_A", "D"], "mixes F, D (EnCo, CUT, FastCUT) with D_A"),
                      (["F1", "F1"], "network F1 given twice"), (["E"], "unknown network E")):
    msg = refusal(p2s.check_names, names, "inputs")
    check("%s refused (%s)" % (",".join(names), needle), msg is not None and needle in msg, repr(msg))

# --reverse: safetensors names grouped by network; other tensors (Adam, run state) left out.
keys = ["netG_A.model.1.weight", "netG_A.model.19.filt", "adam_m.netG_A.model.1.weight",
        "adam_step.netG_A", "netF1.mlp_0.0.weight", "netD_B.model.0.bias", "state.epoch",
        "netG_B.model.28.bias", "netF2.mlp_3.2.bias", "netD_A.model.11.weight"]
g = p2s.split_names(keys, "", "ckpt")
check("checkpoint names grouped by network, in order, keys without net<name>.",
      list(g) == ["G_A", "F1", "D_B", "G_B", "F2", "D_A"] and
      g["G_A"] == [("netG_A.model.1.weight", "model.1.weight"), ("netG_A.model.19.filt", "model.19.filt")] and
      g["F2"] == [("netF2.mlp_3.2.bias", "mlp_3.2.bias")], repr(g))
g = p2s.split_names(["fake_B", "loss.G", "grad.netG.model.1.weight", "after.netG.model.1.weight",
                     "after.netF.mlp_0.0.bias", "netG.model.1.weight"], "after.", "out")
check("--prefix after. takes the after.net* tensors only",
      dict(g) == {"G": [("after.netG.model.1.weight", "model.1.weight")],
                  "F": [("after.netF.mlp_0.0.bias", "mlp_0.0.bias")]}, repr(g))
for keys, needle in ((["netG.model.1.weight", "netG_A.model.1.weight"], "mixes G (EnCo, CUT, FastCUT) with G_A"),
                     (["netG_A.model.1.weight", "netG_C.model.1.weight"], "tensor netG_C.model.1.weight: unknown network G_C"),
                     (["netF1"], "tensor netF1 is not net<name>.<key>"),
                     (["adam_m.netG.model.1.weight", "state.epoch"], "no tensor named net<name>.<key>")):
    msg = refusal(p2s.split_names, keys, "", "f.safetensors")
    check("--reverse refuses %s (%s)" % (",".join(keys), needle), msg is not None and needle in msg, repr(msg))

# The command line refuses before it reads anything: a message, no traceback, no output file.
with tempfile.TemporaryDirectory() as d:
    out = os.path.join(d, "w.safetensors")
    for args, needle in ((["latest_net_G.pth", "latest_net_G_A.pth"], "mixes G (EnCo, CUT, FastCUT) with G_A"),
                         (["latest_net_X.pth"], "unknown network X"),
                         (["Q=gen.pth"], "unknown network Q"),
                         (["latest_net_F1.pth", "F1=other.pth"], "network F1 given twice")):
        r = subprocess.run([sys.executable, TOOL] + args + ["-o", out], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True)
        check("command line refuses %s" % " ".join(args),
              r.returncode == 1 and needle in r.stderr and "Traceback" not in r.stderr and not os.path.exists(out),
              "%d %s" % (r.returncode, r.stderr))
    r = subprocess.run([sys.executable, TOOL, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    check("--help names every network", r.returncode == 0 and all(n in r.stdout for n in ("G_A", "D_B", "F1", "F2"))
          and "CycleGAN" in r.stdout and "DCLGAN" in r.stdout, r.stdout + r.stderr)

finish()
