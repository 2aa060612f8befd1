/*
 * Splitting a comma-separated "key[=value],..." option such as
 * --disk path=FILE,ro into its words, shared by the option parsers.
 */
#ifndef BANYAN_CLI_KV_OPTION_H
#define BANYAN_CLI_KV_OPTION_H

#include <stddef.h>

struct kv_option {
	const char *name;    /* the option, "--disk", for error messages */
	char *rest;	     /* what is left to split; NULL at the end */
	unsigned int nwords; /* words returned so far: 1 for the first */
};

/*
 * kv_option_start - begin splitting @arg, the value of the option @name.
 * @arg is split in place (commas and the first '=' of each word become
 * NULs), so the keys and values returned point into it. Never fails.
 */
void kv_option_start(struct kv_option *o, const char *name, char *arg);

/*
 * kv_option_next - the next word: *@key is the text before its first '=',
 * *@val the text after it ("" for "key="), or NULL when the word has no
 * '='. Returns 1 with a word, 0 at the end, or -EINVAL with a one-line
 * reason in @err (@errlen bytes) for an empty word (a leading comma or two
 * in a row); splitting then stops. An empty @arg has no words and one
 * trailing comma is allowed. Never allocates.
 */
int kv_option_next(struct kv_option *o, char **key, char **val, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
