/* Folder listing, the reference's preprocessing modes, and item sampling. */
#include "data/dataset.h"

#include <ctype.h>
#include <stdio.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- folders ----------------------------------------------------------- */

int enco_is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name || dot[1] == '\0' || strlen(dot + 1) > 8)
        return 0;
    char ext[10];
    size_t n = 0;
    for (const char *p = dot + 1; *p; p++)
        ext[n++] = (char)tolower((unsigned char)*p);
    ext[n] = '\0';
    const char *list = ENCO_IMAGE_EXTENSIONS;
    while (*list) {
        size_t k = strcspn(list, " ");
        if (k == n && memcmp(list, ext, n) == 0)
            return 1;
        list += k;
        while (*list == ' ')
            list++;
    }
    return 0;
}

static int cmp_bytes(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void enco_file_list_free(enco_file_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        free(list->paths[i]);
    free(list->paths);
    list->paths = NULL;
    list->count = list->skipped = 0;
}

enco_status enco_file_list_read(enco_file_list *out, const char *dir)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d)
        return ENCO_FAIL(errno == ENOENT ? ENCO_ERR_NOT_FOUND : ENCO_ERR_IO,
                         "%s: cannot open the image folder: %s", dir, strerror(errno));
    size_t cap = 0, dlen = strlen(dir);
    enco_status st = ENCO_OK;
    struct dirent *e;
    /* Names first (sorted bytewise), full paths after. */
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (name[0] == '.')
            continue;
        char *path = malloc(dlen + strlen(name) + 2);
        if (!path) {
            st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "%s: out of memory listing the folder", dir);
            break;
        }
        sprintf(path, "%s/%s", dir, name);
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            free(path);
            continue;
        }
        if (!enco_is_image_name(name)) {
            out->skipped++;
            free(path);
            continue;
        }
        if (out->count == cap) {
            cap = cap ? cap * 2 : 64;
            char **p = realloc(out->paths, cap * sizeof *p);
            if (!p) {
                free(path);
                st = ENCO_FAIL(ENCO_ERR_NO_MEMORY, "%s: out of memory listing the folder", dir);
                break;
            }
            out->paths = p;
        }
        out->paths[out->count++] = path;
    }
    closedir(d);
    if (st != ENCO_OK) {
        enco_file_list_free(out);
        return st;
    }
    if (out->count == 0) {
        size_t skipped = out->skipped;
        enco_file_list_free(out);
        return ENCO_FAIL(ENCO_ERR_NOT_FOUND, "%s: no image files (%zu other file%s; images are: %s)",
                         dir, skipped, skipped == 1 ? "" : "s", ENCO_IMAGE_EXTENSIONS);
    }
    /* All paths share the folder prefix, so sorting paths sorts names. */
    qsort(out->paths, out->count, sizeof *out->paths, cmp_bytes);
    return ENCO_OK;
}

/* ---- options ----------------------------------------------------------- */

static const char *const preprocess_names[] = {"resize_and_crop", "crop", "scale_width_and_crop",
                                               "none"};

enco_status enco_preprocess_parse(const char *name, enco_preprocess *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, preprocess_names[i]) == 0) {
            *out = (enco_preprocess)i;
            return ENCO_OK;
        }
    return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                     "preprocess '%s' unknown (resize_and_crop, crop, scale_width_and_crop, none)",
                     name);
}

const char *enco_preprocess_name(enco_preprocess p)
{
    return (unsigned)p < 4 ? preprocess_names[p] : "?";
}

void enco_data_opts_default(enco_data_opts *o)
{
    memset(o, 0, sizeof *o);
    o->preprocess = ENCO_PRE_RESIZE_AND_CROP;
    o->load_size = 286;
    o->crop_size = 256;
    o->channels = 3;
}

