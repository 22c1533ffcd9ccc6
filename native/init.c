/*
 * peapod-init: an optional PID 1 for a container that has a PID namespace of
 * its own (annotation peapod.io/init: "true"), like `docker run --init`.
 * It runs the command as its child, passes every catchable signal on to it,
 * reaps every orphan the namespace hands it, and exits as the command did
 * (128+N for a death by signal N).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	sigset_t all, old;
	pid_t child;
	int status = 0;

	int first = 1;
	if (argc > 1 && strcmp(argv[1], "--") == 0)
		first = 2;
	if (first >= argc) {
		fprintf(stderr, "usage: peapod-init [--] COMMAND [ARG...]\n");
		return 2;
	}

	/* Signals wait in the mask until sigwaitinfo takes them: none is lost. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);

	child = fork();
	if (child < 0) {
		perror("peapod-init: fork");
		return 126;
	}
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[first], argv + first);
		fprintf(stderr, "peapod-init: exec %s: %s\n", argv[first], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		for (;;) {
			int st;
			pid_t pid = waitpid(-1, &st, WNOHANG);
			if (pid <= 0)
				break;
			if (pid == child) {
				status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
				/* Leaving ends the namespace: the kernel kills what is left. */
				return status;
			}
		}
	}
}
