/*
 * netaddr: IPv4/IPv6 addresses and networks, parsed from text and matched.
 *
 * Network forms: "192.168.1.0/24", "fe80::/10", "10.1.2.3" (one host), and the classic
 * octet prefixes of access maps and hosts.allow: "192.168.1" and "192.168.1." both mean
 * 192.168.1.0/24, matching on octet boundaries only (never 192.168.10.x).
 */
#ifndef ZOLDER_NETADDR_H
#define ZOLDER_NETADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct netaddr {
    int family;         /* AF_INET or AF_INET6 */
    uint8_t bytes[16];  /* 4 used for AF_INET */
};

struct netmask {
    struct netaddr addr;
    unsigned prefix;    /* bits */
};

#define NETADDR_STRLEN 46

bool netaddr_parse(const char *text, struct netaddr *addr_r);
/* Accepts a full address, address/bits, address/dotted-mask, or an octet prefix. */
bool netmask_parse(const char *text, struct netmask *net_r);
bool netmask_match(const struct netmask *net, const struct netaddr *addr);
void netaddr_format(const struct netaddr *addr, char *out, size_t outsize);
bool netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *addr_r);
/* 127.0.0.1 or ::1 (and ::ffff:127.0.0.1): "local" in zolder's sense. */
bool netaddr_is_local(const struct netaddr *addr);
/* Maps ::ffff:a.b.c.d to a.b.c.d; other addresses are unchanged. */
void netaddr_unmap_v4(struct netaddr *addr);

#endif
