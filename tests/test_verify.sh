#!/bin/sh
# Cross-implementation reproducibility in CI: `enco-cl verify` between PoCL
# and Oclgrind (two different OpenCL implementations, both on this machine's
# CPU), PoCL against itself (must be bitwise identical), and PoCL against
# PoCL running a slightly wrong kernel (--kernel-dir-b), which must fail.
# Both ICDs are registered in a private vendors folder for this process.
set -u
bin=$1
src_cl=$(cd "$(dirname "$0")/../cl" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pocl=$(cat /etc/OpenCL/vendors/pocl.icd 2>/dev/null)
if [ -z "$pocl" ]; then
    echo "FAIL: no PoCL ICD in /etc/OpenCL/vendors" >&2
    exit 1
fi
oclgrind_icd=""
for f in /usr/lib/oclgrind/liboclgrind-rt-icd.so /usr/lib/*/oclgrind/liboclgrind-rt-icd.so; do
    [ -f "$f" ] && oclgrind_icd=$f && break
done
if [ -z "$oclgrind_icd" ]; then
    echo "FAIL: Oclgrind's ICD library is not installed (apt-get install oclgrind)" >&2
    exit 1
fi
echo "$pocl" > "$tmp/pocl.icd"
echo "$oclgrind_icd" > "$tmp/oclgrind.icd"
export OCL_ICD_VENDORS="$tmp"
unset ENCO_DEVICE

fail=0
check() { # name, json file
    if grep -q '"pass": true, "groups"' "$2"; then
        echo "ok   $1"
    else
        echo "FAIL $1"; cat "$2"; fail=$((fail + 1))
    fi
}

"$bin" verify --devices pthread,pthread --steps 3 --size 32 --json "$tmp/same.json" || true
check "PoCL twice: bitwise identical" "$tmp/same.json"
grep -q '"bitwise": true' "$tmp/same.json" || { echo "FAIL same device not bitwise"; fail=$((fail + 1)); }
grep -q '"differ": 0, "unexplained": 0' "$tmp/same.json" || {
    echo "FAIL same device: the patch picks differ"; fail=$((fail + 1)); }
grep -q '"replays": 0, "ill_conditioned": {[^}]*}, "loss_rel_by_iteration": \[\[0, 2e-06\], \[0, 0.002\], \[0, 0.01\]\]' \
    "$tmp/same.json" || {
    echo "FAIL same device: not every iteration's losses judged, or not identical"; fail=$((fail + 1)); }
# A run of N >= 2 also judges the state after iteration 1 (five groups).
[ "$(grep -o '"name": "[^"]* after iteration 1", [^}]*"pass": true' "$tmp/same.json" | wc -l)" -eq 5 ] || {
    echo "FAIL same device: the state after iteration 1 not judged in five passing groups"
    fail=$((fail + 1)); }

"$bin" verify --devices oclgrind,pthread --steps 1 --size 24 --json "$tmp/cross.json" || true
check "Oclgrind vs PoCL within tolerances" "$tmp/cross.json"
grep -q '"device_a": "Oclgrind Simulator"' "$tmp/cross.json" || {
    echo "FAIL the Oclgrind device was not used"; fail=$((fail + 1)); }
grep -q '"compared": [1-9][0-9]*, "differ": [0-9]*, "unexplained": 0' "$tmp/cross.json" || {
    echo "FAIL Oclgrind vs PoCL: patch picks not compared, or differ beyond near-ties"
    fail=$((fail + 1)); }

# The other families of the paper's comparison: the same device twice bit
# for bit, and Oclgrind against PoCL within the tolerances.
for fam in cut fastcut cyclegan dclgan; do
    "$bin" verify --devices pthread,pthread --steps 3 --size 32 --set "model.family=\"$fam\"" \
        --json "$tmp/same_$fam.json" || true
    check "$fam: PoCL twice bitwise identical" "$tmp/same_$fam.json"
    grep -q '"bitwise": true' "$tmp/same_$fam.json" || {
        echo "FAIL $fam: same device not bitwise"; fail=$((fail + 1)); }
    grep -q '"family": "'$fam'"' "$tmp/same_$fam.json" || {
        echo "FAIL $fam: the report does not name the family"; fail=$((fail + 1)); }
    # Under the sanitizers (tools/ci-hardening sets ENCO_TEST_SANITIZED) one
    # family's Oclgrind run covers verify's cross-device code; the others'
    # run in the plain passes (each is minutes under ASan).
    if [ -n "${ENCO_TEST_SANITIZED:-}" ] && [ "$fam" != cut ]; then
        continue
    fi
    "$bin" verify --devices oclgrind,pthread --steps 1 --size 24 --set "model.family=\"$fam\"" \
        --json "$tmp/cross_$fam.json" || true
    check "$fam: Oclgrind vs PoCL within tolerances" "$tmp/cross_$fam.json"
done

# Oclgrind reports itself as a GPU too, so it takes the GPU paths (split-K
# weight gradients, per-pixel blur kernels, the column input gradient where
# cout >= cin: other summation orders) and the run above agrees only within
# tolerances. With those paths pinned both implementations run the same
# arithmetic and must agree bit for bit. PoCL still runs its CPU kernels
# (column matrices packed or read from x inside the GEMM, per-plane folds,
# norm and activation kernels), which give the bits of the portable ones:
# this checks that too.
ENCO_CONV_SPLITK=0 ENCO_BLUR_ROWS=0 ENCO_CONV_STRIP=0 ENCO_CONV_BWD_FLIP=1 "$bin" verify \
    --devices oclgrind,pthread --steps 1 --size 24 --json "$tmp/cross_same.json" || true
check "Oclgrind vs PoCL, same arithmetic (ENCO_CONV_SPLITK=0 ENCO_BLUR_ROWS=0 ENCO_CONV_STRIP=0 ENCO_CONV_BWD_FLIP=1)" \
    "$tmp/cross_same.json"
grep -q '"bitwise": true' "$tmp/cross_same.json" || {
    echo "FAIL Oclgrind vs PoCL with the same kernels not bitwise identical"; fail=$((fail + 1)); }

# A real bug: device B reads a copy of the kernels whose norms scale rstd by
# 1.001 (a slightly wrong normalisation). On one iteration it moves the
# losses by about 3e-5 relative (tolerance 2e-6) and well-conditioned G and F
# weights by 2 lr (tolerance 2e-4 lr), which REPRODUCIBILITY.md's tolerances
# must catch. The unmodified copy, read the
# same way, passes bit for bit: the failure is the perturbation's.
cp -r "$src_cl" "$tmp/cl_same"
cp -r "$src_cl" "$tmp/cl_bug"
sed -i 's|float rs = 1.0f / sqrt(var + NORM_EPS);|float rs = 1.001f / sqrt(var + NORM_EPS);|' \
    "$tmp/cl_bug/norm.cl"
if [ "$(grep -c '1.001f / sqrt' "$tmp/cl_bug/norm.cl")" -lt 2 ]; then
    echo "FAIL the perturbation was not applied to cl/norm.cl"; fail=$((fail + 1))
fi
"$bin" verify --devices pthread,pthread --steps 1 --size 32 --kernel-dir-b "$tmp/cl_same" \
    --json "$tmp/copy.json" || true
check "PoCL vs PoCL reading an unmodified copy of the kernels (--kernel-dir-b)" "$tmp/copy.json"
grep -q '"same_device": false, "bitwise": true' "$tmp/copy.json" || {
    echo "FAIL the unmodified kernel copy: not judged by tolerances, or not bitwise"
    fail=$((fail + 1)); }
if "$bin" verify --devices pthread,pthread --steps 1 --size 32 --kernel-dir-b "$tmp/cl_bug" \
    --json "$tmp/bug.json" > "$tmp/bug.out" 2>&1; then
    echo "FAIL a perturbed norm kernel passed verify"; cat "$tmp/bug.out"; fail=$((fail + 1))
elif grep -q '"pass": false, "groups": \[{"name": "losses", [^}]*"pass": false' "$tmp/bug.json" &&
    grep -q '"name": "G weights", [^}]*"pass": false' "$tmp/bug.json"; then
    echo "ok   a perturbed norm kernel (rstd x 1.001) fails verify on its losses and G weights"
else
    echo "FAIL a perturbed norm kernel: not failed by the losses and G weights"; cat "$tmp/bug.json"
    fail=$((fail + 1))
fi
# A second bug, in the optimiser: device B's Adam kernel scales the bias
# correction of v by 1.001 (every well-conditioned update grows by 0.1 %,
# about 1e-3 lr). The losses move by only 5e-7 relative (G's losses see the
# updated D), within their tolerance; the weights must fail (tolerance
# 2e-4 lr, REPRODUCIBILITY.md; measured 1e-3 lr).
cp -r "$src_cl" "$tmp/cl_adam"
sed -i 's|const float denom = sqrt(vi) / bc2_sqrt + eps;|const float denom = sqrt(vi) / (bc2_sqrt * 1.001f) + eps;|' \
    "$tmp/cl_adam/adam.cl"
grep -q 'bc2_sqrt \* 1.001f' "$tmp/cl_adam/adam.cl" || {
    echo "FAIL the perturbation was not applied to cl/adam.cl"; fail=$((fail + 1)); }
if "$bin" verify --devices pthread,pthread --steps 1 --size 32 --kernel-dir-b "$tmp/cl_adam" \
    --json "$tmp/adam.json" > "$tmp/adam.out" 2>&1; then
    echo "FAIL a perturbed Adam kernel passed verify"; cat "$tmp/adam.out"; fail=$((fail + 1))
elif grep -q '"name": "G weights", [^}]*"pass": false' "$tmp/adam.json" &&
    grep -q '"name": "F weights", [^}]*"pass": false' "$tmp/adam.json"; then
    echo "ok   a perturbed Adam kernel (bias correction x 1.001) fails verify on its G and F weights"
else
    echo "FAIL a perturbed Adam kernel: not failed by the G and F weights"; cat "$tmp/adam.json"
    fail=$((fail + 1))
fi
# The same bug over three iterations: after iteration 2 the weights are
# judged at Adam's bound only (REPRODUCIBILITY.md), which it stays within,
# but the weights after iteration 1 are kept and judged as above and must
# fail, with the very differences of the one-iteration run (iteration 1's
# weights of both runs are those of the one-iteration runs).
if "$bin" verify --devices pthread,pthread --steps 3 --size 32 --kernel-dir-b "$tmp/cl_adam" \
    --json "$tmp/adam3.json" > "$tmp/adam3.out" 2>&1; then
    echo "FAIL a perturbed Adam kernel passed verify --steps 3"; cat "$tmp/adam3.out"; fail=$((fail + 1))
else
    diff3=0
    for net in G F; do
        one=$(sed -n "s/.*\"name\": \"$net weights\", \"max_abs\": \([^,]*\),.*/\1/p" "$tmp/adam.json")
        three=$(sed -n "s/.*\"name\": \"$net weights after iteration 1\", \"max_abs\": \([^,]*\),.*/\1/p" \
            "$tmp/adam3.json")
        grep -q "\"name\": \"$net weights after iteration 1\", [^}]*\"pass\": false" "$tmp/adam3.json" &&
            [ -n "$one" ] && [ "$one" = "$three" ] || diff3=1
    done
    if [ $diff3 -eq 0 ]; then
        echo "ok   a perturbed Adam kernel fails verify --steps 3 on the G and F weights after iteration 1 (as in --steps 1)"
    else
        echo "FAIL a perturbed Adam kernel, 3 iterations: not failed by G and F weights after iteration 1 as in 1"
        cat "$tmp/adam3.json"; fail=$((fail + 1))
    fi
fi
if "$bin" verify --devices pthread,pthread --kernel-dir-b "$tmp/none" > "$tmp/out" 2>&1; then
    echo "FAIL a missing --kernel-dir-b folder was accepted"; fail=$((fail + 1))
else
    grep -q "cannot read kernel source" "$tmp/out" && echo "ok   missing kernel folder refused" ||
        { echo "FAIL no kernel-source error in: $(cat "$tmp/out")"; fail=$((fail + 1)); }
fi

# A bad selection is refused with the device list.
if "$bin" verify --devices pthread,no-such-device > "$tmp/out" 2>&1; then
    echo "FAIL a missing device was accepted"; fail=$((fail + 1))
else
    grep -q "available devices" "$tmp/out" && echo "ok   missing device refused" ||
        { echo "FAIL no device list in: $(cat "$tmp/out")"; fail=$((fail + 1)); }
fi
echo "$fail failed"
[ $fail -eq 0 ]
