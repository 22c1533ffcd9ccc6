/* Entering a running container (exec): its oom score, its cgroups, then its
 * namespaces. */
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

/* A cgroup or cgroup2 mount of our mount namespace. */
struct cgmount {
	int v2;
	char *superopts, *root, *dir;
};

struct cgmounts {
	struct cgmount *m;
	size_t n;
	char **lines; /* the mountinfo lines the fields point into */
};

static void cgmounts_free(struct cgmounts *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->lines[i]);
	free(t->lines);
	free(t->m);
}

/* The cgroup mounts, from one read of /proc/self/mountinfo (it grows with
 * every pod's mounts, so it is not read again per hierarchy). */
static int cgmounts_load(struct cgmounts *t)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int r = 0;

	t->m = NULL;
	t->lines = NULL;
	t->n = 0;
	if (f == NULL)
		return 0;
	while (r == 0 && getline(&line, &cap, f) > 0) {
		char *fld[5], *save = NULL, *sep, *fstype, *superopts;
		struct cgmount *nm;
		char **nl;
		int i;

		line[strcspn(line, "\n")] = '\0';
		sep = strstr(line, " - ");
		if (sep == NULL)
			continue;
		*sep = '\0';
		fstype = strtok_r(sep + 3, " ", &save);
		(void)strtok_r(NULL, " ", &save); /* source */
		superopts = strtok_r(NULL, " ", &save);
		if (fstype == NULL || superopts == NULL ||
		    (strcmp(fstype, "cgroup") != 0 && strcmp(fstype, "cgroup2") != 0))
			continue;
		save = NULL;
		for (i = 0; i < 5 && (fld[i] = strtok_r(i ? NULL : line, " ", &save)) != NULL; i++)
			;
		if (i < 5)
			continue;
		unescape(fld[3]); /* root of the mount inside the hierarchy */
		unescape(fld[4]); /* mount point */
		nm = realloc(t->m, (t->n + 1) * sizeof(*t->m));
		if (nm != NULL)
			t->m = nm;
		nl = realloc(t->lines, (t->n + 1) * sizeof(*t->lines));
		if (nl != NULL)
			t->lines = nl;
		if (nm == NULL || nl == NULL) {
			r = -1;
			break;
		}
		t->m[t->n] = (struct cgmount){ strcmp(fstype, "cgroup2") == 0, superopts, fld[3], fld[4] };
		t->lines[t->n++] = line; /* keeps the fields alive */
		line = NULL;
		cap = 0;
	}
	free(line);
	fclose(f);
	if (r < 0)
		cgmounts_free(t);
	return r;
}

/*
 * Finds where the hierarchy (v2 when ctrls is empty and v2 set) is mounted in
 * our mount namespace and builds the directory of `path` in it. Returns 0 and
 * a malloc'ed dir, or 1 when the hierarchy is not mounted (or this cgroup is
 * outside the mounted subtree).
 */
static int find_cgroup_dir(const struct cgmounts *t, const char *ctrls, int v2, const char *path, char **dir)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct cgmount *m = &t->m[i];
		size_t rootlen;

		if (v2 ? !m->v2 : m->v2 || !opts_match(m->superopts, ctrls))
			continue;
		rootlen = strcmp(m->root, "/") == 0 ? 0 : strlen(m->root);
		if (strncmp(path, m->root, rootlen) != 0 || (path[rootlen] != '/' && path[rootlen] != '\0'))
			continue;
		return asprintf(dir, "%s%s", m->dir, path + rootlen) < 0 ? -1 : 0;
	}
	return 1;
}

