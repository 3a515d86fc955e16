/* Platform and device enumeration and selection. */
#include "cl/device.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PLATFORMS 16
#define MAX_DEVICES_PER_PLATFORM 64

static void info_string(cl_device_id dev, cl_device_info what, char *buf, size_t size)
{
    buf[0] = '\0';
    if (clGetDeviceInfo(dev, what, size, buf, NULL) != CL_SUCCESS)
        snprintf(buf, size, "?");
    buf[size - 1] = '\0';
    /* Some drivers pad names with spaces. */
    size_t n = strlen(buf);
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
}

static int has_extension(cl_device_id dev, const char *ext)
{
    size_t size = 0;
    if (clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, 0, NULL, &size) != CL_SUCCESS || size == 0)
        return 0;
    char *exts = malloc(size + 1);
    if (!exts)
        return 0;
    int found = 0;
    if (clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, size, exts, NULL) == CL_SUCCESS) {
        exts[size] = '\0';
        size_t elen = strlen(ext);
        for (const char *p = exts; (p = strstr(p, ext)) != NULL; p += elen) {
            int start_ok = p == exts || p[-1] == ' ';
            int end_ok = p[elen] == '\0' || p[elen] == ' ';
            if (start_ok && end_ok) {
                found = 1;
                break;
            }
        }
    }
    free(exts);
    return found;
}

static void fill_info(enco_device_info *d, cl_platform_id plat, cl_device_id dev)
{
    clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof d->platform, d->platform, NULL);
    d->platform[sizeof d->platform - 1] = '\0';
    clGetPlatformInfo(plat, CL_PLATFORM_VERSION, sizeof d->platform_version, d->platform_version,
                      NULL);
    d->platform_version[sizeof d->platform_version - 1] = '\0';
    info_string(dev, CL_DEVICE_NAME, d->name, sizeof d->name);
    info_string(dev, CL_DEVICE_VENDOR, d->vendor, sizeof d->vendor);
    info_string(dev, CL_DRIVER_VERSION, d->driver_version, sizeof d->driver_version);
    info_string(dev, CL_DEVICE_VERSION, d->device_version, sizeof d->device_version);
    info_string(dev, CL_DEVICE_OPENCL_C_VERSION, d->opencl_c_version, sizeof d->opencl_c_version);

    cl_device_type type = 0;
    clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    d->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
    snprintf(d->type, sizeof d->type, "%s",
             (type & CL_DEVICE_TYPE_GPU)           ? "GPU"
             : (type & CL_DEVICE_TYPE_CPU)         ? "CPU"
             : (type & CL_DEVICE_TYPE_ACCELERATOR) ? "ACCELERATOR"
                                                   : "OTHER");
    cl_uint u = 0;
    clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof u, &u, NULL);
    d->compute_units = u;
    u = 0;
    clGetDeviceInfo(dev, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof u, &u, NULL);
    d->max_clock_mhz = u;
    size_t wg = 0;
    clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    d->max_work_group_size = wg;
    cl_ulong l = 0;
    clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof l, &l, NULL);
    d->global_mem_bytes = l;
    l = 0;
    clGetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof l, &l, NULL);
    d->max_alloc_bytes = l;
    l = 0;
    clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof l, &l, NULL);
    d->local_mem_bytes = l;
    d->fp16 = has_extension(dev, "cl_khr_fp16");
    cl_device_fp_config fp = 0;
    clGetDeviceInfo(dev, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp, &fp, NULL);
    d->fp64 = fp != 0 || has_extension(dev, "cl_khr_fp64");
}

