/* pause: PID 1 of a peapod pod sandbox.
 *
 * Mirrors the upstream Kubernetes pause container: it holds the pod's
 * namespaces open, exits 0 on SIGINT/SIGTERM and reaps every orphan that
 * is reparented to it.  It does nothing else and never spins.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION "unknown"
#endif

static void say(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len > 0) {
		ssize_t n = write(fd, s, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		s += n;
		len -= (size_t)n;
	}
}

static void sigdown(int signo)
{
	say(2, signo == SIGINT ? "pause: shutting down, got SIGINT\n"
			       : "pause: shutting down, got SIGTERM\n");
	_exit(0);
}

static void sigreap(int signo)
{
	int saved = errno, st;

	(void)signo;
	while (waitpid(-1, &st, WNOHANG) > 0)
		;
	errno = saved;
}

static int on(int signo, void (*fn)(int), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	/* Never run the reaper and the shutdown path inside each other. */
	sigaddset(&sa.sa_mask, SIGCHLD);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGTERM);
	return sigaction(signo, &sa, NULL);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "-v") == 0) {
		say(1, "pause version " VERSION "\n");
		return 0;
	}
	/* --sandbox DIR only names the pod in the process list: a server killed
	 * before it learned this pause's pid finds it by that at its next start. */
	if (argc > 1 && !(argc == 3 && strcmp(argv[1], "--sandbox") == 0)) {
		say(2, "usage: pause [-v | --sandbox DIR]\n");
		return 2;
	}
	if (getpid() != 1)
		say(2, "pause: warning: not running as PID 1\n");

	if (on(SIGINT, sigdown, SA_RESTART) < 0 ||
	    on(SIGTERM, sigdown, SA_RESTART) < 0 ||
	    on(SIGCHLD, sigreap, SA_RESTART | SA_NOCLDSTOP) < 0) {
		say(2, "pause: sigaction failed\n");
		return 1;
	}
	/* Children that exited before the handler was installed. */
	sigreap(SIGCHLD);

	for (;;)
		pause();
}
