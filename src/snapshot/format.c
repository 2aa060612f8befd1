/*
 * Snapshot directories: atomic writing, the JSON manifest, CRC-checked
 * sections and the sparse memory file.
 *
 * Checksums are zlib's CRC-32: already a dependency of half the system,
 * table-driven and braided (several GB/s, no CPU feature detection), and
 * what is wanted here is detection of truncation and bit rot, not an
 * adversary-proof hash. CRC-32C would need SSE4.2 code paths of our own.
 */
#include "snapshot/format.h"
#include "snapshot/mem_origin.h"
#include "util/errmsg.h"

#include "util/file.h"
#include "util/log.h"
#include "vmm/vm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#ifndef BANYAN_VERSION
#define BANYAN_VERSION "dev"
#endif

#define IO_CHUNK (1U << 20)

/* Describe the error in @err (may be NULL); evaluates to 0. */
#define fail(err, ...) errmsg_set(err, SNAP_ERR_LEN, 0, __VA_ARGS__)

static uint32_t crc_update(uint32_t crc, const void *buf, size_t len)
{
	const Bytef *p = buf;

	while (len) {
		uInt n = len > (1U << 30) ? (1U << 30) : (uInt)len;

		crc = (uint32_t)crc32(crc, p, n);
		p += n;
		len -= n;
	}
	return crc;
}

static int write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len > IO_CHUNK ? IO_CHUNK : len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len > IO_CHUNK ? IO_CHUNK : len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EBADMSG; /* EOF: truncated */
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static void random_id(char id[SNAP_ID_LEN + 1])
{
	uint8_t b[SNAP_ID_LEN / 2];
	ssize_t n = getrandom(b, sizeof(b), 0);

	if (n != (ssize_t)sizeof(b)) { /* never expected; still unique enough */
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)((uint64_t)ts.tv_nsec >> (i % 8 * 8) ^
					 (uint64_t)getpid() >> i);
	}
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(id + 2 * i, 3, "%02x", b[i]);
}

/* --- writing --- */

/* The entries a snapshot directory holds: what overwriting one removes. */
static bool snapshot_file(const struct snap_manifest *m, const char *name)
{
	if (!strcmp(name, SNAP_MANIFEST) || !strcmp(name, SNAP_MANIFEST ".new") ||
	    !strcmp(name, SNAP_MEMORY_FILE))
		return true;
	/* disk-vdX.overlay */
	if (strlen(name) == 16 && !strncmp(name, "disk-vd", 7) && name[7] >= 'a' &&
	    name[7] <= 'z' && !strcmp(name + 8, ".overlay"))
		return true;
	for (unsigned int i = 0; i < m->nsections; i++)
		if (!strcmp(name, m->sections[i].file))
			return true;
	return false;
}

/* @dir holds only @m's files, each a regular file (nothing else is deleted with it). */
static bool only_snapshot_files(const char *dir, const struct snap_manifest *m, char *bad,
				size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	bool ok = d != NULL;

	while (ok && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		ok = fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		     S_ISREG(st.st_mode);
		if (!ok)
			snprintf(bad, len, "'%s', which is not a regular file", e->d_name);
		else if (!(ok = snapshot_file(m, e->d_name)))
			snprintf(bad, len, "'%s', which is not part of the snapshot", e->d_name);
	}
	if (d)
		closedir(d);
	return ok;
}

int snap_check_target(const char *dir, bool overwrite, char *err)
{
	struct snap_manifest m;
	char bad[320] = "?", tmp[SNAP_ERR_LEN];
	struct stat st;

	if (lstat(dir, &st) < 0)
		return errno == ENOENT
			   ? 0
			   : (fail(err, "cannot use %s: %s", dir, strerror(errno)), -errno);
	if (!S_ISDIR(st.st_mode))
		return fail(err,
			    "%s exists and is not a snapshot directory: refusing to replace it",
			    dir),
		       -EEXIST;
	if (snap_read_manifest(dir, &m, tmp) < 0)
		return fail(err,
			    "%s exists and is not a snapshot (%s): refusing to replace it; choose "
			    "a path that does not exist",
			    dir, tmp),
		       -EEXIST;
	if (!overwrite)
		return fail(err,
			    "%s is already a snapshot: refusing to replace it without overwrite "
			    "(banyan ctl snapshot create --overwrite, API \"overwrite\": true)",
			    dir),
		       -EEXIST;
	if (!only_snapshot_files(dir, &m, bad, sizeof(bad)))
		return fail(err, "%s holds %s: left as it is", dir, bad), -EEXIST;
	return 0;
}

