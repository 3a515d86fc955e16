#!/usr/bin/env python3
"""One owner of a run folder (enco-cl train's <run.dir>/.lock, src/train/runlock.h):

1. Two runs one after the other on the same folder both train, and neither reports a
   takeover: a run that ends cleanly leaves no holder behind (the file stays, empty).
2. While a run trains, the lock file names it (pid, host, ISO 8601 start, command), and a
   second `enco-cl train` on the folder exits non-zero within seconds with an error naming
   the first's pid, without touching the first run's files (losses.jsonl, config.cfg,
   samples, checkpoint).
3. The first run SIGKILLed: its details stay in the file but its flock is gone; a third
   `enco-cl train --resume` takes the folder over, says so naming the killed pid, and
   finishes, leaving the lock released.
4. A holder that is not enco-cl (a flock taken here) is refused the same way, naming the
   pid it wrote; a lock file whose holder wrote nothing is refused without a pid.
"""
import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time

from testlib import check, finish

BIN = sys.argv[1]

# A tiny EnCo run on the synthetic task: 20 iterations per epoch (a checkpoint at each
# epoch end), many epochs so that run.max_iterations decides the length.
CONFIG = """
model = { ngf = 4; ndf = 4; netF_nc = 16; };
train = { num_patches = 16; n_epochs = 100000; n_epochs_decay = 0; seed = 1; };
data = { root = "%(data)s"; synthetic = true; synth_train = 20; synth_test = 4;
         preprocess = "crop"; load_size = 32; crop_size = 32; threads = 1; };
run = { print_every = 5; sample_every = 1000000; eval_every = 0; save_every = 0; };
"""


def train(cfg, run, *extra, timeout=600):
    t0 = time.time()
    p = subprocess.run([BIN, "train", "-c", cfg, "--set", 'run.dir="%s"' % run, *extra],
                       capture_output=True, text=True, timeout=timeout)
    p.secs = time.time() - t0
    return p


def lock_fields(run):
    try:
        with open(os.path.join(run, ".lock")) as f:
            text = f.read()
    except OSError:
        return None
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def loss_lines(run):
    try:
        with open(os.path.join(run, "losses.jsonl")) as f:
            return f.read().splitlines()
    except OSError:
        return []


