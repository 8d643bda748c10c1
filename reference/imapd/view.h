/*
 * view: what an IMAP session has told its client about the selected mailbox, as a shared
 * mail store generation (reference/mailstore/generation.h) instead of a copy.
 *
 * DESCRIPTION
 *   The view is the generation last reported to the client: its messages in UID order are
 *   the client's sequence numbers, its flags the flags last told. Flags told since then
 *   (a STORE's FETCH, the \Seen a FETCH sets) are kept in a short "ahead" list so that the
 *   next merge does not tell them twice. imapd_view_merge compares the view with a newer
 *   generation and writes the untagged EXPUNGE, FETCH (FLAGS) and EXISTS responses
 *   (RFC 3501 7.3.1, 7.4.1, 7.4.2) that take the client there, then holds the newer one.
 *   Where EXPUNGE may not be sent (during FETCH, STORE and SEARCH, RFC 3501 7.4.1 and
 *   RFC 2180 4.1) and the newer generation lacks a message the client knows, the view stays
 *   on its generation: nothing is told until a command where EXPUNGE is allowed. A message
 *   of the view that is not in the newest generation is "gone" (its data may be unreadable).
 *
 *   Per session this is one reference and at most IMAPD_AHEAD_MAX ahead entries, freed at
 *   each merge: an idle selected session costs O(1) memory whatever the mailbox's size.
 *
 *   With QRESYNC enabled (RFC 7162 3.2.10) the merge tells expunges as one "VANISHED uid-set"
 *   before the FETCHes instead of an EXPUNGE each. The imapd_uidset functions serve QRESYNC's
 *   VANISHED (EARLIER): a client's UID set made into sorted, merged ranges (never one entry a
 *   UID: "1:4294967295" is one range) and the UIDs of it a generation lacks, as ranges.
 *
 *   \Recent: the UIDs this session claimed (mailstore_recent_claim) at SELECT and when it
 *   was told of new messages, as at most IMAPD_RECENT_RANGES ranges; "* n RECENT" follows
 *   every EXISTS.
 *
 * LIMITS
 *   A session that claimed new messages more than IMAPD_RECENT_RANGES times with other
 *   sessions' claims in between loses \Recent on its oldest range.
 *   Flags told ahead of the view beyond IMAPD_AHEAD_MAX messages (a STORE on more messages
 *   while an expunge by another session is pending) are told again by the next merge: a
 *   duplicate untagged FETCH, which RFC 3501 7.4.2 allows.
 */
#ifndef ZOLDER_IMAPD_VIEW_H
#define ZOLDER_IMAPD_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "imap_cmd.h"
#include "mailstore/mailstore.h"

#define IMAPD_AHEAD_MAX 256
#define IMAPD_RECENT_RANGES 8
#define IMAPD_FLAG_RECENT 0x10000u /* with the MBOX_FLAG_* bits: imapd_flag_list says \Recent */

struct imapd_ahead {
    uint32_t uid;
    uint32_t keywords;
    unsigned flags;
};

struct imapd_view {
    struct mailstore_gen *shown; /* the generation last reported (a reference), NULL: none */
    struct imapd_ahead *ahead;   /* flags told since, per UID */
    size_t nahead;
    /* the UIDs that are \Recent for this session (RFC 3501 2.3.2): [lo, hi) ranges */
    uint32_t recent_lo[IMAPD_RECENT_RANGES], recent_hi[IMAPD_RECENT_RANGES];
    size_t nrecent;
};

/* Starts the view at g (a reference of its own is taken). */
void imapd_view_open(struct imapd_view *v, struct mailstore_gen *g);
void imapd_view_close(struct imapd_view *v);

static inline size_t imapd_view_count(const struct imapd_view *v)
{
    return v->shown ? v->shown->nmsgs : 0;
}

/* UID of sequence number i + 1. */
static inline uint32_t imapd_view_uid(const struct imapd_view *v, size_t i)
{
    return v->shown->msgs[i].uid;
}

/* The highest UID the client knows (0: none): '*' in a UID set. */
static inline uint32_t imapd_view_max_uid(const struct imapd_view *v)
{
    return imapd_view_count(v) ? v->shown->msgs[v->shown->nmsgs - 1].uid : 0;
}

/* The flags last told for sequence number i + 1. */
void imapd_view_flags(const struct imapd_view *v, size_t i, unsigned *flags_r, uint32_t *keywords_r);
/* \Recent: adds UIDs [lo, hi) for this session; is uid one; how many of the view are. */
void imapd_view_add_recent(struct imapd_view *v, uint32_t lo, uint32_t hi);
bool imapd_view_is_recent(const struct imapd_view *v, uint32_t uid);
size_t imapd_view_recent_count(const struct imapd_view *v);
/* Records flags told for uid ahead of the view (see LIMITS). */
void imapd_view_told(struct imapd_view *v, uint32_t uid, unsigned flags, uint32_t keywords);

/*
 * Brings the view to latest, appending the untagged responses to out (see DESCRIPTION).
 * FETCH (FLAGS) is not written for the UIDs in skip (sorted; the caller tells those itself);
 * with_modseq: it carries MODSEQ (RFC 7162, once the client enabled CONDSTORE); vanished:
 * expunges are told as "* VANISHED uid-set" (RFC 7162 3.2.10, once it enabled QRESYNC).
 * False when the view stayed where it was.
 */
bool imapd_view_merge(struct imapd_view *v, struct mailstore_gen *latest, bool allow_expunge,
                      const struct mailstore *ms, const uint32_t *skip, size_t nskip, bool with_modseq,
                      bool vanished, struct buf *out);

/* A set of UIDs as ascending, disjoint, non-adjacent [lo[k], hi[k]] ranges (QRESYNC). */
struct imapd_uidset {
    uint32_t *lo, *hi;
    size_t n;
};

/*
 * The UIDs of set ('*' is star, a range may be written backwards) within [min, max]: at most
 * set->n ranges, whatever the numbers. min > max gives the empty set.
 */
void imapd_uidset_make(struct imapd_uidset *u, const struct imap_seqset *set, uint32_t star, uint32_t min,
                       uint32_t max);
void imapd_uidset_free(struct imapd_uidset *u);
bool imapd_uidset_has(const struct imapd_uidset *u, uint32_t uid);
/*
 * Appends the UIDs of u that g (NULL: none) does not hold as a uid-set ("3:5,9"); false when
 * there are none. O(u->n log g->nmsgs + the messages of g inside u).
 */
bool imapd_uidset_missing(const struct imapd_uidset *u, const struct mailstore_gen *g, struct buf *out);
/*
 * RFC 7162 3.2.5.2 (message sequence match data): pairs of a sequence number and a UID,
 * taken in order (both sets ascending and of one size, as imap_cmd parses them), are checked
 * against g until the first that does not match (or names no message of g); the client then
 * knows every expunge up to the last matching UID. Returns that UID + 1 (1 when none matched):
 * the lowest UID a VANISHED (EARLIER) needs to name. At most g->nmsgs + 1 pairs are looked at.
 */
uint32_t imapd_seq_match_floor(const struct imap_seqset *seqs, const struct imap_seqset *uids,
                               const struct mailstore_gen *g);

/* "(\Seen \Flagged kw...)" with ms's keyword names. */
void imapd_flag_list(const struct mailstore *ms, unsigned flags, uint32_t keywords, struct buf *b);

#endif
