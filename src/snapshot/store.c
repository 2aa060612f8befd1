/*
 * A snapshot store: a directory whose subdirectories are snapshots. The
 * tree comes from the manifests (each names its parent by id); deleting a
 * snapshot that diffs depend on folds it into them first, one atomic
 * rewrite per child, so a crash at any point leaves every snapshot
 * loadable.
 */
#include "snapshot/store.h"
#include "util/errmsg.h"

#include "virtio/blk_overlay.h"
#include "vmm/vm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Describe the error in @err; evaluates to 0. */
#define fail(err, ...) errmsg_set(err, SNAP_ERR_LEN, 0, __VA_ARGS__)

static int by_time(const void *a, const void *b)
{
	const struct store_entry *x = a, *y = b;

	if (x->m.created != y->m.created)
		return x->m.created < y->m.created ? -1 : 1;
	return strcmp(x->name, y->name);
}

int store_scan(const char *store, struct store_entry **out, unsigned int *n, char *err)
{
	DIR *d = opendir(store);
	struct store_entry *v = NULL;
	struct dirent *e;
	unsigned int cap = 0;
	char tmp[SNAP_ERR_LEN];

	*n = 0;
	*out = NULL;
	if (!d)
		return fail(err, "cannot open the store %s: %s", store, strerror(errno)), -errno;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp-"))
			continue; /* unfinished writes are never snapshots */
		if (*n == cap) {
			struct store_entry *nv =
			    realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

			if (!nv) {
				free(v);
				closedir(d);
				return fail(err, "out of memory"), -ENOMEM;
			}
			v = nv;
		}
		snprintf(v[*n].name, sizeof(v[*n].name), "%s", e->d_name);
		snprintf(v[*n].path, sizeof(v[*n].path), "%s/%s", store, e->d_name);
		if (snap_read_manifest(v[*n].path, &v[*n].m, tmp) < 0)
			continue;
		v[*n].disk = snap_disk_usage(v[*n].path);
		(*n)++;
	}
	closedir(d);
	if (*n) /* an empty store has no array: qsort must not see NULL */
		qsort(v, *n, sizeof(*v), by_time);
	*out = v;
	return 0;
}

int store_find(struct store_entry *v, unsigned int n, const char *name)
{
	for (unsigned int i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0 || strcmp(v[i].m.id, name) == 0)
			return (int)i;
	return -1;
}

int store_parent(struct store_entry *v, unsigned int n, unsigned int i)
{
	if (!v[i].m.parent_id[0])
		return -1;
	for (unsigned int j = 0; j < n; j++)
		if (strcmp(v[j].m.id, v[i].m.parent_id) == 0)
			return (int)j;
	return -1;
}

/* --- folding a snapshot into a diff child --- */

