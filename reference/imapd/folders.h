/*
 * folders: the user's IMAP folders besides INBOX, as Dovecot's mbox layout keeps them.
 *
 * DESCRIPTION
 *   A folder is an mbox file under the user's mail folder (mail_dir: MAIL_DIR, from
 *   smtpd_maps.mail_dir): folder a/b is MAIL_DIR/a/b ('/' is the delimiter, the personal
 *   namespace is ""). A directory is a folder of folders (\Noselect); a file cannot hold
 *   folders (\NoInferiors): mbox cannot be both. Names are UTF-8 on disk and modified UTF-7
 *   on the wire (reference/proto/foldername.h has the naming rules). INBOX stays the spool
 *   (STATE_DIR/spool/mail/USER). Each folder has its index (reference/mailstore/) at
 *   STATE_DIR/index/USER/<foldername_index_file(name)>; INBOX's is STATE_DIR/index/USER/INBOX.
 *
 *   Listed: directories and regular files that are empty or start with "From " (a plausible
 *   mbox), whose names pass foldername_check; never dotfiles, "rules", "*.lock", symbolic
 *   links or other files. At most IMAPD_FOLDERS_MAX entries are read per listing.
 *
 *   Subscriptions are MAIL_DIR/.subscriptions, one UTF-8 name a line, rewritten whole
 *   (tmp, fsync, rename, fsync the folder). INBOX is always subscribed.
 *
 *   SPECIAL-USE (RFC 6154): the top-level Sent, Drafts, Trash, Junk and Archive carry
 *   \Sent \Drafts \Trash \Junk \Archive. At a user's first login, when MAIL_DIR does not
 *   exist yet, it is created (0700) with empty Sent, Drafts, Trash and Junk, subscribed.
 *
 *   COPY (imapd_folder_copy) appends each message to the target under its locks with its
 *   flags and INTERNALDATE (mailstore_append: fsync before it returns); the flag header
 *   fields of the copy are written from the source's index (mbox_flags_rewrite). A copy
 *   that fails half-way takes the messages it already appended out again.
 *   RENAME INBOX copies every INBOX message into the new folder, then expunges them from
 *   INBOX (RFC 3501 6.3.5); RENAME of a folder renames its file or directory (and the index
 *   files and subscriptions of everything in it); DELETE removes an mbox under its dotlock
 *   (and its index), or a directory only when it is empty.
 *
 * SECURITY
 *   Names are client input: decoded strictly and checked (no "..", no leading '/', no
 *   dotfiles, no NUL or control characters, length and depth limits) before they become
 *   paths; symbolic links under MAIL_DIR are never followed to a folder. Index file names
 *   are escaped so no name can leave STATE_DIR/index/USER/.
 *
 * LIMITS (PENDING, issue 7)
 *   A COPY or MOVE appends (and fsyncs) message by message, each rewriting the target's
 *   index when flags are copied: fine for hundreds of messages, slow for tens of thousands.
 *   RENAME of a directory does not take the dotlocks of the mboxes inside it. A folder
 *   deleted and created again within the second its index was first made may get the same
 *   UIDVALIDITY. Maildir INBOXes (mailbox_format = maildir) are not served over IMAP.
 */
#ifndef ZOLDER_IMAPD_FOLDERS_H
#define ZOLDER_IMAPD_FOLDERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "foldername.h"
#include "imap_cmd.h"
#include "imapd.h"
#include "mailpath.h"
#include "mailstore/mailstore.h"

#define IMAPD_FOLDERS_MAX 10000
#define IMAPD_SUBSCRIPTIONS_MAX 10000
#define IMAPD_FOLDER_PATH_MAX (MAILPATH_MAX + FOLDERNAME_MAX + FOLDERNAME_INDEX_FILE_MAX + 64)

struct imapd_folders_ctx {
    const struct imapd *srv;
    const char *user;
    unsigned long long session_id;   /* for the log */
};

struct imapd_folder {
    bool inbox;
    char name[FOLDERNAME_MAX + 1];           /* canonical UTF-8; "INBOX" for INBOX */
    char mail_dir[MAILPATH_MAX];             /* "" for INBOX of a user without one */
    char mbox_path[IMAPD_FOLDER_PATH_MAX];
    char index_path[IMAPD_FOLDER_PATH_MAX];
};

enum imapd_reply { IMAPD_REPLY_OK, IMAPD_REPLY_NO, IMAPD_REPLY_BAD };

/*
 * The mailbox a SELECT, EXAMINE, STATUS, APPEND, COPY or MOVE names. missing_code is the
 * response code for a name that does not exist ("NONEXISTENT", or "TRYCREATE" for APPEND,
 * COPY, MOVE). false: no[nolen] holds the text of the NO (code and reason).
 */
bool imapd_folder_mailbox(const struct imapd_folders_ctx *ctx, const char *wire, const char *missing_code,
                          struct imapd_folder *f, char *no, size_t nolen);

/* Opens the folder's mail store (mailstore_close it either way). */
enum mailstore_result imapd_folder_open(const struct imapd_folders_ctx *ctx, const struct imapd_folder *f,
                                        struct mailstore *ms, const char **error_r);

/*
 * Appends msgs[0..n) of src to dst with their flags and dates; dst_uids[i] gets each new
 * UID, *done_r how many were copied (all of them on MAILSTORE_OK). When one fails, the copies
 * already made are expunged from dst again (*done_r 0; if even that fails they stay, logged).
 */
enum mailstore_result imapd_folder_copy(struct mailstore *src, const struct mailstore_msg *const *msgs, size_t n,
                                        struct mailstore *dst, uint32_t *dst_uids, size_t *done_r,
                                        const char **error_r);

/* Appends s as an IMAP quoted string. */
void imapd_quote(struct buf *b, const char *s);

/* Appends a UID set ("1:3,7") of ascending uids. */
void imapd_uid_set(struct buf *b, const uint32_t *uids, size_t n);

/*
 * LIST, LSUB, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE: the untagged responses go to
 * out, the tagged reply's text (after OK, NO or BAD) to text[textlen].
 */
enum imapd_reply imapd_folders_command(const struct imapd_folders_ctx *ctx, const struct imap_cmd *cmd,
                                       struct buf *out, char *text, size_t textlen);

/* At login: MAIL_DIR with the special-use folders when it does not exist yet (see above). */
void imapd_folders_first_login(const struct imapd_folders_ctx *ctx);

#endif
