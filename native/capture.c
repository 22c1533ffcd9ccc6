#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "util.h"

#define PROG "peapod-exec"
/* How long output may still come from background holders of the pipes. */
#define DRAIN_MS 50

struct sink {
	int from, to;
	size_t left;
};

/* One read from s->from; 0 at EOF (the pipe is then closed), else 1. */
static int pump(struct sink *s)
{
	char buf[65536];
	ssize_t n = read(s->from, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	if (n <= 0) {
		close(s->from);
		s->from = -1;
		return 0;
	}
	if (s->left > 0) {
		size_t k = (size_t)n < s->left ? (size_t)n : s->left;

		/* A full or failing output file drops output; the command goes on. */
		if (write_all(s->to, buf, k) < 0)
			s->left = 0;
		else
			s->left -= k;
	}
	return 1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int command_signalfd(pid_t pid, const sigset_t *mask)
{
	int sfd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);

	if (sfd < 0) {
		fprintf(stderr, PROG ": signalfd: %s\n", strerror(errno));
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	return sfd;
}

int command_signals(int sfd, pid_t pid, int *killed)
{
	struct signalfd_siginfo si;
	int st;

	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo != SIGCHLD && !*killed) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			*killed = 1;
		}
	}
	return waitpid(pid, &st, WNOHANG) == pid ? st : -1;
}

int command_poll_failed(pid_t pid)
{
	if (errno == EINTR)
		return 0;
	fprintf(stderr, PROG ": poll: %s\n", strerror(errno));
	kill(-pid, SIGKILL);
	return -1;
}

int capture_run(pid_t pid, int out_r, int err_r, const sigset_t *mask, size_t limit, int kill_group_at_exit)
{
	struct sink sinks[2] = { { out_r, 1, limit }, { err_r, 2, limit } };
	long long deadline = -1;
	int sfd, status = -1, killed = 0;

	fcntl(out_r, F_SETFL, O_NONBLOCK);
	fcntl(err_r, F_SETFL, O_NONBLOCK);
	sfd = command_signalfd(pid, mask);
	if (sfd < 0)
		return 126;
	while (status < 0 || sinks[0].from >= 0 || sinks[1].from >= 0) {
		struct pollfd p[3] = {
			{ .fd = status < 0 ? sfd : -1, .events = POLLIN },
			{ .fd = sinks[0].from, .events = POLLIN },
			{ .fd = sinks[1].from, .events = POLLIN },
		};
		int wait = -1;

		if (deadline >= 0) {
			wait = (int)(deadline - now_ms());
			if (wait <= 0)
				break;
		}
		if (poll(p, 3, wait) < 0) {
			if (command_poll_failed(pid) == 0)
				continue;
			return 126;
		}
		if ((p[0].revents & POLLIN) && (status = command_signals(sfd, pid, &killed)) >= 0)
			deadline = now_ms() + DRAIN_MS;
		for (int i = 0; i < 2; i++)
			if (p[i + 1].revents & (POLLIN | POLLHUP | POLLERR))
				pump(&sinks[i]);
	}
	close(sfd);
	if (kill_group_at_exit || killed)
		kill(-pid, SIGKILL);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
