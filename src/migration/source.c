/*
 * The source of a live migration: pre-copy rounds while the guest runs,
 * the final pause, and the hand-over. Until GO is sent, every failure
 * resumes the VM here; after it, the VM is never resumed here.
 */
#include "migration/migration.h"

#include "migration/postcopy.h"
#include "migration/stream.h"
#include "migration/upgrade.h"
#include "snapshot/mem_origin.h"
#include "snapshot/snapshot.h"
#include "util/clock.h"
#include "util/errmsg.h"
#include "util/log.h"
#include "vmm/dirty_log.h"
#include "vmm/state.h"
#include "vmm/vm.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define fail(err, ret, ...)  errmsg_set(err, MIG_ERR_LEN, ret, __VA_ARGS__)
#define DEFAULT_TIMEOUT_MS   10000
#define DEFAULT_BANDWIDTH    (1ULL << 30) /* bytes/s assumed before any is measured */
#define MIN_MEASURE_BYTES    (1ULL << 20) /* a round this small says nothing of the link */
#define STATE_ALLOWANCE_MS   5		  /* the state parts and the answers, in the pause */
#define PRESENCE_CHUNK_PAGES 16384	  /* 64 MiB per look at which pages hold data */
/* Auto-converge, as QEMU's cpu-throttle defaults: the first step, each next one, the cap. */
#define THROTTLE_INITIAL 20
#define THROTTLE_STEP	 10
#define THROTTLE_MAX	 99
#define HOT_ROUNDS	 2 /* rounds in a row dirtying over half the link before throttling */
#define MIG_STATE_PARTS	 3 /* vCPUs, VM, devices */

struct mig_source {
	struct vm *vm;
	struct mig_opts o;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock; /* protects st and conn_open */
	struct mig_status st;
	struct mig_conn conn; /* the thread's; cancel only shuts it down, under lock */
	bool conn_open;
	atomic_bool cancel;
	atomic_bool let_go; /* GO was sent: the VM is never resumed here again */
	bool was_paused;    /* the VM was paused when the migration started */
	bool paused;	    /* the migration paused it */
	bool postcopy;	    /* pre-copy ends in post-copy: m->dirty goes after GO */
	uint64_t *dirty;    /* pages to send next: one bit per page of the mapping */
	uint64_t t0;	    /* now_ns() at the start */
	uint64_t bandwidth; /* bytes/s, as measured */
	unsigned int hot;   /* rounds in a row that dirtied over half of what the last one sent */
	bool fitted;	    /* a round's pause already fitted the target (one more was sent) */
	uint64_t kicked;    /* now_ns() of the last throttle kick */
	struct mig_membuf mb;
	struct mig_tls *tls;	   /* credentials for a tcp: stream with TLS, or NULL */
	bool upgrade;		   /* unix: with RAM in a memfd: the memfd crosses, not the pages */
	uint64_t paused_ns, go_ns; /* now_ns() at the pause and when GO was sent */
	uint64_t stopped_ns;	   /* now_ns() once vCPUs and devices stood still */
	uint64_t read_ns;	   /* now_ns() once the state parts were read */
	uint64_t running_ns;	   /* now_ns() when the destination said it runs the VM */
};

const char *mig_phase_name(enum mig_phase p)
{
	static const char *const names[] = {
	    [MIG_PHASE_NONE] = "none",		 [MIG_PHASE_SETUP] = "setup",
	    [MIG_PHASE_PRECOPY] = "precopy",	 [MIG_PHASE_STOPCOPY] = "stopcopy",
	    [MIG_PHASE_SWITCH] = "switch",	 [MIG_PHASE_POSTCOPY] = "postcopy",
	    [MIG_PHASE_MIGRATED] = "migrated",	 [MIG_PHASE_FAILED] = "failed",
	    [MIG_PHASE_CANCELLED] = "cancelled",
	};

	return (unsigned int)p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}

static void set_phase(struct mig_source *m, enum mig_phase p)
{
	pthread_mutex_lock(&m->lock);
	m->st.phase = p;
	pthread_mutex_unlock(&m->lock);
}

/* Bytes sent, and the time, into the status. */
static void note_progress(struct mig_source *m)
{
	pthread_mutex_lock(&m->lock);
	m->st.bytes_sent = m->conn.bytes_out;
	m->st.pages_data = m->mb.data_pages;
	m->st.pages_zero = m->mb.zero_pages;
	m->st.total_ms = (now_ns() - m->t0) / 1000000;
	pthread_mutex_unlock(&m->lock);
}

static int check_going(struct mig_source *m, char *err)
{
	if (atomic_load(&m->cancel))
		return fail(err, -ECANCELED, "cancelled");
	if (atomic_load(&m->vm->stopping))
		return fail(err, -ESHUTDOWN, "the VM stopped");
	return 0;
}

