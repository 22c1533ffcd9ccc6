/* The process part of a container, shared by the container init and exec:
 * limits, identity, capabilities, no_new_privs, seccomp; then the exec. */
#include "spec.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static int set_oom_score_adj(int v, char *err, size_t errlen)
{
	char buf[16];
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC), r = 0;
	int len = snprintf(buf, sizeof(buf), "%d", v);

	if (fd < 0 || write(fd, buf, (size_t)len) != len) {
		/* Lowering the score needs CAP_SYS_RESOURCE, which a nested or
		 * rootless runtime may lack; the container must still start. */
		if (errno == EACCES || errno == EPERM)
			spec_warn("cannot set oom_score_adj to %d: %s", v, strerror(errno));
		else
			r = spec_err(err, errlen, "set oom_score_adj to %d: %s", v, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return r;
}

int user_switch(const struct spec *s, int keep_caps, char *err, size_t errlen)
{
	if (!s->has_user)
		return 0;
	/* Keep the permitted set across setuid so capset can grant the spec's
	 * caps to a non-root user; without a caps directive, the kernel's
	 * default (drop everything for non-root) is what we want. */
	if (keep_caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return spec_err(err, errlen, "PR_SET_KEEPCAPS: %s", strerror(errno));
	if (setgroups(s->ngroups, s->groups) < 0)
		return spec_err(err, errlen, "setgroups: %s", strerror(errno));
	if (setgid(s->gid) < 0)
		return spec_err(err, errlen, "setgid %u: %s", (unsigned)s->gid, strerror(errno));
	if (setuid(s->uid) < 0)
		return spec_err(err, errlen, "setuid %u: %s", (unsigned)s->uid, strerror(errno));
	if (keep_caps && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return spec_err(err, errlen, "PR_SET_KEEPCAPS: %s", strerror(errno));
	return 0;
}

int container_process_setup(const struct spec *s, char *err, size_t errlen)
{
	/* Compiled now, loaded as runc does: with no_new_privs as late as
	 * possible, in container_exec_file right before the execve, so that a
	 * Localhost profile need allow none of our set-up's system calls; without
	 * it early, since loading then needs CAP_SYS_ADMIN, gone after the user
	 * switch (the default profile blocks none of the calls that follow:
	 * setgroups, set*id, capset, prctl, chdir; a Localhost one must allow
	 * them and those of the exec path). */
	int confined = s->seccomp == SECCOMP_DEFAULT || s->seccomp == SECCOMP_PROFILE;

	if (confined && seccomp_prepare(s, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < s->nrlimits; i++)
		if (setrlimit(s->rlimits[i].resource, &s->rlimits[i].lim) < 0)
			return spec_err(err, errlen, "setrlimit %s: %s", s->rlimits[i].name, strerror(errno));
	if (s->has_oom && set_oom_score_adj(s->oom_score_adj, err, errlen) < 0)
		return -1;
	/* Dropping from the bounding set needs CAP_SETPCAP, which the spec's
	 * caps may not include: do it while still fully privileged. */
	if (s->has_caps && caps_drop_bounding(s->caps, err, errlen) < 0)
		return -1;
	if (!s->no_new_privs && seccomp_install() < 0)
		return spec_err(err, errlen, "load seccomp filter: %s", strerror(errno));
	if (user_switch(s, s->has_caps, err, errlen) < 0)
		return -1;
	if (s->has_caps && caps_set(s->caps, err, errlen) < 0)
		return -1;
	/* After the switch, so the user's own permissions apply. */
	if (s->cwd != NULL && chdir(s->cwd) < 0)
		return spec_err(err, errlen, "chdir to cwd %s: %s", s->cwd, strerror(errno));
	if (s->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return spec_err(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	return 0;
}

/* What execve would run: a regular file we may execute (access() says no
 * for a noexec mount too); errno as execve would set it. */
static int runnable(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = EACCES;
		return -1;
	}
	return access(path, X_OK);
}

/* execvpe's search, but PATH comes from the container's env (the host's
 * means nothing inside), and no /bin/sh fallback for ENOEXEC scripts. */
int container_resolve(const struct spec *s, char *out, size_t cap)
{
	const char *file = s->args[0], *path = NULL;
	int saw_eacces = 0;

	if (strchr(file, '/') != NULL) {
		if ((size_t)snprintf(out, cap, "%s", file) >= cap) {
			errno = ENAMETOOLONG;
			return -1;
		}
		return runnable(out);
	}
	for (size_t i = 0; i < s->nenv; i++)
		if (strncmp(s->env[i], "PATH=", 5) == 0)
			path = s->env[i] + 5; /* the last one wins, as with getenv on a rebuilt env */
	if (path == NULL)
		path = DEFAULT_PATH;
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		int dlen = (int)(end - p);

		/* An empty element means the current directory. */
		if ((size_t)snprintf(out, cap, "%.*s%s%s", dlen, p, dlen ? "/" : "", file) < cap) {
			if (runnable(out) == 0)
				return 0;
			if (errno == EACCES)
				saw_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP &&
				 errno != ENAMETOOLONG)
				return -1;
		}
		if (*end == '\0')
			break;
		p = end;
	}
	errno = saw_eacces ? EACCES : ENOENT;
	return -1;
}

void container_exec_file(const struct spec *s, const char *path)
{
	if (seccomp_install() == 0)
		execve(path, s->args, s->env);
}

void container_exec(const struct spec *s)
{
	char path[PATH_MAX];

	if (container_resolve(s, path, sizeof(path)) == 0)
		container_exec_file(s, path);
}
