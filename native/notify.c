#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"
#include "util.h"

static const char *sock_path;
static const char *notify_key;
static int early_fd = -1;

void notify_setup(const char *socket_path, const char *key)
{
	sock_path = socket_path;
	notify_key = key;
}

/* Connects to sock_path; a path longer than sun_path goes through its directory's fd. */
static int connect_server(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const struct timeval limit = { .tv_sec = 2 };
	const char *slash = strrchr(sock_path, '/');
	int fd, dirfd = -1, r;

	if (strlen(sock_path) < sizeof(sa.sun_path)) {
		strcpy(sa.sun_path, sock_path);
	} else {
		char dir[4096];

		if (slash == NULL || (size_t)(slash - sock_path) >= sizeof(dir))
			return -1;
		memcpy(dir, sock_path, (size_t)(slash - sock_path));
		dir[slash - sock_path] = '\0';
		dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0)
			return -1;
		if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dirfd, slash + 1) >=
		    sizeof(sa.sun_path)) {
			close(dirfd);
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		/* A server that stopped accepting must not hang the helper. */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
		do
			r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		while (r < 0 && errno == EINTR);
		if (r < 0) {
			close(fd);
			fd = -1;
		}
	}
	if (dirfd >= 0)
		close(dirfd);
	return fd;
}

int notify_preconnect(void)
{
	if (sock_path == NULL || early_fd >= 0)
		return 0;
	early_fd = connect_server();
	return early_fd < 0 ? -1 : 0;
}

int notify_keep(int *keep, const char *word, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n, fd, r = -1, saved = errno;

	if (keep != NULL)
		*keep = -1;
	if (sock_path == NULL)
		return 0;
	n = snprintf(line, sizeof(line), "%s %s ", notify_key, word);
	if (n < 0 || (size_t)n >= sizeof(line))
		goto out;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	for (char *p = line + n; *p; p++)
		if (*p == '\n')
			*p = ' ';
	strcat(line, "\n");
	fd = early_fd >= 0 ? early_fd : connect_server();
	early_fd = -1;
	if (fd >= 0) {
		r = write_all(fd, line, strlen(line));
		if (keep != NULL && r == 0)
			*keep = fd;
		else if (close(fd) < 0)
			r = -1;
	}
out:
	errno = saved;
	return r;
}
