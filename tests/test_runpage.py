#!/usr/bin/env python3
"""enco-cl test: the run page (index.html of a run folder), on short runs of a tiny model on the
synthetic task, on the device ENCO_DEVICE selects:

1. Structure, for EnCo and for CUT: a complete HTML document (every element closed, the SVGs
   too); state "done"; every loss the run logs in losses.jsonl (the family's) named in the
   loss chart's legend; tick labels on both axes of the charts, the iteration axis from 0 to
   the run's length; a linear and a log-scale chart; one samples-table row per saved sample
   iteration (samples/iter_NNNNNNNN.png), newest first, with the family's visuals (real_A,
   fake_B, real_B, and idt_B while the identity term is on) as files that exist and are PNGs;
   the scores on the test pairs (PSNR, SSIM, content with the identity baseline) with one
   point per line of evals.jsonl (every run.eval_every iterations and at the end, or only at
   the end with run.eval_every = 0); the device, s/iter, peak device memory and the
   configuration; no external URL (nothing from the network: no http:// or https:// at all).
   The EnCo run's page is also screenshotted with headless Chromium (chromium --headless
   --screenshot, from file://, a private profile, host names resolving to nothing) and the
   picture, decoded here (zlib and the PNG row filters; no numpy or PIL), must not be blank:
   more than 500 colours, over 10 % of the pixels painted on the white background, each loss
   colour of the legend painted, and the fixed real_B sample painted pixel for pixel in every
   samples row, below the first 1600-pixel screen. No chromium is a failure (tools/install-deps
   installs it).
2. Without ground truth (no testA/testB) the page has no scores and the run writes no
   evals.jsonl or eval.json.
3. SIGKILL at random moments of a run that rewrites its page at every iteration: the page
   on disk is always complete (ends with </html>, every element and SVG closed), says
   "running", and every image it shows exists as a complete PNG.
4. SIGINT: the page says "stopped"; a run that fails (a sample that cannot be written) says
   "failed" with the message.
"""
import collections
import html.parser
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from testlib import PNG_SIG, check, finish, read_png, write_png

BIN = sys.argv[1]

CONFIG = """
model = { ngf = 4; ndf = 4; n_blocks = 4; nce_layers = [3, 7, 13, 14, 19, 23]; netF_nc = 16; };
train = { num_patches = 16; n_epochs = 1; n_epochs_decay = 1; seed = 1; };
data = { root = "%(data)s"; synthetic = true; synth_train = 20; synth_test = 4;
         preprocess = "crop"; load_size = 32; crop_size = 32; threads = 1; };
run = { print_every = 2; sample_every = 10; save_every = 0; eval_every = 20;
        max_iterations = 40; };
"""
CUT = ["--set", 'model.family="cut"', "--set", "cut.nce_layers=[0,4,8,12,14]",
       "--set", "cut.num_patches=16", "--set", "cut.netF_nc=16"]
VOID = {"meta", "img", "input", "br", "link", "hr", "col", "source", "wbr"}


