/* peapod-monitor: the per-container monitor (conmon-style).
 *
 *   peapod-monitor --spec SPECFILE --dir DIR [--notify SOCKET --notify-key KEY]
 *   peapod-monitor --wait FIFO [--notify SOCKET]      (a spare; see await_claim)
 *
 * The monitor becomes a session leader, joins the pod's net/IPC/UTS
 * namespaces and (for its child only) the PID namespace the spec names,
 * forks the container init and lets it set itself up (container_setup).
 * The monitor reports it created and puts it into the spec's cgroups that
 * exist by then (the server makes them meanwhile, as runc create joins
 * them). The init then waits for "start", when the monitor puts it into the
 * cgroups it is not in yet and lets it execute the container's program, so
 * create and start are separate steps. From then on the monitor owns the
 * container's stdout/stderr (written to the CRI log file of the spec) and
 * its exit status, and needs the server no more.
 *
 * Stdout contract: on success, "<init pid>\n" (pid as seen by the caller),
 * then stdout and stderr are closed (stderr goes on into DIR/monitor.log).
 * On failure: a message on stderr, nothing on stdout, exit status 1 (2 for
 * usage errors), nothing left running. With --notify the same goes to the
 * server's socket (notify.h): "KEY created PID START [WARNINGS]" (WARNINGS:
 * spec_warnings of the init) or "KEY error MESSAGE", and
 * "KEY exited CODE" once exit.json is written. The connection that carried
 * "created" stays open as one more control client (commands and replies as
 * on control.sock below): the server that is waiting to start the container
 * asks on it, with no connection to make then; it may close it at any time.
 *
 * Files in DIR (the server creates DIR):
 *   control.sock   unix stream socket, mode 0600; one command per line, one
 *                  reply line each:
 *                    start   -> "ok STARTED_AT" (ns since the epoch, as in
 *                               monitor.json) once the init is let go to
 *                               exec its program (found at set-up), or
 *                               "error <message>" (the init then exits
 *                               127 for a missing program, else 126; on a
 *                               failure before the exec, a cgroup it cannot
 *                               join, the monitor kills it: a failed start
 *                               is final)
 *                    reopen  -> "ok" when the log path was opened anew
 *                               (after a rename by log rotation), or
 *                               "error <message>"
 *                    ping    -> "ok <init pid>"
 *                    other   -> "error unknown command"
 *                  removed when the monitor exits.
 *   attach.sock    unix stream socket, mode 0600: CRI Attach clients (framed
 *                  protocol in attach.h); removed when the monitor exits.
 *   monitor.json   {"monitorPid":N,"initPid":N}, plus "startedAt":"<ns>"
 *                  once started; written atomically.
 *   monitor.log    the monitor's own messages after start-up.
 *   exit.json      written atomically when the init has exited and its
 *                  output is in the log:
 *                  {"exitCode":N,"signal":S,"finishedAt":"<ns>","startedAt":"<ns>"}
 *                  exitCode is 128+S for death by signal S (S is 0 otherwise);
 *                  times are nanoseconds since the epoch as decimal strings,
 *                  startedAt "0" when the program never ran; when the start
 *                  failed, "error":"<message>" is added.
 *
 * Stdio of the container (spec directives stdin, stdin-once, tty):
 *   - no tty: stdout and stderr are pipes read by the monitor; stdin is
 *     /dev/null, or with "stdin 1" a pipe whose write end the monitor holds
 *     and feeds from attached clients (never closed while no client is there;
 *     with "stdin-once" closed after the first client with stdin detaches).
 *   - tty: after container_setup (mount namespace, pivot_root, user, seccomp
 *     done) the init opens /dev/ptmx, i.e. a pty of the container's own
 *     devpts instance (so the slave is owned by the container's user and
 *     visible inside as /dev/pts/N; no host pty is exposed), makes the slave
 *     its controlling terminal (it is a session leader already) and its fds
 *     0, 1 and 2, and hands the master to the monitor with SCM_RIGHTS on the
 *     sync socket (a SOCK_SEQPACKET pair) in its "ready" record. The
 *     monitor logs the master's output as stdout (a "\r\n" ends a line like
 *     "\n"), writes client input to it and applies resizes (TIOCSWINSZ).
 *     stdin-once on a tty sends the terminal's VEOF character (^D), which a
 *     reader in canonical mode sees as end of file; closing the master would
 *     hang up the whole session instead.
 *
 * SIGTERM/SIGINT to the monitor kill the init with SIGKILL (and the monitor
 * then records the exit as usual). The monitor does not set a parent-death
 * signal on the container: a crashed monitor does not take the workload down.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "attach.h"
#include "container.h"
#include "control.h"
#include "devices.h"
#include "log.h"
#include "notify.h"
#include "util.h"

#define PROG "peapod-monitor"
#define CONTROL_SOCK "control.sock"
#define ATTACH_SOCK "attach.sock"
#define INBUF_MAX (256 * 1024) /* input for the container not yet written */
#define DRAIN_QUIET_MS 250 /* after the exit: stop reading once this quiet */
#define DRAIN_MAX_MS 2000  /* ... or after this long in any case */

