/* Test driver for the container launcher (not part of the build):
 *
 *   run-spec SPECFILE            fork into the spec's PID namespace, set the
 *                                container up, exec it, wait for it
 *   run-spec -j PID SPECFILE     container_join(PID), fork, process set-up
 *                                and exec only (what peapod-exec will do)
 *
 * Exits with the container's status, 128+N for signal N, 125 when set-up
 * failed (message on stderr), 127 when the exec failed. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../container.h"
#include "../spec.h"


int main(int argc, char **argv)
{
	char err[1024];
	struct spec *s;
	int join_pid = 0, status;
	pid_t pid;

	if (argc == 4 && strcmp(argv[1], "-j") == 0) {
		join_pid = atoi(argv[2]);
		argv += 2;
	} else if (argc != 2) {
		fprintf(stderr, "usage: run-spec [-j PID] SPECFILE\n");
		return 2;
	}
	s = spec_load(argv[1], err, sizeof(err));
	if (s == NULL) {
		fprintf(stderr, "run-spec: %s\n", err);
		return 125;
	}
	if (join_pid > 0 ? container_join(join_pid, s, err, sizeof(err)) < 0
			 : container_enter_pidns(s) < 0) {
		if (join_pid == 0)
			snprintf(err, sizeof(err), "enter pid namespace %s: %s", spec_pidns(s), strerror(errno));
		fprintf(stderr, "run-spec: %s\n", err);
		return 125;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("run-spec: fork");
		return 125;
	}
	if (pid == 0) {
		/* Die with the driver, so a killed test leaves nothing behind. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			_exit(125);
		if (join_pid > 0 ? container_process_setup(s, err, sizeof(err)) < 0
				 : container_setup(s, err, sizeof(err)) < 0) {
			fprintf(stderr, "run-spec: %s\n", err);
			_exit(125);
		}
		if (*spec_warnings())
			fprintf(stderr, "run-spec: warning: %s\n", spec_warnings());
		container_exec(s);
		fprintf(stderr, "run-spec: exec %s: %s\n", s->args[0], strerror(errno));
		_exit(127);
	}
	for (size_t i = 0; join_pid == 0 && i < spec_cgroup_count(s); i++) {
		char procs[4096], p[24];
		int fd;

		snprintf(procs, sizeof(procs), "%s/cgroup.procs", spec_cgroup(s, i));
		snprintf(p, sizeof(p), "%d", pid);
		fd = open(procs, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, p, strlen(p)) < 0)
			fprintf(stderr, "run-spec: %s: %s\n", procs, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			perror("run-spec: waitpid");
			return 125;
		}
	spec_free(s);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
