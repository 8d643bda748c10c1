/* filter: the content filter (see filter.h and docs/filter.md). */
#include "filter.h"
#include "deadline.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <seccomp.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/evp.h>

#include "clamd.h"
#include "launcher.h"
#include "fsutil.h"
#include "hdr.h"
#include "log.h"
#include "queue/report.h"
#include "str.h"
#include "timefmt.h"
#include "uuwalk.h"
#include "xalloc.h"

#define FILTER_SIGFILE_MAX ((size_t)64 * 1024 * 1024)
#define FILTER_CLAMD_SCANNER "ClamAV (clamd)"

static void filter_worker_stop(struct filter *f);

bool filter_init(struct filter *f, const struct zconf *conf, struct queue *queue,
                 struct cfg_error *err)
{
    memset(f, 0, sizeof *f);
    f->conf = conf;
    f->queue = queue;
    f->worker_fd = -1;
    sigscan_db_init(&f->sigs);
    const char *why = NULL;
    if (!banned_list_parse(&f->banned, conf->banned_extensions, &why)) {
        snprintf(err->text, sizeof err->text, "banned_extensions: %s", why);
        return false;
    }
    if (conf->virus_signatures[0]) {
        char *data;
        size_t len;
        if (fs_read_file(conf->virus_signatures, FILTER_SIGFILE_MAX, &data, &len) < 0) {
            snprintf(err->text, sizeof err->text, "virus_signatures: cannot read %s: %s",
                     conf->virus_signatures, strerror(errno));
            return false;
        }
        bool ok = sigscan_db_parse(&f->sigs, conf->virus_signatures, data, len, err);
        if (!ok) {
            free(data);
            return false;
        }
        f->sigs_text = data; /* filter_user: sent to the launcher's scanner processes */
        f->sigs_len = len;
    }
    mimewalk_limits_default(&f->mime_limits);
    f->mime_limits.max_depth = conf->filter_mime_depth;
    f->mime_limits.max_parts = conf->filter_mime_parts;
    f->mime_limits.max_header_bytes = conf->filter_header_limit;
    /* decoded bodies are never larger than the message (base64 and QP shrink) */
    f->mime_limits.max_body_bytes = conf->message_size_limit + (size_t)1024 * 1024;
    f->zip_limits.max_depth = conf->filter_archive_depth;
    f->zip_limits.max_entries = conf->filter_archive_entries;
    f->zip_limits.max_expanded = conf->filter_archive_expanded;
    size_t n = strlen(conf->state_dir) + sizeof "/quarantine";
    f->quarantine_dir = xmalloc(n);
    snprintf(f->quarantine_dir, n, "%s/quarantine", conf->state_dir);
    return true;
}

static void filter_async_stop(struct filter *f);

void filter_free(struct filter *f)
{
    filter_async_stop(f);
    filter_worker_stop(f);
    sigscan_db_free(&f->sigs);
    free(f->quarantine_dir);
    free(f->sigs_text);
    memset(f, 0, sizeof *f);
}

bool filter_verdict_quarantine(const struct filter_verdict *v)
{
    return v->virus[0] || v->banned_ext[0] || v->banned_name[0] || v->doubt[0];
}

/* Printable ASCII only: names come from attackers and end up in logs and notices. */
static void filter_sanitise(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < size; i++) {
        dst[i] = src[i];
        if (src[i] < ' ' || src[i] > '~')
            dst[i] = '?';
    }
    dst[i] = '\0';
}

/* A Windows PE executable ("MZ" header pointing at "PE\0\0"), whatever its name says. */
static bool filter_is_pe(const char *data, size_t len)
{
    if (len < 64 || data[0] != 'M' || data[1] != 'Z')
        return false;
    const unsigned char *u = (const unsigned char *)data;
    size_t off = (size_t)u[0x3c] | (size_t)u[0x3d] << 8 | (size_t)u[0x3e] << 16 | (size_t)u[0x3f] << 24;
    return off <= len - 4 && memcmp(data + off, "PE\0\0", 4) == 0;
}

static void filter_check_name(struct filter *f, const char *name, struct filter_verdict *v)
{
    struct banned_verdict bv;
    if (v->banned_name[0] || !banned_check(&f->banned, name, &bv))
        return;
    snprintf(v->banned_ext, sizeof v->banned_ext, "%s", bv.ext[0] ? bv.ext : "");
    filter_sanitise(v->banned_name, sizeof v->banned_name, name);
    if (!bv.ext[0])
        snprintf(v->banned_ext, sizeof v->banned_ext, "%s", "control-char");
}

/* Content checks of one decoded object: signatures, executables, archives. */
static void filter_check_content(struct filter *f, const char *data, size_t len, struct filter_verdict *v)
{
    const char *virus = sigscan_match(&f->sigs, data, len);
    if (virus && !v->virus[0]) {
        snprintf(v->virus, sizeof v->virus, "%s", virus);
        snprintf(v->scanner, sizeof v->scanner, "%s", FILTER_BUILTIN_SCANNER);
    }
    struct banned_verdict bv;
    if (!v->banned_name[0] && filter_is_pe(data, len) && banned_check(&f->banned, "x.exe", &bv)) {
        snprintf(v->banned_ext, sizeof v->banned_ext, ".exe-ms");
        snprintf(v->banned_name, sizeof v->banned_name, "(Windows executable content)");
    }
    if (!zipwalk_is_archive(data, len))
        return;
    struct zipwalk z;
    zipwalk_run(data, len, &f->zip_limits, &z);
    if (z.refused && !v->doubt[0])
        snprintf(v->doubt, sizeof v->doubt, "archive refused: %s", z.refused);
    for (size_t i = 0; i < z.nentries; i++) {
        filter_check_name(f, z.entries[i].name, v);
        const char *zv = sigscan_match(&f->sigs, z.entries[i].data.data, z.entries[i].data.len);
        if (zv && !v->virus[0]) {
            snprintf(v->virus, sizeof v->virus, "%s", zv);
            snprintf(v->scanner, sizeof v->scanner, "%s", FILTER_BUILTIN_SCANNER);
        }
        if (!v->banned_name[0] && filter_is_pe(z.entries[i].data.data, z.entries[i].data.len) &&
            banned_check(&f->banned, "x.exe", &bv)) {
            snprintf(v->banned_ext, sizeof v->banned_ext, ".exe-ms");
            filter_sanitise(v->banned_name, sizeof v->banned_name, z.entries[i].name);
        }
    }
    zipwalk_free(&z);
}

/* Files uuencoded in a body ("begin 644 name.exe"): their names and their bytes. */
static void filter_check_uuencoded(struct filter *f, const char *data, size_t len, struct filter_verdict *v)
{
    struct uuwalk_limits limits = {.max_entries = f->zip_limits.max_entries,
                                   .max_bytes = f->zip_limits.max_expanded};
    struct uuwalk uw;
    uuwalk_run(data, len, &limits, &uw);
    if (uw.refused && !v->doubt[0])
        snprintf(v->doubt, sizeof v->doubt, "uuencoded files refused: %s", uw.refused);
    for (size_t i = 0; i < uw.nentries; i++) {
        filter_check_name(f, uw.entries[i].name, v);
        filter_check_content(f, uw.entries[i].data.data ? uw.entries[i].data.data : "", uw.entries[i].data.len, v);
    }
    uuwalk_free(&uw);
}

void filter_scan(struct filter *f, const char *data, size_t len, struct filter_verdict *v)
{
    memset(v, 0, sizeof *v);
    struct mimewalk walk;
    mimewalk_run(data, len, &f->mime_limits, &walk);
    if (walk.malformed)
        snprintf(v->doubt, sizeof v->doubt, "malformed MIME: %s", walk.malformed);
    for (size_t i = 0; i < walk.nparts; i++) {
        const struct mimewalk_part *p = &walk.parts[i];
        for (size_t k = 0; k < p->nnames; k++)
            filter_check_name(f, p->names[k], v);
        filter_check_content(f, p->body.data ? p->body.data : "", p->body.len, v);
        if (p->body.data && uuwalk_maybe(p->body.data, p->body.len))
            filter_check_uuencoded(f, p->body.data, p->body.len, v);
    }
    mimewalk_free(&walk);
    /* The whole message too: a signature may span what MIME splits (or hide outside it). */
    if (!v->virus[0]) {
        const char *raw = sigscan_match(&f->sigs, data, len);
        if (raw) {
            snprintf(v->virus, sizeof v->virus, "%s", raw);
            snprintf(v->scanner, sizeof v->scanner, "%s", FILTER_BUILTIN_SCANNER);
        }
    }
    if (f->conf->clamd[0] && !filter_verdict_quarantine(v)) {
        char virus[128], error[256];
        enum clamd_result r = clamd_scan(f->conf->clamd, data, len, (int)f->conf->clamd_timeout * 1000,
                                         virus, sizeof virus, error, sizeof error);
        if (r == CLAMD_FOUND) {
            snprintf(v->virus, sizeof v->virus, "%s", virus);
            snprintf(v->scanner, sizeof v->scanner, "%s", FILTER_CLAMD_SCANNER);
        } else if (r == CLAMD_ERROR) {
            snprintf(v->tempfail, sizeof v->tempfail, "%s", error);
        }
    }
}

