/* libFuzzer target: the safetensors parser (enco_st_parse) on arbitrary bytes.
 * Besides ASan/UBSan findings it checks what a successful parse promises:
 * every tensor's byte count matches dtype x shape, names are unique and
 * findable, metadata keys are findable. Built by tools/ci-hardening. */
#include "io/safetensors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_safetensors: broken promise: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enco_st_file *f = (enco_st_file *)0x1;
    enco_status st = enco_st_parse(data, size, "fuzz", &f);
    if (st != ENCO_OK) {
        require(f == NULL, "out set on failure");
        require(enco_last_error()[0] != '\0', "failure without a message");
        require(strstr(enco_last_error(), "fuzz") != NULL ||
                    st == ENCO_ERR_NO_MEMORY,
                "message does not name the input");
        return 0;
    }
    require(f != NULL, "no file on success");
    size_t total = 0;
    for (size_t i = 0; i < f->count; i++) {
        const enco_st_tensor *t = &f->tensors[i];
        require(t->name && t->name[0], "empty tensor name");
        require((unsigned)t->dtype < ENCO_DT_COUNT, "bad dtype");
        require(t->ndim >= 0 && t->ndim <= ENCO_ST_MAX_DIMS, "bad rank");
        require(enco_st_numel(t) * enco_dtype_size(t->dtype) == t->nbytes, "nbytes != shape");
        require(enco_st_find(f, t->name) == t, "name not unique or not findable");
        /* Touch every byte so ASan sees any short allocation. */
        const volatile unsigned char *p = t->data;
        unsigned acc = 0;
        for (size_t k = 0; k < t->nbytes; k++)
            acc += p[k];
        (void)acc;
        total += t->nbytes;
    }
    require(total <= size, "more tensor bytes than input bytes");
    for (size_t i = 0; i < f->nmeta; i++)
        require(enco_st_get_meta(f, f->meta_keys[i]) == f->meta_values[i], "metadata lookup");
    enco_st_free(f);
    return 0;
}
