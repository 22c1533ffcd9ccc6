/* peapod-exec: run a command in a running container (ExecSync, probes).
 *
 *   peapod-exec --pid PID [--start-time TICKS] --spec SPECFILE [--timeout-kill] [--tty [--size WIDTH,HEIGHT]]
 *               [--resize-fd N] [--output-limit BYTES] [--notify SOCKET --notify-key KEY]
 *
 * Joins the namespaces and cgroups of the container whose init is PID
 * (container_join), then forks the command. With --start-time, PID must be
 * the process started then (field 22 of /proc/PID/stat) until the join is
 * done: an init that has exited, its pid maybe reused, is refused. The
 * command becomes the leader of a new
 * process group, gets SIGKILL as parent-death signal, has the process part
 * of SPECFILE applied (container_process_setup: cwd, user, capabilities,
 * seccomp, ...) and executes the spec's args with its env. Its stdin,
 * stdout and stderr are peapod-exec's own.
 *
 * SIGTERM, SIGINT and SIGHUP to peapod-exec kill the command's whole process
 * group with SIGKILL; peapod-exec then reaps the command and exits (137).
 * With --timeout-kill, whatever is left of the process group (background
 * processes) is also killed when the command itself exits.
 *
 * With --tty the command gets a new pseudo-terminal of the container (its
 * /dev/ptmx is opened after joining the mount namespace, so the pair lives in
 * the container's own devpts instance) as controlling terminal and as stdin,
 * stdout and stderr; peapod-exec relays its own stdin to the master and the
 * master to its own stdout until the command has exited and the master is
 * drained. EOF on stdin stops that direction only. Input the terminal does
 * not take yet waits (no more is read meanwhile) while the output, resizes
 * and signals go on, as containerd's shim copies each direction on its own.
 * --size gives the terminal its size before the command starts (a resize
 * that raced the command's first look at its terminal would come too late).
 * --resize-fd N names an inherited descriptor carrying lines "WIDTH HEIGHT\n":
 * each sets the terminal's window size (TIOCSWINSZ; ignored without --tty).
 * Pending resizes are applied before pending input.
 *
 * With --output-limit (ExecSync; not with --tty) the command's stdout and
 * stderr are pipes that peapod-exec copies to its own, at most BYTES each,
 * dropping the rest (the command never blocks on them), and background
 * processes holding them are not waited for (capture.h).
 *
 * With --notify the exit status is also sent to the server's socket
 * (notify.h) as "KEY exited CODE".
 *
 * Exit status: the command's, or 128+N when it died of signal N; 126 when
 * the set-up failed (spec, join, process set-up, or exec failed for another
 * reason than a missing program); 127 when the program was not found; 2 for
 * usage errors. Failures are reported as "peapod-exec: <message>" on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "capture.h"
#include "container.h"
#include "notify.h"
#include "util.h"

#define PROG "peapod-exec"

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " --pid PID [--start-time TICKS] --spec SPECFILE [--timeout-kill] [--tty [--size W,H]]\n"
		   "       [--resize-fd N] [--output-limit BYTES] [--notify SOCKET --notify-key KEY]\n");
}


/* The slave side becomes the controlling terminal and stdin/stdout/stderr. */
static void attach_tty(int slave)
{
	if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0) {
		fprintf(stderr, PROG ": controlling terminal: %s\n", strerror(errno));
		_exit(126);
	}
	for (int fd = 0; fd <= 2; fd++) {
		if (dup2(slave, fd) < 0) {
			fprintf(stderr, PROG ": dup2 terminal: %s\n", strerror(errno));
			_exit(126);
		}
	}
	if (slave > 2)
		close(slave);
}

/* Whether the process behind `fd` has ended: the parent's end of the alive
 * pipe closed (across the PID namespace getppid() says 0 either way), a
 * pidfd's process exited. */
static int gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) != 0; /* POLLIN, POLLHUP, or an error: no proof of life */
}

/* A pidfd of `pid` if it is the process started at `start`, else -1 with a
 * message: the server hears of the init's exit up to 2 s late, and by then
 * its pid may be another process's. As runc checks its init's start time;
 * the pidfd keeps the process checked. */
static int pin_init(pid_t pid, const char *start, char *err, size_t errlen)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	char now[24];

	if (fd < 0) {
		snprintf(err, errlen, "pidfd_open %d: %s", (int)pid, strerror(errno));
		return -1;
	}
	if (proc_starttime(pid, now, sizeof(now)) < 0 || strcmp(now, start) != 0) {
		snprintf(err, errlen, "process %d is not the one started at %s: the container's init has exited",
			 (int)pid, start);
		close(fd);
		return -1;
	}
	return fd;
}