/* ---- init <-> monitor sync records (over a CLOEXEC pipe) ------------------ */

enum { REC_READY = 'R', REC_SETUP_FAILED = 'S', REC_EXEC_FAILED = 'E' };

struct rec {
	char type;
	char pad;
	unsigned short len;
	int err;
	char msg[1024];
};
#define REC_HDR 8

/* One record on the sync socket; with pass_fd >= 0 that fd travels along
 * (SCM_RIGHTS). */
static int report_fd(int fd, char type, int err, const char *msg, int pass_fd)
{
	struct rec r;
	size_t len = strlen(msg);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov;
	struct msghdr mh;
	ssize_t n;

	memset(&r, 0, REC_HDR);
	if (len > sizeof(r.msg))
		len = sizeof(r.msg);
	r.type = type;
	r.len = (unsigned short)len;
	r.err = err;
	memcpy(r.msg, msg, len);
	iov.iov_base = &r;
	iov.iov_len = REC_HDR + len;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (pass_fd >= 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -1 : 0;
}

static void report(int fd, char type, int err, const char *msg)
{
	struct rec r;
	size_t len = strlen(msg);

	memset(&r, 0, REC_HDR);
	if (len > sizeof(r.msg))
		len = sizeof(r.msg);
	r.type = type;
	r.len = (unsigned short)len;
	r.err = err;
	memcpy(r.msg, msg, len);
	/* One write of at most PIPE_BUF bytes: read back in one piece. */
	write_all(fd, &r, REC_HDR + len);
}

/* Reads one record; 1 on a record, 0 at EOF, -1 with errno (EAGAIN too).
 * A descriptor passed along is stored in *got_fd (when not NULL; else closed). */
static int read_rec_fd(int fd, struct rec *r, int *got_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = r, .iov_len = sizeof(*r) };
	struct msghdr mh;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof(u.buf);
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
				int passed;

				memcpy(&passed, CMSG_DATA(cm), sizeof(int));
				if (got_fd != NULL && *got_fd < 0)
					*got_fd = passed;
				else
					close(passed);
			}
		}
	}
	if (n <= 0)
		return (int)n;
	if (n < REC_HDR || (size_t)n < REC_HDR + (size_t)r->len) {
		r->type = REC_SETUP_FAILED;
		r->err = EPROTO;
		r->len = 0;
	}
	r->msg[r->len < sizeof(r->msg) ? r->len : sizeof(r->msg) - 1] = '\0';
	return 1;
}

static int read_rec(int fd, struct rec *r)
{
	return read_rec_fd(fd, r, NULL);
}

/* ---- the container init ----------------------------------------------------- */

static __attribute__((noreturn)) void init_fail(int fd, const char *what)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(errno));
	report(fd, REC_SETUP_FAILED, errno, msg);
	_exit(1);
}

/*
 * With a tty: a pty pair of the devpts instance behind /dev/ptmx of the
 * container (we are inside its mount namespace, as its user); the slave
 * becomes the controlling terminal and fds 0, 1, 2. Returns the master
 * (CLOEXEC) or -1 with a message in err.
 */
static int init_tty(char *err, size_t cap)
{
	char name[64];
	int master, slave;

	master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0) {
		snprintf(err, cap, "tty: open /dev/ptmx: %s", strerror(errno));
		return -1;
	}
	if (unlockpt(master) < 0) {
		snprintf(err, cap, "tty: unlockpt: %s", strerror(errno));
		return -1;
	}
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) {
		if (ptsname_r(master, name, sizeof(name)) != 0) {
			snprintf(err, cap, "tty: ptsname: %s", strerror(errno));
			return -1;
		}
		slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (slave < 0) {
			snprintf(err, cap, "tty: open %s: %s", name, strerror(errno));
			return -1;
		}
	}
	if (ioctl(slave, TIOCSCTTY, 0) < 0) {
		snprintf(err, cap, "tty: set controlling terminal: %s", strerror(errno));
		return -1;
	}
	for (int fd = 0; fd <= 2; fd++) {
		if (dup2(slave, fd) < 0) {
			snprintf(err, cap, "tty: dup2: %s", strerror(errno));
			return -1;
		}
	}
	close(slave);
	return master;
}

