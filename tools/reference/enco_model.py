"""EnCo networks (PyTorch twin of enco-cl), written from docs/enco.md.

Module structure follows the reference `nn.Sequential` numbering so that
state_dict names equal shared/spec/reference-keys.tsv:
    G: ResnetGenerator      -> netG.model.<i>...
    D: NLayerDiscriminator  -> netD.model.<i>...
    F: EnCoHeads            -> netF.mlp_<p>..., netF.prj_<p>...
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as Fn

BLUR_1D = {3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0]}


def blur_filter(channels, size, scale=1.0):
    a = torch.tensor(BLUR_1D[size], dtype=torch.float32)
    f = a[:, None] * a[None, :]
    f = f / f.sum() * scale
    return f[None, None].repeat(channels, 1, 1, 1).contiguous()


class Downsample(nn.Module):
    """Fixed anti-aliased downsampling: reflect pad 1, depthwise 3x3 [1,2,1]^2/16, stride 2."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        self.register_buffer("filt", blur_filter(channels, 3))

    def forward(self, x):
        x = Fn.pad(x, (1, 1, 1, 1), mode="reflect")
        return Fn.conv2d(x, self.filt, stride=2, groups=x.shape[1])


class Upsample(nn.Module):
    """Fixed anti-aliased upsampling: replicate pad 1, depthwise transposed conv
    (stride 2, padding 2, [1,3,3,1]^2/64*4), drop first and last row/column."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        self.register_buffer("filt", blur_filter(channels, 4, scale=4.0))

    def forward(self, x):
        x = Fn.pad(x, (1, 1, 1, 1), mode="replicate")
        y = Fn.conv_transpose2d(x, self.filt, stride=2, padding=2, groups=x.shape[1])
        return y[:, :, 1:-1, 1:-1]


def instance_norm(c):
    return nn.InstanceNorm2d(c, affine=False, track_running_stats=False, eps=1e-5)


class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), instance_norm(dim), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), instance_norm(dim))

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, ngf=64, n_blocks=9, no_antialias=False,
                 no_antialias_up=False):
        super().__init__()
        layers = []
        # out_info[i] = (channels, spatial divisor) of the output of module i
        self.out_info = []

        def add(m, c, div):
            layers.append(m)
            self.out_info.append((c, div))

        add(nn.ReflectionPad2d(3), input_nc, 1)
        add(nn.Conv2d(input_nc, ngf, 7, bias=True), ngf, 1)
        add(instance_norm(ngf), ngf, 1)
        add(nn.ReLU(), ngf, 1)
        c, div = ngf, 1
        for _ in range(2):
            if no_antialias:
                add(nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=True), 2 * c, div * 2)
                add(instance_norm(2 * c), 2 * c, div * 2)
                add(nn.ReLU(), 2 * c, div * 2)
            else:
                add(nn.Conv2d(c, 2 * c, 3, stride=1, padding=1, bias=True), 2 * c, div)
                add(instance_norm(2 * c), 2 * c, div)
                add(nn.ReLU(), 2 * c, div)
                add(Downsample(2 * c), 2 * c, div * 2)
            c, div = 2 * c, div * 2
        for _ in range(n_blocks):
            add(ResnetBlock(c), c, div)
        for _ in range(2):
            if no_antialias_up:
                add(nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=True),
                    c // 2, div // 2)
            else:
                add(Upsample(c), c, div // 2)
                add(nn.Conv2d(c, c // 2, 3, stride=1, padding=1, bias=True), c // 2, div // 2)
            add(instance_norm(c // 2), c // 2, div // 2)
            add(nn.ReLU(), c // 2, div // 2)
            c, div = c // 2, div // 2
        add(nn.ReflectionPad2d(3), c, 1)
        add(nn.Conv2d(c, output_nc, 7, bias=True), output_nc, 1)
        add(nn.Tanh(), output_nc, 1)
        self.model = nn.Sequential(*layers)

    def forward(self, x, layers=()):
        """Return (output, [features at module indices `layers`, in that order])."""
        want = set(layers)
        got = {}
        for i, m in enumerate(self.model):
            x = m(x)
            if i in want:
                got[i] = x
        return x, [got[i] for i in layers]


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc=3, ndf=64, n_layers=3, no_antialias=False):
        super().__init__()
        seq = []
        if no_antialias:
            seq += [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        else:
            seq += [nn.Conv2d(input_nc, ndf, 4, stride=1, padding=1), nn.LeakyReLU(0.2), Downsample(ndf)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            if no_antialias:
                seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=True),
                        instance_norm(ndf * mult), nn.LeakyReLU(0.2)]
            else:
                seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=True),
                        instance_norm(ndf * mult), nn.LeakyReLU(0.2), Downsample(ndf * mult)]
        prev, mult = mult, min(2 ** n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=True),
                instance_norm(ndf * mult), nn.LeakyReLU(0.2)]
        seq += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1, bias=True)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


def _norm(kind, dim, affine=True):
    if kind == "bn":
        return nn.BatchNorm1d(dim, eps=1e-5, momentum=0.1, affine=affine)
    if kind == "ln":
        return nn.LayerNorm(dim, eps=1e-5)
    if kind == "none":
        return nn.Identity()
    raise ValueError("prj_norm must be bn, ln or none, not %r" % kind)


def l2norm(x):
    """x / (||x||_2 + 1e-7) per row. vector_norm's backward is 0 at a zero row (the reference's
    pow(0.5) gives NaN there); elsewhere the two are the same function."""
    return x / (torch.linalg.vector_norm(x, ord=2, dim=1, keepdim=True) + 1e-7)


class EnCoHeads(nn.Module):
    """F: per pair p a projection mlp_<p> (used by key and query) and a prediction prj_<p>
    (query only)."""

    def __init__(self, in_channels, nc=256, prj_norm="bn"):
        super().__init__()
        self.prj_norm = prj_norm
        self.n_pairs = len(in_channels)
        for p, cin in enumerate(in_channels):
            setattr(self, "mlp_%d" % p, nn.Sequential(
                nn.Linear(cin, nc, bias=False), _norm(prj_norm, nc), nn.ReLU(),
                nn.Linear(nc, nc, bias=False), _norm(prj_norm, nc, affine=False)))
        for p in range(len(in_channels)):
            setattr(self, "prj_%d" % p, nn.Sequential(
                nn.Linear(nc, nc // 2, bias=False), _norm(prj_norm, nc // 2), nn.ReLU(),
                nn.Linear(nc // 2, nc, bias=True)))

    def project(self, p, x):
        return getattr(self, "mlp_%d" % p)(x)

    def predict(self, p, x):
        return getattr(self, "prj_%d" % p)(x)


def init_weights(module, gain=0.02):
    """Spec section 6: conv/linear weights xavier_normal(gain), biases 0; norm layers 1/0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def split_layers(nce_layers):
    n = len(nce_layers)
    if n % 2:
        raise ValueError("nce_layers must have an even length")
    keys = list(nce_layers[: n // 2])
    queries = list(nce_layers[n // 2:])[::-1]
    return keys, queries


class EnCoNets(nn.Module):
    """Holds netG, netD, netF; state_dict keys are netG.*, netD.*, netF.*."""

    def __init__(self, cfg):
        super().__init__()
        m = cfg["model"]
        self.netG = ResnetGenerator(m["input_nc"], m["output_nc"], m["ngf"], m["n_blocks"],
                                    m["no_antialias"], m["no_antialias_up"])
        self.netD = NLayerDiscriminator(m["output_nc"], m["ndf"], m["n_layers_D"], m["no_antialias"])
        self.nce_layers = list(m["nce_layers"])
        self.key_layers, self.query_layers = split_layers(self.nce_layers)
        info = self.netG.out_info
        chans = []
        for k, q in zip(self.key_layers, self.query_layers):
            if not (0 <= k < len(info) and 0 <= q < len(info)):
                raise ValueError("nce layer out of range: %d/%d (G has %d modules)" % (k, q, len(info)))
            if info[k] != info[q]:
                raise ValueError("key layer %d %s and query layer %d %s differ in channels/size"
                                 % (k, info[k], q, info[q]))
            chans.append(info[q][0])
        self.netF = EnCoHeads(chans, m["netF_nc"], m["prj_norm"])

    def init(self, seed, gain=0.02):
        g = torch.random.fork_rng(devices=[])
        with g:
            torch.manual_seed(seed)
            init_weights(self, gain)


def count_params(module):
    return sum(p.numel() for p in module.parameters())
