/* G and D structure: parameter names, shapes and counts against the
 * reference implementation's state dict (tests/data/reference-keys.tsv,
 * a copy of the spec's table), feature layers and output sizes. */
#include "harness.h"
#include "nn/models.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ENCO_TEST_DATA
#error "ENCO_TEST_DATA must name tests/data"
#endif

typedef struct ref_key {
    char net;
    char name[128];
    int ndim;
    int64_t shape[4];
} ref_key;

static size_t load_keys(ref_key *keys, size_t max)
{
    FILE *f = fopen(ENCO_TEST_DATA "/reference-keys.tsv", "r");
    ck_assert_msg(f != NULL, "cannot open reference-keys.tsv");
    char line[512];
    size_t n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char net[8], name[128], shape[64], dtype[16];
        if (sscanf(line, "%7s %127s %63s %15s", net, name, shape, dtype) != 4)
            continue;
        ref_key *k = &keys[n];
        memset(k, 0, sizeof *k);
        k->net = net[0];
        snprintf(k->name, sizeof k->name, "%s", name);
        if (strcmp(dtype, "int64") == 0)
            k->ndim = -1; /* num_batches_tracked */
        else
            for (char *p = shape + 1; *p && *p != ')';) {
                k->shape[k->ndim++] = strtoll(p, &p, 10);
                if (*p == ',')
                    p++;
            }
        n++;
    }
    fclose(f);
    return n;
}

static void compare_net(char which, const enco_param_set *ps, const ref_key *keys, size_t nkeys)
{
    size_t expected = 0;
    for (size_t i = 0; i < nkeys; i++) {
        if (keys[i].net != which)
            continue;
        expected++;
        const enco_param *p = enco_params_find(ps, keys[i].name);
        ck_assert_msg(p != NULL, "net%c lacks %s", which, keys[i].name);
        ck_assert_int_eq(p->ndim, keys[i].ndim);
        for (int d = 0; d < p->ndim; d++)
            ck_assert_msg(p->shape[d] == keys[i].shape[d], "net%c.%s dim %d: %lld vs %lld", which,
                          keys[i].name, d, (long long)p->shape[d], (long long)keys[i].shape[d]);
    }
    ck_assert_uint_eq(ps->count, expected);
}

START_TEST(default_names_match_reference)
{
    static ref_key keys[512];
    size_t nkeys = load_keys(keys, 512);
    ck_assert_uint_gt(nkeys, 100);
    enco_model_config cfg = enco_model_config_default();
    enco_param_set g, d;
    enco_seqnet gn, dn;
    enco_params_init(&g, "netG.");
    enco_params_init(&d, "netD.");
    ENCO_CK(enco_generator_build(&gn, &g, &cfg, 1, 256, 256));
    ENCO_CK(enco_discriminator_build(&dn, &d, &cfg, 1, 256, 256));
    compare_net('G', &g, keys, nkeys);
    compare_net('D', &d, keys, nkeys);
    /* Spec section 8: trainable parameter counts. */
    ck_assert_uint_eq(g.n_params, 11378179);
    ck_assert_uint_eq(d.n_params, 2764737);
    /* Output sizes (spec tables). */
    ck_assert_int_eq(gn.slots[gn.cur].c, 3);
    ck_assert_int_eq(gn.slots[gn.cur].h, 256);
    ck_assert_int_eq(dn.slots[dn.cur].c, 1);
    ck_assert_int_eq(dn.slots[dn.cur].h, 30);
    ck_assert_int_eq(dn.slots[dn.cur].w, 30);
    free(gn.layers), free(gn.slots), free(dn.layers), free(dn.slots);
    enco_params_free(test_ctx(), &g);
    enco_params_free(test_ctx(), &d);
}
END_TEST

