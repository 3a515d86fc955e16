#!/usr/bin/env python3
"""enco-cl test: the results tree of CUT's test.py, checked on names, sizes and values.

With the generator of tests/fixtures/translate (a checkpoint carrying its configuration) on a
small dataset written here (sides that are and are not multiples of 4, a name that needs
escaping in a URL, a BMP, a file that is not an image):

1. the tree is RESULTS/NAME/test_latest/images/{real_A,fake_B,real_B}/<input stem>.png, each
   folder holding exactly one file per input image;
2. sizes are the inputs' rounded to multiples of 4; real_A holds the input's pixels (where no
   resize applies); fake_B holds the values 'enco-cl translate' writes for the same file;
   real_B holds testB's i-th image (sorted, repeated) beside the i-th input, as CUT pairs them;
3. index.html has a header and one row per image, in input order, with relative links to every
   image, each of which exists;
4. a run folder works (its latest.safetensors, the folder's name as NAME; --epoch picks another
   file and names test_EPOCH); --num-test keeps the first N and removes the earlier run's extra
   files; without testB there is no real_B; CUT's valA fallback;
5. every bad input is refused with a non-zero exit and its message, and (before any image is
   made) nothing is created; a run that fails part-way leaves no index.html.
"""
import html.parser
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import urllib.parse

from testlib import check, finish, png_pixels, tensors, write_png, write_safetensors

BIN = sys.argv[1]
FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "translate")
CKPT = os.path.join(FIX, "G.safetensors")
LABELS = ["real_A", "fake_B", "real_B"]


def run(*args):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout, p.stderr


def pattern(w, h, seed):
    return bytes((x * 7 + y * 13 + c * 50 + seed * 31) % 256
                 for y in range(h) for x in range(w) for c in range(3))


def write_bmp(path, w, h, rgb):
    """24-bit BMP, rows bottom-up, BGR, padded to 4 bytes."""
    stride = (w * 3 + 3) // 4 * 4
    rows = b""
    for y in reversed(range(h)):
        line = bytearray()
        for x in range(w):
            r, g, b = rgb[(y * w + x) * 3:(y * w + x) * 3 + 3]
            line += bytes((b, g, r))
        rows += bytes(line) + b"\0" * (stride - w * 3)
    head = struct.pack("<2sIHHI", b"BM", 54 + len(rows), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(rows), 2835, 2835, 0, 0)
    with open(path, "wb") as f:
        f.write(head + info + rows)


def pngs(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".png")) if os.path.isdir(d) else []


class Index(html.parser.HTMLParser):
    """Headers, and per table row the (href, img src, label) of each cell."""

    def __init__(self):
        super().__init__()
        self.headers, self.rows = [], []
        self.in_h3 = False
        self.href = self.src = None
        self.after_img = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "h3":
            self.in_h3 = True
            self.headers.append("")
        elif tag == "tr":
            self.rows.append([])
        elif tag == "a":
            self.href = a.get("href")
        elif tag == "img":
            self.src = a.get("src")
        elif tag == "br" and self.href is not None:
            self.after_img = True

    def handle_endtag(self, tag):
        if tag == "h3":
            self.in_h3 = False

    def handle_data(self, data):
        if self.in_h3:
            self.headers[-1] += data
        elif self.after_img and data.strip():
            self.rows[-1].append((self.href, self.src, data.strip()))
            self.href = self.src = None
            self.after_img = False


def check_index(what, web, names, labels):
    path = os.path.join(web, "index.html")
    if not os.path.isfile(path):
        check("%s: index.html written" % what, False, path)
        return
    p = Index()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    stems = [n[:-4] for n in names]
    check("%s: index.html has one header per image, in input order" % what, p.headers == stems,
          "%s vs %s" % (p.headers, stems))
    check("%s: index.html has one row per image" % what, len(p.rows) == len(names),
          "%d rows for %d images" % (len(p.rows), len(names)))
    bad = []
    for name, row in zip(names, p.rows):
        if [c[2] for c in row] != labels:
            bad.append("row of %s has labels %s" % (name, [c[2] for c in row]))
            continue
        for href, src, lab in row:
            want = "images/%s/%s" % (lab, name)
            for link in (href, src):
                # a relative URL with no scheme, query or fragment ('#' in a name must be
                # escaped) whose path, unescaped, is the file
                u = urllib.parse.urlsplit(link or "")
                rel = urllib.parse.unquote(u.path)
                if (link is None or u.scheme or u.netloc or u.query or u.fragment
                        or link.startswith("/") or rel != want
                        or not os.path.isfile(os.path.join(web, rel))):
                    bad.append("%s: link %r (want %s)" % (name, link, want))
    check("%s: every cell links its image relatively (%s), and each exists" % (
        what, ", ".join(labels)), not bad, "; ".join(bad[:4]))


