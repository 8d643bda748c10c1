/*
 * mailstore: a mailbox as POP3 and IMAP see it: the user's INBOX, the mbox spool file that
 * local delivery writes (STATE_DIR/spool/mail/USER) or, with mailbox_format = maildir, its
 * Maildir (STATE_DIR/maildir/USER, see "Maildir" below), or an IMAP folder (an mbox file
 * under the user's mail_dir, reference/imapd/folders.h), with stable UIDs kept in an index
 * file (STATE_DIR/index/USER/INBOX for INBOX; folders.h names the others).
 *
 * DESCRIPTION
 *   Locks are the ones delivery takes (deliver/local.h: dotlock USER.lock with our PID, then
 *   an fcntl lock), held only while a call reads or rewrites the file, never between calls:
 *   an open session never blocks delivery, and mutt and procmail are kept out while we read.
 *
 *   Opening scans the whole mbox (mbox_read.h) and hashes each message's identifying bytes
 *   (From_ line and content, without the Status/X-Status/X-Keywords/X-UID... fields mail
 *   readers rewrite). The index holds UIDVALIDITY, UIDNEXT and per message its UID, offset,
 *   span and hash. Messages are matched to index entries by hash, in mailbox order, UIDs
 *   strictly ascending: a mailbox rewritten behind our back (mutt, a file moved into the
 *   spool) keeps the UIDs of unchanged messages; changed or new ones get new UIDs. A missing
 *   or unreadable index is rebuilt with a new UIDVALIDITY.
 *
 *   The process keeps one cache per mailbox (mailstore.c), shared by every IMAP and POP3
 *   session: the last scan with the spool file's inode, size and mtime, and the last index
 *   read or written with the index file's. Under the locks, a file unchanged by that stamp is
 *   not read again; one that only grew (same inode) is scanned from its last known message on,
 *   after checking that its first and last known messages still hash the same; anything else
 *   (mutt's rewrite, a moved-in file, an in-place edit) is scanned and hashed whole. An
 *   unchanged index is not parsed again. After an expunge the new file's scan comes from what
 *   was written (only messages whose flag headers were rewritten are scanned).
 *
 *   Message lists are shared, immutable generations (generation.h): every call that reads the
 *   mailbox under the lock publishes what it found as the mailbox's current generation (or
 *   shares the current one when it is the same), and ms->gen holds a reference to the newest
 *   this mailstore has taken (ms->msgs and ms->nmsgs are its list). A session costs two
 *   pointers, not a copy: an IMAP session points at the generation it last reported, a POP3
 *   session at its login generation (the maildrop as at login). mailstore_open and
 *   mailstore_refresh take the current generation without the lock and without reading when
 *   the spool file, the index and its journal still carry the stamps it was read at (so does
 *   mailstore_write_flags, which then has nothing to write when no flag is waiting for the
 *   mbox headers); mailstore_changed says so when another session published one.
 *   Changes made in this process reach the sessions in IDLE at once: publishing a new
 *   generation calls the mailbox's watchers, and local delivery calls
 *   mailstore_notify_changed after appending (generation.h).
 *
 *   MODSEQ (RFC 7162): every message has one; a STORE gives the messages it changes
 *   HIGHESTMODSEQ + 1 (one value per call), messages found new get one, an expunge raises
 *   HIGHESTMODSEQ. They live in the index (format 3: HIGHESTMODSEQ in the first line, a
 *   MODSEQ a message; formats 1 and 2 are read with MODSEQ 1) and in the journal's records.
 *   mailstore_store_if leaves messages changed since UNCHANGEDSINCE alone.
 *
 *   \Recent: the process keeps per mailbox the first UID no session has claimed
 *   (mailstore_recent_claim), saved in INDEX.recent ("UIDVALIDITY UID", one fixed-width line
 *   rewritten in place, not fsynced: after kill -9 it is as last written; after a power loss
 *   messages may be \Recent once more, or, from a torn line, some not \Recent at all; the
 *   messages themselves are never lost).
 *   Under a new UIDVALIDITY every message is \Recent again.
 *   Reading a message looks its place up in the current generation, then checks that the
 *   bytes there still hash the same; if not, the mailbox is scanned again (a new current
 *   generation) and the message found by UID (or reported gone).
 *
 *   Deferred expunge (mailstore_compact_setup with a delay; zolderd's mbox_compact_delay):
 *   mailstore_expunge only gives the messages MAILSTORE_EXPUNGED in the index (an "F" journal
 *   record, fsync'd before it returns) and leaves their bytes. Publishing leaves them out of
 *   every generation, so IMAP and POP3 never show them again; the scan keeps them (the
 *   index must), matched by hash like any message: found again after another program
 *   rewrote the file they stay expunged (a copy found out of order gets a UID of its own,
 *   expunged too). The rewrite below (compaction) drops every expunged message and writes
 *   waiting flags; it runs on the event loop after the delay, when the last mailstore with
 *   the mailbox open is closed (a second later), at once past the size threshold, at mailstore_compact
 *   (IMAP CHECK) and mailstore_compact_flush (shutdown). A crash keeps the record: the
 *   journal or index says expunged until the rewrite has renamed the new file.
 *
 *   Expunge rewrites the mailbox under the delivery lock: scan again (a message delivered
 *   meanwhile is in the scan and keeps its place), copy every message that is not expunged
 *   into .USER.new beside the spool file (unchanged neighbours as one stretch, in the kernel
 *   with copy_file_range; only messages whose flags changed go through user space to have
 *   their Status/X-Status/X-Keywords rewritten), fsync, rename over the spool file, fsync
 *   the folder, then write the index. A crash before the rename leaves the old mailbox; after
 *   it, the new one (the index is rebuilt from the file if it is behind).
 *
 *   Flags (IMAP's \Seen \Answered \Flagged \Deleted \Draft and up to MAILSTORE_KEYWORDS_MAX
 *   keywords per mailbox) live in the index, changed under the lock by mailstore_store, which
 *   appends the changed messages' flags (absolute values, so replaying is idempotent) to a
 *   journal beside the index (INDEX.journal, bound to the index file's inode and mtime by
 *   its first line) and fsyncs it before returning, instead of rewriting the index. Any index
 *   write (an expunge, an append, the journal passing 64 KiB or a quarter of the index) folds
 *   the journal in: new index (tmp, fsync, rename, fsync the folder), then the journal is
 *   removed. Messages found appended to the mbox (the index's list is a prefix of the scan)
 *   get their UIDs the same way: journal records, not a new index. A crash between any two
 *   steps keeps every change a call returned OK for; a torn last journal line is ignored
 *   and cut off by the next append. The
 *   mbox itself carries them as mutt does (mbox_flags.h: Status, X-Status, X-Keywords); they
 *   are written there whenever the mailbox is rewritten (mailstore_expunge, and
 *   mailstore_write_flags when only flags changed), so mutt sees what IMAP set. Flags are
 *   read from those fields for a message the index does not know (new, or the index lost)
 *   and for one whose bytes changed in place (a mail reader rewrote its Status), so what
 *   mutt sets is seen too. Those fields are not part of a message's hash: rewriting them
 *   keeps its UID.
 *
 *   Maildir (maildir.c; mailstore_open_inbox with maildir true, or mailstore_open_maildir;
 *   every call below dispatches on ms->maildir). Everything above about mbox files, dotlocks,
 *   hashes of bytes, the journal and rewrites is the mbox back-end's; a Maildir works so:
 *   messages are the files of new/ and cur/; a message's key is its file name without the
 *   ":2,..." info (proto/maildir_name.h) and the index (its own format, same path) maps keys
 *   to UIDs, so UIDs survive rescans, sessions and renames by mutt; only a lost index gives
 *   a new UIDVALIDITY. Flags are the name's info letters (D F R S T; P and others are kept),
 *   so mutt on the server and IMAP agree. Keywords are lowercase letters there too, as
 *   Dovecot keeps them: letter 'a' + N is line "N NAME" of the Maildir's dovecot-keywords
 *   file (a new keyword gets the lowest letter neither named there nor found in a name,
 *   written under Dovecot's dotlock dovecot-keywords.lock, fsynced and renamed over the
 *   file before any name carries it); the first 26 keywords have letters, the rest live in
 *   the index only. The index keeps each name's letters as it last saw them: a name whose
 *   letters changed since (Dovecot, or our own STORE cut short after its rename) says which
 *   lettered keywords the message has; one whose letters did not keeps the index's. Names
 *   that lack the letter of a keyword the index gives them (an index of format 1, from
 *   before letters) are renamed at the next scan. A scan (under an
 *   fcntl lock on INDEX.lock, for index updates only: reading a file takes no lock) reads
 *   both folders, gives new files UIDs in arrival (mtime) order, takes flags from the names
 *   (a change by another program gets a new MODSEQ), drops vanished files (an expunge by
 *   another program), measures each new file once (RFC822.SIZE of the CRLF form, kept in the
 *   index) and, when anything changed, appends what changed to the index's journal
 *   (INDEX.journal, journal.h: "E" a message's whole entry, "F" its flags, "X" gone, "K" a
 *   keyword, "H" UIDNEXT and HIGHESTMODSEQ; absolute values, bound to the index file's inode
 *   and mtime, fsynced), as the mbox back-end does; past the same bound (64 KiB or a quarter
 *   of the index) the journal is folded into a new index (tmp, fsync, rename, fsync, journal
 *   removed). mailstore_store renames into cur/ with the new info (system flags and keyword
 *   letters: one rename carries the whole change) and fsyncs cur/, then appends one journal
 *   record, before it returns; mailstore_expunge unlinks and fsyncs the folders, then
 *   journals "X"; mailstore_append takes the index lock and the list first, writes tmp/KEY,
 *   fsyncs, sets the mtime (INTERNALDATE), renames into cur/KEY:2,FLAGS (keyword letters
 *   included), fsyncs cur/, then adds its entry (no rescan) and journals its UID. mailstore_settle (IMAP SELECT) moves new/ into cur/. mailstore_read gives the file in the same raw form as an mbox's
 *   (mboxrd-quoted, LF line ends), so mbox_export makes its wire form; a file renamed since
 *   the last scan is found again by a new scan, one removed is GONE. Generations and
 *   watchers are keyed by the Maildir's path (local delivery notifies it); their stamps are
 *   cur/ (as "mbox"), the index and new/ (as "journal"). The process keeps each Maildir's
 *   last scan (file names by UID) beside the generations. mailstore_write_flags has nothing
 *   to do (flags are in the names already).
 *
 * SECURITY
 *   Mailbox bytes are untrusted: the scanner is bounded (mbox_read.h), at most
 *   MAILSTORE_MESSAGES_MAX messages are listed and a single read is at most
 *   MAILSTORE_MESSAGE_MAX bytes. User names come from the users file (no '/', no leading
 *   '.'); they are checked again here before they become paths.
 *
 * LIMITS (pending, issue 7)
 *   A mail reader that changes a flag field without changing its length (Status: O to
 *   Status: R) is not noticed: the index keeps its flags (found by span, not by re-reading
 *   every header at every scan). At most MAILSTORE_KEYWORDS_MAX keywords per mailbox.
 *   Writers that open the spool file before taking the dotlock and wait on its fcntl lock
 *   would append to the replaced inode after an expunge; zolder's own delivery, procmail
 *   and mutt take the dotlock first. An in-place edit that keeps the file's size, inode and
 *   mtime (to the file system's clock tick) is not noticed until the file changes again; one
 *   that grows the file in place while its first and last known messages stay byte for byte
 *   where they were is taken for an append (mutt's in-place sync moves or changes one of them).
 *   The cache is not freed before exit (mailstore_cache_clear is for tests).
 *   A generation is a whole copy of the list (88 bytes a message) per change, shared by every
 *   session that reads it; a session held on an old one (RFC 2180) keeps that copy alive.
 *   Messages appended to the mbox (APPEND, delivery) are journalled too ("A" records with
 *   UID, place and hash); any other change of the message list (an expunge, mutt's rewrite)
 *   rewrites and fsyncs the whole index; a compaction (or, with no delay, an expunge)
 *   rewrites the whole mbox.
 *   Deferred expunge: until the compaction, programs that read the mbox itself (mutt)
 *   still see the expunged messages and miss flags set since the last rewrite (the
 *   documented trade-off, docs/imap.md); an index lost or damaged meanwhile brings them
 *   back under a new UIDVALIDITY; an older zolder reading the index ignores the mark (the
 *   index format keeps its number). Their bytes count towards mailbox_size_limit until
 *   the compaction. A folder renamed while expunges wait is compacted under its new name
 *   once a session opens it (the job at the old name finds no file and ends).
 *   Maildir: a change (STORE, EXPUNGE, APPEND, new files) starts from the process's last
 *   scan when neither folder nor the index changed since, else from a rescan of new/ and
 *   cur/ (one lstat a file); each costs a whole copy of the list (generations, above) and a
 *   compare with the last durable one to find the journal records. Keywords past the 26th
 *   have no letter: a STORE of them is the journal's alone (a crash after the rename and
 *   before the journal keeps the flags and the lettered keywords, not those), and other
 *   programs do not see them. Dovecot's ",W=" size is
 *   written but not trusted when read. A rename by another program within the file
 *   system's clock tick of our own last change of cur/ is seen at the next change. Maildir
 *   folders other than INBOX are not served (IMAP folders are mbox files).
 */
