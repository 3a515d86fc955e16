/* enco-cl synth --out DIR [--size 64] [--train 200] [--test 20] [--seed S] */
#include "cli/cli.h"

#include "data/synth.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: enco-cl synth --out DIR [--size 64] [--train 200] [--test 20] [--seed 0]\n\n"
           "Writes a synthetic unpaired translation task with ground truth:\n"
           "DIR/trainA and DIR/trainB hold independent random scenes of 2-4 shapes in\n"
           "domain A (solid colours on light grey) and domain B (remapped colours with a\n"
           "bright rim on dark navy); DIR/testA/NNNN.png and DIR/testB/NNNN.png show the\n"
           "same scene in both domains, so testB is the true translation of testA.\n"
           "The output depends only on --seed and --size.\n\n"
           "  --out DIR     dataset folder (created)\n"
           "  --size N      image side in pixels, 16..1024 (default 64)\n"
           "  --train N     images in trainA and in trainB (default 200)\n"
           "  --test N      test pairs (default 20)\n"
           "  --seed S      random seed (default 0)\n"
           "  -h, --help    this text\n");
}

static int parse_long(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

int cmd_synth(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},  {"size", required_argument, NULL, 's'},
        {"train", required_argument, NULL, 't'}, {"test", required_argument, NULL, 'e'},
        {"seed", required_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *out = NULL;
    enco_synth_opts so = {64, 200, 20, 0};
    long long v;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's':
            if (!parse_long(optarg, 16, 1024, &v))
                return cli_usage_error("synth", "--size must be an integer in 16..1024, not '%s'", optarg);
            so.size = (int)v;
            break;
        case 't':
        case 'e':
            if (!parse_long(optarg, 1, 1000000, &v))
                return cli_usage_error("synth", "--%s must be an integer in 1..1000000, not '%s'",
                                       c == 't' ? "train" : "test", optarg);
            if (c == 't')
                so.n_train = (int)v;
            else
                so.n_test = (int)v;
            break;
        case 'r':
            if (!parse_long(optarg, 0, INT64_MAX, &v))
                return cli_usage_error("synth", "--seed must be a non-negative integer, not '%s'", optarg);
            so.seed = (uint64_t)v;
            break;
        case 'h': help(); return 0;
        default:
            return cli_usage_error("synth", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("synth", "unexpected argument '%s'", argv[optind]);
    if (!out)
        return cli_usage_error("synth", "--out DIR is required");
    enco_status st = enco_synth_write(out, &so);
    if (st != ENCO_OK)
        return cli_fail("synth", st);
    printf("wrote %d + %d training images and %d test pairs of %dx%d to %s (seed %llu)\n",
           so.n_train, so.n_train, so.n_test, so.size, so.size, out, (unsigned long long)so.seed);
    return 0;
}
