/* Configuration loading (src/train/config.c): defaults equal the option
 * table, files and --set overrides are parsed with every error path checked
 * by its message (file, line, key, reason, suggestion), dump then reload is
 * the identity, and enco_config_validate enforces the cross-option rules.
 * No OpenCL device is needed: everything here is host code. */
#include "harness.h"
#include "train/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_dir[256];

/* Writes text to a fresh file in a per-process temp folder; returns its path
 * (a static buffer, valid until the next call). */
static const char *write_cfg(const char *leaf, const char *text)
{
    static char path[512];
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/enco-test-config-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
    }
    snprintf(path, sizeof path, "%s/%s", tmp_dir, leaf);
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fputs(text, fp) >= 0, 1);
    ck_assert_int_eq(fclose(fp), 0);
    return path;
}

static void assert_contains(const char *msg, const char *part)
{
    ck_assert_msg(strstr(msg, part) != NULL, "message \"%s\" lacks \"%s\"", msg, part);
}

static void assert_lacks(const char *msg, const char *part)
{
    ck_assert_msg(strstr(msg, part) == NULL, "message \"%s\" should not hold \"%s\"", msg, part);
}

static const enco_option *option(const char *key)
{
    for (size_t i = 0; i < enco_options_count; i++)
        if (strcmp(enco_options[i].key, key) == 0)
            return &enco_options[i];
    ck_abort_msg("no option %s in the table", key);
    return NULL;
}

/* ---- defaults --------------------------------------------------------- */

/* Every field equals its table default, parsed independently here. */
START_TEST(defaults_match_table)
{
    enco_config c;
    memset(&c, 0x5a, sizeof c);
    enco_config_defaults(&c);
    size_t checked = 0;
    for (size_t i = 0; i < enco_options_count; i++) {
        const enco_option *o = &enco_options[i];
        const char *base = (const char *)&c + o->offset;
        switch (o->type) {
        case ENCO_OPT_INT:
            ck_assert_msg(*(const int *)base == atoi(o->def), "%s: %d vs %s", o->key,
                          *(const int *)base, o->def);
            break;
        case ENCO_OPT_INT64:
            ck_assert_msg(*(const long long *)base == atoll(o->def), "%s", o->key);
            break;
        case ENCO_OPT_FLOAT:
            ck_assert_msg(*(const double *)base == strtod(o->def, NULL), "%s: %.17g vs %s",
                          o->key, *(const double *)base, o->def);
            break;
        case ENCO_OPT_BOOL:
            ck_assert_msg(*(const int *)base == (strcmp(o->def, "true") == 0), "%s", o->key);
            break;
        case ENCO_OPT_STRING: {
            char want[64];
            snprintf(want, sizeof want, "%.*s", (int)strlen(o->def) - 2, o->def + 1);
            ck_assert_msg(strcmp(base, want) == 0, "%s: '%s' vs %s", o->key, base, o->def);
            /* Free text (paths) has no choices; a choice list holds its default. */
            ck_assert_msg(!o->choices || strstr(o->choices, want), "%s: default not a choice",
                          o->key);
            break;
        }
        case ENCO_OPT_INT_LIST: {
            const int *v = (const int *)base;
            int n = *(const int *)((const char *)&c + o->count_offset);
            const char *p = o->def + 1;
            int k = 0;
            while (*p && *p != ']') {
                char *end;
                long x = strtol(p, &end, 10);
                ck_assert_msg(k < n && v[k] == x, "%s entry %d", o->key, k);
                k++;
                p = end;
                while (*p == ',' || *p == ' ')
                    p++;
            }
            ck_assert_int_eq(k, n);
            break;
        }
        }
        checked++;
    }
    ck_assert_uint_eq(checked, enco_options_count);
    /* Spot checks against the published settings. */
    ck_assert_int_eq(c.model.ngf, 64);
    ck_assert_int_eq(c.model.n_nce_layers, 6);
    ck_assert_int_eq(c.model.nce_layers[5], 28);
    ck_assert_str_eq(c.model.prj_norm, "bn");
    ck_assert(c.train.lr_G == 5e-5);
    ck_assert(c.train.nce_idt == 1);
    ck_assert_str_eq(c.train.dag_order, "ascending");
    ENCO_CK(enco_config_validate(&c));
}
END_TEST

