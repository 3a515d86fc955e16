/* enco-cl: EnCo training on any OpenCL device. Subcommand dispatch. */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#ifndef ENCO_VERSION
#define ENCO_VERSION "0.1.0"
#endif

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"devices", cmd_devices, "list OpenCL devices; --check runs a kernel and an SGEMM on each"},
    {"cache", cmd_cache, "show or clear the compiled-kernel cache"},
    {"tune", cmd_tune, "tune CLBlast's GEMM for a device (its tuner), store and apply the result"},
    {"bench", cmd_bench, "benchmarks: device ceilings, per-kernel table, training-step time"},
    {"synth", cmd_synth, "write a synthetic unpaired dataset with ground-truth test pairs"},
    {"train", cmd_train, "train a model from a configuration file (see configs/)"},
    {"config", cmd_config, "check a configuration; show every option (--list) or the effective values"},
    {"eval", cmd_eval, "score a generator on test pairs with ground truth"},
    {"translate", cmd_translate, "translate images with a trained generator"},
    {"test", cmd_test, "translate ROOT/testA into a CUT-style results tree (images + index.html)"},
    {"verify", cmd_verify, "train the same seed on two devices and compare the results"},
    {"step", cmd_step, "run one training iteration from a state file and write everything out"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: enco-cl <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-10s %s\n", "version", "print the version");
    fprintf(out, "  %-10s %s\n", "help", "this text; 'enco-cl <command> --help' for a command");
    fprintf(out,
            "\nenvironment:\n"
            "  ENCO_DEVICE    device to use: an index from 'enco-cl devices' or part of a name\n"
            "                 (default: the first GPU, else the first device)\n"
            "  ENCO_CL_DIR    read kernels from this folder instead of the built-in copies\n"
            "  ENCO_CL_CACHE  0 disables the compiled-kernel cache\n"
            "  ENCO_CACHE_DIR cache folder (default $XDG_CACHE_HOME/enco-cl or ~/.cache/enco-cl)\n"
            "  ENCO_GEMM      clblast or builtin: matrix-multiply backend (default clblast)\n");
}

int cli_fail(const char *what, enco_status st)
{
    const char *msg = enco_last_error();
    fprintf(stderr, "enco-cl: %s: %s\n", what, msg && *msg ? msg : enco_status_str(st));
    return 1;
}

void cli_print_kernel_profile(const enco_kernel_profile *p, void *user)
{
    (void)user;
    fprintf(stderr, "kernel profile (ENCO_PROFILE_KERNELS; a device sync around every launch): "
                    "%.3f s in %zu kernels\n", p->total_seconds, p->nrows);
    for (size_t i = 0; i < p->nrows; i++) {
        const enco_kernel_profile_row *r = &p->rows[i];
        fprintf(stderr, "  %6.1f%%  %10.3f ms  %8lu x  %s/%s\n",
                p->total_seconds > 0 ? 100.0 * r->seconds / p->total_seconds : 0.0,
                1e3 * r->seconds, r->launches, r->program, r->kernel);
    }
    fprintf(stderr, "scratch areas (MiB):");
    for (int i = 0; i < ENCO_SCRATCH_AREAS; i++)
        fprintf(stderr, " %s %.1f", p->scratch_names[i], (double)p->scratch_bytes[i] / 1048576.0);
    fprintf(stderr, "\n");
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "enco-cl %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'enco-cl %s --help'.\n", cmd);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0) {
        printf("enco-cl %s\n", ENCO_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "enco-cl: unknown command '%s'\n\n", name);
    usage(stderr);
    return EXIT_USAGE;
}

int cli_parse_direction(const char *cmd, const char *arg, int *btoa)
{
    if (strcasecmp(arg, "AtoB") == 0)
        *btoa = 0;
    else if (strcasecmp(arg, "BtoA") == 0)
        *btoa = 1;
    else
        return cli_usage_error(cmd, "--direction %s: AtoB or BtoA", arg);
    return 0;
}