class Page(html.parser.HTMLParser):
    """Checks nesting and collects what the tests look at."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors = [], []
        self.attrs_seen = []          # (tag, attrs dict)
        self.text = {}                # id or class key -> list of texts
        self.cur = []                 # keys collecting text
        self.svg_ids = []
        self.in_svg = None
        self.rows = []                # samples rows: list of [cells texts / img srcs]
        self.in_row = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.attrs_seen.append((tag, a))
        if tag == "svg":
            self.svg_ids.append(a.get("id"))
            self.in_svg = a.get("id")
        if tag == "tr" and a.get("class") == "sample":
            self.rows.append([])
            self.in_row = True
        if self.in_row and tag == "img":
            self.rows[-1].append(("img", a.get("alt"), a.get("src")))
        key = None
        if tag == "text" and a.get("class"):
            key = (self.in_svg, a["class"])
        elif a.get("id"):
            key = a["id"]
        elif tag == "td" and self.in_row:
            key = "row"
        if tag not in VOID:
            self.stack.append((tag, key))
            if key:
                self.cur.append(key)
                self.text.setdefault(key, []).append("")

    def handle_startendtag(self, tag, attrs):
        self.attrs_seen.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append("</%s> closes %s" % (tag, self.stack[-1][0] if self.stack
                                                    else "nothing"))
            return
        _, key = self.stack.pop()
        if key:
            self.cur.remove(key)
        if tag == "svg":
            self.in_svg = None
        if tag == "tr":
            self.in_row = False

    def handle_data(self, data):
        for k in self.cur:
            self.text[k][-1] += data
        if self.in_row and self.cur and self.cur[-1] == "row" and data.strip():
            self.rows[-1].append(("text", data.strip()))


def parse(path):
    with open(path, encoding="utf-8") as f:
        src = f.read()
    p = Page()
    p.feed(src)
    p.close()
    if p.stack:
        p.errors.append("unclosed: " + ", ".join(t for t, _ in p.stack))
    return src, p


def complete(src, p):
    return (src.startswith("<!doctype html>") and src.rstrip().endswith("</html>") and
            not p.errors and src.count("<svg") == src.count("</svg>"))


def state_of(p):
    return "".join(p.text.get("state", [""])).strip()


def is_png(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data.startswith(PNG_SIG) and data[-12:-4] == b"\0\0\0\0IEND"


def numbers(texts):
    out = []
    for t in texts:
        try:
            out.append(float(t))
        except ValueError:
            return None
    return out


def train(cfg, run, *extra):
    p = subprocess.run([BIN, "train", "-c", cfg, "--dir", run, *extra], capture_output=True,
                       text=True, timeout=900)
    if p.returncode != 0:
        sys.stdout.write(p.stdout[-1500:] + p.stderr[-2000:])
    return p


def structure(label, run, proc, losses_want, idt, eval_iters):
    page = os.path.join(run, "index.html")
    check("%s: exits 0" % label, proc.returncode == 0, proc.stderr[-500:])
    if not os.path.isfile(page):
        check("%s: index.html written" % label, False)
        return
    src, p = parse(page)
    check("%s: the page is complete HTML (every element and SVG closed)" % label,
          complete(src, p), str(p.errors[:3]))
    check("%s: state done" % label, state_of(p) == "done", state_of(p))
    with open(os.path.join(run, "losses.jsonl")) as f:
        logged = [json.loads(x) for x in f]
    names = [k for k in logged[-1] if k.startswith("loss_")]
    check("%s: losses.jsonl logs the family's losses %s" % (label, losses_want),
          names == losses_want, str(names))
    legend = [t.split()[0] for t in p.text.get(("losses", "legend"), [])]
    check("%s: the loss chart's legend names every logged loss" % label,
          legend == names, "%s vs %s" % (legend, names))
    svg = re.search(r"<svg id='losses'.*?</svg>", src, re.S)
    svg = svg.group(0) if svg else ""
    check("%s: each loss drawn raw (faint) and smoothed" % label,
          all(len(re.findall(r"<polyline[^>]*stroke='%s' stroke-width='1' stroke-opacity" % c,
                             svg)) >= 1 and
              len(re.findall(r"<polyline[^>]*stroke='%s' stroke-width='2'" % c, svg)) >= 1
              for c in re.findall(r"<line [^>]*stroke='(#[0-9a-f]{6})' stroke-width='3'", svg)) and
          len(re.findall(r"stroke-width='3'", svg)) == len(names))
    check("%s: a linear and a log-scale loss chart" % label,
          "losses" in p.svg_ids and "losses-log" in p.svg_ids and
          ("input", {"type": "checkbox", "id": "logscale"}) in p.attrs_seen,
          str(p.svg_ids))
    for svg in ("losses", "losses-log") + (("scores-psnr", "scores-ssim") if eval_iters else ()):
        xs = numbers(p.text.get((svg, "tick x"), []))
        ys = numbers(p.text.get((svg, "tick y"), []))
        check("%s: %s has numeric tick labels on both axes, iterations 0..>= 40" % (label, svg),
              xs is not None and ys is not None and len(xs) >= 3 and len(ys) >= 2 and
              xs[0] == 0 and xs == sorted(xs) and xs[-1] >= 40 and
              (ys == sorted(ys) or ys == sorted(ys, reverse=True)),
              "x %s y %s" % (xs, ys))
    grids = sorted(int(m.group(1)) for m in (re.fullmatch(r"iter_(\d{8})\.png", n)
                                             for n in os.listdir(os.path.join(run, "samples")))
                   if m)
    iters = [int(r[0][1]) for r in p.rows if r and r[0][0] == "text" and r[0][1].isdigit()]
    check("%s: one samples row per saved iteration, newest first" % label,
          iters == sorted(grids, reverse=True) == [40, 30, 20, 10], "%s vs %s" % (iters, grids))
    # The family's visuals in every row; idt_B in the rows where the identity term is on.
    shown = {int(r[0][1]): [c[1] for c in r if c[0] == "img"] for r in p.rows}
    want = {i: ["real_A", "fake_B", "real_B"] + (["idt_B"] if i in idt else []) + ["batch grid"]
            for i in grids}
    off = [int(r[0][1]) for r in p.rows if ("text", "(identity off)") in r]
    check("%s: each row shows real_A, fake_B, real_B, idt_B where the identity term is on "
          "(iterations %s)" % (label, sorted(idt)), shown == want and
          sorted(off) == sorted(set(grids) - set(idt)), "%s %s" % (shown, off))
    srcs = [c[2] for r in p.rows for c in r if c[0] == "img"]
    check("%s: every sample image exists and is a PNG (%d)" % (label, len(srcs)),
          srcs and all(is_png(os.path.join(run, s)) for s in srcs))
    fakes = {c[2] for r in p.rows for c in r if c[0] == "img" and c[1] == "fake_B"}
    check("%s: one fake_B of the fixed image per row" % label, len(fakes) == len(p.rows))
    ev = os.path.join(run, "evals.jsonl")
    got = [json.loads(x)["iter"] for x in open(ev)] if os.path.isfile(ev) else []
    check("%s: evals.jsonl has the evaluations %s" % (label, eval_iters), got == eval_iters,
          str(got))
    marks = sum(1 for t, a in p.attrs_seen if t == "circle")
    check("%s: the scores are plotted (PSNR, SSIM and content points; identity baseline)" %
          label, "scores-psnr" in p.svg_ids and "scores-ssim" in p.svg_ids and
          marks == 3 * len(eval_iters) and "stroke-dasharray" in src and
          "PSNR identity" in src and "content G(A)" in src, "%d points" % marks)
    with open(os.path.join(run, "eval.json")) as f:
        final = json.load(f)
    table = "".join(p.text.get("scores-table", [""]))
    check("%s: the final PSNR on the page is eval.json's" % label,
          ("%.2f" % final["psnr"]) in table, "%.2f" % final["psnr"])
    urls = [v for _, a in p.attrs_seen for k, v in a.items() if k in ("src", "href") and v]
    check("%s: no external URL (%d links, all relative files)" % (label, len(urls)),
          urls and not re.search(r"https?:", src) and
          all(not u.startswith(("//", "/")) and ":" not in u for u in urls), str(urls[:5]))
    device = re.search(r" on (.+)\n", proc.stdout)
    facts = "".join(p.text.get("facts", [""]))
    check("%s: device, s/iter and peak device memory" % label,
          device and device.group(1).split(" (")[0] in facts and
          re.search(r"[0-9.e+-]+ s/iter", facts) and re.search(r"[0-9.]+ MiB", facts),
          facts[:300])
    config = "".join(p.text.get("config", [""]))
    check("%s: the effective configuration inline" % label,
          "eval_every = " in config and "max_iterations = 40;" in config and
          config.strip() == open(os.path.join(run, "config.cfg")).read().strip())


def decoder_checks(tmp):
    """read_png against pictures of known pixels with every filter type; refusals."""
    rng = random.Random(7)
    path = os.path.join(tmp, "filters.png")
    for colour, ch in ((2, 3), (6, 4)):
        data = bytes(rng.randrange(256) for _ in range(7 * 10 * ch))
        write_png(path, 7, 10, colour, data, [0, 1, 2, 3, 4])
        w, h, c, rows = read_png(path)
        check("read_png: %s with row filters 0-4 decodes to the pixels written" %
              ("RGB" if ch == 3 else "RGBA"), (w, h, c) == (7, 10, ch) and b"".join(rows) == data)
    for what, args, kw, says in (("a greyscale", (1, 1, 0, b"\0", [0]), {}, "only 8-bit RGB"),
                                 ("a 16-bit", (1, 1, 2, b"\0" * 3, [0]), {"depth": 16},
                                  "only 8-bit RGB"),
                                 ("an interlaced", (1, 1, 2, b"\0" * 3, [0]),
                                  {"interlace": 1}, "interlaced")):
        write_png(path, *args, **kw)
        try:
            read_png(path)
            msg = "accepted"
        except ValueError as e:
            msg = str(e)
        check("read_png: %s PNG is refused (%s)" % (what, msg), says in msg)


# The screenshot: a window as wide as a laptop's and tall enough for the page down to the
# samples table (charts, scores, four sample rows); the first 1600 pixels are "the first screen".
SHOT_W, SHOT_H, FIRST_SCREEN = 1200, 2600, 1600


def screenshot(label, run, tmp):
    """Renders the run's index.html with headless Chromium from file:// (no network: the host
    resolver maps every name to nothing) and checks the picture is not blank: many colours,
    white background with a good share of other pixels, every loss colour of the chart's
    legend painted, and the fixed real_B sample painted pixel for pixel in every samples row,
    below the first screen."""
    name = "%s: headless Chromium screenshot" % label
    exe = shutil.which("chromium")
    if exe is None:
        check(name, False, "chromium is not installed (not on PATH): tools/install-deps installs "
              "it (the Debian package chromium)")
        return
    page = os.path.abspath(os.path.join(run, "index.html"))
    shot = os.path.join(tmp, label + "-page.png")
    home = os.path.join(tmp, label + "-chromium")     # a private profile, cache and HOME
    os.makedirs(home)
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--disable-background-networking",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--user-data-dir=" + home + "/profile",
           "--window-size=%d,%d" % (SHOT_W, SHOT_H), "--screenshot=" + shot,
           "file://" + urllib.request.pathname2url(page)]
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home + "/config",
               XDG_CACHE_HOME=home + "/cache")
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += "\n(killed after 120 s)"
    secs = time.time() - t0
    ok = proc.returncode == 0 and os.path.isfile(shot)
    check("%s: exits 0 and writes a PNG in %.1f s" % (name, secs), ok,
          "status %s; %s\n%s" % (proc.returncode, " ".join(cmd), (out + err)[-1500:]))
    if not ok:
        return
    t0 = time.time()
    try:
        w, h, ch, rows = read_png(shot)
    except ValueError as e:
        check("%s: the picture decodes" % name, False, str(e))
        return
    print("     (decoded %dx%d, %d channels, in %.1f s)" % (w, h, ch, time.time() - t0))
    check("%s: %dx%d, the window's size" % (name, w, h), (w, h) == (SHOT_W, SHOT_H))
    # The fixed real_B, shown in every samples row at img.v's width with image-rendering
    # pixelated: its commonest colour covers scale^2 screen pixels per image pixel.
    rw, rh, rch, rrows = read_png(os.path.join(run, "samples", "real_B.png"))
    rc = collections.Counter()
    for r in rrows:
        rc.update(zip(r[0::rch], r[1::rch], r[2::rch]))
    top, n = rc.most_common(1)[0]
    colours, ys = collections.Counter(), []      # ys: the screen rows where top is painted
    for y, r in enumerate(rows):
        px = list(zip(r[0::ch], r[1::ch], r[2::ch]))
        colours.update(px)
        if top in px:
            ys.append(y)
    bg, nbg = colours.most_common(1)[0]
    painted = 1.0 - nbg / (w * h)
    check("%s: more than 500 distinct colours (%d)" % (name, len(colours)), len(colours) > 500)
    check("%s: a white background with more than 10 %% of the pixels painted (%.1f %%)" %
          (name, 100.0 * painted), bg == (255, 255, 255) and painted > 0.10, str(bg))
    with open(page, encoding="utf-8") as f:
        src = f.read()
    svg = re.search(r"<svg id='losses'.*?</svg>", src, re.S)
    legend = re.findall(r"<line [^>]*stroke='#([0-9a-f]{6})' stroke-width='3'",
                        svg.group(0) if svg else "")
    counts = {c: colours[tuple(bytes.fromhex(c))] for c in legend}
    check("%s: every loss colour of the legend painted, at least 100 pixels each (%s)" %
          (name, ", ".join("#%s %d" % kv for kv in counts.items())),
          legend and all(k >= 100 for k in counts.values()))
    width = re.search(r"img\.v\{width:(\d+)px", src)
    scale = int(width.group(1)) // rw if width else 0
    nrows = len(re.findall(r"<tr class='sample'>", src))
    want = nrows * n * scale * scale
    bands = sum(1 for i, y in enumerate(ys) if i == 0 or y != ys[i - 1] + 1)
    check("%s: the samples are painted: real_B's commonest colour #%s on %d pixels "
          "(%d rows x %d x %d^2: %d), in %d bands of rows, down to row %d (the first screen "
          "ends at %d)" % (name, bytes(top).hex(), colours[top], nrows, n, scale, want, bands,
                           ys[-1] if ys else -1, FIRST_SCREEN),
          nrows >= 1 and scale >= 2 and colours[top] >= want and bands == nrows and
          ys and ys[-1] >= FIRST_SCREEN)


with tempfile.TemporaryDirectory() as tmp:
    cfg = os.path.join(tmp, "page.cfg")
    data = os.path.join(tmp, "data")
    with open(cfg, "w") as f:
        f.write(CONFIG % {"data": data})
    decoder_checks(tmp)

    # ---- 1. structure -----------------------------------------------------------------
    run = os.path.join(tmp, "enco")
    p = train(cfg, run)
    # EnCo's identity term is on in the first epoch (train.stop_idt_epochs; 20 iterations).
    structure("enco", run, p, ["loss_D", "loss_G_GAN", "loss_EnCo", "loss_idt", "loss_G"],
              {10, 20}, [20, 40])
    t0 = time.time()
    screenshot("enco", run, tmp)
    print("     (the screenshot and its checks took %.1f s)" % (time.time() - t0))
    run = os.path.join(tmp, "cut")
    p = train(cfg, run, *CUT, "--set", "run.eval_every=0")
    structure("cut", run, p, ["loss_D", "loss_G_GAN", "loss_NCE", "loss_NCE_Y", "loss_G"],
              {10, 20, 30, 40}, [40])

    # ---- 2. no ground truth ---------------------------------------------------------------
    bare = os.path.join(tmp, "bare")
    for d in ("trainA", "trainB"):
        shutil.copytree(os.path.join(data, d), os.path.join(bare, d))
    run = os.path.join(tmp, "nogt")
    p = train(cfg, run, "--set", 'data.root="%s"' % bare, "--set", "data.synthetic=false",
              "--set", "run.max_iterations=10")
    src, pg = parse(os.path.join(run, "index.html"))
    check("no ground truth: done, complete, no scores, no evals.jsonl or eval.json",
          p.returncode == 0 and complete(src, pg) and state_of(pg) == "done" and
          "scores-psnr" not in pg.svg_ids and
          not os.path.exists(os.path.join(run, "evals.jsonl")) and
          not os.path.exists(os.path.join(run, "eval.json")), str(pg.errors[:3]))
    check("no ground truth: the fixed sample comes from trainA/trainB",
          "trainA/" in src and len(pg.rows) == 1)

    # ---- 3. SIGKILL at random moments -------------------------------------------------------
    seed = int(os.environ.get("ENCO_TEST_SEED", time.time_ns() % 100000))
    rng = random.Random(seed)
    print("SIGKILL delays drawn with seed %d (ENCO_TEST_SEED)" % seed)
    for k in range(5):
        run = os.path.join(tmp, "kill%d" % k)
        proc = subprocess.Popen([BIN, "train", "-c", cfg, "--dir", run, "--set",
                                 "run.print_every=1", "--set", "run.sample_every=1", "--set",
                                 "run.eval_every=3", "--set", "train.n_epochs=1000",
                                 "--set", "run.max_iterations=0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        page = os.path.join(run, "index.html")
        t0 = time.time()
        while not os.path.exists(page) and time.time() - t0 < 300 and proc.poll() is None:
            time.sleep(0.01)
        delay = rng.uniform(0.0, 2.0)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        src, pg = parse(page)
        rows = len(pg.rows)
        srcs = [c[2] for r in pg.rows for c in r if c[0] == "img"]
        check("SIGKILL after %.2f s: the page is complete HTML, state running, %d sample rows "
              "whose images are complete PNGs" % (delay, rows),
              complete(src, pg) and state_of(pg) == "running" and
              all(is_png(os.path.join(run, s)) for s in srcs),
              "%s, state %r" % (pg.errors[:3], state_of(pg)))

    # ---- 4. stopped and failed ----------------------------------------------------------------
    run = os.path.join(tmp, "stop")
    proc = subprocess.Popen([BIN, "train", "-c", cfg, "--dir", run, "--set",
                             "train.n_epochs=1000", "--set", "run.max_iterations=0",
                             "--set", "run.print_every=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    while line and not line.startswith("epoch"):
        line = proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    src, pg = parse(os.path.join(run, "index.html"))
    check("SIGINT: status 130, the page says stopped", proc.returncode == 130 and
          complete(src, pg) and state_of(pg) == "stopped", "%s %r" % (proc.returncode,
                                                                      state_of(pg)))

    # A sample that cannot be written: samples/iter_00000010_fake_B.png is a non-empty folder.
    run = os.path.join(tmp, "fail")
    block = os.path.join(run, "samples", "iter_00000010_fake_B.png")
    os.makedirs(block)
    open(os.path.join(block, "keep"), "w").close()
    p = train(cfg, run)
    src, pg = parse(os.path.join(run, "index.html"))
    msg = "".join(pg.text.get("message", [""]))
    check("a failed run: non-zero exit, the page says failed with the message",
          p.returncode != 0 and complete(src, pg) and state_of(pg) == "failed" and
          "iter_00000010_fake_B.png" in msg and msg.split(" [")[0] in p.stderr,
          "%s %r %r" % (p.returncode, state_of(pg), msg))

finish()
