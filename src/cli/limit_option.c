/* Rate-limiter words on the command line, turned into the API's rate_limiter objects. */
#include "cli/limit_option.h"

#include "cli/kv_option.h"
#include "config/vmcfg.h"
#include "util/parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A count of bytes (K, M, G binary suffixes; none: bytes) or operations. */
static int parse_amount(const char *s, uint64_t *out)
{
	size_t n = strlen(s);

	if (n && isdigit((unsigned char)s[n - 1]))
		return parse_uint(s, 0, UINT64_MAX, out);
	return parse_size(s, out);
}

/* "100ms", "1s", "250" (milliseconds) into milliseconds. */
static int parse_ms(const char *s, uint64_t *out)
{
	char num[32];
	size_t n = strspn(s, "0123456789");
	uint64_t mult = 1;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	if (strcmp(s + n, "s") == 0)
		mult = 1000;
	else if (s[n] && strcmp(s + n, "ms") != 0)
		return -EINVAL;
	memcpy(num, s, n);
	num[n] = '\0';
	if (parse_uint(num, 0, UINT64_MAX / 1000, out) < 0)
		return -EINVAL;
	*out *= mult;
	return 0;
}

/* The object @key of @parent, created when missing. */
static json_object *child(json_object *parent, const char *key)
{
	json_object *o = NULL;

	if (json_object_object_get_ex(parent, key, &o) && o)
		return o;
	o = json_object_new_object();
	json_object_object_add(parent, key, o);
	return o;
}

/* AMOUNT/TIME of bucket @bucket, or AMOUNT alone for its burst. */
static int set_bucket(json_object *limiter, const char *bucket, bool burst, const char *val)
{
	json_object *b = child(limiter, bucket);
	char amount[64];
	const char *slash = strchr(val, '/');
	uint64_t n, ms;

	if (burst) {
		if (parse_amount(val, &n) < 0 || n > INT64_MAX)
			return -EINVAL;
		json_object_object_add(b, "one_time_burst", json_object_new_int64((int64_t)n));
		return 0;
	}
	if (!slash || (size_t)(slash - val) >= sizeof(amount))
		return -EINVAL;
	memcpy(amount, val, (size_t)(slash - val));
	amount[slash - val] = '\0';
	if (parse_amount(amount, &n) < 0 || n > INT64_MAX || parse_ms(slash + 1, &ms) < 0)
		return -EINVAL;
	json_object_object_add(b, "size", json_object_new_int64((int64_t)n));
	json_object_object_add(b, "refill_time", json_object_new_int64((int64_t)ms));
	return 0;
}

int limit_option_word(json_object *body, const char *field, const char *word, const char *val,
		      char *err, size_t errlen)
{
	static const char *const words[] = {"bw", "bw_burst", "ops", "ops_burst"};
	unsigned int i;

	for (i = 0; i < 4 && strcmp(word, words[i]); i++)
		;
	if (i == 4)
		return 0;
	if (!val || set_bucket(child(body, field), i < 2 ? "bandwidth" : "ops", i % 2, val) < 0) {
		snprintf(err, errlen,
			 "'%s=%s': use %s=%s (e.g. %s=%s; sizes take K, M, G, times ms or s)", word,
			 val ? val : "", word, i % 2 ? "AMOUNT" : "AMOUNT/TIME", word,
			 i < 2 ? (i % 2 ? "1M" : "10M/100ms") : (i % 2 ? "100" : "1000/1s"));
		return -EINVAL;
	}
	return 1;
}

/* The words of --rng into @body; only limiter words. */
static int rng_words(json_object *body, char *arg, char *err, size_t errlen)
{
	struct kv_option o;
	char *key, *val, why[160];
	int ret;

	kv_option_start(&o, "--rng", arg);
	while ((ret = kv_option_next(&o, &key, &val, err, errlen)) > 0) {
		ret = limit_option_word(body, "rate_limiter", key, val, why, sizeof(why));
		if (ret <= 0) {
			snprintf(err, errlen, "--rng: %s",
				 ret < 0 ? why : "takes only bw=, bw_burst=, ops=, ops_burst=");
			return -EINVAL;
		}
	}
	return ret;
}

int rng_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
{
	json_object *body = json_object_new_object();
	char why[VMCFG_ERR_LEN];
	int ret = body ? 0 : -ENOMEM;

	if (ret == 0 && arg && *arg)
		ret = rng_words(body, arg, err, errlen);
	if (ret == 0 && vmcfg_entropy(c, body, why) < 0) {
		snprintf(err, errlen, "--rng: %s", why);
		ret = -EINVAL;
	}
	if (ret == -ENOMEM)
		snprintf(err, errlen, "--rng: out of memory");
	json_object_put(body);
	return ret;
}