/* A throttled guest looping without exits is kicked once a slice to take its sleep. */
static void throttle_tick(struct mig_source *m)
{
	uint64_t now = now_ns();

	if (now - m->kicked >= VM_THROTTLE_SLICE_MS * 1000000ULL) {
		vm_throttle_kick(m->vm);
		m->kicked = now;
	}
}

/* Keep the link under --bandwidth: sleep while ahead of it, a slice at a time. */
static void pace(struct mig_source *m)
{
	uint64_t cap = (uint64_t)m->o.bandwidth_mib_s << 20, due_ns, el;

	throttle_tick(m);
	if (!cap || m->paused)
		return;
	due_ns =
	    m->conn.bytes_out / cap * 1000000000ULL + m->conn.bytes_out % cap * 1000000000ULL / cap;
	while ((el = now_ns() - m->t0) < due_ns) {
		uint64_t d = due_ns - el, slice = VM_THROTTLE_SLICE_MS * 1000000ULL;
		struct timespec ts = {.tv_nsec = (long)(d < slice ? d : slice)};

		nanosleep(&ts, NULL);
		throttle_tick(m);
	}
}

/* Pages [first, first+n) of region @r: data, or a zero run when @zero_runs. */
static int send_pages(struct mig_source *m, const struct gm_region *r, uint64_t first, uint64_t n,
		      bool zero_runs)
{
	uint64_t p = first, end = first + n;
	int ret = 0;

	while (p < end && ret == 0) {
		bool zero = mig_page_is_zero(r->host + p * MIG_PAGE);
		uint64_t q = p + 1;

		while (q < end && mig_page_is_zero(r->host + q * MIG_PAGE) == zero)
			q++;
		if (!zero || zero_runs)
			ret = mig_membuf_add(&m->mb, &m->conn, r->gpa + p * MIG_PAGE,
					     zero ? NULL : r->host + p * MIG_PAGE, q - p);
		p = q;
	}
	pace(m);
	return ret;
}

/* Round 1: every page of @r that may hold data and is not zero. */
static int send_region_all(struct mig_source *m, const struct gm_region *r, char *err)
{
	uint64_t pages = r->size / MIG_PAGE;
	unsigned char *vec = malloc(PRESENCE_CHUNK_PAGES);
	struct mem_origin g;
	int ret = vec ? 0 : -ENOMEM;

	mem_origin_open_vm(&g, m->vm);
	for (uint64_t base = 0; base < pages && ret == 0; base += PRESENCE_CHUNK_PAGES) {
		uint64_t n =
		    pages - base < PRESENCE_CHUNK_PAGES ? pages - base : PRESENCE_CHUNK_PAGES;

		/* 1: may hold data; 0: known zero, not read (snapshot/mem_origin.h) */
		mem_origin_mark_zero(&g, r->host + base * MIG_PAGE, n, vec);
		for (uint64_t i = 0; i < n && ret == 0; i++) {
			uint64_t j = i;

			if (!(vec[i] & 1))
				continue;
			while (j < n && (vec[j] & 1))
				j++;
			ret = send_pages(m, r, base + i, j - i, false) ?: check_going(m, err);
			i = j - 1;
		}
		note_progress(m);
	}
	mem_origin_close(&g);
	free(vec);
	return ret;
}

static uint64_t region_first_page(const struct mig_source *m, const struct gm_region *r)
{
	return (uint64_t)(r->host - (uint8_t *)m->vm->mem_base) / MIG_PAGE;
}

static bool bit(const uint64_t *b, uint64_t i)
{
	return b[i / 64] >> (i % 64) & 1;
}

/* The pages in m->dirty, zero ones as zero runs (the destination has old data there). */
static int send_dirty(struct mig_source *m, char *err)
{
	int ret = 0;

	for (unsigned int i = 0; i < m->vm->mem.count && ret == 0; i++) {
		const struct gm_region *r = &m->vm->mem.regions[i];
		uint64_t first = region_first_page(m, r), pages = r->size / MIG_PAGE;

		for (uint64_t p = 0; p < pages && ret == 0; p++) {
			uint64_t q = p;

			if (!bit(m->dirty, first + p))
				continue;
			while (q < pages && bit(m->dirty, first + q))
				q++;
			ret = send_pages(m, r, p, q - p, true);
			if (ret == 0 && !m->paused)
				ret = check_going(m, err);
			p = q - 1;
		}
	}
	memset(m->dirty, 0, (m->vm->mem_map_size / MIG_PAGE + 63) / 64 * 8);
	if (ret == 0)
		ret = mig_membuf_flush(&m->mb, &m->conn);
	note_progress(m);
	return ret;
}

static uint64_t count_dirty(const struct mig_source *m)
{
	uint64_t n = 0, words = (m->vm->mem_map_size / MIG_PAGE + 63) / 64;

	for (uint64_t w = 0; w < words; w++)
		n += (uint64_t)__builtin_popcountll(m->dirty[w]);
	return n;
}

