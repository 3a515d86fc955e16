/* The option table and the libconfig-based loader. */
#include "train/config.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFF(f) offsetof(enco_config, f)
#define NOCOUNT 0

/* The options of one CUT-like group g (enco_cut_config); the families differ
 * in lambda_NCE, nce_idt and nce_flip_equivariance. */
#define CUT_OPTIONS(g, who, def_lambda_nce, def_idt, def_flip) \
    {#g ".lambda_GAN", ENCO_OPT_FLOAT, OFF(g.lambda_GAN), NOCOUNT, 0, 1e6, NULL, "1.0", \
     who "weight of the GAN loss"}, \
    {#g ".lambda_NCE", ENCO_OPT_FLOAT, OFF(g.lambda_NCE), NOCOUNT, 0, 1e6, NULL, def_lambda_nce, \
     who "weight of the PatchNCE loss"}, \
    {#g ".nce_idt", ENCO_OPT_BOOL, OFF(g.nce_idt), NOCOUNT, 0, 1, NULL, def_idt, \
     who "also PatchNCE between real_B and G(real_B) (NCE_Y)"}, \
    {#g ".nce_layers", ENCO_OPT_INT_LIST, OFF(g.nce_layers), OFF(g.n_nce_layers), 0, 1000, NULL, "[0, 4, 8, 12, 16]", \
     who "G encoder layers of the PatchNCE loss (0: the input image), increasing"}, \
    {#g ".nce_T", ENCO_OPT_FLOAT, OFF(g.nce_T), NOCOUNT, 1e-6, 1e6, NULL, "0.07", \
     who "temperature of the PatchNCE loss"}, \
    {#g ".num_patches", ENCO_OPT_INT, OFF(g.num_patches), NOCOUNT, 1, 65536, NULL, "256", \
     who "patches per layer (clamped to the map size), the same positions for every image"}, \
    {#g ".netF_nc", ENCO_OPT_INT, OFF(g.netF_nc), NOCOUNT, 1, 4096, NULL, "256", \
     who "width of the PatchSampleF MLPs"}, \
    {#g ".nce_includes_all_negatives_from_minibatch", ENCO_OPT_BOOL, OFF(g.nce_includes_all_negatives_from_minibatch), NOCOUNT, 0, 1, NULL, "false", \
     who "negatives from every image of the batch instead of the same image"}, \
    {#g ".nce_flip_equivariance", ENCO_OPT_BOOL, OFF(g.nce_flip_equivariance), NOCOUNT, 0, 1, NULL, def_flip, \
     who "flip G's input left-right with probability 0.5 per iteration, queries flipped back"}, \
    {#g ".lr", ENCO_OPT_FLOAT, OFF(g.lr), NOCOUNT, 0, 1, NULL, "0.0002", \
     who "learning rate of G, D and F"}

