/* enco-cl devices [--check] [--device SEL] */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void help(void)
{
    printf("usage: enco-cl devices [--check] [--device SEL]\n\n"
           "Lists every OpenCL platform and device with its capabilities.\n\n"
           "  --check        also run, on each device, a small kernel of ours and an SGEMM\n"
           "                 (CLBlast, or the built-in GEMM where CLBlast cannot run) and\n"
           "                 compare both with a CPU result; exit status 1 if any fails\n"
           "  -d, --device SEL  only this device: an index or part of a name\n"
           "  -h, --help     this text\n\n"
           "The device marked '*' is the one other commands use by default\n"
           "(ENCO_DEVICE overrides it).\n");
}

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

static void print_device(const enco_device_info *d, int is_default)
{
    printf("%c [%u] %s\n", is_default ? '*' : ' ', d->index, d->name);
    printf("      platform:       %s (%s)\n", d->platform, d->platform_version);
    printf("      vendor:         %s\n", d->vendor);
    printf("      type:           %s\n", d->type);
    printf("      driver:         %s\n", d->driver_version);
    printf("      OpenCL C:       %s\n", d->opencl_c_version);
    printf("      compute units:  %u @ %u MHz\n", d->compute_units, d->max_clock_mhz);
    printf("      global memory:  %.0f MiB\n", mib(d->global_mem_bytes));
    printf("      max allocation: %.0f MiB\n", mib(d->max_alloc_bytes));
    printf("      local memory:   %.0f KiB\n", (double)d->local_mem_bytes / 1024.0);
    printf("      fp16 / fp64:    %s / %s\n", d->fp16 ? "yes" : "no", d->fp64 ? "yes" : "no");
}

static int check_device(const enco_device_info *d)
{
    char spec[16];
    snprintf(spec, sizeof spec, "%u", d->index);
    enco_ctx *ctx = NULL;
    enco_ctx_options o = CLI_CTX_OPTIONS(spec);
    enco_status st = enco_ctx_create(&ctx, &o);
    if (st != ENCO_OK) {
        printf("      check:          FAIL (cannot open the device)\n");
        return cli_fail("devices --check", st);
    }
    enco_check_result r;
    st = enco_ctx_self_check(ctx, &r);
    const char *tuning = enco_ctx_tuning(ctx);
    if (strcmp(r.gemm_backend, "CLBlast") == 0)
        printf("      CLBlast tuning: %s\n",
               *tuning ? tuning : "CLBlast's own (none imported; see enco-cl tune)");
    enco_ctx_free(ctx);
    if (st != ENCO_OK) {
        printf("      check:          FAIL (error while running)\n");
        return cli_fail("devices --check", st);
    }
    printf("      check kernel:   %s (max abs error %.2e, limit 1e-5)\n",
           r.kernel_ok ? "pass" : "FAIL", r.kernel_max_err);
    printf("      check SGEMM:    %s (%s, max rel error %.2e, limit 1e-5)\n",
           r.gemm_ok ? "pass" : "FAIL", r.gemm_backend, r.gemm_max_err);
    return r.kernel_ok && r.gemm_ok ? 0 : 1;
}

int cmd_devices(int argc, char **argv)
{
    static const struct option opts[] = {{"check", no_argument, NULL, 'c'},
                                         {"device", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int check = 0;
    const char *sel = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "cd:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': check = 1; break;
        case 'd': sel = optarg; break;
        case 'h': help(); return 0;
        default:
            return cli_usage_error("devices", "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("devices", "unexpected argument '%s'", argv[optind]);

    enco_device_info *list = NULL;
    size_t n = 0;
    enco_status st = enco_devices_list(&list, &n);
    if (st != ENCO_OK)
        return cli_fail("devices", st);
    unsigned def = 0;
    st = enco_device_select(sel, &def);
    if (st != ENCO_OK) {
        enco_devices_free(list);
        return cli_fail("devices", st);
    }
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        if (sel && i != def)
            continue;
        print_device(&list[i], i == def);
        if (check)
            failures += check_device(&list[i]) != 0;
    }
    enco_devices_free(list);
    if (check) {
        printf("%s\n", failures ? "device check FAILED" : "device check passed");
        return failures ? 1 : 0;
    }
    return 0;
}
