/* The registry of model families. */
#include "models/family.h"

#include <string.h>

const enco_family *const enco_families[] = {&enco_family_enco, &enco_family_cut,
                                            &enco_family_fastcut, NULL};

const enco_family *enco_family_find(const char *name)
{
    for (int i = 0; enco_families[i]; i++)
        if (strcmp(enco_families[i]->name, name) == 0)
            return enco_families[i];
    return NULL;
}
