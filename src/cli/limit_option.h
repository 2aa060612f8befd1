/*
 * The rate-limiter words of --disk, --net and --rng, another spelling of
 * the API's rate_limiter objects (Firecracker's RateLimiter):
 *
 *   bw=SIZE/TIME     bandwidth bucket: SIZE bytes every TIME
 *   bw_burst=SIZE    its one-time burst
 *   ops=N/TIME       operations bucket: N requests every TIME
 *   ops_burst=N      its one-time burst
 *
 * SIZE is bytes, with K, M, G (binary) suffixes; TIME is "100ms", "1s",
 * or a bare number of milliseconds. --net takes each with rx_ or tx_ in
 * front (rx_bw=, tx_ops=, ...). E.g. bw=10M/100ms is size 10485760,
 * refill_time 100: 100 MiB/s in steps of 10 MiB.
 */
#ifndef BANYAN_CLI_LIMIT_OPTION_H
#define BANYAN_CLI_LIMIT_OPTION_H

#include <stddef.h>

#include <json-c/json.h>

struct vmcfg;

/*
 * limit_option_word - when @word (with its value @val) is one of the
 * words above, set it in the limiter object @field of @body (created when
 * missing) and return 1; return 0 for any other word; -EINVAL with a
 * one-line reason in @err (@errlen bytes) for a malformed value.
 */
int limit_option_word(json_object *body, const char *field, const char *word, const char *val,
		      char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * rng_option_parse - --rng[=bw=...,ops=...]: add the entropy device to @c
 * through vmcfg_entropy, with a rate limiter when @arg (NULL or "": none)
 * has words. 0, or -EINVAL with a one-line reason in @err.
 */
int rng_option_parse(struct vmcfg *c, char *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
