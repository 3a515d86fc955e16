/* Kernel sources, program build and the on-disk program-binary cache.
 *
 * A cache entry is <dir>/<key>.bin, key = 128-bit hash of source, build options,
 * device name, driver version, device and platform version. File layout:
 *   magic "ENCOPB01" | u64 payload size | u64 payload hash | 16-byte key | payload
 * Entries are written to a temporary file and renamed. Anything wrong with an
 * entry (short, bad magic, bad hash, rejected by the driver) makes us rebuild
 * from source and rewrite it; cache failures are never errors. */
#include "cl/ctx.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char MAGIC[8] = {'E', 'N', 'C', 'O', 'P', 'B', '0', '1'};
#define HEADER_SIZE (8 + 8 + 8 + 16)
#define ENTRY_SUFFIX ".bin"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc((size_t)size + 1);
            if (buf && fread(buf, 1, (size_t)size, f) == (size_t)size) {
                buf[size] = '\0';
                *len = (size_t)size;
            } else {
                free(buf);
                buf = NULL;
            }
        }
    }
    fclose(f);
    return buf;
}

enco_status enco_cl_source_get(const enco_ctx *ctx, const char *name, const char **src, int *owned)
{
    *src = NULL;
    *owned = 0;
    if (ctx->kernel_dir[0]) {
        char path[ENCO_PATH_MAX + ENCO_NAME_MAX + 8];
        snprintf(path, sizeof path, "%s/%s.cl", ctx->kernel_dir, name);
        size_t len = 0;
        char *text = read_file(path, &len);
        if (!text)
            return ENCO_FAIL(ENCO_ERR_IO, "cannot read kernel source %s (ENCO_CL_DIR): %s", path,
                             strerror(errno));
        *src = text;
        *owned = 1;
        return ENCO_OK;
    }
    for (size_t i = 0; i < enco_cl_sources_count; i++)
        if (strcmp(enco_cl_sources[i].name, name) == 0) {
            *src = enco_cl_sources[i].source;
            return ENCO_OK;
        }
    return ENCO_FAIL(ENCO_ERR_NOT_FOUND, "no embedded kernel source cl/%s.cl", name);
}

enco_status enco_cache_default_dir(char *buf, size_t size)
{
    const char *env = getenv("ENCO_CACHE_DIR");
    if (env && *env) {
        snprintf(buf, size, "%s", env);
        return ENCO_OK;
    }
    env = getenv("XDG_CACHE_HOME");
    if (env && *env) {
        snprintf(buf, size, "%s/enco-cl", env);
        return ENCO_OK;
    }
    env = getenv("HOME");
    if (env && *env) {
        snprintf(buf, size, "%s/.cache/enco-cl", env);
        return ENCO_OK;
    }
    return ENCO_FAIL(ENCO_ERR_NOT_FOUND, "no cache folder: neither XDG_CACHE_HOME nor HOME is set");
}

static void cache_key(const enco_ctx *ctx, const char *source, const char *options,
                      unsigned char key[16])
{
    const char *parts[] = {source, options, ctx->info.name, ctx->info.driver_version,
                           ctx->info.device_version, ctx->info.platform_version,
                           ctx->info.platform};
    uint64_t h1 = ENCO_FNV_OFFSET, h2 = 0x84222325cbf29ce4ULL;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t len = strlen(parts[i]) + 1; /* include the NUL as a separator */
        h1 = enco_fnv1a(h1, parts[i], len);
        h2 = enco_fnv1a(h2 ^ (uint64_t)i, parts[i], len);
    }
    memcpy(key, &h1, 8);
    memcpy(key + 8, &h2, 8);
}

static void entry_path(const enco_ctx *ctx, const unsigned char key[16], char *path, size_t size)
{
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    snprintf(path, size, "%s/%s%s", ctx->cache_dir, hex, ENTRY_SUFFIX);
}

int enco_mkdir_p(const char *dir)
{
    char tmp[ENCO_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return (mkdir(tmp, 0755) == 0 || errno == EEXIST) ? 0 : -1;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Loads a program binary from the cache; returns NULL on any problem and sets
 * *rejected when an entry existed but was unusable. */
static cl_program cache_load(enco_ctx *ctx, const char *path, const unsigned char key[16],
                             const char *options, int *rejected)
{
    *rejected = 0;
    size_t len = 0;
    unsigned char *data = (unsigned char *)read_file(path, &len);
    if (!data)
        return NULL;
    cl_program prog = NULL;
    *rejected = 1;
    if (len >= HEADER_SIZE && memcmp(data, MAGIC, 8) == 0 && memcmp(data + 24, key, 16) == 0) {
        uint64_t size = get_u64(data + 8);
        uint64_t hash = get_u64(data + 16);
        const unsigned char *payload = data + HEADER_SIZE;
        if (size == len - HEADER_SIZE && size > 0 &&
            enco_fnv1a(ENCO_FNV_OFFSET, payload, (size_t)size) == hash) {
            size_t psize = (size_t)size;
            cl_int bin_status = CL_SUCCESS, err = CL_SUCCESS;
            prog = clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &psize, &payload,
                                             &bin_status, &err);
            if (err != CL_SUCCESS || bin_status != CL_SUCCESS) {
                if (prog)
                    clReleaseProgram(prog);
                prog = NULL;
            } else if (clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL) != CL_SUCCESS) {
                clReleaseProgram(prog);
                prog = NULL;
            } else {
                *rejected = 0;
            }
        }
    }
    free(data);
    return prog;
}

