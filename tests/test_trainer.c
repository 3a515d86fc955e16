/* Training state: initialisation from the seed, checkpoints that resume
 * bit-identically, refusal of mismatched or damaged checkpoints, the
 * learning-rate schedule, and determinism of whole iterations. */
#include "harness.h"
#include "models/enco.h"
#include "ops/adam.h"
#include "train/checkpoint.h"
#include "train/run.h"
#include "train/verify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static const char *tmp(const char *leaf)
{
    static char buf[2][512];
    static int which;
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/enco-test-trainer-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
    }
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", dir, leaf);
    return buf[which];
}

static void small_config(enco_config *cfg)
{
    enco_config_defaults(cfg);
    cfg->model.ngf = 4;
    cfg->model.ndf = 4;
    cfg->model.n_blocks = 2;
    int layers[6] = {3, 7, 12, 13, 17, 21};
    memcpy(cfg->model.nce_layers, layers, sizeof layers);
    cfg->model.n_nce_layers = 6;
    cfg->model.netF_nc = 16;
    cfg->train.num_patches = 16;
    cfg->train.seed = 7;
}

static float *images(int n, int h, int w, uint64_t seed)
{
    float *x = malloc((size_t)n * 3 * h * w * sizeof(float));
    test_fill_uniform(x, (size_t)n * 3 * h * w, seed, -1, 1);
    return x;
}

static enco_trainer *make(const enco_config *cfg)
{
    enco_trainer *t = NULL;
    ENCO_CK(enco_trainer_create(test_ctx(), cfg, 1, 32, 32, &t));
    ENCO_CK(enco_trainer_init_weights(t));
    return t;
}

static float *weights(enco_trainer *t, size_t *n)
{
    *n = t->G.n_params;
    float *w = malloc(*n * sizeof(float));
    ENCO_CK(enco_download(test_ctx(), t->G.params, 0, *n * sizeof(float), w));
    return w;
}

static void steps(enco_trainer *t, int from, int count, float *losses_out)
{
    for (int i = from; i < from + count; i++) {
        float *a = images(1, 32, 32, 100 + (uint64_t)i), *b = images(1, 32, 32, 200 + (uint64_t)i);
        ENCO_CK(enco_trainer_step(t, a, b, NULL));
        free(a);
        free(b);
    }
    ENCO_CK(enco_trainer_losses(t, losses_out));
}

START_TEST(init_is_seeded)
{
    enco_config cfg;
    small_config(&cfg);
    enco_trainer *a = make(&cfg), *b = make(&cfg);
    size_t n = 0;
    float *wa = weights(a, &n), *wb = weights(b, &n);
    test_assert_bitwise("init same seed", wa, wb, n);
    /* xavier_normal(0.02): the first conv's std is 0.02*sqrt(2/(3*49+4*49)) */
    const enco_param *p = enco_params_find(&a->G, "model.1.weight");
    double s = 0;
    for (size_t i = 0; i < p->numel; i++)
        s += (double)wa[p->offset + i] * wa[p->offset + i];
    double std = sqrt(s / (double)p->numel), want = 0.02 * sqrt(2.0 / (7.0 * 49));
    ck_assert_msg(fabs(std - want) < 0.15 * want, "std %g, want %g", std, want);
    const enco_param *bias = enco_params_find(&a->G, "model.1.bias");
    for (size_t i = 0; i < bias->numel; i++)
        ck_assert(wa[bias->offset + i] == 0.0f);
    enco_trainer_free(b);
    cfg.train.seed = 8;
    b = make(&cfg);
    free(wb);
    wb = weights(b, &n);
    ck_assert_msg(memcmp(wa, wb, n * sizeof(float)) != 0, "another seed gave the same weights");
    /* train.init_gain scales the xavier draws (the reference's --init_gain):
     * the same seed at gain 0.5 gives 25 times the weights of gain 0.02. */
    enco_trainer_free(b);
    small_config(&cfg);
    cfg.train.init_gain = 0.5;
    b = make(&cfg);
    free(wb);
    wb = weights(b, &n);
    double worst = 0;
    for (size_t i = 0; i < p->numel; i++)
        worst = fmax(worst, fabs((double)wb[p->offset + i] - 25.0 * wa[p->offset + i]) /
                                (25.0 * want));
    ck_assert_msg(worst < 1e-5, "init_gain 0.5: weights off 25x gain 0.02 by %g of the std", worst);
    free(wa), free(wb);
    enco_trainer_free(a);
    enco_trainer_free(b);
}
END_TEST

START_TEST(iterations_are_deterministic_and_learn)
{
    enco_config cfg;
    small_config(&cfg);
    enco_trainer *a = make(&cfg), *b = make(&cfg);
    float la[ENCO_LOSS_SLOTS], lb[ENCO_LOSS_SLOTS];
    steps(a, 0, 3, la);
    steps(b, 0, 3, lb);
    test_assert_bitwise("losses after 3 steps", la, lb, ENCO_LOSS_SLOTS);
    size_t n;
    float *wa = weights(a, &n), *wb = weights(b, &n);
    test_assert_bitwise("G after 3 steps", wa, wb, n);
    for (int i = 0; i < ENCO_LOSS_SLOTS; i++)
        ck_assert_msg(isfinite(la[i]), "loss slot %d is %g", i, la[i]);
    ck_assert(la[ENCO_LOSS_D] > 0 && la[ENCO_LOSS_G] > 0);
    free(wa), free(wb);
    enco_trainer_free(a);
    enco_trainer_free(b);
}
END_TEST

START_TEST(resume_is_bit_identical)
{
    enco_config cfg;
    small_config(&cfg);
    /* Uninterrupted: 4 steps. */
    enco_trainer *a = make(&cfg);
    float la[ENCO_LOSS_SLOTS];
    steps(a, 0, 4, la);
    size_t n;
    float *wa = weights(a, &n);
    /* Interrupted after 2, saved, restored into a fresh trainer, 2 more. */
    enco_trainer *b = make(&cfg);
    float lb[ENCO_LOSS_SLOTS];
    steps(b, 0, 2, lb);
    enco_run_state rs = {.epoch = 3, .epoch_iter = 2, .total_iter = 2, .sched_steps = 1};
    const char *path = tmp("resume.safetensors");
    ENCO_CK(enco_checkpoint_save(b, &rs, path));
    enco_trainer_free(b);
    enco_trainer *c = NULL;
    ENCO_CK(enco_trainer_create(test_ctx(), &cfg, 1, 32, 32, &c));
    enco_run_state back = {0};
    ENCO_CK(enco_checkpoint_load(c, &back, path));
    ck_assert_int_eq(back.epoch, 3);
    ck_assert_int_eq(back.epoch_iter, 2);
    ck_assert_int_eq(back.total_iter, 2);
    ck_assert_int_eq(back.sched_steps, 1);
    float lc[ENCO_LOSS_SLOTS];
    steps(c, 2, 2, lc);
    float *wc = weights(c, &n);
    test_assert_bitwise("losses resumed", la, lc, ENCO_LOSS_SLOTS);
    test_assert_bitwise("G resumed", wa, wc, n);
    /* F's BatchNorm counters came back too. */
    ck_assert_int_eq(a->F.counters[0].value, c->F.counters[0].value);
    ck_assert_int_eq(a->F.adam_step, c->F.adam_step);
    free(wa), free(wc);
    enco_trainer_free(a);
    enco_trainer_free(c);
}
END_TEST

