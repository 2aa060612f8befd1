/* Splitting comma-separated "key[=value]" options into their words. */
#include "cli/kv_option.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void kv_option_start(struct kv_option *o, const char *name, char *arg)
{
	o->name = name;
	o->rest = arg;
	o->nwords = 0;
}

int kv_option_next(struct kv_option *o, char **key, char **val, char *err, size_t errlen)
{
	char *word = o->rest, *comma;

	if (!word || !*word) /* the end, after the last word or a trailing comma */
		return 0;
	comma = strchr(word, ',');
	if (comma)
		*comma++ = '\0';
	o->rest = comma;
	if (!*word) {
		o->rest = NULL;
		snprintf(err, errlen, "%s: empty word (a leading comma or two commas in a row)",
			 o->name);
		return -EINVAL;
	}
	*key = word;
	*val = strchr(word, '=');
	if (*val)
		*(*val)++ = '\0';
	o->nwords++;
	return 1;
}