enco_status enco_data_opts_validate(const enco_data_opts *o)
{
    if ((unsigned)o->preprocess > ENCO_PRE_NONE)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "preprocess %d unknown", (int)o->preprocess);
    if (o->channels != 1 && o->channels != 3)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "input channels must be 1 or 3, not %d", o->channels);
    if (o->load_size < 1 || o->load_size > ENCO_IMAGE_MAX_SIDE || o->crop_size < 1 ||
        o->crop_size > ENCO_IMAGE_MAX_SIDE)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "load_size %d / crop_size %d out of [1, %d]",
                         o->load_size, o->crop_size, ENCO_IMAGE_MAX_SIDE);
    if ((o->preprocess == ENCO_PRE_RESIZE_AND_CROP ||
         o->preprocess == ENCO_PRE_SCALE_WIDTH_AND_CROP) && o->crop_size > o->load_size)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "crop_size %d is larger than load_size %d",
                         o->crop_size, o->load_size);
    if (o->n_epochs < 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "n_epochs must be >= 0, not %d", o->n_epochs);
    return ENCO_OK;
}

int enco_round_to_4(int x)
{
    int q = x / 4, r = x % 4;
    /* round half to even: r == 2 is a tie */
    if (r > 2 || (r == 2 && (q & 1)))
        q++;
    return q < 1 ? 4 : q * 4;
}

/* ---- augmentation ------------------------------------------------------ */

enco_status enco_augment_draw(enco_augment *aug, const enco_data_opts *o, int epoch, int w, int h,
                              enco_rng *rng)
{
    int load = o->load_size;
    if (o->n_epochs > 0 && epoch > o->n_epochs)
        load = o->crop_size;  /* the decay phase trains on unscaled crops */
    int crop = o->crop_size;
    aug->resize_w = w;
    aug->resize_h = h;
    switch (o->preprocess) {
    case ENCO_PRE_RESIZE_AND_CROP:
        aug->resize_w = aug->resize_h = load;
        break;
    case ENCO_PRE_SCALE_WIDTH_AND_CROP:
        if (!(w == load && h >= crop)) {
            double nh = (double)((long long)load * h) / (double)w;
            aug->resize_w = load;
            aug->resize_h = nh > crop ? (int)nh : crop;
        }
        break;
    case ENCO_PRE_NONE:
        aug->resize_w = enco_round_to_4(w);
        aug->resize_h = enco_round_to_4(h);
        break;
    case ENCO_PRE_CROP:
        break;
    }
    aug->crop_x = aug->crop_y = 0;
    aug->crop_w = aug->resize_w;
    aug->crop_h = aug->resize_h;
    if (o->preprocess != ENCO_PRE_NONE) {
        if (aug->resize_w < crop || aug->resize_h < crop)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                             "image of %dx%d (%dx%d after resizing) is smaller than crop_size %d",
                             w, h, aug->resize_w, aug->resize_h, crop);
        aug->crop_x = (int)enco_rng_bounded(rng, (uint32_t)(aug->resize_w - crop + 1));
        aug->crop_y = (int)enco_rng_bounded(rng, (uint32_t)(aug->resize_h - crop + 1));
        aug->crop_w = aug->crop_h = crop;
    }
    aug->flip = o->no_flip ? 0 : (int)enco_rng_bounded(rng, 2);
    return ENCO_OK;
}

enco_status enco_augment_apply(const enco_augment *aug, const enco_image *in, enco_image *out)
{
    enco_image sized = {0};
    ENCO_TRY(enco_image_resize_bicubic(in, aug->resize_w, aug->resize_h, &sized));
    enco_status st = enco_image_crop(&sized, aug->crop_x, aug->crop_y, aug->crop_w, aug->crop_h, out);
    enco_image_free(&sized);
    if (st == ENCO_OK && aug->flip)
        enco_image_flip_horizontal(out);
    return st;
}