def main():
    with tempfile.TemporaryDirectory(prefix="enco-results-") as tmp:
        root = os.path.join(tmp, "data")
        ta, tb = os.path.join(root, "testA"), os.path.join(root, "testB")
        os.makedirs(ta)
        os.makedirs(tb)
        # inputs: (file, w, h) -> saved as stem.png at the rounded size
        inputs = [("0000.png", 32, 32), ("odd size #1.png", 30, 26), ("wide.bmp", 24, 40)]
        pixels = {}
        for i, (f, w, h) in enumerate(inputs):
            px = pattern(w, h, i)
            pixels[f] = px
            if f.endswith(".bmp"):
                write_bmp(os.path.join(ta, f), w, h, px)
            else:
                write_png(os.path.join(ta, f), w, h, 2, px)
        with open(os.path.join(ta, "notes.txt"), "w") as f:
            f.write("not an image\n")
        targets = [("b0.png", 32, 32), ("b1.png", 20, 20)]
        for i, (f, w, h) in enumerate(targets):
            write_png(os.path.join(tb, f), w, h, 2, pattern(w, h, 10 + i))
        order = sorted(f for f, _, _ in inputs)  # CUT's sorted(paths)
        names = [os.path.splitext(f)[0] + ".png" for f in order]
        size = {os.path.splitext(f)[0] + ".png": (w, h) for f, w, h in inputs}
        rounded = {"0000.png": (32, 32), "odd size #1.png": (32, 24), "wide.png": (24, 40)}

        # what translate writes for the same files
        tr_out = os.path.join(tmp, "translated")
        rc, _, se = run("translate", "-m", CKPT, "-i", ta, "-o", tr_out)
        check("translate of testA exits 0", rc == 0, se)

        # 1-3: a checkpoint file
        res = os.path.join(tmp, "results")
        rc, so, se = run("test", "-m", CKPT, "--data", root, "--name", "exp", "--results-dir", res)
        check("test with a checkpoint file exits 0", rc == 0, se)
        web = os.path.join(res, "exp", "test_latest")
        check("the tree has images/{real_A,fake_B,real_B} and index.html only",
              sorted(os.listdir(web)) == ["images", "index.html"]
              and sorted(os.listdir(os.path.join(web, "images"))) == sorted(LABELS),
              str(os.listdir(web)))
        for lab in LABELS:
            got = pngs(os.path.join(web, "images", lab))
            check("%s holds one PNG per input, named after it" % lab, got == sorted(names),
                  "%s vs %s" % (got, sorted(names)))
        check("the file that is not an image is skipped with a note", "skipped 1 file" in se, se)
        for n in names:
            ra = png_pixels(os.path.join(web, "images", "real_A", n))
            fb = png_pixels(os.path.join(web, "images", "fake_B", n))
            tv = png_pixels(os.path.join(tr_out, n))
            w, h = rounded[n]
            check("%s: real_A and fake_B are %dx%d RGB (input %dx%d)" % (n, w, h, *size[n]),
                  ra[:3] == (w, h, 3) and fb[:3] == (w, h, 3),
                  "real_A %s, fake_B %s" % (ra[:3], fb[:3]))
            src = [f for f in order if os.path.splitext(f)[0] + ".png" == n][0]
            if size[n] == rounded[n]:
                check("%s: real_A holds the input's pixels" % n, ra[3] == pixels[src])
            else:
                check("%s: real_A is the resized input, not the file" % n,
                      len(ra[3]) == w * h * 3 and ra[3] != pixels[src][:w * h * 3])
            diff = sum(a != b for a, b in zip(fb[3], tv[3]))
            check("%s: fake_B equals translate's output value for value" % n,
                  fb[:3] == tv[:3] and diff == 0, "%d values differ" % diff)
        tpx = {}
        for f, w, h in targets:
            tpx[f] = (w, h, 3, pattern(w, h, 10 + targets.index((f, w, h))))
        tnames = sorted(f for f, _, _ in targets)
        for i, n in enumerate(names):
            rb = png_pixels(os.path.join(web, "images", "real_B", n))
            want = tpx[tnames[i % len(tnames)]]
            check("real_B/%s is testB's image %d (%s), as CUT pairs them" % (
                n, i % len(tnames), tnames[i % len(tnames)]), rb == want,
                "got %dx%d" % rb[:2])
        check_index("checkpoint file", web, names, LABELS)
        fake_bytes = {n: png_pixels(os.path.join(web, "images", "fake_B", n)) for n in names}

        # 4: --num-test keeps the first N; the earlier run's extra images go
        rc, _, se = run("test", "-m", CKPT, "--data", root, "--name", "exp", "--results-dir", res,
                        "--num-test", "2")
        check("--num-test 2 exits 0 and says how many it left out",
              rc == 0 and "first 2 of 3" in se, se)
        for lab in LABELS:
            check("--num-test 2: %s holds the first two inputs only" % lab,
                  pngs(os.path.join(web, "images", lab)) == sorted(names[:2]),
                  str(pngs(os.path.join(web, "images", lab))))
        check("--num-test 2: the removal of the earlier run's images is said",
              "removed 3 images of an earlier run" in se, se)
        check_index("--num-test 2", web, names[:2], LABELS)

        # a run folder: its latest.safetensors, its name as NAME; --epoch
        runs = os.path.join(tmp, "runs", "h2z")
        os.makedirs(runs)
        shutil.copy(CKPT, os.path.join(runs, "latest.safetensors"))
        res2 = os.path.join(tmp, "results2")
        rc, _, se = run("test", "-m", runs + "/", "--data", root, "--results-dir", res2,
                        "--num-test", "all")
        web2 = os.path.join(res2, "h2z", "test_latest")
        check("a run folder gives RESULTS/<its name>/test_latest", rc == 0 and os.path.isdir(web2),
              se)
        same = all(png_pixels(os.path.join(web2, "images", "fake_B", n)) == fake_bytes[n]
                   for n in names) if rc == 0 else False
        check("... from its latest.safetensors (the same fake_B values)", same)
        check_index("run folder", web2, names, LABELS)
        shutil.copy(CKPT, os.path.join(runs, "e5.safetensors"))
        rc, _, se = run("test", "-m", runs, "--data", root, "--results-dir", res2, "--epoch", "e5")
        check("--epoch e5 reads e5.safetensors into test_e5",
              rc == 0 and pngs(os.path.join(res2, "h2z", "test_e5", "images", "fake_B"))
              == sorted(names), se)

        # no testB: real_A and fake_B only; an earlier run's real_B goes
        root2 = os.path.join(tmp, "onlyA")
        shutil.copytree(ta, os.path.join(root2, "testA"))
        rc, _, se = run("test", "-m", CKPT, "--data", root2, "--name", "exp", "--results-dir", res)
        check("without testB: exits 0 and says real_B is not written",
              rc == 0 and "real_B not written" in se, se)
        check("without testB: no real_B folder (the earlier run's removed)",
              sorted(os.listdir(os.path.join(web, "images"))) == ["fake_B", "real_A"],
              str(os.listdir(os.path.join(web, "images"))))
        check_index("without testB", web, names, LABELS[:2])

        # CUT's fallback: phase test with valA but no testA; --phase names the folders
        root3 = os.path.join(tmp, "val")
        shutil.copytree(ta, os.path.join(root3, "valA"))
        rc, _, se = run("test", "-m", CKPT, "--data", root3, "--name", "v", "--results-dir", res)
        check("no testA but valA: valA is translated into test_latest (as CUT)",
              rc == 0 and pngs(os.path.join(res, "v", "test_latest", "images", "fake_B"))
              == sorted(names), se)
        rc, _, se = run("test", "-m", CKPT, "--data", root3, "--name", "v", "--results-dir", res,
                        "--phase", "val")
        check("--phase val reads valA into val_latest",
              rc == 0 and pngs(os.path.join(res, "v", "val_latest", "images", "real_A"))
              == sorted(names), se)

        # 5: refusals. Each: exit code, message, and no results folder made.
        junk = os.path.join(tmp, "junk.safetensors")
        with open(junk, "wb") as f:
            f.write(b"not a checkpoint")
        empty_run = os.path.join(tmp, "runs", "empty")
        os.makedirs(empty_run)
        no_test = os.path.join(tmp, "notest")
        os.makedirs(os.path.join(no_test, "trainA"))
        empty = os.path.join(tmp, "empty")
        os.makedirs(os.path.join(empty, "testA"))
        with open(os.path.join(empty, "testA", "readme.txt"), "w") as f:
            f.write("x")
        clash = os.path.join(tmp, "clash")
        os.makedirs(os.path.join(clash, "testA"))
        write_png(os.path.join(clash, "testA", "a.png"), 8, 8, 2, pattern(8, 8, 0))
        write_bmp(os.path.join(clash, "testA", "a.bmp"), 8, 8, pattern(8, 8, 1))
        afile = os.path.join(tmp, "a-file")
        with open(afile, "w") as f:
            f.write("x")
        fresh = os.path.join(tmp, "fresh")
        base = ["--data", root, "--results-dir", fresh]
        cases = [
            ("a missing checkpoint", ["-m", os.path.join(tmp, "no.safetensors"), "--name", "x"]
             + base, 1, "no.safetensors: No such file"),
            ("a run folder without latest.safetensors", ["-m", empty_run] + base, 1,
             "has no checkpoint latest.safetensors"),
            ("a run folder without the --epoch file", ["-m", runs, "--epoch", "e9"] + base, 1,
             "has no checkpoint e9.safetensors"),
            ("a file that is no checkpoint", ["-m", junk, "--name", "x"] + base, 1,
             "junk.safetensors"),
            ("a missing ROOT", ["-m", CKPT, "--name", "x", "--data", os.path.join(tmp, "nodata"),
                                "--results-dir", fresh], 1, "is not a folder"),
            ("a ROOT without testA", ["-m", CKPT, "--name", "x", "--data", no_test,
                                      "--results-dir", fresh], 1, "notest/testA"),
            ("a testA without images", ["-m", CKPT, "--name", "x", "--data", empty,
                                        "--results-dir", fresh], 1, "no images in"),
            ("two inputs saved under one name", ["-m", CKPT, "--name", "x", "--data", clash,
                                                 "--results-dir", fresh], 1,
             "would both be saved as a.png"),
            ("a results dir that cannot be made (under a file)",
             ["-m", CKPT, "--name", "x", "--data", root, "--results-dir", afile + "/r"], 1,
             "cannot create"),
            ("a checkpoint file without --name", ["-m", CKPT] + base, 2, "--name is required"),
            ("--num-test 0", ["-m", CKPT, "--name", "x", "--num-test", "0"] + base, 2,
             "--num-test needs a positive integer"),
            ("--num-test abc", ["-m", CKPT, "--name", "x", "--num-test", "abc"] + base, 2,
             "--num-test needs a positive integer"),
            ("--name with a slash", ["-m", CKPT, "--name", "a/b"] + base, 2,
             "must be a plain folder name"),
            ("--name ..", ["-m", CKPT, "--name", ".."] + base, 2, "must be a plain folder name"),
            ("--epoch empty", ["-m", CKPT, "--name", "x", "--epoch", ""] + base, 2,
             "must be a plain folder name"),
            ("no --data", ["-m", CKPT, "--name", "x"], 2, "-m and --data are required"),
            ("an unknown option", ["-m", CKPT, "--name", "x", "--bogus"] + base, 2, "--bogus"),
            ("an extra argument", ["-m", CKPT, "--name", "x", "extra"] + base, 2, "extra"),
        ]
        if os.geteuid() != 0:  # root writes into read-only folders
            ro = os.path.join(tmp, "ro")
            os.makedirs(ro)
            os.chmod(ro, 0o555)
            cases.append(("a read-only results dir", ["-m", CKPT, "--name", "x", "--data", root,
                                                      "--results-dir", ro], 1, "cannot create"))
        for what, args, code, msg in cases:
            rc, so, se = run("test", *args)
            check("refuses %s (exit %d, says '%s')" % (what, code, msg),
                  rc == code and msg in se, "exit %d: %s" % (rc, se.strip()))
            check("... and creates no results folder", not os.path.exists(fresh),
                  str(os.listdir(fresh)) if os.path.isdir(fresh) else "")

        # a run that fails part-way: exit 1, says so, and leaves no index.html (not the old one)
        broken = os.path.join(tmp, "broken")
        shutil.copytree(ta, os.path.join(broken, "testA"))
        with open(os.path.join(broken, "testA", "0000.png"), "rb") as f:
            good = f.read()
        with open(os.path.join(broken, "testA", "odd size #1.png"), "wb") as f:
            f.write(good[:len(good) // 2])
        res3 = os.path.join(tmp, "results3")
        rc, _, se = run("test", "-m", CKPT, "--data", root, "--name", "x", "--results-dir", res3)
        web3 = os.path.join(res3, "x", "test_latest")
        check("a complete run writes index.html", rc == 0 and os.path.isfile(
            os.path.join(web3, "index.html")), se)
        rc, _, se = run("test", "-m", CKPT, "--data", broken, "--name", "x", "--results-dir", res3)
        check("a truncated input stops the run (exit 1, names the file, says incomplete)",
              rc == 1 and "odd size #1.png" in se and "incomplete (no index.html)" in se,
              "exit %d: %s" % (rc, se.strip()))
        check("... and leaves no index.html, not even the earlier run's",
              not os.path.exists(os.path.join(web3, "index.html")))

        # A two-generator family (CycleGAN): both directions in the tree, as its
        # test.py: real_A, fake_B, rec_A = G_B(fake_B), real_B, fake_A =
        # G_B(real_B), rec_B = G_A(fake_A), all named after the input. The
        # generators are those of the cyclegan_b1 fixture.
        cyc_dir = os.path.join(os.path.dirname(FIX))
        cyc_cfg = os.path.join(cyc_dir, "cyclegan_b1.cfg")
        cyc = os.path.join(tmp, "cyclegan.safetensors")
        write_safetensors(cyc, {k[3:]: v for k, v in
                                tensors(os.path.join(cyc_dir, "cyclegan_b1.safetensors")).items()
                                if k.startswith(("in.netG_A.", "in.netG_B."))})
        res4 = os.path.join(tmp, "results4")
        rc, so, se = run("test", "-m", cyc, "-c", cyc_cfg, "--data", root, "--name", "cyc",
                         "--results-dir", res4)
        check("test of a CycleGAN generator pair exits 0", rc == 0, se)
        web4 = os.path.join(res4, "cyc", "test_latest")
        two_way = ["real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"]
        got = sorted(os.listdir(os.path.join(web4, "images"))) if os.path.isdir(web4) else []
        check("CycleGAN: the tree has both directions' visuals", got == sorted(two_way), str(got))
        for lab in two_way:
            check("CycleGAN: %s holds one PNG per input, named after it" % lab,
                  pngs(os.path.join(web4, "images", lab)) == sorted(names))
        check_index("CycleGAN", web4, names, two_way)
        fwd, bwd = os.path.join(tmp, "cyc_ab"), os.path.join(tmp, "cyc_ba")
        rc1, _, se1 = run("translate", "-m", cyc, "-c", cyc_cfg, "-i", ta, "-o", fwd)
        rc2, _, se2 = run("translate", "-m", cyc, "-c", cyc_cfg, "-i", tb, "-o", bwd,
                          "--direction", "BtoA")
        check("translate AtoB and BtoA of the pair exit 0", rc1 == 0 and rc2 == 0, se1 + se2)
        tnames = sorted(f for f, _, _ in targets)
        for i, n in enumerate(names):
            fb = png_pixels(os.path.join(web4, "images", "fake_B", n))
            check("CycleGAN %s: fake_B equals translate's (G_A) value for value" % n,
                  fb == png_pixels(os.path.join(fwd, n)))
            fa = png_pixels(os.path.join(web4, "images", "fake_A", n))
            check("CycleGAN %s: fake_A is translate --direction BtoA (G_B) of its real_B, %s" %
                  (n, tnames[i % len(tnames)]),
                  fa == png_pixels(os.path.join(bwd, tnames[i % len(tnames)])))
            # rec_A is G_B of the float fake_B; translate of the saved 8-bit
            # fake_B differs by its input's rounding, which InstanceNorm
            # magnifies on the near-constant fake_B of these random weights
            # (measured 3 levels): within 6
            ra = png_pixels(os.path.join(web4, "images", "rec_A", n))
            rt = os.path.join(tmp, "rec_%d" % i)
            os.makedirs(rt)
            shutil.copy(os.path.join(web4, "images", "fake_B", n), rt)
            run("translate", "-m", cyc, "-c", cyc_cfg, "-i", rt, "-o", rt + "_out",
                "--direction", "BtoA")
            rr = png_pixels(os.path.join(rt + "_out", n))
            worst = max(abs(a - b) for a, b in zip(ra[3], rr[3])) if ra[:3] == rr[:3] else 999
            check("CycleGAN %s: rec_A is G_B(fake_B) (within 6 levels of translating the saved "
                  "fake_B: %d)" % (n, worst), worst <= 6)
        rc, _, se = run("translate", "-m", CKPT, "-i", ta, "-o", os.path.join(tmp, "x"),
                        "--direction", "BtoA")
        check("translate --direction BtoA of a one-generator family is refused",
              rc != 0 and "translates A to B only" in se, se)

        rc, so, _ = run("test", "--help")
        check("--help exits 0 and names every option", rc == 0 and all(
            o in so for o in ("--model", "--data", "--name", "--results-dir", "--phase",
                              "--epoch", "--num-test", "--config", "--device")), so)

    finish()


if __name__ == "__main__":
    main()
