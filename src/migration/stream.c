/* The migration stream's framing, memory runs and the receiving side. */
#include "migration/stream.h"
#include "migration/postcopy_pages.h"
#include "snapshot/mem_origin.h"

#include "util/errmsg.h"
#include "util/test_hold.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define fail(err, ret, ...) errmsg_set(err, MIG_ERR_LEN, ret, __VA_ARGS__)
#define RUN_HDR		    16 /* u64 gpa, u32 pages, u32 kind */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t crc(const void *buf, size_t len)
{
	return (uint32_t)crc32(0L, buf, (uInt)len); /* callers keep len below 4 GiB */
}

int mig_send_header(struct mig_conn *c, uint32_t flags)
{
	uint8_t h[16];

	memcpy(h, MIG_MAGIC, 8);
	put32(h + 8, MIG_VERSION);
	put32(h + 12, flags);
	return mig_write_full(c, h, sizeof(h));
}

int mig_recv_header(struct mig_conn *c, uint32_t *flags, char *err)
{
	uint8_t h[16];
	int ret = mig_read_full(c, h, sizeof(h));

	if (ret < 0)
		return fail(err, ret, "no migration stream arrived: %s", strerror(-ret));
	if (memcmp(h, MIG_MAGIC, 8) != 0)
		return fail(err, -EBADMSG, "not a Banyan migration stream");
	if (get32(h + 8) != MIG_VERSION)
		return fail(err, -EPROTO, "migration stream version %u (this Banyan reads %u)",
			    get32(h + 8), MIG_VERSION);
	*flags = get32(h + 12);
	if (*flags & ~MIG_FLAGS_KNOWN)
		return fail(err, -EPROTO, "the migration stream asks for unknown features %#x",
			    *flags & ~MIG_FLAGS_KNOWN);
	return 0;
}

int mig_send(struct mig_conn *c, enum mig_tag tag, const void *buf, size_t len)
{
	uint8_t h[12];
	int ret;

	if (len > MIG_MAX_STATE)
		return -EFBIG;
	put32(h, (uint32_t)tag);
	put32(h + 4, (uint32_t)len);
	put32(h + 8, crc(buf, len));
	ret = mig_write_full(c, h, sizeof(h));
	if (ret == 0 && len)
		ret = mig_write_full(c, buf, len);
	return ret;
}

/* The most a section of @tag may hold; 0 for a tag nobody sends. */
static uint32_t tag_cap(uint32_t tag)
{
	switch (tag) {
	case MIG_TAG_CONFIG:
	case MIG_TAG_VCPUS:
	case MIG_TAG_VM:
	case MIG_TAG_DEVICES:
		return MIG_MAX_STATE;
	case MIG_TAG_MEMORY:
		return MIG_MAX_MEMORY;
	case MIG_TAG_VERIFY: /* a CRC per page with MIG_FLAG_PAGES: 16 Mi pages at most */
	case MIG_TAG_POSTCOPY:
		return MIG_MAX_STATE;
	case MIG_TAG_PC_END:
	case MIG_TAG_PAGE_REQ:
		return 16;
	case MIG_TAG_PC_ALIVE:
		return 8;
	case MIG_TAG_COMPLETE:
	case MIG_TAG_READY:
	case MIG_TAG_LOADED:
	case MIG_TAG_RUNNING:
		return MIG_MAX_REPLY;
	case MIG_TAG_END:
	case MIG_TAG_GO:
		return 1; /* empty; 1 so that a known tag is never 0 */
	default:
		return 0;
	}
}

/* *@buf, @have bytes of it kept, moved to @size bytes: no realloc (mremap is not allowed). */
static int grow(uint8_t **buf, uint32_t have, uint32_t size)
{
	uint8_t *p = malloc(size);

	if (!p)
		return -ENOMEM;
	memcpy(p, *buf, have);
	free(*buf);
	*buf = p;
	return 0;
}

