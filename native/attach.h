/* The monitor's attach socket (DIR/attach.sock): clients that attach to the
 * container's stdio, as CRI Attach does. A unix stream socket carrying
 * frames in both directions:
 *
 *   [type: 1 byte][length: 4 bytes, big endian][payload: length bytes]
 *
 * payload at most ATT_FRAME_MAX bytes.
 *
 * Client -> monitor:
 *   'A'  attach (must be the first frame): 1 byte of flags, ATT_STDIN |
 *        ATT_STDOUT | ATT_STDERR; nothing is sent to the client before it
 *   'I'  input for the container's stdin (ignored without ATT_STDIN or when
 *        the container has no stdin)
 *   'C'  this client's stdin ended (like a detach, for stdin-once)
 *   'R'  terminal size: width and height, 2 bytes each, big endian
 *        (ignored without a tty)
 * Monitor -> client:
 *   'O'  stdout (with a tty: the terminal's output), to ATT_STDOUT clients
 *   'E'  stderr, to ATT_STDERR clients
 *   'X'  the container has exited and its output was sent; the exit code as
 *        decimal text; the monitor then closes the connection
 *
 * Output is broadcast to every attached client (and logged by the monitor);
 * there is no history. Everything is non-blocking from the monitor's poll
 * loop: a client whose unsent output exceeds ATT_OUT_MAX is dropped, so a
 * slow client never holds the container. Input is read from a client only
 * while the monitor has room for it (backpressure, no loss).
 */
#ifndef PEAPOD_ATTACH_H
#define PEAPOD_ATTACH_H

#include <poll.h>
#include <stddef.h>

#define ATT_MAX_CLIENTS 16
#define ATT_FRAME_MAX 32768
#define ATT_OUT_MAX (1u << 20)
#define ATT_HDR 5

enum { ATT_STDIN = 1, ATT_STDOUT = 2, ATT_STDERR = 4 };

struct att_hooks {
	void *ctx;
	/* Bytes of input the monitor can take now. */
	size_t (*input_room)(void *ctx);
	void (*input)(void *ctx, const char *data, size_t n);
	/* A client with ATT_STDIN sent 'C' or went away (once per client). */
	void (*stdin_done)(void *ctx);
	void (*resize)(void *ctx, unsigned width, unsigned height);
};

struct att_client {
	int fd;            /* -1: slot free */
	int attached;      /* 'A' received */
	unsigned flags;
	int stdin_done;    /* 'C' seen (or reported at drop) */
	size_t inlen;      /* bytes in in (at most one frame) */
	char *in;          /* ATT_HDR + ATT_FRAME_MAX */
	char *out;         /* queued output */
	size_t outoff, outlen, outcap;
};

struct att {
	int lfd;
	struct att_hooks hooks;
	struct att_client c[ATT_MAX_CLIENTS];
};

/* Binds and listens on dirfd/name (mode 0600). -1 with errno on error. */
int att_listen(struct att *a, int dirfd, const char *name, const struct att_hooks *hooks);

/* Appends the pollfds of the socket and its clients; returns how many. */
int att_pollfds(struct att *a, struct pollfd *pfds);

/* Handles the events of the pollfds appended by att_pollfds. */
void att_handle(struct att *a, const struct pollfd *pfds, int n);

/* Sends container output ('O' or 'E') to the attached clients that want it. */
void att_broadcast(struct att *a, char type, const char *data, size_t n);

/* Retries frames held back for want of input room. */
void att_resume_input(struct att *a);

/* Sends 'X' with the exit code, flushes for up to timeout_ms, closes all. */
void att_finish(struct att *a, int exit_code, int timeout_ms);

void att_close(struct att *a);

#endif
