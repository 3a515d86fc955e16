#!/usr/bin/env python3
"""enco-cl bench --e2e under mpirun (issue 17): the processes train one model, the first
reports the global batch's images/s and the communication of an iteration, whose bytes are
what the gradients predict: every phase sums each of its nets' gradients (4 bytes a float)
through enco_dist_sum_floats, which receives (N - 1) x 4 x floats bytes and a 32-byte header
from each other process per call (src/dist/dist.h). One process reports the communication
as 0. Nothing here is timed: the seconds are only checked to be there.

usage: test_dp_bench.py ENCO_CL MPIRUN
"""
import json
import os
import subprocess
import sys
import tempfile

from mpitests import MPI_ENV
from testlib import check, finish

BIN, MPIRUN = sys.argv[1], sys.argv[2]

# A tiny CUT (the default CUT has no data-parallel refusal) at 24x24, 2 timed steps.
TINY = ["--family", "cut", "--sizes", "24", "--iters", "2", "--warmup", "0", "--quiet",
        "--set", "model.ngf=4", "--set", "model.ndf=4", "--set", "model.n_blocks=2",
        "--set", "cut.nce_layers=[0, 4, 8, 12, 13]", "--set", "cut.netF_nc=16",
        "--set", "cut.num_patches=16"]
HEADER = 32  # bytes: every collective's header (src/dist/dist.h, enco_dist_stats)


def bench(nproc, *args):
    cmd = [BIN, "bench", "--e2e", *args]
    if nproc:
        cmd = [MPIRUN, "--oversubscribe", "-np", str(nproc)] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=MPI_ENV)
    if p.returncode != 0:
        sys.stdout.write(p.stdout[-1500:] + p.stderr[-2000:])
    return p


def e2e_of(path):
    with open(path) as f:
        d = json.load(f)
    return d["e2e"][0]


with tempfile.TemporaryDirectory() as tmp:
    # ---- one process (no mpirun): the communication is 0 -----------------------------
    js = os.path.join(tmp, "one.json")
    p = bench(0, *TINY, "--json", js)
    check("one process: bench --e2e exits 0", p.returncode == 0)
    if p.returncode == 0:
        e = e2e_of(js)
        check("one process: processes 1, global batch 1, images/s = 1 / s/iter, s/iter > 0",
              e["processes"] == 1 and e["global_batch"] == 1 and e["sec_per_iter"] > 0 and
              abs(e["images_per_second"] * e["sec_per_iter"] - 1) < 1e-6, json.dumps(e))
        check("one process: no communication (bytes, seconds, share, sums all 0)",
              all(e["comm"][k] == 0 for k in ("bytes_per_iter", "seconds_per_iter", "share",
                                               "sums_per_iter", "floats_per_iter")),
              json.dumps(e["comm"]))
        check("one process: the keys older readers use are still there",
              all(k in e for k in ("size", "batch", "sec_per_iter", "min_sec_per_iter",
                                   "device_peak_bytes", "params", "family", "phases")))

    # ---- N processes: the first reports, the bytes are the gradients' -----------------
    for nproc, batch in ((2, 1), (3, 2)):
        js = os.path.join(tmp, "dp%d.json" % nproc)
        p = bench(nproc, *TINY, "--batch", str(batch), "--json", js)
        name = "%d processes x batch %d" % (nproc, batch)
        check(name + ": mpirun bench --e2e exits 0", p.returncode == 0)
        if p.returncode:
            continue
        check(name + ": the first process alone reports (one device line, one table)",
              p.stdout.count("device:") == 1 and p.stdout.count("end to end") == 1 and
              ("%d processes x batch %d = %d images" % (nproc, batch, nproc * batch)) in p.stdout,
              p.stdout[-1200:])
        e = e2e_of(js)
        c = e["comm"]
        floats = sum(e["params"])  # CUT: D in phase D, G and F in phase G+F: each once
        predicted = (nproc - 1) * (4 * floats + HEADER * c["sums_per_iter"])
        check(name + ": processes %d, global batch %d, s/iter > 0, images/s = global batch / "
              "s/iter" % (nproc, nproc * batch),
              e["processes"] == nproc and e["global_batch"] == nproc * batch and
              e["batch"] == batch and e["sec_per_iter"] > 0 and
              abs(e["images_per_second"] * e["sec_per_iter"] - nproc * batch) < 1e-6,
              json.dumps(e))
        check(name + ": every net's gradients summed once an iteration (%d floats in %g sums, "
              "at least one per net)" % (c["floats_per_iter"], c["sums_per_iter"]),
              c["floats_per_iter"] == floats and c["sums_per_iter"] >= len(e["params"]),
              json.dumps(c))
        check(name + ": bytes per iteration %d = (N - 1) x (4 x %d floats + 32 x sums) = %d" %
              (c["bytes_per_iter"], floats, predicted),
              c["bytes_per_iter"] == predicted and c["bytes_per_iter"] > 0, json.dumps(c))
        check(name + ": seconds in the collectives > 0, a share of the step in (0, 1)",
              c["seconds_per_iter"] > 0 and 0 < c["share"] < 1, json.dumps(c))

    # ---- refusals ---------------------------------------------------------------------
    p = bench(2, *TINY, "--peak")
    check("mpirun bench --peak is refused: --e2e alone under several processes",
          p.returncode != 0 and "--e2e alone" in p.stderr, p.stderr[-500:])
    # A family train refuses under several processes (EnCo's BatchNorm heads, today) is
    # refused by bench with train's message; one train takes, bench takes too.
    with open(os.path.join(tmp, "enco.cfg"), "w") as f:
        f.write('model = { ngf = 4; ndf = 4; };\n'
                'data = { root = "%s"; synthetic = true; synth_train = 4; synth_test = 1; '
                'preprocess = "crop"; load_size = 24; crop_size = 24; threads = 1; };\n'
                'run = { dir = "%s"; sample_every = 0; save_every = 0; max_iterations = 1; };\n'
                % (os.path.join(tmp, "data"), os.path.join(tmp, "run")))
    t = subprocess.run([MPIRUN, "--oversubscribe", "-np", "2", BIN, "train", "-c",
                        os.path.join(tmp, "enco.cfg")], capture_output=True, text=True,
                       timeout=600, env=MPI_ENV)
    p = bench(2, "--sizes", "24", "--iters", "1", "--warmup", "0", "--quiet",
              "--set", "model.ngf=4", "--set", "model.ndf=4")
    refusal = [ln[ln.index("model.family"):] for ln in t.stderr.splitlines()
               if "cannot train on 2 processes" in ln]
    if refusal:
        check("mpirun bench --e2e of EnCo with its default (BatchNorm) heads is refused with "
              "train's message (%s)" % refusal[0][:60],
              p.returncode != 0 and refusal[0] in p.stderr, p.stderr[-600:])
    else:
        check("train takes EnCo's default heads on 2 processes, and so does bench",
              t.returncode == 0 and p.returncode == 0, t.stderr[-600:] + p.stderr[-600:])

finish()