#ifndef ZOLDER_MAILSTORE_H
#define ZOLDER_MAILSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <time.h>

#include "buf.h"
#include "generation.h"

#define MAILSTORE_MESSAGES_MAX 1000000
#define MAILSTORE_MESSAGE_MAX (256UL * 1024 * 1024)
#define MAILSTORE_HASH_LEN 16
#define MAILSTORE_KEYWORDS_MAX 32
#define MAILSTORE_DIRTY 0x100u  /* flags changed in the index, not yet in the mbox headers */
/* expunged (durably, in the index or its journal) but still in the mbox until compaction;
 * such a message is in no generation: sessions never see it */
#define MAILSTORE_EXPUNGED 0x200u
#define MAILSTORE_KEPT_FLAGS (MBOX_FLAGS_IMAP | MAILSTORE_DIRTY | MAILSTORE_EXPUNGED) /* what the index keeps */
/* compaction at once when the pending expunged bytes pass a quarter of the mbox or this */
#define MAILSTORE_COMPACT_FRACTION 4
#define MAILSTORE_COMPACT_BYTES (64ULL * 1024 * 1024)
/* seconds from the last close of a mailbox to its compaction (at most one a second) */
#define MAILSTORE_COMPACT_CLOSE_DELAY 1

enum mailstore_result {
    MAILSTORE_OK,
    MAILSTORE_BUSY,   /* another program holds the mailbox lock: try again later */
    MAILSTORE_GONE,   /* the message was removed by another program */
    MAILSTORE_ERROR,
};

