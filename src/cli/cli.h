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
/* --direction AtoB | BtoA (case-insensitive) into *btoa; a usage error
 * (its exit code, non-zero) for anything else. */
int cli_parse_direction(const char *cmd, const char *arg, int *btoa);

/* The progress line of long work (translate of a folder, eval, verify, bench,
 * tune): on stderr, rewritten in place with a carriage return, only when
 * stderr is a terminal; nothing at all otherwise, so logs and pipes stay
 * clean. It shows what is being done, done/total, the rate (unit/s, or
 * s/unit below one a second) and the ETA at that rate; until a first item
 * is done, the time elapsed. The rate is measured from the phase's first
 * progress on (the first item carries the setup: program builds, loading),
 * over that first item until a second one is done. */
typedef struct cli_progress {
    int on;             /* stderr is a terminal and not quieted */
    const char *unit;   /* of the rate: "img", "it", "row", ... */
    int started, shown; /* a phase runs; a line is on the screen */
    double t0, first_at, drawn_at; /* the phase's start, its first progress, the last draw */
    size_t base, first_done;  /* done at those moments */
    size_t done, total;       /* now; total 0: unknown */
    char what[256];
} cli_progress;

/* unit: of the rate (NULL: "it"); quiet: never show anything. */
void cli_progress_init(cli_progress *p, const char *unit, int quiet);
/* done of total items finished (total 0: unknown); what: the current work.
 * A new phase (the rate's clock restarts) begins at the first update, when
 * done goes back, or when total changes. Redraws at most ten times a second,
 * and always at the start of a phase and when done reaches total. */
void cli_progress_update(cli_progress *p, const char *what, size_t done, size_t total);
/* cli_progress_update with the signature of the library's progress callbacks
 * (enco_eval_progress_fn, enco_verify_progress_fn, enco_bench_progress_fn);
 * user: the cli_progress. */
void cli_progress_fn(void *user, const char *what, size_t done, size_t total);
/* Erases the line, so that other stderr output can follow; the next update
 * draws it again. */
void cli_progress_clear(cli_progress *p);
/* Ends the line (a newline after the last state shown); the next update
 * starts a new phase. */
void cli_progress_end(cli_progress *p);

struct enco_eval_result;
/* Prints an evaluation table to stdout; returns 0. */
int cli_print_eval(const struct enco_eval_result *r);

#endif
