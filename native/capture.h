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

/* Shared by capture_run and exec's tty relay, which wait for the command `pid`: */

/* The blocked signals of `mask` as a non-blocking fd; on failure the command
 * (and its group) is killed and -1 returned. */
int command_signalfd(pid_t pid, const sigset_t *mask);

/* Takes what arrived on the signalfd: any signal but SIGCHLD kills the
 * command's group (once, *killed set). Returns the command's wait status
 * once it has exited (reaped), else -1. */
int command_signals(int sfd, pid_t pid, int *killed);

/* After poll(2) failed: 0 for EINTR (poll again); else the error is printed,
 * the command's group killed and -1 returned. */
int command_poll_failed(pid_t pid);

#endif