/*
 * A payload of @n bytes (capped by the caller), allocated as it arrives:
 * a peer that announces a large section and sends little never costs
 * more than twice what it sent, or one first step (2 MiB: a memory
 * section fits, so that memory never moves). The buffer grows by
 * malloc and copy, never realloc: glibc's realloc of a large block is
 * mremap, which the sandbox refuses (src/security/seccomp_filters.c).
 */
static int read_payload(struct mig_conn *c, uint8_t **buf, uint32_t n)
{
	const uint32_t first = 2U << 20;
	uint32_t have = 0, size = n < first ? (n ? n : 1) : first;
	int ret = 0;

	*buf = malloc(size);
	if (!*buf)
		return -ENOMEM;
	while (have < n && ret == 0) {
		if (have == size) {
			size = n - size < size ? n : size * 2;
			ret = grow(buf, have, size);
			if (ret < 0)
				return ret;
		}
		ret = mig_read_full(c, *buf + have, size - have);
		have = size;
	}
	return ret;
}

int mig_recv(struct mig_conn *c, enum mig_tag *tag, uint8_t **buf, size_t *len, char *err)
{
	uint8_t h[12];
	uint32_t t, n, cap;
	int ret = mig_read_full(c, h, sizeof(h));

	*buf = NULL;
	if (ret < 0)
		return fail(err, ret, "the migration stream broke: %s",
			    ret == -EPIPE ? "the peer closed it" : strerror(-ret));
	t = get32(h);
	n = get32(h + 4);
	cap = tag_cap(t);
	if (!cap)
		return fail(err, -EBADMSG, "unknown section %u in the migration stream", t);
	if (n > cap || ((t == MIG_TAG_END || t == MIG_TAG_GO) && n))
		return fail(err, -EBADMSG, "section %u is %u bytes long (at most %u)", t, n,
			    cap == 1 ? 0 : cap);
	ret = read_payload(c, buf, n);
	if (ret == -ENOMEM)
		fail(err, ret, "out of memory for a %u-byte section", n);
	else if (ret == 0 && crc(*buf, n) != get32(h + 8))
		ret = fail(err, -EBADMSG, "section %u fails its checksum", t);
	else if (ret < 0)
		fail(err, ret, "the migration stream broke inside section %u: %s", t,
		     strerror(-ret));
	if (ret < 0) {
		free(*buf);
		*buf = NULL;
		return ret;
	}
	*tag = (enum mig_tag)t;
	*len = n;
	return 0;
}

int mig_send_reply(struct mig_conn *c, enum mig_tag tag, int status, const char *why)
{
	uint8_t b[MIG_MAX_REPLY];
	size_t n = why ? strnlen(why, sizeof(b) - 4) : 0;

	put32(b, (uint32_t)status);
	if (n)
		memcpy(b + 4, why, n);
	return mig_send(c, tag, b, 4 + n);
}

int mig_recv_reply(struct mig_conn *c, enum mig_tag tag, char *err)
{
	enum mig_tag got;
	uint8_t *buf;
	size_t len;
	uint32_t status;
	int ret = mig_recv(c, &got, &buf, &len, err);

	if (ret < 0)
		return ret;
	if (got != tag || len < 4) {
		free(buf);
		return fail(err, -EBADMSG, "the peer sent section %u, not the answer %u", got, tag);
	}
	status = get32(buf);
	if (status) {
		int e = status < 4096 ? (int)status : EPROTO;

		ret = fail(err, -e, "%.*s", (int)(len - 4), (const char *)buf + 4);
	}
	free(buf);
	return ret;
}

int mig_membuf_init(struct mig_membuf *m)
{
	memset(m, 0, sizeof(*m));
	m->buf = malloc(MIG_MAX_MEMORY);
	return m->buf ? 0 : -ENOMEM;
}

void mig_membuf_free(struct mig_membuf *m)
{
	free(m->buf);
	m->buf = NULL;
}

