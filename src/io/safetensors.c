/* safetensors reader and writer with a small strict JSON parser. */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_HEADER (100u << 20) /* as the reference implementation */

static const char *const dtype_names[ENCO_DT_COUNT] = {"F32", "F64", "I64", "I32", "U8"};
static const size_t dtype_sizes[ENCO_DT_COUNT] = {4, 8, 8, 4, 1};

const char *enco_dtype_name(enco_dtype dt)
{
    return (unsigned)dt < ENCO_DT_COUNT ? dtype_names[dt] : "?";
}

size_t enco_dtype_size(enco_dtype dt) { return (unsigned)dt < ENCO_DT_COUNT ? dtype_sizes[dt] : 0; }

size_t enco_st_numel(const enco_st_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

enco_st_file *enco_st_new(void) { return calloc(1, sizeof(enco_st_file)); }

void enco_st_free(enco_st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->count; i++) {
        free(f->tensors[i].name);
        free(f->tensors[i].data);
    }
    for (size_t i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
    free(f);
}

const enco_st_tensor *enco_st_find(const enco_st_file *f, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

const char *enco_st_get_meta(const enco_st_file *f, const char *key)
{
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_values[i];
    return NULL;
}

/* Shape product with overflow check; 0 on overflow. */
static int shape_bytes(enco_dtype dt, int ndim, const int64_t *shape, size_t *bytes)
{
    size_t n = enco_dtype_size(dt);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return 0;
        size_t d = (size_t)shape[i];
        if (d != 0 && n > SIZE_MAX / d)
            return 0;
        n *= d;
    }
    *bytes = n;
    return 1;
}

static enco_status add_owned(enco_st_file *f, char *name, enco_dtype dtype, int ndim,
                             const int64_t *shape, void *data, size_t nbytes)
{
    if (f->count == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 32;
        enco_st_tensor *t = realloc(f->tensors, cap * sizeof *t);
        if (!t)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        f->tensors = t;
        f->cap = cap;
    }
    enco_st_tensor *t = &f->tensors[f->count++];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim > 0) /* a scalar has no shape array */
        memcpy(t->shape, shape, (size_t)ndim * sizeof(int64_t));
    t->data = data;
    t->nbytes = nbytes;
    return ENCO_OK;
}

enco_status enco_st_add(enco_st_file *f, const char *name, enco_dtype dtype, int ndim,
                        const int64_t *shape, const void *data)
{
    if (!name || !*name || strcmp(name, "__metadata__") == 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "invalid tensor name");
    if ((unsigned)dtype >= ENCO_DT_COUNT || ndim < 0 || ndim > ENCO_ST_MAX_DIMS)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "tensor %s: bad dtype or rank", name);
    if (enco_st_find(f, name))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "tensor %s added twice", name);
    size_t nbytes = 0;
    if (!shape_bytes(dtype, ndim, shape, &nbytes))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "tensor %s: bad shape", name);
    char *n = strdup(name);
    void *d = malloc(nbytes ? nbytes : 1);
    if (!n || !d) {
        free(n);
        free(d);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    }
    if (nbytes)
        memcpy(d, data, nbytes);
    enco_status st = add_owned(f, n, dtype, ndim, shape, d, nbytes);
    if (st != ENCO_OK) {
        free(n);
        free(d);
    }
    return st;
}

enco_status enco_st_set_meta(enco_st_file *f, const char *key, const char *value)
{
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) {
            char *v = strdup(value);
            if (!v)
                return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
            free(f->meta_values[i]);
            f->meta_values[i] = v;
            return ENCO_OK;
        }
    if (f->nmeta == f->cap_meta) {
        size_t cap = f->cap_meta ? 2 * f->cap_meta : 8;
        char **k = realloc(f->meta_keys, cap * sizeof *k);
        if (!k)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        f->meta_keys = k;
        char **v = realloc(f->meta_values, cap * sizeof *v);
        if (!v)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
        f->meta_values = v;
        f->cap_meta = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    }
    f->meta_keys[f->nmeta] = k;
    f->meta_values[f->nmeta] = v;
    f->nmeta++;
    return ENCO_OK;
}