struct mailstore_msg {
    uint32_t uid;
    unsigned long long offset;      /* From_ line in the spool file */
    unsigned long long span;        /* to the next message or the end of the file */
    unsigned long long from_len;
    unsigned long long content_len;
    unsigned long long size;        /* RFC822.SIZE / POP3 octets */
    unsigned long long lines;
    unsigned char hash[MAILSTORE_HASH_LEN];
    unsigned flags;                 /* MBOX_FLAG_* system flags, | MAILSTORE_DIRTY */
    uint32_t keywords;              /* bit i: mailstore.keyword[i] */
    time_t internaldate;            /* from the From_ line (0: unknown) */
    unsigned long long modseq;      /* RFC 7162: raised with every change of its flags */
};

enum mailstore_store_mode { MAILSTORE_SET, MAILSTORE_ADD, MAILSTORE_REMOVE };

struct mailstore {
    char *user;
    char *spool_dir;    /* the folder holding the mbox (fsync'd after a rewrite) */
    char *mbox_path;
    char *lock_path;
    char *tmp_path;
    char *index_dir;
    char *index_path;
    char *journal_path;               /* index_path.journal: STORE's appended flag changes */
    uint32_t uidvalidity;
    uint32_t uidnext;
    struct mailstore_gen *gen;        /* as at open, or at the last call that refreshes (a reference) */
    const struct mailstore_msg *msgs; /* gen->msgs: shared, never written through */
    size_t nmsgs;                     /* gen->nmsgs */
    char *keyword[MAILSTORE_KEYWORDS_MAX]; /* the mailbox's keyword names */
    size_t nkeywords;
    unsigned long long highestmodseq; /* RFC 7162 HIGHESTMODSEQ, as the index said last */
    /* what the last scan saw, for mailstore_changed */
    unsigned long long seen_size, seen_ino, seen_index_ino;
    long long seen_mtime_ns, seen_index_mtime_ns;
    /* Maildir INBOX (maildir.h): mbox_path is the Maildir folder, spool_dir the same,
     * tmp_path its tmp/, lock_path INDEX.lock (index updates only) */
    bool maildir;
    bool counted;     /* counted among the sessions that have the mailbox open (compaction) */
};

