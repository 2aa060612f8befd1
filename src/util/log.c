/* Logging to stderr (or a file): "<time> <level> message". */
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_threshold = LOG_INFO;
static bool log_raw;
static int log_fd = STDERR_FILENO;
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
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	log_fd = fd;
	return 0;
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
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n, prefix;

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
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (level == LOG_ERROR) {
		size_t len = strnlen(line + prefix, sizeof(log_last) - 1);

		memcpy(log_last, line + prefix, len);
		log_last[len] = '\0';
	}
	if (n > (int)sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	/* One write per line, so lines from different threads never interleave. */
	if (log_raw && log_fd == STDERR_FILENO)
		line[n++] = '\r';
	line[n++] = '\n';
	if (write(log_fd, line, (size_t)n) < 0)
		(void)0; /* nowhere left to report a failing log */
}