/* One row per option: the single source of truth. */
const enco_option enco_options[] = {
    {"model.family", ENCO_OPT_STRING, OFF(model.family), NOCOUNT, 0, 0, "enco|cut|fastcut|cyclegan|dclgan",
     "\"enco\"",
     "the model trained: EnCo, or the baselines CUT, FastCUT, CycleGAN and DCLGAN (their "
     "options: the groups of those names; the model.nce_layers ... train.stop_idt_epochs "
     "options are EnCo's)"},
    {"model.input_nc", ENCO_OPT_INT, OFF(model.input_nc), NOCOUNT, 1, 4, NULL, "3",
     "channels of domain A images (1 grayscale, 3 RGB)"},
    {"model.output_nc", ENCO_OPT_INT, OFF(model.output_nc), NOCOUNT, 1, 4, NULL, "3",
     "channels of domain B images"},
    {"model.ngf", ENCO_OPT_INT, OFF(model.ngf), NOCOUNT, 1, 1024, NULL, "64",
     "generator filters in the first layer"},
    {"model.n_blocks", ENCO_OPT_INT, OFF(model.n_blocks), NOCOUNT, 0, 64, NULL, "9",
     "ResNet blocks of the generator (resnet_9blocks: 9, resnet_6blocks: 6)"},
    {"model.ndf", ENCO_OPT_INT, OFF(model.ndf), NOCOUNT, 1, 1024, NULL, "64",
     "discriminator filters in the first layer"},
    {"model.n_layers_D", ENCO_OPT_INT, OFF(model.n_layers_D), NOCOUNT, 1, 6, NULL, "3",
     "PatchGAN discriminator layers"},
    {"model.nce_layers", ENCO_OPT_INT_LIST, OFF(model.nce_layers), OFF(model.n_nce_layers), 0,
     1000, NULL, "[3, 7, 13, 18, 24, 28]",
     "generator layers for the EnCo loss: first half encoder (keys), second half decoder "
     "(queries, paired in reverse)"},
    {"model.netF_nc", ENCO_OPT_INT, OFF(model.netF_nc), NOCOUNT, 2, 4096, NULL, "256",
     "width of the projection heads"},
    {"model.prj_norm", ENCO_OPT_STRING, OFF(model.prj_norm), NOCOUNT, 0, 0, "bn|ln|none", "\"bn\"",
     "normalisation in the heads: BatchNorm1d (published code), LayerNorm (paper), none"},
    {"model.no_antialias", ENCO_OPT_BOOL, OFF(model.no_antialias), NOCOUNT, 0, 1, NULL, "false",
     "strided convolutions instead of blur Downsample"},
    {"model.no_antialias_up", ENCO_OPT_BOOL, OFF(model.no_antialias_up), NOCOUNT, 0, 1, NULL,
     "false", "transposed convolutions instead of blur Upsample"},
    {"train.lambda_GAN", ENCO_OPT_FLOAT, OFF(train.lambda_GAN), NOCOUNT, 0, 1e6, NULL, "1.0",
     "weight of the LSGAN generator loss"},
    {"train.lambda_NCE", ENCO_OPT_FLOAT, OFF(train.lambda_NCE), NOCOUNT, 0, 1e6, NULL, "2.0",
     "weight of the EnCo loss"},
    {"train.lambda_IDT", ENCO_OPT_FLOAT, OFF(train.lambda_IDT), NOCOUNT, 0, 1e6, NULL, "10.0",
     "weight of the identity (L1) loss"},
    {"train.nce_idt", ENCO_OPT_BOOL, OFF(train.nce_idt), NOCOUNT, 0, 1, NULL, "true",
     "identity term on (G also translates real_B)"},
    {"train.num_patches", ENCO_OPT_INT, OFF(train.num_patches), NOCOUNT, 1, 65536, NULL, "256",
     "patches sampled per feature layer and image"},
    {"train.sampling", ENCO_OPT_STRING, OFF(train.sampling), NOCOUNT, 0, 0, "dag|random", "\"dag\"",
     "patch sampling: DAG (EnCo) or uniform random (CUT)"},
    {"train.oversample_ratio", ENCO_OPT_INT, OFF(train.oversample_ratio), NOCOUNT, 1, 64, NULL,
     "4", "DAG: candidates = oversample_ratio * num_patches"},
    {"train.random_ratio", ENCO_OPT_FLOAT, OFF(train.random_ratio), NOCOUNT, 0, 1, NULL, "0.5",
     "DAG: share of the patches taken uniformly at random (covering)"},
    {"train.dag_order", ENCO_OPT_STRING, OFF(train.dag_order), NOCOUNT, 0, 0,
     "ascending|descending", "\"ascending\"",
     "DAG: keep the lowest discriminator scores (published code) or the highest (paper)"},
    {"train.lr_G", ENCO_OPT_FLOAT, OFF(train.lr_G), NOCOUNT, 0, 1, NULL, "5e-05",
     "generator learning rate"},
    {"train.lr_D", ENCO_OPT_FLOAT, OFF(train.lr_D), NOCOUNT, 0, 1, NULL, "0.0002",
     "discriminator learning rate"},
    {"train.lr_F", ENCO_OPT_FLOAT, OFF(train.lr_F), NOCOUNT, 0, 1, NULL, "5e-05",
     "heads learning rate"},
    {"train.beta1", ENCO_OPT_FLOAT, OFF(train.beta1), NOCOUNT, 0, 0.999999, NULL, "0.5",
     "Adam beta1"},
    {"train.beta2", ENCO_OPT_FLOAT, OFF(train.beta2), NOCOUNT, 0, 0.999999, NULL, "0.999",
     "Adam beta2"},
    {"train.eps", ENCO_OPT_FLOAT, OFF(train.eps), NOCOUNT, 1e-30, 1, NULL, "1e-08", "Adam epsilon"},
    {"train.init_gain", ENCO_OPT_FLOAT, OFF(train.init_gain), NOCOUNT, 0, 10, NULL, "0.02",
     "xavier_normal gain of the initial weights"},
    {"train.seed", ENCO_OPT_INT64, OFF(train.seed), NOCOUNT, 0, 9.007199254740992e15, NULL, "0",
     "random seed: the same seed gives the same model"},
    {"train.batch_size", ENCO_OPT_INT, OFF(train.batch_size), NOCOUNT, 1, 256, NULL, "1",
     "images per iteration"},
    {"train.n_epochs", ENCO_OPT_INT, OFF(train.n_epochs), NOCOUNT, 0, 100000, NULL, "200",
     "epochs at the initial learning rate"},
    {"train.n_epochs_decay", ENCO_OPT_INT, OFF(train.n_epochs_decay), NOCOUNT, 0, 100000, NULL,
     "200", "epochs of linear decay to zero after n_epochs"},
    {"train.epoch_count", ENCO_OPT_INT, OFF(train.epoch_count), NOCOUNT, 0, 100000, NULL, "1",
     "number of the first epoch (the reference's epoch_count)"},
    {"train.warmup_epochs", ENCO_OPT_INT, OFF(train.warmup_epochs), NOCOUNT, 0, 100000, NULL,
     "0", "epochs of linear learning-rate warm-up (0: none)"},
    {"train.stop_idt_epochs", ENCO_OPT_INT, OFF(train.stop_idt_epochs), NOCOUNT, -1, 100000,
     NULL, "-1", "last epoch with the identity term (-1: n_epochs)"},
    {"train.lr_policy", ENCO_OPT_STRING, OFF(train.lr_policy), NOCOUNT, 0, 0, "linear|constant",
     "\"linear\"", "learning-rate schedule, stepped at the end of every epoch"},
    {"train.dp_bucket_kb", ENCO_OPT_INT, OFF(train.dp_bucket_kb), NOCOUNT, 1, 1048576, NULL,
     "4096",
     "several processes (mpirun): gradients are summed across them in buckets of this many "
     "KiB, each while the backward of the layers below still runs (DDP's bucket_cap_mb)"},
    {"data.root", ENCO_OPT_STRING, OFF(data.root), NOCOUNT, 0, 0, NULL, "\"\"",
     "dataset folder with trainA/ trainB/ (testA/ testB/)"},
    {"data.preprocess", ENCO_OPT_STRING, OFF(data.preprocess), NOCOUNT, 0, 0,
     "resize_and_crop|crop|scale_width_and_crop|none", "\"resize_and_crop\"",
     "how training images are resized and cropped"},
    {"data.load_size", ENCO_OPT_INT, OFF(data.load_size), NOCOUNT, 4, 16384, NULL, "286",
     "images are resized to this size first"},
    {"data.crop_size", ENCO_OPT_INT, OFF(data.crop_size), NOCOUNT, 8, 16384, NULL, "256",
     "then randomly cropped to this size (a multiple of 4)"},
    {"data.no_flip", ENCO_OPT_BOOL, OFF(data.no_flip), NOCOUNT, 0, 1, NULL, "false",
     "no random horizontal flips"},
    {"data.serial_batches", ENCO_OPT_BOOL, OFF(data.serial_batches), NOCOUNT, 0, 1, NULL,
     "false", "take B images in order instead of at random"},
    {"data.flip_equivariance", ENCO_OPT_BOOL, OFF(data.flip_equivariance), NOCOUNT, 0, 1, NULL,
     "false", "flip real_A and real_B independently with p = 0.5 every iteration"},
    {"data.threads", ENCO_OPT_INT, OFF(data.threads), NOCOUNT, 1, 64, NULL, "2",
     "background threads decoding and augmenting images"},
    {"data.max_items", ENCO_OPT_INT, OFF(data.max_items), NOCOUNT, 0, 100000000, NULL, "0",
     "use at most this many images per domain (0: all)"},
    {"data.synthetic", ENCO_OPT_BOOL, OFF(data.synthetic), NOCOUNT, 0, 1, NULL, "false",
     "make enco-cl's synthetic task (shapes, two colour schemes, true test pairs) in "
     "data.root when it is not there yet, and score the result on its test pairs"},
    {"data.synth_train", ENCO_OPT_INT, OFF(data.synth_train), NOCOUNT, 1, 1000000, NULL, "200",
     "synthetic task: images in trainA and in trainB (size data.load_size)"},
    {"data.synth_test", ENCO_OPT_INT, OFF(data.synth_test), NOCOUNT, 1, 100000, NULL, "20",
     "synthetic task: test pairs"},
    {"run.dir", ENCO_OPT_STRING, OFF(run.dir), NOCOUNT, 0, 0, NULL, "\"runs/enco\"",
     "run folder: checkpoints, samples, losses, index.html"},
    {"run.print_every", ENCO_OPT_INT, OFF(run.print_every), NOCOUNT, 1, 1000000, NULL, "10",
     "iterations between progress lines and loss log entries"},
    {"run.sample_every", ENCO_OPT_INT, OFF(run.sample_every), NOCOUNT, 0, 100000000, NULL,
     "500", "iterations between sample grids (0: only at the end)"},
    {"run.save_every", ENCO_OPT_INT, OFF(run.save_every), NOCOUNT, 0, 100000000, NULL, "5000",
     "iterations between checkpoints (0: epoch ends only)"},
    {"run.eval_every", ENCO_OPT_INT, OFF(run.eval_every), NOCOUNT, 0, 100000000, NULL, "0",
     "where data.root has ground truth (testB/<name> the true translation of testA/<name>, "
     "as the synthetic task): iterations between scores on the test pairs for index.html "
     "(0: only at the end of the run)"},
    {"run.max_iterations", ENCO_OPT_INT, OFF(run.max_iterations), NOCOUNT, 0, 2000000000, NULL,
     "0", "stop after this many iterations in all (0: train every epoch)"},
    /* The CUT-like families: the same keys, each group with its reference defaults. */
    CUT_OPTIONS(cut, "CUT: ", "1.0", "true", "false"),
    CUT_OPTIONS(fastcut, "FastCUT: ", "10.0", "false", "true"),
    {"cyclegan.lambda_A", ENCO_OPT_FLOAT, OFF(cyclegan.lambda_A), NOCOUNT, 0, 1e6, NULL, "10.0",
     "CycleGAN: weight of the cycle loss A -> B -> A"},
    {"cyclegan.lambda_B", ENCO_OPT_FLOAT, OFF(cyclegan.lambda_B), NOCOUNT, 0, 1e6, NULL, "10.0",
     "CycleGAN: weight of the cycle loss B -> A -> B"},
    {"cyclegan.lambda_identity", ENCO_OPT_FLOAT, OFF(cyclegan.lambda_identity), NOCOUNT, 0, 1e6,
     NULL, "0.5",
     "CycleGAN: identity loss weight, relative to lambda_A / lambda_B (0: no identity term)"},
    {"cyclegan.pool_size", ENCO_OPT_INT, OFF(cyclegan.pool_size), NOCOUNT, 0, 10000, NULL, "50",
     "CycleGAN: generated images kept per domain for the discriminators (0: no pool)"},
    {"cyclegan.lr", ENCO_OPT_FLOAT, OFF(cyclegan.lr), NOCOUNT, 0, 1, NULL, "0.0002",
     "CycleGAN: learning rate of both generators and both discriminators"},
    {"cyclegan.nets", ENCO_OPT_STRING, OFF(cyclegan.nets), NOCOUNT, 0, 0, "gpu|cpu", "\"gpu\"",
     "CycleGAN: the networks the reference builds on a GPU (strided down-sampling, strided "
     "PatchGAN) or on a CPU (blur down-sampling, as EnCo's); model.no_antialias* are ignored"},
    {"dclgan.lambda_GAN", ENCO_OPT_FLOAT, OFF(dclgan.lambda_GAN), NOCOUNT, 0, 1e6, NULL, "1.0",
     "DCLGAN: weight of the GAN losses"},
    {"dclgan.lambda_NCE", ENCO_OPT_FLOAT, OFF(dclgan.lambda_NCE), NOCOUNT, 0, 1e6, NULL, "2.0",
     "DCLGAN: weight of the two PatchNCE losses"},
    {"dclgan.lambda_IDT", ENCO_OPT_FLOAT, OFF(dclgan.lambda_IDT), NOCOUNT, 0, 1e6, NULL, "1.0",
     "DCLGAN: weight of the identity (L1) losses"},
    {"dclgan.nce_idt", ENCO_OPT_BOOL, OFF(dclgan.nce_idt), NOCOUNT, 0, 1, NULL, "true",
     "DCLGAN: identity terms on"},
    {"dclgan.nce_layers", ENCO_OPT_INT_LIST, OFF(dclgan.nce_layers), OFF(dclgan.n_nce_layers), 0,
     1000, NULL, "[4, 8, 12, 16]", "DCLGAN: G encoder layers of the PatchNCE losses, increasing"},
    {"dclgan.nce_T", ENCO_OPT_FLOAT, OFF(dclgan.nce_T), NOCOUNT, 1e-6, 1e6, NULL, "0.07",
     "DCLGAN: temperature of the PatchNCE losses"},
    {"dclgan.num_patches", ENCO_OPT_INT, OFF(dclgan.num_patches), NOCOUNT, 1, 65536, NULL, "256",
     "DCLGAN: patches per layer (clamped to the map size), the same positions for every image"},
    {"dclgan.netF_nc", ENCO_OPT_INT, OFF(dclgan.netF_nc), NOCOUNT, 1, 4096, NULL, "256",
     "DCLGAN: width of the PatchSampleF MLPs F1 and F2"},
    {"dclgan.lr", ENCO_OPT_FLOAT, OFF(dclgan.lr), NOCOUNT, 0, 1, NULL, "0.0002",
     "DCLGAN: learning rate of the generators and discriminators"},
    {"dclgan.lr_F", ENCO_OPT_FLOAT, OFF(dclgan.lr_F), NOCOUNT, 0, 1, NULL, "0.001",
     "DCLGAN: learning rate of F1 and F2 (the reference's Adam default)"},
    {"dclgan.beta1_F", ENCO_OPT_FLOAT, OFF(dclgan.beta1_F), NOCOUNT, 0, 0.999999, NULL, "0.9",
     "DCLGAN: Adam beta1 of F1 and F2 (the reference's Adam default)"},
};
const size_t enco_options_count = sizeof enco_options / sizeof enco_options[0];

