/* Synthetic two-domain scenes (see synth.h). */
#include "data/synth.h"

#include "ops/rng.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const uint8_t bg_colour[2][3] = {{232, 230, 226}, {22, 26, 48}};
static const uint8_t palette[2][ENCO_SYNTH_COLOURS][3] = {
    /* A: red, green, blue, yellow, purple, orange */
    {{214, 48, 49}, {46, 160, 67}, {52, 84, 209}, {236, 196, 36}, {142, 68, 173}, {235, 127, 30}},
    /* B: the classes mapped to cyan, magenta, gold, sky blue, lime, pink */
    {{32, 190, 200}, {200, 50, 160}, {230, 190, 60}, {80, 140, 240}, {140, 220, 70}, {250, 120, 150}},
};

static float draw_uniform(enco_rng *rng, float lo, float hi)
{
    float v;
    (void)enco_rng_uniform(rng, &v, 1, lo, hi);
    return v;
}

void enco_synth_scene_make(enco_synth_scene *scene, uint64_t seed, uint64_t stream)
{
    enco_rng rng = enco_rng_make(seed, stream);
    memset(scene, 0, sizeof *scene);
    scene->n = 2 + (int)enco_rng_bounded(&rng, ENCO_SYNTH_MAX_SHAPES - 1);
    for (int i = 0; i < scene->n; i++) {
        enco_synth_shape *s = &scene->shapes[i];
        s->kind = (enco_synth_kind)enco_rng_bounded(&rng, 3);
        s->colour = (int)enco_rng_bounded(&rng, ENCO_SYNTH_COLOURS);
        s->cx = draw_uniform(&rng, 0.18f, 0.82f);
        s->cy = draw_uniform(&rng, 0.18f, 0.82f);
        s->rx = draw_uniform(&rng, 0.10f, 0.22f);
        s->ry = s->kind == ENCO_SYNTH_RECT ? draw_uniform(&rng, 0.08f, 0.20f) : s->rx;
        s->angle = draw_uniform(&rng, 0.0f, 6.2831853f);
    }
}

/* Signed distance-like depth of point (x, y) inside shape s (fractions of the
 * side): > 0 inside, the distance to the nearest edge; <= 0 outside. */
static float inside_depth(const enco_synth_shape *s, float x, float y)
{
    float dx = x - s->cx, dy = y - s->cy;
    switch (s->kind) {
    case ENCO_SYNTH_CIRCLE:
        return s->rx - sqrtf(dx * dx + dy * dy);
    case ENCO_SYNTH_RECT: {
        float ex = s->rx - fabsf(dx), ey = s->ry - fabsf(dy);
        return ex < ey ? ex : ey;
    }
    case ENCO_SYNTH_TRIANGLE: {
        /* Equilateral: the three edge normals at angle + k * 120 degrees,
         * each edge at distance rx / 2 from the centre. */
        float depth = 1e9f;
        for (int k = 0; k < 3; k++) {
            float a = s->angle + (float)k * 2.0943951f;
            float d = s->rx * 0.5f - (dx * cosf(a) + dy * sinf(a));
            if (d < depth)
                depth = d;
        }
        return depth;
    }
    }
    return -1.0f;
}

/* Colour of one sample point in a domain. */
static void sample_colour(const enco_synth_scene *scene, int domain, float x, float y, float rgb[3])
{
    const uint8_t *c = bg_colour[domain];
    int rim = 0;
    for (int i = 0; i < scene->n; i++) {
        float d = inside_depth(&scene->shapes[i], x, y);
        if (d > 0.0f) {
            c = palette[domain][scene->shapes[i].colour];
            rim = d < ENCO_SYNTH_RIM;
        }
    }
    for (int k = 0; k < 3; k++)
        rgb[k] = domain == 1 && rim ? 0.35f * (float)c[k] + 0.65f * 255.0f : (float)c[k];
}

static int size_ok(int size)
{
    return size >= 16 && size <= 1024;
}

