/*
 * The on-disk snapshot format (docs/snapshot-format.md): a directory with
 * a JSON manifest, one file per state section and a sparse memory file.
 *
 * Writing is atomic: everything goes into DIR.tmp-PID-XXXXXX next to DIR,
 * each file and the directory are fsynced, and only then is the directory
 * renamed into place (exchanged with an older snapshot at DIR when
 * overwriting, which is then removed). Nothing but an absent DIR or, when
 * asked, an existing snapshot is ever replaced. A crash or a full disk
 * leaves the previous DIR untouched and at most a .tmp- directory, which no
 * reader loads and the next writer in that directory removes.
 *
 * Reading checks everything before anything uses it: the manifest's format
 * and version, each section's size and CRC-32, the memory file's size and,
 * when asked, its CRC-32. Errors are returned with a one-line reason in @err.
 */
#ifndef BANYAN_SNAPSHOT_FORMAT_H
#define BANYAN_SNAPSHOT_FORMAT_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_FORMAT_NAME    "banyan-snapshot"
#define SNAP_FORMAT_VERSION 1
/*
 * The config section's version byte (docs/snapshot-format.md): 1 the
 * machine in binary fields, 2 added disk overlays, 3 the machine as its
 * JSON document (GET /vm/config). 1 and 2 are still read.
 */
#define SNAP_CONFIG_VERSION 3
#define SNAP_MANIFEST	    "manifest.json"
#define SNAP_MEMORY_FILE    "memory"
/* The copy of disk vdX's overlay, with the VM's state (printf: the letter). */
#define SNAP_DISK_OVERLAY "disk-vd%c.overlay"
#define SNAP_MAX_SECTIONS 16
#define SNAP_MAX_SECTION  (64U << 20) /* largest state section read back */
#define SNAP_MAX_MANIFEST (256U << 10)
#define SNAP_MAX_CHAIN	  64 /* diff snapshots on top of one full one */
#define SNAP_PAGE	  4096ULL
#define SNAP_ID_LEN	  32 /* hex digits of a 128-bit random id */
#define SNAP_ERR_LEN	  512

enum snap_type {
	SNAP_FULL, /* memory holds every non-zero page */
	SNAP_DIFF, /* memory holds the pages written since the parent (memory.map says which) */
};

struct snap_section {
	char name[32]; /* "config", "devices", "vcpus", "vm", "memory.map" */
	char file[48]; /* file name inside the directory */
	uint64_t size;
	uint32_t crc; /* CRC-32 (zlib) of the whole file */
};

struct snap_manifest {
	uint32_t version;
	char id[SNAP_ID_LEN + 1];
	enum snap_type type;
	char parent_id[SNAP_ID_LEN + 1]; /* "" for a root */
	char parent_path[PATH_MAX];	 /* absolute path of the parent when written */
	uint64_t created;		 /* Unix time, seconds */
	char vmm_version[32];
	uint32_t ncpus;
	uint64_t mem_size;	    /* bytes; the memory file has exactly this size */
	uint64_t mem_pages_present; /* pages this snapshot defines (all, for a full one) */
	uint64_t mem_pages_data;    /* ... of which non-zero, stored as data */
	uint32_t mem_crc;	    /* CRC-32 over (page index, page) of the data pages */
	struct snap_section sections[SNAP_MAX_SECTIONS];
	unsigned int nsections;
};

struct snap_writer {
	char final[PATH_MAX]; /* DIR */
	char tmp[PATH_MAX];   /* DIR.tmp-PID-XXXXXX, flock'ed while the writer lives */
	int dirfd;
	bool overwrite; /* an existing snapshot at DIR may be replaced */
	struct snap_manifest m;
	/* NULL, or where snap_writer_memory counts the bytes of memory done (others poll it) */
	_Atomic uint64_t *progress;
};

/*
 * snap_check_target - may a snapshot be written at @dir? Yes when nothing
 * is there; with @overwrite also when a snapshot is there and its
 * directory holds nothing but the snapshot's own regular files. Anything
 * else (a file, a symlink, another directory, a snapshot without
 * @overwrite) is refused with -EEXIST and a reason in @err. Never changes
 * anything.
 */
int snap_check_target(const char *dir, bool overwrite, char *err)
    __attribute__((warn_unused_result));

/*
 * snap_clean_stale - remove the temporaries "NAME.tmp-PID-XXXXXX" in
 * directory @parent whose writer is gone: PID no longer exists, nobody
 * holds the directory's flock, and it holds only regular files. Anything
 * else is left alone (older "NAME.tmp-XXXXXX" ones included).
 */
