#!/usr/bin/python3
"""Self-checks of the PyTorch twin (CPU, ~1 minute with 2 threads):

    /usr/bin/python3 tools/reference/test_reference.py

1. state_dict names/shapes/dtypes of the default config == reference-keys.tsv
2. parameter counts == spec (G 11,378,179; D 2,764,737; F 510,976)
3. layer output sizes of G and D at 256x256 == spec tables
4. Downsample / Upsample against direct loops written from the spec wording
5. DAG selection rule, safetensors writer/reader (byte layout), config parser
6. .pth <-> safetensors round trip through tools/pth2safetensors.py: EnCo's G, D, F, and the
   two-generator names G_A, G_B, D_A, D_B, F1, F2 (CycleGAN, DCLGAN) with the converter's refusals
7. CUT/FastCUT: parameter counts (F 560,384), netF names, encoder features, PatchNCE against a
   direct loop, family config sections and refusals, patch-id / flip draws and their refusals
9. CycleGAN/DCLGAN: parameter counts (G 11,378,179, D 2,764,737 with nets gpu and cpu; DCLGAN F
   493,568 each), state-dict names per net, the strided/antialiased layer sizes, ImagePool
   semantics, pool draws and Adam-group refusals, config sections, cos PatchNCE against a loop
8. probe of torch 1.13's InstanceNorm backward bug (channels_last grad_output, batch 1) and the
   CUT gather's contiguous gradient; float64 finite differences vs autograd of the twin's CUT NCE
   loss w.r.t. the input and G at resblock-output NCE layers (rel < 1e-6)
"""
import collections
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import enco_config  # noqa: E402
import enco_step  # noqa: E402
import safetensors_io as st  # noqa: E402
from enco_model import EnCoNets, Downsample, Upsample, count_params  # noqa: E402

FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def read_tsv(path):
    rows = []
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        net, key, shape, dtype = line.rstrip("\n").split("\t")
        shape = tuple(int(x) for x in shape.strip("()").split(",") if x.strip())
        rows.append(("net" + net + "." + key, shape, dtype))
    return rows


