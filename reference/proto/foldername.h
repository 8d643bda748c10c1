/*
 * foldername: IMAP folder names as zolder stores them, pure (no file system access).
 *
 * DESCRIPTION
 *   A folder name is UTF-8 on disk and modified UTF-7 on the wire (mutf7.h); '/' is the
 *   hierarchy delimiter and the personal namespace is "" (NAMESPACE (("" "/")) NIL NIL).
 *   Folder a/b is the mbox file MAIL_DIR/a/b; INBOX (any case) is the spool and is folded to
 *   "INBOX". foldername_from_wire turns a client's name into the canonical UTF-8 name, or
 *   says why it is refused; foldername_check applies the same rules to a name found on disk.
 *
 *   Refused: an empty name or component ("//", a leading '/'), "." and ".." components, a
 *   component starting with '.' (dotfiles are zolder's: .subscriptions, .NAME.new), a
 *   component ending in ".lock" (a mailbox's dotlock), the top-level name "rules" (the
 *   delivery rules file, reference/proto/rules.h), control characters, children of INBOX,
 *   more than FOLDERNAME_MAX bytes of UTF-8 or FOLDERNAME_DEPTH_MAX components.
 *
 *   foldername_index_file names a folder's index file under STATE_DIR/index/USER/: "folder-"
 *   then the name with every byte but A-Z a-z 0-9 _ - written %XX (so '/' and '.' cannot
 *   leave that folder or meet INBOX's index "INBOX" or a ".tmp" file); names whose escaped form
 *   is longer than FOLDERNAME_INDEX_ESCAPED_MAX keep a prefix and add a 64-bit FNV-1a hash.
 *
 *   foldername_match is RFC 3501 6.3.8's LIST wildcard match ('*' anything, '%' anything but
 *   '/') on wire names, case-sensitive except for INBOX; it is a dynamic program over the
 *   pattern and the name (no backtracking blow-up).
 *
 *   foldername_special_use gives RFC 6154's attribute of the top-level folders Sent, Drafts,
 *   Trash, Junk and Archive.
 */
#ifndef ZOLDER_FOLDERNAME_H
#define ZOLDER_FOLDERNAME_H

#include <stdbool.h>
#include <stddef.h>

#define FOLDERNAME_MAX 255
#define FOLDERNAME_DEPTH_MAX 16
#define FOLDERNAME_WIRE_MAX 1024            /* a wire name longer than this is refused unread */
#define FOLDERNAME_PATTERN_MAX 1024
#define FOLDERNAME_INDEX_ESCAPED_MAX 180
#define FOLDERNAME_INDEX_FILE_MAX 220       /* buffer size for foldername_index_file */

/*
 * The canonical UTF-8 name of a wire (modified UTF-7) name into out[outlen] (at least
 * FOLDERNAME_MAX + 1). *trailing_r (may be NULL to refuse a trailing '/'): the name ended in
 * the delimiter, which was removed (CREATE's "make a folder of folders"). NULL when usable,
 * else the reason (for a NO).
 */
const char *foldername_from_wire(const char *wire, size_t len, char *out, size_t outlen, bool *trailing_r);

/* The rules for a UTF-8 name (as found on disk, or decoded): NULL when usable, else why. */
const char *foldername_check(const char *name, size_t len);

/* "INBOX" in any case. */
bool foldername_is_inbox(const char *name);

/* Index file name of a canonical non-INBOX folder name into out[FOLDERNAME_INDEX_FILE_MAX]. */
void foldername_index_file(const char *name, char *out, size_t outlen);

/* LIST wildcard match of a wire name (see DESCRIPTION). */
bool foldername_match(const char *pattern, const char *wire_name);

/* "\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive" for those top-level names, else NULL. */
const char *foldername_special_use(const char *name);

#endif
