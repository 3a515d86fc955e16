/* The MPI seam (see dist.h). Without ENCO_HAVE_MPI only the single-rank
 * paths exist. Every collective starts with the all-gather of a small
 * header (which call, its count, one argument) so that ranks that disagree
 * fail together instead of waiting in mismatched collectives; sums are
 * all-gathers added up locally in rank order, so their bits never depend on
 * MPI's choice of reduction algorithm. */
#include "dist/dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef ENCO_HAVE_MPI
#include <mpi.h>
#endif

/* The largest piece one MPI_Bcast moves (MPI counts are int). */
#define BCAST_CHUNK_BYTES ((size_t)1 << 30)

enum { OP_SUM_FLOATS = 1, OP_SUM_DOUBLES, OP_ALLGATHER, OP_BCAST, OP_ANY };
/* The header every collective starts with: which call, its count, its root
 * (bcast) or flag (any), whether this rank's arguments were bad. */
enum { HDR_OP, HDR_COUNT, HDR_ARG, HDR_BAD, HDR_WORDS };

struct enco_dist {
    int rank, size;
    int local_rank, local_size;
    int mpi;         /* 1: the communicators below are live */
    int owns_mpi;    /* MPI_Init was ours: MPI_Finalize at free */
#ifdef ENCO_HAVE_MPI
    MPI_Comm comm;   /* a duplicate of MPI_COMM_WORLD, errors returned */
    MPI_Comm local;  /* the ranks of this host */
#endif
    uint64_t *hdr;   /* (size, HDR_WORDS): every rank's header of the current call */
    unsigned char *scratch; /* (size, ENCO_DIST_BUCKET_BYTES), allocated on first use */
    double bytes, seconds;
};

int enco_dist_has_mpi(void)
{
#ifdef ENCO_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int enco_dist_rank(const enco_dist *d) { return d ? d->rank : 0; }
int enco_dist_size(const enco_dist *d) { return d ? d->size : 1; }
int enco_dist_local_rank(const enco_dist *d) { return d ? d->local_rank : 0; }
int enco_dist_local_size(const enco_dist *d) { return d ? d->local_size : 1; }

void enco_dist_stats(const enco_dist *d, double *bytes, double *seconds)
{
    if (bytes)
        *bytes = d ? d->bytes : 0.0;
    if (seconds)
        *seconds = d ? d->seconds : 0.0;
}

/* What the launcher says about this process: 0 when none started it, else
 * the world size it announced, -1 when one did but the size is unknown.
 * *var names the variable read (for messages). */
static long launched_size(const char **var, const char **value)
{
    static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof size_vars / sizeof size_vars[0]; i++) {
        const char *v = getenv(size_vars[i]);
        if (!v || !*v)
            continue;
        *var = size_vars[i];
        *value = v;
        char *end;
        long n = strtol(v, &end, 10);
        return (*end == '\0' && n >= 1) ? n : -1;
    }
    const char *v = getenv("PMIX_RANK");
    if (v && *v) {
        *var = "PMIX_RANK";
        *value = v;
        return -1;
    }
    return 0;
}

static enco_status single_rank(enco_dist **out)
{
    enco_dist *d = calloc(1, sizeof *d);
    if (!d)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "enco_dist_init: out of host memory");
    d->size = 1;
    d->local_size = 1;
    *out = d;
    return ENCO_OK;
}

#ifdef ENCO_HAVE_MPI

static const char *op_name(uint64_t op)
{
    switch (op) {
    case OP_SUM_FLOATS: return "enco_dist_sum_floats";
    case OP_SUM_DOUBLES: return "enco_dist_sum_doubles";
    case OP_ALLGATHER: return "enco_dist_allgather";
    case OP_BCAST: return "enco_dist_bcast";
    case OP_ANY: return "enco_dist_any";
    default: return "an unknown call";
    }
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* MPI's own words for err; the status is ENCO_ERR_IO (communication). */
static enco_status mpi_fail(const char *call, int err)
{
    char text[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(err, text, &len) != MPI_SUCCESS)
        len = snprintf(text, sizeof text, "MPI error %d", err);
    text[len < 0 ? 0 : len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING] = '\0';
    return ENCO_FAIL(ENCO_ERR_IO, "%s failed: %s", call, text);
}

#define MPI_TRY(call)                                  \
    do {                                               \
        int mpi_try_rc_ = (call);                      \
        if (mpi_try_rc_ != MPI_SUCCESS)                \
            return mpi_fail(#call, mpi_try_rc_);       \
    } while (0)

static enco_status mpi_start(enco_dist *d, int *argc, char ***argv)
{
    int finalized = 0, initialized = 0;
    MPI_Finalized(&finalized);
    if (finalized)
        return ENCO_FAIL(ENCO_ERR_UNSUPPORTED,
                         "enco_dist_init: MPI was already finalised in this process "
                         "(it starts once per process)");
    MPI_Initialized(&initialized);
    if (!initialized) {
        int provided = 0;
        MPI_TRY(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided));
        d->owns_mpi = 1;
        MPI_TRY(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    }
    MPI_TRY(MPI_Comm_dup(MPI_COMM_WORLD, &d->comm));
    d->mpi = 1;
    MPI_TRY(MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN));
    MPI_TRY(MPI_Comm_rank(d->comm, &d->rank));
    MPI_TRY(MPI_Comm_size(d->comm, &d->size));
    MPI_TRY(MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL,
                                &d->local));
    MPI_TRY(MPI_Comm_set_errhandler(d->local, MPI_ERRORS_RETURN));
    MPI_TRY(MPI_Comm_rank(d->local, &d->local_rank));
    MPI_TRY(MPI_Comm_size(d->local, &d->local_size));
    d->hdr = calloc((size_t)d->size * HDR_WORDS, sizeof *d->hdr);
    if (!d->hdr)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "enco_dist_init: out of host memory");
    return ENCO_OK;
}

