#!/usr/bin/env python3
"""Data-parallel training under mpirun (issue 17): two processes on batch 1 each train the
model one process trains on batch 2 (the same weights within float rounding; EnCo's heads'
BatchNorm statistics span both processes' patches), the same two-process run twice gives the
same bits, whatever the gradient buckets, and the run folder is the first process's. Every
family: those whose iteration shares more than the gradients too (CUT's negatives from the
whole batch and DCLGAN: the batch's keys; CycleGAN's image pools: the batch's fakes).
Runs on the CPU device; both processes share it (and the machine's cores).

usage: test_dp.py ENCO_CL MPIRUN
"""
import json
import os
import struct
import sys
import tempfile

import mpitests
from testlib import check, finish, floats, tensors

BIN, MPIRUN = sys.argv[1], sys.argv[2]


def train(cfg, nproc, *extra, timeout=900):
    return mpitests.train(BIN, MPIRUN, cfg, nproc, *extra, timeout=timeout)


CONFIG = """
model = { ngf = 4; ndf = 4; n_blocks = 2; nce_layers = [3, 7, 12, 13, 17, 21]; netF_nc = 16; };
cut = { nce_layers = [0, 4, 8, 12, 13]; num_patches = 16; netF_nc = 16; };
dclgan = { nce_layers = [4, 8, 12, 13]; num_patches = 16; netF_nc = 16; };
fastcut = { nce_layers = [0, 4, 8, 12, 13]; num_patches = 16; netF_nc = 16; };
train = { n_epochs = 1; n_epochs_decay = 1; seed = 3; num_patches = 16; };
data = { root = "%(data)s"; synthetic = true; synth_train = 8; synth_test = 2;
         preprocess = "crop"; load_size = 32; crop_size = 32; threads = 1; };
run = { print_every = 1; sample_every = 0; save_every = 0; max_iterations = 3; };
"""

