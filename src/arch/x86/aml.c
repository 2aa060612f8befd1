/*
 * The AML writer (see aml.h). Encodings follow the ACPI 6.x specification,
 * chapter 20 (AML grammar) and section 6.4 (resource data types).
 */
#include "arch/x86/aml.h"

#include <errno.h>
#include <string.h>

/* AML opcodes and prefixes used below (ACPI 6.x, 20.2). */
enum {
	AML_ZERO = 0x00,
	AML_ONE = 0x01,
	AML_NAME_OP = 0x08,
	AML_BYTE_PREFIX = 0x0a,
	AML_WORD_PREFIX = 0x0b,
	AML_DWORD_PREFIX = 0x0c,
	AML_STRING_PREFIX = 0x0d,
	AML_QWORD_PREFIX = 0x0e,
	AML_SCOPE_OP = 0x10,
	AML_BUFFER_OP = 0x11,
	AML_PACKAGE_OP = 0x12,
	AML_METHOD_OP = 0x14,
	AML_DUAL_NAME_PREFIX = 0x2e,
	AML_MULTI_NAME_PREFIX = 0x2f,
	AML_EXT_OP_PREFIX = 0x5b,
	AML_DEVICE_OP = 0x82, /* after AML_EXT_OP_PREFIX */
	AML_NOTIFY_OP = 0x86,
	AML_ROOT_CHAR = 0x5c,
	AML_PARENT_PREFIX = 0x5e,
	AML_RETURN_OP = 0xa4,
	AML_ONES = 0xff,
};

/* Resource descriptor tags (ACPI 6.x, 6.4.2 small and 6.4.3 large). */
enum {
	RES_IRQ_NOFLAGS = 0x22, /* small type 4, 2 bytes: no information byte */
	RES_IO = 0x47,		/* small type 8, 7 bytes */
	RES_END_TAG = 0x79,	/* small type 0xf, 1 byte */
	RES_MEM32_FIXED = 0x86, /* large type 6 */
	RES_EXT_IRQ = 0x89,	/* large type 9 */
};

#define AML_NAMESEG_LEN 4
#define AML_MAX_SEGS	255 /* the MultiNamePath count is one byte */

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	a->buf = buf;
	a->len = 0;
	a->cap = buf ? cap : 0;
	a->depth = 0;
	a->err = 0;
}

static int aml_fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
	return a->err;
}

int aml_raw(struct aml *a, const void *bytes, size_t n)
{
	if (a->err)
		return a->err;
	if (n > a->cap - a->len)
		return aml_fail(a, -ENOSPC);
	if (n)
		memcpy(a->buf + a->len, bytes, n);
	a->len += n;
	return 0;
}

static int aml_byte(struct aml *a, uint8_t b)
{
	return aml_raw(a, &b, 1);
}

/* Insert @n bytes at offset @at, moving what follows up. */
static int aml_insert(struct aml *a, size_t at, const uint8_t *bytes, size_t n)
{
	if (a->err)
		return a->err;
	if (at > a->len)
		return aml_fail(a, -EINVAL);
	if (n > a->cap - a->len)
		return aml_fail(a, -ENOSPC);
	memmove(a->buf + at + n, a->buf + at, a->len - at);
	memcpy(a->buf + at, bytes, n);
	a->len += n;
	return 0;
}

static void put_le(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int aml_pkglength(size_t body, uint8_t out[4])
{
	/* The value counts its own bytes: 6 bits in one byte, else 4 + 8 per extra byte. */
	if (body > AML_PKGLENGTH_MAX)
		return -E2BIG;
	if (body + 1 <= 0x3f) {
		out[0] = (uint8_t)(body + 1);
		return 1;
	}
	for (unsigned int extra = 1; extra <= 3; extra++) {
		size_t total = body + 1 + extra;
		if (total > ((size_t)1 << (4 + 8 * extra)) - 1)
			continue;
		out[0] = (uint8_t)((extra << 6) | (total & 0xf));
		put_le(out + 1, total >> 4, extra);
		return (int)(1 + extra);
	}
	return -E2BIG;
}

/* Encode @v in its smallest form into @out (up to 9 bytes); returns the length. */
static size_t integer_encode(uint64_t v, uint8_t out[9])
{
	static const struct {
		uint64_t max;
		uint8_t prefix;
		unsigned int n;
	} forms[] = {
	    {0xff, AML_BYTE_PREFIX, 1},
	    {0xffff, AML_WORD_PREFIX, 2},
	    {0xffffffff, AML_DWORD_PREFIX, 4},
	    {UINT64_MAX, AML_QWORD_PREFIX, 8},
	};
	size_t i = 0;

	if (v == 0 || v == 1 || v == UINT64_MAX) {
		out[0] = v == 0 ? AML_ZERO : v == 1 ? AML_ONE : AML_ONES;
		return 1;
	}
	while (v > forms[i].max)
		i++;
	out[0] = forms[i].prefix;
	put_le(out + 1, v, forms[i].n);
	return 1 + forms[i].n;
}

int aml_integer(struct aml *a, uint64_t v)
{
	uint8_t enc[9];

	return aml_raw(a, enc, integer_encode(v, enc));
}

int aml_string(struct aml *a, const char *s)
{
	if (!s)
		return aml_fail(a, -EINVAL);
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c > 0x7f)
			return aml_fail(a, -EINVAL);
	}
	aml_byte(a, AML_STRING_PREFIX);
	return aml_raw(a, s, strlen(s) + 1);
}

