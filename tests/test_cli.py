#!/usr/bin/env python3
"""Runs the enco-cl binary as a user would and checks output and exit codes."""
import os
import re
import subprocess
import sys
import tempfile

BIN = sys.argv[1]
failures = 0
checks = 0


def run(*args, env=None):
    e = dict(os.environ)
    e.pop("ENCO_DEVICE", None)
    if env:
        e.update(env)
    p = subprocess.run([BIN, *args], capture_output=True, text=True, env=e, timeout=600)
    return p.returncode, p.stdout, p.stderr


def check(name, cond, detail=""):
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print("FAIL %s %s" % (name, detail))
    else:
        print("ok   %s" % name)


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
    # our self-test program, plus the GEMM kernel on CPU devices (gemm_tile)
    check("cache shows entries", rc == 0 and re.search(r"entries:\s+[12] ", out), out + err)
    rc, out, err = run("cache", "--clear", env=env)
    check("cache --clear", rc == 0 and re.search(r"removed [12] cached", out), out + err)
    rc, out, err = run("cache", env=env)
    check("cache empty after clear", rc == 0 and "entries:      0" in out, out + err)

print("%d passed, %d failed" % (checks - failures, failures))
sys.exit(1 if failures else 0)