/*
 * Temporaries are "NAME.tmp-PID-XXXXXX", and their writer holds a flock on
 * them until it commits or aborts. One is stale when PID is gone and the
 * lock is free (a writer in another PID namespace still holds the lock; a
 * reused PID keeps it, which errs on the side of keeping). Returns the PID
 * or 0 when @name is not such a temporary.
 */
static pid_t tmp_owner(const char *name)
{
	const char *t = strstr(name, ".tmp-"), *p;
	long pid = 0;

	if (!t)
		return 0;
	for (p = t + 5; *p >= '0' && *p <= '9' && pid < (1L << 22); p++)
		pid = pid * 10 + (*p - '0');
	if (p == t + 5 || *p != '-' || strlen(p + 1) != 6 || strstr(p, ".tmp-"))
		return 0;
	return (pid_t)pid;
}

static bool tmp_is_stale(int parent, const char *name, int *fd)
{
	pid_t pid = tmp_owner(name);

	*fd = -1;
	if (pid <= 0 || pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH)
		return false;
	*fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd >= 0 && flock(*fd, LOCK_EX | LOCK_NB) == 0)
		return true;
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	return false;
}

/*
 * Remove a stale temporary holding regular files only (a writer makes
 * nothing else) and no manifest (one with a manifest may be a finished
 * snapshot someone named so: the operator decides).
 */
static void remove_stale(int parent, const char *name, int fd)
{
	DIR *d = fdopendir(fd);
	struct dirent *e;
	struct stat st;
	bool plain = d != NULL && faccessat(fd, SNAP_MANIFEST, F_OK, AT_SYMLINK_NOFOLLOW) < 0;

	while (plain && (e = readdir(d)))
		plain =
		    !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode));
	if (plain) {
		rewinddir(d);
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(fd, e->d_name, 0);
		if (unlinkat(parent, name, AT_REMOVEDIR) == 0)
			log_info("removed %s, left by a snapshot writer that is gone", name);
	}
	if (d)
		closedir(d); /* closes @fd, releasing the lock */
	else
		close(fd);
}

void snap_clean_stale(const char *parent)
{
	DIR *d = opendir(parent);
	struct dirent *e;
	int fd;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (tmp_is_stale(dirfd(d), e->d_name, &fd))
			remove_stale(dirfd(d), e->d_name, fd);
	closedir(d);
}

static void parent_of(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(out, len, ".");
	else if (slash == path)
		snprintf(out, len, "/");
	else
		snprintf(out, len, "%.*s", (int)(slash - path), path);
}

/* DIR.tmp-PID-XXXXXX, opened and locked for as long as this writer lives. */
static int writer_mktemp(struct snap_writer *w, char *err)
{
	int e;

	if (snprintf(w->tmp, sizeof(w->tmp), "%s.tmp-%d-XXXXXX", w->final, (int)getpid()) >=
		(int)sizeof(w->tmp) ||
	    !mkdtemp(w->tmp)) {
		e = errno;
		w->tmp[0] = '\0';
		return fail(err, "cannot create a temporary directory next to %s: %s", w->final,
			    strerror(e)),
		       -e;
	}
	w->dirfd = open(w->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		e = errno;
		fail(err, "cannot open %s: %s", w->tmp, strerror(e));
		rmdir(w->tmp);
		w->tmp[0] = '\0';
		return -e;
	}
	/* A file system without flock: nobody can lock it, so nobody removes it. */
	(void)flock(w->dirfd, LOCK_EX | LOCK_NB);
	return 0;
}

int snap_writer_open(struct snap_writer *w, const char *dir, bool overwrite, char *err)
{
	char parent[PATH_MAX];
	size_t n = strlen(dir);
	int ret;

	memset(w, 0, sizeof(*w));
	w->dirfd = -1;
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 0 || n + 32 >= sizeof(w->tmp))
		return fail(err, "snapshot path '%s' is empty or too long", dir), -EINVAL;
	memcpy(w->final, dir, n);
	w->overwrite = overwrite;
	ret = snap_check_target(w->final, overwrite, err);
	if (ret < 0)
		return ret;
	parent_of(w->final, parent, sizeof(parent));
	snap_clean_stale(parent);
	ret = writer_mktemp(w, err);
	if (ret < 0)
		return ret;
	w->m.version = SNAP_FORMAT_VERSION;
	random_id(w->m.id);
	w->m.created = (uint64_t)time(NULL);
	snprintf(w->m.vmm_version, sizeof(w->m.vmm_version), "%s", BANYAN_VERSION);
	return 0;
}

