/* enco-cl test -m RUN_OR_CHECKPOINT --data ROOT [--name NAME]: translates
 * ROOT/testA into the results tree of the CUT / CycleGAN repositories'
 * test.py, <results>/<name>/<phase>_<epoch>/images/<label>/<input stem>.png
 * with an index.html beside images/, so the scripts written for those trees
 * (python -m pytorch_fid on images/fake_B, ...) run on it unchanged. */
#include "cli/cli.h"

#include "models/family.h"
#include "train/translate.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_NUM_TEST 50 /* CUT's --num_test */
#define DISPLAY_WIDTH 256   /* CUT's --display_winsize: image width in index.html */

enum { REAL_A, FAKE_B, REAL_B, REC_A, FAKE_A, REC_B, LABELS };
static const char *const label[LABELS] = {"real_A", "fake_B", "real_B",
                                          "rec_A",  "fake_A", "rec_B"};

static void help(void)
{
    printf("usage: enco-cl test -m RUN_OR_CHECKPOINT --data ROOT [--name NAME] [options]\n\n"
           "Translates the images of ROOT/testA with a trained generator and writes them\n"
           "as the CUT and CycleGAN repositories' test.py does, so scripts written for\n"
           "those results (python -m pytorch_fid DIR/images/fake_B ROOT/testB, ...) run\n"
           "unchanged:\n"
           "  RESULTS/NAME/PHASE_EPOCH/images/real_A/<input name>.png  G's input\n"
           "  RESULTS/NAME/PHASE_EPOCH/images/fake_B/<input name>.png  G's output\n"
           "  RESULTS/NAME/PHASE_EPOCH/images/real_B/<input name>.png  when ROOT/testB has\n"
           "                     images: its i-th image (sorted, repeated when shorter)\n"
           "                     beside the i-th input, as CUT pairs them; the same-named\n"
           "                     image when both folders hold the same names\n"
           "  RESULTS/NAME/PHASE_EPOCH/images/{rec_A,fake_A,rec_B}/  two-generator\n"
           "                     families (cyclegan, dclgan): rec_A = G_B(fake_B), and with\n"
           "                     real_B fake_A = G_B(real_B), rec_B = G_A(fake_A), as their\n"
           "                     test.py; every visual is named after the input\n"
           "  RESULTS/NAME/PHASE_EPOCH/index.html  one table row per input (real_A,\n"
           "                     fake_B, real_B; two-generator families real_A, fake_B,\n"
           "                     rec_A, real_B, fake_A, rec_B), with relative links\n"
           "<input name> is the input's file name with .png for its extension. Images are\n"
           "used as translate uses them: at their size with each side rounded to a\n"
           "multiple of 4 (at least 8; bicubic when it changes), not flipped or cropped;\n"
           "real_A and real_B are saved after that step, so each folder holds what G saw.\n"
           "fake_B holds exactly what 'enco-cl translate' writes for the same file.\n"
           "Existing files are overwritten, as CUT does; PNG files in the label folders\n"
           "that this run did not write (an earlier run's) are removed, so that the\n"
           "folders hold this checkpoint's results only. index.html is written last: a\n"
           "run that fails part-way leaves none and says so.\n\n"
           "  -m, --model PATH      a run folder of 'enco-cl train' (its EPOCH.safetensors:\n"
           "                        latest.safetensors by default) or a checkpoint file\n"
           "                        (or a generator converted with tools/pth2safetensors.py)\n"
           "      --data ROOT       dataset folder with PHASEA/ (testA/; valA/ when testA/ is\n"
           "                        missing and the phase is test) and optionally PHASEB/\n"
           "      --name NAME       experiment name, the folder under RESULTS (default: the\n"
           "                        run folder's name; required with a checkpoint file)\n"
           "      --results-dir DIR where the trees go (default ./results, created)\n"
           "      --phase PHASE     which folders of ROOT to translate (default test)\n"
           "      --epoch EPOCH     checkpoint of a run folder, and the folder label PHASE_EPOCH\n"
           "                        (default latest; with a file only the label)\n"
           "      --num-test N      translate the first N images only (default %d, as CUT;\n"
           "                        'all' for every image)\n"
           "  -c, --config FILE     architecture when the checkpoint does not carry it\n"
           "  -d, --device SEL      OpenCL device (index or part of a name)\n"
           "  -h, --help            this text\n\n"
           "Exit status: 0 when every image and index.html were written, 1 on an error\n"
           "(nothing usable, or an incomplete tree without index.html), 2 on a bad command\n"
           "line.\n",
           DEFAULT_NUM_TEST);
}

