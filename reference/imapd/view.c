/*
 * view: the generation an IMAP session last reported, and the merge to a newer one
 * (see view.h).
 *
 * STANDARDS
 *   RFC 3501 7.3.1 (EXISTS), 7.4.1 (EXPUNGE: sequence numbers of the later ones already
 *   account for the earlier; not during FETCH, STORE, SEARCH), 7.4.2 (unsolicited FETCH);
 *   RFC 2180 4.1; RFC 7162 3.2.10 (VANISHED), 3.2.5.2 (message sequence match data).
 */
#include "view.h"

#include <stdlib.h>
#include <string.h>

#include "mbox_flags.h"
#include "xalloc.h"

void imapd_view_open(struct imapd_view *v, struct mailstore_gen *g)
{
    imapd_view_close(v);
    v->shown = mailstore_gen_ref(g);
}

void imapd_view_close(struct imapd_view *v)
{
    mailstore_gen_unref(v->shown);
    free(v->ahead);
    memset(v, 0, sizeof *v);
}

static const struct imapd_ahead *imapd_view_ahead(const struct imapd_view *v, uint32_t uid)
{
    for (size_t k = 0; k < v->nahead; k++)
        if (v->ahead[k].uid == uid)
            return &v->ahead[k];
    return NULL;
}

void imapd_view_flags(const struct imapd_view *v, size_t i, unsigned *flags_r, uint32_t *keywords_r)
{
    const struct mailstore_msg *m = &v->shown->msgs[i];
    const struct imapd_ahead *a = v->nahead ? imapd_view_ahead(v, m->uid) : NULL;
    *flags_r = a ? a->flags : m->flags;
    *keywords_r = a ? a->keywords : m->keywords;
}

void imapd_view_told(struct imapd_view *v, uint32_t uid, unsigned flags, uint32_t keywords)
{
    struct imapd_ahead *a = (struct imapd_ahead *)imapd_view_ahead(v, uid);
    if (!a) {
        if (v->nahead >= IMAPD_AHEAD_MAX)
            return; /* told again by the next merge (view.h LIMITS) */
        if (!v->ahead)
            v->ahead = xreallocarray(NULL, IMAPD_AHEAD_MAX, sizeof *v->ahead);
        a = &v->ahead[v->nahead++];
        a->uid = uid;
    }
    a->flags = flags;
    a->keywords = keywords;
}

void imapd_view_add_recent(struct imapd_view *v, uint32_t lo, uint32_t hi)
{
    if (lo >= hi)
        return;
    if (v->nrecent && v->recent_hi[v->nrecent - 1] == lo) {
        v->recent_hi[v->nrecent - 1] = hi; /* claims follow each other: one range */
        return;
    }
    if (v->nrecent == IMAPD_RECENT_RANGES) {
        memmove(v->recent_lo, v->recent_lo + 1, (IMAPD_RECENT_RANGES - 1) * sizeof *v->recent_lo);
        memmove(v->recent_hi, v->recent_hi + 1, (IMAPD_RECENT_RANGES - 1) * sizeof *v->recent_hi);
        v->nrecent--;
    }
    v->recent_lo[v->nrecent] = lo;
    v->recent_hi[v->nrecent++] = hi;
}

bool imapd_view_is_recent(const struct imapd_view *v, uint32_t uid)
{
    for (size_t k = 0; k < v->nrecent; k++)
        if (uid >= v->recent_lo[k] && uid < v->recent_hi[k])
            return true;
    return false;
}

size_t imapd_view_recent_count(const struct imapd_view *v)
{
    size_t count = 0;
    for (size_t k = 0; k < v->nrecent && v->shown; k++) {
        /* the view's messages in [lo, hi): by position, the UIDs ascend */
        size_t lo = 0, hi = v->shown->nmsgs;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (v->shown->msgs[mid].uid < v->recent_lo[k])
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t i = lo; i < v->shown->nmsgs && v->shown->msgs[i].uid < v->recent_hi[k]; i++)
            count++;
    }
    return count;
}

static int imapd_view_uid_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void imapd_flag_list(const struct mailstore *ms, unsigned flags, uint32_t keywords, struct buf *b)
{
    static const struct {
        unsigned bit;
        const char *name;
    } sys[] = {{MBOX_FLAG_SEEN, "\\Seen"},       {MBOX_FLAG_ANSWERED, "\\Answered"}, {MBOX_FLAG_FLAGGED, "\\Flagged"},
               {MBOX_FLAG_DELETED, "\\Deleted"}, {MBOX_FLAG_DRAFT, "\\Draft"},       {IMAPD_FLAG_RECENT, "\\Recent"}};
    size_t start = b->len;
    buf_append_char(b, '(');
    /* no printf: FETCH 1:* (FLAGS) lists every message's */
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
        if (flags & sys[i].bit) {
            if (b->len > start + 1)
                buf_append_char(b, ' ');
            buf_append_str(b, sys[i].name);
        }
    for (size_t k = 0; k < ms->nkeywords; k++)
        if (keywords & (1u << k)) {
            if (b->len > start + 1)
                buf_append_char(b, ' ');
            buf_append_str(b, ms->keyword[k]);
        }
    buf_append_char(b, ')');
}

