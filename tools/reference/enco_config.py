"""Tiny parser for the subset of libconfig syntax used by enco-cl configs, plus defaults.

Supported: `name = value;` or `name : value;` (the ';' or ',' terminator is optional),
groups `name = { ... };`, arrays `[1, 2, 3]` and lists `( ... )` (both become Python lists),
double-quoted strings with C escapes (adjacent strings are concatenated), integers
(decimal, 0x hex, optional L/LL suffix), floats (1e-4, .5, 2.), booleans true/false
(any case), comments `#`, `//`, `/* */`.  `@include` is not supported.
"""
import copy
import re

DEFAULTS = {
    "model": {
        "input_nc": 3,
        "output_nc": 3,
        "ngf": 64,
        "n_blocks": 9,
        "ndf": 64,
        "n_layers_D": 3,
        "nce_layers": [3, 7, 13, 18, 24, 28],
        "netF_nc": 256,
        "prj_norm": "bn",
        "no_antialias": False,
        "no_antialias_up": False,
        "family": "enco",
    },
    "train": {
        "lambda_GAN": 1.0,
        "lambda_NCE": 2.0,
        "lambda_IDT": 10.0,
        "nce_idt": True,
        "num_patches": 256,
        "sampling": "dag",
        "oversample_ratio": 4,
        "random_ratio": 0.5,
        "dag_order": "ascending",
        "lr_G": 5e-5,
        "lr_D": 2e-4,
        "lr_F": 5e-5,
        "beta1": 0.5,
        "beta2": 0.999,
        "eps": 1e-8,
        "init_gain": 0.02,
        "seed": 0,
    },
}

FAMILIES = ("enco", "cut", "fastcut", "cyclegan", "dclgan")

# CUT and FastCUT: each family reads its own group (same keys); G/D options stay in `model`,
# Adam (beta1, beta2, eps), init_gain and seed in `train`. Defaults: MODELS.md sections 1-2.
_NCE_COMMON = {
    "lambda_GAN": 1.0,
    "lambda_NCE": 1.0,
    "nce_idt": True,
    "nce_layers": [0, 4, 8, 12, 16],
    "nce_T": 0.07,
    "num_patches": 256,
    "netF_nc": 256,
    "nce_includes_all_negatives_from_minibatch": False,
    "nce_flip_equivariance": False,
    "lr": 0.0002,
}
DEFAULTS["cut"] = dict(_NCE_COMMON)
DEFAULTS["fastcut"] = dict(_NCE_COMMON, lambda_NCE=10.0, nce_idt=False, nce_flip_equivariance=True)
# CycleGAN and DCLGAN (MODELS.md 3-4): own groups; G/D sizes from `model` (CycleGAN ignores
# model.no_antialias*: its nets follow `nets`, "gpu" = strided down + blur up G, strided D, the
# reference's GPU behaviour; "cpu" = the antialiased nets), Adam beta1/eps, init_gain and seed in `train`.
DEFAULTS["cyclegan"] = {
    "lambda_A": 10.0,
    "lambda_B": 10.0,
    "lambda_identity": 0.5,
    "pool_size": 50,
    "lr": 0.0002,
    "nets": "gpu",
}
DEFAULTS["dclgan"] = {
    "lambda_GAN": 1.0,
    "lambda_NCE": 2.0,
    "lambda_IDT": 1.0,
    "nce_idt": True,
    "nce_layers": [4, 8, 12, 16],
    "nce_T": 0.07,
    "num_patches": 256,
    "netF_nc": 256,
    "lr": 0.0002,
    "lr_F": 0.001,
    "beta1_F": 0.9,
}
MODEL_GD_KEYS = ("input_nc", "output_nc", "ngf", "n_blocks", "ndf", "n_layers_D", "no_antialias",
                 "no_antialias_up", "family")
TRAIN_COMMON_KEYS = ("beta1", "beta2", "eps", "init_gain", "seed")

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*|//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<float>[-+]?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+))
  | (?P<hex>[-+]?0[xX][0-9a-fA-F]+(?:LL|L)?)
  | (?P<int>[-+]?\d+(?:LL|L)?)
  | (?P<bool>(?i:true|false)\b)
  | (?P<name>[A-Za-z*][-A-Za-z0-9_*.]*)
  | (?P<punct>[=:;,{}\[\]()])