#endif

enco_status enco_dist_init(int *argc, char ***argv, enco_dist **out)
{
    if (!out)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "enco_dist_init: out is NULL");
    *out = NULL;
    const char *var = NULL, *value = NULL;
    long launched = launched_size(&var, &value);
#ifdef ENCO_HAVE_MPI
    if (launched == 0)
        return single_rank(out);
    enco_dist *d = calloc(1, sizeof *d);
    if (!d)
        return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "enco_dist_init: out of host memory");
    d->comm = MPI_COMM_NULL;
    d->local = MPI_COMM_NULL;
    enco_status st = mpi_start(d, argc, argv);
    if (st != ENCO_OK) {
        /* MPI stays up when it started: finalising here could wait for the
         * other ranks; the launcher ends the job when this process exits. */
        if (d->local != MPI_COMM_NULL)
            MPI_Comm_free(&d->local);
        if (d->comm != MPI_COMM_NULL)
            MPI_Comm_free(&d->comm);
        free(d->hdr);
        free(d);
        return st;
    }
    *out = d;
    return ENCO_OK;
#else
    (void)argc;
    (void)argv;
    if (launched == 0 || launched == 1)
        return single_rank(out);
    return ENCO_FAIL(ENCO_ERR_UNSUPPORTED,
                     "enco_dist_init: started by an MPI launcher (%s=%s%s) but this enco-cl "
                     "was built without MPI: install Open MPI (Debian: apt-get install "
                     "libopenmpi-dev openmpi-bin) and rebuild with meson setup -Dmpi=enabled",
                     var, value, launched < 0 ? ", world size unknown" : "");
#endif
}

void enco_dist_free(enco_dist *d)
{
    if (!d)
        return;
#ifdef ENCO_HAVE_MPI
    if (d->mpi) {
        MPI_Comm_free(&d->local);
        MPI_Comm_free(&d->comm);
        if (d->owns_mpi)
            MPI_Finalize();
    }
#endif
    free(d->hdr);
    free(d->scratch);
    free(d);
}

void enco_dist_abort(enco_dist *d, int code)
{
#ifdef ENCO_HAVE_MPI
    if (d && d->mpi && d->size > 1)
        MPI_Abort(d->comm, code);
#else
    (void)d;
    (void)code;
#endif
}

/* ---- collectives ------------------------------------------------------- */

#ifdef ENCO_HAVE_MPI

/* All-gathers this rank's header (op, count, arg, whether its arguments
 * were bad) and checks that every rank is in the same call with the same
 * count (and, check_arg, the same arg) and good arguments. Every rank sees
 * the same table, so every rank fails alike: one rank's bad argument or
 * count ends the call everywhere instead of leaving the others waiting. */
static enco_status agree(enco_dist *d, uint64_t op, uint64_t count, uint64_t arg, int check_arg,
                         const char *bad)
{
    uint64_t mine[HDR_WORDS] = {op, count, arg, bad != NULL};
    MPI_TRY(MPI_Allgather(mine, HDR_WORDS, MPI_UINT64_T, d->hdr, HDR_WORDS, MPI_UINT64_T,
                          d->comm));
    d->bytes += (double)(d->size - 1) * sizeof mine;
    if (bad)
        return ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s", op_name(op), bad);
    for (int r = 0; r < d->size; r++) {
        const uint64_t *h = d->hdr + HDR_WORDS * (size_t)r;
        if (h[HDR_OP] != op)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                             "%s: rank %d is in %s meanwhile: every rank must make the same "
                             "collective calls in the same order",
                             op_name(op), r, op_name(h[HDR_OP]));
        if (h[HDR_BAD])
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                             "%s: rank %d passed an invalid argument (its own message says which)",
                             op_name(op), r);
        if (op != OP_ANY && h[HDR_COUNT] != count)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                             "%s: rank %d passes count %llu, rank %d passes %llu: the count "
                             "must be the same on every rank",
                             op_name(op), d->rank, (unsigned long long)count, r,
                             (unsigned long long)h[HDR_COUNT]);
        if (check_arg && h[HDR_ARG] != arg)
            return ENCO_FAIL(ENCO_ERR_INVALID_ARG,
                             "%s: rank %d passes root %llu, rank %d passes %llu: the root "
                             "must be the same on every rank",
                             op_name(op), d->rank, (unsigned long long)arg, r,
                             (unsigned long long)h[HDR_ARG]);
    }
    return ENCO_OK;
}