int mig_membuf_flush(struct mig_membuf *m, struct mig_conn *c)
{
	int ret = m->len ? mig_send(c, MIG_TAG_MEMORY, m->buf, m->len) : 0;

	m->len = 0;
	return ret;
}

static void run_header(struct mig_membuf *m, uint64_t gpa, uint64_t pages, uint32_t kind)
{
	put64(m->buf + m->len, gpa);
	put32(m->buf + m->len + 8, (uint32_t)pages);
	put32(m->buf + m->len + 12, kind);
	m->len += RUN_HDR;
}

int mig_membuf_add(struct mig_membuf *m, struct mig_conn *c, uint64_t gpa, const uint8_t *host,
		   uint64_t pages)
{
	while (pages) {
		uint64_t room = MIG_MAX_MEMORY - m->len - RUN_HDR;
		uint64_t n = host ? room / MIG_PAGE : MIG_MAX_RUN_PAGES;
		int ret;

		if (m->len + RUN_HDR + (host ? MIG_PAGE : 0) > MIG_MAX_MEMORY || n == 0) {
			ret = mig_membuf_flush(m, c);
			if (ret < 0)
				return ret;
			continue;
		}
		n = n < pages ? n : pages;
		run_header(m, gpa, n, host ? MIG_RUN_DATA : MIG_RUN_ZERO);
		if (host) {
			memcpy(m->buf + m->len, host, n * MIG_PAGE);
			m->len += n * MIG_PAGE;
			host += n * MIG_PAGE;
			m->data_pages += n;
		} else {
			m->zero_pages += n;
		}
		gpa += n * MIG_PAGE;
		pages -= n;
	}
	return 0;
}

static int apply_run(void *priv, uint8_t *host, uint64_t gpa, uint64_t pages, const uint8_t *data)
{
	(void)priv;
	(void)gpa;
	if (data)
		memcpy(host, data, pages * MIG_PAGE);
	else
		memset(host, 0, pages * MIG_PAGE);
	return 0;
}

int mig_mem_apply(const struct guest_mem *gm, const uint8_t *buf, size_t len, char *err)
{
	return mig_mem_walk(gm, buf, len, apply_run, NULL, err);
}

int mig_mem_walk(const struct guest_mem *gm, const uint8_t *buf, size_t len,
		 int (*fn)(void *priv, uint8_t *host, uint64_t gpa, uint64_t pages,
			   const uint8_t *data),
		 void *priv, char *err)
{
	size_t pos = 0;
	int ret;

	while (pos < len) {
		uint64_t gpa, pages, bytes;
		uint32_t kind;
		uint8_t *host;

		if (len - pos < RUN_HDR)
			return fail(err, -EBADMSG, "a memory run header is cut short");
		gpa = get64(buf + pos);
		pages = get32(buf + pos + 8);
		kind = get32(buf + pos + 12);
		pos += RUN_HDR;
		if (gpa % MIG_PAGE || !pages || pages > MIG_MAX_RUN_PAGES || kind > MIG_RUN_ZERO)
			return fail(err, -EBADMSG, "a malformed memory run at %#llx",
				    (unsigned long long)gpa);
		bytes = pages * MIG_PAGE;
		host = gm ? gm_ptr(gm, gpa, bytes) : NULL;
		if (!host)
			return fail(err, -EBADMSG,
				    "a memory run [%#llx, +%llu pages) outside memory",
				    (unsigned long long)gpa, (unsigned long long)pages);
		if (kind == MIG_RUN_DATA && bytes > len - pos)
			return fail(err, -EBADMSG, "a memory run's data is cut short");
		ret = fn(priv, host, gpa, pages, kind == MIG_RUN_DATA ? buf + pos : NULL);
		if (ret < 0)
			return fail(err, ret, "cannot place a memory run at %#llx: %s",
				    (unsigned long long)gpa, strerror(-ret));
		if (kind == MIG_RUN_DATA)
			pos += bytes;
	}
	return 0;
}