enco_status enco_devices_enumerate(enco_device_info **out, cl_device_id **ids, size_t *count)
{
    *out = NULL;
    if (ids)
        *ids = NULL;
    *count = 0;
    cl_platform_id plats[MAX_PLATFORMS];
    cl_uint nplat = 0;
    cl_int err = clGetPlatformIDs(MAX_PLATFORMS, plats, &nplat);
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (err == CL_SUCCESS && nplat == 0))
        return ENCO_FAIL(ENCO_ERR_NO_PLATFORM,
                         "no OpenCL platform found: install an OpenCL driver (on Debian: "
                         "'apt-get install pocl-opencl-icd' for the CPU, or your GPU vendor's "
                         "ICD) and the ICD loader 'ocl-icd-libopencl1'");
    ENCO_CL(err);
    if (nplat > MAX_PLATFORMS)
        nplat = MAX_PLATFORMS;

    size_t cap = (size_t)nplat * MAX_DEVICES_PER_PLATFORM;
    enco_device_info *list = calloc(cap, sizeof *list);
    cl_device_id *devs = calloc(cap, sizeof *devs);
    if (!list || !devs) {
        free(list);
        free(devs);
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "out of host memory listing devices");
    }
    size_t n = 0;
    for (cl_uint p = 0; p < nplat; p++) {
        cl_device_id pd[MAX_DEVICES_PER_PLATFORM];
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES_PER_PLATFORM, pd, &nd) !=
            CL_SUCCESS)
            continue; /* a platform without devices is not an error */
        if (nd > MAX_DEVICES_PER_PLATFORM)
            nd = MAX_DEVICES_PER_PLATFORM;
        for (cl_uint i = 0; i < nd; i++) {
            list[n].index = (unsigned)n;
            list[n].platform_index = p;
            fill_info(&list[n], plats[p], pd[i]);
            devs[n] = pd[i];
            n++;
        }
    }
    if (n == 0) {
        free(list);
        free(devs);
        return ENCO_FAIL(ENCO_ERR_NO_PLATFORM,
                         "OpenCL platforms exist but none has a device: install a working "
                         "OpenCL driver (on Debian: 'apt-get install pocl-opencl-icd')");
    }
    *out = list;
    if (ids)
        *ids = devs;
    else
        free(devs);
    *count = n;
    return ENCO_OK;
}

enco_status enco_devices_list(enco_device_info **out, size_t *count)
{
    return enco_devices_enumerate(out, NULL, count);
}

void enco_devices_free(enco_device_info *list) { free(list); }

static int contains_nocase(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < nl && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == nl)
            return 1;
    }
    return nl == 0;
}

static void append_device_list(const enco_device_info *list, size_t n)
{
    enco_error_append("\navailable devices:");
    for (size_t i = 0; i < n; i++)
        enco_error_append("\n  %u: %s / %s (%s)", list[i].index, list[i].platform, list[i].name,
                          list[i].type);
}

enco_status enco_device_pick(const enco_device_info *list, size_t n, const char *spec,
                             unsigned *index)
{
    const char *source = "selection";
    if (!spec || !*spec) {
        spec = getenv("ENCO_DEVICE");
        source = "ENCO_DEVICE";
    }
    if (!spec || !*spec) {
        for (size_t i = 0; i < n; i++)
            if (list[i].is_gpu) {
                *index = (unsigned)i;
                return ENCO_OK;
            }
        *index = 0;
        return ENCO_OK;
    }
    int all_digits = 1;
    for (const char *p = spec; *p; p++)
        if (!isdigit((unsigned char)*p))
            all_digits = 0;
    if (all_digits) {
        char *end = NULL;
        unsigned long v = strtoul(spec, &end, 10);
        if (*end == '\0' && v < n) {
            *index = (unsigned)v;
            return ENCO_OK;
        }
        ENCO_FAIL(ENCO_ERR_NO_DEVICE, "device index %s (from %s) is out of range: %zu device%s",
                  spec, source, n, n == 1 ? "" : "s");
        append_device_list(list, n);
        return ENCO_ERR_NO_DEVICE;
    }
    for (size_t i = 0; i < n; i++) {
        char full[300];
        snprintf(full, sizeof full, "%s %s", list[i].platform, list[i].name);
        if (contains_nocase(full, spec)) {
            *index = (unsigned)i;
            return ENCO_OK;
        }
    }
    ENCO_FAIL(ENCO_ERR_NO_DEVICE, "no device matches \"%s\" (from %s)", spec, source);
    append_device_list(list, n);
    return ENCO_ERR_NO_DEVICE;
}

enco_status enco_device_select(const char *spec, unsigned *index)
{
    enco_device_info *list = NULL;
    size_t n = 0;
    ENCO_TRY(enco_devices_list(&list, &n));
    enco_status st = enco_device_pick(list, n, spec, index);
    enco_devices_free(list);
    return st;
}
