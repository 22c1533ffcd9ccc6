/* Small helpers shared by the peapod native tools. */
#include "util.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int sys_close_range(unsigned int lo, unsigned int hi)
{
	if (lo > hi)
		return 0;
#ifdef SYS_close_range
	return (int)syscall(SYS_close_range, lo, hi, 0);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* Close every fd >= lo except keep, walking /proc/self/fd. */
static int close_fds_proc(int lo, int keep)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);

		if (*e->d_name == '\0' || *end != '\0')
			continue;
		if (fd < lo || fd == keep || fd == dirfd(d))
			continue;
		close((int)fd);
	}
	closedir(d);
	return 0;
}

int close_fds_except(int keep)
{
	int r;

	if (keep < 3) {
		r = sys_close_range(3, UINT_MAX);
	} else {
		r = sys_close_range(3, (unsigned int)keep - 1);
		if (r == 0)
			r = sys_close_range((unsigned int)keep + 1, UINT_MAX);
	}
	if (r == 0)
		return 0;
	if (errno != ENOSYS && errno != EINVAL)
		return -1;
	return close_fds_proc(3, keep);
}

int close_fds_from(int lo)
{
	if (lo < 0)
		lo = 0;
	if (sys_close_range((unsigned int)lo, UINT_MAX) == 0)
		return 0;
	if (errno != ENOSYS && errno != EINVAL)
		return -1;
	return close_fds_proc(lo, -1);
}

int write_file_atomic(int dirfd, const char *name, const void *buf, size_t len, int mode)
{
	char tmp[256];
	int fd, err;

	if ((size_t)snprintf(tmp, sizeof(tmp), ".%s.tmp", name) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -1;
	if (write_all(fd, buf, len) < 0 || fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	err = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(dirfd, tmp, 0);
	errno = err;
	return -1;
}

int stdio_to_devnull(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		/* dup2 clears O_CLOEXEC on the copy; if fd == i, clear it here. */
		if (fd == i) {
			if (fcntl(fd, F_SETFD, 0) < 0)
				return -1;
		} else if (dup2(fd, i) < 0) {
			return -1;
		}
	}
	if (fd > 2)
		close(fd);
	return 0;
}

int reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++) {
		/* SIGKILL/SIGSTOP and glibc-internal signals fail with EINVAL. */
		if (sigaction(sig, &sa, NULL) < 0 && errno != EINVAL)
			return -1;
	}
	sigemptyset(&none);
	return sigprocmask(SIG_SETMASK, &none, NULL);
}

static int parse_u32(const char *s, const char *end, uint32_t *out)
{
	uint64_t v = 0;

	if (s == end)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v >= UINT32_MAX) /* (uid_t)-1 means "unchanged" to the kernel */
			return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

int parse_ids(const char *s, uid_t *uid, gid_t *gid)
{
	const char *colon = strchr(s, ':');
	uint32_t u, g;

	if (colon == NULL)
		return -1;
	if (parse_u32(s, colon, &u) < 0 ||
	    parse_u32(colon + 1, colon + 1 + strlen(colon + 1), &g) < 0)
		return -1;
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}

const char *opt_value(int argc, char **argv, int *i, void (*usage)(FILE *), const char *name)
{
	size_t len = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, len) != 0)
		return NULL;
	if (a[len] == '=')
		return a + len + 1;
	if (a[len] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		fprintf(stderr, "%s: %s needs a value\n", program_invocation_short_name, name);
		usage(stderr);
		exit(2);
	}
	return argv[++*i];
}

int listen_unix_at(int dirfd, const char *name)
{
	struct sockaddr_un sa;
	mode_t old;
	int fd, r, err;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	/* Through the directory fd, so long state paths fit in sun_path. */
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dirfd, name) >=
	    sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		goto fail;
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 16) < 0)
		goto fail;
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

int proc_starttime(pid_t pid, char *buf, size_t len)
{
	char path[32], stat[1024];
	const char *p;
	size_t n;
	ssize_t got;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	got = read_all(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (got <= 0)
		return -1;
	stat[got] = '\0';
	/* comm (field 2) may hold spaces and ')': count fields after the last ')'. */
	p = strrchr(stat, ')');
	for (field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (!p || (n = strspn(++p, "0123456789")) == 0 || n >= len) {
		errno = EINVAL;
		return -1;
	}
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 0;
}

void failpoint_delay(const char *name)
{
	const char *p = getenv("PEAPOD_FAILPOINTS");
	size_t n = strlen(name);

	/* Items "name[=action]", separated by commas. */
	while (p && *p) {
		const char *next = strchr(p, ',');

		if (strncmp(p, name, n) == 0 && strncmp(p + n, "=delay-", 7) == 0) {
			char *end;
			long ms = strtol(p + n + 7, &end, 10);
			struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

			if (end != p + n + 7 && ms >= 0 && (*end == '\0' || *end == ','))
				while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
					;
			return;
		}
		p = next ? next + 1 : NULL;
	}
}
