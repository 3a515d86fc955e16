/* The registry of model families. */
#include "models/family.h"

#include "models/common.h"

#include <string.h>

const enco_family *const enco_families[] = {&enco_family_enco, &enco_family_cut,
                                            &enco_family_fastcut, &enco_family_cyclegan,
                                            &enco_family_dclgan, NULL};

const enco_family *enco_family_find(const char *name)
{
    for (int i = 0; enco_families[i]; i++)
        if (strcmp(enco_families[i]->name, name) == 0)
            return enco_families[i];
    return NULL;
}

enco_model_config enco_family_generator_config(const enco_family *fam, const enco_config *cfg)
{
    return fam->model_config ? fam->model_config(cfg) : enco_family_model_config(cfg);
}