static const enco_option *find_option(const char *key)
{
    for (size_t i = 0; i < enco_options_count; i++)
        if (strcmp(enco_options[i].key, key) == 0)
            return &enco_options[i];
    return NULL;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) !=
                                            tolower((unsigned char)b[j - 1]));
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

static void suggest(const char *key)
{
    const enco_option *best = NULL;
    size_t best_d = 99;
    const char *dot = strchr(key, '.');
    for (size_t i = 0; i < enco_options_count; i++) {
        size_t d = edit_distance(key, enco_options[i].key);
        /* Also match the leaf alone, for a key put in the wrong group. */
        const char *leaf = strchr(enco_options[i].key, '.') + 1;
        size_t dl = edit_distance(dot ? dot + 1 : key, leaf);
        if (dl < d)
            d = dl;
        if (d < best_d) {
            best_d = d;
            best = &enco_options[i];
        }
    }
    if (best && best_d <= 3)
        enco_error_append("; did you mean '%s'?", best->key);
}

static int in_choices(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0)
            return 1;
        if (!bar)
            break;
        p = bar + 1;
    }
    return 0;
}

/* Stores a parsed value with range / choice checks. where: "FILE:LINE" or "--set". */
static enco_status store_number(enco_config *cfg, const enco_option *o, double v, int is_int,
                                const char *where)
{
    char *base = (char *)cfg + o->offset;
    if (o->type == ENCO_OPT_BOOL)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s must be true or false", where, o->key);
    if (o->type == ENCO_OPT_STRING || o->type == ENCO_OPT_INT_LIST)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s must be a %s", where, o->key,
                         o->type == ENCO_OPT_STRING ? "string" : "list of integers");
    if ((o->type == ENCO_OPT_INT || o->type == ENCO_OPT_INT64) && (!is_int || v != floor(v)))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s must be an integer, got %g", where, o->key,
                         v);
    if (!(v >= o->min && v <= o->max))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s = %g is out of range [%g, %g]", where,
                         o->key, v, o->min, o->max);
    if (o->type == ENCO_OPT_INT)
        *(int *)base = (int)v;
    else if (o->type == ENCO_OPT_INT64)
        *(long long *)base = (long long)v;
    else if (o->type == ENCO_OPT_FLOAT)
        *(double *)base = v;
    else
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s must be a %s", where, o->key,
                         o->type == ENCO_OPT_STRING ? "string" : "list of integers");
    return ENCO_OK;
}

