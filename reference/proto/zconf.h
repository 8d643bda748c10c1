/*
 * zconf: zolderd's configuration file (docs/config.md is the registry of every key).
 *
 * Flat `key = value` lines (Postfix main.cf spirit), '#' comments, continuation lines that
 * start with blanks. One table describes every key: its type, default and bounds. Unknown
 * keys, bad values and duplicates are errors naming FILE:LINE and what was expected.
 * Relative paths are resolved against the config file's folder. Pure: bytes in, struct out.
 */
#ifndef ZOLDER_ZCONF_H
#define ZOLDER_ZCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "cfglex.h"
#include "netaddr.h"

#define ZCONF_LISTEN_MAX 8
#define ZCONF_LIST_MAX 64

struct zconf_listen {
    struct sockaddr_storage sa;
    socklen_t salen;
    char text[NETADDR_STRLEN + 10]; /* "127.0.1.20:25" / "[::1]:25" */
};

/* A list of networks (relay_from, plaintext_auth_from). */
struct zconf_nets {
    struct netmask net[ZCONF_LIST_MAX];
    size_t n;
};

struct zconf_masquerade {
    char *hosts[ZCONF_LIST_MAX];
    size_t nhosts;
    char *domain;
};

struct zconf {
    char *file;                 /* the config file itself */
    char *hostname;
    struct zconf_listen listen[ZCONF_LISTEN_MAX];
    size_t nlisten;
    struct zconf_listen submission[ZCONF_LISTEN_MAX];
    size_t nsubmission;
    struct zconf_listen pop3[ZCONF_LISTEN_MAX];  /* POP3 (RFC 1939), STLS offered with TLS */
    size_t npop3;
    struct zconf_listen pop3s[ZCONF_LISTEN_MAX]; /* POP3 over implicit TLS */
    size_t npop3s;
    char *local_domains[ZCONF_LIST_MAX];
    size_t nlocal_domains;
    struct zconf_nets relay_from;
    struct zconf_masquerade masquerade;
    char *outbound_allow[ZCONF_LIST_MAX]; /* who may send off the LAN; empty list: everyone */
    size_t noutbound_allow;
    bool outbound_restricted;             /* outbound_allow was set */
    char *state_dir;
    char *users;
    char *aliases;
    char *access;
    char *hosts_allow;
    char *hosts_deny;
    char *hosts_file;
    char *run_as;
    char *tls_cert;
    char *tls_key;
    char *mailbox_format;       /* "mbox" or "maildir" */
    char *log_level;
    bool vrfy;
    bool expn;
    unsigned long message_size_limit;
    unsigned long recipient_limit;
    unsigned long line_length_limit;
    unsigned long smtpd_error_limit;
    unsigned long smtpd_client_connection_limit;
    unsigned long smtpd_connection_limit;
    unsigned long smtpd_timeout;        /* seconds, waiting for a command */
    unsigned long smtpd_data_timeout;   /* seconds, waiting for more DATA */
    unsigned long hop_count_limit;      /* Received lines before a loop is declared */
    unsigned long queue_run_interval;   /* seconds between queue scans */
    unsigned long local_retry_delay;    /* seconds before a deferred local delivery is retried */
    unsigned long pop3_timeout;         /* seconds, waiting for a POP3 command */
    unsigned long pop3_connection_limit; /* simultaneous POP3 connections in all */
    struct zconf_nets plaintext_auth_from; /* may log in without TLS (loopback always may) */
    unsigned long auth_failure_delay;   /* seconds before a failed login is answered */
    /* outbound delivery (reference/relay) */
    char *smarthost;            /* "HOST[:PORT]", "[ADDR]:PORT", "smtps://HOST:465", or "" (MX) */
    char *smarthost_tls;        /* "may", "encrypt" or "verify" */
    char *smarthost_auth;       /* file holding user:password, mode 0600 */
    char *tls_ca_file;          /* CA bundle for smarthost_tls = verify */
    char *smtp_bind_address;    /* source address of outgoing connections, or "" */
    char *nameserver;           /* "ADDR[:PORT]", or "" for /etc/resolv.conf */
    char *dns;                  /* "canonify", "nocanonify" or "nodns" */
    bool defer_remote;          /* hold remote mail until a flush */
    unsigned long retry_min_delay;      /* seconds before the first retry of a deferred message */
    unsigned long retry_max_delay;      /* upper bound of the doubling backoff */
    unsigned long queue_lifetime;       /* seconds a message may stay queued before it bounces */
    unsigned long smtp_connect_timeout; /* seconds for connect (and the TLS handshake) */
    unsigned long smtp_reply_timeout;   /* seconds waiting for a reply (RFC 5321 4.5.3.2) */
    unsigned long smtp_data_timeout;    /* seconds waiting for the reply to the final dot */
    /* outbound delivery: bounces and delay warnings (reference/relay, issue 5 section 4) */
    unsigned long delay_warning_time;   /* seconds queued before the one delay warning; 0: never */
    unsigned long bounce_size_limit;    /* a larger message is returned as its header only */
    /* content filter (reference/filter, docs/filter.md) */
    bool filter;                /* scan every queued message before delivery */
    char *banned_extensions;    /* blank separated, ".exe .pif ..." */
    char *virus_signatures;     /* built-in scanner's signature file, or "" (EICAR only) */
    char *clamd;                /* "unix:/path" or "ADDR:PORT" of clamd, or "" (not used) */
    char *filter_admin;         /* who gets the quarantine notices */
    bool filter_fail_open;      /* deliver unscanned when a scanner fails (default: defer) */
    unsigned long clamd_timeout;         /* seconds for one clamd scan */
    unsigned long filter_mime_depth;     /* MIME nesting beyond this: quarantined */
    unsigned long filter_mime_parts;     /* MIME parts beyond this: quarantined */
    unsigned long filter_header_limit;   /* bytes of one header block beyond this: quarantined */
    unsigned long filter_archive_depth;  /* zip in zip beyond this: quarantined */
    unsigned long filter_archive_entries; /* archive entries beyond this: quarantined */
    unsigned long filter_archive_expanded; /* bytes expanded beyond this: a zip bomb, quarantined */
    /* fetch (reference/fetch): the fetchmail-compatible poller */
    char *fetchmailrc;                  /* fetchmail run-control file, "" none */
    unsigned long fetch_interval;       /* seconds between polls; 0: only `zolderctl fetch` */
    char *fetch_smtp;                   /* "ADDR:PORT" of the hand-off, "" = first listen */
    char *fetch_refused;                /* zolder's 5xx: "delete" (fetchmail) or "keep" */
    /* IMAP service (reference/imapd) */
    struct zconf_listen imap[ZCONF_LISTEN_MAX];  /* IMAP4rev1 (RFC 3501), STARTTLS with TLS */
    size_t nimap;
    struct zconf_listen imaps[ZCONF_LISTEN_MAX]; /* IMAP over implicit TLS */
    size_t nimaps;
    unsigned long imap_timeout;          /* seconds, idle connection (RFC 3501 5.4: >= 30 min) */
    unsigned long imap_connection_limit; /* simultaneous IMAP connections in all */
    /* outbound delivery 2 (issue 5): local bounces, RFC 5321 4.5.3.2 timeouts per command */
    unsigned long mailbox_size_limit;     /* bytes an mbox may grow to; 0: no limit */
    unsigned long smtp_helo_timeout;      /* seconds for the 220 greeting and the EHLO reply */
    unsigned long smtp_mail_timeout;      /* seconds for the MAIL FROM reply */
    unsigned long smtp_rcpt_timeout;      /* seconds for each RCPT TO reply */
    unsigned long smtp_data_init_timeout; /* seconds for the 354 after DATA */
    unsigned long smtp_data_xfer_timeout; /* seconds a block of the message may wait to be sent */
    /* content filter: asynchronous scanning (reference/filter) */
    unsigned long filter_scanners;       /* scanner processes = messages scanned at once */
    /* mail folders (issues 7 and 8): IMAP folders, delivery rules and their folders */
    char *mail_dir;                      /* "~/Mail" or "/abs/%u/..." (reference/proto/mailpath.h) */
    /* fetch: IMAP IDLE between polls (reference/fetch, fetchmailrc `idle`) */
    unsigned long fetch_idle_renew;      /* seconds before an IDLE is ended and sent again */
    /* content filter: the scanner processes' own user (reference/filter/launcher) */
    char *filter_user;                   /* "" = run_as; needs zolderd started as root */
    /* IMAP/POP3 throughput (issue 7): deferred compaction of mbox mailboxes */
    unsigned long mbox_compact_delay;    /* seconds an expunge's bytes may stay; 0: at once */
    unsigned long auth_cache_size;       /* successful password checks remembered; 0: none */
    unsigned long auth_cache_ttl;        /* seconds one is remembered */
    /* fetch: hand-off sessions to zolderd's SMTP listener (reference/fetch/handoff) */
    unsigned long fetch_smtp_sessions;   /* SMTP sessions the poller keeps in parallel */
};