typedef struct list {
    char **item;
    size_t n, cap;
} list;

static int list_add(list *l, char *s)
{
    if (!s)
        return -1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **p = realloc(l->item, cap * sizeof *p);
        if (!p) {
            free(s);
            return -1;
        }
        l->item = p, l->cap = cap;
    }
    l->item[l->n++] = s;
    return 0;
}

static void list_free(list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->item[i]);
    free(l->item);
    *l = (list){0};
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "a/b" in new memory (NULL when out of memory). */
static char *join(const char *a, const char *b)
{
    size_t la = strlen(a);
    while (la > 1 && a[la - 1] == '/')
        la--;
    size_t len = la + strlen(b) + 2;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, "%.*s/%s", (int)la, a, b);
    return s;
}

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The image files of a folder, sorted (as CUT's sorted(make_dataset(..))).
 * Returns 0, or -1 with errno set. */
static int list_images(const char *dir, list *out, size_t *skipped)
{
    *skipped = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (!cli_is_image_name(e->d_name)) {
            (*skipped)++;
            continue;
        }
        if (list_add(out, join(dir, e->d_name)) != 0) {
            closedir(d);
            errno = ENOMEM;
            return -1;
        }
    }
    closedir(d);
    if (out->n > 1) /* an empty list has no array (qsort wants one even for 0 items) */
        qsort(out->item, out->n, sizeof *out->item, cmp_str);
    return 0;
}

/* The file name an input is saved under: its name with .png for its
 * extension (CUT's os.path.splitext(basename)[0] + '.png'). */
static char *png_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t stem = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    char *s = malloc(stem + 5);
    if (s)
        snprintf(s, stem + 5, "%.*s.png", (int)stem, base);
    return s;
}

/* A value that becomes one folder name. */
static int bad_component(const char *opt, const char *v)
{
    if (!*v || strchr(v, '/') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0 || strlen(v) > 200)
        return cli_usage_error("test",
                               "%s '%s' must be a plain folder name (not empty, no '/', at "
                               "most 200 bytes)",
                               opt, v);
    return 0;
}

/* mkdir -p; on failure prints what could not be made and returns 1. */
static int make_dirs(const char *path)
{
    char *p = strdup(path);
    if (!p) {
        fprintf(stderr, "enco-cl test: out of memory\n");
        return 1;
    }
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char keep = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "enco-cl test: cannot create %s: %s\n", p, strerror(errno));
            rc = 1;
        } else if (!is_dir(p)) {
            fprintf(stderr, "enco-cl test: cannot create %s: %s\n", p, strerror(ENOTDIR));
            rc = 1;
        }
        *s = keep;
        if (rc || keep == '\0')
            break;
    }
    if (rc == 0 && access(p, W_OK | X_OK) != 0) {
        fprintf(stderr, "enco-cl test: cannot write to %s: %s\n", p, strerror(errno));
        rc = 1;
    }
    free(p);
    return rc;
}

/* Removes the PNG files of dir that are not in `keep` (sorted); returns how
 * many, or -1 after printing why one could not be removed. */
static long remove_stale(const char *dir, const list *keep)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        fprintf(stderr, "enco-cl test: cannot read folder %s: %s\n", dir, strerror(errno));
        return -1;
    }
    long removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".png") != 0)
            continue;
        const char *key = e->d_name;
        if (keep->n && bsearch(&key, keep->item, keep->n, sizeof *keep->item, cmp_str))
            continue;
        char *path = join(dir, e->d_name);
        if (!path || unlink(path) != 0) {
            fprintf(stderr, "enco-cl test: cannot remove %s of an earlier run: %s\n",
                    path ? path : e->d_name, strerror(path ? errno : ENOMEM));
            free(path);
            closedir(d);
            return -1;
        }
        free(path);
        removed++;
    }
    closedir(d);
    return removed;
}