""", re.VERBOSE | re.DOTALL)


class ConfigError(ValueError):
    pass


def _tokenize(text):
    pos, toks = 0, []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            line = text.count("\n", 0, pos) + 1
            raise ConfigError("line %d: cannot parse near %r" % (line, text[pos:pos + 20]))
        kind = m.lastgroup
        val = m.group(kind)
        pos = m.end()
        if kind in ("ws", "comment"):
            continue
        if kind == "string":
            val = bytes(val[1:-1], "utf-8").decode("unicode_escape")
        elif kind == "float":
            val = float(val)
        elif kind == "hex":
            val = int(val.rstrip("L"), 16)
        elif kind == "int":
            val = int(val.rstrip("L"))
        elif kind == "bool":
            val = val.lower() == "true"
        toks.append((kind, val))
    return toks


class _Parser:
    def __init__(self, toks):
        self.t = toks
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else (None, None)

    def take(self, kind=None, val=None):
        k, v = self.peek()
        if k is None or (kind and k != kind) or (val is not None and v != val):
            raise ConfigError("expected %s %s, got %r" % (kind or "", val or "", v))
        self.i += 1
        return v

    def settings(self, end=None):
        out = {}
        while True:
            k, v = self.peek()
            if k is None or (k == "punct" and v == end):
                return out
            name = self.take("name")
            k, v = self.peek()
            if k == "punct" and v in ("=", ":"):
                self.i += 1
            else:
                raise ConfigError("expected '=' or ':' after %s" % name)
            value = self.value()
            # dotted names (model.ngf = 8;) are accepted as a convenience
            parts = name.split(".")
            d = out
            for p in parts[:-1]:
                d = d.setdefault(p, {})
            d[parts[-1]] = value
            k, v = self.peek()
            if k == "punct" and v in (";", ","):
                self.i += 1

    def value(self):
        k, v = self.peek()
        if k == "punct" and v == "{":
            self.i += 1
            g = self.settings("}")
            self.take("punct", "}")
            return g
        if k == "punct" and v in ("[", "("):
            close = "]" if v == "[" else ")"
            self.i += 1
            items = []
            while True:
                k, v = self.peek()
                if k == "punct" and v == close:
                    self.i += 1
                    return items
                items.append(self.value())
                k, v = self.peek()
                if k == "punct" and v == ",":
                    self.i += 1
        if k == "string":
            s = self.take()
            while self.peek()[0] == "string":
                s += self.take()
            return s
        if k in ("int", "hex", "float", "bool"):
            return self.take()
        raise ConfigError("unexpected token %r" % (v,))


def parse(text):
    p = _Parser(_tokenize(text))
    out = p.settings()
    if p.i != len(p.t):
        raise ConfigError("trailing tokens")
    return out


def _merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def load(path=None, text=None):
    """Defaults overridden by the file (unknown keys and groups are kept but unused)."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        with open(path) as f:
            text = f.read()
    if text:
        _merge(cfg, parse(text))
    m, t = cfg["model"], cfg["train"]
    for key in ("input_nc", "output_nc", "ngf", "n_blocks", "ndf", "n_layers_D", "netF_nc"):
        m[key] = int(m[key])
    m["nce_layers"] = [int(x) for x in m["nce_layers"]]
    m["prj_norm"] = str(m["prj_norm"]).lower()
    for key in ("lambda_GAN", "lambda_NCE", "lambda_IDT", "random_ratio", "lr_G", "lr_D", "lr_F",
                "beta1", "beta2", "eps", "init_gain"):
        t[key] = float(t[key])
    for key in ("num_patches", "oversample_ratio", "seed"):
        t[key] = int(t[key])
    t["sampling"] = str(t["sampling"]).lower()
    t["dag_order"] = str(t["dag_order"]).lower()
    if m["prj_norm"] not in ("bn", "ln", "none"):
        raise ConfigError("model.prj_norm must be \"bn\", \"ln\" or \"none\"")
    if t["sampling"] not in ("dag", "random"):
        raise ConfigError("train.sampling must be \"dag\" or \"random\"")
    if t["dag_order"] not in ("ascending", "descending"):
        raise ConfigError("train.dag_order must be \"ascending\" or \"descending\"")
    m["family"] = str(m["family"]).lower()
    if m["family"] not in FAMILIES:
        raise ConfigError("model.family must be \"enco\", \"cut\", \"fastcut\", \"cyclegan\" or \"dclgan\", "
                          "not %r" % m["family"])
    for fam in ("cut", "fastcut"):
        _check_nce_section(fam, cfg[fam])
    _check_cyclegan(cfg["cyclegan"])
    _check_dclgan(cfg["dclgan"])
    return cfg


def _number(name, s, key, lo=0.0):
    if isinstance(s[key], (bool, str, list, dict)):
        raise ConfigError("%s.%s must be a number" % (name, key))
    s[key] = float(s[key])
    if not s[key] >= lo:
        raise ConfigError("%s.%s must be >= %g" % (name, key, lo))


def _integer(name, s, key, lo):
    if isinstance(s[key], (bool, str, list, dict, float)):
        raise ConfigError("%s.%s must be an integer" % (name, key))
    s[key] = int(s[key])
    if s[key] < lo:
        raise ConfigError("%s.%s must be >= %d" % (name, key, lo))