uint64_t mig_mem_pages(const struct guest_mem *gm)
{
	uint64_t n = 0;

	for (unsigned int i = 0; i < gm->count; i++)
		n += gm->regions[i].size / MIG_PAGE;
	return n;
}

/*
 * Each page of @gm's regions in order, to @fn: a page @g (NULL: none)
 * knows to be zero (a restored VM's untouched holes, mem_origin.h) is
 * given as a zero page, not read.
 */
static void hash_pages(const struct guest_mem *gm, struct mem_origin *g,
		       void (*fn)(const uint8_t *page, void *priv), void *priv)
{
	static const uint8_t zero[MIG_PAGE];
	unsigned char vec[MEM_ORIGIN_CHUNK];

	for (unsigned int i = 0; i < gm->count; i++) {
		const uint8_t *host = gm->regions[i].host;
		uint64_t pages = gm->regions[i].size / MIG_PAGE;

		for (uint64_t k = 0; k < pages; k += MEM_ORIGIN_CHUNK) {
			uint64_t n = pages - k < MEM_ORIGIN_CHUNK ? pages - k : MEM_ORIGIN_CHUNK;

			mem_origin_mark_zero(g, host + k * MIG_PAGE, n, vec);
			for (uint64_t j = 0; j < n; j++)
				fn(vec[j] ? host + (k + j) * MIG_PAGE : zero, priv);
		}
	}
}

static void page_crc(const uint8_t *page, void *priv)
{
	uint8_t **out = priv;

	put32(*out, (uint32_t)crc32(0L, page, (uInt)MIG_PAGE));
	*out += 4;
}

void mig_mem_page_crcs(const struct guest_mem *gm, struct mem_origin *g, uint8_t *out)
{
	hash_pages(gm, g, page_crc, &out);
}

static void crc_on(const uint8_t *page, void *priv)
{
	uLong *c = priv;

	*c = crc32(*c, page, (uInt)MIG_PAGE);
}

uint32_t mig_mem_crc(const struct guest_mem *gm, struct mem_origin *g)
{
	uLong c = crc32(0L, Z_NULL, 0);

	hash_pages(gm, g, crc_on, &c);
	return (uint32_t)c;
}

