/*
 * maildir_name: a Maildir file name's parts, pure: the unique key and the "info" that
 * carries a message's flags (":2,DFPRST", as mutt and Dovecot write them), both ways.
 *
 * DESCRIPTION
 *   A name is KEY[:INFO]. KEY identifies the message for good (the mail store's index maps
 *   it to a UID); the info changes when flags change (the file is renamed). INFO "2,LETTERS"
 *   holds flags, one ASCII letter each, in ASCII order: D \Draft, F \Flagged, R \Answered,
 *   S \Seen, T \Deleted (IMAP's five system flags); lowercase a..z, Dovecot's keyword
 *   letters (letter N is line "N NAME" of the Maildir's dovecot-keywords file: the mail
 *   store maps them, this parser only gives them as a set); and other uppercase letters that
 *   IMAP does not show, kept as they are on a rename (P "passed" (bounced)). mutt keeps
 *   letters it does not know when it renames. Other bytes in the info (digits, '.') are
 *   dropped. Any other info ("1,...", experimental) is parsed as no flags; a rename writes
 *   ":2,".
 *   Dovecot's optional KEY fields ",S=BYTES" (file size) and ",W=BYTES" (size with CRLF line
 *   ends) are read when present.
 *
 * SECURITY
 *   Names come from a folder any program of the user can write: a name longer than
 *   MAILDIR_NAME_MAX, empty, starting with '.', or holding '/', NUL or a control byte is
 *   refused (the store skips such files).
 */
#ifndef ZOLDER_MAILDIR_NAME_H
#define ZOLDER_MAILDIR_NAME_H

#include <stdbool.h>
#include <stddef.h>

#define MAILDIR_NAME_MAX 255

struct maildir_name {
    size_t key_len;          /* the name's first key_len bytes are its key */
    bool has_info;           /* ":2," present */
    unsigned flags;          /* MBOX_FLAG_* (mbox_flags.h) from D F R S T */
    unsigned letters;        /* keyword letters: bit N for 'a' + N (N < 26) */
    char other[32];          /* other uppercase info letters, ASCII order, no repeats, NUL-terminated */
    long long size, vsize;   /* ",S=" and ",W=" in the key; -1 when absent or malformed */
};

/* Parses name[0..len) into *out; false when the name is not one the store accepts. */
bool maildir_name_parse(const char *name, size_t len, struct maildir_name *out);

/*
 * Writes KEY ":2," and the letters of flags (MBOX_FLAGS_IMAP bits), letters (bit N: 'a' + N)
 * and other (letters; may be NULL), merged in ASCII order without repeats, NUL-terminated,
 * into out. Returns the length, or 0 when it does not fit in outsize (or the result is longer
 * than MAILDIR_NAME_MAX).
 */
size_t maildir_name_make(const char *key, size_t key_len, unsigned flags, unsigned letters, const char *other,
                         char *out, size_t outsize);

#endif