START_TEST(refuses_mismatched_and_damaged)
{
    enco_config cfg;
    small_config(&cfg);
    enco_trainer *a = make(&cfg);
    enco_run_state rs = {.epoch = 1};
    const char *path = tmp("ok.safetensors");
    ENCO_CK(enco_checkpoint_save(a, &rs, path));
    char good[512];
    snprintf(good, sizeof good, "%s", path);

    /* Another architecture: ngf 8. */
    enco_config other = cfg;
    other.model.ngf = 8;
    enco_trainer *b = NULL;
    ENCO_CK(enco_trainer_create(test_ctx(), &other, 1, 32, 32, &b));
    enco_run_state r2;
    ck_assert_int_eq(enco_checkpoint_load(b, &r2, good), ENCO_ERR_FORMAT);
    ck_assert_msg(strstr(enco_last_error(), "netG.model.1.weight") != NULL, "%s",
                  enco_last_error());
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "different architecture"));
    enco_trainer_free(b);

    /* A checkpoint written before model families existed (its configuration
     * has no model.family) is EnCo's and loads; another family's is refused
     * naming both. */
    {
        enco_st_file *f = NULL;
        ENCO_CK(enco_st_read(good, &f));
        const char *meta = enco_st_get_meta(f, "config");
        ck_assert_ptr_nonnull(meta);
        const char *fam = strstr(meta, "family = \"enco\";");
        ck_assert_ptr_nonnull(fam);
        char *old = malloc(strlen(meta) + 1), *cut = malloc(strlen(meta) + 8);
        size_t head = (size_t)(fam - meta), skip = strlen("family = \"enco\";");
        snprintf(old, strlen(meta) + 1, "%.*s%s", (int)head, meta, fam + skip);
        snprintf(cut, strlen(meta) + 8, "%.*sfamily = \"cut\";%s", (int)head, meta, fam + skip);
        ck_assert_ptr_null(strstr(old, "family"));
        ENCO_CK(enco_st_set_meta(f, "config", old));
        const char *old_path = tmp("before_families.safetensors");
        ENCO_CK(enco_st_write(old_path, f));
        enco_trainer *e = NULL;
        ENCO_CK(enco_trainer_create(test_ctx(), &cfg, 1, 32, 32, &e));
        ENCO_CK(enco_checkpoint_load(e, &r2, old_path));
        enco_trainer_free(e);
        ENCO_CK(enco_st_set_meta(f, "config", cut));
        const char *cut_path = tmp("cut_family.safetensors");
        ENCO_CK(enco_st_write(cut_path, f));
        ENCO_CK(enco_trainer_create(test_ctx(), &cfg, 1, 32, 32, &e));
        ck_assert_int_eq(enco_checkpoint_load(e, &r2, cut_path), ENCO_ERR_INVALID_ARG);
        ck_assert_msg(strstr(enco_last_error(), "model.family \"cut\"") &&
                          strstr(enco_last_error(), "says \"enco\""),
                      "%s", enco_last_error());
        enco_trainer_free(e);
        free(old), free(cut);
        enco_st_free(f);
    }

    /* Another seed is refused: the run would not continue the same way. */
    other = cfg;
    other.train.seed = 99;
    ENCO_CK(enco_trainer_create(test_ctx(), &other, 1, 32, 32, &b));
    ck_assert_int_eq(enco_checkpoint_load(b, &r2, good), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "train.seed"));
    enco_trainer_free(b);

    /* Truncated copy. */
    FILE *in = fopen(good, "rb");
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    char *buf = malloc((size_t)size);
    ck_assert_int_eq(fread(buf, 1, (size_t)size, in), size);
    fclose(in);
    const char *cut = tmp("cut.safetensors");
    FILE *out = fopen(cut, "wb");
    fwrite(buf, 1, (size_t)size / 2, out);
    fclose(out);
    ck_assert_int_eq(enco_checkpoint_load(a, &r2, cut), ENCO_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "cut.safetensors"));
    free(buf);

    /* A generator-only file loads for translation, a full checkpoint too. */
    enco_param_set g;
    enco_seqnet gn;
    enco_model_config mc = enco_model_config_default();
    mc.ngf = 4, mc.n_blocks = 2;
    enco_params_init(&g, "netG.");
    ENCO_CK(enco_generator_build(&gn, &g, &mc, 1, 32, 32));
    ENCO_CK(enco_params_alloc(test_ctx(), &g));
    ENCO_CK(enco_generator_load(test_ctx(), &g, good));
    enco_st_file *gonly = enco_st_new();
    ENCO_CK(enco_params_save(test_ctx(), &g, gonly, ""));
    const char *gp = tmp("G.safetensors");
    ENCO_CK(enco_st_write(gp, gonly));
    ENCO_CK(enco_generator_load(test_ctx(), &g, gp));
    /* but not as a training checkpoint */
    ck_assert_int_eq(enco_checkpoint_load(a, &r2, gp), ENCO_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "not an enco-cl training checkpoint"));
    enco_st_free(gonly);
    free(gn.layers), free(gn.slots);
    enco_params_free(test_ctx(), &g);
    enco_trainer_free(a);
}
END_TEST

/* A reducer of two processes whose collectives do nothing useful: only what
 * enco_trainer_set_reducer accepts or refuses is looked at. */
static enco_status idle_sum(void *user, float *buf, size_t n)
{
    (void)user, (void)buf, (void)n;
    return ENCO_OK;
}

static enco_status idle_gather(void *user, const void *mine, void *all, size_t bytes)
{
    (void)user;
    memcpy(all, mine, bytes);
    memcpy((char *)all + bytes, mine, bytes);
    return ENCO_OK;
}

