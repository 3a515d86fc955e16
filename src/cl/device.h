#ifndef ENCO_CL_DEVICE_H
#define ENCO_CL_DEVICE_H
#include "core/internal.h"

/* As enco_devices_list, also returning the cl_device_id of each entry. */
enco_status enco_devices_enumerate(enco_device_info **out, cl_device_id **ids, size_t *count);
/* Selection logic of enco_device_select over an existing list. */
enco_status enco_device_pick(const enco_device_info *list, size_t n, const char *spec,
                             unsigned *index);
#endif
