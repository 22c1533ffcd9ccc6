/* Entering a running container (exec): its cgroups, then its namespaces. */
#include "spec.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* mnt last: once in it, /proc and /sys/fs/cgroup are the container's. */
static const char *const ns_names[] = { "ipc", "uts", "net", "pid", "cgroup", "mnt" };
#define NNS (sizeof(ns_names) / sizeof(ns_names[0]))

/* Undoes mountinfo's octal escapes (\040 for space, ...) in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

static int has_opt(const char *opts, const char *want, size_t wlen)
{
	for (const char *o = opts; *o;) {
		size_t n = strcspn(o, ",");

		if (n == wlen && strncmp(o, want, n) == 0)
			return 1;
		o += n + (o[n] == ',');
	}
	return 0;
}

/* Every controller of a /proc/PID/cgroup line appears in the superblock options. */
static int opts_match(const char *superopts, const char *ctrls)
{
	for (const char *c = ctrls; *c;) {
		size_t n = strcspn(c, ",");

		if (!has_opt(superopts, c, n))
			return 0;
		c += n + (c[n] == ',');
	}
	return 1;
}

/*
 * Finds where the hierarchy (v2 when ctrls is empty and v2 set) is mounted in
 * our mount namespace and builds the directory of `path` in it. Returns 0 and
 * a malloc'ed dir, or 1 when the hierarchy is not mounted (or this cgroup is
 * outside the mounted subtree).
 */
static int find_cgroup_dir(const char *ctrls, int v2, const char *path, char **dir)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int r = 1;

	if (f == NULL)
		return 1;
	while (r == 1 && getline(&line, &cap, f) > 0) {
		char *fld[5], *save = NULL, *sep, *fstype, *superopts;
		size_t rootlen;
		int i;

		line[strcspn(line, "\n")] = '\0';
		sep = strstr(line, " - ");
		if (sep == NULL)
			continue;
		*sep = '\0';
		fstype = strtok_r(sep + 3, " ", &save);
		(void)strtok_r(NULL, " ", &save); /* source */
		superopts = strtok_r(NULL, " ", &save);
		if (fstype == NULL || superopts == NULL)
			continue;
		if (v2 ? strcmp(fstype, "cgroup2") != 0
		       : strcmp(fstype, "cgroup") != 0 || !opts_match(superopts, ctrls))
			continue;
		save = NULL;
		for (i = 0; i < 5 && (fld[i] = strtok_r(i ? NULL : line, " ", &save)) != NULL; i++)
			;
		if (i < 5)
			continue;
		unescape(fld[3]); /* root of the mount inside the hierarchy */
		unescape(fld[4]); /* mount point */
		rootlen = strcmp(fld[3], "/") == 0 ? 0 : strlen(fld[3]);
		if (strncmp(path, fld[3], rootlen) != 0 || (path[rootlen] != '/' && path[rootlen] != '\0'))
			continue;
		if (asprintf(dir, "%s%s", fld[4], path + rootlen) < 0)
			r = -1;
		else
			r = 0;
	}
	free(line);
	fclose(f);
	return r;
}

static int join_cgroups(int pid, char *err, size_t errlen)
{
	char file[64], *line = NULL;
	size_t cap = 0;
	FILE *f;
	int r = 0;

	/* Read before entering the cgroup namespace, so the paths are relative
	 * to the root our mounts show. */
	snprintf(file, sizeof(file), "/proc/%d/cgroup", pid);
	f = fopen(file, "re");
	if (f == NULL)
		return spec_err(err, errlen, "open %s: %s", file, strerror(errno));
	while (r == 0 && getline(&line, &cap, f) > 0) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *dir = NULL;
		char procs[4096], me[24];
		int found, fd, v2;

		line[strcspn(line, "\n")] = '\0';
		if (c2 == NULL)
			continue;
		*c1 = *c2 = '\0';
		v2 = strcmp(line, "0") == 0 && c1[1] == '\0';
		if (!v2 && c1[1] == '\0')
			continue; /* unnamed v1 hierarchy: cannot be mounted, nothing to join */
		found = find_cgroup_dir(c1 + 1, v2, c2 + 1, &dir);
		if (found < 0)
			r = spec_err(err, errlen, "out of memory");
		if (found != 0)
			continue; /* hierarchy not mounted here */
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
		snprintf(me, sizeof(me), "%d", getpid());
		fd = open(procs, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write_all(fd, me, strlen(me)) < 0)
			r = spec_err(err, errlen, "join cgroup %s: %s", procs, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(dir);
	}
	free(line);
	fclose(f);
	return r;
}

int container_join(int pid, char *err, size_t errlen)
{
	int fds[NNS];
	size_t i;
	int r = -1;

	for (i = 0; i < NNS; i++)
		fds[i] = -1;
	/* All namespace fds first: after setns(mnt) this /proc is not ours. */
	for (i = 0; i < NNS; i++) {
		char p[64], self[64];
		struct stat a, b;

		snprintf(p, sizeof(p), "/proc/%d/ns/%s", pid, ns_names[i]);
		snprintf(self, sizeof(self), "/proc/self/ns/%s", ns_names[i]);
		/* Already there (a host-network pod, say): nothing to do. */
		if (stat(p, &a) == 0 && stat(self, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
			continue;
		fds[i] = open(p, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0) {
			spec_err(err, errlen, "open %s: %s", p, strerror(errno));
			goto out;
		}
	}
	if (join_cgroups(pid, err, errlen) < 0)
		goto out;
	for (i = 0; i < NNS; i++) {
		if (fds[i] >= 0 && setns(fds[i], 0) < 0) {
			spec_err(err, errlen, "setns %s of pid %d: %s", ns_names[i], pid, strerror(errno));
			goto out;
		}
	}
	r = 0;
out:
	for (i = 0; i < NNS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r;
}

int container_enter_pidns(const struct spec *s)
{
	const char *ns = spec_pidns(s);
	int fd, r;

	if (ns == NULL || strcmp(ns, "host") == 0)
		return 0;
	if (strcmp(ns, "new") == 0)
		return unshare(CLONE_NEWPID);
	fd = open(ns, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = setns(fd, CLONE_NEWPID);
	close(fd);
	return r;
}
