/* Logging to stderr (or a file): "<time> <level> message", queued, rate-limited for guests. */
#include "util/log.h"
#include "util/clock.h"

#include "util/file.h"
#include "util/ratelimit.h"
#include "util/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 1024
/* Once the log's reader stops reading, a flush gives it this long per byte of progress... */
#define LOG_FLUSH_IDLE_MS 1000
/* ...and this long in all. */
#define LOG_FLUSH_MAX_MS 5000

static enum log_level log_threshold = LOG_INFO;
static char log_name[80] = "banyan"; /* "banyan" or "banyan[ID]" (log_set_instance) */
static bool log_raw;
static _Atomic bool log_json; /* --log-format json */
/*
 * Where lines go. Once it is not stderr its number never changes: a new log
 * file is dup3()'ed over it, so repeated log_open_file calls keep one
 * descriptor open. The log's queue writes to a duplicate of its own.
 */
static _Atomic int log_fd = STDERR_FILENO;
static __thread char log_last[256];

/* writer_lock protects log_w's creation and log_fd changes; rl_lock protects log_rl. */
static pthread_mutex_t writer_lock = PTHREAD_MUTEX_INITIALIZER;
static struct writer *_Atomic log_w;
static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ratelimit log_rl;
static bool log_rl_ready;
static uint64_t (*_Atomic log_clock)(void);
static _Atomic uint64_t log_dropped;	  /* lines the queue refused */
static _Atomic uint64_t log_dropped_news; /* ...not yet reported in the log */

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

void log_set_instance(const char *id)
{
	snprintf(log_name, sizeof(log_name), "banyan[%.64s]", id);
}

int log_set_format(const char *name)
{
	if (strcmp(name, "text") && strcmp(name, "json"))
		return -EINVAL;
	atomic_store(&log_json, strcmp(name, "json") == 0);
	return 0;
}

void log_set_raw_terminal(bool raw)
{
	log_raw = raw;
}

static const char *const level_names[] = {
    [LOG_ERROR] = "error",
    [LOG_WARN] = "warn",
    [LOG_INFO] = "info",
    [LOG_DEBUG] = "debug",
};