void filter_verdict_text(const struct filter_verdict *v, struct buf *out)
{
    const char *sep = "";
    if (v->virus[0]) {
        buf_printf(out, "virus=%s (%s)", v->virus, v->scanner);
        sep = " ";
    }
    if (v->banned_ext[0] || v->banned_name[0]) {
        buf_printf(out, "%sbanned=%s (%s)", sep, v->banned_ext, v->banned_name);
        sep = " ";
    }
    if (v->doubt[0]) {
        buf_printf(out, "%sdoubt=%s", sep, v->doubt);
        sep = " ";
    }
    if (v->tempfail[0])
        buf_printf(out, "%sscanner_failed=%s", sep, v->tempfail);
}

/* ---- the notice ------------------------------------------------------------------------- */

/* The host part of the oldest Received: field's "from" clause, or NULL. */
static char *filter_origin(const char *data, size_t len)
{
    size_t hlen = hdr_section_len(data, len);
    size_t pos = 0;
    struct hdr_field fld, last = {0};
    bool found = false;
    while (hdr_next(data, hlen, &pos, &fld)) {
        if (fld.name_len == 8 && strncasecmp(fld.name, "Received", 8) == 0) {
            last = fld;
            found = true;
        }
    }
    if (!found)
        return NULL;
    char value[1024];
    size_t n = 0;
    for (size_t i = 0; i < last.value_len && n + 1 < sizeof value; i++) {
        char c = last.value[i];
        if (c == '\r' || c == '\n' || c == '\t')
            c = ' ';
        if (c == ' ' && (n == 0 || value[n - 1] == ' '))
            continue;
        if (c < ' ' || c > '~')
            c = '?';
        value[n++] = c;
    }
    value[n] = '\0';
    if (strncasecmp(value, "from ", 5) != 0)
        return NULL;
    char *from = value + 5;
    char *by = strstr(from, " by ");
    if (by)
        *by = '\0';
    char *semi = strchr(from, ';');
    if (semi)
        *semi = '\0';
    return xstrdup(str_trim(from));
}

void filter_notice_render(const struct filter_verdict *v, const struct queue_msg *msg,
                          const char *data, size_t len, const char *admin, const char *hostname,
                          const char *date, struct buf *out)
{
    filter_notice_render_expanded(v, msg, data, len, admin, hostname, date, NULL, out);
}

void filter_notice_render_expanded(const struct filter_verdict *v, const struct queue_msg *msg,
                                   const char *data, size_t len, const char *admin, const char *hostname,
                                   const char *date, char *const *expanded, struct buf *out)
{
    char sender[512];
    filter_sanitise(sender, sizeof sender, msg->env.sender);
    const char *what = v->virus[0] ? "VIRUS" : (v->banned_ext[0] ? "BANNED FILENAME" : "DOUBTFUL CONTENT");
    const char *which = v->virus[0] ? v->virus : (v->banned_ext[0] ? v->banned_name : v->doubt);
    buf_printf(out, "From: Content-filter at %s <postmaster@%s>\r\n", hostname, hostname);
    buf_printf(out, "To: <%s>\r\n", admin);
    buf_printf(out, "Subject: %s (%s) IN MAIL FROM <%s>\r\n", what, which, sender);
    buf_printf(out, "Date: %s\r\n", date);
    buf_printf(out, "Message-ID: <%s.quarantine@%s>\r\n", msg->id, hostname);
    buf_printf(out, "Auto-Submitted: auto-generated\r\n");
    buf_printf(out, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n"
                    "Content-Transfer-Encoding: 7bit\r\n\r\n");
    if (v->virus[0])
        buf_printf(out, "A virus (%s) was found.\r\n", v->virus);
    if (v->banned_ext[0])
        buf_printf(out, "A banned name (%s) was found.\r\n", v->banned_ext);
    if (v->doubt[0])
        buf_printf(out, "A message with doubtful content (%s) was found.\r\n", v->doubt);
    buf_printf(out, "\r\n");
    if (v->virus[0])
        buf_printf(out, "Scanner detecting a virus: %s\r\n", v->scanner);
    if (v->banned_name[0])
        buf_printf(out, "The banned attachment: %s\r\n", v->banned_name);
    buf_printf(out, "The mail originated from: <%s>\r\n", sender);
    char *origin = filter_origin(data, len);
    char ip[128];
    filter_sanitise(ip, sizeof ip, msg->env.client_ip);
    buf_printf(out, "According to the 'Received:' trace, the message originated at:\r\n   %s\r\n",
               origin ? origin : ip);
    free(origin);
    buf_printf(out, "Notification to sender will not be mailed.\r\n\r\n");
    buf_printf(out, "The message WAS NOT delivered to:\r\n");
    for (size_t i = 0; i < msg->env.nrcpts; i++) {
        if (msg->env.rcpts[i].status != QUEUE_RCPT_PENDING)
            continue;
        char rcpt[512];
        filter_sanitise(rcpt, sizeof rcpt, msg->env.rcpts[i].addr);
        if (expanded && expanded[i]) {
            char to[512];
            filter_sanitise(to, sizeof to, expanded[i]);
            buf_printf(out, "<%s> (for: %s):\r\n   quarantined as %s\r\n", rcpt, to, msg->id);
        } else {
            buf_printf(out, "<%s>:\r\n   quarantined as %s\r\n", rcpt, msg->id);
        }
    }
    buf_printf(out, "\r\nThe message is kept in the quarantine: zolderctl quarantine show %s\r\n"
                    "(release sends it on, delete removes it).\r\n", msg->id);
}

void filter_set_resolver(struct filter *f, const struct deliver_resolver *resolver)
{
    f->resolver = *resolver;
    f->has_resolver = true;
}

/*
 * Where each pending local recipient's aliases lead, for the notice: expanded[i] is
 * "admin, sjoerd" (NULL: remote, unknown, or just the mailbox of that name). Caller frees.
 */
static char **filter_expand_rcpts(const struct filter *f, const struct queue_msg *msg)
{
    if (!f->has_resolver || msg->env.nrcpts == 0)
        return NULL;
    char **expanded = xcalloc(msg->env.nrcpts, sizeof *expanded);
    for (size_t i = 0; i < msg->env.nrcpts; i++) {
        const char *addr = msg->env.rcpts[i].addr;
        const char *at = strrchr(addr, '@');
        char local[256];
        size_t n = at ? (size_t)(at - addr) : strlen(addr);
        if (msg->env.rcpts[i].status != QUEUE_RCPT_PENDING || n >= sizeof local ||
            (at && !zconf_is_local_domain(f->conf, at + 1)))
            continue;
        memcpy(local, addr, n);
        local[n] = '\0';
        struct deliver_targets t = {0};
        if (f->resolver.expand(f->resolver.ctx, local, &t) == 0 &&
            !(t.n == 1 && strcasecmp(t.addrs[0], local) == 0)) {
            struct buf list;
            buf_init(&list, 0);
            for (size_t k = 0; k < t.n && k < 20; k++)
                buf_printf(&list, "%s%s", k ? ", " : "", t.addrs[k]);
            if (t.n > 20)
                buf_printf(&list, ", ... (%zu in all)", t.n);
            expanded[i] = xstrdup(list.data ? list.data : "");
            buf_free(&list);
        }
        deliver_targets_free(&t);
    }
    return expanded;
}

/* The notice's id follows from the message's, so a rescan after a crash finds it. */
static void filter_notice_id(const char *id, char out[QUEUE_ID_LEN + 1])
{
    static const char digits[] = "0123456789BCDFGHJKLMNPQRSTVWXYZ";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char input[64];
    snprintf(input, sizeof input, "%s/quarantine-notice", id);
    EVP_Digest(input, strlen(input), md, &mdlen, EVP_sha256(), NULL);
    memcpy(out, id, 7);
    for (int i = 7; i < QUEUE_ID_LEN; i++)
        out[i] = digits[md[i] % 31];
    out[QUEUE_ID_LEN] = '\0';
}

/* Queues the notice. 0 (also when an earlier attempt queued it), -1 on failure. */
static int filter_queue_notice(struct filter *f, const struct filter_verdict *v,
                               const struct queue_msg *msg, const struct buf *data, char nid[QUEUE_ID_LEN + 1])
{
    char admin[600];
    if (strchr(f->conf->filter_admin, '@'))
        snprintf(admin, sizeof admin, "%s", f->conf->filter_admin);
    else
        snprintf(admin, sizeof admin, "%s@%s", f->conf->filter_admin, f->conf->hostname);
    char date[64];
    timefmt_rfc5322(time(NULL), date, sizeof date);
    struct buf body;
    buf_init(&body, 0);
    char **expanded = filter_expand_rcpts(f, msg);
    filter_notice_render_expanded(v, msg, data->data, data->len, admin, f->conf->hostname, date, expanded,
                                  &body);
    for (size_t i = 0; expanded && i < msg->env.nrcpts; i++)
        free(expanded[i]);
    free(expanded);
    filter_notice_id(msg->id, nid);
    int rc = report_queue_local(f->queue, nid, f->conf->hostname, admin, false, "7BIT", &body) < 0 ? -1 : 0;
    buf_free(&body);
    return rc;
}

