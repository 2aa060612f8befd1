/* Number and size parsing with overflow checks. */
#include "util/parse.h"

#include "util/errmsg.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_digits(const char *s, uint64_t *out, const char **end)
{
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	*end = s;
	return 0;
}

static int size_shift(const char *suffix, unsigned int *shift)
{
	static const char units[] = "KMGT";
	const char *u;

	if (*suffix == '\0') {
		*shift = 20;
		return 0;
	}
	u = strchr(units, toupper((unsigned char)*suffix));
	if (!u)
		return -EINVAL;
	*shift = 10 * (unsigned int)(u - units + 1);
	suffix++;
	if (*suffix == '\0' || strcasecmp(suffix, "B") == 0 || strcasecmp(suffix, "iB") == 0)
		return 0;
	return -EINVAL;
}

int parse_size(const char *s, uint64_t *out)
{
	const char *end;
	unsigned int shift;
	uint64_t v;

	if (!s || parse_digits(s, &v, &end) < 0 || size_shift(end, &shift) < 0)
		return -EINVAL;
	if (v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *end;
	uint64_t v;

	if (!s || parse_digits(s, &v, &end) < 0 || *end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int parse_mac(const char *s, uint8_t mac[6])
{
	uint8_t m[6];
	int hi, lo;

	if (!s || strlen(s) != 17)
		return -EINVAL;
	for (unsigned int i = 0; i < 6; i++) {
		hi = hex_digit(s[3 * i]);
		lo = hex_digit(s[3 * i + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return -EINVAL;
		m[i] = (uint8_t)(hi << 4 | lo);
	}
	if ((m[0] & 1) || !(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]))
		return -EINVAL;
	memcpy(mac, m, 6);
	return 0;
}

size_t utf8_seq_len(const uint8_t *s, size_t len)
{
	uint32_t cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong, surrogate, beyond Unicode */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) ||
	    cp > 0x10ffff)
		return 0;
	return n;
}

char *utf8_sanitize(const char *s, size_t len, size_t *out_len)
{
	const uint8_t *in = (const uint8_t *)s;
	char *out = malloc(len * 3 + 1); /* each byte becomes at most U+FFFD */
	size_t i = 0, o = 0, n;

	if (!out)
		return NULL;
	while (i < len) {
		n = utf8_seq_len(in + i, len - i);
		if (n) {
			memcpy(out + o, in + i, n);
			o += n;
			i += n;
			continue;
		}
		memcpy(out + o, "\xef\xbf\xbd", 3);
		o += 3;
		i++;
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

/* --- CPU lists and the placement spec of --cpu-affinity --- */

/* One decimal CPU number at *@s, advanced past it. */
static int cpu_number(const char **s, unsigned long *out)
{
	char *end;

	if (**s < '0' || **s > '9')
		return -EINVAL;
	*out = strtoul(*s, &end, 10);
	if (*out >= CPU_SETSIZE)
		return -EINVAL;
	*s = end;
	return 0;
}

int cpulist_parse(const char *s, cpu_set_t *set)
{
	unsigned long a, b;

	CPU_ZERO(set);
	do {
		if (cpu_number(&s, &a) < 0)
			return -EINVAL;
		b = a;
		if (*s == '-' && (s++, cpu_number(&s, &b) < 0 || b < a))
			return -EINVAL;
		for (; a <= b; a++)
			CPU_SET(a, set);
	} while (*s++ == ',');
	return s[-1] == '\0' ? 0 : -EINVAL;
}

/* The list of role @role in @spec, copied into @out; 1, 0 when absent. */
static int find_role(const char *spec, const char *role, char *out, size_t len)
{
	size_t n = strlen(role);

	for (const char *s = spec; s && *s; s = strchr(s, ';') ? strchr(s, ';') + 1 : NULL) {
		if (strncmp(s, role, n) == 0 && s[n] == '=') {
			snprintf(out, len, "%.*s", (int)strcspn(s + n + 1, ";"), s + n + 1);
			return 1;
		}
	}
	return 0;
}

int cpu_affinity_get(const char *spec, int vcpu, cpu_set_t *set)
{
	char role[16], list[CPU_AFFINITY_LEN];
	int found;

	if (!spec || !*spec)
		return 0;
	snprintf(role, sizeof(role), vcpu < 0 ? "io" : "vcpu%d", vcpu);
	found = find_role(spec, role, list, sizeof(list));
	if (!found && vcpu >= 0)
		found = find_role(spec, "vcpu", list, sizeof(list));
	if (!found)
		return 0;
	return cpulist_parse(list, set) < 0 ? -EINVAL : 1;
}

/* A role's name: vcpu, io, or vcpuN with N < @ncpus. */
static bool role_ok(const char *role, size_t n, unsigned int ncpus)
{
	char *end;
	unsigned long i;

	if ((n == 4 && strncmp(role, "vcpu", 4) == 0) || (n == 2 && strncmp(role, "io", 2) == 0))
		return true;
	if (n < 5 || strncmp(role, "vcpu", 4) || role[4] < '0' || role[4] > '9')
		return false;
	i = strtoul(role + 4, &end, 10);
	return end == role + n && i < ncpus;
}

/* One "role=list" of @spec (@n bytes) against the CPUs this process may use. */
static int check_entry(const char *e, size_t n, unsigned int ncpus, const cpu_set_t *host,
		       char *err, size_t len)
{
	const char *eq = memchr(e, '=', n);
	char list[CPU_AFFINITY_LEN];
	cpu_set_t set;

	if (!eq || !role_ok(e, (size_t)(eq - e), ncpus))
		return errmsg_set(err, len, -EINVAL,
				  "'%.*s': a role is vcpu, vcpuN (N below the %u vCPUs) or io",
				  (int)n, e, ncpus);
	snprintf(list, sizeof(list), "%.*s", (int)(n - (size_t)(eq + 1 - e)), eq + 1);
	if (cpulist_parse(list, &set) < 0)
		return errmsg_set(err, len, -EINVAL, "'%s' is not a CPU list (e.g. 0-3,8)", list);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set) && !CPU_ISSET(c, host))
			return errmsg_set(err, len, -EINVAL, "CPU %d is not one this host offers",
					  c);
	return 0;
}

/* Each role once: the text before '=' of entry @e is not in the entries before it. */
static bool role_repeated(const char *spec, const char *e)
{
	size_t n = strcspn(e, "=");

	for (const char *s = spec; s < e; s = strchr(s, ';') + 1)
		if (strcspn(s, "=") == n && strncmp(s, e, n) == 0)
			return true;
	return false;
}

int cpu_affinity_check(const char *spec, unsigned int ncpus, char *err, size_t len)
{
	cpu_set_t host;
	int ret = 0;

	if (strlen(spec) >= CPU_AFFINITY_LEN)
		return errmsg_set(err, len, -EINVAL, "longer than %d characters",
				  CPU_AFFINITY_LEN - 1);
	if (sched_getaffinity(0, sizeof(host), &host) < 0)
		return errmsg_set(err, len, -EINVAL, "cannot read this host's CPUs");
	for (const char *e = spec; ret == 0 && *e;) {
		size_t n = strcspn(e, ";");

		ret = check_entry(e, n, ncpus, &host, err, len);
		if (ret == 0 && role_repeated(spec, e))
			ret = errmsg_set(err, len, -EINVAL, "role '%.*s' given twice",
					 (int)strcspn(e, "="), e);
		e += n + (e[n] == ';');
	}
	return ret;
}
