/* enco-cl verify --devices A,B --steps N */
#include "cli/cli.h"

#include "dist/dist.h"
#include "train/verify.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: enco-cl verify --devices A,B [--steps N] [--size S] [--batch N]\n"
           "                      [-c CONFIG] [--set group.key=value]... [--json FILE]\n"
           "                      [--kernel-dir-b DIR]\n\n"
           "Trains the same seed for N iterations on two devices (or on one device twice:\n"
           "--devices 0,0) from identical host-side draws (weights, batches, permutations),\n"
           "then compares every loss of every iteration, G, D and F weights and the heads'\n"
           "running statistics group by group against the tolerances of REPRODUCIBILITY.md.\n"
           "Weights whose Adam step was ill-conditioned on either run (sqrt(v_hat) + eps\n"
           "below %g eps at some iteration, read from both runs' Adam state), and the conv\n"
           "biases that an InstanceNorm follows (gradient: rounding noise), are judged at\n"
           "Adam's bound only (row \"ill-conditioned\"); after one iteration every other\n"
           "weight at %g x its net's lr, the losses at %g relative. From iteration 2 on\n"
           "the ill-conditioned steps' differences drive everything: the weights are\n"
           "judged at Adam's bound, the losses of iteration s >= 2 at %g x %g^(s-2).\n"
           "So a run of N >= 2 iterations also keeps the weights and running statistics\n"
           "after iteration 1 and judges them as --steps 1 would (rows \"... after\n"
           "iteration 1\"); the losses of iteration 1 are judged tightly in every run.\n"
           "It also compares the sampled patch positions: a DAG pick may differ only at a\n"
           "near-tie, two positions whose scores lie within min(2 d, cap) of each other\n"
           "on both score maps, d being the maps' largest difference and the cap %g\n"
           "at iteration 1, none later (the maps part with the weights). Where a pick differs, B is\n"
           "trained again replaying A's picks up to that iteration, so that losses and\n"
           "weights are always compared between runs on the same patches (and B's later\n"
           "picks between runs whose weights still agree). The same device twice must\n"
           "agree bit for bit. Exit status 1 when a check fails.\n\n"
           "  --devices A,B   two device selections (index or part of a name); under\n"
           "                  mpirun one\n"
           "  --steps N       iterations (default 3)\n"
           "  --size S        image side, a multiple of 4 (default 32)\n"
           "  --batch N       batch size (default 1)\n"
           "  -c, --config F  model and training options (default: a tiny model: ngf = ndf\n"
           "                  = 4, 2 blocks, 16 patches; the synthetic task's images;\n"
           "                  --set model.family=\"cut\" or \"fastcut\" for those families,\n"
           "                  their nce layers 0, 4, 8, 12, 13; \"cyclegan\" with a pool of\n"
           "                  2 images, so that its draws act from iteration 3; \"dclgan\"\n"
           "                  with nce layers 4, 8, 12, 13)\n"
           "  --set K=V       override one option\n"
           "  --json FILE     also write the report as JSON\n"
           "  --kernel-dir-b DIR  device B reads its kernel sources from DIR (device A\n"
           "                  keeps ENCO_CL_DIR or the built-in copies): to check a kernel\n"
           "                  change against the current kernels; the same device is then\n"
           "                  judged by the tolerances, not bit for bit\n"
           "  -h, --help      this text\n\n"
           "Under mpirun (a build with Open MPI), N processes train as enco-cl train does\n"
           "(run B: each --batch images of a global batch of N x --batch, the gradients\n"
           "summed across the processes after every phase) and the first process also\n"
           "trains the same seed alone on batches of N x --batch (run A): the same images,\n"
           "draws and patches. --devices then takes one selection, every process's device\n"
           "(default: ENCO_DEVICE or the first GPU), and --kernel-dir-b applies to run B.\n"
           "The runs differ only in the float rounding of where each batch's gradient is\n"
           "summed (over the images of one process, or over the processes' means), which\n"
           "the ill-conditioned Adam steps amplify from iteration 2 on as between devices:\n"
           "they are judged at the tolerances above (REPRODUCIBILITY.md, \"Several\n"
           "processes\"), never bit for bit. A family or option that train refuses under\n"
           "several processes is refused with train's message. The first process reports;\n"
           "every process exits with its verdict.\n",
           ENCO_VERIFY_ILL_K, ENCO_VERIFY_WEIGHT_LR, ENCO_VERIFY_LOSS_REL, ENCO_VERIFY_LOSS_REL_2,
           ENCO_VERIFY_GROWTH, ENCO_VERIFY_NEAR_TIE_CAP);
}

