#!/usr/bin/env python3
"""The product end to end on the synthetic task (enco-cl train / eval /
translate), as a user runs it:

1. Learning, on the device ENCO_DEVICE selects: 3 seeds, each trained with
   EnCo on and off (lambda_NCE = 0, which in the reference also drops the
   identity term). On the medians over seeds, G(A) must beat the identity
   baseline and the best constant image fitted on the test pairs by stated
   PSNR margins, beat unpaired colour transfer (per-channel histogram
   matching of A to B, fitted on the training folders) in PSNR and shape IoU,
   and clear an absolute shape-IoU floor that identity and the constant image
   cannot reach, and EnCo on must keep the content (gradient correlation with
   the true B) better than EnCo off. A missing eval.json or
   score is a failure.
2. The run folder: index.html, sample grids, losses.jsonl, config.cfg, the
   checkpoint, eval.json.
3. Resume: stopping after 20 iterations and resuming to 40 gives the same
   checkpoint bit for bit as 40 iterations in one go; so does Ctrl-C
   (SIGINT) in the middle of a run followed by --resume.
4. translate with the trained checkpoint writes one PNG per input.
5. eval on a folder without trainA/trainB: the histogram-matching row is n/a
   with the reason, the rest is scored.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import testlib
from testlib import check, finish

BIN = sys.argv[1]

# Learning claims, against the baselines of eval.json (see enco-cl eval
# --help): A itself, histogram matching fitted on the training folders, and
# the constant image fitted on the 16 test B: what a generator that ignores
# its input, or only recolours A without pairs, could score. Measured with
# this file's config (600 iterations at 32x32, lr 5e-4; seeds 1, 2, 3),
# median (range), the same again when histogram matching was added:
#                   PSNR dB              shape IoU            content
#   PoCL  EnCo on   14.85 (12.38-15.37)  0.633 (0.538-0.655)  0.591 (0.357-0.669)
#         EnCo off  11.24 (10.30-11.69)  0.295 (0.244-0.384)  0.366 (0.213-0.443)
#   Intel EnCo on   14.51 (13.94-15.44)  0.571 (0.512-0.628)  0.574 (0.380-0.586)
#         EnCo off  11.14 (10.03-11.26)  0.260 (0.250-0.266)  0.257 (0.215-0.339)
# Single runs spread widely (seed 3 on PoCL is below the constant image), so
# the claims hold on medians. At the lr of 2e-4 used before, seed 1 gave
# 14.69 dB and IoU 0.62; 2400 iterations did not do better (13.12 dB).
# The 6 runs take about 20-50 s each on 2 CPU cores (more under load).
SEEDS = (1, 2, 3)
IDENTITY_MARGIN_DB = 6.0  # median PSNR of G(A) over A itself (2.94 dB)
CONSTANT_MARGIN_DB = 1.0  # ... over the best constant image (the per-pixel mean of B, 12.74 dB)
IOU_FLOOR = 0.50          # median shape IoU of G(A); identity scores 0.24, the constant image 0.35
# The honest unpaired colour baseline: per-channel histogram matching of A to
# B fitted on trainA and trainB (150 images each; no test pairs), applied to
# each test A: 11.73 dB, shape IoU 0.358 (SSIM 0.419, content 0.445; host
# code, the same on every device). G(A)'s medians beat it by 3.12 dB and
# 0.275 IoU on PoCL, 2.78 dB and 0.213 on Intel; every EnCo-on seed is above
# it (lowest: PoCL seed 3, 12.38 dB, IoU 0.538). EnCo off does not beat it in
# PSNR (medians 11.24 and 11.14 dB). It scores low because B's navy
# background holds most pixels of every channel, so each channel's quantile
# map sends A's background and many shape values with it to the navy value,
# and a monotone map cannot reorder the shape colours.
HISTMATCH_MARGIN_DB = 1.5      # median PSNR of G(A) over histogram matching
HISTMATCH_IOU_MARGIN = 0.10    # median shape IoU of G(A) over histogram matching
CONTENT_MARGIN = 0.10     # median content, EnCo on minus EnCo off


CONFIG = """
model = { ngf = 16; ndf = 16; n_blocks = 4; nce_layers = [3, 7, 13, 14, 19, 23]; netF_nc = 64; };
train = { num_patches = 64; n_epochs = 2; n_epochs_decay = 2; lr_G = 0.0005; lr_F = 0.0005;
          lr_D = 0.0005; seed = 1; };