int cgroup_add(const char *dir, pid_t pid)
{
	char path[4096], num[32];
	int n = snprintf(num, sizeof(num), "%d\n", (int)pid), fd, r;

	if ((size_t)snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = write_all(fd, num, (size_t)n);
	if (close(fd) < 0)
		r = -1;
	return r;
}

int cgroup_add_all(const struct spec *s, pid_t pid, unsigned long long *joined, int keep_going,
		   const char **which)
{
	for (size_t i = 0; i < spec_cgroup_count(s); i++) {
		unsigned long long bit = i < 64 ? 1ULL << i : 0;

		/* A cgroup removed since (by hand) is joined again, and that fails. */
		if (joined != NULL && (*joined & bit) && access(spec_cgroup(s, i), F_OK) == 0)
			continue;
		*which = spec_cgroup(s, i);
		if (cgroup_add(*which, pid) == 0) {
			if (joined != NULL)
				*joined |= bit;
		} else if (!keep_going) {
			return -1;
		}
	}
	return 0;
}

/* Without the server's list (run-spec -j): the cgroups `pid` is in, found
 * through /proc/PID/cgroup and our cgroup mounts. */
static int join_cgroups(int pid, char *err, size_t errlen)
{
	char file[64], *line = NULL;
	struct cgmounts mounts;
	size_t cap = 0;
	FILE *f;
	int r = 0;

	/* Read before entering the cgroup namespace, so the paths are relative
	 * to the root our mounts show. */
	snprintf(file, sizeof(file), "/proc/%d/cgroup", pid);
	f = fopen(file, "re");
	if (f == NULL)
		return spec_err(err, errlen, "open %s: %s", file, strerror(errno));
	if (cgmounts_load(&mounts) < 0) {
		fclose(f);
		return spec_err(err, errlen, "read mountinfo: %s", strerror(errno));
	}
	while (r == 0 && getline(&line, &cap, f) > 0) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *dir = NULL;
		int found, v2;

		line[strcspn(line, "\n")] = '\0';
		if (c2 == NULL)
			continue;
		*c1 = *c2 = '\0';
		v2 = strcmp(line, "0") == 0 && c1[1] == '\0';
		if (!v2 && c1[1] == '\0')
			continue; /* unnamed v1 hierarchy: cannot be mounted, nothing to join */
		found = find_cgroup_dir(&mounts, c1 + 1, v2, c2 + 1, &dir);
		if (found < 0)
			r = spec_err(err, errlen, "out of memory");
		if (found != 0)
			continue; /* hierarchy not mounted here */
		if (cgroup_add(dir, getpid()) < 0)
			r = spec_err(err, errlen, "join cgroup %s: %s", dir, strerror(errno));
		free(dir);
	}
	free(line);
	fclose(f);
	cgmounts_free(&mounts);
	return r;
}

/* The exec's oom score, unless its spec gives one, is the init's, as runc
 * exec applies the container's: not the server's, inherited through us. */
static int inherit_oom_score_adj(int pid, struct spec *s, char *err, size_t errlen)
{
	char path[64], buf[16], *end;
	ssize_t n;
	long v;
	int fd;

	if (s->has_oom)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return spec_err(err, errlen, "open %s: %s", path, strerror(errno));
	n = read_all(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return spec_err(err, errlen, "read %s: %s", path, strerror(errno));
	buf[n] = '\0';
	v = strtol(buf, &end, 10);
	if (end == buf || (*end != '\n' && *end != '\0'))
		return spec_err(err, errlen, "%s: unexpected '%s'", path, buf);
	s->has_oom = 1;
	s->oom_score_adj = (int)v;
	return 0;
}

int container_join(int pid, struct spec *s, char *err, size_t errlen)
{
	const char *which = "";
	int fds[NNS];
	size_t i;
	int r = -1;

	for (i = 0; i < NNS; i++)
		fds[i] = -1;
	if (inherit_oom_score_adj(pid, s, err, errlen) < 0)
		return -1;
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
	if (spec_cgroup_count(s) > 0) {
		if (cgroup_add_all(s, getpid(), NULL, 0, &which) < 0) {
			spec_err(err, errlen, "join cgroup %s: %s", which, strerror(errno));
			goto out;
		}
	} else if (join_cgroups(pid, err, errlen) < 0) {
		goto out;
	}
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

static int enter_ns(const char *path, int type)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return -1;
	r = setns(fd, type);
	close(fd);
	return r;
}

int container_enter_pidns(const struct spec *s)
{
	const char *ns = spec_pidns(s);

	if (ns == NULL || strcmp(ns, "host") == 0)
		return 0;
	if (strcmp(ns, "new") == 0)
		return unshare(CLONE_NEWPID);
	return enter_ns(ns, CLONE_NEWPID);
}

int container_enter_pod_namespaces(const struct spec *s, const char **which)
{
	static const int types[3] = { CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS };

	for (size_t i = 0; i < 3; i++) {
		*which = spec_pod_ns(s, i);
		if (*which != NULL && enter_ns(*which, types[i]) < 0)
			return -1;
	}
	return 0;
}
