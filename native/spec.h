/* The parsed container spec, shared by the launcher's files (not the monitor's
 * business: it only uses the accessors of container.h). */
#ifndef PEAPOD_SPEC_H
#define PEAPOD_SPEC_H

#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "container.h"

struct spec_mount {
	char *type, *src, *dst, *data; /* data NULL for "-" */
	unsigned long flags;           /* MS_* for mount(2) / the remount */
	unsigned long propagation;     /* MS_PRIVATE|MS_REC etc, 0 for none */
	int line;                      /* for error messages at set-up time */
};

struct spec_symlink {
	char *target, *linkpath;
	int line;
};

/* A "cgroup" dir the container sees in its /sys/fs/cgroup ("cgroupfs"). */
struct spec_cgroup_bind {
	size_t cgroup; /* index into cgroups */
	char *name;    /* in the tmpfs there; "." for /sys/fs/cgroup itself */
};

enum spec_cgroupfs { CGROUPFS_NONE = 0, CGROUPFS_RO, CGROUPFS_RW };

struct spec_rlimit {
	int resource;
	const char *name;
	struct rlimit lim;
};

/* A "device-allow" rule: an exception to the device filter's deny-all. */
#define SPEC_DEV_ANY (-1L) /* a major or minor of "*" */
/* Access bits, those of BPF_DEVCG_ACC_*. */
#define SPEC_DEV_MKNOD 1u
#define SPEC_DEV_READ 2u
#define SPEC_DEV_WRITE 4u
struct spec_device_rule {
	char type;         /* 'a' (any), 'b' or 'c' */
	long major, minor; /* or SPEC_DEV_ANY */
	unsigned access;   /* SPEC_DEV_* bits */
};

enum spec_seccomp { SECCOMP_UNSET = 0, SECCOMP_DEFAULT, SECCOMP_UNCONFINED, SECCOMP_PROFILE };

/* A "seccomp-rule" of a profile: NAME is resolved when the filter is built
 * (unknown names are skipped there, as runc does). */
#define SPEC_SECCOMP_MAX_ARGS 6
struct spec_seccomp_rule {
	char *name;
	uint32_t action; /* SCMP_ACT_*, with its errno */
	struct scmp_arg_cmp args[SPEC_SECCOMP_MAX_ARGS];
	unsigned int nargs;
};

/* A Localhost profile ("seccomp-default" and what follows it). */
struct spec_seccomp_profile {
	uint32_t default_action;
	char **arches; /* libseccomp names; those it does not know are skipped */
	size_t narches;
	int log, spec_allow; /* the SECCOMP_FILTER_FLAG_LOG / _SPEC_ALLOW flags */
	struct spec_seccomp_rule *rules;
	size_t nrules;
};

struct spec {
	char *pidns;  /* NULL = "host" */
	char *podns[3]; /* netns, ipcns, utsns paths to join (the monitor); NULL = stay */
	char *rootfs; /* NULL when absent (exec-only specs) */
	char *ov_lower, *ov_upper, *ov_work; /* all NULL without overlay */

	struct spec_mount *mounts;
	size_t nmounts;
	struct spec_symlink *symlinks;
	size_t nsymlinks;
	char **masks;
	size_t nmasks;
	char **readonly;
	size_t nreadonly;
	int readonly_rootfs;

	char *cwd;
	int has_user;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t ngroups;
	char **env;  /* NULL-terminated */
	size_t nenv;
	char **args; /* NULL-terminated, at least one */
	size_t nargs;
	int has_caps;
	uint64_t caps;
	int no_new_privs;
	enum spec_seccomp seccomp;
	struct spec_seccomp_profile profile; /* SECCOMP_PROFILE only */
	struct spec_rlimit *rlimits;
	size_t nrlimits;
	int has_oom;
	int oom_score_adj;
	char **cgroups;
	size_t ncgroups;
	enum spec_cgroupfs cgroupfs;
	struct spec_cgroup_bind *cgroup_binds;
	size_t ncgroup_binds;
	struct spec_symlink *cgroup_links; /* linkpath: a name in the tmpfs */
	size_t ncgroup_links;
	char *device_filter; /* cgroup2 dir of the BPF device filter (monitor); NULL: none */
	struct spec_device_rule *device_rules;
	size_t ndevice_rules;
	char *log;
	int stdin_open, stdin_once, tty;
};

/* snprintf into err; always returns -1 so callers can `return fail(...)`. */
int spec_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Keeps a set-up problem that does not stop the container (see spec_warnings). */
void spec_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Set-up steps, one per file; each returns 0 or -1 with a message in err. */
int mounts_setup(const struct spec *s, char *err, size_t errlen);   /* mounts.c */
int caps_drop_bounding(uint64_t keep, char *err, size_t errlen);     /* caps.c */
int caps_set(uint64_t caps, char *err, size_t errlen);               /* caps.c */
int user_switch(const struct spec *s, int keep_caps, char *err, size_t errlen); /* user.c */
/* seccomp.c: compiles the spec's filter (default or profile); seccomp_install
 * loads it with nothing but seccomp(2) calls (0, or -1 with errno set; 0 with
 * nothing compiled or loaded already). */
int seccomp_prepare(const struct spec *s, char *err, size_t errlen);
int seccomp_install(void);
scmp_filter_ctx seccomp_profile_filter(const struct spec_seccomp_profile *prof, char *err, size_t errlen); /* seccomp-profile.c */

/* A filter with that default action that leaves no_new_privs alone; NULL
 * with a message in err. (seccomp.c) */
scmp_filter_ctx seccomp_filter_new(uint32_t default_action, char *err, size_t errlen);

#endif
