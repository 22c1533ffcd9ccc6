/* CRI container log writer (the format kubelet reads back):
 *
 *   <timestamp> <stdout|stderr> <P|F> <content>\n
 *
 * timestamp is RFC 3339 in UTC with nine fractional digits
 * (2026-11-22T20:40:01.123456789Z). Semantics follow containerd's
 * internal/cri/io/logger.go: one F line per newline-terminated line, the
 * newline and a '\r' right before it dropped; content longer than
 * LOG_MAX_LINE is cut into P pieces of LOG_MAX_LINE bytes; data without a
 * newline is held back until the line ends, grows past LOG_MAX_LINE, or the
 * stream ends, and a last unterminated piece at end of stream is tagged P.
 *
 * A failing log file (ENOSPC, EIO, ...) never blocks or stops the reader: the
 * data is dropped and counted, one warning goes to stderr, and writing resumes
 * when the file accepts data again.
 */
#ifndef PEAPOD_LOG_H
#define PEAPOD_LOG_H

#include <stddef.h>
#include <stdint.h>

#define LOG_MAX_LINE 16384

struct log_stream {
	const char *name;              /* "stdout" or "stderr" */
	size_t len;                    /* bytes held in pending */
	char pending[LOG_MAX_LINE + 2];
};

struct log_file {
	int fd;                 /* -1: discard everything */
	const char *path;       /* NULL: no log file */
	size_t used;            /* bytes in out */
	uint64_t dropped;       /* bytes lost since the last successful write */
	uint64_t dropped_total;
	int failing;            /* a warning was printed, no success since */
	char out[65536];
};

void log_stream_init(struct log_stream *st, const char *name);

/* Opens path (NULL: no log, output is discarded). -1 with errno on error. */
int log_open(struct log_file *lf, const char *path);

/* Flushes, then opens the path anew (for log rotation). On failure the old
 * file stays in use and -1 is returned with errno set. */
int log_reopen(struct log_file *lf);

/* Feeds bytes read from the container's stream. */
void log_feed(struct log_file *lf, struct log_stream *st, const char *data, size_t n);

/* End of the stream: writes what is held back (tag P). */
void log_stream_end(struct log_file *lf, struct log_stream *st);

/* Writes the buffered lines to the file. */
void log_flush(struct log_file *lf);

void log_close(struct log_file *lf);

/* "2026-11-22T20:40:01.123456789Z" (30 bytes) + NUL from a CLOCK_REALTIME time. */
void log_timestamp(char out[31], long long sec, long nsec);

#endif