static bool is_lead_char(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c)
{
	return is_lead_char(c) || (c >= '0' && c <= '9');
}

/* Length of the segment at @s (up to '.' or the end), or 0 if it is invalid. */
static size_t seg_check(const char *s)
{
	size_t n = 0;

	if (!is_lead_char(s[0]))
		return 0;
	while (s[n] && s[n] != '.') {
		if (!is_name_char(s[n]) || n == AML_NAMESEG_LEN)
			return 0;
		n++;
	}
	return n;
}

/* Check the NamePath at @path (after any prefix); count its segments. */
static int path_check(const char *path, unsigned int *nsegs)
{
	*nsegs = 0;
	if (!*path)
		return 0; /* NullName: only valid after a prefix, checked by the caller */
	for (;;) {
		size_t n = seg_check(path);
		if (!n || ++*nsegs > AML_MAX_SEGS)
			return -EINVAL;
		path += n;
		if (!*path)
			return 0;
		path++; /* the '.', which must be followed by another segment */
	}
}

static int path_emit(struct aml *a, const char *path, unsigned int nsegs)
{
	if (nsegs == 0)
		return aml_byte(a, AML_ZERO); /* NullName */
	if (nsegs == 2)
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	if (nsegs > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)nsegs);
	}
	for (unsigned int i = 0; i < nsegs; i++) {
		char seg[AML_NAMESEG_LEN] = {'_', '_', '_', '_'};
		size_t n = seg_check(path);
		memcpy(seg, path, n);
		aml_raw(a, seg, sizeof(seg));
		path += n + 1;
	}
	return a->err;
}

int aml_namestring(struct aml *a, const char *name)
{
	size_t prefix = 0;
	unsigned int nsegs;

	if (a->err)
		return a->err;
	if (!name)
		return aml_fail(a, -EINVAL);
	if (name[0] == '\\')
		prefix = 1;
	else
		while (name[prefix] == '^')
			prefix++;
	if (path_check(name + prefix, &nsegs) || (nsegs == 0 && prefix == 0))
		return aml_fail(a, -EINVAL);

	/* '\\' and '^' are the AML RootChar and ParentPrefixChar themselves. */
	aml_raw(a, name, prefix);
	return path_emit(a, name + prefix, nsegs);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int aml_eisaid(const char *id, uint32_t *out)
{
	uint32_t v = 0;

	if (strlen(id) != 7)
		return -EINVAL;
	/* Three letters of 5 bits each ('A' is 1), big-endian in the first 15 bits... */
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return -EINVAL;
		v = (v << 5) | (uint32_t)(id[i] - 0x40);
	}
	/* ...then four hex digits: the product id. */
	for (int i = 3; i < 7; i++) {
		int d = hex_digit(id[i]);
		if (d < 0)
			return -EINVAL;
		v = (v << 4) | (uint32_t)d;
	}
	/* The id is stored big-endian but read as a little-endian dword. */
	*out = __builtin_bswap32(v);
	return 0;
}

int aml_name(struct aml *a, const char *name)
{
	aml_byte(a, AML_NAME_OP);
	return aml_namestring(a, name);
}

int aml_name_integer(struct aml *a, const char *name, uint64_t v)
{
	aml_name(a, name);
	return aml_integer(a, v);
}

int aml_name_string(struct aml *a, const char *name, const char *s)
{
	aml_name(a, name);
	return aml_string(a, s);
}

int aml_name_eisaid(struct aml *a, const char *name, const char *id)
{
	uint8_t enc[5] = {AML_DWORD_PREFIX};
	uint32_t v;

	if (aml_eisaid(id, &v))
		return aml_fail(a, -EINVAL);
	/* Always a DWord, as ASL compilers emit it, whatever its value. */
	put_le(enc + 1, v, 4);
	aml_name(a, name);
	return aml_raw(a, enc, sizeof(enc));
}

/* Open an object whose PkgLength will be inserted at the current offset. */
static int pkg_open(struct aml *a, struct aml_pkg *p, enum aml_pkg_kind kind)
{
	p->start = a->len;
	p->kind = kind;
	p->depth = ++a->depth;
	return a->err;
}

int aml_scope_begin(struct aml *a, const char *name, struct aml_pkg *p)
{
	aml_byte(a, AML_SCOPE_OP);
	pkg_open(a, p, AML_PKG_PLAIN);
	return aml_namestring(a, name);
}