/* Text for HTML: & < > " ' escaped. */
static void put_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A relative URL: every byte outside A-Z a-z 0-9 - . _ ~ / percent-encoded. */
static void put_url(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == '/')
            fputc(c, f);
        else
            fprintf(f, "%%%02X", c);
    }
}

/* index.html as CUT's util/html.py lays it out: per image a header with its
 * name and a table row of its labels, each a linked image with the label. */
static int write_index(const char *web, const char *title, const list *names, const int *order,
                       int labels)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        fprintf(stderr, "enco-cl test: out of memory\n");
        return 1;
    }
    fputs("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>", f);
    put_text(f, title);
    fputs("</title>\n</head>\n<body>\n", f);
    for (size_t i = 0; i < names->n; i++) {
        const char *name = names->item[i];
        size_t stem = strlen(name) - 4; /* without .png */
        fputs("<h3>", f);
        char *s = strndup(name, stem);
        put_text(f, s ? s : name);
        free(s);
        fputs("</h3>\n<table border=\"1\" style=\"table-layout: fixed;\">\n<tr>\n", f);
        for (int k = 0; k < labels; k++) {
            fputs("<td style=\"word-wrap: break-word;\" halign=\"center\" valign=\"top\"><p><a "
                  "href=\"images/",
                  f);
            fprintf(f, "%s/", label[order[k]]);
            put_url(f, name);
            fprintf(f, "\"><img style=\"width:%dpx\" src=\"images/%s/", DISPLAY_WIDTH,
                    label[order[k]]);
            put_url(f, name);
            fprintf(f, "\"></a><br>%s</p></td>\n", label[order[k]]);
        }
        fputs("</tr>\n</table>\n", f);
    }
    fputs("</body>\n</html>\n", f);
    if (fclose(f) != 0 || !text) {
        free(text);
        fprintf(stderr, "enco-cl test: out of memory\n");
        return 1;
    }
    char *path = join(web, "index.html");
    enco_status st = path ? enco_write_text_atomic(path, text)
                          : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of memory");
    free(path);
    free(text);
    return st == ENCO_OK ? 0 : cli_fail("test", st);
}

typedef struct test_job {
    const char *web;            /* RESULTS/NAME/PHASE_EPOCH */
    char *dir[LABELS];          /* its images/<label> folders */
    list a, b;                  /* input paths; target paths (may be empty) */
    list names;                 /* output file name of each input used, in input order */
    enco_translator *trb;       /* two-generator families: the B -> A generator, else NULL */
} test_job;

/* The visuals written, in the reference's order (CycleGAN, DCLGAN: real_A,
 * fake_B, rec_A, real_B, fake_A, rec_B); their count. */
static int labels_of(const test_job *j, int order[LABELS])
{
    static const int one_way[] = {REAL_A, FAKE_B, REAL_B};
    static const int two_way[] = {REAL_A, FAKE_B, REC_A, REAL_B, FAKE_A, REC_B};
    const int *o = j->trb ? two_way : one_way;
    int n = j->trb ? (j->b.n ? 6 : 3) : (j->b.n ? 3 : 2);
    memcpy(order, o, (size_t)n * sizeof *order);
    return n;
}

static int label_used(const test_job *j, int k)
{
    int order[LABELS], n = labels_of(j, order);
    for (int i = 0; i < n; i++)
        if (order[i] == k)
            return 1;
    return 0;
}

/* y = G(x) for an image x of (c, h, w) floats; *y malloc'd. */
static enco_status generate(enco_translator *t, const float *x, int h, int w, float **y)
{
    *y = malloc((size_t)t->cfg.model.output_nc * h * w * sizeof **y);
    if (!*y)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    return enco_translator_run(t, x, h, w, *y);
}