enco_status enco_st_expect(const enco_st_file *f, const char *name, enco_dtype dtype, int ndim,
                           const int64_t *shape, const enco_st_tensor **out)
{
    const enco_st_tensor *t = enco_st_find(f, name);
    if (out)
        *out = t;
    if (!t)
        return ENCO_FAIL(ENCO_ERR_FORMAT, "tensor %s is missing", name);
    if (t->dtype != dtype)
        return ENCO_FAIL(ENCO_ERR_FORMAT, "tensor %s has dtype %s, expected %s", name,
                         enco_dtype_name(t->dtype), enco_dtype_name(dtype));
    if (t->ndim != ndim)
        return ENCO_FAIL(ENCO_ERR_FORMAT, "tensor %s has %d dimensions, expected %d", name,
                         t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i])
            return ENCO_FAIL(ENCO_ERR_FORMAT,
                             "tensor %s has size %lld in dimension %d, expected %lld", name,
                             (long long)t->shape[i], i, (long long)shape[i]);
    return ENCO_OK;
}

/* ---- JSON ------------------------------------------------------------- */

typedef struct json {
    const char *p, *end;
    const char *what;
    const char *start;
} json;

static enco_status jfail(json *j, const char *why)
{
    return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: bad safetensors header at byte %ld: %s", j->what,
                     (long)(j->p - j->start) + 8, why);
}

static void skip_ws(json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int peek(json *j)
{
    skip_ws(j);
    return j->p < j->end ? (unsigned char)*j->p : -1;
}

static enco_status expect_char(json *j, char c)
{
    if (peek(j) != (unsigned char)c) {
        char why[32];
        snprintf(why, sizeof why, "expected '%c'", c);
        return jfail(j, why);
    }
    j->p++;
    return ENCO_OK;
}

static void put_utf8(char *out, size_t *n, unsigned cp)
{
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xc0 | (cp >> 6));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xe0 | (cp >> 12));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*n)++] = (char)(0xf0 | (cp >> 18));
        out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d = (c >= '0' && c <= '9')   ? (unsigned)(c - '0')
                     : (c >= 'a' && c <= 'f') ? (unsigned)(c - 'a' + 10)
                     : (c >= 'A' && c <= 'F') ? (unsigned)(c - 'A' + 10)
                                              : 16u;
        if (d > 15)
            return 0;
        *v = *v * 16 + d;
    }
    return 1;
}

/* Parses a string into a new malloc'd, NUL-terminated buffer. */
static enco_status parse_string(json *j, char **out)
{
    *out = NULL;
    ENCO_TRY(expect_char(j, '"'));
    const char *s = j->p;
    size_t cap = 0;
    while (s < j->end && *s != '"') {
        if (*s == '\\')
            s++;
        s++;
        cap++;
    }
    if (s >= j->end)
        return jfail(j, "unterminated string");
    char *buf = malloc(cap * 4 + 1);
    if (!buf)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    size_t n = 0;
    while (*j->p != '"') {
        unsigned char c = (unsigned char)*j->p++;
        if (c < 0x20) {
            free(buf);
            return jfail(j, "control character in string");
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            continue;
        }
        char e = *j->p++;
        switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            unsigned cp = 0;
            if (j->end - j->p < 4 || !hex4(j->p, &cp)) {
                free(buf);
                return jfail(j, "bad \\u escape");
            }
            j->p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' &&
                j->p[1] == 'u') {
                unsigned lo = 0;
                if (hex4(j->p + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    j->p += 6;
                }
            }
            if (cp == 0) {
                free(buf);
                return jfail(j, "NUL character in string");
            }
            put_utf8(buf, &n, cp);
            break;
        }
        default: free(buf); return jfail(j, "bad escape in string");
        }
    }
    j->p++; /* closing quote */
    buf[n] = '\0';
    *out = buf;
    return ENCO_OK;
}

static enco_status parse_uint(json *j, uint64_t *v)
{
    skip_ws(j);
    if (j->p >= j->end || *j->p < '0' || *j->p > '9')
        return jfail(j, "expected a non-negative integer");
    uint64_t x = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        unsigned d = (unsigned)(*j->p - '0');
        if (x > (UINT64_MAX - d) / 10)
            return jfail(j, "integer too large");
        x = x * 10 + d;
        j->p++;
    }
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return jfail(j, "expected an integer");
    *v = x;
    return ENCO_OK;
}

