/*
 * hdr: walking and rewriting the RFC 5322 header section of a message held in memory
 * (CRLF line ends, as stored in the queue). Pure functions over bytes.
 */
#ifndef ZOLDER_HDR_H
#define ZOLDER_HDR_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct hdr_field {
    const char *name;
    size_t name_len;
    const char *value;   /* after the colon, including folded continuation lines */
    size_t value_len;    /* without the final CRLF */
    size_t start;        /* offset of the field's first byte */
    size_t end;          /* offset just after its final CRLF */
};

/*
 * Length of the header section: offset just after the empty line that ends it, or len when
 * the message has no body separator. A line that is not a field (no colon, bad name) also
 * ends the header section, as RFC 5322 readers treat it; the length is then the offset of
 * that line (there is no separator to include). A bare LF is accepted as a line end too.
 */
size_t hdr_section_len(const char *msg, size_t len);

/* Iterates fields: start with *pos = 0; false when there are no more. */
bool hdr_next(const char *msg, size_t hdr_len, size_t *pos, struct hdr_field *field);

/* Number of fields named name (case-insensitive), e.g. "Received" for loop detection. */
unsigned hdr_count(const char *msg, size_t len, const char *name);

/*
 * Masquerading: in From, Sender and Reply-To (and their Resent- forms), every address whose
 * domain is one of hosts[0..nhosts) (case-insensitive, exact) gets domain `to` instead.
 * Writes the rewritten header section into out; returns the number of addresses rewritten.
 * Comments, display names, groups and quoted strings are respected (a domain inside a
 * quoted display name is not an address).
 * Only the domain of an addr-spec is replaced, and only when it is a single dot-atom; all
 * other bytes are copied unchanged. A field with an unclosed comment, quoted string or domain
 * literal is copied unchanged, as are obsolete forms split by white space (see hdr.c).
 */
unsigned hdr_masquerade(const char *msg, size_t hdr_len, const char *const *hosts, size_t nhosts,
                        const char *to, struct buf *out);

#endif