def test_keys():
    tsv = os.path.join(HERE, "reference-keys.tsv")
    shared = os.path.normpath(os.path.join(ROOT, "..", "shared", "spec", "reference-keys.tsv"))
    if os.path.exists(shared):
        check(open(shared).read() == open(tsv).read(), "tools/reference/reference-keys.tsv == shared/spec copy")
    want = read_tsv(tsv)
    nets = EnCoNets(enco_config.load())
    have = [(k, tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in nets.state_dict().items()]
    check(sorted(have) == sorted(want), "default state_dict: %d names/shapes/dtypes match the TSV (%d rows)"
          % (len(have), len(want)))
    for net in ("G", "D", "F"):
        order_have = [k for k, _, _ in have if k.startswith("net" + net)]
        order_want = [k for k, _, _ in want if k.startswith("net" + net)]
        check(order_have == order_want, "net%s key order equals the TSV order" % net)
    diff = set(have) ^ set(want)
    if diff:
        print("   differences:", sorted(diff)[:10])
    counts = {n: count_params(getattr(nets, "net" + n)) for n in "GDF"}
    check(counts == {"G": 11378179, "D": 2764737, "F": 510976},
          "parameter counts G %d, D %d, F %d (spec: 11,378,179 / 2,764,737 / 510,976)"
          % (counts["G"], counts["D"], counts["F"]))
    return nets


def test_shapes(nets):
    sizes = {}
    with torch.no_grad():
        x = torch.zeros(1, 3, 256, 256)
        for i, m in enumerate(nets.netD.model):
            x = m(x)
            sizes[i] = tuple(x.shape[1:])
    want_D = {0: (64, 255, 255), 2: (64, 128, 128), 3: (128, 127, 127), 6: (128, 64, 64),
              7: (256, 63, 63), 10: (256, 32, 32), 11: (512, 31, 31), 14: (1, 30, 30)}
    check(all(sizes[i] == s for i, s in want_D.items()), "D layer sizes at 256x256 match the spec table")
    # G: spatial sizes with a thin G (ngf=4), channels from the default G's bookkeeping
    cfg = enco_config.load()
    cfg["model"]["ngf"] = 4
    thin = EnCoNets(cfg).netG
    with torch.no_grad():
        x = torch.zeros(1, 3, 256, 256)
        for i, m in enumerate(thin.model):
            x = m(x)
            sizes[i] = (nets.netG.out_info[i][0],) + tuple(x.shape[2:])
    want_G = {0: (3, 262, 262), 1: (64, 256, 256), 3: (64, 256, 256), 4: (128, 256, 256), 7: (128, 128, 128),
              8: (256, 128, 128), 11: (256, 64, 64), 20: (256, 64, 64), 21: (256, 128, 128),
              22: (128, 128, 128), 25: (128, 256, 256), 26: (64, 256, 256), 30: (3, 256, 256), 31: (3, 256, 256)}
    want_G[29] = (64, 262, 262)
    check(all(sizes[i] == s for i, s in want_G.items()) and len(thin.model) == 32,
          "G layer sizes at 256x256 match the spec table (32 modules)")
    check(nets.key_layers == [3, 7, 13] and nets.query_layers == [28, 24, 18], "pairs (3,28), (7,24), (13,18)")


def test_blur():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 7, 10, generator=g, dtype=torch.float64)
    # Downsample: reflect pad 1, depthwise 3x3 [1,2,1]^2/16, stride 2
    a = np.array([1.0, 2.0, 1.0])
    f = np.outer(a, a) / 16.0
    xn = x.numpy()
    pad = np.pad(xn, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    H, W = xn.shape[2], xn.shape[3]
    Ho, Wo = (H + 1) // 2, (W + 1) // 2
    ref = np.zeros((2, 3, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            ref[:, :, i, j] = (pad[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3] * f).sum((2, 3))
    d = Downsample(3).double()
    got = d(x).detach().numpy()
    check(got.shape == ref.shape and np.abs(got - ref).max() < 1e-12, "Downsample == spec loop (H=7 -> 4, W=10 -> 5)")
    # Upsample: replicate pad 1, transposed conv stride 2 padding 2 with [1,3,3,1]^2/64*4, crop 1 each side
    b = np.array([1.0, 3.0, 3.0, 1.0])
    fu = np.outer(b, b) / 64.0 * 4.0
    pad = np.pad(xn, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    Hp, Wp = pad.shape[2], pad.shape[3]
    full = np.zeros((2, 3, 2 * (Hp - 1) + 4, 2 * (Wp - 1) + 4))
    for i in range(Hp):
        for j in range(Wp):
            full[:, :, 2 * i:2 * i + 4, 2 * j:2 * j + 4] += pad[:, :, i:i + 1, j:j + 1] * fu
    tconv = full[:, :, 2:-2, 2:-2]  # transposed-conv padding 2
    ref = tconv[:, :, 1:-1, 1:-1]
    got = Upsample(3).double()(x).detach().numpy()
    check(got.shape == (2, 3, 2 * H, 2 * W) and np.abs(got - ref).max() < 1e-12,
          "Upsample == spec loop (7x10 -> 14x20)")
    c = torch.full((1, 2, 8, 8), 0.37, dtype=torch.float64)
    up, down = Upsample(2).double()(c), Downsample(2).double()(c)
    check(up.shape[-1] == 16 and down.shape[-1] == 4 and torch.allclose(up, torch.full_like(up, 0.37))
          and torch.allclose(down, torch.full_like(down, 0.37)), "blur filters preserve constants")


def test_dag():
    score = torch.tensor([5.0, 1.0, 3.0, 1.0, 0.0, 9.0, 2.0, 1.0])
    cand = torch.tensor([7, 0, 3, 1, 6, 5])
    cover = torch.tensor([2, 7])
    asc = enco_step.dag_select(score, cand, cover, 3)
    check(asc.tolist() == [7, 3, 1, 2, 7], "DAG ascending: stable ranking of tied scores, cover appended")
    desc = enco_step.dag_select(score, cand, cover, 3, descending=True)
    check(desc.tolist() == [5, 0, 6, 2, 7], "DAG descending")
    cfg = enco_config.load()
    s = enco_step.Sampler(cfg, {}, torch.Generator().manual_seed(0))
    check(s.sizes(64 * 64) == (256, 1024, 128) and s.sizes(100) == (100, 100, 50), "K, M, R sizes")
    pf = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    sc = enco_step.dag_scores(pf, 4, 4).reshape(4, 4)
    want = torch.tensor([[0.0, 0.25, 0.75, 1.0], [0.5, 0.75, 1.25, 1.5], [1.5, 1.75, 2.25, 2.5], [2.0, 2.25, 2.75, 3.0]])
    check(torch.allclose(sc, want), "score map: bilinear, align_corners=false")


def test_safetensors():
    d = tempfile.mkdtemp()
    p = os.path.join(d, "t.safetensors")
    t = collections.OrderedDict([
        ("f32", np.arange(6, dtype=np.float32).reshape(2, 3)), ("f64", np.array([1.5, -2.0])),
        ("i64", np.array([[-1, 2**40]], dtype=np.int64)), ("i32", np.array([7], dtype=np.int32)),
        ("u8", np.array([0, 255], dtype=np.uint8)), ("scalar", np.float32(3.25)),
        ("empty", np.zeros((0, 4), np.float32))])
    st.save(p, t, metadata={"k": "v"})
    raw = open(p, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    ok = hdr["__metadata__"] == {"k": "v"} and hdr["f32"]["dtype"] == "F32" and hdr["scalar"]["shape"] == []
    ok = ok and raw[8 + n + hdr["i64"]["data_offsets"][0]:][:16] == struct.pack("<qq", -1, 2**40)
    ok = ok and (8 + n) % 8 == 0 and len(raw) == 8 + n + max(v["data_offsets"][1] for k, v in hdr.items()
                                                             if k != "__metadata__")
    back, meta = st.load(p, with_metadata=True)
    ok = ok and meta == {"k": "v"} and list(back) == list(t)
    ok = ok and all(back[k].dtype == np.asarray(t[k]).dtype and back[k].shape == np.asarray(t[k]).shape
                    and np.array_equal(back[k], t[k]) for k in t)
    check(ok, "safetensors: byte layout, dtypes F32/F64/I64/I32/U8, 0-d and empty tensors, metadata")


def test_config():
    txt = """# comment
    model = { ngf = 8; n_blocks = 6; nce_layers = [3, 6, 10, 15, 19, 23]; prj_norm = "LN"; no_antialias = true; };
    train : { lr_G = 1e-4; lambda_NCE = 2, sampling = "random"; /* c */ nce_idt = False; seed = 7; other = (1, "x"); };
    data = { root = "datasets/h2z"; };
    """
    c = enco_config.load(text=txt)
    ok = c["model"]["ngf"] == 8 and c["model"]["nce_layers"] == [3, 6, 10, 15, 19, 23]
    ok = ok and c["model"]["prj_norm"] == "ln" and c["model"]["no_antialias"] is True
    ok = ok and c["train"]["lr_G"] == 1e-4 and c["train"]["lambda_NCE"] == 2.0 and c["train"]["nce_idt"] is False
    ok = ok and c["train"]["lambda_IDT"] == 10.0 and c["data"]["root"] == "datasets/h2z"
    ok = ok and enco_config.load(text=enco_config.dump(c))["model"] == c["model"]
    check(ok, "config parser: groups, lists, strings, bools, floats, comments, defaults, dump round trip")
    nets = EnCoNets(c)  # 6 blocks, no_antialias: pairs must be consistent
    check(nets.key_layers == [3, 6, 10] and len(nets.netG.model) == 27, "6-block no_antialias G builds")
    c["model"]["nce_layers"] = [3, 7, 13, 18, 24, 28]
    try:
        EnCoNets(c)
        check(False, "mismatched key/query layers are rejected")
    except ValueError:
        check(True, "mismatched key/query layers are rejected")


def test_pth_roundtrip():
    cfg = enco_config.load()
    nets = EnCoNets(cfg)
    nets.init(3)
    d = tempfile.mkdtemp()
    for n in "GDF":
        torch.save(getattr(nets, "net" + n).state_dict(), os.path.join(d, "latest_net_%s.pth" % n))
    tool = os.path.join(ROOT, "tools", "pth2safetensors.py")
    py = sys.executable
    subprocess.check_call([py, tool] + [os.path.join(d, "latest_net_%s.pth" % n) for n in "GDF"]
                          + ["-o", os.path.join(d, "w.safetensors")], stdout=subprocess.DEVNULL)
    subprocess.check_call([py, tool, "--reverse", os.path.join(d, "w.safetensors"), "-o", os.path.join(d, "back")],
                          stdout=subprocess.DEVNULL)
    w = st.load_torch(os.path.join(d, "w.safetensors"))
    sd = nets.state_dict()
    ok = list(w) == list(sd) and all(torch.equal(w[k], sd[k]) and w[k].dtype == sd[k].dtype for k in sd)
    for n in "GDF":
        a = torch.load(os.path.join(d, "latest_net_%s.pth" % n))
        b = torch.load(os.path.join(d, "back", "latest_net_%s.pth" % n))
        ok = ok and list(a) == list(b) and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
        getattr(EnCoNets(cfg), "net" + n).load_state_dict(b, strict=True)
    check(ok, ".pth -> safetensors -> .pth round trip (default config, %d tensors, bit-exact, strict load)" % len(w))


def two_g_nets():
    """Small stand-ins with the key layout of the CycleGAN / DCLGAN networks: G with convs, a
    ResnetBlock's conv_block and an Upsample filt buffer; D with a BatchNorm (an I64 buffer);
    F with PatchSampleF's mlp_<l>.{0,2}. Seeded, so each net's values differ."""
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c),
                                            nn.ReLU(True), nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3))

    class Up(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.register_buffer("filt", torch.rand(c, 1, 4, 4))

    class Seq(nn.Module):
        def __init__(self, *mods):
            super().__init__()
            self.model = nn.Sequential(*mods)

    class PatchF(nn.Module):
        def __init__(self, chans):
            super().__init__()
            for l, c in enumerate(chans):
                setattr(self, "mlp_%d" % l, nn.Sequential(nn.Linear(c, 8), nn.ReLU(), nn.Linear(8, 8)))

    def g():
        return Seq(nn.ReflectionPad2d(3), nn.Conv2d(3, 4, 7), nn.InstanceNorm2d(4), nn.ReLU(True),
                   nn.Conv2d(4, 8, 3, 2, 1), nn.InstanceNorm2d(8), nn.ReLU(True), Block(8), Up(8),
                   nn.Conv2d(8, 4, 3, 1, 1), nn.ReflectionPad2d(3), nn.Conv2d(4, 3, 7), nn.Tanh())

    def d():
        return Seq(nn.Conv2d(3, 4, 4, 2, 1), nn.LeakyReLU(0.2, True), nn.Conv2d(4, 8, 4, 1, 1),
                   nn.BatchNorm2d(8), nn.LeakyReLU(0.2, True), nn.Conv2d(8, 1, 4, 1, 1))

    makers = {"G_A": g, "G_B": g, "D_A": d, "D_B": d, "F1": lambda: PatchF([4, 8]), "F2": lambda: PatchF([4, 8])}
    nets = collections.OrderedDict()
    for i, (name, make) in enumerate(makers.items()):
        torch.manual_seed(100 + i)
        net = make()
        with torch.no_grad():
            for t in net.state_dict().values():
                if t.is_floating_point():
                    t.normal_()
                else:
                    t.fill_(7 + i)  # num_batches_tracked: a value the round trip must keep
        nets[name] = net
    return nets


def run_tool(*args):
    tool = os.path.join(ROOT, "tools", "pth2safetensors.py")
    p = subprocess.run([sys.executable, tool] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    return p.returncode, p.stdout + p.stderr


def same_sd(a, b):
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)


def test_pth_two_generators():
    """CycleGAN / DCLGAN checkpoints: files <epoch>_net_<name>.pth saved as base_model.py does
    (net.module.state_dict() of the DataParallel wrapper -> torch.save) go to one safetensors file
    as net<name>.<key> and come back bit-exact; unknown names and mixed models are refused."""
    nets = two_g_nets()
    d = tempfile.mkdtemp()
    for name, net in nets.items():
        torch.save(torch.nn.DataParallel(net).module.state_dict(), os.path.join(d, "200_net_%s.pth" % name))
    files = [os.path.join(d, "200_net_%s.pth" % n) for n in nets]
    for model, names in (("DCLGAN", list(nets)), ("CycleGAN", ["G_A", "G_B", "D_A", "D_B"])):
        out = os.path.join(d, model + ".safetensors")
        rc, log = run_tool(*([f for f in files if any(f.endswith("_net_%s.pth" % n) for n in names)] + ["-o", out]))
        w = st.load_torch(out) if rc == 0 else {}
        want = collections.OrderedDict(("net%s.%s" % (n, k), v) for n in names for k, v in nets[n].state_dict().items())
        check(rc == 0 and same_sd(w, want) and "netG_A.model.1.weight" in w and "netG_B.model.7.conv_block.5.weight" in w
              and "netG_A.model.8.filt" in w and w["netD_B.model.3.num_batches_tracked"].dtype == torch.int64
              and (model == "CycleGAN" or "netF1.mlp_0.0.weight" in w and "netF2.mlp_1.2.bias" in w),
              "%s .pth -> safetensors: %d tensors named net<name>.<key>, bit-exact, dtypes kept" % (model, len(want)) +
              ("" if rc == 0 else ": " + log))
        back = os.path.join(d, model + "_back")
        rc, log = run_tool("--reverse", out, "-o", back, "--epoch", "200")
        ok = rc == 0 and sorted(os.listdir(back)) == sorted("200_net_%s.pth" % n for n in names)
        for n in names:
            if not ok:
                break
            b = torch.load(os.path.join(back, "200_net_%s.pth" % n))
            ok = same_sd(torch.load(os.path.join(d, "200_net_%s.pth" % n)), b)
            fresh = two_g_nets()[n]
            fresh.load_state_dict(b, strict=True)
            ok = ok and same_sd(fresh.state_dict(), nets[n].state_dict())
        check(ok, "%s safetensors -> .pth: %s, bit-exact, strict load" % (model, ", ".join("200_net_%s.pth" % n for n in names))
              + ("" if rc == 0 else ": " + log))
    # NAME=PATH, a DataParallel state_dict ("module." keys), --prefix both ways
    dp = os.path.join(d, "wrapped.pth")
    torch.save(torch.nn.DataParallel(nets["F2"]).state_dict(), dp)
    out = os.path.join(d, "named.safetensors")
    rc, log = run_tool("G_B=" + files[1], "F2=" + dp, "--prefix", "after.", "-o", out)
    w = st.load_torch(out) if rc == 0 else {}
    check(rc == 0 and set(k.split(".")[1] for k in w) == {"netG_B", "netF2"} and all(k.startswith("after.") for k in w)
          and torch.equal(w["after.netF2.mlp_0.0.weight"], nets["F2"].mlp_0[0].weight.detach()),
          "NAME=PATH names, module. stripped, --prefix after. (%d tensors)" % len(w) + ("" if rc == 0 else ": " + log))
    rc, log = run_tool("--reverse", "--prefix", "after.", out, "-o", os.path.join(d, "named_back"))
    check(rc == 0 and sorted(os.listdir(os.path.join(d, "named_back"))) == ["latest_net_F2.pth", "latest_net_G_B.pth"]
          and same_sd(torch.load(os.path.join(d, "named_back", "latest_net_F2.pth")), nets["F2"].state_dict()),
          "--reverse --prefix after.: latest_net_G_B.pth, latest_net_F2.pth" + ("" if rc == 0 else ": " + log))
    # refusals, each naming what is wrong
    g = os.path.join(d, "latest_net_G.pth")
    torch.save(nets["G_A"].state_dict(), g)
    odd = os.path.join(d, "latest_net_G_C.pth")
    torch.save(nets["G_A"].state_dict(), odd)
    plain = os.path.join(d, "gen.pth")
    torch.save(nets["G_A"].state_dict(), plain)
    mixed = os.path.join(d, "mixed.safetensors")
    st.save_torch(mixed, {"netG.model.1.weight": torch.zeros(2), "netG_A.model.1.weight": torch.zeros(2)})
    unknown = os.path.join(d, "unknown.safetensors")
    st.save_torch(unknown, {"netG_A.model.1.weight": torch.zeros(2), "netH.model.1.weight": torch.zeros(2)})
    noweights = os.path.join(d, "noweights.safetensors")
    st.save_torch(noweights, {"adam_m.netG_A.model.1.weight": torch.zeros(2), "state.epoch": torch.zeros(1)})
    cases = [([odd, "-o", os.path.join(d, "x.safetensors")], "unknown network G_C", "a file of an unknown network"),
             ([plain, "-o", os.path.join(d, "x.safetensors")], "NAME=PATH", "a file name without _net_<name>"),
             (["H=" + plain, "-o", os.path.join(d, "x.safetensors")], "unknown network H", "NAME=PATH with an unknown NAME"),
             ([g, files[0], "-o", os.path.join(d, "x.safetensors")], "mixes G (EnCo, CUT, FastCUT) with G_A",
              "G with G_A (two models in one file)"),
             ([files[0], "G_A=" + files[1], "-o", os.path.join(d, "x.safetensors")], "G_A given twice", "a network twice"),
             (["--reverse", mixed, "-o", os.path.join(d, "y")], "mixes G (EnCo, CUT, FastCUT) with G_A",
              "--reverse of a file with netG and netG_A"),
             (["--reverse", unknown, "-o", os.path.join(d, "y")], "unknown network H", "--reverse of a netH tensor"),
             (["--reverse", noweights, "-o", os.path.join(d, "y")], "no tensor named net<name>", "--reverse without weights")]
    for args, needle, what in cases:
        rc, log = run_tool(*args)
        check(rc != 0 and needle in log and "Traceback" not in log, "refused: %s (%s)" % (what, log.strip().splitlines()[-1:]))
    check(not os.path.exists(os.path.join(d, "x.safetensors")) and not os.path.exists(os.path.join(d, "y")),
          "refusals write nothing")


def cut_cfg(family="cut", text=""):
    cfg = enco_config.load(text=text)
    cfg["model"]["family"] = family
    return cfg


def test_cut_nets():
    import cut_model
    for fam in ("cut", "fastcut"):
        nets = cut_model.CUTNets(cut_cfg(fam))
        counts = {n: count_params(getattr(nets, "net" + n)) for n in "GDF"}
        check(counts == {"G": 11378179, "D": 2764737, "F": 560384},
              "%s default parameter counts G %d, D %d, F %d (spec: 11,378,179 / 2,764,737 / 560,384)"
              % (fam, counts["G"], counts["D"], counts["F"]))
    sd = nets.netF.state_dict()
    want = []
    for l, c in enumerate([3, 128, 256, 256, 256]):
        want += [("mlp_%d.0.weight" % l, (256, c)), ("mlp_%d.0.bias" % l, (256,)),
                 ("mlp_%d.2.weight" % l, (256, 256)), ("mlp_%d.2.bias" % l, (256,))]
    check([(k, tuple(v.shape)) for k, v in sd.items()] == want, "netF.mlp_<l>.0/.2 weight/bias names and shapes")
    # encoder pass: feature 0 is the input itself, 4 and 8 the convs before IN, 12 and 16 resblocks
    cfg = cut_cfg("cut", "model = { ngf = 4; };")
    small = cut_model.CUTNets(cfg)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        feats = cut_model.encode(small.netG, x, [0, 4, 8, 12, 16])
        h, outs = x, []
        for m in small.netG.model[:17]:
            h = m(h)
            outs.append(h)
    check(feats[0] is x and torch.equal(feats[1], outs[4]) and torch.equal(feats[2], outs[8])
          and torch.equal(feats[4], outs[16]) and [tuple(f.shape[1:]) for f in feats]
          == [(3, 32, 32), (8, 32, 32), (16, 16, 16), (16, 8, 8), (16, 8, 8)],
          "CUT encoder: feature 0 = input, i > 0 = output of module i (4, 8 before IN)")
    with_init = cut_model.CUTNets(cfg)
    with_init.init(1)
    lin = with_init.netF.mlp_1[0]
    check(torch.all(lin.bias == 0) and 0 < float(lin.weight.std()) < 0.02,
          "xavier init of F (zero biases)")


def test_patchnce():
    import cut_step
    g = torch.Generator().manual_seed(2)
    for groups in (2, 1):
        q = torch.nn.functional.normalize(torch.randn(6, 5, generator=g, dtype=torch.float64), dim=1)
        k = torch.nn.functional.normalize(torch.randn(6, 5, generator=g, dtype=torch.float64), dim=1)
        got = cut_step.patchnce_dot(q, k, groups, 0.07)
        size = 6 // groups
        want = []
        for i in range(6):  # direct from MODELS.md 0.5a
            b = i // size
            logits = [float(q[i] @ k[i])]
            for j in range(b * size, (b + 1) * size):
                logits.append(-10.0 if j == i else float(q[i] @ k[j]))
            z = np.array(logits) / 0.07
            want.append(np.log(np.exp(z).sum()) - z[0])
        check(np.abs(got.numpy() - np.array(want)).max() < 1e-12,
              "PatchNCE dot, %s: CE over [pos, negatives with the self pair at -10] / T"
              % ("per-image groups of 3" if groups == 2 else "one group of all 6 rows"))


def test_cut_config_and_draws():
    import cut_step
    c = enco_config.load(text='model = { family = "FastCUT"; }; cut = { lambda_NCE = 3; };\n'
                              'fastcut = { num_patches = 32; nce_layers = [0, 4]; };')
    s = c["fastcut"]
    ok = s["lambda_NCE"] == 10.0 and s["nce_idt"] is False and s["nce_flip_equivariance"] is True
    ok = ok and s["num_patches"] == 32 and s["nce_layers"] == [0, 4] and c["cut"]["lambda_NCE"] == 3.0
    ok = ok and c["cut"]["nce_idt"] is True and c["cut"]["lr"] == 2e-4 and c["model"]["family"] == "fastcut"
    back = enco_config.load(text=enco_config.dump(c))
    ok = ok and back["fastcut"] == s and back["model"]["family"] == "fastcut" and "nce_layers" not in \
        enco_config.dump(c).split("fastcut =")[0]
    check(ok, "family config: defaults per family, the other section kept apart, dump round trip")
    for bad in ('model = { family = "sincut"; };', 'cut = { nce_layers = [4, 0]; };',
                'cut = { nce_layers = []; };', 'cut = { nce_T = 0.0; };', 'cut = { num_patches = 0; };',
                'cut = { nce_idt = 1; };', 'cut = { lr = "x"; };'):
        try:
            enco_config.load(text=bad)
            check(False, "config refused: %s" % bad)
        except enco_config.ConfigError:
            check(True, "config refused: %s" % bad)
    sec = cut_cfg("cut")["cut"]
    d = cut_step.Draws(sec, {}, torch.Generator().manual_seed(0))
    ids = d.ids("patch_ids.0", 3, 100)
    check(tuple(ids.shape) == (3, 100) and torch.equal(ids[0], ids[2]) and sorted(ids[0].tolist()) == list(range(100))
          and d.flip() is False, "drawn ids: K = min(num_patches, HW), one permutation shared by the batch; CUT never flips")
    row = torch.arange(8, dtype=torch.int64)
    cases = [({"patch_ids.0": torch.stack([row, row.flip(0)])}, "rows differ"),
             ({"patch_ids.0": torch.stack([row, row])[:, :4]}, "wrong K"),
             ({"patch_ids.0": torch.stack([row, row]) + 60}, "index out of range"),
             ({"patch_ids.0": torch.stack([row, row]).int()}, "I32 ids"),
             ({"flipped": torch.tensor(1)}, "flipped = 1 with CUT"),
             ({"flipped": torch.tensor(2)}, "flipped = 2")]
    for given, what in cases:
        try:
            dd = cut_step.Draws(dict(sec, num_patches=8), given, None)
            dd.ids("patch_ids.0", 2, 64) if "patch_ids.0" in given else dd.flip()
            check(False, "bad draw refused: %s" % what)
        except ValueError:
            check(True, "bad draw refused: %s" % what)


def test_torch_in_bug_probe():
    """Probe (not a twin check) of the torch 1.13 bug the twin works around (README "A torch 1.13
    bug the twin works around"): CPU InstanceNorm2d backward at batch 1 is wrong when grad_output
    is channels_last-strided. Prints whether this torch has it; checks that the contiguous-gradient
    result is the finite-difference one, and that the twin's CUT gather sends back a contiguous
    NCHW gradient (the workaround)."""
    import cut_step
    g = torch.Generator().manual_seed(5)
    m = torch.nn.InstanceNorm2d(32).double()
    x = torch.randn(1, 32, 16, 16, generator=g, dtype=torch.float64, requires_grad=True)
    y = m(x)
    G = torch.randn(y.shape, generator=g, dtype=torch.float64)
    g1, = torch.autograd.grad(y, x, G, retain_graph=True)
    g2, = torch.autograd.grad(y, x, G.contiguous(memory_format=torch.channels_last))
    d = torch.randn(x.shape, generator=g, dtype=torch.float64)
    with torch.no_grad():
        fd = float(((m(x + 1e-6 * d) - m(x - 1e-6 * d)) * G).sum() / 2e-6)
    check(abs(float((g1 * d).sum()) - fd) < 1e-7 * abs(fd),
          "IN backward with a contiguous grad_output = finite differences (%.9g vs %.9g)" % (float((g1 * d).sum()), fd))
    bug = float((g1 - g2).abs().max())
    print("     torch %s: IN backward, channels_last vs contiguous grad_output at batch 1: max diff %.3g (%s)"
          % (torch.__version__, bug, "bug present, the twin works around it" if bug > 1e-12 else "no bug"))
    feat = torch.randn(2, 5, 6, 7, dtype=torch.float64, requires_grad=True)
    ids = torch.randperm(42, generator=g)[:9][None].expand(2, 9)
    rows = cut_step.sample_rows(feat, ids)
    want = torch.stack([feat[b, :, i // 7, i % 7] for b in range(2) for i in ids[0].tolist()])
    gf, = torch.autograd.grad(rows, feat, torch.randn(rows.shape, generator=g, dtype=torch.float64))
    check(torch.equal(rows, want) and gf.is_contiguous() and gf.stride() == (210, 42, 7, 1),
          "CUT gather: rows image-major at positions y*W + x; its gradient is contiguous NCHW")


def cut_fd_case(layers, n, flipped, seed=7, eps=1e-7):
    """Directional derivative (float64) of the twin's CUT NCE loss (cut_step.nce, keys held fixed)
    along one random direction of (tgt, all G parameters): (finite difference, autograd)."""
    import cut_model
    import cut_step
    cfg = cut_cfg("cut", 'model = { ngf = 4; ndf = 4; n_blocks = 2; };\n'
                  'cut = { netF_nc = 16; num_patches = 16; nce_layers = [%s]; };' % ", ".join(map(str, layers)))
    s = cfg["cut"]
    nets = cut_model.CUTNets(cfg)
    nets.init(seed, 1.0)  # gain 1: query norms far above l2n's 1e-7, so the loss is smooth at eps
    nets.double()
    g = torch.Generator().manual_seed(seed)
    src = torch.rand(n, 3, 32, 32, generator=g, dtype=torch.float64) * 2 - 1
    tgt = (torch.rand(n, 3, 32, 32, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    with torch.no_grad():
        feat_k = cut_model.encode(nets.netG, src, layers)
    draws = cut_step.Draws(s, {}, g)
    given = {"patch_ids.%d" % l: draws.ids("patch_ids.%d" % l, n, f.shape[2] * f.shape[3])
             for l, f in enumerate(feat_k)}

    def loss():
        return cut_step.nce(nets, s, src, tgt, flipped, cut_step.Draws(s, given, None), "patch_ids", n, feat_k)[0]
    params = [tgt] + list(nets.netG.parameters())
    dirs = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in params]
    grads = torch.autograd.grad(loss(), params, allow_unused=True)
    ad = sum(float((gr * d).sum()) for gr, d in zip(grads, dirs) if gr is not None)
    with torch.no_grad():
        for p, d in zip(params, dirs):
            p.add_(eps * d)
        lp = float(loss())
        for p, d in zip(params, dirs):
            p.sub_(2 * eps * d)
        lm = float(loss())
        for p, d in zip(params, dirs):
            p.add_(eps * d)
    return (lp - lm) / (2 * eps), ad


def test_cut_fd():
    """The twin's CUT gradients are the true ones at resblock-output NCE layers (12, 13 with 2
    blocks), batch 1 (where torch 1.13's IN backward bug bit) and 2, flipped and not."""
    for layers, n, flipped in (([12], 1, False), ([13], 1, True), ([0, 4, 8, 12, 13], 1, False),
                               ([0, 4, 8, 12, 13], 2, True)):
        fd, ad = cut_fd_case(layers, n, flipped)
        rel = abs(fd - ad) / abs(fd)
        check(rel < 1e-6, "CUT NCE d/d(tgt, G) float64, layers %s, N=%d%s: finite diff %.9g, autograd %.9g (rel %.1e)"
              % (layers, n, ", flipped" if flipped else "", fd, ad, rel))


def test_two_gan_nets():
    import cyclegan_step
    import dclgan_step
    c = enco_config.load(text='model = { family = "cyclegan"; };')
    for nets_kind in ("gpu", "cpu"):
        c["cyclegan"]["nets"] = nets_kind
        n = cyclegan_step.CycleGANNets(c)
        counts = [count_params(getattr(n, k)) for k in n.NET_NAMES]
        check(counts == [11378179, 11378179, 2764737, 2764737],
              "CycleGAN nets %s: G_A, G_B, D_A, D_B parameters %s (spec: 11,378,179 / 2,764,737)" % (nets_kind, counts))
        sd = n.state_dict()
        if nets_kind == "gpu":
            g = sorted(k[7:] for k in sd if k.startswith("netG_A."))
            want = ["model.%d.%s" % (i, w) for i in (1, 4, 7, 20, 24, 28) for w in ("weight", "bias")]
            want += ["model.%d.conv_block.%d.%s" % (i, j, w) for i in range(10, 19) for j in (1, 5) for w in ("weight", "bias")]
            want += ["model.19.filt", "model.23.filt"]
            dk = sorted(k[7:] for k in sd if k.startswith("netD_B."))
            check(g == sorted(want) and tuple(sd["netG_B.model.4.weight"].shape) == (128, 64, 3, 3)
                  and tuple(sd["netG_A.model.19.filt"].shape) == (256, 1, 4, 4)
                  and dk == sorted("model.%d.%s" % (i, w) for i in (0, 2, 5, 8, 11) for w in ("weight", "bias")),
                  "CycleGAN gpu state-dict names (MODELS.md 3.1 keys: G model.1/4/7/10..18/20/24/28 + filt 19, 23; "
                  "D model.0/2/5/8/11)")
            x = torch.zeros(1, 3, 256, 256)
            with torch.no_grad():
                _, f = n.netG_A(x, [4, 7, 19, 23, 28])
                d = n.netD_A(x)
            check([tuple(t.shape[1:]) for t in f] == [(128, 128, 128), (256, 64, 64), (256, 128, 128), (128, 256, 256),
                                                       (3, 256, 256)] and tuple(d.shape) == (1, 1, 30, 30),
                  "CycleGAN gpu layer sizes at 256: strided 4, 7; blur Upsample 19, 23; D output 30x30")
    c = enco_config.load(text='model = { family = "dclgan"; };')
    n = dclgan_step.DCLNets(c)
    counts = [count_params(getattr(n, k)) for k in n.NET_NAMES]
    fk = [(k, tuple(v.shape)) for k, v in n.state_dict().items() if k.startswith("netF2.")]
    check(counts == [11378179, 11378179, 2764737, 2764737, 493568, 493568] and fk[:4] == [
        ("netF2.mlp_0.0.weight", (256, 128)), ("netF2.mlp_0.0.bias", (256,)), ("netF2.mlp_0.2.weight", (256, 256)),
        ("netF2.mlp_0.2.bias", (256,))] and len(fk) == 16,
          "DCLGAN parameters %s (F1, F2 493,568 each), netF2.mlp_<l>.0/.2 names" % counts)


def test_image_pool():
    import cyclegan_step
    P = cyclegan_step.ImagePool
    imgs = [torch.full((3, 2, 2), float(i)) for i in range(5)]
    batch = lambda *ix: torch.stack([imgs[i] for i in ix])  # noqa: E731
    vals = lambda t: [int(x[0, 0, 0]) for x in t]  # noqa: E731
    p0 = P(0)
    check(p0.query(batch(1, 2), None, None) is not None and vals(p0.query(batch(1, 2), None, None)) == [1, 2]
          and p0.tensor() is None, "pool_size 0 returns the input and stores nothing")
    p = P(3, [imgs[0], imgs[1]])
    r = p.query(batch(2, 3), torch.tensor([0.1, 0.7]), torch.tensor([0, 2]))
    check(vals(r) == [2, 2] and vals(p.tensor()) == [0, 1, 3],
          "batch order: image 0 fills the last slot and is returned; image 1 meets a full pool, u 0.7 > 0.5 swaps slot 2")
    r = p.query(batch(4, 4), torch.tensor([0.5, 0.51]), torch.tensor([1, 0]))
    check(vals(r) == [4, 0] and vals(p.tensor()) == [4, 1, 3], "u = 0.5 returns the image itself (u > 0.5 swaps)")
    d = cyclegan_step.PoolDraws(3, {"pool_u.A": torch.tensor([0.2]), "pool_id.A": torch.tensor([3])}, None)
    for given, what in (({"pool_u.A": torch.tensor([0.2]), "pool_id.A": torch.tensor([3])}, "slot 3 with pool_size 3"),
                        ({"pool_u.A": torch.tensor([0.2])}, "u without id"),
                        ({"pool_u.A": torch.tensor([0.2, 0.3]), "pool_id.A": torch.tensor([0, 1])}, "N = 2 draws for N = 1"),
                        ({"pool_u.A": torch.tensor([1.5]), "pool_id.A": torch.tensor([0])}, "u outside [0, 1]"),
                        ({"pool_u.A": torch.tensor([0.2]), "pool_id.A": torch.tensor([0], dtype=torch.int32)}, "I32 id")):
        try:
            cyclegan_step.PoolDraws(3, given, None).draws("A", 1)
            check(False, "bad pool draw refused: %s" % what)
        except (ValueError, KeyError):
            check(True, "bad pool draw refused: %s" % what)
    try:
        P(2, [imgs[0]] * 3)
        check(False, "a pool given more images than pool_size is refused")
    except ValueError:
        check(True, "a pool given more images than pool_size is refused")
    del d


def test_two_gan_config_and_adam():
    import cyclegan_step
    import dclgan_step
    c = enco_config.load(text='model = { family = "DCLGAN"; }; dclgan = { nce_layers = [4, 8]; lr_F = 0.01; };')
    ok = c["model"]["family"] == "dclgan" and c["dclgan"]["nce_layers"] == [4, 8] and c["dclgan"]["lr_F"] == 0.01
    ok = ok and c["dclgan"]["beta1_F"] == 0.9 and c["cyclegan"]["pool_size"] == 50 and c["cyclegan"]["nets"] == "gpu"
    back = enco_config.load(text=enco_config.dump(c))
    check(ok and back["dclgan"] == c["dclgan"], "cyclegan/dclgan config defaults, dump round trip")
    for bad in ('cyclegan = { nets = "tpu"; };', 'cyclegan = { pool_size = -1; };', 'cyclegan = { pool_size = 2.5; };',
                'cyclegan = { lambda_A = "x"; };', 'dclgan = { beta1_F = 1.0; };', 'dclgan = { nce_layers = [8, 4]; };',
                'dclgan = { nce_T = 0; };', 'dclgan = { nce_idt = 1; };'):
        try:
            enco_config.load(text=bad)
            check(False, "config refused: %s" % bad)
        except enco_config.ConfigError:
            check(True, "config refused: %s" % bad)
    c = enco_config.load(text='model = { family = "cyclegan"; ngf = 4; ndf = 4; n_blocks = 1; };')
    n = cyclegan_step.CycleGANNets(c)
    opts = cyclegan_step.make_group_optimizers(n, cyclegan_step.hparams(c))
    st_ = {"adam_step.netG_A": torch.tensor(2), "adam_step.netG_B": torch.tensor(3)}
    for given, what in ((st_, "adam_step.netG_A != adam_step.netG_B"), ({"adam_step.netD_A": torch.tensor(1)}, "D_B's missing")):
        try:
            cyclegan_step.load_adam_groups(n, opts, given)
            check(False, "Adam group refused: %s" % what)
        except (KeyError, ValueError):
            check(True, "Adam group refused: %s" % what)
    # cos PatchNCE against a direct loop (all rows of the batch are negatives, -10 on the diagonal)
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    got = dclgan_step.patchnce_cos(q, k, 0.07)
    want = []
    for i in range(6):
        cos = lambda a, b: float(a @ b / max(a.norm() * b.norm(), 1e-8))  # noqa: E731
        logits = [cos(q[i], k[i])] + [(-10.0 if j == i else cos(q[i], k[j])) for j in range(6)]
        logits = torch.tensor(logits, dtype=torch.float64) / 0.07
        want.append(float(torch.logsumexp(logits, 0) - logits[0]))
    check(torch.allclose(got, torch.tensor(want, dtype=torch.float64), rtol=1e-12, atol=1e-12),
          "DCLGAN cos PatchNCE equals a direct loop (whole-batch negatives, -10 diagonal before /T)")


def main():
    torch.set_num_threads(2)
    test_two_gan_nets()
    test_image_pool()
    test_two_gan_config_and_adam()
    test_cut_nets()
    test_patchnce()
    test_cut_config_and_draws()
    test_torch_in_bug_probe()
    test_cut_fd()
    nets = test_keys()
    test_shapes(nets)
    test_blur()
    test_dag()
    test_safetensors()
    test_config()
    test_pth_roundtrip()
    test_pth_two_generators()
    print("%d failure(s)" % len(FAILS))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