static __attribute__((noreturn)) void container_init(const struct spec *s, int in_r, int out_w,
						    int err_w, int go_r, int sync_w)
{
	char err[1024], prog[PATH_MAX];
	ssize_t n;
	char c;
	int sync, master = -1, doubt;

	/* Move every fd out of the way first, then to stable numbers:
	 * 0 = stdin (/dev/null or the stdin pipe), 1 = stdout pipe, 2 = stderr
	 * pipe (with a tty: /dev/null until the pty), 3 = go (read), 4 = sync
	 * (a socket); 3 and 4 CLOEXEC. */
	int src[5] = { in_r, out_w, err_w, go_r, sync_w }, hi[5];

	for (int i = 0; i < 5; i++) {
		hi[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 10);
		if (hi[i] < 0)
			init_fail(sync_w, "dup");
	}
	for (int i = 0; i < 5; i++) {
		if (dup3(hi[i], i, i >= 3 ? O_CLOEXEC : 0) < 0)
			init_fail(hi[4], "dup stdio");
	}
	sync = 4;
	if (close_fds_from(5) < 0)
		init_fail(sync, "close file descriptors");
	if (reset_signals() < 0)
		init_fail(sync, "reset signals");
	if (setsid() < 0)
		init_fail(sync, "setsid");
	/* runc's: what the set-up creates (mount targets, the working dir) and
	 * the container's program get 0022, not whatever the server has. */
	umask(0022);

	if (container_setup(s, err, sizeof(err)) < 0) {
		report(sync, REC_SETUP_FAILED, errno, err);
		_exit(1);
	}
	if (spec_tty(s)) {
		master = init_tty(err, sizeof(err));
		if (master < 0) {
			report(sync, REC_SETUP_FAILED, errno, err);
			_exit(1);
		}
	}
	/* Found now, as runc's init looks its program up before it waits: the
	 * monitor answers a start at once unless this says the exec will fail. */
	doubt = container_resolve(s, prog, sizeof(prog)) < 0 ? errno : 0;
	if (report_fd(sync, REC_READY, doubt, spec_warnings(), master) < 0)
		_exit(1);
	if (master >= 0)
		close(master);

	do
		n = read(3, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || c != 'G')
		_exit(1); /* the monitor is gone, or never said go */
	close(3);

	if (doubt == 0)
		container_exec_file(s, prog);
	else
		errno = doubt;
	{
		int e = errno;

		snprintf(err, sizeof(err), "exec: %s", strerror(e));
		report(sync, REC_EXEC_FAILED, e, err);
		_exit(e == ENOENT || e == ENOTDIR ? 127 : 126);
	}
}

/* ---- the monitor --------------------------------------------------------------- */

enum start_state { NOT_STARTED, STARTING, STARTED, START_FAILED };

struct monitor {
	const struct spec *spec;
	int dirfd;
	pid_t init;
	int sigfd;
	int go_w;
	int sync_r;
	int out_r, err_r;       /* with a tty: out_r is the pty master */
	struct log_file log;
	struct log_stream out, err;
	struct ctl ctl;

	/* Attach (attach.h) and the container's stdin. */
	struct att att;
	int master;             /* pty master, -1 without a tty (or once closed) */
	int in_w;               /* stdin pipe write end or the master; -1: no (more) input */
	int has_stdin, stdin_once, stdin_closing;
	char *inbuf;            /* INBUF_MAX bytes of input not yet written */
	size_t inlen;

	enum start_state start;
	unsigned long long cg_joined; /* the spec's cgroups the init is in (cgroup_add_all) */
	int devices_confined; /* the spec's device filter is attached (or it has none) */
	int exec_doubt; /* the init's errno for its program at set-up: 0 when it will run */
	char warnings[1024]; /* the init's set-up warnings (spec_warn), for the server */
	unsigned waiters; /* bitmask of control clients waiting for "start" */
	char start_error[1024];
	long long started_at;

	int exited;
	int exit_code, exit_signal;
	long long finished_at;
	long long last_data_ms, exited_ms;
	char reply[1200];
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void json_string(char *out, size_t cap, const char *s)
{
	size_t o = 0;

	for (; *s && o + 8 < cap; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
}

static int write_monitor_json(struct monitor *m)
{
	char buf[256];
	int n;

	if (m->start == STARTED)
		n = snprintf(buf, sizeof(buf), "{\"monitorPid\":%d,\"initPid\":%d,\"startedAt\":\"%lld\"}\n",
			     (int)getpid(), (int)m->init, m->started_at);
	else
		n = snprintf(buf, sizeof(buf), "{\"monitorPid\":%d,\"initPid\":%d}\n",
			     (int)getpid(), (int)m->init);
	return write_file_atomic(m->dirfd, "monitor.json", buf, (size_t)n, 0644);
}

static int write_exit_json(struct monitor *m)
{
	char buf[4096], esc[2100];
	int n;

	n = snprintf(buf, sizeof(buf),
		     "{\"exitCode\":%d,\"signal\":%d,\"finishedAt\":\"%lld\",\"startedAt\":\"%lld\"",
		     m->exit_code, m->exit_signal, m->finished_at,
		     m->start == STARTED ? m->started_at : 0LL);
	if (m->start == START_FAILED) {
		json_string(esc, sizeof(esc), m->start_error);
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, ",\"error\":\"%s\"", esc);
	}
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "}\n");
	return write_file_atomic(m->dirfd, "exit.json", buf, (size_t)n, 0644);
}

