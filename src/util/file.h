/*
 * Opening files named by users (options, config files, API bodies) without
 * ever blocking on them, and reading whole files with a size cap.
 *
 * A path may name a FIFO or a device where a file is expected: opening a
 * FIFO for reading or writing waits for the other end (forever, if nobody
 * comes), opening a device can have side effects. So the type is checked
 * with stat() before any open, the open itself is non-blocking, and the type
 * is checked again on the descriptor (the path may have changed in between).
 */
#ifndef BANYAN_UTIL_FILE_H
#define BANYAN_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The kinds of file an opener accepts (a mask). */
#define FILE_KIND_REG  (1u << 0) /* a regular file */
#define FILE_KIND_BLK  (1u << 1) /* a block device (disks) */
#define FILE_KIND_FIFO (1u << 2) /* a FIFO (log and metrics sinks only) */

/* The error of a path whose kind is not accepted ("Wrong medium type"). */
#define FILE_EKIND EMEDIUMTYPE

/*
 * file_kind_error - the reason to show for FILE_EKIND: "not a regular file",
 * "not a regular file or block device", ...
 */
const char *file_kind_error(unsigned int kinds);

/*
 * file_check_kind - stat @path and refuse (-FILE_EKIND) a file that is not
 * one of @kinds. Never opens it, so never blocks. 0 or -errno.
 */
int file_check_kind(const char *path, unsigned int kinds) __attribute__((warn_unused_result));

/*
 * file_open_kind - open @path with @flags (and @mode with O_CREAT) when it
 * is one of @kinds; O_CLOEXEC and O_NOCTTY are added. The open is
 * non-blocking; O_NONBLOCK is cleared afterwards unless @flags has it.
 * With O_CREAT a missing path is created (as a regular file). Returns the
 * descriptor or -errno (-FILE_EKIND for another kind of file); never logs.
 */
int file_open_kind(const char *path, int flags, mode_t mode, unsigned int kinds)
    __attribute__((warn_unused_result));

/*
 * file_open_sink - open @path for appending lines (a log, metrics): a
 * regular file (created with @mode when missing) or a FIFO. A FIFO is
 * opened read-write and non-blocking, as log collectors expect: the open
 * never waits for a reader and a write to a full FIFO fails with EAGAIN
 * instead of blocking (the caller drops the line). Regular files are
 * opened non-blocking too (no effect on them). Returns the descriptor or
 * -errno (-FILE_EKIND for devices, directories, sockets).
 */
int file_open_sink(const char *path, mode_t mode) __attribute__((warn_unused_result));

/*
 * file_read_all - read the regular file at @path into a new buffer (*@buf,
 * freed by the caller) of *@len bytes. Refuses files larger than @max
 * (-EFBIG), directories, FIFOs and other non-regular files (-FILE_EKIND).
 * Returns 0 or -errno; never logs.
 */
int file_read_all(const char *path, size_t max, uint8_t **buf, size_t *len)
    __attribute__((warn_unused_result));

/*
 * file_size - size of the regular file at @path in *@size; 0 or -errno
 * (-FILE_EKIND when it is not a regular file).
 */
int file_size(const char *path, uint64_t *size) __attribute__((warn_unused_result));

/* file_read_into - read exactly @len bytes of @path into @dst; 0 or -errno. */
int file_read_into(const char *path, void *dst, size_t len) __attribute__((warn_unused_result));

#endif