static void tiny(enco_config *cfg)
{
    cfg->model.ngf = 4;
    cfg->model.ndf = 4;
    cfg->model.n_blocks = 2;
    int layers[6] = {3, 7, 12, 13, 17, 21};
    memcpy(cfg->model.nce_layers, layers, sizeof layers);
    cfg->model.n_nce_layers = 6;
    cfg->model.netF_nc = 16;
    cfg->train.num_patches = 16;
    cfg->train.seed = 1;
    /* CUT / FastCUT (--set model.family=...): their default layers on 2 blocks */
    enco_cut_config *cuts[2] = {&cfg->cut, &cfg->fastcut};
    int cut_layers[5] = {0, 4, 8, 12, 13};
    for (int i = 0; i < 2; i++) {
        memcpy(cuts[i]->nce_layers, cut_layers, sizeof cut_layers);
        cuts[i]->n_nce_layers = 5;
        cuts[i]->netF_nc = 16;
        cuts[i]->num_patches = 16;
    }
    cfg->cyclegan.pool_size = 2;
    int dcl_layers[4] = {4, 8, 12, 13};
    memcpy(cfg->dclgan.nce_layers, dcl_layers, sizeof dcl_layers);
    cfg->dclgan.n_nce_layers = 4;
    cfg->dclgan.netF_nc = 16;
    cfg->dclgan.num_patches = 16;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!end || *end || v < lo || v > hi)
        return 0;
    *out = (int)v;
    return 1;
}

static int verify_processes(const enco_config *cfg, const char *devices, const char *kdir_b,
                            int steps, int size, int batch, const char *json, enco_dist *dist,
                            int *failed);
static int verify_devices(const enco_config *cfg, const char *devices, const char *kdir_b,
                          int steps, int size, int batch, const char *json);