/* Create @name in the temporary directory, write @len bytes, fsync. */
static int writer_file(struct snap_writer *w, const char *name, const void *buf, size_t len,
		       uint32_t *crc, char *err)
{
	int fd = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int ret;

	if (fd < 0)
		ret = -errno;
	else
		ret = write_all(fd, buf, len, 0);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (ret < 0)
		fail(err, "cannot write %s/%s: %s", w->tmp, name, strerror(-ret));
	else if (crc)
		*crc = crc_update((uint32_t)crc32(0, NULL, 0), buf, len);
	return ret;
}

int snap_writer_section(struct snap_writer *w, const char *name, const void *buf, size_t len,
			char *err)
{
	struct snap_section *s;
	int ret;

	if (w->m.nsections == SNAP_MAX_SECTIONS || strlen(name) + 7 > sizeof(s->file))
		return fail(err, "too many sections or name too long"), -EINVAL;
	s = &w->m.sections[w->m.nsections];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->file, sizeof(s->file), "%s.state", name);
	ret = writer_file(w, s->file, buf, len, &s->crc, err);
	if (ret == 0) {
		s->size = len;
		w->m.nsections++;
	}
	return ret;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)(const void *)p;

	for (size_t i = 0; i < SNAP_PAGE / 8; i += 8)
		if (q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] |
		    q[i + 7])
			return false;
	return true;
}

static bool bit_is_set(const uint64_t *bitmap, uint64_t page)
{
	return bitmap[page / 64] >> (page % 64) & 1;
}

static uint32_t crc_page(uint32_t crc, uint64_t page, const uint8_t *data)
{
	uint8_t idx[8];

	for (int i = 0; i < 8; i++)
		idx[i] = (uint8_t)(page >> (8 * i));
	crc = crc_update(crc, idx, sizeof(idx));
	return crc_update(crc, data, SNAP_PAGE);
}

struct mem_out {
	int fd;
	const uint8_t *base;
	uint64_t run_start, run_len; /* pending run of data pages, in pages */
	uint64_t present, data;
	uint32_t crc;
	_Atomic uint64_t *progress; /* bytes walked so far, or NULL */
};

static int mem_flush(struct mem_out *o)
{
	int ret = 0;

	if (o->run_len)
		ret = write_all(o->fd, o->base + o->run_start * SNAP_PAGE, o->run_len * SNAP_PAGE,
				o->run_start * SNAP_PAGE);
	o->run_len = 0;
	return ret;
}

static int mem_page(struct mem_out *o, uint64_t page)
{
	const uint8_t *p = o->base + page * SNAP_PAGE;
	int ret = 0;

	o->present++;
	if (page_is_zero(p))
		return mem_flush(o);
	if (o->run_len && o->run_start + o->run_len != page)
		ret = mem_flush(o);
	if (o->run_len == 0)
		o->run_start = page;
	o->run_len++;
	o->data++;
	o->crc = crc_page(o->crc, page, p);
	if (ret == 0 && o->run_len * SNAP_PAGE >= IO_CHUNK)
		ret = mem_flush(o);
	return ret;
}

/*
 * Walk the pages in chunks; @g (NULL: nothing known) tells which pages
 * are zero without reading them (mem_origin.h).
 */
static int mem_walk(struct mem_out *o, uint64_t npages, const uint64_t *bitmap,
		    struct mem_origin *g)
{
	unsigned char vec[MEM_ORIGIN_CHUNK];
	int ret = 0;

	for (uint64_t c = 0; c < npages && ret == 0; c += sizeof(vec)) {
		uint64_t n = npages - c < sizeof(vec) ? npages - c : sizeof(vec);
		const uint8_t *at = o->base + c * SNAP_PAGE;

		mem_origin_mark_zero(g, at, n, vec);
		for (uint64_t i = 0; i < n && ret == 0; i++) {
			if (bitmap && !bit_is_set(bitmap, c + i))
				continue;
			if (!(vec[i] & 1)) {
				o->present++; /* never touched: zero */
				ret = mem_flush(o);
				continue;
			}
			ret = mem_page(o, c + i);
		}
		if (o->progress)
			atomic_store(o->progress, (c + n) * SNAP_PAGE);
	}
	return ret ? ret : mem_flush(o);
}