/* Room of a string field: up to the next field of the struct. */
static size_t string_capacity(const enco_option *o)
{
    size_t next = sizeof(enco_config);
    for (size_t i = 0; i < enco_options_count; i++)
        if (enco_options[i].offset > o->offset && enco_options[i].offset < next)
            next = enco_options[i].offset;
    size_t cap = next - o->offset;
    return cap > ENCO_CFG_STR ? ENCO_CFG_STR : cap;
}

static enco_status store_string(enco_config *cfg, const enco_option *o, const char *v,
                                const char *where)
{
    if (o->type != ENCO_OPT_STRING)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s must be %s, not a string", where, o->key,
                         o->type == ENCO_OPT_BOOL ? "true or false" : "a number");
    if (o->choices && !in_choices(o->choices, v))
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s = \"%s\" is not one of %s", where, o->key,
                         v, o->choices);
    size_t cap = string_capacity(o);
    if (strlen(v) >= cap)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s is longer than %zu characters", where,
                         o->key, cap - 1);
    snprintf((char *)cfg + o->offset, cap, "%s", v);
    return ENCO_OK;
}

static enco_status store_list(enco_config *cfg, const enco_option *o, const long long *vals,
                              int n, const char *where)
{
    if (o->type != ENCO_OPT_INT_LIST)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s is not a list", where, o->key);
    if (n > ENCO_MAX_NCE_LAYERS)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s has more than %d entries", where, o->key,
                         ENCO_MAX_NCE_LAYERS);
    int *dst = (int *)((char *)cfg + o->offset);
    for (int i = 0; i < n; i++) /* check all first: a refused list leaves the old one */
        if (vals[i] < o->min || vals[i] > o->max)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s entry %lld is out of range", where,
                             o->key, vals[i]);
    for (int i = 0; i < n; i++)
        dst[i] = (int)vals[i];
    *(int *)((char *)cfg + o->count_offset) = n;
    return ENCO_OK;
}