static void print_report(const enco_config *cfg, const enco_verify_report *rep);
static int write_json(const char *json, const enco_config *cfg, const enco_verify_report *rep);

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {{"devices", required_argument, NULL, 'D'},
                                         {"steps", required_argument, NULL, 'n'},
                                         {"size", required_argument, NULL, 's'},
                                         {"batch", required_argument, NULL, 'b'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"set", required_argument, NULL, 'S'},
                                         {"json", required_argument, NULL, 'j'},
                                         {"kernel-dir-b", required_argument, NULL, 'K'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *devices = NULL, *config = NULL, *json = NULL, *kdir_b = NULL;
    const char *sets[64];
    int nsets = 0, steps = 3, size = 32, batch = 1, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'D': devices = optarg; break;
        case 'n':
            if (!parse_int(optarg, 1, 100000, &steps))
                return cli_usage_error("verify", "--steps needs an integer >= 1");
            break;
        case 's':
            if (!parse_int(optarg, 8, 4096, &size) || size % 4)
                return cli_usage_error("verify", "--size needs a multiple of 4, at least 8");
            break;
        case 'b':
            if (!parse_int(optarg, 1, 256, &batch))
                return cli_usage_error("verify", "--batch needs an integer >= 1");
            break;
        case 'c': config = optarg; break;
        case 'S':
            if (nsets == 64)
                return cli_usage_error("verify", "too many --set options");
            sets[nsets++] = optarg;
            break;
        case 'j': json = optarg; break;
        case 'K':
            if (!*optarg)
                return cli_usage_error("verify", "--kernel-dir-b needs a folder");
            kdir_b = optarg;
            break;
        case 'h': help(); return 0;
        default:
            return cli_usage_error("verify", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("verify", "unexpected argument '%s'", argv[optind]);
    enco_config cfg;
    enco_config_defaults(&cfg);
    if (!config)
        tiny(&cfg);
    enco_status st = config ? enco_config_load(&cfg, config) : ENCO_OK;
    for (int i = 0; st == ENCO_OK && i < nsets; i++)
        st = enco_config_set(&cfg, sets[i]);
    if (st == ENCO_OK)
        st = enco_config_validate(&cfg);
    if (st != ENCO_OK)
        return cli_fail("verify", st);
    enco_dist *dist = NULL;
    st = enco_dist_init(NULL, NULL, &dist);
    if (st != ENCO_OK)
        return cli_fail("verify", st);
    int rc;
    if (enco_dist_size(dist) > 1) {
        int failed = 0;
        rc = verify_processes(&cfg, devices, kdir_b, steps, size, batch, json, dist, &failed);
        if (failed) {
            /* the other processes may wait in a collective for this one */
            fprintf(stderr, "enco-cl verify: process %d of %d failed; ending the job\n",
                    enco_dist_rank(dist), enco_dist_size(dist));
            enco_dist_abort(dist, rc);
        }
    } else {
        rc = verify_devices(&cfg, devices, kdir_b, steps, size, batch, json);
    }
    enco_dist_free(dist);
    return rc;
}

/* The dist collectives verify's processes use. */
static enco_status procs_sum(void *user, float *buf, size_t n)
{
    return enco_dist_sum_floats(user, buf, n);
}

static enco_status procs_sum_doubles(void *user, double *buf, size_t n)
{
    return enco_dist_sum_doubles(user, buf, n);
}

static enco_status procs_allgather(void *user, const void *mine, void *all, size_t count)
{
    return enco_dist_allgather(user, mine, all, count);
}

static enco_status procs_bcast(void *user, void *buf, size_t count)
{
    return enco_dist_bcast(user, buf, count, 0);
}

/* Under mpirun: the processes against one (enco_verify_dp). *failed: a
 * failure that may leave other processes waiting in a collective. */
static int verify_processes(const enco_config *cfgp, const char *devices, const char *kdir_b,
                            int steps, int size, int batch, const char *json, enco_dist *dist,
                            int *failed)
{
    const enco_config cfg = *cfgp;
    const int nproc = enco_dist_size(dist), rank = enco_dist_rank(dist);
    if (devices && strchr(devices, ','))
        return cli_usage_error("verify", "under mpirun verify compares the %d processes with "
                                         "one process on one device: --devices takes one "
                                         "selection (not %s)",
                               nproc, devices);
    enco_ctx *a = NULL, *b = NULL;
    enco_ctx_options oa = CLI_CTX_OPTIONS(devices),
                     ob = {.device = devices, .kernel_dir = kdir_b,
                           .on_kernel_profile = cli_print_kernel_profile};
    enco_status st = rank == 0 ? enco_ctx_create(&a, &oa) : ENCO_OK;
    if (st == ENCO_OK)
        st = enco_ctx_create(&b, &ob);
    enco_verify_report rep;
    if (st == ENCO_OK) {
        if (rank == 0)
            fprintf(stderr, "enco-cl verify: %d iterations at %dx%d, %d processes x batch %d "
                            "against one process x batch %d, on %s\n",
                    steps, size, size, nproc, batch, nproc * batch, enco_ctx_device(b)->name);
        enco_verify_procs pr = {.size = nproc,
                                .rank = rank,
                                .user = dist,
                                .sum = procs_sum,
                                .sum_doubles = procs_sum_doubles,
                                .allgather = procs_allgather,
                                .bcast = procs_bcast};
        cli_progress pg;
        cli_progress_init(&pg, "it", rank != 0);
        st = enco_verify_dp(a, b, &cfg, batch, size, size, steps, &pr,
                            rank == 0 ? cli_progress_fn : NULL, &pg, &rep);
        cli_progress_end(&pg);
    }
    enco_ctx_free(a);
    enco_ctx_free(b);
    if (st != ENCO_OK) {
        *failed = 1;
        return cli_fail("verify", st);
    }
    if (rank == 0) {
        print_report(&cfg, &rep);
        if (json && write_json(json, &cfg, &rep) != 0)
            return 1;
    }
    return rep.pass ? 0 : 1;
}

static int verify_devices(const enco_config *cfgp, const char *devices, const char *kdir_b,
                          int steps, int size, int batch, const char *json)
{
    const enco_config cfg = *cfgp;
    const char *comma = devices ? strchr(devices, ',') : NULL;
    if (!comma || comma == devices || !comma[1])
        return cli_usage_error("verify", "--devices A,B is required (e.g. --devices 0,1)");
    char dev_a[128];
    snprintf(dev_a, sizeof dev_a, "%.*s", (int)(comma - devices), devices);
    enco_status st = ENCO_OK;
    enco_ctx *a = NULL, *b = NULL;
    enco_ctx_options oa = CLI_CTX_OPTIONS(dev_a), ob = {.device = comma + 1, .kernel_dir = kdir_b,
                                                       .on_kernel_profile = cli_print_kernel_profile};
    st = enco_ctx_create(&a, &oa);
    if (st == ENCO_OK)
        st = enco_ctx_create(&b, &ob);
    enco_verify_report rep;
    if (st == ENCO_OK) {
        fprintf(stderr, "enco-cl verify: %d iterations at %dx%d, batch %d, on %s and %s\n", steps,
                size, size, batch, enco_ctx_device(a)->name, enco_ctx_device(b)->name);
        cli_progress pr;
        cli_progress_init(&pr, "it", 0);
        st = enco_verify_progress(a, b, &cfg, batch, size, size, steps, kdir_b != NULL,
                                  cli_progress_fn, &pr, &rep);
        cli_progress_end(&pr);
    }
    enco_ctx_free(a);
    enco_ctx_free(b);
    if (st != ENCO_OK)
        return cli_fail("verify", st);
    print_report(&cfg, &rep);
    if (json && write_json(json, &cfg, &rep) != 0)
        return 1;
    return rep.pass ? 0 : 1;
}

static void print_report(const enco_config *cfgp, const enco_verify_report *repp)
{
    const enco_config cfg = *cfgp;
    const enco_verify_report rep = *repp;
    printf("verify: model %s, %s vs %s, %d iterations%s\n", cfg.model.family, rep.device_a,
           rep.device_b, rep.steps,
           rep.same_device ? " (same device: must be bitwise identical)"
           : rep.processes ? " (several processes against one: not bitwise)"
                           : "");
    const int w = rep.has_iteration1 ? 34 : 16;
    printf("  %-*s %12s %12s %12s  %s\n", w, "group", "max |diff|", "max rel", "tolerance",
           "result (largest at)");
    for (int g = 0; g < 2 * ENCO_VG_COUNT; g++) {
        const enco_verify_row *r = g < ENCO_VG_COUNT ? &rep.rows[g] : &rep.rows1[g - ENCO_VG_COUNT];
        if (g >= ENCO_VG_COUNT && (!rep.has_iteration1 || g == ENCO_VG_COUNT + ENCO_VG_LOSSES))
            continue;
        printf("  %-*s %12.3g %12.3g %12.3g  %s (%s)\n", w, r->name, r->max_abs, r->max_rel,
               r->tolerance, r->pass ? "pass" : "FAIL", r->worst[0] ? r->worst : "-");
    }
    printf("  ill-conditioned: %ld G, %ld D and %ld F elements by Adam's state (sqrt(v_hat) + "
           "eps < %g eps), %ld biases before an InstanceNorm\n",
           rep.ill_elements[0], rep.ill_elements[1], rep.ill_elements[2], ENCO_VERIFY_ILL_K,
           rep.ill_in_bias);
    if (rep.has_iteration1)
        printf("  after iteration 1: %ld G, %ld D and %ld F elements by Adam's state, the same "
               "biases\n",
               rep.ill_elements1[0], rep.ill_elements1[1], rep.ill_elements1[2]);
    const enco_verify_picks *pk = &rep.picks;
    printf("  %-16s %ld of %ld differ, %ld beyond a near-tie (score maps %.3g apart, "
           "near-tie cap %.3g at iteration 1, none later)  %s\n",
           "patch picks", pk->differ, pk->compared, pk->unexplained, pk->score_diff,
           enco_verify_near_tie_cap(1), rep.picks_pass ? "pass" : "FAIL");
    if (pk->first_iteration)
        printf("  the picks differ in %d iteration%s, first in iteration %d: B was trained "
               "again %d time%s replaying A's picks there, and the losses and weights above\n"
               "  compare runs on the same patches\n",
               pk->iterations_differ, pk->iterations_differ == 1 ? "" : "s", pk->first_iteration,
               rep.replays, rep.replays == 1 ? "" : "s");
    printf("  bitwise identical: %s\n", rep.bitwise ? "yes" : "no");
    printf("verify %s\n", rep.pass ? "passed" : "FAILED");
}

/* The report as JSON; 0, or 1 when the file cannot be written (said). */
static int write_json(const char *json, const enco_config *cfgp, const enco_verify_report *repp)
{
    const enco_config cfg = *cfgp;
    const enco_verify_report rep = *repp;
    const enco_verify_picks *pk = &rep.picks;
    {
        FILE *f = fopen(json, "w");
        if (!f) {
            fprintf(stderr, "enco-cl verify: cannot write %s\n", json);
            return 1;
        }
        fprintf(f, "{\"family\": \"%s\", \"device_a\": \"%s\", \"device_b\": \"%s\", "
                   "\"steps\": %d, \"processes\": %d, \"same_device\": %s, \"bitwise\": %s, "
                   "\"pass\": %s, \"groups\": [",
                cfg.model.family, rep.device_a, rep.device_b, rep.steps,
                rep.processes ? rep.processes : 1, rep.same_device ? "true" : "false",
                rep.bitwise ? "true" : "false", rep.pass ? "true" : "false");
        /* The final state's groups, then (steps >= 2) iteration 1's. */
        for (int g = 0; g < 2 * ENCO_VG_COUNT; g++) {
            const enco_verify_row *r =
                g < ENCO_VG_COUNT ? &rep.rows[g] : &rep.rows1[g - ENCO_VG_COUNT];
            if (g >= ENCO_VG_COUNT &&
                (!rep.has_iteration1 || g == ENCO_VG_COUNT + ENCO_VG_LOSSES))
                continue;
            fprintf(f, "%s{\"name\": \"%s\", \"max_abs\": %.6g, \"max_rel\": %.6g, "
                       "\"tolerance\": %.6g, \"pass\": %s, \"worst\": \"%s\"}",
                    g ? ", " : "", r->name, r->max_abs, r->max_rel, r->tolerance,
                    r->pass ? "true" : "false", r->worst);
        }
        fprintf(f, "], \"picks\": {\"compared\": %ld, \"differ\": %ld, \"unexplained\": %ld, "
                   "\"score_diff\": %.6g, \"near_tie_cap\": %.6g, \"first_iteration\": %d, "
                   "\"iterations_differ\": %d, \"pass\": %s}, \"replays\": %d",
                pk->compared, pk->differ, pk->unexplained, pk->score_diff,
                enco_verify_near_tie_cap(1), pk->first_iteration, pk->iterations_differ,
                rep.picks_pass ? "true" : "false", rep.replays);
        fprintf(f, ", \"ill_conditioned\": {\"k\": %g, \"G\": %ld, \"D\": %ld, \"F\": %ld, "
                   "\"in_biases\": %ld",
                ENCO_VERIFY_ILL_K, rep.ill_elements[0], rep.ill_elements[1], rep.ill_elements[2],
                rep.ill_in_bias);
        if (rep.has_iteration1) /* G, D, F by Adam's state after iteration 1 */
            fprintf(f, ", \"after_iteration_1\": [%ld, %ld, %ld]", rep.ill_elements1[0],
                    rep.ill_elements1[1], rep.ill_elements1[2]);
        fprintf(f, "}");
        /* Per iteration: the largest relative loss difference, its tolerance. */
        fprintf(f, ", \"loss_rel_by_iteration\": [");
        for (int s = 0; s < rep.steps && s < ENCO_VERIFY_MAX_REPORTED; s++)
            fprintf(f, "%s[%.6g, %.6g]", s ? ", " : "", rep.loss_rel[s],
                    enco_verify_tolerance(ENCO_VG_LOSSES, s + 1, 0, 0));
        fprintf(f, "]}\n");
        if (fclose(f) != 0) {
            fprintf(stderr, "enco-cl verify: cannot write %s\n", json);
            return 1;
        }
    }
    return 0;
}
