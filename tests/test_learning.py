#!/usr/bin/env python3
"""The product end to end on the synthetic task (enco-cl train / eval /
translate), as a user runs it:

1. Learning: a short run must beat the identity baseline on PSNR against the
   true B by a clear margin, and a run with the EnCo loss off (lambda_NCE = 0,
   which in the reference also drops the identity term) must keep the content
   worse (gradient correlation with the true B).
2. The run folder: index.html, sample grids, losses.jsonl, config.cfg, the
   checkpoint, eval.json.
3. Resume: stopping after 20 iterations and resuming to 40 gives the same
   checkpoint bit for bit as 40 iterations in one go; so does Ctrl-C
   (SIGINT) in the middle of a run followed by --resume.
4. translate with the trained checkpoint writes one PNG per input.
"""
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1]
PSNR_MARGIN_DB = 6.0      # G(A) must beat A itself by this much against the true B
CONTENT_MARGIN = 0.10     # EnCo on must keep content better than EnCo off by this much

checks = failures = 0


def check(name, cond, detail=""):
    global checks, failures
    checks += 1
    if cond:
        print("ok   " + name)
    else:
        failures += 1
        print("FAIL " + name + (": " + detail if detail else ""))


CONFIG = """
model = { ngf = 16; ndf = 16; n_blocks = 4; nce_layers = [3, 7, 13, 14, 19, 23]; netF_nc = 64; };
train = { num_patches = 64; n_epochs = 2; n_epochs_decay = 2; lr_G = 0.0002; lr_F = 0.0002;
          lr_D = 0.0002; seed = 1; };
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
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = data[base + b:base + e]
    return out


def same_weights(a, b):
    ta, tb = tensors(a), tensors(b)
    keys = [k for k in ta if k.startswith(("netG.", "netD.", "netF.", "adam_", "state."))]
    diff = [k for k in keys if ta[k] != tb.get(k)]
    return len(keys) > 100 and not diff, (len(keys), diff[:3])


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "data")
    cfg = os.path.join(tmp, "learn.cfg")
    with open(cfg, "w") as f:
        f.write(CONFIG % {"data": data, "run": os.path.join(tmp, "run")})

    # ---- 1. learning ---------------------------------------------------------
    scores = {}
    for nce in ("2", "0"):
        run = os.path.join(tmp, "nce" + nce)
        p = train(cfg, "--set", "train.lambda_NCE=" + nce, "--set", 'run.dir="%s"' % run)
        check("train with lambda_NCE=%s exits 0" % nce, p.returncode == 0, p.stderr[-500:])
        try:
            with open(os.path.join(run, "eval.json")) as f:
                scores[nce] = json.load(f)
        except (OSError, ValueError) as e:
            scores[nce] = None
            check("eval.json of lambda_NCE=%s" % nce, False, str(e))
    on, off = scores.get("2"), scores.get("0")
    if on and off:
        print("EnCo on : PSNR %.2f dB (identity %.2f), SSIM %.3f, content %.3f" %
              (on["psnr"], on["identity_psnr"], on["ssim"], on["content"]))
        print("EnCo off: PSNR %.2f dB, SSIM %.3f, content %.3f" %
              (off["psnr"], off["ssim"], off["content"]))
        check("beats the identity baseline by %.0f dB PSNR" % PSNR_MARGIN_DB,
              on["psnr"] >= on["identity_psnr"] + PSNR_MARGIN_DB,
              "%.2f vs %.2f" % (on["psnr"], on["identity_psnr"]))
        check("EnCo off keeps content worse by %.2f" % CONTENT_MARGIN,
              on["content"] >= off["content"] + CONTENT_MARGIN,
              "content on %.3f, off %.3f" % (on["content"], off["content"]))

    # ---- 2. the run folder -----------------------------------------------------
    run = os.path.join(tmp, "nce2")
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

print("%d passed, %d failed" % (checks - failures, failures))
sys.exit(1 if failures else 0)