/* The link's speed from a round that moved @bytes in @ns. */
static void measure(struct mig_source *m, uint64_t bytes, uint64_t ns)
{
	if (bytes >= MIN_MEASURE_BYTES && ns)
		m->bandwidth = (uint64_t)((double)bytes * 1e9 / (double)ns);
	if (m->o.bandwidth_mib_s && m->bandwidth > (uint64_t)m->o.bandwidth_mib_s << 20)
		m->bandwidth = (uint64_t)m->o.bandwidth_mib_s << 20;
}

static uint64_t predict_ms(const struct mig_source *m, uint64_t dirty_bytes)
{
	return dirty_bytes * 1000 / (m->bandwidth ? m->bandwidth : 1) + STATE_ALLOWANCE_MS;
}

static void note_round(struct mig_source *m, unsigned int round, uint64_t dirty, uint64_t ns)
{
	pthread_mutex_lock(&m->lock);
	m->st.round = round;
	m->st.bytes_remaining = dirty * MIG_PAGE;
	m->st.dirty_rate = ns ? (uint64_t)((double)dirty * MIG_PAGE * 1e9 / (double)ns) : 0;
	m->st.bandwidth = m->bandwidth;
	m->st.predicted_downtime_ms = predict_ms(m, dirty * MIG_PAGE);
	pthread_mutex_unlock(&m->lock);
}

/*
 * Auto-converge: a round that dirtied more than half of what the round
 * before it sent, HOT_ROUNDS times in a row, means the guest dirties
 * memory about as fast as the link carries it and pre-copy will not end
 * by itself: slow the vCPUs down, THROTTLE_INITIAL % first, THROTTLE_STEP
 * more each further such round, up to THROTTLE_MAX.
 */
static void auto_converge(struct mig_source *m, uint64_t dirty_bytes, uint64_t sent)
{
	unsigned int pct = atomic_load(&m->vm->throttle_pct);

	if (!sent || dirty_bytes * 2 <= sent) {
		m->hot = 0;
		return;
	}
	if (++m->hot < HOT_ROUNDS)
		return;
	pct = pct ? pct + THROTTLE_STEP : THROTTLE_INITIAL;
	pct = pct > THROTTLE_MAX ? THROTTLE_MAX : pct;
	vm_throttle(m->vm, pct);
	pthread_mutex_lock(&m->lock);
	m->st.throttle_pct = pct;
	m->st.auto_converged = true;
	pthread_mutex_unlock(&m->lock);
	log_info("auto-converge: the guest dirties %llu KiB a round against %llu KiB sent: "
		 "vCPUs throttled %u %%",
		 (unsigned long long)dirty_bytes >> 10, (unsigned long long)sent >> 10, pct);
}

/*
 * Post-copy instead of another round: at once when forced, or when
 * pre-copy will not converge (the round limit, which the caller checks,
 * or auto-converge at its last step).
 */
static bool want_postcopy(const struct mig_source *m, unsigned int round)
{
	if (m->o.postcopy == MIG_POSTCOPY_NOW)
		return round >= 2;
	return m->o.postcopy == MIG_POSTCOPY_AUTO &&
	       atomic_load(&m->vm->throttle_pct) >= THROTTLE_MAX;
}

/*
 * Pre-copy ran MIG_MAX_ROUNDS without the final pause fitting the target.
 * With auto-converge the pause is taken anyway (the throttle has done what
 * it could); without it the migration fails rather than pause the guest
 * far beyond what was asked, and the VM runs on here. @dirty pages were
 * dirtied in the last round, which took @ns.
 */
static int not_converged(struct mig_source *m, uint64_t dirty, uint64_t ns, char *err)
{
	uint64_t rate = ns ? (uint64_t)((double)dirty * MIG_PAGE * 1e9 / (double)ns) : 0;

	if (!m->o.no_auto_converge)
		return 0;
	return fail(err, -ETIMEDOUT,
		    "pre-copy did not converge in %u rounds with auto-converge off: the guest "
		    "dirties %llu MiB/s, the link carries %llu MiB/s, the pause would be %llu ms "
		    "(target %u ms)",
		    MIG_MAX_ROUNDS, (unsigned long long)(rate >> 20),
		    (unsigned long long)(m->bandwidth >> 20),
		    (unsigned long long)predict_ms(m, dirty * MIG_PAGE), m->o.downtime_ms);
}

/* Round 1: all memory that is not zero; the link's speed measured. */
static int send_all(struct mig_source *m, char *err)
{
	uint64_t t = now_ns(), b = m->conn.bytes_out;
	int ret = 0;

	for (unsigned int i = 0; i < m->vm->mem.count && ret == 0; i++)
		ret = send_region_all(m, &m->vm->mem.regions[i], err);
	if (ret == 0)
		ret = mig_membuf_flush(&m->mb, &m->conn);
	measure(m, m->conn.bytes_out - b, now_ns() - t);
	return ret;
}