static void reply_waiters(struct monitor *m, const char *reply)
{
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (m->waiters & (1u << i))
			ctl_reply(&m->ctl, i, reply);
	m->waiters = 0;
}

static const char *start_error_reply(struct monitor *m)
{
	snprintf(m->reply, sizeof(m->reply), "error %s", m->start_error);
	return m->reply;
}

/* The start took effect: recorded in monitor.json before anyone is told. */
static const char *mark_started(struct monitor *m)
{
	m->start = STARTED;
	m->started_at = now_ns();
	if (write_monitor_json(m) < 0)
		fprintf(stderr, PROG ": write monitor.json: %s\n", strerror(errno));
	snprintf(m->reply, sizeof(m->reply), "ok %lld", m->started_at);
	return m->reply;
}

/* A start that fails before the exec ends the container, as in containerd:
 * the waiting init must not linger to be started by a later request. */
static const char *refuse_start(struct monitor *m)
{
	m->start = START_FAILED;
	kill(m->init, SIGKILL);
	return start_error_reply(m);
}

/* The device filter goes on its cgroup2 dir before the init joins that dir:
 * from then on it confines every process there (the init, the execs). 0 once
 * attached, -1 with a message in err (its dir not made yet, say). */
static int confine_devices(struct monitor *m, char *err, size_t cap)
{
	if (m->devices_confined)
		return 0;
	if (spec_device_filter(m->spec) != NULL && devices_filter_attach(m->spec, err, cap) < 0)
		return -1;
	m->devices_confined = 1;
	return 0;
}

static const char *handle_command(void *ctx, int client, const char *line)
{
	struct monitor *m = ctx;
	const char *which = "";

	if (strcmp(line, "ping") == 0) {
		snprintf(m->reply, sizeof(m->reply), "ok %d", (int)m->init);
		return m->reply;
	}
	if (strcmp(line, "reopen") == 0) {
		if (log_reopen(&m->log) < 0) {
			snprintf(m->reply, sizeof(m->reply), "error reopen %s: %s",
				 m->log.path, strerror(errno));
			return m->reply;
		}
		return "ok";
	}
	if (strcmp(line, "start") == 0) {
		switch (m->start) {
		case STARTED:
			return "error container already started";
		case START_FAILED:
			return start_error_reply(m);
		case STARTING:
			m->waiters |= 1u << client;
			return NULL;
		case NOT_STARTED:
			break;
		}
		if (m->exited)
			return "error container init has exited";
		/* All of them before the exec, that is what matters. */
		if (confine_devices(m, m->start_error, sizeof(m->start_error)) < 0)
			return refuse_start(m);
		if (cgroup_add_all(m->spec, m->init, &m->cg_joined, 0, &which) < 0) {
			snprintf(m->start_error, sizeof(m->start_error), "join cgroup %s: %s", which,
				 strerror(errno));
			return refuse_start(m);
		}
		if (write_all(m->go_w, "G", 1) < 0) {
			snprintf(m->start_error, sizeof(m->start_error), "signal container init: %s",
				 strerror(errno));
			return refuse_start(m);
		}
		close(m->go_w);
		m->go_w = -1;
		/* As runc start: answered once the init is let go. Only a program
		 * the init could not find waits for the exec's failure, so that the
		 * start reports it (a later one still ends the container, see handle_sync). */
		if (m->exec_doubt == 0)
			return mark_started(m);
		m->start = STARTING;
		m->waiters |= 1u << client;
		return NULL;
	}
	return "error unknown command";
}

/* Reads the sync pipe after "start": an exec failure record or EOF (exec). */
static void handle_sync(struct monitor *m)
{
	struct rec r;
	int n = read_rec(m->sync_r, &r);

	if (n < 0 && errno == EAGAIN)
		return;
	if (n > 0 && r.type == REC_EXEC_FAILED) {
		snprintf(m->start_error, sizeof(m->start_error), "%s", r.msg);
		m->start = START_FAILED;
		reply_waiters(m, start_error_reply(m));
		return;
	}
	/* EOF (or an error): the CLOEXEC write end closed with the exec. */
	close(m->sync_r);
	m->sync_r = -1;
	if (m->start == STARTING)
		reply_waiters(m, mark_started(m));
}

static void reap(struct monitor *m)
{
	int st;
	pid_t p;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p != m->init || m->exited)
			continue;
		m->exited = 1;
		m->finished_at = now_ns();
		m->exited_ms = mono_ms();
		m->last_data_ms = m->exited_ms;
		if (WIFSIGNALED(st)) {
			m->exit_signal = WTERMSIG(st);
			m->exit_code = 128 + m->exit_signal;
		} else {
			m->exit_code = WEXITSTATUS(st);
		}
	}
}

static void handle_signals(struct monitor *m)
{
	struct signalfd_siginfo si;

	while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap(m);
			break;
		case SIGTERM:
		case SIGINT:
			if (!m->exited)
				kill(m->init, SIGKILL);
			break;
		default:
			break; /* SIGHUP, SIGQUIT: ignored */
		}
	}
	reap(m);
}