/* ---- datasets ---------------------------------------------------------- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

enco_status enco_dataset_open(enco_dataset *ds, const char *root, const char *phase)
{
    memset(ds, 0, sizeof *ds);
    struct stat sb;
    if (stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ENCO_FAIL(ENCO_ERR_NOT_FOUND, "%s: dataset folder not found", root);
    size_t n = strlen(root) + strlen(phase) + 3;
    char *dir = malloc(n);
    ds->root = dup_str(root);
    ds->phase = dup_str(phase);
    if (!dir || !ds->root || !ds->phase) {
        free(dir);
        enco_dataset_close(ds);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of memory");
    }
    snprintf(dir, n, "%s/%sA", root, phase);
    enco_status st = enco_file_list_read(&ds->a, dir);
    if (st == ENCO_OK) {
        snprintf(dir, n, "%s/%sB", root, phase);
        st = enco_file_list_read(&ds->b, dir);
    }
    free(dir);
    if (st != ENCO_OK)
        enco_dataset_close(ds);
    return st;
}

void enco_dataset_close(enco_dataset *ds)
{
    enco_file_list_free(&ds->a);
    enco_file_list_free(&ds->b);
    free(ds->root);
    free(ds->phase);
    ds->root = ds->phase = NULL;
}

size_t enco_dataset_len(const enco_dataset *ds)
{
    return ds->a.count > ds->b.count ? ds->a.count : ds->b.count;
}

void enco_dataset_pick(const enco_dataset *ds, const enco_data_opts *o, uint64_t seed, int epoch,
                       size_t index, size_t *ia, size_t *ib, enco_rng *rng)
{
    uint64_t stream = ENCO_DATA_STREAM | ((uint64_t)(uint32_t)epoch << 32) | (uint32_t)index;
    *rng = enco_rng_make(seed, stream);
    *ia = index % ds->a.count;
    if (o->serial_batches)
        *ib = index % ds->b.count;
    else
        *ib = enco_rng_bounded(rng, (uint32_t)ds->b.count);
}

static enco_status load_one(const char *path, const enco_data_opts *o, int epoch, enco_rng *rng,
                            enco_image *out)
{
    enco_image raw = {0};
    ENCO_TRY(enco_image_load(path, o->channels, &raw));
    enco_augment aug;
    enco_status st = enco_augment_draw(&aug, o, epoch, raw.w, raw.h, rng);
    if (st == ENCO_OK)
        st = enco_augment_apply(&aug, &raw, out);
    enco_image_free(&raw);
    if (st != ENCO_OK && strstr(enco_last_error(), path) == NULL) {
        char why[512];
        snprintf(why, sizeof why, "%s", enco_last_error());
        return ENCO_FAIL(st, "%s: %s", path, why);
    }
    return st;
}

enco_status enco_dataset_item(const enco_dataset *ds, const enco_data_opts *o, uint64_t seed,
                              int epoch, size_t index, enco_image *a, enco_image *b)
{
    a->data = b->data = NULL;
    size_t ia, ib;
    enco_rng rng;
    enco_dataset_pick(ds, o, seed, epoch, index, &ia, &ib, &rng);
    ENCO_TRY(load_one(ds->a.paths[ia], o, epoch, &rng, a));
    enco_status st = load_one(ds->b.paths[ib], o, epoch, &rng, b);
    if (st != ENCO_OK)
        enco_image_free(a);
    return st;
}

size_t enco_dataset_warnings(const enco_dataset *ds, char *buf, size_t size)
{
    size_t n = 0, used = 0;
    const enco_file_list *lists[2] = {&ds->a, &ds->b};
    if (size)
        buf[0] = '\0';
    for (int k = 0; k < 2; k++) {
        if (lists[k]->skipped == 0)
            continue;
        n++;
        if (used < size) {
            int w = snprintf(buf + used, size - used, "%s/%s%c: skipped %zu non-image file%s\n",
                             ds->root, ds->phase, k ? 'B' : 'A', lists[k]->skipped,
                             lists[k]->skipped == 1 ? "" : "s");
            used += w > 0 ? (size_t)w : 0;
        }
    }
    return n;
}