static char *filter_join(const char *dir, const char *id, const char *suffix)
{
    size_t n = strlen(dir) + strlen(id) + strlen(suffix) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s%s", dir, id, suffix);
    return p;
}

static int filter_tmp_unlink_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

/* Writes the verdict file (fsync'd) then renames the queue file into the quarantine. */
static int filter_move_to_quarantine(struct filter *f, const char *id, const struct filter_verdict *v)
{
    if (fs_mkdir_p(f->quarantine_dir, 0700) < 0)
        return -1;
    struct buf text;
    buf_init(&text, 0);
    filter_verdict_text(v, &text);
    buf_append_char(&text, '\n');
    char *vpath = filter_join(f->quarantine_dir, id, ".verdict");
    char *src = filter_join(f->queue->msg_dir, id, "");
    char *dst = filter_join(f->quarantine_dir, id, "");
    int rc = -1;
    int fd = open(vpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (fs_write_all(fd, text.data, text.len) == 0 && fsync(fd) == 0 &&
            rename(src, dst) == 0 && fs_fsync_dir(f->quarantine_dir) == 0 &&
            fs_fsync_dir(f->queue->msg_dir) == 0)
            rc = 0;
        int e = errno;
        close(fd);
        errno = e;
    }
    free(vpath);
    free(src);
    free(dst);
    buf_free(&text);
    return rc;
}

/* ---- scanning in a child process ------------------------------------------------------------ */

/* One message being filtered. */
struct filter_job {
    const char *id;
    char *path;
    mode_t mode;
    struct queue_msg msg;
    struct buf data;
    bool loaded;
};

/* What zolderd sends before a message's bytes. The id names the message's private temporary
 * folder (STATE_DIR/filter-tmp/ID, made by zolderd); "" when there is none. */
struct filter_request {
    uint64_t len;
    char id[32];
};

#define FILTER_CHUNK_MESSAGES 64
#define FILTER_CHUNK_BYTES ((size_t)64 * 1024 * 1024)
#define FILTER_CHILD_CPU_SECONDS 300


/* ---- the scanner process's sandbox ---------------------------------------------------------- */

/* STATE_DIR/filter-tmp: the scanner's working folder, one private 0700 folder per message. */
static char *filter_tmp_root(const struct filter *f)
{
    return filter_join(f->conf->state_dir, "filter-tmp", "");
}

/*
 * STATE_DIR/filter-spare/N: emptied working folders kept for the next messages (when zolderd
 * makes them, not with filter_user), so a scan costs two renames instead of a mkdir and an
 * rmdir. Each new folder takes an inode and a block, and ext4 without a journal skips the
 * inodes freed in the last seconds when it allocates one (ialloc.c, recently_deleted): under
 * a stream of messages every allocation (the queue files' too) scanned further past them.
 * Out of the scanners' reach (Landlock: filter-tmp only); emptied at the first use after a
 * start or reload. A folder is kept only when empty, 0700 and ours.
 */
#define FILTER_SPARE_MAX 64

static char *filter_spare_path(const struct filter *f, size_t i)
{
    size_t n = strlen(f->conf->state_dir) + sizeof "/filter-spare/" + 24;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/filter-spare/%zu", f->conf->state_dir, i);
    return p;
}

/* Moves the (scanned) folder dir to the spares: true, or false to remove it as before. */
static bool filter_tmp_recycle(struct filter *f, const char *dir)
{
    if (f->nspare >= FILTER_SPARE_MAX)
        return false;
    if (!f->spare_ready) {
        char *root = filter_join(f->conf->state_dir, "filter-spare", "");
        nftw(root, filter_tmp_unlink_cb, 8, FTW_DEPTH | FTW_PHYS); /* an earlier run's */
        bool made = mkdir(root, 0700) == 0 || errno == EEXIST;
        free(root);
        if (!made)
            return false;
        f->spare_ready = true;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) < 0 || (st.st_mode & 07777) != 0700 || st.st_uid != geteuid()) {
        close(fd);
        return false;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return false;
    }
    bool empty = true;
    const struct dirent *e;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    if (!empty)
        return false;
    char *spare = filter_spare_path(f, f->nspare);
    bool moved = rename(dir, spare) == 0;
    free(spare);
    f->nspare += moved;
    return moved;
}

/* Makes STATE_DIR/filter-tmp/ID (0700, empty): a spare folder renamed, else a new one. 0,
 * or -1 with errno. With filter_user the scanner process makes it itself (the folder is
 * its user's): nothing to do here. */
static int filter_tmp_make(struct filter *f, const char *id)
{
    if (f->launcher)
        return 0;
    char *root = filter_tmp_root(f);
    char *dir = filter_join(root, id, "");
    int rc = fs_mkdir_p(root, 0700);
    if (rc == 0 && f->nspare > 0) {
        char *spare = filter_spare_path(f, --f->nspare);
        bool taken = rename(spare, dir) == 0; /* fails when dir exists (left by a crash) */
        free(spare);
        if (taken) {
            free(root);
            free(dir);
            return 0;
        }
    }
    if (rc == 0 && mkdir(dir, 0700) < 0) {
        if (errno == EEXIST) { /* left by a crash: start empty */
            nftw(dir, filter_tmp_unlink_cb, 8, FTW_DEPTH | FTW_PHYS);
            rc = mkdir(dir, 0700);
        } else {
            rc = -1;
        }
    }
    free(root);
    free(dir);
    return rc;
}

/* Removes STATE_DIR/filter-tmp/ID and whatever the scanner left in it (an empty one becomes
 * a spare). */
static void filter_tmp_remove(struct filter *f, const char *id)
{
    if (!queue_id_valid(id) || f->launcher)
        return; /* filter_user: the scanner process removes it, the launcher after a crash */
    char *root = filter_tmp_root(f);
    char *dir = filter_join(root, id, "");
    if (filter_tmp_recycle(f, dir)) {
        free(root);
        free(dir);
        return;
    }
    if (nftw(dir, filter_tmp_unlink_cb, 8, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
        log_warn("%s: cannot remove the scanner's temporary folder %s", id, dir);
    free(root);
    free(dir);
}

/* Landlock (Linux 5.13+): the kernel's own file-system sandbox for unprivileged processes.
 * Declared here because Debian 12's headers know only its first versions. */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif
struct filter_ll_ruleset {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};
struct filter_ll_path {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));
struct filter_ll_port {
    uint64_t allowed_access;
    uint64_t port;
};
#define FILTER_LL_RULE_PATH 1
#define FILTER_LL_RULE_PORT 2
#define FILTER_LL_FS_READ ((1ULL << 2) | (1ULL << 3)) /* READ_FILE, READ_DIR */
#define FILTER_LL_NET_CONNECT_TCP (1ULL << 1)

static void filter_ll_allow(int ruleset, const char *path, uint64_t access)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return;
    struct filter_ll_path rule = {.allowed_access = access, .parent_fd = fd};
    syscall(SYS_landlock_add_rule, ruleset, FILTER_LL_RULE_PATH, &rule, 0);
    close(fd);
}

/*
 * Confines the scanner process with Landlock: it may write only under STATE_DIR/filter-tmp,
 * read only the system's files (/usr, /etc, /proc, /dev: charset converters, time zones), not
 * the spool, the queue, the quarantine nor the mailboxes; no TCP connection but to clamd's
 * port; no signal to a process outside the sandbox (zolderd). Returns the Landlock ABI
 * version applied, or 0 (kernel without Landlock: the other limits still hold).
 */