/* ---- the container's stdin ------------------------------------------------------- */

static void close_input(struct monitor *m)
{
	if (m->in_w >= 0 && m->in_w != m->master)
		close(m->in_w); /* the master stays: it carries the output too */
	m->in_w = -1;
	m->inlen = 0;
}

/* Writes pending input as far as the container takes it (non-blocking). */
static void flush_input(struct monitor *m)
{
	while (m->inlen > 0 && m->in_w >= 0) {
		ssize_t n = write(m->in_w, m->inbuf, m->inlen);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) { /* EPIPE: nobody reads the container's stdin any more */
			close_input(m);
			return;
		}
		memmove(m->inbuf, m->inbuf + n, m->inlen - (size_t)n);
		m->inlen -= (size_t)n;
	}
	if (m->inlen == 0 && m->stdin_closing)
		close_input(m);
}

static size_t hook_input_room(void *ctx)
{
	struct monitor *m = ctx;

	if (m->in_w < 0 || m->stdin_closing)
		return SIZE_MAX; /* dropped anyway */
	return INBUF_MAX - m->inlen;
}

static void hook_input(void *ctx, const char *data, size_t n)
{
	struct monitor *m = ctx;

	if (m->in_w < 0 || m->stdin_closing || n > INBUF_MAX - m->inlen)
		return;
	memcpy(m->inbuf + m->inlen, data, n);
	m->inlen += n;
	flush_input(m);
}

/* stdin-once: the first client with stdin is gone, so is the container's stdin. */
static void hook_stdin_done(void *ctx)
{
	struct monitor *m = ctx;

	if (!m->stdin_once || m->stdin_closing || m->in_w < 0)
		return;
	m->stdin_closing = 1;
	if (m->in_w == m->master && m->inlen < INBUF_MAX) {
		struct termios t;

		/* A terminal cannot be half-closed: VEOF is its end of file. */
		m->inbuf[m->inlen++] = tcgetattr(m->master, &t) == 0 && t.c_cc[VEOF] ? (char)t.c_cc[VEOF] : 4;
	}
	flush_input(m);
}

static void hook_resize(void *ctx, unsigned width, unsigned height)
{
	struct monitor *m = ctx;
	struct winsize ws = { .ws_row = (unsigned short)height, .ws_col = (unsigned short)width };

	if (m->master >= 0 && ioctl(m->master, TIOCSWINSZ, &ws) < 0)
		fprintf(stderr, PROG ": resize terminal: %s\n", strerror(errno));
}

/* One read from a container stream; closes it at EOF (EIO for a pty master
 * whose slaves are all closed). */
static void pump(struct monitor *m, int *fd, struct log_stream *st)
{
	static char buf[65536];
	ssize_t n = read(*fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0) {
		log_feed(&m->log, st, buf, (size_t)n);
		att_broadcast(&m->att, st == &m->err ? 'E' : 'O', buf, (size_t)n);
		m->last_data_ms = mono_ms();
		return;
	}
	if (*fd == m->master) {
		if (m->in_w == m->master)
			close_input(m);
		m->master = -1;
	}
	close(*fd);
	*fd = -1;
	log_stream_end(&m->log, st);
}

static void event_loop(struct monitor *m)
{
	struct pollfd pfds[5 + 1 + CTL_MAX_CLIENTS + 1 + ATT_MAX_CLIENTS];

	for (;;) {
		int timeout = -1, nctl, natt;
		int in_pipe = m->in_w >= 0 && m->in_w != m->master;

		if (m->exited) {
			long long now = mono_ms();
			long long end = m->last_data_ms + DRAIN_QUIET_MS;

			if (end > m->exited_ms + DRAIN_MAX_MS)
				end = m->exited_ms + DRAIN_MAX_MS;
			if ((m->out_r < 0 && m->err_r < 0) || now >= end)
				break;
			timeout = (int)(end - now);
		}
		pfds[0] = (struct pollfd){ .fd = m->sigfd, .events = POLLIN };
		pfds[1] = (struct pollfd){ .fd = m->out_r, .events = POLLIN };
		if (m->out_r >= 0 && m->out_r == m->in_w && m->inlen > 0)
			pfds[1].events |= POLLOUT; /* the pty master: input waits */
		pfds[2] = (struct pollfd){ .fd = m->err_r, .events = POLLIN };
		/* Once let go, the init reports an exec that failed (or closes it by its exec). */
		pfds[3] = (struct pollfd){ .fd = m->go_w < 0 && m->start != START_FAILED ? m->sync_r : -1,
					   .events = POLLIN };
		pfds[4] = (struct pollfd){ .fd = in_pipe && m->inlen > 0 ? m->in_w : -1, .events = POLLOUT };
		nctl = ctl_pollfds(&m->ctl, &pfds[5]);
		natt = att_pollfds(&m->att, &pfds[5 + nctl]);

		if (poll(pfds, (nfds_t)(5 + nctl + natt), timeout) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, PROG ": poll: %s\n", strerror(errno));
			sleep(1);
			continue;
		}
		if ((pfds[1].revents & POLLOUT) || pfds[4].revents)
			flush_input(m);
		if (pfds[1].revents & ~POLLOUT)
			pump(m, &m->out_r, &m->out);
		if (pfds[2].revents)
			pump(m, &m->err_r, &m->err);
		if (pfds[3].revents)
			handle_sync(m);
		if (pfds[0].revents)
			handle_signals(m);
		ctl_handle(&m->ctl, &pfds[5], nctl);
		att_handle(&m->att, &pfds[5 + nctl], natt);
		att_resume_input(&m->att);
		log_flush(&m->log);
	}
	close_input(m);
	/* An exec failure record may still sit in the sync pipe. */
	if (m->start == STARTING)
		handle_sync(m);
	if (m->start == STARTING) {
		/* The init died between "G" and the exec. */
		m->start = START_FAILED;
		snprintf(m->start_error, sizeof(m->start_error), "container init exited before exec");
		reply_waiters(m, start_error_reply(m));
	}
	if (m->out_r >= 0)
		log_stream_end(&m->log, &m->out);
	if (m->err_r >= 0)
		log_stream_end(&m->log, &m->err);
	log_close(&m->log);
}

