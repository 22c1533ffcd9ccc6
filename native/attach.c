/* The monitor's attach socket; see attach.h. */
#include "attach.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int att_listen(struct att *a, int dirfd, const char *name, const struct att_hooks *hooks)
{
	int fd;

	a->lfd = -1;
	a->hooks = *hooks;
	for (int i = 0; i < ATT_MAX_CLIENTS; i++)
		a->c[i].fd = -1;

	fd = listen_unix_at(dirfd, name);
	if (fd < 0)
		return -1;
	a->lfd = fd;
	return 0;
}

static void drop(struct att *a, struct att_client *c)
{
	if (c->fd < 0)
		return;
	close(c->fd);
	c->fd = -1;
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
	c->outoff = c->outlen = c->outcap = 0;
	c->inlen = 0;
	if (c->attached && (c->flags & ATT_STDIN) && !c->stdin_done) {
		c->stdin_done = 1;
		a->hooks.stdin_done(a->hooks.ctx);
	}
	c->attached = 0;
}

/* A complete frame is held back: only input waits (for room). */
static int frame_ready(const struct att_client *c)
{
	return c->inlen >= ATT_HDR &&
	       c->inlen >= ATT_HDR + (((size_t)(unsigned char)c->in[1] << 24) | ((size_t)(unsigned char)c->in[2] << 16) |
				      ((size_t)(unsigned char)c->in[3] << 8) | (size_t)(unsigned char)c->in[4]);
}

int att_pollfds(struct att *a, struct pollfd *pfds)
{
	int n = 0;

	pfds[n].fd = a->lfd;
	pfds[n].events = POLLIN;
	pfds[n++].revents = 0;
	for (int i = 0; i < ATT_MAX_CLIENTS; i++) {
		struct att_client *c = &a->c[i];

		int held = frame_ready(c);

		/* A held-back frame: not even POLLHUP until there is room (poll
		 * would report a hung-up client again and again). */
		pfds[n].fd = held && c->outlen == 0 ? -1 : c->fd;
		pfds[n].events = (held ? 0 : POLLIN) | (c->outlen > 0 ? POLLOUT : 0);
		pfds[n++].revents = 0;
	}
	return n;
}

/* Sends what is queued; drops the client on a hard error. */
static void flush_out(struct att *a, struct att_client *c)
{
	while (c->fd >= 0 && c->outlen > 0) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			drop(a, c);
			return;
		}
		c->outoff += (size_t)n;
		c->outlen -= (size_t)n;
	}
	if (c->outlen == 0)
		c->outoff = 0;
}

/* Queues one frame; 0, or -1 when the client was dropped (too far behind). */
static int queue(struct att *a, struct att_client *c, char type, const char *data, size_t n)
{
	size_t need = ATT_HDR + n;

	if (c->outlen + need > ATT_OUT_MAX) {
		fprintf(stderr, "peapod-monitor: attach: dropping a client %zu bytes behind\n", c->outlen);
		drop(a, c);
		return -1;
	}
	if (c->outoff + c->outlen + need > c->outcap) {
		if (c->outoff > 0) {
			memmove(c->out, c->out + c->outoff, c->outlen);
			c->outoff = 0;
		}
		if (c->outlen + need > c->outcap) {
			size_t cap = c->outcap ? c->outcap : 65536;
			char *p;

			while (cap < c->outlen + need)
				cap *= 2;
			p = realloc(c->out, cap);
			if (p == NULL) {
				drop(a, c);
				return -1;
			}
			c->out = p;
			c->outcap = cap;
		}
	}
	{
		char *h = c->out + c->outoff + c->outlen;
		uint32_t len = (uint32_t)n;

		h[0] = type;
		h[1] = (char)(len >> 24);
		h[2] = (char)(len >> 16);
		h[3] = (char)(len >> 8);
		h[4] = (char)len;
		if (n)
			memcpy(h + ATT_HDR, data, n);
	}
	c->outlen += need;
	return 0;
}

void att_broadcast(struct att *a, char type, const char *data, size_t n)
{
	unsigned want = type == 'E' ? ATT_STDERR : ATT_STDOUT;

	for (int i = 0; i < ATT_MAX_CLIENTS; i++) {
		struct att_client *c = &a->c[i];

		if (c->fd < 0 || !c->attached || !(c->flags & want))
			continue;
		for (size_t off = 0; off < n && c->fd >= 0; off += ATT_FRAME_MAX) {
			size_t k = n - off < ATT_FRAME_MAX ? n - off : ATT_FRAME_MAX;

			if (queue(a, c, type, data + off, k) < 0)
				break;
		}
		flush_out(a, c);
	}
}

