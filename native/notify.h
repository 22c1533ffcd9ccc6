/* Reports from a native helper to the server that spawned it.
 *
 * The server spawns helpers with posix_spawn (no pipe it could watch on every
 * JavaScript runtime), so a helper says what happened on the server's unix
 * socket instead: one connection per message, one line "KEY WORD [TEXT]\n".
 * KEY names what the message is about (a container or sandbox id), WORD is
 * "created", "ok", "error" or "exited". Without --notify nothing is sent. */
#ifndef PEAPOD_NOTIFY_H
#define PEAPOD_NOTIFY_H

/* Where to send; both strings must outlive the process (argv does). */
void notify_setup(const char *socket_path, const char *key);

/* Connects now, for a helper that will leave the server's mount namespace
 * (peapod-exec joins the container's), or so that the server has accepted
 * the connection by the time there is something to say: the next notify()
 * uses it. 0, or -1 when the server could not be reached. */
int notify_preconnect(void);

/* notify(word, fmt, ...) sends "KEY WORD TEXT"; newlines in TEXT become
 * spaces. 0 when sent (or when there is nowhere to send), -1 when the server
 * could not be reached:
 * a server that is down or restarting misses it and reads the state files,
 * but a helper whose first report is lost must not pretend it succeeded. */
#define notify(...) notify_keep(NULL, __VA_ARGS__)

/* As notify(), but with fd not NULL a sent message leaves its connection
 * open in *fd (else -1): the server may send commands back on it (the
 * monitor's "created" report; see ctl_adopt). */
int notify_keep(int *fd, const char *word, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
