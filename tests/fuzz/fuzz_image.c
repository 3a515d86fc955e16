/* libFuzzer target: image decoding (enco_image_load_memory, src/data/image.c,
 * stb underneath) on arbitrary bytes, as 0 (own), 1 and 3 channels. A success
 * must give a non-empty image within ENCO_IMAGE_MAX_PIXELS whose every byte
 * is readable; a failure must leave no image and name the input. Built by
 * tools/ci-hardening. */
#include "data/image.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_image: broken promise: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int channels[3] = {0, 1, 3};
    for (int k = 0; k < 3; k++) {
        enco_image img;
        memset(&img, 0x5a, sizeof img);
        enco_status st = enco_image_load_memory(data, size, "fuzz", channels[k], &img);
        if (st != ENCO_OK) {
            require(strstr(enco_last_error(), "fuzz") != NULL || st == ENCO_ERR_NO_MEMORY,
                    "message does not name the input");
            continue;
        }
        require(img.w > 0 && img.h > 0 && img.data != NULL, "empty image on success");
        require(channels[k] == 0 ? img.c >= 1 && img.c <= 4 : img.c == channels[k],
                "wrong channel count");
        size_t n = (size_t)img.w * (size_t)img.h;
        require(n <= ENCO_IMAGE_MAX_PIXELS, "over the pixel limit");
        const volatile uint8_t *p = img.data;
        unsigned acc = 0;
        for (size_t i = 0; i < n * (size_t)img.c; i++)
            acc += p[i];
        (void)acc;
        enco_image_free(&img);
    }
    return 0;
}