/*
 * Whether to pause now: the predicted pause fits the target, and either
 * it is small already or one more round was tried since it first fitted.
 * A round that ends with more pages dirty than usual may fit a 100 ms
 * target at 70 ms; the next, shorter round usually leaves a fraction of
 * that, so it gets one more round before the guest pays for it.
 */
static bool pause_now(struct mig_source *m, uint64_t dirty)
{
	uint64_t predicted = predict_ms(m, dirty * MIG_PAGE), target = m->o.downtime_ms;

	if (predicted > target)
		return false;
	if (predicted <= target / 4 || m->fitted)
		return true;
	m->fitted = true;
	return false;
}

/*
 * Rounds of dirty pages while the guest runs, until the final pause is
 * predicted to fit the target (pause_now; or MIG_MAX_ROUNDS). The last
 * round's pages stay in m->dirty for the pause.
 */
static int precopy(struct mig_source *m, char *err)
{
	uint64_t target = m->o.downtime_ms, t = now_ns(), b = m->conn.bytes_out, sent;
	int ret = send_all(m, err);

	sent = m->conn.bytes_out - b;

	for (unsigned int round = 2; ret == 0; round++) {
		uint64_t now = now_ns(), dirty;

		ret = vm_dirty_sync(m->vm, m->dirty);
		if (ret < 0)
			return fail(err, ret, "cannot read the dirty-page log: %s", strerror(-ret));
		dirty = count_dirty(m);
		note_round(m, round, dirty, now - t);
		if (pause_now(m, dirty) || round > MIG_MAX_ROUNDS || want_postcopy(m, round)) {
			pthread_mutex_lock(&m->lock);
			m->st.converged = predict_ms(m, dirty * MIG_PAGE) <= target;
			m->postcopy = m->o.postcopy == MIG_POSTCOPY_NOW ||
				      (!m->st.converged && m->o.postcopy == MIG_POSTCOPY_AUTO);
			pthread_mutex_unlock(&m->lock);
			return m->st.converged || m->postcopy
				   ? 0
				   : not_converged(m, dirty, now - t, err);
		}
		if (round > 2 && !m->o.no_auto_converge) /* round 1 sent all memory */
			auto_converge(m, dirty * MIG_PAGE, sent);
		t = now_ns();
		b = m->conn.bytes_out;
		ret = send_dirty(m, err);
		sent = m->conn.bytes_out - b;
		measure(m, sent, now_ns() - t);
	}
	return ret;
}

/* Post-copy: the pages still to send go after GO; the destination learns which now. */
static int send_postcopy_list(struct mig_source *m)
{
	uint64_t n;
	int ret = mig_pc_send_pending(&m->conn, m->vm, m->dirty, &n);

	pthread_mutex_lock(&m->lock);
	m->st.postcopy = ret == 0;
	m->st.postcopy_pages = m->st.postcopy_remaining = n;
	pthread_mutex_unlock(&m->lock);
	if (ret == 0)
		log_info("post-copy: pre-copy %s; %llu pages (%llu KiB) go after the switch",
			 m->o.postcopy == MIG_POSTCOPY_NOW ? "ended as asked" : "does not converge",
			 (unsigned long long)n, (unsigned long long)n * MIG_PAGE >> 10);
	return ret;
}

/*
 * The state parts, read now into @io[] (vCPUs, VM, devices). Reading them
 * may write guest memory: KVM's vcpu_put, around every KVM_GET_* ioctl,
 * may set the steal-time record's `preempted` byte, and a clock read may
 * refresh kvmclock's pages. KVM logs those writes, so the caller reads the
 * dirty log only after this, or the destination keeps stale copies.
 */
static const enum mig_tag part_tags[MIG_STATE_PARTS] = {MIG_TAG_VCPUS, MIG_TAG_VM, MIG_TAG_DEVICES};

/*
 * An unverified same-host upgrade sends each part as soon as it is read:
 * no memory follows the state, so the destination can load the vCPUs
 * while this side reads the VM and the devices. A verified one keeps the
 * parts together: the destination hashes the shared memory when the
 * first part arrives, and the rest of the reading here could still
 * write it (docs/migration.md, "The pause").
 */
static bool send_as_read(const struct mig_source *m)
{
	return m->upgrade && !m->o.verify;
}

