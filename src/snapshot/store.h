/*
 * A snapshot store: a directory of snapshot directories (banyan snapshot
 * list|tree|show|delete). Relations come from the manifests' parent ids.
 */
#ifndef BANYAN_SNAPSHOT_STORE_H
#define BANYAN_SNAPSHOT_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "snapshot/format.h"

struct store_entry {
	char name[256]; /* directory name inside the store */
	char path[PATH_MAX];
	struct snap_manifest m;
	uint64_t disk; /* bytes on disk */
};

/*
 * store_scan - every snapshot in @store (directories with a readable
 * manifest; unfinished .tmp- ones skipped), oldest first, into a malloc'ed
 * array. 0 or -errno with @err.
 */
int store_scan(const char *store, struct store_entry **out, unsigned int *n, char *err)
    __attribute__((warn_unused_result));

/* store_find - index of the entry named @name (directory name or id), or -1. */
int store_find(struct store_entry *v, unsigned int n, const char *name);

/* store_parent - index of entry @i's parent in the store, or -1. */
int store_parent(struct store_entry *v, unsigned int n, unsigned int i);

/*
 * store_check_dependents - the one rule for removing or replacing entry
 * @i: refused (-EBUSY, @err naming the diffs and then @what) while diff
 * snapshots in the store depend on it. 0 when none does.
 */
int store_check_dependents(struct store_entry *v, unsigned int n, unsigned int i, const char *what,
			   char *err) __attribute__((warn_unused_result));

/*
 * store_check_replace - may the snapshot at @dir be replaced by a new one?
 * The store is @dir's directory; store_check_dependents decides. 0 also
 * when nothing (or no snapshot) is at @dir.
 */
int store_check_replace(const char *dir, char *err) __attribute__((warn_unused_result));

/*
 * store_delete - delete entry @i. Refused (-EEXIST) when its directory
 * holds anything but the snapshot's own regular files, and (-EBUSY,
 * store_check_dependents) while diff snapshots depend on it, unless
 * @merge: then each is first rewritten atomically to hold @i's pages too
 * (and @i's parent becomes its parent). Full children are relinked to
 * @i's parent. 0 or -errno with @err.
 */
int store_delete(struct store_entry *v, unsigned int n, unsigned int i, bool merge, char *err)
    __attribute__((warn_unused_result));

#endif