int snap_writer_memory(struct snap_writer *w, const uint8_t *base, uint64_t size,
		       const uint64_t *bitmap, struct mem_origin *g, char *err)
{
	struct mem_out o = {
	    .base = base, .crc = (uint32_t)crc32(0, NULL, 0), .progress = w->progress};
	uint64_t npages = size / SNAP_PAGE;
	int ret;

	if (size % SNAP_PAGE)
		return fail(err, "memory size is not a whole number of pages"), -EINVAL;
	o.fd = openat(w->dirfd, SNAP_MEMORY_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (o.fd < 0) {
		ret = -errno;
		return fail(err, "cannot create %s/memory: %s", w->tmp, strerror(errno)), ret;
	}
	ret = ftruncate(o.fd, (off_t)size) < 0 ? -errno : 0; /* sparse: holes read as zero */
	if (ret == 0)
		ret = mem_walk(&o, npages, bitmap, g);
	if (ret == 0 && fsync(o.fd) < 0)
		ret = -errno;
	close(o.fd);
	if (ret < 0)
		return fail(err, "cannot write %s/memory: %s", w->tmp, strerror(-ret)), ret;
	w->m.mem_size = size;
	w->m.mem_pages_present = o.present;
	w->m.mem_pages_data = o.data;
	w->m.mem_crc = o.crc;
	if (bitmap)
		ret = snap_writer_section(w, "memory.map", bitmap, (npages + 63) / 64 * 8, err);
	return ret;
}

/* --- the manifest --- */

static void add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static void add_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static json_object *manifest_to_json(const struct snap_manifest *m)
{
	json_object *o = json_object_new_object(), *secs = json_object_new_array(), *mem;
	char iso[32];
	time_t t = (time_t)m->created;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	add_str(o, "format", SNAP_FORMAT_NAME);
	add_u64(o, "version", m->version);
	add_str(o, "id", m->id);
	add_str(o, "type", m->type == SNAP_DIFF ? "diff" : "full");
	if (m->parent_id[0]) {
		json_object *p = json_object_new_object();

		add_str(p, "id", m->parent_id);
		add_str(p, "path", m->parent_path);
		json_object_object_add(o, "parent", p);
	} else {
		json_object_object_add(o, "parent", NULL);
	}
	add_u64(o, "created", m->created);
	add_str(o, "created_utc", iso);
	add_str(o, "vmm_version", m->vmm_version);
	add_u64(o, "vcpus", m->ncpus);
	mem = json_object_new_object();
	add_str(mem, "file", SNAP_MEMORY_FILE);
	add_u64(mem, "size", m->mem_size);
	add_u64(mem, "pages_present", m->mem_pages_present);
	add_u64(mem, "pages_data", m->mem_pages_data);
	add_u64(mem, "crc32", m->mem_crc);
	json_object_object_add(o, "memory", mem);
	for (unsigned int i = 0; i < m->nsections; i++) {
		json_object *s = json_object_new_object();

		add_str(s, "name", m->sections[i].name);
		add_str(s, "file", m->sections[i].file);
		add_u64(s, "size", m->sections[i].size);
		add_u64(s, "crc32", m->sections[i].crc);
		json_object_array_add(secs, s);
	}
	json_object_object_add(o, "sections", secs);
	return o;
}

static int write_manifest_at(int dirfd, const char *name, const struct snap_manifest *m,
			     const char *where, char *err)
{
	json_object *o = manifest_to_json(m);
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE);
	/* A new file, never one found there (a symlink planted in its place is not followed). */
	int fd = (unlinkat(dirfd, name, 0),
		  openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
	int ret = fd < 0 ? -errno : write_all(fd, s, strlen(s), 0);

	if (ret == 0 && write_all(fd, "\n", 1, strlen(s)) < 0)
		ret = -EIO;
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	json_object_put(o);
	if (ret < 0)
		fail(err, "cannot write %s/%s: %s", where, name, strerror(-ret));
	return ret;
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * Replace the snapshot at DIR: checked again now, exchanged, and checked
 * once more where it landed (DIR.tmp-): whatever else took its place in
 * the meantime is exchanged back, untouched.
 */
static int writer_replace(struct snap_writer *w, char *err)
{
	struct snap_manifest m;
	char bad[320], tmp[SNAP_ERR_LEN];
	int ret = snap_check_target(w->final, w->overwrite, err);

	if (ret < 0)
		return ret;
	if (renameat2(AT_FDCWD, w->tmp, AT_FDCWD, w->final, RENAME_EXCHANGE) < 0)
		return fail(err, "cannot move %s into place: %s", w->final, strerror(errno)),
		       -errno;
	if (snap_read_manifest(w->tmp, &m, tmp) < 0 ||
	    !only_snapshot_files(w->tmp, &m, bad, sizeof(bad))) {
		if (renameat2(AT_FDCWD, w->tmp, AT_FDCWD, w->final, RENAME_EXCHANGE) < 0)
			return fail(err,
				    "%s changed while the snapshot was written, and cannot be "
				    "put back from %s: %s",
				    w->final, w->tmp, strerror(errno)),
			       (w->tmp[0] = '\0', -EEXIST); /* keep both */
		return fail(err, "%s changed while the snapshot was written: left as it is",
			    w->final),
		       -EEXIST;
	}
	snap_remove_dir(w->tmp); /* the old snapshot */
	return 0;
}

/* Move the finished directory into place: a new name, or (overwrite) exchanged with the old. */
static int writer_publish(struct snap_writer *w, char *err)
{
	char parent[PATH_MAX];
	int ret = 0;

	if (renameat2(AT_FDCWD, w->tmp, AT_FDCWD, w->final, RENAME_NOREPLACE) < 0) {
		if (errno != EEXIST && errno != ENOTEMPTY)
			ret =
			    (fail(err, "cannot move %s into place: %s", w->final, strerror(errno)),
			     -errno);
		else
			ret = writer_replace(w, err);
	}
	if (ret < 0)
		return ret;
	parent_of(w->final, parent, sizeof(parent));
	fsync_path(parent);
	return 0;
}

int snap_writer_commit(struct snap_writer *w, char *err)
{
	int ret = write_manifest_at(w->dirfd, SNAP_MANIFEST, &w->m, w->tmp, err);

	if (ret == 0 && fsync(w->dirfd) < 0) {
		ret = -errno;
		fail(err, "cannot sync %s: %s", w->tmp, strerror(errno));
	}
	if (ret == 0)
		ret = writer_publish(w, err);
	if (ret < 0) {
		snap_writer_abort(w);
		return ret;
	}
	close(w->dirfd);
	w->dirfd = -1;
	return 0;
}

void snap_writer_abort(struct snap_writer *w)
{
	if (w->dirfd >= 0)
		close(w->dirfd);
	w->dirfd = -1;
	if (w->tmp[0])
		snap_remove_dir(w->tmp);
	w->tmp[0] = '\0';
}

int snap_write_manifest_file(const char *dir, const struct snap_manifest *m, char *err)
{
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret;

	if (dirfd < 0)
		return fail(err, "cannot open %s: %s", dir, strerror(errno)), -errno;
	ret = write_manifest_at(dirfd, SNAP_MANIFEST ".new", m, dir, err);
	if (ret < 0) {
		close(dirfd);
		return ret;
	}
	if (renameat(dirfd, SNAP_MANIFEST ".new", dirfd, SNAP_MANIFEST) < 0 || fsync(dirfd) < 0)
		ret = (fail(err, "cannot replace %s/%s: %s", dir, SNAP_MANIFEST, strerror(errno)),
		       -errno);
	close(dirfd);
	return ret;
}

int snap_remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	return rmdir(dir) < 0 ? -errno : 0;
}

uint64_t snap_disk_usage(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	uint64_t total = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
			total += (uint64_t)st.st_blocks * 512;
	closedir(d);
	return total;
}

/* --- reading the manifest --- */

static json_object *get(json_object *o, const char *k, json_type t)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, t))
		return NULL;
	return v;
}