with tempfile.TemporaryDirectory() as tmp:
    cfg = os.path.join(tmp, "dp.cfg")
    with open(cfg, "w") as f:
        f.write(CONFIG % {"data": os.path.join(tmp, "data")})

    # ---- the same model: 2 processes x batch 1 against 1 process x batch 2 ------------
    # Every weight after 3 iterations within 1e-3 of the learning rate (an Adam step moves a
    # weight by about lr, so this says the steps agree to 0.1 %; float reassociation of the
    # summed gradients is all that differs), and every logged loss within 1e-4 relative.
    # The families whose iteration shares more than the gradients: CUT with the PatchNCE
    # negatives of the whole batch and DCLGAN (the processes gather the batch's keys), and
    # CycleGAN's image pools (every process queries its copy of the pool with the whole
    # batch's fakes; pool_size 2 fills in the first iteration and draws in the next two).
    # EnCo: its DAG draws per image of the whole batch; its default heads' BatchNorm statistics
    # summed over the processes (and LayerNorm heads, which need no statistics shared).
    variants = (("enco", "enco", []),
                ("enco_ln", "enco", ['model.prj_norm="ln"']),
                ("cut", "cut", []),
                ("cut_allneg", "cut", ["cut.nce_includes_all_negatives_from_minibatch=true"]),
                ("fastcut", "fastcut", []),
                ("cyclegan", "cyclegan", ["cyclegan.pool_size=0"]),
                ("cyclegan_pool", "cyclegan", ["cyclegan.pool_size=2"]),
                ("dclgan", "dclgan", []))
    # Under the sanitizers (tools/ci-hardening) the variants whose code the others run too
    # are left to the plain passes: every path of the shared iteration is in these four.
    if os.environ.get("ENCO_TEST_SANITIZED") == "1":
        variants = [v for v in variants if v[0] in ("enco", "cut", "cyclegan_pool", "dclgan")]
    for label, fam, sets in variants:
        fam_set = ["--set", 'model.family="%s"' % fam]
        for x in sets:
            fam_set += ["--set", x]
        one, two = os.path.join(tmp, label + "_one"), os.path.join(tmp, label + "_two")
        p1 = train(cfg, 1, *fam_set, "--set", "train.batch_size=2", "--set", 'run.dir="%s"' % one)
        p2 = train(cfg, 2, *fam_set, "--set", "train.batch_size=1", "--set", 'run.dir="%s"' % two)
        if label == "cut":
            p2_cut = p2
        check("%s: one process (batch 2) and two (batch 1 each) exit 0" % label,
              p1.returncode == 0 and p2.returncode == 0)
        if p1.returncode or p2.returncode:
            continue
        check("%s: the first process alone reports (one progress line per iteration)" % label,
              p2.stdout.count("iter 3/3") == 1 and "2 processes" in p2.stdout, p2.stdout[-800:])
        ta = tensors(os.path.join(one, "latest.safetensors"))
        tb = tensors(os.path.join(two, "latest.safetensors"))
        # Elements whose Adam step is ill-conditioned in either run (sqrt(v_hat) + eps <
        # 1000 eps, verify's rule, REPRODUCIBILITY.md), and the biases whose gradient is
        # rounding noise (a conv bias before an InstanceNorm: true gradient 0; found as a bias
        # whose first Adam moment is below 1e-3 of its weight's) move by steps near +-lr
        # whatever their gradient's rounding: they are judged at Adam's bound instead.
        def lr_of(net):
            if fam == "enco" and net in ("netG", "netF"):
                return 5e-5
            return 1e-3 if fam == "dclgan" and net.startswith("netF") else 2e-4

        def mmax(t, k):
            return max(abs(x) for x in floats(t["adam_m." + k][2]))

        def noise_bias(k):
            w = k[:-len("bias")] + "weight"
            return (k.endswith(".bias") and "adam_m." + w in ta and
                    max(mmax(ta, k), mmax(tb, k)) <= 1e-3 * min(mmax(ta, w), mmax(tb, w)))
        worst, where, compared, ill, ill_worst, total = 0.0, "", 0, 0, 0.0, 0
        for k, (dt, shape, raw) in ta.items():
            if not k.startswith("net") or dt != "F32" or "adam_v." + k not in ta:
                continue
            other = tb.get(k)
            net = k.split(".")[0]
            lr = lr_of(net)
            noise = noise_bias(k)
            key = "adam_step." + net + "."  # the checkpoint's name (a net prefix with its dot)
            steps = struct.unpack("<q", ta[key if key in ta else key[:-1]][2])[0]
            bc2 = 1 - 0.999 ** steps
            va, vb = floats(ta["adam_v." + k][2]), floats(tb["adam_v." + k][2])
            compared += 1
            for x, y, u, w in zip(floats(raw), floats(other[2]), va, vb):
                total += 1
                d = abs(x - y) / lr
                if noise or min(u, w) / bc2 < (1000e-8 - 1e-8) ** 2:
                    ill += 1
                    ill_worst = max(ill_worst, d)
                elif d > worst:
                    worst, where = d, k
        check("%s: every well-conditioned weight of the 2-process run within 1e-3 lr of the "
              "1-process run (worst %.3g lr, %s; %d tensors)" % (label, worst, where, compared),
              compared > 20 and worst <= 1e-3)
        check("%s: the ill-conditioned ones and the noise biases (%d of %d) within Adam's reach "
              "of 3 steps (worst %.2f lr)" % (label, ill, total, ill_worst),
              ill * 50 <= total and ill_worst <= 3 * 2)
        if label == "cyclegan_pool":  # both processes' fakes went into the one pool, in order
            pools = [k for k in ta if k.startswith("state.pool.")]
            pd = max((abs(x - y) for k in pools if tb.get(k, ("", None))[1] == ta[k][1]
                      for x, y in zip(floats(ta[k][2]), floats(tb[k][2]))), default=1.0)
            check("cyclegan_pool: the 2-process run's pools hold the 1-process run's images "
                  "(%s, shapes %s; worst %.2g)" % (pools, [ta[k][1] for k in pools], pd),
                  len(pools) == 2 and all(ta[k][1][0] == 2 and tb.get(k, ("", None))[1] == ta[k][1]
                                          for k in pools) and pd <= 1e-4)
        # BatchNorm buffers (EnCo's heads): the running statistics within float rounding of
        # the whole batch's (relative to the statistic's scale), the counters equal.
        stats = [k for k in ta
                 if k.startswith("net") and k.endswith((".running_mean", ".running_var"))]
        swing = max((abs(x - y) / max(abs(x), 1e-2) for k in stats
                     for x, y in zip(floats(ta[k][2]), floats(tb[k][2]))), default=0.0)
        counters = [k for k in ta if k.startswith("net") and k.endswith(".num_batches_tracked")]
        if label == "enco":
            check("enco: the heads' BatchNorm running statistics of the 2-process run within "
                  "1e-4 of the 1-process run's (worst %.2g, %d tensors)" % (swing, len(stats)),
                  len(stats) >= 6 and swing <= 1e-4)
            check("enco: num_batches_tracked the same (%d counters)" % len(counters),
                  len(counters) >= 3 and all(tb[k][2] == ta[k][2] for k in counters) and
                  all(struct.unpack("<q", ta[k][2])[0] > 0 for k in counters))
        with open(os.path.join(one, "losses.jsonl")) as f:
            la = [json.loads(x) for x in f]
        with open(os.path.join(two, "losses.jsonl")) as f:
            lb = [json.loads(x) for x in f]
        rel = max((abs(a[k] - b[k]) / max(abs(a[k]), 1e-6) for a, b in zip(la, lb)
                   for k in a if k.startswith("loss_")), default=1.0)
        check("%s: the 2-process run logs the 1-process run's losses (means over the batch) "
              "within 1e-4 (worst %.2g)" % (label, rel), len(la) == len(lb) == 3 and rel <= 1e-4)

    # ---- the same two-process run twice: bitwise -------------------------------------
    # (EnCo: with the BatchNorm statistics summed across the processes, its buffers too)
    for fam in ("cut", "enco"):
        again = os.path.join(tmp, fam + "_two_again")
        p = train(cfg, 2, "--set", 'model.family="%s"' % fam, "--set", "train.batch_size=1",
                  "--set", 'run.dir="%s"' % again)
        a = tensors(os.path.join(tmp, fam + "_two", "latest.safetensors"))
        b = tensors(os.path.join(again, "latest.safetensors")) if p.returncode == 0 else {}
        keys = [k for k in a if k.startswith(("net", "adam_"))]
        same = [k for k in keys if b.get(k, (0, 0, None))[2] == a[k][2]]
        check("%s: two processes twice give the same bits (%d of %d tensors)" %
              (fam, len(same), len(keys)), p.returncode == 0 and len(same) == len(keys))
    a = tensors(os.path.join(tmp, "cut_two", "latest.safetensors"))

    # ---- gradient buckets: the sums are element by element, so buckets of 1 KiB (summed
    # while the backward of the layers below still runs) give the bits of one bucket per net
    small = os.path.join(tmp, "cut_two_1kb")
    p = train(cfg, 2, "--set", 'model.family="cut"', "--set", "train.batch_size=1",
              "--set", "train.dp_bucket_kb=1", "--set", 'run.dir="%s"' % small)
    b = tensors(os.path.join(small, "latest.safetensors")) if p.returncode == 0 else {}
    nets = [k for k in a if k.startswith(("net", "adam_"))]

    def buckets(out):
        m = [x for x in out.splitlines() if "gradient buckets summed" in x]
        return int(m[0].split(" gradient buckets")[0].split()[-1]) if m else -1
    check("cut: 1 KiB gradient buckets (%d buckets, against %d of 4 MiB) give the bits of "
          "4 MiB ones (%d tensors)" % (buckets(p.stdout), buckets(p2_cut.stdout), len(nets)),
          p.returncode == 0 and all(b.get(k, (0, 0, None))[2] == a[k][2] for k in nets)
          and buckets(p.stdout) > buckets(p2_cut.stdout) > 0)

    # ---- resume under mpirun: bitwise the uninterrupted run --------------------------
    part = os.path.join(tmp, "cut_two_part")
    train(cfg, 2, "--set", 'model.family="cut"', "--set", "train.batch_size=1",
          "--set", 'run.dir="%s"' % part, "--set", "run.max_iterations=2")
    p = train(cfg, 2, "--set", 'model.family="cut"', "--set", "train.batch_size=1",
              "--set", 'run.dir="%s"' % part, "--resume")
    b = tensors(os.path.join(part, "latest.safetensors")) if p.returncode == 0 else {}
    keys = [k for k in a if k.startswith(("net", "adam_", "state."))]
    diff = [k for k in keys if b.get(k, (0, 0, None))[2] != a[k][2]]
    check("cut: two processes, 2 iterations and --resume to 3, equal the uninterrupted run bit "
          "for bit (%d tensors)" % len(keys), p.returncode == 0 and not diff and len(keys) > 100,
          str(diff[:3]))

finish()