/* Parses text as a config value (for defaults and --set). */
static enco_status store_text(enco_config *cfg, const enco_option *o, const char *text,
                              const char *where)
{
    while (isspace((unsigned char)*text))
        text++;
    if (o->type == ENCO_OPT_BOOL) {
        int v = -1;
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
            v = 1;
        else if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
            v = 0;
        if (v < 0)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s must be true or false, got '%s'",
                             where, o->key, text);
        *(int *)((char *)cfg + o->offset) = v;
        return ENCO_OK;
    }
    if (o->type == ENCO_OPT_STRING) {
        char buf[ENCO_CFG_STR];
        size_t n = strlen(text);
        if (n >= 2 && text[0] == '"' && text[n - 1] == '"')
            snprintf(buf, sizeof buf, "%.*s", (int)(n - 2), text + 1);
        else
            snprintf(buf, sizeof buf, "%s", text);
        return store_string(cfg, o, buf, where);
    }
    if (o->type == ENCO_OPT_INT_LIST) {
        long long vals[ENCO_MAX_NCE_LAYERS + 1];
        int n = 0;
        const char *p = text;
        if (*p == '[')
            p++;
        for (;;) {
            while (isspace((unsigned char)*p) || *p == ',')
                p++;
            if (*p == ']' || *p == '\0')
                break;
            char *end = NULL;
            errno = 0;
            long long v = strtoll(p, &end, 10);
            if (end == p || errno)
                return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s must be a list of integers like "
                                 "[3, 7, 13], got '%s'", where, o->key, text);
            if (n > ENCO_MAX_NCE_LAYERS)
                return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s has too many entries", where,
                                 o->key);
            vals[n++] = v;
            p = end;
        }
        return store_list(cfg, o, vals, n, where);
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    while (end && isspace((unsigned char)*end))
        end++;
    if (end == text || *end != '\0' || errno == ERANGE)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s must be a number, got '%s'", where, o->key,
                         text);
    int is_int = strpbrk(text, ".eE") == NULL || o->type == ENCO_OPT_FLOAT;
    return store_number(cfg, o, v, is_int, where);
}