/* ---- start-up -------------------------------------------------------------------- */

/* DIR/monitor.log, where the monitor's own messages go once it has its container. */
static int open_monitor_log(int dirfd)
{
	return openat(dirfd, "monitor.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " --spec SPECFILE --dir DIR [--notify SOCKET --notify-key KEY]\n"
		   "       " PROG " --wait FIFO [--notify SOCKET]\n");
}

/* A spare monitor (--wait): started ahead, it sleeps in open() until the
 * server claims it by writing "KEY\0SPECFILE\0DIR\0" to the FIFO and closing
 * it, and then goes on as if started with those. No message (the server
 * closed the FIFO unwritten, at shutdown): exits 0. */
static void await_claim(const char *fifo, const char **key, const char **spec, const char **dir)
{
	static char buf[3 * 4096 + 8];
	ssize_t len;
	int fd, dfd;

	do
		fd = open(fifo, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		fprintf(stderr, PROG ": open %s: %s\n", fifo, strerror(errno));
		exit(1);
	}
	len = read_all(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len < 0) {
		fprintf(stderr, PROG ": read %s: %s\n", fifo, strerror(errno));
		exit(1);
	}
	if (len == 0)
		exit(0);
	buf[len] = '\0';
	*key = buf;
	*spec = *key + strlen(*key) + 1;
	*dir = *spec < buf + len ? *spec + strlen(*spec) + 1 : buf + len;
	if (*dir >= buf + len || !**key || !**spec || !**dir) {
		fprintf(stderr, PROG ": malformed claim on %s\n", fifo);
		exit(2);
	}
	/* From now on its messages are the container's, as a monitor started for it. */
	dfd = open(*dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		int f = open_monitor_log(dfd);

		if (f >= 0 && f != 2) {
			dup2(f, 2);
			close(f);
		}
		close(dfd);
	}
}

/* A start-up failure, on stderr and to the server. */
static void report_error(const char *msg)
{
	fprintf(stderr, PROG ": %s\n", msg);
	notify("error", "%s", msg);
}

/* Reports a start-up failure, kills and reaps the init, then exits 1. */
static __attribute__((noreturn)) void abort_start(struct monitor *m, const char *fmt, const char *arg)
{
	char msg[1200];
	int err = errno;

	snprintf(msg, sizeof(msg), fmt, arg, strerror(err));
	report_error(msg);
	if (m->init > 0) {
		kill(m->init, SIGKILL);
		while (waitpid(m->init, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (m->dirfd >= 0) {
		unlinkat(m->dirfd, CONTROL_SOCK, 0);
		unlinkat(m->dirfd, ATTACH_SOCK, 0);
	}
	exit(1);
}


/* Waits for the init's set-up result; 0 when ready, else -1 with msg. */
static int wait_setup(struct monitor *m, int sync_r, char *msg, size_t cap)
{
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = sync_r, .events = POLLIN },
			{ .fd = m->sigfd, .events = POLLIN },
		};
		struct rec r;
		int n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(msg, cap, "poll: %s", strerror(errno));
			return -1;
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;

			while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
					kill(m->init, SIGKILL);
		}
		if (!p[0].revents)
			continue;
		n = read_rec_fd(sync_r, &r, &m->master);
		if (n < 0) {
			snprintf(msg, cap, "read from container init: %s", strerror(errno));
			return -1;
		}
		if (n == 0) {
			snprintf(msg, cap, "container init exited during set-up");
			return -1;
		}
		if (r.type == REC_READY) {
			m->exec_doubt = r.err;
			snprintf(m->warnings, sizeof(m->warnings), "%s", r.msg);
			return 0;
		}
		snprintf(msg, cap, "container set-up: %.900s", r.msg);
		return -1;
	}
}