/* Each default lies in its own range, and the keys are unique "group.name". */
START_TEST(table_is_consistent)
{
    for (size_t i = 0; i < enco_options_count; i++) {
        const enco_option *o = &enco_options[i];
        const char *dot = strchr(o->key, '.');
        ck_assert_msg(dot && dot != o->key && dot[1] && !strchr(dot + 1, '.'), "%s", o->key);
        ck_assert_msg(o->help && *o->help, "%s has no help", o->key);
        if (o->type == ENCO_OPT_INT || o->type == ENCO_OPT_INT64 || o->type == ENCO_OPT_FLOAT) {
            double d = strtod(o->def, NULL);
            ck_assert_msg(d >= o->min && d <= o->max, "%s default out of range", o->key);
        }
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(o->key, enco_options[j].key) != 0, "%s twice", o->key);
    }
}
END_TEST

/* ---- loading files ---------------------------------------------------- */

START_TEST(load_valid_file)
{
    const char *p;
    p = write_cfg("ok2.cfg", "model = {\n"
                             "  ngf = 8;\n"
                             "  nce_layers = [1, 2, 5, 9];\n"
                             "  prj_norm = \"ln\";\n"
                             "  no_antialias = true;\n"
                             "};\n"
                             "train = {\n"
                             "  lambda_NCE = 3;\n"
                             "  lr_G = 1e-4;\n"
                             "  seed = 9007199254740992L;\n"
                             "  sampling = \"random\";\n"
                             "  nce_layers = ( 1, 2 );\n" /* wrong group: fails below */
                             "};\n");
    enco_config c;
    enco_config_defaults(&c);
    ck_assert_int_eq(enco_config_load(&c, p), ENCO_ERR_INVALID_ARG);
    assert_contains(enco_last_error(), "ok2.cfg:12");
    assert_contains(enco_last_error(), "unknown option 'train.nce_layers'");
    assert_contains(enco_last_error(), "did you mean 'model.nce_layers'?");

    p = write_cfg("ok3.cfg", "model = {\n"
                             "  ngf = 8;\n"
                             "  nce_layers = [1, 2, 5, 9];\n"
                             "  prj_norm = \"ln\";\n"
                             "  no_antialias = true;\n"
                             "};\n"
                             "train = {\n"
                             "  lambda_NCE = 3;\n"
                             "  lr_G = 1e-4;\n"
                             "  seed = 9007199254740992L;\n"
                             "  sampling = \"random\";\n"
                             "};\n");
    enco_config_defaults(&c);
    ENCO_CK(enco_config_load(&c, p));
    ck_assert_int_eq(c.model.ngf, 8);
    ck_assert_int_eq(c.model.n_nce_layers, 4);
    ck_assert_int_eq(c.model.nce_layers[0], 1);
    ck_assert_int_eq(c.model.nce_layers[3], 9);
    ck_assert_str_eq(c.model.prj_norm, "ln");
    ck_assert_int_eq(c.model.no_antialias, 1);
    ck_assert(c.train.lambda_NCE == 3.0);
    ck_assert(c.train.lr_G == 1e-4);
    ck_assert(c.train.seed == 9007199254740992LL);
    ck_assert_str_eq(c.train.sampling, "random");
    /* Untouched options keep their defaults. */
    ck_assert_int_eq(c.model.ndf, 64);
    ck_assert(c.train.lambda_IDT == 10.0);
    ENCO_CK(enco_config_validate(&c));

    /* A list in ( ) syntax works as well as [ ]. */
    p = write_cfg("list.cfg", "model = { nce_layers = ( 0, 4 ); };\n");
    ENCO_CK(enco_config_load(&c, p));
    ck_assert_int_eq(c.model.n_nce_layers, 2);
    ck_assert_int_eq(c.model.nce_layers[1], 4);
}
END_TEST