static bool get_u64(json_object *o, const char *k, uint64_t *out)
{
	json_object *v = get(o, k, json_type_int);
	int64_t x;

	if (!v)
		return false;
	x = json_object_get_int64(v);
	if (x < 0)
		return false;
	*out = (uint64_t)x;
	return true;
}

static bool get_str(json_object *o, const char *k, char *out, size_t len)
{
	json_object *v = get(o, k, json_type_string);

	if (!v || (size_t)json_object_get_string_len(v) >= len)
		return false;
	memcpy(out, json_object_get_string(v), (size_t)json_object_get_string_len(v) + 1);
	return true;
}

static bool valid_id(const char *id)
{
	if (strlen(id) != SNAP_ID_LEN)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* A section file name: no path separators, no dot files. */
static bool valid_file(const char *f)
{
	return f[0] && f[0] != '.' && !strchr(f, '/');
}

static int parse_sections(json_object *arr, struct snap_manifest *m, char *err)
{
	size_t n = json_object_array_length(arr);

	if (n > SNAP_MAX_SECTIONS)
		return fail(err, "manifest lists %zu sections (at most %d)", n, SNAP_MAX_SECTIONS),
		       -EBADMSG;
	for (size_t i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(arr, i);
		struct snap_section *sec = &m->sections[i];
		uint64_t crc;

		if (!json_object_is_type(s, json_type_object) ||
		    !get_str(s, "name", sec->name, sizeof(sec->name)) ||
		    !get_str(s, "file", sec->file, sizeof(sec->file)) || !valid_file(sec->file) ||
		    !get_u64(s, "size", &sec->size) || sec->size > SNAP_MAX_SECTION ||
		    !get_u64(s, "crc32", &crc) || crc > UINT32_MAX)
			return fail(err, "manifest: section %zu is malformed", i), -EBADMSG;
		sec->crc = (uint32_t)crc;
	}
	m->nsections = (unsigned int)n;
	return 0;
}

static int parse_memory(json_object *mem, struct snap_manifest *m, char *err)
{
	uint64_t crc;
	char file[32];

	if (!mem || !get_str(mem, "file", file, sizeof(file)) || strcmp(file, SNAP_MEMORY_FILE) ||
	    !get_u64(mem, "size", &m->mem_size) ||
	    !get_u64(mem, "pages_present", &m->mem_pages_present) ||
	    !get_u64(mem, "pages_data", &m->mem_pages_data) || !get_u64(mem, "crc32", &crc) ||
	    crc > UINT32_MAX)
		return fail(err, "manifest: the memory entry is malformed"), -EBADMSG;
	m->mem_crc = (uint32_t)crc;
	if (m->mem_size == 0 || m->mem_size % SNAP_PAGE || m->mem_size > VM_MEM_MAX ||
	    m->mem_pages_data > m->mem_pages_present ||
	    m->mem_pages_present > m->mem_size / SNAP_PAGE)
		return fail(err, "manifest: memory sizes are inconsistent"), -EBADMSG;
	return 0;
}

static int parse_parent(json_object *o, struct snap_manifest *m, char *err)
{
	json_object *p = NULL;

	if (!json_object_object_get_ex(o, "parent", &p))
		return fail(err, "manifest: no parent field"), -EBADMSG;
	if (!p) {
		if (m->type == SNAP_DIFF)
			return fail(err, "manifest: a diff snapshot without a parent"), -EBADMSG;
		return 0;
	}
	if (!json_object_is_type(p, json_type_object) ||
	    !get_str(p, "id", m->parent_id, sizeof(m->parent_id)) || !valid_id(m->parent_id) ||
	    !get_str(p, "path", m->parent_path, sizeof(m->parent_path)))
		return fail(err, "manifest: the parent entry is malformed"), -EBADMSG;
	return 0;
}

static int parse_manifest(json_object *o, struct snap_manifest *m, char *err)
{
	char format[32], type[8];
	uint64_t v, ncpus;

	if (!json_object_is_type(o, json_type_object) ||
	    !get_str(o, "format", format, sizeof(format)) || strcmp(format, SNAP_FORMAT_NAME))
		return fail(err, "not a Banyan snapshot manifest"), -EBADMSG;
	if (!get_u64(o, "version", &v) || v == 0)
		return fail(err, "manifest: no valid format version"), -EBADMSG;
	if (v > SNAP_FORMAT_VERSION)
		return fail(err,
			    "snapshot format version %llu is newer than this Banyan supports "
			    "(%d): upgrade Banyan to restore it",
			    (unsigned long long)v, SNAP_FORMAT_VERSION),
		       -EPROTO;
	m->version = (uint32_t)v;
	if (!get_str(o, "id", m->id, sizeof(m->id)) || !valid_id(m->id) ||
	    !get_str(o, "type", type, sizeof(type)) ||
	    (strcmp(type, "full") && strcmp(type, "diff")) || !get_u64(o, "created", &m->created) ||
	    !get_str(o, "vmm_version", m->vmm_version, sizeof(m->vmm_version)) ||
	    !get_u64(o, "vcpus", &ncpus) || ncpus == 0 || ncpus > VM_MAX_CPUS)
		return fail(err, "manifest: id, type, created, vmm_version or vcpus is malformed"),
		       -EBADMSG;
	m->ncpus = (uint32_t)ncpus;
	m->type = strcmp(type, "diff") == 0 ? SNAP_DIFF : SNAP_FULL;
	if (parse_parent(o, m, err) < 0 ||
	    parse_memory(get(o, "memory", json_type_object), m, err) < 0)
		return -EBADMSG;
	if (!get(o, "sections", json_type_array))
		return fail(err, "manifest: no section list"), -EBADMSG;
	return parse_sections(get(o, "sections", json_type_array), m, err);
}

/*
 * Open a file of a snapshot for reading: never blocking (a FIFO put there
 * must not hold the reader forever) and refused (-EBADMSG, a damaged
 * snapshot) unless a regular file. The fd, or -errno with @err.
 */
static int open_regular(const char *path, struct stat *st, char *err)
{
	int fd = file_open_kind(path, O_RDONLY, 0, FILE_KIND_REG), e;

	if (fd == -FILE_EKIND)
		return fail(err, "%s is %s", path, file_kind_error(FILE_KIND_REG)), -EBADMSG;
	if (fd < 0)
		return fail(err, "cannot open %s: %s", path, strerror(-fd)), fd;
	if (fstat(fd, st) < 0) {
		e = errno;
		close(fd);
		return fail(err, "cannot read %s: %s", path, strerror(e)), -e;
	}
	return fd;
}

static int read_small_file(const char *dir, const char *name, uint64_t max, uint8_t **buf,
			   size_t *len, char *err)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, ret;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open_regular(path, &st, err);
	if (fd < 0)
		return fd;
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return fail(err, "%s is too large (%llu bytes)", path,
			    (unsigned long long)st.st_size),
		       -EBADMSG;
	}
	*len = (size_t)st.st_size;
	*buf = malloc(*len + 1);
	ret = *buf ? read_all(fd, *buf, *len, 0) : -ENOMEM;
	close(fd);
	if (ret < 0) {
		free(*buf);
		*buf = NULL;
		return fail(err, "cannot read %s: %s", path, strerror(-ret)), ret;
	}
	(*buf)[*len] = '\0';
	return 0;
}

