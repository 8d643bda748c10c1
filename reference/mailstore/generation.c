/*
 * generation: shared immutable message lists and change watchers (see generation.h).
 */
#include "generation.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mailstore.h"
#include "xalloc.h"

struct mailstore_watcher {
    struct mailstore_watcher *next;
    struct generation_box *box;
    mailstore_watch_fn fn;
    void *arg;
};

/* One mailbox: its current generation and its watchers. */
struct generation_box {
    struct generation_box *next;
    char *mbox_path;
    struct mailstore_gen *current;   /* holds one reference */
    struct mailstore_watcher *watchers;
    uint32_t recent; /* the \Recent boundary (generation.h), 0: not known */
};

static struct generation_box *generation_boxes;
static unsigned long long generation_serial;

struct mailstore_gen *mailstore_gen_ref(struct mailstore_gen *g)
{
    if (g)
        g->refs++;
    return g;
}

void mailstore_gen_unref(struct mailstore_gen *g)
{
    if (!g || --g->refs > 0)
        return;
    free(g->msgs);
    free(g);
}

size_t mailstore_gen_index(const struct mailstore_gen *g, uint32_t uid)
{
    size_t lo = 0, hi = g ? g->nmsgs : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->msgs[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return g && lo < g->nmsgs && g->msgs[lo].uid == uid ? lo : (size_t)-1;
}

const struct mailstore_msg *mailstore_gen_find(const struct mailstore_gen *g, uint32_t uid)
{
    size_t i = mailstore_gen_index(g, uid);
    return i == (size_t)-1 ? NULL : &g->msgs[i];
}

static void generation_box_free(struct generation_box *b)
{
    while (b->watchers) {
        struct mailstore_watcher *w = b->watchers;
        b->watchers = w->next;
        free(w);
    }
    mailstore_gen_unref(b->current);
    free(b->mbox_path);
    free(b);
}

/*
 * The key of a mailbox: its path with "//" and "/./" folded, so that delivery's and the mail
 * store's spellings of one file meet. (Symbolic links are not resolved.)
 */
static struct generation_box *generation_box_find(const char *mbox_path, bool create);

static char *generation_key(const char *path)
{
    size_t n = strlen(path);
    char *k = xmalloc(n + 1), *o = k;
    for (const char *p = path; *p;) {
        if (p[0] == '/' && (p[1] == '/' || (p[1] == '.' && p[2] == '/'))) {
            p += p[1] == '/' ? 1 : 2;
            continue;
        }
        *o++ = *p++;
    }
    *o = '\0';
    return k;
}

/* The box of this mailbox, moved to the front; create: made when missing (else NULL). */
static struct generation_box *generation_box_get(const char *mbox_path, bool create)
{
    char *key = generation_key(mbox_path);
    struct generation_box *b = generation_box_find(key, create);
    free(key);
    return b;
}

static struct generation_box *generation_box_find(const char *mbox_path, bool create)
{
    struct generation_box **pp = &generation_boxes, *b;
    size_t count = 0;
    for (; (b = *pp) != NULL; pp = &b->next, count++)
        if (strcmp(b->mbox_path, mbox_path) == 0) {
            *pp = b->next;
            b->next = generation_boxes;
            generation_boxes = b;
            return b;
        }
    if (!create)
        return NULL;
    if (count >= GENERATION_MAILBOXES_MAX) {
        /* forget the least recently used box nobody watches (sessions keep their references) */
        struct generation_box **victim = NULL;
        for (pp = &generation_boxes; *pp; pp = &(*pp)->next)
            if (!(*pp)->watchers)
                victim = pp;
        if (victim) {
            b = *victim;
            *victim = b->next;
            generation_box_free(b);
        }
    }
    b = xcalloc(1, sizeof *b);
    b->mbox_path = xstrdup(mbox_path);
    b->next = generation_boxes;
    generation_boxes = b;
    return b;
}

static bool generation_stamp_eq(const struct mailstore_stamp *a, const struct mailstore_stamp *b)
{
    return a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

/* Field by field: padding bytes need not match. */
static bool generation_same_list(const struct mailstore_msg *a, const struct mailstore_msg *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].uid != b[i].uid || a[i].offset != b[i].offset || a[i].span != b[i].span ||
            a[i].from_len != b[i].from_len || a[i].content_len != b[i].content_len || a[i].size != b[i].size ||
            a[i].lines != b[i].lines || a[i].flags != b[i].flags || a[i].keywords != b[i].keywords ||
            a[i].internaldate != b[i].internaldate || a[i].modseq != b[i].modseq ||
            memcmp(a[i].hash, b[i].hash, sizeof a[i].hash) != 0)
            return false;
    return true;
}