START_TEST(feature_layers)
{
    enco_model_config cfg = enco_model_config_default();
    enco_param_set g;
    enco_seqnet gn;
    enco_params_init(&g, "netG.");
    ENCO_CK(enco_generator_build(&gn, &g, &cfg, 1, 256, 256));
    /* nce_layers 3,7,13,18,24,28: (64,256), (128,128), (256,64) x2, (128,128), (64,256) */
    const int layers[6] = {3, 7, 13, 18, 24, 28};
    const int ch[6] = {64, 128, 256, 256, 128, 64};
    const int hw[6] = {256, 128, 64, 64, 128, 256};
    for (int i = 0; i < 6; i++) {
        cl_mem m;
        size_t off;
        int c, h, w;
        ENCO_CK(enco_seqnet_feature(&gn, layers[i], &m, &off, &c, &h, &w));
        ck_assert_int_eq(c, ch[i]);
        ck_assert_int_eq(h, hw[i]);
        ck_assert_int_eq(w, hw[i]);
    }
    cl_mem m;
    size_t off;
    int c, h, w;
    ck_assert_int_eq(enco_seqnet_feature(&gn, 0, &m, &off, &c, &h, &w), ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_seqnet_feature(&gn, 2, &m, &off, &c, &h, &w), ENCO_ERR_INVALID_ARG);
    free(gn.layers), free(gn.slots);
    enco_params_free(test_ctx(), &g);
}
END_TEST

START_TEST(variants_build)
{
    enco_model_config cfg = enco_model_config_default();
    cfg.ngf = 8, cfg.ndf = 8, cfg.n_blocks = 6;
    for (int v = 0; v < 4; v++) {
        cfg.no_antialias = v & 1;
        cfg.no_antialias_up = (v >> 1) & 1;
        enco_param_set g, d;
        enco_seqnet gn, dn;
        enco_params_init(&g, "netG.");
        enco_params_init(&d, "netD.");
        ENCO_CK(enco_generator_build(&gn, &g, &cfg, 2, 64, 48));
        ENCO_CK(enco_discriminator_build(&dn, &d, &cfg, 2, 64, 48));
        ck_assert_int_eq(gn.slots[gn.cur].h, 64);
        ck_assert_int_eq(gn.slots[gn.cur].w, 48);
        /* no_antialias: no filt buffers in that half */
        ck_assert_int_eq(enco_params_find(&g, "model.7.filt") != NULL, !cfg.no_antialias);
        if (cfg.no_antialias_up)
            ck_assert_ptr_nonnull(enco_params_find(&g, cfg.no_antialias ? "model.16.weight"
                                                                          : "model.18.weight"));
        free(gn.layers), free(gn.slots), free(dn.layers), free(dn.slots);
        enco_params_free(test_ctx(), &g);
        enco_params_free(test_ctx(), &d);
    }
    /* Bad sizes are refused with a reason. */
    enco_param_set g;
    enco_seqnet gn;
    enco_params_init(&g, "netG.");
    ck_assert_int_eq(enco_generator_build(&gn, &g, &cfg, 1, 30, 32), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "multiples of 4"));
    enco_params_free(test_ctx(), &g);
}
END_TEST

/* The smallest image the networks take: worked out by hand from the layer
 * arithmetic. Default D (3 layers, blur downsampling that rounds up): 24 ->
 * 23 -> 12 -> 11 -> 6 -> 5 -> 3 -> 2 (norm over 2x2) -> 1; 20 ends in a
 * norm over 1x1. One layer: 8 -> 7 -> 4 -> 3 -> 2, and 4 -> 3 -> 2 -> 1 fails. */
/* A network definition runs any number of times: a second run of G that
 * stops after module `stop` (CUT's encoder pass) computes, on the same input,
 * the same features as G's own run, and its backward from a gradient
 * injected at a feature gives the same parameter and input gradients as the
 * full run's backward with the same injection (and nothing at the output). */
