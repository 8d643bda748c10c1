/*
 * sendmail_client: the pure parts of zolder's `sendmail` command, no I/O, so each is
 * unit-tested: the classic command line (sendmail 8 / Postfix compatible, as MUAs, cron
 * and scripts call it), cutting the input at a lone "." line, the header edits (-t
 * recipient extraction, Bcc removal, a From: when there is none), the SMTP DATA writer
 * (LF -> CRLF, dot-stuffing, long-line folding) and SMTP reply lines.
 *
 * Address lists are parsed with GMime 3 (internet_address_list_parse): the caller must have
 * called g_mime_init() once before sendmail_addr_list() or sendmail_header_edit().
 */
#ifndef ZOLDER_SENDMAIL_CLIENT_H
#define ZOLDER_SENDMAIL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define SENDMAIL_DEFAULT_CONFIG "/etc/zolder/zolder.conf"
#define SENDMAIL_CONFIG_ENV "ZOLDER_CONFIG"
/* Longest address we hand to RCPT TO / MAIL FROM (RFC 5321 4.5.3.1.3 path minus <>). */
#define SENDMAIL_ADDR_MAX 254
#define SENDMAIL_RCPT_MAX 10000
/*
 * Output lines longer than this are folded with CRLF SPACE, as Postfix's SMTP client does
 * (smtp_line_length_limit), so a long cron line is delivered rather than refused against the
 * daemon's 1000-octet line limit (RFC 5321 4.5.3.1.6).
 */
#define SENDMAIL_LINE_WRAP 990
/* The header section we are willing to edit. */
#define SENDMAIL_HEADER_MAX (1u << 20)

enum sendmail_mode {
    SENDMAIL_MODE_DELIVER, /* -bm (default): read a message, hand it to zolderd */
    SENDMAIL_MODE_SMTP,    /* -bs: SMTP on stdin/stdout, relayed to zolderd */
    SENDMAIL_MODE_PRINT,   /* -bp: the queue listing (mailq) */
    SENDMAIL_MODE_FLUSH,   /* -q: a queue run */
    SENDMAIL_MODE_ALIASES, /* -bi (newaliases): nothing to rebuild, zolderd reads aliases */
};

struct sendmail_args {
    const char *config;   /* -C FILE, or NULL */
    enum sendmail_mode mode;
    bool extract;         /* -t: recipients from To/Cc/Bcc too */
    bool ignore_dots;     /* -i / -oi: a lone "." line is data, not the end */
    bool verbose;         /* -v */
    const char *sender;   /* -f / -r, or NULL */
    const char *fullname; /* -F, or NULL */
    const char *body;     /* -B 7BIT|8BITMIME, or NULL */
    const char *notify;   /* -N (DSN NOTIFY), or NULL */
    const char *ret;      /* -R hdrs|full (DSN RET), or NULL */
    const char *envid;    /* -V (DSN ENVID), or NULL */
    char *const *rcpts;   /* the operands (point into argv) */
    size_t nrcpts;
    char error[160];      /* why sendmail_args_parse() failed */
};

/*
 * Parses the command line (argv[0] is the program). Flags may be clustered (-ti), option
 * arguments attached or separate (-fsjoerd, -f sjoerd); options end at "--" or the first
 * operand. Options MUAs pass that mean nothing here (-odi, -oem, -U, -m, -n, -h N, -L TAG,
 * -O x=y, -G, -qINTERVAL) are accepted and ignored. 0, or -1 with args->error set.
 */
int sendmail_args_parse(int argc, char *const *argv, struct sendmail_args *args);

/* -C FILE, else $ZOLDER_CONFIG (env_value, may be NULL or ""), else the default. */
const char *sendmail_config_path(const struct sendmail_args *args, const char *env_value);

/*
 * The length of the message in input: all of it with ignore_dots, otherwise up to (not
 * including) the first line that holds only "." (LF or CRLF ended), as sendmail reads a
 * message from a terminal.
 */
size_t sendmail_input_cut(const char *in, size_t len, bool ignore_dots);

/* A growing, de-duplicated (case-insensitive) list of envelope addresses. */
struct sendmail_rcpts {
    char **addrs;
    size_t n;
};

/* Adds addr unless already there. false when the list is full (SENDMAIL_RCPT_MAX). */
bool sendmail_rcpts_add(struct sendmail_rcpts *r, const char *addr);
void sendmail_rcpts_free(struct sendmail_rcpts *r);

/*
 * addr with "@hostname" appended when it has no domain (sendmail qualifies local names).
 * Allocated.
 */
char *sendmail_qualify(const char *addr, const char *hostname);

/* true when addr can be written between <> in an SMTP command without quoting tricks. */
bool sendmail_addr_ok(const char *addr);

/*
 * Parses an RFC 5322 address list ("a@b, Name <c@d>, group: e@f;") and adds every mailbox,
 * qualified with hostname, to r. 0, or -1 with *error_r when a mailbox is unusable.
 */
int sendmail_addr_list(const char *text, const char *hostname, struct sendmail_rcpts *r,
                       const char **error_r);

struct sendmail_header_opts {
    bool extract;          /* collect To/Cc/Bcc (or Resent-To/Cc/Bcc when present) into rcpts */
    const char *add_from;  /* value for a From: field when the message has none, or NULL */
    const char *hostname;  /* to qualify extracted addresses */
};

/*
 * Edits the header section of a raw message (LF or CRLF lines): drops a leading mbox
 * "From " line, removes every Bcc and Resent-Bcc field (Postfix does so always: a blind copy
 * must stay blind), adds From: when asked and missing, and with extract collects the
 * recipients. The edited message goes to out (line ends untouched otherwise). 0, or -1 with
 * *error_r (header section over SENDMAIL_HEADER_MAX, an unusable address).
 */
int sendmail_header_edit(const char *in, size_t len, const struct sendmail_header_opts *opts,
                         struct buf *out, struct sendmail_rcpts *rcpts, const char **error_r);

/* true when data holds a byte >= 0x80 (then BODY=8BITMIME is declared). */
bool sendmail_is_8bit(const char *data, size_t len);

/*
 * The DATA writer, fed in pieces: LF and CRLF (and a bare CR) become CRLF, a '.' at a line
 * start is doubled (RFC 5321 4.5.2), lines over SENDMAIL_LINE_WRAP are folded. The caller
 * sends the final ".\r\n" after sendmail_writer_finish().
 */
struct sendmail_writer {
    bool at_line_start;
    bool pending_cr;
    size_t line_len;
};

void sendmail_writer_init(struct sendmail_writer *w);
/* Appends the converted bytes to out, which must have no maximum (the caller bounds its
 * size by feeding in pieces: at most 2 output bytes per input byte, plus folds). */
void sendmail_writer_feed(struct sendmail_writer *w, const char *data, size_t len,
                          struct buf *out);
/* Ends an unterminated last line with CRLF. */
void sendmail_writer_finish(struct sendmail_writer *w, struct buf *out);

/*
 * One SMTP reply line: "250-text", "250 text" or "250". Stores the code and whether it is
 * the last line. false when the line is not a reply line.
 */
bool sendmail_reply_line(const char *line, int *code_r, bool *last_r);

#endif