bool mig_page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;

	for (unsigned int i = 0; i < MIG_PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* --- the receiving side --- */

/* A refusal's reason for the source; when the stream is gone it sees the stream end instead. */
static void reply_no(struct mig_conn *c, enum mig_tag tag, int ret, const char *why)
{
	if (mig_send_reply(c, tag, -ret, why) < 0)
		return;
}

struct recv_state {
	struct mig_conn *c;
	struct mig_sink *s;
	uint32_t flags;
	enum mig_tag next_part; /* VCPUS, VM, DEVICES, then MIG_TAG_VERIFY: all parts loaded */
	uint32_t mem_crc;	/* with MIG_FLAG_VERIFY: memory's CRC before any state loaded */
	uint8_t *page_crcs;	/* with MIG_FLAG_PAGES: each page's, taken with mem_crc */
	uint64_t *pc_hashes;	/* with MIG_FLAG_POSTCOPY too: each page's pc_page_hash, likewise */
};

/* Each page's post-copy hash (pc_page_hash), regions in order. */
static void take_pc_hashes(const struct guest_mem *gm, uint64_t *out)
{
	uint64_t k = 0;

	for (unsigned int i = 0; i < gm->count; i++) {
		const struct gm_region *r = &gm->regions[i];

		for (uint64_t off = 0; off < r->size; off += MIG_PAGE)
			out[k++] = pc_page_hash(r->gpa + off, r->host + off);
	}
}

/*
 * Memory's CRCs now: the whole, with MIG_FLAG_PAGES each page's, and when
 * post-copy may follow each page's post-copy hash (its verification adds
 * those of the pages present at the switch, as they were before loading).
 */
static int take_crcs(struct recv_state *r, char *err)
{
	r->mem_crc = mig_mem_crc(r->s->mem, NULL);
	if ((r->flags & MIG_FLAG_POSTCOPY) && r->s->postcopy) {
		r->pc_hashes = malloc(mig_mem_pages(r->s->mem) * 8 ?: 1);
		if (!r->pc_hashes)
			return fail(err, -ENOMEM, "out of memory for the pages' hashes");
		take_pc_hashes(r->s->mem, r->pc_hashes);
	}
	if (!(r->flags & MIG_FLAG_PAGES))
		return 0;
	r->page_crcs = malloc(mig_mem_pages(r->s->mem) * 4 ?: 1);
	if (!r->page_crcs)
		return fail(err, -ENOMEM, "out of memory for the pages' CRCs");
	mig_mem_page_crcs(r->s->mem, NULL, r->page_crcs);
	return 0;
}

/* The guest address of page @i of @gm's regions, in order. */
static uint64_t page_gpa(const struct guest_mem *gm, uint64_t i)
{
	for (unsigned int k = 0; k < gm->count; k++) {
		uint64_t n = gm->regions[k].size / MIG_PAGE;

		if (i < n)
			return gm->regions[k].gpa + i * MIG_PAGE;
		i -= n;
	}
	return 0;
}

/* VERIFY's page table against ours: how many pages differ, the first four named. */
static int name_pages(struct recv_state *r, const uint8_t *there, uint32_t have, uint32_t want,
		      char *err)
{
	uint64_t n = mig_mem_pages(r->s->mem), bad = 0;
	char first[4 * 24] = "";

	for (uint64_t i = 0; i < n; i++) {
		size_t l = strlen(first);

		if (get32(there + 4 * i) == get32(r->page_crcs + 4 * i))
			continue;
		if (bad++ < 4)
			snprintf(first + l, sizeof(first) - l, "%s%#llx", l ? ", " : "",
				 (unsigned long long)page_gpa(r->s->mem, i));
	}
	return fail(err, -EIO,
		    "guest memory differs from the source's (CRC %08x here, %08x there): pages "
		    "that differ: %llu, the first at %s",
		    have, want, (unsigned long long)bad, bad ? first : "(none: the table differs)");
}

static int recv_config(struct recv_state *r, char *err)
{
	enum mig_tag tag;
	uint8_t *buf;
	size_t len;
	int ret = mig_recv(r->c, &tag, &buf, &len, err);

	if (ret < 0)
		return ret;
	if (tag != MIG_TAG_CONFIG)
		ret = fail(err, -EBADMSG,
			   "the stream does not start with the machine's "
			   "configuration");
	else
		ret = r->s->config(r->s, buf, len, err);
	free(buf);
	if (ret == 0 && !r->s->mem)
		ret = fail(err, -EINVAL, "no memory to load into");
	if (ret < 0) /* the refusal's reason travels back; the stream may be gone already */
		reply_no(r->c, MIG_TAG_READY, ret, err);
	else
		ret = mig_send_reply(r->c, MIG_TAG_READY, 0, NULL);
	/* Here the VM is built, its memory mapped, and the source free to pause. */
	if (ret == 0)
		test_hold("incoming-ready");
	return ret;
}

/*
 * After END, when the source asked: this side's CRC (taken when the
 * memory was complete, recv_section) against the source's in VERIFY.
 */
static int recv_verify(struct recv_state *r, char *err)
{
	uint32_t have = r->mem_crc, want;
	enum mig_tag tag;
	uint8_t *buf;
	size_t len;
	size_t want_len = 4 + (r->page_crcs ? mig_mem_pages(r->s->mem) * 4 : 0);
	int ret = mig_recv(r->c, &tag, &buf, &len, err);

	if (ret < 0)
		return ret;
	if (tag != MIG_TAG_VERIFY || len != want_len) {
		free(buf);
		return fail(err, -EBADMSG, "the source asked for verification but sent none");
	}
	want = get32(buf);
	if (want != have && r->page_crcs)
		ret = name_pages(r, buf + 4, have, want, err);
	else if (want != have)
		ret = fail(err, -EIO,
			   "guest memory differs from the source's (CRC %08x here, %08x there)",
			   have, want);
	free(buf);
	return ret;
}

/* One section after CONFIG; *@end at END. */
static int recv_section(struct recv_state *r, bool *end, char *err)
{
	enum mig_tag tag;
	uint8_t *buf;
	size_t len;
	int ret = mig_recv(r->c, &tag, &buf, &len, err);

	if (ret < 0)
		return ret;
	if (tag == MIG_TAG_MEMORY && r->next_part == MIG_TAG_VCPUS && !(r->flags & MIG_FLAG_MEMFD))
		ret = mig_mem_apply(r->s->mem, buf, len, err);
	else if (tag >= MIG_TAG_VCPUS && tag <= MIG_TAG_DEVICES && tag == r->next_part) {
		/*
		 * No memory comes after the first state part: memory is what the
		 * source has now. Hash it before loading anything, because loading
		 * writes guest memory legitimately (KVM_SET_MSRS of kvmclock's wall
		 * clock MSR makes KVM rewrite the guest's wall-clock structure).
		 */
		if (tag == MIG_TAG_VCPUS && (r->flags & MIG_FLAG_VERIFY))
			ret = take_crcs(r, err);
		if (ret == 0)
			ret = r->s->state(r->s, tag, buf, len, err);
		r->next_part = tag == MIG_TAG_DEVICES ? MIG_TAG_VERIFY : tag + 1;
	} else if (tag == MIG_TAG_POSTCOPY && r->next_part == MIG_TAG_VERIFY &&
		   (r->flags & MIG_FLAG_POSTCOPY) && r->s->postcopy && !r->s->postcopy_on) {
		ret = r->s->postcopy(r->s, buf, len,
				     r->flags & MIG_FLAG_VERIFY ? r->pc_hashes : NULL, err);
		r->s->postcopy_on = ret == 0;
	} else if (tag == MIG_TAG_END && r->next_part == MIG_TAG_VERIFY)
		*end = true;
	else
		ret = fail(err, -EBADMSG, "section %u out of order in the migration stream", tag);
	free(buf);
	return ret;
}

int mig_receive(struct mig_conn *c, struct mig_sink *s, char *err)
{
	struct recv_state r = {.c = c, .s = s, .next_part = MIG_TAG_VCPUS};
	enum mig_tag tag;
	bool end = false;
	uint8_t *buf;
	size_t len;
	int ret;

	err[0] = '\0';
	ret = mig_recv_header(c, &r.flags, err);
	if (ret < 0)
		return ret;
	s->flags = r.flags;
	ret = recv_config(&r, err);
	while (ret == 0 && !end)
		ret = recv_section(&r, &end, err);
	/* Post-copy verifies once every page arrived (postcopy.c), not here. */
	if (ret == 0 && (r.flags & MIG_FLAG_VERIFY) && !s->postcopy_on)
		ret = recv_verify(&r, err);
	free(r.page_crcs);
	free(r.pc_hashes);
	if (ret < 0) {
		reply_no(c, MIG_TAG_LOADED, ret, err);
		return ret;
	}
	ret = mig_send_reply(c, MIG_TAG_LOADED, 0, NULL);
	if (ret == 0)
		ret = mig_recv(c, &tag, &buf, &len, err);
	if (ret < 0) {
		char why[MIG_ERR_LEN];

		snprintf(why, sizeof(why), "%s", err[0] ? err : strerror(-ret));
		return fail(err, ret, "the source did not let go of the VM: %s", why);
	}
	free(buf);
	if (tag != MIG_TAG_GO)
		return fail(err, -EBADMSG, "the source sent section %u instead of GO", tag);
	return 0;
}