/* The families that share more than the gradients across processes (the
 * batch's PatchNCE keys, a pool's fakes) need the reducer's all-gather: a
 * reducer without one is refused naming why; with one they are accepted;
 * a rank outside the processes is refused. */
START_TEST(data_parallel_needs_allgather)
{
    static const char *fams[] = {"dclgan", "cut", "cyclegan"};
    for (int i = 0; i < 3; i++) {
        enco_config cfg;
        small_config(&cfg);
        snprintf(cfg.model.family, sizeof cfg.model.family, "%s", fams[i]);
        cfg.cut.nce_includes_all_negatives_from_minibatch = 1;
        cfg.cyclegan.pool_size = 50;
        cfg.dclgan.num_patches = cfg.cut.num_patches = 16;
        const int dl[4] = {4, 8, 12, 13}, cl[5] = {0, 4, 8, 12, 13}; /* n_blocks 2 */
        memcpy(cfg.dclgan.nce_layers, dl, sizeof dl);
        cfg.dclgan.n_nce_layers = 4;
        memcpy(cfg.cut.nce_layers, cl, sizeof cl);
        cfg.cut.n_nce_layers = 5;
        enco_trainer *t = NULL;
        ENCO_CK(enco_trainer_create(test_ctx(), &cfg, 1, 32, 32, &t));
        enco_grad_reducer r = {.size = 2, .rank = 1, .sum = idle_sum};
        ck_assert_int_eq(enco_trainer_set_reducer(t, &r), ENCO_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(enco_last_error(), "cannot train on 2 processes") &&
                          strstr(enco_last_error(), "cannot share"),
                      "%s: %s", fams[i], enco_last_error());
        ck_assert_int_eq(t->reducer.size, 0); /* nothing kept of the refused reducer */
        r.allgather = idle_gather;
        ENCO_CK(enco_trainer_set_reducer(t, &r));
        ck_assert_int_eq(t->reducer.size, 2);
        r.rank = 2;
        ck_assert_int_eq(enco_trainer_set_reducer(t, &r), ENCO_ERR_INVALID_ARG);
        enco_trainer_free(t);
    }
}
END_TEST

/* A batch source that turns to NaN images from iteration `bad_from` on. */
typedef struct nan_source {
    int64_t bad_from;
} nan_source;

static int64_t nan_len(void *self)
{
    (void)self;
    return 100;
}

static enco_status nan_get(void *self, int64_t epoch, int64_t iter, float *a, float *b)
{
    const nan_source *s = self;
    size_t n = 3 * 32 * 32;
    test_fill_uniform(a, n, (uint64_t)(epoch * 1000 + iter), -1, 1);
    test_fill_uniform(b, n, (uint64_t)(epoch * 1000 + iter) + 7, -1, 1);
    if (iter >= s->bad_from)
        for (size_t i = 0; i < n; i++)
            a[i] = NAN;
    return ENCO_OK;
}

START_TEST(nan_loss_stops_and_keeps_checkpoint)
{
    enco_config cfg;
    small_config(&cfg);
    cfg.run.print_every = 1;
    cfg.run.save_every = 3;
    cfg.run.sample_every = 0;
    cfg.run.max_iterations = 20;
    enco_trainer *t = make(&cfg);
    nan_source ns = {.bad_from = 7};
    enco_batch_source src = {.self = &ns, .epoch_length = nan_len, .get = nan_get};
    char rundir[512];
    snprintf(rundir, sizeof rundir, "%s", tmp("nan-run"));
    enco_run_options ro = {.dir = rundir};
    enco_status st = enco_run_train(t, &src, &ro);
    if (st != ENCO_ERR_NUMERIC) {
        float l[ENCO_LOSS_SLOTS];
        enco_trainer_losses(t, l);
        printf("losses after the run: D %g G %g (iteration %lld)\n", l[ENCO_LOSS_D], l[ENCO_LOSS_G],
               (long long)t->iteration);
    }
    ck_assert_int_eq(st, ENCO_ERR_NUMERIC);
    const char *msg = enco_last_error();
    ck_assert_msg(strstr(msg, "iteration 8") && strstr(msg, "diverged") &&
                      strstr(msg, "latest.safetensors"),
                  "%s", msg);
    /* The checkpoint on disk is the last good one (iteration 6), and loads. */
    enco_trainer *u = NULL;
    ENCO_CK(enco_trainer_create(test_ctx(), &cfg, 1, 32, 32, &u));
    enco_run_state rs;
    char ck[600];
    snprintf(ck, sizeof ck, "%s/latest.safetensors", rundir);
    ENCO_CK(enco_checkpoint_load(u, &rs, ck));
    ck_assert_int_eq(rs.total_iter, 6);
    size_t n;
    float *w = weights(u, &n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(isfinite(w[i]), "weight %zu of the kept checkpoint is %g", i, w[i]);
    free(w);
    enco_trainer_free(u);
    enco_trainer_free(t);
}
END_TEST

START_TEST(too_large_for_device_is_explained)
{
    enco_config cfg;
    enco_config_defaults(&cfg);
    enco_trainer *t = NULL;
    /* The context keeps what it owns (the GEMM scratch) across tests. */
    const uint64_t before = enco_ctx_get_stats(test_ctx()).device_bytes;
    /* 2048x2048 with the default model needs buffers beyond any allocation limit here. */
    enco_status st = enco_trainer_create(test_ctx(), &cfg, 1, 2048, 2048, &t);
    ck_assert_ptr_null(t);
    ck_assert_msg(st == CL_INVALID_BUFFER_SIZE || st == CL_MEM_OBJECT_ALLOCATION_FAILURE ||
                      st == CL_OUT_OF_RESOURCES,
                  "status %s: %s", enco_status_str(st), enco_last_error());
    const char *msg = enco_last_error();
    ck_assert_msg(strstr(msg, "bytes") && strstr(msg, "does not fit") &&
                      strstr(msg, "data.crop_size"),
                  "%s", msg);
    /* nothing stays allocated */
    ck_assert_uint_eq(enco_ctx_get_stats(test_ctx()).device_bytes, before);
}
END_TEST

START_TEST(lost_device_keeps_checkpoint)
{
    enco_config cfg;
    small_config(&cfg);
    cfg.run.print_every = 1;
    cfg.run.save_every = 2;
    cfg.run.sample_every = 0;
    cfg.run.max_iterations = 50;
    /* Kernel launches of one iteration, on a context of its own. */
    enco_ctx *probe = NULL;
    ENCO_CK(enco_ctx_create(&probe, NULL));
    enco_trainer *t = NULL;
    ENCO_CK(enco_trainer_create(probe, &cfg, 1, 32, 32, &t));
    ENCO_CK(enco_trainer_init_weights(t));
    uint64_t before = enco_ctx_get_stats(probe).kernel_launches;
    float *a = images(1, 32, 32, 1), *b = images(1, 32, 32, 2);
    ENCO_CK(enco_trainer_step(t, a, b, NULL));
    uint64_t per_iter = enco_ctx_get_stats(probe).kernel_launches - before;
    ck_assert_uint_gt(per_iter, 10);
    enco_trainer_free(t);
    enco_ctx_free(probe);
    free(a), free(b);

    /* The device stops responding in the middle of iteration 6. */
    char fault[32];
    snprintf(fault, sizeof fault, "%llu",
             (unsigned long long)(before + 5 * per_iter + per_iter / 2));
    setenv("ENCO_FAULT_AFTER_LAUNCHES", fault, 1);
    enco_ctx *ctx = NULL;
    enco_status st = enco_ctx_create(&ctx, NULL);
    unsetenv("ENCO_FAULT_AFTER_LAUNCHES");
    ENCO_CK(st);
    ENCO_CK(enco_trainer_create(ctx, &cfg, 1, 32, 32, &t));
    ENCO_CK(enco_trainer_init_weights(t));
    nan_source ns = {.bad_from = 1000};
    enco_batch_source src = {.self = &ns, .epoch_length = nan_len, .get = nan_get};
    char rundir[512];
    snprintf(rundir, sizeof rundir, "%s", tmp("lost-run"));
    enco_run_options ro = {.dir = rundir};
    st = enco_run_train(t, &src, &ro);
    ck_assert_int_eq(st, CL_OUT_OF_RESOURCES);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "stopped responding"));
    enco_trainer_free(t);
    enco_ctx_free(ctx);
    /* The checkpoint of iteration 4 is intact and loads on a working device. */
    enco_trainer *u = NULL;
    ENCO_CK(enco_trainer_create(test_ctx(), &cfg, 1, 32, 32, &u));
    enco_run_state rs;
    char ck[600];
    snprintf(ck, sizeof ck, "%s/latest.safetensors", rundir);
    ENCO_CK(enco_checkpoint_load(u, &rs, ck));
    ck_assert_int_eq(rs.total_iter, 4);
    enco_trainer_free(u);
}
END_TEST

