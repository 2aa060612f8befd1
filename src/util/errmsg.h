/*
 * Error messages for callers that pass a buffer: the function fills it with
 * the reason in words (for the API or the command line) and returns its
 * -errno, in one statement: return errmsg_set(err, len, -EINVAL, "...").
 */
#ifndef BANYAN_UTIL_ERRMSG_H
#define BANYAN_UTIL_ERRMSG_H

#include <stddef.h>

/*
 * errmsg_set - format @fmt into @buf (@len bytes, truncated and always
 * terminated); a NULL @buf or a zero @len is left alone. Returns @ret, so
 * the caller returns the error code and its message together.
 */
__attribute__((format(printf, 4, 5))) int errmsg_set(char *buf, size_t len, int ret,
						     const char *fmt, ...);

#endif
