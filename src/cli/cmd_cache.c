/* enco-cl cache [--clear] */
#include "cli/cli.h"

#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void help(void)
{
    printf("usage: enco-cl cache [--clear]\n\n"
           "Shows the compiled-kernel cache folder, its entries and their size.\n"
           "Compiled programs are cached per device, driver and source, so later runs\n"
           "skip the OpenCL compiler. The folder is $ENCO_CACHE_DIR, else\n"
           "$XDG_CACHE_HOME/enco-cl, else ~/.cache/enco-cl; ENCO_CL_CACHE=0 disables it.\n\n"
           "  --clear      remove every cached program\n"
           "  -h, --help   this text\n");
}

int cmd_cache(int argc, char **argv)
{
    static const struct option opts[] = {{"clear", no_argument, NULL, 'x'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int clear = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'x': clear = 1; break;
        case 'h': help(); return 0;
        default:
            return cli_usage_error("cache", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("cache", "unexpected argument '%s'", argv[optind]);
    char dir[1024];
    enco_status st = enco_cache_default_dir(dir, sizeof dir);
    if (st != ENCO_OK)
        return cli_fail("cache", st);
    if (clear) {
        unsigned removed = 0;
        st = enco_cache_clear(dir, &removed);
        if (st != ENCO_OK)
            return cli_fail("cache --clear", st);
        printf("removed %u cached program%s from %s\n", removed, removed == 1 ? "" : "s", dir);
        return 0;
    }
    unsigned entries = 0;
    unsigned long long bytes = 0;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            size_t n = strlen(e->d_name);
            if (n < 4 || strcmp(e->d_name + n - 4, ".bin") != 0)
                continue;
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            struct stat sb;
            if (stat(path, &sb) == 0) {
                entries++;
                bytes += (unsigned long long)sb.st_size;
            }
        }
        closedir(d);
    }
    printf("cache folder: %s%s\n", dir, d ? "" : " (not created yet)");
    printf("entries:      %u (%.1f MiB)\n", entries, (double)bytes / (1024.0 * 1024.0));
    return 0;
}
