/* enco-cl tune: CLBlast's GEMM tuner for one device, results stored and
 * applied on every later run (src/cl/tune.c). */
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void help(void)
{
    printf("usage: enco-cl tune [--device SEL] [--run [options]] [--import FILE...]\n"
           "                    [--show] [--clear]\n\n"
           "CLBlast ships tuned GEMM parameters for some devices only (none for NVIDIA\n"
           "Hopper, for example); others get generic ones. This command runs CLBlast's\n"
           "tuner (clblast_tuner_xgemm, Debian package clblast-utils) on the device, or\n"
           "imports results it wrote earlier (clblast_xgemm_<V>_32.json), applies the\n"
           "fastest parameters, checks CLBlast SGEMMs against the host with them, and\n"
           "stores them in the cache folder. Every later enco-cl run on this device and\n"
           "driver applies them (`enco-cl devices --check` shows it; ENCO_CLBLAST_TUNING=0\n"
           "turns it off for one run). CPU devices use enco-cl's own GEMM kernel and\n"
           "CLBlast only for a few small products, so tuning matters on GPUs.\n\n"
           "  --run               run the tuner now (phases: GEMMK 0 fixed set, GEMMK 0\n"
           "                      random sample, GEMMK 1 fixed set, GEMMK 1 random sample;\n"
           "                      each phase writes one result file)\n"
           "    --size MxNxK      GEMM size to tune at (default 256x4096x2304: the\n"
           "                      generator's residual-block convolution at 256x256)\n"
           "    --fraction F      share of the random phases' candidates tried (default\n"
           "                      0.0005)\n"
           "    --time-limit S    stop the tuner after S seconds and keep the phases it\n"
           "                      finished (default 900)\n"
           "    --tuner PATH      the tuner program (default clblast_tuner_xgemm on PATH)\n"
           "  --import FILE...    import tuner result files instead of running the tuner\n"
           "  --show              print the stored parameters of the device\n"
           "  --clear             remove the stored parameters of the device\n"
           "  -d, --device SEL    device (index or part of a name; default ENCO_DEVICE /\n"
           "                      first GPU)\n"
           "  -h, --help          this text\n");
}

static int show(enco_ctx *ctx)
{
    char path[2048];
    enco_status st = enco_tuning_path(ctx, path, sizeof path);
    if (st != ENCO_OK)
        return cli_fail("tune --show", st);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("%s: no stored tuning for %s (CLBlast's own parameters are used)\n", path,
               enco_ctx_device(ctx)->name);
        return 0;
    }
    printf("%s:\n", path);
    char line[2048];
    while (fgets(line, sizeof line, f))
        fputs(line, stdout);
    fclose(f);
    const char *applied = enco_ctx_tuning(ctx);
    if (strncmp(applied, "ignored", 7) == 0)
        printf("note: this run %s\n", applied);
    return 0;
}

/* The tuner's -platform / -device numbers for our device. */
static int tuner_ids(const enco_device_info *d, unsigned *plat, unsigned *dev)
{
    enco_device_info *list = NULL;
    size_t n = 0;
    if (enco_devices_list(&list, &n) != ENCO_OK)
        return -1;
    *plat = d->platform_index;
    *dev = 0;
    for (size_t i = 0; i < n && list[i].index != d->index; i++)
        if (list[i].platform_index == d->platform_index)
            (*dev)++;
    enco_devices_free(list);
    return 0;
}