/* One input: real_A, fake_B and real_B written (two-generator families:
 * rec_A = G_B(fake_B), fake_A = G_B(real_B), rec_B = G_A(fake_A) too, each
 * generator fed the other's float output as the reference's test does). */
static int one(enco_translator *tr, test_job *j, size_t i)
{
    enco_image img[LABELS] = {{0}}, raw = {0};
    char *path[LABELS] = {0};
    float *x = NULL, *fake_b = NULL, *rec_a = NULL, *xb = NULL, *fake_a = NULL, *rec_b = NULL;
    const char *name = j->names.item[i];
    const int cin = tr->cfg.model.input_nc, cout = tr->cfg.model.output_nc;
    enco_status st = enco_image_load(j->a.item[i], cin, &raw);
    if (st == ENCO_OK)
        st = enco_translate_prepare(&raw, &img[REAL_A]);
    enco_image_free(&raw);
    const int h = img[REAL_A].h, w = img[REAL_A].w;
    for (int k = 0; st == ENCO_OK && k < LABELS; k++)
        if (label_used(j, k) && !(path[k] = join(j->dir[k], name)))
            st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of memory");
    if (st == ENCO_OK && !(x = malloc((size_t)cin * h * w * sizeof *x)))
        st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    if (st == ENCO_OK) {
        enco_image_to_tensor(&img[REAL_A], x);
        st = generate(tr, x, h, w, &fake_b);
    }
    if (st == ENCO_OK)
        st = enco_image_from_tensor(&img[FAKE_B], fake_b, cout, h, w);
    if (st == ENCO_OK && j->trb)
        st = generate(j->trb, fake_b, h, w, &rec_a);
    if (st == ENCO_OK && j->trb)
        st = enco_image_from_tensor(&img[REC_A], rec_a, cin, h, w);
    if (st == ENCO_OK && j->b.n) {
        st = enco_image_load(j->b.item[i % j->b.n], cout, &raw);
        if (st == ENCO_OK)
            st = enco_translate_prepare(&raw, &img[REAL_B]);
        enco_image_free(&raw);
        const int hb = img[REAL_B].h, wb = img[REAL_B].w;
        if (st == ENCO_OK && j->trb && !(xb = malloc((size_t)cout * hb * wb * sizeof *xb)))
            st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        if (st == ENCO_OK && j->trb) {
            enco_image_to_tensor(&img[REAL_B], xb);
            st = generate(j->trb, xb, hb, wb, &fake_a);
        }
        if (st == ENCO_OK && j->trb)
            st = enco_image_from_tensor(&img[FAKE_A], fake_a, cin, hb, wb);
        if (st == ENCO_OK && j->trb)
            st = generate(tr, fake_a, hb, wb, &rec_b);
        if (st == ENCO_OK && j->trb)
            st = enco_image_from_tensor(&img[REC_B], rec_b, cout, hb, wb);
    }
    for (int k = 0; st == ENCO_OK && k < LABELS; k++)
        if (path[k])
            st = enco_image_save_png(path[k], &img[k]);
    for (int k = 0; k < LABELS; k++) {
        free(path[k]);
        enco_image_free(&img[k]);
    }
    free(x);
    free(fake_b);
    free(rec_a);
    free(xb);
    free(fake_a);
    free(rec_b);
    return st == ENCO_OK ? 0 : cli_fail("test", st);
}