int snap_read_manifest(const char *dir, struct snap_manifest *m, char *err)
{
	struct json_tokener *tok;
	json_object *o;
	uint8_t *buf;
	size_t len;
	int ret;

	memset(m, 0, sizeof(*m));
	ret = read_small_file(dir, SNAP_MANIFEST, SNAP_MAX_MANIFEST, &buf, &len, err);
	if (ret < 0)
		return ret == -ENOENT
			   ? (fail(err, "%s is not a snapshot (no %s)", dir, SNAP_MANIFEST),
			      -ENOENT)
			   : ret;
	tok = json_tokener_new_ex(16);
	o = tok ? json_tokener_parse_ex(tok, (const char *)buf, (int)len) : NULL;
	if (!o || json_tokener_get_error(tok) != json_tokener_success)
		ret = (fail(err, "%s/%s is truncated or not JSON", dir, SNAP_MANIFEST), -EBADMSG);
	else
		ret = parse_manifest(o, m, err);
	json_object_put(o);
	if (tok)
		json_tokener_free(tok);
	free(buf);
	return ret;
}

/* --- sections and memory --- */

static const struct snap_section *find_section(const struct snap_manifest *m, const char *name)
{
	for (unsigned int i = 0; i < m->nsections; i++)
		if (strcmp(m->sections[i].name, name) == 0)
			return &m->sections[i];
	return NULL;
}

