/*
 * received: the Received: trace field zolder writes (RFC 5321 4.4, RFC 3848 protocol names),
 * in the seed's form:
 *   Received: from HELO (RDNS [IP])
 *           by HOSTNAME (zolder VERSION) with ESMTP id QUEUEID
 *           for <RCPT>; Sat, 16 Nov 2002 23:07:13 +0100
 * Pure: the date is passed in.
 */
#ifndef ZOLDER_RECEIVED_H
#define ZOLDER_RECEIVED_H

#include <stdbool.h>
#include <time.h>

#include "buf.h"

struct received_info {
    const char *helo;       /* as the client said it; sanitised on output */
    const char *rdns;       /* forward-confirmed reverse name, or NULL ("unknown" is written) */
    const char *ip;         /* "192.168.1.5" or "IPv6:::1" */
    const char *by_host;    /* our hostname */
    const char *software;   /* "zolder 0.1" */
    const char *with;       /* "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA", "SMTP", "LMTP", ... */
    const char *queue_id;
    const char *for_rcpt;   /* the one recipient, or NULL when there are several */
    const char *tls_info;   /* e.g. "version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384", or NULL */
    time_t when;
};

/*
 * Appends the whole field, folded, each line ending in CRLF. Lines break before "by" and
 * before "for <RCPT>;" (without a single recipient: "id QID;" then the date on its own line),
 * and between words past 78 columns. With tls_info the protocol is followed by the comment
 * "(using TLS <tls_info>)". Every value is cleaned for its position: bytes outside printable
 * ASCII and those that would break the syntax (parentheses, brackets, quotes, ';', spaces in
 * single words) become '?'; the HELO is capped at 63 bytes, other words at 255 ("..." marks a
 * cut). A NULL/empty HELO or rdns is written "unknown"; other NULL parts are left out.
 */
void received_write(struct buf *out, const struct received_info *ri);

#endif