int log_level_from_name(const char *name)
{
	for (unsigned int i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *log_last_error(void)
{
	return log_last;
}

static void log_tick(void *arg);

static void log_atexit(void)
{
	log_flush();
}

/*
 * A fork must not leave the child a lock held by another thread (the log's
 * own thread sweeps under rl_lock). Registered after the writers' handlers,
 * so these are taken before the writers' locks, which log_limited takes
 * under rl_lock. writer_lock first: log_open_file holds it while waiting
 * for the log's thread, which may need rl_lock.
 */
static void log_fork_prepare(void)
{
	pthread_mutex_lock(&writer_lock);
	pthread_mutex_lock(&rl_lock);
}

static void log_fork_parent(void)
{
	pthread_mutex_unlock(&rl_lock);
	pthread_mutex_unlock(&writer_lock);
}

static void log_fork_child(void)
{
	pthread_mutex_init(&rl_lock, NULL);
	pthread_mutex_init(&writer_lock, NULL);
}

/* The queue, started on the first line; NULL if it cannot be (then lines are written directly). */
static struct writer *log_writer(void)
{
	struct writer *w = atomic_load(&log_w);

	if (w)
		return w;
	pthread_mutex_lock(&writer_lock);
	w = atomic_load(&log_w);
	if (!w && writer_create(atomic_load(&log_fd), LOG_QUEUE_BYTES, NULL, &w) == 0) {
		writer_set_tick(w, log_tick, NULL, 1000);
		atomic_store(&log_w, w);
		atexit(log_atexit);
		pthread_atfork(log_fork_prepare, log_fork_parent, log_fork_child);
	}
	pthread_mutex_unlock(&writer_lock);
	return w;
}

void log_start(void)
{
	struct writer *w = log_writer();

	if (w)
		(void)writer_ensure_thread(w); /* without it, lines are written directly */
}

int log_sink_fd(void)
{
	return atomic_load(&log_fd);
}

int log_open_file(const char *path)
{
	int fd = file_open_sink(path, 0644), cur, ret = 0;
	struct writer *w;

	if (fd < 0)
		return fd;
	pthread_mutex_lock(&writer_lock);
	w = atomic_load(&log_w);
	/* Lines already queued belong to the old destination: give them a moment. */
	if (w)
		writer_flush(w, LOG_FLUSH_IDLE_MS, LOG_FLUSH_MAX_MS);
	cur = atomic_load(&log_fd);
	if (cur == STDERR_FILENO)
		atomic_store(&log_fd, fd);
	else if (dup3(fd, cur, O_CLOEXEC) < 0)
		ret = -errno;
	if (ret == 0 && w)
		ret = writer_set_fd(w, atomic_load(&log_fd));
	pthread_mutex_unlock(&writer_lock);
	if (cur != STDERR_FILENO)
		close(fd);
	return ret;
}

/*
 * Copy @src into @dst (@len bytes with the NUL), control characters as
 * \xNN: text from a client or a guest (a URL, a path) must not forge a
 * second log line or send escape sequences to the terminal. Returns the
 * length.
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

/* Format @fmt into @body (escaped). */
static void log_format_body(char *body, size_t len, const char *fmt, va_list ap)
{
	char raw[LOG_LINE_MAX];

	vsnprintf(raw, sizeof(raw), fmt, ap);
	log_escape(body, len, raw);
}

/*
 * @src (already free of control characters, log_escape) as the inside of a
 * JSON string: '"' and '\\' escaped, cut whole at @len bytes with the NUL.
 */
static void log_json_string(char *dst, size_t len, const char *src)
{
	size_t n = 0;

	for (; *src && n + 3 < len; src++) {
		if (*src == '"' || *src == '\\')
			dst[n++] = '\\';
		dst[n++] = *src;
	}
	dst[n] = '\0';
}

/* {"time":..,"level":..,"name":..,"thread":..,"msg":..}: the fields of a text line. */
static int log_format_json(char *line, const char *time, enum log_level level, const char *body)
{
	char msg[LOG_LINE_MAX - 256], name[2 * sizeof(log_name)], thread[40], comm[17] = "";

	/* PR_GET_NAME: every thread's seccomp filter allows it (the SIGSYS handler's). */
	(void)prctl(PR_GET_NAME, comm);
	log_json_string(thread, sizeof(thread), comm);
	log_json_string(name, sizeof(name), log_name);
	log_json_string(msg, sizeof(msg), body);
	return snprintf(line, LOG_LINE_MAX - 2,
			"{\"time\":\"%s\",\"level\":\"%s\",\"name\":\"%s\",\"thread\":\"%s\","
			"\"msg\":\"%s\"}",
			time, level_names[level], name, thread, msg);
}

/* "<time> banyan[ID] <level>: <body>" (or JSON) and the line end, in @line; returns its length. */
static size_t log_format_line(char *line, enum log_level level, const char *body)
{
	struct timespec ts;
	char time[96]; /* room for any int the compiler imagines */
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(time, sizeof(time), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	if (atomic_load(&log_json))
		n = log_format_json(line, time, level, body);
	else
		n = snprintf(line, LOG_LINE_MAX - 2, "%s %s %s: %s", time, log_name,
			     level_names[level], body);
	if (n < 0)
		n = 0;
	if (n > LOG_LINE_MAX - 3)
		n = LOG_LINE_MAX - 3;
	if (log_raw && atomic_load(&log_fd) == STDERR_FILENO)
		line[n++] = '\r';
	line[n++] = '\n';
	return (size_t)n;
}

/* Queue one finished line; a full queue drops it (counted, reported later). */
static bool log_queue_line(struct writer *w, const char *line, size_t len)
{
	if (writer_put_whole(w, line, len))
		return true;
	atomic_fetch_add(&log_dropped, 1);
	atomic_fetch_add(&log_dropped_news, 1);
	return false;
}

/* Lines dropped since the last report: say so before the next line. */
static void log_report_dropped(struct writer *w)
{
	uint64_t n = atomic_exchange(&log_dropped_news, 0);
	char body[128], line[LOG_LINE_MAX];

	if (!n)
		return;
	snprintf(body, sizeof(body), "%llu log lines dropped: the log's reader fell behind",
		 (unsigned long long)n);
	if (!writer_put_whole(w, line, log_format_line(line, LOG_WARN, body)))
		atomic_fetch_add(&log_dropped_news, n);
}

static void log_emit(enum log_level level, const char *body)
{
	char line[LOG_LINE_MAX];
	size_t len = log_format_line(line, level, body);
	struct writer *w = log_writer();

	if (!w) {
		/* No thread for the queue (out of resources): the old direct write. */
		if (write(atomic_load(&log_fd), line, len) < 0)
			(void)0; /* nowhere left to report a failing log */
		return;
	}
	log_report_dropped(w);
	log_queue_line(w, line, len);
}

static void log_note_error(enum log_level level, const char *body)
{
	size_t len;

	if (level != LOG_ERROR)
		return;
	len = strnlen(body, sizeof(log_last) - 1);
	memcpy(log_last, body, len);
	log_last[len] = '\0';
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char body[LOG_LINE_MAX];
	va_list ap;

	if (level > log_threshold)
		return;
	va_start(ap, fmt);
	log_format_body(body, sizeof(body), fmt, ap);
	va_end(ap);
	log_note_error(level, body);
	log_emit(level, body);
}

static uint64_t log_now(void)
{
	uint64_t (*fn)(void) = atomic_load(&log_clock);

	return fn ? fn() : now_ns();
}

void log_set_clock(uint64_t (*clock_fn)(void))
{
	atomic_store(&log_clock, clock_fn);
}

/* Called with rl_lock held. */
static void log_rl_init(void)
{
	if (log_rl_ready)
		return;
	ratelimit_init(&log_rl, (uint64_t)LOG_GUEST_INTERVAL_S * 1000000000ULL, LOG_GUEST_BURST,
		       LOG_GUEST_GLOBAL_BURST);
	log_rl_ready = true;
}

/* The report is written whatever the level: it stands for lines that passed it. */
static void log_emit_report(void *arg, const struct rl_report *rep)
{
	char body[LOG_LINE_MAX];

	(void)arg;
	snprintf(body, sizeof(body),
		 "%llu similar lines suppressed in the last %.1f s (rate limit); the last: %s",
		 (unsigned long long)rep->held, (double)rep->span_ns / 1e9, rep->last);
	log_emit(LOG_WARN, body);
}

void log_limited(const struct log_site *site, const void *owner, enum log_level level,
		 const char *fmt, ...)
{
	char body[LOG_LINE_MAX];
	struct rl_report rep;
	va_list ap;
	bool pass;

	if (level > log_threshold)
		return;
	va_start(ap, fmt);
	log_format_body(body, sizeof(body), fmt, ap);
	va_end(ap);
	/* Reports and lines are queued under rl_lock, so a report precedes its source's line. */
	pthread_mutex_lock(&rl_lock);
	log_rl_init();
	pass = ratelimit_allow(&log_rl, site, owner, log_now(), body, &rep);
	if (rep.held)
		log_emit_report(NULL, &rep);
	if (pass) {
		log_note_error(level, body);
		log_emit(level, body);
	}
	pthread_mutex_unlock(&rl_lock);
}

/* From the log's thread, about once a second: report intervals that ended. */
static void log_sweep(bool all)
{
	pthread_mutex_lock(&rl_lock);
	if (log_rl_ready)
		ratelimit_sweep(&log_rl, log_now(), all, log_emit_report, NULL);
	pthread_mutex_unlock(&rl_lock);
}

static void log_tick(void *arg)
{
	(void)arg;
	log_sweep(false);
}

void log_flush(void)
{
	struct writer *w;

	log_sweep(true);
	w = atomic_load(&log_w);
	if (w)
		writer_flush(w, LOG_FLUSH_IDLE_MS, LOG_FLUSH_MAX_MS);
}

uint64_t log_dropped_lines(void)
{
	return atomic_load(&log_dropped);
}

uint64_t log_suppressed_lines(void)
{
	uint64_t n;

	pthread_mutex_lock(&rl_lock);
	n = log_rl.held_total;
	pthread_mutex_unlock(&rl_lock);
	return n;
}