void snap_clean_stale(const char *parent);

/*
 * snap_writer_open - check @dir with snap_check_target(@overwrite), clean
 * stale temporaries next to it, and create DIR.tmp-PID-XXXXXX; the
 * manifest starts with a fresh id and the creation time. 0 or -errno
 * with @err (nothing created).
 */
int snap_writer_open(struct snap_writer *w, const char *dir, bool overwrite, char *err)
    __attribute__((warn_unused_result));

/* snap_writer_section - write section @name (@len bytes) to its own file, fsynced. */
int snap_writer_section(struct snap_writer *w, const char *name, const void *buf, size_t len,
			char *err) __attribute__((warn_unused_result));

struct mem_origin;

/*
 * snap_writer_memory - write guest memory (@size bytes at @base) as the
 * sparse memory file: only pages @bitmap marks (all with NULL) are
 * defined, zero pages stay holes. @g (else NULL) knows pages that are
 * zero without reading them (mem_origin.h): they are not read, so a page
 * never touched is not faulted in (on tmpfs, in its file). For a diff
 * (@bitmap set) the bitmap becomes the "memory.map" section.
 */
int snap_writer_memory(struct snap_writer *w, const uint8_t *base, uint64_t size,
		       const uint64_t *bitmap, struct mem_origin *g, char *err)
    __attribute__((warn_unused_result));

/*
 * snap_writer_commit - write the manifest, fsync, and move the directory
 * into place atomically: a new name, or with @w->overwrite exchanged with
 * the snapshot at DIR (checked again first, and exchanged back if anything
 * else took its place). On failure whatever was at DIR remains as it was.
 * Always releases @w.
 */
int snap_writer_commit(struct snap_writer *w, char *err) __attribute__((warn_unused_result));

/* snap_writer_abort - remove the temporary directory; releases @w. */
void snap_writer_abort(struct snap_writer *w);

/*
 * snap_read_manifest - parse and check DIR's manifest: format name,
 * version (newer ones refused), field types and ranges, section list.
 * 0, -ENOENT (no snapshot there), -EPROTO (newer version) or -EBADMSG.
 */
int snap_read_manifest(const char *dir, struct snap_manifest *m, char *err)
    __attribute__((warn_unused_result));

/*
 * snap_read_section - read section @name into a malloc'ed buffer after
 * checking its size and CRC. 0 or -errno (-EBADMSG: corrupt/truncated).
 */
int snap_read_section(const char *dir, const struct snap_manifest *m, const char *name,
		      uint8_t **buf, size_t *len, char *err) __attribute__((warn_unused_result));

/* snap_has_section - @m lists section @name. */
bool snap_has_section(const struct snap_manifest *m, const char *name);

/*
 * snap_verify - every section's CRC, the memory file's size, a diff's
 * memory.map size, and with @memory the memory's CRC too (reads every
 * data page). Files that are not regular files are refused (never
 * opened blocking). 0 or -EBADMSG with @err.
 */
int snap_verify(const char *dir, const struct snap_manifest *m, bool memory, char *err)
    __attribute__((warn_unused_result));

/*
 * snap_read_bitmap - a diff's memory.map as one bit per page
 * (mem_size / 4096 bits, malloc'ed). 0 or -errno with @err; *@bitmap is
 * NULL on failure, so callers may always free it.
 */
int snap_read_bitmap(const char *dir, const struct snap_manifest *m, uint64_t **bitmap, char *err)
    __attribute__((warn_unused_result));

/*
 * snap_open_memory - open DIR's memory file for reading: a regular file
 * (never opened blocking) of exactly @m->mem_size bytes. The fd, or
 * -errno with @err.
 */
int snap_open_memory(const char *dir, const struct snap_manifest *m, char *err)
    __attribute__((warn_unused_result));

/*
 * snap_apply_diff - copy the pages a diff defines from its memory file
 * into @base (@m->mem_size bytes), on top of its parent's. 0 or -errno.
 */
int snap_apply_diff(const char *dir, const struct snap_manifest *m, const uint64_t *bitmap,
		    uint8_t *base, char *err) __attribute__((warn_unused_result));

/* snap_remove_dir - remove a snapshot (or temporary) directory and its files. */
int snap_remove_dir(const char *dir);

/* snap_disk_usage - bytes the directory's files occupy on disk (holes excluded). */
uint64_t snap_disk_usage(const char *dir);

/* snap_write_manifest_file - (re)write DIR's manifest in place, atomically (tmp + rename). */
int snap_write_manifest_file(const char *dir, const struct snap_manifest *m, char *err)
    __attribute__((warn_unused_result));

#endif