enco_status enco_synth_render(const enco_synth_scene *scene, int domain, int size, enco_image *out)
{
    if ((domain != 0 && domain != 1) || !size_ok(size))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "synth: domain %d (0 or 1), size %d (16..1024)", domain,
                         size);
    ENCO_TRY(enco_image_alloc(out, size, size, 3));
    const int ss = 4;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            float acc[3] = {0, 0, 0};
            for (int sy = 0; sy < ss; sy++)
                for (int sx = 0; sx < ss; sx++) {
                    float rgb[3];
                    sample_colour(scene, domain, ((float)x + ((float)sx + 0.5f) / ss) / (float)size,
                                  ((float)y + ((float)sy + 0.5f) / ss) / (float)size, rgb);
                    for (int k = 0; k < 3; k++)
                        acc[k] += rgb[k];
                }
            uint8_t *p = out->data + ((size_t)y * (size_t)size + (size_t)x) * 3;
            for (int k = 0; k < 3; k++)
                p[k] = (uint8_t)lroundf(acc[k] / (float)(ss * ss));
        }
    return ENCO_OK;
}

enco_status enco_synth_layout(const enco_synth_scene *scene, int size, uint8_t *mask)
{
    if (!size_ok(size))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "synth: size %d (16..1024)", size);
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            uint8_t top = 0;
            for (int i = 0; i < scene->n; i++)
                if (inside_depth(&scene->shapes[i], ((float)x + 0.5f) / (float)size,
                                 ((float)y + 0.5f) / (float)size) > 0.0f)
                    top = (uint8_t)(i + 1);
            mask[(size_t)y * (size_t)size + (size_t)x] = top;
        }
    return ENCO_OK;
}

enco_status enco_synth_foreground(const enco_image *img, int domain, uint8_t *mask)
{
    if ((domain != 0 && domain != 1) || img->c != 3)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "synth foreground: needs an RGB image and domain 0/1");
    size_t n = (size_t)img->w * (size_t)img->h;
    for (size_t i = 0; i < n; i++) {
        double d2 = 0;
        for (int k = 0; k < 3; k++) {
            double d = (double)img->data[3 * i + (size_t)k] - (double)bg_colour[domain][k];
            d2 += d * d;
        }
        mask[i] = d2 > 40.0 * 40.0;
    }
    return ENCO_OK;
}

static enco_status make_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            return ENCO_OK;
        return ENCO_FAIL(ENCO_ERR_IO, "%s: exists and is not a folder", path);
    }
    return ENCO_FAIL(ENCO_ERR_IO, "%s: cannot create folder: %s", path, strerror(errno));
}

static enco_status write_scene(const char *dir, size_t i, const enco_synth_scene *scene, int domain,
                               int size)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%04zu.png", dir, i) >= sizeof path)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: path too long", dir);
    enco_image img = {0};
    ENCO_TRY(enco_synth_render(scene, domain, size, &img));
    enco_status st = enco_image_save_png(path, &img);
    enco_image_free(&img);
    return st;
}

enco_status enco_synth_write(const char *root, const enco_synth_opts *o)
{
    if (!size_ok(o->size) || o->n_train < 1 || o->n_test < 1 || o->n_train > 1000000 ||
        o->n_test > 1000000)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "synth: size %d (16..1024), train %d and test %d (1..1000000)", o->size,
                         o->n_train, o->n_test);
    if (strlen(root) > 3000)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: path too long", root);
    ENCO_TRY(make_dir(root));
    static const char *const sub[4] = {"trainA", "trainB", "testA", "testB"};
    char dirs[4][3100];
    for (int k = 0; k < 4; k++) {
        snprintf(dirs[k], sizeof dirs[k], "%s/%s", root, sub[k]);
        ENCO_TRY(make_dir(dirs[k]));
    }
    enco_synth_scene scene;
    for (int split = 0; split < 2; split++)
        for (int i = 0; i < o->n_train; i++) {
            enco_synth_scene_make(&scene, o->seed,
                                  ENCO_SYNTH_STREAM | ((uint64_t)split << 32) | (uint64_t)i);
            ENCO_TRY(write_scene(dirs[split], (size_t)i, &scene, split, o->size));
        }
    for (int i = 0; i < o->n_test; i++) {
        enco_synth_scene_make(&scene, o->seed, ENCO_SYNTH_STREAM | (2ULL << 32) | (uint64_t)i);
        ENCO_TRY(write_scene(dirs[2], (size_t)i, &scene, 0, o->size));
        ENCO_TRY(write_scene(dirs[3], (size_t)i, &scene, 1, o->size));
    }
    return ENCO_OK;
}
