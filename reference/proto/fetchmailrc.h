/*
 * fetchmailrc: the run-control file of fetchmail(1), as zolder's poller reads it. Pure: bytes
 * in, struct out, no I/O, no environment.
 *
 * DESCRIPTION
 *   A file is a sequence of statements, free-form over lines:
 *     set daemon N | set postmaster NAME | set logfile FILE | set idfile FILE
 *     set [no] bouncemail | set [no] syslog
 *     defaults SERVER-OPTIONS USER-OPTIONS
 *     poll|skip HOST SERVER-OPTIONS [user NAME USER-OPTIONS]...
 *   SERVER-OPTIONS: via HOST, proto|protocol pop3|imap|auto, port|service N|NAME, timeout N,
 *   aka NAME..., localdomains NAME..., [no] dns, [no] envelope [N] HEADER, qvirtual PREFIX,
 *   interval N, [no] uidl, auth any|password|plain.
 *   USER-OPTIONS: user|username NAME [here|there], pass|password SECRET, is|to NAME... [here|there]
 *   (a NAME may be "REMOTE = LOCAL"; "*" is multidrop), [no] keep, nokeep, [no] fetchall,
 *   [no] flush, limit N, [no] limitflush, fetchlimit N, [no] ssl, [no] sslcertck, sslcertfile FILE,
 *   sslproto NAME, sslcommonname NAME, folder|folders NAME..., smtphost|smtphosts HOST...,
 *   smtpaddress DOMAIN, [no] idle
 *   Comments run from '#' to the end of the line. Strings may be double-quoted (C escapes
 *   \" \\ \n \t \xHH); a quoted string is never a keyword. The noise words and, with, has,
 *   wants, options and the characters ',', ';', ':' are ignored, as fetchmail does.
 *   `defaults` applies to the poll entries that follow it. User options written before the
 *   first `user` of an entry apply to every user of that entry; an entry without `user` has
 *   one user whose remote name is "" (the caller substitutes the invoking login).
 *
 * SECURITY
 *   The file holds passwords: error texts never quote a password token (they name line and
 *   column only). Every size is bounded (FETCHRC_*_MAX); the input may hold any byte.
 *
 * LIMITS
 *   fetchmail keywords for protocols zolder does not speak (pop2, apop, kpop, etrn, odmr),
 *   mda, bsmtp, preconnect/postconnect, plugins and the many rarely used switches are errors
 *   naming them, not silently ignored.
 */
#ifndef ZOLDER_FETCHMAILRC_H
#define ZOLDER_FETCHMAILRC_H

#include <stdbool.h>
#include <stddef.h>

#define FETCHRC_FILE_MAX (1024UL * 1024UL) /* bytes of rc file */
#define FETCHRC_SERVERS_MAX 64
#define FETCHRC_USERS_MAX 64           /* per poll entry */
#define FETCHRC_LIST_MAX 16            /* aka, localdomains, is, folder, smtphost */
#define FETCHRC_STRING_MAX 1024        /* one token */
#define FETCHRC_ERROR_MAX 512

enum fetchrc_proto { FETCHRC_PROTO_AUTO = 0, FETCHRC_PROTO_POP3, FETCHRC_PROTO_IMAP };
enum fetchrc_auth { FETCHRC_AUTH_ANY = 0, FETCHRC_AUTH_PASSWORD, FETCHRC_AUTH_PLAIN };

struct fetchrc_local {
    char *remote; /* "REMOTE = LOCAL" mapping's left side, or NULL */
    char *local;  /* a local user, or "*" */
};

struct fetchrc_user {
    char *remote;                                   /* login at the server ("": invoking user) */
    char *password;                                 /* NULL: none given */
    struct fetchrc_local locals[FETCHRC_LIST_MAX];  /* is/to; empty: same as remote */
    size_t nlocals;
    bool keep, fetchall, flush;
    bool limitflush;           /* delete messages over limit instead of leaving them */
    unsigned long limit;       /* octets; 0 none */
    unsigned long fetchlimit;  /* messages per poll; 0 none */
    bool ssl, sslcertck;
    char *sslcertfile, *sslproto, *sslcommonname;  /* NULL: not set */
    char *folders[FETCHRC_LIST_MAX];
    size_t nfolders;
    char *smtphosts[FETCHRC_LIST_MAX];
    size_t nsmtphosts;
    char *smtpaddress;         /* the domain of the envelope recipient (default localhost) */
    bool idle;                 /* IMAP IDLE between polls (RFC 2177), inside zolderd */
    unsigned line;             /* where `user` (or the entry) started */
};

struct fetchrc_server {
    char *name;                /* poll NAME */
    bool skip;                 /* `skip` instead of `poll` */
    char *via;                 /* NULL: connect to name */
    enum fetchrc_proto proto;
    unsigned port;             /* 0: the protocol's (and ssl's) default */
    unsigned long timeout;     /* seconds; 0: the default (300, as fetchmail) */
    unsigned long interval;    /* poll only every Nth cycle; 0/1 every */
    enum fetchrc_auth auth;
    bool dns;                  /* default true */
    bool uidl;
    char *aka[FETCHRC_LIST_MAX];
    size_t naka;
    char *localdomains[FETCHRC_LIST_MAX];
    size_t nlocaldomains;
    bool no_envelope;
    char *envelope;            /* header name, NULL: default (X-Envelope-To etc.) */
    unsigned long envelope_skip;
    char *qvirtual;
    struct fetchrc_user *users;      /* allocated, at most FETCHRC_USERS_MAX */
    size_t nusers;
    unsigned line;
};

struct fetchrc {
    unsigned long daemon;      /* set daemon N; 0: not set */
    char *postmaster;
    char *logfile;
    char *idfile;
    bool bouncemail;           /* default true */
    bool syslog;
    struct fetchrc_server *servers;  /* allocated, at most FETCHRC_SERVERS_MAX */
    size_t nservers;
};

/*
 * Parses data[0..len). true, or false with "FILE:LINE:COL: text" in error (the partly filled
 * rc must still be released with fetchrc_free). file names the input in error texts.
 */
bool fetchrc_parse(struct fetchrc *rc, const char *file, const char *data, size_t len,
                   char error[FETCHRC_ERROR_MAX]);
void fetchrc_free(struct fetchrc *rc);

/* The TCP port a server entry connects to: port, else 995/993 with ssl, else 110/143. */
unsigned fetchrc_port(const struct fetchrc_server *s, const struct fetchrc_user *u);
/* "pop3", "imap", "auto". */
const char *fetchrc_proto_name(enum fetchrc_proto proto);
/* True when the user has "*" among its locals (multidrop). */
bool fetchrc_multidrop(const struct fetchrc_user *u);
/*
 * One `smtphost` entry split into host and port: HOST, HOST/PORT (fetchmail's), HOST:PORT,
 * [V6], [V6]:PORT or a bare IPv6 address; HOST a name or an address (letters, digits, . - _
 * and, for addresses, : %); "localhost" becomes 127.0.0.1 (fetchmail's default); PORT 1-65535
 * or "smtp", 25 when not given. false: not of that shape (host is then undefined).
 */
bool fetchrc_smtphost(const char *text, char *host, size_t hostsize, unsigned *port);

#endif