def safetensors_ok(path):
    """The header parses and the data it announces is all there."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
        end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
        return len(data) == 8 + n + end and len(header) > 10
    except (OSError, ValueError, struct.error):
        return False


with tempfile.TemporaryDirectory() as tmp:
    cfg = os.path.join(tmp, "lock.cfg")
    with open(cfg, "w") as f:
        f.write(CONFIG % {"data": os.path.join(tmp, "data")})

    # ---- 1. clean runs leave no holder ------------------------------------------------
    seq = os.path.join(tmp, "seq")
    p1 = train(cfg, seq, "--set", "run.max_iterations=10")
    p2 = train(cfg, seq, "--set", "run.max_iterations=10")
    check("two runs in turn on one folder both exit 0",
          p1.returncode == 0 and p2.returncode == 0,
          "status %d, %d: %s" % (p1.returncode, p2.returncode, (p1.stderr + p2.stderr)[-800:]))
    check("neither reports a takeover", "took over" not in p1.stderr + p2.stderr,
          (p1.stderr + p2.stderr)[-800:])
    check("the lock file stays, empty, after a clean run",
          os.path.isfile(os.path.join(seq, ".lock")) and
          os.path.getsize(os.path.join(seq, ".lock")) == 0)

    # ---- 2. a live run refuses a second trainer ---------------------------------------
    run = os.path.join(tmp, "busy")
    first = subprocess.Popen([BIN, "train", "-c", cfg, "--set", 'run.dir="%s"' % run,
                              "--set", "run.max_iterations=1000000"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Until it holds the lock and has logged losses and saved a checkpoint (epoch 1).
        deadline = time.time() + 300
        fields = None
        while time.time() < deadline and first.poll() is None:
            fields = lock_fields(run)
            if (fields and fields.get("pid") == str(first.pid) and len(loss_lines(run)) >= 5
                    and os.path.isfile(os.path.join(run, "latest.safetensors"))):
                break
            time.sleep(0.1)
        check("the running trainer's lock file names its pid", fields is not None and
              fields.get("pid") == str(first.pid), "%s (first run status %s)" %
              (fields, first.poll()))
        check("... its host, an ISO 8601 UTC start time and its command",
              fields is not None and fields.get("host") == os.uname().nodename and
              re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", fields.get("since", "")) is not None
              and fields.get("command") == "enco-cl train", str(fields))

        before = loss_lines(run)
        with open(os.path.join(run, "config.cfg")) as f:
            config_before = f.read()
        # A fresh run (it would clear losses.jsonl and rewrite config.cfg) with another seed.
        p = train(cfg, run, "--set", "run.max_iterations=10", "--set", "train.seed=7",
                  timeout=120)
        after = loss_lines(run)
        print("     (refused in %.1f s; first run at %d logged lines)" % (p.secs, len(after)))
        msg = p.stderr
        check("a second trainer on the busy folder exits non-zero", p.returncode != 0,
              "status %d: %s" % (p.returncode, msg[-600:]))
        check("... within 60 s", p.secs < 60, "%.1f s" % p.secs)
        check("... naming the folder, the holder's pid and host, and what to do",
              ("run folder %s is in use by another enco-cl train (pid %d on host %s, since"
               % (run, first.pid, os.uname().nodename)) in msg and "choose another run.dir" in msg,
              msg[-600:])
        check("... and trains nothing", "epoch " not in p.stdout and "took over" not in msg,
              p.stdout[-400:])
        check("the first run's losses.jsonl is untouched (only grown)",
              len(before) >= 5 and after[:len(before)] == before,
              "%d lines before, %d after" % (len(before), len(after)))
        with open(os.path.join(run, "config.cfg")) as f:
            check("the first run's config.cfg is untouched", f.read() == config_before)
        check("the first run's checkpoint is intact",
              safetensors_ok(os.path.join(run, "latest.safetensors")))
        check("the first run is still training", first.poll() is None,
              "status %s" % first.poll())

        # ---- 3. a killed run's lock is taken over -----------------------------------
        os.kill(first.pid, signal.SIGKILL)
        first.communicate(timeout=60)
        killed = lock_fields(run)
        check("the killed run's details stay in the lock file",
              killed is not None and killed.get("pid") == str(first.pid), str(killed))
        resume_to = int(json.loads(loss_lines(run)[-1])["iter"]) + 10
        p = train(cfg, run, "--resume", "--set", "run.max_iterations=%d" % resume_to)
        check("--resume on the killed run's folder exits 0", p.returncode == 0,
              "status %d: %s" % (p.returncode, p.stderr[-800:]))
        check("... and says it took the lock over from the killed pid",
              re.search(r"took over the lock \S*\.lock of an earlier run that ended without "
                        r"releasing it \(pid %d on host " % first.pid, p.stderr) is not None,
              p.stderr[-800:])
        check("... and trains to the end", int(json.loads(loss_lines(run)[-1])["iter"]) ==
              resume_to and "resumed from" in p.stderr, loss_lines(run)[-1:])
        check("... then releases the lock (the file empty)",
              os.path.getsize(os.path.join(run, ".lock")) == 0)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()

    # ---- 4. holders that are not enco-cl ----------------------------------------------
    other = os.path.join(tmp, "other")
    os.makedirs(other)
    fd = os.open(os.path.join(other, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        p = train(cfg, other, "--set", "run.max_iterations=10", timeout=120)
        check("a folder whose lock another process holds, details not written: refused",
              p.returncode != 0 and "in use by another process" in p.stderr and
              "names no pid" in p.stderr, p.stderr[-600:])
        os.write(fd, b"pid=%d\nhost=elsewhere\nsince=2026-01-02T03:04:05Z\ncommand=my job\n"
                 % os.getpid())
        p = train(cfg, other, "--set", "run.max_iterations=10", timeout=120)
        check("... with its details written: refused, naming them",
              p.returncode != 0 and ("run folder %s is in use by another my job (pid %d on host "
                                     "elsewhere, since 2026-01-02T03:04:05Z)" %
                                     (other, os.getpid())) in p.stderr, p.stderr[-600:])
        check("... and nothing written to the folder", sorted(os.listdir(other)) == [".lock"],
              str(os.listdir(other)))
    finally:
        os.close(fd)
    p = train(cfg, other, "--set", "run.max_iterations=10")
    check("the same folder once released: trains, and takes over the stale details",
          p.returncode == 0 and "(pid %d on host elsewhere, since 2026-01-02T03:04:05Z)"
          % os.getpid() in p.stderr, "status %d: %s" % (p.returncode, p.stderr[-600:]))

finish("{checks} checks, {failed} failures")
