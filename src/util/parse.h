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

/*
 * parse_mac - "52:54:00:12:34:56" (six hex pairs, ':' separated) into
 * @mac. Multicast (bit 0 of the first octet) and all-zero addresses are
 * refused: a NIC cannot have them. 0 or -EINVAL.
 */
int parse_mac(const char *s, uint8_t mac[6]) __attribute__((warn_unused_result));

#endif
