/* enco-cl eval -m CHECKPOINT --data ROOT */
#include "cli/cli.h"

#include "train/evaluate.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static void help(void)
{
    printf("usage: enco-cl eval -m CHECKPOINT --data ROOT [-c CONFIG] [--max N]\n"
           "                     [--direction AtoB|BtoA] [--device SEL]\n\n"
           "Scores a generator on test pairs with ground truth: every ROOT/testA image is\n"
           "translated and compared with the ROOT/testB image of the same name (the true\n"
           "translation; the synthetic task of 'enco-cl synth' has one for every image).\n"
           "Reports PSNR, SSIM, a content score (the correlation of image gradients: 1 =\n"
           "edges in the same places, with the worst image) and a shape IoU (pixels far\n"
           "from B's background colour, the most frequent colour on its border, in G(A)\n"
           "and in B) of G(A) against the true B, next to baselines:\n"
           "  unpaired (what a user without test pairs could do): A itself (identity),\n"
           "  and per-channel histogram matching of A to B, the classical colour\n"
           "  transfer, fitted on ROOT/trainA and ROOT/trainB (at most %d images of\n"
           "  each, spread over the folder; n/a, with the reason, without them);\n"
           "  fitted on the test pairs: the best constant image (the per-pixel mean of\n"
           "  all B: the best a generator ignoring its input can do) and the best\n"
           "  per-channel colour remaps of A (affine; lookup table). The remaps use the\n"
           "  pairing, i.e. supervision, so they are oracles, not bars for an unpaired\n"
           "  method (the lookup table nearly solves the synthetic task, whose classes\n"
           "  each channel of A tells apart). n/a where one does not apply.\n\n"
           "  -m, --model FILE    checkpoint or generator file\n"
           "      --data ROOT     dataset folder with testA/ and testB/ (and trainA/, trainB/)\n"
           "  -c, --config FILE   architecture when the file does not carry it\n"
           "      --max N         score at most N pairs\n"
           "      --direction D   AtoB (default) or BtoA: the B -> A generator of cyclegan\n"
           "                      and dclgan (G_B) on testB, judged against testA (the\n"
           "                      baselines and histogram matching swap A and B alike)\n"
           "  -d, --device SEL    OpenCL device\n"
           "  -h, --help          this text\n",
           ENCO_HISTMATCH_MAX_IMAGES);
}

static void row(const char *name, const enco_eval_scores *s)
{
    if (isnan(s->psnr)) {
        printf("  %-34s %10s %8s %8s %9s\n", name, "n/a", "n/a", "n/a", "n/a");
        return;
    }
    printf("  %-34s %10.2f %8.4f %8.4f %9.4f\n", name, s->psnr, s->ssim, s->content, s->iou);
}

/* " over NAME +X.XX dB", or n/a when the baseline was not scored. */
static void gain(const char *name, double model, double base)
{
    if (isnan(base))
        printf(" over %s n/a", name);
    else
        printf(" over %s %+.2f dB", name, model - base);
}

int cli_print_eval(const struct enco_eval_result *r)
{
    /* B -> A (eval --direction BtoA): G_B on testB against testA */
    const char a = r->btoa ? 'B' : 'A', b = r->btoa ? 'A' : 'B';
    char name[64];
    printf("eval: %zu test pairs%s\n", r->images, r->btoa ? ", B to A" : "");
    printf("  %-34s %10s %8s %8s %9s\n", "", "PSNR (dB)", "SSIM", "content", "shape IoU");
    snprintf(name, sizeof name, r->btoa ? "G_B(B) vs true A" : "G(A) vs true B");
    row(name, &r->model);
    printf("  unpaired baselines vs true %c (no test pairs used):\n", b);
    snprintf(name, sizeof name, "identity: %c itself", a);
    row(name, &r->identity);
    snprintf(name, sizeof name, "histogram matching of %c to %c", a, b);
    row(name, &r->histmatch);
    if (r->histmatch_note[0])
        printf("    %s\n", r->histmatch_note);
    else
        printf("    (per channel, fitted on %zu train%c and %zu train%c images)\n",
               r->histmatch_a, a, r->histmatch_b, b);
    printf("  fitted on these test pairs (the remaps use the pairing: oracles, not bars):\n");
    snprintf(name, sizeof name, "best constant image (mean of %c)", b);
    row(name, &r->constant);
    snprintf(name, sizeof name, "best per-channel affine remap of %c", a);
    row(name, &r->affine);
    snprintf(name, sizeof name, "best per-channel lookup table of %c", a);
    row(name, &r->lut);
    printf("  PSNR gain");
    gain("identity", r->model.psnr, r->identity.psnr);
    putchar(',');
    gain("histogram matching", r->model.psnr, r->histmatch.psnr);
    putchar(',');
    gain("the constant image", r->model.psnr, r->constant.psnr);
    putchar(',');
    gain("the affine remap", r->model.psnr, r->affine.psnr);
    printf("; worst content %.4f (%s)\n", r->min_content, r->worst);
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'},
                                         {"data", required_argument, NULL, 'D'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"max", required_argument, NULL, 'n'},
                                         {"device", required_argument, NULL, 'd'},
                                         {"direction", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *model = NULL, *data = NULL, *config = NULL, *device = NULL;
    long max = 0;
    int c, btoa = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:c:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'D': data = optarg; break;
        case 'c': config = optarg; break;
        case 'n': {
            char *end = NULL;
            max = strtol(optarg, &end, 10);
            if (!end || *end || max < 0)
                return cli_usage_error("eval", "--max needs a non-negative integer");
            break;
        }
        case 'd': device = optarg; break;
        case 'r':
            if ((c = cli_parse_direction("eval", optarg, &btoa)) != 0)
                return c;
            break;
        case 'h': help(); return 0;
        default:
            return cli_usage_error("eval", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!model || !data)
        return cli_usage_error("eval", "-m and --data are required");
    enco_config cfg;
    enco_config_defaults(&cfg);
    enco_status st = config ? enco_config_load(&cfg, config) : ENCO_OK;
    enco_ctx *ctx = NULL;
    enco_translator *tr = NULL;
    enco_eval_result r;
    enco_ctx_options o = CLI_CTX_OPTIONS(device);
    if (st == ENCO_OK)
        st = enco_ctx_create(&ctx, &o);
    if (st == ENCO_OK)
        st = enco_translator_open_direction(ctx, model, config ? &cfg : NULL, btoa, &tr);
    if (st == ENCO_OK) {
        cli_progress pr;
        cli_progress_init(&pr, "img", 0);
        st = enco_evaluate_progress(tr, data, (size_t)max, cli_progress_fn, &pr, &r);
        cli_progress_end(&pr);
    }
    int rc = st == ENCO_OK ? cli_print_eval(&r) : cli_fail("eval", st);
    enco_translator_close(tr);
    enco_ctx_free(ctx);
    return rc;
}