/* Everything after the translator is open. */
static int run_job(enco_translator *tr, test_job *j, const char *title)
{
    /* a failed run must not leave an index that looks complete */
    char *index = join(j->web, "index.html");
    if (!index || (unlink(index) != 0 && errno != ENOENT)) {
        fprintf(stderr, "enco-cl test: cannot replace %s: %s\n", index ? index : "index.html",
                strerror(index ? errno : ENOMEM));
        free(index);
        return 1;
    }
    free(index);
    size_t n = j->names.n;
    cli_progress pr;
    cli_progress_init(&pr, "img", 0);
    for (size_t i = 0; i < n; i++) {
        cli_progress_update(&pr, j->a.item[i], i, n);
        if (one(tr, j, i) != 0) {
            cli_progress_clear(&pr);
            fprintf(stderr,
                    "enco-cl test: stopped at image %zu of %zu: %s is incomplete (no "
                    "index.html)\n",
                    i + 1, n, j->web);
            return 1;
        }
    }
    if (n)
        cli_progress_update(&pr, "translated", n, n);
    cli_progress_end(&pr);
    /* the label folders hold this run's images only */
    list keep = {0};
    for (size_t i = 0; i < n; i++)
        if (list_add(&keep, strdup(j->names.item[i])) != 0) {
            list_free(&keep);
            fprintf(stderr, "enco-cl test: out of memory\n");
            return 1;
        }
    if (keep.n > 1)
        qsort(keep.item, keep.n, sizeof *keep.item, cmp_str);
    long stale = 0;
    for (int k = 0; k < LABELS; k++) {
        long r = remove_stale(j->dir[k], label_used(j, k) ? &keep : &(list){0});
        if (r < 0) {
            list_free(&keep);
            fprintf(stderr, "enco-cl test: %s is incomplete (no index.html)\n", j->web);
            return 1;
        }
        stale += r;
    }
    list_free(&keep);
    for (int k = 0; k < LABELS; k++)
        if (!label_used(j, k))
            rmdir(j->dir[k]); /* an earlier run's, now empty; kept if it holds other files */
    if (stale)
        fprintf(stderr, "enco-cl test: removed %ld image%s of an earlier run from %s/images\n",
                stale, stale == 1 ? "" : "s", j->web);
    int order[LABELS], nl = labels_of(j, order);
    if (write_index(j->web, title, &j->names, order, nl) != 0)
        return 1;
    char what[128] = "";
    for (int k = 0; k < nl; k++)
        snprintf(what + strlen(what), sizeof what - strlen(what), "%s%s", k ? ", " : "",
                 label[order[k]]);
    fprintf(stderr, "enco-cl test: %zu image%s (%s) and index.html written to %s\n", n,
            n == 1 ? "" : "s", what, j->web);
    return 0;
}

/* The input folder ROOT/PHASE<side>, or CUT's fallback ROOT/val<side> for
 * the test phase. NULL when out of memory. */
static char *side_dir(const char *root, const char *phase, char side)
{
    char sub[300];
    snprintf(sub, sizeof sub, "%s%c", phase, side);
    char *d = join(root, sub);
    if (d && !is_dir(d) && strcmp(phase, "test") == 0) {
        char *val = join(root, side == 'A' ? "valA" : "valB");
        char *valA = join(root, "valA");
        char *testA = join(root, "testA");
        /* as CUT: only when testA is missing and valA exists, for both sides */
        if (val && valA && testA && !is_dir(testA) && is_dir(valA)) {
            free(d);
            d = val, val = NULL;
        }
        free(val);
        free(valA);
        free(testA);
    }
    return d;
}

