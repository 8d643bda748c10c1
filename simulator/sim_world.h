/*
 * sim_world: the world file of ispsim (docs/ispsim.md, "World file"). Pure: bytes in, a struct
 * sim_world out, or a "FILE:LINE: text" error. No I/O, no globals; paths stay as written
 * (the caller resolves them against the world file's folder).
 *
 * One statement per line, keyword first, then positional arguments, then "key value" options:
 *   world NAME
 *   zone NAME
 *   link NAME listen NET from ADDR [mode up|down|demand] [PROFILE-KEY VALUE...]
 *   host NAME ADDR [public ADDR] [via LINK]
 *   record NAME TYPE DATA...          (A, AAAA, MX, CNAME, PTR, TXT; DATA as in a zone file)
 *   nameserver HOST
 *   customer ADDR public ADDR
 *   store NAME
 *   mailbox STORE USER [password P] [address A[,A...]] [mbox FILE] [quota BYTES] [full 452|552]
 *   certs DIR                         (NAME.pem and NAME.key per TLS host; relative to the world)
 *   smarthost HOST customers NET[,NET...] [auth USER:PASS] [tls starttls,implicit]
 *             [relay smtp|handoff] [retry SECONDS]
 *   mx HOST domains DOMAIN[,DOMAIN...] store STORE [tls starttls,implicit]
 *   pop3 HOST store STORE [tls starttls,implicit]
 *   imap HOST store STORE [tls starttls,implicit]
 */
#ifndef ZOLDER_SIM_WORLD_H
#define ZOLDER_SIM_WORLD_H

#include <stdbool.h>
#include <stddef.h>

#include "cfglex.h"
#include "netaddr.h"
#include "sim_link.h"

#define SIM_NAME_MAX 256     /* a DNS name (253) plus room for the NUL */
#define SIM_USER_MAX 64
#define SIM_PASS_MAX 128
#define SIM_WORLD_MAX_HOSTS 256
#define SIM_WORLD_MAX_ZONES 128
#define SIM_WORLD_MAX_RECORDS 1024
#define SIM_WORLD_MAX_SERVICES 256
#define SIM_WORLD_MAX_STORES 64
#define SIM_WORLD_MAX_MAILBOXES 1024
#define SIM_WORLD_MAX_CUSTOMERS 64
#define SIM_WORLD_MAX_LINKS 8
#define SIM_WORLD_MAX_LIST 16  /* domains, customer nets, addresses per statement */

struct sim_host {
    char name[SIM_NAME_MAX];   /* lower case, no trailing dot */
    struct netaddr addr;       /* where it listens (127.x.y.z) */
    struct netaddr pub;        /* what headers show (defaults to addr) */
    int link;                  /* index into links, or -1: not behind a link */
    struct netaddr link_addr;  /* where the link listens for it (when link >= 0) */
    unsigned line;
};

/* The dial-up link: the LAN reaches hosts "via" it at link_addr; they see it as from. */
struct sim_link {
    char name[SIM_USER_MAX];
    struct netmask listen;     /* link addresses: this prefix + the host address's low bits */
    struct netaddr from;       /* the customer's end: the source of forwarded connections */
    enum sim_link_mode mode;   /* at start and after reset */
    struct sim_link_profile profile;
    unsigned line;
};

struct sim_record {
    char name[SIM_NAME_MAX];
    char type[8];              /* upper case */
    char *data;                /* as written */
    unsigned line;
};

struct sim_customer {
    struct netaddr addr;
    struct netaddr pub;
};

struct sim_mailbox {
    int store;                                   /* index into stores */
    char user[SIM_USER_MAX];
    char password[SIM_PASS_MAX];
    char addresses[SIM_WORLD_MAX_LIST][SIM_NAME_MAX];
    int naddresses;
    char *mbox;                                  /* NULL or a path as written */
    unsigned long long quota;                    /* bytes; 0: none */
    unsigned full_code;                          /* 452 or 552: the MX's reply when full */
    unsigned line;
};

enum sim_service_kind { SIM_SVC_SMARTHOST, SIM_SVC_MX, SIM_SVC_POP3, SIM_SVC_IMAP };

struct sim_service {
    enum sim_service_kind kind;
    int host;                                    /* index into hosts */
    int store;                                   /* -1 for a smarthost */
    struct netmask customers[SIM_WORLD_MAX_LIST];
    int ncustomers;
    char domains[SIM_WORLD_MAX_LIST][SIM_NAME_MAX];
    int ndomains;
    char backup[SIM_WORLD_MAX_LIST][SIM_NAME_MAX]; /* mx: also a backup MX (preference 20) for these */
    int nbackup;
    char auth_user[SIM_USER_MAX];                /* "" when no AUTH */
    char auth_pass[SIM_PASS_MAX];
    bool starttls;                               /* STARTTLS (STLS) offered */
    bool implicit_tls;                           /* also 465 (SMTP), 995 (POP3), 993 (IMAP) */
    bool handoff;                                /* smarthost: in-process hand-off, no SMTP */
    unsigned retry_s;                            /* smarthost: seconds between attempts */
    unsigned line;
};

struct sim_world {
    char name[SIM_USER_MAX];
    struct sim_host *hosts;
    int nhosts;
    struct sim_link *links;
    int nlinks;
    char (*zones)[SIM_NAME_MAX];
    int nzones;
    struct sim_record *records;
    int nrecords;
    struct sim_customer *customers;
    int ncustomers;
    char (*stores)[SIM_USER_MAX];
    int nstores;
    struct sim_mailbox *mailboxes;
    int nmailboxes;
    struct sim_service *services;
    int nservices;
    int nameserver;                              /* host index or -1 */
    char *certs;                                 /* NULL or the certs folder as written */
};

/* NULL with err set on any error; the result is freed with sim_world_free. */
struct sim_world *sim_world_parse(const char *file, const char *data, size_t len,
                                  struct cfg_error *err);
void sim_world_free(struct sim_world *w);

int sim_world_host_index(const struct sim_world *w, const char *name);
int sim_world_link_index(const struct sim_world *w, const char *name);
/* The address DNS gives for a host: its link address when behind a link (and not the
 * nameserver itself), else its own. */
const struct netaddr *sim_world_host_dns_addr(const struct sim_world *w, int host);
int sim_world_store_index(const struct sim_world *w, const char *name);
/* The host listening on addr, or -1. */
int sim_world_host_by_addr(const struct sim_world *w, const struct netaddr *addr);
/* The public address headers show for a peer at addr: a host's, a customer's, or addr. */
void sim_world_public_of(const struct sim_world *w, const struct netaddr *addr,
                         struct netaddr *pub_r);
/* The MX service that accepts mail for domain, or -1. */
int sim_world_mx_for_domain(const struct sim_world *w, const char *domain);
/* The mailbox of store that receives local@domain (address list, else user == local), or -1. */
int sim_world_mailbox_for(const struct sim_world *w, int store, const char *address);
/* The zone a name lies in (longest match), or -1. */
int sim_world_zone_of(const struct sim_world *w, const char *name);

#endif