START_TEST(extra_tensors_are_refused)
{
    /* A checkpoint with three head pairs does not load into a model with two,
     * although every tensor the smaller model needs is in it. */
    enco_config cfg;
    small_config(&cfg);
    enco_trainer *a = make(&cfg);
    enco_run_state rs = {.epoch = 1};
    const char *path = tmp("three-pairs.safetensors");
    ENCO_CK(enco_checkpoint_save(a, &rs, path));
    enco_config two = cfg;
    int layers[4] = {3, 7, 17, 21};
    memcpy(two.model.nce_layers, layers, sizeof layers);
    two.model.n_nce_layers = 4;
    enco_trainer *b = NULL;
    ENCO_CK(enco_trainer_create(test_ctx(), &two, 1, 32, 32, &b));
    enco_run_state r2;
    ck_assert_int_eq(enco_checkpoint_load(b, &r2, path), ENCO_ERR_FORMAT);
    ck_assert_msg(strstr(enco_last_error(), "netF.mlp_2") &&
                      strstr(enco_last_error(), "not part of this model"),
                  "%s", enco_last_error());
    enco_trainer_free(a);
    enco_trainer_free(b);
}
END_TEST

START_TEST(asymmetric_nce_layers_refused)
{
    /* Pairs are (first, last), (second, second last): 13 (4 ngf at H/4) and
     * 17 (2 ngf at H/2) cannot be a key and its query. */
    /* The context keeps what it owns (the GEMM scratch) across tests. */
    const uint64_t before = enco_ctx_get_stats(test_ctx()).device_bytes;
    enco_config cfg;
    small_config(&cfg);
    int layers[4] = {3, 13, 17, 21};
    memcpy(cfg.model.nce_layers, layers, sizeof layers);
    cfg.model.n_nce_layers = 4;
    enco_trainer *t = NULL;
    ck_assert_int_eq(enco_trainer_create(test_ctx(), &cfg, 1, 32, 32, &t), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(enco_last_error(), "key layer 13") &&
                      strstr(enco_last_error(), "must be symmetric"),
                  "%s", enco_last_error());
    /* A layer the generator does not keep (a padding fused into a conv). */
    int fused[6] = {0, 7, 12, 13, 17, 21};
    memcpy(cfg.model.nce_layers, fused, sizeof fused);
    cfg.model.n_nce_layers = 6;
    ck_assert_int_eq(enco_trainer_create(test_ctx(), &cfg, 1, 32, 32, &t), ENCO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(enco_last_error(), "layer 0 is not a feature"));
    ck_assert_uint_eq(enco_ctx_get_stats(test_ctx()).device_bytes, before);
}
END_TEST

/* verify's pick check: a ranked pick may differ only where the two score
 * maps' largest difference d explains it (scores within 2 d on both maps);
 * drawn (covering or random) slots must agree. */
START_TEST(verify_picks_near_ties)
{
    /* Six positions; the maps differ by at most 0.01 (position 4). */
    const float sa[6] = {0.50f, 0.20f, 0.21f, 0.90f, 0.30f, 0.10f};
    const float sb[6] = {0.50f, 0.20f, 0.21f, 0.90f, 0.29f, 0.10f};
    const int32_t ref[4] = {5, 1, 2, 3};
    enco_verify_picks pk = {0};
    enco_verify_picks_compare(&pk, ref, ref, 4, 3, sa, sb, 6, 1.0);
    ck_assert_int_eq(pk.compared, 4);
    ck_assert_int_eq(pk.differ, 0);
    ck_assert(fabs(pk.score_diff - 0.01) < 1e-6);
    /* 1 and 2 traded places: 0.01 apart on both maps <= 2 d. */
    const int32_t swapped[4] = {5, 2, 1, 3};
    enco_verify_picks_compare(&pk, ref, swapped, 4, 3, sa, sb, 6, 1.0);
    ck_assert_int_eq(pk.differ, 2);
    ck_assert_int_eq(pk.unexplained, 0);
    /* 2 against 4: 0.09 apart, far beyond 2 d. */
    const int32_t far[4] = {5, 1, 4, 3};
    enco_verify_picks_compare(&pk, ref, far, 4, 3, sa, sb, 6, 1.0);
    ck_assert_int_eq(pk.differ, 3);
    ck_assert_int_eq(pk.unexplained, 1);
    /* The same swap with identical maps (d = 0) is not explained. */
    enco_verify_picks none = {0};
    enco_verify_picks_compare(&none, ref, swapped, 4, 3, sa, sa, 6, 1.0);
    ck_assert_int_eq(none.unexplained, 2);
    /* A drawn slot (index 3 >= ranked) must agree whatever the scores. */
    const int32_t cover[4] = {5, 1, 2, 0};
    enco_verify_picks drawn = {0};
    enco_verify_picks_compare(&drawn, ref, cover, 4, 3, sa, sb, 6, 1.0);
    ck_assert_int_eq(drawn.unexplained, 1);
    /* Random sampling: nothing ranked, no maps. */
    enco_verify_picks rnd = {0};
    enco_verify_picks_compare(&rnd, ref, swapped, 4, 0, NULL, NULL, 6, 1.0);
    ck_assert_int_eq(rnd.differ, 2);
    ck_assert_int_eq(rnd.unexplained, 2);
}
END_TEST

