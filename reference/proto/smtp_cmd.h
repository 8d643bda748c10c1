/*
 * smtp_cmd: SMTP command lines (RFC 5321 4.1, RFC 1869 parameters, RFC 3030 BDAT), pure.
 *
 * Input is one line without its CRLF. The parser never reads a socket; the server decides
 * what each verb means in its state. Errors come back as a complete reply (code, enhanced
 * status, text) so every caller answers the same way.
 */
#ifndef ZOLDER_SMTP_CMD_H
#define ZOLDER_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"

#define SMTP_LINE_MAX 1000   /* RFC 5321 4.5.3.1.4 command line incl. CRLF; later 512 for cmds */
#define SMTP_PARAMS_MAX 16
#define SMTP_PARAM_KEY_MAX 32
#define SMTP_PARAM_VALUE_MAX 512
#define SMTP_ARG_MAX 1000

enum smtp_verb {
    SMTP_VERB_UNKNOWN = 0,
    SMTP_VERB_HELO,
    SMTP_VERB_EHLO,
    SMTP_VERB_MAIL,
    SMTP_VERB_RCPT,
    SMTP_VERB_DATA,
    SMTP_VERB_BDAT,
    SMTP_VERB_RSET,
    SMTP_VERB_NOOP,
    SMTP_VERB_QUIT,
    SMTP_VERB_HELP,
    SMTP_VERB_VRFY,
    SMTP_VERB_EXPN,
    SMTP_VERB_ETRN,
    SMTP_VERB_STARTTLS,
    SMTP_VERB_AUTH,
    SMTP_VERB_VERB,
};

struct smtp_param {
    char key[SMTP_PARAM_KEY_MAX + 1];     /* upper-cased, e.g. "SIZE", "BODY", "RET", "ENVID" */
    char value[SMTP_PARAM_VALUE_MAX + 1]; /* "" when the parameter has no =value */
    bool has_value;
};

struct smtp_cmd {
    enum smtp_verb verb;
    char arg[SMTP_ARG_MAX + 1];  /* text after the verb, trimmed (set for every verb; meant for
                                    HELO/EHLO/VRFY/EXPN/ETRN/HELP/AUTH/NOOP, and for logs) */
    struct mailaddr addr;        /* MAIL FROM:<...> / RCPT TO:<...> */
    struct smtp_param params[SMTP_PARAMS_MAX];
    int nparams;
    unsigned long long bdat_size; /* BDAT */
    bool bdat_last;               /* BDAT ... LAST */
};

struct smtp_reply_err {
    int code;              /* 500, 501, 504, 555 ... */
    const char *enhanced;  /* "5.5.2" */
    const char *text;      /* "Syntax error, command unrecognized" */
    const char *detail;    /* (added) finer reason for logs or the reply, static text, or NULL:
                              the addr parser's error ("missing >"), "duplicate parameter" */
};

/*
 * Parses one command line (no CRLF). Verbs are case-insensitive. MAIL requires "FROM:" and a
 * path (a space after the colon is tolerated, as Postfix does), RCPT "TO:" and a non-null
 * path; HELO/EHLO require an argument; DATA/RSET/QUIT/STARTTLS take none; BDAT takes a size
 * and optional LAST. Parameter keywords are esmtp-keyword syntax (RFC 5321 4.1.2) and values
 * esmtp-value (printable, no '=' or space). Returns true, or false with *err filled in.
 * An unknown verb gives verb SMTP_VERB_UNKNOWN and false (500 5.5.2).
 *
 * Details of the contract (all replies are static text):
 *   - line longer than SMTP_LINE_MAX - 2, or any control byte other than tab (NUL, CR, LF, DEL
 *     ...): 500 5.5.2, before the verb is even looked at;
 *   - trailing spaces/tabs are ignored ("QUIT " is QUIT), leading ones make the verb unknown;
 *   - MAIL/RCPT: "FROM:" / "TO:" must follow the verb after exactly one SP, and at most one SP
 *     may follow the colon; otherwise 501 5.5.4. A bad path is 501 5.1.7 (MAIL) or 501 5.1.3
 *     (RCPT, also for <>), with the addr parser's reason in err->detail. Addresses are parsed
 *     without ADDR_OPT_ALLOW_8BIT (no SMTPUTF8). Parameters are separated by one or more SP;
 *     bad syntax, a duplicate keyword, or more than SMTP_PARAMS_MAX give 555 5.5.4;
 *   - HELO/EHLO/VRFY/EXPN/ETRN/AUTH without an argument, DATA/RSET/QUIT/STARTTLS with one, and
 *     BDAT not of the form "size [LAST]" (size 1-20 digits, at most 2^63): 501 5.5.4.
 * On a failure after the verb was recognised, cmd->verb still names it (for error counting).
 */
bool smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd, struct smtp_reply_err *err);

/* Finds a parameter by (case-insensitive) key; NULL when absent. */
const struct smtp_param *smtp_cmd_param(const struct smtp_cmd *cmd, const char *key);

const char *smtp_verb_name(enum smtp_verb verb);

/*
 * Decodes RFC 3461 xtext ("+2B" escapes) into out; false on malformed input or overflow.
 * Used for ORCPT and ENVID, which are stored decoded and re-encoded on relay.
 * Strict RFC 3461 4: literal bytes are '!'..'~' except '+' and '='; hexchar is "+" and two
 * upper-case hex digits. "+00" is refused because out is a C string.
 */
bool smtp_xtext_decode(const char *in, char *out, size_t outsize);
void smtp_xtext_encode(const char *in, struct buf *out);

#endif
