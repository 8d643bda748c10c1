/* timefmt: dates as mail headers write them. */
#ifndef ZOLDER_TIMEFMT_H
#define ZOLDER_TIMEFMT_H

#include <stddef.h>
#include <time.h>

#define TIMEFMT_RFC5322_LEN 48

/* "Sat, 16 Nov 2002 23:07:13 +0100" in local time (RFC 5322 3.3). */
void timefmt_rfc5322(time_t t, char *out, size_t outsize);
/* "Sat Nov 16 23:07:13 2002" as in an mbox From_ line (RFC 4155, asctime form). */
void timefmt_mbox(time_t t, char *out, size_t outsize);

#endif
