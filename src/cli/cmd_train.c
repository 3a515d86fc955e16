/* enco-cl train -c FILE [--set K=V]... [--resume] */
#include "cli/cli.h"

#include "dist/dist.h"

#include "data/loader.h"
#include "data/synth.h"
#include "train/evaluate.h"
#include "train/run.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void help(void)
{
    printf("usage: enco-cl train -c CONFIG [--set group.key=value]... [--resume] [--dir DIR]\n"
           "                     [--device SEL]\n\n"
           "Trains a model of model.family (enco, cut, fastcut, cyclegan, dclgan) on the\n"
           "dataset of data.root (ROOT/trainA, ROOT/trainB) and keeps the run folder\n"
           "(run.dir): latest.safetensors (checkpoint), losses.jsonl, config.cfg (the\n"
           "effective configuration), samples/ (batch grids input | translation |\n"
           "identity, and a fixed test image's real_A, fake_B, real_B, idt_B at every\n"
           "sample; cyclegan and dclgan: real_A, fake_B, rec_A, real_B, fake_A, rec_B) and\n"
           "index.html, the run page: state, device, s/iter, peak memory, loss curves,\n"
           "the samples table and the configuration, rewritten while training. Where\n"
           "ROOT/testB/<name> is the true translation of ROOT/testA/<name> (the\n"
           "synthetic task), the run is scored on those pairs at the end (eval.json) and\n"
           "every run.eval_every iterations (evals.jsonl), and the page plots the scores.\n"
           "Ctrl-C (or SIGTERM) saves a checkpoint and stops; --resume continues exactly.\n"
           "A live run holds the run folder (run.dir/.lock): a second train on it is\n"
           "refused, naming the holder; a killed run's lock is taken over.\n"
           "Under mpirun (a build with Open MPI) N processes train one model on batches\n"
           "of N x data.batch_size, each loading its share; gradients are summed across\n"
           "them in buckets of train.dp_bucket_kb while the backward still runs; the\n"
           "first writes the run folder (README \"Several processes\"). --resume\n"
           "continues a run on the global batch it was trained on, with any N that keeps\n"
           "it (2 x batch 1 -> 1 x batch 2); another global batch is refused. A failing\n"
           "process ends the job; the last checkpoint stays intact. Ctrl-C or SIGTERM to\n"
           "mpirun stops every process at one iteration and saves once, if Open MPI's\n"
           "odls_base_sigkill_timeout leaves the time (README); mpirun then exits 1.\n\n"
           "  -c, --config FILE   configuration file (libconfig); 'enco-cl config --list'\n"
           "                      shows every option with its default\n"
           "      --set K=V       override one option, e.g. --set train.lr_D=1e-4\n"
           "      --resume        continue the run in the run folder from its checkpoint\n"
           "      --dir DIR       run folder (overrides run.dir)\n"
           "  -d, --device SEL    OpenCL device (index or part of a name); under mpirun a\n"
           "                      list, one per process of this host in local rank order\n"
           "                      (--device 0,1; repeat one to share it). Default: the\n"
           "                      first GPU, else device 0; under mpirun local rank r\n"
           "                      takes the host's r-th GPU, or the CPU device where the\n"
           "                      host has none (fewer GPUs than processes: refused)\n"
           "  -h, --help          this text\n");
}

/* Batches from the background loader, restarted whenever the loop asks for
 * a batch out of sequence (a new epoch, or a resumed run). */
typedef struct loader_source {
    enco_loader *loader;
    int flip_equivariance;
    uint64_t seed;
    size_t batches;
    int64_t next_epoch, next_iter;
    int started;
    int n, c, h, w;
} loader_source;

#define FLIP_STREAM (1ULL << 61)

static void flip_rows(float *x, size_t rows, int w)
{
    for (size_t r = 0; r < rows; r++)
        for (int i = 0, j = w - 1; i < j; i++, j--) {
            float t = x[r * (size_t)w + i];
            x[r * (size_t)w + i] = x[r * (size_t)w + j];
            x[r * (size_t)w + j] = t;
        }
}

