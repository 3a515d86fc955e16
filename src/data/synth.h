/* A synthetic unpaired translation task with ground truth.
 *
 * A scene is a background and 2..4 shapes (circle, axis-aligned rectangle,
 * rotated triangle), each with a position, size and one of 6 colour classes,
 * painted in order (later shapes cover earlier ones). The same scene renders
 * in two domains:
 *   A: light grey background, shapes in solid saturated colours;
 *   B: dark navy background, each colour class mapped to another hue (a fixed
 *      palette permutation) and every shape lit by a bright rim (its inner
 *      band of ENCO_SYNTH_RIM of the image side).
 * Both are local functions of the shape layout (colour per pixel, rim from
 * the distance to the shape's edge), so a small convolutional generator can
 * learn A -> B while the layout must be kept. Edges are antialiased by 4x4
 * supersampling.
 *
 * enco_synth_write fills ROOT/trainA, trainB (independent scenes: unpaired),
 * testA and testB (the same scenes in both domains: testB/<name> is the true
 * translation of testA/<name>). Scenes come from the counter-based RNG:
 * scene i of split s uses stream ENCO_SYNTH_STREAM | (s << 32) | i with
 * s = 0 trainA, 1 trainB, 2 test, so the output depends only on the seed
 * and the image size (not on the counts: adding images keeps the others). */
#ifndef ENCO_DATA_SYNTH_H
#define ENCO_DATA_SYNTH_H

#include "data/image.h"

#define ENCO_SYNTH_STREAM (1ULL << 62)
#define ENCO_SYNTH_MAX_SHAPES 4
#define ENCO_SYNTH_COLOURS 6
#define ENCO_SYNTH_RIM 0.045f

typedef enum enco_synth_kind {
    ENCO_SYNTH_CIRCLE = 0,
    ENCO_SYNTH_RECT = 1,
    ENCO_SYNTH_TRIANGLE = 2,
} enco_synth_kind;

/* Coordinates are fractions of the image side, so a scene renders at any size. */
typedef struct enco_synth_shape {
    enco_synth_kind kind;
    float cx, cy;        /* centre */
    float rx, ry;        /* radius (circle: rx), half sizes (rect), circumradius (triangle: rx) */
    float angle;         /* triangle rotation, radians */
    int colour;          /* 0 .. ENCO_SYNTH_COLOURS-1 */
} enco_synth_shape;

typedef struct enco_synth_scene {
    int n;
    enco_synth_shape shapes[ENCO_SYNTH_MAX_SHAPES];
} enco_synth_scene;

/* The scene of (seed, stream). */
void enco_synth_scene_make(enco_synth_scene *scene, uint64_t seed, uint64_t stream);
/* Renders it in domain 0 (A) or 1 (B) as a size x size RGB image. */
enco_status enco_synth_render(const enco_synth_scene *scene, int domain, int size, enco_image *out);
/* The shape layout: mask[y * size + x] = 1 + index of the topmost shape
 * covering the pixel centre, 0 for background. */
enco_status enco_synth_layout(const enco_synth_scene *scene, int size, uint8_t *mask /* (size*size) */);
/* Foreground of an RGB image of `domain`: 1 where the pixel is further than
 * 40 (Euclidean, 0..255 units) from the domain's background colour. */
enco_status enco_synth_foreground(const enco_image *img, int domain, uint8_t *mask /* (h*w) */);

typedef struct enco_synth_opts {
    int size;            /* image side, 16 .. 1024 */
    int n_train;         /* images in trainA and in trainB */
    int n_test;          /* pairs in testA / testB */
    uint64_t seed;
} enco_synth_opts;

/* Writes the four folders under root (created as needed; existing files of
 * the same names are replaced atomically). Names are 0000.png, 0001.png, ... */
enco_status enco_synth_write(const char *root, const enco_synth_opts *opts);

#endif
