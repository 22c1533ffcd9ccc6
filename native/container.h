/*
 * The container spec: what the TypeScript server decided, in a form the
 * native launcher executes without judgement. The server writes it to a file
 * (<container dir>/spec); the monitor and the exec helper parse it.
 *
 * Format: one directive per line, fields separated by single spaces, each
 * field percent-encoded (every byte outside [A-Za-z0-9._/:=,+@-] as %XX;
 * an empty field is "%").  Lines in order; unknown directives are an error.
 *
 *   pidns PATH|new|host        join the pinned pod PID namespace / a new one / stay
 *   netns PATH, ipcns PATH, utsns PATH
 *                              (monitor) the pod namespaces the monitor joins before it
 *                              forks the init; absent: it stays in its own
 *   rootfs DIR                 where the root file system is assembled (the mount point)
 *   overlay LOWERS UPPER WORK  overlay at rootfs; LOWERS colon-separated, top first
 *   mount TYPE SRC DST FLAGS DATA
 *                              DST is a container path (under rootfs); FLAGS a comma
 *                              list of ro,nosuid,nodev,noexec,bind,rbind,private,
 *                              rprivate,slave,rslave,shared,rshared,relatime,strictatime
 *                              or "-"; DATA "-" for none. Missing targets are created
 *                              (a file when a bind source is a file). TYPE "device":
 *                              a node like the host's device SRC (type, number, mode,
 *                              owner) made at DST with mknod, or bound where mknod is
 *                              refused (a user namespace); FLAGS and DATA "-".
 *   symlink TARGET LINKPATH    LINKPATH a container path
 *   mask PATH                  /dev/null over a file, empty read-only tmpfs over a dir
 *   readonly PATH              bind PATH onto itself read-only
 *   readonly-rootfs            remount / read-only after everything else
 *   cwd PATH
 *   user UID GID [GID,GID...]  supplementary groups optional
 *   env KEY=VALUE              repeatable, in order
 *   arg VALUE                  repeatable; the first is the program (looked up in PATH
 *                              of the container env when it has no slash)
 *   caps HEXMASK               bounding, permitted and effective sets (inheritable: none)
 *   no-new-privs
 *   seccomp default|unconfined
 *   seccomp-default ACTION ERRNO
 *                              instead of "seccomp": a Localhost profile with that default
 *                              action; ACTION one of allow, errno, kill-thread, kill-process,
 *                              trap, trace, log; ERRNO (0-65535) is used by errno and trace
 *   seccomp-arch NAME          repeatable: an architecture of the profile besides the native
 *                              one, as libseccomp names it (x86, x32...); unknown ones skipped
 *   seccomp-flag log|spec-allow
 *                              SECCOMP_FILTER_FLAG_LOG / SECCOMP_FILTER_FLAG_SPEC_ALLOW
 *   seccomp-rule ACTION ERRNO NAME [INDEX:OP:VALUE:VALUETWO]...
 *                              repeatable: the syscall NAME (skipped when libseccomp does not
 *                              know it) gets ACTION when every condition (at most 6) holds; OP
 *                              one of eq, ne, lt, le, gt, ge, masked-eq (VALUE the mask,
 *                              VALUETWO the datum); VALUETWO is ignored by the others
 *   rlimit NAME SOFT HARD      NAME like RLIMIT_NOFILE; "unlimited" allowed
 *   oom-score-adj N            failure with EACCES/EPERM is a warning, not an error;
 *                              an exec without it gets the init's
 *   cgroup DIR [NAME]          repeatable: the init pid is written to DIR/cgroup.procs; with
 *                              NAME (and "cgroupfs") DIR is bound at /sys/fs/cgroup/NAME, or
 *                              at /sys/fs/cgroup itself for NAME "." (then the only one named)
 *   cgroupfs ro|rw             the named cgroup dirs at /sys/fs/cgroup, after the symlinks: a
 *                              tmpfs (mode 755) with a dir per NAME, each bound once its DIR
 *                              exists (waited for, 5 s at most in all); everything nosuid,
 *                              nodev, noexec and, with ro, read-only
 *   cgroupfs-link TARGET NAME  repeatable, needs cgroupfs: a symlink NAME -> TARGET in that tmpfs
 *   device-filter DIR          (monitor) a cgroup2 dir: before the init joins it, a BPF
 *                              device program (BPF_CGROUP_DEVICE) is attached there that
 *                              denies every device access but those "device-allow" gives
 *   device-allow TYPE MAJOR MINOR ACCESS
 *                              repeatable, needs device-filter: TYPE a, b or c; MAJOR and
 *                              MINOR a number or "*"; ACCESS letters of rwm (read, write,
 *                              mknod), an access allowed when all its letters are there
 *   log PATH                   CRI-format log file (monitor)
 *   stdin 0|1                  (monitor) 1: the init's stdin is a pipe the monitor
 *                              feeds from attached clients; 0: /dev/null
 *   stdin-once                 (monitor) close the container's stdin when the first
 *                              attached client that had stdin detaches
 *   tty 0|1                    (monitor) 1: a pty of the container's devpts instance is
 *                              the init's controlling terminal and stdin/stdout/stderr
 */