static int64_t src_length(void *self) { return (int64_t)((loader_source *)self)->batches; }

static enco_status src_get(void *self, int64_t epoch, int64_t iter, float *a, float *b)
{
    loader_source *s = self;
    if (!s->started || epoch != s->next_epoch || iter != s->next_iter) {
        ENCO_TRY(enco_loader_start(s->loader, (int)epoch, (size_t)iter));
        s->started = 1;
    }
    const enco_batch *bt = NULL;
    ENCO_TRY(enco_loader_next(s->loader, &bt));
    if (!bt)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "the loader ran out of batches in epoch %lld",
                         (long long)epoch);
    if (bt->n != s->n || bt->c != s->c || bt->h != s->h || bt->w != s->w)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                         "batch %lld of epoch %lld is %dx%dx%d, the run trains on %dx%dx%d: "
                         "with data.preprocess = \"none\" every image must have one size",
                         (long long)iter, (long long)epoch, bt->c, bt->h, bt->w, s->c, s->h, s->w);
    size_t bytes = (size_t)bt->n * bt->c * bt->h * bt->w * sizeof(float);
    memcpy(a, bt->a, bytes);
    memcpy(b, bt->b, bytes);
    if (s->flip_equivariance) {
        /* Spec section 6: flip real_A with p = 0.5 and, independently, real_B;
         * drawn from the counter-based generator keyed by (epoch, iteration). */
        enco_rng rng = enco_rng_make(s->seed, FLIP_STREAM | ((uint64_t)epoch << 32) |
                                                  (uint64_t)iter);
        int fa = enco_rng_bounded(&rng, 2), fb = enco_rng_bounded(&rng, 2);
        if (fa)
            flip_rows(a, (size_t)bt->n * bt->c * bt->h, bt->w);
        if (fb)
            flip_rows(b, (size_t)bt->n * bt->c * bt->h, bt->w);
    }
    s->next_epoch = epoch;
    s->next_iter = iter + 1;
    return ENCO_OK;
}

static void fmt_time(char *buf, size_t size, double s)
{
    long t = (long)(s + 0.5);
    snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
}

static void on_progress(const enco_progress *p, void *user)
{
    (void)user;
    if (p->event) {
        if (strcmp(p->event, "checkpoint") == 0)
            fprintf(stderr, "  checkpoint saved: %s\n", p->path);
        else if (strcmp(p->event, "sample") == 0)
            fprintf(stderr, "  samples: %s\n", p->path);
        else if (strcmp(p->event, "eval") == 0)
            fprintf(stderr, "  scores on the test pairs at iteration %lld: %s\n",
                    (long long)p->total_iter, p->path);
        else if (strcmp(p->event, "resume") == 0)
            fprintf(stderr, "resumed from %s at epoch %lld, iteration %lld\n", p->path,
                    (long long)p->epoch, (long long)p->total_iter);
        else if (strcmp(p->event, "stop") == 0)
            fprintf(stderr, "stopped on request after iteration %lld\n", (long long)p->total_iter);
        else if (strcmp(p->event, "takeover") == 0)
            fprintf(stderr, "took over the lock %s of an earlier run that ended without "
                            "releasing it (%s)\n", p->path, p->detail);
        return;
    }
    char eta[32];
    fmt_time(eta, sizeof eta, p->eta_s);
    printf("epoch %lld [%lld/%lld] iter %lld/%lld %.2f it/s ETA %s lr x%.3g |",
           (long long)p->epoch, (long long)p->epoch_iter, (long long)p->epoch_length,
           (long long)p->total_iter, (long long)p->total_planned, p->it_per_s, eta, p->lr_factor);
    for (int i = 0; i < p->nlosses; i++)
        printf(" %s %.4f", p->loss_names[i], (double)p->losses[i]);
    printf("\n");
    fflush(stdout);
}

