/* peapod-exec: run a command in a running container (ExecSync, probes).
 *
 *   peapod-exec --pid PID --spec SPECFILE [--timeout-kill]
 *
 * Joins the namespaces and cgroups of the container whose init is PID
 * (container_join), then forks the command: it becomes the leader of a new
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
 * Exit status: the command's, or 128+N when it died of signal N; 126 when
 * the set-up failed (spec, join, process set-up, or exec failed for another
 * reason than a missing program); 127 when the program was not found; 2 for
 * usage errors. Failures are reported as "peapod-exec: <message>" on stderr.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container.h"
#include "util.h"

#define PROG "peapod-exec"

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " --pid PID --spec SPECFILE [--timeout-kill]\n");
}

static const char *opt_value(int argc, char **argv, int *i, const char *name)
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
		fprintf(stderr, PROG ": %s needs a value\n", name);
		usage(stderr);
		exit(2);
	}
	return argv[++*i];
}

static __attribute__((noreturn)) void child(const struct spec *s)
{
	char err[1024];
	int e;

	if (reset_signals() < 0) {
		fprintf(stderr, PROG ": reset signals: %s\n", strerror(errno));
		_exit(126);
	}
	setpgid(0, 0);
	/* The parent is outside the container's PID namespace (getppid() is 0
	 * here), so a parent that died before this call goes unnoticed: a
	 * window of a few instructions. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (container_process_setup(s, err, sizeof(err)) < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		_exit(126);
	}
	container_exec(s);
	e = errno;
	fprintf(stderr, PROG ": exec: %s\n", strerror(e));
	_exit(e == ENOENT || e == ENOTDIR ? 127 : 126);
}

int main(int argc, char **argv)
{
	const char *spec_path = NULL, *pid_arg = NULL;
	int timeout_kill = 0, killed = 0;
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
		} else if ((v = opt_value(argc, argv, &i, "--pid")) != NULL) {
			pid_arg = v;
		} else if ((v = opt_value(argc, argv, &i, "--spec")) != NULL) {
			spec_path = v;
		} else {
			fprintf(stderr, PROG ": unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (pid_arg == NULL || spec_path == NULL) {
		usage(stderr);
		return 2;
	}
	errno = 0;
	target = strtol(pid_arg, &end, 10);
	if (errno || *end || end == pid_arg || target < 1 || target > 0x3fffffff) {
		fprintf(stderr, PROG ": --pid needs a process id, got '%s'\n", pid_arg);
		usage(stderr);
		return 2;
	}

	/* The command runs in the container: no server descriptor may reach it. */
	if (close_fds_from(3) < 0) {
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
	if (container_join((int)target, err, sizeof(err)) < 0) {
		fprintf(stderr, PROG ": join container %ld: %s\n", target, err);
		return 126;
	}

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
		return 126;
	}
	if (pid == 0)
		child(s);
	/* Also here, so a kill right away reaches the group. */
	setpgid(pid, pid);

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
