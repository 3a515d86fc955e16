#!/usr/bin/env python3
"""Runs the enco-cl binary as a user would and checks output and exit codes."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import testlib
from testlib import check, finish

BIN = sys.argv[1]
testlib.fail_lines("FAIL {name} {detail}", "FAIL {name} ")


def run(*args, env=None):
    """Runs BIN; env updates the environment, a None value removes the
    variable. ENCO_DEVICE passes through (tools/run-tests --device intel runs
    this test on Intel's OpenCL runtime with PoCL visible too), so checks
    that count what a device does, or name a device, must hold on any."""
    e = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    p = subprocess.run([BIN, *args], capture_output=True, text=True, env=e, timeout=600)
    return p.returncode, p.stdout, p.stderr


rc, out, err = run("devices")
check("devices exit 0", rc == 0, err)
check("devices lists PoCL", "Portable Computing Language" in out, out)
for field in ("platform:", "vendor:", "type:", "driver:", "OpenCL C:", "compute units:",
              "global memory:", "max allocation:", "local memory:", "fp16 / fp64:"):
    check("devices shows " + field, field in out, out)
check("devices marks the default", "* [" in out, out)

rc, out, err = run("devices", "--check")
check("devices --check passes", rc == 0 and "device check passed" in out, out + err)
check("--check reports kernel error", "check kernel:   pass" in out, out)
check("--check reports SGEMM error", "check SGEMM:    pass" in out, out)

rc, out, err = run("devices", "--device", "0")
check("--device 0", rc == 0 and "* [0]" in out, out + err)

rc, out, err = run("devices", "--device", "nonexistent-gpu")
check("bad --device exits 1", rc == 1, str(rc))
check("bad --device names the selection", "nonexistent-gpu" in err, err)
check("bad --device lists devices", "available devices:" in err and "0: " in err, err)

rc, out, err = run("devices", env={"ENCO_DEVICE": "42"})
check("bad ENCO_DEVICE exits 1", rc == 1, str(rc))
check("bad ENCO_DEVICE says where it came from", "ENCO_DEVICE" in err and "42" in err, err)

rc, out, err = run("devices", "--bogus")
check("unknown option exits 2", rc == 2, str(rc))
check("unknown option is named", "--bogus" in err, err)

rc, out, err = run("frobnicate")
check("unknown command exits 2", rc == 2 and "unknown command" in err, err)

rc, out, err = run("--help")
check("--help exits 0", rc == 0 and "devices" in out and "ENCO_DEVICE" in out, out)
rc, out, err = run("devices", "--help")
check("devices --help", rc == 0 and "--check" in out, out)
rc, out, err = run()
check("no command exits 2", rc == 2, str(rc))

with tempfile.TemporaryDirectory() as d:
    env = {"ENCO_CACHE_DIR": os.path.join(d, "c")}
    rc, out, err = run("devices", "--check", env=env)
    rc, out, err = run("cache", env=env)
    # The self check's programs on every visible device: how many depends on
    # the devices there are and on the GEMM each takes, so only that there
    # are some, and that --clear removes exactly those.
    m = re.search(r"entries:\s+(\d+) ", out)
    listed = int(m.group(1)) if m else 0
    check("cache shows entries", rc == 0 and listed >= 1, out + err)
    rc, out, err = run("cache", "--clear", env=env)
    check("cache --clear removes every listed entry",
          rc == 0 and re.search(r"removed %d cached program" % listed, out), out + err)
    rc, out, err = run("cache", env=env)
    check("cache empty after clear", rc == 0 and "entries:      0" in out, out + err)

# ---- bad input to the training commands: one clear message, non-zero exit
with tempfile.TemporaryDirectory() as d:
    cfg = os.path.join(d, "bad.cfg")
    with open(cfg, "w") as f:
        f.write("model = {\n  ngf = 8;\n  lamda_NCE = 2.0;\n};\n")
    rc, out, err = run("config", "-c", cfg)
    check("config: unknown key names file:line and a suggestion",
          rc == 1 and "bad.cfg:3" in err and "did you mean 'train.lambda_NCE'" in err, err)
    with open(cfg, "w") as f:
        f.write("train = {\n  lr_G = ;\n};\n")
    rc, out, err = run("config", "-c", cfg)
    check("config: syntax error names the line", rc == 1 and "bad.cfg:2" in err and
          "syntax error" in err, err)
    rc, out, err = run("config", "--set", "data.crop_size=300")
    check("config: crop larger than load size is refused", rc == 1 and
          "larger than data.load_size" in err, err)

    rc, out, err = run("train")
    check("train without -c exits 2", rc == 2 and "-c FILE" in err, err)
    good = os.path.join(d, "good.cfg")
    with open(good, "w") as f:
        f.write('data = { root = "%s/none"; };\n' % d)
    rc, out, err = run("train", "-c", good)
    check("train on a missing dataset names the folder", rc == 1 and
          os.path.join(d, "none") in err, err)
    os.makedirs(os.path.join(d, "empty", "trainA"))
    os.makedirs(os.path.join(d, "empty", "trainB"))
    with open(good, "w") as f:
        f.write('data = { root = "%s/empty"; };\n' % d)
    rc, out, err = run("train", "-c", good)
    check("train on empty folders says so", rc == 1 and "trainA" in err, err)

    rc, out, err = run("synth", "--out", os.path.join(d, "s"), "--size", "16", "--train", "1",
                       "--test", "1")
    check("synth writes a tiny task", rc == 0 and
          os.listdir(os.path.join(d, "s", "testA")) == ["0000.png"], out + err)
    imgs = os.path.join(d, "s", "testA")
    rc, out, err = run("translate", "-m", os.path.join(d, "no.safetensors"), "-i", imgs,
                       "-o", os.path.join(d, "out"))
    check("translate with a missing checkpoint names it", rc == 1 and "no.safetensors" in err,
          err)
    junk = os.path.join(d, "junk.safetensors")
    with open(junk, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n not a checkpoint")
    rc, out, err = run("translate", "-m", junk, "-i", imgs, "-o", os.path.join(d, "out"))
    check("translate with a non-checkpoint file refuses it", rc == 1 and "junk.safetensors" in err,
          err)
    rc, out, err = run("eval", "-m", junk)
    check("eval without --data exits 2", rc == 2, err)
    rc, out, err = run("step", "--config", good)
    check("step without --state/--out exits 2", rc == 2 and "--state" in err, err)
    rc, out, err = run("verify", "--steps", "2")
    check("verify without --devices exits 2", rc == 2 and "--devices" in err, err)
    rc, out, err = run("verify", "--devices", "0,0", "--size", "30")
    check("verify with a size not a multiple of 4 exits 2", rc == 2 and "multiple of 4" in err,
          err)


# enco-cl step on a fixture's state (tests/fixtures, tensors under in.):
# --save-adam adds the Adam state after the step, in the names a state's
# optional Adam tensors have, and a state whose Adam step is 0 is refused.
FIXDIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
rc, out, err = run("step", "--help")
check("step --help lists --save-adam", rc == 0 and "--save-adam" in out and "adam_step" in out,
      out)
with tempfile.TemporaryDirectory() as d:
    cfg = os.path.join(FIXDIR, "b1_bn_dag.cfg")
    state = os.path.join(FIXDIR, "b1_bn_dag.safetensors")
    o1 = os.path.join(d, "o1.safetensors")
    rc, out, err = run("step", "--config", cfg, "--state", state, "--prefix", "in.", "--out", o1,
                       "--save-adam")
    check("step --save-adam exits 0", rc == 0, err)
    t = testlib.tensors(o1) if rc == 0 else {}
    import struct
    steps = {n: t.get("adam_step." + n) for n in ("netG", "netD", "netF")}
    check("step --save-adam writes adam_step.<net> as int64 scalars equal to 1",
          all(v and v[0] == "I64" and v[1] == [] and struct.unpack("<q", v[2])[0] == 1
              for v in steps.values()), str({k: v and v[:2] for k, v in steps.items()}))
    w = t.get("after.netG.model.1.weight")
    m, v = t.get("adam_m.netG.model.1.weight"), t.get("adam_v.netG.model.1.weight")
    check("step --save-adam writes adam_m/adam_v in the weights' shapes",
          w and m and v and m[0] == v[0] == "F32" and m[1] == v[1] == w[1],
          str((m and m[1], w and w[1])))
    o2 = os.path.join(d, "o2.safetensors")
    rc, out, err = run("step", "--config", cfg, "--state", state, "--prefix", "in.", "--out", o2)
    check("step without --save-adam writes no Adam state",
          rc == 0 and not any(k.startswith("adam_") for k in testlib.tensors(o2)), err)
    bad = os.path.join(d, "bad.safetensors")
    tensors = testlib.tensors(state)
    tensors["in.adam_step.netG"] = ("I64", [], struct.pack("<q", 0))
    testlib.write_safetensors(bad, tensors)
    rc, out, err = run("step", "--config", cfg, "--state", bad, "--prefix", "in.", "--out", o2)
    check("step refuses a state with adam_step 0, naming it",
          rc == 1 and "adam_step.netG" in err, err)

# enco-cl tune: a stand-in for clblast_tuner_xgemm (not installed in CI) that
# writes a result file for its first phase as the real tuner does, then hangs
# in its second phase until the time limit stops it.
FAKE_TUNER = """#!/bin/sh
echo "* (1/4) Tuning main GEMM kernel (GEMMK == 0) for fixed set of parameters"
echo "args: $*" > args.txt
cat > clblast_xgemm_1_32.json <<'JSON'
{
  "kernel_family": "xgemm_1",
  "precision": "32",
  "best_kernel": "Xgemm",
  "best_time": "0.19",
  "best_parameters": "GEMMK=0 KREG=1 KWG=32 KWI=2 MDIMA=8 MDIMC=8 MWG=32 NDIMB=16 NDIMC=16 NWG=64 PRECISION=32 SA=1 SB=1 STRM=0 STRN=0 VWM=4 VWN=4",
  "results": []
}
JSON
echo "* Found best result 0.19 ms: 25671.7 GFLOPS"
echo "* (2/4) Tuning main GEMM kernel (GEMMK == 0) for random parameters out of larger set"
exec sleep 60
"""
with tempfile.TemporaryDirectory() as d:
    # The default device (index 0 = platform 0, device 0): the fake tuner's
    # arguments below name it.
    env = {"ENCO_CACHE_DIR": os.path.join(d, "c"), "ENCO_DEVICE": None}
    rc, out, err = run("tune", env=env)
    check("tune without an action exits 2", rc == 2 and "--run" in err, err)
    rc, out, err = run("tune", "--run", "--size", "12x3", env=env)
    check("tune with a bad --size exits 2", rc == 2 and "MxNxK" in err, err)
    rc, out, err = run("tune", "--run", "--fraction", "1.5", env=env)
    check("tune with a bad --fraction exits 2", rc == 2 and "--fraction" in err, err)
    rc, out, err = run("tune", "--run", "--time-limit", "0", env=env)
    check("tune with a bad --time-limit exits 2", rc == 2 and "--time-limit" in err, err)
    rc, out, err = run("tune", "--show", "--clear", env=env)
    check("tune with two actions exits 2", rc == 2 and "one of" in err, err)
    rc, out, err = run("tune", "--show", env=env)
    check("tune --show without tuning says so", rc == 0 and "no stored tuning" in out, out + err)
    rc, out, err = run("tune", "--run", "--tuner", os.path.join(d, "missing-tuner"), env=env)
    check("tune --run without the tuner says what to install",
          rc == 1 and "clblast-utils" in err, err)
    fake = os.path.join(d, "fake_tuner")
    with open(fake, "w") as f:
        f.write(FAKE_TUNER)
    os.chmod(fake, 0o755)
    rc, out, err = run("tune", "--run", "--tuner", fake, "--time-limit", "3", "--size",
                       "64x128x32", env=env)
    check("tune --run stops the tuner at the time limit and keeps its finished phase",
          rc == 0 and "time limit reached" in err and "stored and checked" in out, out + err)
    check("tune --run shows the tuner's phases", "tuner (1/4)" in err and "tuner (2/4)" in err,
          err)
    work = re.search(r"work folder (\S+)", err)
    args = open(os.path.join(work.group(1), "args.txt")).read() if work else ""
    if work:
        shutil.rmtree(work.group(1))
    check("tune --run passes size and device to the tuner",
          "-m 64 -n 128 -k 32" in args and "-platform 0 -device 0" in args, args + err)
    rc, out, err = run("tune", "--show", env=env)
    check("tune --show prints the stored parameters",
          rc == 0 and "Xgemm 0.19 GEMMK=0 KREG=1 KWG=32" in out, out + err)
    rc, out, err = run("devices", "--check", "--device", "0", env=env)
    check("devices --check shows the applied tuning", rc == 0 and
          re.search(r"CLBlast tuning: .*clblast-[0-9a-f]+\.tuning \(Xgemm\)", out), out + err)
    bad = os.path.join(d, "bad.json")
    with open(bad, "w") as f:
        f.write("{}")
    rc, out, err = run("tune", "--import", bad, env=env)
    check("tune --import of a non-result refuses it", rc == 1 and "bad.json" in err, err)
    rc, out, err = run("tune", "--clear", env=env)
    check("tune --clear", rc == 0 and "removed the stored tuning" in out, out + err)
    rc, out, err = run("devices", "--check", "--device", "0", env=env)
    check("after --clear CLBlast's own parameters are used", "CLBlast's own" in out, out)

# bench: small shapes only (the CPU device); the numbers are the device's,
# so the checks are on what is printed and on the exit codes.
SMALL = ("--gemm-max", "64", "--copy-mib", "1", "--repeat", "1", "--warmup", "0", "--quiet")
rc, out, err = run("bench", "--help")
check("bench --help names every part", rc == 0 and all(
    o in out for o in ("--peak", "--kernels", "--e2e", "--local-ceiling", "at least 24")), out)
rc, out, err = run("bench", "--peak", *SMALL)
check("bench --peak prints the ceilings", rc == 0 and "SGEMM" in out and "copy" in out,
      out + err)
with tempfile.TemporaryDirectory() as d:
    js = os.path.join(d, "k.json")
    rc, out, err = run("bench", "--kernels", "--size", "24", "--op", "D model.14$",
                       "--local-ceiling", "--json", js, *SMALL)
    check("bench --kernels --local-ceiling runs", rc == 0, out + err)
    check("the table has the probed-ceiling column", re.search(r"%it\s+ceil", out) is not None,
          out)
    rows = [l for l in out.splitlines() if l.startswith("conv2d.")]
    check("--op keeps D model.14's convolutions (each pass, both batch sizes)",
          len(rows) >= 3 and all("D model.14" in l for l in rows), out)
    import json
    try:
        doc = json.load(open(js))
        jr = doc["kernels"]["rows"]
    except (OSError, ValueError, KeyError):
        jr = []
    check("JSON rows carry their probed ceiling",
          len(jr) == len(rows) and all(r.get("local_ceiling_gflops", 0) > 0 for r in jr),
          str(jr)[:300])
rc, out, err = run("bench", "--kernels", "--size", "24", "--family", "cut", "--op", "F mlp_0",
                   *SMALL)
rows = [l for l in out.splitlines() if " F mlp_0" in l]
check("bench --kernels --family cut records CUT's step (PatchSampleF rows, no EnCo heads)",
      rc == 0 and "one cut step" in out and len(rows) >= 4 and "F prj_" not in out, out + err)
rc, out, err = run("bench", "--kernels", "--size", "24", "--op", "no-such-row", *SMALL)
check("bench --op without a match says so", rc == 0 and "matches no row" in err, out + err)
rc, out, err = run("bench", "--e2e", "--local-ceiling", *SMALL)
check("--local-ceiling without --kernels is a usage error", rc == 2 and "--kernels" in err, err)
rc, out, err = run("bench", "--kernels", "--size", "16", *SMALL)
check("bench --size below the model's smallest is refused before any work",
      rc == 2 and "at least 24x24" in err and "ceilings" not in out, out + err)
rc, out, err = run("bench", "--e2e", "--sizes", "24,20", *SMALL)
check("bench --sizes checks every size", rc == 2 and "size 20" in err, err)
rc, out, err = run("bench", "--size", "30")
check("bench --size not a multiple of 4 is refused", rc == 2 and "multiple of 4" in err, err)
rc, out, err = run("bench", "--kernels", "--size", "8", *SMALL)
check("bench --size 8 names the model's smallest", rc == 2 and "at least 24x24" in err, err)
RUNS = tempfile.mkdtemp(prefix="enco-cli-runs-")
E2E24 = os.path.join(RUNS, "e2e24.json")
rc, out, err = run("bench", "--e2e", "--sizes", "24", "--iters", "1", "--warmup", "0", "--quiet",
                   "--json", E2E24)
check("bench --e2e at 24 gives sec/iter, memory and the phases",
      rc == 0 and "s/iter" in out and "peak device memory" in out and "G backward" in out,
      out + err)
rc, out, err = run("verify", "--devices", "0,0", "--size", "20", "--steps", "1")
check("verify at a size the model cannot take names the smallest",
      rc == 1 and "at least 24" in err, err)

# bench/compare_pytorch checks its arguments before it runs anything (no
# torch needed for these: the checks come first).
CMP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "compare_pytorch")
for args, what, text in (
        (("--sizes", "20"), "a size the model cannot take", "at least 24"),
        (("--sizes", "64,x"), "a size that is not a number", "list of integers"),
        (("--enco", "/nonexistent/enco-cl"), "a missing binary", "no such executable"),
        (("--iters", "0"), "zero timed iterations", "--iters"),
        (("--reference-repo", "/nonexistent"), "a reference repo that is not one",
         "models/networks.py"),
        (("--family", "gan"), "an unknown family", "invalid choice"),
        (("--family", "cut", "--reference-repo", "/nonexistent"),
         "a reference repo without the CUT files", "models/base_model.py"),
        (("--family", "cut", "--authors-in-workaround"), "the authors' workaround without them",
         "needs --family cut, fastcut or dclgan"),
        (("--python", "/nonexistent/python3"), "an interpreter that is not there",
         "PyTorch is not installed for /nonexistent/python3")):
    p = subprocess.run([sys.executable, CMP, "--enco", BIN, *args], capture_output=True,
                       text=True, timeout=60)
    check("compare_pytorch refuses %s at once" % what,
          p.returncode == 2 and text in p.stderr and "==" not in p.stderr, p.stderr[-400:])

# bench/compare_runs: two bench --json results side by side.
CRUNS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "compare_runs")


def compare_runs(*args):
    p = subprocess.run([sys.executable, CRUNS, *args], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


K24A, K24B, K28 = (os.path.join(RUNS, n) for n in ("k24a.json", "k24b.json", "k28.json"))
KARGS = ("bench", "--kernels", "--op", "G model.1$", *SMALL, "--json")
rc_a = run(*KARGS, K24A, "--size", "24")[0]
rc_b = run(*KARGS, K24B, "--size", "24", env={"ENCO_CONV_IMPLICIT": "0"})[0]
rc_c = run(*KARGS, K28, "--size", "28")[0]
check("bench --json writes the files compare_runs reads", (rc_a, rc_b, rc_c) == (0, 0, 0))
with open(K24A) as f:
    ka = json.load(f)
with open(K24B) as f:
    kb = json.load(f)
rc, out, err = compare_runs(K24A, K24B)
check("compare_runs of two kernel tables exits 0", rc == 0, out + err)
dev = "%s (%s," % (ka["device"].get("name"), ka["device"].get("platform"))
check("compare_runs names both files and devices",
      K24A in out and K24B in out and out.count(dev) == 2, out)
rows = {(r["name"], r["where"]): r for r in ka["kernels"]["rows"]}
rows_b = {(r["name"], r["where"]): r for r in kb["kernels"]["rows"]}
# G's input conv: forward and weight gradient (it needs no input gradient).
check("both tables hold G model.1's two rows",
      sorted(rows) == sorted(rows_b) == [("conv2d.bwd_weight", "G model.1"),
                                         ("conv2d.fwd", "G model.1")], str(sorted(rows)))
for name in ("conv2d.fwd", "conv2d.bwd_weight"):
    ra, rb = rows[(name, "G model.1")], rows_b[(name, "G model.1")]
    want = r"%s\s+G model\.1\s+1\s+%.3f\s+%.3f\s+%.2f\s" % (
        re.escape(name), 1e3 * ra["seconds"], 1e3 * rb["seconds"], rb["seconds"] / ra["seconds"])
    check("compare_runs row %s: both medians and B / A" % name, re.search(want, out), out)
ta = sum(r["seconds"] * r["per_iter"] for r in rows.values())
tb = sum(r["seconds"] * r["per_iter"] for r in rows_b.values())
check("compare_runs sums the matched rows",
      "A %.3f s, B %.3f s, B / A %.2f" % (ta, tb, tb / ta) in out, out)
check("compare_runs compares the ceilings",
      re.search(r"SGEMM\s+GFLOP/s\s+%.2f\s+%.2f" % (ka["peak"]["gemm_gflops"],
                                                   kb["peak"]["gemm_gflops"]), out), out)
rc, out, err = compare_runs(E2E24, E2E24)
check("compare_runs of an e2e result with itself: ratios 1.00 and the same loss",
      rc == 0 and re.search(r"s/iter \(median\)\s+[\d.]+\s+[\d.]+\s+1\.00", out)
      and "G backward" in out and "loss_G" in out, out + err)
with open(os.path.join(RUNS, "other.json"), "w") as f:
    f.write('{"tool": "something else"}')
with open(os.path.join(RUNS, "broken.json"), "w") as f:
    f.write('{"tool": "enco-cl bench", ')
with open(os.path.join(RUNS, "empty.json"), "w") as f:
    f.write('{"tool": "enco-cl bench", "device": {}}')
# The same results with other layer names (same size, no row in common) and
# with the e2e run relabelled as 28x28 (no size in common).
with open(os.path.join(RUNS, "renamed.json"), "w") as f:
    for r in kb["kernels"]["rows"]:
        r["where"] = "X " + r["where"]
    json.dump(kb, f)
with open(E2E24) as f:
    e28 = json.load(f)
for r in e28["e2e"]:
    r["size"] = 28
with open(os.path.join(RUNS, "e2e28.json"), "w") as f:
    json.dump(e28, f)
for args, what, text in (
        ((K24A, K28), "tables at different sizes", "same --size"),
        ((K24A, E2E24), "files with no part in common", "no part in common"),
        ((K24A, os.path.join(RUNS, "missing.json")), "a missing file", "missing.json"),
        ((K24A, os.path.join(RUNS, "other.json")), "another tool's JSON",
         "not an enco-cl bench result"),
        ((K24A, os.path.join(RUNS, "broken.json")), "a truncated file", "not JSON"),
        ((K24A, K24B, "--op", "nothing"), "an --op that keeps no row", "--op 'nothing'"),
        ((K24A, K24B, "--top", "0"), "--top 0", "--top"),
        ((K24A, os.path.join(RUNS, "empty.json")), "a result with no part",
         "holds no --peak, --kernels or --e2e results"),
        ((K24A, os.path.join(RUNS, "renamed.json")), "tables of one size with no row in common",
         "no kernel row is in both files"),
        ((E2E24, os.path.join(RUNS, "e2e28.json")), "e2e results with no size in common",
         "A has [24], B has [28]")):
    rc, out, err = compare_runs(*args)
    check("compare_runs refuses %s" % what, rc == 2 and text in err and out == "", out + err)
shutil.rmtree(RUNS)

# Every environment variable the sources read is in the README's table (the
# names passed to getenv and the kernel policy's overrides, src/cl/policy.c).
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
read_env = set()
for d, _, files in os.walk(os.path.join(ROOT, "src")):
    for f in files:
        if f.endswith((".c", ".h")):
            with open(os.path.join(d, f), encoding="utf-8") as fh:
                text = fh.read()
            read_env.update(re.findall(
                r'(?:getenv|OVERRIDE)\("(ENCO_[A-Z0-9_]+)"', text))
with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
    readme_rows = [l for l in fh if l.startswith("| `ENCO_")]
check("the sources read environment variables", len(read_env) >= 20, str(sorted(read_env)))
for name in sorted(read_env):
    check("README documents %s" % name,
          any(re.search(r"`%s[`=]" % name, l) for l in readme_rows))

# CUT's draws as step inputs: each refusal names what is wrong, and nothing
# is written.
with tempfile.TemporaryDirectory() as d:
    import struct
    base = testlib.tensors(os.path.join(FIXDIR, "cut_b2.safetensors"))
    cfg_cut = os.path.join(FIXDIR, "cut_b2.cfg")
    cases = []
    bad = dict(base)
    bad["in.flipped"] = ("I64", [], struct.pack("<q", 2))
    cases.append(("flipped = 2", bad, "flipped must be an int64 scalar, 0 or 1"))
    bad = dict(base)
    bad["in.flipped"] = ("F32", [], struct.pack("<f", 1.0))
    cases.append(("a float flipped", bad, "flipped must be an int64 scalar, 0 or 1"))
    bad = dict(base)
    bad["in.flipped"] = ("I64", [], struct.pack("<q", 1))
    cases.append(("flipped = 1 with nce_flip_equivariance off", bad,
                  "nce_flip_equivariance is off"))
    bad = dict(base)
    dt, shape, data = bad["in.patch_ids_Y.2"]
    row = len(data) // shape[0]
    first = list(struct.unpack("<%dq" % (row // 8), data[:row]))
    first[0], first[1] = first[1], first[0]
    bad["in.patch_ids_Y.2"] = (dt, shape, struct.pack("<%dq" % len(first), *first) + data[row:])
    cases.append(("patch_ids_Y rows that differ between images", bad,
                  "patch_ids_Y.2: every image's row must be the same"))
    for what, tensors, needle in cases:
        path, outp = os.path.join(d, "bad.safetensors"), os.path.join(d, "o.safetensors")
        testlib.write_safetensors(path, tensors)
        rc, out, err = run("step", "--config", cfg_cut, "--state", path, "--prefix", "in.",
                           "--out", outp)
        check("CUT step refuses %s" % what, rc != 0 and needle in err and
              not os.path.exists(outp), "%d %s" % (rc, err))
# The cut and fastcut groups' own refusals.
for sets, needle in ((["cut.nce_layers=[8,4]"], "cut.nce_layers must be increasing"),
                     (["cut.nce_layers=[0,1,2,3,4,5,6,7,8]"], "cut.nce_layers needs 1 to 8 layers"),
                     (["fastcut.nce_layers=[]"], "fastcut.nce_layers needs 1 to 8 layers")):
    fam = sets[0].split(".")[0]
    args = ["config", "--set", 'model.family="%s"' % fam]
    for x in sets:
        args += ["--set", x]
    rc, out, err = run(*args)
    check("config refuses %s" % sets[0], rc != 0 and needle in err, "%d %s" % (rc, err))
with tempfile.TemporaryDirectory() as d:
    rc, out, err = run("verify", "--devices", "0,0", "--steps", "1", "--size", "32",
                       "--set", 'model.family="cut"', "--set", "cut.nce_layers=[0,4,99]")
    check("a CUT nce layer past G's end is refused naming G's modules",
          rc != 0 and "layer 99" in err and "G's modules are 0 to" in err, "%d %s" % (rc, err))
    rc, out, err = run("verify", "--devices", "0,0", "--steps", "1", "--size", "32",
                       "--set", 'model.family="cut"', "--set", "cut.nce_layers=[0,2]")
    check("a CUT nce layer G does not keep (a fused norm output) is refused",
          rc != 0 and "layer 2 is not a feature" in err and "cut.nce_layers" in err,
          "%d %s" % (rc, err))

# Every preset of configs/ is a valid configuration; the CUT and FastCUT
# presets carry the published settings of their family; a family's options
# are listed, and an unknown family is refused naming the choices.
CFG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs")
for name in sorted(os.listdir(CFG_DIR)):
    if name.endswith(".cfg"):
        rc, out, err = run("config", "-c", os.path.join(CFG_DIR, name))
        check("configs/%s is valid" % name, rc == 0, err)
published = {"cut_horse2zebra.cfg": ("cut", "1.0", "true", "false", "200", "200"),
             "fastcut_horse2zebra.cfg": ("fastcut", "10.0", "false", "true", "150", "50")}
for name, (fam, lam, idt, flip, ne, nd) in published.items():
    rc, out, err = run("config", "-c", os.path.join(CFG_DIR, name), "--dump")
    group = re.search(r"^%s = \{(.*?)^\};" % fam, out, re.S | re.M)
    body = group.group(1) if group else ""
    check("%s: family %s with its published settings" % (name, fam),
          rc == 0 and 'family = "%s";' % fam in out and "lambda_NCE = %s;" % lam in body and
          "nce_idt = %s;" % idt in body and "nce_flip_equivariance = %s;" % flip in body and
          "nce_layers = [0, 4, 8, 12, 16];" in body and "lr = 0.0002;" in body and
          "n_epochs = %s;" % ne in out and "n_epochs_decay = %s;" % nd in out, out[-2000:] + err)
rc, out, err = run("config", "--list")
check("config --list shows every family's options",
      rc == 0 and "model.family" in out and all("%s.%s" % (g, k) in out for g in ("cut", "fastcut")
                                                for k in ("nce_layers", "nce_T", "lambda_NCE",
                                                          "nce_idt", "nce_flip_equivariance", "lr")),
      out[-1500:])
rc, out, err = run("config", "-c", os.path.join(ROOT, "configs", "cyclegan_horse2zebra.cfg"))
body = out[out.find("cyclegan = {"):]
check("cyclegan_horse2zebra.cfg: family cyclegan with its published settings",
      rc == 0 and 'family = "cyclegan";' in out and "lambda_A = 10.0;" in body and
      "lambda_B = 10.0;" in body and "lambda_identity = 0.5;" in body and
      "pool_size = 50;" in body and 'nets = "gpu";' in body and "n_epochs = 200;" in out and
      "n_epochs_decay = 200;" in out, out[-2000:] + err)
rc, out, err = run("config", "-c", os.path.join(ROOT, "configs", "dclgan_horse2zebra.cfg"))
body = out[out.find("dclgan = {"):]
check("dclgan_horse2zebra.cfg: family dclgan with its published settings",
      rc == 0 and 'family = "dclgan";' in out and "lambda_NCE = 2.0;" in body and
      "nce_layers = [4, 8, 12, 16];" in body and "lr_F = 0.001;" in body and
      "beta1_F = 0.9;" in body and "n_epochs = 200;" in out, out[-2000:] + err)
rc, out, err = run("config", "--set", 'model.family="pix2pix"')
check("an unknown model.family is refused naming the families",
      rc != 0 and "enco|cut|fastcut|cyclegan|dclgan" in err, "%d %s" % (rc, err))

# Progress on long work: on a terminal (stderr a pseudo-terminal here) translate
# of a folder, eval, verify, bench and tune draw a line rewritten in place
# ("\r\033[K") with done/total, a rate and an ETA; without a terminal (logs,
# pipes) nothing of it, and stdout is the same either way.
def child_env(env):
    """The environment with env's updates (a None value removes the variable)."""
    e = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    return e


def run_tty(*args, env=None):
    """Runs BIN with stderr on a pseudo-terminal, stdout on a pipe; returns
    (exit code, stdout, what the terminal received)."""
    import pty
    import threading
    e = child_env(env)
    master, slave = pty.openpty()
    p = subprocess.Popen([BIN, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=slave, env=e)
    os.close(slave)
    chunks = []

    def drain():
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not b:
                break
            chunks.append(b)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        out, _ = p.communicate(timeout=600)
    finally:
        reader.join(timeout=10)
        os.close(master)
    return p.returncode, out.decode(), b"".join(chunks).decode(errors="replace")


PROGRESS = re.compile(r"\r\x1b\[K[^\r\n]*\[\d+/\d+\] \d+(\.\d)? (\w+/s|s/\w+) ETA \d+:\d\d")


def check_progress(what, args, env=None, same_stdout=True):
    rc, out, term = run_tty(*args, env=env)
    check(what + " shows a progress line with a rate and an ETA on a terminal",
          rc == 0 and PROGRESS.search(term), "exit %d: %r" % (rc, term[-1500:]))
    # bytes, not text: text mode would turn a '\r' into '\n'
    p = subprocess.run([BIN, *args], capture_output=True, env=child_env(env), timeout=600)
    rc2, out2, err2 = p.returncode, p.stdout.decode(), p.stderr.decode(errors="replace")
    check(what + " writes no progress line without a terminal",
          rc2 == 0 and "\r" not in err2 and "ETA" not in err2 and "\x1b" not in err2,
          "exit %d: %r" % (rc2, err2[-1500:]))
    if same_stdout:
        check(what + ": stdout is the same with and without a terminal", out == out2,
              "%r\n%r" % (out[-800:], out2[-800:]))
    return term + err2


with tempfile.TemporaryDirectory() as d:
    g = os.path.join(FIXDIR, "translate", "G.safetensors")
    check_progress("translate of a folder",
                   ("translate", "-m", g, "-i", os.path.join(FIXDIR, "translate", "in"),
                    "-o", os.path.join(d, "out")))
    rc, out, err = run("synth", "--out", os.path.join(d, "s"), "--size", "32", "--train", "2",
                       "--test", "2")
    check("synth writes the task eval scores", rc == 0, err)
    check_progress("eval", ("eval", "-m", g, "--data", os.path.join(d, "s")))
    check_progress("verify", ("verify", "--devices", "0,0", "--size", "24", "--steps", "2"))
    check_progress("bench --e2e", ("bench", "--e2e", "--sizes", "24", "--iters", "2",
                                   "--warmup", "0"), same_stdout=False)  # timings differ
    rc, out, term = run_tty("bench", "--e2e", "--sizes", "24", "--iters", "1", "--warmup", "0",
                            "--quiet")
    check("bench --quiet draws no progress line on a terminal",
          rc == 0 and "\x1b[K" not in term, "exit %d: %r" % (rc, term[-800:]))
    # tune: a stand-in tuner with one phase of four configurations, three
    # finished a second apart (enco-cl reads the tuner's log once a second).
    fake = os.path.join(d, "fake_tuner")
    row = 'echo "| %4d |     4 |    8   16 |   OK     12 ms |  0.20 ms |  10.0 | results match |"\n'
    result = FAKE_TUNER[FAKE_TUNER.index("cat > "):FAKE_TUNER.index("\nJSON\n") + 6]
    with open(fake, "w") as f:
        f.write("#!/bin/sh\necho \"* (1/4) Tuning main GEMM kernel (GEMMK == 0) for fixed set "
                "of parameters\"\n" + "".join(row % i + "sleep 1.1\n" for i in range(1, 4)) +
                result + row % 4)
    os.chmod(fake, 0o755)
    tenv = {"ENCO_CACHE_DIR": os.path.join(d, "c"), "ENCO_DEVICE": None}
    targs = ("tune", "--run", "--tuner", fake, "--time-limit", "60", "--size", "64x64x64")
    both = check_progress("tune --run", targs, env=tenv, same_stdout=False)
    for w in re.findall(r"work folder (/tmp/enco-tune-\w+)", both):
        shutil.rmtree(w, ignore_errors=True)

# tools/with-vendors refuses (exit 2, naming the fix) when Intel's runtime is
# not installed where it looks, or when its vendors folder is damaged.
WV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "with-vendors")
with tempfile.TemporaryDirectory() as vd:
    env = dict(os.environ, ENCO_VENDORS_DIR=vd)
    p = subprocess.run([WV, "true"], capture_output=True, text=True, env=env, timeout=60)
    check("with-vendors without the runtime exits 2 and names install-deps --vendor intel",
          p.returncode == 2 and "install-deps --vendor intel" in p.stderr,
          "exit %d: %s" % (p.returncode, p.stderr))
    os.makedirs(os.path.join(vd, "intel"))
    open(os.path.join(vd, "intel", ".installed"), "w").close()
    p = subprocess.run([WV, "true"], capture_output=True, text=True, env=env, timeout=60)
    check("with-vendors with a damaged vendors folder exits 2",
          p.returncode == 2 and "vendors folder" in p.stderr, "exit %d: %s" % (p.returncode, p.stderr))
    p = subprocess.run([WV], capture_output=True, text=True, env=env, timeout=60)
    check("with-vendors without a command exits 2 with its usage",
          p.returncode == 2 and "usage" in p.stderr, "exit %d: %s" % (p.returncode, p.stderr))

finish("{passed} passed, {failed} failed")