/* The near-tie allowance is min(2 d, cap): maps far apart (a bug) explain
 * no more than the cap, and a cap below 2 d decides. */
START_TEST(verify_near_tie_cap)
{
    const float sa[6] = {0.50f, 0.20f, 0.21f, 0.90f, 0.30f, 0.10f};
    const float sb[6] = {0.50f, 0.20f, 0.21f, 0.90f, 0.29f, 0.10f};
    const int32_t ref[4] = {5, 1, 2, 3}, swapped[4] = {5, 2, 1, 3};
    /* 1 and 2 are 0.01 apart: explained by 2 d = 0.02 under a cap of 0.015, */
    enco_verify_picks pk = {0};
    enco_verify_picks_compare(&pk, ref, swapped, 4, 3, sa, sb, 6, 0.015);
    ck_assert_int_eq(pk.differ, 2);
    ck_assert_int_eq(pk.unexplained, 0);
    /* not under a cap of 0.005, nor under verify's own cap. */
    enco_verify_picks low = {0};
    enco_verify_picks_compare(&low, ref, swapped, 4, 3, sa, sb, 6, 0.005);
    ck_assert_int_eq(low.unexplained, 2);
    enco_verify_picks own = {0};
    enco_verify_picks_compare(&own, ref, swapped, 4, 3, sa, sb, 6, ENCO_VERIFY_NEAR_TIE_CAP);
    ck_assert_int_eq(own.unexplained, 2);
    /* A map off by 0.5 everywhere (d = 0.5) would explain any swap of these
     * scores by 2 d; the cap still refuses a swap 0.09 apart. */
    float far[6];
    for (int i = 0; i < 6; i++)
        far[i] = sa[i] + 0.5f;
    const int32_t wide[4] = {5, 1, 4, 3};
    enco_verify_picks off = {0};
    enco_verify_picks_compare(&off, ref, wide, 4, 3, sa, far, 6, 1.0);
    ck_assert_int_eq(off.unexplained, 0);
    ck_assert(fabs(off.score_diff - 0.5) < 1e-6);
    enco_verify_picks capped = {0};
    enco_verify_picks_compare(&capped, ref, wide, 4, 3, sa, far, 6, 0.05);
    ck_assert_int_eq(capped.unexplained, 1);
    /* An exact tie on both maps is explained by any cap, even 0. */
    const float tie[6] = {0.50f, 0.20f, 0.20f, 0.90f, 0.30f, 0.10f};
    enco_verify_picks exact = {0};
    enco_verify_picks_compare(&exact, ref, swapped, 4, 3, tie, tie, 6, 0.0);
    ck_assert_int_eq(exact.differ, 2);
    ck_assert_int_eq(exact.unexplained, 0);
}
END_TEST

/* The tolerances start at measured rounding and grow geometrically with
 * the iterations; the weights' never exceed the most Adam lets two runs
 * part, which the biases before an InstanceNorm get (their gradient is
 * noise); loss slots are named in reports. */