/* Runs the complete frames in the client's buffer; input waits for room. */
static void run_frames(struct att *a, struct att_client *c)
{
	while (c->fd >= 0 && frame_ready(c)) {
		size_t len = c->inlen - ATT_HDR;
		const char *p = c->in + ATT_HDR;
		char type = c->in[0];

		len = ((size_t)(unsigned char)c->in[1] << 24) | ((size_t)(unsigned char)c->in[2] << 16) |
		      ((size_t)(unsigned char)c->in[3] << 8) | (size_t)(unsigned char)c->in[4];
		if (!c->attached && type != 'A') {
			drop(a, c);
			return;
		}
		switch (type) {
		case 'A':
			if (c->attached || len < 1) {
				drop(a, c);
				return;
			}
			c->attached = 1;
			c->flags = (unsigned char)p[0] & (ATT_STDIN | ATT_STDOUT | ATT_STDERR);
			break;
		case 'I':
			if ((c->flags & ATT_STDIN) && !c->stdin_done) {
				if (a->hooks.input_room(a->hooks.ctx) < len)
					return; /* held back until there is room */
				a->hooks.input(a->hooks.ctx, p, len);
			}
			break;
		case 'C':
			if ((c->flags & ATT_STDIN) && !c->stdin_done) {
				c->stdin_done = 1;
				a->hooks.stdin_done(a->hooks.ctx);
			}
			break;
		case 'R':
			if (len >= 4)
				a->hooks.resize(a->hooks.ctx, ((unsigned)(unsigned char)p[0] << 8) | (unsigned char)p[1],
						((unsigned)(unsigned char)p[2] << 8) | (unsigned char)p[3]);
			break;
		default:
			break; /* unknown frames are skipped */
		}
		c->inlen = 0;
	}
}

static void read_client(struct att *a, struct att_client *c)
{
	for (;;) {
		size_t want, len;
		ssize_t n;

		if (frame_ready(c)) {
			run_frames(a, c);
			if (c->fd < 0 || frame_ready(c))
				return;
		}
		/* Read the header, then exactly the rest of the frame. */
		if (c->inlen < ATT_HDR) {
			want = ATT_HDR - c->inlen;
		} else {
			len = ((size_t)(unsigned char)c->in[1] << 24) | ((size_t)(unsigned char)c->in[2] << 16) |
			      ((size_t)(unsigned char)c->in[3] << 8) | (size_t)(unsigned char)c->in[4];
			if (len > ATT_FRAME_MAX) {
				drop(a, c);
				return;
			}
			want = ATT_HDR + len - c->inlen;
		}
		n = read(c->fd, c->in + c->inlen, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			drop(a, c);
			return;
		}
		c->inlen += (size_t)n;
	}
}

static void accept_all(struct att *a)
{
	for (;;) {
		int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct att_client *c = NULL;

		if (fd < 0)
			return;
		for (int i = 0; i < ATT_MAX_CLIENTS; i++) {
			if (a->c[i].fd < 0) {
				c = &a->c[i];
				break;
			}
		}
		if (c == NULL) {
			close(fd);
			continue;
		}
		memset(c, 0, sizeof(*c));
		c->in = malloc(ATT_HDR + ATT_FRAME_MAX);
		if (c->in == NULL) {
			close(fd);
			c->fd = -1;
			continue;
		}
		c->fd = fd;
	}
}

void att_handle(struct att *a, const struct pollfd *pfds, int n)
{
	if (n < 1 + ATT_MAX_CLIENTS)
		return;
	for (int i = 0; i < ATT_MAX_CLIENTS; i++) {
		const struct pollfd *p = &pfds[1 + i];
		struct att_client *c = &a->c[i];

		if (p->fd < 0 || p->fd != c->fd || p->revents == 0)
			continue;
		if (p->revents & (POLLOUT | POLLERR))
			flush_out(a, c);
		if (c->fd >= 0 && (p->revents & (POLLIN | POLLHUP | POLLERR)))
			read_client(a, c);
	}
	if (pfds[0].revents & POLLIN)
		accept_all(a);
}

void att_resume_input(struct att *a)
{
	for (int i = 0; i < ATT_MAX_CLIENTS; i++)
		if (a->c[i].fd >= 0 && frame_ready(&a->c[i]))
			run_frames(a, &a->c[i]);
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void att_finish(struct att *a, int exit_code, int timeout_ms)
{
	char num[16];
	int len = snprintf(num, sizeof(num), "%d", exit_code);
	long long end = mono_ms() + timeout_ms;

	if (a->lfd >= 0)
		close(a->lfd);
	a->lfd = -1;
	for (int i = 0; i < ATT_MAX_CLIENTS; i++) {
		struct att_client *c = &a->c[i];

		if (c->fd < 0)
			continue;
		/* Room for the exit report even at the limit. */
		if (c->outlen + ATT_HDR + (size_t)len > ATT_OUT_MAX)
			drop(a, c);
		else if (queue(a, c, 'X', num, (size_t)len) == 0)
			flush_out(a, c);
	}
	for (;;) {
		struct pollfd p[ATT_MAX_CLIENTS];
		int n = 0;
		long long now = mono_ms();

		for (int i = 0; i < ATT_MAX_CLIENTS; i++)
			if (a->c[i].fd >= 0 && a->c[i].outlen > 0)
				p[n++] = (struct pollfd){ .fd = a->c[i].fd, .events = POLLOUT };
		if (n == 0 || now >= end)
			break;
		if (poll(p, (nfds_t)n, (int)(end - now)) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < ATT_MAX_CLIENTS; i++)
			if (a->c[i].fd >= 0 && a->c[i].outlen > 0)
				flush_out(a, &a->c[i]);
	}
	att_close(a);
}

void att_close(struct att *a)
{
	for (int i = 0; i < ATT_MAX_CLIENTS; i++) {
		struct att_client *c = &a->c[i];

		if (c->fd >= 0) {
			c->stdin_done = 1; /* no hooks at shutdown */
			drop(a, c);
		}
	}
	if (a->lfd >= 0)
		close(a->lfd);
	a->lfd = -1;
}
