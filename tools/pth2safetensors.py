#!/usr/bin/python3
"""Convert EnCo-pytorch checkpoints (.pth state_dicts) to enco-cl safetensors and back.

The authors' code saves one file per network, <epoch>_net_<name>.pth, holding
net.module.state_dict() (models/base_model.py, save_networks). The names are
    G, D, F                       EnCo, CUT, FastCUT
    G_A, G_B, D_A, D_B            CycleGAN
    G_A, G_B, D_A, D_B, F1, F2    DCLGAN
enco-cl keeps them all in one safetensors file as net<name>.<state-dict key>
(netG.model.1.weight, netG_A.model.1.weight, netF1.mlp_0.0.weight, ...). The two
groups of names belong to different models and are never mixed in one file.

Forward (one safetensors file):
    python3 tools/pth2safetensors.py latest_net_G.pth latest_net_D.pth latest_net_F.pth -o weights.safetensors
    python3 tools/pth2safetensors.py ckpt/200_net_G_A.pth ckpt/200_net_G_B.pth ... -o weights.safetensors
  The network of each .pth comes from its file name (..._net_<name>.pth), or give it
  as NAME=PATH, e.g. G_A=gen.pth. A leading "module." (DataParallel) is removed.

Reverse (one .pth per network present, as the reference saves them):
    python3 tools/pth2safetensors.py --reverse weights.safetensors -o checkpoints/run1 [--epoch latest]
  writes checkpoints/run1/latest_net_G.pth etc. (or latest_net_G_A.pth ...). Tensors
  whose names do not start with net (Adam moments, run state) are left out.
  --prefix after. (or in.) reads the weights of an enco-cl step output (or fixture) file.

Only torch and tools/reference/safetensors_io.py are used (both loaded when a file is
read or written; the name rules below need neither).
"""
import argparse
import collections
import os
import re
import sys

ONE_G = ("G", "D", "F")                              # EnCo, CUT, FastCUT
TWO_G = ("G_A", "G_B", "D_A", "D_B", "F1", "F2")     # CycleGAN (no F1, F2), DCLGAN
NETS = ONE_G + TWO_G
KNOWN = "G, D, F (EnCo, CUT, FastCUT) or G_A, G_B, D_A, D_B (CycleGAN) and F1, F2 (DCLGAN)"


class BadName(SystemExit):
    """A bad network name or a bad mix of names (exits with the message)."""


def net_of(path):
    """The network name in a reference file name <epoch>_net_<name>.pth."""
    m = re.search(r"(?:^|_)net_(\w+)\.pth$", os.path.basename(path))
    if not m:
        raise BadName("cannot tell the network of %s: the reference names its files <epoch>_net_<name>.pth;"
                         " give it as NAME=PATH, NAME one of %s" % (path, KNOWN))
    name = m.group(1)
    if name not in NETS:
        raise BadName("%s: unknown network %s: the names are %s" % (path, name, KNOWN))
    return name


def check_names(names, where):
    """Refuse a name given twice and a mix of the one-generator and two-generator names."""
    seen = set()
    for n in names:
        if n not in NETS:
            raise BadName("%s: unknown network %s: the names are %s" % (where, n, KNOWN))
        if n in seen:
            raise BadName("%s: network %s given twice" % (where, n))
        seen.add(n)
    one = [n for n in names if n in ONE_G]
    two = [n for n in names if n in TWO_G]
    if one and two:
        raise BadName("%s: mixes %s (EnCo, CUT, FastCUT) with %s (CycleGAN, DCLGAN): one checkpoint holds"
                         " the networks of one model" % (where, ", ".join(one), ", ".join(two)))


def parse_input(item):
    """NAME=PATH, or a PATH whose file name tells the network: (name, path)."""
    if "=" in item:
        head, tail = item.split("=", 1)
        if head in NETS:
            return head, tail
        if re.fullmatch(r"\w+", head) and not os.path.exists(item):
            raise BadName("%s: unknown network %s: the names are %s" % (item, head, KNOWN))
    return net_of(item), item


def split_names(keys, prefix, where):
    """Group tensor names <prefix>net<name>.<key> by network: name -> [(full name, key)], in the
    order the networks first appear. Names without <prefix>net are not weights (Adam moments,
    run state, step outputs) and are skipped; an unknown network or a mix of models is refused."""
    pre = prefix + "net"
    groups = collections.OrderedDict()
    for full in keys:
        if not full.startswith(pre):
            continue
        rest = full[len(pre):]
        name, dot, key = rest.partition(".")
        if not dot or not key:
            raise BadName("%s: tensor %s is not net<name>.<key>" % (where, full))
        if name not in NETS:
            raise BadName("%s: tensor %s: unknown network %s: the names are %s" % (where, full, name, KNOWN))
        groups.setdefault(name, []).append((full, key))
    if not groups:
        raise BadName("%s: no tensor named %snet<name>.<key> (is --prefix right?)" % (where, prefix))
    check_names(list(groups), where)
    return groups


def load_pth(path):
    import torch
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


def load_st():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
    import safetensors_io as st
    return st


def forward(args):
    items = [parse_input(item) for item in args.inputs]
    check_names([n for n, _ in items], "inputs")
    st = load_st()
    tensors = collections.OrderedDict()
    for net, path in items:
        for k, v in load_pth(path).items():
            tensors["%snet%s.%s" % (args.prefix, net, k)] = v
        print("%s: %s" % (net, path))
    st.save_torch(args.output, tensors, metadata={"producer": "tools/pth2safetensors.py"})
    print("wrote %s (%d tensors)" % (args.output, len(tensors)))


def reverse(args):
    if len(args.inputs) != 1:
        raise SystemExit("--reverse takes one safetensors file")
    st = load_st()
    state = st.load_torch(args.inputs[0])
    groups = split_names(list(state), args.prefix, args.inputs[0])
    import torch
    os.makedirs(args.output, exist_ok=True)
    for net, names in groups.items():
        sd = collections.OrderedDict((key, state[full]) for full, key in names)
        path = os.path.join(args.output, "%s_net_%s.pth" % (args.epoch, net))
        torch.save(sd, path)
        print("wrote %s (%d tensors)" % (path, len(sd)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("-o", "--output", required=True, help="safetensors file, or with --reverse a folder")
    ap.add_argument("--reverse", action="store_true", help="safetensors -> .pth files")
    ap.add_argument("--prefix", default="", help="extra name prefix before net<name>. (e.g. after.)")
    ap.add_argument("--epoch", default="latest", help="with --reverse: files are <epoch>_net_<name>.pth")
    args = ap.parse_args()
    (reverse if args.reverse else forward)(args)


if __name__ == "__main__":
    main()
