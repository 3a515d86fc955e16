/* safetensors files: an 8-byte little-endian header length, a JSON header
 * mapping tensor names to {dtype, shape, data_offsets} (plus an optional
 * "__metadata__" object of strings), then the raw little-endian data.
 * Used for checkpoints and for the step/fixture files shared with PyTorch. */
#ifndef ENCO_IO_SAFETENSORS_H
#define ENCO_IO_SAFETENSORS_H

#include "core/internal.h"

#define ENCO_ST_MAX_DIMS 8

typedef enum enco_dtype {
    ENCO_DT_F32 = 0,
    ENCO_DT_F64,
    ENCO_DT_I64,
    ENCO_DT_I32,
    ENCO_DT_U8,
    ENCO_DT_COUNT
} enco_dtype;

typedef struct enco_st_tensor {
    char *name;
    enco_dtype dtype;
    int ndim;
    int64_t shape[ENCO_ST_MAX_DIMS];
    size_t nbytes;
    void *data; /* owned, nbytes long */
} enco_st_tensor;

typedef struct enco_st_file {
    enco_st_tensor *tensors;
    size_t count, cap;
    char **meta_keys;
    char **meta_values;
    size_t nmeta, cap_meta;
} enco_st_file;

const char *enco_dtype_name(enco_dtype dt); /* "F32", ... */
size_t enco_dtype_size(enco_dtype dt);
size_t enco_st_numel(const enco_st_tensor *t);

enco_st_file *enco_st_new(void);
void enco_st_free(enco_st_file *f);

/* Reads and validates a whole file; any problem fails with ENCO_ERR_FORMAT (or
 * ENCO_ERR_IO) and a message naming the file and the first thing wrong. */
enco_status enco_st_read(const char *path, enco_st_file **out);
/* Parses an in-memory image of a file (`what` names it in messages). */
enco_status enco_st_parse(const unsigned char *buf, size_t len, const char *what,
                          enco_st_file **out);
/* Writes atomically: a temporary file in the same folder, fsync, rename. */
enco_status enco_st_write(const char *path, const enco_st_file *f);

/* Adds a tensor (data copied; shape of ndim entries). Names must be unique. */
enco_status enco_st_add(enco_st_file *f, const char *name, enco_dtype dtype, int ndim,
                        const int64_t *shape, const void *data);
enco_status enco_st_set_meta(enco_st_file *f, const char *key, const char *value);
const enco_st_tensor *enco_st_find(const enco_st_file *f, const char *name);
const char *enco_st_get_meta(const enco_st_file *f, const char *key);

/* Finds `name` and checks its dtype and shape; the message names the first
 * mismatch (missing, dtype, rank, dimension). */
enco_status enco_st_expect(const enco_st_file *f, const char *name, enco_dtype dtype, int ndim,
                           const int64_t *shape, const enco_st_tensor **out);

#endif