bool snap_has_section(const struct snap_manifest *m, const char *name)
{
	return find_section(m, name) != NULL;
}

int snap_read_section(const char *dir, const struct snap_manifest *m, const char *name,
		      uint8_t **buf, size_t *len, char *err)
{
	const struct snap_section *s = find_section(m, name);
	int ret;

	*buf = NULL;
	if (!s)
		return fail(err, "%s: no '%s' section", dir, name), -EBADMSG;
	ret = read_small_file(dir, s->file, SNAP_MAX_SECTION, buf, len, err);
	if (ret < 0)
		return ret;
	if (*len != s->size || crc_update((uint32_t)crc32(0, NULL, 0), *buf, *len) != s->crc) {
		free(*buf);
		*buf = NULL;
		return fail(err, "%s/%s is %s", dir, s->file,
			    *len != s->size ? "truncated (size differs from the manifest)"
					    : "corrupt (checksum mismatch)"),
		       -EBADMSG;
	}
	return 0;
}

int snap_open_memory(const char *dir, const struct snap_manifest *m, char *err)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, SNAP_MEMORY_FILE);
	fd = open_regular(path, &st, err);
	if (fd < 0)
		return fd;
	if ((uint64_t)st.st_size != m->mem_size) {
		close(fd);
		return fail(err, "%s is truncated (%llu bytes, the manifest says %llu)", path,
			    (unsigned long long)st.st_size, (unsigned long long)m->mem_size),
		       -EBADMSG;
	}
	return fd;
}