static void cache_store(enco_ctx *ctx, cl_program prog, const char *path,
                        const unsigned char key[16])
{
    size_t size = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS ||
        size == 0)
        return;
    unsigned char *buf = malloc(HEADER_SIZE + size);
    if (!buf)
        return;
    unsigned char *payload = buf + HEADER_SIZE;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof payload, &payload, NULL) !=
        CL_SUCCESS) {
        free(buf);
        return;
    }
    memcpy(buf, MAGIC, 8);
    put_u64(buf + 8, size);
    put_u64(buf + 16, enco_fnv1a(ENCO_FNV_OFFSET, payload, size));
    memcpy(buf + 24, key, 16);

    if (enco_mkdir_p(ctx->cache_dir) == 0) {
        char tmp[ENCO_PATH_MAX + 160];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
        FILE *f = fopen(tmp, "wb");
        if (f) {
            int ok = fwrite(buf, 1, HEADER_SIZE + size, f) == HEADER_SIZE + size;
            ok = (fflush(f) == 0) && ok;
            ok = (fclose(f) == 0) && ok;
            if (!ok || rename(tmp, path) != 0)
                remove(tmp);
        }
    }
    free(buf);
}

static enco_status build_from_source(enco_ctx *ctx, const char *name, const char *source,
                                     const char *options, cl_program *out)
{
    cl_int err = CL_SUCCESS;
    cl_program prog = clCreateProgramWithSource(ctx->context, 1, &source, NULL, &err);
    if (err != CL_SUCCESS)
        return ENCO_FAIL(err, "clCreateProgramWithSource for cl/%s.cl failed", name);
    err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        size_t log_size = 0;
        clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size);
        char *log = malloc(log_size + 1);
        if (log) {
            log[0] = '\0';
            clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, log_size, log, NULL);
            log[log_size] = '\0';
        }
        ENCO_FAIL(ENCO_ERR_BUILD, "building cl/%s.cl for %s failed (%s, options \"%s\")", name,
                  ctx->info.name, enco_status_str(err), options);
        enco_error_append("\nbuild log:\n%s", log && log[0] ? log : "(empty)");
        free(log);
        clReleaseProgram(prog);
        return ENCO_ERR_BUILD;
    }
    ctx->stats.programs_built++;
    *out = prog;
    return ENCO_OK;
}

enco_status enco_program_build_cached(enco_ctx *ctx, const char *name, const char *source,
                                      const char *options, cl_program *out)
{
    *out = NULL;
    unsigned char key[16];
    char path[ENCO_PATH_MAX + 64];
    if (ctx->cache_on) {
        cache_key(ctx, source, options, key);
        entry_path(ctx, key, path, sizeof path);
        int rejected = 0;
        cl_program prog = cache_load(ctx, path, key, options, &rejected);
        if (prog) {
            ctx->stats.cache_hits++;
            *out = prog;
            return ENCO_OK;
        }
        if (rejected) {
            ctx->stats.cache_rejects++;
            remove(path);
        }
    }
    ENCO_TRY(build_from_source(ctx, name, source, options, out));
    if (ctx->cache_on)
        cache_store(ctx, *out, path, key);
    return ENCO_OK;
}

enco_status enco_program_build_source(enco_ctx *ctx, const char *name, const char *source,
                                      const char *options, cl_program *out)
{
    return enco_program_build_cached(ctx, name, source, options ? options : ctx->build_options,
                                     out);
}

enco_status enco_cache_clear(const char *dir, unsigned *removed)
{
    *removed = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return ENCO_OK;
        return ENCO_FAIL(ENCO_ERR_IO, "cannot open cache folder %s: %s", dir, strerror(errno));
    }
    struct dirent *e;
    size_t slen = strlen(ENTRY_SUFFIX);
    enco_status st = ENCO_OK;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        /* Only names we write: 32 hex digits + ".bin" (+ ".tmp.<pid>" leftovers). */
        if (n < 32 + slen || strspn(e->d_name, "0123456789abcdef") != 32 ||
            strncmp(e->d_name + 32, ENTRY_SUFFIX, slen) != 0)
            continue;
        char path[ENCO_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (remove(path) == 0)
            (*removed)++;
        else
            st = ENCO_FAIL(ENCO_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    }
    closedir(d);
    return st;
}