START_TEST(verify_tolerances)
{
    const double lr = 2e-4, grow = ENCO_VERIFY_GROWTH, b1 = 0.5, b2 = 0.999;
    /* Adam's bound: one step moves a weight by at most lr, so two runs part
     * by 2 lr; later steps by a little more (v's bias correction fades). */
    ck_assert(fabs(enco_verify_adam_bound(1, lr, b1, b2) - 2 * lr) < 1e-15);
    const double a3 = enco_verify_adam_bound(3, lr, b1, b2);
    ck_assert_msg(a3 > 6 * lr && a3 < 6.5 * lr, "%g", a3 / lr);
    /* r_10 = 1.82: sum_t r_t = 13.91 over ten steps. */
    const double a10 = enco_verify_adam_bound(10, lr, b1, b2);
    ck_assert_msg(fabs(a10 / (2 * lr) - 13.91) < 0.01, "%g", a10 / (2 * lr));
    /* No momentum, v the last square: lr per step exactly; momentum with no
     * memory in v: no bound. */
    ck_assert(fabs(enco_verify_adam_bound(4, lr, 0, 0) - 8 * lr) < 1e-15);
    ck_assert(isinf(enco_verify_adam_bound(2, lr, 0.5, 0)));
    /* One iteration: losses and running statistics at measured rounding,
     * well-conditioned weights at a small fraction of lr (below the 1e-3 lr
     * that a 0.1 % error in Adam's bias correction moves them by), the
     * ill-conditioned at Adam's bound. */
    ck_assert(enco_verify_tolerance(ENCO_VG_LOSSES, 1, 0, 0) == ENCO_VERIFY_LOSS_REL);
    ck_assert(enco_verify_tolerance(ENCO_VG_STATS, 1, 0, 0) == ENCO_VERIFY_STATS_ABS);
    ck_assert(ENCO_VERIFY_LOSS_REL <= 2e-6 && ENCO_VERIFY_STATS_ABS <= 2e-8);
    for (int g = ENCO_VG_G; g <= ENCO_VG_F; g++) {
        const double t1 = enco_verify_tolerance((enco_verify_group)g, 1, lr, 2 * lr);
        ck_assert(fabs(t1 - ENCO_VERIFY_WEIGHT_LR * lr) < 1e-20);
        ck_assert_msg(t1 < 1e-3 * lr, "group %d: %g", g, t1);
        /* The tolerance scales with lr (tiny model: lr_G = 5e-5). */
        ck_assert(fabs(enco_verify_tolerance((enco_verify_group)g, 1, lr / 4, lr / 2) - t1 / 4) <
                  1e-20);
        /* From iteration 2 on, Adam's bound. */
        ck_assert(enco_verify_tolerance((enco_verify_group)g, 3, lr, a3) == a3);
    }
    ck_assert(enco_verify_tolerance(ENCO_VG_ILL, 1, lr, 2 * lr) == 2 * lr);
    ck_assert(enco_verify_tolerance(ENCO_VG_ILL, 3, lr, a3) == a3);
    /* Losses: a jump at iteration 2 (the ill-conditioned steps of iteration
     * 1 part output-affecting weights), then GROWTH per iteration. */
    ck_assert(enco_verify_tolerance(ENCO_VG_LOSSES, 2, 0, 0) == ENCO_VERIFY_LOSS_REL_2);
    ck_assert(fabs(enco_verify_tolerance(ENCO_VG_LOSSES, 4, 0, 0) -
                   ENCO_VERIFY_LOSS_REL_2 * grow * grow) < 1e-12);
    ck_assert(enco_verify_tolerance(ENCO_VG_STATS, 2, 0, 0) == ENCO_VERIFY_STATS_ABS_2);
    ck_assert(fabs(enco_verify_tolerance(ENCO_VG_STATS, 4, 0, 0) - ENCO_VERIFY_STATS_ABS_2 * 100) <
              1e-15);
    ck_assert(enco_verify_near_tie_cap(1) == ENCO_VERIFY_NEAR_TIE_CAP);
    ck_assert(isinf(enco_verify_near_tie_cap(2)) && isinf(enco_verify_near_tie_cap(5)));
    char nm[48];
    enco_config cfg;
    small_config(&cfg);
    enco_trainer *t = make(&cfg);
    ck_assert_str_eq(enco_verify_loss_name(t, ENCO_LOSS_D, nm, sizeof nm), "loss_D");
    ck_assert_str_eq(enco_verify_loss_name(t, ENCO_LOSS_G_GAN, nm, sizeof nm), "loss_G_GAN");
    ck_assert_str_eq(enco_verify_loss_name(t, ENCO_LOSS_ENCO_PAIR0 + 2, nm, sizeof nm),
                     "loss_EnCo.2");
    enco_trainer_free(t);
}
END_TEST

/* The conditioning rule: Adam's first step lr g / (|g| + eps) moves by
 * lr delta |g| eps / (|g| + eps)^2 under a relative gradient difference
 * delta. Where sqrt(v_hat) + eps >= K eps (well conditioned) that is at most
 * lr delta / K, within the weights' tolerance for delta up to 0.2; below
 * it, many times the tolerance and near eps a sizeable fraction of lr: the
 * rule flags those. Checked
 * with the double-precision reference step, and the v_hat tracking. */
START_TEST(verify_ill_conditioned)
{
    const enco_adam_hparams hp = ENCO_ADAM_DEFAULTS(2e-4);
    const double eps = hp.eps, delta = 0.2, K = ENCO_VERIFY_ILL_K;
    const double grads[6] = {1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-3};
    int flagged = 0;
    for (int i = 0; i < 6; i++) {
        double p[2] = {0, 0}, m[2] = {0, 0}, v[2] = {0, 0};
        const double g[2] = {grads[i], grads[i] * (1 + delta)};
        enco_adam_step_ref(p, m, v, g, 2, &hp, 1);
        const double du = fabs(p[0] - p[1]);
        /* v_hat of step 1 is g^2 exactly (float here, as verify keeps it). */
        float vmin[2] = {NAN, NAN};
        const float vf[2] = {(float)v[0], (float)v[1]};
        enco_verify_vhat_min(vmin, vf, 2, 1, hp.beta2);
        ck_assert(fabs(vmin[0] - g[0] * g[0]) <= 1e-6 * g[0] * g[0]);
        const int ill = enco_verify_ill_conditioned(vmin[0], vmin[1], eps);
        ck_assert_int_eq(ill, grads[i] + eps < K * eps * (1 - 1e-6));
        flagged += ill;
        if (!ill)
            ck_assert_msg(du <= hp.lr * delta / K &&
                              du <= enco_verify_tolerance(ENCO_VG_G, 1, hp.lr, 2 * hp.lr),
                          "g %g: %g", grads[i], du);
        else /* beyond the tolerance: 10 to 200 times */
            ck_assert_msg(du > 5 * enco_verify_tolerance(ENCO_VG_G, 1, hp.lr, 2 * hp.lr),
                          "g %g: %g", grads[i], du);
    }
    ck_assert_int_eq(flagged, 4);
    /* Either run's conditioning flags the element; NAN (never stepped) does
     * not. */
    const double good = 1e-3 * 1e-3, bad = 1e-16;
    ck_assert(enco_verify_ill_conditioned(good, bad, eps));
    ck_assert(enco_verify_ill_conditioned(bad, good, eps));
    ck_assert(!enco_verify_ill_conditioned(good, good, eps));
    ck_assert(!enco_verify_ill_conditioned(NAN, NAN, eps));
    ck_assert(enco_verify_ill_conditioned(NAN, bad, eps));
    /* The minimum over steps, each bias-corrected: a large first gradient
     * then decay keeps the first v_hat; a small first step stays the
     * minimum after larger later ones. */
    float vmin[2] = {NAN, NAN};
    const float v1[2] = {(float)(0.001 * 1e-2), (float)(0.001 * 1e-16)};
    enco_verify_vhat_min(vmin, v1, 2, 1, 0.999);
    ck_assert(fabs(vmin[0] - 1e-2) < 1e-8 && fabs(vmin[1] - 1e-16) < 1e-21);
    const float v2[2] = {(float)(0.999 * 0.001 * 1e-2 + 0.001 * 4e-2), (float)1e-3};
    enco_verify_vhat_min(vmin, v2, 2, 2, 0.999);
    ck_assert_msg(fabs(vmin[0] - 1e-2) < 1e-8, "%g", vmin[0]); /* v_hat_2 = 2.5e-2 */
    ck_assert(fabs(vmin[1] - 1e-16) < 1e-21);
}
END_TEST

/* One device twice is bitwise identical (the same device must be); marked
 * as running other kernels it is judged by the tolerances and passes too. */
