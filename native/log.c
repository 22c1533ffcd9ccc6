/* CRI container log writer; see log.h for the format and its rules. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_MODE 0640

void log_stream_init(struct log_stream *st, const char *name)
{
	st->name = name;
	st->len = 0;
}

void log_timestamp(char out[31], long long sec, long nsec)
{
	time_t t = (time_t)sec;
	struct tm tm;

	gmtime_r(&t, &tm);
	if (strftime(out, 31, "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
		/* Years past 9999: not worth a wider format. */
		memcpy(out, "9999-12-31T23:59:59", 19);
	}
	out[19] = '.';
	for (int i = 28; i >= 20; i--) {
		out[i] = (char)('0' + nsec % 10);
		nsec /= 10;
	}
	out[29] = 'Z';
	out[30] = '\0';
}

static int open_log(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, LOG_MODE);
}

int log_open(struct log_file *lf, const char *path)
{
	lf->fd = -1;
	lf->path = path;
	lf->used = 0;
	lf->dropped = 0;
	lf->dropped_total = 0;
	lf->failing = 0;
	if (path == NULL)
		return 0;
	lf->fd = open_log(path);
	return lf->fd < 0 ? -1 : 0;
}

int log_reopen(struct log_file *lf)
{
	int fd;

	log_flush(lf);
	if (lf->path == NULL)
		return 0;
	fd = open_log(lf->path);
	if (fd < 0)
		return -1;
	if (lf->fd >= 0)
		close(lf->fd);
	lf->fd = fd;
	return 0;
}

static void write_failed(struct log_file *lf, int err)
{
	lf->dropped += lf->used;
	lf->dropped_total += lf->used;
	if (!lf->failing) {
		fprintf(stderr, "peapod-monitor: log %s: %s; dropping container output until it can be written\n",
			lf->path, strerror(err));
		lf->failing = 1;
	}
}

void log_flush(struct log_file *lf)
{
	size_t done = 0;

	if (lf->used == 0)
		return;
	if (lf->fd < 0) {
		lf->used = 0;
		return;
	}
	while (done < lf->used) {
		ssize_t n = write(lf->fd, lf->out + done, lf->used - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : ENOSPC;

			/* Remove a torn batch: O_APPEND left the offset at the end. */
			if (done > 0) {
				off_t end = lseek(lf->fd, 0, SEEK_CUR);

				if (end >= (off_t)done && ftruncate(lf->fd, end - (off_t)done) < 0) {
					/* Nothing better to do: the torn line stays. */
				}
			}
			write_failed(lf, err);
			lf->used = 0;
			return;
		}
		done += (size_t)n;
	}
	if (lf->failing) {
		fprintf(stderr, "peapod-monitor: log %s: writing again; %" PRIu64 " bytes of container output were dropped\n",
			lf->path, lf->dropped);
		lf->failing = 0;
		lf->dropped = 0;
	}
	lf->used = 0;
}

void log_close(struct log_file *lf)
{
	log_flush(lf);
	if (lf->fd >= 0)
		close(lf->fd);
	lf->fd = -1;
}

static void emit(struct log_file *lf, const struct log_stream *st, char tag,
		 const char *content, size_t len)
{
	struct timespec ts;
	char stamp[31];
	size_t need;
	int h;

	need = 30 + 1 + strlen(st->name) + 3 + len + 1;
	if (sizeof(lf->out) - lf->used < need)
		log_flush(lf);
	clock_gettime(CLOCK_REALTIME, &ts);
	log_timestamp(stamp, (long long)ts.tv_sec, ts.tv_nsec);
	h = snprintf(lf->out + lf->used, sizeof(lf->out) - lf->used, "%s %s %c ",
		     stamp, st->name, tag);
	lf->used += (size_t)h;
	memcpy(lf->out + lf->used, content, len);
	lf->used += len;
	lf->out[lf->used++] = '\n';
}

/* pending holds LOG_MAX_LINE + 1 bytes: the first LOG_MAX_LINE go out as a
 * partial piece, the last one stays. */
static void cut(struct log_file *lf, struct log_stream *st)
{
	emit(lf, st, 'P', st->pending, LOG_MAX_LINE);
	st->pending[0] = st->pending[LOG_MAX_LINE];
	st->len = 1;
}

void log_feed(struct log_file *lf, struct log_stream *st, const char *data, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t seg = nl ? (size_t)(nl - data) : n;

		while (seg > 0) {
			size_t k;

			/* More content follows a full buffer: it is a partial line. */
			if (st->len == LOG_MAX_LINE + 1)
				cut(lf, st);
			k = LOG_MAX_LINE + 1 - st->len;
			if (k > seg)
				k = seg;
			memcpy(st->pending + st->len, data, k);
			st->len += k;
			data += k;
			n -= k;
			seg -= k;
		}
		if (nl == NULL) {
			/* A '\r' in the last place may still be part of "\r\n". */
			if (st->len == LOG_MAX_LINE + 1 && st->pending[LOG_MAX_LINE] != '\r')
				cut(lf, st);
			break;
		}
		if (st->len > 0 && st->pending[st->len - 1] == '\r')
			st->len--;
		if (st->len == LOG_MAX_LINE + 1)
			cut(lf, st);
		emit(lf, st, 'F', st->pending, st->len);
		st->len = 0;
		data++; /* the newline */
		n--;
	}
}

void log_stream_end(struct log_file *lf, struct log_stream *st)
{
	if (st->len == LOG_MAX_LINE + 1)
		cut(lf, st);
	if (st->len > 0)
		emit(lf, st, 'P', st->pending, st->len);
	st->len = 0;
}
