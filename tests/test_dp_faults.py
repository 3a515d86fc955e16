#!/usr/bin/env python3
"""Data-parallel training under mpirun (issue 17): devices, resume and faults.

- --device: one entry per process of the host; a list of another length, a device that does
  not exist on one process, or several devices for a single process are refused at once on
  every process, naming why.
- --resume: the same number of processes continues bit for bit (EnCo with LayerNorm heads);
  another number of processes continues on the checkpoint's global batch (2 x batch 1
  resumed by 1 x batch 2, and back), at its iteration, within the data-parallel tolerance of
  the uninterrupted run; another global batch is refused, naming the batch size that keeps it.
- Faults: a process whose device fails (ENCO_FAULT_AFTER_LAUNCHES on that process alone)
  ends the job within seconds with its error, the last checkpoint loads, and --resume takes
  the folder over and finishes; a process killed ends the job too. SIGTERM to mpirun: every
  process stops at the same iteration, the first saves once, and --resume continues bit for
  bit.
Runs on the CPU device; both processes share it.

usage: test_dp_faults.py ENCO_CL MPIRUN
"""
import json
import math
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time

import mpitests
from mpitests import MPI_ENV
from testlib import check, finish, floats, tensors

BIN, MPIRUN = sys.argv[1], sys.argv[2]
MPI_ENV.pop("ENCO_FAULT_AFTER_LAUNCHES", None)


def train(cfg, nproc, *extra, timeout=300, env=None):
    return mpitests.train(BIN, MPIRUN, cfg, nproc, *extra, timeout=timeout, env=env, quiet=True)


def show(p):
    sys.stdout.write(p.stdout[-1200:] + p.stderr[-2000:])


def i64(t, k):
    return struct.unpack("<q", t[k][2])[0]


def losses(run):
    with open(os.path.join(run, "losses.jsonl")) as f:
        return [json.loads(x) for x in f]


def finite(lines):
    return all(math.isfinite(v) for x in lines for k, v in x.items() if k.startswith("loss_"))


def dp_worst(ta, tb, lr_of):
    """The largest difference of two checkpoints' weights in units of the learning rate, over
    the well-conditioned elements (tests/test_dp.py's rule: elements whose Adam step is
    ill-conditioned, sqrt(v_hat) + eps < 1000 eps, and biases whose gradient is rounding noise
    move by about lr whatever their gradient's rounding; they are bounded by Adam's reach)."""
    def mmax(t, k):
        return max(abs(x) for x in floats(t["adam_m." + k][2]))

    def noise_bias(k):
        w = k[:-len("bias")] + "weight"
        return (k.endswith(".bias") and "adam_m." + w in ta and
                max(mmax(ta, k), mmax(tb, k)) <= 1e-3 * min(mmax(ta, w), mmax(tb, w)))
    worst, ill_worst, compared = 0.0, 0.0, 0
    for k, (dt, shape, raw) in ta.items():
        if not k.startswith("net") or dt != "F32" or "adam_v." + k not in ta:
            continue
        net = k.split(".")[0]
        lr = lr_of(net)
        noise = noise_bias(k)
        key = "adam_step." + net + "."
        steps = i64(ta, key if key in ta else key[:-1])
        bc2 = 1 - 0.999 ** steps
        va, vb = floats(ta["adam_v." + k][2]), floats(tb["adam_v." + k][2])
        compared += 1
        for x, y, u, w in zip(floats(raw), floats(tb[k][2]), va, vb):
            d = abs(x - y) / lr
            if noise or min(u, w) / bc2 < (1000e-8 - 1e-8) ** 2:
                ill_worst = max(ill_worst, d)
            else:
                worst = max(worst, d)
    return worst, ill_worst, compared


CONFIG = """
model = { ngf = 4; ndf = 4; n_blocks = 2; nce_layers = [3, 7, 12, 13, 17, 21]; netF_nc = 16;
          prj_norm = "ln"; };
cut = { nce_layers = [0, 4, 8, 12, 13]; num_patches = 16; netF_nc = 16; };
train = { n_epochs = 1; n_epochs_decay = 1; seed = 3; num_patches = 16; };
data = { root = "%(data)s"; synthetic = true; synth_train = 8; synth_test = 2;
         preprocess = "crop"; load_size = 32; crop_size = 32; threads = 1; };
run = { print_every = 1; sample_every = 0; save_every = 0; max_iterations = 3; };
"""