#ifndef PEAPOD_CONTAINER_H
#define PEAPOD_CONTAINER_H

#include <stddef.h>

struct spec; /* defined in spec.c */

/* Parses a spec file. NULL on error, with a message in err. */
struct spec *spec_load(const char *path, char *err, size_t errlen);
void spec_free(struct spec *s);

/* Accessors the monitor needs. */
const char *spec_pidns(const struct spec *s);      /* path, "new" or "host" */
const char *spec_pod_ns(const struct spec *s, size_t i); /* 0 net, 1 ipc, 2 uts: a path or NULL */
const char *spec_log_path(const struct spec *s);   /* NULL when absent */
int spec_stdin(const struct spec *s);
int spec_stdin_once(const struct spec *s);
int spec_tty(const struct spec *s);
size_t spec_cgroup_count(const struct spec *s);
const char *spec_cgroup(const struct spec *s, size_t i);
const char *spec_device_filter(const struct spec *s); /* NULL when absent */

/*
 * In the freshly forked container init (already in the right PID namespace):
 * new mount namespace, rootfs, mounts, pivot_root, cwd, rlimits, oom score,
 * user and groups, capabilities, no_new_privs, seccomp. Returns 0 when the
 * process is ready to exec, -1 with a message in err.
 */
int container_setup(const struct spec *s, char *err, size_t errlen);

/* The file the spec's program names, searched as execvp does but in the
 * spec's PATH, into out: 0, or -1 with errno as execve would set it. */
int container_resolve(const struct spec *s, char *out, size_t cap);

/* execve of the spec's args with its env (of `path`, as container_resolve
 * found it), the seccomp filter of a no_new_privs spec loaded right before;
 * returns only on failure (errno set). */
void container_exec(const struct spec *s);
void container_exec_file(const struct spec *s, const char *path);

/*
 * For exec into a running container: joins every namespace of `pid` (user
 * excluded: mnt, pid for children, net, ipc, uts, cgroup) and its cgroups:
 * the spec's "cgroup" dirs, or without any those `pid` is in. A spec without
 * "oom-score-adj" gets `pid`'s. The caller forks afterwards so the child
 * lands in the PID namespace.
 */
int container_join(int pid, struct spec *s, char *err, size_t errlen);

/* Writes `pid` into DIR/cgroup.procs. 0 or -1 with errno set. */
int cgroup_add(const char *dir, pid_t pid);

/* Adds `pid` to every "cgroup" dir of the spec; on failure *which names the dir.
 * With `joined` (a bit per dir, the first 64), dirs marked there (and still
 * there) are skipped and those joined get marked; with `keep_going` a failure is passed over
 * (a later call retries it) and the result is 0. */
int cgroup_add_all(const struct spec *s, pid_t pid, unsigned long long *joined, int keep_going,
		   const char **which);

/*
 * Enters the spec's PID namespace for the caller's children: the pinned pod
 * namespace (setns), a new one ("new": unshare) or none ("host"). The caller
 * forks afterwards. 0 or -1 with errno set.
 */
int container_enter_pidns(const struct spec *s);

/* Joins the spec's netns, ipcns and utsns (those given). 0, or -1 with errno
 * set and *which naming the namespace file. */
int container_enter_pod_namespaces(const struct spec *s, const char **which);

/*
 * The process part of the spec, shared by container_setup and exec: cwd,
 * rlimits, oom score, user and groups, capabilities, no_new_privs, seccomp.
 */
int container_process_setup(const struct spec *s, char *err, size_t errlen);

/*
 * What the set-up could not do without failing (a capability or an OOM score
 * the runtime cannot grant), "; " between, "" when nothing. Kept, not
 * printed: the init's stderr is the container's log. The init hands them to
 * its monitor, which reports them to the server with "created".
 */
const char *spec_warnings(void);

#endif
