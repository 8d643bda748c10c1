/* journal: the append-only journal beside a mail store index (see journal.h). */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "mailstore.h"
#include "xalloc.h"

static void (*journal_step_hook)(const char *step);
static unsigned long journal_max_test;

void mailstore_test_hooks(void (*step)(const char *step), unsigned long journal_max)
{
    journal_step_hook = step;
    journal_max_test = journal_max;
}

void mailstore_step(const char *step)
{
    if (journal_step_hook)
        journal_step_hook(step);
}

unsigned long long index_journal_bound(unsigned long long index_size)
{
    if (journal_max_test)
        return journal_max_test;
    return index_size / 4 > MAILSTORE_JOURNAL_MIN ? index_size / 4 : MAILSTORE_JOURNAL_MIN;
}

static void journal_stamp_of(const struct stat *st, struct mailstore_stamp *s)
{
    s->ino = (unsigned long long)st->st_ino;
    s->size = (unsigned long long)st->st_size;
    s->mtime_ns = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* Does the header line (NUL-terminated, no newline) bind the journal to this index? */
static bool journal_header_ok(const char *line, const char *magic, uint32_t validity,
                              const struct mailstore_stamp *index)
{
    size_t mlen = strlen(magic);
    unsigned v = 0;
    unsigned long long ino = 0;
    long long mtime = 0;
    char end;
    return strncmp(line, magic, mlen) == 0 && line[mlen] == ' ' &&
           sscanf(line + mlen, " %u %llu %lld%c", &v, &ino, &mtime, &end) == 3 && v == validity &&
           ino == index->ino && mtime == index->mtime_ns;
}

int index_journal_open(struct index_journal *j, const char *path, const char *magic, uint32_t validity,
                       const char *index_path)
{
    memset(j, 0, sizeof *j);
    j->fd = -1;
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    struct stat st, ist;
    if (fd < 0 || fstat(fd, &st) < 0 || stat(index_path, &ist) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    mailstore_step("journal-open");
    j->magic = magic;
    j->validity = validity;
    journal_stamp_of(&ist, &j->index);
    off_t size = st.st_size;
    bool fresh = size == 0;
    if (size > 0) {
        /* the journal must belong to this index, and end with a whole line */
        char head[160];
        ssize_t got = pread(fd, head, sizeof head - 1, 0);
        head[got > 0 ? got : 0] = '\0';
        char *nl = strchr(head, '\n');
        if (nl)
            *nl = '\0';
        if (!nl || !journal_header_ok(head, magic, validity, &j->index)) {
            fresh = true; /* another index's: its changes are in the index already */
        } else {
            char last = '\n';
            if (pread(fd, &last, 1, size - 1) != 1)
                last = 0;
            if (last != '\n') {
                /* a torn record: cut back to the last whole line */
                off_t cut = size;
                char tail[512];
                while (cut > 0) {
                    off_t from = cut > (off_t)sizeof tail ? cut - (off_t)sizeof tail : 0;
                    ssize_t k = pread(fd, tail, (size_t)(cut - from), from);
                    if (k <= 0)
                        break;
                    char *p = memrchr(tail, '\n', (size_t)k);
                    if (p) {
                        cut = from + (p - tail) + 1;
                        break;
                    }
                    cut = from;
                }
                fresh = cut == 0;
                if (!fresh && ftruncate(fd, cut) < 0) {
                    close(fd);
                    return -1;
                }
                size = cut;
            }
        }
        if (fresh) {
            if (ftruncate(fd, 0) < 0) {
                close(fd);
                return -1;
            }
            size = 0;
        }
    }
    j->fd = fd;
    j->size = size;
    j->fresh = fresh;
    return 0;
}

int index_journal_commit(struct index_journal *j, const char *path, const char *index_dir, const char *records,
                         size_t len)
{
    int rc = 0;
    if (j->fresh) {
        char head[160];
        int hl = snprintf(head, sizeof head, "%s %u %llu %lld\n", j->magic, j->validity, j->index.ino,
                          j->index.mtime_ns);
        rc = hl > 0 && (size_t)hl < sizeof head ? fs_write_all(j->fd, head, (size_t)hl) : -1;
    }
    if (rc == 0)
        rc = fs_write_all(j->fd, records, len);
    mailstore_step("journal-written");
    rc = rc == 0 && fsync(j->fd) == 0 && (!j->fresh || fs_fsync_dir(index_dir) == 0) ? 0 : -1;
    if (rc < 0 && (ftruncate(j->fd, j->size) < 0 || fsync(j->fd) < 0))
        log_warn("mailstore: cannot cut %s back to %lld", path, (long long)j->size);
    close(j->fd);
    j->fd = -1;
    if (rc == 0)
        mailstore_step("journal-synced");
    return rc;
}

void index_journal_abandon(struct index_journal *j)
{
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
}

int index_journal_read(const char *path, const char *magic, uint32_t validity, const struct mailstore_stamp *index,
                       size_t max, char **data_r, char **body_r, size_t *body_len_r)
{
    char *data = NULL;
    size_t len = 0;
    *data_r = NULL;
    *body_r = NULL;
    *body_len_r = 0;
    if (fs_read_file(path, max, &data, &len) < 0)
        return errno == ENOENT ? 0 : -1;
    *data_r = data;
    char *nl = memchr(data, '\n', len);
    if (!nl)
        return 0; /* torn before its first line was whole: it held no acknowledged change */
    *nl = '\0';
    if (!journal_header_ok(data, magic, validity, index))
        return 0; /* another index's (see journal.h): folded already */
    char *body = nl + 1;
    char *last = memrchr(body, '\n', (size_t)(data + len - body));
    size_t blen = last ? (size_t)(last + 1 - body) : 0; /* a torn last line: never acknowledged */
    body[blen] = '\0';
    *body_r = body;
    *body_len_r = blen;
    return 0;
}