int cmd_test(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'},
                                         {"data", required_argument, NULL, 'D'},
                                         {"name", required_argument, NULL, 'N'},
                                         {"results-dir", required_argument, NULL, 'R'},
                                         {"phase", required_argument, NULL, 'P'},
                                         {"epoch", required_argument, NULL, 'E'},
                                         {"num-test", required_argument, NULL, 'n'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"device", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *model = NULL, *data = NULL, *name = NULL, *results = "./results",
               *phase = "test", *epoch = "latest", *config = NULL, *device = NULL;
    size_t num_test = DEFAULT_NUM_TEST;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:c:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'D': data = optarg; break;
        case 'N': name = optarg; break;
        case 'R': results = optarg; break;
        case 'P': phase = optarg; break;
        case 'E': epoch = optarg; break;
        case 'n': {
            if (strcmp(optarg, "all") == 0) {
                num_test = (size_t)-1;
                break;
            }
            char *end = NULL;
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            if (!end || end == optarg || *end || errno || v < 1)
                return cli_usage_error("test", "--num-test needs a positive integer or 'all', "
                                               "not '%s'", optarg);
            num_test = (size_t)v;
            break;
        }
        case 'c': config = optarg; break;
        case 'd': device = optarg; break;
        case 'h': help(); return 0;
        default:
            return cli_usage_error("test", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("test", "unexpected argument '%s'", argv[optind]);
    if (!model || !data)
        return cli_usage_error("test", "-m and --data are required");
    if (!*results)
        return cli_usage_error("test", "--results-dir must not be empty");
    int bad = bad_component("--phase", phase);
    if (!bad)
        bad = bad_component("--epoch", epoch);
    if (!bad && name)
        bad = bad_component("--name", name);
    if (bad)
        return bad;

    /* the checkpoint: RUN/EPOCH.safetensors, or the file itself */
    struct stat sb;
    if (stat(model, &sb) != 0) {
        fprintf(stderr, "enco-cl test: cannot open %s: %s\n", model, strerror(errno));
        return 1;
    }
    char *ckpt = NULL, *run_name = NULL;
    if (S_ISDIR(sb.st_mode)) {
        char file[300];
        snprintf(file, sizeof file, "%s.safetensors", epoch);
        ckpt = join(model, file);
        if (ckpt && stat(ckpt, &sb) != 0) {
            fprintf(stderr, "enco-cl test: the run folder %s has no checkpoint %s (--epoch %s): %s\n",
                    model, file, epoch, strerror(errno));
            free(ckpt);
            return 1;
        }
        if (!name) {
            char *copy = strdup(model);
            if (copy) {
                size_t l = strlen(copy);
                while (l > 1 && copy[l - 1] == '/')
                    copy[--l] = '\0';
                const char *base = strrchr(copy, '/');
                run_name = strdup(base && base[1] ? base + 1 : copy);
            }
            free(copy);
            name = run_name;
            if (name && bad_component("--name (the run folder's name)", name)) {
                free(ckpt);
                free(run_name);
                return EXIT_USAGE;
            }
        }
    } else {
        ckpt = strdup(model);
        if (!name) {
            free(ckpt);
            return cli_usage_error("test", "--name is required when -m is a checkpoint file "
                                           "(it names the results folder)");
        }
    }
    if (!ckpt || !name) {
        free(ckpt);
        free(run_name);
        fprintf(stderr, "enco-cl test: out of memory\n");
        return 1;
    }

    test_job j = {0};
    char label_dir[300];
    snprintf(label_dir, sizeof label_dir, "%s_%s", phase, epoch);
    char *exp = join(results, name);
    char *web = exp ? join(exp, label_dir) : NULL;
    char *images = web ? join(web, "images") : NULL;
    char *dir_a = side_dir(data, phase, 'A'), *dir_b = side_dir(data, phase, 'B');
    int rc = !exp || !web || !images || !dir_a || !dir_b;
    if (rc)
        fprintf(stderr, "enco-cl test: out of memory\n");
    j.web = web;
    for (int k = 0; !rc && k < LABELS; k++)
        if (!(j.dir[k] = join(images, label[k]))) {
            fprintf(stderr, "enco-cl test: out of memory\n");
            rc = 1;
        }

    /* the inputs */
    size_t skipped = 0;
    if (!rc && !is_dir(data)) {
        fprintf(stderr, "enco-cl test: --data %s is not a folder\n", data);
        rc = 1;
    } else if (!rc && !is_dir(dir_a)) {
        fprintf(stderr, "enco-cl test: no folder %s: --data needs a dataset root with %sA/ "
                        "(the CUT layout: trainA, trainB, testA, testB)\n",
                dir_a, phase);
        rc = 1;
    } else if (!rc && list_images(dir_a, &j.a, &skipped) != 0) {
        fprintf(stderr, "enco-cl test: cannot read folder %s: %s\n", dir_a, strerror(errno));
        rc = 1;
    } else if (!rc && j.a.n == 0) {
        fprintf(stderr, "enco-cl test: no images in %s\n", dir_a);
        rc = 1;
    }
    if (!rc && skipped)
        fprintf(stderr, "enco-cl test: skipped %zu file%s in %s that are not images\n", skipped,
                skipped == 1 ? "" : "s", dir_a);
    size_t total = j.a.n;
    if (!rc && total > num_test) {
        for (size_t i = num_test; i < total; i++)
            free(j.a.item[i]);
        j.a.n = num_test;
        fprintf(stderr, "enco-cl test: translating the first %zu of %zu images in %s "
                        "(--num-test; 'all' for every one)\n",
                num_test, total, dir_a);
    }
    for (size_t i = 0; !rc && i < j.a.n; i++)
        if (list_add(&j.names, png_name(j.a.item[i])) != 0) {
            fprintf(stderr, "enco-cl test: out of memory\n");
            rc = 1;
        }
    if (!rc) {
        /* two inputs that would be saved under one name (a.png and a.jpg) */
        list sorted = {0};
        for (size_t i = 0; !rc && i < j.names.n; i++)
            if (list_add(&sorted, strdup(j.names.item[i])) != 0) {
                fprintf(stderr, "enco-cl test: out of memory\n");
                rc = 1;
            }
        if (!rc) {
            if (sorted.n > 1)
                qsort(sorted.item, sorted.n, sizeof *sorted.item, cmp_str);
            for (size_t i = 1; i < sorted.n; i++)
                if (strcmp(sorted.item[i - 1], sorted.item[i]) == 0) {
                    fprintf(stderr, "enco-cl test: two inputs in %s would both be saved as %s: "
                                    "rename one\n",
                            dir_a, sorted.item[i]);
                    rc = 1;
                    break;
                }
        }
        list_free(&sorted);
    }
    if (!rc && is_dir(dir_b)) {
        size_t skipped_b = 0;
        if (list_images(dir_b, &j.b, &skipped_b) != 0) {
            fprintf(stderr, "enco-cl test: cannot read folder %s: %s\n", dir_b, strerror(errno));
            rc = 1;
        } else if (j.b.n == 0) {
            fprintf(stderr, "enco-cl test: no images in %s: real_B not written\n", dir_b);
        }
    } else if (!rc) {
        fprintf(stderr, "enco-cl test: no folder %s: real_B not written\n", dir_b);
    }

    /* the generator, before any folder is made: a bad checkpoint writes nothing */
    enco_config cfg;
    enco_config_defaults(&cfg);
    enco_status st = ENCO_OK;
    if (!rc && config && (st = enco_config_load(&cfg, config)) != ENCO_OK)
        rc = cli_fail("test", st);
    enco_ctx *ctx = NULL;
    enco_translator *tr = NULL;
    if (!rc) {
        enco_ctx_options o = {.device = device};
        st = enco_ctx_create(&ctx, &o);
        if (st == ENCO_OK)
            st = enco_translator_open(ctx, ckpt, config ? &cfg : NULL, &tr);
        const enco_family *fam = st == ENCO_OK ? enco_family_find(tr->cfg.model.family) : NULL;
        if (st == ENCO_OK && fam && fam->two_way)
            st = enco_translator_open_direction(ctx, ckpt, config ? &cfg : NULL, 1, &j.trb);
        if (st != ENCO_OK)
            rc = cli_fail("test", st);
    }
    for (int k = 0; !rc && k < LABELS; k++)
        if (label_used(&j, k))
            rc = make_dirs(j.dir[k]);
    if (!rc) {
        char title[1024];
        snprintf(title, sizeof title, "Experiment = %s, Phase = %s, Epoch = %s", name, phase,
                 epoch);
        fprintf(stderr, "enco-cl test: %s with %s\n", web, ckpt);
        rc = run_job(tr, &j, title);
    }
    enco_translator_close(tr);
    enco_translator_close(j.trb);
    enco_ctx_free(ctx);
    list_free(&j.a);
    list_free(&j.b);
    list_free(&j.names);
    for (int k = 0; k < LABELS; k++)
        free(j.dir[k]);
    free(images);
    free(web);
    free(exp);
    free(dir_a);
    free(dir_b);
    free(ckpt);
    free(run_name);
    return rc;
}
