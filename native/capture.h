/* ExecSync output capture for peapod-exec --output-limit. */
#ifndef PEAPOD_CAPTURE_H
#define PEAPOD_CAPTURE_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Copies the command's stdout pipe (out_r) to fd 1 and its stderr pipe
 * (err_r) to fd 2, at most `limit` bytes each (the rest is read and dropped,
 * so the command never blocks on a full pipe), until the command `pid` has
 * exited and its pipes are drained: what is already in them is copied, and
 * background processes still holding them get DRAIN_MS more, no longer.
 * Signals in `mask` (blocked by the caller) other than SIGCHLD kill the
 * command's process group. Returns the command's exit code (128+N for
 * signal N), or 126 on an internal error.
 */
int capture_run(pid_t pid, int out_r, int err_r, const sigset_t *mask, size_t limit, int kill_group_at_exit);

#endif
