/* enco-cl config [-c FILE] [--set K=V]... [--dump | --list] */
#include "cli/cli.h"

#include "train/config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: enco-cl config [-c FILE] [--set group.key=value]... [--dump | --list]\n\n"
           "Checks a configuration and shows the effective values.\n\n"
           "  -c, --config FILE   configuration file (libconfig syntax)\n"
           "      --set K=V       override one option\n"
           "      --dump          print the effective configuration as a config file (default)\n"
           "      --list          list every option: type, default, range and meaning\n"
           "  -h, --help          this text\n");
}

static const char *type_name(enco_opt_type t)
{
    switch (t) {
    case ENCO_OPT_INT: return "int";
    case ENCO_OPT_INT64: return "int";
    case ENCO_OPT_FLOAT: return "float";
    case ENCO_OPT_BOOL: return "bool";
    case ENCO_OPT_STRING: return "string";
    case ENCO_OPT_INT_LIST: return "int list";
    }
    return "?";
}

static void list_options(void)
{
    for (size_t i = 0; i < enco_options_count; i++) {
        const enco_option *o = &enco_options[i];
        printf("%s (%s, default %s", o->key, type_name(o->type), o->def);
        if (o->choices)
            printf(", one of %s", o->choices);
        else if (o->type == ENCO_OPT_INT || o->type == ENCO_OPT_FLOAT ||
                 o->type == ENCO_OPT_INT64)
            printf(", %g..%g", o->min, o->max);
        printf(")\n    %s\n", o->help);
    }
}

int cmd_config(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"set", required_argument, NULL, 'S'},
                                         {"dump", no_argument, NULL, 'D'},
                                         {"list", no_argument, NULL, 'L'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    enco_config cfg;
    enco_config_defaults(&cfg);
    const char *file = NULL;
    const char *sets[64];
    int nsets = 0, list = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 'S':
            if (nsets == 64)
                return cli_usage_error("config", "too many --set options");
            sets[nsets++] = optarg;
            break;
        case 'D': list = 0; break;
        case 'L': list = 1; break;
        case 'h': help(); return 0;
        default:
            return cli_usage_error("config", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("config", "unexpected argument '%s'", argv[optind]);
    if (list) {
        list_options();
        return 0;
    }
    enco_status st = file ? enco_config_load(&cfg, file) : ENCO_OK;
    for (int i = 0; st == ENCO_OK && i < nsets; i++)
        st = enco_config_set(&cfg, sets[i]);
    if (st == ENCO_OK)
        st = enco_config_validate(&cfg);
    if (st != ENCO_OK)
        return cli_fail("config", st);
    char *dump = enco_config_dump(&cfg);
    if (!dump)
        return cli_fail("config", ENCO_ERR_NO_MEMORY);
    fputs(dump, stdout);
    free(dump);
    return 0;
}