/* The parent's memory, as a private mapping the child's pages then go on top of. */
static uint8_t *map_parent_memory(const struct store_entry *p, char *err)
{
	uint8_t *base;
	uint64_t *bitmap = NULL;
	int fd;

	if (p->m.type == SNAP_FULL) {
		fd = snap_open_memory(p->path, &p->m, err);
		if (fd < 0)
			return NULL;
		base = mmap(NULL, p->m.mem_size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_NORESERVE, fd, 0);
		close(fd);
		if (base == MAP_FAILED)
			return fail(err, "cannot map %s/%s: %s", p->path, SNAP_MEMORY_FILE,
				    strerror(errno)),
			       NULL;
		return base;
	}
	base = mmap(NULL, p->m.mem_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return fail(err, "out of memory"), NULL;
	if (snap_read_bitmap(p->path, &p->m, &bitmap, err) < 0 ||
	    snap_apply_diff(p->path, &p->m, bitmap, base, err) < 0) {
		munmap(base, p->m.mem_size);
		base = NULL;
	}
	free(bitmap);
	return base;
}

static int copy_sections(struct snap_writer *w, const struct store_entry *c, char *err)
{
	int ret = 0;

	for (unsigned int i = 0; i < c->m.nsections && ret == 0; i++) {
		uint8_t *buf;
		size_t len;

		if (strcmp(c->m.sections[i].name, "memory.map") == 0)
			continue; /* rebuilt */
		ret = snap_read_section(c->path, &c->m, c->m.sections[i].name, &buf, &len, err);
		if (ret == 0)
			ret = snap_writer_section(w, c->m.sections[i].name, buf, len, err);
		free(buf);
	}
	return ret;
}

/* The copies of disk overlays @c holds: they belong to its state, not its parent's. */
static int copy_disk_overlays(struct snap_writer *w, const struct store_entry *c, char *err)
{
	char from[PATH_MAX + 32], to[PATH_MAX + 32];

	for (char letter = 'a'; letter < 'a' + VM_MAX_DISKS; letter++) {
		snprintf(from, sizeof(from), "%s/" SNAP_DISK_OVERLAY, c->path, letter);
		snprintf(to, sizeof(to), "%s/" SNAP_DISK_OVERLAY, w->tmp, letter);
		if (access(from, F_OK) == 0 && blk_overlay_copy(from, to, err, SNAP_ERR_LEN) < 0)
			return -EIO;
	}
	return 0;
}

/* Rewrite diff @c (a child of @p) so that it no longer needs @p. */
static int fold_into(const struct store_entry *p, const struct store_entry *c, char *err)
{
	uint64_t *pmap = NULL, *cmap = NULL, words = (c->m.mem_size / SNAP_PAGE + 63) / 64;
	struct snap_writer w;
	uint8_t *base = map_parent_memory(p, err);
	int ret;

	if (!base)
		return -EIO;
	ret = snap_read_bitmap(c->path, &c->m, &cmap, err);
	if (ret == 0)
		ret = snap_apply_diff(c->path, &c->m, cmap, base, err);
	if (ret == 0 && p->m.type == SNAP_DIFF &&
	    (ret = snap_read_bitmap(p->path, &p->m, &pmap, err)) == 0)
		for (uint64_t i = 0; i < words; i++)
			pmap[i] |= cmap[i];
	if (ret == 0)
		ret = snap_writer_open(&w, c->path, true, err);
	if (ret == 0) {
		ret = copy_sections(&w, c, err);
		if (ret == 0)
			ret = copy_disk_overlays(&w, c, err);
		if (ret == 0)
			ret = snap_writer_memory(&w, base, c->m.mem_size, pmap, NULL, err);
		/* Same id and time: its own children still find it. */
		memcpy(w.m.id, c->m.id, sizeof(w.m.id));
		w.m.created = c->m.created;
		w.m.ncpus = c->m.ncpus;
		w.m.type = p->m.type;
		memcpy(w.m.parent_id, p->m.parent_id, sizeof(w.m.parent_id));
		memcpy(w.m.parent_path, p->m.parent_path, sizeof(w.m.parent_path));
		if (ret == 0)
			ret = snap_writer_commit(&w, err);
		else
			snap_writer_abort(&w);
	}
	free(pmap);
	free(cmap);
	munmap(base, c->m.mem_size);
	return ret;
}

/* A full child only names @p as where it came from: point it at @p's parent. */
static int relink(const struct store_entry *p, struct store_entry *c, char *err)
{
	memcpy(c->m.parent_id, p->m.parent_id, sizeof(c->m.parent_id));
	memcpy(c->m.parent_path, p->m.parent_path, sizeof(c->m.parent_path));
	return snap_write_manifest_file(c->path, &c->m, err);
}

int store_check_dependents(struct store_entry *v, unsigned int n, unsigned int i, const char *what,
			   char *err)
{
	unsigned int diffs = 0;
	int first = -1;

	for (unsigned int j = 0; j < n; j++)
		if (store_parent(v, n, j) == (int)i && v[j].m.type == SNAP_DIFF) {
			first = first < 0 ? (int)j : first;
			diffs++;
		}
	if (!diffs)
		return 0;
	return fail(err, "%s has %u diff snapshot%s depending on it (%s%s): %s", v[i].path, diffs,
		    diffs > 1 ? "s" : "", v[first].name, diffs > 1 ? ", ..." : "", what),
	       -EBUSY;
}

int store_check_replace(const char *dir, char *err)
{
	char path[PATH_MAX], store[PATH_MAX];
	const char *slash, *name;
	struct store_entry *v = NULL;
	unsigned int n = 0;
	size_t len = strlen(dir);
	int i, ret;

	while (len > 1 && dir[len - 1] == '/')
		len--;
	snprintf(path, sizeof(path), "%.*s", (int)len, dir);
	slash = strrchr(path, '/');
	name = slash ? slash + 1 : path;
	if (slash)
		snprintf(store, sizeof(store), "%.*s", slash == path ? 1 : (int)(slash - path),
			 path);
	else
		snprintf(store, sizeof(store), ".");
	if (store_scan(store, &v, &n, err) < 0)
		return 0; /* no readable store: nothing there depends on @dir */
	i = store_find(v, n, name);
	ret = i < 0 || strcmp(v[i].name, name)
		  ? 0
		  : store_check_dependents(v, n, (unsigned int)i,
					   "replacing it would orphan "
					   "them; delete them first or "
					   "choose another path",
					   err);
	free(v);
	return ret;
}

int store_delete(struct store_entry *v, unsigned int n, unsigned int i, bool merge, char *err)
{
	/* What is removed is the snapshot, never a file someone put next to it. */
	int ret = snap_check_target(v[i].path, true, err);

	if (ret < 0)
		return ret;
	if (!merge && (ret = store_check_dependents(v, n, i,
						    "delete with --merge to fold it into them, or "
						    "delete them first",
						    err)) < 0)
		return ret;
	for (unsigned int j = 0; j < n && ret == 0; j++) {
		if (store_parent(v, n, j) != (int)i)
			continue;
		ret = v[j].m.type == SNAP_DIFF ? fold_into(&v[i], &v[j], err)
					       : relink(&v[i], &v[j], err);
	}
	if (ret == 0 && (ret = snap_remove_dir(v[i].path)) < 0)
		fail(err, "cannot remove %s: %s", v[i].path, strerror(-ret));
	return ret;
}