/* [a, b, ...] of non-negative integers; at most max entries. */
static enco_status parse_uint_array(json *j, uint64_t *vals, int max, int *count)
{
    *count = 0;
    ENCO_TRY(expect_char(j, '['));
    if (peek(j) == ']') {
        j->p++;
        return ENCO_OK;
    }
    for (;;) {
        if (*count == max)
            return jfail(j, "too many entries in array");
        ENCO_TRY(parse_uint(j, &vals[(*count)++]));
        int c = peek(j);
        if (c == ',') {
            j->p++;
            continue;
        }
        if (c == ']') {
            j->p++;
            return ENCO_OK;
        }
        return jfail(j, "expected ',' or ']'");
    }
}

static enco_status parse_metadata(json *j, enco_st_file *f)
{
    ENCO_TRY(expect_char(j, '{'));
    if (peek(j) == '}') {
        j->p++;
        return ENCO_OK;
    }
    for (;;) {
        char *k = NULL, *v = NULL;
        ENCO_TRY(parse_string(j, &k));
        enco_status st = expect_char(j, ':');
        if (st == ENCO_OK)
            st = parse_string(j, &v);
        if (st == ENCO_OK)
            st = enco_st_set_meta(f, k, v);
        free(k);
        free(v);
        ENCO_TRY(st);
        int c = peek(j);
        if (c == ',') {
            j->p++;
            continue;
        }
        if (c == '}') {
            j->p++;
            return ENCO_OK;
        }
        return jfail(j, "expected ',' or '}' in __metadata__");
    }
}

typedef struct pending {
    uint64_t begin, end;
    size_t index;
} pending;

