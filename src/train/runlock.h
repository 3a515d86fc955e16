/* One owner of a run folder: <dir>/.lock, held with flock(LOCK_EX | LOCK_NB)
 * for the whole run. The kernel drops the lock when its holder dies, so the
 * lock of a killed run is stale by itself; the file then still names that
 * holder, which is how a takeover is noticed.
 *
 * The holder writes into the file one key=value per line:
 *   pid=1234
 *   host=node7
 *   since=2026-12-07T03:40:00Z
 *   command=enco-cl train
 * and empties it (keeping the file) when it releases the lock. The file is
 * never removed: a removal would race with a new holder that has opened it.
 *
 * Caveat: flock is only as good as the file system's support for it. On
 * local disks it is exact. On Linux NFS it is emulated with POSIX byte-range
 * locks: it holds across clients with NFSv4 (or NFSv3 with lockd), but a
 * client that loses its lease (a network partition) loses the lock, and a
 * mount with -o nolock makes it local to one machine. Some FUSE and cluster
 * file systems ignore it altogether. There two hosts can both believe they
 * own the folder: keep run.dir on a file system with working locks. Under
 * MPI only rank 0 takes the lock. */
#ifndef ENCO_TRAIN_RUNLOCK_H
#define ENCO_TRAIN_RUNLOCK_H

#include "core/internal.h"

typedef struct enco_runlock {
    int fd;                /* -1 when not held */
    char path[1100];       /* <dir>/.lock */
    /* After a takeover: the earlier holder, "pid N on host H, since T";
     * "" when the lock was free and clean. */
    char previous[384];
} enco_runlock;

/* Takes the lock of run folder dir (which must exist) for this process,
 * writing command ("enco-cl train") into it. A folder held by a live process
 * fails with ENCO_ERR_INVALID_ARG and a message naming the holder. */
enco_status enco_runlock_take(enco_runlock *l, const char *dir, const char *command);

/* Empties the file and releases the lock (no-op when not held). */
void enco_runlock_release(enco_runlock *l);

#endif
