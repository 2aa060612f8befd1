/* Error messages into a caller's buffer (errmsg.h). */
#include "util/errmsg.h"

#include <stdarg.h>
#include <stdio.h>

int errmsg_set(char *buf, size_t len, int ret, const char *fmt, ...)
{
	va_list ap;

	if (!buf || !len)
		return ret;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return ret;
}