void enco_config_defaults(enco_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < enco_options_count; i++)
        store_text(cfg, &enco_options[i], enco_options[i].def, "default");
}

enco_status enco_config_set(enco_config *cfg, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    if (!eq)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "--set %s: expected group.key=value", assignment);
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)(eq - assignment), assignment);
    for (char *p = key + strlen(key); p > key && isspace((unsigned char)p[-1]);)
        *--p = '\0';
    const enco_option *o = find_option(key);
    if (!o) {
        ENCO_FAIL(ENCO_ERR_INVALID_ARG, "--set: unknown option '%s'", key);
        suggest(key);
        return ENCO_ERR_INVALID_ARG;
    }
    return store_text(cfg, o, eq + 1, "--set");
}

static enco_status load_setting(enco_config *cfg, config_setting_t *s, const char *group,
                                const char *path)
{
    char key[160], where[1100];
    snprintf(key, sizeof key, "%s.%s", group, config_setting_name(s));
    snprintf(where, sizeof where, "%s:%d", path, config_setting_source_line(s));
    const enco_option *o = find_option(key);
    if (!o) {
        ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: unknown option '%s'", where, key);
        suggest(key);
        return ENCO_ERR_INVALID_ARG;
    }
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return store_number(cfg, o, (double)config_setting_get_int64(s), 1, where);
    case CONFIG_TYPE_FLOAT:
        return store_number(cfg, o, config_setting_get_float(s),
                            o->type == ENCO_OPT_FLOAT, where);
    case CONFIG_TYPE_BOOL:
        if (o->type != ENCO_OPT_BOOL)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s must be %s, not true/false", where,
                             key, o->type == ENCO_OPT_STRING ? "a string" : "a number");
        *(int *)((char *)cfg + o->offset) = config_setting_get_bool(s);
        return ENCO_OK;
    case CONFIG_TYPE_STRING:
        return store_string(cfg, o, config_setting_get_string(s), where);
    case CONFIG_TYPE_ARRAY:
    case CONFIG_TYPE_LIST: {
        int n = config_setting_length(s);
        long long vals[ENCO_MAX_NCE_LAYERS];
        if (o->type != ENCO_OPT_INT_LIST)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s must not be a list", where, key);
        if (n > ENCO_MAX_NCE_LAYERS)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s has more than %d entries", where, key,
                             ENCO_MAX_NCE_LAYERS);
        for (int i = 0; i < n; i++) {
            config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            int t = config_setting_type(e);
            if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
                return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s must hold integers", where, key);
            vals[i] = config_setting_get_int64(e);
        }
        return store_list(cfg, o, vals, n, where);
    }
    default:
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s has an unsupported value type", where,
                         key);
    }
}