/* The parts of a smarthost value. */
struct zconf_smarthost {
    char host[256];             /* a name, or an address literal without brackets */
    unsigned port;
    bool implicit_tls;          /* smtps:// */
};

/* Fills every field with its default (paths relative to base_dir). */
void zconf_defaults(struct zconf *conf, const char *base_dir);
/* Parses a config file's bytes over the defaults. false with err on the first bad line. */
bool zconf_parse(struct zconf *conf, const char *file, const char *data, size_t len,
                 struct cfg_error *err);
/* Cross-key checks after parsing (e.g. tls_cert without tls_key). */
bool zconf_validate(const struct zconf *conf, struct cfg_error *err);
void zconf_free(struct zconf *conf);
/* Prints the effective configuration, one `key = value` line per key (zolderd -n). */
void zconf_print(const struct zconf *conf, struct buf *out);

/* Parses "ADDR:PORT", "[V6]:PORT" or "ADDR" (default_port). */
bool zconf_parse_listen(const char *text, unsigned default_port, struct zconf_listen *out);
/* Parses the smarthost key's value. */
bool zconf_parse_smarthost(const char *text, struct zconf_smarthost *out);
bool zconf_is_local_domain(const struct zconf *conf, const char *domain);
/* Whether a client at addr may send a password without TLS (POP3, IMAP, SMTP AUTH). */
bool zconf_plaintext_auth_ok(const struct zconf *conf, const struct netaddr *addr);

#endif
