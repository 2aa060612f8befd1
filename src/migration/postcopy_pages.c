/* Post-copy's page book-keeping (postcopy_pages.h): pure, fuzzed. */
#include "migration/postcopy_pages.h"

#include "migration/stream.h"
#include "util/errmsg.h"

#include <errno.h>
#include <stdlib.h>
#include <zlib.h>

#define fail(err, ret, ...) errmsg_set(err, MIG_ERR_LEN, ret, __VA_ARGS__)

static uint64_t get_le(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t pc_page_hash(uint64_t gpa, const uint8_t *p)
{
	static const uint8_t zero[PC_PAGE];
	uint32_t c = (uint32_t)crc32(0L, p ? p : zero, (uInt)PC_PAGE);

	return mix64(gpa * 0x9e3779b97f4a7c15ULL ^ c);
}

int pc_pages_init(struct pc_pages *pp, const struct guest_mem *mem, const void *base,
		  uint64_t map_size, bool verify)
{
	*pp = (struct pc_pages){
	    .mem = mem, .base = (uintptr_t)base, .npages = map_size / PC_PAGE, .verify = verify};
	pp->pending = calloc((pp->npages + 63) / 64 ?: 1, sizeof(uint64_t));
	return pp->pending ? 0 : -ENOMEM;
}

void pc_pages_free(struct pc_pages *pp)
{
	free(pp->pending);
	pp->pending = NULL;
}

bool pc_pages_is_pending(const struct pc_pages *pp, uint64_t p)
{
	return p < pp->npages && atomic_load(&pp->pending[p / 64]) >> (p % 64) & 1;
}

/* Page index of @host, a host address inside guest RAM; npages when outside the mapping. */
static uint64_t page_of(const struct pc_pages *pp, const uint8_t *host)
{
	uintptr_t a = (uintptr_t)host;

	return a < pp->base || (a - pp->base) / PC_PAGE >= pp->npages ? pp->npages
								      : (a - pp->base) / PC_PAGE;
}

/* One run of the list: checked, then its pages marked (pages marked already count once). */
static int list_run(struct pc_pages *pp, const uint8_t *rec, char *err)
{
	uint64_t gpa = get_le(rec, 8), pages = get_le(rec + 8, 4), p;
	uint8_t *host;

	if (gpa % PC_PAGE || !pages || pages > MIG_MAX_RUN_PAGES || get_le(rec + 12, 4))
		return fail(err, -EBADMSG, "a malformed post-copy run at %#llx",
			    (unsigned long long)gpa);
	host = gm_ptr(pp->mem, gpa, pages * PC_PAGE);
	p = host ? page_of(pp, host) : pp->npages;
	if (!host || p + pages > pp->npages)
		return fail(err, -EBADMSG, "a post-copy run [%#llx, +%llu pages) outside memory",
			    (unsigned long long)gpa, (unsigned long long)pages);
	for (uint64_t i = 0; i < pages; i++, p++)
		if (!(atomic_fetch_or(&pp->pending[p / 64], 1ULL << (p % 64)) >> (p % 64) & 1))
			pp->total++;
	return 0;
}

int pc_pages_parse_list(struct pc_pages *pp, const uint8_t *buf, size_t len, char *err)
{
	int ret = 0;

	if (len % PC_RUN_LEN)
		return fail(err, -EBADMSG, "the post-copy page list is %zu bytes long", len);
	for (size_t pos = 0; pos < len && ret == 0; pos += PC_RUN_LEN)
		ret = list_run(pp, buf + pos, err);
	atomic_store(&pp->missing, pp->total);
	return ret;
}

void pc_pages_hash_present(struct pc_pages *pp, const uint64_t *before)
{
	uint64_t k = 0; /* the page's index in @before */

	for (unsigned int i = 0; i < pp->mem->count; i++) {
		const struct gm_region *r = &pp->mem->regions[i];
		uint64_t first = page_of(pp, r->host);

		for (uint64_t p = 0; p < r->size / PC_PAGE; p++, k++) {
			if (pc_pages_is_pending(pp, first + p))
				continue;
			pp->hash += before
					? before[k]
					: pc_page_hash(r->gpa + p * PC_PAGE, r->host + p * PC_PAGE);
		}
	}
}

enum pc_fault pc_pages_fault(const struct pc_pages *pp, uintptr_t addr, uint8_t **host,
			     uint8_t req[PC_RUN_LEN])
{
	uint64_t p, gpa;

	if (addr < pp->base || (addr - pp->base) / PC_PAGE >= pp->npages)
		return PC_FAULT_NONE;
	p = (addr - pp->base) / PC_PAGE;
	*host = (uint8_t *)(pp->base + p * PC_PAGE);
	if (gm_gpa_of(pp->mem, *host, PC_PAGE, &gpa) < 0)
		return PC_FAULT_NONE; /* not guest RAM: never registered */
	if (!pc_pages_is_pending(pp, p))
		return PC_FAULT_ZERO;
	put_le(req, gpa, 8);
	put_le(req + 8, 1, 4);
	put_le(req + 12, 0, 4);
	return PC_FAULT_ASK;
}

int pc_req_parse(const struct guest_mem *mem, const uint8_t *buf, size_t len, uint8_t **host,
		 uint64_t *pages, char *err)
{
	uint64_t gpa;

	if (len != PC_RUN_LEN)
		return fail(err, -EBADMSG, "a malformed page request (%zu bytes)", len);
	gpa = get_le(buf, 8);
	*pages = get_le(buf + 8, 4);
	if (gpa % PC_PAGE || !*pages || *pages > PC_REQ_PAGES || get_le(buf + 12, 4))
		return fail(err, -EBADMSG, "a malformed page request at %#llx",
			    (unsigned long long)gpa);
	*host = gm_ptr(mem, gpa, *pages * PC_PAGE);
	if (!*host)
		return fail(err, -EBADMSG, "a page request outside memory (%#llx)",
			    (unsigned long long)gpa);
	return 0;
}

int pc_pages_place_run(struct pc_pages *pp, uint8_t *host, uint64_t gpa, uint64_t pages,
		       const uint8_t *data, pc_place_fn place, void *priv)
{
	for (uint64_t i = 0; i < pages; i++) {
		uint8_t *h = host + i * PC_PAGE;
		uint64_t p = page_of(pp, h);
		const uint8_t *d = data ? data + i * PC_PAGE : NULL;
		int ret;

		if (!pc_pages_is_pending(pp, p))
			continue; /* asked for and streamed: the first copy counts */
		ret = place(priv, h, d);
		if (ret < 0 && ret != -EEXIST)
			return ret;
		/* The bit goes only once the page is in: until then a fault asks for it. */
		atomic_fetch_and(&pp->pending[p / 64], ~(1ULL << (p % 64)));
		atomic_fetch_sub(&pp->missing, 1);
		if (pp->verify)
			pp->hash += pc_page_hash(gpa + i * PC_PAGE, d);
	}
	return 0;
}

int pc_pages_check_end(const struct pc_pages *pp, const uint8_t *buf, size_t len, char *err)
{
	uint64_t left = atomic_load(&pp->missing);

	if (len != PC_END_LEN)
		return fail(err, -EBADMSG, "a malformed end of post-copy");
	if (left)
		return fail(err, -EBADMSG, "the source ended post-copy with %llu pages missing",
			    (unsigned long long)left);
	if (pp->verify && get_le(buf + 8, 8) != pp->hash)
		return fail(err, -EIO,
			    "guest memory differs from the source's after post-copy (hash %016llx "
			    "here, %016llx there)",
			    (unsigned long long)pp->hash, (unsigned long long)get_le(buf + 8, 8));
	return 0;
}
