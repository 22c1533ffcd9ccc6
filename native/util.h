/* Small helpers shared by the peapod native tools. */
#ifndef PEAPOD_UTIL_H
#define PEAPOD_UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* write()/read() the whole buffer, retrying on EINTR and short transfers.
 * write_all returns 0 or -1 (errno set); read_all returns the number of
 * bytes read (short only at EOF) or -1. */
int write_all(int fd, const void *buf, size_t len);
ssize_t read_all(int fd, void *buf, size_t len);

/* Close every file descriptor >= 3 except `keep` (pass -1 to keep none).
 * Uses close_range(2) and falls back to walking /proc/self/fd. */
int close_fds_except(int keep);

/* Close every file descriptor >= lo. */
int close_fds_from(int lo);

/*
 * A listening unix stream socket (non-blocking, mode 0600) named `name` in
 * the directory `dirfd`, bound through /proc/self/fd so that long state paths
 * still fit in sun_path. A stale socket file is replaced. -1 with errno set.
 */
int listen_unix_at(int dirfd, const char *name);

/*
 * "--name VALUE" or "--name=VALUE" at argv[*i]: the value (advancing *i past
 * a separate one), NULL when argv[*i] is another option. A missing value
 * prints the usage and exits 2.
 */
const char *opt_value(int argc, char **argv, int *i, void (*usage)(FILE *), const char *name);

/* Write buf to dirfd/name atomically: a temporary file in the same
 * directory, fsync, rename. Returns 0 or -1 (errno set). */
int write_file_atomic(int dirfd, const char *name, const void *buf, size_t len, int mode);

/* Point fds 0, 1 and 2 at /dev/null. */
int stdio_to_devnull(void);

/* Reset the signal mask and every signal disposition to the default. */
int reset_signals(void);

/* Parse "UID:GID" (decimal, each < 2^32-1). Returns 0 or -1. */
int parse_ids(const char *s, uid_t *uid, gid_t *gid);

/* Process `pid`'s start time (field 22 of /proc/PID/stat, clock ticks since
 * boot) as its decimal text: with the pid, what tells it from a later
 * process given the same pid. Returns 0 or -1 (errno set). */
int proc_starttime(pid_t pid, char *buf, size_t len);

/* Fault injection for tests, as the server's (src/util/failpoint.ts): with
 * "name=delay-MS" in PEAPOD_FAILPOINTS (which helpers inherit), waits MS
 * milliseconds; else nothing. A window for a race under test. */
void failpoint_delay(const char *name);

#endif
