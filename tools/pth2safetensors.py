#!/usr/bin/python3
"""Convert EnCo-pytorch checkpoints (.pth state_dicts) to enco-cl safetensors and back.

Forward (one safetensors file, tensors named netG.* / netD.* / netF.*):
    python3 tools/pth2safetensors.py latest_net_G.pth latest_net_D.pth latest_net_F.pth -o weights.safetensors
  The network of each .pth comes from its name (..._net_G.pth, ..._net_D.pth, ..._net_F.pth),
  or give it as NET=PATH, e.g. G=gen.pth. A leading "module." (DataParallel) is removed.

Reverse (one .pth per network present, as the reference saves them):
    python3 tools/pth2safetensors.py --reverse weights.safetensors -o checkpoints/run1 [--epoch latest]
  writes checkpoints/run1/latest_net_G.pth etc.  --prefix after. (or in.) reads the
  weights of an enco_step output (or fixture) file.

Only torch and tools/reference/safetensors_io.py are used.
"""
import argparse
import collections
import os
import re
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
import safetensors_io as st  # noqa: E402

NETS = ("G", "D", "F")


def net_of(path):
    m = re.search(r"net_([GDF])\.pth$", os.path.basename(path))
    if not m:
        raise SystemExit("cannot tell the network of %s: name it NET=PATH (G=, D= or F=)" % path)
    return m.group(1)


def load_pth(path):
    sd = torch.load(path, map_location="cpu")
    if hasattr(sd, "state_dict") and not isinstance(sd, dict):
        sd = sd.state_dict()
    if not isinstance(sd, dict):
        raise SystemExit("%s does not hold a state_dict" % path)
    out = collections.OrderedDict()
    for k, v in sd.items():
        if not torch.is_tensor(v):
            raise SystemExit("%s: entry %s is not a tensor" % (path, k))
        if k.startswith("module."):
            k = k[len("module."):]
        out[k] = v.detach().cpu().contiguous()
    return out


def forward(args):
    tensors = collections.OrderedDict()
    seen = set()
    for item in args.inputs:
        if "=" in item and item.split("=", 1)[0] in NETS:
            net, path = item.split("=", 1)
        else:
            net, path = net_of(item), item
        if net in seen:
            raise SystemExit("network %s given twice" % net)
        seen.add(net)
        for k, v in load_pth(path).items():
            tensors["%snet%s.%s" % (args.prefix, net, k)] = v
        print("%s: %s" % (net, path))
    st.save_torch(args.output, tensors, metadata={"producer": "tools/pth2safetensors.py"})
    print("wrote %s (%d tensors)" % (args.output, len(tensors)))


def reverse(args):
    if len(args.inputs) != 1:
        raise SystemExit("--reverse takes one safetensors file")
    state = st.load_torch(args.inputs[0])
    os.makedirs(args.output, exist_ok=True)
    for net in NETS:
        pre = "%snet%s." % (args.prefix, net)
        sd = collections.OrderedDict((k[len(pre):], v) for k, v in state.items() if k.startswith(pre))
        if not sd:
            continue
        path = os.path.join(args.output, "%s_net_%s.pth" % (args.epoch, net))
        torch.save(sd, path)
        print("wrote %s (%d tensors)" % (path, len(sd)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("-o", "--output", required=True, help="safetensors file, or with --reverse a folder")
    ap.add_argument("--reverse", action="store_true", help="safetensors -> .pth files")
    ap.add_argument("--prefix", default="", help="extra name prefix before netG./netD./netF. (e.g. after.)")
    ap.add_argument("--epoch", default="latest", help="with --reverse: files are <epoch>_net_<X>.pth")
    args = ap.parse_args()
    (reverse if args.reverse else forward)(args)


if __name__ == "__main__":
    main()