static void detach_stdio(int dirfd)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int log = open_monitor_log(dirfd);

	if (null >= 0)
		dup2(null, 1);
	if (log >= 0)
		dup2(log, 2);
	else if (null >= 0)
		dup2(null, 2);
	if (null > 2)
		close(null);
	if (log > 2)
		close(log);
	setvbuf(stderr, NULL, _IOLBF, 0);
}

int main(int argc, char **argv)
{
	static struct monitor mon;
	struct monitor *m = &mon;
	const char *spec_path = NULL, *dir = NULL, *notify_path = NULL, *notify_key = "-", *wait_fifo = NULL, *which;
	char err[1024], start[24];
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, inp[2] = { -1, -1 }, gop[2], syncp[2], devnull, tty, chan;
	sigset_t mask;
	struct spec *s;

	for (int i = 1; i < argc; i++) {
		const char *v;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if ((v = opt_value(argc, argv, &i, usage, "--spec")) != NULL) {
			spec_path = v;
		} else if ((v = opt_value(argc, argv, &i, usage, "--dir")) != NULL) {
			dir = v;
		} else if ((v = opt_value(argc, argv, &i, usage, "--notify")) != NULL) {
			notify_path = v;
		} else if ((v = opt_value(argc, argv, &i, usage, "--notify-key")) != NULL) {
			notify_key = v;
		} else if ((v = opt_value(argc, argv, &i, usage, "--wait")) != NULL) {
			wait_fifo = v;
		} else {
			fprintf(stderr, PROG ": unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	/* The monitor outlives the server: it must not hold the server's files
	 * (its listening socket, say), whatever the runtime forgot to mark
	 * CLOEXEC; nor must a spare while it waits. */
	if (close_fds_from(3) < 0)
		fprintf(stderr, PROG ": warning: closing inherited descriptors: %s\n", strerror(errno));
	if (wait_fifo != NULL && spec_path == NULL && dir == NULL && *wait_fifo)
		await_claim(wait_fifo, &notify_key, &spec_path, &dir);
	if (spec_path == NULL || dir == NULL || !*spec_path || !*dir) {
		usage(stderr);
		return 2;
	}
	if (notify_path != NULL) {
		notify_setup(notify_path, notify_key);
		/* Accepted by the server while the container is set up. */
		(void)notify_preconnect();
	}
	m->init = -1;
	m->dirfd = -1;
	m->go_w = m->sync_r = m->out_r = m->err_r = -1;
	m->master = m->in_w = -1;
	signal(SIGPIPE, SIG_IGN);
	if (setsid() < 0 && errno != EPERM) /* EPERM: already a group leader */
		abort_start(m, "setsid%s: %s", "");
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		abort_start(m, "open %s: %s", "/dev/null");
	if (dup2(devnull, 0) < 0)
		abort_start(m, "stdin %s: %s", "/dev/null");

	m->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->dirfd < 0)
		abort_start(m, "open %s: %s", dir);
	s = spec_load(spec_path, err, sizeof(err));
	if (s == NULL) {
		char msg[sizeof(err) + 4200];

		snprintf(msg, sizeof(msg), "spec %s: %s", spec_path, err);
		report_error(msg);
		return 1;
	}
	m->spec = s;
	if (log_open(&m->log, spec_log_path(s)) < 0)
		abort_start(m, "open log %s: %s", spec_log_path(s));
	log_stream_init(&m->out, "stdout");
	log_stream_init(&m->err, "stderr");

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		abort_start(m, "sigprocmask%s: %s", "");
	m->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (m->sigfd < 0)
		abort_start(m, "signalfd%s: %s", "");

	tty = spec_tty(s);
	m->has_stdin = spec_stdin(s);
	m->stdin_once = spec_stdin_once(s);
	if (m->has_stdin) {
		m->inbuf = malloc(INBUF_MAX);
		if (m->inbuf == NULL)
			abort_start(m, "stdin buffer%s: %s", "");
	}
	if ((!tty && (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)) ||
	    (!tty && m->has_stdin && pipe2(inp, O_CLOEXEC) < 0) || pipe2(gop, O_CLOEXEC) < 0)
		abort_start(m, "pipe%s: %s", "");
	/* A socket, not a pipe: the init hands over its pty master on it. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, syncp) < 0)
		abort_start(m, "socketpair%s: %s", "");
	/* Bigger pipes: fewer stalls of a chatty container (best effort). */
	if (!tty) {
		fcntl(outp[0], F_SETPIPE_SZ, 1 << 20);
		fcntl(errp[0], F_SETPIPE_SZ, 1 << 20);
	}

	/* Until its execve the init runs our binary, with the server's
	 * environment and the start pipe, in the pod's PID namespace: not
	 * dumpable (inherited by the fork, undone by the execve), no container
	 * can open its /proc files, as runc's nsexec does. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		abort_start(m, "PR_SET_DUMPABLE%s: %s", "");
	/* The init inherits them. */
	if (container_enter_pod_namespaces(s, &which) < 0)
		abort_start(m, "enter pod namespace %s: %s", which);
	if (container_enter_pidns(s) < 0)
		abort_start(m, "enter pid namespace %s: %s", spec_pidns(s));

	fflush(NULL);
	m->init = fork();
	if (m->init < 0)
		abort_start(m, "fork%s: %s", "");
	if (m->init == 0) {
		if (!tty) {
			close(outp[0]);
			close(errp[0]);
		}
		if (inp[1] >= 0)
			close(inp[1]);
		close(gop[1]);
		close(syncp[0]);
		container_init(s, inp[0] >= 0 ? inp[0] : devnull, tty ? devnull : outp[1],
			       tty ? devnull : errp[1], gop[0], syncp[1]);
	}
	if (!tty) {
		close(outp[1]);
		close(errp[1]);
	}
	if (inp[0] >= 0)
		close(inp[0]);
	close(gop[0]);
	close(syncp[1]);
	m->out_r = outp[0];
	m->err_r = errp[0];
	m->in_w = inp[1];
	m->go_w = gop[1];

	if (wait_setup(m, syncp[0], err, sizeof(err)) < 0) {
		report_error(err);
		kill(m->init, SIGKILL);
		while (waitpid(m->init, NULL, 0) < 0 && errno == EINTR)
			;
		unlinkat(m->dirfd, CONTROL_SOCK, 0);
		return 1;
	}
	if (tty && m->master < 0) {
		errno = EPROTO;
		abort_start(m, "no terminal from the container init%s: %s", "");
	}
	if (tty) {
		m->out_r = m->master;
		if (m->has_stdin)
			m->in_w = m->master;
	}
	m->sync_r = syncp[0];
	fcntl(m->sync_r, F_SETFL, O_NONBLOCK);
	fcntl(m->out_r, F_SETFL, O_NONBLOCK);
	if (m->err_r >= 0)
		fcntl(m->err_r, F_SETFL, O_NONBLOCK);
	if (m->in_w >= 0 && m->in_w != m->master)
		fcntl(m->in_w, F_SETFL, O_NONBLOCK);

	if (ctl_listen(&m->ctl, m->dirfd, CONTROL_SOCK, handle_command, m) < 0)
		abort_start(m, "listen on %s/" CONTROL_SOCK ": %s", dir);
	{
		const struct att_hooks hooks = {
			.ctx = m,
			.input_room = hook_input_room,
			.input = hook_input,
			.stdin_done = hook_stdin_done,
			.resize = hook_resize,
		};

		if (att_listen(&m->att, m->dirfd, ATTACH_SOCK, &hooks) < 0)
			abort_start(m, "listen on %s/" ATTACH_SOCK ": %s", dir);
	}
	if (write_monitor_json(m) < 0)
		abort_start(m, "write %s/monitor.json: %s", dir);
	if (printf("%d\n", (int)m->init) < 0 || fflush(stdout) == EOF)
		abort_start(m, "write pid to %s: %s", "stdout");
	/* With its start time, the server knows the init without reading /proc. */
	if (proc_starttime(m->init, start, sizeof(start)) < 0)
		abort_start(m, "read the %s's /proc stat: %s", "init");
	if (notify_keep(&chan, "created", "%d %s%s%s", (int)m->init, start, *m->warnings ? " " : "",
			m->warnings) < 0) {
		errno = ECONNREFUSED;
		abort_start(m, "report to the %s: %s", "server");
	}
	if (chan >= 0)
		ctl_adopt(&m->ctl, chan);
	detach_stdio(m->dirfd);
	failpoint_delay("monitor.after-report");
	/* While the server answers and the start is asked for: the init joins
	 * the cgroups the server has made by now (it makes them meanwhile); the
	 * start joins the rest. Nothing runs in the container before the start.
	 * A device filter not attached yet keeps it out of them all till then. */
	if (confine_devices(m, err, sizeof(err)) == 0)
		cgroup_add_all(s, m->init, &m->cg_joined, 1, &(const char *){ NULL });
	/* wait_setup drained the signalfd, SIGCHLD too: an init that died
	 * after its "ready" would never be waited for. */
	reap(m);

	event_loop(m);

	if (write_exit_json(m) < 0)
		fprintf(stderr, PROG ": write exit.json: %s\n", strerror(errno));
	notify("exited", "%d", m->exit_code);
	/* After exit.json: an attached client that sees the end sees the exit. */
	unlinkat(m->dirfd, ATTACH_SOCK, 0);
	att_finish(&m->att, m->exit_code, 1000);
	ctl_close(&m->ctl);
	unlinkat(m->dirfd, CONTROL_SOCK, 0);
	spec_free(s);
	return 0;
}
