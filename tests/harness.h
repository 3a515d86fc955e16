/* Shared helpers for the Check test programs. Every test runs on the OpenCL
 * device chosen as the CLI would (ENCO_DEVICE or the default); a missing
 * device is a failure, never a skip. */
#ifndef ENCO_TEST_HARNESS_H
#define ENCO_TEST_HARNESS_H

#include "core/internal.h"

#include <check.h>

/* Fails the test with the library's message when st is not ENCO_OK. */
#define ENCO_CK(expr)                                                                        \
    do {                                                                                     \
        enco_status ck_st_ = (expr);                                                         \
        ck_assert_msg(ck_st_ == ENCO_OK, "%s -> %s: %s", #expr, enco_status_str(ck_st_),     \
                      enco_last_error());                                                    \
    } while (0)

/* The process-wide test context (created on first use, freed at exit). */
enco_ctx *test_ctx(void);
/* Sets the environment variable name to value (NULL or "": unsets it) and
 * gives the shared test context the kernel policy a context created now
 * would get: the library reads the ENCO_* overrides once, at context
 * creation. 0 on success, -1 when the variable could not be set or the
 * policy was refused (the library's message in enco_last_error()). */
int test_setenv(const char *name, const char *value);
/* 1 when the tests run on Oclgrind: use the tiniest shapes there. */
int test_on_oclgrind(void);

/* Deterministic host data in [lo, hi) from a seed (splitmix64). */
void test_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);
void test_fill_uniform_f64(double *x, size_t n, uint64_t seed, double lo, double hi);

/* Allocates a device buffer holding host[0..n). */
cl_mem test_upload(const float *host, size_t n);
/* A zero-filled device buffer of n floats. */
cl_mem test_alloc(size_t n);
/* Reads n floats back into a new malloc'd array. */
float *test_download(cl_mem mem, size_t n);
void test_release(cl_mem mem);

/* Compares got with ref element-wise: |got - ref| <= atol + rtol * |ref|.
 * Fails the test naming `what` and the first bad index; returns the largest
 * relative error seen (|d| / max(|ref|, atol)) and prints it as
 * "maxrel <what> <value>" so the suite log records accuracy per op. */
double test_assert_close(const char *what, const float *got, const double *ref, size_t n,
                         double atol, double rtol);
/* Same for two float arrays that must be bitwise identical. */
void test_assert_bitwise(const char *what, const float *a, const float *b, size_t n);

/* Runs the suite with CK_NOFORK (OpenCL state does not survive fork). */
int test_run_suite(Suite *s);

#endif
