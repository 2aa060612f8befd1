/* Reading whole files with a size cap. */
#ifndef BANYAN_UTIL_FILE_H
#define BANYAN_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>

/*
 * file_read_all - read the regular file at @path into a new buffer (*@buf,
 * freed by the caller) of *@len bytes. Refuses files larger than @max
 * (-EFBIG), directories and other non-regular files (-EINVAL).
 * Returns 0 or -errno; never logs.
 */
int file_read_all(const char *path, size_t max, uint8_t **buf, size_t *len)
    __attribute__((warn_unused_result));

/*
 * file_size - size of the regular file at @path in *@size; 0 or -errno
 * (-EINVAL when it is not a regular file).
 */
int file_size(const char *path, uint64_t *size) __attribute__((warn_unused_result));

/* file_read_into - read exactly @len bytes of @path into @dst; 0 or -errno. */
int file_read_into(const char *path, void *dst, size_t len) __attribute__((warn_unused_result));

#endif
