"""What the data-parallel tests (tests/test_dp*.py) share: the tally of their checks, the
environment mpirun needs on a CI machine, `enco-cl train` on N processes, and reading a
safetensors checkpoint. Imported from the tests' folder (the running script's)."""
import json
import os
import struct
import subprocess
import sys

_tally = {"checks": 0, "failures": 0}


def check(name, cond, detail=""):
    """Prints ok / FAIL for one named check; a failure is counted and shows detail."""
    _tally["checks"] += 1
    if cond:
        print("ok   " + name)
    else:
        _tally["failures"] += 1
        print("FAIL " + name + (": " + detail if detail else ""))


def finish():
    """Prints the tally and exits 1 when a check failed."""
    print("%d checks, %d failed" % (_tally["checks"], _tally["failures"]))
    sys.exit(1 if _tally["failures"] else 0)


# CI runs as root, two processes on 2 cores: mpirun needs both allowed.
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
# Under AddressSanitizer (tools/ci-hardening): Open MPI's never-freed MPI_Init state is
# suppressed by library name (tests/fuzz/lsan.supp), which needs full unwinding, as in
# tests/test_dist.sh.
if "ASAN_OPTIONS" in MPI_ENV or "LSAN_OPTIONS" in MPI_ENV:
    MPI_ENV["ASAN_OPTIONS"] = (MPI_ENV.get("ASAN_OPTIONS", "") +
                               ":fast_unwind_on_malloc=0").lstrip(":")


def train(binary, mpirun, cfg, nproc, *extra, timeout=900, env=None, quiet=False):
    """enco-cl train -c cfg EXTRA, under mpirun -np nproc when nproc > 1; prints the output's
    tail when it fails (unless quiet: a failure the test expects)."""
    cmd = [binary, "train", "-c", cfg, *extra]
    if nproc > 1:
        cmd = [mpirun, "--oversubscribe", "-np", str(nproc)] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=env or MPI_ENV)
    if p.returncode != 0 and not quiet:
        sys.stdout.write(p.stdout[-1500:] + p.stderr[-2000:])
    return p


def tensors(path):
    """name -> (dtype, shape, raw bytes) of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = (v["dtype"], v["shape"], data[8 + n + b:8 + n + e])
    return out


def floats(raw):
    return struct.unpack("<%df" % (len(raw) // 4), raw)