static __attribute__((noreturn)) void child(const struct spec *s, int slave, int alive_r)
{
	char err[1024];
	int e;

	if (reset_signals() < 0) {
		fprintf(stderr, PROG ": reset signals: %s\n", strerror(errno));
		_exit(126);
	}
	if (slave >= 0)
		attach_tty(slave); /* setsid: a new session and process group */
	else
		setpgid(0, 0);
	umask(0022); /* the container's, as the init's, not the server's */
	if (container_process_setup(s, err, sizeof(err)) < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		_exit(126);
	}
	/* spec_warnings are not printed: stderr is the client's, and the
	 * server logged the same at the container's create (an exec asks for the
	 * container's capabilities and score). */
	/* After the user switch, which clears it (as runc does); then a parent
	 * that died before this call is looked for. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
		fprintf(stderr, PROG ": PR_SET_PDEATHSIG: %s\n", strerror(errno));
		_exit(126);
	}
	if (gone(alive_r))
		_exit(137);
	container_exec(s);
	e = errno;
	fprintf(stderr, PROG ": exec: %s\n", strerror(e));
	_exit(e == ENOENT || e == ENOTDIR ? 127 : 126);
}

/*
 * A pseudo-terminal pair from the devpts instance behind /dev/ptmx of the
 * mount namespace we are in (the container's). The slave is opened through
 * the master (TIOCGPTPEER) when the kernel can, else by its name.
 */
static int open_pty(int *master, int *slave, char *err, size_t errlen)
{
	char name[64];

	*master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*master < 0) {
		snprintf(err, errlen, "open /dev/ptmx: %s", strerror(errno));
		return -1;
	}
	if (unlockpt(*master) < 0) {
		snprintf(err, errlen, "unlockpt: %s", strerror(errno));
		return -1;
	}
	*slave = ioctl(*master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*slave < 0) {
		if (ptsname_r(*master, name, sizeof(name)) != 0) {
			snprintf(err, errlen, "ptsname: %s", strerror(errno));
			return -1;
		}
		*slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (*slave < 0) {
			snprintf(err, errlen, "open %s: %s", name, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* write_all for a possibly non-blocking descriptor. */
static int relay_write(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = { .fd = fd, .events = POLLOUT };

				poll(&p, 1, -1);
				continue;
			}
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Applies every complete "W H" line of the resize channel; 0 at EOF. */
static int read_resizes(int fd, int master, char *line, size_t *used, size_t cap)
{
	ssize_t n = read(fd, line + *used, cap - 1 - *used);
	char *nl;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (n == 0)
		return 0;
	*used += (size_t)n;
	line[*used] = '\0';
	while ((nl = memchr(line, '\n', *used)) != NULL) {
		unsigned w, h;

		*nl = '\0';
		if (sscanf(line, "%u %u", &w, &h) == 2 && w <= 0xffff && h <= 0xffff) {
			struct winsize ws = { .ws_row = (unsigned short)h, .ws_col = (unsigned short)w };

			ioctl(master, TIOCSWINSZ, &ws);
		}
		*used -= (size_t)(nl + 1 - line);
		memmove(line, nl + 1, *used);
	}
	if (*used >= cap - 1)
		*used = 0; /* an overlong line: drop it */
	return 1;
}

/* Copies what the master has now to stdout; -1 once it is done (EIO, EOF). */
static int pump_master(int master)
{
	char buf[16384];

	for (;;) {
		ssize_t n = read(master, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		if (relay_write(1, buf, (size_t)n) < 0)
			return -1;
	}
}

static int exit_code(int st)
{
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

/*
 * The --tty loop: stdin → master, master → stdout, resize lines → window
 * size, signals as in the plain loop. Ends when the command has exited and
 * the master has nothing more (every holder of the slave gone, or nothing
 * buffered once the command is gone: background holders do not hold it).
 */
static int relay(pid_t pid, int master, int slave, int resize_fd, const sigset_t *mask, int timeout_kill,
		 struct spec *s)
{
	char line[256], in[16384];
	size_t used = 0, in_off = 0, in_len = 0;
	int sfd, in_open = 1, master_open = 1, killed = 0, status = -1;

	close(slave);
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	sfd = command_signalfd(pid, mask);
	if (sfd < 0)
		return 126;
	for (;;) {
		struct pollfd p[4] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = resize_fd, .events = POLLIN },
			/* stdin only while no input waits for the terminal; the master's room only while some does. */
			{ .fd = in_open && in_off == in_len ? 0 : -1, .events = POLLIN },
			{ .fd = master_open ? master : -1, .events = POLLIN | (in_off < in_len ? POLLOUT : 0) },
		};

		if (poll(p, 4, -1) < 0) {
			if (command_poll_failed(pid) == 0)
				continue;
			return 126;
		}
		if (p[0].revents & POLLIN)
			status = command_signals(sfd, pid, &killed);
		if (status >= 0) {
			/* Whatever the command wrote is in the master now. */
			if (master_open)
				pump_master(master);
			if (timeout_kill || killed)
				kill(-pid, SIGKILL);
			spec_free(s);
			return exit_code(status);
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (!read_resizes(resize_fd, master, line, &used, sizeof(line))) {
				close(resize_fd);
				resize_fd = -1;
			}
		}
		if (p[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(0, in, sizeof(in));

			if (n > 0) {
				in_off = 0;
				in_len = (size_t)n;
			} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
				in_open = 0;
			}
		}
		if (in_off < in_len) {
			ssize_t n = write(master, in + in_off, in_len - in_off);

			if (n >= 0) {
				in_off += (size_t)n;
			} else if (errno != EINTR && errno != EAGAIN) {
				/* No terminal to take it any more: the rest is dropped. */
				in_open = 0;
				in_off = in_len;
			}
		}
		if (p[3].revents & (POLLIN | POLLHUP | POLLERR)) {
			/* EIO: no holder of the slave left; the command's exit follows. */
			if (pump_master(master) < 0)
				master_open = 0;
		}
	}
}

static int run(int argc, char **argv)
{
	const char *spec_path = NULL, *pid_arg = NULL, *start_arg = NULL, *resize_arg = NULL, *limit_arg = NULL,
		   *size_arg = NULL;
	const char *notify_path = NULL, *notify_key = "-";
	int timeout_kill = 0, killed = 0, tty = 0, resize_fd = -1, master = -1, slave = -1, init = -1;
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, alive[2];
	size_t limit = 0;
	char err[1024], *end;
	struct spec *s;
	sigset_t mask;
	long target;
	pid_t pid;

	for (int i = 1; i < argc; i++) {
		const char *v;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--timeout-kill") == 0) {
			timeout_kill = 1;
		} else if (strcmp(argv[i], "--tty") == 0) {
			tty = 1;
		} else if ((v = opt_value(argc, argv, &i, usage, "--resize-fd")) != NULL) {
			resize_arg = v;
		} else if ((v = opt_value(argc, argv, &i, usage, "--pid")) != NULL) {
			pid_arg = v;
		} else if ((v = opt_value(argc, argv, &i, usage, "--start-time")) != NULL) {
			start_arg = v;
		} else if ((v = opt_value(argc, argv, &i, usage, "--spec")) != NULL) {
			spec_path = v;
		} else if ((v = opt_value(argc, argv, &i, usage, "--size")) != NULL) {
			size_arg = v;
		} else if ((v = opt_value(argc, argv, &i, usage, "--output-limit")) != NULL) {
			limit_arg = v;
		} else if ((v = opt_value(argc, argv, &i, usage, "--notify")) != NULL) {
			notify_path = v;
		} else if ((v = opt_value(argc, argv, &i, usage, "--notify-key")) != NULL) {
			notify_key = v;
		} else {
			fprintf(stderr, PROG ": unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (pid_arg == NULL || spec_path == NULL || (limit_arg != NULL && tty)) {
		usage(stderr);
		return 2;
	}
	if (limit_arg != NULL) {
		unsigned long long l;

		errno = 0;
		l = strtoull(limit_arg, &end, 10);
		if (errno || *end || end == limit_arg || *limit_arg == '-' || l == 0) {
			fprintf(stderr, PROG ": --output-limit needs a byte count, got '%s'\n", limit_arg);
			return 2;
		}
		limit = (size_t)l;
	}
	if (notify_path != NULL)
		notify_setup(notify_path, notify_key);
	errno = 0;
	target = strtol(pid_arg, &end, 10);
	if (errno || *end || end == pid_arg || target < 1 || target > 0x3fffffff) {
		fprintf(stderr, PROG ": --pid needs a process id, got '%s'\n", pid_arg);
		usage(stderr);
		return 2;
	}

	if (resize_arg != NULL) {
		errno = 0;
		resize_fd = (int)strtol(resize_arg, &end, 10);
		if (errno || *end || end == resize_arg || resize_fd < 3 || fcntl(resize_fd, F_GETFD) < 0) {
			fprintf(stderr, PROG ": --resize-fd needs an open descriptor >= 3, got '%s'\n", resize_arg);
			return 2;
		}
		/* Keep it as descriptor 3, never inherited by the command. */
		if (resize_fd != 3 && (dup2(resize_fd, 3) < 0 || close(resize_fd) < 0)) {
			fprintf(stderr, PROG ": --resize-fd: %s\n", strerror(errno));
			return 126;
		}
		resize_fd = 3;
		if (fcntl(resize_fd, F_SETFD, FD_CLOEXEC) < 0) {
			fprintf(stderr, PROG ": --resize-fd: %s\n", strerror(errno));
			return 126;
		}
	}

	/* The command runs in the container: no server descriptor may reach it. */
	if (close_fds_from(resize_fd >= 0 ? 4 : 3) < 0) {
		fprintf(stderr, PROG ": closing inherited descriptors: %s\n", strerror(errno));
		return 126;
	}

	/* Nothing may slip between the fork and the signal loop. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
		fprintf(stderr, PROG ": sigprocmask: %s\n", strerror(errno));
		return 126;
	}
	signal(SIGPIPE, SIG_IGN);

	/* Read the spec before joining: its path is a host path. */
	s = spec_load(spec_path, err, sizeof(err));
	if (s == NULL) {
		fprintf(stderr, PROG ": spec %s: %s\n", spec_path, err);
		return 126;
	}
	/* The socket's path means nothing in the container's mount namespace. */
	notify_preconnect();
	/* As runc's nsexec: not dumpable in the container's namespaces until the
	 * command's execve, so its processes cannot open our /proc files. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		fprintf(stderr, PROG ": PR_SET_DUMPABLE: %s\n", strerror(errno));
		return 126;
	}
	if (start_arg != NULL && (init = pin_init((pid_t)target, start_arg, err, sizeof(err))) < 0) {
		fprintf(stderr, PROG ": join container %ld: %s\n", target, err);
		return 126;
	}
	if (container_join((int)target, s, err, sizeof(err)) < 0) {
		fprintf(stderr, PROG ": join container %ld: %s\n", target, err);
		return 126;
	}
	/* Alive after the join: every /proc/PID it read was the init's. */
	if (init >= 0) {
		int exited = gone(init);

		close(init);
		if (exited) {
			fprintf(stderr, PROG ": join container %ld: the container's init has exited\n", target);
			return 126;
		}
	}

	if (tty && open_pty(&master, &slave, err, sizeof(err)) < 0) {
		fprintf(stderr, PROG ": terminal: %s\n", err);
		return 126;
	}
	if (tty && size_arg != NULL) {
		struct winsize ws = { 0 };
		unsigned w, h;
		char extra;

		if (sscanf(size_arg, "%u,%u%c", &w, &h, &extra) != 2 || w > 0xffff || h > 0xffff) {
			fprintf(stderr, PROG ": --size needs WIDTH,HEIGHT, got '%s'\n", size_arg);
			return 2;
		}
		ws.ws_col = (unsigned short)w;
		ws.ws_row = (unsigned short)h;
		ioctl(master, TIOCSWINSZ, &ws);
	}

	if (limit && (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)) {
		fprintf(stderr, PROG ": pipe: %s\n", strerror(errno));
		return 126;
	}

	/* Its write end stays open here until we exit: the child's proof that we live. */
	if (pipe2(alive, O_CLOEXEC) < 0) {
		fprintf(stderr, PROG ": pipe: %s\n", strerror(errno));
		return 126;
	}

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
		return 126;
	}
	if (pid == 0) {
		if (limit && (dup2(outp[1], 1) < 0 || dup2(errp[1], 2) < 0)) {
			fprintf(stderr, PROG ": dup2 output pipes: %s\n", strerror(errno));
			_exit(126);
		}
		close(alive[1]);
		child(s, slave, alive[0]);
	}
	close(alive[0]);
	/* Also here, so a kill right away reaches the group (with a tty the
	 * child's setsid does it). */
	if (!tty)
		setpgid(pid, pid);
	else
		return relay(pid, master, slave, resize_fd, &mask, timeout_kill, s);
	if (limit) {
		int code;

		close(outp[1]);
		close(errp[1]);
		code = capture_run(pid, outp[0], errp[0], &mask, limit, timeout_kill);
		spec_free(s);
		return code;
	}

	for (;;) {
		siginfo_t si;
		int st;
		pid_t w;

		if (sigwaitinfo(&mask, &si) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, PROG ": sigwaitinfo: %s\n", strerror(errno));
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			return 126;
		}
		if (si.si_signo != SIGCHLD) {
			if (!killed) {
				kill(-pid, SIGKILL);
				kill(pid, SIGKILL);
				killed = 1;
			}
			continue;
		}
		w = waitpid(pid, &st, WNOHANG);
		if (w != pid)
			continue;
		if (timeout_kill || killed)
			kill(-pid, SIGKILL);
		spec_free(s);
		if (WIFSIGNALED(st))
			return 128 + WTERMSIG(st);
		return WEXITSTATUS(st);
	}
}

int main(int argc, char **argv)
{
	int code = run(argc, argv);

	notify("exited", "%d", code);
	return code;
}
