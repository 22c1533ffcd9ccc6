/* The monitor's control socket; see control.h. */
#include "control.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int ctl_listen(struct ctl *ctl, int dirfd, const char *name, ctl_handler handler, void *ctx)
{
	int fd;

	ctl->lfd = -1;
	ctl->handler = handler;
	ctl->ctx = ctx;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		ctl->c[i].fd = -1;

	fd = listen_unix_at(dirfd, name);
	if (fd < 0)
		return -1;
	ctl->lfd = fd;
	return 0;
}

int ctl_pollfds(const struct ctl *ctl, struct pollfd *pfds)
{
	int n = 0;

	pfds[n].fd = ctl->lfd;
	pfds[n].events = POLLIN;
	pfds[n++].revents = 0;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		pfds[n].fd = ctl->c[i].fd; /* negative fds are ignored by poll */
		pfds[n].events = ctl->c[i].waiting ? 0 : POLLIN;
		pfds[n++].revents = 0;
	}
	return n;
}

static void drop(struct ctl_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->waiting = 0;
	c->len = 0;
}

static void send_line(struct ctl_client *c, const char *reply)
{
	char line[CTL_LINE_MAX + 64];
	int n = snprintf(line, sizeof(line), "%s\n", reply);

	if (n < 0 || (size_t)n >= sizeof(line)) {
		/* Cut long replies; keep the line ending. */
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* Replies are tiny: a full socket buffer means a stuck client. */
	if (send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
		drop(c);
}

/* Runs the complete lines in the client's buffer, up to a deferred one. */
static void run_lines(struct ctl *ctl, int i)
{
	struct ctl_client *c = &ctl->c[i];

	while (c->fd >= 0 && !c->waiting) {
		char *nl = memchr(c->buf, '\n', c->len);
		const char *reply;
		size_t used;

		if (nl == NULL)
			break;
		*nl = '\0';
		if (nl > c->buf && nl[-1] == '\r')
			nl[-1] = '\0';
		used = (size_t)(nl - c->buf) + 1;
		reply = ctl->handler(ctl->ctx, i, c->buf);
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		if (reply == NULL)
			c->waiting = 1;
		else
			send_line(c, reply);
	}
}

/* Gives a non-blocking connection a client slot; refuses it when all are taken. */
static void add_client(struct ctl *ctl, int fd)
{
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		if (ctl->c[i].fd < 0) {
			ctl->c[i].fd = fd;
			ctl->c[i].waiting = 0;
			ctl->c[i].len = 0;
			return;
		}
	}
	static const char busy[] = "error too many connections\n";

	(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static void accept_all(struct ctl *ctl)
{
	for (;;) {
		int fd = accept4(ctl->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return; /* EAGAIN, or a transient error: poll again */
		add_client(ctl, fd);
	}
}

void ctl_adopt(struct ctl *ctl, int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		close(fd);
		return;
	}
	add_client(ctl, fd);
}

static void read_client(struct ctl *ctl, int i)
{
	struct ctl_client *c = &ctl->c[i];

	for (;;) {
		ssize_t n;

		if (c->len == sizeof(c->buf)) {
			send_line(c, "error line too long");
			drop(c);
			return;
		}
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			drop(c);
			return;
		}
		c->len += (size_t)n;
		run_lines(ctl, i);
		if (c->fd < 0 || c->waiting)
			return;
	}
}

void ctl_handle(struct ctl *ctl, const struct pollfd *pfds, int n)
{
	if (n < 1 + CTL_MAX_CLIENTS)
		return;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		const struct pollfd *p = &pfds[1 + i];

		if (p->fd < 0 || p->fd != ctl->c[i].fd || p->revents == 0)
			continue;
		if (p->revents & POLLIN)
			read_client(ctl, i);
		else if (p->revents & (POLLHUP | POLLERR))
			drop(&ctl->c[i]);
	}
	if (pfds[0].revents & POLLIN)
		accept_all(ctl);
}

void ctl_reply(struct ctl *ctl, int client, const char *reply)
{
	struct ctl_client *c;

	if (client < 0 || client >= CTL_MAX_CLIENTS)
		return;
	c = &ctl->c[client];
	if (c->fd < 0 || !c->waiting)
		return;
	c->waiting = 0;
	send_line(c, reply);
	run_lines(ctl, client);
}

void ctl_close(struct ctl *ctl)
{
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		drop(&ctl->c[i]);
	if (ctl->lfd >= 0)
		close(ctl->lfd);
	ctl->lfd = -1;
}