def _check_cyclegan(s):
    for key in ("lambda_A", "lambda_B", "lambda_identity", "lr"):
        _number("cyclegan", s, key)
    _integer("cyclegan", s, "pool_size", 0)
    if not isinstance(s["nets"], str) or s["nets"].lower() not in ("gpu", "cpu"):
        raise ConfigError("cyclegan.nets must be \"gpu\" or \"cpu\", not %r" % (s["nets"],))
    s["nets"] = s["nets"].lower()


def _check_dclgan(s):
    for key in ("lambda_GAN", "lambda_NCE", "lambda_IDT", "lr", "lr_F", "beta1_F"):
        _number("dclgan", s, key)
    if not s["beta1_F"] < 1:
        raise ConfigError("dclgan.beta1_F must be in [0, 1)")
    for key in ("num_patches", "netF_nc"):
        _integer("dclgan", s, key, 1)
    if not isinstance(s["nce_idt"], bool):
        raise ConfigError("dclgan.nce_idt must be true or false")
    _number("dclgan", s, "nce_T")
    if not s["nce_T"] > 0:
        raise ConfigError("dclgan.nce_T must be > 0")
    _check_layers("dclgan", s["nce_layers"])


def _check_layers(name, layers):
    if not isinstance(layers, list) or not layers or not all(isinstance(x, int) and not isinstance(x, bool)
                                                            for x in layers):
        raise ConfigError("%s.nce_layers must be a non-empty list of integers" % name)
    if any(x < 0 for x in layers) or any(b <= a for a, b in zip(layers, layers[1:])):
        raise ConfigError("%s.nce_layers must be >= 0 and strictly increasing (the reference returns "
                          "features in module order)" % name)


def _check_nce_section(name, s):
    for key in ("lambda_GAN", "lambda_NCE", "nce_T", "lr"):
        if isinstance(s[key], (bool, str, list, dict)):
            raise ConfigError("%s.%s must be a number" % (name, key))
        s[key] = float(s[key])
    for key in ("num_patches", "netF_nc"):
        if isinstance(s[key], (bool, str, list, dict, float)):
            raise ConfigError("%s.%s must be an integer" % (name, key))
        s[key] = int(s[key])
        if s[key] < 1:
            raise ConfigError("%s.%s must be >= 1" % (name, key))
    for key in ("nce_idt", "nce_includes_all_negatives_from_minibatch", "nce_flip_equivariance"):
        if not isinstance(s[key], bool):
            raise ConfigError("%s.%s must be true or false" % (name, key))
    layers = s["nce_layers"]
    if not isinstance(layers, list) or not layers or not all(isinstance(x, int) and not isinstance(x, bool)
                                                            for x in layers):
        raise ConfigError("%s.nce_layers must be a non-empty list of integers" % name)
    if any(x < 0 for x in layers) or any(b <= a for a, b in zip(layers, layers[1:])):
        raise ConfigError("%s.nce_layers must be >= 0 and strictly increasing (the reference returns "
                          "features in module order)" % name)
    if not s["nce_T"] > 0:
        raise ConfigError("%s.nce_T must be > 0" % name)
    if s["lambda_GAN"] < 0 or s["lambda_NCE"] < 0 or s["lr"] < 0:
        raise ConfigError("%s: lambda_GAN, lambda_NCE and lr must be >= 0" % name)


def family_section(cfg):
    """The option group of the configured family (cut/fastcut/cyclegan/dclgan), None for enco."""
    fam = cfg["model"]["family"]
    return None if fam == "enco" else cfg[fam]


def dump(cfg):
    """Write the groups a family reads back in libconfig syntax (EnCo: model, train; CUT/FastCUT:
    model G/D keys and family, train Adam/init/seed keys, then the family's group; CycleGAN and DCLGAN the same)."""
    def fmt(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
        if isinstance(v, float):
            r = repr(v)
            return r if ("." in r or "e" in r or "inf" in r or "nan" in r) else r + ".0"
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + " ".join("%s = %s;" % (k, fmt(x)) for k, x in v.items()) + " }"
        return str(v)
    fam = cfg["model"].get("family", "enco")
    if fam == "enco":  # unchanged EnCo form: model and train groups, without the family key
        groups = [(g, [(k, v) for k, v in cfg[g].items() if k != "family"]) for g in ("model", "train")]
    else:  # CUT/FastCUT: only the keys the family reads
        groups = [("model", [(k, cfg["model"][k]) for k in MODEL_GD_KEYS]),
                  ("train", [(k, cfg["train"][k]) for k in TRAIN_COMMON_KEYS]),
                  (fam, list(cfg[fam].items()))]
    lines = []
    for group, items in groups:
        lines.append("%s = {" % group)
        for k, v in items:
            lines.append("  %s = %s;" % (k, fmt(v)))
        lines.append("};")
    return "\n".join(lines) + "\n"
