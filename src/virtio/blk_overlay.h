/*
 * A copy-on-write overlay for a disk image: the base image is only read,
 * and every cluster the guest writes goes to a sparse overlay file of the
 * same size. A cluster is read from the overlay once it has been written
 * there, from the base until then.
 *
 * Which clusters the overlay holds is the overlay file's own allocation map
 * (SEEK_DATA/SEEK_HOLE): every write fills whole clusters (a partial one is
 * first copied up from the base), so a cluster is allocated exactly when it
 * was written. The overlay therefore needs no header or metadata, survives
 * a crash of the VMM as a plain sparse file, and reopens as it was left.
 * Its file system must report holes (ext4, xfs, btrfs and tmpfs do); a new
 * overlay is checked.
 *
 * Many VMs can read one base, each through its own overlay: clones of a
 * snapshot get one each (docs/snapshots.md). The base is locked shared, the
 * overlay exclusively.
 *
 * Reads, writes and flushes may run concurrently (the block device's I/O
 * threads). Concurrent requests on overlapping ranges complete in no
 * particular order, as on any disk.
 */
#ifndef BANYAN_VIRTIO_BLK_OVERLAY_H
#define BANYAN_VIRTIO_BLK_OVERLAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct blk_overlay;

/*
 * blk_overlay_open - open the overlay at @path over @base_fd (the base,
 * @size bytes, opened read-only by the caller and kept open while the
 * overlay is). A missing or empty file becomes a new, empty overlay; an
 * existing one must be @size bytes. 0 or -errno with a message in @err.
 */
int blk_overlay_open(struct blk_overlay **out, int base_fd, uint64_t size, const char *path,
		     char *err, size_t errlen) __attribute__((warn_unused_result));

/* blk_overlay_preadv - read @iov at @offset; the byte count or -errno. */
int64_t blk_overlay_preadv(struct blk_overlay *o, const struct iovec *iov, unsigned int iovcnt,
			   uint64_t offset);

/* blk_overlay_pwritev - write @iov at @offset (into the overlay); the byte count or -errno. */
int64_t blk_overlay_pwritev(struct blk_overlay *o, const struct iovec *iov, unsigned int iovcnt,
			    uint64_t offset);

/* blk_overlay_write_zeroes - make [@offset, @offset + @len) read as zeroes. 0 or -errno. */
int blk_overlay_write_zeroes(struct blk_overlay *o, uint64_t offset, uint64_t len);

/* blk_overlay_sync - make the overlay's writes durable (fdatasync). 0 or -errno. */
int blk_overlay_sync(struct blk_overlay *o);

/* blk_overlay_clusters - how many clusters the overlay holds, and their size in bytes. */
uint64_t blk_overlay_clusters(const struct blk_overlay *o, uint32_t *cluster_size);

/* blk_overlay_close - close the overlay file (not the base). */
void blk_overlay_close(struct blk_overlay *o);

/*
 * blk_overlay_copy - make @to a copy of the overlay @from (a clone starts
 * from its snapshot's overlay): only the clusters @from holds are copied, so
 * @to stays sparse the same way, and durable (fdatasync). An existing @to
 * is replaced, unless a VM has it open (-EBUSY). 0 or -errno with a
 * message in @err.
 */
int blk_overlay_copy(const char *from, const char *to, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
