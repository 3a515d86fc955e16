/* The command-line layer: the only part of enco-cl that prints or exits. */
#ifndef ENCO_CLI_H
#define ENCO_CLI_H

#include "enco/enco.h"

#define EXIT_USAGE 2

/* Prints "enco-cl: <what>: <library message>" to stderr and returns 1. */
int cli_fail(const char *what, enco_status st);
/* Prints a usage error with a hint to --help and returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints the kernel profile to stderr (enco_ctx_options.on_kernel_profile;
 * ENCO_PROFILE_KERNELS=1). */
void cli_print_kernel_profile(const enco_kernel_profile *p, void *user);
/* The context options of every command: the device, and the profile printed. */
#define CLI_CTX_OPTIONS(dev) {.device = (dev), .on_kernel_profile = cli_print_kernel_profile}

int cmd_devices(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_step(int argc, char **argv);
int cmd_translate(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_test(int argc, char **argv);

/* Whether a file name has the extension of an image format enco-cl reads
 * (png, jpg, jpeg, bmp, tga, gif, ppm, pgm, pnm, psd, hdr, pic; any case). */
int cli_is_image_name(const char *name);

struct enco_eval_result;
/* Prints an evaluation table to stdout; returns 0. */
int cli_print_eval(const struct enco_eval_result *r);

#endif
