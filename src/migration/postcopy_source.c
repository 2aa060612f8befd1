/*
 * Post-copy, the source's side (postcopy.h): the list of pages still to
 * come, then, once the destination runs the VM, those pages: the ones it
 * asks for first, the rest in order, while a reader thread takes its
 * requests off the same connection.
 */
#include "migration/postcopy.h"

#include "migration/postcopy_pages.h"

#include "migration/stream.h"
#include "util/errmsg.h"
#include "util/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define fail(err, ret, ...) errmsg_set(err, MIG_ERR_LEN, ret, __VA_ARGS__)
#define PAGE		    4096ULL
#define QUEUE		    256 /* requests waiting; past it they wait for the background stream */
#define CHUNK_PAGES	    16	/* background pages per section: a request waits at most this */

static void put_le(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static bool bit(const uint64_t *b, uint64_t i)
{
	return b[i / 64] >> (i % 64) & 1;
}

int mig_pc_send_pending(struct mig_conn *c, const struct vm *vm, const uint64_t *pending,
			uint64_t *count)
{
	size_t cap = 1U << 16, len = 0;
	uint8_t *buf = malloc(cap);
	int ret = buf ? 0 : -ENOMEM;

	*count = 0;
	for (unsigned int i = 0; i < vm->mem.count && ret == 0; i++) {
		const struct gm_region *r = &vm->mem.regions[i];
		uint64_t first = (uint64_t)(r->host - (uint8_t *)vm->mem_base) / PAGE;
		uint64_t n = r->size / PAGE;

		for (uint64_t p = 0; p < n && ret == 0; p++) {
			uint64_t q = p;

			if (!bit(pending, first + p))
				continue;
			while (q < n && q - p < MIG_MAX_RUN_PAGES && bit(pending, first + q))
				q++;
			if (len + 16 > cap) { /* no realloc: mremap is not in the sandbox */
				uint8_t *b = cap * 2 <= MIG_MAX_STATE ? malloc(cap * 2) : NULL;

				ret = b ? 0 : cap * 2 > MIG_MAX_STATE ? -EFBIG : -ENOMEM;
				if (b) {
					memcpy(b, buf, len);
					free(buf);
					buf = b;
					cap *= 2;
				}
			}
			if (ret == 0) {
				put_le(buf + len, r->gpa + p * PAGE, 8);
				put_le(buf + len + 8, q - p, 4);
				put_le(buf + len + 12, 0, 4);
				len += 16;
				*count += q - p;
			}
			p = q - 1;
		}
	}
	if (ret == 0)
		ret = mig_send(c, MIG_TAG_POSTCOPY, buf, len);
	free(buf);
	return ret;
}

/* The requests the reader took off the stream, for the sender. */
struct pc_src {
	struct mig_pc_source *s;
	pthread_t reader;
	pthread_mutex_t lock; /* protects q, qhead, qlen, complete, rerr, err */
	uint64_t q[QUEUE];    /* page indexes in the mapping */
	unsigned int qhead, qlen;
	bool complete; /* COMPLETE arrived */
	int rerr;      /* the reader's failure, 0 */
	char err[MIG_ERR_LEN];
	atomic_uint_fast64_t requested;
	uint64_t dest_missing; /* the destination's last PC_ALIVE */
};

/* A PAGE_REQ: checked (16 bytes, page aligned, 1..MIG_PC_REQ_MAX_PAGES, in RAM) and queued. */
static int on_request(struct pc_src *ps, const uint8_t *buf, size_t len, char *err)
{
	const struct vm *vm = ps->s->vm;
	uint64_t pages;
	uint8_t *host;
	int ret = pc_req_parse(&vm->mem, buf, len, &host, &pages, err);

	if (ret < 0)
		return ret;
	atomic_fetch_add(&ps->requested, pages);
	pthread_mutex_lock(&ps->lock);
	for (uint64_t i = 0; i < pages && ps->qlen < QUEUE; i++)
		ps->q[(ps->qhead + ps->qlen++) % QUEUE] =
		    (uint64_t)(host - (uint8_t *)vm->mem_base) / PAGE + i;
	pthread_mutex_unlock(&ps->lock);
	return 0;
}

/* One section from the destination: a request, a keep-alive, or the end. */
static int reader_one(struct pc_src *ps, bool *done, char *err)
{
	enum mig_tag tag;
	uint8_t *buf;
	size_t len;
	int ret = mig_recv(ps->s->conn, &tag, &buf, &len, err);

	if (ret < 0)
		return ret;
	if (tag == MIG_TAG_PAGE_REQ)
		ret = on_request(ps, buf, len, err);
	else if (tag == MIG_TAG_PC_ALIVE && len == 8) {
		pthread_mutex_lock(&ps->lock);
		ps->dest_missing = get_le(buf, 8);
		pthread_mutex_unlock(&ps->lock);
	} else if (tag == MIG_TAG_COMPLETE && len >= 4) {
		uint64_t status = get_le(buf, 4);

		*done = true;
		if (status)
			ret = fail(err, -(status < 4096 ? (int)status : EPROTO), "%.*s",
				   (int)(len - 4), (const char *)buf + 4);
	} else
		ret = fail(err, -EBADMSG, "section %u out of order during post-copy", tag);
	free(buf);
	return ret;
}

static void *reader_thread(void *arg)
{
	struct pc_src *ps = arg;
	char err[MIG_ERR_LEN] = "";
	bool done = false;
	int ret = 0;

	while (ret == 0 && !done)
		ret = reader_one(ps, &done, err);
	pthread_mutex_lock(&ps->lock);
	ps->complete = done;
	ps->rerr = ret;
	snprintf(ps->err, sizeof(ps->err), "%s", err);
	pthread_mutex_unlock(&ps->lock);
	return NULL;
}

/* Page @idx of the mapping (pending), as data or as a zero run; its bit cleared. */
static int send_page(struct pc_src *ps, uint64_t idx)
{
	struct mig_pc_source *s = ps->s;
	uint8_t *host = (uint8_t *)s->vm->mem_base + idx * PAGE;
	uint64_t gpa;

	s->pending[idx / 64] &= ~(1ULL << (idx % 64));
	s->count--;
	if (gm_gpa_of(&s->vm->mem, host, PAGE, &gpa) < 0)
		return 0; /* never set for a page outside RAM */
	return mig_membuf_add(s->mb, s->conn, gpa, mig_page_is_zero(host) ? NULL : host, 1);
}

/* The first page the destination asked for that is still to send, if any. */
static bool pop_request(struct pc_src *ps, uint64_t *idx)
{
	bool found = false;

	pthread_mutex_lock(&ps->lock);
	while (ps->qlen && !found) {
		*idx = ps->q[ps->qhead];
		ps->qhead = (ps->qhead + 1) % QUEUE;
		ps->qlen--;
		found = bit(ps->s->pending, *idx);
	}
	pthread_mutex_unlock(&ps->lock);
	return found;
}

/* Up to CHUNK_PAGES pages still to send from *@cursor on. */
static int send_background(struct pc_src *ps, uint64_t *cursor, uint64_t npages)
{
	unsigned int sent = 0;
	int ret = 0;

	while (*cursor < npages && !bit(ps->s->pending, *cursor))
		*cursor =
		    *cursor % 64 == 0 && !ps->s->pending[*cursor / 64] ? *cursor + 64 : *cursor + 1;
	while (ret == 0 && sent < CHUNK_PAGES && *cursor < npages && bit(ps->s->pending, *cursor)) {
		ret = send_page(ps, *cursor);
		++*cursor;
		sent++;
	}
	return ret;
}

static int reader_status(struct pc_src *ps, char *err)
{
	int ret;

	pthread_mutex_lock(&ps->lock);
	ret = ps->rerr;
	if (ret < 0)
		fail(err, ret, "%s", ps->err);
	pthread_mutex_unlock(&ps->lock);
	return ret;
}

/* Every pending page: asked-for ones first, then in order. */
static int send_all_pending(struct pc_src *ps, char *err)
{
	struct mig_pc_source *s = ps->s;
	uint64_t cursor = 0, npages = s->vm->mem_map_size / PAGE, idx;
	int ret = 0;

	while (ret == 0 && s->count) {
		ret = reader_status(ps, err);
		if (ret < 0)
			break;
		if (pop_request(ps, &idx))
			ret = send_page(ps, idx);
		else {
			ret = send_background(ps, &cursor, npages);
			if (ret == 0 && s->pace)
				s->pace(s->priv);
		}
		if (ret == 0)
			ret = mig_membuf_flush(s->mb, s->conn);
		if (s->progress)
			s->progress(s->priv, s->count, atomic_load(&ps->requested));
	}
	return ret;
}

/* PC_END: the pages sent in all, and the memory's hash (0 without verify). */
static int send_end(struct mig_pc_source *s, uint64_t pages)
{
	uint8_t b[16];

	put_le(b, pages, 8);
	put_le(b + 8, s->verify ? mig_pc_mem_hash(s->vm) : 0, 8);
	return mig_send(s->conn, MIG_TAG_PC_END, b, sizeof(b));
}

int mig_pc_source_run(struct mig_pc_source *s, char *err)
{
	struct pc_src *ps = calloc(1, sizeof(*ps));
	uint64_t pages = s->count;
	int ret;

	if (!ps)
		return fail(err, -ENOMEM, "out of memory");
	ps->s = s;
	pthread_mutex_init(&ps->lock, NULL);
	ret = -pthread_create(&ps->reader, NULL, reader_thread, ps);
	if (ret < 0) {
		fail(err, ret, "cannot start post-copy's reader: %s", strerror(-ret));
		goto out;
	}
	ret = send_all_pending(ps, err);
	if (ret == 0)
		ret = send_end(s, pages);
	if (ret < 0) {
		if (!err[0])
			fail(err, ret, "the migration stream broke: %s", strerror(-ret));
		s->conn->ops->shutdown(s->conn); /* the reader's wait ends */
	}
	pthread_join(ps->reader, NULL);
	if (ret == 0 && (ret = reader_status(ps, err)) == 0 && !ps->complete)
		ret = fail(err, -EPIPE, "the destination did not confirm every page");
	if (s->progress)
		s->progress(s->priv, s->count, atomic_load(&ps->requested));
out:
	pthread_mutex_destroy(&ps->lock);
	free(ps);
	return ret;
}
