/* enco-cl step --config FILE --state IN.safetensors --out OUT.safetensors */
#include "cli/cli.h"

#include "core/internal.h"
#include "train/stepio.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: enco-cl step --config FILE --state IN.safetensors --out OUT.safetensors\n"
           "                    [--prefix P] [--dag-draws] [--save-adam] [--set K=V]...\n"
           "                    [--device SEL]\n\n"
           "Runs exactly one training iteration of the configured model.family from a given\n"
           "state and writes everything out, for checking enco-cl against another\n"
           "implementation (tools/reference/ is ours in PyTorch; docs/ lists each family's\n"
           "names). IN holds real_A and real_B (N, 3, H, W float32), every weight under\n"
           "the family's net<name>. names (netG., netD., netF.; cyclegan: netG_A., netG_B.,\n"
           "netD_A., netD_B.; dclgan: those and netF1., netF2.), optionally the\n"
           "iteration's random draws, which replace enco-cl's own: patch_ids.<p> (int64,\n"
           "N x K; CUT, FastCUT, DCLGAN: one row repeated for the batch, per nce layer p,\n"
           "for NCE(real_A, fake_B), DCLGAN's NCE1), patch_ids_Y.<p> (CUT: for\n"
           "NCE(real_B, idt_B)), patch_ids_2.<p> (DCLGAN's NCE2), flipped (int64 scalar\n"
           "0/1: FastCUT's flip), CycleGAN's pools pool.A, pool.B (float32, count x 3 x H\n"
           "x W: the stored fake_A and fake_B images) and their draws pool_u.A, pool_u.B\n"
           "(float32, N: swap when > 0.5 once full) and pool_id.A, pool_id.B (int64, N: the\n"
           "stored image taken), and optionally Adam state to continue from:\n"
           "adam_step.<net> (int64 scalar, the steps taken, >= 1), adam_m.<name> and\n"
           "adam_v.<name> (float32) for every trainable parameter of that net (a net with\n"
           "some of them needs all; a net without any starts fresh Adam, at step 1).\n"
           "OUT holds fake_B, idt_B (with the identity term), pred_fake, the family's losses\n"
           "(enco: loss.D, loss.G_GAN, loss.EnCo, loss.idt, loss.G, loss.EnCo.<p>; cut and\n"
           "fastcut: loss.D, loss.D_real, loss.D_fake, loss.G_GAN, loss.NCE, loss.NCE_Y,\n"
           "loss.G, loss.NCE.<p>, loss.NCE_Y.<p>; cyclegan: loss.D_A, loss.G_A,\n"
           "loss.cycle_A, loss.idt_A, the same for B, loss.G; dclgan: loss.D_A, loss.D_B,\n"
           "loss.G_A, loss.G_B, loss.NCE1, loss.NCE2, loss.idt_A, loss.idt_B, loss.G,\n"
           "loss.NCE1.<p>, loss.NCE2.<p>), the draws used (patch_ids.<p>, and\n"
           "patch_ids_Y.<p> and flipped for cut and fastcut, patch_ids_2.<p> for dclgan),\n"
           "grad.<name> for every parameter and after.<name> for every weight and buffer\n"
           "after the Adam steps; cyclegan and dclgan write fake_B, fake_A, idt_A, idt_B\n"
           "(cyclegan: rec_A, rec_B and the pools after the step, pool.A, pool.B) in\n"
           "place of fake_B, idt_B and pred_fake.\n\n"
           "  -c, --config FILE   configuration (libconfig syntax; see configs/defaults.cfg)\n"
           "  -s, --state FILE    input state\n"
           "  -o, --out FILE      output file (written atomically)\n"
           "      --prefix P      read IN tensors under this prefix (e.g. \"in.\" for a fixture\n"
           "                      of tests/fixtures); default: none\n"
           "      --dag-draws     EnCo: rank the given dag_cand.<p> / dag_cover.<p> draws with\n"
           "                      our own score map instead of using patch_ids.<p>\n"
           "      --save-adam     also write the Adam state after the step to OUT, in the\n"
           "                      names IN reads (adam_step.<net>, adam_m.<name>, adam_v.<name>)\n"
           "      --set K=V       override one option\n"
           "  -d, --device SEL    OpenCL device (index or part of a name)\n"
           "  -h, --help          this text\n");
}

int cmd_step(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"state", required_argument, NULL, 's'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"prefix", required_argument, NULL, 'p'},
                                         {"dag-draws", no_argument, NULL, 'g'},
                                         {"save-adam", no_argument, NULL, 'A'},
                                         {"set", required_argument, NULL, 'S'},
                                         {"device", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *state = NULL, *outp = NULL, *prefix = "", *device = NULL;
    int dag_draws = 0, save_adam = 0, c;
    enco_config cfg;
    enco_config_defaults(&cfg);
    const char *sets[64];
    int nsets = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:s:o:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': state = optarg; break;
        case 'o': outp = optarg; break;
        case 'p': prefix = optarg; break;
        case 'g': dag_draws = 1; break;
        case 'A': save_adam = 1; break;
        case 'd': device = optarg; break;
        case 'S':
            if (nsets == 64)
                return cli_usage_error("step", "too many --set options");
            sets[nsets++] = optarg;
            break;
        case 'h': help(); return 0;
        default: return cli_usage_error("step", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("step", "unexpected argument '%s'", argv[optind]);
    if (!config || !state || !outp)
        return cli_usage_error("step", "--config, --state and --out are required");
    enco_status st = enco_config_load(&cfg, config);
    for (int i = 0; st == ENCO_OK && i < nsets; i++)
        st = enco_config_set(&cfg, sets[i]);
    if (st == ENCO_OK)
        st = enco_config_validate(&cfg);
    if (st != ENCO_OK)
        return cli_fail("step", st);
    enco_st_file *in = NULL;
    st = enco_st_read(state, &in);
    if (st != ENCO_OK)
        return cli_fail("step", st);
    enco_ctx *ctx = NULL;
    enco_ctx_options o = CLI_CTX_OPTIONS(device);
    st = enco_ctx_create(&ctx, &o);
    if (st != ENCO_OK) {
        enco_st_free(in);
        return cli_fail("step", st);
    }
    fprintf(stderr, "enco-cl step: one iteration on %s\n", enco_ctx_device(ctx)->name);
    enco_st_file *out = enco_st_new();
    enco_trainer *t = NULL;
    st = out ? enco_step_from_state(ctx, &cfg, in, prefix, dag_draws, out,
                                    save_adam ? &t : NULL)
             : ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory");
    if (st == ENCO_OK && save_adam)
        st = enco_step_save_adam(t, out, "");
    enco_trainer_free(t);
    if (st == ENCO_OK) {
        char *dump = enco_config_dump(&cfg);
        if (dump)
            enco_st_set_meta(out, "config", dump);
        free(dump);
        enco_st_set_meta(out, "device", enco_ctx_device(ctx)->name);
        st = enco_st_write(outp, out);
    }
    int rc = st == ENCO_OK ? 0 : cli_fail("step", st);
    if (rc == 0)
        fprintf(stderr, "enco-cl step: wrote %zu tensors to %s\n", out->count, outp);
    enco_st_free(out);
    enco_st_free(in);
    enco_ctx_free(ctx);
    return rc;
}
