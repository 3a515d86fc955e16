/* libFuzzer target: the configuration loader (src/train/config.c).
 * The input is written to a memfd and read with enco_config_load (libconfig
 * syntax); then every line of the input is tried as a --set assignment with
 * enco_config_set. After a successful load the effective configuration is
 * dumped, reloaded and dumped again: both dumps must be the same text (a run's
 * config travels this way, e.g. in checkpoint metadata). Built by
 * tools/ci-hardening. */
#define _GNU_SOURCE
#include "train/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static char path[64];

static void put(const void *data, size_t size)
{
    if (fd < 0) {
        fd = memfd_create("enco-fuzz-config", 0);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) {
        perror("memfd write");
        abort();
    }
}

/* Index of the first option whose value differs, or -1. */
static int first_difference(const enco_config *a, const enco_config *b)
{
    for (size_t i = 0; i < enco_options_count; i++) {
        const enco_option *o = &enco_options[i];
        const char *x = (const char *)a + o->offset, *y = (const char *)b + o->offset;
        size_t n = 0;
        switch (o->type) {
        case ENCO_OPT_INT:
        case ENCO_OPT_BOOL: n = sizeof(int); break;
        case ENCO_OPT_INT64: n = sizeof(long long); break;
        case ENCO_OPT_FLOAT: n = sizeof(double); break;
        case ENCO_OPT_STRING: n = strlen(x) + 1; break;
        case ENCO_OPT_INT_LIST:
            if (*(const int *)((const char *)a + o->count_offset) !=
                *(const int *)((const char *)b + o->count_offset))
                return (int)i;
            n = (size_t)*(const int *)((const char *)a + o->count_offset) * sizeof(int);
            break;
        }
        if (memcmp(x, y, n) != 0)
            return (int)i;
    }
    return -1;
}

/* dump -> load gives the same values, and dumping those gives the same text. */
static void round_trip(const enco_config *cfg, const char *from)
{
    (void)enco_config_validate(cfg);
    char *a = enco_config_dump(cfg);
    if (!a)
        abort();
    put(a, strlen(a));
    enco_config back;
    enco_config_defaults(&back);
    if (enco_config_load(&back, path) != ENCO_OK) {
        fprintf(stderr, "fuzz_config: the dump of a config from %s does not load back: %s\n"
                "--- dump:\n%s", from, enco_last_error(), a);
        abort();
    }
    int d = first_difference(cfg, &back);
    if (d >= 0) {
        fprintf(stderr, "fuzz_config: %s changed in dump -> load of a config from %s\n"
                "--- dump:\n%s", enco_options[d].key, from, a);
        abort();
    }
    char *b = enco_config_dump(&back);
    if (!b || strcmp(a, b) != 0) {
        fprintf(stderr, "fuzz_config: dump -> load -> dump changed a config from %s\n"
                "--- first:\n%s--- second:\n%s", from, a, b ? b : "(null)");
        abort();
    }
    free(b);
    free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* @include reads other files (libconfig resolves it itself): not ours to
     * test, and /dev/zero or a FIFO would hang the run. */
    if (memmem(data, size, "@include", 8) || memmem(data, size, "@INCLUDE", 8))
        return 0;
    put(data, size);
    enco_config cfg;
    enco_config_defaults(&cfg);
    enco_status st = enco_config_load(&cfg, path);
    if (st != ENCO_OK && enco_last_error()[0] == '\0')
        abort();
    if (st == ENCO_OK)
        round_trip(&cfg, "file");
    /* Each line as a --set assignment (on defaults, then cumulatively). */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    enco_config_defaults(&cfg);
    for (char *line = text; line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        enco_config before = cfg;
        if (enco_config_set(&cfg, line) != ENCO_OK) {
            if (enco_last_error()[0] == '\0')
                abort();
            cfg = before;
        }
        line = nl ? nl + 1 : NULL;
    }
    round_trip(&cfg, "--set");
    free(text);
    return 0;
}
