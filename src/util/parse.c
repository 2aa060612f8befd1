/* Number and size parsing with overflow checks. */
#include "util/parse.h"

#include <ctype.h>
#include <errno.h>
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