START_TEST(verify_same_device)
{
    enco_config cfg;
    small_config(&cfg);
    for (int differ = 0; differ < 2; differ++) {
        enco_verify_report rep;
        ENCO_CK(enco_verify(test_ctx(), test_ctx(), &cfg, 1, 24, 24, 2, differ, &rep));
        ck_assert_int_eq(rep.same_device, !differ);
        ck_assert_int_eq(rep.bitwise, 1);
        ck_assert_int_eq(rep.pass, 1);
        ck_assert_int_eq(rep.replays, 0);
        ck_assert_int_eq(rep.picks.differ, 0);
        ck_assert_int_gt(rep.picks.compared, 0);
        for (int g = 0; g < ENCO_VG_COUNT; g++)
            ck_assert_msg(rep.rows[g].max_abs == 0 && rep.rows[g].pass, "%s",
                          rep.rows[g].name);
    }
    enco_verify_report rep;
    ck_assert_int_eq(enco_verify(test_ctx(), test_ctx(), &cfg, 1, 24, 24, 0, 0, &rep),
                     ENCO_ERR_INVALID_ARG);
    ck_assert_int_eq(enco_verify(test_ctx(), test_ctx(), &cfg, 1, 24, 28, 1, 0, &rep),
                     ENCO_ERR_INVALID_ARG);
}
END_TEST

/* A sampling override that replaces the patches still lets the generator
 * draw that iteration's permutations when asked (keep_draws, verify's
 * replays): the next iteration then picks exactly what an unreplaced run
 * picks; without it the generator falls one iteration behind. */
START_TEST(override_keep_draws)
{
    enco_config cfg;
    small_config(&cfg);
    enco_trainer *a = make(&cfg), *b = make(&cfg), *c = make(&cfg);
    float *x0 = images(1, 32, 32, 100), *y0 = images(1, 32, 32, 200);
    float *x1 = images(1, 32, 32, 101), *y1 = images(1, 32, 32, 201);
    ENCO_CK(enco_trainer_step(a, x0, y0, NULL));
    enco_sampling_override keep = {.keep_draws = 1}, skip = {0};
    int32_t *ids[ENCO_MAX_PAIRS] = {NULL}, *ia = NULL, *ib = NULL;
    for (int p = 0; p < a->npairs; p++) {
        ids[p] = malloc((size_t)a->k[p] * sizeof(int32_t));
        ENCO_CK(enco_trainer_patch_ids(a, p, ids[p]));
        keep.patch_ids[p] = skip.patch_ids[p] = ids[p];
    }
    ENCO_CK(enco_trainer_step(b, x0, y0, &keep));
    ENCO_CK(enco_trainer_step(c, x0, y0, &skip));
    ENCO_CK(enco_trainer_step(a, x1, y1, NULL));
    ENCO_CK(enco_trainer_step(b, x1, y1, NULL));
    ENCO_CK(enco_trainer_step(c, x1, y1, NULL));
    int behind = 0;
    for (int p = 0; p < a->npairs; p++) {
        size_t bytes = (size_t)a->k[p] * sizeof(int32_t);
        ia = realloc(ia, bytes), ib = realloc(ib, bytes);
        ENCO_CK(enco_trainer_patch_ids(a, p, ia));
        ENCO_CK(enco_trainer_patch_ids(b, p, ib));
        ck_assert_msg(memcmp(ia, ib, bytes) == 0, "pair %d: iteration 2 picks differ after a "
                      "replayed iteration 1 with keep_draws", p);
        ENCO_CK(enco_trainer_patch_ids(c, p, ib));
        behind |= memcmp(ia, ib, bytes) != 0;
    }
    ck_assert_msg(behind, "without keep_draws the picks of iteration 2 were the same");
    for (int p = 0; p < a->npairs; p++)
        free(ids[p]);
    free(ia), free(ib), free(x0), free(y0), free(x1), free(y1);
    enco_trainer_free(a);
    enco_trainer_free(b);
    enco_trainer_free(c);
}
END_TEST

START_TEST(lr_schedule)
{
    enco_config cfg;
    enco_config_defaults(&cfg);
    cfg.train.n_epochs = 3, cfg.train.n_epochs_decay = 3, cfg.train.epoch_count = 1;
    /* lr = 1 - max(0, e + 1 - 3) / 4 for scheduler steps e = 0.. */
    const double want[] = {1, 1, 1, 0.75, 0.5, 0.25, 0};
    for (int e = 0; e < 7; e++)
        ck_assert_msg(fabs(enco_lr_factor(&cfg, e) - want[e]) < 1e-12, "epoch %d: %g", e,
                      enco_lr_factor(&cfg, e));
    cfg.train.warmup_epochs = 2;
    ck_assert(fabs(enco_lr_factor(&cfg, 0) - 0.5) < 1e-12);
    ck_assert(fabs(enco_lr_factor(&cfg, 1) - 1.0) < 1e-12);
    strcpy(cfg.train.lr_policy, "constant");
    ck_assert(enco_lr_factor(&cfg, 100) == 1.0);
}
END_TEST

/* The schedule where it acts: Adam's update in a real run (enco_run_train),
 * for G, D and F. Before an iteration the host keeps each network's weights
 * and moments; after it, the update must be the Adam step (torch 1.13's
 * formula, in double) of the gradient the trainer used, with the learning rate
 * lr x factor, within float32 rounding. At Adam's first step this is
 * -lr * factor * g / (|g| + eps): the factor itself. */
typedef struct net_before {
    float *w, *m, *v;
    int64_t step;
} net_before;

static float *download_block(cl_mem m, size_t n)
{
    float *x = malloc(n * sizeof(float));
    ENCO_CK(enco_download(test_ctx(), m, 0, n * sizeof(float), x));
    return x;
}

static void keep_state(enco_trainer *t, net_before b[3])
{
    enco_param_set *sets[3] = {&t->G, &t->D, &t->F};
    for (int i = 0; i < 3; i++) {
        b[i].w = download_block(sets[i]->params, sets[i]->n_params);
        b[i].m = download_block(sets[i]->adam_m, sets[i]->n_params);
        b[i].v = download_block(sets[i]->adam_v, sets[i]->n_params);
        b[i].step = sets[i]->adam_step;
    }
}