static enco_status scratch_get(enco_dist *d, const char *what)
{
    if (!d->scratch) {
        d->scratch = malloc((size_t)d->size * ENCO_DIST_BUCKET_BYTES);
        if (!d->scratch)
            return ENCO_FAIL(ENCO_ERR_NO_MEMORY, "%s: out of host memory (%zu bytes of scratch)",
                             what, (size_t)d->size * ENCO_DIST_BUCKET_BYTES);
    }
    return ENCO_OK;
}

/* Every rank's `bytes` (<= ENCO_DIST_BUCKET_BYTES) from src into the
 * scratch, rank after rank. */
static enco_status gather_bucket(enco_dist *d, const void *src, size_t bytes)
{
    MPI_TRY(MPI_Allgather(src, (int)bytes, MPI_BYTE, d->scratch, (int)bytes, MPI_BYTE, d->comm));
    d->bytes += (double)(d->size - 1) * (double)bytes;
    return ENCO_OK;
}

static enco_status sum_floats_mpi(enco_dist *d, float *buf, size_t n, const char *bad)
{
    const size_t bucket = ENCO_DIST_BUCKET_BYTES / sizeof(float);
    ENCO_TRY(agree(d, OP_SUM_FLOATS, n, 0, 0, bad));
    if (n == 0)
        return ENCO_OK;
    ENCO_TRY(scratch_get(d, "enco_dist_sum_floats"));
    for (size_t off = 0; off < n; off += bucket) {
        size_t m = n - off < bucket ? n - off : bucket;
        ENCO_TRY(gather_bucket(d, buf + off, m * sizeof(float)));
        const float *all = (const float *)d->scratch;
        float *out = buf + off;
        /* Rank 0's values, then + rank 1's, + rank 2's ...: one order everywhere. */
        memcpy(out, all, m * sizeof(float));
        for (int r = 1; r < d->size; r++) {
            const float *x = all + (size_t)r * m;
            for (size_t i = 0; i < m; i++)
                out[i] += x[i];
        }
    }
    return ENCO_OK;
}

static enco_status sum_doubles_mpi(enco_dist *d, double *buf, size_t n, const char *bad)
{
    const size_t bucket = ENCO_DIST_BUCKET_BYTES / sizeof(double);
    ENCO_TRY(agree(d, OP_SUM_DOUBLES, n, 0, 0, bad));
    if (n == 0)
        return ENCO_OK;
    ENCO_TRY(scratch_get(d, "enco_dist_sum_doubles"));
    for (size_t off = 0; off < n; off += bucket) {
        size_t m = n - off < bucket ? n - off : bucket;
        ENCO_TRY(gather_bucket(d, buf + off, m * sizeof(double)));
        const double *all = (const double *)d->scratch;
        double *out = buf + off;
        memcpy(out, all, m * sizeof(double));
        for (int r = 1; r < d->size; r++) {
            const double *x = all + (size_t)r * m;
            for (size_t i = 0; i < m; i++)
                out[i] += x[i];
        }
    }
    return ENCO_OK;
}

static enco_status allgather_mpi(enco_dist *d, const void *mine, void *all, size_t count,
                                 const char *bad)
{
    ENCO_TRY(agree(d, OP_ALLGATHER, count, 0, 0, bad));
    if (count == 0)
        return ENCO_OK;
    if (count <= ENCO_DIST_BUCKET_BYTES) {
        MPI_TRY(MPI_Allgather(mine, (int)count, MPI_BYTE, all, (int)count, MPI_BYTE, d->comm));
        d->bytes += (double)(d->size - 1) * (double)count;
        return ENCO_OK;
    }
    /* Larger than a bucket (perhaps larger than an int): piece by piece
     * through the scratch, each piece put in place for every rank. */
    ENCO_TRY(scratch_get(d, "enco_dist_allgather"));
    for (size_t off = 0; off < count; off += ENCO_DIST_BUCKET_BYTES) {
        size_t m = count - off < ENCO_DIST_BUCKET_BYTES ? count - off : ENCO_DIST_BUCKET_BYTES;
        ENCO_TRY(gather_bucket(d, (const unsigned char *)mine + off, m));
        for (int r = 0; r < d->size; r++)
            memcpy((unsigned char *)all + (size_t)r * count + off, d->scratch + (size_t)r * m, m);
    }
    return ENCO_OK;
}

