/* Logging: one line per event, with level and timestamp, on stderr or a file. */
#ifndef BANYAN_UTIL_LOG_H
#define BANYAN_UTIL_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/*
 * log_set_level - drop messages less severe than @level (default LOG_INFO).
 */
void log_set_level(enum log_level level);

/*
 * log_set_raw_terminal - when the terminal that shares stderr is in raw mode,
 * lines must end in "\r\n" to stay readable next to the guest console.
 */
void log_set_raw_terminal(bool raw);

/*
 * log_open_file - send log lines to @path instead of stderr: a regular file
 * (appended, created when missing) or a FIFO, opened so that neither the
 * open nor a write ever blocks (file_open_sink); a line that does not fit a
 * full FIFO is dropped and counted. Calling it again replaces the file and
 * keeps a single descriptor open. Returns 0 or -errno (the log is then
 * unchanged).
 */
int log_open_file(const char *path);

/* log_dropped_lines - lines dropped because the log FIFO was full. */
uint64_t log_dropped_lines(void);

/*
 * log_msg - format and write one line; never allocates, safe from any
 * thread. Control characters in the message are written as \xNN.
 */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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