/* Runs the tuner in dir with a time limit, echoing its phase lines. */
static int run_tuner(const char *tuner, const char *dir, unsigned plat, unsigned dev,
                     const char *m, const char *n, const char *k, const char *fraction,
                     long limit_s)
{
    char log[1200];
    snprintf(log, sizeof log, "%s/tuner.log", dir);
    char pl[16], dv[16];
    snprintf(pl, sizeof pl, "%u", plat);
    snprintf(dv, sizeof dv, "%u", dev);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "enco-cl: tune: fork failed: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || chdir(dir) != 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp(tuner, tuner, "-platform", pl, "-device", dv, "-precision", "32", "-m", m, "-n",
               n, "-k", k, "-fraction", fraction, "-runs", "2", (char *)NULL);
        _exit(127);
    }
    const time_t t0 = time(NULL);
    long pos = 0; /* the log up to here has been shown */
    int status = 0, done = 0, killed = 0;
    /* On a terminal, a progress line: the phase's configurations, from the
     * rows of the tuner's table ("| ID | total | parameters... |"). */
    cli_progress pr;
    cli_progress_init(&pr, "cfg", 0);
    char phase[32] = "tuner", what[96];
    size_t row = 0, rows = 0;
    while (!done) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            done = 1;
        /* New complete lines only: the log grows to megabytes (one table
         * row per configuration), so it is read on from where it was left. */
        FILE *f = fopen(log, "r");
        if (f && fseek(f, pos, SEEK_SET) == 0) {
            char line[4096];
            while (fgets(line, sizeof line, f)) {
                size_t len = strlen(line);
                if (len == 0 || (line[len - 1] != '\n' && len + 1 < sizeof line))
                    break; /* still being written */
                pos = ftell(f);
                size_t id, total;
                if (strncmp(line, "* (", 3) == 0 || strncmp(line, "* Found best", 12) == 0 ||
                    strncmp(line, "* Best param", 12) == 0) {
                    cli_progress_clear(&pr);
                    fprintf(stderr, "[%3lds] tuner %s", (long)(time(NULL) - t0), line + 2);
                }
                if (strncmp(line, "* (", 3) == 0) { /* a new phase: "* (2/4) Tuning ..." */
                    snprintf(phase, sizeof phase, "tuner %.*s", (int)strcspn(line + 2, " \n"),
                             line + 2);
                    row = rows = 0;
                } else if (sscanf(line, "| %zu | %zu |", &id, &total) == 2) {
                    row = id;
                    rows = total;
                }
            }
        }
        if (f)
            fclose(f);
        if (done)
            break;
        if (!killed && time(NULL) - t0 >= limit_s) {
            cli_progress_clear(&pr);
            fprintf(stderr, "[%3lds] time limit reached: stopping the tuner, keeping the "
                            "phases it finished\n", (long)(time(NULL) - t0));
            kill(pid, SIGTERM);
            killed = 1;
        }
        if (!killed) {
            snprintf(what, sizeof what, "%s, time limit in %ld s", phase,
                     limit_s - (long)(time(NULL) - t0));
            cli_progress_update(&pr, what, row, rows);
        }
        sleep(1);
    }
    cli_progress_clear(&pr);
    if (!killed && WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        fprintf(stderr, "enco-cl: tune: cannot run '%s' (install clblast-utils, or give "
                        "--tuner PATH)\n", tuner);
        return -1;
    }
    if (!killed && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        fprintf(stderr, "enco-cl: tune: the tuner stopped with status %d (log: %s); "
                        "importing what it wrote\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                log);
    return 0;
}

int cmd_tune(int argc, char **argv)
{
    static const struct option opts[] = {{"run", no_argument, NULL, 'r'},
                                         {"import", no_argument, NULL, 'i'},
                                         {"show", no_argument, NULL, 's'},
                                         {"clear", no_argument, NULL, 'x'},
                                         {"size", required_argument, NULL, 'z'},
                                         {"fraction", required_argument, NULL, 'f'},
                                         {"time-limit", required_argument, NULL, 't'},
                                         {"tuner", required_argument, NULL, 'T'},
                                         {"device", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int run = 0, import = 0, do_show = 0, clear = 0, c;
    const char *sel = NULL, *size = "256x4096x2304", *fraction = "0.0005",
               *tuner = "clblast_tuner_xgemm";
    long limit = 900;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': run = 1; break;
        case 'i': import = 1; break;
        case 's': do_show = 1; break;
        case 'x': clear = 1; break;
        case 'z': size = optarg; break;
        case 'f': fraction = optarg; break;
        case 'T': tuner = optarg; break;
        case 'd': sel = optarg; break;
        case 't': {
            char *end;
            limit = strtol(optarg, &end, 10);
            if (*end || limit <= 0)
                return cli_usage_error("tune", "--time-limit wants seconds > 0, got '%s'",
                                       optarg);
            break;
        }
        case 'h': help(); return 0;
        default:
            return cli_usage_error("tune", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (run + import + do_show + clear != 1)
        return cli_usage_error("tune", "say what to do: one of --run, --import FILE..., --show, "
                                       "--clear");
    if (!import && optind < argc)
        return cli_usage_error("tune", "unexpected argument '%s'", argv[optind]);
    if (import && optind == argc)
        return cli_usage_error("tune", "--import needs the tuner's result files");
    unsigned long mm, nn, kk;
    char extra;
    if (sscanf(size, "%lux%lux%lu%c", &mm, &nn, &kk, &extra) != 3 || !mm || !nn || !kk)
        return cli_usage_error("tune", "--size wants MxNxK, e.g. 1024x1024x1024, got '%s'", size);
    char *fend;
    double fr = strtod(fraction, &fend);
    if (*fend || !(fr > 0 && fr <= 1))
        return cli_usage_error("tune", "--fraction wants a number in (0, 1], got '%s'", fraction);

    enco_ctx *ctx = NULL;
    enco_ctx_options o = CLI_CTX_OPTIONS(sel);
    enco_status st = enco_ctx_create(&ctx, &o);
    if (st != ENCO_OK)
        return cli_fail("tune", st);
    const enco_device_info *d = enco_ctx_device(ctx);
    int rc = 0;
    if (do_show) {
        rc = show(ctx);
    } else if (clear) {
        int removed = 0;
        st = enco_tuning_clear(ctx, &removed);
        if (st != ENCO_OK)
            rc = cli_fail("tune --clear", st);
        else
            printf("%s stored tuning for %s\n", removed ? "removed the" : "there was no",
                   d->name);
    } else if (enco_ctx_gemm_backend(ctx) != ENCO_GEMM_CLBLAST) {
        fprintf(stderr, "enco-cl: tune: %s uses the built-in GEMM (ENCO_GEMM=builtin or no "
                        "CLBlast): nothing to tune\n", d->name);
        rc = 1;
    } else if (import) {
        char summary[4096];
        st = enco_tuning_import(ctx, (const char *const *)argv + optind, argc - optind, summary,
                                sizeof summary);
        if (st != ENCO_OK)
            rc = cli_fail("tune --import", st);
        else
            printf("stored and checked: %s\n", summary);
    } else {
        char dir[] = "/tmp/enco-tune-XXXXXX";
        unsigned plat = 0, dev = 0;
        if (!mkdtemp(dir) || tuner_ids(d, &plat, &dev) != 0) {
            fprintf(stderr, "enco-cl: tune: cannot prepare a work folder: %s\n", strerror(errno));
            enco_ctx_free(ctx);
            return 1;
        }
        char m[24], n[24], k[24];
        snprintf(m, sizeof m, "%lu", mm);
        snprintf(n, sizeof n, "%lu", nn);
        snprintf(k, sizeof k, "%lu", kk);
        fprintf(stderr, "tuning CLBlast's GEMM on %s (platform %u, device %u) at %sx%sx%s, "
                        "at most %ld s; work folder %s\n", d->name, plat, dev, m, n, k, limit, dir);
        if (run_tuner(tuner, dir, plat, dev, m, n, k, fraction, limit) != 0) {
            enco_ctx_free(ctx);
            return 1;
        }
        const char *files[8];
        char paths[8][1200];
        int nf = 0;
        DIR *dd = opendir(dir);
        struct dirent *e;
        while (dd && (e = readdir(dd)) != NULL && nf < 8) {
            size_t len = strlen(e->d_name);
            if (strncmp(e->d_name, "clblast_xgemm", 13) == 0 && len > 5 &&
                strcmp(e->d_name + len - 5, ".json") == 0) {
                snprintf(paths[nf], sizeof paths[nf], "%s/%s", dir, e->d_name);
                files[nf] = paths[nf];
                nf++;
            }
        }
        if (dd)
            closedir(dd);
        if (nf == 0) {
            fprintf(stderr, "enco-cl: tune: the tuner finished no phase (log: %s/tuner.log); "
                            "give it more --time-limit\n", dir);
            rc = 1;
        } else {
            char summary[4096];
            st = enco_tuning_import(ctx, files, nf, summary, sizeof summary);
            if (st != ENCO_OK)
                rc = cli_fail("tune", st);
            else
                printf("stored and checked: %s\n(tuner output kept in %s)\n", summary, dir);
        }
    }
    enco_ctx_free(ctx);
    return rc;
}
