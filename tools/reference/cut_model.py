"""CUT / FastCUT networks (PyTorch twin of enco-cl), written from docs/cut.md (the PatchSampleF heads and the encoder pass).

G and D are the EnCo ones (enco_model.py); F is PatchSampleF: per NCE layer l (the position in
`nce_layers`, 0..L-1) a head mlp_<l> = Linear(C_l, nc, bias) ReLU Linear(nc, nc, bias), followed
by x / (||x||_2 + 1e-7) (l2norm_rows). State-dict names: netF.mlp_<l>.0.weight/.0.bias/.2.weight/.2.bias.
"""
import torch
import torch.nn as nn

from enco_model import NLayerDiscriminator, ResnetGenerator, init_weights


def l2norm_rows(x):
    """x / (||x||_2 + 1e-7) per row, with the norm computed as (sum x^2)^0.5 as the reference's
    Normalize does: this is bit-identical to the authors' PatchSampleF in value and gradient
    (torch's vector_norm differs in the last bits). Its gradient at an all-zero row is NaN, as in
    the reference; make_fixtures rejects seeds with a (near) zero query row."""
    return x.div(x.pow(2).sum(1, keepdim=True).pow(0.5) + 1e-7)


class PatchSampleHeads(nn.Module):
    """F of CUT: one two-layer MLP per NCE layer (no norm layer, no prediction head)."""

    def __init__(self, in_channels, nc=256):
        super().__init__()
        self.n_layers = len(in_channels)
        for l, cin in enumerate(in_channels):
            setattr(self, "mlp_%d" % l, nn.Sequential(nn.Linear(cin, nc, bias=True), nn.ReLU(),
                                                      nn.Linear(nc, nc, bias=True)))

    def forward(self, l, rows):
        """rows (R, C_l) -> L2-normalised (R, nc)."""
        return l2norm_rows(getattr(self, "mlp_%d" % l)(rows))


def encode(netG, x, layers):
    """CUT's encoder pass: feature 0 is the input x itself (the EnCo copy of CUT, not upstream's
    reflection-padded input); feature i > 0 is the output of module i. Stops after the last
    listed module. `layers` must be strictly increasing."""
    feats = []
    want = set(layers)
    if 0 in want:
        feats.append(x)
    last = layers[-1]
    h = x
    for i, m in enumerate(netG.model):
        if i > last:
            break
        h = m(h)
        if i in want and i > 0:
            feats.append(h)
    return feats


class CUTNets(nn.Module):
    """Holds netG, netD, netF for family "cut" or "fastcut"; state_dict keys netG.*, netD.*, netF.*."""

    def __init__(self, cfg):
        super().__init__()
        m = cfg["model"]
        fam = m["family"]
        if fam not in ("cut", "fastcut"):
            raise ValueError("CUTNets needs model.family \"cut\" or \"fastcut\", not %r" % fam)
        s = cfg[fam]
        self.family = fam
        self.netG = ResnetGenerator(m["input_nc"], m["output_nc"], m["ngf"], m["n_blocks"],
                                    m["no_antialias"], m["no_antialias_up"])
        self.netD = NLayerDiscriminator(m["output_nc"], m["ndf"], m["n_layers_D"], m["no_antialias"])
        self.nce_layers = list(s["nce_layers"])
        info = self.netG.out_info
        for l in self.nce_layers:
            if not 0 <= l < len(info):
                raise ValueError("%s.nce_layers: layer %d out of range (G has modules 0..%d)"
                                 % (fam, l, len(info) - 1))
        # (channels, spatial divisor) of each feature; feature 0 is the input image
        self.feat_info = [(m["input_nc"], 1) if l == 0 else info[l] for l in self.nce_layers]
        self.netF = PatchSampleHeads([c for c, _ in self.feat_info], s["netF_nc"])

    def init(self, seed, gain=0.02):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            init_weights(self, gain)


def in_preceded_biases(nets):
    """Names of conv biases directly followed by InstanceNorm in netG/netD: IN removes the channel
    mean, so their true gradient is 0 and any float32 value is rounding noise (README)."""
    out = set()
    for pre in ("netG", "netD"):
        mods = list(getattr(nets, pre).named_modules())
        for i, (nm, m) in enumerate(mods):
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and i + 1 < len(mods) \
                    and isinstance(mods[i + 1][1], nn.InstanceNorm2d):
                out.add("%s.%s.bias" % (pre, nm))
    return out