int snap_read_bitmap(const char *dir, const struct snap_manifest *m, uint64_t **bitmap, char *err)
{
	size_t len, want = (m->mem_size / SNAP_PAGE + 63) / 64 * 8;
	uint8_t *buf;
	int ret;

	*bitmap = NULL; /* callers free it whatever happens */
	ret = snap_read_section(dir, m, "memory.map", &buf, &len, err);
	if (ret < 0)
		return ret;
	if (len != want) {
		free(buf);
		return fail(err, "%s: memory.map has the wrong size", dir), -EBADMSG;
	}
	*bitmap = (uint64_t *)(void *)buf; /* little-endian words, as written on x86 */
	return 0;
}

struct mem_check {
	uint32_t crc;
	uint64_t data;
	const uint64_t *bitmap;
	bool stray; /* data outside the bitmap */
};

static void check_chunk(struct mem_check *c, const uint8_t *buf, uint64_t first, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		const uint8_t *p = buf + i * SNAP_PAGE;

		if (page_is_zero(p))
			continue;
		if (c->bitmap && !bit_is_set(c->bitmap, first + i)) {
			c->stray = true;
			continue;
		}
		c->data++;
		c->crc = crc_page(c->crc, first + i, p);
	}
}

/* CRC over the data pages, visiting only the file's data extents (SEEK_DATA). */
static int check_memory(int fd, const struct snap_manifest *m, struct mem_check *c)
{
	uint8_t *buf = malloc(IO_CHUNK);
	off_t pos = 0, end;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (ret == 0 && (uint64_t)pos < m->mem_size) {
		pos = lseek(fd, pos, SEEK_DATA);
		if (pos < 0)
			break; /* ENXIO: no more data */
		end = lseek(fd, pos, SEEK_HOLE);
		pos &= ~(off_t)(SNAP_PAGE - 1);
		while (ret == 0 && pos < end) {
			uint64_t n =
			    (uint64_t)(end - pos) < IO_CHUNK ? (uint64_t)(end - pos) : IO_CHUNK;

			n = (n + SNAP_PAGE - 1) & ~(SNAP_PAGE - 1);
			if ((uint64_t)pos + n > m->mem_size)
				n = m->mem_size - (uint64_t)pos;
			ret = read_all(fd, buf, n, (uint64_t)pos);
			check_chunk(c, buf, (uint64_t)pos / SNAP_PAGE, n / SNAP_PAGE);
			pos += (off_t)n;
		}
	}
	free(buf);
	return ret;
}

int snap_verify(const char *dir, const struct snap_manifest *m, bool memory, char *err)
{
	struct mem_check c = {.crc = (uint32_t)crc32(0, NULL, 0)};
	uint64_t *bitmap = NULL;
	uint8_t *buf;
	size_t len;
	int fd, ret = 0;

	for (unsigned int i = 0; i < m->nsections && ret == 0; i++) {
		ret = snap_read_section(dir, m, m->sections[i].name, &buf, &len, err);
		free(buf);
	}
	if (ret < 0)
		return ret;
	fd = snap_open_memory(dir, m, err);
	if (fd < 0)
		return fd;
	if (m->type == SNAP_DIFF) /* cheap, and a restore needs it whole */
		ret = snap_read_bitmap(dir, m, &bitmap, err);
	c.bitmap = bitmap;
	if (ret == 0 && memory) {
		ret = check_memory(fd, m, &c);
		if (ret < 0)
			fail(err, "%s/memory: %s", dir, strerror(-ret));
		else if (c.crc != m->mem_crc || c.data != m->mem_pages_data || c.stray)
			ret =
			    (fail(err, "%s/memory is corrupt (checksum mismatch)", dir), -EBADMSG);
	}
	free(bitmap);
	close(fd);
	return ret;
}

int snap_apply_diff(const char *dir, const struct snap_manifest *m, const uint64_t *bitmap,
		    uint8_t *base, char *err)
{
	uint64_t npages = m->mem_size / SNAP_PAGE, p = 0;
	int fd = snap_open_memory(dir, m, err), ret = 0;

	if (fd < 0)
		return fd;
	while (p < npages && ret == 0) {
		uint64_t start;

		if (!bit_is_set(bitmap, p)) {
			p++;
			continue;
		}
		start = p;
		while (p < npages && bit_is_set(bitmap, p) && (p - start) * SNAP_PAGE < IO_CHUNK)
			p++;
		/* Holes read back as zero: a page that became zero is a hole. */
		ret = read_all(fd, base + start * SNAP_PAGE, (p - start) * SNAP_PAGE,
			       start * SNAP_PAGE);
	}
	close(fd);
	if (ret < 0)
		fail(err, "cannot read %s/memory: %s", dir, strerror(-ret));
	return ret;
}