/* One tensor entry: {"dtype": .., "shape": [..], "data_offsets": [b, e]}. */
static enco_status parse_entry(json *j, const char *name, enco_dtype *dt, int *ndim,
                               int64_t *shape, uint64_t *begin, uint64_t *end)
{
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    ENCO_TRY(expect_char(j, '{'));
    for (;;) {
        char *key = NULL;
        ENCO_TRY(parse_string(j, &key));
        enco_status st = expect_char(j, ':');
        if (st == ENCO_OK && strcmp(key, "dtype") == 0 && !have_dtype) {
            char *v = NULL;
            st = parse_string(j, &v);
            if (st == ENCO_OK) {
                int found = 0;
                for (int i = 0; i < ENCO_DT_COUNT; i++)
                    if (strcmp(v, dtype_names[i]) == 0) {
                        *dt = (enco_dtype)i;
                        found = 1;
                    }
                if (!found)
                    st = ENCO_FAIL(ENCO_ERR_FORMAT, "%s: tensor %s has unsupported dtype %s",
                                   j->what, name, v);
                free(v);
            }
            have_dtype = 1;
        } else if (st == ENCO_OK && strcmp(key, "shape") == 0 && !have_shape) {
            uint64_t dims[ENCO_ST_MAX_DIMS];
            st = parse_uint_array(j, dims, ENCO_ST_MAX_DIMS, ndim);
            for (int i = 0; st == ENCO_OK && i < *ndim; i++) {
                if (dims[i] > (uint64_t)INT64_MAX)
                    st = jfail(j, "dimension too large");
                shape[i] = (int64_t)dims[i];
            }
            have_shape = 1;
        } else if (st == ENCO_OK && strcmp(key, "data_offsets") == 0 && !have_offsets) {
            uint64_t off[2];
            int n = 0;
            st = parse_uint_array(j, off, 2, &n);
            if (st == ENCO_OK && n != 2)
                st = jfail(j, "data_offsets needs two entries");
            *begin = off[0];
            *end = off[1];
            have_offsets = 1;
        } else if (st == ENCO_OK) {
            st = ENCO_FAIL(ENCO_ERR_FORMAT, "%s: tensor %s has unexpected or repeated field \"%s\"",
                           j->what, name, key);
        }
        free(key);
        ENCO_TRY(st);
        int c = peek(j);
        if (c == ',') {
            j->p++;
            continue;
        }
        if (c == '}') {
            j->p++;
            break;
        }
        return jfail(j, "expected ',' or '}' in a tensor entry");
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: tensor %s lacks %s", j->what, name,
                         !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    return ENCO_OK;
}

static int cmp_pending(const void *a, const void *b)
{
    const pending *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static enco_status parse_header(json *j, enco_st_file *f, const unsigned char *data,
                                uint64_t data_len)
{
    pending *spans = NULL;
    size_t nspans = 0, cap = 0;
    enco_status st = expect_char(j, '{');
    int c = st == ENCO_OK ? peek(j) : 0;
    if (st == ENCO_OK && c == '}')
        j->p++;
    else
        while (st == ENCO_OK) {
            char *name = NULL;
            st = parse_string(j, &name);
            if (st != ENCO_OK)
                break;
            st = expect_char(j, ':');
            if (st == ENCO_OK && strcmp(name, "__metadata__") == 0) {
                st = parse_metadata(j, f);
                free(name);
            } else if (st == ENCO_OK) {
                enco_dtype dt = ENCO_DT_F32;
                int ndim = 0;
                int64_t shape[ENCO_ST_MAX_DIMS] = {0};
                uint64_t b = 0, e = 0;
                size_t nbytes = 0;
                st = parse_entry(j, name, &dt, &ndim, shape, &b, &e);
                if (st == ENCO_OK && enco_st_find(f, name))
                    st = ENCO_FAIL(ENCO_ERR_FORMAT, "%s: tensor %s appears twice", j->what, name);
                if (st == ENCO_OK && !shape_bytes(dt, ndim, shape, &nbytes))
                    st = ENCO_FAIL(ENCO_ERR_FORMAT, "%s: tensor %s has an impossible shape",
                                   j->what, name);
                if (st == ENCO_OK && (e < b || e > data_len))
                    st = ENCO_FAIL(ENCO_ERR_FORMAT,
                                   "%s: tensor %s has data_offsets [%llu, %llu] outside the %llu "
                                   "data bytes (truncated file?)",
                                   j->what, name, (unsigned long long)b, (unsigned long long)e,
                                   (unsigned long long)data_len);
                if (st == ENCO_OK && e - b != nbytes)
                    st = ENCO_FAIL(ENCO_ERR_FORMAT,
                                   "%s: tensor %s holds %llu bytes but its shape needs %zu",
                                   j->what, name, (unsigned long long)(e - b), nbytes);
                void *copy = NULL;
                if (st == ENCO_OK) {
                    copy = malloc(nbytes ? nbytes : 1);
                    if (!copy)
                        st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
                    else if (nbytes)
                        memcpy(copy, data + b, nbytes);
                }
                if (st == ENCO_OK && nspans == cap) {
                    cap = cap ? 2 * cap : 64;
                    pending *p = realloc(spans, cap * sizeof *p);
                    if (!p)
                        st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
                    else
                        spans = p;
                }
                if (st == ENCO_OK) {
                    spans[nspans++] = (pending){b, e, f->count};
                    st = add_owned(f, name, dt, ndim, shape, copy, nbytes);
                    if (st == ENCO_OK)
                        name = NULL, copy = NULL;
                }
                free(copy);
                free(name);
            } else {
                free(name);
            }
            if (st != ENCO_OK)
                break;
            c = peek(j);
            if (c == ',') {
                j->p++;
                continue;
            }
            if (c == '}') {
                j->p++;
                break;
            }
            st = jfail(j, "expected ',' or '}' after a tensor");
        }
    if (st == ENCO_OK && peek(j) != -1)
        st = jfail(j, "trailing characters after the header object");
    /* The data spans must tile the buffer exactly: no overlap, no holes. */
    if (st == ENCO_OK) {
        if (nspans > 1)
            qsort(spans, nspans, sizeof *spans, cmp_pending);
        uint64_t at = 0;
        for (size_t i = 0; i < nspans && st == ENCO_OK; i++) {
            if (spans[i].begin != at)
                st = ENCO_FAIL(ENCO_ERR_FORMAT, "%s: tensor %s %s", j->what,
                               f->tensors[spans[i].index].name,
                               spans[i].begin < at ? "overlaps another tensor's data"
                                                   : "leaves a gap before its data");
            at = spans[i].end;
        }
        if (st == ENCO_OK && at != data_len)
            st = ENCO_FAIL(ENCO_ERR_FORMAT, "%s: %llu bytes after the last tensor's data",
                           j->what, (unsigned long long)(data_len - at));
    }
    free(spans);
    return st;
}

enco_status enco_st_parse(const unsigned char *buf, size_t len, const char *what,
                          enco_st_file **out)
{
    *out = NULL;
    if (len < 8)
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors file",
                         what, len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)buf[i] << (8 * i);
    if (hlen > MAX_HEADER || hlen > len - 8)
        return ENCO_FAIL(ENCO_ERR_FORMAT,
                         "%s: header length %llu does not fit the %zu-byte file (not a "
                         "safetensors file, or truncated)",
                         what, (unsigned long long)hlen, len);
    if (hlen < 2 || buf[8] != '{')
        return ENCO_FAIL(ENCO_ERR_FORMAT, "%s: the header is not a JSON object", what);
    enco_st_file *f = enco_st_new();
    if (!f)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    json j = {(const char *)buf + 8, (const char *)buf + 8 + hlen, what, (const char *)buf + 8};
    enco_status st = parse_header(&j, f, buf + 8 + hlen, len - 8 - hlen);
    if (st != ENCO_OK) {
        enco_st_free(f);
        return st;
    }
    *out = f;
    return ENCO_OK;
}

enco_status enco_st_read(const char *path, enco_st_file **out)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return ENCO_FAIL(ENCO_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    long size = -1;
    if (fseek(fp, 0, SEEK_END) == 0)
        size = ftell(fp);
    enco_status st = ENCO_OK;
    if (size < 0 || fseek(fp, 0, SEEK_SET) != 0)
        st = ENCO_FAIL(ENCO_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    if (st == ENCO_OK) {
        buf = malloc((size_t)size + 1);
        if (!buf)
            st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "%s: cannot hold %ld bytes in memory", path, size);
        else if (fread(buf, 1, (size_t)size, fp) != (size_t)size)
            st = ENCO_FAIL(ENCO_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    }
    fclose(fp);
    if (st == ENCO_OK)
        st = enco_st_parse(buf, (size_t)size, path, out);
    free(buf);
    return st;
}

/* ---- writing ---------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->n + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_json_string(sbuf *b, const char *s)
{
    sb_str(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            sb_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_str(b, esc);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_str(b, "\"");
}

/* Makes the rename itself durable; failure here is not an error. */
static void sync_parent_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) + (slash == path), path);
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

