/* fsutil: the durable-file primitives every "nothing lost" promise is built from. */
#ifndef ZOLDER_FSUTIL_H
#define ZOLDER_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes all of data, retrying on EINTR and short writes. 0 or -1 (errno set). */
int fs_write_all(int fd, const void *data, size_t len);
/* fsync of the directory that holds (or will hold) a name: makes a rename or unlink durable. */
int fs_fsync_dir(const char *dir);
/* mkdir -p with mode for each created component. */
int fs_mkdir_p(const char *path, mode_t mode);
/*
 * Reads a whole file up to max bytes into a NUL-terminated allocation.
 * 0 ok; -1 with errno (EFBIG when over max).
 */
int fs_read_file(const char *path, size_t max, char **data_r, size_t *len_r);
/* Joins base and rel unless rel is absolute; result is allocated. */
char *fs_path_resolve(const char *base_dir, const char *rel);
/* The directory part of path, allocated ("." when there is none). */
char *fs_dirname(const char *path);

#endif
