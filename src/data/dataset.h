/* Unpaired datasets (ROOT/trainA, trainB, testA, testB) and the
 * reference's preprocessing, with every random choice drawn from the
 * counter-based RNG so a sample depends only on (seed, epoch, index).
 *
 * Random stream layout (src/ops/rng.h; seed = the run's train.seed): item
 * `index` (0-based within the epoch) of epoch `epoch` (1-based, as the
 * reference counts) draws from
 *
 *     stream = ENCO_DATA_STREAM | (epoch << 32) | index      (epoch < 2^31)
 *
 * starting at counter 0, in this order, each drawn only when used:
 *     1. B's file index: bounded(|B|)            (not with serial_batches)
 *     2. A's crop x, crop y: bounded(range + 1)  (resize_and_crop, crop,
 *        scale_width_and_crop; range = size - crop_size)
 *     3. A's flip: bounded(2) == 1               (unless no_flip)
 *     4. B's crop x, crop y, flip as for A.
 * The network streams of the trainer (1, 100..102) lie far below
 * ENCO_DATA_STREAM. Nothing depends on the order in which threads run, and a
 * run resumed at (epoch, index) sees the same samples. */
#ifndef ENCO_DATA_DATASET_H
#define ENCO_DATA_DATASET_H

#include "data/image.h"
#include "ops/rng.h"

#define ENCO_DATA_STREAM (1ULL << 63)

/* File extensions taken as images (case-insensitive); anything else in a
 * folder is skipped and counted. */
#define ENCO_IMAGE_EXTENSIONS "jpg jpeg png bmp tga gif ppm pgm pnm psd hdr pic"

/* Sorted list of the image files of one folder. */
typedef struct enco_file_list {
    char **paths;       /* full paths, sorted bytewise by file name */
    size_t count;
    size_t skipped;     /* entries that were not image files (by extension) */
} enco_file_list;

/* Lists `dir` (not recursive; dot-files and sub-folders are skipped
 * silently, other non-image files counted in `skipped`). A missing folder or
 * one without images is an error naming it. */
enco_status enco_file_list_read(enco_file_list *out, const char *dir);
void enco_file_list_free(enco_file_list *list);
/* 1 when the name ends in one of ENCO_IMAGE_EXTENSIONS. */
int enco_is_image_name(const char *name);

typedef enum enco_preprocess {
    ENCO_PRE_RESIZE_AND_CROP = 0,   /* resize to load x load, random crop, flip */
    ENCO_PRE_CROP,                  /* random crop of the original, flip */
    ENCO_PRE_SCALE_WIDTH_AND_CROP,  /* width to load keeping aspect, crop, flip */
    ENCO_PRE_NONE,                  /* sizes to a multiple of 4, flip */
} enco_preprocess;

/* Parses "resize_and_crop" | "crop" | "scale_width_and_crop" | "none". */
enco_status enco_preprocess_parse(const char *name, enco_preprocess *out);
const char *enco_preprocess_name(enco_preprocess p);

typedef struct enco_data_opts {
    enco_preprocess preprocess;
    int load_size;          /* 286 */
    int crop_size;          /* 256 */
    int no_flip;
    int serial_batches;     /* B[i mod |B|] instead of a random B */
    int channels;           /* input_nc: 1 = grayscale (PIL 'L'), 3 = RGB */
    int n_epochs;           /* epochs after n_epochs use load_size = crop_size; 0 = never */
} enco_data_opts;

/* The reference's defaults: resize_and_crop 286 -> 256, flips, random B, RGB. */
void enco_data_opts_default(enco_data_opts *o);
/* Checks the options (sizes >= 1, crop_size <= load_size for
 * resize_and_crop, channels 1 or 3). Cropping modes give crop_size x
 * crop_size samples; 'none' gives each file's own size rounded to 4. */
enco_status enco_data_opts_validate(const enco_data_opts *o);

/* The geometry of one preprocessed image. */
typedef struct enco_augment {
    int resize_w, resize_h;   /* size after resizing (= the file's size when not resized) */
    int crop_x, crop_y, crop_w, crop_h;
    int flip;
} enco_augment;

/* Draws the augmentation of an image of w x h in epoch `epoch` from rng. */
enco_status enco_augment_draw(enco_augment *aug, const enco_data_opts *o, int epoch, int w, int h,
                              enco_rng *rng);
/* Applies it: resize (PIL bicubic), crop, flip. */
enco_status enco_augment_apply(const enco_augment *aug, const enco_image *in, enco_image *out);

/* The sizes 'none' resizes to: Python's round(x / 4) * 4 (ties to even, as
 * the reference's __make_power_2), at least 4. */
int enco_round_to_4(int x);

typedef struct enco_dataset {
    enco_file_list a, b;
    char *root;
    char *phase;           /* "train" or "test" */
} enco_dataset;

/* Opens ROOT/<phase>A and ROOT/<phase>B. */
enco_status enco_dataset_open(enco_dataset *ds, const char *root, const char *phase);
void enco_dataset_close(enco_dataset *ds);
/* Warnings for the caller to show (the library does not print): one line
 * per folder that had non-image files, written to buf; returns the count. */
size_t enco_dataset_warnings(const enco_dataset *ds, char *buf, size_t size);
/* Items per epoch: max(|A|, |B|). */
size_t enco_dataset_len(const enco_dataset *ds);

/* Which files item `index` of `epoch` uses, and the rng positioned after
 * the B choice (for the augmentations). */
void enco_dataset_pick(const enco_dataset *ds, const enco_data_opts *o, uint64_t seed, int epoch,
                       size_t index, size_t *ia, size_t *ib, enco_rng *rng);

/* Loads and preprocesses item `index` of `epoch` (8-bit images of
 * o->channels channels; free with enco_image_free). Errors name the file. */
enco_status enco_dataset_item(const enco_dataset *ds, const enco_data_opts *o, uint64_t seed,
                              int epoch, size_t index, enco_image *a, enco_image *b);

#endif
