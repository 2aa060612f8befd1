/* Logging to stderr (or a file): "<time> <level> message". */
#include "util/log.h"

#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_threshold = LOG_INFO;
static bool log_raw;
/*
 * Where lines go. Once it is not stderr its number never changes: a new
 * log file is dup3()'ed over it, so a thread writing a line meanwhile never
 * writes into a descriptor that was closed and reused for something else,
 * and repeated log_open_file calls keep one descriptor open.
 */
static _Atomic int log_fd = STDERR_FILENO;
static pthread_mutex_t log_open_lock = PTHREAD_MUTEX_INITIALIZER; /* serialises log_open_file */
static _Atomic uint64_t log_dropped;
static __thread char log_last[256];

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

void log_set_raw_terminal(bool raw)
{
	log_raw = raw;
}

int log_open_file(const char *path)
{
	int fd = file_open_sink(path, 0644), cur, ret = 0;

	if (fd < 0)
		return fd;
	pthread_mutex_lock(&log_open_lock);
	cur = atomic_load(&log_fd);
	if (cur == STDERR_FILENO)
		atomic_store(&log_fd, fd);
	else if (dup3(fd, cur, O_CLOEXEC) < 0)
		ret = -errno;
	pthread_mutex_unlock(&log_open_lock);
	if (cur != STDERR_FILENO)
		close(fd);
	return ret;
}

uint64_t log_dropped_lines(void)
{
	return atomic_load(&log_dropped);
}

/*
 * Copy @src into @dst (@len bytes with the NUL), control characters as
 * \xNN: text from a client (a URL, a path) must not forge a second log
 * line or send escape sequences to the terminal. Returns the length.
 */
static size_t log_escape(char *dst, size_t len, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (; *src && n + 5 < len; src++) {
		unsigned char c = (unsigned char)*src;

		if (c >= 0x20 && c != 0x7f) {
			dst[n++] = (char)c;
			continue;
		}
		dst[n++] = '\\';
		dst[n++] = 'x';
		dst[n++] = hex[c >> 4];
		dst[n++] = hex[c & 15];
	}
	dst[n] = '\0';
	return n;
}

static const char *const level_names[] = {
    [LOG_ERROR] = "error",
    [LOG_WARN] = "warn",
    [LOG_INFO] = "info",
    [LOG_DEBUG] = "debug",
};

const char *log_last_error(void)
{
	return log_last;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[1024], msg[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n, prefix, fd;

	if (level > log_threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
		     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ banyan %s: ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     ts.tv_nsec / 1000000, level_names[level]);
	prefix = n;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n += (int)log_escape(line + n, sizeof(line) - (size_t)n, msg);
	if (level == LOG_ERROR) {
		size_t len = strnlen(line + prefix, sizeof(log_last) - 1);

		memcpy(log_last, line + prefix, len);
		log_last[len] = '\0';
	}
	if (n > (int)sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	/* One write per line, so lines from different threads never interleave. */
	fd = atomic_load(&log_fd);
	if (log_raw && fd == STDERR_FILENO)
		line[n++] = '\r';
	line[n++] = '\n';
	/* A line (under PIPE_BUF) goes into a FIFO whole or not at all: a full one drops it. */
	if (write(fd, line, (size_t)n) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		atomic_fetch_add(&log_dropped, 1);
}