/* Where a mailbox lives (absolute paths; see mailstore_open_at). */
struct mailstore_location {
    const char *mbox_path;   /* the mbox file (need not exist: an empty mailbox) */
    const char *index_path;  /* its index file (its folder is created when missing) */
    const char *user;        /* the owner: the From_ line of mailstore_append */
};

/*
 * Opens the mailbox at loc: scan, index sync. The dotlock is MBOX.lock, the expunge rewrite
 * goes to .NAME.new beside the mbox. *error_r explains anything but MAILSTORE_OK; call
 * mailstore_close either way.
 */
enum mailstore_result mailstore_open_at(struct mailstore *ms, const struct mailstore_location *loc,
                                        const char **error_r);
/* Opens user's INBOX (STATE_DIR/spool/mail/USER, index STATE_DIR/index/USER/INBOX). */
enum mailstore_result mailstore_open(struct mailstore *ms, const char *state_dir, const char *user,
                                     const char **error_r);
/*
 * Opens user's INBOX in the configured format: maildir false as mailstore_open; true the
 * Maildir STATE_DIR/maildir/USER (what local delivery writes with mailbox_format = maildir),
 * index STATE_DIR/index/USER/INBOX.
 */
enum mailstore_result mailstore_open_inbox(struct mailstore *ms, const char *state_dir, const char *user, bool maildir,
                                           const char **error_r);