static void generation_call_watchers(struct generation_box *b)
{
    /* a callback only schedules work (generation.h), so the list cannot change under us */
    for (struct mailstore_watcher *w = b->watchers; w; w = w->next)
        w->fn(w->arg);
}

struct mailstore_gen *mailstore_gen_publish(const char *mbox_path, uint32_t uidvalidity, uint32_t uidnext,
                                            unsigned long long highestmodseq, struct mailstore_msg *msgs, size_t n,
                                            const struct mailstore_stamp *mbox,
                                            const struct mailstore_stamp *index,
                                            const struct mailstore_stamp *journal)
{
    struct generation_box *b = generation_box_get(mbox_path, true);
    struct mailstore_gen *c = b->current;
    if (c && c->uidvalidity == uidvalidity && c->uidnext == uidnext && c->highestmodseq == highestmodseq &&
        c->nmsgs == n &&
        generation_stamp_eq(&c->mbox, mbox) && generation_stamp_eq(&c->index, index) &&
        generation_stamp_eq(&c->journal, journal) &&
        generation_same_list(c->msgs, msgs, n)) {
        free(msgs);
        return mailstore_gen_ref(c);
    }
    struct mailstore_gen *g = xcalloc(1, sizeof *g);
    g->refs = 1; /* the box's */
    g->serial = ++generation_serial;
    g->uidvalidity = uidvalidity;
    g->uidnext = uidnext;
    g->highestmodseq = highestmodseq;
    g->msgs = msgs;
    g->nmsgs = n;
    g->mbox = *mbox;
    g->index = *index;
    g->journal = *journal;
    /* the same list under new stamps (a flag rewrite elsewhere, a touched file) is not news */
    bool news = !c || c->uidvalidity != uidvalidity || c->uidnext != uidnext || c->highestmodseq != highestmodseq ||
                c->nmsgs != n ||
                !generation_same_list(c->msgs, msgs, n);
    b->current = g;
    mailstore_gen_unref(c);
    if (news)
        generation_call_watchers(b);
    return mailstore_gen_ref(g);
}

struct mailstore_gen *mailstore_gen_current(const char *mbox_path)
{
    char *key = generation_key(mbox_path);
    struct generation_box *b = generation_boxes;
    while (b && strcmp(b->mbox_path, key) != 0)
        b = b->next;
    free(key);
    return b ? b->current : NULL;
}

uint32_t mailstore_gen_recent(const char *mbox_path)
{
    struct generation_box *b = generation_box_get(mbox_path, false);
    return b ? b->recent : 0;
}

void mailstore_gen_set_recent(const char *mbox_path, uint32_t first_unclaimed)
{
    generation_box_get(mbox_path, true)->recent = first_unclaimed;
}

void mailstore_gen_clear(void)
{
    while (generation_boxes) {
        struct generation_box *b = generation_boxes;
        generation_boxes = b->next;
        generation_box_free(b);
    }
}

void *mailstore_watch(const char *mbox_path, mailstore_watch_fn fn, void *arg)
{
    struct generation_box *b = generation_box_get(mbox_path, true);
    struct mailstore_watcher *w = xcalloc(1, sizeof *w);
    w->box = b;
    w->fn = fn;
    w->arg = arg;
    w->next = b->watchers;
    b->watchers = w;
    return w;
}

void mailstore_unwatch(void *handle)
{
    struct mailstore_watcher *w = handle;
    if (!w)
        return;
    for (struct mailstore_watcher **pp = &w->box->watchers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    free(w);
}

void mailstore_notify_changed(const char *mbox_path)
{
    struct generation_box *b = generation_box_get(mbox_path, false);
    if (b)
        generation_call_watchers(b);
}

void mailstore_gen_adopt(struct mailstore *ms, struct mailstore_gen *g)
{
    mailstore_gen_unref(ms->gen);
    ms->gen = g;
    ms->msgs = g->msgs;
    ms->nmsgs = g->nmsgs;
    ms->uidnext = g->uidnext;
    ms->highestmodseq = g->highestmodseq;
}