static int filter_sandbox_landlock(const struct filter *f, const char *tmp_root)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1U /* LANDLOCK_CREATE_RULESET_VERSION */);
    if (abi < 1)
        return 0;
    uint64_t fs_all = (1ULL << 13) - 1; /* ABI 1: EXECUTE .. MAKE_SYM */
    if (abi >= 2)
        fs_all |= 1ULL << 13; /* REFER */
    if (abi >= 3)
        fs_all |= 1ULL << 14; /* TRUNCATE */
    if (abi >= 5)
        fs_all |= 1ULL << 15; /* IOCTL_DEV */
    struct filter_ll_ruleset attr = {.handled_access_fs = fs_all};
    size_t size = sizeof attr.handled_access_fs;
    if (abi >= 4) {
        attr.handled_access_net = (1ULL << 0) | FILTER_LL_NET_CONNECT_TCP; /* BIND_TCP, CONNECT_TCP */
        size = offsetof(struct filter_ll_ruleset, scoped);
    }
    if (abi >= 6) {
        attr.scoped = (1ULL << 0) | (1ULL << 1); /* ABSTRACT_UNIX_SOCKET, SIGNAL */
        size = sizeof attr;
    }
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (rs < 0)
        return 0;
    filter_ll_allow(rs, tmp_root, fs_all);
    static const char *const readable[] = {"/usr", "/etc", "/lib", "/lib64", "/proc", "/dev"};
    for (size_t i = 0; i < sizeof readable / sizeof readable[0]; i++)
        filter_ll_allow(rs, readable[i], FILTER_LL_FS_READ);
    const char *clamd = f->conf->clamd;
    if (abi >= 4 && clamd[0] && strncmp(clamd, "unix:", 5) != 0) {
        const char *colon = strrchr(clamd, ':');
        unsigned long port = colon ? strtoul(colon + 1, NULL, 10) : 0;
        if (port > 0 && port < 65536) {
            struct filter_ll_port rule = {.allowed_access = FILTER_LL_NET_CONNECT_TCP, .port = port};
            syscall(SYS_landlock_add_rule, rs, FILTER_LL_RULE_PORT, &rule, 0);
        }
    }
    long ok = syscall(SYS_landlock_restrict_self, rs, 0);
    close(rs);
    return ok == 0 ? (int)abi : 0;
}

/*
 * The scanner's system-call filter (seccomp-bpf, built with libseccomp: it writes the
 * architecture checks, the x32 ABI trap and the argument comparisons that raw BPF would
 * have us write by hand, for whatever architecture Debian builds on). Only what scanning
 * needs is allowed: its descriptors (read, write, close, poll), memory, the files Landlock
 * lets it open (charset converters, time zones, its temporary folder), signals to itself
 * (abort), time, exit. A socket only of clamd's family and only when clamd is configured
 * (Landlock ABI 4 limits its TCP port). Anything else (execve, fork/clone, ptrace, socket
 * of another family, kill of another process, mount, bpf...) kills the process at once
 * (SECCOMP_RET_KILL_PROCESS): zolderd sees it die by SIGSYS and defers the message.
 * -1 when the kernel refused the filter.
 */
static struct scmp_arg_cmp filter_sc_arg(unsigned arg, enum scmp_compare op, scmp_datum_t a, scmp_datum_t b)
{
    struct scmp_arg_cmp c = {.arg = arg, .op = op, .datum_a = a, .datum_b = b};
    return c;
}

static int filter_sandbox_seccomp(const struct filter *f)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx)
        return -1;
    static const int allowed[] = {
        /* its socket to zolderd, stderr, files Landlock allows */
        SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(pread64), SCMP_SYS(write), SCMP_SYS(writev),
        SCMP_SYS(pwrite64), SCMP_SYS(close), SCMP_SYS(lseek), SCMP_SYS(fcntl), SCMP_SYS(dup),
        SCMP_SYS(openat), SCMP_SYS(open), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(stat),
        SCMP_SYS(lstat), SCMP_SYS(statx), SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2),
        SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getdents64),
        SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg),
        SCMP_SYS(recvmsg), SCMP_SYS(shutdown),
        /* its temporary folder (Landlock: only under STATE_DIR/filter-tmp) */
        SCMP_SYS(chdir), SCMP_SYS(fchdir), SCMP_SYS(getcwd), SCMP_SYS(mkdir), SCMP_SYS(mkdirat),
        SCMP_SYS(unlink), SCMP_SYS(unlinkat), SCMP_SYS(rmdir), SCMP_SYS(rename), SCMP_SYS(renameat),
        SCMP_SYS(ftruncate), SCMP_SYS(flock),
        /* memory (mmap with PROT_EXEC: glibc loads its charset converters with dlopen) */
        SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect),
        SCMP_SYS(madvise), SCMP_SYS(futex), SCMP_SYS(sched_yield), SCMP_SYS(getrandom),
        /* signals to itself, time, identity, limits */
        SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
        SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
        SCMP_SYS(getegid), SCMP_SYS(getppid), SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
        SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep),
        SCMP_SYS(getrlimit), SCMP_SYS(prlimit64), SCMP_SYS(getrusage), SCMP_SYS(uname),
        SCMP_SYS(sysinfo), SCMP_SYS(restart_syscall), SCMP_SYS(exit), SCMP_SYS(exit_group),
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0] && rc == 0; i++)
        if (allowed[i] >= 0) /* a call this architecture does not have (__NR_SCMP_ERROR) */
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
    /* abort() and raise(): a signal to this process only (not to zolderd) */
    pid_t self = getpid();
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, filter_sc_arg(0, SCMP_CMP_EQ, (scmp_datum_t)self, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, filter_sc_arg(0, SCMP_CMP_EQ, (scmp_datum_t)self, 0));
    /* isatty() by stdio: the terminal query only */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, filter_sc_arg(1, SCMP_CMP_EQ, TCGETS, 0));
    /* clamd: a stream socket of its family, connected, asked for its error */
    const char *clamd = f->conf->clamd;
    int family = -1;
    struct zconf_listen l;
    if (strncmp(clamd, "unix:", 5) == 0)
        family = AF_UNIX;
    else if (clamd[0] && zconf_parse_listen(clamd, 0, &l))
        family = l.sa.ss_family;
    if (family >= 0) {
        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, filter_sc_arg(0, SCMP_CMP_EQ, (scmp_datum_t)family, 0),
                                  filter_sc_arg(1, SCMP_CMP_MASKED_EQ, 0xf, SOCK_STREAM));
        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(connect), 0);
        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getsockopt), 0);
    }
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return 0;
}

/*
 * Everything the scanner process gives up before its first message: its working folder is
 * STATE_DIR/filter-tmp (TMPDIR too), no core dumps, few descriptors, no new processes,
 * files it writes are bounded, Landlock keeps it out of everything but that folder, and a
 * seccomp filter out of every system call it does not need.
 */
int filter_sandbox(const struct filter *f)
{
    char *root = filter_tmp_root(f);
    /* filter_user: the launcher started us in filter-tmp, which we reach by no path (STATE_DIR
     * is run_as's): Landlock gets it as "." */
    if (!f->own_tmp && chdir(root) < 0) {
        free(root);
        return -1;
    }
    setenv("TMPDIR", root, 1);
    struct rlimit zero = {0, 0};
    setrlimit(RLIMIT_CORE, &zero);
    struct rlimit files = {64, 64};
    setrlimit(RLIMIT_NOFILE, &files);
    rlim_t fsize = (rlim_t)f->conf->filter_archive_expanded + (rlim_t)f->conf->message_size_limit;
    struct rlimit written = {fsize, fsize};
    setrlimit(RLIMIT_FSIZE, &written);
    struct rlimit procs = {0, 0};
    setrlimit(RLIMIT_NPROC, &procs); /* no fork, no threads (root ignores this) */
    int abi = filter_sandbox_landlock(f, f->own_tmp ? "." : root);
    if (abi == 0)
        log_warnx("scanner process: no Landlock in this kernel, only the resource limits confine it");
    free(root);
    /* the system-call filter needs no new privileges (set here too for tests' children);
     * memcheck runs the process's system calls itself and cannot run under one */
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (RUNNING_ON_VALGRIND)
        log_warnx("scanner process: under valgrind, no system-call filter");
    else if (filter_sandbox_seccomp(f) < 0)
        log_warn("scanner process: no seccomp system-call filter");
    return abi;
}

/*
 * filter_user: makes the message's folder filter-tmp/ID (the working folder is filter-tmp),
 * empty, locked (flock: the launcher's sweep after a crash leaves a locked folder alone) and
 * enters it. The locked descriptor, or -1.
 */