/* Appends the run [lo, hi] to a uid-set being written ("" before the first, "," after). */
static void imapd_uid_run(struct buf *out, bool *any, uint32_t lo, uint32_t hi)
{
    buf_printf(out, "%s%u", *any ? "," : "", lo);
    if (hi != lo)
        buf_printf(out, ":%u", hi);
    *any = true;
}

/*
 * RFC 7162 3.2.10: the UIDs of the view that latest lacks, as one "* VANISHED uid-set" line
 * (runs of consecutive UIDs, all of them in the view, become lo:hi). Nothing when none.
 */
static void imapd_view_vanished(const struct mailstore_gen *old, const struct mailstore_gen *latest, struct buf *out)
{
    size_t nold = old ? old->nmsgs : 0, ncur = latest->nmsgs;
    bool any = false;
    uint32_t run_lo = 0, run_hi = 0;
    struct buf set;
    buf_init(&set, 0);
    for (size_t i = 0, j = 0; i < nold; i++) {
        uint32_t uid = old->msgs[i].uid;
        while (j < ncur && latest->msgs[j].uid < uid)
            j++;
        if (j < ncur && latest->msgs[j].uid == uid)
            continue;
        if (run_hi && uid == run_hi + 1) {
            run_hi = uid;
            continue;
        }
        if (run_hi)
            imapd_uid_run(&set, &any, run_lo, run_hi);
        run_lo = run_hi = uid;
    }
    if (run_hi)
        imapd_uid_run(&set, &any, run_lo, run_hi);
    if (any)
        buf_printf(out, "* VANISHED %s\r\n", set.data);
    buf_free(&set);
}

bool imapd_view_merge(struct imapd_view *v, struct mailstore_gen *latest, bool allow_expunge,
                      const struct mailstore *ms, const uint32_t *skip, size_t nskip, bool with_modseq,
                      bool vanished, struct buf *out)
{
    if (!latest || latest == v->shown)
        return false;
    const struct mailstore_gen *old = v->shown;
    const struct mailstore_msg *cur = latest->msgs;
    size_t nold = old ? old->nmsgs : 0, ncur = latest->nmsgs;
    if (!allow_expunge) {
        /* RFC 2180 4.1: when the client may not hear of an expunge yet, stay where we are */
        for (size_t i = 0, j = 0; i < nold; i++) {
            while (j < ncur && cur[j].uid < old->msgs[i].uid)
                j++;
            if (j == ncur || cur[j].uid != old->msgs[i].uid)
                return false;
        }
    }
    if (vanished)
        imapd_view_vanished(old, latest, out); /* first: the FETCHes below use the numbers after it */
    size_t nn = 0, j = 0;
    uint32_t maxold = nold ? old->msgs[nold - 1].uid : 0;
    for (size_t i = 0; i < nold; i++) {
        uint32_t uid = old->msgs[i].uid;
        while (j < ncur && cur[j].uid < uid)
            j++;
        if (j == ncur || cur[j].uid != uid) {
            if (!vanished)
                buf_printf(out, "* %zu EXPUNGE\r\n", nn + 1);
            continue;
        }
        unsigned told;
        uint32_t told_kw;
        imapd_view_flags(v, i, &told, &told_kw);
        bool skipped = nskip && bsearch(&uid, skip, nskip, sizeof *skip, imapd_view_uid_cmp);
        if (!skipped && ((cur[j].flags & MBOX_FLAGS_IMAP) != (told & MBOX_FLAGS_IMAP) || cur[j].keywords != told_kw)) {
            buf_printf(out, "* %zu FETCH (UID %u FLAGS ", nn + 1, uid);
            imapd_flag_list(ms, cur[j].flags | (imapd_view_is_recent(v, uid) ? IMAPD_FLAG_RECENT : 0), cur[j].keywords,
                            out);
            if (with_modseq)
                buf_printf(out, " MODSEQ (%llu)", cur[j].modseq);
            buf_append_str(out, ")\r\n");
        }
        nn++;
        j++;
    }
    size_t before = nn;
    for (; j < ncur; j++)
        if (cur[j].uid > maxold)
            nn++;
    bool exists = nn > before || nn != nold;
    if (exists)
        buf_printf(out, "* %zu EXISTS\r\n", nn);
    mailstore_gen_unref(v->shown);
    v->shown = mailstore_gen_ref(latest);
    if (exists)
        buf_printf(out, "* %zu RECENT\r\n", imapd_view_recent_count(v));
    free(v->ahead);
    v->ahead = NULL;
    v->nahead = 0;
    return true;
}