START_TEST(runs_of_one_definition)
{
    static const int stops[] = {4, 8, 12, 13};
    const int stop = stops[_i];
    enco_ctx *ctx = test_ctx();
    enco_model_config cfg = enco_model_config_default();
    cfg.ngf = 4;
    cfg.n_blocks = 2;
    enco_param_set g;
    enco_seqnet gn;
    enco_params_init(&g, "netG.");
    const int n = 2, h = 32, w = 32;
    ENCO_CK(enco_generator_build(&gn, &g, &cfg, n, h, w));
    ENCO_CK(enco_params_alloc(ctx, &g));
    ENCO_CK(enco_seqnet_finish(ctx, &gn));
    enco_rng rng = enco_rng_make(5, 100);
    ENCO_CK(enco_params_initialize(ctx, &g, &rng, 0.3));
    enco_seqnet_run enc;
    ENCO_CK(enco_seqnet_run_create(ctx, &gn, n, stop, &enc));
    ck_assert_int_lt((int)enc.nlayers, (int)gn.nlayers);

    size_t img = (size_t)n * 3 * h * w;
    float *x = malloc(img * sizeof *x);
    test_fill_uniform(x, img, 11, -1, 1);
    cl_mem xb, dfeat, dy, dx;
    ENCO_CK(enco_buffer_alloc(ctx, img * sizeof(float), &xb));
    ENCO_CK(enco_upload(ctx, xb, 0, img * sizeof(float), x));
    int c = 0, fh = 0, fw = 0;
    cl_mem fm;
    size_t fo;
    ENCO_CK(enco_seqnet_feature(&gn, stop, &fm, &fo, &c, &fh, &fw));
    size_t fsize = (size_t)n * c * fh * fw;
    float *fg = malloc(fsize * sizeof *fg);
    test_fill_uniform(fg, fsize, 12, -1, 1);
    ENCO_CK(enco_buffer_alloc(ctx, fsize * sizeof(float), &dfeat));
    ENCO_CK(enco_upload(ctx, dfeat, 0, fsize * sizeof(float), fg));
    int co, ho, wo;
    cl_mem om;
    size_t oo;
    enco_seqnet_output(&gn, &om, &oo, &co, &ho, &wo);
    size_t osize = (size_t)n * co * ho * wo;
    ENCO_CK(enco_buffer_alloc(ctx, osize * sizeof(float), &dy));
    ENCO_CK(enco_fill_zero(ctx, dy, 0, osize * sizeof(float)));
    ENCO_CK(enco_buffer_alloc(ctx, img * sizeof(float), &dx));
    enco_feature_grad inj = {stop, dfeat, 0, n};

    /* the full run */
    float *fa = malloc(fsize * sizeof *fa), *fb = malloc(fsize * sizeof *fb);
    float *ga = malloc(g.n_params * sizeof *ga), *gb = malloc(g.n_params * sizeof *gb);
    float *xa = malloc(img * sizeof *xa), *xb2 = malloc(img * sizeof *xb2);
    ENCO_CK(enco_seqnet_forward(ctx, &gn, xb, 0, n));
    ENCO_CK(enco_seqnet_feature(&gn, stop, &fm, &fo, &c, &fh, &fw));
    ENCO_CK(enco_download(ctx, fm, fo * sizeof(float), fsize * sizeof(float), fa));
    ENCO_CK(enco_fill_zero(ctx, g.grads, 0, g.n_params * sizeof(float)));
    ENCO_CK(enco_seqnet_backward(ctx, &gn, dy, 0, dx, 0, 1, &inj, 1));
    ENCO_CK(enco_download(ctx, g.grads, 0, g.n_params * sizeof(float), ga));
    ENCO_CK(enco_download(ctx, dx, 0, img * sizeof(float), xa));
    /* the encoder run */
    ENCO_CK(enco_seqnet_run_forward(ctx, &enc, xb, 0, n));
    ENCO_CK(enco_seqnet_run_feature(&enc, stop, &fm, &fo, &c, &fh, &fw));
    ENCO_CK(enco_download(ctx, fm, fo * sizeof(float), fsize * sizeof(float), fb));
    ENCO_CK(enco_fill_zero(ctx, g.grads, 0, g.n_params * sizeof(float)));
    ENCO_CK(enco_seqnet_run_backward(ctx, &enc, NULL, 0, dx, 0, 1, &inj, 1));
    ENCO_CK(enco_download(ctx, g.grads, 0, g.n_params * sizeof(float), gb));
    ENCO_CK(enco_download(ctx, dx, 0, img * sizeof(float), xb2));
    test_assert_bitwise("feature of the encoder run", fa, fb, fsize);
    test_assert_bitwise("input gradient of the encoder run", xa, xb2, img);
    test_assert_bitwise("parameter gradients of the encoder run", ga, gb, g.n_params);
    double s = 0;
    for (size_t i = 0; i < g.n_params; i++)
        s += fabs(ga[i]);
    ck_assert(s > 0);
    /* a feature past the stop is not the run's */
    ck_assert_int_eq(enco_seqnet_run_feature(&enc, 22, &fm, &fo, &c, &fh, &fw),
                     ENCO_ERR_INVALID_ARG);
    free(x), free(fg), free(fa), free(fb), free(ga), free(gb), free(xa), free(xb2);
    enco_buffer_free(ctx, xb), enco_buffer_free(ctx, dfeat), enco_buffer_free(ctx, dy);
    enco_buffer_free(ctx, dx);
    enco_seqnet_run_free(ctx, &enc);
    enco_seqnet_free(ctx, &gn);
    enco_params_free(ctx, &g);
}
END_TEST