static int filter_own_tmp_enter(const char *id)
{
    if (mkdir(id, 0700) < 0 && errno == EEXIST) { /* left by a crash: start empty */
        nftw(id, filter_tmp_unlink_cb, 8, FTW_DEPTH | FTW_PHYS);
        mkdir(id, 0700);
    }
    int fd = open(id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX) < 0 || fchdir(fd) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * The scanner process: forked from zolderd on first use (after the privilege drop, with the
 * filter's configuration in its memory), it keeps no descriptor but its socket, sets no new
 * privileges and a CPU limit, and serves one request at a time: <u64 length><message bytes>
 * in, a fixed-size struct filter_verdict out. It exits on EOF (zolderd gone). A parser crash
 * (GMime, libarchive) costs this process, never zolderd; it is started again for the next
 * message.
 */
static void filter_worker_main(struct filter *f, int fd)
{
    struct rlimit cpu = {FILTER_CHILD_CPU_SECONDS, FILTER_CHILD_CPU_SECONDS};
    setrlimit(RLIMIT_CPU, &cpu);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    signal(SIGPIPE, SIG_DFL);
    /* a crash must end this process by its signal, whatever handlers were inherited (a
     * sanitizer's, a test framework's): that is how zolderd tells a crash from a failure */
    static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGXCPU, SIGSYS};
    for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++)
        signal(crash_signals[i], SIG_DFL);
    /* a stop or reload is zolderd's business: it ends us by closing the socket */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    /* keep only our socket (and stderr): no listening socket may outlive zolderd in here */
    if (fd != 3) {
        if (dup2(fd, 3) < 0)
            _exit(1);
        fd = 3;
    }
    close_range(4, ~0U, 0);
    close(0);
    close(1);
    if (filter_sandbox(f) < 0)
        _exit(1);
    size_t cap = 0;
    char *data = NULL;
    for (;;) {
        struct filter_request req;
        size_t got = 0;
        while (got < sizeof req) {
            ssize_t r = read(fd, (char *)&req + got, sizeof req - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                goto out;
            got += (size_t)r;
        }
        uint64_t len = req.len;
        req.id[sizeof req.id - 1] = '\0';
        if (len > (uint64_t)1 << 34)
            goto out;
        if (len + 1 > cap) {
            cap = (size_t)len + 1;
            data = xrealloc(data, cap);
        }
        got = 0;
        while (got < len) {
            ssize_t r = read(fd, data + got, (size_t)len - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                goto out;
            got += (size_t)r;
        }
        data[len] = '\0';
        /* the message's private folder is our working directory while it is scanned */
        int own = -1;
        bool in_tmp = queue_id_valid(req.id) &&
                      (f->own_tmp ? (own = filter_own_tmp_enter(req.id)) >= 0 : chdir(req.id) == 0);
        struct filter_verdict v;
        filter_scan(f, data, (size_t)len, &v);
        if (in_tmp && chdir("..") < 0)
            goto out;
        if (own >= 0) { /* filter_user: ours to remove; the lock goes with the descriptor */
            nftw(req.id, filter_tmp_unlink_cb, 8, FTW_DEPTH | FTW_PHYS);
            close(own);
        }
        if (fs_write_all(fd, &v, sizeof v) < 0)
            goto out;
    }
out:
    free(data); /* zolderd is gone (or the request was bad): nothing else to do */
    filter_free(f);
    _exit(0);
}

/* SIGKILL to a scanner process: ours, or the launcher's (filter_user: not ours to signal). */
static void filter_proc_kill(struct filter *f, pid_t pid)
{
    if (f->launcher)
        launcher_kill(f->launcher, pid);
    else
        kill(pid, SIGKILL);
}

/* Reaps a scanner process that ended (or is ending): its wait status, 0 when not known. */
static int filter_proc_wait(struct filter *f, pid_t pid)
{
    int status = 0;
    if (f->launcher) {
        if (!launcher_wait(f->launcher, pid, &status, 10000))
            log_warnx("scanner process %ld: no exit status from the launcher", (long)pid);
        return status;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        continue;
    return status;
}

static void filter_worker_stop(struct filter *f)
{
    if (f->worker_pid <= 0)
        return;
    close(f->worker_fd);
    filter_proc_kill(f, f->worker_pid);
    filter_proc_wait(f, f->worker_pid);
    f->worker_pid = 0;
    f->worker_fd = -1;
}

static bool filter_setup_send(const struct filter *f, int fd);

static bool filter_worker_start(struct filter *f, pid_t *pid_r, int *fd_r)
{
    if (f->launcher) { /* filter_user: the launcher starts it; its configuration goes over */
        if (!launcher_spawn(f->launcher, pid_r, fd_r))
            return false;
        if (filter_setup_send(f, *fd_r))
            return true;
        int saved = errno;
        close(*fd_r);
        filter_proc_kill(f, *pid_r);
        filter_proc_wait(f, *pid_r);
        errno = saved;
        return false;
    }
    char *root = filter_tmp_root(f);
    int made = fs_mkdir_p(root, 0700);
    free(root);
    if (made < 0)
        return false;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return false;
    }
    if (pid == 0) {
        close(sv[0]);
        int flags = fcntl(sv[1], F_GETFD);
        fcntl(sv[1], F_SETFD, flags & ~FD_CLOEXEC);
        filter_worker_main(f, sv[1]);
        _exit(0);
    }
    close(sv[1]);
    *pid_r = pid;
    *fd_r = sv[0];
    return true;
}

/* ---- filter_user: the configuration a launcher's scanner process gets over its socket ---- */

#define FILTER_SETUP_MAGIC 0x7a6f6c6466696c01ULL
#define FILTER_SETUP_STR_MAX ((size_t)64 * 1024)

struct filter_setup_head {
    uint64_t magic;
    uint64_t num[8];   /* clamd_timeout, message_size_limit, mime depth/parts/header, archive x3 */
    uint64_t len[4];   /* state_dir, clamd, banned_extensions, the signature file */
};

static int filter_worker_io(int fd, short events, void *buf, size_t len, long long deadline);

/* Sends f's scanning configuration to a scanner process the launcher started. */
static bool filter_setup_send(const struct filter *f, int fd)
{
    const struct zconf *c = f->conf;
    const char *strs[4] = {c->state_dir, c->clamd, c->banned_extensions, f->sigs_text ? f->sigs_text : ""};
    struct filter_setup_head h = {
        .magic = FILTER_SETUP_MAGIC,
        .num = {c->clamd_timeout, c->message_size_limit, c->filter_mime_depth, c->filter_mime_parts,
                c->filter_header_limit, c->filter_archive_depth, c->filter_archive_entries,
                c->filter_archive_expanded},
        .len = {strlen(strs[0]), strlen(strs[1]), strlen(strs[2]), f->sigs_text ? f->sigs_len : 0},
    };
    long long deadline = deadline_now_ms() + 10000;
    if (filter_worker_io(fd, POLLOUT, &h, sizeof h, deadline) < 0)
        return false;
    for (size_t i = 0; i < 4; i++)
        if (h.len[i] && filter_worker_io(fd, POLLOUT, (void *)strs[i], (size_t)h.len[i], deadline) < 0)
            return false;
    return true;
}

/* Reads n bytes (blocking). */
static bool filter_read_all(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

void filter_scanner_child(int fd)
{
    struct filter_setup_head h;
    if (!filter_read_all(fd, &h, sizeof h) || h.magic != FILTER_SETUP_MAGIC)
        _exit(1);
    char *strs[4];
    for (size_t i = 0; i < 4; i++) {
        size_t max = i == 3 ? FILTER_SIGFILE_MAX : FILTER_SETUP_STR_MAX;
        if (h.len[i] > max)
            _exit(1);
        strs[i] = xmalloc((size_t)h.len[i] + 1);
        if (!filter_read_all(fd, strs[i], (size_t)h.len[i]))
            _exit(1);
        strs[i][h.len[i]] = '\0';
    }
    static struct zconf conf; /* lives as long as this process */
    zconf_defaults(&conf, "/");
    free(conf.state_dir);
    conf.state_dir = strs[0];
    free(conf.clamd);
    conf.clamd = strs[1];
    free(conf.banned_extensions);
    conf.banned_extensions = strs[2];
    free(conf.virus_signatures);
    conf.virus_signatures = xstrdup(""); /* the file's bytes came with the setup */
    conf.clamd_timeout = h.num[0];
    conf.message_size_limit = h.num[1];
    conf.filter_mime_depth = h.num[2];
    conf.filter_mime_parts = h.num[3];
    conf.filter_header_limit = h.num[4];
    conf.filter_archive_depth = h.num[5];
    conf.filter_archive_entries = h.num[6];
    conf.filter_archive_expanded = h.num[7];
    static struct filter f;
    struct cfg_error err;
    if (!filter_init(&f, &conf, NULL, &err) ||
        (h.len[3] && !sigscan_db_parse(&f.sigs, "virus_signatures", strs[3], (size_t)h.len[3], &err))) {
        log_warnx("scanner process: %s", err.text);
        _exit(1);
    }
    free(strs[3]);
    f.own_tmp = true;
    filter_worker_main(&f, fd);
    _exit(0);
}

void filter_set_launcher(struct filter *f, struct launcher *l)
{
    f->launcher = l;
}

/* Moves len bytes in the direction events says, within the deadline. 0, or -1 (timeout: errno ETIMEDOUT). */
static int filter_worker_io(int fd, short events, void *buf, size_t len, long long deadline)
{
    size_t done = 0;
    while (done < len) {
        long long left = deadline - deadline_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int pr = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return -1;
        if (pr == 0)
            continue;
        ssize_t r = events == POLLIN ? read(fd, (char *)buf + done, len - done)
                                     : send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EPIPE;
            return -1;
        }
        done += (size_t)r;
    }
    return 0;
}

/* The verdict's strings come from the other process: make sure they end. */
static void filter_verdict_terminate(struct filter_verdict *v)
{
    v->virus[sizeof v->virus - 1] = v->scanner[sizeof v->scanner - 1] = '\0';
    v->banned_ext[sizeof v->banned_ext - 1] = v->banned_name[sizeof v->banned_name - 1] = '\0';
    v->doubt[sizeof v->doubt - 1] = v->tempfail[sizeof v->tempfail - 1] = '\0';
}

/*
 * A scanner process that gave no verdict (its socket closed, or the scan timed out): reaps
 * it (killed first on a timeout) and says why in v. A crash (the signals of a bug, or the CPU
 * limit) is doubtful content, to be quarantined; anything else a temporary failure.
 */
static void filter_worker_failed(struct filter *f, pid_t pid, bool timeout, struct filter_verdict *v)
{
    if (timeout)
        filter_proc_kill(f, pid);
    int status = filter_proc_wait(f, pid);
    memset(v, 0, sizeof *v);
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (!timeout && (sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || sig == SIGFPE || sig == SIGILL ||
                     sig == SIGXCPU))
        snprintf(v->doubt, sizeof v->doubt, "the scanner crashed on it (signal %d)", sig);
    else if (!timeout && sig == SIGSYS) /* the seccomp filter: never delivered unscanned */
        snprintf(v->tempfail, sizeof v->tempfail,
                 "the scanner process (pid %ld) was killed by its system-call filter (SIGSYS): it made a "
                 "forbidden system call; a new one takes over", (long)pid);
    else
        snprintf(v->tempfail, sizeof v->tempfail, "%s", timeout ? "the scan timed out" : "the scanner process failed");
}

/*
 * Scans one message in the scanner process. On a failure of the process the verdict says
 * why: a parser crash (the signals of a bug, or the CPU limit) is doubtful content, to be
 * quarantined; a timeout or anything else is a temporary failure (the message stays queued).
 */
static void filter_scan_isolated(struct filter *f, const char *id, const struct buf *data,
                                 struct filter_verdict *v)
{
    memset(v, 0, sizeof *v);
    if (f->worker_pid <= 0 && !filter_worker_start(f, &f->worker_pid, &f->worker_fd)) {
        snprintf(v->tempfail, sizeof v->tempfail, "cannot start the scanner process: %s", strerror(errno));
        return;
    }
    /* clamd may take clamd_timeout; the built-in scan is bounded by its limits */
    long long deadline = deadline_now_ms() + (long long)(f->conf->clamd_timeout + 30) * 1000;
    struct filter_request req = {.len = data->len};
    if (filter_tmp_make(f, id) == 0)
        snprintf(req.id, sizeof req.id, "%s", id);
    int rc = -1;
    if (filter_worker_io(f->worker_fd, POLLOUT, &req, sizeof req, deadline) == 0 &&
        filter_worker_io(f->worker_fd, POLLOUT, data->data, data->len, deadline) == 0 &&
        filter_worker_io(f->worker_fd, POLLIN, v, sizeof *v, deadline) == 0) {
        filter_verdict_terminate(v);
        rc = 0;
    }
    if (req.id[0])
        filter_tmp_remove(f, id);
    if (rc == 0)
        return;
    bool timeout = errno == ETIMEDOUT;
    pid_t pid = f->worker_pid;
    close(f->worker_fd);
    f->worker_pid = 0;
    f->worker_fd = -1;
    filter_worker_failed(f, pid, timeout, v);
}

/* Acts on one verdict (see filter.h). */
static enum filter_action filter_act(struct filter *f, struct filter_job *job, const struct filter_verdict *v,
                                     bool *notice_r)
{
    const char *id = job->id;
    struct buf text;
    buf_init(&text, 0);
    filter_verdict_text(v, &text);
    enum filter_action action;
    if (filter_verdict_quarantine(v)) {
        char nid[QUEUE_ID_LEN + 1];
        if (filter_queue_notice(f, v, &job->msg, &job->data, nid) < 0) {
            log_warn("%s: filter=deferred (%s; cannot queue the notice)", id, text.data);
            action = FILTER_DEFERRED;
        } else if (filter_move_to_quarantine(f, id, v) < 0) {
            log_warn("%s: filter=deferred (%s; cannot move it to the quarantine)", id, text.data);
            action = FILTER_DEFERRED;
            *notice_r = true;
        } else {
            log_info("%s: filter=quarantined %s, notice=%s to=<%s>", id, text.data, nid,
                     f->conf->filter_admin);
            action = FILTER_QUARANTINED;
            *notice_r = true;
        }
    } else if (v->tempfail[0]) {
        if (f->conf->filter_fail_open) {
            log_warnx("%s: filter=unscanned, delivered anyway (filter_fail_open = yes): %s", id, v->tempfail);
            action = FILTER_PASS;
        } else {
            log_warnx("%s: filter=deferred (%s)", id, v->tempfail);
            action = FILTER_DEFERRED;
        }
    } else {
        /* The mark needs no fsync: losing it in a crash only costs a rescan. */
        if (chmod(job->path, (job->mode & 0777) | S_IXUSR) < 0)
            log_warn("%s: cannot mark as scanned", id);
        log_info("%s: filter=clean", id);
        action = FILTER_PASS;
    }
    buf_free(&text);
    return action;
}

/* Scans and acts on a chunk of loaded jobs. */
static void filter_chunk(struct filter *f, struct filter_job *jobs, size_t n, enum filter_action *out,
                         bool *notice_r)
{
    for (size_t i = 0; i < n; i++) {
        struct filter_verdict v;
        filter_scan_isolated(f, jobs[i].id, &jobs[i].data, &v);
        out[i] = filter_act(f, &jobs[i], &v, notice_r);
    }
}

static void filter_job_free(struct filter_job *job)
{
    free(job->path);
    if (job->loaded)
        queue_msg_free(&job->msg);
    buf_free(&job->data);
    memset(job, 0, sizeof *job);
}

/*
 * Loads msg/ID into job for a scan: true. false when no scan is needed or possible, with
 * the message's fate in *out (filter off or marked scanned: pass; gone; unreadable: deferred).
 */
static bool filter_job_load(struct filter *f, const char *id, struct filter_job *job, enum filter_action *out)
{
    memset(job, 0, sizeof *job);
    buf_init(&job->data, 0);
    job->id = id;
    job->path = filter_join(f->queue->msg_dir, id, "");
    struct stat st;
    if (stat(job->path, &st) < 0) {
        *out = FILTER_GONE;
        filter_job_free(job);
        return false;
    }
    job->mode = st.st_mode;
    if (!f->conf->filter || (st.st_mode & S_IXUSR)) {
        *out = FILTER_PASS; /* filter off, or scanned clean before (or released) */
        filter_job_free(job);
        return false;
    }
    const char *error = NULL;
    if (queue_load(f->queue, id, &job->msg, &error) < 0) {
        if (errno == ENOENT) {
            *out = FILTER_GONE;
        } else {
            log_warnx("%s: filter=deferred (cannot read the queue file: %s)", id, error ? error : "?");
            *out = FILTER_DEFERRED;
        }
        filter_job_free(job);
        return false;
    }
    job->loaded = true;
    if (queue_read_data(&job->msg, &job->data) < 0) {
        log_warn("%s: filter=deferred (cannot read the message)", id);
        *out = FILTER_DEFERRED;
        filter_job_free(job);
        return false;
    }
    return true;
}

void filter_messages(struct filter *f, char *const *ids, size_t n, enum filter_action *out, bool *notice_r)
{
    *notice_r = false;
    struct filter_job *jobs = xcalloc(FILTER_CHUNK_MESSAGES, sizeof *jobs);
    size_t where[FILTER_CHUNK_MESSAGES];
    enum filter_action acts[FILTER_CHUNK_MESSAGES];
    size_t njobs = 0, bytes = 0;
    for (size_t k = 0; k <= n; k++) {
        if (njobs > 0 && (k == n || njobs == FILTER_CHUNK_MESSAGES || bytes >= FILTER_CHUNK_BYTES)) {
            filter_chunk(f, jobs, njobs, acts, notice_r);
            for (size_t i = 0; i < njobs; i++) {
                out[where[i]] = acts[i];
                filter_job_free(&jobs[i]);
            }
            njobs = 0;
            bytes = 0;
        }
        if (k == n)
            break;
        const char *id = ids[k];
        if (!queue_id_valid(id)) {
            out[k] = FILTER_GONE;
            continue;
        }
        struct filter_job *job = &jobs[njobs];
        if (!filter_job_load(f, id, job, &out[k]))
            continue;
        bytes += job->data.len;
        where[njobs++] = k;
    }
    free(jobs);
}

enum filter_action filter_message(struct filter *f, const char *id, bool *notice_r)
{
    char *ids[1] = {(char *)id};
    enum filter_action out = FILTER_GONE;
    filter_messages(f, ids, 1, &out, notice_r);
    return out;
}


/* ---- asynchronous scanning on zolderd's event loop ------------------------------------------ */

/*
 * One scanner process of the pool and the messages queued at it. The process reads one
 * request at a time and answers in order, so zolderd may write the next messages to its
 * socket while it scans (FILTER_PIPELINE_MAX, FILTER_PIPELINE_BYTES): the process never
 * waits for zolderd's loop between two messages, and each verdict belongs to the oldest
 * message without one. When the process fails, that oldest one is the message it was
 * scanning (it gets the failure's verdict); the others were not scanned and wait again,
 * first in line, for the next process.
 */
#define FILTER_PIPELINE_MAX 8
#define FILTER_PIPELINE_BYTES ((size_t)4 * 1024 * 1024) /* queued bytes beyond the first message */

struct filter_inflight {
    char id[QUEUE_ID_LEN + 1];
    struct filter_job job;    /* job.id points at id: entries never move */
};

struct filter_slot {
    struct filter_async *pool;
    pid_t pid;                /* 0: not started (or died; started again on the next message) */
    struct bufferevent *bev;  /* its socket */
    struct event *timer;      /* clamd_timeout + 30 s for the oldest message's scan */
    struct filter_inflight jobs[FILTER_PIPELINE_MAX]; /* a ring: head is being scanned */
    size_t head, count;
    size_t bytes;             /* message bytes queued at the process */
};

static struct filter_inflight *filter_slot_job(struct filter_slot *slot, size_t i)
{
    return &slot->jobs[(slot->head + i) % FILTER_PIPELINE_MAX];
}

struct filter_async {
    struct filter *f;
    struct event_base *base;
    filter_done_fn done;
    void *ctx;
    struct filter_slot *slots;
    size_t nslots;
    char **waiting;           /* ids waiting for a free scanner process, oldest first */
    size_t nwaiting, waiting_head, waiting_cap;
    bool pumping;
    struct filter_done *results; /* verdicts not yet reported (reported outside the pump) */
    size_t nresults;
    char **unmarked_pass;     /* passed unscanned (filter_fail_open): the next submit passes them */
    size_t nunmarked_pass;
};

struct filter_done {
    char *id;
    enum filter_action action;
    bool notice;
};

static void filter_async_pump(struct filter_async *a);

static void filter_async_result(struct filter_async *a, const char *id, enum filter_action action, bool notice)
{
    a->results = xreallocarray(a->results, a->nresults + 1, sizeof *a->results);
    a->results[a->nresults++] = (struct filter_done){xstrdup(id), action, notice};
}

/* Reports the collected verdicts; the callback may submit more (it only queues them). */
static void filter_async_report(struct filter_async *a)
{
    while (a->nresults > 0) {
        struct filter_done *r = a->results;
        size_t n = a->nresults;
        a->results = NULL;
        a->nresults = 0;
        for (size_t i = 0; i < n; i++) {
            a->done(a->ctx, r[i].id, r[i].action, r[i].notice);
            free(r[i].id);
        }
        free(r);
    }
}

/* Puts ids[0..n) back at the front of the waiting line, in their order (they were first). */
static void filter_async_wait_first(struct filter_async *a, char **ids, size_t n)
{
    if (n == 0)
        return;
    if (a->waiting_head < n) {
        size_t left = a->nwaiting - a->waiting_head;
        if (left + n > a->waiting_cap) {
            a->waiting_cap = left + n + 16;
            a->waiting = xreallocarray(a->waiting, a->waiting_cap, sizeof *a->waiting);
        }
        memmove(a->waiting + n, a->waiting + a->waiting_head, left * sizeof *a->waiting);
        a->waiting_head = n;
        a->nwaiting = n + left;
    }
    a->waiting_head -= n;
    memcpy(a->waiting + a->waiting_head, ids, n * sizeof *ids);
}

static void filter_slot_close(struct filter_slot *slot)
{
    if (slot->bev)
        bufferevent_free(slot->bev); /* closes the socket: an idle scanner process exits */
    slot->bev = NULL;
    if (slot->timer)
        evtimer_del(slot->timer);
}

static void filter_slot_arm(struct filter_slot *slot)
{
    struct timeval limit = {(time_t)slot->pool->f->conf->clamd_timeout + 30, 0};
    evtimer_add(slot->timer, &limit);
}

/* The scan of slot's oldest message is over (its verdict, or the process failed): act,
 * report, go on. */
static void filter_slot_finish(struct filter_slot *slot, struct filter_verdict *v)
{
    struct filter_async *a = slot->pool;
    struct filter_inflight *e = filter_slot_job(slot, 0);
    evtimer_del(slot->timer);
    slot->head = (slot->head + 1) % FILTER_PIPELINE_MAX;
    slot->count--;
    slot->bytes -= e->job.data.len;
    if (slot->count > 0)
        filter_slot_arm(slot); /* the next one's scan starts now */
    filter_tmp_remove(a->f, e->id);
    struct stat st;
    bool notice = false;
    enum filter_action action = FILTER_GONE;
    if (stat(e->job.path, &st) == 0) /* held or deleted meanwhile: nothing to act on */
        action = filter_act(a->f, &e->job, v, &notice);
    if (action == FILTER_PASS && (stat(e->job.path, &st) < 0 || !(st.st_mode & S_IXUSR))) {
        /* delivered unscanned (fail open) or the mark failed: passed without a rescan */
        a->unmarked_pass = xreallocarray(a->unmarked_pass, a->nunmarked_pass + 1, sizeof *a->unmarked_pass);
        a->unmarked_pass[a->nunmarked_pass++] = xstrdup(e->id);
    }
    filter_job_free(&e->job);
    filter_async_result(a, e->id, action, notice);
    filter_async_pump(a);
}

static void filter_slot_failed(struct filter_slot *slot, bool timeout)
{
    struct filter_async *a = slot->pool;
    pid_t pid = slot->pid;
    filter_slot_close(slot); /* drops the queued bytes (references into the jobs) first */
    slot->pid = 0;
    /* the others were never scanned: they wait again, first in line */
    char *again[FILTER_PIPELINE_MAX];
    size_t nagain = 0;
    while (slot->count > 1) {
        struct filter_inflight *e = filter_slot_job(slot, slot->count - 1);
        filter_tmp_remove(a->f, e->id);
        slot->bytes -= e->job.data.len;
        filter_job_free(&e->job);
        again[FILTER_PIPELINE_MAX - 1 - nagain++] = xstrdup(e->id);
        slot->count--;
    }
    filter_async_wait_first(a, again + FILTER_PIPELINE_MAX - nagain, nagain);
    struct filter_verdict v;
    filter_worker_failed(a->f, pid, timeout, &v);
    filter_slot_finish(slot, &v);
}

/* Every complete verdict in the input: each belongs to the oldest message without one. */
static void filter_slot_verdicts(struct filter_slot *slot)
{
    struct evbuffer *in = bufferevent_get_input(slot->bev);
    struct filter_verdict v;
    while (slot->bev && slot->count > 0 && evbuffer_get_length(in) >= sizeof v) {
        evbuffer_remove(in, &v, sizeof v);
        filter_verdict_terminate(&v);
        filter_slot_finish(slot, &v); /* may fail the slot (bev gone) via the pump: checked */
    }
}

static void filter_slot_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    filter_slot_verdicts(arg);
}

static void filter_slot_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct filter_slot *slot = arg;
    (void)bev;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    filter_slot_verdicts(slot); /* verdicts read before the end count */
    if (!slot->bev)
        return;
    if (slot->count > 0) {
        filter_slot_failed(slot, false);
        return;
    }
    pid_t pid = slot->pid; /* an idle process went away: reap it, start another when needed */
    filter_slot_close(slot);
    slot->pid = 0;
    filter_proc_wait(slot->pool->f, pid);
}