/* Opens the Maildir at maildir_path (tmp/ new/ cur/ made when missing) with its index. */
enum mailstore_result mailstore_open_maildir(struct mailstore *ms, const char *maildir_path, const char *index_path,
                                             const char *user, const char **error_r);
/*
 * SELECT (not EXAMINE): a Maildir's files in new/ move to cur/ (as Dovecot and mutt do);
 * UIDs and flags stay. Nothing for an mbox.
 */
enum mailstore_result mailstore_settle(struct mailstore *ms, const char **error_r);
/*
 * Appends message i's raw content (the bytes between its From_ line and the separator, as
 * stored: mboxrd-quoted, LF line ends) to raw; mbox_export() makes the wire form.
 */
enum mailstore_result mailstore_read(struct mailstore *ms, size_t i, struct buf *raw,
                                     const char **error_r);
/*
 * Removes the messages with these UIDs (those still there); *removed_r counts them. The
 * rewrite also writes flags changed by mailstore_store into the headers of the messages kept.
 * After a rewrite, ms->msgs is the mailbox as it is now.
 */
enum mailstore_result mailstore_expunge(struct mailstore *ms, const uint32_t *uids, size_t n,
                                        size_t *removed_r, const char **error_r);
/* ms->msgs becomes the mailbox as it is now (UID order); flags as the index has them now. */
enum mailstore_result mailstore_refresh(struct mailstore *ms, const char **error_r);
/* Cheap: did the spool file or the index change since ms->msgs was read (stat only)? */
bool mailstore_changed(struct mailstore *ms);
/*
 * Changes the flags of the messages with these UIDs (still there): flags (MBOX_FLAGS_IMAP
 * bits) and keywords by name are set, added or removed. Refreshes ms->msgs. MAILSTORE_ERROR
 * with "too many keywords" when a new keyword does not fit.
 */
enum mailstore_result mailstore_store(struct mailstore *ms, const uint32_t *uids, size_t n,
                                      enum mailstore_store_mode mode, unsigned flags,
                                      const char *const *keywords, size_t nkeywords, const char **error_r);
/*
 * Appends a message (wire form: CRLF or LF lines) to the mbox under the delivery locks, with
 * a From_ line dated when and the mboxrd quoting delivery uses; fsync before OK. Its UID
 * comes back in *uid_r and its flags (MBOX_FLAGS_IMAP bits, keywords by name) are set in the
 * index. Refreshes ms->msgs.
 */
enum mailstore_result mailstore_append(struct mailstore *ms, const char *data, size_t len, time_t when,
                                       unsigned flags, const char *const *keywords, size_t nkeywords,
                                       uint32_t *uid_r, const char **error_r);
/* One message for mailstore_append_many: as mailstore_append's arguments. */
struct mailstore_new {
    const char *data;
    size_t len;
    time_t when;
    unsigned flags;
    const char *const *keywords;
    size_t nkeywords;
};
/*
 * mailstore_append for n messages (COPY, MOVE): mbox: one lock, one write, one fsync of the
 * mbox, one journal record for their UIDs (and one for their flags, when any), at most
 * MAILSTORE_MESSAGE_MAX bytes in all (a failed write is cut off again). Maildir: one after another (on
 * an error, uids_r holds the UIDs of those added, 0 for the rest). uids_r[i] is message i's.
 */
enum mailstore_result mailstore_append_many(struct mailstore *ms, const struct mailstore_new *msgs, size_t n,
                                            uint32_t *uids_r, const char **error_r);
