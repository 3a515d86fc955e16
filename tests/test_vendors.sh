#!/bin/sh
# Reproducibility between two OpenCL vendors on this machine's CPU: PoCL and
# Intel's OpenCL CPU runtime (tools/install-deps --vendor intel). Run it under
# tools/with-vendors, which makes both visible:
#   tools/with-vendors tests/test_vendors.sh build/enco-cl
# (tools/run-tests --device intel does). Checks that both devices pass the
# self check, that `enco-cl verify` finds PoCL and Intel within the
# tolerances of REPRODUCIBILITY.md for 1 and 3 iterations, with the tiny model
# at 32x32 and the demo model (configs/demo.cfg) at 64x64, CUT and FastCUT
# on the tiny model, and that Intel
# trains bit for bit the same twice.
# Devices are named by platform: a PoCL device on an Intel CPU has "Intel" in
# its device name, so "intel" alone could select PoCL.
set -u
bin=${1:?usage: tests/test_vendors.sh ENCO_CL_BINARY}
src=$(cd "$(dirname "$0")/.." && pwd)
pocl="Portable Computing Language"
intel="Intel(R) OpenCL"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset ENCO_DEVICE
passed=0 fail=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

"$bin" devices > "$tmp/devices" 2>&1
if ! grep -q "platform: *$pocl" "$tmp/devices" || ! grep -q "platform: *Intel(R) OpenCL" "$tmp/devices"; then
    cat "$tmp/devices"
    echo "FAIL PoCL and Intel's OpenCL runtime must both be visible: run this under tools/with-vendors"
    exit 1
fi
if "$bin" devices --check > "$tmp/check" 2>&1 && [ "$(grep -c 'check SGEMM: *pass' "$tmp/check")" -ge 2 ]; then
    ok "devices --check: kernel and SGEMM pass on PoCL and Intel"
else
    cat "$tmp/check"; bad "devices --check"
fi

# verify NAME STEPS [ARGS...]: PoCL vs Intel must pass, the picks may differ
# only at near-ties, and the losses of every iteration are judged (one entry
# per iteration in loss_rel_by_iteration).
verify() {
    name=$1 steps=$2
    shift 2
    json=$tmp/$(echo "$name" | tr -c 'a-z0-9\n' _).json
    "$bin" verify --devices "$pocl,$intel" --steps "$steps" "$@" --json "$json" > "$tmp/out" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && grep -q '"same_device": false, "bitwise": [a-z]*, "pass": true' "$json" &&
        grep -q '"compared": [1-9][0-9]*, "differ": [0-9]*, "unexplained": 0' "$json" &&
        [ "$(sed -n 's/.*"loss_rel_by_iteration": \[\(.*\)\]}$/\1/p' "$json" | grep -o '\[[^]]*\]' |
            wc -l)" -eq "$steps" ]; then
        ok "$name"
        grep -E '^  [a-zA-Z]' "$tmp/out" | sed 's/^/     /'
    else
        cat "$tmp/out" "$json" 2>/dev/null; bad "$name (exit status $rc)"
    fi
}
verify "PoCL vs Intel, tiny model, 32x32, 1 iteration" 1
verify "PoCL vs Intel, tiny model, 32x32, 3 iterations" 3
verify "PoCL vs Intel, demo model, 64x64, 1 iteration" 1 -c "$src/configs/demo.cfg" --size 64
verify "PoCL vs Intel, demo model, 64x64, 3 iterations" 3 -c "$src/configs/demo.cfg" --size 64
# The other families: CUT and FastCUT on the tiny model.
verify "PoCL vs Intel, CUT, tiny model, 32x32, 3 iterations" 3 --set 'model.family="cut"'
verify "PoCL vs Intel, FastCUT, tiny model, 32x32, 3 iterations" 3 --set 'model.family="fastcut"'

# Run to run on Intel: no nondeterminism (TBB's scheduling included).
"$bin" verify --devices "$intel,$intel" --steps 3 -c "$src/configs/demo.cfg" --size 64 \
    --json "$tmp/intel_twice.json" > "$tmp/out" 2>&1
if grep -q '"same_device": true, "bitwise": true, "pass": true' "$tmp/intel_twice.json" 2>/dev/null; then
    ok "Intel twice, demo model, 64x64, 3 iterations: bitwise identical"
else
    cat "$tmp/out" "$tmp/intel_twice.json" 2>/dev/null; bad "Intel twice not bitwise identical"
fi
echo "$passed passed, $fail failed"
[ $fail -eq 0 ]