static void filter_slot_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct filter_slot *slot = arg;
    if (slot->count > 0)
        filter_slot_failed(slot, true);
}

/* Hands the loaded job e to slot's scanner process (started when needed). false: it failed. */
static bool filter_slot_send(struct filter_async *a, struct filter_slot *slot, struct filter_inflight *e)
{
    struct filter *f = a->f;
    if (slot->pid <= 0) {
        int fd;
        if (!filter_worker_start(f, &slot->pid, &fd))
            return false;
        evutil_make_socket_nonblocking(fd);
        slot->bev = bufferevent_socket_new(a->base, fd, BEV_OPT_CLOSE_ON_FREE);
        bufferevent_setcb(slot->bev, filter_slot_read_cb, NULL, filter_slot_event_cb, slot);
        bufferevent_setwatermark(slot->bev, EV_READ, sizeof(struct filter_verdict), 0);
        bufferevent_enable(slot->bev, EV_READ | EV_WRITE);
    }
    struct filter_request req = {.len = e->job.data.len};
    if (filter_tmp_make(f, e->id) == 0)
        snprintf(req.id, sizeof req.id, "%s", e->id);
    struct evbuffer *out = bufferevent_get_output(slot->bev);
    evbuffer_add(out, &req, sizeof req);
    /* the job's bytes stay in place until the verdict: no copy */
    evbuffer_add_reference(out, e->job.data.data, e->job.data.len, NULL, NULL);
    if (slot->count == 0)
        filter_slot_arm(slot);
    slot->count++;
    slot->bytes += e->job.data.len;
    return true;
}

