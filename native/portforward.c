/* peapod-portforward: one port-forward connection into a pod (CRI PortForward).
 *
 *   peapod-portforward [--netns PATH] --port PORT
 *
 * Enters the network namespace pinned at PATH (none: stays in its own),
 * connects to 127.0.0.1:PORT there (then [::1]:PORT when refused), and
 * relays stdin to the connection and the connection to stdout. EOF on stdin
 * half-closes the connection (shutdown SHUT_WR); EOF from the connection
 * closes stdout. Exits 0 when both directions are done, 1 when the connection
 * fails (the reason on stderr as "peapod-portforward: <message>"), 2 for
 * usage errors. A separate process because a socket belongs to the network
 * namespace of the thread that creates it, and a JavaScript runtime creates
 * its sockets later, on its own schedule.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

#define PROG "peapod-portforward"

static int dial(int port)
{
	struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };
	int fd, e;

	v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	v6.sin6_addr = in6addr_loopback;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&v4, sizeof(v4)) == 0)
		return fd;
	e = errno;
	if (fd >= 0)
		close(fd);
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&v6, sizeof(v6)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	errno = e;
	return -1;
}

int main(int argc, char **argv)
{
	const char *netns = NULL;
	long port = 0;
	int sock, in_open = 1, out_open = 1;
	char *end;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--netns") == 0 && i + 1 < argc) {
			netns = argv[++i];
		} else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			errno = 0;
			port = strtol(argv[++i], &end, 10);
			if (errno || *end || port < 1 || port > 65535) {
				fprintf(stderr, PROG ": --port needs a port number, got '%s'\n", argv[i]);
				return 2;
			}
		} else {
			fprintf(stderr, "usage: " PROG " [--netns PATH] --port PORT\n");
			return 2;
		}
	}
	if (port == 0) {
		fprintf(stderr, "usage: " PROG " [--netns PATH] --port PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (close_fds_from(3) < 0) {
		fprintf(stderr, PROG ": closing inherited descriptors: %s\n", strerror(errno));
		return 1;
	}
	if (netns != NULL) {
		int fd = open(netns, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
			fprintf(stderr, PROG ": enter network namespace %s: %s\n", netns, strerror(errno));
			return 1;
		}
		close(fd);
	}
	sock = dial((int)port);
	if (sock < 0) {
		fprintf(stderr, PROG ": connect to localhost:%ld: %s\n", port, strerror(errno));
		return 1;
	}
	while (in_open || out_open) {
		struct pollfd p[2] = {
			{ .fd = in_open ? 0 : -1, .events = POLLIN },
			{ .fd = out_open ? sock : -1, .events = POLLIN },
		};
		char buf[32768];
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (p[0].revents) {
			n = read(0, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || write_all(sock, buf, (size_t)n) < 0) {
				in_open = 0;
				shutdown(sock, SHUT_WR);
			}
		}
		if (p[1].revents) {
			n = read(sock, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || write_all(1, buf, (size_t)n) < 0) {
				out_open = 0;
				close(1);
				/* Nothing more can be delivered: stop reading too when the
				 * connection was reset. */
				if (n < 0)
					in_open = 0;
			}
		}
	}
	return 0;
}