static void check_scheduled_update(enco_trainer *t, net_before b[3], double factor,
                                   const char *what)
{
    enco_param_set *sets[3] = {&t->G, &t->D, &t->F};
    const double lrs[3] = {t->cfg.train.lr_G, t->cfg.train.lr_D, t->cfg.train.lr_F};
    const double b1 = t->cfg.train.beta1, b2 = t->cfg.train.beta2, eps = t->cfg.train.eps;
    for (int i = 0; i < 3; i++) {
        size_t n = sets[i]->n_params;
        float *w = download_block(sets[i]->params, n), *g = download_block(sets[i]->grads, n);
        int64_t step = b[i].step + 1;
        ck_assert_int_eq(sets[i]->adam_step, step);
        double bc1 = 1 - pow(b1, (double)step), bc2 = 1 - pow(b2, (double)step);
        double lr = lrs[i] * factor, worst = 0, ratio_sum = 0;
        size_t counted = 0;
        for (size_t j = 0; j < n; j++) {
            double m = b1 * b[i].m[j] + (1 - b1) * g[j];
            double v = b2 * b[i].v[j] + (1 - b2) * (double)g[j] * g[j];
            double denom = sqrt(v) / sqrt(bc2) + eps;
            double update = lr / bc1 * m / denom;
            double want = b[i].w[j] - update;
            /* float32 rounding: of m's sum (cancellation), of the quotient,
             * and of the weight the update lands on */
            double tol = lr / bc1 * 1e-6 * (fabs(b1 * b[i].m[j]) + (1 - b1) * fabs(g[j])) / denom +
                         1e-6 * fabs(update) + 1.2e-7 * fmax(fabs(b[i].w[j]), fabs(w[j])) + 1e-12;
            double d = fabs(w[j] - want);
            worst = fmax(worst, d / tol);
            ck_assert_msg(d <= tol,
                          "%s: %s element %zu moved %.9g, Adam step %lld at lr %g x factor %g "
                          "gives %.9g (|diff| %.3g > %.3g)",
                          what, sets[i]->prefix, j, (double)w[j] - b[i].w[j], (long long)step,
                          lrs[i], factor, -update, d, tol);
            if (step == 1 && fabs(g[j]) > 1e-4) {
                ratio_sum += fabs((double)w[j] - b[i].w[j]) / lrs[i];
                counted++;
            }
        }
        printf("%s %s: Adam step %lld, factor %g, worst |diff| %.2f of its rounding bound", what,
               sets[i]->prefix, (long long)step, factor, worst);
        if (counted) /* the first step moves each weight by lr x factor */
            printf(", mean |update| / lr %.6f over %zu weights", ratio_sum / (double)counted,
                   counted);
        printf("\n");
        ck_assert_uint_gt(n, 0);
        free(w), free(g);
        free(b[i].w), free(b[i].m), free(b[i].v);
    }
}

static int64_t one_batch_per_epoch(void *self)
{
    (void)self;
    return 1;
}

/* One more iteration of the run in rundir (fresh or resumed), checked. */
static void scheduled_iteration(const enco_config *base, const char *rundir, int resume,
                                int64_t iteration, double factor, const char *what)
{
    enco_config cfg = *base;
    cfg.run.max_iterations = iteration;
    enco_trainer *t = make(&cfg);
    if (resume) {
        enco_run_state rs;
        char ck[600];
        snprintf(ck, sizeof ck, "%s/latest.safetensors", rundir);
        ENCO_CK(enco_checkpoint_load(t, &rs, ck));
        ck_assert_int_eq(rs.total_iter, iteration - 1);
    }
    net_before b[3];
    keep_state(t, b);
    nan_source ns = {.bad_from = INT64_MAX};
    enco_batch_source src = {.self = &ns, .epoch_length = one_batch_per_epoch, .get = nan_get};
    enco_run_options ro = {.dir = rundir, .resume = resume};
    ENCO_CK(enco_run_train(t, &src, &ro));
    ck_assert_int_eq(t->iteration, iteration);
    ck_assert(fabs(t->lr_scale - factor) < 1e-12);
    check_scheduled_update(t, b, factor, what);
    enco_trainer_free(t);
}

START_TEST(lr_schedule_in_the_run)
{
    enco_config cfg;
    small_config(&cfg);
    cfg.run.print_every = 1;
    cfg.run.save_every = 0;
    cfg.run.sample_every = 0;
    /* One batch per epoch. Warm-up over 3 epochs from epoch 1: 1/3, 2/3, ... */
    cfg.train.epoch_count = 1, cfg.train.n_epochs = 1, cfg.train.n_epochs_decay = 3;
    cfg.train.warmup_epochs = 3;
    char rundir[512];
    snprintf(rundir, sizeof rundir, "%s", tmp("schedule-run"));
    scheduled_iteration(&cfg, rundir, 0, 1, 1.0 / 3, "warm-up, fresh");
    /* The run stopped at the end of epoch 1; resumed, it crosses into epoch 2
     * (scheduler step 1) and Adam takes its second step at 2/3. */
    scheduled_iteration(&cfg, rundir, 1, 2, 2.0 / 3, "warm-up, resumed into epoch 2");
    /* Decay from the first iteration: epoch 3 of n_epochs 2 + 3 decay epochs
     * is the first decay epoch, 1 - 1/4. */
    cfg.train.warmup_epochs = 0;
    cfg.train.epoch_count = 3, cfg.train.n_epochs = 2, cfg.train.n_epochs_decay = 3;
    snprintf(rundir, sizeof rundir, "%s", tmp("decay-run"));
    scheduled_iteration(&cfg, rundir, 0, 1, 0.75, "decay, fresh");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trainer");
    TCase *t = tcase_create("state");
    tcase_set_timeout(t, 900);
    tcase_add_test(t, init_is_seeded);
    tcase_add_test(t, iterations_are_deterministic_and_learn);
    tcase_add_test(t, resume_is_bit_identical);
    tcase_add_test(t, refuses_mismatched_and_damaged);
    tcase_add_test(t, override_keep_draws);
    tcase_add_test(t, lr_schedule);
    tcase_add_test(t, lr_schedule_in_the_run);
    tcase_add_test(t, verify_picks_near_ties);
    tcase_add_test(t, verify_near_tie_cap);
    tcase_add_test(t, verify_tolerances);
    tcase_add_test(t, verify_ill_conditioned);
    tcase_add_test(t, verify_same_device);
    tcase_add_test(t, data_parallel_needs_allgather);
    tcase_add_test(t, nan_loss_stops_and_keeps_checkpoint);
    tcase_add_test(t, too_large_for_device_is_explained);
    tcase_add_test(t, lost_device_keeps_checkpoint);
    tcase_add_test(t, extra_tensors_are_refused);
    tcase_add_test(t, asymmetric_nce_layers_refused);
    suite_add_tcase(s, t);
    int rc = test_run_suite(s);
    if (dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            rc = 1;
    }
    return rc;
}