static int save_parts(struct mig_source *m, struct state_io io[MIG_STATE_PARTS], char *err)
{
	static const enum snapshot_part parts[MIG_STATE_PARTS] = {
	    SNAPSHOT_PART_VCPUS, SNAPSHOT_PART_VM, SNAPSHOT_PART_DEVICES};
	int ret = 0;

	for (unsigned int i = 0; i < MIG_STATE_PARTS; i++)
		state_io_saver(&io[i]);
	for (unsigned int i = 0; i < MIG_STATE_PARTS && ret == 0; i++) {
		ret = snapshot_part_save(m->vm, parts[i], &io[i], err);
		if (ret == 0 && send_as_read(m) &&
		    (ret = mig_send(&m->conn, part_tags[i], io[i].buf, io[i].len)) < 0)
			fail(err, ret, "the migration stream broke: %s", strerror(-ret));
	}
	return ret;
}

static int send_parts(struct mig_source *m, const struct state_io io[MIG_STATE_PARTS])
{
	int ret = 0;

	if (send_as_read(m))
		return 0; /* save_parts sent them */
	for (unsigned int i = 0; i < MIG_STATE_PARTS && ret == 0; i++)
		ret = mig_send(&m->conn, part_tags[i], io[i].buf, io[i].len);
	return ret;
}

/*
 * VERIFY: memory's CRC, and with --verify=pages each page's, so a mismatch
 * names pages; a restored VM's untouched holes are hashed without being
 * read (mem_origin.h).
 */
static int send_verify(struct mig_source *m)
{
	size_t len = 4 + (m->o.verify_pages ? mig_mem_pages(&m->vm->mem) * 4 : 0);
	uint8_t *b = malloc(len);
	struct mem_origin g;
	uint32_t crc;
	int ret;

	if (!b)
		return -ENOMEM;
	mem_origin_open_vm(&g, m->vm);
	crc = mig_mem_crc(&m->vm->mem, &g);
	for (unsigned int i = 0; i < 4; i++)
		b[i] = (uint8_t)(crc >> (8 * i));
	if (m->o.verify_pages)
		mig_mem_page_crcs(&m->vm->mem, &g, b + 4);
	mem_origin_close(&g);
	ret = mig_send(&m->conn, MIG_TAG_VERIFY, b, len);
	free(b);
	return ret;
}

/* Paused, the state read (@io): the last pages, the parts, the memory's CRC, END; the answer. */
static int stopcopy(struct mig_source *m, const struct state_io io[MIG_STATE_PARTS], char *err)
{
	/* A VM paused throughout sent everything in send_all: nothing is dirty. */
	int ret = m->was_paused || m->upgrade ? 0 : vm_dirty_sync(m->vm, m->dirty);

	if (ret < 0)
		return fail(err, ret, "cannot read the dirty-page log: %s", strerror(-ret));
	if (!m->upgrade && !m->postcopy) /* an upgrade's destination maps the very same memory */
		ret = send_dirty(m, err);
	if (ret == 0)
		ret = send_parts(m, io);
	if (ret == 0 && m->postcopy)
		ret = send_postcopy_list(m);
	if (ret == 0)
		ret = mig_send(&m->conn, MIG_TAG_END, NULL, 0);
	/* The destination computes its own meanwhile; post-copy's comes at its end. */
	if (ret == 0 && m->o.verify && !m->postcopy)
		ret = send_verify(m);
	if (ret < 0 && !err[0])
		fail(err, ret, "the migration stream broke: %s", strerror(-ret));
	if (ret == 0)
		ret = mig_recv_reply(&m->conn, MIG_TAG_LOADED, err);
	return ret;
}

/* Connect, send the header and the machine; the destination's answer. */
static int setup(struct mig_source *m, char *err)
{
	struct mig_url u;
	struct state_io io;
	int ret = mig_url_parse(m->o.url, &u, err);

	if (ret == 0)
		ret = mig_connect(&u, m->o.timeout_ms, &m->conn, err);
	if (ret == 0 && m->tls)
		ret = mig_tls_client(&m->conn, m->tls, u.host, err);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&m->lock);
	m->conn_open = true;
	pthread_mutex_unlock(&m->lock);
	if (atomic_load(&m->cancel)) /* a cancel before conn_open shut nothing down */
		return fail(err, -ECANCELED, "cancelled");
	ret = mig_send_header(&m->conn, (m->o.verify ? MIG_FLAG_VERIFY : 0) |
					    (m->o.verify_pages ? MIG_FLAG_PAGES : 0) |
					    (m->o.postcopy ? MIG_FLAG_POSTCOPY : 0) |
					    (m->upgrade ? MIG_FLAG_MEMFD : 0));
	if (ret == 0 && (ret = snapshot_part_save(m->vm, SNAPSHOT_PART_CONFIG, &io, err)) == 0) {
		m->conn.tx_fd = m->upgrade ? m->vm->mem_fd : -1; /* rides with CONFIG */
		ret = mig_send(&m->conn, MIG_TAG_CONFIG, io.buf, io.len);
	}
	state_io_free(&io);
	if (ret < 0 && !err[0])
		fail(err, ret, "the migration stream broke: %s", strerror(-ret));
	if (ret == 0 && (ret = mig_recv_reply(&m->conn, MIG_TAG_READY, err)) < 0) {
		char why[MIG_ERR_LEN];

		snprintf(why, sizeof(why), "%s", err);
		fail(err, ret, "the destination refused the VM: %s", why);
	}
	return ret;
}