START_TEST(smallest_size)
{
    enco_model_config cfg = enco_model_config_default();
    ck_assert_int_eq(enco_models_min_size(&cfg), 24);
    ENCO_CK(enco_models_check_size(&cfg, 24, 28));
    ck_assert_int_eq(enco_models_check_size(&cfg, 20, 64), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "at least 24"));
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "20x64"));
    ck_assert_int_eq(enco_models_check_size(&cfg, 26, 24), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "multiples of 4"));
    cfg.no_antialias = 1; /* stride-2 convs: 24 -> 12 -> 6 -> 3 -> 2 -> 1 */
    ck_assert_int_eq(enco_models_min_size(&cfg), 24);
    cfg.no_antialias = 0;
    cfg.n_layers_d = 1;
    ck_assert_int_eq(enco_models_min_size(&cfg), 8);
    ENCO_CK(enco_models_check_size(&cfg, 8, 8));
    cfg.n_layers_d = 5; /* two more halvings */
    ck_assert_int_gt(enco_models_min_size(&cfg), 24);
    /* enco_models_build: a failure from too small an image names the
     * smallest size; 24 builds both networks. */
    cfg = enco_model_config_default();
    for (int side = 20; side <= 24; side += 4) {
        enco_param_set g, d;
        enco_seqnet gn, dn;
        memset(&gn, 0, sizeof gn);
        memset(&dn, 0, sizeof dn);
        enco_params_init(&g, "netG.");
        enco_params_init(&d, "netD.");
        const enco_status st = enco_models_build(&cfg, side, side, &gn, &g, 2, &dn, &d, 2);
        if (side == 20) {
            ck_assert_int_eq(st, ENCO_ERR_INVALID_ARG);
            ck_assert_ptr_nonnull(strstr(enco_last_error(), "at least 24"));
        } else {
            ENCO_CK(st);
            ck_assert_int_gt((int)g.count, 0);
            ck_assert_int_gt((int)d.count, 0);
        }
        enco_seqnet_free(NULL, &gn);
        enco_seqnet_free(NULL, &dn);
        enco_params_free(NULL, &g);
        enco_params_free(NULL, &d);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("models");
    TCase *t = tcase_create("structure");
    tcase_add_test(t, default_names_match_reference);
    tcase_add_test(t, feature_layers);
    tcase_add_test(t, variants_build);
    tcase_add_test(t, smallest_size);
    tcase_add_loop_test(t, runs_of_one_definition, 0, 4);
    suite_add_tcase(s, t);
    return test_run_suite(s);
}