/* The process for the next message: an idle one, else the least loaded that has room. */
static struct filter_slot *filter_async_pick(struct filter_async *a)
{
    struct filter_slot *best = NULL;
    for (size_t i = 0; i < a->nslots; i++) {
        struct filter_slot *slot = &a->slots[i];
        if (slot->count == 0)
            return slot;
        if (slot->count < FILTER_PIPELINE_MAX && slot->bytes < FILTER_PIPELINE_BYTES &&
            (!best || slot->count < best->count))
            best = slot;
    }
    return best;
}

/* Starts scans while a scanner process has room and ids wait. */
static void filter_async_pump(struct filter_async *a)
{
    if (a->pumping)
        return;
    a->pumping = true;
    struct filter_slot *slot;
    while (a->waiting_head < a->nwaiting && (slot = filter_async_pick(a)) != NULL) {
        struct filter_inflight *e = filter_slot_job(slot, slot->count);
        char *id = a->waiting[a->waiting_head++];
        snprintf(e->id, sizeof e->id, "%s", id);
        free(id);
        enum filter_action now = FILTER_GONE;
        if (!filter_job_load(a->f, e->id, &e->job, &now)) {
            filter_async_result(a, e->id, now, false);
        } else if (!filter_slot_send(a, slot, e)) {
            log_warn("%s: filter=deferred (cannot start the scanner process)", e->id);
            filter_job_free(&e->job);
            filter_async_result(a, e->id, FILTER_DEFERRED, false);
        }
    }
    if (a->waiting_head == a->nwaiting) {
        a->waiting_head = a->nwaiting = 0;
    }
    a->pumping = false;
    filter_async_report(a);
}

