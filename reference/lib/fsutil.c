/* fsutil: durable-file primitives (see fsutil.h). */
#define _POSIX_C_SOURCE 200809L
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

int fs_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fs_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int fs_mkdir_p(const char *path, mode_t mode)
{
    /* The common case, on every delivery: the folder is there already; one syscall. */
    if (mkdir(path, mode) == 0 || errno == EEXIST)
        return 0;
    if (errno != ENOENT)
        return -1;
    char *copy = xstrdup(path);
    for (char *p = copy + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(copy, mode) < 0 && errno != EEXIST) {
                free(copy);
                return -1;
            }
            *p = saved;
            if (!saved)
                break;
        }
    }
    free(copy);
    return 0;
}

int fs_read_file(const char *path, size_t max, char **data_r, size_t *len_r)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t cap = 4096, len = 0;
    char *data = xmalloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= max) {
                free(data);
                close(fd);
                errno = EFBIG;
                return -1;
            }
            cap = cap * 2 > max ? max : cap * 2;
            data = xrealloc(data, cap + 1);
        }
        ssize_t n = read(fd, data + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;
            free(data);
            close(fd);
            errno = saved;
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            free(data);
            close(fd);
            errno = EFBIG;
            return -1;
        }
    }
    close(fd);
    data[len] = '\0';
    *data_r = data;
    *len_r = len;
    return 0;
}

char *fs_path_resolve(const char *base_dir, const char *rel)
{
    if (rel[0] == '/' || !base_dir || !base_dir[0])
        return xstrdup(rel);
    size_t n = strlen(base_dir) + strlen(rel) + 2;
    char *out = xmalloc(n);
    snprintf(out, n, "%s/%s", base_dir, rel);
    return out;
}

char *fs_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}