enco_status enco_st_write(const char *path, const enco_st_file *f)
{
    sbuf h = {0};
    char num[64];
    sb_str(&h, "{");
    int first = 1;
    if (f->nmeta) {
        sb_str(&h, "\"__metadata__\":{");
        for (size_t i = 0; i < f->nmeta; i++) {
            if (i)
                sb_str(&h, ",");
            sb_json_string(&h, f->meta_keys[i]);
            sb_str(&h, ":");
            sb_json_string(&h, f->meta_values[i]);
        }
        sb_str(&h, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < f->count; i++) {
        const enco_st_tensor *t = &f->tensors[i];
        if (!first)
            sb_str(&h, ",");
        first = 0;
        sb_json_string(&h, t->name);
        sb_str(&h, ":{\"dtype\":\"");
        sb_str(&h, enco_dtype_name(t->dtype));
        sb_str(&h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            sb_str(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + t->nbytes));
        sb_str(&h, num);
        off += t->nbytes;
    }
    sb_str(&h, "}");
    while (!h.oom && h.n % 8 != 0) /* pad so the data starts 8-byte aligned */
        sb_str(&h, " ");
    if (h.oom) {
        free(h.p);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    }

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) {
        free(h.p);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    }
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    enco_status st = ENCO_OK;
    if (!fp) {
        st = ENCO_FAIL(ENCO_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    } else {
        unsigned char len8[8];
        for (int i = 0; i < 8; i++)
            len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
        int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(h.p, 1, h.n, fp) == h.n;
        for (size_t i = 0; ok && i < f->count; i++)
            ok = f->tensors[i].nbytes == 0 ||
                 fwrite(f->tensors[i].data, 1, f->tensors[i].nbytes, fp) == f->tensors[i].nbytes;
        int saved = errno;
        ok = fflush(fp) == 0 && ok;
        ok = ok && fsync(fileno(fp)) == 0;
        if (!ok)
            saved = errno;
        if (fclose(fp) != 0 && ok) {
            ok = 0;
            saved = errno;
        }
        if (!ok) {
            remove(tmp);
            st = ENCO_FAIL(ENCO_ERR_IO, "writing %s failed: %s (the previous file is untouched)",
                           path, strerror(saved));
        } else if (rename(tmp, path) != 0) {
            saved = errno;
            remove(tmp);
            st = ENCO_FAIL(ENCO_ERR_IO, "cannot rename %s to %s: %s", tmp, path,
                           strerror(saved));
        } else {
            sync_parent_dir(path);
        }
    }
    free(tmp);
    free(h.p);
    return st;
}
