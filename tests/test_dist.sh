#!/bin/sh
# The MPI seam's test (test_dist) alone, as a single rank, then under
# mpirun with 1, 2 and 3 ranks on this host (oversubscribed: CI has 2
# cores). Runs as root too (CI does): Open MPI refuses root unless told.
# Each mpirun is bounded in time, so a rank that stops while the others wait
# in a collective fails the test instead of hanging it.
# Usage: test_dist.sh TEST_DIST_EXE MPIRUN
set -u
exe=$1
mpirun=${2:-}
if [ -z "$mpirun" ]; then
    echo "FAIL: built with MPI but no mpirun found (Debian: apt-get install openmpi-bin)" >&2
    exit 1
fi
fail=0

echo "== alone (one rank, no launcher)"
if env -u OMPI_COMM_WORLD_SIZE -u PMI_SIZE -u PMIX_RANK "$exe" --expect-size 1; then
    echo "ok   alone"
else
    echo "FAIL alone"; fail=$((fail + 1))
fi

set --
if "$mpirun" --version 2>/dev/null | grep -q "Open MPI"; then
    set -- --oversubscribe
    if [ "$(id -u)" -eq 0 ]; then
        set -- "$@" --allow-run-as-root
    fi
fi
# In the sanitizer build (tools/ci-hardening): what Open MPI never frees is
# suppressed by library name (tests/fuzz/lsan.supp), but most of it comes
# from components that MPI_Finalize unloads; full unwinding makes each
# stack reach the libmpi call above them. Ignored by builds without ASan.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
export ASAN_OPTIONS
for np in 1 2 3; do
    echo "== mpirun -np $np"
    if timeout 120 "$mpirun" "$@" -np "$np" "$exe" --expect-size "$np"; then
        echo "ok   mpirun -np $np"
    else
        echo "FAIL mpirun -np $np (status $?)"; fail=$((fail + 1))
    fi
done
[ "$fail" -eq 0 ]
