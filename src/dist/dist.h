/* Data-parallel training across processes (issue 17): the MPI seam. One
 * enco_dist per process. Built with MPI (meson -Dmpi=auto finds Open MPI)
 * it wraps MPI_COMM_WORLD; without MPI, or run without mpirun, it is a
 * single rank and every call is a no-op copy.
 *
 * Every collective is deterministic: the same inputs give the same bits
 * on every rank, run after run, whatever algorithm MPI picks (sums are
 * formed from an all-gather, in rank order, on every rank alike). */
#ifndef ENCO_DIST_DIST_H
#define ENCO_DIST_DIST_H

#include "core/internal.h"

#include <stddef.h>
#include <stdint.h>

typedef struct enco_dist enco_dist;

/* Starts this process's part: under mpirun (Open MPI's OMPI_COMM_WORLD_SIZE,
 * or PMI_SIZE / PMIX_RANK in the environment) with MPI built in, MPI_Init and
 * the world communicator; otherwise a single rank. Under mpirun with more
 * than one rank but without MPI built in, fails with ENCO_ERR_UNSUPPORTED and
 * a message saying so (the build option and the Debian packages). */
enco_status enco_dist_init(int *argc, char ***argv, enco_dist **out);
/* MPI_Finalize (when initialised) and frees. NULL is fine. */
void enco_dist_free(enco_dist *d);

int enco_dist_rank(const enco_dist *d);       /* 0 .. size-1; 0 when d is NULL */
int enco_dist_size(const enco_dist *d);       /* 1 when d is NULL */
int enco_dist_local_rank(const enco_dist *d); /* rank among the processes of this host */
int enco_dist_local_size(const enco_dist *d);
/* Whether MPI is compiled in. */
int enco_dist_has_mpi(void);

/* buf (n floats, the same n on every rank) becomes the sum over ranks, added
 * in rank order ((r0 + r1) + r2 ...) in float: bitwise the same on every
 * rank. Works in buckets, so its scratch memory is bounded whatever n is. */
enco_status enco_dist_sum_floats(enco_dist *d, float *buf, size_t n);
/* The same for doubles (statistics). */
enco_status enco_dist_sum_doubles(enco_dist *d, double *buf, size_t n);
/* Gathers each rank's `count` bytes of `mine` into `all` (size * count
 * bytes, rank order) on every rank. */
enco_status enco_dist_allgather(enco_dist *d, const void *mine, void *all, size_t count);
/* Rank root's `count` bytes of buf to every rank. */
enco_status enco_dist_bcast(enco_dist *d, void *buf, size_t count, int root);
/* Whether any rank passes a non-zero `failed` (every rank learns it): so that
 * all ranks stop together instead of waiting in a collective for one that
 * failed. */
enco_status enco_dist_any(enco_dist *d, int failed, int *any);
/* Ends the whole job now (MPI_Abort with code) after a rank's fatal error,
 * so that no rank hangs; a single rank just returns. */
void enco_dist_abort(enco_dist *d, int code);

/* Bytes moved by the collectives so far and the seconds spent in them
 * (bench --e2e's communication share). */
void enco_dist_stats(const enco_dist *d, double *bytes, double *seconds);

#endif
