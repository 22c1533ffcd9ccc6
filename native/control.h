/* The monitor's control socket: a unix stream socket; each command is one
 * line, each reply one line. Connections are handled non-blocking from the
 * monitor's poll loop. */
#ifndef PEAPOD_CONTROL_H
#define PEAPOD_CONTROL_H

#include <poll.h>
#include <stddef.h>

#define CTL_MAX_CLIENTS 16
#define CTL_LINE_MAX 256

struct ctl_client {
	int fd;       /* -1: slot free */
	int waiting;  /* a command's reply is deferred */
	size_t len;
	char buf[CTL_LINE_MAX];
};

/* Returns the reply line (without newline) or NULL to defer it (ctl_reply). */
typedef const char *(*ctl_handler)(void *ctx, int client, const char *line);

struct ctl {
	int lfd;
	ctl_handler handler;
	void *ctx;
	struct ctl_client c[CTL_MAX_CLIENTS];
};

/* Binds and listens on dirfd/name (mode 0600; works for any length of the
 * directory path). -1 with errno on error. */
int ctl_listen(struct ctl *ctl, int dirfd, const char *name, ctl_handler handler, void *ctx);

/* Takes a connected socket (the server's, see notify_keep) as one more
 * client: its lines are commands like any other's. Closes fd when every
 * slot is taken. */
void ctl_adopt(struct ctl *ctl, int fd);

/* Appends the pollfds of the socket and its clients; returns how many. */
int ctl_pollfds(const struct ctl *ctl, struct pollfd *pfds);

/* Handles the events of the pollfds appended by ctl_pollfds. */
void ctl_handle(struct ctl *ctl, const struct pollfd *pfds, int n);

/* Sends the deferred reply of a client (no-op when it is gone). */
void ctl_reply(struct ctl *ctl, int client, const char *reply);

/* Closes the socket and every client. */
void ctl_close(struct ctl *ctl);

#endif
