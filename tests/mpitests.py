"""What the data-parallel tests (tests/test_dp*.py) share beyond tests/testlib.py: the
environment mpirun needs on a CI machine and `enco-cl train` on N processes. Imported from the
tests' folder (the running script's)."""
import os
import subprocess
import sys

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