/* ---- QRESYNC: UID sets as ranges -------------------------------------------------------------- */

static int imapd_range_cmp(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

void imapd_uidset_make(struct imapd_uidset *u, const struct imap_seqset *set, uint32_t star, uint32_t min,
                       uint32_t max)
{
    memset(u, 0, sizeof *u);
    if (set->n == 0 || min > max)
        return;
    uint32_t(*r)[2] = xreallocarray(NULL, set->n, sizeof *r);
    size_t n = 0;
    for (size_t i = 0; i < set->n; i++) {
        uint32_t lo, hi;
        imap_seq_range_bounds(&set->ranges[i], star, &lo, &hi);
        if (lo < min)
            lo = min;
        if (hi > max)
            hi = max;
        if (lo > hi)
            continue;
        r[n][0] = lo;
        r[n][1] = hi;
        n++;
    }
    qsort(r, n, sizeof *r, imapd_range_cmp);
    u->lo = xreallocarray(NULL, n ? n : 1, sizeof *u->lo);
    u->hi = xreallocarray(NULL, n ? n : 1, sizeof *u->hi);
    for (size_t i = 0; i < n; i++) {
        /* overlapping or adjacent: one range (64-bit: hi + 1 may pass UINT32_MAX) */
        if (u->n && (uint64_t)r[i][0] <= (uint64_t)u->hi[u->n - 1] + 1) {
            if (r[i][1] > u->hi[u->n - 1])
                u->hi[u->n - 1] = r[i][1];
            continue;
        }
        u->lo[u->n] = r[i][0];
        u->hi[u->n++] = r[i][1];
    }
    free(r);
}

void imapd_uidset_free(struct imapd_uidset *u)
{
    free(u->lo);
    free(u->hi);
    memset(u, 0, sizeof *u);
}

bool imapd_uidset_has(const struct imapd_uidset *u, uint32_t uid)
{
    size_t lo = 0, hi = u->n; /* the first range ending at or after uid */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u->hi[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < u->n && u->lo[lo] <= uid;
}

bool imapd_uidset_missing(const struct imapd_uidset *u, const struct mailstore_gen *g, struct buf *out)
{
    bool any = false;
    size_t n = g ? g->nmsgs : 0;
    for (size_t k = 0; k < u->n; k++) {
        /* the first message at or after the range's start */
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (g->msgs[mid].uid < u->lo[k])
                lo = mid + 1;
            else
                hi = mid;
        }
        uint64_t next = u->lo[k]; /* the first UID of the range not yet accounted for */
        for (size_t i = lo; i < n && g->msgs[i].uid <= u->hi[k]; i++) {
            if (g->msgs[i].uid > next)
                imapd_uid_run(out, &any, (uint32_t)next, g->msgs[i].uid - 1);
            next = (uint64_t)g->msgs[i].uid + 1;
        }
        if (next <= u->hi[k])
            imapd_uid_run(out, &any, (uint32_t)next, u->hi[k]);
    }
    return any;
}

/* Walks a parsed (ascending, '*'-free) set value by value: *at is the current value. */
struct imapd_set_walk {
    const struct imap_seqset *set;
    size_t k;
    uint64_t at;
};

static bool imapd_walk_next(struct imapd_set_walk *w)
{
    if (w->k >= w->set->n)
        return false;
    if (w->at < w->set->ranges[w->k].hi) {
        w->at++;
        return true;
    }
    if (++w->k >= w->set->n)
        return false;
    w->at = w->set->ranges[w->k].lo;
    return true;
}

uint32_t imapd_seq_match_floor(const struct imap_seqset *seqs, const struct imap_seqset *uids,
                               const struct mailstore_gen *g)
{
    if (seqs->n == 0 || uids->n == 0 || !g)
        return 1;
    struct imapd_set_walk s = {seqs, 0, seqs->ranges[0].lo}, u = {uids, 0, uids->ranges[0].lo};
    uint32_t floor = 1;
    do {
        /* sequence numbers ascend: past the mailbox's end, none can match any more */
        if (s.at == 0 || s.at > g->nmsgs || g->msgs[s.at - 1].uid != u.at)
            break;
        floor = u.at >= UINT32_MAX ? UINT32_MAX : (uint32_t)u.at + 1;
    } while (imapd_walk_next(&s) && imapd_walk_next(&u));
    return floor;
}