static enco_status bcast_mpi(enco_dist *d, void *buf, size_t count, int root, const char *bad)
{
    ENCO_TRY(agree(d, OP_BCAST, count, (uint64_t)(int64_t)root, 1, bad));
    for (size_t off = 0; off < count; off += BCAST_CHUNK_BYTES) {
        size_t m = count - off < BCAST_CHUNK_BYTES ? count - off : BCAST_CHUNK_BYTES;
        MPI_TRY(MPI_Bcast((unsigned char *)buf + off, (int)m, MPI_BYTE, root, d->comm));
    }
    if (d->rank != root)
        d->bytes += (double)count;
    return ENCO_OK;
}

static enco_status any_mpi(enco_dist *d, int failed, int *any, const char *bad)
{
    /* The header carries the flag (as its arg): one all-gather in all. */
    ENCO_TRY(agree(d, OP_ANY, 0, failed != 0, 0, bad));
    int result = 0;
    for (int r = 0; r < d->size; r++)
        result |= d->hdr[HDR_WORDS * (size_t)r + HDR_ARG] != 0;
    *any = result; /* not NULL: agree() fails on a bad argument */
    return ENCO_OK;
}

static int is_multi(const enco_dist *d) { return d && d->mpi && d->size > 1; }

/* With more than one rank: runs the collective (which exchanges `bad`, the
 * local argument error or NULL, before anything else) and times it. */
#define DIST_MULTI(d, call)                              \
    do {                                                 \
        if (is_multi(d)) {                               \
            double dist_t0_ = now_seconds();             \
            enco_status dist_st_ = (call);               \
            (d)->seconds += now_seconds() - dist_t0_;    \
            return dist_st_;                             \
        }                                                \
    } while (0)

#else

#define DIST_MULTI(d, call) ((void)0)

#endif

/* A single rank's argument error. */
#define BAD(fn, bad) ENCO_FAIL(ENCO_ERR_INVALID_ARG, "%s: %s", (fn), (bad))

enco_status enco_dist_sum_floats(enco_dist *d, float *buf, size_t n)
{
    const char *bad = !buf && n ? "buf is NULL while n > 0" : NULL;
    DIST_MULTI(d, sum_floats_mpi(d, buf, n, bad));
    return bad ? BAD("enco_dist_sum_floats", bad) : ENCO_OK;
}

enco_status enco_dist_sum_doubles(enco_dist *d, double *buf, size_t n)
{
    const char *bad = !buf && n ? "buf is NULL while n > 0" : NULL;
    DIST_MULTI(d, sum_doubles_mpi(d, buf, n, bad));
    return bad ? BAD("enco_dist_sum_doubles", bad) : ENCO_OK;
}

enco_status enco_dist_allgather(enco_dist *d, const void *mine, void *all, size_t count)
{
    const unsigned char *m = mine, *a = all;
    size_t size = (size_t)enco_dist_size(d);
    const char *bad = NULL;
    if (count && !mine)
        bad = "mine is NULL while count > 0";
    else if (count && !all)
        bad = "all is NULL while count > 0";
    else if (count && count > SIZE_MAX / size)
        bad = "size * count overflows";
    else if (count && m < a + size * count && a < m + count)
        bad = "mine and all overlap";
    DIST_MULTI(d, allgather_mpi(d, mine, all, count, bad));
    if (bad)
        return BAD("enco_dist_allgather", bad);
    if (count)
        memcpy(all, mine, count);
    return ENCO_OK;
}

enco_status enco_dist_bcast(enco_dist *d, void *buf, size_t count, int root)
{
    int size = enco_dist_size(d);
    const char *bad = NULL;
    char why[96];
    if (root < 0 || root >= size) {
        snprintf(why, sizeof why, "root %d is not a rank (0 .. %d)", root, size - 1);
        bad = why;
    } else if (!buf && count) {
        bad = "buf is NULL while count > 0";
    }
    DIST_MULTI(d, bcast_mpi(d, buf, count, root, bad));
    return bad ? BAD("enco_dist_bcast", bad) : ENCO_OK;
}

enco_status enco_dist_any(enco_dist *d, int failed, int *any)
{
    const char *bad = any ? NULL : "any is NULL";
    DIST_MULTI(d, any_mpi(d, failed, any, bad));
    if (bad)
        return BAD("enco_dist_any", bad);
    *any = failed != 0;
    return ENCO_OK;
}
