/* netaddr: IPv4/IPv6 addresses and networks (see netaddr.h). */
#include "netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "str.h"

bool netaddr_parse(const char *text, struct netaddr *addr_r)
{
    memset(addr_r, 0, sizeof *addr_r);
    if (inet_pton(AF_INET, text, addr_r->bytes) == 1) {
        addr_r->family = AF_INET;
        return true;
    }
    char tmp[NETADDR_STRLEN + 2];
    const char *t = text;
    size_t len = strlen(text);
    /* "[::1]" and "IPv6:::1" as in SMTP address literals. */
    if (len >= 2 && text[0] == '[' && text[len - 1] == ']' && len - 2 < sizeof tmp) {
        memcpy(tmp, text + 1, len - 2);
        tmp[len - 2] = '\0';
        t = tmp;
    }
    if (inet_pton(AF_INET6, t, addr_r->bytes) == 1) {
        addr_r->family = AF_INET6;
        return true;
    }
    return false;
}

static bool netmask_parse_octets(const char *text, struct netmask *net_r)
{
    /* 1 to 3 decimal octets with an optional trailing dot: "192.168.1" or "10." */
    unsigned octets[4];
    int n = 0;
    const char *p = text;
    while (*p) {
        if (n == 4)
            return false;
        unsigned v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (unsigned)(*p - '0');
            if (++digits > 3 || v > 255)
                return false;
            p++;
        }
        if (!digits)
            return false;
        octets[n++] = v;
        if (*p == '.')
            p++;
        else if (*p)
            return false;
    }
    if (n < 1 || n > 3)
        return false;
    memset(net_r, 0, sizeof *net_r);
    net_r->addr.family = AF_INET;
    for (int i = 0; i < n; i++)
        net_r->addr.bytes[i] = (uint8_t)octets[i];
    net_r->prefix = (unsigned)n * 8;
    return true;
}

bool netmask_parse(const char *text, struct netmask *net_r)
{
    char host[NETADDR_STRLEN + 2];
    const char *slash = strchr(text, '/');
    if (!slash) {
        if (netaddr_parse(text, &net_r->addr)) {
            net_r->prefix = net_r->addr.family == AF_INET ? 32 : 128;
            return true;
        }
        return netmask_parse_octets(text, net_r);
    }
    size_t hlen = (size_t)(slash - text);
    if (hlen == 0 || hlen >= sizeof host)
        return false;
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    if (!netaddr_parse(host, &net_r->addr))
        return false;
    unsigned maxbits = net_r->addr.family == AF_INET ? 32 : 128;
    unsigned long bits;
    if (str_to_ulong(slash + 1, maxbits, &bits)) {
        net_r->prefix = (unsigned)bits;
    } else {
        /* tcp-wrapper style net/mask: 192.168.1.0/255.255.255.0 */
        struct netaddr mask;
        if (net_r->addr.family != AF_INET || !netaddr_parse(slash + 1, &mask) ||
            mask.family != AF_INET)
            return false;
        uint32_t m = ((uint32_t)mask.bytes[0] << 24) | ((uint32_t)mask.bytes[1] << 16) |
                     ((uint32_t)mask.bytes[2] << 8) | mask.bytes[3];
        unsigned count = 0;
        while (count < 32 && (m & (0x80000000u >> count)))
            count++;
        if (count < 32 && (m << count) != 0)
            return false; /* not contiguous */
        net_r->prefix = count;
    }
    /* Host bits set below the prefix would never match as written; clear them. */
    for (unsigned i = 0; i < maxbits / 8; i++) {
        unsigned keep = net_r->prefix > i * 8 ? net_r->prefix - i * 8 : 0;
        if (keep < 8)
            net_r->addr.bytes[i] &= (uint8_t)(0xff00u >> keep);
    }
    return true;
}

bool netmask_match(const struct netmask *net, const struct netaddr *addr)
{
    struct netaddr a = *addr;
    netaddr_unmap_v4(&a);
    if (a.family != net->addr.family)
        return false;
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(a.bytes, net->addr.bytes, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (a.bytes[full] & mask) == (net->addr.bytes[full] & mask);
}

void netaddr_format(const struct netaddr *addr, char *out, size_t outsize)
{
    if (!inet_ntop(addr->family, addr->bytes, out, (socklen_t)outsize))
        str_copy(out, outsize, "?");
}

bool netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *addr_r)
{
    memset(addr_r, 0, sizeof *addr_r);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
        addr_r->family = AF_INET;
        memcpy(addr_r->bytes, &sin->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        addr_r->family = AF_INET6;
        memcpy(addr_r->bytes, &sin6->sin6_addr, 16);
        netaddr_unmap_v4(addr_r);
        return true;
    }
    return false;
}

void netaddr_unmap_v4(struct netaddr *addr)
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (addr->family == AF_INET6 && memcmp(addr->bytes, prefix, 12) == 0) {
        uint8_t v4[4];
        memcpy(v4, addr->bytes + 12, 4);
        memset(addr->bytes, 0, sizeof addr->bytes);
        memcpy(addr->bytes, v4, 4);
        addr->family = AF_INET;
    }
}

bool netaddr_is_local(const struct netaddr *addr)
{
    struct netaddr a = *addr;
    netaddr_unmap_v4(&a);
    if (a.family == AF_INET)
        return a.bytes[0] == 127 && a.bytes[1] == 0 && a.bytes[2] == 0 && a.bytes[3] == 1;
    static const uint8_t loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return a.family == AF_INET6 && memcmp(a.bytes, loop6, 16) == 0;
}
