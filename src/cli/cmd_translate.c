/* enco-cl translate -m CHECKPOINT -i FILE_OR_DIR -o DIR */
#include "cli/cli.h"

#include "train/translate.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static void help(void)
{
    printf("usage: enco-cl translate -m CHECKPOINT -i FILE_OR_DIR -o DIR [-c CONFIG]\n"
           "                          [--direction AtoB|BtoA] [--device SEL]\n\n"
           "Translates images from domain A to B with a trained generator (G alone). Any\n"
           "input size works: sizes are rounded to a multiple of 4 (bicubic, as the\n"
           "reference does). Outputs are PNG files named after the inputs. For the\n"
           "results tree of CUT/CycleGAN's test.py (images/real_A, images/fake_B,\n"
           "index.html) use 'enco-cl test'.\n\n"
           "  -m, --model FILE    checkpoint of enco-cl train, or a generator converted from\n"
           "                      PyTorch with tools/pth2safetensors.py\n"
           "  -i, --input PATH    an image, or a folder of images (jpg, png, bmp, tga, ...)\n"
           "  -o, --output DIR    folder for the results (created if missing)\n"
           "  -c, --config FILE   architecture (model.*) when the file does not carry it;\n"
           "                      default: the checkpoint's own, else ngf 64 with 9 blocks\n"
           "      --direction D   AtoB (default) or BtoA: BtoA runs the B -> A generator of\n"
           "                      the two-generator families (cyclegan, dclgan: G_B)\n"
           "  -d, --device SEL    OpenCL device (index or part of a name)\n"
           "  -h, --help          this text\n");
}

int cli_is_image_name(const char *name)
{
    static const char *ext[] = {".png", ".jpg", ".jpeg", ".bmp", ".tga", ".gif", ".ppm",
                                ".pgm", ".pnm", ".psd", ".hdr", ".pic"};
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (strcasecmp(dot, ext[i]) == 0)
            return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects the image files of a folder (sorted), or the one file given. */
static int list_inputs(const char *path, char ***out, size_t *n, size_t *skipped)
{
    struct stat sb;
    *out = NULL, *n = 0, *skipped = 0;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "enco-cl translate: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        *out = malloc(sizeof **out);
        (*out)[0] = strdup(path);
        *n = 1;
        return 0;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "enco-cl translate: cannot read folder %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (!cli_is_image_name(e->d_name)) {
            (*skipped)++;
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            *out = realloc(*out, cap * sizeof **out);
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        (*out)[*n] = malloc(len);
        snprintf((*out)[*n], len, "%s/%s", path, e->d_name);
        (*n)++;
    }
    closedir(d);
    qsort(*out, *n, sizeof **out, cmp_str);
    if (*n == 0) {
        fprintf(stderr, "enco-cl translate: no images in %s\n", path);
        return 1;
    }
    return 0;
}

/* pr: the progress line, erased before an error message. */
static int translate_one(cli_progress *pr, enco_translator *tr, const char *in,
                         const char *outdir)
{
    enco_image sized = {0}, res = {0};
    enco_status st = enco_translate_file(tr, in, &sized, &res);
    if (st == ENCO_OK) {
        const char *base = strrchr(in, '/');
        base = base ? base + 1 : in;
        const char *dot = strrchr(base, '.');
        size_t stem = dot ? (size_t)(dot - base) : strlen(base);
        size_t len = strlen(outdir) + stem + 8;
        char *out = malloc(len);
        snprintf(out, len, "%s/%.*s.png", outdir, (int)stem, base);
        st = enco_image_save_png(out, &res);
        free(out);
    }
    enco_image_free(&sized);
    enco_image_free(&res);
    if (st == ENCO_OK)
        return 0;
    cli_progress_clear(pr);
    return cli_fail("translate", st);
}

int cmd_translate(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'},
                                         {"input", required_argument, NULL, 'i'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"device", required_argument, NULL, 'd'},
                                         {"direction", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *model = NULL, *input = NULL, *outdir = NULL, *config = NULL, *device = NULL;
    int c, btoa = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:i:o:c:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'i': input = optarg; break;
        case 'o': outdir = optarg; break;
        case 'c': config = optarg; break;
        case 'd': device = optarg; break;
        case 'r':
            if ((c = cli_parse_direction("translate", optarg, &btoa)) != 0)
                return c;
            break;
        case 'h': help(); return 0;
        default:
            return cli_usage_error("translate", "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("translate", "unexpected argument '%s'", argv[optind]);
    if (!model || !input || !outdir)
        return cli_usage_error("translate", "-m, -i and -o are required");
    enco_config cfg;
    enco_config_defaults(&cfg);
    enco_status st = ENCO_OK;
    if (config && (st = enco_config_load(&cfg, config)) != ENCO_OK)
        return cli_fail("translate", st);
    char **files = NULL;
    size_t n = 0, skipped = 0;
    if (list_inputs(input, &files, &n, &skipped) != 0)
        return 1;
    if (skipped)
        fprintf(stderr, "enco-cl translate: skipped %zu file%s that are not images\n", skipped,
                skipped == 1 ? "" : "s");
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "enco-cl translate: cannot create %s: %s\n", outdir, strerror(errno));
        return 1;
    }
    enco_ctx *ctx = NULL;
    enco_ctx_options o = CLI_CTX_OPTIONS(device);
    enco_translator *tr = NULL;
    st = enco_ctx_create(&ctx, &o);
    if (st == ENCO_OK)
        st = enco_translator_open_direction(ctx, model, config ? &cfg : NULL, btoa, &tr);
    int rc = st == ENCO_OK ? 0 : cli_fail("translate", st);
    int failures = 0;
    cli_progress pr;
    cli_progress_init(&pr, "img", 0);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *base = strrchr(files[i], '/');
        char what[300];
        snprintf(what, sizeof what, "translate %s", base ? base + 1 : files[i]);
        cli_progress_update(&pr, what, i, n);
        if (translate_one(&pr, tr, files[i], outdir) != 0)
            failures++;
        cli_progress_update(&pr, what, i + 1, n);
    }
    cli_progress_end(&pr);
    if (rc == 0) {
        fprintf(stderr, "enco-cl translate: %zu of %zu image%s written to %s\n",
                n - (size_t)failures, n, n == 1 ? "" : "s", outdir);
        rc = failures ? 1 : 0;
    }
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
    enco_translator_close(tr);
    enco_ctx_free(ctx);
    return rc;
}