/*
 * mailstore_store with RFC 7162's UNCHANGEDSINCE (0: none): a message whose MODSEQ is above
 * unchangedsince is left alone and its UID returned in *modified_r (*nmodified_r of them,
 * freed by the caller).
 */
enum mailstore_result mailstore_store_if(struct mailstore *ms, const uint32_t *uids, size_t n,
                                         enum mailstore_store_mode mode, unsigned flags,
                                         const char *const *keywords, size_t nkeywords,
                                         unsigned long long unchangedsince, uint32_t **modified_r,
                                         size_t *nmodified_r, const char **error_r);
/* Writes flags changed by mailstore_store into the mbox headers (a rewrite, when any). */
enum mailstore_result mailstore_write_flags(struct mailstore *ms, const char **error_r);
/* Like mailstore_read, for a message the caller keeps (found by UID and hash if it moved). */
enum mailstore_result mailstore_read_msg(struct mailstore *ms, const struct mailstore_msg *m, struct buf *raw,
                                         const char **error_r);
/*
 * \Recent (RFC 3501 2.3.2): the first session to hear of a message gets it. Claims every
 * message from the first unclaimed UID up to (not including) upto for the caller and returns
 * that first UID (== upto: none). mailstore_recent_first only looks (EXAMINE, STATUS).
 */
uint32_t mailstore_recent_claim(struct mailstore *ms, uint32_t upto);
uint32_t mailstore_recent_first(struct mailstore *ms);
/* Index of a keyword name (case-insensitive), or -1. */
int mailstore_keyword_index(const struct mailstore *ms, const char *name);
/* A STORE's mode applied to one message's flags *f and keyword bits *k. */
void mailstore_flags_apply(enum mailstore_store_mode mode, unsigned flags, uint32_t keywords, unsigned *f,
                           uint32_t *k);
/* The keyword's bit, adding the name to the table; -1 when the table is full or it is invalid. */
int mailstore_keyword_add(struct mailstore *ms, const char *name);

void mailstore_close(struct mailstore *ms);
/*
 * Tests only: step(name) is called at each step of a durable change ("journal-open",
 * "journal-written", "journal-synced", "index-written", "index-renamed", "journal-removed";
 * a Maildir's "maildir-renamed", "maildir-unlinked", "maildir-synced", "maildir-tmp-synced",
 * "maildir-appended", "keywords-written"; an mbox rewrite's "mbox-written", "mbox-renamed";
 * a deferred expunge's "expunge-marked") so that a test can crash the process there;
 * journal_max (bytes, 0: the default) is the
 * journal size that makes the next STORE fold it into the index.
 */
void mailstore_test_hooks(void (*step)(const char *step), unsigned long journal_max);
/* Frees the process cache of scans and indexes (see mailstore.c) and forgets the compaction
 * jobs without running them (mailstore_compact_flush runs them); for tests and shutdown. */
void mailstore_cache_clear(void);

const char *mailstore_result_name(enum mailstore_result r);

/*
 * Deferred compaction of mbox mailboxes (issue 7). delay_s 0 (the default, and always
 * without an event base): mailstore_expunge rewrites the mbox at once, as mailstore_write_flags
 * does for flags. Otherwise mailstore_expunge only records the expunged messages
 * (MAILSTORE_EXPUNGED, a journal record fsync'd before it returns) and leaves their bytes in
 * the mbox; mailstore_write_flags leaves flags waiting for the headers; the rewrite that
 * drops those bytes and writes those flags (compaction) runs on base's loop delay_s seconds
 * after the first change that needs it, MAILSTORE_COMPACT_CLOSE_DELAY seconds after the last
 * mailstore with the mailbox open is closed, at once when the pending bytes pass MAILSTORE_COMPACT_FRACTION of the file or
 * MAILSTORE_COMPACT_BYTES, and at mailstore_compact_flush (shutdown).
 */
struct event_base;
void mailstore_compact_setup(struct event_base *base, unsigned long delay_s);
/* The rewrite now, when expunged messages or unwritten flags wait for one. */
enum mailstore_result mailstore_compact(struct mailstore *ms, const char **error_r);
/* Runs every scheduled compaction now and forgets the event base (shutdown, tests). */
void mailstore_compact_flush(void);
/* Messages expunged but still in the mbox (*bytes_r their bytes), as ms last read it. */
size_t mailstore_pending(const struct mailstore *ms, unsigned long long *bytes_r);

#endif
