/* Parsing numbers and sizes from the command line and config files. */
#ifndef BANYAN_UTIL_PARSE_H
#define BANYAN_UTIL_PARSE_H

#include <sched.h>
#include <stddef.h>
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

/*
 * utf8_seq_len - the length of the valid UTF-8 sequence (RFC 3629: no
 * overlong forms, no surrogates, at most U+10FFFF) at the start of @s
 * (@len bytes), or 0 when it does not start with one.
 */
size_t utf8_seq_len(const uint8_t *s, size_t len);

/*
 * utf8_sanitize - a malloc'ed, NUL-terminated copy of @len bytes of @s in
 * which every byte that is not part of a valid UTF-8 sequence is replaced
 * by U+FFFD; its length in *@out_len. NULL when out of memory.
 */
char *utf8_sanitize(const char *s, size_t len, size_t *out_len);

/*
 * CPU lists and thread placement (--cpu-affinity, docs/cli.md): a list in
 * the kernel's syntax ("0-3,8"), and a placement spec, the roles' lists
 * joined by ';': "vcpu=0-3;vcpu0=4;io=5". Role "vcpu" is every vCPU thread
 * without a list of its own, "vcpuN" vCPU N, "io" the threads created for
 * the devices (their transport threads and I/O workers).
 */
#define CPU_AFFINITY_LEN 256 /* longest spec, NUL included */

/*
 * cpulist_parse - "0-3,8,10-11" into @set (CPU numbers below CPU_SETSIZE,
 * ranges ascending, not empty). 0 or -EINVAL.
 */
int cpulist_parse(const char *s, cpu_set_t *set) __attribute__((warn_unused_result));

/*
 * cpu_affinity_check - @spec is well formed, its roles are "vcpu", "io" or
 * "vcpuN" with N below @ncpus, each role once, and every CPU it names is
 * one this process may run on (sched_getaffinity: the host's online CPUs
 * within its cpuset). 0, or -EINVAL with the reason in @err (@len bytes).
 */
int cpu_affinity_check(const char *spec, unsigned int ncpus, char *err, size_t len)
    __attribute__((warn_unused_result));

/*
 * cpu_affinity_get - the CPUs of vCPU @vcpu (its own list, else "vcpu"),
 * or of the device threads for @vcpu < 0 ("io"), from @spec (NULL or ""
 * for none). 1 with @set filled, 0 when the spec places no such thread,
 * -EINVAL for a malformed spec.
 */
int cpu_affinity_get(const char *spec, int vcpu, cpu_set_t *set)
    __attribute__((warn_unused_result));

#endif
