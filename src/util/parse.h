/* Parsing numbers and sizes from the command line and config files. */
#ifndef BANYAN_UTIL_PARSE_H
#define BANYAN_UTIL_PARSE_H

#include <stdint.h>

/*
 * parse_size - "512M", "2G", "1048576K", "64" (no suffix: MiB, as QEMU's -m).
 * Suffixes K, M, G, T (binary, case-insensitive, an optional trailing "iB"
 * or "B"). Returns 0 or -EINVAL (garbage, empty, overflow).
 */
int parse_size(const char *s, uint64_t *out) __attribute__((warn_unused_result));

/* parse_uint - a decimal number in [min, max]; 0, -EINVAL or -ERANGE. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
	__attribute__((warn_unused_result));

#endif