/* Pause the VM for the final copy (no-op when it was paused already). */
static int pause_vm(struct mig_source *m, char *err)
{
	if (!m->was_paused)
		vm_pause(m->vm);
	m->paused = true;
	pthread_mutex_lock(&m->lock);
	m->st.phase = MIG_PHASE_STOPCOPY;
	m->st.downtime_ms = 0;
	pthread_mutex_unlock(&m->lock);
	return check_going(m, err);
}

static void resume_vm(struct mig_source *m)
{
	if (m->paused && !m->was_paused && !atomic_load(&m->let_go))
		vm_resume(m->vm);
	m->paused = false;
}

/* The switch: GO, then the destination's word that it runs the VM. */
static int hand_over(struct mig_source *m, char *err)
{
	int ret, detach;

	set_phase(m, MIG_PHASE_SWITCH);
	if (atomic_load(&m->cancel))
		return fail(err, -ECANCELED, "cancelled");
	atomic_store(&m->let_go, true);
	ret = mig_send(&m->conn, MIG_TAG_GO, NULL, 0);
	m->go_ns = now_ns();
	if (ret == 0)
		ret = mig_recv_reply(&m->conn, MIG_TAG_RUNNING, err);
	m->running_ns = now_ns();
	/*
	 * The guest's memory is the destination's alone from now on (it runs
	 * there anyway). Unmapping it here costs time in proportion to the
	 * pages this process had mapped (a dirtying guest's many), but the
	 * guest is not waiting for it: the pause ended with RUNNING.
	 */
	if (ret == 0 && m->upgrade && (detach = mig_upgrade_detach(m->vm)) < 0)
		log_error("upgrade: cannot unmap the guest's memory here: %s", strerror(-detach));
	return ret;
}

static void pc_progress(void *priv, uint64_t remaining, uint64_t requested)
{
	struct mig_source *m = priv;

	note_progress(m);
	pthread_mutex_lock(&m->lock);
	m->st.postcopy_remaining = remaining;
	m->st.postcopy_requested = requested;
	m->st.bytes_remaining = remaining * MIG_PAGE;
	pthread_mutex_unlock(&m->lock);
}

static void pc_pace(void *priv)
{
	struct mig_source *m = priv;

	m->paused = false; /* pace() holds back only a running guest's stream */
	pace(m);
	m->paused = true;
}

/* After RUNNING: the rest of memory, until the destination has every page. */
static int postcopy(struct mig_source *m, char *err)
{
	struct mig_pc_source s = {.vm = m->vm,
				  .conn = &m->conn,
				  .mb = &m->mb,
				  .pending = m->dirty,
				  .count = count_dirty(m),
				  .verify = m->o.verify,
				  .progress = pc_progress,
				  .pace = pc_pace,
				  .priv = m};

	set_phase(m, MIG_PHASE_POSTCOPY);
	return mig_pc_source_run(&s, err);
}

