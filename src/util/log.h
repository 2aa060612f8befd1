/*
 * Logging: one line per event, with level and timestamp, on stderr or a file.
 *
 * Lines go through a bounded queue written by a thread of its own
 * (util/writer.h): a thread that logs never waits for whoever reads the log
 * (a full pipe, a stopped terminal). A line that does not fit is dropped
 * and counted, and the next line that fits is preceded by the count.
 *
 * Lines a guest can cause (its device misuse, its exits) go through
 * log_guest_*(): at most LOG_GUEST_BURST lines per LOG_GUEST_INTERVAL_S per
 * message site and owner, LOG_GUEST_GLOBAL_BURST for all of them together,
 * then one line with the number held back (util/ratelimit.h).
 */
#ifndef BANYAN_UTIL_LOG_H
#define BANYAN_UTIL_LOG_H

#include <stdbool.h>
#include <stdint.h>

#define LOG_QUEUE_BYTES	       (256 * 1024)
#define LOG_GUEST_INTERVAL_S   5
#define LOG_GUEST_BURST	       10
#define LOG_GUEST_GLOBAL_BURST 100

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/*
 * log_set_level - drop messages less severe than @level (default LOG_INFO).
 */
void log_set_level(enum log_level level);

/*
 * log_level_from_name - the level named @name as log lines spell it
 * ("error", "warn", "info", "debug"), or -1 when there is none.
 */
int log_level_from_name(const char *name);

/*
 * log_set_format - "text" (the default: "<time> banyan <level>: message")
 * or "json": one object per line, {"time", "level", "name", "thread",
 * "msg"}, for log collectors. Returns 0, or -EINVAL for another name.
 */
int log_set_format(const char *name);

/*
 * log_set_instance - name the VM in every line: "banyan[@id]" where lines
 * say "banyan" (Firecracker's --id). Set before the first line is logged.
 */
void log_set_instance(const char *id);

/*
 * log_set_raw_terminal - when the terminal that shares stderr is in raw mode,
 * lines must end in "\r\n" to stay readable next to the guest console.
 */
void log_set_raw_terminal(bool raw);

/*
 * log_open_file - send log lines to @path instead of stderr: a regular file
 * (appended, created when missing) or a FIFO, opened so that the open never
 * blocks (file_open_sink); lines already queued are given a moment to reach
 * the old destination first. Calling it again replaces the file and keeps a
 * single descriptor open. Returns 0 or -errno (the log is then unchanged).
 */
int log_open_file(const char *path);

/*
 * Start the log's writer thread now, from the calling thread, rather than
 * on the first line (whichever thread writes it): a sandboxed thread may
 * not be allowed to start threads. Never fails (without the thread, lines
 * are written directly).
 */
void log_start(void);

/*
 * The descriptor log lines go to (stderr, or the log file, which keeps its
 * number once opened). Async-signal-safe: the SIGSYS handler writes there.
 */
int log_sink_fd(void);

/*
 * log_msg - format and queue one line; safe from any thread, never blocks on
 * the log's reader. Control characters in the message are written as \xNN.
 */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * log_flush - report the rate-limited lines still held back, then wait
 * until the queued lines are written: at most about a second once the log's
 * reader stops reading, a few seconds in all. Also run at exit.
 */
void log_flush(void);

/* log_dropped_lines - lines dropped because the log's reader fell behind (queue full). */
uint64_t log_dropped_lines(void);

/* log_suppressed_lines - guest-triggered lines the rate limit held back. */
uint64_t log_suppressed_lines(void);

/*
 * log_set_clock - the clock of the rate limit (CLOCK_MONOTONIC ns by
 * default; unit tests inject theirs). NULL restores the default.
 */
void log_set_clock(uint64_t (*now_ns)(void));

/* A message site: its address tells one log_guest_*() call from another. */
struct log_site {
	const char *file;
	int line;
};

/*
 * log_limited - log_msg for a line the guest can cause, spoken at @site for
 * @owner (the device; NULL when there is none): rate-limited as above.
 * Use it through log_guest_*().
 */
void log_limited(const struct log_site *site, const void *owner, enum log_level level,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_guest(level, owner, ...)                                                               \
	do {                                                                                       \
		static const struct log_site log_site_ = {__FILE__, __LINE__};                     \
		log_limited(&log_site_, (owner), (level), __VA_ARGS__);                            \
	} while (0)

#define log_guest_error(owner, ...) log_guest(LOG_ERROR, owner, __VA_ARGS__)
#define log_guest_warn(owner, ...)  log_guest(LOG_WARN, owner, __VA_ARGS__)
#define log_guest_info(owner, ...)  log_guest(LOG_INFO, owner, __VA_ARGS__)
#define log_guest_debug(owner, ...) log_guest(LOG_DEBUG, owner, __VA_ARGS__)

/*
 * log_last_error - the text of the last error this thread logged ("" if
 * none), so a caller can hand the reason of a failure to an API client.
 */
const char *log_last_error(void);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