void filter_async_start(struct filter *f, struct event_base *base, size_t scanners, filter_done_fn done, void *ctx)
{
    struct filter_async *a = xcalloc(1, sizeof *a);
    a->f = f;
    a->base = base;
    a->done = done;
    a->ctx = ctx;
    a->nslots = scanners ? scanners : 1;
    a->slots = xcalloc(a->nslots, sizeof *a->slots);
    for (size_t i = 0; i < a->nslots; i++) {
        a->slots[i].pool = a;
        a->slots[i].timer = evtimer_new(base, filter_slot_timeout_cb, &a->slots[i]);
    }
    f->async = a;
}

static void filter_async_stop(struct filter *f)
{
    struct filter_async *a = f->async;
    if (!a)
        return;
    for (size_t i = 0; i < a->nslots; i++) {
        struct filter_slot *slot = &a->slots[i];
        filter_slot_close(slot);
        if (slot->pid > 0) {
            filter_proc_kill(f, slot->pid);
            filter_proc_wait(f, slot->pid);
        }
        for (size_t k = 0; k < slot->count; k++) { /* stays queued unscanned: the next queue run scans it */
            struct filter_inflight *e = filter_slot_job(slot, k);
            filter_tmp_remove(f, e->id);
            filter_job_free(&e->job);
        }
        event_free(slot->timer);
    }
    for (size_t i = a->waiting_head; i < a->nwaiting; i++)
        free(a->waiting[i]);
    for (size_t i = 0; i < a->nresults; i++)
        free(a->results[i].id);
    for (size_t i = 0; i < a->nunmarked_pass; i++)
        free(a->unmarked_pass[i]);
    free(a->unmarked_pass);
    free(a->results);
    free(a->waiting);
    free(a->slots);
    free(a);
    f->async = NULL;
}

size_t filter_async_in_flight(const struct filter *f)
{
    const struct filter_async *a = f->async;
    if (!a)
        return 0;
    size_t n = a->nwaiting - a->waiting_head;
    for (size_t i = 0; i < a->nslots; i++)
        n += a->slots[i].count;
    return n;
}

static bool filter_async_has(struct filter_async *a, const char *id)
{
    for (size_t i = 0; i < a->nslots; i++) {
        struct filter_slot *slot = &a->slots[i];
        for (size_t k = 0; k < slot->count; k++)
            if (strcmp(filter_slot_job(slot, k)->id, id) == 0)
                return true;
    }
    for (size_t i = a->waiting_head; i < a->nwaiting; i++)
        if (strcmp(a->waiting[i], id) == 0)
            return true;
    return false;
}

enum filter_action filter_submit(struct filter *f, const char *id)
{
    struct filter_async *a = f->async;
    if (!queue_id_valid(id))
        return FILTER_GONE;
    char *path = filter_join(f->queue->msg_dir, id, "");
    struct stat st;
    int rc = stat(path, &st);
    free(path);
    if (rc < 0)
        return FILTER_GONE;
    if (!f->conf->filter || (st.st_mode & S_IXUSR))
        return FILTER_PASS;
    for (size_t i = 0; i < a->nunmarked_pass; i++) {
        if (strcmp(a->unmarked_pass[i], id) == 0) {
            free(a->unmarked_pass[i]);
            a->unmarked_pass[i] = a->unmarked_pass[--a->nunmarked_pass];
            return FILTER_PASS;
        }
    }
    if (filter_async_has(a, id))
        return FILTER_PENDING; /* its verdict is on its way already */
    if (a->nwaiting == a->waiting_cap && a->waiting_head > 0) { /* reuse what was taken */
        memmove(a->waiting, a->waiting + a->waiting_head, (a->nwaiting - a->waiting_head) * sizeof *a->waiting);
        a->nwaiting -= a->waiting_head;
        a->waiting_head = 0;
    }
    if (a->nwaiting == a->waiting_cap) {
        a->waiting_cap = a->waiting_cap ? a->waiting_cap * 2 : 16;
        a->waiting = xreallocarray(a->waiting, a->waiting_cap, sizeof *a->waiting);
    }
    a->waiting[a->nwaiting++] = xstrdup(id);
    filter_async_pump(a);
    return FILTER_PENDING;
}

/* ---- the quarantine ------------------------------------------------------------------------- */

static char *quarantine_dir(const char *state_dir)
{
    return filter_join(state_dir, "quarantine", "");
}

char *quarantine_path(const char *state_dir, const char *id)
{
    if (!queue_id_valid(id))
        return NULL;
    char *dir = quarantine_dir(state_dir);
    char *p = filter_join(dir, id, "");
    free(dir);
    return p;
}

static int quarantine_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int quarantine_list(const char *state_dir, char ***ids_r, size_t *n_r)
{
    *ids_r = NULL;
    *n_r = 0;
    char *dir = quarantine_dir(state_dir);
    DIR *d = opendir(dir);
    free(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!queue_id_valid(de->d_name))
            continue;
        *ids_r = xreallocarray(*ids_r, *n_r + 1, sizeof **ids_r);
        (*ids_r)[(*n_r)++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (*n_r)
        qsort(*ids_r, *n_r, sizeof **ids_r, quarantine_cmp);
    return 0;
}

int quarantine_verdict(const char *state_dir, const char *id, struct buf *out)
{
    if (!queue_id_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    char *dir = quarantine_dir(state_dir);
    char *p = filter_join(dir, id, ".verdict");
    free(dir);
    char *data;
    size_t len;
    int rc = fs_read_file(p, 4096, &data, &len);
    free(p);
    if (rc < 0)
        return -1;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    buf_append(out, data, len);
    free(data);
    return 0;
}

int quarantine_release(const char *state_dir, const char *id)
{
    char *src = quarantine_path(state_dir, id);
    if (!src) {
        errno = EINVAL;
        return -1;
    }
    char *dir = quarantine_dir(state_dir);
    char *msgdir = filter_join(state_dir, "queue/msg", "");
    char *dst = filter_join(msgdir, id, "");
    char *vpath = filter_join(dir, id, ".verdict");
    int rc = -1;
    /* The scanned mark first, durably: the released message must not be quarantined again. */
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (fchmod(fd, 0700) == 0 && fsync(fd) == 0 && link(src, dst) == 0 &&
            fs_fsync_dir(msgdir) == 0 && unlink(src) == 0) {
            unlink(vpath);
            rc = fs_fsync_dir(dir);
        }
        int e = errno;
        close(fd);
        errno = e;
    }
    free(src);
    free(dir);
    free(msgdir);
    free(dst);
    free(vpath);
    return rc;
}

int quarantine_delete(const char *state_dir, const char *id)
{
    char *p = quarantine_path(state_dir, id);
    if (!p) {
        errno = EINVAL;
        return -1;
    }
    char *dir = quarantine_dir(state_dir);
    char *vpath = filter_join(dir, id, ".verdict");
    int rc = unlink(p);
    if (rc == 0) {
        unlink(vpath);
        rc = fs_fsync_dir(dir);
    }
    free(p);
    free(vpath);
    free(dir);
    return rc;
}