static enco_status data_opts_of(const enco_config *cfg, enco_data_opts *o)
{
    enco_data_opts_default(o);
    ENCO_TRY(enco_preprocess_parse(cfg->data.preprocess, &o->preprocess));
    o->load_size = cfg->data.load_size;
    o->crop_size = cfg->data.crop_size;
    o->no_flip = cfg->data.no_flip;
    o->serial_batches = cfg->data.serial_batches;
    o->channels = cfg->model.input_nc;
    o->n_epochs = cfg->train.n_epochs;
    return enco_data_opts_validate(o);
}

int cmd_train_with(const enco_config *cfg_in, int resume, const char *device);

int cmd_train(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"set", required_argument, NULL, 'S'},
                                         {"resume", no_argument, NULL, 'r'},
                                         {"dir", required_argument, NULL, 'D'},
                                         {"device", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *device = NULL, *dir = NULL;
    const char *sets[64];
    int nsets = 0, resume = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'S':
            if (nsets == 64)
                return cli_usage_error("train", "too many --set options");
            sets[nsets++] = optarg;
            break;
        case 'r': resume = 1; break;
        case 'D': dir = optarg; break;
        case 'd': device = optarg; break;
        case 'h': help(); return 0;
        default:
            return cli_usage_error("train", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (!config)
        return cli_usage_error("train", "a configuration is required: -c FILE (see configs/)");
    enco_config cfg;
    enco_config_defaults(&cfg);
    enco_status st = enco_config_load(&cfg, config);
    for (int i = 0; st == ENCO_OK && i < nsets; i++)
        st = enco_config_set(&cfg, sets[i]);
    if (st == ENCO_OK && dir) {
        if (strlen(dir) >= sizeof cfg.run.dir)
            return cli_usage_error("train", "--dir is too long");
        snprintf(cfg.run.dir, sizeof cfg.run.dir, "%s", dir);
    }
    if (st == ENCO_OK)
        st = enco_config_validate(&cfg);
    if (st != ENCO_OK)
        return cli_fail("train", st);
    return cmd_train_with(&cfg, resume, device);
}

/* Data-parallel training: the sum of the trainer's gradient seam and the
 * run's stop agreement, over this job's processes. */
static enco_status dist_sum(void *user, float *buf, size_t n)
{
    return enco_dist_sum_floats(user, buf, n);
}

static enco_status dist_allgather(void *user, const void *mine, void *all, size_t bytes)
{
    return enco_dist_allgather(user, mine, all, bytes);
}

static enco_status dist_sum_doubles(void *user, double *buf, size_t n)
{
    return enco_dist_sum_doubles(user, buf, n);
}

static enco_status dist_agree_stop(void *user, int mine, int *any)
{
    return enco_dist_any(user, mine, any);
}

static int train_one(const enco_config *cfg_in, int resume, const char *device, enco_dist *dist);

/* This process's device from --device (else ENCO_DEVICE): a list of one
 * entry per process of this host, in local rank order; an entry is an index
 * of 'enco-cl devices' or part of a name. ENCO_DEVICE with one entry is
 * every process's device. Without either, a single process takes today's
 * default (the first GPU, else device 0); several processes of a host take
 * its GPUs in turn (local rank r the r-th), or the CPU device where the
 * host has no GPU. Writes the resolved index to out ("" for the single
 * process's default). Returns 0, or 2 after printing why this process's
 * selection is refused. */
static int pick_device(const char *device, enco_dist *dist, char *out, size_t size)
{
    const int nproc = enco_dist_size(dist), local = enco_dist_local_size(dist);
    int lr = enco_dist_local_rank(dist);
    const char *spec = device, *source = "--device";
    if (!spec || !*spec) {
        spec = getenv("ENCO_DEVICE");
        source = "ENCO_DEVICE";
    }
    out[0] = '\0';
    unsigned index = 0;
    enco_status st;
    if (!spec || !*spec) {
        if (local == 1)
            return 0;
        enco_device_info *list = NULL;
        size_t n = 0;
        st = enco_devices_list(&list, &n);
        if (st != ENCO_OK)
            return cli_fail("train", st);
        size_t gpus = 0, cpu = 0;
        int have_cpu = 0;
        for (size_t i = 0; i < n; i++) {
            if (list[i].is_gpu && gpus++ == (size_t)lr)
                index = list[i].index;
            if (!have_cpu && strcmp(list[i].type, "CPU") == 0)
                cpu = i, have_cpu = 1;
        }
        if (gpus == 0)
            index = n ? list[have_cpu ? cpu : 0].index : 0;
        enco_devices_free(list);
        if (gpus > 0 && gpus < (size_t)local) {
            fprintf(stderr,
                    "enco-cl train: %d processes on this host and %zu GPU%s: each process takes "
                    "its own GPU by default; name one device per process with --device "
                    "(local rank order; repeat an index to share a device: --device 0,0)\n",
                    local, gpus, gpus == 1 ? "" : "s");
            return 2;
        }
        snprintf(out, size, "%u", index);
        return 0;
    }
    int entries = 1;
    for (const char *p = spec; *p; p++)
        entries += *p == ',';
    if (entries == 1 && strcmp(source, "ENCO_DEVICE") == 0)
        lr = 0; /* the environment's one device is every process's */
    else if (entries > 1 && nproc == 1) {
        fprintf(stderr,
                "enco-cl train: %s lists %d devices, one per process, but this is a single "
                "process: start %d with mpirun -np %d (a build with Open MPI), or name one "
                "device\n",
                source, entries, entries, entries);
        return 2;
    } else if (entries != local) {
        fprintf(stderr,
                "enco-cl train: %s lists %d device%s for the %d processes on this host: give "
                "one per process, in local rank order (repeat one to share it, e.g. "
                "--device 0,0)\n",
                source, entries, entries == 1 ? "" : "s", local);
        return 2;
    }
    const char *p = spec;
    for (int i = 0; i < lr; i++)
        p = strchr(p, ',') + 1;
    size_t len = strcspn(p, ",");
    char entry[256];
    if (len == 0 || len >= sizeof entry) {
        fprintf(stderr, "enco-cl train: %s \"%s\": entry %d is %s\n", source, spec, lr + 1,
                len ? "too long" : "empty");
        return 2;
    }
    memcpy(entry, p, len);
    entry[len] = '\0';
    st = enco_device_select(entry, &index);
    if (st != ENCO_OK && nproc == 1)
        return cli_fail("train", st);
    if (st != ENCO_OK) {
        fprintf(stderr, "enco-cl train: process %d (local rank %d): %s\n", enco_dist_rank(dist),
                lr, enco_last_error());
        return 2;
    }
    snprintf(out, size, "%u", index);
    return 0;
}

int cmd_train_with(const enco_config *cfg_in, int resume, const char *device)
{
    enco_dist *dist = NULL;
    enco_status st = enco_dist_init(NULL, NULL, &dist);
    if (st != ENCO_OK)
        return cli_fail("train", st);
    char picked[32];
    int rc = pick_device(device, dist, picked, sizeof picked);
    if (enco_dist_size(dist) > 1) { /* every process stops if any refuses its device */
        int any = 0;
        st = enco_dist_any(dist, rc != 0, &any);
        if (st != ENCO_OK)
            rc = cli_fail("train", st);
        else if (any && rc == 0) {
            fprintf(stderr, "enco-cl train: process %d stops: another process refused its "
                            "device (see its message)\n", enco_dist_rank(dist));
            rc = 2;
        }
        if (any) { /* all stop together: nothing waits on a collective */
            enco_dist_free(dist);
            return rc;
        }
    }
    if (rc != 0) {
        enco_dist_free(dist);
        return rc;
    }
    rc = train_one(cfg_in, resume, picked[0] ? picked : device, dist);
    if (rc != 0 && rc != 130 && enco_dist_size(dist) > 1) {
        /* the other processes wait in a collective for this one: end the job */
        fprintf(stderr, "enco-cl train: process %d of %d failed; ending the job\n",
                enco_dist_rank(dist), enco_dist_size(dist));
        enco_dist_abort(dist, rc);
    }
    enco_dist_free(dist);
    return rc;
}

static int train_one(const enco_config *cfg_in, int resume, const char *device, enco_dist *dist)
{
    const int rank = enco_dist_rank(dist), nproc = enco_dist_size(dist);
    enco_config cfg = *cfg_in;
    if (!cfg.data.root[0]) {
        fprintf(stderr, "enco-cl train: data.root is empty: set it to a folder with trainA/ and "
                        "trainB/ (or set data.synthetic = true for enco-cl's synthetic task)\n");
        return 1;
    }
    enco_status st = ENCO_OK;
    if (cfg.data.synthetic && rank == 0) { /* the first process makes it, the others wait */
        char probe[ENCO_CFG_STR + 16];
        snprintf(probe, sizeof probe, "%s/trainA", cfg.data.root);
        struct stat sb;
        if (stat(probe, &sb) != 0) {
            enco_synth_opts so = {.size = cfg.data.load_size, .n_train = cfg.data.synth_train,
                                  .n_test = cfg.data.synth_test,
                                  .seed = (uint64_t)cfg.train.seed};
            printf("enco-cl train: making the synthetic task in %s (%d training images per "
                   "domain, %d test pairs, %dx%d)\n",
                   cfg.data.root, so.n_train, so.n_test, so.size, so.size);
            fflush(stdout);
            char parents[ENCO_CFG_STR];
            snprintf(parents, sizeof parents, "%s", cfg.data.root);
            for (char *p = parents + 1; *p; p++)
                if (*p == '/') {
                    *p = '\0';
                    mkdir(parents, 0755); /* errors surface in enco_synth_write */
                    *p = '/';
                }
            st = enco_synth_write(cfg.data.root, &so);
            if (st != ENCO_OK)
                return cli_fail("train", st);
        }
    }
    if (nproc > 1) { /* the data exists (or the first process failed and ends the job) */
        int ok = 1;
        st = enco_dist_bcast(dist, &ok, sizeof ok, 0);
        if (st != ENCO_OK)
            return cli_fail("train", st);
    }
    enco_data_opts dopts;
    st = data_opts_of(&cfg, &dopts);
    if (st != ENCO_OK)
        return cli_fail("train", st);
    enco_dataset ds;
    memset(&ds, 0, sizeof ds);
    st = enco_dataset_open(&ds, cfg.data.root, "train");
    if (st != ENCO_OK)
        return cli_fail("train", st);
    char warn[2048];
    if (enco_dataset_warnings(&ds, warn, sizeof warn))
        fprintf(stderr, "%s", warn);
    /* with several processes, each loads its share of every batch */
    enco_loader_opts lo = {.data = dopts, .seed = (uint64_t)cfg.train.seed,
                           .batch_size = cfg.train.batch_size, .threads = cfg.data.threads,
                           .shards = nproc, .shard = rank};
    enco_loader *loader = NULL;
    st = enco_loader_create(&loader, &ds, &lo);
    if (st != ENCO_OK) {
        enco_dataset_close(&ds);
        return cli_fail("train", st);
    }
    loader_source src = {.loader = loader, .batches = enco_loader_batches(loader),
                         .n = cfg.train.batch_size, .c = cfg.model.input_nc,
                         .flip_equivariance = cfg.data.flip_equivariance,
                         .seed = (uint64_t)cfg.train.seed};
    /* The trainer is planned for the size of the first batch. */
    const enco_batch *first = NULL;
    st = enco_loader_start(loader, cfg.train.epoch_count, 0);
    if (st == ENCO_OK)
        st = enco_loader_next(loader, &first);
    if (st == ENCO_OK && !first)
        st = ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s has fewer images than one batch of %d",
                       cfg.data.root, cfg.train.batch_size);
    enco_ctx *ctx = NULL;
    enco_trainer *t = NULL;
    if (st == ENCO_OK) {
        src.h = first->h, src.w = first->w;
        enco_ctx_options o = CLI_CTX_OPTIONS(device);
        st = enco_ctx_create(&ctx, &o);
    }
    char *names = NULL; /* each process's device, for the first to report */
    if (st == ENCO_OK && nproc > 1) {
        char mine[128];
        snprintf(mine, sizeof mine, "device %u (%.100s)", enco_ctx_device(ctx)->index,
                 enco_ctx_device(ctx)->name);
        names = calloc((size_t)nproc, sizeof mine);
        st = names ? enco_dist_allgather(dist, mine, names, sizeof mine)
                   : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    }
    if (st == ENCO_OK && rank == 0) {
        if (nproc > 1) {
            printf("enco-cl train: %zu A and %zu B images in %s, %zu iterations per epoch, "
                   "%dx%d, batch %d x %d processes, on",
                   ds.a.count, ds.b.count, cfg.data.root, src.batches, src.w, src.h, src.n,
                   nproc);
            for (int r = 0; r < nproc; r++)
                printf("%s process %d: %s", r ? ";" : "", r, names + (size_t)r * 128);
            printf("\n");
        } else
            printf("enco-cl train: %zu A and %zu B images in %s, %zu iterations per epoch, "
                   "%dx%d, batch %d, on %s\n",
                   ds.a.count, ds.b.count, cfg.data.root, src.batches, src.w, src.h, src.n,
                   enco_ctx_device(ctx)->name);
        fflush(stdout);
    }
    free(names);
    if (st == ENCO_OK)
        st = enco_trainer_create(ctx, &cfg, src.n, src.h, src.w, &t);
    if (st == ENCO_OK && nproc > 1) {
        enco_grad_reducer red = {.size = nproc,
                                 .rank = rank,
                                 .user = dist,
                                 .sum = dist_sum,
                                 .sum_doubles = dist_sum_doubles,
                                 .allgather = dist_allgather};
        st = enco_trainer_set_reducer(t, &red);
    }
    if (st == ENCO_OK && !resume)
        st = enco_trainer_init_weights(t);
    int rc = 0;
    if (st == ENCO_OK) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        enco_batch_source bs = {.self = &src, .epoch_length = src_length, .get = src_get};
        enco_eval_result scores;
        enco_run_options ro = {.dir = cfg.run.dir, .resume = resume, .stop = &stop_requested,
                               .on_progress = on_progress, .final_eval = &scores,
                               .follower = rank != 0};
        if (nproc > 1) {
            ro.user = dist;
            ro.agree_stop = dist_agree_stop;
        }
        st = enco_run_train(t, &bs, &ro);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (st == ENCO_OK && rank == 0 && nproc > 1) {
            long buckets, hidden;
            double bytes, seconds;
            enco_trainer_dp_stats(t, &buckets, &hidden);
            enco_dist_stats(dist, &bytes, &seconds);
            printf("enco-cl train: %d processes: %.3g MB received, %.3g s in communication; "
                   "%ld gradient buckets summed, %ld of them while the backward still ran\n",
                   nproc, bytes / 1e6, seconds, buckets, hidden);
        }
        if (st == ENCO_OK && rank == 0)
            printf("enco-cl train: done; run folder %s (open %s/index.html)\n", cfg.run.dir,
                   cfg.run.dir);
        if (st == ENCO_OK && scores.images > 0 && rank == 0) {
            cli_print_eval(&scores);
            printf("enco-cl train: scores written to %s/eval.json\n", cfg.run.dir);
        } else if (st == ENCO_ERR_INTERRUPTED)
            rc = (fprintf(stderr, "enco-cl train: %s\n", enco_last_error()), 130);
    }
    if (st != ENCO_OK && st != ENCO_ERR_INTERRUPTED) {
        rc = cli_fail("train", st);
        if (t && st > -1000 && st < 0) /* an OpenCL error while training */
            fprintf(stderr,
                    "enco-cl train: the device failed during training; the last checkpoint in "
                    "%s is intact: continue with --resume (on this or another device)\n",
                    cfg.run.dir);
    }
    enco_trainer_free(t);
    enco_ctx_free(ctx);
    enco_loader_free(loader);
    enco_dataset_close(&ds);
    return rc;
}