data = { root = "%(data)s"; synthetic = true; synth_train = 150; synth_test = 16;
         preprocess = "crop"; load_size = 32; crop_size = 32; threads = 1; };
run = { dir = "%(run)s"; print_every = 50; sample_every = 150; save_every = 0; };
"""


def train(cfg, *extra, expect=0):
    t0 = time.time()
    p = subprocess.run([BIN, "train", "-c", cfg, *extra], capture_output=True, text=True,
                       timeout=1800)
    sys.stdout.write(p.stdout[-1500:])
    if p.returncode != expect:
        sys.stdout.write(p.stderr[-3000:])
    print("  (%.0f s)" % (time.time() - t0))
    return p


def tensors(path):
    """name -> raw bytes of a safetensors file (no numpy needed)."""
    return {k: raw for k, (_, _, raw) in testlib.tensors(path).items()}


def same_weights(a, b):
    ta, tb = tensors(a), tensors(b)
    keys = [k for k in ta if k.startswith(("net", "adam_", "state."))]
    diff = [k for k in keys if ta[k] != tb.get(k)]
    return len(keys) > 100 and not diff, (len(keys), diff[:3])


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "data")
    cfg = os.path.join(tmp, "learn.cfg")
    with open(cfg, "w") as f:
        f.write(CONFIG % {"data": data, "run": os.path.join(tmp, "run")})

    # ---- 1. learning ---------------------------------------------------------
    KEYS = ("psnr", "ssim", "content", "iou")
    BASELINES = ("identity", "constant", "remap", "lut", "histmatch")

    def scores_of(run, what):
        """eval.json of a run, or None after a FAIL: every score must be there."""
        try:
            with open(os.path.join(run, "eval.json")) as f:
                e = json.load(f)
        except (OSError, ValueError) as ex:
            check("eval.json of " + what, False, str(ex))
            return None
        need = list(KEYS) + [b + "_" + k for b in BASELINES for k in KEYS]
        bad = [k for k in need if not isinstance(e.get(k), (int, float))]
        check("eval.json of %s has every score" % what, not bad, "missing or null: %s" % bad)
        return None if bad else e

    runs = {}
    for seed in SEEDS:
        for nce in ("2", "0"):
            run = os.path.join(tmp, "nce%s_seed%d" % (nce, seed))
            what = "lambda_NCE=%s seed %d" % (nce, seed)
            p = train(cfg, "--set", "train.lambda_NCE=" + nce, "--set", "train.seed=%d" % seed,
                      "--set", 'run.dir="%s"' % run)
            check("train with %s exits 0" % what, p.returncode == 0, p.stderr[-500:])
            runs[nce, seed] = scores_of(run, what)

    def median(xs):
        xs = sorted(xs)
        n = len(xs)
        return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])

    on = [runs["2", s] for s in SEEDS]
    off = [runs["0", s] for s in SEEDS]
    check("every run has its scores", all(on) and all(off))
    if all(on) and all(off):
        for name, rs in (("EnCo on ", on), ("EnCo off", off)):
            for k in KEYS:
                v = [r[k] for r in rs]
                print("%s %-7s median %8.3f  (seeds %s: %s)" % (name, k, median(v), SEEDS,
                      ", ".join("%.3f" % x for x in v)))
        b = on[0]  # the baselines depend only on the test pairs: the same in every run
        for base in BASELINES:
            print("baseline %-8s PSNR %6.2f dB  SSIM %.3f  content %.3f  IoU %.3f" %
                  (base, b[base + "_psnr"], b[base + "_ssim"], b[base + "_content"],
                   b[base + "_iou"]))
        check("baselines are the same in every run (fitted on the same pairs)",
              all(r[x + "_" + k] == b[x + "_" + k] for r in on + off for x in BASELINES
                  for k in KEYS))
        psnr = median([r["psnr"] for r in on])
        iou = median([r["iou"] for r in on])
        check("median PSNR beats the identity baseline by %.1f dB" % IDENTITY_MARGIN_DB,
              psnr >= b["identity_psnr"] + IDENTITY_MARGIN_DB,
              "%.2f vs %.2f" % (psnr, b["identity_psnr"]))
        check("median PSNR beats the best constant image by %.1f dB" % CONSTANT_MARGIN_DB,
              psnr >= b["constant_psnr"] + CONSTANT_MARGIN_DB,
              "%.2f vs %.2f" % (psnr, b["constant_psnr"]))
        check("beats unpaired colour transfer (histogram matching) by %.1f dB" %
              HISTMATCH_MARGIN_DB, psnr >= b["histmatch_psnr"] + HISTMATCH_MARGIN_DB,
              "%.2f vs %.2f" % (psnr, b["histmatch_psnr"]))
        check("beats unpaired colour transfer (histogram matching) by %.2f on shape IoU" %
              HISTMATCH_IOU_MARGIN, iou >= b["histmatch_iou"] + HISTMATCH_IOU_MARGIN,
              "%.3f vs %.3f" % (iou, b["histmatch_iou"]))
        check("shape IoU floor %.2f is out of reach of identity and the constant image" %
              IOU_FLOOR, max(b["identity_iou"], b["constant_iou"]) < IOU_FLOOR - 0.05,
              "identity %.3f, constant %.3f" % (b["identity_iou"], b["constant_iou"]))
        check("median shape IoU of G(A) >= %.2f" % IOU_FLOOR, iou >= IOU_FLOOR, "%.3f" % iou)
        c_on, c_off = median([r["content"] for r in on]), median([r["content"] for r in off])
        check("EnCo off keeps content worse by %.2f (medians over seeds %s)" %
              (CONTENT_MARGIN, SEEDS), c_on >= c_off + CONTENT_MARGIN,
              "content on %.3f, off %.3f" % (c_on, c_off))
        # Not claimed: beating the per-channel colour remaps of A (fitted on
        # the test pairs, i.e. with the supervision an unpaired method lacks:
        # oracles; histogram matching above is the unpaired colour baseline).
        # The lookup table (24.69 dB) nearly solves the task, because each
        # channel of A alone tells the 6 colour classes apart; only the rims
        # are beyond it. The affine one (17.80 dB, shape IoU 0.99) is out of
        # reach of this budget. Why, measured on the 16 test pairs (PoCL, seed
        # 1; Intel alike): G is underfit. It paints every class the same grey
        # near the mean of B's palette (class means 125-195 per channel where
        # the true colours are 32-250), draws blurred blobs that merge touching
        # shapes, and tints the background (mean (30, 33, 59) for (22, 26,
        # 48)); the error splits background 24 %, interiors 25 %, rims 22 %,
        # edges 30 %. It cannot yet even copy B: G(B) scores 13.5 dB against B
        # (16.4 dB with the identity term kept on and the GAN off). None of
        # iterations (600 to 2400), lr 2e-4 to 2e-3 (G, D apart too), batch 4,
        # ngf or ndf 32, 2 or 4 blocks, n_layers_D 2, num_patches 256, the
        # identity term on to the end or at weight 2 or off, flip
        # equivariance, random sampling, 48x48 measured above 15.7 dB on seed
        # 1. Trained harder (lr 1e-3 for 1200 iterations, batch 4) the shapes
        # take B colours but the wrong ones, one or two for all 6 classes (12.7 and
        # 14.1 dB): no unpaired loss tells which B colour belongs to which
        # class. A G perfect but for such a permutation would score no more
        # than about 18.5 dB (an upper bound, mixed edge pixels counted as
        # exact; median over the 265 permutations that move all 6 classes,
        # 21 % of which stay below 17.80), so a margin over the affine remap
        # would not be a property of the method. The gaps are printed so that
        # a change of budget shows them.
        print("G(A) against histogram matching: %+.2f dB PSNR, %+.3f shape IoU (medians)" %
              (psnr - b["histmatch_psnr"], iou - b["histmatch_iou"]))
        print("not claimed: G(A) %+.2f dB against the affine remap, %+.2f dB against the lookup "
              "table" % (psnr - b["remap_psnr"], psnr - b["lut_psnr"]))

    # ---- 1b. the baselines of the paper's comparison learn too -----------------
    # CUT and FastCUT with their own defaults (lr 2e-4, lambda_NCE 1 / 10,
    # NCE_Y on / off, flip equivariance off / on) on the same task and budget;
    # nce_layers are the defaults' encoder layers of this 4-block G (input,
    # the two downsampling convs, the 1st and 3rd block). Measured, PSNR dB
    # for seeds 1, 2, 3 (identity 2.94):
    #   PoCL  CUT      11.04  10.85  11.42   median +8.10 over identity
    #         FastCUT   7.57   7.60   8.44   median +4.66
    # FastCUT keeps the input's colours: with lambda_NCE = 10 the content
    # term outweighs the GAN on this task (D ends near 0 loss, G_GAN near 1).
    # Neither 2400 iterations, lr 1e-4 to 1e-3, ndf 32, n_layers_D 2, 256
    # patches, flip equivariance off nor leaving layer 0 out reached +6 dB
    # (best 8.44 dB); the claim for FastCUT is what it does reach.
    FAMILY_MARGIN_DB = {"cut": 6.0, "fastcut": 4.0}
    for fam in ("cut", "fastcut"):
        scores = []
        for seed in SEEDS:
            frun = os.path.join(tmp, "%s_seed%d" % (fam, seed))
            p = train(cfg, "--set", 'model.family="%s"' % fam,
                      "--set", "%s.nce_layers=[0,4,8,12,14]" % fam,
                      "--set", "%s.num_patches=64" % fam, "--set", "%s.netF_nc=64" % fam,
                      "--set", "train.seed=%d" % seed, "--set", 'run.dir="%s"' % frun)
            check("train %s seed %d exits 0" % (fam, seed), p.returncode == 0, p.stderr[-500:])
            scores.append(scores_of(frun, "%s seed %d" % (fam, seed)))
        if all(scores):
            psnr = median([r["psnr"] for r in scores])
            print("%s PSNR median %.2f dB (seeds %s: %s), identity %.2f" %
                  (fam, psnr, SEEDS, ", ".join("%.2f" % r["psnr"] for r in scores),
                   scores[0]["identity_psnr"]))
            check("%s: median PSNR beats the identity baseline by %.1f dB" %
                  (fam, FAMILY_MARGIN_DB[fam]),
                  psnr >= scores[0]["identity_psnr"] + FAMILY_MARGIN_DB[fam],
                  "%.2f vs %.2f" % (psnr, scores[0]["identity_psnr"]))
        with open(os.path.join(tmp, "%s_seed1" % fam, "losses.jsonl")) as f:
            last = json.loads(f.readlines()[-1])
        want = ["loss_D", "loss_G_GAN", "loss_NCE"] + (["loss_NCE_Y"] if fam == "cut" else []) + \
            ["loss_G"]
        check("%s: losses.jsonl logs the family's losses %s" % (fam, want),
              [k for k in last if k.startswith("loss_")] == want, str(last))

    # ---- 1c. the two-generator families, both directions --------------------
    # CycleGAN and DCLGAN with their own defaults (lr 2e-4; CycleGAN: lambda_A =
    # lambda_B = 10, identity 0.5, a pool of 50, the reference's GPU nets;
    # DCLGAN: lambda_NCE 2 on the encoder layers of this 4-block G that its
    # defaults take on 9 blocks (the two down-sampling convs, the 1st and 3rd
    # block), F at lr 1e-3) on the same task, 300 iterations; G_A judged on
    # testA -> testB, G_B on testB -> testA (eval --direction BtoA). Measured,
    # PSNR dB for seeds 1, 2, 3 (identity 2.94 either way), PoCL:
    #   cyclegan  A to B   8.90  14.10  13.65   median +10.71 over identity
    #             B to A  12.23  15.05  15.17   median +12.11
    #   dclgan    A to B  12.01  15.68   9.13   median  +9.07
    #             B to A  14.20  14.05  10.53   median +11.11
    # (a seed that has not yet found the shapes at 300 iterations stays near
    # the constant image: cyclegan seed 1, dclgan seed 3).
    TWO_WAY = {"cyclegan": [], "dclgan": ["--set", "dclgan.nce_layers=[4,8,12,14]",
                                          "--set", "dclgan.num_patches=64",
                                          "--set", "dclgan.netF_nc=64"]}
    TWO_WAY_LOSSES = {
        "cyclegan": ["loss_D_A", "loss_G_A", "loss_cycle_A", "loss_idt_A", "loss_D_B",
                     "loss_G_B", "loss_cycle_B", "loss_idt_B", "loss_G"],
        "dclgan": ["loss_D_A", "loss_D_B", "loss_G_A", "loss_G_B", "loss_NCE1", "loss_NCE2",
                   "loss_idt_A", "loss_idt_B", "loss_G"]}
    for fam, extra in TWO_WAY.items():
        scores = {"AtoB": [], "BtoA": []}
        for seed in SEEDS:
            crun = os.path.join(tmp, "%s_seed%d" % (fam, seed))
            p = train(cfg, "--set", 'model.family="%s"' % fam, *extra,
                      "--set", "run.max_iterations=300", "--set", "train.seed=%d" % seed,
                      "--set", 'run.dir="%s"' % crun)
            check("train %s seed %d exits 0" % (fam, seed), p.returncode == 0, p.stderr[-500:])
            scores["AtoB"].append(scores_of(crun, "%s seed %d" % (fam, seed)))
            p = subprocess.run([BIN, "eval", "-m", os.path.join(crun, "latest.safetensors"),
                                "--data", data, "--direction", "BtoA"],
                               capture_output=True, text=True, timeout=600)
            rows = {}
            for line in p.stdout.splitlines():
                t = line.strip()
                if t.startswith("G_B(B) vs true A") or t.startswith("identity: B itself"):
                    rows["model" if t.startswith("G_B") else "identity"] = float(line.split()[-4])
            check("eval --direction BtoA of %s seed %d scores G_B and identity" % (fam, seed),
                  p.returncode == 0 and len(rows) == 2, p.stdout[-800:] + p.stderr[-300:])
            scores["BtoA"].append(rows if len(rows) == 2 else None)
        if all(scores["AtoB"]):
            a = [r["psnr"] for r in scores["AtoB"]]
            ident = scores["AtoB"][0]["identity_psnr"]
            print("%s A to B PSNR median %.2f dB (seeds %s), identity %.2f" %
                  (fam, median(a), ", ".join("%.2f" % x for x in a), ident))
            check("%s A to B: median PSNR beats the identity baseline by 6 dB" % fam,
                  median(a) >= ident + 6.0, "%.2f vs %.2f" % (median(a), ident))
        if all(scores["BtoA"]):
            b = [r["model"] for r in scores["BtoA"]]
            ident = scores["BtoA"][0]["identity"]
            print("%s B to A PSNR median %.2f dB (seeds %s), identity %.2f" %
                  (fam, median(b), ", ".join("%.2f" % x for x in b), ident))
            check("%s B to A: median PSNR beats the identity baseline by 6 dB" % fam,
                  median(b) >= ident + 6.0, "%.2f vs %.2f" % (median(b), ident))
        crun = os.path.join(tmp, "%s_seed1" % fam)
        with open(os.path.join(crun, "losses.jsonl")) as f:
            last = json.loads(f.readlines()[-1])
        want = TWO_WAY_LOSSES[fam]
        check("%s: losses.jsonl logs the family's losses %s" % (fam, want),
              [k for k in last if k.startswith("loss_")] == want, str(last))
        html = open(os.path.join(crun, "index.html")).read()
        check("%s: the run page's sample rows show both directions" % fam,
              all("alt='%s'" % v in html for v in ("real_A", "fake_B", "rec_A", "real_B",
                                                     "fake_A", "rec_B")) and
              os.path.isfile(os.path.join(crun, "samples", "iter_00000300_rec_B.png")),
              html[-600:])

    # Resume with a non-empty pool: the pools are part of the checkpoint, so
    # 20 + 20 iterations equal 40 bit for bit (a pool of 3 fills in 3
    # iterations; its swaps and their draws act in the rest).
    cquick = ["--set", 'model.family="cyclegan"', "--set", "model.ngf=4", "--set", "model.ndf=4",
              "--set", "cyclegan.pool_size=3", "--set", "run.print_every=10"]
    cfull, cpart = os.path.join(tmp, "cg_full"), os.path.join(tmp, "cg_part")
    train(cfg, *cquick, "--set", 'run.dir="%s"' % cfull, "--set", "run.max_iterations=40")
    train(cfg, *cquick, "--set", 'run.dir="%s"' % cpart, "--set", "run.max_iterations=20")
    p = train(cfg, *cquick, "--set", 'run.dir="%s"' % cpart, "--set", "run.max_iterations=40",
              "--resume")
    ok, detail = same_weights(os.path.join(cfull, "latest.safetensors"),
                              os.path.join(cpart, "latest.safetensors"))
    pools = [k for k in tensors(os.path.join(cpart, "latest.safetensors"))
             if k.startswith("state.pool.")]
    check("cyclegan: a resumed run (full pools in the checkpoint) is bit-identical to an "
          "uninterrupted one", p.returncode == 0 and ok and
          sorted(pools) == ["state.pool.A", "state.pool.B"], "%s %s" % (detail, pools))

    # ---- 2. the run folder -----------------------------------------------------
    run = os.path.join(tmp, "nce2_seed1")
    for leaf in ("index.html", "samples/latest.png", "samples/iter_00000600.png",
                 "losses.jsonl", "config.cfg", "latest.safetensors", "eval.json"):
        check("run folder has " + leaf, os.path.isfile(os.path.join(run, leaf)))
    if os.path.isfile(os.path.join(run, "losses.jsonl")):
        with open(os.path.join(run, "losses.jsonl")) as f:
            lines = [json.loads(x) for x in f]
        check("losses.jsonl has one entry per 50 iterations",
              [x["iter"] for x in lines] == list(range(50, 601, 50)), str(lines[-1:]))
    if os.path.isfile(os.path.join(run, "index.html")):
        html = open(os.path.join(run, "index.html")).read()
        check("index.html draws loss curves and shows samples",
              "<svg" in html and "polyline" in html and "samples/latest.png" in html)

    # ---- 3. resume ---------------------------------------------------------------
    quick = ["--set", "model.ngf=4", "--set", "model.ndf=4", "--set", "model.netF_nc=16",
             "--set", "train.num_patches=16", "--set", "run.print_every=10"]
    full = os.path.join(tmp, "full")
    part = os.path.join(tmp, "part")
    train(cfg, *quick, "--set", 'run.dir="%s"' % full, "--set", "run.max_iterations=40")
    train(cfg, *quick, "--set", 'run.dir="%s"' % part, "--set", "run.max_iterations=20")
    p = train(cfg, *quick, "--set", 'run.dir="%s"' % part, "--set", "run.max_iterations=40",
              "--resume")
    check("--resume exits 0", p.returncode == 0, p.stderr[-500:])
    ok, detail = same_weights(os.path.join(full, "latest.safetensors"),
                              os.path.join(part, "latest.safetensors"))
    check("resumed run is bit-identical to an uninterrupted one", ok, str(detail))

    # Ctrl-C: SIGINT once training has started, then --resume to the end.
    intr = os.path.join(tmp, "intr")
    proc = subprocess.Popen([BIN, "train", "-c", cfg, *quick, "--set", 'run.dir="%s"' % intr,
                             "--set", "run.max_iterations=40"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    while first and not first.startswith("epoch"):
        first = proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    check("SIGINT stops with status 130 after saving", proc.returncode == 130 and
          "saved" in err and os.path.isfile(os.path.join(intr, "latest.safetensors")),
          "status %s: %s" % (proc.returncode, err[-400:]))
    p = train(cfg, *quick, "--set", 'run.dir="%s"' % intr, "--set", "run.max_iterations=40",
              "--resume")
    ok, detail = same_weights(os.path.join(full, "latest.safetensors"),
                              os.path.join(intr, "latest.safetensors"))
    check("interrupted and resumed run is bit-identical", p.returncode == 0 and ok, str(detail))

    # SIGTERM (a job scheduler's stop) saves and stops the same way.
    term = os.path.join(tmp, "term")
    proc = subprocess.Popen([BIN, "train", "-c", cfg, *quick, "--set", 'run.dir="%s"' % term,
                             "--set", "run.max_iterations=40"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    while line and not line.startswith("epoch"):
        line = proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=600)
    check("SIGTERM stops with status 130 after saving", proc.returncode == 130 and
          os.path.isfile(os.path.join(term, "latest.safetensors")),
          "status %s: %s" % (proc.returncode, err[-400:]))

    # ---- 4. translate --------------------------------------------------------------
    outdir = os.path.join(tmp, "translated")
    p = subprocess.run([BIN, "translate", "-m", os.path.join(run, "latest.safetensors"),
                        "-i", os.path.join(data, "testA"), "-o", outdir],
                       capture_output=True, text=True, timeout=600)
    made = sorted(os.listdir(outdir)) if os.path.isdir(outdir) else []
    check("translate writes one PNG per test image", p.returncode == 0 and
          made == sorted(os.listdir(os.path.join(data, "testA"))), p.stderr[-500:])

    # ---- 5. eval without the training folders --------------------------------------
    # Histogram matching is fitted on trainA/trainB: without them its row is
    # n/a with the reason in one line, and eval still scores everything else.
    bare = os.path.join(tmp, "bare")
    os.mkdir(bare)
    for d in ("testA", "testB"):
        os.symlink(os.path.join(data, d), os.path.join(bare, d))
    p = subprocess.run([BIN, "eval", "-m", os.path.join(run, "latest.safetensors"),
                        "--data", bare], capture_output=True, text=True, timeout=600)
    hm = [x for x in p.stdout.splitlines() if x.strip().startswith("histogram matching")]
    check("eval without trainA/trainB: exit 0, histogram matching n/a and why, other rows scored",
          p.returncode == 0 and len(hm) == 2 and hm[0].split()[-4:] == ["n/a"] * 4 and
          "no %s/trainA folder" % bare in hm[1] and
          any("affine remap of A" in x and "n/a" not in x for x in p.stdout.splitlines()),
          p.stdout[-1200:] + p.stderr[-400:])

finish("{passed} passed, {failed} failed")
