/* Data-parallel training across processes (issue 17): the MPI seam. One
 * enco_dist per process. Built with MPI (meson -Dmpi=auto finds Open MPI)
 * and started by mpirun, it wraps MPI_COMM_WORLD; built without MPI, or run
 * without mpirun, it is a single rank and every collective is a no-op (or a
 * copy).
 *
 * Every collective is deterministic: the same inputs give the same bits on
 * every rank, run after run, whatever algorithm MPI picks (sums are formed
 * from an all-gather, in rank order, on every rank alike). Every rank must
 * make the same calls in the same order with the same counts; a count that
 * differs between ranks, or a bad argument on one rank, fails on every rank
 * (ENCO_ERR_INVALID_ARG) instead of hanging. MPI errors come back as
 * ENCO_ERR_IO with MPI's message (the communicator returns errors instead
 * of aborting). A NULL enco_dist is a
 * single rank. One enco_dist is used by one thread at a time (MPI is
 * started with MPI_THREAD_SERIALIZED, so that thread need not be the main
 * one). */
#ifndef ENCO_DIST_DIST_H
#define ENCO_DIST_DIST_H

#include "core/internal.h"

#include <stddef.h>
#include <stdint.h>

/* The sums work through the all-gather of buckets of at most this many bytes
 * per rank: their scratch memory is size * ENCO_DIST_BUCKET_BYTES whatever n
 * is. Larger all-gathers go through the same scratch in chunks. */
#define ENCO_DIST_BUCKET_BYTES ((size_t)4 << 20)

typedef struct enco_dist enco_dist;

/* Starts this process's part: under mpirun (Open MPI's OMPI_COMM_WORLD_SIZE,
 * or PMI_SIZE / PMIX_RANK in the environment) with MPI built in, MPI_Init and
 * MPI_COMM_WORLD; otherwise a single rank. Under mpirun with size > 1 but
 * without MPI built in, fails with ENCO_ERR_UNSUPPORTED and a message naming
 * the build option (-Dmpi=enabled) and the Debian packages (libopenmpi-dev
 * openmpi-bin). argc and argv go to MPI_Init (either may be NULL). MPI starts
 * once per process: after an enco_dist_free that finalised it, a later init
 * under mpirun fails. */
enco_status enco_dist_init(int *argc, char ***argv, enco_dist **out);
/* MPI_Finalize (when this enco_dist initialised MPI) and frees. NULL is fine. */
void enco_dist_free(enco_dist *d);

int enco_dist_rank(const enco_dist *d);       /* 0 .. size-1; 0 when d is NULL */
int enco_dist_size(const enco_dist *d);       /* 1 when d is NULL */
/* Rank and count among the processes of this host (MPI_Comm_split_type
 * MPI_COMM_TYPE_SHARED): local rank r takes this host's r-th device. */
int enco_dist_local_rank(const enco_dist *d); /* 0 when d is NULL */
int enco_dist_local_size(const enco_dist *d); /* 1 when d is NULL */
/* Whether MPI is compiled in (1) or not (0). */
int enco_dist_has_mpi(void);

/* buf (n floats, the same n on every rank) becomes the sum over ranks, added
 * in rank order ((r0 + r1) + r2 ...) in float from an all-gather: bitwise
 * the same on every rank and run to run, whatever algorithm MPI picks.
 * Works in buckets of ENCO_DIST_BUCKET_BYTES per rank, so its scratch memory
 * is bounded whatever n is. buf may be NULL when n is 0. */
enco_status enco_dist_sum_floats(enco_dist *d, float *buf, size_t n);
/* The same for doubles (statistics). */
enco_status enco_dist_sum_doubles(enco_dist *d, double *buf, size_t n);
/* Gathers each rank's `count` bytes of `mine` into `all` (size * count
 * bytes, rank order) on every rank. mine and all must not overlap. */
enco_status enco_dist_allgather(enco_dist *d, const void *mine, void *all, size_t count);
/* Rank root's `count` bytes of buf to every rank (root in 0 .. size-1). */
enco_status enco_dist_bcast(enco_dist *d, void *buf, size_t count, int root);
/* *any = whether any rank passed failed != 0 (every rank learns it): so that
 * all ranks stop together instead of waiting in a collective for one that
 * failed. */
enco_status enco_dist_any(enco_dist *d, int failed, int *any);
/* Ends the whole job now (MPI_Abort with code) after a rank's fatal error,
 * so that no rank hangs; a single rank just returns. */
void enco_dist_abort(enco_dist *d, int code);

/* Bytes moved by the collectives so far and the seconds spent in them
 * (bench --e2e's communication share). Bytes are the payload this rank
 * received from the other ranks, whatever route MPI took: an all-gather of
 * b bytes per rank counts (size - 1) * b, a broadcast b on every rank but
 * the root, and every collective call first all-gathers a 32-byte header
 * (which call, its count and root: ranks that disagree fail together):
 * 32 * (size - 1) more; enco_dist_any is that header alone. Seconds are
 * wall time inside the collective calls, the local additions of a sum
 * included. A single rank moves nothing: both stay 0. Either pointer may be
 * NULL. */
void enco_dist_stats(const enco_dist *d, double *bytes, double *seconds);

#endif