/* The whole migration; 0 once the destination runs the VM. */
static int migrate(struct mig_source *m, char *err)
{
	struct state_io io[MIG_STATE_PARTS];
	uint64_t paused_at;
	int ret;

	memset(io, 0, sizeof(io)); /* freed below whatever happened */
	ret = setup(m, err);

	if (ret == 0 && !m->upgrade && !m->was_paused) {
		set_phase(m, MIG_PHASE_PRECOPY);
		ret = precopy(m, err);
	}
	paused_at = m->paused_ns = now_ns(); /* the guest's pause starts with vm_pause */
	if (ret == 0)
		ret = pause_vm(m, err);
	m->stopped_ns = now_ns();
	/*
	 * The state is read before the last memory is: reading it may write
	 * guest memory (save_parts), so the final dirty-log read in stopcopy,
	 * or all of memory for a VM paused throughout, comes after it.
	 */
	if (ret == 0)
		ret = save_parts(m, io, err);
	m->read_ns = now_ns();
	if (ret == 0 && m->was_paused && !m->upgrade)
		ret = send_all(m, err);
	if (ret == 0)
		ret = stopcopy(m, io, err);
	for (unsigned int i = 0; i < MIG_STATE_PARTS; i++)
		state_io_free(&io[i]);
	if (ret == 0)
		ret = hand_over(m, err);
	pthread_mutex_lock(&m->lock);
	if (m->paused) {
		m->st.downtime_us = ((m->running_ns ? m->running_ns : now_ns()) - paused_at) / 1000;
		m->st.downtime_ms = m->st.downtime_us / 1000;
	}
	pthread_mutex_unlock(&m->lock);
	if (ret == 0 && m->postcopy)
		ret = postcopy(m, err);
	pthread_mutex_lock(&m->lock);
	m->st.verified = ret == 0 && m->o.verify;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static void finish(struct mig_source *m, int ret, const char *err)
{
	/* A cancel shows as whatever the shut-down stream made of it (EPIPE, EOF, ...). */
	bool cancelled = ret < 0 && atomic_load(&m->cancel) && !atomic_load(&m->let_go);
	enum mig_phase p = MIG_PHASE_FAILED;
	bool in_pc;

	if (ret == 0)
		p = MIG_PHASE_MIGRATED;
	else if (cancelled)
		p = MIG_PHASE_CANCELLED;
	note_progress(m);
	pthread_mutex_lock(&m->lock);
	in_pc = m->st.phase == MIG_PHASE_POSTCOPY;
	m->st.phase = p;
	if (ret == 0)
		snprintf(m->st.outcome, sizeof(m->st.outcome), "migrated");
	else if (in_pc)
		snprintf(m->st.outcome, sizeof(m->st.outcome),
			 "post-copy broke with %llu pages not sent (%s): the VM ran at the "
			 "destination, which cannot go on without them; it stays paused here, "
			 "never resumed",
			 (unsigned long long)m->st.postcopy_remaining, err);
	else if (atomic_load(&m->let_go))
		snprintf(m->st.outcome, sizeof(m->st.outcome),
			 "the destination did not confirm after the hand-over (%s): the VM "
			 "stays paused here; resume it only if the destination does not run it",
			 err);
	else
		snprintf(m->st.outcome, sizeof(m->st.outcome), "%s", cancelled ? "cancelled" : err);
	pthread_mutex_unlock(&m->lock);
}

/* Where the pause went (docs/migration.md, "The pause"): each step in microseconds. */
static void log_pause_split(const struct mig_source *m)
{
	log_info("pause split: vCPUs and devices stopped in %llu us, state read%s in %llu us, "
		 "%s and loaded in %llu us, GO to RUNNING %llu us",
		 (unsigned long long)(m->stopped_ns - m->paused_ns) / 1000,
		 send_as_read(m) ? " (each part sent as read)" : "",
		 (unsigned long long)(m->read_ns - m->stopped_ns) / 1000,
		 m->upgrade ? "sent" : "the rest sent",
		 (unsigned long long)(m->go_ns - m->read_ns) / 1000,
		 (unsigned long long)(m->running_ns - m->go_ns) / 1000);
}

static void *mig_thread(void *arg)
{
	struct mig_source *m = arg;
	char err[MIG_ERR_LEN] = "";
	int ret = migrate(m, err);

	vm_throttle(m->vm, 0); /* full speed again, here if it failed, wherever it runs */
	pthread_mutex_lock(&m->lock);
	m->conn_open = false;
	pthread_mutex_unlock(&m->lock);
	mig_conn_close(&m->conn);
	if (ret < 0 && !err[0])
		fail(err, ret, "%s", strerror(-ret));
	if (ret < 0 && m->conn.why[0] && !strstr(err, m->conn.why) &&
	    strlen(err) + strlen(m->conn.why) + 4 < MIG_ERR_LEN)
		snprintf(err + strlen(err), MIG_ERR_LEN - strlen(err), " (%s)", m->conn.why);
	if (ret < 0)
		resume_vm(m);
	finish(m, ret, err);
	if (ret == 0) {
		log_info(
		    "migrated to %s: %llu bytes, pause %llu ms (%llu us, %llu us to GO), total "
		    "%llu ms%s%s%s%s",
		    m->o.url, (unsigned long long)m->st.bytes_sent,
		    (unsigned long long)m->st.downtime_ms, (unsigned long long)m->st.downtime_us,
		    (unsigned long long)(m->go_ns - m->paused_ns) / 1000,
		    (unsigned long long)m->st.total_ms, m->st.verified ? ", verified" : "",
		    m->st.auto_converged ? ", auto-converged" : "",
		    m->st.postcopy ? ", post-copy" : "",
		    m->upgrade ? ", memory handed over by descriptor" : "");
		log_pause_split(m);
		vm_request_exit(m->vm, VM_EXIT_MIGRATED, "migrated");
	} else {
		log_error("migration to %s failed: %s", m->o.url, m->st.outcome);
	}
	return NULL;
}

/* Dirty-page tracking on (briefly paused: devices' bitmaps appear), the baseline taken. */
static int start_tracking(struct mig_source *m, char *err)
{
	uint64_t words = (m->vm->mem_map_size / MIG_PAGE + 63) / 64;
	int ret = 0;

	m->dirty = calloc(words, sizeof(uint64_t));
	if (!m->dirty || mig_membuf_init(&m->mb) < 0)
		return fail(err, -ENOMEM, "out of memory");
	if (m->was_paused || m->upgrade)
		return 0; /* one stop-and-copy, or no memory to copy: no rounds */
	if (!vm_dirty_logging(m->vm)) {
		vm_pause(m->vm);
		ret = vm_dirty_start(m->vm);
		vm_resume(m->vm);
	}
	if (ret == 0) /* what was written before now goes in round 1 anyway */
		ret = vm_dirty_sync(m->vm, m->dirty);
	memset(m->dirty, 0, words * sizeof(uint64_t));
	if (ret < 0)
		return fail(err, ret,
			    "dirty-page logging is not available (%s): pause the VM to migrate it "
			    "without pre-copy",
			    strerror(-ret));
	return 0;
}

int mig_postcopy_parse(const char *s, enum mig_postcopy_mode *mode)
{
	static const char *const names[] = {"off", "auto", "now"};

	for (unsigned int i = 0; i < 3; i++)
		if (strcmp(s, names[i]) == 0) {
			*mode = (enum mig_postcopy_mode)i;
			return 0;
		}
	return -EINVAL;
}

/* The URL, and TLS's credentials read now (tcp: only). */
static int check_opts(const struct mig_opts *o, struct mig_url *u, struct mig_tls **tls, char *err)
{
	int ret = mig_url_parse(o->url, u, err);

	if (ret < 0 || !mig_tls_wanted(&o->tls))
		return ret;
	if (u->kind != MIG_URL_TCP)
		return fail(err, -EINVAL,
			    "TLS is for tcp: URLs (a unix socket is local, guarded by its "
			    "file's permissions)");
	return mig_tls_load(&o->tls, tls, err);
}

int mig_source_start(struct vm *vm, const struct mig_opts *o, struct mig_source **out, char *err)
{
	struct mig_source *m;
	struct mig_tls *tls = NULL;
	struct mig_url u;
	int ret = check_opts(o, &u, &tls, err);

	if (ret < 0)
		return ret;
	m = calloc(1, sizeof(*m));
	if (!m) {
		mig_tls_free(tls);
		return fail(err, -ENOMEM, "out of memory");
	}
	m->tls = tls;
	m->vm = vm;
	m->upgrade = mig_upgrade_possible(vm, &u);
	m->o = *o;
	m->o.verify = o->verify || o->verify_pages;
	m->o.downtime_ms = o->downtime_ms ? o->downtime_ms : MIG_DEFAULT_DOWNTIME_MS;
	m->o.timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	m->conn.fd = -1;
	m->bandwidth = DEFAULT_BANDWIDTH;
	m->was_paused = vm_is_paused(vm);
	m->t0 = now_ns();
	pthread_mutex_init(&m->lock, NULL);
	m->st.phase = MIG_PHASE_SETUP;
	m->st.mem_bytes = vm->mem.total;
	snprintf(m->st.url, sizeof(m->st.url), "%s", o->url);
	ret = start_tracking(m, err);
	if (ret == 0 && (ret = -pthread_create(&m->thread, NULL, mig_thread, m)) < 0)
		fail(err, ret, "cannot start the migration thread: %s", strerror(-ret));
	m->thread_started = ret == 0;
	if (ret < 0) {
		mig_source_free(m);
		return ret;
	}
	log_info("migrating to %s (downtime target %u ms%s%s%s%s)", o->url, m->o.downtime_ms,
		 o->verify_pages ? ", verified by page"
		 : o->verify	 ? ", verified"
				 : "",
		 tls ? ", TLS" : "", m->upgrade ? ", upgrade: memory by descriptor" : "",
		 o->no_auto_converge ? ", auto-converge off" : "");
	*out = m;
	return 0;
}

void mig_source_status(struct mig_source *m, struct mig_status *st)
{
	pthread_mutex_lock(&m->lock);
	*st = m->st;
	if (st->phase < MIG_PHASE_MIGRATED)
		st->total_ms = (now_ns() - m->t0) / 1000000;
	pthread_mutex_unlock(&m->lock);
}

bool mig_source_active(struct mig_source *m)
{
	bool active;

	pthread_mutex_lock(&m->lock);
	active = m->st.phase < MIG_PHASE_MIGRATED;
	pthread_mutex_unlock(&m->lock);
	return active;
}

int mig_source_cancel(struct mig_source *m)
{
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	if (m->st.phase >= MIG_PHASE_MIGRATED || atomic_load(&m->let_go))
		ret = -EALREADY;
	else {
		atomic_store(&m->cancel, true);
		if (m->conn_open) /* a blocked read or write returns now */
			m->conn.ops->shutdown(&m->conn);
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

void mig_source_free(struct mig_source *m)
{
	if (!m)
		return;
	if (m->thread_started) {
		(void)mig_source_cancel(m);
		pthread_join(m->thread, NULL);
	}
	mig_membuf_free(&m->mb);
	mig_tls_free(m->tls);
	free(m->dirty);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