static enco_status load_parsed(enco_config *cfg, config_t *lc, const char *path);

enco_status enco_config_load_text(enco_config *cfg, const char *text, const char *name)
{
    config_t lc;
    config_init(&lc);
    if (!config_read_string(&lc, text)) {
        enco_status st = ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s:%d: syntax error: %s", name,
                                   config_error_line(&lc), config_error_text(&lc));
        config_destroy(&lc);
        return st;
    }
    enco_status st = load_parsed(cfg, &lc, name);
    config_destroy(&lc);
    return st;
}

enco_status enco_config_load(enco_config *cfg, const char *path)
{
    config_t lc;
    config_init(&lc);
    if (!config_read_file(&lc, path)) {
        enco_status st;
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            st = ENCO_FAIL(ENCO_ERR_IO, "cannot read config file %s: %s", path, strerror(errno));
        else
            st = ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s:%d: syntax error: %s",
                           config_error_file(&lc) ? config_error_file(&lc) : path,
                           config_error_line(&lc), config_error_text(&lc));
        config_destroy(&lc);
        return st;
    }
    enco_status st = load_parsed(cfg, &lc, path);
    config_destroy(&lc);
    return st;
}

static enco_status load_parsed(enco_config *cfg, config_t *lc, const char *path)
{
    config_setting_t *root = config_root_setting(lc);
    enco_status st = ENCO_OK;
    for (int i = 0; st == ENCO_OK && i < config_setting_length(root); i++) {
        config_setting_t *g = config_setting_get_elem(root, (unsigned)i);
        const char *gname = config_setting_name(g);
        if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
            char probe[160];
            snprintf(probe, sizeof probe, "%s", gname);
            ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                      "%s:%d: '%s' must be inside a group such as model = { ... }; or train = { "
                      "... };",
                      path, config_setting_source_line(g), gname);
            suggest(probe);
            st = ENCO_ERR_INVALID_ARG;
            break;
        }
        for (int j = 0; st == ENCO_OK && j < config_setting_length(g); j++)
            st = load_setting(cfg, config_setting_get_elem(g, (unsigned)j), gname, path);
    }
    return st;
}

static enco_status validate_cut(const enco_cut_config *c, const char *g)
{
    if (c->n_nce_layers < 1 || c->n_nce_layers > 8)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s.nce_layers needs 1 to 8 layers, got %d", g,
                         c->n_nce_layers);
    for (int i = 1; i < c->n_nce_layers; i++)
        if (c->nce_layers[i] <= c->nce_layers[i - 1])
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s.nce_layers must be increasing", g);
    return ENCO_OK;
}