with tempfile.TemporaryDirectory() as tmp:
    cfg = os.path.join(tmp, "dp.cfg")
    with open(cfg, "w") as f:
        f.write(CONFIG % {"data": os.path.join(tmp, "data")})

    def d(name):
        return ["--set", 'run.dir="%s"' % os.path.join(tmp, name)]

    # ---- --device: one entry per process of this host ---------------------------------
    p = train(cfg, 2, "--device", "0,0", "--set", "run.max_iterations=1", *d("dev_ok"), timeout=120)
    check("--device 0,0 on 2 processes trains, each process on device 0",
          p.returncode == 0 and re.search(r"process 0: device 0 \(.*process 1: device 0 \(",
                                          p.stdout) is not None, p.stdout[-600:] + p.stderr[-600:])
    for dev, why in (("0", "lists 1 device for the 2 processes on this host"),
                     ("0,0,0", "lists 3 devices for the 2 processes on this host")):
        t0 = time.time()
        p = train(cfg, 2, "--device", dev, *d("dev_bad"), timeout=120)
        check("--device %s on 2 processes is refused on both, at once (%.1f s)" %
              (dev, time.time() - t0),
              p.returncode != 0 and p.stderr.count(why) == 2 and
              not os.path.exists(os.path.join(tmp, "dev_bad", "latest.safetensors")),
              p.stderr[-800:])
    p = train(cfg, 2, "--device", "0,no-such-device", *d("dev_bad"), timeout=120)
    check("--device 0,no-such-device: process 1 names the device it lacks, process 0 stops too",
          p.returncode != 0 and 'no device matches "no-such-device"' in p.stderr and
          "process 0 stops: another process refused its device" in p.stderr, p.stderr[-800:])
    p = train(cfg, 1, "--device", "0,0", *d("dev_bad"), timeout=120)
    check("--device 0,0 in a single process is refused, naming mpirun",
          p.returncode != 0 and "this is a single process" in p.stderr and
          "mpirun -np 2" in p.stderr, p.stderr[-600:])

    # ---- resume: the same N bit for bit, another N on the same global batch ---------------
    enco = ["--set", 'model.family="enco"']
    lr_enco = lambda net: 5e-5 if net in ("netG", "netF") else 2e-4  # noqa: E731
    full = os.path.join(tmp, "enco_full")
    p = train(cfg, 2, *enco, "--set", "train.batch_size=1", *d("enco_full"))
    check("enco (LayerNorm heads): 2 processes, 3 iterations, exit 0", p.returncode == 0)
    if p.returncode:
        show(p)
    ref = tensors(os.path.join(full, "latest.safetensors")) if p.returncode == 0 else {}
    keys = [k for k in ref if k.startswith(("net", "adam_", "state."))]

    def part(name, nproc, batch):
        p = train(cfg, nproc, *enco, "--set", "train.batch_size=%d" % batch, *d(name),
                  "--set", "run.max_iterations=2")
        if p.returncode:
            show(p)
        return p.returncode == 0

    ok = part("enco_same", 2, 1)
    p = train(cfg, 2, *enco, "--set", "train.batch_size=1", *d("enco_same"), "--resume")
    got = tensors(os.path.join(tmp, "enco_same", "latest.safetensors")) if p.returncode == 0 else {}
    diff = [k for k in keys if got.get(k, (0, 0, None))[2] != ref[k][2]]
    check("enco: 2 processes, 2 iterations and --resume on 2 to 3, equal the uninterrupted run "
          "bit for bit (%d tensors)" % len(keys),
          ok and p.returncode == 0 and keys and not diff, str(diff[:3]))

    # Under the sanitizers (tools/ci-hardening) one direction runs: the other repeats its code.
    for name, first, then in (("enco_2to1", (2, 1), (1, 2)), ("enco_1to2", (1, 2), (2, 1)))[
            :1 if os.environ.get("ENCO_TEST_SANITIZED") == "1" else 2]:
        ok = part(name, *first)
        run = os.path.join(tmp, name)
        if name == "enco_2to1":  # another global batch is refused, naming the one that keeps it
            p = train(cfg, 1, *enco, "--set", "train.batch_size=1", *d(name), "--resume")
            check("enco: a 2 x batch 1 checkpoint resumed by 1 x batch 1 is refused, naming "
                  "train.batch_size=2", p.returncode != 0 and
                  "global batch of 2 images" in p.stderr and "train.batch_size=2" in p.stderr,
                  p.stderr[-600:])
        p = train(cfg, then[0], *enco, "--set", "train.batch_size=%d" % then[1], *d(name),
                  "--resume")
        if p.returncode:
            show(p)
        got = tensors(os.path.join(run, "latest.safetensors")) if p.returncode == 0 else {}
        lines = losses(run) if p.returncode == 0 else []
        worst, ill, compared = dp_worst(ref, got, lr_enco) if got and ref else (1.0, 1.0, 0)
        check("enco: %d x batch %d for 2 iterations, resumed by %d x batch %d, goes on at "
              "iteration 2 to 3 with finite losses (%d lines) and equals the uninterrupted run "
              "within 1e-3 lr (worst %.3g lr; ill-conditioned %.2f lr; %d tensors)" %
              (first + then + (len(lines), worst, ill, compared)),
              p.returncode == 0 and "at epoch 1, iteration 2" in p.stderr and
              [x["iter"] for x in lines] == [1, 2, 3] and finite(lines) and
              i64(got, "state.total_iter") == 3 and i64(got, "state.processes") == then[0] and
              compared > 20 and worst <= 1e-3 and ill <= 3 * 2)

    # ---- a process whose device fails ends the job; the checkpoint stays intact ----------
    cut = ["--set", 'model.family="cut"', "--set", "train.batch_size=1",
           "--set", "run.save_every=1", "--set", "run.max_iterations=8"]
    for bad in (1, 0):
        name = "fault%d" % bad
        run = os.path.join(tmp, name)
        args = [BIN, "train", "-c", cfg, *cut, *d(name)]
        # MPMD: the same command on both, the fault (after about 4 iterations' kernel
        # launches) on process `bad` alone
        faulty = ["-np", "1", "env", "ENCO_FAULT_AFTER_LAUNCHES=2500"] + args
        sound = ["-np", "1"] + args
        cmd = [MPIRUN, "--oversubscribe"] + (sound + [":"] + faulty if bad else
                                             faulty + [":"] + sound)
        t0 = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=MPI_ENV)
        took = time.time() - t0
        check("a device fault on process %d ends the 2-process job with its error in %.1f s" %
              (bad, took), p.returncode != 0 and took < 60 and
              "simulated by ENCO_FAULT_AFTER_LAUNCHES" in p.stderr and
              "process %d of 2 failed; ending the job" % bad in p.stderr, p.stderr[-1200:])
        try:
            t = tensors(os.path.join(run, "latest.safetensors"))
            it = i64(t, "state.total_iter")
        except (OSError, ValueError, KeyError, struct.error) as e:
            t, it = {}, -1
            print("    checkpoint: %s" % e)
        check("process %d's fault: the last checkpoint loads (iteration %d of 8)" % (bad, it),
              1 <= it < 8 and sum(1 for k in t if k.startswith("net")) > 50)
        p = train(cfg, 2, *cut, *d(name), "--resume")
        lines = losses(run) if p.returncode == 0 else []
        # process 0 releases the folder's lock as it fails; process 1's fault kills it
        check("process %d's fault: --resume on 2 processes %s and finishes (iterations 1..8 "
              "logged once, finite)" % (bad, "takes the folder over" if bad else "goes on"),
              p.returncode == 0 and ("took over the lock" in p.stderr) == (bad == 1) and
              "iteration %d" % it in p.stderr and
              [x["iter"] for x in lines] == list(range(1, 9)) and finite(lines),
              p.stdout[-400:] + p.stderr[-800:])

    # ---- a process killed (SIGKILL to process 1): mpirun ends the job ------------------
    long = ["--set", 'model.family="cut"', "--set", "train.batch_size=1",
            "--set", "train.n_epochs=100000", "--set", "run.max_iterations=1000000"]
    p = subprocess.Popen([MPIRUN, "--oversubscribe", "-np", "2", BIN, "train", "-c", cfg, *long,
                          "--set", "run.save_every=1", *d("killed")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=MPI_ENV)
    victim, t0 = None, None
    for line in p.stdout:
        if line.startswith("epoch") and " iter 3/" in line:
            for pid in subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                      text=True, timeout=30).stdout.split():
                try:
                    with open("/proc/%s/environ" % pid, "rb") as f:
                        if b"OMPI_COMM_WORLD_RANK=1\0" in f.read():
                            victim = int(pid)
                except OSError:
                    pass
            if victim:
                t0 = time.time()
                os.kill(victim, signal.SIGKILL)
            break
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    took = time.time() - t0 if t0 else -1
    try:
        it = i64(tensors(os.path.join(tmp, "killed", "latest.safetensors")), "state.total_iter")
    except (OSError, ValueError, KeyError, struct.error) as e:
        it = -1
        print("    checkpoint: %s" % e)
    check("process 1 killed: mpirun ends the job in %.1f s, the checkpoint (iteration %d) "
          "loads" % (took, it), victim is not None and p.returncode != 0 and
          0 < took < 30 and it >= 2, err[-600:])

    # ---- SIGTERM to mpirun: every process stops at one iteration, the first saves once -----
    # Open MPI's mpirun answers SIGTERM (and Ctrl-C) by sending the processes SIGCONT, then
    # SIGTERM odls_base_sigkill_timeout seconds later, then SIGKILL as many seconds after
    # that: the stop and its save must fit in that window (README "Several processes").
    env = dict(MPI_ENV, OMPI_MCA_odls_base_sigkill_timeout="4")
    run = os.path.join(tmp, "term")
    p = subprocess.Popen([MPIRUN, "--oversubscribe", "-np", "2", BIN, "train", "-c", cfg, *long,
                          *d("term")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    t0 = None
    for line in p.stdout:
        if line.startswith("epoch") and " iter 3/" in line:
            t0 = time.time()
            p.send_signal(signal.SIGTERM)
            break
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    took = time.time() - t0 if t0 else -1
    stops = re.findall(r"enco-cl train: stopped at iteration (\d+);", err)
    k = int(stops[0]) if stops else -1
    check("SIGTERM to mpirun: both processes stop at the same iteration (%s) within %.1f s" %
          (stops, took), t0 is not None and len(stops) == 2 and len(set(stops)) == 1 and
          err.count("stopped on request") == 1 and 0 < took < 30, err[-1000:])
    t = tensors(os.path.join(run, "latest.safetensors")) if k > 0 else {}
    lines = losses(run) if k > 0 else []
    check("SIGTERM: the checkpoint holds iteration %d and losses.jsonl its %d lines" % (k, k),
          k > 0 and i64(t, "state.total_iter") == k and len(lines) == k)
    if k > 0:
        more = ["--set", "run.max_iterations=%d" % (k + 2)]
        p = train(cfg, 2, *long, *more, *d("term"), "--resume")
        q = train(cfg, 2, *long, *more, *d("term_full"))
        a = tensors(os.path.join(run, "latest.safetensors")) if p.returncode == 0 else {}
        b = tensors(os.path.join(tmp, "term_full", "latest.safetensors")) if q.returncode == 0 else {}
        keys = [x for x in b if x.startswith(("net", "adam_", "state."))]
        diff = [x for x in keys if a.get(x, (0, 0, None))[2] != b[x][2]]
        check("SIGTERM: --resume on 2 processes continues to iteration %d and equals the "
              "uninterrupted run bit for bit (%d tensors)" % (k + 2, len(keys)),
              p.returncode == 0 and q.returncode == 0 and keys and not diff and
              [x["iter"] for x in losses(run)] == list(range(1, k + 3)), str(diff[:3]))

finish()