int aml_device_begin(struct aml *a, const char *name, struct aml_pkg *p)
{
	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	pkg_open(a, p, AML_PKG_PLAIN);
	return aml_namestring(a, name);
}

int aml_method_begin(struct aml *a, const char *name, unsigned int nargs, bool serialized,
		     struct aml_pkg *p)
{
	if (nargs > 7)
		return aml_fail(a, -EINVAL);
	aml_byte(a, AML_METHOD_OP);
	pkg_open(a, p, AML_PKG_PLAIN);
	aml_namestring(a, name);
	/* MethodFlags: bits 0-2 ArgCount, bit 3 SerializeFlag, bits 4-7 SyncLevel (0). */
	return aml_byte(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
}

int aml_notify(struct aml *a, const char *target, uint64_t value)
{
	aml_byte(a, AML_NOTIFY_OP);
	aml_namestring(a, target);
	return aml_integer(a, value);
}

int aml_return(struct aml *a)
{
	return aml_byte(a, AML_RETURN_OP);
}

int aml_package_begin(struct aml *a, unsigned int nelems, struct aml_pkg *p)
{
	if (nelems > 0xff)
		return aml_fail(a, -EINVAL);
	aml_byte(a, AML_PACKAGE_OP);
	pkg_open(a, p, AML_PKG_PLAIN);
	return aml_byte(a, (uint8_t)nelems);
}

int aml_buffer_begin(struct aml *a, struct aml_pkg *p)
{
	aml_byte(a, AML_BUFFER_OP);
	return pkg_open(a, p, AML_PKG_BUFFER);
}

int aml_restemplate_begin(struct aml *a, struct aml_pkg *p)
{
	aml_byte(a, AML_BUFFER_OP);
	return pkg_open(a, p, AML_PKG_RESTEMPLATE);
}

/* EndTag: its checksum makes the bytes of the whole template sum to zero. */
static int restemplate_end_tag(struct aml *a, size_t start)
{
	uint8_t sum = RES_END_TAG;

	if (a->err)
		return a->err;
	for (size_t i = start; i < a->len; i++)
		sum = (uint8_t)(sum + a->buf[i]);
	aml_byte(a, RES_END_TAG);
	return aml_byte(a, (uint8_t)-sum);
}

int aml_end(struct aml *a, struct aml_pkg *p)
{
	uint8_t head[4 + 9], size[9];

	if (a->err)
		return a->err;
	if (p->depth != a->depth || p->depth == 0 || p->start > a->len)
		return aml_fail(a, -EINVAL);
	if (p->kind == AML_PKG_RESTEMPLATE && restemplate_end_tag(a, p->start))
		return a->err;

	/* A Buffer's PkgLength also covers its BufferSize, which comes first. */
	size_t nsize = p->kind == AML_PKG_PLAIN ? 0 : integer_encode(a->len - p->start, size);
	int npkg = aml_pkglength(a->len - p->start + nsize, head);
	if (npkg < 0)
		return aml_fail(a, npkg);
	memcpy(head + npkg, size, nsize);
	a->depth--;
	return aml_insert(a, p->start, head, (size_t)npkg + nsize);
}

int aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	uint8_t d[8] = {RES_IO, 0x01 /* Decode16 */};

	put_le(d + 2, min, 2);
	put_le(d + 4, max, 2);
	d[6] = align;
	d[7] = len;
	return aml_raw(a, d, sizeof(d));
}

int aml_res_irq_noflags(struct aml *a, unsigned int irq)
{
	uint8_t d[3] = {RES_IRQ_NOFLAGS};

	if (irq > 15)
		return aml_fail(a, -EINVAL);
	put_le(d + 1, 1u << irq, 2); /* a mask of ISA IRQs */
	return aml_raw(a, d, sizeof(d));
}

int aml_res_mem32_fixed(struct aml *a, bool writable, uint32_t base, uint32_t len)
{
	uint8_t d[12] = {RES_MEM32_FIXED, 9, 0, writable ? 0x01 : 0x00};

	put_le(d + 4, base, 4);
	put_le(d + 8, len, 4);
	return aml_raw(a, d, sizeof(d));
}

int aml_res_interrupt(struct aml *a, enum aml_trigger trigger, enum aml_polarity polarity,
		      uint32_t gsi)
{
	/* Flags: bit 0 consumer, bit 1 edge, bit 2 active low, bit 3 shared (no). */
	uint8_t flags = 0x01;
	uint8_t d[9] = {RES_EXT_IRQ, 6, 0};

	if (trigger == AML_EDGE)
		flags |= 0x02;
	if (polarity == AML_ACTIVE_LOW)
		flags |= 0x04;
	d[3] = flags;
	d[4] = 1; /* one interrupt in the table */
	put_le(d + 5, gsi, 4);
	return aml_raw(a, d, sizeof(d));
}