enco_status enco_config_validate(const enco_config *cfg)
{
    if (strcmp(cfg->model.family, "cut") == 0)
        ENCO_TRY(validate_cut(&cfg->cut, "cut"));
    else if (strcmp(cfg->model.family, "fastcut") == 0)
        ENCO_TRY(validate_cut(&cfg->fastcut, "fastcut"));
    else if (strcmp(cfg->model.family, "dclgan") == 0) {
        const enco_dclgan_config *c = &cfg->dclgan;
        if (c->n_nce_layers < 1 || c->n_nce_layers > 8)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "dclgan.nce_layers needs 1 to 8 layers, got %d",
                             c->n_nce_layers);
        for (int i = 1; i < c->n_nce_layers; i++)
            if (c->nce_layers[i] <= c->nce_layers[i - 1])
                return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "dclgan.nce_layers must be increasing");
    }
    int n = cfg->model.n_nce_layers;
    if (n < 2 || n % 2 != 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "model.nce_layers needs an even number of layers (keys then their "
                         "decoder partners), got %d",
                         n);
    for (int i = 1; i < n; i++)
        if (cfg->model.nce_layers[i] <= cfg->model.nce_layers[i - 1])
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "model.nce_layers must be increasing");
    if (cfg->data.crop_size % 4 != 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "data.crop_size = %d must be a multiple of 4",
                         cfg->data.crop_size);
    if (strcmp(cfg->data.preprocess, "resize_and_crop") == 0 &&
        cfg->data.crop_size > cfg->data.load_size)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "data.crop_size (%d) is larger than data.load_size (%d)",
                         cfg->data.crop_size, cfg->data.load_size);
    if (cfg->train.num_patches * cfg->train.batch_size < 2 &&
        strcmp(cfg->model.prj_norm, "bn") == 0)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "train.num_patches * train.batch_size must be at least 2 with "
                         "BatchNorm heads (model.prj_norm = \"bn\")");
    return ENCO_OK;
}

/* Writes s as a libconfig string literal: quotes, backslashes and control
 * characters escaped (out holds at least 4 * strlen(s) + 3 bytes). */
static void quote(char *out, const char *s)
{
    *out++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            *out++ = '\\';
            *out++ = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            out += sprintf(out, "\\x%02x", c);
        } else {
            *out++ = (char)c;
        }
    }
    *out++ = '"';
    *out = '\0';
}

char *enco_config_dump(const enco_config *cfg)
{
    size_t cap = 8192, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = '\0';
    const char *group = "";
    for (size_t i = 0; i < enco_options_count; i++) {
        const enco_option *o = &enco_options[i];
        const char *dot = strchr(o->key, '.');
        char line[4 * ENCO_CFG_STR + 512], val[4 * ENCO_CFG_STR + 8];
        const char *base = (const char *)cfg + o->offset;
        switch (o->type) {
        case ENCO_OPT_INT: snprintf(val, sizeof val, "%d", *(const int *)base); break;
        case ENCO_OPT_INT64: snprintf(val, sizeof val, "%lldL", *(const long long *)base); break;
        case ENCO_OPT_FLOAT: {
            double v = *(const double *)base;
            /* the shortest form that reads back as the same double, without an
             * exponent for magnitudes 1e-4 .. 1e15 */
            const int plain = fabs(v) >= 1e-4 && fabs(v) < 1e15;
            for (int digits = 1; digits <= 17; digits++) {
                snprintf(val, sizeof val, "%.*g", digits, v);
                if (strtod(val, NULL) == v && (!plain || !strpbrk(val, "eE")))
                    break;
            }
            if (!strpbrk(val, ".eEn"))
                strcat(val, ".0");
            break;
        }
        case ENCO_OPT_BOOL: snprintf(val, sizeof val, "%s", *(const int *)base ? "true" : "false"); break;
        case ENCO_OPT_STRING: quote(val, base); break;
        case ENCO_OPT_INT_LIST: {
            const int *v = (const int *)base;
            int n = *(const int *)((const char *)cfg + o->count_offset);
            size_t k = (size_t)snprintf(val, sizeof val, "[");
            for (int j = 0; j < n && k < sizeof val - 16; j++)
                k += (size_t)snprintf(val + k, sizeof val - k, "%s%d", j ? ", " : "", v[j]);
            snprintf(val + k, sizeof val - k, "]");
            break;
        }
        }
        int newgroup = strncmp(group, o->key, (size_t)(dot - o->key)) != 0 ||
                       group[dot - o->key] != '.';
        size_t n = 0;
        if (newgroup) {
            n = (size_t)snprintf(line, sizeof line, "%s%.*s = {\n", *group ? "};\n" : "",
                                 (int)(dot - o->key), o->key);
            group = o->key;
        }
        snprintf(line + n, sizeof line - n, "  # %s\n  %s = %s;\n", o->help, dot + 1, val);
        size_t ll = strlen(line);
        if (len + ll + 8 > cap) {
            cap = 2 * (len + ll + 8);
            char *p = realloc(out, cap);
            if (!p) {
                free(out);
                return NULL;
            }
            out = p;
        }
        memcpy(out + len, line, ll + 1);
        len += ll;
    }
    if (*group)
        strcpy(out + len, "};\n");
    return out;
}