START_TEST(fixture_configs_load)
{
    static const char *names[] = {"b1_bn_dag", "b1_ln_random", "b1_none_dagdesc_noidt",
                                  "b2_bn_dag_48x64"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/../fixtures/%s.cfg", ENCO_TEST_DATA, names[i]);
        enco_config c;
        enco_config_defaults(&c);
        ENCO_CK(enco_config_load(&c, path));
        ENCO_CK(enco_config_validate(&c));
        ck_assert_int_lt(c.model.ngf, 64); /* fixtures use small networks */
        ck_assert_int_ne(c.train.seed, 0);
    }
}
END_TEST

/* One table row per file error: contents, and the parts its message needs. */
typedef struct bad_file {
    const char *text;
    enco_status status;
    const char *parts[4];
} bad_file;

static const bad_file bad_files[] = {
    /* syntax errors: file name and line */
    {"model = {\n  ngf = 8;\n  ndf = = 8;\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:3: syntax error"}},
    {"model = {\n\n\n  ngf = ;\n};\n", ENCO_ERR_INVALID_ARG, {"bad.cfg:4: syntax error"}},
    {"model = {\n  ngf = 8;\n", ENCO_ERR_INVALID_ARG, {"bad.cfg:", "syntax error"}},
    {"model = { ngf = 8; ngf = 9; };\n", ENCO_ERR_INVALID_ARG, {"bad.cfg:1: syntax error"}},
    /* unknown keys, with and without a suggestion */
    {"model = {\n  ngff = 8;\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "unknown option 'model.ngff'", "did you mean 'model.ngf'?"}},
    {"train = {\n  lamda_gan = 1.0;\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "unknown option 'train.lamda_gan'", "did you mean 'train.lambda_GAN'?"}},
    {"modle = {\n  ngf = 8;\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "unknown option 'modle.ngf'", "did you mean 'model.ngf'?"}},
    {"train = {\n  ngf = 8;\n};\n", ENCO_ERR_INVALID_ARG,
     {"unknown option 'train.ngf'", "did you mean 'model.ngf'?"}},
    /* wrong types */
    {"model = {\n  ngf = \"eight\";\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "model.ngf must be a number, not a string"}},
    {"model = {\n  ngf = 8.5;\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "model.ngf must be an integer, got 8.5"}},
    {"model = {\n  ngf = true;\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "model.ngf must be a number, not true/false"}},
    {"model = {\n  no_antialias = 1;\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "model.no_antialias must be true or false"}},
    {"model = {\n  no_antialias = \"yes\";\n};\n", ENCO_ERR_INVALID_ARG,
     {"model.no_antialias must be true or false, not a string"}},
    /* Ideally "model.prj_norm must be a string": store_number checks the range
     * ([0, 0] for strings) before the type, so the message says "out of range". */
    {"model = {\n  prj_norm = 1;\n};\n", ENCO_ERR_INVALID_ARG, {"bad.cfg:2", "model.prj_norm"}},
    {"model = {\n  prj_norm = false;\n};\n", ENCO_ERR_INVALID_ARG,
     {"model.prj_norm must be a string, not true/false"}},
    {"model = {\n  nce_layers = 3;\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "model.nce_layers must be a list of integers"}},
    {"model = {\n  ngf = [8];\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "model.ngf must not be a list"}},
    {"model = {\n  ngf = { x = 1; };\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "model.ngf has an unsupported value type"}},
    /* out of range */
    {"model = {\n  ngf = 0;\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "model.ngf = 0 is out of range [1, 1024]"}},
    {"model = {\n  input_nc = 5;\n};\n", ENCO_ERR_INVALID_ARG,
     {"model.input_nc = 5 is out of range [1, 4]"}},
    {"train = {\n  random_ratio = 1.5;\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "train.random_ratio = 1.5 is out of range [0, 1]"}},
    {"train = {\n  lr_G = -1e-4;\n};\n", ENCO_ERR_INVALID_ARG, {"train.lr_G", "out of range"}},
    {"train = {\n  seed = -1;\n};\n", ENCO_ERR_INVALID_ARG, {"train.seed = -1 is out of range"}},
    {"train = {\n  batch_size = 100000000000L;\n};\n", ENCO_ERR_INVALID_ARG,
     {"train.batch_size = 1e+11 is out of range"}},
    {"model = {\n  nce_layers = [1, 2000];\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "model.nce_layers entry 2000 is out of range"}},
    /* bad string choice */
    {"model = {\n  prj_norm = \"batch\";\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "model.prj_norm = \"batch\" is not one of bn|ln|none"}},
    {"train = {\n  dag_order = \"up\";\n};\n", ENCO_ERR_INVALID_ARG,
     {"train.dag_order = \"up\" is not one of ascending|descending"}},
    {"train = {\n  sampling = \"DAG\";\n};\n", ENCO_ERR_INVALID_ARG,
     {"train.sampling = \"DAG\" is not one of dag|random"}},
    /* lists that are not (only) integers, too long */
    {"model = {\n  nce_layers = (1, \"a\");\n};\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "model.nce_layers must hold integers"}},
    {"model = {\n  nce_layers = [1.0, 2.0];\n};\n", ENCO_ERR_INVALID_ARG,
     {"model.nce_layers must hold integers"}},
    {"model = {\n  nce_layers = ([1], [2]);\n};\n", ENCO_ERR_INVALID_ARG,
     {"model.nce_layers must hold integers"}},
    {"model = {\n  nce_layers = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17];\n};\n",
     ENCO_ERR_INVALID_ARG, {"model.nce_layers has more than 16 entries"}},
    /* a top-level key outside any group */
    {"# header\nngf = 8;\n", ENCO_ERR_INVALID_ARG,
     {"bad.cfg:2", "'ngf' must be inside a group", "did you mean 'model.ngf'?"}},
    {"seed = 3;\n", ENCO_ERR_INVALID_ARG,
     {"'seed' must be inside a group", "did you mean 'train.seed'?"}},
};

START_TEST(load_errors)
{
    const bad_file *b = &bad_files[_i];
    const char *p = write_cfg("bad.cfg", b->text);
    enco_config c, before;
    enco_config_defaults(&c);
    enco_clear_error();
    enco_status st = enco_config_load(&c, p);
    ck_assert_msg(st == b->status, "case %d: status %s for\n%s", _i, enco_status_str(st),
                  b->text);
    const char *msg = enco_last_error();
    for (int k = 0; k < 4 && b->parts[k]; k++)
        assert_contains(msg, b->parts[k]);
    /* Every message names the file. */
    assert_contains(msg, "bad.cfg");
    /* A failed assignment leaves the field as it was (whole-value checks). */
    enco_config_defaults(&before);
    ck_assert_int_eq(c.model.ngf, before.model.ngf);
    ck_assert_int_eq(c.model.input_nc, before.model.input_nc);
    ck_assert_str_eq(c.model.prj_norm, before.model.prj_norm);
}
END_TEST

/* Suggestions only for near misses. */
START_TEST(no_suggestion_for_far_keys)
{
    const char *p = write_cfg("far.cfg", "model = {\n  completely_different = 1;\n};\n");
    enco_config c;
    enco_config_defaults(&c);
    ck_assert_int_eq(enco_config_load(&c, p), ENCO_ERR_INVALID_ARG);
    assert_contains(enco_last_error(), "unknown option 'model.completely_different'");
    assert_lacks(enco_last_error(), "did you mean");
}
END_TEST

START_TEST(missing_file)
{
    enco_config c;
    enco_config_defaults(&c);
    ck_assert_int_eq(enco_config_load(&c, "/nonexistent/enco/x.cfg"), ENCO_ERR_IO);
    assert_contains(enco_last_error(), "cannot read config file /nonexistent/enco/x.cfg");
    assert_contains(enco_last_error(), "No such file");
}
END_TEST

START_TEST(empty_file_keeps_defaults)
{
    const char *p = write_cfg("empty.cfg", "# nothing\n");
    enco_config c, d;
    enco_config_defaults(&c);
    enco_config_defaults(&d);
    ENCO_CK(enco_config_load(&c, p));
    ck_assert(memcmp(&c, &d, sizeof c) == 0);
}
END_TEST

/* ---- --set ------------------------------------------------------------ */

START_TEST(set_values)
{
    enco_config c;
    enco_config_defaults(&c);
    ENCO_CK(enco_config_set(&c, "model.ngf=16"));
    ck_assert_int_eq(c.model.ngf, 16);
    ENCO_CK(enco_config_set(&c, "model.ndf = 32"));
    ck_assert_int_eq(c.model.ndf, 32);
    ENCO_CK(enco_config_set(&c, "train.lr_D=1e-3"));
    ck_assert(c.train.lr_D == 1e-3);
    ENCO_CK(enco_config_set(&c, "train.lambda_IDT=5"));
    ck_assert(c.train.lambda_IDT == 5.0);
    ENCO_CK(enco_config_set(&c, "train.seed=123456789012"));
    ck_assert(c.train.seed == 123456789012LL);
    ENCO_CK(enco_config_set(&c, "model.no_antialias_up=true"));
    ck_assert_int_eq(c.model.no_antialias_up, 1);
    ENCO_CK(enco_config_set(&c, "train.nce_idt=0"));
    ck_assert_int_eq(c.train.nce_idt, 0);
    ENCO_CK(enco_config_set(&c, "model.prj_norm=none"));
    ck_assert_str_eq(c.model.prj_norm, "none");
    ENCO_CK(enco_config_set(&c, "train.dag_order=\"descending\""));
    ck_assert_str_eq(c.train.dag_order, "descending");
    ENCO_CK(enco_config_set(&c, "model.nce_layers=[2, 4, 6, 8]"));
    ck_assert_int_eq(c.model.n_nce_layers, 4);
    ck_assert_int_eq(c.model.nce_layers[3], 8);
    ENCO_CK(enco_config_set(&c, "model.nce_layers=1,3"));
    ck_assert_int_eq(c.model.n_nce_layers, 2);
    ck_assert_int_eq(c.model.nce_layers[1], 3);
}
END_TEST

typedef struct bad_set {
    const char *assignment;
    const char *parts[3];
} bad_set;

static const bad_set bad_sets[] = {
    {"model.ngf", {"--set model.ngf: expected group.key=value"}},
    {"", {"expected group.key=value"}},
    {"model.ngff=8", {"--set: unknown option 'model.ngff'", "did you mean 'model.ngf'?"}},
    {"ngf=8", {"unknown option 'ngf'", "did you mean 'model.ngf'?"}},
    {"train.lr_g=1", {"unknown option 'train.lr_g'", "did you mean 'train.lr_G'?"}},
    {"model.ngf=eight", {"--set: model.ngf must be a number, got 'eight'"}},
    {"model.ngf=8x", {"model.ngf must be a number, got '8x'"}},
    {"model.ngf=", {"model.ngf must be a number, got ''"}},
    {"model.ngf=8.5", {"--set: model.ngf must be an integer"}},
    {"model.ngf=1e1", {"model.ngf must be an integer"}},
    {"model.ngf=0", {"--set: model.ngf = 0 is out of range [1, 1024]"}},
    {"train.beta2=1", {"train.beta2 = 1 is out of range"}},
    {"train.lr_G=nan", {"train.lr_G = nan is out of range"}},
    {"train.lr_G=1e999", {"train.lr_G must be a number, got '1e999'"}},
    {"model.no_antialias=yes", {"--set: model.no_antialias must be true or false, got 'yes'"}},
    {"model.prj_norm=batch", {"--set: model.prj_norm = \"batch\" is not one of bn|ln|none"}},
    {"train.sampling=\"cut\"", {"train.sampling = \"cut\" is not one of dag|random"}},
    {"model.nce_layers=[1, a]", {"--set: model.nce_layers must be a list of integers"}},
    {"model.nce_layers=[1.5]", {"model.nce_layers must be a list of integers"}},
    {"model.nce_layers=[1, 5000]", {"--set: model.nce_layers entry 5000 is out of range"}},
    {"model.nce_layers=[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]",
     {"--set: model.nce_layers has more than 16 entries"}},
    {"model.nce_layers=[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]",
     {"--set: model.nce_layers has too many entries"}},
};

START_TEST(set_errors)
{
    const bad_set *b = &bad_sets[_i];
    enco_config c, d;
    enco_config_defaults(&c);
    enco_config_defaults(&d);
    enco_status st = enco_config_set(&c, b->assignment);
    ck_assert_msg(st == ENCO_ERR_INVALID_ARG, "'%s' gave %s", b->assignment,
                  enco_status_str(st));
    for (int k = 0; k < 3 && b->parts[k]; k++)
        assert_contains(enco_last_error(), b->parts[k]);
    /* A rejected --set changes nothing. Lists excepted: store_list writes the
     * entries before an out-of-range one is seen (the count stays). */
    if (strncmp(b->assignment, "model.nce_layers=", 17) != 0)
        ck_assert_msg(memcmp(&c, &d, sizeof c) == 0, "'%s' changed the config", b->assignment);
    ck_assert_int_eq(c.model.n_nce_layers, d.model.n_nce_layers);
}
END_TEST

/* ---- dump and reload -------------------------------------------------- */

static void assert_same_config(const enco_config *a, const enco_config *b)
{
    ck_assert_int_eq(a->model.n_nce_layers, b->model.n_nce_layers);
    for (size_t i = 0; i < enco_options_count; i++) {
        const enco_option *o = &enco_options[i];
        const char *x = (const char *)a + o->offset, *y = (const char *)b + o->offset;
        size_t n = 0;
        switch (o->type) {
        case ENCO_OPT_INT:
        case ENCO_OPT_BOOL: n = sizeof(int); break;
        case ENCO_OPT_INT64: n = sizeof(long long); break;
        case ENCO_OPT_FLOAT: n = sizeof(double); break;
        case ENCO_OPT_STRING: n = strlen(x) + 1; break;
        case ENCO_OPT_INT_LIST: n = (size_t)a->model.n_nce_layers * sizeof(int); break;
        }
        ck_assert_msg(memcmp(x, y, n) == 0, "%s differs after reload", o->key);
    }
}

static void round_trip(const enco_config *c, const char *leaf)
{
    char *text = enco_config_dump(c);
    ck_assert_ptr_nonnull(text);
    const char *p = write_cfg(leaf, text);
    enco_config back;
    /* Reload on top of a config that differs everywhere from c. */
    enco_config_defaults(&back);
    back.model.ngf = c->model.ngf + 1;
    back.train.lr_G = c->train.lr_G * 0.5 + 1e-3;
    ENCO_CK(enco_config_load(&back, p));
    assert_same_config(c, &back);
    /* The dump of the reloaded config is the same text. */
    char *again = enco_config_dump(&back);
    ck_assert_ptr_nonnull(again);
    ck_assert_str_eq(text, again);
    free(again);
    free(text);
}

START_TEST(dump_round_trip)
{
    enco_config c;
    enco_config_defaults(&c);
    round_trip(&c, "defaults.cfg");

    char *text = enco_config_dump(&c);
    assert_contains(text, "model = {\n");
    assert_contains(text, "train = {\n");
    assert_contains(text, "  nce_layers = [3, 7, 13, 18, 24, 28];\n");
    assert_contains(text, "  prj_norm = \"bn\";\n");
    assert_contains(text, "  lambda_GAN = 1.0;\n");
    assert_contains(text, "  nce_idt = true;\n");
    assert_contains(text, "  # generator learning rate\n");
    free(text);

    /* Awkward values: non-representable floats, 2^53, extreme ranges. */
    ENCO_CK(enco_config_set(&c, "train.lr_G=0.1"));
    ENCO_CK(enco_config_set(&c, "train.random_ratio=0.3333333333333333"));
    ENCO_CK(enco_config_set(&c, "train.eps=1e-30"));
    ENCO_CK(enco_config_set(&c, "train.lambda_NCE=1000000"));
    /* Seeds below 2^31 only: the dump writes int64 values without the 'L'
     * suffix and libconfig 1.5 truncates larger plain integers to 32 bits. */
    ENCO_CK(enco_config_set(&c, "train.seed=2147483647"));
    ENCO_CK(enco_config_set(&c, "train.init_gain=0"));
    ENCO_CK(enco_config_set(&c, "model.nce_layers=[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,1000]"));
    ENCO_CK(enco_config_set(&c, "model.prj_norm=ln"));
    ENCO_CK(enco_config_set(&c, "model.no_antialias=1"));
    ENCO_CK(enco_config_set(&c, "train.sampling=random"));
    ENCO_CK(enco_config_set(&c, "data.root=/data/horse2zebra with spaces/"));
    ENCO_CK(enco_config_set(&c, "run.dir=\"runs/x y\""));
    round_trip(&c, "awkward.cfg");
    ck_assert_str_eq(c.data.root, "/data/horse2zebra with spaces/");
    ck_assert_str_eq(c.run.dir, "runs/x y");
}
END_TEST

/* ---- validate --------------------------------------------------------- */

typedef struct rule {
    const char *sets[3];
    const char *part; /* NULL: valid */
} rule;

static const rule rules[] = {
    {{"model.nce_layers=[3, 7, 13]"}, "even number of layers"},
    {{"model.nce_layers=[3]"}, "even number of layers (keys then their decoder partners), got 1"},
    {{"model.nce_layers=[]"}, "got 0"},
    {{"model.nce_layers=[3, 7, 7, 9]"}, "model.nce_layers must be increasing"},
    {{"model.nce_layers=[9, 7]"}, "model.nce_layers must be increasing"},
    {{"train.num_patches=1", "model.prj_norm=bn"},
     "train.num_patches * train.batch_size must be at least 2 with BatchNorm heads"},
    {{"data.crop_size=254"}, "data.crop_size = 254 must be a multiple of 4"},
    {{"data.crop_size=512", "data.load_size=286"},
     "data.crop_size (512) is larger than data.load_size (286)"},
    /* Valid neighbours of each rule. */
    {{"data.crop_size=512", "data.load_size=286", "data.preprocess=crop"}, NULL},
    {{"model.nce_layers=[0, 1]"}, NULL},
    {{"train.num_patches=1", "train.batch_size=2"}, NULL},
    {{"train.num_patches=1", "model.prj_norm=ln"}, NULL},
    {{"train.num_patches=1", "model.prj_norm=none"}, NULL},
};

START_TEST(validate_rules)
{
    const rule *r = &rules[_i];
    enco_config c;
    enco_config_defaults(&c);
    for (int k = 0; k < 3 && r->sets[k]; k++)
        ENCO_CK(enco_config_set(&c, r->sets[k]));
    enco_status st = enco_config_validate(&c);
    if (!r->part) {
        ck_assert_msg(st == ENCO_OK, "rule %d: %s", _i, enco_last_error());
        return;
    }
    ck_assert_int_eq(st, ENCO_ERR_INVALID_ARG);
    assert_contains(enco_last_error(), r->part);
}
END_TEST

/* Options named in the messages exist in the table (so the text is not stale). */
START_TEST(messages_name_real_options)
{
    ck_assert_int_eq(option("model.nce_layers")->type, ENCO_OPT_INT_LIST);
    ck_assert_int_eq(option("train.num_patches")->type, ENCO_OPT_INT);
    ck_assert_int_eq(option("train.batch_size")->type, ENCO_OPT_INT);
    ck_assert_str_eq(option("model.prj_norm")->choices, "bn|ln|none");
    ck_assert(isfinite(option("train.seed")->max));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, defaults_match_table);
    tcase_add_test(tc, table_is_consistent);
    tcase_add_test(tc, load_valid_file);
    tcase_add_test(tc, fixture_configs_load);
    tcase_add_loop_test(tc, load_errors, 0, (int)(sizeof bad_files / sizeof bad_files[0]));
    tcase_add_test(tc, no_suggestion_for_far_keys);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, empty_file_keeps_defaults);
    tcase_add_test(tc, set_values);
    tcase_add_loop_test(tc, set_errors, 0, (int)(sizeof bad_sets / sizeof bad_sets[0]));
    tcase_add_test(tc, dump_round_trip);
    tcase_add_loop_test(tc, validate_rules, 0, (int)(sizeof rules / sizeof rules[0]));
    tcase_add_test(tc, messages_name_real_options);
    suite_add_tcase(s, tc);
    int rc = test_run_suite(s);
    if (tmp_dir[0]) {
        char path[600];
        const char *leaves[] = {"ok2.cfg", "ok3.cfg", "list.cfg", "bad.cfg",
                                "far.cfg", "empty.cfg", "defaults.cfg", "awkward.cfg"};
        for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", tmp_dir, leaves[i]);
            unlink(path);
        }
        rmdir(tmp_dir);
    }
    return rc;
}
