#!/usr/bin/env python3
"""enco-cl verify under mpirun (issue 17): N processes training with the gradient reducer
(run B) against the first process training the same seed alone at the same global batch
(run A), judged at verify's tolerances. Passes for CUT, EnCo (its heads' BatchNorm
statistics summed across the processes), DCLGAN (the batch's keys gathered) and CycleGAN
with an image pool that fills and draws (the batch's fakes gathered); fails
(exit 1, "verify FAILED") when one process's device computes differently: process 1 reads
its kernels from a copy (ENCO_CL_DIR) whose normalisations scale rstd by 1.001, a device
that is slightly wrong. An unmodified copy read the same way passes, so the failure is the
perturbation's.

usage: test_dp_verify.py ENCO_CL MPIRUN
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from mpitests import MPI_ENV
from testlib import check, finish

BIN, MPIRUN = sys.argv[1], sys.argv[2]
SRC_CL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cl")
MPI_ENV.pop("ENCO_CL_DIR", None)


def run(cmd, timeout=900):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=MPI_ENV)
    return p


def verify(nproc, *args, cl_dir_of_1=None):
    """mpirun -np nproc enco-cl verify ARGS; cl_dir_of_1: process 1 reads its kernels there."""
    argv = [BIN, "verify", *args]
    if cl_dir_of_1:  # two programs: process 0 as usual, process 1 with ENCO_CL_DIR
        cmd = [MPIRUN, "--oversubscribe", "-np", "1", *argv, ":", "-np", "1",
               "-x", "ENCO_CL_DIR=" + cl_dir_of_1, *argv]
    else:
        cmd = [MPIRUN, "--oversubscribe", "-np", str(nproc), *argv]
    return run(cmd)


def report(path):
    with open(path) as f:
        d = json.load(f)
    d["rows"] = {g["name"]: g for g in d["groups"]}
    return d


with tempfile.TemporaryDirectory() as tmp:
    # ---- the processes train what one process trains ----------------------------------
    tiny = ["--set", "model.ngf=4", "--set", "model.ndf=4", "--set", "model.n_blocks=2"]
    cases = (
        ("cut", [], 2, 1),
        ("enco", [], 2, 1),  # its heads' BatchNorm statistics summed across the processes
        ("cut", [], 3, 2),
        ("dclgan", tiny + ["--set", "dclgan.nce_layers=[4,8,12,13]", "--set",
                           "dclgan.num_patches=16", "--set", "dclgan.netF_nc=16"], 2, 1),
        ("cyclegan", tiny + ["--set", "cyclegan.pool_size=2"], 2, 1))  # fills, then draws
    # Under the sanitizers (tools/ci-hardening): the verify code of every case runs in the
    # first two; the others repeat it for other families in the plain passes.
    if os.environ.get("ENCO_TEST_SANITIZED") == "1":
        cases = cases[:2]
    for name, extra, nproc, batch in cases:
        js = os.path.join(tmp, "%s%d.json" % (name, nproc))
        p = verify(nproc, "--set", 'model.family="%s"' % name, *extra, "--steps", "3",
                   "--batch", str(batch), "--json", js)
        what = "%s, %d processes x batch %d against 1 x batch %d" % (name, nproc, batch,
                                                                     nproc * batch)
        ok = p.returncode == 0 and "verify passed" in p.stdout
        check(what + ": verify passes (exit 0)", ok, p.stdout[-2500:] + p.stderr[-1500:])
        if not os.path.exists(js):
            continue
        d = report(js)
        check(what + ": the first process alone reports; JSON processes %d, pass, not bitwise, "
              "the picks of all %d images compared" % (nproc, nproc * batch),
              p.stdout.count("verify passed") == 1 and d["processes"] == nproc and d["pass"]
              and not d["bitwise"] and not d["same_device"] and
              (d["picks"]["compared"] > 0 or name == "cyclegan") and  # CycleGAN samples none
              d["picks"]["compared"] % (nproc * batch) == 0 and
              "(%d processes x batch %d)" % (nproc, batch) in d["device_b"] and
              "(1 process, batch %d)" % (nproc * batch) in d["device_a"], json.dumps(d)[:1500])
        # verify's tight checks of iteration 1 hold: the losses of iteration 1 (2e-6) and the
        # well-conditioned weights after it (2e-4 lr)
        check(what + ": iteration 1 within the tight tolerances (losses %.2g, G weights %.2g)" %
              (d["loss_rel_by_iteration"][0][0], d["rows"]["G weights after iteration 1"]["max_abs"]),
              d["loss_rel_by_iteration"][0][0] <= d["loss_rel_by_iteration"][0][1] and
              d["rows"]["G weights after iteration 1"]["pass"] and
              d["rows"]["F weights after iteration 1"]["pass"])

    # ---- a real difference on one process must fail ------------------------------------
    same, bug = os.path.join(tmp, "cl_same"), os.path.join(tmp, "cl_bug")
    shutil.copytree(SRC_CL, same)
    shutil.copytree(SRC_CL, bug)
    norm = os.path.join(bug, "norm.cl")
    with open(norm) as f:
        text = f.read()
    old = "float rs = 1.0f / sqrt(var + NORM_EPS);"
    check("the perturbation applies to cl/norm.cl", text.count(old) >= 2)
    with open(norm, "w") as f:
        f.write(text.replace(old, "float rs = 1.001f / sqrt(var + NORM_EPS);"))
    cut = ["--set", 'model.family="cut"', "--steps", "2"]
    js = os.path.join(tmp, "same.json")
    p = verify(2, *cut, "--json", js, cl_dir_of_1=same)
    check("process 1 reading an unmodified copy of the kernels (ENCO_CL_DIR): passes",
          p.returncode == 0 and report(js)["pass"] if os.path.exists(js) else False,
          p.stdout[-1500:] + p.stderr[-1500:])
    js = os.path.join(tmp, "bug.json")
    p = verify(2, *cut, "--json", js, cl_dir_of_1=bug)
    d = report(js) if os.path.exists(js) else {"pass": True, "rows": {}}
    check("process 1 with a slightly wrong normalisation (rstd x 1.001): verify FAILED, exit 1, "
          "on the losses and G weights after iteration 1",
          p.returncode == 1 and "verify FAILED" in p.stdout and not d["pass"] and
          not d["rows"].get("losses", {"pass": True})["pass"] and
          not d["rows"].get("G weights after iteration 1", {"pass": True})["pass"],
          p.stdout[-2000:] + p.stderr[-1000:])
    # --kernel-dir-b: every process's run B reads the wrong copy
    p = verify(2, *cut, "--kernel-dir-b", bug)
    check("--kernel-dir-b with the wrong copy for run B: verify FAILED, exit 1",
          p.returncode == 1 and "verify FAILED" in p.stdout, p.stdout[-1500:] + p.stderr[-800:])

    # ---- refusals and usage ---------------------------------------------------------------
    p = verify(2, "--devices", "0,0", "--steps", "1")
    check("under mpirun --devices takes one selection (A,B refused, exit 2)",
          p.returncode != 0 and "one selection" in p.stderr, p.stderr[-500:])

finish()
